package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The catalog entries the benchmark uses (built into every ecsd).
const (
	benchImage   = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01" // Debian 12 64bit
	benchHost    = "bench-host"                           // the one sim host of in-process runs
	benchFlavor  = "s6.small.1"
	benchKeypair = "bench"
	benchPass    = "Bench-Pass-2026" // meets the adminpass rules
)

// apiClient makes the benchmark's set-up calls (not measured).
type apiClient struct {
	c  creds
	hc *http.Client
}

// apiStatusError is a non-2xx answer to a set-up call.
type apiStatusError struct {
	status int
	body   string
}

func (e *apiStatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// call sends one signed request; in (when non-nil) is the JSON body, out
// (when non-nil) receives the decoded 2xx answer.
func (a *apiClient) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
		body = append(body, '\n')
	}
	req, err := signedRequest(ctx, &a.c, method, path, body)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := readAll(resp.Body, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %w", method, path, &apiStatusError{status: resp.StatusCode, body: truncate(raw, 500)})
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

func (a *apiClient) path(version, rest string) string {
	return "/" + version + "/" + a.c.projectID + rest
}

// createServers creates n servers in batches of at most 1000 (the API's
// limit per call) and returns their ids.
func (a *apiClient) createServers(ctx context.Context, name string, n int) ([]string, error) {
	var ids []string
	for len(ids) < n {
		count := min(1000, n-len(ids))
		in := map[string]any{"server": map[string]any{
			"name": name, "imageRef": benchImage, "flavorRef": benchFlavor, "vpcid": "vpc-bench",
			"nics": []map[string]string{{"subnet_id": "subnet-bench"}}, "root_volume": map[string]string{"volumetype": "SSD"},
			"count": count,
		}}
		var out struct {
			ServerIDs []string `json:"serverIds"`
		}
		if err := a.call(ctx, http.MethodPost, a.path("v1", "/cloudservers"), in, &out); err != nil {
			return ids, err
		}
		if len(out.ServerIDs) != count {
			return ids, fmt.Errorf("create: asked for %d servers, got %d ids", count, len(out.ServerIDs))
		}
		ids = append(ids, out.ServerIDs...)
	}
	return ids, nil
}

// stopServers hard-stops the servers in batches of at most 1000.
func (a *apiClient) stopServers(ctx context.Context, ids []string) error {
	for start := 0; start < len(ids); start += 1000 {
		var refs []map[string]string
		for _, id := range ids[start:min(start+1000, len(ids))] {
			refs = append(refs, map[string]string{"id": id})
		}
		in := map[string]any{"os-stop": map[string]any{"servers": refs, "type": "HARD"}}
		if err := a.call(ctx, http.MethodPost, a.path("v1", "/cloudservers/action"), in, nil); err != nil {
			return err
		}
	}
	return nil
}

// createKeypair makes a generated key pair named name.
func (a *apiClient) createKeypair(ctx context.Context, name string) error {
	return a.call(ctx, http.MethodPost, a.path("v2.1", "/os-keypairs"), map[string]any{"keypair": map[string]string{"name": name}}, nil)
}

// countStatus returns how many of the project's servers have status.
func (a *apiClient) countStatus(ctx context.Context, status string) (int, error) {
	var out struct {
		Count int `json:"count"`
	}
	err := a.call(ctx, http.MethodGet, a.path("v1", "/cloudservers/detail?limit=1&status="+url.QueryEscape(status)), nil, &out)
	return out.Count, err
}

// waitStatus polls until want servers have status; it fails when a server
// is in ERROR (checked every 10th poll) and after timeout.
func (a *apiClient) waitStatus(ctx context.Context, status string, want int, every, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	polls := 0
	for {
		n, err := a.countStatus(ctx, status)
		if err != nil {
			return err
		}
		if n == want {
			return nil
		}
		polls++
		if polls%10 == 0 {
			if bad, err := a.countStatus(ctx, "ERROR"); err != nil {
				return err
			} else if bad > 0 {
				return fmt.Errorf("%d servers in ERROR while waiting for %d %s", bad, want, status)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, %d servers are %s, want %d", timeout, n, status, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// reinstallBody returns the os-reinstall body with a key pair or a password.
func reinstallBody(withPassword bool) []byte {
	o := map[string]string{"keyname": benchKeypair}
	if withPassword {
		o = map[string]string{"adminpass": benchPass}
	}
	b, _ := json.Marshal(map[string]any{"os-reinstall": o})
	return append(b, '\n')
}

// fleet is the shared ecsd with cfg.servers SHUTOFF servers.
type fleet struct {
	b      *bench
	dir    string
	d      *daemon
	api    *apiClient
	ids    []string
	jobIDs []string // finished reinstall jobs, for queries
	noop   *noopServer

	rssAfterSeed int64
}

func (f *fleet) dataDir() string { return filepath.Join(f.dir, "data") }

// startFleet makes the fleet: ecsd starts once on a fresh data dir (project,
// credentials, catalog), a key pair is made through the API, ecsd stops, the
// servers are seeded (seedServers), and ecsd starts again on the data dir.
func startFleet(ctx context.Context, b *bench) (*fleet, error) {
	f := &fleet{b: b, dir: filepath.Join(b.dir, "fleet")}
	b.logf("starting ecsd for the fleet in %s", f.dir)
	if err := f.start(ctx); err != nil {
		return nil, err
	}
	if err := f.api.createKeypair(ctx, benchKeypair); err != nil {
		return f, err
	}
	f.d.Stop()
	b.logf("seeding %d servers", b.cfg.servers)
	start := time.Now()
	var err error
	if f.ids, err = seedServers(ctx, f.dataDir(), f.d.creds.projectID, f.d.creds.userID, b.cfg.servers); err != nil {
		return f, err
	}
	took := time.Since(start)
	if err := f.start(ctx); err != nil {
		return f, err
	}
	if n, err := f.api.countStatus(ctx, "SHUTOFF"); err != nil {
		return f, err
	} else if n != len(f.ids) {
		return f, fmt.Errorf("after seeding, %d servers are SHUTOFF, want %d", n, len(f.ids))
	}
	if f.rssAfterSeed, _, err = memory(f.d.PID()); err != nil {
		return f, err
	}
	b.note("Fleet: %d SHUTOFF servers seeded into the data dir through the store and the sim driver in %s (not timed as a target), then ecsd restarted on it (start to /healthz %s, VmRSS %s).",
		len(f.ids), took.Round(100*time.Millisecond), f.d.startupTime().Round(time.Millisecond), mib(f.rssAfterSeed))
	return f, nil
}

// start starts ecsd on the fleet's data dir with extra flags.
func (f *fleet) start(ctx context.Context, extra ...string) error {
	if f.d == nil {
		d, err := startDaemon(f.b.ecsd, f.dataDir(), f.dir, extra...)
		if err != nil {
			return err
		}
		f.d = d
	} else if err := f.d.start(extra...); err != nil {
		return err
	}
	f.api = &apiClient{c: f.d.creds, hc: newHTTPClient(8)}
	return nil
}

// dbFiles are the database files a snapshot copies.
var dbFiles = []string{"ecsd.db", "ecsd.db-wal", "ecsd.db-shm"}

// snapshot stops ecsd and copies its database aside.
func (f *fleet) snapshot() error {
	f.d.Stop()
	for _, name := range dbFiles {
		if err := copyIfExists(filepath.Join(f.dataDir(), name), filepath.Join(f.dir, "snapshot-"+name)); err != nil {
			return err
		}
	}
	return nil
}

// restore kills ecsd and puts the snapshot's database back. Only the
// database is restored: the caller must not have let jobs touch the sim.
func (f *fleet) restore() error {
	f.d.Kill()
	for _, name := range dbFiles {
		dst := filepath.Join(f.dataDir(), name)
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := copyIfExists(filepath.Join(f.dir, "snapshot-"+name), dst); err != nil {
			return err
		}
	}
	return nil
}

func copyIfExists(src, dst string) error {
	b, err := os.ReadFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}

// noopServer starts (once) and returns the no-op ceiling server.
func (f *fleet) noopServer() (*noopServer, error) {
	if f.noop != nil {
		return f.noop, nil
	}
	n, err := startNoop()
	if err != nil {
		return nil, err
	}
	f.noop = n
	return n, nil
}

// drain waits until every fleet server is SHUTOFF again (all reinstall
// jobs finished) and returns how long that took. Counting servers by status
// scans the servers table (milliseconds with 10,000 servers), so while jobs
// run it polls only the last submitted job (jobs are claimed in insert
// order), then confirms with the count.
func (f *fleet) drain(ctx context.Context, jobIDs []string) (time.Duration, error) {
	start := time.Now()
	last := ""
	for i := len(jobIDs) - 1; i >= 0 && last == ""; i-- {
		last = jobIDs[i]
	}
	for last != "" {
		var j wireJob
		if err := f.api.call(ctx, http.MethodGet, f.api.path("v1", "/jobs/"+last), nil, &j); err != nil {
			return time.Since(start), err
		}
		if j.Status == "SUCCESS" || j.Status == "FAIL" {
			break
		}
		if time.Since(start) > 3*time.Minute {
			return time.Since(start), fmt.Errorf("job %s still %s after 3 minutes", last, j.Status)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	err := f.api.waitStatus(ctx, "SHUTOFF", len(f.ids), 50*time.Millisecond, 3*time.Minute)
	return time.Since(start), err
}

func (f *fleet) close() {
	if f == nil {
		return
	}
	if f.noop != nil {
		f.noop.close()
	}
	if f.d != nil {
		f.d.close()
	}
}

func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }
