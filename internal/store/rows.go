package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// The columns of the job, server and action rows both stores read, in the
// order of the scan targets below: a store selects them (its SQL is its
// own), scans a row into a JobRow, ServerRow or ActionRow and decodes it.
// What differs per database (a boolean column is an integer in SQLite)
// the store scans into targets of its own and passes in.
const (
	JobColumns = `id, project_id, type, status, parent_id, server_id, runnable, error_code, fail_reason, params, step, attempts,
	errors, last_error, created, begin_time, end_time, host`
	ServerColumns = `id, project_id, user_id, name, vm_state, task_state, power_state, locked, image_id, flavor_id, key_name,
	system_volume_id, reinstall_failed, task_job_id, task_owner, fault, metadata, az, vpc_id, addr, access_port, launch_index,
	created, updated, launched_at, host, reservation_id, nics, tags, locked_reason, details`
	ActionColumns = `request_id, server_id, project_id, action, user_id, access_key, job_id, run_job_id, outcome, message,
	start_time, end_time`
)

// ToMS is a time as rows keep it: milliseconds since the epoch; the zero
// time is 0.
func ToMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMS is the time of a row's milliseconds since the epoch, in UTC; 0 is
// the zero time.
func FromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// JobRow is a job row being scanned: Targets, then Decode.
type JobRow struct {
	Job                 ecs.Job
	created, begin, end int64
}

// Targets returns the scan targets of JobColumns; runnable is the store's
// target for the runnable column.
func (r *JobRow) Targets(runnable any) []any {
	j := &r.Job
	return []any{&j.ID, &j.ProjectID, &j.Type, &j.Status, &j.ParentID, &j.ServerID, runnable, &j.ErrorCode, &j.FailReason,
		&j.Params, &j.Step, &j.Attempts, &j.Errors, &j.LastError, &r.created, &r.begin, &r.end, &j.Host}
}

// Decode returns the job with its times set from the scanned columns.
func (r *JobRow) Decode() ecs.Job {
	j := r.Job
	j.Created, j.Begin, j.End = FromMS(r.created), FromMS(r.begin), FromMS(r.end)
	return j
}

// ServerRow is a server row being scanned: Targets, then Decode.
type ServerRow struct {
	Server                       ecs.Server
	metadata                     []byte
	nics, tags, details, owner   string
	created, updated, launchedAt int64
}

// Targets returns the scan targets of ServerColumns; locked and failed
// are the store's targets for the locked and reinstall_failed columns.
func (r *ServerRow) Targets(locked, failed any) []any {
	s := &r.Server
	return []any{&s.ID, &s.ProjectID, &s.UserID, &s.Name, &s.VMState, &s.TaskState, &s.PowerState, locked, &s.ImageID,
		&s.FlavorID, &s.KeyName, &s.SystemVolumeID, failed, &s.TaskJobID, &r.owner, &s.Fault, &r.metadata, &s.AZ, &s.VPCID,
		&s.Addr, &s.AccessPort, &s.LaunchIndex, &r.created, &r.updated, &r.launchedAt, &s.Host, &s.ReservationID, &r.nics,
		&r.tags, &s.LockedReason, &r.details}
}

// Decode returns the server with its JSON columns and times decoded.
func (r *ServerRow) Decode() (ecs.Server, error) {
	s := r.Server
	if err := DecodeServerJSON(&s, r.nics, r.tags); err != nil {
		return s, err
	}
	if err := DecodeServerDetails(&s, r.details); err != nil {
		return s, err
	}
	s.Created, s.Updated, s.LaunchedAt = FromMS(r.created), FromMS(r.updated), FromMS(r.launchedAt)
	if len(r.metadata) > 0 && string(r.metadata) != "{}" {
		if err := json.Unmarshal(r.metadata, &s.Metadata); err != nil {
			return s, fmt.Errorf("server %s metadata: %w", s.ID, err)
		}
	}
	return s, nil
}

// Scanner is a row to scan: *sql.Row, *sql.Rows, pgx.Row.
type Scanner interface{ Scan(dest ...any) error }

// ScanAction reads a row of ActionColumns.
func ScanAction(sc Scanner) (ecs.Action, error) {
	var a ecs.Action
	var start, end int64
	err := sc.Scan(&a.RequestID, &a.ServerID, &a.ProjectID, &a.Action, &a.UserID, &a.AccessKey, &a.JobID, &a.RunJobID,
		&a.Outcome, &a.Message, &start, &end)
	a.Start, a.End = FromMS(start), FromMS(end)
	return a, err
}
