package cloud_test

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/password"
)

const (
	ubuntuImage   = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e02" // no cloud-init
	cloudImage    = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e04" // cloud-init
	bigCloudImage = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e05" // cloud-init, min_disk 20, no host-side injection
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// simServer reads the simulator's record of a server.
func (b *bundle) simServer(t *testing.T, id string) sim.ServerState {
	t.Helper()
	st, ok := b.drv.Server(id)
	if !ok {
		t.Fatalf("the simulator knows no server %s", id)
	}
	return st
}

// TestReinstallCloudInitSeedsTheGuest: a v2 reinstall writes no credentials
// into the disk but a new seed (new instance id) with the key, the user
// data and the encryption metadata recorded on the server.
func TestReinstallCloudInitSeedsTheGuest(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	kp, _, err := b.svc.CreateKeypair(ctx, b.caller, cloud.KeypairInput{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	srv := b.server(t, cloudImage, true)
	before := b.simServer(t, srv.ID)
	if before.Seed == nil || before.Seed.InstanceID == "" {
		t.Fatalf("created server has no seed: %+v", before)
	}
	job, err := b.svc.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{CloudInit: true, KeyName: str("k"),
		Metadata: map[string]string{"user_data": b64("#!/bin/sh\ntrue\n"), "__system__encrypted": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess || j.Type != ecs.JobReinstallOS {
		t.Fatalf("job %+v", j)
	}
	after := b.simServer(t, srv.ID)
	if after.Seed == nil || after.Seed.InstanceID == before.Seed.InstanceID || string(after.Seed.UserData) != "#!/bin/sh\ntrue\n" ||
		!strings.Contains(after.Seed.AuthorizedKeys, strings.TrimSpace(kp.PublicKey)) {
		t.Errorf("seed after the v2 reinstall: %+v", after.Seed)
	}
	got, _ := b.svc.GetServer(ctx, b.caller, srv.ID)
	if got.KeyName != "k" || got.Metadata["__system__encrypted"] != "0" || got.UserData != b64("#!/bin/sh\ntrue\n") {
		t.Errorf("server key %q metadata %v user data %q", got.KeyName, got.Metadata, got.UserData)
	}
	creds, err := b.drv.ReadCredentials(ctx, got.SystemVolumeID)
	if err != nil || creds.AuthorizedKeys != "" || creds.PasswordHash != "" {
		t.Errorf("v2 reinstall wrote credentials into the disk: %+v %v", creds, err)
	}
	// The job's params hold the user data sealed, never in clear.
	j, err := b.st.JobGet(ctx, b.caller.ProjectID, job)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(j.Params), b64("#!/bin/sh\ntrue\n")) || strings.Contains(string(j.Params), "#!/bin/sh") {
		t.Errorf("job params carry the user data in clear: %s", j.Params)
	}
}

// TestOSFamilyRules: the refusals of the v2 reinstall and both changes of
// OS that the service decides.
func TestOSFamilyRules(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	if _, _, err := b.svc.CreateKeypair(ctx, b.caller, cloud.KeypairInput{Name: "k"}); err != nil {
		t.Fatal(err)
	}
	plain := b.server(t, linuxImage, true)
	ci := b.server(t, cloudImage, true)
	tooBig := base64.StdEncoding.EncodeToString(make([]byte, cloud.MaxUserData+1))
	exact := base64.StdEncoding.EncodeToString(make([]byte, cloud.MaxUserData))
	reinstall := []struct {
		name   string
		server string
		in     cloud.ReinstallInput
		want   ecs.Code
	}{
		{"v2 neither", ci.ID, cloud.ReinstallInput{CloudInit: true}, ecs.CodeInvalidParam},
		{"v2 both", ci.ID, cloud.ReinstallInput{CloudInit: true, AdminPass: str(goodPass), KeyName: str("k")}, ecs.CodeInvalidParam},
		{"v2 bad base64", ci.ID, cloud.ReinstallInput{CloudInit: true, Metadata: map[string]string{"user_data": "***"}}, ecs.CodeInvalidParam},
		{"v2 oversize", ci.ID, cloud.ReinstallInput{CloudInit: true, Metadata: map[string]string{"user_data": tooBig}}, ecs.CodeInvalidParam},
		{"v2 encrypted without key", ci.ID, cloud.ReinstallInput{CloudInit: true, AdminPass: str(goodPass),
			Metadata: map[string]string{"__system__encrypted": "1"}}, ecs.CodeInvalidParam},
		{"v2 bad cmk id", ci.ID, cloud.ReinstallInput{CloudInit: true, AdminPass: str(goodPass),
			Metadata: map[string]string{"__system__cmkid": "short"}}, ecs.CodeInvalidParam},
		{"v2 image without cloud-init", plain.ID, cloud.ReinstallInput{CloudInit: true, AdminPass: str(goodPass)}, ecs.CodeImageAttributes},
		{"v1 user_data", plain.ID, cloud.ReinstallInput{AdminPass: str(goodPass), Metadata: map[string]string{"user_data": b64("x")}}, ecs.CodeInvalidParam},
	}
	for _, tt := range reinstall {
		if _, err := b.svc.Reinstall(ctx, b.caller, tt.server, tt.in); code(err) != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.want)
		}
	}
	change := []struct {
		name string
		in   cloud.ReinstallInput
		want ecs.Code
	}{
		{"no image", cloud.ReinstallInput{AdminPass: str(goodPass)}, ecs.CodeInvalidParam},
		{"empty image", cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: str("")}, ecs.CodeInvalidParam},
		{"unknown image", cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: str("nope")}, ecs.CodeImageNotFound},
		{"min_ram", cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: str(windowsImage)}, ecs.CodeFlavorNotFitImage},
		{"v1 no host-side injection", cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: str(bigCloudImage)}, ecs.CodeImageAttributes},
		{"v2 min_disk", cloud.ReinstallInput{CloudInit: true, AdminPass: str(goodPass), ImageID: str(bigCloudImage)}, ecs.CodeImageNeedsLargerDisk},
		{"v2 no cloud-init", cloud.ReinstallInput{CloudInit: true, AdminPass: str(goodPass), ImageID: str(ubuntuImage)}, ecs.CodeImageAttributes},
		{"v2 windows", cloud.ReinstallInput{CloudInit: true, AdminPass: str(goodPass), ImageID: str(windowsImage)}, ecs.CodeImageAttributes},
		{"both", cloud.ReinstallInput{AdminPass: str(goodPass), KeyName: str("k"), ImageID: str(ubuntuImage)}, ecs.CodeInvalidParam},
	}
	for _, tt := range change {
		if _, err := b.svc.ChangeOS(ctx, b.caller, plain.ID, tt.in); code(err) != tt.want {
			t.Errorf("change OS, %s: got %v, want %s", tt.name, err, tt.want)
		}
	}
	// 32 KB exactly is accepted.
	job, err := b.svc.Reinstall(ctx, b.caller, ci.ID, cloud.ReinstallInput{CloudInit: true, Metadata: map[string]string{"user_data": exact}})
	if err != nil {
		t.Fatalf("32 KB of user data: %v", err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("job %+v", j)
	}
	if got := b.simServer(t, ci.ID).Seed; got == nil || len(got.UserData) != cloud.MaxUserData {
		t.Errorf("seed user data of %d bytes, want %d", len(got.UserData), cloud.MaxUserData)
	}
}

