package cloud_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// wantDisk checks the disk the test node's host holds.
func (b *bundle) wantDisk(t *testing.T, what string, gb int64) {
	t.Helper()
	h, err := b.st.HostGet(context.Background(), testNode)
	if err != nil {
		t.Fatal(err)
	}
	if h.AllocDiskGB != gb {
		t.Fatalf("%s: the host holds %d GB of disk, want %d", what, h.AllocDiskGB, gb)
	}
}

// createWithData creates one s6.small.1 server (10 GB system disk) with
// data disks of sizes.
func (b *bundle) createWithData(sizes ...int) (string, []string, error) {
	in := cloud.CreateInput{Name: "dv", ImageRef: linuxImage, FlavorRef: "s6.small.1", VPCID: "vpc", SubnetIDs: []string{"sn"},
		VolumeType: "SSD"}
	for _, gb := range sizes {
		in.DataVolumes = append(in.DataVolumes, cloud.DataVolumeInput{VolumeType: "SSD", SizeGB: gb})
	}
	return b.svc.CreateServers(context.Background(), b.caller, in)
}

// TestDataVolumesHoldHostDisk: data disks count in their host's allocated
// disk, from a create's data_volumes or a volume's first attach, until
// they are deleted (a deleted server's data volumes keep theirs); a
// create or an attach that does not fit is refused.
func TestDataVolumesHoldHostDisk(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	b.addHost(t, testNode, cluster.Capacity{VCPUs: 64, RAMMB: 64 << 10, DiskGB: 60}, cluster.DriverSim)

	job, ids, err := b.createWithData(30)
	b.okJob(t, "create with a 30 GB data disk", job, err)
	s1 := ids[0]
	b.wantDisk(t, "after a server of 10 + 30 GB", 40)

	// 10 + 20 GB on the 20 GB left: the system disk fits, not the data.
	_, _, err = b.createWithData(20)
	if code(err) != ecs.CodeNoCapacity || !strings.Contains(err.Error(), "20 GB of data disks") {
		t.Fatalf("create of 10 + 20 GB on 20 GB free: %v, want %s naming the data disks", err, ecs.CodeNoCapacity)
	}
	b.wantDisk(t, "after a refused create", 40)

	// A volume alone holds nothing until its first attach gives it a host.
	job, vids, err := b.svc.CreateVolumes(ctx, b.caller, cloud.VolumeInput{SizeGB: 15, Count: 2})
	b.okJob(t, "create 2 volumes of 15 GB", job, err)
	b.wantDisk(t, "after volumes of no host", 40)
	job, err = b.svc.AttachVolume(ctx, b.caller, s1, vids[0], "")
	b.okJob(t, "attach 15 GB", job, err)
	b.wantDisk(t, "after attaching 15 GB", 55)

	_, err = b.svc.AttachVolume(ctx, b.caller, s1, vids[1], "")
	if code(err) != ecs.CodeVolumeNoRoom || !strings.Contains(err.Error(), "15 GB") {
		t.Fatalf("attach of 15 GB on 5 GB free: %v, want %s", err, ecs.CodeVolumeNoRoom)
	}
	if v := b.volume(t, vids[1]); v.Status != ecs.VolumeAvailable || v.Host != "" || v.ServerID != "" {
		t.Fatalf("volume after a refused attach = %+v, want available, no host", v)
	}
	b.wantDisk(t, "after a refused attach", 55)

	// The server's delete gives back its system disk; its data volumes,
	// released, stay on the host and keep theirs.
	job, err = b.svc.DeleteServers(ctx, b.caller, []string{s1})
	b.okJob(t, "delete the server", job, err)
	b.wantDisk(t, "after the server's delete", 45)
	job, err = b.svc.DeleteVolume(ctx, b.caller, vids[0])
	b.okJob(t, "delete a 15 GB volume", job, err)
	b.wantDisk(t, "after the volume's delete", 30)

	srv := b.server(t, linuxImage, false)
	b.wantDisk(t, "after a plain server", 40)
	job, err = b.svc.AttachVolume(ctx, b.caller, srv.ID, vids[1], "")
	b.okJob(t, "attach 15 GB with room", job, err)
	b.wantDisk(t, "after the attach", 55)
	// A detach with delete_flag gives it back.
	job, err = b.svc.DetachVolume(ctx, b.caller, srv.ID, vids[1], true)
	b.okJob(t, "detach and delete", job, err)
	b.wantDisk(t, "after a detach that deletes", 40)
	// A reinstall swaps the system disk: the host holds one system disk.
	job, err = b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass), Mode: str(cloud.ModeWithStopServer)})
	b.okJob(t, "reinstall", job, err)
	b.wantDisk(t, "after a reinstall", 40)
}

// diskFailer fails CreateDisk while fail is set.
type diskFailer struct {
	compute.Driver
	fail atomic.Bool
}

func (d *diskFailer) CreateDisk(ctx context.Context, spec compute.DiskSpec) error {
	if d.fail.Load() {
		return errors.New("injected: no disk")
	}
	return d.Driver.CreateDisk(ctx, spec)
}

// TestFailedFirstAttachGivesBackDisk: a first attach that fails before its
// disk is made leaves the volume without a host, holding nothing.
func TestFailedFirstAttachGivesBackDisk(t *testing.T) {
	t.Parallel()
	var failer *diskFailer
	b := setupWith(t, sim.Config{}, func(c *cloud.Config) {
		failer = &diskFailer{Driver: c.Driver}
		c.Driver = failer
	})
	ctx := context.Background()
	srv := b.server(t, linuxImage, false)
	b.wantDisk(t, "after a server", 10)
	job, vids, err := b.svc.CreateVolumes(ctx, b.caller, cloud.VolumeInput{SizeGB: 25})
	b.okJob(t, "create a volume", job, err)
	failer.fail.Store(true)
	job, err = b.svc.AttachVolume(ctx, b.caller, srv.ID, vids[0], "")
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobFail {
		t.Fatalf("attach with no disk made: %+v, want FAIL", j)
	}
	if v := b.volume(t, vids[0]); v.Host != "" || v.Status != ecs.VolumeAvailable {
		t.Fatalf("volume after a failed first attach = %+v", v)
	}
	b.wantDisk(t, "after a failed first attach", 10)
	failer.fail.Store(false)
	job, err = b.svc.AttachVolume(ctx, b.caller, srv.ID, vids[0], "")
	b.okJob(t, "attach again", job, err)
	b.wantDisk(t, "after the attach", 35)
}

// TestAdoptKeepsVolumesOfNoHost: adopting a data dir's rows of no host
// (SQLite, at start) leaves a volume created alone without a host, so its
// first attach still makes its disk.
func TestAdoptKeepsVolumesOfNoHost(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, false)
	job, vids, err := b.svc.CreateVolumes(ctx, b.caller, cloud.VolumeInput{SizeGB: 12})
	b.okJob(t, "create a volume", job, err)
	if _, err := b.svc.AdoptUnplaced(ctx); err != nil {
		t.Fatal(err)
	}
	if v := b.volume(t, vids[0]); v.Host != "" {
		t.Fatalf("a volume created alone got host %q by adoption", v.Host)
	}
	b.wantDisk(t, "after adoption", 10)
	job, err = b.svc.AttachVolume(ctx, b.caller, srv.ID, vids[0], "")
	b.okJob(t, "first attach after adoption", job, err)
	if _, ok := b.drv.Disk(vids[0]); !ok {
		t.Fatal("the first attach made no disk")
	}
	b.wantDisk(t, "after the attach", 22)
}
