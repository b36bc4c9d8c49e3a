package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// DiskState is a simulated disk, as stored in <dir>/disks/<id>.json.
type DiskState struct {
	ID      string `json:"id"`
	ImageID string `json:"image_id"`
	SizeGB  int    `json:"size_gb"`
	// PasswordHash is what the disk's /etc/shadow holds for root; "" on a
	// fresh disk.
	PasswordHash string `json:"password_hash"`
	// AuthorizedKeys is the content of /root/.ssh/authorized_keys; "" on a
	// fresh disk.
	AuthorizedKeys string `json:"authorized_keys"`
	// AttachedTo is the server it is attached to (as its system disk or a
	// data disk), "" when detached. It mirrors ServerState.DiskID and
	// DataDisks, which are authoritative.
	AttachedTo string    `json:"attached_to"`
	Created    time.Time `json:"created"`
}

// Power values of ServerState.
const (
	PowerRunning = "running"
	PowerStopped = "stopped"
)

// ServerState is a simulated server, as stored in
// <dir>/servers/<id>.json.
type ServerState struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	DiskID string `json:"disk_id"` // system disk, "" when none is attached
	// DataDisks are the server's data disks, in the order attached.
	DataDisks []string `json:"data_disks,omitempty"`
	Power     string   `json:"power"` // PowerRunning or PowerStopped
	// Boots counts the boots of the server: starts from stopped and
	// reboots.
	Boots int `json:"boots"`
	// ImageID is the image the server boots (CreateServer, then
	// SetServerImage at a change of OS); ImageChanges counts the changes.
	ImageID      string `json:"image_id,omitempty"`
	ImageChanges int    `json:"image_changes,omitempty"`
	// Agent says whether the guest runs a guest agent: the simulator gives
	// one to servers whose image runs cloud-init (ecs.Image.CloudInit).
	Agent bool `json:"agent,omitempty"`
	// Seed is the cloud-init seed the server boots with (user data
	// included, as given), nil for none; Seeds counts the seeds written.
	Seed  *compute.Seed `json:"seed,omitempty"`
	Seeds int           `json:"seeds,omitempty"`
	// PasswordSets counts the passwords set online through the agent
	// (SetPassword); the last one is also in the system disk's state.
	PasswordSets int `json:"password_sets,omitempty"`
}

// object is one disk or server: its state and the lock that serializes the
// calls changing it (file write included).
type object[T any] struct {
	mu   sync.Mutex
	st   T
	live bool // the object exists
	dead bool // dropped from its table; a lookup that finds it retries
}

// table maps ids to objects. Its lock guards the map only and is never held
// while waiting for an object's lock.
type table[T any] struct {
	mu sync.Mutex
	m  map[string]*object[T]
}

// lock returns id's object, locked, adding an empty (not live) one when
// there is none. Release it with unlock.
func (t *table[T]) lock(id string) *object[T] {
	for {
		t.mu.Lock()
		o := t.m[id]
		if o == nil {
			o = &object[T]{}
			t.m[id] = o
		}
		t.mu.Unlock()
		o.mu.Lock()
		if !o.dead {
			return o
		}
		o.mu.Unlock()
	}
}

// unlock releases o, dropping it from the table when it does not exist.
func (t *table[T]) unlock(id string, o *object[T]) {
	if !o.live && !o.dead {
		o.dead = true
		t.mu.Lock()
		delete(t.m, id)
		t.mu.Unlock()
	}
	o.mu.Unlock()
}

// get returns a copy of id's state.
func (t *table[T]) get(id string) (T, bool) {
	o := t.lock(id)
	defer t.unlock(id, o)
	return o.st, o.live
}

// Files. Every write goes to <name>.tmp and is renamed over <name>, so a
// reader or a restarted daemon sees the old or the new content, never a mix.
// Nothing is fsynced: the simulator promises to survive its own process
// dying (kill -9), which the rename alone gives, not a host crash; an fsync
// per write would cost more than everything else a call does.
//
// At most ioLimit writes run at once. A write blocks an OS thread, and
// running more in parallel does not make the filesystem faster: a thousand
// concurrent reinstalls would otherwise hold a thousand threads in I/O.

const (
	disksDir   = "disks"
	serversDir = "servers"
	fileExt    = ".json"
	tmpExt     = ".tmp"
	ioLimit    = 16
)

func (d *Driver) diskPath(id string) string {
	return filepath.Join(d.dir, disksDir, id+fileExt)
}

