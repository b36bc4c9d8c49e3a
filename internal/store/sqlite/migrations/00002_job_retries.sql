-- +goose Up
-- The engine's bookkeeping of transient run errors: a job whose run failed
-- for a reason that is not a step failure waits until run_at (unix ms) and
-- is retried; errors counts such failures and last_error keeps the latest
-- cause for operators (never sent to clients).
ALTER TABLE jobs ADD COLUMN run_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_error TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN last_error;
ALTER TABLE jobs DROP COLUMN errors;
ALTER TABLE jobs DROP COLUMN run_at;
