package jobs_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/jobs"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func insert(t *testing.T, st store.Store, typ string, n int) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	err := st.Write(ctx, func(tx store.Tx) error {
		for i := range ids {
			ids[i] = fmt.Sprintf("%s-%d", typ, i)
			if err := tx.JobInsert(ctx, &ecs.Job{ID: ids[i], ProjectID: "p", Type: typ, Runnable: true, Created: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// finish is a handler body that ends the job SUCCESS under its lease.
func finish(st store.Store) jobs.Handler {
	return func(ctx context.Context, r jobs.Run) error {
		j := r.Job
		j.Status, j.End = ecs.JobSuccess, time.Now()
		return st.Write(ctx, func(tx store.Tx) error { return tx.JobUpdate(ctx, &j, r.Lease) })
	}
}

func waitStatus(t *testing.T, st store.Store, id, status string) ecs.Job {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // bounds a hang, not a speed requirement
	for {
		j, err := st.JobGet(context.Background(), "p", id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == status {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s, want %s", id, j.Status, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func run(t *testing.T, e *jobs.Engine) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestEngineRunsEveryJobOnce(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	var mu sync.Mutex
	runs := map[string]int{}
	h := finish(st)
	e := jobs.New(jobs.Config{Store: st, Workers: 4, Logger: quiet, Poll: time.Hour, Handlers: map[string]jobs.Handler{
		"t": func(ctx context.Context, r jobs.Run) error {
			mu.Lock()
			runs[r.Job.ID]++
			mu.Unlock()
			return h(ctx, r)
		}}})
	run(t, e)
	// Jobs inserted after the engine started are picked up on Notify alone
	// (the poll interval is an hour).
	ids := insert(t, st, "t", 20)
	e.Notify()
	for _, id := range ids {
		waitStatus(t, st, id, ecs.JobSuccess)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if runs[id] != 1 {
			t.Errorf("job %s ran %d times", id, runs[id])
		}
	}
}

func TestUnknownJobTypeFails(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	e := jobs.New(jobs.Config{Store: st, Logger: quiet, Handlers: map[string]jobs.Handler{}})
	run(t, e)
	ids := insert(t, st, "mystery", 1)
	e.Notify()
	j := waitStatus(t, st, ids[0], ecs.JobFail)
	if j.ErrorCode == "" || j.FailReason == "" {
		t.Fatalf("failed job without a reason: %+v", j)
	}
}

func TestLeaseRenewedWhileRunning(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	release := make(chan struct{})
	var calls atomic.Int32
	h := finish(st)
	// The lease leaves a loaded machine (-race, other test processes
	// beside) two seconds to renew it (Lease/2) before the run is cancelled
	// as lost.
	const lease = 4 * time.Second
	e := jobs.New(jobs.Config{Store: st, Logger: quiet, Lease: lease, Poll: 20 * time.Millisecond,
		Handlers: map[string]jobs.Handler{"t": func(ctx context.Context, r jobs.Run) error {
			calls.Add(1)
			<-release // runs for more than a lease period
			return h(ctx, r)
		}}})
	run(t, e)
	ids := insert(t, st, "t", 1)
	e.Notify()
	waitStatus(t, st, ids[0], ecs.JobRunning)
	// Another engine polling meanwhile (for longer than the lease) finds
	// nothing to claim: the lease is renewed, not expired.
	for end := time.Now().Add(lease + time.Second); time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
		got, err := st.JobClaim(context.Background(), store.JobClaimParams{Owner: "other", Now: time.Now(), Lease: time.Minute, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Fatalf("a renewed lease was claimed by another owner")
		}
	}
	close(release)
	waitStatus(t, st, ids[0], ecs.JobSuccess)
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times", calls.Load())
	}
}

func TestShutdownLeavesJobsResumable(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	started := make(chan struct{}, 1)
	e := jobs.New(jobs.Config{Store: st, Logger: quiet, Owner: "node-1", Lease: time.Hour, Handlers: map[string]jobs.Handler{
		"t": func(ctx context.Context, r jobs.Run) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}}})
	stop := run(t, e)
	ids := insert(t, st, "t", 1)
	e.Notify()
	<-started
	stop()
	j := waitStatus(t, st, ids[0], ecs.JobRunning)
	if j.Errors != 0 {
		t.Fatalf("shutdown was recorded as %d errors (%q)", j.Errors, j.LastError)
	}
	// The same node, restarted, takes its job back at once (the lease
	// has an hour to run).
	e2 := jobs.New(jobs.Config{Store: st, Logger: quiet, Owner: "node-1", Lease: time.Hour, Poll: time.Hour,
		Handlers: map[string]jobs.Handler{"t": finish(st)}})
	run(t, e2)
	if j := waitStatus(t, st, ids[0], ecs.JobSuccess); j.Attempts != 2 {
		t.Fatalf("attempts %d, want 2", j.Attempts)
	}
}

// TestRunContextNamesTheRun: a handler's context carries its job and lease
// token, for the drivers it calls (the simulator's call journal).
func TestRunContextNamesTheRun(t *testing.T) {
	st := openStore(t)
	got := make(chan ecs.JobRun, 1)
	var lease store.Lease
	e := jobs.New(jobs.Config{Store: st, Owner: "node-a", Handlers: map[string]jobs.Handler{
		"t": func(ctx context.Context, r jobs.Run) error {
			jr, _ := ecs.JobRunFrom(ctx)
			lease = r.Lease
			got <- jr
			return finish(st)(ctx, r)
		},
	}})
	ids := insert(t, st, "t", 1)
	stop := run(t, e)
	defer stop()
	jr := <-got
	if jr.JobID != ids[0] || jr.Lease != lease.Token() || jr.Lease != "node-a#1" {
		t.Errorf("run context names %+v; want job %s, lease node-a#1 (%s)", jr, ids[0], lease.Token())
	}
}
