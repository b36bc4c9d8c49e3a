// Package computetest is the one conformance suite of compute drivers:
// every compute.Driver (sim, qemu) passes Run.
//
// Run checks the contract written in package compute, plus the rules every
// driver enforces alike:
//   - A fresh disk holds no credentials: ReadCredentials returns empty
//     fields (a driver reading a real shadow file reports a locked entry,
//     "*" or "!", as "").
//   - ApplyCredentials sets the non-empty fields of its argument and leaves
//     the others as they were; ReadCredentials returns exactly what was set.
//   - Creating a disk that exists replaces it with a fresh one.
//   - Every method may be called twice: deleting what is missing, starting
//     a running server, stopping a stopped one, attaching the attached disk
//     and detaching a disk that is not attached all succeed.
//   - A call about a disk or server the driver does not know is refused
//     with ecs.ErrNotFound (deletes excepted); PowerState reports
//     compute.PowerMissing for it, without error.
//   - A running server's disk cannot be attached, detached or given
//     credentials, and a stopped server cannot be rebooted nor started
//     without a system disk: ecs.ErrBadState. A server has at most one
//     system disk, a disk belongs to at most one server, and an attached
//     disk cannot be deleted: ecs.ErrConflict. An id that fails
//     ecs.ValidID, or a password hash that is not a $6$ crypt hash:
//     ecs.ErrInvalid. Each refusal has exactly that kind (no other kind's
//     sentinel matches it) and changes nothing.
//   - DeleteServer stops a running server and keeps its disk.
//   - A call with a cancelled ctx returns ctx.Err() and does nothing.
//   - A blank disk (DiskSpec without an image) can be a data disk:
//     AttachDataDisk and DetachDataDisk work on a running server
//     (hot-plug) and a stopped one, twice in a row too; a data disk stays
//     through a stop and start, cannot be deleted while attached nor
//     attached to a second server (ecs.ErrConflict), and DeleteServer
//     leaves it detached.
//   - A server's cloud-init seed (ServerSpec.Seed, SetSeed) reads back as
//     given, user data byte for byte, until replaced or removed; it changes
//     only while the server is stopped. SetServerImage changes only a
//     stopped server, which then boots. A bad seed is ecs.ErrInvalid.
//   - SetPassword and PingAgent need a running server whose guest agent
//     answers (Fixture.Agent): then the password set online is on the disk
//     once the server stops. Without an agent, or on a stopped server, they
//     fail with compute.ErrNoAgent, of kind ecs.ErrBadState.
//   - The reinstall sequence (stop, create disk, apply credentials, detach
//     the old disk, attach the new, delete the old, start) leaves the server
//     running on the new disk with the new credentials, also when every step
//     runs twice and when servers are reinstalled concurrently.
package computetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// Fixture says what a driver under test needs.
type Fixture struct {
	// Driver is a driver with a fresh state. Run closes it when its test
	// ends, after deleting the servers the test created.
	Driver compute.Driver
	// Image is an image CreateDisk accepts (sim: any ID; qemu: a real
	// imported image). Disks are created with Image.MinDiskGB GB, at least 1.
	Image ecs.Image
	// Boots says whether StartServer really boots a guest (qemu); tests
	// then allow longer timeouts.
	Boots bool
	// Serial makes the tests run one at a time, and the concurrency test
	// reinstall one server at a time, for drivers that cannot afford more.
	Serial bool
	// Agent says that the guests of servers made from Image run a guest
	// agent (once booted); without it, SetPassword and PingAgent must fail
	// with compute.ErrNoAgent.
	Agent bool
}

// Run runs every conformance test against drivers made by newFixture, which
// is called once per subtest (give each driver a fresh state directory from
// t.TempDir()). Unless the fixture is Serial, the subtests run in parallel.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(setup(t, newFixture))
		})
	}
	RunGuest(t, newFixture)
}

// RunGuest runs only the tests of the guest's side (seed, image change,
// guest agent), which Run runs too: for a second image (one whose guest
// runs cloud-init and an agent) without the whole suite.
func RunGuest(t *testing.T, newFixture func(t *testing.T) Fixture) {
	for _, tc := range guestTests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(setup(t, newFixture))
		})
	}
}

var guestTests = []struct {
	name string
	run  func(s *suite)
}{
	{"SeedReadsBack", testSeed},
	{"SeedRefusals", testSeedRefusals},
	{"SetServerImage", testSetServerImage},
	{"Agent", testAgent},
}

var tests = []struct {
	name string
	run  func(s *suite)
}{
	{"Name", testName},
	{"FreshDiskHasNoCredentials", testFreshDisk},
	{"ApplyCredentialsReadsBack", testApplyReadsBack},
	{"ApplyCredentialsLeavesEmptyFieldsUntouched", testApplyPartial},
	{"ApplyCredentialsTwice", testApplyTwice},
	{"CreateDiskAgainReplacesIt", testCreateDiskAgain},
	{"DeleteDisk", testDeleteDisk},
	{"DeleteMissingSucceeds", testDeleteMissing},
	{"UnknownDiskOrServer", testUnknown},
	{"ServerPowerCycle", testPowerCycle},
	{"CreateServerTwice", testCreateServerTwice},
	{"CreateServerWithMissingDisk", testCreateServerMissingDisk},
	{"CreateServerWithDiskInUse", testCreateServerDiskInUse},
	{"CreateServerAgainWithOtherDisk", testCreateServerOtherDisk},
	{"InvalidArguments", testInvalid},
	{"RebootStoppedServerFails", testRebootStopped},
	{"RunningServerRefusesDiskChanges", testRunningRefuses},
	{"DeleteAttachedDiskFails", testDeleteAttached},
	{"StartWithoutDiskFails", testStartWithoutDisk},
	{"DetachAndAttachNewDisk", testDetachAttach},
	{"AttachSecondDiskFails", testAttachSecondDisk},
	{"AttachDiskOfOtherServerFails", testAttachOtherServersDisk},
	{"DeleteServerStopsItAndKeepsDisk", testDeleteServer},
	{"CancelledContext", testCancelled},
	{"Reinstall", testReinstall},
	{"ReinstallEveryStepTwice", testReinstallTwice},
	{"ConcurrentReinstalls", testConcurrentReinstalls},
	{"DataDisks", testDataDisks},
}

