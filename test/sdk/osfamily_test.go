package sdk

// The OS family through the official SDK against the simulator: v2
// reinstall (ReinstallServerWithCloudInit), change of OS without and with
// Cloud-Init, password reset and its flag, and the v1.1 create
// (CreateServers). What the simulator recorded (the seed a guest would
// read, the image a server boots, the disks) is read from its state files.

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

// Built-in simulator images (internal/cloud.BuiltinImages).
const (
	imgDebian   = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01" // no cloud-init
	imgUbuntu   = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e02" // no cloud-init
	imgWindows  = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e03" // min_ram 2048, min_disk 40
	imgUbuntuCI = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e04" // cloud-init
	imgCentOSCI = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e05" // cloud-init, min_disk 20, no host-side injection

	flavorSmall = "s6.small.1" // 1024 MB
	flavorLarge = "s6.large.2" // 4096 MB
)

// simSeed is a simulated server's cloud-init seed (compute.Seed).
type simSeed struct {
	InstanceID     string `json:"instance_id"`
	Hostname       string `json:"hostname"`
	PasswordHash   string `json:"password_hash"`
	AuthorizedKeys string `json:"authorized_keys"`
	UserData       []byte `json:"user_data"`
}

// simServer is what the simulator records for a server.
type simServer struct {
	ID           string   `json:"id"`
	DiskID       string   `json:"disk_id"`
	Power        string   `json:"power"`
	ImageID      string   `json:"image_id"`
	ImageChanges int      `json:"image_changes"`
	Agent        bool     `json:"agent"`
	Seed         *simSeed `json:"seed"`
	Seeds        int      `json:"seeds"`
	PasswordSets int      `json:"password_sets"`
}

func (d *daemon) simServer(t *testing.T, id string) simServer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.DataDir(), "sim", "servers", id+".json"))
	if err != nil {
		t.Fatalf("simulator server record: %v", err)
	}
	var s simServer
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("simulator server record %s: %v\n%s", id, err, b)
	}
	return s
}

func b64(s string) *string { v := base64.StdEncoding.EncodeToString([]byte(s)); return &v }

type ciOpt = model.ReinstallServerWithCloudInitOption

func (tn *tenant) reinstallCI(id string, o *ciOpt) (*model.ReinstallServerWithCloudInitResponse, error) {
	if o != nil && o.Adminpass != nil {
		rememberSecret(*o.Adminpass)
	}
	return tn.ecs.ReinstallServerWithCloudInit(&model.ReinstallServerWithCloudInitRequest{ServerId: id,
		Body: &model.ReinstallServerWithCloudInitRequestBody{OsReinstall: o}})
}

func (tn *tenant) changeOSv1(id string, o *model.ChangeServerOsWithoutCloudInitOption) (*model.ChangeServerOsWithoutCloudInitResponse, error) {
	if o != nil && o.Adminpass != nil {
		rememberSecret(*o.Adminpass)
	}
	return tn.ecs.ChangeServerOsWithoutCloudInit(&model.ChangeServerOsWithoutCloudInitRequest{ServerId: id,
		Body: &model.ChangeServerOsWithoutCloudInitRequestBody{OsChange: o}})
}

func (tn *tenant) changeOSv2(id string, o *model.ChangeServerOsWithCloudInitOption) (*model.ChangeServerOsWithCloudInitResponse, error) {
	if o != nil && o.Adminpass != nil {
		rememberSecret(*o.Adminpass)
	}
	return tn.ecs.ChangeServerOsWithCloudInit(&model.ChangeServerOsWithCloudInitRequest{ServerId: id,
		Body: &model.ChangeServerOsWithCloudInitRequestBody{OsChange: o}})
}

// wantJobOf waits for job id to succeed and checks it is a single job of
// type typ on server.
func (tn *tenant) wantJobOf(t *testing.T, id *string, typ, server string) {
	t.Helper()
	j := tn.waitJobSuccess(t, jobID(t, id))
	if str(j.JobType) != typ || j.Entities == nil || str(j.Entities.ServerId) != server {
		t.Errorf("job type %q entities %+v; want %s on server %s", str(j.JobType), j.Entities, typ, server)
	}
}

