package jobs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ecsproject/ecsd/internal/atomicfile"
)

// NodeIDFile is the name of the file, in a data dir, that keeps the node id.
const NodeIDFile = "node-id"

// NodeID returns the stable id of the node that owns dataDir: the lease
// owner of the jobs it runs, so that a restarted process takes back its own
// jobs at once. It is read from <dataDir>/node-id, which is made (mode
// 0600, a random 32-hex-digit id) on first use.
func NodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, NodeIDFile)
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil {
			id := strings.TrimSpace(string(b))
			if !validNodeID(id) {
				return "", fmt.Errorf("%s: not a node id (want 1-64 letters, digits, '-' or '_'); remove it to make a new one", path)
			}
			return id, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		var r [16]byte
		rand.Read(r[:])
		id := hex.EncodeToString(r[:])
		err = atomicfile.Create(path, []byte(id+"\n"), 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // made meanwhile: read it
		}
		if err != nil {
			return "", err
		}
		return id, nil
	}
	return "", fmt.Errorf("%s: cannot read or create it", path)
}

func validNodeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
