// Package compute defines the seam between the service and whatever runs
// servers and holds their disks: the Driver interface, with a simulator
// (compute/sim) and real QEMU VMs (compute/qemu) behind it, and one
// conformance suite (compute/computetest) that every driver passes.
//
// Contract for every Driver:
//   - ctx first; a cancelled ctx makes a call return ctx.Err() promptly.
//   - Every method is idempotent, because a job step may run again after a
//     crash: creating a disk that exists replaces it, deleting something
//     missing succeeds, starting a running server and stopping a stopped one
//     succeed.
//   - Disks are identified by the volume id the service chose; servers by
//     the server id.
//   - Credentials arrive hashed (a $6$ SHA-512 crypt hash) or as a public
//     key; a driver never sees a plain password.
//   - The rules of attaching, detaching, deleting and powering (rules.go)
//     are the same for every driver, and so are the kinds of the errors
//     that refuse a call (ecs.ErrNotFound, ecs.ErrBadState,
//     ecs.ErrConflict, ecs.ErrInvalid); ids follow ecs.ValidID.
package compute

import (
	"context"
	"errors"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// PowerState is what a driver reports about a server.
type PowerState int

// Power states.
const (
	PowerMissing PowerState = iota // the driver knows no such server
	PowerStopped
	PowerRunning
)

func (p PowerState) String() string {
	switch p {
	case PowerStopped:
		return "stopped"
	case PowerRunning:
		return "running"
	}
	return "missing"
}

// DiskSpec describes a disk to create from an image.
type DiskSpec struct {
	ID     string
	Image  ecs.Image
	SizeGB int
}

// Credentials are what ApplyCredentials writes into a disk's guest
// filesystem for the admin user (root on Linux). Empty fields are left
// untouched on the disk.
type Credentials struct {
	// PasswordHash is a $6$ SHA-512 crypt hash for the admin account.
	PasswordHash string
	// AuthorizedKeys is the full content of the admin's authorized_keys.
	AuthorizedKeys string
}

// ServerSpec describes a server (a VM definition) to create.
type ServerSpec struct {
	ID     string
	Name   string
	VCPUs  int
	RAMMB  int
	Image  ecs.Image
	DiskID string // the system disk, attached at creation
}

// ServerInfo is what a driver reports back about a created server.
type ServerInfo struct {
	// AccessPort is a TCP port on 127.0.0.1 forwarded to the guest's SSH
	// port, 0 when the driver has none.
	AccessPort int
}

// Capabilities say what a driver can do beyond the contract, so that the
// service refuses up front what the driver would fail in a job.
type Capabilities struct {
	// FilelessImages: the driver makes disks from catalog images that have
	// no disk file (ecs.Image.File is ""), as the simulator does.
	FilelessImages bool
}

// Driver runs servers and holds their disks.
type Driver interface {
	// Name is the driver's name as given to --driver. It is for logs and
	// messages: what a driver can do is in its Capabilities.
	Name() string
	// Capabilities says what the driver can do.
	Capabilities() Capabilities

	// CreateDisk creates disk spec.ID from spec.Image.
	CreateDisk(ctx context.Context, spec DiskSpec) error
	// DeleteDisk deletes a disk; it must not be attached.
	DeleteDisk(ctx context.Context, diskID string) error
	// ApplyCredentials writes c into the disk's guest filesystem from the
	// host side, reads it back and verifies it. The disk must not be in use
	// by a running server.
	ApplyCredentials(ctx context.Context, diskID string, c Credentials) error
	// ReadCredentials reads back what the disk's guest filesystem holds for
	// the admin user: the password hash of its shadow entry and the content
	// of its authorized_keys ("" when absent).
	ReadCredentials(ctx context.Context, diskID string) (Credentials, error)

	// CreateServer defines a server with spec.DiskID as its system disk. The
	// server is left stopped.
	CreateServer(ctx context.Context, spec ServerSpec) (ServerInfo, error)
	// DeleteServer stops the server if it runs and removes its definition;
	// its disks are not deleted.
	DeleteServer(ctx context.Context, serverID string) error
	// AttachDisk makes diskID the system disk (/dev/vda) of a stopped server.
	AttachDisk(ctx context.Context, serverID, diskID string) error
	// DetachDisk detaches diskID from a stopped server; detaching a disk that
	// is not attached succeeds.
	DetachDisk(ctx context.Context, serverID, diskID string) error
	// StartServer boots the server from its system disk.
	StartServer(ctx context.Context, serverID string) error
	// StopServer stops the server: gracefully (ACPI) with a timeout unless
	// hard, then forcibly.
	StopServer(ctx context.Context, serverID string, hard bool) error
	// RebootServer restarts a running server.
	RebootServer(ctx context.Context, serverID string, hard bool) error
	// PowerState reports whether the server runs.
	PowerState(ctx context.Context, serverID string) (PowerState, error)

	// Close releases the driver's resources. Running servers keep running
	// (a restarted daemon reattaches to them).
	Close() error
}

// ErrNotFound is ecs.ErrNotFound, returned (wrapped) by drivers for a disk
// or server they do not know, where the operation needs it to exist.
var ErrNotFound error = ecs.ErrNotFound

// ErrInjected is returned (wrapped) by package faulty for a fault that was
// asked for in its configuration.
var ErrInjected = errors.New("compute: injected fault")
