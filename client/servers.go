package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
)

// Server is the wire ServerDetail (GET /v1/{project_id}/cloudservers/{id}).
type Server struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	// TaskState is null on the wire when the server is idle; Task returns it
	// as a string.
	TaskState       *string              `json:"OS-EXT-STS:task_state"`
	VMState         string               `json:"OS-EXT-STS:vm_state"`
	PowerState      int                  `json:"OS-EXT-STS:power_state"`
	Locked          bool                 `json:"locked"`
	Progress        int                  `json:"progress"`
	TenantID        string               `json:"tenant_id,omitempty"`
	UserID          string               `json:"user_id,omitempty"`
	Image           ServerImage          `json:"image"`
	Flavor          ServerFlavor         `json:"flavor"`
	KeyName         string               `json:"key_name"`
	Metadata        map[string]string    `json:"metadata"`
	Addresses       map[string][]Address `json:"addresses"`
	VolumesAttached []VolumeAttachment   `json:"os-extended-volumes:volumes_attached"`
	Created         string               `json:"created"`
	Updated         string               `json:"updated"`
	LaunchedAt      string               `json:"OS-SRV-USG:launched_at,omitempty"`
	AZ              string               `json:"OS-EXT-AZ:availability_zone,omitempty"`
	// Host is the host (ecsd node) the server runs on.
	Host               string `json:"OS-EXT-SRV-ATTR:host,omitempty"`
	HypervisorHostname string `json:"OS-EXT-SRV-ATTR:hypervisor_hostname,omitempty"`
	Fault              *Fault `json:"fault,omitempty"`
}

// Task returns the server's task_state, "" when there is none.
func (s *Server) Task() string {
	if s.TaskState == nil {
		return ""
	}
	return *s.TaskState
}

// ServerImage is the image a server was built from.
type ServerImage struct {
	ID string `json:"id"`
}

// ServerFlavor is a server's flavor; the contract gives the sizes as strings.
type ServerFlavor struct {
	ID    string      `json:"id"`
	Name  string      `json:"name"`
	VCPUs LooseString `json:"vcpus"`
	RAM   LooseString `json:"ram"`
	Disk  LooseString `json:"disk"`
}

// Address is one of a server's IP addresses.
type Address struct {
	Version LooseString `json:"version"`
	Addr    string      `json:"addr"`
	Type    string      `json:"OS-EXT-IPS:type,omitempty"`
	MAC     string      `json:"OS-EXT-IPS-MAC:mac_addr,omitempty"`
}

// VolumeAttachment is a disk attached to a server.
type VolumeAttachment struct {
	ID                  string      `json:"id"`
	Device              string      `json:"device"`
	BootIndex           LooseString `json:"bootIndex"`
	DeleteOnTermination LooseString `json:"delete_on_termination"`
}

// Fault is why a server is in ERROR. The contract lets it be any JSON: an
// object of another shape, a string or anything else decodes into Message.
type Fault struct {
	Code    LooseInt `json:"code,omitempty"`
	Message string   `json:"message,omitempty"`
	Details string   `json:"details,omitempty"`
	Created string   `json:"created,omitempty"`
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *Fault) UnmarshalJSON(b []byte) error {
	type plain Fault
	var p plain
	if err := json.Unmarshal(b, &p); err == nil {
		*f = Fault(p)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = Fault{Message: s}
		return nil
	}
	*f = Fault{Message: string(b)}
	return nil
}

