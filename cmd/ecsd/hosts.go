package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"text/tabwriter"
	"time"

	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/datadir"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/postgres"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// hostsCommand is `ecsd hosts`: the hosts of the cloud, up or down, with
// their capacity, what their servers hold of it, and their servers.
func hostsCommand(fs *flagSet) runFunc {
	var dataDir, storeURL string
	var downAfter time.Duration
	var asJSON bool
	fs.stringVar(&dataDir, "data-dir", "ECS_DATA_DIR", "./data", "data `DIR` of an ecsd on SQLite (without --store)")
	fs.stringVar(&storeURL, "store", "ECS_STORE", "", "PostgreSQL `URL` of the cloud's store (postgres://USER@HOST:PORT/DB?sslmode=disable)")
	fs.durationVar(&downAfter, "host-down-after", "ECS_HOST_DOWN_AFTER", cluster.DefaultDownAfter, "a host whose heartbeat is older is down")
	fs.boolVar(&asJSON, "json", "", false, "print JSON")
	return func(ctx context.Context, args []string, out, _ io.Writer) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		if downAfter <= 0 {
			return usagef("--host-down-after must be positive, not %s", downAfter)
		}
		st, err := openStoreForRead(ctx, dataDir, storeURL)
		if err != nil {
			return err
		}
		defer st.Close()
		hosts, err := st.HostList(ctx)
		if err != nil {
			return fmt.Errorf("list hosts: %w", err)
		}
		if asJSON {
			return printHostsJSON(out, hosts, downAfter)
		}
		return printHosts(out, hosts, downAfter)
	}
}

// openStoreForRead opens the store of --store, else the SQLite file of the
// data dir (which must exist).
func openStoreForRead(ctx context.Context, dataDir, storeURL string) (store.Store, error) {
	if storeURL != "" {
		return postgres.Open(ctx, postgres.Config{DSN: storeURL, MaxConns: 2, Logger: slog.New(slog.DiscardHandler)})
	}
	dir, err := datadir.Open(dataDir)
	if err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, sqlite.Config{Path: dir.DBPath()})
}

// hostJSON is one host in `ecsd hosts --json`.
type hostJSON struct {
	Name      string      `json:"name"`
	State     string      `json:"state"` // up or down
	Servers   int         `json:"servers"`
	Capacity  resources   `json:"capacity"`
	Ratios    ratiosJSON  `json:"allocation_ratios"`
	Offered   resources   `json:"offered"` // capacity x ratio
	Allocated resources   `json:"allocated"`
	Driver    string      `json:"driver"`
	Advertise string      `json:"advertise"`
	Heartbeat string      `json:"heartbeat"` // RFC 3339
	Age       json.Number `json:"heartbeat_age_seconds"`
}

type resources struct {
	VCPUs  int64 `json:"vcpus"`
	RAMMB  int64 `json:"ram_mb"`
	DiskGB int64 `json:"disk_gb"`
}

type ratiosJSON struct {
	CPU  float64 `json:"cpu"`
	RAM  float64 `json:"ram"`
	Disk float64 `json:"disk"`
}

func state(h store.Host, downAfter time.Duration) string {
	if cluster.Up(h, downAfter) {
		return "up"
	}
	return "down"
}

func offered(n int64, ratio float64) int64 { return int64(math.Floor(float64(n) * ratio)) }

func printHostsJSON(w io.Writer, hosts []store.Host, downAfter time.Duration) error {
	out := make([]hostJSON, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, hostJSON{Name: h.Name, State: state(h, downAfter), Servers: h.Servers,
			Capacity: resources{VCPUs: int64(h.VCPUs), RAMMB: h.RAMMB, DiskGB: h.DiskGB},
			Ratios:   ratiosJSON{CPU: h.CPURatio, RAM: h.RAMRatio, Disk: h.DiskRatio},
			Offered: resources{VCPUs: offered(int64(h.VCPUs), h.CPURatio), RAMMB: offered(h.RAMMB, h.RAMRatio),
				DiskGB: offered(h.DiskGB, h.DiskRatio)},
			Allocated: resources{VCPUs: int64(h.AllocVCPUs), RAMMB: h.AllocRAMMB, DiskGB: h.AllocDiskGB},
			Driver:    h.Driver, Advertise: h.Advertise, Heartbeat: h.Heartbeat.UTC().Format(time.RFC3339Nano),
			Age: json.Number(fmt.Sprintf("%.1f", h.Age.Seconds()))})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func printHosts(w io.Writer, hosts []store.Host, downAfter time.Duration) error {
	if len(hosts) == 0 {
		_, err := fmt.Fprintln(w, "no host has registered yet: start ecsd on this store")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATE\tSERVERS\tVCPUS\tRAM_MB\tDISK_GB\tHEARTBEAT\tDRIVER\tADVERTISE")
	for _, h := range hosts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d/%d\t%d/%d\t%d/%d\t%s ago\t%s\t%s\n", h.Name, state(h, downAfter), h.Servers,
			h.AllocVCPUs, offered(int64(h.VCPUs), h.CPURatio), h.AllocRAMMB, offered(h.RAMMB, h.RAMRatio),
			h.AllocDiskGB, offered(h.DiskGB, h.DiskRatio), h.Age.Round(time.Second), h.Driver, h.Advertise)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "VCPUS, RAM_MB and DISK_GB are allocated/offered (capacity x allocation ratio).")
	return err
}
