//go:build vmcloudinit

// The real-guest proof of the cloud-init side of the driver (make
// test-vm-cloudinit): a Debian guest that runs cloud-init and the QEMU
// guest agent, built by scripts/build-cloudinit-image.sh into
// $ECS_CLOUDINIT_IMAGE_DIR, else ~/.cache/ecsd/cloudinit-image (cached).
//
//	go test -tags vmtest,vmcloudinit -count=1 -p 1 -timeout 10m -run CloudInit ./internal/compute/qemu/

package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"golang.org/x/crypto/ssh"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/computetest"
	"github.com/ecsproject/ecsd/internal/ecs"
)

var (
	ciStoreDir string
	ciImage    ecs.Image
	ciErr      error
)

// cloudInitImage builds (once, cached) and imports the cloud-init guest.
func cloudInitImage(t testing.TB) ecs.Image {
	t.Helper()
	testImage(t) // QEMU present
	if ciImage.ID != "" || ciErr != nil {
		if ciErr != nil {
			t.Fatal(ciErr)
		}
		return ciImage
	}
	dir := os.Getenv("ECS_CLOUDINIT_IMAGE_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(cache, "ecsd", "cloudinit-image")
	}
	script, err := repoFile("scripts/build-cloudinit-image.sh")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out, err := exec.Command(script, dir).CombinedOutput(); err != nil {
		ciErr = err
		t.Fatalf("%s %s: %v\n%s", script, dir, err, out)
	}
	t.Logf("cloud-init image ready in %v", time.Since(start))
	ciStoreDir, err = os.MkdirTemp("", "ecsd-qemu-ci-store-")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), Config{Dir: ciStoreDir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ciImage, ciErr = d.ImportImage(context.Background(), ImportSpec{
		ID: "debian-cloudinit", Name: "Debian 12 cloud-init test guest",
		File:   filepath.Join(dir, "disk.qcow2"),
		Kernel: filepath.Join(dir, "vmlinux"), Initrd: filepath.Join(dir, "initrd.img"),
	})
	if ciErr != nil {
		t.Fatal(ciErr)
	}
	return ciImage
}

func TestCloudInitImageInspection(t *testing.T) {
	img := cloudInitImage(t)
	if !img.CloudInit || img.Platform != "Debian" || img.OSType != "Linux" || img.Unsupported != "" || img.RootFS != "ext4" {
		t.Fatalf("inspection: %+v; want cloud-init, Debian, Linux, ext4, supported", img)
	}
}

