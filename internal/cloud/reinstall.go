package cloud

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
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

// ReinstallInput is the os-reinstall option of a reinstall request, or the
// os-change option of a change of OS; nil fields were absent.
type ReinstallInput struct {
	AdminPass *string
	KeyName   *string
	UserID    *string
	Mode      *string
	Metadata  map[string]string
	// CloudInit: the request came through the v2 API (with Cloud-Init):
	// metadata may carry user_data, adminpass and keyname may both be
	// absent when it does, and the image must run cloud-init.
	CloudInit bool
	// ImageID is the image of a change of OS (os-change.imageid); "" for a
	// reinstall, which keeps the server's image.
	ImageID *string
}

// reinstallParams is a reinstall or change-OS job's input. It holds no
// plain secret: the password is a hash and the user data is sealed.
type reinstallParams struct {
	OldVolumeID  string `json:"old_volume_id"`
	NewVolumeID  string `json:"new_volume_id"`
	PasswordHash string `json:"password_hash,omitempty"`
	KeyName      string `json:"key_name,omitempty"`
	PublicKey    string `json:"public_key,omitempty"`
	// Restart: the server was running (withStopServer): stop it first and
	// start it again at the end.
	Restart bool `json:"restart,omitempty"`
	// ImageID is the new image of a change of OS ("" for a reinstall).
	ImageID string `json:"image_id,omitempty"`
	// Inject: write the credentials into the new disk from the host side
	// (the v1 APIs); the v2 APIs leave them to cloud-init's seed.
	Inject bool `json:"inject,omitempty"`
	// SealedUserData is the decoded user data, sealed (secret.Box).
	SealedUserData []byte `json:"sealed_user_data,omitempty"`
	// Encrypted and CMKID are metadata.__system__encrypted and
	// __system__cmkid as given, recorded on the server at the end.
	Encrypted string `json:"encrypted,omitempty"`
	CMKID     string `json:"cmkid,omitempty"`
}

// Reinstall validates a reinstall request (v1, or v2 with in.CloudInit)
// and, in one transaction, marks the server rebuilding and inserts the job.
// It returns the job id.
func (s *Service) Reinstall(ctx context.Context, c Caller, serverID string, in ReinstallInput) (string, error) {
	in.ImageID = nil
	return s.osJob(ctx, c, serverID, in, ecs.JobReinstallOS)
}

// ChangeOS validates a change-OS request (v1, or v2 with in.CloudInit):
// the server gets a new system disk made from image *in.ImageID. The rules
// are a reinstall's, plus the image's: it must exist, be active and usable
// on the server's host, its min_ram must fit the flavor and its min_disk
// the system disk. It returns the job id.
func (s *Service) ChangeOS(ctx context.Context, c Caller, serverID string, in ReinstallInput) (string, error) {
	if in.ImageID == nil || *in.ImageID == "" {
		return "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: os-change.imageid is required.")
	}
	return s.osJob(ctx, c, serverID, in, ecs.JobChangeOS)
}

// osRequest is a checked reinstall or change-OS request.
type osRequest struct {
	hasPass, hasKey bool
	userData        []byte
	encrypted       string
	cmkid           string
}

// checkOSRequest checks what a reinstall or change-OS body says by itself.
func checkOSRequest(in ReinstallInput) (osRequest, error) {
	r := osRequest{hasPass: in.AdminPass != nil && *in.AdminPass != "", hasKey: in.KeyName != nil && *in.KeyName != ""}
	md, err := checkReinstallMetadata(in.Metadata, in.CloudInit)
	if err != nil {
		return r, err
	}
	r.userData, r.encrypted, r.cmkid = md.userData, md.encrypted, md.cmkid
	switch {
	case r.hasPass && r.hasKey:
		return r, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: adminpass and keyname cannot both be set.")
	case !r.hasPass && !r.hasKey && in.CloudInit && r.userData == nil:
		return r, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: one of adminpass, keyname and metadata.user_data is required.")
	case !r.hasPass && !r.hasKey && !in.CloudInit:
		return r, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: one of adminpass and keyname is required.")
	}
	if in.Mode != nil && *in.Mode != ModeWithStopServer {
		return r, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: mode must be %q.", ModeWithStopServer)
	}
	return r, nil
}

