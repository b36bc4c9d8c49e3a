package cluster

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Forwarding: an API call that must run on a given host (later: a password
// reset through the guest agent, the VNC console, the serial log of a
// server on that host) is sent by the node that received and authenticated
// it to that host's node, at its advertise URL. Nodes authenticate each
// other with a MAC keyed by a key derived from the cloud's shared secret
// key (--secret-key-file), over the method, path and query, body, target
// and sending host, the caller and a timestamp and nonce: a forged call, a
// call changed on the way, one sent to another host, one older than
// MaxSkew or one replayed is refused.

// The headers of a forwarded call.
const (
	HeaderTarget = "X-Ecsd-Forward-Target" // the host the call must run on
	HeaderFrom   = "X-Ecsd-Forward-From"   // the host that forwarded it
	HeaderCaller = "X-Ecsd-Forward-Caller" // PROJECT_ID/USER_ID, authenticated by the sender
	HeaderKey    = "X-Ecsd-Forward-Key"    // the access key that signed the caller's call
	HeaderReqID  = "X-Ecsd-Forward-Req"    // the X-Request-Id the caller was given
	HeaderTime   = "X-Ecsd-Forward-Time"   // unix milliseconds
	HeaderNonce  = "X-Ecsd-Forward-Nonce"
	HeaderMAC    = "X-Ecsd-Forward-Mac" // hex HMAC-SHA256
)

// Caller is whom a forwarded call is made for: the project and user of the
// access key the sending node verified, that access key and the request id
// the sending node gave the call (both recorded in the action log of what
// the call changes, as if it had been received here).
type Caller struct {
	ProjectID string
	UserID    string
	AccessKey string
	RequestID string
}

// ForwardConfig configures a Forwarder.
type ForwardConfig struct {
	// Key is the cloud's shared secret key (the bytes of its secret key
	// file); the MAC key is derived from it, so the key itself never
	// authenticates anything but sealed secrets.
	Key []byte
	// Host is this node's host name.
	Host string
	// Resolve returns the advertise URL (scheme://host:port) of a host's
	// node.
	Resolve func(ctx context.Context, host string) (string, error)
	// Client sends forwarded calls (default: a client with a 1 minute
	// timeout). With HTTPS between nodes, it must trust their certificates.
	Client *http.Client
	// MaxSkew bounds how old (or how far ahead, between clocks) a
	// forwarded call may be (default 30s).
	MaxSkew time.Duration
	// Now is the clock calls are stamped and checked with (default
	// time.Now). Nodes pass Host.Now, their estimate of the store's clock,
	// so that their own clocks need not agree.
	Now func() time.Time
}

// Forwarder sends calls to other nodes and checks the calls they send.
type Forwarder struct {
	cfg ForwardConfig
	key []byte

	mu   sync.Mutex
	seen map[string]time.Time // nonce -> when it may be forgotten
}

// ErrRefused is wrapped by every error of Verify.
var ErrRefused = errors.New("forwarded call refused")

// macInfo separates the forwarding MAC key from any other use of the
// shared key.
const macInfo = "ecsd node-to-node forwarding v2"

// NewForwarder returns a Forwarder.
func NewForwarder(cfg ForwardConfig) (*Forwarder, error) {
	if len(cfg.Key) < 16 {
		return nil, errors.New("cluster: forwarding needs the shared secret key")
	}
	if cfg.Host == "" {
		return nil, errors.New("cluster: forwarding needs this node's host name")
	}
	if cfg.Client == nil {
		// A transport of its own: another user of http.DefaultTransport
		// closing its idle connections must not break a forwarded call.
		cfg.Client = &http.Client{Timeout: time.Minute, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key, err := hkdf.Key(sha256.New, cfg.Key, nil, macInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("cluster: derive the forwarding key: %w", err)
	}
	return &Forwarder{cfg: cfg, key: key, seen: map[string]time.Time{}}, nil
}

// Host is this node's host name.
func (f *Forwarder) Host() string { return f.cfg.Host }

// Forward sends the call method requestURI (path and query, as received)
// with body, made by caller, to the node of host, and returns that node's
// response. The caller closes its body.
func (f *Forwarder) Forward(ctx context.Context, host, method, requestURI string, body []byte, caller Caller) (*http.Response, error) {
	if f.cfg.Resolve == nil {
		return nil, fmt.Errorf("forward to host %s: no host registry", host)
	}
	base, err := f.cfg.Resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("forward to host %s: %w", host, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+requestURI, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("forward to host %s: %w", host, err)
	}
	var nonce [16]byte
	rand.Read(nonce[:])
	h := req.Header
	h.Set(HeaderTarget, host)
	h.Set(HeaderFrom, f.cfg.Host)
	h.Set(HeaderCaller, caller.ProjectID+"/"+caller.UserID)
	h.Set(HeaderKey, caller.AccessKey)
	h.Set(HeaderReqID, caller.RequestID)
	h.Set(HeaderTime, strconv.FormatInt(f.cfg.Now().UnixMilli(), 10))
	h.Set(HeaderNonce, hex.EncodeToString(nonce[:]))
	if len(body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	h.Set(HeaderMAC, hex.EncodeToString(f.mac(method, requestURI, h, body)))
	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("forward to host %s at %s: %w", host, base, err)
	}
	return resp, nil
}

// Forwarded reports whether r claims to be a call forwarded by another
// node (Verify decides whether it is).
func Forwarded(r *http.Request) bool { return r.Header.Get(HeaderMAC) != "" }

// Verify checks a forwarded call r with its body: its MAC, that it is
// meant for this node's host, that it is not older or newer than MaxSkew,
// and that its nonce was not seen before. It returns the caller the
// sending node authenticated. Every error wraps ErrRefused.
func (f *Forwarder) Verify(r *http.Request, body []byte) (Caller, error) {
	h := r.Header
	got, err := hex.DecodeString(h.Get(HeaderMAC))
	if err != nil || !hmac.Equal(got, f.mac(r.Method, r.URL.RequestURI(), h, body)) {
		return Caller{}, fmt.Errorf("%w: bad MAC (not sent by a node of this cloud, or changed on the way)", ErrRefused)
	}
	if target := h.Get(HeaderTarget); target != f.cfg.Host {
		return Caller{}, fmt.Errorf("%w: meant for host %q, this is %q", ErrRefused, target, f.cfg.Host)
	}
	ms, err := strconv.ParseInt(h.Get(HeaderTime), 10, 64)
	if err != nil {
		return Caller{}, fmt.Errorf("%w: bad time", ErrRefused)
	}
	now := f.cfg.Now()
	sent := time.UnixMilli(ms)
	if d := now.Sub(sent); d > f.cfg.MaxSkew || d < -f.cfg.MaxSkew {
		return Caller{}, fmt.Errorf("%w: sent at %s, %s from this node's clock (limit %s)", ErrRefused,
			sent.UTC().Format(time.RFC3339), d.Round(time.Millisecond), f.cfg.MaxSkew)
	}
	if !f.firstUse(h.Get(HeaderNonce), now) {
		return Caller{}, fmt.Errorf("%w: replayed", ErrRefused)
	}
	project, user, ok := strings.Cut(h.Get(HeaderCaller), "/")
	if !ok || project == "" {
		return Caller{}, fmt.Errorf("%w: bad caller", ErrRefused)
	}
	return Caller{ProjectID: project, UserID: user, AccessKey: h.Get(HeaderKey), RequestID: h.Get(HeaderReqID)}, nil
}

// firstUse records nonce and reports whether it was unseen. A nonce is
// remembered for twice MaxSkew: an older call is refused by its time.
func (f *Forwarder) firstUse(nonce string, now time.Time) bool {
	if len(nonce) != 32 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seen[nonce]; ok {
		return false
	}
	for n, until := range f.seen {
		if now.After(until) {
			delete(f.seen, n)
		}
	}
	f.seen[nonce] = now.Add(2 * f.cfg.MaxSkew)
	return true
}

// mac is the MAC of a forwarded call: every header that Verify trusts,
// the method, the path and query, and the body's hash, each on its own
// line.
func (f *Forwarder) mac(method, requestURI string, h http.Header, body []byte) []byte {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, f.key)
	for _, s := range []string{macInfo, method, requestURI, h.Get(HeaderTarget), h.Get(HeaderFrom), h.Get(HeaderCaller),
		h.Get(HeaderKey), h.Get(HeaderReqID), h.Get(HeaderTime), h.Get(HeaderNonce), hex.EncodeToString(sum[:])} {
		io.WriteString(m, s)
		m.Write([]byte{'\n'})
	}
	return m.Sum(nil)
}

// Relay writes a forwarded call's response to w: its status, content type
// and body.
func Relay(w http.ResponseWriter, resp *http.Response) error {
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, err := io.Copy(w, resp.Body)
	return err
}
