package cloud

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// This file is where the service meets the hosts of the cloud: placement
// of new servers, the refusal of operations on a down host's servers, and
// the adoption of rows made before hosts existed.

// placement places the servers of one create inside its transaction.
type placement struct {
	placer *cluster.Placer
	need   cluster.Need
	img    cluster.Image
}

// newPlacement reads the hosts and the image's hosts in tx, for servers
// of flavor with a system disk of sizeGB and data disks dvs.
func (s *Service) newPlacement(ctx context.Context, tx store.Tx, flavor ecs.Flavor, sizeGB int, dvs []DataVolumeInput,
	img ecs.Image) (*placement, error) {
	hosts, err := tx.HostList(ctx)
	if err != nil {
		return nil, err
	}
	ih, err := tx.ImageHostList(ctx, img.ID)
	if err != nil {
		return nil, err
	}
	p := &placement{placer: cluster.NewPlacer(hosts, s.cfg.HostDownAfter),
		need: cluster.Need{VCPUs: flavor.VCPUs, RAMMB: int64(flavor.RAMMB), DiskGB: int64(sizeGB)},
		img:  cluster.Image{Fileless: img.File == ""}}
	for _, dv := range dvs {
		p.need.DataGB = append(p.need.DataGB, int64(dv.SizeGB))
	}
	for _, h := range ih {
		p.img.Hosts = append(p.img.Hosts, h.Host)
	}
	return p, nil
}

// place picks the host of server id, whose volumes are volumeIDs (the
// system disk's, then the data disks'), and reserves its capacity there.
func (p *placement) place(ctx context.Context, tx store.Tx, id string, volumeIDs []string) (string, error) {
	host, err := p.placer.Place(ctx, tx, id, volumeIDs, p.need, p.img)
	var nr *cluster.NoRoomError
	if errors.As(err, &nr) {
		var data int64
		for _, gb := range p.need.DataGB {
			data += gb
		}
		disks := fmt.Sprintf("a %d GB system disk", p.need.DiskGB)
		if data > 0 {
			disks += fmt.Sprintf(" and %d GB of data disks", data)
		}
		return "", ecs.Errorf(ecs.CodeNoCapacity, "Insufficient resources for this flavor: no host has room for %d vCPUs, %d MB of memory and %s with this image (%s). Try another flavor or delete ECSs.",
			p.need.VCPUs, p.need.RAMMB, disks, nr.Reason)
	}
	return host, err
}

// hostGate refuses operations on the servers of a down host, reading the
// hosts (with list: a transaction's or the store's) once.
type hostGate struct {
	s     *Service
	list  func(ctx context.Context) ([]store.Host, error)
	hosts map[string]store.Host
}

func (s *Service) hostGate(list func(ctx context.Context) ([]store.Host, error)) *hostGate {
	return &hostGate{s: s, list: list}
}

// check returns a CodeHostDown error if srv's host is down. A server of no
// host (a release before hosts, not adopted) is not refused. It is checked
// before the server's state: a down host's server may show a task that
// cannot end until its host is back.
func (g *hostGate) check(ctx context.Context, srv *ecs.Server) error {
	if srv.Host == "" {
		return nil
	}
	if g.hosts == nil {
		list, err := g.list(ctx)
		if err != nil {
			return err
		}
		g.hosts = make(map[string]store.Host, len(list))
		for _, h := range list {
			g.hosts[h.Name] = h
		}
	}
	h, ok := g.hosts[srv.Host]
	if !ok {
		return ecs.Errorf(ecs.CodeHostDown, "The ECS's host %s is not registered: operations on ECS %s are refused.", safeID(srv.Host), srv.ID)
	}
	if !cluster.Up(h, g.s.cfg.HostDownAfter) {
		return ecs.Errorf(ecs.CodeHostDown, "The ECS's host %s is down (no heartbeat for %s): operations on ECS %s are refused until the host is back.",
			safeID(h.Name), h.Age.Round(time.Second), srv.ID)
	}
	return nil
}

// HostState is what the cloud knows of a server's host, for the API's
// host_status.
type HostState int

const (
	HostNone    HostState = iota // the server has no host (a release before hosts, not adopted)
	HostUp                       // the host's heartbeat is fresh
	HostStale                    // its heartbeat is older than the cloud's down-after
	HostUnknown                  // the host is not registered
)

