package storetest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// topJob is a runnable top-level job, inserted as INIT.
func topJob(id string) ecs.Job {
	return ecs.Job{ID: id, ProjectID: projA, Type: ecs.JobReinstallOS, Status: ecs.JobInit, ServerID: "srv-" + id,
		Runnable: true, Params: []byte(`{"volume_id":"vol-` + id + `","password_hash":"$6$salt$hash"}`), Created: t0}
}

// batch is a batch job (not runnable, no status given, as the service
// inserts it) followed by n runnable sub-jobs.
func batch(parentID string, n int) []ecs.Job {
	jobs := []ecs.Job{{ID: parentID, ProjectID: projA, Type: ecs.JobStartServers, Created: t0}}
	for i := range n {
		jobs = append(jobs, ecs.Job{ID: subID(parentID, i), ProjectID: projA, Type: ecs.JobStartServer, ParentID: parentID,
			ServerID: fmt.Sprintf("srv-%s-%d", parentID, i), Runnable: true, Params: []byte(`{}`), Created: t0})
	}
	return jobs
}

func subID(parentID string, i int) string { return fmt.Sprintf("%s-sub-%d", parentID, i) }

// claimed is what a job looks like right after its n-th claim at now.
func claimed(j ecs.Job, n int) ecs.Job {
	j.Status, j.Attempts = ecs.JobRunning, n
	return j
}

// wantClaimed checks that got are the jobs want, freshly claimed for the
// n-th time: RUNNING, attempts n, every other field as inserted. Begin is
// the store's to set and is not compared.
func wantClaimed(t *testing.T, what string, got []ecs.Job, n int, want ...ecs.Job) {
	t.Helper()
	if g, w := jobIDs(got), jobIDs(want); !slices.Equal(g, w) {
		t.Fatalf("%s claimed %v, want %v", what, g, w)
	}
	byID := map[string]ecs.Job{}
	for _, j := range want {
		byID[j.ID] = j
	}
	for _, j := range got {
		j.Begin = time.Time{}
		wantEqual(t, what+": claimed job", j, claimed(byID[j.ID], n))
	}
}

func testJob(t *testing.T, open opener) {
	t.Run("InsertGet", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		j, other := topJob("job-1"), topJob("job-2")
		other.ProjectID, other.Params = projB, nil
		b.insertJobs(t, j, other)
		wantEqual(t, "JobGet", b.getJob(t, projA, j.ID), j)
		wantEqual(t, "JobGet", b.getJob(t, projB, other.ID), other)
		for _, project := range []string{projB, ""} {
			_, err := b.s.JobGet(b.ctx, project, j.ID)
			wantErr(t, fmt.Sprintf("JobGet(%q) of another project's job", project), err, ecs.ErrNotFound)
		}
		_, err := b.s.JobGet(b.ctx, projA, "job-missing")
		wantErr(t, "JobGet of a missing job", err, ecs.ErrNotFound)
		b.write(t, func(tx store.Tx) error {
			for _, want := range []ecs.Job{j, other} {
				got, err := tx.JobGetByID(b.ctx, want.ID)
				wantNoErr(t, "Tx.JobGetByID", err)
				wantEqual(t, "Tx.JobGetByID (any project)", got, want)
			}
			_, err := tx.JobGetByID(b.ctx, "job-missing")
			wantErr(t, "Tx.JobGetByID of a missing job", err, ecs.ErrNotFound)
			return nil
		})
	})

	t.Run("InsertConflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		j := topJob("job-1")
		b.insertJobs(t, j)
		dup := topJob("job-1")
		dup.ProjectID, dup.Type = projB, ecs.JobDeleteServer
		err := b.writeErr(func(tx store.Tx) error { return tx.JobInsert(b.ctx, &dup) })
		wantErr(t, "JobInsert of a taken id", err, ecs.ErrConflict)
		wantEqual(t, "job after a conflicting insert", b.getJob(t, projA, j.ID), j)
	})

	t.Run("DefaultStatus", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		j := topJob("job-1")
		j.Status = ""
		b.insertJobs(t, j)
		if got := b.getJob(t, projA, j.ID); got.Status != ecs.JobInit {
			t.Fatalf("status of a job inserted without one = %q, want %q", got.Status, ecs.JobInit)
		}
		j.Status = ecs.JobInit
		wantClaimed(t, "JobClaim", b.claim(t, "w", t0, time.Minute, 10), 1, j)
	})

	t.Run("SubJobs", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		jobs := batch("batch-1", 3)
		neighbour := batch("batch-2", 1)
		lone := topJob("job-1")
		b.insertJobs(t, jobs[0], neighbour[0], jobs[1], lone, neighbour[1], jobs[2], jobs[3])

		parent := b.getJob(t, projA, "batch-1")
		if parent.Runnable || parent.ParentID != "" || parent.Status != ecs.JobInit {
			t.Fatalf("batch job = runnable %v, parent %q, status %q; want false, \"\", INIT",
				parent.Runnable, parent.ParentID, parent.Status)
		}
		subs := parent.SubJobs
		slices.SortFunc(subs, cmpID)
		want := slices.Clone(jobs[1:])
		for i := range want {
			want[i].Status = ecs.JobInit
		}
		wantEqual(t, "JobGet sub-jobs", subs, want)

		if sub := b.getJob(t, projA, subID("batch-1", 0)); len(sub.SubJobs) != 0 || sub.ParentID != "batch-1" {
			t.Fatalf("JobGet of a sub-job = parent %q, %d sub-jobs; want batch-1, 0", sub.ParentID, len(sub.SubJobs))
		}
		if got := b.getJob(t, projA, lone.ID); len(got.SubJobs) != 0 {
			t.Fatalf("JobGet of a lone job has %d sub-jobs", len(got.SubJobs))
		}
		b.write(t, func(tx store.Tx) error {
			got, err := tx.JobGetByID(b.ctx, "batch-1")
			wantNoErr(t, "Tx.JobGetByID", err)
			if len(got.SubJobs) != 0 {
				t.Fatalf("Tx.JobGetByID returned %d sub-jobs, want none", len(got.SubJobs))
			}
			return nil
		})
	})
}

