package postgres

import (
	"database/sql"
	"io/fs"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
	"github.com/ecsproject/ecsd/internal/store/storetest"
)

// TestMigrateVolumeAllocations opens a database whose servers held their
// system disks in their own allocation and whose data volumes held
// nothing (storetest.VolumeAllocationsFixture).
func TestMigrateVolumeAllocations(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	storetest.MigrateToBefore(t, db, goose.DialectPostgres, files, "volume_allocations.sql")
	storetest.VolumeAllocationsFixture(t, db)
	db.Close()
	storetest.CheckVolumeAllocationsMigrated(t, openStore(t, dsn))
}
