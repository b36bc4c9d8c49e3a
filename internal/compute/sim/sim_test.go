package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/computetest"
	"github.com/ecsproject/ecsd/internal/compute/faulty"
	"github.com/ecsproject/ecsd/internal/ecs"
)

var (
	image = ecs.Image{ID: "img-debian-12"}
	creds = compute.Credentials{
		PasswordHash:   "$6$Xk3v9Qb1LmN0pZrT$qMcjduoFWNaft6gyB4yfdyYz.jN6G1/BysoaVMiMcCYx8A67zwRMIOD51Ysa/YcsFmRfzlSJBFI6F1L8Xjlxn/",
		AuthorizedKeys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEoLEUykN7/KNMoGU4h0IK/93KugUVlY9Js4mGZR2UC0 sim@test\n",
	}
)

func TestConformance(t *testing.T) {
	t.Parallel()
	computetest.Run(t, func(t *testing.T) computetest.Fixture {
		return computetest.Fixture{Driver: newDriver(t, Config{}), Image: image}
	})
}

// TestConformanceCloudInit runs the guest tests with an image that runs
// cloud-init: its servers have a guest agent.
func TestConformanceCloudInit(t *testing.T) {
	t.Parallel()
	computetest.RunGuest(t, func(t *testing.T) computetest.Fixture {
		img := image
		img.CloudInit = true
		return computetest.Fixture{Driver: newDriver(t, Config{}), Image: img, Agent: true}
	})
}

// newDriver returns a driver on a fresh directory unless cfg names one.
func newDriver(t testing.TB, cfg Config) *Driver {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// world makes a state directory holding: server s1 stopped on disk d1
// (with creds), disk d2 free, server s3 stopped without a disk (d3, its
// former disk, free), server s4 running on d4.
func world(t *testing.T) string {
	t.Helper()
	d := newDriver(t, Config{})
	ctx := t.Context()
	for _, id := range []string{"d1", "d2", "d3", "d4"} {
		must(t, d.CreateDisk(ctx, compute.DiskSpec{ID: id, Image: image, SizeGB: 10}))
	}
	must(t, d.ApplyCredentials(ctx, "d1", creds))
	for _, sd := range [][2]string{{"s1", "d1"}, {"s3", "d3"}, {"s4", "d4"}} {
		// s4's image runs cloud-init: its guest has an agent.
		_, err := d.CreateServer(ctx, compute.ServerSpec{ID: sd[0], Name: "n-" + sd[0], DiskID: sd[1],
			Image: ecs.Image{ID: image.ID, CloudInit: sd[0] == "s4"}})
		must(t, err)
	}
	must(t, d.DetachDisk(ctx, "s3", "d3"))
	must(t, d.StartServer(ctx, "s4"))
	// d5 is a blank data disk of the running s4.
	must(t, d.CreateDisk(ctx, compute.DiskSpec{ID: "d5", SizeGB: 1}))
	must(t, d.AttachDataDisk(ctx, "s4", "d5"))
	return d.dir
}

// opCalls holds, per operation (faulty.Ops), a call that succeeds on a world and changes
// it (but read_credentials).
var opCalls = map[string]func(ctx context.Context, d *Driver) error{
	OpCreateDisk: func(ctx context.Context, d *Driver) error {
		return d.CreateDisk(ctx, compute.DiskSpec{ID: "d9", Image: image, SizeGB: 10})
	},
	OpDeleteDisk:       func(ctx context.Context, d *Driver) error { return d.DeleteDisk(ctx, "d2") },
	OpApplyCredentials: func(ctx context.Context, d *Driver) error { return d.ApplyCredentials(ctx, "d2", creds) },
	OpReadCredentials: func(ctx context.Context, d *Driver) error {
		c, err := d.ReadCredentials(ctx, "d1")
		if err == nil && c != creds {
			return errors.New("read wrong credentials")
		}
		return err
	},
	OpCreateServer: func(ctx context.Context, d *Driver) error {
		_, err := d.CreateServer(ctx, compute.ServerSpec{ID: "s2", DiskID: "d2"})
		return err
	},
	OpDeleteServer:   func(ctx context.Context, d *Driver) error { return d.DeleteServer(ctx, "s1") },
	OpAttachDisk:     func(ctx context.Context, d *Driver) error { return d.AttachDisk(ctx, "s3", "d2") },
	OpDetachDisk:     func(ctx context.Context, d *Driver) error { return d.DetachDisk(ctx, "s1", "d1") },
	OpAttachDataDisk: func(ctx context.Context, d *Driver) error { return d.AttachDataDisk(ctx, "s4", "d2") },
	OpDetachDataDisk: func(ctx context.Context, d *Driver) error { return d.DetachDataDisk(ctx, "s4", "d5") },
	OpStart:          func(ctx context.Context, d *Driver) error { return d.StartServer(ctx, "s1") },
	OpStop:           func(ctx context.Context, d *Driver) error { return d.StopServer(ctx, "s4", false) },
	OpReboot:         func(ctx context.Context, d *Driver) error { return d.RebootServer(ctx, "s4", false) },
	OpSetSeed: func(ctx context.Context, d *Driver) error {
		return d.SetSeed(ctx, "s1", &compute.Seed{InstanceID: "i-1", UserData: []byte("#!/bin/sh\n")})
	},
	OpReadSeed: func(ctx context.Context, d *Driver) error {
		s, err := d.ReadSeed(ctx, "s1")
		if err == nil && s != nil {
			return errors.New("read a seed where there is none")
		}
		return err
	},
	OpSetServerImage: func(ctx context.Context, d *Driver) error {
		return d.SetServerImage(ctx, "s1", ecs.Image{ID: "other-image", CloudInit: true})
	},
	OpSetPassword: func(ctx context.Context, d *Driver) error { return d.SetPassword(ctx, "s4", creds.PasswordHash) },
	OpPingAgent:   func(ctx context.Context, d *Driver) error { return d.PingAgent(ctx, "s4") },
}

// snapshot returns the content of every file under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		files[path] = string(data)
		return err
	})
	must(t, err)
	return files
}

