//go:build vmtest

package qemu

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// startTestServer creates disk vol-<id> (with creds) and server id on d,
// starts it and returns it.
func startTestServer(ctx context.Context, t *testing.T, d *Driver, img ecs.Image, id string, creds compute.Credentials) *guest {
	t.Helper()
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "vol-" + id, Image: img}); err != nil {
		t.Fatal(err)
	}
	if creds != (compute.Credentials{}) {
		if err := d.ApplyCredentials(ctx, "vol-"+id, creds); err != nil {
			t.Fatal(err)
		}
	}
	info, err := d.CreateServer(ctx, compute.ServerSpec{ID: id, Image: img, DiskID: "vol-" + id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.DeleteServer(context.Background(), id) })
	if err := d.StartServer(ctx, id); err != nil {
		t.Fatal(err)
	}
	return &guest{t: t, d: d, id: id, port: info.AccessPort, serial: d.SerialLog(id)}
}

// procStatus returns the fields of /proc/<pid>/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		m[k] = strings.TrimSpace(v)
	}
	return m
}

// TestSandbox checks what a running guest's QEMU is confined to: a seccomp
// filter, and (when the driver runs as root) a uid of the server's own,
// which cannot signal another guest's QEMU and can open no file of the
// state directory: another server's disk is out of its reach by path, and
// a file reaches it only as a file descriptor passed by the driver (as
// hot-plugged volumes do).
func TestSandbox(t *testing.T) {
	img := importedTestImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	d, err := New(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	startTestServer(ctx, t, d, img, "a", compute.Credentials{})
	startTestServer(ctx, t, d, img, "b", compute.Credentials{})
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "vol-other", Image: img}); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	pid, pidB := d.servers["a"].proc.pid, d.servers["b"].proc.pid
	uidA, uidB := d.servers["a"].rec.UID, d.servers["b"].rec.UID
	d.mu.Unlock()

	st := procStatus(t, pid)
	if st["Seccomp"] != "2" {
		t.Errorf("QEMU's Seccomp is %q, want 2 (filter); status: %v", st["Seccomp"], st)
	}
	if st["NoNewPrivs"] != "1" {
		t.Errorf("QEMU's NoNewPrivs is %q, want 1", st["NoNewPrivs"])
	}
	root := os.Geteuid() == 0
	if root {
		u, err := user.Lookup(defaultUser)
		if err != nil {
			t.Fatalf("the driver runs as root and user %s does not exist: %v", defaultUser, err)
		}
		// A uid of the server's own, from the guest range.
		if uidA < defaultGuestUIDBase || uidB < defaultGuestUIDBase || uidA == uidB || strconv.Itoa(uidA) == u.Uid {
			t.Errorf("servers a and b have uids %d and %d, want two of their own from %d", uidA, uidB, defaultGuestUIDBase)
		}
		if want := strings.Repeat(strconv.Itoa(uidA)+"\t", 3) + strconv.Itoa(uidA); st["Uid"] != want {
			t.Errorf("QEMU's Uid is %q, want %q (server a's own)", st["Uid"], want)
		}
		if want := strings.Repeat(strconv.Itoa(uidB)+"\t", 3) + strconv.Itoa(uidB); procStatus(t, pidB)["Uid"] != want {
			t.Errorf("server b's QEMU's Uid is %q, want %q", procStatus(t, pidB)["Uid"], want)
		}
		// What a QEMU taken over by its guest could do to another: as a's
		// uid, signalling b's QEMU is refused; signalling a's own is not.
		gid, _ := strconv.Atoi(u.Gid)
		if out, err := killAs(uidA, gid, pidB); err == nil || !strings.Contains(out, "not permitted") {
			t.Errorf("kill -0 of b's QEMU as a's uid: %v %q, want Operation not permitted", err, out)
		}
		if out, err := killAs(uidA, gid, pid); err != nil {
			t.Errorf("kill -0 of a's QEMU as a's uid: %v %q", err, out)
		}
		if want := strings.Repeat(u.Gid+"\t", 3) + u.Gid; st["Gid"] != want {
			t.Errorf("QEMU's Gid is %q, want %q", st["Gid"], want)
		}
		if st["Groups"] != u.Gid {
			t.Errorf("QEMU's supplementary groups are %q, want only %s", st["Groups"], u.Gid)
		}
		if st["CapEff"] != "0000000000000000" || st["CapPrm"] != "0000000000000000" {
			t.Errorf("QEMU keeps capabilities: CapEff %s CapPrm %s", st["CapEff"], st["CapPrm"])
		}
	}

	q, err := qmpDial(ctx, filepath.Join(d.serverDir("a"), qmpSock))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	other := d.diskPath("vol-other")
	_, err = q.execute(ctx, "blockdev-add", map[string]any{
		"driver": "file", "node-name": "by-path", "filename": other, "read-only": true,
	})
	if root && (err == nil || !strings.Contains(err.Error(), "Permission denied")) {
		t.Errorf("QEMU opening another server's disk by path: %v, want Permission denied", err)
	}
	f, err := os.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := q.addFD(ctx, 7, f); err != nil {
		t.Fatalf("add-fd: %v", err)
	}
	if _, err := q.execute(ctx, "blockdev-add", map[string]any{
		"driver": "file", "node-name": "by-fd", "filename": "/dev/fdset/7", "read-only": true,
	}); err != nil {
		t.Errorf("QEMU opening a file passed as an fd: %v", err)
	}
}

