package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/datadir"
	"github.com/ecsproject/ecsd/internal/testd"
)

// A port in use (or any failure at start) leaves no half-made data dir.
func TestStartPortClashLeavesNoDataDir(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t, "sim")
	cfg.Listen = busy.Addr().String()
	if _, err := start(t.Context(), cfg, quietLog()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start on a port in use: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir after a failed start: %v, want none", err)
	}

	// A failure after the data dir was made removes it too.
	cfg = testConfig(t, "sim")
	cfg.SimFaults = "start=explode" // refused by the driver, after the store is open
	if _, err := start(t.Context(), cfg, quietLog()); err == nil {
		t.Fatal("start with bad faults: no error")
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir after a failed start: %v, want none", err)
	}
}

// A data dir belongs to the driver it was first started with.
func TestDriverPerDataDir(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sim")
	startAndStop(t, cfg)
	startAndStop(t, cfg) // the same driver again is fine
	other := cfg
	other.Driver = "qemu"
	_, err := start(t.Context(), other, quietLog())
	var mismatch *datadir.DriverMismatchError
	if !errors.As(err, &mismatch) || mismatch.Recorded != "sim" || mismatch.Requested != "qemu" {
		t.Fatalf("qemu start on a sim data dir: %v", err)
	}
	for _, want := range []string{cfg.DataDir, "belongs to driver sim, not qemu", "--driver sim", "another --data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "qemu")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused start made driver state: %v", err)
	}
	// Through the command line: exit 1 with the message.
	code, _, errOut := ecsd(t, nil, "--data-dir", cfg.DataDir, "--driver", "qemu", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "belongs to driver sim, not qemu") {
		t.Errorf("ecsd --driver qemu on a sim data dir: exit %d, %q", code, errOut)
	}
}

// With --tls-cert and --tls-key ecsd serves HTTPS, and credentials.json
// says https://; a restart without TLS says http:// again.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sim")
	c := selfSigned(t)
	cfg.TLSCert, cfg.TLSKey = c.CertFile, c.KeyFile
	d := startDaemon(t, cfg)
	if !strings.HasPrefix(d.endpoint, "https://127.0.0.1:") {
		t.Fatalf("endpoint %q", d.endpoint)
	}
	creds, _, err := datadir.Dir{Path: cfg.DataDir}.ReadCredentials()
	if err != nil || creds.Endpoint != d.endpoint {
		t.Errorf("credentials.json endpoint %q (%v), want %q", creds.Endpoint, err, d.endpoint)
	}
	hc := &http.Client{Timeout: time.Minute, Transport: c.Transport()}
	resp, err := hc.Get(d.endpoint + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "ok") || resp.TLS == nil {
		t.Errorf("GET /healthz over HTTPS: %d %s", resp.StatusCode, body)
	}
	// A signed API call over TLS.
	if imgs, err := tenant(t, cfg.DataDir, hc).ListImages(t.Context()); err != nil || len(imgs) == 0 {
		t.Errorf("list images over HTTPS: %d images, %v", len(imgs), err)
	}
	// Plain HTTP to the TLS port is not served.
	plain := "http://" + strings.TrimPrefix(d.endpoint, "https://")
	if resp, err := http.Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP to the TLS port: 200")
		}
	}
}

func TestTLSEndpointFollowsRestarts(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sim")
	startAndStop(t, cfg)
	endpoint := func() string {
		c, _, err := datadir.Dir{Path: cfg.DataDir}.ReadCredentials()
		if err != nil {
			t.Fatal(err)
		}
		return c.Endpoint
	}
	if !strings.HasPrefix(endpoint(), "http://") {
		t.Errorf("endpoint without TLS: %q", endpoint())
	}
	withTLS := cfg
	c := selfSigned(t)
	withTLS.TLSCert, withTLS.TLSKey = c.CertFile, c.KeyFile
	startAndStop(t, withTLS)
	if !strings.HasPrefix(endpoint(), "https://") {
		t.Errorf("endpoint after a restart with TLS: %q", endpoint())
	}
	startAndStop(t, cfg)
	if !strings.HasPrefix(endpoint(), "http://") {
		t.Errorf("endpoint after a restart without TLS: %q", endpoint())
	}
}

