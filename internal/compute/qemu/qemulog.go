package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// QEMU's own messages (its stdout and stderr: warnings, errors, the reason
// it stopped) go into a named pipe, qemu.pipe in the server's directory,
// which the driver reads into qemu.log, a ringLog capped at qemuLogMax like
// the serial log: whatever makes QEMU talk, the file never grows beyond
// the cap. The pipe is opened by the driver and passed to QEMU as its
// stdout and stderr, so QEMU opens nothing for it after -runas.
//
// A pipe, not a plain file, so that the driver bounds what is kept; a named
// one, so that a driver started after the one that started QEMU reads it
// again (reattachQEMULog). While no driver reads it, QEMU's writes fail
// with EPIPE (QEMU ignores SIGPIPE) and those messages are lost; nothing
// grows and QEMU does not wait.

// qemuLogMax caps qemu.log, in bytes. QEMU says little (a few lines per
// boot), so 1 MiB keeps every message of a normal life and bounds a
// runaway one.
const qemuLogMax = 1 << 20

// qemuPipe is the named pipe in a server's directory that carries QEMU's
// stdout and stderr to qemu.log.
const qemuPipe = "qemu.pipe"

// openPipeReader opens the read end of the named pipe at path without
// waiting for a writer; a read then waits for data while a writer has the
// pipe open and ends (io.EOF) once none has.
func openPipeReader(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// startQEMULog makes a new qemu.pipe in dir, empties qemu.log and copies
// the pipe into it until every writer has closed it or the driver is
// closed; then it closes done. It returns the write end, for QEMU's stdout
// and stderr: the caller closes it once QEMU has started (or failed to),
// so that the copy ends when QEMU exits. The caller must close done itself
// when startQEMULog fails.
func (d *Driver) startQEMULog(dir string, done chan struct{}) (*os.File, error) {
	path := filepath.Join(dir, qemuPipe)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		return nil, fmt.Errorf("mkfifo %s: %w", path, err)
	}
	r, err := openPipeReader(path)
	if err != nil {
		return nil, err
	}
	// Opening the write end does not wait: r is open.
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		r.Close()
		return nil, err
	}
	if err := d.attachRing(r, filepath.Join(dir, qemuLog), qemuLogMax, true, done); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	return w, nil
}

// reattachQEMULog copies qemu.pipe in dir into qemu.log (kept, within its
// cap) again, for a QEMU that a previous driver started, until QEMU exits
// or the driver is closed; then it closes done. A QEMU that has exited
// already ends the copy at once. The caller must close done itself when
// reattachQEMULog fails (a QEMU started by a release that wrote qemu.log
// directly has no pipe).
func (d *Driver) reattachQEMULog(dir string, done chan struct{}) error {
	path := filepath.Join(dir, qemuPipe)
	st, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if st.Mode().Type() != os.ModeNamedPipe {
		return fmt.Errorf("%s is not a named pipe", path)
	}
	r, err := openPipeReader(path)
	if err != nil {
		return err
	}
	if err := d.attachRing(r, filepath.Join(dir, qemuLog), qemuLogMax, false, done); err != nil {
		r.Close()
		return err
	}
	return nil
}
