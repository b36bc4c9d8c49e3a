package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
	"github.com/ecsproject/ecsd/internal/testd"
	"github.com/jackc/pgx/v5"
)

// The several-nodes comparison (-cluster): the same load on SQLite with one
// node, PostgreSQL with one node and PostgreSQL with three nodes (issue 8,
// scope item 9). Unlike the classic scenarios, the fleet is created through
// the API (placement picks each server's host), smaller (-cluster-servers),
// and every load spreads its connections over the nodes.

// Targets of the comparison.
const (
	targetPGShare       = 0.5 // PostgreSQL, 1 node, vs SQLite: submit and query rates
	targetPickupAcross  = 10 * time.Millisecond
	targetNodeRecovery  = 10 * time.Second
	pickupSamples       = 30
	pickupGap           = 60 * time.Millisecond
	clusterRecoveryJobs = 200
)

// clusterMode is one configuration of the comparison.
type clusterMode struct {
	store string // "sqlite" or "postgres"
	nodes int
}

func (m clusterMode) String() string {
	name := map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[m.store]
	if m.nodes == 1 {
		return name + ", 1 node"
	}
	return fmt.Sprintf("%s, %d nodes", name, m.nodes)
}

// parseModes parses -cluster-modes: store:nodes,...
func parseModes(s string) ([]clusterMode, error) {
	var out []clusterMode
	for part := range strings.SplitSeq(s, ",") {
		st, n, ok := strings.Cut(strings.TrimSpace(part), ":")
		nodes, err := strconv.Atoi(n)
		if !ok || err != nil || nodes < 1 || (st != "sqlite" && st != "postgres") || (st == "sqlite" && nodes != 1) {
			return nil, fmt.Errorf("-cluster-modes: %q is not sqlite:1 or postgres:N", part)
		}
		out = append(out, clusterMode{store: st, nodes: nodes})
	}
	return out, nil
}

// modeResult is what one mode measured; a nil error field and a zero
// value mean the scenario did not run.
type modeResult struct {
	mode                  clusterMode
	setup                 time.Duration
	submit, query         loadResult
	submitErr, queryErr   error
	drain                 time.Duration
	burst                 time.Duration
	burstErr              error
	pickup                []time.Duration // sorted: submit answered to first driver call
	pickupSent            []time.Duration // sorted: submit sent to first driver call
	pickupErr             error
	recovery, sinceKill   time.Duration
	recoveryDetail        string
	recoveryErr           error
	jobs, lost, twice     int
	journalErr            error
	submitServers, burstN int
}

// runCluster runs every mode and reports the comparison.
func runCluster(ctx context.Context, b *bench) error {
	modes, err := parseModes(b.cfg.clusterModes)
	if err != nil {
		return err
	}
	var pg *pgServer
	defer func() { pg.stop() }()
	var results []*modeResult
	for i, m := range modes {
		if ctx.Err() != nil {
			break
		}
		if m.store == "postgres" && pg == nil {
			if pg, err = startPostgres(ctx, b); err != nil {
				return err
			}
		}
		b.logf("cluster mode %s", m)
		r := &modeResult{mode: m}
		results = append(results, r)
		if err := b.clusterRun(ctx, r, pg, filepath.Join(b.dir, fmt.Sprintf("mode%d", i+1))); err != nil {
			b.note("%s: %v", m, err)
		}
	}
	b.clusterReport(results)
	return nil
}

// pgServer is a PostgreSQL server started through scripts/postgres.sh
// (durable: fsync on; see -pg-synchronous-commit).
type pgServer struct {
	dir, admin string
	script     string
	seq        int
}

func startPostgres(ctx context.Context, b *bench) (*pgServer, error) {
	script, err := filepath.Abs(filepath.Join("scripts", "postgres.sh"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("-cluster runs from the source tree's root (it starts PostgreSQL with scripts/postgres.sh): %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script, "start", "--owner", strconv.Itoa(os.Getpid()))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s start: %v\n%s", script, err, stderr.String())
	}
	s := &pgServer{script: script}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "ECS_PG_DIR":
			s.dir = v
		case pgtest.EnvDSN:
			s.admin = v
		}
	}
	if s.dir == "" || s.admin == "" {
		return nil, fmt.Errorf("%s start printed no cluster: %s", script, stdout.String())
	}
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		s.stop()
		return nil, err
	}
	defer conn.Close(ctx)
	for _, q := range []string{"ALTER SYSTEM SET synchronous_commit = " + pgx.Identifier{b.cfg.pgSyncCommit}.Sanitize(), "SELECT pg_reload_conf()"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			s.stop()
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	var version string
	conn.QueryRow(ctx, "SHOW server_version").Scan(&version)
	b.note("PostgreSQL %s from Debian's packages, a cluster made by scripts/postgres.sh (fsync on, synchronous_commit %s, max_connections 300, otherwise defaults) on the same machine; every mode gets a fresh database.",
		version, b.cfg.pgSyncCommit)
	return s, nil
}

