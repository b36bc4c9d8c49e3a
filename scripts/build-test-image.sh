#!/bin/sh
# build-test-image.sh: build the tiny bootable test guest of the QEMU driver
# from Debian packages, without root mounts (no loop, no chroot).
#
# Usage: scripts/build-test-image.sh [--force] OUTDIR
#
# Writes OUTDIR/vmlinux (Debian's kernel, uncompressed so QEMU boots it
# through its PVH note), OUTDIR/initrd.img (busybox initramfs that loads the
# virtio/ext4 modules and switches to /dev/vda) and OUTDIR/disk.qcow2 (an
# ext4 filesystem on the whole disk, no partition table: static busybox,
# dropbear with rsa+ecdsa+ed25519 host keys, /etc/shadow with root:*,
# /etc/os-release ID=busybox-test).
#
# The guest's /sbin/init prints on the serial console what it reads from its
# own disk, then starts sshd (password and key login for root):
#   GUEST-PROOF shadow-root: <root's hash field of /etc/shadow>
#   GUEST-PROOF authorized_keys-sha256: <sha256 of /root/.ssh/authorized_keys, or "absent">
#   GUEST-READY sshd
# An ACPI power button press (QMP system_powerdown) makes it sync, remount
# / read-only and power off.
#
# Cached: when the three outputs exist and were built by this version of the
# script, nothing is done (unless --force). Outputs are moved into place only
# when complete, disk.qcow2 last. Needs: apt-get (with package lists; run as
# root the script runs apt-get update itself if they are missing), dpkg-deb,
# mke2fs, debugfs, qemu-img, xz, gzip (scripts/install-qemu-deps.sh).
set -eu

NAME=build-test-image
# Bump when the image content changes, so that caches are rebuilt.
FORMAT=2
. "$(dirname "$0")/lib/image-build.sh"
image_args "$@"

PATH=$PATH:/usr/sbin:/sbin
need_tools apt-get apt-cache dpkg-deb mke2fs debugfs e2fsck qemu-img xz gzip grep awk

W=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
cd "$W"

# --- 1. packages -------------------------------------------------------------
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
KPKG=$(kpkg)
if [ -z "$KPKG" ] && [ "$(id -u)" = 0 ]; then
	log "no apt package lists; running apt-get update"
	apt-get update -qq
	KPKG=$(kpkg)
