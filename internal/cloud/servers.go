package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/jobs"
	"github.com/ecsproject/ecsd/internal/password"
	"github.com/ecsproject/ecsd/internal/store"
)

// MaxBatch is the most servers one create or batch action may name.
const MaxBatch = 1000

// CreateInput is a create-servers request (CreatePostPaidServers).
type CreateInput struct {
	Name      string
	ImageRef  string
	FlavorRef string
	VPCID     string
	SubnetIDs []string
	// IPAddresses are the fixed addresses asked for the NICs, by index of
	// SubnetIDs ("" or missing: the subnet's lowest free address).
	IPAddresses []string
	VolumeType  string
	SizeGB      int
	KeyName     string
	AdminPass   string
	Count       int
	AZ          string
	Metadata    map[string]string
	// UserData is the decoded user_data (DecodeUserData), nil for none:
	// it reaches the guest through its cloud-init seed, so the image must
	// run cloud-init.
	UserData []byte
	// ClientToken is the X-Client-Token of an idempotent create ("" for
	// none; see idempotency.go) and RequestHash a hash of the request
	// (its path and body) that a retry must match.
	ClientToken string
	RequestHash string
	// CreateDetails: description, tags, security groups, user data as
	// given (fields.go).
	CreateDetails
	// DataVolumes are blank data disks made and attached with each server.
	DataVolumes []DataVolumeInput
}

// createParams is a create sub-job's input.
type createParams struct {
	VolumeID     string `json:"volume_id"`
	PasswordHash string `json:"password_hash,omitempty"`
	PublicKey    string `json:"public_key,omitempty"`
	// Seed: the image runs cloud-init: the credentials and the user data
	// go into the server's seed rather than into its disk.
	Seed bool `json:"seed,omitempty"`
	// UserData: the parent job's params hold the user data (sealed), once
	// for all its servers (createBatchParams).
	UserData bool `json:"user_data,omitempty"`
	// DataVolumeIDs are the server's data volumes to make and attach.
	DataVolumeIDs []string `json:"data_volume_ids,omitempty"`
}

// createBatchParams is a create's parent job's input: what its sub-jobs
// share.
type createBatchParams struct {
	SealedUserData []byte `json:"sealed_user_data,omitempty"`
}

var volumeTypes = map[string]bool{"SATA": true, "SAS": true, "SSD": true, "GPSSD": true, "co-p1": true, "uh-l1": true,
	"ESSD": true, "GPSSD2": true, "ESSD2": true}

