package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

type opt = model.ReinstallServerWithoutCloudInitOption

func withPass(p string) *opt { return &opt{Adminpass: ptr(p)} }

const reinstallPath = "/v1/{project_id}/cloudservers/%s/reinstallos"

func reinstallURL(id string) string { return strings.Replace(reinstallPath, "%s", id, 1) }

// checkReinstallJob checks the fields of a finished, successful reinstall
// job of server id.
func checkReinstallJob(t *testing.T, tn *tenant, j *model.ShowJobResponse, jobID, id string) {
	t.Helper()
	if str(j.JobId) != jobID || str(j.JobType) == "" || jobStatus(j) != "SUCCESS" {
		t.Errorf("job_id %q job_type %q status %q; want %q, a type, SUCCESS", str(j.JobId), str(j.JobType), jobStatus(j), jobID)
	}
	begin, err1 := time.Parse(time.RFC3339Nano, str(j.BeginTime))
	end, err2 := time.Parse(time.RFC3339Nano, str(j.EndTime))
	if err1 != nil || err2 != nil || end.Before(begin) {
		t.Errorf("begin_time %q end_time %q: want ISO-8601 UTC times, end >= begin", str(j.BeginTime), str(j.EndTime))
	}
	if j.Entities == nil || str(j.Entities.ServerId) != id {
		t.Errorf("entities %+v, want server_id %s", j.Entities, id)
	}
	if j.ErrorCode != nil || j.FailReason != nil {
		t.Errorf("error_code %q fail_reason %q, want null", str(j.ErrorCode), str(j.FailReason))
	}
	r := tn.raw(t, rawReq{method: "GET", path: "/v1/{project_id}/jobs/" + jobID})
	var wire map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &wire); err != nil {
		t.Fatalf("raw job: %v %s", err, r.body)
	}
	for _, k := range []string{"error_code", "fail_reason"} {
		if v, ok := wire[k]; !ok || string(v) != "null" {
			t.Errorf("raw job %s = %s, want null on success", k, v)
		}
	}
}

