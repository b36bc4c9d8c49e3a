package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// smallHost is a host that offers 8 vCPUs (4 x 2.0), 12 GB of RAM (8192 MB
// x 1.5) and 100 GB of disk (100 x 1.0).
func smallHost(name string) store.Host {
	return store.Host{Name: name, VCPUs: 4, RAMMB: 8192, DiskGB: 100, CPURatio: 2, RAMRatio: 1.5, DiskRatio: 1,
		Advertise: "http://10.0.0.1:8080", Driver: "sim", Heartbeat: t0, Created: t0}
}

func (b *bundle) upsertHost(t *testing.T, h store.Host) {
	t.Helper()
	if err := b.s.HostUpsert(b.ctx, h); err != nil {
		t.Fatalf("HostUpsert(%s): %v", h.Name, err)
	}
}

// ageless returns hosts without their ages, which depend on when they
// were read.
func ageless(hosts ...store.Host) []store.Host {
	out := make([]store.Host, len(hosts))
	for i, h := range hosts {
		h.Age = 0
		out[i] = h
	}
	return out
}

func (b *bundle) getHost(t *testing.T, name string) store.Host {
	t.Helper()
	h, err := b.s.HostGet(b.ctx, name)
	if err != nil {
		t.Fatalf("HostGet(%s): %v", name, err)
	}
	return h
}

// placeServer inserts a server on host and reserves need for it in one
// Write, as a create does.
func (b *bundle) placeServer(id, host string, vcpus int, ramMB, diskGB int64) error {
	return b.writeErr(func(tx store.Tx) error {
		srv := plainServer(id, projA, id, 0)
		srv.Host = host
		if err := tx.ServerInsert(b.ctx, &srv); err != nil {
			return err
		}
		return tx.HostAllocate(b.ctx, store.Allocation{ServerID: id, Host: host, VCPUs: vcpus, RAMMB: ramMB, DiskGB: diskGB})
	})
}

func wantAlloc(t *testing.T, what string, h store.Host, vcpus int, ramMB, diskGB int64, servers int) {
	t.Helper()
	if h.AllocVCPUs != vcpus || h.AllocRAMMB != ramMB || h.AllocDiskGB != diskGB || h.Servers != servers {
		t.Fatalf("%s: host %s holds %d vCPUs, %d MB, %d GB in %d servers; want %d, %d, %d in %d", what, h.Name,
			h.AllocVCPUs, h.AllocRAMMB, h.AllocDiskGB, h.Servers, vcpus, ramMB, diskGB, servers)
	}
}

func testHost(t *testing.T, open opener) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		h := smallHost("host-b")
		b.upsertHost(t, h)
		a := smallHost("host-a")
		a.VCPUs, a.RAMMB, a.DiskGB, a.CPURatio, a.RAMRatio, a.DiskRatio = 1024, 4<<20, 100<<10, 16, 1.5, 1.25
		b.upsertHost(t, a)
		wantEqual(t, "HostGet", ageless(b.getHost(t, "host-b"))[0], h)
		list, err := b.s.HostList(b.ctx)
		wantNoErr(t, "HostList", err)
		wantEqual(t, "HostList (by name)", ageless(list...), []store.Host{a, h})
		_, err = b.s.HostGet(b.ctx, "host-missing")
		wantErr(t, "HostGet of a missing host", err, ecs.ErrNotFound)
	})

	t.Run("UpsertKeepsAllocations", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.upsertHost(t, smallHost("host-a"))
		wantNoErr(t, "place", b.placeServer("srv-1", "host-a", 2, 1024, 10))
		again := smallHost("host-a")
		again.VCPUs, again.Advertise, again.Heartbeat, again.Created = 8, "http://10.0.0.9:8080", t0.Add(time.Minute), t0.Add(time.Hour)
		b.upsertHost(t, again)
		got := b.getHost(t, "host-a")
		wantAlloc(t, "after a second HostUpsert", got, 2, 1024, 10, 1)
		if got.VCPUs != 8 || got.Advertise != again.Advertise || !got.Heartbeat.Equal(again.Heartbeat) || !got.Created.Equal(t0) {
			t.Fatalf("host after a second HostUpsert = %+v, want the new capacity, URL and heartbeat and the first created", got)
		}
		b.write(t, func(tx store.Tx) error {
			list, err := tx.HostList(b.ctx)
			wantNoErr(t, "Tx.HostList", err)
			uncounted := ageless(got)[0]
			uncounted.Servers = 0
			wantEqual(t, "Tx.HostList (no server counts)", ageless(list...), []store.Host{uncounted})
			return nil
		})
	})

	t.Run("Heartbeat", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.upsertHost(t, smallHost("host-a"))
		wantNoErr(t, "HostHeartbeat", b.s.HostHeartbeat(b.ctx, "host-a", t0.Add(42*time.Second)))
		if got := b.getHost(t, "host-a").Heartbeat; !got.Equal(t0.Add(42 * time.Second)) {
			t.Fatalf("heartbeat = %v, want %v", got, t0.Add(42*time.Second))
		}
		wantErr(t, "HostHeartbeat of a missing host", b.s.HostHeartbeat(b.ctx, "host-missing", t0), ecs.ErrNotFound)
	})
}

