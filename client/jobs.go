package client

import (
	"context"
	"fmt"
	"time"
)

// Job statuses.
const (
	JobInit    = "INIT"
	JobRunning = "RUNNING"
	JobSuccess = "SUCCESS"
	JobFail    = "FAIL"
)

// Job is the wire job (GET /v1/{project_id}/jobs/{job_id}). Times are kept
// as the server wrote them. ErrorCode and FailReason are null ("") unless the
// job failed.
type Job struct {
	ID         string      `json:"job_id"`
	Type       string      `json:"job_type"`
	Status     string      `json:"status"`
	BeginTime  string      `json:"begin_time"`
	EndTime    string      `json:"end_time"`
	ErrorCode  string      `json:"error_code"`
	FailReason string      `json:"fail_reason"`
	Entities   JobEntities `json:"entities"`
}

// JobEntities is what a job works on: one server, or sub-jobs for a batch.
type JobEntities struct {
	ServerID     string   `json:"server_id,omitempty"`
	NICID        string   `json:"nic_id,omitempty"`
	SubJobsTotal int      `json:"sub_jobs_total,omitempty"`
	SubJobs      []SubJob `json:"sub_jobs,omitempty"`
}

// SubJob is one server's part of a batch job.
type SubJob struct {
	ID         string         `json:"job_id"`
	Type       string         `json:"job_type"`
	Status     string         `json:"status"`
	BeginTime  string         `json:"begin_time"`
	EndTime    string         `json:"end_time"`
	ErrorCode  string         `json:"error_code"`
	FailReason string         `json:"fail_reason"`
	Entities   SubJobEntities `json:"entities"`
}

// SubJobEntities is what a sub-job works on.
type SubJobEntities struct {
	ServerID         string `json:"server_id,omitempty"`
	NICID            string `json:"nic_id,omitempty"`
	ErrorcodeMessage string `json:"errorcode_message,omitempty"`
}

// Done reports whether the job has finished (SUCCESS or FAIL).
func (j *Job) Done() bool { return j.Status == JobSuccess || j.Status == JobFail }

// ServerIDs returns the servers the job works on: its own server_id, then
// those of its sub-jobs, without duplicates.
func (j *Job) ServerIDs() []string {
	var ids []string
	seen := map[string]bool{"": true}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	add(j.Entities.ServerID)
	for _, s := range j.Entities.SubJobs {
		add(s.Entities.ServerID)
	}
	return ids
}

// Failure returns the job's error code and reason; for a failed batch job
// without its own, those of its first failed sub-job.
func (j *Job) Failure() (code, reason string) {
	if j.ErrorCode != "" || j.FailReason != "" {
		return j.ErrorCode, j.FailReason
	}
	for _, s := range j.Entities.SubJobs {
		if s.Status == JobFail {
			return s.ErrorCode, s.FailReason
		}
	}
	return "", ""
}

// JobFailedError is returned by WaitJob when the job ends in FAIL.
type JobFailedError struct {
	Job Job
}

func (e *JobFailedError) Error() string {
	code, reason := e.Job.Failure()
	if code == "" {
		code = "no error code"
	}
	if reason == "" {
		reason = "no reason given"
	}
	return fmt.Sprintf("job %s failed: %s: %s", e.Job.ID, code, reason)
}

// ShowJob returns a job. A FAIL job is a normal answer, not an error.
func (c *Client) ShowJob(ctx context.Context, id string) (Job, error) {
	var out Job
	err := c.do(ctx, "GET", c.projectPath("v1", "jobs", esc(id)), nil, nil, &out)
	return out, err
}

// DefaultWaitInterval is WaitJob's interval when it is given none.
const DefaultWaitInterval = time.Second

// WaitJob polls the job every interval (DefaultWaitInterval when <= 0),
// first at once, calling onUpdate (when non-nil) with every job it reads,
// until the job is SUCCESS, FAIL or ctx is done. It returns the last job
// read and: nil on SUCCESS, a *JobFailedError on FAIL, ctx's error when ctx
// ends first, or the error of a failed ShowJob (it does not retry).
func (c *Client) WaitJob(ctx context.Context, id string, interval time.Duration, onUpdate func(Job)) (Job, error) {
	if interval <= 0 {
		interval = DefaultWaitInterval
	}
	var timer *time.Timer
	for {
		job, err := c.ShowJob(ctx, id)
		if err != nil {
			return job, err
		}
		if onUpdate != nil {
			onUpdate(job)
		}
		switch job.Status {
		case JobSuccess:
			return job, nil
		case JobFail:
			return job, &JobFailedError{Job: job}
		}
		if timer == nil {
			timer = time.NewTimer(interval)
			defer timer.Stop()
		} else {
			timer.Reset(interval)
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-timer.C:
		}
	}
}
