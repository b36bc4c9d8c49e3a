//go:build vmtest

package qemu

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
)

func TestZZProfile(t *testing.T) {
	img := importedTestImage(t)
	ctx := context.Background()
	d, _ := New(ctx, Config{Dir: t.TempDir()})
	d.CreateDisk(ctx, compute.DiskSpec{ID: "v0", Image: img})
	d.CreateServer(ctx, compute.ServerSpec{ID: "s", Image: img, DiskID: "v0"})
	for i := 0; i < 8; i++ {
		old, next := "v"+strconv.Itoa(i), "v"+strconv.Itoa(i+1)
		t0 := time.Now()
		d.CreateDisk(ctx, compute.DiskSpec{ID: next, Image: img})
		t1 := time.Now()
		if err := d.ApplyCredentials(ctx, next, compute.Credentials{PasswordHash: hashA, AuthorizedKeys: keyA}); err != nil {
			t.Fatal(err)
		}
		t2 := time.Now()
		d.DetachDisk(ctx, "s", old)
		t3 := time.Now()
		d.AttachDisk(ctx, "s", next)
		t4 := time.Now()
		d.DeleteDisk(ctx, old)
		t5 := time.Now()
		t.Logf("create %v apply %v detach %v attach %v delete %v", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3), t5.Sub(t4))
	}
}
