package postgres

import "time"

// The clock of a shared store is the database's, so that the nodes'
// clocks need not agree: heartbeats, terms and leases are stamped and
// judged by it.

// dbNow is the database's clock in milliseconds since the epoch: the start
// of the current transaction (of the statement, outside Write).
const dbNow = `(extract(epoch from now()) * 1000)::bigint`

// at is the SQL of the time a call is judged at: placeholder p, in
// milliseconds, or the database's clock when p is 0 (a zero Now).
func at(p string) string {
	return `(CASE WHEN ` + p + `::bigint = 0 THEN ` + dbNow + ` ELSE ` + p + `::bigint END)`
}

// msDur is a duration in milliseconds.
func msDur(d time.Duration) int64 { return d.Milliseconds() }
