package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "key")
	b, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", fi.Mode().Perm())
	}
	sealed := b.Seal([]byte("top-secret"))
	if bytes.Contains(sealed, []byte("top-secret")) {
		t.Fatal("sealed value contains the plain text")
	}
	b2, err := LoadOrCreate(path) // same key read back
	if err != nil {
		t.Fatal(err)
	}
	got, err := b2.Open(sealed)
	if err != nil || string(got) != "top-secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := b2.Open(sealed); err == nil {
		t.Fatal("tampered value opened")
	}
	other, _ := New(make([]byte, 32))
	if _, err := other.Open(b.Seal([]byte("x"))); err == nil {
		t.Fatal("opened with the wrong key")
	}
}
