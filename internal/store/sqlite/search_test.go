package sqlite

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// TestSearchIndex checks that the name and ip patterns with a piece of
// three characters go through the trigram tables (not a scan of the
// project's rows), that shorter ones do not (FTS5 would scan its whole
// table), and that the tables agree with the rows after inserts, renames
// and deletes (FTS5's integrity-check compares them).
func TestSearchIndex(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := t.Context()
	err := s.Write(ctx, func(tx store.Tx) error {
		for i := range 20 {
			srv := server(fmt.Sprintf("srv-%02d", i))
			srv.Name = fmt.Sprintf("web-%02d", i)
			srv.NICs = []ecs.NIC{{PortID: fmt.Sprintf("port-%02d", i), SubnetID: "subnet-1", IP: fmt.Sprintf("10.0.0.%d", i+2)},
				{PortID: fmt.Sprintf("port-b-%02d", i), SubnetID: "subnet-2", IP: fmt.Sprintf("10.1.0.%d", i+2)}}
			if err := tx.ServerInsert(ctx, &srv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, func(tx store.Tx) error {
		for i := range 10 {
			srv, err := tx.ServerGetByID(ctx, fmt.Sprintf("srv-%02d", i))
			if err != nil {
				return err
			}
			srv.Name = fmt.Sprintf("db-%02d", i)
			if err := tx.ServerUpdate(ctx, &srv); err != nil {
				return err
			}
			if i%2 == 0 {
				if err := tx.ServerDelete(ctx, srv.ID); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"server_search", "port_search"} {
		if _, err := s.wdb.ExecContext(ctx, `INSERT INTO `+table+`(`+table+`, rank) VALUES('integrity-check', 1)`); err != nil {
			t.Fatalf("%s integrity-check: %v", table, err)
		}
	}
	list, n, err := s.ServerList(ctx, store.ServerListParams{ProjectID: "p1", Name: "db-0"})
	if err != nil || n != 5 || len(list) != 5 {
		t.Fatalf("ServerList(name db-0) = %d, %d rows, %v; want the 5 renamed and kept", n, len(list), err)
	}

	for _, c := range []struct {
		p     store.ServerListParams
		table string // "" for none
	}{
		{store.ServerListParams{Name: "web-1"}, "server_search"},
		{store.ServerListParams{Name: "w.b.1"}, ""},
		{store.ServerListParams{IP: "10.1.0.100"}, "port_search"},
		{store.ServerListParams{IP: "10.0.0.1"}, ""},
	} {
		c.p.ProjectID = "p1"
		where, args := serverFilter(c.p)
		rows, err := s.rdb.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT count(*) FROM servers`+where, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		got := strings.Join(plan, "; ")
		for _, table := range []string{"server_search", "port_search"} {
			if uses := strings.Contains(got, table); uses != (table == c.table) {
				t.Errorf("plan of %+v = %q: uses %s %v, want %v", c.p, got, table, uses, table == c.table)
			}
		}
	}
}

// TestAnalyzeLeavesSearchTables: Analyze gathers statistics of the tables
// but not of FTS5's shadow tables (whose statistics would make FTS5
// prepare its lookups again at every binding).
func TestAnalyzeLeavesSearchTables(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := t.Context()
	err := s.Write(ctx, func(tx store.Tx) error {
		for i := range 50 {
			srv := server(fmt.Sprintf("srv-%02d", i))
			srv.NICs = []ecs.NIC{{PortID: fmt.Sprintf("port-%02d", i), SubnetID: "subnet-1", IP: fmt.Sprintf("10.0.0.%d", i+2)}}
			if err := tx.ServerInsert(ctx, &srv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Analyze(ctx); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	var servers, search int
	if err := s.wdb.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE tbl = 'servers'),
		count(*) FILTER (WHERE tbl LIKE '%search%') FROM sqlite_stat1`).Scan(&servers, &search); err != nil {
		t.Fatal(err)
	}
	if servers == 0 || search != 0 {
		t.Fatalf("statistics rows: servers %d, search tables %d; want some, none", servers, search)
	}
}

// TestSearchMigrationDownUp takes a database with servers down below the
// search tables (migration 10: ports loses its seq column) and up again:
// the rows survive, the search tables are rebuilt from them and agree
// with them, and the filters find the servers.
func TestSearchMigrationDownUp(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := t.Context()
	err := s.Write(ctx, func(tx store.Tx) error {
		for i := range 10 {
			srv := server(fmt.Sprintf("srv-%02d", i))
			srv.Name = fmt.Sprintf("frontend-%02d", i)
			srv.NICs = []ecs.NIC{{PortID: fmt.Sprintf("port-%02d", i), SubnetID: "subnet-1", IP: fmt.Sprintf("10.0.0.%d", 100+i)}}
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
	p, err := goose.NewProvider(goose.DialectSQLite3, s.wdb, files, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 9); err != nil {
		t.Fatalf("down to 9: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	for _, table := range []string{"server_search", "port_search"} {
		if _, err := s.wdb.ExecContext(ctx, `INSERT INTO `+table+`(`+table+`, rank) VALUES('integrity-check', 1)`); err != nil {
			t.Fatalf("%s integrity-check: %v", table, err)
		}
	}
	for _, c := range []struct {
		p    store.ServerListParams
		want int
	}{
		{store.ServerListParams{Name: "frontend-0"}, 10},
		{store.ServerListParams{Name: "end-07"}, 1},
		{store.ServerListParams{IP: "0.0.100"}, 1},
		{store.ServerListParams{IP: "10.0.0.10"}, 10},
		{store.ServerListParams{IPEq: "10.0.0.105"}, 1},
	} {
		c.p.ProjectID = "p1"
		_, n, err := s.ServerList(ctx, c.p)
		if err != nil || n != c.want {
			t.Fatalf("ServerList(%+v) after down and up = %d, %v; want %d", c.p, n, err, c.want)
		}
	}
}
