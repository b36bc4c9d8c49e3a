package testd

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ClusterConfig says how to run several ecsd nodes of one cloud: one
// store (a PostgreSQL database), one secret key file, and per node its own
// --host, port, data dir and log files.
type ClusterConfig struct {
	// Nodes is how many nodes to run (at least 1).
	Nodes int
	// Dir holds the nodes' data dirs (<Dir>/<host>) and the shared secret
	// key file (<Dir>/secret.key, made by NewCluster).
	Dir string
	// Store is the --store URL every node shares (required).
	Store string
	// HostPrefix names the hosts: <prefix>1 ... <prefix>N ("node" if "").
	HostPrefix string
	// Node is the configuration every node starts from; NewCluster sets
	// its DataDir, WorkDir, Store, Host and SecretKeyFile.
	Node Config
	// Tune, when set, adjusts node i's (from 0) configuration after the
	// cluster has set it: flags of its own, a store reached through a
	// proxy.
	Tune func(i int, c *Config)
}

// Cluster is several Daemons on one store. Node 0 starts first: on an
// empty database it makes the schema and the first credential (and writes
// credentials.json); the others start after it, in parallel, and are
// given its credential.
type Cluster struct {
	cfg   ClusterConfig
	nodes []*Daemon
	key   string
}

// NewCluster prepares the nodes and writes the shared secret key file
// (32 random bytes, mode 0600), as an operator copies one file to every
// host; Start runs them.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("testd: a cluster of %d nodes", cfg.Nodes)
	}
	if cfg.Store == "" || cfg.Dir == "" {
		return nil, errors.New("testd: a cluster needs a store and a directory")
	}
	if cfg.HostPrefix == "" {
		cfg.HostPrefix = "node"
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, key: filepath.Join(cfg.Dir, "secret.key")}
	if err := writeKey(c.key); err != nil {
		return nil, err
	}
	for i := range cfg.Nodes {
		host := fmt.Sprintf("%s%d", cfg.HostPrefix, i+1)
		nc := cfg.Node
		nc.DataDir = filepath.Join(cfg.Dir, host)
		nc.WorkDir = filepath.Join(cfg.Dir, host+"-logs")
		nc.Store, nc.Host, nc.SecretKeyFile = cfg.Store, host, c.key
		nc.Args = append([]string(nil), cfg.Node.Args...)
		nc.Env = maps.Clone(cfg.Node.Env)
		if cfg.Tune != nil {
			cfg.Tune(i, &nc)
		}
		d, err := New(nc)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, d)
	}
	return c, nil
}

// writeKey writes a fresh secret key to path unless one is there.
func writeKey(path string) error {
	key := make([]byte, 32)
	crand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// StartCluster is NewCluster then Start.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	c, err := NewCluster(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

// Start starts node 0, then the others in parallel with its credential.
func (c *Cluster) Start() error {
	if err := c.nodes[0].Start(); err != nil {
		return fmt.Errorf("node %s: %w", c.nodes[0].Host(), err)
	}
	cred := c.nodes[0].Credentials()
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, d := range c.nodes[1:] {
		d.cfg.Credentials = &cred
		wg.Go(func() {
			if err := d.Start(); err != nil {
				errs[i+1] = fmt.Errorf("node %s: %w", d.Host(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Nodes are the cluster's daemons, node 0 first.
func (c *Cluster) Nodes() []*Daemon { return c.nodes }

// Node is node i (from 0).
func (c *Cluster) Node(i int) *Daemon { return c.nodes[i] }

// NodeByHost is the node whose --host is host, nil if none.
func (c *Cluster) NodeByHost(host string) *Daemon {
	for _, d := range c.nodes {
		if d.Host() == host {
			return d
		}
	}
	return nil
}

// Hosts are the nodes' host names, in node order.
func (c *Cluster) Hosts() []string {
	out := make([]string, len(c.nodes))
	for i, d := range c.nodes {
		out[i] = d.Host()
	}
	return out
}

// Pick is running node number pick modulo their count (any node when
// none runs): callers pass a number they drew at random, before starting
// goroutines, so that a seed replays the same choices.
func (c *Cluster) Pick(pick int) *Daemon {
	var up []*Daemon
	for _, d := range c.nodes {
		if d.Running() {
			up = append(up, d)
		}
	}
	if len(up) == 0 {
		up = c.nodes
	}
	return up[pick%len(up)]
}

// SecretKeyFile is the key file every node shares.
func (c *Cluster) SecretKeyFile() string { return c.key }

// Store is the store URL every node shares.
func (c *Cluster) Store() string { return c.cfg.Store }

// Stop stops every running node with SIGTERM (in parallel) and reports
// those that did not exit cleanly.
func (c *Cluster) Stop() error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, d := range c.nodes {
		if !d.Running() {
			continue
		}
		wg.Go(func() {
			if err := d.Stop(); err != nil {
				errs[i] = fmt.Errorf("node %s: %w", d.Host(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Kill kills every running node (kill -9).
func (c *Cluster) Kill() {
	for _, d := range c.nodes {
		if d.Running() {
			d.Kill()
		}
	}
}

// LogReport is every node's LogReport, under its host name.
func (c *Cluster) LogReport(tail int) string {
	var b strings.Builder
	for _, d := range c.nodes {
		fmt.Fprintf(&b, "=== node %s (%s)\n%s\n", d.Host(), d.Addr(), d.LogReport(tail))
	}
	return b.String()
}

// HostsJSON runs `ecsd hosts --store URL --json` with extra flags (such
// as --host-down-after) and decodes its output into v.
func (c *Cluster) HostsJSON(ctx context.Context, v any, extra ...string) error {
	d := c.nodes[0]
	cmd := d.Command(ctx, append([]string{"hosts", "--store", c.cfg.Store, "--json"}, extra...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("ecsd hosts --json: %v\n%s%s", err, out, stderr.String())
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("ecsd hosts --json printed %q: %w", out, err)
	}
	return nil
}