// TestReinstallBodyValidation: every malformed body is refused with 400 and
// starts nothing.
func TestReinstallBodyValidation(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	id := tn.newStoppedServer(t, serverSpec{})
	vol := systemVolume(t, tn.show(t, id))
	key := uniq("k")
	tn.importKeypair(t, key, sshKey(t))

	sdkCases := []struct {
		name  string
		body  *model.ReinstallServerWithoutCloudInitRequestBody
		codes []string
	}{
		{"empty body", nil, []string{"Common.0002", "Ecs.0005"}},
		{"os-reinstall null", &model.ReinstallServerWithoutCloudInitRequestBody{}, []string{"Common.0002", "Ecs.0005"}},
		{"neither adminpass nor keyname", &model.ReinstallServerWithoutCloudInitRequestBody{OsReinstall: &opt{}}, []string{"Ecs.0005"}},
		{"only userid", &model.ReinstallServerWithoutCloudInitRequestBody{OsReinstall: &opt{Userid: ptr(tn.cred.UserID)}}, []string{"Ecs.0005"}},
		{"only mode", &model.ReinstallServerWithoutCloudInitRequestBody{OsReinstall: &opt{Mode: ptr("withStopServer")}}, []string{"Ecs.0005"}},
		{"both adminpass and keyname", &model.ReinstallServerWithoutCloudInitRequestBody{OsReinstall: &opt{Adminpass: ptr("Both#Pass123"), Keyname: ptr(key)}}, []string{"Ecs.0005"}},
		{"unknown mode", &model.ReinstallServerWithoutCloudInitRequestBody{OsReinstall: &opt{Adminpass: ptr("Mode#Pass123"), Mode: ptr("withoutStopServer")}}, []string{"Ecs.0005"}},
	}
	rawCases := map[string]struct {
		body  string
		codes []string
	}{
		"not JSON":         {`adminpass=Abcdef#123`, []string{"Ecs.0005"}},
		"truncated JSON":   {`{"os-reinstall":{"adminpass":"Trunc#Pass1"`, []string{"Ecs.0005"}},
		"trailing garbage": {`{"os-reinstall":{"adminpass":"Trail#Pass1"}} {"x":1}`, []string{"Ecs.0005"}},
		"array":            {`[{"os-reinstall":{"adminpass":"Array#Pass1"}}]`, []string{"Ecs.0005"}},
		"os-reinstall str": {`{"os-reinstall":"Abcdef#123"}`, []string{"Ecs.0005"}},
		"adminpass number": {`{"os-reinstall":{"adminpass":12345678}}`, []string{"Ecs.0005"}},
		"adminpass object": {`{"os-reinstall":{"adminpass":{"v":"Obj#Pass123"}}}`, []string{"Ecs.0005"}},
		"keyname bool":     {`{"os-reinstall":{"keyname":true}}`, []string{"Ecs.0005"}},
		"mode number":      {`{"os-reinstall":{"adminpass":"Mnum#Pass1","mode":1}}`, []string{"Ecs.0005"}},
		"userid number":    {`{"os-reinstall":{"keyname":"` + key + `","userid":7}}`, []string{"Ecs.0005"}},
		"metadata string":  {`{"os-reinstall":{"adminpass":"Meta#Pass1","metadata":"x"}}`, []string{"Ecs.0005"}},
		"top-level null":   {`null`, []string{"Common.0002", "Ecs.0005"}},
		"invalid UTF-8":    {"{\"os-reinstall\":{\"adminpass\":\"Ab\xff#Pass1\"}}", []string{"Ecs.0005", "Ecs.0011"}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, c := range sdkCases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				_, err := tn.ecs.ReinstallServerWithoutCloudInit(&model.ReinstallServerWithoutCloudInitRequest{ServerId: id, Body: c.body})
				wantErr(t, err, 400, c.codes...)
			})
		}
		for name, c := range rawCases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := tn.raw(t, rawReq{method: "POST", path: reinstallURL(id), body: []byte(c.body)})
				wantRawErr(t, r, 400, c.codes...)
			})
		}
	})
	s := tn.show(t, id)
	if s.Status != "SHUTOFF" || systemVolume(t, s) != vol {
		t.Errorf("after refused reinstalls the server is %s with volume %s; want SHUTOFF with %s", s.Status, systemVolume(t, s), vol)
	}
}

func TestReinstallBodyTooLarge(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	id := tn.newStoppedServer(t, serverSpec{})

	t.Run("signed 256 KiB body", func(t *testing.T) {
		t.Parallel()
		body := []byte(`{"os-reinstall":{"adminpass":"Large#Pass1","metadata":{"pad":"` + strings.Repeat("x", 256<<10) + `"}}}`)
		r := tn.raw(t, rawReq{method: "POST", path: reinstallURL(id), body: body, timeout: time.Minute})
		if r.status < 400 || r.status > 499 || r.status == 401 {
			t.Errorf("256 KiB body: HTTP %d %s; want a 4xx refusal other than 401", r.status, r.body)
		}
	})
	t.Run("endless body is not read whole", func(t *testing.T) {
		t.Parallel()
		// A body that never ends: only a server that stops reading at its
		// limit can answer at all (the client gives up after a minute, a
		// bound on the hang of a server that reads on, generous for a
		// loaded machine).
		r := tn.raw(t, rawReq{method: "POST", path: reinstallURL(id), stream: endless{}, timeout: time.Minute})
		if r.status < 400 || r.status > 499 {
			t.Errorf("endless body: HTTP %d %s; want 4xx", r.status, r.body)
		}
	})
}

// endless is an io.Reader of JSON-looking bytes that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	if len(p) > 0 {
		p[0] = '['
	}
	return len(p), nil
}

var _ io.Reader = endless{}

