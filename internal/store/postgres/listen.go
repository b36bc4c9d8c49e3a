package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// JobChannel is the notification channel on which a Write that inserted a
// runnable job notifies, as it commits.
const JobChannel = "ecsd_jobs"

// Reconnection back-off of JobListen.
const (
	listenMinBackoff = 50 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
)

// JobListen calls wake after every commit, by any Store on the database,
// of a Write that inserted a runnable job, and once each time it has
// (re)connected: notifications sent while it was not listening are lost,
// so a caller must look for work then. It listens on a connection of its
// own (not one of the pool's), reconnects with back-off when that
// connection fails, and returns when ctx ends. wake must not block for
// long: notifications wait while it runs.
func (s *Store) JobListen(ctx context.Context, wake func()) error {
	backoff := listenMinBackoff
	for {
		err := s.listenOnce(ctx, wake, func() { backoff = listenMinBackoff })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("job listener lost its connection; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listenOnce connects, listens and delivers notifications until the
// connection fails or ctx ends. connected is called once LISTEN is in
// effect.
func (s *Store) listenOnce(ctx context.Context, wake, connected func()) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = listenerAppName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{JobChannel}.Sanitize()); err != nil {
		return err
	}
	connected()
	wake()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel == JobChannel {
			wake()
		}
	}
}

// listenerAppName names the listener's session in pg_stat_activity.
const listenerAppName = "ecsd-job-listener"
