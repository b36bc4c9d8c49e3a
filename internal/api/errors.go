package api

import (
	"errors"
	"net/http"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// errorEntry is how one error kind goes on the wire.
type errorEntry struct {
	status int
	// code is the wire code when it differs from the kind's own string.
	code string
}

// errorTable maps every error kind to its HTTP status. It is the only place
// where kinds meet HTTP. Kinds not listed answer 500 Common.0001.
var errorTable = map[ecs.Code]errorEntry{
	ecs.CodeInvalidParam:           {status: http.StatusBadRequest},
	ecs.CodeEmptyBody:              {status: http.StatusBadRequest},
	ecs.CodePasswordComplexity:     {status: http.StatusBadRequest},
	ecs.CodeKeypairNotFound:        {status: http.StatusBadRequest},
	ecs.CodeKeypairMissing:         {status: http.StatusNotFound, code: "Ecs.0314"},
	ecs.CodeKeypairExists:          {status: http.StatusConflict, code: "Ecs.0314"},
	ecs.CodeBadState:               {status: http.StatusBadRequest},
	ecs.CodeSystemDiskAbnormal:     {status: http.StatusBadRequest},
	ecs.CodeNoSystemDisk:           {status: http.StatusBadRequest},
	ecs.CodeLocked:                 {status: http.StatusBadRequest},
	ecs.CodeTaskRunning:            {status: http.StatusNotImplemented},
	ecs.CodeServerNotFound:         {status: http.StatusNotFound},
	ecs.CodeImageNotFound:          {status: http.StatusBadRequest},
	ecs.CodeImageNotActive:         {status: http.StatusBadRequest},
	ecs.CodeImageAttributes:        {status: http.StatusBadRequest},
	ecs.CodeFlavorNotFound:         {status: http.StatusBadRequest},
	ecs.CodeProjectMismatch:        {status: http.StatusBadRequest},
	ecs.CodeTooManyServers:         {status: http.StatusBadRequest},
	ecs.CodeNameTooLong:            {status: http.StatusBadRequest},
	ecs.CodeNameInvalid:            {status: http.StatusBadRequest},
	ecs.CodeJobNotFound:            {status: http.StatusBadRequest},
	ecs.CodeSubmitFailed:           {status: http.StatusBadRequest},
	ecs.CodeBodyTooLarge:           {status: http.StatusRequestEntityTooLarge, code: "Ecs.0005"},
	ecs.CodeSystem:                 {status: http.StatusInternalServerError},
	ecs.CodeAuth:                   {status: http.StatusUnauthorized},
	ecs.CodeResourceNotFound:       {status: http.StatusNotFound, code: "APIGW.0101"},
	ecs.CodeMethodNotAllowed:       {status: http.StatusMethodNotAllowed, code: "APIGW.0101"},
	ecs.CodeCreateSystemDiskFailed: {status: http.StatusBadRequest},
}

// gatewayKinds answer in the API gateway's body shape
// ({"error_code","error_msg","request_id"}) rather than the ECS one.
var gatewayKinds = map[ecs.Code]bool{
	ecs.CodeAuth:             true,
	ecs.CodeResourceNotFound: true,
	ecs.CodeMethodNotAllowed: true,
}

// wireError returns the status, wire code and client message for err.
func wireError(err error) (status int, code, message string, gateway bool) {
	kind := ecs.CodeOf(err)
	e, ok := errorTable[kind]
	if !ok {
		return http.StatusInternalServerError, string(ecs.CodeSystem),
			"A system exception occurred. Try again later or contact customer service.", false
	}
	code = string(kind)
	if e.code != "" {
		code = e.code
	}
	message = "A system exception occurred. Try again later or contact customer service."
	var ee *ecs.Error
	if kind != ecs.CodeSystem && errors.As(err, &ee) {
		message = ee.Message
	}
	return e.status, code, message, gatewayKinds[kind]
}
