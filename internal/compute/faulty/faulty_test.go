package faulty

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// spy is a compute.Driver that records which operations reached it.
type spy struct {
	mu    sync.Mutex
	calls []string
}

func (s *spy) record(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, op)
	return nil
}

func (s *spy) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *spy) Name() string                       { return "spy" }
func (s *spy) Capabilities() compute.Capabilities { return compute.Capabilities{} }
func (s *spy) Close() error                       { return nil }
func (s *spy) CreateDisk(context.Context, compute.DiskSpec) error {
	return s.record(OpCreateDisk)
}
func (s *spy) DeleteDisk(context.Context, string) error { return s.record(OpDeleteDisk) }
func (s *spy) ApplyCredentials(context.Context, string, compute.Credentials) error {
	return s.record(OpApplyCredentials)
}
func (s *spy) ReadCredentials(context.Context, string) (compute.Credentials, error) {
	return compute.Credentials{}, s.record(OpReadCredentials)
}
func (s *spy) CreateServer(context.Context, compute.ServerSpec) (compute.ServerInfo, error) {
	return compute.ServerInfo{}, s.record(OpCreateServer)
}
func (s *spy) DeleteServer(context.Context, string) error       { return s.record(OpDeleteServer) }
func (s *spy) AttachDisk(context.Context, string, string) error { return s.record(OpAttachDisk) }
func (s *spy) DetachDisk(context.Context, string, string) error { return s.record(OpDetachDisk) }
func (s *spy) AttachDataDisk(context.Context, string, string) error {
	return s.record(OpAttachDataDisk)
}
func (s *spy) DetachDataDisk(context.Context, string, string) error {
	return s.record(OpDetachDataDisk)
}
func (s *spy) StartServer(context.Context, string) error        { return s.record(OpStart) }
func (s *spy) StopServer(context.Context, string, bool) error   { return s.record(OpStop) }
func (s *spy) RebootServer(context.Context, string, bool) error { return s.record(OpReboot) }
func (s *spy) PowerState(context.Context, string) (compute.PowerState, error) {
	return compute.PowerStopped, s.record("power_state")
}
func (s *spy) SetSeed(context.Context, string, *compute.Seed) error { return s.record(OpSetSeed) }
func (s *spy) ReadSeed(context.Context, string) (*compute.Seed, error) {
	return nil, s.record(OpReadSeed)
}
func (s *spy) SetServerImage(context.Context, string, ecs.Image) error {
	return s.record(OpSetServerImage)
}
func (s *spy) SetPassword(context.Context, string, string) error { return s.record(OpSetPassword) }
func (s *spy) PingAgent(context.Context, string) error           { return s.record(OpPingAgent) }

// opCalls holds, per operation, the driver call a fault on it targets.
var opCalls = map[string]func(ctx context.Context, d compute.Driver) error{
	OpCreateDisk: func(ctx context.Context, d compute.Driver) error {
		return d.CreateDisk(ctx, compute.DiskSpec{ID: "d1"})
	},
	OpDeleteDisk: func(ctx context.Context, d compute.Driver) error { return d.DeleteDisk(ctx, "d1") },
	OpApplyCredentials: func(ctx context.Context, d compute.Driver) error {
		return d.ApplyCredentials(ctx, "d1", compute.Credentials{AuthorizedKeys: "k\n"})
	},
	OpReadCredentials: func(ctx context.Context, d compute.Driver) error {
		_, err := d.ReadCredentials(ctx, "d1")
		return err
	},
	OpCreateServer: func(ctx context.Context, d compute.Driver) error {
		_, err := d.CreateServer(ctx, compute.ServerSpec{ID: "s1", DiskID: "d1"})
		return err
	},
	OpDeleteServer:   func(ctx context.Context, d compute.Driver) error { return d.DeleteServer(ctx, "s1") },
	OpAttachDisk:     func(ctx context.Context, d compute.Driver) error { return d.AttachDisk(ctx, "s1", "d1") },
	OpDetachDisk:     func(ctx context.Context, d compute.Driver) error { return d.DetachDisk(ctx, "s1", "d1") },
	OpAttachDataDisk: func(ctx context.Context, d compute.Driver) error { return d.AttachDataDisk(ctx, "s1", "d2") },
	OpDetachDataDisk: func(ctx context.Context, d compute.Driver) error { return d.DetachDataDisk(ctx, "s1", "d2") },
	OpStart:          func(ctx context.Context, d compute.Driver) error { return d.StartServer(ctx, "s1") },
	OpStop:           func(ctx context.Context, d compute.Driver) error { return d.StopServer(ctx, "s1", false) },
	OpReboot:         func(ctx context.Context, d compute.Driver) error { return d.RebootServer(ctx, "s1", true) },
	OpSetSeed: func(ctx context.Context, d compute.Driver) error {
		return d.SetSeed(ctx, "s1", &compute.Seed{InstanceID: "i1"})
	},
	OpReadSeed: func(ctx context.Context, d compute.Driver) error {
		_, err := d.ReadSeed(ctx, "s1")
		return err
	},
	OpSetServerImage: func(ctx context.Context, d compute.Driver) error {
		return d.SetServerImage(ctx, "s1", ecs.Image{ID: "img"})
	},
	OpSetPassword: func(ctx context.Context, d compute.Driver) error { return d.SetPassword(ctx, "s1", "$6$s$h") },
	OpPingAgent:   func(ctx context.Context, d compute.Driver) error { return d.PingAgent(ctx, "s1") },
}

