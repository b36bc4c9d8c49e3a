// Package qemu is the compute driver that runs servers as real QEMU virtual
// machines (ecsd --driver qemu) and keeps their system disks as qcow2
// overlays on immutable images.
//
// It promises:
//   - The compute.Driver contract, checked by compute/computetest, with the
//     same rules as the simulator (compute's Check functions): a refusal
//     wraps the kind the rule gives (ecs.ErrBadState for the disk of a
//     running server, ecs.ErrConflict for deleting an attached disk,
//     ecs.ErrNotFound for an unknown disk or server, ecs.ErrInvalid for a
//     bad id or hash), and a cancelled ctx makes a call return ctx.Err()
//     before it changes anything.
//   - Images (ImportImage) are copied into <Dir>/images, made read-only and
//     never written again. A system disk is a qcow2 overlay on its image
//     (<Dir>/disks/<id>.qcow2): creating one costs the same whatever the
//     image's size, and is atomic (a crash leaves the old disk or the new
//     one, never half of one).
//   - ApplyCredentials edits the guest's ext2/3/4 root filesystem offline,
//     from the host (a qemu-storage-daemon FUSE export of the overlay,
//     edited with e2fsprogs debugfs): root's $6$ hash and last-change day
//     in /etc/shadow (mode and owner kept), and authorized_keys in root's
//     ~/.ssh (0700 dir, 0600 file, owned by root). It reads both back and
//     verifies them, and checks the filesystem with e2fsck, before it
//     returns nil. Images it cannot edit are reported by ImportImage in
//     ecs.Image.Unsupported and refused with ErrUnsupported.
//   - A server is a qemu-system-x86_64 process: TCG unless configured
//     otherwise, user-mode networking isolated with restrict=on whose only
//     way in is a forward of 127.0.0.1:<AccessPort> to the guest's port 22,
//     a QMP socket, and a serial log (SerialLog) that never holds more than
//     Config.SerialLogMax bytes whatever the guest prints. Servers are
//     definitions under <Dir>/servers/<id>/ (server.json and seed.iso,
//     plus qemu.pid, qmp.sock, qga.sock, serial.sock, serial.log,
//     qemu.pipe and qemu.log while or after it runs). qemu.log, QEMU's
//     own messages, is capped too (qemulog.go).
//   - QEMU is sandboxed (sandbox.go): a seccomp filter (-sandbox) and, when
//     the driver runs as root, a uid of the server's own with the group of
//     Config.User (-runas), to which QEMU drops once it has opened its
//     disks, kernel and sockets;
//     it can then open no file of <Dir>, and later files reach it only as
//     descriptors passed over QMP.
//   - Guests outlive the daemon: QEMU runs in its own process group, so
//     neither a signal to ecsd's group nor ecsd's death stops it, and New
//     reattaches to the guests still running (pidfile checked against the
//     process's command line, then QMP). A guest that died while ecsd was
//     away is reported stopped.
//   - A server created with a cloud-init seed (ServerSpec.Seed, SetSeed)
//     boots with it as a read-only second virtio disk: an ISO 9660 image
//     labelled cidata (seed.go), with meta-data (a fresh instance-id per
//     seed), the tenant's user-data byte for byte, and a vendor-data
//     cloud-config holding root's $6$ hash and authorized keys; no plain
//     password is ever written. QEMU opens it at start-up, before it drops
//     privileges.
//   - Every VM has a virtio-serial port org.qemu.guest_agent.0 (agent.go):
//     SetPassword sends root's hash through the guest agent
//     (guest-set-user-password, crypted); a guest without an agent, or one
//     that has not started it yet, gives compute.ErrNoAgent after a few
//     seconds.
//   - SetServerImage (change of OS) makes a stopped server boot another
//     image's kernel and initrd.
//   - Stopping is graceful unless hard: ACPI power button (repeated, so a
//     guest still booting sees it), then quit after Config.StopTimeout.
//     Disks use cache=writeback, so what a guest flushed is on the host's
//     disk.
//
// External programs: qemu-system-x86_64, qemu-img, qemu-storage-daemon,
// debugfs, e2fsck (scripts/install-qemu-deps.sh installs them).
package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// Config configures a Driver.
type Config struct {
	// Dir is the state directory: images/, disks/, servers/ and run/
	// (scratch space of credential injection) are created in it.
	Dir string
	// Accel is "tcg" (the default), "kvm", or "auto": KVM only when
	// /dev/kvm exists and the CPU shows vmx or svm (a nested /dev/kvm
	// without them, such as PVM, runs ordinary guests far slower than TCG).
	Accel string
	// QEMUBinary and QSDBinary default to qemu-system-x86_64 and
	// qemu-storage-daemon, looked up in PATH. QEMUImgBinary, Debugfs and
	// E2fsck default likewise (debugfs and e2fsck also in /sbin).
	QEMUBinary, QSDBinary, QEMUImgBinary, Debugfs, E2fsck string
	// StopTimeout is how long a graceful stop waits for the guest to power
	// off before it quits QEMU (default 10s).
	StopTimeout time.Duration
	// User is the unprivileged user QEMU drops to (-runas) when the driver
	// runs as root; default "ecsd-qemu", created by New as a system user
	// (no home, no login shell) when missing. Not root: QEMU runs as the
	// driver's own user and User is not used.
	User string
	// GuestUIDBase is the first of the 65536 uids that QEMU processes run
	// as when the driver runs as root, one per server (default
	// 1,900,000,000; at least 100000). Nodes on one machine should have
	// ranges apart.
	GuestUIDBase int
	// SerialLogMax caps a server's serial log, in bytes (default 4 MiB,
	// at least 4 KiB): it keeps the last output of the guest's console.
	SerialLogMax int64
}

