package api_test

import (
	"strings"
	"testing"
)

// TestVolumeBodies: every malformed volume, attach and detach request is
// refused with the right code, never a 500.
func TestVolumeBodies(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	v2 := "/v2/" + e.cred.ProjectID
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"create empty", "POST", v2 + "/cloudvolumes", "", 400, "Common.0002"},
		{"create no volume", "POST", v2 + "/cloudvolumes", `{}`, 400, "Ecs.0005"},
		{"create no size", "POST", v2 + "/cloudvolumes", `{"volume":{"name":"a"}}`, 400, "Ecs.0005"},
		{"create size a string", "POST", v2 + "/cloudvolumes", `{"volume":{"size":"10"}}`, 400, "Ecs.0005"},
		{"create size 0", "POST", v2 + "/cloudvolumes", `{"volume":{"size":0}}`, 400, "Ecs.0005"},
		{"create too large", "POST", v2 + "/cloudvolumes", `{"volume":{"size":40000}}`, 400, "Ecs.0005"},
		{"create bad type", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"volume_type":"FLOPPY"}}`, 400, "Ecs.0005"},
		{"create count 0", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"count":0}}`, 400, "Ecs.0005"},
		{"create long name", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"name":"` + strings.Repeat("n", 65) + `"}}`, 400, "Ecs.0005"},
		{"create description", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"description":"d"}}`, 400, "Ecs.0005"},
		{"create multiattach", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"multiattach":true}}`, 400, "Ecs.0005"},
		{"create imageRef", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"imageRef":"i"}}`, 400, "Ecs.0005"},
		{"create snapshot", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"snapshot_id":"s"}}`, 400, "Ecs.0005"},
		{"create backup", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"backup_id":"b"}}`, 400, "Ecs.0005"},
		{"create metadata", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"metadata":{"hw:passthrough":"true"}}}`, 400, "Ecs.0005"},
		{"create tags", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"tags":{"a":"b"}}}`, 400, "Ecs.0005"},
		{"create iops", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"iops":3000}}`, 400, "Ecs.0005"},
		{"create enterprise project", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"enterprise_project_id":"e"}}`, 400, "Ecs.0005"},
		{"create server_id", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10},"server_id":"s"}`, 400, "Ecs.0005"},
		{"create prePaid", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10},"bssParam":{"chargingMode":"prePaid"}}`, 400, "Ecs.0005"},
		{"create defaults spelled out", "POST", v2 + "/cloudvolumes",
			`{"volume":{"size":10,"multiattach":false,"enterprise_project_id":"0","metadata":{"hw:passthrough":"false","__system__encrypted":"0"}},` +
				`"bssParam":{"chargingMode":"postPaid"}}`, 200, ""},
		{"create SCSI", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"metadata":{"hw:passthrough":"true"}}}`, 400, "Ecs.0005"},
		{"create encrypted", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"metadata":{"__system__encrypted":"1"}}}`, 400, "Ecs.0005"},
		{"create metadata not strings", "POST", v2 + "/cloudvolumes", `{"volume":{"size":10,"metadata":{"a":1}}}`, 400, "Ecs.0005"},
		{"list other enterprise project", "GET", v2 + "/cloudvolumes?enterprise_project_id=ep1", "", 200, ""},
		{"show unknown", "GET", v2 + "/cloudvolumes/nope", "", 404, "Ecs.0103"},
		{"show bad id", "GET", v2 + "/cloudvolumes/%2e%2e", "", 404, "Ecs.0103"},
		{"delete unknown", "DELETE", v2 + "/cloudvolumes/nope", "", 404, "Ecs.0103"},
		{"list bad query", "GET", v2 + "/cloudvolumes?bogus=1", "", 400, "Ecs.0005"},
		{"attach empty", "POST", p + "/cloudservers/s/attachvolume", "", 400, "Common.0002"},
		{"attach no option", "POST", p + "/cloudservers/s/attachvolume", `{}`, 400, "Ecs.0005"},
		{"attach no volume", "POST", p + "/cloudservers/s/attachvolume", `{"volumeAttachment":{}}`, 400, "Ecs.0005"},
		{"attach volume not a string", "POST", p + "/cloudservers/s/attachvolume", `{"volumeAttachment":{"volumeId":1}}`, 400, "Ecs.0005"},
		{"attach dry run", "POST", p + "/cloudservers/s/attachvolume", `{"volumeAttachment":{"volumeId":"v"},"dry_run":true}`, 400, "Ecs.0005"},
		{"attach passthrough", "POST", p + "/cloudservers/s/attachvolume", `{"volumeAttachment":{"volumeId":"v","hw:passthrough":"true"}}`, 400, "Ecs.0005"},
		{"attach volume_type", "POST", p + "/cloudservers/s/attachvolume", `{"volumeAttachment":{"volumeId":"v","volume_type":"SSD"}}`, 400, "Ecs.0005"},
		{"attach count", "POST", p + "/cloudservers/s/attachvolume", `{"volumeAttachment":{"volumeId":"v","count":2}}`, 400, "Ecs.0005"},
		{"attach passthrough false", "POST", p + "/cloudservers/s/attachvolume", `{"volumeAttachment":{"volumeId":"v","hw:passthrough":"false"}}`, 404, "Ecs.0114"},
		{"attach unknown server", "POST", p + "/cloudservers/s/attachvolume", `{"volumeAttachment":{"volumeId":"v"}}`, 404, "Ecs.0114"},
		{"detach bad flag", "DELETE", p + "/cloudservers/s/detachvolume/v?delete_flag=2", "", 400, "Ecs.0005"},
		{"detach unknown server", "DELETE", p + "/cloudservers/s/detachvolume/v?delete_flag=1", "", 404, "Ecs.0114"},
		{"block devices unknown server", "GET", p + "/cloudservers/s/block_device", "", 404, "Ecs.0114"},
		{"block device unknown server", "GET", p + "/cloudservers/s/block_device/v", "", 404, "Ecs.0114"},
		{"attachments unknown server", "GET", p + "/cloudservers/s/os-volume_attachments", "", 404, "Ecs.0114"},
		{"attach by GET is no API", "GET", p + "/cloudservers/s/attachvolume", "", 404, "APIGW.0101"},
	}
	for _, tt := range tests {
		r := e.do(t, tt.method, tt.path, tt.body, true)
		if r.status != tt.status || r.code() != tt.code {
			t.Errorf("%s: %d %q, want %d %q (%v)", tt.name, r.status, r.code(), tt.status, tt.code, r.body)
		}
	}
}
