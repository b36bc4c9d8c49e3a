package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/aksk"
)

const (
	testAK  = "AK1"
	testSK  = "SK1"
	testPID = "p1"
	testUID = "u1"
)

type reply struct {
	status    int
	body      string
	requestID string
}

type recorded struct {
	method, path, body string
}

// fakeAPI serves canned replies per "METHOD /path" (each route's last reply
// repeats), checks every request's signature and records the requests.
type fakeAPI struct {
	t      *testing.T
	mu     sync.Mutex
	routes map[string][]reply
	hits   map[string]int
	reqs   []recorded
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	v := aksk.Verifier{Lookup: func(_ context.Context, ak string) (string, bool) { return testSK, ak == testAK }}
	if _, err := v.Verify(r, body); err != nil {
		f.t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	key := r.Method + " " + r.URL.EscapedPath()
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{r.Method, r.URL.RequestURI(), string(body)})
	replies, ok := f.routes[key]
	n := f.hits[key]
	f.hits[key]++
	f.mu.Unlock()
	if !ok {
		f.t.Errorf("unexpected request %s", key)
		w.WriteHeader(404)
		return
	}
	rp := replies[min(n, len(replies)-1)]
	if rp.requestID != "" {
		w.Header().Set("X-Request-Id", rp.requestID)
	}
	w.Header().Set("Content-Type", "application/json")
	if rp.status == 0 {
		rp.status = 200
	}
	w.WriteHeader(rp.status)
	io.WriteString(w, rp.body)
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// result is what one ecsctl run produced.
type result struct {
	code           int
	stdout, stderr string
	reqs           []recorded
}

// ecsctl runs the CLI against a fake API with the given routes (paths
// relative to "/v1/p1" unless they start with "/v2").
func ecsctl(t *testing.T, routes map[string][]reply, stdin string, args ...string) result {
	t.Helper()
	f := newFakeAPI(t, routes)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	r := runCLI(t, writeCredentials(t, srv.URL, ""), nil, stdin, args...)
	r.reqs = f.requests()
	return r
}

// newFakeAPI returns a fake API serving routes (paths relative to "/v1/p1"
// unless they start with "/v2").
func newFakeAPI(t *testing.T, routes map[string][]reply) *fakeAPI {
	full := map[string][]reply{}
	for k, v := range routes {
		method, path, _ := strings.Cut(k, " ")
		if !strings.HasPrefix(path, "/v2") {
			path = "/v1/" + testPID + path
		}
		full[method+" "+path] = v
	}
	return &fakeAPI{t: t, routes: full, hits: map[string]int{}}
}

// writeCredentials writes a credentials file for endpoint (with ca_cert
// when it is not "") and returns its path.
func writeCredentials(t *testing.T, endpoint, caCert string) string {
	t.Helper()
	creds := filepath.Join(t.TempDir(), "credentials.json")
	err := client.WriteCredentialsFile(creds, client.CredentialsFile{AccessKey: testAK, SecretKey: testSK, ProjectID: testPID,
		UserID: testUID, Endpoint: endpoint, CACert: caCert})
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// runCLI runs ecsctl with the credentials file creds (none when "") and
// the environment env.
func runCLI(t *testing.T, creds string, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := newApp(environment(&stdout, &stderr, stdin, env))
	a.pollInterval = time.Millisecond
	if creds != "" {
		args = append([]string{"--credentials", creds}, args...)
	}
	code := a.run(context.Background(), args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func environment(stdout, stderr io.Writer, stdin string, vars map[string]string) env {
	return env{
		stdin:  strings.NewReader(stdin),
		stdout: stdout,
		stderr: stderr,
		getenv: func(k string) string { return vars[k] },
	}
}

func js(body string) reply { return reply{status: 200, body: body} }

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string
	}{
		{"no command", nil, "", "Usage:"},
		{"unknown group", []string{"disk", "list"}, "", `unknown command "disk"`},
		{"volume create without size", []string{"volume", "create", "--name", "d"}, "", "needs --size"},
		{"attach with one id", []string{"server", "attach", "s1"}, "", "a server ID and a volume ID"},
		{"unknown verb", []string{"server", "explode"}, "", `unknown command "server explode"`},
		{"group without verb", []string{"server"}, "", `"server" needs a subcommand`},
		{"bad output", []string{"-o", "yaml", "image", "list"}, "", "-o must be table or json"},
		{"bad output after the command", []string{"image", "list", "-o", "xml"}, "", "-o must be table or json"},
		{"unknown flag", []string{"server", "list", "--bogus"}, "", "flag provided but not defined: -bogus"},
		{"show without id", []string{"server", "show"}, "", "want one server ID, got 0"},
		{"show with two ids", []string{"server", "show", "a", "b"}, "", "want one server ID, got 2"},
		{"stop without id", []string{"server", "stop", "--hard"}, "", "want at least one server ID"},
		{"start has no --hard", []string{"server", "start", "s1", "--hard"}, "", "flag provided but not defined: -hard"},
		{"create without name", []string{"server", "create", "--image", "i", "--flavor", "f"}, "", "needs --name, --image and --flavor"},
		{"create with zero count", []string{"server", "create", "--name", "n", "--image", "i", "--flavor", "f", "--count", "0"}, "", "--count must be at least 1"},
		{"reinstall with neither", []string{"server", "reinstall", "s1"}, "", "exactly one of --password-stdin and --keypair"},
		{"reinstall with both", []string{"server", "reinstall", "s1", "--password-stdin", "--keypair", "k"}, "pw\n", "exactly one of --password-stdin and --keypair"},
		{"reinstall with empty stdin", []string{"server", "reinstall", "s1", "--password-stdin"}, "", "stdin holds no password"},
		{"reinstall with empty first line", []string{"server", "reinstall", "s1", "--password-stdin"}, "\nSecret@123\n", "stdin holds no password"},
		{"reinstall user data and both", []string{"server", "reinstall", "s1", "--user-data", "f", "--password-stdin", "--keypair", "k"}, "pw\n", "not both"},
		{"change-os without image", []string{"server", "change-os", "s1", "--password-stdin"}, "pw\n", "needs --image"},
		{"change-os with neither", []string{"server", "change-os", "s1", "--image", "i"}, "", "exactly one of --password-stdin and --keypair"},
		{"change-os cloud-init with neither", []string{"server", "change-os", "s1", "--image", "i", "--cloud-init"}, "", "or --user-data FILE alone"},
		{"reset-password without stdin flag", []string{"server", "reset-password", "s1"}, "", "needs --password-stdin"},
		{"reset-password with empty stdin", []string{"server", "reset-password", "s1", "--password-stdin"}, "", "stdin holds no password"},
		{"import without file", []string{"keypair", "import", "k"}, "", "needs --public-key-file"},
		{"job show without id", []string{"job", "show", "--wait"}, "", "want one job ID"},
		{"image list with an argument", []string{"image", "list", "x"}, "", "want no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ecsctl(t, nil, tt.stdin, tt.args...)
			if r.code != 2 {
				t.Errorf("exit status %d, want 2", r.code)
			}
			if !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.wantErr)
			}
			if len(r.reqs) != 0 {
				t.Errorf("made requests %v on a usage error", r.reqs)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	r := ecsctl(t, nil, "", "help")
	if r.code != 0 || r.stdout != usageText || r.stderr != "" {
		t.Errorf("help: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = ecsctl(t, nil, "", "server", "reinstall", "-h")
	if r.code != 0 || !strings.Contains(r.stderr, "usage: ecsctl server reinstall SERVER (--password-stdin | --keypair NAME)") ||
		!strings.Contains(r.stderr, "-with-stop") {
		t.Errorf("reinstall -h: exit %d, stderr %q", r.code, r.stderr)
	}
}

// Every command line sends the request the contract says.
func TestRequests(t *testing.T) {
	t.Parallel()
	userDataFile := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(userDataFile, []byte("#!/bin/sh\necho hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	job := map[string][]reply{"POST /cloudservers/action": {js(`{"job_id":"j1"}`)}}
	tests := []struct {
		name   string
		routes map[string][]reply
		stdin  string
		args   []string
		want   recorded
		stdout string
	}{
		{
			name:   "start",
			routes: job,
			args:   []string{"server", "start", "s1", "s2"},
			want:   recorded{"POST", "/v1/p1/cloudservers/action", `{"os-start":{"servers":[{"id":"s1"},{"id":"s2"}]}}` + "\n"},
			stdout: "JOB_ID:  j1\n",
		},
		{
			name:   "hard stop with the flag after the ids",
			routes: job,
			args:   []string{"server", "stop", "s1", "--hard", "s2"},
			want:   recorded{"POST", "/v1/p1/cloudservers/action", `{"os-stop":{"servers":[{"id":"s1"},{"id":"s2"}],"type":"HARD"}}` + "\n"},
			stdout: "JOB_ID:  j1\n",
		},
		{
			name:   "soft reboot, json output",
			routes: job,
			args:   []string{"server", "reboot", "-o", "json", "s1"},
			want:   recorded{"POST", "/v1/p1/cloudservers/action", `{"reboot":{"servers":[{"id":"s1"}],"type":"SOFT"}}` + "\n"},
			stdout: "{\n  \"job_id\": \"j1\"\n}\n",
		},
		{
			name:   "an id that looks like a flag after --",
			routes: job,
			args:   []string{"server", "start", "--", "-s1"},
			want:   recorded{"POST", "/v1/p1/cloudservers/action", `{"os-start":{"servers":[{"id":"-s1"}]}}` + "\n"},
			stdout: "JOB_ID:  j1\n",
		},
		{
			name:   "delete",
			routes: map[string][]reply{"POST /cloudservers/delete": {js(`{"job_id":"j2"}`)}},
			args:   []string{"server", "delete", "s1"},
			want:   recorded{"POST", "/v1/p1/cloudservers/delete", `{"servers":[{"id":"s1"}]}` + "\n"},
			stdout: "JOB_ID:  j2\n",
		},
		{
			name:   "create",
			routes: map[string][]reply{"POST /cloudservers": {js(`{"job_id":"j3","serverIds":["s1","s2"]}`)}},
			args:   []string{"server", "create", "--name", "web", "--image", "img", "--flavor", "s6.small.1", "--keypair", "kp", "--count", "2"},
			want: recorded{"POST", "/v1/p1/cloudservers",
				`{"server":{"name":"web","imageRef":"img","flavorRef":"s6.small.1","vpcid":"default","nics":[{"subnet_id":"default"}],"root_volume":{"volumetype":"SATA"},"key_name":"kp","count":2}}` + "\n"},
			stdout: "JOB_ID:      j3\nSERVER_IDS:  s1,s2\n",
		},
		{
			name:   "create with a password from stdin",
			routes: map[string][]reply{"POST /cloudservers": {js(`{"job_id":"j3","serverIds":["s1"]}`)}},
			stdin:  "Secret@123\r\n",
			args:   []string{"server", "create", "--name", "db", "--image", "img", "--flavor", "f", "--password-stdin", "--disk-size", "40", "--volume-type", "SSD", "--vpc", "v", "--subnet", "sn"},
			want: recorded{"POST", "/v1/p1/cloudservers",
				`{"server":{"name":"db","imageRef":"img","flavorRef":"f","vpcid":"v","nics":[{"subnet_id":"sn"}],"root_volume":{"volumetype":"SSD","size":40},"adminPass":"Secret@123","count":1}}` + "\n"},
			stdout: "JOB_ID:      j3\nSERVER_IDS:  s1\n",
		},
		{
			name:   "reinstall with a key pair, user id from the credentials",
			routes: map[string][]reply{"POST /cloudservers/s1/reinstallos": {js(`{"job_id":"j4"}`)}},
			args:   []string{"server", "reinstall", "s1", "--keypair", "kp", "--with-stop"},
			want:   recorded{"POST", "/v1/p1/cloudservers/s1/reinstallos", `{"os-reinstall":{"keyname":"kp","userid":"u1","mode":"withStopServer"}}` + "\n"},
			stdout: "JOB_ID:  j4\n",
		},
		{
			name:   "reinstall with a key pair and an explicit user id",
			routes: map[string][]reply{"POST /cloudservers/s1/reinstallos": {js(`{"job_id":"j4"}`)}},
			args:   []string{"server", "reinstall", "--user-id", "u9", "--keypair", "kp", "s1"},
			want:   recorded{"POST", "/v1/p1/cloudservers/s1/reinstallos", `{"os-reinstall":{"keyname":"kp","userid":"u9"}}` + "\n"},
			stdout: "JOB_ID:  j4\n",
		},
		{
			name:   "reinstall with a password reads only the first line",
			routes: map[string][]reply{"POST /cloudservers/s1/reinstallos": {js(`{"job_id":"j4"}`)}},
			stdin:  "Pa ss@123 \nsecond line\n",
			args:   []string{"server", "reinstall", "s1", "--password-stdin"},
			want:   recorded{"POST", "/v1/p1/cloudservers/s1/reinstallos", `{"os-reinstall":{"adminpass":"Pa ss@123 "}}` + "\n"},
			stdout: "JOB_ID:  j4\n",
		},
		{
			name:   "reinstall with user data uses the v2 API",
			routes: map[string][]reply{"POST /v2/p1/cloudservers/s1/reinstallos": {js(`{"job_id":"j5"}`)}},
			args:   []string{"server", "reinstall", "s1", "--user-data", userDataFile},
			want: recorded{"POST", "/v2/p1/cloudservers/s1/reinstallos",
				`{"os-reinstall":{"metadata":{"user_data":"IyEvYmluL3NoCmVjaG8gaGkK"}}}` + "\n"},
			stdout: "JOB_ID:  j5\n",
		},
		{
			name:   "change-os v1 with a key pair and stop",
			routes: map[string][]reply{"POST /cloudservers/s1/changeos": {js(`{"job_id":"j6"}`)}},
			args:   []string{"server", "change-os", "s1", "--image", "img2", "--keypair", "kp", "--with-stop"},
			want: recorded{"POST", "/v1/p1/cloudservers/s1/changeos",
				`{"os-change":{"keyname":"kp","userid":"u1","mode":"withStopServer","imageid":"img2"}}` + "\n"},
			stdout: "JOB_ID:  j6\n",
		},
		{
			name:   "change-os v2 with a password and user data",
			routes: map[string][]reply{"POST /v2/p1/cloudservers/s1/changeos": {js(`{"job_id":"j7"}`)}},
			stdin:  "Secret@123\n",
			args:   []string{"server", "change-os", "s1", "--image", "img3", "--password-stdin", "--user-data", userDataFile},
			want: recorded{"POST", "/v2/p1/cloudservers/s1/changeos",
				`{"os-change":{"adminpass":"Secret@123","metadata":{"user_data":"IyEvYmluL3NoCmVjaG8gaGkK"},"imageid":"img3"}}` + "\n"},
			stdout: "JOB_ID:  j7\n",
		},
		{
			name:   "reset-password",
			routes: map[string][]reply{"PUT /cloudservers/s1/os-reset-password": {{status: 204}}},
			stdin:  "Secret@123\n",
			args:   []string{"server", "reset-password", "s1", "--password-stdin"},
			want: recorded{"PUT", "/v1/p1/cloudservers/s1/os-reset-password",
				`{"reset-password":{"new_password":"Secret@123","is_check_password":true}}` + "\n"},
			stdout: "SERVER:    s1\nPASSWORD:  reset\n",
		},
		{
			name:   "list with filters",
			routes: map[string][]reply{"GET /cloudservers/detail": {js(`{"count":0,"servers":[]}`)}},
			args:   []string{"server", "list", "--name", "web", "--status", "ACTIVE", "--limit", "5", "--offset", "2"},
			want:   recorded{"GET", "/v1/p1/cloudservers/detail?limit=5&name=web&offset=2&status=ACTIVE", ""},
			stdout: "ID  NAME  STATUS  TASK_STATE  FLAVOR  IMAGE  IP\n",
		},
		{
			name:   "volume create",
			routes: map[string][]reply{"POST /v2/p1/cloudvolumes": {js(`{"job_id":"j5","volume_ids":["v1"]}`)}},
			args:   []string{"volume", "create", "--size", "10", "--name", "data"},
			want:   recorded{"POST", "/v2/p1/cloudvolumes", `{"volume":{"name":"data","size":10}}` + "\n"},
			stdout: "JOB_ID:     j5\nVOLUME_ID:  v1\n",
		},
		{
			name:   "server attach",
			routes: map[string][]reply{"POST /cloudservers/s1/attachvolume": {js(`{"job_id":"j6"}`)}},
			args:   []string{"server", "attach", "s1", "v1", "--device", "/dev/vda"},
			want:   recorded{"POST", "/v1/p1/cloudservers/s1/attachvolume", `{"volumeAttachment":{"volumeId":"v1","device":"/dev/vda"}}` + "\n"},
			stdout: "JOB_ID:  j6\n",
		},
		{
			name:   "server detach and delete",
			routes: map[string][]reply{"DELETE /cloudservers/s1/detachvolume/v1": {js(`{"job_id":"j7"}`)}},
			args:   []string{"server", "detach", "s1", "v1", "--delete"},
			want:   recorded{"DELETE", "/v1/p1/cloudservers/s1/detachvolume/v1?delete_flag=1", ""},
			stdout: "JOB_ID:  j7\n",
		},
		{
			name:   "keypair delete",
			routes: map[string][]reply{"DELETE /v2.1/p1/os-keypairs/kp": {{status: 204}}},
			args:   []string{"keypair", "delete", "kp"},
			want:   recorded{"DELETE", "/v2.1/p1/os-keypairs/kp", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ecsctl(t, tt.routes, tt.stdin, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if len(r.reqs) != 1 || r.reqs[0] != tt.want {
				t.Errorf("requests = %q\nwant        [%q]", r.reqs, tt.want)
			}
			if r.stdout != tt.stdout {
				t.Errorf("stdout = %q\nwant     %q", r.stdout, tt.stdout)
			}
			if strings.Contains(r.stdout+r.stderr, "Secret@123") || strings.Contains(r.stdout+r.stderr, "Pa ss@123") {
				t.Error("the password was printed")
			}
		})
	}
}

func TestReinstallWait(t *testing.T) {
	t.Parallel()
	const server = "/cloudservers/s1"
	srv := func(status, task string) reply {
		ts := "null"
		if task != "" {
			ts = `"` + task + `"`
		}
		return js(`{"server":{"id":"s1","status":"` + status + `","OS-EXT-STS:task_state":` + ts + `}}`)
	}
	tests := []struct {
		name       string
		job        []reply
		server     []reply
		wantCode   int
		wantStderr string
		wantStdout []string
	}{
		{
			name: "success",
			job: []reply{
				js(`{"job_id":"j1","status":"INIT"}`),
				js(`{"job_id":"j1","status":"RUNNING","entities":{"server_id":"s1"}}`),
				js(`{"job_id":"j1","status":"RUNNING","entities":{"server_id":"s1"}}`),
				js(`{"job_id":"j1","status":"SUCCESS","entities":{"server_id":"s1"},"error_code":null,"fail_reason":null}`),
			},
			server: []reply{srv("SHUTOFF", "rebuilding"), srv("REBUILD", "rebuilding"), srv("REBUILD", "rebuild_spawning"), srv("SHUTOFF", "")},
			wantStderr: "job j1: INIT\n" +
				"server s1: SHUTOFF, task_state rebuilding\n" +
				"job j1: RUNNING\n" +
				"server s1: REBUILD, task_state rebuilding\n" +
				"server s1: REBUILD, task_state rebuild_spawning\n" +
				"job j1: SUCCESS\n" +
				"server s1: SHUTOFF, task_state -\n",
			wantStdout: []string{"JOB_ID:", "j1", "STATUS:", "SUCCESS", "SERVER:", "s1"},
		},
		{
			name: "fail",
			job: []reply{
				js(`{"job_id":"j1","status":"RUNNING","entities":{"server_id":"s1"}}`),
				js(`{"job_id":"j1","status":"FAIL","entities":{"server_id":"s1"},"error_code":"Ecs.0202","fail_reason":"create system disk failed"}`),
			},
			server:   []reply{srv("REBUILD", "rebuilding"), srv("ERROR", "")},
			wantCode: 1,
			wantStderr: "job j1: RUNNING\n" +
				"server s1: REBUILD, task_state rebuilding\n" +
				"job j1: FAIL\n" +
				"server s1: ERROR, task_state -\n" +
				"ecsctl: job j1 failed: error_code Ecs.0202, fail_reason: create system disk failed\n",
			wantStdout: []string{"STATUS:", "FAIL", "ERROR_CODE:", "Ecs.0202", "FAIL_REASON:", "create system disk failed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ecsctl(t, map[string][]reply{
				"POST " + server + "/reinstallos": {js(`{"job_id":"j1"}`)},
				"GET /jobs/j1":                    tt.job,
				"GET " + server:                   tt.server,
			}, "Test@123abc\n", "server", "reinstall", "s1", "--password-stdin", "--wait")
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d", r.code, tt.wantCode)
			}
			if len(r.reqs) == 0 || r.reqs[0].body != `{"os-reinstall":{"adminpass":"Test@123abc"}}`+"\n" {
				t.Errorf("first request = %q", r.reqs)
			}
			if r.stderr != tt.wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, tt.wantStderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout %q lacks %q", r.stdout, w)
				}
			}
			if strings.Contains(r.stdout+r.stderr, "Test@123abc") {
				t.Error("the password was printed")
			}
			// One job poll and one server poll per round, and no more
			// after the end.
			var jobs, servers int
			for _, q := range r.reqs[1:] {
				switch q.path {
				case "/v1/p1/jobs/j1":
					jobs++
				case "/v1/p1" + server:
					servers++
				}
			}
			if jobs != len(tt.job) || servers != len(tt.server) {
				t.Errorf("polled the job %d and the server %d times, want %d and %d", jobs, servers, len(tt.job), len(tt.server))
			}
		})
	}
}

func TestDeleteWaitShowsGoneServers(t *testing.T) {
	t.Parallel()
	r := ecsctl(t, map[string][]reply{
		"POST /cloudservers/delete": {js(`{"job_id":"j1"}`)},
		"GET /jobs/j1": {
			js(`{"job_id":"j1","status":"RUNNING","entities":{"sub_jobs":[{"job_id":"a","status":"RUNNING","entities":{"server_id":"s1"}}]}}`),
			js(`{"job_id":"j1","status":"SUCCESS","entities":{"sub_jobs":[{"job_id":"a","status":"SUCCESS","entities":{"server_id":"s1"}}]}}`),
		},
		"GET /cloudservers/s1": {
			js(`{"server":{"id":"s1","status":"ACTIVE","OS-EXT-STS:task_state":"deleting"}}`),
			{status: 404, body: `{"error":{"code":"Ecs.0114","message":"The ECS does not exist."}}`},
		},
	}, "", "server", "delete", "s1", "--wait")
	want := "job j1: RUNNING (0/1 sub-jobs done)\n" +
		"server s1: ACTIVE, task_state deleting\n" +
		"job j1: SUCCESS (1/1 sub-jobs done)\n" +
		"server s1: gone\n"
	if r.code != 0 || r.stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}
	if !strings.Contains(r.stdout, "SUB_JOB") || !strings.Contains(r.stdout, "a     ") {
		t.Errorf("stdout lacks the sub-job table:\n%s", r.stdout)
	}
}

func TestAPIErrorOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reply reply
		want  string
	}{
		{"ECS shape", reply{404, `{"error":{"code":"Ecs.0114","message":"The ECS does not exist."}}`, "req-1"},
			"ecsctl: Ecs.0114: The ECS does not exist. (request id req-1)\n"},
		{"gateway shape", reply{401, `{"error_msg":"verify aksk signature fail","error_code":"APIGW.0301","request_id":"req-2"}`, ""},
			"ecsctl: APIGW.0301: verify aksk signature fail (request id req-2)\n"},
		{"not JSON", reply{502, `bad gateway`, ""}, "ecsctl: HTTP 502: bad gateway\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ecsctl(t, map[string][]reply{"GET /cloudservers/s1": {tt.reply}}, "", "server", "show", "s1")
			if r.code != 1 || r.stderr != tt.want || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, \"\", %q", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

func TestOutput(t *testing.T) {
	t.Parallel()
	const serverJSON = `{"id":"s1","name":"web","status":"ACTIVE","OS-EXT-STS:task_state":null,"OS-EXT-STS:vm_state":"active",
		"OS-EXT-STS:power_state":1,"locked":false,"image":{"id":"img"},"flavor":{"id":"s6.small.1","name":"s6.small.1","vcpus":"1","ram":"1024","disk":"0"},
		"key_name":"kp","metadata":{},"addresses":{"vpc":[{"version":"4","addr":"192.168.0.2"}]},
		"os-extended-volumes:volumes_attached":[{"id":"v1","device":"/dev/vda","bootIndex":"0","delete_on_termination":"true"}],
		"created":"2024-01-01T00:00:00Z","updated":"2024-01-01T00:01:00Z"}`
	tests := []struct {
		name   string
		routes map[string][]reply
		args   []string
		want   string
	}{
		{
			name: "server list",
			routes: map[string][]reply{"GET /cloudservers/detail": {js(`{"count":2,"servers":[` + serverJSON +
				`,{"id":"s2","name":"db","status":"REBUILD","OS-EXT-STS:task_state":"rebuilding","flavor":{"id":"f2"},"image":{"id":"img2"}}]}`)}},
			args: []string{"server", "list"},
			want: "ID  NAME  STATUS   TASK_STATE  FLAVOR      IMAGE  IP\n" +
				"s1  web   ACTIVE   -           s6.small.1  img    192.168.0.2\n" +
				"s2  db    REBUILD  rebuilding  f2          img2   -\n",
		},
		{
			name:   "server show",
			routes: map[string][]reply{"GET /cloudservers/s1": {js(`{"server":` + serverJSON + `}`)}},
			args:   []string{"server", "show", "s1"},
			want: "ID:           s1\n" +
				"NAME:         web\n" +
				"STATUS:       ACTIVE\n" +
				"TASK_STATE:   -\n" +
				"VM_STATE:     active\n" +
				"POWER_STATE:  1\n" +
				"LOCKED:       false\n" +
				"IMAGE:        img\n" +
				"FLAVOR:       s6.small.1 (1 vCPU, 1024 MiB)\n" +
				"KEYPAIR:      kp\n" +
				"IP:           192.168.0.2\n" +
				"VOLUMES:      v1 (/dev/vda)\n" +
				"CREATED:      2024-01-01T00:00:00Z\n" +
				"UPDATED:      2024-01-01T00:01:00Z\n",
		},
		{
			name: "server show names the host of a server placed on one",
			routes: map[string][]reply{"GET /cloudservers/s1": {js(`{"server":` +
				strings.Replace(serverJSON, `"key_name"`, `"OS-EXT-SRV-ATTR:host":"node2","key_name"`, 1) + `}`)}},
			args: []string{"server", "show", "s1"},
			want: "ID:           s1\n" +
				"NAME:         web\n" +
				"STATUS:       ACTIVE\n" +
				"TASK_STATE:   -\n" +
				"VM_STATE:     active\n" +
				"POWER_STATE:  1\n" +
				"LOCKED:       false\n" +
				"IMAGE:        img\n" +
				"FLAVOR:       s6.small.1 (1 vCPU, 1024 MiB)\n" +
				"KEYPAIR:      kp\n" +
				"IP:           192.168.0.2\n" +
				"VOLUMES:      v1 (/dev/vda)\n" +
				"CREATED:      2024-01-01T00:00:00Z\n" +
				"UPDATED:      2024-01-01T00:01:00Z\n" +
				"HOST:         node2\n",
		},
		{
			name:   "server show json keeps a null task_state and string flavor sizes",
			routes: map[string][]reply{"GET /cloudservers/s1": {js(`{"server":` + serverJSON + `}`)}},
			args:   []string{"-o", "json", "server", "show", "s1"},
			want:   "", // checked by substrings below
		},
		{
			name: "image list",
			routes: map[string][]reply{"GET /v2/cloudimages": {js(`{"images":[{"id":"i1","name":"debian-12","status":"active","__os_type":"Linux",` +
				`"__platform":"Debian","__os_version":"Debian GNU/Linux 12","min_disk":2,"min_ram":512,"disk_format":"qcow2"},` +
				`{"id":"i2","name":"custom","status":"queued","__platform":"Other","disk_format":"raw"}]}`)}},
			args: []string{"image", "list"},
			want: "ID  NAME       STATUS  OS_TYPE  OS                   MIN_DISK_GB  MIN_RAM_MB  FORMAT\n" +
				"i1  debian-12  active  Linux    Debian GNU/Linux 12  2            512         qcow2\n" +
				"i2  custom     queued  -        Other                0            0           raw\n",
		},
		{
			name: "flavor list",
			routes: map[string][]reply{"GET /cloudservers/flavors": {js(`{"flavors":[{"id":"s6.small.1","name":"s6.small.1","vcpus":"1","ram":1024,"disk":"0"},` +
				`{"id":"s6.large.2","name":"s6.large.2","vcpus":"2","ram":4096,"disk":"40"}]}`)}},
			args: []string{"flavor", "list"},
			want: "ID          NAME        VCPUS  RAM_MB  DISK_GB\n" +
				"s6.small.1  s6.small.1  1      1024    0\n" +
				"s6.large.2  s6.large.2  2      4096    40\n",
		},
		{
			name:   "flavor list json is an array",
			routes: map[string][]reply{"GET /cloudservers/flavors": {js(`{"flavors":[]}`)}},
			args:   []string{"flavor", "list", "-o", "json"},
			want:   "[]\n",
		},
		{
			name: "keypair list",
			routes: map[string][]reply{"GET /v2.1/p1/os-keypairs": {js(`{"keypairs":[{"keypair":{"name":"kp","type":"ssh","fingerprint":"SHA256:abc","public_key":"ssh-ed25519 AAAA"}},` +
				`{"keypair":{"name":"other","fingerprint":"SHA256:def","public_key":"ssh-rsa AAAA"}}]}`)}},
			args: []string{"keypair", "list"},
			want: "NAME   TYPE  FINGERPRINT\n" +
				"kp     ssh   SHA256:abc\n" +
				"other  -     SHA256:def\n",
		},
		{
			name: "job show with sub-jobs",
			routes: map[string][]reply{"GET /jobs/j1": {js(`{"job_id":"j1","job_type":"batchStopServers","status":"FAIL","begin_time":"b","end_time":"e",` +
				`"error_code":null,"fail_reason":null,"entities":{"sub_jobs_total":2,"sub_jobs":[` +
				`{"job_id":"j1a","job_type":"stopServer","status":"SUCCESS","entities":{"server_id":"s1"}},` +
				`{"job_id":"j1b","job_type":"stopServer","status":"FAIL","error_code":"Ecs.0226","fail_reason":"no","entities":{"server_id":"s2"}}]}}`)}},
			args: []string{"job", "show", "j1"},
			want: "JOB_ID:       j1\n" +
				"TYPE:         batchStopServers\n" +
				"STATUS:       FAIL\n" +
				"SERVER:       s1,s2\n" +
				"BEGIN:        b\n" +
				"END:          e\n" +
				"ERROR_CODE:   -\n" +
				"FAIL_REASON:  -\n" +
				"\n" +
				"SUB_JOB  TYPE        STATUS   SERVER  ERROR_CODE  FAIL_REASON\n" +
				"j1a      stopServer  SUCCESS  s1      -           -\n" +
				"j1b      stopServer  FAIL     s2      Ecs.0226    no\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ecsctl(t, tt.routes, "", tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if tt.want == "" {
				for _, w := range []string{`"OS-EXT-STS:task_state": null`, `"vcpus": "1"`, `"delete_on_termination": "true"`, `"OS-EXT-STS:power_state": 1`} {
					if !strings.Contains(r.stdout, w) {
						t.Errorf("stdout lacks %s:\n%s", w, r.stdout)
					}
				}
				return
			}
			if r.stdout != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.want)
			}
		})
	}
}

