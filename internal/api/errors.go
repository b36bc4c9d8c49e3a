package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// This file is the only place where errors meet HTTP: an *ecs.Error is sent
// with the Huawei code of its ecs.Code, and the HTTP status of the code's
// kind unless Huawei's error table gives that code another one.

// kindStatus is the HTTP status of each error kind.
var kindStatus = map[ecs.Kind]int{
	ecs.ErrInvalid:      http.StatusBadRequest,
	ecs.ErrNotFound:     http.StatusNotFound,
	ecs.ErrConflict:     http.StatusConflict,
	ecs.ErrBadState:     http.StatusConflict,
	ecs.ErrBusy:         http.StatusConflict,
	ecs.ErrLocked:       http.StatusConflict,
	ecs.ErrUnauthorized: http.StatusUnauthorized,
	ecs.ErrTooLarge:     http.StatusRequestEntityTooLarge,
	ecs.ErrNotAllowed:   http.StatusMethodNotAllowed,
	// Huawei answers a failed operation (Ecs.0002 task submission, the
	// Ecs.02xx job failures) with 400 and the code saying which.
	ecs.ErrFailed:   http.StatusBadRequest,
	ecs.ErrInternal: http.StatusInternalServerError,
}

// statusOverrides are the codes whose status in Huawei's error table
// (../shared/reference/ecs-error-codes.txt) is not their kind's.
var statusOverrides = map[ecs.Code]int{
	ecs.CodeBadState:     http.StatusBadRequest,
	ecs.CodeNoSystemDisk: http.StatusBadRequest,
	ecs.CodeLocked:       http.StatusBadRequest,
	ecs.CodeTaskRunning:  http.StatusNotImplemented,
	ecs.CodeJobNotFound:  http.StatusBadRequest,
}

// systemMessage is what a client is told of an internal error.
const systemMessage = "A system exception occurred. Try again later or contact customer service."

// While the database cannot be reached (a PostgreSQL server restarting, a
// network cut: store.ErrUnavailable), a call is answered 503 with this
// code and message, so that clients retry rather than report a failure.
// Huawei's table has no code for it: Common.0503 is our choice (see
// README).
const (
	unavailableCode    = "Common.0503"
	unavailableMessage = "The service is temporarily unavailable: its database cannot be reached. Try again later."
)

// statusOf returns the HTTP status of code; ok is false for a code of no
// known kind.
func statusOf(code ecs.Code) (status int, ok bool) {
	if s, ok := statusOverrides[code]; ok {
		return s, true
	}
	s, ok := kindStatus[code.Kind]
	return s, ok
}

// wireError returns the status, wire code and client message for err, and
// whether it goes in the API gateway's body shape
// ({"error_code","error_msg","request_id"}: the APIGW codes) rather than
// the ECS one. Anything but an *ecs.Error of a known, non-internal kind is
// a 500 Common.0001 with a fixed message.
func wireError(err error) (status int, code, message string, gateway bool) {
	if errors.Is(err, store.ErrUnavailable) {
		return http.StatusServiceUnavailable, unavailableCode, unavailableMessage, false
	}
	c := ecs.CodeOf(err)
	status, ok := statusOf(c)
	var e *ecs.Error
	if !ok || c.Kind == ecs.ErrInternal || !errors.As(err, &e) {
		return http.StatusInternalServerError, ecs.CodeSystem.Wire, systemMessage, false
	}
	return status, c.Wire, e.Message, strings.HasPrefix(c.Wire, "APIGW.")
}
