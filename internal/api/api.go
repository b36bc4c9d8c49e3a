// Package api is the HTTP edge of the service: the Huawei ECS wire format
// (paths, bodies, error shapes), request signing checks, project scoping
// and the per-request log line.
//
// Contract:
//   - Every response carries X-Request-Id.
//   - Every route but /healthz needs a valid SDK-HMAC-SHA256 signature, and
//     the signing key's project must be the {project_id} of the path. A call
//     forwarded by another node of the cloud (internal/cluster) carries that
//     node's MAC instead, and the caller that node authenticated: its
//     project, user, access key and request id, so the action log of a
//     forwarded call reads as if the call had been received here.
//   - A call that must run on the server's own host and answer at once
//     (os-resetpwd-flag: the guest agent answers there) is forwarded to
//     that host's node when the server is elsewhere; a forwarded call is
//     never forwarded again.
//   - A query that repeats a key, or that net/url cannot split into pairs
//     (a raw ";"), is refused (400 Ecs.0005) before any handler, so the
//     first value a handler reads is the one that was meant and no pair is
//     dropped unseen.
//   - A refused request's log line names the access key it claimed and the
//     reason, never the signature, a secret or the canonical request.
//   - Errors are mapped from their kind in one table (errors.go); a cause is
//     logged with the request id and never sent to the client.
//   - Request bodies are capped at MaxBody bytes; larger ones are refused
//     before they are read whole.
//   - It is the tenant surface only: operator actions (importing an image,
//     adding credentials) are ecsd subcommands run on the node, and no
//     route here reads or writes a host file named by a client.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/aksk"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// MaxBody is the largest request body accepted.
const MaxBody = 64 << 10

// Config configures the handler.
type Config struct {
	Service *cloud.Service
	Logger  *slog.Logger
	// Forwarder, when set, checks calls forwarded by other nodes of the
	// cloud (cluster.Forwarded) and sends calls that must run on another
	// host to its node.
	Forwarder *cluster.Forwarder
	// Now is the clock for signature dates (default time.Now).
	Now func() time.Time
}

// Handler serves the API.
type Handler struct {
	svc      *cloud.Service
	log      *slog.Logger
	verifier *aksk.Verifier
	fwd      *cluster.Forwarder
	table    []route
	// readsQuery are the routes of table whose handler reads (and checks)
	// its own query parameters; every other route takes none.
	readsQuery map[*route]bool
}

// New returns the API handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{svc: cfg.Service, log: cfg.Logger, fwd: cfg.Forwarder}
	h.verifier = &aksk.Verifier{Lookup: cfg.Service.LookupSecret, Now: cfg.Now}
	h.table = append(h.routes(), h.novaRoutes()...)
	h.readsQuery = map[*route]bool{}
	for i := range h.table {
		if queryRoutes[routeKey(&h.table[i])] {
			h.readsQuery[&h.table[i]] = true
		}
	}
	return h
}

// queryRoutes are the routes (routeKey) whose calls document query
// parameters; their handlers read them and refuse the others. Every
// other route's call documents none, so the dispatcher refuses any query
// parameter it is given rather than let the handler run without it.
var queryRoutes = map[string]bool{
	"GET /v1/{p}/cloudservers/detail":                true, // ListServersDetails
	"GET /v1/{p}/cloudservers/flavors":               true, // ListFlavors
	"GET /v2/cloudimages":                            true, // IMS ListImages
	"GET /v2.1/{p}/os-keypairs":                      true, // NovaListKeypairs: limit, marker
	"GET /v2/{p}/cloudvolumes":                       true, // EVS ListVolumes
	"GET /v2/{p}/cloudvolumes/detail":                true, // EVS ListVolumes
	"DELETE /v1/{p}/cloudservers/{}/detachvolume/{}": true, // DetachServerVolume: delete_flag
}

// routeKey names a route as queryRoutes does: "METHOD /path/{}/...".
func routeKey(rt *route) string { return rt.method + " /" + strings.Join(rt.pattern, "/") }

// request is one API call after routing and authentication.
type request struct {
	r      *http.Request
	body   []byte
	caller cloud.Caller
	params []string // path parameters in order
}

type handlerFunc func(w http.ResponseWriter, req *request) error

// route is a path pattern: literal segments, "{}" for a parameter and "{p}"
// for the project id.
type route struct {
	method  string
	pattern []string
	handle  handlerFunc
}

