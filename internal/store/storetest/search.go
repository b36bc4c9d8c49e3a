package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// testServerSearch checks the name and ip patterns where a store narrows
// them through an index (pieces of three characters or more): the answer
// is the pattern's, and it follows inserts, renames and deletes.
func testServerSearch(t *testing.T, open opener) {
	b := setup(t, open)
	mk := func(id, name string, n int, ips ...string) ecs.Server {
		s := plainServer(id, projA, name, n)
		for i, ip := range ips {
			s.NICs = append(s.NICs, ecs.NIC{PortID: fmt.Sprintf("port-%s-%d", id, i), SubnetID: fmt.Sprintf("subnet-%d", i), IP: ip})
		}
		return s
	}
	srvs := []ecs.Server{
		mk("srv-01", "frontend-blue", 1, "192.168.10.21", "10.20.30.40"),
		mk("srv-02", "frontend-green", 2, "192.168.10.22"),
		mk("srv-03", "backend[x]*main", 3, "192.168.110.21"),
		mk("srv-04", "résumé-été", 4, "172.16.5.123"),
		mk("srv-05", "100%_off\\sale", 5, "192.168.10.210"),
		mk("srv-06", "frontendXblue", 6, "192.168.1.121"),
	}
	other := plainServer("srv-x", projB, "frontend-blue", 7)
	other.NICs = []ecs.NIC{{PortID: "port-x", SubnetID: "subnet-0", IP: "192.168.10.21"}}
	b.insertServers(t, append(slices.Clone(srvs), other)...)

	check := func(t *testing.T, p store.ServerListParams, want ...string) {
		t.Helper()
		p.ProjectID = projA
		list, total, err := b.s.ServerList(b.ctx, p)
		wantNoErr(t, "ServerList", err)
		if got := serverIDs(list); total != len(want) || !slices.Equal(got, want) {
			t.Fatalf("ServerList(%+v) = %d, %v; want %d, %v", p, total, got, len(want), want)
		}
	}
	cases := []struct {
		name string
		p    store.ServerListParams
		want []string
	}{
		{"name piece", store.ServerListParams{Name: "frontend"}, []string{"srv-06", "srv-02", "srv-01"}},
		{"name pieces and dot", store.ServerListParams{Name: "frontend.blue"}, []string{"srv-06", "srv-01"}},
		{"name pieces in order only", store.ServerListParams{Name: "blue.frontend"}, nil},
		{"name brackets literal", store.ServerListParams{Name: "end[x]*mai"}, []string{"srv-03"}},
		{"name star literal", store.ServerListParams{Name: "backend*"}, nil},
		{"name unicode", store.ServerListParams{Name: "sumé-été"}, []string{"srv-04"}},
		{"name unicode dot", store.ServerListParams{Name: "r.sum"}, []string{"srv-04"}},
		{"name percent underscore backslash", store.ServerListParams{Name: "0%_off\\sa"}, []string{"srv-05"}},
		{"name underscore literal", store.ServerListParams{Name: "100%.off"}, []string{"srv-05"}},
		{"name is case-sensitive", store.ServerListParams{Name: "FRONTEND"}, nil},
		{"ip address", store.ServerListParams{IP: "192.168.10.21"}, []string{"srv-05", "srv-01"}},
		{"ip dot is any character", store.ServerListParams{IP: "168.1.121"}, []string{"srv-06"}},
		{"ip dot over a digit", store.ServerListParams{IP: "168.1.0"}, []string{"srv-03"}},
		{"ip second NIC", store.ServerListParams{IP: "20.30.40"}, []string{"srv-01"}},
		{"ip piece of another NIC's", store.ServerListParams{IP: "123"}, []string{"srv-04"}},
		{"ip and name", store.ServerListParams{IP: "192.168.10.2", Name: "green"}, []string{"srv-02"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { check(t, c.p, c.want...) })
	}

	t.Run("rename", func(t *testing.T) {
		s := srvs[1]
		s.Name = "backend-green"
		b.updateServer(t, s)
		check(t, store.ServerListParams{Name: "frontend-gr"})
		check(t, store.ServerListParams{Name: "backend"}, "srv-03", "srv-02")
		b.updateServer(t, s) // the same name again
		check(t, store.ServerListParams{Name: "backend-gre"}, "srv-02")
	})
	t.Run("delete and reuse", func(t *testing.T) {
		b.write(t, func(tx store.Tx) error { return tx.ServerDelete(b.ctx, "srv-01") })
		check(t, store.ServerListParams{Name: "frontend-blue"})
		check(t, store.ServerListParams{IP: "20.30.40"})
		check(t, store.ServerListParams{IP: "192.168.10.21"}, "srv-05")
		b.insertServers(t, mk("srv-07", "frontend-blue", 8, "10.20.30.40"))
		check(t, store.ServerListParams{Name: "frontend-blue"}, "srv-07")
		check(t, store.ServerListParams{IP: "20.30.40"}, "srv-07")
	})
}

// testServerListTagMatches checks ListServersByTag's filters in the store
// (a key with one of several values, not all of not-tags, a literal name)
// and their paging over more servers than a page.
func testServerListTagMatches(t *testing.T, open opener) {
	b := setup(t, open)
	var srvs []ecs.Server
	for i := range 30 {
		s := plainServer(fmt.Sprintf("srv-%02d", i), projA, fmt.Sprintf("web.%02d", i), i)
		s.Tags = []ecs.Tag{{Key: "env", Value: []string{"prod", "dev", "qa"}[i%3]}}
		if i%2 == 0 {
			s.Tags = append(s.Tags, ecs.Tag{Key: "team", Value: "a"})
		}
		srvs = append(srvs, s)
	}
	other := plainServer("srv-x", projB, "web.99", 40)
	other.Tags = []ecs.Tag{{Key: "env", Value: "prod"}}
	b.insertServers(t, append(slices.Clone(srvs), other)...)

	// want is the ids of srvs that match, newest first.
	want := func(match func(i int) bool) []string {
		var out []string
		for i := len(srvs) - 1; i >= 0; i-- {
			if match(i) {
				out = append(out, srvs[i].ID)
			}
		}
		return out
	}
	cases := []struct {
		name string
		p    store.ServerListParams
		want []string
	}{
		{"key with values", store.ServerListParams{TagMatches: []store.TagMatch{{Key: "env", Values: []string{"prod", "qa"}}}},
			want(func(i int) bool { return i%3 != 1 })},
		{"key, any value", store.ServerListParams{TagMatches: []store.TagMatch{{Key: "team"}}}, want(func(i int) bool { return i%2 == 0 })},
		{"every key", store.ServerListParams{TagMatches: []store.TagMatch{{Key: "team"}, {Key: "env", Values: []string{"dev"}}}},
			want(func(i int) bool { return i%2 == 0 && i%3 == 1 })},
		{"not all of not-tags", store.ServerListParams{NotTagMatches: []store.TagMatch{{Key: "team"}, {Key: "env", Values: []string{"prod"}}}},
			want(func(i int) bool { return !(i%2 == 0 && i%3 == 0) })},
		{"name literal", store.ServerListParams{NameContains: "web.1"}, want(func(i int) bool { return i >= 10 && i < 20 })},
		{"name dot is a dot", store.ServerListParams{NameContains: "b.2"}, want(func(i int) bool { return i >= 20 })},
		{"name dot is not any character", store.ServerListParams{NameContains: "we."}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Page through in pages of 4: the pages join into the whole
			// list, and each carries the count of every match.
			var got []string
			for off := 0; ; off += 4 {
				p := c.p
				p.ProjectID, p.Offset, p.Limit = projA, off, 4
				list, total, err := b.s.ServerList(b.ctx, p)
				wantNoErr(t, "ServerList", err)
				if total != len(c.want) {
					t.Fatalf("ServerList(%+v) total = %d, want %d", p, total, len(c.want))
				}
				if len(list) == 0 {
					break
				}
				got = append(got, serverIDs(list)...)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("pages of %+v = %v, want %v", c.p, got, c.want)
			}
		})
	}
}
