package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// Wire types: the Huawei JSON shapes. Types follow the official SDK's
// models exactly (its decoder is strict): numbers where it wants numbers,
// strings where it wants strings.

const (
	timeSec = "2006-01-02T15:04:05Z"
	timeMS  = "2006-01-02T15:04:05.000Z"
)

func fmtTime(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(layout)
}

type serverBody struct {
	Server wireServer `json:"server"`
}

type wireServer struct {
	ID               string                   `json:"id"`
	Name             string                   `json:"name"`
	Status           string                   `json:"status"`
	VMState          string                   `json:"OS-EXT-STS:vm_state"`
	TaskState        *string                  `json:"OS-EXT-STS:task_state"`
	PowerState       int                      `json:"OS-EXT-STS:power_state"`
	Locked           bool                     `json:"locked"`
	LockedReason     *string                  `json:"locked_reason,omitempty"`
	Progress         int                      `json:"progress"`
	TenantID         string                   `json:"tenant_id"`
	UserID           string                   `json:"user_id"`
	Created          string                   `json:"created"`
	Updated          string                   `json:"updated"`
	LaunchedAt       string                   `json:"OS-SRV-USG:launched_at"`
	TerminatedAt     string                   `json:"OS-SRV-USG:terminated_at"`
	Image            wireID                   `json:"image"`
	Flavor           wireServerFlavor         `json:"flavor"`
	Metadata         map[string]string        `json:"metadata"`
	KeyName          string                   `json:"key_name"`
	Addresses        map[string][]wireAddress `json:"addresses"`
	Volumes          []wireVolumeAttachment   `json:"os-extended-volumes:volumes_attached"`
	RootDeviceName   string                   `json:"OS-EXT-SRV-ATTR:root_device_name"`
	AZ               string                   `json:"OS-EXT-AZ:availability_zone"`
	Host             string                   `json:"OS-EXT-SRV-ATTR:host"`
	HostID           string                   `json:"hostId"`
	HostStatus       string                   `json:"host_status"`
	InstanceName     string                   `json:"OS-EXT-SRV-ATTR:instance_name"`
	Hostname         string                   `json:"OS-EXT-SRV-ATTR:hostname"`
	HypervisorHost   string                   `json:"OS-EXT-SRV-ATTR:hypervisor_hostname"`
	LaunchIndex      int                      `json:"OS-EXT-SRV-ATTR:launch_index"`
	KernelID         string                   `json:"OS-EXT-SRV-ATTR:kernel_id"`
	RamdiskID        string                   `json:"OS-EXT-SRV-ATTR:ramdisk_id"`
	DiskConfig       string                   `json:"OS-DCF:diskConfig"`
	AccessIPv4       string                   `json:"accessIPv4"`
	AccessIPv6       string                   `json:"accessIPv6"`
	ConfigDrive      string                   `json:"config_drive"`
	SecurityGroups   []wireSecurityGroup      `json:"security_groups"`
	Tags             []string                 `json:"tags"`
	Description      string                   `json:"description"`
	Fault            *wireFault               `json:"fault,omitempty"`
	EnterpriseProjID string                   `json:"enterprise_project_id"`
	ReservationID    string                   `json:"OS-EXT-SRV-ATTR:reservation_id"`
	UserData         *string                  `json:"OS-EXT-SRV-ATTR:user_data"`
	SchedulerHints   wireSchedulerHints       `json:"os:scheduler_hints"`
	SysTags          []wireTag                `json:"sys_tags"`
}

// wireSchedulerHints is os:scheduler_hints: ecsd takes no hints at create
// (placement is its own), so every list is empty.
type wireSchedulerHints struct {
	Group           []string `json:"group"`
	Tenancy         []string `json:"tenancy"`
	DedicatedHostID []string `json:"dedicated_host_id"`
}

type wireTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type wireID struct {
	ID string `json:"id"`
}

type wireServerFlavor struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Disk  string `json:"disk"`
	VCPUs string `json:"vcpus"`
	RAM   string `json:"ram"`
}