// TestReinstallWithCloudInit: the v2 reinstall of a stopped server on a
// cloud-init image with a key pair and user data gives it a new system
// disk and a new seed (new instance id) carrying the key and the user data
// byte for byte; the encryption metadata is recorded on the server.
func TestReinstallWithCloudInit(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	keyA, keyB := sshKey(t), sshKey(t)
	kpA, kpB := uniq("ka"), uniq("kb")
	tn.importKeypair(t, kpA, keyA)
	tn.importKeypair(t, kpB, keyB)
	id := tn.newStoppedServer(t, serverSpec{image: imgUbuntuCI, keyName: kpA})
	before := d.simServer(t, id)
	if before.Seed == nil || !strings.Contains(before.Seed.AuthorizedKeys, keyA) {
		t.Fatalf("created server's seed %+v does not carry key A", before.Seed)
	}
	oldVol := systemVolume(t, tn.show(t, id))

	script := "#!/bin/sh\necho marker > /root/marker\n"
	cmk := "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	resp, err := tn.reinstallCI(id, &ciOpt{Keyname: ptr(kpB), Userid: ptr(tn.cred.UserID),
		Metadata: &model.ReinstallSeverMetadata{UserData: b64(script), SystemEncrypted: ptr("1"), SystemCmkid: ptr(cmk)}})
	if err != nil {
		t.Fatalf("ReinstallServerWithCloudInit: %v", err)
	}
	if resp.HttpStatusCode != 200 {
		t.Errorf("HTTP %d, want 200", resp.HttpStatusCode)
	}
	tn.wantJobOf(t, resp.JobId, "reInitOs", id)

	s := tn.show(t, id)
	if s.Status != "SHUTOFF" || s.KeyName != kpB || s.Image.Id != imgUbuntuCI {
		t.Errorf("after the reinstall: status %s key_name %q image %s; want SHUTOFF, %s, %s", s.Status, s.KeyName, s.Image.Id, kpB, imgUbuntuCI)
	}
	if s.Metadata["__system__encrypted"] != "1" || s.Metadata["__system__cmkid"] != cmk {
		t.Errorf("metadata %v does not record __system__encrypted 1 and the cmk id", s.Metadata)
	}
	newVol := systemVolume(t, s)
	if newVol == oldVol {
		t.Errorf("system volume %s unchanged", newVol)
	}
	d.wantDiskGone(t, oldVol)
	after := d.simServer(t, id)
	switch {
	case after.Seed == nil:
		t.Fatal("no seed after the v2 reinstall")
	case after.Seed.InstanceID == before.Seed.InstanceID:
		t.Errorf("instance id %s unchanged: cloud-init would not run again", after.Seed.InstanceID)
	case string(after.Seed.UserData) != script:
		t.Errorf("seed user_data %q, want %q byte for byte", after.Seed.UserData, script)
	case !strings.Contains(after.Seed.AuthorizedKeys, keyB) || strings.Contains(after.Seed.AuthorizedKeys, keyA):
		t.Errorf("seed authorized_keys %q: want key B only", after.Seed.AuthorizedKeys)
	case after.Seeds != before.Seeds+1:
		t.Errorf("seeds written %d, want %d", after.Seeds, before.Seeds+1)
	}
	// The v2 API leaves the credentials to cloud-init: nothing host-side.
	if disk := d.disk(t, newVol); disk.AuthorizedKeys != "" || disk.PasswordHash != "" {
		t.Errorf("v2 reinstall wrote credentials into the disk from the host: %+v", disk)
	}
}

// TestReinstallWithCloudInitRunningAndUserDataOnly: withStopServer on a
// running server (a password, ends ACTIVE) and a reinstall with user data
// alone (neither adminpass nor keyname).
func TestReinstallWithCloudInitRunningAndUserDataOnly(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	id := tn.newServer(t, serverSpec{image: imgCentOSCI, flavor: flavorSmall})
	resp, err := tn.reinstallCI(id, &ciOpt{Adminpass: ptr("CloudInit#2024"), Mode: ptr("withStopServer")})
	if err != nil {
		t.Fatalf("ReinstallServerWithCloudInit withStopServer: %v", err)
	}
	tn.wantJobOf(t, resp.JobId, "reInitOs", id)
	tn.wantActive(t, id)
	seed := d.simServer(t, id).Seed
	if seed == nil {
		t.Fatal("no seed")
	}
	wantHash(t, seed.PasswordHash, "CloudInit#2024")

	tn.stop(t, "SOFT", id)
	resp, err = tn.reinstallCI(id, &ciOpt{Metadata: &model.ReinstallSeverMetadata{UserData: b64("#cloud-config\n{}\n")}})
	if err != nil {
		t.Fatalf("ReinstallServerWithCloudInit with user_data only: %v", err)
	}
	tn.wantJobOf(t, resp.JobId, "reInitOs", id)
	seed = d.simServer(t, id).Seed
	if seed == nil || string(seed.UserData) != "#cloud-config\n{}\n" || seed.PasswordHash != "" || seed.AuthorizedKeys != "" {
		t.Errorf("seed after a user-data-only reinstall: %+v", seed)
	}
	if k := tn.show(t, id).KeyName; k != "" {
		t.Errorf("key_name %q after a reinstall without a key pair", k)
	}
}

