package compute

import (
	"fmt"
	"strings"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// The rules every driver enforces alike, in one place. A driver gathers what
// it knows about the server and disk a call names (a ServerView, a
// DiskView) under its own locks, asks the rule, and does the work only when
// the rule says so. A refusal wraps the kind computetest checks:
// ecs.ErrNotFound for an unknown server or disk, ecs.ErrBadState for a
// state that forbids the call (a running server, a stopped one, no system
// disk), ecs.ErrConflict for a clash with another server or disk, and
// ecs.ErrInvalid for a bad argument. The driver prefixes its name and the
// operation.

// ServerView is what a driver knows about a server when a rule is checked.
type ServerView struct {
	ID      string
	Exists  bool
	Running bool
	DiskID  string // its system disk, "" for none
	// DataDisks are its data disks, in the order attached.
	DataDisks []string
}

// HasDataDisk reports whether diskID is one of the server's data disks.
func (v ServerView) HasDataDisk(diskID string) bool {
	for _, id := range v.DataDisks {
		if id == diskID {
			return true
		}
	}
	return false
}

// MaxDataDisks is how many data disks a server may have (Huawei's limit
// for a KVM server on VBD).
const MaxDataDisks = 23

// DiskView is what a driver knows about a disk when a rule is checked.
type DiskView struct {
	ID     string
	Exists bool
	// ServerID is the server it is attached to (as its system disk or a
	// data disk), "" for none, and Running whether that server runs.
	ServerID string
	Running  bool
}

func notFound(what, id string) error {
	return fmt.Errorf("%s %s: %w", what, id, ErrNotFound)
}

func refuse(kind ecs.Kind, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), kind)
}

