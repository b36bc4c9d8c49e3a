package cloud_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/faulty"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/password"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

const (
	linuxImage   = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01"
	windowsImage = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e03"
	goodPass     = "Good-Pass123"
)

type bundle struct {
	svc    *cloud.Service
	drv    *sim.Driver
	st     *sqlite.Store
	caller cloud.Caller
	stop   func()
	newSvc func() *cloud.Service
	host   *cluster.Host
}

// testNode is the node id of every service a test starts: a new service
// on the same store is the same node restarted.
const testNode = "node-1"

// setup starts a service over SQLite and the simulator, with faults.
func setup(t *testing.T, simCfg sim.Config, faults ...faulty.Fault) *bundle {
	t.Helper()
	return setupWith(t, simCfg, nil, faults...)
}

// setupFaults is setup with the simulator's defaults and the faults of
// spec (faulty.Parse's syntax).
func setupFaults(t *testing.T, spec string) *bundle {
	t.Helper()
	faults, err := faulty.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return setup(t, sim.Config{}, faults...)
}

// setupWith is setup with the service's Config edited by mod, which may
// wrap its store.
func setupWith(t *testing.T, simCfg sim.Config, mod func(*cloud.Config), faults ...faulty.Fault) *bundle {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secret.LoadOrCreate(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	simCfg.Dir = filepath.Join(dir, "sim")
	drv, err := sim.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	fdrv, err := faulty.Wrap(drv, faults)
	if err != nil {
		t.Fatal(err)
	}
	host, err := cluster.Register(ctx, cluster.HostConfig{Store: st, Name: testNode, Driver: cluster.DriverSim,
		Capacity: cluster.SimCapacity, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := cloud.Config{Store: st, Driver: fdrv, Box: box, StepTimeout: time.Minute, NodeID: testNode, Host: testNode,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	svc := cloud.New(cfg)
	if err := svc.SeedImages(ctx); err != nil {
		t.Fatal(err)
	}
	cred, err := svc.NewCredential(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{svc: svc, drv: drv, st: st, caller: cloud.Caller{ProjectID: cred.ProjectID, UserID: cred.UserID},
		newSvc: func() *cloud.Service { return cloud.New(cfg) }, host: host}
	b.run(t)
	return b
}

// run starts the service's job engine until the test ends or stop.
func (b *bundle) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done, beat := make(chan struct{}), make(chan struct{})
	go func() { b.svc.Run(ctx); close(done) }()
	go func() { b.host.Run(ctx); close(beat) }()
	b.stop = func() { cancel(); <-done; <-beat }
	t.Cleanup(b.stop)
}

// start replaces the service by a new one on the same store and driver, as
// a restarted daemon would, and runs it.
func (b *bundle) start(t *testing.T) {
	b.svc = b.newSvc()
	b.run(t)
}

func (b *bundle) wait(t *testing.T, jobID string) ecs.Job {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // bounds a hang, not a speed requirement
	for time.Now().Before(deadline) {
		j, err := b.svc.GetJob(context.Background(), b.caller, jobID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Done() {
			return j
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish", jobID)
	return ecs.Job{}
}

// server creates one server from image, waits for it, and stops it when
// stopped is set.
func (b *bundle) server(t *testing.T, image string, stopped bool) ecs.Server {
	t.Helper()
	ctx := context.Background()
	job, ids, err := b.svc.CreateServers(ctx, b.caller, cloud.CreateInput{Name: "s", ImageRef: image, FlavorRef: "s6.small.1",
		VPCID: "vpc", SubnetIDs: []string{"sn"}, VolumeType: "SSD"})
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("create: %+v", j)
	}
	if stopped {
		job, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStop, ids, false)
		if err != nil {
			t.Fatal(err)
		}
		if j := b.wait(t, job); j.Status != ecs.JobSuccess {
			t.Fatalf("stop: %+v", j)
		}
	}
	srv, err := b.svc.GetServer(ctx, b.caller, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func str(s string) *string { return &s }

func code(err error) ecs.Code {
	if err == nil {
		return ecs.Code{}
	}
	return ecs.CodeOf(err)
}

func TestReinstallPasswordSwapsDisk(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	srv := b.server(t, linuxImage, true)
	job, err := b.svc.Reinstall(context.Background(), b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass)})
	if err != nil {
		t.Fatal(err)
	}
	j := b.wait(t, job)
	if j.Status != ecs.JobSuccess || j.Type != ecs.JobReinstallOS || j.ServerID != srv.ID {
		t.Fatalf("job = %+v", j)
	}
	after, _ := b.svc.GetServer(context.Background(), b.caller, srv.ID)
	if after.Status() != "SHUTOFF" || after.SystemVolumeID == srv.SystemVolumeID || after.SystemVolumeID == "" {
		t.Fatalf("after reinstall: status %s, volume %s (was %s)", after.Status(), after.SystemVolumeID, srv.SystemVolumeID)
	}
	if _, ok := b.drv.Disk(srv.SystemVolumeID); ok {
		t.Fatal("old disk still exists")
	}
	d, ok := b.drv.Disk(after.SystemVolumeID)
	if !ok || d.AttachedTo != srv.ID {
		t.Fatalf("new disk %+v, %v", d, ok)
	}
	if !password.Verify(d.PasswordHash, goodPass) {
		t.Fatalf("disk hash %q does not verify the password", d.PasswordHash)
	}
	if _, err := b.st.VolumeGet(context.Background(), srv.SystemVolumeID); !errors.Is(err, ecs.ErrNotFound) {
		t.Fatalf("old volume record: %v", err)
	}
	// The job's stored params hold no plain password.
	raw, _ := b.st.JobGet(context.Background(), b.caller.ProjectID, job)
	if containsBytes(raw.Params, goodPass) {
		t.Fatal("job params contain the plain password")
	}
}

func containsBytes(b []byte, s string) bool {
	return len(s) > 0 && len(b) >= len(s) && string(b) != "" && (func() bool {
		for i := 0; i+len(s) <= len(b); i++ {
			if string(b[i:i+len(s)]) == s {
				return true
			}
		}
		return false
	})()
}

func TestReinstallKeypairWithStop(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	kp, _, err := b.svc.CreateKeypair(ctx, b.caller, cloud.KeypairInput{Name: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := b.server(t, linuxImage, false)
	if _, err := b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{KeyName: str("k1")}); code(err) != ecs.CodeBadState {
		t.Fatalf("ACTIVE without mode: %v", err)
	}
	job, err := b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{KeyName: str("k1"), Mode: str(cloud.ModeWithStopServer)})
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("job %+v", j)
	}
	after, _ := b.svc.GetServer(ctx, b.caller, srv.ID)
	if after.Status() != "ACTIVE" || after.KeyName != "k1" {
		t.Fatalf("after: %s key %q", after.Status(), after.KeyName)
	}
	d, _ := b.drv.Disk(after.SystemVolumeID)
	if d.AuthorizedKeys != kp.PublicKey+"\n" {
		t.Fatalf("authorized_keys %q, want %q", d.AuthorizedKeys, kp.PublicKey)
	}
	if st, _ := b.drv.Server(srv.ID); st.Power != "running" {
		t.Fatalf("sim server power %q", st.Power)
	}
}

func TestReinstallRules(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	linux := b.server(t, linuxImage, true)
	win := b.server(t, windowsImage, true)
	if _, _, err := b.svc.CreateKeypair(ctx, b.caller, cloud.KeypairInput{Name: "k"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		server string
		in     cloud.ReinstallInput
		want   ecs.Code
	}{
		{"neither", linux.ID, cloud.ReinstallInput{}, ecs.CodeInvalidParam},
		{"empty strings", linux.ID, cloud.ReinstallInput{AdminPass: str(""), KeyName: str("")}, ecs.CodeInvalidParam},
		{"both", linux.ID, cloud.ReinstallInput{AdminPass: str(goodPass), KeyName: str("k")}, ecs.CodeInvalidParam},
		{"bad mode", linux.ID, cloud.ReinstallInput{AdminPass: str(goodPass), Mode: str("withStop")}, ecs.CodeInvalidParam},
		{"bad BYOL", linux.ID, cloud.ReinstallInput{AdminPass: str(goodPass), Metadata: map[string]string{"BYOL": "yes"}}, ecs.CodeInvalidParam},
		{"unknown key", linux.ID, cloud.ReinstallInput{KeyName: str("nope")}, ecs.CodeKeypairNotFound},
		{"other user's key", linux.ID, cloud.ReinstallInput{KeyName: str("k"), UserID: str("someone-else")}, ecs.CodeKeypairNotFound},
		{"short password", linux.ID, cloud.ReinstallInput{AdminPass: str("Ab1-")}, ecs.CodePasswordComplexity},
		{"windows admin", win.ID, cloud.ReinstallInput{AdminPass: str("Xadministrator1")}, ecs.CodePasswordComplexity},
		{"unknown server", "no-such-server", cloud.ReinstallInput{AdminPass: str(goodPass)}, ecs.CodeServerNotFound},
	}
	for _, tt := range tests {
		_, err := b.svc.Reinstall(ctx, b.caller, tt.server, tt.in)
		if code(err) != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.want)
		}
	}
	// Another project's server is not found.
	other := cloud.Caller{ProjectID: "other", UserID: b.caller.UserID}
	if _, err := b.svc.Reinstall(ctx, other, linux.ID, cloud.ReinstallInput{AdminPass: str(goodPass)}); code(err) != ecs.CodeServerNotFound {
		t.Errorf("other project: %v", err)
	}
	// The same password is fine on Linux.
	job, err := b.svc.Reinstall(ctx, b.caller, linux.ID, cloud.ReinstallInput{AdminPass: str("Xadministrator1")})
	if err != nil {
		t.Fatalf("linux accepts the Windows-forbidden password: %v", err)
	}
	b.wait(t, job)
}

func TestReinstallConcurrentYieldsOneJob(t *testing.T) {
	t.Parallel()
	// The job must outlive the 50 calls, however slowly they land.
	b := setupFaults(t, "apply_credentials=delay:2s")
	srv := b.server(t, linuxImage, true)
	var mu sync.Mutex
	var jobs []string
	codes := map[ecs.Code]int{}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job, err := b.svc.Reinstall(context.Background(), b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass)})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				jobs = append(jobs, job)
			} else {
				codes[code(err)]++
			}
		}()
	}
	wg.Wait()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs accepted, want 1 (refusals %v)", len(jobs), codes)
	}
	for c := range codes {
		if c != ecs.CodeTaskRunning && c != ecs.CodeBadState {
			t.Fatalf("unexpected refusal %s", c)
		}
	}
	// During the job every other operation is refused.
	ctx := context.Background()
	if _, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStart, []string{srv.ID}, false); code(err) != ecs.CodeTaskRunning {
		t.Errorf("start during reinstall: %v", err)
	}
	if _, err := b.svc.DeleteServers(ctx, b.caller, []string{srv.ID}); code(err) != ecs.CodeTaskRunning {
		t.Errorf("delete during reinstall: %v", err)
	}
	mid, _ := b.svc.GetServer(ctx, b.caller, srv.ID)
	if mid.Status() != "REBUILD" {
		t.Errorf("status during reinstall %s", mid.Status())
	}
	if j := b.wait(t, jobs[0]); j.Status != ecs.JobSuccess {
		t.Fatalf("job %+v", j)
	}
}

