package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// listen runs s.JobListen until the test ends and returns the channel its
// wake-ups arrive on.
func listen(t *testing.T, s *Store) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	woke := make(chan struct{}, 64)
	done := make(chan error, 1)
	go func() {
		done <- s.JobListen(ctx, func() {
			select {
			case woke <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("JobListen ended with %v, want context.Canceled", err)
		}
	})
	return woke
}

// awaitWake waits for a wake-up; a listener that never wakes fails the test
// when the test's own deadline (go test -timeout) nears.
func awaitWake(t *testing.T, woke <-chan struct{}, what string) {
	t.Helper()
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-5*time.Second))
		defer cancel()
	}
	select {
	case <-woke:
	case <-ctx.Done():
		t.Fatalf("no wake-up: %s", what)
	}
}

func insertJob(t *testing.T, s *Store, j ecs.Job) {
	t.Helper()
	ctx := t.Context()
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.JobInsert(ctx, &j) }); err != nil {
		t.Fatal(err)
	}
}

// A job inserted through one node wakes the listener of another (two
// Stores, two pools: two nodes).
func TestJobListenWakesOtherNode(t *testing.T) {
	t.Parallel()
	dsn := freshDB(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	woke := listen(t, b)
	awaitWake(t, woke, "the wake-up that follows connecting")
	for i, id := range []string{"job-1", "job-2"} {
		insertJob(t, a, ecs.Job{ID: id, ProjectID: "p1", Type: ecs.JobReinstallOS, Runnable: true, Created: t0})
		awaitWake(t, woke, "a job inserted through the other store")
		got, err := b.JobClaim(t.Context(), store.JobClaimParams{Owner: "node-b", Now: t0, Lease: time.Minute, Limit: 10})
		if err != nil || len(got) != 1 || got[0].ID != id {
			t.Fatalf("claim %d after the wake-up = %v, %v; want %s", i, got, err, id)
		}
	}
}

// A listener whose connection is cut reconnects, says so with a wake-up,
// and hears later inserts.
func TestJobListenReconnects(t *testing.T) {
	t.Parallel()
	dsn := freshDB(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	woke := listen(t, b)
	awaitWake(t, woke, "the wake-up that follows connecting")

	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var killed int
	err = conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, jobListenerAppName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listener sessions (%v), want 1", killed, err)
	}
	awaitWake(t, woke, "the wake-up that follows reconnecting")
	insertJob(t, a, ecs.Job{ID: "job-1", ProjectID: "p1", Type: ecs.JobReinstallOS, Runnable: true, Created: t0})
	awaitWake(t, woke, "a job inserted after the reconnection")
}

// Notifications go out at commit, once per Write that inserted runnable
// jobs: none for a Write without one or a rolled-back one, one for a batch.
// A raw session listens on the job channel and on a marker channel; the
// marker, sent after the Writes, bounds what they sent (notifications
// arrive in commit order).
func TestNotifyOncePerCommit(t *testing.T) {
	t.Parallel()
	dsn := freshDB(t)
	a := openStore(t, dsn)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN ecsd_jobs; LISTEN ecsd_test_marker`); err != nil {
		t.Fatal(err)
	}

	// Not runnable: a batch job on its own; then a rolled-back insert.
	insertJob(t, a, ecs.Job{ID: "batch-1", ProjectID: "p1", Type: ecs.JobStartServers, Created: t0})
	err = a.Write(ctx, func(tx store.Tx) error {
		j := ecs.Job{ID: "job-x", ProjectID: "p1", Type: ecs.JobStartServer, Runnable: true, Created: t0}
		if err := tx.JobInsert(ctx, &j); err != nil {
			return err
		}
		return errRollback
	})
	if err != errRollback {
		t.Fatalf("rolled-back Write = %v", err)
	}
	err = a.Write(ctx, func(tx store.Tx) error {
		for _, id := range []string{"sub-1", "sub-2", "sub-3"} {
			j := ecs.Job{ID: id, ProjectID: "p1", Type: ecs.JobStartServer, ParentID: "batch-1", Runnable: true, Created: t0}
			if err := tx.JobInsert(ctx, &j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.pool.Exec(ctx, `SELECT pg_notify('ecsd_test_marker', '')`); err != nil {
		t.Fatal(err)
	}
	jobs := 0
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n.Channel == "ecsd_test_marker" {
			break
		}
		jobs++
	}
	if jobs != 1 {
		t.Fatalf("%d notifications on %s, want 1 (the batch's commit)", jobs, JobChannel)
	}
}

var errRollback = errors.New("roll back")
