package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"sync"
)

// The sandbox of a guest's QEMU (README "Sandbox"):
//
//   - seccomp (-sandbox on): obsolete system calls, fork/exec (spawn) and
//     scheduler and priority changes (resourcecontrol) are denied, and so is
//     set*uid/set*gid (elevateprivileges) when QEMU does not drop privileges
//     itself.
//   - When ecsd runs as root, QEMU drops to an unprivileged system user
//     (Config.User) with -runas once it has opened what it needs at start-up
//     (disks and their backing images, kernel and initrd, the QMP and serial
//     sockets it creates, the pidfile), all as root. QEMU 7.2 installs its
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
//     /proc or ptrace although they share the user; what they share is the
//     right to signal each other.

// defaultUser is Config.User's default.
const defaultUser = "ecsd-qemu"

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

// qemuUser resolves the user QEMU drops to: "" when ecsd does not run as
// root (QEMU then runs as ecsd's own user, which is already unprivileged).
// As root, a missing user is created as a system user with no home and no
// login shell.
func qemuUser(ctx context.Context, name string) (string, error) {
	if os.Geteuid() != 0 {
		return "", nil
	}
	if name == "" {
		name = defaultUser
	}
	if !userName.MatchString(name) || name == "root" {
		return "", fmt.Errorf("qemu: user %q is not the name of an unprivileged user (lower-case letters, digits, _ and -)", name)
	}
	userMu.Lock()
	defer userMu.Unlock()
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		if cerr := createSystemUser(ctx, name); cerr != nil {
			return "", fmt.Errorf("qemu: create user %s for QEMU: %w", name, cerr)
		}
		u, err = user.Lookup(name)
	}
	if err != nil {
		return "", fmt.Errorf("qemu: user %s: %w", name, err)
	}
	if u.Uid == "0" || u.Gid == "0" {
		return "", fmt.Errorf("qemu: user %s has uid %s gid %s: QEMU must not run as root", name, u.Uid, u.Gid)
	}
	return name, nil
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
