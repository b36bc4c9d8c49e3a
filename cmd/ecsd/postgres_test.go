package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/aksk"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/datadir"
	"github.com/ecsproject/ecsd/internal/store/postgres"
	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
	"github.com/ecsproject/ecsd/internal/testd"
)

// The tests that need PostgreSQL start a throwaway cluster through
// scripts/postgres.sh (or use ECS_TEST_POSTGRES).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// pgConfig is a node of a cloud on the PostgreSQL database dsn, with the
// cloud's secret key file keyFile.
func pgConfig(t *testing.T, dsn, host, keyFile string) Config {
	t.Helper()
	cfg := testConfig(t, "sim")
	cfg.Store, cfg.Host, cfg.SecretKeyFile = dsn, host, keyFile
	return cfg
}

func newKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret.key")
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openPG(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Nodes starting at the same moment on an empty database make the first
// project and key exactly once; the node that made it writes
// credentials.json, and the key works on every node.
func TestFirstStartOnceOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	keyFile := newKeyFile(t) // a secret key file given to every node
	const nodes = 4
	var (
		wg   sync.WaitGroup
		cfgs [nodes]Config
		ds   [nodes]*daemon
		errs [nodes]error
	)
	for i := range nodes {
		cfgs[i] = pgConfig(t, dsn, fmt.Sprintf("node-%d", i), keyFile)
		wg.Go(func() { ds[i], errs[i] = start(context.Background(), cfgs[i], quietLog()) })
	}
	wg.Wait()
	var withCreds []int
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if _, ok, _ := (datadir.Dir{Path: cfgs[i].DataDir}).ReadCredentials(); ok {
			withCreds = append(withCreds, i)
		}
		if _, err := os.Stat(filepath.Join(cfgs[i].DataDir, "ecsd.db")); err == nil {
			t.Errorf("node %d made a SQLite database beside its PostgreSQL store", i)
		}
	}
	if len(withCreds) != 1 {
		t.Fatalf("credentials.json written by nodes %v, want exactly one", withCreds)
	}
	if n, err := openPG(t, dsn).CredentialCount(t.Context()); err != nil || n != 1 {
		t.Fatalf("credentials in the store: %d, %v; want 1", n, err)
	}
	// Every node serves the first node's key.
	creds, _, _ := datadir.Dir{Path: cfgs[withCreds[0]].DataDir}.ReadCredentials()
	for i := range nodes {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ds[i].run(ctx) }()
		c := client.New(client.Config{Endpoint: ds[i].endpoint, AccessKey: creds.AccessKey, SecretKey: creds.SecretKey, ProjectID: creds.ProjectID})
		if imgs, err := c.ListImages(t.Context()); err != nil || len(imgs) == 0 {
			t.Errorf("node %d: list images with the first key: %d images, %v", i, len(imgs), err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %d: run: %v", i, err)
		}
	}
}

// A node given another cloud's secret key refuses to start and says so; so
// does one without a key file. No secret rests in plaintext in the
// database.
func TestPostgresSecretKeyMismatch(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	keyFile := newKeyFile(t)
	first := pgConfig(t, dsn, "node-1", keyFile)
	startAndStop(t, first)

	_, err := start(t.Context(), pgConfig(t, dsn, "node-2", newKeyFile(t)), quietLog())
	if err == nil || !strings.Contains(err.Error(), "cannot open the access keys in the store") {
		t.Fatalf("a node with another key: %v", err)
	}
	noKey := pgConfig(t, dsn, "node-3", "")
	_, err = start(t.Context(), noKey, quietLog())
	if err == nil || !strings.Contains(err.Error(), "same key") {
		t.Fatalf("a node without a key file: %v", err)
	}
	if _, err := os.Stat(datadir.Dir{Path: noKey.DataDir}.SecretPath()); err == nil {
		t.Error("the refused node made itself a key")
	}
	startAndStop(t, pgConfig(t, dsn, "node-4", keyFile)) // the cloud's key: fine

	// The secret key is not in the database in plaintext.
	creds, _, _ := datadir.Dir{Path: first.DataDir}.ReadCredentials()
	st := openPG(t, dsn)
	list, err := st.CredentialList(t.Context())
	if err != nil || len(list) != 1 {
		t.Fatalf("credentials: %v %v", list, err)
	}
	if strings.Contains(string(list[0].SealedSecret), creds.SecretKey) {
		t.Error("the secret key is stored in plaintext")
	}
}

