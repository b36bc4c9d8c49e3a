package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Recovery scenario parameters: enough jobs, each slow enough (5 driver
// calls of simLatency per reinstall), that many are mid-flight at the kill.
const (
	recoveryServers = 200
	simLatency      = 100 * time.Millisecond
	killAfter       = 600 * time.Millisecond // after the last submit
)

// jobStatuses reads the status and end time of every job.
func jobStatuses(ctx context.Context, c creds, ids []string) (map[string]wireJob, error) {
	hc := newHTTPClient(8)
	defer hc.CloseIdleConnections()
	var mu sync.Mutex
	out := map[string]wireJob{}
	prefix := "/v1/" + c.projectID + "/jobs/"
	l := load{name: "job statuses", workers: 8, total: len(ids),
		next: func(i int) request { return request{method: http.MethodGet, path: prefix + ids[i]} },
		onOK: func(i int, b []byte) {
			var j wireJob
			if json.Unmarshal(b, &j) == nil {
				mu.Lock()
				out[ids[i]] = j
				mu.Unlock()
			}
		}}
	res, err := l.run(ctx, &c, hc)
	if err == nil && res.errSummary() != "" {
		err = errors.New(res.errSummary())
	}
	return out, err
}

func countByStatus(js map[string]wireJob) map[string]int {
	n := map[string]int{}
	for _, j := range js {
		n[j.Status]++
	}
	return n
}

// runRecovery starts ecsd with --sim-latency, submits reinstalls, SIGKILLs
// it while jobs run, restarts it on the same data dir and times how long
// until every job has finished. It then checks that every job ended
// SUCCESS and every server's system disk is the one the simulator has
// attached.
func runRecovery(ctx context.Context, b *bench) error {
	target := "recovery after kill -9 < 10 s"
	took, detail, err := recovery(ctx, b)
	if err != nil {
		b.failure(target, err)
		return err
	}
	b.result(target, detail, took < targetRecovery)
	return nil
}

func recovery(ctx context.Context, b *bench) (time.Duration, string, error) {
	dir := filepath.Join(b.dir, "recovery")
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, "", err
	}
	flags := []string{"--sim-latency", simLatency.String()}
	d, err := startDaemon(b.ecsd, dataDir, dir, flags...)
	if err != nil {
		return 0, "", err
	}
	defer d.close()
	a := &apiClient{c: d.creds, hc: newHTTPClient(8)}
	if err := a.createKeypair(ctx, benchKeypair); err != nil {
		return 0, "", err
	}
	ids, err := a.createServers(ctx, "recovery", recoveryServers)
	if err != nil {
		return 0, "", err
	}
	if err := a.waitStatus(ctx, "ACTIVE", len(ids), 50*time.Millisecond, time.Minute); err != nil {
		return 0, "", err
	}
	if err := a.stopServers(ctx, ids); err != nil {
		return 0, "", err
	}
	if err := a.waitStatus(ctx, "SHUTOFF", len(ids), 50*time.Millisecond, time.Minute); err != nil {
		return 0, "", err
	}

	b.logf("recovery: submitting %d reinstalls with sim latency %s", len(ids), simLatency)
	jobs := make([]string, len(ids))
	c := d.creds
	hc := newHTTPClient(16)
	res, err := submitLoad("recovery submits", 16, &c, ids, false, 0, jobs).run(ctx, &c, hc)
	hc.CloseIdleConnections()
	if err == nil && res.errSummary() != "" {
		err = errors.New(res.errSummary())
	}
	if err != nil {
		return 0, "", err
	}
	time.Sleep(killAfter)
	before, err := jobStatuses(ctx, d.creds, jobs)
	if err != nil {
		return 0, "", err
	}
	atKill := countByStatus(before)
	killed := time.Now()
	if err := d.Kill(); err != nil {
		return 0, "", err
	}
	b.logf("recovery: killed ecsd; jobs then %v", atKill)

	if err := d.start(flags...); err != nil {
		return 0, "", err
	}
	a.c = d.creds
	if err := a.waitStatus(ctx, "SHUTOFF", len(ids), 10*time.Millisecond, time.Minute); err != nil {
		return 0, "", err
	}
	observed := time.Since(killed)
	after, err := jobStatuses(ctx, d.creds, jobs)
	if err != nil {
		return 0, "", err
	}
	var last time.Time
	for id, j := range after {
		if j.Status != "SUCCESS" {
			return 0, "", fmt.Errorf("job %s ended %s after the restart", id, j.Status)
		}
		end, err := time.Parse("2006-01-02T15:04:05.000Z", j.EndTime)
		if err != nil {
			return 0, "", fmt.Errorf("job %s: end_time: %w", id, err)
		}
		if end.After(last) {
			last = end
		}
	}
	if len(after) != len(jobs) {
		return 0, "", fmt.Errorf("read %d of %d jobs after the restart", len(after), len(jobs))
	}
	if err := checkDisks(ctx, a, dataDir, ids); err != nil {
		return 0, "", err
	}
	took := last.Sub(killed)
	if took < 0 {
		took = 0 // every job had finished before the kill
	}
	unfinished := len(jobs) - atKill["SUCCESS"]
	return took, fmt.Sprintf("%.2f s from SIGKILL to the last job's end (restart to /healthz %.0f ms; %d of %d jobs unfinished at the kill, %d RUNNING; sim latency %s per driver call, %d workers; all SUCCESS, every server's disk matches the simulator's; polling saw all done at %.2f s)",
		took.Seconds(), float64(d.startupTime())/float64(time.Millisecond), unfinished, len(jobs), atKill["RUNNING"],
		simLatency, 64, observed.Seconds()), nil
}

// checkDisks checks that each server has one attached system disk and that
// it is the disk the simulator has attached to it.
func checkDisks(ctx context.Context, a *apiClient, dataDir string, ids []string) error {
	for _, id := range ids {
		var out struct {
			Server struct {
				Volumes []struct {
					ID string `json:"id"`
				} `json:"os-extended-volumes:volumes_attached"`
			} `json:"server"`
		}
		if err := a.call(ctx, http.MethodGet, a.path("v1", "/cloudservers/"+id), nil, &out); err != nil {
			return err
		}
		if len(out.Server.Volumes) != 1 {
			return fmt.Errorf("server %s has %d attached volumes, want 1", id, len(out.Server.Volumes))
		}
		raw, err := os.ReadFile(filepath.Join(dataDir, "sim", "servers", id+".json"))
		if err != nil {
			return err
		}
		var simSrv struct {
			DiskID string `json:"disk_id"`
		}
		if err := json.Unmarshal(raw, &simSrv); err != nil {
			return err
		}
		if simSrv.DiskID != out.Server.Volumes[0].ID {
			return fmt.Errorf("server %s: API disk %s, simulator disk %s", id, out.Server.Volumes[0].ID, simSrv.DiskID)
		}
	}
	return nil
}
