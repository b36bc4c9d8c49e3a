// Package jobs runs the service's asynchronous jobs. The jobs table is the
// queue: the engine claims runnable rows under a lease with one statement
// (store.JobClaim), runs each in a bounded worker pool and picks up work the
// moment Notify is called after a commit (no polling delay).
//
// The engine owns each run's outcome:
//   - It renews the leases of the runs it is running, by job id and attempt,
//     and nothing else. A run whose lease it cannot renew has its context
//     cancelled once half the lease has passed since the last successful
//     renewal, or at once when the store says the job is no longer its own:
//     the run stops acting before its lease can expire and the job be
//     claimed elsewhere.
//   - A handler returns nil (it finished the job: SUCCESS or FAIL, through
//     the store under Run.Lease) or an error. An error other than shutdown
//     (the engine's context ended) and ecs.ErrFenced (another run owns the
//     job) is transient: the engine records it on the job (store.JobRetry,
//     for operators, never shown to clients), logs it with the job id and
//     makes the job runnable again after an exponential backoff. A job
//     whose transient errors reach Config.MaxErrors, or that was claimed
//     more than Config.MaxAttempts times (a crash loop), is run once more
//     with Run.GiveUp set: its handler ends it FAIL with that reason.
//   - A lease that expires (the process died) makes the job claimable again:
//     JobClaim is the rescuer. Delivery is at-least-once, so handlers
//     checkpoint their steps and fence every write with the lease.
//
// Shutdown is not failure: when the engine's context ends, running handlers
// see their context cancelled and the jobs stay RUNNING. A process that
// restarts under the same owner (its node's host name) releases its own
// leases at start (Run) and resumes them at once; it touches no other
// owner's leases.
//
// Wake-ups cross processes: on a store shared by several nodes (one that
// implements JobListen, store.JobNotifier), a job committed by any node
// wakes the engine at once, as Notify does in the committing process.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// jobNotifier is store.JobNotifier: a store that wakes the engines of
// every process sharing it when a job is inserted.
type jobNotifier interface {
	JobListen(ctx context.Context, wake func()) error
}

// Run is one claimed execution of a job.
type Run struct {
	Job   ecs.Job
	Lease store.Lease
	// GiveUp, when not "", means the job must not be worked on again: it
	// met too many transient errors or interruptions. The handler must end
	// it FAIL with GiveUp as the client-safe reason, cleaning up as after a
	// step failure, and do none of the job's work.
	GiveUp string
}

// Handler executes a job. It returns nil once it has finished the job
// (SUCCESS or FAIL) through the store under r.Lease. Any other outcome is
// an error, which the engine handles (see the package doc); ecs.ErrFenced
// and a cancelled context are expected and are not failures.
type Handler func(ctx context.Context, r Run) error

// Client-safe reasons given in Run.GiveUp.
const (
	ReasonTooManyErrors     = "The task failed after repeated internal errors."
	ReasonTooManyInterrupts = "The task was interrupted too many times."
)

// Config configures an Engine.
type Config struct {
	Store store.Store
	// Handlers maps a job type to its handler.
	Handlers map[string]Handler
	// Workers bounds how many jobs run at once (default 64).
	Workers int
	// Lease is how long a claim lasts without renewal (default 15s); leases
	// are renewed every Lease/4, and a run that goes Lease/2 without a
	// successful renewal is cancelled.
	Lease time.Duration
	// Poll is how often the engine looks for claimable jobs without being
	// notified, e.g. jobs whose lease expired (default 1s).
	Poll time.Duration
	// MaxErrors is how many transient errors a job may meet before it is
	// given up (default 5).
	MaxErrors int
	// MaxAttempts bounds how often a job is claimed; a job that keeps dying
	// mid-run (a crash loop) is given up. Every restart re-claims the jobs
	// it interrupted, so the default (25) is generous.
	MaxAttempts int
	// Backoff is the wait before the first retry after a transient error;
	// it doubles with each further error, up to MaxBackoff (defaults 1s and
	// 1m).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Owner names this engine in leases: the node id (default a random
	// token, for tests).
	Owner string
	// Host is the node's host: the engine claims the jobs of that host and
	// those of no host (store.JobClaimParams.Host).
	Host   string
	Logger *slog.Logger
	// OnStart, when set, is called as each claimed job starts (benchmarks
	// measure pickup latency with it).
	OnStart func(j ecs.Job)
}

