package storetest

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

// VolumeAllocationsFixture writes, into a database migrated up to just
// before the volume allocations migration, rows as the code of that
// version left them: a server that held its 10 GB system disk in its own
// allocation, a 30 GB data volume of it that held nothing, and a volume
// created alone (no host). The SQL is the same for both stores.
func VolumeAllocationsFixture(t *testing.T, db *sql.DB) {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO hosts(name, vcpus, ram_mb, disk_gb, cpu_ratio, ram_ratio, disk_ratio, alloc_vcpus, alloc_ram_mb, alloc_disk_gb,
			advertise, driver, heartbeat, created) VALUES('h1', 4, 8192, 100, 1, 1, 1, 1, 512, 10, '', 'sim', 0, 0)`,
		`INSERT INTO allocations(server_id, host, vcpus, ram_mb, disk_gb) VALUES('srv-1', 'h1', 1, 512, 10)`,
		`INSERT INTO volumes(id, project_id, server_id, image_id, size_gb, volume_type, status, device, created, host) VALUES
			('sys-1', 'p', 'srv-1', 'img', 10, 'SSD', 'in-use', '/dev/vda', 0, 'h1'),
			('data-1', 'p', 'srv-1', '', 30, 'SSD', 'in-use', '/dev/vdb', 0, 'h1'),
			('alone-1', 'p', '', '', 5, 'SSD', 'available', '', 0, '')`,
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// CheckVolumeAllocationsMigrated checks a store opened on the rows of
// VolumeAllocationsFixture: every volume with a host holds its disk, the
// server its vCPUs and RAM, and deleting each gives back its part.
func CheckVolumeAllocationsMigrated(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
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
	write := func(fn func(tx store.Tx) error) {
		t.Helper()
		if err := s.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	want("after the migration", 1, 40)
	write(func(tx store.Tx) error { return tx.ServerDelete(ctx, "srv-1") })
	want("after the server's delete", 0, 40)
	write(func(tx store.Tx) error { return tx.VolumeDelete(ctx, "data-1") })
	want("after the data volume's delete", 0, 10)
	write(func(tx store.Tx) error { return tx.VolumeDelete(ctx, "sys-1") })
	want("after the system volume's delete", 0, 0)
}

// MigrateToBefore applies to db the migrations of files (a store's, in
// goose dialect) up to the one before the migration NNNNN_name.
func MigrateToBefore(t *testing.T, db *sql.DB, dialect goose.Dialect, files fs.FS, name string) {
	t.Helper()
	p, err := goose.NewProvider(dialect, db, files, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	var version int64
	for _, src := range p.ListSources() {
		num, rest, _ := strings.Cut(filepath.Base(src.Path), "_")
		if v, err := strconv.ParseInt(num, 10, 64); err == nil && rest == name {
			version = v
		}
	}
	if version == 0 {
		t.Fatalf("no migration NNNNN_%s", name)
	}
	if _, err := p.UpTo(context.Background(), version-1); err != nil {
		t.Fatal(err)
	}
}
