-- +goose Up
-- The addresses of servers made before issue 11 (no NICs, one address, no
-- subnet) join the address table, so that the ip and ip_eq filters find
-- them (store/legacy.go says why and how). Subnet '' keeps them out of
-- every subnet's pool. ecsd_legacy_port_id is store.LegacyPortID,
-- registered by this package, so the port id stays the one the API shows.
-- A server whose address an older server of its project already holds
-- goes to address_conflicts, with the holder's id.
CREATE TABLE address_conflicts (
	server_id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	ip TEXT NOT NULL,
	port_id TEXT NOT NULL,
	held_by TEXT NOT NULL
);
CREATE INDEX address_conflicts_ip ON address_conflicts(project_id, ip);
INSERT INTO ports(port_id, server_id, project_id, subnet_id, ip)
	SELECT ecsd_legacy_port_id(s.id), s.id, s.project_id, '', s.addr FROM servers s
	WHERE s.nics = '' AND s.addr != '' AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.server_id = s.id)
		AND s.seq = (SELECT min(o.seq) FROM servers o WHERE o.project_id = s.project_id AND o.addr = s.addr AND o.nics = '')
	ORDER BY s.seq;
INSERT INTO address_conflicts(server_id, project_id, ip, port_id, held_by)
	SELECT s.id, s.project_id, s.addr, ecsd_legacy_port_id(s.id), p.server_id FROM servers s
	JOIN ports p ON p.project_id = s.project_id AND p.subnet_id = '' AND p.ip = s.addr
	WHERE s.nics = '' AND s.addr != '' AND NOT EXISTS (SELECT 1 FROM ports q WHERE q.server_id = s.id);
INSERT INTO port_search(port_search) VALUES('rebuild');

-- +goose Down
DELETE FROM ports WHERE subnet_id = '' AND server_id IN (SELECT id FROM servers WHERE nics = '');
INSERT INTO port_search(port_search) VALUES('rebuild');
DROP TABLE address_conflicts;
