// Package sim is the simulator compute driver (ecsd --driver sim): an
// emulator that runs no guest but keeps the state a real driver would, so
// users can test their cloud code against ecsd, FAIL handling included.
//
// It promises:
//   - The compute.Driver contract, checked by compute/computetest, and the
//     rules a real driver enforces, reported as errors rather than
//     accepted: a server's disk can only be attached, detached or given
//     credentials while the server is stopped; a server starts only with a
//     system disk; an attached disk cannot be deleted. A broken rule wraps
//     ecs.ErrConflict; an unknown disk or server wraps compute.ErrNotFound.
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
//
// Beyond the contract it refuses, as errors that change nothing, what a
// real driver could not do safely: ids outside [A-Za-z0-9._-] (they name
// files) and a password hash that is not a crypt hash ("$id$...", no ':'),
// so a plain password never reaches a disk. One driver owns a directory at
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
}

// Driver is the simulator. It implements compute.Driver.
type Driver struct {
	dir     string
	latency time.Duration

	// sleep waits for d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
	io    chan struct{} // semaphore of the file writes, see ioLimit

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
	return d, nil
}

// Name returns "sim".
func (d *Driver) Name() string { return "sim" }

// Close does nothing: every call has written its state before returning.
func (d *Driver) Close() error { return nil }

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

func checkIDs(op string, kindIDs ...string) error {
	for i := 0; i < len(kindIDs); i += 2 {
		if !validID(kindIDs[i+1]) {
			return fmt.Errorf("sim: %s: invalid %s id %q", op, kindIDs[i], kindIDs[i+1])
		}
	}
	return nil
}

func notFound(op, kind, id string) error {
	return fmt.Errorf("sim: %s: %s %s: %w", op, kind, id, compute.ErrNotFound)
}

