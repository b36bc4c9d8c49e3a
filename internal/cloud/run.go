package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/jobs"
	"github.com/ecsproject/ecsd/internal/store"
)

// jobRun is the state of one run of a server job: the job, its lease and the
// server it acts on.
type jobRun struct {
	s     *Service
	job   ecs.Job
	lease store.Lease
	log   *slog.Logger
	owned bool // a commit of this run made its lease the server's task owner
}

// stepError is a failed job step: the code the job ends with and the cause.
type stepError struct {
	code ecs.Code
	msg  string
	err  error
}

func (e *stepError) Error() string { return fmt.Sprintf("%s: %s: %v", e.code, e.msg, e.err) }
func (e *stepError) Unwrap() error { return e.err }

func failStep(code ecs.Code, msg string, err error) error {
	return &stepError{code: code, msg: msg, err: err}
}

// begin prepares a run: it decodes the job's params into p. The run takes
// ownership of the job's server with its first commit (commit), which saves
// a transaction per job; until then it only makes idempotent driver calls.
func (s *Service) begin(r jobs.Run, p any) (*jobRun, error) {
	jr := &jobRun{s: s, job: r.Job, lease: r.Lease,
		log: s.log.With("job_id", r.Job.ID, "job_type", r.Job.Type, "server_id", r.Job.ServerID, "attempt", r.Job.Attempts)}
	if p != nil && len(r.Job.Params) > 0 {
		if err := json.Unmarshal(r.Job.Params, p); err != nil {
			return jr, fmt.Errorf("job %s params: %w", r.Job.ID, err)
		}
	}
	return jr, nil
}

// commit applies change to the job's server and writes the job, in one
// transaction fenced by the run's lease.
func (jr *jobRun) commit(ctx context.Context, change func(tx store.Tx, srv *ecs.Server) error) error {
	now := time.Now().UTC()
	job := jr.job
	err := jr.s.store.Write(ctx, func(tx store.Tx) error {
		// The first commit of a run makes its lease token the server's task
		// owner (provided the server's task is this job); later ones check
		// that it still is.
		fence := tx.ServerFence
		if !jr.owned {
			fence = func(ctx context.Context, serverID, token string) error {
				return tx.ServerSetOwner(ctx, serverID, job.ID, token)
			}
		}
		if err := fence(ctx, job.ServerID, jr.lease.Token()); err != nil {
			return err
		}
		srv, err := tx.ServerGetByID(ctx, job.ServerID)
		if err != nil {
			return err
		}
		if change != nil {
			if err := change(tx, &srv); err != nil {
				return err
			}
		}
		if srv.ID != "" {
			srv.Updated = now
			if err := tx.ServerUpdate(ctx, &srv); err != nil {
				return err
			}
		}
		if err := tx.JobUpdate(ctx, &job, jr.lease); err != nil {
			return err
		}
		return finishAction(ctx, tx, &job)
	})
	if err == nil {
		jr.job = job
		jr.owned = true
	}
	return err
}

// step runs fn as checkpoint n: skipped when a previous run already
// committed it, else run and, when it succeeds, committed with change.
func (jr *jobRun) step(ctx context.Context, n int, fn func(ctx context.Context) error,
	change func(tx store.Tx, srv *ecs.Server) error) error {
	if jr.job.Step >= n {
		return nil
	}
	if fn != nil {
		sctx, cancel := context.WithTimeout(ctx, jr.s.cfg.StepTimeout)
		err := fn(sctx)
		cancel()
		if err != nil {
			return err
		}
	}
	prev := jr.job.Step
	jr.job.Step = n
	if err := jr.commit(ctx, change); err != nil {
		jr.job.Step = prev
		return err
	}
	return nil
}

// setTask commits a new task_state for the server (progress shown to
// clients) without advancing the checkpoint.
func (jr *jobRun) setTask(ctx context.Context, task string) error {
	return jr.commit(ctx, func(_ store.Tx, srv *ecs.Server) error {
		srv.TaskState = task
		return nil
	})
}

// finish ends the job SUCCESS with the server's final state set by change.
func (jr *jobRun) finish(ctx context.Context, change func(tx store.Tx, srv *ecs.Server) error) error {
	jr.job.Status = ecs.JobSuccess
	jr.job.End = time.Now().UTC()
	jr.job.ErrorCode, jr.job.FailReason = "", ""
	return jr.commit(ctx, func(tx store.Tx, srv *ecs.Server) error {
		srv.TaskState = ecs.TaskNone
		srv.TaskJobID = ""
		srv.Fault = ""
		if change != nil {
			return change(tx, srv)
		}
		return nil
	})
}

// fail ends the job FAIL; change sets the server's state after the failure.
func (jr *jobRun) fail(ctx context.Context, cause error, change func(tx store.Tx, srv *ecs.Server) error) error {
	code, reason := ecs.CodeTaskFailed, "The task failed."
	var se *stepError
	if errors.As(cause, &se) {
		code, reason = se.code, se.msg
	}
	jr.log.Warn("job failed", "code", code, "reason", reason, "err", cause)
	jr.job.Status = ecs.JobFail
	jr.job.End = time.Now().UTC()
	jr.job.ErrorCode, jr.job.FailReason = code.Wire, reason
	return jr.commit(ctx, func(tx store.Tx, srv *ecs.Server) error {
		srv.TaskState = ecs.TaskNone
		srv.TaskJobID = ""
		srv.Fault = code.Wire + ": " + reason
		if change != nil {
			return change(tx, srv)
		}
		return nil
	})
}

// interrupted reports whether err means the run must stop without
// finishing the job: shutdown, or another run owns the job.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, ecs.ErrFenced)
}

// runJob drives a server job: begin, then body. A step failure of body
// ends the job FAIL through onFail; so does a run that the engine gives up
// (r.GiveUp), without running body. Any other error is returned for the
// engine to retry (a transient error) or ignore (shutdown, fencing).
func (s *Service) runJob(ctx context.Context, r jobs.Run, params any,
	body func(ctx context.Context, jr *jobRun) error,
	onFail func(ctx context.Context, jr *jobRun, cause error) error) error {
	jr, err := s.begin(r, params)
	if r.GiveUp != "" {
		// Params that do not decode are no reason to keep the server in
		// its task: onFail needs none to record the failure.
		return onFail(ctx, jr, failStep(ecs.CodeTaskFailed, r.GiveUp, errors.New("given up by the job engine")))
	}
	if err != nil {
		return err
	}
	err = body(ctx, jr)
	if err == nil || interrupted(ctx, err) {
		return err
	}
	var se *stepError
	if !errors.As(err, &se) {
		// A transient error (store, I/O, timeout): the engine records it
		// and retries the job.
		return err
	}
	// Clean up and record the failure even if shutdown starts meanwhile.
	return onFail(context.WithoutCancel(ctx), jr, err)
}
