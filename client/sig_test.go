package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ecsproject/ecsd/internal/aksk"
)

// verifier accepts requests signed with the test keys.
var verifier = &aksk.Verifier{
	Lookup: func(_ context.Context, ak string) (string, bool) {
		return testSK, ak == testAK
	},
}

// verifySignature checks that r carries a valid SDK-HMAC-SHA256 signature
// of the test keys that covers the User-Agent and X-Project-Id headers.
func verifySignature(r *http.Request, body []byte) error {
	if _, err := verifier.Verify(r, body); err != nil {
		return err
	}
	return checkSignedHeaders(r.Header.Get("Authorization"))
}

func checkSignedHeaders(auth string) error {
	const want = "SignedHeaders=user-agent;x-project-id;x-sdk-date,"
	if !strings.Contains(auth, want) {
		return fmt.Errorf("Authorization %q does not sign exactly the SDK's headers (%s)", auth, want)
	}
	return nil
}

// TestSignatureRejected makes sure the fake API's check can fail: requests
// signed with another secret, or whose body changed after signing, are
// refused by the verifier.
func TestSignatureRejected(t *testing.T) {
	t.Parallel()
	var got []error
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Tamper") != "" {
			body = append(body, ' ')
		}
		mu.Lock()
		got = append(got, verifySignature(r, body))
		mu.Unlock()
		io.WriteString(w, `{"job_id":"j"}`)
	}))
	defer srv.Close()
	ctx := context.Background()

	good := New(Config{Endpoint: srv.URL, AccessKey: testAK, SecretKey: testSK, ProjectID: testPID})
	if _, err := good.StartServers(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	wrong := New(Config{Endpoint: srv.URL, AccessKey: testAK, SecretKey: "other", ProjectID: testPID})
	if _, err := wrong.StartServers(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	tamper := New(Config{Endpoint: srv.URL, AccessKey: testAK, SecretKey: testSK, ProjectID: testPID,
		HTTPClient: &http.Client{Transport: addHeader{"X-Tamper", "1", srv.Client().Transport}}})
	if _, err := tamper.StartServers(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(got))
	}
	if got[0] != nil {
		t.Errorf("good signature rejected: %v", got[0])
	}
	if got[1] == nil {
		t.Error("signature with the wrong secret key accepted")
	}
	if got[2] == nil {
		t.Error("signature over a different body accepted")
	}
}

// addHeader adds an unsigned header on the way out, through next (not
// http.DefaultTransport, whose idle connections another test's srv.Close
// closes, which can break a call in flight).
type addHeader struct {
	k, v string
	next http.RoundTripper
}

func (h addHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.k, h.v)
	return h.next.RoundTrip(r)
}
