package main

import (
	"context"
	"fmt"
	"os"
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
	return a.printJob(job, nil)
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

// importCommand is how an operator imports an image since the tenant API
// lost its import route: on the ecsd host, into its data dir.
const importCommand = "ecsd image import --data-dir DIR --name NAME [--kernel K --initrd I] [--os-type Linux|Windows] FILE"

// imageImport explains that importing an image is an operator action, not
// an API call. It accepts the old flags and fills them into the command to
// run, and always exits 2 without calling the API.
func (a *app) imageImport(_ context.Context, args []string) error {
	fs := a.flags("image import")
	var name, file, kernel, initrd, osType string
	fs.StringVar(&name, "name", "", "image `NAME`")
	fs.StringVar(&file, "file", "", "disk image `FILE` on the ecsd host")
	fs.StringVar(&kernel, "kernel", "", "kernel `FILE`")
	fs.StringVar(&initrd, "initrd", "", "initrd `FILE`")
	fs.StringVar(&osType, "os-type", "", "Linux or Windows")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if file == "" && len(pos) == 1 {
		file = pos[0]
	}
	fmt.Fprintf(a.stderr, "ecsctl: importing an image is an operator action on the ecsd host, not an API call. Run there:\n  %s\n", importCommand)
	if name != "" || file != "" {
		cmd := []string{"ecsd", "image", "import", "--data-dir", "DIR", "--name", shellQuote(orPlaceholder(name, "NAME"))}
		if kernel != "" {
			cmd = append(cmd, "--kernel", shellQuote(kernel))
		}
		if initrd != "" {
			cmd = append(cmd, "--initrd", shellQuote(initrd))
		}
		if osType != "" {
			cmd = append(cmd, "--os-type", shellQuote(osType))
		}
		cmd = append(cmd, shellQuote(orPlaceholder(file, "FILE")))
		fmt.Fprintf(a.stderr, "for this image:\n  %s\n", strings.Join(cmd, " "))
	}
	fmt.Fprintln(a.stderr, "DIR is that ecsd's --data-dir. The command prints the image as JSON; 'ecsctl image list' then shows it.")
	return &exitError{code: 2}
}

func orPlaceholder(v, placeholder string) string {
	if v == "" {
		return placeholder
	}
	return v
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
