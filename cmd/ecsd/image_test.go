package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/testd"
)

// mkImage writes a raw disk image: an ext4 filesystem on the whole disk
// holding /etc/shadow and /etc/os-release, as an importable Linux image.
func mkImage(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	files := map[string]string{
		"etc/shadow":     "root:*:19000:0:99999:7:::\n",
		"etc/os-release": "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Join(tree, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "debian.raw")
	if out, err := exec.Command(testd.Tool("mke2fs"), "-q", "-F", "-t", "ext4", "-d", tree, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v %s", err, out)
	}
	return img
}

// qemuDataDir is the data dir of a qemu ecsd started and stopped once.
func qemuDataDir(t *testing.T) string {
	t.Helper()
	testd.RequireQEMU(t)
	cfg := testConfig(t, "qemu")
	startAndStop(t, cfg)
	return cfg.DataDir
}

// storedImages lists the files of the data dir's image store.
func storedImages(t *testing.T, dataDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "qemu", "images"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// An import that cannot be done names the file and the reason, exits 1,
// and leaves nothing behind: no catalog row, no stored file.
func TestImageImportErrors(t *testing.T) {
	t.Parallel()
	dataDir := qemuDataDir(t)
	good := mkImage(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.qcow2")
	loop := filepath.Join(dir, "loop.qcow2")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("this is not a disk image\n"), 0o644)
	empty := filepath.Join(dir, "empty.raw")
	os.WriteFile(empty, nil, 0o644)
	vmdk := filepath.Join(dir, "disk.vmdk")
	if out, err := exec.Command(testd.Tool("qemu-img"), "create", "-q", "-f", "vmdk", vmdk, "8M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v %s", err, out)
	}
	noRead := filepath.Join(dir, "noread.raw")
	os.WriteFile(noRead, []byte("x"), 0o000)

	tests := []struct {
		name  string
		flags []string
		file  string
		want  string
	}{
		{"missing", nil, missing, missing + " does not exist"},
		{"a directory", nil, dir, dir + " is a directory"},
		{"unreadable (symlink loop)", nil, loop, loop + " is not readable: too many levels of symbolic links"},
		{"not an image", nil, text, text + " is not a disk image: it has neither a partition table nor a filesystem"},
		{"empty", nil, empty, empty + " is empty"},
		{"refused format", nil, vmdk, vmdk + ` cannot be imported: image format "vmdk" is not qcow2 or raw`},
		{"missing kernel", []string{"--kernel", missing}, good, "kernel " + missing + " does not exist"},
		{"kernel is a directory", []string{"--kernel", dir}, good, "kernel " + dir + " is a directory"},
		{"missing initrd", []string{"--kernel", good, "--initrd", missing}, good, "initrd " + missing + " does not exist"},
		{"bad OS type", []string{"--os-type", "BeOS"}, good, `OS type "BeOS" is not Linux or Windows`},
		{"contradicted OS type", []string{"--os-type", "Windows"}, good, "the image holds Linux (Debian GNU/Linux 12 (bookworm)), not Windows"},
	}
	if os.Geteuid() != 0 { // root reads a 0000 file
		tests = append(tests, struct {
			name  string
			flags []string
			file  string
			want  string
		}{"unreadable (mode 0000)", nil, noRead, noRead + " is not readable: permission denied"})
	}
	for _, tt := range tests {
		args := append([]string{"image", "import", "--data-dir", dataDir, "--name", tt.name}, tt.flags...)
		code, out, errOut := ecsd(t, nil, append(args, tt.file)...)
		if code != 1 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", tt.name, code, out, errOut, tt.want)
		}
	}
	if files := storedImages(t, dataDir); len(files) != 0 {
		t.Errorf("failed imports left files in the image store: %v", files)
	}
	cfg := testConfig(t, "qemu")
	cfg.DataDir = dataDir
	startDaemon(t, cfg)
	if imgs, err := tenant(t, dataDir, nil).ListImages(t.Context()); err != nil || len(imgs) != 0 {
		t.Errorf("images after failed imports: %v, %v", imgs, err)
	}
}

// Imports go into a qemu data dir that exists.
func TestImageImportDataDirChecks(t *testing.T) {
	t.Parallel()
	img := filepath.Join(t.TempDir(), "disk.raw")
	os.WriteFile(img, []byte("x"), 0o644)
	typo := filepath.Join(t.TempDir(), "dtaa")
	simDir := testConfig(t, "sim")
	startAndStop(t, simDir)
	for _, tt := range []struct{ dataDir, want string }{
		{typo, typo + " does not exist"},
		{t.TempDir(), "not an ecsd data dir"},
		{simDir.DataDir, "belongs to driver sim: images are imported into the data dir of a qemu ecsd"},
	} {
		code, _, errOut := ecsd(t, nil, "image", "import", "--data-dir", tt.dataDir, "--name", "x", img)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("import into %s: exit %d, %q; want %q", tt.dataDir, code, errOut, tt.want)
		}
	}
	if _, err := os.Stat(typo); err == nil {
		t.Errorf("image import made %s", typo)
	}
	if _, err := os.Stat(filepath.Join(simDir.DataDir, "qemu")); err == nil {
		t.Errorf("image import made a qemu store in a sim data dir")
	}
}

