# lib.sh: helpers sourced by the bench/vm scripts.

# now_ms prints the wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# load1 prints the 1-minute load average.
load1() { cut -d' ' -f1 /proc/loadavg; }

# pcts FILE prints "n=N p50=X p95=Y min=A max=B" for the numbers in FILE (one
# a line), with the percentile rule of the Go benchmarks
# (internal/compute/qemu/vm_test.go): sorted[min(n-1, floor(p*n))].
pcts() {
	sort -n "$1" | awk '{ v[NR-1] = $1 } END {
		n = NR
		if (n == 0) { print "n=0"; exit }
		i50 = int(0.50 * n); if (i50 > n - 1) i50 = n - 1
		i95 = int(0.95 * n); if (i95 > n - 1) i95 = n - 1
		printf "n=%d p50=%s p95=%s min=%s max=%s\n", n, v[i50], v[i95], v[0], v[n-1]
	}'
}

# to_raw IMAGE OUT converts a qcow2 or raw image to a raw file (untimed setup).
to_raw() {
	fmt=$(qemu-img info --output=json "$1" | jq -r .format)
	qemu-img convert -f "$fmt" -O raw "$1" "$2"
}

# machine_info prints the machine facts docs/benchmarks-vm.md records.
machine_info() {
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "nproc: $(nproc)"
	echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "ram: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "kernel: $(uname -r)"
	echo "go: $(go version 2>/dev/null)"
	echo "qemu: $(qemu-system-x86_64 --version | head -n 1)"
	echo "e2fsprogs: $(debugfs -V 2>&1 | head -n 1)"
	if command -v virt-customize >/dev/null 2>&1; then
		echo "libguestfs: $(virt-customize --version)"
	fi
	echo "loadavg: $(cat /proc/loadavg)"
}
