package client

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const (
	testAK  = "TESTAK123"
	testSK  = "TESTSK456"
	testPID = "0123456789abcdef0123456789abcdef"
)

// captured is one request as the fake API saw it.
type captured struct {
	Method      string
	EscapedPath string
	Query       string
	Header      http.Header
	Body        string
}

// fakeAPI answers every request with the next canned reply (the last one
// repeats) and records what it received.
type fakeAPI struct {
	t       *testing.T
	mu      sync.Mutex
	reqs    []captured
	replies []reply
}

type reply struct {
	status int
	body   string
	header map[string]string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("read body: %v", err)
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, captured{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), string(body)})
	rp := reply{status: 200, body: "{}"}
	if len(f.replies) > 0 {
		rp = f.replies[min(n, len(f.replies)-1)]
	}
	f.mu.Unlock()
	if err := verifySignature(r, body); err != nil {
		f.t.Errorf("%s %s: bad signature: %v", r.Method, r.URL.Path, err)
	}
	for k, v := range rp.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rp.status)
	io.WriteString(w, rp.body)
}

func (f *fakeAPI) requests() []captured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]captured(nil), f.reqs...)
}

// setup starts a fake API answering with replies and a Client for it.
func setup(t *testing.T, replies ...reply) (*Client, *fakeAPI) {
	t.Helper()
	f := &fakeAPI{t: t, replies: replies}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := New(Config{Endpoint: srv.URL, AccessKey: testAK, SecretKey: testSK, ProjectID: testPID, UserID: "u1"})
	return c, f
}

func ok(body string) reply { return reply{status: 200, body: body} }

