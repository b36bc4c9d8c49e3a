package testd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m) // the PostgreSQL server of the cluster tests
	Cleanup()
	os.Exit(code)
}

func TestDaemonLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := startKilledAtEnd(t, Config{DataDir: filepath.Join(t.TempDir(), "data"), WorkDir: t.TempDir()}, "--sim-latency", "1ms")
	first := d.Credentials()
	if first.Endpoint != d.Endpoint() || first.AccessKey == "" || first.SecretKey == "" || first.ProjectID == "" {
		t.Fatalf("credentials %+v, want a complete one with endpoint %s", first, d.Endpoint())
	}
	if fl, err := d.Client().ListFlavors(ctx); err != nil || len(fl) == 0 {
		t.Fatalf("ListFlavors: %v, %d flavors", err, len(fl))
	}
	pid, addr := d.PID(), d.Addr()
	if err := d.Start(); err == nil {
		t.Fatal("a second Start while running succeeded")
	}

	// kill -9, then the same data dir and port serve again.
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	if d.PID() == pid || d.Addr() != addr {
		t.Fatalf("restart: pid %d -> %d, addr %s -> %s; want a new process on the same port", pid, d.PID(), addr, d.Addr())
	}
	if d.Credentials().AccessKey != first.AccessKey {
		t.Fatal("the restarted daemon made a new credential: the data dir was not kept")
	}
	if _, err := d.Client().ListFlavors(ctx); err != nil {
		t.Fatalf("ListFlavors after the restart: %v", err)
	}
	if !d.Ready().After(d.Started()) {
		t.Errorf("ready %v not after started %v", d.Ready(), d.Started())
	}

	added, err := d.AddCredential(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if added.ProjectID == first.ProjectID || added.SecretKey == "" {
		t.Fatalf("AddCredential = %+v, want a new project", added)
	}

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(); err == nil {
		t.Fatal("Stop of a stopped daemon succeeded")
	}
	if err := d.Kill(); err == nil {
		t.Fatal("Kill of a stopped daemon succeeded")
	}
	if got := len(d.LogPaths()); got != 2 {
		t.Fatalf("%d logs, want one per launch (2)", got)
	}
	if !strings.Contains(d.LogTail(5), "ecsd stopped") {
		t.Errorf("log tail lacks the graceful stop:\n%s", d.LogTail(5))
	}
}

