//go:build vmtest

// Tests that boot real guests: the compute conformance suite and the
// end-to-end reinstall proof. They take minutes and need the test image, so
// they are behind the vmtest build tag:
//
//	go test -tags vmtest -count=1 -p 1 -timeout 30m ./internal/compute/qemu/
//
// The test image comes from $ECS_TEST_IMAGE_DIR (built there by
// scripts/build-test-image.sh if missing), else from the user cache dir
// (~/.cache/ecsd/test-image), built on first use.

package qemu

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"golang.org/x/crypto/ssh"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/compute/computetest"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/testd"
)

var (
	testImageOnce sync.Once
	testImageDir  string
	testImageErr  error
)

// testImage returns the directory holding the test image's vmlinux,
// initrd.img and disk.qcow2, building it if needed.
func testImage(t testing.TB) string {
	t.Helper()
	testd.RequireQEMU(t)
	testImageOnce.Do(func() {
		dir := os.Getenv("ECS_TEST_IMAGE_DIR")
		if dir == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				testImageErr = err
				return
			}
			dir = filepath.Join(cache, "ecsd", "test-image")
		}
		script, err := repoFile("scripts/build-test-image.sh")
		if err != nil {
			testImageErr = err
			return
		}
		out, err := exec.Command(script, dir).CombinedOutput()
		if err != nil {
			testImageErr = fmt.Errorf("%s %s: %v\n%s", script, dir, err, out)
			return
		}
		testImageDir = dir
	})
	if testImageErr != nil {
		t.Fatal(testImageErr)
	}
	return testImageDir
}

// repoFile finds rel in the repository holding the working directory.
func repoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, rel), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

var (
	storeOnce  sync.Once
	storeImage ecs.Image
	storeErr   error
)

// importedTestImage imports the test image once, into a store that the
// drivers of every test share (CreateDisk takes the image's absolute path).
func importedTestImage(t testing.TB) ecs.Image {
	t.Helper()
	src := testImage(t)
	storeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ecsd-qemu-store-")
		if err != nil {
			storeErr = err
			return
		}
		d, err := New(context.Background(), Config{Dir: dir})
		if err != nil {
			storeErr = err
			return
		}
		defer d.Close()
		storeImage, storeErr = d.ImportImage(context.Background(), ImportSpec{
			ID: "busybox-test", Name: "busybox test guest",
			File:   filepath.Join(src, "disk.qcow2"),
			Kernel: filepath.Join(src, "vmlinux"), Initrd: filepath.Join(src, "initrd.img"),
		})
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	return storeImage
}

func TestTestImageInspection(t *testing.T) {
	img := importedTestImage(t)
	want := ecs.Image{DiskFormat: "qcow2", PartitionTable: "none", RootFS: "ext4", OSType: "Linux",
		Platform: "Busybox Test", OSVersion: "ecsd busybox test guest 1", MinDiskGB: 1}
	got := ecs.Image{DiskFormat: img.DiskFormat, PartitionTable: img.PartitionTable, RootFS: img.RootFS,
		OSType: img.OSType, Platform: img.Platform, OSVersion: img.OSVersion, CloudInit: img.CloudInit,
		Unsupported: img.Unsupported, MinDiskGB: img.MinDiskGB}
	if got != want {
		t.Errorf("inspection\n got %+v\nwant %+v", got, want)
	}
	if img.Kernel == "" || img.Initrd == "" {
		t.Errorf("kernel %q initrd %q not stored", img.Kernel, img.Initrd)
	}
}

