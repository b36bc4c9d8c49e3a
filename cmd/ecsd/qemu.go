package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/qemu"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// openQEMU opens the QEMU driver, state under <data-dir>/qemu.
func openQEMU(ctx context.Context, cfg Config) (compute.Driver, imageImporter, error) {
	d, err := qemu.New(ctx, qemu.Config{Dir: filepath.Join(cfg.DataDir, "qemu"), Accel: cfg.QEMUAccel})
	if err != nil {
		return nil, nil, err
	}
	return d, qemuImporter{d}, nil
}

type qemuImporter struct{ d *qemu.Driver }

func (q qemuImporter) ImportImage(ctx context.Context, name, file, kernel, initrd string) (ecs.Image, error) {
	return q.d.ImportImage(ctx, qemu.ImportSpec{ID: newImageID(), Name: name, File: file, Kernel: kernel, Initrd: initrd})
}

// newImageID returns a random UUID for an imported image.
func newImageID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
