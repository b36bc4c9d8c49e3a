package testd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Binary builds ./cmd/ecsd once per process, into a temporary directory
// that Cleanup removes, and returns the path of the binary. Later calls
// return the same binary (or the same build error).
func Binary() (string, error) {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ecsd-testd-")
		if buildErr != nil {
			return
		}
		buildBin, buildErr = Build(context.Background(), buildDir)
	})
	return buildBin, buildErr
}

// Cleanup removes what Binary built. Call it from TestMain after m.Run.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Build builds ./cmd/ecsd of the source tree this package belongs to into
// dir and returns the binary's path. The compiler's output is in the error.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ecsd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ecsd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ecsd in %s: %v\n%s", root, err, out)
	}
	return bin, nil
}

// repoRoot returns the root of the ecsd source tree (the directory of its
// go.mod), found from this file's compile-time path.
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("testd: cannot locate the ecsd source tree")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "cmd", "ecsd")); err != nil {
		return "", fmt.Errorf("testd: no ecsd source tree at %s (built with -trimpath?): %w", root, err)
	}
	return root, nil
}
