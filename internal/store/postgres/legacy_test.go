package postgres

import (
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// TestLegacyAddresses runs migration 10 over servers made as before issue
// 11 (one address, no NICs; three of them share 192.168.1.2): the oldest
// one's address goes in ports with subnet "" and store.LegacyPortID's
// port id (computed in SQL), the other two in address_conflicts, and the
// ip filters find all of them.
func TestLegacyAddresses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ids := []string{"srv-old-1", "srv-old-2", "srv-old-3", "srv-ünï-4", "srv-new"}
	err := s.Write(ctx, func(tx store.Tx) error {
		for i, id := range ids {
			srv := ecs.Server{ID: id, ProjectID: "p1", UserID: "u1", Name: id, VMState: ecs.VMActive, Addr: "192.168.1.2",
				Created: t0.Add(time.Duration(i) * time.Second), Updated: t0}
			if id == "srv-ünï-4" {
				srv.Addr = "192.168.1.3"
			}
			if id == "srv-new" { // made since issue 11: a NIC in a subnet
				srv.NICs = []ecs.NIC{{PortID: "port-new", SubnetID: "subnet-1", IP: "192.168.1.2"}}
			}
			if err := tx.ServerInsert(ctx, &srv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 9); err != nil {
		t.Fatalf("down to 9: %v", err)
	}
	if _, err := p.UpTo(ctx, 10); err != nil {
		t.Fatalf("up to 10: %v", err)
	}

	for _, c := range []struct{ id, subnet, ip string }{{"srv-old-1", "", "192.168.1.2"}, {"srv-ünï-4", "", "192.168.1.3"}} {
		var port, subnet, ip string
		if err := s.db.QueryRow(ctx, `SELECT port_id, subnet_id, ip FROM ports WHERE server_id = $1`, c.id).
			Scan(&port, &subnet, &ip); err != nil {
			t.Fatalf("port of %s: %v", c.id, err)
		}
		if port != store.LegacyPortID(c.id) || subnet != c.subnet || ip != c.ip {
			t.Fatalf("port of %s = %s %q %s; want %s %q %s", c.id, port, subnet, ip, store.LegacyPortID(c.id), c.subnet, c.ip)
		}
	}
	for _, id := range []string{"srv-old-2", "srv-old-3"} {
		var heldBy, port string
		if err := s.db.QueryRow(ctx, `SELECT held_by, port_id FROM address_conflicts WHERE server_id = $1 AND ip = '192.168.1.2'`, id).
			Scan(&heldBy, &port); err != nil {
			t.Fatalf("conflict of %s: %v", id, err)
		}
		if heldBy != "srv-old-1" || port != store.LegacyPortID(id) {
			t.Fatalf("conflict of %s = held by %s, port %s; want srv-old-1, %s", id, heldBy, port, store.LegacyPortID(id))
		}
	}
	for _, c := range []struct {
		p    store.ServerListParams
		want int
	}{{store.ServerListParams{IPEq: "192.168.1.2"}, 4}, {store.ServerListParams{IP: "168.1.2"}, 4},
		{store.ServerListParams{IP: "192.168.1"}, 5}, {store.ServerListParams{IPEq: "192.168.1.3"}, 1}} {
		c.p.ProjectID = "p1"
		list, n, err := s.ServerList(ctx, c.p)
		if err != nil || n != c.want || len(list) != c.want {
			t.Fatalf("ServerList(%+v) = %d, %d rows, %v; want %d", c.p, n, len(list), err, c.want)
		}
	}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerDelete(ctx, "srv-old-3") }); err != nil {
		t.Fatal(err)
	}
	if _, n, err := s.ServerList(ctx, store.ServerListParams{ProjectID: "p1", IPEq: "192.168.1.2"}); err != nil || n != 3 {
		t.Fatalf("ServerList(ip_eq) after a delete = %d, %v; want 3", n, err)
	}
}
