package crash

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/testd"
)

var seedFlag = flag.Int64("crash.seed", 0, "seed of the random kill schedule (0: a new one, logged)")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	testd.Cleanup()
	os.Exit(code)
}

// daemon is a testd.Daemon whose calls fail the test.
type daemon struct {
	*testd.Daemon
	t *testing.T
}

// newDaemon makes a data dir; start runs ecsd (driver sim) on it. The last
// process is stopped with SIGTERM when the test ends.
func newDaemon(t *testing.T) *daemon {
	t.Helper()
	td, err := testd.New(testd.Config{DataDir: t.TempDir(), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{Daemon: td, t: t}
	t.Cleanup(func() {
		if d.Running() {
			if err := d.Stop(); err != nil {
				t.Errorf("ecsd: %v", err)
			}
		}
		if t.Failed() {
			t.Log(d.LogReport(30))
		}
	})
	return d
}

// start launches ecsd with extra flags and waits until it serves.
func (d *daemon) start(extra ...string) {
	d.t.Helper()
	if err := d.Start(extra...); err != nil {
		d.t.Fatal(err)
	}
}

// restart is kill -9 then start.
func (d *daemon) restart(extra ...string) {
	d.t.Helper()
	if err := d.Restart(extra...); err != nil {
		d.t.Fatal(err)
	}
}

// waitJobs polls the jobs until every one is SUCCESS or FAIL (batch jobs:
// their sub-jobs too) or ctx ends, and returns the last answer for each.
func waitJobs(ctx context.Context, c *client.Client, ids []string) (map[string]client.Job, error) {
	last := make(map[string]client.Job, len(ids))
	pending := append([]string(nil), ids...)
	for {
		var still []string
		for _, id := range pending {
			j, err := c.ShowJob(ctx, id)
			if err != nil {
				if ctx.Err() != nil {
					return last, fmt.Errorf("%d of %d jobs unfinished: %w", len(pending), len(ids), ctx.Err())
				}
				return last, fmt.Errorf("show job %s: %w", id, err)
			}
			last[id] = j
			if !jobDone(j) {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) == 0 {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%d of %d jobs unfinished: %w", len(pending), len(ids), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// jobDone reports whether j and all its sub-jobs are SUCCESS or FAIL.
func jobDone(j client.Job) bool {
	if !j.Done() {
		return false
	}
	for _, s := range j.Entities.SubJobs {
		if s.Status != client.JobSuccess && s.Status != client.JobFail {
			return false
		}
	}
	return true
}

// jobSucceeded reports whether j and all its sub-jobs are SUCCESS.
func jobSucceeded(j client.Job) bool {
	if j.Status != client.JobSuccess {
		return false
	}
	for _, s := range j.Entities.SubJobs {
		if s.Status != client.JobSuccess {
			return false
		}
	}
	return true
}

// allServers lists every server of the client's project.
func allServers(ctx context.Context, c *client.Client) ([]client.Server, error) {
	var out []client.Server
	for page := 1; ; page++ {
		resp, err := c.ListServers(ctx, client.ListServersOptions{Offset: page, Limit: 1000})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.Servers...)
		if len(resp.Servers) < 1000 || len(out) >= resp.Count {
			return out, nil
		}
	}
}