func conflict(op, format string, args ...any) error {
	return fmt.Errorf("sim: %s: %s: %w", op, fmt.Sprintf(format, args...), ecs.ErrConflict)
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

// running reports whether the disk is the system disk of a running server.
func (l diskLock) running() bool {
	return l.srv != nil && l.srv.st.Power == PowerRunning
}

// CreateDisk creates disk spec.ID, or replaces it with a fresh one (its
// attachment kept) unless it is the system disk of a running server.
func (d *Driver) CreateDisk(ctx context.Context, spec compute.DiskSpec) error {
	const op = OpCreateDisk
	if err := checkIDs(op, "disk", spec.ID); err != nil {
		return err
	}
	if spec.Image.ID == "" {
		return fmt.Errorf("sim: %s %s: no image id", op, spec.ID)
	}
	if spec.SizeGB < 0 {
		return fmt.Errorf("sim: %s %s: size %d GB is negative", op, spec.ID, spec.SizeGB)
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	l := d.lockDisk(spec.ID)
	defer l.unlock()
	disk := l.disk
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.running() {
		return conflict(op, "disk %s is the system disk of running server %s", spec.ID, l.sid)
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
func (d *Driver) DeleteDisk(ctx context.Context, diskID string) error {
	const op = OpDeleteDisk
	if err := checkIDs(op, "disk", diskID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	disk := d.disks.lock(diskID)
	defer d.disks.unlock(diskID, disk)
	if err := ctx.Err(); err != nil {
		return err
	}
	if !disk.live {
		return nil
	}
	if disk.st.AttachedTo != "" {
		return conflict(op, "disk %s is attached to server %s", diskID, disk.st.AttachedTo)
	}
	if err := d.removeFile(d.diskPath(diskID)); err != nil {
		return err
	}
	disk.st, disk.live = DiskState{}, false
	return nil
}

// validHash reports whether h can be written as a shadow password field
// and looks like a crypt hash ("$id$..."), not a plain password.
func validHash(h string) bool {
	if len(h) < 2 || h[0] != '$' {
		return false
	}
	for _, c := range []byte(h) {
		if c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// ApplyCredentials sets the fields of c that are not empty on the disk. The
// disk must exist and not be the system disk of a running server. A
// PasswordHash must be a crypt hash ("$6$..."): a plain password is refused.
//
// Verifying by reading back, as the contract asks, is the rename of one
// file here: it lands whole or not at all.
func (d *Driver) ApplyCredentials(ctx context.Context, diskID string, c compute.Credentials) error {
	const op = OpApplyCredentials
	if err := checkIDs(op, "disk", diskID); err != nil {
		return err
	}
	if c.PasswordHash != "" && !validHash(c.PasswordHash) {
		return fmt.Errorf("sim: %s %s: the password hash is not a crypt hash", op, diskID)
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	l := d.lockDisk(diskID)
	defer l.unlock()
	disk := l.disk
	if err := ctx.Err(); err != nil {
		return err
	}
	if !disk.live {
		return notFound(op, "disk", diskID)
	}
	if l.running() {
		return conflict(op, "disk %s is the system disk of running server %s", diskID, l.sid)
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
		return compute.Credentials{}, notFound(op, "disk", diskID)
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
func (d *Driver) CreateServer(ctx context.Context, spec compute.ServerSpec) (compute.ServerInfo, error) {
	const op = OpCreateServer
	if err := checkIDs(op, "server", spec.ID, "disk", spec.DiskID); err != nil {
		return compute.ServerInfo{}, err
	}
	if err := d.begin(ctx, op); err != nil {
		return compute.ServerInfo{}, err
	}
	srv := d.servers.lock(spec.ID)
	defer d.servers.unlock(spec.ID, srv)
	disk := d.disks.lock(spec.DiskID)
	defer d.disks.unlock(spec.DiskID, disk)
	if err := ctx.Err(); err != nil {
		return compute.ServerInfo{}, err
	}
	if srv.live {
		if srv.st.DiskID != spec.DiskID {
			return compute.ServerInfo{}, conflict(op, "server %s exists with system disk %q", spec.ID, srv.st.DiskID)
		}
		return compute.ServerInfo{}, nil
	}
	if !disk.live {
		return compute.ServerInfo{}, notFound(op, "disk", spec.DiskID)
	}
	if disk.st.AttachedTo != "" {
		return compute.ServerInfo{}, conflict(op, "disk %s is attached to server %s", spec.DiskID, disk.st.AttachedTo)
	}
	next := ServerState{ID: spec.ID, Name: spec.Name, DiskID: spec.DiskID, Power: PowerStopped}
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

// DeleteServer removes a server, stopped or running, keeping its disk; a
// missing server is already deleted.
func (d *Driver) DeleteServer(ctx context.Context, serverID string) error {
	const op = OpDeleteServer
	if err := checkIDs(op, "server", serverID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	var disk *object[DiskState]
	if diskID := srv.st.DiskID; srv.live && diskID != "" {
		disk = d.disks.lock(diskID)
		defer d.disks.unlock(diskID, disk)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !srv.live {
		return nil
	}
	if err := d.removeFile(d.serverPath(serverID)); err != nil {
		return err
	}
	srv.st, srv.live = ServerState{}, false
	if disk != nil {
		return d.mirror(disk, "")
	}
	return nil
}

// AttachDisk makes diskID the system disk of a stopped server that has
// none. Attaching the disk it has succeeds.
func (d *Driver) AttachDisk(ctx context.Context, serverID, diskID string) error {
	const op = OpAttachDisk
	if err := checkIDs(op, "server", serverID, "disk", diskID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	disk := d.disks.lock(diskID)
	defer d.disks.unlock(diskID, disk)
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case !srv.live:
		return notFound(op, "server", serverID)
	case srv.st.Power == PowerRunning:
		return conflict(op, "server %s is running", serverID)
	case srv.st.DiskID == diskID:
		return nil
	case !disk.live:
		return notFound(op, "disk", diskID)
	case srv.st.DiskID != "":
		return conflict(op, "server %s already has system disk %s", serverID, srv.st.DiskID)
	case disk.st.AttachedTo != "":
		return conflict(op, "disk %s is attached to server %s", diskID, disk.st.AttachedTo)
	}
	next := srv.st
	next.DiskID = diskID
	if err := d.writeJSON(d.serverPath(serverID), next); err != nil {
		return err
	}
	srv.st = next
	return d.mirror(disk, serverID)
}

// DetachDisk detaches diskID from a stopped server; a disk the server does
// not have is already detached.
func (d *Driver) DetachDisk(ctx context.Context, serverID, diskID string) error {
	const op = OpDetachDisk
	if err := checkIDs(op, "server", serverID, "disk", diskID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case !srv.live:
		return notFound(op, "server", serverID)
	case srv.st.Power == PowerRunning:
		return conflict(op, "server %s is running", serverID)
	case srv.st.DiskID != diskID:
		return nil
	}
	disk := d.disks.lock(diskID)
	defer d.disks.unlock(diskID, disk)
	next := srv.st
	next.DiskID = ""
	if err := d.writeJSON(d.serverPath(serverID), next); err != nil {
		return err
	}
	srv.st = next
	return d.mirror(disk, "")
}

// setPower is the body of the power calls: change computes the next state
// from the current one, or returns nil when there is nothing to do.
func (d *Driver) setPower(ctx context.Context, op, serverID string, change func(st ServerState) (*ServerState, error)) error {
	if err := checkIDs(op, "server", serverID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	if err := ctx.Err(); err != nil {
		return err
	}
	if !srv.live {
		return notFound(op, "server", serverID)
	}
	next, err := change(srv.st)
	if err != nil || next == nil {
		return err
	}
	if err := d.writeJSON(d.serverPath(serverID), *next); err != nil {
		return err
	}
	srv.st = *next
	return nil
}

// StartServer boots a server from its system disk; a running server is
// already started.
func (d *Driver) StartServer(ctx context.Context, serverID string) error {
	return d.setPower(ctx, OpStart, serverID, func(st ServerState) (*ServerState, error) {
		switch {
		case st.Power == PowerRunning:
			return nil, nil
		case st.DiskID == "":
			return nil, conflict(OpStart, "server %s has no system disk", serverID)
		}
		st.Power = PowerRunning
		st.Boots++
		return &st, nil
	})
}

// StopServer stops a server, at once whatever hard says; a stopped server
// is already stopped.
func (d *Driver) StopServer(ctx context.Context, serverID string, hard bool) error {
	return d.setPower(ctx, OpStop, serverID, func(st ServerState) (*ServerState, error) {
		if st.Power == PowerStopped {
			return nil, nil
		}
		st.Power = PowerStopped
		return &st, nil
	})
}

// RebootServer reboots a running server, counting a boot; a stopped server
// cannot be rebooted.
func (d *Driver) RebootServer(ctx context.Context, serverID string, hard bool) error {
	return d.setPower(ctx, OpReboot, serverID, func(st ServerState) (*ServerState, error) {
		if st.Power != PowerRunning {
			return nil, conflict(OpReboot, "server %s is not running", serverID)
		}
		st.Boots++
		return &st, nil
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
