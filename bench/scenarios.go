package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Targets (issue 2, scope item 10).
const (
	targetSubmitRate = 2000
	targetSubmitP99  = 20 * time.Millisecond
	targetQueryRate  = 10000
	targetBurst      = 5 * time.Second
	targetPickupP50  = 5 * time.Millisecond
	targetRecovery   = 10 * time.Second
	targetRSS        = 150 << 20
)

// submitLoad is a load of reinstall submissions, one per server of ids.
func submitLoad(name string, workers int, c *creds, ids []string, withPassword bool, serverPID int, jobIDs []string) load {
	body := reinstallBody(withPassword)
	prefix := "/v1/" + c.projectID + "/cloudservers/"
	l := load{name: name, workers: workers, total: len(ids), serverPID: serverPID,
		next: func(i int) request {
			return request{method: http.MethodPost, path: prefix + ids[i] + "/reinstallos", body: body}
		}}
	if jobIDs != nil {
		l.onOK = func(i int, b []byte) {
			var out struct {
				JobID string `json:"job_id"`
			}
			if json.Unmarshal(b, &out) == nil {
				jobIDs[i] = out.JobID
			}
		}
	}
	return l
}

// measure runs l against endpoint (with fresh keep-alive connections) and
// records it in the detail table.
func (b *bench) measure(ctx context.Context, c creds, endpoint string, l load) (loadResult, error) {
	c.endpoint = endpoint
	hc := newHTTPClient(l.workers)
	defer hc.CloseIdleConnections()
	if err := warm(ctx, endpoint, hc, l.workers); err != nil {
		return loadResult{}, err
	}
	b.logf("load run %q: %d workers", l.name, l.workers)
	res, err := l.run(ctx, &c, hc)
	if err != nil {
		return res, err
	}
	b.runs = append(b.runs, runRow{name: l.name, workers: l.workers, res: res})
	b.logf("  %d requests, %.0f req/s, p50 %s p99 %s", res.n, res.rate(), msec(res.pct(50)), msec(res.pct(99)))
	return res, nil
}

func submitVerdict(r loadResult) (string, bool) {
	s := fmt.Sprintf("%.0f/s, p50 %s ms, p99 %s ms", r.rate(), msec(r.pct(50)), msec(r.pct(99)))
	if e := r.errSummary(); e != "" {
		return s + "; " + e, false
	}
	return s, r.rate() >= targetSubmitRate && r.pct(99) < targetSubmitP99
}

