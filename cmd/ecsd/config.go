package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute/faulty"
)

// Config is the daemon's configuration (ecsd serve).
type Config struct {
	Listen       string
	DataDir      string
	Driver       string
	SimLatency   time.Duration
	SimJournal   string
	SimFaults    string
	Faults       string
	JobRetention time.Duration
	Workers      int
	StepTimeout  time.Duration
	LogLevel     string
	Synchronous  string
	QEMUAccel    string
	QEMUUser     string
	QEMUUIDBase  int
	TLSCert      string
	TLSKey       string
	InsecureHTTP bool

	// The node contract (several nodes sharing one PostgreSQL database).
	Store         string        // "" for SQLite in the data dir, else a postgres:// URL
	Host          string        // this node's host name: the lease owner of its jobs
	Advertise     string        // where other nodes reach this node ("" = from Listen and TLS)
	SecretKeyFile string        // "" = <data-dir>/secret.key
	StoreWait     time.Duration // how long a start waits for PostgreSQL (0: not at all)
	HostDownAfter time.Duration // a host whose heartbeat is older is down

	// The host's capacity (0: detected; the simulator's default is
	// cluster.SimCapacity) and allocation ratios.
	HostVCPUs  int
	HostRAMMB  int
	HostDiskGB int
	CPURatio   float64
	RAMRatio   float64
	DiskRatio  float64
	// ActionRetention is how long action log entries are kept
	// (--action-retention).
	ActionRetention time.Duration
}

// TLS reports whether the daemon serves HTTPS.
func (c Config) TLS() bool { return c.TLSCert != "" }

// serveFlags declares the flags of ecsd serve on fs, bound to c.
func serveFlags(fs *flagSet, c *Config) {
	fs.stringVar(&c.Listen, "listen", "ECS_LISTEN", "127.0.0.1:8080", "`ADDRESS` to serve on; one off the loopback needs TLS or --insecure-http")
	fs.stringVar(&c.DataDir, "data-dir", "ECS_DATA_DIR", "./data", "`DIR` of this node's state (driver state, disks, logs; the SQLite database without --store); it keeps the driver and store it was first started with")
	fs.stringVar(&c.Driver, "driver", "ECS_DRIVER", "sim", "compute `DRIVER`: sim or qemu")
	fs.stringVar(&c.TLSCert, "tls-cert", "ECS_TLS_CERT", "", "serve HTTPS with this certificate `FILE` (PEM, with its chain), with --tls-key")
	fs.stringVar(&c.TLSKey, "tls-key", "ECS_TLS_KEY", "", "private key `FILE` (PEM) of --tls-cert")
	fs.boolVar(&c.InsecureHTTP, "insecure-http", "ECS_INSECURE_HTTP", false,
		"allow plain HTTP on an address off the loopback (e.g. behind a TLS-terminating proxy)")
	fs.durationVar(&c.SimLatency, "sim-latency", "ECS_SIM_LATENCY", 0, "sim: latency added to every driver call")
	fs.stringVar(&c.SimJournal, "sim-journal", "ECS_SIM_JOURNAL", "",
		"sim: append one JSON line per driver call that changed state to `FILE` (with the job and lease that made it), for tests")
	fs.stringVar(&c.SimFaults, "sim-faults", "ECS_SIM_FAULTS", "", "older name of --faults (both apply)")
	fs.stringVar(&c.Faults, "faults", "ECS_FAULTS", "", "`FAULTS` injected into the driver's calls, e.g. apply_credentials=fail:1,start=hang")
	fs.durationVar(&c.JobRetention, "job-retention", "ECS_JOB_RETENTION", 24*time.Hour, "how long finished jobs are kept")
	fs.durationVar(&c.ActionRetention, "action-retention", "ECS_ACTION_RETENTION", 90*24*time.Hour,
		"how long the action log (os-instance-actions) keeps an entry, after its job and its server are gone")
	fs.intVar(&c.Workers, "workers", "ECS_WORKERS", 64, "jobs run at once")
	fs.durationVar(&c.StepTimeout, "step-timeout", "ECS_STEP_TIMEOUT", 10*time.Minute, "limit of each driver step of a job")
	fs.stringVar(&c.LogLevel, "log-level", "ECS_LOG_LEVEL", "info", "`LEVEL`: debug, info, warn or error")
	fs.stringVar(&c.Synchronous, "sqlite-synchronous", "ECS_SQLITE_SYNCHRONOUS", "NORMAL", "SQLite synchronous `MODE`: NORMAL or FULL")
	fs.stringVar(&c.QEMUAccel, "qemu-accel", "ECS_QEMU_ACCEL", "tcg", "qemu: `ACCEL`erator tcg, kvm or auto")
	fs.intVar(&c.HostVCPUs, "host-vcpus", "ECS_HOST_VCPUS", 0, "vCPUs this host offers before the ratio (0: detected; sim: 1024)")
	fs.intVar(&c.HostRAMMB, "host-ram-mb", "ECS_HOST_RAM_MB", 0, "memory in MB this host offers before the ratio (0: detected; sim: 4 TiB)")
	fs.intVar(&c.HostDiskGB, "host-disk-gb", "ECS_HOST_DISK_GB", 0, "disk in GB this host offers before the ratio (0: the data dir's file system; sim: 100 TiB)")
	fs.floatVar(&c.CPURatio, "cpu-allocation-ratio", "ECS_CPU_ALLOCATION_RATIO", cluster.DefaultRatios.CPU, "vCPUs placed per host vCPU")
	fs.floatVar(&c.RAMRatio, "ram-allocation-ratio", "ECS_RAM_ALLOCATION_RATIO", cluster.DefaultRatios.RAM, "memory placed per MB of host memory")
	fs.floatVar(&c.DiskRatio, "disk-allocation-ratio", "ECS_DISK_ALLOCATION_RATIO", cluster.DefaultRatios.Disk, "disk placed per GB of host disk")
	fs.stringVar(&c.QEMUUser, "qemu-user", "ECS_QEMU_USER", "ecsd-qemu", "qemu: the unprivileged `USER` whose group QEMU drops to when ecsd runs as root (created if missing)")
	fs.intVar(&c.QEMUUIDBase, "qemu-uid-base", "ECS_QEMU_UID_BASE", 1_900_000_000,
		"qemu: first of the 65536 `UID`s QEMU runs as when ecsd runs as root, one per server (nodes on one machine need ranges apart)")
	nodeFlags(fs, c)
}