// TestReinstallWithCloudInitRefused: each refusal of the v2 reinstall, with
// its code; none starts a job.
func TestReinstallWithCloudInitRefused(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	kp := uniq("k")
	tn.importKeypair(t, kp, sshKey(t))
	stopped := tn.newStoppedServer(t, serverSpec{image: imgUbuntuCI})
	running := tn.newServer(t, serverSpec{image: imgUbuntuCI})
	plain := tn.newStoppedServer(t, serverSpec{image: imgDebian})
	tooBig := base64.StdEncoding.EncodeToString(make([]byte, 32<<10+1))
	md := func(ud string) *model.ReinstallSeverMetadata { return &model.ReinstallSeverMetadata{UserData: &ud} }
	cases := []struct {
		name   string
		server string
		opt    *ciOpt
		status int
		code   string
	}{
		{"adminpass and keyname", stopped, &ciOpt{Adminpass: ptr("Passw0rd#1"), Keyname: ptr(kp)}, 400, "Ecs.0005"},
		{"neither and no user_data", stopped, &ciOpt{}, 400, "Ecs.0005"},
		{"neither, empty metadata", stopped, &ciOpt{Metadata: &model.ReinstallSeverMetadata{}}, 400, "Ecs.0005"},
		{"bad base64", stopped, &ciOpt{Metadata: md("not base64!")}, 400, "Ecs.0005"},
		{"user_data over 32 KB", stopped, &ciOpt{Metadata: md(tooBig)}, 400, "Ecs.0005"},
		{"unknown mode", running, &ciOpt{Adminpass: ptr("Passw0rd#1"), Mode: ptr("withReboot")}, 400, "Ecs.0005"},
		{"encrypted without cmk", stopped, &ciOpt{Adminpass: ptr("Passw0rd#1"),
			Metadata: &model.ReinstallSeverMetadata{SystemEncrypted: ptr("1")}}, 400, "Ecs.0005"},
		{"weak password", stopped, &ciOpt{Adminpass: ptr("lowercaseonly")}, 400, "Ecs.0011"},
		{"unknown key pair", stopped, &ciOpt{Keyname: ptr(uniq("nokey"))}, 400, "Ecs.0314"},
		{"image without cloud-init", plain, &ciOpt{Adminpass: ptr("Passw0rd#1")}, 400, "Ecs.0007"},
		{"running without mode", running, &ciOpt{Adminpass: ptr("Passw0rd#1")}, 400, "Ecs.0100"},
		{"unknown server", "6b3c7f9e-0000-4000-8000-000000000000", &ciOpt{Adminpass: ptr("Passw0rd#1")}, 404, "Ecs.0114"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tn.reinstallCI(c.server, c.opt)
			wantErr(t, err, c.status, c.code)
		})
	}
	for _, id := range []string{stopped, running, plain} {
		if s := tn.show(t, id); s.OSEXTSTStaskState != "" {
			t.Errorf("server %s has task_state %q after refusals", id, s.OSEXTSTStaskState)
		}
	}
	// v1 takes no user_data.
	r := tn.raw(t, rawReq{method: "POST", path: reinstallURL(plain),
		body: []byte(`{"os-reinstall":{"adminpass":"Passw0rd#1","metadata":{"user_data":"IyEvYmluL3NoCg=="}}}`)})
	if r.status != 400 || !strings.Contains(string(r.body), "Ecs.0005") {
		t.Errorf("v1 reinstall with user_data: HTTP %d %s, want 400 Ecs.0005", r.status, r.body)
	}
}

// TestChangeOSWithoutCloudInit: the v1 change of OS gives the server a new
// disk of the new image with the password written from the host side; the
// server shows the new image, image_name and os_type.
func TestChangeOSWithoutCloudInit(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	id := tn.newStoppedServer(t, serverSpec{image: imgDebian})
	oldVol := systemVolume(t, tn.show(t, id))
	resp, err := tn.changeOSv1(id, &model.ChangeServerOsWithoutCloudInitOption{Imageid: imgUbuntu, Adminpass: ptr("Change#Os2024")})
	if err != nil {
		t.Fatalf("ChangeServerOsWithoutCloudInit: %v", err)
	}
	tn.wantJobOf(t, resp.JobId, "changeOS", id)
	s := tn.show(t, id)
	if s.Image.Id != imgUbuntu || s.Metadata["image_name"] != "Ubuntu 22.04 server 64bit" || s.Metadata["os_type"] != "Linux" ||
		s.Metadata["metering.image_id"] != imgUbuntu || s.Status != "SHUTOFF" {
		t.Errorf("after the change: image %s metadata %v status %s; want %s, its name and os_type, SHUTOFF", s.Image.Id, s.Metadata, s.Status, imgUbuntu)
	}
	vol := systemVolume(t, s)
	disk := d.disk(t, vol)
	if vol == oldVol || disk.ImageID != imgUbuntu {
		t.Errorf("system volume %s (was %s) made from %s, want a new one from %s", vol, oldVol, disk.ImageID, imgUbuntu)
	}
	wantHash(t, disk.PasswordHash, "Change#Os2024")
	if ss := d.simServer(t, id); ss.ImageID != imgUbuntu || ss.ImageChanges != 1 || ss.Seed != nil {
		t.Errorf("simulator server: image %s changes %d seed %+v; want %s, 1, none", ss.ImageID, ss.ImageChanges, ss.Seed, imgUbuntu)
	}
}

