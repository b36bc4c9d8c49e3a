package store

import (
	"crypto/sha256"
	"encoding/hex"
)

// Servers made before issue 11 have one address (ecs.Server.Addr), no
// NICs and no subnet: they were created before the per-subnet allocator,
// and almost all of them got 192.168.1.2. A migration of each store puts
// each such address in the address table (ports), with subnet "" (outside
// every subnet's pool) and the port id LegacyPortID, the one the API has
// shown for it since issue 11. Where servers of a project share an
// address, the oldest server's goes in ports (whose unique index is the
// allocator's guard) and the others' in address_conflicts: the ip filters
// look in both, so every such server is found, and the conflicts stay on
// record for an operator.

// LegacyPortID is the stable port id of the one NIC of a server made
// before issue 11: a version-4-shaped UUID from the SHA-256 of "port:" and
// the server id. The store migrations compute the same in SQL.
func LegacyPortID(serverID string) string {
	sum := sha256.Sum256([]byte("port:" + serverID))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
