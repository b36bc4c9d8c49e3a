// Package client is a Go client for the ecsd API, which speaks the Huawei
// Cloud ECS wire protocol (see docs and shared/reference/huawei-ecs-api.md).
//
// It promises:
//   - Every request goes out as the official Huawei Go SDK would send it:
//     signed with SDK-HMAC-SHA256 (internal/aksk), with the headers
//     User-Agent, X-Project-Id and X-Sdk-Date signed, a JSON body ending in
//     "\n", and Content-Type application/json;charset=UTF-8 on bodies.
//   - Request and response types are the wire shapes, with the contract's
//     JSON tags; they are this package's own and share nothing with the
//     server's code.
//   - Any non-2xx answer is returned as an *APIError carrying the Huawei
//     error code, its message and the request id, whichever of the two error
//     body shapes the server used. A job that ends in FAIL is returned by
//     WaitJob as a *JobFailedError. Callers tell errors apart with errors.As,
//     never by their text.
//   - Redirects are not followed (the SDK does not follow them either, and a
//     signed request must not be replayed elsewhere).
//   - Every method takes a ctx first and returns promptly once it is done.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/aksk"
)

// UserAgent is the User-Agent the client sends (and signs).
const UserAgent = "ecsctl/0.1"

// maxErrorBody bounds how much of an error answer is read, maxRawMessage
// how much of a body in no known shape becomes APIError.Message.
const (
	maxErrorBody  = 1 << 20
	maxRawMessage = 2048
)

// Client calls one ecsd endpoint on behalf of one project. It is safe for
// concurrent use.
type Client struct {
	cfg     Config
	base    *url.URL
	baseErr error // a bad Endpoint, returned by every call
	hc      *http.Client
	now     func() time.Time
}

// New returns a Client for cfg. An Endpoint without a scheme gets https://,
// as in the SDK; the endpoint's own path is ignored, because API paths are
// absolute and signed as such. An unusable Endpoint or CACertFile makes
// every call fail. When cfg.HTTPClient is nil a client with the SDK's 120 s
// timeout that does not follow redirects is used, trusting the CAs of
// cfg.CACertFile when it is set.
func New(cfg Config) *Client {
	base, err := baseURL(cfg.Endpoint)
	hc := cfg.HTTPClient
	if hc == nil {
		// Each client owns its connections: another user of
		// http.DefaultTransport closing its idle connections (as
		// httptest.Server.Close does) must not break a call in flight.
		var tr http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
		if cfg.CACertFile != "" {
			t, cerr := transportTrusting(cfg.CACertFile)
			if err == nil {
				err = cerr
			}
			tr = t
		}
		hc = &http.Client{
			Transport: tr,
			Timeout:   120 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return &Client{cfg: cfg, base: base, baseErr: err, hc: hc, now: time.Now}
}

// transportTrusting returns a transport like http.DefaultTransport whose TLS
// connections trust only the CA certificates of the PEM file caFile.
func transportTrusting(caFile string) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return tr, fmt.Errorf("client: CA certificate file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tr, fmt.Errorf("client: CA certificate file %s holds no PEM certificate", caFile)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

func baseURL(endpoint string) (*url.URL, error) {
	e := strings.TrimSpace(endpoint)
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("client: bad endpoint %q: want http(s)://host[:port]", endpoint)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Config returns the configuration the client was built with.
func (c *Client) Config() Config { return c.cfg }

// APIError is a non-2xx answer from the server.
type APIError struct {
	Status    int    // HTTP status
	Code      string // Huawei error code ("Ecs.0114"); "" when the body had none
	Message   string // the server's message, or the raw body when it was not a known error shape
	RequestID string // X-Request-Id (or the body's request_id)
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = fmt.Sprintf("HTTP %d", e.Status)
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.RequestID == "" {
		return code + ": " + msg
	}
	return fmt.Sprintf("%s: %s (request id %s)", code, msg, e.RequestID)
}

// IsCode reports whether err is an *APIError with the given Huawei code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// projectPath returns "/"+version+"/"+project id+"/"+the escaped elements.
func (c *Client) projectPath(version string, elems ...string) string {
	var b strings.Builder
	b.WriteString("/" + version + "/" + url.PathEscape(c.cfg.ProjectID))
	for _, e := range elems {
		b.WriteString("/" + e)
	}
	return b.String()
}

// esc escapes one path segment taken from a caller (an id, a name).
func esc(s string) string { return url.PathEscape(s) }

// do sends one signed request. path is already escaped. in, when non-nil, is
// sent as a JSON body; out, when non-nil, receives the decoded 2xx body.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	if c.baseErr != nil {
		return c.baseErr
	}
	u := *c.base
	ref, err := url.Parse(path)
	if err != nil {
		return fmt.Errorf("client: bad request path %q: %w", path, err)
	}
	u.Path, u.RawPath = ref.Path, ref.RawPath
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}

	var body []byte
	if in != nil {
		body, err = json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encode %s %s: %w", method, path, err)
		}
		body = append(body, '\n') // as the SDK's encoder does; signed
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if body == nil {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	}
	req.Header.Set("User-Agent", UserAgent)
	if c.cfg.ProjectID != "" {
		req.Header.Set("X-Project-Id", c.cfg.ProjectID)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	aksk.Sign(req, body, c.cfg.AccessKey, c.cfg.SecretKey, c.now())

	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return parseAPIError(resp.StatusCode, resp.Header.Get("X-Request-Id"), raw)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: decode answer to %s %s (HTTP %d): %w", method, path, resp.StatusCode, err)
	}
	return nil
}

// parseAPIError builds the error for a non-2xx answer, reading the body the
// way the SDK does: top-level error_code+error_msg (gateway shape), then
// top-level code+message, then the same pairs in nested objects ("error"
// first, then the others in key order). A body that matches none of them is
// kept whole as the message.
func parseAPIError(status int, requestID string, raw []byte) *APIError {
	e := &APIError{Status: status, RequestID: requestID}
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		e.Code, e.Message = findCode(m, 0)
		if e.RequestID == "" {
			if id, ok := m["request_id"].(string); ok {
				e.RequestID = id
			}
		}
	}
	if e.Code == "" {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > maxRawMessage {
			msg = strings.ToValidUTF8(msg[:maxRawMessage], "") + "..."
		}
		e.Message = msg
	}
	return e
}

func findCode(m map[string]any, depth int) (code, msg string) {
	for _, pair := range [][2]string{{"error_code", "error_msg"}, {"code", "message"}} {
		c, _ := m[pair[0]].(string)
		s, _ := m[pair[1]].(string)
		if c != "" && s != "" {
			return c, s
		}
	}
	if depth >= 8 {
		return "", ""
	}
	if inner, ok := m["error"].(map[string]any); ok {
		if c, s := findCode(inner, depth+1); c != "" {
			return c, s
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == "error" {
			continue
		}
		if inner, ok := m[k].(map[string]any); ok {
			if c, s := findCode(inner, depth+1); c != "" {
				return c, s
			}
		}
	}
	return "", ""
}
