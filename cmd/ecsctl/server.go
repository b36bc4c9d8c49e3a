package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ecsproject/ecsd/client"
)

func (a *app) serverCreate(ctx context.Context, args []string) error {
	fs := a.flags("server create")
	var (
		req       client.CreateServerRequest
		subnet    string
		passStdin bool
		wait      bool
	)
	fs.StringVar(&req.Name, "name", "", "server `name` (required)")
	fs.StringVar(&req.ImageRef, "image", "", "image `ID` (required)")
	fs.StringVar(&req.FlavorRef, "flavor", "", "flavor `ID` (required)")
	fs.StringVar(&req.KeyName, "keypair", "", "key pair `NAME` for the admin user")
	fs.BoolVar(&passStdin, "password-stdin", false, "read the admin password from the first line of stdin")
	fs.IntVar(&req.Count, "count", 1, "number of servers")
	fs.StringVar(&req.VPCID, "vpc", "default", "VPC `ID`")
	fs.StringVar(&subnet, "subnet", "default", "subnet `ID` of the primary NIC")
	fs.StringVar(&req.RootVolume.VolumeType, "volume-type", "SATA", "system disk `type`")
	fs.IntVar(&req.RootVolume.Size, "disk-size", 0, "system disk size in `GiB` (0: the image's minimum)")
	fs.StringVar(&req.AvailabilityZone, "az", "", "availability `zone`")
	fs.BoolVar(&wait, "wait", false, "wait for the job, showing progress on stderr")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(0, pos, "no arguments (flags only)"); err != nil {
		return err
	}
	if req.Name == "" || req.ImageRef == "" || req.FlavorRef == "" {
		return usagef("server create needs --name, --image and --flavor")
	}
	if req.Count < 1 {
		return usagef("--count must be at least 1")
	}
	if passStdin && req.KeyName != "" {
		return usagef("give --keypair or --password-stdin, not both")
	}
	if passStdin {
		if req.AdminPass, err = readPassword(a.stdin); err != nil {
			return err
		}
	}
	req.NICs = []client.NIC{{SubnetID: subnet}}

	c, err := a.client()
	if err != nil {
		return err
	}
	jobID, ids, err := c.CreateServers(ctx, req)
	if err != nil {
		return err
	}
	if wait {
		return a.wait(ctx, c, jobID, ids)
	}
	return a.printCreated(jobID, ids)
}

func (a *app) serverList(ctx context.Context, args []string) error {
	fs := a.flags("server list")
	var opt client.ListServersOptions
	fs.StringVar(&opt.Name, "name", "", "only servers whose name matches `N`")
	fs.StringVar(&opt.Status, "status", "", "only servers in `STATUS` (ACTIVE, SHUTOFF, ...)")
	fs.IntVar(&opt.Limit, "limit", 0, "page size (server default 25)")
	fs.IntVar(&opt.Offset, "offset", 0, "`page` number, from 1")
	_, c, err := a.parseN(fs, args, 0, "no arguments")
	if err != nil {
		return err
	}
	list, err := c.ListServers(ctx, opt)
	if err != nil {
		return err
	}
	return a.printServers(list)
}

func (a *app) serverShow(ctx context.Context, args []string) error {
	pos, c, err := a.parseN(a.flags("server show"), args, 1, "one server ID")
	if err != nil {
		return err
	}
	s, err := c.ShowServer(ctx, pos[0])
	if err != nil {
		return err
	}
	return a.printServer(s)
}

// batch runs start, stop or reboot (hardFlag says whether --hard exists).
func (a *app) batch(ctx context.Context, name string, hardFlag bool, args []string,
	call func(c *client.Client, hard bool, ids []string) (string, error)) error {
	fs := a.flags(name)
	var hard, wait bool
	if hardFlag {
		fs.BoolVar(&hard, "hard", false, "force it (HARD instead of SOFT)")
	}
	fs.BoolVar(&wait, "wait", false, "wait for the job, showing progress on stderr")
	ids, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := atLeastOne(ids, "server ID"); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	jobID, err := call(c, hard, ids)
	if err != nil {
		return err
	}
	return a.submitted(ctx, c, jobID, wait, ids)
}

func (a *app) serverStart(ctx context.Context, args []string) error {
	return a.batch(ctx, "server start", false, args, func(c *client.Client, _ bool, ids []string) (string, error) {
		return c.StartServers(ctx, ids...)
	})
}

func (a *app) serverStop(ctx context.Context, args []string) error {
	return a.batch(ctx, "server stop", true, args, func(c *client.Client, hard bool, ids []string) (string, error) {
		return c.StopServers(ctx, hard, ids...)
	})
}

func (a *app) serverReboot(ctx context.Context, args []string) error {
	return a.batch(ctx, "server reboot", true, args, func(c *client.Client, hard bool, ids []string) (string, error) {
		return c.RebootServers(ctx, hard, ids...)
	})
}

func (a *app) serverDelete(ctx context.Context, args []string) error {
	return a.batch(ctx, "server delete", false, args, func(c *client.Client, _ bool, ids []string) (string, error) {
		return c.DeleteServers(ctx, ids...)
	})
}

// osFlags are the flags reinstall and change-os share.
type osFlags struct {
	opt       client.ReinstallOptions
	passStdin bool
	withStop  bool
	wait      bool
	userData  string
}

