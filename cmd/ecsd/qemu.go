package main

import (
	"context"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/qemu"
	"github.com/ecsproject/ecsd/internal/datadir"
)

// openQEMU opens the QEMU driver, state under <data-dir>/qemu.
func openQEMU(ctx context.Context, cfg Config) (compute.Driver, error) {
	return qemu.New(ctx, qemu.Config{Dir: datadir.Dir{Path: cfg.DataDir}.DriverDir("qemu"), Accel: cfg.QEMUAccel, User: cfg.QEMUUser,
		GuestUIDBase: cfg.QEMUUIDBase})
}