func TestReinstallUnknownServer(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	_, err := tn.reinstall("9b7e5a0c-0000-4000-8000-"+uniq("0000"), withPass("Unknown#Srv1"))
	wantErr(t, err, 404, "Ecs.0114")
}

func TestReinstallOtherProjectServer(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	a := d.main
	b := d.newTenant(t)
	id := a.newStoppedServer(t, serverSpec{})
	vol := systemVolume(t, a.show(t, id))
	_, err := b.reinstall(id, withPass("Other#Proj12"))
	wantErr(t, err, 404, "Ecs.0114")
	s := a.show(t, id)
	if s.Status != "SHUTOFF" || systemVolume(t, s) != vol {
		t.Errorf("another project's reinstall changed the server: %s %s", s.Status, systemVolume(t, s))
	}
}

func TestReinstallKeypairRules(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	other := d.newTenant(t)
	initial := uniq("init")
	tn.importKeypair(t, initial, sshKey(t))
	id := tn.newStoppedServer(t, serverSpec{keyName: initial})
	own := uniq("own")
	pub := sshKey(t)
	tn.importKeypair(t, own, pub)
	foreign := uniq("foreign")
	other.importKeypair(t, foreign, sshKey(t))

	t.Run("refused", func(t *testing.T) {
		for name, o := range map[string]*opt{
			"unknown keyname":                 {Keyname: ptr(uniq("missing"))},
			"another project's keyname":       {Keyname: ptr(foreign)},
			"another project's key with user": {Keyname: ptr(foreign), Userid: ptr(other.cred.UserID)},
			"own keyname, another user's id":  {Keyname: ptr(own), Userid: ptr(other.cred.UserID)},
			"own keyname, unknown user id":    {Keyname: ptr(own), Userid: ptr(uniq("user"))},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				_, err := tn.reinstall(id, o)
				wantErr(t, err, 400, "Ecs.0314")
			})
		}
	})

	// With the caller's own user id it works, and the key lands on the disk.
	old := systemVolume(t, tn.show(t, id))
	jobResp, err := tn.reinstall(id, &opt{Keyname: ptr(own), Userid: ptr(tn.cred.UserID)})
	if err != nil {
		t.Fatalf("reinstall with keyname and own userid: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, jobResp.JobId))
	s := tn.show(t, id)
	if s.KeyName != own || s.Status != "SHUTOFF" {
		t.Errorf("after reinstall: key_name %q status %s, want %q SHUTOFF", s.KeyName, s.Status, own)
	}
	vol := systemVolume(t, s)
	if vol == old {
		t.Errorf("system volume unchanged (%s)", vol)
	}
	if disk := d.disk(t, vol); !strings.Contains(disk.AuthorizedKeys, strings.Join(strings.Fields(pub)[:2], " ")) {
		t.Errorf("authorized_keys %q does not hold the key pair's public key %q", disk.AuthorizedKeys, pub)
	}
	d.wantDiskGone(t, old)

	// userid is optional: the caller's own key pair by name alone.
	second := uniq("second")
	pub2 := sshKey(t)
	tn.importKeypair(t, second, pub2)
	tn.reinstallOK(t, id, &opt{Keyname: ptr(second)})
	s = tn.show(t, id)
	if s.KeyName != second {
		t.Errorf("after reinstall with keyname only: key_name %q, want %q", s.KeyName, second)
	}
	if disk := d.disk(t, systemVolume(t, s)); !strings.Contains(disk.AuthorizedKeys, strings.Join(strings.Fields(pub2)[:2], " ")) ||
		strings.Contains(disk.AuthorizedKeys, strings.Fields(pub)[1]) {
		t.Errorf("authorized_keys %q, want only the new key pair's public key", disk.AuthorizedKeys)
	}
}

func TestReinstallShutoffWithPassword(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	cat := tn.catalog(t)
	id := tn.newStoppedServer(t, serverSpec{})
	before := tn.show(t, id)
	old := systemVolume(t, before)
	const pass = "Reinstall#2024"
	resp, err := tn.reinstall(id, withPass(pass))
	if err != nil {
		t.Fatalf("reinstall: %v", err)
	}
	if resp.HttpStatusCode != 200 {
		t.Errorf("HTTP %d, want 200", resp.HttpStatusCode)
	}
	jid := jobID(t, resp.JobId)
	j := tn.waitJobSuccess(t, jid)
	checkReinstallJob(t, tn, j, jid, id)

	s := tn.show(t, id)
	if s.Status != "SHUTOFF" || s.OSEXTSTStaskState != "" || s.OSEXTSTSpowerState != 4 {
		t.Errorf("after reinstall: status %s task_state %q power_state %d; want SHUTOFF, null, 4", s.Status, s.OSEXTSTStaskState, s.OSEXTSTSpowerState)
	}
	if s.Image == nil || s.Image.Id != cat.linuxImage {
		t.Errorf("image changed to %+v", s.Image)
	}
	vol := systemVolume(t, s)
	if vol == old {
		t.Fatalf("system volume unchanged (%s); want a new one", vol)
	}
	disk := d.disk(t, vol)
	if disk.ImageID != cat.linuxImage || disk.AttachedTo != id {
		t.Errorf("new disk %+v, want image %s attached to %s", disk, cat.linuxImage, id)
	}
	wantHash(t, disk.PasswordHash, pass)
	d.wantDiskGone(t, old)
}

func TestReinstallActiveWithoutMode(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	id := tn.newServer(t, serverSpec{})
	_, err := tn.reinstall(id, withPass("Active#Pass1"))
	wantErr(t, err, 400, "Ecs.0100")
	tn.wantActive(t, id)
}

func TestReinstallActiveWithStopServer(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	id := tn.newServer(t, serverSpec{})
	old := systemVolume(t, tn.show(t, id))
	const pass = "WithStop#Pass1"
	tn.reinstallOK(t, id, &opt{Adminpass: ptr(pass), Mode: ptr("withStopServer")})
	tn.wantActive(t, id)
	vol := systemVolume(t, tn.show(t, id))
	if vol == old {
		t.Fatalf("system volume unchanged (%s)", vol)
	}
	wantHash(t, d.disk(t, vol).PasswordHash, pass)
	d.wantDiskGone(t, old)
}

func TestReinstallPasswordRules(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	id := tn.newStoppedServer(t, serverSpec{})
	bad := map[string]string{
		"7 characters":          "Ab1#xyz",
		"27 characters":         "Abcdefghij1#Abcdefghij1#Abc",
		"space":                 "Abcdef12 #x",
		"ampersand":             "Abcdef12&x",
		"parenthesis":           "Abcdef12(x",
		"angle bracket":         "Abcdef12<x",
		"quote":                 `Abcdef12"x`,
		"backslash":             `Abcdef12\x`,
		"non-ASCII letter":      "Abcdéf12#x",
		"tab":                   "Abcdef12\tx",
		"lower and digits":      "abcdefgh12",
		"upper and special":     "ABCDEFGH!!",
		"lower and special":     "abcdefgh#$",
		"digits and special":    "12345678#$",
		"lower only":            "abcdefghijk",
		"upper and lower only":  "AbcdefGhijk",
		"28 chars all classes":  "Aa1#Aa1#Aa1#Aa1#Aa1#Aa1#Aa1#",
		"8 chars with bad char": "Ab1#Ab1&",
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := tn.reinstall(id, withPass(p))
			if se := wantErr(t, err, 400, "Ecs.0011"); se != nil && strings.Contains(se.ErrorMessage, p) {
				t.Errorf("message %q echoes the password", se.ErrorMessage)
			}
		})
	}
}

