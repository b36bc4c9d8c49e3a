package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

// The trigram indexes of the name and ip list filters (server_search,
// port_search; migration 00010) hold one entry per server name and per
// port address. The store writes them beside the rows, in the same
// transaction: an entry is added with its row, and removed, with the
// value it was made from, before the row changes or goes.

func (t *tx) searchAdd(ctx context.Context, table string, rowid int64, value string) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO `+table+`(rowid, `+searchColumn[table]+`) VALUES(?, ?)`, rowid, value)
	return err
}

func (t *tx) searchRemove(ctx context.Context, table string, rowid int64, value string) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO `+table+`(`+table+`, rowid, `+searchColumn[table]+`) VALUES('delete', ?, ?)`,
		rowid, value)
	return err
}

// searchColumn is the indexed column of each search table.
var searchColumn = map[string]string{"server_search": "name", "port_search": "ip"}

// serverName reads the rowid and name of a server of the project
// (sql.ErrNoRows when there is none).
func (t *tx) serverName(ctx context.Context, id, projectID string) (int64, string, error) {
	var seq int64
	var name string
	err := t.q.QueryRowContext(ctx, `SELECT seq, name FROM servers WHERE id = ? AND project_id = ?`, id, projectID).
		Scan(&seq, &name)
	return seq, name, err
}

// searchRename moves a server's name entry when its name changes.
func (t *tx) searchRename(ctx context.Context, id, projectID, name string) error {
	seq, old, err := t.serverName(ctx, id, projectID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && old == name) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := t.searchRemove(ctx, "server_search", seq, old); err != nil {
		return err
	}
	return t.searchAdd(ctx, "server_search", seq, name)
}

// searchDropServer removes the entries of a server and of its ports.
func (t *tx) searchDropServer(ctx context.Context, id string) error {
	type entry struct {
		table string
		seq   int64
		value string
	}
	var entries []entry
	rows, err := t.q.QueryContext(ctx, `SELECT 'server_search', seq, name FROM servers WHERE id = ?
		UNION ALL SELECT 'port_search', seq, ip FROM ports WHERE server_id = ?`, id, id)
	if err != nil {
		return err
	}
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.table, &e.seq, &e.value); err != nil {
			rows.Close()
			return err
		}
		entries = append(entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range entries {
		if err := t.searchRemove(ctx, e.table, e.seq, e.value); err != nil {
			return err
		}
	}
	return nil
}

// lastID is the rowid of the row an INSERT made (the driver always knows
// it).
func lastID(res sql.Result) int64 {
	id, _ := res.LastInsertId()
	return id
}
