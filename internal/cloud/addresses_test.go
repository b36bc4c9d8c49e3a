package cloud

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// TestAllocatorCIDR: a /29 offers its third to fifth addresses (the
// network, the gateway and the last three are reserved); a fourth create
// finds the subnet full; a wanted address is checked against the CIDR.
func TestAllocatorCIDR(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	take := func(i int, want string) (ecs.NIC, error) {
		var nic ecs.NIC
		err := st.Write(ctx, func(tx store.Tx) error {
			a := newAllocator(tx, "p", "vpc", "10.0.0.0/29", now)
			var err error
			if nic, err = a.take(ctx, "sn", want, "server.nics[0].ip_address"); err != nil {
				return err
			}
			srv := ecs.Server{ID: "srv-" + string(rune('a'+i)), ProjectID: "p", NICs: []ecs.NIC{nic}}
			return tx.ServerInsert(ctx, &srv)
		})
		return nic, err
	}
	for i, want := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		nic, err := take(i, "")
		if err != nil || nic.IP != want || len(nic.PortID) != 36 {
			t.Fatalf("allocation %d = %+v, %v; want %s", i, nic, err, want)
		}
	}
	for _, c := range []struct {
		want string
		code ecs.Code
	}{{"", ecs.CodeSubnetFull}, {"10.0.0.1", ecs.CodeAddressOutside}, {"10.0.0.5", ecs.CodeAddressOutside},
		{"10.0.1.2", ecs.CodeAddressOutside}, {"10.0.0.3", ecs.CodeAddressTaken}, {"10.0.0", ecs.CodeInvalidParam},
		{"::1", ecs.CodeInvalidParam}} {
		if _, err := take(9, c.want); ecs.CodeOf(err) != c.code {
			t.Errorf("take %q: %v; want %s", c.want, err, c.code.Wire)
		}
	}
	// A deleted server's address is the next one handed out.
	if err := st.Write(ctx, func(tx store.Tx) error { return tx.ServerDelete(ctx, "srv-b") }); err != nil {
		t.Fatal(err)
	}
	if nic, err := take(5, ""); err != nil || nic.IP != "10.0.0.3" {
		t.Fatalf("after a delete: %+v, %v; want 10.0.0.3", nic, err)
	}
	// The subnet keeps the VPC it was first named with.
	err = st.Write(ctx, func(tx store.Tx) error {
		_, err := newAllocator(tx, "p", "other-vpc", "", now).take(ctx, "sn", "", "x")
		return err
	})
	if ecs.CodeOf(err) != ecs.CodeVPCSubnetDiffer {
		t.Fatalf("another VPC: %v", err)
	}
}
