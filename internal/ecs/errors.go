package ecs

import (
	"errors"
	"fmt"
)

// Code is a Huawei error code ("Ecs.0100", "Common.0011"); it is the kind of
// an Error. internal/api owns the table from Code to HTTP status.
type Code string

// Error codes used by the service. The names say what went wrong; the values
// are the codes of ../shared/reference/ecs-error-codes.txt.
const (
	CodeInvalidParam       Code = "Ecs.0005"
	CodeEmptyBody          Code = "Common.0002"
	CodePasswordComplexity Code = "Ecs.0011"
	CodeKeypairNotFound    Code = "Ecs.0314"
	// CodeKeypairMissing is a key pair show or delete of an unknown name:
	// Ecs.0314 on the wire, but 404 (internal/api maps it).
	CodeKeypairMissing     Code = "Ecs.0314/404"
	CodeBadState           Code = "Ecs.0100"
	CodeSystemDiskAbnormal Code = "Ecs.0101"
	CodeNoSystemDisk       Code = "Ecs.0105"
	CodeLocked             Code = "Ecs.0605"
	CodeTaskRunning        Code = "Ecs.0603"
	CodeServerNotFound     Code = "Ecs.0114"
	CodeImageNotFound      Code = "Ecs.0031"
	CodeImageNotActive     Code = "Ecs.0032"
	CodeImageAttributes    Code = "Ecs.0007"
	CodeFlavorNotFound     Code = "Ecs.0029"
	CodeProjectMismatch    Code = "Ecs.0023"
	CodeTooManyServers     Code = "Ecs.0913"
	CodeNameTooLong        Code = "Ecs.0914"
	CodeNameInvalid        Code = "Ecs.0915"
	CodeJobNotFound        Code = "Common.0011"
	CodeSystem             Code = "Common.0001"
	CodeResourceNotFound   Code = "Common.0404" // unknown route (our choice; see README)
	CodeMethodNotAllowed   Code = "Common.0405" // known route, wrong method (our choice)
	CodeKeypairExists      Code = "Ecs.0316"    // our choice; see README
	CodeAuth               Code = "APIGW.0301"
	CodeBodyTooLarge       Code = "Common.0413" // our choice; see README

	// Job failure codes (a job's error_code).
	CodeCreateSystemDiskFailed Code = "Ecs.0202"
	CodeCreateServerFailed     Code = "Ecs.0204"
	CodeStartFailed            Code = "Ecs.0226"
	CodeRebootFailed           Code = "Ecs.0227"
	CodeDeleteFailed           Code = "Ecs.0501"
	CodeSubmitFailed           Code = "Ecs.0002"
	CodeTaskFailed             Code = "Common.0022"
)

// Error is an error with a kind (Code) and a message that is safe to show to
// a client. Cause, when set, is for logs only and never leaves the process.
type Error struct {
	Code    Code
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an *Error of kind code with a client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind code whose cause is err (logged, not shown).
func Wrap(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Cause: err}
}

// CodeOf returns the kind of err, or CodeSystem when err carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeSystem
}

// Sentinel errors used below the service layer (store, drivers). The service
// turns them into *Error with the code the API call calls for.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrFenced means the caller no longer owns the resource it tried to
	// change: another worker took the job over. The caller must stop.
	ErrFenced = errors.New("fenced: ownership lost")
)
