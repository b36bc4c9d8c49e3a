package multihost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
)

const (
	nodes       = 3
	fleet       = 300 // servers
	batch       = 10  // servers per create call
	hostVCPUs   = 7   // each host's vCPUs; at the default ratio 16, 112 one-vCPU servers
	cpuRatio    = 16
	perHostMax  = hostVCPUs * cpuRatio
	adminPass   = "Mh-Fleet-Passw0rd"
	fleetLimit  = 4 * time.Minute // a timeout for the whole test, not a speed assertion
	simLatency  = "50ms"          // keeps every job in flight long enough for a kill to land mid-job
	submitters  = 8
	killAfterOf = 3 // the node is killed once a third of the reinstalls are submitted
)

// TestFleet creates 300 servers through random nodes of three, checks
// that they are spread over the hosts without exceeding any host's
// capacity, reinstalls all of them through random nodes while one node is
// killed -9 mid-flight and restarted, and then checks that every job
// succeeded, ran on its server's host only, and that no run of a job
// acted after another run of it had started.
func TestFleet(t *testing.T) {
	rng := newRand(t)
	ctx, cancel := context.WithTimeout(t.Context(), fleetLimit)
	defer cancel()
	c := startCluster(t, nodes, "", nil,
		"--sim-latency", simLatency, "--host-vcpus", fmt.Sprint(hostVCPUs), "--cpu-allocation-ratio", fmt.Sprint(cpuRatio))
	clients := clientsOf(c)
	imageID := linuxImage(ctx, t, clients[0])

	// Create: 30 batches of 10 through random nodes.
	var (
		mu         sync.Mutex
		createJobs []string
		serverIDs  []string
	)
	via := make([]int, fleet/batch)
	for i := range via {
		via[i] = rng.IntN(len(clients))
	}
	runRandomly(fleet/batch, submitters, func(i int) {
		cl := clients[via[i]]
		job, ids, err := cl.CreateServers(ctx, createRequest(fmt.Sprintf("fleet-%d", i), imageID, batch))
		if err != nil {
			t.Errorf("create batch %d through %s: %v", i, cl.Config().Endpoint, err)
			return
		}
		mu.Lock()
		createJobs = append(createJobs, job)
		serverIDs = append(serverIDs, ids...)
		mu.Unlock()
	})
	if t.Failed() {
		t.FailNow()
	}
	mustSucceed(ctx, t, clients, createJobs)
	hostOf := checkPlacement(ctx, t, c, clients[0], serverIDs)

	// Reinstall every server through random running nodes; kill one node
	// once a third are submitted, and start it again once all are.
	victim := c.Node(rng.IntN(nodes))
	var (
		gate      sync.RWMutex // a submission holds it shared; the kill, alone
		submitted atomic.Int32
		killed    sync.Once
		jobOf     = map[string]string{} // reinstall job -> server
	)
	order := rng.Perm(len(serverIDs))
	picks := make([]int, len(order))
	for i := range picks {
		picks[i] = rng.IntN(1 << 20)
	}
	runRandomly(len(order), submitters, func(i int) {
		id := serverIDs[order[i]]
		if int(submitted.Load()) >= fleet/killAfterOf {
			killed.Do(func() {
				gate.Lock()
				defer gate.Unlock()
				t.Logf("kill -9 node %s after %d reinstalls were submitted", victim.Host(), submitted.Load())
				if err := victim.Kill(); err != nil {
					t.Errorf("kill %s: %v", victim.Host(), err)
				}
			})
		}
		gate.RLock()
		defer gate.RUnlock()
		d := c.Pick(picks[i])
		job, err := d.Client().ReinstallServer(ctx, id, client.ReinstallOptions{AdminPass: adminPass, Mode: client.ModeWithStopServer})
		if err != nil {
			t.Errorf("reinstall %s (host %s) through %s: %v", id, hostOf[id], d.Host(), err)
			return
		}
		submitted.Add(1)
		mu.Lock()
		jobOf[job] = id
		mu.Unlock()
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("restarting node %s", victim.Host())
	if err := victim.Start(); err != nil {
		t.Fatalf("restart %s: %v", victim.Host(), err)
	}
	var reinstallJobs []string
	for job := range jobOf {
		reinstallJobs = append(reinstallJobs, job)
	}
	mustSucceed(ctx, t, clients, reinstallJobs)
	checkPlacement(ctx, t, c, clients[0], serverIDs)

	// Every job ran on its server's host, once.
	report := checkJournals(t, c.journals(t))
	resumed := 0
	for job, server := range jobOf {
		calls := report.byJob[job]
		if len(calls) == 0 {
			t.Errorf("reinstall job %s of server %s made no driver call", job, server)
			continue
		}
		if calls[0].host != hostOf[server] {
			t.Errorf("reinstall job %s of server %s (host %s) ran on %s", job, server, hostOf[server], calls[0].host)
		}
		if calls[0].Lease != calls[len(calls)-1].Lease {
			resumed++
		}
	}
	// The kill must have interrupted some runs, or it proved nothing.
	t.Logf("%d reinstall jobs of %s were interrupted by the kill and resumed under a new lease", resumed, victim.Host())
	if resumed == 0 {
		t.Errorf("the kill of %s interrupted no job run", victim.Host())
	}
	for _, id := range serverIDs {
		for host := range report.byServer[id] {
			if host != hostOf[id] {
				t.Errorf("server %s of host %s was acted on by node %s", id, hostOf[id], host)
			}
		}
		// The simulated server exists on its own host only.
		for _, d := range c.Nodes() {
			_, err := os.Stat(filepath.Join(d.DataDir(), "sim", "servers", id+".json"))
			if has := err == nil; has != (d.Host() == hostOf[id]) {
				t.Errorf("server %s of host %s: on node %s's disk: %v", id, hostOf[id], d.Host(), has)
			}
		}
	}
}

// checkPlacement lists the servers and checks that every one of ids is
// there on a host of the cluster, that no host holds more than its
// capacity allows, and that every host holds some. It returns each
// server's host.
func checkPlacement(ctx context.Context, t *testing.T, c *cluster, cl *client.Client, ids []string) map[string]string {
	t.Helper()
	list, err := allServers(ctx, cl)
	if err != nil {
		t.Fatalf("list servers: %v", err)
	}
	hostOf := map[string]string{}
	perHost := map[string]int{}
	for _, s := range list {
		hostOf[s.ID] = s.Host
		perHost[s.Host]++
		if s.HypervisorHostname != s.Host {
			t.Errorf("server %s: OS-EXT-SRV-ATTR:hypervisor_hostname %q, host %q", s.ID, s.HypervisorHostname, s.Host)
		}
		if s.Status == "ERROR" {
			t.Errorf("server %s is in ERROR: %+v", s.ID, s.Fault)
		}
	}
	for _, id := range ids {
		if _, ok := hostOf[id]; !ok {
			t.Errorf("server %s is missing from the list", id)
		}
	}
	t.Logf("servers per host: %v", perHost)
	for _, host := range c.Hosts() {
		n := perHost[host]
		if n == 0 {
			t.Errorf("host %s holds no server: the servers are not spread", host)
		}
		if n > perHostMax {
			t.Errorf("host %s holds %d one-vCPU servers, more than its %d vCPUs x %d allow", host, n, hostVCPUs, cpuRatio)
		}
	}
	c.checkHosts(ctx, t, perHost)
	for _, host := range c.Hosts() {
		delete(perHost, host)
	}
	for host, n := range perHost {
		t.Errorf("%d servers are on %q, not a host of the cluster", n, host)
	}
	return hostOf
}

// hostRow is a host as `ecsd hosts --json` shows it.
type hostRow struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Servers   int       `json:"servers"`
	Capacity  resources `json:"capacity"`  // the host's own
	Offered   resources `json:"offered"`   // capacity times the allocation ratios
	Allocated resources `json:"allocated"` // reserved by its servers
}

type resources struct {
	VCPUs  float64 `json:"vcpus"`
	RAMMB  float64 `json:"ram_mb"`
	DiskGB float64 `json:"disk_gb"`
}

// checkHosts checks what `ecsd hosts --json` says against the servers
// the API shows on each host (perHost): every host of the cluster up,
// its server count right, nothing allocated beyond what it offers, and
// one vCPU allocated per (one-vCPU) server.
func (c *cluster) checkHosts(ctx context.Context, t *testing.T, perHost map[string]int) {
	t.Helper()
	var rows []hostRow
	if err := c.HostsJSON(ctx, &rows); err != nil {
		t.Errorf("ecsd hosts: %v", err)
		return
	}
	seen := map[string]bool{}
	for _, h := range rows {
		seen[h.Name] = true
		t.Logf("host %s: %s, %d servers, allocated %+v of offered %+v", h.Name, h.State, h.Servers, h.Allocated, h.Offered)
		if h.Servers != perHost[h.Name] {
			t.Errorf("ecsd hosts: %s holds %d servers; the API shows %d on it", h.Name, h.Servers, perHost[h.Name])
		}
		if h.Allocated.VCPUs > h.Offered.VCPUs || h.Allocated.RAMMB > h.Offered.RAMMB || h.Allocated.DiskGB > h.Offered.DiskGB {
			t.Errorf("ecsd hosts: %s is over capacity: allocated %+v, offered %+v", h.Name, h.Allocated, h.Offered)
		}
		if h.Allocated.VCPUs != float64(h.Servers) {
			t.Errorf("ecsd hosts: %s has %v vCPUs allocated for %d one-vCPU servers", h.Name, h.Allocated.VCPUs, h.Servers)
		}
		if h.Offered.VCPUs != hostVCPUs*cpuRatio {
			t.Errorf("ecsd hosts: %s offers %v vCPUs; want %d x %d", h.Name, h.Offered.VCPUs, hostVCPUs, cpuRatio)
		}
	}
	for _, host := range c.Hosts() {
		if !seen[host] {
			t.Errorf("ecsd hosts does not list %s", host)
		}
	}
}
