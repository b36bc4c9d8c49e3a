package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ecsproject/ecsd/internal/store"
)

// unavailable reports whether err says the database cannot be reached or
// is not serving (connection refused or lost, server shutting down or
// starting, too many connections): a condition that passes, unlike an
// error of the statement itself.
func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin or crash shutdown, cannot connect now
			pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// classify wraps err in store.ErrUnavailable when it says the database is
// out of reach, unless ctx ended (the caller gave up; that is no outage).
func classify(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, store.ErrUnavailable) || !unavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// dbq runs queries on a pool or a transaction and classifies their errors.
type dbq struct{ q querier }

func (d dbq) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := d.q.Exec(ctx, sql, args...)
	return tag, classify(ctx, err)
}

func (d dbq) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := d.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, classify(ctx, err)
	}
	return classifiedRows{rows, ctx}, nil
}

func (d dbq) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return classifiedRow{d.q.QueryRow(ctx, sql, args...), ctx}
}

type classifiedRow struct {
	r   pgx.Row
	ctx context.Context
}

func (r classifiedRow) Scan(dest ...any) error { return classify(r.ctx, r.r.Scan(dest...)) }

type classifiedRows struct {
	pgx.Rows
	ctx context.Context
}

func (r classifiedRows) Err() error { return classify(r.ctx, r.Rows.Err()) }

func (r classifiedRows) Scan(dest ...any) error { return classify(r.ctx, r.Rows.Scan(dest...)) }
