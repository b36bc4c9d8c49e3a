// README: run with `cd test/sdk && go test ./...` — it builds ../../cmd/ecsd
// itself, starts real ecsd daemons (driver sim) on free loopback ports with
// throw-away data dirs, and drives them with the official Huawei Cloud Go SDK.
// Add -v to see each rule; a failing test prints the tail of the daemon's log.

package sdk

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
	"github.com/ecsproject/ecsd/internal/testd"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	ecs "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2"
	ims "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ims/v2"
)

// The shared daemon is started on first use, so that tests needing no
// daemon run even when cmd/ecsd does not build.
var (
	sharedOnce sync.Once
	shared     *daemon // no latency, no faults; see sharedDaemon
	sharedErr  error

	tmpRoot string
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := runMain(m)
	testd.Cleanup()
	os.Exit(code)
}

func runMain(m *testing.M) int {
	var err error
	tmpRoot, err = os.MkdirTemp("", "ecsd-sdk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmpRoot)
	stop, err := openTestStore(os.Getenv(envStore))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", envStore, err)
		return 1
	}
	defer stop()
	code := m.Run()
	if shared == nil {
		return code
	}
	if err := shared.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "shared ecsd: %v\n", err)
		code = 1
	}
	if leaks := shared.secretLeaks(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "shared ecsd log carries secrets: %s\n", strings.Join(leaks, "; "))
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- tail of the shared ecsd log (%s):\n%s\n", shared.LogPath(), shared.LogTail(60))
	}
	return code
}

// sharedDaemon is the default daemon most tests use; each test creates its
// own servers (and, where it needs isolation, its own tenant) on it. It is
// stopped by TestMain, which also checks its log for leaked secrets.
func sharedDaemon(t *testing.T) *daemon {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = launch(testd.Config{DataDir: filepath.Join(tmpRoot, "shared")})
	})
	if sharedErr != nil {
		t.Fatalf("starting the shared ecsd: %v", sharedErr)
	}
	return shared
}

// daemon is one running ecsd (see internal/testd) with SDK clients for its
// first credential.
type daemon struct {
	*testd.Daemon
	main *tenant
	// jobTimeout, when set, replaces the constant jobTimeout in waitJob
	// (real VMs are slower than the simulator).
	jobTimeout time.Duration

	catalogOnce sync.Once
	catalog     catalog
	catalogErr  error
}

// startDaemon starts a dedicated ecsd (driver sim) for one test with extra
// flags and stops it (checking for a graceful exit and leaked secrets) when
// the test ends.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return startDaemonConfig(t, testd.Config{DataDir: t.TempDir(), Args: args})
}

// startDaemonConfig is startDaemon with a whole testd configuration.
func startDaemonConfig(t *testing.T, cfg testd.Config) *daemon {
	t.Helper()
	d, err := launch(cfg)
	if err != nil {
		t.Fatalf("start ecsd %v: %v", cfg.Args, err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("ecsd %v: %v", cfg.Args, err)
		}
		if leaks := d.secretLeaks(); len(leaks) > 0 {
			t.Errorf("ecsd log carries secrets: %s", strings.Join(leaks, "; "))
		}
		if t.Failed() {
			t.Logf("--- tail of the ecsd log (%s):\n%s", d.LogPath(), d.LogTail(40))
		}
	})
	return d
}

// envStore chooses the store every daemon of the suite runs on: unset or
// "sqlite", the SQLite file in its data dir; "postgres", a throwaway
// PostgreSQL server started through scripts/postgres.sh (or the one
// ECS_TEST_POSTGRES names); a postgres:// URL, that server (its role must
// be allowed to create databases). On PostgreSQL every daemon gets a fresh
// database of its own, dropped when the suite ends.
const envStore = "ECS_TEST_STORE"

var (
	storeAdmin string // the PostgreSQL server's admin URL; "" for SQLite
	storeMu    sync.Mutex
	storeDBs   []string // databases made for daemons
)

