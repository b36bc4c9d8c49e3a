package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// The sandbox of a guest's QEMU (README "Sandbox"):
//
//   - seccomp (-sandbox on): obsolete system calls, fork/exec (spawn) and
//     scheduler and priority changes (resourcecontrol) are denied, and so is
//     set*uid/set*gid (elevateprivileges) when QEMU does not drop privileges
//     itself.
//   - When ecsd runs as root, QEMU drops with -runas UID:GID, once it has
//     opened what it needs at start-up (disks and their backing images,
//     kernel and initrd, the QMP and serial sockets it creates, the
//     pidfile), all as root, to a uid of its own and the group of the
//     unprivileged system user Config.User. Each server has its own uid,
//     from the range Config.GuestUIDBase + [0, guestUIDs): given at its
//     creation (or its first start after an older release), kept in its
//     server.json, never one that this driver gave another server or that
//     a running process has. Nothing in the state directory is owned by
//     these uids; no user entry names them. QEMU 7.2 installs its
//     seccomp filter before it drops privileges, so the filter cannot deny
//     the setgid/setuid calls of -runas (QEMU is killed with SIGSYS); with
//     -runas, elevateprivileges is therefore allowed, which gains a guest
//     nothing: after the drop QEMU has no capabilities left, and a set*uid
//     call can only switch among its own unprivileged ids.
//   - After the drop QEMU can open no file of the state directory: every
//     directory there is root's, mode 0700. What a running QEMU must open
//     later (a hot-plugged volume, a seed, a socket) is opened by ecsd and
//     passed over QMP as a file descriptor (qmpConn.addFD, then
//     "/dev/fdset/N" as the file name).
//   - The drop from root also makes QEMU non-dumpable, so the QEMU of one
//     guest cannot read another guest's memory or its open disks through
//     /proc or ptrace; with a uid each, one cannot signal another either.
//     They share the group (which owns nothing of ecsd's: files are 0600
//     and directories 0700, root's).

// defaultUser is Config.User's default.
const defaultUser = "ecsd-qemu"

// defaultGuestUIDBase is Config.GuestUIDBase's default: above the ranges
// of regular users, systemd's dynamic users and the usual subordinate
// uids of containers (100000 + 65536 per user, for the first ~27,000
// users), below 2^31.
const defaultGuestUIDBase = 1_900_000_000

// guestUIDs is how many uids a driver's range holds: at most that many
// servers per host when ecsd runs as root.
const guestUIDs = 65536

// checkGuestUIDBase refuses a base whose range would hold root, system or
// regular users' uids, or pass 2^31 (some tools read uids as signed).
func checkGuestUIDBase(base int) error {
	if base < 100000 || base > 1<<31-guestUIDs {
		return fmt.Errorf("qemu: guest uid base %d is not within 100000 and %d", base, 1<<31-guestUIDs)
	}
	return nil
}

// freeUIDLocked returns the lowest uid of the guest range that no server
// of the driver has and no running process has as its real, effective or
// saved uid. d.mu is held.
func (d *Driver) freeUIDLocked() (int, error) {
	used := map[int]bool{}
	for _, s := range d.servers {
		used[s.rec.UID] = true
	}
	for uid := range runningUIDs() {
		used[uid] = true
	}
	for uid := d.uidBase; uid < d.uidBase+guestUIDs; uid++ {
		if !used[uid] {
			return uid, nil
		}
	}
	return 0, fmt.Errorf("all %d guest uids from %d are taken", guestUIDs, d.uidBase)
}

// runningUIDs returns the uids (real, effective, saved, file system) of
// the processes that run now.
func runningUIDs() map[int]bool {
	out := map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if ids, ok := strings.CutPrefix(line, "Uid:"); ok {
				for _, f := range strings.Fields(ids) {
					if uid, err := strconv.Atoi(f); err == nil {
						out[uid] = true
					}
				}
				break
			}
		}
	}
	return out
}

// runAsArg is the -runas value of server rec: its own uid and the group of
// the QEMU user.
func (d *Driver) runAsArg(rec serverRecord) string {
	return strconv.Itoa(rec.UID) + ":" + strconv.Itoa(d.gid)
}

// sandboxArg is the -sandbox value; runas says whether QEMU drops to
// another user itself.
func sandboxArg(runas bool) string {
	s := "on,obsolete=deny,spawn=deny,resourcecontrol=deny,elevateprivileges="
	if runas {
		return s + "allow"
	}
	return s + "deny"
}

var userName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// userMu serializes the look-up-or-create of the QEMU user between drivers
// of one process.
var userMu sync.Mutex

// qemuUser resolves the user whose group QEMU drops to, and that group:
// "" when ecsd does not run as root (QEMU then runs as ecsd's own user,
// which is already unprivileged). As root, a missing user is created as a
// system user with no home and no login shell.
func qemuUser(ctx context.Context, name string) (string, int, error) {
	if os.Geteuid() != 0 {
		return "", 0, nil
	}
	if name == "" {
		name = defaultUser
	}
	if !userName.MatchString(name) || name == "root" {
		return "", 0, fmt.Errorf("qemu: user %q is not the name of an unprivileged user (lower-case letters, digits, _ and -)", name)
	}
	userMu.Lock()
	defer userMu.Unlock()
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		if cerr := createSystemUser(ctx, name); cerr != nil {
			return "", 0, fmt.Errorf("qemu: create user %s for QEMU: %w", name, cerr)
		}
		u, err = user.Lookup(name)
	}
	if err != nil {
		return "", 0, fmt.Errorf("qemu: user %s: %w", name, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil || u.Uid == "0" || gid == 0 {
		return "", 0, fmt.Errorf("qemu: user %s has uid %s gid %s: QEMU must not run as root", name, u.Uid, u.Gid)
	}
	return name, gid, nil
}

// createSystemUser adds name as a system user with its own group, no home
// directory and no login shell (useradd from shadow-utils, else Debian's or
// BusyBox's adduser).
func createSystemUser(ctx context.Context, name string) error {
	nologin := "/usr/sbin/nologin"
	if !isExecutable(nologin) {
		nologin = "/sbin/nologin"
	}
	var cmds [][]string
	if p, err := exec.LookPath("useradd"); err == nil || isExecutable("/usr/sbin/useradd") {
		if p == "" {
			p = "/usr/sbin/useradd"
		}
		cmds = append(cmds, []string{p, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", nologin, name})
	}
	if p, err := exec.LookPath("adduser"); err == nil || isExecutable("/usr/sbin/adduser") {
		if p == "" {
			p = "/usr/sbin/adduser"
		}
		cmds = append(cmds,
			[]string{p, "--system", "--group", "--no-create-home", "--home", "/nonexistent", "--shell", nologin, name},
			[]string{p, "-S", "-D", "-H", "-h", "/nonexistent", "-s", nologin, name})
	}
	if len(cmds) == 0 {
		return errors.New("neither useradd nor adduser found; create the user or run scripts/install-qemu-deps.sh")
	}
	var errs []error
	for _, c := range cmds {
		_, err := run(ctx, c[0], c[1:]...)
		if err == nil {
			return nil
		}
		if _, lerr := user.Lookup(name); lerr == nil {
			return nil // another process made it meanwhile
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
