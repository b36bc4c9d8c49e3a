package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// A change to credentials or images committed through one node is told of,
// with its topic, to the change listener of another; a rolled-back one is
// not; a (re)connection is told of with "".
func TestChangeListenTellsOtherNode(t *testing.T) {
	t.Parallel()
	dsn := freshDB(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	topics := make(chan string, 64)
	done := make(chan error, 1)
	go func() { done <- b.ChangeListen(ctx, func(topic string) { topics <- topic }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("ChangeListen ended with %v, want context.Canceled", err)
		}
	})
	next := func(what string) string {
		t.Helper()
		select {
		case topic := <-topics:
			return topic
		case <-time.After(30 * time.Second):
			t.Fatalf("no change told of: %s", what)
			return ""
		}
	}
	if got := next("connect"); got != "" {
		t.Fatalf("first call %q, want \"\" (connected)", got)
	}

	w := t.Context()
	// Rolled back: nothing told of.
	if err := a.Write(w, func(tx store.Tx) error {
		if err := tx.CredentialInsert(w, store.SealedCredential{AccessKey: "AKROLLEDBACK", SealedSecret: []byte{1}, ProjectID: "p", UserID: "u"}); err != nil {
			return err
		}
		return errRollback
	}); err != errRollback {
		t.Fatal(err)
	}
	if err := a.Write(w, func(tx store.Tx) error {
		return tx.CredentialInsert(w, store.SealedCredential{AccessKey: "AK1", SealedSecret: []byte{1}, ProjectID: "p", UserID: "u", Created: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if got := next("credential insert"); got != store.TopicCredentials {
		t.Fatalf("after a credential insert: %q, want %q", got, store.TopicCredentials)
	}
	img := ecs.Image{ID: "img-1", Name: "v1", Status: "active", Created: time.Now()}
	if err := a.ImageUpsert(w, img); err != nil {
		t.Fatal(err)
	}
	if got := next("image insert"); got != store.TopicImages {
		t.Fatalf("after an image insert: %q, want %q", got, store.TopicImages)
	}
	img.Name = "v2"
	if err := a.ImageUpsert(w, img); err != nil {
		t.Fatal(err)
	}
	if got := next("image update"); got != store.TopicImages {
		t.Fatalf("after an image update: %q, want %q", got, store.TopicImages)
	}
	select {
	case got := <-topics:
		t.Fatalf("unexpected change %q (the rolled-back insert?)", got)
	default:
	}
}
