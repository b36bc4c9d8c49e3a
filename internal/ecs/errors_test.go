package ecs

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestEveryCodeHasAKindAndAWireCode(t *testing.T) {
	t.Parallel()
	wire := regexp.MustCompile(`^(Ecs|Common|APIGW)\.[0-9]{4}$`)
	seen := map[Code]bool{}
	for _, c := range Codes() {
		if c.Kind == 0 || c.Kind >= kindLimit {
			t.Errorf("%s: no kind (%d)", c.Wire, c.Kind)
		}
		if !wire.MatchString(c.Wire) {
			t.Errorf("%s (%s): not a Huawei error code", c.Wire, c.Kind)
		}
		if seen[c] {
			t.Errorf("%s (%s) is declared twice", c.Wire, c.Kind)
		}
		seen[c] = true
	}
	if len(Codes()) < 30 {
		t.Fatalf("only %d codes declared", len(Codes()))
	}
}

func TestKindsHaveNames(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, k := range Kinds() {
		n := k.String()
		if n == "" || strings.HasPrefix(n, "kind(") || names[n] {
			t.Errorf("kind %d: name %q", k, n)
		}
		names[n] = true
	}
	if len(Kinds()) != int(kindLimit)-1 {
		t.Fatalf("Kinds() = %v", Kinds())
	}
}

// One wire code, three cases: a kind each, told apart by errors.Is.
func TestKindsAreSentinels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		kind Kind
	}{
		{Errorf(CodeKeypairMissing, "m"), ErrNotFound},
		{Errorf(CodeKeypairExists, "m"), ErrConflict},
		{Errorf(CodeKeypairNotFound, "m"), ErrInvalid},
		{fmt.Errorf("outer: %w", Errorf(CodeServerNotFound, "m")), ErrNotFound},
		{Errorf(CodeTaskRunning, "m"), ErrBusy},
		{Errorf(CodeBadState, "m"), ErrBadState},
		{Wrap(CodeSystem, errors.New("disk on fire"), "m"), ErrInternal},
		{fmt.Errorf("store: row %q: %w", "x", ErrNotFound), ErrNotFound},
		{CheckID("disk", "../x"), ErrInvalid},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.kind) {
			t.Errorf("errors.Is(%v, %s) = false", tt.err, tt.kind)
		}
		for _, k := range Kinds() {
			if k != tt.kind && errors.Is(tt.err, k) {
				t.Errorf("errors.Is(%v, %s) = true, want only %s", tt.err, k, tt.kind)
			}
		}
		if got := KindOf(tt.err); got != tt.kind {
			t.Errorf("KindOf(%v) = %s, want %s", tt.err, got, tt.kind)
		}
	}
	if KindOf(nil) != 0 || KindOf(errors.New("x")) != ErrInternal {
		t.Fatal("KindOf of nil or of a plain error")
	}
	if CodeOf(errors.New("x")) != CodeSystem || CodeOf(Errorf(CodeLocked, "m")) != CodeLocked {
		t.Fatal("CodeOf")
	}
	// The outer *Error says what the error is, whatever its cause.
	if err := Wrap(CodeStartFailed, fmt.Errorf("driver: %w", ErrNotFound), "m"); KindOf(err) != ErrFailed {
		t.Fatalf("KindOf(%v) = %s", err, KindOf(err))
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	err := Wrap(CodeKeypairExists, errors.New("cause"), "Key pair k already exists.")
	if got, want := err.Error(), "Ecs.0314 (conflict): Key pair k already exists.: cause"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if got := fmt.Sprint(CodeKeypairExists); got != "Ecs.0314" {
		t.Fatalf("Code prints as %q", got)
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"d1", "vol-3f2a.b_c", "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01", "0123456789abcdef0123456789abcdef",
		strings.Repeat("a", MaxIDLen)} {
		if !ValidID(id) || CheckID("disk", id) != nil {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	for _, id := range []string{"", ".", "..", "../d1", "a/b", "-x", ".hidden", "a b", "a,b", "d1\x00", "é",
		strings.Repeat("a", MaxIDLen+1)} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
		err := CheckID("disk", id)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "disk") {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
}

func FuzzValidID(f *testing.F) {
	f.Add("6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01")
	f.Add("../etc/passwd")
	f.Fuzz(func(t *testing.T, id string) {
		if !ValidID(id) {
			return
		}
		if strings.ContainsAny(id, "/,= \x00") || id == "." || id == ".." || strings.HasPrefix(id, "-") || len(id) > MaxIDLen {
			t.Fatalf("ValidID(%q) = true", id)
		}
	})
}
