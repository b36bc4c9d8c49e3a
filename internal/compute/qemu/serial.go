package qemu

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
)

// The serial console of a guest is a QEMU socket chardev (serial.sock in
// the server's directory, created by QEMU before it drops privileges). The
// driver reads it and keeps the output in serial.log, a ringLog: the guest
// can print without end, the file never grows beyond Config.SerialLogMax.
// While no ecsd reads the socket (between a daemon's death and its
// successor's reattach), QEMU drops what the guest prints: nothing grows.

// defaultSerialLogMax is Config.SerialLogMax's default.
const defaultSerialLogMax = 4 << 20

// ringLog is a file that holds the last bytes written to it, never more
// than max: when a write would pass max, the file is replaced (atomically,
// by a rename) by its last max/2 bytes, cut to start at a line when one
// starts there, followed by the new bytes. A reader of the file always sees
// a whole file: a suffix of everything written, of at least max/2 bytes
// less one partial line (or all of it when less was written).
type ringLog struct {
	path string
	max  int64
	f    *os.File
	size int64
}

// minSerialLogMax keeps max/2 useful.
const minSerialLogMax = 4 << 10

// openRingLog opens path for appending (emptying it when truncate) with a
// cap of max bytes.
func openRingLog(path string, max int64, truncate bool) (*ringLog, error) {
	if max < minSerialLogMax {
		max = minSerialLogMax
	}
	flags := os.O_CREATE | os.O_RDWR | os.O_APPEND
	if truncate {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r := &ringLog{path: path, max: max, f: f, size: st.Size()}
	if r.size > max {
		if err := r.rotate(nil); err != nil {
			f.Close()
			return nil, err
		}
	}
	return r, nil
}

// Write appends p, first dropping the oldest bytes if the file would pass
// its cap.
func (r *ringLog) Write(p []byte) (int, error) {
	n := len(p)
	if r.size+int64(n) > r.max {
		if err := r.rotate(p); err != nil {
			return 0, err
		}
		return n, nil
	}
	w, err := r.f.Write(p)
	r.size += int64(w)
	return w, err
}

// rotate replaces the file by the tail of its content followed by p,
// max/2 bytes at most.
func (r *ringLog) rotate(p []byte) error {
	half := r.max / 2
	if int64(len(p)) >= half {
		p = p[int64(len(p))-half:]
	}
	keep := min(half-int64(len(p)), r.size)
	old := make([]byte, keep)
	if _, err := r.f.ReadAt(old, r.size-keep); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if keep < r.size {
		// The kept part starts inside a line: start at the next one.
		if i := bytes.IndexByte(old, '\n'); i >= 0 {
			old = old[i+1:]
		}
	}
	tmp := filepath.Join(filepath.Dir(r.path), "."+filepath.Base(r.path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(old, p...))
	if err == nil {
		err = os.Rename(tmp, r.path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	r.f.Close()
	r.f, r.size = f, int64(len(old)+len(p))
	return nil
}

// Close closes the file.
func (r *ringLog) Close() error { return r.f.Close() }

// copyRing copies src into log until src ends or fails. A failed write
// (a full host disk) loses that output but not the writer: src keeps being
// drained, so QEMU never waits on it.
func copyRing(log *ringLog, src io.Reader) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			log.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// attachRing copies src into the ring log at path (capped at max, emptied
// first when truncate) until src ends or the driver is closed (Close waits
// for it); then it closes src and done. The caller must close src and done
// itself when attachRing fails.
func (d *Driver) attachRing(src io.ReadCloser, path string, max int64, truncate bool, done chan struct{}) error {
	log, err := openRingLog(path, max, truncate)
	if err != nil {
		return err
	}
	copied := make(chan struct{})
	d.logWG.Add(1)
	go func() {
		select {
		case <-d.closed:
			src.Close()
		case <-copied:
		}
	}()
	go func() {
		defer d.logWG.Done()
		copyRing(log, src)
		close(copied)
		src.Close()
		log.Close()
		close(done)
	}()
	return nil
}

// attachSerial connects to the serial socket in dir and copies it into
// serial.log (emptied first when truncate) until QEMU closes it or the
// driver is closed; done is closed then. The caller must close done
// itself when attachSerial fails.
func (d *Driver) attachSerial(ctx context.Context, dir string, truncate bool, done chan struct{}) error {
	conn, err := dialUnix(ctx, filepath.Join(dir, serialSock))
	if err != nil {
		return err
	}
	if err := d.attachRing(conn, filepath.Join(dir, serialFile), d.cfg.SerialLogMax, truncate, done); err != nil {
		conn.Close()
		return err
	}
	return nil
}
