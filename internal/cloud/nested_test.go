package cloud_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// nestCheck is a store that records reads made outside a transaction
// while a Write runs. On PostgreSQL such a read waits for a second pool
// connection while the Write holds one: concurrent submits doing it can
// take every connection and wait for each other until their clients give
// up (found by the -cluster benchmark: reinstalls after a node's restart,
// its image cache cold, hung 60 s).
type nestCheck struct {
	store.Store
	writing atomic.Int32
	mu      sync.Mutex
	nested  []string
}

func (n *nestCheck) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	n.writing.Add(1)
	defer n.writing.Add(-1)
	return n.Store.Write(ctx, fn)
}

func (n *nestCheck) ImageGet(ctx context.Context, id string) (ecs.Image, error) {
	if n.writing.Load() > 0 {
		n.mu.Lock()
		n.nested = append(n.nested, "ImageGet("+id+")")
		n.mu.Unlock()
	}
	return n.Store.ImageGet(ctx, id)
}

func (n *nestCheck) reset() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.nested
	n.nested = nil
	return out
}

// TestSubmitsReadNothingOutsideTheirTransaction: a reinstall (key pair
// and password) and a create, submitted to a service whose image cache is
// cold (a restarted node), make no store read outside their transaction
// while it is open.
func TestSubmitsReadNothingOutsideTheirTransaction(t *testing.T) {
	t.Parallel()
	var nc *nestCheck
	b := setupWith(t, sim.Config{}, func(c *cloud.Config) {
		nc = &nestCheck{Store: c.Store}
		c.Store = nc
	})
	ctx := context.Background()
	if _, _, err := b.svc.CreateKeypair(ctx, b.caller, cloud.KeypairInput{Name: "k1"}); err != nil {
		t.Fatal(err)
	}
	srv := b.server(t, linuxImage, true)
	other := b.server(t, linuxImage, true)
	b.stop() // no job runs while the checks do
	nc.reset()

	cold := b.newSvc()
	if _, err := cold.Reinstall(ctx, b.caller, srv.ID, cloud.ReinstallInput{KeyName: str("k1")}); err != nil {
		t.Fatal(err)
	}
	if got := nc.reset(); len(got) > 0 {
		t.Errorf("a key pair reinstall read %v outside its open transaction", got)
	}
	cold = b.newSvc()
	if _, err := cold.Reinstall(ctx, b.caller, other.ID, cloud.ReinstallInput{AdminPass: str(goodPass)}); err != nil {
		t.Fatal(err)
	}
	if got := nc.reset(); len(got) > 0 {
		t.Errorf("a password reinstall read %v outside its open transaction", got)
	}
	cold = b.newSvc()
	if _, _, err := cold.CreateServers(ctx, b.caller, cloud.CreateInput{Name: "s", ImageRef: linuxImage, FlavorRef: "s6.small.1",
		VPCID: "vpc", SubnetIDs: []string{"sn"}, VolumeType: "SSD"}); err != nil {
		t.Fatal(err)
	}
	if got := nc.reset(); len(got) > 0 {
		t.Errorf("a create read %v outside its open transaction", got)
	}
}