// Credentials used by the tests: real SHA-512 crypt hashes (of
// "Old-passw0rd!" and "New-passw0rd!") and real ed25519 public keys.
var (
	oldCreds = compute.Credentials{
		PasswordHash:   "$6$Xk3v9Qb1LmN0pZrT$qMcjduoFWNaft6gyB4yfdyYz.jN6G1/BysoaVMiMcCYx8A67zwRMIOD51Ysa/YcsFmRfzlSJBFI6F1L8Xjlxn/",
		AuthorizedKeys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEoLEUykN7/KNMoGU4h0IK/93KugUVlY9Js4mGZR2UC0 old@computetest\n",
	}
	newCreds = compute.Credentials{
		PasswordHash: "$6$7hQeRt2yUiOpAsDf$W5xHK6zlzIgI35Ienr6hdzHphtzFCswBnGTkreFvKHUWtItT3F9/owlTSkp3J0cdLm46qjvu1ppQzgvBE8cuK1",
		AuthorizedKeys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILjAsnxPXVay/ILCbJJ23Q9V3DYvioVw2oCCLWGBW+ez new@computetest\n" +
			"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEoLEUykN7/KNMoGU4h0IK/93KugUVlY9Js4mGZR2UC0 old@computetest\n",
	}
)

// suite is what a test works with.
type suite struct {
	t    *testing.T
	f    Fixture
	d    compute.Driver
	ctx  context.Context
	size int

	mu      sync.Mutex
	servers []string // created, to delete at cleanup
}

