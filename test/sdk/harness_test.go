// README: run with `cd test/sdk && go test ./...` — it builds ../../cmd/ecsd
// itself, starts real ecsd daemons (driver sim) on free loopback ports with
// throw-away data dirs, and drives them with the official Huawei Cloud Go SDK.
// Add -v to see each rule; a failing test prints the tail of the daemon's log.

package sdk

import (
	"bytes"
	"context"
	"encoding/json"
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
	"syscall"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	ecs "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2"
	ims "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ims/v2"
)

// The daemon binary is built, and the shared daemon started, on first use,
// so that tests needing no daemon run even when cmd/ecsd does not build.
var (
	buildOnce sync.Once
	ecsdBin   string
	buildErr  error

	sharedOnce sync.Once
	shared     *daemon // no latency, no faults; see sharedDaemon
	sharedErr  error

	tmpRoot string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	tmpRoot, err = os.MkdirTemp("", "ecsd-sdk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmpRoot)
	code := m.Run()
	if shared == nil {
		return code
	}
	if err := shared.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "shared ecsd: %v\n", err)
		code = 1
	}
	if leaks := shared.secretLeaks(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "shared ecsd log carries secrets: %s\n", strings.Join(leaks, "; "))
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- tail of the shared ecsd log (%s):\n%s\n", shared.logPath, shared.logTail(60))
	}
	return code
}

// buildEcsd builds ../../cmd/ecsd once per test run.
func buildEcsd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		bin := filepath.Join(tmpRoot, "ecsd")
		build := exec.Command("go", "build", "-o", bin, "./cmd/ecsd")
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
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

// sharedDaemon is the default daemon most tests use; each test creates its
// own servers (and, where it needs isolation, its own tenant) on it. It is
// stopped by TestMain, which also checks its log for leaked secrets.
func sharedDaemon(t *testing.T) *daemon {
	t.Helper()
	buildEcsd(t)
	sharedOnce.Do(func() {
		dir := filepath.Join(tmpRoot, "shared")
		if sharedErr = os.Mkdir(dir, 0o700); sharedErr != nil {
			return
		}
		shared, sharedErr = launch(dir, nil, nil)
	})
	if sharedErr != nil {
		t.Fatalf("starting the shared ecsd: %v", sharedErr)
	}
	return shared
}

// credential is the JSON ecsd writes to credentials.json and prints from
// `ecsd credentials add`.
type credential struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id"`
	Endpoint  string `json:"endpoint"`
}

// daemon is one running ecsd process.
type daemon struct {
	dir      string
	addr     string // host:port it listens on
	endpoint string // http://addr
	logPath  string
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	main     *tenant
	// jobTimeout, when set, replaces the constant jobTimeout in waitJob
	// (real VMs are slower than the simulator).
	jobTimeout time.Duration

	catalogOnce sync.Once
	catalog     catalog
	catalogErr  error
}

// startDaemon starts a dedicated ecsd for one test with extra flags and
// stops it (checking for a graceful exit and leaked secrets) when the test
// ends.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	buildEcsd(t)
	d, err := launch(t.TempDir(), args, nil)
	if err != nil {
		t.Fatalf("start ecsd %v: %v", args, err)
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("ecsd %v: %v", args, err)
		}
		if leaks := d.secretLeaks(); len(leaks) > 0 {
			t.Errorf("ecsd log carries secrets: %s", strings.Join(leaks, "; "))
		}
		if t.Failed() {
			t.Logf("--- tail of the ecsd log (%s):\n%s", d.logPath, d.logTail(40))
		}
	})
	return d
}