// wrap wraps a new spy with faults.
func wrap(t *testing.T, faults ...Fault) (compute.Driver, *spy) {
	t.Helper()
	s := &spy{}
	d, err := Wrap(s, faults)
	if err != nil {
		t.Fatal(err)
	}
	return d, s
}

// waits replaces wait for the test: it records the durations and returns
// at once, except for a hang, which it signals on hung and then waits for
// the ctx. Tests that use it do not run in parallel.
func waits(t *testing.T) (got func() []time.Duration, hung <-chan struct{}) {
	var mu sync.Mutex
	var ds []time.Duration
	h := make(chan struct{}, 1)
	real := wait
	t.Cleanup(func() { wait = real })
	wait = func(ctx context.Context, d time.Duration) error {
		if d == forever {
			h <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}
		mu.Lock()
		ds = append(ds, d)
		mu.Unlock()
		return ctx.Err()
	}
	return func() []time.Duration { mu.Lock(); defer mu.Unlock(); return slices.Clone(ds) }, h
}

func TestOpCallsCoverOps(t *testing.T) {
	if got := slices.Sorted(maps.Keys(opCalls)); !slices.Equal(got, slices.Sorted(slices.Values(Ops))) {
		t.Fatalf("opCalls has %v, want every op of %v", got, Ops)
	}
	// Each call is the operation its name says: a fault on op stops the
	// call of op and only that one.
	for _, op := range Ops {
		d, s := wrap(t, Fault{Op: op, Action: ActionFail})
		for _, other := range Ops {
			err := opCalls[other](t.Context(), d)
			if (other == op) != errors.Is(err, compute.ErrInjected) {
				t.Errorf("fault on %s, call of %s: %v", op, other, err)
			}
		}
		if got := s.got(); slices.Contains(got, op) || len(got) != len(Ops)-1 {
			t.Errorf("fault on %s: calls that reached the driver %v, want all others", op, got)
		}
	}
}

func TestWrapWithoutFaults(t *testing.T) {
	s := &spy{}
	d, err := Wrap(s, nil)
	if err != nil || d != compute.Driver(s) {
		t.Fatalf("Wrap without faults = %v, %v; want the driver itself", d, err)
	}
}

func TestWrapRejectsBadFaults(t *testing.T) {
	for _, f := range []Fault{
		{Op: "boot", Action: ActionFail},
		{Op: OpStart, Action: "explode"},
		{Op: OpStart, Action: ActionFail, Count: -1},
		{Op: OpStart, Action: ActionDelay, Delay: -1},
	} {
		if _, err := Wrap(&spy{}, []Fault{f}); err == nil {
			t.Errorf("Wrap with %+v succeeded, want an error", f)
		}
	}
}

func TestFail(t *testing.T) {
	for _, op := range Ops {
		d, s := wrap(t, Fault{Op: op, Action: ActionFail})
		for range 3 {
			err := opCalls[op](t.Context(), d)
			if !errors.Is(err, compute.ErrInjected) || !strings.Contains(err.Error(), "spy: "+op+":") {
				t.Fatalf("%s: got %v, want an error wrapping ErrInjected naming the driver and %s", op, err, op)
			}
		}
		if got := s.got(); len(got) != 0 {
			t.Fatalf("%s: failed calls reached the driver: %v", op, got)
		}
	}
}

