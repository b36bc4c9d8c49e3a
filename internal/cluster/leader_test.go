package cluster

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// cuttable is a node's view of the store that can be cut off, and counts
// the elections it lost.
type cuttable struct {
	LeaderStore
	cut    atomic.Bool
	losses atomic.Int32
	lost   chan struct{} // gets a value on each lost election
}

func (c *cuttable) LeaderElect(ctx context.Context, p store.LeaderElectParams) (bool, error) {
	if c.cut.Load() {
		return false, errors.New("connection refused")
	}
	ok, err := c.LeaderStore.LeaderElect(ctx, p)
	if err == nil && !ok {
		c.losses.Add(1)
		select {
		case c.lost <- struct{}{}:
		default:
		}
	}
	return ok, err
}

// leaderRecorder records who leads, and fails the test when two lead at once.
type leaderRecorder struct {
	t      *testing.T
	active atomic.Int32
	mu     sync.Mutex
	terms  []string
	led    chan string
}

func (r *leaderRecorder) lead(owner string) func(ctx context.Context) {
	return func(ctx context.Context) {
		if n := r.active.Add(1); n > 1 {
			r.t.Errorf("%s leads while %d others do", owner, n-1)
		}
		r.mu.Lock()
		r.terms = append(r.terms, owner)
		r.mu.Unlock()
		r.led <- owner
		<-ctx.Done()
		r.active.Add(-1)
	}
}

func waitFor[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func openShared(t *testing.T, n int) []store.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ecsd.db")
	var out []store.Store
	for range n {
		st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out = append(out, st)
	}
	return out
}

// Of two nodes, one leads; the other takes over when the first can no
// longer renew its term (cut off from the database), never while it leads;
// a leader that stops resigns, so that the other takes over at once.
func TestLeadOneAtATime(t *testing.T) {
	t.Parallel()
	ss := openShared(t, 2)
	a := &cuttable{LeaderStore: ss[0], lost: make(chan struct{}, 1)}
	b := &cuttable{LeaderStore: ss[1], lost: make(chan struct{}, 1)}
	rec := &leaderRecorder{t: t, led: make(chan string, 4)}
	// A term ends TTL/2 after its last renewal: the TTL leaves a loaded
	// machine (-race, two SQLite connections contending) well over a
	// second to renew, so that node-a never steps down and is elected
	// again by itself, which would add a term.
	cfg := func(st LeaderStore, owner string) LeaderConfig {
		return LeaderConfig{Store: st, Name: "upkeep", Owner: owner, TTL: 3 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	}
	ctxA, stopA := context.WithCancel(t.Context())
	doneA := make(chan struct{})
	go func() { defer close(doneA); Lead(ctxA, cfg(a, "node-a"), rec.lead("node-a")) }()
	defer func() { stopA(); <-doneA }()
	if got := waitFor(t, "a leader", rec.led); got != "node-a" {
		t.Fatalf("first leader %s, want node-a", got)
	}

	ctxB, stopB := context.WithCancel(t.Context())
	doneB := make(chan struct{})
	go func() { defer close(doneB); Lead(ctxB, cfg(b, "node-b"), rec.lead("node-b")) }()
	defer func() { stopB(); <-doneB }()
	// node-b loses elections while node-a renews its term.
	for range 3 {
		waitFor(t, "node-b losing an election", b.lost)
	}

	// node-a is cut off: it stops leading, and node-b takes over.
	a.cut.Store(true)
	if got := waitFor(t, "the next leader", rec.led); got != "node-b" {
		t.Fatalf("leader after node-a was cut off: %s, want node-b", got)
	}
	// node-a comes back and does not lead while node-b does.
	a.cut.Store(false)
	for range 3 {
		waitFor(t, "node-a losing an election", a.lost)
	}

	// node-b stops and resigns: node-a takes over without waiting for the term.
	stopB()
	<-doneB
	l, err := ss[0].LeaderGet(t.Context(), "upkeep")
	if err != nil || l.Owner != "" {
		t.Fatalf("leader after node-b stopped: %+v, %v; want none", l, err)
	}
	if got := waitFor(t, "the next leader", rec.led); got != "node-a" {
		t.Fatalf("leader after node-b stopped: %s, want node-a", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := []string{"node-a", "node-b", "node-a"}; !equal(rec.terms, want) {
		t.Errorf("terms %v, want %v", rec.terms, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
