package api_test

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestOSFamilyBodies: the bodies of the v2 reinstall, both changes of OS,
// the password reset and the v1.1 create are parsed strictly and refused
// with the right code before anything runs.
func TestOSFamilyBodies(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	v2 := "/v2/" + e.cred.ProjectID
	big := base64.StdEncoding.EncodeToString(make([]byte, 32<<10+1))
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"v2 reinstall empty", "POST", v2 + "/cloudservers/s/reinstallos", "", 400, "Common.0002"},
		{"v2 reinstall null option", "POST", v2 + "/cloudservers/s/reinstallos", `{"os-reinstall":null}`, 400, "Ecs.0005"},
		{"v2 reinstall neither", "POST", v2 + "/cloudservers/s/reinstallos", `{"os-reinstall":{}}`, 400, "Ecs.0005"},
		{"v2 reinstall metadata not strings", "POST", v2 + "/cloudservers/s/reinstallos", `{"os-reinstall":{"metadata":{"user_data":1}}}`, 400, "Ecs.0005"},
		{"v2 reinstall bad base64", "POST", v2 + "/cloudservers/s/reinstallos", `{"os-reinstall":{"metadata":{"user_data":"@@"}}}`, 400, "Ecs.0005"},
		{"v2 reinstall oversize", "POST", v2 + "/cloudservers/s/reinstallos", `{"os-reinstall":{"metadata":{"user_data":"` + big + `"}}}`, 400, "Ecs.0005"},
		{"v2 reinstall unknown server", "POST", v2 + "/cloudservers/s/reinstallos", `{"os-reinstall":{"metadata":{"user_data":"eA=="}}}`, 404, "Ecs.0114"},
		{"v1 changeos empty", "POST", p + "/cloudservers/s/changeos", "", 400, "Common.0002"},
		{"v1 changeos no option", "POST", p + "/cloudservers/s/changeos", `{}`, 400, "Ecs.0005"},
		{"v1 changeos no imageid", "POST", p + "/cloudservers/s/changeos", `{"os-change":{"adminpass":"Good-Pass123"}}`, 400, "Ecs.0005"},
		{"v1 changeos imageid not a string", "POST", p + "/cloudservers/s/changeos", `{"os-change":{"imageid":5}}`, 400, "Ecs.0005"},
		{"v1 changeos bad isAutoPay", "POST", p + "/cloudservers/s/changeos", `{"os-change":{"imageid":"i","adminpass":"Good-Pass123","isAutoPay":"maybe"}}`, 400, "Ecs.0005"},
		{"v1 changeos unknown server", "POST", p + "/cloudservers/s/changeos", `{"os-change":{"imageid":"i","adminpass":"Good-Pass123","isAutoPay":"true"}}`, 404, "Ecs.0114"},
		{"v2 changeos user_data only, unknown server", "POST", v2 + "/cloudservers/s/changeos", `{"os-change":{"imageid":"i","metadata":{"user_data":"eA=="}}}`, 404, "Ecs.0114"},
		{"reset empty", "PUT", p + "/cloudservers/s/os-reset-password", "", 400, "Common.0002"},
		{"reset no option", "PUT", p + "/cloudservers/s/os-reset-password", `{}`, 400, "Ecs.0005"},
		{"reset no password", "PUT", p + "/cloudservers/s/os-reset-password", `{"reset-password":{"is_check_password":false}}`, 400, "Ecs.0005"},
		{"reset check not bool", "PUT", p + "/cloudservers/s/os-reset-password", `{"reset-password":{"new_password":"Good-Pass123","is_check_password":"yes"}}`, 400, "Ecs.0005"},
		{"reset unknown server", "PUT", p + "/cloudservers/s/os-reset-password", `{"reset-password":{"new_password":"Good-Pass123"}}`, 404, "Ecs.0114"},
		{"flag unknown server", "GET", p + "/cloudservers/s/os-resetpwd-flag", "", 404, "Ecs.0114"},
		{"reset by POST is no API", "POST", p + "/cloudservers/s/os-reset-password", `{}`, 404, "APIGW.0101"},
		{"v1.1 create prePaid", "POST", "/v1.1/" + e.cred.ProjectID + "/cloudservers", createBody(`"extendparam":{"chargingMode":"prePaid"}`), 400, "Ecs.0005"},
		{"v1.1 create prePaid as 1", "POST", "/v1.1/" + e.cred.ProjectID + "/cloudservers", createBody(`"extendparam":{"chargingMode":1}`), 400, "Ecs.0005"},
		{"v1.1 create bad mode", "POST", "/v1.1/" + e.cred.ProjectID + "/cloudservers", createBody(`"extendparam":{"chargingMode":{}}`), 400, "Ecs.0005"},
		{"v1.1 create bad user_data", "POST", "/v1.1/" + e.cred.ProjectID + "/cloudservers", createBody(`"user_data":"%%"`), 400, "Ecs.0005"},
		{"v1.1 create user_data without cloud-init", "POST", "/v1.1/" + e.cred.ProjectID + "/cloudservers", createBody(`"user_data":"eA=="`), 400, "Ecs.0007"},
	}
	for _, tt := range tests {
		r := e.do(t, tt.method, tt.path, tt.body, true)
		if r.status != tt.status || r.code() != tt.code {
			t.Errorf("%s: %d %q, want %d %q (%v)", tt.name, r.status, r.code(), tt.status, tt.code, r.body)
		}
	}
}

