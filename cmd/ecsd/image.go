package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/api"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute/qemu"
	"github.com/ecsproject/ecsd/internal/datadir"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// imageImportCommand is `ecsd image import`: it copies an image file into
// the data dir's qemu image store (this process reads the file, with the
// operator's rights), inspects it, records it in the catalog beside a
// running daemon, and prints it as the image API shows it. With --store the
// catalog is the cloud's PostgreSQL store (every node sees the image at
// once) and the file goes into this node's data dir.
func imageImportCommand(fs *flagSet) runFunc {
	var dataDir, storeURL, host, name, kernel, initrd, osType, id, cloudInit string
	fs.stringVar(&dataDir, "data-dir", "ECS_DATA_DIR", "./data", "data `DIR` of a qemu ecsd (make run uses ./data-qemu)")
	storeFlag(fs, &storeURL)
	fs.stringVar(&host, "host", "ECS_HOST", hostname(), "host `NAME` of the node whose data dir this is (its --host): the image is usable there")
	fs.stringVar(&name, "name", "", "", "image `NAME` (required)")
	fs.stringVar(&kernel, "kernel", "", "", "kernel `FILE` to boot the image with directly (optional)")
	fs.stringVar(&initrd, "initrd", "", "", "initrd `FILE` for --kernel (optional)")
	fs.stringVar(&osType, "os-type", "", "", "`OS` of the image, Linux or Windows, when inspection cannot tell")
	fs.stringVar(&cloudInit, "cloud-init", "", "", "`true|false`: whether the image runs cloud-init, overriding the inspection")
	fs.stringVar(&id, "id", "", "", "import on this host the image `ID` another host imported (the same file); --name is then not needed")
	return func(ctx context.Context, args []string, out, errOut io.Writer) error {
		switch {
		case len(args) == 0:
			return usagef("no image FILE given")
		case len(args) > 1:
			return usagef("one image FILE, not %d arguments (flags go before FILE)", len(args))
		case name == "" && id == "":
			return usagef("--name is required")
		case initrd != "" && kernel == "":
			return usagef("--initrd needs --kernel")
		case cloudInit != "" && cloudInit != "true" && cloudInit != "false":
			return usagef("--cloud-init must be true or false")
		}
		if err := checkStoreURL(storeURL); err != nil {
			return usagef("%s: %v", fs.source("store"), err)
		}
		if !validHost(host) {
			return usagef("%s: %q is not a host name", fs.source("host"), host)
		}
		file := args[0]
		dir, err := datadir.Open(dataDir)
		if err != nil {
			return err
		}
		switch drv, err := dir.Driver(); {
		case err != nil:
			return err
		case drv == "":
			return fmt.Errorf("data dir %s records no driver yet: start `ecsd --driver qemu --data-dir %s` once first", dir.Path, dir.Path)
		case drv != "qemu":
			return fmt.Errorf("data dir %s belongs to driver %s: images are imported into the data dir of a qemu ecsd (make run uses ./data-qemu)", dir.Path, drv)
		}
		if err := dir.CheckStore(storeURL != ""); err != nil {
			return err
		}
		st, err := openStore(ctx, storeURL, 0, dir, "FULL", slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer st.Close()
		imp, err := qemu.NewImporter(qemu.Config{Dir: dir.DriverDir("qemu")})
		if err != nil {
			return err
		}
		defer imp.Close()

		bar := newProgressBar(errOut, file)
		// The image is recorded as this host's: placement puts its servers
		// on the hosts that imported it.
		svc := cloud.New(cloud.Config{Store: st, Host: host, Logger: slog.New(slog.DiscardHandler)})
		img, err := svc.ImportImage(ctx, cloud.ImportImageInput{
			Name:   name,
			OSType: osType,
			Import: func(ctx context.Context, id string) (ecs.Image, error) {
				defer bar.finish()
				return imp.Import(ctx, qemu.ImportSpec{ID: id, Name: name, File: file, Kernel: kernel, Initrd: initrd, Progress: bar.set})
			},
			Discard:   imp.Discard,
			ID:        id,
			CloudInit: boolFlag(cloudInit),
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", api.ImageJSON(&img))
		return err
	}
}

// boolFlag is a "true"/"false" flag value, nil when not given.
func boolFlag(v string) *bool {
	if v == "" {
		return nil
	}
	b := v == "true"
	return &b
}

// progressBar draws the copy of a file on a terminal, and nothing
// elsewhere (a log or a pipe gets no carriage returns).
type progressBar struct {
	w     io.Writer // nil: draw nothing
	label string
	total int64
	drawn time.Time
	pct   int
}

func newProgressBar(w io.Writer, file string) *progressBar {
	p := &progressBar{label: filepath.Base(file), pct: -1}
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return p
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return p
	}
	if st, err := os.Stat(file); err == nil && st.Mode().IsRegular() {
		p.w, p.total = w, st.Size()
	}
	return p
}

// set draws copied bytes of total, at most ten times a second and once per
// percent.
func (p *progressBar) set(copied int64) {
	if p.w == nil || p.total <= 0 {
		return
	}
	pct := int(min(copied*100/p.total, 100))
	if pct == p.pct || (pct < 100 && time.Since(p.drawn) < 100*time.Millisecond) {
		return
	}
	p.pct, p.drawn = pct, time.Now()
	const width = 30
	fill := pct * width / 100
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s / %s", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		pct, mib(copied), mib(p.total))
	if pct == 100 {
		fmt.Fprint(p.w, ", inspecting")
	}
}

// finish ends the bar's line once the copy (and inspection) is over.
func (p *progressBar) finish() {
	if p.w != nil && p.pct >= 0 {
		fmt.Fprintln(p.w)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
