-- +goose Up
-- Issue 11 (the same schema as SQLite's 00005_wire.sql): what the API's list filters and server details need.
-- A server's NICs (with their addresses) and tags are JSON on its row, read
-- with it; ports and server_tags hold the same, one row each, so that the
-- filters and the address pools have indexes (they are written only with
-- the server row, in its transaction). reservation_id names the create
-- request of a server.
ALTER TABLE servers ADD COLUMN reservation_id TEXT NOT NULL DEFAULT '';
ALTER TABLE servers ADD COLUMN nics TEXT NOT NULL DEFAULT '';
ALTER TABLE servers ADD COLUMN tags TEXT NOT NULL DEFAULT '';
CREATE INDEX servers_flavor ON servers(project_id, flavor_id, status, seq);
CREATE INDEX servers_reservation ON servers(project_id, reservation_id, seq);
CREATE TABLE ports (
	port_id TEXT PRIMARY KEY,
	server_id TEXT NOT NULL,
	project_id TEXT NOT NULL,
	subnet_id TEXT NOT NULL,
	ip TEXT NOT NULL
);
-- One address per subnet of a project: the allocator's guard.
CREATE UNIQUE INDEX ports_address ON ports(project_id, subnet_id, ip);
CREATE INDEX ports_server ON ports(server_id);
CREATE INDEX ports_ip ON ports(project_id, ip);
CREATE TABLE server_tags (
	server_id TEXT NOT NULL,
	project_id TEXT NOT NULL,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (server_id, key)
);
CREATE INDEX server_tags_kv ON server_tags(project_id, key, value);
-- A project's subnets as first named by a create: VPC and CIDR.
CREATE TABLE subnets (
	project_id TEXT NOT NULL,
	id TEXT NOT NULL,
	vpc_id TEXT NOT NULL,
	cidr TEXT NOT NULL,
	created BIGINT NOT NULL,
	PRIMARY KEY (project_id, id)
);

-- +goose Down
DROP TABLE subnets;
DROP TABLE server_tags;
DROP TABLE ports;
DROP INDEX servers_reservation;
DROP INDEX servers_flavor;
ALTER TABLE servers DROP COLUMN tags;
ALTER TABLE servers DROP COLUMN nics;
ALTER TABLE servers DROP COLUMN reservation_id;
