-- +goose Up
-- Issue 10 (the same schema as SQLite's 00006_actions.sql): the lock reason, the action log and the client tokens of
-- idempotent creates. Action entries are kept apart from servers and jobs:
-- they outlive both (ecsd --action-retention).
ALTER TABLE servers ADD COLUMN locked_reason TEXT NOT NULL DEFAULT '';
CREATE TABLE server_actions (
	seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	request_id TEXT NOT NULL,
	server_id TEXT NOT NULL,
	project_id TEXT NOT NULL,
	action TEXT NOT NULL,
	user_id TEXT NOT NULL,
	access_key TEXT NOT NULL,
	job_id TEXT NOT NULL,
	run_job_id TEXT NOT NULL,
	outcome TEXT NOT NULL,
	message TEXT NOT NULL,
	start_time BIGINT NOT NULL,
	end_time BIGINT NOT NULL
);
CREATE UNIQUE INDEX server_actions_request ON server_actions(project_id, server_id, request_id);
CREATE INDEX server_actions_run_job ON server_actions(run_job_id) WHERE run_job_id <> '';
CREATE INDEX server_actions_start ON server_actions(start_time);
CREATE TABLE client_tokens (
	project_id TEXT NOT NULL,
	token TEXT NOT NULL,
	request_hash TEXT NOT NULL,
	job_id TEXT NOT NULL,
	server_ids TEXT NOT NULL,
	created BIGINT NOT NULL,
	PRIMARY KEY (project_id, token)
);
CREATE INDEX client_tokens_created ON client_tokens(created);

-- +goose Down
DROP TABLE client_tokens;
DROP TABLE server_actions;
ALTER TABLE servers DROP COLUMN locked_reason;
