package sdk

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// This file is the suite's own SDK-HMAC-SHA256 signer (reference §e),
// written independently of the product's verifier, and a raw HTTP helper
// for request shapes the SDK cannot send. TestRawSignerMatchesSDK pins it to
// the official SDK's signer so that a 401 from a raw request means what the
// test says it means.

const sdkDateFormat = "20060102T150405Z"

// sdkUserAgent is what the SDK sends; it is signed like any header.
const sdkUserAgent = "huaweicloud-usdk-go/3.0; ecsd-sdk-suite"

// sigEscape percent-escapes s keeping only A-Z a-z 0-9 _ - ~ . (upper hex).
func sigEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '-', c == '~', c == '.':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		}
	}
	return b.String()
}

func canonicalURI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = sigEscape(s)
	}
	u := strings.Join(segs, "/")
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u
}

func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			pairs = append(pairs, sigEscape(k)+"="+sigEscape(v))
		}
	}
	return strings.Join(pairs, "&")
}

// signedHeaderNames are the lowercased header names of h, sorted, without
// content-type* and names containing '_'.
func signedHeaderNames(h http.Header) []string {
	var names []string
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "content-type") || strings.Contains(lk, "_") {
			continue
		}
		names = append(names, lk)
	}
	sort.Strings(names)
	return names
}

// signRequest sets X-Sdk-Date (at) and Authorization on req, whose body is
// body (payloadHash overrides the body's hash when non-empty). Every header
// already on req, except Content-Type, is signed.
func signRequest(req *http.Request, body []byte, payloadHash, ak, sk string, at time.Time) {
	date := at.UTC().Format(sdkDateFormat)
	req.Header.Set("X-Sdk-Date", date)
	names := signedHeaderNames(req.Header)
	var ch strings.Builder
	for _, n := range names {
		vs := append([]string(nil), req.Header.Values(n)...)
		sort.Strings(vs)
		for _, v := range vs {
			ch.WriteString(n + ":" + strings.TrimSpace(v) + "\n")
		}
	}
	if payloadHash == "" {
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	cr := strings.Join([]string{
		req.Method,
		canonicalURI(req.URL.Path),
		canonicalQuery(req.URL.Query()),
		ch.String(),
		strings.Join(names, ";"),
		payloadHash,
	}, "\n")
	crHash := sha256.Sum256([]byte(cr))
	sts := "SDK-HMAC-SHA256\n" + date + "\n" + hex.EncodeToString(crHash[:])
	mac := hmac.New(sha256.New, []byte(sk))
	mac.Write([]byte(sts))
	req.Header.Set("Authorization", "SDK-HMAC-SHA256 Access="+ak+", SignedHeaders="+strings.Join(names, ";")+", Signature="+hex.EncodeToString(mac.Sum(nil)))
}

// rawReq is a request sent with the suite's own signer.
type rawReq struct {
	method string
	path   string // starting with /; "{project_id}" is replaced by the tenant's
	query  url.Values
	body   []byte
	// stream, when set, is sent instead of body (chunked) and signed with
	// the hash of body.
	stream      io.Reader
	contentType string    // default: JSON like the SDK
	date        time.Time // default: now
	ak, sk      string    // default: the tenant's
	projectHdr  string    // X-Project-Id; default: the tenant's project
	noAuth      bool
	after       func(*http.Request) // runs after signing
	timeout     time.Duration
}

type rawResp struct {
	status int
	header http.Header
	body   []byte
}

// apiErr is the union of the two error shapes of reference §d.
type apiErr struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
	RequestID string `json:"request_id"`
}

// raw sends r as tn and returns the response. Every response must carry
// X-Request-Id.
func (tn *tenant) raw(t *testing.T, r rawReq) rawResp {
	t.Helper()
	path := strings.ReplaceAll(r.path, "{project_id}", tn.cred.ProjectID)
	u := tn.d.Endpoint() + path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader = bytes.NewReader(r.body)
	if r.stream != nil {
		body = r.stream
	}
	req, err := http.NewRequest(r.method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.stream != nil {
		req.ContentLength = -1
	}
	ct := r.contentType
	if ct == "" {
		ct = "application/json"
		if r.body != nil || r.stream != nil {
			ct = "application/json;charset=UTF-8"
		}
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", sdkUserAgent)
	proj := r.projectHdr
	if proj == "" {
		proj = tn.cred.ProjectID
	}
	req.Header.Set("X-Project-Id", proj)
	if !r.noAuth {
		ak, sk := r.ak, r.sk
		if ak == "" {
			ak = tn.cred.AccessKey
		}
		if sk == "" {
			sk = tn.cred.SecretKey
		}
		at := r.date
		if at.IsZero() {
			at = time.Now()
		}
		signRequest(req, r.body, "", ak, sk, at)
	}
	if r.after != nil {
		r.after(req)
	}
	timeout := r.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", r.method, path, err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s → %d without X-Request-Id", r.method, path, resp.StatusCode)
	}
	return rawResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// wantRawErr asserts an ECS-shaped error {"error":{"code","message"}} with
// the given status and one of codes (any non-empty code when none given).
func wantRawErr(t *testing.T, r rawResp, status int, codes ...string) apiErr {
	t.Helper()
	var e apiErr
	if r.status != status {
		t.Errorf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == nil {
		t.Errorf("body is not {\"error\":{\"code\",\"message\"}}: %s", r.body)
		return e
	}
	checkCode(t, e.Error.Code, codes)
	if e.Error.Message == "" {
		t.Errorf("error %s has an empty message", e.Error.Code)
	}
	return e
}

// wantGatewayOrECSErr asserts a Huawei-shaped error with the given status:
// either the ECS shape {"error":{"code","message"}} or the API gateway
// shape {"error_code","error_msg","request_id"} (Huawei's gateway answers
// unknown APIs with APIGW.0101 in that shape).
func wantGatewayOrECSErr(t *testing.T, r rawResp, status int) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var e apiErr
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("body is not JSON: %s", r.body)
		return
	}
	switch {
	case e.Error != nil && e.Error.Code != "" && e.Error.Message != "":
	case e.ErrorCode != "" && e.ErrorMsg != "" && e.RequestID != "":
	default:
		t.Errorf("body %s is neither {\"error\":{\"code\",\"message\"}} nor {\"error_code\",\"error_msg\",\"request_id\"}", r.body)
	}
}

// wantAuthErr asserts the gateway-shaped 401 APIGW.0301.
func wantAuthErr(t *testing.T, r rawResp) {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Errorf("status %d, want 401; body %s", r.status, r.body)
	}
	var e apiErr
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("401 body is not JSON: %s", r.body)
		return
	}
	if e.ErrorCode != "APIGW.0301" || e.ErrorMsg == "" || e.RequestID == "" {
		t.Errorf("401 body %s; want error_code APIGW.0301 with error_msg and request_id", r.body)
	}
	if got := r.header.Get("X-Request-Id"); e.RequestID != "" && got != e.RequestID {
		t.Errorf("request_id %q differs from X-Request-Id %q", e.RequestID, got)
	}
}

func checkCode(t *testing.T, got string, want []string) {
	t.Helper()
	if len(want) == 0 {
		if got == "" {
			t.Errorf("empty error code")
		}
		return
	}
	for _, w := range want {
		if got == w {
			return
		}
	}
	t.Errorf("error code %q, want one of %v", got, want)
}