func sameFiles(t *testing.T, dir string, before map[string]string, what string) {
	t.Helper()
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("%s changed the state files:\nbefore %v\nafter  %v", what, before, after)
	}
}

func TestOpCallsCoverOps(t *testing.T) {
	t.Parallel()
	if got := slices.Sorted(maps.Keys(opCalls)); !slices.Equal(got, slices.Sorted(slices.Values(faulty.Ops))) {
		t.Fatalf("opCalls has %v, want every op of %v", got, faulty.Ops)
	}
	// Every call succeeds and changes the world.
	for _, op := range faulty.Ops {
		dir := world(t)
		before := snapshot(t, dir)
		must(t, opCalls[op](t.Context(), newDriver(t, Config{Dir: dir})))
		readOnly := op == OpReadCredentials || op == OpReadSeed || op == OpPingAgent
		if !readOnly && maps.Equal(before, snapshot(t, dir)) {
			t.Errorf("%s changed no state file", op)
		}
	}
}

// recorder replaces a driver's sleep: it records the waits and returns at
// once.
type recorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func record(d *Driver) *recorder {
	r := &recorder{}
	d.sleep = func(ctx context.Context, dur time.Duration) error {
		r.mu.Lock()
		r.waits = append(r.waits, dur)
		r.mu.Unlock()
		return ctx.Err()
	}
	return r
}

func (r *recorder) got() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.waits)
}

