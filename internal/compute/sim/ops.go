package sim

import "github.com/ecsproject/ecsd/internal/compute/faulty"

// Operation names, as the simulator's errors give them: those of a fault
// spec (package faulty), so that an error and the fault that could cause it
// name the same operation.
const (
	OpCreateDisk       = faulty.OpCreateDisk
	OpDeleteDisk       = faulty.OpDeleteDisk
	OpApplyCredentials = faulty.OpApplyCredentials
	OpReadCredentials  = faulty.OpReadCredentials
	OpCreateServer     = faulty.OpCreateServer
	OpDeleteServer     = faulty.OpDeleteServer
	OpAttachDisk       = faulty.OpAttachDisk
	OpDetachDisk       = faulty.OpDetachDisk
	OpAttachDataDisk   = faulty.OpAttachDataDisk
	OpDetachDataDisk   = faulty.OpDetachDataDisk
	OpStart            = faulty.OpStart
	OpStop             = faulty.OpStop
	OpReboot           = faulty.OpReboot
	OpSetSeed          = faulty.OpSetSeed
	OpReadSeed         = faulty.OpReadSeed
	OpSetServerImage   = faulty.OpSetServerImage
	OpSetPassword      = faulty.OpSetPassword
	OpPingAgent        = faulty.OpPingAgent
)
