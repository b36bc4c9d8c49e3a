package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
)

// Data disks: qcow2 files in the disks directory like system disks, listed
// in the server record (DataDisks) and given to QEMU as -blockdev/-device
// pairs at start. A running server gets one hot-plugged: ecsd opens the
// file (QEMU runs as ecsd-qemu and may not open it itself), passes the fd
// over QMP (add-fd) and adds the block node (blockdev-add on
// /dev/fdset/N) and its virtio-blk device (device_add); hot-unplug is
// device_del, the DEVICE_DELETED event once the guest let go, and
// blockdev-del.

// dataNode and dataDev are a data disk's QEMU node and device names: short
// (a node name has at most 31 characters) and stable, from the disk id.
func dataNode(diskID string) string { return "dd" + diskHash(diskID) }
func dataDev(diskID string) string  { return "vd" + diskHash(diskID) }

func diskHash(diskID string) string {
	h := sha256.Sum256([]byte(diskID))
	return hex.EncodeToString(h[:8])
}

// firstDataSlot is the PCI slot of a server's first data disk at start:
// QEMU creates -device devices before the -drive if=virtio ones (the
// system disk, the seed), so data disks left to the automatic slots would
// come first on the bus and the guest would see one of them as /dev/vda.
// Slots 0x09-0x1f are theirs (MaxDataDisks of them), above the few devices
// and drives placed automatically.
const firstDataSlot = 0x09

// dataDiskArgs are the command-line arguments of rec's data disks, opened
// by QEMU at start-up, before it drops privileges.
func (d *Driver) dataDiskArgs(rec serverRecord) []string {
	var args []string
	for i, id := range rec.DataDisks {
		args = append(args,
			"-blockdev", "driver=qcow2,node-name="+dataNode(id)+",cache.direct=off,discard=unmap,"+
				"file.driver=file,file.filename="+qemuOpt(d.diskPath(id)),
			"-device", "virtio-blk-pci,drive="+dataNode(id)+",id="+dataDev(id)+",addr="+strconv.FormatInt(int64(firstDataSlot+i), 16))
	}
	return args
}

