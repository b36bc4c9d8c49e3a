#!/bin/sh
# run.sh: bring up ecsd with real QEMU VMs on a fresh Debian 12 machine.
#
# Installs QEMU and e2fsprogs when missing, builds the tiny test image on
# first run (cached in ~/.cache/ecsd/test-image, shared with the tests),
# builds ecsd and ecsctl, starts ecsd with the qemu driver on $ECS_LISTEN
# (default 127.0.0.1:8080) and state in $ECS_DATA_DIR (default ./data), and
# imports the test image once. Ctrl-C stops ecsd; guests keep running and
# are reattached on the next start.
#
# Usage: scripts/run.sh [extra ecsd flags]
set -eu
cd "$(dirname "$0")/.."

DATA_DIR=${ECS_DATA_DIR:-./data}
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

i=0
until curl -fsS "http://$LISTEN/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
		echo "run.sh: ecsd did not come up" >&2
		exit 1
	fi
	sleep 0.1
done

ctl="./bin/ecsctl --credentials $DATA_DIR/credentials.json"
if ! $ctl image list | grep -qF "$IMAGE_NAME"; then
	abs=$(cd "$IMAGE_DIR" && pwd)
	$ctl image import --name "$IMAGE_NAME" --file "$abs/disk.qcow2" --kernel "$abs/vmlinux" --initrd "$abs/initrd.img"
fi
image=$($ctl image list | grep -F "$IMAGE_NAME" | awk '{print $1; exit}')

echo
echo "ecsd is running with real VMs (Ctrl-C stops ecsd; guests keep running). Try:"
echo "  $ctl keypair create mykey --out mykey.pem"
echo "  $ctl server create --name vm1 --image $image --flavor t6.tiny.1 --keypair mykey --wait"
echo "  $ctl server show SERVER_ID          # the SSH row: ssh -p PORT root@127.0.0.1"
echo "  ssh -i mykey.pem -p PORT root@127.0.0.1"
echo "  $ctl server stop SERVER_ID --wait"
echo "  echo 'N3w-Passw0rd' | $ctl server reinstall SERVER_ID --password-stdin --wait"
wait $pid
