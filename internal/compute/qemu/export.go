package qemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// export is a disk image exposed as a raw file (view) by a FUSE export of
// the driver's qemu-storage-daemon, so that e2fsprogs can read and edit a
// qcow2 overlay.
type export struct {
	sd       *storageDaemon
	id       string // export id; its nodes are id+"-file" and id+"-fmt"
	file     string // the exported image
	writable bool
	dir      string // private scratch directory, removed by close
	view     string // the raw view of the disk
}

// exportOpts says how to open the image.
type exportOpts struct {
	format   string // qcow2 or raw
	writable bool
	// share opens read-only even if a running VM has the image open
	// (what is read may then be inconsistent).
	share bool
}

// storageDaemon is the driver's qemu-storage-daemon: a long-lived direct
// child (no --daemonize: a daemonized one leaves stale mounts behind when
// stopped) that adds and removes exports on QMP request. Starting one per
// export would cost 25-50 ms of process start-up each time. It is started
// on first use and again after it dies.
type storageDaemon struct {
	d    *Driver
	mu   sync.Mutex // serializes QMP exchanges and guards the fields below
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	q    *qmpConn
	dir  string
	n    int // export counter, for unique ids
}

// ensure starts the daemon unless it runs. sd.mu is held.
func (sd *storageDaemon) ensure(ctx context.Context) error {
	if sd.q != nil {
		select {
		case <-sd.done:
		default:
			return nil
		}
	}
	sd.stopLocked()
	dir, err := sd.d.scratchDir("qsd")
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "qsd.sock")
	logf, err := os.OpenFile(filepath.Join(dir, "qsd.log"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	defer logf.Close()
	cmd := exec.Command(sd.d.bins.qsd,
		"--pidfile", filepath.Join(dir, "qsd.pid"),
		"--chardev", "socket,id=m0,path="+qemuOpt(sock)+",server=on,wait=off",
		"--monitor", "chardev=m0,mode=control")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the daemon rather than leave mounts behind; New cleans up
	// after a daemon killed too hard for that.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("qemu-storage-daemon: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	sd.cmd, sd.done, sd.dir = cmd, done, dir
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			err := fmt.Errorf("qemu-storage-daemon exited at start: %s", sd.logTail())
			sd.stopLocked()
			return err
		case <-ctx.Done():
			sd.stopLocked()
			return ctx.Err()
		default:
		}
		if q, err := qmpDial(ctx, sock); err == nil {
			sd.q = q
			return nil
		}
		if time.Now().After(deadline) {
			sd.stopLocked()
			return errors.New("qemu-storage-daemon: no QMP after 30s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (sd *storageDaemon) logTail() string {
	b, _ := os.ReadFile(filepath.Join(sd.dir, "qsd.log"))
	return lastLines(string(b), 3)
}

// stopLocked quits the daemon (killing it if it does not quit) and removes
// its directory. sd.mu is held.
func (sd *storageDaemon) stopLocked() {
	if sd.cmd == nil {
		return
	}
	if sd.q != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		sd.q.execute(ctx, "quit", nil) // it may hang up before answering
		cancel()
		sd.q.Close()
		sd.q = nil
	}
	select {
	case <-sd.done:
	case <-time.After(5 * time.Second):
		sd.cmd.Process.Kill()
		<-sd.done
	}
	os.RemoveAll(sd.dir)
	sd.cmd, sd.dir = nil, ""
}

// stop quits the daemon; exports still open stop working.
func (sd *storageDaemon) stop() {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	sd.stopLocked()
}

// call runs one QMP command; a broken connection restarts the daemon on
// next use.
func (sd *storageDaemon) call(ctx context.Context, cmd string, args any) error {
	_, err := sd.q.execute(ctx, cmd, args)
	var qe *qmpError
	if err != nil && !errors.As(err, &qe) && ctx.Err() == nil {
		sd.stopLocked()
	}
	return err
}

// qemuOpt escapes a value for QEMU's key=value,... option syntax.
func qemuOpt(v string) string { return strings.ReplaceAll(v, ",", ",,") }

// exportDisk exports file as a raw view and waits until it is mounted. The
// caller must close the export.
func (d *Driver) exportDisk(ctx context.Context, file string, o exportOpts) (*export, error) {
	sd := d.qsd
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if err := sd.ensure(ctx); err != nil {
		return nil, err
	}
	dir, err := d.scratchDir("x")
	if err != nil {
		return nil, err
	}
	sd.n++
	e := &export{sd: sd, id: "e" + strconv.Itoa(sd.n), file: file, writable: o.writable, dir: dir,
		view: filepath.Join(dir, "view.raw")}
	if err := os.WriteFile(e.view, nil, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	fileNode := map[string]any{"driver": "file", "node-name": e.id + "-file", "filename": file}
	fmtNode := map[string]any{"driver": o.format, "node-name": e.id + "-fmt", "file": e.id + "-file"}
	if o.writable {
		// No flushes while the guest filesystem is edited (debugfs syncs
		// on close); close syncs the image once, when everything is written.
		fileNode["cache"] = map[string]any{"no-flush": true}
	} else {
		for _, n := range []map[string]any{fileNode, fmtNode} {
			n["read-only"] = true
			if o.share {
				n["force-share"] = true
			}
		}
	}
	added := 0
	err = sd.call(ctx, "blockdev-add", fileNode)
	if err == nil {
		added++
		err = sd.call(ctx, "blockdev-add", fmtNode)
	}
	if err == nil {
		added++
		err = sd.call(ctx, "block-export-add", map[string]any{
			"type": "fuse", "id": e.id, "node-name": e.id + "-fmt", "mountpoint": e.view, "writable": o.writable,
		})
	}
	if err == nil && !mounted(e.view, e.dir) {
		added++
		err = errors.New("export not mounted")
	}
	if err != nil {
		e.teardownLocked(context.WithoutCancel(ctx), added)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("qemu-storage-daemon: export %s: %w", filepath.Base(file), err)
	}
	return e, nil
}

// size returns the size of the exported disk.
func (e *export) size() (int64, error) {
	st, err := os.Stat(e.view)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// close removes the export and its block nodes (the daemon writes its
// caches back and releases the image), syncs a writable image and removes
// the scratch directory. An error means the writes may not all be on disk.
func (e *export) close(ctx context.Context) error {
	e.sd.mu.Lock()
	err := e.teardownLocked(ctx, 3)
	e.sd.mu.Unlock()
	if err == nil && e.writable {
		f, oerr := os.OpenFile(e.file, os.O_RDWR, 0)
		if oerr != nil {
			return oerr
		}
		err = f.Sync()
		f.Close()
	}
	return err
}

// teardownLocked undoes the first steps of exportDisk: 3 = export, format
// node and file node. sd.mu is held.
func (e *export) teardownLocked(ctx context.Context, steps int) error {
	sd := e.sd
	var errs []error
	if steps >= 3 && sd.q != nil {
		if err := sd.call(ctx, "block-export-del", map[string]any{"id": e.id}); err != nil {
			errs = append(errs, err)
		} else if err := sd.q.waitEvent(ctx, "BLOCK_EXPORT_DELETED", func(data json.RawMessage) bool {
			var ev struct {
				ID string `json:"id"`
			}
			return json.Unmarshal(data, &ev) == nil && ev.ID == e.id
		}); err != nil {
			errs = append(errs, err)
			sd.stopLocked()
		}
	}
	if steps >= 2 && sd.q != nil {
		if err := sd.call(ctx, "blockdev-del", map[string]any{"node-name": e.id + "-fmt"}); err != nil {
			errs = append(errs, err)
		}
	}
	if steps >= 1 && sd.q != nil {
		if err := sd.call(ctx, "blockdev-del", map[string]any{"node-name": e.id + "-file"}); err != nil {
			errs = append(errs, err)
		}
	}
	if steps >= 1 && sd.q == nil {
		errs = append(errs, errors.New("qemu-storage-daemon died with the export open"))
	}
	if mounted(e.view, e.dir) {
		syscall.Unmount(e.view, syscall.MNT_DETACH)
	}
	os.RemoveAll(e.dir)
	return errors.Join(errs...)
}

// mounted reports whether something is mounted on file (its device differs
// from its directory's), or the mount is stale.
func mounted(file, dir string) bool {
	var fst, dst syscall.Stat_t
	if err := syscall.Stat(file, &fst); err != nil {
		return errors.Is(err, syscall.ENOTCONN)
	}
	if err := syscall.Stat(dir, &dst); err != nil {
		return false
	}
	return fst.Dev != dst.Dev
}

// scratchDir makes a private directory under <Dir>/run.
func (d *Driver) scratchDir(prefix string) (string, error) {
	var b [6]byte
	rand.Read(b[:])
	dir := filepath.Join(d.cfg.Dir, runDir, prefix+"-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("qemu: scratch dir: %w", err)
	}
	return dir, nil
}

// cleanRunDir removes what killed daemons left in <Dir>/run: it stops
// storage daemons still running, unmounts their exports and removes the
// directories.
func (d *Driver) cleanRunDir() {
	root := filepath.Join(d.cfg.Dir, runDir)
	entries, _ := os.ReadDir(root)
	for _, ent := range entries {
		dir := filepath.Join(root, ent.Name())
		if b, err := os.ReadFile(filepath.Join(dir, "qsd.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 && cmdlineHas(pid, dir) {
				syscall.Kill(pid, syscall.SIGKILL)
				for i := 0; i < 100 && processAlive(pid); i++ {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
		view := filepath.Join(dir, "view.raw")
		if mounted(view, dir) {
			syscall.Unmount(view, syscall.MNT_DETACH)
		}
		os.RemoveAll(dir)
	}
}

// cmdlineHas reports whether process pid runs with an argument containing s.
func cmdlineHas(pid int, s string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for arg := range strings.SplitSeq(string(b), "\x00") {
		if strings.Contains(arg, s) {
			return true
		}
	}
	return false
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}