// TestChangeOSTerraformShape: the call as Terraform's provider makes it
// (v1 for an image whose __support_fc_inject is false: mode withStopServer
// on a running server, a key pair, isAutoPay "true") succeeds and the
// server ends ACTIVE on the new image; a change from a cloud-init image to
// one without drops the seed.
func TestChangeOSTerraformShape(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	kp := uniq("tf")
	key := sshKey(t)
	tn.importKeypair(t, kp, key)
	id := tn.newServer(t, serverSpec{image: imgUbuntuCI, adminPass: "Terraform#01"})
	resp, err := tn.changeOSv1(id, &model.ChangeServerOsWithoutCloudInitOption{Imageid: imgDebian, Keyname: ptr(kp),
		Userid: ptr(tn.cred.UserID), Mode: ptr("withStopServer"), IsAutoPay: ptr("true")})
	if err != nil {
		t.Fatalf("ChangeServerOsWithoutCloudInit as Terraform calls it: %v", err)
	}
	tn.wantJobOf(t, resp.JobId, "changeOS", id)
	tn.wantActive(t, id)
	s := tn.show(t, id)
	if s.Image.Id != imgDebian || s.KeyName != kp || s.Metadata["image_name"] != "Debian 12 64bit" {
		t.Errorf("image %s key %q metadata %v; want %s, %s", s.Image.Id, s.KeyName, s.Metadata, imgDebian, kp)
	}
	if got := d.disk(t, systemVolume(t, s)).AuthorizedKeys; !strings.Contains(got, key) {
		t.Errorf("authorized_keys %q lacks the key", got)
	}
	if ss := d.simServer(t, id); ss.Seed != nil || ss.Agent {
		t.Errorf("a server changed to an image without cloud-init keeps seed %+v / agent %v", ss.Seed, ss.Agent)
	}
}

// TestChangeOSWithCloudInit: the v2 change of OS to a cloud-init image
// with a key pair and user data; the server boots the new image with a new
// seed.
func TestChangeOSWithCloudInit(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	kp := uniq("ci")
	key := sshKey(t)
	tn.importKeypair(t, kp, key)
	id := tn.newStoppedServer(t, serverSpec{image: imgDebian})
	script := "#cloud-config\nruncmd:\n  - touch /root/changed\n"
	resp, err := tn.changeOSv2(id, &model.ChangeServerOsWithCloudInitOption{Imageid: imgUbuntuCI, Keyname: ptr(kp),
		Metadata: &model.ChangeSeversOsMetadata{UserData: b64(script)}})
	if err != nil {
		t.Fatalf("ChangeServerOsWithCloudInit: %v", err)
	}
	tn.wantJobOf(t, resp.JobId, "changeOS", id)
	s := tn.show(t, id)
	if s.Image.Id != imgUbuntuCI || s.Metadata["image_name"] != "Ubuntu 24.04 server 64bit with Cloud-Init" || s.KeyName != kp {
		t.Errorf("image %s metadata %v key %q", s.Image.Id, s.Metadata, s.KeyName)
	}
	ss := d.simServer(t, id)
	if ss.ImageID != imgUbuntuCI || !ss.Agent || ss.Seed == nil || string(ss.Seed.UserData) != script ||
		!strings.Contains(ss.Seed.AuthorizedKeys, key) || !strings.HasPrefix(ss.Seed.InstanceID, "iid-") {
		t.Errorf("simulator server after the v2 change: %+v seed %+v", ss, ss.Seed)
	}
}

