package keyring_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/keyring"
	"github.com/ecsproject/ecsd/internal/store"
)

// fakeStore is a credential table that counts the queries made to it.
type fakeStore struct {
	mu    sync.Mutex
	creds []store.SealedCredential
	fail  error
	// afterCount, when set, runs once a count is taken, before it is
	// returned (a change committed meanwhile by another process).
	afterCount func()

	counts, lists atomic.Int64
}

func (f *fakeStore) CredentialCount(context.Context) (int, error) {
	f.counts.Add(1)
	f.mu.Lock()
	n, err, after := len(f.creds), f.fail, f.afterCount
	f.afterCount = nil
	f.mu.Unlock()
	if after != nil {
		after()
	}
	return n, err
}

func (f *fakeStore) CredentialList(context.Context) ([]store.SealedCredential, error) {
	f.lists.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	return slices.Clone(f.creds), nil
}

func (f *fakeStore) add(ak, sk string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creds = append(f.creds, store.SealedCredential{AccessKey: ak, SealedSecret: []byte("sealed:" + sk), ProjectID: "p-" + ak, UserID: "u-" + ak})
}

func (f *fakeStore) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeStore) queries() int64 { return f.counts.Load() + f.lists.Load() }

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type bundle struct {
	st    *fakeStore
	clock *clock
	ring  *keyring.Ring
	opens atomic.Int64
}

const ttl = time.Second

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{st: &fakeStore{}, clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	b.st.add("AK1", "secret-1")
	b.st.add("AK2", "secret-2")
	b.ring = keyring.New(keyring.Config{
		Store: b.st,
		Open: func(sealed []byte) ([]byte, error) {
			b.opens.Add(1)
			sk, ok := strings.CutPrefix(string(sealed), "sealed:")
			if !ok {
				return nil, errors.New("not sealed by this box")
			}
			return []byte(sk), nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		TTL:    ttl,
		Now:    b.clock.now,
	})
	return b
}

func (b *bundle) want(t *testing.T, ak, sk string) {
	t.Helper()
	k, ok := b.ring.Lookup(t.Context(), ak)
	if sk == "" {
		if ok {
			t.Fatalf("Lookup(%s) = %+v, want unknown", ak, k)
		}
		return
	}
	want := keyring.Key{Secret: sk, ProjectID: "p-" + ak, UserID: "u-" + ak}
	if !ok || k != want {
		t.Fatalf("Lookup(%s) = %+v, %v; want %+v", ak, k, ok, want)
	}
}

func randomKey() string { return "RND" + strings.ToUpper(rand.Text()) }

func TestKnownAndUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.want(t, "AK1", "secret-1")
	b.want(t, "AK2", "secret-2")
	b.want(t, "NOPE", "")
	b.want(t, "", "")
	if q := b.st.queries(); q != 2 {
		t.Errorf("store queries = %d, want 2 (one count, one list)", q)
	}
}

// A flood of random unknown keys is answered from memory: within one TTL
// the store is asked once, and over many TTLs at most twice per TTL.
func TestUnknownKeysCostNoQueryEach(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for range 10000 {
		b.want(t, randomKey(), "")
	}
	if q := b.st.queries(); q > 2 {
		t.Fatalf("10000 unknown keys in one TTL made %d store queries, want at most 2", q)
	}
	const periods = 20
	for range periods {
		b.clock.advance(ttl)
		for range 500 {
			b.want(t, randomKey(), "")
		}
	}
	if q := b.st.queries(); q > 2+periods {
		t.Fatalf("unknown keys over %d TTLs made %d store queries, want at most %d (one count per TTL, nothing changed)", periods, q, 2+periods)
	}
	if l := b.st.lists.Load(); l != 1 {
		t.Errorf("credentials listed %d times with no change, want once", l)
	}
}

// Known keys are unsealed once, however often they are used and however
// often the view is refreshed while they are unchanged.
func TestSecretsUnsealedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for range 100 {
		b.want(t, "AK1", "secret-1")
	}
	b.st.add("AK3", "secret-3") // the list changes; AK1's entry is kept
	b.clock.advance(ttl)
	b.want(t, "AK3", "secret-3")
	for range 100 {
		b.want(t, "AK1", "secret-1")
	}
	if n := b.opens.Load(); n != 2 {
		t.Errorf("Open called %d times for two keys, want 2", n)
	}
}

// A key added to the store (by another process) is found once the view
// is TTL old, not before: misses are cached for at most TTL.
func TestNewKeyVisibleAfterTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.want(t, "AK3", "")
	b.st.add("AK3", "secret-3")
	b.clock.advance(ttl / 2)
	b.want(t, "AK3", "") // still cached as missing
	b.clock.advance(ttl / 2)
	b.want(t, "AK3", "secret-3")
}

