package multihost

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
	"github.com/ecsproject/ecsd/internal/testd"
)

var seedFlag = flag.Int64("multihost.seed", 0, "seed of the random choices (0: a new one, logged)")

func TestMain(m *testing.M) {
	flag.Parse()
	code := pgtest.Main(m)
	testd.Cleanup()
	os.Exit(code)
}

// newRand returns the test's random source, logging its seed.
func newRand(t *testing.T) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (replay: go test -run '^%s$' -multihost.seed=%d)", seed, t.Name(), seed)
	return rand.New(rand.NewPCG(uint64(seed), 0))
}

// cluster is a testd.Cluster whose nodes journal their driver calls.
type cluster struct {
	*testd.Cluster
	t   *testing.T
	dir string
}

// journalPath is where node host journals its driver calls.
func (c *cluster) journalPath(host string) string {
	return filepath.Join(c.dir, host+".journal")
}

// startCluster starts n nodes (driver sim) on a fresh database of store
// (the admin DSN of a server; "" for the one pgtest.Main found), with args
// for every node; tune adjusts a node's configuration. The nodes are
// stopped when the test ends, their logs reported if it failed.
func startCluster(t *testing.T, n int, adminDSN string, tune func(i int, c *testd.Config), args ...string) *cluster {
	t.Helper()
	var dsn string
	if adminDSN == "" {
		dsn = pgtest.Database(t, "")
	} else {
		name := fmt.Sprintf("ecsd_mh_%d_%d", os.Getpid(), time.Now().UnixNano())
		var err error
		dsn, err = pgtest.CreateDatabase(context.Background(), adminDSN, name, "")
		if err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir}
	tc, err := testd.NewCluster(testd.ClusterConfig{
		Nodes: n,
		Dir:   dir,
		Store: dsn,
		Node:  testd.Config{Args: args},
		Tune: func(i int, cfg *testd.Config) {
			cfg.Args = append(cfg.Args, "--sim-journal", c.journalPath(cfg.Host))
			if tune != nil {
				tune(i, cfg)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Cluster = tc
	t.Cleanup(func() {
		if err := tc.Stop(); err != nil {
			t.Errorf("stopping the nodes: %v", err)
		}
		if t.Failed() {
			t.Log(tc.LogReport(40))
		}
	})
	if err := tc.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// linuxImage is an active Linux image of the catalog whose disks take a
// password or key pair from the host (the reinstalls here are v1 ones).
func linuxImage(ctx context.Context, t *testing.T, c *client.Client) string {
	t.Helper()
	images, err := c.ListImages(ctx)
	if err != nil {
		t.Fatalf("list images: %v", err)
	}
	for _, img := range images {
		if img.OSType == "Linux" && img.Status == "active" && img.Injection == "supported" {
			return img.ID
		}
	}
	t.Fatalf("no active Linux image with host-side injection in %+v", images)
	return ""
}

// createRequest asks for count servers of flavor s6.small.1 (1 vCPU).
func createRequest(name, imageID string, count int) client.CreateServerRequest {
	return client.CreateServerRequest{
		Name: name, ImageRef: imageID, FlavorRef: "s6.small.1", VPCID: "vpc-mh",
		NICs: []client.NIC{{SubnetID: "subnet-mh"}}, RootVolume: client.RootVolume{VolumeType: "SSD"}, Count: count,
	}
}

// retry calls fn until it succeeds, fails with something other than a
// transport error or a 503 (a node that is down or cut off), or ctx ends.
// It returns the last error.
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// transient reports whether err is a node that could not answer: no
// connection, or 503.
func transient(err error) bool {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Status == 503
	}
	return err != nil
}

// waitJobs polls the jobs through the clients (round robin, so a node
// that is down or cut off is passed over) until every one and its
// sub-jobs are SUCCESS or FAIL, or ctx ends; it returns the last answer
// for each.
func waitJobs(ctx context.Context, clients []*client.Client, ids []string) (map[string]client.Job, error) {
	last := make(map[string]client.Job, len(ids))
	pending := slices.Clone(ids)
	for n := 0; ; {
		var still []string
		for _, id := range pending {
			var j client.Job
			err := retry(ctx, func() error {
				n++
				var err error
				j, err = clients[n%len(clients)].ShowJob(ctx, id)
				return err
			})
			if err != nil {
				return last, fmt.Errorf("show job %s: %w (%d of %d jobs unfinished)", id, err, len(pending), len(ids))
			}
			last[id] = j
			if !jobDone(j) {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) == 0 {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%d of %d jobs unfinished, e.g. %s: %w", len(pending), len(ids), pending[0], ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// jobDone reports whether j and all its sub-jobs are SUCCESS or FAIL.
func jobDone(j client.Job) bool {
	if !j.Done() {
		return false
	}
	for _, s := range j.Entities.SubJobs {
		if s.Status != client.JobSuccess && s.Status != client.JobFail {
			return false
		}
	}
	return true
}

// mustSucceed waits for the jobs and fails the test unless every one and
// its sub-jobs are SUCCESS. It returns the jobs.
func mustSucceed(ctx context.Context, t *testing.T, clients []*client.Client, ids []string) map[string]client.Job {
	t.Helper()
	jobs, err := waitJobs(ctx, clients, ids)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, id := range ids {
		j := jobs[id]
		ok := j.Status == client.JobSuccess
		for _, s := range j.Entities.SubJobs {
			ok = ok && s.Status == client.JobSuccess
		}
		if !ok {
			if bad++; bad <= 5 {
				t.Errorf("job %s (%s) is %s: %s %s, sub-jobs %+v", id, j.Type, j.Status, j.ErrorCode, j.FailReason, j.Entities.SubJobs)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d jobs did not succeed", bad, len(ids))
	}
	return jobs
}

// allServers lists every server of the client's project.
func allServers(ctx context.Context, c *client.Client) ([]client.Server, error) {
	var out []client.Server
	for page := 1; ; page++ {
		var resp client.ListServersResponse
		err := retry(ctx, func() error {
			var err error
			resp, err = c.ListServers(ctx, client.ListServersOptions{Offset: page, Limit: 1000})
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.Servers...)
		if len(resp.Servers) < 1000 || len(out) >= resp.Count {
			return out, nil
		}
	}
}

// clientsOf are clients of every node of c.
func clientsOf(c *cluster) []*client.Client {
	var out []*client.Client
	for _, d := range c.Nodes() {
		out = append(out, d.Client())
	}
	return out
}

// journalCall is a journal entry with the node that wrote it and its
// place in that node's journal.
type journalCall struct {
	sim.JournalEntry
	host string
	seq  int
}

// journals reads every node's call journal.
func (c *cluster) journals(t *testing.T) map[string][]journalCall {
	t.Helper()
	out := map[string][]journalCall{}
	for _, host := range c.Hosts() {
		entries, err := sim.ReadJournal(c.journalPath(host))
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range entries {
			out[host] = append(out[host], journalCall{JournalEntry: e, host: host, seq: i})
		}
	}
	return out
}

// leaseAttempt splits a lease token owner#attempt.
func leaseAttempt(token string) (owner string, attempt int, ok bool) {
	i := strings.LastIndexByte(token, '#')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(token[i+1:])
	return token[:i], n, err == nil
}

// journalReport is what checkJournals found.
type journalReport struct {
	// byJob are every job's calls, in the order they were made.
	byJob map[string][]journalCall
	// byServer maps a server to the hosts whose driver acted on it.
	byServer map[string]map[string]bool
}

// checkJournals checks the call journals of every node:
//   - every call made for a job carries a lease of the node that made it
//     (a node runs only its own host's jobs, under its own name);
//   - one job's calls are all made by one node;
//   - the runs of one job never interleave: once a run (lease attempt n)
//     has made a call, no earlier run makes another, so no run acted
//     after its lease was lost to the next.
func checkJournals(t *testing.T, journals map[string][]journalCall) journalReport {
	t.Helper()
	r := journalReport{byJob: map[string][]journalCall{}, byServer: map[string]map[string]bool{}}
	for host, calls := range journals {
		for _, e := range calls {
			if e.Server != "" {
				if r.byServer[e.Server] == nil {
					r.byServer[e.Server] = map[string]bool{}
				}
				r.byServer[e.Server][host] = true
			}
			if e.Job == "" {
				continue
			}
			owner, _, ok := leaseAttempt(e.Lease)
			if !ok || owner != host {
				t.Errorf("node %s made %s for job %s under lease %q: not its own", host, e.Op, e.Job, e.Lease)
			}
			r.byJob[e.Job] = append(r.byJob[e.Job], e)
		}
	}
	twice := 0
	for job, calls := range r.byJob {
		hosts := map[string]bool{}
		highest := 0
		for _, e := range calls {
			hosts[e.host] = true
			_, attempt, _ := leaseAttempt(e.Lease)
			if attempt < highest {
				if twice++; twice <= 10 {
					t.Errorf("job %s: run %s made %s (server %q disk %q) at %s after run #%d had acted: a run acted after losing its lease",
						job, e.Lease, e.Op, e.Server, e.Disk, e.Time.Format(time.RFC3339Nano), highest)
				}
			}
			highest = max(highest, attempt)
		}
		if len(hosts) > 1 {
			t.Errorf("job %s ran on several hosts: %v", job, hosts)
		}
	}
	return r
}

// runRandomly runs fn(i) for i in [0, n) on workers goroutines.
func runRandomly(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
