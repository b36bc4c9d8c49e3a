package api_test

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
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/aksk"
	"github.com/ecsproject/ecsd/internal/api"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// env is an API server on a fresh store and sim driver, with one tenant
// credential. Its log (JSON) is kept in log; st counts credential queries.
type env struct {
	srv  *httptest.Server
	cred ecs.Credential
	svc  *cloud.Service
	st   *countingStore
	box  *secret.Box
	log  *logBuffer
}

// testHost is the one host of the tests' cloud: 4 vCPUs, no overcommit.
const testHost = "api-host-1"

// setup starts an env whose service runs (jobs, the built-in images).
func setup(t *testing.T) *env { return newEnv(t, true) }

// authSetup starts an env whose service does not run: the log and the
// store see only what requests do.
func authSetup(t *testing.T) *env { return newEnv(t, false) }

func newEnv(t *testing.T, running bool) *env {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	st := &countingStore{Store: raw}
	box, err := secret.LoadOrCreate(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	drv, err := sim.New(sim.Config{Dir: filepath.Join(dir, "sim")})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	if _, err := cluster.Register(ctx, cluster.HostConfig{Store: st, Name: testHost, Driver: cluster.DriverSim,
		Capacity: cluster.Capacity{VCPUs: 4, RAMMB: 1 << 20, DiskGB: 1 << 20}, Ratios: cluster.Ratios{CPU: 1, RAM: 1, Disk: 1}}); err != nil {
		t.Fatal(err)
	}
	svc := cloud.New(cloud.Config{Store: st, Driver: drv, Box: box, Logger: log, Host: testHost})
	cred, err := svc.NewCredential(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	stop := func() {}
	if running {
		if err := svc.SeedImages(ctx); err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { svc.Run(runCtx); close(done) }()
		stop = func() { cancel(); <-done }
	}
	srv := httptest.NewServer(api.New(api.Config{Service: svc, Logger: log}))
	t.Cleanup(func() { srv.Close(); stop() })
	return &env{srv: srv, cred: cred, svc: svc, st: st, box: box, log: logs}
}

type reply struct {
	status int
	body   map[string]any
	rid    string
}

// do sends a request signed with the env's credential (unless sign is
// false) and decodes the JSON reply. Requests go through the server's own
// client: another test's srv.Close closes http.DefaultTransport's idle
// connections, which can break a request in flight on it.
func (e *env) do(t *testing.T, method, path, body string, sign bool) reply {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("User-Agent", "test")
	req.Header.Set("X-Project-Id", e.cred.ProjectID)
	if sign {
		aksk.Sign(req, []byte(body), e.cred.AccessKey, e.cred.SecretKey, time.Now())
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, rid: resp.Header.Get("X-Request-Id")}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: non-JSON reply %q", method, path, raw)
		}
	}
	return r
}

// code returns the error code of a reply in either body shape.
func (r reply) code() string {
	if c, ok := r.body["error_code"].(string); ok {
		return c
	}
	if e, ok := r.body["error"].(map[string]any); ok {
		c, _ := e["code"].(string)
		return c
	}
	return ""
}

func (r reply) message() string {
	if m, ok := r.body["error_msg"].(string); ok {
		return m
	}
	if e, ok := r.body["error"].(map[string]any); ok {
		m, _ := e["message"].(string)
		return m
	}
	return ""
}

func TestRoutingAndAuth(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	tests := []struct {
		name         string
		method, path string
		sign         bool
		status       int
		code         string
	}{
		{"healthz unauthenticated", "GET", "/healthz", false, 200, ""},
		{"unknown route", "GET", "/v1/x/nothing", false, 404, "APIGW.0101"},
		{"wrong method", "DELETE", p + "/cloudservers/detail", true, 404, "APIGW.0101"},
		{"unsigned", "GET", p + "/cloudservers/detail", false, 401, "APIGW.0301"},
		{"signed list", "GET", p + "/cloudservers/detail", true, 200, ""},
		{"other project in path", "GET", "/v1/0123456789abcdef0123456789abcdef/cloudservers/detail", true, 400, "Ecs.0023"},
		{"unknown server", "GET", p + "/cloudservers/nope", true, 404, "Ecs.0114"},
		{"unknown job", "GET", p + "/jobs/nope", true, 400, "Common.0011"},
		{"bad paging", "GET", p + "/cloudservers/detail?limit=0", true, 400, "Ecs.0005"},
		{"images without project", "GET", "/v2/cloudimages", true, 200, ""},
		{"flavors", "GET", p + "/cloudservers/flavors", true, 200, ""},
		{"unknown keypair", "GET", "/v2.1/" + e.cred.ProjectID + "/os-keypairs/nope", true, 404, "Ecs.0314"},
	}
	for _, tt := range tests {
		r := e.do(t, tt.method, tt.path, "", tt.sign)
		if r.status != tt.status || r.code() != tt.code {
			t.Errorf("%s: %d %q, want %d %q (%v)", tt.name, r.status, r.code(), tt.status, tt.code, r.body)
		}
		if r.rid == "" {
			t.Errorf("%s: no X-Request-Id", tt.name)
		}
		if tt.code == "APIGW.0301" && r.body["request_id"] != r.rid {
			t.Errorf("%s: gateway body request_id %v, header %s", tt.name, r.body["request_id"], r.rid)
		}
	}
}

