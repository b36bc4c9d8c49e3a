package client

import "context"

// Image is an IMS image (GET /v2/cloudimages).
type Image struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	OSType     string `json:"__os_type"`
	Platform   string `json:"__platform"`
	OSVersion  string `json:"__os_version"`
	MinDisk    int    `json:"min_disk"`
	MinRAM     int    `json:"min_ram"`
	DiskFormat string `json:"disk_format"`
	Size       int64  `json:"size"`
	Visibility string `json:"visibility"`
	// CloudInit is "true" when the image runs cloud-init.
	CloudInit string `json:"__support_cloudinit"`
	// Injection says whether ecsd can set credentials from the host side:
	// "supported", or "unsupported: <why>".
	Injection string `json:"__ecsd_credential_injection"`
}

type imageList struct {
	Images []Image `json:"images"`
}

// ListImages returns the image catalog. Images are not per project, so the
// path carries no project id.
func (c *Client) ListImages(ctx context.Context) ([]Image, error) {
	var out imageList
	err := c.do(ctx, "GET", "/v2/cloudimages", nil, nil, &out)
	return out.Images, err
}

// Flavor is an instance type. The real API sends vcpus and disk as strings
// and ram as a number; all three decode from either.
type Flavor struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	VCPUs LooseInt `json:"vcpus"`
	RAM   LooseInt `json:"ram"`  // MiB
	Disk  LooseInt `json:"disk"` // GiB; 0 means the image decides
}

type flavorList struct {
	Flavors []Flavor `json:"flavors"`
}

// ListFlavors returns the flavors servers can be created with.
func (c *Client) ListFlavors(ctx context.Context) ([]Flavor, error) {
	var out flavorList
	err := c.do(ctx, "GET", c.projectPath("v1", "cloudservers", "flavors"), nil, nil, &out)
	return out.Flavors, err
}