func TestReinstallValidPasswords(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	id := tn.newStoppedServer(t, serverSpec{})
	for _, p := range []string{
		"Aa1#Aa1#",                   // 8, the minimum
		"Aa1#Aa1#Aa1#Aa1#Aa1#Aa1#Aa", // 26, the maximum
		"Aa1!@$%^-_=+[{}]:,./?~#*",   // every allowed special character
		"Abcdefgh12",                 // upper, lower, digit
		"abcdef1!",                   // lower, digit, special
		"ABCDEF1~",                   // upper, digit, special
		"Abcdefg*",                   // upper, lower, special
	} {
		tn.reinstallOK(t, id, withPass(p))
		wantHash(t, d.disk(t, systemVolume(t, tn.show(t, id))).PasswordHash, p)
	}
}

func TestReinstallWindowsPasswordRules(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	cat := tn.catalog(t)
	win := tn.newStoppedServer(t, serverSpec{image: cat.windowsImage})
	if os := tn.show(t, win).Metadata["os_type"]; os != "Windows" {
		t.Errorf("Windows server metadata.os_type %q, want Windows", os)
	}
	windowsOnly := map[string]string{
		"contains administrator":       "Administrator1!",
		"contains it in another case":  "aDMINISTRATOR9#",
		"contains it reversed":         "Xrotartsinimda1",
		"adm run":                      "Kq9!adm-Zx",
		"STR run (case-insensitive)":   "Kq9!STR-Zx",
		"tor run at the end":           "Kq9!-Zxtor",
		"nis run (middle of the name)": "Kq9!nis-Zx",
	}
	t.Run("refused on Windows", func(t *testing.T) {
		for name, p := range windowsOnly {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				_, err := tn.reinstall(win, withPass(p))
				if se := wantErr(t, err, 400, "Ecs.0011"); se != nil && strings.Contains(se.ErrorMessage, p) {
					t.Errorf("message %q echoes the password", se.ErrorMessage)
				}
			})
		}
	})
	// A run of two characters of the name is allowed on Windows.
	const winPass = "Kq9!ad-Zxw"
	tn.reinstallOK(t, win, withPass(winPass))
	wantHash(t, d.disk(t, systemVolume(t, tn.show(t, win))).PasswordHash, winPass)

	// The Windows-only rules do not apply to Linux.
	linux := tn.newStoppedServer(t, serverSpec{})
	for _, p := range windowsOnly {
		tn.reinstallOK(t, linux, withPass(p))
		wantHash(t, d.disk(t, systemVolume(t, tn.show(t, linux))).PasswordHash, p)
	}
}

