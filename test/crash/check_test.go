package crash

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-crypt/crypt"
	"github.com/go-crypt/crypt/algorithm/shacrypt"

	"github.com/ecsproject/ecsd/client"
)

// want is what the test expects of one server once every job has finished:
// the model the test keeps while it drives the daemon.
type want struct {
	imageID string
	active  bool // ACTIVE, else SHUTOFF
	boots   int  // starts from stopped the simulator must have counted
	// The last reinstall: none yet, a password, or a key pair.
	password  string
	keyName   string
	publicKey string
	reinstall string // job id of the last reinstall, for messages
}

// simDisk is the part of the simulator's disk file the test reads
// (<data-dir>/sim/disks/<id>.json, sim.DiskState).
type simDisk struct {
	ID             string `json:"id"`
	ImageID        string `json:"image_id"`
	PasswordHash   string `json:"password_hash"`
	AuthorizedKeys string `json:"authorized_keys"`
	AttachedTo     string `json:"attached_to"`
}

// simServer is the part of the simulator's server file the test reads
// (<data-dir>/sim/servers/<id>.json, sim.ServerState).
type simServer struct {
	ID     string `json:"id"`
	DiskID string `json:"disk_id"`
	Power  string `json:"power"`
	Boots  int    `json:"boots"`
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// sha512Decoder decodes only "$6$" hashes: a hash of another kind does not
// verify.
func sha512Decoder(t *testing.T) *crypt.Decoder {
	t.Helper()
	d := crypt.NewDecoder()
	if err := shacrypt.RegisterDecoderSHA512(d); err != nil {
		t.Fatal(err)
	}
	return d
}

// checkJobs requires every job to have finished SUCCESS, sub-jobs included.
func checkJobs(t *testing.T, jobs map[string]client.Job, ids []string) {
	t.Helper()
	for _, id := range ids {
		j, ok := jobs[id]
		switch {
		case !ok:
			t.Errorf("job %s: never read", id)
		case j.ID != id:
			t.Errorf("job %s: the server answered job %q", id, j.ID)
		case !jobSucceeded(j):
			code, reason := j.Failure()
			var subs []string
			for _, s := range j.Entities.SubJobs {
				subs = append(subs, s.Entities.ServerID+"="+s.Status)
			}
			t.Errorf("job %s (%s, server %s): status %s, error_code %q, fail_reason %q, sub-jobs %v; "+
				"with no fault injected a crash must be resumed, not failed",
				id, j.Type, j.Entities.ServerID, j.Status, code, reason, subs)
		}
	}
}

// checkServers compares every server of the project, the simulator's files
// under dataDir included, with the model.
func checkServers(ctx context.Context, t *testing.T, c *client.Client, dataDir string, model map[string]*want) {
	t.Helper()
	servers, err := allServers(ctx, c)
	if err != nil {
		t.Fatalf("list servers: %v", err)
	}
	var got []string
	for _, s := range servers {
		got = append(got, s.ID)
	}
	var exp []string
	for id := range model {
		exp = append(exp, id)
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Errorf("the project lists servers %v, want %v", got, exp)
	}

	dec := sha512Decoder(t)
	disksDir := filepath.Join(dataDir, "sim", "disks")
	systemDisks := map[string]bool{}
	for _, s := range servers {
		w := model[s.ID]
		if w == nil {
			continue
		}
		wantStatus := "SHUTOFF"
		if w.active {
			wantStatus = "ACTIVE"
		}
		if s.Status != wantStatus || s.TaskState != nil {
			t.Errorf("server %s: status %s, task_state %q; want %s with task_state null (last reinstall job %s)",
				s.ID, s.Status, s.Task(), wantStatus, w.reinstall)
		}
		if s.Image.ID != w.imageID {
			t.Errorf("server %s: image %q, want %q", s.ID, s.Image.ID, w.imageID)
		}
		if w.keyName != "" && s.KeyName != w.keyName {
			t.Errorf("server %s: key_name %q after reinstall job %s with key pair %q", s.ID, s.KeyName, w.reinstall, w.keyName)
		}
		if len(s.VolumesAttached) != 1 {
			t.Errorf("server %s: %d volumes attached %+v, want exactly its system disk", s.ID, len(s.VolumesAttached), s.VolumesAttached)
			continue
		}
		vol := s.VolumesAttached[0]
		if vol.Device != "/dev/vda" {
			t.Errorf("server %s: system volume %s on device %q, want /dev/vda", s.ID, vol.ID, vol.Device)
		}
		if systemDisks[vol.ID] {
			t.Errorf("server %s: volume %s is also another server's system disk", s.ID, vol.ID)
		}
		systemDisks[vol.ID] = true

		var disk simDisk
		if err := readJSON(filepath.Join(disksDir, vol.ID+".json"), &disk); err != nil {
			t.Errorf("server %s: system volume %s has no readable simulator disk: %v", s.ID, vol.ID, err)
			continue
		}
		if disk.ID != vol.ID || disk.AttachedTo != s.ID {
			t.Errorf("server %s: disk file %s has id %q, attached_to %q; want attached to the server", s.ID, vol.ID, disk.ID, disk.AttachedTo)
		}
		if disk.ImageID != w.imageID {
			t.Errorf("server %s: disk %s was made from image %q, want the server's image %q", s.ID, vol.ID, disk.ImageID, w.imageID)
		}
		checkCredentials(t, dec, s.ID, vol.ID, disk, w)

		var ss simServer
		if err := readJSON(filepath.Join(dataDir, "sim", "servers", s.ID+".json"), &ss); err != nil {
			t.Errorf("server %s: no readable simulator server: %v", s.ID, err)
			continue
		}
		wantPower := "stopped"
		if w.active {
			wantPower = "running"
		}
		if ss.DiskID != vol.ID || ss.Power != wantPower {
			t.Errorf("server %s: the simulator has disk %q, power %q; the API says volume %s, status %s",
				s.ID, ss.DiskID, ss.Power, vol.ID, s.Status)
		}
		if ss.Boots != w.boots {
			t.Errorf("server %s: the simulator counted %d boots, the test started it %d times", s.ID, ss.Boots, w.boots)
		}
	}

	entries, err := os.ReadDir(disksDir)
	if err != nil {
		t.Fatalf("simulator disks: %v", err)
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !systemDisks[id] {
			var d simDisk
			_ = readJSON(filepath.Join(disksDir, e.Name()), &d)
			t.Errorf("orphan simulator disk file %s (attached_to %q): no server has it as its system disk", e.Name(), d.AttachedTo)
		}
	}
}

// checkCredentials requires the disk to hold exactly what the server's last
// reinstall applied: it is a fresh disk from the image, so nothing else.
func checkCredentials(t *testing.T, dec *crypt.Decoder, serverID, volID string, disk simDisk, w *want) {
	t.Helper()
	switch {
	case w.password != "":
		if disk.AuthorizedKeys != "" {
			t.Errorf("server %s: disk %s has authorized_keys %q after password reinstall job %s", serverID, volID, disk.AuthorizedKeys, w.reinstall)
		}
		if !strings.HasPrefix(disk.PasswordHash, "$6$") {
			t.Errorf("server %s: disk %s password_hash %q is not a SHA-512 crypt hash (job %s)", serverID, volID, disk.PasswordHash, w.reinstall)
			return
		}
		d, err := dec.Decode(disk.PasswordHash)
		if err != nil {
			t.Errorf("server %s: disk %s password_hash does not decode: %v", serverID, volID, err)
			return
		}
		if ok, err := d.MatchAdvanced(w.password); !ok || err != nil {
			t.Errorf("server %s: disk %s password_hash does not verify the password of its last reinstall job %s (err %v)",
				serverID, volID, w.reinstall, err)
		}
	case w.publicKey != "":
		if disk.PasswordHash != "" {
			t.Errorf("server %s: disk %s keeps password_hash %q after key pair reinstall job %s", serverID, volID, disk.PasswordHash, w.reinstall)
		}
		if strings.TrimSpace(disk.AuthorizedKeys) != strings.TrimSpace(w.publicKey) {
			t.Errorf("server %s: disk %s authorized_keys %q, want key pair %s of its last reinstall job %s: %q",
				serverID, volID, disk.AuthorizedKeys, w.keyName, w.reinstall, w.publicKey)
		}
	}
}
