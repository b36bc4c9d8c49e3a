package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/jobs"
	"github.com/ecsproject/ecsd/internal/password"
	"github.com/ecsproject/ecsd/internal/store"
)

// ModeWithStopServer is the reinstall mode that allows a running server: the
// job stops it first and starts it again at the end.
const ModeWithStopServer = "withStopServer"

// ReinstallInput is the os-reinstall option of a reinstall request; nil
// fields were absent.
type ReinstallInput struct {
	AdminPass *string
	KeyName   *string
	UserID    *string
	Mode      *string
	Metadata  map[string]string
}

// reinstallParams is a reinstall job's input. It holds no plain secret.
type reinstallParams struct {
	OldVolumeID  string `json:"old_volume_id"`
	NewVolumeID  string `json:"new_volume_id"`
	PasswordHash string `json:"password_hash,omitempty"`
	KeyName      string `json:"key_name,omitempty"`
	PublicKey    string `json:"public_key,omitempty"`
	// Restart: the server was running (withStopServer): stop it first and
	// start it again at the end.
	Restart bool `json:"restart,omitempty"`
}

// Reinstall validates a reinstall request and, in one transaction, marks the
// server rebuilding and inserts the job. It returns the job id.
func (s *Service) Reinstall(ctx context.Context, c Caller, serverID string, in ReinstallInput) (string, error) {
	hasPass := in.AdminPass != nil && *in.AdminPass != ""
	hasKey := in.KeyName != nil && *in.KeyName != ""
	switch {
	case hasPass && hasKey:
		return "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: adminpass and keyname cannot both be set.")
	case !hasPass && !hasKey:
		return "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: one of adminpass and keyname is required.")
	}
	if in.Mode != nil && *in.Mode != ModeWithStopServer {
		return "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: mode must be %q.", ModeWithStopServer)
	}
	if err := checkReinstallMetadata(in.Metadata); err != nil {
		return "", err
	}
	userID := c.UserID
	if in.UserID != nil && *in.UserID != "" {
		userID = *in.UserID
	}

	p := reinstallParams{NewVolumeID: newUUID()}
	// The image is read before the transaction, never inside it: a read
	// on the store (on a cold image cache) while a Write holds a database
	// connection waits for a second one, and concurrent submits could take
	// every connection of a PostgreSQL pool that way and wait for each
	// other. The transaction checks that the server still has this image.
	srv, err := s.GetServer(ctx, c, serverID)
	if err != nil {
		return "", err
	}
	img, err := s.reinstallImage(ctx, srv.ImageID)
	if err != nil {
		return "", err
	}
	if hasPass {
		// The password rules depend on the image's OS, and the hash is
		// worth computing only for a server that can be reinstalled:
		// check both from the read before the transaction, which checks
		// the state again.
		if err := password.Validate(*in.AdminPass, strings.EqualFold(img.OSType, "Windows")); err != nil {
			return "", err
		}
		if err := s.hostGate(s.store.HostList).check(ctx, &srv); err != nil {
			return "", submitError(err)
		}
		if err := reinstallAllowed(&srv, in); err != nil {
			return "", err
		}
		if p.PasswordHash, err = password.Hash(*in.AdminPass); err != nil {
			return "", ecs.Wrap(ecs.CodeSystem, err, "Failed to process the password.")
		}
	}

	jobID := newJobID()
	now := time.Now().UTC()
	err = s.store.Write(ctx, func(tx store.Tx) error {
		srv, err := lookupServer(ctx, tx.ServerGet, c.ProjectID, serverID)
		if err != nil {
			return err
		}
		if srv.ImageID != img.ID {
			// Changed since the read above: another operation is at work.
			return ecs.Errorf(ecs.CodeTaskRunning, "Other commands are being executed on the ECS. Try again later.")
		}
		if hasKey {
			kp, err := tx.KeypairGet(ctx, c.ProjectID, userID, *in.KeyName)
			if errors.Is(err, ecs.ErrNotFound) {
				return ecs.Errorf(ecs.CodeKeypairNotFound, "Key pair %s does not exist.", safeID(*in.KeyName))
			}
			if err != nil {
				return err
			}
			p.KeyName, p.PublicKey = kp.Name, kp.PublicKey
		}
		if err := s.hostGate(tx.HostList).check(ctx, &srv); err != nil {
			return err
		}
		if err := reinstallAllowed(&srv, in); err != nil {
			return err
		}
		p.OldVolumeID = srv.SystemVolumeID
		p.Restart = srv.VMState == ecs.VMActive
		params, err := json.Marshal(p)
		if err != nil {
			return err
		}
		srv.TaskState = ecs.TaskRebuilding
		srv.TaskJobID = jobID
		srv.Updated = now
		if err := tx.ServerUpdate(ctx, &srv); err != nil {
			return err
		}
		return tx.JobInsert(ctx, &ecs.Job{ID: jobID, ProjectID: c.ProjectID, Type: ecs.JobReinstallOS, Status: ecs.JobInit,
			ServerID: srv.ID, Host: srv.Host, Runnable: true, Params: params, Created: now})
	})
	if err != nil {
		return "", submitError(err)
	}
	s.engine.Notify()
	return jobID, nil
}