// TestCloudInitConformance runs the conformance suite's guest tests with
// the cloud-init guest, whose agent answers.
func TestCloudInitConformance(t *testing.T) {
	img := cloudInitImage(t)
	computetest.RunGuest(t, func(t *testing.T) computetest.Fixture {
		d, err := New(t.Context(), Config{Dir: t.TempDir(), StopTimeout: 60 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return computetest.Fixture{Driver: d, Image: img, Boots: true, Serial: true, Agent: true}
	})
}

func crypt6(t testing.TB, password string) string {
	t.Helper()
	h, err := shacrypt.New(shacrypt.WithSHA512(), shacrypt.WithIterations(shacrypt.IterationsDefaultOmitted))
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	return d.Encode()
}

// refused checks that a login with auth is refused.
func (g *guest) refused(ctx context.Context, auth ssh.AuthMethod, what string) {
	g.t.Helper()
	if _, err := g.ssh(ctx, auth, "true"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		g.t.Fatalf("ssh with %s: %v, want refused", what, err)
	}
}

// run runs cmd over ssh with auth and returns its trimmed output.
func (g *guest) run(ctx context.Context, auth ssh.AuthMethod, cmd string) string {
	g.t.Helper()
	out, err := g.ssh(ctx, auth, cmd)
	if err != nil {
		g.t.Fatalf("ssh %q: %v: %s", cmd, err, out)
	}
	return strings.TrimSpace(out)
}

// waitCloudInit waits until cloud-init's final stage has finished.
func (g *guest) waitCloudInit(ctx context.Context, auth ssh.AuthMethod) {
	g.t.Helper()
	g.run(ctx, auth, "i=0; until test -e /var/lib/cloud/instance/boot-finished; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.5; done")
}

// TestCloudInitEndToEnd is the proof of issue 9's scope point 4 at the
// driver level: create with key A and a user-data script, reinstall with
// key B (new disk, new seed, new instance-id), then set the password
// online through the guest agent, without a reboot.
func TestCloudInitEndToEnd(t *testing.T) {
	img := cloudInitImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	d, err := New(ctx, Config{Dir: t.TempDir(), StopTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	keyA, keyB := newKeyPair(t, "a@ci"), newKeyPair(t, "b@ci")
	authA, authB := ssh.PublicKeys(keyA.signer), ssh.PublicKeys(keyB.signer)

	// Create: key A, a script that writes a marker.
	must(d.CreateDisk(ctx, compute.DiskSpec{ID: "vol-1", Image: img, SizeGB: img.MinDiskGB}), "CreateDisk(vol-1)")
	seed1 := &compute.Seed{InstanceID: "i-ci-1", Hostname: "ci-guest", AuthorizedKeys: keyA.authorized,
		UserData: []byte("#!/bin/sh\necho \"marker from $(cat /var/lib/cloud/data/instance-id)\" >/root/marker\n")}
	info, err := d.CreateServer(ctx, compute.ServerSpec{ID: "srv", Name: "ci", VCPUs: 1, RAMMB: 512, Image: img,
		DiskID: "vol-1", Seed: seed1})
	must(err, "CreateServer")
	defer d.DeleteServer(context.Background(), "srv")
	g := &guest{t: t, d: d, id: "srv", port: info.AccessPort, serial: d.SerialLog("srv")}
	boot := time.Now()
	must(d.StartServer(ctx, "srv"), "StartServer")
	g.waitReady(ctx)
	osr := g.run(ctx, authA, "grep '^ID=' /etc/os-release")
	t.Logf("cloud-init guest: boot to SSH (key A logs in): %v", time.Since(boot))
	if osr != "ID=debian" {
		t.Fatalf("/etc/os-release: %q", osr)
	}
	g.waitCloudInit(ctx, authA)
	t.Logf("cloud-init guest: boot to cloud-init done: %v", time.Since(boot))
	if got := g.run(ctx, authA, "cat /root/marker"); got != "marker from i-ci-1" {
		t.Fatalf("user-data marker: %q", got)
	}
	if got := g.run(ctx, authA, "cloud-init query instance_id"); got != "i-ci-1" {
		t.Fatalf("cloud-init query instance_id = %q, want i-ci-1", got)
	}

	// Reinstall: new disk, new seed (key B, new instance id), same image.
	start := time.Now()
	must(d.StopServer(ctx, "srv", false), "StopServer")
	t.Logf("graceful stop: %v", time.Since(start))
	must(d.CreateDisk(ctx, compute.DiskSpec{ID: "vol-2", Image: img, SizeGB: img.MinDiskGB}), "CreateDisk(vol-2)")
	must(d.DetachDisk(ctx, "srv", "vol-1"), "DetachDisk")
	must(d.AttachDisk(ctx, "srv", "vol-2"), "AttachDisk")
	must(d.DeleteDisk(ctx, "vol-1"), "DeleteDisk(vol-1)")
	seed2 := &compute.Seed{InstanceID: "i-ci-2", AuthorizedKeys: keyB.authorized,
		UserData: []byte("#cloud-config\nruncmd:\n  - [sh, -c, 'echo second > /root/marker2']\n")}
	must(d.SetSeed(ctx, "srv", seed2), "SetSeed")
	must(d.SetServerImage(ctx, "srv", img), "SetServerImage")
	must(d.StartServer(ctx, "srv"), "StartServer after the reinstall")
	g.waitReady(ctx)
	g.run(ctx, authB, "true")
	t.Logf("cloud-init guest: reinstall to SSH (stop, new disk and seed, boot, key B logs in): %v", time.Since(start))
	g.refused(ctx, authA, "the old key A")
	g.waitCloudInit(ctx, authB)
	if got := g.run(ctx, authB, "cloud-init query instance_id"); got != "i-ci-2" {
		t.Fatalf("cloud-init query instance_id = %q, want i-ci-2", got)
	}
	if got := g.run(ctx, authB, "test -e /root/marker && echo present || echo absent; cat /root/marker2"); got != "absent\nsecond" {
		t.Fatalf("after the reinstall: %q, want the old marker absent and the new user data's", got)
	}

	// Online password set, through the agent, twice; no reboot.
	bootID := g.run(ctx, authB, "cat /proc/sys/kernel/random/boot_id")
	for {
		err := d.PingAgent(ctx, "srv")
		if err == nil {
			break
		}
		if !errorsIsNoAgent(err) || ctx.Err() != nil {
			t.Fatalf("PingAgent: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	const pw1, pw2 = "Fir5t-passw0rd!", "Sec0nd-passw0rd!"
	g.refused(ctx, ssh.Password(pw1), "a password before any was set")
	must(d.SetPassword(ctx, "srv", crypt6(t, pw1)), "SetPassword(pw1)")
	if got := g.run(ctx, ssh.Password(pw1), "id -un"); got != "root" {
		t.Fatalf("password login runs as %q", got)
	}
	hash2 := crypt6(t, pw2)
	setAt := time.Now()
	must(d.SetPassword(ctx, "srv", hash2), "SetPassword(pw2)")
	t.Logf("SetPassword through the agent: %v", time.Since(setAt))
	g.run(ctx, ssh.Password(pw2), "true")
	g.refused(ctx, ssh.Password(pw1), "the old password")
	if got := g.run(ctx, authB, "cat /proc/sys/kernel/random/boot_id"); got != bootID {
		t.Fatalf("boot id changed from %s to %s: the guest rebooted", bootID, got)
	}
	if ps, _ := d.PowerState(ctx, "srv"); ps != compute.PowerRunning {
		t.Fatalf("PowerState = %v after the password sets", ps)
	}
	must(d.StopServer(ctx, "srv", false), "StopServer")
	// The guest wrote the last password to its disk.
	creds, err := d.ReadCredentials(ctx, "vol-2")
	must(err, "ReadCredentials")
	if creds.PasswordHash != hash2 || !strings.Contains(creds.AuthorizedKeys, keyB.authorized) ||
		strings.Contains(creds.AuthorizedKeys, strings.Fields(keyA.authorized)[1]) {
		t.Fatalf("disk after stop: %+v", creds)
	}

	// A new seed on the same disk (a new instance-id) is read at the next
	// boot: cloud-init does not trust what it cached at the last one.
	keyC := newKeyPair(t, "c@ci")
	must(d.SetSeed(ctx, "srv", &compute.Seed{InstanceID: "i-ci-3", AuthorizedKeys: keyC.authorized}), "SetSeed(i-ci-3)")
	must(d.StartServer(ctx, "srv"), "StartServer with a new seed")
	g.waitReady(ctx)
	authC := ssh.PublicKeys(keyC.signer)
	g.waitCloudInit(ctx, authC)
	if got := g.run(ctx, authC, "cloud-init query instance_id; cat /var/lib/cloud/data/previous-instance-id"); got != "i-ci-3\ni-ci-2" {
		t.Fatalf("instance ids (current, previous) = %q, want i-ci-3 and i-ci-2", got)
	}
	must(d.StopServer(ctx, "srv", false), "StopServer at the end")
}

func errorsIsNoAgent(err error) bool { return errors.Is(err, compute.ErrNoAgent) }

// bootToSSH starts server id and returns how long it took until a login
// with auth ran a command.
func bootToSSH(ctx context.Context, g *guest, auth ssh.AuthMethod) time.Duration {
	g.t.Helper()
	start := time.Now()
	if err := g.d.StartServer(ctx, g.id); err != nil {
		g.t.Fatal(err)
	}
	g.waitReady(ctx)
	g.run(ctx, auth, "true")
	return time.Since(start)
}

// BenchmarkCloudInitBootToSSH measures, for a new server of the cloud-init
// guest (fresh disk, seed with a key), the time from StartServer to a
// successful SSH login with the seed's key (p50, p95).
//
//	go test -tags vmtest,vmcloudinit -run '^$' -bench CloudInitBootToSSH -benchtime 5x -timeout 30m ./internal/compute/qemu/
func BenchmarkCloudInitBootToSSH(b *testing.B) {
	img := cloudInitImage(b)
	ctx := context.Background()
	d, err := New(ctx, Config{Dir: b.TempDir(), StopTimeout: 60 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	key := newKeyPair(b, "bench@ci")
	var times []time.Duration
	for i := 0; b.Loop(); i++ {
		id, vol := fmt.Sprintf("s%d", i), fmt.Sprintf("v%d", i)
		if err := d.CreateDisk(ctx, compute.DiskSpec{ID: vol, Image: img, SizeGB: img.MinDiskGB}); err != nil {
			b.Fatal(err)
		}
		info, err := d.CreateServer(ctx, compute.ServerSpec{ID: id, VCPUs: 1, RAMMB: 512, Image: img, DiskID: vol,
			Seed: &compute.Seed{InstanceID: "i-" + id, AuthorizedKeys: key.authorized}})
		if err != nil {
			b.Fatal(err)
		}
		g := &guest{t: b, d: d, id: id, port: info.AccessPort, serial: d.SerialLog(id)}
		times = append(times, bootToSSH(ctx, g, ssh.PublicKeys(key.signer)))
		b.StopTimer()
		if err := d.DeleteServer(ctx, id); err != nil {
			b.Fatal(err)
		}
		d.DeleteDisk(ctx, vol)
		b.StartTimer()
	}
	percentiles(b, times)
}

// BenchmarkCloudInitReinstallToSSH measures a reinstall of a running
// cloud-init guest as the service runs it: graceful stop, new disk, new
// seed (new instance-id, new key), start, until the new key logs in over
// SSH (p50, p95).
//
//	go test -tags vmtest,vmcloudinit -run '^$' -bench CloudInitReinstallToSSH -benchtime 5x -timeout 30m ./internal/compute/qemu/
func BenchmarkCloudInitReinstallToSSH(b *testing.B) {
	img := cloudInitImage(b)
	ctx := context.Background()
	d, err := New(ctx, Config{Dir: b.TempDir(), StopTimeout: 60 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	key := newKeyPair(b, "bench0@ci")
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "v0", Image: img, SizeGB: img.MinDiskGB}); err != nil {
		b.Fatal(err)
	}
	info, err := d.CreateServer(ctx, compute.ServerSpec{ID: "s", VCPUs: 1, RAMMB: 512, Image: img, DiskID: "v0",
		Seed: &compute.Seed{InstanceID: "i-0", AuthorizedKeys: key.authorized}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.DeleteServer(context.Background(), "s")
	g := &guest{t: b, d: d, id: "s", port: info.AccessPort, serial: d.SerialLog("s")}
	bootToSSH(ctx, g, ssh.PublicKeys(key.signer))
	var times []time.Duration
	for i := 0; b.Loop(); i++ {
		old, next := fmt.Sprintf("v%d", i), fmt.Sprintf("v%d", i+1)
		key = newKeyPair(b, next+"@ci")
		start := time.Now()
		steps := []error{
			d.StopServer(ctx, "s", false),
			d.CreateDisk(ctx, compute.DiskSpec{ID: next, Image: img, SizeGB: img.MinDiskGB}),
			d.DetachDisk(ctx, "s", old),
			d.AttachDisk(ctx, "s", next),
			d.DeleteDisk(ctx, old),
			d.SetSeed(ctx, "s", &compute.Seed{InstanceID: "i-" + next, AuthorizedKeys: key.authorized}),
		}
		if err := errors.Join(steps...); err != nil {
			b.Fatal(err)
		}
		bootToSSH(ctx, g, ssh.PublicKeys(key.signer))
		times = append(times, time.Since(start))
	}
	percentiles(b, times)
}
