package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// LooseString is a wire field the contract types as a string but that some
// servers send as a number (flavor vcpus, ram, disk). It decodes from a JSON
// string, a number (kept as written) or null (""); it encodes as a string.
type LooseString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *LooseString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = LooseString(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %.40s", b)
	}
	*s = LooseString(n)
	return nil
}

// LooseInt is a wire field that holds an integer sent either as a JSON number
// or as a decimal string (the flavor list gives vcpus as "1" and ram as
// 1024). null and "" decode as 0. It encodes as a number.
type LooseInt int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *LooseInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	text := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
		text = strings.TrimSpace(text)
		if text == "" {
			*n = 0
			return nil
		}
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer, got %.40s", b)
	}
	*n = LooseInt(v)
	return nil
}
