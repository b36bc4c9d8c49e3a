package main

import (
	"bufio"
	"context"
	"errors"
	"io"
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
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(0, pos, "no arguments"); err != nil {
		return err
	}
	c, err := a.client()
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
	pos, err := a.parse(a.flags("server show"), args)
	if err != nil {
		return err
	}
	if err := exactly(1, pos, "one server ID"); err != nil {
		return err
	}
	c, err := a.client()
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
	if wait {
		return a.wait(ctx, c, jobID, ids)
	}
	return a.printJobID(jobID)
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

func (a *app) serverReinstall(ctx context.Context, args []string) error {
	fs := a.flags("server reinstall")
	var (
		opt       client.ReinstallOptions
		passStdin bool
		withStop  bool
		wait      bool
	)
	fs.BoolVar(&passStdin, "password-stdin", false, "read the new admin password from the first line of stdin")
	fs.StringVar(&opt.KeyName, "keypair", "", "key pair `NAME` to install for the admin user")
	fs.StringVar(&opt.UserID, "user-id", "", "user `ID` owning the key pair (default: user_id of the credentials)")
	fs.BoolVar(&withStop, "with-stop", false, "stop a running server first (mode withStopServer)")
	fs.BoolVar(&wait, "wait", false, "wait for the job, showing progress on stderr")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(1, pos, "one server ID"); err != nil {
		return err
	}
	if passStdin == (opt.KeyName != "") {
		return usagef("give exactly one of --password-stdin and --keypair")
	}
	if withStop {
		opt.Mode = client.ModeWithStopServer
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if opt.KeyName != "" && opt.UserID == "" {
		opt.UserID = c.Config().UserID
		if opt.UserID == "" {
			return usagef("--keypair needs --user-id (or user_id in the credentials)")
		}
	}
	if passStdin {
		if opt.AdminPass, err = readPassword(a.stdin); err != nil {
			return err
		}
	}
	jobID, err := c.ReinstallServer(ctx, pos[0], opt)
	if err != nil {
		return err
	}
	if wait {
		return a.wait(ctx, c, jobID, pos)
	}
	return a.printJobID(jobID)
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
