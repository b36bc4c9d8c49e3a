package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store"
)

// copyFixture copies the data dir made by the issue-3 release into a
// temporary dir and returns that dir.
func copyFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"ecsd.db", "secret.key", "credentials.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "release-issue3", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dbVersion is the highest migration recorded as applied.
func dbVersion(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int64
	if err := db.QueryRow(`SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&v); err != nil {
		t.Fatalf("read migration version: %v", err)
	}
	return v
}

// latestVersion is the number of the newest migration file.
func latestVersion(t *testing.T) int64 {
	t.Helper()
	names, err := migrationFiles.ReadDir("migrations")
	if err != nil || len(names) == 0 {
		t.Fatalf("migrations: %v", err)
	}
	return int64(len(names))
}

// TestOpenReleaseIssue3 opens a data dir made by the previous release: the
// migrations adopt and upgrade it, and its rows and credential survive.
func TestOpenReleaseIssue3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := copyFixture(t)
	path := filepath.Join(dir, "ecsd.db")
	s := openAt(t, path)
	if v, want := dbVersion(t, path), latestVersion(t); v != want {
		t.Fatalf("database at migration %d, want %d", v, want)
	}

	var file struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
		ProjectID string `json:"project_id"`
		UserID    string `json:"user_id"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	box, err := secret.LoadOrCreate(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CredentialGet(ctx, file.AccessKey)
	if err != nil {
		t.Fatalf("CredentialGet: %v", err)
	}
	plain, err := box.Open(c.SealedSecret)
	if err != nil || string(plain) != file.SecretKey {
		t.Fatalf("credential unseals to %q, %v; want the secret of credentials.json", plain, err)
	}
	if c.ProjectID != file.ProjectID || c.UserID != file.UserID {
		t.Fatalf("credential = project %s user %s, want %s %s", c.ProjectID, c.UserID, file.ProjectID, file.UserID)
	}

	servers, err := s.ServerListAll(ctx)
	if err != nil {
		t.Fatalf("ServerListAll: %v", err)
	}
	var names []string
	byName := map[string]ecs.Server{}
	for _, srv := range servers {
		names = append(names, srv.Name)
		byName[srv.Name] = srv
	}
	slices.Sort(names)
	if want := []string{"fixture-done", "fixture-failed", "fixture-running"}; !slices.Equal(names, want) {
		t.Fatalf("servers = %v, want %v", names, want)
	}
	if _, err := s.KeypairGet(ctx, file.ProjectID, file.UserID, "fixture-key"); err != nil {
		t.Fatalf("KeypairGet: %v", err)
	}
	for name, want := range map[string]string{"fixture-done": ecs.JobSuccess, "fixture-failed": ecs.JobFail,
		"fixture-running": ecs.JobRunning} {
		var job ecs.Job
		err := s.Write(ctx, func(tx store.Tx) error {
			var err error
			job, err = jobOfServer(ctx, tx, s, byName[name].ID)
			return err
		})
		if err != nil {
			t.Fatalf("job of %s: %v", name, err)
		}
		if job.Status != want {
			t.Fatalf("job of %s = %s, want %s", name, job.Status, want)
		}
		if job.Errors != 0 || job.LastError != "" {
			t.Fatalf("job of %s after migration: errors %d %q, want none", name, job.Errors, job.LastError)
		}
	}

	// The interrupted job is claimable at once by this node (its old
	// owner's lease released) and runs on under the new columns.
	var old string
	if err := s.r.QueryRowContext(ctx, `SELECT lease_owner FROM jobs WHERE status = 'RUNNING' AND runnable = 1`).Scan(&old); err != nil {
		t.Fatal(err)
	}
	if n, err := s.JobLeaseReleaseOwner(ctx, old); err != nil || n != 1 {
		t.Fatalf("JobLeaseReleaseOwner(%s) = %d, %v; want 1", old, n, err)
	}
	got, err := s.JobClaim(ctx, store.JobClaimParams{Owner: old, Host: "any-host", Now: time.Now(), Lease: time.Minute, Limit: 10})
	if err != nil || len(got) != 1 || got[0].ServerID != byName["fixture-running"].ID || got[0].Attempts != 2 {
		t.Fatalf("JobClaim after adoption = %+v, %v; want the fixture-running sub-job, attempt 2", got, err)
	}

	// Opening again applies nothing and keeps the rows.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, path)
	if v, want := dbVersion(t, path), latestVersion(t); v != want {
		t.Fatalf("database at migration %d after reopening, want %d", v, want)
	}
	if n, err := s2.CredentialCount(ctx); err != nil || n != 1 {
		t.Fatalf("CredentialCount after reopening = %d, %v; want 1", n, err)
	}
}

// jobOfServer reads the (sub-)job that last acted on a server.
func jobOfServer(ctx context.Context, tx store.Tx, s *Store, serverID string) (ecs.Job, error) {
	var id string
	if err := s.r.QueryRowContext(ctx, `SELECT id FROM jobs WHERE server_id = ? ORDER BY seq DESC LIMIT 1`, serverID).Scan(&id); err != nil {
		return ecs.Job{}, err
	}
	return tx.JobGetByID(ctx, id)
}

// TestOpenUnknownDatabase refuses a database this store did not make.
func TestOpenUnknownDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ecsd.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE jobs (id TEXT); PRAGMA user_version = 7`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(context.Background(), Config{Path: path}); err == nil {
		s.Close()
		t.Fatal("Open of a database with user_version 7 succeeded, want an error")
	}
}
