package cloud_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

func sp(s string) *string { return &s }

// TestCreateDetails: a create's description, tags, security groups and
// user data are on each of its servers; the user data rests sealed and is
// shown as given; bad values are refused with Ecs.0005 before anything is
// created.
func TestCreateDetails(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	ud := b64("#cloud-config\n")
	in := cloud.CreateInput{Name: "d", ImageRef: cloudImage, FlavorRef: "s6.small.1", VPCID: "v", SubnetIDs: []string{"s"},
		VolumeType: "SSD", Count: 2, UserData: []byte("#cloud-config\n"), CreateDetails: cloud.CreateDetails{
			Description: "desc", ServerTags: []cloud.TagInput{{Key: "env", Value: sp("prod")}, {Key: "k"}},
			SecurityGroups: []string{"0b6e4a3c-1f2d-4e5a-8b7c-9d0e1f2a3b4c"}, UserDataBase64: ud}}
	job, ids, err := b.svc.CreateServers(ctx, b.caller, in)
	if err != nil {
		t.Fatal(err)
	}
	b.wait(t, job)
	for _, id := range ids {
		s, err := b.svc.GetServer(ctx, b.caller, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Description != "desc" || !slices.Equal(s.Tags, []ecs.Tag{{Key: "env", Value: "prod"}, {Key: "k"}}) ||
			!slices.Equal(s.SecurityGroups, in.SecurityGroups) || s.UserData != ud {
			t.Errorf("server %s: %q %v %v %q", id, s.Description, s.Tags, s.SecurityGroups, s.UserData)
		}
		raw, err := b.st.ServerGet(ctx, b.caller.ProjectID, id)
		if err != nil {
			t.Fatal(err)
		}
		if raw.SealedUserData == nil || bytes.Contains(raw.SealedUserData, []byte(ud)) || raw.UserData != "" {
			t.Errorf("stored user data is not sealed: %q", raw.SealedUserData)
		}
	}
	list, _, err := b.svc.ListServers(ctx, b.caller, store.ServerListParams{Tags: []string{"env=prod"}})
	if err != nil || len(list) != 2 || list[0].UserData != ud {
		t.Errorf("ListServers by tag: %d servers, %v", len(list), err)
	}

	long := strings.Repeat("x", 37)
	bad := []struct {
		name string
		d    cloud.CreateDetails
	}{
		{"description 86", cloud.CreateDetails{Description: strings.Repeat("d", 86)}},
		{"description <", cloud.CreateDetails{Description: "a<b"}},
		{"key empty", cloud.CreateDetails{ServerTags: []cloud.TagInput{{Key: ""}}}},
		{"key 37", cloud.CreateDetails{ServerTags: []cloud.TagInput{{Key: long}}}},
		{"key /", cloud.CreateDetails{ServerTags: []cloud.TagInput{{Key: "a/b"}}}},
		{"value ,", cloud.CreateDetails{ServerTags: []cloud.TagInput{{Key: "a", Value: sp("x,y")}}}},
		{"value 44", cloud.CreateDetails{ServerTags: []cloud.TagInput{{Key: "a", Value: sp(strings.Repeat("v", 44))}}}},
		{"key twice", cloud.CreateDetails{ServerTags: []cloud.TagInput{{Key: "a"}, {Key: "a"}}}},
		{"11 tags", cloud.CreateDetails{Tags: []string{"a.1", "b.1", "c.1", "d.1", "e.1", "f.1", "g.1", "h.1", "i.1", "j.1", "k.1"}}},
		{"legacy no dot", cloud.CreateDetails{Tags: []string{"ab"}}},
		{"legacy key :", cloud.CreateDetails{Tags: []string{"a:b.c"}}},
		{"both forms", cloud.CreateDetails{Tags: []string{"a.b"}, ServerTags: []cloud.TagInput{{Key: "c"}}}},
		{"group not uuid", cloud.CreateDetails{SecurityGroups: []string{"default"}}},
		{"group twice", cloud.CreateDetails{SecurityGroups: []string{in.SecurityGroups[0], in.SecurityGroups[0]}}},
	}
	for _, c := range bad {
		in := cloud.CreateInput{Name: "bad", ImageRef: linuxImage, FlavorRef: "s6.small.1", VPCID: "v", SubnetIDs: []string{"s"},
			VolumeType: "SSD", CreateDetails: c.d}
		if _, _, err := b.svc.CreateServers(ctx, b.caller, in); code(err) != ecs.CodeInvalidParam {
			t.Errorf("%s: %v, want Ecs.0005", c.name, err)
		}
	}
	if all, n, _ := b.svc.ListServers(ctx, b.caller, store.ServerListParams{}); n != 2 {
		t.Errorf("the refused creates left %d servers: %v", n, all)
	}
}

// TestUpdateServerAndTags: UpdateServer changes the name and description
// only; tags are added, overwritten, capped at 10 and deleted (by key, or
// by key and value); the project's tags and ServersByTag answer from them.
func TestUpdateServerAndTags(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	s1 := b.server(t, linuxImage, false)
	s2 := b.server(t, linuxImage, false)
	got, err := b.svc.UpdateServer(ctx, b.caller, s1.ID, cloud.UpdateInput{Name: sp("new-name"), Description: sp("d")})
	if err != nil || got.Name != "new-name" || got.Description != "d" || got.Status() != "ACTIVE" {
		t.Fatalf("UpdateServer: %+v %v", got, err)
	}
	if s, _ := b.svc.GetServer(ctx, b.caller, s1.ID); s.Name != "new-name" || s.Description != "d" || s.ImageID != s1.ImageID {
		t.Errorf("after update: %+v", s)
	}
	for _, in := range []cloud.UpdateInput{{Name: sp("")}, {Name: sp("a/b")}, {Description: sp(">")}} {
		if _, err := b.svc.UpdateServer(ctx, b.caller, s1.ID, in); err == nil {
			t.Errorf("UpdateServer %+v accepted", in)
		}
	}
	if _, err := b.svc.UpdateServer(ctx, cloud.Caller{ProjectID: "other"}, s1.ID, cloud.UpdateInput{Name: sp("x")}); code(err) != ecs.CodeServerNotFound {
		t.Errorf("another project's update: %v", err)
	}

	add := func(id string, tags ...cloud.TagInput) error { return b.svc.AddServerTags(ctx, b.caller, id, tags) }
	if err := add(s1.ID, cloud.TagInput{Key: "env", Value: sp("prod")}, cloud.TagInput{Key: "team"}); err != nil {
		t.Fatal(err)
	}
	if err := add(s2.ID, cloud.TagInput{Key: "env", Value: sp("dev")}); err != nil {
		t.Fatal(err)
	}
	if err := add(s1.ID, cloud.TagInput{Key: "team", Value: sp("web")}); err != nil {
		t.Fatal(err)
	}
	tags, _ := b.svc.ServerTags(ctx, b.caller, s1.ID)
	if !slices.Equal(tags, []ecs.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "web"}}) {
		t.Errorf("tags after overwrite: %v", tags)
	}
	var nine []cloud.TagInput
	for i := range 9 {
		nine = append(nine, cloud.TagInput{Key: "k" + string(rune('a'+i))})
	}
	if err := add(s1.ID, nine...); code(err) != ecs.CodeInvalidParam {
		t.Errorf("11 tags: %v", err)
	}
	if err := add(s1.ID, nine[:8]...); err != nil {
		t.Errorf("10 tags: %v", err)
	}
	for _, bad := range []cloud.TagInput{{Key: "a.b"}, {Key: "a", Value: sp("a b")}, {Key: ""}} {
		if err := add(s2.ID, bad); code(err) != ecs.CodeInvalidParam {
			t.Errorf("tag %+v: %v", bad, err)
		}
	}
	pt, err := b.svc.ProjectTags(ctx, b.caller)
	if err != nil || len(pt) != 10 || pt[0].Key != "env" || !slices.Equal(pt[0].Values, []string{"dev", "prod"}) {
		t.Errorf("ProjectTags: %+v %v", pt, err)
	}
	by := func(q cloud.TagQuery) []string {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 1000
		}
		srvs, _, err := b.svc.ServersByTag(ctx, b.caller, q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range srvs {
			ids = append(ids, s.ID)
		}
		return ids
	}
	if got := by(cloud.TagQuery{Tags: []cloud.ProjectTag{{Key: "env", Values: []string{"dev", "prod"}}}}); !slices.Equal(got, []string{s2.ID, s1.ID}) {
		t.Errorf("env in dev|prod: %v", got)
	}
	if got := by(cloud.TagQuery{NotTags: []cloud.ProjectTag{{Key: "team"}}}); !slices.Equal(got, []string{s2.ID}) {
		t.Errorf("not team: %v", got)
	}
	if got := by(cloud.TagQuery{Name: "new-"}); !slices.Equal(got, []string{s1.ID}) {
		t.Errorf("name new-: %v", got)
	}
	if srvs, n, _ := b.svc.ServersByTag(ctx, b.caller, cloud.TagQuery{Offset: 1, Limit: 1}); len(srvs) != 1 || srvs[0].ID != s1.ID || n != 2 {
		t.Errorf("page 2 of 1: %v of %d", srvs, n)
	}
	del := []cloud.TagInput{{Key: "env", Value: sp("dev")}, {Key: "team"}, {Key: "nosuch"}}
	if err := b.svc.DeleteServerTags(ctx, b.caller, s1.ID, del); err != nil {
		t.Fatal(err)
	}
	tags, _ = b.svc.ServerTags(ctx, b.caller, s1.ID)
	if len(tags) != 9 || tags[0] != (ecs.Tag{Key: "env", Value: "prod"}) {
		t.Errorf("after delete: %v", tags)
	}
	if err := cloud.CheckTagQuery([]cloud.ProjectTag{{Key: "a"}, {Key: "a"}}, "tags"); code(err) != ecs.CodeInvalidParam {
		t.Errorf("a key twice: %v", err)
	}
}