type wireAddress struct {
	Version string `json:"version"`
	Addr    string `json:"addr"`
	Type    string `json:"OS-EXT-IPS:type"`
	MAC     string `json:"OS-EXT-IPS-MAC:mac_addr"`
	PortID  string `json:"OS-EXT-IPS:port_id,omitempty"`
	Primary bool   `json:"primary"`
}

type wireVolumeAttachment struct {
	ID                  string `json:"id"`
	DeleteOnTermination string `json:"delete_on_termination"`
	BootIndex           string `json:"bootIndex"`
	Device              string `json:"device"`
}

type wireSecurityGroup struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type wireFault struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Created string `json:"created"`
	Details string `json:"details"`
}

// hostID is Nova's hostId: an opaque id of the server's host that differs
// between projects (sha224 of project id and host name), "" for no host.
func hostID(projectID, host string) string {
	if host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(projectID + host))
	return hex.EncodeToString(sum[:])
}

// hostStatus is the host_status of a server whose host is in state st:
// "UP" while its heartbeat is fresh, "UNKNOWN" when it is stale or the
// host is not registered (Nova's reading of a compute service that does
// not report: the host may be fine, its node is not heard from), "" for a
// server of no host. DOWN (forced down) and MAINTENANCE (disabled) have
// no counterpart in ecsd.
func hostStatus(st cloud.HostState) string {
	switch st {
	case cloud.HostUp:
		return "UP"
	case cloud.HostStale, cloud.HostUnknown:
		return "UNKNOWN"
	}
	return ""
}

// toWireServer renders a server; the caller sets HostStatus (hostStatus).
func toWireServer(s *ecs.Server) wireServer {
	w := wireServer{
		ID: s.ID, Name: s.Name, Status: s.Status(), VMState: s.VMState, PowerState: s.PowerState, Locked: s.Locked,
		TenantID: s.ProjectID, UserID: s.UserID, Created: fmtTime(s.Created, timeSec), Updated: fmtTime(s.Updated, timeSec),
		Image: wireID{ID: s.ImageID}, KeyName: s.KeyName, Metadata: s.Metadata, RootDeviceName: "/dev/vda", AZ: s.AZ,
		Host: s.Host, HostID: hostID(s.ProjectID, s.Host), InstanceName: "instance-" + shortID(s.ID), Hostname: s.Name,
		HypervisorHost: s.Host, LaunchIndex: s.LaunchIndex, DiskConfig: "MANUAL", AccessIPv4: "", ConfigDrive: "",
		SecurityGroups: []wireSecurityGroup{{ID: "default", Name: "default"}}, Tags: []string{}, EnterpriseProjID: "0",
		ReservationID: s.ReservationID, SchedulerHints: wireSchedulerHints{Group: []string{}, Tenancy: []string{},
			DedicatedHostID: []string{}},
		// The system tag every ECS carries: its enterprise project ("0",
		// the default one; ecsd has no others).
		SysTags: []wireTag{{Key: "_sys_enterprise_project_id", Value: "0"}},
	}
	for _, tg := range s.Tags {
		w.Tags = append(w.Tags, tg.Key+"="+tg.Value)
	}
	if s.Status() == "ACTIVE" || s.Status() == "SHUTOFF" {
		w.Progress = 100
	}
	if !s.LaunchedAt.IsZero() {
		w.LaunchedAt = s.LaunchedAt.UTC().Format("2006-01-02T15:04:05.000000")
	}
	if s.TaskState != "" {
		ts := s.TaskState
		w.TaskState = &ts
	}
	if w.Metadata == nil {
		w.Metadata = map[string]string{}
	}
	if s.AccessPort != 0 {
		md := make(map[string]string, len(w.Metadata)+2)
		for k, v := range w.Metadata {
			md[k] = v
		}
		md["ssh_host"] = "127.0.0.1"
		md["ssh_port"] = strconv.Itoa(s.AccessPort)
		w.Metadata = md
	}
	if f, ok := cloud.Flavor(s.FlavorID); ok {
		w.Flavor = wireServerFlavor{ID: f.ID, Name: f.Name, Disk: strconv.Itoa(f.DiskGB), VCPUs: strconv.Itoa(f.VCPUs), RAM: strconv.Itoa(f.RAMMB)}
	} else {
		w.Flavor = wireServerFlavor{ID: s.FlavorID, Name: s.FlavorID, Disk: "0", VCPUs: "0", RAM: "0"}
	}
	w.Addresses = map[string][]wireAddress{}
	if nics := serverNICs(s); len(nics) > 0 {
		var addrs []wireAddress
		for i, n := range nics {
			addrs = append(addrs, wireAddress{Version: "4", Addr: n.IP, Type: "fixed", MAC: macFor(n.PortID), PortID: n.PortID,
				Primary: i == 0})
		}
		if s.AccessPort != 0 {
			addrs = append(addrs, wireAddress{Version: "4", Addr: "127.0.0.1", Type: "floating", MAC: macFor(nics[0].PortID),
				PortID: nics[0].PortID})
		}
		w.Addresses[s.VPCID] = addrs
	}
	w.Volumes = []wireVolumeAttachment{}
	if s.SystemVolumeID != "" {
		w.Volumes = append(w.Volumes, wireVolumeAttachment{ID: s.SystemVolumeID, DeleteOnTermination: "true", BootIndex: "0", Device: "/dev/vda"})
	}
	if s.Status() == "ERROR" && s.Fault != "" {
		w.Fault = &wireFault{Code: 500, Message: s.Fault, Created: fmtTime(s.Updated, timeSec)}
	}
	if s.Locked && s.LockedReason != "" {
		w.LockedReason = &s.LockedReason
	}
	withDetails(&w, s)
	return w
}

