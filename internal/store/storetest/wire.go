package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// testServerListFilters checks the filters of the API's server list: each
// must pick exactly the servers it names, alone and together, in projA only.
func testServerListFilters(t *testing.T, open opener) {
	b := setup(t, open)
	type row struct {
		id, flavor, ip, reservation string
		tags                        []ecs.Tag
	}
	rows := []row{
		{"srv-01", "s6.small.1", "192.168.0.2", "r-one", []ecs.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "a"}}},
		{"srv-02", "s6.small.1", "192.168.0.3", "r-one", []ecs.Tag{{Key: "env", Value: "dev"}}},
		{"srv-03", "s6.large.2", "192.168.0.21", "r-two", []ecs.Tag{{Key: "env", Value: "prod"}}},
		{"srv-04", "s6.large.2", "192.168.1.2", "r-two", nil},
		{"srv-05", "t6.tiny.1", "10.0.0.2", "r-three", []ecs.Tag{{Key: "team", Value: "b"}}},
	}
	var srvs []ecs.Server
	for i, r := range rows {
		s := plainServer(r.id, projA, "web-"+r.id, i)
		s.FlavorID, s.ReservationID, s.Tags, s.Addr = r.flavor, r.reservation, r.tags, r.ip
		s.NICs = []ecs.NIC{{PortID: "port-" + r.id, SubnetID: "subnet-1", IP: r.ip}}
		srvs = append(srvs, s)
	}
	// Another project: same flavor, address, tags and reservation, never
	// listed for projA.
	other := plainServer("srv-x", projB, "web-srv-x", 9)
	other.FlavorID, other.ReservationID = "s6.small.1", "r-one"
	other.NICs = []ecs.NIC{{PortID: "port-x", SubnetID: "subnet-1", IP: "192.168.0.2"}}
	other.Tags = []ecs.Tag{{Key: "env", Value: "prod"}}
	b.insertServers(t, append(srvs, other)...)

	cases := []struct {
		name string
		p    store.ServerListParams
		want []string
	}{
		{"flavor", store.ServerListParams{FlavorID: "t6.tiny.1"}, []string{"srv-05"}},
		{"flavor is exact", store.ServerListParams{FlavorID: "s6.small"}, nil},
		{"ip_eq", store.ServerListParams{IPEq: "192.168.0.2"}, []string{"srv-01"}},
		{"ip_eq is exact", store.ServerListParams{IPEq: "192.168.0."}, nil},
		{"ip contains", store.ServerListParams{IP: "192.168.0.2"}, []string{"srv-03", "srv-01"}},
		{"ip dot is any character", store.ServerListParams{IP: "10.0.0"}, []string{"srv-05"}},
		{"tag key=value", store.ServerListParams{Tags: []string{"env=prod"}}, []string{"srv-03", "srv-01"}},
		{"tag key", store.ServerListParams{Tags: []string{"team"}}, []string{"srv-05", "srv-01"}},
		{"tags all", store.ServerListParams{Tags: []string{"env=prod", "team=a"}}, []string{"srv-01"}},
		{"tag no match", store.ServerListParams{Tags: []string{"env=qa"}}, nil},
		{"not-tags", store.ServerListParams{NotTags: []string{"env=prod"}}, []string{"srv-05", "srv-04", "srv-02"}},
		{"not-tags all of them", store.ServerListParams{NotTags: []string{"env=prod", "team=a"}},
			[]string{"srv-05", "srv-04", "srv-03", "srv-02"}},
		{"server ids", store.ServerListParams{ServerIDs: []string{"srv-02", "srv-04", "srv-x", "nope"}}, []string{"srv-04", "srv-02"}},
		{"reservation", store.ServerListParams{ReservationID: "r-two"}, []string{"srv-04", "srv-03"}},
		{"together", store.ServerListParams{FlavorID: "s6.small.1", Tags: []string{"env"}, ReservationID: "r-one", IP: "192"},
			[]string{"srv-02", "srv-01"}},
		{"together, one", store.ServerListParams{FlavorID: "s6.small.1", Tags: []string{"env=dev"}}, []string{"srv-02"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := c.p
			p.ProjectID = projA
			list, total, err := b.s.ServerList(b.ctx, p)
			wantNoErr(t, "ServerList", err)
			if got := serverIDs(list); total != len(c.want) || !slices.Equal(got, c.want) {
				t.Fatalf("ServerList(%+v) = %d, %v; want %d, %v", p, total, got, len(c.want), c.want)
			}
		})
	}

	t.Run("marker", func(t *testing.T) {
		t.Parallel()
		all := []string{"srv-05", "srv-04", "srv-03", "srv-02", "srv-01"}
		for i, m := range all {
			list, total, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, Marker: m, Limit: 2})
			wantNoErr(t, "ServerList", err)
			want := all[i+1 : min(i+3, len(all))]
			if got := serverIDs(list); total != 5 || !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("marker %s: %d, %v; want 5, %v", m, total, got, want)
			}
		}
		list, total, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, Marker: "srv-04", FlavorID: "s6.small.1"})
		wantNoErr(t, "ServerList", err)
		if got := serverIDs(list); total != 2 || !slices.Equal(got, []string{"srv-02", "srv-01"}) {
			t.Fatalf("marker with a filter: %d, %v", total, got)
		}
		for _, m := range []string{"nope", "srv-x"} {
			_, _, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, Marker: m})
			wantErr(t, fmt.Sprintf("ServerList with marker %s of no server of the project", m), err, ecs.ErrNotFound)
		}
	})
}

