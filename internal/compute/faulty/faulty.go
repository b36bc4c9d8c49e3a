// Package faulty is ecsd's one fault-injection engine: a fault spec syntax
// (Parse) and a wrapper that applies the faults to any compute.Driver, so
// that clients can test their FAIL handling on the simulator and on real
// drivers alike: `ecsd --driver qemu --faults apply_credentials=fail:1`
// (--sim-faults is the older name of the same flag).
//
// It promises:
//   - A fault applies before the wrapped call, which then does not run: a
//     failed or hung call changes nothing.
//   - An injected failure wraps compute.ErrInjected and names the driver,
//     the operation, the fault and which call it was.
//   - hang and delay end early, with ctx.Err(), when ctx is done.
//   - Calls no fault targets (Name, PowerState, Close) pass through.
package faulty

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// Driver is a compute.Driver with faults.
type Driver struct {
	compute.Driver
	rules map[string][]*rule // op -> faults, in order
}

// rule is a configured fault with its call counter.
type rule struct {
	Fault
	left atomic.Int64 // ActionFail with Count > 0: failures still to inject
}

// Wrap returns d with faults applied, or d itself when there are none. A
// fault that is not valid (one Parse would refuse) is an error.
func Wrap(d compute.Driver, faults []Fault) (compute.Driver, error) {
	if len(faults) == 0 {
		return d, nil
	}
	w := &Driver{Driver: d, rules: map[string][]*rule{}}
	for _, f := range faults {
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("fault %s: %w", f, err)
		}
		r := &rule{Fault: f}
		r.left.Store(int64(f.Count))
		w.rules[f.Op] = append(w.rules[f.Op], r)
	}
	return w, nil
}

// Unwrap returns the wrapped driver.
func (w *Driver) Unwrap() compute.Driver { return w.Driver }

// forever is how long a hang waits: until its ctx is done.
const forever = time.Duration(math.MaxInt64)

// wait is Wait; tests replace it.
var wait = Wait

// Wait waits for d, or until ctx is done and then returns ctx.Err(). The
// simulator's latency waits with it too.
func Wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// inject applies the rules of op in order. It returns nil when the call may
// proceed.
func (w *Driver) inject(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range w.rules[op] {
		switch r.Action {
		case ActionFail:
			if r.Count == 0 {
				return fmt.Errorf("%s: %s: %w (%s)", w.Driver.Name(), op, compute.ErrInjected, r.Fault)
			}
			if n := r.left.Add(-1); n >= 0 {
				return fmt.Errorf("%s: %s: %w (%s, call %d)", w.Driver.Name(), op, compute.ErrInjected, r.Fault, int64(r.Count)-n)
			}
		case ActionHang:
			return wait(ctx, forever)
		case ActionDelay:
			if err := wait(ctx, r.Delay); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *Driver) CreateDisk(ctx context.Context, spec compute.DiskSpec) error {
	if err := w.inject(ctx, OpCreateDisk); err != nil {
		return err
	}
	return w.Driver.CreateDisk(ctx, spec)
}

func (w *Driver) DeleteDisk(ctx context.Context, id string) error {
	if err := w.inject(ctx, OpDeleteDisk); err != nil {
		return err
	}
	return w.Driver.DeleteDisk(ctx, id)
}

func (w *Driver) ApplyCredentials(ctx context.Context, id string, c compute.Credentials) error {
	if err := w.inject(ctx, OpApplyCredentials); err != nil {
		return err
	}
	return w.Driver.ApplyCredentials(ctx, id, c)
}

func (w *Driver) ReadCredentials(ctx context.Context, id string) (compute.Credentials, error) {
	if err := w.inject(ctx, OpReadCredentials); err != nil {
		return compute.Credentials{}, err
	}
	return w.Driver.ReadCredentials(ctx, id)
}

func (w *Driver) CreateServer(ctx context.Context, spec compute.ServerSpec) (compute.ServerInfo, error) {
	if err := w.inject(ctx, OpCreateServer); err != nil {
		return compute.ServerInfo{}, err
	}
	return w.Driver.CreateServer(ctx, spec)
}

func (w *Driver) DeleteServer(ctx context.Context, id string) error {
	if err := w.inject(ctx, OpDeleteServer); err != nil {
		return err
	}
	return w.Driver.DeleteServer(ctx, id)
}

func (w *Driver) AttachDisk(ctx context.Context, serverID, diskID string) error {
	if err := w.inject(ctx, OpAttachDisk); err != nil {
		return err
	}
	return w.Driver.AttachDisk(ctx, serverID, diskID)
}

func (w *Driver) DetachDisk(ctx context.Context, serverID, diskID string) error {
	if err := w.inject(ctx, OpDetachDisk); err != nil {
		return err
	}
	return w.Driver.DetachDisk(ctx, serverID, diskID)
}

func (w *Driver) AttachDataDisk(ctx context.Context, serverID, diskID string) error {
	if err := w.inject(ctx, OpAttachDataDisk); err != nil {
		return err
	}
	return w.Driver.AttachDataDisk(ctx, serverID, diskID)
}

func (w *Driver) DetachDataDisk(ctx context.Context, serverID, diskID string) error {
	if err := w.inject(ctx, OpDetachDataDisk); err != nil {
		return err
	}
	return w.Driver.DetachDataDisk(ctx, serverID, diskID)
}

func (w *Driver) StartServer(ctx context.Context, id string) error {
	if err := w.inject(ctx, OpStart); err != nil {
		return err
	}
	return w.Driver.StartServer(ctx, id)
}

func (w *Driver) StopServer(ctx context.Context, id string, hard bool) error {
	if err := w.inject(ctx, OpStop); err != nil {
		return err
	}
	return w.Driver.StopServer(ctx, id, hard)
}

func (w *Driver) RebootServer(ctx context.Context, id string, hard bool) error {
	if err := w.inject(ctx, OpReboot); err != nil {
		return err
	}
	return w.Driver.RebootServer(ctx, id, hard)
}

func (w *Driver) SetSeed(ctx context.Context, id string, seed *compute.Seed) error {
	if err := w.inject(ctx, OpSetSeed); err != nil {
		return err
	}
	return w.Driver.SetSeed(ctx, id, seed)
}

func (w *Driver) ReadSeed(ctx context.Context, id string) (*compute.Seed, error) {
	if err := w.inject(ctx, OpReadSeed); err != nil {
		return nil, err
	}
	return w.Driver.ReadSeed(ctx, id)
}

func (w *Driver) SetServerImage(ctx context.Context, id string, img ecs.Image) error {
	if err := w.inject(ctx, OpSetServerImage); err != nil {
		return err
	}
	return w.Driver.SetServerImage(ctx, id, img)
}

func (w *Driver) SetPassword(ctx context.Context, id, passwordHash string) error {
	if err := w.inject(ctx, OpSetPassword); err != nil {
		return err
	}
	return w.Driver.SetPassword(ctx, id, passwordHash)
}

// PingAgent with a ping_agent=fail fault makes every guest look agentless:
// the error wraps compute.ErrNoAgent as well as compute.ErrInjected.
func (w *Driver) PingAgent(ctx context.Context, id string) error {
	if err := w.inject(ctx, OpPingAgent); err != nil {
		if errors.Is(err, compute.ErrInjected) {
			return fmt.Errorf("%w (%w)", err, compute.ErrNoAgent)
		}
		return err
	}
	return w.Driver.PingAgent(ctx, id)
}
