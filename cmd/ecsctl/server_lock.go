package main

import (
	"context"

	"github.com/ecsproject/ecsd/client"
)

// server lock, unlock and actions (issue 10).

func init() {
	commands["server lock"] = command{"server lock ID [--reason TEXT]", (*app).serverLock}
	commands["server unlock"] = command{"server unlock ID", (*app).serverUnlock}
	commands["server actions"] = command{"server actions ID [--request REQUEST_ID]", (*app).serverActions}
}

func (a *app) serverLock(ctx context.Context, args []string) error {
	fs := a.flags("server lock")
	var reason string
	fs.StringVar(&reason, "reason", "", "why the server is locked (shown as locked_reason)")
	pos, c, err := a.parseN(fs, args, 1, "one server ID")
	if err != nil {
		return err
	}
	return c.LockServer(ctx, pos[0], reason)
}

func (a *app) serverUnlock(ctx context.Context, args []string) error {
	pos, c, err := a.parseN(a.flags("server unlock"), args, 1, "one server ID")
	if err != nil {
		return err
	}
	return c.UnlockServer(ctx, pos[0])
}

// serverActions lists a server's action log, or shows one entry with
// --request.
func (a *app) serverActions(ctx context.Context, args []string) error {
	fs := a.flags("server actions")
	var request string
	fs.StringVar(&request, "request", "", "show the entry of this `REQUEST_ID` with its events")
	pos, c, err := a.parseN(fs, args, 1, "one server ID")
	if err != nil {
		return err
	}
	var list []client.ServerAction
	if request != "" {
		one, err := c.ShowServerAction(ctx, pos[0], request)
		if err != nil {
			return err
		}
		if a.output == "json" {
			return a.printJSON(one)
		}
		list = []client.ServerAction{one}
	} else if list, err = c.ListServerActions(ctx, pos[0]); err != nil {
		return err
	}
	if a.output == "json" {
		if list == nil {
			list = []client.ServerAction{}
		}
		return a.printJSON(list)
	}
	rows := make([][]string, 0, len(list))
	for _, x := range list {
		outcome := x.Outcome
		if outcome == "" {
			outcome = "RUNNING"
		}
		rows = append(rows, []string{x.StartTime, x.Action, x.RequestID, dash(x.UserID), dash(x.AccessKey), dash(x.JobID), outcome})
	}
	return a.table([]string{"START", "ACTION", "REQUEST_ID", "USER", "ACCESS_KEY", "JOB", "OUTCOME"}, rows)
}
