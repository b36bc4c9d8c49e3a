package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/aksk"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/keyring"
	"github.com/ecsproject/ecsd/internal/store"
)

// countingStore counts the credential queries and the host queries made
// to the store.
type countingStore struct {
	store.Store
	queries     atomic.Int64
	hostQueries atomic.Int64
	// keypairOrder, when set, reorders KeypairList's answer (query_test.go).
	keypairOrder func([]ecs.Keypair)
}

func (c *countingStore) HostList(ctx context.Context) ([]store.Host, error) {
	c.hostQueries.Add(1)
	return c.Store.HostList(ctx)
}

func (c *countingStore) HostGet(ctx context.Context, name string) (store.Host, error) {
	c.hostQueries.Add(1)
	return c.Store.HostGet(ctx, name)
}

func (c *countingStore) CredentialGet(ctx context.Context, ak string) (store.SealedCredential, error) {
	c.queries.Add(1)
	return c.Store.CredentialGet(ctx, ak)
}

func (c *countingStore) CredentialCount(ctx context.Context) (int, error) {
	c.queries.Add(1)
	return c.Store.CredentialCount(ctx)
}

func (c *countingStore) CredentialList(ctx context.Context) ([]store.SealedCredential, error) {
	c.queries.Add(1)
	return c.Store.CredentialList(ctx)
}

// logBuffer collects log output from concurrent requests.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log records written so far.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// send signs a GET of path?query as ak/sk and returns the reply.
func (e *env) send(t *testing.T, path, query, ak, sk string) reply {
	t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.RawQuery = query
	req.Header.Set("User-Agent", "test")
	aksk.Sign(req, nil, ak, sk, time.Now())
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, rid: resp.Header.Get("X-Request-Id")}
	if err := json.Unmarshal(b, &r.body); err != nil {
		t.Fatalf("GET %s?%s: non-JSON reply %q", path, query, b)
	}
	return r
}

func (e *env) list() string { return "/v1/" + e.cred.ProjectID + "/cloudservers/detail" }

func randomAK() string { return "RND" + strings.ToUpper(rand.Text()) }

// A correctly signed request that repeats a query key is refused before
// its handler, whatever the order of the pairs.
func TestRepeatedQueryKeyRefused(t *testing.T) {
	t.Parallel()
	e := authSetup(t)
	c := e.cred
	if r := e.send(t, e.list(), "limit=1&offset=0", c.AccessKey, c.SecretKey); r.status != 200 {
		t.Fatalf("single-valued query: %d %v", r.status, r.body)
	}
	for _, tc := range []struct{ query, name string }{
		{"limit=1&limit=1000", "limit"},
		{"limit=1000&limit=1", "limit"},
		{"limit=5&limit=5", "limit"},
		{"offset=0&limit=1&name=a&limit=2", "limit"},
		{"name=&name=", "name"},
		{"zz=1&zz=2&aa=1&aa=1", "aa"},
	} {
		r := e.send(t, e.list(), tc.query, c.AccessKey, c.SecretKey)
		if r.status != 400 || r.code() != "Ecs.0005" {
			t.Errorf("?%s: %d %s %q, want 400 Ecs.0005", tc.query, r.status, r.code(), r.message())
			continue
		}
		if !strings.Contains(r.message(), `"`+tc.name+`"`) {
			t.Errorf("?%s: message %q does not name %s", tc.query, r.message(), tc.name)
		}
	}
	// Signature failures still come first.
	if r := e.send(t, e.list(), "limit=1&limit=2", c.AccessKey, "wrong"); r.status != 401 {
		t.Errorf("badly signed repeated query: %d, want 401", r.status)
	}
}

// A correctly signed query holding a raw ";" is refused: net/url drops
// such a pair, so "?status=ACTIVE;" would list every server as if no
// filter had been given.
func TestSemicolonQueryRefused(t *testing.T) {
	t.Parallel()
	e := authSetup(t)
	c := e.cred
	for _, q := range []string{"status=ACTIVE;", "limit=1;offset=2", ";", "name=a;b&limit=1"} {
		r := e.send(t, e.list(), q, c.AccessKey, c.SecretKey)
		if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), "%3B") {
			t.Errorf("?%s: %d %s %q, want 400 Ecs.0005 saying how to escape it", q, r.status, r.code(), r.message())
		}
	}
	// An escaped ";" is a value like any other.
	if r := e.send(t, e.list(), "name=a%3Bb", c.AccessKey, c.SecretKey); r.status != 200 {
		t.Errorf("?name=a%%3Bb: %d %v, want 200", r.status, r.body)
	}
}

// An escaped "/" in the path stays inside its segment, as the signature's
// canonical form keeps it: "{id}%2Fos-interface" is no spelling of the
// interfaces API, and "%2F" between the fixed segments matches no API.
// Other escaped characters are unescaped as usual.
func TestEscapedSlashStaysInSegment(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.cred
	p := "/v1/" + c.ProjectID
	r := e.do(t, "POST", p+"/cloudservers", `{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01",
		"flavorRef":"s6.small.1","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"}}}`, true)
	id := r.body["serverIds"].([]any)[0].(string)
	if r := e.send(t, p+"/cloudservers/"+id+"/os-interface", "", c.AccessKey, c.SecretKey); r.status != 200 {
		t.Fatalf("os-interface: %d %v", r.status, r.body)
	}
	for _, path := range []string{p + "/cloudservers/" + id + "%2Fos-interface", p + "%2Fcloudservers%2Fdetail", p + "/cloudservers%2fdetail"} {
		if r := e.send(t, path, "", c.AccessKey, c.SecretKey); r.status != 404 {
			t.Errorf("%s: %d %v, want 404", path, r.status, r.body)
		}
	}
	if r := e.send(t, p+"/cloudservers/%64etail", "", c.AccessKey, c.SecretKey); r.status != 200 {
		t.Errorf("%%64etail: %d %v, want 200 (an escaped letter is the letter)", r.status, r.body)
	}
}