func (h *Handler) routes() []route {
	return append(append(h.fieldRoutes(), h.volumeRoutes()...), []route{
		{"POST", split("/v1/{p}/cloudservers/{}/reinstallos"), h.reinstall},
		{"POST", split("/v2/{p}/cloudservers/{}/reinstallos"), h.reinstallCloudInit},
		{"POST", split("/v1/{p}/cloudservers/{}/changeos"), h.changeOS},
		{"POST", split("/v2/{p}/cloudservers/{}/changeos"), h.changeOSCloudInit},
		{"PUT", split("/v1/{p}/cloudservers/{}/os-reset-password"), h.resetPassword},
		{"GET", split("/v1/{p}/cloudservers/{}/os-resetpwd-flag"), h.resetPasswordFlag},
		{"POST", split("/v1.1/{p}/cloudservers"), h.createServers},
		{"GET", split("/v1/{p}/jobs/{}"), h.showJob},
		{"POST", split("/v1/{p}/cloudservers"), h.createServers},
		{"GET", split("/v1/{p}/cloudservers/detail"), h.listServers},
		{"GET", split("/v1/{p}/cloudservers/flavors"), h.listFlavors},
		{"POST", split("/v1/{p}/cloudservers/action"), h.serverAction},
		{"POST", split("/v1/{p}/cloudservers/delete"), h.deleteServers},
		{"GET", split("/v1/{p}/cloudservers/{}"), h.showServer},
		{"GET", split("/v1/{p}/cloudservers/{}/os-interface"), h.listInterfaces},
		{"POST", split("/v2.1/{p}/os-keypairs"), h.createKeypair},
		{"GET", split("/v2.1/{p}/os-keypairs"), h.listKeypairs},
		{"GET", split("/v2.1/{p}/os-keypairs/{}"), h.showKeypair},
		{"DELETE", split("/v2.1/{p}/os-keypairs/{}"), h.deleteKeypair},
		{"GET", split("/v2/cloudimages"), h.listImages},
		{"GET", split("/v2/cloudimages/{}"), h.showImage},
		{"GET", split("/v2/images/{}"), h.glanceShowImage},
	}...)
}

func split(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

// pathSegments splits the path as the client escaped it, then unescapes
// each segment: an escaped "/" ("%2F") stays inside its segment, as the
// signature's canonical form (aksk) keeps it, instead of becoming a
// separator that routes "{id}%2Fos-interface" to another API than the one
// signed. ok is false for a path that does not unescape.
func pathSegments(u *url.URL) (segs []string, ok bool) {
	segs = split(u.EscapedPath())
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs[i] = d
	}
	return segs, true
}

// match finds the route for a path. It returns the route (nil when none
// matches the path), whether the path matched another method only, and the
// path parameters.
func match(routes []route, method string, segs []string) (rt *route, wrongMethod bool, project string, params []string) {
	for i := range routes {
		r := &routes[i]
		if len(r.pattern) != len(segs) {
			continue
		}
		ok := true
		var ps []string
		var pid string
		for j, p := range r.pattern {
			switch p {
			case "{}":
				if segs[j] == "" {
					ok = false
				}
				ps = append(ps, segs[j])
			case "{p}":
				if segs[j] == "" {
					ok = false
				}
				pid = segs[j]
			default:
				ok = ok && p == segs[j]
			}
			if !ok {
				break
			}
		}
		if !ok {
			continue
		}
		if r.method != method {
			wrongMethod = true
			continue
		}
		return r, false, pid, ps
	}
	return nil, wrongMethod, "", nil
}