func testHostAllocate(t *testing.T, open opener) {
	t.Run("Limits", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name          string
			vcpus         int
			ram, disk     int64
			fits, doesNot int // how many fit one after another
		}{
			{"vcpus (4 x 2.0)", 1, 1, 1, 8, 1},
			{"ram (8192 x 1.5)", 0, 4096, 0, 3, 1},
			{"disk (100 x 1.0)", 0, 0, 40, 2, 1},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, open)
				b.upsertHost(t, smallHost("host-a"))
				for i := range c.fits {
					wantNoErr(t, fmt.Sprintf("reservation %d", i+1), b.placeServer(fmt.Sprintf("srv-%d", i), "host-a", c.vcpus, c.ram, c.disk))
				}
				err := b.placeServer("srv-over", "host-a", c.vcpus, c.ram, c.disk)
				wantErr(t, "a reservation past the capacity", err, store.ErrNoCapacity)
				_, err = b.s.ServerGet(b.ctx, projA, "srv-over")
				wantErr(t, "the server of a refused reservation", err, ecs.ErrNotFound)
				wantAlloc(t, "full host", b.getHost(t, "host-a"), c.vcpus*c.fits, c.ram*int64(c.fits), c.disk*int64(c.fits), c.fits)
			})
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.upsertHost(t, smallHost("host-a"))
		const n = 200
		ok, full := placeConcurrently(t, n, func(i int) error {
			return b.placeServer(fmt.Sprintf("srv-%03d", i), "host-a", 1, 512, 1)
		})
		if ok != 8 || full != n-8 {
			t.Fatalf("%d concurrent reservations of 1 vCPU on 8: %d made, %d refused; want 8 and %d", n, ok, full, n-8)
		}
		wantAlloc(t, "after concurrent reservations", b.getHost(t, "host-a"), 8, 8*512, 8, 8)
	})

	// A create of several servers reserves on several hosts in the order
	// placement picks them; creates taking the same hosts in different
	// orders must queue, not deadlock (which PostgreSQL answers by
	// aborting one of them).
	t.Run("CrossedOrders", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		hosts := []string{"host-a", "host-b", "host-c"}
		for _, name := range hosts {
			h := smallHost(name)
			h.VCPUs = 1000
			b.upsertHost(t, h)
		}
		orders := [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {2, 0, 1}, {0, 2, 1}, {1, 2, 0}}
		const n = 60
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for i := range n {
			wg.Go(func() {
				err := b.writeErr(func(tx store.Tx) error {
					for k, h := range orders[i%len(orders)] {
						id := fmt.Sprintf("srv-%02d-%d", i, k)
						srv := plainServer(id, projA, id, 0)
						srv.Host = hosts[h]
						if err := tx.ServerInsert(b.ctx, &srv); err != nil {
							return err
						}
						if err := tx.HostAllocate(b.ctx, store.Allocation{ServerID: id, Host: hosts[h], VCPUs: 1, RAMMB: 1, DiskGB: 1}); err != nil {
							return err
						}
						time.Sleep(time.Millisecond) // let the others take their first host meanwhile
					}
					return nil
				})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d of %d creates reserving on the same hosts in different orders failed, first: %v", len(errs), n, errs[0])
		}
		for _, name := range hosts {
			wantAlloc(t, "after crossed reservations", b.getHost(t, name), n, n, n, n)
		}
	})

	t.Run("ReleaseOnDelete", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.upsertHost(t, smallHost("host-a"))
		b.upsertHost(t, smallHost("host-b"))
		wantNoErr(t, "place srv-1", b.placeServer("srv-1", "host-a", 5, 2048, 30))
		wantNoErr(t, "place srv-2", b.placeServer("srv-2", "host-a", 3, 1024, 20))
		wantNoErr(t, "place srv-3", b.placeServer("srv-3", "host-b", 1, 512, 5))
		wantErr(t, "place on a full host", b.placeServer("srv-4", "host-a", 1, 512, 5), store.ErrNoCapacity)
		b.write(t, func(tx store.Tx) error { return tx.ServerDelete(b.ctx, "srv-1") })
		wantAlloc(t, "host-a after a delete", b.getHost(t, "host-a"), 3, 1024, 20, 1)
		wantAlloc(t, "host-b after a delete on host-a", b.getHost(t, "host-b"), 1, 512, 5, 1)
		b.write(t, func(tx store.Tx) error { return tx.ServerDelete(b.ctx, "srv-1") })
		wantAlloc(t, "host-a after a second delete", b.getHost(t, "host-a"), 3, 1024, 20, 1)
		wantNoErr(t, "place after the delete", b.placeServer("srv-4", "host-a", 5, 2048, 30))
	})

	t.Run("Refusals", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.upsertHost(t, smallHost("host-a"))
		wantErr(t, "HostAllocate on a missing host", b.placeServer("srv-1", "host-missing", 1, 1, 1), ecs.ErrNotFound)
		wantNoErr(t, "place", b.placeServer("srv-1", "host-a", 1, 1, 1))
		err := b.writeErr(func(tx store.Tx) error {
			return tx.HostAllocate(b.ctx, store.Allocation{ServerID: "srv-1", Host: "host-a", VCPUs: 1})
		})
		wantErr(t, "a second allocation of one server", err, ecs.ErrConflict)
		wantAlloc(t, "after refusals", b.getHost(t, "host-a"), 1, 1, 1, 1)
	})

	t.Run("Force", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.upsertHost(t, smallHost("host-a"))
		b.write(t, func(tx store.Tx) error {
			return tx.HostAllocate(b.ctx, store.Allocation{ServerID: "srv-old", Host: "host-a", VCPUs: 50, RAMMB: 1 << 20,
				DiskGB: 1000, Force: true})
		})
		wantAlloc(t, "after a forced allocation", b.getHost(t, "host-a"), 50, 1<<20, 1000, 0)
		b.write(t, func(tx store.Tx) error { return tx.ServerDelete(b.ctx, "srv-old") })
		wantAlloc(t, "after the forced server's delete", b.getHost(t, "host-a"), 0, 0, 0, 0)
	})
}

