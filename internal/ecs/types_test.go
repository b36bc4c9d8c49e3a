package ecs

import "testing"

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct{ vm, task, want string }{
		{VMBuilding, TaskNone, "BUILD"},
		{VMBuilding, TaskScheduling, "BUILD"},
		{VMBuilding, TaskSpawning, "BUILD"},
		{VMActive, TaskNone, "ACTIVE"},
		{VMActive, TaskPoweringOff, "ACTIVE"},
		{VMActive, TaskDeleting, "ACTIVE"},
		{VMActive, TaskUpdatingPassword, "ACTIVE"},
		{VMStopped, TaskUpdatingPassword, "SHUTOFF"},
		{VMError, TaskUpdatingPassword, "UNKNOWN"},
		{VMActive, TaskRebooting, "REBOOT"},
		{VMActive, TaskRebootingHard, "HARD_REBOOT"},
		{VMActive, TaskRebuilding, "REBUILD"},
		{VMStopped, TaskNone, "SHUTOFF"},
		{VMStopped, TaskPoweringOn, "SHUTOFF"},
		{VMStopped, TaskRebuildBlockDeviceMapping, "REBUILD"},
		{VMStopped, TaskRebuildSpawning, "REBUILD"},
		{VMError, TaskNone, "ERROR"},
		{VMError, TaskRebuilding, "REBUILD"},
		{VMError, TaskDeleting, "ERROR"},
		{VMDeleted, TaskNone, "DELETED"},
		{VMStopped, TaskRebooting, "UNKNOWN"},
		{VMError, TaskPoweringOn, "UNKNOWN"},
		{"weird", TaskNone, "UNKNOWN"},
	}
	for _, tt := range tests {
		if got := Status(tt.vm, tt.task); got != tt.want {
			t.Errorf("Status(%q, %q) = %s, want %s", tt.vm, tt.task, got, tt.want)
		}
	}
}
