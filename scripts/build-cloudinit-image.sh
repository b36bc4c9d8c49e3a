#!/bin/sh
# build-cloudinit-image.sh: build the second test guest of the QEMU driver,
# a minimal Debian 12 that runs real cloud-init (NoCloud only) and the QEMU
# guest agent, from Debian packages and without root mounts (debootstrap
# into a directory, then mke2fs -d).
#
# Usage: scripts/build-cloudinit-image.sh [--force] OUTDIR
#
# Writes OUTDIR/vmlinux (Debian's kernel, uncompressed: QEMU boots it
# through its PVH note), OUTDIR/initrd.img (busybox initramfs that loads the
# virtio, ext4, isofs and virtio-console modules and switches to /dev/vda)
# and OUTDIR/disk.qcow2 (an ext4 filesystem on the whole disk) holding:
#   - systemd, udev, dbus (logind turns the ACPI power button into a
#     clean power-off), openssh-server (root may log in with a key or a
#     password), qemu-guest-agent (started by udev when the
#     org.qemu.guest_agent.0 port appears), Debian's /etc/os-release;
#   - cloud-init with the NoCloud datasource only (a disk labelled cidata),
#     its own network configuration disabled (systemd-networkd has the
#     static address QEMU's user networking expects) and its module lists
#     cut to what the ECS seed uses: write-files, users-groups, ssh (new
#     ed25519 host key per instance), set-passwords, runcmd, the user
#     scripts and final-message, in two stages (network before sshd, final
#     after it; the local and config stages are masked);
#   - slow units masked (apt timers, e2scrub, getty, journal flush, the
#     pseudo-filesystem mounts and modprobe units a guest without modules
#     and with one disk does not need).
# Without a seed, cloud-init disables itself (ds-identify finds no
# datasource) and the guest boots with what its disk holds.
# The guest prints "GUEST-READY sshd" on the serial console once sshd runs.
#
# Cached: when the outputs exist and were built by this version of the
# script, nothing is done (unless --force). Runs as root (debootstrap
# chroots); ~2-3 min, most of it debootstrap. Needs: apt-get, dpkg-deb,
# debootstrap (installed when missing), mke2fs, e2fsck, qemu-img, xz, gzip
# (scripts/install-qemu-deps.sh).
set -eu

NAME=build-cloudinit-image
# Bump when the image content changes, so that caches are rebuilt.
FORMAT=2
. "$(dirname "$0")/lib/image-build.sh"
image_args "$@"

PATH=$PATH:/usr/sbin:/sbin
[ "$(id -u)" = 0 ] || die "needs root (debootstrap chroots into the new system)"
need_tools apt-get apt-cache dpkg-deb mke2fs e2fsck qemu-img xz gzip grep awk
if ! command -v debootstrap >/dev/null 2>&1; then
	log "installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

W=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
cd "$W"
t0=$(date +%s)

# --- 1. kernel package ---------------------------------------------------------
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
KPKG=$(kpkg)
if [ -z "$KPKG" ]; then
	log "no apt package lists; running apt-get update"
	apt-get update -qq
	KPKG=$(kpkg)