// testVolumeAllocate: data volumes hold their disk on their host apart
// from their server, within the same capacity check, and give it back when
// deleted or freed.
func testVolumeAllocate(t *testing.T, open opener) {
	b := setup(t, open)
	b.upsertHost(t, smallHost("host-a")) // 100 GB of disk
	withVolumes := func(id string, vols ...store.VolumeAllocation) error {
		return b.writeErr(func(tx store.Tx) error {
			a := store.Allocation{ServerID: id, Host: "host-a", Volumes: vols}
			if id != "" {
				srv := plainServer(id, projA, id, 0)
				srv.Host = "host-a"
				if err := tx.ServerInsert(b.ctx, &srv); err != nil {
					return err
				}
				a.VCPUs, a.RAMMB, a.DiskGB = 1, 512, 10
			}
			return tx.HostAllocate(b.ctx, a)
		})
	}
	vol := func(id string, gb int64) store.VolumeAllocation {
		return store.VolumeAllocation{VolumeID: id, DiskGB: gb}
	}

	wantNoErr(t, "a server with a data volume", withVolumes("srv-1", vol("vol-1", 30)))
	wantAlloc(t, "after a server with a 30 GB data volume", b.getHost(t, "host-a"), 1, 512, 40, 1)
	wantNoErr(t, "a volume alone", withVolumes("", vol("vol-2", 50)))
	wantAlloc(t, "after a 50 GB volume", b.getHost(t, "host-a"), 1, 512, 90, 1)
	wantErr(t, "a volume past the disk", withVolumes("", vol("vol-3", 11)), store.ErrNoCapacity)
	wantErr(t, "a server whose volumes do not fit", withVolumes("srv-2", vol("vol-3", 1)), store.ErrNoCapacity)
	wantAlloc(t, "after refusals", b.getHost(t, "host-a"), 1, 512, 90, 1)
	wantErr(t, "a volume that holds disk already", withVolumes("", vol("vol-2", 1)), ecs.ErrConflict)
	wantAlloc(t, "after a second allocation of a volume", b.getHost(t, "host-a"), 1, 512, 90, 1)

	// The server's delete frees its part only: its data volume stays.
	b.write(t, func(tx store.Tx) error { return tx.ServerDelete(b.ctx, "srv-1") })
	wantAlloc(t, "after the server's delete", b.getHost(t, "host-a"), 0, 0, 80, 0)
	b.write(t, func(tx store.Tx) error {
		v := ecs.Volume{ID: "vol-1", ProjectID: projA, SizeGB: 30, Status: ecs.VolumeAvailable, Host: "host-a", Created: t0}
		if err := tx.VolumeUpsert(b.ctx, &v); err != nil {
			return err
		}
		return tx.VolumeDelete(b.ctx, "vol-1")
	})
	wantAlloc(t, "after the data volume's delete", b.getHost(t, "host-a"), 0, 0, 50, 0)
	b.write(t, func(tx store.Tx) error { return tx.AllocationFree(b.ctx, "vol-2") })
	wantAlloc(t, "after AllocationFree", b.getHost(t, "host-a"), 0, 0, 0, 0)
	b.write(t, func(tx store.Tx) error { return tx.AllocationFree(b.ctx, "vol-2") })
	b.write(t, func(tx store.Tx) error { return tx.VolumeDelete(b.ctx, "vol-missing") })
	wantAlloc(t, "after freeing what is not held", b.getHost(t, "host-a"), 0, 0, 0, 0)
	wantNoErr(t, "a volume of the whole disk", withVolumes("", vol("vol-2", 100)))
	wantAlloc(t, "after a 100 GB volume", b.getHost(t, "host-a"), 0, 0, 100, 0)
}