func TestReinstallFailureKeepsOldDiskAndRetrySucceeds(t *testing.T) {
	t.Parallel()
	b := setupFaults(t, "apply_credentials=fail:1")
	ctx := context.Background()
	srv := b.server(t, linuxImage, true)
	job, err := b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass)})
	if err != nil {
		t.Fatal(err)
	}
	j := b.wait(t, job)
	if j.Status != ecs.JobFail || j.ErrorCode == "" || j.FailReason == "" {
		t.Fatalf("job %+v", j)
	}
	after, _ := b.svc.GetServer(ctx, b.caller, srv.ID)
	if after.Status() != "ERROR" || !after.ReinstallFailed || after.SystemVolumeID != srv.SystemVolumeID {
		t.Fatalf("after failure: %s failed=%v volume %s (old %s)", after.Status(), after.ReinstallFailed, after.SystemVolumeID, srv.SystemVolumeID)
	}
	if d, ok := b.drv.Disk(srv.SystemVolumeID); !ok || d.AttachedTo != srv.ID {
		t.Fatalf("old disk %+v %v", d, ok)
	}
	// From ERROR only a reinstall is allowed, and it succeeds.
	if _, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStart, []string{srv.ID}, false); code(err) != ecs.CodeBadState {
		t.Errorf("start from ERROR: %v", err)
	}
	job, err = b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass)})
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("retry %+v", j)
	}
	after, _ = b.svc.GetServer(ctx, b.caller, srv.ID)
	if after.Status() != "SHUTOFF" || after.ReinstallFailed {
		t.Fatalf("after retry: %s failed=%v", after.Status(), after.ReinstallFailed)
	}
}

func TestBatchActionsAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	job, ids, err := b.svc.CreateServers(ctx, b.caller, cloud.CreateInput{Name: "m", ImageRef: linuxImage, FlavorRef: "s6.small.1",
		VPCID: "vpc", SubnetIDs: []string{"sn"}, VolumeType: "SSD", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	j := b.wait(t, job)
	if j.Status != ecs.JobSuccess || len(j.SubJobs) != 3 || j.Type != ecs.JobCreateServers {
		t.Fatalf("create job %+v", j)
	}
	if _, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStart, ids, false); code(err) != ecs.CodeBadState {
		t.Fatalf("start ACTIVE servers: %v", err)
	}
	if _, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStop, append(ids, "nope"), false); code(err) != ecs.CodeServerNotFound {
		t.Fatalf("stop with unknown id: %v", err)
	}
	// The refused batch changed nothing.
	for _, id := range ids {
		s, _ := b.svc.GetServer(ctx, b.caller, id)
		if s.TaskState != "" {
			t.Fatalf("server %s task %q after a refused batch", id, s.TaskState)
		}
	}
	job, err = b.svc.ServerAction(ctx, b.caller, cloud.ActionReboot, ids, true)
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("reboot %+v", j)
	}
	job, err = b.svc.DeleteServers(ctx, b.caller, ids)
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("delete %+v", j)
	}
	for _, id := range ids {
		if _, err := b.svc.GetServer(ctx, b.caller, id); code(err) != ecs.CodeServerNotFound {
			t.Fatalf("deleted server %s: %v", id, err)
		}
	}
	vols, _ := b.st.VolumeListAll(ctx)
	if len(vols) != 0 {
		t.Fatalf("%d volumes left after delete", len(vols))
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	base := cloud.CreateInput{Name: "n", ImageRef: linuxImage, FlavorRef: "s6.small.1", VPCID: "v", SubnetIDs: []string{"s"}, VolumeType: "SSD"}
	tests := []struct {
		name string
		mod  func(*cloud.CreateInput)
		want ecs.Code
	}{
		{"no name", func(c *cloud.CreateInput) { c.Name = "" }, ecs.CodeInvalidParam},
		{"bad flavor", func(c *cloud.CreateInput) { c.FlavorRef = "x" }, ecs.CodeFlavorNotFound},
		{"bad image", func(c *cloud.CreateInput) { c.ImageRef = "x" }, ecs.CodeImageNotFound},
		{"no vpc", func(c *cloud.CreateInput) { c.VPCID = "" }, ecs.CodeInvalidParam},
		{"no nics", func(c *cloud.CreateInput) { c.SubnetIDs = nil }, ecs.CodeInvalidParam},
		{"bad volume type", func(c *cloud.CreateInput) { c.VolumeType = "HDD" }, ecs.CodeInvalidParam},
		{"count too big", func(c *cloud.CreateInput) { c.Count = cloud.MaxBatch + 1 }, ecs.CodeTooManyServers},
		{"weak password", func(c *cloud.CreateInput) { c.AdminPass = "weak" }, ecs.CodePasswordComplexity},
		{"unknown key", func(c *cloud.CreateInput) { c.KeyName = "nope" }, ecs.CodeKeypairNotFound},
	}
	for _, tt := range tests {
		in := base
		tt.mod(&in)
		if _, _, err := b.svc.CreateServers(context.Background(), b.caller, in); code(err) != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
}

func TestInterruptedJobResumesAndStaleRunIsFenced(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, true)
	b.stop()
	job, err := b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass)})
	if err != nil {
		t.Fatal(err)
	}
	// A run of this node's previous process, which then died: it claimed
	// the job and owns the server, and its lease is still live.
	now := time.Now()
	claimed, err := b.st.JobClaim(ctx, store.JobClaimParams{Owner: testNode, Host: testNode, Now: now, Lease: time.Hour, Limit: 10})
	if err != nil || len(claimed) != 1 || claimed[0].ID != job {
		t.Fatalf("claim: %+v %v", claimed, err)
	}
	stale := store.Lease{Owner: testNode, Attempt: claimed[0].Attempts}
	if err := b.st.Write(ctx, func(tx store.Tx) error { return tx.ServerSetOwner(ctx, srv.ID, job, stale.Token()) }); err != nil {
		t.Fatal(err)
	}
	// The node, restarted, resumes it at once.
	b.start(t)
	if j := b.wait(t, job); j.Status != ecs.JobSuccess || j.Attempts != 2 {
		t.Fatalf("resumed job %+v", j)
	}
	// The dead run's writes are now fenced off.
	err = b.st.Write(ctx, func(tx store.Tx) error { return tx.ServerFence(ctx, srv.ID, stale.Token()) })
	if !errors.Is(err, ecs.ErrFenced) {
		t.Fatalf("stale fence: %v", err)
	}
	j := claimed[0]
	j.Status = ecs.JobFail
	err = b.st.Write(ctx, func(tx store.Tx) error { return tx.JobUpdate(ctx, &j, stale) })
	if !errors.Is(err, ecs.ErrFenced) {
		t.Fatalf("stale job update: %v", err)
	}
}

