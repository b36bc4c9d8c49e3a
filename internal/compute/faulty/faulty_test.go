package faulty

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
)

func TestWrap(t *testing.T) {
	inner, err := sim.New(sim.Config{Dir: filepath.Join(t.TempDir(), "sim")})
	if err != nil {
		t.Fatal(err)
	}
	faults, err := sim.ParseFaults("create_disk=fail:1,apply_credentials=hang,delete_disk=delay:1h")
	if err != nil {
		t.Fatal(err)
	}
	d := Wrap(inner, faults)
	if Wrap(inner, nil) != compute.Driver(inner) {
		t.Fatal("Wrap without faults must return the driver itself")
	}
	ctx := context.Background()
	spec := compute.DiskSpec{ID: "d1", Image: ecs.Image{ID: "img"}, SizeGB: 1}
	if err := d.CreateDisk(ctx, spec); !errors.Is(err, compute.ErrInjected) {
		t.Fatalf("first create: %v", err)
	}
	if _, ok := inner.Disk("d1"); ok {
		t.Fatal("a failed call reached the driver")
	}
	if err := d.CreateDisk(ctx, spec); err != nil {
		t.Fatalf("second create: %v", err)
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := d.ApplyCredentials(hctx, "d1", compute.Credentials{AuthorizedKeys: "k\n"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
	timeAfter = func(time.Duration) <-chan time.Time { c := make(chan time.Time, 1); c <- time.Now(); return c }
	defer func() { timeAfter = time.After }()
	if err := d.DeleteDisk(ctx, "d1"); err != nil {
		t.Fatalf("delayed delete: %v", err)
	}
	if _, ok := inner.Disk("d1"); ok {
		t.Fatal("delete did not reach the driver")
	}
}