// CreateServers validates a create request and, in one transaction, places
// each server on a host (reserving its vCPUs, RAM and system disk there),
// inserts the servers, their system volumes and one batch job with a
// sub-job per server, to run on the server's host. It returns the job id
// and the server ids. A request that does not fit is refused whole.
func (s *Service) CreateServers(ctx context.Context, c Caller, in CreateInput) (string, []string, error) {
	if in.Count == 0 {
		in.Count = 1
	}
	if err := CheckClientToken(in.ClientToken); err != nil {
		return "", nil, err
	}
	switch {
	case in.Name == "":
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.name is required.")
	case utf8.RuneCountInString(in.Name) > 64:
		return "", nil, ecs.Errorf(ecs.CodeNameTooLong, "The length of the ECS name exceeds the maximum allowed limit.")
	case strings.ContainsAny(in.Name, "<>&'\"\\/\x00\n\r\t"):
		return "", nil, ecs.Errorf(ecs.CodeNameInvalid, "The ECS name contains invalid characters.")
	case in.Count < 1 || in.Count > MaxBatch:
		return "", nil, ecs.Errorf(ecs.CodeTooManyServers, "Invalid parameter: server.count must be between 1 and %d.", MaxBatch)
	case in.ImageRef == "":
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.imageRef is required.")
	case in.FlavorRef == "":
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.flavorRef is required.")
	case in.VPCID == "":
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.vpcid is required.")
	case len(in.SubnetIDs) == 0:
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.nics needs at least one subnet_id.")
	case !volumeTypes[in.VolumeType]:
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.root_volume.volumetype is missing or unknown.")
	case in.SizeGB < 0 || in.SizeGB > 1024:
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.root_volume.size must be between 1 and 1024.")
	case in.KeyName != "" && in.AdminPass != "":
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: adminPass and key_name cannot both be set.")
	}
	for i, sn := range in.SubnetIDs {
		if sn == "" {
			return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.nics[].subnet_id is required.")
		}
		if i < len(in.IPAddresses) && in.IPAddresses[i] != "" && in.Count > 1 {
			return "", nil, ecs.Errorf(ecs.CodeInvalidParam,
				"Invalid parameter: server.nics[%d].ip_address cannot be given when server.count is more than 1.", i)
		}
	}
	if err := checkDataVolumes(in.DataVolumes); err != nil {
		return "", nil, err
	}
	if len(in.IPAddresses) > len(in.SubnetIDs) {
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: every server.nics[].ip_address needs its subnet_id.")
	}
	flavor, ok := Flavor(in.FlavorRef)
	if !ok {
		return "", nil, ecs.Errorf(ecs.CodeFlavorNotFound, "The flavor does not exist.")
	}
	img, err := s.GetImage(ctx, in.ImageRef)
	if err != nil {
		return "", nil, err
	}
	if img.Status != "active" {
		return "", nil, ecs.Errorf(ecs.CodeImageNotActive, "The image is not in Active state.")
	}
	if err := s.runnable(img); err != nil {
		return "", nil, err
	}
	if in.UserData != nil && !img.CloudInit {
		return "", nil, ecs.Errorf(ecs.CodeImageAttributes, "The image %s does not run Cloud-Init (__support_cloudinit is false): "+
			"it cannot run user_data.", img.ID)
	}
	if len(in.UserData) > MaxUserData {
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.user_data is more than %d bytes once decoded.", MaxUserData)
	}
	if (in.AdminPass != "" || in.KeyName != "") && img.Unsupported != "" && !img.CloudInit {
		return "", nil, ecs.Errorf(ecs.CodeImageAttributes, "The image does not support setting a password or key pair from the host: %s.", img.Unsupported)
	}
	size := in.SizeGB
	if size == 0 {
		size = diskSize(img)
	}
	if size < img.MinDiskGB {
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.root_volume.size is below the image's minimum of %d GB.", img.MinDiskGB)
	}
	var hash string
	if in.AdminPass != "" {
		if err := password.Validate(in.AdminPass, strings.EqualFold(img.OSType, "Windows")); err != nil {
			return "", nil, err
		}
		if hash, err = password.Hash(in.AdminPass); err != nil {
			return "", nil, ecs.Wrap(ecs.CodeSystem, err, "Failed to process the password.")
		}
	}
	for k, v := range in.Metadata {
		if len(k) > 255 || len(v) > 255 {
			return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: metadata keys and values are at most 255 characters.")
		}
	}
	details, err := s.checkCreateDetails(in.CreateDetails)
	if err != nil {
		return "", nil, err
	}
	var sealedUserData []byte
	if in.UserData != nil {
		if sealedUserData, err = s.seal(in.UserData); err != nil {
			return "", nil, err
		}
	}

	jobID := newJobID()
	now := time.Now().UTC()
	ids := make([]string, in.Count)
	err = s.store.Write(ctx, func(tx store.Tx) error {
		if ct, found, err := replayCreate(ctx, tx, c, in, now); found || err != nil {
			// A retry: the first request's job and servers.
			jobID, ids = ct.JobID, ct.ServerIDs
			return err
		}
		jobID, ids = newJobID(), make([]string, in.Count)
		var pub string
		if in.KeyName != "" {
			kp, err := tx.KeypairGet(ctx, c.ProjectID, c.UserID, in.KeyName)
			if errors.Is(err, ecs.ErrNotFound) {
				return ecs.Errorf(ecs.CodeKeypairNotFound, "Key pair %s does not exist.", safeID(in.KeyName))
			}
			if err != nil {
				return err
			}
			pub = kp.PublicKey
		}
		var batch []byte
		if sealedUserData != nil {
			batch, _ = json.Marshal(createBatchParams{SealedUserData: sealedUserData})
		}
		if err := tx.JobInsert(ctx, &ecs.Job{ID: jobID, ProjectID: c.ProjectID, Type: ecs.JobCreateServers, Params: batch,
			Created: now}); err != nil {
			return err
		}
		pl, err := s.newPlacement(ctx, tx, flavor, size, in.DataVolumes, img)
		if err != nil {
			return err
		}
		addrs := newAllocator(tx, c.ProjectID, in.VPCID, "", now)
		reservation := "r-" + randomAlnum(8, lowerAlnum)
		for i := range ids {
			name := in.Name
			if in.Count > 1 {
				name = fmt.Sprintf("%s-%04d", in.Name, i+1)
			}
			srv := ecs.Server{ID: newUUID(), ProjectID: c.ProjectID, UserID: c.UserID, Name: name, VMState: ecs.VMBuilding,
				TaskState: ecs.TaskScheduling, PowerState: ecs.PowerNoState, ImageID: img.ID, FlavorID: flavor.ID,
				KeyName: in.KeyName, SystemVolumeID: newUUID(), AZ: orDefault(in.AZ, "az1"), VPCID: in.VPCID,
				LaunchIndex: i, Created: now, Updated: now, Metadata: serverMetadata(in, img), ReservationID: reservation}
			details.apply(&srv)
			if srv.NICs, err = takeAddresses(ctx, addrs, in); err != nil {
				return err
			}
			srv.Addr = srv.NICs[0].IP
			sub := newJobID()
			srv.TaskJobID = sub
			ids[i] = srv.ID
			dataIDs := newUUIDs(len(in.DataVolumes))
			if srv.Host, err = pl.place(ctx, tx, srv.ID, append([]string{srv.SystemVolumeID}, dataIDs...)); err != nil {
				return err
			}
			if err := tx.ServerInsert(ctx, &srv); err != nil {
				return addressError(err)
			}
			if err := tx.VolumeUpsert(ctx, &ecs.Volume{ID: srv.SystemVolumeID, ProjectID: c.ProjectID, ServerID: srv.ID, ImageID: img.ID,
				SizeGB: size, VolumeType: in.VolumeType, Status: "creating", Device: "/dev/vda", Host: srv.Host, Created: now}); err != nil {
				return err
			}
			if err := insertDataVolumes(ctx, tx, &srv, in.DataVolumes, dataIDs, now); err != nil {
				return err
			}
			params, _ := json.Marshal(createParams{VolumeID: srv.SystemVolumeID, PasswordHash: hash, PublicKey: pub, Seed: img.CloudInit,
				UserData: sealedUserData != nil, DataVolumeIDs: dataIDs})
			if err := tx.JobInsert(ctx, &ecs.Job{ID: sub, ProjectID: c.ProjectID, Type: ecs.JobCreateSingleServer, ParentID: jobID,
				ServerID: srv.ID, Host: srv.Host, Runnable: true, Params: params, Created: now}); err != nil {
				return err
			}
			if err := RecordAction(ctx, tx, c, srv.ID, ecs.ActionCreate, jobID, sub, now); err != nil {
				return err
			}
		}
		return recordCreate(ctx, tx, c, in, jobID, ids, now)
	})
	if err != nil {
		return "", nil, submitError(err)
	}
	s.engine.Notify()
	return jobID, ids, nil
}

func serverMetadata(in CreateInput, img ecs.Image) map[string]string {
	md := map[string]string{}
	for k, v := range in.Metadata {
		md[k] = v
	}
	md["os_type"] = img.OSType
	md["image_name"] = img.Name
	md["metering.image_id"] = img.ID
	md["metering.imagetype"] = "gold"
	md["charging_mode"] = "0"
	md["vpc_id"] = in.VPCID
	return md
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func submitError(err error) error {
	var e *ecs.Error
	if errors.As(err, &e) {
		return e
	}
	return ecs.Wrap(ecs.CodeSubmitFailed, err, "Failed to submit the task.")
}

// Create checkpoints.
const (
	createDiskMade     = 1
	createDefined      = 2
	createDataAttached = 3
)

func (s *Service) runCreate(ctx context.Context, r jobs.Run) error {
	var p createParams
	return s.runJob(ctx, r, &p, func(ctx context.Context, jr *jobRun) error {
		id := jr.job.ServerID
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
		vol, err := s.store.VolumeGet(ctx, p.VolumeID)
		if err != nil {
			return failStep(ecs.CodeCreateSystemDiskFailed, "The system disk record is missing.", err)
		}
		if jr.job.Step < createDiskMade {
			if err := jr.setTask(ctx, ecs.TaskBlockDeviceMapping); err != nil {
				return err
			}
		}
		var seed *compute.Seed
		hash, pub := p.PasswordHash, p.PublicKey
		if p.Seed {
			ud, err := s.batchUserData(ctx, jr.job.ParentID, p.UserData)
			if err != nil {
				return err
			}
			seed = newSeed(jr.job.ID, srv.Name, hash, pub, ud)
			hash, pub = "", ""
		}
		err = jr.step(ctx, createDiskMade, func(ctx context.Context) error {
			return s.makeDisk(ctx, compute.DiskSpec{ID: p.VolumeID, Image: img, SizeGB: vol.SizeGB}, hash, pub)
		}, func(tx store.Tx, srv *ecs.Server) error {
			srv.TaskState = ecs.TaskSpawning
			vol.Status = "in-use"
			return tx.VolumeUpsert(ctx, &vol)
		})
		if err != nil {
			return err
		}
		flavor, _ := Flavor(srv.FlavorID)
		var info compute.ServerInfo
		err = jr.step(ctx, createDefined, func(ctx context.Context) error {
			var err error
			info, err = s.drv.CreateServer(ctx, compute.ServerSpec{ID: id, Name: srv.Name, VCPUs: flavor.VCPUs, RAMMB: flavor.RAMMB,
				Image: img, DiskID: p.VolumeID, Seed: seed})
			if err != nil {
				return failStep(ecs.CodeCreateServerFailed, "Failed to create the ECS.", err)
			}
			return nil
		}, func(_ store.Tx, srv *ecs.Server) error {
			srv.AccessPort = info.AccessPort
			return nil
		})
		if err != nil {
			return err
		}
		if err := s.createDataDisks(ctx, jr, createDataAttached, p.DataVolumeIDs); err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
		err = s.drv.StartServer(sctx, id)
		cancel()
		if err != nil {
			return failStep(ecs.CodeStartFailed, "The ECS was created but failed to start.", err)
		}
		return jr.finish(ctx, func(_ store.Tx, srv *ecs.Server) error {
			srv.VMState, srv.PowerState = ecs.VMActive, ecs.PowerRunning
			srv.LaunchedAt = time.Now().UTC()
			return nil
		})
	}, func(ctx context.Context, jr *jobRun, cause error) error {
		return jr.fail(ctx, cause, func(tx store.Tx, srv *ecs.Server) error {
			srv.VMState, srv.PowerState = ecs.VMError, ecs.PowerShutdown
			if jr.job.Step < createDiskMade {
				// No disk was made: the server has no system disk.
				srv.SystemVolumeID = ""
				return tx.VolumeDelete(ctx, p.VolumeID)
			}
			return nil
		})
	})
}

// batchUserData returns the user data of a create's parent job (decoded),
// nil when has is false. A store error is returned as it is (the engine
// retries the job); unreadable user data fails the job.
func (s *Service) batchUserData(ctx context.Context, parentID string, has bool) ([]byte, error) {
	if !has {
		return nil, nil
	}
	var parent ecs.Job
	err := s.store.Write(ctx, func(tx store.Tx) error {
		var err error
		parent, err = tx.JobGetByID(ctx, parentID)
		return err
	})
	if err != nil {
		return nil, err
	}
	var bp createBatchParams
	if err := json.Unmarshal(parent.Params, &bp); err != nil || bp.SealedUserData == nil {
		return nil, failStep(ecs.CodeCreateServerFailed, "Failed to read the user data.",
			fmt.Errorf("create job %s params hold no user data (%v)", parentID, err))
	}
	ud, err := s.unseal(bp.SealedUserData)
	if err != nil {
		return nil, failStep(ecs.CodeCreateServerFailed, "Failed to read the user data.", err)
	}
	return ud, nil
}

// Action is a batch server action.
type Action string

// Actions of POST /cloudservers/action.
const (
	ActionStart  Action = "os-start"
	ActionStop   Action = "os-stop"
	ActionReboot Action = "reboot"
)

type powerParams struct {
	Hard bool `json:"hard,omitempty"`
}

// ServerAction starts, stops or reboots servers: in one transaction it
// checks every server, sets their task states and inserts one batch job with
// a sub-job per server. Either all servers are accepted or none.
func (s *Service) ServerAction(ctx context.Context, c Caller, action Action, ids []string, hard bool) (string, error) {
	var parentType, subType, task string
	switch action {
	case ActionStart:
		parentType, subType, task = ecs.JobStartServers, ecs.JobStartServer, ecs.TaskPoweringOn
	case ActionStop:
		parentType, subType, task = ecs.JobStopServers, ecs.JobStopServer, ecs.TaskPoweringOff
	case ActionReboot:
		parentType, subType, task = ecs.JobRebootServers, ecs.JobRebootServer, ecs.TaskRebooting
		if hard {
			task = ecs.TaskRebootingHard
		}
	default:
		return "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: unknown action.")
	}
	if err := checkIDs(ids); err != nil {
		return "", err
	}
	params, _ := json.Marshal(powerParams{Hard: hard})
	return s.batch(ctx, c, parentType, subType, params, ids, func(srv *ecs.Server) error {
		if err := idle(srv); err != nil {
			return err
		}
		want := ecs.VMStopped
		if action != ActionStart {
			want = ecs.VMActive
		}
		if srv.VMState != want {
			return ecs.Errorf(ecs.CodeBadState, "The ECS status does not meet requirements: ECS %s is %s.", srv.ID, srv.Status())
		}
		if action == ActionStart && srv.SystemVolumeID == "" {
			return ecs.Errorf(ecs.CodeNoSystemDisk, "ECS %s has no system disk and cannot start: attach one as %s.", srv.ID, systemDevice)
		}
		srv.TaskState = task
		return nil
	})
}

