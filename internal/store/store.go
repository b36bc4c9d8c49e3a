// Package store defines the persistence seam of the service: the Store
// interface, implemented by store/sqlite (the embedded default) and
// store/postgres (several nodes sharing one database), and checked by the
// conformance suite in store/storetest.
//
// Contract:
//   - The jobs table is the queue. JobClaim hands a runnable job to exactly
//     one worker at a time, under a lease (owner + attempt + expiry) that
//     the worker renews for the jobs it runs (JobLeaseRenew); a lease that
//     expires makes the job claimable again (JobClaim is the rescuer). A
//     run that fails transiently gives its job back with JobRetry, which
//     records the error and when the job may run again.
//   - The schema is versioned: Open applies pending migrations (see
//     store/migrate) before anything else.
//   - Every method that changes more than one row or table does so in one
//     transaction.
//   - Write makes a set of changes atomic: a state check, the change and the
//     job insert that caused it commit together or not at all, and two Write
//     calls never interleave on the same rows.
//   - Reads outside Write see committed data only.
//   - Lookups of a missing row return an error wrapping ecs.ErrNotFound; a
//     unique-key clash returns one wrapping ecs.ErrConflict; a fenced write
//     (the caller's owner token no longer matches) returns ecs.ErrFenced.
//   - Secrets are never given to the store in plain text: it stores sealed
//     secret keys and password hashes only.
//   - Liveness is judged by the store's clock. The time a heartbeat, an
//     election, a claim, a renewal or a retry is stamped and judged at is a
//     Now parameter that nodes leave zero: the store then takes its own
//     clock (PostgreSQL's, so that nodes sharing one database need not
//     agree on the time; the process's for SQLite), and terms and leases
//     are durations from it. Host.Age is a heartbeat's age by that clock.
//     Tests pass explicit times to replay a timeline.
//
// Details the service relies on (checked by storetest): JobInsert without a
// status stores INIT; ServerSetOwner on a missing server or one whose task
// is another job returns ecs.ErrFenced; ServerUpdate keeps the task owner
// while TaskJobID is set and clears it when TaskJobID is ""; ServerDelete
// and VolumeDelete of a missing row succeed, KeypairDelete of a missing key
// pair returns ecs.ErrNotFound; ServerList matches names with "." as the one
// wildcard (every other character literally), ANDs its filters, counts the
// matches before paging and lists the newest server first; a server's
// addresses are unique per project and subnet, and freed with it; a batch job is RUNNING once a sub-job is claimed
// and, once all finished, FAIL if any failed else SUCCESS, ending at the
// latest sub-job's end; JobDeleteFinished counts the sub-jobs it deletes.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// ErrUnavailable is wrapped by the errors of a store that cannot reach its
// database (a server restarting, a network cut): the same call may succeed
// later, and the API answers it with 503. An embedded store never returns
// it.
var ErrUnavailable = errors.New("store unavailable")