// testAddresses checks what the address allocator relies on: an address
// is held once per project and subnet, freed with its server, and the
// first record of a subnet stays.
func testAddresses(t *testing.T, open opener) {
	t.Run("SubnetEnsure", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		var got ecs.Subnet
		b.write(t, func(tx store.Tx) error {
			var err error
			got, err = tx.SubnetEnsure(b.ctx, ecs.Subnet{ProjectID: projA, ID: "sn", VPCID: "vpc-1", CIDR: "10.0.0.0/24", Created: t0})
			return err
		})
		want := ecs.Subnet{ProjectID: projA, ID: "sn", VPCID: "vpc-1", CIDR: "10.0.0.0/24", Created: t0}
		wantEqual(t, "first SubnetEnsure", got, want)
		b.write(t, func(tx store.Tx) error {
			var err error
			got, err = tx.SubnetEnsure(b.ctx, ecs.Subnet{ProjectID: projA, ID: "sn", VPCID: "vpc-2", CIDR: "192.168.0.0/16",
				Created: t0.Add(1000)})
			return err
		})
		wantEqual(t, "second SubnetEnsure keeps the first", got, want)
		b.write(t, func(tx store.Tx) error {
			var err error
			got, err = tx.SubnetEnsure(b.ctx, ecs.Subnet{ProjectID: projB, ID: "sn", VPCID: "vpc-9", CIDR: "172.16.0.0/24", Created: t0})
			return err
		})
		if got.VPCID != "vpc-9" {
			t.Fatalf("another project's subnet of the same id = %+v; want its own", got)
		}
	})

	t.Run("Unique", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		a := plainServer("srv-a", projA, "a", 0)
		a.NICs = []ecs.NIC{{PortID: "p-a", SubnetID: "sn", IP: "10.0.0.2"}}
		b.insertServers(t, a)
		dup := plainServer("srv-b", projA, "b", 1)
		dup.NICs = []ecs.NIC{{PortID: "p-b", SubnetID: "sn", IP: "10.0.0.2"}}
		err := b.writeErr(func(tx store.Tx) error { return tx.ServerInsert(b.ctx, &dup) })
		var taken *store.AddressTakenError
		if !errors.As(err, &taken) || !errors.Is(err, ecs.ErrConflict) || taken.IP != "10.0.0.2" || taken.SubnetID != "sn" {
			t.Fatalf("ServerInsert of a held address = %v; want an AddressTakenError for 10.0.0.2 in sn", err)
		}
		_, err = b.s.ServerGet(b.ctx, projA, "srv-b")
		wantErr(t, "server whose address was taken", err, ecs.ErrNotFound)
		// The same address in another subnet, or another project's subnet
		// of the same id, is free.
		ok1 := plainServer("srv-c", projA, "c", 2)
		ok1.NICs = []ecs.NIC{{PortID: "p-c", SubnetID: "sn-2", IP: "10.0.0.2"}}
		ok2 := plainServer("srv-d", projB, "d", 3)
		ok2.NICs = []ecs.NIC{{PortID: "p-d", SubnetID: "sn", IP: "10.0.0.2"}}
		b.insertServers(t, ok1, ok2)
		var ips []string
		b.write(t, func(tx store.Tx) error {
			var err error
			ips, err = tx.SubnetAddresses(b.ctx, projA, "sn")
			return err
		})
		wantEqual(t, "SubnetAddresses", ips, []string{"10.0.0.2"})
		// Deleting the server frees its address.
		b.write(t, func(tx store.Tx) error { return tx.ServerDelete(b.ctx, "srv-a") })
		b.write(t, func(tx store.Tx) error {
			var err error
			ips, err = tx.SubnetAddresses(b.ctx, projA, "sn")
			return err
		})
		if len(ips) != 0 {
			t.Fatalf("SubnetAddresses after the delete = %v", ips)
		}
		b.insertServers(t, dup)
		wantEqual(t, "server on a reused address", b.getServer(t, projA, "srv-b"), dup)
	})

	t.Run("Tags", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		a := plainServer("srv-a", projA, "a", 0)
		a.Tags = []ecs.Tag{{Key: "env", Value: "prod"}}
		b.insertServers(t, a)
		tags := []ecs.Tag{{Key: "env", Value: "dev"}, {Key: "x", Value: ""}}
		b.write(t, func(tx store.Tx) error { return tx.ServerTagsSet(b.ctx, projA, "srv-a", tags) })
		a.Tags = tags
		wantEqual(t, "server after ServerTagsSet", b.getServer(t, projA, "srv-a"), a)
		for filter, want := range map[string]int{"env=prod": 0, "env=dev": 1, "x": 1, "x=": 1} {
			_, n, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, Tags: []string{filter}})
			wantNoErr(t, "ServerList", err)
			if n != want {
				t.Errorf("tags=%s after ServerTagsSet: %d servers, want %d", filter, n, want)
			}
		}
		err := b.writeErr(func(tx store.Tx) error { return tx.ServerTagsSet(b.ctx, projB, "srv-a", nil) })
		wantErr(t, "ServerTagsSet of another project's server", err, ecs.ErrNotFound)
		b.write(t, func(tx store.Tx) error { return tx.ServerTagsSet(b.ctx, projA, "srv-a", nil) })
		a.Tags = nil
		wantEqual(t, "server after clearing its tags", b.getServer(t, projA, "srv-a"), a)
	})
}

