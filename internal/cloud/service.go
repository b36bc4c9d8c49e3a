// Package cloud is the service: it validates every API operation against
// the rules of the Huawei ECS API, changes state and inserts the job that
// carries the change out in one transaction, and runs those jobs against a
// compute.Driver.
//
// Contract:
//   - A job id is returned only after the state change and the job row are
//     committed together; the engine is notified after the commit.
//   - Each job handler checkpoints its steps (jobs.step) and fences every
//     write with its lease token on the server row, so a re-run after a
//     crash resumes at the first unfinished step and a stale run stops at
//     its next write. Driver calls are idempotent, so repeating the step in
//     flight is safe.
//   - A server always has a system disk in the database: a reinstall swaps
//     the disk in one commit, after the new disk is ready.
//   - Errors returned to the API are *ecs.Error; causes stay in logs.
//   - Plain passwords never leave the call that received them: they are
//     turned into $6$ hashes before anything is stored.
package cloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/jobs"
	"github.com/ecsproject/ecsd/internal/keyring"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store"
)

// Config configures a Service.
type Config struct {
	Store  store.Store
	Driver compute.Driver
	Box    *secret.Box
	Logger *slog.Logger
	// Workers bounds concurrently running jobs (default 64).
	Workers int
	// Lease is the job lease duration (default 15s).
	Lease time.Duration
	// JobMaxErrors is how many transient errors a job may meet before it
	// fails (default 5); JobBackoff is the wait before its first retry,
	// doubling with each error (default 1s). See package jobs.
	JobMaxErrors int
	JobBackoff   time.Duration
	// NodeID names this node as the owner of the job leases it takes and
	// of the upkeep leadership: its host name (ecsd --host); default a
	// random token.
	NodeID string
	// Host is this node's host (registered by cluster.Register): new
	// servers are placed on the registered hosts, and this node runs the
	// jobs of Host's servers and those of no host.
	Host string
	// HostDownAfter is how old a host's heartbeat may be before the host
	// is down: new operations on its servers are refused (default
	// cluster.DefaultDownAfter).
	HostDownAfter time.Duration
	// StepTimeout bounds each driver call of a job (default 10m).
	StepTimeout time.Duration
	// JobRetention is how long finished jobs are kept (default 24h).
	JobRetention time.Duration
	// ActionRetention is how long action log entries are kept (default
	// DefaultActionRetention).
	ActionRetention time.Duration
	// LeaderTTL is the term of the upkeep leader (default 15s; see
	// cluster.Lead).
	LeaderTTL time.Duration
	// ResetPasswordWait is how long a password reset waits for its job
	// before answering (default DefaultResetPasswordWait).
	ResetPasswordWait time.Duration
	// OnJobStart, when set, is called as each job starts (benchmarks).
	OnJobStart func(ecs.Job)
}

// Caller is who makes an API call: the project and user of its access key.
type Caller struct {
	ProjectID string
	UserID    string
	// AccessKey is the access key that signed the call, and RequestID its
	// X-Request-Id: both go into the action log ("" from inside the
	// process).
	AccessKey string
	RequestID string
}

// Service is the ECS service.
type Service struct {
	store  store.Store
	drv    compute.Driver
	box    *secret.Box
	log    *slog.Logger
	engine *jobs.Engine
	cfg    Config

	keys *keyring.Ring
	// images caches the catalog (image id -> ecs.Image). Another process
	// may change it (ecsd image import, another node): on a store that
	// tells of changes (store.ChangeNotifier) it is dropped on each, and
	// imageGen, bumped then under imageMu, keeps a read that began before
	// the drop from caching what it read.
	images   sync.Map
	imageMu  sync.Mutex
	imageGen uint64
	// beats is the hosts' heartbeats for host_status (hosts.go).
	beats heartbeats
}

