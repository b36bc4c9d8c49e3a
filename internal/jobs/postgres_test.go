package jobs_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/jobs"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/postgres"
	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
)

// The tests on PostgreSQL start a throwaway cluster through
// scripts/postgres.sh (or use ECS_TEST_POSTGRES).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openPG(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A job committed through one node's store is run at once by the engine of
// another node, woken through LISTEN/NOTIFY (the engine never polls: its
// poll interval is an hour).
func TestEngineWakesAcrossNodesOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	a, b := openPG(t, dsn), openPG(t, dsn)
	started := make(chan string, 16)
	e := jobs.New(jobs.Config{Store: b, Owner: "node-b", Logger: quiet, Poll: time.Hour, Handlers: map[string]jobs.Handler{"t": finish(b)},
		OnStart: func(j ecs.Job) { started <- j.ID }})
	run(t, e)
	for i := range 5 {
		ids := []string{fmt.Sprintf("job-%d", i)}
		// Through node a's store, without Notify in node b.
		if err := a.Write(t.Context(), func(tx store.Tx) error {
			return tx.JobInsert(t.Context(), &ecs.Job{ID: ids[0], ProjectID: "p", Type: "t", Runnable: true, Created: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-started:
			if id != ids[0] {
				t.Fatalf("started %s, want %s", id, ids[0])
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("job %d committed on node a was not picked up by node b", i)
		}
		waitStatus(t, a, ids[0], ecs.JobSuccess)
	}
}

// A node cut off from PostgreSQL stops its runs before their lease can
// expire and another node claim the job; the other node then runs the job
// to its end, and the cut-off run wrote nothing after it stopped.
func TestLeaseLossOnPostgresCut(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	proxy, viaProxy := pgtest.NewProxy(t, dsn)
	cut, direct := openPG(t, viaProxy), openPG(t, dsn)
	const lease = 2 * time.Second

	var (
		mu      sync.Mutex
		stopped time.Time // when the cut-off run saw its context end
		cause   error
	)
	running := make(chan struct{})
	e1 := jobs.New(jobs.Config{Store: cut, Owner: "node-1", Logger: quiet, Lease: lease, Poll: time.Hour,
		Handlers: map[string]jobs.Handler{"t": func(ctx context.Context, r jobs.Run) error {
			close(running)
			<-ctx.Done()
			mu.Lock()
			stopped, cause = time.Now(), context.Cause(ctx)
			mu.Unlock()
			return ctx.Err()
		}}})
	run(t, e1)
	ids := insert(t, direct, "t", 1)
	select {
	case <-running:
	case <-time.After(30 * time.Second):
		t.Fatal("node-1 did not start the job")
	}
	proxy.Cut()

	// node-2 claims the job once node-1's lease has expired, and finishes it.
	var claimedAt time.Time
	e2 := jobs.New(jobs.Config{Store: direct, Owner: "node-2", Logger: quiet, Lease: lease, Poll: 100 * time.Millisecond,
		Handlers: map[string]jobs.Handler{"t": finish(direct)},
		OnStart:  func(ecs.Job) { mu.Lock(); claimedAt = time.Now(); mu.Unlock() }})
	run(t, e2)
	j := waitStatus(t, direct, ids[0], ecs.JobSuccess)
	mu.Lock()
	defer mu.Unlock()
	if stopped.IsZero() {
		t.Fatal("node-1's run never stopped")
	}
	if !stopped.Before(claimedAt) {
		t.Errorf("node-1's run stopped at %s, after node-2 claimed the job at %s", stopped.Format(time.StampMilli), claimedAt.Format(time.StampMilli))
	}
	if cause == nil || cause == context.Canceled {
		t.Errorf("node-1's run ended with cause %v, want the lost lease", cause)
	}
	if j.Attempts != 2 {
		t.Errorf("attempts %d, want 2", j.Attempts)
	}
}

// BenchmarkIdlePickupAcrossNodes measures, on PostgreSQL, the time from the
// commit of a job on one node to its start on another node's idle engine
// (woken through LISTEN/NOTIFY): p50 and p99 in ms.
func BenchmarkIdlePickupAcrossNodes(b *testing.B) {
	dsn := pgtest.Database(b, "")
	stA, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer stA.Close()
	stB, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer stB.Close()
	started := make(chan time.Time, 1)
	e := jobs.New(jobs.Config{Store: stB, Owner: "node-b", Logger: quiet, Poll: time.Hour,
		Handlers: map[string]jobs.Handler{"t": finish(stB)}, OnStart: func(ecs.Job) { started <- time.Now() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		time.Sleep(20 * time.Millisecond) // idle
		var committed time.Time
		err := stA.Write(ctx, func(tx store.Tx) error {
			return tx.JobInsert(ctx, &ecs.Job{ID: fmt.Sprintf("bench-%d", i), ProjectID: "p", Type: "t", Runnable: true, Created: time.Now()})
		})
		committed = time.Now()
		if err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-started:
			lat = append(lat, at.Sub(committed))
		case <-time.After(30 * time.Second):
			b.Fatal("job not picked up")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