// osJob is the body of Reinstall and ChangeOS.
func (s *Service) osJob(ctx context.Context, c Caller, serverID string, in ReinstallInput, jobType string) (string, error) {
	req, err := checkOSRequest(in)
	if err != nil {
		return "", err
	}
	userID := c.UserID
	if in.UserID != nil && *in.UserID != "" {
		userID = *in.UserID
	}

	// The image and password rules, and the hash (worth computing only for
	// a server that can be reinstalled), come from a read before the
	// transaction, which checks the state again.
	srv, err := s.GetServer(ctx, c, serverID)
	if err != nil {
		return "", err
	}
	img, err := s.osImage(ctx, &srv, in)
	if err != nil {
		return "", err
	}
	p := reinstallParams{NewVolumeID: newUUID(), Inject: !in.CloudInit, Encrypted: req.encrypted, CMKID: req.cmkid}
	if in.ImageID != nil {
		p.ImageID = img.ID
	}
	if req.hasPass {
		// The state is checked here too (the transaction checks it again),
		// so that no hash is computed for a server that cannot be
		// reinstalled.
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
	if req.userData != nil {
		if p.SealedUserData, err = s.seal(req.userData); err != nil {
			return "", err
		}
	}

	jobID := newJobID()
	now := time.Now().UTC()
	err = s.store.Write(ctx, func(tx store.Tx) error {
		srv, err := lookupServer(ctx, tx.ServerGet, c.ProjectID, serverID)
		if err != nil {
			return err
		}
		if req.hasKey {
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
		if p.ImageID != "" {
			if err := imageFitsDisk(ctx, tx, &srv, img); err != nil {
				return err
			}
		}
		p.OldVolumeID = srv.SystemVolumeID
		p.Restart = srv.VMState == ecs.VMActive
		params, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return startServerJob(ctx, tx, c, &srv, ecs.TaskRebuilding, jobID, jobType, params, actionOf[jobType], now)
	})
	if err != nil {
		return "", submitError(err)
	}
	s.engine.Notify()
	return jobID, nil
}

// osImage returns the image a reinstall (the server's) or a change of OS
// (in.ImageID) installs, if the request can use it.
func (s *Service) osImage(ctx context.Context, srv *ecs.Server, in ReinstallInput) (ecs.Image, error) {
	var img ecs.Image
	var err error
	if in.ImageID == nil {
		img, err = s.reinstallImage(ctx, srv.ImageID)
	} else {
		img, err = s.changeOSImage(ctx, srv, *in.ImageID)
	}
	if err != nil {
		return img, err
	}
	switch {
	case in.CloudInit && !img.CloudInit:
		return img, ecs.Errorf(ecs.CodeImageAttributes, "The image %s does not run Cloud-Init (__support_cloudinit is false): "+
			"the v2 API needs an image that does; use the v1 API, which sets the password or key pair from the host.", img.ID)
	case in.CloudInit && in.ImageID != nil && strings.EqualFold(img.OSType, "Windows"):
		return img, ecs.Errorf(ecs.CodeImageAttributes, "The v2 change of OS does not change to a Windows image; use the v1 API.")
	case !in.CloudInit && img.Unsupported != "":
		return img, ecs.Errorf(ecs.CodeImageAttributes, "The image does not support setting a password or key pair from the host: %s.", img.Unsupported)
	}
	if f, ok := Flavor(srv.FlavorID); ok && in.ImageID != nil && img.MinRAMMB > f.RAMMB {
		return img, ecs.Errorf(ecs.CodeFlavorNotFitImage, "The image %s needs at least %d MB of memory; the ECS's flavor %s has %d MB.",
			img.ID, img.MinRAMMB, f.ID, f.RAMMB)
	}
	return img, nil
}

// changeOSImage returns the image a change of OS names, if it exists, is
// active and can run on the server's host.
func (s *Service) changeOSImage(ctx context.Context, srv *ecs.Server, id string) (ecs.Image, error) {
	img, err := s.image(ctx, id)
	if errors.Is(err, ecs.ErrNotFound) {
		return img, ecs.Errorf(ecs.CodeImageNotFound, "The image %s does not exist.", safeID(id))
	}
	if err != nil {
		return img, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the image.")
	}
	if img.Status != "active" {
		return img, ecs.Errorf(ecs.CodeImageNotActive, "The image is not in Active state.")
	}
	if err := s.runnable(img); err != nil {
		return img, err
	}
	if img.File != "" && srv.Host != "" {
		hosts, err := s.store.ImageHostList(ctx, img.ID)
		if err != nil {
			return img, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the image.")
		}
		if !slices.ContainsFunc(hosts, func(h store.ImageHost) bool { return h.Host == srv.Host }) {
			return img, ecs.Errorf(ecs.CodeImageAttributes, "The image %s is not imported on the ECS's host %s: "+
				"import it there with `ecsd image import --id %s`.", img.ID, srv.Host, img.ID)
		}
	}
	return img, nil
}

// imageFitsDisk refuses an image whose min_disk exceeds the server's system
// disk (flavors carry disk 0: the system disk's size is what counts).
func imageFitsDisk(ctx context.Context, tx store.Tx, srv *ecs.Server, img ecs.Image) error {
	if srv.SystemVolumeID == "" || img.MinDiskGB == 0 {
		return nil
	}
	v, err := tx.VolumeGet(ctx, srv.SystemVolumeID)
	if errors.Is(err, ecs.ErrNotFound) {
		return nil // reinstallAllowed refuses a server without a system disk
	}
	if err != nil {
		return err
	}
	if img.MinDiskGB > v.SizeGB {
		return ecs.Errorf(ecs.CodeImageNeedsLargerDisk, "The image %s needs a system disk of at least %d GB; the ECS's is %d GB.",
			img.ID, img.MinDiskGB, v.SizeGB)
	}
	return nil
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
	if img.Status != "active" {
		return img, ecs.Errorf(ecs.CodeImageNotActive, "The image is not in Active state.")
	}
	return img, s.runnable(img)
}

// reinstallAllowed checks the server's state for a reinstall or a change
// of OS.
func reinstallAllowed(srv *ecs.Server, in ReinstallInput) error {
	if srv.Locked {
		return lockedError(srv)
	}
	if srv.TaskState != ecs.TaskNone || srv.TaskJobID != "" {
		return ecs.Errorf(ecs.CodeTaskRunning, "Other commands are being executed on the ECS. Try again later.")
	}
	withStop := in.Mode != nil && *in.Mode == ModeWithStopServer
	what, cliVerb := "an OS reinstall", "reinstall"
	if in.ImageID != nil {
		what, cliVerb = "a change of OS", "change-os"
	}
	switch {
	case srv.VMState == ecs.VMStopped:
	case srv.VMState == ecs.VMError && srv.ReinstallFailed:
	case srv.VMState == ecs.VMActive && withStop:
	case srv.VMState == ecs.VMActive:
		return ecs.Errorf(ecs.CodeBadState, "The ECS status does not meet requirements: stop the ECS first, or use mode %q (ecsctl server %s --with-stop).",
			ModeWithStopServer, cliVerb)
	default:
		return ecs.Errorf(ecs.CodeBadState, "The ECS status does not meet requirements: status %s does not allow %s.", srv.Status(), what)
	}
	if srv.SystemVolumeID == "" {
		return ecs.Errorf(ecs.CodeNoSystemDisk, "No system disk found. Attach the system disk to the ECS and try again.")
	}
	return nil
}

// osMetadata is the checked metadata of a reinstall or change of OS.
type osMetadata struct {
	userData  []byte // nil when absent
	encrypted string
	cmkid     string
}

// checkReinstallMetadata checks the metadata of a reinstall or change of
// OS; user_data is accepted only by the v2 APIs (cloudInit).
func checkReinstallMetadata(md map[string]string, cloudInit bool) (osMetadata, error) {
	var out osMetadata
	for k, v := range md {
		switch k {
		case "__system__encrypted":
			if v != "0" && v != "1" {
				return out, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: metadata.__system__encrypted must be \"0\" or \"1\".")
			}
			out.encrypted = v
		case "__system__cmkid":
			if len(v) != 36 || !ecs.ValidID(v) {
				return out, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: metadata.__system__cmkid must be a 36-character key id.")
			}
			out.cmkid = v
		case "BYOL":
			if v != "true" {
				return out, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: metadata.BYOL must be \"true\".")
			}
		case "user_data":
			if !cloudInit {
				return out, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: metadata.user_data is accepted only by the v2 API (with Cloud-Init).")
			}
			ud, err := DecodeUserData(v, "metadata.user_data")
			if err != nil {
				return out, err
			}
			out.userData = ud
		default:
			return out, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: unsupported metadata key %q.", safeID(k))
		}
	}
	if out.encrypted == "1" && out.cmkid == "" {
		return out, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: metadata.__system__cmkid is required when metadata.__system__encrypted is \"1\".")
	}
	return out, nil
}

