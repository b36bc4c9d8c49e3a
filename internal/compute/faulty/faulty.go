// Package faulty wraps any compute.Driver with the simulator's fault
// injection (sim.ParseFaults syntax), so that FAIL handling can be tested on
// real drivers too: `ecsd --driver qemu --faults apply_credentials=fail:1`.
//
// A fault applies before the wrapped call, which then does not run: a
// failed call changes nothing. Failures wrap compute.ErrInjected.
package faulty

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/sim"
)

// Driver is a compute.Driver with faults.
type Driver struct {
	compute.Driver
	rules map[string][]*rule
}

type rule struct {
	sim.Fault
	left atomic.Int64
}

// Wrap returns d with faults applied; with no faults it returns d itself.
func Wrap(d compute.Driver, faults []sim.Fault) compute.Driver {
	if len(faults) == 0 {
		return d
	}
	w := &Driver{Driver: d, rules: map[string][]*rule{}}
	for _, f := range faults {
		r := &rule{Fault: f}
		r.left.Store(int64(f.Count))
		w.rules[f.Op] = append(w.rules[f.Op], r)
	}
	return w
}

// Unwrap returns the wrapped driver.
func (w *Driver) Unwrap() compute.Driver { return w.Driver }

func (w *Driver) inject(ctx context.Context, op string) error {
	for _, r := range w.rules[op] {
		switch r.Action {
		case sim.ActionFail:
			if r.Count == 0 || r.left.Add(-1) >= 0 {
				return fmt.Errorf("%s: %s: %w (%s)", w.Driver.Name(), op, compute.ErrInjected, r.Fault)
			}
		case sim.ActionHang:
			<-ctx.Done()
			return ctx.Err()
		case sim.ActionDelay:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timeAfter(r.Delay):
			}
		}
	}
	return nil
}

func (w *Driver) CreateDisk(ctx context.Context, spec compute.DiskSpec) error {
	if err := w.inject(ctx, sim.OpCreateDisk); err != nil {
		return err
	}
	return w.Driver.CreateDisk(ctx, spec)
}

func (w *Driver) DeleteDisk(ctx context.Context, id string) error {
	if err := w.inject(ctx, sim.OpDeleteDisk); err != nil {
		return err
	}
	return w.Driver.DeleteDisk(ctx, id)
}

func (w *Driver) ApplyCredentials(ctx context.Context, id string, c compute.Credentials) error {
	if err := w.inject(ctx, sim.OpApplyCredentials); err != nil {
		return err
	}
	return w.Driver.ApplyCredentials(ctx, id, c)
}

func (w *Driver) ReadCredentials(ctx context.Context, id string) (compute.Credentials, error) {
	if err := w.inject(ctx, sim.OpReadCredentials); err != nil {
		return compute.Credentials{}, err
	}
	return w.Driver.ReadCredentials(ctx, id)
}

func (w *Driver) CreateServer(ctx context.Context, spec compute.ServerSpec) (compute.ServerInfo, error) {
	if err := w.inject(ctx, sim.OpCreateServer); err != nil {
		return compute.ServerInfo{}, err
	}
	return w.Driver.CreateServer(ctx, spec)
}

func (w *Driver) DeleteServer(ctx context.Context, id string) error {
	if err := w.inject(ctx, sim.OpDeleteServer); err != nil {
		return err
	}
	return w.Driver.DeleteServer(ctx, id)
}

func (w *Driver) AttachDisk(ctx context.Context, serverID, diskID string) error {
	if err := w.inject(ctx, sim.OpAttachDisk); err != nil {
		return err
	}
	return w.Driver.AttachDisk(ctx, serverID, diskID)
}

func (w *Driver) DetachDisk(ctx context.Context, serverID, diskID string) error {
	if err := w.inject(ctx, sim.OpDetachDisk); err != nil {
		return err
	}
	return w.Driver.DetachDisk(ctx, serverID, diskID)
}

func (w *Driver) StartServer(ctx context.Context, id string) error {
	if err := w.inject(ctx, sim.OpStart); err != nil {
		return err
	}
	return w.Driver.StartServer(ctx, id)
}

func (w *Driver) StopServer(ctx context.Context, id string, hard bool) error {
	if err := w.inject(ctx, sim.OpStop); err != nil {
		return err
	}
	return w.Driver.StopServer(ctx, id, hard)
}

func (w *Driver) RebootServer(ctx context.Context, id string, hard bool) error {
	if err := w.inject(ctx, sim.OpReboot); err != nil {
		return err
	}
	return w.Driver.RebootServer(ctx, id, hard)
}
