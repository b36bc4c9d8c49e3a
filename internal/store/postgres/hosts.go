package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// ---- hosts, allocations and image hosts

// hostCols are a host's columns, its heartbeat's age by the database's
// clock and its server count; hostColsUncounted leave the count out (0),
// for the create path, which does not need it.
const (
	hostColsUncounted = `name, vcpus, ram_mb, disk_gb, cpu_ratio, ram_ratio, disk_ratio, alloc_vcpus, alloc_ram_mb,
	alloc_disk_gb, advertise, driver, heartbeat, created, CASE WHEN heartbeat = 0 THEN 0 ELSE ` + dbNow + ` - heartbeat END, `
	hostCols = hostColsUncounted + `(SELECT count(*) FROM servers WHERE servers.host = hosts.name)`
)

func scanHost(sc pgx.Row) (store.Host, error) {
	var h store.Host
	var beat, created, age int64
	err := sc.Scan(&h.Name, &h.VCPUs, &h.RAMMB, &h.DiskGB, &h.CPURatio, &h.RAMRatio, &h.DiskRatio, &h.AllocVCPUs, &h.AllocRAMMB,
		&h.AllocDiskGB, &h.Advertise, &h.Driver, &beat, &created, &age, &h.Servers)
	h.Heartbeat, h.Created, h.Age = fromMS(beat), fromMS(created), time.Duration(age)*time.Millisecond
	return h, err
}

func (s *Store) HostUpsert(ctx context.Context, h store.Host) error {
	_, err := s.db.Exec(ctx, `INSERT INTO hosts(name, vcpus, ram_mb, disk_gb, cpu_ratio, ram_ratio, disk_ratio, advertise,
		driver, heartbeat, created) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,`+at("$10")+`,`+at("$11")+`)
		ON CONFLICT (name) DO UPDATE SET vcpus = EXCLUDED.vcpus, ram_mb = EXCLUDED.ram_mb, disk_gb = EXCLUDED.disk_gb,
			cpu_ratio = EXCLUDED.cpu_ratio, ram_ratio = EXCLUDED.ram_ratio, disk_ratio = EXCLUDED.disk_ratio,
			advertise = EXCLUDED.advertise, driver = EXCLUDED.driver, heartbeat = EXCLUDED.heartbeat`,
		h.Name, h.VCPUs, h.RAMMB, h.DiskGB, h.CPURatio, h.RAMRatio, h.DiskRatio, h.Advertise, h.Driver, ms(h.Heartbeat), ms(h.Created))
	return err
}

func (s *Store) HostHeartbeat(ctx context.Context, name string, beat time.Time) error {
	if unstorable(name) {
		return notFound("host", name)
	}
	tag, err := s.db.Exec(ctx, `UPDATE hosts SET heartbeat = `+at("$1")+` WHERE name = $2`, ms(beat), name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound("host", name)
	}
	return nil
}

func getHost(ctx context.Context, q querier, name string) (store.Host, error) {
	if unstorable(name) {
		return store.Host{}, notFound("host", name)
	}
	h, err := scanHost(q.QueryRow(ctx, `SELECT `+hostCols+` FROM hosts WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return h, notFound("host", name)
	}
	return h, err
}

func listHosts(ctx context.Context, q querier, cols string) ([]store.Host, error) {
	rows, err := q.Query(ctx, `SELECT `+cols+` FROM hosts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Host, error) { return scanHost(r) })
}

func (s *Store) HostGet(ctx context.Context, name string) (store.Host, error) {
	return getHost(ctx, s.db, name)
}
func (s *Store) HostList(ctx context.Context) ([]store.Host, error) {
	return listHosts(ctx, s.db, hostCols)
}

// HostList in a transaction does not lock the hosts: placement reads them
// to choose, and HostAllocate's conditional update is what guards the
// capacity.
func (t *tx) HostList(ctx context.Context) ([]store.Host, error) {
	return listHosts(ctx, t.q, hostColsUncounted+"0")
}