// withCaps is the simulator under another name and with other
// capabilities.
type withCaps struct {
	*sim.Driver
	name string
	caps compute.Capabilities
}

func (d withCaps) Name() string                       { return d.name }
func (d withCaps) Capabilities() compute.Capabilities { return d.caps }

// What a driver can do decides, not its name.
func TestCatalogImagesOnlyForTheSimulator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		caps compute.Capabilities
		want ecs.Code
	}{
		{"qemu", compute.Capabilities{}, ecs.CodeImageAttributes},
		{"sim", compute.Capabilities{}, ecs.CodeImageAttributes},
		{"qemu", compute.Capabilities{FilelessImages: true}, ecs.Code{}},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		ctx := context.Background()
		st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "db")})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		box, _ := secret.LoadOrCreate(filepath.Join(dir, "key"))
		drv, _ := sim.New(sim.Config{Dir: filepath.Join(dir, "sim")})
		if _, err := cluster.Register(ctx, cluster.HostConfig{Store: st, Name: "h", Driver: cluster.DriverSim,
			Capacity: cluster.SimCapacity}); err != nil {
			t.Fatal(err)
		}
		svc := cloud.New(cloud.Config{Store: st, Driver: withCaps{drv, tt.name, tt.caps}, Box: box, Host: "h",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err := svc.SeedImages(ctx); err != nil {
			t.Fatal(err)
		}
		cred, _ := svc.NewCredential(ctx, "p")
		_, _, err = svc.CreateServers(ctx, cloud.Caller{ProjectID: cred.ProjectID, UserID: cred.UserID}, cloud.CreateInput{Name: "n",
			ImageRef: linuxImage, FlavorRef: "s6.small.1", VPCID: "v", SubnetIDs: []string{"s"}, VolumeType: "SSD"})
		if code(err) != tt.want {
			t.Errorf("create from a file-less image on driver %q with %+v: %v, want %v", tt.name, tt.caps, err, tt.want)
		}
	}
}

