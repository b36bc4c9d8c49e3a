package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// Importer imports images into the image store of a driver's state
// directory without starting a driver: it neither reattaches to guests nor
// cleans the directory, so it is safe beside a daemon running on the same
// Dir (every import has a new id, and its own scratch space). It is what
// the operator command `ecsd image import` runs; the copy, the checks and
// the inspection are the driver's own (Driver.ImportImage). A daemon that
// starts during an import cleans the scratch and temporary files of the
// directory, which fails that import (nothing is recorded; import again).
type Importer struct {
	d *Driver
}

// NewImporter returns an Importer on cfg.Dir (only Dir and the binaries of
// cfg are used), creating the directories it needs.
func NewImporter(cfg Config) (*Importer, error) {
	d, err := newDriver(cfg, imagesDir, runDir)
	if err != nil {
		return nil, err
	}
	return &Importer{d: d}, nil
}

// Close stops the importer's storage daemon, if an import started one.
func (im *Importer) Close() error { return im.d.Close() }

// Import checks that the files of spec can be read, then imports them as
// Driver.ImportImage does. Its errors name the file and the reason: missing,
// unreadable, a format that is refused (not qcow2 or raw, a backing file),
// or not a disk image (neither a partition table nor a filesystem). A
// failed import leaves nothing in the image store.
func (im *Importer) Import(ctx context.Context, spec ImportSpec) (ecs.Image, error) {
	for _, f := range []struct{ role, path string }{{"image file", spec.File}, {"kernel", spec.Kernel}, {"initrd", spec.Initrd}} {
		if f.path == "" && f.role != "image file" {
			continue
		}
		if err := checkSource(f.role, f.path); err != nil {
			return ecs.Image{}, err
		}
	}
	if _, err := im.d.imageInfo(ctx, spec.File); err != nil {
		if ctx.Err() != nil {
			return ecs.Image{}, ctx.Err()
		}
		return ecs.Image{}, fmt.Errorf("image file %s cannot be imported: %s", spec.File, firstLine(err.Error()))
	}
	img, err := im.d.ImportImage(ctx, spec)
	if err != nil {
		im.removeID(spec.ID)
		return ecs.Image{}, err
	}
	if img.PartitionTable == "none" && img.RootFS == "" {
		im.removeID(spec.ID)
		return ecs.Image{}, fmt.Errorf("image file %s is not a disk image: it has neither a partition table nor a filesystem", spec.File)
	}
	return img, nil
}

// Discard removes the stored files of an image Import returned (when it
// could not be recorded after all).
func (im *Importer) Discard(img ecs.Image) { im.removeID(img.ID) }

// removeID removes every file stored, or being stored, for image id.
func (im *Importer) removeID(id string) {
	if id == "" || checkIDs("discard image", "image", id) != nil {
		return
	}
	dir := filepath.Join(im.d.cfg.Dir, imagesDir)
	for _, pattern := range []string{id + ".*", "." + id + ".*.tmp"} {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, m := range matches {
			os.Remove(m)
		}
	}
}

// checkSource says why the file at path (role: image file, kernel,
// initrd) cannot be imported, or returns nil.
func checkSource(role, path string) error {
	if path == "" {
		return fmt.Errorf("no %s given", role)
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s %s does not exist", role, path)
		case errors.As(err, &pe):
			return fmt.Errorf("%s %s is not readable: %v", role, path, pe.Err)
		}
		return fmt.Errorf("%s %s: %w", role, path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s %s: %w", role, path, err)
	}
	switch {
	case st.IsDir():
		return fmt.Errorf("%s %s is a directory, not a file", role, path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s %s is not a regular file", role, path)
	case st.Size() == 0:
		return fmt.Errorf("%s %s is empty", role, path)
	}
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil {
		return fmt.Errorf("%s %s is not readable: %v", role, path, err)
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