// reinstallImage returns the server's original image if a reinstall can
// use it.
func (s *Service) reinstallImage(ctx context.Context, id string) (ecs.Image, error) {
	img, err := s.image(ctx, id)
	if errors.Is(err, ecs.ErrNotFound) {
		return img, ecs.Errorf(ecs.CodeImageNotFound, "The server's original image no longer exists.")
	}
	if err != nil {
		return img, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the image.")
	}
	if img.Unsupported != "" {
		return img, ecs.Errorf(ecs.CodeImageAttributes, "The image does not support setting a password or key pair from the host: %s.", img.Unsupported)
	}
	if img.Status != "active" {
		return img, ecs.Errorf(ecs.CodeImageNotActive, "The image is not in Active state.")
	}
	return img, s.runnable(img)
}

// reinstallAllowed checks the server's state for a reinstall.
func reinstallAllowed(srv *ecs.Server, in ReinstallInput) error {
	if srv.Locked {
		return ecs.Errorf(ecs.CodeLocked, "ECS locked.")
	}
	if srv.TaskState != ecs.TaskNone || srv.TaskJobID != "" {
		return ecs.Errorf(ecs.CodeTaskRunning, "Other commands are being executed on the ECS. Try again later.")
	}
	withStop := in.Mode != nil && *in.Mode == ModeWithStopServer
	switch {
	case srv.VMState == ecs.VMStopped:
	case srv.VMState == ecs.VMError && srv.ReinstallFailed:
	case srv.VMState == ecs.VMActive && withStop:
	case srv.VMState == ecs.VMActive:
		return ecs.Errorf(ecs.CodeBadState, "The ECS status does not meet requirements: stop the ECS first, or use mode %q (ecsctl server reinstall --with-stop).", ModeWithStopServer)
	default:
		return ecs.Errorf(ecs.CodeBadState, "The ECS status does not meet requirements: status %s does not allow an OS reinstall.", srv.Status())
	}
	if srv.SystemVolumeID == "" {
		return ecs.Errorf(ecs.CodeNoSystemDisk, "No system disk found. Attach the system disk to the ECS and try again.")
	}
	return nil
}

func checkReinstallMetadata(md map[string]string) error {
	for k, v := range md {
		switch k {
		case "__system__encrypted":
			if v != "0" && v != "1" {
				return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: metadata.__system__encrypted must be \"0\" or \"1\".")
			}
		case "__system__cmkid":
			if len(v) != 36 {
				return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: metadata.__system__cmkid must be a 36-character key id.")
			}
		case "BYOL":
			if v != "true" {
				return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: metadata.BYOL must be \"true\".")
			}
		default:
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: unsupported metadata key %q.", safeID(k))
		}
	}
	return nil
}

// Reinstall checkpoints.
const (
	reinstallStopped  = 1 // the server is stopped (withStopServer)
	reinstallDiskMade = 2 // the new disk exists and holds the credentials
	reinstallSwapped  = 3 // the new disk is the server's system disk
	reinstallDone     = 4 // the old disk is deleted and the job finished
)

