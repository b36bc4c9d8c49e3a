// Package testd starts real ecsd processes for tests and benchmarks: the
// one harness that the black-box suites (test/sdk, test/crash) and bench/
// share instead of each keeping a copy.
//
// It promises:
//   - Binary builds ./cmd/ecsd once per process; Build builds it anywhere.
//   - A Daemon is one data dir and one loopback port served by a succession
//     of ecsd processes: Start launches one and returns once /healthz
//     answers 200 and credentials.json has been read; Kill is kill -9; Stop
//     is SIGTERM and expects a clean exit; Restart is Kill then Start on the
//     same data dir and port. Every process gets its own log file
//     (the next free <WorkDir>/ecsd-NN.log), never outlives the process that started it
//     (Pdeathsig), and runs with an environment cleaned of ECS_* variables,
//     so that the caller's shell cannot change what is under test.
//   - With Config.TLS the daemon serves HTTPS with a self-signed
//     certificate made for it (--tls-cert/--tls-key); Cert, HTTPClient and
//     Transport trust exactly that certificate.
//
// It imports no testing package: failures are errors, for the caller to
// report.
package testd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ecsproject/ecsd/client"
)

// Config says how to run ecsd.
type Config struct {
	// Bin is the ecsd binary; "" means Binary().
	Bin string
	// DataDir is the daemon's --data-dir (required).
	DataDir string
	// WorkDir holds the logs and the TLS files; "" means DataDir.
	WorkDir string
	// Driver is the compute driver; "" means sim.
	Driver string
	// Args are flags given to every process, before Start's own.
	Args []string
	// Env is added to the cleaned environment of every process.
	Env map[string]string
	// UseEnv passes the listen address, data dir, driver and TLS files as
	// ECS_* variables instead of flags.
	UseEnv bool
	// TLS serves HTTPS with a self-signed certificate made in WorkDir.
	TLS bool
	// StartTimeout bounds the wait for /healthz; 0 means 60 s (a bound on
	// a hang, generous for a loaded machine, not a speed requirement).
	StartTimeout time.Duration

	// Store is the --store URL (a PostgreSQL database shared by several
	// daemons); "" keeps the SQLite file in the data dir.
	Store string
	// Host is the node's --host; "" leaves ecsd's default.
	Host string
	// SecretKeyFile is the --secret-key-file; "" leaves ecsd's default.
	SecretKeyFile string
	// Credentials is used when the data dir holds no credentials.json:
	// only the first node on an empty database writes one.
	Credentials *client.Config
}

// Daemon is one data dir and port served by a succession of ecsd processes.
type Daemon struct {
	cfg   Config
	addr  string   // fixed by the first successful Start
	cert  *Cert    // nil without TLS
	logs  []string // log path of every launch
	proc  *process // the last process started, running or not
	creds client.Config
}

// process is one ecsd process.
type process struct {
	cmd     *exec.Cmd
	started time.Time
	ready   time.Time
	done    chan struct{}
	waitErr error
}