// TestChangeOSSwapsImage: a v1 change of OS to another image, then a v2 one
// to a cloud-init image and back with v1: the server's image, metadata,
// disk and seed follow.
func TestChangeOSSwapsImage(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	srv := b.server(t, linuxImage, true)
	change := func(in cloud.ReinstallInput) ecs.Server {
		t.Helper()
		job, err := b.svc.ChangeOS(ctx, b.caller, srv.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if j := b.wait(t, job); j.Status != ecs.JobSuccess || j.Type != ecs.JobChangeOS {
			t.Fatalf("job %+v", j)
		}
		s, err := b.svc.GetServer(ctx, b.caller, srv.ID)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := change(cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: str(ubuntuImage)})
	if s.ImageID != ubuntuImage || s.Metadata["image_name"] != "Ubuntu 22.04 server 64bit" || s.Metadata["metering.image_id"] != ubuntuImage {
		t.Errorf("after v1: image %s metadata %v", s.ImageID, s.Metadata)
	}
	creds, err := b.drv.ReadCredentials(ctx, s.SystemVolumeID)
	if err != nil || !password.Verify(creds.PasswordHash, goodPass) {
		t.Errorf("v1 change of OS: disk credentials %+v %v", creds, err)
	}
	if st := b.simServer(t, srv.ID); st.ImageID != ubuntuImage || st.Seed != nil {
		t.Errorf("simulator after v1: %+v", st)
	}
	s = change(cloud.ReinstallInput{CloudInit: true, ImageID: str(cloudImage), Metadata: map[string]string{"user_data": b64("hello")}})
	if st := b.simServer(t, srv.ID); st.ImageID != cloudImage || !st.Agent || st.Seed == nil || string(st.Seed.UserData) != "hello" {
		t.Errorf("simulator after v2: %+v", st)
	}
	if s.Metadata["os_type"] != "Linux" || s.ImageID != cloudImage || s.UserData != b64("hello") {
		t.Errorf("after v2: %v", s.Metadata)
	}
	change(cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: str(linuxImage)})
	if st := b.simServer(t, srv.ID); st.ImageID != linuxImage || st.Agent || st.Seed != nil || st.ImageChanges != 3 {
		t.Errorf("simulator after the change back: %+v", st)
	}
}

