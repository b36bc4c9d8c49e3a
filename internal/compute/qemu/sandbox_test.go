package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestSandboxArg(t *testing.T) {
	t.Parallel()
	for _, runas := range []bool{false, true} {
		got := sandboxArg(runas)
		for _, want := range []string{"on,", "obsolete=deny", "spawn=deny", "resourcecontrol=deny"} {
			if !strings.Contains(got, want) {
				t.Errorf("sandboxArg(%v) = %q, missing %q", runas, got, want)
			}
		}
		// QEMU 7.2 installs its filter before -runas calls setgid/setuid.
		if want := map[bool]string{false: "elevateprivileges=deny", true: "elevateprivileges=allow"}[runas]; !strings.Contains(got, want) {
			t.Errorf("sandboxArg(%v) = %q, want %s", runas, got, want)
		}
	}
}

func TestQEMUUserRefusesBadNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"root", "Bad Name", "-x", "a/b", strings.Repeat("a", 40)} {
		got, _, err := qemuUser(context.Background(), name)
		if os.Geteuid() != 0 {
			if got != "" || err != nil {
				t.Errorf("not root: qemuUser(%q) = %q, %v; want no user", name, got, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("qemuUser(%q) = %q, want an error", name, got)
		}
	}
}

// TestQMPAddFD checks that addFD sends the add-fd command with the file's
// descriptor attached (SCM_RIGHTS), as QEMU expects it.
func TestQMPAddFD(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "q.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type received struct {
		cmd     string
		fdset   float64
		content string
		err     error
	}
	got := make(chan received, 1)
	go func() {
		var r received
		defer func() { got <- r }()
		c, err := l.Accept()
		if err != nil {
			r.err = err
			return
		}
		defer c.Close()
		uc := c.(*net.UnixConn)
		c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
		br := bufio.NewReader(c)
		if _, err := br.ReadBytes('\n'); err != nil { // qmp_capabilities
			r.err = err
			return
		}
		c.Write([]byte(`{"return": {}}` + "\n"))
		buf, oob := make([]byte, 4096), make([]byte, 256)
		n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
		if err != nil {
			r.err = err
			return
		}
		var req struct {
			Execute   string         `json:"execute"`
			Arguments map[string]any `json:"arguments"`
		}
		if r.err = json.Unmarshal(buf[:n], &req); r.err != nil {
			return
		}
		r.cmd = req.Execute
		r.fdset, _ = req.Arguments["fdset-id"].(float64)
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			r.err = err
			return
		}
		fds, err := syscall.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			r.err = err
			return
		}
		f := os.NewFile(uintptr(fds[0]), "passed")
		b := make([]byte, 64)
		k, _ := f.ReadAt(b, 0)
		f.Close()
		r.content = string(b[:k])
		c.Write([]byte(`{"return": {"fdset-id": 7, "fd": 12}}` + "\n"))
	}()

	file := filepath.Join(dir, "volume")
	if err := os.WriteFile(file, []byte("volume content"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	q, err := qmpDial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.addFD(ctx, 7, f); err != nil {
		t.Fatalf("addFD: %v", err)
	}
	r := <-got
	if r.err != nil || r.cmd != "add-fd" || r.fdset != 7 || r.content != "volume content" {
		t.Fatalf("QEMU side received %+v; want add-fd, fdset 7 and the file's descriptor", r)
	}
}

func TestCheckGuestUIDBase(t *testing.T) {
	t.Parallel()
	for base, ok := range map[int]bool{0: false, 1000: false, 99999: false, 100000: true, defaultGuestUIDBase: true,
		1<<31 - guestUIDs: true, 1<<31 - guestUIDs + 1: false, 1 << 32: false} {
		if err := checkGuestUIDBase(base); (err == nil) != ok {
			t.Errorf("checkGuestUIDBase(%d) = %v, want ok %v", base, err, ok)
		}
	}
}

// TestFreeUID: a new server gets the lowest uid of the range that no
// server of the driver has and no running process has.
func TestFreeUID(t *testing.T) {
	t.Parallel()
	me := os.Getuid() // a uid some process (this one) runs as
	d := &Driver{uidBase: me, servers: map[string]*server{}}
	for i, uid := range []int{me + 1, me + 3} {
		d.servers[strconv.Itoa(i)] = &server{rec: serverRecord{UID: uid}}
	}
	if got, err := d.freeUIDLocked(); err != nil || got != me+2 {
		t.Fatalf("freeUIDLocked = %d, %v; want %d (%d runs, %d and %d are taken)", got, err, me+2, me, me+1, me+3)
	}
	d = &Driver{uidBase: defaultGuestUIDBase, servers: map[string]*server{}}
	for i := range guestUIDs {
		d.servers[strconv.Itoa(i)] = &server{rec: serverRecord{UID: defaultGuestUIDBase + i}}
	}
	if got, err := d.freeUIDLocked(); err == nil {
		t.Fatalf("freeUIDLocked with every uid taken = %d", got)
	}
}

// TestRunAsArg: QEMU drops to the server's own uid and the QEMU user's
// group.
func TestRunAsArg(t *testing.T) {
	t.Parallel()
	d := &Driver{cfg: Config{Dir: t.TempDir()}, accel: "tcg", runas: "ecsd-qemu", gid: 4242}
	args := d.qemuArgs(serverRecord{ID: "s", VCPUs: 1, RAMMB: 256, DiskID: "vol-s", Port: 2222, UID: defaultGuestUIDBase + 7}, false)
	i := slices.Index(args, "-runas")
	if i < 0 || i+1 == len(args) || args[i+1] != strconv.Itoa(defaultGuestUIDBase+7)+":4242" {
		t.Fatalf("qemu args %v, want -runas %d:4242", args, defaultGuestUIDBase+7)
	}
}
