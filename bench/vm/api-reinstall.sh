#!/bin/bash
# api-reinstall.sh: reinstalls measured through a real `ecsd --driver qemu`
# and its API (ecsctl), as issue 3 (scope item 9) defines them:
#   seq   host-side reinstall time, submit -> job SUCCESS, guest stopped:
#         SEQ reinstalls one after the other of one stopped server,
#         alternating a new password and a key pair;
#   conc  CONC stopped servers, one reinstall each, all submitted at once:
#         every job must end SUCCESS;
#   boot  boot-to-SSH after a reinstall: BOOTS times, reinstall the stopped
#         server with a key pair, then `server start` submit -> GUEST-READY
#         on its serial console (sshd listening; polled every 50 ms) and -> the
#         first successful `ssh -i KEY root@127.0.0.1 -p PORT true`.
#
# Usage: bench/vm/api-reinstall.sh IMAGE KERNEL INITRD SEQ CONC BOOTS [LABEL]
#
# Submit -> SUCCESS is the job's end_time (ms, from the API) minus the wall
# clock taken just before ecsctl is exec'd (so it includes ecsctl's start-up
# and request signing, a few ms); begin -> end is end_time - begin_time of
# the job. The servers are created (they boot: TCG, ~5 s each) 4 at a time
# and stopped before anything is timed; every server is deleted at the end.
# Output goes to $BENCH_OUT/api-LABEL.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
REPO=$(cd "$HERE/../.." && pwd)

