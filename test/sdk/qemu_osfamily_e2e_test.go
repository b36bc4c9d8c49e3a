// The real-VM proof of issue 9, through the official SDK against a real
// `ecsd --driver qemu`: one server of the cloud-init guest (Debian,
// cloud-init, the QEMU guest agent) is reinstalled with cloud-init,
// changed to the busybox test image and back, and has its password reset
// online. It needs QEMU and both test images, so it runs only with
// ECS_QEMU_E2E=1:
//
//	make test-vm-cloudinit
//	cd test/sdk && ECS_QEMU_E2E=1 go test -count=1 -run TestCloudInitOSFamilyEndToEnd -v -timeout 15m ./...
//
// The cloud-init image comes from $ECS_CLOUDINIT_IMAGE_DIR when it holds
// one, else ../../scripts/build-cloudinit-image.sh builds it (cached, as
// root) in ~/.cache/ecsd/cloudinit-image.

package sdk

import (
	"strings"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
	"golang.org/x/crypto/ssh"
)

// ciFlavor is 1 vCPU and 1 GB: Debian with cloud-init wants more than
// the busybox guest's 256 MB.
const ciFlavor = "s6.small.1"

// TestCloudInitOSFamilyEndToEnd: create from the cloud-init image with key
// A; ReinstallServerWithCloudInit (withStopServer) with key B and a user
// data script: A is refused, B logs in, the script ran, the instance id is
// new. ChangeServerOsWithoutCloudInit to the busybox image and
// ChangeServerOsWithCloudInit back: /etc/os-release changes each time.
// ResetServerPassword on the running guest, twice: the new password logs
// in, the old one is refused, the boot id is unchanged.
func TestCloudInitOSFamilyEndToEnd(t *testing.T) {
	e := setupQEMU(t)
	tn := e.tn
	ciImg := e.importImageFrom(t, "e2e-debian-cloudinit", cloudInitImageDir(t))
	bbImg := e.importImage(t)
	keyA := e.newKeypair(t, "ci-a-")
	keyB := e.newKeypair(t, "ci-b-")

	// 1. Create with key A.
	t0 := time.Now()
	resp := tn.createServers(t, serverSpec{image: ciImg, flavor: ciFlavor, keyName: keyA.name})
	id := (*resp.ServerIds)[0]
	e.servers = append(e.servers, id)
	tn.waitJobSuccess(t, *resp.JobId)
	tn.wantActive(t, id)
	c := e.ciLogin(t, id, t0, "create (cloud-init image, key A)", keyA.auth, "key A")
	iid1 := e.waitCloudInitDone(t, c)
	if got := osID(t, e, c); got != "debian" {
		t.Errorf("the cloud-init image's /etc/os-release ID is %q, want debian", got)
	}
	c.Close()

	// 2. ReinstallServerWithCloudInit on the running server (withStopServer)
	// with key B and a user data script.
	marker := "ci-marker-" + randHex(8)
	script := "#!/bin/sh\necho " + marker + " > /root/ci-marker\n"
	t1 := time.Now()
	rr, err := tn.reinstallCI(id, &ciOpt{Keyname: ptr(keyB.name), Mode: ptr("withStopServer"),
		Metadata: &model.ReinstallSeverMetadata{UserData: b64(script)}})
	if err != nil {
		t.Fatalf("ReinstallServerWithCloudInit: %v", err)
	}
	tn.wantJobOf(t, rr.JobId, "reInitOs", id)
	t.Logf("timing: ReinstallServerWithCloudInit submit -> job SUCCESS: %v", since(t1))
	// The boot timings below count from the submit of the call.
	tn.wantActive(t, id)
	c = e.ciLogin(t, id, t1, "ReinstallServerWithCloudInit (key B)", keyB.auth, "key B")
	addr := e.sshAddr(t, id)
	e.wantRefused(t, addr, keyA.auth, "key A after the reinstall with key B")
	iid2 := e.waitCloudInitDone(t, c)
	if iid2 == iid1 {
		t.Errorf("cloud-init reports instance id %s after the reinstall, the same as before: want a new one", iid2)
	}
	if got := e.run(t, c, "cat /var/lib/cloud/data/instance-id"); strings.TrimSpace(got) != iid2 {
		t.Errorf("/var/lib/cloud/data/instance-id is %q, cloud-init query says %q", got, iid2)
	}
	if got := e.run(t, c, "cat /root/ci-marker"); got != marker+"\n" {
		t.Errorf("the user data script's marker is %q, want %q", got, marker)
	}
	c.Close()

	// 3. ChangeServerOsWithoutCloudInit to the busybox image (key B, injected
	// host-side), withStopServer.
	t2 := time.Now()
	cr, err := tn.changeOSv1(id, &model.ChangeServerOsWithoutCloudInitOption{Imageid: bbImg, Keyname: ptr(keyB.name),
		Mode: ptr("withStopServer")})
	if err != nil {
		t.Fatalf("ChangeServerOsWithoutCloudInit to the busybox image: %v", err)
	}
	tn.wantJobOf(t, cr.JobId, "changeOS", id)
	t.Logf("timing: ChangeServerOsWithoutCloudInit submit -> job SUCCESS: %v", since(t2))
	tn.wantActive(t, id)
	if s := tn.show(t, id); s.Image.Id != bbImg {
		t.Errorf("after the change of OS the server's image is %s, want %s", s.Image.Id, bbImg)
	}
	c = e.ciLogin(t, id, t2, "ChangeServerOsWithoutCloudInit (busybox, key B)", keyB.auth, "key B")
	if got := osID(t, e, c); got != "busybox-test" {
		t.Errorf("after the change to the busybox image /etc/os-release ID is %q, want busybox-test", got)
	}
	c.Close()

	// 4. ChangeServerOsWithCloudInit back to the cloud-init image with key A.
	t3 := time.Now()
	cr2, err := tn.changeOSv2(id, &model.ChangeServerOsWithCloudInitOption{Imageid: ciImg, Keyname: ptr(keyA.name),
		Mode: ptr("withStopServer")})
	if err != nil {
		t.Fatalf("ChangeServerOsWithCloudInit back to the cloud-init image: %v", err)
	}
	tn.wantJobOf(t, cr2.JobId, "changeOS", id)
	t.Logf("timing: ChangeServerOsWithCloudInit submit -> job SUCCESS: %v", since(t3))
	tn.wantActive(t, id)
	c = e.ciLogin(t, id, t3, "ChangeServerOsWithCloudInit (cloud-init image, key A)", keyA.auth, "key A")
	addr = e.sshAddr(t, id)
	if got := osID(t, e, c); got != "debian" {
		t.Errorf("after the change back /etc/os-release ID is %q, want debian", got)
	}
	if iid := e.waitCloudInitDone(t, c); iid == iid2 || iid == iid1 {
		t.Errorf("instance id %s after the change of OS is not new (before: %s, %s)", iid, iid1, iid2)
	}
	e.wantRefused(t, addr, keyB.auth, "key B after the change back with key A")

	// 5. ResetServerPassword on the running guest, twice: online, through
	// the guest agent, no reboot.
	bootID := e.run(t, c, "cat /proc/sys/kernel/random/boot_id")
	e.waitResetFlag(t, id)
	pw1 := "Ci1-" + randHex(5) + "Xy9"
	pw2 := "Ci2-" + randHex(5) + "Zq8"
	for _, pw := range []string{pw1, pw2} {
		t4 := time.Now()
		r, err := tn.resetPassword(id, pw)
		if err != nil {
			t.Fatalf("ResetServerPassword on the running guest: %v", err)
		}
		if r.HttpStatusCode != 204 {
			t.Errorf("ResetServerPassword: HTTP %d, want 204", r.HttpStatusCode)
		}
		t.Logf("timing: ResetServerPassword (online) answered in %v", since(t4))
		tn.wantActive(t, id)
		pc := e.login(t, addr, ssh.Password(pw), "the reset password")
		if got := e.run(t, pc, "id -un"); got != "root\n" {
			t.Errorf("the password login runs as %q, want root", got)
		}
		pc.Close()
	}
	e.wantRefused(t, addr, ssh.Password(pw1), "the old password after the second reset")
	if got := e.run(t, c, "cat /proc/sys/kernel/random/boot_id"); got != bootID {
		t.Errorf("boot id changed from %s to %s across the password resets: the guest rebooted", bootID, got)
	}
	c.Close()

	// 6. Delete.
	dr, err := tn.ecs.DeleteServers(&model.DeleteServersRequest{Body: &model.DeleteServersRequestBody{
		Servers: serverIDs([]string{id}),
	}})
	if err != nil {
		t.Fatalf("DeleteServers: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, dr.JobId))
	e.servers = nil
	e.wantDisks(t)
	wantPortClosed(t, addr)
	e.stopDaemon(t)
}

// cloudInitImageDir returns $ECS_CLOUDINIT_IMAGE_DIR, else
// ~/.cache/ecsd/cloudinit-image, after build-cloudinit-image.sh made sure
// the image is there (it returns at once when it is cached).
func cloudInitImageDir(t *testing.T) string {
	return testImageDir(t, "ECS_CLOUDINIT_IMAGE_DIR", "cloudinit-image", "build-cloudinit-image.sh")
}

// ciLogin is bootAndLogin for a guest whose host keys are new (cloud-init
// makes them per instance; the busybox image has its own): the pinned
// host key is forgotten first.
func (e *qemuEnv) ciLogin(t *testing.T, id string, t0 time.Time, phase string, auth ssh.AuthMethod, what string) *ssh.Client {
	t.Helper()
	e.hostKey = nil
	return e.bootAndLogin(t, id, t0, phase, auth, what)
}

// waitCloudInitDone waits (bounded) until cloud-init's final stage has
// finished and returns the instance id cloud-init reports.
func (e *qemuEnv) waitCloudInitDone(t *testing.T, c *ssh.Client) string {
	t.Helper()
	t0 := time.Now()
	e.run(t, c, "i=0; until test -e /var/lib/cloud/instance/boot-finished; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.5; done")
	t.Logf("timing: cloud-init final stage done %v after the login", since(t0))
	return strings.TrimSpace(e.run(t, c, "cloud-init query instance_id"))
}

// waitResetFlag waits until ShowResetPasswordFlag says True: the guest
// agent of the running server answers.
func (e *qemuEnv) waitResetFlag(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(bootTimeout)
	for e.tn.resetFlag(t, id) != "True" {
		if time.Now().After(deadline) {
			t.Fatalf("resetpwd_flag of the running cloud-init guest is not True within %v: its agent does not answer", bootTimeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// osID is the ID= line of the guest's /etc/os-release.
func osID(t *testing.T, e *qemuEnv, c *ssh.Client) string {
	t.Helper()
	for _, l := range strings.Split(e.run(t, c, "cat /etc/os-release"), "\n") {
		if v, ok := strings.CutPrefix(l, "ID="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
