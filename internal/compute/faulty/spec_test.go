package faulty

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	var every []Fault
	var everySpec []string
	for _, op := range Ops {
		every = append(every, Fault{Op: op, Action: ActionFail})
		everySpec = append(everySpec, op+"=fail")
	}
	tests := []struct {
		spec string
		want []Fault
	}{
		{"", nil},
		{"  ", nil},
		{"create_disk=fail", []Fault{{Op: OpCreateDisk, Action: ActionFail}}},
		{"start=fail:3", []Fault{{Op: OpStart, Action: ActionFail, Count: 3}}},
		{"stop=hang", []Fault{{Op: OpStop, Action: ActionHang}}},
		{"reboot=delay:2s", []Fault{{Op: OpReboot, Action: ActionDelay, Delay: 2 * time.Second}}},
		{"reboot=delay:0s", []Fault{{Op: OpReboot, Action: ActionDelay}}},
		{" create_disk=fail:2 , attach_disk=delay:1m30s ", []Fault{
			{Op: OpCreateDisk, Action: ActionFail, Count: 2},
			{Op: OpAttachDisk, Action: ActionDelay, Delay: 90 * time.Second},
		}},
		{"start=delay:1s,start=fail:1", []Fault{
			{Op: OpStart, Action: ActionDelay, Delay: time.Second},
			{Op: OpStart, Action: ActionFail, Count: 1},
		}},
		{strings.Join(everySpec, ","), every},
	}
	for _, tc := range tests {
		got, err := Parse(tc.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.spec, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.spec, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		bad  string // the part the error must quote
		why  string // and what it must say about it
	}{
		{"start", `"start"`, "op=action"},
		{"boot=fail", `"boot=fail"`, `unknown op "boot"`},
		{"=fail", `"=fail"`, `unknown op ""`},
		{"START=fail", `"START=fail"`, `unknown op "START"`},
		{"start=explode", `"start=explode"`, `unknown action "explode"`},
		{"start=", `"start="`, `unknown action ""`},
		{"start=fail:0", `"start=fail:0"`, `fail count "0"`},
		{"start=fail:-1", `"start=fail:-1"`, `fail count "-1"`},
		{"start=fail:x", `"start=fail:x"`, `fail count "x"`},
		{"start=fail:", `"start=fail:"`, `fail count ""`},
		{"start=hang:1s", `"start=hang:1s"`, `unknown action "hang:1s"`},
		{"start=delay", `"start=delay"`, `unknown action "delay"`},
		{"start=delay:soon", `"start=delay:soon"`, `delay "soon"`},
		{"start=delay:-1s", `"start=delay:-1s"`, `delay "-1s"`},
		{"start=fail,", `""`, "empty item"},
		{",start=fail", `""`, "empty item"},
		{"start=fail,,stop=hang", `""`, "empty item"},
		{"stop=hang,reboot=fail:two", `"reboot=fail:two"`, `fail count "two"`},
	}
	for _, tc := range tests {
		got, err := Parse(tc.spec)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", tc.spec, got)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.bad) || !strings.Contains(msg, tc.why) {
			t.Errorf("Parse(%q) error %q does not name %s nor say %q", tc.spec, msg, tc.bad, tc.why)
		}
	}
}

func TestFaultString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f    Fault
		want string
	}{
		{Fault{Op: OpStart, Action: ActionFail}, "start=fail"},
		{Fault{Op: OpStart, Action: ActionFail, Count: 2}, "start=fail:2"},
		{Fault{Op: OpStop, Action: ActionHang}, "stop=hang"},
		{Fault{Op: OpReboot, Action: ActionDelay, Delay: 1500 * time.Millisecond}, "reboot=delay:1.5s"},
	}
	for _, tc := range tests {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "create_disk=fail", "start=fail:3", "stop=hang", "reboot=delay:2s",
		"create_disk=fail:2, attach_disk=delay:1m30s", "start=fail,", "start=fail:+1",
		"detach_disk=delay:1.5h,delete_server=hang", "x=y:z", "===,:::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		faults, err := Parse(spec)
		if err != nil {
			return
		}
		items := make([]string, len(faults))
		for i, fa := range faults {
			if err := fa.validate(); err != nil {
				t.Fatalf("Parse(%q) returned an invalid fault %+v: %v", spec, fa, err)
			}
			items[i] = fa.String()
		}
		// What was parsed prints back to a spec meaning the same.
		again, err := Parse(strings.Join(items, ","))
		if err != nil || !slices.Equal(again, faults) {
			t.Fatalf("Parse(%q) = %+v, printed %q, parsed back %+v, %v", spec, faults, items, again, err)
		}
	})
}