// TestChangeOSRefused: every refusal of both change-OS calls, with its code.
func TestChangeOSRefused(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	kp := uniq("k")
	tn.importKeypair(t, kp, sshKey(t))
	small := tn.newStoppedServer(t, serverSpec{image: imgDebian, flavor: flavorSmall})
	large := tn.newStoppedServer(t, serverSpec{image: imgDebian, flavor: flavorLarge})
	running := tn.newServer(t, serverSpec{image: imgDebian})
	pass := ptr("Passw0rd#22")
	v1 := []struct {
		name   string
		server string
		opt    model.ChangeServerOsWithoutCloudInitOption
		status int
		code   string
	}{
		{"no imageid", small, model.ChangeServerOsWithoutCloudInitOption{Adminpass: pass}, 400, "Ecs.0005"},
		{"unknown image", small, model.ChangeServerOsWithoutCloudInitOption{Imageid: "6b3c7f9e-0000-4000-8000-00000000beef", Adminpass: pass}, 400, "Ecs.0031"},
		{"adminpass and keyname", small, model.ChangeServerOsWithoutCloudInitOption{Imageid: imgUbuntu, Adminpass: pass, Keyname: ptr(kp)}, 400, "Ecs.0005"},
		{"neither", small, model.ChangeServerOsWithoutCloudInitOption{Imageid: imgUbuntu}, 400, "Ecs.0005"},
		{"min_ram above the flavor", small, model.ChangeServerOsWithoutCloudInitOption{Imageid: imgWindows, Adminpass: pass}, 400, "Ecs.0008"},
		{"min_disk above the system disk", large, model.ChangeServerOsWithoutCloudInitOption{Imageid: imgWindows, Adminpass: pass}, 400, "Ecs.0007"},
		{"image without host-side injection", large, model.ChangeServerOsWithoutCloudInitOption{Imageid: imgCentOSCI, Adminpass: pass}, 400, "Ecs.0007"},
		{"running without mode", running, model.ChangeServerOsWithoutCloudInitOption{Imageid: imgUbuntu, Adminpass: pass}, 400, "Ecs.0100"},
		{"bad mode", running, model.ChangeServerOsWithoutCloudInitOption{Imageid: imgUbuntu, Adminpass: pass, Mode: ptr("now")}, 400, "Ecs.0005"},
		{"weak password", small, model.ChangeServerOsWithoutCloudInitOption{Imageid: imgUbuntu, Adminpass: ptr("weakweak")}, 400, "Ecs.0011"},
		{"unknown server", "6b3c7f9e-0000-4000-8000-000000000001", model.ChangeServerOsWithoutCloudInitOption{Imageid: imgUbuntu, Adminpass: pass}, 404, "Ecs.0114"},
	}
	for _, c := range v1 {
		t.Run("v1 "+c.name, func(t *testing.T) {
			_, err := tn.changeOSv1(c.server, &c.opt)
			wantErr(t, err, c.status, c.code)
		})
	}
	md := func(ud string) *model.ChangeSeversOsMetadata { return &model.ChangeSeversOsMetadata{UserData: &ud} }
	v2 := []struct {
		name   string
		server string
		opt    model.ChangeServerOsWithCloudInitOption
		status int
		code   string
	}{
		{"image without cloud-init", small, model.ChangeServerOsWithCloudInitOption{Imageid: imgUbuntu, Adminpass: pass}, 400, "Ecs.0007"},
		{"Windows image", large, model.ChangeServerOsWithCloudInitOption{Imageid: imgWindows, Adminpass: pass}, 400, "Ecs.0007"},
		{"min_disk above the system disk", large, model.ChangeServerOsWithCloudInitOption{Imageid: imgCentOSCI, Adminpass: pass}, 400, "Ecs.0007"},
		{"adminpass and keyname", small, model.ChangeServerOsWithCloudInitOption{Imageid: imgUbuntuCI, Adminpass: pass, Keyname: ptr(kp)}, 400, "Ecs.0005"},
		{"neither and no user_data", small, model.ChangeServerOsWithCloudInitOption{Imageid: imgUbuntuCI}, 400, "Ecs.0005"},
		{"bad base64", small, model.ChangeServerOsWithCloudInitOption{Imageid: imgUbuntuCI, Metadata: md("%%%")}, 400, "Ecs.0005"},
		{"oversize user_data", small, model.ChangeServerOsWithCloudInitOption{Imageid: imgUbuntuCI,
			Metadata: md(base64.StdEncoding.EncodeToString(make([]byte, 40<<10)))}, 400, "Ecs.0005"},
		{"bad isAutoPay", small, model.ChangeServerOsWithCloudInitOption{Imageid: imgUbuntuCI, Adminpass: pass, IsAutoPay: ptr("yes")}, 400, "Ecs.0005"},
	}
	for _, c := range v2 {
		t.Run("v2 "+c.name, func(t *testing.T) {
			_, err := tn.changeOSv2(c.server, &c.opt)
			wantErr(t, err, c.status, c.code)
		})
	}
	for _, id := range []string{small, large, running} {
		if s := tn.show(t, id); s.OSEXTSTStaskState != "" || s.Image.Id != imgDebian {
			t.Errorf("server %s: task_state %q image %s after refusals", id, s.OSEXTSTStaskState, s.Image.Id)
		}
	}
}