// Unusable TLS files are refused before any state is made, naming them.
func TestServeBadTLSFiles(t *testing.T) {
	t.Parallel()
	c := selfSigned(t)
	cert, key := c.CertFile, c.KeyFile
	junk := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(junk, []byte("not a PEM file\n"), 0o600)
	for _, tt := range []struct{ cert, key, want string }{
		{filepath.Join(t.TempDir(), "missing.pem"), key, "missing.pem"},
		{cert, junk, "junk.pem"},
		{key, cert, "key.pem"}, // swapped
	} {
		cfg := testConfig(t, "sim")
		cfg.TLSCert, cfg.TLSKey = tt.cert, tt.key
		_, err := start(t.Context(), cfg, quietLog())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("cert %s key %s: %v, want an error naming %s", tt.cert, tt.key, err, tt.want)
		}
		if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("data dir after a refused start: %v", err)
		}
	}
}

// selfSigned makes a self-signed certificate for localhost, 127.0.0.1
// and ::1.
func selfSigned(t *testing.T) *testd.Cert {
	t.Helper()
	c, err := testd.NewCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCredentialsAdd(t *testing.T) {
	t.Parallel()
	// A missing data dir (a typo) is refused; nothing is made.
	typo := filepath.Join(t.TempDir(), "dtaa")
	code, out, errOut := ecsd(t, nil, "credentials", "add", "--data-dir", typo)
	if code != 1 || out != "" || !strings.Contains(errOut, typo+" does not exist") {
		t.Errorf("credentials add on a missing dir: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("credentials add made %s: %v", typo, err)
	}
	// So is a directory that is not a data dir.
	empty := t.TempDir()
	if code, _, errOut := ecsd(t, nil, "credentials", "add", "--data-dir", empty); code != 1 || !strings.Contains(errOut, "not an ecsd data dir") {
		t.Errorf("credentials add on an empty dir: exit %d, %q", code, errOut)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("credentials add wrote into a dir that is not a data dir: %v", entries)
	}

	// On a real data dir it prints a working credential of a new project,
	// with the daemon's endpoint.
	cfg := testConfig(t, "sim")
	d := startDaemon(t, cfg)
	code, out, errOut = ecsd(t, map[string]string{"ECS_DATA_DIR": cfg.DataDir}, "credentials", "add", "--project-name", "second")
	if code != 0 {
		t.Fatalf("credentials add: exit %d, %s", code, errOut)
	}
	var c client.CredentialsFile
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("credentials add printed %q: %v", out, err)
	}
	first, _, _ := datadir.Dir{Path: cfg.DataDir}.ReadCredentials()
	if c.AccessKey == "" || c.SecretKey == "" || c.ProjectID == first.ProjectID || c.Endpoint != d.endpoint {
		t.Errorf("new credential %+v (first project %s, endpoint %s)", c, first.ProjectID, d.endpoint)
	}
	cl := client.New(client.Config{Endpoint: c.Endpoint, AccessKey: c.AccessKey, SecretKey: c.SecretKey, ProjectID: c.ProjectID})
	if _, err := cl.ListKeypairs(t.Context()); err != nil {
		t.Errorf("a call signed with the new credential: %v", err)
	}
}

func TestEndpoint(t *testing.T) {
	t.Parallel()
	// The certificate names localhost, then 127.0.0.1.
	withTLS := &tls.Config{Certificates: []tls.Certificate{selfSigned(t).KeyPair}}
	for _, tt := range []struct {
		ip   string
		tls  *tls.Config
		want string
	}{
		{"127.0.0.1", nil, "http://127.0.0.1:8080"},
		{"::1", nil, "http://[::1]:8080"},
		{"0.0.0.0", nil, "http://127.0.0.1:8080"},
		{"::", nil, "http://127.0.0.1:8080"},
		{"192.0.2.7", withTLS, "https://192.0.2.7:8080"},
		{"::", withTLS, "https://localhost:8080"},
	} {
		if got := endpoint(&net.TCPAddr{IP: net.ParseIP(tt.ip), Port: 8080}, tt.tls); got != tt.want {
			t.Errorf("endpoint(%s, TLS %v) = %s, want %s", tt.ip, tt.tls != nil, got, tt.want)
		}
	}
}

// Plain HTTP off the loopback is refused before anything is made.
func TestRefusePlainHTTPOffLoopback(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	code, _, errOut := ecsd(t, map[string]string{"ECS_LISTEN": "0.0.0.0:0"}, "--data-dir", dir)
	if code != 2 || !strings.Contains(errOut, "ECS_LISTEN 0.0.0.0:0 is reachable from other machines") ||
		!strings.Contains(errOut, "--insecure-http") || !strings.Contains(errOut, "--tls-cert") {
		t.Errorf("ECS_LISTEN=0.0.0.0:0 without TLS: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start made the data dir: %v", err)
	}
}
