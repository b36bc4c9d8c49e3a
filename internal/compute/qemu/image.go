package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/atomicfile"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// ImportSpec names an image file to import, and the kernel and initrd to
// boot it with directly when it has no boot loader of its own.
type ImportSpec struct {
	ID, Name string
	File     string // qcow2 or raw
	Kernel   string // optional
	Initrd   string // optional, with Kernel
	// Progress, when set, is called as File is copied with the bytes
	// copied so far.
	Progress func(copied int64)
	// CloudInit, when not nil, overrides the inspection's answer to
	// whether the image runs cloud-init (ecs.Image.CloudInit), as
	// `ecsd image import --cloud-init=true|false` asks.
	CloudInit *bool
}

// ImportImage copies spec.File (and the kernel and initrd; relative paths
// are relative to the working directory) into the image store, read-only, and inspects it: partition table, root filesystem, OS
// (from /etc/os-release) and cloud-init. An image whose root filesystem the
// driver cannot edit is imported with Image.Unsupported saying why.
// Importing the same content under the same ID again returns the same
// result; other content under an ID in use is a conflict (disks may be
// overlays on the stored file).
func (d *Driver) ImportImage(ctx context.Context, spec ImportSpec) (ecs.Image, error) {
	const op = "import image"
	if err := ctx.Err(); err != nil {
		return ecs.Image{}, err
	}
	if err := checkIDs(op, "image", spec.ID); err != nil {
		return ecs.Image{}, err
	}
	if spec.Initrd != "" && spec.Kernel == "" {
		return ecs.Image{}, fmt.Errorf("qemu: %s: an initrd needs a kernel", op)
	}
	for _, p := range []*string{&spec.File, &spec.Kernel, &spec.Initrd} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return ecs.Image{}, fmt.Errorf("qemu: %s: %w", op, err)
			}
			*p = abs
		}
	}
	unlock := d.locks.lock("image:" + spec.ID)
	defer unlock()

	info, err := d.imageInfo(ctx, spec.File)
	if err != nil {
		return ecs.Image{}, fmt.Errorf("qemu: %s: %w", op, err)
	}
	img := ecs.Image{
		ID:         spec.ID,
		Name:       spec.Name,
		Status:     "active",
		DiskFormat: info.Format,
		MinDiskGB:  int((info.VirtualSize + 1<<30 - 1) >> 30),
		Created:    time.Now().UTC(),
	}
	dst := filepath.Join(d.cfg.Dir, imagesDir, spec.ID+"."+info.Format)
	if img.Checksum, img.SizeBytes, err = storeFile(ctx, spec.File, dst, spec.Progress); err != nil {
		return ecs.Image{}, fmt.Errorf("qemu: %s: %w", op, err)
	}
	img.File = dst
	if spec.Kernel != "" {
		img.Kernel = filepath.Join(d.cfg.Dir, imagesDir, spec.ID+".kernel")
		if _, _, err := storeFile(ctx, spec.Kernel, img.Kernel, nil); err != nil {
			return ecs.Image{}, fmt.Errorf("qemu: %s: kernel: %w", op, err)
		}
	}
	if spec.Initrd != "" {
		img.Initrd = filepath.Join(d.cfg.Dir, imagesDir, spec.ID+".initrd")
		if _, _, err := storeFile(ctx, spec.Initrd, img.Initrd, nil); err != nil {
			return ecs.Image{}, fmt.Errorf("qemu: %s: initrd: %w", op, err)
		}
	}
	if err := d.inspect(ctx, &img); err != nil {
		return ecs.Image{}, fmt.Errorf("qemu: %s: %w", op, err)
	}
	if spec.CloudInit != nil {
		img.CloudInit = *spec.CloudInit
	}
	return img, nil
}

type imageInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	Backing     string `json:"backing-filename"`
	Specific    struct {
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

// imageInfo asks qemu-img what file is, and refuses what must not be
// stored: formats other than qcow2 and raw, and qcow2 files that refer to
// other files (a backing or data file could name any file of the host).
func (d *Driver) imageInfo(ctx context.Context, file string) (imageInfo, error) {
	var info imageInfo
	out, err := run(ctx, d.bins.qemuImg, "info", "--output=json", file)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return info, fmt.Errorf("qemu-img info: %w", err)
	}
	switch {
	case info.Format != "qcow2" && info.Format != "raw":
		return info, fmt.Errorf("image format %q is not qcow2 or raw", info.Format)
	case info.Backing != "":
		return info, errors.New("qcow2 image has a backing file; flatten it first (qemu-img convert)")
	case info.Specific.Data.DataFile != "":
		return info, errors.New("qcow2 image has an external data file; flatten it first (qemu-img convert)")
	case info.VirtualSize <= 0:
		return info, errors.New("image has no size")
	}
	return info, nil
}

// storeFile copies src to dst (sparse: runs of zeros become holes), makes
// it read-only and durable, and returns its sha256 and size. When dst exists
// with the same content it is kept; with other content it is a conflict.
// progress, when not nil, gets the bytes copied so far after each chunk.
func storeFile(ctx context.Context, src, dst string, progress func(int64)) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	if _, err := os.Stat(dst); err == nil {
		want, _, err := hashFile(ctx, in)
		if err != nil {
			return "", 0, err
		}
		got, size, err := hashFile(ctx, nil, dst)
		if err != nil {
			return "", 0, err
		}
		if got != want {
			return "", 0, fmt.Errorf("%s exists with other content: %w", filepath.Base(dst), ecs.ErrConflict)
		}
		return got, size, nil
	}
	h := sha256.New()
	var size int64
	err = atomicfile.WriteFunc(dst, 0o444, func(out *os.File) error {
		buf := make([]byte, 1<<20)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, rerr := io.ReadFull(in, buf)
			if n > 0 {
				h.Write(buf[:n])
				var err error
				if allZero(buf[:n]) {
					_, err = out.Seek(int64(n), io.SeekCurrent)
				} else {
					_, err = out.Write(buf[:n])
				}
				if err != nil {
					return err
				}
				size += int64(n)
				if progress != nil {
					progress(size)
				}
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				return out.Truncate(size)
			}
			if rerr != nil {
				return rerr
			}
		}
	})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

