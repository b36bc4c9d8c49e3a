package crash

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
)

const (
	servers = 30 // created in one batch
	rounds  = 5  // kill -9 and restart this many times
	// jobsDeadline bounds the wait for jobs after a start or restart; it
	// is a timeout, not an assertion on speed.
	jobsDeadline = time.Minute
)

// TestKillDuringReinstalls SIGKILLs ecsd again and again while reinstalls
// (password and key pair, plain and withStopServer) and start/stop batches
// run on 30 servers, restarting it on the same data dir and port each
// time; then every job must finish SUCCESS and every server and disk be
// exactly as the jobs, applied once each, leave them.
func TestKillDuringReinstalls(t *testing.T) {
	t.Parallel()
	seed := *seedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (replay: go test ./test/crash -run TestKillDuringReinstalls -crash.seed=%d -v)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// A latency on every driver call keeps each job in flight for a few
	// hundred milliseconds, so that the kills land mid-job.
	latency := []string{"--sim-latency", "30ms"}
	d := newDaemon(t)
	d.start(latency...)
	c := d.Client()
	imageID := linuxImage(ctx, t, c)
	keys := newKeypairs(ctx, t, c, 3)

	createJob, ids, err := c.CreateServers(ctx, client.CreateServerRequest{
		Name: "crash", ImageRef: imageID, FlavorRef: "s6.small.1", VPCID: "vpc-crash",
		NICs: []client.NIC{{SubnetID: "subnet-crash"}}, RootVolume: client.RootVolume{VolumeType: "SSD"}, Count: servers,
	})
	if err != nil {
		t.Fatalf("create %d servers: %v", servers, err)
	}
	if len(ids) != servers {
		t.Fatalf("create returned %d server ids, want %d", len(ids), servers)
	}
	mustSucceed(ctx, t, c, createJob)
	stopJob, err := c.StopServers(ctx, false, ids...)
	if err != nil {
		t.Fatalf("stop the new servers: %v", err)
	}
	mustSucceed(ctx, t, c, stopJob)
	model := map[string]*want{}
	for _, id := range ids {
		model[id] = &want{imageID: imageID, boots: 1}
	}

	var submitted []string // every job id the daemon gave the test
	var pending []string   // those not yet seen finished
	interrupted := 0       // jobs seen unfinished right after a restart
	for round := 1; round <= rounds; round++ {
		list, err := allServers(ctx, c)
		if err != nil {
			t.Fatalf("round %d: list servers: %v", round, err)
		}
		p := plan(rng, list, keys)
		jobIDs, errs := p.submit(ctx, c)
		for _, err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		p.apply(model, jobIDs)
		submitted = append(submitted, jobIDs.all()...)
		pending = append(pending, jobIDs.all()...)

		wait := time.Duration(20+rng.IntN(281)) * time.Millisecond
		time.Sleep(wait)
		d.restart(latency...)

		var still []string
		for _, id := range pending {
			j, err := c.ShowJob(ctx, id)
			if err != nil {
				t.Fatalf("round %d: after the restart, job %s: %v", round, id, err)
			}
			if !jobDone(j) {
				still = append(still, id)
			}
		}
		interrupted += len(still)
		t.Logf("round %d: %s; killed %v after the last submission; %d jobs unfinished after the restart",
			round, p, wait, len(still))
		pending = still
	}

	restarted := d.Started()
	wctx, wcancel := context.WithTimeout(ctx, jobsDeadline)
	jobs, err := waitJobs(wctx, c, submitted)
	wcancel()
	recovery := time.Since(restarted)
	if err != nil {
		var stuck []string
		for _, id := range submitted {
			if j, ok := jobs[id]; ok && !jobDone(j) {
				stuck = append(stuck, fmt.Sprintf("%s %s %s", id, j.Type, j.Status))
			}
		}
		t.Fatalf("after the last restart: %v; unfinished: %v", err, stuck)
	}
	t.Logf("recovery: %v from the last restart (process start) until all %d jobs had finished", recovery, len(submitted))
	if interrupted == 0 {
		t.Errorf("no job was unfinished after any of the %d restarts: the kills landed between jobs and the test proved nothing", rounds)
	}

	checkJobs(t, jobs, submitted)
	checkServers(ctx, t, c, d.DataDir(), model)
}

