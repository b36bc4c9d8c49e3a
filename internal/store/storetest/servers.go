package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// fullServer is a server with every field set to a non-zero value.
func fullServer(id, project string) ecs.Server {
	return ecs.Server{ID: id, ProjectID: project, UserID: userA, Name: "web-" + id, VMState: ecs.VMActive,
		TaskState: ecs.TaskRebuilding, PowerState: ecs.PowerRunning, Locked: true, ImageID: "img-debian",
		FlavorID: "s6.large.2", KeyName: "kp-a", SystemVolumeID: "vol-" + id, ReinstallFailed: true, TaskJobID: "job-" + id,
		Fault: "system disk detached", AZ: "az1", VPCID: "vpc-1", Addr: "192.168.1.7", AccessPort: 22022, LaunchIndex: 3,
		Host: "host-a", Created: t0, Updated: t0.Add(1500 * time.Millisecond), LaunchedAt: t0.Add(2*time.Second + 7*time.Millisecond),
		Metadata: map[string]string{"__support_agent_list": "hss,ces", "owner": "team \"a\"", "ünï": "cødé\nline"},
		NICs: []ecs.NIC{{PortID: "port-1-" + id, SubnetID: "subnet-" + id, IP: "192.168.1.7"},
			{PortID: "port-2-" + id, SubnetID: "subnet-2-" + id, IP: "10.0.0.9"}},
		Tags: []ecs.Tag{{Key: "env", Value: "prod"}, {Key: "ünï", Value: ""}}, ReservationID: "r-" + id}
}

// plainServer is a minimal idle server created n seconds after t0.
func plainServer(id, project, name string, n int) ecs.Server {
	at := t0.Add(time.Duration(n) * time.Second)
	return ecs.Server{ID: id, ProjectID: project, UserID: userA, Name: name, VMState: ecs.VMActive,
		PowerState: ecs.PowerRunning, ImageID: "img-debian", FlavorID: "s6.small.1", AZ: "az1", Created: at, Updated: at}
}