// Store is the service's database.
type Store interface {
	Reader
	ActionKeeper
	// Write runs fn in one write transaction. If fn returns an error the
	// transaction rolls back and Write returns that error. A store may run
	// fn again, on a new transaction, when the database aborted the
	// previous one only to resolve a collision with another writer (a
	// deadlock): fn must have no effect outside tx that a second run would
	// repeat (assigning results to variables is fine; appending is not).
	// After a Tx method returns an error, fn must return an error too: the
	// transaction may be unusable.
	Write(ctx context.Context, fn func(tx Tx) error) error

	// JobClaim leases up to limit runnable jobs to owner for p.Lease from
	// p.Now, marks them RUNNING, increments their attempts and returns them.
	// A job is runnable when it is INIT or RUNNING, its lease has expired or
	// was released (lease_expires < now), and its retry time has come
	// (run_at <= now). JobClaim is also the rescuer: a RUNNING job whose owner
	// stopped renewing its lease is claimed again once the lease expires.
	// The fencing token of a claim is Lease{Owner, Attempt: job.Attempts}.
	// A sub-job's first claim, and the tally of its parent batch, commit
	// together.
	// Only jobs whose host is p.Host, or "" (a job any node may run), are
	// claimed: a node runs the jobs of its own host's servers.
	JobClaim(ctx context.Context, p JobClaimParams) ([]ecs.Job, error)
	// JobLeaseRenew extends the leases of the given runs, each still
	// RUNNING under its lease, to p.Lease from p.Now; it touches no other
	// job. It returns the ids of the jobs it renewed: a run missing from
	// them has lost its job.
	JobLeaseRenew(ctx context.Context, p JobLeaseRenewParams) ([]string, error)
	// JobRetry ends a run that failed with a transient error: under the
	// run's lease (else ecs.ErrFenced) it records the error on the job
	// (errors + 1, last_error), releases the lease and makes the job
	// runnable again p.Delay after p.Now. It returns the job's error count.
	JobRetry(ctx context.Context, p JobRetryParams) (int, error)
	// JobLeaseReleaseOwner releases the leases of owner's RUNNING jobs, so
	// that they can be claimed at once: used at start-up by a node for the
	// jobs its previous process was running. Other owners' jobs keep their
	// leases. It returns how many leases it released.
	JobLeaseReleaseOwner(ctx context.Context, owner string) (int, error)
	// JobDeleteFinished deletes finished jobs that ended before t, with
	// their sub-jobs, and returns how many it deleted.
	JobDeleteFinished(ctx context.Context, before time.Time) (int, error)

	// ImageUpsert inserts or replaces a catalog image.
	ImageUpsert(ctx context.Context, img ecs.Image) error
	// ImageHostAdd records that host has the files of a catalog image (an
	// import on that host), at the given paths; a second call for the same
	// image and host replaces the paths.
	ImageHostAdd(ctx context.Context, h ImageHost) error

	// HostUpsert registers a host or updates its capacity, ratios,
	// advertise URL, driver and heartbeat (a zero Heartbeat is the store's
	// clock), keeping its allocations.
	HostUpsert(ctx context.Context, h Host) error
	// HostHeartbeat sets the heartbeat time of a host to at, or to the
	// store's clock when at is zero (ecs.ErrNotFound for an unknown host).
	HostHeartbeat(ctx context.Context, name string, at time.Time) error

	// LeaderElect makes p.Owner the leader p.Name for p.TTL from p.Now,
	// provided no other owner leads it at p.Now (its term ended before p.Now, or it
	// resigned); a leader calling it again extends its term. It reports
	// whether p.Owner leads after the call. Of several owners electing
	// themselves at once, at most one wins.
	LeaderElect(ctx context.Context, p LeaderElectParams) (bool, error)
	// LeaderResign ends owner's term as leader name, if it leads it, so
	// that another owner can be elected at once.
	LeaderResign(ctx context.Context, name, owner string) error
	// LeaderGet returns the leader name and the end of its term; a name
	// nobody was ever elected to returns an error wrapping ecs.ErrNotFound.
	LeaderGet(ctx context.Context, name string) (Leader, error)

	Close() error
}

// JobNotifier is implemented by stores shared by several processes (nodes),
// so that a job inserted through one wakes the job engines of all.
type JobNotifier interface {
	// JobListen calls wake after every commit, in any process, of a Write
	// that inserted a runnable job, and once each time it has (re)connected
	// to the database, since notifications sent meanwhile are lost. It
	// reconnects by itself and returns when ctx ends. wake must not block.
	JobListen(ctx context.Context, wake func()) error
}

// ChangeNotifier is implemented by stores shared by several processes
// (nodes), so that what a process keeps in memory (access keys, images) is
// dropped when another process changes it.
type ChangeNotifier interface {
	// ChangeListen calls changed with the topic (TopicCredentials,
	// TopicImages) after every commit, in any process, of a change to it,
	// and with "" each time it has (re)connected to the database, since
	// changes made meanwhile are not told of (drop everything). It
	// reconnects by itself and returns when ctx ends. changed must not
	// block.
	ChangeListen(ctx context.Context, changed func(topic string)) error
}

// Topics of ChangeNotifier.
const (
	TopicCredentials = "credentials"
	TopicImages      = "images"
)