// TestChangeOSFailureKeepsOldImage: a change of OS whose credential
// injection fails leaves the server ERROR (reinstall-failed) on its old
// image and disk; a new change of OS then succeeds.
func TestChangeOSFailureKeepsOldImage(t *testing.T) {
	t.Parallel()
	b := setupFaults(t, "apply_credentials=fail:1")
	ctx := context.Background()
	srv := b.server(t, linuxImage, true)
	in := cloud.ReinstallInput{AdminPass: str(goodPass), ImageID: str(ubuntuImage)}
	job, err := b.svc.ChangeOS(ctx, b.caller, srv.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobFail || j.ErrorCode == "" {
		t.Fatalf("job %+v, want FAIL with a code", j)
	}
	got, _ := b.svc.GetServer(ctx, b.caller, srv.ID)
	if got.Status() != "ERROR" || !got.ReinstallFailed || got.ImageID != linuxImage || got.SystemVolumeID != srv.SystemVolumeID {
		t.Errorf("after the failure: %s failed=%v image %s volume %s", got.Status(), got.ReinstallFailed, got.ImageID, got.SystemVolumeID)
	}
	if st := b.simServer(t, srv.ID); st.ImageID != linuxImage || st.DiskID != srv.SystemVolumeID {
		t.Errorf("simulator after the failure: %+v", st)
	}
	job, err = b.svc.ChangeOS(ctx, b.caller, srv.ID, in)
	if err != nil {
		t.Fatalf("retry from ERROR: %v", err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("retry %+v", j)
	}
	if got, _ := b.svc.GetServer(ctx, b.caller, srv.ID); got.Status() != "SHUTOFF" || got.ImageID != ubuntuImage {
		t.Errorf("after the retry: %s image %s", got.Status(), got.ImageID)
	}
}

// TestResetPassword: online on a running cloud-init server, offline on a
// stopped one, refused on a running server without an agent; one winner
// among concurrent calls.
func TestResetPassword(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	ci := b.server(t, cloudImage, false)
	if ok, _, err := b.svc.ResetPasswordFlag(ctx, b.caller, ci.ID); err != nil || !ok {
		t.Errorf("flag of a running cloud-init server: %v %v", ok, err)
	}
	if err := b.svc.ResetPassword(ctx, b.caller, ci.ID, cloud.ResetPasswordInput{NewPassword: goodPass}); err != nil {
		t.Fatalf("online reset: %v", err)
	}
	st := b.simServer(t, ci.ID)
	creds, _ := b.drv.ReadCredentials(ctx, st.DiskID)
	if st.PasswordSets != 1 || st.Power != sim.PowerRunning || !password.Verify(creds.PasswordHash, goodPass) {
		t.Errorf("after the online reset: %+v creds %+v", st, creds)
	}
	got, _ := b.svc.GetServer(ctx, b.caller, ci.ID)
	if got.Status() != "ACTIVE" || got.TaskJobID != "" {
		t.Errorf("after the online reset: %s task job %q", got.Status(), got.TaskJobID)
	}

	plain := b.server(t, linuxImage, false)
	if ok, _, _ := b.svc.ResetPasswordFlag(ctx, b.caller, plain.ID); ok {
		t.Error("flag of a running server without an agent is True")
	}
	if err := b.svc.ResetPassword(ctx, b.caller, plain.ID, cloud.ResetPasswordInput{NewPassword: goodPass}); code(err) != ecs.CodeBadState {
		t.Errorf("running without an agent: %v, want %s", err, ecs.CodeBadState)
	}
	if err := b.svc.ResetPassword(ctx, b.caller, plain.ID, cloud.ResetPasswordInput{NewPassword: "short"}); code(err) != ecs.CodePasswordComplexity {
		t.Errorf("weak password: %v", err)
	}
	stopped := b.server(t, linuxImage, true)
	if err := b.svc.ResetPassword(ctx, b.caller, stopped.ID, cloud.ResetPasswordInput{NewPassword: "Offline-Pass1"}); err != nil {
		t.Fatalf("offline reset: %v", err)
	}
	creds, _ = b.drv.ReadCredentials(ctx, stopped.SystemVolumeID)
	if !password.Verify(creds.PasswordHash, "Offline-Pass1") {
		t.Errorf("offline reset did not write the disk: %+v", creds)
	}

	// Concurrent resets: every call either succeeds or is refused as busy.
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.svc.ResetPassword(ctx, b.caller, ci.ID, cloud.ResetPasswordInput{NewPassword: goodPass})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case code(err) != ecs.CodeTaskRunning:
			t.Errorf("concurrent reset: %v", err)
		}
	}
	if ok == 0 {
		t.Error("no concurrent reset succeeded")
	}
}