func setup(t *testing.T, newFixture func(t *testing.T) Fixture) *suite {
	t.Helper()
	f := newFixture(t)
	if f.Driver == nil {
		t.Fatal("fixture has no Driver")
	}
	if !f.Serial {
		t.Parallel()
	}
	timeout := time.Minute
	if f.Boots {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	s := &suite{t: t, f: f, d: f.Driver, ctx: ctx, size: max(f.Image.MinDiskGB, 1)}
	t.Cleanup(func() {
		cancel()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, id := range s.servers {
			if err := s.d.DeleteServer(ctx, id); err != nil {
				t.Errorf("cleanup: DeleteServer(%s): %v", id, err)
			}
		}
		if err := s.d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// Helpers. Each fails the test with what was being done.

func (s *suite) ok(err error, format string, args ...any) {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

// refused checks that err is a refusal of exactly kind: errors.Is matches
// kind and no other kind.
func (s *suite) refused(err error, kind ecs.Kind, format string, args ...any) {
	s.t.Helper()
	what := fmt.Sprintf(format, args...)
	if err == nil {
		s.t.Fatalf("%s: succeeded, want an error of kind %s", what, kind)
	}
	if !errors.Is(err, kind) {
		s.t.Fatalf("%s: got error %v, want one of kind %s", what, err, kind)
	}
	for _, k := range ecs.Kinds() {
		if k != kind && errors.Is(err, k) {
			s.t.Fatalf("%s: got error %v of kinds %s and %s, want only %s", what, err, kind, k, kind)
		}
	}
}

func (s *suite) notFound(err error, format string, args ...any) {
	s.t.Helper()
	s.refused(err, ecs.ErrNotFound, format, args...)
}

func (s *suite) badState(err error, format string, args ...any) {
	s.t.Helper()
	s.refused(err, ecs.ErrBadState, format, args...)
}

func (s *suite) conflict(err error, format string, args ...any) {
	s.t.Helper()
	s.refused(err, ecs.ErrConflict, format, args...)
}

func (s *suite) createDisk(id string) {
	s.t.Helper()
	s.ok(s.d.CreateDisk(s.ctx, compute.DiskSpec{ID: id, Image: s.f.Image, SizeGB: s.size}), "CreateDisk(%s)", id)
}

func (s *suite) serverSpec(id, diskID string) compute.ServerSpec {
	return compute.ServerSpec{ID: id, Name: "ct-" + id, VCPUs: 1, RAMMB: 256, Image: s.f.Image, DiskID: diskID}
}

func (s *suite) track(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servers = append(s.servers, id)
}

// createServer creates a stopped server on a new disk holding creds.
func (s *suite) createServer(id, diskID string, creds compute.Credentials) {
	s.t.Helper()
	s.createDisk(diskID)
	s.ok(s.d.ApplyCredentials(s.ctx, diskID, creds), "ApplyCredentials(%s)", diskID)
	s.track(id)
	_, err := s.d.CreateServer(s.ctx, s.serverSpec(id, diskID))
	s.ok(err, "CreateServer(%s, disk %s)", id, diskID)
	s.power(id, compute.PowerStopped)
}

// runningServer creates a server on a new disk holding creds and starts it.
func (s *suite) runningServer(id, diskID string, creds compute.Credentials) {
	s.t.Helper()
	s.createServer(id, diskID, creds)
	s.ok(s.d.StartServer(s.ctx, id), "StartServer(%s)", id)
	s.power(id, compute.PowerRunning)
}

func (s *suite) power(id string, want compute.PowerState) {
	s.t.Helper()
	got, err := s.d.PowerState(s.ctx, id)
	s.ok(err, "PowerState(%s)", id)
	if got != want {
		s.t.Fatalf("PowerState(%s) = %v, want %v", id, got, want)
	}
}

func (s *suite) creds(diskID string, want compute.Credentials) {
	s.t.Helper()
	got, err := s.d.ReadCredentials(s.ctx, diskID)
	s.ok(err, "ReadCredentials(%s)", diskID)
	if got != want {
		s.t.Fatalf("ReadCredentials(%s) = %+v, want %+v", diskID, got, want)
	}
}

// attached checks that diskID is attached to something: it cannot be
// deleted.
func (s *suite) attached(diskID string) {
	s.t.Helper()
	s.conflict(s.d.DeleteDisk(s.ctx, diskID), "DeleteDisk(%s) of an attached disk", diskID)
}

func (s *suite) gone(diskID string) {
	s.t.Helper()
	_, err := s.d.ReadCredentials(s.ctx, diskID)
	s.notFound(err, "ReadCredentials(%s) of a deleted disk", diskID)
}

// The tests.

func testName(s *suite) {
	if s.d.Name() == "" {
		s.t.Fatal("Name() is empty")
	}
}

func testFreshDisk(s *suite) {
	s.createDisk("d1")
	s.creds("d1", compute.Credentials{})
}

func testApplyReadsBack(s *suite) {
	s.createDisk("d1")
	s.ok(s.d.ApplyCredentials(s.ctx, "d1", newCreds), "ApplyCredentials")
	s.creds("d1", newCreds)
	// Replacing both fields replaces them, whole.
	s.ok(s.d.ApplyCredentials(s.ctx, "d1", oldCreds), "ApplyCredentials")
	s.creds("d1", oldCreds)
}

func testApplyPartial(s *suite) {
	s.createDisk("d1")
	s.ok(s.d.ApplyCredentials(s.ctx, "d1", oldCreds), "ApplyCredentials(both)")
	s.ok(s.d.ApplyCredentials(s.ctx, "d1", compute.Credentials{AuthorizedKeys: newCreds.AuthorizedKeys}), "ApplyCredentials(key only)")
	s.creds("d1", compute.Credentials{PasswordHash: oldCreds.PasswordHash, AuthorizedKeys: newCreds.AuthorizedKeys})
	s.ok(s.d.ApplyCredentials(s.ctx, "d1", compute.Credentials{PasswordHash: newCreds.PasswordHash}), "ApplyCredentials(hash only)")
	s.creds("d1", newCreds)
	s.ok(s.d.ApplyCredentials(s.ctx, "d1", compute.Credentials{}), "ApplyCredentials(nothing)")
	s.creds("d1", newCreds)

	// On a fresh disk, a key alone leaves the password empty.
	s.createDisk("d2")
	s.ok(s.d.ApplyCredentials(s.ctx, "d2", compute.Credentials{AuthorizedKeys: oldCreds.AuthorizedKeys}), "ApplyCredentials(key only)")
	s.creds("d2", compute.Credentials{AuthorizedKeys: oldCreds.AuthorizedKeys})
}

func testApplyTwice(s *suite) {
	s.createDisk("d1")
	for range 2 {
		s.ok(s.d.ApplyCredentials(s.ctx, "d1", newCreds), "ApplyCredentials")
	}
	s.creds("d1", newCreds)
}

func testCreateDiskAgain(s *suite) {
	s.createDisk("d1")
	s.ok(s.d.ApplyCredentials(s.ctx, "d1", oldCreds), "ApplyCredentials")
	s.createDisk("d1")
	s.creds("d1", compute.Credentials{})
}

func testDeleteDisk(s *suite) {
	s.createDisk("d1")
	s.createDisk("d2")
	for range 2 {
		s.ok(s.d.DeleteDisk(s.ctx, "d1"), "DeleteDisk")
	}
	s.gone("d1")
	s.notFound(s.d.ApplyCredentials(s.ctx, "d1", newCreds), "ApplyCredentials of a deleted disk")
	s.creds("d2", compute.Credentials{}) // the other disk is untouched
	// The id can be used again.
	s.createDisk("d1")
	s.creds("d1", compute.Credentials{})
}

func testDeleteMissing(s *suite) {
	s.ok(s.d.DeleteDisk(s.ctx, "never-created"), "DeleteDisk of a missing disk")
	s.ok(s.d.DeleteServer(s.ctx, "never-created"), "DeleteServer of a missing server")
}

func testUnknown(s *suite) {
	s.createServer("s1", "d1", oldCreds) // known things, for the calls naming two
	s.createDisk("d2")
	calls := []struct {
		name string
		call func() error
	}{
		{"ReadCredentials(unknown disk)", func() error { _, err := s.d.ReadCredentials(s.ctx, "nope"); return err }},
		{"ApplyCredentials(unknown disk)", func() error { return s.d.ApplyCredentials(s.ctx, "nope", newCreds) }},
		{"CreateServer(unknown disk)", func() error { _, err := s.d.CreateServer(s.ctx, s.serverSpec("s2", "nope")); return err }},
		{"AttachDisk(unknown server)", func() error { return s.d.AttachDisk(s.ctx, "nope", "d2") }},
		{"DetachDisk(unknown server)", func() error { return s.d.DetachDisk(s.ctx, "nope", "d2") }},
		{"StartServer(unknown)", func() error { return s.d.StartServer(s.ctx, "nope") }},
		{"StopServer(unknown)", func() error { return s.d.StopServer(s.ctx, "nope", false) }},
		{"StopServer(unknown, hard)", func() error { return s.d.StopServer(s.ctx, "nope", true) }},
		{"RebootServer(unknown)", func() error { return s.d.RebootServer(s.ctx, "nope", false) }},
	}
	for _, c := range calls {
		s.notFound(c.call(), "%s", c.name)
	}
	s.power("nope", compute.PowerMissing)
	s.power("s2", compute.PowerMissing) // the failed CreateServer made nothing

	s.ok(s.d.DetachDisk(s.ctx, "s1", "d1"), "DetachDisk")
	s.notFound(s.d.AttachDisk(s.ctx, "s1", "nope"), "AttachDisk(unknown disk)")
	s.badState(s.d.StartServer(s.ctx, "s1"), "StartServer without a disk after a failed attach")
}

func testPowerCycle(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	steps := []struct {
		name string
		call func() error
		want compute.PowerState
	}{
		{"start", func() error { return s.d.StartServer(s.ctx, "s1") }, compute.PowerRunning},
		{"start again", func() error { return s.d.StartServer(s.ctx, "s1") }, compute.PowerRunning},
		{"reboot", func() error { return s.d.RebootServer(s.ctx, "s1", false) }, compute.PowerRunning},
		{"hard reboot", func() error { return s.d.RebootServer(s.ctx, "s1", true) }, compute.PowerRunning},
		{"stop", func() error { return s.d.StopServer(s.ctx, "s1", false) }, compute.PowerStopped},
		{"stop again", func() error { return s.d.StopServer(s.ctx, "s1", false) }, compute.PowerStopped},
		{"hard stop of a stopped server", func() error { return s.d.StopServer(s.ctx, "s1", true) }, compute.PowerStopped},
		{"start after stop", func() error { return s.d.StartServer(s.ctx, "s1") }, compute.PowerRunning},
		{"hard stop", func() error { return s.d.StopServer(s.ctx, "s1", true) }, compute.PowerStopped},
	}
	for _, st := range steps {
		s.ok(st.call(), "%s", st.name)
		s.power("s1", st.want)
	}
	// Power changes leave the disk alone.
	s.creds("d1", oldCreds)
}

func testCreateServerTwice(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	_, err := s.d.CreateServer(s.ctx, s.serverSpec("s1", "d1"))
	s.ok(err, "CreateServer again")
	s.power("s1", compute.PowerStopped)
	s.attached("d1")
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer")
	_, err = s.d.CreateServer(s.ctx, s.serverSpec("s1", "d1"))
	s.ok(err, "CreateServer of a running server")
	s.power("s1", compute.PowerRunning)
}

func testCreateServerMissingDisk(s *suite) {
	_, err := s.d.CreateServer(s.ctx, s.serverSpec("s1", "nope"))
	s.notFound(err, "CreateServer with a missing disk")
	s.power("s1", compute.PowerMissing)
}

func testCreateServerDiskInUse(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	s.track("s2")
	_, err := s.d.CreateServer(s.ctx, s.serverSpec("s2", "d1"))
	s.conflict(err, "CreateServer with a disk attached to another server")
	s.power("s2", compute.PowerMissing)
	// s1 still owns its disk.
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer")
	s.power("s1", compute.PowerRunning)
}

func testCreateServerOtherDisk(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	s.createDisk("d2")
	_, err := s.d.CreateServer(s.ctx, s.serverSpec("s1", "d2"))
	s.conflict(err, "CreateServer of an existing server with another disk")
	s.attached("d1")
	s.ok(s.d.DeleteDisk(s.ctx, "d2"), "DeleteDisk(d2), never attached")
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer")
	s.power("s1", compute.PowerRunning)
}

// testInvalid: ids that fail ecs.ValidID, and a password hash that is not a
// $6$ crypt hash, are refused with ecs.ErrInvalid and change nothing.
func testInvalid(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	for _, id := range []string{"", ".", "..", "../d1", "a/b", "-x", ".hidden", "a b", "a,b", "d1\x00", "é", strings.Repeat("x", ecs.MaxIDLen+1)} {
		calls := []struct {
			name string
			call func() error
		}{
			{"CreateDisk", func() error { return s.d.CreateDisk(s.ctx, compute.DiskSpec{ID: id, Image: s.f.Image, SizeGB: s.size}) }},
			{"DeleteDisk", func() error { return s.d.DeleteDisk(s.ctx, id) }},
			{"ApplyCredentials", func() error { return s.d.ApplyCredentials(s.ctx, id, newCreds) }},
			{"ReadCredentials", func() error { _, err := s.d.ReadCredentials(s.ctx, id); return err }},
			{"CreateServer(id)", func() error { _, err := s.d.CreateServer(s.ctx, s.serverSpec(id, "d1")); return err }},
			{"CreateServer(disk)", func() error { _, err := s.d.CreateServer(s.ctx, s.serverSpec("s2", id)); return err }},
			{"DeleteServer", func() error { return s.d.DeleteServer(s.ctx, id) }},
			{"AttachDisk(server)", func() error { return s.d.AttachDisk(s.ctx, id, "d1") }},
			{"AttachDisk(disk)", func() error { return s.d.AttachDisk(s.ctx, "s1", id) }},
			{"DetachDisk(server)", func() error { return s.d.DetachDisk(s.ctx, id, "d1") }},
			{"DetachDisk(disk)", func() error { return s.d.DetachDisk(s.ctx, "s1", id) }},
			{"StartServer", func() error { return s.d.StartServer(s.ctx, id) }},
			{"StopServer", func() error { return s.d.StopServer(s.ctx, id, true) }},
			{"RebootServer", func() error { return s.d.RebootServer(s.ctx, id, true) }},
			{"PowerState", func() error { _, err := s.d.PowerState(s.ctx, id); return err }},
		}
		for _, c := range calls {
			s.refused(c.call(), ecs.ErrInvalid, "%s(%q)", c.name, id)
		}
	}
	for _, hash := range []string{"Plain-passw0rd", "$1$md5$hash", "$6$salt$ha:sh", "$6$salt$hash\nroot::0:", "$6$salt$a b", "$6$"} {
		s.refused(s.d.ApplyCredentials(s.ctx, "d1", compute.Credentials{PasswordHash: hash}), ecs.ErrInvalid,
			"ApplyCredentials(hash %q)", hash)
	}
	// Nothing changed.
	s.power("s1", compute.PowerStopped)
	s.power("s2", compute.PowerMissing)
	s.creds("d1", oldCreds)
	s.attached("d1")
}

func testRebootStopped(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	s.badState(s.d.RebootServer(s.ctx, "s1", false), "RebootServer of a stopped server")
	s.badState(s.d.RebootServer(s.ctx, "s1", true), "hard RebootServer of a stopped server")
	s.power("s1", compute.PowerStopped)
}

func testRunningRefuses(s *suite) {
	s.runningServer("s1", "d1", oldCreds)
	s.createDisk("d2")
	s.badState(s.d.ApplyCredentials(s.ctx, "d1", newCreds), "ApplyCredentials on the disk of a running server")
	s.badState(s.d.CreateDisk(s.ctx, compute.DiskSpec{ID: "d1", Image: s.f.Image, SizeGB: s.size}),
		"CreateDisk replacing the disk of a running server")
	s.badState(s.d.DetachDisk(s.ctx, "s1", "d1"), "DetachDisk from a running server")
	s.badState(s.d.AttachDisk(s.ctx, "s1", "d2"), "AttachDisk to a running server")
	s.conflict(s.d.DeleteDisk(s.ctx, "d1"), "DeleteDisk of a running server's disk")
	s.power("s1", compute.PowerRunning)

	// Nothing changed: the server still boots from d1 with the old
	// credentials, and d2 is free.
	s.ok(s.d.StopServer(s.ctx, "s1", false), "StopServer")
	s.creds("d1", oldCreds)
	s.attached("d1")
	s.ok(s.d.DeleteDisk(s.ctx, "d2"), "DeleteDisk(d2), never attached")
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer")
	s.power("s1", compute.PowerRunning)
}

func testDeleteAttached(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	s.conflict(s.d.DeleteDisk(s.ctx, "d1"), "DeleteDisk of a stopped server's disk")
	s.creds("d1", oldCreds)
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer")
	s.power("s1", compute.PowerRunning)
}

func testStartWithoutDisk(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	s.ok(s.d.DetachDisk(s.ctx, "s1", "d1"), "DetachDisk")
	s.badState(s.d.StartServer(s.ctx, "s1"), "StartServer without a system disk")
	s.power("s1", compute.PowerStopped)
}

func testDetachAttach(s *suite) {
	s.runningServer("s1", "d1", oldCreds)
	s.ok(s.d.StopServer(s.ctx, "s1", false), "StopServer")
	s.createDisk("d2")
	s.createDisk("d3")
	s.ok(s.d.ApplyCredentials(s.ctx, "d2", newCreds), "ApplyCredentials(d2)")

	s.ok(s.d.DetachDisk(s.ctx, "s1", "d3"), "DetachDisk of a disk the server does not have")
	s.attached("d1") // and d1 was not detached by it
	for range 2 {
		s.ok(s.d.DetachDisk(s.ctx, "s1", "d1"), "DetachDisk(d1)")
	}
	for range 2 {
		s.ok(s.d.AttachDisk(s.ctx, "s1", "d2"), "AttachDisk(d2)")
	}
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer on d2")
	s.power("s1", compute.PowerRunning)
	s.attached("d2")
	s.ok(s.d.DeleteDisk(s.ctx, "d1"), "DeleteDisk(d1), detached")
	s.gone("d1")
	s.ok(s.d.StopServer(s.ctx, "s1", false), "StopServer")
	s.creds("d2", newCreds)
}

func testAttachSecondDisk(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	s.createDisk("d2")
	s.conflict(s.d.AttachDisk(s.ctx, "s1", "d2"), "AttachDisk of a second system disk")
	s.attached("d1")
	s.ok(s.d.DeleteDisk(s.ctx, "d2"), "DeleteDisk(d2), never attached")
}

func testAttachOtherServersDisk(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	s.createServer("s2", "d2", newCreds)
	s.ok(s.d.DetachDisk(s.ctx, "s2", "d2"), "DetachDisk(s2, d2)")
	s.conflict(s.d.AttachDisk(s.ctx, "s2", "d1"), "AttachDisk of a disk attached to another server")
	s.badState(s.d.StartServer(s.ctx, "s2"), "StartServer(s2) with no disk")
	s.ok(s.d.DetachDisk(s.ctx, "s2", "d1"), "DetachDisk(s2, d1) of another server's disk")
	s.attached("d1") // still s1's
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer(s1)")
	s.power("s1", compute.PowerRunning)
}

func testDeleteServer(s *suite) {
	s.runningServer("s1", "d1", oldCreds)
	for range 2 {
		s.ok(s.d.DeleteServer(s.ctx, "s1"), "DeleteServer")
	}
	s.power("s1", compute.PowerMissing)
	s.notFound(s.d.StartServer(s.ctx, "s1"), "StartServer of a deleted server")
	s.creds("d1", oldCreds)
	// The disk is free: it can hold a new server, then be deleted.
	s.createServer("s2", "d2", newCreds)
	s.ok(s.d.DeleteServer(s.ctx, "s2"), "DeleteServer of a stopped server")
	s.power("s2", compute.PowerMissing)
	s.track("s3")
	_, err := s.d.CreateServer(s.ctx, s.serverSpec("s3", "d1"))
	s.ok(err, "CreateServer on the disk of a deleted server")
	s.ok(s.d.DeleteServer(s.ctx, "s3"), "DeleteServer(s3)")
	s.ok(s.d.DeleteDisk(s.ctx, "d1"), "DeleteDisk(d1)")
	s.ok(s.d.DeleteDisk(s.ctx, "d2"), "DeleteDisk(d2)")
	s.gone("d1")
}

func testCancelled(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	s.createDisk("d2")
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateDisk", func() error {
			return s.d.CreateDisk(ctx, compute.DiskSpec{ID: "d3", Image: s.f.Image, SizeGB: s.size})
		}},
		{"DeleteDisk", func() error { return s.d.DeleteDisk(ctx, "d2") }},
		{"ApplyCredentials", func() error { return s.d.ApplyCredentials(ctx, "d1", newCreds) }},
		{"ReadCredentials", func() error { _, err := s.d.ReadCredentials(ctx, "d1"); return err }},
		{"CreateServer", func() error { _, err := s.d.CreateServer(ctx, s.serverSpec("s2", "d2")); return err }},
		{"DeleteServer", func() error { return s.d.DeleteServer(ctx, "s1") }},
		{"AttachDisk", func() error { return s.d.AttachDisk(ctx, "s1", "d2") }},
		{"DetachDisk", func() error { return s.d.DetachDisk(ctx, "s1", "d1") }},
		{"StartServer", func() error { return s.d.StartServer(ctx, "s1") }},
		{"StopServer", func() error { return s.d.StopServer(ctx, "s1", true) }},
		{"RebootServer", func() error { return s.d.RebootServer(ctx, "s1", true) }},
		{"PowerState", func() error { _, err := s.d.PowerState(ctx, "s1"); return err }},
	}
	s.track("s2")
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			s.t.Errorf("%s with a cancelled ctx: got %v, want context.Canceled", c.name, err)
		}
	}
	// None of them did anything.
	s.gone("d3")
	s.creds("d2", compute.Credentials{})
	s.creds("d1", oldCreds)
	s.power("s2", compute.PowerMissing)
	s.power("s1", compute.PowerStopped)
	s.attached("d1")
	s.ok(s.d.DeleteDisk(s.ctx, "d2"), "DeleteDisk(d2): never attached")
}

