package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func host(name string, vcpus int, allocVCPUs int, beat time.Duration) store.Host {
	return store.Host{Name: name, VCPUs: vcpus, RAMMB: 64 << 10, DiskGB: 1000, CPURatio: 1, RAMRatio: 1, DiskRatio: 1,
		AllocVCPUs: allocVCPUs, Driver: DriverSim, Heartbeat: now.Add(-beat), Age: beat}
}

// hostStore opens a SQLite store, closed when the test ends, holding hosts.
func hostStore(t *testing.T, hosts ...store.Host) store.Store {
	t.Helper()
	st := openShared(t, 1)[0]
	for _, h := range hosts {
		if err := st.HostUpsert(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestUp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		age  time.Duration
		want bool
	}{{0, true}, {29 * time.Second, true}, {30 * time.Second, true}, {31 * time.Second, false}, {-5 * time.Second, true}} {
		if got := Up(host("h", 1, 0, tt.age), 30*time.Second); got != tt.want {
			t.Errorf("Up with a heartbeat %s old = %v, want %v", tt.age, got, tt.want)
		}
	}
	if Up(store.Host{Name: "never", Age: -time.Hour}, time.Hour) {
		t.Error("a host without a heartbeat is up")
	}
}

func TestCandidates(t *testing.T) {
	t.Parallel()
	hosts := []store.Host{
		host("busy", 10, 8, 0),
		host("down", 10, 0, time.Hour),
		host("empty", 10, 0, 0),
		host("half", 10, 5, 0),
		host("full", 10, 10, 0),
	}
	qemu := host("qemu", 10, 0, 0)
	qemu.Driver = "qemu"
	hosts = append(hosts, qemu)
	p := NewPlacer(hosts, 30*time.Second)
	got, err := p.Candidates(Need{VCPUs: 2}, Image{Fileless: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range got {
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != "empty,half,busy" {
		t.Errorf("candidates of a file-less image = %v, want empty,half,busy (most free first; no down, full or qemu host)", names)
	}
	got, err = p.Candidates(Need{VCPUs: 1}, Image{Hosts: []string{"qemu", "down"}})
	if err != nil || len(got) != 1 || got[0].Name != "qemu" {
		t.Errorf("candidates of an image on qemu and down = %v, %v; want qemu", got, err)
	}
	_, err = p.Candidates(Need{VCPUs: 11}, Image{Fileless: true})
	var nr *NoRoomError
	if !errors.As(err, &nr) || !strings.Contains(nr.Reason, "of 6 hosts, 4 without enough free vCPUs, memory or disk, 1 without the image, 1 down") {
		t.Errorf("no candidate: %v", err)
	}
	_, err = NewPlacer(nil, time.Minute).Candidates(Need{VCPUs: 1}, Image{Fileless: true})
	if !errors.As(err, &nr) || !strings.Contains(nr.Reason, "no host registered") {
		t.Errorf("no host: %v", err)
	}
}

// A host that filled up since the placer read it (another node's create)
// is passed over for the next best one.
func TestPlacePassesOverAHostFilledMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := hostStore(t, host("a", 4, 0, 0), host("b", 2, 0, 0))
	stale, err := st.HostList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another node fills host a.
	if err := st.Write(ctx, func(tx store.Tx) error {
		return tx.HostAllocate(ctx, store.Allocation{ServerID: "other", Host: "a", VCPUs: 4})
	}); err != nil {
		t.Fatal(err)
	}
	p := NewPlacer(stale, 100*365*24*time.Hour)
	var placed []string
	err = st.Write(ctx, func(tx store.Tx) error {
		placed = placed[:0]
		for _, id := range []string{"s1", "s2", "s3"} {
			h, err := p.Place(ctx, tx, id, []string{"vol-" + id}, Need{VCPUs: 1}, Image{Fileless: true})
			if err != nil {
				return err
			}
			placed = append(placed, h)
		}
		return nil
	})
	var nr *NoRoomError
	if !errors.As(err, &nr) || strings.Join(placed, ",") != "b,b" {
		t.Fatalf("placing 3 on a filled a and a b of 2: %v after %v; want b,b then no room", err, placed)
	}
	if h, _ := st.HostGet(ctx, "b"); h.AllocVCPUs != 0 {
		t.Fatalf("host b holds %d vCPUs after the rolled back Write", h.AllocVCPUs)
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openShared(t, 1)[0]
	for _, bad := range []HostConfig{
		{Store: st, Capacity: SimCapacity},
		{Store: st, Name: "h", Capacity: Capacity{VCPUs: 1, RAMMB: 1}},
		{Store: st, Name: "h", Capacity: SimCapacity, Ratios: Ratios{CPU: 1, RAM: 0, Disk: 1}},
	} {
		if _, err := Register(ctx, bad); err == nil {
			t.Errorf("Register(%+v) succeeded", bad)
		}
	}
	h, err := Register(ctx, HostConfig{Store: st, Name: "h", Driver: "sim", Capacity: SimCapacity, Advertise: "http://x"})
	if err != nil || h.Name() != "h" {
		t.Fatal(err)
	}
	got, err := st.HostGet(ctx, "h")
	if err != nil || got.CPURatio != 16 || got.RAMRatio != 1.5 || got.DiskRatio != 1 || got.VCPUs != 1024 ||
		got.RAMMB != 4<<20 || got.DiskGB != 100<<10 || !Up(got, time.Minute) {
		t.Fatalf("registered host = %+v, %v", got, err)
	}
	if _, err := st.HostGet(ctx, "other"); !errors.Is(err, ecs.ErrNotFound) {
		t.Fatalf("HostGet of an unregistered host: %v", err)
	}
}

func TestDetectCapacity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := DetectCapacity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.VCPUs < 1 || c.RAMMB < 1 || c.DiskGB < 0 {
		t.Fatalf("detected %+v", c)
	}
	f := filepath.Join(dir, "meminfo")
	os.WriteFile(f, []byte("MemFree:  100 kB\nMemTotal:       16314384 kB\n"), 0o600)
	if mb, err := memTotalMB(f); err != nil || mb != 16314384>>10 {
		t.Fatalf("memTotalMB = %d, %v", mb, err)
	}
	os.WriteFile(f, []byte("MemFree:  100 kB\n"), 0o600)
	if _, err := memTotalMB(f); err == nil {
		t.Fatal("memTotalMB of a file without MemTotal succeeded")
	}
}

// Run keeps the heartbeat fresh until its context ends.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	st := openShared(t, 1)[0]
	h, err := Register(ctx, HostConfig{Store: st, Name: "h", Capacity: SimCapacity, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := st.HostGet(ctx, "h")
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	for {
		got, err := st.HostGet(ctx, "h")
		if err != nil {
			t.Fatal(err)
		}
		if got.Heartbeat.After(first.Heartbeat) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// Data disks need room on the host as the system disk does, and are held
// by their volumes.
func TestPlaceCountsDataDisks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := hostStore(t, host("a", 8, 0, 0)) // 1000 GB of disk
	place := func(id string, vols []string, need Need) error {
		return st.Write(ctx, func(tx store.Tx) error {
			hosts, err := tx.HostList(ctx)
			if err != nil {
				return err
			}
			_, err = NewPlacer(hosts, 100*365*24*time.Hour).Place(ctx, tx, id, vols, need, Image{Fileless: true})
			return err
		})
	}
	if err := place("s1", []string{"sys-1", "data-1"}, Need{VCPUs: 1, DiskGB: 100, DataGB: []int64{800}}); err != nil {
		t.Fatal(err)
	}
	var nr *NoRoomError
	if err := place("s2", []string{"sys-2", "data-2"}, Need{VCPUs: 1, DiskGB: 50, DataGB: []int64{60}}); !errors.As(err, &nr) {
		t.Fatalf("placing 50 + 60 GB on 100 GB free: %v, want no room", err)
	}
	if err := place("s3", []string{"sys-3"}, Need{VCPUs: 1, DiskGB: 50, DataGB: []int64{50}}); err == nil {
		t.Fatal("placed a server with fewer volume ids than disks")
	}
	if err := place("s3", []string{"sys-3", "data-3"}, Need{VCPUs: 1, DiskGB: 50, DataGB: []int64{50}}); err != nil {
		t.Fatal(err)
	}
	if h, _ := st.HostGet(ctx, "a"); h.AllocDiskGB != 1000 || h.AllocVCPUs != 2 {
		t.Fatalf("host holds %d GB and %d vCPUs, want 1000 and 2", h.AllocDiskGB, h.AllocVCPUs)
	}
	// The server's delete leaves its volumes' disk held.
	if err := st.Write(ctx, func(tx store.Tx) error { return tx.ServerDelete(ctx, "s1") }); err != nil {
		t.Fatal(err)
	}
	if h, _ := st.HostGet(ctx, "a"); h.AllocDiskGB != 1000 || h.AllocVCPUs != 1 {
		t.Fatalf("after a server's delete the host holds %d GB and %d vCPUs, want 1000 and 1", h.AllocDiskGB, h.AllocVCPUs)
	}
}

// aheadStore is a store whose clock is ahead of this machine's: what it
// stamps and ages reads ahead by the given amount.
type aheadStore struct {
	store.Store
	ahead time.Duration
}

func (s aheadStore) HostGet(ctx context.Context, name string) (store.Host, error) {
	h, err := s.Store.HostGet(ctx, name)
	h.Heartbeat = h.Heartbeat.Add(s.ahead)
	return h, err
}

// Host.Now follows the store's clock, not this machine's: nodes compare
// times outside the store (forwarded calls) on it.
func TestHostNowFollowsTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openShared(t, 1)[0]
	for _, ahead := range []time.Duration{-10 * time.Minute, 0, 10 * time.Minute} {
		h, err := Register(ctx, HostConfig{Store: aheadStore{st, ahead}, Name: "h", Capacity: SimCapacity})
		if err != nil {
			t.Fatal(err)
		}
		if d := h.Now().Sub(time.Now().Add(ahead)); d < -time.Minute || d > time.Minute {
			t.Errorf("with the store's clock %s ahead, Host.Now is %s off it", ahead, d)
		}
	}
}