// Engine claims and runs jobs.
type Engine struct {
	cfg  Config
	wake chan struct{}

	mu       sync.Mutex
	inflight int
	running  map[store.Lease]*active
	freed    chan struct{}
}

// active is a run in progress.
type active struct {
	cancel context.CancelCauseFunc
	// watchdog cancels the run when it fires: it is reset on each
	// successful renewal to Lease/2 from the renewal's start.
	watchdog *time.Timer
}

// errLeaseLost is the cause of a run's cancellation when its lease could
// not be kept.
var errLeaseLost = errors.New("job lease lost")

// New returns an Engine; call Run to start it.
func New(cfg Config) *Engine {
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.MaxErrors <= 0 {
		cfg.MaxErrors = 5
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 25
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.Owner == "" {
		var b [8]byte
		rand.Read(b[:])
		cfg.Owner = hex.EncodeToString(b[:])
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Engine{cfg: cfg, wake: make(chan struct{}, 1), freed: make(chan struct{}, 1),
		running: map[store.Lease]*active{}}
}

// Owner is the lease owner name of this engine.
func (e *Engine) Owner() string { return e.cfg.Owner }

// Notify tells the engine that jobs were committed. It never blocks.
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run releases the leases its owner held before (a previous process of
// this node), then claims and runs jobs until ctx ends, and waits for
// running handlers to return. Other owners' leases are left alone.
func (e *Engine) Run(ctx context.Context) error {
	n, err := e.cfg.Store.JobLeaseReleaseOwner(ctx, e.cfg.Owner)
	if err != nil {
		return err
	}
	if n > 0 {
		e.cfg.Logger.Info("resuming jobs interrupted by a previous stop", "jobs", n)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.renewLoop(ctx)
	}()
	if n, ok := e.cfg.Store.(jobNotifier); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// It reconnects by itself and returns when ctx ends.
			n.JobListen(ctx, e.Notify)
		}()
	}
	poll := time.NewTicker(e.cfg.Poll)
	defer poll.Stop()
	for {
		for ctx.Err() == nil {
			free := e.free()
			if free == 0 {
				break
			}
			// The lease runs from the store's clock (the nodes' clocks
			// need not agree); this node's watchdogs count from before
			// the claim, on its own clock, so they end a run before the
			// store's lease does.
			now := time.Now()
			claimed, err := e.cfg.Store.JobClaim(ctx, store.JobClaimParams{Owner: e.cfg.Owner, Host: e.cfg.Host,
				Lease: e.cfg.Lease, Limit: free})
			if err != nil {
				if ctx.Err() == nil {
					e.cfg.Logger.Error("job claim failed", "err", err)
				}
				break
			}
			for _, j := range claimed {
				rctx := e.start(ctx, j, now)
				wg.Add(1)
				go func(j ecs.Job) {
					defer wg.Done()
					defer e.done(j)
					e.run(ctx, rctx, j)
				}(j)
			}
			if len(claimed) < free {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-e.freed:
		case <-poll.C:
		}
	}
}

func (e *Engine) free() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Workers - e.inflight
}

// start registers a claimed run and returns its context, which ends with
// ctx or when the run's lease is lost.
func (e *Engine) start(ctx context.Context, j ecs.Job, claimedAt time.Time) context.Context {
	rctx, cancel := context.WithCancelCause(ctx)
	a := &active{cancel: cancel}
	// The claim is the first renewal.
	a.watchdog = time.AfterFunc(time.Until(claimedAt.Add(e.cfg.Lease/2)), func() { cancel(errLeaseLost) })
	e.mu.Lock()
	e.inflight++
	e.running[e.lease(j)] = a
	e.mu.Unlock()
	return rctx
}

func (e *Engine) done(j ecs.Job) {
	l := e.lease(j)
	e.mu.Lock()
	a := e.running[l]
	delete(e.running, l)
	full := e.inflight == e.cfg.Workers
	e.inflight--
	e.mu.Unlock()
	if a != nil {
		a.watchdog.Stop()
		a.cancel(nil)
	}
	if full {
		select {
		case e.freed <- struct{}{}:
		default:
		}
	}
}

func (e *Engine) lease(j ecs.Job) store.Lease {
	return store.Lease{Owner: e.cfg.Owner, Attempt: j.Attempts, JobID: j.ID}
}

// run executes one claimed job under rctx and settles its outcome. ctx is
// the engine's: it tells shutdown apart from a lost lease.
func (e *Engine) run(ctx, rctx context.Context, j ecs.Job) {
	if e.cfg.OnStart != nil {
		e.cfg.OnStart(j)
	}
	log := e.cfg.Logger.With("job_id", j.ID, "job_type", j.Type, "attempt", j.Attempts)
	lease := e.lease(j)
	h, ok := e.cfg.Handlers[j.Type]
	if !ok {
		log.Error("no handler for job type; failing it")
		j.Status, j.ErrorCode, j.FailReason, j.End = ecs.JobFail, ecs.CodeTaskFailed.Wire, "unknown job type", time.Now()
		if err := e.cfg.Store.Write(rctx, func(tx store.Tx) error { return tx.JobUpdate(rctx, &j, lease) }); err != nil {
			log.Error("failing job", "err", err)
		}
		return
	}
	r := Run{Job: j, Lease: lease}
	switch {
	case j.Errors >= e.cfg.MaxErrors:
		r.GiveUp = ReasonTooManyErrors
	case j.Attempts > e.cfg.MaxAttempts:
		r.GiveUp = ReasonTooManyInterrupts
	}
	if r.GiveUp != "" {
		log.Warn("giving the job up", "reason", r.GiveUp, "errors", j.Errors, "last_error", j.LastError)
	}
	err := h(ecs.WithJobRun(rctx, ecs.JobRun{JobID: j.ID, Lease: lease.Token()}), r)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		log.Info("job interrupted by shutdown; it resumes on restart")
	case errors.Is(context.Cause(rctx), errLeaseLost):
		log.Warn("job run stopped: its lease could not be renewed", "err", err)
	case errors.Is(err, ecs.ErrFenced):
		log.Warn("job run fenced off: another run owns it", "err", err)
	default:
		e.retry(ctx, log, j, lease, err)
	}
}

