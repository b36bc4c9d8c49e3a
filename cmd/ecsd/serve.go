package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/api"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/faulty"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/datadir"
)

// serveCommand is ecsd serve, the default command: the daemon.
func serveCommand(fs *flagSet) runFunc {
	var cfg Config
	serveFlags(fs, &cfg)
	return func(ctx context.Context, args []string, _, errOut io.Writer) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		if err := cfg.check(fs); err != nil {
			return err
		}
		log := newLogger(cfg.LogLevel, errOut)
		slog.SetDefault(log)
		d, err := start(ctx, cfg, log)
		if err != nil {
			return err
		}
		return d.run(ctx)
	}
}

// daemon is a started ecsd: listening, state open, not yet serving.
type daemon struct {
	cfg      Config
	log      *slog.Logger
	ln       net.Listener
	endpoint string // scheme://host:port of ln
	// advertise is where the other nodes reach this one (--advertise,
	// default endpoint).
	advertise string
	svc       *cloud.Service
	host      *cluster.Host
	srv       *http.Server
	closers   []func()
}

// start makes a daemon of cfg. It binds the listener before it creates any
// state, so that a bad address or a port in use leaves no data dir behind,
// and removes the data dir it created when a later step fails.
func start(ctx context.Context, cfg Config, log *slog.Logger) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	var tlsConfig *tls.Config
	if cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate %s with key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if err := (datadir.Dir{Path: cfg.DataDir}).CheckDriver(cfg.Driver); err != nil {
		return nil, err
	}
	if err := (datadir.Dir{Path: cfg.DataDir}).CheckStore(cfg.Store != ""); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	d.onClose(func() { ln.Close() })
	d.ln, d.endpoint = ln, endpoint(ln.Addr().(*net.TCPAddr), tlsConfig)
	d.advertise = cfg.Advertise
	if d.advertise == "" {
		d.advertise = d.endpoint
	}
	if tlsConfig != nil {
		d.ln = tls.NewListener(ln, tlsConfig)
	}

	dir, created, err := datadir.Create(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if created {
		defer func() {
			if err != nil {
				d.close()
				d.closers = nil
				os.RemoveAll(dir.Path)
			}
		}()
	}
	unlock, err := dir.Lock()
	if err != nil {
		return nil, err
	}
	d.onClose(unlock)
	if err := dir.ClaimDriver(cfg.Driver); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg.Store, cfg.StoreWait, dir, cfg.Synchronous, log)
	if err != nil {
		return nil, err
	}
	d.onClose(func() { st.Close() })
	keyPath := secretKeyPath(cfg.SecretKeyFile, cfg.DataDir)
	box, err := openSecretBox(ctx, st, keyPath)
	if err != nil {
		return nil, err
	}
	if err := releaseFormerNodeID(ctx, st, dir, cfg.host(), log); err != nil {
		return nil, err
	}

	drv, err := openDriver(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d.onClose(func() { drv.Close() })

	capacity, err := cfg.hostCapacity(dir.Path)
	if err != nil {
		return nil, err
	}
	d.host, err = cluster.Register(ctx, cluster.HostConfig{Store: st, Name: cfg.host(), Advertise: d.advertise, Driver: cfg.Driver,
		Capacity: capacity, Ratios: cfg.ratios(), Interval: cfg.hostDownAfter() / 3, Logger: log})
	if err != nil {
		return nil, err
	}
	d.svc = cloud.New(cloud.Config{Store: st, Driver: drv, Box: box, Logger: log, Workers: cfg.Workers,
		StepTimeout: cfg.StepTimeout, JobRetention: cfg.JobRetention, NodeID: cfg.host(), Host: cfg.host(),
		HostDownAfter: cfg.hostDownAfter(), ActionRetention: cfg.ActionRetention})
	if cfg.Store == "" {
		// The SQLite store has one node: rows made before hosts existed
		// (an issue-7 data dir) are this host's, disks and image files
		// included. On a shared store they would not be, and no node
		// adopts them.
		if n, err := d.svc.AdoptUnplaced(ctx); err != nil {
			return nil, err
		} else if n > 0 {
			log.Info("adopted the servers of a data dir made before hosts", "host", cfg.host(), "servers", n)
		}
	}
	if cfg.Driver == "sim" {
		// The simulator's catalog; the qemu driver serves imported images.
		if err := d.svc.SeedImages(ctx); err != nil {
			return nil, fmt.Errorf("seed images: %w", err)
		}
	}
	caCert := ""
	if cfg.TLS() {
		// Clients trust the served certificate itself (self-signed or
		// not): ecsctl then needs no --ca-cert.
		if caCert, err = filepath.Abs(cfg.TLSCert); err != nil {
			return nil, err
		}
	}
	if err := bootstrapCredentials(ctx, d.svc, dir, d.endpoint, caCert); err != nil {
		return nil, err
	}
	// A node given another cloud's key would refuse every signed request.
	if err := checkSecretKey(ctx, st, box, keyPath); err != nil {
		return nil, err
	}
	fwd, err := newForwarder(cfg, st, keyPath, tlsConfig, d.host.Now)
	if err != nil {
		return nil, err
	}
	d.srv = &http.Server{Handler: api.New(api.Config{Service: d.svc, Logger: log, Forwarder: fwd}),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return d, nil
}

// endpoint is the URL clients reach the daemon at, for credentials.json.
// On every interface (0.0.0.0, ::) it names the certificate's first name
// with TLS (what clients can verify), else the loopback: a URL that works
// on this host.
func endpoint(addr *net.TCPAddr, tlsConfig *tls.Config) string {
	scheme, host := "http", addr.IP.String()
	if tlsConfig != nil {
		scheme = "https"
	}
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
		if tlsConfig != nil {
			if leaf := tlsConfig.Certificates[0].Leaf; leaf != nil && len(leaf.DNSNames) > 0 {
				host = leaf.DNSNames[0]
			} else if leaf != nil && len(leaf.IPAddresses) > 0 {
				host = leaf.IPAddresses[0].String()
			}
		}
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// bootstrapCredentials makes the first project and access key on the
// first start and writes them to credentials.json; later starts update
// the endpoint in it (another address, TLS turned on or off) and the CA
// file clients trust for it.
func bootstrapCredentials(ctx context.Context, svc *cloud.Service, dir datadir.Dir, endpoint, caCert string) error {
	c, made, err := svc.FirstCredential(ctx)
	if err != nil {
		return err
	}
	if !made {
		return dir.SetCredentialsEndpoint(endpoint, caCert)
	}
	return dir.WriteCredentials(client.CredentialsFile{CACert: caCert, AccessKey: c.AccessKey, SecretKey: c.SecretKey,
		ProjectID: c.ProjectID, UserID: c.UserID, Endpoint: endpoint})
}

func (d *daemon) onClose(f func()) { d.closers = append(d.closers, f) }

// close releases what start took, last taken first.
func (d *daemon) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// run serves the API and runs the job engine until ctx ends (a clean stop,
// nil) or either fails; then it releases everything.
func (d *daemon) run(ctx context.Context) error {
	defer d.close()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	jobsDone := make(chan error, 1)
	go func() { jobsDone <- d.svc.Run(runCtx) }()
	beatDone := make(chan struct{})
	go func() { d.host.Run(runCtx); close(beatDone) }()
	defer func() { cancelRun(); <-beatDone }()
	httpDone := make(chan error, 1)
	go func() { httpDone <- d.srv.Serve(d.ln) }()
	d.log.Info("ecsd serving", "endpoint", d.endpoint, "host", d.cfg.host(), "advertise", d.advertise,
		"store", storeName(d.cfg.Store), "data_dir", d.cfg.DataDir, "driver", d.cfg.Driver,
		"credentials", datadir.Dir{Path: d.cfg.DataDir}.CredentialsPath())

	select {
	case <-ctx.Done():
	case err := <-httpDone:
		cancelRun()
		<-jobsDone
		return err
	case err := <-jobsDone:
		d.srv.Close()
		if err == nil {
			err = errors.New("job engine stopped")
		}
		return err
	}
	d.log.Info("ecsd shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.srv.Shutdown(sctx)
	cancelRun()
	<-jobsDone
	d.log.Info("ecsd stopped")
	return nil
}

func openDriver(ctx context.Context, cfg Config) (compute.Driver, error) {
	// --sim-faults is the older name of --faults: one engine takes both.
	faults, err := faulty.Parse(cfg.Faults)
	if err != nil {
		return nil, fmt.Errorf("--faults: %w", err)
	}
	simFaults, err := faulty.Parse(cfg.SimFaults)
	if err != nil {
		return nil, fmt.Errorf("--sim-faults: %w", err)
	}
	d, err := openBaseDriver(ctx, cfg)
	if err != nil {
		return nil, err
	}
	w, err := faulty.Wrap(d, append(faults, simFaults...))
	if err != nil {
		d.Close()
		return nil, err
	}
	return w, nil
}

func openBaseDriver(ctx context.Context, cfg Config) (compute.Driver, error) {
	switch cfg.Driver {
	case "qemu":
		return openQEMU(ctx, cfg)
	default:
		return sim.New(sim.Config{Dir: datadir.Dir{Path: cfg.DataDir}.DriverDir("sim"), Latency: cfg.SimLatency, Journal: cfg.SimJournal})
	}
}