func testServer(t *testing.T, open opener) {
	t.Run("InsertGet", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		a, other := fullServer("srv-a", projA), fullServer("srv-b", projB)
		other.Locked, other.PowerState, other.AccessPort = false, ecs.PowerShutdown, 0
		bare := ecs.Server{ID: "srv-bare", ProjectID: projA, Name: "bare", VMState: ecs.VMBuilding}
		b.insertServers(t, a, other, bare)
		for _, want := range []ecs.Server{a, other, bare} {
			wantEqual(t, "ServerGet", b.getServer(t, want.ProjectID, want.ID), want)
			b.write(t, func(tx store.Tx) error {
				got, err := tx.ServerGet(b.ctx, want.ProjectID, want.ID)
				wantNoErr(t, "Tx.ServerGet", err)
				wantEqual(t, "Tx.ServerGet", got, want)
				got, err = tx.ServerGetByID(b.ctx, want.ID)
				wantNoErr(t, "Tx.ServerGetByID", err)
				wantEqual(t, "Tx.ServerGetByID", got, want)
				return nil
			})
		}
		all, err := b.s.ServerListAll(b.ctx)
		wantNoErr(t, "ServerListAll", err)
		slices.SortFunc(all, func(x, y ecs.Server) int { return strings.Compare(x.ID, y.ID) })
		wantEqual(t, "ServerListAll (every project)", all, []ecs.Server{a, other, bare})
	})

	t.Run("InsertConflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		a := fullServer("srv-a", projA)
		b.insertServers(t, a)
		dup := plainServer("srv-a", projB, "dup", 9)
		err := b.writeErr(func(tx store.Tx) error { return tx.ServerInsert(b.ctx, &dup) })
		wantErr(t, "ServerInsert of a taken id (even in another project)", err, ecs.ErrConflict)
		wantEqual(t, "server after a conflicting insert", b.getServer(t, projA, "srv-a"), a)
	})

	t.Run("ProjectScope", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		a := fullServer("srv-a", projA)
		b.insertServers(t, a)
		for _, project := range []string{projB, ""} {
			_, err := b.s.ServerGet(b.ctx, project, a.ID)
			wantErr(t, fmt.Sprintf("ServerGet(%q) of another project's server", project), err, ecs.ErrNotFound)
			b.write(t, func(tx store.Tx) error {
				_, err := tx.ServerGet(b.ctx, project, a.ID)
				wantErr(t, fmt.Sprintf("Tx.ServerGet(%q) of another project's server", project), err, ecs.ErrNotFound)
				return nil
			})
		}
		list, n, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projB})
		wantNoErr(t, "ServerList", err)
		if n != 0 || len(list) != 0 {
			t.Fatalf("ServerList of another project = %d, %v; want nothing", n, serverIDs(list))
		}
		moved := a
		moved.ProjectID, moved.Name = projB, "stolen"
		err = b.writeErr(func(tx store.Tx) error { return tx.ServerUpdate(b.ctx, &moved) })
		wantErr(t, "ServerUpdate under another project", err, ecs.ErrNotFound)
		wantEqual(t, "server after an update under another project", b.getServer(t, projA, a.ID), a)
	})

	t.Run("GetMissing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, err := b.s.ServerGet(b.ctx, projA, "srv-missing")
		wantErr(t, "ServerGet of a missing server", err, ecs.ErrNotFound)
		b.write(t, func(tx store.Tx) error {
			_, err := tx.ServerGetByID(b.ctx, "srv-missing")
			wantErr(t, "Tx.ServerGetByID of a missing server", err, ecs.ErrNotFound)
			return nil
		})
		missing := plainServer("srv-missing", projA, "x", 0)
		err = b.writeErr(func(tx store.Tx) error { return tx.ServerUpdate(b.ctx, &missing) })
		wantErr(t, "ServerUpdate of a missing server", err, ecs.ErrNotFound)
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name   string
			change func(s *ecs.Server)
		}{
			{"every field", func(s *ecs.Server) {
				*s = ecs.Server{ID: s.ID, ProjectID: s.ProjectID, UserID: userB, Name: "db-renamed", VMState: ecs.VMStopped,
					TaskState: ecs.TaskPoweringOn, PowerState: ecs.PowerShutdown, Locked: false, ImageID: "img-ubuntu",
					FlavorID: "c7.xlarge.4", KeyName: "kp-b", SystemVolumeID: "vol-new", ReinstallFailed: false,
					TaskJobID: "job-next", Fault: "", AZ: "az2", VPCID: "vpc-2", Addr: "192.168.9.9", AccessPort: 30001,
					LaunchIndex: 0, Metadata: map[string]string{"owner": "team b", "new": "1"}, Host: "host-b",
					Created: t0.Add(-time.Hour), Updated: t0.Add(time.Minute + 999*time.Millisecond),
					LaunchedAt: t0.Add(time.Minute + time.Millisecond)}
			}},
			{"clear metadata", func(s *ecs.Server) { s.Metadata = nil }},
			{"empty metadata", func(s *ecs.Server) { s.Metadata = map[string]string{} }},
			{"clear optional fields", func(s *ecs.Server) {
				s.TaskState, s.TaskJobID, s.KeyName, s.SystemVolumeID, s.Fault, s.AccessPort = "", "", "", "", "", 0
				s.LaunchedAt = time.Time{}
			}},
			{"unlock", func(s *ecs.Server) { s.Locked = false }},
			{"clear reinstall failure", func(s *ecs.Server) { s.ReinstallFailed = false }},
			{"NICs, tags and reservation are not updated", func(s *ecs.Server) {
				s.NICs, s.Tags, s.ReservationID = []ecs.NIC{{PortID: "p", SubnetID: "s", IP: "1.2.3.4"}}, nil, "r-other"
			}},
			{"state only", func(s *ecs.Server) {
				s.VMState, s.TaskState, s.PowerState = ecs.VMError, ecs.TaskNone, ecs.PowerNoState
				s.Updated = s.Updated.Add(3 * time.Millisecond)
			}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, open)
				orig, neighbour := fullServer("srv-a", projA), fullServer("srv-b", projA)
				b.insertServers(t, orig, neighbour)
				want := fullServer("srv-a", projA)
				c.change(&want)
				// NICs, tags and the reservation id are the insert's: an
				// update leaves them.
				want.NICs, want.Tags, want.ReservationID = orig.NICs, orig.Tags, orig.ReservationID
				b.updateServer(t, want)
				wantEqual(t, "ServerGet after ServerUpdate", b.getServer(t, projA, want.ID), want)
				b.write(t, func(tx store.Tx) error {
					got, err := tx.ServerGetByID(b.ctx, want.ID)
					wantNoErr(t, "Tx.ServerGetByID", err)
					wantEqual(t, "Tx.ServerGetByID after ServerUpdate", got, want)
					return nil
				})
				wantEqual(t, "untouched neighbour", b.getServer(t, projA, neighbour.ID), neighbour)
			})
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		a, keep := fullServer("srv-a", projA), fullServer("srv-b", projA)
		b.insertServers(t, a, keep)
		b.write(t, func(tx store.Tx) error { return tx.ServerDelete(b.ctx, a.ID) })
		_, err := b.s.ServerGet(b.ctx, projA, a.ID)
		wantErr(t, "ServerGet of a deleted server", err, ecs.ErrNotFound)
		// A deleting step may run again after a crash.
		b.write(t, func(tx store.Tx) error { return tx.ServerDelete(b.ctx, a.ID) })
		list, n, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA})
		wantNoErr(t, "ServerList", err)
		if n != 1 || !slices.Equal(serverIDs(list), []string{keep.ID}) {
			t.Fatalf("ServerList after a delete = %d, %v; want 1, [%s]", n, serverIDs(list), keep.ID)
		}
		// The id is free again.
		b.insertServers(t, plainServer(a.ID, projA, "again", 5))
	})
}

