# Two commands matter (see README): `make run` and `make test`.
GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# One data dir per driver (a data dir belongs to the driver it was first
# started with): run-sim uses ./data (ecsctl's default credentials path is
# ./data/credentials.json), run uses ./data-qemu.
DATA_DIR ?= ./data
QEMU_DATA_DIR ?= ./data-qemu

.PHONY: run run-sim test deps test-unit test-sdk test-sdk-pg test-multihost lint test-vm test-vm-cloudinit bench build

.PHONY: help
# Lists the targets, each with the first sentence of the comment above it.
help:
	@awk '/^# / { c = c (c ? " " : "") substr($$0, 3); next } \
		/^[a-z][a-z-]*:/ { sub(/:.*/, ""); i = index(c, ". "); printf "make %-10s %s\n", $$0, (i ? substr(c, 1, i) : c) } \
		{ c = "" }' Makefile

# Builds bin/ecsd and bin/ecsctl.
build:
	$(GO) build -o bin/ecsd ./cmd/ecsd
	$(GO) build -o bin/ecsctl ./cmd/ecsctl

# Emulator mode on ./data: simulated compute, built-in image catalog.
run-sim: build
	./bin/ecsd --data-dir $(DATA_DIR) --driver sim

# Real VMs on ./data-qemu: installs QEMU if missing, builds and imports the test image.
run:
	ECS_DATA_DIR=$(QEMU_DATA_DIR) ./scripts/run.sh

# The default test run (what CI runs): lint, unit and integration tests, and
# the official-SDK suite against a real ecsd.
test: deps lint test-unit test-sdk

# QEMU tools: the qemu driver's default tests need qemu-img, qemu-storage-daemon
# and debugfs. PostgreSQL: the postgres store's tests start a throwaway cluster
# (scripts/postgres.sh). Installs only what is missing (apt, as root).
deps:
	./scripts/install-qemu-deps.sh
	./scripts/postgres.sh install

# gofmt, go vet and staticcheck (test/sdk: go vet).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd test/sdk && $(GO) vet ./...
	cd test/multihost && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

# Every Go test of the main module, with -race.
test-unit:
	$(GO) test -count=1 -race ./...

# The official-SDK suite (test/sdk) against a real ecsd.
test-sdk:
	cd test/sdk && $(GO) test -count=1 ./...

# The official-SDK suite again, every daemon on a PostgreSQL database of its
# own (a throwaway server started through scripts/postgres.sh).
test-sdk-pg: deps
	cd test/sdk && ECS_TEST_STORE=postgres $(GO) test -count=1 -timeout 15m ./...

# Several nodes on one PostgreSQL (three ecsd, kill -9, PostgreSQL restart,
# a node cut off): see test/multihost. At most 6 minutes.
test-multihost: deps
	cd test/multihost && $(GO) test -count=1 -timeout 6m ./...

# Real-VM suites (QEMU, TCG): the driver conformance suite and SSH proof,
# then the end-to-end proof through the official SDK against ecsd --driver qemu.
# The test image is built on first use (cached in ~/.cache/ecsd/test-image).
test-vm: deps
	$(GO) test -tags vmtest -count=1 -p 1 -timeout 30m ./internal/compute/qemu/
	cd test/sdk && ECS_QEMU_E2E=1 $(GO) test -count=1 -run QEMU -timeout 20m ./...

# The cloud-init guest (QEMU, TCG): a Debian guest with cloud-init and the
# QEMU guest agent, created with a NoCloud seed, reinstalled with a new one,
# its password set online through the agent. The image is built on first use
# (as root, debootstrap; cached in ~/.cache/ecsd/cloudinit-image).
# Of the conformance suite's guest tests only Agent needs this guest; make
# test-vm runs the others with the busybox guest. Then issue 9's proof through
# the SDK against ecsd --driver qemu: reinstall with cloud-init, change of OS
# to the busybox guest and back, online password reset.
test-vm-cloudinit: deps
	$(GO) test -tags vmtest,vmcloudinit -count=1 -p 1 -timeout 10m -run '^TestCloudInit/^Agent$$' -v ./internal/compute/qemu/
	cd test/sdk && ECS_QEMU_E2E=1 $(GO) test -count=1 -run TestCloudInitOSFamilyEndToEnd -timeout 15m ./...

# Issue 2's benchmark targets against a real ecsd (docs/benchmarks.md).
bench:
	$(GO) run ./bench -out docs/benchmarks-latest.txt
