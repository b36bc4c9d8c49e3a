package main

import (
	"strings"
	"testing"
)

func TestServerLockUnlockActions(t *testing.T) {
	t.Parallel()
	actions := `{"instanceActions":[{"action":"lock","instance_uuid":"s1","message":null,"project_id":"p1","request_id":"r2",` +
		`"start_time":"2026-12-01T10:00:00.000000","user_id":"u1","access_key":"AK1","job_id":"","outcome":"SUCCESS"},` +
		`{"action":"stop","instance_uuid":"s1","message":null,"project_id":"p1","request_id":"r1",` +
		`"start_time":"2026-12-01T09:00:00.000000","user_id":"u1","access_key":"AK1","job_id":"j1","outcome":""}]}`
	tests := []struct {
		name   string
		routes map[string][]reply
		args   []string
		want   recorded
		stdout string
	}{
		{"lock", map[string][]reply{"POST /v2.1/p1/servers/s1/action": {{status: 202}}}, []string{"server", "lock", "s1"},
			recorded{"POST", "/v2.1/p1/servers/s1/action", `{"lock":null}` + "\n"}, ""},
		{"lock with a reason", map[string][]reply{"POST /v2.1/p1/servers/s1/action": {{status: 202}}},
			[]string{"server", "lock", "s1", "--reason", "maintenance"},
			recorded{"POST", "/v2.1/p1/servers/s1/action", `{"lock":{"locked_reason":"maintenance"}}` + "\n"}, ""},
		{"unlock", map[string][]reply{"POST /v2.1/p1/servers/s1/action": {{status: 202}}}, []string{"server", "unlock", "s1"},
			recorded{"POST", "/v2.1/p1/servers/s1/action", `{"unlock":null}` + "\n"}, ""},
		{"actions", map[string][]reply{"GET /v2.1/p1/servers/s1/os-instance-actions": {js(actions)}}, []string{"server", "actions", "s1"},
			recorded{"GET", "/v2.1/p1/servers/s1/os-instance-actions", ""},
			"START                       ACTION  REQUEST_ID  USER  ACCESS_KEY  JOB  OUTCOME\n" +
				"2026-12-01T10:00:00.000000  lock    r2          u1    AK1         -    SUCCESS\n" +
				"2026-12-01T09:00:00.000000  stop    r1          u1    AK1         j1   RUNNING\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ecsctl(t, tt.routes, "", tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if len(r.reqs) != 1 || r.reqs[0] != tt.want {
				t.Errorf("requests = %q\nwant        [%q]", r.reqs, tt.want)
			}
			if r.stdout != tt.stdout {
				t.Errorf("stdout = %q\nwant     %q", r.stdout, tt.stdout)
			}
		})
	}
	r := ecsctl(t, nil, "", "server", "lock")
	if r.code == 0 || !strings.Contains(r.stderr, "one server ID") {
		t.Errorf("server lock without an id: exit %d, stderr %q", r.code, r.stderr)
	}
}
