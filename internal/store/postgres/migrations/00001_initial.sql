-- +goose Up
-- The schema of SQLite's migrations 1 and 2, in PostgreSQL's types. Times
-- are unix milliseconds (BIGINT, 0 for unset), as in SQLite: every instant
-- the store compares (now, lease expiry, retry time) is given by its caller.
CREATE TABLE projects (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	created BIGINT NOT NULL
);
CREATE TABLE credentials (
	access_key TEXT PRIMARY KEY,
	secret_sealed BYTEA NOT NULL,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	created BIGINT NOT NULL
);
CREATE TABLE images (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	os_type TEXT NOT NULL,
	os_version TEXT NOT NULL,
	platform TEXT NOT NULL,
	status TEXT NOT NULL,
	disk_format TEXT NOT NULL,
	min_disk INTEGER NOT NULL,
	min_ram INTEGER NOT NULL,
	size BIGINT NOT NULL,
	checksum TEXT NOT NULL,
	file TEXT NOT NULL,
	kernel TEXT NOT NULL,
	initrd TEXT NOT NULL,
	partition_table TEXT NOT NULL,
	rootfs TEXT NOT NULL,
	cloud_init BOOLEAN NOT NULL,
	unsupported TEXT NOT NULL,
	created BIGINT NOT NULL
);
CREATE TABLE servers (
	seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	name TEXT NOT NULL,
	status TEXT NOT NULL,
	vm_state TEXT NOT NULL,
	task_state TEXT NOT NULL,
	power_state INTEGER NOT NULL,
	locked BOOLEAN NOT NULL,
	image_id TEXT NOT NULL,
	flavor_id TEXT NOT NULL,
	key_name TEXT NOT NULL,
	system_volume_id TEXT NOT NULL,
	reinstall_failed BOOLEAN NOT NULL,
	task_job_id TEXT NOT NULL,
	task_owner TEXT NOT NULL,
	fault TEXT NOT NULL,
	-- JSON text, as SQLite keeps it (JSONB would refuse a \u0000 escape).
	metadata TEXT NOT NULL,
	az TEXT NOT NULL,
	vpc_id TEXT NOT NULL,
	addr TEXT NOT NULL,
	access_port INTEGER NOT NULL,
	launch_index INTEGER NOT NULL,
	created BIGINT NOT NULL,
	updated BIGINT NOT NULL,
	launched_at BIGINT NOT NULL
);
CREATE INDEX servers_project ON servers(project_id, seq);
CREATE INDEX servers_status ON servers(project_id, status, seq);
CREATE TABLE volumes (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	server_id TEXT NOT NULL,
	image_id TEXT NOT NULL,
	size_gb INTEGER NOT NULL,
	volume_type TEXT NOT NULL,
	status TEXT NOT NULL,
	device TEXT NOT NULL,
	created BIGINT NOT NULL
);
CREATE TABLE keypairs (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	name TEXT NOT NULL,
	public_key TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	type TEXT NOT NULL,
	created BIGINT NOT NULL,
	UNIQUE (project_id, user_id, name)
);
CREATE TABLE jobs (
	seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	project_id TEXT NOT NULL,
	type TEXT NOT NULL,
	status TEXT NOT NULL,
	parent_id TEXT NOT NULL,
	server_id TEXT NOT NULL,
	runnable BOOLEAN NOT NULL,
	error_code TEXT NOT NULL,
	fail_reason TEXT NOT NULL,
	-- The job's input as its caller gave it (JSON, byte for byte).
	params BYTEA,
	step INTEGER NOT NULL,
	attempts INTEGER NOT NULL,
	lease_owner TEXT NOT NULL,
	lease_expires BIGINT NOT NULL,
	created BIGINT NOT NULL,
	begin_time BIGINT NOT NULL,
	end_time BIGINT NOT NULL,
	-- A batch job's tally of its sub-jobs, kept as they change so that its
	-- status is O(1) to maintain whatever the batch size.
	sub_total INTEGER NOT NULL DEFAULT 0,
	sub_started INTEGER NOT NULL DEFAULT 0,
	sub_done INTEGER NOT NULL DEFAULT 0,
	sub_failed INTEGER NOT NULL DEFAULT 0,
	sub_end BIGINT NOT NULL DEFAULT 0,
	-- Transient run errors (SQLite's migration 2): the job waits until
	-- run_at; errors counts them, last_error keeps the latest for operators.
	run_at BIGINT NOT NULL DEFAULT 0,
	errors INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_runnable ON jobs(seq) WHERE runnable AND status IN ('INIT', 'RUNNING');
CREATE INDEX jobs_parent ON jobs(parent_id) WHERE parent_id <> '';
CREATE INDEX jobs_finished ON jobs(end_time) WHERE parent_id = '' AND status IN ('SUCCESS', 'FAIL');
CREATE INDEX jobs_lease ON jobs(lease_owner) WHERE status = 'RUNNING';

-- +goose Down
DROP TABLE jobs;
DROP TABLE keypairs;
DROP TABLE volumes;
DROP TABLE servers;
DROP TABLE images;
DROP TABLE credentials;
DROP TABLE projects;
