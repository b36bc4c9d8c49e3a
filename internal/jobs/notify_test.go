package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/jobs"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// notifyingStore is a node's store whose JobListen delivers the wake-ups
// sent on its channel (another node's commits).
type notifyingStore struct {
	*sqlite.Store
	notes     chan struct{}
	listening chan struct{}
}

func (s *notifyingStore) JobListen(ctx context.Context, wake func()) error {
	close(s.listening)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.notes:
			wake()
		}
	}
}

var _ store.JobNotifier = (*notifyingStore)(nil)

// A job committed by another node wakes the engine through the store's
// listener, without Notify in this process and without polling (the poll
// interval is an hour).
func TestEngineWakesOnOtherNodesJobs(t *testing.T) {
	t.Parallel()
	st := &notifyingStore{Store: openStore(t), notes: make(chan struct{}, 1), listening: make(chan struct{})}
	e := jobs.New(jobs.Config{Store: st, Logger: quiet, Poll: time.Hour, Handlers: map[string]jobs.Handler{"t": finish(st), "first": finish(st)}})
	// A job there before the start is found by the first claim; once it
	// is done the engine sleeps until woken.
	first := insert(t, st, "first", 1)
	run(t, e)
	waitStatus(t, st, first[0], ecs.JobSuccess)
	select {
	case <-st.listening:
	case <-time.After(30 * time.Second):
		t.Fatal("the engine does not listen for other nodes' jobs")
	}
	ids := insert(t, st.Store, "t", 3)
	st.notes <- struct{}{}
	for _, id := range ids {
		waitStatus(t, st, id, ecs.JobSuccess)
	}
}
