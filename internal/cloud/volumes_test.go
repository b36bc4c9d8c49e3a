package cloud_test

import (
	"context"
	"slices"
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// okJob waits for a job and fails the test unless it succeeded.
func (b *bundle) okJob(t *testing.T, what string, job string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("%s: job %+v", what, j)
	}
}

func (b *bundle) volume(t *testing.T, id string) ecs.Volume {
	t.Helper()
	v, err := b.svc.GetVolume(context.Background(), b.caller, id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDataVolumeLifecycle: a volume created alone gets its host and disk at
// its first attach (hot-plug into a running server), survives a reinstall
// untouched, is refused deletion while in use, and is deleted once
// detached.
func TestDataVolumeLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, false)

	job, ids, err := b.svc.CreateVolumes(ctx, b.caller, cloud.VolumeInput{Name: "data", SizeGB: 10})
	b.okJob(t, "create volume", job, err)
	vid := ids[0]
	if v := b.volume(t, vid); v.Status != ecs.VolumeAvailable || v.Host != "" || v.Name != "data" || v.SizeGB != 10 {
		t.Fatalf("new volume = %+v, want available, no host", v)
	}
	if _, ok := b.drv.Disk(vid); ok {
		t.Fatal("a volume created alone has a disk before its first attach")
	}

	job, err = b.svc.AttachVolume(ctx, b.caller, srv.ID, vid, "")
	b.okJob(t, "attach", job, err)
	if j := b.wait(t, job); cloud.JobVolumeID(&j) != vid || j.ServerID != srv.ID {
		t.Fatalf("attach job acts on volume %q of %s, want %s of %s", cloud.JobVolumeID(&j), j.ServerID, vid, srv.ID)
	}
	v := b.volume(t, vid)
	if v.Status != ecs.VolumeInUse || v.ServerID != srv.ID || v.Device != "/dev/vdb" || v.Host != testNode {
		t.Fatalf("attached volume = %+v", v)
	}
	if st, _ := b.drv.Server(srv.ID); !slices.Contains(st.DataDisks, vid) || st.Power != sim.PowerRunning {
		t.Fatalf("sim server after hot-plug = %+v", st)
	}
	if _, err := b.svc.DeleteVolume(ctx, b.caller, vid); code(err) != ecs.CodeVolumeBadState {
		t.Fatalf("delete of an in-use volume: %v, want %s", err, ecs.CodeVolumeBadState)
	}
	if _, err := b.svc.AttachVolume(ctx, b.caller, srv.ID, vid, ""); code(err) != ecs.CodeVolumeUnavailable {
		t.Fatalf("second attach: %v", err)
	}
	_, vols, err := b.svc.ServerVolumes(ctx, b.caller, srv.ID)
	if err != nil || len(vols) != 2 || vols[0].ID != srv.SystemVolumeID || vols[1].ID != vid {
		t.Fatalf("server volumes = %+v, %v", vols, err)
	}

	// A reinstall replaces the system disk only.
	job, err = b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass), Mode: str(cloud.ModeWithStopServer)})
	b.okJob(t, "reinstall", job, err)
	after, _ := b.svc.GetServer(ctx, b.caller, srv.ID)
	if after.SystemVolumeID == srv.SystemVolumeID {
		t.Fatal("the reinstall kept the old system disk")
	}
	if st, _ := b.drv.Server(srv.ID); !slices.Contains(st.DataDisks, vid) {
		t.Fatalf("the data disk is gone after the reinstall: %+v", st)
	}
	if v := b.volume(t, vid); v.ServerID != srv.ID || v.Status != ecs.VolumeInUse {
		t.Fatalf("volume after the reinstall = %+v", v)
	}

	// Hot-unplug, then delete.
	job, err = b.svc.DetachVolume(ctx, b.caller, srv.ID, vid, false)
	b.okJob(t, "detach", job, err)
	if j := b.wait(t, job); cloud.JobVolumeID(&j) != vid {
		t.Fatalf("detach job acts on volume %q, want %s", cloud.JobVolumeID(&j), vid)
	}
	if v := b.volume(t, vid); v.Status != ecs.VolumeAvailable || v.ServerID != "" || v.Host != testNode {
		t.Fatalf("detached volume = %+v", v)
	}
	if _, err := b.svc.DetachVolume(ctx, b.caller, srv.ID, vid, false); code(err) != ecs.CodeVolumeNotAttached {
		t.Fatalf("second detach: %v", err)
	}
	// The action log has the attach and the detach, with their jobs'
	// outcomes.
	acts, err := b.svc.ListActions(ctx, b.caller, srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range acts {
		if (a.Action == ecs.ActionAttachVolume || a.Action == ecs.ActionDetachVolume) && a.JobID != "" && a.Outcome == ecs.JobSuccess {
			seen[a.Action] = true
		}
	}
	if !seen[ecs.ActionAttachVolume] || !seen[ecs.ActionDetachVolume] {
		t.Fatalf("action log lacks a finished attach or detach: %+v", acts)
	}
	job, err = b.svc.DeleteVolume(ctx, b.caller, vid)
	b.okJob(t, "delete", job, err)
	if _, err := b.svc.GetVolume(ctx, b.caller, vid); code(err) != ecs.CodeVolumeNotFound {
		t.Fatalf("deleted volume: %v", err)
	}
	if _, ok := b.drv.Disk(vid); ok {
		t.Fatal("the deleted volume's disk is still there")
	}
}