// DeleteServers deletes servers and their system disks, as one batch job.
func (s *Service) DeleteServers(ctx context.Context, c Caller, ids []string) (string, error) {
	if err := checkIDs(ids); err != nil {
		return "", err
	}
	return s.batch(ctx, c, ecs.JobDeleteServers, ecs.JobDeleteServer, nil, ids, func(srv *ecs.Server) error {
		if err := idle(srv); err != nil {
			return err
		}
		srv.TaskState = ecs.TaskDeleting
		return nil
	})
}

func checkIDs(ids []string) error {
	if len(ids) == 0 {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: servers must name at least one ECS.")
	}
	if len(ids) > MaxBatch {
		return ecs.Errorf(ecs.CodeTooManyServers, "The number of ECSs exceeds the maximum allowed limit.")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: servers[].id is required.")
		}
		if seen[id] {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: ECS %s is listed twice.", safeID(id))
		}
		seen[id] = true
	}
	return nil
}

// idle refuses a server that is locked or runs a task.
func idle(srv *ecs.Server) error {
	if srv.Locked {
		return lockedError(srv)
	}
	if srv.TaskState != ecs.TaskNone || srv.TaskJobID != "" {
		return ecs.Errorf(ecs.CodeTaskRunning, "Other commands are being executed on the ECS. Try again later.")
	}
	return nil
}