// reinstall runs the reinstall sequence of server id from oldDisk to
// newDisk, each step times times.
func (s *suite) reinstall(ctx context.Context, id, oldDisk, newDisk string, times int) error {
	steps := []struct {
		name string
		call func() error
	}{
		{"StopServer", func() error { return s.d.StopServer(ctx, id, false) }},
		{"CreateDisk", func() error {
			return s.d.CreateDisk(ctx, compute.DiskSpec{ID: newDisk, Image: s.f.Image, SizeGB: s.size})
		}},
		{"ApplyCredentials", func() error { return s.d.ApplyCredentials(ctx, newDisk, newCreds) }},
		{"DetachDisk", func() error { return s.d.DetachDisk(ctx, id, oldDisk) }},
		{"AttachDisk", func() error { return s.d.AttachDisk(ctx, id, newDisk) }},
		{"DeleteDisk", func() error { return s.d.DeleteDisk(ctx, oldDisk) }},
		{"StartServer", func() error { return s.d.StartServer(ctx, id) }},
	}
	for _, st := range steps {
		for i := range times {
			if err := st.call(); err != nil {
				return fmt.Errorf("reinstall %s: %s (call %d): %w", id, st.name, i+1, err)
			}
		}
	}
	return nil
}

// reinstalled checks the outcome of a reinstall.
func (s *suite) reinstalled(id, oldDisk, newDisk string) {
	s.t.Helper()
	s.power(id, compute.PowerRunning)
	s.gone(oldDisk)
	s.attached(newDisk)
	s.ok(s.d.StopServer(s.ctx, id, false), "StopServer(%s)", id)
	s.creds(newDisk, newCreds)
	s.attached(newDisk)
}