func testServerList(t *testing.T, open opener) {
	// The fixture: servers of projA created in order (srv-01 oldest), in
	// various states, and two of projB that must never show.
	type row struct {
		id, name, vm, task string
	}
	rows := []row{
		{"srv-01", "web-1", ecs.VMActive, ecs.TaskNone},
		{"srv-02", "web-2", ecs.VMStopped, ecs.TaskNone},
		{"srv-03", "db-1", ecs.VMActive, ecs.TaskRebuilding},
		{"srv-04", "my-web", ecs.VMStopped, ecs.TaskRebuildSpawning},
		{"srv-05", "a_b", ecs.VMError, ecs.TaskNone},
		{"srv-06", "axb", ecs.VMActive, ecs.TaskRebooting},
		{"srv-07", "100%", ecs.VMBuilding, ecs.TaskScheduling},
		{"srv-08", "web-3", ecs.VMActive, ecs.TaskPoweringOff},
		{"srv-09", "api-4", ecs.VMActive, ecs.TaskNone},
		{"srv-10", "cache", ecs.VMStopped, ecs.TaskPoweringOn},
	}
	var srvs []ecs.Server
	for i, r := range rows {
		s := plainServer(r.id, projA, r.name, i)
		s.VMState, s.TaskState = r.vm, r.task
		srvs = append(srvs, s)
	}
	others := []ecs.Server{plainServer("srv-x1", projB, "web-1", 3), plainServer("srv-x2", projB, "web-9", 20)}

	// expect lists the ids of projA that match, newest first.
	expect := func(match func(s ecs.Server) bool) []string {
		var out []string
		for i := len(srvs) - 1; i >= 0; i-- {
			if match(srvs[i]) {
				out = append(out, srvs[i].ID)
			}
		}
		return out
	}
	byStatus := func(st string) func(s ecs.Server) bool {
		return func(s ecs.Server) bool { return ecs.Status(s.VMState, s.TaskState) == st }
	}
	byName := func(sub string) func(s ecs.Server) bool {
		return func(s ecs.Server) bool { return strings.Contains(s.Name, sub) }
	}
	all := func(ecs.Server) bool { return true }

	cases := []struct {
		name      string
		p         store.ServerListParams
		want      []string // page, newest first
		wantTotal int
	}{
		{"all", store.ServerListParams{}, expect(all), 10},
		{"name substring", store.ServerListParams{Name: "web"}, expect(byName("web")), 4},
		{"name is literal, not a pattern", store.ServerListParams{Name: "a_b"}, []string{"srv-05"}, 1},
		{"name dot is any character", store.ServerListParams{Name: "a.b"}, []string{"srv-06", "srv-05"}, 2},
		{"name glob characters are literal", store.ServerListParams{Name: "*"}, nil, 0},
		{"name is case-sensitive", store.ServerListParams{Name: "WEB"}, nil, 0},
		{"name with percent", store.ServerListParams{Name: "%"}, []string{"srv-07"}, 1},
		{"name no match", store.ServerListParams{Name: "nope"}, nil, 0},
		{"status ACTIVE", store.ServerListParams{Status: "ACTIVE"}, expect(byStatus("ACTIVE")), 3},
		{"status SHUTOFF", store.ServerListParams{Status: "SHUTOFF"}, expect(byStatus("SHUTOFF")), 2},
		{"status REBUILD", store.ServerListParams{Status: "REBUILD"}, []string{"srv-04", "srv-03"}, 2},
		{"status ERROR", store.ServerListParams{Status: "ERROR"}, []string{"srv-05"}, 1},
		{"status REBOOT", store.ServerListParams{Status: "REBOOT"}, []string{"srv-06"}, 1},
		{"status BUILD", store.ServerListParams{Status: "BUILD"}, []string{"srv-07"}, 1},
		{"status none match", store.ServerListParams{Status: "DELETED"}, nil, 0},
		{"name and status", store.ServerListParams{Name: "web", Status: "ACTIVE"}, []string{"srv-08", "srv-01"}, 2},
		{"limit", store.ServerListParams{Limit: 3}, []string{"srv-10", "srv-09", "srv-08"}, 10},
		{"offset and limit", store.ServerListParams{Offset: 3, Limit: 4}, []string{"srv-07", "srv-06", "srv-05", "srv-04"}, 10},
		{"offset without limit", store.ServerListParams{Offset: 7}, []string{"srv-03", "srv-02", "srv-01"}, 10},
		{"last partial page", store.ServerListParams{Offset: 8, Limit: 5}, []string{"srv-02", "srv-01"}, 10},
		{"offset past the end", store.ServerListParams{Offset: 10, Limit: 5}, nil, 10},
		{"filter then page", store.ServerListParams{Name: "web", Offset: 1, Limit: 2}, []string{"srv-04", "srv-02"}, 4},
	}

	b := setup(t, open)
	b.insertServers(t, others[0])
	b.insertServers(t, srvs[:5]...)
	b.insertServers(t, others[1])
	b.insertServers(t, srvs[5:]...)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := c.p
			p.ProjectID = projA
			list, total, err := b.s.ServerList(b.ctx, p)
			wantNoErr(t, "ServerList", err)
			if got := serverIDs(list); total != c.wantTotal || !slices.Equal(got, c.want) {
				t.Fatalf("ServerList(%+v) = %d, %v; want %d, %v", p, total, got, c.wantTotal, c.want)
			}
			for _, s := range list {
				if s.ProjectID != projA {
					t.Fatalf("ServerList of %s returned %s of project %s", projA, s.ID, s.ProjectID)
				}
			}
		})
	}

	t.Run("full rows", func(t *testing.T) {
		t.Parallel()
		list, _, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, Limit: 2})
		wantNoErr(t, "ServerList", err)
		wantEqual(t, "ServerList rows", list, []ecs.Server{srvs[9], srvs[8]})
	})

	// The status filter follows updates.
	t.Run("status after update", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		s1, s2 := plainServer("srv-1", projA, "one", 0), plainServer("srv-2", projA, "two", 1)
		b.insertServers(t, s1, s2)
		s1.TaskState, s1.TaskJobID = ecs.TaskRebuilding, "job-1"
		b.updateServer(t, s1)
		list, n, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, Status: "REBUILD"})
		wantNoErr(t, "ServerList", err)
		if n != 1 || !slices.Equal(serverIDs(list), []string{"srv-1"}) {
			t.Fatalf("REBUILD servers after an update = %d, %v; want 1, [srv-1]", n, serverIDs(list))
		}
		list, n, err = b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, Status: "ACTIVE"})
		wantNoErr(t, "ServerList", err)
		if n != 1 || !slices.Equal(serverIDs(list), []string{"srv-2"}) {
			t.Fatalf("ACTIVE servers after an update = %d, %v; want 1, [srv-2]", n, serverIDs(list))
		}
		s1.VMState, s1.TaskState, s1.TaskJobID = ecs.VMStopped, ecs.TaskNone, ""
		b.updateServer(t, s1)
		list, n, err = b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, Status: "SHUTOFF"})
		wantNoErr(t, "ServerList", err)
		if n != 1 || !slices.Equal(serverIDs(list), []string{"srv-1"}) {
			t.Fatalf("SHUTOFF servers after an update = %d, %v; want 1, [srv-1]", n, serverIDs(list))
		}
	})
}