func cmpID(x, y ecs.Job) int { return strings.Compare(x.ID, y.ID) }

func testJobClaim(t *testing.T, open opener) {
	t.Run("OnlyRunnable", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		jobs := batch("batch-1", 2)
		lone := topJob("job-1")
		done, failed := topJob("job-done"), topJob("job-failed")
		done.Status, done.End = ecs.JobSuccess, t0
		failed.Status, failed.End, failed.ErrorCode = ecs.JobFail, t0, ecs.CodeTaskFailed.Wire
		b.insertJobs(t, append(jobs, lone, done, failed)...)

		got := b.claim(t, "worker-a", t0, time.Minute, 100)
		jobs[1].Status, jobs[2].Status = ecs.JobInit, ecs.JobInit
		wantClaimed(t, "first JobClaim", got, 1, jobs[1], jobs[2], lone)
		if again := b.claim(t, "worker-b", t0, time.Minute, 100); len(again) != 0 {
			t.Fatalf("JobClaim while every lease is live claimed %v", jobIDs(again))
		}
		if again := b.claim(t, "worker-b", t0.Add(59*time.Second), time.Minute, 100); len(again) != 0 {
			t.Fatalf("JobClaim before the leases expire claimed %v", jobIDs(again))
		}
		for _, id := range []string{"job-done", "job-failed", "batch-1"} {
			if j := b.getJob(t, projA, id); j.Attempts != 0 {
				t.Fatalf("job %s (not claimable) has %d attempts", id, j.Attempts)
			}
		}
	})

	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		var jobs []ecs.Job
		for i := range 5 {
			jobs = append(jobs, topJob(fmt.Sprintf("job-%d", i)))
		}
		b.insertJobs(t, jobs...)
		var all []ecs.Job
		for _, want := range []int{2, 2, 1, 0} {
			got := b.claim(t, "worker-a", t0, time.Minute, 2)
			if len(got) != want {
				t.Fatalf("JobClaim(limit 2) claimed %d jobs (%v), want %d", len(got), jobIDs(got), want)
			}
			all = append(all, got...)
		}
		wantClaimed(t, "JobClaim in pages", all, 1, jobs...)
	})

	t.Run("ExpiredLease", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		j := topJob("job-1")
		b.insertJobs(t, j)
		wantClaimed(t, "JobClaim", b.claim(t, "worker-a", t0, time.Minute, 10), 1, j)
		if got := b.claim(t, "worker-b", t0.Add(30*time.Second), time.Minute, 10); len(got) != 0 {
			t.Fatalf("JobClaim of a live lease claimed %v", jobIDs(got))
		}
		later := t0.Add(2 * time.Minute)
		wantClaimed(t, "JobClaim after the lease expired", b.claim(t, "worker-b", later, time.Minute, 10), 2, j)
		if got := b.claim(t, "worker-c", later, time.Minute, 10); len(got) != 0 {
			t.Fatalf("JobClaim right after a re-claim claimed %v", jobIDs(got))
		}
		if got := b.getJob(t, projA, j.ID); got.Status != ecs.JobRunning || got.Attempts != 2 {
			t.Fatalf("job after two claims = %s, %d attempts; want RUNNING, 2", got.Status, got.Attempts)
		}
	})

	t.Run("FinishedNotReclaimed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-ok"), topJob("job-fail"))
		jobs, leases := b.claimAll(t, "worker-a", t0)
		b.finish(t, jobs["job-ok"], leases["job-ok"], ecs.JobSuccess, t0.Add(time.Second))
		b.finish(t, jobs["job-fail"], leases["job-fail"], ecs.JobFail, t0.Add(time.Second))
		if got := b.claim(t, "worker-b", t0.Add(24*time.Hour), time.Minute, 10); len(got) != 0 {
			t.Fatalf("JobClaim claimed finished jobs %v", jobIDs(got))
		}
	})

	// Many workers claim at once: every job goes to exactly one of them.
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		const nJobs, nWorkers = 120, 8
		var jobs []ecs.Job
		for i := range nJobs {
			jobs = append(jobs, topJob(fmt.Sprintf("job-%03d", i)))
		}
		b.insertJobs(t, jobs...)

		var (
			mu     sync.Mutex
			owners = map[string][]string{} // job id -> claiming workers
			errs   []error
			wg     sync.WaitGroup
		)
		for w := range nWorkers {
			owner := fmt.Sprintf("worker-%d", w)
			wg.Go(func() {
				for {
					got, err := b.s.JobClaim(b.ctx, store.JobClaimParams{Owner: owner, Now: t0, Lease: time.Hour, Limit: 3})
					mu.Lock()
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", owner, err))
					}
					for _, j := range got {
						owners[j.ID] = append(owners[j.ID], owner)
						if j.Attempts != 1 {
							errs = append(errs, fmt.Errorf("%s claimed %s with attempts %d", owner, j.ID, j.Attempts))
						}
					}
					mu.Unlock()
					if err != nil || len(got) == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if i == 10 {
				t.Errorf("... and %d more errors", len(errs)-i)
				break
			}
			t.Error(err)
		}
		for _, j := range jobs {
			if o := owners[j.ID]; len(o) != 1 {
				t.Errorf("job %s claimed by %v, want exactly one worker", j.ID, o)
			}
		}
		if len(owners) != nJobs {
			t.Errorf("%d distinct jobs claimed, want %d", len(owners), nJobs)
		}
	})
}

