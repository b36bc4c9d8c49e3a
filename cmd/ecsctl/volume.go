package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/ecsproject/ecsd/client"
)

func (a *app) volumeCreate(ctx context.Context, args []string) error {
	fs := a.flags("volume create")
	var name, volType string
	var size int
	fs.StringVar(&name, "name", "", "volume `NAME`")
	fs.IntVar(&size, "size", 0, "size in `GB`")
	fs.StringVar(&volType, "volume-type", "", "disk `TYPE` (SSD, SAS, ...; default SSD)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(0, pos, "no arguments"); err != nil {
		return err
	}
	if size < 1 {
		return usagef("volume create needs --size GB (at least 1)")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	job, id, err := c.CreateVolume(ctx, name, size, volType)
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.printJSON(map[string]string{"job_id": job, "volume_id": id})
	}
	return a.fields("JOB_ID", job, "VOLUME_ID", id)
}

func (a *app) volumeList(ctx context.Context, args []string) error {
	c, err := a.noArgs(args, "volume list")
	if err != nil {
		return err
	}
	vols, err := c.ListVolumes(ctx)
	if err != nil {
		return err
	}
	if a.output == "json" {
		if vols == nil {
			vols = []client.Volume{}
		}
		return a.printJSON(vols)
	}
	rows := make([][]string, 0, len(vols))
	for _, v := range vols {
		var at []string
		for _, x := range v.Attachments {
			at = append(at, x.ServerID+":"+x.Device)
		}
		rows = append(rows, []string{v.ID, dash(v.Name), v.Status, strconv.Itoa(v.Size), dash(v.VolumeType), dash(v.Host),
			dash(strings.Join(at, ","))})
	}
	return a.table([]string{"ID", "NAME", "STATUS", "SIZE_GB", "TYPE", "HOST", "ATTACHED"}, rows)
}

func (a *app) volumeDelete(ctx context.Context, args []string) error {
	fs := a.flags("volume delete")
	var wait bool
	fs.BoolVar(&wait, "wait", false, "wait for the job")
	pos, c, err := a.parseN(fs, args, 1, "one volume ID")
	if err != nil {
		return err
	}
	job, err := c.DeleteVolume(ctx, pos[0])
	if err != nil {
		return err
	}
	return a.submitted(ctx, c, job, wait, nil)
}

func (a *app) serverAttach(ctx context.Context, args []string) error {
	fs := a.flags("server attach")
	var device string
	var wait bool
	fs.StringVar(&device, "device", "", "`DEVICE` (/dev/vdX; /dev/vda attaches the system disk; default: the next free one)")
	fs.BoolVar(&wait, "wait", false, "wait for the job, showing progress on stderr")
	pos, c, err := a.parseN(fs, args, 2, "a server ID and a volume ID")
	if err != nil {
		return err
	}
	job, err := c.AttachVolume(ctx, pos[0], pos[1], device)
	if err != nil {
		return err
	}
	return a.submitted(ctx, c, job, wait, pos[:1])
}

func (a *app) serverDetach(ctx context.Context, args []string) error {
	fs := a.flags("server detach")
	var del, wait bool
	fs.BoolVar(&del, "delete", false, "delete the volume once detached (delete_flag=1)")
	fs.BoolVar(&wait, "wait", false, "wait for the job, showing progress on stderr")
	pos, c, err := a.parseN(fs, args, 2, "a server ID and a volume ID")
	if err != nil {
		return err
	}
	job, err := c.DetachVolume(ctx, pos[0], pos[1], del)
	if err != nil {
		return err
	}
	return a.submitted(ctx, c, job, wait, pos[:1])
}
