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
//   - Up compares a heartbeat written by the host's clock with the reader's
//     clock: nodes of one cloud keep their clocks in sync (NTP), and
//     down-after is large beside the heartbeat interval and any skew.
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

// Up reports whether a host's heartbeat is at most downAfter old at now.
func Up(h store.Host, now time.Time, downAfter time.Duration) bool {
	if downAfter <= 0 {
		downAfter = DefaultDownAfter
	}
	return !h.Heartbeat.IsZero() && now.Sub(h.Heartbeat) <= downAfter
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
	cfg HostConfig
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
	return h, nil
}

func (h *Host) upsert(ctx context.Context) error {
	c, now := h.cfg, time.Now().UTC()
	err := c.Store.HostUpsert(ctx, store.Host{Name: c.Name, VCPUs: c.Capacity.VCPUs, RAMMB: c.Capacity.RAMMB,
		DiskGB: c.Capacity.DiskGB, CPURatio: c.Ratios.CPU, RAMRatio: c.Ratios.RAM, DiskRatio: c.Ratios.Disk,
		Advertise: c.Advertise, Driver: c.Driver, Heartbeat: now, Created: now})
	if err != nil {
		return fmt.Errorf("cluster: register host %s: %w", c.Name, err)
	}
	return nil
}

// Name is the host's name.
func (h *Host) Name() string { return h.cfg.Name }

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
		err := h.cfg.Store.HostHeartbeat(ctx, h.cfg.Name, time.Now().UTC())
		if errors.Is(err, ecs.ErrNotFound) {
			// The row was deleted (by an operator): register again.
			err = h.upsert(ctx)
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
