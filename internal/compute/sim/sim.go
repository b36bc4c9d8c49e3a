// Package sim is the simulator compute driver (ecsd --driver sim): an
// emulator that runs no guest but keeps the state a real driver would, so
// users can test their cloud code against ecsd, FAIL handling included.
//
// It promises:
//   - The compute.Driver contract, checked by compute/computetest, and the
//     rules a real driver enforces (compute's Check functions, shared with
//     the QEMU driver), reported as errors rather than accepted: a server's
//     disk can only be attached, detached or given credentials while the
//     server is stopped; a server starts only with a system disk; an
//     attached disk cannot be deleted. Refusals wrap the kinds those rules
//     give (ecs.ErrBadState, ecs.ErrConflict, ecs.ErrNotFound,
//     ecs.ErrInvalid).
//   - Durable, inspectable state: one JSON file per disk
//     (<dir>/disks/<id>.json, see DiskState) and per server
//     (<dir>/servers/<id>.json, see ServerState), replaced atomically, mode
//     0600 in 0700 directories. The files are the truth: a daemon killed at
//     any point and restarted on the same directory (New) carries on where
//     it stopped, running servers still running.
//   - Configurable latency on every call; the wait ends early when ctx is
//     done. Faults are not the simulator's business: package faulty wraps
//     it (or any driver) with them, and errors name operations as a fault
//     spec does (Ops).
//   - Calls on different disks and servers run in parallel.
//   - With Config.Journal, a call journal: one line per call that acted,
//     naming the job run that made it (see JournalEntry), so that tests
//     can prove that no job ran twice.
//
// Beyond the contract it refuses, as errors that change nothing, what a
// real driver could not do safely: ids that fail ecs.ValidID (they name
// files) and a password hash that is not a $6$ crypt hash
// (compute.CheckCredentials), so a plain password never reaches a disk. One driver owns a directory at
// a time; running two on the same directory is not supported.
package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/faulty"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// Config configures a Driver.
type Config struct {
	// Dir is the state directory, created (mode 0700) if missing.
	Dir string
	// Latency is added to every driver call.
	Latency time.Duration
	// Journal, when not "", is a file to which every call that changes
	// state appends a line once it has acted (see JournalEntry).
	Journal string
}

// Driver is the simulator. It implements compute.Driver.
type Driver struct {
	dir     string
	latency time.Duration

	// sleep waits for d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
	io    chan struct{} // semaphore of the file writes, see ioLimit
	// journal, when not nil, records the calls (Config.Journal).
	journal *journal

	// Lock order: a server before a disk; never two of a kind.
	disks   table[DiskState]
	servers table[ServerState]
}

var _ compute.Driver = (*Driver)(nil)

// New returns a driver keeping its state in cfg.Dir, loading what an
// earlier driver left there.
func New(cfg Config) (*Driver, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("sim: no state directory")
	}
	if cfg.Latency < 0 {
		return nil, fmt.Errorf("sim: latency %s is negative", cfg.Latency)
	}
	d := &Driver{
		dir:     cfg.Dir,
		latency: cfg.Latency,
		sleep:   faulty.Wait,
		now:     time.Now,
		io:      make(chan struct{}, ioLimit),
		disks:   table[DiskState]{m: map[string]*object[DiskState]{}},
		servers: table[ServerState]{m: map[string]*object[ServerState]{}},
	}
	if err := d.load(); err != nil {
		return nil, err
	}
	if cfg.Journal != "" {
		j, err := openJournal(cfg.Journal)
		if err != nil {
			return nil, err
		}
		d.journal = j
	}
	return d, nil
}

// Name returns "sim".
func (d *Driver) Name() string { return "sim" }

// Capabilities: the simulator makes disks from file-less catalog images.
func (d *Driver) Capabilities() compute.Capabilities {
	return compute.Capabilities{FilelessImages: true}
}

// Close closes the journal; the state needs nothing: every call has
// written it before returning.
func (d *Driver) Close() error {
	if d.journal != nil {
		return d.journal.close()
	}
	return nil
}

// Disk returns the state of disk id.
func (d *Driver) Disk(id string) (DiskState, bool) { return d.disks.get(id) }