// An id that fails ecs.ValidID is answered as an unknown one.
func TestMalformedIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, false)
	for _, id := range []string{"../x", "a b", ".", "-rf", "x,y", strings.Repeat("a", ecs.MaxIDLen+1)} {
		if _, err := b.svc.GetServer(ctx, b.caller, id); code(err) != ecs.CodeServerNotFound {
			t.Errorf("GetServer(%q): %v", id, err)
		}
		if _, err := b.svc.GetJob(ctx, b.caller, id); code(err) != ecs.CodeJobNotFound {
			t.Errorf("GetJob(%q): %v", id, err)
		}
		if _, err := b.svc.GetImage(ctx, id); code(err) != ecs.CodeImageNotFound {
			t.Errorf("GetImage(%q): %v", id, err)
		}
		if _, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStop, []string{srv.ID, id}, false); code(err) != ecs.CodeServerNotFound {
			t.Errorf("ServerAction(%q): %v", id, err)
		}
		if _, err := b.svc.DeleteServers(ctx, b.caller, []string{id}); code(err) != ecs.CodeServerNotFound {
			t.Errorf("DeleteServers(%q): %v", id, err)
		}
		if _, err := b.svc.Reinstall(ctx, b.caller, id, cloud.ReinstallInput{KeyName: str("k")}); code(err) != ecs.CodeServerNotFound {
			t.Errorf("Reinstall(%q): %v", id, err)
		}
	}
	// The valid server named beside them was left alone.
	if after, _ := b.svc.GetServer(ctx, b.caller, srv.ID); after.TaskState != ecs.TaskNone || after.Status() != "ACTIVE" {
		t.Fatalf("server after refused batches: %s %q", after.Status(), after.TaskState)
	}
}
