package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// elect runs LeaderElect for owner at now with a term of ttl.
func (b *bundle) elect(t *testing.T, name, owner string, now time.Time, ttl time.Duration) bool {
	t.Helper()
	ok, err := b.s.LeaderElect(b.ctx, store.LeaderElectParams{Name: name, Owner: owner, Now: now, TTL: ttl})
	if err != nil {
		t.Fatalf("LeaderElect(%s, %s): %v", name, owner, err)
	}
	return ok
}

func (b *bundle) leader(t *testing.T, name string) store.Leader {
	t.Helper()
	l, err := b.s.LeaderGet(b.ctx, name)
	if err != nil {
		t.Fatalf("LeaderGet(%s): %v", name, err)
	}
	return l
}

// A leadership has one holder at a time: it is won when free, kept by
// re-election, taken over only once its term has ended or its holder
// resigned; names are independent.
func testLeader(t *testing.T, open opener) {
	b := setup(t, open)
	const ttl = 10 * time.Second
	_, err := b.s.LeaderGet(b.ctx, "upkeep")
	wantErr(t, "LeaderGet of a name nobody led", err, ecs.ErrNotFound)

	if !b.elect(t, "upkeep", "node-a", t0, ttl) {
		t.Fatal("node-a not elected to a free leadership")
	}
	wantEqual(t, "leader after election", b.leader(t, "upkeep"), store.Leader{Name: "upkeep", Owner: "node-a", Expires: t0.Add(ttl)})
	if b.elect(t, "upkeep", "node-b", t0.Add(ttl-time.Millisecond), ttl) {
		t.Fatal("node-b elected while node-a's term runs")
	}
	if !b.elect(t, "other", "node-b", t0, ttl) {
		t.Fatal("node-b not elected to another name")
	}
	// Re-election extends the term.
	if !b.elect(t, "upkeep", "node-a", t0.Add(5*time.Second), ttl) {
		t.Fatal("node-a not re-elected")
	}
	wantEqual(t, "term after re-election", b.leader(t, "upkeep").Expires, t0.Add(15*time.Second))
	if b.elect(t, "upkeep", "node-b", t0.Add(12*time.Second), ttl) {
		t.Fatal("node-b elected within node-a's extended term")
	}
	// Past the term, another owner takes over, and the former leader is out.
	if !b.elect(t, "upkeep", "node-b", t0.Add(15*time.Second+time.Millisecond), ttl) {
		t.Fatal("node-b not elected after node-a's term ended")
	}
	if b.elect(t, "upkeep", "node-a", t0.Add(16*time.Second), ttl) {
		t.Fatal("node-a re-elected over node-b")
	}
	// Resigning frees it at once; resigning what one does not lead changes nothing.
	wantNoErr(t, "LeaderResign of a non-leader", b.s.LeaderResign(b.ctx, "upkeep", "node-a"))
	wantEqual(t, "leader after a non-leader resigned", b.leader(t, "upkeep").Owner, "node-b")
	wantNoErr(t, "LeaderResign", b.s.LeaderResign(b.ctx, "upkeep", "node-b"))
	if !b.elect(t, "upkeep", "node-a", t0.Add(17*time.Second), ttl) {
		t.Fatal("node-a not elected after node-b resigned")
	}
	wantEqual(t, "other name after the changes", b.leader(t, "other").Owner, "node-b")

	// Many owners at once: exactly one wins a free leadership.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
	)
	for i := range 20 {
		owner := fmt.Sprintf("racer-%02d", i)
		wg.Go(func() {
			ok, err := b.s.LeaderElect(b.ctx, store.LeaderElectParams{Name: "race", Owner: owner, Now: t0, TTL: ttl})
			if err != nil {
				t.Errorf("LeaderElect(race, %s): %v", owner, err)
			}
			if ok {
				mu.Lock()
				winners = append(winners, owner)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d owners won one leadership at once: %v", len(winners), winners)
	}
	wantEqual(t, "race leader", b.leader(t, "race").Owner, winners[0])
}

// Tx.CredentialCount sees the transaction's own inserts.
func testCredentialCountTx(t *testing.T, open opener) {
	b := setup(t, open)
	b.write(t, func(tx store.Tx) error {
		for i, ak := range []string{"AKCOUNT1", "AKCOUNT2"} {
			n, err := tx.CredentialCount(b.ctx)
			if err != nil || n != i {
				return fmt.Errorf("CredentialCount before insert %d = %d, %v", i+1, n, err)
			}
			if err := tx.CredentialInsert(b.ctx, store.SealedCredential{AccessKey: ak, SealedSecret: []byte{1}, ProjectID: projA,
				UserID: userA, Created: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	n, err := b.s.CredentialCount(b.ctx)
	wantNoErr(t, "CredentialCount", err)
	wantEqual(t, "CredentialCount after the commit", n, 2)
}
