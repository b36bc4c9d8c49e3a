package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ecsproject/ecsd/client"
)

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows of cells separated by tabs, aligned.
func (a *app) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	if header != nil {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields writes key/value lines, aligned.
func (a *app) fields(kv ...string) error {
	rows := make([][]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		rows = append(rows, []string{kv[i] + ":", kv[i+1]})
	}
	return a.table(nil, rows)
}

// dash shows an empty value as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func addresses(s client.Server) string {
	var out []string
	for _, net := range slices.Sorted(maps.Keys(s.Addresses)) {
		for _, ad := range s.Addresses[net] {
			out = append(out, ad.Addr)
		}
	}
	return dash(strings.Join(out, ","))
}

func (a *app) printServers(list client.ListServersResponse) error {
	if a.output == "json" {
		if list.Servers == nil {
			list.Servers = []client.Server{}
		}
		return a.printJSON(list)
	}
	rows := make([][]string, 0, len(list.Servers))
	for _, s := range list.Servers {
		rows = append(rows, []string{s.ID, s.Name, s.Status, dash(s.Task()), dash(s.Flavor.ID), dash(s.Image.ID), addresses(s)})
	}
	return a.table([]string{"ID", "NAME", "STATUS", "TASK_STATE", "FLAVOR", "IMAGE", "IP"}, rows)
}

func (a *app) printServer(s client.Server) error {
	if a.output == "json" {
		return a.printJSON(s)
	}
	flavor := dash(s.Flavor.ID)
	if s.Flavor.VCPUs != "" || s.Flavor.RAM != "" {
		flavor += fmt.Sprintf(" (%s vCPU, %s MiB)", dash(string(s.Flavor.VCPUs)), dash(string(s.Flavor.RAM)))
	}
	var vols []string
	for _, v := range s.VolumesAttached {
		vols = append(vols, fmt.Sprintf("%s (%s)", v.ID, dash(v.Device)))
	}
	kv := []string{
		"ID", s.ID,
		"NAME", s.Name,
		"STATUS", s.Status,
		"TASK_STATE", dash(s.Task()),
		"VM_STATE", dash(s.VMState),
		"POWER_STATE", strconv.Itoa(s.PowerState),
		"LOCKED", strconv.FormatBool(s.Locked),
		"IMAGE", dash(s.Image.ID),
		"FLAVOR", flavor,
		"KEYPAIR", dash(s.KeyName),
		"IP", addresses(s),
		"VOLUMES", dash(strings.Join(vols, ", ")),
		"CREATED", dash(s.Created),
		"UPDATED", dash(s.Updated),
	}
	if s.Host != "" {
		kv = append(kv, "HOST", s.Host)
	}
	if port := s.Metadata["ssh_port"]; port != "" {
		host := s.Metadata["ssh_host"]
		if host == "" {
			host = "127.0.0.1"
		}
		kv = append(kv, "SSH", fmt.Sprintf("ssh -p %s root@%s", port, host))
	}
	if s.Fault != nil && s.Fault.Message != "" {
		kv = append(kv, "FAULT", s.Fault.Message)
	}
	return a.fields(kv...)
}

func (a *app) printJobID(jobID string) error {
	if a.output == "json" {
		return a.printJSON(map[string]string{"job_id": jobID})
	}
	return a.fields("JOB_ID", jobID)
}

func (a *app) printCreated(jobID string, serverIDs []string) error {
	if a.output == "json" {
		if serverIDs == nil {
			serverIDs = []string{}
		}
		return a.printJSON(struct {
			JobID     string   `json:"job_id"`
			ServerIDs []string `json:"serverIds"`
		}{jobID, serverIDs})
	}
	return a.fields("JOB_ID", jobID, "SERVER_IDS", dash(strings.Join(serverIDs, ",")))
}

// printJob prints a job. Its SERVER line names the servers the job works
// on (its own, or its sub-jobs'); when the job names none, servers (the
// ids the request that made the job answered with) stand in.
func (a *app) printJob(j client.Job, servers []string) error {
	if a.output == "json" {
		return a.printJSON(j)
	}
	if ids := j.ServerIDs(); len(ids) > 0 {
		servers = ids
	}
	if err := a.fields(
		"JOB_ID", j.ID,
		"TYPE", dash(j.Type),
		"STATUS", j.Status,
		"SERVER", dash(strings.Join(servers, ",")),
		"BEGIN", dash(j.BeginTime),
		"END", dash(j.EndTime),
		"ERROR_CODE", dash(j.ErrorCode),
		"FAIL_REASON", dash(j.FailReason),
	); err != nil {
		return err
	}
	if len(j.Entities.SubJobs) == 0 {
		return nil
	}
	fmt.Fprintln(a.stdout)
	rows := make([][]string, 0, len(j.Entities.SubJobs))
	for _, s := range j.Entities.SubJobs {
		rows = append(rows, []string{s.ID, dash(s.Type), s.Status, dash(s.Entities.ServerID), dash(s.ErrorCode), dash(s.FailReason)})
	}
	return a.table([]string{"SUB_JOB", "TYPE", "STATUS", "SERVER", "ERROR_CODE", "FAIL_REASON"}, rows)
}

func (a *app) printKeypair(k client.Keypair) error {
	if a.output == "json" {
		return a.printJSON(k)
	}
	return a.fields("NAME", k.Name, "TYPE", dash(k.Type), "FINGERPRINT", dash(k.Fingerprint), "PUBLIC_KEY", dash(strings.TrimSpace(k.PublicKey)))
}

func (a *app) printKeypairs(kps []client.Keypair) error {
	if a.output == "json" {
		if kps == nil {
			kps = []client.Keypair{}
		}
		return a.printJSON(kps)
	}
	rows := make([][]string, 0, len(kps))
	for _, k := range kps {
		rows = append(rows, []string{k.Name, dash(k.Type), dash(k.Fingerprint)})
	}
	return a.table([]string{"NAME", "TYPE", "FINGERPRINT"}, rows)
}

func (a *app) printImages(images []client.Image) error {
	if a.output == "json" {
		if images == nil {
			images = []client.Image{}
		}
		return a.printJSON(images)
	}
	rows := make([][]string, 0, len(images))
	for _, im := range images {
		os := im.OSVersion
		if os == "" {
			os = im.Platform
		}
		rows = append(rows, []string{im.ID, im.Name, im.Status, dash(im.OSType), dash(os),
			strconv.Itoa(im.MinDisk), strconv.Itoa(im.MinRAM), dash(im.DiskFormat)})
	}
	return a.table([]string{"ID", "NAME", "STATUS", "OS_TYPE", "OS", "MIN_DISK_GB", "MIN_RAM_MB", "FORMAT"}, rows)
}

func (a *app) printFlavors(flavors []client.Flavor) error {
	if a.output == "json" {
		if flavors == nil {
			flavors = []client.Flavor{}
		}
		return a.printJSON(flavors)
	}
	rows := make([][]string, 0, len(flavors))
	for _, f := range flavors {
		rows = append(rows, []string{f.ID, f.Name, strconv.FormatInt(int64(f.VCPUs), 10),
			strconv.FormatInt(int64(f.RAM), 10), strconv.FormatInt(int64(f.Disk), 10)})
	}
	return a.table([]string{"ID", "NAME", "VCPUS", "RAM_MB", "DISK_GB"}, rows)
}
