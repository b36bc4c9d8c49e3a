package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite"

	"github.com/ecsproject/ecsd/internal/store/migrate"
)

var files = fstest.MapFS{
	"00001_first.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE a (x INTEGER);\n")},
	"00002_second.sql": {Data: []byte("-- +goose Up\nALTER TABLE a ADD COLUMN y INTEGER NOT NULL DEFAULT 7;\n")},
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func up(t *testing.T, db *sql.DB, adopt func(context.Context, *sql.DB) (int64, error)) (int64, error) {
	t.Helper()
	return migrate.Up(context.Background(), db, migrate.Config{Dialect: goose.DialectSQLite3, Migrations: files,
		Adopt: adopt, Logger: quiet})
}

func TestUpFresh(t *testing.T) {
	t.Parallel()
	db := open(t)
	adopted := false
	v, err := up(t, db, func(context.Context, *sql.DB) (int64, error) { adopted = true; return 0, nil })
	if err != nil || v != 2 || !adopted {
		t.Fatalf("Up = %d, %v (adopt asked: %v); want 2 after asking", v, err, adopted)
	}
	if _, err := db.Exec(`INSERT INTO a(x) VALUES(1)`); err != nil {
		t.Fatal(err)
	}
	// Again: nothing to apply, and a versioned database is not adopted.
	v, err = up(t, db, func(context.Context, *sql.DB) (int64, error) { t.Error("adopt asked again"); return 0, nil })
	if err != nil || v != 2 {
		t.Fatalf("second Up = %d, %v", v, err)
	}
}

// TestUpAdopt: a database made before migrations, at version 1, gets only
// migration 2 (running 1 again would fail: the table exists).
func TestUpAdopt(t *testing.T) {
	t.Parallel()
	db := open(t)
	if _, err := db.Exec(`CREATE TABLE a (x INTEGER); INSERT INTO a(x) VALUES(5)`); err != nil {
		t.Fatal(err)
	}
	v, err := up(t, db, func(context.Context, *sql.DB) (int64, error) { return 1, nil })
	if err != nil || v != 2 {
		t.Fatalf("Up = %d, %v; want 2", v, err)
	}
	var x, y int
	if err := db.QueryRow(`SELECT x, y FROM a`).Scan(&x, &y); err != nil || x != 5 || y != 7 {
		t.Fatalf("row after adoption = %d %d, %v; want 5 7", x, y, err)
	}
}

func TestUpAdoptRefuses(t *testing.T) {
	t.Parallel()
	db := open(t)
	bad := errors.New("not ours")
	if _, err := up(t, db, func(context.Context, *sql.DB) (int64, error) { return 0, bad }); !errors.Is(err, bad) {
		t.Fatalf("Up = %v, want the adopt error", err)
	}
}
