package storetest

import (
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// With a zero Now (what nodes pass), a store judges by its own clock:
// heartbeats are stamped and aged by it, and terms, leases and retry
// delays run from it. The suite's other tests pass explicit times.
func testStoreClock(t *testing.T, open opener) {
	t.Run("Heartbeat", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		h := smallHost("host-now")
		h.Heartbeat, h.Created = time.Time{}, time.Time{}
		b.upsertHost(t, h)
		b.upsertHost(t, smallHost("host-old")) // its heartbeat is t0, long ago
		got := b.getHost(t, "host-now")
		if got.Heartbeat.IsZero() || got.Created.IsZero() || got.Age < 0 || got.Age > time.Hour {
			t.Fatalf("host registered at the store's clock: heartbeat %v, created %v, age %s; want set, and a fresh age",
				got.Heartbeat, got.Created, got.Age)
		}
		wantNoErr(t, "HostHeartbeat", b.s.HostHeartbeat(b.ctx, "host-old", time.Time{}))
		if got := b.getHost(t, "host-old"); !got.Heartbeat.After(t0) || got.Age < 0 || got.Age > time.Hour {
			t.Fatalf("heartbeat at the store's clock: %v, age %s; want after %v and a fresh age", got.Heartbeat, got.Age, t0)
		}
		b.upsertHost(t, smallHost("host-old"))
		if got := b.getHost(t, "host-old"); got.Age < 24*time.Hour {
			t.Fatalf("age of a heartbeat at %v = %s, want the time since", t0, got.Age)
		}
	})

	t.Run("Leader", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		elect := func(owner string, ttl time.Duration) bool {
			t.Helper()
			ok, err := b.s.LeaderElect(b.ctx, store.LeaderElectParams{Name: "upkeep", Owner: owner, TTL: ttl})
			wantNoErr(t, "LeaderElect", err)
			return ok
		}
		if !elect("node-a", time.Hour) || elect("node-b", time.Hour) {
			t.Fatal("node-b took a term that runs for an hour by the store's clock")
		}
		if l := b.leader(t, "upkeep"); l.Owner != "node-a" || !l.Expires.After(t0) {
			t.Fatalf("leader = %+v, want node-a until an hour from the store's clock", l)
		}
		// node-a's renewal ends its term a second ago: it is over.
		if !elect("node-a", -time.Second) || !elect("node-b", time.Hour) {
			t.Fatal("node-b was not elected after node-a's term ended by the store's clock")
		}
	})

	t.Run("JobLease", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-1"), topJob("job-2"))
		claim := func(owner string) []string {
			t.Helper()
			got, err := b.s.JobClaim(b.ctx, store.JobClaimParams{Owner: owner, Lease: time.Hour, Limit: 10})
			wantNoErr(t, "JobClaim", err)
			return jobIDs(got)
		}
		a, err := b.s.JobClaim(b.ctx, store.JobClaimParams{Owner: "node-a", Lease: time.Hour, Limit: 10})
		wantNoErr(t, "JobClaim", err)
		if len(a) != 2 || !a[0].Begin.After(t0) {
			t.Fatalf("claim at the store's clock = %+v, want both jobs, begun at the store's clock", a)
		}
		if got := claim("node-b"); len(got) != 0 {
			t.Fatalf("node-b claimed %v under node-a's hour-long leases", got)
		}
		// node-a's renewal of job-1 ends its lease a second ago.
		renewed, err := b.s.JobLeaseRenew(b.ctx, store.JobLeaseRenewParams{Runs: []store.Lease{leaseOf("node-a", a[0])},
			Lease: -time.Second})
		wantNoErr(t, "JobLeaseRenew", err)
		if len(renewed) != 1 {
			t.Fatalf("renewed %v, want job-1", renewed)
		}
		// job-2 is retried in an hour.
		_, err = b.s.JobRetry(b.ctx, store.JobRetryParams{JobID: "job-2", Lease: leaseOf("node-a", a[1]), Error: "x", Delay: time.Hour})
		wantNoErr(t, "JobRetry", err)
		got, err := b.s.JobClaim(b.ctx, store.JobClaimParams{Owner: "node-b", Lease: time.Hour, Limit: 10})
		wantNoErr(t, "JobClaim", err)
		if len(got) != 1 || got[0].ID != "job-1" {
			t.Fatalf("node-b claimed %v, want job-1 (its lease is over) and not job-2 (retried in an hour)", jobIDs(got))
		}
		// A retry without delay is claimable at once.
		_, err = b.s.JobRetry(b.ctx, store.JobRetryParams{JobID: "job-1", Lease: leaseOf("node-b", got[0]), Error: "x"})
		wantNoErr(t, "JobRetry", err)
		if ids := claim("node-c"); len(ids) != 1 || ids[0] != "job-1" {
			t.Fatalf("node-c claimed %v, want job-1, retried without delay", ids)
		}
		if j := b.getJob(t, projA, "job-1"); j.Status != ecs.JobRunning || j.Attempts != 3 {
			t.Fatalf("job-1 = %s after %d attempts, want RUNNING after 3", j.Status, j.Attempts)
		}
	})
}
