package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// The benchmarks below take an empty Store and are run by each
// implementation's own Benchmark functions, so that the numbers compare.

var benchT0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func benchServer(id string) ecs.Server {
	return ecs.Server{ID: id, ProjectID: "p1", UserID: "u1", Name: id, VMState: ecs.VMActive, Created: benchT0, Updated: benchT0,
		Metadata: map[string]string{"k": "v"}}
}

// BenchJobClaim measures claiming one job at a time from a backlog of b.N
// jobs while at most 50 run (finished in batches, outside the timer).
func BenchJobClaim(b *testing.B, s store.Store) {
	ctx := context.Background()
	for start := 0; start < b.N; start += 1000 {
		err := s.Write(ctx, func(tx store.Tx) error {
			for i := start; i < min(start+1000, b.N); i++ {
				j := ecs.Job{ID: fmt.Sprintf("job-%08d", i), ProjectID: "p1", Type: ecs.JobReinstallOS, Runnable: true,
					Params: []byte(`{"volume_id":"vol-1"}`), Created: benchT0}
				if err := tx.JobInsert(ctx, &j); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	const running = 50
	var claimed []ecs.Job
	b.ResetTimer()
	for range b.N {
		got, err := s.JobClaim(ctx, store.JobClaimParams{Owner: "worker", Now: benchT0, Lease: time.Minute, Limit: 1})
		if err != nil || len(got) != 1 {
			b.Fatalf("JobClaim = %d jobs, %v", len(got), err)
		}
		claimed = append(claimed, got...)
		if len(claimed) == running {
			b.StopTimer()
			err := s.Write(ctx, func(tx store.Tx) error {
				for _, j := range claimed {
					j.Status, j.End = ecs.JobSuccess, benchT0
					if err := tx.JobUpdate(ctx, &j, store.Lease{Owner: "worker", Attempt: j.Attempts}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			claimed = claimed[:0]
			b.StartTimer()
		}
	}
}

// BenchWriteSubmit measures the submit transaction: read the server, take
// it for a job and insert the job, in one Write.
func BenchWriteSubmit(b *testing.B, s store.Store) {
	ctx := context.Background()
	srv := benchServer("srv-1")
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.ServerInsert(ctx, &srv) }); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		jobID := fmt.Sprintf("job-%08d", i)
		err := s.Write(ctx, func(tx store.Tx) error {
			cur, err := tx.ServerGet(ctx, "p1", "srv-1")
			if err != nil {
				return err
			}
			cur.TaskState, cur.TaskJobID, cur.Updated = ecs.TaskRebuilding, jobID, benchT0
			if err := tx.ServerUpdate(ctx, &cur); err != nil {
				return err
			}
			j := ecs.Job{ID: jobID, ProjectID: "p1", Type: ecs.JobReinstallOS, ServerID: cur.ID, Runnable: true,
				Params: []byte(`{"volume_id":"vol-1","password_hash":"$6$salt$hash"}`), Created: benchT0}
			return tx.JobInsert(ctx, &j)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchServerGet measures an API read of one server among 1,000, from
// parallel readers.
func BenchServerGet(b *testing.B, s store.Store) {
	ctx := context.Background()
	const n = 1000
	err := s.Write(ctx, func(tx store.Tx) error {
		for i := range n {
			srv := benchServer(fmt.Sprintf("srv-%04d", i))
			if err := tx.ServerInsert(ctx, &srv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := s.ServerGet(ctx, "p1", fmt.Sprintf("srv-%04d", i%n)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchServerList measures the API's filtered server lists (a page of at
// most 25 and the count of every match) on a project of 1,000 and of
// 100,000 servers, each filter matching the same 10 servers at both sizes,
// spread through the table. open returns a new, empty Store. Indexed
// filters should cost about the same at both sizes. The name and ip
// patterns go through trigram indexes: their cost grows with the servers
// whose name or address holds the pattern's pieces (the ip pattern's
// longest piece is one octet); a pattern without a piece of three
// characters ("ra.e-") scans the project's rows.
func BenchServerList(b *testing.B, open func() store.Store) {
	ctx := context.Background()
	for _, n := range []int{1000, 100_000} {
		s := open()
		seedList(b, s, n)
		filters := []struct {
			name string
			p    store.ServerListParams
		}{
			{"flavor+status", store.ServerListParams{FlavorID: "c7.rare", Status: "ACTIVE"}},
			{"ip_eq", store.ServerListParams{IPEq: rareIP(n, 3)}},
			{"tags", store.ServerListParams{Tags: []string{"team=rare"}}},
			{"reservation_id", store.ServerListParams{ReservationID: "r-rare"}},
			{"server_id", store.ServerListParams{ServerIDs: rareIDs(n)}},
			{"marker+flavor", store.ServerListParams{FlavorID: "c7.rare", Marker: rareID(n, 4)}},
			{"name", store.ServerListParams{Name: "rare-"}},
			{"ip", store.ServerListParams{IP: rareIP(n, 3)}},
			{"name (short pieces)", store.ServerListParams{Name: "ra.e-"}},
		}
		for _, f := range filters {
			b.Run(fmt.Sprintf("servers=%d/%s", n, f.name), func(b *testing.B) {
				p := f.p
				p.ProjectID, p.Limit = "p1", 25
				for b.Loop() {
					list, total, err := s.ServerList(ctx, p)
					if err != nil || len(list) == 0 || total == 0 || total > 10 {
						b.Fatalf("ServerList(%+v) = %d rows of %d, %v", p, len(list), total, err)
					}
				}
			})
		}
	}
}

// rareID is the id of the i-th (0..9) of the 10 servers every filter of
// BenchServerList matches in a project of n.
func rareID(n, i int) string { return fmt.Sprintf("srv-%07d", i*(n/10)+n/20) }

func rareIDs(n int) []string {
	var ids []string
	for i := range 10 {
		ids = append(ids, rareID(n, i))
	}
	return ids
}

func rareIP(n, i int) string { return benchIP(i*(n/10) + n/20) }

func benchIP(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// seedList inserts n servers of project p1 (and n/10 of p2), 1,000 per
// Write: every server has a NIC and a tag; 10 of p1, spread evenly, are the
// rare ones BenchServerList's filters find.
func seedList(b *testing.B, s store.Store, n int) {
	ctx := context.Background()
	rare := map[string]bool{}
	for _, id := range rareIDs(n) {
		rare[id] = true
	}
	mk := func(project string, i int) ecs.Server {
		id := fmt.Sprintf("srv-%07d", i)
		if project != "p1" {
			id = fmt.Sprintf("%s-srv-%07d", project, i)
		}
		srv := benchServer(id)
		srv.ProjectID, srv.FlavorID, srv.Name = project, "s6.small.1", fmt.Sprintf("web-%07d", i)
		srv.NICs = []ecs.NIC{{PortID: "port-" + id, SubnetID: "subnet-1", IP: benchIP(i)}}
		srv.Addr = srv.NICs[0].IP
		srv.Tags = []ecs.Tag{{Key: "team", Value: fmt.Sprintf("t%d", i%50)}}
		srv.ReservationID = fmt.Sprintf("r-%d", i/1000)
		if project == "p1" && rare[id] {
			srv.FlavorID, srv.ReservationID = "c7.rare", "r-rare"
			srv.Name = fmt.Sprintf("rare-%d", i%10)
			srv.Tags = []ecs.Tag{{Key: "team", Value: "rare"}}
		}
		return srv
	}
	for _, pr := range []struct {
		project string
		n       int
	}{{"p1", n}, {"p2", n / 10}} {
		for start := 0; start < pr.n; start += 1000 {
			err := s.Write(ctx, func(tx store.Tx) error {
				for i := start; i < min(start+1000, pr.n); i++ {
					srv := mk(pr.project, i)
					if err := tx.ServerInsert(ctx, &srv); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	// A bulk load leaves the planner's statistics stale until the database
	// refreshes them by itself; refresh them now, as a live database would
	// have.
	if a, ok := s.(interface{ Analyze(context.Context) error }); ok {
		if err := a.Analyze(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
