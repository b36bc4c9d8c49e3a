#!/bin/bash
# baseline-libguestfs.sh: the baseline of issue 3 (scope item 9), the
# pipeline OpenStack Nova uses for an image without cloud-init: a full copy
# of the image, then libguestfs injection of root's password ($6$) and SSH
# key, then a check that the disk holds them.
#
# Usage: bench/vm/baseline-libguestfs.sh IMAGE RUNS [LABEL]
#
# IMAGE is a qcow2 or raw file with an ext4 root. It is converted to raw once
# (untimed), as Nova's image cache holds raw bases. Each timed run:
#   1. cp base.raw disk.raw && sync disk.raw     (full copy, durable)
#   2. virt-customize --format raw -a disk.raw --password-crypto sha512 \
#        --root-password password:PASS --ssh-inject root:file:KEY.pub
#   3. debugfs reads /etc/shadow and /root/.ssh/authorized_keys back: root's
#      field is $6$ and equals `openssl passwd -6` of PASS with its salt, and
#      the key is there (the same checks ecsd makes before SUCCESS).
# Prints one line per run (ms) and a summary; writes them to
# $BENCH_OUT/baseline-libguestfs-LABEL.txt (BENCH_OUT defaults to
# ~/.cache/ecsd/bench-vm/results). Needs root (it installs libguestfs-tools:
# see libguestfs-env.sh).
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/libguestfs-env.sh"

if [ $# -lt 2 ]; then
	echo "usage: $0 IMAGE RUNS [LABEL]" >&2
	exit 2
fi
IMAGE=$1 RUNS=$2 LABEL=${3:-$(basename "$1")}
BENCH_OUT=${BENCH_OUT:-$HOME/.cache/ecsd/bench-vm/results}
mkdir -p "$BENCH_OUT"
OUTF=$BENCH_OUT/baseline-libguestfs-$LABEL.txt
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-lgf.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM

PASS='Bench-Passw0rd'
ssh-keygen -q -t ed25519 -N '' -C "baseline@$LABEL" -f "$W/key"
to_raw "$IMAGE" "$W/base.raw"
# libguestfs inspection only recognises a Linux root with /etc/fstab or
# /etc/hosts (and virt-customize refuses a disk it cannot inspect). The test
# image has neither: give the baseline's copy an /etc/hosts, once, untimed.
if ! debugfs -R "stat /etc/hosts" "$W/base.raw" 2>/dev/null | grep -q Inode &&
	! debugfs -R "stat /etc/fstab" "$W/base.raw" 2>/dev/null | grep -q Inode; then
	echo "baseline-libguestfs: $LABEL has no /etc/hosts or /etc/fstab; adding /etc/hosts for libguestfs's inspection"
	printf '127.0.0.1 localhost\n' >"$W/hosts"
	debugfs -w -R "write $W/hosts /etc/hosts" "$W/base.raw" >/dev/null 2>&1
fi

{
	echo "# baseline (full copy + libguestfs virt-customize) on $LABEL ($IMAGE)"
	machine_info | sed 's/^/# /'
} >"$OUTF"
: >"$W/times"
for i in $(seq 1 "$RUNS"); do
	l0=$(load1)
	t0=$(now_ms)
	cp "$W/base.raw" "$W/disk.raw"
	sync "$W/disk.raw"
	virt-customize -q --format raw -a "$W/disk.raw" --password-crypto sha512 \
		--root-password "password:$PASS" --ssh-inject "root:file:$W/key.pub" >"$W/vc.log" 2>&1 || {
		cat "$W/vc.log" >&2
		exit 1
	}
	hash=$(debugfs -R "cat /etc/shadow" "$W/disk.raw" 2>/dev/null | awk -F: '$1 == "root" { print $2 }')
	salt=$(echo "$hash" | cut -d'$' -f3)
	keys=$(debugfs -R "cat /root/.ssh/authorized_keys" "$W/disk.raw" 2>/dev/null)
	t1=$(now_ms)
	case $hash in \$6\$*) ;; *)
		echo "run $i: root's hash is not \$6\$: $hash" >&2
		exit 1
		;;
	esac
	if [ "$(openssl passwd -6 -salt "$salt" "$PASS")" != "$hash" ]; then
		echo "run $i: root's hash does not verify against the password" >&2
		exit 1
	fi
	if ! printf '%s\n' "$keys" | grep -qxF "$(cat "$W/key.pub")"; then
		echo "run $i: the key is not in /root/.ssh/authorized_keys" >&2
		exit 1
	fi
	rm -f "$W/disk.raw"
	echo $((t1 - t0)) >>"$W/times"
	echo "run $i: $((t1 - t0)) ms (load1 before $l0, after $(load1))" | tee -a "$OUTF"
done
echo "summary ms: $(pcts "$W/times")" | tee -a "$OUTF"
echo "# loadavg at end: $(cat /proc/loadavg)" >>"$OUTF"