// A stale view is refreshed by a known-key lookup too, so every answer is
// at most TTL old.
func TestKnownKeyLookupRefreshes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.want(t, "AK1", "secret-1")
	b.clock.advance(ttl)
	before := b.st.counts.Load()
	b.want(t, "AK1", "secret-1")
	if b.st.counts.Load() != before+1 {
		t.Errorf("a lookup on a stale view did not ask the store")
	}
}

func TestStoreErrorKeepsView(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.want(t, "AK1", "secret-1")
	b.st.setFail(errors.New("database is locked"))
	b.clock.advance(ttl)
	before := b.st.queries()
	for range 1000 {
		b.want(t, "AK1", "secret-1")
		b.want(t, randomKey(), "")
	}
	if q := b.st.queries() - before; q > 1 {
		t.Errorf("a failing store was asked %d times within one TTL, want at most 1", q)
	}
	b.st.setFail(nil)
	b.st.add("AK3", "secret-3")
	b.clock.advance(ttl)
	b.want(t, "AK3", "secret-3")
}

func TestFirstLoadFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.st.setFail(errors.New("no such table"))
	b.want(t, "AK1", "")
	b.st.setFail(nil)
	b.want(t, "AK1", "") // failures are retried after TTL, not per lookup
	b.clock.advance(ttl)
	b.want(t, "AK1", "secret-1")
}

func TestUnsealFailureIsUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.st.mu.Lock()
	b.st.creds = append(b.st.creds, store.SealedCredential{AccessKey: "BAD", SealedSecret: []byte("garbage")})
	b.st.mu.Unlock()
	b.want(t, "BAD", "")
	b.want(t, "BAD", "")
	if n := b.opens.Load(); n != 1 {
		t.Errorf("Open called %d times for one bad secret, want 1 (the failure is kept)", n)
	}
}

// Concurrent lookups of known and unknown keys across refreshes (run with -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				if i%100 == 0 && g == 0 {
					b.clock.advance(ttl)
					b.st.add(fmt.Sprintf("NEW%d", i), "s")
				}
				if k, ok := b.ring.Lookup(t.Context(), "AK2"); !ok || k.Secret != "secret-2" {
					t.Errorf("Lookup(AK2) = %+v, %v", k, ok)
					return
				}
				if _, ok := b.ring.Lookup(t.Context(), randomKey()); ok {
					t.Errorf("random key accepted")
					return
				}
			}
		})
	}
	wg.Wait()
}

// Invalidate (another process told of a change) makes the next lookup ask
// the store, within the TTL.
func TestInvalidate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.want(t, "AK1", "secret-1")
	b.st.add("AK3", "secret-3")
	b.want(t, "AK3", "") // within the TTL: the view is fresh
	b.ring.Invalidate()
	b.want(t, "AK3", "secret-3")
	b.want(t, "AK1", "secret-1")
	if q := b.st.queries(); q != 4 {
		t.Errorf("store queries = %d, want 4 (two counts, two lists)", q)
	}
}

// A change told of while a refresh is asking the store may have come after
// the store answered: the view that refresh makes is not taken as fresh.
func TestInvalidateDuringRefresh(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.want(t, "AK1", "secret-1")
	b.clock.advance(2 * ttl)
	b.st.mu.Lock()
	b.st.afterCount = func() {
		b.st.add("AK3", "secret-3")
		b.ring.Invalidate()
	}
	b.st.mu.Unlock()
	b.want(t, "AK1", "secret-1") // refreshes: the count is taken before AK3 is added
	b.want(t, "AK3", "secret-3")
}

// Unavailable says whether the store was out of reach when last asked.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.want(t, "AK1", "secret-1")
	if b.ring.Unavailable() {
		t.Fatal("Unavailable after a good refresh")
	}
	b.st.setFail(fmt.Errorf("connect: %w", store.ErrUnavailable))
	b.clock.advance(2 * ttl)
	b.want(t, "NEW", "")
	if !b.ring.Unavailable() {
		t.Fatal("not Unavailable after a refresh that could not reach the store")
	}
	b.want(t, "AK1", "secret-1") // the last view still serves
	b.st.setFail(errors.New("syntax error"))
	b.clock.advance(2 * ttl)
	b.want(t, "NEW", "")
	if b.ring.Unavailable() {
		t.Fatal("Unavailable after an error that is not an outage")
	}
	b.st.setFail(nil)
	b.st.add("NEW", "secret-new")
	b.clock.advance(2 * ttl)
	b.want(t, "NEW", "secret-new")
	if b.ring.Unavailable() {
		t.Fatal("Unavailable after the store came back")
	}
}
