package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/sim"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// seedServers writes n stopped servers of project into a stopped ecsd's
// data dir: rows through the store and machines through the sim driver, in
// the state that a create job followed by a stop job leaves (server
// stopped with no task, its system disk made from the image, attached as
// /dev/vda and in-use). It returns the server ids, oldest first.
//
// Creating them through the API is the product path but takes minutes for
// 10,000 servers on a 2-core machine (see docs/benchmarks.md); the
// benchmark measures reinstalls, so it seeds the servers directly and lets
// ecsd (restarted on the data dir) load them as it would after any restart.
func seedServers(ctx context.Context, dataDir, projectID, userID string, n int) ([]string, error) {
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dataDir, "ecsd.db")})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	drv, err := sim.New(sim.Config{Dir: filepath.Join(dataDir, "sim")})
	if err != nil {
		return nil, err
	}
	defer drv.Close()
	img, err := db.ImageGet(ctx, benchImage)
	if err != nil {
		return nil, err
	}
	flavor, ok := cloud.Flavor(benchFlavor)
	if !ok {
		return nil, fmt.Errorf("flavor %s missing", benchFlavor)
	}
	size := img.MinDiskGB
	now := time.Now().UTC()
	servers := make([]ecs.Server, n)
	for i := range servers {
		servers[i] = ecs.Server{ID: uuid(), ProjectID: projectID, UserID: userID, Name: fmt.Sprintf("bench-%05d", i+1),
			VMState: ecs.VMStopped, PowerState: ecs.PowerShutdown, ImageID: img.ID, FlavorID: flavor.ID,
			SystemVolumeID: uuid(), AZ: "az1", VPCID: "vpc-bench", Addr: fmt.Sprintf("10.%d.%d.%d", 1+i/62500, i/250%250, 2+i%250),
			LaunchIndex: i % 1000, Created: now, Updated: now, LaunchedAt: now,
			Metadata: map[string]string{"os_type": img.OSType, "image_name": img.Name, "metering.image_id": img.ID,
				"metering.imagetype": "gold", "charging_mode": "0", "vpc_id": "vpc-bench"}}
	}

	// The machines first: 16 at a time, as the sim bounds its file I/O.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	work := make(chan *ecs.Server)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				if err := drv.CreateDisk(ctx, compute.DiskSpec{ID: s.SystemVolumeID, Image: img, SizeGB: size}); err != nil {
					errs <- err
					return
				}
				if _, err := drv.CreateServer(ctx, compute.ServerSpec{ID: s.ID, Name: s.Name, VCPUs: flavor.VCPUs, RAMMB: flavor.RAMMB,
					Image: img, DiskID: s.SystemVolumeID}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
feed:
	for i := range servers {
		select {
		case work <- &servers[i]:
		case err := <-errs:
			close(work)
			wg.Wait()
			return nil, err
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	ids := make([]string, n)
	for start := 0; start < n; start += 1000 {
		batch := servers[start:min(start+1000, n)]
		err := db.Write(ctx, func(tx store.Tx) error {
			for i := range batch {
				s := &batch[i]
				if err := tx.ServerInsert(ctx, s); err != nil {
					return err
				}
				if err := tx.VolumeUpsert(ctx, &ecs.Volume{ID: s.SystemVolumeID, ProjectID: projectID, ServerID: s.ID, ImageID: img.ID,
					SizeGB: size, VolumeType: "SSD", Status: "in-use", Device: "/dev/vda", Created: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for i := range servers {
		ids[i] = servers[i].ID
	}
	return ids, nil
}

// uuid returns a random (v4) UUID.
func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
