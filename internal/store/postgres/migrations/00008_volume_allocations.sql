-- +goose Up
-- The same as SQLite's 00009_volume_allocations.sql.
-- Volumes hold their disk on their host: an allocations row keyed by the
-- volume's id (disk_gb only), so that a data volume that outlives its
-- server keeps holding its disk and one deleted gives it back. A server's
-- row holds its vCPUs and RAM only. Rows made before: the disk a server
-- held moves to the volumes that have a host, and each host's allocated
-- disk is counted again from them.
UPDATE allocations SET disk_gb = 0;
INSERT INTO allocations(server_id, host, vcpus, ram_mb, disk_gb)
	SELECT id, host, 0, 0, size_gb FROM volumes
	WHERE host <> '' AND id NOT IN (SELECT server_id FROM allocations);
UPDATE hosts SET alloc_disk_gb = (SELECT coalesce(sum(disk_gb), 0) FROM allocations WHERE allocations.host = hosts.name);

-- +goose Down
-- A server's row holds its system disk again; other volumes hold nothing.
DELETE FROM allocations WHERE server_id IN (SELECT id FROM volumes);
UPDATE allocations SET disk_gb = coalesce((SELECT volumes.size_gb FROM servers JOIN volumes ON volumes.id = servers.system_volume_id
	WHERE servers.id = allocations.server_id), 0);
UPDATE hosts SET alloc_disk_gb = (SELECT coalesce(sum(disk_gb), 0) FROM allocations WHERE allocations.host = hosts.name);
