package multihost

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/client"
)

// TestOneWinnerAcrossNodes: 50 concurrent reinstalls of one server, sent
// through all three nodes, give exactly one job; the others are refused
// with a client error (the server is busy), never a server error.
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
			var ae *client.APIError
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, job)
				mu.Unlock()
			case errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Code != "":
			default:
				t.Errorf("reinstall through %s: %v; want a job or a client error with a code", cl.Config().Endpoint, err)
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
