// Package aksk signs and verifies HTTP requests with SDK-HMAC-SHA256, the
// AK/SK scheme of the official huaweicloud-sdk-go-v3 (core/auth/signer).
//
// It promises:
//   - Sign writes the same X-Sdk-Date and Authorization headers the official
//     SDK writes for the same request, keys and time; Verify accepts what the
//     SDK signs. Both are checked against vectors made by the real SDK
//     (testdata/sdk_vectors.json).
//   - Verify authenticates the method, the path, the query, every header in
//     SignedHeaders and the body (unless the client sent
//     X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD, as the SDK does for bodies that
//     are neither JSON nor BSON). Headers outside SignedHeaders are NOT
//     authenticated: handlers must not trust them.
//   - X-Sdk-Date must be one of the signed headers and within MaxSkew of the
//     verifier's clock. Replays inside that window are not detected.
//   - Every rejection is an *ecs.Error of kind ecs.CodeAuth whose message says
//     what is wrong and never carries the expected signature or a secret key.
//     Its cause is a *Rejection (the claimed access key and the reason) for
//     the operator's log.
//   - An unknown access key and a wrong signature get the same message, and
//     an unknown key's request is still hashed and signed (with a dummy
//     secret), so neither the answer nor the work done tells a known key from
//     an unknown one. (The time Lookup takes is the Lookup's business.)
//
// Canonical form (as the SDK builds it): the path is split on "/" and each
// segment percent-escaped (A-Za-z0-9 and "_-~." kept, uppercase hex) with a
// trailing "/"; query pairs are decoded, sorted by key then value and
// re-escaped the same way; each signed header gives "name:trimmed value".
// The host header is taken from the request's Host. A "%2F" that the client
// sent inside a path segment stays inside that segment (as net/http's router
// sees it) instead of becoming a separator.
package aksk

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
)

const (
	// Algorithm is the only signing algorithm Verify accepts.
	Algorithm = "SDK-HMAC-SHA256"
	// DateFormat is the layout of the X-Sdk-Date header.
	DateFormat = "20060102T150405Z"
	// HeaderDate carries the signing time.
	HeaderDate = "X-Sdk-Date"
	// HeaderContentSha256 set to UnsignedPayload leaves the body unsigned.
	HeaderContentSha256 = "X-Sdk-Content-Sha256"
	// UnsignedPayload replaces the body hash when HeaderContentSha256 says so.
	UnsignedPayload = "UNSIGNED-PAYLOAD"

	// DefaultMaxSkew is the allowed clock difference when Verifier.MaxSkew is 0.
	DefaultMaxSkew = 15 * time.Minute

	maxSignedHeaders = 64
	maxAccessKeyLen  = 128
)

// Sign signs r the way the official SDK does: sets X-Sdk-Date (from now, UTC) and Authorization.
// Signed headers: all headers present on r except Content-Type and keys containing '_' (host only if r.Header has "Host").
//
// The value signed for host is the host the request will be sent to
// (r.Host, else r.URL.Host), since net/http never sends a Host header from
// r.Header. Unlike the SDK, Sign never adds X-Sdk-Content-Sha256 by itself:
// the body is signed unless the caller set that header to UNSIGNED-PAYLOAD.
func Sign(r *http.Request, body []byte, ak, sk string, now time.Time) {
	r.Header.Del("Authorization")
	date := now.UTC().Format(DateFormat)
	r.Header.Set(HeaderDate, date)

	// One canonical key per header, whatever spelling r.Header used.
	hdr := make(http.Header, len(r.Header))
	names := make([]string, 0, len(r.Header))
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "content-type") || strings.Contains(k, "_") || lk == "authorization" {
			continue
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if _, dup := hdr[ck]; !dup {
			names = append(names, lk)
		}
		hdr[ck] = append(hdr[ck], vs...)
	}
	slices.Sort(names)
	signed := strings.Join(names, ";")

	host := r.Host
	if host == "" && r.URL != nil {
		host = r.URL.Host
	}

	st := getState()
	defer putState(st)
	crHash, _ := st.canonicalRequestHash(r.Method, r.URL, host, hdr, signed, body, false)
	sig := st.signature(sk, date, &crHash)

	var hexSig [2 * sha256.Size]byte
	hex.Encode(hexSig[:], sig[:])
	r.Header.Set("Authorization", Algorithm+" Access="+ak+", SignedHeaders="+signed+", Signature="+string(hexSig[:]))
}

