package postgres

import (
	"slices"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// Two nodes share the database; node b's clock (nodeB) is off by 10
// minutes either way. Heartbeats, terms and leases that the nodes leave to
// the store (a zero Now, as cluster and jobs do) are judged right by the
// database's clock: b is not seen down, holds its term and lease against
// a, and takes neither from a. The same calls stamped with b's clock, as
// nodes did before, get it wrong (the control below): a slow b shows down,
// a fast b takes a's term and job.
func TestNodeClockSkew(t *testing.T) {
	t.Parallel()
	const downAfter = 30 * time.Second
	for _, skew := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dsn := freshDB(t)
			a, b := openStore(t, dsn), openStore(t, dsn)
			nodeB := func() time.Time { return time.Now().Add(skew) }

			// Liveness: b registers and beats; a sees it up.
			hb, err := cluster.Register(ctx, cluster.HostConfig{Store: b, Name: "node-b", Driver: "sim", Capacity: cluster.SimCapacity})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.HostHeartbeat(ctx, hb.Name(), time.Time{}); err != nil {
				t.Fatal(err)
			}
			h, err := a.HostGet(ctx, "node-b")
			if err != nil || !cluster.Up(h, downAfter) {
				t.Fatalf("node-b seen by node-a = %+v, %v; want up", h, err)
			}

			// Terms: b leads; a cannot take over; b's renewal keeps it.
			elect := func(s *Store, owner string, now time.Time) bool {
				t.Helper()
				ok, err := s.LeaderElect(ctx, store.LeaderElectParams{Name: "upkeep", Owner: owner, Now: now, TTL: 15 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			if !elect(b, "node-b", time.Time{}) || elect(a, "node-a", time.Time{}) || !elect(b, "node-b", time.Time{}) {
				t.Fatal("node-b's term was not kept against node-a by the database's clock")
			}

			// Leases: b runs job-b, a runs job-a; neither claims the other's.
			claim := func(s *Store, owner string, now time.Time) []string {
				t.Helper()
				got, err := s.JobClaim(ctx, store.JobClaimParams{Owner: owner, Now: now, Lease: 15 * time.Second, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				ids := make([]string, len(got))
				for i, j := range got {
					ids[i] = j.ID
				}
				return ids
			}
			insertJob(t, a, ecs.Job{ID: "job-b", ProjectID: "p", Type: ecs.JobStartServer, Runnable: true, Params: []byte(`{}`)})
			if got := claim(b, "node-b", time.Time{}); len(got) != 1 {
				t.Fatalf("node-b claimed %v, want job-b", got)
			}
			insertJob(t, a, ecs.Job{ID: "job-a", ProjectID: "p", Type: ecs.JobStartServer, Runnable: true, Params: []byte(`{}`)})
			if got := claim(a, "node-a", time.Time{}); len(got) != 1 || got[0] != "job-a" {
				t.Fatalf("node-a claimed %v, want job-a only (node-b's lease runs)", got)
			}
			if got := claim(b, "node-b", time.Time{}); len(got) != 0 {
				t.Fatalf("node-b claimed %v under node-a's lease", got)
			}

			// The control: the same calls on b's clock.
			if skew < 0 {
				if err := b.HostHeartbeat(ctx, "node-b", nodeB()); err != nil {
					t.Fatal(err)
				}
				if h, err := a.HostGet(ctx, "node-b"); err != nil || cluster.Up(h, downAfter) {
					t.Fatalf("control: a heartbeat on a clock 10 minutes slow reads %+v, %v; want down", h, err)
				}
				return
			}
			if err := a.LeaderResign(ctx, "upkeep", "node-b"); err != nil {
				t.Fatal(err)
			}
			if !elect(a, "node-a", time.Time{}) || !elect(b, "node-b", nodeB()) {
				t.Fatal("control: node-b on a clock 10 minutes fast did not take node-a's term")
			}
			if got := claim(b, "node-b", nodeB()); !slices.Contains(got, "job-a") {
				t.Fatalf("control: node-b on a clock 10 minutes fast claimed %v, want node-a's job-a", got)
			}
		})
	}
}
