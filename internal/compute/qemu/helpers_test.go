package qemu

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ecsproject/ecsd/internal/testd"
)

func newTestDriver(t testing.TB) *Driver {
	t.Helper()
	testd.RequireQEMU(t)
	d, err := New(context.Background(), Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// guestFile is a file of a filesystem built by mkfsImage.
type guestFile struct {
	path    string // relative to the root, no leading slash
	content string
	mode    os.FileMode // 0644 when 0
	link    string      // a symbolic link to link when not ""
	dir     bool
}

// debianTree is a root filesystem laid out like Debian's: shadow 0640
// root:shadow(42), os-release a symlink, no /root/.ssh.
var debianTree = []guestFile{
	{path: "etc/passwd", content: "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"},
	{path: "etc/shadow", content: "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n", mode: 0o640},
	{path: "usr/lib/os-release", content: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"},
	{path: "etc/os-release", link: "../usr/lib/os-release"},
	{path: "root", dir: true, mode: 0o700},
}

// mkfsImage writes an ext4 filesystem holding files into a raw file of
// sizeMB at offset (0 for a whole-disk filesystem), and returns its path.
// Files are owned by the builder; shadow gets gid 42 afterwards when
// shadowGID is set.
func mkfsImage(t testing.TB, files []guestFile, offset int64, sizeMB int, shadowGID bool) string {
	t.Helper()
	tree := t.TempDir()
	for _, f := range files {
		p := filepath.Join(tree, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		var err error
		switch {
		case f.dir:
			err = os.MkdirAll(p, mode)
			if err == nil {
				err = os.Chmod(p, mode)
			}
		case f.link != "":
			err = os.Symlink(f.link, p)
		default:
			err = os.WriteFile(p, []byte(f.content), mode)
			if err == nil {
				err = os.Chmod(p, mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "disk.raw")
	fsMB := sizeMB - int(offset>>20) - 1
	if offset == 0 {
		fsMB = sizeMB
	}
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(sizeMB)<<20); err != nil {
		t.Fatal(err)
	}
	args := []string{"-q", "-F", "-t", "ext4", "-b", "4096", "-E", "root_owner=0:0"}
	if offset != 0 {
		args = append(args, "-E", "offset="+itoa(offset))
	}
	args = append(args, "-d", tree, img, itoa(int64(fsMB))+"M")
	if out, err := exec.Command(sbin("mke2fs"), args...).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	dev := img
	if offset != 0 {
		dev += "?offset=" + itoa(offset)
	}
	cmds := ""
	for _, f := range files {
		cmds += "sif /" + f.path + " uid 0\nsif /" + f.path + " gid 0\n"
	}
	if shadowGID {
		cmds += "sif /etc/shadow gid 42\n"
	}
	debugfsW(t, dev, cmds)
	return img
}

func debugfsW(t testing.TB, dev, cmds string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(cmds), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sbin("debugfs"), "-w", "-f", f, dev).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v: %s", err, out)
	}
}

func sbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/sbin/" + name
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// writeMBR writes an MBR partition table with one partition of type typ.
func writeMBR(t testing.TB, img string, typ byte, startLBA, sectors uint32) {
	t.Helper()
	mbr := make([]byte, 512)
	e := mbr[446:]
	e[4] = typ
	binary.LittleEndian.PutUint32(e[8:], startLBA)
	binary.LittleEndian.PutUint32(e[12:], sectors)
	mbr[510], mbr[511] = 0x55, 0xAA
	writeAt(t, img, mbr, 0)
}

// writeGPT writes a protective MBR and a GPT whose partitions are the
// given [first,last] LBA ranges (Linux filesystem type). Only the primary
// header is written: the driver does not read the backup.
func writeGPT(t testing.TB, img string, diskSectors uint64, parts ...[2]uint64) {
	t.Helper()
	writeMBR(t, img, 0xEE, 1, uint32(min(diskSectors-1, 0xFFFFFFFF)))
	entries := make([]byte, 128*128)
	linux := []byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4}
	for i, p := range parts {
		e := entries[i*128:]
		copy(e, linux)
		e[16] = byte(i + 1) // unique GUID, any non-zero value
		binary.LittleEndian.PutUint64(e[32:], p[0])
		binary.LittleEndian.PutUint64(e[40:], p[1])
	}
	h := make([]byte, 512)
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint32(h[8:], 0x00010000)
	binary.LittleEndian.PutUint32(h[12:], 92)
	binary.LittleEndian.PutUint64(h[24:], 1)
	binary.LittleEndian.PutUint64(h[32:], diskSectors-1)
	binary.LittleEndian.PutUint64(h[40:], 34)
	binary.LittleEndian.PutUint64(h[48:], diskSectors-34)
	binary.LittleEndian.PutUint64(h[72:], 2)
	binary.LittleEndian.PutUint32(h[80:], 128)
	binary.LittleEndian.PutUint32(h[84:], 128)
	binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(entries))
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
	writeAt(t, img, h, 512)
	writeAt(t, img, entries, 1024)
}

func writeAt(t testing.TB, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// toQcow2 converts a raw image to qcow2 next to it.
func toQcow2(t testing.TB, raw string) string {
	t.Helper()
	out := raw + ".qcow2"
	if b, err := exec.Command("qemu-img", "convert", "-O", "qcow2", raw, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, b)
	}
	return out
}