// TestKillWhileStepHangs kills ecsd while two reinstalls hang in
// create_disk (one plain with a password, one withStopServer with a key
// pair, whose server the job has already stopped) and restarts it without
// the fault: both jobs must resume and finish SUCCESS.
func TestKillWhileStepHangs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	d := newDaemon(t)
	d.start()
	c := d.Client()
	imageID := linuxImage(ctx, t, c)
	key := newKeypairs(ctx, t, c, 1)[0]
	createJob, ids, err := c.CreateServers(ctx, client.CreateServerRequest{
		Name: "hang", ImageRef: imageID, FlavorRef: "s6.small.1", VPCID: "vpc-crash",
		NICs: []client.NIC{{SubnetID: "subnet-crash"}}, RootVolume: client.RootVolume{VolumeType: "SSD"}, Count: 2,
	})
	if err != nil || len(ids) != 2 {
		t.Fatalf("create 2 servers: ids %v, err %v", ids, err)
	}
	mustSucceed(ctx, t, c, createJob)
	stopped, running := ids[0], ids[1]
	stopJob, err := c.StopServers(ctx, true, stopped)
	if err != nil {
		t.Fatalf("stop %s: %v", stopped, err)
	}
	mustSucceed(ctx, t, c, stopJob)

	d.restart("--sim-faults", "create_disk=hang")
	pass := "Hang-Test_2024x"
	passJob, err := c.ReinstallServer(ctx, stopped, client.ReinstallOptions{AdminPass: pass})
	if err != nil {
		t.Fatalf("reinstall %s with a password: %v", stopped, err)
	}
	keyJob, err := c.ReinstallServer(ctx, running, client.ReinstallOptions{KeyName: key.Name, Mode: client.ModeWithStopServer})
	if err != nil {
		t.Fatalf("reinstall %s withStopServer with key pair %s: %v", running, key.Name, err)
	}
	// Both jobs pass their first checkpoint (the stop) and then block in
	// create_disk, which hangs until its context ends.
	for _, id := range ids {
		waitTask(ctx, t, c, id, "rebuild_block_device_mapping")
	}
	for _, id := range []string{passJob, keyJob} {
		if j, err := c.ShowJob(ctx, id); err != nil || j.Status != client.JobRunning {
			t.Fatalf("job %s while create_disk hangs: status %q, err %v; want RUNNING", id, j.Status, err)
		}
	}

	d.restart() // kill -9, and no fault any more
	restarted := d.Started()
	wctx, wcancel := context.WithTimeout(ctx, jobsDeadline)
	jobs, err := waitJobs(wctx, c, []string{passJob, keyJob})
	wcancel()
	if err != nil {
		t.Fatalf("after the restart without the fault: %v; last seen %+v", err, jobs)
	}
	t.Logf("recovery: %v from the restart until both jobs had finished", time.Since(restarted))
	checkJobs(t, jobs, []string{passJob, keyJob})
	checkServers(ctx, t, c, d.DataDir(), map[string]*want{
		stopped: {imageID: imageID, boots: 1, password: pass, reinstall: passJob},
		running: {imageID: imageID, active: true, boots: 2, keyName: key.Name, publicKey: key.PublicKey, reinstall: keyJob},
	})
}