func TestLatency(t *testing.T) {
	t.Parallel()
	t.Run("EveryCall", func(t *testing.T) {
		t.Parallel()
		calls := map[string]func(ctx context.Context, d *Driver) error{
			"power_state": func(ctx context.Context, d *Driver) error { _, err := d.PowerState(ctx, "s1"); return err },
		}
		maps.Copy(calls, opCalls)
		for name, call := range calls {
			d := newDriver(t, Config{Dir: world(t), Latency: 3 * time.Millisecond})
			r := record(d)
			must(t, call(t.Context(), d))
			if got, want := r.got(), []time.Duration{3 * time.Millisecond}; !slices.Equal(got, want) {
				t.Errorf("%s waited %v, want %v", name, got, want)
			}
		}
	})

	t.Run("Cancellable", func(t *testing.T) {
		t.Parallel()
		dir := world(t)
		d := newDriver(t, Config{Dir: dir, Latency: time.Hour})
		before := snapshot(t, dir)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		if err := opCalls[OpCreateDisk](ctx, d); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		ctx, cancel = context.WithCancel(t.Context())
		cancel()
		if _, err := d.PowerState(ctx, "s1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("PowerState: got %v, want context.Canceled", err)
		}
		sameFiles(t, dir, before, "calls cut short")
		if _, ok := d.Disk("d9"); ok {
			t.Fatal("the cut-short CreateDisk created its disk")
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no dir", Config{}},
		{"negative latency", Config{Dir: dir, Latency: -time.Second}},
		{"dir is a file", Config{Dir: filepath.Join(world(t), "disks", "d1.json")}},
	}
	for _, tc := range tests {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", tc.name)
		}
	}
}

func TestDurability(t *testing.T) {
	t.Parallel()
	dir := world(t)
	ctx := t.Context()
	// A first driver works on the world and is abandoned, as by kill -9.
	a := newDriver(t, Config{Dir: dir})
	must(t, a.StartServer(ctx, "s1"))
	must(t, a.RebootServer(ctx, "s1", true))
	must(t, a.ApplyCredentials(ctx, "d3", compute.Credentials{AuthorizedKeys: creds.AuthorizedKeys}))
	must(t, a.DeleteDisk(ctx, "d2"))
	must(t, a.DeleteServer(ctx, "s4"))

	b := newDriver(t, Config{Dir: dir})
	for _, id := range []string{"d1", "d2", "d3", "d4", "d9"} {
		want, wantOK := a.Disk(id)
		got, ok := b.Disk(id)
		if ok != wantOK || got.Created.Compare(want.Created) != 0 {
			t.Errorf("Disk(%s) after restart = %+v, %v; want %+v, %v", id, got, ok, want, wantOK)
		}
		got.Created, want.Created = time.Time{}, time.Time{}
		if got != want {
			t.Errorf("Disk(%s) after restart = %+v; want %+v", id, got, want)
		}
	}
	for _, id := range []string{"s1", "s2", "s3", "s4"} {
		want, wantOK := a.Server(id)
		if got, ok := b.Server(id); !reflect.DeepEqual(got, want) || ok != wantOK {
			t.Errorf("Server(%s) after restart = %+v, %v; want %+v, %v", id, got, ok, want, wantOK)
		}
	}
	if s1, _ := b.Server("s1"); s1.Power != PowerRunning || s1.Boots != 2 || s1.DiskID != "d1" {
		t.Errorf("s1 after restart = %+v, want running on d1 after 2 boots", s1)
	}
	if d4, _ := b.Disk("d4"); d4.AttachedTo != "" {
		t.Errorf("d4 after restart = %+v, want detached (its server was deleted)", d4)
	}
	p, err := b.PowerState(ctx, "s1")
	if err != nil || p != compute.PowerRunning {
		t.Errorf("PowerState(s1) after restart = %v, %v; want running", p, err)
	}
	c, err := b.ReadCredentials(ctx, "d3")
	if err != nil || c != (compute.Credentials{AuthorizedKeys: creds.AuthorizedKeys}) {
		t.Errorf("ReadCredentials(d3) after restart = %+v, %v", c, err)
	}
	// The restarted driver carries on: its rules hold on the loaded state.
	if err := b.DeleteDisk(ctx, "d1"); !errors.Is(err, ecs.ErrConflict) {
		t.Errorf("DeleteDisk(d1), attached, after restart: got %v, want ErrConflict", err)
	}
	must(t, b.StopServer(ctx, "s1", false))
	must(t, b.DetachDisk(ctx, "s1", "d1"))
	must(t, b.AttachDisk(ctx, "s1", "d4"))
	must(t, b.DeleteDisk(ctx, "d1"))
	must(t, b.StartServer(ctx, "s1"))
}

func TestStateFiles(t *testing.T) {
	t.Parallel()
	dir := world(t)
	for _, sub := range []string{"disks", "servers"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		must(t, err)
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", sub, fi.Mode().Perm())
		}
	}
	files := snapshot(t, dir)
	if len(files) != 8 {
		t.Errorf("state has files %v, want 5 disks and 3 servers", slices.Sorted(maps.Keys(files)))
	}
	for path := range files {
		fi, err := os.Stat(path)
		must(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
	}

	var disk map[string]any
	must(t, json.Unmarshal([]byte(files[filepath.Join(dir, "disks", "d1.json")]), &disk))
	wantDisk := map[string]any{
		"id": "d1", "image_id": image.ID, "size_gb": 10.0, "password_hash": creds.PasswordHash,
		"authorized_keys": creds.AuthorizedKeys, "attached_to": "s1",
	}
	created, _ := disk["created"].(string)
	if _, err := time.Parse(time.RFC3339Nano, created); err != nil {
		t.Errorf("disk created = %q, want an RFC 3339 time", disk["created"])
	}
	delete(disk, "created")
	if !maps.Equal(disk, wantDisk) {
		t.Errorf("d1.json = %v, want %v and created", disk, wantDisk)
	}

	var server map[string]any
	must(t, json.Unmarshal([]byte(files[filepath.Join(dir, "servers", "s4.json")]), &server))
	wantServer := map[string]any{"id": "s4", "name": "n-s4", "disk_id": "d4", "power": "running", "boots": 1.0,
		"image_id": image.ID, "agent": true, "data_disks": []any{"d5"}}
	if !reflect.DeepEqual(server, wantServer) {
		t.Errorf("s4.json = %v, want %v", server, wantServer)
	}
	must(t, json.Unmarshal([]byte(files[filepath.Join(dir, "servers", "s3.json")]), &server))
	if server["disk_id"] != "" || server["power"] != "stopped" {
		t.Errorf("s3.json = %v, want stopped without a disk", server)
	}

	// A fresh disk holds empty credentials.
	must(t, json.Unmarshal([]byte(files[filepath.Join(dir, "disks", "d2.json")]), &disk))
	if disk["password_hash"] != "" || disk["authorized_keys"] != "" || disk["attached_to"] != "" {
		t.Errorf("d2.json = %v, want empty credentials, detached", disk)
	}
}

// TestRecovery plays what a daemon killed between two writes leaves
// behind: New makes the disks' attached_to agree with the servers again.
func TestRecovery(t *testing.T) {
	t.Parallel()
	dir := world(t)
	write := func(path, content string) {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(dir, path), []byte(content), 0o600))
	}
	// Killed in DetachDisk(s1, d1) after the server file: d1 still says s1.
	write("servers/s1.json", `{"id":"s1","name":"n-s1","disk_id":"","power":"stopped","boots":0}`)
	// Killed in AttachDisk(s3, d2) after the server file: d2 says nothing.
	write("servers/s3.json", `{"id":"s3","name":"n-s3","disk_id":"d2","power":"stopped","boots":0}`)
	// Killed while writing a file.
	write("disks/d7.json.tmp", `{"id":"d7","ima`)

	d := newDriver(t, Config{Dir: dir})
	if d1, _ := d.Disk("d1"); d1.AttachedTo != "" {
		t.Errorf("d1 = %+v, want detached", d1)
	}
	if d2, _ := d.Disk("d2"); d2.AttachedTo != "s3" {
		t.Errorf("d2 = %+v, want attached to s3", d2)
	}
	if _, ok := d.Disk("d7"); ok {
		t.Error("a temporary file was loaded as disk d7")
	}
	files := snapshot(t, dir)
	if _, ok := files[filepath.Join(dir, "disks", "d7.json.tmp")]; ok {
		t.Error("the temporary file was left behind")
	}
	for id, want := range map[string]string{"d1": `"attached_to": ""`, "d2": `"attached_to": "s3"`} {
		if f := files[filepath.Join(dir, "disks", id+".json")]; !strings.Contains(f, want) {
			t.Errorf("%s.json = %s, want it rewritten with %s", id, f, want)
		}
	}
	must(t, d.DeleteDisk(t.Context(), "d1"))
	must(t, d.StartServer(t.Context(), "s3"))
}

