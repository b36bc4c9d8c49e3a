package api_test

import (
	"strings"
	"testing"
)

// Every call that documents no query parameter refuses one, naming it,
// before it acts: a query is never accepted and dropped.
func TestQueryOnQuerylessRoutesRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.cred.ProjectID
	const id = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e99"
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/" + p + "/cloudservers", `{"server":{"name":"a","imageRef":"6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01",
			"flavorRef":"s6.small.1","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"}}}`},
		{"POST", "/v1.1/" + p + "/cloudservers", `{}`},
		{"POST", "/v1/" + p + "/cloudservers/action", `{"os-stop":{"servers":[{"id":"` + id + `"}]}}`},
		{"POST", "/v1/" + p + "/cloudservers/delete", `{"servers":[{"id":"` + id + `"}]}`},
		{"POST", "/v1/" + p + "/cloudservers/" + id + "/reinstallos", `{"os-reinstall":{"adminpass":"Abcdef12!x"}}`},
		{"POST", "/v2/" + p + "/cloudservers/" + id + "/changeos", `{}`},
		{"PUT", "/v1/" + p + "/cloudservers/" + id + "/os-reset-password", `{}`},
		{"GET", "/v1/" + p + "/cloudservers/" + id + "/os-resetpwd-flag", ``},
		{"POST", "/v2.1/" + p + "/os-keypairs", `{"keypair":{"name":"kq"}}`},
		{"GET", "/v2.1/" + p + "/os-keypairs/kq", ``},
		{"DELETE", "/v2.1/" + p + "/os-keypairs/kq", ``},
		{"POST", "/v2.1/" + p + "/servers/" + id + "/action", `{"lock":null}`},
		{"POST", "/v2/" + p + "/cloudvolumes", `{}`},
		{"POST", "/v1/" + p + "/cloudservers/" + id + "/attachvolume", `{}`},
	} {
		r := e.do(t, c.method, c.path+"?bogus=1", c.body, true)
		if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), `"bogus"`) {
			t.Errorf("%s %s?bogus=1: %d %s %q, want 400 Ecs.0005 naming bogus", c.method, c.path, r.status, r.code(), r.message())
		}
	}
	// Nothing was made.
	if n := e.do(t, "GET", "/v1/"+p+"/cloudservers/detail", "", true).body["count"]; n != float64(0) {
		t.Errorf("servers: %v, want 0", n)
	}
	if kps := e.do(t, "GET", "/v2.1/"+p+"/os-keypairs", "", true).body["keypairs"]; len(kps.([]any)) != 0 {
		t.Errorf("key pairs: %v, want none", kps)
	}
}
