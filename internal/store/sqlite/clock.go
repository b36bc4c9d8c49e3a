package sqlite

import "time"

// at is the time a call is judged at: t, or this process's clock when t
// is zero (one process uses an SQLite store, so its clock is the store's).
func at(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
