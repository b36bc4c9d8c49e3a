package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

const jobCols = store.JobColumns

func scanJob(sc scanner) (ecs.Job, error) {
	var r store.JobRow
	var runnable int
	err := sc.Scan(r.Targets(&runnable)...)
	r.Job.Runnable = runnable != 0
	return r.Decode(), err
}

func (t *tx) JobInsert(ctx context.Context, j *ecs.Job) error {
	if j.Status == "" {
		j.Status = ecs.JobInit
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO jobs(id, project_id, type, status, parent_id, server_id, runnable, error_code,
		fail_reason, params, step, attempts, lease_owner, lease_expires, created, begin_time, end_time, host)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,0,'',0,?,?,?,?)`,
		j.ID, j.ProjectID, j.Type, j.Status, j.ParentID, j.ServerID, b2i(j.Runnable), j.ErrorCode, j.FailReason, j.Params, j.Step,
		ms(j.Created), ms(j.Begin), ms(j.End), j.Host)
	if isUnique(err) {
		return fmt.Errorf("job %q: %w", j.ID, ecs.ErrConflict)
	}
	if err != nil || j.ParentID == "" {
		return err
	}
	_, err = t.q.ExecContext(ctx, `UPDATE jobs SET sub_total = sub_total + 1 WHERE id = ?`, j.ParentID)
	return err
}

func getJob(ctx context.Context, q queryer, projectID, id string) (ecs.Job, error) {
	var row *sql.Row
	if projectID == "" {
		row = q.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id)
	} else {
		row = q.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ? AND project_id = ?`, id, projectID)
	}
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return j, notFound("job", id)
	}
	return j, err
}

func (t *tx) JobGetByID(ctx context.Context, id string) (ecs.Job, error) {
	return getJob(ctx, t.q, "", id)
}

