package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/jobs"
	"github.com/ecsproject/ecsd/internal/store"
)

// errInjected is the store error faultyStore injects.
var errInjected = errors.New("injected: disk I/O error")

// faultyStore wraps a Store: a Write that updates a job with failures left
// in its budget fails (and rolls back) with errInjected; renewals fail or
// report every lease lost while the matching switch is on.
type faultyStore struct {
	store.Store
	mu        sync.Mutex
	writeFail map[string]int // job id -> Writes left to fail
	renewFail bool
	renewLost bool
}

type touchTx struct {
	store.Tx
	jobs []string
}

func (t *touchTx) JobUpdate(ctx context.Context, j *ecs.Job, l store.Lease) error {
	t.jobs = append(t.jobs, j.ID)
	return t.Tx.JobUpdate(ctx, j, l)
}

func (f *faultyStore) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	return f.Store.Write(ctx, func(tx store.Tx) error {
		tt := &touchTx{Tx: tx}
		if err := fn(tt); err != nil {
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, id := range tt.jobs {
			if f.writeFail[id] > 0 {
				f.writeFail[id]--
				return errInjected
			}
		}
		return nil
	})
}

func (f *faultyStore) JobLeaseRenew(ctx context.Context, p store.JobLeaseRenewParams) ([]string, error) {
	f.mu.Lock()
	fail, lost := f.renewFail, f.renewLost
	f.mu.Unlock()
	switch {
	case fail:
		return nil, errInjected
	case lost:
		return nil, nil
	}
	return f.Store.JobLeaseRenew(ctx, p)
}

// TestTransientErrorsRetriedWhileOthersRun: a run whose commits fail twice
// with a store error is retried and finishes SUCCESS while 50 other jobs of
// the node keep running (they wait for it), and the errors are on its row.
func TestTransientErrorsRetriedWhileOthersRun(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	fs := &faultyStore{Store: st, writeFail: map[string]int{}}
	targetDone := make(chan struct{})
	var busyRuns sync.Map
	e := jobs.New(jobs.Config{Store: fs, Logger: quiet, Workers: 64, Lease: 2 * time.Second, Poll: 20 * time.Millisecond,
		Backoff: time.Millisecond, Handlers: map[string]jobs.Handler{
			"busy": func(ctx context.Context, r jobs.Run) error {
				n, _ := busyRuns.LoadOrStore(r.Job.ID, new(int))
				*n.(*int)++
				select {
				case <-targetDone:
				case <-ctx.Done():
					return ctx.Err()
				}
				return finish(fs)(ctx, r)
			},
			"target": func(ctx context.Context, r jobs.Run) error {
				if err := finish(fs)(ctx, r); err != nil {
					return err
				}
				close(targetDone)
				return nil
			},
		}})
	busy := insert(t, st, "busy", 50)
	target := insert(t, st, "target", 1)[0]
	fs.writeFail[target] = 2
	run(t, e)
	e.Notify()

	j := waitStatus(t, st, target, ecs.JobSuccess)
	if j.Attempts != 3 || j.Errors != 2 || !strings.Contains(j.LastError, errInjected.Error()) {
		t.Fatalf("target: attempts %d, errors %d, last error %q; want 3 attempts, 2 errors, the injected error",
			j.Attempts, j.Errors, j.LastError)
	}
	if j.ErrorCode != "" || j.FailReason != "" {
		t.Fatalf("target finished with code %q reason %q", j.ErrorCode, j.FailReason)
	}
	for _, id := range busy {
		b := waitStatus(t, st, id, ecs.JobSuccess)
		if n, _ := busyRuns.Load(id); b.Attempts != 1 || *n.(*int) != 1 {
			t.Fatalf("busy job %s ran %d times (attempts %d), want once", id, *n.(*int), b.Attempts)
		}
	}
}

