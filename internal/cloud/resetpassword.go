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

// Password reset (PUT /v1/{p}/cloudservers/{id}/os-reset-password): a job
// on the server's host sets root's password, online through the guest
// agent when the server runs, offline in its system disk when it is
// stopped, as a reinstall does. The API answers once the job has ended
// (it is short), so that a refusal found on the host (no agent answers)
// reaches the caller as an error rather than a 204.

// DefaultResetPasswordWait is how long ResetPassword waits for its job
// before answering that it was accepted; well inside the HTTP server's
// one-minute write timeout.
const DefaultResetPasswordWait = 30 * time.Second

// resetPasswordParams is a password reset job's input.
type resetPasswordParams struct {
	PasswordHash string `json:"password_hash"`
	// Online: the server ran at submission: set it through the guest
	// agent; else in the stopped server's system disk.
	Online   bool   `json:"online,omitempty"`
	VolumeID string `json:"volume_id,omitempty"`
}

// ResetPasswordInput is a reset-password request.
type ResetPasswordInput struct {
	NewPassword string
	// CheckPassword is is_check_password: whether the complexity rules
	// apply (absent: true). false skips them (three of four classes, the
	// Windows user-name rules) but not the limits: 8 to 26 characters from
	// the allowed set (password.ValidateLimits).
	CheckPassword *bool
}

// ResetPassword sets root's password of a server: in one transaction it
// checks the server, marks it updating_password and inserts a job for its
// host; then it waits (at most Config.ResetPasswordWait) for the job and
// returns its failure, if it failed. A running server whose image has no
// guest agent is refused at once (stop it to reset the password offline).
func (s *Service) ResetPassword(ctx context.Context, c Caller, serverID string, in ResetPasswordInput) error {
	if in.NewPassword == "" {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: reset-password.new_password is required.")
	}
	srv, err := s.GetServer(ctx, c, serverID)
	if err != nil {
		return err
	}
	img, err := s.image(ctx, srv.ImageID)
	if errors.Is(err, ecs.ErrNotFound) {
		return ecs.Errorf(ecs.CodeImageNotFound, "The server's image no longer exists.")
	}
	if err != nil {
		return ecs.Wrap(ecs.CodeSystem, err, "Failed to query the image.")
	}
	if err := checkNewPassword(in, strings.EqualFold(img.OSType, "Windows")); err != nil {
		return err
	}
	if err := s.hostGate(s.store.HostList).check(ctx, &srv); err != nil {
		return submitError(err)
	}
	if err := resetPasswordAllowed(&srv, img); err != nil {
		return err
	}
	hash, err := password.Hash(in.NewPassword)
	if err != nil {
		return ecs.Wrap(ecs.CodeSystem, err, "Failed to process the password.")
	}

	jobID := newJobID()
	now := time.Now().UTC()
	err = s.store.Write(ctx, func(tx store.Tx) error {
		srv, err := lookupServer(ctx, tx.ServerGet, c.ProjectID, serverID)
		if err != nil {
			return err
		}
		if err := s.hostGate(tx.HostList).check(ctx, &srv); err != nil {
			return err
		}
		if err := resetPasswordAllowed(&srv, img); err != nil {
			return err
		}
		p := resetPasswordParams{PasswordHash: hash, Online: srv.VMState == ecs.VMActive, VolumeID: srv.SystemVolumeID}
		params, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return startServerJob(ctx, tx, c, &srv, ecs.TaskUpdatingPassword, jobID, ecs.JobResetPassword, params,
			ecs.ActionChangePassword, now)
	})
	if err != nil {
		return submitError(err)
	}
	s.engine.Notify()
	return s.awaitJob(ctx, c, jobID, s.cfg.ResetPasswordWait)
}

// checkNewPassword applies the password rules is_check_password asks for.
func checkNewPassword(in ResetPasswordInput, windows bool) error {
	if in.CheckPassword != nil && !*in.CheckPassword {
		return password.ValidateLimits(in.NewPassword)
	}
	return password.Validate(in.NewPassword, windows)
}

