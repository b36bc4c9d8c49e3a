package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/datadir"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/postgres"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// The node contract: what makes one ecsd a node of a cloud whose nodes
// share one PostgreSQL database. Without --store a node is alone, on the
// SQLite database in its data dir, as before.

// nodeFlags declares the flags of the node contract on fs, bound to c.
func nodeFlags(fs *flagSet, c *Config) {
	storeFlag(fs, &c.Store)
	fs.stringVar(&c.Host, "host", "ECS_HOST", hostname(),
		"this node's host `NAME` (letters, digits, '.', '-', '_'): the owner of its servers, volumes and job leases")
	fs.stringVar(&c.Advertise, "advertise", "ECS_ADVERTISE", "",
		"`URL` where the other nodes reach this one (http(s)://HOST:PORT) [default: from --listen and TLS]")
	secretKeyFlag(fs, &c.SecretKeyFile)
	fs.durationVar(&c.StoreWait, "store-wait", "ECS_STORE_WAIT", DefaultStoreWait,
		"at start, how long to wait for a PostgreSQL --store that cannot be reached yet (retrying with backoff) before giving up; 0: no wait")
	fs.durationVar(&c.HostDownAfter, "host-down-after", "ECS_HOST_DOWN_AFTER", 30*time.Second,
		"a host whose heartbeat is older than this is shown down and refuses new operations on its servers")
}

// storeFlag declares --store, shared by serve and the operator commands.
func storeFlag(fs *flagSet, p *string) {
	fs.stringVar(p, "store", "ECS_STORE", "",
		"database `URL`: postgres://USER@HOST:PORT/DB?sslmode=disable, shared by every node of a cloud [default: SQLite in the data dir]")
}

// secretKeyFlag declares --secret-key-file, shared by serve and the
// operator commands.
func secretKeyFlag(fs *flagSet, p *string) {
	fs.stringVar(p, "secret-key-file", "ECS_SECRET_KEY_FILE", "",
		"`FILE` of the key that seals the stored secret keys; every node of one cloud needs the same one [default: <data-dir>/secret.key]")
}

// hostname is the default of --host.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || !validHost(h) {
		return "localhost"
	}
	return h
}

// validHost reports whether name can be a host name: 1-63 letters,
// digits, '.', '-' or '_', starting with a letter or digit. (A lease token
// is host#attempt, so '#' may not appear.)
func validHost(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '-' && c != '_') {
			return false
		}
	}
	return true
}

// checkStoreURL refuses a --store that is neither empty nor a PostgreSQL
// URL.
func checkStoreURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return errors.New("must be a PostgreSQL URL such as postgres://USER@HOST:5432/DB?sslmode=disable, " +
			"or empty for SQLite in the data dir")
	}
	return nil
}

// checkNode checks the flags of the node contract.
func (c Config) checkNode(fs *flagSet) error {
	bad := func(name, format string, args ...any) error {
		return usagef("%s: %s", fs.source(name), fmt.Sprintf(format, args...))
	}
	if err := checkStoreURL(c.Store); err != nil {
		return bad("store", "%v", err)
	}
	if !validHost(c.Host) {
		return bad("host", "%q is not a host name (1-63 letters, digits, '.', '-' or '_', starting with a letter or digit)", c.Host)
	}
	if c.Advertise != "" {
		u, err := url.Parse(c.Advertise)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" ||
			u.RawQuery != "" || u.User != nil {
			return bad("advertise", "must be a URL such as https://node1.example:8080, not %q", c.Advertise)
		}
	}
	if c.StoreWait < 0 {
		return bad("store-wait", "must not be negative, not %s", c.StoreWait)
	}
	if c.HostDownAfter <= 0 {
		return bad("host-down-after", "must be positive, not %s", c.HostDownAfter)
	}
	return nil
}

// host is the node's host name: --host, or the OS host name when a
// Config was made without flags (tests).
func (c Config) host() string {
	if c.Host != "" {
		return c.Host
	}
	return hostname()
}

// hostDownAfter is --host-down-after, or its default when a Config was
// made without flags (tests).
func (c Config) hostDownAfter() time.Duration {
	if c.HostDownAfter > 0 {
		return c.HostDownAfter
	}
	return cluster.DefaultDownAfter
}

