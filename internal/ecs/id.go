package ecs

import "fmt"

// MaxIDLen is the longest id ValidID accepts.
const MaxIDLen = 128

// ValidID reports whether id can be the id of a resource (server, volume or
// disk, image, job): 1 to MaxIDLen characters of ASCII letters, digits, '.',
// '_' and '-', not starting with '.' or '-'. The service makes UUIDs and hex
// job ids, which pass; the rule is what makes an id safe as a file name
// (no '/', not "." or ".."), on a command line (no leading '-', no ',' of
// QEMU options) and in a message (printable, short).
//
// It is the one id rule: the service answers an id that fails it as it
// answers an unknown one, and the compute drivers refuse it.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen || id[0] == '.' || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckID returns nil for a valid id (see ValidID), else an error wrapping
// ErrInvalid that names what the id is of ("disk", "server").
func CheckID(what, id string) error {
	if ValidID(id) {
		return nil
	}
	if len(id) > MaxIDLen {
		id = id[:MaxIDLen] + "..."
	}
	return fmt.Errorf("invalid %s id %q: %w", what, id, ErrInvalid)
}