// parseServe parses the command line of ecsd serve, with the environment
// read through lookup, and checks the result.
func parseServe(args []string, lookup func(string) (string, bool)) (Config, error) {
	var c Config
	fs := newFlagSet("serve", lookup)
	serveFlags(fs, &c)
	if err := fs.parse(args); err != nil {
		return c, err
	}
	if len(fs.args()) > 0 {
		return c, usagef("unexpected argument %q", fs.args()[0])
	}
	return c, c.check(fs)
}

// check refuses a configuration ecsd cannot or must not run with, naming
// the flag or variable at fault.
func (c Config) check(fs *flagSet) error {
	bad := func(name, format string, args ...any) error {
		return usagef("%s: %s", fs.source(name), fmt.Sprintf(format, args...))
	}
	switch {
	case c.Driver != "sim" && c.Driver != "qemu":
		return bad("driver", "must be sim or qemu, not %q", c.Driver)
	case c.Workers < 1:
		return bad("workers", "must be at least 1, not %d", c.Workers)
	case c.StepTimeout <= 0:
		return bad("step-timeout", "must be positive, not %s", c.StepTimeout)
	case c.JobRetention <= 0:
		return bad("job-retention", "must be positive, not %s", c.JobRetention)
	case c.ActionRetention <= 0:
		return bad("action-retention", "must be positive, not %s", c.ActionRetention)
	case c.SimLatency < 0:
		return bad("sim-latency", "must not be negative, not %s", c.SimLatency)
	case c.Synchronous != "NORMAL" && c.Synchronous != "FULL":
		return bad("sqlite-synchronous", "must be NORMAL or FULL, not %q", c.Synchronous)
	case c.QEMUAccel != "tcg" && c.QEMUAccel != "kvm" && c.QEMUAccel != "auto":
		return bad("qemu-accel", "must be tcg, kvm or auto, not %q", c.QEMUAccel)
	case c.HostVCPUs < 0:
		return bad("host-vcpus", "must not be negative, not %d", c.HostVCPUs)
	case c.HostRAMMB < 0:
		return bad("host-ram-mb", "must not be negative, not %d", c.HostRAMMB)
	case c.HostDiskGB < 0:
		return bad("host-disk-gb", "must not be negative, not %d", c.HostDiskGB)
	case !(c.CPURatio > 0):
		return bad("cpu-allocation-ratio", "must be positive, not %v", c.CPURatio)
	case !(c.RAMRatio > 0):
		return bad("ram-allocation-ratio", "must be positive, not %v", c.RAMRatio)
	case !(c.DiskRatio > 0):
		return bad("disk-allocation-ratio", "must be positive, not %v", c.DiskRatio)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return usagef("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return bad("log-level", "must be debug, info, warn or error, not %q", c.LogLevel)
	}
	if _, err := faulty.Parse(c.SimFaults); err != nil {
		return bad("sim-faults", "%v", err)
	}
	if _, err := faulty.Parse(c.Faults); err != nil {
		return bad("faults", "%v", err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen", "%v", err)
	}
	if err := c.checkNode(fs); err != nil {
		return err
	}
	if !c.TLS() && !c.InsecureHTTP && !loopback(c.Listen) {
		return usagef("%s %s is reachable from other machines, and plain HTTP would carry every request "+
			"(admin passwords in reinstall bodies, private keys of new key pairs) unencrypted: "+
			"serve HTTPS with --tls-cert FILE --tls-key FILE, listen on a loopback address such as 127.0.0.1:8080, "+
			"or accept plain HTTP with --insecure-http (for example behind a TLS-terminating proxy)",
			fs.source("listen"), c.Listen)
	}
	return nil
}

// loopback reports whether the address listen (host:port) is on the
// loopback only: a loopback IP or "localhost". An empty host (every
// interface) and any other name count as reachable from elsewhere.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostCapacity is the capacity the host registers: the flags, else the
// simulator's default or what this machine has.
func (c Config) hostCapacity(dataDir string) (cluster.Capacity, error) {
	var base cluster.Capacity
	if c.Driver == "sim" {
		base = cluster.SimCapacity
	} else if c.HostVCPUs == 0 || c.HostRAMMB == 0 || c.HostDiskGB == 0 {
		var err error
		if base, err = cluster.DetectCapacity(dataDir); err != nil {
			return base, err
		}
	}
	if c.HostVCPUs > 0 {
		base.VCPUs = c.HostVCPUs
	}
	if c.HostRAMMB > 0 {
		base.RAMMB = int64(c.HostRAMMB)
	}
	if c.HostDiskGB > 0 {
		base.DiskGB = int64(c.HostDiskGB)
	}
	return base, nil
}

// ratios are the host's allocation ratios.
func (c Config) ratios() cluster.Ratios {
	return cluster.Ratios{CPU: c.CPURatio, RAM: c.RAMRatio, Disk: c.DiskRatio}
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level)) // checked by Config.check
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