// secretKeyPath is the file of the key that seals stored secrets.
func secretKeyPath(file, dataDir string) string {
	if file != "" {
		return file
	}
	return datadir.Dir{Path: dataDir}.SecretPath()
}

// openStore opens a node's store: the SQLite database in dir when
// storeURL is "", else the PostgreSQL database at storeURL (shared by the
// nodes of a cloud; dir then holds no database), waiting at most wait for
// one that cannot be reached yet. Both apply their pending migrations.
func openStore(ctx context.Context, storeURL string, wait time.Duration, dir datadir.Dir, synchronous string, log *slog.Logger) (store.Store, error) {
	if storeURL == "" {
		return sqlite.Open(ctx, sqlite.Config{Path: dir.DBPath(), Synchronous: synchronous})
	}
	return openPostgres(ctx, storeURL, wait, log)
}

// DefaultStoreWait is how long a starting node waits for PostgreSQL
// unless --store-wait says otherwise: long enough for a database started
// beside the nodes (a boot, a compose file) to come up.
const DefaultStoreWait = time.Minute

// The backoff between attempts to reach PostgreSQL at start.
const (
	storeRetryFirst = 250 * time.Millisecond
	storeRetryMax   = 5 * time.Second
)

// openPostgres opens the PostgreSQL store. While the database cannot be
// reached (store.ErrUnavailable: refused, lost, starting up, too many
// connections) it retries with a doubling backoff for at most wait,
// logging each wait with its reason; any other error (a bad password, a
// missing database, a failed migration) ends it at once.
func openPostgres(ctx context.Context, storeURL string, wait time.Duration, log *slog.Logger) (store.Store, error) {
	name := storeName(storeURL)
	deadline := time.Now().Add(wait)
	delay := storeRetryFirst
	for attempt := 1; ; attempt++ {
		st, err := openAttempt(ctx, storeURL, wait, deadline, log)
		if err == nil {
			if attempt > 1 {
				log.Info("the database answered", "store", name, "attempts", attempt)
			}
			return st, nil
		}
		reason := redactSecrets(err.Error(), storeURL)
		left := time.Until(deadline)
		if ctx.Err() != nil || !errors.Is(err, store.ErrUnavailable) && (wait == 0 || left > 0) {
			return nil, fmt.Errorf("--store %s: %w", name, redacted{reason, err})
		}
		if left <= 0 {
			if wait == 0 {
				return nil, fmt.Errorf("--store %s: the database cannot be reached (--store-wait 0: no wait): %s", name, reason)
			}
			return nil, fmt.Errorf("--store %s: the database could not be reached in %s (--store-wait), %d attempts; the last: %s",
				name, wait, attempt, reason)
		}
		pause := min(delay, left)
		log.Warn("waiting for the database", "store", name, "attempt", attempt, "retry_in", pause.Round(time.Millisecond).String(),
			"waited", (wait - left).Round(time.Millisecond).String(), "store_wait", wait.String(), "reason", reason)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("--store %s: %w", name, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, storeRetryMax)
	}
}

// openAttempt opens the PostgreSQL store once. When the start waits for
// the database, the attempt ends soon after the wait does: a database
// that does not even refuse (a dropped packet) cannot hold the start past
// its bound.
func openAttempt(ctx context.Context, storeURL string, wait time.Duration, deadline time.Time, log *slog.Logger) (store.Store, error) {
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(storeRetryMax))
		defer cancel()
	}
	return postgres.Open(ctx, postgres.Config{DSN: storeURL, Logger: log})
}

// redacted is an error whose message has had the store's password taken
// out; it wraps the original.
type redacted struct {
	msg string
	err error
}

func (r redacted) Error() string { return r.msg }
func (r redacted) Unwrap() error { return r.err }