// ServeHTTP routes, authenticates, runs the handler and logs one line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := newRequestID()
	w.Header().Set("X-Request-Id", rid)
	sw := &statusWriter{ResponseWriter: w}
	err := h.serve(sw, r, rid)
	if err != nil {
		h.writeError(sw, rid, err)
	}
	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("request_id", rid), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", sw.status), slog.Duration("latency", time.Since(start)),
	}
	if err != nil {
		code := ecs.CodeOf(err)
		attrs = append(attrs, slog.String("code", code.Wire), slog.String("kind", code.Kind.String()))
		var e *ecs.Error
		var rej *aksk.Rejection
		if errors.As(err, &rej) {
			// Refused by authentication: who claimed to call, and why.
			attrs = append(attrs, slog.String("access_key", rej.AccessKey), slog.String("reason", rej.Reason))
		} else if errors.As(err, &e) && e.Cause != nil {
			attrs = append(attrs, slog.String("cause", e.Cause.Error()))
		} else if e == nil {
			attrs = append(attrs, slog.String("cause", err.Error()))
		}
		if sw.status >= 500 && code != ecs.CodeTaskRunning {
			level = slog.LevelError
		}
	}
	h.log.LogAttrs(r.Context(), level, "request", attrs...)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rid string) error {
	if r.URL.Path == "/healthz" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return ecs.Errorf(ecs.CodeMethodNotAllowed, "Method not allowed.")
		}
		return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	segs, ok := pathSegments(r.URL)
	if !ok {
		return ecs.Errorf(ecs.CodeResourceNotFound, "The API does not exist or has not been published in the environment.")
	}
	rt, _, pid, params := match(h.table, r.Method, segs)
	if rt == nil {
		// The API gateway knows an API by its method and path together: a
		// path served for other methods only is an API that does not
		// exist, as an unknown path is.
		return ecs.Errorf(ecs.CodeResourceNotFound, "The API does not exist or has not been published in the environment.")
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	caller, err := h.authenticate(r, body)
	if err != nil {
		return err
	}
	if caller.RequestID == "" {
		caller.RequestID = rid
	}
	if pid != "" && pid != caller.ProjectID {
		return ecs.Errorf(ecs.CodeProjectMismatch, "project_id in token mismatches with project_id in url.")
	}
	if hp := r.Header.Get("X-Project-Id"); hp != "" && hp != caller.ProjectID {
		return ecs.Errorf(ecs.CodeProjectMismatch, "project_id in token mismatches with project_id in url.")
	}
	if err := singleValuedQuery(r.URL.RawQuery); err != nil {
		return err
	}
	if r.URL.RawQuery != "" && !h.readsQuery[rt] {
		if err := checkQuery(r.URL.Query()); err != nil {
			return err
		}
	}
	return rt.handle(w, &request{r: r, body: body, caller: caller, params: params})
}

// authenticate returns the caller of r: the project and user of the access
// key that signed it, or, for a call forwarded by another node of the
// cloud, those that node authenticated.
func (h *Handler) authenticate(r *http.Request, body []byte) (cloud.Caller, error) {
	if cluster.Forwarded(r) {
		if h.fwd == nil {
			return cloud.Caller{}, ecs.Wrap(ecs.CodeAuth, errors.New("a forwarded call, and this node takes none"), forwardRefusedMessage)
		}
		c, err := h.fwd.Verify(r, body)
		if err != nil {
			return cloud.Caller{}, ecs.Wrap(ecs.CodeAuth, err, forwardRefusedMessage)
		}
		return cloud.Caller{ProjectID: c.ProjectID, UserID: c.UserID, AccessKey: c.AccessKey, RequestID: c.RequestID}, nil
	}
	ak, err := h.verifier.Verify(r, body)
	if err != nil {
		return cloud.Caller{}, h.unknownWhileUnavailable(r, err)
	}
	if len(body) > 0 && r.Header.Get(aksk.HeaderContentSha256) != "" {
		// Every body here is JSON: it must be signed, not UNSIGNED-PAYLOAD.
		return cloud.Caller{}, aksk.Refuse(ak, "the request body must be signed")
	}
	caller, ok := h.svc.CallerOf(r.Context(), ak)
	if !ok {
		return cloud.Caller{}, h.unknownWhileUnavailable(r, aksk.RefuseUnknownKey(ak))
	}
	return caller, nil
}

// unknownWhileUnavailable turns the refusal err of a key this node does not
// know into a store outage (503) when the keys could not be looked up in
// the store: the key may have been added meanwhile. A refusal of a known
// key (a bad signature) stays what it is.
func (h *Handler) unknownWhileUnavailable(r *http.Request, err error) error {
	var rej *aksk.Rejection
	if !errors.As(err, &rej) || rej.AccessKey == "" || !h.svc.KeysUnavailable() {
		return err
	}
	if _, known := h.svc.CallerOf(r.Context(), rej.AccessKey); known {
		return err
	}
	return ecs.Wrap(ecs.CodeSystem, fmt.Errorf("access key %s not found: %w", rej.AccessKey, store.ErrUnavailable), "look up the access key")
}