func (s *Service) runReinstall(ctx context.Context, r jobs.Run) error {
	var p reinstallParams
	return s.runJob(ctx, r, &p, func(ctx context.Context, jr *jobRun) error {
		return s.reinstall(ctx, jr, &p)
	}, func(ctx context.Context, jr *jobRun, cause error) error {
		return s.reinstallFailed(ctx, jr, &p, cause)
	})
}

func (s *Service) reinstall(ctx context.Context, jr *jobRun, p *reinstallParams) error {
	id := jr.job.ServerID
	err := jr.step(ctx, reinstallStopped, func(ctx context.Context) error {
		if !p.Restart {
			return nil
		}
		if err := s.drv.StopServer(ctx, id, false); err != nil {
			return failStep(ecs.CodeBadState, "Failed to stop the ECS before the reinstall.", err)
		}
		return nil
	}, func(_ store.Tx, srv *ecs.Server) error {
		srv.PowerState = ecs.PowerShutdown
		srv.TaskState = ecs.TaskRebuildBlockDeviceMapping
		return nil
	})
	if err != nil {
		return err
	}

	srv, err := s.store.ServerGet(ctx, jr.job.ProjectID, id)
	if err != nil {
		return err
	}
	img, err := s.image(ctx, srv.ImageID)
	if err != nil {
		return failStep(ecs.CodeImageNotFound, "The image does not exist.", err)
	}
	if img, err = s.localImage(ctx, img); err != nil {
		return err
	}
	// The new disk keeps the old one's size and type.
	size, volType := diskSize(img), "SSD"
	if ov, err := s.store.VolumeGet(ctx, p.OldVolumeID); err == nil {
		size, volType = max(ov.SizeGB, size), ov.VolumeType
	}
	err = jr.step(ctx, reinstallDiskMade, func(ctx context.Context) error {
		return s.makeDisk(ctx, compute.DiskSpec{ID: p.NewVolumeID, Image: img, SizeGB: size}, p.PasswordHash, p.PublicKey)
	}, func(tx store.Tx, srv *ecs.Server) error {
		srv.TaskState = ecs.TaskRebuildSpawning
		return tx.VolumeUpsert(ctx, &ecs.Volume{ID: p.NewVolumeID, ProjectID: srv.ProjectID, ImageID: img.ID,
			SizeGB: size, VolumeType: volType, Status: "available", Host: srv.Host, Created: time.Now().UTC()})
	})
	if err != nil {
		return err
	}

	err = jr.step(ctx, reinstallSwapped, func(ctx context.Context) error {
		if p.OldVolumeID != "" {
			if err := s.drv.DetachDisk(ctx, id, p.OldVolumeID); err != nil {
				return failStep(ecs.CodeSystemDiskAbnormal, "Failed to detach the old system disk.", err)
			}
		}
		if err := s.drv.AttachDisk(ctx, id, p.NewVolumeID); err != nil {
			return failStep(ecs.CodeSystemDiskAbnormal, "Failed to attach the new system disk.", err)
		}
		return nil
	}, func(tx store.Tx, srv *ecs.Server) error {
		srv.SystemVolumeID = p.NewVolumeID
		if p.KeyName != "" {
			srv.KeyName = p.KeyName
		} else {
			srv.KeyName = ""
		}
		nv, err := tx.VolumeGet(ctx, p.NewVolumeID)
		if err != nil {
			return err
		}
		nv.ServerID, nv.Status, nv.Device = srv.ID, "in-use", "/dev/vda"
		if err := tx.VolumeUpsert(ctx, &nv); err != nil {
			return err
		}
		if p.OldVolumeID == "" {
			return nil
		}
		ov, err := tx.VolumeGet(ctx, p.OldVolumeID)
		if errors.Is(err, ecs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ov.ServerID, ov.Status, ov.Device = "", "deleting", ""
		return tx.VolumeUpsert(ctx, &ov)
	})
	if err != nil {
		return err
	}

	// The old disk goes once the new one is attached; its record goes with
	// the final commit. (Deleting again after a crash is harmless.)
	oldGone := p.OldVolumeID == ""
	if !oldGone {
		dctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
		err := s.drv.DeleteDisk(dctx, p.OldVolumeID)
		cancel()
		if err != nil && ctx.Err() != nil {
			return err
		}
		if err != nil {
			// The reinstall itself succeeded; the old disk stays in state
			// "deleting" and is removed at the next start-up.
			jr.log.Error("deleting the old system disk failed; it is retried at start-up", "volume_id", p.OldVolumeID, "err", err)
		}
		oldGone = err == nil
	}
	if p.Restart {
		sctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
		err := s.drv.StartServer(sctx, id)
		cancel()
		if err != nil {
			return failStep(ecs.CodeStartFailed, "The OS was reinstalled but the ECS failed to start.", err)
		}
	}
	jr.job.Step = reinstallDone
	return jr.finish(ctx, func(tx store.Tx, srv *ecs.Server) error {
		srv.ReinstallFailed = false
		if p.Restart {
			srv.VMState, srv.PowerState = ecs.VMActive, ecs.PowerRunning
			srv.LaunchedAt = time.Now().UTC()
		} else {
			srv.VMState, srv.PowerState = ecs.VMStopped, ecs.PowerShutdown
		}
		if oldGone && p.OldVolumeID != "" {
			return tx.VolumeDelete(ctx, p.OldVolumeID)
		}
		return nil
	})
}

// reinstallFailed undoes what the failed run did to the disks (the server
// keeps its old system disk unless the swap was committed), marks the server
// ERROR/reinstall-failed and fails the job.
func (s *Service) reinstallFailed(ctx context.Context, jr *jobRun, p *reinstallParams, cause error) error {
	id := jr.job.ServerID
	if jr.job.Step < reinstallSwapped {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
		// A crashed run may have swapped the disks in the driver without
		// recording it: take the new disk off first (a no-op otherwise).
		if err := s.drv.DetachDisk(cctx, id, p.NewVolumeID); err != nil {
			jr.log.Error("detaching the new disk failed", "volume_id", p.NewVolumeID, "err", err)
		}
		if p.OldVolumeID != "" {
			if err := s.drv.AttachDisk(cctx, id, p.OldVolumeID); err != nil {
				jr.log.Error("re-attaching the old system disk failed", "err", err)
			}
		}
		if err := s.drv.DeleteDisk(cctx, p.NewVolumeID); err != nil {
			jr.log.Error("deleting the unused new disk failed", "volume_id", p.NewVolumeID, "err", err)
		}
		cancel()
	}
	power := ecs.PowerShutdown
	if st, err := s.drv.PowerState(ctx, id); err == nil && st == compute.PowerRunning {
		power = ecs.PowerRunning
	}
	return jr.fail(ctx, cause, func(tx store.Tx, srv *ecs.Server) error {
		srv.VMState = ecs.VMError
		srv.ReinstallFailed = true
		if jr.job.Step < reinstallSwapped {
			if err := tx.VolumeDelete(ctx, p.NewVolumeID); err != nil {
				return err
			}
		}
		srv.PowerState = power
		return nil
	})
}

// makeDisk creates a system disk from an image and writes the admin
// credentials into it (a $6$ hash and/or a public key), if any.
func (s *Service) makeDisk(ctx context.Context, spec compute.DiskSpec, passwordHash, publicKey string) error {
	if err := s.drv.CreateDisk(ctx, spec); err != nil {
		return failStep(ecs.CodeCreateSystemDiskFailed, "Failed to create the system disk from the image.", err)
	}
	if passwordHash == "" && publicKey == "" {
		return nil
	}
	creds := compute.Credentials{PasswordHash: passwordHash}
	if publicKey != "" {
		creds.AuthorizedKeys = strings.TrimRight(publicKey, "\n") + "\n"
	}
	if err := s.drv.ApplyCredentials(ctx, spec.ID, creds); err != nil {
		return failStep(ecs.CodeCreateSystemDiskFailed, "Failed to set the password or key pair on the system disk.", err)
	}
	return nil
}

// diskSize is the size of a system disk made from img.
func diskSize(img ecs.Image) int {
	if img.MinDiskGB > 0 {
		return img.MinDiskGB
	}
	return 10
}
