package postgres

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// A database that cannot be reached is reported as ErrUnavailable (the API
// answers 503), not as a failure of the statement.
func TestOpenUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	_, err := Open(t.Context(), Config{DSN: "postgres://ecs@127.0.0.1:1/x?sslmode=disable&connect_timeout=5", Logger: quiet})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of a closed port = %v, want ErrUnavailable", err)
	}
}

// A Write whose session is killed mid-way fails with ErrUnavailable and
// commits nothing; the Store then works on a new connection.
func TestWriteSessionKilledIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := freshDB(t)
	s := openStore(t, dsn)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	err = s.Write(ctx, func(stx store.Tx) error {
		srv := ecs.Server{ID: "srv-a", ProjectID: "p1", Name: "a", Created: t0, Updated: t0}
		if err := stx.ServerInsert(ctx, &srv); err != nil {
			return err
		}
		var pid int32
		if err := stx.(*tx).q.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		var ok bool
		if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
			t.Errorf("pg_terminate_backend = %v, %v", ok, err)
		}
		_, err := stx.ServerGetByID(ctx, "srv-a")
		return err
	})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Write whose session was killed = %v, want ErrUnavailable", err)
	}
	// The pool may still hold other connections; none was killed, and the
	// dead one is gone.
	if _, err := s.ServerGet(ctx, "p1", "srv-a"); !errors.Is(err, ecs.ErrNotFound) {
		t.Fatalf("ServerGet after the failed Write = %v, want ErrNotFound (nothing committed)", err)
	}
	srv := ecs.Server{ID: "srv-b", ProjectID: "p1", Name: "b", Created: t0, Updated: t0}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &srv) }); err != nil {
		t.Fatalf("Write after the failed one: %v", err)
	}
}

// Statement errors are not outages.
func TestStatementErrorIsNotUnavailable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	err := s.Write(ctx, func(stx store.Tx) error {
		_, err := stx.(*tx).q.Exec(ctx, `SELECT no_such_column FROM servers`)
		return err
	})
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a bad statement = %v, want an error that is not ErrUnavailable", err)
	}
}
