package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/storetest"
)

// openAt opens the database at path and closes it when the test ends.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func openTemp(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "ecsd.db"))
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func server(id string) ecs.Server {
	return ecs.Server{ID: id, ProjectID: "p1", UserID: "u1", Name: id, VMState: ecs.VMActive, Created: t0, Updated: t0}
}

func TestOpenConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		file    string // relative to a fresh directory
		cfg     Config
		wantErr bool
	}{
		{"defaults", "ecsd.db", Config{}, false},
		{"full sync", "ecsd.db", Config{Synchronous: "FULL", ReadConns: 1}, false},
		{"bad sync", "ecsd.db", Config{Synchronous: "OFF"}, true},
		{"missing directory", "no/such/ecsd.db", Config{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.cfg.Path = filepath.Join(t.TempDir(), c.file)
			s, err := Open(t.Context(), c.cfg)
			if c.wantErr {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%+v) succeeded, want an error", c.cfg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%+v): %v", c.cfg, err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

// Two Stores on one file (two processes, or a restart overlapping the old
// process) see each other's writes and share one job queue.
func TestOpenTwiceSharesData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ecsd.db")
	a, b := openAt(t, path), openAt(t, path)

	srv := server("srv-1")
	if err := a.Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &srv) }); err != nil {
		t.Fatal(err)
	}
	got, err := b.ServerGet(ctx, "p1", "srv-1")
	if err != nil {
		t.Fatalf("second store does not see the first one's insert: %v", err)
	}
	got.Name = "renamed"
	if err := b.Write(ctx, func(tx store.Tx) error { return tx.ServerUpdate(ctx, &got) }); err != nil {
		t.Fatal(err)
	}
	if back, err := a.ServerGet(ctx, "p1", "srv-1"); err != nil || back.Name != "renamed" {
		t.Fatalf("first store after the second one's update = %q, %v; want renamed", back.Name, err)
	}

	// One queue: a job claimed through one store is not claimable through
	// the other while its lease lives.
	j := ecs.Job{ID: "job-1", ProjectID: "p1", Type: ecs.JobReinstallOS, Runnable: true, Created: t0}
	if err := a.Write(ctx, func(tx store.Tx) error { return tx.JobInsert(ctx, &j) }); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.JobClaim(ctx, store.JobClaimParams{Owner: "worker-b", Now: t0, Lease: time.Minute, Limit: 10})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim through the second store = %v, %v; want job-1", claimed, err)
	}
	if again, err := a.JobClaim(ctx, store.JobClaimParams{Owner: "worker-a", Now: t0, Lease: time.Minute, Limit: 10}); err != nil || len(again) != 0 {
		t.Fatalf("claim through the first store = %v, %v; want nothing", again, err)
	}
}

// Writers on two Stores of one file serialise too: no lost update, no
// "database is locked".
func TestOpenTwiceConcurrentWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ecsd.db")
	stores := []*Store{openAt(t, path), openAt(t, path)}
	srv := server("srv-1")
	if err := stores[0].Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &srv) }); err != nil {
		t.Fatal(err)
	}
	const perStore = 20
	errs := make(chan error, 2*perStore)
	var wg sync.WaitGroup
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				errs <- s.Write(ctx, func(tx store.Tx) error {
					cur, err := tx.ServerGet(ctx, "p1", "srv-1")
					if err != nil {
						return err
					}
					cur.LaunchIndex++
					return tx.ServerUpdate(ctx, &cur)
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got, err := stores[1].ServerGet(ctx, "p1", "srv-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.LaunchIndex != 2*perStore {
		t.Fatalf("counter = %d, want %d", got.LaunchIndex, 2*perStore)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ecsd.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	srv := server("srv-1")
	srv.Metadata = map[string]string{"k": "v"}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &srv) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, path) // applies the schema again over existing tables
	got, err := s2.ServerGet(ctx, "p1", "srv-1")
	if err != nil {
		t.Fatalf("ServerGet after reopening: %v", err)
	}
	if got.Metadata["k"] != "v" {
		t.Fatalf("metadata after reopening = %v", got.Metadata)
	}
}

// A read transaction held open on the read pool neither blocks a Write nor
// sees it (WAL snapshot); the read pool refuses writes.
func TestReadPoolDoesNotBlockWriter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	first := server("srv-1")
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &first) }); err != nil {
		t.Fatal(err)
	}

	rtx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	count := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int {
		t.Helper()
		var n int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM servers`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(rtx); n != 1 { // starts the read snapshot
		t.Fatalf("servers in the read transaction = %d, want 1", n)
	}

	for i := range 3 {
		srv := server(fmt.Sprintf("srv-new-%d", i))
		if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &srv) }); err != nil {
			t.Fatalf("Write while a read transaction is open: %v", err)
		}
	}
	if _, err := s.JobClaim(ctx, store.JobClaimParams{Owner: "w", Now: t0, Lease: time.Minute, Limit: 10}); err != nil {
		t.Fatalf("JobClaim while a read transaction is open: %v", err)
	}
	if n := count(rtx); n != 1 {
		t.Fatalf("servers in the old read snapshot = %d, want 1", n)
	}
	if n := count(s.r); n != 4 {
		t.Fatalf("servers in a new read = %d, want 4", n)
	}
	if _, err := s.ServerGet(ctx, "p1", "srv-new-2"); err != nil {
		t.Fatalf("ServerGet of the committed server: %v", err)
	}

	if _, err := s.r.ExecContext(ctx, `DELETE FROM servers`); err == nil {
		t.Fatal("the read pool accepted a DELETE")
	}
	if n := count(s.r); n != 4 {
		t.Fatalf("servers after a refused DELETE = %d, want 4", n)
	}
}

// An error from fn reaches the caller as it is.
func TestWriteReturnsFnError(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	boom := errors.New("boom")
	if err := s.Write(t.Context(), func(store.Tx) error { return boom }); err != boom {
		t.Fatalf("Write = %v, want the error fn returned", err)
	}
}

// Benchmarks: the bodies are storetest's, shared with store/postgres.

func BenchmarkJobClaim(b *testing.B)    { storetest.BenchJobClaim(b, openTemp(b)) }
func BenchmarkWriteSubmit(b *testing.B) { storetest.BenchWriteSubmit(b, openTemp(b)) }
func BenchmarkServerGet(b *testing.B)   { storetest.BenchServerGet(b, openTemp(b)) }
func BenchmarkServerList(b *testing.B) {
	storetest.BenchServerList(b, func() store.Store { return openTemp(b) })
}
