// Package password holds the admin password rules of the reinstall API and
// the SHA-512 crypt hashing that keeps passwords out of storage.
//
// It promises:
//   - Validate accepts exactly the passwords the Huawei ECS rules allow:
//     8 to 26 characters from A-Z, a-z, 0-9 and !@$%^-_=+[{}]:,./?~#*, with
//     at least three of those four classes; for Windows images also no
//     "Administrator", no "rotartsinimda" and no run of three or more
//     consecutive characters of "administrator" (all case-insensitive).
//   - A rejection is an *ecs.Error of kind ecs.CodePasswordComplexity whose
//     message is one fixed sentence per rule: no part of the password can
//     reach a client or a log through it.
//   - ValidateLimits accepts the passwords of 8 to 26 characters from that
//     set, without the class and Windows rules (is_check_password false).
//   - Hash returns a glibc-compatible "$6$salt$hash" string (16-character
//     random salt, 5000 rounds, rounds= omitted) that crypt(3), chpasswd -e
//     and cloud-init accept; Verify checks a password against such a hash in
//     constant time.
package password

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/go-crypt/crypt/algorithm/shacrypt"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// Length limits, in characters.
const (
	MinLen = 8
	MaxLen = 26
)

// Specials are the special characters a password may contain.
const Specials = "!@$%^-_=+[{}]:,./?~#*"

// windowsUser is the account whose name Windows passwords must avoid.
const windowsUser = "administrator"

// Rejection messages, one per rule. They are constants so that nothing from
// the password can ever flow into them.
const (
	msgLength     = "the password must be 8 to 26 characters long"
	msgCharset    = "the password may contain only letters, digits and the special characters " + Specials
	msgClasses    = "the password must contain at least three of: upper-case letters, lower-case letters, digits, special characters"
	msgWinUser    = "a Windows password must not contain the user name Administrator"
	msgWinReverse = "a Windows password must not contain the user name Administrator reversed"
	msgWinRun     = "a Windows password must not contain three or more consecutive characters of the user name Administrator"
)

// Validate checks an admin password against the reinstall rules. windows selects the extra Windows rules.
// It returns nil or an *ecs.Error with Code ecs.CodePasswordComplexity ("Ecs.0011") whose Message names
// the rule broken and NEVER contains the password or any part of it.
func Validate(pw string, windows bool) error {
	if err := ValidateLimits(pw); err != nil {
		return err
	}
	var upper, lower, digit, special bool
	for i := 0; i < len(pw); i++ {
		switch c := pw[i]; {
		case 'A' <= c && c <= 'Z':
			upper = true
		case 'a' <= c && c <= 'z':
			lower = true
		case '0' <= c && c <= '9':
			digit = true
		case strings.IndexByte(Specials, c) >= 0:
			special = true
		}
	}
	if count(upper)+count(lower)+count(digit)+count(special) < 3 {
		return reject(msgClasses)
	}
	if windows {
		// pw is ASCII from here on, so byte-wise lower-casing is exact.
		lc := strings.ToLower(pw)
		switch {
		case strings.Contains(lc, windowsUser):
			return reject(msgWinUser)
		case strings.Contains(lc, reverse(windowsUser)):
			return reject(msgWinReverse)
		}
		// Every run of three or more contains a run of exactly three.
		for i := 0; i+3 <= len(windowsUser); i++ {
			if strings.Contains(lc, windowsUser[i:i+3]) {
				return reject(msgWinRun)
			}
		}
	}
	return nil
}

// ValidateLimits checks only the limits that hold whatever a caller asks:
// 8 to 26 characters, each a letter, a digit or one of Specials (so that
// nothing a shell, a config file or a log treats specially gets in). It
// is what a password reset with is_check_password false checks; Validate
// checks it first. Its errors are Validate's.
func ValidateLimits(pw string) error {
	if n := utf8.RuneCountInString(pw); n < MinLen || n > MaxLen {
		return reject(msgLength)
	}
	for i := 0; i < len(pw); i++ {
		if c := pw[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte(Specials, c) >= 0) {
			return reject(msgCharset) // includes every byte of a non-ASCII character
		}
	}
	return nil
}

func reject(msg string) error {
	return &ecs.Error{Code: ecs.CodePasswordComplexity, Message: msg}
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// saltLen is glibc's maximum SHA-crypt salt length.
const saltLen = 16

func hasher() (*shacrypt.Hasher, error) {
	return shacrypt.New(
		shacrypt.WithSHA512(),
		shacrypt.WithIterations(shacrypt.IterationsDefaultOmitted),
		shacrypt.WithSaltLength(saltLen),
	)
}

// Hash returns a SHA-512 crypt ($6$) hash with a random 16-char salt and default 5000 rounds (rounds= omitted, like glibc).
// It hashes any string; call Validate first to enforce the rules.
func Hash(pw string) (string, error) {
	h, err := hasher()
	if err != nil {
		return "", fmt.Errorf("password: sha-512 crypt hasher: %w", err)
	}
	d, err := h.Hash(pw)
	if err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	return d.Encode(), nil
}

// hashWithSalt is Hash with a chosen salt, for known-answer tests.
func hashWithSalt(pw, salt string) (string, error) {
	h, err := hasher()
	if err != nil {
		return "", err
	}
	d, err := h.HashWithSalt(pw, []byte(salt))
	if err != nil {
		return "", err
	}
	return d.Encode(), nil
}

var decodeSHA512 = shacrypt.DecodeVariant(shacrypt.VariantSHA512)

// Verify reports whether pw matches a $6$ hash (constant time).
// A hash that is not a well-formed SHA-512 crypt string matches nothing.
func Verify(hash, pw string) bool {
	if !strings.HasPrefix(hash, "$6$") {
		return false
	}
	d, err := decodeSHA512(hash)
	if err != nil {
		return false
	}
	return d.Match(pw)
}
