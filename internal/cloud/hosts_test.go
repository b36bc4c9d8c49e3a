package cloud_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// addHost registers another node's host with a fresh heartbeat (its jobs
// are not run: no node serves it in these tests).
func (b *bundle) addHost(t *testing.T, name string, c cluster.Capacity, driver string) {
	t.Helper()
	now := time.Now().UTC()
	err := b.st.HostUpsert(context.Background(), store.Host{Name: name, VCPUs: c.VCPUs, RAMMB: c.RAMMB, DiskGB: c.DiskGB,
		CPURatio: 1, RAMRatio: 1, DiskRatio: 1, Driver: driver, Heartbeat: now, Created: now})
	if err != nil {
		t.Fatal(err)
	}
}

// fillOwnHost reserves all of the test node's own host, so that servers go
// to the other hosts.
func (b *bundle) fillOwnHost(t *testing.T) {
	t.Helper()
	err := b.st.Write(context.Background(), func(tx store.Tx) error {
		return tx.HostAllocate(context.Background(), store.Allocation{ServerID: "filler", Host: testNode, VCPUs: 1 << 20,
			RAMMB: 1 << 40, DiskGB: 1 << 30, Force: true})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) create(count int, image, flavor string) (string, []string, error) {
	return b.svc.CreateServers(context.Background(), b.caller, cloud.CreateInput{Name: "p", ImageRef: image, FlavorRef: flavor,
		VPCID: "vpc", SubnetIDs: []string{"sn"}, VolumeType: "SSD", Count: count})
}

// hostsOf counts the servers of ids by host.
func (b *bundle) hostsOf(t *testing.T, ids []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, id := range ids {
		srv, err := b.svc.GetServer(context.Background(), b.caller, id)
		if err != nil {
			t.Fatal(err)
		}
		out[srv.Host]++
	}
	return out
}

func TestPlacementSpreads(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	b.fillOwnHost(t)
	big := cluster.Capacity{VCPUs: 64, RAMMB: 64 << 10, DiskGB: 2000}
	for _, h := range []string{"host-a", "host-b", "host-c"} {
		b.addHost(t, h, big, cluster.DriverSim)
	}
	_, ids, err := b.create(30, linuxImage, "s6.small.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.hostsOf(t, ids); got["host-a"] != 10 || got["host-b"] != 10 || got["host-c"] != 10 {
		t.Fatalf("30 servers over 3 equal hosts landed %v, want 10 on each", got)
	}
	// The reservations are recorded: a host with more room left wins.
	b.addHost(t, "host-d", big, cluster.DriverSim)
	_, ids, err = b.create(5, linuxImage, "s6.small.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.hostsOf(t, ids); got["host-d"] != 5 {
		t.Fatalf("5 servers with an empty host beside 3 busy ones landed %v, want all on host-d", got)
	}
	h, err := b.st.HostGet(context.Background(), "host-a")
	if err != nil {
		t.Fatal(err)
	}
	if h.AllocVCPUs != 10 || h.AllocRAMMB != 10*1024 || h.AllocDiskGB != 10*10 || h.Servers != 10 {
		t.Fatalf("host-a holds %d vCPUs, %d MB, %d GB in %d servers; want 10, 10240, 100 in 10", h.AllocVCPUs, h.AllocRAMMB,
			h.AllocDiskGB, h.Servers)
	}
}

func TestPlacementNoRoom(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	b.fillOwnHost(t)
	// Room for 3 s6.small.1 servers (1 vCPU, 1 GB, 10 GB disk) by vCPUs.
	b.addHost(t, "host-small", cluster.Capacity{VCPUs: 3, RAMMB: 64 << 10, DiskGB: 1000}, cluster.DriverSim)
	_, _, err := b.create(4, linuxImage, "s6.small.1")
	if code(err) != ecs.CodeNoCapacity || !strings.Contains(err.Error(), "Insufficient resources") {
		t.Fatalf("create of 4 servers on room for 3: %v, want %v (insufficient resources)", err, ecs.CodeNoCapacity)
	}
	list, n, err := b.svc.ListServers(context.Background(), b.caller, store.ServerListParams{})
	if err != nil || n != 0 {
		t.Fatalf("servers after a refused create: %d (%v), want none", n, list)
	}
	h, _ := b.st.HostGet(context.Background(), "host-small")
	if h.AllocVCPUs != 0 {
		t.Fatalf("host holds %d vCPUs after a refused create, want 0", h.AllocVCPUs)
	}
	if _, _, err := b.create(3, linuxImage, "s6.small.1"); err != nil {
		t.Fatalf("create of 3 servers on room for 3: %v", err)
	}
	_, _, err = b.create(1, linuxImage, "s6.small.1")
	if code(err) != ecs.CodeNoCapacity {
		t.Fatalf("create on a full cloud: %v, want %v", err, ecs.CodeNoCapacity)
	}
	// Disk counts: a flavor carries no disk, the system volume does.
	b.addHost(t, "host-disk", cluster.Capacity{VCPUs: 64, RAMMB: 64 << 10, DiskGB: 15}, cluster.DriverSim)
	if _, _, err := b.create(2, linuxImage, "s6.small.1"); code(err) != ecs.CodeNoCapacity {
		t.Fatalf("2 servers of 10 GB disks on 15 GB: %v, want %v", err, ecs.CodeNoCapacity)
	}
}

func TestPlacementReleasesOnDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, false)
	h, _ := b.st.HostGet(ctx, testNode)
	if h.AllocVCPUs != 1 || h.AllocRAMMB != 1024 || h.AllocDiskGB != 10 || h.Servers != 1 {
		t.Fatalf("own host after a create: %+v", h)
	}
	job, err := b.svc.DeleteServers(ctx, b.caller, []string{srv.ID})
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("delete: %+v", j)
	}
	h, _ = b.st.HostGet(ctx, testNode)
	if h.AllocVCPUs != 0 || h.AllocRAMMB != 0 || h.AllocDiskGB != 0 || h.Servers != 0 {
		t.Fatalf("own host after the delete: %+v, want nothing allocated", h)
	}
}