// An unknown access key gets exactly the answer a wrong signature with a
// known key gets.
func TestUnknownKeyAnswersLikeBadSignature(t *testing.T) {
	t.Parallel()
	e := authSetup(t)
	bad := e.send(t, e.list(), "", e.cred.AccessKey, e.cred.SecretKey+"x")
	unknown := e.send(t, e.list(), "", randomAK(), e.cred.SecretKey)
	if bad.status != 401 || bad.code() != "APIGW.0301" {
		t.Fatalf("wrong signature: %d %s, want 401 APIGW.0301", bad.status, bad.code())
	}
	if unknown.status != bad.status || unknown.code() != bad.code() || unknown.message() != bad.message() {
		t.Errorf("unknown key answers %d %s %q; wrong signature answers %d %s %q",
			unknown.status, unknown.code(), unknown.message(), bad.status, bad.code(), bad.message())
	}
}

// A flood of unknown access keys costs a bounded number of store queries:
// at most two per keyring TTL, not one per request.
func TestUnknownKeysBoundedStoreQueries(t *testing.T) {
	t.Parallel()
	e := authSetup(t)
	const n = 300
	before := e.st.queries.Load()
	start := time.Now()
	for range n {
		if r := e.send(t, e.list(), "", randomAK(), "whatever"); r.status != 401 {
			t.Fatalf("unknown key: %d", r.status)
		}
	}
	periods := int64(time.Since(start)/keyring.DefaultTTL) + 1
	if q := e.st.queries.Load() - before; q > 2*periods {
		t.Errorf("%d requests with unknown keys over %d TTL periods made %d credential queries, want at most %d",
			n, periods, q, 2*periods)
	}
}

// A key added to the store by another process while the service runs (as
// `ecsd credentials add` does) is accepted soon after, even when the service
// had just refused it as unknown.
func TestKeyAddedWhileRunningIsAccepted(t *testing.T) {
	t.Parallel()
	e := authSetup(t)
	ctx := context.Background()
	ak, sk, pid := randomAK(), "fresh-secret-0123456789abcdefghijklmnopq", "p"+strings.ToLower(rand.Text())
	list := "/v1/" + pid + "/cloudservers/detail"
	if r := e.send(t, list, "", ak, sk); r.status != 401 {
		t.Fatalf("before the key exists: %d, want 401", r.status)
	}
	now := time.Now()
	err := e.st.Write(ctx, func(tx store.Tx) error {
		if err := tx.ProjectInsert(ctx, pid, "late", now); err != nil {
			return err
		}
		return tx.CredentialInsert(ctx, store.SealedCredential{AccessKey: ak, SealedSecret: e.box.Seal([]byte(sk)),
			ProjectID: pid, UserID: "u-late", Created: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // generous: the promise is one TTL
	for {
		r := e.send(t, list, "", ak, sk)
		if r.status == 200 {
			return
		}
		if r.status != 401 || time.Now().After(deadline) {
			t.Fatalf("new key still refused: %d %s %q", r.status, r.code(), r.message())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A refused request is logged with the access key it claimed and the
// reason, and the log never holds the signature, the secret or the
// canonical request.
func TestRefusalLogged(t *testing.T) {
	t.Parallel()
	e := authSetup(t)
	unknownAK := randomAK()
	wrong := e.send(t, e.list(), "limit=1", e.cred.AccessKey, e.cred.SecretKey+"x")
	unknown := e.send(t, e.list(), "limit=1", unknownAK, e.cred.SecretKey)

	want := map[string]struct{ ak, reason string }{
		wrong.rid:   {e.cred.AccessKey, "signature does not match"},
		unknown.rid: {unknownAK, "unknown access key"},
	}
	seen := 0
	for _, l := range e.log.lines(t) {
		w, ok := want[l["request_id"].(string)]
		if !ok || l["msg"] != "request" {
			continue
		}
		seen++
		if l["access_key"] != w.ak || l["reason"] != w.reason || l["code"] != "APIGW.0301" {
			t.Errorf("log line %v, want access_key=%s reason=%q code=APIGW.0301", l, w.ak, w.reason)
		}
	}
	if seen != 2 {
		t.Fatalf("found %d of 2 request log lines in:\n%s", seen, e.log)
	}
	out := e.log.String()
	for _, secretish := range []string{e.cred.SecretKey, "Signature=", "SDK-HMAC-SHA256", "cloudservers/detail/\\n"} {
		if strings.Contains(out, secretish) {
			t.Errorf("log holds %q:\n%s", secretish, out)
		}
	}
	if sig := regexp.MustCompile(`[0-9a-f]{64}`).FindString(out); sig != "" {
		t.Errorf("log holds a signature-like value %s:\n%s", sig, out)
	}
}
