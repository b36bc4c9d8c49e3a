package store

import (
	"encoding/json"
	"fmt"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// serverDetails is the JSON kept in a server row's details column: what
// a create gives that no filter reads.
type serverDetails struct {
	Description    string   `json:"description,omitempty"`
	SecurityGroups []string `json:"security_groups,omitempty"`
	SealedUserData []byte   `json:"sealed_user_data,omitempty"`
}

// EncodeServerDetails returns the JSON text kept on a server's row for its
// description, security groups and sealed user data ("" for none).
func EncodeServerDetails(s *ecs.Server) string {
	d := serverDetails{Description: s.Description, SecurityGroups: s.SecurityGroups, SealedUserData: s.SealedUserData}
	if d.Description == "" && len(d.SecurityGroups) == 0 && len(d.SealedUserData) == 0 {
		return ""
	}
	b, _ := json.Marshal(d) // strings and bytes only: cannot fail
	return string(b)
}

// DecodeServerDetails sets a server's description, security groups and
// sealed user data from the JSON text of its row.
func DecodeServerDetails(s *ecs.Server, text string) error {
	if text == "" {
		return nil
	}
	var d serverDetails
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		return fmt.Errorf("server %s details: %w", s.ID, err)
	}
	s.Description, s.SecurityGroups, s.SealedUserData = d.Description, d.SecurityGroups, d.SealedUserData
	return nil
}
