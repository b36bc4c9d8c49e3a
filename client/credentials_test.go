package client

import (
	"context"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredentialsFileRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials.json")
	// An older, world-readable file is replaced by a private one.
	writeFile(t, path, `{"access_key":"old"}`)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	want := CredentialsFile{AccessKey: "AK", SecretKey: "SK", ProjectID: "P", UserID: "U", Endpoint: "https://127.0.0.1:8443", CACert: "tls.crt"}
	if err := WriteCredentialsFile(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCredentialsFile(path)
	if err != nil || got != want {
		t.Fatalf("read back %+v, %v; want %+v", got, err, want)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	raw, _ := os.ReadFile(path)
	for _, field := range []string{`"access_key": "AK"`, `"secret_key": "SK"`, `"project_id": "P"`, `"user_id": "U"`,
		`"endpoint": "https://127.0.0.1:8443"`, `"ca_cert": "tls.crt"`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("file lacks %s:\n%s", field, raw)
		}
	}
	// Without a CA the field is left out, as in files older clients wrote.
	want.CACert = ""
	if err := WriteCredentialsFile(path, want); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); strings.Contains(string(raw), "ca_cert") {
		t.Errorf("empty ca_cert written:\n%s", raw)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("dir holds %v, want only credentials.json", entries)
	}
}

func TestWriteCredentialsFileFailureLeavesNoTemporary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The target is a directory: the rename fails after the temporary file
	// was written.
	target := filepath.Join(dir, "credentials.json")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(target, "keep"), "x")
	if err := WriteCredentialsFile(target, CredentialsFile{AccessKey: "AK"}); err == nil {
		t.Fatal("write over a non-empty directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("dir holds %v, want no temporary file left", entries)
	}
	if err := WriteCredentialsFile(filepath.Join(dir, "missing", "credentials.json"), CredentialsFile{}); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestReadCredentialsFileMissing(t *testing.T) {
	t.Parallel()
	_, err := ReadCredentialsFile(filepath.Join(t.TempDir(), "none.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
}

// A client trusts a TLS endpoint whose CA is in CACertFile, and only then.
func TestCACertFile(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(&fakeAPI{t: t, replies: []reply{ok(`{"images":[{"id":"i1"}]}`)}})
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	notPEM := filepath.Join(dir, "not.pem")
	writeFile(t, notPEM, "hello")
	cfg := Config{Endpoint: srv.URL, AccessKey: testAK, SecretKey: testSK, ProjectID: testPID}

	withCA := cfg
	withCA.CACertFile = ca
	images, err := New(withCA).ListImages(context.Background())
	if err != nil || len(images) != 1 || images[0].ID != "i1" {
		t.Fatalf("with the CA: %+v, %v", images, err)
	}

	tests := []struct {
		name, caFile, wantErr string
	}{
		{"system roots only", "", "certificate signed by unknown authority"},
		{"missing CA file", filepath.Join(dir, "none.pem"), "CA certificate file: open"},
		{"CA file without a certificate", notPEM, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		c := cfg
		c.CACertFile = tt.caFile
		if _, err := New(c).ListImages(context.Background()); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}