// createBlankDisk creates disk id as an empty qcow2 of size bytes, written
// to a temporary file and renamed into place.
func (d *Driver) createBlankDisk(ctx context.Context, id string, size int64) error {
	dst := d.diskPath(id)
	tmp := dst + ".blank.tmp"
	os.Remove(tmp)
	if out, err := run(ctx, d.bins.qemuImg, "create", "-q", "-f", "qcow2", tmp, strconv.FormatInt(size, 10)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("qemu-img create: %w: %s", err, out)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// AttachDataDisk attaches diskID to the server as a data disk: recorded,
// and hot-plugged when the server runs. Attaching a data disk it has
// succeeds (and plugs it again if a crash left it recorded but unplugged).
func (d *Driver) AttachDataDisk(ctx context.Context, serverID, diskID string) error {
	const op = "attach data disk"
	s, unlock, err := d.lockForDisk(ctx, op, serverID, diskID, diskID)
	if err != nil {
		return err
	}
	defer unlock()
	view := d.serverView(serverID, s)
	done, err := compute.CheckAttachData(view, d.diskView(diskID))
	if err != nil {
		return opError(op, err)
	}
	if !done {
		if err := d.setDataDisks(s, append(append([]string(nil), view.DataDisks...), diskID)); err != nil {
			return err
		}
	}
	if !view.Running {
		return nil
	}
	if err := d.hotPlug(ctx, serverID, diskID); err != nil {
		return fmt.Errorf("qemu: %s %s: %w", op, diskID, err)
	}
	return nil
}

// DetachDataDisk hot-unplugs data disk diskID from a running server (the
// guest must release it) and removes it from the server's record.
func (d *Driver) DetachDataDisk(ctx context.Context, serverID, diskID string) error {
	const op = "detach data disk"
	s, unlock, err := d.lockForDisk(ctx, op, serverID, diskID, diskID)
	if err != nil {
		return err
	}
	defer unlock()
	view := d.serverView(serverID, s)
	if done, err := compute.CheckDetachData(view, diskID); done || err != nil {
		return opError(op, err)
	}
	if view.Running {
		if err := d.hotUnplug(ctx, serverID, diskID); err != nil {
			return fmt.Errorf("qemu: %s %s: %w", op, diskID, err)
		}
	}
	var next []string
	for _, id := range view.DataDisks {
		if id != diskID {
			next = append(next, id)
		}
	}
	return d.setDataDisks(s, next)
}

func (d *Driver) setDataDisks(s *server, disks []string) error {
	d.mu.Lock()
	next := s.rec
	d.mu.Unlock()
	next.DataDisks = disks
	if err := writeJSON(filepath.Join(d.serverDir(next.ID), serverFile), next); err != nil {
		return fmt.Errorf("qemu: write server %s: %w", next.ID, err)
	}
	d.mu.Lock()
	s.rec = next
	d.mu.Unlock()
	return nil
}

// qmpClass reports whether err is a QMP error of class class.
func qmpClass(err error, class string) bool {
	var qe *qmpError
	return errors.As(err, &qe) && qe.Class == class
}

// hotPlug adds diskID to server serverID's running QEMU, unless its device
// is there already.
func (d *Driver) hotPlug(ctx context.Context, serverID, diskID string) error {
	q, err := qmpDial(ctx, filepath.Join(d.serverDir(serverID), qmpSock))
	if err != nil {
		return err
	}
	defer q.Close()
	if has, err := hasDevice(ctx, q, dataDev(diskID)); err != nil || has {
		return err
	}
	f, err := os.OpenFile(d.diskPath(diskID), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	ret, err := q.executeFile(ctx, f, "add-fd", map[string]any{})
	if err != nil {
		return fmt.Errorf("add-fd: %w", err)
	}
	var fd struct {
		Set int `json:"fdset-id"`
	}
	if err := json.Unmarshal(ret, &fd); err != nil {
		return fmt.Errorf("add-fd: %w", err)
	}
	node := dataNode(diskID)
	_, err = q.execute(ctx, "blockdev-add", map[string]any{
		"driver": "qcow2", "node-name": node, "discard": "unmap",
		"cache": map[string]any{"direct": false},
		"file":  map[string]any{"driver": "file", "filename": "/dev/fdset/" + strconv.Itoa(fd.Set)},
	})
	// The block node holds its own duplicate of the fd: drop the set's, so
	// that QEMU closes the file once the node is deleted (else every
	// hot-plug would keep a descriptor, and a deleted disk its space,
	// until QEMU exits).
	q.execute(ctx, "remove-fd", map[string]any{"fdset-id": fd.Set})
	if err != nil && !qmpClass(err, "GenericError") {
		return fmt.Errorf("blockdev-add: %w", err)
	}
	// The first free slot at or above the data disks' range, so that the
	// device keeps a slot after the system disk's at the next hot-plug too.
	slot, err := freeDataSlot(ctx, q)
	if err != nil {
		return err
	}
	if _, err := q.execute(ctx, "device_add", map[string]any{"driver": "virtio-blk-pci", "drive": node, "id": dataDev(diskID),
		"addr": strconv.FormatInt(int64(slot), 16)}); err != nil {
		q.execute(ctx, "blockdev-del", map[string]any{"node-name": node})
		return fmt.Errorf("device_add: %w", err)
	}
	return nil
}

// hotUnplug asks the guest to release diskID's device, waits until QEMU
// removed it, then deletes its block node.
func (d *Driver) hotUnplug(ctx context.Context, serverID, diskID string) error {
	q, err := qmpDial(ctx, filepath.Join(d.serverDir(serverID), qmpSock))
	if err != nil {
		return err
	}
	defer q.Close()
	dev := dataDev(diskID)
	has, err := hasDevice(ctx, q, dev)
	if err != nil {
		return err
	}
	if has {
		if _, err := q.execute(ctx, "device_del", map[string]any{"id": dev}); err != nil && !qmpClass(err, "DeviceNotFound") {
			return fmt.Errorf("device_del: %w", err)
		}
		// The guest acknowledges the unplug through ACPI; a guest that is
		// still booting may miss the first request, so ask again now and
		// then until the device is gone.
		for {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := q.waitEvent(wctx, "DEVICE_DELETED", func(data json.RawMessage) bool {
				var ev struct {
					Device string `json:"device"`
				}
				return json.Unmarshal(data, &ev) == nil && ev.Device == dev
			})
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("the guest did not release disk %s: %w", diskID, ctx.Err())
			}
			// A timed-out read leaves the connection unusable: dial again.
			q.Close()
			if q, err = qmpDial(ctx, filepath.Join(d.serverDir(serverID), qmpSock)); err != nil {
				return err
			}
			if has, err = hasDevice(ctx, q, dev); err != nil {
				return err
			}
			if !has {
				break
			}
			q.execute(ctx, "device_del", map[string]any{"id": dev})
		}
	}
	if _, err := q.execute(ctx, "blockdev-del", map[string]any{"node-name": dataNode(diskID)}); err != nil &&
		!qmpClass(err, "GenericError") && !qmpClass(err, "DeviceNotFound") {
		return fmt.Errorf("blockdev-del: %w", err)
	}
	return nil
}

// hasDevice reports whether the machine has a PCI device of id dev.
func hasDevice(ctx context.Context, q *qmpConn, dev string) (bool, error) {
	ret, err := q.execute(ctx, "qom-list", map[string]any{"path": "/machine/peripheral"})
	if err != nil {
		return false, fmt.Errorf("qom-list: %w", err)
	}
	var props []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(ret, &props); err != nil {
		return false, fmt.Errorf("qom-list: %w", err)
	}
	for _, p := range props {
		if p.Name == dev {
			return true, nil
		}
	}
	return false, nil
}

// freeDataSlot returns the first PCI slot of the data disks' range that no
// device of bus 0 holds.
func freeDataSlot(ctx context.Context, q *qmpConn) (int, error) {
	ret, err := q.execute(ctx, "query-pci", nil)
	if err != nil {
		return 0, fmt.Errorf("query-pci: %w", err)
	}
	var buses []struct {
		Bus     int `json:"bus"`
		Devices []struct {
			Slot int `json:"slot"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(ret, &buses); err != nil {
		return 0, fmt.Errorf("query-pci: %w", err)
	}
	used := map[int]bool{}
	for _, b := range buses {
		if b.Bus != 0 {
			continue
		}
		for _, dev := range b.Devices {
			used[dev.Slot] = true
		}
	}
	for s := firstDataSlot; s <= 0x1f; s++ {
		if !used[s] {
			return s, nil
		}
	}
	return 0, errors.New("no free PCI slot left for a data disk")
}