func TestDownHostRefusesOperations(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, true)
	if srv.Host != testNode {
		t.Fatalf("server host = %q, want %q", srv.Host, testNode)
	}
	b.fillOwnHost(t)
	b.addHost(t, "host-far", cluster.Capacity{VCPUs: 8, RAMMB: 8192, DiskGB: 100}, cluster.DriverSim)
	_, far, err := b.create(1, linuxImage, "s6.small.1")
	if err != nil {
		t.Fatal(err)
	}
	// host-far stops beating.
	if err := b.st.HostHeartbeat(ctx, "host-far", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	pass := "Other-Pass123"
	ops := map[string]func() error{
		"stop":   func() error { _, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStop, far, false); return err },
		"delete": func() error { _, err := b.svc.DeleteServers(ctx, b.caller, far); return err },
		"batch with a server of an up host": func() error {
			_, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStart, []string{srv.ID, far[0]}, false)
			return err
		},
		"reinstall": func() error {
			_, err := b.svc.Reinstall(ctx, b.caller, far[0], cloud.ReinstallInput{AdminPass: &pass})
			return err
		},
	}
	for name, op := range ops {
		err := op()
		if code(err) != ecs.CodeHostDown || !strings.Contains(err.Error(), "host-far is down") {
			t.Errorf("%s on a down host's server: %v, want %v saying the host is down", name, err, ecs.CodeHostDown)
		}
	}
	// Nothing was queued, and the server of the up host is untouched.
	got, err := b.svc.GetServer(ctx, b.caller, srv.ID)
	if err != nil || got.TaskState != "" || got.TaskJobID != "" {
		t.Fatalf("up host's server after a refused batch: %+v, %v", got, err)
	}
	// A down host takes no new server.
	if _, _, err := b.create(1, linuxImage, "s6.small.1"); code(err) != ecs.CodeNoCapacity || !strings.Contains(err.Error(), "1 down") {
		t.Fatalf("create with only a down host free: %v, want %v naming a down host", err, ecs.CodeNoCapacity)
	}
	// Servers of the node's own, up host still work.
	job, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStart, []string{srv.ID}, false)
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("start on the up host: %+v", j)
	}
}