// TestKillThenFailKeepsOldDisk kills ecsd while a reinstall hangs in
// attach_disk (the old disk already detached), and restarts it with the
// next attach failing once: the resumed job must end FAIL with a reason and
// the server ERROR with its old system disk attached again, the unused new
// disk gone; then a reinstall without faults must succeed from ERROR.
func TestKillThenFailKeepsOldDisk(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	d := newDaemon(t)
	d.start()
	c := d.Client()
	imageID := linuxImage(ctx, t, c)
	createJob, ids, err := c.CreateServers(ctx, client.CreateServerRequest{
		Name: "fail", ImageRef: imageID, FlavorRef: "s6.small.1", VPCID: "vpc-crash",
		NICs: []client.NIC{{SubnetID: "subnet-crash"}}, RootVolume: client.RootVolume{VolumeType: "SSD"},
	})
	if err != nil || len(ids) != 1 {
		t.Fatalf("create a server: ids %v, err %v", ids, err)
	}
	mustSucceed(ctx, t, c, createJob)
	id := ids[0]
	stopJob, err := c.StopServers(ctx, false, id)
	if err != nil {
		t.Fatalf("stop %s: %v", id, err)
	}
	mustSucceed(ctx, t, c, stopJob)
	before, err := c.ShowServer(ctx, id)
	if err != nil || len(before.VolumesAttached) != 1 {
		t.Fatalf("server %s before the reinstall: %+v, err %v", id, before.VolumesAttached, err)
	}
	oldVol := before.VolumesAttached[0].ID

	d.restart("--sim-faults", "attach_disk=hang")
	failed, err := c.ReinstallServer(ctx, id, client.ReinstallOptions{AdminPass: "Fail-Once_2024x"})
	if err != nil {
		t.Fatalf("reinstall %s: %v", id, err)
	}
	// The job has made the new disk (checkpoint 2) and detached the old
	// one when the simulator's server file names no disk.
	waitTask(ctx, t, c, id, "rebuild_spawning")
	waitSimDisk(ctx, t, d.DataDir(), id, "")
	d.restart("--faults", "attach_disk=fail:1") // the current name of --sim-faults

	wctx, wcancel := context.WithTimeout(ctx, jobsDeadline)
	jobs, err := waitJobs(wctx, c, []string{failed})
	wcancel()
	if err != nil {
		t.Fatalf("after the restart with attach_disk=fail:1: %v", err)
	}
	if j := jobs[failed]; j.Status != client.JobFail || j.ErrorCode == "" || j.FailReason == "" {
		t.Errorf("job %s: status %s, error_code %q, fail_reason %q; want FAIL with a code and a reason (the attach failed)",
			failed, j.Status, j.ErrorCode, j.FailReason)
	}
	srv, err := c.ShowServer(ctx, id)
	if err != nil {
		t.Fatalf("show %s: %v", id, err)
	}
	if srv.Status != "ERROR" || srv.TaskState != nil {
		t.Errorf("server %s after the failed reinstall: status %s, task_state %q; want ERROR, null", id, srv.Status, srv.Task())
	}
	if len(srv.VolumesAttached) != 1 || srv.VolumesAttached[0].ID != oldVol {
		t.Errorf("server %s after the failed reinstall: volumes %+v, want its old system disk %s", id, srv.VolumesAttached, oldVol)
	}
	var ss simServer
	if err := readJSON(filepath.Join(d.DataDir(), "sim", "servers", id+".json"), &ss); err != nil || ss.DiskID != oldVol {
		t.Errorf("server %s after the failed reinstall: the simulator has disk %q (err %v), want the old disk %s", id, ss.DiskID, err, oldVol)
	}

	d.restart() // no faults
	pass := "Second-Try_2024x"
	again, err := c.ReinstallServer(ctx, id, client.ReinstallOptions{AdminPass: pass})
	if err != nil {
		t.Fatalf("reinstall %s from ERROR after a failed reinstall: %v", id, err)
	}
	wctx, wcancel = context.WithTimeout(ctx, jobsDeadline)
	jobs, err = waitJobs(wctx, c, []string{again})
	wcancel()
	if err != nil {
		t.Fatalf("second reinstall: %v", err)
	}
	checkJobs(t, jobs, []string{again})
	checkServers(ctx, t, c, d.DataDir(), map[string]*want{
		id: {imageID: imageID, boots: 1, password: pass, reinstall: again},
	})
}

