// Package cluster is what makes several ecsd nodes, sharing one database,
// one cloud: the election of the node that runs the periodic upkeep
// (leader.go) and the forwarding of calls that must run on a given host
// to that host's node (forward.go).
package cluster

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ecsproject/ecsd/internal/store"
)

// LeaderStore is what an election needs; store.Store provides it.
type LeaderStore interface {
	LeaderElect(ctx context.Context, p store.LeaderElectParams) (bool, error)
	LeaderResign(ctx context.Context, name, owner string) error
}

// LeaderConfig configures Lead.
type LeaderConfig struct {
	Store LeaderStore
	// Name is what is led (e.g. "upkeep"); Owner is this node (its host).
	Name  string
	Owner string
	// TTL is a term (default 15s). The leader renews it every TTL/3; a
	// leader that could not renew for TTL/2 stops leading before its term
	// can end and another node be elected; a node that is not the leader
	// tries again every TTL/3.
	TTL    time.Duration
	Logger *slog.Logger
}

// Lead campaigns for cfg.Name until ctx ends. While this node leads, lead
// runs with a context that ends when the leadership is lost (or ctx ends);
// lead must return then. When ctx ends, a leader resigns, so that another
// node takes over at its next attempt rather than after the term. Lead
// returns once lead has returned.
func Lead(ctx context.Context, cfg LeaderConfig, lead func(ctx context.Context)) {
	if cfg.TTL <= 0 {
		cfg.TTL = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("leadership", cfg.Name)
	t := time.NewTicker(cfg.TTL / 3)
	defer t.Stop()

	// The current term, while this node leads.
	var (
		cancel   context.CancelFunc
		watchdog *time.Timer // ends the term TTL/2 after the last renewal
		expired  atomic.Bool // the watchdog fired
		finished chan struct{}
	)
	leading := func() bool {
		if finished != nil && expired.Load() {
			<-finished
			finished = nil
		}
		return finished != nil
	}
	stop := func() {
		if finished != nil {
			watchdog.Stop()
			cancel()
			<-finished
			finished = nil
		}
	}
	defer func() {
		wasLeading := leading()
		stop()
		if wasLeading {
			rctx, c := context.WithTimeout(context.WithoutCancel(ctx), cfg.TTL/3)
			defer c()
			if err := cfg.Store.LeaderResign(rctx, cfg.Name, cfg.Owner); err != nil {
				log.Warn("resigning the leadership failed; another node takes over when the term ends", "err", err)
			}
		}
	}()
	for {
		// The term runs from the store's clock; the watchdog counts from
		// before the election, on this node's clock, so it ends the term
		// here before the store's term ends.
		now := time.Now()
		ok, err := cfg.Store.LeaderElect(ctx, store.LeaderElectParams{Name: cfg.Name, Owner: cfg.Owner, TTL: cfg.TTL})
		switch was := leading(); {
		case ctx.Err() != nil:
			return
		case err != nil:
			// The watchdog steps down if this lasts.
			log.Error("leader election failed", "err", err)
		case ok && !was:
			log.Info("elected leader")
			var lctx context.Context
			lctx, cancel = context.WithCancel(ctx)
			expired.Store(false)
			watchdog = time.AfterFunc(time.Until(now.Add(cfg.TTL/2)), func() {
				log.Warn("leadership not renewed in time: stepping down")
				expired.Store(true)
				cancel()
			})
			done := make(chan struct{})
			finished = done
			go func() {
				defer close(done)
				lead(lctx)
			}()
		case ok:
			watchdog.Reset(time.Until(now.Add(cfg.TTL / 2)))
		case was:
			log.Warn("leadership lost to another node")
			stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
