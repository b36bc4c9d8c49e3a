package storetest

import (
	"slices"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// testServerDetails checks a server's description, security groups and
// sealed user data (kept by insert, changed by update, read back by every
// read) and the project tag list.
func testServerDetails(t *testing.T, open opener) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		a := plainServer("srv-a", projA, "a", 0)
		a.Description, a.SecurityGroups, a.SealedUserData = "web <tier>", []string{"sg-1", "sg-2"}, []byte{0, 1, 2, 0xff}
		bare := plainServer("srv-bare", projA, "bare", 1)
		b.insertServers(t, a, bare)
		check := func(want ecs.Server) {
			t.Helper()
			got, err := b.s.ServerGet(b.ctx, projA, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Description != want.Description || !slices.Equal(got.SecurityGroups, want.SecurityGroups) ||
				!slices.Equal(got.SealedUserData, want.SealedUserData) {
				t.Errorf("%s: got %q %q %x, want %q %q %x", want.ID, got.Description, got.SecurityGroups, got.SealedUserData,
					want.Description, want.SecurityGroups, want.SealedUserData)
			}
			list, _, err := b.s.ServerList(b.ctx, store.ServerListParams{ProjectID: projA, ServerIDs: []string{want.ID}})
			if err != nil || len(list) != 1 || list[0].Description != want.Description {
				t.Errorf("%s listed: %v %v", want.ID, list, err)
			}
		}
		check(a)
		check(bare)
		// An update writes the description; the rest stays.
		b.write(t, func(tx store.Tx) error {
			s, err := tx.ServerGet(b.ctx, projA, "srv-a")
			if err != nil {
				return err
			}
			s.Description = ""
			s.Name = "renamed"
			return tx.ServerUpdate(b.ctx, &s)
		})
		a.Description = ""
		check(a)
	})
	t.Run("TagList", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		x := plainServer("srv-x", projA, "x", 0)
		x.Tags = []ecs.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: ""}}
		y := plainServer("srv-y", projA, "y", 1)
		y.Tags = []ecs.Tag{{Key: "env", Value: "dev"}, {Key: "Zone", Value: "b"}}
		z := plainServer("srv-z", projA, "z", 2)
		z.Tags = []ecs.Tag{{Key: "env", Value: "prod"}}
		other := plainServer("srv-o", projB, "o", 3)
		other.Tags = []ecs.Tag{{Key: "secret", Value: "b"}}
		b.insertServers(t, x, y, z, other)
		got, err := b.s.ServerTagList(b.ctx, projA)
		if err != nil {
			t.Fatal(err)
		}
		want := []ecs.Tag{{Key: "Zone", Value: "b"}, {Key: "env", Value: "dev"}, {Key: "env", Value: "prod"}, {Key: "team"}}
		if !slices.Equal(got, want) {
			t.Errorf("ServerTagList = %v, want %v", got, want)
		}
		if got, err := b.s.ServerTagList(b.ctx, "no-project"); err != nil || len(got) != 0 {
			t.Errorf("ServerTagList of no project = %v, %v", got, err)
		}
	})
}
