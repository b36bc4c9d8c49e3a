package main

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/store/postgres/pgtest"
)

// signalHandler is a log handler that keeps every record's message and
// attributes as text and signals the first record with message msg.
type signalHandler struct {
	msg  string
	once *sync.Once
	seen chan struct{}
	mu   *sync.Mutex
	text *strings.Builder
}

func newSignalHandler(msg string) *signalHandler {
	return &signalHandler{msg: msg, once: &sync.Once{}, seen: make(chan struct{}), mu: &sync.Mutex{}, text: &strings.Builder{}}
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *signalHandler) WithGroup(string) slog.Handler            { return h }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.text.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		h.text.WriteString(" " + a.String())
		return true
	})
	h.text.WriteString("\n")
	h.mu.Unlock()
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

func (h *signalHandler) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.text.String()
}

// withPassword is dsn with the user's password set to pw (the test
// clusters trust local connections, so any password works).
func withPassword(t *testing.T, dsn, pw string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

// A node started before its PostgreSQL answers waits for it, logging each
// wait with its reason (and no password), and starts once it answers.
func TestStartWaitsForPostgres(t *testing.T) {
	t.Parallel()
	proxy, dsn := pgtest.NewProxy(t, pgtest.Database(t, ""))
	proxy.Cut() // the database is not up yet
	const pw = "pw-Secret-1234"
	cfg := pgConfig(t, withPassword(t, dsn, pw), "waiting-node", newKeyFile(t))
	cfg.StoreWait = 2 * time.Minute
	logs := newSignalHandler("waiting for the database")
	type result struct {
		d   *daemon
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := start(t.Context(), cfg, slog.New(logs))
		done <- result{d, err}
	}()
	select {
	case <-logs.seen:
	case r := <-done:
		t.Fatalf("start did not wait for the database: %v", r.err)
	}
	proxy.Restore() // the database comes up
	r := <-done
	if r.err != nil {
		t.Fatalf("start after the database came up: %v\n%s", r.err, logs)
	}
	r.d.close()
	text := logs.String()
	if strings.Contains(text, pw) {
		t.Errorf("the log holds the store's password:\n%s", text)
	}
	for _, want := range []string{"attempt=1", "reason=", proxy.Addr(), "the database answered"} {
		if !strings.Contains(text, want) {
			t.Errorf("the log of the wait lacks %q:\n%s", want, text)
		}
	}
}

// A node whose PostgreSQL never answers gives up after --store-wait and
// exits 1 naming the database, its password redacted; with
// --store-wait 0 it does not wait.
func TestStartGivesUpOnPostgres(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	const pw = "pw-Secret-5678"
	store := "postgres://ecs:" + pw + "@" + addr + "/ecs?sslmode=disable"
	for _, tt := range []struct {
		wait string
		want []string
	}{
		{"300ms", []string{"could not be reached in 300ms (--store-wait)", "waiting for the database"}},
		{"0", []string{"cannot be reached (--store-wait 0: no wait)"}},
	} {
		code, _, errOut := ecsd(t, nil, "--store", store, "--store-wait", tt.wait, "--host", "n1", "--listen", "127.0.0.1:0",
			"--data-dir", filepath.Join(t.TempDir(), "data"), "--secret-key-file", newKeyFile(t))
		if code != 1 {
			t.Errorf("--store-wait %s: exit %d, want 1:\n%s", tt.wait, code, errOut)
		}
		for _, want := range append(tt.want, "--store postgres://ecs:xxxxx@"+addr+"/ecs") {
			if !strings.Contains(errOut, want) {
				t.Errorf("--store-wait %s: the output lacks %q:\n%s", tt.wait, want, errOut)
			}
		}
		if strings.Contains(errOut, pw) {
			t.Errorf("--store-wait %s: the output holds the password:\n%s", tt.wait, errOut)
		}
	}
	if code, _, errOut := ecsd(t, nil, "--store-wait", "-1s"); code != 2 || !strings.Contains(errOut, "--store-wait: must not be negative") {
		t.Errorf("--store-wait -1s: exit %d, %s", code, errOut)
	}
}

// A password in the store URL's query is redacted too.
func TestStoreNameRedactsPasswords(t *testing.T) {
	t.Parallel()
	got := storeName("postgres://ecs:pw1@db:5432/ecs?sslmode=disable&password=pw2")
	if strings.Contains(got, "pw1") || strings.Contains(got, "pw2") || !strings.Contains(got, "db:5432/ecs") {
		t.Errorf("storeName: %s", got)
	}
	if got := redactSecrets("failed: password pw1 and pw2", "postgres://ecs:pw1@db/ecs?password=pw2"); got != "failed: password xxxxx and xxxxx" {
		t.Errorf("redactSecrets: %s", got)
	}
}
