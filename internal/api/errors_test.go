package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
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
		{ecs.Errorf(ecs.CodeKeypairExists, "m"), 409, "Ecs.0314", false},
		{ecs.Errorf(ecs.CodeAuth, "m"), 401, "APIGW.0301", true},
		{ecs.Errorf(ecs.CodeResourceNotFound, "m"), 404, "APIGW.0101", true},
		{ecs.Errorf(ecs.CodeMethodNotAllowed, "m"), 405, "APIGW.0101", true},
		{ecs.Errorf(ecs.CodeBodyTooLarge, "m"), 413, "Ecs.0005", false},
		{fmt.Errorf("wrapped: %w", ecs.Errorf(ecs.CodeLocked, "m")), 400, "Ecs.0605", false},
		{errors.New("database on fire"), 500, "Common.0001", false},
		// The database out of reach, however the service wrapped it.
		{ecs.Wrap(ecs.CodeSystem, fmt.Errorf("%w: dial tcp: connection refused", store.ErrUnavailable), "Failed to query."), 503, "Common.0503", false},
		{fmt.Errorf("list: %w", store.ErrUnavailable), 503, "Common.0503", false},
		// A bare kind is a sentinel from below the service: not for clients.
		{fmt.Errorf("row: %w", ecs.ErrNotFound), 500, "Common.0001", false},
		{ecs.Errorf(ecs.Code{Wire: "Nope.1234"}, "m"), 500, "Common.0001", false},
		{ecs.Errorf(ecs.Code{Kind: ecs.ErrInternal, Wire: "Ecs.0005"}, "m"), 500, "Common.0001", false},
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
	// A cause is never shown, nor an internal error's message.
	_, _, msg, _ := wireError(ecs.Wrap(ecs.CodeSystem, errors.New("secret-cause"), "public"))
	if msg != systemMessage {
		t.Fatalf("internal message shown: %q", msg)
	}
	_, _, msg, _ = wireError(ecs.Wrap(ecs.CodeInvalidParam, errors.New("secret-cause"), "public"))
	if msg != "public" {
		t.Fatalf("message %q", msg)
	}
}

