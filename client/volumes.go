package client

import (
	"context"
	"net/url"
	"strconv"
)

// Volume is an EVS volume.
type Volume struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	Status      string             `json:"status"`
	Size        int                `json:"size"`
	VolumeType  string             `json:"volume_type"`
	Host        string             `json:"os-vol-host-attr:host"`
	CreatedAt   string             `json:"created_at"`
	Attachments []VolumeAttachedTo `json:"attachments"`
}

// VolumeAttachedTo is where a volume is attached.
type VolumeAttachedTo struct {
	ServerID string `json:"server_id"`
	Device   string `json:"device"`
}

// CreateVolume creates a volume of sizeGB (volumeType "" for the default)
// and returns its job and id.
func (c *Client) CreateVolume(ctx context.Context, name string, sizeGB int, volumeType string) (jobID, volumeID string, err error) {
	type opt struct {
		Name       string `json:"name,omitempty"`
		Size       int    `json:"size"`
		VolumeType string `json:"volume_type,omitempty"`
	}
	in := struct {
		Volume opt `json:"volume"`
	}{opt{Name: name, Size: sizeGB, VolumeType: volumeType}}
	var out struct {
		JobID     string   `json:"job_id"`
		VolumeIDs []string `json:"volume_ids"`
	}
	if err := c.do(ctx, "POST", c.projectPath("v2", "cloudvolumes"), nil, in, &out); err != nil {
		return "", "", err
	}
	if len(out.VolumeIDs) > 0 {
		volumeID = out.VolumeIDs[0]
	}
	return out.JobID, volumeID, nil
}

// ListVolumes returns the project's volumes.
func (c *Client) ListVolumes(ctx context.Context) ([]Volume, error) {
	var all []Volume
	q := url.Values{"limit": {strconv.Itoa(volumePage)}}
	for {
		var out struct {
			Volumes []Volume `json:"volumes"`
		}
		if err := c.do(ctx, "GET", c.projectPath("v2", "cloudvolumes", "detail"), q, nil, &out); err != nil {
			return all, err
		}
		all = append(all, out.Volumes...)
		if len(out.Volumes) < volumePage {
			return all, nil
		}
		q.Set("marker", out.Volumes[len(out.Volumes)-1].ID)
	}
}

// volumePage is how many volumes ListVolumes asks for at a time: EVS's
// most.
const volumePage = 1000

// DeleteVolume deletes an available volume and returns the job.
func (c *Client) DeleteVolume(ctx context.Context, id string) (string, error) {
	var out struct {
		JobID string `json:"job_id"`
	}
	err := c.do(ctx, "DELETE", c.projectPath("v2", "cloudvolumes", esc(id)), nil, nil, &out)
	return out.JobID, err
}

// AttachVolume attaches a volume to a server (device "" for the next free
// one, /dev/vda for the system disk) and returns the job.
func (c *Client) AttachVolume(ctx context.Context, serverID, volumeID, device string) (string, error) {
	type opt struct {
		VolumeID string `json:"volumeId"`
		Device   string `json:"device,omitempty"`
	}
	in := struct {
		VolumeAttachedTo opt `json:"volumeAttachment"`
	}{opt{VolumeID: volumeID, Device: device}}
	var out struct {
		JobID string `json:"job_id"`
	}
	err := c.do(ctx, "POST", c.projectPath("v1", "cloudservers", esc(serverID), "attachvolume"), nil, in, &out)
	return out.JobID, err
}

// DetachVolume detaches a volume from a server (and deletes it when
// deleteVolume) and returns the job.
func (c *Client) DetachVolume(ctx context.Context, serverID, volumeID string, deleteVolume bool) (string, error) {
	q := url.Values{"delete_flag": {"0"}}
	if deleteVolume {
		q.Set("delete_flag", "1")
	}
	var out struct {
		JobID string `json:"job_id"`
	}
	err := c.do(ctx, "DELETE", c.projectPath("v1", "cloudservers", esc(serverID), "detachvolume", esc(volumeID)), q, nil, &out)
	return out.JobID, err
}