func testServerOwner(t *testing.T, open opener) {
	tokA := store.Lease{Owner: "worker-a", Attempt: 1}.Token()
	tokB := store.Lease{Owner: "worker-b", Attempt: 2}.Token()

	// setupOwned makes a server whose task is job-1, owned by tokA.
	setupOwned := func(t *testing.T) (*bundle, ecs.Server) {
		t.Helper()
		b := setup(t, open)
		s := plainServer("srv-a", projA, "a", 0)
		s.TaskState, s.TaskJobID = ecs.TaskRebuilding, "job-1"
		b.insertServers(t, s)
		b.write(t, func(tx store.Tx) error { return tx.ServerSetOwner(b.ctx, s.ID, "job-1", tokA) })
		return b, s
	}
	fence := func(b *bundle, id, token string) error {
		return b.writeErr(func(tx store.Tx) error { return tx.ServerFence(b.ctx, id, token) })
	}

	t.Run("FenceOwner", func(t *testing.T) {
		t.Parallel()
		b, s := setupOwned(t)
		wantNoErr(t, "ServerFence by the owner", fence(b, s.ID, tokA))
		wantErr(t, "ServerFence by another token", fence(b, s.ID, tokB), ecs.ErrFenced)
		wantErr(t, "ServerFence with an empty token", fence(b, s.ID, ""), ecs.ErrFenced)
		wantErr(t, "ServerFence of a missing server", fence(b, "srv-missing", tokA), ecs.ErrFenced)
	})

	t.Run("FenceUnowned", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		s := plainServer("srv-a", projA, "a", 0)
		s.TaskState, s.TaskJobID = ecs.TaskRebuilding, "job-1"
		b.insertServers(t, s)
		wantErr(t, "ServerFence of a server nobody owns", fence(b, s.ID, tokA), ecs.ErrFenced)
	})

	t.Run("Takeover", func(t *testing.T) {
		t.Parallel()
		b, s := setupOwned(t)
		// A second run of the same job (after the first lost its lease).
		b.write(t, func(tx store.Tx) error { return tx.ServerSetOwner(b.ctx, s.ID, "job-1", tokB) })
		wantNoErr(t, "ServerFence by the new owner", fence(b, s.ID, tokB))
		wantErr(t, "ServerFence by the old owner", fence(b, s.ID, tokA), ecs.ErrFenced)
	})

	t.Run("SetOwnerOtherJob", func(t *testing.T) {
		t.Parallel()
		b, s := setupOwned(t)
		err := b.writeErr(func(tx store.Tx) error { return tx.ServerSetOwner(b.ctx, s.ID, "job-2", tokB) })
		wantErr(t, "ServerSetOwner for a job that is not the server's task", err, ecs.ErrFenced)
		err = b.writeErr(func(tx store.Tx) error { return tx.ServerSetOwner(b.ctx, "srv-missing", "job-1", tokB) })
		wantErr(t, "ServerSetOwner of a missing server", err, ecs.ErrFenced)
		wantNoErr(t, "ServerFence by the owner after a refused ServerSetOwner", fence(b, s.ID, tokA))
		wantErr(t, "ServerFence by the refused token", fence(b, s.ID, tokB), ecs.ErrFenced)
	})

	t.Run("UpdateKeepsOwner", func(t *testing.T) {
		t.Parallel()
		b, s := setupOwned(t)
		s.TaskState, s.Updated, s.Name = ecs.TaskRebuildSpawning, t0.Add(time.Second), "renamed"
		b.updateServer(t, s)
		wantNoErr(t, "ServerFence by the owner after an update within the task", fence(b, s.ID, tokA))
		wantEqual(t, "server after update", b.getServer(t, projA, s.ID), s)
	})

	t.Run("UpdateClearsOwner", func(t *testing.T) {
		t.Parallel()
		b, s := setupOwned(t)
		s.TaskState, s.TaskJobID = ecs.TaskNone, ""
		b.updateServer(t, s)
		wantErr(t, "ServerFence after the task ended", fence(b, s.ID, tokA), ecs.ErrFenced)
		// Setting the same job back does not give the old run its ownership back.
		s.TaskState, s.TaskJobID = ecs.TaskRebuilding, "job-1"
		b.updateServer(t, s)
		wantErr(t, "ServerFence after the task was set again", fence(b, s.ID, tokA), ecs.ErrFenced)
		b.write(t, func(tx store.Tx) error { return tx.ServerSetOwner(b.ctx, s.ID, "job-1", tokB) })
		wantNoErr(t, "ServerFence by a new owner", fence(b, s.ID, tokB))
	})

	t.Run("FenceAbortsWrite", func(t *testing.T) {
		t.Parallel()
		b, s := setupOwned(t)
		err := b.writeErr(func(tx store.Tx) error {
			if err := tx.ServerFence(b.ctx, s.ID, tokB); err != nil {
				return err
			}
			s.Name = "should not happen"
			return tx.ServerUpdate(b.ctx, &s)
		})
		wantErr(t, "Write fenced by ServerFence", err, ecs.ErrFenced)
		if got := b.getServer(t, projA, s.ID); got.Name != "a" {
			t.Fatalf("name after a fenced Write = %q, want %q", got.Name, "a")
		}
	})
}