// ecsd credentials add --store makes a key that running nodes accept, with
// the cloud's secret key file; it refuses another key.
func TestCredentialsAddWithStore(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	keyFile := newKeyFile(t)
	d := startDaemon(t, pgConfig(t, dsn, "node-1", keyFile))

	code, _, errOut := ecsd(t, nil, "credentials", "add", "--store", dsn, "--secret-key-file", newKeyFile(t))
	if code != 1 || !strings.Contains(errOut, "cannot open the access keys in the store") {
		t.Errorf("credentials add with another key: exit %d, %q", code, errOut)
	}
	code, out, errOut := ecsd(t, map[string]string{"ECS_STORE": dsn, "ECS_SECRET_KEY_FILE": keyFile},
		"credentials", "add", "--data-dir", filepath.Join(t.TempDir(), "none"), "--project-name", "team-b")
	if code != 0 {
		t.Fatalf("credentials add --store: exit %d, %s", code, errOut)
	}
	var c client.CredentialsFile
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.AccessKey == "" || c.SecretKey == "" {
		t.Fatalf("credentials add printed %q: %v", out, err)
	}
	tc := client.New(client.Config{Endpoint: d.endpoint, AccessKey: c.AccessKey, SecretKey: c.SecretKey, ProjectID: c.ProjectID})
	if _, err := tc.ListImages(t.Context()); err != nil {
		t.Errorf("the running node refuses the new key: %v", err)
	}
}