fi
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64"
KVER=${KPKG#linux-image-}
mkdir debs
(cd debs && apt-get download -q "$KPKG" busybox-static 2>&1 | grep -v -e unsandboxed -e '^Get:' -e '^Fetched' || true)
ls debs/"${KPKG}"_*.deb debs/busybox-static_*.deb >/dev/null 2>&1 || die "download of $KPKG or busybox-static failed"
mkdir kpkg bb
dpkg-deb -x debs/"${KPKG}"_*.deb kpkg
dpkg-deb -x debs/busybox-static_*.deb bb

extract_kernel kpkg/boot/vmlinuz-"$KVER"

# --- 2. initramfs ----------------------------------------------------------------
# Everything the guest needs is loaded here, in dependency order (checked),
# so the root filesystem carries no kernel modules.
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
crc16 mbcache jbd2 crc32c_generic ext4 failover net_failover virtio_net virtio-rng button evdev
virtio_console cdrom isofs"
mkdir -p initrd/bin initrd/lib/modules initrd/dev initrd/proc initrd/sys initrd/newroot
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
i=0
while [ ! -b /dev/vda ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t ext4 -o rw /dev/vda /newroot; then
	echo "initrd: cannot mount /dev/vda"
	poweroff -f
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod 0755 initrd/init
(cd initrd && find . | LC_ALL=C sort | "$BB" cpio -o -H newc 2>/dev/null | gzip -1 >../initrd.img)

# --- 3. root filesystem ----------------------------------------------------------
R=$W/rootfs
log "debootstrap bookworm"
# debootstrap's own resolver chokes on cloud-init's python dependencies
# (python3-cryptography fails to configure): it lays down the base, and apt
# inside the new system adds the rest.
debootstrap --variant=minbase --include=systemd,systemd-sysv,udev,dbus,iproute2 \
	bookworm "$R" "$MIRROR" >debootstrap.log 2>&1 || {
	cp "$R"/debootstrap/debootstrap.log "$OUT"/debootstrap.log 2>/dev/null || true
	tail -n 30 debootstrap.log >&2
	die "debootstrap failed (log in $OUT/debootstrap.log)"
}
log "apt-get install cloud-init qemu-guest-agent openssh-server"
cp /etc/resolv.conf "$R"/etc/resolv.conf
printf '#!/bin/sh\nexit 101\n' >"$R"/usr/sbin/policy-rc.d
chmod 0755 "$R"/usr/sbin/policy-rc.d
chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	cloud-init qemu-guest-agent openssh-server >apt.log 2>&1 || {
	cp apt.log "$OUT"/apt.log
	tail -n 30 apt.log >&2
	die "apt-get install in the new system failed (log in $OUT/apt.log)"
}
rm -f "$R"/usr/sbin/policy-rc.d "$R"/etc/resolv.conf
rm -rf "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/locale/* "$R"/usr/share/info/*
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*

echo ecs-cloudinit >"$R"/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 ecs-cloudinit\n' >"$R"/etc/hosts
# The initramfs mounts / read-write; nothing to remount.
: >"$R"/etc/fstab
: >"$R"/etc/machine-id
grep -q '^root:' "$R"/etc/shadow || echo 'root:*:19000:0:99999:7:::' >>"$R"/etc/shadow

# Network: QEMU's user networking, static (no DHCP wait).
mkdir -p "$R"/etc/systemd/network
cat >"$R"/etc/systemd/network/10-ecs.network <<'EOF'
[Match]
Type=ether

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
ln -sf /lib/systemd/system/systemd-networkd.service "$R"/etc/systemd/system/multi-user.target.wants/systemd-networkd.service
mkdir -p "$R"/etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' >"$R"/etc/systemd/journald.conf.d/ecs.conf

# sshd: root may log in with a key or a password (what an ECS user expects;
# cloud-init's ssh_pwauth then finds nothing to change and restarts nothing).
sed -i -e 's/^#\?PasswordAuthentication .*/PasswordAuthentication yes/' \
	-e 's/^#\?PermitRootLogin .*/PermitRootLogin yes/' "$R"/etc/ssh/sshd_config
grep -q '^PasswordAuthentication yes' "$R"/etc/ssh/sshd_config || echo 'PasswordAuthentication yes' >>"$R"/etc/ssh/sshd_config
grep -q '^PermitRootLogin yes' "$R"/etc/ssh/sshd_config || echo 'PermitRootLogin yes' >>"$R"/etc/ssh/sshd_config
echo 'UseDNS no' >>"$R"/etc/ssh/sshd_config
# The host keys debootstrap made are replaced per instance by cloud-init.
rm -f "$R"/etc/ssh/ssh_host_*

cat >"$R"/etc/cloud/cloud.cfg.d/99-ecsd.cfg <<'EOF'
# ecsd test guest: NoCloud only, fast boot.
datasource_list: [ NoCloud ]
network: {config: disabled}
disable_root: false
users: []
ssh_deletekeys: true
ssh_genkeytypes: [ ed25519 ]
ssh_quiet_keygen: true
preserve_hostname: true
manage_etc_hosts: false
# Two python runs instead of four (python alone takes seconds under TCG):
# cloud-init-local and cloud-config are masked, the network stage finds the
# seed and sets the credentials before sshd starts, the final stage runs
# the user's commands and scripts after it.
cloud_init_modules:
  - bootcmd
  - write-files
  - users-groups
  - ssh
  - set-passwords
cloud_config_modules: []
cloud_final_modules:
  - runcmd
  - scripts-vendor
  - scripts-per-once
  - scripts-per-boot
  - scripts-per-instance
  - scripts-user
  - final-message
EOF

# With the local stage masked, the network stage would trust the datasource
# it cached at the last boot (obj.pkl) and never look at a new seed on the
# same disk; without the cache it reads the seed at every boot, and runs the
# per-instance modules again only when the instance-id changed.
mkdir -p "$R"/etc/systemd/system/cloud-init.service.d
cat >"$R"/etc/systemd/system/cloud-init.service.d/ecs.conf <<'EOF'
[Service]
ExecStartPre=/bin/rm -f /var/lib/cloud/instance/obj.pkl
EOF

# A boot without a seed (cloud-init disabled itself) still needs a host key;
# after a cloud-init run there is one already.
cat >"$R"/etc/systemd/system/ecs-hostkey.service <<'EOF'
[Unit]
Description=Make an SSH host key when cloud-init made none
After=cloud-init.service
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/ecs-hostkey.service "$R"/etc/systemd/system/multi-user.target.wants/ecs-hostkey.service

# The guest says on the serial console when sshd runs.
cat >"$R"/etc/systemd/system/ecs-ready.service <<'EOF'
[Unit]
Description=Tell the host that sshd runs
After=ssh.service
Wants=ssh.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "GUEST-READY sshd" >/dev/ttyS0'

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/ecs-ready.service "$R"/etc/systemd/system/multi-user.target.wants/ecs-ready.service

for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
	dpkg-db-backup.timer systemd-tmpfiles-clean.timer getty@tty1.service serial-getty@ttyS0.service \
	systemd-journal-flush.service systemd-update-utmp.service systemd-update-utmp-runlevel.service \
	systemd-timesyncd.service systemd-networkd-wait-online.service cloud-init-hotplugd.socket \
	man-db.timer logrotate.timer ssh.socket cloud-init-local.service cloud-config.service \
	dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
	sys-fs-fuse-connections.mount proc-sys-fs-binfmt_misc.automount systemd-binfmt.service systemd-sysctl.service \
	systemd-modules-load.service modprobe@.service kmod-static-nodes.service systemd-random-seed.service \
	systemd-remount-fs.service systemd-pstore.service; do
	ln -sf /dev/null "$R"/etc/systemd/system/"$u"
done

[ -f "$R"/etc/os-release ] || [ -f "$R"/usr/lib/os-release ] || die "no os-release in the Debian root"
[ -x "$R"/usr/bin/cloud-init ] || die "cloud-init is not installed"
[ -x "$R"/usr/sbin/qemu-ga ] || die "qemu-guest-agent is not installed"

rm -f base.raw
mke2fs -q -t ext4 -b 4096 -L root -d "$R" base.raw 2G >/dev/null
e2fsck -fn base.raw >/dev/null 2>&1 || die "e2fsck reports errors in the built filesystem"
qemu-img convert -O qcow2 base.raw disk.qcow2

# --- 4. publish -------------------------------------------------------------------
image_publish "$KPKG"
log "built $OUT/disk.qcow2 ($(du -h "$OUT/disk.qcow2" | cut -f1), $KPKG) in $(($(date +%s) - t0)) s"
