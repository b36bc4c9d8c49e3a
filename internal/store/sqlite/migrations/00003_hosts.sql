-- +goose Up
-- Several hosts (issue 8). A host is a node's machine: its capacity, the
-- allocation ratios it offers it under, and what its servers hold of it
-- (kept as totals on the row, so that a reservation is one conditional
-- UPDATE, and per server in allocations, so that a delete frees exactly
-- what the server held). Times are unix milliseconds.
CREATE TABLE hosts (
	name TEXT PRIMARY KEY,
	vcpus INTEGER NOT NULL,
	ram_mb INTEGER NOT NULL,
	disk_gb INTEGER NOT NULL,
	cpu_ratio REAL NOT NULL,
	ram_ratio REAL NOT NULL,
	disk_ratio REAL NOT NULL,
	alloc_vcpus INTEGER NOT NULL DEFAULT 0,
	alloc_ram_mb INTEGER NOT NULL DEFAULT 0,
	alloc_disk_gb INTEGER NOT NULL DEFAULT 0,
	advertise TEXT NOT NULL,
	driver TEXT NOT NULL,
	heartbeat INTEGER NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE allocations (
	server_id TEXT PRIMARY KEY,
	host TEXT NOT NULL,
	vcpus INTEGER NOT NULL,
	ram_mb INTEGER NOT NULL,
	disk_gb INTEGER NOT NULL
);
-- The hosts that have an image's files, and where (an import per host).
CREATE TABLE image_hosts (
	image_id TEXT NOT NULL,
	host TEXT NOT NULL,
	file TEXT NOT NULL,
	kernel TEXT NOT NULL,
	initrd TEXT NOT NULL,
	PRIMARY KEY (image_id, host)
);
-- A row made before hosts has host '': ecsd on SQLite (one node) adopts
-- such rows at start (cloud.Service.AdoptUnplaced).
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
