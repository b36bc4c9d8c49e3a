package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// ---- action log, lock, client tokens (issue 10)

const actionCols = store.ActionColumns

func scanAction(sc scanner) (ecs.Action, error) { return store.ScanAction(sc) }

func (s *Store) ActionList(ctx context.Context, projectID, serverID string) ([]ecs.Action, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+actionCols+` FROM server_actions WHERE project_id = ? AND server_id = ?
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
	a, err := scanAction(s.r.QueryRowContext(ctx, `SELECT `+actionCols+` FROM server_actions
		WHERE project_id = ? AND server_id = ? AND request_id = ?`, projectID, serverID, requestID))
	if errors.Is(err, sql.ErrNoRows) {
		return a, notFound("action", requestID)
	}
	return a, err
}

func (t *tx) ActionInsert(ctx context.Context, a *ecs.Action) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO server_actions(`+actionCols+`) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)`,
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
	_, err := t.q.ExecContext(ctx, `UPDATE server_actions SET outcome = ?, message = ?, end_time = ? WHERE run_job_id = ?`,
		outcome, message, ms(end), runJobID)
	return err
}

func (t *tx) ServerLockSet(ctx context.Context, projectID, serverID string, locked bool, reason string, updated time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE servers SET locked = ?, locked_reason = ?, updated = ? WHERE id = ? AND project_id = ?`,
		b2i(locked), reason, ms(updated), serverID, projectID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("server", serverID)
	}
	return nil
}

func (t *tx) ClientTokenGet(ctx context.Context, projectID, token string) (ecs.ClientToken, error) {
	ct := ecs.ClientToken{ProjectID: projectID, Token: token}
	var ids string
	var created int64
	err := t.q.QueryRowContext(ctx, `SELECT request_hash, job_id, server_ids, created FROM client_tokens
		WHERE project_id = ? AND token = ?`, projectID, token).Scan(&ct.RequestHash, &ct.JobID, &ids, &created)
	if errors.Is(err, sql.ErrNoRows) {
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
	_, err := t.q.ExecContext(ctx, `INSERT INTO client_tokens(project_id, token, request_hash, job_id, server_ids, created)
		VALUES(?,?,?,?,?,?)`, ct.ProjectID, ct.Token, ct.RequestHash, ct.JobID, string(ids), ms(ct.Created))
	if isUnique(err) {
		return fmt.Errorf("client token %q: %w", ct.Token, ecs.ErrConflict)
	}
	return err
}

func (s *Store) ActionDeleteBefore(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM server_actions WHERE start_time < ?`, ms(before))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (s *Store) ClientTokenDeleteBefore(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM client_tokens WHERE created < ?`, ms(before))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