// Verifier checks signed requests.
type Verifier struct {
	// Lookup returns the secret key of an access key; ok=false when unknown.
	Lookup  func(ctx context.Context, ak string) (sk string, ok bool)
	MaxSkew time.Duration    // 0 means 15 minutes
	Now     func() time.Time // nil means time.Now
}

// Verify checks r (whose body bytes are given) and returns the access key that signed it.
// Errors are *ecs.Error with Code ecs.CodeAuth ("APIGW.0301") and a client-safe message that
// says what is wrong (missing Authorization, unsupported algorithm, malformed header,
// unknown access key, X-Sdk-Date missing/malformed/outside the allowed skew, signature mismatch),
// never the expected signature or the secret.
//
// r is expected as a net/http server delivers it (canonical header keys,
// r.Host set). Lookup is called, with r's context, only for well-formed,
// fresh requests; it must be safe for concurrent use.
func (v *Verifier) Verify(r *http.Request, body []byte) (ak string, err error) {
	auths := r.Header["Authorization"]
	if len(auths) == 0 || auths[0] == "" {
		return "", refuse("", msgNoAuth)
	}
	if len(auths) > 1 {
		return "", refuse("", msgTwoAuth)
	}
	ak, signed, sig, msg := parseAuthorization(auths[0])
	if msg != "" {
		return "", refuse("", msg)
	}
	if !listHas(signed, "x-sdk-date") {
		return "", refuse(ak, msgDateUnsigned)
	}

	dates := r.Header[HeaderDate]
	if len(dates) == 0 || dates[0] == "" {
		return "", refuse(ak, msgNoDate)
	}
	t, ok := parseDate(dates[0])
	if len(dates) > 1 || !ok {
		return "", refuse(ak, msgBadDate)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if d := now().Sub(t); d > skew || d < -skew {
		return "", refuse(ak, msgSkew)
	}

	st := getState()
	defer putState(st)
	crHash, msg := st.canonicalRequestHash(r.Method, r.URL, r.Host, r.Header, signed, body, true)
	if msg != "" {
		return "", refuse(ak, msg)
	}

	var sk string
	known := false
	if v.Lookup != nil {
		sk, known = v.Lookup(r.Context(), ak)
	}
	if !known || sk == "" {
		// Do the work a known key costs, then refuse as a wrong signature.
		known, sk = false, dummySecret
	}
	want := st.signature(sk, dates[0], &crHash)
	match := hmac.Equal(want[:], sig[:])
	if !known {
		return "", refuseAs(ak, reasonUnknownAK, msgBadSignature)
	}
	if !match {
		return "", refuseAs(ak, reasonMismatch, msgBadSignature)
	}
	return ak, nil
}

// dummySecret signs for unknown access keys. It has the length of the
// secrets ecsd makes; HMAC-SHA256 costs the same for any key up to 64 bytes.
var dummySecret = rand.Text() + rand.Text()[:14]

// Rejection is the cause of every error Verify returns, for the operator's
// log. It never holds the signature, a secret or the canonical request.
type Rejection struct {
	// AccessKey is the access key the request claimed; "" when its
	// Authorization header did not parse.
	AccessKey string
	// Reason is a fixed text saying why the request was refused. It may say
	// more than the client's message (unknown key versus wrong signature).
	Reason string
}

func (r *Rejection) Error() string { return r.Reason }

// Refuse returns the error for a request refused by the authentication
// layer for reason, with the client message authErrorPrefix+reason (as
// Verify's own rejections). Callers that refuse a request Verify accepted
// (e.g. an unsigned body) use it so that the refusal is logged alike.
func Refuse(ak, reason string) error { return refuse(ak, reason) }

// RefuseUnknownKey returns the refusal of a request whose access key is
// unknown, worded as Verify words it (the same as a wrong signature).
func RefuseUnknownKey(ak string) error { return refuseAs(ak, reasonUnknownAK, msgBadSignature) }

// Rejection reasons. Each is a fixed string: nothing from the request, the
// expected signature or the key store ever reaches a client.
const (
	msgNoAuth        = "missing Authorization header"
	msgTwoAuth       = "more than one Authorization header"
	msgAlgorithm     = "unsupported signing algorithm, want " + Algorithm
	msgMalformed     = "malformed Authorization header"
	msgDateUnsigned  = "X-Sdk-Date is not a signed header"
	msgNoDate        = "missing X-Sdk-Date header"
	msgBadDate       = "malformed X-Sdk-Date header, want format " + DateFormat
	msgSkew          = "X-Sdk-Date is outside the allowed clock skew"
	msgQuery         = "malformed query string"
	msgHeaderMissing = "a signed header is missing from the request"
	// msgBadSignature answers both an unknown key and a wrong signature,
	// in the words of Huawei's gateway.
	msgBadSignature = "verify aksk signature fail"

	// Reasons logged for msgBadSignature.
	reasonUnknownAK = "unknown access key"
	reasonMismatch  = "signature does not match"
)

// authErrorPrefix starts every rejection message, as Huawei's gateway does.
const authErrorPrefix = "Incorrect IAM authentication information: "

// refuse returns the rejection of ak's request whose client message is the reason.
func refuse(ak, reason string) error { return refuseAs(ak, reason, reason) }

// refuseAs returns the rejection of ak's request for reason, telling the client msg.
func refuseAs(ak, reason, msg string) error {
	return ecs.Wrap(ecs.CodeAuth, &Rejection{AccessKey: ak, Reason: reason}, authErrorPrefix+msg)
}

// state holds the per-call scratch space, pooled so that Verify does not
// allocate on the common path.
type state struct {
	buf   []byte
	pairs []queryPair
	vals  []string

	// mac is HMAC-SHA256 keyed with macKey, kept so that a pooled state
	// reused for the same secret key (the common case) skips hmac.New.
	mac    hash.Hash
	macKey string
}

type queryPair struct{ k, v string }

var statePool = sync.Pool{New: func() any { return &state{buf: make([]byte, 0, 1024)} }}

func getState() *state { return statePool.Get().(*state) }

func putState(st *state) {
	if cap(st.buf) > 64<<10 || cap(st.pairs) > 1024 {
		return // do not keep what one odd request grew
	}
	clear(st.pairs[:cap(st.pairs)])
	clear(st.vals[:cap(st.vals)])
	st.buf, st.pairs, st.vals = st.buf[:0], st.pairs[:0], st.vals[:0]
	statePool.Put(st)
}

// canonicalRequestHash returns sha256 of the canonical request. hdr must have
// canonical keys. In strict mode (verifying) a malformed query or a missing
// signed header is reported as a client-safe message; otherwise (signing) the
// best effort is taken.
func (st *state) canonicalRequestHash(method string, u *url.URL, host string, hdr http.Header, signed string, body []byte, strict bool) (sum [sha256.Size]byte, msg string) {
	b := st.buf[:0]
	b = append(b, method...)
	b = append(b, '\n')
	b = appendCanonicalURI(b, u)
	b = append(b, '\n')
	var ok bool
	var raw string
	if u != nil {
		raw = u.RawQuery
	}
	if b, ok = st.appendCanonicalQuery(b, raw, strict); !ok {
		st.buf = b
		return sum, msgQuery
	}
	b = append(b, '\n')

	var kbuf [64]byte
	for rest := signed; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		if name == "host" {
			if host == "" && strict {
				st.buf = b
				return sum, msgHeaderMissing
			}
			b = appendHeaderLine(b, name, host)
			continue
		}
		vs := hdr[string(canonicalKey(kbuf[:0], name))]
		switch len(vs) {
		case 0:
			if strict {
				st.buf = b
				return sum, msgHeaderMissing
			}
		case 1:
			b = appendHeaderLine(b, name, vs[0])
		default: // the SDK writes one line per value, sorted
			st.vals = append(st.vals[:0], vs...)
			slices.Sort(st.vals)
			for _, v := range st.vals {
				b = appendHeaderLine(b, name, v)
			}
		}
	}
	b = append(b, '\n')
	b = append(b, signed...)
	b = append(b, '\n')

	if cs := hdr[HeaderContentSha256]; len(cs) > 0 && cs[0] == UnsignedPayload {
		b = append(b, UnsignedPayload...)
	} else {
		bh := sha256.Sum256(body)
		b = hex.AppendEncode(b, bh[:])
	}
	st.buf = b
	return sha256.Sum256(b), ""
}

