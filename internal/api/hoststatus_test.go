package api

import (
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
)

// host_status takes Huawei's values: UP, UNKNOWN, or "" for no host.
func TestHostStatusValues(t *testing.T) {
	t.Parallel()
	for st, want := range map[cloud.HostState]string{cloud.HostNone: "", cloud.HostUp: "UP", cloud.HostStale: "UNKNOWN",
		cloud.HostUnknown: "UNKNOWN"} {
		if got := hostStatus(st); got != want {
			t.Errorf("hostStatus(%d) = %q, want %q", st, got, want)
		}
	}
}