// waitSimDisk polls the simulator's server file until it names diskID as
// the server's system disk ("" for none).
func waitSimDisk(ctx context.Context, t *testing.T, dataDir, serverID, diskID string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, jobsDeadline)
	defer cancel()
	path := filepath.Join(dataDir, "sim", "servers", serverID+".json")
	for {
		var ss simServer
		err := readJSON(path, &ss)
		if err == nil && ss.DiskID == diskID {
			return
		}
		if wctx.Err() != nil {
			t.Fatalf("simulator server %s never had disk %q (last: %q, err %v)", serverID, diskID, ss.DiskID, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// roundPlan is what one round submits: for each idle server one action.
type roundPlan struct {
	reinstalls []reinstall
	start      []string // SHUTOFF servers to start, one batch
	stop       []string // ACTIVE servers to stop, one batch
	hardStop   bool
}

type reinstall struct {
	serverID string
	opt      client.ReinstallOptions
	key      client.Keypair // when opt.KeyName is set
	restart  bool           // the server is ACTIVE and the mode withStopServer
}

// plan picks an action for every idle server: most SHUTOFF servers are
// reinstalled (password or key pair, some with the withStopServer mode
// that a stopped server also accepts) and the rest started; most ACTIVE
// servers are reinstalled withStopServer and the rest stopped.
func plan(rng *rand.Rand, list []client.Server, keys []client.Keypair) roundPlan {
	var p roundPlan
	p.hardStop = rng.IntN(2) == 0
	for _, s := range list {
		if s.TaskState != nil {
			continue // still busy with a job of an earlier round
		}
		active := s.Status == "ACTIVE"
		if s.Status != "SHUTOFF" && !active {
			continue // checked at the end
		}
		if rng.IntN(10) < 3 {
			if active {
				p.stop = append(p.stop, s.ID)
			} else {
				p.start = append(p.start, s.ID)
			}
			continue
		}
		r := reinstall{serverID: s.ID}
		if active || rng.IntN(4) == 0 {
			r.opt.Mode = client.ModeWithStopServer
			r.restart = active
		}
		if rng.IntN(2) == 0 {
			r.key = keys[rng.IntN(len(keys))]
			r.opt.KeyName = r.key.Name
		} else {
			r.opt.AdminPass = newPassword(rng)
		}
		p.reinstalls = append(p.reinstalls, r)
	}
	return p
}

func (p roundPlan) String() string {
	keys, withStop := 0, 0
	for _, r := range p.reinstalls {
		if r.opt.KeyName != "" {
			keys++
		}
		if r.restart {
			withStop++
		}
	}
	return fmt.Sprintf("%d reinstalls (%d with a key pair, %d of ACTIVE servers withStopServer), %d starts, %d stops",
		len(p.reinstalls), keys, withStop, len(p.start), len(p.stop))
}

// roundJobs are the job ids a round was given; "" where a submission was
// refused.
type roundJobs struct {
	reinstalls  []string // by index of roundPlan.reinstalls
	start, stop string
}

func (r roundJobs) all() []string {
	var out []string
	for _, id := range append(slices.Clone(r.reinstalls), r.start, r.stop) {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// submit sends the round's requests, a few at a time. Every server it
// names was idle when listed and nothing else acts on it, so a refusal is
// an error.
func (p roundPlan) submit(ctx context.Context, c *client.Client) (roundJobs, []error) {
	out := roundJobs{reinstalls: make([]string, len(p.reinstalls))}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for i, r := range p.reinstalls {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			id, err := c.ReinstallServer(ctx, r.serverID, r.opt)
			if err != nil {
				fail(fmt.Errorf("reinstall idle server %s (key pair %q, mode %q): %w", r.serverID, r.opt.KeyName, r.opt.Mode, err))
				return
			}
			out.reinstalls[i] = id
		})
	}
	if len(p.start) > 0 {
		wg.Go(func() {
			id, err := c.StartServers(ctx, p.start...)
			if err != nil {
				fail(fmt.Errorf("start idle servers %v: %w", p.start, err))
			}
			out.start = id
		})
	}
	if len(p.stop) > 0 {
		wg.Go(func() {
			id, err := c.StopServers(ctx, p.hardStop, p.stop...)
			if err != nil {
				fail(fmt.Errorf("stop idle servers %v: %w", p.stop, err))
			}
			out.stop = id
		})
	}
	wg.Wait()
	return out, errs
}

// apply records in the model what the accepted jobs will do once each.
// Jobs on one server run in the order they were accepted, since a server
// accepts a job only when it is idle.
func (p roundPlan) apply(model map[string]*want, jobs roundJobs) {
	for i, r := range p.reinstalls {
		if jobs.reinstalls[i] == "" {
			continue
		}
		w := model[r.serverID]
		w.reinstall = jobs.reinstalls[i]
		w.password, w.keyName, w.publicKey = r.opt.AdminPass, r.key.Name, r.key.PublicKey
		if r.restart {
			w.boots++ // stopped first, started again at the end
		}
	}
	if jobs.start != "" {
		for _, id := range p.start {
			model[id].active = true
			model[id].boots++
		}
	}
	if jobs.stop != "" {
		for _, id := range p.stop {
			model[id].active = false
		}
	}
}

// newPassword returns a valid admin password: 12 to 20 characters with all
// four classes.
func newPassword(rng *rand.Rand) string {
	classes := []string{"ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "0123456789", "!@$%^-_=+[{}]:,./?~#*"}
	var b []byte
	for _, cl := range classes {
		b = append(b, cl[rng.IntN(len(cl))])
	}
	all := strings.Join(classes, "")
	for n := 8 + rng.IntN(9); n > 0; n-- {
		b = append(b, all[rng.IntN(len(all))])
	}
	rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	return string(b)
}

func linuxImage(ctx context.Context, t *testing.T, c *client.Client) string {
	t.Helper()
	images, err := c.ListImages(ctx)
	if err != nil {
		t.Fatalf("list images: %v", err)
	}
	for _, img := range images {
		// Host-side injection: the crash tests reinstall with v1.
		if img.OSType == "Linux" && img.Status == "active" && img.Injection == "supported" {
			return img.ID
		}
	}
	t.Fatalf("no active Linux image with host-side injection in %+v", images)
	return ""
}

func newKeypairs(ctx context.Context, t *testing.T, c *client.Client, n int) []client.Keypair {
	t.Helper()
	var out []client.Keypair
	for i := range n {
		kp, err := c.CreateKeypair(ctx, fmt.Sprintf("crash-key-%d", i))
		if err != nil {
			t.Fatalf("create key pair: %v", err)
		}
		if kp.PublicKey == "" {
			t.Fatalf("key pair %s has no public key", kp.Name)
		}
		out = append(out, kp)
	}
	return out
}

// mustSucceed waits for a job and fails the test unless it ends SUCCESS.
func mustSucceed(ctx context.Context, t *testing.T, c *client.Client, id string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, jobsDeadline)
	defer cancel()
	jobs, err := waitJobs(wctx, c, []string{id})
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	if j := jobs[id]; !jobSucceeded(j) {
		code, reason := j.Failure()
		t.Fatalf("job %s (%s) ended %s: %s %s", id, j.Type, j.Status, code, reason)
	}
}

// waitTask polls a server until its task_state is task.
func waitTask(ctx context.Context, t *testing.T, c *client.Client, id, task string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, jobsDeadline)
	defer cancel()
	for {
		s, err := c.ShowServer(wctx, id)
		if err == nil && s.Task() == task {
			return
		}
		if wctx.Err() != nil {
			t.Fatalf("server %s never reached task_state %q (last: status %s, task_state %q, err %v)", id, task, s.Status, s.Task(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