func (s *Store) JobGet(ctx context.Context, projectID, id string) (ecs.Job, error) {
	if projectID == "" {
		return ecs.Job{}, notFound("job", id)
	}
	// One read transaction: the batch's status and its sub-jobs come from
	// one snapshot, so they never disagree.
	rtx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return ecs.Job{}, err
	}
	defer rtx.Rollback()
	j, err := getJob(ctx, rtx, projectID, id)
	if err != nil || j.Runnable {
		return j, err
	}
	rows, err := rtx.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE parent_id = ? ORDER BY seq`, id)
	if err != nil {
		return j, err
	}
	defer rows.Close()
	for rows.Next() {
		sj, err := scanJob(rows)
		if err != nil {
			return j, err
		}
		j.SubJobs = append(j.SubJobs, sj)
	}
	return j, rows.Err()
}

// JobUpdate writes the job under its lease; a sub-job that finishes is
// tallied into its parent, whose status follows.
func (t *tx) JobUpdate(ctx context.Context, j *ecs.Job, lease store.Lease) error {
	if lease.Owner == "" {
		return fmt.Errorf("job %s: no lease: %w", j.ID, ecs.ErrFenced)
	}
	// A sub-job's previous status tells whether this update finishes it;
	// other jobs need no read before the fenced update.
	var was string
	if j.ParentID != "" {
		err := t.q.QueryRowContext(ctx, `SELECT status FROM jobs WHERE id = ?`, j.ID).Scan(&was)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	res, err := t.q.ExecContext(ctx, `UPDATE jobs SET status=?, step=?, error_code=?, fail_reason=?, params=?, begin_time=?, end_time=?,
		lease_expires = CASE WHEN ? IN ('SUCCESS','FAIL') THEN 0 ELSE lease_expires END
		WHERE id=? AND lease_owner=? AND attempts=?`,
		j.Status, j.Step, j.ErrorCode, j.FailReason, j.Params, ms(j.Begin), ms(j.End), j.Status, j.ID, lease.Owner, lease.Attempt)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("job %s: %w", j.ID, ecs.ErrFenced)
	}
	if j.ParentID == "" || !j.Done() || was == ecs.JobSuccess || was == ecs.JobFail {
		return nil
	}
	failed := 0
	if j.Status == ecs.JobFail {
		failed = 1
	}
	_, err = t.q.ExecContext(ctx, `UPDATE jobs SET sub_done = sub_done + 1, sub_failed = sub_failed + ?1,
		sub_end = max(sub_end, ?2),
		status = CASE WHEN sub_done + 1 < sub_total THEN 'RUNNING' WHEN sub_failed + ?1 > 0 THEN 'FAIL' ELSE 'SUCCESS' END,
		end_time = CASE WHEN sub_done + 1 < sub_total THEN 0 ELSE max(sub_end, ?2) END
		WHERE id = ?3`, failed, ms(j.End), j.ParentID)
	return err
}

// JobClaim takes the leases and tallies the parents of newly started
// sub-jobs in one transaction.
func (s *Store) JobClaim(ctx context.Context, p store.JobClaimParams) ([]ecs.Job, error) {
	now := at(p.Now)
	var out []ecs.Job
	err := s.Write(ctx, func(stx store.Tx) error {
		q := stx.(*tx).q
		rows, err := q.QueryContext(ctx, `UPDATE jobs SET status='RUNNING', lease_owner=?, lease_expires=?, attempts=attempts+1,
			begin_time = CASE WHEN begin_time = 0 THEN ? ELSE begin_time END
			WHERE seq IN (SELECT seq FROM jobs WHERE runnable = 1 AND status IN ('INIT','RUNNING') AND lease_expires < ?
				AND run_at <= ? AND host IN (?, '') ORDER BY seq LIMIT ?)
			RETURNING `+jobCols, p.Owner, ms(now.Add(p.Lease)), ms(now), ms(now), ms(now), p.Host, p.Limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			j, err := scanJob(rows)
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		// Parents of newly started sub-jobs show RUNNING from their first
		// sub-job's start.
		for _, j := range out {
			if j.ParentID != "" && j.Attempts == 1 {
				_, err := q.ExecContext(ctx, `UPDATE jobs SET sub_started = sub_started + 1,
					status = CASE WHEN status = 'INIT' THEN 'RUNNING' ELSE status END,
					begin_time = CASE WHEN begin_time = 0 THEN ? ELSE begin_time END
					WHERE id = ?`, ms(now), j.ParentID)
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) JobLeaseRenew(ctx context.Context, p store.JobLeaseRenewParams) ([]string, error) {
	until := at(p.Now).Add(p.Lease)
	var renewed []string
	err := s.Write(ctx, func(stx store.Tx) error {
		q := stx.(*tx).q
		for _, l := range p.Runs {
			res, err := q.ExecContext(ctx, `UPDATE jobs SET lease_expires = ?
				WHERE id = ? AND lease_owner = ? AND attempts = ? AND status = 'RUNNING'`, ms(until), l.JobID, l.Owner, l.Attempt)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				renewed = append(renewed, l.JobID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return renewed, nil
}

// maxErrorLen bounds the cause kept in last_error.
const maxErrorLen = 2000

func (s *Store) JobRetry(ctx context.Context, p store.JobRetryParams) (int, error) {
	if p.Lease.Owner == "" {
		return 0, fmt.Errorf("job %s: no lease: %w", p.JobID, ecs.ErrFenced)
	}
	msg := p.Error
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen]
	}
	var n int
	err := s.w.QueryRowContext(ctx, `UPDATE jobs SET errors = errors + 1, last_error = ?, lease_expires = 0, run_at = ?
		WHERE id = ? AND lease_owner = ? AND attempts = ? AND status IN ('INIT','RUNNING')
		RETURNING errors`, msg, ms(at(p.Now).Add(p.Delay)), p.JobID, p.Lease.Owner, p.Lease.Attempt).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("job %s: %w", p.JobID, ecs.ErrFenced)
	}
	return n, err
}

func (s *Store) JobLeaseReleaseOwner(ctx context.Context, owner string) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE jobs SET lease_expires = 0 WHERE lease_owner = ? AND status = 'RUNNING' AND runnable = 1`, owner)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (s *Store) JobDeleteFinished(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM jobs WHERE seq IN (
		SELECT seq FROM jobs WHERE parent_id = '' AND status IN ('SUCCESS','FAIL') AND end_time > 0 AND end_time < ?1
		UNION ALL
		SELECT c.seq FROM jobs c JOIN jobs p ON p.id = c.parent_id
			WHERE p.parent_id = '' AND p.status IN ('SUCCESS','FAIL') AND p.end_time > 0 AND p.end_time < ?1)`, ms(before))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
