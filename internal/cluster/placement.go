package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/store"
)

// DriverSim is the driver name of simulator hosts: the simulator's
// built-in images have no file and are usable on every such host.
const DriverSim = "sim"

// Need is what one server needs of its host: its vCPUs and RAM, held by
// the server, and its system disk and data disks, each held by its volume
// (which may outlive the server).
type Need struct {
	VCPUs  int
	RAMMB  int64
	DiskGB int64
	DataGB []int64
}

// disk is all the disk n needs.
func (n Need) disk() int64 {
	d := n.DiskGB
	for _, gb := range n.DataGB {
		d += gb
	}
	return d
}

// Image says where an image is usable: on the hosts that have its files
// (imported there), and, for a file-less simulator image, on every
// simulator host.
type Image struct {
	Fileless bool
	Hosts    []string
}

// NoRoomError is a placement that found no host: Reason says why, for
// the client (no host names, no internals).
type NoRoomError struct {
	Reason string
}

func (e *NoRoomError) Error() string { return "no host can take the server: " + e.Reason }

// Placer places the servers of one create on hosts, inside the create's
// transaction: filters (the host is up, has the image, and has room for
// the need under its allocation ratios) then a weigher that spreads
// servers over hosts by free capacity. It keeps its own tally of what it
// placed, so that the servers of one request spread too.
type Placer struct {
	hosts []*candidate
	down  time.Duration
}

type candidate struct {
	h    store.Host
	full bool // a reservation on it failed: another node filled it
}

// NewPlacer returns a Placer over hosts (read in the create's
// transaction), judging them up by their heartbeats' ages and downAfter.
func NewPlacer(hosts []store.Host, downAfter time.Duration) *Placer {
	p := &Placer{down: downAfter}
	for _, h := range hosts {
		p.hosts = append(p.hosts, &candidate{h: h})
	}
	return p
}

// free is what h still offers of each resource.
func free(h store.Host) (vcpus, ramMB, diskGB float64) {
	return float64(h.VCPUs)*h.CPURatio - float64(h.AllocVCPUs),
		float64(h.RAMMB)*h.RAMRatio - float64(h.AllocRAMMB),
		float64(h.DiskGB)*h.DiskRatio - float64(h.AllocDiskGB)
}

func fits(h store.Host, n Need) bool {
	v, r, d := free(h)
	return float64(n.VCPUs) <= v && float64(n.RAMMB) <= r && float64(n.disk()) <= d
}

// weight is the share of its capacity a host would have left after
// taking n: the mean of its free vCPU, RAM and disk fractions. The most
// free host wins, so servers spread.
func weight(h store.Host, n Need) float64 {
	v, r, d := free(h)
	share := func(left, need, total float64) float64 {
		if total <= 0 {
			return 0
		}
		return (left - need) / total
	}
	return (share(v, float64(n.VCPUs), float64(h.VCPUs)*h.CPURatio) +
		share(r, float64(n.RAMMB), float64(h.RAMMB)*h.RAMRatio) +
		share(d, float64(n.disk()), float64(h.DiskGB)*h.DiskRatio)) / 3
}

func usable(h store.Host, img Image) bool {
	return (img.Fileless && h.Driver == DriverSim) || slices.Contains(img.Hosts, h.Name)
}

// Candidates returns the hosts that pass the filters for need and img,
// best first.
func (p *Placer) Candidates(need Need, img Image) ([]store.Host, error) {
	var ok []*candidate
	var down, noImage, noRoom int
	for _, c := range p.hosts {
		switch {
		case !Up(c.h, p.down):
			down++
		case !usable(c.h, img):
			noImage++
		case c.full || !fits(c.h, need):
			noRoom++
		default:
			ok = append(ok, c)
		}
	}
	if len(ok) == 0 {
		return nil, p.noRoom(down, noImage, noRoom)
	}
	slices.SortStableFunc(ok, func(a, b *candidate) int {
		wa, wb := weight(a.h, need), weight(b.h, need)
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return strings.Compare(a.h.Name, b.h.Name)
	})
	out := make([]store.Host, len(ok))
	for i, c := range ok {
		out[i] = c.h
	}
	return out, nil
}

func (p *Placer) noRoom(down, noImage, noRoom int) error {
	if len(p.hosts) == 0 {
		return &NoRoomError{Reason: "the cloud has no host registered"}
	}
	var why []string
	if noRoom > 0 {
		why = append(why, fmt.Sprintf("%d without enough free vCPUs, memory or disk", noRoom))
	}
	if noImage > 0 {
		why = append(why, fmt.Sprintf("%d without the image", noImage))
	}
	if down > 0 {
		why = append(why, fmt.Sprintf("%d down", down))
	}
	return &NoRoomError{Reason: fmt.Sprintf("of %d hosts, %s", len(p.hosts), strings.Join(why, ", "))}
}

// Place picks a host for server serverID and reserves need on it in tx
// (store.Tx.HostAllocate), in one check: the vCPUs and RAM under
// serverID, the system disk under its volume id volumeIDs[0] and each
// data disk need.DataGB[i] under volumeIDs[i+1]. A host that turns out
// full (another node's create took the room since the hosts were read)
// is passed over for the next. It returns the host's name, or a
// *NoRoomError.
func (p *Placer) Place(ctx context.Context, tx store.Tx, serverID string, volumeIDs []string, need Need, img Image) (string, error) {
	if len(volumeIDs) != 1+len(need.DataGB) {
		return "", fmt.Errorf("place server %s: %d volume ids for a system disk and %d data disks", serverID, len(volumeIDs),
			len(need.DataGB))
	}
	a := store.Allocation{ServerID: serverID, VCPUs: need.VCPUs, RAMMB: need.RAMMB}
	for i, id := range volumeIDs {
		gb := need.DiskGB
		if i > 0 {
			gb = need.DataGB[i-1]
		}
		a.Volumes = append(a.Volumes, store.VolumeAllocation{VolumeID: id, DiskGB: gb})
	}
	for {
		hosts, err := p.Candidates(need, img)
		if err != nil {
			return "", err
		}
		h := hosts[0]
		a.Host = h.Name
		err = tx.HostAllocate(ctx, a)
		c := p.find(h.Name)
		if errors.Is(err, store.ErrNoCapacity) {
			c.full = true
			continue
		}
		if err != nil {
			return "", err
		}
		c.h.AllocVCPUs += need.VCPUs
		c.h.AllocRAMMB += need.RAMMB
		c.h.AllocDiskGB += need.disk()
		c.h.Servers++
		return h.Name, nil
	}
}

func (p *Placer) find(name string) *candidate {
	for _, c := range p.hosts {
		if c.h.Name == name {
			return c
		}
	}
	return nil
}
