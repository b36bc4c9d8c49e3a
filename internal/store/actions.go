package store

import (
	"context"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// ActionReader reads the action log (Nova's instance actions). Entries
// are kept after their server is deleted, until ActionDeleteBefore.
type ActionReader interface {
	// ActionList lists the entries of a server of a project, the newest
	// first (a server with none, or unknown, gives an empty list).
	ActionList(ctx context.Context, projectID, serverID string) ([]ecs.Action, error)
	// ActionGet returns the entry of a request on a server of a project
	// (ecs.ErrNotFound when there is none).
	ActionGet(ctx context.Context, projectID, serverID, requestID string) (ecs.Action, error)
}

// ActionTx writes the action log and the client tokens, inside a Write.
type ActionTx interface {
	// ActionInsert records an entry; the same request on the same server
	// twice is ecs.ErrConflict.
	ActionInsert(ctx context.Context, a *ecs.Action) error
	// ActionFinish sets the outcome, message and end of the entries whose
	// RunJobID is runJobID (none is no error): called in the transaction
	// that ends that job.
	ActionFinish(ctx context.Context, runJobID, outcome, message string, end time.Time) error
	// ServerLockSet locks (with a reason) or unlocks a server of a project
	// (ecs.ErrNotFound for a missing server); it changes nothing else.
	ServerLockSet(ctx context.Context, projectID, serverID string, locked bool, reason string, updated time.Time) error

	// ClientTokenGet returns the create recorded under a project's client
	// token (ecs.ErrNotFound for none).
	ClientTokenGet(ctx context.Context, projectID, token string) (ecs.ClientToken, error)
	// ClientTokenInsert records a client token with its create; a token
	// the project already used is ecs.ErrConflict (the unique key that
	// makes concurrent duplicates one create).
	ClientTokenInsert(ctx context.Context, t ecs.ClientToken) error
}

// ActionKeeper deletes what the retention period of the action log lets
// go (run by the elected upkeep leader).
type ActionKeeper interface {
	// ActionDeleteBefore deletes the entries that started before t and
	// returns how many it deleted.
	ActionDeleteBefore(ctx context.Context, before time.Time) (int, error)
	// ClientTokenDeleteBefore deletes the client tokens recorded before
	// t and returns how many it deleted.
	ClientTokenDeleteBefore(ctx context.Context, before time.Time) (int, error)
}