// New returns a Service. Call Run to start its job engine.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 10 * time.Minute
	}
	if cfg.JobRetention <= 0 {
		cfg.JobRetention = 24 * time.Hour
	}
	if cfg.ActionRetention <= 0 {
		cfg.ActionRetention = DefaultActionRetention
	}
	if cfg.ResetPasswordWait <= 0 {
		cfg.ResetPasswordWait = DefaultResetPasswordWait
	}
	if cfg.HostDownAfter <= 0 {
		cfg.HostDownAfter = cluster.DefaultDownAfter
	}
	s := &Service{store: cfg.Store, drv: cfg.Driver, box: cfg.Box, log: cfg.Logger, cfg: cfg}
	s.keys = keyring.New(keyring.Config{Store: cfg.Store, Open: s.openSecret, Logger: cfg.Logger})
	s.engine = jobs.New(jobs.Config{
		Store:     cfg.Store,
		Workers:   cfg.Workers,
		Lease:     cfg.Lease,
		Owner:     cfg.NodeID,
		Host:      cfg.Host,
		MaxErrors: cfg.JobMaxErrors,
		Backoff:   cfg.JobBackoff,
		Logger:    cfg.Logger,
		OnStart:   cfg.OnJobStart,
		Handlers: map[string]jobs.Handler{
			ecs.JobReinstallOS:        s.runReinstall,
			ecs.JobChangeOS:           s.runReinstall,
			ecs.JobResetPassword:      s.runResetPassword,
			ecs.JobCreateSingleServer: s.runCreate,
			ecs.JobStartServer:        s.runPower,
			ecs.JobStopServer:         s.runPower,
			ecs.JobRebootServer:       s.runPower,
			ecs.JobDeleteServer:       s.runDelete,
			ecs.JobAttachVolume:       s.runAttach,
			ecs.JobDetachVolume:       s.runDetach,
			ecs.JobDeleteVolume:       s.runDeleteVolume,
		},
	})
	return s
}

// Run runs the job engine until ctx ends, and the periodic upkeep (the
// job cleaner) while this node is the elected upkeep leader: one node of
// those sharing the store at a time. The engine first takes back the jobs
// this node's previous process was running (the leases of its NodeID);
// other nodes' jobs are left to their leases.
func (s *Service) Run(ctx context.Context) error {
	s.reapVolumes(ctx)
	var wg sync.WaitGroup
	if n, ok := s.store.(store.ChangeNotifier); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.ChangeListen(ctx, s.invalidate)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		cluster.Lead(ctx, cluster.LeaderConfig{Store: s.store, Name: UpkeepLeadership, Owner: s.engine.Owner(),
			TTL: s.cfg.LeaderTTL, Logger: s.log}, s.cleanLoop)
	}()
	err := s.engine.Run(ctx)
	wg.Wait()
	return err
}

// invalidate drops what this process keeps of topic (a
// store.ChangeNotifier topic; "" for every one): another process changed it.
func (s *Service) invalidate(topic string) {
	if topic == "" || topic == store.TopicCredentials {
		s.keys.Invalidate()
	}
	if topic == "" || topic == store.TopicImages {
		s.dropImages()
	}
}

func (s *Service) dropImages() {
	s.imageMu.Lock()
	s.imageGen++
	s.images.Clear()
	s.imageMu.Unlock()
}

// UpkeepLeadership names the leadership of the periodic upkeep.
const UpkeepLeadership = "upkeep"

