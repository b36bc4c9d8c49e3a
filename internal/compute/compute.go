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
//     key; a driver never sees a plain password. A cloud-init seed (Seed)
//     carries them the same way, and never rests in plain text either.
//   - A server whose image runs cloud-init gets what it needs from a Seed
//     (ServerSpec.Seed at creation, SetSeed at every reinstall or change of
//     OS, each time with a new InstanceID); its guest agent, when it runs
//     one, takes SetPassword while the server runs. A guest without an
//     agent makes SetPassword and PingAgent fail with ErrNoAgent.
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

// DiskSpec describes a disk to create from an image, or a blank data disk
// of SizeGB when Image.ID is "".
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
	Image  ecs.Image // the server boots its Kernel and Initrd, if any
	DiskID string    // the system disk, attached at creation
	// Seed, when not nil, is the cloud-init seed the server boots with
	// (for an image that runs cloud-init, Image.CloudInit); nil for none.
	Seed *Seed
}

// Seed is what a guest running cloud-init reads at boot from its NoCloud
// datasource: who it is and what to set up. cloud-init applies it once per
// InstanceID, so every create, reinstall and change of OS gives a new one.
type Seed struct {
	// InstanceID names this instance of the server (CheckSeed: 1-64
	// characters of ecs.ValidID).
	InstanceID string `json:"instance_id"`
	// Hostname is the guest's local-hostname, "" for none (a DNS label:
	// letters, digits and '-', see Hostname).
	Hostname string `json:"hostname,omitempty"`
	// PasswordHash is a $6$ SHA-512 crypt hash for root, "" to leave the
	// password as the image has it.
	PasswordHash string `json:"password_hash,omitempty"`
	// AuthorizedKeys is root's authorized_keys, one key a line, "" for none.
	AuthorizedKeys string `json:"authorized_keys,omitempty"`
	// UserData is the tenant's user data, decoded, passed to the guest
	// byte for byte (at most MaxUserData bytes); nil for none.
	UserData []byte `json:"user_data,omitempty"`
}

// MaxUserData is the most user data a Seed carries (Huawei allows 32 KB
// once decoded).
const MaxUserData = 32 << 10

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
	// AttachDataDisk attaches diskID to the server as a data disk, whether
	// the server runs (hot-plug: the guest sees a new disk) or not; it stays
	// attached across stops, starts and reinstalls until DetachDataDisk.
	// Attaching a data disk the server has succeeds. The disk must exist
	// and belong to no server (see CheckAttachData).
	AttachDataDisk(ctx context.Context, serverID, diskID string) error
	// DetachDataDisk detaches data disk diskID from the server, running
	// (hot-unplug) or not; detaching a disk the server does not have as a
	// data disk succeeds.
	DetachDataDisk(ctx context.Context, serverID, diskID string) error
	// StartServer boots the server from its system disk.
	StartServer(ctx context.Context, serverID string) error
	// StopServer stops the server: gracefully (ACPI) with a timeout unless
	// hard, then forcibly.
	StopServer(ctx context.Context, serverID string, hard bool) error
	// RebootServer restarts a running server.
	RebootServer(ctx context.Context, serverID string, hard bool) error
	// PowerState reports whether the server runs.
	PowerState(ctx context.Context, serverID string) (PowerState, error)

	// SetSeed replaces the cloud-init seed of a stopped server (nil: the
	// server boots without one from now on). A reinstall or change of OS
	// calls it with a new Seed.InstanceID, so cloud-init runs again.
	SetSeed(ctx context.Context, serverID string, seed *Seed) error
	// ReadSeed returns the seed the server boots with, nil for none: what
	// the guest will read, parsed back.
	ReadSeed(ctx context.Context, serverID string) (*Seed, error)
	// SetServerImage makes a stopped server boot img from now on (change
	// of OS): its kernel and initrd, if any, replace the old image's. The
	// system disk is the caller's business (DetachDisk, AttachDisk).
	SetServerImage(ctx context.Context, serverID string, img ecs.Image) error
	// SetPassword sets root's password in the guest of a running server
	// to passwordHash (a $6$ crypt hash), online, through its guest agent,
	// without a reboot. A stopped server is refused (ecs.ErrBadState: use
	// ApplyCredentials on its disk); a guest whose agent does not answer
	// gives ErrNoAgent.
	SetPassword(ctx context.Context, serverID, passwordHash string) error
	// PingAgent returns nil when the guest agent of a running server
	// answers, ErrNoAgent (wrapped) when it does not or the server is
	// stopped.
	PingAgent(ctx context.Context, serverID string) error

	// Close releases the driver's resources. Running servers keep running
	// (a restarted daemon reattaches to them).
	Close() error
}

// ErrNotFound is ecs.ErrNotFound, returned (wrapped) by drivers for a disk
// or server they do not know, where the operation needs it to exist.
var ErrNotFound error = ecs.ErrNotFound

// ErrNoAgent is returned (wrapped) by SetPassword and PingAgent when no
// guest agent answers: the guest runs none, has not started it yet, or the
// server is stopped. Its kind is ecs.ErrBadState.
var ErrNoAgent error = noAgent{}

type noAgent struct{}

func (noAgent) Error() string { return "no guest agent answers" }
func (noAgent) Unwrap() error { return ecs.ErrBadState }

// ErrInjected is returned (wrapped) by package faulty for a fault that was
// asked for in its configuration.
var ErrInjected = errors.New("compute: injected fault")
