package cloud

import (
	"context"
	"errors"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// Idempotent creates (X-Client-Token, v1 and v1.1; the ECS API
// reference's "Idempotent Requests" page): a create that carries a token
// records it, with a hash of the request and the job and servers it made,
// in its own transaction, under the unique key (project, token). A
// request with a recorded token gets the recorded job and servers, as
// long as its hash is the same (else Ecs.0122) and the token is at most
// ClientTokenTTL old (else Ecs.0124). Concurrent duplicates are serialised
// by a lock on the token, so exactly one of them creates.

// ClientTokenTTL is how long a client token is valid.
const ClientTokenTTL = 8 * time.Hour

// CheckClientToken refuses a token that is not a UUID in its canonical
// form: 8-4-4-4-12 digits 0-9 and a-f (lower case; the token is
// case-sensitive). "" (no token) passes.
func CheckClientToken(tok string) error {
	if tok == "" {
		return nil
	}
	if len(tok) != 36 {
		return badToken()
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return badToken()
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return badToken()
			}
		}
	}
	return nil
}

func badToken() error {
	return ecs.Errorf(ecs.CodeClientTokenInvalid, "The X-Client-Token header must be a UUID (8-4-4-4-12 characters 0-9 and a-f).")
}

// replayCreate looks up, inside the create's transaction, the create
// recorded under the request's client token. found reports a recorded
// create of the same request, whose job and servers the request answers
// with. It takes the token's lock first, so that a concurrent duplicate
// waits for this transaction and then finds its record.
func replayCreate(ctx context.Context, tx store.Tx, c Caller, in CreateInput, now time.Time) (ct ecs.ClientToken, found bool, err error) {
	if in.ClientToken == "" {
		return ct, false, nil
	}
	if err := tx.Lock(ctx, "client-token:"+c.ProjectID+"/"+in.ClientToken); err != nil {
		return ct, false, err
	}
	ct, err = tx.ClientTokenGet(ctx, c.ProjectID, in.ClientToken)
	if errors.Is(err, ecs.ErrNotFound) {
		return ct, false, nil
	}
	if err != nil {
		return ct, false, err
	}
	if now.Sub(ct.Created) > ClientTokenTTL {
		return ct, false, ecs.Errorf(ecs.CodeClientTokenExpired, "The X-Client-Token has expired: a token is valid for %s.",
			ClientTokenTTL)
	}
	if ct.RequestHash != in.RequestHash {
		return ct, false, ecs.Errorf(ecs.CodeClientTokenReused,
			"The X-Client-Token was already used by a request with other parameters.")
	}
	return ct, true, nil
}

// recordCreate records the request's client token with the create it
// made, inside the create's transaction.
func recordCreate(ctx context.Context, tx store.Tx, c Caller, in CreateInput, jobID string, ids []string, now time.Time) error {
	if in.ClientToken == "" {
		return nil
	}
	return tx.ClientTokenInsert(ctx, ecs.ClientToken{ProjectID: c.ProjectID, Token: in.ClientToken, RequestHash: in.RequestHash,
		JobID: jobID, ServerIDs: ids, Created: now})
}
