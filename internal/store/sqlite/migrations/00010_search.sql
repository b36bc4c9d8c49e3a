-- +goose Up
-- The list filters' name and ip patterns (a "." matches any one character)
-- through trigram indexes: server_search indexes server names, port_search
-- the NICs' addresses. Both are FTS5 tables whose content is the indexed
-- table's own rows (nothing is stored twice), kept in step by the store's
-- writes of those rows, in their statements' transaction. Not by triggers:
-- a statement that fires a trigger opens a savepoint, and FTS5 writes its
-- pending entries out at every savepoint, one small segment per row; the
-- index would fall into thousands of segments that every query merges.
-- ports gains an INTEGER PRIMARY KEY so that its rowids stay put (FTS5
-- refers to rows by rowid; VACUUM may renumber implicit rowids).
CREATE TABLE ports_new (
	seq INTEGER PRIMARY KEY,
	port_id TEXT NOT NULL UNIQUE,
	server_id TEXT NOT NULL,
	project_id TEXT NOT NULL,
	subnet_id TEXT NOT NULL,
	ip TEXT NOT NULL
);
INSERT INTO ports_new(port_id, server_id, project_id, subnet_id, ip)
	SELECT port_id, server_id, project_id, subnet_id, ip FROM ports ORDER BY rowid;
DROP TABLE ports;
ALTER TABLE ports_new RENAME TO ports;
CREATE UNIQUE INDEX ports_address ON ports(project_id, subnet_id, ip);
CREATE INDEX ports_server ON ports(server_id);
CREATE INDEX ports_ip ON ports(project_id, ip);

CREATE VIRTUAL TABLE server_search USING fts5(name, content='servers', content_rowid='seq',
	tokenize='trigram case_sensitive 1');
INSERT INTO server_search(server_search) VALUES('rebuild');

CREATE VIRTUAL TABLE port_search USING fts5(ip, content='ports', content_rowid='seq',
	tokenize='trigram case_sensitive 1');
INSERT INTO port_search(port_search) VALUES('rebuild');

-- +goose Down
DROP TABLE port_search;
DROP TABLE server_search;
CREATE TABLE ports_old (
	port_id TEXT PRIMARY KEY,
	server_id TEXT NOT NULL,
	project_id TEXT NOT NULL,
	subnet_id TEXT NOT NULL,
	ip TEXT NOT NULL
);
INSERT INTO ports_old SELECT port_id, server_id, project_id, subnet_id, ip FROM ports ORDER BY seq;
DROP TABLE ports;
ALTER TABLE ports_old RENAME TO ports;
CREATE UNIQUE INDEX ports_address ON ports(project_id, subnet_id, ip);
CREATE INDEX ports_server ON ports(server_id);
CREATE INDEX ports_ip ON ports(project_id, ip);