func (tn *tenant) resetPassword(id, pw string) (*model.ResetServerPasswordResponse, error) {
	rememberSecret(pw)
	return tn.ecs.ResetServerPassword(&model.ResetServerPasswordRequest{ServerId: id,
		Body: &model.ResetServerPasswordRequestBody{ResetPassword: &model.ResetServerPasswordOption{NewPassword: pw,
			IsCheckPassword: ptr(true)}}})
}

func (tn *tenant) resetFlag(t *testing.T, id string) string {
	t.Helper()
	r, err := tn.ecs.ShowResetPasswordFlag(&model.ShowResetPasswordFlagRequest{ServerId: id})
	if err != nil {
		t.Fatalf("ShowResetPasswordFlag %s: %v", id, err)
	}
	return str(r.ResetpwdFlag)
}

// TestResetServerPassword: online through the guest agent on a running
// cloud-init server (no reboot), offline on a stopped server; a running
// server without an agent is refused and its flag says "False".
func TestResetServerPassword(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	ci := tn.newServer(t, serverSpec{image: imgUbuntuCI})
	if f := tn.resetFlag(t, ci); f != "True" {
		t.Errorf("resetpwd_flag of a running cloud-init server = %q, want True", f)
	}
	resp, err := tn.resetPassword(ci, "Online#Reset1")
	if err != nil {
		t.Fatalf("ResetServerPassword online: %v", err)
	}
	if resp.HttpStatusCode != 204 {
		t.Errorf("HTTP %d, want 204", resp.HttpStatusCode)
	}
	tn.wantActive(t, ci)
	ss := d.simServer(t, ci)
	if ss.PasswordSets != 1 || ss.Power != "running" {
		t.Errorf("simulator server: %d online password sets, power %s; want 1, running", ss.PasswordSets, ss.Power)
	}
	wantHash(t, d.disk(t, ss.DiskID).PasswordHash, "Online#Reset1")

	plain := tn.newServer(t, serverSpec{image: imgDebian})
	if f := tn.resetFlag(t, plain); f != "False" {
		t.Errorf("resetpwd_flag of a running server without an agent = %q, want False", f)
	}
	_, err = tn.resetPassword(plain, "NoAgent#Reset1")
	wantErr(t, err, 400, "Ecs.0100")
	tn.wantActive(t, plain)

	tn.stop(t, "SOFT", plain)
	if _, err := tn.resetPassword(plain, "Offline#Reset1"); err != nil {
		t.Fatalf("ResetServerPassword offline: %v", err)
	}
	s := tn.show(t, plain)
	if s.Status != "SHUTOFF" || s.OSEXTSTStaskState != "" {
		t.Errorf("after an offline reset: %s task %q, want SHUTOFF idle", s.Status, s.OSEXTSTStaskState)
	}
	wantHash(t, d.disk(t, systemVolume(t, s)).PasswordHash, "Offline#Reset1")

	// Refusals.
	_, err = tn.resetPassword(ci, "weakweak")
	wantErr(t, err, 400, "Ecs.0011")
	_, err = tn.resetPassword("6b3c7f9e-0000-4000-8000-000000000002", "Passw0rd#33")
	wantErr(t, err, 404, "Ecs.0114")
	_, err = tn.ecs.ShowResetPasswordFlag(&model.ShowResetPasswordFlagRequest{ServerId: "6b3c7f9e-0000-4000-8000-000000000002"})
	wantErr(t, err, 404, "Ecs.0114")
	r := tn.raw(t, rawReq{method: "PUT", path: "/v1/{project_id}/cloudservers/" + ci + "/os-reset-password",
		body: []byte(`{"reset-password":{"is_check_password":true}}`)})
	if r.status != 400 || !strings.Contains(string(r.body), "Ecs.0005") {
		t.Errorf("reset without new_password: HTTP %d %s, want 400 Ecs.0005", r.status, r.body)
	}
	r = tn.raw(t, rawReq{method: "PUT", path: "/v1/{project_id}/cloudservers/" + ci + "/os-reset-password"})
	if r.status != 400 || !strings.Contains(string(r.body), "Common.0002") {
		t.Errorf("reset with an empty body: HTTP %d %s, want 400 Common.0002", r.status, r.body)
	}
}