// Server returns the state of server id.
func (d *Driver) Server(id string) (ServerState, bool) { return d.servers.get(id) }

// opPowerState names PowerState in errors; no fault can target it.
const opPowerState = "power_state"

// begin starts a call of op: it checks ctx and waits the latency. The call
// goes on only if it returns nil.
func (d *Driver) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.latency > 0 {
		return d.sleep(ctx, d.latency)
	}
	return nil
}

func checkIDs(op string, whatIDs ...string) error {
	return opError(op, compute.CheckIDs(whatIDs...))
}

// opError prefixes a refusal with the driver and the operation.
func opError(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sim: %s: %w", op, err)
}

func invalid(op, format string, args ...any) error {
	return fmt.Errorf("sim: %s: %s: %w", op, fmt.Sprintf(format, args...), ecs.ErrInvalid)
}

// diskLock holds a disk and, when the disk is attached, its server.
type diskLock struct {
	d       *Driver
	id, sid string
	disk    *object[DiskState]
	srv     *object[ServerState] // nil when the disk is not attached
}

// lockDisk locks disk id and, when it is attached, its server (first, as
// the lock order wants).
func (d *Driver) lockDisk(id string) diskLock {
	for {
		disk := d.disks.lock(id)
		sid := disk.st.AttachedTo
		if !disk.live || sid == "" {
			return diskLock{d: d, id: id, disk: disk}
		}
		d.disks.unlock(id, disk)
		srv := d.servers.lock(sid)
		disk = d.disks.lock(id)
		if disk.live && disk.st.AttachedTo == sid {
			return diskLock{d: d, id: id, sid: sid, disk: disk, srv: srv}
		}
		d.disks.unlock(id, disk)
		d.servers.unlock(sid, srv)
	}
}

func (l diskLock) unlock() {
	l.d.disks.unlock(l.id, l.disk)
	if l.srv != nil {
		l.d.servers.unlock(l.sid, l.srv)
	}
}

// view is what the rules need to know about the locked disk.
func (l diskLock) view() compute.DiskView {
	v := compute.DiskView{ID: l.id, Exists: l.disk.live}
	if l.srv != nil {
		v.ServerID, v.Running = l.sid, l.srv.st.Power == PowerRunning
	}
	return v
}

// diskView is what the rules need to know about a disk whose lock the caller
// holds along with that of the server it names, if any.
func diskView(disk *object[DiskState]) compute.DiskView {
	return compute.DiskView{ID: disk.st.ID, Exists: disk.live, ServerID: disk.st.AttachedTo}
}

// serverView is what the rules need to know about a locked server.
func serverView(id string, srv *object[ServerState]) compute.ServerView {
	return compute.ServerView{ID: id, Exists: srv.live, Running: srv.live && srv.st.Power == PowerRunning, DiskID: srv.st.DiskID,
		DataDisks: srv.st.DataDisks}
}