// HostAllocate is one UPDATE whose WHERE clause is the capacity check.
// Under READ COMMITTED, an UPDATE that finds the row locked by another
// transaction waits for it and then re-evaluates its WHERE clause on the
// committed row, so of any number of concurrent reservations on one host
// (on any node) only those that fit pass, and none passes the limit.
//
// A create of several servers reserves on several hosts, in the order
// placement picks them; two such transactions taking the same rows in
// different orders would deadlock (PostgreSQL aborts one after its
// deadlock_timeout). So the first reservation of a transaction first locks
// every host row in name order: reservations queue instead.
func (t *tx) HostAllocate(ctx context.Context, a store.Allocation) error {
	rows := a.Holders()
	for _, h := range append(rows, store.Allocation{ServerID: a.Host}) {
		if unstorable(h.ServerID) {
			return notFound("host", a.Host)
		}
	}
	if !t.hostsLocked {
		if _, err := t.q.Exec(ctx, `SELECT name FROM hosts ORDER BY name FOR UPDATE`); err != nil {
			return err
		}
		t.hostsLocked = true
	}
	tag, err := t.q.Exec(ctx, `UPDATE hosts SET alloc_vcpus = alloc_vcpus + $1, alloc_ram_mb = alloc_ram_mb + $2,
		alloc_disk_gb = alloc_disk_gb + $3
		WHERE name = $4 AND ($5 OR (alloc_vcpus + $1 <= vcpus * cpu_ratio AND alloc_ram_mb + $2 <= ram_mb * ram_ratio
			AND alloc_disk_gb + $3 <= disk_gb * disk_ratio))`, a.VCPUs, a.RAMMB, a.TotalDiskGB(), a.Host, a.Force)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		if _, err := getHost(ctx, t.q, a.Host); err != nil {
			return err
		}
		return fmt.Errorf("host %s: %w", a.Host, store.ErrNoCapacity)
	}
	for _, h := range rows {
		_, err = t.q.Exec(ctx, `INSERT INTO allocations(server_id, host, vcpus, ram_mb, disk_gb) VALUES($1,$2,$3,$4,$5)`,
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
	if unstorable(id) {
		return nil
	}
	_, err := t.q.Exec(ctx, `WITH freed AS (DELETE FROM allocations WHERE server_id = $1 RETURNING host, vcpus, ram_mb, disk_gb)
		UPDATE hosts SET alloc_vcpus = greatest(alloc_vcpus - freed.vcpus, 0), alloc_ram_mb = greatest(alloc_ram_mb - freed.ram_mb, 0),
			alloc_disk_gb = greatest(alloc_disk_gb - freed.disk_gb, 0)
		FROM freed WHERE hosts.name = freed.host`, id)
	return err
}

func (s *Store) ImageHostAdd(ctx context.Context, h store.ImageHost) error {
	_, err := s.db.Exec(ctx, `INSERT INTO image_hosts(image_id, host, file, kernel, initrd) VALUES($1,$2,$3,$4,$5)
		ON CONFLICT (image_id, host) DO UPDATE SET file = EXCLUDED.file, kernel = EXCLUDED.kernel, initrd = EXCLUDED.initrd`,
		h.ImageID, h.Host, h.File, h.Kernel, h.Initrd)
	return err
}

func listImageHosts(ctx context.Context, q querier, imageID string) ([]store.ImageHost, error) {
	if unstorable(imageID) {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT image_id, host, file, kernel, initrd FROM image_hosts WHERE image_id = $1 ORDER BY host`, imageID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ImageHost, error) {
		var h store.ImageHost
		err := r.Scan(&h.ImageID, &h.Host, &h.File, &h.Kernel, &h.Initrd)
		return h, err
	})
}

func (s *Store) ImageHostList(ctx context.Context, imageID string) ([]store.ImageHost, error) {
	return listImageHosts(ctx, s.db, imageID)
}

func (t *tx) ImageHostList(ctx context.Context, imageID string) ([]store.ImageHost, error) {
	return listImageHosts(ctx, t.q, imageID)
}
