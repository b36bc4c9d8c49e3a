-- +goose Up
-- The addresses of servers made before issue 11 (no NICs, one address, no
-- subnet) join the address table, so that the ip and ip_eq filters find
-- them (the same as SQLite's 00011_legacy_addresses.sql; store/legacy.go
-- says why and how). Subnet '' keeps them out of every subnet's pool; the
-- port id is store.LegacyPortID, computed here in SQL. A server whose
-- address an older server of its project already holds goes to
-- address_conflicts, with the holder's id.
CREATE TABLE address_conflicts (
	server_id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	ip TEXT NOT NULL,
	port_id TEXT NOT NULL,
	held_by TEXT NOT NULL
);
CREATE INDEX address_conflicts_ip ON address_conflicts(project_id, ip);
-- +goose StatementBegin
CREATE FUNCTION ecsd_legacy_port_id(id TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
	SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-' ||
		translate(substr(h, 17, 1), '0123456789abcdef', '89ab89ab89ab89ab') || substr(h, 18, 3) || '-' || substr(h, 21, 12)
	FROM (SELECT encode(sha256(convert_to('port:' || id, 'UTF8')), 'hex') AS h) AS d
$$;
-- +goose StatementEnd
INSERT INTO ports(port_id, server_id, project_id, subnet_id, ip)
	SELECT ecsd_legacy_port_id(s.id), s.id, s.project_id, '', s.addr FROM servers s
	WHERE s.nics = '' AND s.addr != '' AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.server_id = s.id)
		AND s.seq = (SELECT min(o.seq) FROM servers o WHERE o.project_id = s.project_id AND o.addr = s.addr AND o.nics = '')
	ORDER BY s.seq;
INSERT INTO address_conflicts(server_id, project_id, ip, port_id, held_by)
	SELECT s.id, s.project_id, s.addr, ecsd_legacy_port_id(s.id), p.server_id FROM servers s
	JOIN ports p ON p.project_id = s.project_id AND p.subnet_id = '' AND p.ip = s.addr
	WHERE s.nics = '' AND s.addr != '' AND NOT EXISTS (SELECT 1 FROM ports q WHERE q.server_id = s.id);
DROP FUNCTION ecsd_legacy_port_id(TEXT);

-- +goose Down
DELETE FROM ports WHERE subnet_id = '' AND server_id IN (SELECT id FROM servers WHERE nics = '');
DROP TABLE address_conflicts;
