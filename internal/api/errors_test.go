package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
)

func TestWireError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err     error
		status  int
		code    string
		gateway bool
	}{
		{ecs.Errorf(ecs.CodeInvalidParam, "m"), 400, "Ecs.0005", false},
		{ecs.Errorf(ecs.CodeTaskRunning, "m"), 501, "Ecs.0603", false},
		{ecs.Errorf(ecs.CodeServerNotFound, "m"), 404, "Ecs.0114", false},
		{ecs.Errorf(ecs.CodeKeypairMissing, "m"), 404, "Ecs.0314", false},
		{ecs.Errorf(ecs.CodeKeypairNotFound, "m"), 400, "Ecs.0314", false},
		{ecs.Errorf(ecs.CodeAuth, "m"), 401, "APIGW.0301", true},
		{ecs.Errorf(ecs.CodeBodyTooLarge, "m"), 413, "Ecs.0005", false},
		{fmt.Errorf("wrapped: %w", ecs.Errorf(ecs.CodeLocked, "m")), 400, "Ecs.0605", false},
		{errors.New("database on fire"), 500, "Common.0001", false},
		{ecs.Errorf(ecs.Code("Nope.1234"), "m"), 500, "Common.0001", false},
	}
	for _, tt := range tests {
		status, code, msg, gateway := wireError(tt.err)
		if status != tt.status || code != tt.code || gateway != tt.gateway {
			t.Errorf("%v: got %d %s %v, want %d %s %v", tt.err, status, code, gateway, tt.status, tt.code, tt.gateway)
		}
		if msg == "" {
			t.Errorf("%v: empty message", tt.err)
		}
	}
	// A cause is never shown.
	_, _, msg, _ := wireError(ecs.Wrap(ecs.CodeSystem, errors.New("secret-cause"), "public"))
	if strings.Contains(msg, "secret-cause") {
		t.Fatalf("cause leaked: %q", msg)
	}
	_, _, msg, _ = wireError(ecs.Wrap(ecs.CodeInvalidParam, errors.New("secret-cause"), "public"))
	if msg != "public" {
		t.Fatalf("message %q", msg)
	}
}

func TestErrorTableStatuses(t *testing.T) {
	t.Parallel()
	for code, e := range errorTable {
		if e.status < 400 || e.status > 599 || http.StatusText(e.status) == "" {
			t.Errorf("%s: status %d", code, e.status)
		}
	}
}
