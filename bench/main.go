// Command bench measures ecsd against the targets of docs/benchmarks.md and
// prints the results as a markdown table.
//
//	go run ./bench                       all scenarios (about 1.5-3 minutes)
//	go run ./bench -only submit,query    some of them
//	go run ./bench -out results.md       also write the report to a file
//	go run ./bench -cpuprofile /tmp/p    profile ecsd's stack in-process instead
//	go run ./bench -cluster              SQLite vs PostgreSQL, 1 and 3 nodes (issue 8)
//
// It promises:
//   - HTTP numbers come from a real ecsd binary (built from ./cmd/ecsd) in a
//     separate process on 127.0.0.1, driven by one load generator: N workers
//     on keep-alive connections, every request signed with SDK-HMAC-SHA256
//     exactly as the client package signs it, each latency recorded. The
//     same generator against a no-op Go HTTP handler (this binary re-run as
//     a separate process) gives the ceiling of the machine.
//   - Client and server share the machine's cores; the CPU each process
//     spent, and what other processes took meanwhile, is reported beside
//     the rates.
//   - Every measured operation goes through the API, except the idle pickup
//     latency, measured in-process with the service's OnJobStart hook. The
//     fleet's servers are seeded into the data dir before ecsd starts on it
//     (see seedServers); that set-up is not a measurement.
//   - A scenario whose work fails (an unexpected status, a job that does not
//     end in SUCCESS) reports the failure instead of a number.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ecsproject/ecsd/internal/testd"
)

// config is the benchmark's configuration (flags).
type config struct {
	only          map[string]bool
	out           string
	ecsdBin       string
	servers       int
	passSubmits   int
	submitWorkers int
	submitFor     time.Duration
	queryWorkers  int
	queryFor      time.Duration
	burst         int
	keep          bool
	cpuProfile    string
	verbose       bool
	// The several-nodes comparison (cluster.go).
	cluster        bool
	clusterModes   string
	clusterServers int
	pgSyncCommit   string
}

// scenario is one measurement. fleet scenarios share one ecsd holding
// cfg.servers SHUTOFF servers.
type scenario struct {
	name  string
	about string
	fleet bool
	run   func(ctx context.Context, b *bench) error
}

var scenarios = []scenario{
	{"submit", "signed reinstall submissions (keyname and adminpass) vs the no-op ceiling", true, runSubmit},
	{"query", "signed job queries vs the no-op ceiling", true, runQuery},
	{"burst", "servers reinstalled at once, first submit to last SUCCESS", true, runBurst},
	{"rss", "ecsd resident memory with the fleet", true, runRSS},
	{"pickup", "idle pickup, commit to worker start (in-process)", false, runPickup},
	{"recovery", "recovery after kill -9 of ecsd mid-jobs", false, runRecovery},
}

