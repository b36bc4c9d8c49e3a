package sdk

// Issue 11, create fields: description, server_tags and tags, security
// groups and user data stored and shown; every other documented create
// field honoured or refused by name; UpdateServer; the tag calls.

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

const (
	sgWeb = "0b6e4a3c-1f2d-4e5a-8b7c-9d0e1f2a3b4c"
	sgDB  = "7c8d9e0f-1a2b-4c3d-9e5f-6a7b8c9d0e1f"
)

// fieldsServer is a create body of the suite's defaults on a cloud-init
// image (user data needs one).
func fieldsServer(name string) *model.PostPaidServer {
	return &model.PostPaidServer{Name: name, ImageRef: imgUbuntuCI, FlavorRef: flavorSmall, Vpcid: "vpc-sdk-suite",
		Nics:       []model.PostPaidServerNic{{SubnetId: ptr("subnet-sdk-suite")}},
		RootVolume: &model.PostPaidServerRootVolume{Volumetype: model.GetPostPaidServerRootVolumeVolumetypeEnum().SSD}}
}

func (tn *tenant) createPost(srv *model.PostPaidServer) (*model.CreatePostPaidServersResponse, error) {
	return tn.ecs.CreatePostPaidServers(&model.CreatePostPaidServersRequest{
		Body: &model.CreatePostPaidServersRequestBody{Server: srv}})
}

func tagsOf(s *model.ServerDetail) []string {
	if s.Tags == nil {
		return nil
	}
	out := slices.Clone(*s.Tags)
	slices.Sort(out)
	return out
}