// openTestStore sets up the store envStore asks for and returns what
// undoes it.
func openTestStore(v string) (stop func(), err error) {
	switch {
	case v == "" || v == "sqlite":
		return func() {}, nil
	case v == "postgres":
		dsn, stopServer, err := pgtest.Server()
		if err != nil {
			return nil, err
		}
		storeAdmin = dsn
		return func() {
			if err := stopServer(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}, nil
	case strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://"):
		storeAdmin = v
		return func() {
			storeMu.Lock()
			defer storeMu.Unlock()
			for _, name := range storeDBs {
				if err := pgtest.DropDatabase(context.Background(), storeAdmin, name); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
			}
		}, nil
	}
	return nil, fmt.Errorf("%q is neither sqlite, postgres nor a postgres:// URL", v)
}

// newStore makes a fresh database for one daemon on the suite's
// PostgreSQL server and returns its URL; "" on SQLite.
func newStore() (string, error) {
	if storeAdmin == "" {
		return "", nil
	}
	storeMu.Lock()
	name := fmt.Sprintf("ecsd_sdk_%d_%d", os.Getpid(), len(storeDBs)+1)
	storeDBs = append(storeDBs, name)
	storeMu.Unlock()
	return pgtest.CreateDatabase(context.Background(), storeAdmin, name, "")
}

// launch starts ecsd as cfg says (on a database of its own when the suite
// runs on PostgreSQL) and binds SDK clients to its first credential.
func launch(cfg testd.Config) (*daemon, error) {
	if cfg.Store == "" {
		store, err := newStore()
		if err != nil {
			return nil, err
		}
		cfg.Store = store
	}
	td, err := testd.Start(cfg)
	if err != nil {
		return nil, err
	}
	d := &daemon{Daemon: td}
	if d.main, err = d.newTenantFrom(td.Credentials()); err != nil {
		td.Kill()
		return nil, err
	}
	return d, nil
}

// usedSecrets are the passwords the suite sent; none may appear in a log.
var usedSecrets sync.Map

func rememberSecret(s string) {
	if len(s) >= 8 {
		usedSecrets.Store(s, true)
	}
}

// secretLeaks lists secrets (secret keys of this daemon's tenants,
// passwords sent by the suite) found in the daemon's logs.
func (d *daemon) secretLeaks() []string {
	var log strings.Builder
	for _, path := range d.LogPaths() {
		b, err := os.ReadFile(path)
		if err != nil {
			return []string{err.Error()}
		}
		log.Write(b)
	}
	var leaks []string
	if d.main != nil && strings.Contains(log.String(), d.main.cred.SecretKey) {
		leaks = append(leaks, "the secret key of credentials.json")
	}
	usedSecrets.Range(func(k, _ any) bool {
		if strings.Contains(log.String(), k.(string)) {
			leaks = append(leaks, fmt.Sprintf("password %q", k))
		}
		return true
	})
	return leaks
}

// tenant is one project's credential with SDK clients bound to it.
type tenant struct {
	d    *daemon
	cred client.Config
	ecs  *ecs.EcsClient
	ims  *ims.ImsClient
}

func (d *daemon) newTenantFrom(c client.Config) (*tenant, error) {
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

// httpConfig is the SDK's HTTP configuration; with TLS it trusts exactly
// the daemon's self-signed certificate (no IgnoreSSLVerification).
func (d *daemon) httpConfig() *config.HttpConfig {
	hc := config.DefaultHttpConfig().WithTimeout(30 * time.Second)
	if d.Cert() != nil {
		hc = hc.WithHttpTransport(d.Transport())
	}
	return hc
}

// ecsClient builds an SDK ECS client the way reference §f does.
func (d *daemon) ecsClient(ak, sk, projectID string) (*ecs.EcsClient, error) {
	hc, err := d.sdkClient(ecs.EcsClientBuilder(), ak, sk, projectID, d.httpConfig())
	if err != nil {
		return nil, err
	}
	return ecs.NewEcsClient(hc), nil
}

func (d *daemon) imsClient(c client.Config) (*ims.ImsClient, error) {
	hc, err := d.sdkClient(ims.ImsClientBuilder(), c.AccessKey, c.SecretKey, c.ProjectID, d.httpConfig())
	if err != nil {
		return nil, err
	}
	return ims.NewImsClient(hc), nil
}

// sdkClient finishes an SDK service's client builder: the daemon's
// endpoint, an AK/SK credential and an HTTP configuration.
func (d *daemon) sdkClient(b *core.HcHttpClientBuilder, ak, sk, projectID string, hc *config.HttpConfig) (*core.HcHttpClient, error) {
	cred, err := basic.NewCredentialsBuilder().WithAk(ak).WithSk(sk).WithProjectId(projectID).SafeBuild()
	if err != nil {
		return nil, err
	}
	return b.WithEndpoints([]string{d.Endpoint()}).WithCredential(cred).WithHttpConfig(hc).SafeBuild()
}

// newTenant creates a credential for a new project with
// `ecsd credentials add` while the daemon runs.
func (d *daemon) newTenant(t *testing.T) *tenant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.AddCredential(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID == "" {
		t.Fatalf("ecsd credentials add printed no user_id: %+v", c)
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
	return filepath.Join(d.DataDir(), "sim", "disks", volumeID+".json")
}