func (d *Driver) serverPath(id string) string {
	return filepath.Join(d.dir, serversDir, id+fileExt)
}

// writeJSON atomically replaces path with v as JSON, mode 0600.
func (d *Driver) writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	d.io <- struct{}{}
	defer func() { <-d.io }()
	tmp := path + tmpExt
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sim: write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sim: write state: %w", err)
	}
	return nil
}

// removeFile removes path; a missing file is not an error.
func (d *Driver) removeFile(path string) error {
	d.io <- struct{}{}
	defer func() { <-d.io }()
	return removeFile(path)
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sim: remove state: %w", err)
	}
	return nil
}

// load reads the state directory, creating it when missing, and makes the
// disks' AttachedTo agree with the servers' DiskID (a daemon killed between
// the two writes of an attach or detach leaves them apart).
func (d *Driver) load() error {
	for _, dir := range []string{d.dir, filepath.Join(d.dir, disksDir), filepath.Join(d.dir, serversDir)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("sim: state dir: %w", err)
		}
	}
	// The subdirectories are ours; keep them private even if they were
	// created by someone else with a looser umask.
	for _, dir := range []string{disksDir, serversDir} {
		if err := os.Chmod(filepath.Join(d.dir, dir), 0o700); err != nil {
			return fmt.Errorf("sim: state dir: %w", err)
		}
	}

	disks := map[string]*DiskState{}
	err := loadDir(filepath.Join(d.dir, disksDir), func(id string, data []byte) error {
		var st DiskState
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		if st.ID != id {
			return fmt.Errorf("id %q does not match the file name", st.ID)
		}
		if st.SizeGB < 0 {
			return fmt.Errorf("size_gb %d is negative", st.SizeGB)
		}
		disks[id] = &st
		return nil
	})
	if err != nil {
		return err
	}
	servers := map[string]*ServerState{}
	owner := map[string]string{} // disk id -> server id
	err = loadDir(filepath.Join(d.dir, serversDir), func(id string, data []byte) error {
		var st ServerState
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		switch {
		case st.ID != id:
			return fmt.Errorf("id %q does not match the file name", st.ID)
		case st.Power != PowerRunning && st.Power != PowerStopped:
			return fmt.Errorf("power %q is neither %q nor %q", st.Power, PowerRunning, PowerStopped)
		case st.Power == PowerRunning && st.DiskID == "":
			return fmt.Errorf("server is running without a system disk")
		case st.DiskID != "" && disks[st.DiskID] == nil:
			return fmt.Errorf("system disk %q does not exist", st.DiskID)
		case st.DiskID != "" && owner[st.DiskID] != "":
			return fmt.Errorf("system disk %q is also attached to server %q", st.DiskID, owner[st.DiskID])
		}
		if st.DiskID != "" {
			owner[st.DiskID] = id
		}
		for _, dd := range st.DataDisks {
			switch {
			case disks[dd] == nil:
				return fmt.Errorf("data disk %q does not exist", dd)
			case owner[dd] != "":
				return fmt.Errorf("data disk %q is also attached to server %q", dd, owner[dd])
			}
			owner[dd] = id
		}
		servers[id] = &st
		return nil
	})
	if err != nil {
		return err
	}

	for id, st := range disks {
		if st.AttachedTo != owner[id] {
			st.AttachedTo = owner[id]
			if err := d.writeJSON(d.diskPath(id), st); err != nil {
				return err
			}
		}
		d.disks.m[id] = &object[DiskState]{st: *st, live: true}
	}
	for id, st := range servers {
		d.servers.m[id] = &object[ServerState]{st: *st, live: true}
	}
	return nil
}

// loadDir calls fn for every <id>.json file of dir, in id order, and
// removes the temporary files a killed process may have left behind.
func loadDir(dir string, fn func(id string, data []byte) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sim: state dir: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		if strings.HasSuffix(name, fileExt+tmpExt) {
			if err := removeFile(path); err != nil {
				return err
			}
			continue
		}
		id, ok := strings.CutSuffix(name, fileExt)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if !ecs.ValidID(id) {
			return fmt.Errorf("sim: state file %s: %q is not a valid id", path, id)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("sim: state file: %w", err)
		}
		if err := fn(id, data); err != nil {
			return fmt.Errorf("sim: state file %s: %w", path, err)
		}
	}
	return nil
}