// Reader holds the queries that API reads use.
type Reader interface {
	ActionReader

	CredentialGet(ctx context.Context, accessKey string) (SealedCredential, error)
	CredentialCount(ctx context.Context) (int, error)
	// CredentialList returns every credential, ordered by access key.
	CredentialList(ctx context.Context) ([]SealedCredential, error)

	ImageGet(ctx context.Context, id string) (ecs.Image, error)
	ImageList(ctx context.Context) ([]ecs.Image, error)

	ServerGet(ctx context.Context, projectID, id string) (ecs.Server, error)
	ServerList(ctx context.Context, p ServerListParams) ([]ecs.Server, int, error)
	// ServerListAll lists every server of every project (start-up recovery).
	ServerListAll(ctx context.Context) ([]ecs.Server, error)
	// ServerTagList lists the distinct tags (key and value) of a
	// project's servers, by key then value.
	ServerTagList(ctx context.Context, projectID string) ([]ecs.Tag, error)
	VolumeGet(ctx context.Context, id string) (ecs.Volume, error)
	VolumeListAll(ctx context.Context) ([]ecs.Volume, error)
	// VolumeList lists a project's volumes (system disks and data
	// volumes), oldest first.
	VolumeList(ctx context.Context, projectID string) ([]ecs.Volume, error)

	KeypairGet(ctx context.Context, projectID, userID, name string) (ecs.Keypair, error)
	KeypairList(ctx context.Context, projectID, userID string) ([]ecs.Keypair, error)

	// JobGet returns a job with its sub-jobs.
	JobGet(ctx context.Context, projectID, id string) (ecs.Job, error)

	// HostGet returns a host with its server count.
	HostGet(ctx context.Context, name string) (Host, error)
	// HostList lists every host, by name, with their server counts.
	HostList(ctx context.Context) ([]Host, error)
	// ImageHostList lists the hosts that have the files of an image, by
	// host name.
	ImageHostList(ctx context.Context, imageID string) ([]ImageHost, error)
}

// Tx is a write transaction. Every method acts inside it.
type Tx interface {
	ActionTx

	// Lock takes the lock named key until the transaction ends: Writes
	// (of any process on the database) that take the same key run one
	// after another, so that a check of rows that may not exist yet (is
	// there a credential? a host of this name?) and the insert it decides
	// are not raced by another Write doing the same.
	Lock(ctx context.Context, key string) error

	// ProjectInsert records a project.
	ProjectInsert(ctx context.Context, projectID, name string, created time.Time) error
	// CredentialInsert stores an access key with its sealed secret.
	CredentialInsert(ctx context.Context, c SealedCredential) error
	// CredentialCount counts the credentials, as the transaction sees
	// them (with Lock, the first start of a node decides by it).
	CredentialCount(ctx context.Context) (int, error)

	ServerGet(ctx context.Context, projectID, id string) (ecs.Server, error)
	// ServerGetByID reads a server of any project.
	ServerGetByID(ctx context.Context, id string) (ecs.Server, error)
	// ServerInsert inserts a server with its NICs (each holding its
	// address in its subnet: an address another NIC of the project's
	// subnet holds is a conflict, ecs.ErrConflict wrapped in an
	// *AddressTakenError) and its tags.
	ServerInsert(ctx context.Context, s *ecs.Server) error
	// ServerUpdate writes a server's columns; its NICs, tags and
	// reservation id are not changed by it.
	ServerUpdate(ctx context.Context, s *ecs.Server) error
	// ServerDelete deletes a server and frees what it held on its host
	// (its allocation, see HostAllocate), its addresses and its tags.
	ServerDelete(ctx context.Context, id string) error
	// ServerTagsSet replaces the tags of a server of a project
	// (ecs.ErrNotFound for a missing server).
	ServerTagsSet(ctx context.Context, projectID, serverID string, tags []ecs.Tag) error
	// SubnetEnsure records sn unless the project has a subnet of that id,
	// and returns the stored one (its VPC and CIDR are the first
	// recorded). Writes that ensure the same subnet run one after another
	// until they end: it is the lock of the subnet's address pool.
	SubnetEnsure(ctx context.Context, sn ecs.Subnet) (ecs.Subnet, error)
	// SubnetAddresses lists the addresses held in a project's subnet.
	SubnetAddresses(ctx context.Context, projectID, subnetID string) ([]string, error)
	// ServerFence returns ecs.ErrFenced unless the server's task owner is
	// token: the caller lost the job to another worker.
	ServerFence(ctx context.Context, serverID, token string) error
	// ServerSetOwner makes token the task owner of the server, provided the
	// server's task is the job jobID.
	ServerSetOwner(ctx context.Context, serverID, jobID, token string) error

	VolumeGet(ctx context.Context, id string) (ecs.Volume, error)
	VolumeUpsert(ctx context.Context, v *ecs.Volume) error
	// VolumeList lists a project's volumes, oldest first, as the
	// transaction sees them.
	VolumeList(ctx context.Context, projectID string) ([]ecs.Volume, error)
	VolumeDelete(ctx context.Context, id string) error

	KeypairGet(ctx context.Context, projectID, userID, name string) (ecs.Keypair, error)
	KeypairInsert(ctx context.Context, k *ecs.Keypair) error
	KeypairDelete(ctx context.Context, projectID, userID, name string) error

	JobInsert(ctx context.Context, j *ecs.Job) error
	// JobGetByID reads a job of any project, without sub-jobs.
	JobGetByID(ctx context.Context, id string) (ecs.Job, error)
	// JobUpdate writes a job's status, step, error, times and params,
	// provided the job is still leased to lease; else ecs.ErrFenced.
	JobUpdate(ctx context.Context, j *ecs.Job, lease Lease) error

	// HostList lists every host, as Reader.HostList but without their
	// server counts (Servers is 0: the create path has no use for them),
	// and without locking them: HostAllocate is what guards capacity.
	HostList(ctx context.Context) ([]Host, error)
	// ImageHostList lists the hosts that have an image's files.
	ImageHostList(ctx context.Context, imageID string) ([]ImageHost, error)
	// HostAllocate reserves a server's vCPUs, RAM and disk, and the disks
	// of a.Volumes, on their host, in one conditional update: the host's
	// allocation plus a's must stay within its capacity times its
	// allocation ratio, else nothing changes and the error wraps
	// ErrNoCapacity (ecs.ErrNotFound for an unknown host). a.Force skips
	// the check (adopting servers that exist). The server's part is
	// recorded under a.ServerID and freed by ServerDelete; each volume's
	// under its volume id, freed by VolumeDelete or AllocationFree. An id
	// that holds an allocation already is ecs.ErrConflict.
	HostAllocate(ctx context.Context, a Allocation) error
	// AllocationFree gives back to its host what server or volume id holds
	// (HostAllocate); holding nothing is fine.
	AllocationFree(ctx context.Context, id string) error
}

