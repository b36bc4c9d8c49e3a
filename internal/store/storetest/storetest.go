// Package storetest is the conformance suite of store.Store. Every
// implementation (store/sqlite, store/postgres) calls Run and RunShared
// (several Stores on one database) from its own tests and must pass them
// unchanged; a suite that needs a special case for one backend is a bug in
// the suite or in the backend. The Bench functions are the stores' shared
// benchmarks.
//
// The suite checks the contract of package store (its package doc and the
// comments on Store, Reader and Tx) and the behaviour the service relies on
// that those comments imply:
//   - lookups of a missing row, or of a row of another project or user,
//     return an error wrapping ecs.ErrNotFound; unique-key clashes return
//     ecs.ErrConflict and change nothing;
//   - every field of every record round-trips; times at millisecond
//     precision, a zero time stays zero, empty metadata and params may come
//     back nil;
//   - ServerList filters by name (a substring where "." is any one
//     character, every other character literal), by the derived status
//     ecs.Status(vm_state, task_state), by flavor, address, tags, ids and
//     reservation, pages by offset and marker, counts the matches before
//     paging and returns the newest server first;
//   - a NIC's address is held once per project and subnet (ServerInsert of
//     a held one is an *store.AddressTakenError) and freed by ServerDelete;
//     NICs, tags and reservation id are the insert's (ServerUpdate leaves
//     them; ServerTagsSet replaces tags);
//   - ServerUpdate keeps the task owner while TaskJobID is set and clears it
//     when TaskJobID is ""; ServerSetOwner of a server whose task is another
//     job, or of a missing server, returns ecs.ErrFenced;
//   - ServerDelete and VolumeDelete of a missing row succeed (steps are
//     re-run after a crash); KeypairDelete of a missing key pair returns
//     ecs.ErrNotFound (the API answers 404);
//   - JobInsert of a job with no status stores it as INIT; a batch job's
//     status folds from its sub-jobs: RUNNING once one was claimed, and,
//     once all have finished, FAIL if any failed, else SUCCESS, with the
//     latest sub-job end time as its end time;
//   - JobDeleteFinished counts the sub-jobs it deletes.
//
// Tests never sleep: every time a test gives the store (now, lease expiry,
// created, end) is a fixed instant, so the suite is deterministic.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// opener returns a new, empty Store for one test and arranges for it to be
// closed (t.Cleanup).
type opener = func(t *testing.T) store.Store

// Run runs the conformance suite. open is called once per test, possibly
// from parallel tests, and must return a new, empty Store that it closes
// with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	families := []struct {
		name string
		fn   func(t *testing.T, open opener)
	}{
		{"Credential", testCredential},
		{"Project", testProject},
		{"Image", testImage},
		{"Server", testServer},
		{"ServerList", testServerList},
		{"ServerListFilters", testServerListFilters},
		{"ServerSearch", testServerSearch},
		{"ServerListTagMatches", testServerListTagMatches},
		{"ServerDetails", testServerDetails},
		{"Addresses", testAddresses},
		{"ServerOwner", testServerOwner},
		{"OddText", testOddText},
		{"Volume", testVolume},
		{"Keypair", testKeypair},
		{"Job", testJob},
		{"JobClaim", testJobClaim},
		{"JobUpdate", testJobUpdate},
		{"JobFold", testJobFold},
		{"JobLease", testJobLease},
		{"JobRetry", testJobRetry},
		{"JobDeleteFinished", testJobDeleteFinished},
		{"Leader", testLeader},
		{"StoreClock", testStoreClock},
		{"CredentialCountTx", testCredentialCountTx},
		{"Write", testWrite},
		{"Host", testHost},
		{"HostAllocate", testHostAllocate},
		{"VolumeAllocate", testVolumeAllocate},
		{"JobClaimHost", testJobClaimHost},
		{"ImageHost", testImageHost},
		{"Actions", testActions},
	}
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			f.fn(t, open)
		})
	}
}

// t0 is the suite's fixed "now", at millisecond precision.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)

const (
	projA = "0a1b2c3d4e5f40718293a4b5c6d7e8f9"
	projB = "f9e8d7c6b5a40392817f6e5d4c3b2a10"
	userA = "user-a"
	userB = "user-b"
)

// bundle is what a test works with.
type bundle struct {
	ctx context.Context
	s   store.Store
}

func setup(t *testing.T, open opener) *bundle {
	t.Helper()
	return &bundle{ctx: t.Context(), s: open(t)}
}

