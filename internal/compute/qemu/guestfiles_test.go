package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSetRootHash(t *testing.T) {
	t.Parallel()
	const h = "$6$salt$hash"
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{"busybox", "root:*:19000:0:99999:7:::\n", "root:" + h + ":20000:0:99999:7:::\n", false},
		{"debian, root not first", "daemon:*:1:0:99999:7:::\nroot:!:19000:0:99999:7:::\nbin:*:1::::::\n",
			"daemon:*:1:0:99999:7:::\nroot:" + h + ":20000:0:99999:7:::\nbin:*:1::::::\n", false},
		{"no trailing newline", "root:x:1", "root:" + h + ":20000", false},
		{"CRLF kept on other fields", "root:*:1:0\r\n", "root:" + h + ":20000:0\r\n", false},
		{"rootless user is not root", "rootless:*:1:0:::::\n", "", true},
		{"root with two fields", "root:*\n", "", true},
		{"no root", "daemon:*:1:0:::::\n", "", true},
		{"empty", "", "", true},
	}
	for _, tc := range tests {
		got, err := setRootHash([]byte(tc.in), h, 20000)
		if (err != nil) != tc.err || string(got) != tc.want {
			t.Errorf("%s: setRootHash = %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
	for _, bad := range []string{"", "$6$a:b", "$6$a\nb", "$1$md5", "*"} {
		if _, err := setRootHash([]byte("root:*:1:::::\n"), bad, 1); err == nil {
			t.Errorf("setRootHash accepted hash %q", bad)
		}
	}
}

func FuzzSetRootHash(f *testing.F) {
	f.Add([]byte("root:*:19000:0:99999:7:::\n"), "$6$s$h")
	f.Add([]byte("a:b\nroot:x:1\n"), "$6$x")
	f.Fuzz(func(t *testing.T, shadow []byte, hash string) {
		out, err := setRootHash(shadow, hash, 12345)
		if err != nil {
			return
		}
		// Only root's fields 2 and 3 change; the line count is kept.
		if got, _ := rootField(out, 1); got != hash {
			t.Fatalf("root hash %q, want %q", got, hash)
		}
		if bytes.Count(out, []byte("\n")) != bytes.Count(shadow, []byte("\n")) {
			t.Fatal("line count changed")
		}
		if day, _ := rootField(out, 2); day != "12345" {
			t.Fatalf("day %q", day)
		}
	})
}

func TestParseOSRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in                string
		want              osRelease
		platform, version string
	}{
		{"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
			osRelease{ID: "debian", Name: "Debian GNU/Linux", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
			"Debian", "Debian GNU/Linux 12 (bookworm)"},
		{"NAME='Some OS'\nID=someos\nVERSION_ID=3\n# ID=debian\n",
			osRelease{ID: "someos", Name: "Some OS", VersionID: "3"}, "Some OS", "Some OS 3"},
		{"NAME=\"A \\\"quoted\\\" name\"\n", osRelease{Name: `A "quoted" name`}, `A "quoted" name`, `A "quoted" name`},
		{"garbage\n=\nID\n", osRelease{}, "Other", ""},
	}
	for _, tc := range tests {
		got := parseOSRelease([]byte(tc.in))
		if got != tc.want || got.platform() != tc.platform || got.version() != tc.version {
			t.Errorf("parseOSRelease(%q) = %+v (%q, %q), want %+v (%q, %q)", tc.in, got, got.platform(), got.version(),
				tc.want, tc.platform, tc.version)
		}
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add([]byte("NAME=\"x\\\"\"\nID=debian\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := parseOSRelease(b)
		_ = r.platform()
		_ = r.version()
	})
}

func TestParseDebugfsStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     inodeStat
		err      bool
	}{
		{"regular", "Inode: 292   Type: regular    Mode:  0640   Flags: 0x80000\nGeneration: 0    Version: 0x00000000:00000000\nUser:     0   Group:    42   Project:     0   Size: 26\n",
			inodeStat{Mode: 0o100640, GID: 42}, false},
		{"directory", "Inode: 324   Type: directory    Mode:  0700   Flags: 0x80000\nUser:  1000   Group:  1000   Size: 4096\n",
			inodeStat{Mode: 0o040700, UID: 1000, GID: 1000}, false},
		{"fast symlink", "Inode: 14   Type: symlink    Mode:  0777   Flags: 0x0\nUser:     0   Group:     0   Project:     0   Size: 21\nFast link dest: \"../usr/lib/os-release\"\n",
			inodeStat{Mode: 0o120777, Link: "../usr/lib/os-release"}, false},
		{"slow symlink", "Inode: 13   Type: symlink    Mode:  0777   Flags: 0x80000\nUser:     0   Group:     0   Size: 90\nEXTENTS:\n(0):4386\n",
			inodeStat{Mode: 0o120777}, false},
		{"empty", "", inodeStat{}, true},
		{"bad mode", "Type: regular Mode: 9999 User: 0 Group: 0", inodeStat{}, true},
		{"unknown type", "Type: weird Mode: 0644 User: 0 Group: 0", inodeStat{}, true},
	}
	for _, tc := range tests {
		got, err := parseDebugfsStat(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("%s: %+v, %v; want %+v, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseDebugfsStat(f *testing.F) {
	f.Add("Inode: 14   Type: symlink    Mode:  0777\nUser: 0 Group: 0\nFast link dest: \"x\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseDebugfsStat(s)
		if err == nil && st.Mode&0o7777 > 0o7777 {
			t.Fatal("mode out of range")
		}
	})
}

func TestSplitSections(t *testing.T) {
	t.Parallel()
	cmds := []string{"stats -h", "stat /a", "dump /b /x"}
	out := "debugfs: stats -h\nFilesystem state: clean\ndebugfs: stat /a\nInode: 1\ndebugfs: dump /b /x\n"
	got, err := splitSections(out, cmds)
	if err != nil || len(got) != 3 || got[0] != "Filesystem state: clean\n" || got[1] != "Inode: 1\n" || got[2] != "" {
		t.Fatalf("splitSections = %q, %v", got, err)
	}
	if _, err := splitSections("debugfs: stats -h\n", cmds); err == nil {
		t.Fatal("missing sections accepted")
	}
}

func TestFSPaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"relative", "/a/../b", "/a b", "/a\"b", "/a\nb", "/a/"} {
		if fsPathOK(p) == nil {
			t.Errorf("fsPathOK(%q) accepted", p)
		}
	}
	if fsPathOK("/root/.ssh/authorized_keys") != nil {
		t.Error("fsPathOK refused a plain path")
	}
}

func TestHomeOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"root:x:0:0:root:/root:/bin/sh\n":      "/root",
		"root:x:0:0:root:/var/root:/bin/sh\n":  "/var/root",
		"root:x:0:0:root:/:/bin/sh\n":          "/root",
		"root:x:0:0:root:rel/dir:/bin/sh\n":    "/root",
		"root:x:0:0:root:/a b:/bin/sh\n":       "/root",
		"daemon:x:1:1::/usr/sbin:/bin/false\n": "/root",
		"":                                     "/root",
	} {
		if got := homeOf([]byte(in)); got != want {
			t.Errorf("homeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCPUHasVirt(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"processor\t: 0\nflags\t\t: fpu vme de pse vmx sse\n": true,
		"flags\t\t: fpu svm\n":                                true,
		"flags\t\t: fpu vmxnot sse\n":                         false,
		"model name\t: vmx\nflags\t\t: fpu\n":                 false,
		"":                                                    false,
	} {
		if got := cpuHasVirt(in); got != want {
			t.Errorf("cpuHasVirt(%q) = %v", in, got)
		}
	}
	for a, want := range map[string]string{"": "tcg", "tcg": "tcg", "kvm": "kvm"} {
		if got, err := chooseAccel(a); err != nil || got != want {
			t.Errorf("chooseAccel(%q) = %q, %v", a, got, err)
		}
	}
	if _, err := chooseAccel("hvf"); err == nil {
		t.Error("chooseAccel accepted hvf")
	}
}

func TestKeyedMutex(t *testing.T) {
	t.Parallel()
	var k keyedMutex
	var mu sync.Mutex
	inside := map[string]int{}
	var wg sync.WaitGroup
	for i := range 50 {
		keys := [][]string{{"disk:a", "server:s"}, {"server:s", "disk:b"}, {"disk:a"}, {"disk:b", "disk:b"}}[i%4]
		wg.Go(func() {
			unlock := k.lock(keys...)
			mu.Lock()
			for _, key := range compactStrings(append([]string(nil), keys...)) {
				if inside[key]++; inside[key] > 1 {
					t.Errorf("two holders of %s", key)
				}
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			for _, key := range compactStrings(append([]string(nil), keys...)) {
				inside[key]--
			}
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()
	if len(k.m) != 0 {
		t.Errorf("%d entries left in the lock table", len(k.m))
	}
}

// fakeQMP serves one QMP client on a unix socket: greeting, capabilities,
// then replies from answer (an event is sent before each reply).
func fakeQMP(t *testing.T, answer func(cmd string) string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "q.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
				dec := json.NewDecoder(c)
				for {
					var req struct {
						Execute string `json:"execute"`
					}
					if dec.Decode(&req) != nil {
						return
					}
					c.Write([]byte(`{"event": "SOMETHING", "timestamp": {}}` + "\n"))
					if req.Execute == "qmp_capabilities" {
						c.Write([]byte(`{"return": {}}` + "\n"))
						continue
					}
					c.Write([]byte(answer(req.Execute) + "\n"))
				}
			}()
		}
	}()
	return sock
}

func TestQMP(t *testing.T) {
	t.Parallel()
	sock := fakeQMP(t, func(cmd string) string {
		switch cmd {
		case "query-status":
			return `{"return": {"status": "running", "running": true}}`
		case "quit":
			return `{"return": {}}`
		}
		return `{"error": {"class": "CommandNotFound", "desc": "The command ` + cmd + ` has not been found"}}`
	})
	ctx := context.Background()
	out, err := qmpRun(ctx, sock, "query-status", nil)
	if err != nil || !strings.Contains(string(out), `"running"`) {
		t.Fatalf("query-status = %s, %v", out, err)
	}
	_, err = qmpRun(ctx, sock, "nope", map[string]any{"x": 1})
	var qe *qmpError
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Fatalf("unknown command: %v, want a CommandNotFound qmpError", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := qmpRun(cancelled, sock, "quit", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	// A long socket path is reached through /proc/self/fd.
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 90))
	if err := mkdirLink(long, sock); err != nil {
		t.Fatal(err)
	}
	if _, err := qmpRun(ctx, filepath.Join(long, "q.sock"), "query-status", nil); err != nil {
		t.Fatalf("long socket path: %v", err)
	}
}

// mkdirLink makes dir and a hard link to the socket sock in it (a unix
// socket can be reached by any of its names).
func mkdirLink(dir, sock string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Link(sock, filepath.Join(dir, filepath.Base(sock)))
}