func TestLoadRejectsBadState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, content string
	}{
		{"bad JSON", "disks/d1.json", `{"id":`},
		{"disk id mismatch", "disks/d1.json", `{"id":"d2"}`},
		{"negative size", "disks/d1.json", `{"id":"d1","size_gb":-1}`},
		{"invalid id", "disks/a b.json", `{"id":"a b"}`},
		{"server id mismatch", "servers/s1.json", `{"id":"sX","disk_id":"d1","power":"stopped"}`},
		{"bad power", "servers/s1.json", `{"id":"s1","disk_id":"d1","power":"paused"}`},
		{"running without disk", "servers/s3.json", `{"id":"s3","disk_id":"","power":"running"}`},
		{"missing disk", "servers/s3.json", `{"id":"s3","disk_id":"d8","power":"stopped"}`},
		{"disk of two servers", "servers/s3.json", `{"id":"s3","disk_id":"d1","power":"stopped"}`},
	}
	for _, tc := range tests {
		dir := world(t)
		path := filepath.Join(dir, tc.file)
		must(t, os.WriteFile(path, []byte(tc.content), 0o600))
		_, err := New(Config{Dir: dir})
		if err == nil || !strings.Contains(err.Error(), filepath.Base(path)) {
			t.Errorf("%s: New = %v, want an error naming %s", tc.name, err, filepath.Base(path))
		}
	}
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	d := newDriver(t, Config{Dir: world(t)})
	ctx := t.Context()
	refusals := []struct {
		name string
		err  error
		kind ecs.Kind
	}{
		{"DeleteDisk attached", d.DeleteDisk(ctx, "d1"), ecs.ErrConflict},
		{"ApplyCredentials running", d.ApplyCredentials(ctx, "d4", creds), ecs.ErrBadState},
		{"CreateDisk over a running server's disk", d.CreateDisk(ctx, compute.DiskSpec{ID: "d4", Image: image}), ecs.ErrBadState},
		{"AttachDisk running", d.AttachDisk(ctx, "s4", "d2"), ecs.ErrBadState},
		{"DetachDisk running", d.DetachDisk(ctx, "s4", "d4"), ecs.ErrBadState},
		{"AttachDisk second disk", d.AttachDisk(ctx, "s1", "d2"), ecs.ErrConflict},
		{"AttachDisk other server's disk", d.AttachDisk(ctx, "s3", "d1"), ecs.ErrConflict},
		{"StartServer without disk", d.StartServer(ctx, "s3"), ecs.ErrBadState},
		{"RebootServer stopped", d.RebootServer(ctx, "s1", false), ecs.ErrBadState},
		{"CreateServer disk in use", func() error { _, err := d.CreateServer(ctx, compute.ServerSpec{ID: "s5", DiskID: "d1"}); return err }(), ecs.ErrConflict},
		{"CreateServer again with another disk", func() error { _, err := d.CreateServer(ctx, compute.ServerSpec{ID: "s1", DiskID: "d2"}); return err }(), ecs.ErrConflict},
		{"AttachDisk of a missing disk", d.AttachDisk(ctx, "s3", "d8"), ecs.ErrNotFound},
		{"CreateDisk without an image", d.CreateDisk(ctx, compute.DiskSpec{ID: "d9"}), ecs.ErrInvalid},
		{"CreateDisk of -1 GB", d.CreateDisk(ctx, compute.DiskSpec{ID: "d9", Image: image, SizeGB: -1}), ecs.ErrInvalid},
	}
	for _, c := range refusals {
		if got := ecs.KindOf(c.err); got != c.kind || !errors.Is(c.err, c.kind) {
			t.Errorf("%s: got %v (%s), want an error of kind %s", c.name, c.err, got, c.kind)
		}
	}
}

