package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/ecsproject/ecsd/internal/store/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockID is the key of the session advisory lock held while
// migrations run: the bytes of "ecsdmigr", a constant no other user of the
// database takes.
const migrateLockID int64 = 0x6563_7364_6d69_6772 // "ecsdmigr"

// migrateUp brings the database to the latest schema. Goose's own
// PostgreSQL locker polls (every 5 s at best); a blocking
// pg_advisory_lock lets the nodes that wait go on as soon as the first one
// is done. The lock is a session lock on a connection of its own, held
// while goose runs on others of the pool; it is released when that
// connection is, even if the process dies.
func (s *Store) migrateUp(ctx context.Context) error {
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockID); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockID); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // closing the session drops its locks
		}
	}()
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	_, err = migrate.Up(ctx, db, migrate.Config{Dialect: goose.DialectPostgres, Migrations: files, Logger: s.log})
	return err
}
