package sqlite

import (
	"database/sql/driver"
	"fmt"

	"modernc.org/sqlite"

	"github.com/ecsproject/ecsd/internal/store"
)

// ecsd_legacy_port_id(server_id) is store.LegacyPortID in SQL, for the
// migration that puts the addresses of servers made before issue 11 in
// the address table (00011_legacy_addresses.sql).
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("ecsd_legacy_port_id", 1,
		func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			id, ok := args[0].(string)
			if !ok {
				return nil, fmt.Errorf("ecsd_legacy_port_id: server id %T, want text", args[0])
			}
			return store.LegacyPortID(id), nil
		})
}