// launch starts ecsd on a free loopback port with --data-dir dir, waits for
// /healthz and reads the first credential. With env non-nil the listen
// address, data dir and driver are passed through the environment instead
// of flags.
func launch(dir string, args []string, env map[string]string) (*daemon, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		d, err := launchOnce(dir, args, env)
		if err == nil {
			return d, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func launchOnce(dir string, args []string, env map[string]string) (*daemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	d := &daemon{
		dir:      dir,
		addr:     addr,
		endpoint: "http://" + addr,
		logPath:  filepath.Join(dir, fmt.Sprintf("ecsd-%s.log", strings.ReplaceAll(addr, ":", "_"))),
		done:     make(chan struct{}),
	}
	logf, err := os.Create(d.logPath)
	if err != nil {
		return nil, err
	}
	var argv []string
	if env == nil {
		argv = append(argv, "--listen", addr, "--data-dir", dir, "--driver", "sim")
	}
	argv = append(argv, args...)
	d.cmd = exec.Command(ecsdBin, argv...)
	d.cmd.Stdout = logf
	d.cmd.Stderr = logf
	d.cmd.Env = cleanEnv()
	if env != nil {
		d.cmd.Env = append(d.cmd.Env, "ECS_LISTEN="+addr, "ECS_DATA_DIR="+dir, "ECS_DRIVER=sim")
		for k, v := range env {
			d.cmd.Env = append(d.cmd.Env, k+"="+v)
		}
	}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	if err := d.waitHealthy(20 * time.Second); err != nil {
		d.kill()
		return nil, fmt.Errorf("%w\n--- ecsd log:\n%s", err, d.logTail(30))
	}
	cred, err := d.readCredentials()
	if err != nil {
		d.kill()
		return nil, err
	}
	d.main, err = d.newTenantFrom(cred)
	if err != nil {
		d.kill()
		return nil, err
	}
	return d, nil
}

// cleanEnv is the test's environment without ECS_* variables, so that a
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

func (d *daemon) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-d.done:
			return fmt.Errorf("ecsd exited before it was healthy: %v", d.waitErr)
		default:
		}
		resp, err := hc.Get(d.endpoint + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ecsd not healthy on %s after %v (last: %v)", d.endpoint, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) readCredentials() (credential, error) {
	var c credential
	b, err := os.ReadFile(filepath.Join(d.dir, "credentials.json"))
	if err != nil {
		return c, fmt.Errorf("credentials.json: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("credentials.json is not the documented JSON: %w", err)
	}
	return c, nil
}

// stop sends SIGTERM and expects a clean exit within 15 s.
func (d *daemon) stop() error {
	select {
	case <-d.done:
		return fmt.Errorf("ecsd had already exited: %v", d.waitErr)
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-d.done:
		if d.waitErr != nil {
			return fmt.Errorf("ecsd did not exit cleanly on SIGTERM: %v", d.waitErr)
		}
		return nil
	case <-time.After(15 * time.Second):
		d.kill()
		return errors.New("ecsd did not exit within 15s of SIGTERM")
	}
}

func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

func (d *daemon) logTail(lines int) string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// usedSecrets are the passwords the suite sent; none may appear in a log.
var usedSecrets sync.Map

func rememberSecret(s string) {
	if len(s) >= 8 {
		usedSecrets.Store(s, true)
	}
}

// secretLeaks lists secrets (secret keys of this daemon's tenants,
// passwords sent by the suite) found in the daemon's log.
func (d *daemon) secretLeaks() []string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return []string{err.Error()}
	}
	log := string(b)
	var leaks []string
	if d.main != nil && strings.Contains(log, d.main.cred.SecretKey) {
		leaks = append(leaks, "the secret key of credentials.json")
	}
	usedSecrets.Range(func(k, _ any) bool {
		if strings.Contains(log, k.(string)) {
			leaks = append(leaks, fmt.Sprintf("password %q", k))
		}
		return true
	})
	return leaks
}

// tenant is one project's credential with SDK clients bound to it.
type tenant struct {
	d    *daemon
	cred credential
	ecs  *ecs.EcsClient
	ims  *ims.ImsClient
}

func (d *daemon) newTenantFrom(c credential) (*tenant, error) {
	ec, err := d.ecsClient(c.AccessKey, c.SecretKey, c.ProjectID)
	if err != nil {
		return nil, err
	}
	ic, err := d.imsClient(c)
	if err != nil {
		return nil, err
	}
	return &tenant{d: d, cred: c, ecs: ec, ims: ic}, nil
}

func httpConfig() *config.HttpConfig {
	return config.DefaultHttpConfig().WithTimeout(30 * time.Second)
}

// ecsClient builds an SDK ECS client the way reference §f does.
func (d *daemon) ecsClient(ak, sk, projectID string) (*ecs.EcsClient, error) {
	cred, err := basic.NewCredentialsBuilder().WithAk(ak).WithSk(sk).WithProjectId(projectID).SafeBuild()
	if err != nil {
		return nil, err
	}
	hc, err := ecs.EcsClientBuilder().
		WithEndpoints([]string{d.endpoint}).
		WithCredential(cred).
		WithHttpConfig(httpConfig()).
		SafeBuild()
	if err != nil {
		return nil, err
	}
	return ecs.NewEcsClient(hc), nil
}

func (d *daemon) imsClient(c credential) (*ims.ImsClient, error) {
	cred, err := basic.NewCredentialsBuilder().WithAk(c.AccessKey).WithSk(c.SecretKey).WithProjectId(c.ProjectID).SafeBuild()
	if err != nil {
		return nil, err
	}
	hc, err := ims.ImsClientBuilder().
		WithEndpoints([]string{d.endpoint}).
		WithCredential(cred).
		WithHttpConfig(httpConfig()).
		SafeBuild()
	if err != nil {
		return nil, err
	}
	return ims.NewImsClient(hc), nil
}

// newTenant creates a credential for a new project with
// `ecsd credentials add` while the daemon runs.
func (d *daemon) newTenant(t *testing.T) *tenant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ecsdBin, "credentials", "add", "--data-dir", d.dir)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ecsd credentials add: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	var c credential
	if err := json.NewDecoder(&stdout).Decode(&c); err != nil {
		t.Fatalf("ecsd credentials add printed no credential JSON on stdout: %v\nstdout: %s", err, stdout.Bytes())
	}
	if c.AccessKey == "" || c.SecretKey == "" || c.ProjectID == "" || c.UserID == "" {
		t.Fatalf("ecsd credentials add printed an incomplete credential: %+v", c)
	}
	if c.ProjectID == d.main.cred.ProjectID {
		t.Fatalf("ecsd credentials add reused project %s; want a new project", c.ProjectID)
	}
	tn, err := d.newTenantFrom(c)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// diskPath is where the simulator records what it wrote to a volume.
func (d *daemon) diskPath(volumeID string) string {
	return filepath.Join(d.dir, "sim", "disks", volumeID+".json")
}
