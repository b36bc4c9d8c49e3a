package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// masked hides the message of the error it wraps, as a layer that rewords
// errors would.
type masked struct{ err error }

func (m masked) Error() string { return "insert refused" }
func (m masked) Unwrap() error { return m.err }

func TestIsUniqueByResultCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE t(id TEXT PRIMARY KEY, name TEXT UNIQUE, n INTEGER CHECK (n >= 0))`,
		`CREATE TABLE guarded(x TEXT)`,
		// A trigger whose refusal says "UNIQUE constraint failed" but is not one.
		`CREATE TRIGGER guard BEFORE INSERT ON guarded BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: guarded.x'); END`,
		`INSERT INTO t VALUES('a', 'x', 1)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec := func(q string) error {
		_, err := db.ExecContext(ctx, q)
		if err == nil {
			t.Fatalf("%s: succeeded", q)
		}
		return err
	}
	pk := exec(`INSERT INTO t VALUES('a', 'y', 1)`)
	unique := exec(`INSERT INTO t VALUES('b', 'x', 1)`)
	check := exec(`INSERT INTO t VALUES('c', 'z', -1)`)
	trigger := exec(`INSERT INTO guarded VALUES('x')`)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"primary key", pk, true},
		{"unique column", unique, true},
		{"wrapped", fmt.Errorf("insert: %w", unique), true},
		{"wrapped, message says nothing of UNIQUE", masked{unique}, true},
		{"check constraint", check, false},
		{"trigger saying UNIQUE", trigger, false},
		{"plain error saying UNIQUE", errors.New("UNIQUE constraint failed: t.id"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := isUnique(tt.err); got != tt.want {
			t.Errorf("%s: isUnique(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