if [ $# -lt 6 ]; then
	echo "usage: $0 IMAGE KERNEL INITRD SEQ CONC BOOTS [LABEL]" >&2
	exit 2
fi
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
IMAGE=$(abs "$1") KERNEL=$(abs "$2") INITRD=$(abs "$3") SEQ=$4 CONC=$5 BOOTS=$6 LABEL=${7:-$(basename "$1")}
BENCH_OUT=${BENCH_OUT:-$HOME/.cache/ecsd/bench-vm/results}
mkdir -p "$BENCH_OUT"
OUTF=$BENCH_OUT/api-$LABEL.txt
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-api.XXXXXX")
PORT=${ECS_BENCH_PORT:-$((20000 + RANDOM % 20000))}

# Build a committed revision ($ECS_BENCH_REV, default HEAD), not the work
# tree, which may hold other people's unfinished changes.
REV=$(git -C "$REPO" rev-parse "${ECS_BENCH_REV:-HEAD}")
mkdir "$W/src"
git -C "$REPO" archive "$REV" | tar -x -C "$W/src"
(cd "$W/src" && go build -o "$W/ecsd" ./cmd/ecsd && go build -o "$W/ecsctl" ./cmd/ecsctl)
"$W/ecsd" --driver qemu --data-dir "$W/data" --listen "127.0.0.1:$PORT" >"$W/ecsd.log" 2>&1 &
ECSD=$!
ctl() { "$W/ecsctl" --credentials "$W/data/credentials.json" "$@"; }
SERVERS=()
cleanup() {
	set +e
	if [ ${#SERVERS[@]} -gt 0 ] && kill -0 $ECSD 2>/dev/null; then
		ctl server delete "${SERVERS[@]}" --wait >/dev/null 2>&1
	fi
	kill -TERM $ECSD 2>/dev/null
	wait $ECSD 2>/dev/null
	# Guests outlive ecsd by design: end any of ours still running.
	for pf in $(find "$W/data" -name '*.pid' 2>/dev/null); do
		pid=$(cat "$pf" 2>/dev/null)
		if [ -n "$pid" ] && grep -q "$W/data" /proc/"$pid"/cmdline 2>/dev/null; then kill -KILL "$pid"; fi
	done
	cp "$W/ecsd.log" "$BENCH_OUT/api-$LABEL.ecsd.log" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
log() { echo "$*" | tee -a "$OUTF"; }

for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
	kill -0 $ECSD || { cat "$W/ecsd.log" >&2; exit 1; }
	sleep 0.1
done
{
	echo "# api-reinstall $LABEL: ecsd (commit $REV) --driver qemu on 127.0.0.1:$PORT; image $IMAGE"
	machine_info | sed 's/^/# /'
} >"$OUTF"

# Image import is an operator command since issue 7 (older revisions had an
# API route for it, which ecsctl called).
if "$W/ecsd" help 2>/dev/null | grep -q "image import"; then
	"$W/ecsd" image import --data-dir "$W/data" --name "bench-$LABEL" --kernel "$KERNEL" --initrd "$INITRD" "$IMAGE" >/dev/null
else
	ctl image import --name "bench-$LABEL" --file "$IMAGE" --kernel "$KERNEL" --initrd "$INITRD" >/dev/null
fi
IMG=$(ctl -o json image list | jq -r --arg n "bench-$LABEL" '.[] | select(.name == $n) | .id')
ctl keypair create benchkey --out "$W/benchkey.pem" >/dev/null
chmod 600 "$W/benchkey.pem"

# ms converts an API time (2006-01-02T15:04:05.000Z) to epoch milliseconds.
ms() { echo $(($(date -u -d "$1" +%s%N) / 1000000)); }

N=$CONC
[ "$N" -ge 1 ] || N=1
log "# creating $N servers (4 at a time) and stopping them (untimed)"
while [ ${#SERVERS[@]} -lt "$N" ]; do
	k=$((N - ${#SERVERS[@]}))
	[ $k -le 4 ] || k=4
	ids=$(ctl -o json server create --name "b$LABEL" --image "$IMG" --flavor t6.tiny.1 --keypair benchkey --count $k |
		jq -r '.serverIds[]')
	# Wait for them to be ACTIVE, then stop them.
	for id in $ids; do
		for _ in $(seq 600); do
			st=$(ctl -o json server show "$id" | jq -r .status)
			[ "$st" = ACTIVE ] && break
			[ "$st" != ERROR ] || { echo "server $id: ERROR" >&2; exit 1; }
			sleep 0.5
		done
		SERVERS+=("$id")
	done
	ctl server stop $ids --wait >/dev/null 2>&1
done
log "# $N servers stopped; load1 $(load1)"

# reinstall ID MODE prints "submit_ms begin_ms end_ms status" after the job ends.
reinstall() {
	local t0 job j
	t0=$(now_ms)
	if [ "$2" = password ]; then
		job=$(echo 'Bench-Passw0rd-1' | ctl -o json server reinstall "$1" --password-stdin | jq -r .job_id)
	else
		job=$(ctl -o json server reinstall "$1" --keypair benchkey | jq -r .job_id)
	fi
	j=$(ctl -o json job show "$job" --wait 2>/dev/null || true)
	echo "$t0 $(ms "$(echo "$j" | jq -r .begin_time)") $(ms "$(echo "$j" | jq -r .end_time)") $(echo "$j" | jq -r .status)"
}

S=${SERVERS[0]}
if [ "$SEQ" -gt 0 ]; then
	: >"$W/seq.submit" && : >"$W/seq.begin"
	l0=$(load1)
	for i in $(seq 1 "$SEQ"); do
		mode=password
		[ $((i % 2)) = 0 ] && mode=keypair
		read -r t0 b e st < <(reinstall "$S" $mode)
		[ "$st" = SUCCESS ] || { log "seq run $i: job $st"; exit 1; }
		echo $((e - t0)) >>"$W/seq.submit"
		echo $((e - b)) >>"$W/seq.begin"
		log "seq run $i ($mode): submit->SUCCESS $((e - t0)) ms, begin->end $((e - b)) ms"
	done
	log "seq submit->SUCCESS ms: $(pcts "$W/seq.submit") (load1 before $l0, after $(load1))"
	log "seq begin->end ms: $(pcts "$W/seq.begin")"
fi

if [ "$CONC" -gt 0 ]; then
	l0=$(load1)
	T0=$(now_ms)
	pids=()
	for id in "${SERVERS[@]}"; do
		reinstall "$id" keypair >"$W/conc.$id" &
		pids+=($!)
	done
	wait "${pids[@]}" # not a bare wait: ecsd is a child too
	: >"$W/conc.submit"
	ok=0 last=0
	for id in "${SERVERS[@]}"; do
		read -r t0 b e st <"$W/conc.$id"
		[ "$st" = SUCCESS ] && ok=$((ok + 1))
		echo $((e - t0)) >>"$W/conc.submit"
		[ "$e" -gt "$last" ] && last=$e
		log "conc $id: $st, submit->SUCCESS $((e - t0)) ms"
	done
	log "conc: $ok/$CONC SUCCESS; first submit -> last SUCCESS $((last - T0)) ms; per job submit->SUCCESS ms: $(pcts "$W/conc.submit") (load1 before $l0, after $(load1))"
	[ "$ok" = "$CONC" ] || exit 1
fi

if [ "$BOOTS" -gt 0 ]; then
	: >"$W/boot" && : >"$W/ready"
	for i in $(seq 1 "$BOOTS"); do
		read -r _ _ _ st < <(reinstall "$S" keypair)
		[ "$st" = SUCCESS ] || { log "boot run $i: reinstall $st"; exit 1; }
		l0=$(load1)
		touch "$W/t0"
		t0=$(now_ms)
		serial=$(find "$W/data" -path "*$S*" -name serial.log | head -n 1)
		ctl server start "$S" >/dev/null
		tr=0
		# QEMU truncates the log when it starts: only a log newer than the
		# marker is this boot's. The loop forks little (grep, sleep), so as
		# not to take CPU from the booting guest.
		for _ in $(seq 1200); do
			if [ "$serial" -nt "$W/t0" ] && grep -q GUEST-READY "$serial" 2>/dev/null; then
				tr=$(now_ms)
				break
			fi
			sleep 0.05
		done
		port=$(ctl -o json server show "$S" | jq -r '.metadata.ssh_port // empty')
		okssh=0
		for _ in $(seq 600); do
			if ssh -q -i "$W/benchkey.pem" -p "$port" -o BatchMode=yes -o ConnectTimeout=5 \
				-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1 true 2>/dev/null; then
				okssh=1
				break
			fi
			sleep 0.1
		done
		t1=$(now_ms)
		if [ $okssh != 1 ] || [ "$tr" = 0 ]; then
			log "boot run $i: GUEST-READY at $tr, SSH login: $okssh; serial log and ssh -v in $BENCH_OUT/api-$LABEL.fail.*"
			cp "$serial" "$BENCH_OUT/api-$LABEL.fail.serial.log"
			ssh -v -i "$W/benchkey.pem" -p "$port" -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=no \
				-o UserKnownHostsFile=/dev/null root@127.0.0.1 true >"$BENCH_OUT/api-$LABEL.fail.ssh.log" 2>&1
			exit 1
		fi
		echo $((t1 - t0)) >>"$W/boot"
		echo $((tr - t0)) >>"$W/ready"
		log "boot run $i: start submit -> GUEST-READY on the serial console $((tr - t0)) ms, -> SSH login with the new key $((t1 - t0)) ms (load1 before $l0)"
		ctl server stop "$S" --wait >/dev/null 2>&1
	done
	log "start -> GUEST-READY ms: $(pcts "$W/ready")"
	log "boot-to-SSH ms: $(pcts "$W/boot")"
fi
log "# loadavg at end: $(cat /proc/loadavg)"