func (f *osFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.passStdin, "password-stdin", false, "read the new admin password from the first line of stdin")
	fs.StringVar(&f.opt.KeyName, "keypair", "", "key pair `NAME` to install for the admin user")
	fs.StringVar(&f.opt.UserID, "user-id", "", "user `ID` owning the key pair (default: user_id of the credentials)")
	fs.StringVar(&f.userData, "user-data", "", "user data `FILE` for cloud-init (at most 32 KB; uses the v2 API)")
	fs.BoolVar(&f.withStop, "with-stop", false, "stop a running server first (mode withStopServer)")
	fs.BoolVar(&f.wait, "wait", false, "wait for the job, showing progress on stderr")
}

// check refuses flags that do not make a request. cloudInit says whether
// the v2 API is asked for (it allows no credentials when user data is
// given).
func (f *osFlags) check(cloudInit bool) error {
	switch {
	case f.passStdin && f.opt.KeyName != "":
		return usagef("give exactly one of --password-stdin and --keypair, not both")
	case !f.passStdin && f.opt.KeyName == "" && f.userData == "":
		return usagef("give exactly one of --password-stdin and --keypair (or --user-data FILE alone)")
	case !cloudInit && !f.passStdin && f.opt.KeyName == "":
		return usagef("give exactly one of --password-stdin and --keypair")
	}
	return nil
}

// osOptions fills in the options from checked flags: the password from
// stdin, the user id, the user data.
func (a *app) osOptions(c *client.Client, f *osFlags) (client.ReinstallOptions, error) {
	opt := f.opt
	if f.withStop {
		opt.Mode = client.ModeWithStopServer
	}
	if opt.KeyName != "" && opt.UserID == "" {
		opt.UserID = c.Config().UserID
		if opt.UserID == "" {
			return opt, usagef("--keypair needs --user-id (or user_id in the credentials)")
		}
	}
	if f.userData != "" {
		b, err := readUserData(f.userData)
		if err != nil {
			return opt, err
		}
		opt.Metadata = map[string]string{"user_data": client.UserData(b)}
	}
	if f.passStdin {
		var err error
		if opt.AdminPass, err = readPassword(a.stdin); err != nil {
			return opt, err
		}
	}
	return opt, nil
}

// maxUserData is the service's limit on user data (32 KB once decoded).
const maxUserData = 32 << 10

// readUserData reads a user data file, refusing one over the limit
// before anything is sent.
func readUserData(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--user-data: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxUserData+1))
	if err != nil {
		return nil, fmt.Errorf("--user-data: %w", err)
	}
	if len(b) > maxUserData {
		return nil, usagef("--user-data: %s is larger than %d bytes", path, maxUserData)
	}
	return b, nil
}

func (a *app) serverReinstall(ctx context.Context, args []string) error {
	fs := a.flags("server reinstall")
	var f osFlags
	f.register(fs)
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(1, pos, "one server ID"); err != nil {
		return err
	}
	cloudInit := f.userData != ""
	if err := f.check(cloudInit); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	opt, err := a.osOptions(c, &f)
	if err != nil {
		return err
	}
	var jobID string
	if cloudInit {
		jobID, err = c.ReinstallServerCloudInit(ctx, pos[0], opt)
	} else {
		jobID, err = c.ReinstallServer(ctx, pos[0], opt)
	}
	if err != nil {
		return err
	}
	return a.submitted(ctx, c, jobID, f.wait, pos)
}

func (a *app) serverChangeOS(ctx context.Context, args []string) error {
	fs := a.flags("server change-os")
	var (
		f         osFlags
		image     string
		cloudInit bool
	)
	f.register(fs)
	fs.StringVar(&image, "image", "", "the new image `ID` (required)")
	fs.BoolVar(&cloudInit, "cloud-init", false, "use the v2 API (the image runs cloud-init; implied by --user-data)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(1, pos, "one server ID"); err != nil {
		return err
	}
	if image == "" {
		return usagef("server change-os needs --image")
	}
	cloudInit = cloudInit || f.userData != ""
	if err := f.check(cloudInit); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	opt, err := a.osOptions(c, &f)
	if err != nil {
		return err
	}
	jobID, err := c.ChangeOS(ctx, pos[0], client.ChangeOSOptions{ReinstallOptions: opt, ImageID: image}, cloudInit)
	if err != nil {
		return err
	}
	return a.submitted(ctx, c, jobID, f.wait, pos)
}

func (a *app) serverResetPassword(ctx context.Context, args []string) error {
	fs := a.flags("server reset-password")
	var passStdin bool
	fs.BoolVar(&passStdin, "password-stdin", false, "read the new admin password from the first line of stdin (required)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(1, pos, "one server ID"); err != nil {
		return err
	}
	if !passStdin {
		return usagef("server reset-password needs --password-stdin (the password is never a command-line argument)")
	}
	pw, err := readPassword(a.stdin)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.ResetPassword(ctx, pos[0], pw); err != nil {
		return err
	}
	if a.output == "json" {
		return a.printJSON(map[string]string{"server_id": pos[0], "password": "reset"})
	}
	return a.fields("SERVER", pos[0], "PASSWORD", "reset")
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", usagef("--password-stdin: no stdin")
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", usagef("--password-stdin: stdin holds no password")
	}
	return line, nil
}
