package testd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// PostgresServer stops and starts again a running PostgreSQL server, for
// tests of what the nodes do while their database is gone. It works on
// the server's data directory (SHOW data_directory) as the server's own
// user (root cannot run postgres), with the pg_ctl of the binary that
// runs it. The clusters themselves are made by scripts/postgres.sh (see
// internal/store/postgres/pgtest); this only interrupts one.
type PostgresServer struct {
	dataDir string
	bin     string   // directory of postgres and pg_ctl
	opts    []string // postmaster's arguments after the binary, -D and its value left out
}

// NewPostgresServer reads how the server running in dataDir was started
// (its postmaster.opts).
func NewPostgresServer(dataDir string) (*PostgresServer, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.opts"))
	if err != nil {
		return nil, fmt.Errorf("testd: postgres: %w", err)
	}
	args, err := splitOpts(strings.TrimSpace(string(b)))
	if err != nil || len(args) == 0 {
		return nil, fmt.Errorf("testd: postgres: cannot read %s/postmaster.opts %q: %v", dataDir, b, err)
	}
	s := &PostgresServer{dataDir: dataDir, bin: filepath.Dir(args[0])}
	for i := 1; i < len(args); i++ {
		if args[i] == "-D" {
			i++
			continue
		}
		s.opts = append(s.opts, args[i])
	}
	return s, nil
}

// splitOpts splits postmaster.opts: the binary, then each argument in
// double quotes.
func splitOpts(line string) ([]string, error) {
	bin, rest, _ := strings.Cut(line, " ")
	out := []string{bin}
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] != '"' {
			return nil, fmt.Errorf("unquoted argument at %q", rest)
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return nil, errors.New("unterminated quote")
		}
		out = append(out, rest[1:1+end])
		rest = rest[end+2:]
	}
	return out, nil
}

// Stop stops the server (fast shutdown: sessions are ended at once).
func (s *PostgresServer) Stop(ctx context.Context) error {
	return s.pgctl(ctx, "-D", s.dataDir, "-m", "fast", "-w", "stop")
}

// Start starts the server again with the options it had, and waits until
// it accepts connections.
func (s *PostgresServer) Start(ctx context.Context) error {
	quoted := make([]string, len(s.opts))
	for i, o := range s.opts {
		quoted[i] = "'" + strings.ReplaceAll(o, "'", `'\''`) + "'"
	}
	log := filepath.Join(filepath.Dir(s.dataDir), "log")
	return s.pgctl(ctx, "-D", s.dataDir, "-l", log, "-w", "-t", "60", "start", "-o", strings.Join(quoted, " "))
}

// pgctl runs pg_ctl as the owner of the data directory.
func (s *PostgresServer) pgctl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "pg_ctl"), args...)
	fi, err := os.Stat(s.dataDir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && os.Getuid() == 0 && st.Uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: st.Uid, Gid: st.Gid}}
		cmd.Dir = "/" // root's working directory may be closed to the owner
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
