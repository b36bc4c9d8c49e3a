package qemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// export is a disk image exposed as a raw file (view) by a
// qemu-storage-daemon FUSE export, so that e2fsprogs can read and edit a
// qcow2 overlay. The daemon is a direct child (no --daemonize: a daemonized
// one leaves a stale mount behind when stopped) and is stopped over QMP.
type export struct {
	dir  string // private scratch directory, removed by close
	view string // the raw view of the disk
	sock string // QMP socket
	cmd  *exec.Cmd
	done chan struct{} // closed when the daemon has exited
	log  string
}

// exportOpts says how to open the image.
type exportOpts struct {
	format   string // qcow2 or raw
	writable bool
	// share opens read-only even if a running VM has the image open
	// (what is read may then be inconsistent).
	share bool
}

// qemuOpt escapes a value for QEMU's key=value,... option syntax.
func qemuOpt(v string) string { return strings.ReplaceAll(v, ",", ",,") }

// exportDisk starts a daemon exporting file and waits until the view is
// mounted. The caller must close the export.
func (d *Driver) exportDisk(ctx context.Context, file string, o exportOpts) (*export, error) {
	dir, err := d.scratchDir("x")
	if err != nil {
		return nil, err
	}
	e := &export{
		dir:  dir,
		view: filepath.Join(dir, "view.raw"),
		sock: filepath.Join(dir, "qsd.sock"),
		log:  filepath.Join(dir, "qsd.log"),
		done: make(chan struct{}),
	}
	if err := os.WriteFile(e.view, nil, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ro := ""
	if !o.writable {
		ro = ",read-only=on"
		if o.share {
			ro += ",force-share=on"
		}
	}
	writable := "off"
	if o.writable {
		writable = "on"
	}
	args := []string{
		"--blockdev", "driver=file,node-name=f0,filename=" + qemuOpt(file) + ro,
		"--blockdev", "driver=" + o.format + ",node-name=q0,file=f0" + ro,
		"--export", "type=fuse,id=e0,node-name=q0,mountpoint=" + qemuOpt(e.view) + ",writable=" + writable,
		"--pidfile", filepath.Join(dir, "qsd.pid"),
		// Options are processed in order: once the monitor answers, the
		// export is mounted.
		"--chardev", "socket,id=m0,path=" + qemuOpt(e.sock) + ",server=on,wait=off",
		"--monitor", "chardev=m0,mode=control",
	}
	logf, err := os.Create(e.log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	e.cmd = exec.Command(d.bins.qsd, args...)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	// Die with the daemon rather than leave a mount behind; New cleans up
	// after a daemon killed too hard for that.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := e.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("qemu-storage-daemon: %w", err)
	}
	go func() {
		e.cmd.Wait()
		close(e.done)
	}()
	if err := e.waitReady(ctx); err != nil {
		e.close(context.WithoutCancel(ctx))
		return nil, err
	}
	return e, nil
}

func (e *export) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-e.done:
			return fmt.Errorf("qemu-storage-daemon exited: %s", e.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if q, err := qmpDial(ctx, e.sock); err == nil {
			q.Close()
			if mounted(e.view, e.dir) {
				return nil
			}
			return fmt.Errorf("qemu-storage-daemon: export not mounted: %s", e.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("qemu-storage-daemon: not ready after 30s: %s", e.logTail())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *export) logTail() string {
	b, _ := os.ReadFile(e.log)
	return lastLines(string(b), 3)
}

// size returns the size of the exported disk.
func (e *export) size() (int64, error) {
	st, err := os.Stat(e.view)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// close deletes the export, quits the daemon, waits for it (it flushes the
// image on exit) and removes the scratch directory. An error means the
// writes may not all be on disk.
func (e *export) close(ctx context.Context) error {
	var errs []error
	select {
	case <-e.done:
	default:
		if q, err := qmpDial(ctx, e.sock); err == nil {
			if _, err := q.execute("block-export-del", map[string]any{"id": "e0"}); err != nil {
				errs = append(errs, err)
			}
			q.execute("quit", nil) // the daemon may hang up before answering
			q.Close()
		} else {
			e.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
			e.cmd.Process.Kill()
			<-e.done
			errs = append(errs, errors.New("qemu-storage-daemon did not quit; killed"))
		}
		if code := e.cmd.ProcessState.ExitCode(); code != 0 {
			errs = append(errs, fmt.Errorf("qemu-storage-daemon exit status %d: %s", code, e.logTail()))
		}
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
