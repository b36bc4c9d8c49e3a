#!/bin/bash
# go-bench.sh: the Go benchmarks of the qemu driver
# (internal/compute/qemu/vm_test.go), on one image:
#   BenchmarkReinstallHostSide        ecsd's host side of a reinstall of a
#                                     stopped server: qcow2 overlay, $6$ hash and
#                                     key written and read back, disks swapped,
#                                     old disk deleted;
#   BenchmarkReinstallBaselineFullCopy full copy (cp + sync) of the raw image,
#                                     then the same debugfs injection and check.
#
# Usage: bench/vm/go-bench.sh IMAGE|test RUNS [LABEL]
#
# "test" means the test image (~/.cache/ecsd/test-image, built by
# scripts/build-test-image.sh if missing); anything else is passed as
# ECS_BENCH_IMAGE. Output goes to $BENCH_OUT/go-bench-LABEL.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
REPO=$(cd "$HERE/../.." && pwd)

if [ $# -lt 2 ]; then
	echo "usage: $0 IMAGE|test RUNS [LABEL]" >&2
	exit 2
fi
IMAGE=$1 RUNS=$2 LABEL=${3:-$(basename "$1")}
BENCH_OUT=${BENCH_OUT:-$HOME/.cache/ecsd/bench-vm/results}
mkdir -p "$BENCH_OUT"
OUTF=$BENCH_OUT/go-bench-$LABEL.txt
if [ "$IMAGE" = test ]; then
	unset ECS_BENCH_IMAGE
else
	export ECS_BENCH_IMAGE=$(cd "$(dirname "$IMAGE")" && pwd)/$(basename "$IMAGE")
fi
# Compile a committed revision ($ECS_BENCH_REV, default HEAD), not the work
# tree, which may hold other people's unfinished changes; compile first, so
# that the build does not load the machine during the runs.
REV=$(git -C "$REPO" rev-parse "${ECS_BENCH_REV:-HEAD}")
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-go.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
git -C "$REPO" archive "$REV" | tar -x -C "$W"
(cd "$W" && go test -tags vmtest -c -o "$W/qemu-bench.test" ./internal/compute/qemu/)
{
	echo "# go-bench $LABEL (${ECS_BENCH_IMAGE:-test image}), $RUNS runs each, commit $REV"
	machine_info | sed 's/^/# /'
} >"$OUTF"
# The test binary finds scripts/build-test-image.sh from its working directory.
cd "$W/internal/compute/qemu"
for b in ReinstallHostSide ReinstallBaselineFullCopy; do
	l0=$(load1)
	"$W/qemu-bench.test" -test.run '^$' -test.bench "^Benchmark$b\$" -test.benchtime "${RUNS}x" 2>&1 | tee -a "$OUTF"
	echo "# $b: load1 before $l0, after $(load1)" | tee -a "$OUTF"
done
