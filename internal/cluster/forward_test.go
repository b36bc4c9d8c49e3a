package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNodes is a cloud of nodes, each serving a test-only call that must
// run on the host named in its query (?host=): a node that is not that
// host forwards it there.
type testNodes struct {
	t    *testing.T
	key  []byte
	urls map[string]string
	fwd  map[string]*Forwarder
}

func (n *testNodes) resolve(_ context.Context, host string) (string, error) {
	u, ok := n.urls[host]
	if !ok {
		return "", fmt.Errorf("unknown host %s", host)
	}
	return u, nil
}

func newTestNodes(t *testing.T, hosts ...string) *testNodes {
	n := &testNodes{t: t, key: bytes.Repeat([]byte{7}, 32), urls: map[string]string{}, fwd: map[string]*Forwarder{}}
	for _, h := range hosts {
		f, err := NewForwarder(ForwardConfig{Key: n.key, Host: h, Resolve: n.resolve})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(nodeHandler(f))
		t.Cleanup(srv.Close)
		n.urls[h], n.fwd[h] = srv.URL, f
	}
	return n
}

// nodeHandler serves the test call: it authenticates a direct call as
// project "p-direct" (as the API's signature check would), checks a
// forwarded one, and runs it here or forwards it to its host.
func nodeHandler(f *Forwarder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		caller := Caller{ProjectID: "p-direct", UserID: "u-direct", AccessKey: "AK-DIRECT", RequestID: "rid-direct"}
		if Forwarded(r) {
			c, err := f.Verify(r, body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			caller = c
		}
		if host := r.URL.Query().Get("host"); host != f.Host() {
			resp, err := f.Forward(r.Context(), host, r.Method, r.URL.RequestURI(), body, caller)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			Relay(w, resp)
			return
		}
		fmt.Fprintf(w, "%s served %s %s for %s/%s (key %s, request %s): %s", f.Host(), r.Method, r.URL.Path,
			caller.ProjectID, caller.UserID, caller.AccessKey, caller.RequestID, body)
	})
}

// testClient sends the tests' own calls on a transport of its own: another
// test's httptest.Server.Close closes http.DefaultTransport's idle
// connections, which can break a call in flight on it.
var testClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}

func call(t *testing.T, url string, body string) (int, string) {
	t.Helper()
	resp, err := testClient.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A call received by one node for another host is served by that host's
// node, for the caller the first node authenticated.
func TestForwardServedByTheRightNode(t *testing.T) {
	t.Parallel()
	n := newTestNodes(t, "node-a", "node-b", "node-c")
	for _, tt := range []struct{ via, host string }{{"node-a", "node-b"}, {"node-c", "node-a"}, {"node-b", "node-b"}} {
		code, body := call(t, n.urls[tt.via]+"/v1/p-direct/console?host="+tt.host, `{"x":1}`)
		want := tt.host + ` served POST /v1/p-direct/console for p-direct/u-direct (key AK-DIRECT, request rid-direct): {"x":1}`
		if code != 200 || body != want {
			t.Errorf("via %s for %s: %d %q, want %q", tt.via, tt.host, code, body, want)
		}
	}
	if code, body := call(t, n.urls["node-a"]+"/x?host=node-z", ""); code != http.StatusBadGateway || !strings.Contains(body, "unknown host node-z") {
		t.Errorf("forward to an unknown host: %d %q", code, body)
	}
}

// capture is a node that records the forwarded calls it receives.
type capture struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Clone(context.Background()))
	c.body = append(c.body, b)
	c.mu.Unlock()
}

