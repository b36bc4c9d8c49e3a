package client

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestWaitJob(t *testing.T) {
	t.Parallel()
	const (
		initJob    = `{"job_id":"j1","status":"INIT","error_code":null,"fail_reason":null}`
		running    = `{"job_id":"j1","status":"RUNNING","error_code":null,"fail_reason":null}`
		success    = `{"job_id":"j1","status":"SUCCESS","error_code":null,"fail_reason":null}`
		failed     = `{"job_id":"j1","status":"FAIL","error_code":"Ecs.0202","fail_reason":"create system disk failed"}`
		batchFail  = `{"job_id":"j1","status":"FAIL","entities":{"sub_jobs":[{"job_id":"a","status":"SUCCESS"},{"job_id":"b","status":"FAIL","error_code":"Ecs.0227","fail_reason":"reboot failed"}]}}`
		unknownSts = `{"job_id":"j1","status":"PENDING_PAYMENT"}`
	)
	tests := []struct {
		name       string
		replies    []reply
		wantSeen   []string // statuses passed to onUpdate, in order
		wantErr    string   // "" for nil; "fail" for a *JobFailedError; "api" for an *APIError
		wantCode   string   // failure code of a FAIL job
		wantReason string
	}{
		{
			name:     "success after init and running",
			replies:  []reply{ok(initJob), ok(running), ok(running), ok(success)},
			wantSeen: []string{"INIT", "RUNNING", "RUNNING", "SUCCESS"},
		},
		{
			name:     "already done",
			replies:  []reply{ok(success)},
			wantSeen: []string{"SUCCESS"},
		},
		{
			name:     "unknown statuses are pending",
			replies:  []reply{ok(unknownSts), ok(success)},
			wantSeen: []string{"PENDING_PAYMENT", "SUCCESS"},
		},
		{
			name:       "fail",
			replies:    []reply{ok(running), ok(failed)},
			wantSeen:   []string{"RUNNING", "FAIL"},
			wantErr:    "fail",
			wantCode:   "Ecs.0202",
			wantReason: "create system disk failed",
		},
		{
			name:       "batch fail takes the failed sub-job's code",
			replies:    []reply{ok(batchFail)},
			wantSeen:   []string{"FAIL"},
			wantErr:    "fail",
			wantCode:   "Ecs.0227",
			wantReason: "reboot failed",
		},
		{
			name:     "query error stops the wait",
			replies:  []reply{ok(running), {400, `{"error":{"code":"Common.0011","message":"no such job"}}`, nil}},
			wantSeen: []string{"RUNNING"},
			wantErr:  "api",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, tt.replies...)
			var seen []string
			job, err := c.WaitJob(context.Background(), "j1", time.Millisecond, func(j Job) { seen = append(seen, j.Status) })
			if !reflect.DeepEqual(seen, tt.wantSeen) {
				t.Errorf("onUpdate saw %v, want %v", seen, tt.wantSeen)
			}
			if n := len(f.requests()); n != len(tt.replies) {
				t.Errorf("polled %d times, want %d", n, len(tt.replies))
			}
			for _, r := range f.requests() {
				if r.Method != "GET" || r.EscapedPath != "/v1/"+testPID+"/jobs/j1" {
					t.Errorf("request %s %s", r.Method, r.EscapedPath)
				}
			}
			var fe *JobFailedError
			var ae *APIError
			switch tt.wantErr {
			case "":
				if err != nil || job.Status != JobSuccess {
					t.Fatalf("WaitJob = %v, %v; want SUCCESS, nil", job.Status, err)
				}
			case "fail":
				if !errors.As(err, &fe) {
					t.Fatalf("err = %v, want *JobFailedError", err)
				}
				code, reason := fe.Job.Failure()
				if code != tt.wantCode || reason != tt.wantReason || job.Status != JobFail {
					t.Errorf("failure = %q %q (status %s), want %q %q", code, reason, job.Status, tt.wantCode, tt.wantReason)
				}
				want := "job j1 failed: " + tt.wantCode + ": " + tt.wantReason
				if err.Error() != want {
					t.Errorf("Error() = %q, want %q", err.Error(), want)
				}
			case "api":
				if !errors.As(err, &ae) || ae.Code != "Common.0011" {
					t.Fatalf("err = %v, want APIError Common.0011", err)
				}
			}
		})
	}
}

func TestWaitJobStopsWithContext(t *testing.T) {
	t.Parallel()
	c, f := setup(t, ok(`{"job_id":"j1","status":"RUNNING"}`))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// An hour-long interval: only the cancellation can end the wait.
	job, err := c.WaitJob(ctx, "j1", time.Hour, func(Job) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if job.Status != JobRunning {
		t.Errorf("job status = %q, want the last one read, RUNNING", job.Status)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("polled %d times, want 1", n)
	}
}

func TestJobServerIDs(t *testing.T) {
	t.Parallel()
	j := Job{Entities: JobEntities{ServerID: "s0", SubJobs: []SubJob{
		{Entities: SubJobEntities{ServerID: "s1"}}, {Entities: SubJobEntities{ServerID: "s0"}},
		{Entities: SubJobEntities{}}, {Entities: SubJobEntities{ServerID: "s2"}},
	}}}
	if got, want := j.ServerIDs(), []string{"s0", "s1", "s2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ServerIDs() = %v, want %v", got, want)
	}
	if got := (&Job{}).ServerIDs(); len(got) != 0 {
		t.Errorf("empty job ServerIDs() = %v", got)
	}
}