// hashFile returns the sha256 and size of r, or of the file named by
// path[0] when r is nil.
func hashFile(ctx context.Context, r io.Reader, path ...string) (string, int64, error) {
	if r == nil {
		f, err := os.Open(path[0])
		if err != nil {
			return "", 0, err
		}
		defer f.Close()
		r = f
	}
	h := sha256.New()
	n, err := io.Copy(h, readerCtx{ctx, r})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// inspect fills the inspection fields of img from its stored file.
func (d *Driver) inspect(ctx context.Context, img *ecs.Image) error {
	file, scratch := img.File, ""
	var exp *export
	if img.DiskFormat == "qcow2" {
		var err error
		if exp, err = d.exportDisk(ctx, img.File, exportOpts{format: "qcow2"}); err != nil {
			return err
		}
		defer exp.close(context.WithoutCancel(ctx))
		file, scratch = exp.view, exp.dir
	} else {
		var err error
		if scratch, err = d.scratchDir("i"); err != nil {
			return err
		}
		defer os.RemoveAll(scratch)
	}
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	r, err := d.findRoot(ctx, file, st.Size(), scratch)
	if err != nil {
		return err
	}
	img.PartitionTable = r.layout.Table
	img.RootFS = r.vol.FSType
	img.Unsupported = r.unsupported
	if r.fs == nil {
		return nil
	}
	probe := []string{shadowPath, "/etc/os-release", "/usr/lib/os-release", "/usr/bin/cloud-init", "/etc/cloud/cloud.cfg"}
	l, err := r.fs.look(ctx, probe, []string{shadowPath})
	if err != nil {
		return err
	}
	osr, err := readOSRelease(ctx, r.fs, l)
	if err != nil {
		return err
	}
	_, ci1 := l.Stat["/usr/bin/cloud-init"]
	_, ci2 := l.Stat["/etc/cloud/cloud.cfg"]
	img.CloudInit = ci1 || ci2
	if osr != nil {
		img.OSType = "Linux"
		img.Platform = osr.platform()
		img.OSVersion = osr.version()
	}
	shadow, ok := l.Data[shadowPath]
	switch st := l.Stat[shadowPath]; {
	case !ok:
		img.Unsupported = "the root filesystem has no /etc/shadow"
	case !st.isRegular():
		img.Unsupported = "/etc/shadow is not a regular file"
	default:
		if _, err := rootField(shadow, 2); err != nil {
			img.Unsupported = "/etc/shadow has no usable entry for root"
		}
	}
	if img.OSType == "" && img.Unsupported == "" {
		img.OSType = "Linux" // it has a Unix shadow file
		img.Platform = "Other"
	}
	return nil
}

// readOSRelease reads /etc/os-release, following symbolic links (usually
// to ../usr/lib/os-release), else /usr/lib/os-release; nil when neither
// exists.
func readOSRelease(ctx context.Context, fs *extFS, l *look) (*osRelease, error) {
	p := "/etc/os-release"
	for range 8 {
		st, ok := l.Stat[p]
		if !ok {
			if p == "/etc/os-release" {
				p = "/usr/lib/os-release"
				continue
			}
			return nil, nil
		}
		if st.isRegular() {
			l2, err := fs.look(ctx, nil, []string{p})
			if err != nil {
				return nil, err
			}
			r := parseOSRelease(l2.Data[p])
			return &r, nil
		}
		if !st.isSymlink() || st.Link == "" {
			return nil, nil
		}
		target := st.Link
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
		if fsPathOK(p) != nil {
			return nil, nil
		}
		var err error
		if l, err = fs.look(ctx, []string{p}, nil); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// root is the guest root filesystem findRoot chose.
type root struct {
	layout      layout
	vol         volume
	fs          *extFS // nil when unsupported
	unsupported string // why the driver cannot edit it, "" when it can
}

// findRoot reads the layout of the raw disk in file and picks the guest's
// root filesystem: the only ext volume, or the first ext volume holding
// /etc/shadow.
func (d *Driver) findRoot(ctx context.Context, file string, size int64, scratch string) (root, error) {
	f, err := os.Open(file)
	if err != nil {
		return root{}, err
	}
	lay, err := detectLayout(f, size)
	f.Close()
	if err != nil {
		return root{layout: lay, unsupported: "cannot read the partition table: " + err.Error()}, nil
	}
	r := root{layout: lay}
	var exts []volume
	for _, v := range lay.Volumes {
		if isExt(v.FSType) {
			exts = append(exts, v)
		}
	}
	if len(exts) == 0 {
		var types []string
		for _, v := range lay.Volumes {
			if v.FSType != "" && v.FSType != "swap" && v.FSType != "vfat" {
				types = append(types, v.FSType)
			}
		}
		if len(types) == 0 {
			r.unsupported = "no filesystem found"
		} else {
			r.vol.FSType = types[0]
			r.unsupported = fmt.Sprintf("root filesystem %s is not supported: credentials can be written into ext2, ext3 and ext4 only",
				strings.Join(types, "/"))
		}
		return r, nil
	}
	r.vol = exts[0]
	if len(exts) > 1 {
		for _, v := range exts {
			l, err := d.openExtFS(file, v.Offset, scratch).look(ctx, []string{shadowPath}, nil)
			if err != nil {
				continue
			}
			if _, ok := l.Stat[shadowPath]; ok {
				r.vol = v
				break
			}
		}
	}
	r.fs = d.openExtFS(file, r.vol.Offset, scratch)
	return r, nil
}
