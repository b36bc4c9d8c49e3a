package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

var errBoom = errors.New("boom")

func testWrite(t *testing.T, open opener) {
	t.Run("Rollback", func(t *testing.T) {
		t.Parallel()
		tokA := store.Lease{Owner: "worker-a", Attempt: 1}.Token()
		cases := []struct {
			name   string
			last   func(b *bundle, tx store.Tx) error // the failing step
			target error
		}{
			{"fn returns an error", func(*bundle, store.Tx) error { return errBoom }, errBoom},
			{"a store conflict", func(b *bundle, tx store.Tx) error {
				dup := ecs.Server{ID: "srv-keep", ProjectID: projA, Name: "dup"}
				return tx.ServerInsert(b.ctx, &dup)
			}, ecs.ErrConflict},
			{"a fenced job update", func(b *bundle, tx store.Tx) error {
				j, err := tx.JobGetByID(b.ctx, "job-0")
				if err != nil {
					return err
				}
				return tx.JobUpdate(b.ctx, &j, store.Lease{Owner: "worker-b", Attempt: 1})
			}, ecs.ErrFenced},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, open)
				keep := fullServer("srv-keep", projA)
				keep.TaskJobID = "job-0"
				b.insertServers(t, keep)
				b.insertJobs(t, topJob("job-0"))
				jobs, leases := b.claimAll(t, "worker-a", t0)
				job0, lease0 := jobs["job-0"], leases["job-0"]
				job0Before := b.getJob(t, projA, "job-0")
				volKeep := ecs.Volume{ID: "vol-keep", ProjectID: projA, ServerID: keep.ID, SizeGB: 40, Status: "in-use", Created: t0}
				kpKeep := ecs.Keypair{ProjectID: projA, UserID: userA, Name: "kp-keep", PublicKey: "ssh-ed25519 AAAA", Type: "ssh", Created: t0}
				b.write(t, func(tx store.Tx) error {
					if err := tx.ServerSetOwner(b.ctx, keep.ID, "job-0", tokA); err != nil {
						return err
					}
					if err := tx.VolumeUpsert(b.ctx, &volKeep); err != nil {
						return err
					}
					return tx.KeypairInsert(b.ctx, &kpKeep)
				})

				err := b.writeErr(func(tx store.Tx) error {
					n := fullServer("srv-new", projA)
					changed := keep
					changed.Name, changed.TaskJobID, changed.Metadata = "changed", "", map[string]string{"x": "y"}
					j0 := job0
					j0.Step, j0.Status, j0.End = 5, ecs.JobSuccess, t0.Add(time.Minute)
					newJob := topJob("job-new")
					newVol := ecs.Volume{ID: "vol-new", ProjectID: projA, SizeGB: 10, Status: "creating", Created: t0}
					newKP := ecs.Keypair{ProjectID: projA, UserID: userA, Name: "kp-new", PublicKey: "ssh-ed25519 BBBB", Type: "ssh", Created: t0}
					steps := []func() error{
						func() error { return tx.ServerInsert(b.ctx, &n) },
						func() error { return tx.ServerUpdate(b.ctx, &changed) }, // also clears the task owner
						func() error { return tx.JobInsert(b.ctx, &newJob) },
						func() error { return tx.JobUpdate(b.ctx, &j0, lease0) },
						func() error { return tx.VolumeUpsert(b.ctx, &newVol) },
						func() error { return tx.VolumeDelete(b.ctx, volKeep.ID) },
						func() error { return tx.KeypairInsert(b.ctx, &newKP) },
						func() error { return tx.KeypairDelete(b.ctx, projA, userA, kpKeep.Name) },
						func() error { return c.last(b, tx) },
					}
					for i, step := range steps {
						if err := step(); err != nil {
							if i < len(steps)-1 {
								t.Errorf("step %d failed: %v", i, err)
							}
							return err
						}
					}
					return nil
				})
				wantErr(t, "Write", err, c.target)

				_, err = b.s.ServerGet(b.ctx, projA, "srv-new")
				wantErr(t, "inserted server after rollback", err, ecs.ErrNotFound)
				wantEqual(t, "updated server after rollback", b.getServer(t, projA, keep.ID), keep)
				err = b.writeErr(func(tx store.Tx) error { return tx.ServerFence(b.ctx, keep.ID, tokA) })
				wantNoErr(t, "ServerFence of the owner after a rolled-back clear", err)
				_, err = b.s.JobGet(b.ctx, projA, "job-new")
				wantErr(t, "inserted job after rollback", err, ecs.ErrNotFound)
				wantEqual(t, "updated job after rollback", b.getJob(t, projA, "job-0"), job0Before)
				_, err = b.s.VolumeGet(b.ctx, "vol-new")
				wantErr(t, "upserted volume after rollback", err, ecs.ErrNotFound)
				got, err := b.s.VolumeGet(b.ctx, volKeep.ID)
				wantNoErr(t, "deleted volume after rollback", err)
				wantEqual(t, "deleted volume after rollback", got, volKeep)
				_, err = b.s.KeypairGet(b.ctx, projA, userA, "kp-new")
				wantErr(t, "inserted key pair after rollback", err, ecs.ErrNotFound)
				kp, err := b.s.KeypairGet(b.ctx, projA, userA, kpKeep.Name)
				wantNoErr(t, "deleted key pair after rollback", err)
				wantEqual(t, "deleted key pair after rollback", kp, kpKeep)

				// The store is still usable and the job still leased to worker-a.
				job0.Step = 1
				wantNoErr(t, "JobUpdate after a rolled-back Write", b.updateJob(job0, lease0))
			})
		}
	})

	t.Run("SeesOwnWrites", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		b.write(t, func(tx store.Tx) error {
			s := fullServer("srv-a", projA)
			wantNoErr(t, "ServerInsert", tx.ServerInsert(b.ctx, &s))
			got, err := tx.ServerGet(b.ctx, projA, s.ID)
			wantNoErr(t, "Tx.ServerGet of a server inserted in the same Write", err)
			wantEqual(t, "Tx.ServerGet in the same Write", got, s)
			s.Name = "renamed"
			wantNoErr(t, "ServerUpdate", tx.ServerUpdate(b.ctx, &s))
			got, err = tx.ServerGetByID(b.ctx, s.ID)
			wantNoErr(t, "Tx.ServerGetByID", err)
			wantEqual(t, "Tx.ServerGetByID after an update in the same Write", got, s)

			j := topJob("job-1")
			wantNoErr(t, "JobInsert", tx.JobInsert(b.ctx, &j))
			gj, err := tx.JobGetByID(b.ctx, j.ID)
			wantNoErr(t, "Tx.JobGetByID of a job inserted in the same Write", err)
			wantEqual(t, "Tx.JobGetByID in the same Write", gj, j)

			v := ecs.Volume{ID: "vol-1", ProjectID: projA, SizeGB: 10, Status: "creating", Created: t0}
			wantNoErr(t, "VolumeUpsert", tx.VolumeUpsert(b.ctx, &v))
			gv, err := tx.VolumeGet(b.ctx, v.ID)
			wantNoErr(t, "Tx.VolumeGet in the same Write", err)
			wantEqual(t, "Tx.VolumeGet in the same Write", gv, v)

			k := ecs.Keypair{ProjectID: projA, UserID: userA, Name: "kp-1", PublicKey: "ssh-ed25519 AAAA", Type: "ssh", Created: t0}
			wantNoErr(t, "KeypairInsert", tx.KeypairInsert(b.ctx, &k))
			gk, err := tx.KeypairGet(b.ctx, projA, userA, k.Name)
			wantNoErr(t, "Tx.KeypairGet in the same Write", err)
			wantEqual(t, "Tx.KeypairGet in the same Write", gk, k)
			return nil
		})
		if got := b.getServer(t, projA, "srv-a"); got.Name != "renamed" {
			t.Fatalf("server after commit = %q, want renamed", got.Name)
		}
	})

	// Reads outside Write see committed data only. The Write below waits
	// for the read to finish, so no timing is involved.
	t.Run("ReadsSeeCommittedOnly", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		orig := plainServer("srv-a", projA, "before", 0)
		b.insertServers(t, orig)
		inside, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- b.s.Write(b.ctx, func(tx store.Tx) error {
				s := orig
				s.Name = "after"
				if err := tx.ServerUpdate(b.ctx, &s); err != nil {
					return err
				}
				n := plainServer("srv-b", projA, "new", 1)
				if err := tx.ServerInsert(b.ctx, &n); err != nil {
					return err
				}
				j := topJob("job-1")
				if err := tx.JobInsert(b.ctx, &j); err != nil {
					return err
				}
				close(inside)
				<-release
				return nil
			})
		}()
		select {
		case <-inside:
		case err := <-done:
			t.Fatalf("Write ended before the read: %v", err)
		}
		got, err := b.s.ServerGet(b.ctx, projA, "srv-a")
		wantNoErr(t, "ServerGet during a Write", err)
		_, errNew := b.s.ServerGet(b.ctx, projA, "srv-b")
		list, n, errList := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA})
		_, errJob := b.s.JobGet(b.ctx, projA, "job-1")
		close(release)
		wantNoErr(t, "Write", <-done)

		if got.Name != "before" {
			t.Errorf("ServerGet during a Write saw uncommitted name %q", got.Name)
		}
		wantErr(t, "ServerGet of a server not yet committed", errNew, ecs.ErrNotFound)
		wantNoErr(t, "ServerList during a Write", errList)
		if n != 1 || len(list) != 1 {
			t.Errorf("ServerList during a Write = %d, %v; want 1 server", n, serverIDs(list))
		}
		wantErr(t, "JobGet of a job not yet committed", errJob, ecs.ErrNotFound)
		if got := b.getServer(t, projA, "srv-a"); got.Name != "after" {
			t.Errorf("ServerGet after the commit = %q, want after", got.Name)
		}
		b.getServer(t, projA, "srv-b")
		b.getJob(t, projA, "job-1")
	})

	t.Run("CanceledContext", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		ctx, cancel := context.WithCancel(b.ctx)
		cancel()
		err := b.s.Write(ctx, func(tx store.Tx) error {
			s := plainServer("srv-a", projA, "a", 0)
			return tx.ServerInsert(ctx, &s)
		})
		if err == nil {
			t.Fatal("Write with a canceled context succeeded")
		}
		_, err = b.s.ServerGet(b.ctx, projA, "srv-a")
		wantErr(t, "ServerGet after a canceled Write", err, ecs.ErrNotFound)
		b.insertServers(t, plainServer("srv-b", projA, "b", 1))
	})

	// Concurrent read-check-update cycles lose no update.
	t.Run("Serialised", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		s := plainServer("srv-a", projA, "counter", 0)
		b.insertServers(t, s)
		const n = 50
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = b.s.Write(b.ctx, func(tx store.Tx) error {
					cur, err := tx.ServerGet(b.ctx, projA, s.ID)
					if err != nil {
						return err
					}
					cur.LaunchIndex++
					cur.Updated = cur.Updated.Add(time.Millisecond)
					return tx.ServerUpdate(b.ctx, &cur)
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Write %d: %v", i, err)
			}
		}
		got := b.getServer(t, projA, s.ID)
		if got.LaunchIndex != n {
			t.Fatalf("counter after %d concurrent increments = %d", n, got.LaunchIndex)
		}
		if want := s.Updated.Add(n * time.Millisecond); !got.Updated.Equal(want) {
			t.Fatalf("updated after %d concurrent increments = %v, want %v", n, got.Updated, want)
		}
	})

	// Check-then-insert of a row that may not exist yet, under Tx.Lock:
	// exactly one Write inserts it, the others find it (none fails on the
	// unique key).
	t.Run("Lock", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		lockedGetOrInsert(t, []store.Store{b.s}, 20)
	})

	// The submit pattern: check the server is idle, take it and insert the
	// job, in one Write. Of many concurrent submits exactly one wins.
	t.Run("CheckThenAct", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		s := plainServer("srv-a", projA, "a", 0)
		b.insertServers(t, s)
		errBusy := errors.New("server busy")
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = b.s.Write(b.ctx, func(tx store.Tx) error {
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
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("submits %d and %d both took the server", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, errBusy):
				t.Errorf("submit %d: %v", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no submit took the server")
		}
		wantJob := fmt.Sprintf("job-%02d", winner)
		if got := b.getServer(t, projA, s.ID); got.TaskJobID != wantJob {
			t.Fatalf("server task = %q, want %q", got.TaskJobID, wantJob)
		}
		claimed := b.claim(t, "worker-a", t0, time.Minute, 100)
		if ids := jobIDs(claimed); len(ids) != 1 || ids[0] != wantJob {
			t.Fatalf("jobs in the queue = %v, want [%s]", ids, wantJob)
		}
	})
}

