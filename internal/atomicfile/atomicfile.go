// Package atomicfile writes files so that a reader, or a process started
// after a crash, sees the old content or the new one, never a part: the
// content goes to a temporary file beside the target (".NAME.*.tmp"), is
// synced, and is renamed (or linked) into place; the directory is synced
// last so that the new name survives a host crash.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data, with mode perm whatever the umask. On
// failure path is left as it was and no temporary file remains.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteFunc(path, perm, writeAll(data))
}

// WriteFunc is Write with the content written by fill into the temporary
// file (already of mode perm; fill need not sync or close it).
func WriteFunc(path string, perm os.FileMode, fill func(*os.File) error) error {
	return place(path, perm, fill, os.Rename)
}

// Create makes path with data and mode perm if no file of that name exists
// yet; when one does, it is left as it is and the error wraps fs.ErrExist.
// Among concurrent callers exactly one succeeds.
func Create(path string, data []byte, perm os.FileMode) error {
	return place(path, perm, writeAll(data), os.Link)
}

func writeAll(data []byte) func(*os.File) error {
	return func(f *os.File) error {
		_, err := f.Write(data)
		return err
	}
}

// place writes a temporary file with fill and puts it at path with put
// (rename: replace; link: create only).
func place(path string, perm os.FileMode, fill func(*os.File) error, put func(tmp, path string) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close() // after a failed Close: only reports it again
		}
		// After a rename tmp is gone; after a link it is a second name.
		os.Remove(tmp)
		if err != nil {
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if err = put(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes the creation, rename or removal of a name in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
