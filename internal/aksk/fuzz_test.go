package aksk

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// normalizeAuth removes the freedom Verify allows in an Authorization value
// (blanks, parameter order) so that two values that differ only there
// compare equal.
func normalizeAuth(a string) string {
	a = strings.NewReplacer(" ", "", "\t", "").Replace(a)
	rest, ok := strings.CutPrefix(a, Algorithm)
	if !ok {
		return a
	}
	parts := strings.Split(rest, ",")
	slices.Sort(parts)
	return Algorithm + strings.Join(parts, ",")
}

// FuzzVerify mutates the Authorization header, the date and the body of a
// signed request: Verify must never panic, must only return CodeAuth errors
// that leak no secret, and must accept only the unchanged request.
func FuzzVerify(f *testing.F) {
	base, baseBody := signedBase(f)
	origAuth, origDate := base.Header.Get("Authorization"), base.Header.Get(HeaderDate)

	f.Add(origAuth, origDate, baseBody)
	f.Add(strings.ReplaceAll(origAuth, ", ", ","), origDate, baseBody)
	f.Add(origAuth, "20240305T102031Z", baseBody)
	f.Add(origAuth, origDate, []byte{})
	f.Add(strings.Replace(origAuth, "x-sdk-date", "x-sdk-datf", 1), origDate, baseBody)
	f.Add("SDK-HMAC-SHA256 Access=,SignedHeaders=;,Signature=", "", []byte("{}"))
	f.Add("SDK-HMAC-SHA256 Access=a=b, SignedHeaders=x-sdk-date, Signature=Signature=", "99991231T235959Z", []byte(nil))

	f.Fuzz(func(t *testing.T, auth, date string, body []byte) {
		r := base.Clone(base.Context())
		r.Header.Set("Authorization", auth)
		r.Header.Set(HeaderDate, date)
		ak, err := testVerifier().Verify(r, body)
		if err == nil {
			if normalizeAuth(auth) != normalizeAuth(origAuth) || date != origDate || !bytes.Equal(body, baseBody) {
				t.Fatalf("changed request verified: auth=%q date=%q body=%q", auth, date, body)
			}
			if ak != testAK {
				t.Fatalf("ak = %q", ak)
			}
			return
		}
		var e *ecs.Error
		if !errors.As(err, &e) || e.Code != ecs.CodeAuth {
			t.Fatalf("err = %#v", err)
		}
		if !knownMessage(e.Message) {
			t.Fatalf("message leaks: %q", e.Message)
		}
	})
}

// FuzzSignVerify checks that whatever Sign signs, Verify accepts once the
// request has crossed the wire, and that Verify rejects it with another
// body.
func FuzzSignVerify(f *testing.F) {
	f.Add("/v1/p/cloudservers/s 1/reinstallos", "a=1&b=%20x&a=0", "value", []byte("{}\n"), false)
	f.Add("/a%2Fb/é", "k&k=&=v", " padded ", []byte(nil), true)
	f.Add("", "+=+", "", []byte("x"), false)
	f.Fuzz(func(t *testing.T, path, rawQuery, hv string, body []byte, signHost bool) {
		u, err := url.Parse("http://h.example.test:80/" + strings.TrimPrefix(path, "/") + "?" + rawQuery)
		if err != nil {
			return
		}
		if u.Host != "h.example.test:80" || u.Fragment != "" {
			return // the fuzzer wrote into the authority or a fragment
		}
		r, err := http.NewRequest("PATCH", u.String(), nil)
		if err != nil {
			return
		}
		r.Header.Set("X-Extra", hv)
		if signHost {
			r.Header.Set("Host", r.Host)
		}
		Sign(r, body, testAK, testSK, testNow)
		var buf bytes.Buffer
		r.Body, r.ContentLength = nil, 0
		if len(body) > 0 {
			r.Body, r.ContentLength = readCloser{bytes.NewReader(body)}, int64(len(body))
		}
		if err := r.Write(&buf); err != nil {
			return // not a sendable request (e.g. control bytes in the header)
		}
		sr, err := http.ReadRequest(bufio.NewReader(&buf))
		if err != nil {
			return
		}
		if strings.TrimSpace(sr.Header.Get("X-Extra")) != strings.TrimSpace(hv) {
			return // net/http rewrote the value; not a signing question
		}
		if !queryDecodable(sr.URL.RawQuery) {
			if _, err := testVerifier().Verify(sr, body); err == nil {
				t.Fatalf("verified a request with a malformed query %q", sr.URL.RawQuery)
			}
			return
		}
		if _, err := testVerifier().Verify(sr, body); err != nil {
			t.Fatalf("Verify(Sign(r)) = %v\npath %q query %q", err, sr.URL.Path, sr.URL.RawQuery)
		}
		if _, err := testVerifier().Verify(sr, append(slices.Clip(body), '!')); err == nil {
			t.Fatal("Verify accepted a different body")
		}
	})
}

func queryDecodable(raw string) bool {
	for _, kv := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if _, err := url.QueryUnescape(k); err != nil {
			return false
		}
		if _, err := url.QueryUnescape(v); err != nil {
			return false
		}
	}
	return true
}
