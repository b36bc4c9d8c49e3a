package ecs

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// Kind says what went wrong, apart from how a client is told: the API edge
// (internal/api) maps each kind to an HTTP status, and a Code pairs a kind
// with the Huawei code sent. A Kind is an error itself, so the kinds are
// also the sentinel errors of the store and the compute drivers:
// errors.Is(err, ecs.ErrNotFound) holds for an error wrapping ErrNotFound and
// for an *Error whose Code is of kind ErrNotFound.
type Kind uint8

// The kinds. The zero Kind is no kind; the edge treats it as ErrInternal.
const (
	// ErrInvalid: the request is malformed, or names something that does not
	// exist or cannot be used (an unknown image or key pair in a body).
	ErrInvalid Kind = iota + 1
	// ErrNotFound: the resource the call addresses does not exist (or is not
	// the caller's).
	ErrNotFound
	// ErrConflict: the call clashes with another resource: a name taken, an
	// id that exists with other content, a disk in use by another server.
	ErrConflict
	// ErrBadState: the resource's state does not allow the call (a running
	// server's disk, a stopped server rebooted, a server without a disk).
	ErrBadState
	// ErrBusy: another task runs on the resource; the call may succeed later.
	ErrBusy
	// ErrLocked: the resource is locked against changes.
	ErrLocked
	// ErrUnauthorized: the caller is not authenticated.
	ErrUnauthorized
	// ErrTooLarge: the request is larger than allowed.
	ErrTooLarge
	// ErrNotAllowed: the method is not allowed on the resource.
	ErrNotAllowed
	// ErrFailed: an operation on a resource failed (a job step); its Code
	// says which, and its message is shown.
	ErrFailed
	// ErrInternal: a fault of the service. Its message is never shown.
	ErrInternal

	kindLimit = iota + 1 // one past the last kind
)

var kindNames = [...]string{
	ErrInvalid:      "invalid",
	ErrNotFound:     "not found",
	ErrConflict:     "conflict",
	ErrBadState:     "bad state",
	ErrBusy:         "busy",
	ErrLocked:       "locked",
	ErrUnauthorized: "unauthorized",
	ErrTooLarge:     "too large",
	ErrNotAllowed:   "not allowed",
	ErrFailed:       "failed",
	ErrInternal:     "internal",
}