func testReinstall(s *suite) {
	s.runningServer("s1", "d1", oldCreds)
	s.ok(s.reinstall(s.ctx, "s1", "d1", "d2", 1), "reinstall")
	s.reinstalled("s1", "d1", "d2")
}

func testReinstallTwice(s *suite) {
	s.runningServer("s1", "d1", oldCreds)
	s.ok(s.reinstall(s.ctx, "s1", "d1", "d2", 2), "reinstall")
	s.reinstalled("s1", "d1", "d2")
}

func testConcurrentReinstalls(s *suite) {
	const n = 4
	for i := range n {
		s.runningServer(fmt.Sprintf("s%d", i), fmt.Sprintf("d%d-old", i), oldCreds)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		run := func() {
			errs[i] = s.reinstall(s.ctx, fmt.Sprintf("s%d", i), fmt.Sprintf("d%d-old", i), fmt.Sprintf("d%d-new", i), 1)
		}
		if s.f.Serial {
			run()
			continue
		}
		wg.Go(run)
	}
	wg.Wait()
	s.ok(errors.Join(errs...), "concurrent reinstalls")
	for i := range n {
		s.reinstalled(fmt.Sprintf("s%d", i), fmt.Sprintf("d%d-old", i), fmt.Sprintf("d%d-new", i))
	}
}