// signature returns HMAC-SHA256(sk, string to sign).
func (st *state) signature(sk, date string, crHash *[sha256.Size]byte) [sha256.Size]byte {
	b := st.buf[:0]
	b = append(b, Algorithm...)
	b = append(b, '\n')
	b = append(b, date...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, crHash[:])
	st.buf = b

	if st.mac == nil || !sameKey(st.macKey, sk) {
		st.mac, st.macKey = hmac.New(sha256.New, []byte(sk)), sk
	} else {
		st.mac.Reset()
	}
	st.mac.Write(b)
	var out [sha256.Size]byte
	copy(out[:], st.mac.Sum(st.buf[len(b):]))
	return out
}

// sameKey compares two secret keys without an early exit on the first
// differing byte.
func sameKey(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return d == 0
}

func appendHeaderLine(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ':')
	b = append(b, strings.TrimSpace(value)...)
	return append(b, '\n')
}

// canonicalKey returns the net/http spelling of a lower-case header name
// ("x-sdk-date" -> "X-Sdk-Date"). The result aliases dst; map lookups with
// string(result) do not allocate.
func canonicalKey(dst []byte, name string) []byte {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

// listHas reports whether the ';'-separated list holds name.
func listHas(list, name string) bool {
	for list != "" {
		var n string
		n, list, _ = strings.Cut(list, ";")
		if n == name {
			return true
		}
	}
	return false
}

// appendCanonicalURI appends the escaped path segments of u and a trailing "/".
func appendCanonicalURI(b []byte, u *url.URL) []byte {
	start := len(b)
	if u != nil {
		if u.RawPath != "" && hasEncodedSlash(u.RawPath) {
			// Keep an escaped "/" inside its segment: decode segment by segment.
			for rest := u.EscapedPath(); ; {
				seg, tail, more := strings.Cut(rest, "/")
				if d, err := url.PathUnescape(seg); err == nil {
					seg = d
				}
				b = appendEscaped(b, seg)
				if !more {
					break
				}
				b = append(b, '/')
				rest = tail
			}
		} else {
			b = appendEscapedPath(b, u.Path)
		}
	}
	if len(b) == start || b[len(b)-1] != '/' {
		b = append(b, '/')
	}
	return b
}

func hasEncodedSlash(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && s[i+1] == '2' && (s[i+2] == 'F' || s[i+2] == 'f') {
			return true
		}
	}
	return false
}

