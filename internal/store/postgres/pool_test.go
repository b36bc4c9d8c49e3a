package postgres

import (
	"strings"
	"testing"
)

// The pool is as large as the DSN's pool_max_conns, else DefaultMaxConns
// (not pgxpool's 4); Config.MaxConns wins over both.
func TestPoolSize(t *testing.T) {
	t.Parallel()
	dsn := freshDB(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	for _, tt := range []struct {
		name string
		dsn  string
		max  int32
		want int32
	}{
		{"default", dsn, 0, DefaultMaxConns()},
		{"pool_max_conns in the URL", dsn + sep + "pool_max_conns=7", 0, 7},
		{"Config.MaxConns", dsn + sep + "pool_max_conns=7", 3, 3},
	} {
		s, err := Open(t.Context(), Config{DSN: tt.dsn, MaxConns: tt.max, Logger: quiet})
		if err != nil {
			t.Fatalf("%s: Open: %v", tt.name, err)
		}
		if got := s.pool.Config().MaxConns; got != tt.want {
			t.Errorf("%s: pool of %d connections, want %d", tt.name, got, tt.want)
		}
		s.Close()
	}
	if DefaultMaxConns() < 16 {
		t.Errorf("DefaultMaxConns() = %d, want at least 16", DefaultMaxConns())
	}
	for _, tt := range []struct {
		dsn  string
		want bool
	}{
		{"postgres://u@h/db?sslmode=disable&pool_max_conns=9", true},
		{"postgresql://u@h/db?pool_max_conns=9", true},
		{"postgres://u@h/db?sslmode=disable", false},
		{"postgres://u@h/pool_max_conns", false},
		{"host=h user=u pool_max_conns=9", true},
		{"host=h user=u", false},
	} {
		if got := dsnHas(tt.dsn, "pool_max_conns"); got != tt.want {
			t.Errorf("dsnHas(%q) = %v, want %v", tt.dsn, got, tt.want)
		}
	}
}
