package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// stamps records, per job id, when its insert committed and when a worker
// started it.
type stamps struct {
	mu     sync.Mutex
	commit map[string]time.Time
	start  map[string]time.Time
}

func (s *stamps) set(m map[string]time.Time, id string, t time.Time) {
	s.mu.Lock()
	m[id] = t
	s.mu.Unlock()
}

func (s *stamps) get(m map[string]time.Time, id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := m[id]
	return t, ok
}

// commitStore is a store.Store that stamps the commit time of every job
// inserted by a Write: the moment the transaction's Commit returned.
type commitStore struct {
	store.Store
	st *stamps
}

func (s *commitStore) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	var ids []string
	err := s.Store.Write(ctx, func(tx store.Tx) error {
		ids = ids[:0] // a retried fn starts over
		return fn(insertTx{Tx: tx, ids: &ids})
	})
	if err == nil && len(ids) > 0 {
		now := time.Now()
		for _, id := range ids {
			s.st.set(s.st.commit, id, now)
		}
	}
	return err
}

// insertTx notes the ids of the jobs inserted through it.
type insertTx struct {
	store.Tx
	ids *[]string
}

func (t insertTx) JobInsert(ctx context.Context, j *ecs.Job) error {
	if err := t.Tx.JobInsert(ctx, j); err != nil {
		return err
	}
	*t.ids = append(*t.ids, j.ID)
	return nil
}

// runPickup measures idle pickup in-process: the service on the SQLite
// store and the sim driver (zero latency), one reinstall at a time, spaced
// out, each submitted only when the engine is idle. Pickup is from the
// commit of the job's insert to the engine calling OnJobStart.
func runPickup(ctx context.Context, b *bench) error {
	const (
		jobs    = 50
		spacing = 40 * time.Millisecond
	)
	target := "idle pickup (commit → worker start) p50 < 5 ms"
	p50, p99, fromReturn, err := pickup(ctx, filepath.Join(b.dir, "pickup"), jobs, spacing)
	if err != nil {
		b.failure(target, err)
		return err
	}
	b.result(target, fmt.Sprintf("p50 %s ms, p99 %s ms over %d jobs submitted %s apart (p50 from the submit call's return: %s ms)",
		msec(p50), msec(p99), jobs, spacing, msec(fromReturn)), p50 < targetPickupP50)
	return nil
}

func pickup(ctx context.Context, dir string, jobs int, spacing time.Duration) (p50, p99, fromReturn time.Duration, err error) {
	st := &stamps{commit: map[string]time.Time{}, start: map[string]time.Time{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, 0, err
	}
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "ecsd.db")})
	if err != nil {
		return 0, 0, 0, err
	}
	defer db.Close()
	box, err := secret.LoadOrCreate(filepath.Join(dir, "secret.key"))
	if err != nil {
		return 0, 0, 0, err
	}
	drv, err := sim.New(sim.Config{Dir: filepath.Join(dir, "sim")})
	if err != nil {
		return 0, 0, 0, err
	}
	defer drv.Close()
	if _, err := cluster.Register(ctx, cluster.HostConfig{Store: db, Name: benchHost, Driver: cluster.DriverSim,
		Capacity: cluster.SimCapacity}); err != nil {
		return 0, 0, 0, err
	}
	svc := cloud.New(cloud.Config{Store: &commitStore{Store: db, st: st}, Driver: drv, Box: box, Host: benchHost,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnJobStart: func(j ecs.Job) { st.set(st.start, j.ID, time.Now()) }})
	if err := svc.SeedImages(ctx); err != nil {
		return 0, 0, 0, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	defer func() {
		cancel()
		<-done
	}()

	cred, err := svc.NewCredential(ctx, "bench")
	if err != nil {
		return 0, 0, 0, err
	}
	caller := cloud.Caller{ProjectID: cred.ProjectID, UserID: cred.UserID}
	if _, _, err := svc.CreateKeypair(ctx, caller, cloud.KeypairInput{Name: benchKeypair}); err != nil {
		return 0, 0, 0, err
	}
	_, ids, err := svc.CreateServers(ctx, caller, cloud.CreateInput{Name: "pickup", ImageRef: benchImage, FlavorRef: benchFlavor,
		VPCID: "vpc-bench", SubnetIDs: []string{"subnet-bench"}, VolumeType: "SSD", Count: jobs})
	if err != nil {
		return 0, 0, 0, err
	}
	if err := waitCount(ctx, svc, caller, "ACTIVE", jobs); err != nil {
		return 0, 0, 0, err
	}
	if _, err := svc.ServerAction(ctx, caller, cloud.ActionStop, ids, true); err != nil {
		return 0, 0, 0, err
	}
	if err := waitCount(ctx, svc, caller, "SHUTOFF", jobs); err != nil {
		return 0, 0, 0, err
	}

	key := benchKeypair
	var pick, ret []time.Duration
	for _, id := range ids {
		time.Sleep(spacing)
		jobID, err := svc.Reinstall(ctx, caller, id, cloud.ReinstallInput{KeyName: &key})
		returned := time.Now()
		if err != nil {
			return 0, 0, 0, err
		}
		if err := waitJob(ctx, svc, caller, jobID); err != nil {
			return 0, 0, 0, err
		}
		c, ok1 := st.get(st.commit, jobID)
		s, ok2 := st.get(st.start, jobID)
		if !ok1 || !ok2 {
			return 0, 0, 0, fmt.Errorf("job %s: no commit or start time recorded", jobID)
		}
		pick = append(pick, s.Sub(c))
		ret = append(ret, s.Sub(returned))
	}
	slices.Sort(pick)
	slices.Sort(ret)
	return percentile(pick, 50), percentile(pick, 99), percentile(ret, 50), nil
}

// waitCount polls until want of the caller's servers have status.
func waitCount(ctx context.Context, svc *cloud.Service, c cloud.Caller, status string, want int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, n, err := svc.ListServers(ctx, c, store.ServerListParams{Status: status, Limit: 1})
		if err != nil {
			return err
		}
		if n == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d servers %s after a minute, want %d", n, status, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitJob polls until the job ends; it must end SUCCESS.
func waitJob(ctx context.Context, svc *cloud.Service, c cloud.Caller, id string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := svc.GetJob(ctx, c, id)
		if err != nil {
			return err
		}
		switch j.Status {
		case ecs.JobSuccess:
			return nil
		case ecs.JobFail:
			return fmt.Errorf("job %s failed: %s %s", id, j.ErrorCode, j.FailReason)
		}
		if time.Now().After(deadline) {
			return errors.New("job " + id + " did not finish within 30s")
		}
		time.Sleep(time.Millisecond)
	}
}