func testJobUpdate(t *testing.T, open opener) {
	// setupClaimed inserts job-1 and claims it for worker-a.
	setupClaimed := func(t *testing.T) (*bundle, ecs.Job, store.Lease) {
		t.Helper()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-1"))
		jobs, leases := b.claimAll(t, "worker-a", t0)
		return b, jobs["job-1"], leases["job-1"]
	}

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b, j, lease := setupClaimed(t)
		if lease.Attempt != 1 {
			t.Fatalf("first claim gave attempt %d, want 1", lease.Attempt)
		}
		j.Step, j.Params, j.Begin = 2, []byte(`{"volume_id":"vol-9","step_note":"disk made"}`), t0.Add(17*time.Millisecond)
		wantNoErr(t, "JobUpdate", b.updateJob(j, lease))
		wantEqual(t, "JobGet after JobUpdate", b.getJob(t, projA, j.ID), j)

		j.Status, j.Step, j.ErrorCode, j.FailReason = ecs.JobFail, 3, ecs.CodeSystemDiskAbnormal.Wire, "disk gone"
		j.End = t0.Add(time.Minute + 333*time.Millisecond)
		wantNoErr(t, "JobUpdate to FAIL", b.updateJob(j, lease))
		wantEqual(t, "JobGet after JobUpdate to FAIL", b.getJob(t, projA, j.ID), j)
	})

	t.Run("Fenced", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name  string
			lease store.Lease
		}{
			{"other owner", store.Lease{Owner: "worker-b", Attempt: 1}},
			{"stale attempt", store.Lease{Owner: "worker-a", Attempt: 0}},
			{"future attempt", store.Lease{Owner: "worker-a", Attempt: 2}},
			{"zero lease", store.Lease{}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				b, j, _ := setupClaimed(t)
				before := b.getJob(t, projA, j.ID)
				changed := j
				changed.Status, changed.Step, changed.End = ecs.JobSuccess, 9, t0.Add(time.Minute)
				wantErr(t, "JobUpdate with "+c.name, b.updateJob(changed, c.lease), ecs.ErrFenced)
				wantEqual(t, "job after a fenced JobUpdate", b.getJob(t, projA, j.ID), before)
			})
		}
	})

	t.Run("NeverClaimed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		j := topJob("job-1")
		b.insertJobs(t, j)
		changed := j
		changed.Status = ecs.JobSuccess
		for _, lease := range []store.Lease{{}, {Owner: "worker-a"}, {Owner: "worker-a", Attempt: 1}} {
			wantErr(t, fmt.Sprintf("JobUpdate of a never claimed job with %+v", lease), b.updateJob(changed, lease), ecs.ErrFenced)
		}
		wantEqual(t, "job after fenced updates", b.getJob(t, projA, j.ID), j)
		if err := b.updateJob(topJob("job-missing"), store.Lease{Owner: "worker-a", Attempt: 1}); err == nil {
			t.Fatal("JobUpdate of a missing job succeeded")
		}
	})

	t.Run("AfterReclaim", func(t *testing.T) {
		t.Parallel()
		b, j, oldLease := setupClaimed(t)
		jobs, leases := b.claimAll(t, "worker-b", t0.Add(2*time.Hour))
		newLease := leases[j.ID]
		if newLease.Attempt != 2 {
			t.Fatalf("re-claim gave attempt %d, want 2 (claimed %v)", newLease.Attempt, jobs)
		}
		stale := j
		stale.Status, stale.End = ecs.JobSuccess, t0.Add(3*time.Hour)
		wantErr(t, "JobUpdate with the lease of the first claim", b.updateJob(stale, oldLease), ecs.ErrFenced)
		cur := jobs[j.ID]
		cur.Step = 1
		wantNoErr(t, "JobUpdate with the new lease", b.updateJob(cur, newLease))
		if got := b.getJob(t, projA, j.ID); got.Status != ecs.JobRunning || got.Step != 1 {
			t.Fatalf("job = %s step %d, want RUNNING step 1", got.Status, got.Step)
		}
	})
}

