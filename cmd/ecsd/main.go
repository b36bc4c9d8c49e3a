// Command ecsd is the ECS service daemon: the Huawei Cloud ECS API over a
// simulated or QEMU compute backend, with state in an embedded database.
//
//	ecsd [flags]                           serve (see -h)
//	ecsd credentials add --data-dir DIR    make a credential for a new project
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ecsproject/ecsd/internal/api"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/faulty"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

func main() {
	// Everything ecsd writes (database, keys, disks, credentials) is
	// private to it.
	syscall.Umask(0o077)
	if len(os.Args) > 2 && os.Args[1] == "credentials" && os.Args[2] == "add" {
		if err := credentialsAdd(os.Args[3:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "ecsd:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "ecsd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg); err != nil {
		slog.Error("ecsd stopped", "err", err)
		os.Exit(1)
	}
}

// Config is the daemon's configuration.
type Config struct {
	Listen       string
	DataDir      string
	Driver       string
	SimLatency   time.Duration
	SimFaults    string
	Faults       string
	JobRetention time.Duration
	Workers      int
	StepTimeout  time.Duration
	LogLevel     string
	Synchronous  string
	QEMUAccel    string
	QEMUUser     string
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envInt(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func parseFlags(args []string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("ecsd", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", env("ECS_LISTEN", "127.0.0.1:8080"), "address to serve on (env ECS_LISTEN)")
	fs.StringVar(&c.DataDir, "data-dir", env("ECS_DATA_DIR", "./data"), "directory for all state (env ECS_DATA_DIR)")
	fs.StringVar(&c.Driver, "driver", env("ECS_DRIVER", "sim"), "compute driver: sim or qemu (env ECS_DRIVER)")
	fs.DurationVar(&c.SimLatency, "sim-latency", envDuration("ECS_SIM_LATENCY", 0), "sim: latency added to every driver call (env ECS_SIM_LATENCY)")
	fs.StringVar(&c.SimFaults, "sim-faults", env("ECS_SIM_FAULTS", ""), "sim: faults, e.g. apply_credentials=fail:1,start=hang (env ECS_SIM_FAULTS)")
	fs.StringVar(&c.Faults, "faults", env("ECS_FAULTS", ""), "faults for any driver, same syntax as --sim-faults (env ECS_FAULTS)")
	fs.DurationVar(&c.JobRetention, "job-retention", envDuration("ECS_JOB_RETENTION", 24*time.Hour), "how long finished jobs are kept (env ECS_JOB_RETENTION)")
	fs.IntVar(&c.Workers, "workers", envInt("ECS_WORKERS", 64), "jobs run at once (env ECS_WORKERS)")
	fs.DurationVar(&c.StepTimeout, "step-timeout", envDuration("ECS_STEP_TIMEOUT", 10*time.Minute), "limit for each driver step of a job (env ECS_STEP_TIMEOUT)")
	fs.StringVar(&c.LogLevel, "log-level", env("ECS_LOG_LEVEL", "info"), "debug, info, warn or error (env ECS_LOG_LEVEL)")
	fs.StringVar(&c.Synchronous, "sqlite-synchronous", env("ECS_SQLITE_SYNCHRONOUS", "NORMAL"), "SQLite synchronous mode: NORMAL or FULL (env ECS_SQLITE_SYNCHRONOUS)")
	fs.StringVar(&c.QEMUAccel, "qemu-accel", env("ECS_QEMU_ACCEL", "tcg"), "qemu: accelerator tcg, kvm or auto (env ECS_QEMU_ACCEL)")
	fs.StringVar(&c.QEMUUser, "qemu-user", env("ECS_QEMU_USER", "ecsd-qemu"), "qemu: unprivileged user QEMU runs as when ecsd is root, created if missing (env ECS_QEMU_USER)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.Driver != "sim" && c.Driver != "qemu" {
		return c, fmt.Errorf("--driver must be sim or qemu, not %q", c.Driver)
	}
	return c, nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// openState opens the data dir's database and secret box.
func openState(ctx context.Context, dataDir, synchronous string) (*sqlite.Store, *secret.Box, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, err
	}
	box, err := secret.LoadOrCreate(filepath.Join(dataDir, "secret.key"))
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dataDir, "ecsd.db"), Synchronous: synchronous})
	if err != nil {
		return nil, nil, err
	}
	return st, box, nil
}

func serve(ctx context.Context, cfg Config) error {
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	st, box, err := openState(ctx, cfg.DataDir, cfg.Synchronous)
	if err != nil {
		return err
	}
	defer st.Close()

	drv, importer, err := openDriver(ctx, cfg)
	if err != nil {
		return err
	}
	defer drv.Close()

	svc := cloud.New(cloud.Config{Store: st, Driver: drv, Box: box, Logger: log, Workers: cfg.Workers,
		StepTimeout: cfg.StepTimeout, JobRetention: cfg.JobRetention})
	if cfg.Driver == "sim" {
		// The simulator's catalog; the qemu driver serves imported images.
		if err := svc.SeedImages(ctx); err != nil {
			return fmt.Errorf("seed images: %w", err)
		}
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	endpoint := "http://" + ln.Addr().String()
	credPath := filepath.Join(cfg.DataDir, "credentials.json")
	if err := bootstrapCredentials(ctx, svc, st, credPath, endpoint); err != nil {
		ln.Close()
		return err
	}

	handler := api.New(api.Config{Service: svc, Logger: log, ImageImporter: importerFor(svc, importer)})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	jobsDone := make(chan error, 1)
	go func() { jobsDone <- svc.Run(runCtx) }()
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()
	log.Info("ecsd serving", "endpoint", endpoint, "data_dir", cfg.DataDir, "driver", drv.Name(), "credentials", credPath)

	select {
	case <-ctx.Done():
	case err := <-httpDone:
		cancelRun()
		<-jobsDone
		return err
	case err := <-jobsDone:
		srv.Close()
		return err
	}
	log.Info("ecsd shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	cancelRun()
	<-jobsDone
	log.Info("ecsd stopped")
	return nil
}

func openDriver(ctx context.Context, cfg Config) (compute.Driver, imageImporter, error) {
	faults, err := sim.ParseFaults(cfg.Faults)
	if err != nil {
		return nil, nil, fmt.Errorf("--faults: %w", err)
	}
	d, imp, err := openBaseDriver(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return faulty.Wrap(d, faults), imp, nil
}

func openBaseDriver(ctx context.Context, cfg Config) (compute.Driver, imageImporter, error) {
	switch cfg.Driver {
	case "qemu":
		return openQEMU(ctx, cfg)
	default:
		faults, err := sim.ParseFaults(cfg.SimFaults)
		if err != nil {
			return nil, nil, fmt.Errorf("--sim-faults: %w", err)
		}
		d, err := sim.New(sim.Config{Dir: filepath.Join(cfg.DataDir, "sim"), Latency: cfg.SimLatency, Faults: faults})
		return d, nil, err
	}
}

// credentialsFile is the JSON written to <data-dir>/credentials.json.
type credentialsFile struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id"`
	Endpoint  string `json:"endpoint"`
}

// bootstrapCredentials makes the first project and access key on first
// start and writes credentials.json; later starts refresh its endpoint.
func bootstrapCredentials(ctx context.Context, svc *cloud.Service, st *sqlite.Store, path, endpoint string) error {
	n, err := st.CredentialCount(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // the operator moved it away; nothing to refresh
		}
		var cf credentialsFile
		if json.Unmarshal(b, &cf) == nil && cf.Endpoint != endpoint {
			cf.Endpoint = endpoint
			return writeCredentials(path, cf)
		}
		return nil
	}
	c, err := svc.NewCredential(ctx, "default")
	if err != nil {
		return fmt.Errorf("create first credential: %w", err)
	}
	return writeCredentials(path, credentialsFile{AccessKey: c.AccessKey, SecretKey: c.SecretKey, ProjectID: c.ProjectID,
		UserID: c.UserID, Endpoint: endpoint})
}

func writeCredentials(path string, cf credentialsFile) error {
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// credentialsAdd implements `ecsd credentials add`: a new project with its
// own access key, printed as JSON on out.
func credentialsAdd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ecsd credentials add", flag.ContinueOnError)
	dataDir := fs.String("data-dir", env("ECS_DATA_DIR", "./data"), "data directory of the ecsd to add to (env ECS_DATA_DIR)")
	name := fs.String("project-name", "", "name of the new project")
	endpoint := fs.String("endpoint", "", "endpoint to print (default: the one in credentials.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	st, box, err := openState(ctx, *dataDir, "NORMAL")
	if err != nil {
		return err
	}
	defer st.Close()
	svc := cloud.New(cloud.Config{Store: st, Box: box, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	pname := *name
	if pname == "" {
		pname = "project-" + strconv.FormatInt(time.Now().Unix(), 10)
	}
	c, err := svc.NewCredential(ctx, pname)
	if err != nil {
		return err
	}
	ep := *endpoint
	if ep == "" {
		if b, err := os.ReadFile(filepath.Join(*dataDir, "credentials.json")); err == nil {
			var cf credentialsFile
			if json.Unmarshal(b, &cf) == nil {
				ep = cf.Endpoint
			}
		}
	}
	b, _ := json.MarshalIndent(credentialsFile{AccessKey: c.AccessKey, SecretKey: c.SecretKey, ProjectID: c.ProjectID,
		UserID: c.UserID, Endpoint: ep}, "", "  ")
	_, err = fmt.Fprintln(out, string(b))
	return err
}

// lockDataDir takes an exclusive lock on the data dir so that one daemon at
// a time runs its jobs (start-up recovery relies on it).
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "ecsd.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another ecsd", dir)
	}
	return func() { f.Close() }, nil
}

// imageImporter is what the qemu driver offers for image import.
type imageImporter interface {
	ImportImage(ctx context.Context, name, file, kernel, initrd string) (ecs.Image, error)
}

// importerFor adapts a driver's importer to the API, recording imported
// images in the catalog.
func importerFor(svc *cloud.Service, imp imageImporter) api.ImageImporter {
	if imp == nil {
		return nil
	}
	return catalogImporter{svc: svc, imp: imp}
}

type catalogImporter struct {
	svc *cloud.Service
	imp imageImporter
}

func (c catalogImporter) ImportImage(ctx context.Context, req api.ImportImageRequest) (ecs.Image, error) {
	img, err := c.imp.ImportImage(ctx, req.Name, req.File, req.Kernel, req.Initrd)
	if err != nil {
		var e *ecs.Error
		if errors.As(err, &e) {
			return img, e
		}
		return img, ecs.Wrap(ecs.CodeInvalidParam, err, "Image import failed: "+firstLine(err.Error()))
	}
	if err := c.svc.AddImage(ctx, img); err != nil {
		return img, ecs.Wrap(ecs.CodeSystem, err, "Failed to record the image.")
	}
	return img, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
