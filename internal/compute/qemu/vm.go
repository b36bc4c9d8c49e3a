package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ecsproject/ecsd/internal/atomicfile"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// serverRecord is a server definition, as stored in
// <Dir>/servers/<id>/server.json.
type serverRecord struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	VCPUs  int    `json:"vcpus"`
	RAMMB  int    `json:"ram_mb"`
	DiskID string `json:"disk_id"` // "" when no system disk is attached
	// DataDisks are the data disks, in the order attached (datadisk.go).
	DataDisks []string `json:"data_disks,omitempty"`
	Kernel    string   `json:"kernel,omitempty"`
	Initrd    string   `json:"initrd,omitempty"`
	// ImageID is the image the server boots (its Kernel and Initrd), set
	// at creation and by SetServerImage.
	ImageID string `json:"image_id,omitempty"`
	// Port is the host port on 127.0.0.1 forwarded to the guest's port 22.
	Port int `json:"port"`
	// UID is the uid the server's QEMU runs as when the driver runs as
	// root (sandbox.go); 0 until it has one.
	UID int `json:"uid,omitempty"`
}

// server is a defined server; its fields are guarded by Driver.mu.
type server struct {
	rec  serverRecord
	proc *vmProc // the QEMU process last started or reattached; nil if none
}

func (s *server) running() bool { return s.proc != nil && !s.proc.stopped() }

// vmProc is a QEMU process: a child of this driver, or one reattached after
// a restart (then watched through /proc, since it cannot be waited for).
type vmProc struct {
	pid    int
	exit   chan struct{} // closed when the process has exited
	serial chan struct{} // closed when the serial log has all the console's output, or will have none
	log    chan struct{} // closed when qemu.log has all QEMU's messages, or will have none
	done   chan struct{} // closed when all three are
}

// newVMProc returns the process pid, whose QEMU log reader closes log.
func newVMProc(pid int, log chan struct{}) *vmProc {
	return &vmProc{pid: pid, exit: make(chan struct{}), serial: make(chan struct{}), log: log, done: make(chan struct{})}
}

// markExited records that the process has exited; done follows once the
// serial log has the console's last output and qemu.log QEMU's last words.
func (p *vmProc) markExited() {
	close(p.exit)
	<-p.serial
	<-p.log
	close(p.done)
}

func (p *vmProc) stopped() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

const (
	serverFile = "server.json"
	pidFile    = "qemu.pid"
	qmpSock    = "qmp.sock"
	serialSock = "serial.sock"
	serialFile = "serial.log"
	// agentSock (agent.go) and seedFile (seed.go) live there too.
	qemuLog = "qemu.log"
)

func (d *Driver) serverDir(id string) string { return filepath.Join(d.cfg.Dir, serversDir, id) }

// SerialLog returns the path of the file that receives the serial console
// of server id's current (or last) boot: its last Config.SerialLogMax bytes
// at most, without what the guest printed while no driver ran.
func (d *Driver) SerialLog(id string) string { return filepath.Join(d.serverDir(id), serialFile) }

// AccessPort returns the host port forwarded to server id's SSH port.
func (d *Driver) AccessPort(id string) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.servers[id]
	if !ok {
		return 0, false
	}
	return s.rec.Port, true
}

// lockServer locks server id and its system disk, in the order every caller
// uses, and returns the server (nil when it does not exist).
// lockedServer is the prologue of the calls on one existing server: it
// checks ctx and the id, takes the server's lock and returns the server,
// or an error wrapping compute.ErrNotFound. The caller must call unlock.
func (d *Driver) lockedServer(ctx context.Context, op, serverID string) (*server, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := checkIDs(op, "server", serverID); err != nil {
		return nil, nil, err
	}
	s, unlock := d.lockServer(serverID, "")
	if err := ctx.Err(); err != nil {
		unlock()
		return nil, nil, err
	}
	if s == nil {
		unlock()
		return nil, nil, notFound(op, "server", serverID)
	}
	return s, unlock, nil
}