// database makes a fresh database and returns its URL.
func (s *pgServer) database(ctx context.Context) (string, error) {
	s.seq++
	return pgtest.CreateDatabase(ctx, s.admin, fmt.Sprintf("ecsd_bench_%d", s.seq), "")
}

// cpu is the CPU time the server's processes have used: the postmaster
// and its children (backends, writers), read from /proc. A backend that
// exited takes its time with it (the nodes' pools keep theirs open).
func (s *pgServer) cpu() time.Duration {
	b, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0
	}
	total, _ := processCPU(pm)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if ppid, ok := statPPID(string(stat)); ok && ppid == pm {
			if t, err := parseStatCPU(string(stat)); err == nil {
				total += t
			}
		}
	}
	return total
}

// statPPID reads the parent pid (field 4) of a /proc/<pid>/stat line.
func statPPID(stat string) (int, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.Atoi(f[1])
	return n, err == nil
}

func (s *pgServer) stop() {
	if s == nil {
		return
	}
	exec.Command(s.script, "stop", s.dir).Run()
}

// nodeSet is the running nodes of one mode.
type nodeSet struct {
	pg       *pgServer // nil on SQLite
	nodes    []*testd.Daemon
	journals map[int]string // node index -> call journal
	creds    creds          // of node 0
}

func (n *nodeSet) endpoints(skip int) []string {
	var out []string
	for i, d := range n.nodes {
		if i != skip || len(n.nodes) == 1 {
			out = append(out, d.Endpoint())
		}
	}
	return out
}

func (n *nodeSet) pids() []int {
	var out []int
	for _, d := range n.nodes {
		if d.Running() {
			out = append(out, d.PID())
		}
	}
	return out
}

// nodeOf is the index of the node of host ("" or unknown: node 0, as on
// one node).
func (n *nodeSet) nodeOf(host string) int {
	for i, d := range n.nodes {
		if d.Host() != "" && d.Host() == host {
			return i
		}
	}
	return 0
}

func (n *nodeSet) api(i int) *apiClient {
	c := n.creds
	c.endpoint = n.nodes[i].Endpoint()
	return &apiClient{c: c, hc: newHTTPClient(8)}
}

func (n *nodeSet) close() {
	var wg sync.WaitGroup
	for _, d := range n.nodes {
		if d.Running() {
			wg.Go(func() { d.Stop() })
		}
	}
	wg.Wait()
}

// startNodes starts the nodes of mode m in dir.
func (b *bench) startNodes(ctx context.Context, m clusterMode, pg *pgServer, dir string) (*nodeSet, error) {
	ns := &nodeSet{journals: map[int]string{}}
	if m.store == "postgres" {
		ns.pg = pg
	}
	journal := func(i int) string { return filepath.Join(dir, fmt.Sprintf("node%d.journal", i+1)) }
	if m.store == "sqlite" {
		d, err := testd.New(testd.Config{Bin: b.ecsd, DataDir: filepath.Join(dir, "node1"), WorkDir: filepath.Join(dir, "node1-logs"),
			Args: []string{"--sim-journal", journal(0)}})
		if err != nil {
			return nil, err
		}
		ns.nodes = []*testd.Daemon{d}
		ns.journals[0] = journal(0)
		if err := d.Start(); err != nil {
			return nil, err
		}
	} else {
		dsn, err := pg.database(ctx)
		if err != nil {
			return nil, err
		}
		c, err := testd.NewCluster(testd.ClusterConfig{Nodes: m.nodes, Dir: dir, Store: dsn, Node: testd.Config{Bin: b.ecsd},
			Tune: func(i int, c *testd.Config) { c.Args = append(c.Args, "--sim-journal", journal(i)) }})
		if err != nil {
			return nil, err
		}
		ns.nodes = c.Nodes()
		for i := range ns.nodes {
			ns.journals[i] = journal(i)
		}
		if err := c.Start(); err != nil {
			c.Kill()
			return nil, err
		}
	}
	cr := ns.nodes[0].Credentials()
	ns.creds = creds{endpoint: ns.nodes[0].Endpoint(), accessKey: cr.AccessKey, secretKey: cr.SecretKey, projectID: cr.ProjectID, userID: cr.UserID}
	return ns, nil
}