// Keys no row can have (a NUL byte, invalid UTF-8: PostgreSQL's TEXT holds
// neither) are looked up like any missing key, and metadata values with
// such bytes round-trip: the API passes what clients send.
func testOddText(t *testing.T, open opener) {
	b := setup(t, open)
	s := fullServer("srv-a", projA)
	s.Metadata = map[string]string{"nul": "a\x00b", "bad": "\xff\xfe", "ok": "ünïcode"}
	b.insertServers(t, s)
	got := b.getServer(t, projA, s.ID)
	want := s
	want.Metadata = map[string]string{"nul": "a\x00b", "bad": "\uFFFD\uFFFD", "ok": "ünïcode"} // JSON makes invalid UTF-8 valid
	wantEqual(t, "server with odd metadata", got, want)

	for _, key := range []string{"a\x00b", "\xff", "srv-a\x00"} {
		_, err := b.s.CredentialGet(b.ctx, key)
		wantErr(t, fmt.Sprintf("CredentialGet(%q)", key), err, ecs.ErrNotFound)
		_, err = b.s.ImageGet(b.ctx, key)
		wantErr(t, fmt.Sprintf("ImageGet(%q)", key), err, ecs.ErrNotFound)
		_, err = b.s.ServerGet(b.ctx, projA, key)
		wantErr(t, fmt.Sprintf("ServerGet(%q)", key), err, ecs.ErrNotFound)
		_, err = b.s.ServerGet(b.ctx, key, s.ID)
		wantErr(t, fmt.Sprintf("ServerGet in project %q", key), err, ecs.ErrNotFound)
		_, err = b.s.VolumeGet(b.ctx, key)
		wantErr(t, fmt.Sprintf("VolumeGet(%q)", key), err, ecs.ErrNotFound)
		_, err = b.s.KeypairGet(b.ctx, projA, userA, key)
		wantErr(t, fmt.Sprintf("KeypairGet(%q)", key), err, ecs.ErrNotFound)
		_, err = b.s.JobGet(b.ctx, projA, key)
		wantErr(t, fmt.Sprintf("JobGet(%q)", key), err, ecs.ErrNotFound)
		list, n, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, Name: key})
		wantNoErr(t, fmt.Sprintf("ServerList(name %q)", key), err)
		if n != 0 || len(list) != 0 {
			t.Fatalf("ServerList(name %q) = %d, %v; want nothing", key, n, serverIDs(list))
		}
		kps, err := b.s.KeypairList(b.ctx, key, userA)
		wantNoErr(t, fmt.Sprintf("KeypairList(%q)", key), err)
		if len(kps) != 0 {
			t.Fatalf("KeypairList(%q) = %v", key, kps)
		}
		b.write(t, func(tx store.Tx) error {
			_, err := tx.ServerGetByID(b.ctx, key)
			wantErr(t, fmt.Sprintf("Tx.ServerGetByID(%q)", key), err, ecs.ErrNotFound)
			_, err = tx.JobGetByID(b.ctx, key)
			wantErr(t, fmt.Sprintf("Tx.JobGetByID(%q)", key), err, ecs.ErrNotFound)
			_, err = tx.VolumeGet(b.ctx, key)
			wantErr(t, fmt.Sprintf("Tx.VolumeGet(%q)", key), err, ecs.ErrNotFound)
			_, err = tx.KeypairGet(b.ctx, projA, userA, key)
			wantErr(t, fmt.Sprintf("Tx.KeypairGet(%q)", key), err, ecs.ErrNotFound)
			return nil
		})
		err = b.writeErr(func(tx store.Tx) error { return tx.KeypairDelete(b.ctx, projA, userA, key) })
		wantErr(t, fmt.Sprintf("KeypairDelete(%q)", key), err, ecs.ErrNotFound)
		b.write(t, func(tx store.Tx) error {
			if err := tx.ServerDelete(b.ctx, key); err != nil {
				return err
			}
			return tx.VolumeDelete(b.ctx, key)
		})
	}
}