// heartbeats keeps the hosts' last heartbeats, read from the store at most
// once per HeartbeatsMaxAge: a list of servers reads them once for all its
// servers, and most lists do not read them at all. A heartbeat read here
// is at most that much older than the store's, so a host may show stale
// for that long after its node came back; never fresh after it stopped
// for longer than down-after. Ages are the store's (its clock) plus the
// time since the reading on this node's monotonic clock: no two clocks
// are compared.
type heartbeats struct {
	mu    sync.Mutex
	read  time.Time
	hosts map[string]store.Host
}

// HeartbeatsMaxAge is how long the service reuses the hosts' heartbeats
// it read for host_status.
const HeartbeatsMaxAge = time.Second

// HostStates returns the state of any host at this moment, from one
// reading of the hosts' heartbeats (at most HeartbeatsMaxAge old).
func (s *Service) HostStates(ctx context.Context) (func(host string) HostState, error) {
	b := &s.beats
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hosts == nil || time.Since(b.read) >= HeartbeatsMaxAge {
		read := time.Now()
		list, err := s.store.HostList(ctx)
		if err != nil {
			return nil, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the hosts.")
		}
		hosts := make(map[string]store.Host, len(list))
		for _, h := range list {
			hosts[h.Name] = store.Host{Heartbeat: h.Heartbeat, Age: h.Age}
		}
		b.hosts, b.read = hosts, read
	}
	hosts, since, downAfter := b.hosts, time.Since(b.read), s.cfg.HostDownAfter
	return func(host string) HostState {
		if host == "" {
			return HostNone
		}
		h, ok := hosts[host]
		h.Age += since
		switch {
		case !ok:
			return HostUnknown
		case cluster.Up(h, downAfter):
			return HostUp
		default:
			return HostStale
		}
	}, nil
}

// AdoptUnplaced gives this node's host the servers, volumes and image
// files recorded before hosts existed (host ""), reserving the adopted
// servers' capacity (even past the host's limit: they exist). Call it
// only on a store that one node uses (SQLite): there, every disk and
// image file is this node's. On a shared store an unplaced row's host is
// unknown, and it stays unplaced. It returns how many servers it adopted.
func (s *Service) AdoptUnplaced(ctx context.Context) (int, error) {
	if s.cfg.Host == "" {
		return 0, errors.New("adopt: the service has no host")
	}
	srvs, err := s.store.ServerListAll(ctx)
	if err != nil {
		return 0, err
	}
	vols, err := s.store.VolumeListAll(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.store.Write(ctx, func(tx store.Tx) error {
		n = 0
		for _, sv := range srvs {
			if sv.Host != "" {
				continue
			}
			srv, err := tx.ServerGetByID(ctx, sv.ID)
			if errors.Is(err, ecs.ErrNotFound) || (err == nil && srv.Host != "") {
				continue
			}
			if err != nil {
				return err
			}
			srv.Host = s.cfg.Host
			if err := tx.ServerUpdate(ctx, &srv); err != nil {
				return err
			}
			f, _ := Flavor(srv.FlavorID)
			err = tx.HostAllocate(ctx, store.Allocation{ServerID: srv.ID, Host: s.cfg.Host, VCPUs: f.VCPUs, RAMMB: int64(f.RAMMB),
				Force: true})
			if err != nil && !errors.Is(err, ecs.ErrConflict) {
				return err
			}
			n++
		}
		for _, v := range vols {
			// Only attached volumes have a disk: one created alone has
			// no host until its first attach makes its disk.
			if v.Host != "" || v.ServerID == "" {
				continue
			}
			cur, err := tx.VolumeGet(ctx, v.ID)
			if errors.Is(err, ecs.ErrNotFound) || (err == nil && (cur.Host != "" || cur.ServerID == "")) {
				continue
			}
			if err != nil {
				return err
			}
			cur.Host = s.cfg.Host
			if err := tx.VolumeUpsert(ctx, &cur); err != nil {
				return err
			}
			if err := holdDisk(ctx, tx, &cur, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("adopt the servers of no host: %w", err)
	}
	imgs, err := s.store.ImageList(ctx)
	if err != nil {
		return n, err
	}
	for _, img := range imgs {
		if img.File == "" {
			continue
		}
		hosts, err := s.store.ImageHostList(ctx, img.ID)
		if err != nil {
			return n, err
		}
		if len(hosts) == 0 {
			if err := s.addImageHost(ctx, img); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}