// retry records a transient error of a run and schedules the job again.
func (e *Engine) retry(ctx context.Context, log *slog.Logger, j ecs.Job, lease store.Lease, cause error) {
	errs := j.Errors + 1
	wait := e.backoff(errs)
	if errs == e.cfg.MaxErrors {
		wait = 0 // give it up at once
	}
	n, err := e.cfg.Store.JobRetry(ctx, store.JobRetryParams{JobID: j.ID, Lease: lease, Error: cause.Error(), Delay: wait})
	if err != nil {
		// The lease stays as it was: the job is claimed again when it
		// expires.
		log.Error("job run failed, and recording the failure failed too", "err", cause, "record_err", err)
		return
	}
	log.Error("job run failed; retrying", "err", cause, "errors", n, "retry_in", wait)
	time.AfterFunc(wait, e.Notify)
}

// backoff is the wait before the retry that follows the n-th error.
func (e *Engine) backoff(n int) time.Duration {
	d := e.cfg.Backoff
	for i := 1; i < n && d < e.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, e.cfg.MaxBackoff)
}

// renewLoop renews the leases of the running runs every Lease/4.
func (e *Engine) renewLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.Lease / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.renew(ctx)
	}
}

func (e *Engine) renew(ctx context.Context) {
	e.mu.Lock()
	runs := make([]store.Lease, 0, len(e.running))
	for l := range e.running {
		runs = append(runs, l)
	}
	e.mu.Unlock()
	if len(runs) == 0 {
		return
	}
	start := time.Now()
	renewed, err := e.cfg.Store.JobLeaseRenew(ctx, store.JobLeaseRenewParams{Runs: runs, Lease: e.cfg.Lease})
	if err != nil {
		// The watchdogs stop the runs if this lasts.
		if ctx.Err() == nil {
			e.cfg.Logger.Error("lease renewal failed", "err", err, "jobs", len(runs))
		}
		return
	}
	ok := make(map[string]bool, len(renewed))
	for _, id := range renewed {
		ok[id] = true
	}
	deadline := time.Until(start.Add(e.cfg.Lease / 2))
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range runs {
		a := e.running[l]
		if a == nil {
			continue // finished meanwhile
		}
		if !ok[l.JobID] {
			e.cfg.Logger.Warn("job lease lost: stopping its run", "job_id", l.JobID, "attempt", l.Attempt)
			a.cancel(errLeaseLost)
			continue
		}
		a.watchdog.Reset(deadline)
	}
}