func TestKeypairCreate(t *testing.T) {
	t.Parallel()
	const priv = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
	routes := map[string][]reply{"POST /v2.1/p1/os-keypairs": {js(`{"keypair":{"name":"kp","type":"ssh","fingerprint":"SHA256:abc",` +
		`"public_key":"ssh-ed25519 AAAA","private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n","user_id":"u1"}}`)}}

	t.Run("to a file", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "kp.pem")
		r := ecsctl(t, routes, "", "keypair", "create", "kp", "--out", out)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if len(r.reqs) != 1 || r.reqs[0].body != `{"keypair":{"name":"kp"}}`+"\n" {
			t.Errorf("requests = %q", r.reqs)
		}
		b, err := os.ReadFile(out)
		if err != nil || string(b) != priv {
			t.Fatalf("key file = %q, %v", b, err)
		}
		st, _ := os.Stat(out)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
		}
		if strings.Contains(r.stdout, "PRIVATE KEY") || !strings.Contains(r.stdout, "SHA256:abc") {
			t.Errorf("stdout = %q, want the fingerprint and not the private key", r.stdout)
		}
	})
	t.Run("to stdout", func(t *testing.T) {
		t.Parallel()
		r := ecsctl(t, routes, "", "keypair", "create", "kp")
		if r.code != 0 || r.stdout != priv {
			t.Errorf("exit %d, stdout %q, want the private key", r.code, r.stdout)
		}
	})
	t.Run("existing file is not overwritten and no key is created", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "kp.pem")
		if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := ecsctl(t, routes, "", "keypair", "create", "kp", "--out", out)
		if r.code != 1 || len(r.reqs) != 0 {
			t.Errorf("exit %d, requests %q; want 1 and none", r.code, r.reqs)
		}
		if b, _ := os.ReadFile(out); string(b) != "old" {
			t.Errorf("file overwritten: %q", b)
		}
	})
	t.Run("API error removes the file", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "kp.pem")
		r := ecsctl(t, map[string][]reply{"POST /v2.1/p1/os-keypairs": {{409, `{"error":{"code":"Ecs.0316","message":"exists"}}`, ""}}},
			"", "keypair", "create", "kp", "--out", out)
		if r.code != 1 || r.stderr != "ecsctl: Ecs.0316: exists\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("key file left behind: %v", err)
		}
	})
}

func TestKeypairImport(t *testing.T) {
	t.Parallel()
	pub := filepath.Join(t.TempDir(), "id.pub")
	if err := os.WriteFile(pub, []byte("ssh-ed25519 AAAA me@host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := ecsctl(t, map[string][]reply{"POST /v2.1/p1/os-keypairs": {js(`{"keypair":{"name":"kp","fingerprint":"SHA256:x","public_key":"ssh-ed25519 AAAA me@host"}}`)}},
		"", "keypair", "import", "kp", "--public-key-file", pub)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if want := `{"keypair":{"name":"kp","public_key":"ssh-ed25519 AAAA me@host"}}` + "\n"; len(r.reqs) != 1 || r.reqs[0].body != want {
		t.Errorf("requests = %q, want body %q", r.reqs, want)
	}
	if !strings.Contains(r.stdout, "FINGERPRINT:  SHA256:x") {
		t.Errorf("stdout = %q", r.stdout)
	}
}