func TestCreateDiskAgainKeepsAttachment(t *testing.T) {
	t.Parallel()
	d := newDriver(t, Config{Dir: world(t)})
	must(t, d.CreateDisk(t.Context(), compute.DiskSpec{ID: "d1", Image: ecs.Image{ID: "img-2"}, SizeGB: 20}))
	got, _ := d.Disk("d1")
	if got.AttachedTo != "s1" || got.ImageID != "img-2" || got.SizeGB != 20 || got.PasswordHash != "" || got.AuthorizedKeys != "" {
		t.Fatalf("d1 = %+v, want a fresh img-2 disk of 20 GB still attached to s1", got)
	}
	must(t, d.StartServer(t.Context(), "s1"))
}

func TestBoots(t *testing.T) {
	t.Parallel()
	d := newDriver(t, Config{Dir: world(t)})
	ctx := t.Context()
	steps := []struct {
		name  string
		call  func() error
		boots int
	}{
		{"start", func() error { return d.StartServer(ctx, "s1") }, 1},
		{"start again", func() error { return d.StartServer(ctx, "s1") }, 1},
		{"reboot", func() error { return d.RebootServer(ctx, "s1", false) }, 2},
		{"stop", func() error { return d.StopServer(ctx, "s1", false) }, 2},
		{"start", func() error { return d.StartServer(ctx, "s1") }, 3},
	}
	for _, st := range steps {
		must(t, st.call())
		if s, _ := d.Server("s1"); s.Boots != st.boots {
			t.Fatalf("after %s: boots = %d, want %d", st.name, s.Boots, st.boots)
		}
	}
}

