// Package keyring is a node's cached view of the access keys in the store:
// it answers "which secret, project and user does this access key have"
// for every signed request without a store query per request.
//
// It promises:
//   - Bounded cost for unknown keys: the ring holds the set of every access
//     key in the store, so an unknown key is answered from memory. The store
//     is asked at most once per TTL whatever the traffic (one
//     CredentialCount, plus one CredentialList when the count changed), so a
//     flood of random access keys costs no store query of its own.
//   - Bounded memory: the ring holds the store's credentials and nothing a
//     request brings; unknown keys are never remembered one by one.
//   - Freshness across processes: a lookup never answers from a view older
//     than TTL (default 1s) plus one store round trip, so a key added by
//     another process on the same database (`ecsd credentials add`, another
//     node) is accepted within TTL. On a store that tells of changes
//     (store.ChangeNotifier, PostgreSQL's LISTEN/NOTIFY) the owner calls
//     Invalidate on each, and the next lookup asks the store at once. The count is the change detector because
//     credentials are only ever added; the day a credential can be revoked or
//     replaced, the store must offer a generation that every such write
//     bumps, and refresh must compare that instead.
//   - Secrets are unsealed on first use and kept, in memory only, for as long
//     as their sealed form in the store is unchanged.
//   - A store error keeps the last view (logged, at most once per TTL); a
//     secret that cannot be unsealed makes its key unknown (logged once).
//     Unavailable tells whether the store was out of reach when last asked,
//     so that an unknown key can be told apart from a key the ring could
//     not look up.
package keyring

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/store"
)

// DefaultTTL is how old the ring's view may get before a lookup asks the
// store whether it changed, when Config.TTL is 0.
const DefaultTTL = time.Second

// refreshTimeout bounds one refresh's store queries.
const refreshTimeout = 5 * time.Second

// Store is what the ring reads; store.Store provides it.
type Store interface {
	CredentialCount(ctx context.Context) (int, error)
	CredentialList(ctx context.Context) ([]store.SealedCredential, error)
}

