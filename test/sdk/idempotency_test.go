package sdk

// Idempotent create (issue 10): X-Client-Token on CreatePostPaidServers
// (v1) and CreateServers (v1.1) through the official SDK. A retry with the
// same token and body gets the first request's job and servers, also after
// a restart of the daemon and when 50 duplicates race; the same token with
// another body is Ecs.0122, a token that is not a UUID Ecs.0123.

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

// newClientToken returns a random UUID (version 4, lower case).
func newClientToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// createWithToken is CreatePostPaidServers of a one-server spec (name,
// image, flavor set) with an X-Client-Token.
func (tn *tenant) createWithToken(s serverSpec, token string) (*model.CreatePostPaidServersResponse, error) {
	srv := &model.PostPaidServer{
		Name:       s.name,
		ImageRef:   s.image,
		FlavorRef:  s.flavor,
		Vpcid:      "vpc-sdk-suite",
		Nics:       []model.PostPaidServerNic{{SubnetId: ptr("subnet-sdk-suite")}},
		RootVolume: &model.PostPaidServerRootVolume{Volumetype: model.GetPostPaidServerRootVolumeVolumetypeEnum().SSD},
	}
	return tn.ecs.CreatePostPaidServers(&model.CreatePostPaidServersRequest{XClientToken: &token,
		Body: &model.CreatePostPaidServersRequestBody{Server: srv}})
}

// sameCreate fails unless two create responses name the same job and
// servers.
func sameCreate(t *testing.T, what string, got, want *model.CreatePostPaidServersResponse) {
	t.Helper()
	if str(got.JobId) != str(want.JobId) || got.ServerIds == nil || !slices.Equal(*got.ServerIds, *want.ServerIds) {
		t.Fatalf("%s: job %s servers %v, want the first request's job %s servers %v", what, str(got.JobId), got.ServerIds,
			str(want.JobId), *want.ServerIds)
	}
}

// serversNamed counts the project's servers of exactly that name.
func (tn *tenant) serversNamed(t *testing.T, name string) int {
	t.Helper()
	resp, err := tn.ecs.ListServersDetails(&model.ListServersDetailsRequest{Name: &name})
	if err != nil {
		t.Fatalf("ListServersDetails: %v", err)
	}
	n := 0
	for _, s := range *resp.Servers {
		if s.Name == name {
			n++
		}
	}
	return n
}

