package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/atomicfile"
	"github.com/ecsproject/ecsd/internal/compute"
)

// The NoCloud seed of a server whose image runs cloud-init: an ISO 9660
// image labelled "cidata" (<Dir>/servers/<id>/seed.iso, 0600, root's when
// ecsd runs as root) that QEMU opens read-only at start, before it drops
// privileges, as the second virtio disk. It holds:
//   - meta-data: {"instance-id", "local-hostname"} (JSON is YAML);
//   - user-data: the tenant's user data, byte for byte, so that a script,
//     a #cloud-config or a MIME multipart of the tenant's runs as written;
//   - vendor-data: a #cloud-config with the credentials: root's $6$ hash
//     (chpasswd, never a plain password), root's authorized keys, root
//     login allowed. cloud-init merges vendor data under the user's own
//     cloud-config (the user's keys win), and runs both once per
//     instance-id.

const (
	seedFile  = "seed.iso"
	seedLabel = "cidata"
)

func (d *Driver) seedPath(serverID string) string {
	return filepath.Join(d.serverDir(serverID), seedFile)
}

// vendorConfig is the cloud-config of the vendor-data file.
type vendorConfig struct {
	DisableRoot       bool            `json:"disable_root"`
	SSHPwauth         *bool           `json:"ssh_pwauth,omitempty"`
	Chpasswd          *vendorChpasswd `json:"chpasswd,omitempty"`
	SSHAuthorizedKeys []string        `json:"ssh_authorized_keys,omitempty"`
}

type vendorChpasswd struct {
	Expire bool         `json:"expire"`
	Users  []vendorUser `json:"users"`
}

type vendorUser struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Type     string `json:"type"`
}

type metaData struct {
	InstanceID    string `json:"instance-id"`
	LocalHostname string `json:"local-hostname,omitempty"`
}

const cloudConfigHeader = "#cloud-config\n"

// seedImage returns the ISO image of s.
func seedImage(s *compute.Seed, now time.Time) ([]byte, error) {
	md, err := json.Marshal(metaData{InstanceID: s.InstanceID, LocalHostname: s.Hostname})
	if err != nil {
		return nil, err
	}
	vc := vendorConfig{}
	if s.PasswordHash != "" {
		yes := true
		vc.SSHPwauth = &yes
		vc.Chpasswd = &vendorChpasswd{Users: []vendorUser{{Name: "root", Password: s.PasswordHash, Type: "hash"}}}
	}
	for line := range strings.SplitSeq(s.AuthorizedKeys, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			vc.SSHAuthorizedKeys = append(vc.SSHAuthorizedKeys, line)
		}
	}
	vd, err := json.MarshalIndent(vc, "", "  ")
	if err != nil {
		return nil, err
	}
	return writeISO(seedLabel, []isoFile{
		{Name: "meta-data", Data: append(md, '\n')},
		{Name: "user-data", Data: s.UserData},
		{Name: "vendor-data", Data: append(append([]byte(cloudConfigHeader), vd...), '\n')},
	}, now)
}

// parseSeed reads a seed image back.
func parseSeed(img []byte) (*compute.Seed, error) {
	label, files, err := readISO(img)
	if err != nil {
		return nil, err
	}
	if label != seedLabel {
		return nil, fmt.Errorf("seed: label %q, want %q", label, seedLabel)
	}
	var md metaData
	if err := json.Unmarshal(files["meta-data"], &md); err != nil {
		return nil, fmt.Errorf("seed: meta-data: %w", err)
	}
	s := &compute.Seed{InstanceID: md.InstanceID, Hostname: md.LocalHostname}
	if ud := files["user-data"]; len(ud) > 0 {
		s.UserData = bytes.Clone(ud)
	}
	vd, ok := bytes.CutPrefix(files["vendor-data"], []byte(cloudConfigHeader))
	if !ok {
		return nil, errors.New("seed: vendor-data is not a #cloud-config")
	}
	var vc vendorConfig
	if err := json.Unmarshal(vd, &vc); err != nil {
		return nil, fmt.Errorf("seed: vendor-data: %w", err)
	}
	if vc.Chpasswd != nil {
		for _, u := range vc.Chpasswd.Users {
			if u.Name == "root" {
				s.PasswordHash = u.Password
			}
		}
	}
	if len(vc.SSHAuthorizedKeys) > 0 {
		s.AuthorizedKeys = strings.Join(vc.SSHAuthorizedKeys, "\n") + "\n"
	}
	return s, nil
}

// writeSeed replaces server id's seed file with s, or removes it when s is
// nil. The caller holds the server's lock.
func (d *Driver) writeSeed(id string, s *compute.Seed) error {
	p := d.seedPath(id)
	if s == nil {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	img, err := seedImage(s, time.Now())
	if err != nil {
		return err
	}
	return atomicfile.Write(p, img, 0o600)
}

// SetSeed replaces the NoCloud seed of a stopped server (nil removes it):
// the guest reads it at its next boot.
func (d *Driver) SetSeed(ctx context.Context, serverID string, seed *compute.Seed) error {
	const op = "set seed"
	if err := compute.CheckSeed(seed); err != nil {
		return opError(op, err)
	}
	s, unlock, err := d.lockedServer(ctx, op, serverID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := compute.CheckStopped(d.serverView(serverID, s)); err != nil {
		return opError(op, err)
	}
	if err := d.writeSeed(serverID, seed); err != nil {
		return fmt.Errorf("qemu: %s %s: %w", op, serverID, err)
	}
	return nil
}

// ReadSeed parses the server's seed file back; nil when it has none.
func (d *Driver) ReadSeed(ctx context.Context, serverID string) (*compute.Seed, error) {
	const op = "read seed"
	_, unlock, err := d.lockedServer(ctx, op, serverID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	img, err := os.ReadFile(d.seedPath(serverID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("qemu: %s %s: %w", op, serverID, err)
	}
	s, err := parseSeed(img)
	if err != nil {
		return nil, fmt.Errorf("qemu: %s %s: %w", op, serverID, err)
	}
	return s, nil
}