// TestEveryCodeOnTheWire pins the status and wire code of every code the
// service declares: a new code must be added here, with its status checked
// against Huawei's table.
func TestEveryCodeOnTheWire(t *testing.T) {
	t.Parallel()
	want := map[ecs.Code]struct {
		status int
		wire   string
	}{
		ecs.CodeInvalidParam:           {400, "Ecs.0005"},
		ecs.CodeEmptyBody:              {400, "Common.0002"},
		ecs.CodePasswordComplexity:     {400, "Ecs.0011"},
		ecs.CodeKeypairNotFound:        {400, "Ecs.0314"},
		ecs.CodeKeypairMissing:         {404, "Ecs.0314"},
		ecs.CodeKeypairExists:          {409, "Ecs.0314"},
		ecs.CodeBadState:               {400, "Ecs.0100"},
		ecs.CodeNoSystemDisk:           {400, "Ecs.0105"},
		ecs.CodeLocked:                 {400, "Ecs.0605"},
		ecs.CodeTaskRunning:            {501, "Ecs.0603"},
		ecs.CodeServerNotFound:         {404, "Ecs.0114"},
		ecs.CodeImageNotFound:          {400, "Ecs.0031"},
		ecs.CodeImageNotActive:         {400, "Ecs.0032"},
		ecs.CodeImageAttributes:        {400, "Ecs.0007"},
		ecs.CodeFlavorNotFound:         {400, "Ecs.0029"},
		ecs.CodeFlavorNotFitImage:      {400, "Ecs.0008"},
		ecs.CodeProjectMismatch:        {400, "Ecs.0023"},
		ecs.CodeTooManyServers:         {400, "Ecs.0913"},
		ecs.CodeNameTooLong:            {400, "Ecs.0914"},
		ecs.CodeAddressTaken:           {400, "Ecs.0010"},
		ecs.CodeSubnetFull:             {400, "Ecs.0012"},
		ecs.CodeAddressOutside:         {400, "Ecs.0039"},
		ecs.CodeVPCSubnetDiffer:        {400, "Ecs.0064"},
		ecs.CodeGlanceImageNotFound:    {404, "Ecs.0031"},
		ecs.CodeNameInvalid:            {400, "Ecs.0915"},
		ecs.CodeJobNotFound:            {400, "Common.0011"},
		ecs.CodeSystem:                 {500, "Common.0001"},
		ecs.CodeResourceNotFound:       {404, "APIGW.0101"},
		ecs.CodeMethodNotAllowed:       {405, "APIGW.0101"},
		ecs.CodeAuth:                   {401, "APIGW.0301"},
		ecs.CodeBodyTooLarge:           {413, "Ecs.0005"},
		ecs.CodeSubmitFailed:           {400, "Ecs.0002"},
		ecs.CodeNoCapacity:             {400, "Ecs.0319"},
		ecs.CodeSystemDiskAbnormal:     {400, "Ecs.0101"},
		ecs.CodeCreateSystemDiskFailed: {400, "Ecs.0202"},
		ecs.CodeCreateServerFailed:     {400, "Ecs.0204"},
		ecs.CodeStartFailed:            {400, "Ecs.0226"},
		ecs.CodeRebootFailed:           {400, "Ecs.0227"},
		ecs.CodeDeleteFailed:           {400, "Ecs.0501"},
		ecs.CodeTaskFailed:             {400, "Common.0022"},
		ecs.CodeClientTokenReused:      {400, "Ecs.0122"},
		ecs.CodeClientTokenInvalid:     {400, "Ecs.0123"},
		ecs.CodeClientTokenExpired:     {400, "Ecs.0124"},
		ecs.CodeVolumeNotAttached:      {400, "Ecs.0111"},
		ecs.CodeVolumeOtherHost:        {400, "Ecs.0121"},
		ecs.CodeTooManyVolumes:         {400, "Ecs.0104"},
		ecs.CodeVolumeUnavailable:      {400, "Ecs.0103"},
		ecs.CodeVolumeNotFound:         {404, "Ecs.0103"},
		ecs.CodeVolumeNoRoom:           {400, "Ecs.0021"},
	}
	for _, c := range ecs.Codes() {
		w, ok := want[c]
		if !ok {
			t.Errorf("%s (%s) is not pinned here", c.Wire, c.Kind)
			continue
		}
		status, code, _, _ := wireError(ecs.Errorf(c, "m"))
		if status != w.status || code != w.wire {
			t.Errorf("%s (%s): sent as %d %s, want %d %s", c.Wire, c.Kind, status, code, w.status, w.wire)
		}
	}
	if len(want) != len(ecs.Codes()) {
		t.Errorf("%d codes pinned, %d declared", len(want), len(ecs.Codes()))
	}
}

func TestErrorTable(t *testing.T) {
	t.Parallel()
	valid := func(s int) bool { return s >= 400 && s <= 599 && http.StatusText(s) != "" }
	for _, k := range ecs.Kinds() {
		if s, ok := kindStatus[k]; !ok || !valid(s) {
			t.Errorf("kind %s: status %d", k, s)
		}
	}
	for c, s := range statusOverrides {
		if !valid(s) {
			t.Errorf("%s: status %d", c, s)
		}
		if s == kindStatus[c.Kind] {
			t.Errorf("%s: the override %d is its kind's status", c, s)
		}
		if c.Kind == ecs.ErrInternal {
			t.Errorf("%s: an internal code is always 500", c)
		}
	}
	// Only the API gateway's codes use its body shape.
	for _, c := range ecs.Codes() {
		_, _, _, gateway := wireError(ecs.Errorf(c, "m"))
		if gateway != strings.HasPrefix(c.Wire, "APIGW.") {
			t.Errorf("%s: gateway body %v", c, gateway)
		}
	}
}