// CreateDisk creates disk spec.ID, or replaces it with a fresh one (its
// attachment kept) unless it is the system disk of a running server.
func (d *Driver) CreateDisk(ctx context.Context, spec compute.DiskSpec) (err error) {
	const op = OpCreateDisk
	if err := checkIDs(op, "disk", spec.ID); err != nil {
		return err
	}
	if spec.Image.ID == "" && spec.SizeGB <= 0 {
		return invalid(op, "disk %s: a blank disk needs a size", spec.ID)
	}
	if spec.SizeGB < 0 {
		return invalid(op, "disk %s: size %d GB is negative", spec.ID, spec.SizeGB)
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	defer d.record(ctx, op, "", spec.ID, &err)
	l := d.lockDisk(spec.ID)
	defer l.unlock()
	disk := l.disk
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := compute.CheckDiskWrite(l.view(), false); err != nil {
		return opError(op, err)
	}
	next := DiskState{
		ID:         spec.ID,
		ImageID:    spec.Image.ID,
		SizeGB:     spec.SizeGB,
		AttachedTo: disk.st.AttachedTo,
		Created:    d.now().UTC(),
	}
	if err := d.writeJSON(d.diskPath(spec.ID), next); err != nil {
		return err
	}
	disk.st, disk.live = next, true
	return nil
}

// DeleteDisk deletes a detached disk; a missing one is already deleted.
func (d *Driver) DeleteDisk(ctx context.Context, diskID string) (err error) {
	const op = OpDeleteDisk
	if err := checkIDs(op, "disk", diskID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	defer d.record(ctx, op, "", diskID, &err)
	disk := d.disks.lock(diskID)
	defer d.disks.unlock(diskID, disk)
	if err := ctx.Err(); err != nil {
		return err
	}
	v := diskView(disk)
	v.ID = diskID
	if done, err := compute.CheckDeleteDisk(v); done || err != nil {
		return opError(op, err)
	}
	if err := d.removeFile(d.diskPath(diskID)); err != nil {
		return err
	}
	disk.st, disk.live = DiskState{}, false
	return nil
}

// ApplyCredentials sets the fields of c that are not empty on the disk. The
// disk must exist and not be the system disk of a running server. A
// PasswordHash must be a $6$ crypt hash: a plain password is refused.
//
// Verifying by reading back, as the contract asks, is the rename of one
// file here: it lands whole or not at all.
func (d *Driver) ApplyCredentials(ctx context.Context, diskID string, c compute.Credentials) (err error) {
	const op = OpApplyCredentials
	if err := checkIDs(op, "disk", diskID); err != nil {
		return err
	}
	if err := compute.CheckCredentials(c); err != nil {
		return opError(op, err)
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	defer d.record(ctx, op, "", diskID, &err)
	l := d.lockDisk(diskID)
	defer l.unlock()
	disk := l.disk
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := compute.CheckDiskWrite(l.view(), true); err != nil {
		return opError(op, err)
	}
	next := disk.st
	if c.PasswordHash != "" {
		next.PasswordHash = c.PasswordHash
	}
	if c.AuthorizedKeys != "" {
		next.AuthorizedKeys = c.AuthorizedKeys
	}
	if next == disk.st {
		return nil
	}
	if err := d.writeJSON(d.diskPath(diskID), next); err != nil {
		return err
	}
	disk.st = next
	return nil
}

// ReadCredentials returns what the disk holds for root.
func (d *Driver) ReadCredentials(ctx context.Context, diskID string) (compute.Credentials, error) {
	const op = OpReadCredentials
	if err := checkIDs(op, "disk", diskID); err != nil {
		return compute.Credentials{}, err
	}
	if err := d.begin(ctx, op); err != nil {
		return compute.Credentials{}, err
	}
	st, ok := d.disks.get(diskID)
	if !ok {
		return compute.Credentials{}, opError(op, fmt.Errorf("disk %s: %w", diskID, compute.ErrNotFound))
	}
	return compute.Credentials{PasswordHash: st.PasswordHash, AuthorizedKeys: st.AuthorizedKeys}, nil
}

// Attachments: the server file's disk_id is the truth, the disk file's
// attached_to a mirror written after it. When writing the mirror fails the
// call reports the error but memory follows the server file; the mirror is
// rewritten by the disk's next change or by New.

// CreateServer defines a stopped server with spec.DiskID, an existing
// detached disk, as its system disk. Creating it again with the same disk
// succeeds and changes nothing; with another disk it is a conflict.
func (d *Driver) CreateServer(ctx context.Context, spec compute.ServerSpec) (_ compute.ServerInfo, err error) {
	const op = OpCreateServer
	if err := checkIDs(op, "server", spec.ID, "disk", spec.DiskID); err != nil {
		return compute.ServerInfo{}, err
	}
	if err := compute.CheckSeed(spec.Seed); err != nil {
		return compute.ServerInfo{}, opError(op, err)
	}
	if err := d.begin(ctx, op); err != nil {
		return compute.ServerInfo{}, err
	}
	defer d.record(ctx, op, spec.ID, spec.DiskID, &err)
	srv := d.servers.lock(spec.ID)
	defer d.servers.unlock(spec.ID, srv)
	disk := d.disks.lock(spec.DiskID)
	defer d.disks.unlock(spec.DiskID, disk)
	if err := ctx.Err(); err != nil {
		return compute.ServerInfo{}, err
	}
	dv := diskView(disk)
	dv.ID = spec.DiskID
	if done, err := compute.CheckCreateServer(serverView(spec.ID, srv), dv); done || err != nil {
		return compute.ServerInfo{}, opError(op, err)
	}
	next := ServerState{ID: spec.ID, Name: spec.Name, DiskID: spec.DiskID, Power: PowerStopped,
		ImageID: spec.Image.ID, Agent: spec.Image.CloudInit}
	if spec.Seed != nil {
		next.Seed, next.Seeds = copySeed(spec.Seed), 1
	}
	if err := d.writeJSON(d.serverPath(spec.ID), next); err != nil {
		return compute.ServerInfo{}, err
	}
	srv.st, srv.live = next, true
	return compute.ServerInfo{}, d.mirror(disk, spec.ID)
}

// mirror sets the disk's attached_to, in memory and in its file.
func (d *Driver) mirror(disk *object[DiskState], serverID string) error {
	disk.st.AttachedTo = serverID
	return d.writeJSON(d.diskPath(disk.st.ID), disk.st)
}

// DeleteServer removes a server, stopped or running, keeping its disks
// (detached); a missing server is already deleted.
func (d *Driver) DeleteServer(ctx context.Context, serverID string) (err error) {
	const op = OpDeleteServer
	if err := checkIDs(op, "server", serverID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	defer d.record(ctx, op, serverID, "", &err)
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	if err := ctx.Err(); err != nil {
		return err
	}
	if !srv.live {
		return nil
	}
	if err := d.removeFile(d.serverPath(serverID)); err != nil {
		return err
	}
	// The server's file is gone: its disks are detached. Their mirrors
	// follow, one disk lock at a time.
	disks := append([]string{srv.st.DiskID}, srv.st.DataDisks...)
	srv.st, srv.live = ServerState{}, false
	for _, id := range disks {
		if id == "" {
			continue
		}
		disk := d.disks.lock(id)
		var err error
		if disk.live {
			err = d.mirror(disk, "")
		}
		d.disks.unlock(id, disk)
		if err != nil {
			return err
		}
	}
	return nil
}

// AttachDataDisk attaches diskID to a server, running or stopped, as a
// data disk; attaching a data disk it has succeeds.
func (d *Driver) AttachDataDisk(ctx context.Context, serverID, diskID string) error {
	const op = OpAttachDataDisk
	if err := checkIDs(op, "server", serverID, "disk", diskID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	return d.attach(ctx, op, serverID, diskID, compute.CheckAttachData, func(st *ServerState) {
		st.DataDisks = append(append([]string(nil), st.DataDisks...), diskID)
	})
}

// DetachDataDisk detaches data disk diskID from a server, running or
// stopped; a disk that is not one of its data disks is already detached.
func (d *Driver) DetachDataDisk(ctx context.Context, serverID, diskID string) error {
	const op = OpDetachDataDisk
	if err := checkIDs(op, "server", serverID, "disk", diskID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	return d.detach(ctx, op, serverID, diskID, compute.CheckDetachData, func(st *ServerState) {
		var kept []string
		for _, id := range st.DataDisks {
			if id != diskID {
				kept = append(kept, id)
			}
		}
		st.DataDisks = kept
	})
}

// AttachDisk makes diskID the system disk of a stopped server that has
// none. Attaching the disk it has succeeds.
func (d *Driver) AttachDisk(ctx context.Context, serverID, diskID string) (err error) {
	const op = OpAttachDisk
	if err := checkIDs(op, "server", serverID, "disk", diskID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	defer d.record(ctx, op, serverID, diskID, &err)
	return d.attach(ctx, op, serverID, diskID, compute.CheckAttach, func(st *ServerState) { st.DiskID = diskID })
}

// DetachDisk detaches diskID from a stopped server; a disk the server does
// not have is already detached.
func (d *Driver) DetachDisk(ctx context.Context, serverID, diskID string) (err error) {
	const op = OpDetachDisk
	if err := checkIDs(op, "server", serverID, "disk", diskID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	defer d.record(ctx, op, serverID, diskID, &err)
	return d.detach(ctx, op, serverID, diskID, compute.CheckDetach, func(st *ServerState) { st.DiskID = "" })
}

// attach is the body of the attach calls once the ids are checked: rule
// (compute's) says whether there is something to do, change makes the
// server's next state from the current one, and the disk records that it
// is attached.
func (d *Driver) attach(ctx context.Context, op, serverID, diskID string,
	rule func(compute.ServerView, compute.DiskView) (bool, error), change func(st *ServerState)) error {
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	disk := d.disks.lock(diskID)
	defer d.disks.unlock(diskID, disk)
	if err := ctx.Err(); err != nil {
		return err
	}
	dv := diskView(disk)
	dv.ID = diskID
	if done, err := rule(serverView(serverID, srv), dv); done || err != nil {
		return opError(op, err)
	}
	next := srv.st
	change(&next)
	if err := d.writeJSON(d.serverPath(serverID), next); err != nil {
		return err
	}
	srv.st = next
	return d.mirror(disk, serverID)
}

// detach is the body of the detach calls once the ids are checked, like
// attach; the disk is locked only once rule found something to do.
func (d *Driver) detach(ctx context.Context, op, serverID, diskID string,
	rule func(compute.ServerView, string) (bool, error), change func(st *ServerState)) error {
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	if err := ctx.Err(); err != nil {
		return err
	}
	if done, err := rule(serverView(serverID, srv), diskID); done || err != nil {
		return opError(op, err)
	}
	disk := d.disks.lock(diskID)
	defer d.disks.unlock(diskID, disk)
	next := srv.st
	change(&next)
	if err := d.writeJSON(d.serverPath(serverID), next); err != nil {
		return err
	}
	srv.st = next
	return d.mirror(disk, "")
}

// setPower is the body of the power calls: rule (compute's) says whether
// there is something to do, and change makes the next state from the
// current one.
func (d *Driver) setPower(ctx context.Context, op, serverID string, rule func(compute.ServerView) (bool, error),
	change func(st *ServerState)) (err error) {
	if err := checkIDs(op, "server", serverID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	defer d.record(ctx, op, serverID, "", &err)
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	if err := ctx.Err(); err != nil {
		return err
	}
	if done, err := rule(serverView(serverID, srv)); done || err != nil {
		return opError(op, err)
	}
	next := srv.st
	change(&next)
	if err := d.writeJSON(d.serverPath(serverID), next); err != nil {
		return err
	}
	srv.st = next
	return nil
}

// StartServer boots a server from its system disk; a running server is
// already started.
func (d *Driver) StartServer(ctx context.Context, serverID string) error {
	return d.setPower(ctx, OpStart, serverID, compute.CheckStart, func(st *ServerState) {
		st.Power = PowerRunning
		st.Boots++
	})
}

// StopServer stops a server, at once whatever hard says; a stopped server
// is already stopped.
func (d *Driver) StopServer(ctx context.Context, serverID string, hard bool) error {
	return d.setPower(ctx, OpStop, serverID, compute.CheckStop, func(st *ServerState) {
		st.Power = PowerStopped
	})
}

// RebootServer reboots a running server, counting a boot; a stopped server
// cannot be rebooted.
func (d *Driver) RebootServer(ctx context.Context, serverID string, hard bool) error {
	rule := func(v compute.ServerView) (bool, error) { return false, compute.CheckReboot(v) }
	return d.setPower(ctx, OpReboot, serverID, rule, func(st *ServerState) {
		st.Boots++
	})
}

// PowerState reports the power of a server, compute.PowerMissing for an
// unknown one.
func (d *Driver) PowerState(ctx context.Context, serverID string) (compute.PowerState, error) {
	if err := checkIDs(opPowerState, "server", serverID); err != nil {
		return compute.PowerMissing, err
	}
	if err := d.begin(ctx, opPowerState); err != nil {
		return compute.PowerMissing, err
	}
	st, ok := d.servers.get(serverID)
	switch {
	case !ok:
		return compute.PowerMissing, nil
	case st.Power == PowerRunning:
		return compute.PowerRunning, nil
	}
	return compute.PowerStopped, nil
}
