// The end-to-end proof of the QEMU backend, through the official SDK
// against a real `ecsd --driver qemu` that boots real guests (TCG): a
// reinstall really replaces the system disk, and exactly the new key or
// password logs in over SSH. It boots the test image five times (about 30 s
// on an idle 2-core machine, minutes on a loaded one) and needs QEMU, so it
// runs only with ECS_QEMU_E2E=1:
//
//	make test-vm
//	cd test/sdk && ECS_QEMU_E2E=1 go test -count=1 -run QEMU -v -timeout 20m ./...
//
// The test image comes from $ECS_TEST_IMAGE_DIR when it holds one, else
// ../../scripts/build-test-image.sh builds it (cached) in
// ~/.cache/ecsd/test-image.

package sdk

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/testd"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
	"golang.org/x/crypto/ssh"
)

const (
	// vmJobTimeout bounds every job on real VMs (a graceful stop alone
	// may wait 10 s for the guest to power off).
	vmJobTimeout = 3 * time.Minute
	// bootTimeout bounds a boot to "GUEST-READY sshd" (4-10 s under TCG on
	// an idle 2-core machine; far more when it is loaded).
	bootTimeout = 3 * time.Minute
	// sshTimeout bounds the SSH login (retried on network errors) once
	// the guest reported sshd ready.
	sshTimeout = time.Minute
	// e2eFlavor is 1 vCPU and 256 MB, enough for the test guest.
	e2eFlavor = "t6.tiny.1"
)