// runSubmit measures reinstall submissions: the no-op ceiling; ecsd with
// its jobs held (one worker, whose first driver call sleeps an hour), which
// is the submit path alone; then ecsd as configured by default, where the
// jobs run beside the submits. Key pair submits go to the first servers,
// password submits to the last cfg.passSubmits, each server once per mode.
func runSubmit(ctx context.Context, b *bench) error {
	f := b.fleet
	w, limit := b.cfg.submitWorkers, b.cfg.submitFor
	const target = "≥ 2,000 signed reinstall submissions/s, p99 < 20 ms"
	keyIDs, passIDs := f.ids[:len(f.ids)-b.cfg.passSubmits], f.ids[len(f.ids)-b.cfg.passSubmits:]
	fail := func(err error) error {
		b.failure(target, err)
		return err
	}
	noop, err := f.noopServer()
	if err != nil {
		return fail(err)
	}
	l := submitLoad("no-op handler, reinstall-shaped POST", w, &f.d.creds, keyIDs, false, noop.pid(), nil)
	l.duration = limit
	ceiling, err := b.measure(ctx, f.d.creds, noop.endpoint, l)
	if err != nil {
		return fail(err)
	}

	// The submit path alone: a snapshot of the database is taken, ecsd runs
	// with the jobs held, and the snapshot is restored afterwards (the held
	// jobs never reach the simulator).
	b.logf("restarting ecsd with jobs held")
	if err := f.snapshot(); err != nil {
		return fail(err)
	}
	if err := f.start(ctx, "--workers", "1", "--sim-latency", "1h"); err != nil {
		return fail(err)
	}
	var held [2]loadResult
	for k, pw := range []bool{false, true} {
		ids, what := keyIDs, "keyname"
		if pw {
			ids, what = passIDs, "adminpass"
		}
		l := submitLoad(fmt.Sprintf("ecsd reinstall, %s, jobs held (submit path alone)", what), w, &f.d.creds, ids, pw, f.d.PID(), nil)
		l.duration = limit
		if held[k], err = b.measure(ctx, f.d.creds, f.d.creds.endpoint, l); err != nil {
			return fail(err)
		}
	}
	if err := f.restore(); err != nil {
		return fail(err)
	}
	if err := f.start(ctx); err != nil {
		return fail(err)
	}
	if n, err := f.api.countStatus(ctx, "SHUTOFF"); err != nil || n != len(f.ids) {
		return fail(fmt.Errorf("after restoring the snapshot, %d of %d servers SHUTOFF (%v)", n, len(f.ids), err))
	}

	for k, pw := range []bool{false, true} {
		ids, what := keyIDs, "keyname"
		if pw {
			ids, what = passIDs, "adminpass"
		}
		jobIDs := make([]string, len(ids))
		l := submitLoad(fmt.Sprintf("ecsd reinstall, %s, jobs running", what), w, &f.d.creds, ids, pw, f.d.PID(), jobIDs)
		l.duration = limit
		res, err := b.measure(ctx, f.d.creds, f.d.creds.endpoint, l)
		if err != nil {
			return fail(err)
		}
		took, err := f.drain(ctx, jobIDs)
		if err != nil {
			return fail(fmt.Errorf("%s jobs did not finish: %w", what, err))
		}
		for _, id := range jobIDs {
			if id != "" {
				f.jobIDs = append(f.jobIDs, id)
			}
		}
		b.note("The %s run's %d jobs were all finished %s after its last submit (they ran during the run too): %.0f reinstalls/s end to end over the run and the drain.",
			what, res.ok, took.Round(10*time.Millisecond), float64(res.ok)/(res.elapsed+took).Seconds())
		m, ok := submitVerdict(res)
		m += fmt.Sprintf("; submit path alone (jobs held) %.0f/s, p99 %s ms", held[k].rate(), msec(held[k].pct(99)))
		if !pw {
			m += fmt.Sprintf("; no-op ceiling %.0f/s, p99 %s ms", ceiling.rate(), msec(ceiling.pct(99)))
		}
		b.result(target+" — "+what, m, ok)
	}
	return nil
}

// runQuery measures GET /v1/{project_id}/jobs/{job_id} on finished jobs.
func runQuery(ctx context.Context, b *bench) error {
	f := b.fleet
	const target = "≥ 10,000 signed job queries/s"
	if len(f.jobIDs) == 0 {
		// Run on its own: make jobs to query first.
		n := min(1000, len(f.ids))
		ids := make([]string, n)
		hc := newHTTPClient(b.cfg.submitWorkers)
		c := f.d.creds
		res, err := submitLoad("set-up", b.cfg.submitWorkers, &c, f.ids[:n], false, 0, ids).run(ctx, &c, hc)
		if err == nil && res.errSummary() != "" {
			err = errors.New(res.errSummary())
		}
		if err == nil {
			_, err = f.drain(ctx, ids)
		}
		if err != nil {
			b.failure(target, err)
			return err
		}
		f.jobIDs = ids
	}
	jobs := f.jobIDs
	prefix := "/v1/" + f.d.creds.projectID + "/jobs/"
	mk := func(name string, pid int) load {
		return load{name: name, workers: b.cfg.queryWorkers, duration: b.cfg.queryFor, serverPID: pid,
			next: func(i int) request { return request{method: http.MethodGet, path: prefix + jobs[i%len(jobs)]} }}
	}
	noop, err := f.noopServer()
	if err != nil {
		b.failure(target, err)
		return err
	}
	ceiling, err := b.measure(ctx, f.d.creds, noop.endpoint, mk("no-op handler, job-shaped GET", noop.pid()))
	if err != nil {
		b.failure(target, err)
		return err
	}
	res, err := b.measure(ctx, f.d.creds, f.d.creds.endpoint, mk(fmt.Sprintf("ecsd job query (%d finished jobs)", len(jobs)), f.d.PID()))
	if err != nil {
		b.failure(target, err)
		return err
	}
	m := fmt.Sprintf("%.0f/s, p50 %s ms, p99 %s ms (no-op ceiling %.0f/s)", res.rate(), msec(res.pct(50)), msec(res.pct(99)), ceiling.rate())
	if e := res.errSummary(); e != "" {
		b.result(target, m+"; "+e, false)
		return nil
	}
	b.result(target, m, res.rate() >= targetQueryRate)
	return nil
}

