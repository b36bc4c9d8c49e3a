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
	"github.com/ecsproject/ecsd/internal/store"
)

// Volumes (EVS, minimal) and their attachments. A volume is a row of the
// volumes table, as a server's system disk is. One created alone (EVS
// create) has no host and no disk yet: its first attach gives it the host
// of its server, where the attach job makes its disk (a blank qcow2 on
// qemu, a recorded disk on sim); from then on it attaches only to servers
// of that host (Ecs.0121). A volume with a host holds its disk there (the
// host's allocation, store.Tx.HostAllocate) until it is deleted; a first
// attach that does not fit is refused (Ecs.0021). The system disk is the
// volume at /dev/vda (bootIndex 0): a stopped server may detach it, and
// then refuses start, reinstall and change of OS (Ecs.0105) until a
// volume is attached to it as /dev/vda again.

// System disk device, the one of bootIndex 0.
const systemDevice = "/dev/vda"

// MaxVolumeGB is the largest volume (Huawei's data disk limit: 32 TiB).
const MaxVolumeGB = 32768

// VolumeInput is an EVS create.
type VolumeInput struct {
	Name       string
	SizeGB     int
	VolumeType string
	AZ         string
	Count      int
}

// volumeParams is the input of attach, detach and delete volume jobs.
type volumeParams struct {
	VolumeID string `json:"volume_id"`
	Device   string `json:"device,omitempty"`
	// System: the volume is (or becomes) the system disk.
	System bool `json:"system,omitempty"`
	// Make: the volume has no disk yet; the attach makes a blank one.
	Make   bool `json:"make,omitempty"`
	SizeGB int  `json:"size_gb,omitempty"`
	// Delete: a detach that deletes the volume afterwards (delete_flag=1).
	Delete bool `json:"delete,omitempty"`
}

// JobVolumeID is the volume an attach or detach job acts on, which ShowJob
// shows in its entities beside the server; "" for any other job.
func JobVolumeID(j *ecs.Job) string {
	if j.Type != ecs.JobAttachVolume && j.Type != ecs.JobDetachVolume {
		return ""
	}
	var p volumeParams
	if json.Unmarshal(j.Params, &p) != nil {
		return ""
	}
	return p.VolumeID
}

// Attach checkpoints.
const (
	attachDiskMade = 1
)

// checkVolumeName checks an EVS volume name (at most 64 characters).
func checkVolumeName(name string) error {
	if utf8.RuneCountInString(name) > 64 {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume.name is longer than 64 characters.")
	}
	for _, r := range name {
		if r < ' ' || r == 0x7f {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume.name contains a control character.")
		}
	}
	return nil
}

// CreateVolumes records in.Count (1 by default) new available volumes,
// without a host or a disk until their first attach, and returns a
// finished job and the volume ids.
func (s *Service) CreateVolumes(ctx context.Context, c Caller, in VolumeInput) (string, []string, error) {
	if in.SizeGB < 1 || in.SizeGB > MaxVolumeGB {
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume.size must be 1 to %d GB.", MaxVolumeGB)
	}
	if in.VolumeType == "" {
		in.VolumeType = "SSD"
	}
	if !volumeTypes[in.VolumeType] {
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume.volume_type %s is not a known disk type.",
			safeID(in.VolumeType))
	}
	if err := checkVolumeName(in.Name); err != nil {
		return "", nil, err
	}
	if in.Count == 0 {
		in.Count = 1
	}
	if in.Count < 1 || in.Count > 100 {
		return "", nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume.count must be 1 to 100.")
	}
	jobID := newJobID()
	now := time.Now().UTC()
	ids := newUUIDs(in.Count)
	names := make([]string, len(ids))
	err := s.store.Write(ctx, func(tx store.Tx) error {
		for i, id := range ids {
			name := in.Name
			if in.Count > 1 && name != "" {
				name = fmt.Sprintf("%s-%04d", name, i+1)
			}
			names[i] = name
			v := ecs.Volume{ID: id, ProjectID: c.ProjectID, Name: name, SizeGB: in.SizeGB, VolumeType: in.VolumeType,
				Status: ecs.VolumeAvailable, Created: now}
			if err := tx.VolumeUpsert(ctx, &v); err != nil {
				return err
			}
		}
		params, err := json.Marshal(evsJobParams{VolumeIDs: ids, Names: names, SizeGB: in.SizeGB, VolumeType: in.VolumeType})
		if err != nil {
			return err
		}
		return tx.JobInsert(ctx, &ecs.Job{ID: jobID, ProjectID: c.ProjectID, Type: ecs.JobCreateVolume, Status: ecs.JobSuccess,
			Created: now, Begin: now, End: now, Params: params})
	})
	if err != nil {
		return "", nil, submitError(err)
	}
	return jobID, ids, nil
}

