package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
)

func strOrNil(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestWireJobFailCarriesSubJobReason(t *testing.T) {
	sub := func(id, status, code, reason string) ecs.Job {
		return ecs.Job{ID: id, Type: ecs.JobRebootServer, Status: status, ParentID: "p", ServerID: "srv-" + id, Runnable: true,
			ErrorCode: code, FailReason: reason}
	}
	cases := []struct {
		name             string
		job              ecs.Job
		wantCode, reason string // "<nil>" for null
	}{
		{"one failed", ecs.Job{ID: "p", Type: ecs.JobRebootServers, Status: ecs.JobFail, SubJobs: []ecs.Job{
			sub("a", ecs.JobSuccess, "", ""), sub("b", ecs.JobFail, "Ecs.0227", "Failed to reboot the ECS.")}},
			"Ecs.0227", "Failed to reboot the ECS."},
		{"two failed", ecs.Job{ID: "p", Type: ecs.JobRebootServers, Status: ecs.JobFail, SubJobs: []ecs.Job{
			sub("a", ecs.JobFail, "Ecs.0227", "Failed to reboot the ECS."), sub("b", ecs.JobFail, "Ecs.0226", "x")}},
			"Ecs.0227", "2 of 2 sub-jobs failed; the first (ECS srv-a): Failed to reboot the ECS."},
		{"success", ecs.Job{ID: "p", Type: ecs.JobRebootServers, Status: ecs.JobSuccess, SubJobs: []ecs.Job{
			sub("a", ecs.JobSuccess, "", "")}}, "<nil>", "<nil>"},
		{"running with a failed sub-job", ecs.Job{ID: "p", Type: ecs.JobRebootServers, Status: ecs.JobRunning, SubJobs: []ecs.Job{
			sub("a", ecs.JobFail, "Ecs.0227", "r"), sub("b", ecs.JobRunning, "", "")}}, "<nil>", "<nil>"},
		{"single job keeps its own", ecs.Job{ID: "p", Type: ecs.JobReinstallOS, Status: ecs.JobFail, Runnable: true,
			ErrorCode: "Ecs.0202", FailReason: "disk"}, "Ecs.0202", "disk"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := toWireJob(&c.job)
			if got := strOrNil(w.ErrorCode); got != c.wantCode {
				t.Errorf("error_code = %s, want %s", got, c.wantCode)
			}
			if got := strOrNil(w.FailReason); got != c.reason {
				t.Errorf("fail_reason = %s, want %s", got, c.reason)
			}
		})
	}
}

func TestWireJobTypesFollowTheReference(t *testing.T) {
	for typ, want := range map[string]string{ecs.JobReinstallOS: "reInitOs", ecs.JobDeleteServers: "deleteVMs",
		ecs.JobCreateServers: "createServer", ecs.JobCreateSingleServer: "createSingleServer"} {
		w := toWireJob(&ecs.Job{ID: "j", Type: typ, Status: ecs.JobInit, Runnable: typ == ecs.JobReinstallOS})
		if w.JobType != want {
			t.Errorf("job_type of %s = %s, want %s", typ, w.JobType, want)
		}
		if strings.Contains(w.JobType, " ") {
			t.Errorf("job_type %q", w.JobType)
		}
	}
}

// TestWireJobVolumeEntities: an attach or detach job shows its volume
// beside its server in entities; other jobs show no volume_id.
func TestWireJobVolumeEntities(t *testing.T) {
	for _, c := range []struct {
		typ, params, want string
	}{
		{ecs.JobAttachVolume, `{"volume_id":"vol-1","device":"/dev/vdb","make":true,"size_gb":10}`,
			`"entities":{"server_id":"srv-1","volume_id":"vol-1"}`},
		{ecs.JobDetachVolume, `{"volume_id":"vol-2","delete":true}`, `"entities":{"server_id":"srv-1","volume_id":"vol-2"}`},
		{ecs.JobReinstallOS, `{"volume_id":"vol-3"}`, `"entities":{"server_id":"srv-1"}`},
	} {
		j := ecs.Job{ID: "j", Type: c.typ, Status: ecs.JobSuccess, ServerID: "srv-1", Runnable: true, Params: []byte(c.params)}
		b, err := json.Marshal(toWireJob(&j))
		if err != nil || !strings.Contains(string(b), c.want) {
			t.Errorf("job %s = %s, %v; want it to hold %s", c.typ, b, err, c.want)
		}
	}
}
