package aksk

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// signedAs returns the base request signed with ak and sk.
func signedAs(t testing.TB, ak, sk string) (*http.Request, []byte) {
	t.Helper()
	body := []byte(`{"os-reinstall":{"adminpass":"S3cret-pass!"}}`)
	r, err := http.NewRequest("POST", "http://ecs.example.test/v1/p1/cloudservers/s1/reinstallos?limit=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Project-Id", "p1")
	Sign(r, body, ak, sk, testNow)
	return wire(t, r, body), body
}

func rejection(t *testing.T, err error) (*ecs.Error, *Rejection) {
	t.Helper()
	var e *ecs.Error
	var rej *Rejection
	if !errors.As(err, &e) || !errors.As(err, &rej) {
		t.Fatalf("err = %#v, want an *ecs.Error caused by a *Rejection", err)
	}
	return e, rej
}

// An unknown access key is answered exactly like a wrong signature with a
// known one; only the log (the Rejection) tells them apart.
func TestUnknownKeyAnswersLikeBadSignature(t *testing.T) {
	t.Parallel()
	v := testVerifier()

	r, body := signedAs(t, testAK, "not-the-secret")
	_, errBad := v.Verify(r, body)
	r, body = signedAs(t, "UNKNOWNAK0123456789", testSK)
	_, errUnknown := v.Verify(r, body)

	bad, badRej := rejection(t, errBad)
	unknown, unknownRej := rejection(t, errUnknown)
	if ecs.CodeOf(errBad) != ecs.CodeAuth || ecs.CodeOf(errUnknown) != ecs.CodeAuth {
		t.Errorf("codes %s and %s, want %s", ecs.CodeOf(errBad), ecs.CodeOf(errUnknown), ecs.CodeAuth)
	}
	if bad.Message != unknown.Message {
		t.Errorf("wrong signature says %q, unknown key says %q; want the same", bad.Message, unknown.Message)
	}
	if want := authErrorPrefix + msgBadSignature; bad.Message != want {
		t.Errorf("message %q, want %q", bad.Message, want)
	}
	if (*badRej != Rejection{AccessKey: testAK, Reason: reasonMismatch}) {
		t.Errorf("wrong signature rejection = %+v", *badRej)
	}
	if (*unknownRej != Rejection{AccessKey: "UNKNOWNAK0123456789", Reason: reasonUnknownAK}) {
		t.Errorf("unknown key rejection = %+v", *unknownRej)
	}
}

// The dummy secret that unknown keys are checked against opens nothing,
// for an unknown key or a known one.
func TestDummySecretOpensNothing(t *testing.T) {
	t.Parallel()
	v := testVerifier()
	for _, ak := range []string{"UNKNOWNAK0123456789", testAK} {
		r, body := signedAs(t, ak, dummySecret)
		if got, err := v.Verify(r, body); err == nil {
			t.Errorf("a request signed with the dummy secret as %s was accepted (ak %q)", ak, got)
		}
	}
	if len(dummySecret) != 40 {
		t.Errorf("dummy secret of %d bytes, want 40 like ecsd's secrets", len(dummySecret))
	}
}

// Every rejection names the access key the request claimed, once the
// Authorization header parsed, and the reason.
func TestRejectionNamesClaimedKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(r *http.Request, v *Verifier)
		ak     string
		reason string
	}{
		{"garbage header", func(r *http.Request, _ *Verifier) { r.Header.Set("Authorization", "Bearer x") }, "", msgAlgorithm},
		{"no header", func(r *http.Request, _ *Verifier) { r.Header.Del("Authorization") }, "", msgNoAuth},
		{"stale date", func(_ *http.Request, v *Verifier) { v.Now = func() time.Time { return testNow.Add(time.Hour) } }, testAK, msgSkew},
		{"missing signed header", func(r *http.Request, _ *Verifier) { r.Header.Del("X-Project-Id") }, testAK, msgHeaderMissing},
		{"tampered query", func(r *http.Request, _ *Verifier) { r.URL.RawQuery = "limit=1000" }, testAK, reasonMismatch},
		{"nil lookup", func(_ *http.Request, v *Verifier) { v.Lookup = nil }, testAK, reasonUnknownAK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, body := signedAs(t, testAK, testSK)
			v := testVerifier()
			tc.mutate(r, v)
			_, err := v.Verify(r, body)
			_, rej := rejection(t, err)
			if (*rej != Rejection{AccessKey: tc.ak, Reason: tc.reason}) {
				t.Errorf("rejection = %+v, want {%s %s}", *rej, tc.ak, tc.reason)
			}
		})
	}
}

// BenchmarkVerifyRefused compares the two refusals that must cost the same.
func BenchmarkVerifyRefused(b *testing.B) {
	for _, c := range []struct{ name, ak, sk string }{
		{"wrong secret", testAK, "not-the-secret"},
		{"unknown key", "UNKNOWNAK0123456789", testSK},
	} {
		b.Run(c.name, func(b *testing.B) {
			r, body := signedAs(b, c.ak, c.sk)
			v := testVerifier()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r, body); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
