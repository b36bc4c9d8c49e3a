package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/ecsproject/ecsd/internal/api"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// inProcess is the daemon's stack (store, sim driver, service, API handler,
// HTTP server) wired as cmd/ecsd wires it, but in this process, so that
// a CPU profile sees it. Client and server then share one profile; their
// frames are told apart by package.
type inProcess struct {
	creds  creds
	srv    *http.Server
	cancel context.CancelFunc
	done   chan error
	db     *sqlite.Store
	logf   *os.File
}

// startInProcess starts the stack on dir. With c nil it makes a new
// project and credential; else it serves c's. held runs one job worker
// whose driver calls sleep an hour, so that submitted jobs wait.
func startInProcess(ctx context.Context, dir string, c *creds, held bool) (*inProcess, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "ecsd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(logf, nil))
	box, err := secret.LoadOrCreate(filepath.Join(dir, "secret.key"))
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "ecsd.db")})
	if err != nil {
		return nil, err
	}
	scfg := sim.Config{Dir: filepath.Join(dir, "sim")}
	workers := 0
	if held {
		scfg.Latency, workers = time.Hour, 1
	}
	drv, err := sim.New(scfg)
	if err != nil {
		return nil, err
	}
	host, err := cluster.Register(ctx, cluster.HostConfig{Store: db, Name: benchHost, Driver: cluster.DriverSim,
		Capacity: cluster.SimCapacity})
	if err != nil {
		return nil, err
	}
	svc := cloud.New(cloud.Config{Store: db, Driver: drv, Box: box, Logger: log, Workers: workers, Host: benchHost})
	if err := svc.SeedImages(ctx); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &inProcess{db: db, logf: logf, done: make(chan error, 1)}
	if c == nil {
		cred, err := svc.NewCredential(ctx, "default")
		if err != nil {
			return nil, err
		}
		c = &creds{accessKey: cred.AccessKey, secretKey: cred.SecretKey, projectID: cred.ProjectID, userID: cred.UserID}
	}
	p.creds = *c
	p.creds.endpoint = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: api.New(api.Config{Service: svc, Logger: log}), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	var runCtx context.Context
	runCtx, p.cancel = context.WithCancel(context.Background())
	go func() { p.done <- svc.Run(runCtx) }()
	go host.Run(runCtx)
	go p.srv.Serve(ln)
	return p, nil
}

func (p *inProcess) close() {
	p.srv.Close()
	p.cancel()
	<-p.done
	p.db.Close()
	p.logf.Close()
}

// profileRun profiles ecsd's stack in this process, one CPU profile per
// phase, written to path.<phase>:
//   - submit-held: keyname submits with the jobs held (the submit path);
//   - drain: those jobs running with no other load (the job path);
//   - submit: keyname submits with their jobs running;
//   - query: job queries.
//
// Nothing is reported as a target: this mode is for finding where the time
// goes.
func profileRun(ctx context.Context, b *bench, path string) error {
	dir := filepath.Join(b.dir, "profile")
	p, err := startInProcess(ctx, dir, nil, false)
	if err != nil {
		return err
	}
	c := p.creds
	a := &apiClient{c: c, hc: newHTTPClient(8)}
	err = a.createKeypair(ctx, benchKeypair)
	p.close()
	if err != nil {
		return err
	}
	ids, err := seedServers(ctx, dir, c.projectID, c.userID, b.cfg.servers)
	if err != nil {
		return err
	}
	half := len(ids) / 2
	var jobs []string
	phase := func(name string, held bool, fn func(p *inProcess) error) error {
		p, err := startInProcess(ctx, dir, &c, held)
		if err != nil {
			return err
		}
		defer p.close()
		a.c = p.creds
		stop, err := startProfile(path + "." + name)
		if err != nil {
			return err
		}
		defer stop()
		t := time.Now()
		err = fn(p)
		fmt.Fprintf(os.Stderr, "profile %s: %s\n", name, time.Since(t).Round(time.Millisecond))
		return err
	}
	submit := func(name string, ids []string) func(p *inProcess) error {
		return func(p *inProcess) error {
			got := make([]string, len(ids))
			l := submitLoad(name, b.cfg.submitWorkers, &p.creds, ids, false, 0, got)
			l.duration = b.cfg.submitFor
			res, err := b.measure(ctx, p.creds, p.creds.endpoint, l)
			for _, id := range got {
				if id != "" {
					jobs = append(jobs, id)
				}
			}
			fmt.Fprintf(os.Stderr, "profile %s: %d submits %.0f/s p50 %s p99 %s %s\n", name, res.ok, res.rate(),
				msec(res.pct(50)), msec(res.pct(99)), res.errSummary())
			return err
		}
	}
	drain := func(p *inProcess) error {
		f := &fleet{api: a, ids: ids}
		_, err := f.drain(ctx, jobs)
		return err
	}
	if err := phase("submit-held", true, submit("in-process reinstall, keyname, jobs held", ids[:half])); err != nil {
		return err
	}
	if err := phase("drain", false, drain); err != nil {
		return err
	}
	if err := phase("submit", false, func(p *inProcess) error {
		if err := submit("in-process reinstall, keyname, jobs running", ids[half:])(p); err != nil {
			return err
		}
		return drain(p)
	}); err != nil {
		return err
	}
	return phase("query", false, func(p *inProcess) error {
		prefix := "/v1/" + c.projectID + "/jobs/"
		res, err := b.measure(ctx, p.creds, p.creds.endpoint, load{name: "in-process job query", workers: b.cfg.queryWorkers,
			duration: b.cfg.queryFor,
			next:     func(i int) request { return request{method: http.MethodGet, path: prefix + jobs[i%len(jobs)]} }})
		fmt.Fprintf(os.Stderr, "profile query: %.0f/s p50 %s p99 %s %s\n", res.rate(), msec(res.pct(50)), msec(res.pct(99)), res.errSummary())
		return err
	})
}

// startProfile starts a CPU profile into path; the returned func stops it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
