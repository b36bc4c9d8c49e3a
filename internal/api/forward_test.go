package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/aksk"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// Two nodes' API handlers: a call node-a forwards to node-b is served by
// node-b's routes for the caller node-a authenticated; a forwarded call
// with a bad MAC, or sent to a node that takes none, is refused with the
// API's authentication error.
func TestForwardedCalls(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secret.LoadOrCreate(filepath.Join(dir, "key"))
	log := slog.New(slog.DiscardHandler)
	svc := cloud.New(cloud.Config{Store: st, Box: box, Logger: log})
	cred, err := svc.NewCredential(t.Context(), "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateKeypair(t.Context(), cloud.Caller{ProjectID: cred.ProjectID, UserID: cred.UserID}, cloud.KeypairInput{Name: "kp-1"}); err != nil {
		t.Fatal(err)
	}

	key := bytes.Repeat([]byte{1}, 32)
	urls := map[string]string{}
	resolve := func(_ context.Context, host string) (string, error) {
		if u, ok := urls[host]; ok {
			return u, nil
		}
		return "", fmt.Errorf("unknown host %s", host)
	}
	node := func(host string, key []byte) (*Handler, *httptest.Server) {
		f, err := cluster.NewForwarder(cluster.ForwardConfig{Key: key, Host: host, Resolve: resolve})
		if err != nil {
			t.Fatal(err)
		}
		h := New(Config{Service: svc, Logger: log, Forwarder: f})
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		urls[host] = srv.URL
		return h, srv
	}
	a, _ := node("node-a", key)
	node("node-b", key)
	forged, _ := node("node-x", bytes.Repeat([]byte{2}, 32)) // another cloud's key
	plain := httptest.NewServer(New(Config{Service: svc, Logger: log}))
	t.Cleanup(plain.Close)
	urls["node-plain"] = plain.URL

	forward := func(h *Handler, host, path string, caller cloud.Caller) (int, map[string]any, string) {
		t.Helper()
		w := httptest.NewRecorder()
		req := &request{r: httptest.NewRequestWithContext(t.Context(), "GET", path, nil), caller: caller}
		if err := h.forward(w, req, host); err != nil {
			t.Fatalf("forward to %s: %v", host, err)
		}
		var body map[string]any
		json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body, w.Body.String()
	}
	me := cloud.Caller{ProjectID: cred.ProjectID, UserID: cred.UserID}
	path := "/v2.1/" + cred.ProjectID + "/os-keypairs"

	code, _, raw := forward(a, "node-b", path, me)
	var list struct {
		Keypairs []struct {
			Keypair struct{ Name string } `json:"keypair"`
		} `json:"keypairs"`
	}
	json.Unmarshal([]byte(raw), &list)
	if code != 200 || len(list.Keypairs) != 1 || list.Keypairs[0].Keypair.Name != "kp-1" {
		t.Errorf("forwarded key pair list: %d %s", code, raw)
	}
	// node-b checks the forwarded caller against the path as for any call.
	if code, body, raw := forward(a, "node-b", path, cloud.Caller{ProjectID: "0123456789abcdef0123456789abcdef", UserID: "u"}); code != 400 ||
		body["error"].(map[string]any)["code"] != "Ecs.0023" {
		t.Errorf("forwarded call for another project: %d %s", code, raw)
	}
	for _, target := range []string{"node-x", "node-plain"} {
		code, body, raw := forward(a, target, path, me)
		if code != 401 || body["error_code"] != "APIGW.0301" {
			t.Errorf("forwarded call to %s: %d %s, want 401 APIGW.0301", target, code, raw)
		}
	}
	// The refusal works both ways: node-x's call is refused by node-b.
	if code, _, raw := forward(forged, "node-b", path, me); code != 401 {
		t.Errorf("call forwarded with another cloud's key: %d %s", code, raw)
	}
}

// agentDriver is a host's driver whose guest agents answer unless fail is
// set; it counts the pings.
type agentDriver struct {
	compute.Driver
	mu    sync.Mutex
	fail  bool
	pings int
}