// Driver is the QEMU compute driver. Its methods are safe for concurrent
// use; calls on different disks and servers run in parallel.
type Driver struct {
	cfg     Config
	accel   string
	bins    binaries
	runas   string // the user whose group QEMU drops to; "" for no drop
	gid     int    // runas's group
	uidBase int    // Config.GuestUIDBase

	locks keyedMutex
	qsd   *storageDaemon

	mu      sync.Mutex // guards servers and the fields of *server
	servers map[string]*server

	closed    chan struct{}
	closeOnce sync.Once
	logWG     sync.WaitGroup // serial and QEMU log readers (attachRing)
}

type binaries struct {
	qemu, qsd, qemuImg, debugfs, e2fsck string
}

var _ compute.Driver = (*Driver)(nil)

// ErrUnsupported is returned (wrapped) by ApplyCredentials and
// ReadCredentials for a disk whose guest filesystem the driver cannot edit
// (the reason is in the message; ImportImage reports it in
// ecs.Image.Unsupported).
var ErrUnsupported = errors.New("qemu: unsupported image layout")

const (
	imagesDir  = "images"
	disksDir   = "disks"
	serversDir = "servers"
	runDir     = "run"
)

// newDriver is the part of New and NewImporter they share: cfg with its
// defaults and an absolute Dir, the binaries found, and Dir and its subdirs
// made (mode 0700).
func newDriver(cfg Config, subdirs ...string) (*Driver, error) {
	if cfg.Dir == "" {
		return nil, errors.New("qemu: Config.Dir is empty")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	cfg.Dir = dir
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.SerialLogMax <= 0 {
		cfg.SerialLogMax = defaultSerialLogMax
	}
	d := &Driver{cfg: cfg, servers: map[string]*server{}, closed: make(chan struct{})}
	d.qsd = &storageDaemon{d: d}
	if d.bins, err = findBinaries(cfg); err != nil {
		return nil, err
	}
	for _, sub := range append([]string{""}, subdirs...) {
		p := filepath.Join(dir, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("qemu: state dir: %w", err)
		}
		if err := os.Chmod(p, 0o700); err != nil {
			return nil, fmt.Errorf("qemu: state dir: %w", err)
		}
	}
	return d, nil
}

// New makes a driver on cfg.Dir, creating the directories it needs,
// cleaning what a killed daemon left behind (temporary disks, FUSE exports)
// and reattaching to the guests that still run.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	d, err := newDriver(cfg, imagesDir, disksDir, serversDir, runDir)
	if err != nil {
		return nil, err
	}
	dir := d.cfg.Dir
	if d.accel, err = chooseAccel(cfg.Accel); err != nil {
		return nil, err
	}
	if d.runas, d.gid, err = qemuUser(ctx, cfg.User); err != nil {
		return nil, err
	}
	if d.uidBase = cfg.GuestUIDBase; d.uidBase == 0 {
		d.uidBase = defaultGuestUIDBase
	}
	if err := checkGuestUIDBase(d.uidBase); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.cleanRunDir()
	removeTemps(filepath.Join(dir, disksDir))
	removeTemps(filepath.Join(dir, imagesDir))
	if err := d.loadServers(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func findBinaries(cfg Config) (binaries, error) {
	var b binaries
	var missing []string
	look := func(name, dflt string) string {
		if name == "" {
			name = dflt
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if p := filepath.Join(dir, name); !strings.Contains(name, "/") && isExecutable(p) {
				return p
			}
		}
		missing = append(missing, name)
		return ""
	}
	b.qemu = look(cfg.QEMUBinary, "qemu-system-x86_64")
	b.qsd = look(cfg.QSDBinary, "qemu-storage-daemon")
	b.qemuImg = look(cfg.QEMUImgBinary, "qemu-img")
	b.debugfs = look(cfg.Debugfs, "debugfs")
	b.e2fsck = look(cfg.E2fsck, "e2fsck")
	if len(missing) > 0 {
		return b, fmt.Errorf("qemu: %s not found; run scripts/install-qemu-deps.sh", strings.Join(missing, ", "))
	}
	return b, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// chooseAccel resolves Config.Accel.
func chooseAccel(a string) (string, error) {
	switch a {
	case "", "tcg":
		return "tcg", nil
	case "kvm":
		return "kvm", nil
	case "auto":
		if hardwareKVM() {
			return "kvm", nil
		}
		return "tcg", nil
	}
	return "", fmt.Errorf("qemu: Accel %q is not tcg, kvm or auto", a)
}

// hardwareKVM reports whether /dev/kvm exists and the CPU has hardware
// virtualization (vmx or svm).
func hardwareKVM() bool {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return false
	}
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	return cpuHasVirt(string(cpuinfo))
}

func cpuHasVirt(cpuinfo string) bool {
	for line := range strings.SplitSeq(cpuinfo, "\n") {
		key, flags, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, f := range strings.Fields(flags) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
	}
	return false
}

// Name returns "qemu".
func (d *Driver) Name() string { return "qemu" }

// Capabilities: disks are overlays on image files, so an image needs one.
func (d *Driver) Capabilities() compute.Capabilities { return compute.Capabilities{} }

// Accel returns the accelerator servers run with ("tcg" or "kvm").
func (d *Driver) Accel() string { return d.accel }

// Close stops the driver's watchers, log readers and storage daemon.
// Running guests keep running; a new driver on the same Dir reattaches to
// them.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		close(d.closed)
		d.qsd.stop()
		d.logWG.Wait()
	})
	return nil
}