// clusterRun measures one mode.
func (b *bench) clusterRun(ctx context.Context, r *modeResult, pg *pgServer, dir string) error {
	ns, err := b.startNodes(ctx, r.mode, pg, dir)
	if ns != nil {
		defer ns.close()
	}
	if err != nil {
		return fmt.Errorf("starting the nodes: %w", err)
	}
	a := ns.api(0)
	n := b.cfg.clusterServers
	start := time.Now()
	if err := a.createKeypair(ctx, benchKeypair); err != nil {
		return err
	}
	ids, err := a.createServers(ctx, "bench", n)
	if err == nil {
		err = a.waitStatus(ctx, "ACTIVE", n, 100*time.Millisecond, 10*time.Minute)
	}
	if err == nil {
		err = a.stopServers(ctx, ids)
	}
	if err == nil {
		err = a.waitStatus(ctx, "SHUTOFF", n, 100*time.Millisecond, 5*time.Minute)
	}
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	r.setup = time.Since(start)
	hostOf, err := a.serverHosts(ctx)
	if err != nil {
		return err
	}
	perNode := map[int]int{}
	for _, id := range ids {
		perNode[ns.nodeOf(hostOf[id])]++
	}
	b.logf("  fleet of %d created in %s; servers per node %v", n, r.setup.Round(time.Second), perNode)
	var allJobs []string

	// Submits with the jobs running, spread over the nodes.
	jobIDs := make([]string, len(ids))
	l := submitLoad(fmt.Sprintf("%s: reinstall, keyname, jobs running", r.mode), b.cfg.submitWorkers, &ns.creds, ids, false, 0, jobIDs)
	l.duration, l.endpoints, l.serverPIDs = b.cfg.submitFor, ns.endpoints(-1), ns.pids()
	r.submit, r.submitErr = b.measureOn(ctx, ns, l)
	if r.submitErr == nil {
		t0 := time.Now()
		r.submitErr = a.waitStatus(ctx, "SHUTOFF", n, 50*time.Millisecond, 5*time.Minute)
		r.drain = time.Since(t0)
	}
	var done []string
	for _, id := range jobIDs {
		if id != "" {
			done = append(done, id)
		}
	}
	r.submitServers = len(done)
	allJobs = append(allJobs, done...)

	// Job queries over those jobs.
	if len(done) > 0 {
		prefix := "/v1/" + ns.creds.projectID + "/jobs/"
		q := load{name: fmt.Sprintf("%s: job query (%d finished jobs)", r.mode, len(done)), workers: b.cfg.queryWorkers, duration: b.cfg.queryFor,
			endpoints: ns.endpoints(-1), serverPIDs: ns.pids(),
			next: func(i int) request { return request{method: http.MethodGet, path: prefix + done[i%len(done)]} }}
		r.query, r.queryErr = b.measureOn(ctx, ns, q)
	} else {
		r.queryErr = errors.New("no finished jobs to query")
	}

	// The burst.
	r.burstN = min(b.cfg.burst, len(ids))
	burstJobs := make([]string, r.burstN)
	r.burst, r.burstErr = b.clusterBurst(ctx, ns, a, ids[:r.burstN], burstJobs)
	allJobs = append(allJobs, burstJobs...)

	// Idle pickup, submitted through another node than the server's.
	var pickupJobs []string
	r.pickup, r.pickupSent, pickupJobs, r.pickupErr = b.clusterPickup(ctx, ns, ids[r.burstN:], hostOf)
	allJobs = append(allJobs, pickupJobs...)

	// Recovery after kill -9 of the last node.
	var recJobs []string
	recJobs, r.recovery, r.sinceKill, r.recoveryDetail, r.recoveryErr = b.clusterRecovery(ctx, ns, ids, hostOf)
	allJobs = append(allJobs, recJobs...)

	// Nothing lost, nothing run twice.
	r.jobs = len(allJobs)
	statuses, err := jobStatuses(ctx, ns.api(0).c, allJobs)
	if err != nil {
		r.journalErr = err
		return nil
	}
	for _, id := range allJobs {
		if statuses[id].Status != "SUCCESS" {
			r.lost++
		}
	}
	r.twice, r.journalErr = journalTwice(ns)
	return nil
}