// MaxUserData is the most user data a request may carry, once decoded
// (Huawei: 32 KB).
const MaxUserData = compute.MaxUserData

// DecodeUserData decodes base64 user data (standard alphabet, padded or
// not; line breaks allowed) named field in messages: an empty string is
// none (nil), more than MaxUserData decoded bytes or bad base64 is a 400
// Ecs.0005.
func DecodeUserData(b64, field string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, b64)
	if clean == "" {
		return nil, nil
	}
	if base64.RawStdEncoding.DecodedLen(len(strings.TrimRight(clean, "="))) > MaxUserData {
		return nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s is more than %d bytes once decoded.", field, MaxUserData)
	}
	// Strict: the unused bits of the last character must be zero, so that
	// one string of user data has one encoding.
	ud, err := base64.StdEncoding.Strict().DecodeString(clean)
	if err != nil {
		ud, err = base64.RawStdEncoding.Strict().DecodeString(clean)
	}
	if err != nil {
		return nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s is not valid base64.", field)
	}
	if len(ud) > MaxUserData {
		return nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s is more than %d bytes once decoded.", field, MaxUserData)
	}
	if ud == nil {
		ud = []byte{}
	}
	return ud, nil
}

// seal seals user data for a job's params.
func (s *Service) seal(b []byte) ([]byte, error) {
	if s.box == nil {
		return nil, ecs.Wrap(ecs.CodeSystem, errors.New("no secret box configured"), "Failed to process the user data.")
	}
	return s.box.Seal(b), nil
}

