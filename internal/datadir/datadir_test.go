package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/client"
)

func TestCreateAndOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "data")
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open of a missing dir: %v", err)
	}
	d, created, err := Create(path)
	if err != nil || !created {
		t.Fatalf("Create: created=%v %v", created, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", st.Mode().Perm())
	}
	if _, created, err := Create(path); err != nil || created {
		t.Errorf("Create again: created=%v %v", created, err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "not an ecsd data dir") {
		t.Errorf("Open without a database: %v", err)
	}
	os.WriteFile(d.DBPath(), nil, 0o600)
	if _, err := Open(path); err != nil {
		t.Errorf("Open: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, _, err := Create(file); err == nil {
		t.Error("Create on a file: no error")
	}
}

func TestDriverRecord(t *testing.T) {
	t.Parallel()
	d := Dir{Path: t.TempDir()}
	if drv, err := d.Driver(); drv != "" || err != nil {
		t.Fatalf("Driver of a new dir: %q %v", drv, err)
	}
	if err := d.CheckDriver("qemu"); err != nil {
		t.Errorf("CheckDriver on a new dir: %v", err)
	}
	if err := d.ClaimDriver("sim"); err != nil {
		t.Fatal(err)
	}
	if err := d.ClaimDriver("sim"); err != nil {
		t.Errorf("ClaimDriver of the same driver: %v", err)
	}
	var mismatch *DriverMismatchError
	for _, err := range []error{d.CheckDriver("qemu"), d.ClaimDriver("qemu")} {
		if !errors.As(err, &mismatch) || mismatch.Recorded != "sim" || mismatch.Requested != "qemu" {
			t.Errorf("another driver: %v", err)
		}
	}
	if drv, _ := d.Driver(); drv != "sim" {
		t.Errorf("driver after a refused claim: %q", drv)
	}
}

func TestCredentialsFile(t *testing.T) {
	t.Parallel()
	d := Dir{Path: t.TempDir()}
	if err := d.SetCredentialsEndpoint("http://x", ""); err != nil {
		t.Errorf("SetCredentialsEndpoint without a file: %v", err)
	}
	if _, err := os.Stat(d.CredentialsPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SetCredentialsEndpoint made a file: %v", err)
	}
	c := client.CredentialsFile{AccessKey: "AK", SecretKey: "SK", ProjectID: "p", UserID: "u", Endpoint: "http://127.0.0.1:1"}
	if err := d.WriteCredentials(c); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(d.CredentialsPath()); st.Mode().Perm() != 0o600 {
		t.Errorf("credentials.json mode %v, want 0600", st.Mode().Perm())
	}
	if err := d.SetCredentialsEndpoint("https://127.0.0.1:2", ""); err != nil {
		t.Fatal(err)
	}
	got, ok, err := d.ReadCredentials()
	c.Endpoint = "https://127.0.0.1:2"
	if !ok || err != nil || got != c {
		t.Errorf("ReadCredentials: %+v ok=%v %v, want %+v", got, ok, err, c)
	}
	if left, _ := filepath.Glob(filepath.Join(d.Path, "*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestLock(t *testing.T) {
	t.Parallel()
	d := Dir{Path: t.TempDir()}
	unlock, err := d.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lock(); err == nil || !strings.Contains(err.Error(), "in use by another ecsd") {
		t.Errorf("second Lock: %v", err)
	}
	unlock()
	unlock2, err := d.Lock()
	if err != nil {
		t.Errorf("Lock after unlock: %v", err)
	} else {
		unlock2()
	}
}