func TestRejectsBadInput(t *testing.T) {
	t.Parallel()
	dir := world(t)
	d := newDriver(t, Config{Dir: dir})
	ctx := t.Context()
	before := snapshot(t, dir)
	for _, id := range []string{"", "../d1", "a/b", ".hidden", "a b", "d1\x00", strings.Repeat("x", 201)} {
		if err := d.CreateDisk(ctx, compute.DiskSpec{ID: id, Image: image}); err == nil {
			t.Errorf("CreateDisk(%q) succeeded", id)
		}
		if err := d.DeleteDisk(ctx, id); err == nil {
			t.Errorf("DeleteDisk(%q) succeeded", id)
		}
		if _, err := d.CreateServer(ctx, compute.ServerSpec{ID: id, DiskID: "d2"}); err == nil {
			t.Errorf("CreateServer(%q) succeeded", id)
		}
		if err := d.AttachDisk(ctx, "s3", id); err == nil {
			t.Errorf("AttachDisk(s3, %q) succeeded", id)
		}
	}
	for _, hash := range []string{"S3cret-pass", "$6$salt$ha:sh", "$6$salt$hash\nroot::0:", "$"} {
		if err := d.ApplyCredentials(ctx, "d2", compute.Credentials{PasswordHash: hash}); err == nil {
			t.Errorf("ApplyCredentials(hash %q) succeeded", hash)
		}
	}
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "d9"}); err == nil {
		t.Error("CreateDisk without an image succeeded")
	}
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "d9", Image: image, SizeGB: -1}); err == nil {
		t.Error("CreateDisk of -1 GB succeeded")
	}
	sameFiles(t, dir, before, "rejected calls")
}

