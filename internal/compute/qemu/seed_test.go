package qemu

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
)

func TestSeedImageRoundTrip(t *testing.T) {
	t.Parallel()
	seeds := []compute.Seed{
		{InstanceID: "i-1"},
		{
			InstanceID: "i-2", Hostname: "web-1",
			PasswordHash:   "$6$saltsalt$u.bK8EH15XPbqc77",
			AuthorizedKeys: "ssh-ed25519 AAAA a@b\nssh-rsa BBBB c@d\n",
			UserData:       []byte("#!/bin/sh\necho hi >/root/marker\n\xff\x00"),
		},
		{InstanceID: "i-3", UserData: bytes.Repeat([]byte("y"), compute.MaxUserData)},
	}
	for _, s := range seeds {
		img, err := seedImage(&s, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(img)%isoSector != 0 {
			t.Fatalf("image of %d bytes is not whole sectors", len(img))
		}
		got, err := parseSeed(img)
		if err != nil {
			t.Fatal(err)
		}
		if got.InstanceID != s.InstanceID || got.Hostname != s.Hostname || got.PasswordHash != s.PasswordHash ||
			got.AuthorizedKeys != s.AuthorizedKeys || !bytes.Equal(got.UserData, s.UserData) {
			t.Errorf("round trip of %+v gave %+v", s, *got)
		}
	}
}

// TestSeedFiles checks what the guest reads: the NoCloud file names, the
// user data untouched, the hash (and no plain text) in a #cloud-config.
func TestSeedFiles(t *testing.T) {
	t.Parallel()
	s := compute.Seed{InstanceID: "i-9", Hostname: "h", PasswordHash: "$6$abc$def",
		AuthorizedKeys: "ssh-ed25519 AAAA k\n", UserData: []byte("#cloud-config\nruncmd: [touch /x]\n")}
	img, err := seedImage(&s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	label, files, err := readISO(img)
	if err != nil {
		t.Fatal(err)
	}
	if label != "cidata" || len(files) != 3 {
		t.Fatalf("label %q, files %v", label, files)
	}
	if !bytes.Equal(files["user-data"], s.UserData) {
		t.Errorf("user-data = %q", files["user-data"])
	}
	var md map[string]string
	if err := json.Unmarshal(files["meta-data"], &md); err != nil || md["instance-id"] != "i-9" || md["local-hostname"] != "h" {
		t.Errorf("meta-data = %s (%v)", files["meta-data"], err)
	}
	vd := string(files["vendor-data"])
	for _, want := range []string{"#cloud-config\n", `"password": "$6$abc$def"`, `"type": "hash"`, `"expire": false`,
		`"ssh-ed25519 AAAA k"`, `"disable_root": false`} {
		if !strings.Contains(vd, want) {
			t.Errorf("vendor-data lacks %q:\n%s", want, vd)
		}
	}
	// The ISO's own names are upper-case with a version, as ISO 9660 has
	// them; Linux shows them lower-case without it.
	if !bytes.Contains(img, []byte("META-DATA;1")) || !bytes.Contains(img, []byte("VENDOR-DATA;1")) {
		t.Error("file identifiers are not META-DATA;1 and VENDOR-DATA;1")
	}
}

// TestSeedBlkid checks that util-linux, as cloud-init's ds-identify and
// NoCloud use it, finds an iso9660 filesystem labelled cidata.
func TestSeedBlkid(t *testing.T) {
	t.Parallel()
	blkid, err := exec.LookPath("blkid")
	if err != nil {
		blkid = "/sbin/blkid"
	}
	img, err := seedImage(&compute.Seed{InstanceID: "i-1", UserData: []byte("x")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "seed.iso")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(blkid, "-p", "-o", "export", p).Output()
	if err != nil {
		t.Fatalf("blkid: %v", err)
	}
	if !strings.Contains(string(out), "TYPE=iso9660") || !strings.Contains(string(out), "LABEL=cidata") {
		t.Fatalf("blkid says:\n%s", out)
	}
}

func TestISORefusesBadNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "A", "a/b", "a;1", strings.Repeat("a", 31)} {
		if _, err := writeISO("cidata", []isoFile{{Name: name}}, time.Now()); err == nil {
			t.Errorf("writeISO accepted file name %q", name)
		}
	}
	if _, err := writeISO("cidata", []isoFile{{Name: "a"}, {Name: "a"}}, time.Now()); err == nil {
		t.Error("writeISO accepted a name twice")
	}
}

// FuzzReadISO: a seed file read back never panics, whatever it holds.
func FuzzReadISO(f *testing.F) {
	img, err := seedImage(&compute.Seed{InstanceID: "i-1", UserData: []byte("x")}, time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(img)
	f.Add(img[:17*isoSector])
	f.Fuzz(func(t *testing.T, b []byte) {
		readISO(b)
		parseSeed(b)
	})
}