func TestTamperedSignature(t *testing.T) {
	t.Parallel()
	e := setup(t)
	path := "/v1/" + e.cred.ProjectID + "/cloudservers/detail"
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("User-Agent", "test")
	aksk.Sign(req, nil, e.cred.AccessKey, e.cred.SecretKey+"x", time.Now())
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("User-Agent", "test")
	aksk.Sign(req, nil, e.cred.AccessKey, e.cred.SecretKey, time.Now().Add(-20*time.Minute))
	resp, err = e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("stale date: %d", resp.StatusCode)
	}
}

func TestReinstallBodies(t *testing.T) {
	t.Parallel()
	e := setup(t)
	path := "/v1/" + e.cred.ProjectID + "/cloudservers/some-server/reinstallos"
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"empty", "", 400, "Common.0002"},
		{"blank", "  \n", 400, "Common.0002"},
		{"not json", "os-reinstall", 400, "Ecs.0005"},
		{"null option", `{"os-reinstall":null}`, 400, "Ecs.0005"},
		{"json null", `null`, 400, "Ecs.0005"},
		{"no option", `{}`, 400, "Ecs.0005"},
		{"option not object", `{"os-reinstall":"x"}`, 400, "Ecs.0005"},
		{"wrong type", `{"os-reinstall":{"adminpass":123}}`, 400, "Ecs.0005"},
		{"trailing garbage", `{"os-reinstall":{"adminpass":"Good-Pass123"}} x`, 400, "Ecs.0005"},
		{"neither", `{"os-reinstall":{}}`, 400, "Ecs.0005"},
		{"unknown mode", `{"os-reinstall":{"adminpass":"Good-Pass123","mode":"x"}}`, 400, "Ecs.0005"},
		{"unknown server", `{"os-reinstall":{"adminpass":"Good-Pass123"}}`, 404, "Ecs.0114"},
	}
	for _, tt := range tests {
		r := e.do(t, "POST", path, tt.body, true)
		if r.status != tt.status || r.code() != tt.code {
			t.Errorf("%s: %d %q, want %d %q (%v)", tt.name, r.status, r.code(), tt.status, tt.code, r.body)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := setup(t)
	big := `{"os-reinstall":{"adminpass":"` + strings.Repeat("a", api.MaxBody) + `"}}`
	r := e.do(t, "POST", "/v1/"+e.cred.ProjectID+"/cloudservers/s/reinstallos", big, true)
	if r.status != http.StatusRequestEntityTooLarge || r.code() != "Ecs.0005" {
		t.Fatalf("large body: %d %q", r.status, r.code())
	}
	// A chunked body (no declared length) is cut off too.
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/"+e.cred.ProjectID+"/cloudservers/s/reinstallos",
		io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked large body: %d", resp.StatusCode)
	}
}

func TestPasswordNeverEchoed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	pw := "weakpassword"
	job := e.do(t, "POST", "/v1/"+e.cred.ProjectID+"/cloudservers", `{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01",
		"flavorRef":"s6.small.1","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"}}}`, true)
	if job.status != 200 {
		t.Fatalf("create: %d %v", job.status, job.body)
	}
	ids := job.body["serverIds"].([]any)
	path := "/v1/" + e.cred.ProjectID + "/cloudservers/" + ids[0].(string) + "/reinstallos"
	r := e.do(t, "POST", path, `{"os-reinstall":{"adminpass":"`+pw+`"}}`, true)
	if r.status != 400 || r.code() != "Ecs.0011" {
		t.Fatalf("weak password: %d %q", r.status, r.code())
	}
	if strings.Contains(r.message(), pw) || r.message() == "" {
		t.Fatalf("message %q", r.message())
	}
}