// reinstall runs the reinstall sequence of server sid from disk from to disk
// to.
func reinstall(ctx context.Context, d *Driver, sid, from, to string) error {
	if err := d.StopServer(ctx, sid, false); err != nil {
		return err
	}
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: to, Image: image, SizeGB: 10}); err != nil {
		return err
	}
	if err := d.ApplyCredentials(ctx, to, creds); err != nil {
		return err
	}
	if err := d.DetachDisk(ctx, sid, from); err != nil {
		return err
	}
	if err := d.AttachDisk(ctx, sid, to); err != nil {
		return err
	}
	if err := d.DeleteDisk(ctx, from); err != nil {
		return err
	}
	return d.StartServer(ctx, sid)
}

// TestConcurrentCalls races calls on shared disks and servers (run it with
// -race): whatever the interleaving, the invariants hold in memory and in
// the files.
func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	dir := world(t)
	d := newDriver(t, Config{Dir: dir})
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 15 {
				// Errors are expected: the calls fight over s1, s3, d1, d2.
				_ = d.StopServer(ctx, "s1", false)
				_ = d.DetachDisk(ctx, "s1", "d1")
				_ = d.AttachDisk(ctx, "s3", "d1")
				_ = d.AttachDisk(ctx, "s1", "d2")
				_ = d.ApplyCredentials(ctx, "d1", creds)
				_ = d.DetachDisk(ctx, "s3", "d1")
				_ = d.StartServer(ctx, "s1")
				_ = d.DeleteDisk(ctx, "d2")
				_ = d.CreateDisk(ctx, compute.DiskSpec{ID: "d2", Image: image})
				_ = d.StopServer(ctx, "s1", true)
				_ = d.DetachDisk(ctx, "s1", "d2")
				_ = d.AttachDisk(ctx, "s1", "d1")
				if i%2 == 0 {
					_ = d.DeleteServer(ctx, "s3")
					_, _ = d.CreateServer(ctx, compute.ServerSpec{ID: "s3", DiskID: "d3"})
					_ = d.DetachDisk(ctx, "s3", "d3")
				}
			}
		})
	}
	wg.Wait()
	check := func(d *Driver, from string) {
		t.Helper()
		for _, sid := range []string{"s1", "s3", "s4"} {
			s, ok := d.Server(sid)
			if !ok || s.DiskID == "" {
				continue
			}
			if disk, ok := d.Disk(s.DiskID); !ok || disk.AttachedTo != sid {
				t.Errorf("%s: server %+v has disk %+v", from, s, disk)
			}
		}
		for _, did := range []string{"d1", "d2", "d3", "d4"} {
			disk, ok := d.Disk(did)
			if !ok || disk.AttachedTo == "" {
				continue
			}
			if s, ok := d.Server(disk.AttachedTo); !ok || s.DiskID != did {
				t.Errorf("%s: disk %+v is attached to %+v", from, disk, s)
			}
		}
	}
	check(d, "memory")
	again := newDriver(t, Config{Dir: dir})
	check(again, "files")
	for _, id := range []string{"d1", "d2", "d3", "d4"} {
		a, aok := d.Disk(id)
		b, bok := again.Disk(id)
		if aok != bok || a.AttachedTo != b.AttachedTo || a.PasswordHash != b.PasswordHash {
			t.Errorf("disk %s: memory %+v, files %+v", id, a, b)
		}
	}
	for _, id := range []string{"s1", "s3", "s4"} {
		a, aok := d.Server(id)
		if b, bok := again.Server(id); aok != bok || !reflect.DeepEqual(a, b) {
			t.Errorf("server %s: memory %+v, files %+v", id, a, b)
		}
	}
}
