package qemu

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// logDriver is a driver with only what the log readers use.
func logDriver() *Driver {
	d := &Driver{closed: make(chan struct{})}
	d.qsd = &storageDaemon{d: d}
	return d
}

// TestQEMULogCap has a child process, holding the write end as QEMU does,
// print 8 times qemuLogMax on its stdout and stderr, and checks qemu.log
// stays within the cap and keeps the end.
func TestQEMULogCap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := logDriver()
	defer d.Close()
	done := make(chan struct{})
	w, err := d.startQEMULog(dir, done)
	if err != nil {
		t.Fatal(err)
	}
	stream := append(consoleStream(8*qemuLogMax), "qemu-system-x86_64: LAST WORDS\n"...)
	src := filepath.Join(t.TempDir(), "stream")
	if err := os.WriteFile(src, stream, 0o600); err != nil {
		t.Fatal(err)
	}
	// The first half on stdout, the rest on stderr, in order.
	half := strconv.Itoa(len(stream) / 2)
	cmd := exec.Command("sh", "-c", `head -c "$1" "$2"; tail -c +"$(($1 + 1))" "$2" >&2`, "sh", half, src)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	<-done
	path := filepath.Join(dir, qemuLog)
	checkRing(t, path, qemuLogMax, stream)
	if b, _ := os.ReadFile(path); !bytes.HasSuffix(b, []byte("LAST WORDS\n")) {
		t.Errorf("qemu.log does not end with the last line: %q", b[len(b)-min(len(b), 40):])
	}
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Errorf("qemu.log: %v, %v; want a 0600 file", st.Mode(), err)
	}
}

// TestQEMULogReattach checks that while no driver reads the pipe QEMU's
// writes fail at once (they neither block nor grow anything), that a new
// driver appends to the same capped log, and that a new start empties it.
func TestQEMULogReattach(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, qemuLog)
	d1 := logDriver()
	done1 := make(chan struct{})
	w, err := d1.startQEMULog(dir, done1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stream := consoleStream(3 * qemuLogMax)
	if _, err := w.Write(stream[:2*qemuLogMax]); err != nil {
		t.Fatal(err)
	}
	d1.Close() // the daemon goes away; QEMU (w) keeps running
	<-done1
	if _, err := w.Write([]byte("while ecsd is down\n")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write with no reader = %v, want EPIPE", err)
	}

	d2 := logDriver()
	defer d2.Close()
	done2 := make(chan struct{})
	if err := d2.reattachQEMULog(dir, done2); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(stream[2*qemuLogMax:]); err != nil {
		t.Fatal(err)
	}
	w.Close() // QEMU exits
	<-done2
	checkRing(t, path, qemuLogMax, stream)

	// A QEMU that has exited: the reattached copy ends at once.
	done3 := make(chan struct{})
	if err := d2.reattachQEMULog(dir, done3); err != nil {
		t.Fatal(err)
	}
	<-done3
	checkRing(t, path, qemuLogMax, stream)

	// A new start begins an empty log.
	done4 := make(chan struct{})
	w4, err := d2.startQEMULog(dir, done4)
	if err != nil {
		t.Fatal(err)
	}
	w4.Write([]byte("boot 2\n"))
	w4.Close()
	<-done4
	if b, _ := os.ReadFile(path); string(b) != "boot 2\n" {
		t.Fatalf("qemu.log of a new start is %q", b)
	}
}

// TestQEMULogNoPipe: a server started by a release that wrote qemu.log
// directly has no pipe to reattach to.
func TestQEMULogNoPipe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, qemuPipe), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := logDriver()
	defer d.Close()
	if err := d.reattachQEMULog(dir, make(chan struct{})); err == nil {
		t.Fatal("reattached to a regular file")
	}
	if err := d.reattachQEMULog(t.TempDir(), make(chan struct{})); err == nil {
		t.Fatal("reattached to a missing pipe")
	}
}
