// Package jobs runs the service's asynchronous jobs. The jobs table is the
// queue: the engine claims runnable rows under a lease with one statement
// (store.JobClaim), runs each in a bounded worker pool, renews the leases of
// the jobs it runs, and picks up work the moment Notify is called after a
// commit (no polling delay). A lease that is not renewed (the process died)
// expires and the job is claimed again: delivery is at-least-once, so
// handlers checkpoint their steps and fence every write with the lease
// (store.Lease) so that a stale run can never act twice.
//
// Shutdown is not failure: when the engine's context ends, running handlers
// see their context cancelled and the jobs stay RUNNING, to be claimed again
// by the next process.
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

// Run is one claimed execution of a job.
type Run struct {
	Job   ecs.Job
	Lease store.Lease
}

// Handler executes a job. It must finish the job (SUCCESS or FAIL) through
// the store under r.Lease. An error it returns leaves the job to be retried
// after its lease expires, except ecs.ErrFenced (another run owns the job)
// and a cancelled context (shutdown), which are expected.
type Handler func(ctx context.Context, r Run) error

// Config configures an Engine.
type Config struct {
	Store store.Store
	// Handlers maps a job type to its handler.
	Handlers map[string]Handler
	// Workers bounds how many jobs run at once (default 64).
	Workers int
	// Lease is how long a claim lasts without renewal (default 15s); leases
	// are renewed every Lease/3.
	Lease time.Duration
	// Poll is how often the engine looks for claimable jobs without being
	// notified, e.g. jobs whose lease expired (default 1s).
	Poll time.Duration
	// Owner names this engine in leases; default a random token.
	Owner  string
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
	freed    chan struct{}
}

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
	if cfg.Owner == "" {
		var b [8]byte
		rand.Read(b[:])
		cfg.Owner = hex.EncodeToString(b[:])
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Engine{cfg: cfg, wake: make(chan struct{}, 1), freed: make(chan struct{}, 1)}
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

// Run claims and runs jobs until ctx ends, then waits for running handlers
// to return.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.renewLoop(ctx)
	}()
	poll := time.NewTicker(e.cfg.Poll)
	defer poll.Stop()
	for {
		for ctx.Err() == nil {
			free := e.free()
			if free == 0 {
				break
			}
			now := time.Now()
			claimed, err := e.cfg.Store.JobClaim(ctx, e.cfg.Owner, now, now.Add(e.cfg.Lease), free)
			if err != nil {
				if ctx.Err() == nil {
					e.cfg.Logger.Error("job claim failed", "err", err)
				}
				break
			}
			for _, j := range claimed {
				e.acquire()
				wg.Add(1)
				go func(j ecs.Job) {
					defer wg.Done()
					defer e.release()
					e.run(ctx, j)
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

func (e *Engine) acquire() {
	e.mu.Lock()
	e.inflight++
	e.mu.Unlock()
}

func (e *Engine) release() {
	e.mu.Lock()
	full := e.inflight == e.cfg.Workers
	e.inflight--
	e.mu.Unlock()
	if full {
		select {
		case e.freed <- struct{}{}:
		default:
		}
	}
}

func (e *Engine) run(ctx context.Context, j ecs.Job) {
	if e.cfg.OnStart != nil {
		e.cfg.OnStart(j)
	}
	h, ok := e.cfg.Handlers[j.Type]
	log := e.cfg.Logger.With("job_id", j.ID, "job_type", j.Type, "attempt", j.Attempts)
	if !ok {
		log.Error("no handler for job type; failing it")
		j.Status, j.ErrorCode, j.FailReason, j.End = ecs.JobFail, ecs.CodeTaskFailed.Wire, "unknown job type", time.Now()
		lease := store.Lease{Owner: e.cfg.Owner, Attempt: j.Attempts}
		if err := e.cfg.Store.Write(ctx, func(tx store.Tx) error { return tx.JobUpdate(ctx, &j, lease) }); err != nil {
			log.Error("failing job", "err", err)
		}
		return
	}
	err := h(ctx, Run{Job: j, Lease: store.Lease{Owner: e.cfg.Owner, Attempt: j.Attempts}})
	switch {
	case err == nil:
	case errors.Is(err, ecs.ErrFenced):
		log.Warn("job run fenced off: another run owns it", "err", err)
	case ctx.Err() != nil:
		log.Info("job interrupted by shutdown; it resumes on restart")
	default:
		log.Error("job run failed; it is retried when its lease expires", "err", err)
	}
}

func (e *Engine) renewLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		busy := e.inflight > 0
		e.mu.Unlock()
		if !busy {
			continue
		}
		if err := e.cfg.Store.JobLeaseRenew(ctx, e.cfg.Owner, time.Now().Add(e.cfg.Lease)); err != nil && ctx.Err() == nil {
			e.cfg.Logger.Error("lease renewal failed", "err", err)
		}
	}
}
