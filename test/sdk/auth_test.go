package sdk

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

func TestHealthzWithoutAuth(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	resp, err := http.Get(d.Endpoint() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz without auth: %d, want 200", resp.StatusCode)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("/healthz without X-Request-Id")
	}
}

func TestSDKWrongSecretKey(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	c := d.main.cred
	bad, err := d.ecsClient(c.AccessKey, c.SecretKey+"x", c.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.ListServersDetails(&model.ListServersDetailsRequest{})
	se := wantErr(t, err, 401, "APIGW.0301")
	if se != nil && strings.Contains(se.ErrorMessage, c.SecretKey) {
		t.Errorf("401 message carries the secret key")
	}
	unknown, err := d.ecsClient("NOSUCHAK0000000000", c.SecretKey, c.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = unknown.ShowJob(&model.ShowJobRequest{JobId: "x"})
	wantErr(t, err, 401, "APIGW.0301")
}

func TestRawSigning(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	list := "/v1/{project_id}/cloudservers/detail"

	t.Run("valid signature is accepted", func(t *testing.T) {
		t.Parallel()
		if r := tn.raw(t, rawReq{method: "GET", path: list}); r.status != 200 {
			t.Fatalf("correctly signed raw request: %d %s", r.status, r.body)
		}
	})
	t.Run("valid signature with query is accepted", func(t *testing.T) {
		t.Parallel()
		r := tn.raw(t, rawReq{method: "GET", path: list, query: map[string][]string{"limit": {"5"}, "offset": {"1"}, "name": {"a b"}}})
		if r.status != 200 {
			t.Fatalf("correctly signed raw request with a query: %d %s", r.status, r.body)
		}
	})
	t.Run("ten minute old date is accepted", func(t *testing.T) {
		t.Parallel()
		if r := tn.raw(t, rawReq{method: "GET", path: list, date: time.Now().Add(-10 * time.Minute)}); r.status != 200 {
			t.Fatalf("X-Sdk-Date 10 min old: %d %s; the window is 15 min", r.status, r.body)
		}
	})

	bad := map[string]rawReq{
		"missing Authorization": {method: "GET", path: list, noAuth: true},
		"tampered signature": {method: "GET", path: list, after: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			last := a[len(a)-1]
			flip := byte('0')
			if last == '0' {
				flip = '1'
			}
			r.Header.Set("Authorization", a[:len(a)-1]+string(flip))
		}},
		"wrong secret key":       {method: "GET", path: list, sk: "not-the-secret"},
		"unknown access key":     {method: "GET", path: list, ak: "UNKNOWNAK"},
		"stale X-Sdk-Date":       {method: "GET", path: list, date: time.Now().Add(-20 * time.Minute)},
		"future X-Sdk-Date":      {method: "GET", path: list, date: time.Now().Add(20 * time.Minute)},
		"garbage Authorization":  {method: "GET", path: list, after: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }},
		"signed header modified": {method: "GET", path: list, after: func(r *http.Request) { r.Header.Set("User-Agent", "other") }},
		"date header replaced": {method: "GET", path: list, after: func(r *http.Request) {
			r.Header.Set("X-Sdk-Date", time.Now().Add(time.Minute).UTC().Format(sdkDateFormat))
		}},
		"query modified": {method: "GET", path: list, after: func(r *http.Request) { r.URL.RawQuery = "limit=1" }},
		"body modified": {method: "POST", path: "/v1/{project_id}/cloudservers/" + uniq("nosuch") + "/reinstallos",
			body: []byte(`{"os-reinstall":{"adminpass":"Signed#Pass1"}}`),
			after: func(r *http.Request) {
				b := `{"os-reinstall":{"adminpass":"Other##Pass1"}}`
				r.Body = io.NopCloser(strings.NewReader(b))
				r.ContentLength = int64(len(b))
			}},
	}
	for name, req := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			wantAuthErr(t, tn.raw(t, req))
		})
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	for _, path := range []string{"/v1/{project_id}/no-such-resource", "/v9/{project_id}/cloudservers/detail"} {
		r := tn.raw(t, rawReq{method: "GET", path: path})
		wantGatewayOrECSErr(t, r, 404)
	}
	for _, c := range []struct{ method, path string }{
		{"PUT", "/v1/{project_id}/jobs/" + uniq("j")},
		{"GET", "/v1/{project_id}/cloudservers/" + uniq("s") + "/reinstallos"},
		{"DELETE", "/v1/{project_id}/cloudservers/action"},
	} {
		r := tn.raw(t, rawReq{method: c.method, path: c.path})
		wantGatewayOrECSErr(t, r, 404)
	}
}

// TestErrorShape pins the ECS error body and the SDK's view of it.
func TestErrorShape(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	id := uniq("nosuch")
	r := tn.raw(t, rawReq{method: "GET", path: "/v1/{project_id}/cloudservers/" + id})
	e := wantRawErr(t, r, 404, "Ecs.0114")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	_, err := tn.ecs.ShowServer(&model.ShowServerRequest{ServerId: id})
	if se, ok := err.(*sdkerr.ServiceResponseError); ok && e.Error != nil && se.ErrorMessage != e.Error.Message {
		t.Errorf("SDK message %q, raw message %q", se.ErrorMessage, e.Error.Message)
	}
}
