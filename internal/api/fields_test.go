package api

import (
	"os"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// TestCheckCreateFields: every field of a create body is honoured (the
// ones createServer reads or this file reads), accepted at its neutral
// value, or refused naming its path.
func TestCheckCreateFields(t *testing.T) {
	base := `"name":"n","imageRef":"i","flavorRef":"f","vpcid":"v","nics":[{"subnet_id":"s","ip_address":"192.168.0.9"}],` +
		`"root_volume":{"volumetype":"SSD","size":40},"count":1,"availability_zone":"az1","metadata":{"a":"b"},"user_data":"eA==",` +
		`"adminPass":"x","key_name":"k","description":"d","server_tags":[{"key":"a","value":"b"}],"tags":["a.b"],` +
		`"security_groups":[{"id":"x"}],"extendparam":{"chargingMode":"postPaid","enterprise_project_id":"0","isAutoPay":"true"}`
	ok := []string{
		`{"server":{` + base + `}}`,
		`{"dry_run":false,"server":{` + base + `}}`,
		`{"server":{` + base + `,"isAutoRename":true,"batch_create_in_multi_az":false,"publicip":null}}`,
		`{"server":{"nics":[{"subnet_id":"s","ipv6_enable":false,"efi_enable":false}],"root_volume":{"volumetype":"SSD","hw:passthrough":false}}}`,
		`{"server":{"extendparam":{"support_auto_recovery":false}}}`,
		`{"server":{"data_volumes":[{"volumetype":"SSD","size":10,"shareable":false}]}}`,
		`{"server":{"extendparam":null,"root_volume":null,"nics":null}}`,
		`[]`, // not an object: decode answers it
	}
	for _, body := range ok {
		if err := checkCreateFields([]byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	refused := []struct{ body, path string }{
		{`{"bogus":1,"server":{}}`, "bogus"},
		{`{"server":{"bogus":1}}`, "server.bogus"},
		{`{"server":{"isAutoRename":false}}`, "server.isAutoRename"},
		{`{"server":{"publicip":{"id":"x"}}}`, "server.publicip"},
		{`{"server":{"os:scheduler_hints":{}}}`, "server.os:scheduler_hints"},
		{`{"server":{"data_volumes":[{"volumetype":"SSD","size":10,"multiattach":true}]}}`, "server.data_volumes[].multiattach"},
		{`{"server":{"data_volumes":[{"volumetype":"SSD","size":10,"delete_on_termination":true}]}}`, "server.data_volumes[].delete_on_termination"},
		{`{"server":{"data_volumes":[{"volumetype":"SSD","size":10,"shareable":true}]}}`, "server.data_volumes[].shareable is not supported"},
		{`{"server":{"data_volumes":[{"size":10,"nope":1}]}}`, "server.data_volumes[].nope"},
		{`{"server":{"extendparam":{"regionID":"r"}}}`, "server.extendparam.regionID"},
		{`{"server":{"extendparam":{"support_auto_recovery":true}}}`, "server.extendparam.support_auto_recovery"},
		{`{"server":{"extendparam":{"nope":1}}}`, "server.extendparam.nope"},
		{`{"server":{"root_volume":{"iops":1}}}`, "server.root_volume.iops"},
		{`{"server":{"nics":[{"subnet_id":"s"},{"port_id":"p"}]}}`, "server.nics[].port_id"},
		{`{"server":{"nics":[{"ipv6_enable":true}]}}`, "server.nics[].ipv6_enable"},
		{`{"server":{"server_tags":[{"key":"a","colour":"red"}]}}`, "server.server_tags[].colour"},
		{`{"server":{"security_groups":[{"id":"x","name":"y"}]}}`, "server.security_groups[].name"},
		{`{"server":{"nics":{"subnet_id":"s"}}}`, "server.nics"},
		{`{"server":{"extendparam":[]}}`, "server.extendparam"},
		{`{"server":[]}`, "server"},
	}
	for _, r := range refused {
		err := checkCreateFields([]byte(r.body))
		if ecs.CodeOf(err) != ecs.CodeInvalidParam || !strings.Contains(err.Error(), r.path) {
			t.Errorf("%s: %v, want Ecs.0005 naming %s", r.body, err, r.path)
		}
	}
	// A field createServer decodes is honoured even if the table refuses
	// it.
	for _, f := range []string{"server.name", "server.nics", "server.user_data", "server.extendparam", "server.data_volumes"} {
		if !createStructFields[f] {
			t.Errorf("createStructFields lacks %s", f)
		}
	}
}

// FuzzCheckCreateFields: any body is answered (accepted or refused with
// Ecs.0005), never a panic.
func FuzzCheckCreateFields(f *testing.F) {
	for _, s := range []string{`{}`, `{"server":{"nics":[{}]}}`, `{"server":{"extendparam":{"x":1}}}`, `null`, `{"server":null}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := checkCreateFields([]byte(s)); err != nil && ecs.CodeOf(err) != ecs.CodeInvalidParam {
			t.Errorf("%q: %v", s, err)
		}
	})
}

// TestREADMENamesCreateRefusals: the README's parameter table names every
// create field ecsd refuses, so that table and code agree.
func TestREADMENamesCreateRefusals(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for path := range createRefused {
		name := path[strings.LastIndex(path, ".")+1:]
		if !strings.Contains(readme, "`"+name+"`") && !strings.Contains(readme, "."+name+"`") {
			t.Errorf("README does not name the refused create field %s", path)
		}
	}
	for name := range updateRefused {
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("README does not name the refused UpdateServer field %s", name)
		}
	}
}

// TestTagBodiesRefuseUnknownFields: the tag calls' bodies and their items
// take only their documented fields.
func TestTagBodiesRefuseUnknownFields(t *testing.T) {
	cases := []struct {
		body, field string
		names       []string
		want        string
	}{
		{`{"tags":[{"key":"a","value":"b"}]}`, "tags", []string{"key", "value"}, ""},
		{`{"tags":[{"key":"a"},{"key":"b","colour":"red"}]}`, "tags", []string{"key", "value"}, "tags[].colour"},
		{`{"tags":null}`, "tags", []string{"key", "value"}, ""},
		{`{"matches":[{"key":"resource_name","values":["x"]}]}`, "matches", []string{"key", "value"}, "matches[].values"},
	}
	for _, c := range cases {
		err := onlyItemFields([]byte(c.body), c.field, c.names...)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.body, err, c.want)
		}
	}
}
