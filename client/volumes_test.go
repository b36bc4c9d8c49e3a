package client

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// volumes is a ListVolumes reply holding the volumes named prefix0..n-1.
func volumes(prefix string, n int) reply {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf(`{"id":"%s%d"}`, prefix, i)
	}
	return ok(`{"volumes":[` + strings.Join(ids, ",") + `]}`)
}

// TestListVolumesPages: ListVolumes asks for pages of 1000 after the last
// volume it has until a page is short, so a project with more volumes
// than one page lists them all.
func TestListVolumesPages(t *testing.T) {
	t.Parallel()
	c, f := setup(t, volumes("a", 1000), volumes("b", 1000), volumes("c", 3))
	got, err := c.ListVolumes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2003 || got[0].ID != "a0" || got[2002].ID != "c2" {
		t.Fatalf("listed %d volumes", len(got))
	}
	reqs := f.requests()
	want := []string{"limit=1000", "limit=1000&marker=a999", "limit=1000&marker=b999"}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, r := range reqs {
		if r.Query != want[i] || !strings.HasSuffix(r.EscapedPath, "/cloudvolumes/detail") {
			t.Errorf("request %d: %s?%s, want .../cloudvolumes/detail?%s", i, r.EscapedPath, r.Query, want[i])
		}
	}
}