// appendEscapedPath escapes every byte of p except "/" and the unreserved set.
func appendEscapedPath(b []byte, p string) []byte {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '/' {
			b = append(b, c)
		} else {
			b = appendEscapedByte(b, c)
		}
	}
	return b
}

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b = appendEscapedByte(b, s[i])
	}
	return b
}

func appendEscapedByte(b []byte, c byte) []byte {
	if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '~' || c == '.' {
		return append(b, c)
	}
	const hexUpper = "0123456789ABCDEF"
	return append(b, '%', hexUpper[c>>4], hexUpper[c&15])
}

// appendCanonicalQuery decodes raw as net/http does ("&"-separated, "+" is a
// space, empty pairs skipped), sorts by key then value and appends the pairs
// re-escaped. It returns false for an undecodable pair in strict mode; when
// not strict such a pair is taken literally.
func (st *state) appendCanonicalQuery(b []byte, raw string, strict bool) ([]byte, bool) {
	if raw == "" {
		return b, true
	}
	pairs := st.pairs[:0]
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			if strict {
				st.pairs = pairs
				return b, false
			}
			dk, dv = k, v
		}
		pairs = append(pairs, queryPair{dk, dv})
	}
	st.pairs = pairs
	slices.SortFunc(pairs, func(a, c queryPair) int {
		if n := strings.Compare(a.k, c.k); n != 0 {
			return n
		}
		return strings.Compare(a.v, c.v)
	})
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = appendEscaped(b, p.k)
		b = append(b, '=')
		b = appendEscaped(b, p.v)
	}
	return b, true
}

