package sim

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// TestJournal: every call that acted is journaled once, in order, with
// the job run its context carries; refused and cancelled calls and reads
// are not; a reopened driver appends.
func TestJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(t.TempDir(), "journal")
	d := newDriver(t, Config{Dir: dir, Journal: path})
	ctx := context.Background()
	run := ecs.WithJobRun(ctx, ecs.JobRun{JobID: "job-1", Lease: "node-a#2"})

	must(t, d.CreateDisk(run, compute.DiskSpec{ID: "d1", Image: image, SizeGB: 10}))
	if _, err := d.CreateServer(run, compute.ServerSpec{ID: "s1", Name: "one", DiskID: "d1"}); err != nil {
		t.Fatal(err)
	}
	must(t, d.ApplyCredentials(run, "d1", creds))
	must(t, d.StartServer(ctx, "s1"))
	must(t, d.StartServer(ctx, "s1")) // already started: done, journaled
	if err := d.DeleteDisk(run, "d1"); err == nil {
		t.Fatal("deleting an attached disk succeeded")
	}
	if _, err := d.ReadCredentials(run, "d1"); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(run)
	cancel()
	if err := d.StopServer(cancelled, "s1", false); err == nil {
		t.Fatal("a cancelled stop succeeded")
	}
	must(t, d.Close())

	d = newDriver(t, Config{Dir: dir, Journal: path})
	must(t, d.StopServer(run, "s1", true))
	must(t, d.Close())

	got, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []JournalEntry{
		{Op: OpCreateDisk, Disk: "d1", Job: "job-1", Lease: "node-a#2"},
		{Op: OpCreateServer, Server: "s1", Disk: "d1", Job: "job-1", Lease: "node-a#2"},
		{Op: OpApplyCredentials, Disk: "d1", Job: "job-1", Lease: "node-a#2"},
		{Op: OpStart, Server: "s1"},
		{Op: OpStart, Server: "s1"},
		{Op: OpStop, Server: "s1", Job: "job-1", Lease: "node-a#2"},
	}
	if len(got) != len(want) {
		t.Fatalf("journal has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		if e.Time.IsZero() {
			t.Errorf("entry %d has no time", i)
		}
		e.Time = want[i].Time
		if e != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, e, want[i])
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode: %v %v, want 0600", fi.Mode(), err)
	}
}

// TestReadJournal: a last line cut short is ignored, a bad line before
// the last is an error, a missing file is empty.
func TestReadJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := `{"time":"2026-01-02T03:04:05Z","op":"start","server":"s1"}` + "\n"
	for _, tc := range []struct {
		name, content string
		entries       int
		fails         bool
	}{
		{"whole", good + good, 2, false},
		{"cut last line", good + `{"time":"2026-01-0`, 1, false},
		{"bad line inside", good + "{oops\n" + good, 0, true},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadJournal(path)
		if (err != nil) != tc.fails || len(got) != tc.entries {
			t.Errorf("%s: %d entries, err %v; want %d entries, error %v", tc.name, len(got), err, tc.entries, tc.fails)
		}
	}
	if got, err := ReadJournal(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("missing journal: %v, %v", got, err)
	}
}