// TestReinstallFailureAndRetry: with the first apply_credentials failing,
// the reinstall job FAILs, the server goes ERROR keeping its old disk, and
// a second reinstall from ERROR succeeds.
func TestReinstallFailureAndRetry(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--sim-faults", "apply_credentials=fail:1")
	tn := d.main
	resp := tn.createServers(t, serverSpec{})
	id := (*resp.ServerIds)[0]
	if j := tn.waitJob(t, *resp.JobId); jobStatus(j) != "SUCCESS" {
		t.Fatalf("create job (no adminPass, no key) ended %s (%s: %s); it must not consume the apply_credentials fault",
			jobStatus(j), str(j.ErrorCode), str(j.FailReason))
	}
	tn.stop(t, "SOFT", id)
	old := systemVolume(t, tn.show(t, id))

	const pass1 = "FirstTry#123"
	r1, err := tn.reinstall(id, withPass(pass1))
	if err != nil {
		t.Fatalf("first reinstall: %v", err)
	}
	j := tn.waitJob(t, jobID(t, r1.JobId))
	if jobStatus(j) != "FAIL" {
		t.Fatalf("first reinstall job ended %s, want FAIL", jobStatus(j))
	}
	if str(j.ErrorCode) == "" || j.ErrorCode == nil || j.FailReason == nil || *j.FailReason == "" {
		t.Errorf("failed job error_code %q fail_reason %q, want both non-empty", str(j.ErrorCode), str(j.FailReason))
	}
	if strings.Contains(str(j.FailReason), pass1) {
		t.Errorf("fail_reason echoes the password")
	}
	s := tn.show(t, id)
	if s.Status != "ERROR" || s.OSEXTSTStaskState != "" {
		t.Errorf("after the failed reinstall: status %s task_state %q, want ERROR null", s.Status, s.OSEXTSTStaskState)
	}
	if v := systemVolume(t, s); v != old {
		t.Errorf("after the failed reinstall the system volume is %s, want the old %s", v, old)
	}
	if disk := d.disk(t, old); disk.AttachedTo != id {
		t.Errorf("old disk %+v no longer attached to %s", disk, id)
	}

	const pass2 = "SecondTry#456"
	r2, err := tn.reinstall(id, withPass(pass2))
	if err != nil {
		t.Fatalf("reinstall from ERROR: %v", err)
	}
	jid := jobID(t, r2.JobId)
	checkReinstallJob(t, tn, tn.waitJobSuccess(t, jid), jid, id)
	s = tn.show(t, id)
	if s.Status != "SHUTOFF" {
		t.Errorf("after the retried reinstall: status %s, want SHUTOFF", s.Status)
	}
	vol := systemVolume(t, s)
	if vol == old {
		t.Fatalf("system volume unchanged after the retry")
	}
	wantHash(t, d.disk(t, vol).PasswordHash, pass2)
	d.wantDiskGone(t, old)
}