fi
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64; run apt-get update as root"
KVER=${KPKG#linux-image-}
PKGS="$KPKG busybox-static dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g"
log "downloading $PKGS"
mkdir debs
# apt warns that the _apt user cannot write here; the download works anyway.
(cd debs && apt-get download -q $PKGS 2>&1 | grep -v -e unsandboxed -e '^Get:' -e '^Fetched' || true)
for p in $PKGS; do
	ls debs/"${p}"_*.deb >/dev/null 2>&1 || die "download of $p failed"
done
mkdir kpkg dbpkg
dpkg-deb -x debs/"${KPKG}"_*.deb kpkg
dpkg-deb -x debs/dropbear-bin_*.deb dbpkg

# --- 2. kernel ---------------------------------------------------------------
extract_kernel kpkg/boot/vmlinuz-"$KVER"

# --- 3. initramfs ------------------------------------------------------------
# Load order matters: each module's depends= must be loaded before it (checked
# below, so an ABI bump that adds a dependency fails here, not in the guest).
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
crc16 mbcache jbd2 crc32c_generic ext4 failover net_failover virtio_net virtio-rng button evdev"
mkdir -p initrd/bin initrd/lib/modules initrd/dev initrd/proc initrd/sys initrd/newroot
dpkg-deb -x debs/busybox-static_*.deb bb
cp bb/bin/busybox initrd/bin/busybox
BB=$W/bb/bin/busybox
initrd_modules kpkg/lib/modules/"$KVER" "$MODULES"
cat >initrd/init <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for m in $(cat /modules.order); do
	insmod /lib/modules/$m.ko || echo "initrd: insmod $m failed"
done
root=/dev/vda
for arg in $(cat /proc/cmdline); do
	case $arg in root=/dev/*) root=${arg#root=} ;; esac
done
# Generous: an overloaded host (many TCG guests on few cores) slows the guest.
i=0
while [ ! -b "$root" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t ext4 -o rw "$root" /newroot; then
	echo "initrd: cannot mount $root"
	poweroff -f
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod 0755 initrd/init
(cd initrd && find . | LC_ALL=C sort | "$BB" cpio -o -H newc 2>/dev/null | gzip -1 >../initrd.img)

# --- 4. root filesystem --------------------------------------------------------
R=$W/rootfs
mkdir -p "$R"/bin "$R"/sbin "$R"/usr/sbin "$R"/etc/dropbear "$R"/dev "$R"/proc "$R"/sys "$R"/tmp \
	"$R"/run "$R"/var/log "$R"/root/.ssh
for p in libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g; do
	dpkg-deb -x debs/"${p}"_*.deb "$R"
done
# Keep the shared libraries and the loader only.
rm -rf "$R"/usr/share "$R"/usr/lib/x86_64-linux-gnu/gconv "$R"/usr/libexec "$R"/usr/bin "$R"/sbin/ldconfig \
	"$R"/etc/ld.so.conf.d "$R"/usr/lib/x86_64-linux-gnu/audit
cp bb/bin/busybox "$R"/bin/busybox
for a in $("$BB" --list); do
	[ "$a" = busybox ] || [ "$a" = init ] || ln -sf busybox "$R"/bin/"$a"
done
cp dbpkg/usr/sbin/dropbear "$R"/usr/sbin/dropbear
LIBPATH=$R/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu
for t in rsa ecdsa ed25519; do
	"$R"/lib64/ld-linux-x86-64.so.2 --library-path "$LIBPATH" dbpkg/usr/bin/dropbearkey \
		-t $t -f "$R"/etc/dropbear/dropbear_${t}_host_key >/dev/null 2>&1
done
# dropbear must be able to run from the image's own libraries.
"$R"/lib64/ld-linux-x86-64.so.2 --library-path "$LIBPATH" "$R"/usr/sbin/dropbear -V >/dev/null 2>&1 ||
	die "dropbear does not run with the image's libraries"

cat >"$R"/etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$R"/etc/group <<'EOF'
root:x:0:
EOF
echo 'root:*:19000:0:99999:7:::' >"$R"/etc/shadow
printf '/bin/sh\n/bin/ash\n' >"$R"/etc/shells
echo 'ecs-test' >"$R"/etc/hostname
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$R"/etc/nsswitch.conf
cat >"$R"/etc/os-release <<'EOF'
NAME="Busybox Test"
ID=busybox-test
VERSION_ID=1
PRETTY_NAME="ecsd busybox test guest 1"
EOF
cat >"$R"/sbin/init <<'INIT'
#!/bin/sh
# PID 1 of the ecsd test guest. It proves on the serial console what it reads
# from its own disk, starts sshd, and powers off on the ACPI power button.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
hostname -F /etc/hostname

h=$(awk -F: '$1 == "root" { print $2 }' /etc/shadow)
echo "GUEST-PROOF shadow-root: $h"
if [ -f /root/.ssh/authorized_keys ]; then
	k=$(sha256sum /root/.ssh/authorized_keys | cut -d' ' -f1)
else
	k=absent
fi
echo "GUEST-PROOF authorized_keys-sha256: $k"

ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
dropbear -p 22 -r /etc/dropbear/dropbear_rsa_host_key -r /etc/dropbear/dropbear_ecdsa_host_key \
	-r /etc/dropbear/dropbear_ed25519_host_key
i=0
until netstat -ltn | grep -q ':22 '; do
	i=$((i + 1))
	if [ $i -gt 600 ]; then
		echo "GUEST-FAIL sshd not listening"
		break
	fi
	sleep 0.1
done
[ $i -gt 600 ] || echo "GUEST-READY sshd"

pwr=""
for d in /sys/class/input/input*; do
	if [ "$(cat "$d"/name 2>/dev/null)" = "Power Button" ]; then
		for e in "$d"/event*; do [ -e "$e" ] && pwr=/dev/input/${e##*/}; done
	fi
done
if [ -n "$pwr" ] && [ -c "$pwr" ]; then
	head -c 1 "$pwr" >/dev/null
else
	while :; do sleep 3600; done
fi
echo "GUEST-POWEROFF"
killall dropbear 2>/dev/null
sync
mount -o remount,ro /
poweroff -f
INIT
chmod 0755 "$R"/sbin/init
chmod 0600 "$R"/etc/shadow "$R"/etc/dropbear/*
chmod 0700 "$R"/root "$R"/root/.ssh
chmod 1777 "$R"/tmp

rm -f base.raw
mke2fs -q -t ext4 -b 4096 -L root -E root_owner=0:0 -d "$R" base.raw 1G >/dev/null
# mke2fs -d copies the builder's uid/gid: make everything root's, so that the
# image is the same whoever builds it.
(cd "$R" && find . -mindepth 1 | sed 's|^\.||' | awk '{ print "sif " $0 " uid 0"; print "sif " $0 " gid 0" }') >own.cmds
debugfs -w -f own.cmds base.raw >/dev/null 2>&1
e2fsck -fn base.raw >/dev/null 2>&1 || die "e2fsck reports errors in the built filesystem"
qemu-img convert -O qcow2 base.raw disk.qcow2

# --- 5. publish ----------------------------------------------------------------
image_publish "$KPKG"
log "built $OUT/vmlinux $OUT/initrd.img $OUT/disk.qcow2 ($KPKG)"