// redactSecrets removes from msg the password that storeURL holds (in its
// user info or as its password parameter), should a driver message quote
// it.
func redactSecrets(msg, storeURL string) string {
	u, err := url.Parse(storeURL)
	if err != nil {
		return msg
	}
	var secrets []string
	if p, ok := u.User.Password(); ok && p != "" {
		secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
	}
	if p := u.Query().Get("password"); p != "" {
		secrets = append(secrets, p, url.QueryEscape(p))
	}
	for _, p := range secrets {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}

// errNoSecretKey is a node without the key that sealed the stored secrets.
func errNoSecretKey(path string) error {
	return fmt.Errorf("the secret key file %s does not exist, and the store holds access keys sealed with a secret key: "+
		"every node of one cloud needs the same key; copy the secret key file of the node that first started "+
		"on this store (its <data-dir>/secret.key) and give it with --secret-key-file", path)
}

// openSecretBox returns the box of the key at path. When the store holds
// no credential yet, a missing key is made (mode 0600); when it holds
// some, a missing key is an error (a new key could not open them) and is
// not made.
func openSecretBox(ctx context.Context, st store.Reader, path string) (*secret.Box, error) {
	n, err := st.CredentialCount(ctx)
	if err != nil {
		return nil, fmt.Errorf("count credentials: %w", err)
	}
	if n == 0 {
		return secret.LoadOrCreate(path)
	}
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoSecretKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	box, err := secret.New(key)
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", path, err)
	}
	return box, nil
}

// checkSecretKey refuses a key that cannot open the credentials in the
// store: the node would refuse every signed request.
func checkSecretKey(ctx context.Context, st store.Reader, box *secret.Box, path string) error {
	creds, err := st.CredentialList(ctx)
	if err != nil {
		return fmt.Errorf("list credentials: %w", err)
	}
	for _, c := range creds {
		if _, err := box.Open(c.SealedSecret); err != nil {
			return fmt.Errorf("the secret key in %s cannot open the access keys in the store (access key %s): "+
				"every node of one cloud needs the same secret key; give this node the key file of the node "+
				"that first started on this store with --secret-key-file", path, c.AccessKey)
		}
	}
	return nil
}

// formerNodeIDFile is where issue 7's releases kept the lease owner of a
// data dir's jobs, before the host name (--host) took its place.
const formerNodeIDFile = "node-id"

// releaseFormerNodeID hands back, once, the job leases that a previous
// release of ecsd held under the data dir's node id: the jobs it was
// running resume at once under host rather than after their leases
// expire. The node-id file is then removed.
func releaseFormerNodeID(ctx context.Context, st store.Store, dir datadir.Dir, host string, log *slog.Logger) error {
	path := filepath.Join(dir.Path, formerNodeIDFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if id := strings.TrimSpace(string(b)); id != "" && id != host {
		n, err := st.JobLeaseReleaseOwner(ctx, id)
		if err != nil {
			return fmt.Errorf("release the leases of the former node id: %w", err)
		}
		if n > 0 {
			log.Info("released the job leases of the data dir's former node id", "node_id", id, "host", host, "jobs", n)
		}
	}
	return os.Remove(path)
}

// storeName is the store for logs: "sqlite", or the URL without its
// password.
func storeName(storeURL string) string {
	if storeURL == "" {
		return "sqlite"
	}
	u, err := url.Parse(storeURL)
	if err != nil {
		return "postgres"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// newForwarder returns the node's end of node-to-node forwarding
// (internal/cluster), keyed by the cloud's secret key. A host's node is
// reached at the advertise URL it registered (cluster.Register). now is
// the clock forwarded calls are stamped and checked with: the store's as
// the node estimates it (cluster.Host.Now), so that nodes' clocks need not
// agree; nil is this machine's.
func newForwarder(cfg Config, st store.Reader, keyPath string, tlsConfig *tls.Config, now func() time.Time) (*cluster.Forwarder, error) {
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	hc := &http.Client{Timeout: time.Minute}
	if tlsConfig != nil && cfg.TLSCert != "" {
		// Nodes of one cloud serve certificates its operator issued: trust
		// this node's own, as clients do, besides the system's roots.
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if pem, err := os.ReadFile(cfg.TLSCert); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return cluster.NewForwarder(cluster.ForwardConfig{Key: key, Host: cfg.host(), Client: hc, Now: now,
		Resolve: func(ctx context.Context, host string) (string, error) {
			h, err := st.HostGet(ctx, host)
			if err != nil {
				return "", err
			}
			if h.Advertise == "" {
				return "", fmt.Errorf("host %s registered no advertise URL", host)
			}
			return h.Advertise, nil
		}})
}
