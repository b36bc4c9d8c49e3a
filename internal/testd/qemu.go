package testd

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// qemuTools are the programs the qemu driver and its tests run.
var qemuTools = []string{"qemu-system-x86_64", "qemu-storage-daemon", "qemu-img", "debugfs", "e2fsck", "mke2fs"}

// RequireQEMU fails t when a QEMU tool is missing, so that CI cannot pass
// without them; with ECS_SKIP_QEMU=1 (a machine that cannot have them) it
// skips t instead.
func RequireQEMU(t testing.TB) {
	t.Helper()
	var missing []string
	for _, b := range qemuTools {
		if Tool(b) == "" {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("ECS_SKIP_QEMU") == "1" {
		t.Skipf("ECS_SKIP_QEMU=1 and %v missing", missing)
	}
	t.Fatalf("%v not found: run scripts/install-qemu-deps.sh (as root), or set ECS_SKIP_QEMU=1 to skip QEMU tests", missing)
}

// Tool returns the path of program name: from PATH, else /usr/sbin or /sbin
// (not in a normal user's PATH); "" when there is none.
func Tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
