package multihost

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/testd"
	"github.com/rs/zerolog"
)

const (
	// jobLease is the nodes' job lease (the engine's default): a node
	// that cannot renew a lease stops the run at half of it, before it
	// can expire.
	jobLease = 15 * time.Second
	// cutFor is how long the node is cut off: longer than its lease.
	cutFor = jobLease + 5*time.Second
	// hostDownAfter is the nodes' --host-down-after.
	hostDownAfter = 5 * time.Second
)

// TestPartition cuts one node of three off PostgreSQL (a black hole in a
// TCP proxy between them: nothing comes back, nothing is refused) for
// longer than its job lease, while it runs reinstalls of its servers.
// Meanwhile the other nodes serve; the cut-off node's host is shown down
// and new operations on its servers are refused at once; its running jobs
// wait for it (no other node may run them: the disks are there). The node
// must stop acting on the jobs whose lease it could not renew: its call
// journal shows no driver call from a lease's end to the reconnection.
// Reconnected, it finishes every job, none run twice.
func TestPartition(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// The proxy is set up on the first node's database URL.
	var proxy *toxiproxy.Proxy
	t.Cleanup(func() {
		if proxy != nil {
			proxy.Stop()
		}
	})
	const cutNode = 2
	c := startCluster(t, nodes, "", func(i int, cfg *testd.Config) {
		if i != cutNode {
			return
		}
		u, err := url.Parse(cfg.Store)
		if err != nil {
			t.Fatal(err)
		}
		srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
		proxy = toxiproxy.NewProxy(srv, "postgres-"+cfg.Host, "127.0.0.1:0", u.Host)
		if err := proxy.Start(); err != nil {
			t.Fatal(err)
		}
		u.Host = proxy.Listen
		cfg.Store = u.String()
	}, "--sim-latency", "300ms", "--host-down-after", hostDownAfter.String())
	cut := c.Node(cutNode)
	others := []*client.Client{c.Node(0).Client(), c.Node(1).Client()}
	clients := clientsOf(c)
	imageID := linuxImage(ctx, t, clients[0])

	job, ids, err := clients[0].CreateServers(ctx, createRequest("partition", imageID, 30))
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(ctx, t, clients, []string{job})
	list, err := allServers(ctx, clients[0])
	if err != nil {
		t.Fatal(err)
	}
	hostOf := map[string]string{}
	var mine, theirs []string // servers of the cut node's host, of the others'
	for _, s := range list {
		hostOf[s.ID] = s.Host
		if s.Host == cut.Host() {
			mine = append(mine, s.ID)
		} else {
			theirs = append(theirs, s.ID)
		}
	}
	if len(mine) < 2 || len(theirs) < 1 {
		t.Fatalf("servers per host: %d on %s, %d elsewhere; want some on each (%v)", len(mine), cut.Host(), len(theirs), ids)
	}

	// Reinstall the cut node's servers but one (kept for the refusal
	// below), through the other nodes; cut once they run.
	spare := mine[len(mine)-1]
	var jobs []string
	for i, id := range mine[:len(mine)-1] {
		job, err := others[i%2].ReinstallServer(ctx, id, client.ReinstallOptions{AdminPass: adminPass, Mode: client.ModeWithStopServer})
		if err != nil {
			t.Fatalf("reinstall %s: %v", id, err)
		}
		jobs = append(jobs, job)
	}
	waitRunning(ctx, t, others[0], jobs)
	t.Logf("cutting node %s off PostgreSQL for %v", cut.Host(), cutFor)
	cutAt := time.Now()
	if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(
		`{"name":"cut","type":"timeout","stream":"downstream","toxicity":1,"attributes":{"timeout":0}}`)); err != nil {
		t.Fatal(err)
	}

	// The other nodes serve meanwhile: a reinstall on another host runs.
	other, err := others[1].ReinstallServer(ctx, theirs[0], client.ReinstallOptions{AdminPass: adminPass, Mode: client.ModeWithStopServer})
	if err != nil {
		t.Fatalf("reinstall %s (host %s) while %s is cut off: %v", theirs[0], hostOf[theirs[0]], cut.Host(), err)
	}
	mustSucceed(ctx, t, others, []string{other})
	// Once its heartbeat is older than --host-down-after, the host is
	// shown down, and a new operation on its servers is refused at once.
	c.waitHostState(ctx, t, cut.Host(), "down", cutAt.Add(cutFor-time.Second))
	t.Logf("%s shown down %v after the cut", cut.Host(), time.Since(cutAt).Round(time.Millisecond))
	_, err = others[0].ReinstallServer(ctx, spare, client.ReinstallOptions{AdminPass: adminPass, Mode: client.ModeWithStopServer})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status < 400 || ae.Status >= 500 || ae.Code == "" {
		t.Errorf("a reinstall of %s on host %s, shown down: %v; want it refused at once with a client error and a code", spare, cut.Host(), errOrOK(err))
	} else {
		t.Logf("refused: %v", err)
	}
	// None of its jobs finished without it.
	for _, id := range jobs {
		j, err := others[0].ShowJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Done() {
			t.Errorf("job %s of host %s is %s while the host is cut off", id, cut.Host(), j.Status)
		}
	}
	time.Sleep(time.Until(cutAt.Add(cutFor)))
	restoredAt := time.Now()
	t.Logf("reconnecting node %s", cut.Host())
	if err := proxy.Toxics.RemoveToxic(ctx, "cut"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(ctx, t, clients, jobs)

	report := checkJournals(t, c.journals(t))
	resumed := 0
	for _, id := range jobs {
		leases := map[string]bool{}
		for _, e := range report.byJob[id] {
			leases[e.Lease] = true
			if e.host != cut.Host() {
				t.Errorf("job %s of host %s ran on %s", id, cut.Host(), e.host)
			}
			if e.Time.After(cutAt.Add(jobLease)) && e.Time.Before(restoredAt) {
				t.Errorf("job %s: node %s made %s at %s, %v after it was cut off (lease %v): it acted on a lost lease",
					id, e.host, e.Op, e.Time.Format(time.RFC3339Nano), e.Time.Sub(cutAt).Round(time.Millisecond), jobLease)
			}
		}
		if len(leases) > 1 {
			resumed++
		}
	}
	if resumed == 0 {
		t.Errorf("no job of %s was run by two leases: the cut did not interrupt any run, so it proved nothing", cut.Host())
	}
	t.Logf("%d of %d jobs of %s resumed under a new lease after the cut", resumed, len(jobs), cut.Host())
}

// waitRunning waits until every job is RUNNING (or done).
func waitRunning(ctx context.Context, t *testing.T, cl *client.Client, ids []string) {
	t.Helper()
	for _, id := range ids {
		for {
			j, err := cl.ShowJob(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status != client.JobInit {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("job %s never started: %v", id, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// waitHostState polls `ecsd hosts --json` until host is in state (up or
// down), or fails the test at deadline.
func (c *cluster) waitHostState(ctx context.Context, t *testing.T, host, state string, deadline time.Time) {
	t.Helper()
	for {
		var rows []hostRow
		if err := c.HostsJSON(ctx, &rows, "--host-down-after", hostDownAfter.String()); err != nil {
			t.Fatal(err)
		}
		for _, h := range rows {
			if h.Name == host && h.State == state {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s is not %s by %s: %+v", host, state, deadline.Format(time.RFC3339), rows)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
