package qemu

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/testd"
)

// These tests run the real tools (qemu-img, qemu-storage-daemon, debugfs)
// on small filesystems built with mke2fs; no guest boots.

const (
	hashA = "$6$Xk3v9Qb1LmN0pZrT$qMcjduoFWNaft6gyB4yfdyYz.jN6G1/BysoaVMiMcCYx8A67zwRMIOD51Ysa/YcsFmRfzlSJBFI6F1L8Xjlxn/"
	keyA  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEoLEUykN7/KNMoGU4h0IK/93KugUVlY9Js4mGZR2UC0 a@test\n"
)

func TestImportImageInspects(t *testing.T) {
	t.Parallel()
	testd.RequireQEMU(t)
	noShadow := []guestFile{{path: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\n"}}
	cloud := append(append([]guestFile{}, debianTree...), guestFile{path: "etc/cloud/cloud.cfg", content: "users: []\n"})
	tests := []struct {
		name  string
		image func(t *testing.T) string
		want  ecs.Image // inspection fields only
	}{
		{"whole-disk ext4, qcow2", func(t *testing.T) string {
			return toQcow2(t, mkfsImage(t, debianTree, 0, 64, true))
		}, ecs.Image{DiskFormat: "qcow2", PartitionTable: "none", RootFS: "ext4", OSType: "Linux", Platform: "Debian",
			OSVersion: "Debian GNU/Linux 12 (bookworm)", MinDiskGB: 1}},
		{"GPT, raw", func(t *testing.T) string {
			img := mkfsImage(t, debianTree, 1<<20, 64, true)
			writeGPT(t, img, 64<<11, [2]uint64{2048, 64<<11 - 34})
			return img
		}, ecs.Image{DiskFormat: "raw", PartitionTable: "gpt", RootFS: "ext4", OSType: "Linux", Platform: "Debian",
			OSVersion: "Debian GNU/Linux 12 (bookworm)", MinDiskGB: 1}},
		{"MBR, qcow2, cloud-init", func(t *testing.T) string {
			img := mkfsImage(t, cloud, 1<<20, 64, true)
			writeMBR(t, img, 0x83, 2048, 63<<11)
			return toQcow2(t, img)
		}, ecs.Image{DiskFormat: "qcow2", PartitionTable: "mbr", RootFS: "ext4", OSType: "Linux", Platform: "Debian",
			OSVersion: "Debian GNU/Linux 12 (bookworm)", CloudInit: true, MinDiskGB: 1}},
		{"xfs root is unsupported", func(t *testing.T) string {
			img := filepath.Join(t.TempDir(), "xfs.raw")
			if err := os.WriteFile(img, append([]byte("XFSB"), make([]byte, 1<<20)...), 0o644); err != nil {
				t.Fatal(err)
			}
			return img
		}, ecs.Image{DiskFormat: "raw", PartitionTable: "none", RootFS: "xfs", MinDiskGB: 1,
			Unsupported: "root filesystem xfs is not supported: credentials can be written into ext2, ext3 and ext4 only"}},
		{"no shadow is unsupported", func(t *testing.T) string {
			return mkfsImage(t, noShadow, 0, 16, false)
		}, ecs.Image{DiskFormat: "raw", PartitionTable: "none", RootFS: "ext4", MinDiskGB: 1,
			Unsupported: "the root filesystem has no /etc/shadow"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newTestDriver(t)
			src := tc.image(t)
			img, err := d.ImportImage(t.Context(), ImportSpec{ID: "img1", Name: "n", File: src})
			if err != nil {
				t.Fatal(err)
			}
			got := ecs.Image{DiskFormat: img.DiskFormat, PartitionTable: img.PartitionTable, RootFS: img.RootFS,
				OSType: img.OSType, Platform: img.Platform, OSVersion: img.OSVersion, CloudInit: img.CloudInit,
				Unsupported: img.Unsupported, MinDiskGB: img.MinDiskGB}
			if got != tc.want {
				t.Errorf("inspection\n got %+v\nwant %+v", got, tc.want)
			}
			// Stored read-only, with the source's checksum and size.
			st, err := os.Stat(img.File)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o444 || !strings.HasPrefix(img.File, d.cfg.Dir) {
				t.Errorf("stored %s mode %v, want 0444 in the image store", img.File, st.Mode().Perm())
			}
			b, _ := os.ReadFile(src)
			if sum := sha256.Sum256(b); img.Checksum != hexs(sum[:]) || img.SizeBytes != int64(len(b)) {
				t.Errorf("checksum %s size %d, want %x %d", img.Checksum, img.SizeBytes, sum, len(b))
			}
			// Importing again is idempotent; other content under the ID is a conflict.
			again, err := d.ImportImage(t.Context(), ImportSpec{ID: "img1", Name: "n", File: src})
			if err != nil || again.Checksum != img.Checksum {
				t.Errorf("import again: %v, checksum %s", err, again.Checksum)
			}
			other := filepath.Join(t.TempDir(), "other")
			os.WriteFile(other, append(b[:len(b):len(b)], 1), 0o644)
			if _, err := d.ImportImage(t.Context(), ImportSpec{ID: "img1", File: other}); !errors.Is(err, ecs.ErrConflict) {
				t.Errorf("import of other content under the same id: %v, want ErrConflict", err)
			}
		})
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestImportImageRefusesBackingFile(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	base := toQcow2(t, mkfsImage(t, debianTree, 0, 16, false))
	ov := filepath.Join(t.TempDir(), "ov.qcow2")
	if _, err := run(t.Context(), d.bins.qemuImg, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", ov); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ImportImage(t.Context(), ImportSpec{ID: "i", File: ov}); err == nil || !strings.Contains(err.Error(), "backing file") {
		t.Fatalf("import of a qcow2 with a backing file: %v, want refused", err)
	}
}

// TestApplyCredentials checks the injection on Debian's layout, whole-disk
// and partitioned: hash and day replaced, the rest of shadow kept with its
// mode and owner, ~/.ssh created 0700 and authorized_keys 0600, root-owned,
// the image itself untouched, the filesystem clean.
func TestApplyCredentials(t *testing.T) {
	t.Parallel()
	layouts := []struct {
		name  string
		image func(t *testing.T) string
		off   int64
	}{
		{"whole disk", func(t *testing.T) string { return toQcow2(t, mkfsImage(t, debianTree, 0, 64, true)) }, 0},
		{"GPT", func(t *testing.T) string {
			img := mkfsImage(t, debianTree, 1<<20, 64, true)
			writeGPT(t, img, 64<<11, [2]uint64{2048, 64<<11 - 34})
			return img
		}, 1 << 20},
	}
	for _, lay := range layouts {
		t.Run(lay.name, func(t *testing.T) {
			t.Parallel()
			d := newTestDriver(t)
			ctx := t.Context()
			img, err := d.ImportImage(ctx, ImportSpec{ID: "img", File: lay.image(t)})
			if err != nil {
				t.Fatal(err)
			}
			if img.Unsupported != "" {
				t.Fatalf("image unsupported: %s", img.Unsupported)
			}
			if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "d1", Image: img, SizeGB: 1}); err != nil {
				t.Fatal(err)
			}
			if c, err := d.ReadCredentials(ctx, "d1"); err != nil || c != (compute.Credentials{}) {
				t.Fatalf("fresh disk: %+v, %v; want no credentials", c, err)
			}
			creds := compute.Credentials{PasswordHash: hashA, AuthorizedKeys: keyA}
			if err := d.ApplyCredentials(ctx, "d1", creds); err != nil {
				t.Fatal(err)
			}
			if c, err := d.ReadCredentials(ctx, "d1"); err != nil || c != creds {
				t.Fatalf("ReadCredentials = %+v, %v; want %+v", c, err, creds)
			}

			// Look at the overlay's content through a raw copy.
			raw := filepath.Join(t.TempDir(), "flat.raw")
			if _, err := run(ctx, d.bins.qemuImg, "convert", "-O", "raw", d.diskPath("d1"), raw); err != nil {
				t.Fatal(err)
			}
			fs := d.openExtFS(raw, lay.off, t.TempDir())
			l, err := fs.look(ctx, []string{"/etc/shadow", "/root/.ssh", "/root/.ssh/authorized_keys"},
				[]string{"/etc/shadow"})
			if err != nil {
				t.Fatal(err)
			}
			days := itoa(time.Now().Unix() / 86400)
			wantShadow := "root:" + hashA + ":" + days + ":0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
			if got := string(l.Data["/etc/shadow"]); got != wantShadow {
				t.Errorf("shadow:\n%s\nwant:\n%s", got, wantShadow)
			}
			for p, want := range map[string]inodeStat{
				"/etc/shadow":                {Mode: 0o100640, UID: 0, GID: 42},
				"/root/.ssh":                 {Mode: 0o040700},
				"/root/.ssh/authorized_keys": {Mode: 0o100600},
			} {
				if got := l.Stat[p]; got != want {
					t.Errorf("%s: %+v, want %+v", p, got, want)
				}
			}
			if err := fs.check(ctx); err != nil {
				t.Error(err)
			}
			// The image is untouched.
			b, _ := os.ReadFile(img.File)
			if sum := sha256.Sum256(b); hexs(sum[:]) != img.Checksum {
				t.Error("the image file changed")
			}
		})
	}
}

func TestApplyCredentialsErrors(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	ctx := t.Context()
	img, err := d.ImportImage(ctx, ImportSpec{ID: "img", File: mkfsImage(t, debianTree, 0, 16, false)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "d1", Image: img}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"plain", "$6$salt$ha:sh", "$6$salt$hash\nroot::0:0:::::", "$1$md5$hash"} {
		if err := d.ApplyCredentials(ctx, "d1", compute.Credentials{PasswordHash: bad}); err == nil {
			t.Errorf("ApplyCredentials(hash %q) succeeded, want refused", bad)
		}
	}
	if c, err := d.ReadCredentials(ctx, "d1"); err != nil || c != (compute.Credentials{}) {
		t.Errorf("after refused calls: %+v, %v; want nothing written", c, err)
	}

	// A disk of an unsupported image is refused with ErrUnsupported.
	xfs := filepath.Join(t.TempDir(), "xfs.raw")
	os.WriteFile(xfs, append([]byte("XFSB"), make([]byte, 1<<20)...), 0o644)
	ximg, err := d.ImportImage(ctx, ImportSpec{ID: "xfs", File: xfs})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "d2", Image: ximg}); err != nil {
		t.Fatal(err)
	}
	if err := d.ApplyCredentials(ctx, "d2", compute.Credentials{AuthorizedKeys: keyA}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ApplyCredentials on xfs: %v, want ErrUnsupported", err)
	}
}