// An import while the daemon runs prints the image as JSON, and the
// daemon's API lists it at once.
func TestImageImportBesideRunningDaemon(t *testing.T) {
	t.Parallel()
	testd.RequireQEMU(t)
	cfg := testConfig(t, "qemu")
	startDaemon(t, cfg)
	file := mkImage(t)
	code, out, errOut := ecsd(t, map[string]string{"ECS_DATA_DIR": cfg.DataDir},
		"image", "import", "--name", "My Debian", file)
	if code != 0 {
		t.Fatalf("image import: exit %d, %s", code, errOut)
	}
	if errOut != "" {
		t.Errorf("image import wrote %q on stderr, which is not a terminal", errOut)
	}
	var printed map[string]any
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("image import printed %q: %v", out, err)
	}
	id, _ := printed["id"].(string)
	if id == "" || printed["name"] != "My Debian" || printed["__os_type"] != "Linux" || printed["__platform"] != "Debian" ||
		printed["disk_format"] != "raw" || printed["__ecsd_credential_injection"] != "supported" {
		t.Errorf("printed image: %v", printed)
	}
	imgs, err := tenant(t, cfg.DataDir, nil).ListImages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].ID != id || imgs[0].Name != "My Debian" {
		t.Errorf("images the daemon lists: %+v, want %s", imgs, id)
	}
	if files := storedImages(t, cfg.DataDir); len(files) != 1 || files[0] != id+".raw" {
		t.Errorf("image store: %v", files)
	}
	// A qcow2 image goes through the importer's own storage daemon, which
	// stops with the command.
	qcow := filepath.Join(t.TempDir(), "debian.qcow2")
	if out, err := exec.Command(testd.Tool("qemu-img"), "convert", "-O", "qcow2", file, qcow).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v %s", err, out)
	}
	code, out, errOut = ecsd(t, nil, "image", "import", "--data-dir", cfg.DataDir, "--name", "qcow", qcow)
	if code != 0 {
		t.Fatalf("image import of a qcow2: exit %d, %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &printed); err != nil || printed["disk_format"] != "qcow2" ||
		printed["__ecsd_credential_injection"] != "supported" {
		t.Errorf("image import of a qcow2 printed %q (%v)", out, err)
	}
	if left, _ := os.ReadDir(filepath.Join(cfg.DataDir, "qemu", "run")); len(left) != 0 {
		t.Errorf("the import left scratch space behind: %v", left)
	}
	// The operator's --os-type fills in what inspection cannot tell.
	blank := filepath.Join(t.TempDir(), "blank.raw")
	mbr := make([]byte, 1<<20)
	mbr[510], mbr[511] = 0x55, 0xaa
	mbr[446+4], mbr[446+8], mbr[446+12] = 0x07, 0x01, 0x80 // one NTFS partition, sectors 1..128
	os.WriteFile(blank, mbr, 0o644)
	code, out, errOut = ecsd(t, nil, "image", "import", "--data-dir", cfg.DataDir, "--name", "win", "--os-type", "windows", blank)
	if code != 0 {
		t.Fatalf("image import --os-type windows: exit %d, %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &printed); err != nil || printed["__os_type"] != "Windows" {
		t.Errorf("image import --os-type windows printed %q (%v)", out, err)
	}
	// --cloud-init overrides the detection (the test image has none).
	code, out, errOut = ecsd(t, nil, "image", "import", "--data-dir", cfg.DataDir, "--name", "ci", "--cloud-init=true", file)
	if code != 0 {
		t.Fatalf("image import --cloud-init=true: exit %d, %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &printed); err != nil || printed["__support_cloudinit"] != "true" ||
		printed["__support_fc_inject"] != "true" {
		t.Errorf("image import --cloud-init=true printed %q (%v)", out, err)
	}
	if code, _, errOut = ecsd(t, nil, "image", "import", "--data-dir", cfg.DataDir, "--name", "x", "--cloud-init=maybe", file); code != 2 ||
		!strings.Contains(errOut, "--cloud-init must be true or false") {
		t.Errorf("--cloud-init=maybe: exit %d, %s", code, errOut)
	}
}

func TestProgressBar(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	p := &progressBar{w: &buf, label: "disk.qcow2", total: 4 << 20, pct: -1}
	for n := int64(0); n <= 4<<20; n += 1 << 20 {
		p.set(n)
	}
	p.finish()
	got := buf.String()
	if !strings.HasPrefix(got, "\rdisk.qcow2 [") || !strings.Contains(got, "100% 4.0 MiB / 4.0 MiB, inspecting") || !strings.HasSuffix(got, "\n") {
		t.Errorf("progress bar drew %q", got)
	}
	// Not a terminal: nothing at all.
	var file strings.Builder
	q := newProgressBar(&file, "disk.qcow2")
	q.set(1)
	q.finish()
	if file.Len() != 0 {
		t.Errorf("progress on a non-terminal: %q", file.String())
	}
}