// cleanLoop deletes finished jobs older than the retention, every minute.
func (s *Service) cleanLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		n, err := s.store.JobDeleteFinished(ctx, time.Now().Add(-s.cfg.JobRetention))
		if err != nil && ctx.Err() == nil {
			s.log.Error("job cleaner failed", "err", err)
		} else if n > 0 {
			s.log.Info("job cleaner deleted finished jobs", "jobs", n)
		}
		s.pruneActions(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reapVolumes deletes this host's disks left in state "deleting" (a
// reinstall could not delete the old disk); other hosts' disks are theirs
// to reap.
func (s *Service) reapVolumes(ctx context.Context) {
	vols, err := s.store.VolumeListAll(ctx)
	if err != nil {
		s.log.Error("listing volumes failed", "err", err)
		return
	}
	s.collectGarbage(ctx, vols)
	for _, v := range vols {
		if v.Status != "deleting" || v.Host != s.cfg.Host {
			continue
		}
		if err := s.drv.DeleteDisk(ctx, v.ID); err != nil {
			s.log.Error("deleting a leftover disk failed", "volume_id", v.ID, "err", err)
			continue
		}
		if err := s.store.Write(ctx, func(tx store.Tx) error { return tx.VolumeDelete(ctx, v.ID) }); err != nil {
			s.log.Error("deleting a leftover volume record failed", "volume_id", v.ID, "err", err)
		}
	}
}

// garbageCollector is a driver that can delete disks nothing references
// (the QEMU driver's overlays left by a crash between creating a disk and
// recording it).
type garbageCollector interface {
	CollectGarbage(ctx context.Context, keep func(diskID string) bool) ([]string, error)
}

// collectGarbage runs the driver's janitor, if it has one, keeping every disk
// the database knows. It runs before the job engine starts, so no disk is
// being created meanwhile.
func (s *Service) collectGarbage(ctx context.Context, vols []ecs.Volume) {
	d := s.drv
	for {
		if gc, ok := d.(garbageCollector); ok {
			known := make(map[string]bool, len(vols))
			for _, v := range vols {
				known[v.ID] = true
			}
			removed, err := gc.CollectGarbage(ctx, func(id string) bool { return known[id] })
			if err != nil {
				s.log.Error("disk janitor failed", "err", err)
			} else if len(removed) > 0 {
				s.log.Info("disk janitor removed unreferenced disks", "disks", removed)
			}
			return
		}
		u, ok := d.(interface{ Unwrap() compute.Driver })
		if !ok {
			return
		}
		d = u.Unwrap()
	}
}

// newID returns n random bytes as hex.
func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random (v4) UUID string.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// NewImageID returns an id for an imported image.
func NewImageID() string { return newUUID() }

// newJobID returns a job id shaped like Huawei's (32 hex characters).
func newJobID() string { return newID(16) }

// ---- credentials

// NewCredential makes a new project with one user and an access key, stores
// it (secret sealed; project and credential in one transaction) and returns
// it with the secret in clear, once.
func (s *Service) NewCredential(ctx context.Context, projectName string) (ecs.Credential, error) {
	c, sealed := s.makeCredential()
	err := s.store.Write(ctx, func(tx store.Tx) error { return insertCredential(ctx, tx, c, sealed, projectName) })
	return c, err
}

// makeCredential makes a new access key for a new project and user, and
// its sealed form.
func (s *Service) makeCredential() (ecs.Credential, store.SealedCredential) {
	now := time.Now().UTC()
	c := ecs.Credential{
		AccessKey: randomAlnum(20, upperAlnum),
		SecretKey: randomAlnum(40, mixedAlnum),
		ProjectID: newID(16),
		UserID:    newID(16),
		Created:   now,
	}
	sealed := store.SealedCredential{
		AccessKey: c.AccessKey, SealedSecret: s.box.Seal([]byte(c.SecretKey)),
		ProjectID: c.ProjectID, UserID: c.UserID, Created: now,
	}
	return c, sealed
}

// insertCredential records the project of c and its sealed credential.
func insertCredential(ctx context.Context, tx store.Tx, c ecs.Credential, sealed store.SealedCredential, projectName string) error {
	if err := tx.ProjectInsert(ctx, c.ProjectID, projectName, c.Created); err != nil {
		return err
	}
	return tx.CredentialInsert(ctx, sealed)
}

const (
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	mixedAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

func randomAlnum(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// LookupSecret returns the secret key of an access key (for signature
// verification); ok is false for an unknown key. Keys come from a cache
// (internal/keyring): an unknown key costs no store query of its own, and a
// key added by another process is found within keyring.DefaultTTL.
func (s *Service) LookupSecret(ctx context.Context, ak string) (string, bool) {
	k, ok := s.keys.Lookup(ctx, ak)
	return k.Secret, ok
}

// CallerOf returns the project and user of an access key.
func (s *Service) CallerOf(ctx context.Context, ak string) (Caller, bool) {
	k, ok := s.keys.Lookup(ctx, ak)
	return Caller{ProjectID: k.ProjectID, UserID: k.UserID, AccessKey: ak}, ok
}

// KeysUnavailable reports whether the store was out of reach when the
// access keys were last looked up there: an unknown key may then be one
// this node could not learn of.
func (s *Service) KeysUnavailable() bool { return s.keys.Unavailable() }

func (s *Service) openSecret(sealed []byte) ([]byte, error) {
	if s.box == nil {
		return nil, errors.New("no secret box configured")
	}
	return s.box.Open(sealed)
}

// ---- catalog

// Flavors is the flavor list.
var Flavors = []ecs.Flavor{
	{ID: "s6.small.1", Name: "s6.small.1", VCPUs: 1, RAMMB: 1024},
	{ID: "s6.medium.2", Name: "s6.medium.2", VCPUs: 1, RAMMB: 2048},
	{ID: "s6.large.2", Name: "s6.large.2", VCPUs: 2, RAMMB: 4096},
	{ID: "t6.tiny.1", Name: "t6.tiny.1", VCPUs: 1, RAMMB: 256},
}

// Flavor returns the flavor with id.
func Flavor(id string) (ecs.Flavor, bool) {
	for _, f := range Flavors {
		if f.ID == id {
			return f, true
		}
	}
	return ecs.Flavor{}, false
}

// BuiltinImages is the simulator's catalog, present on every install.
var BuiltinImages = []ecs.Image{
	{ID: "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01", Name: "Debian 12 64bit", OSType: "Linux", OSVersion: "Debian GNU/Linux 12 64bit",
		Platform: "Debian", Status: "active", DiskFormat: "qcow2", MinDiskGB: 10, SizeBytes: 2 << 30, PartitionTable: "gpt", RootFS: "ext4"},
	{ID: "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e02", Name: "Ubuntu 22.04 server 64bit", OSType: "Linux",
		OSVersion: "Ubuntu 22.04 server 64bit", Platform: "Ubuntu", Status: "active", DiskFormat: "qcow2", MinDiskGB: 10,
		SizeBytes: 3 << 30, PartitionTable: "gpt", RootFS: "ext4"},
	{ID: "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e03", Name: "Windows Server 2022 Datacenter 64bit", OSType: "Windows",
		OSVersion: "Windows Server 2022 Datacenter 64bit", Platform: "Windows", Status: "active", DiskFormat: "qcow2",
		MinDiskGB: 40, MinRAMMB: 2048, SizeBytes: 12 << 30, PartitionTable: "gpt", RootFS: "ntfs"},
	// Images that run cloud-init (and a guest agent): the v2 reinstall and
	// change of OS, user_data and the online password reset use them.
	{ID: "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e04", Name: "Ubuntu 24.04 server 64bit with Cloud-Init", OSType: "Linux",
		OSVersion: "Ubuntu 24.04 server 64bit", Platform: "Ubuntu", Status: "active", DiskFormat: "qcow2", MinDiskGB: 10,
		SizeBytes: 3 << 30, PartitionTable: "gpt", RootFS: "ext4", CloudInit: true},
	{ID: "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e05", Name: "CentOS Stream 9 64bit with Cloud-Init", OSType: "Linux",
		OSVersion: "CentOS Stream 9 64bit", Platform: "CentOS", Status: "active", DiskFormat: "qcow2", MinDiskGB: 20,
		MinRAMMB: 1024, SizeBytes: 4 << 30, PartitionTable: "gpt", RootFS: "xfs", CloudInit: true,
		Unsupported: "the root filesystem is xfs (host-side injection needs ext2/3/4)"},
}

// SeedImages makes sure the built-in images are in the catalog.
func (s *Service) SeedImages(ctx context.Context) error {
	have, err := s.store.ImageList(ctx)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, i := range have {
		known[i.ID] = true
	}
	for _, i := range BuiltinImages {
		if known[i.ID] {
			continue
		}
		i.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.store.ImageUpsert(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// AddImage records an image (imported by an operator) in the catalog and,
// when it has a file, this node's host as one that has it (an import per
// host: placement puts servers of the image only on such hosts).
func (s *Service) AddImage(ctx context.Context, img ecs.Image) error {
	err := s.store.ImageUpsert(ctx, img)
	s.dropImages()
	if err != nil {
		return err
	}
	return s.addImageHost(ctx, img)
}

// addImageHost records that this node's host has img's files.
func (s *Service) addImageHost(ctx context.Context, img ecs.Image) error {
	if img.File == "" || s.cfg.Host == "" {
		return nil
	}
	return s.store.ImageHostAdd(ctx, store.ImageHost{ImageID: img.ID, Host: s.cfg.Host, File: img.File, Kernel: img.Kernel,
		Initrd: img.Initrd})
}

// localImage returns img with the paths of its files on this node's host
// (each host imported the image into its own image store).
func (s *Service) localImage(ctx context.Context, img ecs.Image) (ecs.Image, error) {
	if img.File == "" {
		return img, nil
	}
	hosts, err := s.store.ImageHostList(ctx, img.ID)
	if err != nil {
		return img, err
	}
	for _, h := range hosts {
		if h.Host == s.cfg.Host {
			img.File, img.Kernel, img.Initrd = h.File, h.Kernel, h.Initrd
			return img, nil
		}
	}
	return img, nil
}

// runnable refuses an image the driver cannot make disks from: the
// simulator's built-in catalog images have no file, so only a driver with
// the FilelessImages capability (the simulator) can use them (a data dir
// first run with --driver sim keeps them).
func (s *Service) runnable(img ecs.Image) error {
	if img.File == "" && s.drv != nil && !s.drv.Capabilities().FilelessImages {
		return ecs.Errorf(ecs.CodeImageAttributes, "The image has no disk file: it can only be used with the simulator.")
	}
	return nil
}

// image returns a catalog image, from memory after the first read (until
// another process tells of a change to the catalog). An id
// that fails ecs.ValidID is not found, without a read.
func (s *Service) image(ctx context.Context, id string) (ecs.Image, error) {
	if v, ok := s.images.Load(id); ok {
		return v.(ecs.Image), nil
	}
	if !ecs.ValidID(id) {
		return ecs.Image{}, fmt.Errorf("image %q: %w", safeID(id), ecs.ErrNotFound)
	}
	s.imageMu.Lock()
	gen := s.imageGen
	s.imageMu.Unlock()
	img, err := s.store.ImageGet(ctx, id)
	if err != nil {
		return img, err
	}
	s.imageMu.Lock()
	if s.imageGen == gen {
		s.images.Store(id, img)
	}
	s.imageMu.Unlock()
	return img, nil
}

// ListImages lists the catalog.
func (s *Service) ListImages(ctx context.Context) ([]ecs.Image, error) {
	imgs, err := s.store.ImageList(ctx)
	if err != nil {
		return nil, ecs.Wrap(ecs.CodeSystem, err, "Failed to query images.")
	}
	return imgs, nil
}

// GetImage returns one image.
func (s *Service) GetImage(ctx context.Context, id string) (ecs.Image, error) {
	img, err := s.image(ctx, id)
	if errors.Is(err, ecs.ErrNotFound) {
		return img, ecs.Errorf(ecs.CodeImageNotFound, "The image does not exist.")
	}
	if err != nil {
		return img, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the image.")
	}
	return img, nil
}

// ---- reads

// GetServer returns a server of the caller's project.
func (s *Service) GetServer(ctx context.Context, c Caller, id string) (ecs.Server, error) {
	srv, err := lookupServer(ctx, s.store.ServerGet, c.ProjectID, id)
	var e *ecs.Error
	if err != nil && !errors.As(err, &e) {
		return srv, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the ECS.")
	}
	s.withUserData(&srv)
	return srv, err
}

// lookupServer reads server id of a project with get (of the store or of a
// transaction). An unknown server, and an id that fails ecs.ValidID (there
// is no such server: it is not read), is a CodeServerNotFound *ecs.Error;
// other errors are the store's.
func lookupServer(ctx context.Context, get func(ctx context.Context, projectID, id string) (ecs.Server, error),
	projectID, id string) (ecs.Server, error) {
	if !ecs.ValidID(id) {
		return ecs.Server{}, serverNotFound(id)
	}
	srv, err := get(ctx, projectID, id)
	if errors.Is(err, ecs.ErrNotFound) {
		return srv, serverNotFound(id)
	}
	return srv, err
}

func serverNotFound(id string) error {
	return ecs.Errorf(ecs.CodeServerNotFound, "The ECS does not exist.")
}

// ListServers lists the caller's servers.
func (s *Service) ListServers(ctx context.Context, c Caller, p store.ServerListParams) ([]ecs.Server, int, error) {
	p.ProjectID = c.ProjectID
	out, n, err := s.store.ServerList(ctx, p)
	if err != nil {
		return nil, 0, ecs.Wrap(ecs.CodeSystem, err, "Failed to query ECSs.")
	}
	for i := range out {
		s.withUserData(&out[i])
	}
	return out, n, nil
}

// GetJob returns a job of the caller's project with its sub-jobs.
func (s *Service) GetJob(ctx context.Context, c Caller, id string) (ecs.Job, error) {
	var j ecs.Job
	err := fmt.Errorf("job: %w", ecs.ErrNotFound)
	if ecs.ValidID(id) {
		j, err = s.store.JobGet(ctx, c.ProjectID, id)
	}
	if errors.Is(err, ecs.ErrNotFound) {
		return j, ecs.Errorf(ecs.CodeJobNotFound, "Failed to query system tasks: job %s does not exist.", safeID(id))
	}
	if err != nil {
		return j, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the job.")
	}
	return j, nil
}

// safeID shortens and sanitises an id taken from a request before it is
// echoed in a message.
func safeID(id string) string {
	if len(id) > 64 {
		id = id[:64]
	}
	b := []byte(id)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}