// TestResetServerPasswordAgentFails: a guest whose agent fails (injected
// fault) gets the job's error, not a 204, and the flag says "False" when
// the agent does not answer.
func TestResetServerPasswordAgentFails(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--faults", "set_password=fail,ping_agent=fail")
	tn := d.main
	id := tn.newServer(t, serverSpec{image: imgUbuntuCI})
	if f := tn.resetFlag(t, id); f != "False" {
		t.Errorf("resetpwd_flag with an agent that does not answer = %q, want False", f)
	}
	_, err := tn.resetPassword(id, "Agent#Fails1")
	wantErr(t, err, 400, "Common.0022")
	tn.wantActive(t, id)
}

// TestCreateServersV11: CreateServers (v1.1) creates pay-per-use servers
// with user data and a key pair (in the seed of a cloud-init image), answers
// job_id and serverIds, and its job carries entities.sub_jobs; prePaid and
// user data on an image without cloud-init are refused.
func TestCreateServersV11(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	kp := uniq("v11")
	key := sshKey(t)
	tn.importKeypair(t, kp, key)
	script := "#!/bin/sh\necho v11 > /root/v11\n"
	server := func(image string) *model.PrePaidServer {
		return &model.PrePaidServer{Name: uniq("v11-"), ImageRef: image, FlavorRef: flavorSmall, Vpcid: "vpc-sdk-suite",
			Nics:       []model.PrePaidServerNic{{SubnetId: ptr("subnet-sdk-suite")}},
			RootVolume: &model.PrePaidServerRootVolume{Volumetype: model.GetPrePaidServerRootVolumeVolumetypeEnum().SSD}}
	}
	post := model.GetPrePaidServerExtendParamChargingModeEnum().POST_PAID
	srv := server(imgUbuntuCI)
	srv.UserData, srv.KeyName, srv.Count = b64(script), ptr(kp), ptr(int32(2))
	srv.Extendparam = &model.PrePaidServerExtendParam{ChargingMode: &post}
	resp, err := tn.ecs.CreateServers(&model.CreateServersRequest{Body: &model.CreateServersRequestBody{Server: srv}})
	if err != nil {
		t.Fatalf("CreateServers: %v", err)
	}
	if resp.ServerIds == nil || len(*resp.ServerIds) != 2 || resp.OrderId != nil {
		t.Fatalf("serverIds %v order_id %v; want 2 ids and no order", resp.ServerIds, resp.OrderId)
	}
	j := tn.waitJobSuccess(t, jobID(t, resp.JobId))
	if j.Entities == nil || j.Entities.SubJobs == nil || len(*j.Entities.SubJobs) != 2 {
		t.Fatalf("create job entities %+v: want 2 sub_jobs", j.Entities)
	}
	subs := *j.Entities.SubJobs
	if subs[0].Entities == nil || str(subs[0].Entities.ServerId) == "" {
		t.Errorf("sub_jobs[0].entities.server_id missing: %+v", subs[0])
	}
	for _, id := range *resp.ServerIds {
		tn.wantActive(t, id)
		ss := d.simServer(t, id)
		if ss.Seed == nil || string(ss.Seed.UserData) != script || !strings.Contains(ss.Seed.AuthorizedKeys, key) {
			t.Errorf("server %s seed %+v: want the user data and the key", id, ss.Seed)
		}
		if tn.show(t, id).KeyName != kp {
			t.Errorf("server %s key_name is not %s", id, kp)
		}
	}

	// adminPass on an image without cloud-init: written from the host side.
	srv = server(imgDebian)
	srv.AdminPass = ptr("V11#Create01")
	rememberSecret("V11#Create01")
	resp, err = tn.ecs.CreateServers(&model.CreateServersRequest{Body: &model.CreateServersRequestBody{Server: srv}})
	if err != nil {
		t.Fatalf("CreateServers with adminPass: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, resp.JobId))
	wantHash(t, d.disk(t, systemVolume(t, tn.show(t, (*resp.ServerIds)[0]))).PasswordHash, "V11#Create01")

	// Refusals.
	pre := model.GetPrePaidServerExtendParamChargingModeEnum().PRE_PAID
	srv = server(imgUbuntuCI)
	srv.Extendparam = &model.PrePaidServerExtendParam{ChargingMode: &pre}
	_, err = tn.ecs.CreateServers(&model.CreateServersRequest{Body: &model.CreateServersRequestBody{Server: srv}})
	if se := wantErr(t, err, 400, "Ecs.0005"); se != nil && !strings.Contains(se.ErrorMessage, "prePaid") {
		t.Errorf("prePaid refusal %q does not name prePaid", se.ErrorMessage)
	}
	srv = server(imgDebian)
	srv.UserData = b64(script)
	_, err = tn.ecs.CreateServers(&model.CreateServersRequest{Body: &model.CreateServersRequestBody{Server: srv}})
	wantErr(t, err, 400, "Ecs.0007")
	srv = server(imgUbuntuCI)
	srv.UserData = ptr("!!not base64!!")
	_, err = tn.ecs.CreateServers(&model.CreateServersRequest{Body: &model.CreateServersRequestBody{Server: srv}})
	wantErr(t, err, 400, "Ecs.0005")
	srv = server(imgUbuntuCI)
	srv.UserData = ptr(base64.StdEncoding.EncodeToString(make([]byte, 32<<10+1)))
	_, err = tn.ecs.CreateServers(&model.CreateServersRequest{Body: &model.CreateServersRequestBody{Server: srv}})
	wantErr(t, err, 400, "Ecs.0005")
}

// TestImagesShowCloudInit: __support_cloudinit and __support_fc_inject
// agree on every image, and the catalog holds Linux images with and
// without cloud-init.
func TestImagesShowCloudInit(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	r := tn.raw(t, rawReq{method: "GET", path: "/v2/cloudimages"})
	var body struct {
		Images []map[string]any `json:"images"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || r.status != 200 {
		t.Fatalf("GET /v2/cloudimages: %d %v %s", r.status, err, r.body)
	}
	seen := map[string]string{}
	for _, im := range body.Images {
		ci, fc := im["__support_cloudinit"], im["__support_fc_inject"]
		if ci != fc || (ci != "true" && ci != "false") {
			t.Errorf("image %v: __support_cloudinit %v, __support_fc_inject %v", im["id"], ci, fc)
		}
		seen[im["id"].(string)] = ci.(string)
	}
	if seen[imgDebian] != "false" || seen[imgUbuntuCI] != "true" || seen[imgCentOSCI] != "true" {
		t.Errorf("cloud-init support %v: want Debian false, the cloud-init images true", seen)
	}
}

// TestChangeOSOneWinner: concurrent changes of OS of one server yield
// exactly one job; the others are refused as busy (501 Ecs.0603), and a
// reinstall meanwhile too.
func TestChangeOSOneWinner(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--faults", "create_disk=delay:1s")
	tn := d.main
	id := tn.newStoppedServer(t, serverSpec{image: imgDebian})
	const n = 20
	jobs := make(chan string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := tn.changeOSv2(id, &model.ChangeServerOsWithCloudInitOption{Imageid: imgUbuntuCI,
				Metadata: &model.ChangeSeversOsMetadata{UserData: b64("#cloud-config\n")}})
			if err != nil {
				errs <- err
				return
			}
			jobs <- str(r.JobId)
		}()
	}
	wg.Wait()
	close(jobs)
	close(errs)
	var won []string
	for j := range jobs {
		won = append(won, j)
	}
	if len(won) != 1 {
		t.Fatalf("%d calls got a job, want exactly 1: %v", len(won), won)
	}
	for err := range errs {
		wantErr(t, err, 501, "Ecs.0603")
	}
	_, err := tn.reinstall(id, withPass("During#Change1"))
	wantErr(t, err, 501, "Ecs.0603")
	tn.waitJobSuccess(t, won[0])
	if s := tn.show(t, id); s.Image.Id != imgUbuntuCI {
		t.Errorf("image %s after the change, want %s", s.Image.Id, imgUbuntuCI)
	}
}

// TestOSFamilyOtherProject: another project's server is not found by any
// call of the family.
func TestOSFamilyOtherProject(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	id := d.main.newStoppedServer(t, serverSpec{image: imgUbuntuCI})
	other := d.newTenant(t)
	_, err := other.reinstallCI(id, &ciOpt{Adminpass: ptr("Other#Project1")})
	wantErr(t, err, 404, "Ecs.0114")
	_, err = other.changeOSv1(id, &model.ChangeServerOsWithoutCloudInitOption{Imageid: imgDebian, Adminpass: ptr("Other#Project1")})
	wantErr(t, err, 404, "Ecs.0114")
	_, err = other.changeOSv2(id, &model.ChangeServerOsWithCloudInitOption{Imageid: imgUbuntuCI, Adminpass: ptr("Other#Project1")})
	wantErr(t, err, 404, "Ecs.0114")
	_, err = other.resetPassword(id, "Other#Project1")
	wantErr(t, err, 404, "Ecs.0114")
	_, err = other.ecs.ShowResetPasswordFlag(&model.ShowResetPasswordFlagRequest{ServerId: id})
	wantErr(t, err, 404, "Ecs.0114")
	if s := d.main.show(t, id); s.Status != "SHUTOFF" || s.OSEXTSTStaskState != "" {
		t.Errorf("server %s: %s task %q after another project's calls", id, s.Status, s.OSEXTSTStaskState)
	}
	if f := d.main.resetFlag(t, id); f != "True" {
		t.Errorf("resetpwd_flag of a stopped cloud-init server = %q, want True (its image has an agent)", f)
	}
}