// serverNICs returns a server's NICs; a server of a release before NICs
// has only its address, shown as one NIC whose port id is derived from the
// server id (stable across reads).
func serverNICs(s *ecs.Server) []ecs.NIC {
	if len(s.NICs) > 0 || s.Addr == "" {
		return s.NICs
	}
	return []ecs.NIC{{PortID: store.LegacyPortID(s.ID), IP: s.Addr}}
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// macFor derives a stable locally administered MAC address from a port id
// (OpenStack's fa:16:3e prefix, then 24 bits of the id's SHA-256).
func macFor(id string) string {
	sum := sha256.Sum256([]byte(id))
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", sum[0], sum[1], sum[2])
}

// wireJobHead is what a job and a sub-job share on the wire.
type wireJobHead struct {
	JobID      string  `json:"job_id"`
	JobType    string  `json:"job_type"`
	Status     string  `json:"status"`
	BeginTime  string  `json:"begin_time"`
	EndTime    string  `json:"end_time"`
	ErrorCode  *string `json:"error_code"`
	FailReason *string `json:"fail_reason"`
}

type wireJob struct {
	wireJobHead
	Entities wireEntities `json:"entities"`
}

type wireEntities struct {
	ServerID string `json:"server_id,omitempty"`
	// VolumeID: the volume of an attach or detach job.
	VolumeID     string `json:"volume_id,omitempty"`
	SubJobsTotal *int   `json:"sub_jobs_total,omitempty"`
	// SubJobs is present (possibly []) on every batch job: clients index
	// sub_jobs[0] without a check; nil (absent) on a single job.
	SubJobs *[]wireSubJob `json:"sub_jobs,omitempty"`
}

type wireSubJob struct {
	wireJobHead
	Entities wireSubEntities `json:"entities"`
}

type wireSubEntities struct {
	ServerID         string `json:"server_id,omitempty"`
	ErrorcodeMessage string `json:"errorcode_message,omitempty"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func jobBegin(j *ecs.Job) string {
	if !j.Begin.IsZero() {
		return fmtTime(j.Begin, timeMS)
	}
	return fmtTime(j.Created, timeMS)
}

// wireJobTypes renames the job types whose stored names predate the API
// reference's (ShowJob's job_type: "reInitOs" for a reinstall, "deleteVMs"
// for a delete); the stored names stay, as the job engine dispatches on
// them and rows of earlier releases carry them.
var wireJobTypes = map[string]string{
	ecs.JobReinstallOS:   "reInitOs",
	ecs.JobDeleteServers: "deleteVMs",
	ecs.JobDeleteServer:  "deleteVM",
}

func wireJobType(t string) string {
	if w, ok := wireJobTypes[t]; ok {
		return w
	}
	return t
}

func jobHead(j *ecs.Job) wireJobHead {
	return wireJobHead{JobID: j.ID, JobType: wireJobType(j.Type), Status: j.Status, BeginTime: jobBegin(j),
		EndTime: fmtTime(j.End, timeMS), ErrorCode: nullable(j.ErrorCode), FailReason: nullable(j.FailReason)}
}

// failedSub returns the first failed sub-job that says why (in sub-job
// order), nil when none does.
func failedSub(j *ecs.Job) *ecs.Job {
	for i := range j.SubJobs {
		if sj := &j.SubJobs[i]; sj.Status == ecs.JobFail && sj.ErrorCode != "" {
			return sj
		}
	}
	return nil
}

// toWireJob renders a job. A batch job that FAILed carries the error_code
// and fail_reason of its first failed sub-job at the top level (clients
// such as Terraform read only those), prefixed in the reason by how many of
// its sub-jobs failed when more than one did. The texts are the ones the
// job engine stored for clients (never a cause).
func toWireJob(j *ecs.Job) wireJob {
	w := wireJob{wireJobHead: jobHead(j)}
	if j.Status == ecs.JobFail && j.ErrorCode == "" {
		if sj := failedSub(j); sj != nil {
			reason := sj.FailReason
			failed := 0
			for i := range j.SubJobs {
				if j.SubJobs[i].Status == ecs.JobFail {
					failed++
				}
			}
			if failed > 1 {
				reason = fmt.Sprintf("%d of %d sub-jobs failed; the first (ECS %s): %s", failed, len(j.SubJobs), sj.ServerID, reason)
			}
			w.ErrorCode, w.FailReason = nullable(sj.ErrorCode), nullable(reason)
		} else {
			// A batch failed without a stored reason (never expected):
			// still say something a client can print.
			w.ErrorCode, w.FailReason = nullable(ecs.CodeTaskFailed.Wire), nullable("A sub-job failed.")
		}
	}
	if j.Runnable {
		w.Entities.ServerID, w.Entities.VolumeID = j.ServerID, cloud.JobVolumeID(j)
		return w
	}
	n := len(j.SubJobs)
	w.Entities.SubJobsTotal = &n
	subs := make([]wireSubJob, 0, n)
	for i := range j.SubJobs {
		sj := &j.SubJobs[i]
		ws := wireSubJob{wireJobHead: jobHead(sj), Entities: wireSubEntities{ServerID: sj.ServerID}}
		if sj.ErrorCode != "" {
			ws.Entities.ErrorcodeMessage = sj.FailReason
		}
		subs = append(subs, ws)
	}
	w.Entities.SubJobs = &subs
	return w
}

type wireFlavor struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	VCPUs      string            `json:"vcpus"`
	RAM        int               `json:"ram"`
	Disk       string            `json:"disk"`
	Swap       string            `json:"swap"`
	Ephemeral  int               `json:"OS-FLV-EXT-DATA:ephemeral"`
	Disabled   bool              `json:"OS-FLV-DISABLED:disabled"`
	RxtxFactor float64           `json:"rxtx_factor"`
	RxtxQuota  string            `json:"rxtx_quota"`
	RxtxCap    string            `json:"rxtx_cap"`
	IsPublic   bool              `json:"os-flavor-access:is_public"`
	Links      []wireLink        `json:"links"`
	ExtraSpecs map[string]string `json:"os_extra_specs"`
}

type wireLink struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
	Type string `json:"type"`
}

type wireKeypair struct {
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	PublicKey   string `json:"public_key"`
	PrivateKey  string `json:"private_key,omitempty"`
	UserID      string `json:"user_id,omitempty"`
	Type        string `json:"type,omitempty"`
}

type wireKeypairDetail struct {
	PublicKey   string  `json:"public_key"`
	Name        string  `json:"name"`
	Fingerprint string  `json:"fingerprint"`
	CreatedAt   string  `json:"created_at"`
	Deleted     bool    `json:"deleted"`
	DeletedAt   *string `json:"deleted_at"`
	ID          int64   `json:"id"`
	UpdatedAt   *string `json:"updated_at"`
	UserID      string  `json:"user_id"`
	Type        string  `json:"type,omitempty"`
}

type wireImage struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	Status          string   `json:"status"`
	Visibility      string   `json:"visibility"`
	OSType          string   `json:"__os_type"`
	OSVersion       string   `json:"__os_version"`
	Platform        string   `json:"__platform"`
	OSBit           string   `json:"__os_bit"`
	ImageType       string   `json:"__imagetype"`
	ImageSize       string   `json:"__image_size"`
	ImageSourceType string   `json:"__image_source_type"`
	IsRegistered    string   `json:"__isregistered"`
	SupportKVM      string   `json:"__support_kvm"`
	DiskFormat      string   `json:"disk_format"`
	ContainerFormat string   `json:"container_format"`
	MinDisk         int      `json:"min_disk"`
	MinRAM          int      `json:"min_ram"`
	Owner           string   `json:"owner"`
	Protected       bool     `json:"protected"`
	Self            string   `json:"self"`
	File            string   `json:"file"`
	Schema          string   `json:"schema"`
	Tags            []string `json:"tags"`
	CreatedAt       string   `json:"created_at"`
	UpdatedAt       string   `json:"updated_at"`
	ActiveAt        string   `json:"active_at"`
	VirtualEnvType  string   `json:"virtual_env_type"`
	Checksum        string   `json:"checksum,omitempty"`
	CloudInit       string   `json:"__support_cloudinit"`
	// FCInject mirrors CloudInit: the Terraform provider picks the v2
	// change of OS when it is "true".
	FCInject      string `json:"__support_fc_inject"`
	InjectSupport string `json:"__ecsd_credential_injection"`
}

// ImageJSON is img as GET /v2/cloudimages/{id} shows it, indented: what
// operator commands print for an image.
func ImageJSON(img *ecs.Image) []byte {
	b, _ := json.MarshalIndent(toWireImage(img), "", "  ") // strings, ints and slices: cannot fail
	return b
}

func toWireImage(i *ecs.Image) wireImage {
	inject := "supported"
	if i.Unsupported != "" {
		inject = "unsupported: " + i.Unsupported
	}
	cloudInit := "false"
	if i.CloudInit {
		cloudInit = "true"
	}
	created := fmtTime(i.Created, timeSec)
	return wireImage{ID: i.ID, Name: i.Name, Status: i.Status, Visibility: "public", OSType: i.OSType, OSVersion: i.OSVersion,
		Platform: i.Platform, OSBit: "64", ImageType: "gold", ImageSize: strconv.FormatInt(i.SizeBytes, 10),
		ImageSourceType: "uds", IsRegistered: "true", SupportKVM: "true", DiskFormat: i.DiskFormat, ContainerFormat: "bare",
		MinDisk: i.MinDiskGB, MinRAM: i.MinRAMMB, Owner: "ecsd", Self: "/v2/images/" + i.ID, File: "/v2/images/" + i.ID + "/file",
		Schema: "/v2/schemas/image", Tags: []string{}, CreatedAt: created, UpdatedAt: created, ActiveAt: created,
		VirtualEnvType: "FusionCompute", Checksum: i.Checksum, CloudInit: cloudInit, FCInject: cloudInit, InjectSupport: inject}
}