// TestSlowReinstall runs on a daemon whose every simulated step takes
// 300 ms, so that a reinstall is observably in progress.
func TestSlowReinstall(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--sim-latency", "300ms")
	tn := d.main

	t.Run("in progress", func(t *testing.T) {
		t.Parallel()
		id := tn.newStoppedServer(t, serverSpec{})
		resp, err := tn.reinstall(id, withPass("Progress#123"))
		if err != nil {
			t.Fatalf("reinstall: %v", err)
		}
		jid := jobID(t, resp.JobId)

		s := tn.show(t, id)
		if s.Status != "REBUILD" || rebuildStep[s.OSEXTSTStaskState] == 0 {
			t.Errorf("right after the reinstall was accepted: status %s task_state %q, want REBUILD with a rebuild task_state", s.Status, s.OSEXTSTStaskState)
		}
		_, err = tn.reinstall(id, withPass("Second#1234"))
		wantErr(t, err, 501, "Ecs.0603")
		_, err = tn.ecs.BatchStartServers(&model.BatchStartServersRequest{Body: &model.BatchStartServersRequestBody{
			OsStart: &model.BatchStartServersOption{Servers: serverIDs([]string{id})}}})
		wantRefused(t, "start", err)
		hard := model.GetBatchStopServersOptionTypeEnum().HARD
		_, err = tn.ecs.BatchStopServers(&model.BatchStopServersRequest{Body: &model.BatchStopServersRequestBody{
			OsStop: &model.BatchStopServersOption{Servers: serverIDs([]string{id}), Type: &hard}}})
		wantRefused(t, "stop", err)
		_, err = tn.ecs.DeleteServers(&model.DeleteServersRequest{Body: &model.DeleteServersRequestBody{
			Servers: serverIDs([]string{id})}})
		wantRefused(t, "delete", err)

		// Watch the job and the server until the job ends.
		states := []string{s.OSEXTSTStaskState}
		sawRunning := false
		deadline := time.Now().Add(jobTimeout)
		for {
			// The server first, then the job: the job ends in the same
			// commit that ends the server's task, so a job still running
			// after the server was read means the server was mid-task.
			s := tn.show(t, id)
			j, err := tn.ecs.ShowJob(&model.ShowJobRequest{JobId: jid})
			if err != nil {
				t.Fatalf("ShowJob: %v", err)
			}
			st := jobStatus(j)
			if st == "SUCCESS" || st == "FAIL" {
				if st != "SUCCESS" {
					t.Fatalf("job ended %s: %s %s", st, str(j.ErrorCode), str(j.FailReason))
				}
				break
			}
			sawRunning = sawRunning || st == "RUNNING"
			if s.Status != "REBUILD" || rebuildStep[s.OSEXTSTStaskState] == 0 {
				t.Errorf("while the job is %s: status %s task_state %q, want REBUILD with a rebuild task_state", st, s.Status, s.OSEXTSTStaskState)
			}
			if len(states) == 0 || states[len(states)-1] != s.OSEXTSTStaskState {
				states = append(states, s.OSEXTSTStaskState)
			}
			if time.Now().After(deadline) {
				t.Fatalf("job still %s after %v", st, jobTimeout)
			}
			time.Sleep(pollEvery)
		}
		if len(states) < 2 {
			t.Errorf("saw only task states %v during a job of 300 ms steps; want the rebuild states to progress", states)
		}
		if !sawRunning {
			t.Errorf("never saw the job RUNNING (task states seen: %v)", states)
		}
		for i := 1; i < len(states); i++ {
			if rebuildStep[states[i]] < rebuildStep[states[i-1]] {
				t.Errorf("task_state went backwards: %v; want rebuilding → rebuild_block_device_mapping → rebuild_spawning", states)
			}
		}
		t.Logf("task states observed: %v", states)
		s = tn.show(t, id)
		if s.Status != "SHUTOFF" || s.OSEXTSTStaskState != "" {
			t.Errorf("after the job: %s %q, want SHUTOFF null", s.Status, s.OSEXTSTStaskState)
		}
	})
}

