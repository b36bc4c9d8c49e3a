package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// RunShared runs the checks that span several Store values on one
// database: several nodes (or processes) sharing it. open returns n new
// Stores on one new, empty database, closed with t.Cleanup.
//
// It checks that what one Store commits the others see; that concurrent
// claimers spread over the Stores never get the same job; that
// read-check-update Writes spread over the Stores never interleave (no
// lost update, and of many concurrent submits for one server exactly one
// wins); that Tx.Lock serialises Writes of every Store; that concurrent
// reservations on one host through every Store never pass its capacity;
// that concurrent allocations in one subnet through every Store, each
// picking the lowest free address after SubnetEnsure, never collide.
func RunShared(t *testing.T, open func(t *testing.T, n int) []store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T, n int) []store.Store)
	}{
		{"SeeEachOther", testSharedSee},
		{"ClaimDisjoint", testSharedClaim},
		{"Serialised", testSharedSerialised},
		{"OneWinner", testSharedOneWinner},
		{"Lock", func(t *testing.T, open func(t *testing.T, n int) []store.Store) { lockedGetOrInsert(t, open(t, 3), 30) }},
		{"HostAllocate", testSharedHostAllocate},
		{"Addresses", testSharedAddresses},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

func testSharedSee(t *testing.T, open func(t *testing.T, n int) []store.Store) {
	ss := open(t, 2)
	a, b := &bundle{ctx: t.Context(), s: ss[0]}, &bundle{ctx: t.Context(), s: ss[1]}
	srv := fullServer("srv-a", projA)
	a.insertServers(t, srv)
	wantEqual(t, "ServerGet through the other store", b.getServer(t, projA, srv.ID), srv)
	srv.Name = "renamed"
	b.updateServer(t, srv)
	wantEqual(t, "ServerGet after the other store's update", a.getServer(t, projA, srv.ID), srv)

	a.insertJobs(t, topJob("job-1"))
	got := b.claim(t, "worker-b", t0, time.Minute, 10)
	wantClaimed(t, "JobClaim through the other store", got, 1, topJob("job-1"))
	if again := a.claim(t, "worker-a", t0, time.Minute, 10); len(again) != 0 {
		t.Fatalf("JobClaim of a job leased through the other store claimed %v", jobIDs(again))
	}
}

// Workers on every Store claim at once: every job goes to exactly one.
func testSharedClaim(t *testing.T, open func(t *testing.T, n int) []store.Store) {
	ss := open(t, 3)
	b := &bundle{ctx: t.Context(), s: ss[0]}
	const nJobs, perStore = 150, 3
	var jobs []ecs.Job
	for i := range nJobs {
		jobs = append(jobs, topJob(fmt.Sprintf("job-%03d", i)))
	}
	b.insertJobs(t, jobs...)

	var (
		mu     sync.Mutex
		owners = map[string][]string{}
		errs   []error
		wg     sync.WaitGroup
	)
	for si, s := range ss {
		for w := range perStore {
			owner := fmt.Sprintf("node-%d/worker-%d", si, w)
			wg.Go(func() {
				for {
					got, err := s.JobClaim(b.ctx, store.JobClaimParams{Owner: owner, Now: t0, Lease: time.Hour, Limit: 2})
					mu.Lock()
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", owner, err))
					}
					for _, j := range got {
						owners[j.ID] = append(owners[j.ID], owner)
					}
					mu.Unlock()
					if err != nil || len(got) == 0 {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	for _, j := range jobs {
		if o := owners[j.ID]; len(o) != 1 {
			t.Errorf("job %s claimed by %v, want exactly one worker", j.ID, o)
		}
	}
}

// Concurrent read-check-update cycles through every Store lose no update.
func testSharedSerialised(t *testing.T, open func(t *testing.T, n int) []store.Store) {
	ss := open(t, 3)
	b := &bundle{ctx: t.Context(), s: ss[0]}
	s := plainServer("srv-a", projA, "counter", 0)
	b.insertServers(t, s)
	const perStore = 15
	errs := make(chan error, len(ss)*perStore)
	var wg sync.WaitGroup
	for _, st := range ss {
		for range perStore {
			wg.Go(func() {
				errs <- st.Write(b.ctx, func(tx store.Tx) error {
					cur, err := tx.ServerGet(b.ctx, projA, s.ID)
					if err != nil {
						return err
					}
					cur.LaunchIndex++
					return tx.ServerUpdate(b.ctx, &cur)
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := b.getServer(t, projA, s.ID); got.LaunchIndex != len(ss)*perStore {
		t.Fatalf("counter after %d concurrent increments = %d", len(ss)*perStore, got.LaunchIndex)
	}
}

// The one-winner rule across nodes: 50 concurrent reinstalls of one server
// spread over 3 Stores give exactly one job.
func testSharedOneWinner(t *testing.T, open func(t *testing.T, n int) []store.Store) {
	ss := open(t, 3)
	b := &bundle{ctx: t.Context(), s: ss[0]}
	s := plainServer("srv-a", projA, "a", 0)
	b.insertServers(t, s)
	errBusy := errors.New("server busy")
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		st := ss[i%len(ss)]
		wg.Go(func() {
			errs[i] = st.Write(b.ctx, func(tx store.Tx) error {
				cur, err := tx.ServerGet(b.ctx, projA, s.ID)
				if err != nil {
					return err
				}
				if cur.TaskJobID != "" {
					return errBusy
				}
				jobID := fmt.Sprintf("job-%02d", i)
				cur.TaskState, cur.TaskJobID = ecs.TaskRebuilding, jobID
				if err := tx.ServerUpdate(b.ctx, &cur); err != nil {
					return err
				}
				j := topJob(jobID)
				return tx.JobInsert(b.ctx, &j)
			})
		})
	}
	wg.Wait()
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, errBusy):
			t.Errorf("reinstall %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d reinstalls took the server, want exactly 1", winners)
	}
	var queued []ecs.Job
	for i, st := range ss {
		got, err := st.JobClaim(b.ctx, store.JobClaimParams{Owner: fmt.Sprintf("node-%d", i), Now: t0, Lease: time.Minute, Limit: 100})
		wantNoErr(t, "JobClaim", err)
		queued = append(queued, got...)
	}
	if len(queued) != 1 {
		t.Fatalf("jobs in the queue = %v, want one", jobIDs(queued))
	}
}

// 200 creates spread over 3 Stores reserve on one small host at once: the
// host is filled exactly, never past its capacity.
func testSharedHostAllocate(t *testing.T, open func(t *testing.T, n int) []store.Store) {
	ss := open(t, 3)
	bs := make([]*bundle, len(ss))
	for i, s := range ss {
		bs[i] = &bundle{ctx: t.Context(), s: s}
	}
	bs[0].upsertHost(t, smallHost("host-a"))
	const n = 200
	ok, full := placeConcurrently(t, n, func(i int) error {
		return bs[i%len(bs)].placeServer(fmt.Sprintf("srv-%03d", i), "host-a", 1, 1024, 10)
	})
	// 8 vCPUs, 12288 MB, 100 GB: vCPUs run out first, at 8.
	if ok != 8 || full != n-8 {
		t.Fatalf("%d concurrent reservations over %d stores: %d made, %d refused; want 8 and %d", n, len(bs), ok, full, n-8)
	}
	wantAlloc(t, "after concurrent reservations", bs[1].getHost(t, "host-a"), 8, 8*1024, 80, 8)
}
