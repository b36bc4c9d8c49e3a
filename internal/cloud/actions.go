package cloud

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// The lock and the action log (issue 10).
//
// Every state-changing request on a server records an ecs.Action in the
// transaction that changes the server and inserts its job; the
// transaction that ends the job (jobRun.commit) sets the action's outcome.
// Lock and unlock change the server at once and record a finished action.
// Entries are kept for Config.ActionRetention (the elected upkeep leader
// deletes older ones), after their job and their server are gone.

// DefaultActionRetention is how long action log entries are kept unless
// Config.ActionRetention says otherwise.
const DefaultActionRetention = 90 * 24 * time.Hour

// MaxLockedReason is the longest locked_reason (Nova's limit).
const MaxLockedReason = 255

// actionOf names the action of a job type.
var actionOf = map[string]string{
	ecs.JobCreateServers: ecs.ActionCreate,
	ecs.JobStartServers:  ecs.ActionStart,
	ecs.JobStopServers:   ecs.ActionStop,
	ecs.JobRebootServers: ecs.ActionReboot,
	ecs.JobDeleteServers: ecs.ActionDelete,
	ecs.JobReinstallOS:   ecs.ActionRebuild,
	ecs.JobChangeOS:      ecs.ActionChangeOS,
	ecs.JobResetPassword: ecs.ActionChangePassword,
}

// RecordAction records, inside tx, the request of c on a server: action
// (an ecs.Action* name), the job the request answers with (jobID) and the
// job whose end gives the outcome (runJobID: the server's sub-job of a
// batch, else jobID). For an action without a job (lock, unlock) both are
// "" and the entry is recorded as finished with SUCCESS.
func RecordAction(ctx context.Context, tx store.Tx, c Caller, serverID, action, jobID, runJobID string, now time.Time) error {
	a := ecs.Action{RequestID: c.RequestID, ServerID: serverID, ProjectID: c.ProjectID, Action: action, UserID: c.UserID,
		AccessKey: c.AccessKey, JobID: jobID, RunJobID: runJobID, Start: now}
	if a.RequestID == "" {
		// A call made inside the process (tests, tools): its own id.
		a.RequestID = "req-" + newUUID()
	}
	if runJobID == "" {
		a.Outcome, a.End = ecs.JobSuccess, now
	}
	return tx.ActionInsert(ctx, &a)
}

// LockServer locks (lock true, with an optional reason) or unlocks a
// server of the caller's project, at once. A locked server refuses every
// state-changing call (Ecs.0605) until it is unlocked; locking a locked
// server replaces its reason, unlocking an unlocked one changes nothing.
// Both are recorded in the action log.
func (s *Service) LockServer(ctx context.Context, c Caller, serverID string, lock bool, reason string) error {
	if utf8.RuneCountInString(reason) > MaxLockedReason || !utf8.ValidString(reason) {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: lock.locked_reason must be valid text of at most %d characters.",
			MaxLockedReason)
	}
	now := time.Now().UTC()
	err := s.store.Write(ctx, func(tx store.Tx) error {
		if _, err := lookupServer(ctx, tx.ServerGet, c.ProjectID, serverID); err != nil {
			return err
		}
		if !lock {
			reason = ""
		}
		if err := tx.ServerLockSet(ctx, c.ProjectID, serverID, lock, reason, now); err != nil {
			return err
		}
		action := ecs.ActionLock
		if !lock {
			action = ecs.ActionUnlock
		}
		return RecordAction(ctx, tx, c, serverID, action, "", "", now)
	})
	if err != nil {
		return submitError(err)
	}
	return nil
}

// ListActions lists the action log of a server of the caller's project,
// the newest first. A deleted server's log stays readable for the
// retention period; a server with no entries that does not exist is not
// found.
func (s *Service) ListActions(ctx context.Context, c Caller, serverID string) ([]ecs.Action, error) {
	if !ecs.ValidID(serverID) {
		return nil, serverNotFound(serverID)
	}
	out, err := s.store.ActionList(ctx, c.ProjectID, serverID)
	if err != nil {
		return nil, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the actions of the ECS.")
	}
	if len(out) == 0 {
		if _, err := s.GetServer(ctx, c, serverID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GetAction returns the entry of one request on a server of the caller's
// project.
func (s *Service) GetAction(ctx context.Context, c Caller, serverID, requestID string) (ecs.Action, error) {
	if !ecs.ValidID(serverID) {
		return ecs.Action{}, serverNotFound(serverID)
	}
	a, err := s.store.ActionGet(ctx, c.ProjectID, serverID, requestID)
	if errors.Is(err, ecs.ErrNotFound) {
		// An unknown server (with no entries left) is not found; a known
		// one has no such request.
		if _, err := s.ListActions(ctx, c, serverID); err != nil {
			return a, err
		}
		return a, ecs.Errorf(ecs.CodeActionNotFound, "The action %s of the ECS does not exist.", safeID(requestID))
	}
	if err != nil {
		return a, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the action.")
	}
	return a, nil
}

// finishAction sets, in the transaction that ends job, the outcome of the
// action entries the job carries out.
func finishAction(ctx context.Context, tx store.Tx, job *ecs.Job) error {
	if job.Status != ecs.JobSuccess && job.Status != ecs.JobFail {
		return nil
	}
	msg := ""
	if job.Status == ecs.JobFail {
		msg = job.ErrorCode + ": " + job.FailReason
	}
	return tx.ActionFinish(ctx, job.ID, job.Status, msg, job.End)
}

// pruneActions deletes action entries and client tokens past their
// retention (upkeep leader only).
func (s *Service) pruneActions(ctx context.Context) {
	now := time.Now()
	n, err := s.store.ActionDeleteBefore(ctx, now.Add(-s.cfg.ActionRetention))
	if err != nil && ctx.Err() == nil {
		s.log.Error("action log cleaner failed", "err", err)
	} else if n > 0 {
		s.log.Info("action log cleaner deleted old entries", "actions", n)
	}
	// A token is answered with Ecs.0124 once expired: it is kept a day
	// longer than it is valid, then forgotten.
	if _, err := s.store.ClientTokenDeleteBefore(ctx, now.Add(-ClientTokenTTL-24*time.Hour)); err != nil && ctx.Err() == nil {
		s.log.Error("client token cleaner failed", "err", err)
	}
}

// lockedError refuses a state-changing call on a locked server (Ecs.0605),
// naming the server (one of a batch) and the way out.
func lockedError(srv *ecs.Server) error {
	return ecs.Errorf(ecs.CodeLocked, "ECS locked: ECS %s is locked; unlock it first (Nova action {\"unlock\": null}, "+
		"ecsctl server unlock).", srv.ID)
}