// New prepares a daemon (and its certificate, with TLS); Start runs it.
func New(cfg Config) (*Daemon, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("testd: no data dir")
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = cfg.DataDir
	}
	if cfg.Driver == "" {
		cfg.Driver = "sim"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.Bin == "" {
		bin, err := Binary()
		if err != nil {
			return nil, err
		}
		cfg.Bin = bin
	}
	for _, dir := range []string{cfg.DataDir, cfg.WorkDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	d := &Daemon{cfg: cfg}
	if cfg.TLS {
		c, err := NewCert(cfg.WorkDir)
		if err != nil {
			return nil, fmt.Errorf("testd: certificate: %w", err)
		}
		d.cert = c
	}
	return d, nil
}

// Start is New then Start.
func Start(cfg Config, extra ...string) (*Daemon, error) {
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.Start(extra...); err != nil {
		return nil, err
	}
	return d, nil
}

// Start launches ecsd with Config.Args then extra, waits until /healthz
// answers 200 and reads credentials.json. The first Start picks a free
// loopback port (another one if the port was taken meanwhile); later ones
// reuse it (waiting up to 10 s for it if it was taken meanwhile). On
// failure the error carries the tail of the process's log.
func (d *Daemon) Start(extra ...string) error {
	if d.Running() {
		return errors.New("testd: ecsd is already running")
	}
	for attempt := 0; ; attempt++ {
		first := d.addr == ""
		if first {
			addr, err := FreeAddr()
			if err != nil {
				return err
			}
			d.addr = addr
		}
		err := d.launch(extra)
		if err == nil {
			return nil
		}
		// Another process may have taken the port between FreeAddr and
		// the daemon's listen: pick another, but only on the first start.
		inUse := strings.Contains(err.Error(), "address already in use")
		if first && attempt < 3 && inUse {
			d.addr = ""
			continue
		}
		// A restart keeps its port (clients hold the endpoint), which
		// another process may have taken while no daemon listened (a
		// listener, or a connection's ephemeral port): wait for it to be
		// let go, for a while.
		if !first && attempt < 50 && inUse {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if first {
			d.addr = ""
		}
		return err
	}
}

func (d *Daemon) launch(extra []string) error {
	logf, err := newLog(d.cfg.WorkDir)
	if err != nil {
		return err
	}
	logPath := logf.Name()
	d.logs = append(d.logs, logPath)
	env := CleanEnv()
	var args []string
	own := map[string]string{"listen": d.addr, "data-dir": d.cfg.DataDir, "driver": d.cfg.Driver}
	for name, v := range map[string]string{"store": d.cfg.Store, "host": d.cfg.Host, "secret-key-file": d.cfg.SecretKeyFile} {
		if v != "" {
			own[name] = v
		}
	}
	if d.cert != nil {
		own["tls-cert"], own["tls-key"] = d.cert.CertFile, d.cert.KeyFile
	}
	for _, name := range slices.Sorted(maps.Keys(own)) {
		if d.cfg.UseEnv {
			env = append(env, "ECS_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+"="+own[name])
		} else {
			args = append(args, "--"+name, own[name])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.cfg.Env)) {
		env = append(env, k+"="+d.cfg.Env[k])
	}
	args = append(append(args, d.cfg.Args...), extra...)

	p := &process{cmd: exec.Command(d.cfg.Bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the caller
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
	d.proc = p
	if err := d.waitHealthy(p); err != nil {
		p.kill()
		return fmt.Errorf("starting ecsd %s (launch %d on %s): %w\n--- tail of %s:\n%s",
			strings.Join(args, " "), len(d.logs), d.addr, err, logPath, d.LogTail(30))
	}
	creds, err := d.readCredentials()
	if err != nil {
		p.kill()
		return err
	}
	d.creds = creds
	return nil
}

// newLog creates the next free ecsd-NN.log in dir: daemons sharing a
// work dir keep apart logs.
func newLog(dir string) (*os.File, error) {
	for n := 1; ; n++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("ecsd-%02d.log", n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
}

func (d *Daemon) waitHealthy(p *process) error {
	deadline := time.Now().Add(d.cfg.StartTimeout)
	hc := &http.Client{Timeout: time.Second, Transport: d.Transport()}
	defer hc.CloseIdleConnections()
	for {
		select {
		case <-p.done:
			return fmt.Errorf("ecsd exited before it was healthy: %v", p.waitErr)
		default:
		}
		resp, err := hc.Get(d.Endpoint() + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.ready = time.Now()
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ecsd not healthy on %s after %v (last: %v)", d.Endpoint(), d.cfg.StartTimeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readCredentials reads <data-dir>/credentials.json, which ecsd writes
// before it serves when it made the first credential, or else takes
// Config.Credentials with the daemon's endpoint.
func (d *Daemon) readCredentials() (client.Config, error) {
	path := filepath.Join(d.cfg.DataDir, "credentials.json")
	if d.cfg.Credentials != nil {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			c := *d.cfg.Credentials
			c.Endpoint = d.Endpoint()
			return c, nil
		}
	}
	return client.LoadConfigEnv(path, noEnv)
}

func noEnv(string) string { return "" }

// Running reports whether the last process started is still running.
func (d *Daemon) Running() bool {
	if d.proc == nil {
		return false
	}
	select {
	case <-d.proc.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL to the running ecsd and waits until it is gone. It is
// an error if ecsd had already exited on its own.
func (d *Daemon) Kill() error {
	if d.proc == nil {
		return errors.New("testd: ecsd was never started")
	}
	select {
	case <-d.proc.done:
		return fmt.Errorf("ecsd had already exited: %v", d.proc.waitErr)
	default:
	}
	d.proc.kill()
	return nil
}

// stopTimeout bounds a clean exit after SIGTERM: a bound on a hang,
// generous for a loaded machine.
const stopTimeout = time.Minute

// Stop sends SIGTERM and expects a clean exit within stopTimeout; after that
// it kills the process and says so. It is an error if ecsd had already
// exited.
func (d *Daemon) Stop() error {
	if d.proc == nil {
		return errors.New("testd: ecsd was never started")
	}
	p := d.proc
	select {
	case <-p.done:
		return fmt.Errorf("ecsd had already exited: %v", p.waitErr)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("ecsd did not exit cleanly on SIGTERM: %v", p.waitErr)
		}
		return nil
	case <-time.After(stopTimeout):
		p.kill()
		return fmt.Errorf("ecsd did not exit within %v of SIGTERM", stopTimeout)
	}
}

// Restart is Kill then Start with extra flags (Config.Args stay).
func (d *Daemon) Restart(extra ...string) error {
	if err := d.Kill(); err != nil {
		return err
	}
	return d.Start(extra...)
}

func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Addr is the host:port the daemon listens on.
func (d *Daemon) Addr() string { return d.addr }

// Endpoint is http://Addr, or https://Addr with TLS.
func (d *Daemon) Endpoint() string {
	if d.cert != nil {
		return "https://" + d.addr
	}
	return "http://" + d.addr
}

// DataDir is the daemon's data dir.
func (d *Daemon) DataDir() string { return d.cfg.DataDir }

// Host is the node's --host, "" when ecsd's default is left.
func (d *Daemon) Host() string { return d.cfg.Host }

// Store is the daemon's --store, "" for the SQLite file in its data dir.
func (d *Daemon) Store() string { return d.cfg.Store }

// Credentials is the first credential, as credentials.json held it when
// the last process started.
func (d *Daemon) Credentials() client.Config { return d.creds }

// Client is a client of our API for the first credential, trusting the
// daemon's certificate.
func (d *Daemon) Client() *client.Client {
	cfg := d.creds
	cfg.HTTPClient = d.HTTPClient()
	return client.New(cfg)
}

// Cert is the daemon's certificate, nil without TLS.
func (d *Daemon) Cert() *Cert { return d.cert }

// Transport is a fresh transport that trusts the daemon's certificate.
func (d *Daemon) Transport() *http.Transport { return d.cert.Transport() }

// HTTPClient is an HTTP client with a 15 s timeout that trusts the
// daemon's certificate and does not follow redirects.
func (d *Daemon) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:       15 * time.Second,
		Transport:     d.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// PID is the process id of the last process started.
func (d *Daemon) PID() int { return d.proc.cmd.Process.Pid }

// Started is when the last process was started.
func (d *Daemon) Started() time.Time { return d.proc.started }

// Ready is when the last process first answered /healthz.
func (d *Daemon) Ready() time.Time { return d.proc.ready }

// Command is a command running the daemon's ecsd binary with args in the
// cleaned environment (plus Config.Env), for its subcommands.
func (d *Daemon) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.cfg.Bin, args...)
	cmd.Env = CleanEnv()
	for _, k := range slices.Sorted(maps.Keys(d.cfg.Env)) {
		cmd.Env = append(cmd.Env, k+"="+d.cfg.Env[k])
	}
	return cmd
}

// AddCredential runs `ecsd credentials add --data-dir DIR` (with --store
// and --secret-key-file when the daemon has them) and returns the
// credential it printed.
func (d *Daemon) AddCredential(ctx context.Context) (client.Config, error) {
	cmd := d.Command(ctx, append([]string{"credentials", "add"}, d.StoreArgs()...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return client.Config{}, fmt.Errorf("ecsd credentials add: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	var c client.CredentialsFile // the printed JSON is credentials.json's format
	if err := json.Unmarshal(out, &c); err != nil || c.AccessKey == "" || c.SecretKey == "" || c.ProjectID == "" {
		return client.Config{}, fmt.Errorf("ecsd credentials add printed no complete credential (%v):\n%s", err, out)
	}
	cfg := client.Config{Endpoint: c.Endpoint, AccessKey: c.AccessKey, SecretKey: c.SecretKey, ProjectID: c.ProjectID, UserID: c.UserID}
	return cfg, d.waitKey(ctx, cfg)
}

// StoreArgs are the flags that point an ecsd subcommand (credentials add,
// hosts, image import) at the daemon's store: --data-dir, and --store and
// --secret-key-file when the daemon has them.
func (d *Daemon) StoreArgs() []string {
	args := []string{"--data-dir", d.cfg.DataDir}
	if d.cfg.Store != "" {
		args = append(args, "--store", d.cfg.Store)
	}
	if d.cfg.SecretKeyFile != "" {
		args = append(args, "--secret-key-file", d.cfg.SecretKeyFile)
	}
	return args
}

// waitKey waits until a running daemon accepts a new key: it learns of
// keys added by another process within a second (see internal/keyring).
func (d *Daemon) waitKey(ctx context.Context, cfg client.Config) error {
	if d.proc == nil || d.addr == "" {
		return nil // never started: it reads the key when it starts
	}
	select {
	case <-d.proc.done:
		return nil // not running
	default:
	}
	cfg.Endpoint = d.Endpoint()
	cfg.HTTPClient = d.HTTPClient()
	c := client.New(cfg)
	deadline := time.Now().Add(30 * time.Second) // bounds a hang
	for {
		_, err := c.ListFlavors(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the daemon does not accept the new key %s: %w", cfg.AccessKey, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogPath is the log file of the last process started.
func (d *Daemon) LogPath() string {
	if len(d.logs) == 0 {
		return ""
	}
	return d.logs[len(d.logs)-1]
}

// LogPaths are the log files of every process started, in order.
func (d *Daemon) LogPaths() []string { return slices.Clone(d.logs) }

// LogTail is the last n lines of the last process's log.
func (d *Daemon) LogTail(n int) string {
	lines, err := logLines(d.LogPath(), func(string) bool { return true })
	if err != nil {
		return err.Error()
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogReport summarises the logs for a failed test: the warnings and errors
// of every process started (at most 20 lines each) and the last tail lines
// of the last one's log.
func (d *Daemon) LogReport(tail int) string {
	var b strings.Builder
	for i, path := range d.logs {
		lines, err := logLines(path, func(l string) bool {
			return strings.Contains(l, `"level":"ERROR"`) || strings.Contains(l, `"level":"WARN"`)
		})
		if err != nil {
			fmt.Fprintf(&b, "ecsd launch %d log: %v\n", i+1, err)
			continue
		}
		if len(lines) > 20 {
			lines = append(lines[:20], fmt.Sprintf("... %d more", len(lines)-20))
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "ecsd launch %d warnings and errors:\n%s\n", i+1, strings.Join(lines, "\n"))
		}
	}
	if len(d.logs) > 0 {
		fmt.Fprintf(&b, "tail of ecsd launch %d log (%s):\n%s", len(d.logs), d.LogPath(), d.LogTail(tail))
	}
	return b.String()
}

func logLines(path string, keep func(string) bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if keep(sc.Text()) {
			out = append(out, sc.Text())
		}
	}
	return out, sc.Err()
}

// CleanEnv is this process's environment without ECS_* variables.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ECS_") {
			env = append(env, kv)
		}
	}
	return env
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
