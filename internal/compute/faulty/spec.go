package faulty

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Operation names: the compute.Driver calls a fault can target, as a spec
// and error messages (the simulator's included) name them.
const (
	OpCreateDisk       = "create_disk"
	OpDeleteDisk       = "delete_disk"
	OpApplyCredentials = "apply_credentials"
	OpReadCredentials  = "read_credentials"
	OpCreateServer     = "create_server"
	OpDeleteServer     = "delete_server"
	OpAttachDisk       = "attach_disk"
	OpDetachDisk       = "detach_disk"
	OpAttachDataDisk   = "attach_data_disk"
	OpDetachDataDisk   = "detach_data_disk"
	OpStart            = "start"
	OpStop             = "stop"
	OpReboot           = "reboot"
	OpSetSeed          = "set_seed"
	OpReadSeed         = "read_seed"
	OpSetServerImage   = "set_server_image"
	OpSetPassword      = "set_password"
	OpPingAgent        = "ping_agent"
)

// Ops lists every operation a fault can target, in the order of the Driver
// interface.
var Ops = []string{
	OpCreateDisk, OpDeleteDisk, OpApplyCredentials, OpReadCredentials,
	OpCreateServer, OpDeleteServer, OpAttachDisk, OpDetachDisk, OpAttachDataDisk, OpDetachDataDisk,
	OpStart, OpStop, OpReboot,
	OpSetSeed, OpReadSeed, OpSetServerImage, OpSetPassword, OpPingAgent,
}

// Fault actions.
const (
	// ActionFail makes calls fail with an error wrapping compute.ErrInjected:
	// every call when Count is 0, else the first Count calls.
	ActionFail = "fail"
	// ActionHang blocks calls until their ctx is done, then returns ctx.Err().
	ActionHang = "hang"
	// ActionDelay adds Delay to every call (cancellable by ctx).
	ActionDelay = "delay"
)

// Fault injects a failure or a delay into one operation. Several faults may
// target the same operation; they apply in order, before the operation
// changes anything, so a failed call leaves the state as it was.
type Fault struct {
	Op     string        // one of Ops
	Action string        // ActionFail, ActionHang or ActionDelay
	Count  int           // ActionFail: fail only the first Count calls; 0 means every call
	Delay  time.Duration // ActionDelay: how long each call waits
}

// String returns f in the syntax Parse reads.
func (f Fault) String() string {
	switch {
	case f.Action == ActionFail && f.Count > 0:
		return fmt.Sprintf("%s=fail:%d", f.Op, f.Count)
	case f.Action == ActionDelay:
		return fmt.Sprintf("%s=delay:%s", f.Op, f.Delay)
	}
	return f.Op + "=" + f.Action
}

func (f Fault) validate() error {
	if !validOp(f.Op) {
		return fmt.Errorf("unknown op %q (want one of %s)", f.Op, strings.Join(Ops, ", "))
	}
	switch f.Action {
	case ActionFail:
		if f.Count < 0 {
			return fmt.Errorf("%s: fail count %d is negative", f.Op, f.Count)
		}
	case ActionHang:
	case ActionDelay:
		if f.Delay < 0 {
			return fmt.Errorf("%s: delay %s is negative", f.Op, f.Delay)
		}
	default:
		return fmt.Errorf("%s: unknown action %q (want fail, fail:N, hang or delay:DURATION)", f.Op, f.Action)
	}
	return nil
}

func validOp(op string) bool { return slices.Contains(Ops, op) }

// Parse parses a fault spec, the syntax of ecsd's --faults (and of its older
// name --sim-faults): comma-separated op=action items, where op is one of Ops
// and action is
//
//	fail             every call fails
//	fail:N           the first N calls fail, later ones succeed (N >= 1)
//	hang             calls block until their ctx is cancelled
//	delay:DURATION   calls wait DURATION first (Go syntax: 500ms, 2s)
//
// for example "create_disk=fail:2,start=delay:3s". Blanks around items are
// ignored; an empty spec means no faults. An error names the bad item.
func Parse(spec string) ([]Fault, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	var faults []Fault
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		f, err := parseFault(item)
		if err != nil {
			return nil, fmt.Errorf("fault %q: %w", item, err)
		}
		faults = append(faults, f)
	}
	return faults, nil
}

func parseFault(item string) (Fault, error) {
	if item == "" {
		return Fault{}, fmt.Errorf("empty item")
	}
	op, action, ok := strings.Cut(item, "=")
	if !ok {
		return Fault{}, fmt.Errorf("want op=action")
	}
	f := Fault{Op: op}
	name, arg, hasArg := strings.Cut(action, ":")
	switch {
	case name == ActionFail && !hasArg:
		f.Action = ActionFail
	case name == ActionFail:
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 {
			return Fault{}, fmt.Errorf("fail count %q is not a whole number >= 1", arg)
		}
		f.Action, f.Count = ActionFail, n
	case name == ActionHang && !hasArg:
		f.Action = ActionHang
	case name == ActionDelay && hasArg:
		d, err := time.ParseDuration(arg)
		if err != nil || d < 0 {
			return Fault{}, fmt.Errorf("delay %q is not a duration >= 0 such as 500ms or 2s", arg)
		}
		f.Action, f.Delay = ActionDelay, d
	default:
		return Fault{}, fmt.Errorf("unknown action %q (want fail, fail:N, hang or delay:DURATION)", action)
	}
	if err := f.validate(); err != nil {
		return Fault{}, err
	}
	return f, nil
}
