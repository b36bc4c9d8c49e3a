package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ecsproject/ecsd/internal/compute"
)

// BenchmarkReinstallSequence reinstalls 1,000 running servers at once, with
// no latency, per iteration: 7 driver calls and 9 file writes or removals
// per reinstall. It reports the cost of one reinstall. The file writes
// dominate: run it with TMPDIR=/dev/shm to measure the driver rather than
// the disk.
func BenchmarkReinstallSequence(b *testing.B) {
	const servers = 1000
	d := newDriver(b, Config{})
	ctx := context.Background()
	disk := func(i, gen int) string { return fmt.Sprintf("d%d-%d", i, gen) }
	for i := range servers {
		must(b, d.CreateDisk(ctx, compute.DiskSpec{ID: disk(i, 0), Image: image, SizeGB: 10}))
		_, err := d.CreateServer(ctx, compute.ServerSpec{ID: fmt.Sprint("s", i), DiskID: disk(i, 0)})
		must(b, err)
		must(b, d.StartServer(ctx, fmt.Sprint("s", i)))
	}
	gen := 0
	errs := make([]error, servers)
	for b.Loop() {
		var wg sync.WaitGroup
		for i := range servers {
			wg.Go(func() { errs[i] = reinstall(ctx, d, fmt.Sprint("s", i), disk(i, gen), disk(i, gen+1)) })
		}
		wg.Wait()
		must(b, errors.Join(errs...))
		gen++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*servers), "ns/reinstall")
}