// newUUIDs returns n new ids (nil for 0).
func newUUIDs(n int) []string {
	var ids []string
	for range n {
		ids = append(ids, newUUID())
	}
	return ids
}

// ListVolumes lists the project's volumes (system disks included), oldest
// first.
func (s *Service) ListVolumes(ctx context.Context, c Caller) ([]ecs.Volume, error) {
	vols, err := s.store.VolumeList(ctx, c.ProjectID)
	if err != nil {
		return nil, ecs.Wrap(ecs.CodeSystem, err, "Failed to list the volumes.")
	}
	return vols, nil
}

// GetVolume returns a volume of the project.
func (s *Service) GetVolume(ctx context.Context, c Caller, id string) (ecs.Volume, error) {
	return lookupVolume(ctx, s.store.VolumeGet, c.ProjectID, id, ecs.CodeVolumeNotFound)
}

// lookupVolume reads volume id of project projectID; a missing one (or
// another project's) is the error code.
func lookupVolume(ctx context.Context, get func(ctx context.Context, id string) (ecs.Volume, error), projectID, id string,
	code ecs.Code) (ecs.Volume, error) {
	if !ecs.ValidID(id) {
		return ecs.Volume{}, ecs.Errorf(code, "The disk %s does not exist.", safeID(id))
	}
	v, err := get(ctx, id)
	if errors.Is(err, ecs.ErrNotFound) || (err == nil && v.ProjectID != projectID) {
		return ecs.Volume{}, ecs.Errorf(code, "The disk %s does not exist.", safeID(id))
	}
	if err != nil {
		return v, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the disk.")
	}
	return v, nil
}

// DeleteVolume deletes an available volume: at once when it has no disk
// yet, else in a job on its host, which deletes the disk and then the row.
// An attached or busy volume is refused.
func (s *Service) DeleteVolume(ctx context.Context, c Caller, id string) (string, error) {
	jobID := newJobID()
	now := time.Now().UTC()
	queued := false
	err := s.store.Write(ctx, func(tx store.Tx) error {
		v, err := lookupVolume(ctx, tx.VolumeGet, c.ProjectID, id, ecs.CodeVolumeNotFound)
		if err != nil {
			return err
		}
		if v.ServerID != "" || v.Status != ecs.VolumeAvailable {
			return ecs.Errorf(ecs.CodeVolumeBadState, "The disk %s is %s: only an available disk can be deleted (detach it first).",
				v.ID, v.Status)
		}
		job := ecs.Job{ID: jobID, ProjectID: c.ProjectID, Type: ecs.JobDeleteVolume, Created: now}
		if v.Host == "" {
			job.Status, job.Begin, job.End = ecs.JobSuccess, now, now
			job.Params, _ = json.Marshal(volumeParams{VolumeID: v.ID})
			if err := tx.VolumeDelete(ctx, v.ID); err != nil {
				return err
			}
			return tx.JobInsert(ctx, &job)
		}
		v.Status = ecs.VolumeDeleting
		if err := tx.VolumeUpsert(ctx, &v); err != nil {
			return err
		}
		params, _ := json.Marshal(volumeParams{VolumeID: v.ID})
		job.Status, job.Host, job.Runnable, job.Params = ecs.JobInit, v.Host, true, params
		queued = true
		return tx.JobInsert(ctx, &job)
	})
	if err != nil {
		return "", submitError(err)
	}
	if queued {
		s.engine.Notify()
	}
	return jobID, nil
}