// Config configures a Ring.
type Config struct {
	Store Store
	// Open unseals a stored secret key (secret.Box.Open).
	Open   func(sealed []byte) ([]byte, error)
	Logger *slog.Logger
	// TTL bounds the age of the view a lookup answers from (default DefaultTTL).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Key is what an access key grants.
type Key struct {
	Secret    string
	ProjectID string
	UserID    string
}

// Ring is the cached view. It is safe for concurrent use.
type Ring struct {
	cfg Config

	// refresh is held by the one goroutine asking the store.
	refresh sync.Mutex

	mu      sync.RWMutex
	keys    map[string]*entry
	count   int       // len(keys) as last listed
	loaded  bool      // keys came from the store at least once
	asked   bool      // the store was asked at least once (checked is set)
	checked time.Time // when the store was last asked
	gen     uint64    // bumped by Invalidate
	failed  error     // the error of the last refresh, nil when it succeeded
}

type entry struct {
	cred store.SealedCredential
	// secret unseals cred.SealedSecret once; "" when it cannot be unsealed.
	secret func() string
}

// New returns an empty ring; the first lookup loads it.
func New(cfg Config) *Ring {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Ring{cfg: cfg}
}

// Lookup returns the key of an access key; ok is false for an unknown key
// (or one whose secret cannot be unsealed).
//
// A known key is answered from memory; when the view is older than TTL the
// first caller refreshes it while the others go on with the view they have.
// An unknown key waits for a due refresh, so that a key just added is found.
func (r *Ring) Lookup(ctx context.Context, ak string) (Key, bool) {
	e, fresh := r.get(ak)
	if !fresh {
		if e != nil {
			if r.refresh.TryLock() {
				r.refreshLocked(ctx)
				r.refresh.Unlock()
			}
		} else {
			r.refresh.Lock()
			r.refreshLocked(ctx)
			r.refresh.Unlock()
		}
		e, _ = r.get(ak)
	}
	if e == nil {
		return Key{}, false
	}
	sk := e.secret()
	if sk == "" {
		return Key{}, false
	}
	return Key{Secret: sk, ProjectID: e.cred.ProjectID, UserID: e.cred.UserID}, true
}

// Invalidate makes the view stale: the next lookup asks the store whether
// it changed (an unknown key waits for the answer). Call it when another
// process tells of a change to the credentials. It never blocks on the
// store.
func (r *Ring) Invalidate() {
	r.mu.Lock()
	r.asked = false
	r.gen++
	r.mu.Unlock()
}

// get returns ak's entry (nil when unknown) and whether the view is fresh.
func (r *Ring) get(ak string) (*entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[ak], r.fresh(r.cfg.Now())
}

// fresh reports whether the store was asked less than TTL before now. The
// caller holds r.mu.
func (r *Ring) fresh(now time.Time) bool {
	return r.asked && now.Sub(r.checked) < r.cfg.TTL
}

// markChecked records that the store was asked at t, by a refresh that
// began at generation gen: an Invalidate since then leaves the view stale
// (the change it told of may have come after the store was asked).
func (r *Ring) markChecked(t time.Time, gen uint64) {
	r.mu.Lock()
	r.asked, r.checked = r.gen == gen, t
	r.mu.Unlock()
}

// refreshLocked asks the store for changes if the view is still stale. The
// caller holds r.refresh.
func (r *Ring) refreshLocked(ctx context.Context) {
	start := r.cfg.Now()
	r.mu.RLock()
	fresh := r.fresh(start)
	loaded, count, gen := r.loaded, r.count, r.gen
	r.mu.RUnlock()
	if fresh {
		return // refreshed by the goroutine we waited for
	}

	// The refresh serves every waiting lookup: one caller going away must
	// not cancel it (and leave the view stale for the next caller to retry).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	n, err := r.cfg.Store.CredentialCount(ctx)
	if err == nil && loaded && n == count {
		r.setFailed(nil)
		r.markChecked(start, gen)
		return
	}
	var list []store.SealedCredential
	if err == nil {
		list, err = r.cfg.Store.CredentialList(ctx)
	}
	if err != nil {
		r.cfg.Logger.Error("access keys: cannot read the store; keeping the last view", "err", err)
		r.setFailed(err)
		r.markChecked(start, gen) // ask a failing store at most once per TTL
		return
	}

	r.mu.RLock()
	old := r.keys
	r.mu.RUnlock()
	keys := make(map[string]*entry, len(list))
	for _, c := range list {
		if e, ok := old[c.AccessKey]; ok && e.cred.ProjectID == c.ProjectID && e.cred.UserID == c.UserID &&
			bytes.Equal(e.cred.SealedSecret, c.SealedSecret) {
			keys[c.AccessKey] = e // keep what is already unsealed
			continue
		}
		keys[c.AccessKey] = r.newEntry(c)
	}
	r.mu.Lock()
	r.keys, r.count, r.loaded, r.asked, r.checked = keys, len(list), true, r.gen == gen, start
	r.failed = nil
	r.mu.Unlock()
}

func (r *Ring) setFailed(err error) {
	r.mu.Lock()
	r.failed = err
	r.mu.Unlock()
}

// Unavailable reports whether the last time the ring asked the store, the
// store could not be reached (an error wrapping store.ErrUnavailable): a
// key it does not know may be one added meanwhile, not an unknown one.
func (r *Ring) Unavailable() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return errors.Is(r.failed, store.ErrUnavailable)
}

func (r *Ring) newEntry(c store.SealedCredential) *entry {
	e := &entry{cred: c}
	e.secret = sync.OnceValue(func() string {
		sk, err := r.cfg.Open(c.SealedSecret)
		if err != nil {
			r.cfg.Logger.Error("access keys: cannot unseal a stored secret key", "access_key", c.AccessKey, "err", err)
			return ""
		}
		return string(sk)
	})
	return e
}