// measureOn warms a connection pool to every node and runs l on it.
func (b *bench) measureOn(ctx context.Context, ns *nodeSet, l load) (loadResult, error) {
	hc := newHTTPClient(l.workers)
	defer hc.CloseIdleConnections()
	for _, e := range l.endpoints {
		if err := warm(ctx, e, hc, max(1, l.workers/len(l.endpoints))); err != nil {
			return loadResult{}, err
		}
	}
	if ns.pg != nil {
		l.dbCPU = ns.pg.cpu
	}
	b.logf("load run %q: %d workers over %d nodes", l.name, l.workers, len(l.endpoints))
	c := ns.creds
	res, err := l.run(ctx, &c, hc)
	if err != nil {
		return res, err
	}
	b.runs = append(b.runs, runRow{name: l.name, workers: l.workers, res: res})
	b.logf("  %d requests, %.0f req/s, p50 %s p99 %s", res.n, res.rate(), msec(res.pct(50)), msec(res.pct(99)))
	if e := res.errSummary(); e != "" {
		return res, errors.New(e)
	}
	return res, nil
}

// clusterBurst submits reinstalls of ids at once over every node and
// returns the time from the first submit to the last job's end_time.
func (b *bench) clusterBurst(ctx context.Context, ns *nodeSet, a *apiClient, ids, jobs []string) (time.Duration, error) {
	const workers = 64
	hc := newHTTPClient(workers)
	defer hc.CloseIdleConnections()
	for _, e := range ns.endpoints(-1) {
		if err := warm(ctx, e, hc, workers/len(ns.nodes)); err != nil {
			return 0, err
		}
	}
	c := ns.creds
	l := submitLoad("burst", workers, &c, ids, false, 0, jobs)
	l.endpoints = ns.endpoints(-1)
	start := time.Now()
	res, err := l.run(ctx, &c, hc)
	if err == nil && res.errSummary() != "" {
		err = errors.New(res.errSummary())
	}
	if err == nil {
		err = a.waitStatus(ctx, "SHUTOFF", b.cfg.clusterServers, 20*time.Millisecond, 5*time.Minute)
	}
	if err != nil {
		return 0, err
	}
	last, err := lastEnd(ctx, c, jobs)
	if err != nil {
		return 0, err
	}
	return last.Sub(start), nil
}

// lastEnd reads the jobs and returns the latest end_time; every job must
// be SUCCESS.
func lastEnd(ctx context.Context, c creds, jobs []string) (time.Time, error) {
	st, err := jobStatuses(ctx, c, jobs)
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, id := range jobs {
		j, ok := st[id]
		if !ok || j.Status != "SUCCESS" {
			return last, fmt.Errorf("job %s is %q, want SUCCESS", id, j.Status)
		}
		end, err := time.Parse("2006-01-02T15:04:05.000Z", j.EndTime)
		if err != nil {
			return last, fmt.Errorf("job %s: end_time: %w", id, err)
		}
		if end.After(last) {
			last = end
		}
	}
	return last, nil
}

// clusterPickup submits pickupSamples reinstalls one at a time, each while
// every node is idle, through a node other than the server's own when
// there are several, and measures until the job's first driver call on
// the server's host (its call journal): from the submit's answer (the job
// was committed before it) and from sending the submit.
func (b *bench) clusterPickup(ctx context.Context, ns *nodeSet, ids []string, hostOf map[string]string) (answered, sentTo []time.Duration, jobs []string, err error) {
	if len(ids) < pickupSamples {
		return nil, nil, nil, fmt.Errorf("%d servers left for the pickup samples, want %d", len(ids), pickupSamples)
	}
	for i := range pickupSamples {
		id := ids[i]
		home := ns.nodeOf(hostOf[id])
		via := (home + 1) % len(ns.nodes)
		a := ns.api(via)
		time.Sleep(pickupGap)
		sent := time.Now()
		var resp struct {
			JobID string `json:"job_id"`
		}
		in := map[string]any{"os-reinstall": map[string]string{"keyname": benchKeypair}}
		if err := a.call(ctx, http.MethodPost, a.path("v1", "/cloudservers/"+id+"/reinstallos"), in, &resp); err != nil {
			return answered, sentTo, jobs, err
		}
		answer := time.Now()
		jobs = append(jobs, resp.JobID)
		if _, err := lastEndWait(ctx, a.c, resp.JobID); err != nil {
			return answered, sentTo, jobs, err
		}
		first, err := firstCall(ns.journals[home], resp.JobID)
		if err != nil {
			return answered, sentTo, jobs, err
		}
		answered, sentTo = append(answered, first.Sub(answer)), append(sentTo, first.Sub(sent))
	}
	slices.Sort(answered)
	slices.Sort(sentTo)
	return answered, sentTo, jobs, nil
}

