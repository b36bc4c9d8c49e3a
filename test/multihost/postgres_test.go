package multihost

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
	"github.com/ecsproject/ecsd/internal/testd"
	"github.com/jackc/pgx/v5"
)

// TestPostgresRestart stops PostgreSQL while reinstalls run on two nodes:
// meanwhile every node answers 503 with an error code and a message (and
// accepts nothing), then, PostgreSQL started again, every node serves
// again and every job it accepted finishes SUCCESS, nothing lost.
//
// It runs its own PostgreSQL server (through scripts/postgres.sh, as
// pgtest does), so that stopping it disturbs no other test.
func TestPostgresRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	admin, stop, err := pgtest.Server()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	pg := postgresServer(ctx, t, admin)
	const servers = 20
	c := startCluster(t, 2, admin, nil, "--sim-latency", "150ms")
	clients := clientsOf(c)
	imageID := linuxImage(ctx, t, clients[0])
	job, ids, err := clients[0].CreateServers(ctx, createRequest("pgrestart", imageID, servers))
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(ctx, t, clients, []string{job})

	var jobs []string
	for i, id := range ids {
		job, err := clients[i%len(clients)].ReinstallServer(ctx, id, client.ReinstallOptions{AdminPass: adminPass, Mode: client.ModeWithStopServer})
		if err != nil {
			t.Fatalf("reinstall %s: %v", id, err)
		}
		jobs = append(jobs, job)
	}

	t.Log("stopping PostgreSQL")
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range c.Nodes() {
		waitUnavailable(ctx, t, d)
		// Nothing is accepted meanwhile.
		_, err := d.Client().ReinstallServer(ctx, ids[0], client.ReinstallOptions{AdminPass: adminPass})
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != 503 {
			t.Errorf("node %s: a reinstall while PostgreSQL is down: %v; want 503", d.Host(), err)
		}
	}
	// Leave it down long enough for the running jobs' steps to need it.
	time.Sleep(2 * time.Second)
	t.Log("starting PostgreSQL again")
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range c.Nodes() {
		if err := retry(ctx, func() error { _, err := d.Client().ListFlavors(ctx); return err }); err != nil {
			t.Fatalf("node %s after PostgreSQL came back: %v", d.Host(), err)
		}
	}
	mustSucceed(ctx, t, clients, jobs)
	list, err := allServers(ctx, clients[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != servers {
		t.Errorf("%d servers after the restart, want %d", len(list), servers)
	}
	checkJournals(t, c.journals(t))
}

// postgresServer is the server admin reaches, to stop and start.
func postgresServer(ctx context.Context, t *testing.T, admin string) *testd.PostgresServer {
	t.Helper()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var dir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	s, err := testd.NewPostgresServer(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitUnavailable waits until node d answers an API call with 503 and
// checks that the answer says what is wrong (a code and a message).
func waitUnavailable(ctx context.Context, t *testing.T, d *testd.Daemon) {
	t.Helper()
	cl := d.Client()
	deadline := time.Now().Add(30 * time.Second) // a timeout, not a speed assertion
	for {
		_, err := cl.ListServers(ctx, client.ListServersOptions{Limit: 1})
		var ae *client.APIError
		if errors.As(err, &ae) {
			if ae.Status == 503 {
				if ae.Code == "" || ae.Message == "" {
					t.Errorf("node %s: 503 without a code and a message: %+v", d.Host(), ae)
				}
				return
			}
			if ae.Status >= 500 {
				t.Fatalf("node %s without its database: %v; want 503", d.Host(), err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s still answers %v 30s after its database went away; want 503", d.Host(), errOrOK(err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func errOrOK(err error) string {
	if err == nil {
		return "200"
	}
	return fmt.Sprint(err)
}
