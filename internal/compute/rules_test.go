package compute

import (
	"errors"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
)

func TestRules(t *testing.T) {
	t.Parallel()
	stopped := ServerView{ID: "s1", Exists: true, DiskID: "d1"}
	running := ServerView{ID: "s1", Exists: true, Running: true, DiskID: "d1"}
	bare := ServerView{ID: "s1", Exists: true}
	missing := ServerView{ID: "s9"}
	free := DiskView{ID: "d2", Exists: true}
	own := DiskView{ID: "d1", Exists: true, ServerID: "s1"}
	ownRunning := DiskView{ID: "d1", Exists: true, ServerID: "s1", Running: true}
	elsewhere := DiskView{ID: "d3", Exists: true, ServerID: "s2"}
	gone := DiskView{ID: "d8"}
	noDone := func(err error) (bool, error) { return false, err }
	tests := []struct {
		name string
		call func() (bool, error)
		done bool
		kind ecs.Kind // 0: no error
	}{
		{"attach to a missing server", func() (bool, error) { return CheckAttach(missing, free) }, false, ecs.ErrNotFound},
		{"attach to a running server", func() (bool, error) { return CheckAttach(running, free) }, false, ecs.ErrBadState},
		{"attach the disk it has", func() (bool, error) { return CheckAttach(stopped, own) }, true, 0},
		{"attach a missing disk", func() (bool, error) { return CheckAttach(bare, gone) }, false, ecs.ErrNotFound},
		{"attach a second disk", func() (bool, error) { return CheckAttach(stopped, free) }, false, ecs.ErrConflict},
		{"attach another server's disk", func() (bool, error) { return CheckAttach(bare, elsewhere) }, false, ecs.ErrConflict},
		{"attach a free disk", func() (bool, error) { return CheckAttach(bare, free) }, false, 0},
		{"detach from a running server", func() (bool, error) { return CheckDetach(running, "d1") }, false, ecs.ErrBadState},
		{"detach a disk it has not", func() (bool, error) { return CheckDetach(stopped, "d2") }, true, 0},
		{"detach its disk", func() (bool, error) { return CheckDetach(stopped, "d1") }, false, 0},
		{"create again, same disk", func() (bool, error) { return CheckCreateServer(stopped, own) }, true, 0},
		{"create again, other disk", func() (bool, error) { return CheckCreateServer(stopped, free) }, false, ecs.ErrConflict},
		{"create on a missing disk", func() (bool, error) { return CheckCreateServer(missing, gone) }, false, ecs.ErrNotFound},
		{"create on another server's disk", func() (bool, error) { return CheckCreateServer(missing, elsewhere) }, false, ecs.ErrConflict},
		{"delete a missing disk", func() (bool, error) { return CheckDeleteDisk(gone) }, true, 0},
		{"delete an attached disk", func() (bool, error) { return CheckDeleteDisk(own) }, false, ecs.ErrConflict},
		{"write a running server's disk", func() (bool, error) { return noDone(CheckDiskWrite(ownRunning, false)) }, false, ecs.ErrBadState},
		{"write a missing disk", func() (bool, error) { return noDone(CheckDiskWrite(gone, true)) }, false, ecs.ErrNotFound},
		{"replace a missing disk", func() (bool, error) { return noDone(CheckDiskWrite(gone, false)) }, false, 0},
		{"start a running server", func() (bool, error) { return CheckStart(running) }, true, 0},
		{"start without a disk", func() (bool, error) { return CheckStart(bare) }, false, ecs.ErrBadState},
		{"stop a stopped server", func() (bool, error) { return CheckStop(stopped) }, true, 0},
		{"reboot a stopped server", func() (bool, error) { return noDone(CheckReboot(stopped)) }, false, ecs.ErrBadState},
		{"reboot a missing server", func() (bool, error) { return noDone(CheckReboot(missing)) }, false, ecs.ErrNotFound},
		{"a plain password", func() (bool, error) { return noDone(CheckCredentials(Credentials{PasswordHash: "Plain-passw0rd"})) }, false, ecs.ErrInvalid},
		{"a hash with ':'", func() (bool, error) { return noDone(CheckCredentials(Credentials{PasswordHash: "$6$salt$ha:sh"})) }, false, ecs.ErrInvalid},
		{"a key, no hash", func() (bool, error) {
			return noDone(CheckCredentials(Credentials{AuthorizedKeys: "ssh-ed25519 AAAA k"}))
		}, false, 0},
		{"a bad id", func() (bool, error) { return noDone(CheckIDs("server", "s1", "disk", "../d1")) }, false, ecs.ErrInvalid},
	}
	for _, tt := range tests {
		done, err := tt.call()
		if done != tt.done {
			t.Errorf("%s: done = %v, want %v", tt.name, done, tt.done)
		}
		switch {
		case tt.kind == 0 && err != nil:
			t.Errorf("%s: %v, want no error", tt.name, err)
		case tt.kind != 0 && (ecs.KindOf(err) != tt.kind || !errors.Is(err, tt.kind)):
			t.Errorf("%s: %v, want an error of kind %s", tt.name, err, tt.kind)
		}
	}
}