// TestSystemDiskDetach: a stopped server's system disk detaches; the server
// then refuses start, reinstall and change of OS (Ecs.0105) until a volume
// is attached as /dev/vda. A running server's system disk does not detach.
func TestSystemDiskDetach(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	running := b.server(t, linuxImage, false)
	if _, err := b.svc.DetachVolume(ctx, b.caller, running.ID, running.SystemVolumeID, false); code(err) != ecs.CodeBadState {
		t.Fatalf("system disk detach of a running server: %v", err)
	}
	srv := b.server(t, linuxImage, true)
	sys := srv.SystemVolumeID
	job, err := b.svc.DetachVolume(ctx, b.caller, srv.ID, sys, false)
	b.okJob(t, "detach system disk", job, err)
	srv, _ = b.svc.GetServer(ctx, b.caller, srv.ID)
	if srv.SystemVolumeID != "" {
		t.Fatalf("system volume after detach = %q", srv.SystemVolumeID)
	}
	if _, err := b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass)}); code(err) != ecs.CodeNoSystemDisk {
		t.Fatalf("reinstall without a system disk: %v, want %s", err, ecs.CodeNoSystemDisk)
	}
	img := linuxImage
	if _, err := b.svc.ChangeOS(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: &img}); code(err) != ecs.CodeNoSystemDisk {
		t.Fatalf("change OS without a system disk: %v, want %s", err, ecs.CodeNoSystemDisk)
	}
	if _, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStart, []string{srv.ID}, false); code(err) != ecs.CodeNoSystemDisk {
		t.Fatalf("start without a system disk: %v, want %s", err, ecs.CodeNoSystemDisk)
	}
	// A data device does not heal it; /dev/vda does.
	job, err = b.svc.AttachVolume(ctx, b.caller, srv.ID, sys, "/dev/vda")
	b.okJob(t, "attach system disk", job, err)
	srv, _ = b.svc.GetServer(ctx, b.caller, srv.ID)
	if srv.SystemVolumeID != sys {
		t.Fatalf("system volume after re-attach = %q, want %q", srv.SystemVolumeID, sys)
	}
	job, err = b.svc.ServerAction(ctx, b.caller, cloud.ActionStart, []string{srv.ID}, false)
	b.okJob(t, "start", job, err)
	job, err = b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass), Mode: str(cloud.ModeWithStopServer)})
	b.okJob(t, "reinstall after healing", job, err)
}