// Kinds returns every kind.
func Kinds() []Kind {
	out := make([]Kind, 0, kindLimit)
	for k := Kind(1); k < kindLimit; k++ {
		out = append(out, k)
	}
	return out
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func (k Kind) Error() string { return k.String() }

// ErrFenced means the caller no longer owns the resource it tried to change:
// another worker took the job over. The caller must stop. It is not a kind:
// it never reaches a client.
var ErrFenced = errors.New("fenced: ownership lost")

// Code is one error case of the service: its Kind and the Huawei error code
// sent for it (Wire). Two cases with the same wire code and different kinds
// are two Codes (Ecs.0314 is a key pair that is missing, 404, or already
// exists, 409). internal/api maps a Code to its HTTP status: its kind's,
// unless Huawei's table says otherwise for it.
type Code struct {
	Kind Kind
	// Wire is the code sent to clients and recorded as a job's error_code.
	Wire string
}

// String returns the wire code.
func (c Code) String() string { return c.Wire }

// LogValue logs a Code as its wire code.
func (c Code) LogValue() slog.Value { return slog.StringValue(c.Wire) }

var codes []Code

// code declares a Code; Codes lists every Code declared.
func code(kind Kind, wire string) Code {
	c := Code{Kind: kind, Wire: wire}
	codes = append(codes, c)
	return c
}

// Codes returns every Code the service declares.
func Codes() []Code { return slices.Clone(codes) }

// Error codes used by the service. The names say what went wrong; the wire
// codes are those of ../shared/reference/ecs-error-codes.txt, except the
// ones marked as our choice (see README).
var (
	CodeInvalidParam       = code(ErrInvalid, "Ecs.0005")
	CodeEmptyBody          = code(ErrInvalid, "Common.0002")
	CodePasswordComplexity = code(ErrInvalid, "Ecs.0011")
	// CodeKeypairNotFound is a key pair named in a request body (create,
	// reinstall) that does not exist.
	CodeKeypairNotFound = code(ErrInvalid, "Ecs.0314")
	// CodeKeypairMissing is a key pair show or delete of an unknown name.
	CodeKeypairMissing   = code(ErrNotFound, "Ecs.0314")
	CodeKeypairExists    = code(ErrConflict, "Ecs.0314")
	CodeBadState         = code(ErrBadState, "Ecs.0100")
	CodeNoSystemDisk     = code(ErrBadState, "Ecs.0105")
	CodeLocked           = code(ErrLocked, "Ecs.0605")
	CodeTaskRunning      = code(ErrBusy, "Ecs.0603")
	CodeServerNotFound   = code(ErrNotFound, "Ecs.0114")
	CodeImageNotFound    = code(ErrInvalid, "Ecs.0031")
	CodeImageNotActive   = code(ErrInvalid, "Ecs.0032")
	CodeImageAttributes  = code(ErrInvalid, "Ecs.0007")
	CodeFlavorNotFound   = code(ErrInvalid, "Ecs.0029")
	CodeProjectMismatch  = code(ErrInvalid, "Ecs.0023")
	CodeTooManyServers   = code(ErrInvalid, "Ecs.0913")
	CodeNameTooLong      = code(ErrInvalid, "Ecs.0914")
	CodeNameInvalid      = code(ErrInvalid, "Ecs.0915")
	CodeJobNotFound      = code(ErrNotFound, "Common.0011")
	CodeSystem           = code(ErrInternal, "Common.0001")
	CodeResourceNotFound = code(ErrNotFound, "APIGW.0101")   // unknown route (our choice)
	CodeMethodNotAllowed = code(ErrNotAllowed, "APIGW.0101") // /healthz with a method other than GET/HEAD
	CodeAuth             = code(ErrUnauthorized, "APIGW.0301")
	CodeBodyTooLarge     = code(ErrTooLarge, "Ecs.0005") // our choice
	CodeSubmitFailed     = code(ErrFailed, "Ecs.0002")
	// CodeNoCapacity is a create that no host has room for (our choice of
	// Huawei's "insufficient resources for this flavor"; README).
	CodeNoCapacity = code(ErrFailed, "Ecs.0319")
	// CodeHostDown is an operation on a server whose host is down: it is
	// refused at once rather than queued (our choice; README).
	CodeHostDown = CodeBadState

	// Job failure codes (a job's error_code).
	CodeSystemDiskAbnormal     = code(ErrFailed, "Ecs.0101")
	CodeCreateSystemDiskFailed = code(ErrFailed, "Ecs.0202")
	CodeCreateServerFailed     = code(ErrFailed, "Ecs.0204")
	CodeStartFailed            = code(ErrFailed, "Ecs.0226")
	CodeRebootFailed           = code(ErrFailed, "Ecs.0227")
	CodeDeleteFailed           = code(ErrFailed, "Ecs.0501")
	CodeTaskFailed             = code(ErrFailed, "Common.0022")
)

// Refusals of a change of OS (our choices; README).
var (
	// CodeFlavorNotFitImage is a change of OS to an image whose min_ram
	// exceeds the server's flavor ("invalid flavor attributes").
	CodeFlavorNotFitImage = code(ErrInvalid, "Ecs.0008")
	// CodeImageNeedsLargerDisk is a change of OS to an image whose
	// min_disk exceeds the server's system disk.
	CodeImageNeedsLargerDisk = CodeImageAttributes
)

// Error is an error with a Code and a message that is safe to show to a
// client. Cause, when set, is for logs only and never leaves the process.
type Error struct {
	Code    Code
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s (%s): %s: %v", e.Code.Wire, e.Code.Kind, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s (%s): %s", e.Code.Wire, e.Code.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is the kind of e's Code, so that
// errors.Is(err, ecs.ErrNotFound) holds for an *Error of that kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k != 0 && k == e.Code.Kind
}

// Errorf returns an *Error of code with a client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of code whose cause is err (logged, not shown).
func Wrap(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Cause: err}
}

// CodeOf returns the Code of the first *Error in err's chain, or CodeSystem
// when there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeSystem
}

// KindOf returns the kind of err: that of the first *Error in its chain,
// else of the first Kind, else ErrInternal; 0 for a nil err.
func KindOf(err error) Kind {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code.Kind
	}
	var k Kind
	if errors.As(err, &k) {
		return k
	}
	return ErrInternal
}