// ErrNoCapacity is returned by HostAllocate when the host has not enough
// free capacity left.
var ErrNoCapacity = errors.New("not enough free capacity on the host")

// JobClaimParams describes a JobClaim.
type JobClaimParams struct {
	// Owner is the lease owner (the node's host name).
	Owner string
	// Host is the claiming node's host: only jobs of that host or of no
	// host ("") are claimed.
	Host string
	// Now is when the claim is judged and its lease starts; zero is the
	// store's clock.
	Now time.Time
	// Lease is how long the claim lasts without renewal.
	Lease time.Duration
	Limit int
}

// JobLeaseRenewParams describes a JobLeaseRenew.
type JobLeaseRenewParams struct {
	Runs []Lease
	// Now is when the renewed leases start; zero is the store's clock.
	Now   time.Time
	Lease time.Duration
}

// Host is a node's host: its capacity, allocation ratios (as Nova has
// them: a host offers capacity*ratio), what servers hold of it, and its
// heartbeat.
type Host struct {
	Name   string
	VCPUs  int
	RAMMB  int64
	DiskGB int64
	// Allocation ratios (cpu 16, ram 1.5, disk 1.0 by default).
	CPURatio  float64
	RAMRatio  float64
	DiskRatio float64
	// Allocated totals on the host: of its servers (vCPUs and RAM) and of
	// its volumes (disk; see Allocation).
	AllocVCPUs  int
	AllocRAMMB  int64
	AllocDiskGB int64
	// Servers is how many servers the host holds (read-only).
	Servers   int
	Advertise string
	Driver    string
	Heartbeat time.Time
	// Age is how old Heartbeat was when the host was read, by the store's
	// clock (read-only; meaningless when Heartbeat is zero).
	Age     time.Duration
	Created time.Time
}

