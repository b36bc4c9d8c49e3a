package api_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// NovaListKeypairs pages by name in byte order whatever order the store
// returns (a PostgreSQL collation other than C sorts "B" after "a"), and
// refuses a marker that is no key pair; other parameters are refused.
func TestKeypairPaging(t *testing.T) {
	t.Parallel()
	e := authSetup(t)
	e.st.keypairOrder = func(kps []ecs.Keypair) {
		slices.SortFunc(kps, func(a, b ecs.Keypair) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	}
	p := "/v2.1/" + e.cred.ProjectID + "/os-keypairs"
	for _, n := range []string{"a", "B", "c", "D"} {
		if r := e.do(t, "POST", p, `{"keypair":{"name":"`+n+`"}}`, true); r.status != 200 {
			t.Fatalf("create %s: %d %v", n, r.status, r.body)
		}
	}
	var got []string
	marker := ""
	for range 10 {
		q := "?limit=1"
		if marker != "" {
			q += "&marker=" + marker
		}
		r := e.do(t, "GET", p+q, "", true)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %v", q, r.status, r.body)
		}
		page := r.body["keypairs"].([]any)
		if len(page) == 0 {
			break
		}
		marker = page[0].(map[string]any)["keypair"].(map[string]any)["name"].(string)
		got = append(got, marker)
	}
	if want := []string{"B", "D", "a", "c"}; !slices.Equal(got, want) {
		t.Errorf("pages %v, want %v", got, want)
	}
	for _, q := range []string{"?marker=nope", "?offset=1"} {
		r := e.do(t, "GET", p+q, "", true)
		if r.status != 400 || r.code() != "Ecs.0005" {
			t.Errorf("GET %s: %d %s %q, want 400 Ecs.0005", q, r.status, r.code(), r.message())
		}
	}
}

// KeypairList lets a test reorder the store's answer.
func (c *countingStore) KeypairList(ctx context.Context, projectID, userID string) ([]ecs.Keypair, error) {
	kps, err := c.Store.KeypairList(ctx, projectID, userID)
	if err == nil && c.keypairOrder != nil {
		c.keypairOrder(kps)
	}
	return kps, err
}

// An x509 key pair (a certificate, in Nova) is refused naming the type,
// rather than made as an SSH key labelled x509; ssh and no type work.
func TestKeypairTypeX509Refused(t *testing.T) {
	t.Parallel()
	e := authSetup(t)
	p := "/v2.1/" + e.cred.ProjectID + "/os-keypairs"
	r := e.do(t, "POST", p, `{"keypair":{"name":"x","type":"x509"}}`, true)
	if r.status != 400 || r.code() != "Ecs.0005" || !strings.Contains(r.message(), "keypair.type") {
		t.Errorf("type x509: %d %s %q, want 400 Ecs.0005 naming keypair.type", r.status, r.code(), r.message())
	}
	for _, body := range []string{`{"keypair":{"name":"s","type":"ssh"}}`, `{"keypair":{"name":"n"}}`} {
		if r := e.do(t, "POST", p, body, true); r.status != 200 || r.body["keypair"].(map[string]any)["type"] != "ssh" {
			t.Errorf("%s: %d %v, want 200 type ssh", body, r.status, r.body)
		}
	}
}
