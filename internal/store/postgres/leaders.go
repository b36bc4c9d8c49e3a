package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/ecsproject/ecsd/internal/store"
)

func (s *Store) LeaderElect(ctx context.Context, p store.LeaderElectParams) (bool, error) {
	// One statement: the insert, or the take-over of a term that is over
	// or already ours. Concurrent electors serialise on the row (the
	// conflicting insert waits for the other's commit, then re-checks the
	// WHERE against the committed row).
	tag, err := s.db.Exec(ctx, `INSERT INTO leaders (name, owner, expires) VALUES ($1, $2, `+at("$4")+` + $3::bigint)
		ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires = EXCLUDED.expires
		WHERE leaders.owner = EXCLUDED.owner OR leaders.owner = '' OR leaders.expires < `+at("$4"),
		p.Name, p.Owner, msDur(p.TTL), ms(p.Now))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (s *Store) LeaderResign(ctx context.Context, name, owner string) error {
	_, err := s.db.Exec(ctx, `UPDATE leaders SET owner = '', expires = 0 WHERE name = $1 AND owner = $2`, name, owner)
	return err
}

func (s *Store) LeaderGet(ctx context.Context, name string) (store.Leader, error) {
	l := store.Leader{Name: name}
	if unstorable(name) {
		return l, notFound("leader", name)
	}
	var exp int64
	err := s.db.QueryRow(ctx, `SELECT owner, expires FROM leaders WHERE name = $1`, name).Scan(&l.Owner, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, notFound("leader", name)
	}
	l.Expires = fromMS(exp)
	return l, err
}
