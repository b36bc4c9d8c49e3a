package cloud_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/jobs"
	"github.com/ecsproject/ecsd/internal/store"
)

var errDisk = errors.New("injected: disk I/O error at /var/lib/ecsd/ecsd.db")

// failingFinish wraps a Store: a Write that would finish a job of type typ
// SUCCESS fails with errDisk (and rolls back) while budget lasts; -1 is
// for ever.
type failingFinish struct {
	store.Store
	typ    string
	budget atomic.Int64
	hits   atomic.Int64
}

type finishTx struct {
	store.Tx
	f   *failingFinish
	hit bool
}

func (t *finishTx) JobUpdate(ctx context.Context, j *ecs.Job, l store.Lease) error {
	if j.Type == t.f.typ && j.Status == ecs.JobSuccess {
		t.hit = true
	}
	return t.Tx.JobUpdate(ctx, j, l)
}

func (f *failingFinish) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	return f.Store.Write(ctx, func(tx store.Tx) error {
		ft := &finishTx{Tx: tx, f: f}
		if err := fn(ft); err != nil || !ft.hit {
			return err
		}
		if f.budget.Load() == 0 {
			return nil
		}
		f.budget.Add(-1)
		f.hits.Add(1)
		return errDisk
	})
}

func setupFailingFinish(t *testing.T, typ string, budget int64) (*bundle, *failingFinish) {
	t.Helper()
	var ff *failingFinish
	b := setupWith(t, sim.Config{}, func(c *cloud.Config) {
		ff = &failingFinish{Store: c.Store, typ: typ}
		ff.budget.Store(budget)
		c.Store = ff
		c.JobMaxErrors = 3
		c.JobBackoff = time.Millisecond
	})
	return b, ff
}

// TestTransientStoreErrorsRetried: a create whose last commit fails twice
// with a store error is retried and the server ends ACTIVE.
func TestTransientStoreErrorsRetried(t *testing.T) {
	t.Parallel()
	b, ff := setupFailingFinish(t, ecs.JobCreateSingleServer, 2)
	job, ids, err := b.svc.CreateServers(context.Background(), b.caller, cloud.CreateInput{Name: "s", ImageRef: linuxImage,
		FlavorRef: "s6.small.1", VPCID: "vpc", SubnetIDs: []string{"sn"}, VolumeType: "SSD"})
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("create: %s %s %s", j.Status, j.ErrorCode, j.FailReason)
	}
	if ff.hits.Load() != 2 {
		t.Fatalf("%d injected errors, want 2", ff.hits.Load())
	}
	srv, err := b.svc.GetServer(context.Background(), b.caller, ids[0])
	if err != nil || srv.Status() != "ACTIVE" {
		t.Fatalf("server %s: %v", srv.Status(), err)
	}
}

// TestTransientStoreErrorsGiveUp: a create whose commits keep failing with
// a store error ends FAIL after the limit with a client-safe reason, and
// its server goes to ERROR as after a failed step; the cause stays on the
// job row for operators.
func TestTransientStoreErrorsGiveUp(t *testing.T) {
	t.Parallel()
	b, ff := setupFailingFinish(t, ecs.JobCreateSingleServer, -1)
	ctx := context.Background()
	job, ids, err := b.svc.CreateServers(ctx, b.caller, cloud.CreateInput{Name: "s", ImageRef: linuxImage,
		FlavorRef: "s6.small.1", VPCID: "vpc", SubnetIDs: []string{"sn"}, VolumeType: "SSD"})
	if err != nil {
		t.Fatal(err)
	}
	j := b.wait(t, job)
	if j.Status != ecs.JobFail || len(j.SubJobs) != 1 {
		t.Fatalf("create: %s with %d sub-jobs, want FAIL with 1", j.Status, len(j.SubJobs))
	}
	sj := j.SubJobs[0]
	if sj.ErrorCode != ecs.CodeTaskFailed.Wire || sj.FailReason != jobs.ReasonTooManyErrors {
		t.Fatalf("sub-job failed with %s %q, want %s %q", sj.ErrorCode, sj.FailReason, ecs.CodeTaskFailed, jobs.ReasonTooManyErrors)
	}
	if ff.hits.Load() != 3 {
		t.Fatalf("%d runs hit the injected error, want 3 (JobMaxErrors)", ff.hits.Load())
	}
	var row ecs.Job
	if err := b.st.Write(ctx, func(tx store.Tx) error {
		var err error
		row, err = tx.JobGetByID(ctx, sj.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if row.Errors != 3 || !strings.Contains(row.LastError, errDisk.Error()) {
		t.Fatalf("job row: errors %d, last error %q; want 3 and the cause", row.Errors, row.LastError)
	}
	srv, err := b.svc.GetServer(ctx, b.caller, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if srv.Status() != "ERROR" || srv.TaskState != ecs.TaskNone {
		t.Fatalf("server after give-up: %s task %q, want ERROR and no task", srv.Status(), srv.TaskState)
	}
	if strings.Contains(srv.Fault, "disk I/O") || strings.Contains(srv.Fault, "/var/lib") {
		t.Fatalf("server fault leaks the cause: %q", srv.Fault)
	}
}
