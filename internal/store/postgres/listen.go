package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsproject/ecsd/internal/store"
)

// JobChannel is the notification channel on which a Write that inserted a
// runnable job notifies, as it commits.
const JobChannel = "ecsd_jobs"

// ChangeChannel is the notification channel on which a transaction that
// changed credentials or images notifies, as it commits, with the topic
// (store.TopicCredentials, store.TopicImages) as payload. Triggers send
// these (migration 00003), so every writer does, whatever its path.
const ChangeChannel = "ecsd_changes"

// Reconnection back-off of the listeners.
const (
	listenMinBackoff = 50 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
)

var (
	_ store.JobNotifier    = (*Store)(nil)
	_ store.ChangeNotifier = (*Store)(nil)
)

// JobListen calls wake after every commit, by any Store on the database,
// of a Write that inserted a runnable job, and once each time it has
// (re)connected: notifications sent while it was not listening are lost,
// so a caller must look for work then. It listens on a connection of its
// own (not one of the pool's), reconnects with back-off when that
// connection fails, and returns when ctx ends. wake must not block for
// long: notifications wait while it runs.
func (s *Store) JobListen(ctx context.Context, wake func()) error {
	return s.listen(ctx, JobChannel, jobListenerAppName, func(string) { wake() }, wake)
}

// ChangeListen calls changed with the topic after every commit, by any
// process on the database, that changed credentials (store.TopicCredentials)
// or images (store.TopicImages), and with "" each time it has
// (re)connected, since changes made meanwhile are not told of. Like
// JobListen it has a connection of its own and reconnects with back-off.
func (s *Store) ChangeListen(ctx context.Context, changed func(topic string)) error {
	return s.listen(ctx, ChangeChannel, changeListenerAppName, changed, func() { changed("") })
}

// listen listens on channel on a connection of its own named appName,
// calling notified with each notification's payload and connected each
// time LISTEN is in effect, until ctx ends; it reconnects with back-off.
func (s *Store) listen(ctx context.Context, channel, appName string, notified func(payload string), connected func()) error {
	backoff := listenMinBackoff
	for {
		err := s.listenOnce(ctx, channel, appName, notified, func() {
			backoff = listenMinBackoff
			connected()
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("listener lost its connection; reconnecting", "channel", channel, "err", err, "in", backoff)
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
func (s *Store) listenOnce(ctx context.Context, channel, appName string, notified func(string), connected func()) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = appName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel == channel {
			notified(n.Payload)
		}
	}
}

// The listeners' session names in pg_stat_activity.
const (
	jobListenerAppName    = "ecsd-job-listener"
	changeListenerAppName = "ecsd-change-listener"
)
