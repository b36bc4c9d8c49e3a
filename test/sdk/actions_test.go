package sdk

// Lock and the action log (issue 10), as raw signed calls (the official
// ECS SDK has no Nova lock or os-instance-actions): a locked server
// refuses reinstall (Ecs.0605), start, stop, delete and reboot through the
// official SDK until it is unlocked; every state-changing request is in
// os-instance-actions with its request id, user, access key, job id and
// the job's outcome, also once the server is deleted.

import (
	"encoding/json"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

type wireAction struct {
	Action       string  `json:"action"`
	InstanceUUID string  `json:"instance_uuid"`
	Message      *string `json:"message"`
	ProjectID    string  `json:"project_id"`
	RequestID    string  `json:"request_id"`
	StartTime    string  `json:"start_time"`
	UserID       string  `json:"user_id"`
	AccessKey    string  `json:"access_key"`
	JobID        string  `json:"job_id"`
	Outcome      string  `json:"outcome"`
	FinishTime   *string `json:"finish_time"`
	Events       []struct {
		Event  string  `json:"event"`
		Result *string `json:"result"`
	} `json:"events"`
}

// novaAction posts a Nova server action and returns the response.
func (tn *tenant) novaAction(t *testing.T, id, body string) rawResp {
	t.Helper()
	return tn.raw(t, rawReq{method: "POST", path: "/v2.1/{project_id}/servers/" + id + "/action", body: []byte(body)})
}

// lockOK locks (or unlocks) a server, wants 202 and returns the request id.
func (tn *tenant) lockOK(t *testing.T, id, body string) string {
	t.Helper()
	r := tn.novaAction(t, id, body)
	if r.status != 202 {
		t.Fatalf("POST servers/%s/action %s: %d %s, want 202", id, body, r.status, r.body)
	}
	return r.header.Get("X-Request-Id")
}

// actions lists a server's os-instance-actions.
func (tn *tenant) actions(t *testing.T, id string) []wireAction {
	t.Helper()
	r := tn.raw(t, rawReq{method: "GET", path: "/v2.1/{project_id}/servers/" + id + "/os-instance-actions"})
	if r.status != 200 {
		t.Fatalf("os-instance-actions of %s: %d %s", id, r.status, r.body)
	}
	var body struct {
		InstanceActions []wireAction `json:"instanceActions"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("os-instance-actions body %s: %v", r.body, err)
	}
	return body.InstanceActions
}

// actionDetail shows one entry of a server's action log.
func (tn *tenant) actionDetail(t *testing.T, id, requestID string) wireAction {
	t.Helper()
	r := tn.raw(t, rawReq{method: "GET", path: "/v2.1/{project_id}/servers/" + id + "/os-instance-actions/" + requestID})
	if r.status != 200 {
		t.Fatalf("os-instance-actions/%s of %s: %d %s", requestID, id, r.status, r.body)
	}
	var body struct {
		InstanceAction wireAction `json:"instanceAction"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("os-instance-actions detail body %s: %v", r.body, err)
	}
	return body.InstanceAction
}

func TestLockAndActionLog(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	id := tn.newStoppedServer(t, serverSpec{})

	lockRID := tn.lockOK(t, id, `{"lock":{"locked_reason":"maintenance window"}}`)
	if s := tn.show(t, id); !s.Locked {
		t.Fatalf("ShowServer after lock: locked = false")
	}

	// Every state-changing call is refused while locked.
	_, err := tn.reinstall(id, &model.ReinstallServerWithoutCloudInitOption{Adminpass: ptr("Locked#Pass1")})
	wantErr(t, err, 400, "Ecs.0605")
	_, err = tn.ecs.BatchStartServers(&model.BatchStartServersRequest{Body: &model.BatchStartServersRequestBody{
		OsStart: &model.BatchStartServersOption{Servers: serverIDs([]string{id})}}})
	wantErr(t, err, 400, "Ecs.0605")
	_, err = tn.ecs.BatchStopServers(&model.BatchStopServersRequest{Body: &model.BatchStopServersRequestBody{
		OsStop: &model.BatchStopServersOption{Servers: serverIDs([]string{id})}}})
	wantErr(t, err, 400, "Ecs.0605")
	_, err = tn.ecs.BatchRebootServers(&model.BatchRebootServersRequest{Body: &model.BatchRebootServersRequestBody{
		Reboot: &model.BatchRebootSeversOption{Servers: serverIDs([]string{id}), Type: model.GetBatchRebootSeversOptionTypeEnum().SOFT}}})
	wantErr(t, err, 400, "Ecs.0605")
	_, err = tn.ecs.DeleteServers(&model.DeleteServersRequest{Body: &model.DeleteServersRequestBody{Servers: serverIDs([]string{id})}})
	wantErr(t, err, 400, "Ecs.0605")
	_, err = tn.ecs.ResetServerPassword(&model.ResetServerPasswordRequest{ServerId: id, Body: &model.ResetServerPasswordRequestBody{
		ResetPassword: &model.ResetServerPasswordOption{NewPassword: "Locked#Pass2"}}})
	wantErr(t, err, 400, "Ecs.0605")
	if s := tn.show(t, id); s.Status != "SHUTOFF" || s.OSEXTSTStaskState != "" {
		t.Fatalf("a refused call changed the locked server: status %s task %q", s.Status, s.OSEXTSTStaskState)
	}

	// Bad lock bodies and other projects.
	wantRawErr(t, tn.novaAction(t, id, `{"pause":null}`), 400, "Ecs.0005")
	wantRawErr(t, tn.novaAction(t, id, `{"lock":null,"unlock":null}`), 400, "Ecs.0005")
	wantRawErr(t, tn.novaAction(t, "00000000-0000-4000-8000-000000000000", `{"lock":null}`), 404, "Ecs.0114")
	other := tn.d.newTenant(t)
	wantRawErr(t, other.novaAction(t, id, `{"unlock":null}`), 404, "Ecs.0114")
	wantRawErr(t, other.raw(t, rawReq{method: "GET", path: "/v2.1/{project_id}/servers/" + id + "/os-instance-actions"}), 404, "Ecs.0114")

	// Unlock heals.
	unlockRID := tn.lockOK(t, id, `{"unlock":null}`)
	if s := tn.show(t, id); s.Locked {
		t.Fatalf("ShowServer after unlock: locked = true")
	}
	reinstallJob := str(tn.reinstallOK(t, id, &model.ReinstallServerWithoutCloudInitOption{Adminpass: ptr("Unlocked#Pass1")}).JobId)

	// The log: newest first, the refused calls absent.
	got := tn.actions(t, id)
	var names []string
	for _, a := range got {
		names = append(names, a.Action)
	}
	want := []string{"rebuild", "unlock", "lock", "stop", "create"}
	if len(names) != len(want) {
		t.Fatalf("actions %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("actions %v, want %v", names, want)
		}
	}
	for _, a := range got {
		if a.InstanceUUID != id || a.ProjectID != tn.cred.ProjectID || a.UserID != tn.cred.UserID ||
			a.AccessKey != tn.cred.AccessKey || a.RequestID == "" || a.StartTime == "" {
			t.Errorf("action %s: %+v; want the server, project, user, access key, a request id and a start time", a.Action, a)
		}
		if a.Outcome != "SUCCESS" || a.FinishTime == nil {
			t.Errorf("action %s: outcome %q finish %v, want SUCCESS and a finish time", a.Action, a.Outcome, a.FinishTime)
		}
		if (a.JobID == "") != (a.Action == "lock" || a.Action == "unlock") {
			t.Errorf("action %s: job id %q (lock and unlock have none, the others theirs)", a.Action, a.JobID)
		}
	}
	if got[0].JobID != reinstallJob {
		t.Errorf("rebuild action job %s, want the reinstall's job %s", got[0].JobID, reinstallJob)
	}
	if got[1].RequestID != unlockRID || got[2].RequestID != lockRID {
		t.Errorf("lock/unlock request ids %s/%s, want the X-Request-Id of their calls %s/%s", got[2].RequestID, got[1].RequestID,
			lockRID, unlockRID)
	}

	// Detail: the lock has no events; the rebuild has its job's.
	lock := tn.actionDetail(t, id, lockRID)
	if lock.Action != "lock" || lock.RequestID != lockRID || len(lock.Events) != 0 {
		t.Errorf("lock detail %+v", lock)
	}
	rebuild := tn.actionDetail(t, id, got[0].RequestID)
	if rebuild.JobID != reinstallJob || len(rebuild.Events) != 1 || rebuild.Events[0].Result == nil ||
		*rebuild.Events[0].Result != "Success" {
		t.Errorf("rebuild detail %+v, want its job and one Success event", rebuild)
	}
	wantRawErr(t, tn.raw(t, rawReq{method: "GET", path: "/v2.1/{project_id}/servers/" + id + "/os-instance-actions/req-none"}),
		404, "Ecs.0114")

	// A deleted server's log stays readable.
	del, err := tn.ecs.DeleteServers(&model.DeleteServersRequest{Body: &model.DeleteServersRequestBody{Servers: serverIDs([]string{id})}})
	if err != nil {
		t.Fatalf("DeleteServers after unlock: %v", err)
	}
	delJob := jobID(t, del.JobId)
	tn.waitJobSuccess(t, delJob)
	after := tn.actions(t, id)
	if len(after) != len(want)+1 || after[0].Action != "delete" || after[0].JobID != delJob || after[0].Outcome != "SUCCESS" {
		t.Fatalf("actions of the deleted server: %+v; want delete (job %s, SUCCESS) first, then the %d others", after, delJob, len(want))
	}
	if d := tn.actionDetail(t, id, lockRID); d.Action != "lock" {
		t.Errorf("lock detail of the deleted server: %+v", d)
	}
}
