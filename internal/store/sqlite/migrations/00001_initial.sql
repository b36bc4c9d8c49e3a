-- +goose Up
-- The schema of the issue-3 release (user_version 1). Times are unix milliseconds (0 for unset).
CREATE TABLE IF NOT EXISTS projects (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
	access_key TEXT PRIMARY KEY,
	secret_sealed BLOB NOT NULL,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	os_type TEXT NOT NULL,
	os_version TEXT NOT NULL,
	platform TEXT NOT NULL,
	status TEXT NOT NULL,
	disk_format TEXT NOT NULL,
	min_disk INTEGER NOT NULL,
	min_ram INTEGER NOT NULL,
	size INTEGER NOT NULL,
	checksum TEXT NOT NULL,
	file TEXT NOT NULL,
	kernel TEXT NOT NULL,
	initrd TEXT NOT NULL,
	partition_table TEXT NOT NULL,
	rootfs TEXT NOT NULL,
	cloud_init INTEGER NOT NULL,
	unsupported TEXT NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS servers (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	name TEXT NOT NULL,
	status TEXT NOT NULL,
	vm_state TEXT NOT NULL,
	task_state TEXT NOT NULL,
	power_state INTEGER NOT NULL,
	locked INTEGER NOT NULL,
	image_id TEXT NOT NULL,
	flavor_id TEXT NOT NULL,
	key_name TEXT NOT NULL,
	system_volume_id TEXT NOT NULL,
	reinstall_failed INTEGER NOT NULL,
	task_job_id TEXT NOT NULL,
	task_owner TEXT NOT NULL,
	fault TEXT NOT NULL,
	metadata TEXT NOT NULL,
	az TEXT NOT NULL,
	vpc_id TEXT NOT NULL,
	addr TEXT NOT NULL,
	access_port INTEGER NOT NULL,
	launch_index INTEGER NOT NULL,
	created INTEGER NOT NULL,
	updated INTEGER NOT NULL,
	launched_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS servers_project ON servers(project_id, seq);
CREATE INDEX IF NOT EXISTS servers_status ON servers(project_id, status, seq);
CREATE TABLE IF NOT EXISTS volumes (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	server_id TEXT NOT NULL,
	image_id TEXT NOT NULL,
	size_gb INTEGER NOT NULL,
	volume_type TEXT NOT NULL,
	status TEXT NOT NULL,
	device TEXT NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keypairs (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	name TEXT NOT NULL,
	public_key TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	type TEXT NOT NULL,
	created INTEGER NOT NULL,
	UNIQUE(project_id, user_id, name)
);
CREATE TABLE IF NOT EXISTS jobs (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	project_id TEXT NOT NULL,
	type TEXT NOT NULL,
	status TEXT NOT NULL,
	parent_id TEXT NOT NULL,
	server_id TEXT NOT NULL,
	runnable INTEGER NOT NULL,
	error_code TEXT NOT NULL,
	fail_reason TEXT NOT NULL,
	params BLOB,
	step INTEGER NOT NULL,
	attempts INTEGER NOT NULL,
	lease_owner TEXT NOT NULL,
	lease_expires INTEGER NOT NULL,
	created INTEGER NOT NULL,
	begin_time INTEGER NOT NULL,
	end_time INTEGER NOT NULL,
	-- A batch job's tally of its sub-jobs, kept as they change so that its
	-- status is O(1) to maintain whatever the batch size.
	sub_total INTEGER NOT NULL DEFAULT 0,
	sub_started INTEGER NOT NULL DEFAULT 0,
	sub_done INTEGER NOT NULL DEFAULT 0,
	sub_failed INTEGER NOT NULL DEFAULT 0,
	sub_end INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_runnable ON jobs(seq) WHERE runnable = 1 AND status IN ('INIT', 'RUNNING');
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs(parent_id) WHERE parent_id != '';
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(end_time) WHERE parent_id = '' AND status IN ('SUCCESS', 'FAIL');
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(lease_owner) WHERE status = 'RUNNING';
PRAGMA user_version = 1;