func (d *Driver) lockServer(id string, extraDisk string) (*server, func()) {
	for {
		d.mu.Lock()
		s := d.servers[id]
		disk := ""
		if s != nil {
			disk = s.rec.DiskID
		}
		d.mu.Unlock()
		keys := []string{"server:" + id}
		if disk != "" {
			keys = append(keys, "disk:"+disk)
		}
		if extraDisk != "" {
			keys = append(keys, "disk:"+extraDisk)
		}
		unlock := d.locks.lock(keys...)
		d.mu.Lock()
		s2 := d.servers[id]
		same := s2 == s && (s == nil || s.rec.DiskID == disk)
		d.mu.Unlock()
		if same {
			return s, unlock
		}
		unlock()
	}
}

// CreateServer defines a stopped server with spec.DiskID as its system disk
// and a free host port for SSH. Creating it again with the same disk
// returns the same port; with another disk it is a conflict.
func (d *Driver) CreateServer(ctx context.Context, spec compute.ServerSpec) (compute.ServerInfo, error) {
	const op = "create server"
	if err := ctx.Err(); err != nil {
		return compute.ServerInfo{}, err
	}
	if err := checkIDs(op, "server", spec.ID, "disk", spec.DiskID); err != nil {
		return compute.ServerInfo{}, err
	}
	if err := compute.CheckSeed(spec.Seed); err != nil {
		return compute.ServerInfo{}, opError(op, err)
	}
	s, unlock := d.lockServer(spec.ID, spec.DiskID)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return compute.ServerInfo{}, err
	}
	done, err := compute.CheckCreateServer(d.serverView(spec.ID, s), d.diskView(spec.DiskID))
	if err != nil {
		return compute.ServerInfo{}, opError(op, err)
	}
	if done {
		// A create that runs again (after a crash) leaves the seed it
		// gives, unless the server has booted since.
		if spec.Seed != nil && !d.serverView(spec.ID, s).Running {
			if err := d.writeSeed(spec.ID, spec.Seed); err != nil {
				return compute.ServerInfo{}, fmt.Errorf("qemu: %s: seed: %w", op, err)
			}
		}
		return compute.ServerInfo{AccessPort: s.rec.Port}, nil
	}
	rec := serverRecord{
		ID: spec.ID, Name: spec.Name, VCPUs: max(spec.VCPUs, 1), RAMMB: spec.RAMMB, DiskID: spec.DiskID,
		Kernel: spec.Image.Kernel, Initrd: spec.Image.Initrd, ImageID: spec.Image.ID,
	}
	if rec.RAMMB <= 0 {
		rec.RAMMB = 256
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	port, err := d.freePortLocked()
	if err != nil {
		return compute.ServerInfo{}, fmt.Errorf("qemu: %s: %w", op, err)
	}
	rec.Port = port
	if d.runas != "" {
		if rec.UID, err = d.freeUIDLocked(); err != nil {
			return compute.ServerInfo{}, fmt.Errorf("qemu: %s: %w", op, err)
		}
	}
	dir := d.serverDir(spec.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return compute.ServerInfo{}, fmt.Errorf("qemu: %s: %w", op, err)
	}
	// The seed first: a server record names a complete server (a
	// directory without one is removed at start-up).
	if err := d.writeSeed(spec.ID, spec.Seed); err != nil {
		os.RemoveAll(dir)
		return compute.ServerInfo{}, fmt.Errorf("qemu: %s: seed: %w", op, err)
	}
	if err := writeJSON(filepath.Join(dir, serverFile), rec); err != nil {
		os.RemoveAll(dir)
		return compute.ServerInfo{}, fmt.Errorf("qemu: %s: %w", op, err)
	}
	d.servers[spec.ID] = &server{rec: rec}
	return compute.ServerInfo{AccessPort: port}, nil
}

// freePortLocked picks a port on 127.0.0.1 that is free now and that no
// other server has.
func (d *Driver) freePortLocked() (int, error) {
	used := map[int]bool{}
	for _, s := range d.servers {
		used[s.rec.Port] = true
	}
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !used[port] {
			return port, nil
		}
	}
	return 0, errors.New("no free port on 127.0.0.1")
}