// runDeleteVolume deletes a volume's disk on its host, then its row. It
// has no server: its writes are fenced by the job's lease alone.
func (s *Service) runDeleteVolume(ctx context.Context, r jobs.Run) error {
	var p volumeParams
	job := r.Job
	end := func(status, code, reason string) error {
		job.Status, job.End, job.ErrorCode, job.FailReason = status, time.Now().UTC(), code, reason
		return s.store.Write(context.WithoutCancel(ctx), func(tx store.Tx) error {
			if status == ecs.JobSuccess {
				if err := tx.VolumeDelete(ctx, p.VolumeID); err != nil {
					return err
				}
			}
			return tx.JobUpdate(ctx, &job, r.Lease)
		})
	}
	if err := json.Unmarshal(job.Params, &p); err != nil || r.GiveUp != "" {
		return end(ecs.JobFail, ecs.CodeTaskFailed.Wire, "The task failed.")
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
	defer cancel()
	if err := s.drv.DeleteDisk(sctx, p.VolumeID); err != nil {
		if ctx.Err() != nil || !errors.Is(err, ecs.ErrConflict) {
			return err // transient: the engine retries
		}
		s.log.Warn("deleting a volume's disk failed", "volume_id", p.VolumeID, "err", err)
		return end(ecs.JobFail, ecs.CodeTaskFailed.Wire, "Failed to delete the disk.")
	}
	return end(ecs.JobSuccess, "", "")
}

// AttachVolume attaches a volume to a server, as a job on the server's
// host. device "" picks the next free /dev/vdX; /dev/vda (or /dev/sda)
// attaches it as the system disk of a stopped server that has none. A data
// disk attaches to a running or stopped server.
func (s *Service) AttachVolume(ctx context.Context, c Caller, serverID, volumeID, device string) (string, error) {
	jobID := newJobID()
	now := time.Now().UTC()
	err := s.store.Write(ctx, func(tx store.Tx) error {
		srv, v, err := s.volumeTarget(ctx, tx, c, serverID, volumeID, ecs.CodeVolumeUnavailable)
		if err != nil {
			return err
		}
		if v.ServerID != "" || v.Status != ecs.VolumeAvailable {
			return ecs.Errorf(ecs.CodeVolumeUnavailable, "The disk %s is %s: only an available disk can be attached.", v.ID, v.Status)
		}
		if v.Host != "" && srv.Host != "" && v.Host != srv.Host {
			return ecs.Errorf(ecs.CodeVolumeOtherHost, "The disk %s is on host %s and ECS %s on host %s: "+
				"a disk attaches only to ECSs of its host.", v.ID, safeID(v.Host), srv.ID, safeID(srv.Host))
		}
		vols, err := tx.VolumeList(ctx, c.ProjectID)
		if err != nil {
			return err
		}
		p := volumeParams{VolumeID: v.ID, Make: v.Host == "", SizeGB: v.SizeGB}
		p.Device, p.System, err = attachDevice(&srv, serverVolumes(vols, srv.ID), device)
		if err != nil {
			return err
		}
		if err := diskStateAllows(&srv, p.System, "a system disk attaches to a stopped ECS only."); err != nil {
			return err
		}
		v.Status, v.ServerID, v.Device, v.Host = ecs.VolumeAttaching, srv.ID, p.Device, srv.Host
		if p.Make {
			if err := holdDisk(ctx, tx, &v, false); errors.Is(err, store.ErrNoCapacity) {
				return ecs.Errorf(ecs.CodeVolumeNoRoom, "Insufficient EVS disk quota: the host of ECS %s has not %d GB of disk "+
					"left for the disk %s. Attach it to an ECS of another host, or delete disks or ECSs there.",
					srv.ID, v.SizeGB, v.ID)
			} else if err != nil {
				return err
			}
		}
		return submitVolumeJob(ctx, tx, c, &ecs.Job{ID: jobID, Type: ecs.JobAttachVolume, Created: now}, &srv, &v, p)
	})
	if err != nil {
		return "", submitError(err)
	}
	s.engine.Notify()
	return jobID, nil
}

// volumeTarget reads, in tx, the server and the volume of an attach or a
// detach: the server must be the caller's, on a usable host and idle; a
// missing volume is the error code.
func (s *Service) volumeTarget(ctx context.Context, tx store.Tx, c Caller, serverID, volumeID string,
	code ecs.Code) (ecs.Server, ecs.Volume, error) {
	srv, err := lookupServer(ctx, tx.ServerGet, c.ProjectID, serverID)
	if err != nil {
		return ecs.Server{}, ecs.Volume{}, err
	}
	if err := s.hostGate(tx.HostList).check(ctx, &srv); err != nil {
		return ecs.Server{}, ecs.Volume{}, err
	}
	if err := idle(&srv); err != nil {
		return ecs.Server{}, ecs.Volume{}, err
	}
	v, err := lookupVolume(ctx, tx.VolumeGet, c.ProjectID, volumeID, code)
	if err != nil {
		return ecs.Server{}, ecs.Volume{}, err
	}
	return srv, v, nil
}

// diskStateAllows says whether srv's state lets a disk attach or detach: a
// system disk needs a stopped ECS (systemRule says so to the client), a
// data disk a stopped or running one.
func diskStateAllows(srv *ecs.Server, system bool, systemRule string) error {
	switch {
	case system && srv.VMState != ecs.VMStopped:
		return ecs.Errorf(ecs.CodeBadState, "The ECS status does not meet requirements: %s", systemRule)
	case !system && srv.VMState != ecs.VMStopped && srv.VMState != ecs.VMActive:
		return ecs.Errorf(ecs.CodeBadState, "The ECS status does not meet requirements: ECS %s is %s.", srv.ID, srv.Status())
	}
	return nil
}

// submitVolumeJob stores v (its new status set by the caller), marks srv
// busy with job j (its task state unchanged) and inserts j, of project c,
// on srv's host with params p.
func submitVolumeJob(ctx context.Context, tx store.Tx, c Caller, j *ecs.Job, srv *ecs.Server, v *ecs.Volume, p volumeParams) error {
	params, _ := json.Marshal(p)
	if err := tx.VolumeUpsert(ctx, v); err != nil {
		return err
	}
	action := ecs.ActionAttachVolume
	if j.Type == ecs.JobDetachVolume {
		action = ecs.ActionDetachVolume
	}
	return startServerJob(ctx, tx, c, srv, srv.TaskState, j.ID, j.Type, params, action, j.Created)
}

// serverVolumes returns the volumes of vols attached (or attaching) to
// server id.
func serverVolumes(vols []ecs.Volume, id string) []ecs.Volume {
	var out []ecs.Volume
	for _, v := range vols {
		if v.ServerID == id {
			out = append(out, v)
		}
	}
	return out
}

// attachDevice chooses the device of a volume attached to srv, which has
// the volumes attached: the one asked for (/dev/vd[a-z] or /dev/sd[a-z],
// sd names taken as their vd twins), else the first free data device.
// /dev/vda is the system disk's.
func attachDevice(srv *ecs.Server, attached []ecs.Volume, asked string) (dev string, system bool, err error) {
	taken := map[string]bool{}
	for _, v := range attached {
		taken[v.Device] = true
	}
	if srv.SystemVolumeID != "" {
		taken[systemDevice] = true
	}
	dataDisks := len(attached)
	if srv.SystemVolumeID != "" {
		dataDisks--
	}
	if asked != "" {
		d, ok := strings.CutPrefix(asked, "/dev/sd")
		if ok {
			asked = "/dev/vd" + d
		}
		l, ok := strings.CutPrefix(asked, "/dev/vd")
		if !ok || len(l) != 1 || l[0] < 'a' || l[0] > 'z' {
			return "", false, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volumeAttachment.device must be /dev/vdX or /dev/sdX.")
		}
		if taken[asked] {
			return "", false, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: the device %s is in use on the ECS.", asked)
		}
		if asked == systemDevice {
			return asked, true, nil
		}
		if dataDisks >= compute.MaxDataDisks {
			return "", false, ecs.Errorf(ecs.CodeTooManyVolumes, "The ECS has %d data disks, the most it can have.", compute.MaxDataDisks)
		}
		return asked, false, nil
	}
	if dataDisks >= compute.MaxDataDisks {
		return "", false, ecs.Errorf(ecs.CodeTooManyVolumes, "The ECS has %d data disks, the most it can have.", compute.MaxDataDisks)
	}
	for l := 'b'; l <= 'z'; l++ {
		if d := "/dev/vd" + string(l); !taken[d] {
			return d, false, nil
		}
	}
	return "", false, ecs.Errorf(ecs.CodeTooManyVolumes, "The ECS has no free device left.")
}

// runAttach makes the volume's disk if it has none yet, then attaches it.
func (s *Service) runAttach(ctx context.Context, r jobs.Run) error {
	var p volumeParams
	return s.runJob(ctx, r, &p, func(ctx context.Context, jr *jobRun) error {
		id := jr.job.ServerID
		if p.Make {
			err := jr.step(ctx, attachDiskMade, func(ctx context.Context) error {
				if err := s.drv.CreateDisk(ctx, compute.DiskSpec{ID: p.VolumeID, SizeGB: p.SizeGB}); err != nil {
					return failStep(ecs.CodeTaskFailed, "Failed to create the disk.", err)
				}
				return nil
			}, nil)
			if err != nil {
				return err
			}
		}
		err := s.diskCall(ctx, "Failed to attach the disk.", func(sctx context.Context) error {
			if p.System {
				return s.drv.AttachDisk(sctx, id, p.VolumeID)
			}
			return s.drv.AttachDataDisk(sctx, id, p.VolumeID)
		})
		if err != nil {
			return err
		}
		return jr.finish(ctx, func(tx store.Tx, srv *ecs.Server) error {
			return updateVolume(ctx, tx, p.VolumeID, false, func(v *ecs.Volume) {
				v.Status = ecs.VolumeInUse
				if p.System {
					srv.SystemVolumeID = v.ID
				}
			})
		})
	}, func(ctx context.Context, jr *jobRun, cause error) error {
		return jr.fail(ctx, cause, func(tx store.Tx, srv *ecs.Server) error {
			// No disk was made: the volume has no host yet, nor holds any
			// of its disk.
			unmade := p.Make && jr.job.Step < attachDiskMade
			if unmade {
				if err := tx.AllocationFree(ctx, p.VolumeID); err != nil {
					return err
				}
			}
			return updateVolume(ctx, tx, p.VolumeID, true, func(v *ecs.Volume) {
				v.Status, v.ServerID, v.Device = ecs.VolumeAvailable, "", ""
				if unmade {
					v.Host = ""
				}
			})
		})
	})
}

// diskCall runs call, a driver call of a volume job, within the step
// timeout; a failure that is not an interruption fails the job with msg.
func (s *Service) diskCall(ctx context.Context, msg string, call func(sctx context.Context) error) error {
	sctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
	defer cancel()
	if err := call(sctx); err != nil {
		if interrupted(ctx, err) {
			return err
		}
		return failStep(ecs.CodeTaskFailed, msg, err)
	}
	return nil
}

// holdDisk reserves v's disk on its host (none: nothing to hold), in its
// own name: what it held before is given back first, so a step that runs
// again holds it once. force skips the capacity check (a disk that exists
// already); else a host without room is store.ErrNoCapacity.
func holdDisk(ctx context.Context, tx store.Tx, v *ecs.Volume, force bool) error {
	if v.Host == "" {
		return nil
	}
	if err := tx.AllocationFree(ctx, v.ID); err != nil {
		return err
	}
	return tx.HostAllocate(ctx, store.Allocation{Host: v.Host, Force: force,
		Volumes: []store.VolumeAllocation{{VolumeID: v.ID, DiskGB: int64(v.SizeGB)}}})
}

// updateVolume reads volume id in tx, lets change edit it and stores it. A
// missing volume is an error unless missingOK.
func updateVolume(ctx context.Context, tx store.Tx, id string, missingOK bool, change func(v *ecs.Volume)) error {
	v, err := tx.VolumeGet(ctx, id)
	if missingOK && errors.Is(err, ecs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	change(&v)
	return tx.VolumeUpsert(ctx, &v)
}

// DetachVolume detaches a volume from a server, as a job on the server's
// host: a data disk from a running or stopped server, the system disk from
// a stopped one only. deleteVolume deletes the volume once detached.
func (s *Service) DetachVolume(ctx context.Context, c Caller, serverID, volumeID string, deleteVolume bool) (string, error) {
	jobID := newJobID()
	now := time.Now().UTC()
	err := s.store.Write(ctx, func(tx store.Tx) error {
		srv, v, err := s.volumeTarget(ctx, tx, c, serverID, volumeID, ecs.CodeVolumeNotAttached)
		if err != nil {
			return err
		}
		if v.ServerID != srv.ID || v.Status != ecs.VolumeInUse {
			return ecs.Errorf(ecs.CodeVolumeNotAttached, "The disk %s is not attached to ECS %s.", v.ID, srv.ID)
		}
		p := volumeParams{VolumeID: v.ID, System: v.ID == srv.SystemVolumeID, Delete: deleteVolume}
		if err := diskStateAllows(&srv, p.System, "stop the ECS before detaching its system disk."); err != nil {
			return err
		}
		v.Status = ecs.VolumeDetaching
		return submitVolumeJob(ctx, tx, c, &ecs.Job{ID: jobID, Type: ecs.JobDetachVolume, Created: now}, &srv, &v, p)
	})
	if err != nil {
		return "", submitError(err)
	}
	s.engine.Notify()
	return jobID, nil
}

// detachDone is the detach checkpoint: the disk is off the server and
// the volume available (a delete_flag=1 detach deletes it next).
const detachDone = 1

// runDetach detaches the volume (and deletes it when asked). The detach is
// committed before the delete, so that a delete that fails leaves the
// volume available (it is detached) rather than shown attached.
func (s *Service) runDetach(ctx context.Context, r jobs.Run) error {
	var p volumeParams
	return s.runJob(ctx, r, &p, func(ctx context.Context, jr *jobRun) error {
		id := jr.job.ServerID
		err := jr.step(ctx, detachDone, func(ctx context.Context) error {
			return s.diskCall(ctx, "Failed to detach the disk.", func(sctx context.Context) error {
				if p.System {
					return s.drv.DetachDisk(sctx, id, p.VolumeID)
				}
				return s.drv.DetachDataDisk(sctx, id, p.VolumeID)
			})
		}, func(tx store.Tx, srv *ecs.Server) error {
			if p.System && srv.SystemVolumeID == p.VolumeID {
				srv.SystemVolumeID = ""
			}
			return updateVolume(ctx, tx, p.VolumeID, false, func(v *ecs.Volume) {
				v.Status, v.ServerID, v.Device = ecs.VolumeAvailable, "", ""
			})
		})
		if err != nil {
			return err
		}
		if p.Delete {
			err := s.diskCall(ctx, "The disk was detached but could not be deleted: it is available; delete it with "+
				"EVS DeleteVolume.", func(sctx context.Context) error {
				return s.drv.DeleteDisk(sctx, p.VolumeID)
			})
			if err != nil {
				return err
			}
		}
		return jr.finish(ctx, func(tx store.Tx, srv *ecs.Server) error {
			if p.Delete {
				return tx.VolumeDelete(ctx, p.VolumeID)
			}
			return nil
		})
	}, func(ctx context.Context, jr *jobRun, cause error) error {
		return jr.fail(ctx, cause, func(tx store.Tx, srv *ecs.Server) error {
			if jr.job.Step >= detachDone {
				return nil // detached: the volume is available already
			}
			return updateVolume(ctx, tx, p.VolumeID, true, func(v *ecs.Volume) { v.Status = ecs.VolumeInUse })
		})
	})
}

// ServerVolumes returns the volumes attached to a server of the project,
// the system disk first, then by device.
func (s *Service) ServerVolumes(ctx context.Context, c Caller, serverID string) (ecs.Server, []ecs.Volume, error) {
	srv, err := s.GetServer(ctx, c, serverID)
	if err != nil {
		return srv, nil, err
	}
	vols, err := s.store.VolumeList(ctx, c.ProjectID)
	if err != nil {
		return srv, nil, ecs.Wrap(ecs.CodeSystem, err, "Failed to list the volumes.")
	}
	return srv, SortAttached(serverVolumes(vols, srv.ID)), nil
}

// SortAttached orders a server's volumes by device (/dev/vda, the system
// disk, first).
func SortAttached(vols []ecs.Volume) []ecs.Volume {
	for i := 1; i < len(vols); i++ {
		for j := i; j > 0 && vols[j].Device < vols[j-1].Device; j-- {
			vols[j], vols[j-1] = vols[j-1], vols[j]
		}
	}
	return vols
}

// ProjectAttachments maps server ids to their attached volumes (by
// device), for server lists.
func (s *Service) ProjectAttachments(ctx context.Context, c Caller) (map[string][]ecs.Volume, error) {
	vols, err := s.store.VolumeList(ctx, c.ProjectID)
	if err != nil {
		return nil, ecs.Wrap(ecs.CodeSystem, err, "Failed to list the volumes.")
	}
	m := map[string][]ecs.Volume{}
	for _, v := range vols {
		if v.ServerID != "" {
			m[v.ServerID] = append(m[v.ServerID], v)
		}
	}
	for id := range m {
		SortAttached(m[id])
	}
	return m, nil
}

// releaseVolumes makes the data volumes of a deleted server available
// again (its system disk is deleted with it).
func releaseVolumes(ctx context.Context, tx store.Tx, srv *ecs.Server) error {
	vols, err := tx.VolumeList(ctx, srv.ProjectID)
	if err != nil {
		return err
	}
	for _, v := range serverVolumes(vols, srv.ID) {
		if v.ID == srv.SystemVolumeID {
			continue
		}
		v.Status, v.ServerID, v.Device = ecs.VolumeAvailable, "", ""
		if err := tx.VolumeUpsert(ctx, &v); err != nil {
			return err
		}
	}
	return nil
}

// DataVolumeInput is one of a create's data_volumes.
type DataVolumeInput struct {
	VolumeType string
	SizeGB     int
}

// checkDataVolumes checks a create's data_volumes: 10-32768 GB each, a
// known type, at most MaxDataDisks.
func checkDataVolumes(dvs []DataVolumeInput) error {
	if len(dvs) > compute.MaxDataDisks {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.data_volumes has more than %d volumes.", compute.MaxDataDisks)
	}
	for i, dv := range dvs {
		if !volumeTypes[dv.VolumeType] {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.data_volumes[%d].volumetype is missing or unknown.", i)
		}
		if dv.SizeGB < 10 || dv.SizeGB > MaxVolumeGB {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.data_volumes[%d].size must be between 10 and %d.", i, MaxVolumeGB)
		}
	}
	return nil
}

// insertDataVolumes records a new server's data volumes, of ids (on its
// host, where placement reserved their disk; attaching as /dev/vdb,
// /dev/vdc, ...).
func insertDataVolumes(ctx context.Context, tx store.Tx, srv *ecs.Server, dvs []DataVolumeInput, ids []string, now time.Time) error {
	for i, dv := range dvs {
		v := ecs.Volume{ID: ids[i], ProjectID: srv.ProjectID, ServerID: srv.ID, SizeGB: dv.SizeGB, VolumeType: dv.VolumeType,
			Status: ecs.VolumeAttaching, Device: "/dev/vd" + string(rune('b'+i)), Host: srv.Host, Created: now}
		if err := tx.VolumeUpsert(ctx, &v); err != nil {
			return err
		}
	}
	return nil
}

// createDataDisks is the create step that makes a new (stopped) server's
// data disks, blank, and attaches them; it commits them in-use.
func (s *Service) createDataDisks(ctx context.Context, jr *jobRun, step int, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	vols := make([]ecs.Volume, len(ids))
	for i, id := range ids {
		v, err := s.store.VolumeGet(ctx, id)
		if err != nil {
			return failStep(ecs.CodeCreateServerFailed, "A data disk record is missing.", err)
		}
		vols[i] = v
	}
	return jr.step(ctx, step, func(ctx context.Context) error {
		for _, v := range vols {
			if err := s.drv.CreateDisk(ctx, compute.DiskSpec{ID: v.ID, SizeGB: v.SizeGB}); err != nil {
				return failStep(ecs.CodeCreateServerFailed, "Failed to create a data disk.", err)
			}
			if err := s.drv.AttachDataDisk(ctx, jr.job.ServerID, v.ID); err != nil {
				return failStep(ecs.CodeCreateServerFailed, "Failed to attach a data disk.", err)
			}
		}
		return nil
	}, func(tx store.Tx, _ *ecs.Server) error {
		for i := range vols {
			vols[i].Status = ecs.VolumeInUse
			if err := tx.VolumeUpsert(ctx, &vols[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// evsJobParams is the record a createVolume job keeps of what it made
// (the job is finished when it is inserted), for ShowJob.
type evsJobParams struct {
	VolumeIDs  []string `json:"volume_ids"`
	Names      []string `json:"names"` // each volume's name, "" for none
	SizeGB     int      `json:"size_gb"`
	VolumeType string   `json:"volume_type"`
}

// EVSJob is what ShowJob shows of an EVS job (createVolume, deleteVolume)
// in its entities, as EVS does: the volumes it made or deletes, and for a
// create their name, size and type. (EVS clients, Terraform's among them,
// read entities.volume_id of a create's job.)
type EVSJob struct {
	VolumeIDs  []string
	Names      []string // of a create, one per volume ("" for none)
	SizeGB     int
	VolumeType string
}

// EVSJobOf returns the EVS entities of job j; ok is false for a job that is
// no EVS job or that recorded none.
func EVSJobOf(j *ecs.Job) (e EVSJob, ok bool) {
	switch j.Type {
	case ecs.JobCreateVolume:
		var p evsJobParams
		if json.Unmarshal(j.Params, &p) != nil || len(p.VolumeIDs) == 0 || len(p.Names) != len(p.VolumeIDs) {
			return e, false
		}
		return EVSJob(p), true
	case ecs.JobDeleteVolume:
		var p volumeParams
		if json.Unmarshal(j.Params, &p) != nil || p.VolumeID == "" {
			return e, false
		}
		return EVSJob{VolumeIDs: []string{p.VolumeID}}, true
	}
	return e, false
}