// killAs runs kill -0 pid as uid:gid (no other group) and returns its
// output.
func killAs(uid, gid, pid int) (string, error) {
	cmd := exec.Command("/bin/sh", "-c", "kill -0 "+strconv.Itoa(pid))
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSerialLogCap floods the serial console from the guest with 16 times
// the log's cap: the log never holds more than the cap, and holds the end
// of the output.
func TestSerialLogCap(t *testing.T) {
	img := importedTestImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	const logMax = 64 << 10
	d, err := New(ctx, Config{Dir: t.TempDir(), SerialLogMax: logMax})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	key := newKeyPair(t, "flood@test")
	g := startTestServer(ctx, t, d, img, "f", compute.Credentials{AuthorizedKeys: key.authorized})
	g.waitReady(ctx)

	flood := make(chan error, 1)
	go func() {
		_, err := g.ssh(ctx, ssh.PublicKeys(key.signer),
			"yes 'SERIAL-FLOOD 0123456789abcdefghijklmnopqrstuvwxyz' | head -c 1048576 > /dev/ttyS0; echo SERIAL-FLOOD-END > /dev/ttyS0")
		flood <- err
	}()
	var done bool
	for !done {
		select {
		case err := <-flood:
			if err != nil {
				t.Fatalf("flooding the console: %v", err)
			}
			done = true
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if st, err := os.Stat(g.serial); err == nil && st.Size() > logMax {
			t.Fatalf("serial log has %d bytes, cap %d", st.Size(), logMax)
		}
	}
	// The end marker reaches the log after the guest wrote it.
	for {
		b, err := os.ReadFile(g.serial)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > logMax {
			t.Fatalf("serial log has %d bytes, cap %d", len(b), logMax)
		}
		if strings.Contains(string(b), "SERIAL-FLOOD-END") {
			if len(b) < logMax/4 || strings.Count(string(b), "SERIAL-FLOOD 0123") < 100 {
				t.Errorf("serial log keeps %d bytes of the flood (%d lines), want the last ~%d", len(b),
					strings.Count(string(b), "SERIAL-FLOOD 0123"), logMax/2)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no SERIAL-FLOOD-END in the serial log: %v; it ends with %q", ctx.Err(), b[len(b)-min(len(b), 200):])
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := d.StopServer(ctx, "f", true); err != nil {
		t.Fatal(err)
	}
}

// TestStartFailure checks that a QEMU that exits at start (here: its
// kernel is missing) is reported at once with QEMU's reason, before any
// serial console is connected.
func TestStartFailure(t *testing.T) {
	img := importedTestImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	d, err := New(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "vol-x", Image: img}); err != nil {
		t.Fatal(err)
	}
	bad := img
	bad.Kernel = filepath.Join(t.TempDir(), "missing-vmlinux")
	if _, err := d.CreateServer(ctx, compute.ServerSpec{ID: "x", Image: bad, DiskID: "vol-x"}); err != nil {
		t.Fatal(err)
	}
	err = d.StartServer(ctx, "x")
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "exited at start") {
		t.Fatalf("StartServer with a missing kernel: %v (ctx %v), want QEMU's exit reported", err, ctx.Err())
	}
	// QEMU's reason came through qemu.pipe into qemu.log.
	if !strings.Contains(err.Error(), "missing-vmlinux") {
		t.Errorf("StartServer with a missing kernel: %v, want QEMU's message naming the kernel", err)
	}
	if ps, _ := d.PowerState(ctx, "x"); ps != compute.PowerStopped {
		t.Errorf("PowerState after a failed start = %v, want stopped", ps)
	}
}