// While the database cannot be reached, the API answers 503 with an ECS
// error body; once it can again, the node serves as before, and what was
// committed before the cut is there.
func TestDatabaseUnreachableAnswers503(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	p, viaProxy := pgtest.NewProxy(t, dsn)
	cfg := pgConfig(t, viaProxy, "node-1", newKeyFile(t))
	d := startDaemon(t, cfg)
	c := tenant(t, cfg.DataDir, nil)
	kp, err := c.CreateKeypair(t.Context(), "before-the-cut")
	if err != nil {
		t.Fatal(err)
	}

	p.Cut()
	creds, _, _ := datadir.Dir{Path: cfg.DataDir}.ReadCredentials()
	// A signed call whose key the node knows: the database is needed.
	resp := signedGet(t, d.endpoint, creds, "/v2.1/"+creds.ProjectID+"/os-keypairs")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("list key pairs with the database cut off: %d %s, want 503", resp.StatusCode, body)
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "Common.0503" || !strings.Contains(e.Error.Message, "database") {
		t.Errorf("503 body %s (%v), want an ECS error Common.0503", body, err)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if strings.Contains(string(body), p.Addr()) || strings.Contains(string(body), "dial") {
		t.Errorf("the 503 body shows the cause: %s", body)
	}

	// A key the node does not know may be one added meanwhile: once the
	// node has failed to look keys up, it answers 503 too, not 401.
	stranger := client.CredentialsFile{AccessKey: "UNKNOWNKEY0123456789", SecretKey: "x", ProjectID: creds.ProjectID}
	waitUntil(t, "an unknown key is answered 503 while the database is cut off", func() bool {
		resp := signedGet(t, d.endpoint, stranger, "/v2.1/"+creds.ProjectID+"/os-keypairs")
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unknown key with the database cut off: %d", resp.StatusCode)
		}
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// A known key with a bad signature is still refused.
	badSig := creds
	badSig.SecretKey = "not-the-secret"
	if resp := signedGet(t, d.endpoint, badSig, "/v2.1/"+creds.ProjectID+"/os-keypairs"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a bad signature with the database cut off: %d, want 401", resp.StatusCode)
	} else {
		resp.Body.Close()
	}

	p.Restore()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := c.ListKeypairs(t.Context())
		if err == nil {
			if len(list) != 1 || list[0].Name != kp.Name {
				t.Errorf("key pairs after the database came back: %+v", list)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node does not serve once the database is back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func signedGet(t *testing.T, endpoint string, creds client.CredentialsFile, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", endpoint+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	aksk.Sign(req, nil, creds.AccessKey, creds.SecretKey, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// One node of two runs the upkeep; when it stops, the other takes over.
func TestUpkeepOnOneNode(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	keyFile := newKeyFile(t)
	a := pgConfig(t, dsn, "node-a", keyFile)
	startAndStop(t, a)
	dA, err := start(t.Context(), a, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctxA, stopA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- dA.run(ctxA) }()
	defer func() { stopA(); <-doneA }()
	st := openPG(t, dsn)
	leader := func() string {
		l, err := st.LeaderGet(t.Context(), cloud.UpkeepLeadership)
		if err != nil {
			return ""
		}
		return l.Owner
	}
	waitUntil(t, "node-a leads the upkeep", func() bool { return leader() == "node-a" })
	startDaemon(t, pgConfig(t, dsn, "node-b", keyFile))
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	doneA <- nil
	waitUntil(t, "node-b leads the upkeep", func() bool { return leader() == "node-b" })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FirstCredential called at the same instant by many nodes on an empty
// database makes one credential.
func TestFirstCredentialRaceOnPostgres(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		dsn := pgtest.Database(t, "")
		const nodes = 8
		var svcs []*cloud.Service
		for range nodes {
			st := openPG(t, dsn)
			box, err := openSecretBox(t.Context(), st, newKeyFile(t))
			if err != nil {
				t.Fatal(err)
			}
			svcs = append(svcs, cloud.New(cloud.Config{Store: st, Box: box, Logger: quietLog()}))
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			made int
		)
		gate := make(chan struct{})
		for _, svc := range svcs {
			wg.Go(func() {
				<-gate
				_, ok, err := svc.FirstCredential(t.Context())
				if err != nil {
					t.Errorf("FirstCredential: %v", err)
				}
				if ok {
					mu.Lock()
					made++
					mu.Unlock()
				}
			})
		}
		close(gate)
		wg.Wait()
		n, err := openPG(t, dsn).CredentialCount(t.Context())
		if made != 1 || n != 1 || err != nil {
			t.Fatalf("round %d: %d nodes made the first credential, %d in the store (%v); want 1", round, made, n, err)
		}
	}
}

// An image changed through one node is read, changed, through another that
// had it in memory: the store tells the other node of the change.
func TestImageCacheAcrossNodesOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	keyFile := newKeyFile(t)
	node := func(host string) *cloud.Service {
		st := openPG(t, dsn)
		box, err := openSecretBox(t.Context(), st, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return cloud.New(cloud.Config{Store: st, Box: box, Logger: quietLog(), NodeID: host})
	}
	a, b := node("node-a"), node("node-b")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	img := cloud.BuiltinImages[0]
	img.Created = time.Now().UTC().Truncate(time.Millisecond)
	if err := a.AddImage(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetImage(t.Context(), img.ID); err != nil || got.Name != img.Name {
		t.Fatalf("node b: %+v %v", got, err)
	}
	img.Name = "renamed on node a"
	if err := a.AddImage(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "node b reads the renamed image", func() bool {
		got, err := b.GetImage(t.Context(), img.ID)
		return err == nil && got.Name == img.Name
	})
}

// A data dir keeps the kind of store it was first started with: a single
// ecsd's SQLite data dir is not taken into a PostgreSQL cloud (its servers
// would be lost to it), nor a PostgreSQL node's data dir started alone on a
// new, empty SQLite database.
func TestDataDirKeepsItsStore(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	single := testConfig(t, "sim")
	startAndStop(t, single)
	joined := single
	joined.Store, joined.SecretKeyFile = dsn, newKeyFile(t)
	_, err := start(t.Context(), joined, quietLog())
	var mismatch *datadir.StoreMismatchError
	if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), "holds the SQLite database") {
		t.Fatalf("a SQLite data dir started with --store: %v", err)
	}

	node := pgConfig(t, dsn, "node-1", newKeyFile(t))
	startAndStop(t, node)
	alone := node
	alone.Store = ""
	_, err = start(t.Context(), alone, quietLog())
	if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), "give the cloud's --store") {
		t.Fatalf("a PostgreSQL node's data dir started without --store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(node.DataDir, "ecsd.db")); err == nil {
		t.Error("the refused start made a SQLite database")
	}
	code, _, errOut := ecsd(t, nil, "credentials", "add", "--data-dir", node.DataDir, "--secret-key-file", node.SecretKeyFile)
	if code != 1 || !strings.Contains(errOut, "give the cloud's --store") {
		t.Errorf("credentials add on a PostgreSQL node's data dir without --store: exit %d, %q", code, errOut)
	}
}

// A call forwarded to a host is served by that host's node, found at the
// advertise URL it registered, when it carries the cloud's MAC; one keyed
// with another cloud's key is refused.
func TestForwardToHostsNode(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "")
	keyFile := newKeyFile(t)
	a := pgConfig(t, dsn, "node-a", keyFile)
	startDaemon(t, a)
	b := pgConfig(t, dsn, "node-b", keyFile)
	startDaemon(t, b)
	creds, _, _ := datadir.Dir{Path: a.DataDir}.ReadCredentials()
	st := openPG(t, dsn)

	forward := func(key string) (int, string) {
		t.Helper()
		f, err := newForwarder(a, st, key, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := f.Forward(t.Context(), "node-b", "GET", "/v2.1/"+creds.ProjectID+"/os-keypairs", nil,
			cluster.Caller{ProjectID: creds.ProjectID, UserID: creds.UserID})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := forward(keyFile); code != 200 || !strings.Contains(body, `"keypairs"`) {
		t.Errorf("forwarded call: %d %s", code, body)
	}
	if code, body := forward(newKeyFile(t)); code != 401 || !strings.Contains(body, "APIGW.0301") {
		t.Errorf("call forwarded with another cloud's key: %d %s", code, body)
	}
}

// ecsd image import --store records the image in the cloud's catalog, as
// usable on the importing node's host, beside the running node.
func TestImageImportWithStore(t *testing.T) {
	t.Parallel()
	testd.RequireQEMU(t)
	dsn := pgtest.Database(t, "")
	cfg := pgConfig(t, dsn, "node-q", newKeyFile(t))
	cfg.Driver = "qemu"
	startAndStop(t, cfg)
	file := mkImage(t)
	code, out, errOut := ecsd(t, map[string]string{"ECS_STORE": dsn, "ECS_HOST": "node-q"},
		"image", "import", "--data-dir", cfg.DataDir, "--name", "Shared Debian", file)
	if code != 0 {
		t.Fatalf("image import --store: exit %d, %s", code, errOut)
	}
	var printed map[string]any
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("image import printed %q: %v", out, err)
	}
	id, _ := printed["id"].(string)
	st := openPG(t, dsn)
	img, err := st.ImageGet(t.Context(), id)
	if err != nil || img.Name != "Shared Debian" {
		t.Fatalf("the image in the store: %+v, %v", img, err)
	}
	hosts, err := st.ImageHostList(t.Context(), id)
	if err != nil || len(hosts) != 1 || hosts[0].Host != "node-q" {
		t.Errorf("hosts of the image: %+v, %v; want node-q", hosts, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "ecsd.db")); err == nil {
		t.Error("image import --store made a SQLite database in the data dir")
	}
}