func (d *agentDriver) PingAgent(ctx context.Context, id string) error {
	d.mu.Lock()
	d.pings++
	fail := d.fail
	d.mu.Unlock()
	if fail {
		return fmt.Errorf("%w: the test's agent is silent", compute.ErrNoAgent)
	}
	return d.Driver.PingAgent(ctx, id)
}

func (d *agentDriver) set(fail bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = fail
	return d.pings
}

// twoNodes is a cloud of two nodes on one store: node-b hosts the
// servers (its driver is drv), node-a hosts none and serves the API.
type twoNodes struct {
	a, b     *Handler
	aSrv     *httptest.Server
	bSrv     *httptest.Server
	svcB     *cloud.Service
	drv      *agentDriver
	cred     ecs.Credential
	logA     *bytes.Buffer
	logAMu   *sync.Mutex
	serverID string
}

func newTwoNodes(t *testing.T) *twoNodes {
	t.Helper()
	dir := t.TempDir()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secret.LoadOrCreate(filepath.Join(dir, "key"))
	quiet := slog.New(slog.DiscardHandler)
	if _, err := cluster.Register(ctx, cluster.HostConfig{Store: st, Name: "node-b", Driver: cluster.DriverSim,
		Capacity: cluster.Capacity{VCPUs: 64, RAMMB: 1 << 20, DiskGB: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	simDrv := func(name string) compute.Driver {
		d, err := sim.New(sim.Config{Dir: filepath.Join(dir, name)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	n := &twoNodes{drv: &agentDriver{Driver: simDrv("sim-b")}, logA: &bytes.Buffer{}, logAMu: &sync.Mutex{}}
	n.svcB = cloud.New(cloud.Config{Store: st, Driver: n.drv, Box: box, Logger: quiet, Host: "node-b", NodeID: "node-b"})
	svcA := cloud.New(cloud.Config{Store: st, Driver: simDrv("sim-a"), Box: box, Logger: quiet, Host: "node-a", NodeID: "node-a"})
	if err := n.svcB.SeedImages(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.svcB.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	key := bytes.Repeat([]byte{3}, 32)
	var mu sync.Mutex
	urls := map[string]string{}
	resolve := func(_ context.Context, host string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if u, ok := urls[host]; ok {
			return u, nil
		}
		return "", fmt.Errorf("unknown host %s", host)
	}
	node := func(host string, svc *cloud.Service, log *slog.Logger) (*Handler, *httptest.Server) {
		f, err := cluster.NewForwarder(cluster.ForwardConfig{Key: key, Host: host, Resolve: resolve})
		if err != nil {
			t.Fatal(err)
		}
		h := New(Config{Service: svc, Logger: log, Forwarder: f})
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		mu.Lock()
		urls[host] = srv.URL
		mu.Unlock()
		return h, srv
	}
	n.a, n.aSrv = node("node-a", svcA, slog.New(slog.NewJSONHandler(lockedWriter{n.logAMu, n.logA}, nil)))
	n.b, n.bSrv = node("node-b", n.svcB, quiet)

	n.cred, err = n.svcB.NewCredential(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	me := cloud.Caller{ProjectID: n.cred.ProjectID, UserID: n.cred.UserID}
	job, ids, err := n.svcB.CreateServers(ctx, me, cloud.CreateInput{Name: "s", ImageRef: cloud.BuiltinImages[3].ID,
		FlavorRef: "s6.small.1", VPCID: "vpc", SubnetIDs: []string{"sn"}, VolumeType: "SSD"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		j, err := n.svcB.GetJob(ctx, me, job)
		if err != nil {
			t.Fatal(err)
		}
		if j.Done() {
			if j.Status != ecs.JobSuccess {
				t.Fatalf("create: %+v", j)
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.serverID = ids[0]
	return n
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// get sends a signed GET to a node and returns its status, body and
// request id.
func (n *twoNodes) get(t *testing.T, srv *httptest.Server, path string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	aksk.Sign(req, nil, n.cred.AccessKey, n.cred.SecretKey, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Request-Id")
}

// os-resetpwd-flag of a server on node-b gives node-b's answer, asked of
// its guest agent, through either node; when node-b is away, node-a
// answers False and logs why.
func TestResetPasswordFlagForwarded(t *testing.T) {
	t.Parallel()
	n := newTwoNodes(t)
	path := "/v1/" + n.cred.ProjectID + "/cloudservers/" + n.serverID + "/os-resetpwd-flag"
	flag := func(srv *httptest.Server) string {
		t.Helper()
		code, body, _ := n.get(t, srv, path)
		var b resetPasswordFlagBody
		if err := json.Unmarshal([]byte(body), &b); code != 200 || err != nil {
			t.Fatalf("flag: %d %s", code, body)
		}
		return b.ResetpwdFlag
	}
	for _, tt := range []struct {
		silent bool
		want   string
	}{{false, "True"}, {true, "False"}, {false, "True"}} {
		for _, via := range []*httptest.Server{n.aSrv, n.bSrv} {
			before := n.drv.set(tt.silent)
			if got := flag(via); got != tt.want {
				t.Errorf("agent silent %v, asked via %s: flag %s, want %s", tt.silent, via.URL, got, tt.want)
			}
			if after := n.drv.set(tt.silent); after != before+1 {
				t.Errorf("agent silent %v, asked via %s: %d pings of node-b's agent, want 1", tt.silent, via.URL, after-before)
			}
		}
	}
	// An unknown server is refused by the node that received the call.
	if code, body, _ := n.get(t, n.aSrv, "/v1/"+n.cred.ProjectID+"/cloudservers/6b3c7f9e-0000-4000-8000-000000000002/os-resetpwd-flag"); code != 404 || !strings.Contains(body, "Ecs.0114") {
		t.Errorf("flag of an unknown server: %d %s", code, body)
	}

	n.bSrv.Close()
	n.drv.set(false)
	if got := flag(n.aSrv); got != "False" {
		t.Errorf("node-b away: flag %s, want False", got)
	}
	n.logAMu.Lock()
	logs := n.logA.String()
	n.logAMu.Unlock()
	if !strings.Contains(logs, `"host":"node-b"`) || !strings.Contains(logs, "did not answer") {
		t.Errorf("node-b away: node-a logged no reason: %s", logs)
	}
}

// A forwarded call that changes a server is recorded in the action log
// under the caller's access key and request id, as if it had been
// received where it runs.
func TestForwardedCallKeepsAccessKey(t *testing.T) {
	t.Parallel()
	n := newTwoNodes(t)
	caller := cloud.Caller{ProjectID: n.cred.ProjectID, UserID: n.cred.UserID, AccessKey: n.cred.AccessKey, RequestID: "req-from-node-a"}
	path := "/v2.1/" + n.cred.ProjectID + "/servers/" + n.serverID + "/action"
	w := httptest.NewRecorder()
	req := &request{r: httptest.NewRequestWithContext(t.Context(), "POST", path, nil), body: []byte(`{"lock":null}`), caller: caller}
	if err := n.a.forward(w, req, "node-b"); err != nil || w.Code/100 != 2 {
		t.Fatalf("forwarded lock: %v %d %s", err, w.Code, w.Body)
	}
	acts, err := n.svcB.ListActions(t.Context(), caller, n.serverID)
	if err != nil {
		t.Fatal(err)
	}
	var lock *ecs.Action
	for i := range acts {
		if acts[i].Action == ecs.ActionLock {
			lock = &acts[i]
		}
	}
	if lock == nil || lock.AccessKey != n.cred.AccessKey || lock.RequestID != "req-from-node-a" || lock.UserID != n.cred.UserID {
		t.Errorf("action of the forwarded lock: %+v, want access key %s, request req-from-node-a", lock, n.cred.AccessKey)
	}
}