// writeJSON atomically and durably replaces path with v as JSON.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// DeleteServer stops the server at once if it runs (QMP quit) and removes
// its definition; its disk is kept. A missing server is already deleted.
func (d *Driver) DeleteServer(ctx context.Context, serverID string) error {
	const op = "delete server"
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs(op, "server", serverID); err != nil {
		return err
	}
	s, unlock := d.lockServer(serverID, "")
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if s == nil {
		return nil
	}
	if err := d.stopVM(ctx, s, true); err != nil {
		return fmt.Errorf("qemu: %s: %w", op, err)
	}
	dir := d.serverDir(serverID)
	if err := os.Remove(filepath.Join(dir, serverFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("qemu: %s: %w", op, err)
	}
	d.mu.Lock()
	delete(d.servers, serverID)
	d.mu.Unlock()
	os.RemoveAll(dir)
	return nil
}

// AttachDisk makes diskID the system disk of a stopped server that has
// none; attaching the disk it has succeeds.
func (d *Driver) AttachDisk(ctx context.Context, serverID, diskID string) error {
	const op = "attach disk"
	s, unlock, err := d.lockForDisk(ctx, op, serverID, diskID, diskID)
	if err != nil {
		return err
	}
	defer unlock()
	if done, err := compute.CheckAttach(d.serverView(serverID, s), d.diskView(diskID)); done || err != nil {
		return opError(op, err)
	}
	return d.setDisk(s, diskID)
}

// DetachDisk detaches diskID from a stopped server; a disk the server does
// not have is already detached.
func (d *Driver) DetachDisk(ctx context.Context, serverID, diskID string) error {
	const op = "detach disk"
	s, unlock, err := d.lockForDisk(ctx, op, serverID, diskID, "")
	if err != nil {
		return err
	}
	defer unlock()
	if done, err := compute.CheckDetach(d.serverView(serverID, s), diskID); done || err != nil {
		return opError(op, err)
	}
	return d.setDisk(s, "")
}

// lockForDisk begins disk call op on server serverID and disk diskID:
// it checks ctx and the ids, then locks the server (and extraDisk, see
// lockServer). The caller defers the unlock.
func (d *Driver) lockForDisk(ctx context.Context, op, serverID, diskID, extraDisk string) (*server, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := checkIDs(op, "server", serverID, "disk", diskID); err != nil {
		return nil, nil, err
	}
	s, unlock := d.lockServer(serverID, extraDisk)
	if err := ctx.Err(); err != nil {
		unlock()
		return nil, nil, err
	}
	return s, unlock, nil
}

// serverView is what the rules need to know about server id (s, nil when
// it does not exist), whose lock the caller holds.
func (d *Driver) serverView(id string, s *server) compute.ServerView {
	if s == nil {
		return compute.ServerView{ID: id}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return compute.ServerView{ID: id, Exists: true, Running: s.running(), DiskID: s.rec.DiskID,
		DataDisks: append([]string(nil), s.rec.DataDisks...)}
}

// giveUID gives s a uid of its own and records it. The caller holds s's
// lock; d.mu is held throughout, as in CreateServer, so that no two
// servers get one uid.
func (d *Driver) giveUID(s *server) (serverRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := s.rec
	uid, err := d.freeUIDLocked()
	if err != nil {
		return next, err
	}
	next.UID = uid
	if err := writeJSON(filepath.Join(d.serverDir(next.ID), serverFile), next); err != nil {
		return next, fmt.Errorf("qemu: write server %s: %w", next.ID, err)
	}
	s.rec = next
	return next, nil
}

func (d *Driver) setDisk(s *server, diskID string) error {
	d.mu.Lock()
	next := s.rec
	d.mu.Unlock()
	next.DiskID = diskID
	if err := writeJSON(filepath.Join(d.serverDir(next.ID), serverFile), next); err != nil {
		return fmt.Errorf("qemu: write server %s: %w", next.ID, err)
	}
	d.mu.Lock()
	s.rec = next
	d.mu.Unlock()
	return nil
}

// StartServer boots the server from its system disk and returns once QEMU
// runs (not once the guest has booted); a running server is already
// started.
func (d *Driver) StartServer(ctx context.Context, serverID string) error {
	const op = "start server"
	s, unlock, err := d.lockedServer(ctx, op, serverID)
	if err != nil {
		return err
	}
	defer unlock()
	if done, err := compute.CheckStart(d.serverView(serverID, s)); done || err != nil {
		return opError(op, err)
	}
	if err := d.startVM(ctx, s); err != nil {
		return fmt.Errorf("qemu: %s %s: %w", op, serverID, err)
	}
	return nil
}

// StopServer stops the server: unless hard, it presses the ACPI power
// button (again every second, so a guest still booting sees it) and waits
// up to Config.StopTimeout for the guest to power off; then it quits QEMU.
// A stopped server is already stopped.
func (d *Driver) StopServer(ctx context.Context, serverID string, hard bool) error {
	const op = "stop server"
	s, unlock, err := d.lockedServer(ctx, op, serverID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := d.stopVM(ctx, s, hard); err != nil {
		return fmt.Errorf("qemu: %s %s: %w", op, serverID, err)
	}
	return nil
}

// RebootServer stops a running server (gracefully unless hard) and starts
// it again in a new QEMU process; a stopped server cannot be rebooted.
func (d *Driver) RebootServer(ctx context.Context, serverID string, hard bool) error {
	const op = "reboot server"
	s, unlock, err := d.lockedServer(ctx, op, serverID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := compute.CheckReboot(d.serverView(serverID, s)); err != nil {
		return opError(op, err)
	}
	if err := d.stopVM(ctx, s, hard); err != nil {
		return fmt.Errorf("qemu: %s %s: %w", op, serverID, err)
	}
	if err := d.startVM(ctx, s); err != nil {
		return fmt.Errorf("qemu: %s %s: %w", op, serverID, err)
	}
	return nil
}

// PowerState reports whether the server's QEMU process runs.
func (d *Driver) PowerState(ctx context.Context, serverID string) (compute.PowerState, error) {
	if err := ctx.Err(); err != nil {
		return compute.PowerMissing, err
	}
	if err := checkIDs("power state", "server", serverID); err != nil {
		return compute.PowerMissing, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.servers[serverID]
	switch {
	case !ok:
		return compute.PowerMissing, nil
	case s.running():
		return compute.PowerRunning, nil
	}
	return compute.PowerStopped, nil
}

// qemuArgs is the command line of a server's QEMU. Paths relative to the
// server's directory (its working directory) keep the socket paths short.
// QEMU opens all of them at start-up, before it drops privileges (-runas).
// The machine starts paused (-S): startVM connects the serial log first.
func (d *Driver) qemuArgs(rec serverRecord, seed bool) []string {
	args := []string{
		"-name", "ecsd-" + rec.ID,
		"-no-user-config", "-nodefaults", "-display", "none", "-no-reboot", "-S",
		"-sandbox", sandboxArg(d.runas != ""),
		"-M", "pc", "-m", strconv.Itoa(rec.RAMMB), "-smp", strconv.Itoa(rec.VCPUs),
		"-accel", d.accel,
	}
	if d.accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	if rec.Kernel != "" {
		args = append(args, "-kernel", rec.Kernel, "-append", "console=ttyS0 panic=-1 quiet no_timer_check")
		if rec.Initrd != "" {
			args = append(args, "-initrd", rec.Initrd)
		}
	}
	args = append(args,
		// writeback: a guest's flush reaches the host disk (cache=unsafe
		// would drop flushes and lose data on a host crash).
		"-drive", "file="+qemuOpt(d.diskPath(rec.DiskID))+",format=qcow2,if=virtio,cache=writeback,discard=unmap",
	)
	args = append(args, d.dataDiskArgs(rec)...)
	if seed {
		// The NoCloud seed, /dev/vdb in the guest, opened read-only (as
		// root, before the drop).
		args = append(args, "-drive", "file="+seedFile+",format=raw,if=virtio,readonly=on")
	}
	args = append(args,
		"-netdev", "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:"+strconv.Itoa(rec.Port)+"-:22",
		"-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-rng-pci",
		// The guest agent's channel: a port the agent finds by its name.
		"-chardev", "socket,id="+agentChardev+",path="+agentSock+",server=on,wait=off",
		"-device", "virtio-serial-pci,id=vser0",
		"-device", "virtserialport,bus=vser0.0,chardev="+agentChardev+",name=org.qemu.guest_agent.0",
		"-chardev", "socket,id=serial0,path="+serialSock+",server=on,wait=off",
		"-serial", "chardev:serial0",
		"-qmp", "unix:"+qmpSock+",server=on,wait=off",
		"-pidfile", pidFile,
	)
	if d.runas != "" {
		args = append(args, "-runas", d.runAsArg(rec))
	}
	return args
}

// startVM starts s's QEMU unless it runs, and waits until QMP reports the
// machine running. The caller holds s's lock.
func (d *Driver) startVM(ctx context.Context, s *server) (err error) {
	d.mu.Lock()
	running, rec := s.running(), s.rec
	d.mu.Unlock()
	if running {
		return nil
	}
	if _, err := compute.CheckStart(compute.ServerView{ID: rec.ID, Exists: true, DiskID: rec.DiskID}); err != nil {
		return err
	}
	if _, err := os.Stat(d.diskPath(rec.DiskID)); err != nil {
		return fmt.Errorf("system disk %s: %w", rec.DiskID, err)
	}
	if d.runas != "" && rec.UID == 0 {
		// A server defined by a release without a uid per server.
		if rec, err = d.giveUID(s); err != nil {
			return err
		}
	}
	dir := d.serverDir(rec.ID)
	// A QEMU that dropped privileges cannot remove these when it exits.
	for _, f := range []string{pidFile, qmpSock, serialSock, agentSock} {
		os.Remove(filepath.Join(dir, f))
	}
	logDone := make(chan struct{})
	logw, err := d.startQEMULog(dir, logDone)
	if err != nil {
		return fmt.Errorf("qemu log: %w", err)
	}
	defer logw.Close()
	_, serr := os.Stat(filepath.Join(dir, seedFile))
	cmd := exec.Command(d.bins.qemu, d.qemuArgs(rec, serr == nil)...)
	cmd.Dir = dir
	// The named pipe of qemu.log (qemulog.go), which a later driver reads
	// again; its own process group, so a signal to ecsd's group (Ctrl-C)
	// does not stop guests. No parent-death signal: guests outlive the
	// daemon, which reattaches to them.
	cmd.Stdout, cmd.Stderr = logw, logw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	logw.Close() // QEMU holds the only write end: the copy ends when it exits
	p := newVMProc(cmd.Process.Pid, logDone)
	go func() {
		cmd.Wait()
		p.markExited()
	}()
	d.mu.Lock()
	s.proc = p
	d.mu.Unlock()
	// A start that fails (or is cancelled) leaves no QEMU behind, not even
	// one paused before its guest ran, and returns once the server reads
	// stopped.
	serial := false
	defer func() {
		if err != nil {
			cmd.Process.Kill() // safe once reaped, unlike a kill(2) of the pid
		}
		if !serial {
			close(p.serial)
		}
		if err != nil {
			<-p.done
		}
	}()

	sock := filepath.Join(dir, qmpSock)
	for {
		st, err := d.vmStatus(ctx, p, dir, sock)
		if err != nil {
			return err
		}
		switch {
		case st == "prelaunch" && !serial:
			if err := d.attachSerial(ctx, dir, true, p.serial); err != nil {
				return fmt.Errorf("serial console: %w", err)
			}
			serial = true
			if _, err := qmpRun(ctx, sock, "cont", nil); err != nil {
				return fmt.Errorf("qmp cont: %w", err)
			}
		case st == "running":
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// vmStatus returns the status QMP reports ("" while QMP does not answer),
// or an error if QEMU has exited or ctx is done.
func (d *Driver) vmStatus(ctx context.Context, p *vmProc, dir, sock string) (string, error) {
	select {
	case <-p.exit:
		select {
		case <-p.log: // qemu.log has QEMU's last words
		case <-ctx.Done():
			return "", ctx.Err()
		}
		b, _ := os.ReadFile(filepath.Join(dir, qemuLog))
		return "", fmt.Errorf("qemu exited at start: %s", lastLines(string(b), 3))
	case <-ctx.Done():
		return "", ctx.Err()
	default:
	}
	out, err := qmpRun(ctx, sock, "query-status", nil)
	if err != nil {
		return "", nil
	}
	var st struct {
		Status string `json:"status"`
	}
	json.Unmarshal(out, &st)
	return st.Status, nil
}

// stopVM stops s's QEMU if it runs. The caller holds s's lock.
func (d *Driver) stopVM(ctx context.Context, s *server, hard bool) error {
	d.mu.Lock()
	p := s.proc
	d.mu.Unlock()
	if p == nil || p.stopped() {
		return nil
	}
	sock := filepath.Join(d.serverDir(s.rec.ID), qmpSock)
	if !hard {
		deadline := time.NewTimer(d.cfg.StopTimeout)
		defer deadline.Stop()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		qmpRun(ctx, sock, "system_powerdown", nil)
	wait:
		for {
			select {
			case <-p.done:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
				qmpRun(ctx, sock, "system_powerdown", nil)
			case <-deadline.C:
				break wait
			}
		}
	}
	qmpRun(ctx, sock, "quit", nil) // QEMU may hang up before it answers
	kill := time.NewTimer(10 * time.Second)
	defer kill.Stop()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-kill.C:
	}
	syscall.Kill(p.pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadServers reads the server definitions and reattaches to the QEMU
// processes that still run.
func (d *Driver) loadServers(ctx context.Context) error {
	root := filepath.Join(d.cfg.Dir, serversDir)
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("qemu: servers: %w", err)
	}
	for _, e := range entries {
		id := e.Name()
		dir := filepath.Join(root, id)
		if !e.IsDir() || compute.CheckIDs("server", id) != nil {
			continue
		}
		removeTemps(dir)
		b, err := os.ReadFile(filepath.Join(dir, serverFile))
		if errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(dir) // a create or delete that was interrupted
			continue
		}
		if err != nil {
			return fmt.Errorf("qemu: server %s: %w", id, err)
		}
		var rec serverRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("qemu: server %s: %w", id, err)
		}
		if rec.ID != id {
			return fmt.Errorf("qemu: server %s: file names server %q", id, rec.ID)
		}
		s := &server{rec: rec}
		s.proc = d.reattach(ctx, dir, id)
		d.servers[id] = s
	}
	return nil
}

// reattach returns the QEMU process of server id if it still runs: the
// pidfile names a live process whose command line is this server's.
func (d *Driver) reattach(ctx context.Context, dir, id string) *vmProc {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || !processAlive(pid) || !cmdlineArg(pid, "ecsd-"+id) {
		os.Remove(filepath.Join(dir, pidFile))
		os.Remove(filepath.Join(dir, qmpSock))
		return nil
	}
	start := startTime(pid)
	// A live QEMU that does not answer QMP is still a running guest (and
	// stopVM can still kill it); QMP is only a sanity check here.
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	qmpRun(qctx, filepath.Join(dir, qmpSock), "query-status", nil)
	p := newVMProc(pid, make(chan struct{}))
	if err := d.attachSerial(qctx, dir, false, p.serial); err != nil {
		close(p.serial) // the console's output is lost, not the guest
	}
	if err := d.reattachQEMULog(dir, p.log); err != nil {
		close(p.log) // QEMU's messages are lost, not the guest
	}
	cancel()
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-d.closed:
				return
			case <-t.C:
				if !processAlive(pid) || startTime(pid) != start {
					p.markExited()
					return
				}
			}
		}
	}()
	return p
}

// cmdlineArg reports whether process pid has arg as one of its arguments.
func cmdlineArg(pid int, arg string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for a := range strings.SplitSeq(string(b), "\x00") {
		if a == arg {
			return true
		}
	}
	return false
}

// startTime returns field 22 of /proc/<pid>/stat, which tells a process
// from a later one with the same pid.
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// SetServerImage makes a stopped server boot img's kernel and initrd from
// now on (change of OS); an image without a kernel boots from the disk's
// own boot loader.
func (d *Driver) SetServerImage(ctx context.Context, serverID string, img ecs.Image) error {
	const op = "set server image"
	if img.ID == "" {
		return invalid(op, "server %s: no image id", serverID)
	}
	if img.Initrd != "" && img.Kernel == "" {
		return invalid(op, "image %s has an initrd without a kernel", img.ID)
	}
	s, unlock, err := d.lockedServer(ctx, op, serverID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := compute.CheckStopped(d.serverView(serverID, s)); err != nil {
		return opError(op, err)
	}
	d.mu.Lock()
	next := s.rec
	d.mu.Unlock()
	next.ImageID, next.Kernel, next.Initrd = img.ID, img.Kernel, img.Initrd
	if err := writeJSON(filepath.Join(d.serverDir(serverID), serverFile), next); err != nil {
		return fmt.Errorf("qemu: %s %s: %w", op, serverID, err)
	}
	d.mu.Lock()
	s.rec = next
	d.mu.Unlock()
	return nil
}