// testJobFold checks how a batch job's status follows its sub-jobs.
func testJobFold(t *testing.T, open opener) {
	const (
		S = ecs.JobSuccess
		F = ecs.JobFail
		R = ecs.JobRunning // claimed, not finished
		I = ecs.JobInit    // not claimed
	)
	ends := []time.Time{t0.Add(3 * time.Minute), t0.Add(5 * time.Minute), t0.Add(time.Minute)}
	cases := []struct {
		name string
		subs [3]string
		want string
	}{
		{"none claimed", [3]string{I, I, I}, ecs.JobInit},
		{"all claimed", [3]string{R, R, R}, ecs.JobRunning},
		{"one claimed", [3]string{R, I, I}, ecs.JobRunning},
		{"one done", [3]string{S, R, R}, ecs.JobRunning},
		{"done but one not started", [3]string{S, S, I}, ecs.JobRunning},
		{"all succeeded", [3]string{S, S, S}, ecs.JobSuccess},
		{"one failed", [3]string{S, F, S}, ecs.JobFail},
		{"failed, others running", [3]string{F, R, S}, ecs.JobRunning},
		{"all failed", [3]string{F, F, F}, ecs.JobFail},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, open)
			// A neighbouring batch that fails must not leak into this one.
			other := batch("batch-x", 1)
			b.insertJobs(t, other...)
			jobs := batch("batch-1", 3)
			b.insertJobs(t, jobs[0])
			for i, st := range c.subs {
				if st != I {
					b.insertJobs(t, jobs[1+i])
				}
			}
			claimedJobs, leases := b.claimAll(t, "worker-a", t0)
			for i, st := range c.subs {
				if st == I {
					b.insertJobs(t, jobs[1+i])
				}
			}
			x := subID("batch-x", 0)
			b.finish(t, claimedJobs[x], leases[x], F, t0.Add(time.Hour))

			var wantEnd time.Time
			for i, st := range c.subs {
				id := subID("batch-1", i)
				if st == S || st == F {
					b.finish(t, claimedJobs[id], leases[id], st, ends[i])
					if ends[i].After(wantEnd) {
						wantEnd = ends[i]
					}
				}
			}
			if c.want != S && c.want != F {
				wantEnd = time.Time{}
			}

			parent := b.getJob(t, projA, "batch-1")
			if parent.Status != c.want || !parent.End.Equal(wantEnd) {
				t.Fatalf("batch with sub-jobs %v = %s ending %v; want %s ending %v", c.subs, parent.Status, parent.End, c.want, wantEnd)
			}
			slices.SortFunc(parent.SubJobs, cmpID)
			var got []string
			for _, sj := range parent.SubJobs {
				got = append(got, sj.Status)
			}
			if !slices.Equal(got, c.subs[:]) {
				t.Fatalf("sub-job statuses = %v, want %v", got, c.subs)
			}
			if o := b.getJob(t, projA, "batch-x"); o.Status != F {
				t.Fatalf("neighbouring batch = %s, want FAIL", o.Status)
			}
		})
	}
}