func TestPlacementImagePerHost(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	big := cluster.Capacity{VCPUs: 64, RAMMB: 64 << 10, DiskGB: 2000}
	b.addHost(t, "host-q1", big, "qemu")
	b.addHost(t, "host-q2", big, "qemu")
	img := ecs.Image{ID: "0f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e99", Name: "imported", OSType: "Linux", Platform: "Debian",
		Status: "active", DiskFormat: "qcow2", MinDiskGB: 1, File: "/q2/images/x.qcow2", Created: time.Now().UTC()}
	if err := b.st.ImageUpsert(ctx, img); err != nil {
		t.Fatal(err)
	}
	// Only host-q2 imported it; the test node's own host (sim) did not.
	if err := b.st.ImageHostAdd(ctx, store.ImageHost{ImageID: img.ID, Host: "host-q2", File: img.File}); err != nil {
		t.Fatal(err)
	}
	_, ids, err := b.create(6, img.ID, "s6.small.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.hostsOf(t, ids); got["host-q2"] != 6 {
		t.Fatalf("servers of an image only host-q2 has landed %v, want all on host-q2", got)
	}
	// The simulator's file-less images go to simulator hosts only.
	_, ids, err = b.create(6, linuxImage, "s6.small.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.hostsOf(t, ids); got[testNode] != 6 {
		t.Fatalf("servers of a file-less image landed %v, want all on the sim host %s", got, testNode)
	}
	// An image no up host has cannot be placed.
	if err := b.st.HostHeartbeat(ctx, "host-q2", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, _, err = b.create(1, img.ID, "s6.small.1")
	if code(err) != ecs.CodeNoCapacity || !strings.Contains(err.Error(), "without the image") {
		t.Fatalf("create of an image only a down host has: %v, want %v", err, ecs.CodeNoCapacity)
	}
}

// A database made before hosts (servers, volumes and image files of host
// "") is adopted by the one node of a SQLite store, with its capacity.
func TestAdoptUnplaced(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, true)
	img := ecs.Image{ID: "0f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e98", Name: "old import", OSType: "Linux", Status: "active",
		DiskFormat: "qcow2", File: "/data/qemu/images/old.qcow2", Created: time.Now().UTC()}
	if err := b.st.ImageUpsert(ctx, img); err != nil {
		t.Fatal(err)
	}
	// Make it look like a server of the previous release.
	err := b.st.Write(ctx, func(tx store.Tx) error {
		s, err := tx.ServerGetByID(ctx, srv.ID)
		if err != nil {
			return err
		}
		s.Host = ""
		if err := tx.ServerUpdate(ctx, &s); err != nil {
			return err
		}
		v, err := tx.VolumeGet(ctx, s.SystemVolumeID)
		if err != nil {
			return err
		}
		v.Host = ""
		if err := tx.VolumeUpsert(ctx, &v); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Forget its allocation as the previous release had none.
	if err := b.st.Write(ctx, func(tx store.Tx) error {
		s, _ := tx.ServerGetByID(ctx, srv.ID)
		if err := tx.ServerDelete(ctx, srv.ID); err != nil {
			return err
		}
		return tx.ServerInsert(ctx, &s)
	}); err != nil {
		t.Fatal(err)
	}
	if h, _ := b.st.HostGet(ctx, testNode); h.AllocVCPUs != 0 {
		t.Fatalf("setup: host holds %d vCPUs", h.AllocVCPUs)
	}
	n, err := b.svc.AdoptUnplaced(ctx)
	if err != nil || n != 1 {
		t.Fatalf("AdoptUnplaced = %d, %v; want 1", n, err)
	}
	got, _ := b.svc.GetServer(ctx, b.caller, srv.ID)
	v, _ := b.st.VolumeGet(ctx, srv.SystemVolumeID)
	if got.Host != testNode || v.Host != testNode {
		t.Fatalf("after adoption: server host %q, volume host %q; want %q", got.Host, v.Host, testNode)
	}
	if h, _ := b.st.HostGet(ctx, testNode); h.AllocVCPUs != 1 || h.AllocDiskGB != 10 || h.Servers != 1 {
		t.Fatalf("host after adoption: %+v, want the server's 1 vCPU and 10 GB", h)
	}
	ih, err := b.st.ImageHostList(ctx, img.ID)
	if err != nil || len(ih) != 1 || ih[0].Host != testNode || ih[0].File != img.File {
		t.Fatalf("image hosts after adoption: %+v, %v", ih, err)
	}
	if n, err := b.svc.AdoptUnplaced(ctx); err != nil || n != 0 {
		t.Fatalf("second AdoptUnplaced = %d, %v; want 0", n, err)
	}
	// The adopted server works as before.
	job, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStart, []string{srv.ID}, false)
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("start of an adopted server: %+v", j)
	}
}

// 200 concurrent creates against room for 50 servers: 50 are placed, the
// others refused with Ecs.0319, and the host is never overcommitted.
func TestConcurrentCreatesNeverOvercommit(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	b.fillOwnHost(t)
	b.addHost(t, "host-small", cluster.Capacity{VCPUs: 50, RAMMB: 1 << 20, DiskGB: 1 << 20}, cluster.DriverSim)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, full int
		other    []error
	)
	for range 200 {
		wg.Go(func() {
			_, _, err := b.create(1, linuxImage, "s6.small.1")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case code(err) == ecs.CodeNoCapacity:
				full++
			default:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	if len(other) > 0 || ok != 50 || full != 150 {
		t.Fatalf("200 concurrent creates on room for 50: %d placed, %d refused for room, other errors %v", ok, full, other)
	}
	h, err := b.st.HostGet(context.Background(), "host-small")
	if err != nil || h.AllocVCPUs != 50 || h.Servers != 50 {
		t.Fatalf("host after the creates: %+v, %v; want 50 vCPUs in 50 servers", h, err)
	}
}
