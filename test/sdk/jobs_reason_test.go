package sdk

import (
	"strings"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

// TestFailedJobsSayWhy: a batch job that FAILs carries its failed
// sub-job's error_code and fail_reason at the top level (what Terraform
// prints), for a create and for a reboot.
func TestFailedJobsSayWhy(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--faults", "create_server=fail:1,reboot=fail")
	tn := d.main
	resp := tn.createServers(t, serverSpec{name: "doomed"})
	j := tn.waitJob(t, *resp.JobId)
	if jobStatus(j) != "FAIL" || str(j.ErrorCode) != "Ecs.0204" || !strings.Contains(str(j.FailReason), "create") {
		t.Fatalf("failed create job: %s %s %q", jobStatus(j), str(j.ErrorCode), str(j.FailReason))
	}
	if str(j.JobType) != "createServer" {
		t.Errorf("create job_type %q", str(j.JobType))
	}

	id := tn.newServer(t, serverSpec{name: "reboot-me"})
	r, err := tn.ecs.BatchRebootServers(&model.BatchRebootServersRequest{Body: &model.BatchRebootServersRequestBody{
		Reboot: &model.BatchRebootSeversOption{Servers: serverIDs([]string{id}), Type: model.GetBatchRebootSeversOptionTypeEnum().SOFT}}})
	if err != nil {
		t.Fatalf("BatchRebootServers: %v", err)
	}
	j = tn.waitJob(t, jobID(t, r.JobId))
	if jobStatus(j) != "FAIL" || str(j.ErrorCode) != "Ecs.0227" || str(j.FailReason) == "<nil>" {
		t.Fatalf("failed reboot job: %s %s %q", jobStatus(j), str(j.ErrorCode), str(j.FailReason))
	}
	subs := *j.Entities.SubJobs
	if len(subs) != 1 || str(subs[0].ErrorCode) != "Ecs.0227" {
		t.Errorf("sub-jobs %+v", subs)
	}

	// The delete job is named as the API reference names it.
	del, err := tn.ecs.DeleteServers(&model.DeleteServersRequest{Body: &model.DeleteServersRequestBody{
		Servers: serverIDs([]string{id})}})
	if err != nil {
		t.Fatalf("DeleteServers: %v", err)
	}
	if j := tn.waitJobSuccess(t, jobID(t, del.JobId)); str(j.JobType) != "deleteVMs" {
		t.Errorf("delete job_type %q, want deleteVMs", str(j.JobType))
	}
}

// TestParentRunningWithItsSubJobs: whenever a sub-job of a batch shows
// RUNNING, the batch does too (never INIT).
func TestParentRunningWithItsSubJobs(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--sim-latency", "100ms")
	tn := d.main
	resp := tn.createServers(t, serverSpec{name: "slow", count: 3})
	sawRunning := false
	for {
		j, err := tn.ecs.ShowJob(&model.ShowJobRequest{JobId: *resp.JobId})
		if err != nil {
			t.Fatalf("ShowJob: %v", err)
		}
		for _, sj := range *j.Entities.SubJobs {
			if sj.Status != nil && sj.Status.Value() != "INIT" {
				sawRunning = true
				if s := jobStatus(j); s == "INIT" {
					t.Fatalf("sub-job %s is %s while the batch is INIT", str(sj.JobId), sj.Status.Value())
				}
			}
		}
		if s := jobStatus(j); s == "SUCCESS" || s == "FAIL" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawRunning {
		t.Fatal("never saw a sub-job start")
	}
}