// unseal opens what seal sealed; nil stays nil.
func (s *Service) unseal(b []byte) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	return s.openSecret(b)
}

// Reinstall checkpoints.
const (
	reinstallStopped  = 1 // the server is stopped (withStopServer)
	reinstallDiskMade = 2 // the new disk exists and holds the credentials
	reinstallSwapped  = 3 // the new disk is the server's system disk
	// reinstallConfigured: the server boots the new image with a new
	// cloud-init seed (when its image runs cloud-init).
	reinstallConfigured = 4
	reinstallDone       = 5 // the old disk is deleted and the job finished
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
	imageID := srv.ImageID
	if p.ImageID != "" {
		imageID = p.ImageID
	}
	img, err := s.image(ctx, imageID)
	if err != nil {
		return failStep(ecs.CodeImageNotFound, "The image does not exist.", err)
	}
	if img, err = s.localImage(ctx, img); err != nil {
		return err
	}
	creds := struct{ hash, key string }{}
	if p.Inject {
		creds.hash, creds.key = p.PasswordHash, p.PublicKey
	}
	// The new disk keeps the old one's size and type.
	size, volType := diskSize(img), "SSD"
	if ov, err := s.store.VolumeGet(ctx, p.OldVolumeID); err == nil {
		size, volType = max(ov.SizeGB, size), ov.VolumeType
	}
	err = jr.step(ctx, reinstallDiskMade, func(ctx context.Context) error {
		return s.makeDisk(ctx, compute.DiskSpec{ID: p.NewVolumeID, Image: img, SizeGB: size}, creds.hash, creds.key)
	}, func(tx store.Tx, srv *ecs.Server) error {
		srv.TaskState = ecs.TaskRebuildSpawning
		nv := ecs.Volume{ID: p.NewVolumeID, ProjectID: srv.ProjectID, ImageID: img.ID,
			SizeGB: size, VolumeType: volType, Status: "available", Host: srv.Host, Created: time.Now().UTC()}
		if err := tx.VolumeUpsert(ctx, &nv); err != nil {
			return err
		}
		// The disk exists: it holds its room on the host (even past the
		// capacity) until the old one, deleted at the end, gives its own.
		return holdDisk(ctx, tx, &nv, true)
	})
	if err != nil {
		return err
	}

	// User data given to a v2 reinstall or change of OS becomes the
	// server's (as a rebuild's does in Nova), shown base64 as the create's.
	var shownUserData []byte
	if p.SealedUserData != nil {
		ud, err := s.unseal(p.SealedUserData)
		if err != nil {
			return err
		}
		if shownUserData, err = s.seal([]byte(base64.StdEncoding.EncodeToString(ud))); err != nil {
			return err
		}
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
		srv.KeyName = p.KeyName
		if shownUserData != nil {
			srv.SealedUserData = shownUserData
		}
		if p.ImageID != "" {
			srv.ImageID = img.ID
			srv.Metadata = imageMetadata(srv.Metadata, img)
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

	err = jr.step(ctx, reinstallConfigured, func(ctx context.Context) error {
		return s.configureGuest(ctx, jr, srv, img, p)
	}, nil)
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
		recordEncryption(srv, p)
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

// configureGuest makes the stopped server boot img (the new image of a
// change of OS; for a reinstall the same one, which also repairs a server
// whose last change of OS failed after its disk was swapped) and gives it
// a new cloud-init seed when the image runs cloud-init: a new instance
// id, so that cloud-init runs again on the new disk, with the credentials
// and the user data; a change to an image without cloud-init drops the
// seed.
func (s *Service) configureGuest(ctx context.Context, jr *jobRun, srv ecs.Server, img ecs.Image, p *reinstallParams) error {
	id := jr.job.ServerID
	if err := s.drv.SetServerImage(ctx, id, img); err != nil {
		return failStep(ecs.CodeTaskFailed, "Failed to make the ECS boot the image.", err)
	}
	var seed *compute.Seed
	if img.CloudInit {
		ud, err := s.unseal(p.SealedUserData)
		if err != nil {
			return failStep(ecs.CodeTaskFailed, "Failed to read the user data.", err)
		}
		seed = newSeed(jr.job.ID, srv.Name, p.PasswordHash, p.PublicKey, ud)
	} else if p.ImageID == "" {
		return nil // a reinstall of an image without cloud-init: no seed, as before
	}
	if err := s.drv.SetSeed(ctx, id, seed); err != nil {
		return failStep(ecs.CodeTaskFailed, "Failed to write the Cloud-Init seed.", err)
	}
	return nil
}

// newSeed is the cloud-init seed of job jobID's server: its instance id is
// new with every job.
func newSeed(jobID, name, passwordHash, publicKey string, userData []byte) *compute.Seed {
	seed := &compute.Seed{InstanceID: "iid-" + jobID, Hostname: compute.Hostname(name), PasswordHash: passwordHash, UserData: userData}
	if publicKey != "" {
		seed.AuthorizedKeys = strings.TrimRight(publicKey, "\n") + "\n"
	}
	return seed
}

// imageMetadata returns md with the image keys of img (os_type,
// image_name, metering.image_id) replaced.
func imageMetadata(md map[string]string, img ecs.Image) map[string]string {
	out := make(map[string]string, len(md)+3)
	for k, v := range md {
		out[k] = v
	}
	out["os_type"] = img.OSType
	out["image_name"] = img.Name
	out["metering.image_id"] = img.ID
	return out
}

// recordEncryption records the system disk's encryption attributes a
// request gave (metadata __system__encrypted, __system__cmkid) on the
// server's metadata.
func recordEncryption(srv *ecs.Server, p *reinstallParams) {
	if p.Encrypted == "" && p.CMKID == "" {
		return
	}
	md := make(map[string]string, len(srv.Metadata)+2)
	for k, v := range srv.Metadata {
		md[k] = v
	}
	if p.Encrypted != "" {
		md["__system__encrypted"] = p.Encrypted
	}
	if p.CMKID != "" {
		md["__system__cmkid"] = p.CMKID
	} else if p.Encrypted == "0" {
		delete(md, "__system__cmkid")
	}
	srv.Metadata = md
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

// startServerJob marks srv busy with task under the new job jobID of type
// jobType, inserts that job (runnable on srv's host, with params) and
// records the caller's action, all in tx.
func startServerJob(ctx context.Context, tx store.Tx, c Caller, srv *ecs.Server, task, jobID, jobType string,
	params []byte, action string, now time.Time) error {
	srv.TaskState = task
	srv.TaskJobID = jobID
	srv.Updated = now
	if err := tx.ServerUpdate(ctx, srv); err != nil {
		return err
	}
	if err := tx.JobInsert(ctx, &ecs.Job{ID: jobID, ProjectID: c.ProjectID, Type: jobType, Status: ecs.JobInit,
		ServerID: srv.ID, Host: srv.Host, Runnable: true, Params: params, Created: now}); err != nil {
		return err
	}
	return RecordAction(ctx, tx, c, srv.ID, action, jobID, jobID, now)
}