// Seeds used by the tests: user data with bytes that are not UTF-8 and no
// final newline, which a driver must pass through untouched.
var (
	seed1 = compute.Seed{
		InstanceID:     "i-computetest-1",
		Hostname:       "ct-host",
		PasswordHash:   oldCreds.PasswordHash,
		AuthorizedKeys: oldCreds.AuthorizedKeys,
		UserData:       []byte("#!/bin/sh\necho 'user data' >/root/marker\n\xff\xfe\x00end"),
	}
	seed2 = compute.Seed{
		InstanceID:     "i-computetest-2",
		AuthorizedKeys: newCreds.AuthorizedKeys,
	}
)

func (s *suite) seed(id string, want *compute.Seed) {
	s.t.Helper()
	got, err := s.d.ReadSeed(s.ctx, id)
	s.ok(err, "ReadSeed(%s)", id)
	switch {
	case want == nil && got == nil:
		return
	case want == nil || got == nil:
		s.t.Fatalf("ReadSeed(%s) = %+v, want %+v", id, got, want)
	}
	if got.InstanceID != want.InstanceID || got.Hostname != want.Hostname || got.PasswordHash != want.PasswordHash ||
		got.AuthorizedKeys != want.AuthorizedKeys || !bytes.Equal(got.UserData, want.UserData) {
		s.t.Fatalf("ReadSeed(%s) = %+v (user data %q), want %+v (user data %q)", id, *got, got.UserData, *want, want.UserData)
	}
}

