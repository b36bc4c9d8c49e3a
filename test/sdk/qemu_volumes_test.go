package sdk

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

// TestQEMUDataDiskSurvivesReinstall is scope item 3 of issue 10 on real
// VMs: an EVS volume hot-plugged into a running guest shows up in its
// /proc/partitions; a marker written on it is still there after a
// reinstall, which gives the server a fresh system disk (the marker
// written on the old one is gone).
func TestQEMUDataDiskSurvivesReinstall(t *testing.T) {
	e := setupQEMU(t)
	tn := e.tn
	img := e.importImage(t)
	key := e.newKeypair(t, "e2e-vol-")

	t0 := time.Now()
	resp := tn.createServers(t, serverSpec{image: img, flavor: e2eFlavor, keyName: key.name})
	id := (*resp.ServerIds)[0]
	e.servers = append(e.servers, id)
	tn.waitJobSuccess(t, *resp.JobId)
	c := e.bootAndLogin(t, id, t0, "create", key.auth, "the key")
	e.run(t, c, "echo system-marker > /root/marker && sync")
	before := e.run(t, c, "ls /sys/block")

	// Hot-plug: the running guest sees a new virtio disk.
	vid := tn.newVolume(t, tn.evsClient(t), uniq("vm-data"), 1)
	t1 := time.Now()
	tn.attach(t, id, vid, "")
	t.Logf("timing: attach (hot-plug) submit -> SUCCESS: %v", since(t1))
	// The guest's kernel takes the device as the ACPI hot-plug event
	// arrives: wait for it (bounded by bootTimeout).
	dev := ""
	for deadline := time.Now().Add(bootTimeout); dev == "" && time.Now().Before(deadline); {
		for _, d := range strings.Fields(e.run(t, c, "ls /sys/block")) {
			if strings.HasPrefix(d, "vd") && !slices.Contains(strings.Fields(before), d) {
				dev = d
			}
		}
		if dev == "" {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if dev == "" {
		t.Fatalf("the guest sees no new disk after the hot-plug; /sys/block had %q", before)
	}
	if parts := e.run(t, c, "cat /proc/partitions"); !strings.Contains(parts, " "+dev+"\n") {
		t.Errorf("/proc/partitions has no %s:\n%s", dev, parts)
	}
	marker := "data-marker-" + randHex(8)
	e.run(t, c, "printf '%s' "+marker+" | dd of=/dev/"+dev+" conv=fsync 2>/dev/null && sync")
	c.Close()

	// Reinstall (stopping the server): only the system disk is replaced.
	sys := systemVolume(t, tn.show(t, id))
	tn.stop(t, "SOFT", id)
	e.reinstallTimed(t, id, &model.ReinstallServerWithoutCloudInitOption{Keyname: ptr(key.name)}, "with a data disk")
	if v := systemVolume(t, tn.show(t, id)); v == sys {
		t.Fatalf("the system volume is still %s after the reinstall", sys)
	}
	t2 := time.Now()
	tn.start(t, id)
	c = e.bootAndLogin(t, id, t2, "reinstall with a data disk", key.auth, "the key")
	defer c.Close()
	if got := e.run(t, c, "if [ -e /root/marker ]; then cat /root/marker; else echo absent; fi"); got != "absent\n" {
		t.Errorf("after the reinstall /root/marker holds %q; want a fresh system disk", got)
	}
	devs := e.run(t, c, "ls /sys/block")
	var data string
	for _, d := range strings.Fields(devs) {
		if strings.HasPrefix(d, "vd") && d != "vda" {
			data = d
		}
	}
	if data == "" {
		t.Fatalf("after the reinstall the guest has no data disk: /sys/block has %q", devs)
	}
	if got := e.run(t, c, "head -c "+strconv.Itoa(len(marker))+" /dev/"+data); got != marker {
		t.Errorf("after the reinstall the data disk starts with %q, want %q", got, marker)
	}

	// Hot-unplug: the job ends once the guest let the disk go; then the
	// volume and its file can be deleted.
	t3 := time.Now()
	dresp, err := tn.detach(id, vid, true)
	if err != nil {
		t.Fatalf("DetachServerVolume: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, dresp.JobId))
	t.Logf("timing: detach (hot-unplug) and delete submit -> SUCCESS: %v", since(t3))
	if devs := e.run(t, c, "ls /sys/block"); slices.Contains(strings.Fields(devs), data) {
		t.Errorf("the guest still has %s after the hot-unplug: %q", data, devs)
	}
	e.wantDisks(t, systemVolume(t, tn.show(t, id)))
}
