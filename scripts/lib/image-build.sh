# image-build.sh: what scripts/build-test-image.sh and
# scripts/build-cloudinit-image.sh share. Sourced, after the script sets
# NAME (its name in messages) and FORMAT (its image format: bump it when
# the image content changes, so that caches are rebuilt).
#
#   image_args "$@"      parses [--force] OUTDIR; sets OUT (absolute,
#                        created). When OUT already holds vmlinux,
#                        initrd.img and disk.qcow2 of this FORMAT, says so
#                        and exits 0 (unless --force).
#   log MSG / die MSG    say MSG on stdout / on stderr and exit 1.
#   need_tools TOOL...   dies unless every TOOL is on PATH.
#   extract_kernel VMLINUZ
#                        writes ./vmlinux: the xz-compressed ELF kernel
#                        inside Debian's vmlinuz (QEMU boots it through its
#                        PVH note).
#   initrd_modules KDIR MODULES
#                        copies (decompressing) each module of MODULES from
#                        the kernel tree KDIR into initrd/lib/modules and
#                        lists them, in order, in initrd/modules.order;
#                        dies if one is missing or needs one not before it.
#   image_publish KPKG   moves ./vmlinux, ./initrd.img and ./disk.qcow2
#                        into OUT, disk.qcow2 last, and stamps OUT with
#                        KERNEL (KPKG) and FORMAT once all are in place.

log() { echo "$NAME: $*"; }
die() {
	echo "$NAME: $*" >&2
	exit 1
}

image_args() {
	force=0
	if [ "${1:-}" = "--force" ]; then
		force=1
		shift
	fi
	if [ $# -ne 1 ]; then
		echo "usage: $0 [--force] OUTDIR" >&2
		exit 2
	fi
	mkdir -p "$1"
	OUT=$(cd "$1" && pwd)
	if [ $force = 0 ] && [ -s "$OUT/vmlinux" ] && [ -s "$OUT/initrd.img" ] && [ -s "$OUT/disk.qcow2" ] &&
		[ "$(cat "$OUT/FORMAT" 2>/dev/null)" = "$FORMAT" ]; then
		echo "$NAME: $OUT is up to date (use --force to rebuild)"
		exit 0
	fi
}

need_tools() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run scripts/install-qemu-deps.sh"
	done
}

extract_kernel() {
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | head -n 1 | cut -d: -f1)
	[ -n "$off" ] || die "no xz stream in $1"
	tail -c +$((off + 1)) "$1" | xz -dc --single-stream >vmlinux
	[ "$(head -c 4 vmlinux | od -An -c | tr -d ' ')" = '177ELF' ] || die "extracted kernel is not an ELF file"
}

initrd_modules() {
	loaded=" "
	for m in $2; do
		f=$(find "$1" -name "$m.ko" -o -name "$m.ko.xz" | head -n 1)
		[ -n "$f" ] || die "module $m not in $KPKG"
		case $f in
		*.xz) xz -dc "$f" >initrd/lib/modules/"$m".ko ;;
		*) cp "$f" initrd/lib/modules/"$m".ko ;;
		esac
		deps=$(LC_ALL=C grep -aoE 'depends=[A-Za-z0-9_,-]*' initrd/lib/modules/"$m".ko | head -n 1 | cut -d= -f2 | tr , ' ')
		for d in $deps; do
			case "$loaded" in
			*" $d "* | *" $(echo "$d" | tr _ -) "* | *" $(echo "$d" | tr - _) "*) ;;
			*) die "module $m needs $d, which is not loaded before it" ;;
			esac
		done
		loaded="$loaded$m "
		echo "$m" >>initrd/modules.order
	done
}

image_publish() {
	rm -f "$OUT/FORMAT" "$OUT/disk.qcow2"
	mv vmlinux "$OUT/vmlinux"
	mv initrd.img "$OUT/initrd.img"
	echo "$1" >"$OUT/KERNEL"
	mv disk.qcow2 "$OUT/disk.qcow2"
	echo "$FORMAT" >"$OUT/FORMAT"
}