// CheckIDs checks ids given as pairs of what and id ("server", id, "disk",
// id) against the one id rule (ecs.ValidID).
func CheckIDs(whatIDs ...string) error {
	for i := 0; i+1 < len(whatIDs); i += 2 {
		if err := ecs.CheckID(whatIDs[i], whatIDs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// CheckCredentials refuses credentials a driver must not write: a password
// hash that is not a $6$ SHA-512 crypt hash of printable characters without
// ':' (a plain password, or one that would break the shadow file).
func CheckCredentials(c Credentials) error {
	h := c.PasswordHash
	if h == "" {
		return nil
	}
	if !strings.HasPrefix(h, "$6$") || len(h) < 4 {
		return refuse(ecs.ErrInvalid, "the password hash is not a $6$ SHA-512 crypt hash")
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c > '~' || c == ':' {
			return refuse(ecs.ErrInvalid, "the password hash contains ':', a space or a control character")
		}
	}
	return nil
}

// CheckDiskWrite is the rule of CreateDisk (replacing a disk) and
// ApplyCredentials: no running server may use the disk. ApplyCredentials
// also needs the disk to exist (mustExist).
func CheckDiskWrite(disk DiskView, mustExist bool) error {
	switch {
	case mustExist && !disk.Exists:
		return notFound("disk", disk.ID)
	case disk.ServerID != "" && disk.Running:
		return refuse(ecs.ErrBadState, "disk %s is attached to running server %s", disk.ID, disk.ServerID)
	}
	return nil
}

// CheckDeleteDisk is the rule of DeleteDisk: a missing disk is already
// deleted (done), an attached one cannot be deleted.
func CheckDeleteDisk(disk DiskView) (done bool, err error) {
	switch {
	case !disk.Exists:
		return true, nil
	case disk.ServerID != "":
		return false, refuse(ecs.ErrConflict, "disk %s is attached to server %s", disk.ID, disk.ServerID)
	}
	return false, nil
}

// CheckCreateServer is the rule of CreateServer with disk as its system
// disk: creating it again with the same disk is done; with another disk it
// is a conflict. A new server needs an existing disk that no server has.
func CheckCreateServer(srv ServerView, disk DiskView) (done bool, err error) {
	switch {
	case srv.Exists && srv.DiskID == disk.ID:
		return true, nil
	case srv.Exists:
		return false, refuse(ecs.ErrConflict, "server %s exists with system disk %q", srv.ID, srv.DiskID)
	case !disk.Exists:
		return false, notFound("disk", disk.ID)
	case disk.ServerID != "":
		return false, refuse(ecs.ErrConflict, "disk %s is attached to server %s", disk.ID, disk.ServerID)
	}
	return false, nil
}

// CheckAttach is the rule of AttachDisk: the server must exist and be
// stopped; attaching the disk it has is done; otherwise the disk must exist,
// the server have no system disk and the disk belong to no server.
func CheckAttach(srv ServerView, disk DiskView) (done bool, err error) {
	switch {
	case !srv.Exists:
		return false, notFound("server", srv.ID)
	case srv.Running:
		return false, refuse(ecs.ErrBadState, "server %s is running", srv.ID)
	case srv.DiskID == disk.ID:
		return true, nil
	case !disk.Exists:
		return false, notFound("disk", disk.ID)
	case srv.DiskID != "":
		return false, refuse(ecs.ErrConflict, "server %s already has system disk %s", srv.ID, srv.DiskID)
	case disk.ServerID != "":
		return false, refuse(ecs.ErrConflict, "disk %s is attached to server %s", disk.ID, disk.ServerID)
	}
	return false, nil
}

// CheckDetach is the rule of DetachDisk: the server must exist and be
// stopped; detaching a disk it does not have is done.
func CheckDetach(srv ServerView, diskID string) (done bool, err error) {
	switch {
	case !srv.Exists:
		return false, notFound("server", srv.ID)
	case srv.Running:
		return false, refuse(ecs.ErrBadState, "server %s is running", srv.ID)
	case srv.DiskID != diskID:
		return true, nil
	}
	return false, nil
}

// CheckAttachData is the rule of AttachDataDisk: the server must exist,
// running or not; attaching a data disk it has is done; otherwise the disk
// must exist, belong to no server, and the server have room for it.
func CheckAttachData(srv ServerView, disk DiskView) (done bool, err error) {
	switch {
	case !srv.Exists:
		return false, notFound("server", srv.ID)
	case srv.HasDataDisk(disk.ID):
		return true, nil
	case !disk.Exists:
		return false, notFound("disk", disk.ID)
	case disk.ServerID != "":
		return false, refuse(ecs.ErrConflict, "disk %s is attached to server %s", disk.ID, disk.ServerID)
	case len(srv.DataDisks) >= MaxDataDisks:
		return false, refuse(ecs.ErrConflict, "server %s has %d data disks, the most it can have", srv.ID, MaxDataDisks)
	}
	return false, nil
}

// CheckDetachData is the rule of DetachDataDisk: the server must exist,
// running or not; detaching a disk that is not one of its data disks is
// done.
func CheckDetachData(srv ServerView, diskID string) (done bool, err error) {
	if !srv.Exists {
		return false, notFound("server", srv.ID)
	}
	return !srv.HasDataDisk(diskID), nil
}

// CheckStart is the rule of StartServer: a running server is already
// started (done); a stopped one needs a system disk.
func CheckStart(srv ServerView) (done bool, err error) {
	switch {
	case !srv.Exists:
		return false, notFound("server", srv.ID)
	case srv.Running:
		return true, nil
	case srv.DiskID == "":
		return false, refuse(ecs.ErrBadState, "server %s has no system disk", srv.ID)
	}
	return false, nil
}

// CheckStop is the rule of StopServer: a stopped server is already stopped
// (done).
func CheckStop(srv ServerView) (done bool, err error) {
	if !srv.Exists {
		return false, notFound("server", srv.ID)
	}
	return !srv.Running, nil
}

// CheckReboot is the rule of RebootServer: only a running server reboots.
func CheckReboot(srv ServerView) error {
	switch {
	case !srv.Exists:
		return notFound("server", srv.ID)
	case !srv.Running:
		return refuse(ecs.ErrBadState, "server %s is not running", srv.ID)
	}
	return nil
}

// CheckSeed refuses a seed a driver must not write: a bad instance id or
// hostname, a password hash that is not a $6$ crypt hash, authorized keys
// with control characters, or more than MaxUserData bytes of user data.
func CheckSeed(s *Seed) error {
	if s == nil {
		return nil
	}
	if len(s.InstanceID) > 64 || !ecs.ValidID(s.InstanceID) {
		return refuse(ecs.ErrInvalid, "the seed's instance id %q is not 1-64 characters of [A-Za-z0-9._-]", s.InstanceID)
	}
	if s.Hostname != "" && Hostname(s.Hostname) != s.Hostname {
		return refuse(ecs.ErrInvalid, "the seed's hostname is not a DNS label")
	}
	if err := CheckCredentials(Credentials{PasswordHash: s.PasswordHash}); err != nil {
		return err
	}
	for i := 0; i < len(s.AuthorizedKeys); i++ {
		if c := s.AuthorizedKeys[i]; (c < ' ' && c != '\n') || c == 0x7f {
			return refuse(ecs.ErrInvalid, "the seed's authorized keys contain a control character")
		}
	}
	if len(s.UserData) > MaxUserData {
		return refuse(ecs.ErrInvalid, "the seed's user data is %d bytes, more than %d", len(s.UserData), MaxUserData)
	}
	return nil
}

// Hostname makes a DNS label of a server name for Seed.Hostname: letters,
// digits and '-' kept (lower-cased), runs of anything else become one '-',
// no '-' at either end, at most 63 characters; "" when nothing is left.
func Hostname(name string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		if b.Len() >= 63 {
			break
		}
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			dash = true
			continue
		}
		if dash && b.Len() > 0 && b.Len() < 62 {
			b.WriteByte('-')
		}
		dash = false
		b.WriteRune(c)
	}
	return b.String()
}

// CheckStopped is the rule of SetSeed and SetServerImage: the server must
// exist and be stopped.
func CheckStopped(srv ServerView) error {
	switch {
	case !srv.Exists:
		return notFound("server", srv.ID)
	case srv.Running:
		return refuse(ecs.ErrBadState, "server %s is running", srv.ID)
	}
	return nil
}

// CheckAgent is the rule of SetPassword and PingAgent: the server must
// exist and run; hasAgent says whether its guest runs an agent (a driver
// that cannot know before asking passes true).
func CheckAgent(srv ServerView, hasAgent bool) error {
	switch {
	case !srv.Exists:
		return notFound("server", srv.ID)
	case !srv.Running:
		return fmt.Errorf("server %s is stopped: %w", srv.ID, ErrNoAgent)
	case !hasAgent:
		return fmt.Errorf("server %s: its guest runs no agent: %w", srv.ID, ErrNoAgent)
	}
	return nil
}
