package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// The call journal (Config.Journal) is the simulator's witness for tests
// that kill, restart and cut off daemons: one JSON line (JournalEntry) per
// call that changed, or found already done, what it was asked to, appended
// once the call has acted and before it returns. A job's calls carry the
// job and the lease token of the run that made them (ecs.JobRunFrom), so a
// reader can tell whether two runs of one job ever acted interleaved, or a
// run acted after its lease was lost.
//
// Lines are written with one write(2) each to a file opened O_APPEND: a
// process killed at any point leaves whole lines (ReadJournal ignores a cut
// last line all the same).

// JournalEntry is one line of the call journal.
type JournalEntry struct {
	Time   time.Time `json:"time"`
	Op     string    `json:"op"` // a fault spec's operation name (Ops)
	Server string    `json:"server,omitempty"`
	Disk   string    `json:"disk,omitempty"`
	// Job and Lease name the job run that made the call, "" for a call
	// made outside a job.
	Job   string `json:"job,omitempty"`
	Lease string `json:"lease,omitempty"`
}

// journal appends entries to a file.
type journal struct {
	mu sync.Mutex
	f  *os.File
}

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sim: journal: %w", err)
	}
	return &journal{f: f}, nil
}

func (j *journal) add(e JournalEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(line); err != nil {
		return fmt.Errorf("sim: journal: %w", err)
	}
	return nil
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}

// record journals a call of op that is about to return *err, when the
// driver keeps a journal and the call succeeded. A failed write of the
// journal fails the call: the journal is only worth having whole.
func (d *Driver) record(ctx context.Context, op, serverID, diskID string, err *error) {
	if d.journal == nil || *err != nil {
		return
	}
	e := JournalEntry{Time: d.now().UTC(), Op: op, Server: serverID, Disk: diskID}
	if r, ok := ecs.JobRunFrom(ctx); ok {
		e.Job, e.Lease = r.JobID, r.Lease
	}
	*err = d.journal.add(e)
}

// ReadJournal reads a call journal; a missing file is an empty journal.
// A last line cut short (a process killed while writing it) is ignored;
// any other bad line is an error.
func ReadJournal(path string) ([]JournalEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []JournalEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var bad error
	for n := 1; sc.Scan(); n++ {
		if bad != nil {
			return nil, bad // a bad line that was not the last
		}
		var e JournalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			bad = fmt.Errorf("sim: journal %s line %d: %w", path, n, err)
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
