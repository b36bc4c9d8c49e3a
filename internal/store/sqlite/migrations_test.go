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

// TestLegacyAddresses opens the issue-3 data dir, whose three servers were
// all given 192.168.1.2 before the per-subnet allocator: migration 10 puts
// the oldest one's address in ports (subnet "", the port id the API shows)
// and the two others in address_conflicts, and the ip filters find all
// three.
func TestLegacyAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openAt(t, filepath.Join(copyFixture(t), "ecsd.db"))
	servers, err := s.ServerListAll(ctx) // oldest first
	if err != nil || len(servers) != 3 {
		t.Fatalf("ServerListAll = %d servers, %v", len(servers), err)
	}
	project, oldest := servers[0].ProjectID, servers[0].ID
	var port, subnet, ip string
	if err := s.r.QueryRowContext(ctx, `SELECT port_id, subnet_id, ip FROM ports WHERE server_id = ?`, oldest).
		Scan(&port, &subnet, &ip); err != nil {
		t.Fatalf("port of the oldest server: %v", err)
	}
	if port != store.LegacyPortID(oldest) || subnet != "" || ip != "192.168.1.2" {
		t.Fatalf("port of the oldest server = %s %q %s; want %s \"\" 192.168.1.2", port, subnet, ip, store.LegacyPortID(oldest))
	}
	for _, srv := range servers[1:] {
		var heldBy, cport string
		if err := s.r.QueryRowContext(ctx, `SELECT held_by, port_id FROM address_conflicts WHERE server_id = ? AND ip = ?`,
			srv.ID, "192.168.1.2").Scan(&heldBy, &cport); err != nil {
			t.Fatalf("conflict of %s: %v", srv.Name, err)
		}
		if heldBy != oldest || cport != store.LegacyPortID(srv.ID) {
			t.Fatalf("conflict of %s = held by %s, port %s; want %s, %s", srv.Name, heldBy, cport, oldest, store.LegacyPortID(srv.ID))
		}
	}
	for _, p := range []store.ServerListParams{{IPEq: "192.168.1.2"}, {IP: "168.1.2"}, {IP: "192.168"}} {
		p.ProjectID = project
		list, n, err := s.ServerList(ctx, p)
		if err != nil || n != 3 || len(list) != 3 {
			t.Fatalf("ServerList(%+v) = %d, %d rows, %v; want all 3 servers", p, n, len(list), err)
		}
	}
	// Deleting a server takes its conflict record with it.
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerDelete(ctx, servers[2].ID) }); err != nil {
		t.Fatal(err)
	}
	if _, n, err := s.ServerList(ctx, store.ServerListParams{ProjectID: project, IPEq: "192.168.1.2"}); err != nil || n != 2 {
		t.Fatalf("ServerList(ip_eq) after a delete = %d, %v; want 2", n, err)
	}
}
