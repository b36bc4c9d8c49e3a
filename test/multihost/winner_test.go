package multihost

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
)

// TestOneWinnerAcrossNodes: 50 concurrent reinstalls of one server, sent
// through all three nodes, give exactly one job; the others are refused
// as busy (Ecs.0603), never with another error.
func TestOneWinnerAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := startCluster(t, nodes, "", nil, "--sim-latency", simLatency)
	clients := clientsOf(c)
	imageID := linuxImage(ctx, t, clients[0])
	job, ids, err := clients[0].CreateServers(ctx, createRequest("winner", imageID, 1))
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(ctx, t, clients, []string{job})

	const tries = 50
	var (
		mu      sync.Mutex
		winners []string
		start   = make(chan struct{})
		wg      sync.WaitGroup
	)
	for i := range tries {
		cl := clients[i%len(clients)]
		wg.Go(func() {
			<-start
			job, err := cl.ReinstallServer(ctx, ids[0], client.ReinstallOptions{AdminPass: adminPass, Mode: client.ModeWithStopServer})
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, job)
				mu.Unlock()
			case client.IsCode(err, "Ecs.0603"): // busy: Huawei answers it with 501
			default:
				t.Errorf("reinstall through %s: %v; want a job or Ecs.0603 (busy)", cl.Config().Endpoint, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d concurrent reinstalls through %d nodes gave %d jobs %v; want exactly 1", tries, len(clients), len(winners), winners)
	}
	mustSucceed(ctx, t, clients, winners)
	checkJournals(t, c.journals(t))
}
