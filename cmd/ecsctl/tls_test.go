package main

import (
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/testd"
)

// selfSigned makes a self-signed server certificate for hosts (IP
// addresses or DNS names).
func selfSigned(t *testing.T, hosts ...string) *testd.Cert {
	t.Helper()
	c, err := testd.NewCert(t.TempDir(), testd.ForHosts(hosts...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsAPI starts a fake API over HTTPS with cert; every request's signature
// is checked with internal/aksk, as ecsd does.
func tlsAPI(t *testing.T, cert tls.Certificate, routes map[string][]reply) (*fakeAPI, string) {
	t.Helper()
	f := newFakeAPI(t, routes)
	srv := httptest.NewUnstartedServer(f)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// ecsctl works against an HTTPS ecsd with a self-signed certificate once it
// is told to trust it, by flag, environment or credentials file.
func TestTLSWithCACert(t *testing.T) {
	t.Parallel()
	c := selfSigned(t, "127.0.0.1")
	cert, certFile := c.KeyPair, c.CertFile
	routes := map[string][]reply{
		"POST /cloudservers": {js(`{"job_id":"j1","serverIds":["s1"]}`)},
		"GET /jobs/j1": {
			js(`{"job_id":"j1","status":"RUNNING","entities":{"sub_jobs":[{"job_id":"a","status":"RUNNING","entities":{"server_id":"s1"}}]}}`),
			js(`{"job_id":"j1","status":"SUCCESS","entities":{"sub_jobs":[{"job_id":"a","status":"SUCCESS","entities":{"server_id":"s1"}}]}}`),
		},
		"GET /cloudservers/s1":          {js(`{"server":{"id":"s1","status":"ACTIVE","OS-EXT-STS:task_state":null}}`)},
		"GET /v2/cloudimages":           {js(`{"images":[{"id":"i1","name":"debian","status":"active"}]}`)},
		"DELETE /v2.1/p1/os-keypairs/k": {{status: 204}},
	}
	// A credentials file beside the certificate, naming it relatively.
	besideCert := func(t *testing.T, endpoint string) string {
		path := filepath.Join(t.TempDir(), "credentials.json")
		if err := os.Link(certFile, filepath.Join(filepath.Dir(path), "ca.pem")); err != nil {
			t.Fatal(err)
		}
		err := client.WriteCredentialsFile(path, client.CredentialsFile{AccessKey: testAK, SecretKey: testSK, ProjectID: testPID,
			Endpoint: endpoint, CACert: "ca.pem"})
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	plain := func(t *testing.T, endpoint string) string { return writeCredentials(t, endpoint, "") }
	tests := []struct {
		name  string
		creds func(t *testing.T, endpoint string) string
		env   map[string]string
		flags []string
	}{
		{"--ca-cert", plain, nil, []string{"--ca-cert", certFile}},
		{"ECS_CA_CERT", plain, map[string]string{"ECS_CA_CERT": certFile}, nil},
		{"ca_cert in the credentials file", besideCert, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, endpoint := tlsAPI(t, cert, routes)
			if !strings.HasPrefix(endpoint, "https://127.0.0.1:") {
				t.Fatalf("endpoint %s", endpoint)
			}
			creds := tt.creds(t, endpoint)
			for _, args := range [][]string{
				{"server", "create", "--name", "web", "--image", "i1", "--flavor", "f", "--wait"},
				{"image", "list"},
				{"keypair", "delete", "k"},
			} {
				r := runCLI(t, creds, tt.env, "", append(tt.flags, args...)...)
				if r.code != 0 {
					t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
				}
				if args[0] == "server" && !strings.Contains(r.stdout, "SERVER:       s1\n") {
					t.Errorf("server create --wait: stdout %q", r.stdout)
				}
			}
			var seen []string
			for _, q := range f.requests() {
				seen = append(seen, q.method+" "+q.path)
			}
			for _, want := range []string{"POST /v1/p1/cloudservers", "GET /v1/p1/jobs/j1", "GET /v2/cloudimages", "DELETE /v2.1/p1/os-keypairs/k"} {
				if !strings.Contains(strings.Join(seen, "\n")+"\n", want+"\n") {
					t.Errorf("the server saw %q, not %s", seen, want)
				}
			}
		})
	}
}

// Without the CA, or with the wrong one, ecsctl refuses the endpoint and
// says why and what to pass; nothing reaches the server.
func TestTLSUntrustedCertificate(t *testing.T) {
	t.Parallel()
	cert := selfSigned(t, "127.0.0.1").KeyPair
	otherCA := selfSigned(t, "127.0.0.1").CertFile
	n := selfSigned(t, "ecsd.test")
	named, namedFile := n.KeyPair, n.CertFile
	const trust = ": if ecsd uses a self-signed certificate, trust it with --ca-cert FILE (or ECS_CA_CERT, or ca_cert in the credentials file)\n"
	tests := []struct {
		name  string
		cert  tls.Certificate
		flags []string
		want  string // after "ecsctl: the TLS certificate of ENDPOINT "
	}{
		{"no CA", cert, nil, "is not trusted (x509: certificate signed by unknown authority)" + trust},
		{"another CA", cert, []string{"--ca-cert", otherCA}, "is not trusted (x509: certificate signed by unknown authority)" + trust},
		{"certificate for another name", named, []string{"--ca-cert", namedFile},
			"is not valid for this host (x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs): use a host name the certificate names in the endpoint\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, endpoint := tlsAPI(t, tt.cert, nil)
			r := runCLI(t, writeCredentials(t, endpoint, ""), nil, "", append(tt.flags, "server", "list")...)
			want := "ecsctl: the TLS certificate of " + endpoint + " " + tt.want
			if r.code != 1 || r.stderr != want {
				t.Errorf("exit %d, stderr:\n%q\nwant 1 and:\n%q", r.code, r.stderr, want)
			}
			if reqs := f.requests(); len(reqs) != 0 {
				t.Errorf("the server saw %v", reqs)
			}
		})
	}
}

// An https endpoint on a plain-HTTP ecsd, and an unreadable CA file, are
// reported as such.
func TestTLSMisconfigured(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(newFakeAPI(t, nil))
	t.Cleanup(plain.Close)
	endpoint := "https://" + strings.TrimPrefix(plain.URL, "http://")
	r := runCLI(t, writeCredentials(t, endpoint, ""), nil, "", "server", "list")
	if want := "ecsctl: " + endpoint + " does not answer in TLS: if ecsd serves plain HTTP, use http:// in the endpoint\n"; r.code != 1 || r.stderr != want {
		t.Errorf("https to plain HTTP: exit %d, stderr %q, want 1 and %q", r.code, r.stderr, want)
	}

	missing := filepath.Join(t.TempDir(), "none.pem")
	r = runCLI(t, writeCredentials(t, endpoint, ""), nil, "", "--ca-cert", missing, "server", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "CA certificate file: open "+missing) {
		t.Errorf("missing CA file: exit %d, stderr %q", r.code, r.stderr)
	}
}
