// Package migrate applies a store's numbered SQL migrations at start-up,
// with goose. Each store keeps its own migrations (embedded files named
// NNNNN_what.sql, goose annotations) and calls Up when it opens; the applied
// versions are recorded in the database (table goose_db_version), so every
// migration runs once, in order, in its own transaction.
//
// Adopt lets a store take over a database made before migrations existed:
// it reports which version such a database is at, and Up records versions
// up to it as applied without running them.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// Config says how to migrate one database.
type Config struct {
	// Dialect is the database's goose dialect (goose.DialectSQLite3,
	// goose.DialectPostgres).
	Dialect goose.Dialect
	// Migrations holds the NNNNN_what.sql files, at its root.
	Migrations fs.FS
	// Adopt, when set, is called if the database has no migration record
	// yet. It returns the version that an existing, unversioned database is
	// already at (0 for an empty database); versions up to it are recorded
	// as applied without running them.
	Adopt func(ctx context.Context, db *sql.DB) (int64, error)
	// Logger receives one line per migration applied (default slog.Default).
	Logger *slog.Logger
}

// Up applies every pending migration and returns the database's version.
func Up(ctx context.Context, db *sql.DB, cfg Config) (int64, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	vs, err := database.NewStore(cfg.Dialect, goose.DefaultTablename)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if cfg.Adopt != nil {
		if err := adopt(ctx, db, vs, cfg); err != nil {
			return 0, err
		}
	}
	p, err := goose.NewProvider(cfg.Dialect, db, cfg.Migrations, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	before, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	// Making a new database is routine; upgrading one is worth a line each.
	level := slog.LevelInfo
	if before == 0 {
		level = slog.LevelDebug
	}
	res, err := p.Up(ctx)
	for _, r := range res {
		if r.Error == nil {
			cfg.Logger.Log(ctx, level, "database migration applied", "version", r.Source.Version, "file", r.Source.Path,
				"duration", r.Duration)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	return v, nil
}

// adopt records versions 1..n as applied on a database without a migration
// record that cfg.Adopt says is at version n.
func adopt(ctx context.Context, db *sql.DB, vs database.Store, cfg Config) error {
	_, err := vs.GetLatestVersion(ctx, db)
	if err == nil || errors.Is(err, database.ErrVersionNotFound) {
		return nil // the version table exists: goose knows where it is
	}
	n, err := cfg.Adopt(ctx, db)
	if err != nil {
		return fmt.Errorf("migrate: inspect unversioned database: %w", err)
	}
	if n <= 0 {
		return nil // empty: goose makes its table and applies everything
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: adopt: %w", err)
	}
	defer tx.Rollback()
	if err := vs.CreateVersionTable(ctx, tx); err != nil {
		return fmt.Errorf("migrate: adopt: create version table: %w", err)
	}
	for v := int64(0); v <= n; v++ {
		if err := vs.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return fmt.Errorf("migrate: adopt: record version %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: adopt: %w", err)
	}
	cfg.Logger.Info("adopted a database made before versioned migrations", "version", n)
	return nil
}
