package ecs

// Codes of idempotent creates (X-Client-Token; the ECS API reference's
// "Idempotent Requests" page; all 400 in Huawei's table).
var (
	CodeClientTokenReused  = code(ErrInvalid, "Ecs.0122") // same token, other parameters
	CodeClientTokenInvalid = code(ErrInvalid, "Ecs.0123") // not a UUID (8-4-4-4-12, 0-9 a-f)
	CodeClientTokenExpired = code(ErrInvalid, "Ecs.0124") // older than 8 hours
)

// CodeActionNotFound is an os-instance-actions/{request_id} of a request
// the server's action log does not hold (404; Huawei's table has no code
// for it: the server's not-found code is our choice).
var CodeActionNotFound = CodeServerNotFound
