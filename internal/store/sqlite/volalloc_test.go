package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/ecsproject/ecsd/internal/store"
)

// migrationVersion is the version of the migration file whose name ends
// with suffix.
func migrationVersion(t *testing.T, suffix string) int64 {
	t.Helper()
	names, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range names {
		if strings.HasSuffix(e.Name(), suffix) {
			v, err := strconv.ParseInt(strings.SplitN(e.Name(), "_", 2)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no migration *%s", suffix)
	return 0
}

// TestMigrateVolumeAllocations opens a database whose servers held their
// system disks in their own allocation and whose data volumes held
// nothing: after the migration every volume with a host holds its disk,
// servers hold their vCPUs and RAM, and deleting each gives back its part.
func TestMigrateVolumeAllocations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ecsd.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, files, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, migrationVersion(t, "_volume_allocations.sql")-1); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO hosts(name, vcpus, ram_mb, disk_gb, cpu_ratio, ram_ratio, disk_ratio, alloc_vcpus, alloc_ram_mb, alloc_disk_gb,
			advertise, driver, heartbeat, created) VALUES('h1', 4, 8192, 100, 1, 1, 1, 1, 512, 10, '', 'sim', 0, 0)`,
		`INSERT INTO allocations(server_id, host, vcpus, ram_mb, disk_gb) VALUES('srv-1', 'h1', 1, 512, 10)`,
		`INSERT INTO volumes(id, project_id, server_id, image_id, size_gb, volume_type, status, device, created, host) VALUES
			('sys-1', 'p', 'srv-1', 'img', 10, 'SSD', 'in-use', '/dev/vda', 0, 'h1'),
			('data-1', 'p', 'srv-1', '', 30, 'SSD', 'in-use', '/dev/vdb', 0, 'h1'),
			('alone-1', 'p', '', '', 5, 'SSD', 'available', '', 0, '')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openAt(t, path)
	want := func(what string, vcpus int, diskGB int64) {
		t.Helper()
		h, err := s.HostGet(ctx, "h1")
		if err != nil {
			t.Fatal(err)
		}
		if h.AllocVCPUs != vcpus || h.AllocDiskGB != diskGB {
			t.Fatalf("%s: host holds %d vCPUs and %d GB, want %d and %d", what, h.AllocVCPUs, h.AllocDiskGB, vcpus, diskGB)
		}
	}
	want("after the migration", 1, 40)
	write := func(fn func(tx store.Tx) error) {
		t.Helper()
		if err := s.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(tx store.Tx) error { return tx.ServerDelete(ctx, "srv-1") })
	want("after the server's delete", 0, 40)
	write(func(tx store.Tx) error { return tx.VolumeDelete(ctx, "data-1") })
	want("after the data volume's delete", 0, 10)
	write(func(tx store.Tx) error { return tx.VolumeDelete(ctx, "sys-1") })
	want("after the system volume's delete", 0, 0)
}