// Allocation is what one server (ServerID; "" for none) and volumes hold
// of their host. The service has every volume, system disk included, hold
// its own disk (Volumes) and a server only its vCPUs and RAM; a server's
// DiskGB is what rows made before that held (the migration moved it to
// the volumes).
type Allocation struct {
	ServerID string
	Host     string
	VCPUs    int
	RAMMB    int64
	DiskGB   int64
	// Volumes are volumes, each holding its disk on its own: it outlives
	// the server (a deleted server's data volumes stay on the host) and
	// is freed when the volume is deleted.
	Volumes []VolumeAllocation
	Force   bool
}

// VolumeAllocation is the disk one volume holds of its host.
type VolumeAllocation struct {
	VolumeID string
	DiskGB   int64
}

// Holders splits a by holder, as stores record it: the server's part
// (without Volumes) when there is a server, then one per volume, with the
// volume id as ServerID and only DiskGB set.
func (a Allocation) Holders() []Allocation {
	var out []Allocation
	if a.ServerID != "" {
		out = append(out, Allocation{ServerID: a.ServerID, Host: a.Host, VCPUs: a.VCPUs, RAMMB: a.RAMMB, DiskGB: a.DiskGB})
	}
	for _, v := range a.Volumes {
		out = append(out, Allocation{ServerID: v.VolumeID, Host: a.Host, DiskGB: v.DiskGB})
	}
	return out
}

// TotalDiskGB is the disk a holds in all: the server's and its volumes'.
func (a Allocation) TotalDiskGB() int64 {
	n := a.DiskGB
	for _, v := range a.Volumes {
		n += v.DiskGB
	}
	return n
}

// ImageHost says that a host has an image's files, at these paths (its
// own image store; empty for the simulator).
type ImageHost struct {
	ImageID string
	Host    string
	File    string
	Kernel  string
	Initrd  string
}

// Lease identifies one claim of a job: the claiming owner and the attempt
// number the claim produced. It is the fencing token of a job run. JobID is
// set where a lease is named apart from its job (JobLeaseRenew).
type Lease struct {
	Owner   string
	Attempt int
	JobID   string
}

// JobRetryParams describes a run that ended in a transient error.
type JobRetryParams struct {
	JobID string
	Lease Lease
	// Error is the cause, kept on the row for operators (never for clients).
	Error string
	// The job becomes runnable again Delay after Now (zero: the store's
	// clock).
	Now   time.Time
	Delay time.Duration
}

// Token is the lease as a string, stored as a server's task owner.
func (l Lease) Token() string { return l.Owner + "#" + strconv.Itoa(l.Attempt) }

// LeaderElectParams is one attempt to be elected or re-elected leader.
type LeaderElectParams struct {
	// Name is what is led ("upkeep").
	Name  string
	Owner string
	// Now is when the election is judged (a term that ended before it is
	// over) and the term won or extended starts; zero is the store's clock.
	Now time.Time
	// TTL is the length of the term.
	TTL time.Duration
}

// Leader is the holder of a leadership and the end of its term. Owner is
// "" after a resignation.
type Leader struct {
	Name    string
	Owner   string
	Expires time.Time
}

// SealedCredential is a credential whose secret key is sealed (encrypted).
type SealedCredential struct {
	AccessKey    string
	SealedSecret []byte
	ProjectID    string
	UserID       string
	Created      time.Time
}

// AddressTakenError is the conflict of ServerInsert when a NIC's address
// is already held in its subnet.
type AddressTakenError struct {
	SubnetID, IP string
}

func (e *AddressTakenError) Error() string {
	return "address " + e.IP + " is taken in subnet " + e.SubnetID
}

// Unwrap makes the error an ecs.ErrConflict.
func (e *AddressTakenError) Unwrap() error { return ecs.ErrConflict }

// ServerListParams filters and pages a server list. Every filter given
// must hold (AND); the list is the newest server first.
type ServerListParams struct {
	ProjectID string
	// Name matches names that contain it, where "." stands for any one
	// character and every other character for itself; "" for any.
	Name string
	// Status is the API status, "" for any.
	Status string
	// FlavorID is an exact flavor id, "" for any.
	FlavorID string
	// IP matches servers with an address containing it ("." any one
	// character, as Name); IPEq one with exactly that address.
	IP, IPEq string
	// Tags: the server has every one of these tags; NotTags: it does not
	// have all of these. Each is "key" (any value) or "key=value".
	Tags, NotTags []string
	// TagMatches: the server has every key, each with one of its values
	// (any value when none is given); NotTagMatches: it does not match
	// all of these (ListServersByTag's tags and not_tags).
	TagMatches, NotTagMatches []TagMatch
	// NameContains matches names that contain it, every character for
	// itself ("" for any).
	NameContains string
	// ServerIDs, when not empty, keeps the servers of these ids only.
	ServerIDs []string
	// ReservationID keeps the servers of one create request.
	ReservationID string
	// Marker, when set, is the id of the last server of the previous
	// page: the page starts after it (ecs.ErrNotFound when the project
	// has no such server). The count ignores it.
	Marker string
	Offset int // rows to skip (after the marker)
	Limit  int // 0 means no limit
}