// TestConcurrentReinstall: 50 simultaneous reinstalls of one server yield
// exactly one job. The daemon delays apply_credentials by 3 s so that the
// job outlives all 50 calls even on a loaded machine.
func TestConcurrentReinstall(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--sim-faults", "apply_credentials=delay:3s")
	tn := d.main
	id := tn.newStoppedServer(t, serverSpec{})
	const n = 50
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		jobs  []string
		other []string
	)
	startLine := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			resp, err := tn.reinstall(id, withPass("Concurrent#50"))
			mu.Lock()
			defer mu.Unlock()
			var se *sdkerr.ServiceResponseError
			switch {
			case err == nil && resp.JobId != nil && *resp.JobId != "":
				jobs = append(jobs, *resp.JobId)
			case errors.As(err, &se) && (se.ErrorCode == "Ecs.0603" && se.StatusCode == 501 || se.ErrorCode == "Ecs.0100" && se.StatusCode == 400):
			default:
				other = append(other, errString(resp, err))
			}
		}()
	}
	close(startLine)
	wg.Wait()
	if len(jobs) != 1 {
		t.Errorf("%d of %d concurrent reinstalls got a job_id, want exactly 1: %v", len(jobs), n, jobs)
	}
	if len(other) > 0 {
		t.Errorf("%d answers were neither a job nor Ecs.0603/Ecs.0100: %v", len(other), other)
	}
	if len(jobs) == 0 {
		t.FailNow()
	}
	j := tn.waitJobSuccess(t, jobs[0])
	checkReinstallJob(t, tn, j, jobs[0], id)
	wantHash(t, d.disk(t, systemVolume(t, tn.show(t, id))).PasswordHash, "Concurrent#50")
}

// rebuildStep orders the reinstall task states (0: not a rebuild state).
var rebuildStep = map[string]int{"rebuilding": 1, "rebuild_block_device_mapping": 2, "rebuild_spawning": 3}

// wantRefused asserts that an operation on a server under reinstall was
// refused with an HTTP error.
func wantRefused(t *testing.T, op string, err error) {
	t.Helper()
	var se *sdkerr.ServiceResponseError
	if !errors.As(err, &se) {
		t.Errorf("%s during a reinstall: %v; want an HTTP 4xx/5xx refusal", op, err)
		return
	}
	if se.StatusCode < 400 || se.ErrorCode == "" {
		t.Errorf("%s during a reinstall: HTTP %d %q", op, se.StatusCode, se.ErrorCode)
	}
}

func errString(resp *model.ReinstallServerWithoutCloudInitResponse, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("HTTP %d without job_id", resp.HttpStatusCode)
}
