// Package pgtest gives tests a PostgreSQL server and fresh databases on it.
//
// Server uses the server named by the environment variable
// ECS_TEST_POSTGRES (a postgres:// URL of a role that may create
// databases) when it is set; otherwise it starts a throwaway cluster
// through the project's scripts/postgres.sh (installing Debian's
// postgresql first when it is missing), so that tests that need PostgreSQL
// run on a fresh machine with nothing done beforehand. A test binary
// starts at most one cluster, from TestMain, and stops it when its tests
// end:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Each test then takes a database of its own (Database), so that tests
// run in parallel without seeing each other's rows or notifications.
package pgtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// EnvDSN names the environment variable that points tests at a server.
const EnvDSN = "ECS_TEST_POSTGRES"

var (
	mu       sync.Mutex
	adminDSN string   // set by Main
	atExit   []func() // run by Main before it stops the server
	seq      atomic.Int64
)

// AtExit registers fn to run after the tests, before Main stops the
// server (to drop a template database, say).
func AtExit(fn func()) {
	mu.Lock()
	defer mu.Unlock()
	atExit = append(atExit, fn)
}

// Main starts (or finds) the server, runs the tests and stops what it
// started. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	dsn, stop, err := Server()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	mu.Lock()
	adminDSN = dsn
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	fns := atExit
	mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	if err := stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stop: %v\n", err)
	}
	return code
}

// AdminDSN is the DSN of the server's maintenance database, as Main found
// it.
func AdminDSN(t testing.TB) string {
	dsn, err := Admin()
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Admin is AdminDSN outside a test.
func Admin() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if adminDSN == "" {
		return "", errors.New("pgtest: no server: call pgtest.Main from TestMain")
	}
	return adminDSN, nil
}

// Server returns the DSN of a server: $ECS_TEST_POSTGRES, or a cluster it
// starts through scripts/postgres.sh. stop stops the cluster it started (a
// no-op for a server it was given).
func Server() (dsn string, stop func() error, err error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn, func() error { return nil }, nil
	}
	script, err := findScript()
	if err != nil {
		return "", nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script, "start", "--owner", strconv.Itoa(os.Getpid()), "--no-fsync")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("%s start: %v\n%s", script, err, stderr.String())
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vars[k] = v
		}
	}
	dir, dsn := vars["ECS_PG_DIR"], vars[EnvDSN]
	if dir == "" || dsn == "" {
		return "", nil, fmt.Errorf("%s start printed no cluster:\n%s%s", script, stdout.String(), stderr.String())
	}
	stop = func() error {
		out, err := exec.Command(script, "stop", dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s stop %s: %v\n%s", script, dir, err, out)
		}
		return nil
	}
	return dsn, stop, nil
}

// findScript finds scripts/postgres.sh in the source tree's root, above
// the working directory (a test's is its package directory, which may be
// in a module of its own below the root, such as test/sdk).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		script := filepath.Join(dir, "scripts", "postgres.sh")
		if _, err := os.Stat(script); err == nil {
			return script, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("pgtest: no scripts/postgres.sh above the working directory")
		}
		dir = parent
	}
}

// WithDatabase returns dsn naming database name instead.
func WithDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil // key=value: the last one wins
}

// Database creates a fresh, empty database (a copy of template when it is
// not "") and returns its DSN. It drops the database when the test ends.
func Database(t testing.TB, template string) string {
	t.Helper()
	name := fmt.Sprintf("ecsd_t%d_%d", os.Getpid(), seq.Add(1))
	dsn, err := CreateDatabase(context.Background(), AdminDSN(t), name, template)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := DropDatabase(context.Background(), AdminDSN(t), name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dsn
}

// CreateDatabase creates database name, from template when it is not "",
// and returns its DSN.
func CreateDatabase(ctx context.Context, admin, name, template string) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	q := `CREATE DATABASE ` + pgx.Identifier{name}.Sanitize()
	if template != "" {
		q += ` TEMPLATE ` + pgx.Identifier{template}.Sanitize()
	}
	// Copying a template fails while another session is on it (such as a
	// concurrent copy starting): try again a few times.
	for try := 0; ; try++ {
		_, err = conn.Exec(ctx, q)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "55006" || try == 50 {
			break
		}
		time.Sleep(time.Duration(10+try*5) * time.Millisecond)
	}
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return WithDatabase(admin, name)
}

// DropDatabase drops database name, ending its sessions.
func DropDatabase(ctx context.Context, admin, name string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}
