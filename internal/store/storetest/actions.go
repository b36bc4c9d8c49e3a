package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// The action log, the lock and the client tokens of issue 10:
//   - every field of an action round-trips; ActionList is the newest
//     first, per project and server; ActionGet of another project's,
//     another server's or an unknown request is ecs.ErrNotFound; the same
//     request on the same server twice is ecs.ErrConflict;
//   - ActionFinish sets the outcome of the entries of its run job only;
//   - entries outlive their server (ServerDelete leaves them);
//     ActionDeleteBefore deletes the entries started before its time;
//   - ServerLockSet sets locked and the reason, and nothing else;
//   - ClientTokenInsert of a token the project used is ecs.ErrConflict
//     (also from concurrent Writes: one wins); tokens are per project.
func testActions(t *testing.T, open opener) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		create := ecs.Action{RequestID: "req-1", ServerID: "srv-a", ProjectID: projA, Action: ecs.ActionCreate, UserID: userA,
			AccessKey: "AK1", JobID: "job-p", RunJobID: "job-s1", Start: t0}
		stop := ecs.Action{RequestID: "req-2", ServerID: "srv-a", ProjectID: projA, Action: ecs.ActionStop, UserID: userA,
			AccessKey: "AK1", JobID: "job-q", RunJobID: "job-s2", Start: t0.Add(time.Minute)}
		lock := ecs.Action{RequestID: "req-3", ServerID: "srv-a", ProjectID: projA, Action: ecs.ActionLock, UserID: userA,
			AccessKey: "AK1", Outcome: ecs.JobSuccess, Start: t0.Add(2 * time.Minute), End: t0.Add(2 * time.Minute)}
		otherSrv := ecs.Action{RequestID: "req-1", ServerID: "srv-b", ProjectID: projA, Action: ecs.ActionCreate, UserID: userA,
			JobID: "job-p", RunJobID: "job-s3", Start: t0}
		otherProj := ecs.Action{RequestID: "req-9", ServerID: "srv-a", ProjectID: projB, Action: ecs.ActionDelete, Start: t0}
		b.write(t, func(tx store.Tx) error {
			for _, a := range []ecs.Action{create, stop, lock, otherSrv, otherProj} {
				if err := tx.ActionInsert(b.ctx, &a); err != nil {
					return err
				}
			}
			return nil
		})
		err := b.writeErr(func(tx store.Tx) error {
			dup := create
			return tx.ActionInsert(b.ctx, &dup)
		})
		wantErr(t, "ActionInsert of the same request and server", err, ecs.ErrConflict)

		b.write(t, func(tx store.Tx) error {
			return tx.ActionFinish(b.ctx, "job-s1", ecs.JobFail, "Ecs.0204: no", t0.Add(30*time.Second))
		})
		b.write(t, func(tx store.Tx) error { return tx.ActionFinish(b.ctx, "job-none", ecs.JobSuccess, "", t0) })
		create.Outcome, create.Message, create.End = ecs.JobFail, "Ecs.0204: no", t0.Add(30*time.Second)

		list, err := b.s.ActionList(b.ctx, projA, "srv-a")
		wantNoErr(t, "ActionList", err)
		wantEqual(t, "ActionList (newest first)", list, []ecs.Action{lock, stop, create})
		got, err := b.s.ActionGet(b.ctx, projA, "srv-a", "req-1")
		wantNoErr(t, "ActionGet", err)
		wantEqual(t, "ActionGet", got, create)
		got, err = b.s.ActionGet(b.ctx, projA, "srv-b", "req-1")
		wantNoErr(t, "ActionGet other server", err)
		wantEqual(t, "ActionGet other server", got, otherSrv)
		for _, k := range [][3]string{{projB, "srv-a", "req-1"}, {projA, "srv-a", "req-9"}, {projA, "srv-c", "req-1"}} {
			_, err := b.s.ActionGet(b.ctx, k[0], k[1], k[2])
			wantErr(t, "ActionGet "+k[0]+"/"+k[1]+"/"+k[2], err, ecs.ErrNotFound)
		}
		list, err = b.s.ActionList(b.ctx, projB, "srv-b")
		wantNoErr(t, "ActionList of none", err)
		if len(list) != 0 {
			t.Fatalf("ActionList of another project's server: %v, want none", list)
		}

		// Entries outlive their server; retention deletes the old ones.
		b.insertServers(t, plainServer("srv-a", projA, "a", 0))
		b.write(t, func(tx store.Tx) error { return tx.ServerDelete(b.ctx, "srv-a") })
		list, err = b.s.ActionList(b.ctx, projA, "srv-a")
		wantNoErr(t, "ActionList after ServerDelete", err)
		wantEqual(t, "ActionList after ServerDelete", list, []ecs.Action{lock, stop, create})
		n, err := b.s.ActionDeleteBefore(b.ctx, t0.Add(time.Minute))
		wantNoErr(t, "ActionDeleteBefore", err)
		if n != 3 {
			t.Fatalf("ActionDeleteBefore deleted %d, want 3 (the entries started at t0)", n)
		}
		list, err = b.s.ActionList(b.ctx, projA, "srv-a")
		wantNoErr(t, "ActionList after ActionDeleteBefore", err)
		wantEqual(t, "ActionList after ActionDeleteBefore", list, []ecs.Action{lock, stop})
	})

	t.Run("Lock", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		srv := plainServer("srv-l", projA, "l", 0)
		b.insertServers(t, srv)
		at := t0.Add(time.Hour)
		b.write(t, func(tx store.Tx) error { return tx.ServerLockSet(b.ctx, projA, "srv-l", true, "maintenance ünï", at) })
		want := srv
		want.Locked, want.LockedReason, want.Updated = true, "maintenance ünï", at
		wantEqual(t, "ServerGet after lock", b.getServer(t, projA, "srv-l"), want)
		// ServerUpdate keeps the reason.
		got := b.getServer(t, projA, "srv-l")
		got.Name = "renamed"
		b.updateServer(t, got)
		want.Name = "renamed"
		wantEqual(t, "ServerGet after ServerUpdate", b.getServer(t, projA, "srv-l"), want)
		b.write(t, func(tx store.Tx) error { return tx.ServerLockSet(b.ctx, projA, "srv-l", false, "", at) })
		want.Locked, want.LockedReason = false, ""
		wantEqual(t, "ServerGet after unlock", b.getServer(t, projA, "srv-l"), want)
		err := b.writeErr(func(tx store.Tx) error { return tx.ServerLockSet(b.ctx, projB, "srv-l", true, "", at) })
		wantErr(t, "ServerLockSet of another project's server", err, ecs.ErrNotFound)
	})

	t.Run("ClientToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		tok := ecs.ClientToken{ProjectID: projA, Token: "0b6e1b1c-4a7f-4f62-9d3a-0d7f1c2b3a4e", RequestHash: "h1", JobID: "job-1",
			ServerIDs: []string{"srv-1", "srv-2"}, Created: t0}
		b.write(t, func(tx store.Tx) error { return tx.ClientTokenInsert(b.ctx, tok) })
		b.write(t, func(tx store.Tx) error {
			got, err := tx.ClientTokenGet(b.ctx, projA, tok.Token)
			wantNoErr(t, "ClientTokenGet", err)
			wantEqual(t, "ClientTokenGet", got, tok)
			_, err = tx.ClientTokenGet(b.ctx, projB, tok.Token)
			wantErr(t, "ClientTokenGet of another project", err, ecs.ErrNotFound)
			return nil
		})
		err := b.writeErr(func(tx store.Tx) error { return tx.ClientTokenInsert(b.ctx, tok) })
		wantErr(t, "ClientTokenInsert of a used token", err, ecs.ErrConflict)
		other := tok
		other.ProjectID = projB
		b.write(t, func(tx store.Tx) error { return tx.ClientTokenInsert(b.ctx, other) })

		// Concurrent inserts of one token: exactly one wins.
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := tok
				c.Token, c.JobID = "5f0c2d3e-1111-4222-8333-944455556666", "job-c"
				errs[i] = b.writeErr(func(tx store.Tx) error { return tx.ClientTokenInsert(b.ctx, c) })
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else {
				wantErr(t, "concurrent ClientTokenInsert", err, ecs.ErrConflict)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent inserts of one token succeeded, want 1", won)
		}
		d, err := b.s.ClientTokenDeleteBefore(b.ctx, t0.Add(time.Millisecond))
		wantNoErr(t, "ClientTokenDeleteBefore", err)
		if d != 3 {
			t.Fatalf("ClientTokenDeleteBefore deleted %d, want 3", d)
		}
	})
}