// testSharedAddresses: 30 creates spread over 3 Stores (nodes), each
// taking the lowest free address of one subnet after SubnetEnsure (as the
// service's allocator does), all succeed with distinct addresses: the
// subnet's lock serialises them.
func testSharedAddresses(t *testing.T, open func(t *testing.T, n int) []store.Store) {
	ss := open(t, 3)
	ctx := t.Context()
	const n = 30
	errs := make(chan error, n)
	for i := range n {
		go func() {
			s := ss[i%len(ss)]
			errs <- s.Write(ctx, func(tx store.Tx) error {
				if _, err := tx.SubnetEnsure(ctx, ecs.Subnet{ProjectID: projA, ID: "sn", VPCID: "vpc", CIDR: "10.0.0.0/24",
					Created: t0}); err != nil {
					return err
				}
				held, err := tx.SubnetAddresses(ctx, projA, "sn")
				if err != nil {
					return err
				}
				ip := ""
				for host := 2; ip == ""; host++ {
					if c := fmt.Sprintf("10.0.0.%d", host); !slices.Contains(held, c) {
						ip = c
					}
				}
				srv := plainServer(fmt.Sprintf("srv-%02d", i), projA, "s", i)
				srv.NICs = []ecs.NIC{{PortID: fmt.Sprintf("port-%02d", i), SubnetID: "sn", IP: ip}}
				return tx.ServerInsert(ctx, &srv)
			})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("a create in the shared subnet failed: %v", err)
		}
	}
	list, total, err := ss[0].ServerList(ctx, store.ServerListParams{ProjectID: projA})
	wantNoErr(t, "ServerList", err)
	seen := map[string]bool{}
	for _, s := range list {
		if seen[s.NICs[0].IP] {
			t.Errorf("address %s handed out twice", s.NICs[0].IP)
		}
		seen[s.NICs[0].IP] = true
	}
	if total != n || len(seen) != n {
		t.Fatalf("%d servers with %d distinct addresses; want %d", total, len(seen), n)
	}
}