// TestResetPasswordCheckFlag: is_check_password false skips the
// complexity rules (three classes) but keeps the limits (length, allowed
// characters); absent or true keeps them all.
func TestResetPasswordCheckFlag(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	stopped := b.server(t, linuxImage, true)
	no, yes := false, true
	reset := func(pw string, check *bool) error {
		return b.svc.ResetPassword(ctx, b.caller, stopped.ID, cloud.ResetPasswordInput{NewPassword: pw, CheckPassword: check})
	}
	for _, check := range []*bool{nil, &yes} {
		if err := reset("simplelowercase", check); code(err) != ecs.CodePasswordComplexity {
			t.Errorf("one class, is_check_password %v: %v, want %s", check, err, ecs.CodePasswordComplexity)
		}
	}
	if err := reset("simplelowercase", &no); err != nil {
		t.Fatalf("one class, is_check_password false: %v", err)
	}
	creds, _ := b.drv.ReadCredentials(ctx, stopped.SystemVolumeID)
	if !password.Verify(creds.PasswordHash, "simplelowercase") {
		t.Errorf("the unchecked password did not reach the disk: %+v", creds)
	}
	for _, pw := range []string{"short", strings.Repeat("a", 27), "has space here", "quote'inside", "ünïcodeünïcode", "semi;colon1"} {
		if err := reset(pw, &no); code(err) != ecs.CodePasswordComplexity {
			t.Errorf("%q with is_check_password false: %v, want %s", pw, err, ecs.CodePasswordComplexity)
		}
	}
}

// TestResetPasswordAgentFailureReachesTheCaller: a job that fails on the
// host (the agent fails) is the call's error, and the server keeps its
// state.
func TestResetPasswordAgentFailureReachesTheCaller(t *testing.T) {
	t.Parallel()
	b := setupFaults(t, "set_password=fail")
	ctx := context.Background()
	ci := b.server(t, cloudImage, false)
	err := b.svc.ResetPassword(ctx, b.caller, ci.ID, cloud.ResetPasswordInput{NewPassword: goodPass})
	if code(err) != ecs.CodeTaskFailed {
		t.Errorf("reset with a failing agent: %v, want %s", err, ecs.CodeTaskFailed)
	}
	got, _ := b.svc.GetServer(ctx, b.caller, ci.ID)
	if got.Status() != "ACTIVE" || got.TaskJobID != "" {
		t.Errorf("after the failed reset: %s task job %q", got.Status(), got.TaskJobID)
	}
}