// resetPasswordAllowed checks the server's state for a password reset.
func resetPasswordAllowed(srv *ecs.Server, img ecs.Image) error {
	if srv.Locked {
		return lockedError(srv)
	}
	if srv.TaskState != ecs.TaskNone || srv.TaskJobID != "" {
		return ecs.Errorf(ecs.CodeTaskRunning, "Other commands are being executed on the ECS. Try again later.")
	}
	switch srv.VMState {
	case ecs.VMActive:
		if !imageHasAgent(img) {
			return ecs.Errorf(ecs.CodeBadState, "The ECS is running and its image has no guest agent to set the password online "+
				"(os-resetpwd-flag is \"False\"): stop the ECS and reset the password offline, or reinstall.")
		}
	case ecs.VMStopped:
		if img.Unsupported != "" {
			return ecs.Errorf(ecs.CodeImageAttributes, "The image does not support setting a password from the host: %s.", img.Unsupported)
		}
		if srv.SystemVolumeID == "" {
			return ecs.Errorf(ecs.CodeNoSystemDisk, "No system disk found. Attach the system disk to the ECS and try again.")
		}
	default:
		return ecs.Errorf(ecs.CodeBadState, "The ECS status does not meet requirements: status %s does not allow a password reset.", srv.Status())
	}
	return nil
}

// imageHasAgent says whether servers of img run a guest agent that can set
// a password online: the images that run cloud-init do (the simulator's
// and the project's cloud-init test image ship the QEMU guest agent).
func imageHasAgent(img ecs.Image) bool { return img.CloudInit }

// ResetPasswordFlag answers os-resetpwd-flag: whether the server's password
// can be reset online. It is true when its image has a guest agent and,
// for a running server on this node's host, the agent answers. For a
// running server on another host whose image has an agent, agentHost is
// that host: only its node can ask the agent, and ok is what the image
// alone says (true).
func (s *Service) ResetPasswordFlag(ctx context.Context, c Caller, serverID string) (ok bool, agentHost string, err error) {
	srv, err := s.GetServer(ctx, c, serverID)
	if err != nil {
		return false, "", err
	}
	img, err := s.image(ctx, srv.ImageID)
	if errors.Is(err, ecs.ErrNotFound) {
		return false, "", nil
	}
	if err != nil {
		return false, "", ecs.Wrap(ecs.CodeSystem, err, "Failed to query the image.")
	}
	if !imageHasAgent(img) {
		return false, "", nil
	}
	if srv.VMState != ecs.VMActive || srv.TaskState != ecs.TaskNone {
		return true, "", nil
	}
	if srv.Host != s.cfg.Host {
		return true, srv.Host, nil
	}
	if s.drv != nil {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := s.drv.PingAgent(pctx, srv.ID); err != nil {
			return false, "", nil
		}
	}
	return true, "", nil
}

// awaitJob waits at most wait for a job to end and returns its failure as
// an error; a job still running after wait, or a wait cut short by ctx,
// is no error (it was accepted).
func (s *Service) awaitJob(ctx context.Context, c Caller, jobID string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := 5 * time.Millisecond
	for {
		j, err := s.store.JobGet(ctx, c.ProjectID, jobID)
		if err == nil && j.Status == ecs.JobFail {
			return ecs.Errorf(failureCode(j.ErrorCode), "%s", j.FailReason)
		}
		if (err == nil && j.Done()) || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// failureCode is the Code of a job's error_code: a job failure code when
// one has that wire code, else a refusal's.
func failureCode(wire string) ecs.Code {
	var found *ecs.Code
	for _, c := range ecs.Codes() {
		if c.Wire != wire {
			continue
		}
		if c.Kind == ecs.ErrFailed {
			return c
		}
		if found == nil {
			found = &c
		}
	}
	if found != nil {
		return *found
	}
	return ecs.Code{Kind: ecs.ErrFailed, Wire: wire}
}

// runResetPassword sets the password: online through the guest agent, or
// offline in the stopped server's system disk.
func (s *Service) runResetPassword(ctx context.Context, r jobs.Run) error {
	var p resetPasswordParams
	return s.runJob(ctx, r, &p, func(ctx context.Context, jr *jobRun) error {
		id := jr.job.ServerID
		sctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
		defer cancel()
		if p.Online {
			err := s.drv.SetPassword(sctx, id, p.PasswordHash)
			if errors.Is(err, compute.ErrNoAgent) {
				return failStep(ecs.CodeBadState, "No guest agent answers on the ECS: the password cannot be set online. "+
					"Stop the ECS and reset the password offline.", err)
			}
			if err != nil {
				return failStep(ecs.CodeTaskFailed, "Failed to set the password through the guest agent.", err)
			}
		} else {
			if err := s.drv.ApplyCredentials(sctx, p.VolumeID, compute.Credentials{PasswordHash: p.PasswordHash}); err != nil {
				return failStep(ecs.CodeTaskFailed, "Failed to set the password on the system disk.", err)
			}
		}
		return jr.finish(ctx, nil)
	}, func(ctx context.Context, jr *jobRun, cause error) error {
		// The server keeps its state; the job records why it failed.
		return jr.fail(ctx, cause, nil)
	})
}
