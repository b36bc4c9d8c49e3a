package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// The Nova calls of issue 10: lock and unlock (server action), and the
// action log (os-instance-actions); and the X-Client-Token of idempotent
// creates.

func (h *Handler) novaRoutes() []route {
	return []route{
		{"POST", split("/v2.1/{p}/servers/{}/action"), h.novaServerAction},
		{"GET", split("/v2.1/{p}/servers/{}/os-instance-actions"), h.listInstanceActions},
		{"GET", split("/v2.1/{p}/servers/{}/os-instance-actions/{}"), h.showInstanceAction},
	}
}

// lockBody is the body of Nova's lock action: null, or (microversion 2.73)
// an object with a reason.
type lockBody struct {
	LockedReason *string `json:"locked_reason"`
}

// novaServerAction serves POST /v2.1/{p}/servers/{id}/action: {"lock":
// null | {"locked_reason": "..."}} and {"unlock": null}, answered 202 with
// no body as Nova does. Other Nova actions are refused by name.
func (h *Handler) novaServerAction(w http.ResponseWriter, req *request) error {
	var b map[string]json.RawMessage
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if len(b) != 1 {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: the body must name exactly one action (lock or unlock).")
	}
	var lock bool
	var reason string
	for name, raw := range b {
		switch name {
		case "lock":
			lock = true
			if len(raw) > 0 && string(raw) != "null" {
				var lb lockBody
				if err := decode(raw, &lb); err != nil {
					return err
				}
				if lb.LockedReason != nil {
					reason = *lb.LockedReason
				}
			}
		case "unlock":
			if len(raw) > 0 && string(raw) != "null" && string(raw) != "{}" {
				return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: unlock takes null.")
			}
		default:
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: the action %q is not supported here (lock and unlock are).",
				safeField(name))
		}
	}
	if err := h.svc.LockServer(req.r.Context(), req.caller, req.params[0], lock, reason); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

type wireInstanceAction struct {
	Action       string  `json:"action"`
	InstanceUUID string  `json:"instance_uuid"`
	Message      *string `json:"message"`
	ProjectID    string  `json:"project_id"`
	RequestID    string  `json:"request_id"`
	StartTime    string  `json:"start_time"`
	UserID       string  `json:"user_id"`
	// ecsd's own fields: who signed the request, the job it answered
	// with and the job's final status ("" while it runs).
	AccessKey  string              `json:"access_key"`
	JobID      string              `json:"job_id"`
	Outcome    string              `json:"outcome"`
	FinishTime *string             `json:"finish_time"`
	Events     []wireInstanceEvent `json:"events,omitempty"`
}

type wireInstanceEvent struct {
	Event      string  `json:"event"`
	StartTime  string  `json:"start_time"`
	FinishTime *string `json:"finish_time"`
	Result     *string `json:"result"`
	Traceback  *string `json:"traceback"`
}

const novaTime = "2006-01-02T15:04:05.000000"

func toWireAction(a ecs.Action) wireInstanceAction {
	w := wireInstanceAction{Action: a.Action, InstanceUUID: a.ServerID, ProjectID: a.ProjectID, RequestID: a.RequestID,
		StartTime: fmtTime(a.Start, novaTime), UserID: a.UserID, AccessKey: a.AccessKey, JobID: a.JobID, Outcome: a.Outcome}
	if a.Message != "" {
		w.Message = &a.Message
	}
	if !a.End.IsZero() {
		f := fmtTime(a.End, novaTime)
		w.FinishTime = &f
	}
	return w
}

// withEvents adds the action's one event, its job, as Nova lists the
// compute steps of an action (lock and unlock have none).
func withEvents(w wireInstanceAction, a ecs.Action) wireInstanceAction {
	w.Events = []wireInstanceEvent{}
	if a.RunJobID == "" {
		return w
	}
	ev := wireInstanceEvent{Event: "compute_" + a.Action + "_instance", StartTime: w.StartTime, FinishTime: w.FinishTime}
	switch a.Outcome {
	case ecs.JobSuccess:
		r := "Success"
		ev.Result = &r
	case ecs.JobFail:
		r := "Error"
		ev.Result = &r
	}
	w.Events = append(w.Events, ev)
	return w
}

// listInstanceActions serves GET /v2.1/{p}/servers/{id}/os-instance-actions.
func (h *Handler) listInstanceActions(w http.ResponseWriter, req *request) error {
	as, err := h.svc.ListActions(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	out := make([]wireInstanceAction, 0, len(as))
	for _, a := range as {
		out = append(out, toWireAction(a))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"instanceActions": out})
}

// showInstanceAction serves GET
// /v2.1/{p}/servers/{id}/os-instance-actions/{request_id}.
func (h *Handler) showInstanceAction(w http.ResponseWriter, req *request) error {
	a, err := h.svc.GetAction(req.r.Context(), req.caller, req.params[0], req.params[1])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"instanceAction": withEvents(toWireAction(a), a)})
}

// HeaderClientToken is the header of an idempotent create.
const HeaderClientToken = "X-Client-Token"

// clientToken returns the X-Client-Token of a create and the hash of the
// request that a retry must match: its path and its parameters. The body
// is hashed in a canonical form (keys sorted, no white space, numbers as
// written), so that a retry re-serialised with its keys in another order
// or with other white space is the same request.
func clientToken(req *request) (token, hash string) {
	token = req.r.Header.Get(HeaderClientToken)
	if token == "" {
		return "", ""
	}
	sum := sha256.New()
	sum.Write([]byte(req.r.URL.Path))
	sum.Write([]byte{0})
	sum.Write(canonicalJSON(req.body))
	return token, hex.EncodeToString(sum.Sum(nil))
}

// canonicalJSON re-encodes one JSON value with its object keys sorted; a
// body that is not JSON is returned as it is.
func canonicalJSON(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}
