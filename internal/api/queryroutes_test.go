package api

import (
	"slices"
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
)

// queryRoutes names only routes the table has.
func TestQueryRoutesExist(t *testing.T) {
	h := New(Config{Service: cloud.New(cloud.Config{})})
	var keys []string
	for i := range h.table {
		keys = append(keys, routeKey(&h.table[i]))
	}
	for k := range queryRoutes {
		if !slices.Contains(keys, k) {
			t.Errorf("queryRoutes names %q, which is no route", k)
		}
	}
	if len(h.readsQuery) != len(queryRoutes) {
		t.Errorf("%d routes read their query, want %d", len(h.readsQuery), len(queryRoutes))
	}
}
