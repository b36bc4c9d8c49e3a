package main

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// refusingAddr is a loopback address that refuses connections until the
// test ends: a socket bound there that does not listen holds the port, so
// that no other test's listener (or connection) can take it meanwhile, as
// it could a port merely closed.
func refusingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
}

// Without a credentials file ecsctl says how to get one, not "open ...: no
// such file or directory".
func TestNoCredentialsSaysWhatToDo(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.json")
	const todo = ": start ecsd (make run-sim, or bin/ecsd --data-dir DIR), or pass --credentials FILE / set ECS_CREDENTIALS\n"
	tests := []struct {
		name  string
		creds string
		env   map[string]string
		want  string
	}{
		// The package directory holds no data/credentials.json.
		{"default file", "", nil, "ecsctl: no credentials at data/credentials.json" + todo},
		{"default file, endpoint from the environment", "", map[string]string{"ECS_ENDPOINT": "http://127.0.0.1:1"},
			"ecsctl: no credentials at data/credentials.json" + todo},
		{"--credentials", missing, nil, "ecsctl: no credentials at " + missing + todo},
		{"ECS_CREDENTIALS", "", map[string]string{"ECS_CREDENTIALS": missing}, "ecsctl: no credentials at " + missing + todo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, tt.creds, tt.env, "", "server", "list")
			if r.code != 1 || r.stderr != tt.want || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr:\n%q\nwant 1 and:\n%q", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

// With the daemon down ecsctl says the endpoint does not answer and how to
// start ecsd, not "dial tcp ...: connect: connection refused".
func TestDaemonDownSaysWhatToDo(t *testing.T) {
	t.Parallel()
	endpoint := "http://" + refusingAddr(t)
	creds := writeCredentials(t, endpoint, "")
	for _, args := range [][]string{
		{"server", "list"},
		{"server", "start", "s1", "--wait"},
		{"job", "show", "j1", "--wait"},
	} {
		r := runCLI(t, creds, nil, "", args...)
		want := "ecsctl: ecsd is not answering at " + endpoint + " (connection refused): start ecsd (make run-sim, or bin/ecsd --data-dir DIR)," +
			" or point the credentials' endpoint (or ECS_ENDPOINT) at a running ecsd\n"
		if r.code != 1 || r.stderr != want {
			t.Errorf("%v: exit %d, stderr:\n%q\nwant 1 and:\n%q", args, r.code, r.stderr, want)
		}
	}
}

// `server create --wait` ends with the ids of the servers it made, which a
// create job carries in its sub-jobs.
func TestServerCreateWaitPrintsServerIDs(t *testing.T) {
	t.Parallel()
	srv := func(id string) reply {
		return js(`{"server":{"id":"` + id + `","status":"ACTIVE","OS-EXT-STS:task_state":null}}`)
	}
	tests := []struct {
		name string
		job  []reply
		want string
	}{
		{
			name: "from the sub-jobs",
			job: []reply{
				js(`{"job_id":"j1","job_type":"createServers","status":"RUNNING","entities":{"sub_jobs_total":2,"sub_jobs":[` +
					`{"job_id":"a","status":"RUNNING","entities":{"server_id":"s1"}},{"job_id":"b","status":"INIT","entities":{"server_id":"s2"}}]}}`),
				js(`{"job_id":"j1","job_type":"createServers","status":"SUCCESS","entities":{"sub_jobs_total":2,"sub_jobs":[` +
					`{"job_id":"a","status":"SUCCESS","entities":{"server_id":"s1"}},{"job_id":"b","status":"SUCCESS","entities":{"server_id":"s2"}}]}}`),
			},
			want: "SERVER:       s1,s2\n",
		},
		{
			name: "from the create answer when the job names none",
			job:  []reply{js(`{"job_id":"j1","job_type":"createServers","status":"SUCCESS","entities":{}}`)},
			want: "SERVER:       s1,s2\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ecsctl(t, map[string][]reply{
				"POST /cloudservers":   {js(`{"job_id":"j1","serverIds":["s1","s2"]}`)},
				"GET /jobs/j1":         tt.job,
				"GET /cloudservers/s1": {srv("s1")},
				"GET /cloudservers/s2": {srv("s2")},
			}, "", "server", "create", "--name", "web", "--image", "img", "--flavor", "f", "--count", "2", "--wait")
			if r.code != 0 || !strings.Contains(r.stdout, tt.want) || !strings.Contains(r.stdout, "STATUS:       SUCCESS\n") {
				t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant it to contain %q", r.code, r.stderr, r.stdout, tt.want)
			}
		})
	}
}

// `ecsctl image import` calls no API: it says which ecsd command imports an
// image, filled in with the flags it was given, and exits 2.
func TestImageImportPointsAtEcsd(t *testing.T) {
	t.Parallel()
	const general = "ecsd image import --data-dir DIR --name NAME [--kernel K --initrd I] [--os-type Linux|Windows] FILE\n"
	tests := []struct {
		name string
		args []string
		want []string
		not  []string
	}{
		{"bare", nil, []string{general}, []string{"for this image"}},
		{
			"old flags",
			[]string{"--name", "My Debian", "--file", "/srv/debian.qcow2", "--kernel", "/srv/vmlinux", "--initrd", "/srv/it's.img"},
			[]string{general, "  ecsd image import --data-dir DIR --name 'My Debian' --kernel /srv/vmlinux --initrd '/srv/it'\\''s.img' /srv/debian.qcow2\n"},
			nil,
		},
		{
			"file as an argument",
			[]string{"disk.qcow2", "--name", "d", "--os-type", "Windows"},
			[]string{"  ecsd image import --data-dir DIR --name d --os-type Windows disk.qcow2\n"},
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ecsctl(t, nil, "", append([]string{"image", "import"}, tt.args...)...)
			if r.code != 2 || len(r.reqs) != 0 || r.stdout != "" {
				t.Errorf("exit %d, requests %v, stdout %q; want 2, none, nothing", r.code, r.reqs, r.stdout)
			}
			for _, w := range append(tt.want, "operator action on the ecsd host") {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(r.stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}
