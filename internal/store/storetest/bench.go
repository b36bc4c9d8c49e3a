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
		got, err := s.JobClaim(ctx, store.JobClaimParams{Owner: "worker", Now: benchT0, LeaseUntil: benchT0.Add(time.Minute), Limit: 1})
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
