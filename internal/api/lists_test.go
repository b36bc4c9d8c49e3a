package api_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

const debianImage = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01"

// create makes servers through the API and returns their ids.
func (e *env) create(t *testing.T, name, flavor, vpc, nics string, count int) []string {
	t.Helper()
	r := e.do(t, "POST", "/v1/"+e.cred.ProjectID+"/cloudservers", fmt.Sprintf(`{"server":{"name":%q,"imageRef":%q,
		"flavorRef":%q,"vpcid":%q,"nics":%s,"root_volume":{"volumetype":"SSD"},"count":%d}}`, name, debianImage, flavor, vpc, nics, count), true)
	if r.status != 200 {
		t.Fatalf("create %s: %d %v", name, r.status, r.body)
	}
	var ids []string
	for _, id := range r.body["serverIds"].([]any) {
		ids = append(ids, id.(string))
	}
	return ids
}

// waitJob polls a job until it ends and returns its body.
func (e *env) waitJob(t *testing.T, id string) map[string]any {
	t.Helper()
	for range 2000 {
		j := e.do(t, "GET", "/v1/"+e.cred.ProjectID+"/jobs/"+id, "", true).body
		if s := j["status"]; s == "SUCCESS" || s == "FAIL" {
			return j
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s did not end", id)
	return nil
}

func (e *env) listServers(t *testing.T, query string) reply {
	t.Helper()
	return e.do(t, "GET", "/v1/"+e.cred.ProjectID+"/cloudservers/detail?"+query, "", true)
}

func listedIDs(r reply) []string {
	var ids []string
	for _, s := range r.body["servers"].([]any) {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	return ids
}

func primaryAddress(t *testing.T, srv map[string]any) (ip, port string) {
	t.Helper()
	for _, addrs := range srv["addresses"].(map[string]any) {
		for _, a := range addrs.([]any) {
			a := a.(map[string]any)
			if a["primary"] == true {
				return a["addr"].(string), a["OS-EXT-IPS:port_id"].(string)
			}
		}
	}
	t.Fatalf("server %v has no primary address", srv["id"])
	return "", ""
}

func TestAddressesAndInterfaces(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	ids := e.create(t, "net", "s6.small.1", "vpc-1", `[{"subnet_id":"sn-1"}]`, 3)
	got := map[string]string{}
	ports := map[string]bool{}
	for _, id := range ids {
		srv := e.do(t, "GET", p+"/cloudservers/"+id, "", true).body["server"].(map[string]any)
		ip, port := primaryAddress(t, srv)
		got[id] = ip
		if ports[port] || len(port) != 36 {
			t.Errorf("port id %q repeated or not a UUID", port)
		}
		ports[port] = true
		ifs := e.do(t, "GET", p+"/cloudservers/"+id+"/os-interface", "", true)
		att := ifs.body["interfaceAttachments"].([]any)
		if ifs.status != 200 || len(att) != 1 {
			t.Fatalf("os-interface: %d %v", ifs.status, ifs.body)
		}
		a := att[0].(map[string]any)
		fixed := a["fixed_ips"].([]any)[0].(map[string]any)
		if a["port_id"] != port || fixed["ip_address"] != ip || fixed["subnet_id"] != "sn-1" || a["port_state"] != "ACTIVE" {
			t.Errorf("os-interface %v; want port %s, address %s in sn-1", a, port, ip)
		}
		if srv["OS-EXT-SRV-ATTR:reservation_id"] == "" {
			t.Errorf("no reservation id")
		}
	}
	var ips []string
	for _, ip := range got {
		ips = append(ips, ip)
	}
	slices.Sort(ips)
	if want := []string{"192.168.0.2", "192.168.0.3", "192.168.0.4"}; !slices.Equal(ips, want) {
		t.Fatalf("addresses %v; want %v", ips, want)
	}

	refusals := []struct {
		name, vpc, nics, code string
		count                 int
	}{
		{"taken address", "vpc-1", `[{"subnet_id":"sn-1","ip_address":"192.168.0.3"}]`, "Ecs.0010", 1},
		{"outside the CIDR", "vpc-1", `[{"subnet_id":"sn-1","ip_address":"10.0.0.9"}]`, "Ecs.0039", 1},
		{"reserved gateway", "vpc-1", `[{"subnet_id":"sn-1","ip_address":"192.168.0.1"}]`, "Ecs.0039", 1},
		{"not an address", "vpc-1", `[{"subnet_id":"sn-1","ip_address":"192.168.0"}]`, "Ecs.0005", 1},
		{"address with count", "vpc-1", `[{"subnet_id":"sn-1","ip_address":"192.168.0.9"}]`, "Ecs.0005", 2},
		{"another VPC", "vpc-2", `[{"subnet_id":"sn-1"}]`, "Ecs.0064", 1},
	}
	for _, c := range refusals {
		r := e.do(t, "POST", p+"/cloudservers", fmt.Sprintf(`{"server":{"name":"x","imageRef":%q,"flavorRef":"t6.tiny.1",
			"vpcid":%q,"nics":%s,"root_volume":{"volumetype":"SSD"},"count":%d}}`, debianImage, c.vpc, c.nics, c.count), true)
		if r.status != 400 || r.code() != c.code {
			t.Errorf("%s: %d %s %s; want 400 %s", c.name, r.status, r.code(), r.message(), c.code)
		}
	}

	// A fixed address is honoured; a deleted server's address is reused.
	fixed := e.create(t, "fixed", "t6.tiny.1", "vpc-1", `[{"subnet_id":"sn-1","ip_address":"192.168.0.77"}]`, 1)
	srv := e.do(t, "GET", p+"/cloudservers/"+fixed[0], "", true).body["server"].(map[string]any)
	if ip, _ := primaryAddress(t, srv); ip != "192.168.0.77" {
		t.Fatalf("fixed address: got %s", ip)
	}
	// Wait for the creates before the delete (a busy server is refused).
	for _, id := range append(ids, fixed...) {
		for range 2000 {
			s := e.do(t, "GET", p+"/cloudservers/"+id, "", true).body["server"].(map[string]any)
			if s["status"] != "BUILD" {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var freed string
	for id, ip := range got {
		if ip == "192.168.0.3" {
			freed = id
		}
	}
	r := e.do(t, "POST", p+"/cloudservers/delete", `{"servers":[{"id":"`+freed+`"}]}`, true)
	if j := e.waitJob(t, r.body["job_id"].(string)); j["status"] != "SUCCESS" || j["job_type"] != "deleteVMs" {
		t.Fatalf("delete job %v", j)
	}
	again := e.create(t, "again", "t6.tiny.1", "vpc-1", `[{"subnet_id":"sn-1"}]`, 1)
	srv = e.do(t, "GET", p+"/cloudservers/"+again[0], "", true).body["server"].(map[string]any)
	if ip, _ := primaryAddress(t, srv); ip != "192.168.0.3" {
		t.Fatalf("after a delete the lowest free address is 192.168.0.3, got %s", ip)
	}
}

func TestServerListFilters(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.create(t, "alpha", "s6.small.1", "vpc-1", `[{"subnet_id":"sn-1"}]`, 1)[0]
	bc := e.create(t, "beta", "t6.tiny.1", "vpc-1", `[{"subnet_id":"sn-1"}]`, 2)
	b, c := bc[0], bc[1]
	// Tags arrive with create's server_tags (not yet wired): set them in
	// the store.
	err := e.st.Write(context.Background(), func(tx store.Tx) error {
		return tx.ServerTagsSet(context.Background(), e.cred.ProjectID, b, []ecs.Tag{{Key: "env", Value: "prod"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	srvB := e.do(t, "GET", "/v1/"+e.cred.ProjectID+"/cloudservers/"+b, "", true).body["server"].(map[string]any)
	ipB, _ := primaryAddress(t, srvB)
	resB := srvB["OS-EXT-SRV-ATTR:reservation_id"].(string)
	if tags := srvB["tags"].([]any); len(tags) != 1 || tags[0] != "env=prod" {
		t.Errorf("tags %v", tags)
	}

	cases := []struct {
		query string
		want  []string
	}{
		{"name=alp", []string{a}},
		{"name=b.ta-0002", []string{c}},
		{"flavor=s6.small.1", []string{a}},
		{"ip_eq=" + ipB, []string{b}},
		{"ip=" + ipB, []string{b}},
		{"tags=env%3Dprod", []string{b}},
		{"tags=env", []string{b}},
		{"not-tags=env%3Dprod", []string{c, a}},
		{"server_id=" + a + "," + c, []string{c, a}},
		{"reservation_id=" + resB, []string{c, b}},
		{"reservation_id=" + resB + "&tags=env", []string{b}},
		{"enterprise_project_id=0", []string{c, b, a}},
		{"enterprise_project_id=all_granted_eps", []string{c, b, a}},
		{"enterprise_project_id=other", nil},
		{"limit=1&marker=" + c, []string{b}},
		{"limit=2&marker=" + b, []string{a}},
		{"status=build&flavor=t6.tiny.1&limit=1", nil}, // BUILD or not, a page of at most one; checked below
	}
	for _, tc := range cases[:len(cases)-1] {
		r := e.listServers(t, tc.query)
		if r.status != 200 || !slices.Equal(listedIDs(r), tc.want) {
			t.Errorf("?%s: %d %v; want %v", tc.query, r.status, listedIDs(r), tc.want)
		}
	}
	if r := e.listServers(t, "marker="+b+"&limit=1"); r.body["count"].(float64) != 3 {
		t.Errorf("count with a marker is of every match: %v", r.body["count"])
	}

	// server_id naming a missing server: the id and a fault.
	r := e.listServers(t, "server_id="+a+",no-such-server")
	if ids := listedIDs(r); r.status != 200 || !slices.Equal(ids, []string{a, "no-such-server"}) {
		t.Fatalf("server_id with a missing id: %d %v", r.status, ids)
	}
	if f := r.body["servers"].([]any)[1].(map[string]any)["fault"].(map[string]any); f["code"].(float64) != 404 {
		t.Errorf("missing server's fault %v", f)
	}

	for _, path := range []string{"/cloudservers/" + a + "?fields=name", "/jobs/" + strings.Repeat("0", 32) + "?x=1"} {
		r := e.do(t, "GET", "/v1/"+e.cred.ProjectID+path, "", true)
		if r.status != 400 || r.code() != "Ecs.0005" {
			t.Errorf("GET %s: %d %v; want 400 Ecs.0005 (no query parameters are documented)", path, r.status, r.body)
		}
	}
	for _, bad := range []struct{ query, names string }{
		{"changes-since=2020-01-01", "changes-since"},
		{"flavor_name=x", "flavor_name"},
		{"sort_key=name", "sort_key"},
		{"server_id=" + a + "&name=alpha", "name"},
		{"status=RUNNING", "status"},
		{"marker=" + b + "&offset=2", "offset"},
		{"marker=nope", "marker"},
		{"tags=a,,b", "tags"},
		{"limit=1001", "limit"},
	} {
		r := e.listServers(t, bad.query)
		if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), bad.names) {
			t.Errorf("?%s: %d %s %q; want 400 Ecs.0005 naming %s", bad.query, r.status, r.code(), r.message(), bad.names)
		}
	}
}

func TestFlavorAndImageLists(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := "/v1/" + e.cred.ProjectID
	r := e.do(t, "GET", p+"/cloudservers/flavors?flavor_id=t6.tiny.1", "", true)
	fl := r.body["flavors"].([]any)
	if r.status != 200 || len(fl) != 1 {
		t.Fatalf("flavor_id: %d %v", r.status, r.body)
	}
	f := fl[0].(map[string]any)
	if links := f["links"].([]any); len(links) != 2 || links[0].(map[string]any)["rel"] != "self" {
		t.Errorf("links %v", f["links"])
	}
	if specs := f["os_extra_specs"].(map[string]any); specs["ecs:performancetype"] != "normal" || specs["cond:operation:status"] != "normal" {
		t.Errorf("os_extra_specs %v", specs)
	}
	for q, n := range map[string]int{"availability_zone=az1": 4, "availability_zone=az9": 0, "limit=2": 2,
		"marker=s6.small.1": 1} {
		r := e.do(t, "GET", p+"/cloudservers/flavors?"+q, "", true)
		if r.status != 200 || len(r.body["flavors"].([]any)) != n {
			t.Errorf("flavors ?%s: %d %v; want %d", q, r.status, r.body, n)
		}
	}
	if r := e.do(t, "GET", p+"/cloudservers/flavors?name=x", "", true); r.status != 400 || !strings.Contains(r.message(), "name") {
		t.Errorf("flavors ?name: %d %v", r.status, r.body)
	}

	images := func(q string) (int, []string, reply) {
		r := e.do(t, "GET", "/v2/cloudimages?"+q, "", true)
		var names []string
		if r.status == 200 {
			for _, i := range r.body["images"].([]any) {
				names = append(names, i.(map[string]any)["name"].(string))
			}
		}
		return r.status, names, r
	}
	for q, want := range map[string][]string{
		"__platform=Ubuntu":               {"Ubuntu 24.04 server 64bit with Cloud-Init", "Ubuntu 22.04 server 64bit"},
		"__os_type=Windows":               {"Windows Server 2022 Datacenter 64bit"},
		"__imagetype=gold&limit=1":        {"CentOS Stream 9 64bit with Cloud-Init"}, // newest first; the catalog shares a time, ties by id desc
		"sort_key=name&sort_dir=asc":      {"CentOS Stream 9 64bit with Cloud-Init", "Debian 12 64bit", "Ubuntu 22.04 server 64bit", "Ubuntu 24.04 server 64bit with Cloud-Init", "Windows Server 2022 Datacenter 64bit"},
		"visibility=private":              nil,
		"status=active&__os_bit=64":       {"CentOS Stream 9 64bit with Cloud-Init", "Ubuntu 24.04 server 64bit with Cloud-Init", "Windows Server 2022 Datacenter 64bit", "Ubuntu 22.04 server 64bit", "Debian 12 64bit"},
		"flavor_id=t6.tiny.1&__os_bit=64": {"Ubuntu 24.04 server 64bit with Cloud-Init", "Ubuntu 22.04 server 64bit", "Debian 12 64bit"},
		"sort_key=id&sort_dir=asc&marker=6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01": {"Ubuntu 22.04 server 64bit",
			"Windows Server 2022 Datacenter 64bit", "Ubuntu 24.04 server 64bit with Cloud-Init", "CentOS Stream 9 64bit with Cloud-Init"},
	} {
		if status, names, r := images(q); status != 200 || !slices.Equal(names, want) {
			t.Errorf("images ?%s: %d %v %v; want %v", q, status, names, r.body, want)
		}
	}
	for _, q := range []string{"min_disk=10", "__support_xen=true", "bogus=1", "sort_key=owner", "sort_dir=up", "marker=nope",
		"__imagetype=bogus", "visibility=everyone", "__platform=Plan9", "status=ACTIVE", "__os_bit=16", "protected=yes"} {
		name, _, _ := strings.Cut(q, "=")
		if name == "sort_dir" || name == "marker" || name == "sort_key" {
			name = strings.SplitN(q, "=", 2)[0]
		}
		if status, _, r := images(q); status != 400 || !strings.Contains(r.message(), name) {
			t.Errorf("images ?%s: %d %v; want 400 naming %s", q, status, r.body, name)
		}
	}
	g := e.do(t, "GET", "/v2/images/"+debianImage, "", true)
	if g.status != 200 || g.body["id"] != debianImage || g.body["size"].(float64) != 2<<30 {
		t.Errorf("GET /v2/images: %d %v", g.status, g.body)
	}
	if g := e.do(t, "GET", "/v2/images/"+url.PathEscape("6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4eff"), "", true); g.status != 404 {
		t.Errorf("GET /v2/images of an unknown image: %d %v", g.status, g.body)
	}
}
