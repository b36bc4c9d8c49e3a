package cloud

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// DefaultSubnetCIDR is the CIDR given to a subnet the first time a create
// names it (ecsd has no subnet API: a subnet is whatever id a create names,
// recorded with its VPC and this CIDR).
const DefaultSubnetCIDR = "192.168.0.0/16"

// addressPool is one subnet's addresses as seen inside a create's
// transaction: the stored subnet, the usable range of its CIDR and the
// addresses held.
type addressPool struct {
	sn          ecs.Subnet
	first, last uint32 // usable range (network+2 .. broadcast-3, as Huawei reserves)
	used        map[uint32]bool
	next        uint32 // no free address below it
}

// allocator hands out fixed addresses for one create, in its transaction.
// SubnetEnsure serialises creates in one subnet (on every node), so the
// lowest free address it picks is free at commit; the store's unique index
// on (project, subnet, address) is the last guard.
type allocator struct {
	tx        store.Tx
	projectID string
	vpcID     string
	cidr      string
	now       time.Time
	pools     map[string]*addressPool
}

func newAllocator(tx store.Tx, projectID, vpcID, cidr string, now time.Time) *allocator {
	if cidr == "" {
		cidr = DefaultSubnetCIDR
	}
	return &allocator{tx: tx, projectID: projectID, vpcID: vpcID, cidr: cidr, now: now, pools: map[string]*addressPool{}}
}

func ip4(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func fromIP4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func (a *allocator) pool(ctx context.Context, subnetID string) (*addressPool, error) {
	if p, ok := a.pools[subnetID]; ok {
		return p, nil
	}
	sn, err := a.tx.SubnetEnsure(ctx, ecs.Subnet{ProjectID: a.projectID, ID: subnetID, VPCID: a.vpcID, CIDR: a.cidr, Created: a.now})
	if err != nil {
		return nil, err
	}
	if sn.VPCID != a.vpcID {
		return nil, ecs.Errorf(ecs.CodeVPCSubnetDiffer, "The VPC ID in the request is inconsistent with that of subnet %s (VPC %s).",
			safeID(subnetID), safeID(sn.VPCID))
	}
	prefix, err := netip.ParsePrefix(sn.CIDR)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() > 29 {
		return nil, fmt.Errorf("subnet %s has an unusable CIDR %q: %w", sn.ID, sn.CIDR, err)
	}
	prefix = prefix.Masked()
	network := ip4(prefix.Addr())
	broadcast := network | (1<<(32-prefix.Bits()) - 1)
	p := &addressPool{sn: sn, first: network + 2, last: broadcast - 3, used: map[uint32]bool{}}
	p.next = p.first
	held, err := a.tx.SubnetAddresses(ctx, a.projectID, subnetID)
	if err != nil {
		return nil, err
	}
	for _, h := range held {
		if addr, err := netip.ParseAddr(h); err == nil && addr.Is4() {
			p.used[ip4(addr)] = true
		}
	}
	a.pools[subnetID] = p
	return p, nil
}

// take holds an address in a subnet: want when given (it must be a usable
// address of the subnet's CIDR, not held), else the lowest free one. field
// names the request field in messages.
func (a *allocator) take(ctx context.Context, subnetID, want, field string) (ecs.NIC, error) {
	p, err := a.pool(ctx, subnetID)
	if err != nil {
		return ecs.NIC{}, err
	}
	var v uint32
	if want != "" {
		addr, err := netip.ParseAddr(want)
		if err != nil || !addr.Is4() {
			return ecs.NIC{}, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s must be an IPv4 address.", field)
		}
		v = ip4(addr)
		if v < p.first || v > p.last {
			return ecs.NIC{}, ecs.Errorf(ecs.CodeAddressOutside,
				"The specified IP address %s does not belong to subnet %s (%s; its first two and last three addresses are reserved).",
				addr, safeID(subnetID), p.sn.CIDR)
		}
		if p.used[v] {
			return ecs.NIC{}, ecs.Errorf(ecs.CodeAddressTaken, "The private IP address %s is already being used in subnet %s.",
				addr, safeID(subnetID))
		}
	} else {
		for p.next <= p.last && p.used[p.next] {
			p.next++
		}
		if p.next > p.last {
			return ecs.NIC{}, ecs.Errorf(ecs.CodeSubnetFull, "The subnet %s (%s) does not contain enough IP addresses.",
				safeID(subnetID), p.sn.CIDR)
		}
		v = p.next
	}
	p.used[v] = true
	return ecs.NIC{PortID: newUUID(), SubnetID: subnetID, IP: fromIP4(v).String()}, nil
}

// addressError turns the store's conflict on an address (another node
// took it between our read and our insert, which SubnetEnsure's lock
// prevents) into the client's error.
func addressError(err error) error {
	var taken *store.AddressTakenError
	if errors.As(err, &taken) {
		return ecs.Errorf(ecs.CodeAddressTaken, "The private IP address %s is already being used in subnet %s.",
			taken.IP, safeID(taken.SubnetID))
	}
	return err
}

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

// takeAddresses holds one address per NIC of a create's server.
func takeAddresses(ctx context.Context, a *allocator, in CreateInput) ([]ecs.NIC, error) {
	nics := make([]ecs.NIC, len(in.SubnetIDs))
	for i, sn := range in.SubnetIDs {
		var want string
		if i < len(in.IPAddresses) {
			want = in.IPAddresses[i]
		}
		nic, err := a.take(ctx, sn, want, fmt.Sprintf("server.nics[%d].ip_address", i))
		if err != nil {
			return nil, err
		}
		nics[i] = nic
	}
	return nics, nil
}