// lastEndWait polls job id until it is done.
func lastEndWait(ctx context.Context, c creds, id string) (wireJob, error) {
	a := &apiClient{c: c, hc: newHTTPClient(1)}
	deadline := time.Now().Add(time.Minute)
	for {
		var j wireJob
		if err := a.call(ctx, http.MethodGet, a.path("v1", "/jobs/"+id), nil, &j); err != nil {
			return j, err
		}
		switch j.Status {
		case "SUCCESS":
			return j, nil
		case "FAIL":
			return j, fmt.Errorf("job %s failed", id)
		}
		if time.Now().After(deadline) {
			return j, fmt.Errorf("job %s still %s after a minute", id, j.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// firstCall is the time of job's first driver call in journal.
func firstCall(journal, job string) (time.Time, error) {
	entries, err := sim.ReadJournal(journal)
	if err != nil {
		return time.Time{}, err
	}
	for _, e := range entries {
		if e.Job == job {
			return e.Time, nil
		}
	}
	return time.Time{}, fmt.Errorf("job %s made no driver call on its host (journal %s)", job, journal)
}

// clusterRecovery restarts the last node with a driver latency, submits
// reinstalls of its servers through the other nodes (through itself when
// alone), kills it -9 while they run, starts it again and measures until
// the last of them ends.
func (b *bench) clusterRecovery(ctx context.Context, ns *nodeSet, ids []string, hostOf map[string]string) (jobs []string, afterRestart, afterKill time.Duration, detail string, err error) {
	vi := len(ns.nodes) - 1
	victim := ns.nodes[vi]
	var mine []string
	for _, id := range ids {
		if ns.nodeOf(hostOf[id]) == vi && len(mine) < clusterRecoveryJobs {
			mine = append(mine, id)
		}
	}
	flags := []string{"--sim-latency", simLatency.String()}
	if err := victim.Stop(); err != nil {
		return nil, 0, 0, "", err
	}
	if err := victim.Start(flags...); err != nil {
		return nil, 0, 0, "", err
	}
	jobs = make([]string, len(mine))
	c := ns.creds
	hc := newHTTPClient(16)
	l := submitLoad("recovery submits", 16, &c, mine, false, 0, jobs)
	l.endpoints = ns.endpoints(vi)
	res, err := l.run(ctx, &c, hc)
	hc.CloseIdleConnections()
	if err == nil && res.errSummary() != "" {
		err = errors.New(res.errSummary())
	}
	if err != nil {
		return jobs, 0, 0, "", err
	}
	time.Sleep(killAfter)
	alive := ns.api((vi + 1) % len(ns.nodes)).c
	before, err := jobStatuses(ctx, alive, jobs)
	if err != nil {
		return jobs, 0, 0, "", err
	}
	atKill := countByStatus(before)
	killed := time.Now()
	if err := victim.Kill(); err != nil {
		return jobs, 0, 0, "", err
	}
	if err := victim.Start(flags...); err != nil {
		return jobs, 0, 0, "", err
	}
	a := ns.api((vi + 1) % len(ns.nodes))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := jobStatuses(ctx, a.c, jobs)
		if err != nil {
			return jobs, 0, 0, "", err
		}
		n := countByStatus(st)
		if n["SUCCESS"]+n["FAIL"] == len(jobs) {
			break
		}
		if time.Now().After(deadline) {
			return jobs, 0, 0, "", fmt.Errorf("2 minutes after the restart, jobs are %v", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	last, err := lastEnd(ctx, a.c, jobs)
	if err != nil {
		return jobs, 0, 0, "", err
	}
	afterRestart, afterKill = max(0, last.Sub(victim.Started())), max(0, last.Sub(killed))
	detail = fmt.Sprintf("%d reinstalls of node %d's servers (%d unfinished, %d RUNNING at the kill; sim latency %s); restart to /healthz %d ms",
		len(jobs), vi+1, len(jobs)-atKill["SUCCESS"], atKill["RUNNING"], simLatency, victim.Ready().Sub(victim.Started()).Milliseconds())
	return jobs, afterRestart, afterKill, detail, nil
}

// journalTwice counts, over every node's call journal, the calls a run of
// a job made after a later run of the same job had acted (a job run twice
// at once), and the jobs whose calls were made by two nodes.
func journalTwice(ns *nodeSet) (int, error) {
	twice := 0
	jobNode := map[string]int{}
	for i := range ns.nodes {
		entries, err := sim.ReadJournal(ns.journals[i])
		if err != nil {
			return 0, err
		}
		highest := map[string]int{}
		for _, e := range entries {
			if e.Job == "" {
				continue
			}
			if n, ok := jobNode[e.Job]; ok && n != i {
				twice++
			}
			jobNode[e.Job] = i
			k := strings.LastIndexByte(e.Lease, '#')
			attempt, _ := strconv.Atoi(e.Lease[k+1:])
			if attempt < highest[e.Job] {
				twice++
			}
			highest[e.Job] = max(highest[e.Job], attempt)
		}
	}
	return twice, nil
}

// serverHosts maps every server of the project to its host
// (OS-EXT-SRV-ATTR:host; "" when the API shows none).
func (a *apiClient) serverHosts(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for page := 1; ; page++ {
		var resp struct {
			Count   int `json:"count"`
			Servers []struct {
				ID   string `json:"id"`
				Host string `json:"OS-EXT-SRV-ATTR:host"`
			} `json:"servers"`
		}
		if err := a.call(ctx, http.MethodGet, a.path("v1", fmt.Sprintf("/cloudservers/detail?limit=1000&offset=%d", page)), nil, &resp); err != nil {
			return nil, err
		}
		for _, s := range resp.Servers {
			out[s.ID] = s.Host
		}
		if len(resp.Servers) < 1000 || len(out) >= resp.Count {
			return out, nil
		}
	}
}

// clusterReport adds the comparison table and the targets' verdicts.
func (b *bench) clusterReport(rs []*modeResult) {
	var w strings.Builder
	w.WriteString("| scenario |")
	for _, r := range rs {
		fmt.Fprintf(&w, " %s |", r.mode)
	}
	w.WriteString("\n|---|")
	for range rs {
		w.WriteString("---|")
	}
	w.WriteString("\n")
	row := func(name string, cell func(r *modeResult) string) {
		fmt.Fprintf(&w, "| %s |", name)
		for _, r := range rs {
			fmt.Fprintf(&w, " %s |", cell(r))
		}
		w.WriteString("\n")
	}
	row("fleet created through the API (create, wait ACTIVE, stop, wait SHUTOFF)", func(r *modeResult) string {
		return fmt.Sprintf("%d servers, %.1f s", b.cfg.clusterServers, r.setup.Seconds())
	})
	row(fmt.Sprintf("signed reinstall submits, jobs running (%d conns)", b.cfg.submitWorkers), func(r *modeResult) string {
		if r.submitErr != nil {
			return "FAILED: " + r.submitErr.Error()
		}
		return fmt.Sprintf("%.0f/s, p50 %s ms, p99 %s ms; drained %.1f s later", r.submit.rate(), msec(r.submit.pct(50)), msec(r.submit.pct(99)), r.drain.Seconds())
	})
	row(fmt.Sprintf("signed job queries (%d conns)", b.cfg.queryWorkers), func(r *modeResult) string {
		if r.queryErr != nil {
			return "FAILED: " + r.queryErr.Error()
		}
		return fmt.Sprintf("%.0f/s, p50 %s ms, p99 %s ms", r.query.rate(), msec(r.query.pct(50)), msec(r.query.pct(99)))
	})
	row(fmt.Sprintf("burst of %d reinstalls, first submit to last end_time", b.cfg.burst), func(r *modeResult) string {
		if r.burstErr != nil {
			return "FAILED: " + r.burstErr.Error()
		}
		return fmt.Sprintf("%.2f s", r.burst.Seconds())
	})
	row("idle pickup: submit answered to the job's first driver call on the server's host (submitted through another node when there are several)", func(r *modeResult) string {
		if r.pickupErr != nil {
			return "FAILED: " + r.pickupErr.Error()
		}
		return fmt.Sprintf("p50 %s ms, p90 %s ms, max %s ms (from sending the submit: p50 %s ms; %d samples)", msec(percentile(r.pickup, 50)),
			msec(percentile(r.pickup, 90)), msec(percentile(r.pickup, 100)), msec(percentile(r.pickupSent, 50)), len(r.pickup))
	})
	row("kill -9 of a node mid-jobs: its jobs' last end after it restarted", func(r *modeResult) string {
		if r.recoveryErr != nil {
			return "FAILED: " + r.recoveryErr.Error()
		}
		return fmt.Sprintf("%.2f s after the restart (%.2f s after the kill); %s", r.recovery.Seconds(), r.sinceKill.Seconds(), r.recoveryDetail)
	})
	row("jobs lost or run twice (all jobs above; call journals)", func(r *modeResult) string {
		if r.journalErr != nil {
			return "FAILED: " + r.journalErr.Error()
		}
		return fmt.Sprintf("%d jobs: %d not SUCCESS, %d calls of a run made after another run of its job", r.jobs, r.lost, r.twice)
	})
	b.sections = append(b.sections, "Several nodes (`-cluster`): the same load on each configuration; every load spreads its connections over the nodes.\n\n"+w.String())

	find := func(store string, nodes int) *modeResult {
		for _, r := range rs {
			if r.mode.store == store && (nodes == 0 && r.mode.nodes > 1 || r.mode.nodes == nodes) {
				return r
			}
		}
		return nil
	}
	lite, pg1, pgN := find("sqlite", 1), find("postgres", 1), find("postgres", 0)
	if lite != nil && pg1 != nil && lite.submitErr == nil && pg1.submitErr == nil {
		share := pg1.submit.rate() / lite.submit.rate()
		b.result("PostgreSQL, 1 node ≥ 50 % of SQLite's signed submit rate (jobs running)",
			fmt.Sprintf("%.0f %% (%.0f/s vs %.0f/s)", 100*share, pg1.submit.rate(), lite.submit.rate()), share >= targetPGShare)
	}
	if lite != nil && pg1 != nil && lite.queryErr == nil && pg1.queryErr == nil {
		share := pg1.query.rate() / lite.query.rate()
		b.result("PostgreSQL, 1 node ≥ 50 % of SQLite's job query rate",
			fmt.Sprintf("%.0f %% (%.0f/s vs %.0f/s)", 100*share, pg1.query.rate(), lite.query.rate()), share >= targetPGShare)
	}
	if pg1 != nil && pgN != nil && pg1.queryErr == nil && pgN.queryErr == nil {
		b.result(fmt.Sprintf("PostgreSQL, %d nodes ≥ 1 node on job queries", pgN.mode.nodes),
			fmt.Sprintf("%.0f/s vs %.0f/s", pgN.query.rate(), pg1.query.rate()), pgN.query.rate() >= pg1.query.rate())
	}
	if pgN != nil && pgN.pickupErr == nil {
		p := percentile(pgN.pickup, 50)
		b.result(fmt.Sprintf("idle pickup p50 < 10 ms across nodes (%s): submit answered to first driver call", pgN.mode),
			fmt.Sprintf("%s ms (from sending the submit: %s ms)", msec(p), msec(percentile(pgN.pickupSent, 50))), p < targetPickupAcross)
	}
	for _, r := range rs {
		if r.recoveryErr == nil && r.recoveryDetail != "" {
			b.result(fmt.Sprintf("a killed node's jobs finish ≤ 10 s after it restarts (%s)", r.mode),
				fmt.Sprintf("%.2f s", r.recovery.Seconds()), r.recovery <= targetNodeRecovery)
		}
		if r.journalErr == nil {
			b.result(fmt.Sprintf("0 jobs lost or run twice (%s)", r.mode),
				fmt.Sprintf("%d of %d jobs not SUCCESS, %d repeated calls", r.lost, r.jobs, r.twice), r.lost == 0 && r.twice == 0)
		}
	}
}
