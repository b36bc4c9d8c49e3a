package qemu

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
)

// The QEMU guest agent. Every VM has a virtio-serial port named
// org.qemu.guest_agent.0 whose host end is a unix socket QEMU creates at
// start-up, before it drops privileges (<Dir>/servers/<id>/qga.sock). A
// guest that runs qemu-guest-agent answers on it; one that does not leaves
// the bytes unread, so every exchange has a deadline, and a silent agent is
// compute.ErrNoAgent.
//
// QEMU knows whether the guest has the port open (query-chardev's
// frontend-open): when it has not, no agent runs, and the answer is
// compute.ErrNoAgent at once rather than after a timeout.
//
// Each exchange starts with guest-sync-delimited and a random id: the
// agent's answer to an earlier client that gave up may still be queued in
// the port, and the 0xFF delimiter and the id tell the fresh answers from
// it.

const (
	agentSock    = "qga.sock"
	agentChardev = "qga0" // its chardev id on QEMU's command line
	// agentPingTimeout bounds a ping or the sync before a command.
	agentPingTimeout = 5 * time.Second
	// agentCmdTimeout bounds a command once the agent has answered the sync
	// (chpasswd in a TCG guest takes a second or two).
	agentCmdTimeout = 60 * time.Second
	// agentReadMax bounds what ecsd reads from a guest in one exchange.
	agentReadMax = 1 << 20
)

type agentConn struct {
	c net.Conn
	r *bufio.Reader
}

// agentDial connects to the agent socket of the server in dir and syncs.
// A guest that has not opened its end of the port, or a silent agent, gives
// an error wrapping compute.ErrNoAgent.
func agentDial(ctx context.Context, dir string) (*agentConn, error) {
	pctx, cancel := context.WithTimeout(ctx, agentPingTimeout)
	defer cancel()
	if open, err := agentPortOpen(pctx, dir); err == nil && !open {
		return nil, fmt.Errorf("the guest has not opened org.qemu.guest_agent.0: %w", compute.ErrNoAgent)
	}
	c, err := dialUnix(pctx, filepath.Join(dir, agentSock))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("agent socket: %v: %w", err, compute.ErrNoAgent)
	}
	// The guest writes what it likes: a connection reads at most
	// agentReadMax bytes, whatever it sends.
	a := &agentConn{c: c, r: bufio.NewReader(io.LimitReader(c, agentReadMax))}
	if err := a.sync(pctx); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("guest-sync: %v: %w", err, compute.ErrNoAgent)
	}
	return a, nil
}

func (a *agentConn) Close() error { return a.c.Close() }

func (a *agentConn) deadline(ctx context.Context, d time.Duration) {
	t := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(t) {
		t = cd
	}
	a.c.SetDeadline(t)
}

// sync resets the agent's parser (0xFF), sends guest-sync-delimited and
// reads until the agent's 0xFF and the answer with the same id.
func (a *agentConn) sync(ctx context.Context) error {
	a.deadline(ctx, agentPingTimeout)
	id := rand.Int64N(1 << 52)
	req, _ := json.Marshal(map[string]any{"execute": "guest-sync-delimited", "arguments": map[string]any{"id": id}})
	if _, err := a.c.Write(append(append([]byte{0xff}, req...), '\n')); err != nil {
		return err
	}
	for {
		if _, err := a.r.ReadBytes(0xff); err != nil {
			return err
		}
		line, err := a.r.ReadBytes('\n')
		if err != nil {
			return err
		}
		var resp struct {
			Return *int64 `json:"return"`
		}
		if json.Unmarshal(line, &resp) == nil && resp.Return != nil && *resp.Return == id {
			return nil
		}
	}
}

// execute runs one command and returns its "return" value.
func (a *agentConn) execute(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	a.deadline(ctx, agentCmdTimeout)
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := a.c.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	line, err := a.r.ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
		Error  *qmpError       `json:"error"`
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("agent: bad reply %.80q: %w", line, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("agent: %s: %s", resp.Error.Class, resp.Error.Desc)
	}
	if resp.Return == nil {
		return nil, errors.New("agent: reply without return or error")
	}
	return resp.Return, nil
}

// PingAgent returns nil when the guest agent of the running server
// answers guest-ping, an error wrapping compute.ErrNoAgent when it does not
// (within a few seconds) or the server is stopped.
func (d *Driver) PingAgent(ctx context.Context, serverID string) error {
	const op = "ping agent"
	s, unlock, err := d.lockedServer(ctx, op, serverID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := compute.CheckAgent(d.serverView(serverID, s), true); err != nil {
		return opError(op, err)
	}
	a, err := agentDial(ctx, d.serverDir(serverID))
	if err != nil {
		return opError(op, err)
	}
	defer a.Close()
	if _, err := a.execute(ctx, "guest-ping", nil); err != nil {
		return opError(op, err)
	}
	return nil
}

// SetPassword sets root's password hash in the running guest through its
// agent (guest-set-user-password with crypted=true: the hash travels, the
// guest's chpasswd -e stores it), without a reboot.
func (d *Driver) SetPassword(ctx context.Context, serverID, passwordHash string) error {
	const op = "set password"
	if passwordHash == "" {
		return invalid(op, "server %s: no password hash", serverID)
	}
	if err := compute.CheckCredentials(compute.Credentials{PasswordHash: passwordHash}); err != nil {
		return opError(op, err)
	}
	s, unlock, err := d.lockedServer(ctx, op, serverID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := compute.CheckAgent(d.serverView(serverID, s), true); err != nil {
		return opError(op, err)
	}
	a, err := agentDial(ctx, d.serverDir(serverID))
	if err != nil {
		return opError(op, err)
	}
	defer a.Close()
	_, err = a.execute(ctx, "guest-set-user-password", map[string]any{
		"username": "root",
		"password": base64.StdEncoding.EncodeToString([]byte(passwordHash)),
		"crypted":  true,
	})
	if err != nil {
		return fmt.Errorf("qemu: %s %s: %w", op, serverID, err)
	}
	return nil
}

// agentPortOpen asks QEMU whether the guest has opened the agent's port.
func agentPortOpen(ctx context.Context, dir string) (bool, error) {
	out, err := qmpRun(ctx, filepath.Join(dir, qmpSock), "query-chardev", nil)
	if err != nil {
		return false, err
	}
	var devs []struct {
		Label        string `json:"label"`
		FrontendOpen bool   `json:"frontend-open"`
	}
	if err := json.Unmarshal(out, &devs); err != nil {
		return false, err
	}
	for _, c := range devs {
		if c.Label == agentChardev {
			return c.FrontendOpen, nil
		}
	}
	return false, errors.New("no agent chardev")
}