func TestRequests(t *testing.T) {
	t.Parallel()
	p := "/v1/" + testPID
	tests := []struct {
		name   string
		reply  string
		call   func(ctx context.Context, c *Client) (any, error)
		method string
		path   string
		query  string
		body   string // "" means no body
		want   any
	}{
		{
			name:  "create servers",
			reply: `{"job_id":"j1","serverIds":["s1","s2"]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				job, ids, err := c.CreateServers(ctx, CreateServerRequest{
					Name: "web", ImageRef: "img", FlavorRef: "s6.small.1", VPCID: "vpc",
					NICs: []NIC{{SubnetID: "sn"}}, RootVolume: RootVolume{VolumeType: "SATA"},
					KeyName: "kp", Count: 2,
				})
				return []any{job, ids}, err
			},
			method: "POST", path: p + "/cloudservers",
			body: `{"server":{"name":"web","imageRef":"img","flavorRef":"s6.small.1","vpcid":"vpc","nics":[{"subnet_id":"sn"}],"root_volume":{"volumetype":"SATA"},"key_name":"kp","count":2}}` + "\n",
			want: []any{"j1", []string{"s1", "s2"}},
		},
		{
			name:  "create server with password and disk size",
			reply: `{"job_id":"j1","serverIds":["s1"]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				_, _, err := c.CreateServers(ctx, CreateServerRequest{
					Name: "db", ImageRef: "img", FlavorRef: "f", VPCID: "vpc",
					NICs: []NIC{{SubnetID: "sn"}}, RootVolume: RootVolume{VolumeType: "SSD", Size: 40},
					AdminPass: "Secret@123",
				})
				return nil, err
			},
			method: "POST", path: p + "/cloudservers",
			body: `{"server":{"name":"db","imageRef":"img","flavorRef":"f","vpcid":"vpc","nics":[{"subnet_id":"sn"}],"root_volume":{"volumetype":"SSD","size":40},"adminPass":"Secret@123"}}` + "\n",
		},
		{
			name:  "show server",
			reply: `{"server":{"id":"s1","name":"web","status":"SHUTOFF","OS-EXT-STS:task_state":null,"OS-EXT-STS:power_state":4,"locked":false,"flavor":{"id":"f","vcpus":"1","ram":"1024","disk":"0"}}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				s, err := c.ShowServer(ctx, "s1")
				return []any{s.ID, s.Status, s.Task(), s.PowerState, s.Flavor.VCPUs, s.Flavor.RAM}, err
			},
			method: "GET", path: p + "/cloudservers/s1",
			want: []any{"s1", "SHUTOFF", "", 4, LooseString("1"), LooseString("1024")},
		},
		{
			name:  "show server escapes the id",
			reply: `{"server":{"id":"a/b"}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ShowServer(ctx, "a/b")
				return nil, err
			},
			method: "GET", path: p + "/cloudservers/a%2Fb",
		},
		{
			name:  "list servers with filters",
			reply: `{"count":3,"servers":[{"id":"s1","OS-EXT-STS:task_state":"rebuilding"}]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				l, err := c.ListServers(ctx, ListServersOptions{Offset: 2, Limit: 1, Name: "web", Status: "ACTIVE"})
				return []any{l.Count, len(l.Servers), l.Servers[0].Task()}, err
			},
			method: "GET", path: p + "/cloudservers/detail", query: "limit=1&name=web&offset=2&status=ACTIVE",
			want: []any{3, 1, "rebuilding"},
		},
		{
			name:  "list servers without filters",
			reply: `{"count":0,"servers":[]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				l, err := c.ListServers(ctx, ListServersOptions{})
				return l.Count, err
			},
			method: "GET", path: p + "/cloudservers/detail",
			want: 0,
		},
		{
			name:  "start",
			reply: `{"job_id":"j2"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.StartServers(ctx, "s1", "s2")
			},
			method: "POST", path: p + "/cloudservers/action",
			body: `{"os-start":{"servers":[{"id":"s1"},{"id":"s2"}]}}` + "\n",
			want: "j2",
		},
		{
			name:  "soft stop",
			reply: `{"job_id":"j3"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.StopServers(ctx, false, "s1")
			},
			method: "POST", path: p + "/cloudservers/action",
			body: `{"os-stop":{"servers":[{"id":"s1"}],"type":"SOFT"}}` + "\n",
			want: "j3",
		},
		{
			name:  "hard stop",
			reply: `{"job_id":"j3"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.StopServers(ctx, true, "s1")
			},
			method: "POST", path: p + "/cloudservers/action",
			body: `{"os-stop":{"servers":[{"id":"s1"}],"type":"HARD"}}` + "\n",
			want: "j3",
		},
		{
			name:  "hard reboot",
			reply: `{"job_id":"j4"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RebootServers(ctx, true, "s1")
			},
			method: "POST", path: p + "/cloudservers/action",
			body: `{"reboot":{"servers":[{"id":"s1"}],"type":"HARD"}}` + "\n",
			want: "j4",
		},
		{
			name:  "soft reboot",
			reply: `{"job_id":"j4"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RebootServers(ctx, false, "s1")
			},
			method: "POST", path: p + "/cloudservers/action",
			body: `{"reboot":{"servers":[{"id":"s1"}],"type":"SOFT"}}` + "\n",
			want: "j4",
		},
		{
			name:  "delete",
			reply: `{"job_id":"j5"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.DeleteServers(ctx, "s1", "s2")
			},
			method: "POST", path: p + "/cloudservers/delete",
			body: `{"servers":[{"id":"s1"},{"id":"s2"}]}` + "\n",
			want: "j5",
		},
		{
			name:  "reinstall with password",
			reply: `{"job_id":"j6"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReinstallServer(ctx, "s1", ReinstallOptions{AdminPass: "Test@123abc"})
			},
			method: "POST", path: p + "/cloudservers/s1/reinstallos",
			body: `{"os-reinstall":{"adminpass":"Test@123abc"}}` + "\n",
			want: "j6",
		},
		{
			name:  "reinstall with key pair and stop",
			reply: `{"job_id":"j7"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReinstallServer(ctx, "s1", ReinstallOptions{KeyName: "kp", UserID: "u1", Mode: ModeWithStopServer})
			},
			method: "POST", path: p + "/cloudservers/s1/reinstallos",
			body: `{"os-reinstall":{"keyname":"kp","userid":"u1","mode":"withStopServer"}}` + "\n",
			want: "j7",
		},
		{
			name:  "reinstall with nothing sends an empty option",
			reply: `{"job_id":"j8"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReinstallServer(ctx, "s1", ReinstallOptions{})
			},
			method: "POST", path: p + "/cloudservers/s1/reinstallos",
			body: `{"os-reinstall":{}}` + "\n",
			want: "j8",
		},
		{
			name:  "show job",
			reply: `{"job_id":"j1","job_type":"reinstallOS","status":"FAIL","error_code":"Ecs.0202","fail_reason":"disk","begin_time":"b","end_time":"e","entities":{"server_id":"s1"}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ShowJob(ctx, "j1")
			},
			method: "GET", path: p + "/jobs/j1",
			want: Job{ID: "j1", Type: "reinstallOS", Status: "FAIL", ErrorCode: "Ecs.0202", FailReason: "disk",
				BeginTime: "b", EndTime: "e", Entities: JobEntities{ServerID: "s1"}},
		},
		{
			name:  "show batch job",
			reply: `{"job_id":"j1","status":"SUCCESS","error_code":null,"fail_reason":null,"entities":{"sub_jobs_total":1,"sub_jobs":[{"job_id":"j1a","status":"SUCCESS","entities":{"server_id":"s1"}}]}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ShowJob(ctx, "j1")
			},
			method: "GET", path: p + "/jobs/j1",
			want: Job{ID: "j1", Status: "SUCCESS", Entities: JobEntities{SubJobsTotal: 1,
				SubJobs: []SubJob{{ID: "j1a", Status: "SUCCESS", Entities: SubJobEntities{ServerID: "s1"}}}}},
		},
		{
			name:  "create key pair",
			reply: `{"keypair":{"name":"kp","public_key":"ssh-ed25519 AAA","private_key":"-----BEGIN","fingerprint":"SHA256:x","user_id":"u1","type":"ssh"}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateKeypair(ctx, "kp")
			},
			method: "POST", path: "/v2.1/" + testPID + "/os-keypairs",
			body: `{"keypair":{"name":"kp"}}` + "\n",
			want: Keypair{Name: "kp", Type: "ssh", PublicKey: "ssh-ed25519 AAA", PrivateKey: "-----BEGIN", Fingerprint: "SHA256:x", UserID: "u1"},
		},
		{
			name:  "import key pair",
			reply: `{"keypair":{"name":"kp","public_key":"ssh-ed25519 AAA","fingerprint":"SHA256:x"}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ImportKeypair(ctx, "kp", "ssh-ed25519 AAA")
			},
			method: "POST", path: "/v2.1/" + testPID + "/os-keypairs",
			body: `{"keypair":{"name":"kp","public_key":"ssh-ed25519 AAA"}}` + "\n",
			want: Keypair{Name: "kp", PublicKey: "ssh-ed25519 AAA", Fingerprint: "SHA256:x"},
		},
		{
			name:  "list key pairs",
			reply: `{"keypairs":[{"keypair":{"name":"a","fingerprint":"fa","public_key":"pa"}},{"keypair":{"name":"b","fingerprint":"fb","public_key":"pb","type":"ssh"}}]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListKeypairs(ctx)
			},
			method: "GET", path: "/v2.1/" + testPID + "/os-keypairs",
			want: []Keypair{{Name: "a", Fingerprint: "fa", PublicKey: "pa"}, {Name: "b", Fingerprint: "fb", PublicKey: "pb", Type: "ssh"}},
		},
		{
			name:  "show key pair",
			reply: `{"keypair":{"name":"kp","id":7,"fingerprint":"f","public_key":"p","created_at":"2024-01-01T00:00:00Z"}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ShowKeypair(ctx, "kp")
			},
			method: "GET", path: "/v2.1/" + testPID + "/os-keypairs/kp",
			want: Keypair{Name: "kp", ID: 7, Fingerprint: "f", PublicKey: "p", CreatedAt: "2024-01-01T00:00:00Z"},
		},
		{
			name:  "delete key pair",
			reply: ``,
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.DeleteKeypair(ctx, "kp")
			},
			method: "DELETE", path: "/v2.1/" + testPID + "/os-keypairs/kp",
		},
		{
			name:  "list images",
			reply: `{"images":[{"id":"i1","name":"debian","status":"active","__os_type":"Linux","__platform":"Debian","__os_version":"Debian 12","min_disk":2,"min_ram":512,"disk_format":"qcow2","size":1234,"visibility":"public"}]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListImages(ctx)
			},
			method: "GET", path: "/v2/cloudimages",
			want: []Image{{ID: "i1", Name: "debian", Status: "active", OSType: "Linux", Platform: "Debian", OSVersion: "Debian 12",
				MinDisk: 2, MinRAM: 512, DiskFormat: "qcow2", Size: 1234, Visibility: "public"}},
		},
		{
			name:  "list flavors decodes strings and numbers",
			reply: `{"flavors":[{"id":"s6.small.1","name":"s6.small.1","vcpus":"1","ram":1024,"disk":"0"},{"id":"big","name":"big","vcpus":8,"ram":"16384","disk":40}]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListFlavors(ctx)
			},
			method: "GET", path: p + "/cloudservers/flavors",
			want: []Flavor{{ID: "s6.small.1", Name: "s6.small.1", VCPUs: 1, RAM: 1024, Disk: 0}, {ID: "big", Name: "big", VCPUs: 8, RAM: 16384, Disk: 40}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, ok(tt.reply))
			got, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result = %#v\nwant     %#v", got, tt.want)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.EscapedPath != tt.path || r.Query != tt.query {
				t.Errorf("request = %s %s?%s, want %s %s?%s", r.Method, r.EscapedPath, r.Query, tt.method, tt.path, tt.query)
			}
			if r.Body != tt.body {
				t.Errorf("body = %q\nwant   %q", r.Body, tt.body)
			}
			wantCT := "application/json"
			if tt.body != "" {
				wantCT = "application/json;charset=UTF-8"
			}
			for h, want := range map[string]string{
				"Content-Type": wantCT,
				"User-Agent":   "ecsctl/0.1",
				"X-Project-Id": testPID,
			} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			if r.Header.Get("X-Sdk-Date") == "" || !strings.HasPrefix(r.Header.Get("Authorization"), "SDK-HMAC-SHA256 Access="+testAK+", ") {
				t.Errorf("request not signed: X-Sdk-Date %q, Authorization %q", r.Header.Get("X-Sdk-Date"), r.Header.Get("Authorization"))
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		reply   reply
		want    APIError
		wantMsg string
	}{
		{
			name:    "ECS shape",
			reply:   reply{400, `{"error":{"code":"Ecs.0005","message":"Request parameter error."}}`, map[string]string{"X-Request-Id": "req-abc123"}},
			want:    APIError{Status: 400, Code: "Ecs.0005", Message: "Request parameter error.", RequestID: "req-abc123"},
			wantMsg: "Ecs.0005: Request parameter error. (request id req-abc123)",
		},
		{
			name:    "gateway shape",
			reply:   reply{404, `{"error_code":"Ecs.0114","error_msg":"Instance does not exist."}`, map[string]string{"X-Request-Id": "r2"}},
			want:    APIError{Status: 404, Code: "Ecs.0114", Message: "Instance does not exist.", RequestID: "r2"},
			wantMsg: "Ecs.0114: Instance does not exist. (request id r2)",
		},
		{
			name:    "gateway shape with request_id in the body",
			reply:   reply{401, `{"error_msg":"verify aksk signature fail","error_code":"APIGW.0301","request_id":"r3"}`, nil},
			want:    APIError{Status: 401, Code: "APIGW.0301", Message: "verify aksk signature fail", RequestID: "r3"},
			wantMsg: "APIGW.0301: verify aksk signature fail (request id r3)",
		},
		{
			name:    "top-level code and message",
			reply:   reply{400, `{"code":"Common.0011","message":"no such job"}`, nil},
			want:    APIError{Status: 400, Code: "Common.0011", Message: "no such job"},
			wantMsg: "Common.0011: no such job",
		},
		{
			name:    "gateway shape wins over a nested one",
			reply:   reply{400, `{"error":{"code":"Ecs.0001","message":"inner"},"error_code":"Ecs.0002","error_msg":"outer"}`, nil},
			want:    APIError{Status: 400, Code: "Ecs.0002", Message: "outer"},
			wantMsg: "Ecs.0002: outer",
		},
		{
			name:    "plain text",
			reply:   reply{500, "boom\n", map[string]string{"X-Request-Id": "r4"}},
			want:    APIError{Status: 500, Message: "boom", RequestID: "r4"},
			wantMsg: "HTTP 500: boom (request id r4)",
		},
		{
			name:    "code without message is kept raw",
			reply:   reply{400, `{"error":{"code":"Ecs.0001"}}`, nil},
			want:    APIError{Status: 400, Message: `{"error":{"code":"Ecs.0001"}}`},
			wantMsg: `HTTP 400: {"error":{"code":"Ecs.0001"}}`,
		},
		{
			name:    "Nova numeric code is kept raw",
			reply:   reply{404, `{"itemNotFound":{"code":404,"message":"x"}}`, nil},
			want:    APIError{Status: 404, Message: `{"itemNotFound":{"code":404,"message":"x"}}`},
			wantMsg: `HTTP 404: {"itemNotFound":{"code":404,"message":"x"}}`,
		},
		{
			name:    "long raw body is cut",
			reply:   reply{500, strings.Repeat("x", 5000), nil},
			want:    APIError{Status: 500, Message: strings.Repeat("x", 2048) + "..."},
			wantMsg: "HTTP 500: " + strings.Repeat("x", 2048) + "...",
		},
		{
			name:    "empty body",
			reply:   reply{503, ``, nil},
			want:    APIError{Status: 503},
			wantMsg: "HTTP 503: Service Unavailable",
		},
		{
			name:    "redirects are not followed",
			reply:   reply{302, ``, map[string]string{"Location": "http://elsewhere.invalid/"}},
			want:    APIError{Status: 302},
			wantMsg: "HTTP 302: Found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, tt.reply)
			_, err := c.ShowServer(context.Background(), "s1")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if *ae != tt.want {
				t.Errorf("err = %#v\nwant  %#v", *ae, tt.want)
			}
			if ae.Error() != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", ae.Error(), tt.wantMsg)
			}
			if tt.want.Code != "" && !IsCode(err, tt.want.Code) {
				t.Errorf("IsCode(err, %q) = false", tt.want.Code)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

func TestDecodeErrorOn2xx(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, ok(`{"server":{"id":1}}`))
	_, err := c.ShowServer(context.Background(), "s1")
	var ae *APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("err = %v, want a decode error that is not an APIError", err)
	}
}

func TestNewEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct{ endpoint, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/ignored/path", "http://127.0.0.1:8080"},
		{"ecs.example.com", "https://ecs.example.com"},
		{" https://ecs.example.com:8443 ", "https://ecs.example.com:8443"},
		{"", ""},
		{"http://", ""},
		{"ftp://ecs.example.com", ""},
		{"http://bad host", ""},
	}
	for _, tt := range tests {
		c := New(Config{Endpoint: tt.endpoint})
		if tt.want == "" {
			if _, err := c.ListImages(context.Background()); err == nil || !strings.Contains(err.Error(), "bad endpoint") {
				t.Errorf("New(%q): call err = %v, want a bad endpoint error", tt.endpoint, err)
			}
			continue
		}
		if c.baseErr != nil || c.base.String() != tt.want {
			t.Errorf("New(%q) base = %v (%v), want %q", tt.endpoint, c.base, c.baseErr, tt.want)
		}
	}
}

func TestServerFaultDecodesAnyJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault string
		want  Fault
	}{
		{`{"code":500,"message":"disk","details":"d","created":"c"}`, Fault{Code: 500, Message: "disk", Details: "d", Created: "c"}},
		{`{"code":"500","message":"disk"}`, Fault{Code: 500, Message: "disk"}},
		{`"plain text"`, Fault{Message: "plain text"}},
		{`[1,2]`, Fault{Message: "[1,2]"}},
		{`{"code":"x"}`, Fault{Message: `{"code":"x"}`}},
	}
	for _, tt := range tests {
		c, _ := setup(t, ok(`{"server":{"id":"s1","status":"ERROR","fault":`+tt.fault+`}}`))
		s, err := c.ShowServer(context.Background(), "s1")
		if err != nil {
			t.Errorf("fault %s: %v", tt.fault, err)
			continue
		}
		if s.Fault == nil || *s.Fault != tt.want {
			t.Errorf("fault %s = %+v, want %+v", tt.fault, s.Fault, tt.want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials.json")
	writeFile(t, file, `{"access_key":"AK","secret_key":"SK","project_id":"P","user_id":"U","endpoint":"http://127.0.0.1:1"}`)
	partial := filepath.Join(dir, "partial.json")
	writeFile(t, partial, `{"access_key":"AK"}`)
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, `{"access_key":`)
	withCA := filepath.Join(dir, "with-ca.json")
	writeFile(t, withCA, `{"access_key":"AK","secret_key":"SK","project_id":"P","endpoint":"https://h:1","ca_cert":"tls/ca.pem","later":"ignored"}`)
	absCA := filepath.Join(dir, "abs-ca.json")
	writeFile(t, absCA, `{"access_key":"AK","secret_key":"SK","project_id":"P","endpoint":"https://h:1","ca_cert":"/etc/ecsd/ca.pem"}`)
	fromFile := Config{Endpoint: "http://127.0.0.1:1", AccessKey: "AK", SecretKey: "SK", ProjectID: "P", UserID: "U"}

	tests := []struct {
		name    string
		path    string
		env     map[string]string
		want    Config
		wantErr string
		noFile  bool // the error is a *NoCredentialsError
	}{
		{name: "file", path: file, want: fromFile},
		{name: "file from ECS_CREDENTIALS", env: map[string]string{"ECS_CREDENTIALS": file}, want: fromFile},
		{name: "path argument wins over ECS_CREDENTIALS", path: file, env: map[string]string{"ECS_CREDENTIALS": partial}, want: fromFile},
		{
			name: "environment overrides the file",
			path: file,
			env: map[string]string{"ECS_ENDPOINT": "http://e", "ECS_ACCESS_KEY": "AK2", "ECS_SECRET_KEY": "SK2",
				"ECS_PROJECT_ID": "P2", "ECS_USER_ID": "U2"},
			want: Config{Endpoint: "http://e", AccessKey: "AK2", SecretKey: "SK2", ProjectID: "P2", UserID: "U2"},
		},
		{
			name: "environment completes a partial file",
			path: partial,
			env:  map[string]string{"ECS_ENDPOINT": "http://e", "ECS_SECRET_KEY": "SK2", "ECS_PROJECT_ID": "P2"},
			want: Config{Endpoint: "http://e", AccessKey: "AK", SecretKey: "SK2", ProjectID: "P2"},
		},
		{
			// The package directory holds no data/credentials.json.
			name: "missing default file with a complete environment",
			env:  map[string]string{"ECS_ENDPOINT": "http://e", "ECS_ACCESS_KEY": "A", "ECS_SECRET_KEY": "S", "ECS_PROJECT_ID": "P"},
			want: Config{Endpoint: "http://e", AccessKey: "A", SecretKey: "S", ProjectID: "P"},
		},
		{
			name: "ca_cert is relative to the file's directory",
			path: withCA,
			want: Config{Endpoint: "https://h:1", AccessKey: "AK", SecretKey: "SK", ProjectID: "P", CACertFile: filepath.Join(dir, "tls", "ca.pem")},
		},
		{
			name: "absolute ca_cert",
			path: absCA,
			want: Config{Endpoint: "https://h:1", AccessKey: "AK", SecretKey: "SK", ProjectID: "P", CACertFile: "/etc/ecsd/ca.pem"},
		},
		{
			name: "ECS_CA_CERT overrides ca_cert",
			path: withCA,
			env:  map[string]string{"ECS_CA_CERT": "mine.pem"},
			want: Config{Endpoint: "https://h:1", AccessKey: "AK", SecretKey: "SK", ProjectID: "P", CACertFile: "mine.pem"},
		},
		{name: "missing fields", path: partial, wantErr: "missing endpoint (ECS_ENDPOINT), secret_key (ECS_SECRET_KEY), project_id (ECS_PROJECT_ID)"},
		{name: "missing default file and no environment", wantErr: "no credentials at data/credentials.json", noFile: true},
		{
			name:    "missing default file and a partial environment",
			env:     map[string]string{"ECS_ENDPOINT": "http://e"},
			wantErr: "no credentials at data/credentials.json", noFile: true,
		},
		{name: "missing explicit file", path: filepath.Join(dir, "nope.json"), wantErr: "no credentials at " + filepath.Join(dir, "nope.json"), noFile: true},
		{
			name:    "missing file from ECS_CREDENTIALS",
			env:     map[string]string{"ECS_CREDENTIALS": filepath.Join(dir, "nope.json")},
			wantErr: "no credentials at " + filepath.Join(dir, "nope.json"), noFile: true,
		},
		{name: "bad JSON", path: bad, wantErr: "unexpected end of JSON"},
		{name: "a directory", path: dir, wantErr: "credentials file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadConfigEnv(tt.path, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				var nc *NoCredentialsError
				if errors.As(err, &nc) != tt.noFile || tt.noFile != errors.Is(err, fs.ErrNotExist) {
					t.Errorf("err = %#v: a *NoCredentialsError and fs.ErrNotExist: %v, want %v", err, errors.As(err, &nc), tt.noFile)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
