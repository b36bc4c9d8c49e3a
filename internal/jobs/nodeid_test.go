package jobs_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ecsproject/ecsd/internal/jobs"
)

func TestNodeID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	id, err := jobs.NodeID(dir)
	if err != nil || len(id) != 32 {
		t.Fatalf("NodeID = %q, %v; want a new 32-digit id", id, err)
	}
	fi, err := os.Stat(filepath.Join(dir, jobs.NodeIDFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("node-id mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := jobs.NodeID(dir)
	if err != nil || again != id {
		t.Fatalf("NodeID again = %q, %v; want %q", again, err, id)
	}
	other, err := jobs.NodeID(t.TempDir())
	if err != nil || other == id {
		t.Fatalf("NodeID of another data dir = %q, %v; want another id", other, err)
	}
}

func TestNodeIDRefusesGarbage(t *testing.T) {
	t.Parallel()
	for _, content := range []string{"", "\n", "has space", "../etc", string(make([]byte, 65))} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, jobs.NodeIDFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if id, err := jobs.NodeID(dir); err == nil {
			t.Errorf("NodeID with node-id %q = %q, want an error", content, id)
		}
	}
}