func TestCreateDiskIsAnOverlay(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	ctx := t.Context()
	img, err := d.ImportImage(ctx, ImportSpec{ID: "img", File: toQcow2(t, mkfsImage(t, debianTree, 0, 64, false))})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "d1", Image: img, SizeGB: 3}); err != nil {
		t.Fatal(err)
	}
	out, err := run(ctx, d.bins.qemuImg, "info", "--output=json", d.diskPath("d1"))
	if err != nil {
		t.Fatal(err)
	}
	info := string(out)
	for _, want := range []string{`"backing-filename": "` + img.File + `"`, `"virtual-size": 3221225472`, `"format": "qcow2"`} {
		if !strings.Contains(info, want) {
			t.Errorf("qemu-img info of the disk lacks %s:\n%s", want, info)
		}
	}
	// Garbage collection keeps what keep says and what a server uses.
	for _, id := range []string{"d2", "d3"} {
		if err := d.CreateDisk(ctx, compute.DiskSpec{ID: id, Image: img}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.CreateServer(ctx, compute.ServerSpec{ID: "s1", DiskID: "d3", Image: img}); err != nil {
		t.Fatal(err)
	}
	removed, err := d.CollectGarbage(ctx, func(id string) bool { return id == "d1" })
	if err != nil || len(removed) != 1 || removed[0] != "d2" {
		t.Errorf("CollectGarbage removed %v, %v; want [d2]", removed, err)
	}
	for id, want := range map[string]bool{"d1": true, "d2": false, "d3": true} {
		if _, err := os.Stat(d.diskPath(id)); (err == nil) != want {
			t.Errorf("disk %s exists: %v, want %v", id, err == nil, want)
		}
	}
}

// TestQcow2Overlay checks the overlays the driver writes itself against
// QEMU's own tools: consistent, backed by the image, same content.
func TestQcow2Overlay(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	ctx := t.Context()
	base := mkfsImage(t, debianTree, 0, 16, false)
	for _, tc := range []struct {
		file, format string
		size         int64
	}{
		{base, "raw", 16 << 20},
		{toQcow2(t, base), "qcow2", 16 << 20},
		{base, "raw", 5 << 40 / 2}, // 2.5 TiB: L1 table of 5120 entries
	} {
		ov := filepath.Join(t.TempDir(), "ov.qcow2")
		if err := writeQcow2Overlay(ov, tc.file, tc.format, tc.size); err != nil {
			t.Fatal(err)
		}
		if out, err := run(ctx, d.bins.qemuImg, "check", ov); err != nil {
			t.Errorf("qemu-img check of an overlay on %s: %v %s", tc.format, err, out)
		}
		out, err := run(ctx, d.bins.qemuImg, "info", "--output=json", ov)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"backing-filename": "` + tc.file + `"`, `"backing-filename-format": "` + tc.format + `"`,
			`"virtual-size": ` + itoa(tc.size) + `,`, `"format": "qcow2"`} {
			if !strings.Contains(string(out), want) {
				t.Errorf("qemu-img info lacks %s:\n%s", want, out)
			}
		}
		if tc.size == 16<<20 {
			if out, err := run(ctx, d.bins.qemuImg, "compare", "-f", "qcow2", "-F", tc.format, ov, tc.file); err != nil {
				t.Errorf("overlay differs from its backing file: %v %s", err, out)
			}
		}
	}
	if _, err := qcow2Overlay("/x", "raw", 5<<40); err == nil {
		t.Error("qcow2Overlay accepted a size whose L1 table needs two clusters")
	}
}

// TestApplyCredentialsDirtyFilesystem: a journal left by a guest that was
// not shut down cleanly is replayed first (as the kernel would); a
// filesystem marked with errors is refused and left alone.
func TestApplyCredentialsDirtyFilesystem(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name, debugfs string
		ok            bool
	}{
		{"needs recovery", "feature needs_recovery", true},
		{"errors", "ssv state 2", false},
	} {
		raw := mkfsImage(t, debianTree, 0, 16, false)
		debugfsW(t, raw, tc.debugfs+"\n")
		img, err := d.ImportImage(ctx, ImportSpec{ID: strings.ReplaceAll(tc.name, " ", "-"), File: raw})
		if err != nil {
			t.Fatal(err)
		}
		disk := "d-" + img.ID
		if err := d.CreateDisk(ctx, compute.DiskSpec{ID: disk, Image: img}); err != nil {
			t.Fatal(err)
		}
		creds := compute.Credentials{PasswordHash: hashA, AuthorizedKeys: keyA}
		err = d.ApplyCredentials(ctx, disk, creds)
		if (err == nil) != tc.ok {
			t.Fatalf("%s: ApplyCredentials: %v, want success %v", tc.name, err, tc.ok)
		}
		want := compute.Credentials{}
		if tc.ok {
			want = creds
		}
		if got, err := d.ReadCredentials(ctx, disk); err != nil || got != want {
			t.Errorf("%s: ReadCredentials = %+v, %v; want %+v", tc.name, got, err, want)
		}
	}
}

// TestConcurrentReinstalls reinstalls 20 stopped servers at once: every
// reinstall succeeds and each new disk holds exactly its own credentials.
func TestConcurrentReinstalls(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	ctx := t.Context()
	img, err := d.ImportImage(ctx, ImportSpec{ID: "img", File: toQcow2(t, mkfsImage(t, debianTree, 0, 64, true))})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		id := itoa(int64(i))
		if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "old" + id, Image: img}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateServer(ctx, compute.ServerSpec{ID: "s" + id, Image: img, DiskID: "old" + id}); err != nil {
			t.Fatal(err)
		}
	}
	creds := func(i int) compute.Credentials {
		return compute.Credentials{PasswordHash: hashA, AuthorizedKeys: strings.Replace(keyA, "a@test", "server-"+itoa(int64(i)), 1)}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := itoa(int64(i))
			steps := []func() error{
				func() error { return d.CreateDisk(ctx, compute.DiskSpec{ID: "new" + id, Image: img}) },
				func() error { return d.ApplyCredentials(ctx, "new"+id, creds(i)) },
				func() error { return d.DetachDisk(ctx, "s"+id, "old"+id) },
				func() error { return d.AttachDisk(ctx, "s"+id, "new"+id) },
				func() error { return d.DeleteDisk(ctx, "old"+id) },
			}
			for _, step := range steps {
				if errs[i] = step(); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := itoa(int64(i))
		if got, err := d.ReadCredentials(ctx, "new"+id); err != nil || got != creds(i) {
			t.Errorf("server %d: ReadCredentials = %+v, %v; want %+v", i, got, err, creds(i))
		}
		if err := d.DeleteDisk(ctx, "new"+id); !errors.Is(err, ecs.ErrConflict) {
			t.Errorf("server %d: the new disk is not attached (DeleteDisk: %v)", i, err)
		}
	}
}

// TestImportImageCloudInitOverride: ImportSpec.CloudInit overrides the
// detection either way.
func TestImportImageCloudInitOverride(t *testing.T) {
	t.Parallel()
	testd.RequireQEMU(t)
	d := newTestDriver(t)
	cloud := append(append([]guestFile{}, debianTree...), guestFile{path: "etc/cloud/cloud.cfg", content: "users: []\n"})
	yes, no := true, false
	for _, tc := range []struct {
		id       string
		tree     []guestFile
		override *bool
		want     bool
	}{
		{"plain", debianTree, nil, false},
		{"plain-forced", debianTree, &yes, true},
		{"cloud", cloud, nil, true},
		{"cloud-off", cloud, &no, false},
	} {
		img, err := d.ImportImage(t.Context(), ImportSpec{ID: tc.id, File: mkfsImage(t, tc.tree, 0, 16, false), CloudInit: tc.override})
		if err != nil {
			t.Fatal(err)
		}
		if img.CloudInit != tc.want {
			t.Errorf("%s: CloudInit = %v, want %v", tc.id, img.CloudInit, tc.want)
		}
	}
}