func TestFailN(t *testing.T) {
	for _, op := range Ops {
		d, s := wrap(t, Fault{Op: op, Action: ActionFail, Count: 2})
		for i := range 2 {
			err := opCalls[op](t.Context(), d)
			if !errors.Is(err, compute.ErrInjected) || !strings.Contains(err.Error(), fmt.Sprintf("call %d)", i+1)) {
				t.Fatalf("%s call %d: got %v, want ErrInjected saying which call", op, i+1, err)
			}
		}
		for i := 2; i < 4; i++ {
			if err := opCalls[op](t.Context(), d); err != nil {
				t.Fatalf("%s call %d: %v, want success after 2 failures", op, i+1, err)
			}
		}
		if got, want := s.got(), []string{op, op}; !slices.Equal(got, want) {
			t.Fatalf("%s: calls that reached the driver %v, want %v", op, got, want)
		}
	}
}

func TestHang(t *testing.T) {
	_, hung := waits(t)
	for _, op := range Ops {
		d, s := wrap(t, Fault{Op: op, Action: ActionHang})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- opCalls[op](ctx, d) }()
		<-hung
		select {
		case err := <-done:
			t.Fatalf("%s returned %v before its ctx was cancelled", op, err)
		default:
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: got %v, want context.Canceled", op, err)
		}
		if got := s.got(); len(got) != 0 {
			t.Fatalf("%s: a hung call reached the driver: %v", op, got)
		}
	}
}

func TestDelay(t *testing.T) {
	got, _ := waits(t)
	for _, op := range Ops {
		d, s := wrap(t, Fault{Op: op, Action: ActionDelay, Delay: 2 * time.Second})
		if err := opCalls[op](t.Context(), d); err != nil {
			t.Fatal(err)
		}
		if s.got()[0] != op {
			t.Fatalf("%s: the delayed call did not reach the driver", op)
		}
	}
	if w := got(); len(w) != len(Ops) || slices.ContainsFunc(w, func(d time.Duration) bool { return d != 2*time.Second }) {
		t.Fatalf("waited %v, want 2s per op", w)
	}
}

// TestRulesInOrder: several faults on one op apply in the order given.
func TestRulesInOrder(t *testing.T) {
	got, _ := waits(t)
	faults, err := Parse("start=delay:1s,start=fail:1")
	if err != nil {
		t.Fatal(err)
	}
	d, s := wrap(t, faults...)
	if err := d.StartServer(t.Context(), "s1"); !errors.Is(err, compute.ErrInjected) {
		t.Fatalf("first start: got %v, want ErrInjected", err)
	}
	if err := d.StartServer(t.Context(), "s1"); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if w, want := got(), []time.Duration{time.Second, time.Second}; !slices.Equal(w, want) {
		t.Fatalf("waited %v, want %v", w, want)
	}
	if c := s.got(); !slices.Equal(c, []string{OpStart}) {
		t.Fatalf("calls that reached the driver %v, want one start", c)
	}
}

// TestCancellable uses the real wait: a delay ends with its ctx.
func TestCancellable(t *testing.T) {
	t.Parallel()
	d, s := wrap(t, Fault{Op: OpStart, Action: ActionDelay, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := d.StartServer(ctx, "s1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	cctx, ccancel := context.WithCancel(t.Context())
	ccancel()
	if err := d.StopServer(cctx, "s1", true); !errors.Is(err, context.Canceled) {
		t.Fatalf("a call with a done ctx: got %v, want context.Canceled", err)
	}
	if got := s.got(); len(got) != 0 {
		t.Fatalf("cut-short calls reached the driver: %v", got)
	}
}

func TestPassThrough(t *testing.T) {
	d, s := wrap(t, Fault{Op: OpStart, Action: ActionFail})
	if _, err := d.PowerState(t.Context(), "s1"); err != nil || d.Name() != "spy" {
		t.Fatalf("PowerState %v, Name %q", err, d.Name())
	}
	if u, ok := d.(interface{ Unwrap() compute.Driver }); !ok || u.Unwrap() != compute.Driver(s) {
		t.Fatal("the wrapper does not unwrap to the driver")
	}
}
