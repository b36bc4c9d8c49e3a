package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// qmpTimeout bounds one QMP exchange when ctx has no earlier deadline.
const qmpTimeout = 5 * time.Second

// qmpConn is a minimal QEMU Machine Protocol client: JSON lines over a unix
// socket, capabilities negotiated, asynchronous events skipped.
type qmpConn struct {
	c      net.Conn
	r      *bufio.Reader
	events []qmpEvent // received while waiting for a reply, not yet waited for
}

// qmpEvent is an asynchronous QMP message.
type qmpEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// qmpError is an error QEMU answered a command with.
type qmpError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *qmpError) Error() string { return "qmp: " + e.Class + ": " + e.Desc }

// dialUnix connects to the unix socket at path. Socket paths are limited to
// 107 bytes; a longer path is reached through /proc/self/fd of its directory.
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var dialer net.Dialer
	if len(path) < 100 {
		return dialer.DialContext(ctx, "unix", path)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	short := "/proc/self/fd/" + strconv.Itoa(int(dir.Fd())) + "/" + filepath.Base(path)
	return dialer.DialContext(ctx, "unix", short)
}

// qmpDial connects to a QMP socket and leaves command mode negotiated.
func qmpDial(ctx context.Context, path string) (*qmpConn, error) {
	c, err := dialUnix(ctx, path)
	if err != nil {
		return nil, err
	}
	q := &qmpConn{c: c, r: bufio.NewReader(c)}
	if err := q.deadline(ctx); err != nil {
		c.Close()
		return nil, err
	}
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	line, err := q.r.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &greeting)
	}
	if err == nil && greeting.QMP == nil {
		err = fmt.Errorf("not a QMP greeting: %.80q", line)
	}
	if err == nil {
		_, err = q.execute(ctx, "qmp_capabilities", nil)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("qmp %s: %w", path, err)
	}
	return q, nil
}

func (q *qmpConn) deadline(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := time.Now().Add(qmpTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return q.c.SetDeadline(d)
}

// execute runs one command and returns its "return" value.
func (q *qmpConn) execute(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	return q.executeFile(ctx, nil, cmd, args)
}

// executeFile runs one command and passes f (when not nil) with it as
// ancillary data (SCM_RIGHTS), as QEMU's getfd and add-fd expect.
func (q *qmpConn) executeFile(ctx context.Context, f *os.File, cmd string, args any) (json.RawMessage, error) {
	if err := q.deadline(ctx); err != nil {
		return nil, err
	}
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	if f == nil {
		_, err = q.c.Write(b)
	} else {
		uc, ok := q.c.(*net.UnixConn)
		if !ok {
			return nil, errors.New("qmp: file descriptors pass over unix sockets only")
		}
		_, _, err = uc.WriteMsgUnix(b, syscall.UnixRights(int(f.Fd())), nil)
	}
	if err != nil {
		return nil, err
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, err
		}
		var resp struct {
			Event  string          `json:"event"`
			Data   json.RawMessage `json:"data"`
			Return json.RawMessage `json:"return"`
			Error  *qmpError       `json:"error"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qmp: bad reply %.80q: %w", line, err)
		}
		switch {
		case resp.Event != "":
			if len(q.events) < 64 {
				q.events = append(q.events, qmpEvent{resp.Event, resp.Data})
			}
			continue
		case resp.Error != nil:
			return nil, resp.Error
		case resp.Return != nil:
			return resp.Return, nil
		}
		return nil, errors.New("qmp: reply without return or error")
	}
}

// addFD passes f, opened by ecsd, to QEMU in fd set fdset: QEMU then opens
// it as "/dev/fdset/<fdset>" (a blockdev-add's filename, for one), with the
// access mode f was opened with. This is how a QEMU that dropped its
// privileges gets a file it cannot open itself (hot-plugged volumes,
// seeds); a socket goes the same way with getfd. The fd set lives until
// its fds are closed by QEMU (remove-fd) or QEMU exits.
func (q *qmpConn) addFD(ctx context.Context, fdset int, f *os.File) error {
	_, err := q.executeFile(ctx, f, "add-fd", map[string]any{"fdset-id": fdset})
	return err
}

// waitEvent waits for an event named name whose data match says is the one.
func (q *qmpConn) waitEvent(ctx context.Context, name string, match func(data json.RawMessage) bool) error {
	for {
		for i, ev := range q.events {
			if ev.Event == name && match(ev.Data) {
				q.events = append(q.events[:i], q.events[i+1:]...)
				return nil
			}
		}
		q.events = q.events[:0]
		if err := q.deadline(ctx); err != nil {
			return err
		}
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return err
		}
		var ev qmpEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("qmp: bad message %.80q: %w", line, err)
		}
		if ev.Event != "" {
			q.events = append(q.events, ev)
		}
	}
}

func (q *qmpConn) Close() error { return q.c.Close() }

// qmpRun dials, runs one command and hangs up.
func qmpRun(ctx context.Context, sock, cmd string, args any) (json.RawMessage, error) {
	q, err := qmpDial(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	return q.execute(ctx, cmd, args)
}
