package multihost

import (
	"context"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/testd"
)

// cloudInitImage is the simulator's Ubuntu image with cloud-init (and a
// guest agent).
const cloudInitImage = "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e04"

// TestResetPasswordFlagAcrossNodes: os-resetpwd-flag is answered by the
// server's own host, whose node asks the guest agent, through whichever
// node receives it. node1's guest agents do not answer (a ping_agent
// fault): its servers' flag is False through every node, the others'
// True. Once node1 is killed, the other nodes answer False for its
// servers (its agents cannot be asked) and still True for their own.
func TestResetPasswordFlagAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := startCluster(t, nodes, "", func(i int, cfg *testd.Config) {
		if i == 0 {
			cfg.Args = append(cfg.Args, "--faults", "ping_agent=fail")
		}
	})
	clients := clientsOf(c)
	job, _, err := clients[1].CreateServers(ctx, createRequest("flag", cloudInitImage, 3*nodes))
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(ctx, t, clients, []string{job})
	servers, err := allServers(ctx, clients[0])
	if err != nil {
		t.Fatal(err)
	}
	silent := c.Node(0).Host()
	byHost := map[string]int{}
	for _, s := range servers {
		byHost[s.Host]++
	}
	if byHost[silent] == 0 || len(byHost) < 2 {
		t.Fatalf("servers by host %v: want some on %s and some elsewhere", byHost, silent)
	}

	check := func(via []int) {
		t.Helper()
		for _, s := range servers {
			for _, i := range via {
				ok, err := clients[i].ResetPasswordFlag(ctx, s.ID)
				if err != nil {
					t.Errorf("flag of %s (on %s) through %s: %v", s.ID, s.Host, c.Node(i).Host(), err)
					continue
				}
				want := s.Host != silent
				if ok != want {
					t.Errorf("flag of %s (on %s) through %s: %v, want %v", s.ID, s.Host, c.Node(i).Host(), ok, want)
				}
			}
		}
	}
	check([]int{0, 1, 2})

	if err := c.Node(0).Kill(); err != nil {
		t.Fatal(err)
	}
	check([]int{1, 2})
}
