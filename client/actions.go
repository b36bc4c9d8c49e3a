package client

import (
	"context"
)

// ServerAction is one entry of a server's action log (Nova's instance
// action, GET /v2.1/{p}/servers/{id}/os-instance-actions): a
// state-changing request, who made it, its job and how the job ended
// (Outcome SUCCESS or FAIL; "" while it runs).
type ServerAction struct {
	Action       string             `json:"action"`
	InstanceUUID string             `json:"instance_uuid"`
	Message      *string            `json:"message"`
	ProjectID    string             `json:"project_id"`
	RequestID    string             `json:"request_id"`
	StartTime    string             `json:"start_time"`
	FinishTime   *string            `json:"finish_time"`
	UserID       string             `json:"user_id"`
	AccessKey    string             `json:"access_key"`
	JobID        string             `json:"job_id"`
	Outcome      string             `json:"outcome"`
	Events       []ServerActionStep `json:"events,omitempty"`
}

// ServerActionStep is an event of an action (its job).
type ServerActionStep struct {
	Event      string  `json:"event"`
	StartTime  string  `json:"start_time"`
	FinishTime *string `json:"finish_time"`
	Result     *string `json:"result"`
}

type lockReason struct {
	LockedReason string `json:"locked_reason,omitempty"`
}

// LockServer locks a server (Nova action "lock", with an optional
// reason): it refuses state-changing calls (Ecs.0605) until unlocked.
func (c *Client) LockServer(ctx context.Context, id, reason string) error {
	var body map[string]any
	if reason == "" {
		body = map[string]any{"lock": nil}
	} else {
		body = map[string]any{"lock": lockReason{LockedReason: reason}}
	}
	return c.do(ctx, "POST", c.projectPath("v2.1", "servers", esc(id), "action"), nil, body, nil)
}

// UnlockServer unlocks a server (Nova action "unlock").
func (c *Client) UnlockServer(ctx context.Context, id string) error {
	return c.do(ctx, "POST", c.projectPath("v2.1", "servers", esc(id), "action"), nil, map[string]any{"unlock": nil}, nil)
}

// ListServerActions lists a server's action log, the newest first.
func (c *Client) ListServerActions(ctx context.Context, id string) ([]ServerAction, error) {
	var out struct {
		InstanceActions []ServerAction `json:"instanceActions"`
	}
	err := c.do(ctx, "GET", c.projectPath("v2.1", "servers", esc(id), "os-instance-actions"), nil, nil, &out)
	return out.InstanceActions, err
}

// ShowServerAction returns one entry of a server's action log, with its
// events.
func (c *Client) ShowServerAction(ctx context.Context, id, requestID string) (ServerAction, error) {
	var out struct {
		InstanceAction ServerAction `json:"instanceAction"`
	}
	err := c.do(ctx, "GET", c.projectPath("v2.1", "servers", esc(id), "os-instance-actions", esc(requestID)), nil, nil, &out)
	return out.InstanceAction, err
}