// CreateServerRequest is the "server" object of POST /v1/{project_id}/cloudservers.
type CreateServerRequest struct {
	Name             string            `json:"name"`
	ImageRef         string            `json:"imageRef"`
	FlavorRef        string            `json:"flavorRef"`
	VPCID            string            `json:"vpcid"`
	NICs             []NIC             `json:"nics"`
	RootVolume       RootVolume        `json:"root_volume"`
	KeyName          string            `json:"key_name,omitempty"`
	AdminPass        string            `json:"adminPass,omitempty"`
	Count            int               `json:"count,omitempty"`
	AvailabilityZone string            `json:"availability_zone,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	// UserData is base64 (UserData encodes it); it needs an image that runs
	// cloud-init.
	UserData string `json:"user_data,omitempty"`
}

// NIC is a network interface of a server being created.
type NIC struct {
	SubnetID string `json:"subnet_id"`
}

// RootVolume is the system disk of a server being created; Size 0 means the
// image's minimum.
type RootVolume struct {
	VolumeType string `json:"volumetype"`
	Size       int    `json:"size,omitempty"`
}

type createServersBody struct {
	Server CreateServerRequest `json:"server"`
}

type createServersResponse struct {
	JobID     string   `json:"job_id"`
	ServerIDs []string `json:"serverIds"`
}

type jobResponse struct {
	JobID string `json:"job_id"`
}

// CreateServers creates req.Count servers (one when 0) and returns the job
// that builds them and their ids.
func (c *Client) CreateServers(ctx context.Context, req CreateServerRequest) (jobID string, serverIDs []string, err error) {
	var out createServersResponse
	err = c.do(ctx, "POST", c.projectPath("v1", "cloudservers"), nil, createServersBody{Server: req}, &out)
	return out.JobID, out.ServerIDs, err
}

type serverBody struct {
	Server Server `json:"server"`
}

// ShowServer returns one server.
func (c *Client) ShowServer(ctx context.Context, id string) (Server, error) {
	var out serverBody
	err := c.do(ctx, "GET", c.projectPath("v1", "cloudservers", esc(id)), nil, nil, &out)
	return out.Server, err
}

// ListServersOptions filters GET /v1/{project_id}/cloudservers/detail; zero
// fields are not sent. Offset is a page number (the server's default is 1).
type ListServersOptions struct {
	Offset int
	Limit  int
	Name   string
	Status string
}

// ListServersResponse is one page of servers and the total count.
type ListServersResponse struct {
	Count   int      `json:"count"`
	Servers []Server `json:"servers"`
}

// ListServers returns one page of the project's servers.
func (c *Client) ListServers(ctx context.Context, opt ListServersOptions) (ListServersResponse, error) {
	q := url.Values{}
	if opt.Offset > 0 {
		q.Set("offset", strconv.Itoa(opt.Offset))
	}
	if opt.Limit > 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	if opt.Name != "" {
		q.Set("name", opt.Name)
	}
	if opt.Status != "" {
		q.Set("status", opt.Status)
	}
	var out ListServersResponse
	err := c.do(ctx, "GET", c.projectPath("v1", "cloudservers", "detail"), q, nil, &out)
	return out, err
}

// ServerRef names a server in batch bodies.
type ServerRef struct {
	ID string `json:"id"`
}

func refs(ids []string) []ServerRef {
	out := make([]ServerRef, len(ids))
	for i, id := range ids {
		out[i] = ServerRef{ID: id}
	}
	return out
}

// batchAction is the body of the start, stop and reboot actions.
type batchAction struct {
	Servers []ServerRef `json:"servers"`
	Type    string      `json:"type,omitempty"`
}

func actionType(hard bool) string {
	if hard {
		return "HARD"
	}
	return "SOFT"
}

func (c *Client) action(ctx context.Context, body any) (string, error) {
	var out jobResponse
	err := c.do(ctx, "POST", c.projectPath("v1", "cloudservers", "action"), nil, body, &out)
	return out.JobID, err
}

// StartServers starts servers (os-start) and returns the job.
func (c *Client) StartServers(ctx context.Context, ids ...string) (jobID string, err error) {
	return c.action(ctx, map[string]batchAction{"os-start": {Servers: refs(ids)}})
}

// StopServers stops servers (os-stop, type SOFT or HARD) and returns the job.
func (c *Client) StopServers(ctx context.Context, hard bool, ids ...string) (jobID string, err error) {
	return c.action(ctx, map[string]batchAction{"os-stop": {Servers: refs(ids), Type: actionType(hard)}})
}

// RebootServers reboots servers (reboot, type SOFT or HARD) and returns the job.
func (c *Client) RebootServers(ctx context.Context, hard bool, ids ...string) (jobID string, err error) {
	return c.action(ctx, map[string]batchAction{"reboot": {Servers: refs(ids), Type: actionType(hard)}})
}

type deleteServersBody struct {
	Servers []ServerRef `json:"servers"`
}

// DeleteServers deletes servers and returns the job.
func (c *Client) DeleteServers(ctx context.Context, ids ...string) (jobID string, err error) {
	var out jobResponse
	err = c.do(ctx, "POST", c.projectPath("v1", "cloudservers", "delete"), nil, deleteServersBody{Servers: refs(ids)}, &out)
	return out.JobID, err
}

// ReinstallOptions is the "os-reinstall" object. Give AdminPass or KeyName
// (with UserID); Mode "withStopServer" lets the server stop a running ECS
// first. The client does not validate: the server does.
type ReinstallOptions struct {
	AdminPass string `json:"adminpass,omitempty"`
	KeyName   string `json:"keyname,omitempty"`
	UserID    string `json:"userid,omitempty"`
	Mode      string `json:"mode,omitempty"`
	// Metadata is sent as given: user_data (base64; only with the v2 API,
	// see ReinstallServerCloudInit), __system__encrypted, __system__cmkid.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ModeWithStopServer is the only documented ReinstallOptions.Mode.
const ModeWithStopServer = "withStopServer"

type reinstallBody struct {
	OSReinstall ReinstallOptions `json:"os-reinstall"`
}

// ReinstallServer reinstalls a server's OS from its image (no cloud-init)
// and returns the job. The password travels only in this request's body.
func (c *Client) ReinstallServer(ctx context.Context, id string, opt ReinstallOptions) (jobID string, err error) {
	var out jobResponse
	err = c.do(ctx, "POST", c.projectPath("v1", "cloudservers", esc(id), "reinstallos"), nil, reinstallBody{OSReinstall: opt}, &out)
	return out.JobID, err
}

// UserData encodes user data for ReinstallOptions.Metadata["user_data"] and
// CreateServerRequest.UserData (base64, at most 32 KB before encoding).
func UserData(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// ReinstallServerCloudInit is the v2 reinstall (POST
// /v2/{project_id}/cloudservers/{id}/reinstallos): for an image that runs
// cloud-init; opt.Metadata may carry user_data, and with it AdminPass and
// KeyName may both be empty.
func (c *Client) ReinstallServerCloudInit(ctx context.Context, id string, opt ReinstallOptions) (jobID string, err error) {
	var out jobResponse
	err = c.do(ctx, "POST", c.projectPath("v2", "cloudservers", esc(id), "reinstallos"), nil, reinstallBody{OSReinstall: opt}, &out)
	return out.JobID, err
}

// ChangeOSOptions is the "os-change" object: ReinstallOptions and the new
// image.
type ChangeOSOptions struct {
	ReinstallOptions
	ImageID string `json:"imageid"`
}

type changeOSBody struct {
	OSChange ChangeOSOptions `json:"os-change"`
}

// ChangeOS gives a server a new system disk made from another image and
// returns the job: through the v2 API (cloud-init; user data allowed) when
// cloudInit, else the v1 API (credentials written from the host side).
func (c *Client) ChangeOS(ctx context.Context, id string, opt ChangeOSOptions, cloudInit bool) (jobID string, err error) {
	version := "v1"
	if cloudInit {
		version = "v2"
	}
	var out jobResponse
	err = c.do(ctx, "POST", c.projectPath(version, "cloudservers", esc(id), "changeos"), nil, changeOSBody{OSChange: opt}, &out)
	return out.JobID, err
}

type resetPasswordBody struct {
	ResetPassword struct {
		NewPassword     string `json:"new_password"`
		IsCheckPassword bool   `json:"is_check_password"`
	} `json:"reset-password"`
}

// ResetPassword sets a server's root password (PUT
// .../os-reset-password): online through the guest agent on a running
// server whose image has one, offline on a stopped server. It returns once
// the service accepted (and, normally, applied) it.
func (c *Client) ResetPassword(ctx context.Context, id, password string) error {
	var b resetPasswordBody
	b.ResetPassword.NewPassword, b.ResetPassword.IsCheckPassword = password, true
	return c.do(ctx, "PUT", c.projectPath("v1", "cloudservers", esc(id), "os-reset-password"), nil, b, nil)
}

// ResetPasswordFlag says whether a server's password can be reset online
// (GET .../os-resetpwd-flag is "True").
func (c *Client) ResetPasswordFlag(ctx context.Context, id string) (bool, error) {
	var out struct {
		Flag string `json:"resetpwd_flag"`
	}
	err := c.do(ctx, "GET", c.projectPath("v1", "cloudservers", esc(id), "os-resetpwd-flag"), nil, nil, &out)
	return out.Flag == "True", err
}
