package ecs

import "time"

// VM states (OS-EXT-STS:vm_state).
const (
	VMBuilding = "building"
	VMActive   = "active"
	VMStopped  = "stopped"
	VMError    = "error"
	VMDeleted  = "deleted"
)

// Task states (OS-EXT-STS:task_state); "" means none (null on the wire).
const (
	TaskNone                      = ""
	TaskScheduling                = "scheduling"
	TaskBlockDeviceMapping        = "block_device_mapping"
	TaskSpawning                  = "spawning"
	TaskRebuilding                = "rebuilding"
	TaskRebuildBlockDeviceMapping = "rebuild_block_device_mapping"
	TaskRebuildSpawning           = "rebuild_spawning"
	TaskPoweringOff               = "powering-off"
	TaskPoweringOn                = "powering-on"
	TaskRebooting                 = "rebooting"
	TaskRebootingHard             = "rebooting_hard"
	TaskDeleting                  = "deleting"
	// TaskUpdatingPassword: a password reset runs (Nova's task state);
	// the status stays ACTIVE or SHUTOFF.
	TaskUpdatingPassword = "updating_password"
)

// Power states (OS-EXT-STS:power_state), Nova numbering.
const (
	PowerNoState  = 0
	PowerRunning  = 1
	PowerShutdown = 4
)

// Job statuses.
const (
	JobInit    = "INIT"
	JobRunning = "RUNNING"
	JobSuccess = "SUCCESS"
	JobFail    = "FAIL"
)

// Job types (job_type on the wire). Huawei documents createServer and
// createSingleServer; the others are our choice (README).
const (
	JobCreateServers      = "createServer"
	JobCreateSingleServer = "createSingleServer"
	JobReinstallOS        = "reinstallOS"
	JobChangeOS           = "changeOS"
	JobResetPassword      = "resetPassword"
	JobStartServers       = "batchStartServers"
	JobStartServer        = "startServer"
	JobStopServers        = "batchStopServers"
	JobStopServer         = "stopServer"
	JobRebootServers      = "batchRebootServers"
	JobRebootServer       = "rebootServer"
	JobDeleteServers      = "deleteServers"
	JobDeleteServer       = "deleteServer"
)

// Status derives the API status of a server from its vm_state and
// task_state, following the documented mapping table.
func Status(vmState, taskState string) string {
	rebuild := taskState == TaskRebuilding || taskState == TaskRebuildBlockDeviceMapping || taskState == TaskRebuildSpawning
	switch vmState {
	case VMBuilding:
		switch taskState {
		case TaskNone, TaskScheduling, TaskBlockDeviceMapping, TaskSpawning, "networking", TaskDeleting:
			return "BUILD"
		}
	case VMActive:
		switch {
		case rebuild:
			return "REBUILD"
		case taskState == TaskRebooting:
			return "REBOOT"
		case taskState == TaskRebootingHard:
			return "HARD_REBOOT"
		case taskState == TaskNone, taskState == TaskPoweringOff, taskState == TaskDeleting, taskState == TaskUpdatingPassword:
			return "ACTIVE"
		}
	case VMStopped:
		switch {
		case rebuild:
			return "REBUILD"
		case taskState == TaskNone, taskState == TaskPoweringOn, taskState == TaskDeleting, taskState == TaskUpdatingPassword:
			return "SHUTOFF"
		}
	case VMError:
		switch {
		case rebuild:
			return "REBUILD"
		case taskState == TaskNone, taskState == TaskDeleting:
			return "ERROR"
		}
	case VMDeleted:
		if taskState == TaskNone {
			return "DELETED"
		}
	}
	return "UNKNOWN"
}

// Server is one ECS.
type Server struct {
	ID             string
	ProjectID      string
	UserID         string
	Name           string
	VMState        string
	TaskState      string
	PowerState     int
	Locked         bool
	LockedReason   string // the reason given to the lock (Nova's locked_reason)
	ImageID        string
	FlavorID       string
	KeyName        string
	SystemVolumeID string // "" when the server has no system disk
	// ReinstallFailed marks an ERROR server whose last reinstall failed; a
	// new reinstall is allowed from that state.
	ReinstallFailed bool
	// TaskJobID is the job that owns the running task, "" when idle.
	TaskJobID string
	Fault     string // last failure, shown in ERROR
	Metadata  map[string]string
	AZ        string
	VPCID     string
	Addr      string // private IPv4
	// AccessPort is the host TCP port forwarded to the guest's SSH port on
	// 127.0.0.1 (QEMU driver); 0 when none.
	AccessPort  int
	LaunchIndex int
	// Host is the host the server was placed on: its disks are there and
	// its jobs run there. "" only for a server of a release before hosts
	// not yet adopted.
	Host string
	// NICs are the server's network interfaces, the primary first, each
	// with its fixed address (Addr is the primary's). They are set when
	// the server is inserted and never change. A server of a release
	// before NICs has none (and only Addr).
	NICs []NIC
	// Tags are the server's tags, by key (changed only through
	// store.Tx.ServerTagsSet once the server exists).
	Tags []Tag
	// ReservationID names the create request that made the server (all
	// servers of one request share it); "" for servers of earlier
	// releases.
	ReservationID string
	// Description is the server's description (create, UpdateServer).
	Description string
	// SecurityGroups are the ids of the security groups the create named,
	// as given (none: the default group). ecsd keeps and shows them; it
	// does not filter traffic by them.
	SecurityGroups []string
	// SealedUserData is the create's user data, sealed (secret.Sealer):
	// it may hold passwords, so it never rests in plain text; nil for none.
	SealedUserData []byte
	// UserData is the create's user data in base64, set by the service
	// when it reads a server for its project (never stored).
	UserData   string
	Created    time.Time
	Updated    time.Time
	LaunchedAt time.Time
}

