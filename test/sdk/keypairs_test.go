package sdk

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

// importKeypair imports publicKey under name and returns the response.
func (tn *tenant) importKeypair(t *testing.T, name, publicKey string) *model.NovaKeypair {
	t.Helper()
	resp, err := tn.ecs.NovaCreateKeypair(&model.NovaCreateKeypairRequest{Body: &model.NovaCreateKeypairRequestBody{
		Keypair: &model.NovaCreateKeypairOption{Name: name, PublicKey: ptr(publicKey)},
	}})
	if err != nil {
		t.Fatalf("NovaCreateKeypair import %s: %v", name, err)
	}
	if resp.Keypair == nil {
		t.Fatalf("NovaCreateKeypair import %s: no keypair in the response", name)
	}
	return resp.Keypair
}

func TestKeypairGenerated(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	name := uniq("gen")
	resp, err := tn.ecs.NovaCreateKeypair(&model.NovaCreateKeypairRequest{Body: &model.NovaCreateKeypairRequestBody{
		Keypair: &model.NovaCreateKeypairOption{Name: name},
	}})
	if err != nil {
		t.Fatalf("NovaCreateKeypair: %v", err)
	}
	kp := resp.Keypair
	if kp == nil {
		t.Fatal("no keypair in the response")
	}
	if kp.Name != name || kp.Fingerprint == "" || kp.UserId != tn.cred.UserID {
		t.Errorf("created keypair name %q fingerprint %q user_id %q; want %q, non-empty, %q", kp.Name, kp.Fingerprint, kp.UserId, name, tn.cred.UserID)
	}
	if !parsesAsSSHKey(kp.PublicKey) {
		t.Errorf("public_key %q is not an OpenSSH public key", kp.PublicKey)
	}
	if !strings.HasPrefix(kp.PrivateKey, "-----BEGIN") || !strings.Contains(kp.PrivateKey, "PRIVATE KEY-----") {
		t.Fatalf("generated keypair: private_key %q is not a PEM private key", kp.PrivateKey)
	}
	secret := privateKeyBody(kp.PrivateKey)

	show, err := tn.ecs.NovaShowKeypair(&model.NovaShowKeypairRequest{KeypairName: name})
	if err != nil {
		t.Fatalf("NovaShowKeypair: %v", err)
	}
	d := show.Keypair
	if d == nil || d.Name != name || d.PublicKey != kp.PublicKey || d.Fingerprint != kp.Fingerprint || d.UserId != tn.cred.UserID || d.Deleted {
		t.Errorf("show = %+v; want the created key pair (not deleted)", d)
	}
	if d != nil && d.CreatedAt == nil {
		t.Errorf("show: created_at missing")
	}

	// Show and list, read raw: the private key is never returned again.
	for _, path := range []string{"/v2.1/{project_id}/os-keypairs/" + name, "/v2.1/{project_id}/os-keypairs"} {
		r := tn.raw(t, rawReq{method: "GET", path: path})
		if r.status != 200 {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
		if bytes.Contains(r.body, []byte(secret)) || hasPrivateKey(r.body) {
			t.Errorf("GET %s returns the private key: %s", path, r.body)
		}
	}
}

// privateKeyBody is a line of a PEM block's base64 body, long enough to be
// unique.
func privateKeyBody(pem string) string {
	for _, l := range strings.Split(pem, "\n") {
		if len(l) > 40 && !strings.HasPrefix(l, "-----") {
			return l
		}
	}
	return pem
}

// hasPrivateKey reports whether any object in the JSON body has a
// non-empty "private_key" member.
func hasPrivateKey(body []byte) bool {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["private_key"].(string); ok && s != "" {
				return true
			}
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		case []any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

func TestKeypairImportListShowDelete(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	name := uniq("imp")
	pub := sshKey(t)
	kp := tn.importKeypair(t, name, pub)
	if kp.Name != name || kp.Fingerprint == "" || kp.PrivateKey != "" {
		t.Errorf("import: name %q fingerprint %q private_key %q; want %q, a fingerprint, no private key", kp.Name, kp.Fingerprint, kp.PrivateKey, name)
	}
	if strings.TrimSpace(kp.PublicKey) != pub && !strings.HasPrefix(pub, strings.TrimSpace(kp.PublicKey)) {
		t.Errorf("import: public_key %q, want %q", kp.PublicKey, pub)
	}

	list, err := tn.ecs.NovaListKeypairs(&model.NovaListKeypairsRequest{})
	if err != nil {
		t.Fatalf("NovaListKeypairs: %v", err)
	}
	found := false
	if list.Keypairs != nil {
		for _, e := range *list.Keypairs {
			if e.Keypair == nil {
				t.Errorf("list entry without keypair: %+v", e)
				continue
			}
			if e.Keypair.Name == name {
				found = true
				if e.Keypair.Fingerprint != kp.Fingerprint || e.Keypair.PublicKey != kp.PublicKey {
					t.Errorf("list entry %+v differs from the imported key pair", e.Keypair)
				}
			}
		}
	}
	if !found {
		t.Errorf("NovaListKeypairs does not list %s", name)
	}

	show, err := tn.ecs.NovaShowKeypair(&model.NovaShowKeypairRequest{KeypairName: name})
	if err != nil {
		t.Fatalf("NovaShowKeypair: %v", err)
	}
	if show.Keypair == nil || show.Keypair.PublicKey != kp.PublicKey {
		t.Errorf("show = %+v", show.Keypair)
	}

	// The same name twice is refused.
	_, err = tn.ecs.NovaCreateKeypair(&model.NovaCreateKeypairRequest{Body: &model.NovaCreateKeypairRequestBody{
		Keypair: &model.NovaCreateKeypairOption{Name: name, PublicKey: ptr(sshKey(t))},
	}})
	if se := wantErr(t, err, 0); se != nil && (se.StatusCode < 400 || se.StatusCode > 499) {
		t.Errorf("duplicate key pair name: HTTP %d, want 4xx", se.StatusCode)
	}

	if _, err := tn.ecs.NovaDeleteKeypair(&model.NovaDeleteKeypairRequest{KeypairName: name}); err != nil {
		t.Fatalf("NovaDeleteKeypair: %v", err)
	}
	_, err = tn.ecs.NovaShowKeypair(&model.NovaShowKeypairRequest{KeypairName: name})
	wantErr(t, err, 404, "Ecs.0314")
	_, err = tn.ecs.NovaDeleteKeypair(&model.NovaDeleteKeypairRequest{KeypairName: name})
	wantErr(t, err, 404, "Ecs.0314")
}

func TestKeypairUnknown(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	_, err := tn.ecs.NovaShowKeypair(&model.NovaShowKeypairRequest{KeypairName: uniq("missing")})
	wantErr(t, err, 404, "Ecs.0314")
	_, err = tn.ecs.NovaDeleteKeypair(&model.NovaDeleteKeypairRequest{KeypairName: uniq("missing")})
	wantErr(t, err, 404, "Ecs.0314")
}

func TestKeypairOtherProjectInvisible(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	name := uniq("iso")
	d.main.importKeypair(t, name, sshKey(t))
	other := d.newTenant(t)
	_, err := other.ecs.NovaShowKeypair(&model.NovaShowKeypairRequest{KeypairName: name})
	wantErr(t, err, 404, "Ecs.0314")
	_, err = other.ecs.NovaDeleteKeypair(&model.NovaDeleteKeypairRequest{KeypairName: name})
	wantErr(t, err, 404, "Ecs.0314")
	if _, err := d.main.ecs.NovaShowKeypair(&model.NovaShowKeypairRequest{KeypairName: name}); err != nil {
		t.Errorf("the owner can no longer see its key pair after another project tried to delete it: %v", err)
	}
}

func TestKeypairImportInvalid(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	good := sshKey(t)
	blob := strings.Fields(good)[1]
	cases := map[string]string{
		"not a key":           "not a key",
		"type only":           "ssh-ed25519",
		"bad base64":          "ssh-ed25519 !!!notbase64!!!",
		"truncated blob":      "ssh-ed25519 " + blob[:20],
		"type mismatch":       "ssh-rsa " + blob,
		"private key instead": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
	}
	for name, pub := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			kpName := uniq("bad")
			_, err := tn.ecs.NovaCreateKeypair(&model.NovaCreateKeypairRequest{Body: &model.NovaCreateKeypairRequestBody{
				Keypair: &model.NovaCreateKeypairOption{Name: kpName, PublicKey: ptr(pub)},
			}})
			wantErr(t, err, 400)
			_, err = tn.ecs.NovaShowKeypair(&model.NovaShowKeypairRequest{KeypairName: kpName})
			wantErr(t, err, 404, "Ecs.0314")
		})
	}
}
