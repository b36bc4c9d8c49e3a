// Package cluster makes several ecsd nodes one cloud. This file and
// placement.go hold the hosts: each node registers its host (capacity,
// allocation ratios, advertise URL, driver) in the shared store and keeps
// its heartbeat fresh; a host whose heartbeat is older than the cloud's
// down-after is down; placement picks a host for each new server and
// reserves its capacity in the transaction that inserts the server.
//
// Contract:
//   - A host offers capacity*ratio of each resource (Nova's allocation
//     ratios); the store's HostAllocate enforces it in one conditional
//     update, so concurrent creates, on any number of nodes, never
//     overcommit a host. A server holds its vCPUs and RAM; each volume
//     (system or data disk) holds its own disk, from its server's create
//     or its first attach until it is deleted, so a data volume that
//     outlives its server keeps counting.
//   - Heartbeats are stamped and aged by the store's clock (the database's
//     on PostgreSQL): the nodes' clocks need not agree. Up compares a
//     heartbeat's age with down-after, which is large beside the heartbeat
//     interval. Where nodes compare times outside the store (a forwarded
//     call's timestamp), each uses Host.Now: its estimate of the store's
//     clock, measured at every heartbeat.
package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// Capacity is what a host has: vCPUs, RAM and disk.
type Capacity struct {
	VCPUs  int
	RAMMB  int64
	DiskGB int64
}

// Ratios are the allocation ratios of a host: it offers capacity*ratio.
type Ratios struct {
	CPU  float64
	RAM  float64
	Disk float64
}

// DefaultRatios are Nova's defaults: 16 vCPUs per core, 1.5 x RAM, 1.0 x disk.
var DefaultRatios = Ratios{CPU: 16, RAM: 1.5, Disk: 1.0}

// SimCapacity is the simulator's default capacity, large enough for every
// test and benchmark on one host: 1,024 vCPUs, 4 TiB of RAM, 100 TiB of disk.
var SimCapacity = Capacity{VCPUs: 1024, RAMMB: 4 << 20, DiskGB: 100 << 10}

// DefaultDownAfter is how old a heartbeat may be before its host is down.
const DefaultDownAfter = 30 * time.Second

// DetectCapacity returns this machine's capacity: its CPUs, its memory
// (/proc/meminfo) and the size of the file system holding dataDir.
func DetectCapacity(dataDir string) (Capacity, error) {
	c := Capacity{VCPUs: runtime.NumCPU()}
	mem, err := memTotalMB("/proc/meminfo")
	if err != nil {
		return c, fmt.Errorf("detect memory: %w (give --host-ram-mb)", err)
	}
	c.RAMMB = mem
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dataDir, &fs); err != nil {
		return c, fmt.Errorf("detect disk size of %s: %w (give --host-disk-gb)", dataDir, err)
	}
	c.DiskGB = int64(fs.Blocks) * int64(fs.Bsize) >> 30
	return c, nil
}

// memTotalMB reads MemTotal from a meminfo file.
func memTotalMB(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal %q: %w", path, fields[1], err)
			}
			return kb >> 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no MemTotal", path)
}

// Up reports whether a host has a heartbeat at most downAfter old (its
// Age, by the store's clock, when it was read).
func Up(h store.Host, downAfter time.Duration) bool {
	if downAfter <= 0 {
		downAfter = DefaultDownAfter
	}
	return !h.Heartbeat.IsZero() && h.Age <= downAfter
}

// HostConfig describes this node's host.
type HostConfig struct {
	Store store.Store
	// Name is the host name (--host), unique in the cloud.
	Name      string
	Advertise string
	Driver    string
	Capacity  Capacity
	Ratios    Ratios
	// Interval is the heartbeat period (default 5s); keep it well below
	// the cloud's down-after.
	Interval time.Duration
	Logger   *slog.Logger
}

