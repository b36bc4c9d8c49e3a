package main

import (
	"context"
	"path/filepath"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/qemu"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// openQEMU opens the QEMU driver, state under <data-dir>/qemu.
func openQEMU(ctx context.Context, cfg Config) (compute.Driver, imageImporter, error) {
	d, err := qemu.New(ctx, qemu.Config{Dir: filepath.Join(cfg.DataDir, "qemu"), Accel: cfg.QEMUAccel, User: cfg.QEMUUser})
	if err != nil {
		return nil, nil, err
	}
	return d, qemuImporter{d}, nil
}

type qemuImporter struct{ d *qemu.Driver }

func (q qemuImporter) ImportImage(ctx context.Context, name, file, kernel, initrd string) (ecs.Image, error) {
	return q.d.ImportImage(ctx, qemu.ImportSpec{ID: cloud.NewImageID(), Name: name, File: file, Kernel: kernel, Initrd: initrd})
}
