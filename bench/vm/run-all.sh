#!/bin/bash
# run-all.sh: every measurement of docs/benchmarks-vm.md, one after the
# other (never in parallel: the timings share 2 CPUs), ~30 minutes.
#
# Usage: bench/vm/run-all.sh [BASELINE_RUNS [RUNS]]   (defaults 10 and 20)
#
# BENCH_IMAGES="test debian" (the default) picks the images; BENCH_CONC=0
# skips the driver-level concurrency test.
#
# Builds what is missing (the test image, the 2 GiB Debian image, the
# libguestfs set-up), then runs:
#   1. baseline-libguestfs.sh  full copy + virt-customize, BASELINE_RUNS runs, each image
#   2. go-bench.sh             ecsd's driver (and the cp+debugfs variant), RUNS runs, each image
#   3. api-reinstall.sh        a real ecsd: RUNS reinstalls submit->SUCCESS, 20 concurrent
#                              reinstalls of 20 stopped servers, 5 boots to SSH, each image
#   4. go test -run TestConcurrentReinstalls -v ./internal/compute/qemu/ (the driver-level test)
# and samples /proc/loadavg every 10 s into loadavg.log. Results in
# $BENCH_OUT (default ~/.cache/ecsd/bench-vm/results). Needs root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
BRUNS=${1:-10} RUNS=${2:-20}
CACHE=$HOME/.cache/ecsd
export BENCH_OUT=${BENCH_OUT:-$CACHE/bench-vm/results}
mkdir -p "$BENCH_OUT"
T=$CACHE/test-image
D=$CACHE/bench-vm/debian.qcow2

"$REPO/scripts/build-test-image.sh" "$T"
"$HERE/build-debian-image.sh" "$CACHE/bench-vm"
(. "$HERE/libguestfs-env.sh")

machine_info >>"$BENCH_OUT/machine.txt"
(while :; do echo "$(date -u +%H:%M:%S) $(cat /proc/loadavg)"; sleep 10; done) >>"$BENCH_OUT/loadavg.log" &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null' EXIT INT TERM
step() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$BENCH_OUT/steps.log"; }

for img in ${BENCH_IMAGES:-test debian}; do
	case $img in
	test) file=$T/disk.qcow2 gofile=test ;;
	debian) file=$D gofile=$D ;;
	*) echo "run-all: unknown image $img" >&2; exit 2 ;;
	esac
	step "baseline libguestfs, $img"
	"$HERE/baseline-libguestfs.sh" "$file" "$BRUNS" "$img"
	step "go bench, $img"
	"$HERE/go-bench.sh" "$gofile" "$RUNS" "$img"
	step "api, $img"
	"$HERE/api-reinstall.sh" "$file" "$T/vmlinux" "$T/initrd.img" "$RUNS" 20 5 "$img"
done
if [ "${BENCH_CONC:-1}" = 0 ]; then
	step "done"
	exit 0
fi
step "driver-level TestConcurrentReinstalls"
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-conc.XXXXXX")
git -C "$REPO" archive HEAD | tar -x -C "$W"
(cd "$W" && go test -count=1 -run '^TestConcurrentReinstalls$' -v ./internal/compute/qemu/) 2>&1 | tee "$BENCH_OUT/go-concurrent.txt"
rm -rf "$W"
step "done"
grep -h -e '^summary' -e 'p50-ms' -e '^seq ' -e '^conc:' -e '^boot-to-SSH' -e '^start ->' \
	"$BENCH_OUT"/*.txt | tee "$BENCH_OUT/summary.txt"
