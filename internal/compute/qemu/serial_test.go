package qemu

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// consoleStream is what a chatty guest prints: numbered lines, some longer
// than others, and now and then a run without a newline.
func consoleStream(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", i%97))
		if i%50 == 0 {
			b.WriteString(strings.Repeat("-", 3000)) // a long partial line
		}
	}
	return b.Bytes()[:n]
}

// checkRing checks the ring log invariants after written bytes of stream:
// the file is at most max bytes, is a suffix of what was written, and
// keeps at least max/2 bytes less one line (or everything when less was
// written).
func checkRing(t *testing.T, path string, max int64, stream []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) > max {
		t.Fatalf("after %d bytes written the log has %d bytes, cap %d", len(stream), len(got), max)
	}
	if !bytes.HasSuffix(stream, got) {
		t.Fatalf("after %d bytes written the log (%d bytes) is not the end of the output", len(stream), len(got))
	}
	if int64(len(stream)) <= max/2 {
		if len(got) != len(stream) {
			t.Fatalf("log has %d of %d bytes written, below half the cap", len(got), len(stream))
		}
		return
	}
	// Below max/2, what was dropped beyond the last max/2 bytes is the
	// start of a line cut in the middle: it ends with its newline and has
	// no other.
	if int64(len(got)) < max/2 {
		cut := stream[int64(len(stream))-max/2 : len(stream)-len(got)]
		if i := bytes.IndexByte(cut, '\n'); i != len(cut)-1 {
			t.Fatalf("log has %d bytes, below half the cap %d, and dropped %q beyond it", len(got), max/2, cut)
		}
	}
}

func TestRingLogCap(t *testing.T) {
	t.Parallel()
	const max = 8 << 10
	stream := consoleStream(20 * max)
	for _, chunk := range []int{1, 7, 100, 4095, max / 2, max / 2 * 3, 3 * max} {
		t.Run(fmt.Sprint("chunk", chunk), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "serial.log")
			r, err := openRingLog(path, max, true)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for off := 0; off < len(stream); off += chunk {
				end := min(off+chunk, len(stream))
				if n, err := r.Write(stream[off:end]); err != nil || n != end-off {
					t.Fatalf("Write = %d, %v", n, err)
				}
				if chunk > 50 || off%(97*chunk) == 0 {
					checkRing(t, path, max, stream[:end])
				}
			}
			checkRing(t, path, max, stream)
		})
	}
}

// TestRingLogReopen checks that a reattaching driver appends within the
// same cap (and cuts a file left larger than it), and that a new boot
// starts an empty log.
func TestRingLogReopen(t *testing.T) {
	t.Parallel()
	const max = 4 << 10
	path := filepath.Join(t.TempDir(), "serial.log")
	stream := consoleStream(5 * max)
	if err := os.WriteFile(path, stream[:3*max], 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := openRingLog(path, max, false)
	if err != nil {
		t.Fatal(err)
	}
	checkRing(t, path, max, stream[:3*max])
	if _, err := r.Write(stream[3*max:]); err != nil {
		t.Fatal(err)
	}
	r.Close()
	checkRing(t, path, max, stream)

	r, err = openRingLog(path, max, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Write([]byte("boot 2\n"))
	if got, _ := os.ReadFile(path); string(got) != "boot 2\n" {
		t.Fatalf("log of a new boot is %q", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", st.Mode().Perm())
	}
}

// TestCopySerialCap streams a console of 40 times the cap through a unix
// socket, as QEMU's chardev does, and checks the log stays capped and ends
// with the last line.
func TestCopySerialCap(t *testing.T) {
	t.Parallel()
	const max = 16 << 10
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stream := append(consoleStream(40*max), "LAST LINE\n"...)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Write(stream)
		c.Close()
	}()
	c, err := net.Dial("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	path := filepath.Join(dir, "serial.log")
	r, err := openRingLog(path, max, true)
	if err != nil {
		t.Fatal(err)
	}
	copyRing(r, c)
	r.Close()
	checkRing(t, path, max, stream)
	if b, _ := os.ReadFile(path); !bytes.HasSuffix(b, []byte("LAST LINE\n")) {
		t.Errorf("log does not end with the last line: %q", b[len(b)-min(len(b), 40):])
	}
}

var _ io.Writer = (*ringLog)(nil)