// TestCreateWithUserData: user data reaches the seed of a cloud-init
// server (credentials too, not the disk); an image without cloud-init
// refuses it.
func TestCreateWithUserData(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	in := cloud.CreateInput{Name: "ud", ImageRef: cloudImage, FlavorRef: "s6.small.1", VPCID: "v", SubnetIDs: []string{"s"},
		VolumeType: "SSD", AdminPass: goodPass, UserData: []byte("#cloud-config\n")}
	job, ids, err := b.svc.CreateServers(ctx, b.caller, in)
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("job %+v", j)
	}
	st := b.simServer(t, ids[0])
	if st.Seed == nil || string(st.Seed.UserData) != "#cloud-config\n" || !password.Verify(st.Seed.PasswordHash, goodPass) || st.Seed.Hostname != "ud" {
		t.Errorf("seed %+v", st.Seed)
	}
	// The user data is sealed, once, in the parent job; the sub-jobs only
	// point at it.
	j, err := b.st.JobGet(ctx, b.caller.ProjectID, job)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j.Params), "sealed_user_data") || strings.Contains(string(j.Params), b64("#cloud-config\n")) {
		t.Errorf("parent job params %s: want the user data sealed", j.Params)
	}
	for _, sj := range j.SubJobs {
		if strings.Contains(string(sj.Params), "sealed_user_data") {
			t.Errorf("sub-job params carry the user data: %s", sj.Params)
		}
	}
	in.ImageRef = linuxImage
	if _, _, err := b.svc.CreateServers(ctx, b.caller, in); code(err) != ecs.CodeImageAttributes {
		t.Errorf("user data on an image without cloud-init: %v", err)
	}
}

// FuzzDecodeUserData: any input is either refused with Ecs.0005 or decoded
// into at most MaxUserData bytes that encode back to the input (line breaks
// and padding aside).
func FuzzDecodeUserData(f *testing.F) {
	for _, s := range []string{"", "eA==", "eA", "IyEvYmluL3NoCg==\n", "@@", "====", "eA==eA==", "\r\n",
		base64.StdEncoding.EncodeToString(make([]byte, cloud.MaxUserData+1))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := cloud.DecodeUserData(s, "user_data")
		if err != nil {
			if code(err) != ecs.CodeInvalidParam {
				t.Fatalf("%q: error %v of code %s", s, err, code(err))
			}
			return
		}
		if len(out) > cloud.MaxUserData {
			t.Fatalf("%q: %d bytes decoded", s, len(out))
		}
		clean := strings.TrimRight(strings.NewReplacer("\n", "", "\r", "").Replace(s), "=")
		if clean == "" {
			if out != nil {
				t.Fatalf("%q: decoded %q from nothing", s, out)
			}
			return
		}
		if back := strings.TrimRight(base64.StdEncoding.EncodeToString(out), "="); back != clean {
			t.Fatalf("%q decodes to %q, which encodes to %q", s, out, back)
		}
	})
}

// TestReinstallV1OnCloudInitImage: the v1 reinstall of a cloud-init server
// writes the password into the disk from the host side and gives the
// server a new seed with the same password and no user data, so that
// cloud-init on the new disk does not bring back the old credentials.
func TestReinstallV1OnCloudInitImage(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	if _, _, err := b.svc.CreateKeypair(ctx, b.caller, cloud.KeypairInput{Name: "old"}); err != nil {
		t.Fatal(err)
	}
	job, ids, err := b.svc.CreateServers(ctx, b.caller, cloud.CreateInput{Name: "ci", ImageRef: cloudImage, FlavorRef: "s6.small.1",
		VPCID: "v", SubnetIDs: []string{"s"}, VolumeType: "SSD", KeyName: "old", UserData: []byte("old user data")})
	if err != nil {
		t.Fatal(err)
	}
	b.wait(t, job)
	job, err = b.svc.ServerAction(ctx, b.caller, cloud.ActionStop, ids, false)
	if err != nil {
		t.Fatal(err)
	}
	b.wait(t, job)
	before := b.simServer(t, ids[0])
	job, err = b.svc.Reinstall(ctx, b.caller, ids[0], cloud.ReinstallInput{AdminPass: str(goodPass)})
	if err != nil {
		t.Fatal(err)
	}
	if j := b.wait(t, job); j.Status != ecs.JobSuccess {
		t.Fatalf("job %+v", j)
	}
	after := b.simServer(t, ids[0])
	creds, err := b.drv.ReadCredentials(ctx, after.DiskID)
	if err != nil || !password.Verify(creds.PasswordHash, goodPass) {
		t.Errorf("v1 reinstall did not write the password from the host: %+v %v", creds, err)
	}
	switch s := after.Seed; {
	case s == nil:
		t.Fatal("no seed after a v1 reinstall of a cloud-init server")
	case s.InstanceID == before.Seed.InstanceID:
		t.Error("instance id unchanged")
	case s.AuthorizedKeys != "" || s.UserData != nil:
		t.Errorf("the new seed keeps the old key or user data: %+v", s)
	case !password.Verify(s.PasswordHash, goodPass):
		t.Errorf("the new seed's password hash %q", s.PasswordHash)
	}
}
