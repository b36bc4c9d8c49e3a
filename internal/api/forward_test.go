package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// Two nodes' API handlers: a call node-a forwards to node-b is served by
// node-b's routes for the caller node-a authenticated; a forwarded call
// with a bad MAC, or sent to a node that takes none, is refused with the
// API's authentication error.
func TestForwardedCalls(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secret.LoadOrCreate(filepath.Join(dir, "key"))
	log := slog.New(slog.DiscardHandler)
	svc := cloud.New(cloud.Config{Store: st, Box: box, Logger: log})
	cred, err := svc.NewCredential(t.Context(), "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateKeypair(t.Context(), cloud.Caller{ProjectID: cred.ProjectID, UserID: cred.UserID}, cloud.KeypairInput{Name: "kp-1"}); err != nil {
		t.Fatal(err)
	}

	key := bytes.Repeat([]byte{1}, 32)
	urls := map[string]string{}
	resolve := func(_ context.Context, host string) (string, error) {
		if u, ok := urls[host]; ok {
			return u, nil
		}
		return "", fmt.Errorf("unknown host %s", host)
	}
	node := func(host string, key []byte) (*Handler, *httptest.Server) {
		f, err := cluster.NewForwarder(cluster.ForwardConfig{Key: key, Host: host, Resolve: resolve})
		if err != nil {
			t.Fatal(err)
		}
		h := New(Config{Service: svc, Logger: log, Forwarder: f})
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		urls[host] = srv.URL
		return h, srv
	}
	a, _ := node("node-a", key)
	node("node-b", key)
	forged, _ := node("node-x", bytes.Repeat([]byte{2}, 32)) // another cloud's key
	plain := httptest.NewServer(New(Config{Service: svc, Logger: log}))
	t.Cleanup(plain.Close)
	urls["node-plain"] = plain.URL

	forward := func(h *Handler, host, path string, caller cloud.Caller) (int, map[string]any, string) {
		t.Helper()
		w := httptest.NewRecorder()
		req := &request{r: httptest.NewRequestWithContext(t.Context(), "GET", path, nil), caller: caller}
		if err := h.forward(w, req, host); err != nil {
			t.Fatalf("forward to %s: %v", host, err)
		}
		var body map[string]any
		json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body, w.Body.String()
	}
	me := cloud.Caller{ProjectID: cred.ProjectID, UserID: cred.UserID}
	path := "/v2.1/" + cred.ProjectID + "/os-keypairs"

	code, _, raw := forward(a, "node-b", path, me)
	var list struct {
		Keypairs []struct {
			Keypair struct{ Name string } `json:"keypair"`
		} `json:"keypairs"`
	}
	json.Unmarshal([]byte(raw), &list)
	if code != 200 || len(list.Keypairs) != 1 || list.Keypairs[0].Keypair.Name != "kp-1" {
		t.Errorf("forwarded key pair list: %d %s", code, raw)
	}
	// node-b checks the forwarded caller against the path as for any call.
	if code, body, raw := forward(a, "node-b", path, cloud.Caller{ProjectID: "0123456789abcdef0123456789abcdef", UserID: "u"}); code != 400 ||
		body["error"].(map[string]any)["code"] != "Ecs.0023" {
		t.Errorf("forwarded call for another project: %d %s", code, raw)
	}
	for _, target := range []string{"node-x", "node-plain"} {
		code, body, raw := forward(a, target, path, me)
		if code != 401 || body["error_code"] != "APIGW.0301" {
			t.Errorf("forwarded call to %s: %d %s, want 401 APIGW.0301", target, code, raw)
		}
	}
	// The refusal works both ways: node-x's call is refused by node-b.
	if code, _, raw := forward(forged, "node-b", path, me); code != 401 {
		t.Errorf("call forwarded with another cloud's key: %d %s", code, raw)
	}
}