// Host is this node's registered host; Run keeps its heartbeat.
type Host struct {
	cfg    HostConfig
	offset atomic.Int64 // the store's clock minus this node's, in nanoseconds
}

// Register records the host in the store, or updates its capacity,
// ratios, URL and driver (its allocations stay), with a fresh heartbeat.
func Register(ctx context.Context, cfg HostConfig) (*Host, error) {
	if cfg.Name == "" {
		return nil, errors.New("cluster: the host needs a name")
	}
	if cfg.Capacity.VCPUs <= 0 || cfg.Capacity.RAMMB <= 0 || cfg.Capacity.DiskGB <= 0 {
		return nil, fmt.Errorf("cluster: host %s: capacity must be positive (%d vCPUs, %d MB RAM, %d GB disk)", cfg.Name,
			cfg.Capacity.VCPUs, cfg.Capacity.RAMMB, cfg.Capacity.DiskGB)
	}
	if cfg.Ratios == (Ratios{}) {
		cfg.Ratios = DefaultRatios
	}
	if cfg.Ratios.CPU <= 0 || cfg.Ratios.RAM <= 0 || cfg.Ratios.Disk <= 0 {
		return nil, fmt.Errorf("cluster: host %s: allocation ratios must be positive", cfg.Name)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Host{cfg: cfg}
	if err := h.upsert(ctx); err != nil {
		return nil, err
	}
	if err := h.measure(ctx); err != nil {
		return nil, fmt.Errorf("cluster: read host %s back: %w", cfg.Name, err)
	}
	return h, nil
}

func (h *Host) upsert(ctx context.Context) error {
	// Heartbeat and Created are left to the store's clock.
	c := h.cfg
	err := c.Store.HostUpsert(ctx, store.Host{Name: c.Name, VCPUs: c.Capacity.VCPUs, RAMMB: c.Capacity.RAMMB,
		DiskGB: c.Capacity.DiskGB, CPURatio: c.Ratios.CPU, RAMRatio: c.Ratios.RAM, DiskRatio: c.Ratios.Disk,
		Advertise: c.Advertise, Driver: c.Driver})
	if err != nil {
		return fmt.Errorf("cluster: register host %s: %w", c.Name, err)
	}
	return nil
}

// Name is the host's name.
func (h *Host) Name() string { return h.cfg.Name }

// Now is the store's clock as this node estimates it: its own clock plus
// the difference measured at the last heartbeat (to within half the
// store's round trip). Nodes whose clocks disagree agree on it.
func (h *Host) Now() time.Time { return time.Now().Add(time.Duration(h.offset.Load())) }

// measure reads the host back to learn the store's clock: the heartbeat
// plus its age is the store's time of the read, which happened between
// before and after on this node's clock.
func (h *Host) measure(ctx context.Context) error {
	before := time.Now()
	got, err := h.cfg.Store.HostGet(ctx, h.cfg.Name)
	after := time.Now()
	if err != nil {
		return err
	}
	if got.Heartbeat.IsZero() {
		return nil
	}
	mid := before.Add(after.Sub(before) / 2)
	h.offset.Store(int64(got.Heartbeat.Add(got.Age).Sub(mid)))
	return nil
}

// Run writes the host's heartbeat every Interval until ctx ends. A failed
// write is logged and retried at the next beat: the host shows down
// meanwhile once its last heartbeat is old enough.
func (h *Host) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := h.cfg.Store.HostHeartbeat(ctx, h.cfg.Name, time.Time{}) // the store's clock
		if errors.Is(err, ecs.ErrNotFound) {
			// The row was deleted (by an operator): register again.
			err = h.upsert(ctx)
		}
		if err == nil {
			err = h.measure(ctx)
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			h.cfg.Logger.Error("host heartbeat failed", "host", h.cfg.Name, "err", err)
			failing = true
		case err == nil && failing:
			h.cfg.Logger.Info("host heartbeat written again", "host", h.cfg.Name)
			failing = false
		}
	}
}
