package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// ---- hosts, allocations and image hosts

// hostCols are a host's columns and its server count; hostColsUncounted
// leave the count out (0), for the create path, which does not need it.
const (
	hostColsUncounted = `name, vcpus, ram_mb, disk_gb, cpu_ratio, ram_ratio, disk_ratio, alloc_vcpus, alloc_ram_mb,
	alloc_disk_gb, advertise, driver, heartbeat, created, `
	hostCols = hostColsUncounted + `(SELECT count(*) FROM servers WHERE servers.host = hosts.name)`
)

func scanHost(sc scanner) (store.Host, error) {
	var h store.Host
	var beat, created int64
	err := sc.Scan(&h.Name, &h.VCPUs, &h.RAMMB, &h.DiskGB, &h.CPURatio, &h.RAMRatio, &h.DiskRatio, &h.AllocVCPUs, &h.AllocRAMMB,
		&h.AllocDiskGB, &h.Advertise, &h.Driver, &beat, &created, &h.Servers)
	h.Heartbeat, h.Created = fromMS(beat), fromMS(created)
	if beat != 0 {
		h.Age = time.Since(h.Heartbeat)
	}
	return h, err
}

func (s *Store) HostUpsert(ctx context.Context, h store.Host) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO hosts(name, vcpus, ram_mb, disk_gb, cpu_ratio, ram_ratio, disk_ratio, advertise,
		driver, heartbeat, created) VALUES(?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET vcpus = excluded.vcpus, ram_mb = excluded.ram_mb, disk_gb = excluded.disk_gb,
			cpu_ratio = excluded.cpu_ratio, ram_ratio = excluded.ram_ratio, disk_ratio = excluded.disk_ratio,
			advertise = excluded.advertise, driver = excluded.driver, heartbeat = excluded.heartbeat`,
		h.Name, h.VCPUs, h.RAMMB, h.DiskGB, h.CPURatio, h.RAMRatio, h.DiskRatio, h.Advertise, h.Driver, ms(at(h.Heartbeat)), ms(at(h.Created)))
	return err
}

func (s *Store) HostHeartbeat(ctx context.Context, name string, beat time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE hosts SET heartbeat = ? WHERE name = ?`, ms(at(beat)), name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("host", name)
	}
	return nil
}

func getHost(ctx context.Context, q queryer, name string) (store.Host, error) {
	h, err := scanHost(q.QueryRowContext(ctx, `SELECT `+hostCols+` FROM hosts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return h, notFound("host", name)
	}
	return h, err
}

func listHosts(ctx context.Context, q queryer, cols string) ([]store.Host, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+cols+` FROM hosts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (s *Store) HostGet(ctx context.Context, name string) (store.Host, error) {
	return getHost(ctx, s.r, name)
}
func (s *Store) HostList(ctx context.Context) ([]store.Host, error) {
	return listHosts(ctx, s.r, hostCols)
}
func (t *tx) HostList(ctx context.Context) ([]store.Host, error) {
	return listHosts(ctx, t.q, hostColsUncounted+"0")
}

// HostAllocate adds a's needs to the host's totals in one statement whose
// WHERE clause is the capacity check, so that no interleaving of
// reservations can pass the limit (SQLite runs one Write at a time
// anyway; the same statement is the guard on a store with concurrent
// writers). The allocations table keeps what each holder (a server or a
// data volume, by id) holds, so that freeing it gives back exactly that.
func (t *tx) HostAllocate(ctx context.Context, a store.Allocation) error {
	disk := a.TotalDiskGB()
	res, err := t.q.ExecContext(ctx, `UPDATE hosts SET alloc_vcpus = alloc_vcpus + ?1, alloc_ram_mb = alloc_ram_mb + ?2,
		alloc_disk_gb = alloc_disk_gb + ?3
		WHERE name = ?4 AND (?5 OR (alloc_vcpus + ?1 <= vcpus * cpu_ratio AND alloc_ram_mb + ?2 <= ram_mb * ram_ratio
			AND alloc_disk_gb + ?3 <= disk_gb * disk_ratio))`, a.VCPUs, a.RAMMB, disk, a.Host, b2i(a.Force))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := getHost(ctx, t.q, a.Host); err != nil {
			return err
		}
		return fmt.Errorf("host %s: %w", a.Host, store.ErrNoCapacity)
	}
	for _, h := range a.Holders() {
		_, err = t.q.ExecContext(ctx, `INSERT INTO allocations(server_id, host, vcpus, ram_mb, disk_gb) VALUES(?,?,?,?,?)`,
			h.ServerID, a.Host, h.VCPUs, h.RAMMB, h.DiskGB)
		if isUnique(err) {
			return fmt.Errorf("allocation of %q: %w", h.ServerID, ecs.ErrConflict)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// AllocationFree gives what server or volume id holds back to its host.
func (t *tx) AllocationFree(ctx context.Context, id string) error {
	var a store.Allocation
	err := t.q.QueryRowContext(ctx, `DELETE FROM allocations WHERE server_id = ? RETURNING host, vcpus, ram_mb, disk_gb`, id).
		Scan(&a.Host, &a.VCPUs, &a.RAMMB, &a.DiskGB)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = t.q.ExecContext(ctx, `UPDATE hosts SET alloc_vcpus = max(alloc_vcpus - ?, 0), alloc_ram_mb = max(alloc_ram_mb - ?, 0),
		alloc_disk_gb = max(alloc_disk_gb - ?, 0) WHERE name = ?`, a.VCPUs, a.RAMMB, a.DiskGB, a.Host)
	return err
}

func (s *Store) ImageHostAdd(ctx context.Context, h store.ImageHost) error {
	_, err := s.w.ExecContext(ctx, `INSERT OR REPLACE INTO image_hosts(image_id, host, file, kernel, initrd) VALUES(?,?,?,?,?)`,
		h.ImageID, h.Host, h.File, h.Kernel, h.Initrd)
	return err
}

func listImageHosts(ctx context.Context, q queryer, imageID string) ([]store.ImageHost, error) {
	rows, err := q.QueryContext(ctx, `SELECT image_id, host, file, kernel, initrd FROM image_hosts WHERE image_id = ? ORDER BY host`, imageID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ImageHost
	for rows.Next() {
		var h store.ImageHost
		if err := rows.Scan(&h.ImageID, &h.Host, &h.File, &h.Kernel, &h.Initrd); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (s *Store) ImageHostList(ctx context.Context, imageID string) ([]store.ImageHost, error) {
	return listImageHosts(ctx, s.r, imageID)
}

func (t *tx) ImageHostList(ctx context.Context, imageID string) ([]store.ImageHost, error) {
	return listImageHosts(ctx, t.q, imageID)
}
