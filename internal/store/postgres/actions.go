package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// ---- action log, lock, client tokens (issue 10)

const actionCols = store.ActionColumns

func scanAction(sc pgx.Row) (ecs.Action, error) { return store.ScanAction(sc) }

func (s *Store) ActionList(ctx context.Context, projectID, serverID string) ([]ecs.Action, error) {
	if unstorable(projectID, serverID) {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+actionCols+` FROM server_actions WHERE project_id = $1 AND server_id = $2
		ORDER BY start_time DESC, seq DESC`, projectID, serverID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ecs.Action
	for rows.Next() {
		a, err := scanAction(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *Store) ActionGet(ctx context.Context, projectID, serverID, requestID string) (ecs.Action, error) {
	if unstorable(projectID, serverID, requestID) {
		return ecs.Action{}, notFound("action", requestID)
	}
	a, err := scanAction(s.db.QueryRow(ctx, `SELECT `+actionCols+` FROM server_actions
		WHERE project_id = $1 AND server_id = $2 AND request_id = $3`, projectID, serverID, requestID))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, notFound("action", requestID)
	}
	return a, err
}

func (t *tx) ActionInsert(ctx context.Context, a *ecs.Action) error {
	_, err := t.q.Exec(ctx, `INSERT INTO server_actions(`+actionCols+`) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		a.RequestID, a.ServerID, a.ProjectID, a.Action, a.UserID, a.AccessKey, a.JobID, a.RunJobID, a.Outcome, a.Message,
		ms(a.Start), ms(a.End))
	if isUnique(err) {
		return fmt.Errorf("action %q on server %q: %w", a.RequestID, a.ServerID, ecs.ErrConflict)
	}
	return err
}

func (t *tx) ActionFinish(ctx context.Context, runJobID, outcome, message string, end time.Time) error {
	if runJobID == "" {
		return nil
	}
	_, err := t.q.Exec(ctx, `UPDATE server_actions SET outcome = $1, message = $2, end_time = $3 WHERE run_job_id = $4`,
		outcome, message, ms(end), runJobID)
	return err
}

func (t *tx) ServerLockSet(ctx context.Context, projectID, serverID string, locked bool, reason string, updated time.Time) error {
	if unstorable(projectID, serverID) {
		return notFound("server", serverID)
	}
	tag, err := t.q.Exec(ctx, `UPDATE servers SET locked = $1, locked_reason = $2, updated = $3 WHERE id = $4 AND project_id = $5`,
		locked, reason, ms(updated), serverID, projectID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound("server", serverID)
	}
	return nil
}

func (t *tx) ClientTokenGet(ctx context.Context, projectID, token string) (ecs.ClientToken, error) {
	ct := ecs.ClientToken{ProjectID: projectID, Token: token}
	if unstorable(projectID, token) {
		return ct, notFound("client token", token)
	}
	var ids string
	var created int64
	err := t.q.QueryRow(ctx, `SELECT request_hash, job_id, server_ids, created FROM client_tokens
		WHERE project_id = $1 AND token = $2`, projectID, token).Scan(&ct.RequestHash, &ct.JobID, &ids, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return ct, notFound("client token", token)
	}
	if err != nil {
		return ct, err
	}
	ct.Created = fromMS(created)
	if err := json.Unmarshal([]byte(ids), &ct.ServerIDs); err != nil {
		return ct, fmt.Errorf("client token %s server ids: %w", token, err)
	}
	return ct, nil
}

func (t *tx) ClientTokenInsert(ctx context.Context, ct ecs.ClientToken) error {
	ids, _ := json.Marshal(ct.ServerIDs) // strings only: cannot fail
	_, err := t.q.Exec(ctx, `INSERT INTO client_tokens(project_id, token, request_hash, job_id, server_ids, created)
		VALUES($1,$2,$3,$4,$5,$6)`, ct.ProjectID, ct.Token, ct.RequestHash, ct.JobID, string(ids), ms(ct.Created))
	if isUnique(err) {
		return fmt.Errorf("client token %q: %w", ct.Token, ecs.ErrConflict)
	}
	return err
}

func (s *Store) ActionDeleteBefore(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM server_actions WHERE start_time < $1`, ms(before))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func (s *Store) ClientTokenDeleteBefore(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM client_tokens WHERE created < $1`, ms(before))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