// TagFilter is one item of ServerListParams.Tags: a key, and a value
// unless any value matches.
type TagFilter struct {
	Key, Value string
	AnyValue   bool
}

// TagMatch is one item of ServerListParams.TagMatches: a key, and the
// values of which the server's must be one (any value when empty).
type TagMatch struct {
	Key    string
	Values []string
}

// ParseTagFilter splits "key=value" (or "key") into a TagFilter.
func ParseTagFilter(s string) TagFilter {
	k, v, ok := strings.Cut(s, "=")
	return TagFilter{Key: k, Value: v, AnyValue: !ok}
}

// GlobPattern turns a ServerListParams name or IP pattern into an SQLite
// GLOB pattern matching the strings that contain it: "." becomes "?" (any
// one character), GLOB's own special characters stand for themselves.
func GlobPattern(p string) string { return globContaining(p, true) }

// GlobLiteral is the SQLite GLOB pattern of the strings that contain s,
// every character of s standing for itself.
func GlobLiteral(s string) string { return globContaining(s, false) }

// globContaining is the GLOB pattern of the strings that contain s; with
// dotAny a "." in s stands for any one character.
func globContaining(s string, dotAny bool) string {
	var b strings.Builder
	b.WriteByte('*')
	for _, r := range s {
		switch {
		case r == '.' && dotAny:
			b.WriteByte('?')
		case r == '*' || r == '?' || r == '[':
			b.WriteByte('[')
			b.WriteRune(r)
			b.WriteByte(']')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('*')
	return b.String()
}

// LikeLiteral is the LIKE pattern (escape character '\') of the strings
// that contain s, every character of s standing for itself.
func LikeLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('%')
	for _, r := range s {
		if r == '%' || r == '_' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('%')
	return b.String()
}

// PatternPieces returns the pieces of a ServerListParams name or IP
// pattern that every matching string contains literally, in order: the
// pattern split at "." (any one character), without empty pieces. A piece
// holds none of GLOB's and LIKE's special characters ("*?[%_\\"): they
// split it too, so that the pieces can be put in either kind of pattern as
// they are.
func PatternPieces(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return strings.ContainsRune(".*?[]%_\\", r) })
}

// LikePattern turns a ServerListParams name or IP pattern into a LIKE
// pattern (escape character '\') matching the strings that contain it:
// "." becomes "_" (any one character), LIKE's own special characters stand
// for themselves.
func LikePattern(p string) string {
	var b strings.Builder
	b.WriteByte('%')
	for _, r := range p {
		switch r {
		case '.':
			b.WriteByte('_')
		case '%', '_', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('%')
	return b.String()
}

// EncodeServerJSON returns the JSON text kept on a server's row for its
// NICs and its tags ("" for none).
func EncodeServerJSON(s *ecs.Server) (nics, tags string) {
	if len(s.NICs) > 0 {
		b, _ := json.Marshal(s.NICs) // strings only: cannot fail
		nics = string(b)
	}
	if len(s.Tags) > 0 {
		b, _ := json.Marshal(s.Tags)
		tags = string(b)
	}
	return nics, tags
}

// DecodeServerJSON sets a server's NICs and tags from the JSON text of its
// row.
func DecodeServerJSON(s *ecs.Server, nics, tags string) error {
	if nics != "" {
		if err := json.Unmarshal([]byte(nics), &s.NICs); err != nil {
			return fmt.Errorf("server %s nics: %w", s.ID, err)
		}
	}
	if tags != "" {
		if err := json.Unmarshal([]byte(tags), &s.Tags); err != nil {
			return fmt.Errorf("server %s tags: %w", s.ID, err)
		}
	}
	return nil
}