func testSeed(s *suite) {
	// Without a seed.
	s.createServer("s0", "d0", oldCreds)
	s.seed("s0", nil)

	// With one, given at creation.
	s.createDisk("d1")
	s.track("s1")
	spec := s.serverSpec("s1", "d1")
	spec.Seed = &seed1
	_, err := s.d.CreateServer(s.ctx, spec)
	s.ok(err, "CreateServer with a seed")
	s.seed("s1", &seed1)
	_, err = s.d.CreateServer(s.ctx, spec)
	s.ok(err, "CreateServer with a seed again")
	s.seed("s1", &seed1)

	// It stays through a boot, and changes only while stopped.
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer")
	s.badState(s.d.SetSeed(s.ctx, "s1", &seed2), "SetSeed on a running server")
	s.seed("s1", &seed1)
	s.ok(s.d.StopServer(s.ctx, "s1", false), "StopServer")
	s.seed("s1", &seed1)

	// Replaced (twice: idempotent), then removed.
	for range 2 {
		s.ok(s.d.SetSeed(s.ctx, "s1", &seed2), "SetSeed(seed2)")
	}
	s.seed("s1", &seed2)
	s.ok(s.d.SetSeed(s.ctx, "s0", &seed1), "SetSeed on a server created without one")
	s.seed("s0", &seed1)
	s.seed("s1", &seed2) // the other server's is untouched
	for range 2 {
		s.ok(s.d.SetSeed(s.ctx, "s1", nil), "SetSeed(nil)")
	}
	s.seed("s1", nil)
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer without a seed")
	s.power("s1", compute.PowerRunning)
}

func testSeedRefusals(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	s.ok(s.d.SetSeed(s.ctx, "s1", &seed1), "SetSeed")
	bad := func(change func(*compute.Seed)) *compute.Seed {
		c := seed2
		change(&c)
		return &c
	}
	seeds := map[string]*compute.Seed{
		"no instance id":        bad(func(c *compute.Seed) { c.InstanceID = "" }),
		"instance id with '/'":  bad(func(c *compute.Seed) { c.InstanceID = "../i" }),
		"long instance id":      bad(func(c *compute.Seed) { c.InstanceID = strings.Repeat("i", 65) }),
		"hostname with a space": bad(func(c *compute.Seed) { c.Hostname = "a b" }),
		"plain password":        bad(func(c *compute.Seed) { c.PasswordHash = "Plain-passw0rd" }),
		"hash with a newline":   bad(func(c *compute.Seed) { c.PasswordHash = "$6$salt$hash\nroot::0:" }),
		"key with a CR":         bad(func(c *compute.Seed) { c.AuthorizedKeys = "ssh-ed25519 AAAA\rx\n" }),
		"oversized user data":   bad(func(c *compute.Seed) { c.UserData = make([]byte, compute.MaxUserData+1) }),
	}
	for what, seed := range seeds {
		s.refused(s.d.SetSeed(s.ctx, "s1", seed), ecs.ErrInvalid, "SetSeed(%s)", what)
		spec := s.serverSpec("s2", "d2")
		spec.Seed = seed
		_, err := s.d.CreateServer(s.ctx, spec)
		s.refused(err, ecs.ErrInvalid, "CreateServer(seed with %s)", what)
	}
	s.power("s2", compute.PowerMissing)
	s.seed("s1", &seed1) // nothing changed

	// At most MaxUserData bytes pass.
	full := seed2
	full.UserData = bytes.Repeat([]byte("x"), compute.MaxUserData)
	s.ok(s.d.SetSeed(s.ctx, "s1", &full), "SetSeed with MaxUserData bytes of user data")
	s.seed("s1", &full)

	s.notFound(s.d.SetSeed(s.ctx, "nope", &seed1), "SetSeed(unknown server)")
	_, err := s.d.ReadSeed(s.ctx, "nope")
	s.notFound(err, "ReadSeed(unknown server)")
	s.refused(s.d.SetSeed(s.ctx, "../s1", &seed1), ecs.ErrInvalid, "SetSeed(bad id)")
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	if err := s.d.SetSeed(ctx, "s1", &seed2); !errors.Is(err, context.Canceled) {
		s.t.Errorf("SetSeed with a cancelled ctx: got %v, want context.Canceled", err)
	}
	s.seed("s1", &full)
}

func testSetServerImage(s *suite) {
	s.runningServer("s1", "d1", oldCreds)
	s.badState(s.d.SetServerImage(s.ctx, "s1", s.f.Image), "SetServerImage on a running server")
	s.ok(s.d.StopServer(s.ctx, "s1", false), "StopServer")
	for range 2 {
		s.ok(s.d.SetServerImage(s.ctx, "s1", s.f.Image), "SetServerImage")
	}
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer after SetServerImage")
	s.power("s1", compute.PowerRunning)
	s.notFound(s.d.SetServerImage(s.ctx, "nope", s.f.Image), "SetServerImage(unknown server)")
	s.refused(s.d.SetServerImage(s.ctx, "s1", ecs.Image{}), ecs.ErrInvalid, "SetServerImage(image without id)")
	s.refused(s.d.SetServerImage(s.ctx, "a/b", s.f.Image), ecs.ErrInvalid, "SetServerImage(bad id)")
}

