package sqlite

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/ecsproject/ecsd/internal/store/storetest"
)

// TestMigrateVolumeAllocations opens a database whose servers held their
// system disks in their own allocation and whose data volumes held
// nothing (storetest.VolumeAllocationsFixture).
func TestMigrateVolumeAllocations(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ecsd.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	storetest.MigrateToBefore(t, db, goose.DialectSQLite3, files, "volume_allocations.sql")
	storetest.VolumeAllocationsFixture(t, db)
	db.Close()
	storetest.CheckVolumeAllocationsMigrated(t, openAt(t, path))
}