// A create naming an availability zone that does not exist is refused
// naming the field; the one zone (ListFlavors' az1) is accepted and shown.
func TestCreateUnknownAZRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	body := func(az string) string {
		return `{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01","availability_zone":"` + az + `",
		"flavorRef":"s6.small.1","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"}}}`
	}
	for _, az := range []string{"nope", "AZ1", "az2"} {
		r := e.do(t, "POST", p+"/cloudservers", body(az), true)
		if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), "server.availability_zone") {
			t.Errorf("availability_zone %q: %d %s %q, want 400 Ecs.0005 naming it", az, r.status, r.code(), r.message())
		}
	}
	if got := e.do(t, "GET", p+"/cloudservers/detail", "", true).body["count"]; got != float64(0) {
		t.Errorf("servers after refused creates: %v, want 0", got)
	}
	r := e.do(t, "POST", p+"/cloudservers", body("az1"), true)
	if r.status != 200 {
		t.Fatalf("az1: %d %v", r.status, r.body)
	}
	id := r.body["serverIds"].([]any)[0].(string)
	s := e.do(t, "GET", p+"/cloudservers/"+id, "", true).body["server"].(map[string]any)
	if s["OS-EXT-AZ:availability_zone"] != "az1" {
		t.Errorf("zone shown %v, want az1", s["OS-EXT-AZ:availability_zone"])
	}
}

// Key pairs named "." or ".." are refused: URL normalization removes
// such a path segment, so no client could show or delete them.
func TestDotKeypairNamesRefused(t *testing.T) {
	t.Parallel()
	e := authSetup(t)
	p := "/v2.1/" + e.cred.ProjectID + "/os-keypairs"
	for _, name := range []string{".", ".."} {
		r := e.do(t, "POST", p, `{"keypair":{"name":"`+name+`"}}`, true)
		if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), "keypair.name") {
			t.Errorf("name %q: %d %s %q, want 400 Ecs.0005 naming keypair.name", name, r.status, r.code(), r.message())
		}
	}
	if r := e.do(t, "POST", p, `{"keypair":{"name":"..."}}`, true); r.status != 200 {
		t.Errorf(`name "...": %d %v, want 200`, r.status, r.body)
	}
}

func TestServerJSONTypes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	r := e.do(t, "POST", p+"/cloudservers", `{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01",
		"flavorRef":"s6.small.1","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"}}}`, true)
	id := r.body["serverIds"].([]any)[0].(string)
	s := e.do(t, "GET", p+"/cloudservers/"+id, "", true).body["server"].(map[string]any)
	if _, ok := s["OS-EXT-STS:power_state"].(float64); !ok {
		t.Errorf("power_state %T", s["OS-EXT-STS:power_state"])
	}
	if _, ok := s["locked"].(bool); !ok {
		t.Errorf("locked %T", s["locked"])
	}
	f := s["flavor"].(map[string]any)
	for _, k := range []string{"vcpus", "ram", "disk"} {
		if _, ok := f[k].(string); !ok {
			t.Errorf("flavor.%s %T", k, f[k])
		}
	}
	vols := s["os-extended-volumes:volumes_attached"].([]any)
	if len(vols) != 1 {
		t.Fatalf("volumes %v", vols)
	}
	if _, ok := vols[0].(map[string]any)["delete_on_termination"].(string); !ok {
		t.Errorf("delete_on_termination not a string")
	}
	for k, v := range s["metadata"].(map[string]any) {
		if _, ok := v.(string); !ok {
			t.Errorf("metadata.%s %T", k, v)
		}
	}
	j := e.do(t, "GET", p+"/jobs/"+r.body["job_id"].(string), "", true).body
	ent := j["entities"].(map[string]any)
	if _, ok := ent["sub_jobs_total"].(float64); !ok {
		t.Errorf("sub_jobs_total %T", ent["sub_jobs_total"])
	}
	if !bytes.Contains([]byte(j["begin_time"].(string)), []byte("T")) {
		t.Errorf("begin_time %v", j["begin_time"])
	}
}