// Status returns the API status of s.
func (s *Server) Status() string { return Status(s.VMState, s.TaskState) }

// NIC is a server's network interface: a port with one fixed IPv4
// address in a subnet.
type NIC struct {
	PortID   string `json:"port_id"`
	SubnetID string `json:"subnet_id"`
	IP       string `json:"ip"`
}

// Tag is a key/value tag of a server.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Subnet is a project's subnet as ecsd knows it: the VPC it belongs to and
// its CIDR, recorded when a server first names it.
type Subnet struct {
	ProjectID string
	ID        string
	VPCID     string
	CIDR      string
	Created   time.Time
}

// Volume is a disk (EVS volume). A server's system disk is attached as
// /dev/vda.
type Volume struct {
	ID         string
	ProjectID  string
	Name       string // "" for a system disk made with its server
	ServerID   string // "" when not attached
	ImageID    string
	SizeGB     int
	VolumeType string
	Status     string // creating, in-use, available, deleting
	Device     string
	Host       string // the host that holds the disk
	Created    time.Time
}

// Image is an image in the catalog. Images are public: every project sees
// every image.
type Image struct {
	ID         string
	Name       string
	OSType     string // Linux or Windows
	OSVersion  string
	Platform   string // Debian, Ubuntu, Windows, ...
	Status     string // active, queued, ...
	DiskFormat string // qcow2, raw
	MinDiskGB  int
	MinRAMMB   int
	SizeBytes  int64
	Checksum   string // sha256 of the stored file, "" for catalog-only images
	// File, Kernel and Initrd are absolute paths in the image store (QEMU
	// driver); empty for simulator catalog images.
	File   string
	Kernel string
	Initrd string
	// Inspection results (QEMU driver). Unsupported, when not "", says why
	// credentials cannot be injected into this image; a reinstall with
	// credentials on it is refused up front.
	PartitionTable string // none, mbr, gpt
	RootFS         string // ext4, ...
	CloudInit      bool
	Unsupported    string
	Created        time.Time
}

// Flavor is an instance type.
type Flavor struct {
	ID     string
	Name   string
	VCPUs  int
	RAMMB  int
	DiskGB int
}

// Keypair is an SSH key pair. The private key is never stored.
type Keypair struct {
	ID          int64
	ProjectID   string
	UserID      string
	Name        string
	PublicKey   string
	Fingerprint string
	Type        string // ssh or x509
	Created     time.Time
}

// Job is an asynchronous operation. A batch job (ParentID "" and Runnable
// false) has sub-jobs, one per server; its status is derived from theirs.
type Job struct {
	ID        string
	ProjectID string
	Type      string
	Status    string
	ParentID  string
	ServerID  string
	// Host is where the job must run (its server's host); "" for a job any
	// node may run.
	Host       string
	Runnable   bool
	ErrorCode  string
	FailReason string
	// Params is the job's input, JSON, internal. It never holds a plain
	// secret: passwords arrive here already hashed.
	Params   []byte
	Step     int
	Attempts int
	// Errors counts the runs of the job that ended in a transient error
	// (not a step failure) and LastError is the latest such error. They
	// are for the job engine and operators only: never sent to clients.
	Errors    int
	LastError string
	Created   time.Time
	Begin     time.Time // zero until started
	End       time.Time // zero until finished
	SubJobs   []Job
}

// Done reports whether the job has finished.
func (j *Job) Done() bool { return j.Status == JobSuccess || j.Status == JobFail }

// Credential is an access key of a user in a project.
type Credential struct {
	AccessKey string
	SecretKey string
	ProjectID string
	UserID    string
	Created   time.Time
}

// Action is one entry of a server's action log (Nova's instance action):
// a state-changing request on the server, who made it, the job that
// carries it out and how that job ended. Entries outlive their jobs and
// their server (see ecsd --action-retention).
type Action struct {
	// RequestID is the X-Request-Id of the request.
	RequestID string
	ServerID  string
	ProjectID string
	// Action is Nova's action name (create, start, stop, reboot, rebuild,
	// changeOS, changePassword, attach_volume, detach_volume, lock,
	// unlock, delete).
	Action    string
	UserID    string
	AccessKey string
	// JobID is the job id the request answered ("" for lock and
	// unlock, which run at once); RunJobID the job whose end sets
	// Outcome (a batch's sub-job for this server; JobID otherwise).
	JobID    string
	RunJobID string
	// Outcome is the final status of the job (JobSuccess, JobFail), ""
	// while it runs; Message says why it failed.
	Outcome string
	Message string
	Start   time.Time
	End     time.Time
}

// Nova action names of the action log.
const (
	ActionCreate         = "create"
	ActionStart          = "start"
	ActionStop           = "stop"
	ActionReboot         = "reboot"
	ActionRebuild        = "rebuild"
	ActionChangeOS       = "changeOS"
	ActionChangePassword = "changePassword"
	ActionAttachVolume   = "attach_volume"
	ActionDetachVolume   = "detach_volume"
	ActionLock           = "lock"
	ActionUnlock         = "unlock"
	ActionDelete         = "delete"
)

// ClientToken is an idempotent create's X-Client-Token as recorded with
// the create it made: a retry with the same token and the same request
// (RequestHash) gets the same job and servers.
type ClientToken struct {
	ProjectID   string
	Token       string
	RequestHash string
	JobID       string
	ServerIDs   []string
	Created     time.Time
}
