// Package sdk is the black-box integration suite of ecsd: it builds
// ../../cmd/ecsd, starts real daemons on loopback with the simulator driver,
// and drives them with the official huaweicloud-sdk-go-v3 ECS and IMS
// clients exactly as a user would, plus a hand-written SDK-HMAC-SHA256
// signer for request shapes the SDK cannot produce.
//
// It lives in its own Go module so that the product binary never links the
// SDK. Run it with:
//
//	cd test/sdk && go test ./...
//
// With ECS_TEST_STORE=postgres (make test-sdk-pg) every daemon runs on a
// PostgreSQL database of its own, on a throwaway server started through
// scripts/postgres.sh; ECS_TEST_STORE=postgres://... names a server to use
// instead.
//
// With ECS_QEMU_E2E=1 (make test-vm) it also runs the end-to-end proof of
// the QEMU backend against ecsd --driver qemu: real guests, SSH logins
// (qemu_e2e_test.go).
//
// The package has no non-test code; this file only documents it.
package sdk