// noAgent checks that err is compute.ErrNoAgent, of kind ecs.ErrBadState
// only.
func (s *suite) noAgent(err error, format string, args ...any) {
	s.t.Helper()
	s.badState(err, format, args...)
	if !errors.Is(err, compute.ErrNoAgent) {
		s.t.Fatalf("%s: got %v, want compute.ErrNoAgent", fmt.Sprintf(format, args...), err)
	}
}

// waitAgent waits until the agent of server id answers (a booting guest
// starts it late), for as long as the test's ctx allows.
func (s *suite) waitAgent(id string) {
	s.t.Helper()
	for {
		err := s.d.PingAgent(s.ctx, id)
		if err == nil {
			return
		}
		if !errors.Is(err, compute.ErrNoAgent) || s.ctx.Err() != nil {
			s.t.Fatalf("PingAgent(%s) while waiting for the agent: %v", id, err)
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func testAgent(s *suite) {
	s.createServer("s1", "d1", oldCreds)
	// A stopped server has no agent to talk to.
	s.noAgent(s.d.PingAgent(s.ctx, "s1"), "PingAgent on a stopped server")
	s.noAgent(s.d.SetPassword(s.ctx, "s1", newCreds.PasswordHash), "SetPassword on a stopped server")
	s.notFound(s.d.PingAgent(s.ctx, "nope"), "PingAgent(unknown server)")
	s.notFound(s.d.SetPassword(s.ctx, "nope", newCreds.PasswordHash), "SetPassword(unknown server)")
	for _, hash := range []string{"", "Plain-passw0rd", "$6$salt$ha:sh", "$6$salt$hash\nroot::0:"} {
		s.refused(s.d.SetPassword(s.ctx, "s1", hash), ecs.ErrInvalid, "SetPassword(hash %q)", hash)
	}
	s.refused(s.d.SetPassword(s.ctx, "a/b", newCreds.PasswordHash), ecs.ErrInvalid, "SetPassword(bad id)")

	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer")
	if !s.f.Agent {
		s.noAgent(s.d.PingAgent(s.ctx, "s1"), "PingAgent on a guest without an agent")
		s.noAgent(s.d.SetPassword(s.ctx, "s1", newCreds.PasswordHash), "SetPassword on a guest without an agent")
		s.power("s1", compute.PowerRunning)
		s.ok(s.d.StopServer(s.ctx, "s1", false), "StopServer")
		s.creds("d1", oldCreds)
		return
	}
	s.waitAgent("s1")
	for range 2 {
		s.ok(s.d.SetPassword(s.ctx, "s1", newCreds.PasswordHash), "SetPassword")
	}
	s.power("s1", compute.PowerRunning) // no reboot
	s.ok(s.d.StopServer(s.ctx, "s1", false), "StopServer")
	// The guest wrote it to its disk; the key is as it was.
	s.creds("d1", compute.Credentials{PasswordHash: newCreds.PasswordHash, AuthorizedKeys: oldCreds.AuthorizedKeys})
}

func testDataDisks(s *suite) {
	s.runningServer("s1", "d1", oldCreds)
	for _, id := range []string{"v1", "v2"} {
		s.ok(s.d.CreateDisk(s.ctx, compute.DiskSpec{ID: id, SizeGB: 1}), "CreateDisk(%s), blank", id)
	}
	for range 2 {
		s.ok(s.d.AttachDataDisk(s.ctx, "s1", "v1"), "AttachDataDisk(s1, v1) to a running server")
	}
	s.attached("v1")
	s.notFound(s.d.AttachDataDisk(s.ctx, "s1", "v9"), "AttachDataDisk of a missing disk")
	s.notFound(s.d.AttachDataDisk(s.ctx, "s9", "v2"), "AttachDataDisk to a missing server")
	s.conflict(s.d.AttachDataDisk(s.ctx, "s1", "d1"), "AttachDataDisk of the server's own system disk")
	s.createServer("s2", "d2", newCreds)
	s.conflict(s.d.AttachDataDisk(s.ctx, "s2", "v1"), "AttachDataDisk of another server's data disk")
	s.conflict(s.d.AttachDisk(s.ctx, "s2", "v1"), "AttachDisk (system) of another server's data disk")

	// A data disk stays through a stop and a start.
	s.ok(s.d.StopServer(s.ctx, "s1", false), "StopServer(s1)")
	s.ok(s.d.AttachDataDisk(s.ctx, "s1", "v2"), "AttachDataDisk(s1, v2) to a stopped server")
	s.ok(s.d.StartServer(s.ctx, "s1"), "StartServer(s1) with two data disks")
	s.power("s1", compute.PowerRunning)
	s.attached("v1")
	s.attached("v2")

	for range 2 {
		s.ok(s.d.DetachDataDisk(s.ctx, "s1", "v1"), "DetachDataDisk(s1, v1) from a running server")
	}
	s.ok(s.d.DetachDataDisk(s.ctx, "s1", "d1"), "DetachDataDisk of the system disk, not a data disk: nothing to do")
	s.attached("d1")
	s.ok(s.d.DeleteDisk(s.ctx, "v1"), "DeleteDisk(v1), detached")
	s.gone("v1")

	// DeleteServer leaves the data disk detached.
	s.ok(s.d.DeleteServer(s.ctx, "s1"), "DeleteServer(s1)")
	s.ok(s.d.AttachDataDisk(s.ctx, "s2", "v2"), "AttachDataDisk(s2, v2) after s1 was deleted")
	s.ok(s.d.DetachDataDisk(s.ctx, "s2", "v2"), "DetachDataDisk(s2, v2) from a stopped server")
	s.ok(s.d.DeleteDisk(s.ctx, "v2"), "DeleteDisk(v2)")
	s.notFound(s.d.DetachDataDisk(s.ctx, "s1", "v2"), "DetachDataDisk from a deleted server")
}