// Errors.

func notFound(op, kind, id string) error {
	return fmt.Errorf("qemu: %s: %s %s: %w", op, kind, id, compute.ErrNotFound)
}

// opError prefixes a refusal with the driver and the operation.
func opError(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("qemu: %s: %w", op, err)
}

func invalid(op, format string, args ...any) error {
	return fmt.Errorf("qemu: %s: %s: %w", op, fmt.Sprintf(format, args...), ecs.ErrInvalid)
}

func checkIDs(op string, whatIDs ...string) error {
	return opError(op, compute.CheckIDs(whatIDs...))
}

// keyedMutex is a set of mutexes named by strings ("disk:d1",
// "server:s1"). lock takes several at once, in a fixed order, so two callers
// never deadlock.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(keys ...string) (unlock func()) {
	keys = append([]string(nil), keys...)
	sort.Strings(keys)
	keys = compactStrings(keys)
	entries := make([]*keyedEntry, len(keys))
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	for i, key := range keys {
		e := k.m[key]
		if e == nil {
			e = &keyedEntry{}
			k.m[key] = e
		}
		e.refs++
		entries[i] = e
	}
	k.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
	}
	return func() {
		for i := len(entries) - 1; i >= 0; i-- {
			entries[i].mu.Unlock()
		}
		k.mu.Lock()
		for i, key := range keys {
			if entries[i].refs--; entries[i].refs == 0 {
				delete(k.m, key)
			}
		}
		k.mu.Unlock()
	}
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// removeTemps removes the temporary files (".*.tmp") a killed daemon left in
// dir.
func removeTemps(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// run runs a helper program and returns its stdout; a failure carries its
// stderr.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return out, fmt.Errorf("%s: %w: %s", filepath.Base(name), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