// TestCreateFieldsRoundTrip: description, server_tags, security groups and
// user data given at create are shown by ShowServer and ListServersDetails
// and by ShowServerTags; the tags filter of ListServersDetails finds the
// server by them; neutral values of refused fields are accepted; v1.1's
// older "key.value" tags are stored as tags.
func TestCreateFieldsRoundTrip(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).newTenant(t)
	script := "#cloud-config\nruncmd: [touch /root/fields]\n"
	srv := fieldsServer(uniq("fields-"))
	srv.Description = ptr("the web tier")
	srv.ServerTags = &[]model.PostPaidServerTag{{Key: "env", Value: "prod"}, {Key: "team", Value: ""}}
	srv.SecurityGroups = &[]model.PostPaidServerSecurityGroup{{Id: ptr(sgWeb)}, {Id: ptr(sgDB)}}
	srv.UserData = b64(script)
	// Neutral values of refused fields ask for what ecsd does anyway.
	srv.IsAutoRename = ptr(true)
	srv.BatchCreateInMultiAz = ptr(false)
	srv.Nics[0].Ipv6Enable = ptr(false)
	srv.Extendparam = &model.PostPaidServerExtendParam{EnterpriseProjectId: ptr("0"), SupportAutoRecovery: ptr(false)}
	resp, err := tn.createPost(srv)
	if err != nil {
		t.Fatalf("CreatePostPaidServers: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, resp.JobId))
	id := (*resp.ServerIds)[0]
	other := tn.newServer(t, serverSpec{name: uniq("fields-plain-")})

	check := func(s *model.ServerDetail, how string) {
		t.Helper()
		if str(s.Description) != "the web tier" {
			t.Errorf("%s: description %q", how, str(s.Description))
		}
		if got := tagsOf(s); !slices.Equal(got, []string{"env=prod", "team"}) {
			t.Errorf("%s: tags %v, want [env=prod team]", how, got)
		}
		var sgs []string
		for _, g := range s.SecurityGroups {
			sgs = append(sgs, g.Id)
		}
		if !slices.Equal(sgs, []string{sgWeb, sgDB}) {
			t.Errorf("%s: security_groups %v, want %s %s", how, sgs, sgWeb, sgDB)
		}
		if str(s.OSEXTSRVATTRuserData) != *b64(script) {
			t.Errorf("%s: user_data %q, want the create's base64", how, str(s.OSEXTSRVATTRuserData))
		}
	}
	check(tn.show(t, id), "ShowServer")
	list, err := tn.ecs.ListServersDetails(&model.ListServersDetailsRequest{Tags: ptr("env=prod")})
	if err != nil {
		t.Fatalf("ListServersDetails tags=env=prod: %v", err)
	}
	if len(*list.Servers) != 1 || (*list.Servers)[0].Id != id {
		t.Fatalf("tags=env=prod lists %d servers, want only %s", len(*list.Servers), id)
	}
	check(&(*list.Servers)[0], "ListServersDetails")
	for _, q := range []struct{ tags, notTags string }{{tags: "team"}, {tags: "env=prod,team"}} {
		if got := listIDs(t, tn, &model.ListServersDetailsRequest{Tags: ptr(q.tags)}); !slices.Equal(got, []string{id}) {
			t.Errorf("tags=%s lists %v, want [%s]", q.tags, got, id)
		}
	}
	if got := listIDs(t, tn, &model.ListServersDetailsRequest{NotTags: ptr("env=prod")}); !slices.Equal(got, []string{other}) {
		t.Errorf("not-tags=env=prod lists %v, want [%s]", got, other)
	}

	// A server created without them: the default group, no tags, no user
	// data, an empty description.
	plain := tn.show(t, other)
	if len(plain.SecurityGroups) != 1 || plain.SecurityGroups[0].Name != "default" || plain.OSEXTSRVATTRuserData != nil ||
		str(plain.Description) != "" || len(tagsOf(plain)) != 0 {
		t.Errorf("plain server: security_groups %+v user_data %v description %q tags %v", plain.SecurityGroups,
			plain.OSEXTSRVATTRuserData, str(plain.Description), tagsOf(plain))
	}

	st, err := tn.ecs.ShowServerTags(&model.ShowServerTagsRequest{ServerId: id})
	if err != nil {
		t.Fatalf("ShowServerTags: %v", err)
	}
	if st.Tags == nil || len(*st.Tags) != 2 || (*st.Tags)[0].Key != "env" || str((*st.Tags)[0].Value) != "prod" ||
		(*st.Tags)[1].Key != "team" || str((*st.Tags)[1].Value) != "" {
		t.Errorf("ShowServerTags = %+v", st.Tags)
	}

	// v1.1 with the older tags ("key.value").
	v11 := &model.PrePaidServer{Name: uniq("fields-v11-"), ImageRef: imgDebian, FlavorRef: flavorSmall, Vpcid: "vpc-sdk-suite",
		Nics:        []model.PrePaidServerNic{{SubnetId: ptr("subnet-sdk-suite")}},
		RootVolume:  &model.PrePaidServerRootVolume{Volumetype: model.GetPrePaidServerRootVolumeVolumetypeEnum().SSD},
		Tags:        &[]string{"stage.blue-1.2", "owner.ops"},
		Description: ptr("v1.1")}
	r11, err := tn.ecs.CreateServers(&model.CreateServersRequest{Body: &model.CreateServersRequestBody{Server: v11}})
	if err != nil {
		t.Fatalf("CreateServers with tags: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, r11.JobId))
	s11 := tn.show(t, (*r11.ServerIds)[0])
	if got := tagsOf(s11); !slices.Equal(got, []string{"owner=ops", "stage=blue-1.2"}) || str(s11.Description) != "v1.1" {
		t.Errorf("v1.1 server: tags %v description %q", got, str(s11.Description))
	}
}

// TestCreateFieldsRefused: every documented create field ecsd does not
// implement, and every bad value of one it does, is a 400 Ecs.0005 naming
// the field; nothing is created.
func TestCreateFieldsRefused(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).newTenant(t)
	spot := "spot"
	manyTags := make([]model.PostPaidServerTag, 11)
	for i := range manyTags {
		manyTags[i] = model.PostPaidServerTag{Key: "k" + string(rune('a'+i)), Value: "v"}
	}
	cases := []struct {
		name, field string
		change      func(s *model.PostPaidServer)
	}{
		{"publicip", "publicip", func(s *model.PostPaidServer) {
			s.Publicip = &model.PostPaidServerPublicip{Id: ptr(sgWeb)}
		}},
		{"scheduler hints", "os:scheduler_hints", func(s *model.PostPaidServer) {
			s.OsschedulerHints = &model.PostPaidServerSchedulerHints{Group: ptr(sgWeb)}
		}},
		{"isAutoRename false", "isAutoRename", func(s *model.PostPaidServer) { s.IsAutoRename = ptr(false) }},
		{"batch_create_in_multi_az", "batch_create_in_multi_az", func(s *model.PostPaidServer) { s.BatchCreateInMultiAz = ptr(true) }},
		{"auto_terminate_time", "auto_terminate_time", func(s *model.PostPaidServer) { s.AutoTerminateTime = ptr("2030-01-01T00:00:00Z") }},
		{"extendparam regionID", "extendparam.regionID", func(s *model.PostPaidServer) {
			s.Extendparam = &model.PostPaidServerExtendParam{RegionID: ptr("cn-north-4")}
		}},
		{"extendparam marketType", "extendparam.marketType", func(s *model.PostPaidServer) {
			s.Extendparam = &model.PostPaidServerExtendParam{MarketType: &spot}
		}},
		{"extendparam support_auto_recovery", "support_auto_recovery", func(s *model.PostPaidServer) {
			s.Extendparam = &model.PostPaidServerExtendParam{SupportAutoRecovery: ptr(true)}
		}},
		{"extendparam enterprise project", "enterprise_project_id", func(s *model.PostPaidServer) {
			s.Extendparam = &model.PostPaidServerExtendParam{EnterpriseProjectId: ptr(sgWeb)}
		}},
		{"root_volume iops", "root_volume.iops", func(s *model.PostPaidServer) { s.RootVolume.Iops = ptr(int32(3000)) }},
		{"root_volume cluster_id", "root_volume.cluster_id", func(s *model.PostPaidServer) { s.RootVolume.ClusterId = ptr("c") }},
		{"nics port_id", "nics[].port_id", func(s *model.PostPaidServer) { s.Nics[0].PortId = ptr(sgWeb) }},
		{"nics ipv6", "nics[].ipv6_enable", func(s *model.PostPaidServer) { s.Nics[0].Ipv6Enable = ptr(true) }},
		{"description too long", "description", func(s *model.PostPaidServer) { s.Description = ptr(strings.Repeat("d", 86)) }},
		{"description with <", "description", func(s *model.PostPaidServer) { s.Description = ptr("<b>") }},
		{"security group not a UUID", "security_groups[0].id", func(s *model.PostPaidServer) {
			s.SecurityGroups = &[]model.PostPaidServerSecurityGroup{{Id: ptr("default")}}
		}},
		{"security group twice", "security_groups", func(s *model.PostPaidServer) {
			s.SecurityGroups = &[]model.PostPaidServerSecurityGroup{{Id: ptr(sgWeb)}, {Id: ptr(sgWeb)}}
		}},
		{"11 tags", "server_tags", func(s *model.PostPaidServer) { s.ServerTags = &manyTags }},
		{"a key twice", "server_tags", func(s *model.PostPaidServer) {
			s.ServerTags = &[]model.PostPaidServerTag{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}
		}},
		{"a key with =", "server_tags[0].key", func(s *model.PostPaidServer) {
			s.ServerTags = &[]model.PostPaidServerTag{{Key: "a=b", Value: "1"}}
		}},
		{"an empty key", "server_tags[0].key", func(s *model.PostPaidServer) {
			s.ServerTags = &[]model.PostPaidServerTag{{Key: "", Value: "1"}}
		}},
		{"a key of 37 characters", "server_tags[0].key", func(s *model.PostPaidServer) {
			s.ServerTags = &[]model.PostPaidServerTag{{Key: strings.Repeat("k", 37), Value: "1"}}
		}},
		{"a value of 44 characters", "server_tags[0].value", func(s *model.PostPaidServer) {
			s.ServerTags = &[]model.PostPaidServerTag{{Key: "k", Value: strings.Repeat("v", 44)}}
		}},
		{"an older tag without a dot", "tags[0]", func(s *model.PostPaidServer) { s.Tags = &[]string{"nodot"} }},
		{"an older tag with a space", "tags[0].value", func(s *model.PostPaidServer) { s.Tags = &[]string{"k.a b"} }},
		{"both tag forms", "server.tags", func(s *model.PostPaidServer) {
			s.Tags = &[]string{"k.v"}
			s.ServerTags = &[]model.PostPaidServerTag{{Key: "a", Value: "1"}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fieldsServer(uniq("refused-"))
			tc.change(srv)
			_, err := tn.createPost(srv)
			if se := wantErr(t, err, 400, "Ecs.0005"); se != nil && !strings.Contains(se.ErrorMessage, tc.field) {
				t.Errorf("refusal %q does not name %s", se.ErrorMessage, tc.field)
			}
		})
	}

	// Fields no call documents, at each level ecsd reads, by raw body.
	base := map[string]any{"name": "raw", "imageRef": imgDebian, "flavorRef": flavorSmall, "vpcid": "vpc-sdk-suite",
		"nics": []any{map[string]any{"subnet_id": "subnet-sdk-suite"}}, "root_volume": map[string]any{"volumetype": "SSD"}}
	raws := []struct {
		name, field string
		body        func() map[string]any
	}{
		{"top level", "bogus", func() map[string]any { return map[string]any{"server": base, "bogus": true} }},
		{"server", "server.bogus", func() map[string]any {
			s := clone(base)
			s["bogus"] = 1
			return map[string]any{"server": s}
		}},
		{"nic", "server.nics[].mtu", func() map[string]any {
			s := clone(base)
			s["nics"] = []any{map[string]any{"subnet_id": "subnet-sdk-suite", "mtu": 9000}}
			return map[string]any{"server": s}
		}},
		{"root volume", "server.root_volume.bogus", func() map[string]any {
			s := clone(base)
			s["root_volume"] = map[string]any{"volumetype": "SSD", "bogus": "x"}
			return map[string]any{"server": s}
		}},
		{"extendparam", "server.extendparam.bogus", func() map[string]any {
			s := clone(base)
			s["extendparam"] = map[string]any{"chargingMode": "postPaid", "bogus": "x"}
			return map[string]any{"server": s}
		}},
		{"server_tags item", "server.server_tags[].colour", func() map[string]any {
			s := clone(base)
			s["server_tags"] = []any{map[string]any{"key": "k", "value": "v", "colour": "red"}}
			return map[string]any{"server": s}
		}},
	}
	for _, rc := range raws {
		t.Run("unknown "+rc.name, func(t *testing.T) {
			body, _ := json.Marshal(rc.body())
			for _, path := range []string{"/v1/{project_id}/cloudservers", "/v1.1/{project_id}/cloudservers"} {
				r := tn.raw(t, rawReq{method: "POST", path: path, body: body})
				if r.status != 400 || !strings.Contains(string(r.body), "Ecs.0005") || !strings.Contains(string(r.body), rc.field) {
					t.Errorf("POST %s with %s: %d %s; want 400 Ecs.0005 naming %s", path, rc.name, r.status, r.body, rc.field)
				}
			}
		})
	}
	if n := len(listIDs(t, tn, &model.ListServersDetailsRequest{})); n != 0 {
		t.Errorf("the refused creates made %d servers", n)
	}
}

// listServersByTag calls ListServersByTag, which the SDK marks deprecated
// (TMS's resource tag calls are its successor) but still has, and the ECS
// API reference still documents.
func listServersByTag(tn *tenant, body *model.ListServersByTagRequestBody) (*model.ListServersByTagResponse, error) {
	//lint:ignore SA1019 the call is what is tested: clients still make it
	return tn.ecs.ListServersByTag(&model.ListServersByTagRequest{Body: body})
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestUpdateServer: UpdateServer changes the name and the description and
// answers the server; hostname, user_data, unknown fields and bad values
// are refused by name; another project's server is not found.
func TestUpdateServer(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.newTenant(t)
	id := tn.newServer(t, serverSpec{name: uniq("upd-")})
	name := uniq("renamed-")
	resp, err := tn.ecs.UpdateServer(&model.UpdateServerRequest{ServerId: id, Body: &model.UpdateServerRequestBody{
		Server: &model.UpdateServerOption{Name: ptr(name), Description: ptr("now described")}}})
	if err != nil {
		t.Fatalf("UpdateServer: %v", err)
	}
	if resp.Server == nil || resp.Server.Id != id || resp.Server.Name != name || str(resp.Server.Description) != "now described" ||
		resp.Server.Status != "ACTIVE" {
		t.Fatalf("UpdateServer answered %+v", resp.Server)
	}
	s := tn.show(t, id)
	if s.Name != name || str(s.Description) != "now described" {
		t.Errorf("after UpdateServer: name %q description %q", s.Name, str(s.Description))
	}
	// Only the description: the name stays.
	if _, err := tn.ecs.UpdateServer(&model.UpdateServerRequest{ServerId: id, Body: &model.UpdateServerRequestBody{
		Server: &model.UpdateServerOption{Description: ptr("")}}}); err != nil {
		t.Fatalf("UpdateServer description only: %v", err)
	}
	if s := tn.show(t, id); s.Name != name || str(s.Description) != "" {
		t.Errorf("after clearing the description: name %q description %q", s.Name, str(s.Description))
	}

	bad := []struct {
		name, field string
		opt         model.UpdateServerOption
	}{
		{"hostname", "hostname", model.UpdateServerOption{Hostname: ptr("web-1")}},
		{"user_data", "user_data", model.UpdateServerOption{UserData: b64("x")}},
		{"empty name", "name", model.UpdateServerOption{Name: ptr("")}},
		{"description with >", "description", model.UpdateServerOption{Description: ptr("a>b")}},
		{"nothing", "name", model.UpdateServerOption{}},
	}
	for _, b := range bad {
		_, err := tn.ecs.UpdateServer(&model.UpdateServerRequest{ServerId: id, Body: &model.UpdateServerRequestBody{Server: &b.opt}})
		if se := wantErr(t, err, 400, "Ecs.0005"); se != nil && !strings.Contains(se.ErrorMessage, b.field) {
			t.Errorf("%s: refusal %q does not name %s", b.name, se.ErrorMessage, b.field)
		}
	}
	r := tn.raw(t, rawReq{method: "PUT", path: "/v1/{project_id}/cloudservers/" + id, body: []byte(`{"server":{"colour":"red"}}`)})
	if r.status != 400 || !strings.Contains(string(r.body), "server.colour") {
		t.Errorf("unknown field: %d %s", r.status, r.body)
	}
	_, err = d.newTenant(t).ecs.UpdateServer(&model.UpdateServerRequest{ServerId: id, Body: &model.UpdateServerRequestBody{
		Server: &model.UpdateServerOption{Name: ptr("stolen")}}})
	wantErr(t, err, 404, "Ecs.0114")
	if s := tn.show(t, id); s.Name != name {
		t.Errorf("another project renamed the server to %q", s.Name)
	}
}

// TestServerTagCalls: BatchCreateServerTags adds and overwrites, up to 10
// tags; BatchDeleteServerTags deletes by key, or by key and value;
// ShowServerTags, ListServerTags and ListServersByTag (filter, count,
// values as alternatives, not_tags, matches, paging) answer from them; bad
// tags are refused by name; another project sees none of it.
func TestServerTagCalls(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.newTenant(t)
	a := tn.newServer(t, serverSpec{name: uniq("tag-a-")})
	b := tn.newServer(t, serverSpec{name: uniq("tag-b-")})
	create := model.GetBatchCreateServerTagsRequestBodyActionEnum().CREATE
	del := model.GetBatchDeleteServerTagsRequestBodyActionEnum().DELETE
	add := func(id string, tags ...model.BatchAddServerTag) error {
		_, err := tn.ecs.BatchCreateServerTags(&model.BatchCreateServerTagsRequest{ServerId: id,
			Body: &model.BatchCreateServerTagsRequestBody{Action: create, Tags: tags}})
		return err
	}
	remove := func(id string, tags ...model.ServerTag) error {
		_, err := tn.ecs.BatchDeleteServerTags(&model.BatchDeleteServerTagsRequest{ServerId: id,
			Body: &model.BatchDeleteServerTagsRequestBody{Action: del, Tags: tags}})
		return err
	}
	shown := func(id string) []string {
		t.Helper()
		r, err := tn.ecs.ShowServerTags(&model.ShowServerTagsRequest{ServerId: id})
		if err != nil {
			t.Fatalf("ShowServerTags: %v", err)
		}
		var out []string
		for _, tg := range *r.Tags {
			out = append(out, tg.Key+"="+str(tg.Value))
		}
		return out
	}
	if err := add(a, model.BatchAddServerTag{Key: "env", Value: ptr("prod")}, model.BatchAddServerTag{Key: "team", Value: ptr("web")},
		model.BatchAddServerTag{Key: "solo"}); err != nil {
		t.Fatalf("BatchCreateServerTags: %v", err)
	}
	if err := add(b, model.BatchAddServerTag{Key: "env", Value: ptr("dev")}, model.BatchAddServerTag{Key: "team", Value: ptr("web")}); err != nil {
		t.Fatalf("BatchCreateServerTags b: %v", err)
	}
	if got := shown(a); !slices.Equal(got, []string{"env=prod", "solo=", "team=web"}) {
		t.Errorf("ShowServerTags a = %v", got)
	}
	// Overwrite a value.
	if err := add(a, model.BatchAddServerTag{Key: "team", Value: ptr("db")}); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if got := tagsOf(tn.show(t, a)); !slices.Equal(got, []string{"env=prod", "solo", "team=db"}) {
		t.Errorf("ShowServer tags after overwrite = %v", got)
	}

	// ListServerTags: keys with their values, over the project.
	pt, err := tn.ecs.ListServerTags(&model.ListServerTagsRequest{})
	if err != nil {
		t.Fatalf("ListServerTags: %v", err)
	}
	var ptags []string
	for _, tg := range *pt.Tags {
		ptags = append(ptags, tg.Key+":"+strings.Join(*tg.Values, "|"))
	}
	if !slices.Equal(ptags, []string{"env:dev|prod", "solo:", "team:db|web"}) {
		t.Errorf("ListServerTags = %v", ptags)
	}

	// ListServersByTag.
	byTag := func(body model.ListServersByTagRequestBody) (ids []string, total int32) {
		t.Helper()
		r, err := listServersByTag(tn, &body)
		if err != nil {
			t.Fatalf("ListServersByTag %+v: %v", body, err)
		}
		if r.Resources != nil {
			for _, res := range *r.Resources {
				ids = append(ids, res.ResourceId)
			}
		}
		if r.TotalCount != nil {
			total = *r.TotalCount
		}
		return ids, total
	}
	both := []string{b, a}
	for _, c := range []struct {
		name string
		body model.ListServersByTagRequestBody
		want []string
	}{
		{"key", model.ListServersByTagRequestBody{Action: "filter", Tags: &[]model.ServerTags{{Key: "team"}}}, both},
		{"value", model.ListServersByTagRequestBody{Action: "filter", Tags: &[]model.ServerTags{{Key: "env", Values: []string{"prod"}}}},
			[]string{a}},
		{"values are alternatives", model.ListServersByTagRequestBody{Action: "filter",
			Tags: &[]model.ServerTags{{Key: "env", Values: []string{"prod", "dev"}}}}, both},
		{"keys all", model.ListServersByTagRequestBody{Action: "filter",
			Tags: &[]model.ServerTags{{Key: "env"}, {Key: "solo"}}}, []string{a}},
		{"not_tags", model.ListServersByTagRequestBody{Action: "filter",
			NotTags: &[]model.ServerTags{{Key: "env", Values: []string{"prod"}}}}, []string{b}},
		{"matches", model.ListServersByTagRequestBody{Action: "filter",
			Matches: &[]model.ServerTagMatch{{Key: "resource_name", Value: "tag-b-"}}}, []string{b}},
		{"limit and offset", model.ListServersByTagRequestBody{Action: "filter", Limit: ptr("1"), Offset: ptr("1"),
			Tags: &[]model.ServerTags{{Key: "team"}}}, []string{a}},
	} {
		ids, total := byTag(c.body)
		wantTotal := len(c.want)
		if c.name == "limit and offset" {
			wantTotal = 2
		}
		if !slices.Equal(ids, c.want) || int(total) != wantTotal {
			t.Errorf("ListServersByTag %s: %v total %d, want %v total %d", c.name, ids, total, c.want, wantTotal)
		}
	}
	if ids, total := byTag(model.ListServersByTagRequestBody{Action: "count", Tags: &[]model.ServerTags{{Key: "team"}}}); ids != nil || total != 2 {
		t.Errorf("count: %v total %d, want no resources and 2", ids, total)
	}
	r, err := listServersByTag(tn, &model.ListServersByTagRequestBody{Action: "filter",
		Tags: &[]model.ServerTags{{Key: "solo"}}})
	if err != nil || len(*r.Resources) != 1 || (*r.Resources)[0].ResourceName == "" || len((*r.Resources)[0].Tags) != 3 {
		t.Errorf("a resource: %+v %v; want its name and its 3 tags", r, err)
	}

	// Deletes: by key and value (a wrong value deletes nothing), by key.
	if err := remove(a, model.ServerTag{Key: "env", Value: ptr("dev")}, model.ServerTag{Key: "nosuch"}); err != nil {
		t.Fatalf("BatchDeleteServerTags: %v", err)
	}
	if got := shown(a); !slices.Equal(got, []string{"env=prod", "solo=", "team=db"}) {
		t.Errorf("a wrong value deleted a tag: %v", got)
	}
	if err := remove(a, model.ServerTag{Key: "env", Value: ptr("prod")}, model.ServerTag{Key: "team"}); err != nil {
		t.Fatalf("BatchDeleteServerTags: %v", err)
	}
	if got := shown(a); !slices.Equal(got, []string{"solo="}) {
		t.Errorf("after deletes: %v", got)
	}

	// Refusals.
	ten := make([]model.BatchAddServerTag, 10)
	for i := range ten {
		ten[i] = model.BatchAddServerTag{Key: "k" + string(rune('a'+i))}
	}
	for _, c := range []struct {
		name, field string
		tags        []model.BatchAddServerTag
	}{
		{"more than 10 on the server", "at most 10", ten}, // a has "solo" already
		{"a key with a dot", "tags[0].key", []model.BatchAddServerTag{{Key: "a.b"}}},
		{"a value with a space", "tags[0].value", []model.BatchAddServerTag{{Key: "a", Value: ptr("x y")}}},
		{"a key of 37", "tags[0].key", []model.BatchAddServerTag{{Key: strings.Repeat("k", 37)}}},
		{"a key twice", "twice", []model.BatchAddServerTag{{Key: "a"}, {Key: "a"}}},
		{"none", "tags", []model.BatchAddServerTag{}},
	} {
		if se := wantErr(t, add(a, c.tags...), 400, "Ecs.0005"); se != nil && !strings.Contains(se.ErrorMessage, c.field) {
			t.Errorf("%s: refusal %q does not name %s", c.name, se.ErrorMessage, c.field)
		}
	}
	if got := shown(a); !slices.Equal(got, []string{"solo="}) {
		t.Errorf("refused adds changed the tags: %v", got)
	}
	raw := tn.raw(t, rawReq{method: "POST", path: "/v1/{project_id}/cloudservers/" + a + "/tags/action",
		body: []byte(`{"action":"CREATE","tags":[{"key":"x"}]}`)})
	if raw.status != 400 || !strings.Contains(string(raw.body), "action") {
		t.Errorf("action CREATE: %d %s", raw.status, raw.body)
	}
	raw = tn.raw(t, rawReq{method: "POST", path: "/v1/{project_id}/cloudservers/" + a + "/tags/action",
		body: []byte(`{"action":"create","tags":[{"key":"x","colour":"red"}]}`)})
	if raw.status != 400 || !strings.Contains(string(raw.body), "tags[].colour") {
		t.Errorf("an unknown field of a tag: %d %s", raw.status, raw.body)
	}
	for _, body := range []model.ListServersByTagRequestBody{
		{Action: "list"},
		{Action: "filter", Limit: ptr("1001")},
		{Action: "filter", Offset: ptr("-1")},
		{Action: "filter", Tags: &[]model.ServerTags{{Key: ""}}},
		{Action: "filter", Tags: &[]model.ServerTags{{Key: "a"}, {Key: "a"}}},
		{Action: "filter", Matches: &[]model.ServerTagMatch{{Key: "id", Value: "x"}}},
	} {
		_, err := listServersByTag(tn, &body)
		wantErr(t, err, 400, "Ecs.0005")
	}

	// Another project: not found, and none of these tags.
	o := d.newTenant(t)
	_, err = o.ecs.ShowServerTags(&model.ShowServerTagsRequest{ServerId: a})
	wantErr(t, err, 404, "Ecs.0114")
	_, err = o.ecs.BatchCreateServerTags(&model.BatchCreateServerTagsRequest{ServerId: a,
		Body: &model.BatchCreateServerTagsRequestBody{Action: create, Tags: []model.BatchAddServerTag{{Key: "x"}}}})
	wantErr(t, err, 404, "Ecs.0114")
	if pt, err := o.ecs.ListServerTags(&model.ListServerTagsRequest{}); err != nil || len(*pt.Tags) != 0 {
		t.Errorf("another project's ListServerTags: %+v %v", pt.Tags, err)
	}
	if ids, total := func() ([]string, int32) {
		r, err := listServersByTag(o, &model.ListServersByTagRequestBody{Action: "filter"})
		if err != nil {
			t.Fatalf("another project's ListServersByTag: %v", err)
		}
		return nil, *r.TotalCount
	}(); ids != nil || total != 0 {
		t.Errorf("another project lists %d servers by tag", total)
	}
}
