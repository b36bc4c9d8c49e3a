package cloud_test

import (
	"context"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute/faulty"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// A failed job's action records FAIL with the job's code and reason, in
// the transaction that ended the job.
func TestActionOutcomeOfAFailedJob(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{}, faulty.Fault{Op: faulty.OpStop, Action: faulty.ActionFail})
	srv := b.server(t, linuxImage, false)
	c := b.caller
	c.RequestID, c.AccessKey = "req-stop-1", "AKTEST"
	job, err := b.svc.ServerAction(context.Background(), c, cloud.ActionStop, []string{srv.ID}, false)
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobFail {
		t.Fatalf("stop job %+v, want FAIL", j)
	}
	a, err := b.svc.GetAction(context.Background(), b.caller, srv.ID, "req-stop-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Action != ecs.ActionStop || a.JobID != job || a.Outcome != ecs.JobFail || a.Message == "" || a.End.IsZero() ||
		a.AccessKey != "AKTEST" || a.UserID != b.caller.UserID {
		t.Fatalf("action %+v, want stop of job %s FAIL with a message, by AKTEST", a, job)
	}
}

// Lock refuses every state-changing call with Ecs.0605 and unlock heals;
// a reason that is too long is refused.
func TestLockRefusesStateChanges(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, true)
	if err := b.svc.LockServer(ctx, b.caller, srv.ID, true, "why"); err != nil {
		t.Fatal(err)
	}
	got, _ := b.svc.GetServer(ctx, b.caller, srv.ID)
	if !got.Locked || got.LockedReason != "why" {
		t.Fatalf("after lock: locked %v reason %q", got.Locked, got.LockedReason)
	}
	calls := map[string]func() error{
		"reinstall": func() error {
			_, err := b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass)})
			return err
		},
		"change OS": func() error {
			_, err := b.svc.ChangeOS(ctx, b.caller, srv.ID, cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: str(linuxImage)})
			return err
		},
		"start": func() error {
			_, err := b.svc.ServerAction(ctx, b.caller, cloud.ActionStart, []string{srv.ID}, false)
			return err
		},
		"delete": func() error { _, err := b.svc.DeleteServers(ctx, b.caller, []string{srv.ID}); return err },
		"reset password": func() error {
			return b.svc.ResetPassword(ctx, b.caller, srv.ID, cloud.ResetPasswordInput{NewPassword: goodPass})
		},
	}
	for name, call := range calls {
		if err := call(); code(err) != ecs.CodeLocked {
			t.Errorf("%s of a locked server: %v, want Ecs.0605", name, err)
		}
	}
	long := make([]byte, cloud.MaxLockedReason+1)
	for i := range long {
		long[i] = 'x'
	}
	if err := b.svc.LockServer(ctx, b.caller, srv.ID, true, string(long)); code(err) != ecs.CodeInvalidParam {
		t.Errorf("lock with a %d-character reason: %v, want Ecs.0005", len(long), err)
	}
	if err := b.svc.LockServer(ctx, b.caller, srv.ID, false, ""); err != nil {
		t.Fatal(err)
	}
	if err := calls["start"](); err != nil {
		t.Fatalf("start after unlock: %v", err)
	}
	as, err := b.svc.ListActions(ctx, b.caller, srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Action)
	}
	want := []string{"start", "unlock", "lock", "stop", "create"}
	if len(names) != len(want) {
		t.Fatalf("actions %v, want %v (refused calls are not recorded)", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("actions %v, want %v", names, want)
		}
	}
}

// The client token rules: not a UUID (Ecs.0123), expired (Ecs.0124).
func TestClientTokenRules(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	in := cloud.CreateInput{Name: "s", ImageRef: linuxImage, FlavorRef: "s6.small.1", VPCID: "vpc", SubnetIDs: []string{"sn"},
		VolumeType: "SSD", RequestHash: "h"}
	for _, bad := range []string{"x", "6F1D0C2E-5A3B-4C1D-9E8F-0A1B2C3D4E01", "6f1d0c2e5a3b-4c1d-9e8f-0a1b2c3d4e01-", "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e0g"} {
		in.ClientToken = bad
		if _, _, err := b.svc.CreateServers(ctx, b.caller, in); code(err) != ecs.CodeClientTokenInvalid {
			t.Errorf("token %q: %v, want Ecs.0123", bad, err)
		}
	}
	old := "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e99"
	if err := b.st.Write(ctx, func(tx store.Tx) error {
		return tx.ClientTokenInsert(ctx, ecs.ClientToken{ProjectID: b.caller.ProjectID, Token: old, RequestHash: "h", JobID: "j",
			ServerIDs: []string{"s"}, Created: time.Now().Add(-cloud.ClientTokenTTL - time.Minute)})
	}); err != nil {
		t.Fatal(err)
	}
	in.ClientToken = old
	if _, _, err := b.svc.CreateServers(ctx, b.caller, in); code(err) != ecs.CodeClientTokenExpired {
		t.Errorf("expired token: %v, want Ecs.0124", err)
	}
}
