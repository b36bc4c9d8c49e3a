#!/bin/sh
# run.sh: bring up ecsd with real QEMU VMs on a fresh Debian 12 machine.
#
# Installs QEMU and e2fsprogs when missing, builds the tiny test image on
# first run (cached in ~/.cache/ecsd/test-image, shared with the tests),
# builds ecsd and ecsctl, starts ecsd with the qemu driver on $ECS_LISTEN
# (default 127.0.0.1:8080) and state in $ECS_DATA_DIR (default ./data-qemu:
# a data dir belongs to one driver, and make run-sim uses ./data), and
# imports the test image once with `ecsd image import`. Ctrl-C stops ecsd;
# guests keep running and are reattached on the next start.
#
# Usage: scripts/run.sh [extra ecsd flags]
set -eu
cd "$(dirname "$0")/.."

DATA_DIR=${ECS_DATA_DIR:-./data-qemu}
LISTEN=${ECS_LISTEN:-127.0.0.1:8080}
IMAGE_DIR=${ECS_TEST_IMAGE_DIR:-$HOME/.cache/ecsd/test-image}
IMAGE_NAME="busybox-test (dropbear, no cloud-init)"

./scripts/install-qemu-deps.sh
./scripts/build-test-image.sh "$IMAGE_DIR"
go build -o bin/ecsd ./cmd/ecsd
go build -o bin/ecsctl ./cmd/ecsctl

./bin/ecsd --driver qemu --data-dir "$DATA_DIR" --listen "$LISTEN" "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM

# The daemon is up once it answers /healthz (over HTTPS when started with
# --tls-cert; -k because a self-signed certificate is fine for this check).
i=0
until curl -fsS "http://$LISTEN/healthz" >/dev/null 2>&1 || curl -fsSk "https://$LISTEN/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
		echo "run.sh: ecsd did not come up" >&2
		exit 1
	fi
	sleep 0.1
done

# With TLS (--tls-cert FILE or ECS_TLS_CERT), ecsctl trusts that certificate:
# a self-signed one is the usual case here.
tls_cert=${ECS_TLS_CERT:-}
prev=
for arg in "$@"; do
	case $prev in --tls-cert | -tls-cert) tls_cert=$arg ;; esac
	case $arg in --tls-cert=* | -tls-cert=*) tls_cert=${arg#*=} ;; esac
	prev=$arg
done
if [ -n "$tls_cert" ] && [ -z "${ECS_CA_CERT:-}" ]; then
	export ECS_CA_CERT="$tls_cert"
fi

export ECS_CREDENTIALS="$DATA_DIR/credentials.json"
# A failing ecsctl stops the script with its reason (rather than importing
# the image again).
images=$(./bin/ecsctl image list) || {
	kill -TERM $pid
	wait $pid
	exit 1
}
if ! printf '%s\n' "$images" | grep -qF "$IMAGE_NAME"; then
	./bin/ecsd image import --data-dir "$DATA_DIR" --name "$IMAGE_NAME" \
		--kernel "$IMAGE_DIR/vmlinux" --initrd "$IMAGE_DIR/initrd.img" "$IMAGE_DIR/disk.qcow2" >/dev/null
fi
image=$(./bin/ecsctl image list | grep -F "$IMAGE_NAME" | awk '{print $1; exit}')

echo
echo "ecsd is running with real VMs (Ctrl-C stops ecsd; guests keep running). In another shell:"
echo "  export ECS_CREDENTIALS=$ECS_CREDENTIALS     # ecsctl reads ./data/credentials.json otherwise"
if [ -n "${ECS_CA_CERT:-}" ]; then
	echo "  export ECS_CA_CERT=$ECS_CA_CERT     # the certificate ecsd serves, for ecsctl to trust"
fi
echo "  bin/ecsctl keypair create mykey --out mykey.pem"
echo "  bin/ecsctl server create --name vm1 --image $image --flavor t6.tiny.1 --keypair mykey --wait"
echo "  bin/ecsctl server show SERVER_ID          # the SSH row: ssh -p PORT root@127.0.0.1"
echo "  ssh -i mykey.pem -p PORT root@127.0.0.1"
echo "  bin/ecsctl server stop SERVER_ID --wait"
echo "  echo 'N3w-Passw0rd' | bin/ecsctl server reinstall SERVER_ID --password-stdin --wait"
echo "  bin/ecsctl server start SERVER_ID --wait  # the old key is refused, the new password works"
echo "  bin/ecsd image import --data-dir $DATA_DIR --name NAME FILE   # your own image (qcow2 or raw)"
wait $pid
