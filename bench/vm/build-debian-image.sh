#!/bin/sh
# build-debian-image.sh: build the ~2 GiB Debian benchmark image of issue 3
# (scope item 9): a Debian 12 minbase userland in an ext4 filesystem of
# 2 GiB on the whole disk (no partition table), as qcow2.
#
# Usage: bench/vm/build-debian-image.sh [--force] OUTDIR
#
# Writes OUTDIR/debian.qcow2 (and keeps OUTDIR/debian.raw, the same disk as
# raw). It has Debian's realistic /etc/shadow (0640 root:shadow, a root entry
# with "*"), /etc/os-release, dropbear and a small bash /sbin/init (minbase
# has no init) that starts sshd and prints GUEST-READY on the serial console,
# so that it also boots with the test image's vmlinux and initrd.img.
# Runs as root (debootstrap chroots; no loop mounts: mke2fs -d). ~40 s.
set -eu
PATH=$PATH:/usr/sbin:/sbin

force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
if [ $# -ne 1 ]; then
	echo "usage: $0 [--force] OUTDIR" >&2
	exit 2
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
if [ $force = 0 ] && [ -s "$OUT/debian.qcow2" ] && [ -s "$OUT/debian.raw" ]; then
	echo "build-debian-image: $OUT/debian.qcow2 exists (use --force to rebuild)"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "build-debian-image: debootstrap needs root" >&2
	exit 1
fi
command -v debootstrap >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends debootstrap
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

W=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
R=$W/rootfs
t0=$(date +%s)
debootstrap --variant=minbase --include=dropbear-bin,iproute2 bookworm "$R" "$MIRROR" >"$W/debootstrap.log" 2>&1 || {
	tail -n 20 "$W/debootstrap.log" >&2
	exit 1
}
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*

# minbase gives /etc/shadow (0640 root:shadow) from the passwd package; make
# sure root has an entry, as on any Debian install.
grep -q '^root:' "$R"/etc/shadow || echo 'root:*:19000:0:99999:7:::' >>"$R"/etc/shadow
mkdir -p "$R"/etc/dropbear "$R"/root/.ssh
chmod 0700 "$R"/root/.ssh
for t in rsa ecdsa ed25519; do
	[ -s "$R"/etc/dropbear/dropbear_${t}_host_key ] ||
		chroot "$R" dropbearkey -t $t -f /etc/dropbear/dropbear_${t}_host_key >/dev/null 2>&1
done
echo debian-bench >"$R"/etc/hostname
cat >"$R"/sbin/init <<'INIT'
#!/bin/bash
# PID 1 of the Debian benchmark image (minbase has no init): start sshd,
# print GUEST-READY, power off on the ACPI power button.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname -F /etc/hostname
echo "GUEST-PROOF shadow-root: $(awk -F: '$1 == "root" { print $2 }' /etc/shadow)"
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
dropbear -p 22 -r /etc/dropbear/dropbear_rsa_host_key -r /etc/dropbear/dropbear_ecdsa_host_key \
	-r /etc/dropbear/dropbear_ed25519_host_key
# READY only once sshd listens, as in the test image.
i=0
until ss -ltn | grep -q ':22 '; do
	i=$((i + 1))
	if [ $i -gt 600 ]; then echo "GUEST-FAIL sshd not listening"; break; fi
	sleep 0.1
done
[ $i -gt 600 ] || echo "GUEST-READY sshd"
pwr=""
for d in /sys/class/input/input*; do
	if [ "$(cat "$d"/name 2>/dev/null)" = "Power Button" ]; then
		for e in "$d"/event*; do [ -e "$e" ] && pwr=/dev/input/${e##*/}; done
	fi
done
# evdev refuses reads shorter than one event (24 bytes): "head -c 1" fails.
if [ -n "$pwr" ]; then dd if="$pwr" of=/dev/null bs=24 count=1 status=none; else while :; do sleep 3600; done; fi
echo "GUEST-POWEROFF"
sync
mount -o remount,ro /
echo o >/proc/sysrq-trigger
sleep 10
INIT
chmod 0755 "$R"/sbin/init

rm -f "$W"/debian.raw
mke2fs -q -t ext4 -b 4096 -L root -d "$R" "$W"/debian.raw 2G >/dev/null
e2fsck -fn "$W"/debian.raw >/dev/null 2>&1 || {
	echo "build-debian-image: e2fsck reports errors in the built filesystem" >&2
	exit 1
}
qemu-img convert -O qcow2 "$W"/debian.raw "$W"/debian.qcow2
mv "$W"/debian.raw "$OUT"/debian.raw
mv "$W"/debian.qcow2 "$OUT"/debian.qcow2
echo "build-debian-image: built $OUT/debian.qcow2 in $(($(date +%s) - t0)) s:" \
	"$(du -h --apparent-size "$OUT"/debian.raw | cut -f1) apparent," \
	"$(du -h "$OUT"/debian.raw | cut -f1) allocated raw, $(du -h "$OUT"/debian.qcow2 | cut -f1) qcow2"