// batch checks and changes every server with check, then inserts a parent
// job and one sub-job per server (to run on the server's host), all in one
// transaction. A server whose host is down is refused.
func (s *Service) batch(ctx context.Context, c Caller, parentType, subType string, params []byte, ids []string,
	check func(srv *ecs.Server) error) (string, error) {
	jobID := newJobID()
	now := time.Now().UTC()
	err := s.store.Write(ctx, func(tx store.Tx) error {
		if err := tx.JobInsert(ctx, &ecs.Job{ID: jobID, ProjectID: c.ProjectID, Type: parentType, Created: now}); err != nil {
			return err
		}
		gate := s.hostGate(tx.HostList)
		for _, id := range ids {
			srv, err := lookupServer(ctx, tx.ServerGet, c.ProjectID, id)
			if err != nil {
				return err
			}
			if err := gate.check(ctx, &srv); err != nil {
				return err
			}
			if err := check(&srv); err != nil {
				return err
			}
			sub := newJobID()
			srv.TaskJobID = sub
			srv.Updated = now
			if err := tx.ServerUpdate(ctx, &srv); err != nil {
				return err
			}
			if err := tx.JobInsert(ctx, &ecs.Job{ID: sub, ProjectID: c.ProjectID, Type: subType, ParentID: jobID, ServerID: id,
				Host: srv.Host, Runnable: true, Params: params, Created: now}); err != nil {
				return err
			}
			if err := RecordAction(ctx, tx, c, id, actionOf[parentType], jobID, sub, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", submitError(err)
	}
	s.engine.Notify()
	return jobID, nil
}

// runPower runs one server's start, stop or reboot.
func (s *Service) runPower(ctx context.Context, r jobs.Run) error {
	var p powerParams
	return s.runJob(ctx, r, &p, func(ctx context.Context, jr *jobRun) error {
		id := jr.job.ServerID
		sctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
		defer cancel()
		var err error
		switch jr.job.Type {
		case ecs.JobStartServer:
			if err = s.drv.StartServer(sctx, id); err != nil {
				return failStep(ecs.CodeStartFailed, "Failed to start the ECS.", err)
			}
		case ecs.JobStopServer:
			if err = s.drv.StopServer(sctx, id, p.Hard); err != nil {
				return failStep(ecs.CodeTaskFailed, "Failed to stop the ECS.", err)
			}
		case ecs.JobRebootServer:
			if err = s.drv.RebootServer(sctx, id, p.Hard); err != nil {
				return failStep(ecs.CodeRebootFailed, "Failed to reboot the ECS.", err)
			}
		}
		return jr.finish(ctx, func(_ store.Tx, srv *ecs.Server) error {
			if jr.job.Type == ecs.JobStopServer {
				srv.VMState, srv.PowerState = ecs.VMStopped, ecs.PowerShutdown
			} else {
				srv.VMState, srv.PowerState = ecs.VMActive, ecs.PowerRunning
				srv.LaunchedAt = time.Now().UTC()
			}
			return nil
		})
	}, func(ctx context.Context, jr *jobRun, cause error) error {
		// The server keeps its state; the job records why it failed.
		return jr.fail(ctx, cause, nil)
	})
}

// runDelete deletes one server: stop, remove its definition and disks.
func (s *Service) runDelete(ctx context.Context, r jobs.Run) error {
	return s.runJob(ctx, r, nil, func(ctx context.Context, jr *jobRun) error {
		id := jr.job.ServerID
		srv, err := s.store.ServerGet(ctx, jr.job.ProjectID, id)
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
		defer cancel()
		if err := s.drv.DeleteServer(sctx, id); err != nil {
			return failStep(ecs.CodeDeleteFailed, "Failed to delete the ECS.", err)
		}
		if srv.SystemVolumeID != "" {
			if err := s.drv.DeleteDisk(sctx, srv.SystemVolumeID); err != nil {
				return failStep(ecs.CodeDeleteFailed, "Failed to delete the ECS's system disk.", err)
			}
		}
		jr.job.Status, jr.job.End = ecs.JobSuccess, time.Now().UTC()
		return jr.commit(ctx, func(tx store.Tx, srv *ecs.Server) error {
			if err := releaseVolumes(ctx, tx, srv); err != nil {
				return err
			}
			if srv.SystemVolumeID != "" {
				if err := tx.VolumeDelete(ctx, srv.SystemVolumeID); err != nil {
					return err
				}
			}
			if err := tx.ServerDelete(ctx, srv.ID); err != nil {
				return err
			}
			srv.ID = "" // nothing left to update
			return nil
		})
	}, func(ctx context.Context, jr *jobRun, cause error) error {
		return jr.fail(ctx, cause, func(_ store.Tx, srv *ecs.Server) error {
			srv.VMState = ecs.VMError
			return nil
		})
	})
}