// TestGiveUpAfterMaxErrors: a job that keeps failing with transient errors
// is given up after MaxErrors: its handler ends it FAIL with the
// client-safe reason, and the last cause stays on the row.
func TestGiveUpAfterMaxErrors(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	var mu sync.Mutex
	var runs []string // "work" or the give-up reason, in order
	e := jobs.New(jobs.Config{Store: st, Logger: quiet, MaxErrors: 3, Backoff: time.Millisecond, Poll: 20 * time.Millisecond,
		Handlers: map[string]jobs.Handler{"t": func(ctx context.Context, r jobs.Run) error {
			mu.Lock()
			defer mu.Unlock()
			if r.GiveUp != "" {
				runs = append(runs, r.GiveUp)
				j := r.Job
				j.Status, j.ErrorCode, j.FailReason, j.End = ecs.JobFail, ecs.CodeTaskFailed.Wire, r.GiveUp, time.Now()
				return st.Write(ctx, func(tx store.Tx) error { return tx.JobUpdate(ctx, &j, r.Lease) })
			}
			runs = append(runs, "work")
			return errors.New("qmp: timeout talking to /run/vm-7.sock")
		}}})
	id := insert(t, st, "t", 1)[0]
	run(t, e)
	e.Notify()
	j := waitStatus(t, st, id, ecs.JobFail)
	if j.FailReason != jobs.ReasonTooManyErrors || j.ErrorCode != ecs.CodeTaskFailed.Wire {
		t.Fatalf("job failed with %q %q, want %s %q", j.ErrorCode, j.FailReason, ecs.CodeTaskFailed, jobs.ReasonTooManyErrors)
	}
	if strings.Contains(j.FailReason, "qmp") || strings.Contains(j.FailReason, "/run") {
		t.Fatalf("client-facing reason leaks the cause: %q", j.FailReason)
	}
	if j.Errors != 3 || !strings.Contains(j.LastError, "qmp: timeout") {
		t.Fatalf("row records errors %d %q, want 3 and the cause", j.Errors, j.LastError)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"work", "work", "work", jobs.ReasonTooManyErrors}; !slices.Equal(runs, want) {
		t.Fatalf("runs = %v, want %v", runs, want)
	}
}

// TestGiveUpAfterMaxAttempts: a job claimed too many times (a crash loop)
// is given up without its work running again.
func TestGiveUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	id := insert(t, st, "t", 1)[0]
	for i := range 3 { // three processes that died mid-run
		now := time.Now()
		if got, err := st.JobClaim(context.Background(), store.JobClaimParams{Owner: "dead", Now: now, Lease: -time.Second, Limit: 1}); err != nil || len(got) != 1 {
			t.Fatalf("claim %d: %v %v", i, got, err)
		}
	}
	// The handler runs on the engine's goroutine; the test reads reasons
	// after the job's row says FAIL, which orders nothing in Go's memory
	// model: a mutex does.
	var mu sync.Mutex
	var reasons []string
	e := jobs.New(jobs.Config{Store: st, Logger: quiet, MaxAttempts: 3, Handlers: map[string]jobs.Handler{
		"t": func(ctx context.Context, r jobs.Run) error {
			mu.Lock()
			reasons = append(reasons, r.GiveUp)
			mu.Unlock()
			j := r.Job
			j.Status, j.FailReason, j.End = ecs.JobFail, r.GiveUp, time.Now()
			return st.Write(ctx, func(tx store.Tx) error { return tx.JobUpdate(ctx, &j, r.Lease) })
		}}})
	run(t, e)
	e.Notify()
	waitStatus(t, st, id, ecs.JobFail)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(reasons, []string{jobs.ReasonTooManyInterrupts}) {
		t.Fatalf("runs = %q, want one give-up run", reasons)
	}
}

// TestLostLeaseStopsRun: a run whose lease cannot be renewed stops before
// another node claims the job: none of its driver calls happens after the
// other node's run started.
func TestLostLeaseStopsRun(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(f *faultyStore)
	}{
		{"RenewalFails", func(f *faultyStore) { f.renewFail = true }},
		{"RowNoLongerOurs", func(f *faultyStore) { f.renewLost = true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			fs := &faultyStore{Store: st}
			c.set(fs)
			var mu sync.Mutex
			var calls []string // the driver's call log: which node called
			driver := func(ctx context.Context, node string) error {
				if err := ctx.Err(); err != nil {
					return err // a driver call refuses a cancelled context
				}
				mu.Lock()
				calls = append(calls, node)
				mu.Unlock()
				return nil
			}
			started := make(chan struct{})
			var once sync.Once
			// Node a stops at Lease/2, node b claims at Lease: the half
			// lease between them must outlast a loaded machine's
			// scheduling delays (-race, two cores shared).
			lease := time.Second
			a := jobs.New(jobs.Config{Store: fs, Owner: "node-a", Logger: quiet, Lease: lease, Poll: time.Hour,
				Handlers: map[string]jobs.Handler{"t": func(ctx context.Context, r jobs.Run) error {
					once.Do(func() { close(started) })
					for {
						if err := driver(ctx, "a"); err != nil {
							return err
						}
						time.Sleep(2 * time.Millisecond)
					}
				}}})
			id := insert(t, st, "t", 1)[0]
			stopA := run(t, a)
			a.Notify()
			<-started
			b := jobs.New(jobs.Config{Store: st, Owner: "node-b", Logger: quiet, Lease: time.Minute, Poll: 20 * time.Millisecond,
				Handlers: map[string]jobs.Handler{"t": func(ctx context.Context, r jobs.Run) error {
					if err := driver(ctx, "b"); err != nil {
						return err
					}
					return finish(st)(ctx, r)
				}}})
			run(t, b)
			j := waitStatus(t, st, id, ecs.JobSuccess)
			stopA()
			// (Node a may have claimed the job again meanwhile, and lost it
			// again: a later attempt than 2 is fine.)
			if j.Attempts < 2 || j.Errors != 0 {
				t.Fatalf("job: attempts %d errors %d (%q), want node b's attempt and no error recorded", j.Attempts, j.Errors, j.LastError)
			}
			mu.Lock()
			defer mu.Unlock()
			first := slices.Index(calls, "b")
			if first < 0 || slices.Contains(calls[first:], "a") {
				t.Fatalf("node a called the driver after node b took the job over: %v", compact(calls))
			}
		})
	}
}

