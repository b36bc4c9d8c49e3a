package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/ecsproject/ecsd/internal/atomicfile"
)

// entries lists dir's names, temporary files included.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteReplacesWithModeWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0o077) // not parallel: the umask is per process
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{{"one\n", 0o600}, {"two\n", 0o644}, {"", 0o444}} {
		if err := atomicfile.Write(path, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(b) != tc.data || fi.Mode().Perm() != tc.perm {
			t.Errorf("after Write(%q, %v): %q %v, mode %v", tc.data, tc.perm, b, err, fi.Mode().Perm())
		}
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("dir holds %v, want only f", names)
	}
}

// A failure (here at the rename: the target is a non-empty directory, and
// then in fill) leaves the target as it was and no temporary file.
func TestWriteFailureLeavesNoTemporary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(target, "keep"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(target, []byte("x"), 0o600); err == nil {
		t.Fatal("Write over a non-empty directory succeeded")
	}
	file := filepath.Join(dir, "f")
	if err := atomicfile.Write(file, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := atomicfile.WriteFunc(file, 0o600, func(f *os.File) error {
		f.WriteString("half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("WriteFunc with a failing fill: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "old" {
		t.Errorf("after a failed write the file holds %q", b)
	}
	if names := entries(t, dir); len(names) != 2 {
		t.Errorf("dir holds %v, want only d and f", names)
	}
	if err := atomicfile.Write(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}

// Create makes a file once; of concurrent callers one wins, the others get
// fs.ErrExist and the winner's content stays.
func TestCreateOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "id")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = atomicfile.Create(path, []byte{'a' + byte(i)}, 0o600) })
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won < 0:
			won = i
		case err == nil:
			t.Errorf("callers %d and %d both created the file", won, i)
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("caller %d: %v, want fs.ErrExist", i, err)
		}
	}
	b, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if won < 0 || string(b) != string(rune('a'+won)) || fi.Mode().Perm() != 0o600 {
		t.Errorf("winner %d, file %q mode %v", won, b, fi.Mode().Perm())
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("dir holds %v, want only id", names)
	}
}
