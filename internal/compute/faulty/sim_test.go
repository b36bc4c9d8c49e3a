package faulty_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/faulty"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// TestSimulator wraps the simulator as ecsd --driver sim --faults does: a
// failed call leaves its state as it was, and the faults end as their spec
// says.
func TestSimulator(t *testing.T) {
	t.Parallel()
	inner, err := sim.New(sim.Config{Dir: filepath.Join(t.TempDir(), "sim")})
	if err != nil {
		t.Fatal(err)
	}
	faults, err := faulty.Parse("create_disk=fail:1,apply_credentials=fail:2,delete_disk=delay:1ms")
	if err != nil {
		t.Fatal(err)
	}
	d, err := faulty.Wrap(inner, faults)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	spec := compute.DiskSpec{ID: "d1", Image: ecs.Image{ID: "img"}, SizeGB: 1}
	if err := d.CreateDisk(ctx, spec); !errors.Is(err, compute.ErrInjected) {
		t.Fatalf("first create: %v", err)
	}
	if _, ok := inner.Disk("d1"); ok {
		t.Fatal("a failed create made the disk")
	}
	if err := d.CreateDisk(ctx, spec); err != nil {
		t.Fatalf("second create: %v", err)
	}
	creds := compute.Credentials{AuthorizedKeys: "ssh-ed25519 AAAA k\n"}
	for i := range 2 {
		if err := d.ApplyCredentials(ctx, "d1", creds); !errors.Is(err, compute.ErrInjected) {
			t.Fatalf("apply %d: %v", i+1, err)
		}
		if disk, _ := inner.Disk("d1"); disk.AuthorizedKeys != "" {
			t.Fatalf("a failed apply wrote %q", disk.AuthorizedKeys)
		}
	}
	if err := d.ApplyCredentials(ctx, "d1", creds); err != nil {
		t.Fatalf("third apply: %v", err)
	}
	if err := d.DeleteDisk(ctx, "d1"); err != nil {
		t.Fatalf("delayed delete: %v", err)
	}
	if _, ok := inner.Disk("d1"); ok {
		t.Fatal("the delayed delete did not reach the simulator")
	}
}