// TestQEMUReinstallEndToEnd is scope item 7 of issue 3: create a server
// with key pair A and write a marker over SSH; reinstall with key pair B:
// B logs in, A is refused, the marker is gone; reinstall with a password:
// it logs in, a wrong one and key B are refused. Then, on a restarted ecsd
// (which must reattach to the running guest) whose first credential
// injection fails: the reinstall FAILs, the server is ERROR with its old
// disk untouched (and that disk still boots, with its data and password),
// and a retry succeeds and boots with key A.
func TestQEMUReinstallEndToEnd(t *testing.T) {
	// Not parallel: boots are CPU-bound, and the logged timings should not
	// measure other tests.
	e := setupQEMU(t)
	tn := e.tn

	img := e.importImage(t)
	keyA := e.newKeypair(t, "e2e-a-")
	keyB := e.newKeypair(t, "e2e-b-")

	// 1. Create with key A: ACTIVE, key A logs in; write a marker.
	t0 := time.Now()
	resp := tn.createServers(t, serverSpec{image: img, flavor: e2eFlavor, keyName: keyA.name})
	id := (*resp.ServerIds)[0]
	e.servers = append(e.servers, id)
	tn.waitJobSuccess(t, *resp.JobId)
	tn.wantActive(t, id)
	t.Logf("timing: create submit -> job SUCCESS, ACTIVE: %v", since(t0))
	addr := e.sshAddr(t, id)
	c := e.bootAndLogin(t, id, t0, "create", keyA.auth, "key A")
	e.wantAuthorizedKeys(t, c, keyA)
	shadowMode := e.run(t, c, "stat -c '%a %u %g' /etc/shadow")
	sshModes := e.run(t, c, "stat -c '%a %u %g %n' /root/.ssh /root/.ssh/authorized_keys")
	if want := "700 0 0 /root/.ssh\n600 0 0 /root/.ssh/authorized_keys\n"; sshModes != want {
		t.Errorf("after create, ~/.ssh modes:\n%s\nwant:\n%s", sshModes, want)
	}
	marker := "marker-" + randHex(8)
	e.run(t, c, "echo "+marker+" > /root/marker && sync && cat /root/marker")
	c.Close()

	// 2. Stop, reinstall with key B, start: B logs in, A is refused, the
	// marker is gone, the old disk is deleted.
	tn.stop(t, "SOFT", id)
	wantPortClosed(t, addr)
	vol1 := systemVolume(t, tn.show(t, id))
	e.reinstallTimed(t, id, &model.ReinstallServerWithoutCloudInitOption{Keyname: ptr(keyB.name)}, "key B")
	vol2 := e.wantNewSystemDisk(t, id, vol1)
	t1 := time.Now()
	tn.start(t, id)
	if a := e.sshAddr(t, id); a != addr {
		t.Logf("ssh address changed from %s to %s after the reinstall", addr, a)
		addr = a
	}
	c = e.bootAndLogin(t, id, t1, "reinstall with key B", keyB.auth, "key B")
	e.wantAuthorizedKeys(t, c, keyB)
	e.wantSerialProof(t, id, "authorized_keys-sha256", sha256Hex(strings.TrimSpace(keyB.public)+"\n"))
	if got := e.run(t, c, "if [ -e /root/marker ]; then cat /root/marker; else echo absent; fi"); got != "absent\n" {
		t.Errorf("after the reinstall /root/marker holds %q; want it gone (a new disk from the image)", got)
	}
	c.Close()
	e.wantRefused(t, addr, keyA.auth, "key A after the reinstall with key B")

	// 3. Stop, reinstall with a password, start: the password logs in
	// (root's $6$ hash in /etc/shadow, mode and owner kept), a wrong
	// password and key B are refused.
	pass := "E2e-" + randHex(5) + "Xy9"
	wrong := pass[:len(pass)-1] + "8"
	rememberSecret(pass)
	tn.stop(t, "SOFT", id)
	e.reinstallTimed(t, id, &model.ReinstallServerWithoutCloudInitOption{Adminpass: ptr(pass)}, "password")
	vol3 := e.wantNewSystemDisk(t, id, vol2)
	t2 := time.Now()
	tn.start(t, id)
	addr = e.sshAddr(t, id)
	c = e.bootAndLogin(t, id, t2, "reinstall with password", ssh.Password(pass), "the new password")
	shadow := e.run(t, c, "cat /etc/shadow")
	wantHash(t, shadowField(t, shadow, "root", 1), pass)
	if got := e.run(t, c, "stat -c '%a %u %g' /etc/shadow"); got != shadowMode {
		t.Errorf("/etc/shadow is %q after the password reinstall; the image has %q (mode and owner must be kept)", got, shadowMode)
	}
	if day := shadowField(t, shadow, "root", 2); day != strconv.FormatInt(time.Now().Unix()/86400, 10) &&
		day != strconv.FormatInt(time.Now().Unix()/86400-1, 10) {
		t.Errorf("root's last-change field is %q, want today (%d days since the epoch)", day, time.Now().Unix()/86400)
	}
	if got := e.run(t, c, "if [ -e /root/.ssh/authorized_keys ]; then echo present; else echo absent; fi"); got != "absent\n" {
		t.Errorf("authorized_keys is %q after a password-only reinstall from an image without one, want absent", got)
	}
	// A second marker, on this disk, for the failure phase below.
	marker2 := "marker2-" + randHex(8)
	e.run(t, c, "echo "+marker2+" > /root/marker2 && sync && cat /root/marker2")
	c.Close()
	e.wantRefused(t, addr, ssh.Password(wrong), "a wrong password")
	e.wantRefused(t, addr, keyB.auth, "key B after the password reinstall")

	// 4. Restart ecsd with the first credential injection failing. It must
	// reattach to the running guest: still ACTIVE, same port, same login,
	// and it can stop it.
	e.stopDaemon(t)
	e.startDaemon(t, "--faults", "apply_credentials=fail:1")
	tn = e.tn
	tn.wantActive(t, id)
	if a := e.sshAddr(t, id); a != addr {
		t.Errorf("after the ecsd restart the ssh address is %s, want %s (the running guest's forward)", a, addr)
	}
	c = e.login(t, addr, ssh.Password(pass), "the password, after the ecsd restart")
	if got := e.run(t, c, "cat /root/marker2"); got != marker2+"\n" {
		t.Errorf("after the ecsd restart /root/marker2 is %q, want %q (same guest)", got, marker2)
	}
	c.Close()
	tn.stop(t, "SOFT", id)
	wantPortClosed(t, addr)

	// 5. The failing reinstall: FAIL with a code and a reason, server
	// ERROR, the old disk kept byte for byte and no disk left behind; a
	// start is refused in ERROR.
	oldDisk := e.diskFile(vol3)
	before := fileSum(t, oldDisk)
	r, err := tn.reinstall(id, &model.ReinstallServerWithoutCloudInitOption{Keyname: ptr(keyA.name)})
	if err != nil {
		t.Fatalf("reinstall with key A (injection fault armed): %v", err)
	}
	j := tn.waitJob(t, jobID(t, r.JobId))
	if jobStatus(j) != "FAIL" {
		t.Fatalf("reinstall job with a failing injection ended %s, want FAIL", jobStatus(j))
	}
	if !regexp.MustCompile(`^Ecs\.\d{4}$`).MatchString(str(j.ErrorCode)) || str(j.FailReason) == "<nil>" || *j.FailReason == "" {
		t.Errorf("failed job: error_code %q fail_reason %q; want an Ecs.NNNN code and a reason", str(j.ErrorCode), str(j.FailReason))
	}
	t.Logf("failed reinstall: error_code %s fail_reason %q", str(j.ErrorCode), str(j.FailReason))
	s := tn.show(t, id)
	if s.Status != "ERROR" || s.OSEXTSTStaskState != "" {
		t.Errorf("after the failed reinstall: status %s task_state %q, want ERROR null", s.Status, s.OSEXTSTStaskState)
	}
	if v := systemVolume(t, s); v != vol3 {
		t.Fatalf("after the failed reinstall the system volume is %s, want the old %s", v, vol3)
	}
	if after := fileSum(t, oldDisk); after != before {
		t.Errorf("the failed reinstall changed the old disk %s", oldDisk)
	}
	e.wantDisks(t, vol3)
	_, err = tn.ecs.BatchStartServers(&model.BatchStartServersRequest{Body: &model.BatchStartServersRequestBody{
		OsStart: &model.BatchStartServersOption{Servers: serverIDs([]string{id})},
	}})
	wantErr(t, err, 400, "Ecs.0100")

	// The old disk still boots, with its data and its password: boot a
	// throw-away snapshot of it outside ecsd.
	e.bootDiskSnapshot(t, oldDisk, pass, marker2)
	if after := fileSum(t, oldDisk); after != before {
		t.Fatalf("booting a snapshot changed %s", oldDisk)
	}

	// 6. Retry (the fault fired once): SUCCESS from ERROR, SHUTOFF, a new
	// disk; start: key A logs in, the second marker and the password are
	// gone.
	e.reinstallTimed(t, id, &model.ReinstallServerWithoutCloudInitOption{Keyname: ptr(keyA.name)}, "key A, retry from ERROR")
	if st := tn.show(t, id).Status; st != "SHUTOFF" {
		t.Errorf("after the retried reinstall the server is %s, want SHUTOFF", st)
	}
	vol4 := e.wantNewSystemDisk(t, id, vol3)
	t3 := time.Now()
	tn.start(t, id)
	addr = e.sshAddr(t, id)
	c = e.bootAndLogin(t, id, t3, "retried reinstall with key A", keyA.auth, "key A")
	e.wantAuthorizedKeys(t, c, keyA)
	if got := e.run(t, c, "if [ -e /root/marker2 ]; then cat /root/marker2; else echo absent; fi"); got != "absent\n" {
		t.Errorf("after the retried reinstall /root/marker2 holds %q, want it gone", got)
	}
	c.Close()
	e.wantRefused(t, addr, ssh.Password(pass), "the old password after the retried reinstall")

	// 7. Delete: the server, its disk and its guest are gone.
	dr, err := tn.ecs.DeleteServers(&model.DeleteServersRequest{Body: &model.DeleteServersRequestBody{
		Servers: serverIDs([]string{id}),
	}})
	if err != nil {
		t.Fatalf("DeleteServers: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, dr.JobId))
	e.servers = nil
	_, err = tn.ecs.ShowServer(&model.ShowServerRequest{ServerId: id})
	wantErr(t, err, 404, "Ecs.0114")
	if _, err := os.Stat(e.diskFile(vol4)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("system disk %s still exists after the delete (stat: %v)", vol4, err)
	}
	e.wantDisks(t)
	wantPortClosed(t, addr)
	e.stopDaemon(t)
}

// qemuEnv is one test's ecsd with the qemu driver on a data dir that
// outlives daemon restarts.
type qemuEnv struct {
	dir      string // ecsd's --data-dir
	imageDir string // vmlinux, initrd.img, disk.qcow2
	d        *daemon
	tn       *tenant
	daemons  []*daemon // every ecsd started, for their logs
	servers  []string  // servers to delete if the test stops early
	hostKey  ssh.PublicKey
}

func setupQEMU(t *testing.T) *qemuEnv {
	t.Helper()
	if os.Getenv("ECS_QEMU_E2E") != "1" {
		t.Skip("boots real QEMU guests; run with `make test-vm` (or ECS_QEMU_E2E=1 go test -run QEMU ./... in test/sdk)")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not found: run scripts/install-qemu-deps.sh (as root), or make deps")
	}
	e := &qemuEnv{dir: t.TempDir(), imageDir: qemuTestImage(t)}
	t.Cleanup(func() { e.cleanup(t) })
	e.startDaemon(t)
	return e
}

// qemuTestImage returns $ECS_TEST_IMAGE_DIR when it holds the test image,
// else builds the image (cached) in ~/.cache/ecsd/test-image.
func qemuTestImage(t *testing.T) string {
	return testImageDir(t, "ECS_TEST_IMAGE_DIR", "test-image", "build-test-image.sh",
		"vmlinux", "initrd.img", "disk.qcow2")
}

// testImageDir returns the absolute directory of a test image: $envVar
// when it holds every one of files (none given: never assumed), else
// $envVar or ~/.cache/ecsd/cacheName after scripts/script made sure the
// image is there (the scripts return at once when it is cached).
func testImageDir(t *testing.T, envVar, cacheName, script string, files ...string) string {
	t.Helper()
	has := func(dir string) bool {
		for _, f := range files {
			if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
				return false
			}
		}
		return len(files) > 0
	}
	dir := os.Getenv(envVar)
	if dir == "" || !has(dir) {
		if dir == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(cache, "ecsd", cacheName)
		}
		path := filepath.Join("..", "..", "scripts", script)
		t0 := time.Now()
		if out, err := exec.Command(path, dir).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", path, dir, err, out)
		}
		t.Logf("test image in %s (%s: %v)", dir, script, since(t0))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// startDaemon starts ecsd --driver qemu on e.dir with extra flags.
func (e *qemuEnv) startDaemon(t *testing.T, extra ...string) {
	t.Helper()
	d, err := launch(testd.Config{DataDir: e.dir, Driver: "qemu", Args: extra})
	if err != nil {
		t.Fatalf("start ecsd --driver qemu %v: %v", extra, err)
	}
	d.jobTimeout = vmJobTimeout
	e.d, e.tn = d, d.main
	e.daemons = append(e.daemons, d)
}

// stopDaemon stops the running ecsd (SIGTERM, clean exit) and checks that
// its log carries no secret.
func (e *qemuEnv) stopDaemon(t *testing.T) {
	t.Helper()
	d := e.d
	e.d = nil
	if err := d.Stop(); err != nil {
		t.Errorf("stopping ecsd: %v", err)
	}
	if leaks := d.secretLeaks(); len(leaks) > 0 {
		t.Errorf("ecsd log carries secrets: %s", strings.Join(leaks, "; "))
	}
}

// cleanup deletes what a failed test left: servers (through the API) and
// then any guest still running from this data dir, and the daemon.
func (e *qemuEnv) cleanup(t *testing.T) {
	if t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(e.dir, "qemu", "servers", "*", "serial.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("--- %s, last lines:\n%s", l, tail(string(b), 15))
		}
	}
	if e.d != nil {
		if len(e.servers) > 0 {
			resp, err := e.tn.ecs.DeleteServers(&model.DeleteServersRequest{Body: &model.DeleteServersRequestBody{
				Servers: serverIDs(e.servers),
			}})
			if err == nil && resp.JobId != nil {
				deadline := time.Now().Add(vmJobTimeout)
				for time.Now().Before(deadline) {
					j, err := e.tn.ecs.ShowJob(&model.ShowJobRequest{JobId: *resp.JobId})
					if err != nil || jobStatus(j) == "SUCCESS" || jobStatus(j) == "FAIL" {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		}
		e.stopDaemon(t)
	}
	e.killGuests(t)
	if t.Failed() {
		for _, d := range e.daemons {
			t.Logf("--- ecsd log without successful requests (%s), last lines:\n%s", d.LogPath(), tail(logWithoutOKRequests(d), 40))
		}
	}
}

// okRequest matches the access-log line of a request answered below 400.
var okRequest = regexp.MustCompile(`"msg":"request".*"status":[123]\d\d\b`)

// logWithoutOKRequests is the daemon's log without the access-log lines
// of successful requests (the job polling drowns everything else).
func logWithoutOKRequests(d *daemon) string {
	b, err := os.ReadFile(d.LogPath())
	if err != nil {
		return err.Error()
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !okRequest.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// killGuests kills the QEMU processes this test's ecsd started and left
// running (guests outlive the daemon by design), found by their pidfiles
// and checked against their command line.
func (e *qemuEnv) killGuests(t *testing.T) {
	pidfiles, _ := filepath.Glob(filepath.Join(e.dir, "qemu", "servers", "*", "qemu.pid"))
	for _, pf := range pidfiles {
		b, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cmdline, []byte("ecsd-"+filepath.Base(filepath.Dir(pf)))) {
			continue
		}
		t.Logf("killing guest QEMU pid %d left running (%s)", pid, pf)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// importImage imports the test image with the operator command (ecsd
// image import, beside the running daemon) and checks what it prints.
func (e *qemuEnv) importImage(t *testing.T) string {
	t.Helper()
	return e.importImageFrom(t, "e2e-busybox", e.imageDir)
}

// importImageFrom imports the image in dir (vmlinux, initrd.img,
// disk.qcow2) under name, as importImage does.
func (e *qemuEnv) importImageFrom(t *testing.T, name, dir string) string {
	t.Helper()
	bin, err := testd.Binary()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	cmd := exec.Command(bin, "image", "import", "--data-dir", e.dir, "--name", name,
		"--kernel", filepath.Join(dir, "vmlinux"), "--initrd", filepath.Join(dir, "initrd.img"),
		filepath.Join(dir, "disk.qcow2"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ecsd image import: %v: %s", err, stderr.Bytes())
	}
	t.Logf("timing: image import (%s) %v", name, since(t0))
	var img struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		OSType string `json:"__os_type"`
		Inject string `json:"__ecsd_credential_injection"`
	}
	if err := json.Unmarshal(out, &img); err != nil || img.ID == "" {
		t.Fatalf("image import printed %s (%v); want the image with an id", out, err)
	}
	if img.Status != "active" || img.OSType != "Linux" || img.Inject != "supported" {
		t.Errorf("imported image: status %q __os_type %q injection %q; want active, Linux, supported", img.Status, img.OSType, img.Inject)
	}
	return img.ID
}

// keypair is a generated key pair with its private key as an SSH auth.
type keypair struct {
	name, public string
	auth         ssh.AuthMethod
}

// newKeypair has ecsd generate a key pair (NovaCreateKeypair without a
// public key) and parses the returned private key.
func (e *qemuEnv) newKeypair(t *testing.T, prefix string) keypair {
	t.Helper()
	name := uniq(prefix)
	resp, err := e.tn.ecs.NovaCreateKeypair(&model.NovaCreateKeypairRequest{Body: &model.NovaCreateKeypairRequestBody{
		Keypair: &model.NovaCreateKeypairOption{Name: name},
	}})
	if err != nil {
		t.Fatalf("NovaCreateKeypair %s: %v", name, err)
	}
	if resp.Keypair == nil || resp.Keypair.PrivateKey == "" {
		t.Fatalf("NovaCreateKeypair %s returned no private key", name)
	}
	signer, err := ssh.ParsePrivateKey([]byte(resp.Keypair.PrivateKey))
	if err != nil {
		t.Fatalf("the private key of %s does not parse: %v", name, err)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); !strings.HasPrefix(resp.Keypair.PublicKey, got) {
		t.Fatalf("the private key of %s is for %q, but public_key is %q", name, got, resp.Keypair.PublicKey)
	}
	return keypair{name: name, public: resp.Keypair.PublicKey, auth: ssh.PublicKeys(signer)}
}

// reinstallTimed reinstalls a stopped server, waits for SUCCESS and logs
// submit -> SUCCESS.
func (e *qemuEnv) reinstallTimed(t *testing.T, id string, opt *model.ReinstallServerWithoutCloudInitOption, what string) {
	t.Helper()
	t0 := time.Now()
	e.tn.reinstallOK(t, id, opt)
	t.Logf("timing: reinstall (%s) submit -> SUCCESS: %v", what, since(t0))
}

// wantNewSystemDisk checks that the server's system volume replaced old,
// whose disk file is gone, and returns the new volume.
func (e *qemuEnv) wantNewSystemDisk(t *testing.T, id, old string) string {
	t.Helper()
	v := systemVolume(t, e.tn.show(t, id))
	if v == old {
		t.Fatalf("the system volume is still %s after a successful reinstall", old)
	}
	if _, err := os.Stat(e.diskFile(old)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old system disk %s still exists after the reinstall (stat: %v)", old, err)
	}
	e.wantDisks(t, v)
	return v
}

// diskFile is the qemu driver's qcow2 file of a volume.
func (e *qemuEnv) diskFile(volumeID string) string {
	return filepath.Join(e.dir, "qemu", "disks", volumeID+".qcow2")
}

// wantDisks checks that the driver holds exactly the disks of these
// volumes (no disk left behind by a reinstall, a failure or a delete).
func (e *qemuEnv) wantDisks(t *testing.T, volumeIDs ...string) {
	t.Helper()
	got, _ := filepath.Glob(filepath.Join(e.dir, "qemu", "disks", "*.qcow2"))
	var want []string
	for _, v := range volumeIDs {
		want = append(want, e.diskFile(v))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("disk files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// serialLog is the guest's serial console log (qemu driver layout).
func (e *qemuEnv) serialLog(id string) string {
	return filepath.Join(e.dir, "qemu", "servers", id, "serial.log")
}

// sshAddr is the SSH forward ShowServer publishes in its metadata.
func (e *qemuEnv) sshAddr(t *testing.T, id string) string {
	t.Helper()
	md := e.tn.show(t, id).Metadata
	host, port := md["ssh_host"], md["ssh_port"]
	if host != "127.0.0.1" {
		t.Fatalf("server %s metadata ssh_host %q, want 127.0.0.1 (metadata %v)", id, host, md)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		t.Fatalf("server %s metadata ssh_port %q is not a port (metadata %v)", id, port, md)
	}
	return net.JoinHostPort(host, port)
}

// bootAndLogin waits for the guest started at t0 to report sshd ready on
// its serial console, logs in and logs the boot times.
func (e *qemuEnv) bootAndLogin(t *testing.T, id string, t0 time.Time, phase string, auth ssh.AuthMethod, what string) *ssh.Client {
	t.Helper()
	waitSerial(t, e.serialLog(id), t0)
	ready := since(t0)
	c := e.login(t, e.sshAddr(t, id), auth, what)
	t.Logf("timing: %s: start submit -> GUEST-READY %v, -> SSH login %v", phase, ready, since(t0))
	return c
}

// waitSerial waits until the serial log shows "GUEST-READY sshd".
func waitSerial(t *testing.T, path string, t0 time.Time) string {
	t.Helper()
	deadline := t0.Add(bootTimeout)
	for {
		b, _ := os.ReadFile(path)
		s := string(b)
		switch {
		case strings.Contains(s, "GUEST-READY sshd"):
			return s
		case strings.Contains(s, "GUEST-FAIL"), strings.Contains(s, "Kernel panic"):
			t.Fatalf("guest failed to boot; serial log %s:\n%s", path, tail(s, 30))
		case time.Now().After(deadline):
			t.Fatalf("no GUEST-READY within %v; serial log %s:\n%s", bootTimeout, path, tail(s, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantSerialProof checks a "GUEST-PROOF key: value" line of the serial log.
func (e *qemuEnv) wantSerialProof(t *testing.T, id, key, want string) {
	t.Helper()
	b, _ := os.ReadFile(e.serialLog(id))
	m := regexp.MustCompile(`GUEST-PROOF ` + regexp.QuoteMeta(key) + `: (\S*)`).FindSubmatch(b)
	if m == nil {
		t.Errorf("serial log has no GUEST-PROOF %s line:\n%s", key, tail(string(b), 20))
		return
	}
	if string(m[1]) != want {
		t.Errorf("guest reports %s %s, want %s", key, m[1], want)
	}
}

// dial opens an SSH connection as root. Every boot of the test image has
// the same host keys: the first one seen is pinned.
func (e *qemuEnv) dial(addr string, auth ssh.AuthMethod) (*ssh.Client, error) {
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{auth},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if e.hostKey == nil {
				e.hostKey = key
				return nil
			}
			if !bytes.Equal(e.hostKey.Marshal(), key.Marshal()) {
				return fmt.Errorf("host key changed to %s %s", key.Type(), ssh.FingerprintSHA256(key))
			}
			return nil
		},
		Timeout: 30 * time.Second,
	})
}

// authRefused reports whether err is the SSH client's "no method
// succeeded" error (x/crypto/ssh has no typed error for it).
func authRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unable to authenticate")
}

// login logs in as root, retrying network errors (not refusals) for
// sshTimeout.
func (e *qemuEnv) login(t *testing.T, addr string, auth ssh.AuthMethod, what string) *ssh.Client {
	t.Helper()
	deadline := time.Now().Add(sshTimeout)
	for {
		c, err := e.dial(addr, auth)
		switch {
		case err == nil:
			return c
		case authRefused(err):
			t.Fatalf("SSH %s with %s: refused: %v", addr, what, err)
		case time.Now().After(deadline):
			t.Fatalf("SSH %s with %s: %v", addr, what, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// wantRefused checks that the guest refuses auth (after retrying network
// errors).
func (e *qemuEnv) wantRefused(t *testing.T, addr string, auth ssh.AuthMethod, what string) {
	t.Helper()
	deadline := time.Now().Add(sshTimeout)
	for {
		c, err := e.dial(addr, auth)
		switch {
		case err == nil:
			c.Close()
			t.Errorf("SSH %s with %s logged in; want it refused", addr, what)
			return
		case authRefused(err):
			return
		case time.Now().After(deadline):
			t.Fatalf("SSH %s with %s: %v; want an authentication refusal", addr, what, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// run runs a shell command in the guest and returns its output.
func (e *qemuEnv) run(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("SSH session: %v", err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("guest command %q: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// wantAuthorizedKeys checks root's authorized_keys in the guest: exactly
// the key pair's public key.
func (e *qemuEnv) wantAuthorizedKeys(t *testing.T, c *ssh.Client, k keypair) {
	t.Helper()
	if got := e.run(t, c, "cat /root/.ssh/authorized_keys"); strings.TrimSpace(got) != strings.TrimSpace(k.public) {
		t.Errorf("guest authorized_keys is %q, want key pair %s's %q", got, k.name, k.public)
	}
}

// bootDiskSnapshot boots a throw-away snapshot (-snapshot: nothing is
// written to the file) of a system disk with the test image's kernel, the
// way the driver boots it, and checks that password logs in and that
// /root/marker2 holds marker.
func (e *qemuEnv) bootDiskSnapshot(t *testing.T, disk, password, marker string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	serial := filepath.Join(dir, "serial.log")
	cmd := exec.Command("qemu-system-x86_64",
		"-name", "ecsd-e2e-old-disk", "-no-user-config", "-nodefaults", "-display", "none", "-no-reboot",
		"-M", "pc", "-m", "256", "-smp", "1", "-accel", "tcg",
		"-kernel", filepath.Join(e.imageDir, "vmlinux"), "-initrd", filepath.Join(e.imageDir, "initrd.img"),
		"-append", "console=ttyS0 panic=-1 quiet no_timer_check",
		"-drive", "file="+disk+",format=qcow2,if=virtio,snapshot=on",
		"-netdev", fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22", port),
		"-device", "virtio-net-pci,netdev=n0", "-device", "virtio-rng-pci",
		"-serial", "file:"+serial)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting QEMU on a snapshot of %s: %v", disk, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	waitSerial(t, serial, t0)
	c := e.login(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), ssh.Password(password), "the password, on the old disk")
	defer c.Close()
	if got := e.run(t, c, "cat /root/marker2"); got != marker+"\n" {
		t.Errorf("the old disk's /root/marker2 is %q, want %q", got, marker)
	}
	t.Logf("timing: the old disk (snapshot, outside ecsd) boots to SSH in %v", since(t0))
}

// wantPortClosed checks that nothing accepts connections on addr (the
// guest's QEMU, which owns the forward, is gone).
func wantPortClosed(t *testing.T, addr string) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections; want the stopped guest's forward gone", addr)
	}
}

// shadowField returns field i (0-based) of user's line in an /etc/shadow.
func shadowField(t *testing.T, shadow, user string, i int) string {
	t.Helper()
	for _, line := range strings.Split(shadow, "\n") {
		f := strings.Split(line, ":")
		if f[0] == user && len(f) > i {
			return f[i]
		}
	}
	t.Fatalf("/etc/shadow has no field %d for %s:\n%s", i, user, shadow)
	return ""
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Hex(string(b))
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func since(t0 time.Time) time.Duration { return time.Since(t0).Round(time.Millisecond) }

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
