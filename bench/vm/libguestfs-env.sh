# libguestfs-env.sh: sourced by the baseline script. Installs libguestfs-tools
# (for the benchmark only: it is NOT a dependency of ecsd) and applies the
# workarounds this machine kind needs (shared/reference/vm-backend-notes.md
# §4(a)):
#   - no kernel in /boot, no /lib/modules: give supermin Debian's kernel
#     package, extracted into $LGF_DIR, with depmod -b run on its modules
#     (SUPERMIN_KERNEL, SUPERMIN_MODULES, SUPERMIN_KERNEL_VERSION), and an
#     empty /lib/modules, which supermin lstat()s;
#   - /dev/kvm is PVM and crawls: LIBGUESTFS_BACKEND_SETTINGS=force_tcg;
#   - no libvirt: LIBGUESTFS_BACKEND=direct.
# Needs root (apt-get). $LGF_DIR defaults to ~/.cache/ecsd/bench-vm/libguestfs.
PATH=$PATH:/usr/sbin:/sbin
LGF_DIR=${LGF_DIR:-$HOME/.cache/ecsd/bench-vm/libguestfs}
mkdir -p "$LGF_DIR"

if ! command -v virt-customize >/dev/null 2>&1; then
	echo "libguestfs-env: installing libguestfs-tools (benchmark only)" >&2
	t0=$(date +%s)
	apt-get install -y -q libguestfs-tools >"$LGF_DIR/apt.log" 2>&1 || {
		tail -n 20 "$LGF_DIR/apt.log" >&2
		return 1 2>/dev/null || exit 1
	}
	echo "libguestfs-env: installed in $(($(date +%s) - t0)) s" >&2
fi

# The kernel package linux-image-amd64 points at (the test image uses the same).
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$KPKG" ]; then
	echo "libguestfs-env: cannot resolve linux-image-amd64 (run apt-get update)" >&2
	return 1 2>/dev/null || exit 1
fi
KVER=${KPKG#linux-image-}
if [ ! -s "$LGF_DIR/kernel/boot/vmlinuz-$KVER" ] || [ ! -s "$LGF_DIR/kernel/lib/modules/$KVER/modules.dep" ]; then
	rm -rf "$LGF_DIR/kernel" "$LGF_DIR/debs"
	mkdir -p "$LGF_DIR/debs"
	(cd "$LGF_DIR/debs" && apt-get download -q "$KPKG" >/dev/null 2>&1)
	dpkg-deb -x "$LGF_DIR"/debs/"$KPKG"_*.deb "$LGF_DIR/kernel"
	depmod -b "$LGF_DIR/kernel" "$KVER"
	rm -rf "$LGF_DIR/debs"
fi
mkdir -p /lib/modules

export SUPERMIN_KERNEL="$LGF_DIR/kernel/boot/vmlinuz-$KVER"
export SUPERMIN_MODULES="$LGF_DIR/kernel/lib/modules/$KVER"
export SUPERMIN_KERNEL_VERSION="$KVER"
export LIBGUESTFS_BACKEND=direct
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
# The appliance cache (built on the first run, ~30 s) lives here, not in /var/tmp.
export LIBGUESTFS_CACHEDIR="$LGF_DIR/cache"
mkdir -p "$LIBGUESTFS_CACHEDIR"
