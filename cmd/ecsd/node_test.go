package main

import (
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/datadir"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

func TestNodeFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ECS_STORE": "postgres://ecs@db.example:5432/ecsd?sslmode=disable", "ECS_HOST": "node-2.example",
		"ECS_ADVERTISE": "https://10.0.0.2:8443", "ECS_SECRET_KEY_FILE": "/etc/ecsd/secret.key", "ECS_HOST_DOWN_AFTER": "45s"}
	c, err := parseServe(nil, lookupIn(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != env["ECS_STORE"] || c.Host != "node-2.example" || c.Advertise != "https://10.0.0.2:8443" ||
		c.SecretKeyFile != "/etc/ecsd/secret.key" || c.HostDownAfter != 45*time.Second {
		t.Errorf("node config from env: %+v", c)
	}
	// Defaults: SQLite in the data dir, the OS host name, a 30s heartbeat limit.
	c, err = parseServe(nil, lookupIn(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != "" || c.Host != hostname() || c.Advertise != "" || c.SecretKeyFile != "" || c.HostDownAfter != 30*time.Second {
		t.Errorf("node defaults: %+v", c)
	}
	if got := secretKeyPath(c.SecretKeyFile, "/var/lib/ecsd"); got != "/var/lib/ecsd/secret.key" {
		t.Errorf("default secret key file %q", got)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", "mysql://x@y/z"}, "--store: must be a PostgreSQL URL"},
		{[]string{"--store", "/var/lib/ecsd.db"}, "--store: must be a PostgreSQL URL"},
		{[]string{"--store", "postgresql://ecs@127.0.0.1:5432/db"}, ""},
		{[]string{"--host", ""}, "--host: "},
		{[]string{"--host", "node#1"}, "--host: "},
		{[]string{"--host", "-node"}, "--host: "},
		{[]string{"--host", strings.Repeat("h", 64)}, "--host: "},
		{[]string{"--host", "node_1.dc-2"}, ""},
		{[]string{"--advertise", "10.0.0.2:8080"}, "--advertise: must be a URL"},
		{[]string{"--advertise", "ftp://10.0.0.2:8080"}, "--advertise: must be a URL"},
		{[]string{"--advertise", "http://10.0.0.2:8080/api"}, "--advertise: must be a URL"},
		{[]string{"--advertise", "http://10.0.0.2:8080/"}, ""},
		{[]string{"--host-down-after", "0s"}, "--host-down-after: must be positive"},
	} {
		_, err := parseServe(tt.args, lookupIn(nil))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v, want no error", tt.args, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: %v, want an error with %q", tt.args, err, tt.want)
		}
	}
	if _, err := parseServe(nil, lookupIn(map[string]string{"ECS_HOST_DOWN_AFTER": "soon"})); err == nil ||
		!strings.Contains(err.Error(), `ECS_HOST_DOWN_AFTER="soon" is not a duration`) {
		t.Errorf("ECS_HOST_DOWN_AFTER=soon: %v", err)
	}
}

// A node whose secret key cannot open the credentials in the store refuses
// to start, and says so; a node without a key file is not given a new one
// when the store holds credentials.
func TestSecretKeyOfAnotherCloudRefused(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sim")
	startAndStop(t, cfg)

	// --secret-key-file naming a missing file: refused, and not made.
	missing := cfg
	missing.SecretKeyFile = filepath.Join(t.TempDir(), "secret.key")
	_, err := start(t.Context(), missing, quietLog())
	if err == nil || !strings.Contains(err.Error(), missing.SecretKeyFile) || !strings.Contains(err.Error(), "same key") {
		t.Fatalf("start without the key file: %v", err)
	}
	if _, err := os.Stat(missing.SecretKeyFile); err == nil {
		t.Error("a start refused for a missing key made the key file")
	}

	// Another cloud's key (a valid key, but not the one that sealed the
	// credentials): refused.
	other := cfg
	other.SecretKeyFile = filepath.Join(t.TempDir(), "other.key")
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(other.SecretKeyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = start(t.Context(), other, quietLog())
	if err == nil || !strings.Contains(err.Error(), "cannot open the access keys in the store") ||
		!strings.Contains(err.Error(), other.SecretKeyFile) {
		t.Fatalf("start with another cloud's key: %v", err)
	}
	// Through the command line: exit 1 with the reason.
	code, _, errOut := ecsd(t, nil, "--data-dir", cfg.DataDir, "--listen", "127.0.0.1:0", "--secret-key-file", other.SecretKeyFile)
	if code != 1 || !strings.Contains(errOut, "cannot open the access keys in the store") {
		t.Errorf("ecsd with another cloud's key: exit %d, %q", code, errOut)
	}

	// The data dir's own key, given by --secret-key-file elsewhere: fine.
	moved := cfg
	moved.SecretKeyFile = filepath.Join(t.TempDir(), "moved.key")
	b, err := os.ReadFile(datadir.Dir{Path: cfg.DataDir}.SecretPath())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(moved.SecretKeyFile, b, 0o600)
	startAndStop(t, moved)
}

// The lease owner of a node's jobs is its host name; the leases a previous
// release held under the data dir's node id are handed back at start.
func TestLeaseOwnerIsHost(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sim")
	cfg.Host = "node-7"
	startAndStop(t, cfg)
	dir := datadir.Dir{Path: cfg.DataDir}

	// A job that issue 7's release was running under its node id.
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: dir.DBPath()})
	if err != nil {
		t.Fatal(err)
	}
	orphan := ecs.Job{ID: "0123456789abcdef0123456789abcdef", ProjectID: "p", Type: "orphan", Runnable: true, Created: time.Now()}
	if err := st.Write(t.Context(), func(tx store.Tx) error { return tx.JobInsert(t.Context(), &orphan) }); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got, err := st.JobClaim(t.Context(), store.JobClaimParams{Owner: "0f0e0d0c0b0a09080706050403020100",
		Now: now, Lease: time.Hour, Limit: 1}); err != nil || len(got) != 1 {
		t.Fatalf("claim under the old node id: %v %v", got, err)
	}
	st.Close()
	os.WriteFile(filepath.Join(cfg.DataDir, "node-id"), []byte("0f0e0d0c0b0a09080706050403020100\n"), 0o600)

	startDaemon(t, cfg)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "node-id")); !os.IsNotExist(err) {
		t.Errorf("node-id after a start: %v, want it removed", err)
	}
	c := tenant(t, cfg.DataDir, nil)
	jobID, _, err := c.CreateServers(t.Context(), client.CreateServerRequest{Name: "owned", ImageRef: "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01",
		FlavorRef: "s6.small.1", VPCID: "vpc", NICs: []client.NIC{{SubnetID: "subnet"}}, RootVolume: client.RootVolume{VolumeType: "SSD"}})
	if err != nil {
		t.Fatal(err)
	}
	if j, err := c.WaitJob(t.Context(), jobID, 20*time.Millisecond, nil); err != nil || j.Status != ecs.JobSuccess {
		t.Fatalf("create job: %+v %v", j, err)
	}
	db, err := sql.Open("sqlite", "file:"+dir.DBPath()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The orphan was taken over at once (no handler: it fails), and every
	// lease is the host's.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status string
		if err := db.QueryRow(`SELECT status FROM jobs WHERE id = ?`, orphan.ID).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == ecs.JobFail {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old node id's job is still %s: its lease was not handed back", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rows, err := db.Query(`SELECT DISTINCT lease_owner FROM jobs WHERE lease_owner != ''`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var owners []string
	for rows.Next() {
		var o string
		rows.Scan(&o)
		owners = append(owners, o)
	}
	if len(owners) != 1 || owners[0] != "node-7" {
		t.Errorf("lease owners %v, want [node-7]", owners)
	}
}