// leaseOf is the lease of a claimed job.
func leaseOf(owner string, j ecs.Job) store.Lease {
	return store.Lease{Owner: owner, Attempt: j.Attempts, JobID: j.ID}
}

func (b *bundle) renew(t *testing.T, until time.Time, runs ...store.Lease) []string {
	t.Helper()
	got, err := b.s.JobLeaseRenew(b.ctx, store.JobLeaseRenewParams{Runs: runs, Now: t0, Lease: until.Sub(t0)})
	wantNoErr(t, "JobLeaseRenew", err)
	slices.Sort(got)
	return got
}

func testJobLease(t *testing.T, open opener) {
	t.Run("Renew", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-1"), topJob("job-2"), topJob("job-3"))
		a := b.claim(t, "worker-a", t0, time.Minute, 1)
		bb := b.claim(t, "worker-b", t0, time.Minute, 1)
		idle := b.claim(t, "worker-a", t0, time.Minute, 1) // RUNNING under worker-a, but not in its renewal
		if len(a) != 1 || len(bb) != 1 || len(idle) != 1 {
			t.Fatalf("claims = %v, %v, %v; want one job each", jobIDs(a), jobIDs(bb), jobIDs(idle))
		}
		if got := b.renew(t, t0.Add(10*time.Minute), leaseOf("worker-a", a[0])); !slices.Equal(got, jobIDs(a)) {
			t.Fatalf("JobLeaseRenew renewed %v, want %v", got, jobIDs(a))
		}
		if got := b.renew(t, t0.Add(time.Hour)); len(got) != 0 {
			t.Fatalf("JobLeaseRenew of no runs renewed %v", got)
		}
		// Another owner's job named with a lease it does not hold is not renewed.
		if got := b.renew(t, t0.Add(time.Hour), leaseOf("worker-a", bb[0])); len(got) != 0 {
			t.Fatalf("JobLeaseRenew of worker-b's job under worker-a renewed %v", got)
		}

		// Past the old expiry, before the new one: worker-b's job and worker-a's
		// job it did not renew are free.
		got := b.claim(t, "worker-c", t0.Add(5*time.Minute), time.Hour, 10)
		if want := append(jobIDs(bb), jobIDs(idle)...); !slices.Equal(jobIDs(got), want) {
			t.Fatalf("claim between the old and the renewed expiry = %v, want %v", jobIDs(got), want)
		}
		got = b.claim(t, "worker-c", t0.Add(11*time.Minute), time.Hour, 10)
		if !slices.Equal(jobIDs(got), jobIDs(a)) {
			t.Fatalf("claim after the renewed expiry = %v, want %v", jobIDs(got), jobIDs(a))
		}
	})

	t.Run("RenewAfterLoss", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-1"))
		first := b.claim(t, "worker-a", t0, time.Minute, 1)
		b.claim(t, "worker-b", t0.Add(2*time.Minute), time.Minute, 1)
		// worker-a lost the job; its renewal must say so and not extend
		// worker-b's lease.
		if got := b.renew(t, t0.Add(time.Hour), leaseOf("worker-a", first[0])); len(got) != 0 {
			t.Fatalf("JobLeaseRenew of a lost job renewed %v", got)
		}
		got := b.claim(t, "worker-c", t0.Add(4*time.Minute), time.Minute, 1)
		if !slices.Equal(jobIDs(got), []string{"job-1"}) {
			t.Fatalf("claim after worker-b's lease expired = %v, want [job-1]", jobIDs(got))
		}
	})

	t.Run("RenewStaleAttempt", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-1"))
		first := b.claim(t, "worker-a", t0, time.Minute, 1)
		again := b.claim(t, "worker-a", t0.Add(2*time.Minute), time.Minute, 1)
		if len(again) != 1 {
			t.Fatalf("re-claim after expiry = %v", jobIDs(again))
		}
		// The same owner's earlier run of the job lost it to the later one.
		if got := b.renew(t, t0.Add(time.Hour), leaseOf("worker-a", first[0])); len(got) != 0 {
			t.Fatalf("JobLeaseRenew of an earlier attempt renewed %v", got)
		}
		if got := b.renew(t, t0.Add(time.Hour), leaseOf("worker-a", again[0])); !slices.Equal(got, []string{"job-1"}) {
			t.Fatalf("JobLeaseRenew of the live attempt renewed %v, want [job-1]", got)
		}
	})

	t.Run("RenewFinished", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-1"))
		c := b.claim(t, "worker-a", t0, time.Minute, 1)
		b.finish(t, c[0], leaseOf("worker-a", c[0]), ecs.JobSuccess, t0.Add(time.Second))
		if got := b.renew(t, t0.Add(time.Hour), leaseOf("worker-a", c[0])); len(got) != 0 {
			t.Fatalf("JobLeaseRenew of a finished job renewed %v", got)
		}
	})

	// The rescuer: a RUNNING job whose owner stopped renewing is claimable
	// again exactly when its lease expires, by any owner.
	t.Run("RescueExpired", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-1"))
		b.claim(t, "worker-dead", t0, time.Minute, 1)
		if got := b.claim(t, "worker-b", t0.Add(time.Minute-time.Millisecond), time.Minute, 10); len(got) != 0 {
			t.Fatalf("claim before the lease expired = %v", jobIDs(got))
		}
		got := b.claim(t, "worker-b", t0.Add(time.Minute+time.Millisecond), time.Minute, 10)
		wantClaimed(t, "claim after the lease expired", got, 2, topJob("job-1"))
	})

	t.Run("ReleaseOwner", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		jobs := batch("batch-1", 1)
		b.insertJobs(t, append(jobs, topJob("job-1"), topJob("job-2"), topJob("job-done"))...)
		claimedJobs, oldLeases := b.claimAll(t, "worker-a", t0)
		b.finish(t, claimedJobs["job-done"], oldLeases["job-done"], ecs.JobSuccess, t0.Add(time.Second))
		b.insertJobs(t, topJob("job-other"))
		other := b.claim(t, "worker-b", t0, time.Hour, 10)
		b.insertJobs(t, topJob("job-new"))

		n, err := b.s.JobLeaseReleaseOwner(b.ctx, "worker-a")
		wantNoErr(t, "JobLeaseReleaseOwner", err)
		if n != 3 {
			t.Fatalf("JobLeaseReleaseOwner released %d leases, want 3 (job-1, job-2 and the sub-job)", n)
		}
		n, err = b.s.JobLeaseReleaseOwner(b.ctx, "worker-z")
		wantNoErr(t, "JobLeaseReleaseOwner of an owner without jobs", err)
		if n != 0 {
			t.Fatalf("JobLeaseReleaseOwner(worker-z) released %d leases, want 0", n)
		}
		// Claimable at once, at the same instant the leases were taken;
		// worker-b's job keeps its lease.
		got, newLeases := b.claimAll(t, "worker-a", t0)
		wantIDs := []string{subID("batch-1", 0), "job-1", "job-2", "job-new"}
		if ids := slices.Sorted(maps.Keys(got)); !slices.Equal(ids, wantIDs) {
			t.Fatalf("claim after JobLeaseReleaseOwner = %v, want %v", ids, wantIDs)
		}
		for id, l := range newLeases {
			want := 2
			if id == "job-new" {
				want = 1
			}
			if l.Attempt != want {
				t.Fatalf("%s claimed with attempt %d, want %d", id, l.Attempt, want)
			}
		}
		o := other[0]
		o.Status, o.End = ecs.JobSuccess, t0.Add(time.Second)
		wantNoErr(t, "JobUpdate of the other owner's job", b.updateJob(o, leaseOf("worker-b", other[0])))
		stale := claimedJobs["job-1"]
		stale.Status = ecs.JobSuccess
		wantErr(t, "JobUpdate with a lease taken before the release", b.updateJob(stale, oldLeases["job-1"]), ecs.ErrFenced)
		if p := b.getJob(t, projA, "batch-1"); p.Status != ecs.JobRunning {
			t.Fatalf("batch after release and re-claim = %s, want RUNNING", p.Status)
		}
		if d := b.getJob(t, projA, "job-done"); d.Status != ecs.JobSuccess {
			t.Fatalf("finished job after JobLeaseReleaseOwner = %s, want SUCCESS", d.Status)
		}
	})
}

