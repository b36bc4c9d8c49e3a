package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

func (d *Driver) diskPath(id string) string {
	return filepath.Join(d.cfg.Dir, disksDir, id+".qcow2")
}

// diskUser returns the server whose system disk diskID is ("" for none),
// and whether that server is running.
func (d *Driver) diskUser(diskID string) (serverID string, running bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, s := range d.servers {
		if s.rec.DiskID == diskID {
			return id, s.running()
		}
		for _, dd := range s.rec.DataDisks {
			if dd == diskID {
				return id, s.running()
			}
		}
	}
	return "", false
}

// diskView is what the rules need to know about disk diskID, whose lock the
// caller holds.
func (d *Driver) diskView(diskID string) compute.DiskView {
	_, err := os.Stat(d.diskPath(diskID))
	v := compute.DiskView{ID: diskID, Exists: err == nil}
	v.ServerID, v.Running = d.diskUser(diskID)
	return v
}

// CreateDisk creates disk spec.ID as a qcow2 overlay on spec.Image.File,
// replacing the disk if it exists (its attachment is kept) unless a running
// server uses it. The disk is as large as the image, or spec.SizeGB GiB
// when that is larger. The new disk is written to a temporary file, synced
// and renamed over the old one.
func (d *Driver) CreateDisk(ctx context.Context, spec compute.DiskSpec) error {
	const op = "create disk"
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs(op, "disk", spec.ID); err != nil {
		return err
	}
	img := spec.Image
	if img.ID == "" {
		if spec.SizeGB <= 0 {
			return invalid(op, "disk %s: a blank disk needs a size", spec.ID)
		}
		unlock := d.locks.lock("disk:" + spec.ID)
		defer unlock()
		if err := compute.CheckDiskWrite(d.diskView(spec.ID), false); err != nil {
			return opError(op, err)
		}
		if err := d.createBlankDisk(ctx, spec.ID, int64(spec.SizeGB)<<30); err != nil {
			return fmt.Errorf("qemu: %s: %w", op, err)
		}
		return nil
	}
	if !filepath.IsAbs(img.File) {
		return invalid(op, "image %s has no file in the image store", img.ID)
	}
	format := img.DiskFormat
	if format == "" {
		format = "qcow2"
	}
	if format != "qcow2" && format != "raw" {
		return invalid(op, "image format %q is not qcow2 or raw", format)
	}
	if _, err := os.Stat(img.File); err != nil {
		return fmt.Errorf("qemu: %s: image %s: %w", op, img.ID, err)
	}
	unlock := d.locks.lock("disk:" + spec.ID)
	defer unlock()
	if err := compute.CheckDiskWrite(d.diskView(spec.ID), false); err != nil {
		return opError(op, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	size, err := imageVirtualSize(img.File, format)
	if err != nil {
		return fmt.Errorf("qemu: %s: image %s: %w", op, img.ID, err)
	}
	if want := int64(spec.SizeGB) << 30; want > size {
		size = want
	}
	dst := d.diskPath(spec.ID)
	if err := writeQcow2Overlay(dst, img.File, format, size); err != nil {
		return fmt.Errorf("qemu: %s: %w", op, err)
	}
	return nil
}

// DeleteDisk removes disk diskID; a missing disk is already deleted, a disk
// attached to a server is a conflict.
func (d *Driver) DeleteDisk(ctx context.Context, diskID string) error {
	const op = "delete disk"
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs(op, "disk", diskID); err != nil {
		return err
	}
	unlock := d.locks.lock("disk:" + diskID)
	defer unlock()
	if done, err := compute.CheckDeleteDisk(d.diskView(diskID)); done || err != nil {
		return opError(op, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(d.diskPath(diskID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("qemu: %s: %w", op, err)
	}
	return nil
}

// CollectGarbage removes the disks that no server has as its system disk
// and for which keep returns false, and returns their ids. keep must return
// true for every disk the caller still knows, including disks created but
// not yet attached.
func (d *Driver) CollectGarbage(ctx context.Context, keep func(diskID string) bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(d.cfg.Dir, disksDir))
	if err != nil {
		return nil, fmt.Errorf("qemu: collect garbage: %w", err)
	}
	var removed []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".qcow2")
		if !ok || !ecs.ValidID(id) || keep(id) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		unlock := d.locks.lock("disk:" + id)
		if sid, _ := d.diskUser(id); sid == "" {
			if err := os.Remove(d.diskPath(id)); err == nil {
				removed = append(removed, id)
			}
		}
		unlock()
	}
	return removed, nil
}
