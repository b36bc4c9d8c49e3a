package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/datadir"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// ecsd hosts lists every host with its state, servers, allocations and
// capacity, as a table and as JSON.
func TestHostsCommand(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sim")
	startAndStop(t, cfg) // registers the node's host (--host) with the simulator's capacity
	self := cfg.Host

	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: datadir.Dir{Path: cfg.DataDir}.DBPath()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, h := range []store.Host{
		{Name: "node-a", VCPUs: 8, RAMMB: 16384, DiskGB: 500, CPURatio: 16, RAMRatio: 1.5, DiskRatio: 1, Driver: "qemu",
			Advertise: "http://10.0.0.1:8080", Heartbeat: now, Created: now},
		{Name: "node-b", VCPUs: 4, RAMMB: 8192, DiskGB: 100, CPURatio: 16, RAMRatio: 1.5, DiskRatio: 1, Driver: "qemu",
			Advertise: "http://10.0.0.2:8080", Heartbeat: now.Add(-time.Hour), Created: now},
	} {
		if err := st.HostUpsert(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	err = st.Write(ctx, func(tx store.Tx) error {
		srv := store.Allocation{ServerID: "srv-1", Host: "node-a", VCPUs: 2, RAMMB: 4096, DiskGB: 40}
		return tx.HostAllocate(ctx, srv)
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	code, out, errOut := ecsd(t, nil, "hosts", "--data-dir", cfg.DataDir)
	if code != 0 {
		t.Fatalf("ecsd hosts: exit %d: %s", code, errOut)
	}
	for _, re := range []string{
		`(?m)^HOST\s+STATE\s+SERVERS\s+VCPUS\s+RAM_MB\s+DISK_GB\s+HEARTBEAT\s+DRIVER\s+ADVERTISE$`,
		`(?m)^node-a\s+up\s+0\s+2/128\s+4096/24576\s+40/500\s+\d+s ago\s+qemu\s+http://10\.0\.0\.1:8080$`,
		`(?m)^node-b\s+down\s+0\s+0/64\s+0/12288\s+0/100\s+1h0m\d+s ago\s+qemu\s+http://10\.0\.0\.2:8080$`,
		`(?m)^` + regexp.QuoteMeta(self) + `\s+up\s+0\s+0/16384\s+0/6291456\s+0/102400\s+\d+s ago\s+sim\s+http://127\.0\.0\.1:\d+$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ecsd hosts output does not match %s:\n%s", re, out)
		}
	}

	code, out, errOut = ecsd(t, nil, "hosts", "--data-dir", cfg.DataDir, "--json", "--host-down-after", "2h")
	if code != 0 {
		t.Fatalf("ecsd hosts --json: exit %d: %s", code, errOut)
	}
	var list []hostJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("ecsd hosts --json: %v\n%s", err, out)
	}
	if len(list) != 3 || list[0].Name != "node-a" || list[1].Name != "node-b" {
		t.Fatalf("ecsd hosts --json listed %+v", list)
	}
	a, b := list[0], list[1]
	if a.State != "up" || a.Allocated != (resources{2, 4096, 40}) || a.Offered != (resources{128, 24576, 500}) ||
		a.Capacity != (resources{8, 16384, 500}) || a.Ratios != (ratiosJSON{16, 1.5, 1}) || a.Driver != "qemu" {
		t.Errorf("node-a = %+v", a)
	}
	if b.State != "up" {
		t.Errorf("node-b with --host-down-after 2h = %s, want up", b.State)
	}

	if code, _, errOut := ecsd(t, nil, "hosts", "--data-dir", cfg.DataDir, "--host-down-after", "0s"); code != 2 ||
		!strings.Contains(errOut, "host-down-after") {
		t.Errorf("ecsd hosts --host-down-after 0s: exit %d, %s; want a usage error", code, errOut)
	}
}
