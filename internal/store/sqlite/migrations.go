package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"

	"github.com/ecsproject/ecsd/internal/store/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateUp brings the database to the latest schema.
func migrateUp(ctx context.Context, db *sql.DB) error {
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	_, err = migrate.Up(ctx, db, migrate.Config{Dialect: goose.DialectSQLite3, Migrations: files, Adopt: adoptRelease})
	return err
}

// adoptRelease recognises a database made before migrations: the issue-3
// release created its tables from one script and set user_version 1, which
// is migration 1.
func adoptRelease(ctx context.Context, db *sql.DB) (int64, error) {
	var tables, version int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'jobs'`).
		Scan(&tables); err != nil {
		return 0, err
	}
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, err
	}
	switch {
	case tables == 0 && version == 0:
		return 0, nil
	case tables == 1 && version == 1:
		return 1, nil
	}
	return 0, fmt.Errorf("unknown database: user_version %d, jobs table %v", version, tables == 1)
}