func TestCreateClientToken(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	tn := d.main
	c := tn.catalog(t)
	spec := serverSpec{name: uniq("idem"), image: c.linuxImage, flavor: c.flavor}
	tok := newClientToken()

	first, err := tn.createWithToken(spec, tok)
	if err != nil {
		t.Fatalf("CreatePostPaidServers with X-Client-Token: %v", err)
	}
	again, err := tn.createWithToken(spec, tok)
	if err != nil {
		t.Fatalf("CreatePostPaidServers retried with the same X-Client-Token: %v", err)
	}
	sameCreate(t, "retry", again, first)
	tn.waitJobSuccess(t, str(first.JobId))
	if n := tn.serversNamed(t, spec.name); n != 1 {
		t.Fatalf("%d servers named %s after a create and its retry, want 1", n, spec.name)
	}

	t.Run("other body is Ecs.0122", func(t *testing.T) {
		other := spec
		other.name = uniq("idem-other")
		_, err := tn.createWithToken(other, tok)
		wantErr(t, err, 400, "Ecs.0122")
		if n := tn.serversNamed(t, other.name); n != 0 {
			t.Fatalf("the refused request made %d servers", n)
		}
	})
	t.Run("v1.1 with a v1 token is Ecs.0122", func(t *testing.T) {
		_, err := tn.ecs.CreateServers(&model.CreateServersRequest{XClientToken: &tok, Body: &model.CreateServersRequestBody{
			Server: &model.PrePaidServer{Name: spec.name, ImageRef: spec.image, FlavorRef: spec.flavor, Vpcid: "vpc-sdk-suite",
				Nics:       []model.PrePaidServerNic{{SubnetId: ptr("subnet-sdk-suite")}},
				RootVolume: &model.PrePaidServerRootVolume{Volumetype: model.GetPrePaidServerRootVolumeVolumetypeEnum().SSD}}}})
		wantErr(t, err, 400, "Ecs.0122")
	})
	t.Run("not a UUID is Ecs.0123", func(t *testing.T) {
		for _, bad := range []string{"not-a-uuid", "0B6E1B1C-4A7F-4F62-9D3A-0D7F1C2B3A4E", tok + "0", "0b6e1b1c4a7f4f629d3a0d7f1c2b3a4e0000"} {
			_, err := tn.createWithToken(serverSpec{name: uniq("idem-bad"), image: c.linuxImage, flavor: c.flavor}, bad)
			wantErr(t, err, 400, "Ecs.0123")
		}
	})
	t.Run("v1.1 retry", func(t *testing.T) {
		tok := newClientToken()
		req := &model.CreateServersRequest{XClientToken: &tok, Body: &model.CreateServersRequestBody{
			Server: &model.PrePaidServer{Name: uniq("idem11"), ImageRef: spec.image, FlavorRef: spec.flavor, Vpcid: "vpc-sdk-suite",
				Nics:       []model.PrePaidServerNic{{SubnetId: ptr("subnet-sdk-suite")}},
				RootVolume: &model.PrePaidServerRootVolume{Volumetype: model.GetPrePaidServerRootVolumeVolumetypeEnum().SSD}}}}
		a, err := tn.ecs.CreateServers(req)
		if err != nil {
			t.Fatalf("CreateServers with X-Client-Token: %v", err)
		}
		b, err := tn.ecs.CreateServers(req)
		if err != nil {
			t.Fatalf("CreateServers retried: %v", err)
		}
		if str(a.JobId) != str(b.JobId) || a.ServerIds == nil || b.ServerIds == nil || !slices.Equal(*a.ServerIds, *b.ServerIds) {
			t.Fatalf("v1.1 retry: job %s servers %v, want job %s servers %v", str(b.JobId), b.ServerIds, str(a.JobId), a.ServerIds)
		}
		tn.waitJobSuccess(t, str(a.JobId))
	})

	t.Run("after a restart", func(t *testing.T) {
		if err := d.Restart(); err != nil {
			t.Fatalf("restart: %v", err)
		}
		again, err := tn.createWithToken(spec, tok)
		if err != nil {
			t.Fatalf("CreatePostPaidServers retried after a restart: %v", err)
		}
		sameCreate(t, "retry after a restart", again, first)
		if n := tn.serversNamed(t, spec.name); n != 1 {
			t.Fatalf("%d servers named %s after a restart and a retry, want 1", n, spec.name)
		}
	})

	t.Run("50 concurrent duplicates", func(t *testing.T) {
		spec := serverSpec{name: uniq("idem50"), image: c.linuxImage, flavor: c.flavor}
		tok := newClientToken()
		const n = 50
		resps := make([]*model.CreatePostPaidServersResponse, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resps[i], errs[i] = tn.createWithToken(spec, tok)
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("duplicate %d: %v", i, errs[i])
			}
			sameCreate(t, fmt.Sprintf("duplicate %d", i), resps[i], resps[0])
		}
		tn.waitJobSuccess(t, str(resps[0].JobId))
		if got := tn.serversNamed(t, spec.name); got != 1 {
			t.Fatalf("%d servers named %s after 50 concurrent duplicates, want 1", got, spec.name)
		}
	})
}

// TestClientTokenSameParametersOtherOrder: a retry that carries the same
// parameters re-serialised (keys in another order, other white space, as
// a client that builds its body from a map does) is the same request: it
// gets the first request's job and servers, not Ecs.0122; a changed value
// still is Ecs.0122.
func TestClientTokenSameParametersOtherOrder(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	name := uniq("tko")
	first := `{"server":{"name":"` + name + `","imageRef":"` + imgDebian + `","flavorRef":"` + flavorSmall +
		`","vpcid":"vpc-1","nics":[{"subnet_id":"subnet-1"}],"root_volume":{"volumetype":"SSD","size":10}}}`
	again := "{ \"server\": {\"root_volume\": {\"size\": 10, \"volumetype\": \"SSD\"}, \"nics\": [{\"subnet_id\": \"subnet-1\"}],\n" +
		"  \"vpcid\": \"vpc-1\", \"flavorRef\": \"" + flavorSmall + "\", \"imageRef\": \"" + imgDebian + "\", \"name\": \"" + name + "\"}}"
	other := strings.Replace(again, `"size": 10`, `"size": 11`, 1)
	tok := newClientToken()
	send := func(body string) rawResp {
		return tn.raw(t, rawReq{method: "POST", path: "/v1/{project_id}/cloudservers", body: []byte(body),
			after: func(r *http.Request) { r.Header.Set("X-Client-Token", tok) }})
	}
	r1, r2 := send(first), send(again)
	if r1.status != 200 || r2.status != 200 || string(r1.body) != string(r2.body) {
		t.Fatalf("same parameters in another order: %d %s then %d %s; want the same 200 answer", r1.status, r1.body,
			r2.status, r2.body)
	}
	wantRawErr(t, send(other), 400, "Ecs.0122")
	if n := tn.serversNamed(t, name); n != 1 {
		t.Errorf("%d servers named %s, want 1", n, name)
	}
}