func TestConformance(t *testing.T) {
	img := importedTestImage(t)
	computetest.Run(t, func(t *testing.T) computetest.Fixture {
		d, err := New(t.Context(), Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return computetest.Fixture{Driver: d, Image: img, Boots: true, Serial: true}
	})
}

// guest is a booted test guest.
type guest struct {
	t      testing.TB
	d      *Driver
	id     string
	port   int
	serial string
}

// waitReady waits for the guest's init to print GUEST-READY and returns
// the GUEST-PROOF values of this boot.
func (g *guest) waitReady(ctx context.Context) map[string]string {
	g.t.Helper()
	for {
		b, _ := os.ReadFile(g.serial)
		if strings.Contains(string(b), "GUEST-READY sshd") {
			proof := map[string]string{}
			sc := bufio.NewScanner(strings.NewReader(string(b)))
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "GUEST-PROOF "); ok {
					k, v, _ := strings.Cut(rest, ": ")
					proof[k] = v
				}
			}
			return proof
		}
		if ps, _ := g.d.PowerState(ctx, g.id); ps != compute.PowerRunning {
			g.t.Fatalf("guest %s stopped before GUEST-READY; serial:\n%s", g.id, b)
		}
		select {
		case <-ctx.Done():
			g.t.Fatalf("guest %s: no GUEST-READY: %v; serial:\n%s", g.id, ctx.Err(), b)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ssh logs in as root with auth and runs cmd; the error is the login's or
// the command's.
func (g *guest) ssh(ctx context.Context, auth ssh.AuthMethod, cmd string) (string, error) {
	cfg := &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{auth},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // a throwaway test guest
		Timeout:         20 * time.Second,
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(g.port))
	var conn *ssh.Client
	var err error
	// The port forward may accept before sshd answers, for longer on a
	// loaded machine (TCG): retry until a login answers or, to bound a
	// hang, two minutes have passed.
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if conn, err = ssh.Dial("tcp", addr, cfg); err == nil || strings.Contains(err.Error(), "unable to authenticate") || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return "", err
	}
	defer conn.Close()
	sess, err := conn.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	return string(out), err
}

type keyPair struct {
	authorized string
	signer     ssh.Signer
}

