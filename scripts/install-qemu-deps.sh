#!/bin/sh
# install-qemu-deps.sh: install what the QEMU compute driver, its tests and
# scripts/build-test-image.sh need on Debian 12, and nothing that is already
# there. Idempotent: a second run installs nothing and does not touch apt.
#
#   qemu-system-x86_64                 qemu-system-x86
#   qemu-storage-daemon                qemu-system-common (pulled in by qemu-system-x86)
#   qemu-img                           qemu-utils
#   debugfs, dumpe2fs, mke2fs, e2fsck  e2fsprogs
#   xz                                 xz-utils (kernel extraction)
#   fusermount3                        fuse3 (unmounts a FUSE export left by a crash)
#   apt-get download, dpkg-deb         apt, dpkg (always on Debian)
#
# Run as root (or through sudo). Usage: scripts/install-qemu-deps.sh
set -eu

need=""
want() { # want COMMAND PACKAGE: queue PACKAGE unless COMMAND is found
	if ! command -v "$1" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$1" ] && ! [ -x "/sbin/$1" ]; then
		case " $need " in *" $2 "*) ;; *) need="$need $2" ;; esac
	fi
}
want qemu-system-x86_64 qemu-system-x86
want qemu-storage-daemon qemu-system-common
want qemu-img qemu-utils
want debugfs e2fsprogs
want dumpe2fs e2fsprogs
want mke2fs e2fsprogs
want xz xz-utils
want fusermount3 fuse3

# The unprivileged user QEMU drops to when ecsd runs as root (ecsd
# --qemu-user; ecsd also creates it at start when it is missing).
if [ "$(id -u)" = 0 ] && ! getent passwd ecsd-qemu >/dev/null 2>&1 && command -v useradd >/dev/null 2>&1; then
	useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ecsd-qemu
	echo "install-qemu-deps: created user ecsd-qemu"
fi

if [ -z "$need" ]; then
	echo "install-qemu-deps: all present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "install-qemu-deps: need root to install:$need" >&2
		exit 1
	fi
fi

echo "install-qemu-deps: installing:$need"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get install -y -qq --no-install-recommends $need
