package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/datadir"
)

// testConfig is a serve configuration on a new data dir (not yet made) and
// a free loopback port.
func testConfig(t *testing.T, driver string) Config {
	t.Helper()
	return Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "data"), Driver: driver,
		JobRetention: time.Hour, Workers: 4, StepTimeout: time.Minute, LogLevel: "info", Synchronous: "NORMAL",
		QEMUAccel: "tcg", Host: "test-host", HostDownAfter: 30 * time.Second}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startDaemon starts ecsd in this process and serves until the test ends.
func startDaemon(t *testing.T, cfg Config) *daemon {
	t.Helper()
	d, err := start(t.Context(), cfg, quietLog())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return d
}

// startAndStop starts ecsd on cfg and stops it at once: the data dir is
// then made, with its driver recorded and its first credential.
func startAndStop(t *testing.T, cfg Config) {
	t.Helper()
	d, err := start(t.Context(), cfg, quietLog())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	d.close()
}

// tenant returns an API client with the data dir's first credential.
func tenant(t *testing.T, dataDir string, hc *http.Client) *client.Client {
	t.Helper()
	c, ok, err := datadir.Dir{Path: dataDir}.ReadCredentials()
	if !ok || err != nil {
		t.Fatalf("credentials.json: ok=%v err=%v", ok, err)
	}
	return client.New(client.Config{Endpoint: c.Endpoint, AccessKey: c.AccessKey, SecretKey: c.SecretKey,
		ProjectID: c.ProjectID, HTTPClient: hc})
}

// ecsd runs the command line args in this process with the environment
// env (nothing else of the process's) and returns its exit status and
// output.
func ecsd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, lookupIn(env), &out, &errOut)
	return code, out.String(), errOut.String()
}