// TestVolumeHostAndRefusals: a volume whose disk is on another host does
// not attach (Ecs.0121); bad devices and unknown volumes are refused; a
// deleted server leaves its data volumes available.
func TestVolumeHostAndRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, true)
	_, ids, err := b.svc.CreateVolumes(ctx, b.caller, cloud.VolumeInput{SizeGB: 1, Count: 2})
	if err != nil || len(ids) != 2 {
		t.Fatal(ids, err)
	}
	// Give the first volume another host, as an attach there would have.
	err = b.st.Write(ctx, func(tx store.Tx) error {
		v, err := tx.VolumeGet(ctx, ids[0])
		if err != nil {
			return err
		}
		v.Host = "elsewhere"
		return tx.VolumeUpsert(ctx, &v)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, volume, device string
		want                 ecs.Code
	}{
		{"other host", ids[0], "", ecs.CodeVolumeOtherHost},
		{"unknown volume", "no-such-volume", "", ecs.CodeVolumeUnavailable},
		{"bad device", ids[1], "/dev/hda", ecs.CodeInvalidParam},
		{"taken system device", ids[1], "/dev/vda", ecs.CodeInvalidParam},
	} {
		if _, err := b.svc.AttachVolume(ctx, b.caller, srv.ID, tc.volume, tc.device); code(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	other := cloud.Caller{ProjectID: "other", UserID: b.caller.UserID}
	if _, err := b.svc.GetVolume(ctx, other, ids[1]); code(err) != ecs.CodeVolumeNotFound {
		t.Errorf("another project's volume: %v", err)
	}
	if _, _, err := b.svc.CreateVolumes(ctx, b.caller, cloud.VolumeInput{SizeGB: 0}); code(err) != ecs.CodeInvalidParam {
		t.Errorf("size 0: %v", err)
	}

	job, err := b.svc.AttachVolume(ctx, b.caller, srv.ID, ids[1], "/dev/sdc")
	b.okJob(t, "attach to a stopped server", job, err)
	if v := b.volume(t, ids[1]); v.Device != "/dev/vdc" {
		t.Errorf("device = %q, want /dev/vdc", v.Device)
	}
	job, err = b.svc.DeleteServers(ctx, b.caller, []string{srv.ID})
	b.okJob(t, "delete server", job, err)
	if v := b.volume(t, ids[1]); v.Status != ecs.VolumeAvailable || v.ServerID != "" {
		t.Errorf("data volume of a deleted server = %+v", v)
	}
	job, err = b.svc.DeleteVolume(ctx, b.caller, ids[1])
	b.okJob(t, "delete volume", job, err)
}

// TestCreateWithDataVolumes: a create's data_volumes are made blank and
// attached before the server starts, shown in-use as /dev/vdb, /dev/vdc.
func TestCreateWithDataVolumes(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	in := cloud.CreateInput{Name: "dv", ImageRef: linuxImage, FlavorRef: "s6.small.1", VPCID: "vpc", SubnetIDs: []string{"sn"},
		VolumeType: "SSD", DataVolumes: []cloud.DataVolumeInput{{VolumeType: "SAS", SizeGB: 10}, {VolumeType: "SSD", SizeGB: 20}}}
	job, ids, err := b.svc.CreateServers(ctx, b.caller, in)
	b.okJob(t, "create", job, err)
	srv, vols, err := b.svc.ServerVolumes(ctx, b.caller, ids[0])
	if err != nil || len(vols) != 3 {
		t.Fatalf("volumes = %+v, %v", vols, err)
	}
	for i, want := range []struct {
		dev  string
		size int
	}{{"/dev/vdb", 10}, {"/dev/vdc", 20}} {
		v := vols[i+1]
		if v.Device != want.dev || v.SizeGB != want.size || v.Status != ecs.VolumeInUse || v.Host != testNode {
			t.Errorf("data volume %d = %+v", i, v)
		}
	}
	st, _ := b.drv.Server(srv.ID)
	if len(st.DataDisks) != 2 || st.Power != sim.PowerRunning {
		t.Errorf("sim server = %+v", st)
	}
	// A change of OS replaces the system disk only.
	other := "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e02"
	job, err = b.svc.ChangeOS(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: &other,
		Mode: str(cloud.ModeWithStopServer)})
	b.okJob(t, "change OS", job, err)
	after, vols2, _ := b.svc.ServerVolumes(ctx, b.caller, srv.ID)
	if after.SystemVolumeID == srv.SystemVolumeID || after.ImageID != other || len(vols2) != 3 ||
		vols2[1].ID != vols[1].ID || vols2[2].ID != vols[2].ID {
		t.Errorf("after the change of OS: system %s image %s volumes %+v", after.SystemVolumeID, after.ImageID, vols2)
	}
	if st, _ := b.drv.Server(srv.ID); len(st.DataDisks) != 2 {
		t.Errorf("sim server after the change of OS = %+v", st)
	}
	in.DataVolumes = []cloud.DataVolumeInput{{VolumeType: "SSD", SizeGB: 5}}
	if _, _, err := b.svc.CreateServers(ctx, b.caller, in); code(err) != ecs.CodeInvalidParam {
		t.Errorf("a 5 GB data volume: %v", err)
	}
}
