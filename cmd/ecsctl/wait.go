package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ecsproject/ecsd/client"
)

// progress prints, on stderr, each change of a job's status and of the
// status and task_state of the servers it works on.
type progress struct {
	a       *app
	c       *client.Client
	servers []string          // in the order first seen
	jobLine string            // last line printed for the job
	seen    map[string]string // server id -> last line printed
}

func (p *progress) update(ctx context.Context, j client.Job) {
	line := "job " + j.ID + ": " + j.Status
	if n := len(j.Entities.SubJobs); n > 0 {
		done := 0
		for _, s := range j.Entities.SubJobs {
			if s.Status == client.JobSuccess || s.Status == client.JobFail {
				done++
			}
		}
		line += fmt.Sprintf(" (%d/%d sub-jobs done)", done, n)
	}
	if line != p.jobLine {
		p.jobLine = line
		fmt.Fprintln(p.a.stderr, line)
	}
	for _, id := range j.ServerIDs() {
		if !slices.Contains(p.servers, id) {
			p.servers = append(p.servers, id)
		}
	}
	for _, id := range p.servers {
		p.server(ctx, id)
	}
}

func (p *progress) server(ctx context.Context, id string) {
	var line string
	s, err := p.c.ShowServer(ctx, id)
	switch {
	case err == nil:
		line = fmt.Sprintf("server %s: %s, task_state %s", id, s.Status, dash(s.Task()))
	case client.IsCode(err, "Ecs.0114"):
		line = fmt.Sprintf("server %s: gone", id)
	case ctx.Err() != nil:
		return
	default:
		line = fmt.Sprintf("server %s: %v", id, err)
	}
	if p.seen[id] != line {
		p.seen[id] = line
		fmt.Fprintln(p.a.stderr, line)
	}
}

// wait follows a job to its end, showing progress on stderr, then prints the
// job. A FAIL job prints its error code and reason and exits 1.
func (a *app) wait(ctx context.Context, c *client.Client, jobID string, serverIDs []string) error {
	p := &progress{a: a, c: c, servers: slices.Clone(serverIDs), seen: map[string]string{}}
	job, err := c.WaitJob(ctx, jobID, a.pollInterval, func(j client.Job) { p.update(ctx, j) })
	var failed *client.JobFailedError
	switch {
	case errors.As(err, &failed):
		if perr := a.printJob(job, serverIDs); perr != nil {
			return perr
		}
		code, reason := job.Failure()
		fmt.Fprintf(a.stderr, "ecsctl: job %s failed: error_code %s, fail_reason: %s\n", job.ID, dash(code), dash(reason))
		return &exitError{code: 1}
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("stopped waiting (%w); job %s goes on: ecsctl job show %s --wait", ctx.Err(), jobID, jobID)
	case err != nil:
		return err
	}
	return a.printJob(job, serverIDs)
}

// submitted ends a command that started job jobID: with wait it waits for
// the job (showing serverIDs' progress), else it prints the job's ID.
func (a *app) submitted(ctx context.Context, c *client.Client, jobID string, wait bool, serverIDs []string) error {
	if wait {
		return a.wait(ctx, c, jobID, serverIDs)
	}
	return a.printJobID(jobID)
}
