package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ecsproject/ecsd/client"
)

func (a *app) keypairCreate(ctx context.Context, args []string) error {
	fs := a.flags("keypair create")
	var out string
	fs.StringVar(&out, "out", "", "write the private key to `FILE` (mode 0600; must not exist) instead of stdout")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(1, pos, "one key pair NAME"); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	// Open the file before the key exists: the server keeps no copy, so a
	// key we could not write would be lost.
	var f *os.File
	if out != "" {
		if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
	}
	kp, err := c.CreateKeypair(ctx, pos[0])
	if err != nil {
		if f != nil {
			f.Close()
			os.Remove(out)
		}
		return err
	}
	if f == nil {
		if a.output == "json" {
			return a.printJSON(kp)
		}
		_, err := fmt.Fprint(a.stdout, withNewline(kp.PrivateKey))
		return err
	}
	_, werr := f.WriteString(withNewline(kp.PrivateKey))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("key pair %s was created but its private key could not be saved: %w", kp.Name, werr)
	}
	kp.PrivateKey = ""
	return a.printKeypair(kp)
}

func withNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

func (a *app) keypairImport(ctx context.Context, args []string) error {
	fs := a.flags("keypair import")
	var file string
	fs.StringVar(&file, "public-key-file", "", "OpenSSH public key `FILE` (required)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(1, pos, "one key pair NAME"); err != nil {
		return err
	}
	if file == "" {
		return usagef("keypair import needs --public-key-file")
	}
	pub, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	kp, err := c.ImportKeypair(ctx, pos[0], strings.TrimSpace(string(pub)))
	if err != nil {
		return err
	}
	return a.printKeypair(kp)
}

func (a *app) keypairList(ctx context.Context, args []string) error {
	c, err := a.noArgs(args, "keypair list")
	if err != nil {
		return err
	}
	kps, err := c.ListKeypairs(ctx)
	if err != nil {
		return err
	}
	return a.printKeypairs(kps)
}

func (a *app) keypairShow(ctx context.Context, args []string) error {
	name, c, err := a.oneArg(args, "keypair show", "one key pair NAME")
	if err != nil {
		return err
	}
	kp, err := c.ShowKeypair(ctx, name)
	if err != nil {
		return err
	}
	return a.printKeypair(kp)
}

func (a *app) keypairDelete(ctx context.Context, args []string) error {
	name, c, err := a.oneArg(args, "keypair delete", "one key pair NAME")
	if err != nil {
		return err
	}
	return c.DeleteKeypair(ctx, name)
}

func (a *app) imageList(ctx context.Context, args []string) error {
	c, err := a.noArgs(args, "image list")
	if err != nil {
		return err
	}
	images, err := c.ListImages(ctx)
	if err != nil {
		return err
	}
	return a.printImages(images)
}

func (a *app) flavorList(ctx context.Context, args []string) error {
	c, err := a.noArgs(args, "flavor list")
	if err != nil {
		return err
	}
	flavors, err := c.ListFlavors(ctx)
	if err != nil {
		return err
	}
	return a.printFlavors(flavors)
}

func (a *app) jobShow(ctx context.Context, args []string) error {
	fs := a.flags("job show")
	var wait bool
	fs.BoolVar(&wait, "wait", false, "wait for the job, showing progress on stderr")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(1, pos, "one job ID"); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if wait {
		return a.wait(ctx, c, pos[0], nil)
	}
	job, err := c.ShowJob(ctx, pos[0])
	if err != nil {
		return err
	}
	return a.printJob(job)
}

// noArgs parses a command that takes only the global flags.
func (a *app) noArgs(args []string, name string) (*client.Client, error) {
	pos, err := a.parse(a.flags(name), args)
	if err != nil {
		return nil, err
	}
	if err := exactly(0, pos, "no arguments"); err != nil {
		return nil, err
	}
	return a.client()
}

// oneArg parses a command that takes one positional argument.
func (a *app) oneArg(args []string, name, what string) (string, *client.Client, error) {
	pos, err := a.parse(a.flags(name), args)
	if err != nil {
		return "", nil, err
	}
	if err := exactly(1, pos, what); err != nil {
		return "", nil, err
	}
	if pos[0] == "" {
		return "", nil, usagef("want %s, got an empty one", what)
	}
	c, err := a.client()
	if err != nil {
		return "", nil, err
	}
	return pos[0], c, nil
}

func (a *app) imageImport(ctx context.Context, args []string) error {
	fs := a.flags("image import")
	var req client.ImportImageRequest
	fs.StringVar(&req.Name, "name", "", "image `NAME` (required)")
	fs.StringVar(&req.File, "file", "", "qcow2 or raw disk image `FILE` on the ecsd host (required)")
	fs.StringVar(&req.Kernel, "kernel", "", "kernel `FILE` to boot the image directly")
	fs.StringVar(&req.Initrd, "initrd", "", "initrd `FILE` for --kernel")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(0, pos, "no arguments"); err != nil {
		return err
	}
	if req.Name == "" || req.File == "" {
		return usagef("image import needs --name and --file")
	}
	for _, p := range []*string{&req.File, &req.Kernel, &req.Initrd} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	img, err := c.ImportImage(ctx, req)
	if err != nil {
		return err
	}
	return a.printImages([]client.Image{img})
}
