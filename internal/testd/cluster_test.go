package testd

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestClusterConfig: every node gets its own host name, data dir and log
// dir, the shared store and secret key file (32 bytes, 0600, kept when it
// exists), then what Tune says.
func TestClusterConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const store = "postgres://ecs@127.0.0.1:1/db?sslmode=disable"
	c, err := NewCluster(ClusterConfig{Nodes: 3, Dir: dir, Store: store, Node: Config{Args: []string{"--sim-latency", "1ms"}},
		Tune: func(i int, cfg *Config) {
			if i == 2 {
				cfg.Args = append(cfg.Args, "--workers", "2")
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(c.SecretKeyFile())
	if err != nil || len(key) != 32 {
		t.Fatalf("secret key file: %d bytes, %v", len(key), err)
	}
	if fi, _ := os.Stat(c.SecretKeyFile()); fi.Mode().Perm() != 0o600 {
		t.Errorf("secret key file mode %v, want 0600", fi.Mode().Perm())
	}
	if got := c.Hosts(); !slices.Equal(got, []string{"node1", "node2", "node3"}) {
		t.Errorf("hosts %v", got)
	}
	for i, d := range c.Nodes() {
		want := []string{"--data-dir", filepath.Join(dir, d.Host()), "--store", store, "--secret-key-file", c.SecretKeyFile()}
		if got := d.StoreArgs(); !slices.Equal(got, want) {
			t.Errorf("node %d: StoreArgs %v, want %v", i, got, want)
		}
		wantArgs := []string{"--sim-latency", "1ms"}
		if i == 2 {
			wantArgs = append(wantArgs, "--workers", "2")
		}
		if !slices.Equal(d.cfg.Args, wantArgs) {
			t.Errorf("node %d: args %v, want %v", i, d.cfg.Args, wantArgs)
		}
		if c.NodeByHost(d.Host()) != d {
			t.Errorf("NodeByHost(%s) is not node %d", d.Host(), i)
		}
	}
	// A second cluster on the same directory keeps the key.
	if _, err := NewCluster(ClusterConfig{Nodes: 1, Dir: dir, Store: store}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(c.SecretKeyFile()); !bytes.Equal(again, key) {
		t.Error("a second NewCluster replaced the secret key")
	}
}

// TestClusterOnPostgres starts two nodes on one database: the second has
// no credentials.json of its own and serves with the first's credential;
// what one node creates the other shows; a credential added through one
// works on the other; a node killed -9 starts again on its data dir.
func TestClusterOnPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := StartCluster(ClusterConfig{Nodes: 2, Dir: t.TempDir(), Store: pgtest.Database(t, "")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Log(c.LogReport(30))
		}
	})
	one, two := c.Node(0), c.Node(1)
	if _, err := os.Stat(filepath.Join(two.DataDir(), "credentials.json")); err == nil {
		t.Log("node2 wrote a credentials.json too")
	}
	if one.Credentials().AccessKey != two.Credentials().AccessKey || two.Credentials().Endpoint != two.Endpoint() {
		t.Errorf("node2's credential %+v; want node1's key with node2's endpoint", two.Credentials())
	}
	kp, err := one.Client().CreateKeypair(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := two.Client().ShowKeypair(ctx, "shared"); err != nil || got.Fingerprint != kp.Fingerprint {
		t.Fatalf("node2 shows %+v, %v; want node1's key pair", got, err)
	}
	added, err := two.AddCredential(ctx)
	if err != nil {
		t.Fatal(err)
	}
	added.Endpoint, added.HTTPClient = one.Endpoint(), one.HTTPClient()
	if err := retryUntil(ctx, func() error { _, err := client.New(added).ListKeypairs(ctx); return err }); err != nil {
		t.Fatalf("node1 refuses a credential added through node2's store: %v", err)
	}
	if err := two.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Client().ShowKeypair(ctx, "shared"); err != nil {
		t.Fatalf("node2 after kill -9 and start: %v", err)
	}
}

func retryUntil(ctx context.Context, fn func() error) error {
	var err error
	for range 100 {
		if err = fn(); err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return err
}

// TestPostgresServer stops a PostgreSQL server and starts it again on the
// same port with the same data.
func TestPostgresServer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	admin, stop, err := pgtest.Server() // a server of its own: stopping it must not disturb the other tests
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	var dir, port string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	conn.QueryRow(ctx, "SHOW port").Scan(&port)
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	s, err := NewPostgresServer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
		c.Close()
		t.Fatal("the server still accepts connections after Stop")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("after Start: %v", err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after Start: %d, %v; want the row written before", v, err)
	}
}