// forwardRefusedMessage is what the sender of a refused forwarded call is
// told; the reason is logged.
const forwardRefusedMessage = "Incorrect IAM authentication information: the forwarded call is not authenticated."

// forward sends req, which must run on host, to host's node and relays its
// answer: for calls that need a server's own host (its VM, its guest
// agent) when the server is elsewhere.
func (h *Handler) forward(w http.ResponseWriter, req *request, host string) error {
	resp, err := h.send(req.r.Context(), req, host)
	if err != nil {
		return err
	}
	return cluster.Relay(w, resp)
}

// send forwards req to host's node and returns its response, for the
// caller this node authenticated.
func (h *Handler) send(ctx context.Context, req *request, host string) (*http.Response, error) {
	if h.fwd == nil {
		return nil, ecs.Wrap(ecs.CodeSystem, errors.New("no forwarder"), "forward")
	}
	c := req.caller
	resp, err := h.fwd.Forward(ctx, host, req.r.Method, req.r.URL.RequestURI(), req.body,
		cluster.Caller{ProjectID: c.ProjectID, UserID: c.UserID, AccessKey: c.AccessKey, RequestID: c.RequestID})
	if err != nil {
		return nil, ecs.Wrap(ecs.CodeSystem, err, "forward to the server's host")
	}
	return resp, nil
}

// elsewhere reports whether a call that must run on host is to be
// forwarded there: this node forwards, host is another one, and req was
// not itself forwarded (the owner of a server answers from what it has).
func (h *Handler) elsewhere(req *request, host string) bool {
	return host != "" && h.fwd != nil && host != h.fwd.Host() && !cluster.Forwarded(req.r)
}

// singleValuedQuery refuses a query that repeats a key, or that holds a
// pair net/url cannot parse (a raw ";"; Verify refused bad escapes). The signature
// covers the query sorted by key and value, so "?limit=1&limit=1000"
// signed as is still verifies after its pairs are reordered, while a
// handler reads only the first value: a repeated key would let whoever
// reorders a signed request pick the value. No route takes a list in the
// query, so a repeat is a client error (400 Ecs.0005) rather than a
// signature failure; it is checked after authentication, like every
// parameter.
func singleValuedQuery(raw string) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw) // what handlers see; Verify refused undecodable pairs
	if err != nil {
		// net/url drops a pair holding a raw ";" (and Query() hides the
		// error): the handler would run as if the parameter were absent.
		return ecs.Errorf(ecs.CodeInvalidParam, "The query string is malformed: separate parameters with \"&\" and escape a \";\" in a value as %%3B.")
	}
	var repeated []string
	for k, vs := range q {
		if len(vs) > 1 {
			repeated = append(repeated, k)
		}
	}
	if len(repeated) == 0 {
		return nil
	}
	slices.Sort(repeated)
	name := repeated[0]
	if len(name) > 64 {
		name = name[:64] + "..."
	}
	return ecs.Errorf(ecs.CodeInvalidParam, "The query parameter %q is repeated; give it once.", name)
}

// readBody reads at most MaxBody bytes; a larger body is refused as soon as
// its declared length or its first MaxBody+1 bytes show it.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBody {
		return nil, ecs.Errorf(ecs.CodeBodyTooLarge, "The request body exceeds %d bytes.", MaxBody)
	}
	if r.Body == nil || r.ContentLength == 0 {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, ecs.Wrap(ecs.CodeInvalidParam, err, "Failed to read the request body.")
	}
	if len(b) > MaxBody {
		return nil, ecs.Errorf(ecs.CodeBodyTooLarge, "The request body exceeds %d bytes.", MaxBody)
	}
	return b, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return ecs.Wrap(ecs.CodeSystem, err, "encode response")
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

type ecsErrorBody struct {
	Error ecsError `json:"error"`
}

type ecsError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type gatewayErrorBody struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
	RequestID string `json:"request_id"`
}

func (h *Handler) writeError(w *statusWriter, rid string, err error) {
	if w.status != 0 {
		return // the response has started; the log line records the error
	}
	status, code, msg, gateway := wireError(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if gateway {
		writeJSON(w, status, gatewayErrorBody{ErrorCode: code, ErrorMsg: msg, RequestID: rid})
		return
	}
	writeJSON(w, status, ecsErrorBody{Error: ecsError{Code: code, Message: msg}})
}
