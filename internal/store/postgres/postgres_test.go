package postgres

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
	"github.com/ecsproject/ecsd/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// template is a migrated, empty database that tests copy: a copy is much
// cheaper than running the migrations again.
var template = sync.OnceValues(func() (string, error) {
	name := fmt.Sprintf("ecsd_tmpl_%d", os.Getpid())
	ctx := context.Background()
	admin, err := pgtest.Admin()
	if err != nil {
		return "", err
	}
	dsn, err := pgtest.CreateDatabase(ctx, admin, name, "")
	if err != nil {
		return "", err
	}
	pgtest.AtExit(func() { pgtest.DropDatabase(context.Background(), admin, name) })
	s, err := Open(ctx, Config{DSN: dsn, Logger: quiet})
	if err != nil {
		return "", err
	}
	return name, s.Close() // no session may stay on a template
})

// openStore opens a Store on dsn and closes it when the test ends.
func openStore(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{DSN: dsn, Logger: quiet})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// freshDB returns the DSN of a new database with the schema and no rows.
func freshDB(t testing.TB) string {
	t.Helper()
	tmpl, err := template()
	if err != nil {
		t.Fatalf("template database: %v", err)
	}
	return pgtest.Database(t, tmpl)
}

func openTemp(t testing.TB) *Store {
	t.Helper()
	return openStore(t, freshDB(t))
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// Nodes sharing the database: the suite's checks that span several Store
// values (one per node).
func TestConformanceShared(t *testing.T) {
	t.Parallel()
	storetest.RunShared(t, func(t *testing.T, n int) []store.Store {
		dsn := freshDB(t)
		out := make([]store.Store, n)
		for i := range out {
			out[i] = openStore(t, dsn)
		}
		return out
	})
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// Nodes starting at once on an empty database: every Open succeeds and
// each migration is applied exactly once.
func TestOpenConcurrentOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	const nodes = 8
	errs := make([]error, nodes)
	stores := make([]*Store, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			stores[i], errs[i] = Open(t.Context(), Config{DSN: dsn, Logger: quiet})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		} else {
			stores[i].Close()
		}
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	rows, err := conn.Query(t.Context(), `SELECT version_id, count(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ Version, N int64 }
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	files, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files)+1 { // version 0 is goose's own
		t.Fatalf("versions recorded = %v, want 0..%d", got, len(files))
	}
	for i, r := range got {
		if r.Version != int64(i) || r.N != 1 {
			t.Fatalf("versions recorded = %v, want each of 0..%d once", got, len(files))
		}
	}
}

// Reopening a database applies nothing and keeps the rows.
func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := freshDB(t)
	s, err := Open(ctx, Config{DSN: dsn, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := ecs.Server{ID: "srv-1", ProjectID: "p1", UserID: "u1", Name: "one", VMState: ecs.VMActive, Created: t0, Updated: t0,
		Metadata: map[string]string{"k": "v"}}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &srv) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openStore(t, dsn)
	got, err := s2.ServerGet(ctx, "p1", "srv-1")
	if err != nil || got.Metadata["k"] != "v" {
		t.Fatalf("ServerGet after reopening = %+v, %v", got, err)
	}
}

func TestOpenBadDSN(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"postgres://ecs@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=5", "::not a dsn::"} {
		if s, err := Open(t.Context(), Config{DSN: dsn, Logger: quiet}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

// A deadlock between two Writes (each locks one server, then wants the
// other's) is resolved by PostgreSQL aborting one; Write runs that one
// again, and both succeed.
func TestWriteRetriesDeadlock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	for _, id := range []string{"srv-a", "srv-b"} {
		srv := ecs.Server{ID: id, ProjectID: "p1", Name: id, VMState: ecs.VMActive, Created: t0, Updated: t0}
		if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &srv) }); err != nil {
			t.Fatal(err)
		}
	}
	// Both Writes take their first lock before either asks for its
	// second: the barrier makes the deadlock certain on the first run.
	var barrier sync.WaitGroup
	barrier.Add(2)
	var once [2]sync.Once
	runs := [2]int{}
	bump := func(first, second string, i int) error {
		return s.Write(ctx, func(tx store.Tx) error {
			runs[i]++
			a, err := tx.ServerGet(ctx, "p1", first)
			if err != nil {
				return err
			}
			once[i].Do(barrier.Done)
			barrier.Wait()
			b, err := tx.ServerGet(ctx, "p1", second)
			if err != nil {
				return err
			}
			a.LaunchIndex++
			b.LaunchIndex++
			if err := tx.ServerUpdate(ctx, &a); err != nil {
				return err
			}
			return tx.ServerUpdate(ctx, &b)
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- bump("srv-a", "srv-b", 0) }()
	go func() { errs <- bump("srv-b", "srv-a", 1) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if runs[0]+runs[1] < 3 {
		t.Errorf("fn ran %v times: no Write was run again, so there was no deadlock to resolve", runs)
	}
	for _, id := range []string{"srv-a", "srv-b"} {
		got, err := s.ServerGet(ctx, "p1", id)
		if err != nil || got.LaunchIndex != 2 {
			t.Fatalf("%s after two Writes = %d, %v; want 2", id, got.LaunchIndex, err)
		}
	}
}

// A swallowed error does not commit half a transaction: PostgreSQL aborts
// at the first failed statement, and the commit reports it.
func TestWriteSwallowedErrorFails(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	srv := ecs.Server{ID: "srv-a", ProjectID: "p1", Name: "a", Created: t0, Updated: t0}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &srv) }); err != nil {
		t.Fatal(err)
	}
	err := s.Write(ctx, func(tx store.Tx) error {
		other := ecs.Server{ID: "srv-b", ProjectID: "p1", Name: "b", Created: t0, Updated: t0}
		if err := tx.ServerInsert(ctx, &other); err != nil {
			return err
		}
		dup := srv
		_ = tx.ServerInsert(ctx, &dup) // a conflict, ignored
		return nil
	})
	if err == nil {
		t.Fatal("Write whose fn ignored a failed statement succeeded")
	}
	if _, err := s.ServerGet(ctx, "p1", "srv-b"); err == nil {
		t.Fatal("the insert before the ignored failure was committed")
	}
}

// Text PostgreSQL refuses (NUL, invalid UTF-8) in an operator-only error
// cause is cleaned, not a failed JobRetry.
func TestJobRetryCleansCause(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	j := ecs.Job{ID: "job-1", ProjectID: "p1", Type: ecs.JobReinstallOS, Runnable: true, Created: t0}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.JobInsert(ctx, &j) }); err != nil {
		t.Fatal(err)
	}
	c, err := s.JobClaim(ctx, store.JobClaimParams{Owner: "w", Now: t0, Lease: time.Minute, Limit: 1})
	if err != nil || len(c) != 1 {
		t.Fatalf("JobClaim = %v, %v", c, err)
	}
	if _, err := s.JobRetry(ctx, store.JobRetryParams{JobID: "job-1", Lease: store.Lease{Owner: "w", Attempt: 1},
		Error: "bad \x00 bytes \xff here", Now: t0}); err != nil {
		t.Fatalf("JobRetry with NUL and invalid UTF-8 in the cause: %v", err)
	}
	got, err := s.JobGet(ctx, "p1", "job-1")
	if err != nil || got.LastError != "bad  bytes \uFFFD here" {
		t.Fatalf("last error = %q, %v", got.LastError, err)
	}
}

// Benchmarks: the bodies are storetest's, shared with store/sqlite.

func BenchmarkJobClaim(b *testing.B)    { storetest.BenchJobClaim(b, openTemp(b)) }
func BenchmarkWriteSubmit(b *testing.B) { storetest.BenchWriteSubmit(b, openTemp(b)) }
func BenchmarkServerGet(b *testing.B)   { storetest.BenchServerGet(b, openTemp(b)) }
func BenchmarkServerList(b *testing.B) {
	storetest.BenchServerList(b, func() store.Store { return openTemp(b) })
}

// TestSearchIndexes checks that the migrations made the trigram indexes
// of the name and ip list patterns (pg_trgm is part of the PostgreSQL the
// tests run), without the pending list that every query would read.
func TestSearchIndexes(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	for _, name := range []string{"servers_name_trgm", "ports_ip_trgm"} {
		var def string
		err := s.db.QueryRow(t.Context(), `SELECT indexdef FROM pg_indexes WHERE indexname = $1`, name).Scan(&def)
		if err != nil {
			t.Fatalf("index %s: %v", name, err)
		}
		if !strings.Contains(def, "gin_trgm_ops") || !strings.Contains(def, "fastupdate=off") {
			t.Fatalf("index %s = %q; want a gin_trgm_ops index with fastupdate off", name, def)
		}
	}
}