// wireJob is the part of a job answer the benchmark reads.
type wireJob struct {
	Status  string `json:"status"`
	EndTime string `json:"end_time"`
}

// runBurst submits cfg.burst reinstalls at once and times first submit to
// last SUCCESS (the jobs' end_time).
func runBurst(ctx context.Context, b *bench) error {
	f := b.fleet
	n := b.cfg.burst
	target := fmt.Sprintf("%d servers reinstalled at once all reach SUCCESS within 5 s", n)
	const workers = 64
	c := f.d.creds
	hc := newHTTPClient(workers)
	defer hc.CloseIdleConnections()
	if err := warm(ctx, c.endpoint, hc, workers); err != nil {
		b.failure(target, err)
		return err
	}
	ids := make([]string, n)
	start := time.Now()
	res, err := submitLoad("burst", workers, &c, f.ids[:n], false, f.d.PID(), ids).run(ctx, &c, hc)
	if err == nil && res.errSummary() != "" {
		err = errors.New(res.errSummary())
	}
	if err != nil {
		b.failure(target, err)
		return err
	}
	submitted := time.Since(start)
	if _, err := f.drain(ctx, ids); err != nil {
		b.failure(target, err)
		return err
	}
	observed := time.Since(start)

	// Read every job: all must be SUCCESS; the last end_time ends the burst.
	var mu sync.Mutex
	var last time.Time
	var bad []string
	prefix := "/v1/" + c.projectID + "/jobs/"
	check := load{name: "burst check", workers: 8, total: n,
		next: func(i int) request { return request{method: http.MethodGet, path: prefix + ids[i]} },
		onOK: func(i int, body []byte) {
			var j wireJob
			err := json.Unmarshal(body, &j)
			var end time.Time
			if err == nil {
				end, err = time.Parse("2006-01-02T15:04:05.000Z", j.EndTime)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				bad = append(bad, fmt.Sprintf("job %s: %v", ids[i], err))
			case j.Status != "SUCCESS":
				bad = append(bad, fmt.Sprintf("job %s: %s", ids[i], j.Status))
			case end.After(last):
				last = end
			}
		}}
	cres, err := check.run(ctx, &c, hc)
	if err == nil && cres.errSummary() != "" {
		err = errors.New(cres.errSummary())
	}
	if err == nil && len(bad) > 0 {
		err = fmt.Errorf("%d jobs not SUCCESS, e.g. %s", len(bad), bad[0])
	}
	if err != nil {
		b.failure(target, err)
		return err
	}
	// end_time has millisecond resolution.
	took := last.Sub(start).Round(time.Millisecond)
	b.result(target, fmt.Sprintf("all %d SUCCESS; last end_time %.2f s after the first submit (submits took %.2f s; polling saw all done at %.2f s)",
		n, took.Seconds(), submitted.Seconds(), observed.Seconds()), took < targetBurst)
	return nil
}

// runRSS lists and shows the fleet's servers, then reads ecsd's memory.
func runRSS(ctx context.Context, b *bench) error {
	f := b.fleet
	target := fmt.Sprintf("ecsd RSS < 150 MB with %d servers", len(f.ids))
	a := f.api
	for page := 1; (page-1)*1000 < len(f.ids); page++ {
		var out struct {
			Servers []json.RawMessage `json:"servers"`
		}
		if err := a.call(ctx, http.MethodGet, a.path("v1", fmt.Sprintf("/cloudservers/detail?limit=1000&offset=%d", page)), nil, &out); err != nil {
			b.failure(target, err)
			return err
		}
	}
	shows := min(1000, len(f.ids))
	prefix := "/v1/" + f.d.creds.projectID + "/cloudservers/"
	if _, err := b.measure(ctx, f.d.creds, f.d.creds.endpoint, load{name: fmt.Sprintf("ecsd server show (%d servers)", shows), workers: 8,
		total: shows, serverPID: f.d.PID(),
		next: func(i int) request { return request{method: http.MethodGet, path: prefix + f.ids[i]} }}); err != nil {
		b.failure(target, err)
		return err
	}
	rss, peak, err := memory(f.d.PID())
	if err != nil {
		b.failure(target, err)
		return err
	}
	b.result(target, fmt.Sprintf("VmRSS %s after full list (limit=1000 pages) + %d shows, %s right after set-up; peak VmHWM %s",
		mib(rss), shows, mib(f.rssAfterSeed), mib(peak)), rss < targetRSS && f.rssAfterSeed < targetRSS)
	return nil
}