func testJobRetry(t *testing.T, open opener) {
	t.Run("RecordAndWait", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-1"))
		c := b.claim(t, "worker-a", t0, time.Hour, 1)
		l := leaseOf("worker-a", c[0])
		n, err := b.s.JobRetry(b.ctx, store.JobRetryParams{JobID: "job-1", Lease: l, Error: "disk I/O error", Now: t0, Delay: 10 * time.Second})
		wantNoErr(t, "JobRetry", err)
		if n != 1 {
			t.Fatalf("JobRetry = %d errors, want 1", n)
		}
		j := b.getJob(t, projA, "job-1")
		if j.Status != ecs.JobRunning || j.Errors != 1 || j.LastError != "disk I/O error" || j.ErrorCode != "" || j.FailReason != "" {
			t.Fatalf("job after JobRetry = %s errors %d %q code %q reason %q; want RUNNING, 1, the cause, no code or reason",
				j.Status, j.Errors, j.LastError, j.ErrorCode, j.FailReason)
		}
		// The lease is released, but the job waits for its retry time.
		if got := b.claim(t, "worker-b", t0.Add(10*time.Second-time.Millisecond), time.Hour, 10); len(got) != 0 {
			t.Fatalf("claim before the retry time = %v", jobIDs(got))
		}
		got := b.claim(t, "worker-b", t0.Add(10*time.Second), time.Hour, 10)
		if len(got) != 1 || got[0].Attempts != 2 || got[0].Errors != 1 || got[0].LastError != "disk I/O error" {
			t.Fatalf("claim at the retry time = %+v, want job-1, attempt 2, 1 error", got)
		}
		// The earlier run's lease is fenced off; the new run records its own.
		_, err = b.s.JobRetry(b.ctx, store.JobRetryParams{JobID: "job-1", Lease: l, Error: "late", Now: t0})
		wantErr(t, "JobRetry under a lost lease", err, ecs.ErrFenced)
		n, err = b.s.JobRetry(b.ctx, store.JobRetryParams{JobID: "job-1", Lease: leaseOf("worker-b", got[0]), Error: "timeout",
			Now: t0, Delay: 10 * time.Second})
		wantNoErr(t, "JobRetry", err)
		if n != 2 {
			t.Fatalf("second JobRetry = %d errors, want 2", n)
		}
		if j := b.getJob(t, projA, "job-1"); j.LastError != "timeout" || j.Errors != 2 {
			t.Fatalf("job after the second JobRetry: errors %d %q, want 2 \"timeout\"", j.Errors, j.LastError)
		}
	})

	t.Run("Fenced", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.insertJobs(t, topJob("job-1"), topJob("job-init"))
		c := b.claim(t, "worker-a", t0, time.Hour, 1)
		b.finish(t, c[0], leaseOf("worker-a", c[0]), ecs.JobSuccess, t0.Add(time.Second))
		_, err := b.s.JobRetry(b.ctx, store.JobRetryParams{JobID: "job-1", Lease: leaseOf("worker-a", c[0]), Error: "x", Now: t0})
		wantErr(t, "JobRetry of a finished job", err, ecs.ErrFenced)
		_, err = b.s.JobRetry(b.ctx, store.JobRetryParams{JobID: "job-init", Error: "x", Now: t0})
		wantErr(t, "JobRetry without a lease", err, ecs.ErrFenced)
		if j := b.getJob(t, projA, "job-1"); j.Status != ecs.JobSuccess || j.Errors != 0 {
			t.Fatalf("finished job after a fenced JobRetry = %s with %d errors", j.Status, j.Errors)
		}
	})
}

