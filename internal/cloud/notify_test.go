package cloud_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// changeStore is one node's handle on a shared database whose
// ChangeListen delivers the topics sent on its channel (another node's
// commits).
type changeStore struct {
	*sqlite.Store
	topics    chan string
	listening chan struct{}
}

func (s *changeStore) ChangeListen(ctx context.Context, changed func(topic string)) error {
	close(s.listening)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case t := <-s.topics:
			changed(t)
		}
	}
}

var _ store.ChangeNotifier = (*changeStore)(nil)

// An image changed through one node is read, changed, through another
// that had it in memory, once the store tells of the change.
func TestImageChangeSeenByOtherNode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() *sqlite.Store {
		st, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(dir, "db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	box, err := secret.LoadOrCreate(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := cloud.New(cloud.Config{Store: open(), Box: box, Logger: quiet, NodeID: "node-a"})
	stB := &changeStore{Store: open(), topics: make(chan string), listening: make(chan struct{})}
	b := cloud.New(cloud.Config{Store: stB, Box: box, Logger: quiet, NodeID: "node-b"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-stB.listening:
	case <-time.After(30 * time.Second):
		t.Fatal("the service does not listen for other nodes' changes")
	}

	img := ecs.Image{ID: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", Name: "v1", OSType: "Linux", Status: "active",
		DiskFormat: "qcow2", MinDiskGB: 10, Created: time.Now().UTC().Truncate(time.Millisecond)}
	if err := a.AddImage(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetImage(t.Context(), img.ID); err != nil || got.Name != "v1" {
		t.Fatalf("GetImage on node b: %+v, %v", got, err)
	}
	img.Name, img.Status = "v2", "queued"
	if err := a.AddImage(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	stB.topics <- store.TopicImages // sent once the ChangeListen before has returned
	stB.topics <- store.TopicCredentials
	if got, err := b.GetImage(t.Context(), img.ID); err != nil || got.Name != "v2" || got.Status != "queued" {
		t.Fatalf("GetImage on node b after node a changed it: %+v, %v; want v2, queued", got, err)
	}

	// A credential made on node a is known on node b at once after the
	// store told of it (the keyring's own refresh is a second away).
	if _, ok := b.LookupSecret(t.Context(), "NOSUCHKEY"); ok {
		t.Fatal("an unknown key is known")
	}
	c, err := a.NewCredential(t.Context(), "other")
	if err != nil {
		t.Fatal(err)
	}
	stB.topics <- store.TopicCredentials
	stB.topics <- store.TopicImages
	if sk, ok := b.LookupSecret(t.Context(), c.AccessKey); !ok || sk != c.SecretKey {
		t.Fatalf("LookupSecret on node b of a key made on node a: ok=%v", ok)
	}
}
