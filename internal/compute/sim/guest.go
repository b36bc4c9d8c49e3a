package sim

import (
	"context"
	"fmt"
	"slices"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// The cloud-init side of a simulated server: its seed, its image and its
// guest agent, all in ServerState.

func copySeed(s *compute.Seed) *compute.Seed {
	if s == nil {
		return nil
	}
	c := *s
	c.UserData = slices.Clone(s.UserData)
	return &c
}

// SetSeed replaces the seed of a stopped server (nil: none).
func (d *Driver) SetSeed(ctx context.Context, serverID string, seed *compute.Seed) error {
	if err := compute.CheckSeed(seed); err != nil {
		return opError(OpSetSeed, err)
	}
	return d.changeStopped(ctx, OpSetSeed, serverID, func(st *ServerState) {
		st.Seed = copySeed(seed)
		if seed != nil {
			st.Seeds++
		}
	})
}

// ReadSeed returns the seed of a server, nil for none.
func (d *Driver) ReadSeed(ctx context.Context, serverID string) (*compute.Seed, error) {
	const op = OpReadSeed
	if err := checkIDs(op, "server", serverID); err != nil {
		return nil, err
	}
	if err := d.begin(ctx, op); err != nil {
		return nil, err
	}
	st, ok := d.servers.get(serverID)
	if !ok {
		return nil, opError(op, fmt.Errorf("server %s: %w", serverID, compute.ErrNotFound))
	}
	return copySeed(st.Seed), nil
}

// SetServerImage records that a stopped server boots img from now on; its
// guest has an agent when img runs cloud-init.
func (d *Driver) SetServerImage(ctx context.Context, serverID string, img ecs.Image) error {
	if img.ID == "" {
		return invalid(OpSetServerImage, "server %s: no image id", serverID)
	}
	return d.changeStopped(ctx, OpSetServerImage, serverID, func(st *ServerState) {
		if st.ImageID != img.ID {
			st.ImageChanges++
		}
		st.ImageID, st.Agent = img.ID, img.CloudInit
	})
}

// changeStopped is the body of SetSeed and SetServerImage: the server must
// exist and be stopped.
func (d *Driver) changeStopped(ctx context.Context, op, serverID string, change func(st *ServerState)) error {
	return d.setPower(ctx, op, serverID, func(v compute.ServerView) (bool, error) {
		return false, compute.CheckStopped(v)
	}, change)
}

// SetPassword sets root's password of a running server through its
// simulated agent: the system disk's state gets the hash, as the guest's
// /etc/shadow would.
func (d *Driver) SetPassword(ctx context.Context, serverID, passwordHash string) error {
	const op = OpSetPassword
	if err := checkIDs(op, "server", serverID); err != nil {
		return err
	}
	if passwordHash == "" {
		return invalid(op, "server %s: no password hash", serverID)
	}
	if err := compute.CheckCredentials(compute.Credentials{PasswordHash: passwordHash}); err != nil {
		return opError(op, err)
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := compute.CheckAgent(serverView(serverID, srv), srv.st.Agent); err != nil {
		return opError(op, err)
	}
	disk := d.disks.lock(srv.st.DiskID)
	defer d.disks.unlock(srv.st.DiskID, disk)
	if !disk.live {
		return opError(op, fmt.Errorf("system disk %s: %w", srv.st.DiskID, compute.ErrNotFound))
	}
	nextDisk := disk.st
	nextDisk.PasswordHash = passwordHash
	if err := d.writeJSON(d.diskPath(nextDisk.ID), nextDisk); err != nil {
		return err
	}
	disk.st = nextDisk
	next := srv.st
	next.PasswordSets++
	if err := d.writeJSON(d.serverPath(serverID), next); err != nil {
		return err
	}
	srv.st = next
	return nil
}

// PingAgent answers for a running server whose image runs cloud-init.
func (d *Driver) PingAgent(ctx context.Context, serverID string) error {
	const op = OpPingAgent
	if err := checkIDs(op, "server", serverID); err != nil {
		return err
	}
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	srv := d.servers.lock(serverID)
	defer d.servers.unlock(serverID, srv)
	if err := ctx.Err(); err != nil {
		return err
	}
	return opError(op, compute.CheckAgent(serverView(serverID, srv), srv.st.Agent))
}