// createBody is a create body on the Debian image (no cloud-init) with
// extra fields in server.
func createBody(extra string) string {
	return `{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01","flavorRef":"s6.small.1","vpcid":"v",
		"nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"},` + extra + `}}`
}

// TestCreateV11AndSubJobs: the v1.1 create answers job_id and serverIds
// (no order_id), postPaid or 0 is accepted, and the batch job always shows
// entities.sub_jobs.
func TestCreateV11AndSubJobs(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, mode := range []string{`"postPaid"`, `0`, `"0"`, `null`} {
		r := e.do(t, "POST", "/v1.1/"+e.cred.ProjectID+"/cloudservers", createBody(`"extendparam":{"chargingMode":`+mode+`}`), true)
		if r.status != 200 {
			t.Fatalf("chargingMode %s: %d %v", mode, r.status, r.body)
		}
		if _, ok := r.body["order_id"]; ok {
			t.Errorf("chargingMode %s: order_id in %v", mode, r.body)
		}
		ids, _ := r.body["serverIds"].([]any)
		if len(ids) != 1 {
			t.Fatalf("serverIds %v", r.body["serverIds"])
		}
		j := e.do(t, "GET", "/v1/"+e.cred.ProjectID+"/jobs/"+r.body["job_id"].(string), "", true).body
		subs, ok := j["entities"].(map[string]any)["sub_jobs"].([]any)
		if !ok || len(subs) != 1 {
			t.Fatalf("entities %v: want sub_jobs with one sub-job", j["entities"])
		}
		if sid := subs[0].(map[string]any)["entities"].(map[string]any)["server_id"]; sid != ids[0] {
			t.Errorf("sub_jobs[0].entities.server_id %v, want %v", sid, ids[0])
		}
	}
}

// TestImagesShowFCInject: __support_fc_inject follows __support_cloudinit.
func TestImagesShowFCInject(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.do(t, "GET", "/v2/cloudimages", "", true)
	imgs, _ := r.body["images"].([]any)
	ci := 0
	for _, i := range imgs {
		m := i.(map[string]any)
		if m["__support_cloudinit"] != m["__support_fc_inject"] {
			t.Errorf("image %v: cloudinit %v fc_inject %v", m["id"], m["__support_cloudinit"], m["__support_fc_inject"])
		}
		if m["__support_cloudinit"] == "true" && strings.EqualFold(m["__os_type"].(string), "Linux") {
			ci++
		}
	}
	if ci == 0 {
		t.Error("no Linux image with cloud-init in the built-in catalog")
	}
}
