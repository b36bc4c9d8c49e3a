package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/ecsproject/ecsd/internal/store"
)

func (s *Store) LeaderElect(ctx context.Context, p store.LeaderElectParams) (bool, error) {
	// One statement: the insert, or the take-over of a term that is over
	// or already ours; the write connection makes it atomic.
	now := at(p.Now)
	res, err := s.w.ExecContext(ctx, `INSERT INTO leaders (name, owner, expires) VALUES (?1, ?2, ?3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
		WHERE leaders.owner = excluded.owner OR leaders.owner = '' OR leaders.expires < ?4`,
		p.Name, p.Owner, ms(now.Add(p.TTL)), ms(now))
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *Store) LeaderResign(ctx context.Context, name, owner string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE leaders SET owner = '', expires = 0 WHERE name = ? AND owner = ?`, name, owner)
	return err
}

func (s *Store) LeaderGet(ctx context.Context, name string) (store.Leader, error) {
	l := store.Leader{Name: name}
	var exp int64
	err := s.r.QueryRowContext(ctx, `SELECT owner, expires FROM leaders WHERE name = ?`, name).Scan(&l.Owner, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return l, notFound("leader", name)
	}
	l.Expires = fromMS(exp)
	return l, err
}