// parseAuthorization splits "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b,
// Signature=hex". Parameters may come in any order, with or without spaces
// after the commas. msg is non-empty when the header is rejected.
func parseAuthorization(h string) (ak, signed string, sig [sha256.Size]byte, msg string) {
	h = trimOWS(h)
	i := strings.IndexAny(h, " \t")
	if i < 0 {
		if h == Algorithm {
			return "", "", sig, msgMalformed
		}
		return "", "", sig, msgAlgorithm
	}
	if h[:i] != Algorithm {
		return "", "", sig, msgAlgorithm
	}
	var hexSig string
	var seen uint8
	for rest := h[i+1:]; ; {
		part, tail, more := strings.Cut(rest, ",")
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return "", "", sig, msgMalformed
		}
		k, val = trimOWS(k), trimOWS(val)
		var bit uint8
		switch k {
		case "Access":
			ak, bit = val, 1
		case "SignedHeaders":
			signed, bit = val, 2
		case "Signature":
			hexSig, bit = val, 4
		default:
			return "", "", sig, msgMalformed
		}
		if seen&bit != 0 {
			return "", "", sig, msgMalformed
		}
		seen |= bit
		if !more {
			break
		}
		rest = tail
	}
	if seen != 7 || !validAccessKey(ak) || !validSignedHeaders(signed) || !validHexSignature(hexSig) {
		return "", "", sig, msgMalformed
	}
	for i := range sig {
		sig[i] = unhex(hexSig[2*i])<<4 | unhex(hexSig[2*i+1])
	}
	return ak, signed, sig, ""
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func validAccessKey(ak string) bool {
	if ak == "" || len(ak) > maxAccessKeyLen {
		return false
	}
	for i := 0; i < len(ak); i++ {
		if c := ak[i]; c <= ' ' || c >= 0x7f || c == ',' || c == ';' || c == '=' {
			return false
		}
	}
	return true
}

// validSignedHeaders accepts a ';'-separated list of lower-case header names.
func validSignedHeaders(list string) bool {
	n := 0
	for rest := list; ; {
		name, tail, more := strings.Cut(rest, ";")
		if name == "" || len(name) > 64 {
			return false
		}
		for i := 0; i < len(name); i++ {
			if !isLowerTokenByte(name[i]) {
				return false
			}
		}
		if n++; n > maxSignedHeaders {
			return false
		}
		if !more {
			return true
		}
		rest = tail
	}
}

func isLowerTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHexSignature accepts 64 lower-case hex digits, as the SDK writes them.
func validHexSignature(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// parseDate parses exactly DateFormat ("20060102T150405Z"), rejecting
// out-of-range fields that time.Date would normalize.
func parseDate(s string) (time.Time, bool) {
	if len(s) != len(DateFormat) || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, mo, d := num(s[0:4]), num(s[4:6]), num(s[6:8])
	h, mi, sec := num(s[9:11]), num(s[11:13]), num(s[13:15])
	if y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Day() != d { // e.g. 20240230
		return time.Time{}, false
	}
	return t, true
}