// A restart keeps its port even when another process held it meanwhile:
// it waits for the port to be let go instead of failing at once.
func TestRestartWaitsForItsPort(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	d := startKilledAtEnd(t, Config{DataDir: filepath.Join(t.TempDir(), "data"), WorkDir: work})
	addr := d.Addr()
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	squatter, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// The squatter lets the port go once a launch has been refused it.
	released := make(chan struct{})
	go func() {
		defer close(released)
		defer squatter.Close()
		deadline := time.Now().Add(time.Minute) // bounds a hang
		for time.Now().Before(deadline) {
			if b, _ := os.ReadFile(filepath.Join(work, "ecsd-02.log")); strings.Contains(string(b), "address already in use") {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	err = d.Start()
	<-released
	if err != nil {
		t.Fatalf("restart on a port held meanwhile: %v", err)
	}
	if d.Addr() != addr {
		t.Fatalf("restart on %s, want %s", d.Addr(), addr)
	}
	if _, err := d.Client().ListFlavors(t.Context()); err != nil {
		t.Fatalf("ListFlavors after the restart: %v", err)
	}
}

func TestStartFromEnv(t *testing.T) {
	t.Setenv("ECS_LISTEN", "bad address from the shell") // CleanEnv must drop it
	d, err := Start(Config{DataDir: t.TempDir(), UseEnv: true, Env: map[string]string{"ECS_SIM_LATENCY": "1ms"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
	}()
	// Healthy on the address given only through ECS_LISTEN.
	if _, err := d.Client().ListFlavors(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailureSaysWhy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Start(Config{DataDir: dir}, "--no-such-flag")
	if err == nil {
		t.Fatal("Start with an unknown flag succeeded")
	}
	if !strings.Contains(err.Error(), "no-such-flag") || !strings.Contains(err.Error(), "exited before it was healthy") {
		t.Fatalf("error %q does not say the daemon exited nor quote its log", err)
	}
}

func TestCert(t *testing.T) {
	t.Parallel()
	c, err := NewCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(c.KeyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode())
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()

	get := func(c *http.Client, url string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	trusting := &http.Client{Transport: c.Transport()}
	if err := get(trusting, srv.URL); err != nil {
		t.Fatalf("a client trusting the cert: %v", err)
	}
	localhost := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	if err := get(trusting, localhost); err != nil {
		t.Fatalf("a client trusting the cert, by name: %v", err)
	}
	err = get(&http.Client{Transport: (*Cert)(nil).Transport()}, srv.URL)
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		t.Fatalf("a client with the system roots: %v, want an unknown-authority error", err)
	}
}

// ForHosts names exactly the given hosts; two certificates never verify
// each other's leaf.
func TestCertForHosts(t *testing.T) {
	t.Parallel()
	named, err := NewCert(t.TempDir(), ForHosts("ecsd.test", "192.0.2.7"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := named.KeyPair.Leaf
	if fmt.Sprint(leaf.DNSNames, leaf.IPAddresses) != "[ecsd.test] [192.0.2.7]" {
		t.Errorf("names %v, IPs %v", leaf.DNSNames, leaf.IPAddresses)
	}
	opts := x509.VerifyOptions{Roots: named.Pool, DNSName: "ecsd.test"}
	if _, err := leaf.Verify(opts); err != nil {
		t.Errorf("verify by its own pool: %v", err)
	}
	opts.DNSName = "localhost"
	if _, err := leaf.Verify(opts); err == nil {
		t.Error("verified for localhost, which it does not name")
	}
	other, err := NewCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.KeyPair.Leaf.Verify(x509.VerifyOptions{Roots: named.Pool, DNSName: "localhost"})
	if ua := (x509.UnknownAuthorityError{}); !errors.As(err, &ua) || err.Error() != "x509: certificate signed by unknown authority" {
		t.Errorf("another certificate against this pool: %v, want a plain unknown-authority error", err)
	}
}

func TestDaemonTLS(t *testing.T) {
	t.Parallel()
	for _, useEnv := range []bool{false, true} {
		t.Run(fmt.Sprintf("UseEnv=%v", useEnv), func(t *testing.T) {
			t.Parallel()
			d, err := Start(Config{DataDir: t.TempDir(), TLS: true, UseEnv: useEnv})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := d.Stop(); err != nil {
					t.Error(err)
				}
			}()
			if !strings.HasPrefix(d.Endpoint(), "https://") || d.Credentials().Endpoint != d.Endpoint() {
				t.Fatalf("endpoint %s, credentials.json %s; want the same https:// one", d.Endpoint(), d.Credentials().Endpoint)
			}
			if _, err := d.Client().ListFlavors(t.Context()); err != nil {
				t.Fatalf("a client trusting the daemon's certificate: %v", err)
			}
			var ua x509.UnknownAuthorityError
			_, err = http.Get(d.Endpoint() + "/healthz")
			if !errors.As(err, &ua) {
				t.Fatalf("a client with the system roots: %v, want an unknown-authority error", err)
			}
		})
	}
}

// startKilledAtEnd starts a daemon that is killed when the test ends (its
// log reported if the test failed).
func startKilledAtEnd(t *testing.T, cfg Config, args ...string) *Daemon {
	t.Helper()
	d, err := Start(cfg, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.Running() {
			d.Kill()
		}
		if t.Failed() {
			t.Log(d.LogReport(30))
		}
	})
	return d
}