func newKeyPair(t testing.TB, comment string) keyPair {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + comment + "\n"
	return keyPair{authorized: line, signer: signer}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestReinstallEndToEnd proves a reinstall from the guest's side: the new
// key and password log in over SSH, the old key and a wrong password do
// not, and a file written before the reinstall is gone.
func TestReinstallEndToEnd(t *testing.T) {
	img := importedTestImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	d, err := New(ctx, Config{Dir: t.TempDir()})
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
	keyA, keyB := newKeyPair(t, "a@e2e"), newKeyPair(t, "b@e2e")
	const password = "S3cret-pass!"
	hasher, err := shacrypt.New(shacrypt.WithSHA512(), shacrypt.WithIterations(shacrypt.IterationsDefaultOmitted))
	must(err, "shacrypt")
	digest, err := hasher.Hash(password)
	must(err, "hash")
	hashB := digest.Encode()

	// Phase 1: a server with key A; write a marker.
	must(d.CreateDisk(ctx, compute.DiskSpec{ID: "vol-1", Image: img, SizeGB: 1}), "CreateDisk(vol-1)")
	must(d.ApplyCredentials(ctx, "vol-1", compute.Credentials{AuthorizedKeys: keyA.authorized}), "ApplyCredentials(A)")
	info, err := d.CreateServer(ctx, compute.ServerSpec{ID: "srv", Name: "e2e", VCPUs: 1, RAMMB: 256, Image: img, DiskID: "vol-1"})
	must(err, "CreateServer")
	defer d.DeleteServer(context.Background(), "srv")
	if info.AccessPort == 0 {
		t.Fatal("CreateServer returned no AccessPort")
	}
	g := &guest{t: t, d: d, id: "srv", port: info.AccessPort, serial: d.SerialLog("srv")}
	must(d.StartServer(ctx, "srv"), "StartServer")
	proof := g.waitReady(ctx)
	if proof["authorized_keys-sha256"] != sha256hex(keyA.authorized) || proof["shadow-root"] != "*" {
		t.Fatalf("phase 1 guest proof %v, want key A's sha256 %s and shadow *", proof, sha256hex(keyA.authorized))
	}
	out, err := g.ssh(ctx, ssh.PublicKeys(keyA.signer), "echo before-reinstall > /root/marker && sync && cat /root/marker")
	must(err, "ssh with key A")
	if strings.TrimSpace(out) != "before-reinstall" {
		t.Fatalf("marker write: %q", out)
	}
	must(d.StopServer(ctx, "srv", false), "StopServer")

	// Phase 2: reinstall, host side.
	start := time.Now()
	must(d.CreateDisk(ctx, compute.DiskSpec{ID: "vol-2", Image: img, SizeGB: 1}), "CreateDisk(vol-2)")
	creds := compute.Credentials{PasswordHash: hashB, AuthorizedKeys: keyB.authorized}
	must(d.ApplyCredentials(ctx, "vol-2", creds), "ApplyCredentials(B)")
	must(d.DetachDisk(ctx, "srv", "vol-1"), "DetachDisk")
	must(d.AttachDisk(ctx, "srv", "vol-2"), "AttachDisk")
	must(d.DeleteDisk(ctx, "vol-1"), "DeleteDisk(vol-1)")
	t.Logf("host-side reinstall: %v", time.Since(start))
	got, err := d.ReadCredentials(ctx, "vol-2")
	must(err, "ReadCredentials")
	if got != creds {
		t.Fatalf("ReadCredentials = %+v, want %+v", got, creds)
	}

	// Phase 3: the guest's view.
	boot := time.Now()
	must(d.StartServer(ctx, "srv"), "StartServer after reinstall")
	proof = g.waitReady(ctx)
	t.Logf("boot to sshd after the reinstall: %v", time.Since(boot))
	if proof["shadow-root"] != hashB || proof["authorized_keys-sha256"] != sha256hex(keyB.authorized) {
		t.Fatalf("phase 3 guest proof %v, want hash %s and key B's sha256", proof, hashB)
	}
	out, err = g.ssh(ctx, ssh.PublicKeys(keyB.signer), "test -e /root/marker && echo present || echo absent; id -u")
	must(err, "ssh with key B")
	if f := strings.Fields(out); len(f) != 2 || f[0] != "absent" || f[1] != "0" {
		t.Fatalf("after reinstall: %q, want marker absent and uid 0", out)
	}
	if _, err := g.ssh(ctx, ssh.PublicKeys(keyA.signer), "true"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("ssh with the old key A: %v, want refused", err)
	}
	out, err = g.ssh(ctx, ssh.Password(password), "id -un")
	must(err, "ssh with the new password")
	if strings.TrimSpace(out) != "root" {
		t.Fatalf("password login runs as %q", out)
	}
	if _, err := g.ssh(ctx, ssh.Password("wrong-"+password), "true"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("ssh with a wrong password: %v, want refused", err)
	}
	must(d.StopServer(ctx, "srv", false), "StopServer at the end")
}

// TestReattach checks that a guest outlives its driver: a new driver on the
// same directory finds it running and can stop it; one that died while no
// driver watched reads as stopped.
func TestReattach(t *testing.T) {
	img := importedTestImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	d1, err := New(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := d1.CreateDisk(ctx, compute.DiskSpec{ID: "vol-" + id, Image: img}); err != nil {
			t.Fatal(err)
		}
		if _, err := d1.CreateServer(ctx, compute.ServerSpec{ID: id, Image: img, DiskID: "vol-" + id}); err != nil {
			t.Fatal(err)
		}
		if err := d1.StartServer(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	pidB, err := os.ReadFile(filepath.Join(d1.serverDir("b"), pidFile))
	if err != nil {
		t.Fatal(err)
	}
	d1.Close() // the daemon goes away; its guests stay

	d2, err := New(ctx, Config{Dir: dir, StopTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	defer d2.DeleteServer(context.Background(), "a")
	defer d2.DeleteServer(context.Background(), "b")
	for _, id := range []string{"a", "b"} {
		if ps, err := d2.PowerState(ctx, id); err != nil || ps != compute.PowerRunning {
			t.Fatalf("after restart, PowerState(%s) = %v, %v; want running", id, ps, err)
		}
	}
	// b dies behind the driver's back (a SIGTERM from elsewhere); QEMU's
	// last words reach qemu.log through the pipe the new driver reads.
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidB)))
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for ps := compute.PowerRunning; ps == compute.PowerRunning; {
		time.Sleep(100 * time.Millisecond)
		if ps, err = d2.PowerState(ctx, "b"); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(d2.serverDir("b"), qemuLog)); !strings.Contains(string(b), "terminating on signal 15") {
		t.Errorf("qemu.log of b after a SIGTERM while reattached: %q", b)
	}
	// a is stopped gracefully through the reattached QMP.
	if err := d2.StopServer(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	if ps, _ := d2.PowerState(ctx, "a"); ps != compute.PowerStopped {
		t.Fatalf("PowerState(a) after stop = %v", ps)
	}
	serial, _ := os.ReadFile(d2.SerialLog("a"))
	if !strings.Contains(string(serial), "GUEST-POWEROFF") {
		t.Errorf("guest a did not power off through ACPI; serial:\n%s", serial)
	}
	// A third driver sees both stopped.
	d3, err := New(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Close()
	for _, id := range []string{"a", "b"} {
		if ps, _ := d3.PowerState(ctx, id); ps != compute.PowerStopped {
			t.Errorf("third driver: PowerState(%s) = %v, want stopped", id, ps)
		}
	}
}

// benchImage is the image the benchmarks reinstall: $ECS_BENCH_IMAGE (a
// qcow2 or raw file with an ext4 root and /etc/shadow) imported into d, else
// the test image.
func benchImage(b *testing.B, d *Driver) ecs.Image {
	b.Helper()
	file := os.Getenv("ECS_BENCH_IMAGE")
	if file == "" {
		return importedTestImage(b)
	}
	img, err := d.ImportImage(context.Background(), ImportSpec{ID: "bench", File: file})
	if err != nil {
		b.Fatal(err)
	}
	if img.Unsupported != "" {
		b.Fatalf("%s: %s", file, img.Unsupported)
	}
	return img
}

// percentiles reports p50 and p95 of times.
func percentiles(b *testing.B, times []time.Duration) {
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	pct := func(p float64) time.Duration { return times[min(len(times)-1, int(p*float64(len(times))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.95).Microseconds())/1000, "p95-ms")
}

// BenchmarkReinstallHostSide measures the host side of a reinstall of a
// stopped server: new overlay, credentials written and verified, disks
// swapped, old disk deleted. It reports p50 and p95.
//
//	go test -tags vmtest -run '^$' -bench ReinstallHostSide -benchtime 20x ./internal/compute/qemu/
func BenchmarkReinstallHostSide(b *testing.B) {
	ctx := context.Background()
	d, err := New(ctx, Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	img := benchImage(b, d)
	if err := d.CreateDisk(ctx, compute.DiskSpec{ID: "v0", Image: img}); err != nil {
		b.Fatal(err)
	}
	if _, err := d.CreateServer(ctx, compute.ServerSpec{ID: "s", Image: img, DiskID: "v0"}); err != nil {
		b.Fatal(err)
	}
	creds := compute.Credentials{PasswordHash: hashA, AuthorizedKeys: keyA}
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		old, next := "v"+strconv.Itoa(i), "v"+strconv.Itoa(i+1)
		start := time.Now()
		if err := d.CreateDisk(ctx, compute.DiskSpec{ID: next, Image: img}); err != nil {
			b.Fatal(err)
		}
		if err := d.ApplyCredentials(ctx, next, creds); err != nil {
			b.Fatal(err)
		}
		if err := d.DetachDisk(ctx, "s", old); err != nil {
			b.Fatal(err)
		}
		if err := d.AttachDisk(ctx, "s", next); err != nil {
			b.Fatal(err)
		}
		if err := d.DeleteDisk(ctx, old); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	percentiles(b, times)
}

// BenchmarkReinstallBaselineFullCopy measures the pipeline OpenStack Nova
// uses for an image without cloud-init, with debugfs in place of libguestfs
// (whose appliance takes 16-32 s per run under TCG): copy the raw image
// (cp, sparse-aware as Nova's), sync it, then the same injection and
// verification as the driver's, on the copy.
//
//	go test -tags vmtest -run '^$' -bench BaselineFullCopy -benchtime 20x ./internal/compute/qemu/
func BenchmarkReinstallBaselineFullCopy(b *testing.B) {
	ctx := context.Background()
	d, err := New(ctx, Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	img := benchImage(b, d)
	work := b.TempDir()
	base := filepath.Join(work, "base.raw")
	if _, err := run(ctx, d.bins.qemuImg, "convert", "-O", "raw", "-f", img.DiskFormat, img.File, base); err != nil {
		b.Fatal(err)
	}
	creds := compute.Credentials{PasswordHash: hashA, AuthorizedKeys: keyA}
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		disk := filepath.Join(work, "disk"+strconv.Itoa(i)+".raw")
		start := time.Now()
		if out, err := exec.Command("cp", base, disk).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		if out, err := exec.Command("sync", disk).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v %s", err, out)
		}
		st, err := os.Stat(disk)
		if err != nil {
			b.Fatal(err)
		}
		scratch := b.TempDir()
		r, err := d.findRoot(ctx, disk, st.Size(), scratch)
		if err != nil || r.fs == nil {
			b.Fatalf("root: %v %s", err, r.unsupported)
		}
		if err := d.inject(ctx, r.fs, scratch, creds, time.Now()); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		os.Remove(disk)
		b.StartTimer()
	}
	b.StopTimer()
	percentiles(b, times)
}