// Image import is an operator action (ecsd image import), not a tenant
// one: the old route answers with the gateway's unknown-API code, like a
// made-up path of the same shape, and reads no host file.
func TestNoImageImportRoute(t *testing.T) {
	t.Parallel()
	e := setup(t)
	before, err := e.svc.ListImages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"name":"stolen","file":"/etc/hostname"}`
	r := e.do(t, "POST", "/v2/cloudimages/import", body, true)
	unknown := e.do(t, "POST", "/v2/cloudimages/no-such-api", body, true)
	if r.code() != "APIGW.0101" || r.status != unknown.status || r.code() != unknown.code() {
		t.Errorf("POST /v2/cloudimages/import: %d %q, want the unknown route's answer %d %q (%v)",
			r.status, r.code(), unknown.status, unknown.code(), r.body)
	}
	if r.status/100 != 4 {
		t.Errorf("POST /v2/cloudimages/import: status %d, want a 4xx", r.status)
	}
	after, err := e.svc.ListImages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("images: %d before the call, %d after", len(before), len(after))
	}
}

// A server shows its host as Nova does, and a create that no host has room
// for answers Huawei's insufficient-resources error.
func TestServerHost(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	create := func(count int) reply {
		return e.do(t, "POST", p+"/cloudservers", fmt.Sprintf(`{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01",
		"flavorRef":"s6.large.2","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"},"count":%d}}`, count), true)
	}
	r := create(1)
	if r.status != 200 {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	id := r.body["serverIds"].([]any)[0].(string)
	s := e.do(t, "GET", p+"/cloudservers/"+id, "", true).body["server"].(map[string]any)
	if s["OS-EXT-SRV-ATTR:host"] != testHost || s["OS-EXT-SRV-ATTR:hypervisor_hostname"] != testHost {
		t.Errorf("host fields %v, %v; want %s", s["OS-EXT-SRV-ATTR:host"], s["OS-EXT-SRV-ATTR:hypervisor_hostname"], testHost)
	}
	if hid, _ := s["hostId"].(string); len(hid) != 56 || strings.Contains(hid, testHost) {
		t.Errorf("hostId %q, want an opaque 56-hex-digit id", hid)
	}
	// 2 vCPUs left: two more s6.large.2 (2 vCPUs each) do not fit.
	r = create(2)
	if r.status != 400 || r.body["error"].(map[string]any)["code"] != "Ecs.0319" {
		t.Fatalf("create past the capacity: %d %v, want 400 Ecs.0319", r.status, r.body)
	}
	if msg := r.body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "Insufficient resources") {
		t.Errorf("no-room message %q", msg)
	}
}

// /healthz, not an API of the gateway, answers another method 405 with the
// methods it serves; an API path answers a method it does not serve 404,
// with no Allow header (the gateway knows no such API).
func TestMethodNotServed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"POST", "/healthz", 405, "GET, HEAD"},
		{"DELETE", "/v1/" + e.cred.ProjectID + "/cloudservers/detail", 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, nil)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Code string `json:"error_code"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || body.Code != "APIGW.0101" || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %s, Allow %q; want %d APIGW.0101, Allow %q",
				tc.method, tc.path, resp.StatusCode, body.Code, resp.Header.Get("Allow"), tc.status, tc.allow)
		}
	}
}

// host_status follows the heartbeat of the server's host: UP while it is
// fresh, UNKNOWN once it is older than the cloud's down-after, UP again
// when it is fresh again; a list reads the hosts at most once for all its
// servers.
func TestHostStatus(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	p := "/v1/" + e.cred.ProjectID
	r := e.do(t, "POST", p+"/cloudservers", `{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01",
		"flavorRef":"s6.small.1","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"},"count":3}}`, true)
	if r.status != 200 {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	id := r.body["serverIds"].([]any)[0].(string)
	statuses := func() (show string, list []string) {
		t.Helper()
		s := e.do(t, "GET", p+"/cloudservers/"+id, "", true).body["server"].(map[string]any)
		show, _ = s["host_status"].(string)
		before := e.st.hostQueries.Load()
		l := e.do(t, "GET", p+"/cloudservers/detail", "", true)
		if n := e.st.hostQueries.Load() - before; n > 1 {
			t.Errorf("one list of %d servers made %d host queries, want at most 1", len(l.body["servers"].([]any)), n)
		}
		for _, s := range l.body["servers"].([]any) {
			hs, _ := s.(map[string]any)["host_status"].(string)
			list = append(list, hs)
		}
		return show, list
	}
	// until polls the statuses until every one is want (the service
	// reuses the heartbeats it read for up to cloud.HeartbeatsMaxAge).
	until := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * cloud.HeartbeatsMaxAge)
		for {
			show, list := statuses()
			ok := show == want && len(list) == 3
			for _, s := range list {
				ok = ok && s == want
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("host_status: show %q, list %q; want %q", show, list, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	until("UP")
	if err := e.st.HostHeartbeat(ctx, testHost, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	until("UNKNOWN")
	if err := e.st.HostHeartbeat(ctx, testHost, time.Now()); err != nil {
		t.Fatal(err)
	}
	until("UP")
}

// TestBodyNotAnObject: a body that is valid JSON but no object (an array,
// a string, a number) is refused as such, not as invalid JSON.
func TestBodyNotAnObject(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, body := range []string{`[]`, `"lock"`, `42`, `true`} {
		r := e.do(t, "POST", "/v2.1/"+e.cred.ProjectID+"/servers/s/action", body, true)
		if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), "must be a JSON object") {
			t.Errorf("body %s: %d %q %q, want 400 Ecs.0005 saying the body must be a JSON object", body, r.status, r.code(), r.message())
		}
	}
}
