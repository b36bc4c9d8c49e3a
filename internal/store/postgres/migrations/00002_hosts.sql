-- +goose Up
-- Several hosts (issue 8); the same schema as SQLite's 00003_hosts.sql. A
-- reservation is one conditional UPDATE of the host's row (see
-- HostAllocate), which row locking makes safe across nodes.
CREATE TABLE hosts (
	name TEXT PRIMARY KEY,
	vcpus INTEGER NOT NULL,
	ram_mb BIGINT NOT NULL,
	disk_gb BIGINT NOT NULL,
	cpu_ratio DOUBLE PRECISION NOT NULL,
	ram_ratio DOUBLE PRECISION NOT NULL,
	disk_ratio DOUBLE PRECISION NOT NULL,
	alloc_vcpus INTEGER NOT NULL DEFAULT 0,
	alloc_ram_mb BIGINT NOT NULL DEFAULT 0,
	alloc_disk_gb BIGINT NOT NULL DEFAULT 0,
	advertise TEXT NOT NULL,
	driver TEXT NOT NULL,
	heartbeat BIGINT NOT NULL,
	created BIGINT NOT NULL
);
CREATE TABLE allocations (
	server_id TEXT PRIMARY KEY,
	host TEXT NOT NULL,
	vcpus INTEGER NOT NULL,
	ram_mb BIGINT NOT NULL,
	disk_gb BIGINT NOT NULL
);
CREATE TABLE image_hosts (
	image_id TEXT NOT NULL,
	host TEXT NOT NULL,
	file TEXT NOT NULL,
	kernel TEXT NOT NULL,
	initrd TEXT NOT NULL,
	PRIMARY KEY (image_id, host)
);
ALTER TABLE servers ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE volumes ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN host TEXT NOT NULL DEFAULT '';
CREATE INDEX servers_host ON servers(host);

-- +goose Down
DROP INDEX servers_host;
ALTER TABLE jobs DROP COLUMN host;
ALTER TABLE volumes DROP COLUMN host;
ALTER TABLE servers DROP COLUMN host;
DROP TABLE image_hosts;
DROP TABLE allocations;
DROP TABLE hosts;
