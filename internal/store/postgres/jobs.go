package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// jobCols are the columns of a job; JobGet orders by the two it adds after
// them (19 and 20): keep it in step.
const jobCols = store.JobColumns

func scanJob(sc pgx.Row, extra ...any) (ecs.Job, error) {
	var r store.JobRow
	err := sc.Scan(append(r.Targets(&r.Job.Runnable), extra...)...)
	return r.Decode(), err
}

func (t *tx) JobInsert(ctx context.Context, j *ecs.Job) error {
	if j.Status == "" {
		j.Status = ecs.JobInit
	}
	_, err := t.q.Exec(ctx, `INSERT INTO jobs(id, project_id, type, status, parent_id, server_id, runnable, error_code,
		fail_reason, params, step, attempts, lease_owner, lease_expires, created, begin_time, end_time, host)
		VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,0,'',0,$12,$13,$14,$15)`,
		j.ID, j.ProjectID, j.Type, j.Status, j.ParentID, j.ServerID, j.Runnable, j.ErrorCode, j.FailReason, j.Params, j.Step,
		ms(j.Created), ms(j.Begin), ms(j.End), j.Host)
	if isUnique(err) {
		return fmt.Errorf("job %q: %w", j.ID, ecs.ErrConflict)
	}
	if err != nil {
		return err
	}
	if j.Runnable {
		t.jobInserted = true
	}
	if j.ParentID == "" {
		return nil
	}
	_, err = t.q.Exec(ctx, `UPDATE jobs SET sub_total = sub_total + 1 WHERE id = $1`, j.ParentID)
	return err
}

