package ecs

// Codes of volumes, attachments and block devices (issue 10).
var (
	// CodeVolumeNotAttached is a detach or a block device show of a
	// volume that is not attached to the ECS ("the disk is not in the
	// attachment list").
	CodeVolumeNotAttached = code(ErrInvalid, "Ecs.0111")
	// CodeVolumeOtherHost is an attach of a volume held by another host
	// than the ECS's ("different failure domains").
	CodeVolumeOtherHost = code(ErrInvalid, "Ecs.0121")
	// CodeTooManyVolumes is an attach to an ECS that has as many data
	// disks as it can have.
	CodeTooManyVolumes = code(ErrInvalid, "Ecs.0104")
	// CodeVolumeNoRoom is the first attach of a volume (which gives it
	// its host) to an ECS whose host has not that much free disk left
	// (Huawei's "insufficient EVS disk quota"; our choice, README).
	CodeVolumeNoRoom = code(ErrFailed, "Ecs.0021")
	// CodeVolumeUnavailable is an attach of a volume that does not exist
	// or is not available ("the disk is unavailable").
	CodeVolumeUnavailable = code(ErrInvalid, "Ecs.0103")
	// CodeVolumeNotFound is an EVS call on a volume the project does not
	// have: 404 with the code of an unavailable disk (our choice; README).
	CodeVolumeNotFound = code(ErrNotFound, "Ecs.0103")
	// CodeVolumeBadState is an EVS delete of a volume that is in use or
	// busy: the code of an unavailable disk (our choice; README).
	CodeVolumeBadState = CodeVolumeUnavailable
)

// Job types of volumes (Huawei's ECS and EVS job types).
const (
	JobAttachVolume = "attachVolume"
	JobDetachVolume = "detachVolume"
	JobCreateVolume = "createVolume"
	JobDeleteVolume = "deleteVolume"
)

// Volume statuses (EVS).
const (
	VolumeAvailable = "available"
	VolumeInUse     = "in-use"
	VolumeAttaching = "attaching"
	VolumeDetaching = "detaching"
	VolumeDeleting  = "deleting"
)
