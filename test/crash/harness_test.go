package crash

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
)

var seedFlag = flag.Int64("crash.seed", 0, "seed of the random kill schedule (0: a new one, logged)")

var (
	buildOnce sync.Once
	buildDir  string
	ecsdBin   string
	buildErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildEcsd builds ../../cmd/ecsd once per test binary.
func buildEcsd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ecsd-crash-")
		if buildErr != nil {
			return
		}
		bin := filepath.Join(buildDir, "ecsd")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/ecsd")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building ecsd: %v\n%s", err, out)
			return
		}
		ecsdBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ecsdBin
}

// daemon is one data dir and port, served by a succession of ecsd
// processes.
type daemon struct {
	t       *testing.T
	bin     string
	dataDir string
	logDir  string
	addr    string

	launches int
	proc     *process // the running process, nil between kill and start
}

// process is one ecsd process.
type process struct {
	cmd     *exec.Cmd
	logPath string
	started time.Time
	done    chan struct{}
	waitErr error
}

// newDaemon makes a data dir and picks a loopback port; start runs ecsd on
// them. The last process is stopped with SIGTERM when the test ends.
func newDaemon(t *testing.T) *daemon {
	t.Helper()
	d := &daemon{t: t, bin: buildEcsd(t), dataDir: t.TempDir(), logDir: t.TempDir()}
	t.Cleanup(func() {
		if d.proc == nil {
			return
		}
		if err := d.proc.stop(); err != nil {
			t.Errorf("ecsd: %v", err)
		}
		if t.Failed() {
			d.dumpLogs()
		}
	})
	return d
}

// start launches ecsd on the daemon's data dir and port with extra flags
// and waits until /healthz answers. The first start picks the port.
func (d *daemon) start(extra ...string) {
	d.t.Helper()
	if d.proc != nil {
		d.t.Fatal("start: ecsd is already running")
	}
	for attempt := 0; ; attempt++ {
		first := d.addr == ""
		if first {
			addr, err := freeAddr()
			if err != nil {
				d.t.Fatal(err)
			}
			d.addr = addr
		}
		err := d.launch(extra)
		if err == nil {
			return
		}
		// Another process may have taken the port between freeAddr and
		// the daemon's listen: pick another, but only on the first start.
		if first && attempt < 3 && strings.Contains(err.Error(), "address already in use") {
			d.addr = ""
			continue
		}
		d.dumpLogs()
		d.t.Fatalf("starting ecsd (launch %d on %s): %v", d.launches, d.addr, err)
	}
}

func (d *daemon) launch(extra []string) error {
	d.launches++
	p := &process{
		logPath: filepath.Join(d.logDir, fmt.Sprintf("ecsd-%02d.log", d.launches)),
		done:    make(chan struct{}),
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return err
	}
	args := append([]string{"--listen", d.addr, "--data-dir", d.dataDir, "--driver", "sim"}, extra...)
	p.cmd = exec.Command(d.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = cleanEnv()
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if err := p.waitHealthy("http://"+d.addr, 20*time.Second); err != nil {
		p.kill()
		b, _ := os.ReadFile(p.logPath)
		return fmt.Errorf("%w\n%s", err, b)
	}
	d.proc = p
	return nil
}

// kill SIGKILLs the running ecsd and waits for it to be gone.
func (d *daemon) kill() {
	d.t.Helper()
	if d.proc == nil {
		d.t.Fatal("kill: ecsd is not running")
	}
	select {
	case <-d.proc.done:
		d.dumpLogs()
		d.t.Fatalf("ecsd exited on its own before the kill: %v", d.proc.waitErr)
	default:
	}
	d.proc.kill()
	d.proc = nil
}

// restart is kill then start.
func (d *daemon) restart(extra ...string) {
	d.t.Helper()
	d.kill()
	d.start(extra...)
}

// client returns a client for the daemon's first project.
func (d *daemon) client() *client.Client {
	d.t.Helper()
	cfg, err := client.LoadConfigEnv(filepath.Join(d.dataDir, "credentials.json"), func(string) string { return "" })
	if err != nil {
		d.t.Fatal(err)
	}
	cfg.HTTPClient = &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return client.New(cfg)
}

// dumpLogs logs the warnings and errors of every ecsd launched so far and
// the tail of the last one.
func (d *daemon) dumpLogs() {
	for i := 1; i <= d.launches; i++ {
		path := filepath.Join(d.logDir, fmt.Sprintf("ecsd-%02d.log", i))
		lines, err := logLines(path, func(l string) bool {
			return strings.Contains(l, `"level":"ERROR"`) || strings.Contains(l, `"level":"WARN"`)
		})
		if err != nil {
			d.t.Logf("ecsd launch %d log: %v", i, err)
			continue
		}
		if len(lines) > 0 {
			if len(lines) > 20 {
				lines = append(lines[:20], fmt.Sprintf("... %d more", len(lines)-20))
			}
			d.t.Logf("ecsd launch %d warnings and errors:\n%s", i, strings.Join(lines, "\n"))
		}
	}
	last := filepath.Join(d.logDir, fmt.Sprintf("ecsd-%02d.log", d.launches))
	if lines, err := logLines(last, func(string) bool { return true }); err == nil {
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		d.t.Logf("tail of ecsd launch %d log:\n%s", d.launches, strings.Join(lines, "\n"))
	}
}

func logLines(path string, keep func(string) bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if keep(sc.Text()) {
			out = append(out, sc.Text())
		}
	}
	return out, sc.Err()
}

func (p *process) waitHealthy(endpoint string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.done:
			return fmt.Errorf("ecsd exited before it was healthy: %v", p.waitErr)
		default:
		}
		resp, err := hc.Get(endpoint + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ecsd not healthy on %s after %v (last: %v)", endpoint, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and expects a clean exit.
func (p *process) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("ecsd had already exited: %v", p.waitErr)
	default:
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		return err
	}
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("ecsd did not exit cleanly on SIGINT: %v", p.waitErr)
		}
		return nil
	case <-time.After(15 * time.Second):
		p.kill()
		return errors.New("ecsd did not exit within 15s of SIGINT")
	}
}

// cleanEnv is the environment without ECS_* variables, so that a
// developer's shell cannot change what the daemon under test does.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ECS_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
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
