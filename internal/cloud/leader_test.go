package cloud_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// upkeepStore is one node's handle on a shared database that counts the
// job cleaner's runs and can stop renewing its leadership (cut off).
type upkeepStore struct {
	*sqlite.Store
	cleans atomic.Int32
	lost   atomic.Int32 // elections lost
	cut    atomic.Bool
}

func (s *upkeepStore) JobDeleteFinished(ctx context.Context, before time.Time) (int, error) {
	s.cleans.Add(1)
	return s.Store.JobDeleteFinished(ctx, before)
}

func (s *upkeepStore) LeaderElect(ctx context.Context, p store.LeaderElectParams) (bool, error) {
	if s.cut.Load() {
		return false, errors.New("connection refused")
	}
	ok, err := s.Store.LeaderElect(ctx, p)
	if err == nil && !ok {
		s.lost.Add(1)
	}
	return ok, err
}

// Of two services on one database, only the upkeep leader cleans old jobs;
// when it stops renewing its leadership, the other takes over.
func TestOneNodeCleans(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "db")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(host string) *upkeepStore {
		st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		us := &upkeepStore{Store: st}
		svc := cloud.New(cloud.Config{Store: us, Logger: quiet, NodeID: host, Host: host, LeaderTTL: 3 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { svc.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return us
	}
	a := start("node-a")
	waitFor(t, "node-a cleans", func() bool { return a.cleans.Load() > 0 })
	b := start("node-b")
	// node-b campaigns and loses while node-a leads.
	waitFor(t, "node-b losing elections", func() bool { return b.lost.Load() >= 2 })
	if l, err := a.Store.LeaderGet(t.Context(), cloud.UpkeepLeadership); err != nil || l.Owner != "node-a" {
		t.Fatalf("leader %+v, %v; want node-a", l, err)
	}
	if n := b.cleans.Load(); n != 0 {
		t.Fatalf("node-b cleaned %d times while node-a led", n)
	}
	a.cut.Store(true)
	waitFor(t, "node-b takes the upkeep over", func() bool { return b.cleans.Load() > 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