// compact run-length encodes a call log.
func compact(calls []string) []string {
	var out []string
	for i := 0; i < len(calls); {
		j := i
		for j < len(calls) && calls[j] == calls[i] {
			j++
		}
		out = append(out, fmt.Sprintf("%s x%d", calls[i], j-i))
		i = j
	}
	return out
}

// TestRenewOnlyRunningJobs: the engine renews the leases of the runs it
// runs, not every RUNNING job of its owner: a job leased to the same owner
// that it is not running expires and is rescued by another node.
func TestRenewOnlyRunningJobs(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	started := make(chan struct{})
	release := make(chan struct{})
	lease := 3 * time.Second // long enough that renewals keep up on a loaded machine
	e := jobs.New(jobs.Config{Store: st, Owner: "node-a", Logger: quiet, Workers: 1, Lease: lease, Poll: time.Hour,
		Handlers: map[string]jobs.Handler{"t": func(ctx context.Context, r jobs.Run) error {
			close(started)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			return finish(st)(ctx, r)
		}}})
	running := insert(t, st, "t", 1)[0]
	run(t, e)
	e.Notify()
	<-started
	// A job of the same owner that this engine does not run (a run that
	// ended without settling it, say); the engine, full, claims nothing.
	if err := st.Write(ctx, func(tx store.Tx) error {
		return tx.JobInsert(ctx, &ecs.Job{ID: "idle", ProjectID: "p", Type: "t", Runnable: true, Created: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got, err := st.JobClaim(ctx, store.JobClaimParams{Owner: "node-a", Now: now, Lease: lease, Limit: 1}); err != nil || len(got) != 1 || got[0].ID != "idle" {
		t.Fatalf("claim of the idle job = %v, %v", got, err)
	}
	// Another node rescues the idle job once its lease expires, while the
	// engine's own run keeps its lease.
	deadline := time.Now().Add(time.Minute) // bounds a hang: the lease ends in 3 s
	for {
		now := time.Now()
		got, err := st.JobClaim(ctx, store.JobClaimParams{Owner: "node-b", Now: now, Lease: time.Hour, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			if len(got) != 1 || got[0].ID != "idle" {
				t.Fatalf("node-b claimed %v, want only the idle job (%s is running)", got, running)
			}
			break
		}
		if now.After(deadline) {
			t.Fatal("the idle job's lease was renewed: the engine renews jobs it does not run")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Several lease periods later the running job is still the engine's.
	time.Sleep(2 * lease)
	now = time.Now()
	if got, err := st.JobClaim(ctx, store.JobClaimParams{Owner: "node-b", Now: now, Lease: time.Hour, Limit: 10}); err != nil || len(got) != 0 {
		t.Fatalf("node-b claimed %v (%v) while node-a runs it", got, err)
	}
	close(release)
	if j := waitStatus(t, st, running, ecs.JobSuccess); j.Attempts != 1 {
		t.Fatalf("running job: attempts %d, want 1", j.Attempts)
	}
}

// TestStartReleasesOnlyOwnLeases: at start the engine takes back at once
// the jobs its owner held (a previous process of the node) and leaves other
// owners' leases alone.
func TestStartReleasesOnlyOwnLeases(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	ids := insert(t, st, "t", 2)
	now := time.Now()
	for i, owner := range []string{"node-a", "node-b"} {
		if got, err := st.JobClaim(ctx, store.JobClaimParams{Owner: owner, Now: now, Lease: time.Hour, Limit: 1}); err != nil || len(got) != 1 || got[0].ID != ids[i] {
			t.Fatalf("claim by %s = %v, %v", owner, got, err)
		}
	}
	e := jobs.New(jobs.Config{Store: st, Owner: "node-a", Logger: quiet, Lease: time.Hour, Poll: 20 * time.Millisecond,
		Handlers: map[string]jobs.Handler{"t": finish(st)}})
	run(t, e)
	if j := waitStatus(t, st, ids[0], ecs.JobSuccess); j.Attempts != 2 {
		t.Fatalf("own job: attempts %d, want 2", j.Attempts)
	}
	// The engine's first claim, made before its own job finished, would have
	// taken node-b's job too had the start-up release touched it.
	j, err := st.JobGet(ctx, "p", ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != ecs.JobRunning || j.Attempts != 1 {
		t.Fatalf("node-b's job = %s, attempt %d; want RUNNING, attempt 1 (untouched)", j.Status, j.Attempts)
	}
}