// lockedGetOrInsert runs n concurrent Writes, spread over stores, that each
// take the same lock, look for server srv-first and insert it when missing,
// and checks that exactly one inserted it.
func lockedGetOrInsert(t *testing.T, stores []store.Store, n int) {
	t.Helper()
	ctx := t.Context()
	var inserted sync.Map
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		st := stores[i%len(stores)]
		wg.Go(func() {
			errs[i] = st.Write(ctx, func(tx store.Tx) error {
				if err := tx.Lock(ctx, "storetest-first"); err != nil {
					return err
				}
				// Another key: it must not serialise with the first.
				if err := tx.Lock(ctx, "storetest-other"); err != nil {
					return err
				}
				_, err := tx.ServerGetByID(ctx, "srv-first")
				if err == nil {
					inserted.Delete(i)
					return nil
				}
				if !errors.Is(err, ecs.ErrNotFound) {
					return err
				}
				s := plainServer("srv-first", projA, fmt.Sprintf("by-%d", i), 0)
				inserted.Store(i, true)
				return tx.ServerInsert(ctx, &s)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Write %d: %v", i, err)
		}
	}
	count := 0
	inserted.Range(func(any, any) bool { count++; return true })
	if count != 1 {
		t.Fatalf("%d Writes inserted the server, want 1", count)
	}
}