func testJobDeleteFinished(t *testing.T, open opener) {
	b := setup(t, open)
	old, recent := t0.Add(-2*time.Hour), t0
	before := t0.Add(-time.Hour)

	oldBatch, runBatch := batch("batch-old", 2), batch("batch-run", 2)
	jobs := append([]ecs.Job{topJob("job-old-ok"), topJob("job-old-fail"), topJob("job-new-ok"), topJob("job-running")},
		append(oldBatch, runBatch...)...)
	b.insertJobs(t, jobs...)
	claimedJobs, leases := b.claimAll(t, "worker-a", t0.Add(-3*time.Hour))
	fin := func(id, status string, end time.Time) { b.finish(t, claimedJobs[id], leases[id], status, end) }
	fin("job-old-ok", ecs.JobSuccess, old)
	fin("job-old-fail", ecs.JobFail, old)
	fin("job-new-ok", ecs.JobSuccess, recent)
	fin(subID("batch-old", 0), ecs.JobSuccess, old.Add(-30*time.Minute))
	fin(subID("batch-old", 1), ecs.JobFail, old)
	fin(subID("batch-run", 0), ecs.JobSuccess, old) // finished long ago, but its batch runs on
	b.insertJobs(t, topJob("job-init"))

	n, err := b.s.JobDeleteFinished(b.ctx, before)
	wantNoErr(t, "JobDeleteFinished", err)
	if n != 5 {
		t.Errorf("JobDeleteFinished deleted %d jobs, want 5 (2 lone jobs, 1 batch with 2 sub-jobs)", n)
	}
	gone := []string{"job-old-ok", "job-old-fail", "batch-old", subID("batch-old", 0), subID("batch-old", 1)}
	kept := []string{"job-new-ok", "job-running", "job-init", "batch-run", subID("batch-run", 0), subID("batch-run", 1)}
	b.write(t, func(tx store.Tx) error {
		for _, id := range gone {
			_, err := tx.JobGetByID(b.ctx, id)
			wantErr(t, "Tx.JobGetByID of deleted job "+id, err, ecs.ErrNotFound)
		}
		for _, id := range kept {
			_, err := tx.JobGetByID(b.ctx, id)
			wantNoErr(t, "Tx.JobGetByID of kept job "+id, err)
		}
		return nil
	})
	if p := b.getJob(t, projA, "batch-run"); len(p.SubJobs) != 2 || p.Status != ecs.JobRunning {
		t.Fatalf("running batch after JobDeleteFinished = %s with %d sub-jobs, want RUNNING with 2", p.Status, len(p.SubJobs))
	}
	n, err = b.s.JobDeleteFinished(b.ctx, before)
	wantNoErr(t, "JobDeleteFinished again", err)
	if n != 0 {
		t.Fatalf("second JobDeleteFinished deleted %d jobs, want 0", n)
	}
	n, err = b.s.JobDeleteFinished(b.ctx, t0.Add(time.Millisecond))
	wantNoErr(t, "JobDeleteFinished later", err)
	if n != 1 {
		t.Fatalf("JobDeleteFinished(later) deleted %d jobs, want 1 (job-new-ok)", n)
	}
}