func main() {
	if os.Getenv(noopEnv) != "" {
		if err := serveNoop(os.Getenv(noopEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "bench noop server:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	var only string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&only, "only", "", "comma-separated scenarios to run: "+scenarioNames())
	fs.StringVar(&c.out, "out", "", "also write the markdown report to this file")
	fs.StringVar(&c.ecsdBin, "ecsd", "", "ecsd binary to run (default: go build ./cmd/ecsd into a temp dir)")
	fs.IntVar(&c.servers, "servers", 10000, "servers in the fleet (each is reinstalled at most once per submit run)")
	fs.IntVar(&c.passSubmits, "pass-submits", 3000, "fleet servers that get adminpass reinstalls (one SHA-512-crypt hash each); the others get keyname ones")
	fs.IntVar(&c.submitWorkers, "submit-workers", 16, "concurrent connections for submissions")
	fs.DurationVar(&c.submitFor, "submit-for", 10*time.Second, "longest duration of each submit run")
	fs.IntVar(&c.queryWorkers, "query-workers", 32, "concurrent connections for job queries")
	fs.DurationVar(&c.queryFor, "query-for", 5*time.Second, "duration of each job query run")
	fs.IntVar(&c.burst, "burst", 1000, "servers reinstalled at once by the burst scenario")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "instead of the scenarios, run set-up, submits and queries against ecsd's stack\n"+
		"in this process and write a CPU profile here (for finding where the time goes)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir (data dirs, ecsd logs)")
	fs.BoolVar(&c.verbose, "v", false, "log progress to stderr")
	fs.BoolVar(&c.cluster, "cluster", false, "instead of the scenarios, compare SQLite and PostgreSQL with one and several nodes\n"+
		"(starts PostgreSQL through scripts/postgres.sh; run from the source tree's root)")
	fs.StringVar(&c.clusterModes, "cluster-modes", "sqlite:1,postgres:1,postgres:3", "-cluster: the configurations, store:nodes")
	fs.IntVar(&c.clusterServers, "cluster-servers", 3000, "-cluster: servers created through the API for each configuration")
	fs.StringVar(&c.pgSyncCommit, "pg-synchronous-commit", "off", "-cluster: PostgreSQL's synchronous_commit (off: a commit survives\n"+
		"a crash of PostgreSQL or ecsd but not of the machine, as SQLite's synchronous=NORMAL)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if only != "" {
		c.only = map[string]bool{}
		for _, n := range strings.Split(only, ",") {
			n = strings.TrimSpace(n)
			if !slices.ContainsFunc(scenarios, func(s scenario) bool { return s.name == n }) {
				return c, fmt.Errorf("-only: unknown scenario %q (have %s)", n, scenarioNames())
			}
			c.only[n] = true
		}
	}
	if c.cluster {
		if _, err := parseModes(c.clusterModes); err != nil {
			return c, err
		}
		if c.clusterServers < c.burst+pickupSamples {
			return c, fmt.Errorf("-cluster-servers must be at least -burst plus %d", pickupSamples)
		}
		if c.pgSyncCommit != "on" && c.pgSyncCommit != "off" && c.pgSyncCommit != "local" && c.pgSyncCommit != "remote_write" {
			return c, fmt.Errorf("-pg-synchronous-commit: on, off, local or remote_write, not %q", c.pgSyncCommit)
		}
	}
	if c.servers < c.burst || c.servers <= c.passSubmits {
		return c, fmt.Errorf("-servers must be at least -burst and more than -pass-submits")
	}
	if c.submitWorkers < 1 || c.queryWorkers < 1 {
		return c, fmt.Errorf("worker counts must be positive")
	}
	return c, nil
}

func scenarioNames() string {
	var n []string
	for _, s := range scenarios {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}

// bench is the state shared by scenarios.
type bench struct {
	cfg   config
	dir   string // temp dir for everything
	ecsd  string // ecsd binary
	log   io.Writer
	fleet *fleet // started on first use

	targets  []targetRow
	runs     []runRow
	notes    []string
	sections []string // markdown blocks after the load runs
}

// targetRow is one line of the results table.
type targetRow struct {
	target   string
	measured string
	met      bool
	failed   bool // the scenario did not produce a number
}

// runRow is one line of the load-run detail table.
type runRow struct {
	name    string
	workers int
	res     loadResult
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func (b *bench) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func (b *bench) result(target, measured string, met bool) {
	b.targets = append(b.targets, targetRow{target: target, measured: measured, met: met})
}

func (b *bench) failure(target string, err error) {
	b.targets = append(b.targets, targetRow{target: target, measured: "FAILED: " + err.Error(), failed: true})
}

func run(ctx context.Context, cfg config) error {
	dir, err := os.MkdirTemp("", "ecsd-bench-")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, dir: dir, log: io.Discard}
	if cfg.verbose {
		b.log = os.Stderr
	}
	defer func() {
		if cfg.keep {
			fmt.Fprintln(os.Stderr, "bench: kept", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	defer func() { b.fleet.close() }() // also on a panic
	b.ecsd = cfg.ecsdBin
	if b.ecsd == "" {
		b.logf("building ecsd")
		if b.ecsd, err = testd.Build(ctx, dir); err != nil {
			return err
		}
	}
	if cfg.cpuProfile != "" {
		return profileRun(ctx, b, cfg.cpuProfile)
	}
	start := time.Now()
	m := machineInfo()
	m.source = sourceVersion(ctx)
	if cfg.ecsdBin != "" {
		m.source = cfg.ecsdBin
	}
	busy0, self0, kids0 := machineBusy(), selfCPU(), childrenCPU()
	if cfg.cluster {
		if err := runCluster(ctx, b); err != nil {
			return err
		}
	}
	for _, s := range scenarios {
		if cfg.cluster {
			break
		}
		if cfg.only != nil && !cfg.only[s.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		b.logf("scenario %s: %s", s.name, s.about)
		if s.fleet && b.fleet == nil {
			f, err := startFleet(ctx, b)
			if f != nil {
				b.fleet = f
			}
			if err != nil {
				b.fleet.close()
				return fmt.Errorf("fleet set-up: %w", err)
			}
		}
		if err := s.run(ctx, b); err != nil {
			b.logf("scenario %s failed: %v", s.name, err)
			b.note("Scenario %s did not complete: %v", s.name, err)
		}
	}
	b.fleet.close()
	b.fleet = nil
	took := time.Since(start)
	others := machineBusy() - busy0 - (selfCPU() - self0) - (childrenCPU() - kids0)
	m.otherShare = max(0, float64(others)/float64(took)/float64(runtime.NumCPU()))
	report := b.report(m, took)
	fmt.Print(report)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// report renders the results as markdown.
func (b *bench) report(m machine, took time.Duration) string {
	var w strings.Builder
	fmt.Fprintf(&w, "Measured %s at %s (ecsd from %s). Machine: %d CPUs (%s), %s RAM, kernel %s, %s. "+
		"Load average at start %s, at end %s. Processes other than the benchmark's used %.0f%% of the machine's CPU during the run. Took %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), m.host, m.source, m.cpus, m.model, m.ram, m.kernel, m.goVersion,
		m.loadStart, loadAvg(), 100*m.otherShare, took.Round(time.Second))
	w.WriteString("| target | measured | met? |\n|---|---|---|\n")
	for _, t := range b.targets {
		met := "no"
		switch {
		case t.failed:
			met = "—"
		case t.met:
			met = "yes"
		}
		fmt.Fprintf(&w, "| %s | %s | %s |\n", t.target, t.measured, met)
	}
	if len(b.runs) > 0 {
		w.WriteString("\nLoad runs (closed loop, keep-alive, every request signed; latency = send to last body byte):\n\n")
		w.WriteString("| run | conns | requests | non-2xx | req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/req | PostgreSQL CPU µs/req | client CPU µs/req | other processes' CPU |\n")
		w.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range b.runs {
			x := r.res
			fmt.Fprintf(&w, "| %s | %d | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %.0f%% |\n", r.name, r.workers, x.n, x.n-x.ok, x.rate(),
				msec(x.pct(50)), msec(x.pct(90)), msec(x.pct(99)), msec(x.pct(100)), perReq(x.serverCPU, x.n), perReq(x.dbCPU, x.n),
				perReq(x.clientCPU, x.n), 100*x.otherShare())
		}
	}
	for _, s := range b.sections {
		w.WriteString("\n" + s)
	}
	if len(b.notes) > 0 {
		w.WriteString("\n")
		for _, n := range b.notes {
			fmt.Fprintf(&w, "- %s\n", n)
		}
	}
	return w.String()
}

func msec(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func perReq(cpu time.Duration, n int) string {
	if cpu <= 0 || n == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", float64(cpu)/float64(time.Microsecond)/float64(n))
}