// send sends a recorded call again to url, changed by edit.
func send(t *testing.T, url string, r *http.Request, body []byte, edit func(h http.Header, body *[]byte)) (int, string) {
	t.Helper()
	h := r.Header.Clone()
	if edit != nil {
		edit(h, &body)
	}
	req, err := http.NewRequest(r.Method, url+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A forged, changed, misdirected, stale or replayed forwarded call is
// refused.
func TestForwardRefusesForgedAndStale(t *testing.T) {
	t.Parallel()
	n := newTestNodes(t, "node-b")
	rec := &capture{}
	recSrv := httptest.NewServer(rec)
	t.Cleanup(recSrv.Close)
	at := func(host string) func(context.Context, string) (string, error) {
		return func(context.Context, string) (string, error) { return host, nil }
	}
	sender := func(key []byte, now time.Time) *Forwarder {
		f, err := NewForwarder(ForwardConfig{Key: key, Host: "node-a", Resolve: at(recSrv.URL), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	forward := func(f *Forwarder, host string) (*http.Request, []byte) {
		t.Helper()
		resp, err := f.Forward(t.Context(), host, "POST", "/v1/p1/console?host="+host, []byte(`{"a":1}`), Caller{ProjectID: "p1", UserID: "u1", AccessKey: "AK1", RequestID: "r1"})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.reqs[len(rec.reqs)-1], rec.body[len(rec.body)-1]
	}
	b := n.urls["node-b"]

	// The genuine call is served, once.
	r, body := forward(sender(n.key, time.Now()), "node-b")
	if code, got := send(t, b, r, body, nil); code != 200 || !strings.Contains(got, "node-b served POST /v1/p1/console for p1/u1 (key AK1, request r1)") {
		t.Fatalf("genuine forwarded call: %d %q", code, got)
	}
	if code, got := send(t, b, r, body, nil); code != 401 || !strings.Contains(got, "replayed") {
		t.Errorf("replayed call: %d %q", code, got)
	}

	for _, tt := range []struct {
		name string
		key  []byte
		at   time.Time
		host string
		edit func(h http.Header, body *[]byte)
		want string
	}{
		{"another cloud's key", bytes.Repeat([]byte{8}, 32), time.Now(), "node-b", nil, "bad MAC"},
		{"stale", n.key, time.Now().Add(-time.Minute), "node-b", nil, "from this node's clock"},
		{"from the future", n.key, time.Now().Add(time.Minute), "node-b", nil, "from this node's clock"},
		{"meant for another host", n.key, time.Now(), "node-c", nil, `meant for host "node-c"`},
		{"body changed", n.key, time.Now(), "node-b", func(_ http.Header, b *[]byte) { *b = []byte(`{"a":2}`) }, "bad MAC"},
		{"caller changed", n.key, time.Now(), "node-b", func(h http.Header, _ *[]byte) { h.Set(HeaderCaller, "p2/u2") }, "bad MAC"},
		{"access key changed", n.key, time.Now(), "node-b", func(h http.Header, _ *[]byte) { h.Set(HeaderKey, "AK2") }, "bad MAC"},
		{"request id changed", n.key, time.Now(), "node-b", func(h http.Header, _ *[]byte) { h.Set(HeaderReqID, "r2") }, "bad MAC"},
		{"time changed", n.key, time.Now().Add(-time.Minute), "node-b", func(h http.Header, _ *[]byte) {
			h.Set(HeaderTime, fmt.Sprint(time.Now().UnixMilli()))
		}, "bad MAC"},
		{"no MAC", n.key, time.Now(), "node-b", func(h http.Header, _ *[]byte) { h.Set(HeaderMAC, "zz") }, "bad MAC"},
	} {
		r, body := forward(sender(tt.key, tt.at), tt.host)
		code, got := send(t, b, r, body, tt.edit)
		if code != 401 || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %d %q, want 401 with %q", tt.name, code, got, tt.want)
		}
	}

	// Verify's errors wrap ErrRefused.
	req := httptest.NewRequest("POST", "/x", nil)
	req.Header.Set(HeaderMAC, "00")
	if _, err := n.fwd["node-b"].Verify(req, nil); !errors.Is(err, ErrRefused) {
		t.Errorf("Verify of a bad call: %v, want ErrRefused", err)
	}
}
