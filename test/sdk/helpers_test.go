package sdk

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-crypt/crypt"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
	imsmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ims/v2/model"
)

// jobTimeout bounds how long any one job may take on the simulator.
const jobTimeout = 30 * time.Second

// pollEvery is the polling interval of every wait loop.
const pollEvery = 50 * time.Millisecond

func ptr[T any](v T) *T { return &v }

// uniq returns prefix plus 8 random hex digits (a valid server or key pair
// name).
func uniq(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// catalog is what a test needs to create servers.
type catalog struct {
	linuxImage   string
	windowsImage string
	flavor       string
}

// catalogOf lists images (IMS) and flavors once per daemon and picks a
// Linux image, a Windows image and a flavor.
func (tn *tenant) catalog(t *testing.T) catalog {
	t.Helper()
	d := tn.d
	d.catalogOnce.Do(func() {
		imgs, err := tn.ims.ListImages(&imsmodel.ListImagesRequest{})
		if err != nil {
			d.catalogErr = fmt.Errorf("IMS ListImages: %w", err)
			return
		}
		if imgs.Images != nil {
			for _, im := range *imgs.Images {
				switch im.OsType.Value() {
				case "Linux":
					// The generic tests reinstall with v1 (host-side
					// injection): an image without cloud-init.
					if d.catalog.linuxImage == "" && (im.SupportFcInject == nil || im.SupportFcInject.Value() != "true") {
						d.catalog.linuxImage = im.Id
					}
				case "Windows":
					if d.catalog.windowsImage == "" {
						d.catalog.windowsImage = im.Id
					}
				}
			}
		}
		fl, err := tn.ecs.ListFlavors(&model.ListFlavorsRequest{})
		if err != nil {
			d.catalogErr = fmt.Errorf("ListFlavors: %w", err)
			return
		}
		if fl.Flavors != nil && len(*fl.Flavors) > 0 {
			d.catalog.flavor = (*fl.Flavors)[0].Id
		}
		if d.catalog.linuxImage == "" || d.catalog.windowsImage == "" || d.catalog.flavor == "" {
			d.catalogErr = fmt.Errorf("catalog lacks a Linux image, a Windows image or a flavor: %+v", d.catalog)
		}
	})
	if d.catalogErr != nil {
		t.Fatal(d.catalogErr)
	}
	return d.catalog
}

// serverSpec describes a server to create; zero values pick defaults
// (Linux image, first flavor, random name, count 1).
type serverSpec struct {
	name      string
	image     string
	flavor    string
	keyName   string
	adminPass string
	count     int32
}

// createServers calls CreatePostPaidServers and returns its response.
func (tn *tenant) createServers(t *testing.T, s serverSpec) *model.CreatePostPaidServersResponse {
	t.Helper()
	if s.name == "" {
		s.name = uniq("t")
	}
	// The catalog is read only when needed: a qemu daemon has no Windows
	// image, so catalog() fails there.
	if s.image == "" {
		s.image = tn.catalog(t).linuxImage
	}
	if s.flavor == "" {
		s.flavor = tn.catalog(t).flavor
	}
	srv := &model.PostPaidServer{
		Name:       s.name,
		ImageRef:   s.image,
		FlavorRef:  s.flavor,
		Vpcid:      "vpc-sdk-suite",
		Nics:       []model.PostPaidServerNic{{SubnetId: ptr("subnet-sdk-suite")}},
		RootVolume: &model.PostPaidServerRootVolume{Volumetype: model.GetPostPaidServerRootVolumeVolumetypeEnum().SSD},
	}
	if s.keyName != "" {
		srv.KeyName = ptr(s.keyName)
	}
	if s.adminPass != "" {
		rememberSecret(s.adminPass)
		srv.AdminPass = ptr(s.adminPass)
	}
	if s.count > 0 {
		srv.Count = ptr(s.count)
	}
	resp, err := tn.ecs.CreatePostPaidServers(&model.CreatePostPaidServersRequest{
		Body: &model.CreatePostPaidServersRequestBody{Server: srv},
	})
	if err != nil {
		t.Fatalf("CreatePostPaidServers: %v", err)
	}
	if resp.JobId == nil || *resp.JobId == "" {
		t.Fatalf("CreatePostPaidServers returned no job_id (HTTP %d)", resp.HttpStatusCode)
	}
	want := int(s.count)
	if want == 0 {
		want = 1
	}
	if resp.ServerIds == nil || len(*resp.ServerIds) != want {
		t.Fatalf("CreatePostPaidServers serverIds = %v, want %d ids", resp.ServerIds, want)
	}
	return resp
}

// newServer creates one server, waits for its job to succeed and checks
// that it is ACTIVE.
func (tn *tenant) newServer(t *testing.T, s serverSpec) string {
	t.Helper()
	s.count = 0
	resp := tn.createServers(t, s)
	tn.waitJobSuccess(t, *resp.JobId)
	id := (*resp.ServerIds)[0]
	if st := tn.show(t, id).Status; st != "ACTIVE" {
		t.Fatalf("server %s is %s after its create job succeeded, want ACTIVE", id, st)
	}
	return id
}

// newStoppedServer is newServer followed by a stop to SHUTOFF.
func (tn *tenant) newStoppedServer(t *testing.T, s serverSpec) string {
	t.Helper()
	id := tn.newServer(t, s)
	tn.stop(t, "SOFT", id)
	return id
}

// stop stops servers (SOFT or HARD) and checks they end SHUTOFF.
func (tn *tenant) stop(t *testing.T, typ string, ids ...string) *model.ShowJobResponse {
	t.Helper()
	e := model.GetBatchStopServersOptionTypeEnum()
	kind := e.SOFT
	if typ == "HARD" {
		kind = e.HARD
	}
	resp, err := tn.ecs.BatchStopServers(&model.BatchStopServersRequest{Body: &model.BatchStopServersRequestBody{
		OsStop: &model.BatchStopServersOption{Servers: serverIDs(ids), Type: &kind},
	}})
	if err != nil {
		t.Fatalf("BatchStopServers(%s) %v: %v", typ, ids, err)
	}
	job := tn.waitJobSuccess(t, jobID(t, resp.JobId))
	for _, id := range ids {
		s := tn.show(t, id)
		if s.Status != "SHUTOFF" || s.OSEXTSTSvmState != "stopped" || s.OSEXTSTStaskState != "" || s.OSEXTSTSpowerState != 4 {
			t.Fatalf("after stop %s: status %s vm_state %s task_state %q power_state %d; want SHUTOFF stopped null 4",
				id, s.Status, s.OSEXTSTSvmState, s.OSEXTSTStaskState, s.OSEXTSTSpowerState)
		}
	}
	return job
}

// start starts servers and checks they end ACTIVE.
func (tn *tenant) start(t *testing.T, ids ...string) {
	t.Helper()
	resp, err := tn.ecs.BatchStartServers(&model.BatchStartServersRequest{Body: &model.BatchStartServersRequestBody{
		OsStart: &model.BatchStartServersOption{Servers: serverIDs(ids)},
	}})
	if err != nil {
		t.Fatalf("BatchStartServers %v: %v", ids, err)
	}
	tn.waitJobSuccess(t, jobID(t, resp.JobId))
	for _, id := range ids {
		tn.wantActive(t, id)
	}
}

func (tn *tenant) wantActive(t *testing.T, id string) {
	t.Helper()
	s := tn.show(t, id)
	if s.Status != "ACTIVE" || s.OSEXTSTSvmState != "active" || s.OSEXTSTStaskState != "" || s.OSEXTSTSpowerState != 1 {
		t.Fatalf("server %s: status %s vm_state %s task_state %q power_state %d; want ACTIVE active null 1",
			id, s.Status, s.OSEXTSTSvmState, s.OSEXTSTStaskState, s.OSEXTSTSpowerState)
	}
}

func serverIDs(ids []string) []model.ServerId {
	out := make([]model.ServerId, len(ids))
	for i, id := range ids {
		out[i] = model.ServerId{Id: id}
	}
	return out
}

func jobID(t *testing.T, id *string) string {
	t.Helper()
	if id == nil || *id == "" {
		t.Fatal("response has no job_id")
	}
	return *id
}

// show returns the server (decoded by the SDK's strict types).
func (tn *tenant) show(t *testing.T, id string) *model.ServerDetail {
	t.Helper()
	resp, err := tn.ecs.ShowServer(&model.ShowServerRequest{ServerId: id})
	if err != nil {
		t.Fatalf("ShowServer %s: %v", id, err)
	}
	if resp.Server == nil {
		t.Fatalf("ShowServer %s: no server object", id)
	}
	return resp.Server
}

// systemVolume is the volume attached as /dev/vda (volumes_attached[0]).
func systemVolume(t *testing.T, s *model.ServerDetail) string {
	t.Helper()
	if len(s.OsExtendedVolumesvolumesAttached) == 0 {
		t.Fatalf("server %s has no os-extended-volumes:volumes_attached", s.Id)
	}
	v := s.OsExtendedVolumesvolumesAttached[0]
	if v.Id == "" || v.Device != "/dev/vda" {
		t.Fatalf("server %s volumes_attached[0] = %+v, want a system volume on /dev/vda", s.Id, v)
	}
	return v.Id
}

// jobStatus returns the job's status string ("" when absent).
func jobStatus(j *model.ShowJobResponse) string {
	if j.Status == nil {
		return ""
	}
	return j.Status.Value()
}

// waitJob polls ShowJob every 50 ms until the job is SUCCESS or FAIL, for
// at most the daemon's jobTimeout (default: the constant jobTimeout).
func (tn *tenant) waitJob(t *testing.T, id string) *model.ShowJobResponse {
	t.Helper()
	timeout := jobTimeout
	if tn.d.jobTimeout > 0 {
		timeout = tn.d.jobTimeout
	}
	deadline := time.Now().Add(timeout)
	for {
		j, err := tn.ecs.ShowJob(&model.ShowJobRequest{JobId: id})
		if err != nil {
			t.Fatalf("ShowJob %s: %v", id, err)
		}
		switch s := jobStatus(j); s {
		case "SUCCESS", "FAIL":
			return j
		case "INIT", "RUNNING":
		default:
			t.Fatalf("job %s has status %q, not one of INIT RUNNING SUCCESS FAIL", id, s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %v", id, jobStatus(j), timeout)
		}
		time.Sleep(pollEvery)
	}
}

// waitJobSuccess is waitJob that fails the test unless the job succeeded.
func (tn *tenant) waitJobSuccess(t *testing.T, id string) *model.ShowJobResponse {
	t.Helper()
	j := tn.waitJob(t, id)
	if jobStatus(j) != "SUCCESS" {
		t.Fatalf("job %s (%s) ended %s: error_code %s fail_reason %s", id, str(j.JobType), jobStatus(j), str(j.ErrorCode), str(j.FailReason))
	}
	return j
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// wantErr asserts that err is an SDK ServiceResponseError with status and
// one of codes (any non-empty code when none given), with a request id and
// a message.
func wantErr(t *testing.T, err error, status int, codes ...string) *sdkerr.ServiceResponseError {
	t.Helper()
	if err == nil {
		t.Errorf("call succeeded; want HTTP %d %v", status, codes)
		return nil
	}
	var se *sdkerr.ServiceResponseError
	if !errors.As(err, &se) {
		t.Errorf("error %v (%T) is not a ServiceResponseError", err, err)
		return nil
	}
	if status != 0 && se.StatusCode != status {
		t.Errorf("HTTP %d (%s: %s), want %d", se.StatusCode, se.ErrorCode, se.ErrorMessage, status)
	}
	checkCode(t, se.ErrorCode, codes)
	if se.RequestId == "" {
		t.Errorf("error response without X-Request-Id")
	}
	if se.ErrorMessage == "" {
		t.Errorf("error %s without a message", se.ErrorCode)
	}
	return se
}

// reinstall calls ReinstallServerWithoutCloudInit with the given option.
func (tn *tenant) reinstall(id string, opt *model.ReinstallServerWithoutCloudInitOption) (*model.ReinstallServerWithoutCloudInitResponse, error) {
	if opt != nil && opt.Adminpass != nil {
		rememberSecret(*opt.Adminpass)
	}
	return tn.ecs.ReinstallServerWithoutCloudInit(&model.ReinstallServerWithoutCloudInitRequest{
		ServerId: id,
		Body:     &model.ReinstallServerWithoutCloudInitRequestBody{OsReinstall: opt},
	})
}

// reinstallOK reinstalls and waits for the job to succeed.
func (tn *tenant) reinstallOK(t *testing.T, id string, opt *model.ReinstallServerWithoutCloudInitOption) *model.ShowJobResponse {
	t.Helper()
	resp, err := tn.reinstall(id, opt)
	if err != nil {
		t.Fatalf("reinstall %s with %s: %v", id, describeOpt(opt), err)
	}
	if resp.HttpStatusCode != 200 {
		t.Errorf("reinstall answered HTTP %d, want 200", resp.HttpStatusCode)
	}
	return tn.waitJobSuccess(t, jobID(t, resp.JobId))
}

// describeOpt renders a reinstall option for a failure message (the
// suite's passwords are test data).
func describeOpt(o *model.ReinstallServerWithoutCloudInitOption) string {
	if o == nil {
		return "no option"
	}
	return fmt.Sprintf("adminpass=%q keyname=%q userid=%q mode=%q", str(o.Adminpass), str(o.Keyname), str(o.Userid), str(o.Mode))
}

// simDisk is what the simulator records for each volume.
type simDisk struct {
	ID             string `json:"id"`
	ImageID        string `json:"image_id"`
	SizeGB         int    `json:"size_gb"`
	PasswordHash   string `json:"password_hash"`
	AuthorizedKeys string `json:"authorized_keys"`
	AttachedTo     string `json:"attached_to"`
	Created        string `json:"created"`
}

func (d *daemon) disk(t *testing.T, volumeID string) simDisk {
	t.Helper()
	b, err := os.ReadFile(d.diskPath(volumeID))
	if err != nil {
		t.Fatalf("simulator disk record: %v", err)
	}
	var sd simDisk
	if err := json.Unmarshal(b, &sd); err != nil {
		t.Fatalf("simulator disk record %s is not the documented JSON: %v\n%s", volumeID, err, b)
	}
	if sd.ID != volumeID {
		t.Errorf("disk record %s has id %q", volumeID, sd.ID)
	}
	return sd
}

func (d *daemon) wantDiskGone(t *testing.T, volumeID string) {
	t.Helper()
	if _, err := os.Stat(d.diskPath(volumeID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("volume %s still exists in the simulator (stat: %v)", volumeID, err)
	}
}

// wantHash checks that hash is a SHA-512 crypt hash of password.
func wantHash(t *testing.T, hash, password string) {
	t.Helper()
	if !strings.HasPrefix(hash, "$6$") {
		t.Errorf("password_hash %q is not a $6$ SHA-512 crypt hash", hash)
		return
	}
	ok, err := crypt.CheckPassword(password, hash)
	if err != nil || !ok {
		t.Errorf("password_hash %q does not verify the password (ok=%v err=%v)", hash, ok, err)
	}
}

// sshKey returns a fresh ed25519 OpenSSH public key line.
func sshKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(sshWire("ssh-ed25519", pub)) + " suite@test"
}

// sshWire encodes SSH wire-format strings.
func sshWire(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		var b []byte
		switch v := p.(type) {
		case string:
			b = []byte(v)
		case []byte:
			b = v
		case ed25519.PublicKey:
			b = v
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

// parsesAsSSHKey reports whether line is "<type> <base64 wire>" whose wire
// blob starts with the same type string.
func parsesAsSSHKey(line string) bool {
	f := strings.Fields(line)
	if len(f) < 2 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(b) < 4 {
		return false
	}
	n := binary.BigEndian.Uint32(b)
	return int(n) <= len(b)-4 && string(b[4:4+n]) == f[0]
}