func getJob(ctx context.Context, q querier, id string) (ecs.Job, error) {
	if unstorable(id) {
		return ecs.Job{}, notFound("job", id)
	}
	j, err := scanJob(q.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`+forUpdate, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return j, notFound("job", id)
	}
	return j, err
}

func (t *tx) JobGetByID(ctx context.Context, id string) (ecs.Job, error) {
	return getJob(ctx, t.q, id)
}

// JobGet reads the job and its sub-jobs in one statement, so that they come
// from one snapshot: a batch never shows a status its sub-jobs contradict.
func (s *Store) JobGet(ctx context.Context, projectID, id string) (ecs.Job, error) {
	if projectID == "" || unstorable(projectID, id) {
		return ecs.Job{}, notFound("job", id)
	}
	rows, err := s.db.Query(ctx, `SELECT `+jobCols+`, true, seq FROM jobs WHERE id = $1 AND project_id = $2
		UNION ALL
		SELECT `+prefixed("c.", jobCols)+`, false, c.seq FROM jobs c JOIN jobs p ON p.id = c.parent_id
			WHERE p.id = $1 AND p.project_id = $2 AND NOT p.runnable
		ORDER BY 19 DESC, 20`, id, projectID)
	if err != nil {
		return ecs.Job{}, err
	}
	defer rows.Close()
	var j ecs.Job
	found := false
	for rows.Next() {
		var top bool
		var seq int64
		r, err := scanJob(rows, &top, &seq)
		if err != nil {
			return ecs.Job{}, err
		}
		if top {
			j, found = r, true
		} else {
			j.SubJobs = append(j.SubJobs, r)
		}
	}
	if err := rows.Err(); err != nil {
		return ecs.Job{}, err
	}
	if !found {
		return ecs.Job{}, notFound("job", id)
	}
	return j, nil
}

// prefixed qualifies every column of a comma-separated list with p.
func prefixed(p, cols string) string {
	list := strings.Split(cols, ",")
	for i, c := range list {
		list[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(list, ", ")
}

// JobUpdate writes the job under its lease; a sub-job that finishes is
// tallied into its parent, whose status follows.
func (t *tx) JobUpdate(ctx context.Context, j *ecs.Job, lease store.Lease) error {
	if lease.Owner == "" {
		return fmt.Errorf("job %s: no lease: %w", j.ID, ecs.ErrFenced)
	}
	// A sub-job's previous status tells whether this update finishes it;
	// the row stays locked until the commit, so no other run can finish it
	// in between.
	var was string
	if j.ParentID != "" {
		err := t.q.QueryRow(ctx, `SELECT status FROM jobs WHERE id = $1`+forUpdate, j.ID).Scan(&was)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	tag, err := t.q.Exec(ctx, `UPDATE jobs SET status=$1, step=$2, error_code=$3, fail_reason=$4, params=$5, begin_time=$6,
		end_time=$7, lease_expires = CASE WHEN $1 IN ('SUCCESS','FAIL') THEN 0 ELSE lease_expires END
		WHERE id=$8 AND lease_owner=$9 AND attempts=$10`,
		j.Status, j.Step, j.ErrorCode, j.FailReason, j.Params, ms(j.Begin), ms(j.End), j.ID, lease.Owner, lease.Attempt)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("job %s: %w", j.ID, ecs.ErrFenced)
	}
	if j.ParentID == "" || !j.Done() || was == ecs.JobSuccess || was == ecs.JobFail {
		return nil
	}
	failed := 0
	if j.Status == ecs.JobFail {
		failed = 1
	}
	_, err = t.q.Exec(ctx, `UPDATE jobs SET sub_done = sub_done + 1, sub_failed = sub_failed + $1,
		sub_end = greatest(sub_end, $2),
		status = CASE WHEN sub_done + 1 < sub_total THEN 'RUNNING' WHEN sub_failed + $1 > 0 THEN 'FAIL' ELSE 'SUCCESS' END,
		end_time = CASE WHEN sub_done + 1 < sub_total THEN 0 ELSE greatest(sub_end, $2) END
		WHERE id = $3`, failed, ms(j.End), j.ParentID)
	return err
}

// JobClaim takes the leases of up to limit runnable jobs, skipping the rows
// other claimers hold, and tallies the parents of newly started sub-jobs.
// It is one statement (so one round trip and one atomic change): the
// claim and the tallies are data-modifying parts of one query. Claimed
// jobs are runnable and parents are not, so the two never touch the same
// row. Two claimers that lock parents in opposite orders deadlock; the
// loser is run again, as a Write would be.
func (s *Store) JobClaim(ctx context.Context, p store.JobClaimParams) ([]ecs.Job, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	for run := 1; ; run++ {
		out, err := s.claimOnce(ctx, p)
		if err == nil || !retryable(err) || run == maxWriteRuns || ctx.Err() != nil {
			return out, err
		}
	}
}

func (s *Store) claimOnce(ctx context.Context, p store.JobClaimParams) ([]ecs.Job, error) {
	rows, err := s.db.Query(ctx, `WITH clock AS (SELECT `+at("$1")+` AS now),
		picked AS (
			SELECT seq FROM jobs, clock WHERE runnable AND status IN ('INIT','RUNNING') AND lease_expires < clock.now
				AND run_at <= clock.now
				AND host IN ($5, '')
			ORDER BY seq LIMIT $2 FOR UPDATE OF jobs SKIP LOCKED),
		claimed AS (
			UPDATE jobs j SET status = 'RUNNING', lease_owner = $3, lease_expires = clock.now + $4::bigint,
				attempts = j.attempts + 1, begin_time = CASE WHEN j.begin_time = 0 THEN clock.now ELSE j.begin_time END
			FROM picked, clock WHERE j.seq = picked.seq
			RETURNING `+prefixed("j.", jobCols)+`, j.seq),
		started AS (
			SELECT parent_id, count(*) AS n FROM claimed WHERE parent_id <> '' AND attempts = 1 GROUP BY parent_id),
		tallied AS (
			UPDATE jobs p SET sub_started = p.sub_started + started.n,
				status = CASE WHEN p.status = 'INIT' THEN 'RUNNING' ELSE p.status END,
				begin_time = CASE WHEN p.begin_time = 0 THEN clock.now ELSE p.begin_time END
			FROM started, clock WHERE p.id = started.parent_id)
		SELECT * FROM claimed ORDER BY seq`, ms(p.Now), p.Limit, p.Owner, msDur(p.Lease), p.Host)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ecs.Job, error) {
		var seq int64
		return scanJob(r, &seq)
	})
}

func (s *Store) JobLeaseRenew(ctx context.Context, p store.JobLeaseRenewParams) ([]string, error) {
	runs := p.Runs
	if len(runs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(runs))
	owners := make([]string, len(runs))
	attempts := make([]int32, len(runs))
	for i, l := range runs {
		ids[i], owners[i], attempts[i] = l.JobID, l.Owner, int32(l.Attempt)
	}
	rows, err := s.db.Query(ctx, `UPDATE jobs SET lease_expires = `+at("$1")+` + $5::bigint
		FROM unnest($2::text[], $3::text[], $4::int[]) AS r(id, owner, attempt)
		WHERE jobs.id = r.id AND jobs.lease_owner = r.owner AND jobs.attempts = r.attempt AND jobs.status = 'RUNNING'
		RETURNING jobs.id`, ms(p.Now), ids, owners, attempts, msDur(p.Lease))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
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
	err := s.db.QueryRow(ctx, `UPDATE jobs SET errors = errors + 1, last_error = $1, lease_expires = 0,
		run_at = `+at("$2")+` + $6::bigint
		WHERE id = $3 AND lease_owner = $4 AND attempts = $5 AND status IN ('INIT','RUNNING')
		RETURNING errors`, cleanText(msg), ms(p.Now), p.JobID, p.Lease.Owner, p.Lease.Attempt, msDur(p.Delay)).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("job %s: %w", p.JobID, ecs.ErrFenced)
	}
	return n, err
}

func (s *Store) JobLeaseReleaseOwner(ctx context.Context, owner string) (int, error) {
	tag, err := s.db.Exec(ctx, `UPDATE jobs SET lease_expires = 0 WHERE lease_owner = $1 AND status = 'RUNNING' AND runnable`, owner)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func (s *Store) JobDeleteFinished(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM jobs WHERE seq IN (
		SELECT seq FROM jobs WHERE parent_id = '' AND status IN ('SUCCESS','FAIL') AND end_time > 0 AND end_time < $1
		UNION ALL
		SELECT c.seq FROM jobs c JOIN jobs p ON p.id = c.parent_id
			WHERE p.parent_id = '' AND p.status IN ('SUCCESS','FAIL') AND p.end_time > 0 AND p.end_time < $1)`, ms(before))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
