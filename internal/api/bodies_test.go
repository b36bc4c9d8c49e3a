package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// The key pair create, server delete and start/stop/reboot bodies take
// only the SDK's fields: another is refused naming its path, before
// anything is done.
func TestBodyFieldsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.cred.ProjectID
	const id = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e99"
	for _, c := range []struct{ path, body, field string }{
		{"/v2.1/" + p + "/os-keypairs", `{"keypair":{"name":"k1","colour":"red"}}`, "keypair.colour"},
		{"/v2.1/" + p + "/os-keypairs", `{"keypair":{"name":"k1"},"bogus":1}`, "bogus"},
		{"/v1/" + p + "/cloudservers/delete", `{"servers":[{"id":"` + id + `"}],"bogus":1}`, "bogus"},
		{"/v1/" + p + "/cloudservers/delete", `{"servers":[{"id":"` + id + `","name":"x"}]}`, "servers[].name"},
		{"/v1/" + p + "/cloudservers/action", `{"os-stop":{"servers":[{"id":"` + id + `"}],"force":true}}`, "os-stop.force"},
		{"/v1/" + p + "/cloudservers/action", `{"os-start":{"servers":[{"id":"` + id + `"}],"type":"HARD"}}`, "os-start.type"},
		{"/v1/" + p + "/cloudservers/action", `{"reboot":{"type":"SOFT","servers":[{"id":"` + id + `","x":1}]}}`, "reboot.servers[].x"},
		{"/v1/" + p + "/cloudservers/action", `{"os-stop":{"servers":[{"id":"` + id + `"}]},"extra":{}}`, "extra"},
	} {
		r := e.do(t, "POST", c.path, c.body, true)
		if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), c.field+" is not a parameter") {
			t.Errorf("%s %s: %d %s %q, want 400 Ecs.0005 naming %s", c.path, c.body, r.status, r.code(), r.message(), c.field)
		}
	}
	if kps := e.do(t, "GET", "/v2.1/"+p+"/os-keypairs", "", true).body["keypairs"]; len(kps.([]any)) != 0 {
		t.Errorf("key pairs after refused creates: %v", kps)
	}
}

// DeleteServers' delete_volume true (delete the data disks too) is
// refused: ecsd keeps them. false, and delete_publicip (there are no
// public IPs), are accepted.
func TestDeleteVolumeTrueRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	r := e.do(t, "POST", p+"/cloudservers", `{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01",
		"flavorRef":"s6.small.1","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"}}}`, true)
	id := r.body["serverIds"].([]any)[0].(string)
	e.waitJob(t, r.body["job_id"].(string))
	r = e.do(t, "POST", p+"/cloudservers/delete", `{"servers":[{"id":"`+id+`"}],"delete_volume":true}`, true)
	if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), "delete_volume") {
		t.Fatalf("delete_volume true: %d %s %q, want 400 Ecs.0005 naming delete_volume", r.status, r.code(), r.message())
	}
	r = e.do(t, "POST", p+"/cloudservers/delete", `{"servers":[{"id":"`+id+`"}],"delete_volume":false,"delete_publicip":true}`, true)
	if r.status != 200 {
		t.Fatalf("delete_volume false: %d %v", r.status, r.body)
	}
}

// The create's metadata follows its documented rules (at most 10 pairs,
// keys of letters, digits, '-', '_', ':', '.'); a key ecsd sets itself
// (which it would replace) or a reserved key asking for a service ecsd
// lacks is refused naming it. Nothing is made.
func TestCreateMetadataRules(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	create := func(md string) reply {
		return e.do(t, "POST", p+"/cloudservers", `{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01","metadata":`+md+`,
		"flavorRef":"s6.small.1","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"}}}`, true)
	}
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, fmt.Sprintf(`"k%d":"v"`, i))
	}
	for _, c := range []struct{ md, want string }{
		{"{" + strings.Join(eleven, ",") + "}", "at most 10"},
		{`{"bad key":"v"}`, `"bad key"`},
		{`{"":"v"}`, `key ""`},
		{`{"os_type":"Windows"}`, "server.metadata.os_type is set by ecsd"},
		{`{"metering.image_id":"x"}`, "server.metadata.metering.image_id is set by ecsd"},
		{`{"agency_name":"a"}`, "server.metadata.agency_name is not supported"},
		{`{"__support_agent_list":"hss,ces"}`, "server.metadata.__support_agent_list is not supported"},
		{`{"op_svc_userid":"u"}`, "server.metadata.op_svc_userid is not supported"},
	} {
		r := create(c.md)
		if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), c.want) {
			t.Errorf("metadata %s: %d %s %q, want 400 Ecs.0005 with %q", c.md, r.status, r.code(), r.message(), c.want)
		}
	}
	if n := e.do(t, "GET", p+"/cloudservers/detail", "", true).body["count"]; n != float64(0) {
		t.Errorf("servers after refused creates: %v, want 0", n)
	}
	ten := "{" + strings.Join(eleven[:10], ",") + `}`
	for _, md := range []string{ten, `{"Team-1:app.tier_x":"web"}`} {
		if r := create(md); r.status != 200 {
			t.Errorf("metadata %s: %d %v, want 200", md, r.status, r.body)
		}
	}
}
