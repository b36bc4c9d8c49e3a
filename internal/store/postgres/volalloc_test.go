package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
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
	ctx := context.Background()
	dsn := pgtest.Database(t, "")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.ListSources() {
		names = append(names, filepath.Base(s.Path))
	}
	if _, err := p.UpTo(ctx, storetest.MigrationVersion(t, names, "volume_allocations.sql")-1); err != nil {
		t.Fatal(err)
	}
	storetest.VolumeAllocationsFixture(t, db)
	db.Close()
	storetest.CheckVolumeAllocationsMigrated(t, openStore(t, dsn))
}