// write runs fn in a Write and fails the test on error.
func (b *bundle) write(t *testing.T, fn func(tx store.Tx) error) {
	t.Helper()
	if err := b.s.Write(b.ctx, fn); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// writeErr runs fn in a Write and returns its error.
func (b *bundle) writeErr(fn func(tx store.Tx) error) error {
	return b.s.Write(b.ctx, fn)
}

func (b *bundle) insertServers(t *testing.T, srvs ...ecs.Server) {
	t.Helper()
	srvs = slices.Clone(srvs)
	b.write(t, func(tx store.Tx) error {
		for i := range srvs {
			if err := tx.ServerInsert(b.ctx, &srvs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *bundle) updateServer(t *testing.T, s ecs.Server) {
	t.Helper()
	b.write(t, func(tx store.Tx) error { return tx.ServerUpdate(b.ctx, &s) })
}

func (b *bundle) getServer(t *testing.T, projectID, id string) ecs.Server {
	t.Helper()
	s, err := b.s.ServerGet(b.ctx, projectID, id)
	if err != nil {
		t.Fatalf("ServerGet(%s, %s): %v", projectID, id, err)
	}
	return s
}

func (b *bundle) insertJobs(t *testing.T, jobs ...ecs.Job) {
	t.Helper()
	jobs = slices.Clone(jobs)
	b.write(t, func(tx store.Tx) error {
		for i := range jobs {
			if err := tx.JobInsert(b.ctx, &jobs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *bundle) getJob(t *testing.T, projectID, id string) ecs.Job {
	t.Helper()
	j, err := b.s.JobGet(b.ctx, projectID, id)
	if err != nil {
		t.Fatalf("JobGet(%s, %s): %v", projectID, id, err)
	}
	return j
}

// claim claims up to limit jobs for owner at now, leased until now+lease.
func (b *bundle) claim(t *testing.T, owner string, now time.Time, lease time.Duration, limit int) []ecs.Job {
	t.Helper()
	jobs, err := b.s.JobClaim(b.ctx, store.JobClaimParams{Owner: owner, Now: now, Lease: lease, Limit: limit})
	if err != nil {
		t.Fatalf("JobClaim(%s): %v", owner, err)
	}
	return jobs
}

// claimAll claims every claimable job for owner at now and returns them by
// id, with the lease of each claim.
func (b *bundle) claimAll(t *testing.T, owner string, now time.Time) (map[string]ecs.Job, map[string]store.Lease) {
	t.Helper()
	jobs := b.claim(t, owner, now, time.Hour, 1000)
	byID := make(map[string]ecs.Job, len(jobs))
	leases := make(map[string]store.Lease, len(jobs))
	for _, j := range jobs {
		byID[j.ID] = j
		leases[j.ID] = store.Lease{Owner: owner, Attempt: j.Attempts}
	}
	return byID, leases
}

// updateJob runs JobUpdate in a Write and returns its error.
func (b *bundle) updateJob(j ecs.Job, lease store.Lease) error {
	return b.writeErr(func(tx store.Tx) error { return tx.JobUpdate(b.ctx, &j, lease) })
}

// finish marks a claimed job done with status at end.
func (b *bundle) finish(t *testing.T, j ecs.Job, lease store.Lease, status string, end time.Time) {
	t.Helper()
	j.Status, j.End = status, end
	if status == ecs.JobFail {
		j.ErrorCode, j.FailReason = ecs.CodeTaskFailed.Wire, "it broke"
	}
	if err := b.updateJob(j, lease); err != nil {
		t.Fatalf("JobUpdate(%s -> %s): %v", j.ID, status, err)
	}
}

func jobIDs(jobs []ecs.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	slices.Sort(out)
	return out
}

func serverIDs(srvs []ecs.Server) []string {
	out := make([]string, len(srvs))
	for i, s := range srvs {
		out[i] = s.ID
	}
	return out
}

// wantErr fails the test unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %q", what, err, target)
	}
}

// wantNoErr fails the test on err.
func wantNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantEqual compares got and want after normalising both (times to UTC,
// empty maps and slices to nil) and fails the test when they differ.
func wantEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

// normalize returns v with every time.Time in UTC and every empty map or
// slice nil, so that values that mean the same compare equal.
func normalize[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	normValue(rv)
	return v
}

var timeType = reflect.TypeFor[time.Time]()

func normValue(v reflect.Value) {
	switch {
	case v.Type() == timeType:
		t := v.Interface().(time.Time)
		if t.IsZero() {
			v.Set(reflect.ValueOf(time.Time{}))
		} else {
			v.Set(reflect.ValueOf(t.UTC()))
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normValue(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := range v.Len() {
			normValue(v.Index(i))
		}
	case reflect.Map:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
		}
	}
}

// ---- credentials, projects, images

func testCredential(t *testing.T, open opener) {
	cred := store.SealedCredential{AccessKey: "HPUAK1234567890ABCDEF", SealedSecret: []byte{0, 1, 2, 0xfe, 0xff, 'x'},
		ProjectID: projA, UserID: userA, Created: t0}

	t.Run("InsertGetCount", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		n, err := b.s.CredentialCount(b.ctx)
		wantNoErr(t, "CredentialCount", err)
		if n != 0 {
			t.Fatalf("CredentialCount of an empty store = %d, want 0", n)
		}
		if list, err := b.s.CredentialList(b.ctx); err != nil || len(list) != 0 {
			t.Fatalf("CredentialList of an empty store = %v, %v; want none", list, err)
		}
		wantNoErr(t, "CredentialInsert", b.insertCred(cred))
		other := cred
		other.AccessKey, other.SealedSecret, other.ProjectID = "HPUAKOTHER", []byte("sealed-2"), projB
		wantNoErr(t, "CredentialInsert", b.insertCred(other))

		for _, c := range []store.SealedCredential{cred, other} {
			got, err := b.s.CredentialGet(b.ctx, c.AccessKey)
			wantNoErr(t, "CredentialGet", err)
			wantEqual(t, "CredentialGet", got, c)
		}
		n, err = b.s.CredentialCount(b.ctx)
		wantNoErr(t, "CredentialCount", err)
		if n != 2 {
			t.Fatalf("CredentialCount = %d, want 2", n)
		}
		list, err := b.s.CredentialList(b.ctx)
		wantNoErr(t, "CredentialList", err)
		wantEqual(t, "CredentialList", list, []store.SealedCredential{cred, other}) // ordered by access key
	})

	t.Run("Conflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		wantNoErr(t, "CredentialInsert", b.insertCred(cred))
		dup := cred
		dup.SealedSecret, dup.UserID = []byte("another secret"), userB
		wantErr(t, "CredentialInsert of a taken access key", b.insertCred(dup), ecs.ErrConflict)
		got, err := b.s.CredentialGet(b.ctx, cred.AccessKey)
		wantNoErr(t, "CredentialGet", err)
		wantEqual(t, "credential after a conflicting insert", got, cred)
		n, err := b.s.CredentialCount(b.ctx)
		wantNoErr(t, "CredentialCount", err)
		if n != 1 {
			t.Fatalf("CredentialCount = %d, want 1", n)
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		wantNoErr(t, "CredentialInsert", b.insertCred(cred))
		_, err := b.s.CredentialGet(b.ctx, "HPUAKMISSING")
		wantErr(t, "CredentialGet of a missing key", err, ecs.ErrNotFound)
	})
}

// insertCred runs Tx.CredentialInsert in a Write and returns its error.
func (b *bundle) insertCred(c store.SealedCredential) error {
	return b.writeErr(func(tx store.Tx) error { return tx.CredentialInsert(b.ctx, c) })
}

// insertProject runs Tx.ProjectInsert in a Write and returns its error.
func (b *bundle) insertProject(id, name string, created time.Time) error {
	return b.writeErr(func(tx store.Tx) error { return tx.ProjectInsert(b.ctx, id, name, created) })
}

func testProject(t *testing.T, open opener) {
	t.Run("InsertConflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		wantNoErr(t, "ProjectInsert", b.insertProject(projA, "cn-north-4", t0))
		wantNoErr(t, "ProjectInsert of another project", b.insertProject(projB, "cn-north-4", t0))
		wantErr(t, "ProjectInsert of a taken id", b.insertProject(projA, "other", t0), ecs.ErrConflict)
	})

	// A project and its first credential are made in one transaction: a
	// credential that cannot be stored leaves no project behind.
	t.Run("WithCredentialAtomic", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		cred := store.SealedCredential{AccessKey: "HPUAKTAKEN", SealedSecret: []byte("s"), ProjectID: projA, UserID: userA, Created: t0}
		wantNoErr(t, "CredentialInsert", b.insertCred(cred))
		dup := cred
		dup.ProjectID = projB
		err := b.writeErr(func(tx store.Tx) error {
			if err := tx.ProjectInsert(b.ctx, projB, "cn-north-4", t0); err != nil {
				return err
			}
			return tx.CredentialInsert(b.ctx, dup)
		})
		wantErr(t, "project with a taken access key", err, ecs.ErrConflict)
		wantNoErr(t, "ProjectInsert after the rolled-back one", b.insertProject(projB, "cn-north-4", t0))
	})
}

func fullImage(id string) ecs.Image {
	return ecs.Image{ID: id, Name: "Debian 12 " + id, OSType: "Linux", OSVersion: "Debian GNU/Linux 12.0.0 64bit",
		Platform: "Debian", Status: "active", DiskFormat: "qcow2", MinDiskGB: 10, MinRAMMB: 1024, SizeBytes: 3<<30 + 7,
		Checksum: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", File: "/var/lib/ecsd/images/" + id + ".qcow2",
		Kernel: "/var/lib/ecsd/images/" + id + ".vmlinuz", Initrd: "/var/lib/ecsd/images/" + id + ".initrd",
		PartitionTable: "gpt", RootFS: "ext4", CloudInit: true, Unsupported: "", Created: t0}
}

func testImage(t *testing.T, open opener) {
	t.Run("UpsertGetList", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		a, c := fullImage("img-a"), fullImage("img-c")
		c.OSType, c.Platform, c.CloudInit, c.Unsupported, c.Created = "Windows", "Windows", false, "no cloud-init", t0.Add(-time.Hour)
		c.File, c.Kernel, c.Initrd, c.Checksum = "", "", "", ""
		for _, img := range []ecs.Image{a, c} {
			wantNoErr(t, "ImageUpsert", b.s.ImageUpsert(b.ctx, img))
		}
		for _, img := range []ecs.Image{a, c} {
			got, err := b.s.ImageGet(b.ctx, img.ID)
			wantNoErr(t, "ImageGet", err)
			wantEqual(t, "ImageGet", got, img)
		}
		list, err := b.s.ImageList(b.ctx)
		wantNoErr(t, "ImageList", err)
		slices.SortFunc(list, func(x, y ecs.Image) int { return cmp.Compare(x.ID, y.ID) })
		wantEqual(t, "ImageList", list, []ecs.Image{a, c})
	})

	t.Run("UpsertReplaces", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		img := fullImage("img-a")
		wantNoErr(t, "ImageUpsert", b.s.ImageUpsert(b.ctx, img))
		img.Name, img.Status, img.SizeBytes, img.CloudInit, img.Unsupported = "renamed", "queued", 42, false, "mbr without root"
		wantNoErr(t, "ImageUpsert again", b.s.ImageUpsert(b.ctx, img))
		got, err := b.s.ImageGet(b.ctx, img.ID)
		wantNoErr(t, "ImageGet", err)
		wantEqual(t, "ImageGet after a second upsert", got, img)
		list, err := b.s.ImageList(b.ctx)
		wantNoErr(t, "ImageList", err)
		wantEqual(t, "ImageList after a second upsert", list, []ecs.Image{img})
	})

	t.Run("GetMissing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, err := b.s.ImageGet(b.ctx, "img-missing")
		wantErr(t, "ImageGet of a missing image", err, ecs.ErrNotFound)
		list, err := b.s.ImageList(b.ctx)
		wantNoErr(t, "ImageList", err)
		if len(list) != 0 {
			t.Fatalf("ImageList of an empty store = %v", list)
		}
	})
}

// ---- volumes

func testVolume(t *testing.T, open opener) {
	vol := func(id, project, server string) ecs.Volume {
		return ecs.Volume{ID: id, ProjectID: project, ServerID: server, ImageID: "img-a", SizeGB: 40, VolumeType: "SSD", Host: "host-a",
			Status: "in-use", Device: "/dev/vda", Created: t0.Add(123 * time.Millisecond)}
	}
	upsert := func(t *testing.T, b *bundle, vs ...ecs.Volume) {
		t.Helper()
		b.write(t, func(tx store.Tx) error {
			for i := range vs {
				if err := tx.VolumeUpsert(b.ctx, &vs[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}

	t.Run("UpsertGetList", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		v1, v2, v3 := vol("vol-1", projA, "srv-1"), vol("vol-2", projA, ""), vol("vol-3", projB, "srv-9")
		v2.Status, v2.Device, v2.SizeGB, v2.VolumeType, v2.Name = "available", "", 100, "GPSSD", "data-1"
		v2.Created = v1.Created.Add(time.Second)
		upsert(t, b, v2, v1, v3)
		for _, v := range []ecs.Volume{v1, v2, v3} {
			got, err := b.s.VolumeGet(b.ctx, v.ID)
			wantNoErr(t, "VolumeGet", err)
			wantEqual(t, "VolumeGet", got, v)
			b.write(t, func(tx store.Tx) error {
				got, err := tx.VolumeGet(b.ctx, v.ID)
				wantNoErr(t, "Tx.VolumeGet", err)
				wantEqual(t, "Tx.VolumeGet", got, v)
				return nil
			})
		}
		list, err := b.s.VolumeListAll(b.ctx)
		wantNoErr(t, "VolumeListAll", err)
		slices.SortFunc(list, func(x, y ecs.Volume) int { return cmp.Compare(x.ID, y.ID) })
		wantEqual(t, "VolumeListAll (every project)", list, []ecs.Volume{v1, v2, v3})
		// A project's list holds its own volumes only, oldest first.
		list, err = b.s.VolumeList(b.ctx, projA)
		wantNoErr(t, "VolumeList", err)
		wantEqual(t, "VolumeList(projA)", list, []ecs.Volume{v1, v2})
		b.write(t, func(tx store.Tx) error {
			list, err := tx.VolumeList(b.ctx, projB)
			wantNoErr(t, "Tx.VolumeList", err)
			wantEqual(t, "Tx.VolumeList(projB)", list, []ecs.Volume{v3})
			return nil
		})
		list, err = b.s.VolumeList(b.ctx, "no-such-project")
		wantNoErr(t, "VolumeList of a project without volumes", err)
		wantEqual(t, "VolumeList of a project without volumes", len(list), 0)
	})

	t.Run("UpsertReplaces", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		v := vol("vol-1", projA, "srv-1")
		upsert(t, b, v)
		v.ServerID, v.Status, v.Device, v.SizeGB = "", "available", "", 80
		upsert(t, b, v)
		got, err := b.s.VolumeGet(b.ctx, v.ID)
		wantNoErr(t, "VolumeGet", err)
		wantEqual(t, "VolumeGet after a second upsert", got, v)
		list, err := b.s.VolumeListAll(b.ctx)
		wantNoErr(t, "VolumeListAll", err)
		wantEqual(t, "VolumeListAll after a second upsert", list, []ecs.Volume{v})
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		v1, v2 := vol("vol-1", projA, "srv-1"), vol("vol-2", projA, "srv-2")
		upsert(t, b, v1, v2)
		b.write(t, func(tx store.Tx) error { return tx.VolumeDelete(b.ctx, v1.ID) })
		_, err := b.s.VolumeGet(b.ctx, v1.ID)
		wantErr(t, "VolumeGet of a deleted volume", err, ecs.ErrNotFound)
		b.write(t, func(tx store.Tx) error {
			_, err := tx.VolumeGet(b.ctx, v1.ID)
			wantErr(t, "Tx.VolumeGet of a deleted volume", err, ecs.ErrNotFound)
			return nil
		})
		// A step that deletes a volume may run again after a crash.
		b.write(t, func(tx store.Tx) error { return tx.VolumeDelete(b.ctx, v1.ID) })
		list, err := b.s.VolumeListAll(b.ctx)
		wantNoErr(t, "VolumeListAll", err)
		wantEqual(t, "VolumeListAll after a delete", list, []ecs.Volume{v2})
	})
}

// ---- key pairs

func testKeypair(t *testing.T, open opener) {
	kp := func(project, user, name string) ecs.Keypair {
		return ecs.Keypair{ProjectID: project, UserID: user, Name: name,
			PublicKey:   "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDx0ZXN0IGtleSBmb3Igc3RvcmV0ZXN0Pg " + name,
			Fingerprint: "SHA256:" + name, Type: "ssh", Created: t0.Add(5 * time.Millisecond)}
	}
	insert := func(t *testing.T, b *bundle, k *ecs.Keypair) {
		t.Helper()
		b.write(t, func(tx store.Tx) error { return tx.KeypairInsert(b.ctx, k) })
		if k.ID == 0 {
			t.Fatalf("KeypairInsert(%s) left ID 0", k.Name)
		}
	}

	t.Run("InsertGetList", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		mine := []ecs.Keypair{kp(projA, userA, "kp-b"), kp(projA, userA, "kp-a")}
		others := []ecs.Keypair{kp(projA, userB, "kp-a"), kp(projB, userA, "kp-a")}
		for i := range mine {
			insert(t, b, &mine[i])
		}
		for i := range others {
			insert(t, b, &others[i])
		}
		all := append(slices.Clone(mine), others...)
		seen := map[int64]bool{}
		for _, k := range all {
			if seen[k.ID] {
				t.Fatalf("KeypairInsert gave ID %d twice", k.ID)
			}
			seen[k.ID] = true
			got, err := b.s.KeypairGet(b.ctx, k.ProjectID, k.UserID, k.Name)
			wantNoErr(t, "KeypairGet", err)
			wantEqual(t, "KeypairGet", got, k)
			b.write(t, func(tx store.Tx) error {
				got, err := tx.KeypairGet(b.ctx, k.ProjectID, k.UserID, k.Name)
				wantNoErr(t, "Tx.KeypairGet", err)
				wantEqual(t, "Tx.KeypairGet", got, k)
				return nil
			})
		}
		list, err := b.s.KeypairList(b.ctx, projA, userA)
		wantNoErr(t, "KeypairList", err)
		slices.SortFunc(list, func(x, y ecs.Keypair) int { return cmp.Compare(x.Name, y.Name) })
		wantEqual(t, "KeypairList (one project and user)", list, []ecs.Keypair{mine[1], mine[0]})

		list, err = b.s.KeypairList(b.ctx, projB, userB)
		wantNoErr(t, "KeypairList", err)
		if len(list) != 0 {
			t.Fatalf("KeypairList of a user without key pairs = %v", list)
		}
	})

	t.Run("Conflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		first := kp(projA, userA, "kp-a")
		insert(t, b, &first)
		dup := kp(projA, userA, "kp-a")
		dup.PublicKey = "ssh-rsa AAAAB3other"
		err := b.writeErr(func(tx store.Tx) error { return tx.KeypairInsert(b.ctx, &dup) })
		wantErr(t, "KeypairInsert of a taken name", err, ecs.ErrConflict)
		got, err := b.s.KeypairGet(b.ctx, projA, userA, "kp-a")
		wantNoErr(t, "KeypairGet", err)
		wantEqual(t, "key pair after a conflicting insert", got, first)
	})

	t.Run("GetScoped", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		k := kp(projA, userA, "kp-a")
		insert(t, b, &k)
		for _, c := range []struct{ project, user, name string }{
			{projB, userA, "kp-a"},
			{projA, userB, "kp-a"},
			{projA, userA, "kp-A"},
			{projA, userA, "kp-missing"},
		} {
			_, err := b.s.KeypairGet(b.ctx, c.project, c.user, c.name)
			wantErr(t, fmt.Sprintf("KeypairGet(%s, %s, %s)", c.project, c.user, c.name), err, ecs.ErrNotFound)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		k, keep, otherUser := kp(projA, userA, "kp-a"), kp(projA, userA, "kp-b"), kp(projA, userB, "kp-a")
		insert(t, b, &k)
		insert(t, b, &keep)
		insert(t, b, &otherUser)

		err := b.writeErr(func(tx store.Tx) error { return tx.KeypairDelete(b.ctx, projB, userA, "kp-a") })
		wantErr(t, "KeypairDelete in another project", err, ecs.ErrNotFound)
		b.write(t, func(tx store.Tx) error { return tx.KeypairDelete(b.ctx, projA, userA, "kp-a") })
		_, err = b.s.KeypairGet(b.ctx, projA, userA, "kp-a")
		wantErr(t, "KeypairGet of a deleted key pair", err, ecs.ErrNotFound)
		err = b.writeErr(func(tx store.Tx) error { return tx.KeypairDelete(b.ctx, projA, userA, "kp-a") })
		wantErr(t, "KeypairDelete of a deleted key pair", err, ecs.ErrNotFound)

		list, err := b.s.KeypairList(b.ctx, projA, userA)
		wantNoErr(t, "KeypairList", err)
		wantEqual(t, "KeypairList after a delete", list, []ecs.Keypair{keep})
		got, err := b.s.KeypairGet(b.ctx, projA, userB, "kp-a")
		wantNoErr(t, "KeypairGet of another user's key pair of the same name", err)
		wantEqual(t, "other user's key pair", got, otherUser)

		// The name is free again.
		again := kp(projA, userA, "kp-a")
		insert(t, b, &again)
	})
}