func testJobClaimHost(t *testing.T, open opener) {
	b := setup(t, open)
	onA, onB, anywhere := topJob("job-a"), topJob("job-b"), topJob("job-any")
	onA.Host, onB.Host = "host-a", "host-b"
	b.insertJobs(t, onA, onB, anywhere)
	got, err := b.s.JobClaim(b.ctx, store.JobClaimParams{Owner: "host-a", Host: "host-a", Now: t0, Lease: time.Minute, Limit: 10})
	wantNoErr(t, "JobClaim by host-a", err)
	wantClaimed(t, "JobClaim by host-a", got, 1, onA, anywhere)
	got, err = b.s.JobClaim(b.ctx, store.JobClaimParams{Owner: "host-c", Host: "host-c", Now: t0.Add(time.Hour), Lease: time.Hour, Limit: 10})
	wantNoErr(t, "JobClaim by host-c", err)
	wantClaimed(t, "JobClaim by host-c after host-a's leases expired", got, 2, anywhere)
	got, err = b.s.JobClaim(b.ctx, store.JobClaimParams{Owner: "host-b", Host: "host-b", Now: t0, Lease: time.Minute, Limit: 10})
	wantNoErr(t, "JobClaim by host-b", err)
	wantClaimed(t, "JobClaim by host-b", got, 1, onB)
	j := b.getJob(t, projA, "job-a")
	if j.Host != "host-a" {
		t.Fatalf("job host = %q, want host-a", j.Host)
	}
}

func testImageHost(t *testing.T, open opener) {
	b := setup(t, open)
	a := store.ImageHost{ImageID: "img-1", Host: "host-a", File: "/a/images/img-1.qcow2", Kernel: "/a/k", Initrd: "/a/i"}
	c := store.ImageHost{ImageID: "img-1", Host: "host-c", File: "/c/images/img-1.qcow2"}
	other := store.ImageHost{ImageID: "img-2", Host: "host-a", File: "/a/images/img-2.qcow2"}
	for _, h := range []store.ImageHost{c, a, other} {
		wantNoErr(t, "ImageHostAdd", b.s.ImageHostAdd(b.ctx, h))
	}
	list, err := b.s.ImageHostList(b.ctx, "img-1")
	wantNoErr(t, "ImageHostList", err)
	wantEqual(t, "ImageHostList (by host)", list, []store.ImageHost{a, c})
	a.File = "/a/images/again.qcow2"
	wantNoErr(t, "ImageHostAdd again", b.s.ImageHostAdd(b.ctx, a))
	b.write(t, func(tx store.Tx) error {
		list, err := tx.ImageHostList(b.ctx, "img-1")
		wantNoErr(t, "Tx.ImageHostList", err)
		wantEqual(t, "Tx.ImageHostList after a second import on host-a", list, []store.ImageHost{a, c})
		return nil
	})
	list, err = b.s.ImageHostList(b.ctx, "img-missing")
	wantNoErr(t, "ImageHostList of an unknown image", err)
	if len(list) != 0 {
		t.Fatalf("ImageHostList of an unknown image = %v", list)
	}
}

// placeConcurrently runs place(0..n-1) at once and counts the reservations
// made and those refused for capacity; any other error fails the test.
func placeConcurrently(t *testing.T, n int, place func(i int) error) (ok, full int) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		wg.Go(func() {
			err := place(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrNoCapacity):
				full++
			default:
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d reservations failed otherwise than for capacity, first: %v", len(errs), errs[0])
	}
	return ok, full
}
