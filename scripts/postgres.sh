#!/bin/sh
# postgres.sh: PostgreSQL for ecsd's tests and try-outs, from Debian's
# packages, in a throwaway cluster.
#
#   scripts/postgres.sh install
#       Install Debian's postgresql when its server binaries are missing
#       (apt-get update once, then apt-get install; as root or through sudo).
#       Idempotent: a second run installs nothing and does not touch apt.
#   scripts/postgres.sh start [--owner PID] [--no-fsync]
#       Install if needed, then make and start a throwaway cluster: a fresh
#       directory under $TMPDIR or /tmp (data, log and socket), trust
#       authentication for the superuser "ecs", listening on 127.0.0.1 on a
#       free port. Prints, one per line, shell assignments:
#           ECS_PG_DIR=/tmp/ecsd-pg.XXXXXX
#           ECS_TEST_POSTGRES=postgres://ecs@127.0.0.1:PORT/postgres?sslmode=disable
#       With --owner, the cluster belongs to process PID: a later start
#       stops the clusters whose owner has died (a test binary killed
#       before it could stop its own). --no-fsync trades durability for
#       speed (fsync=off): for tests, never for data worth keeping.
#   scripts/postgres.sh stop DIR
#       Stop the cluster in DIR (fast shutdown) and delete DIR.
#
# root cannot run postgres itself: as root the cluster runs as the
# "postgres" user the package creates; otherwise as the current user.
set -eu

log() { echo "postgres.sh: $*" >&2; }

# bindir prints the directory of the newest installed server binaries.
bindir() {
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

install() {
	if bindir >/dev/null; then
		return 0
	fi
	SUDO=""
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
			log "need root to install postgresql"
			exit 1
		fi
	fi
	log "installing postgresql"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends postgresql >&2
	bindir >/dev/null || { log "postgresql installed, but no server binaries under /usr/lib/postgresql"; exit 1; }
}

# as runs a command line as the cluster's user.
as() {
	if [ "$(id -u)" = 0 ]; then
		su postgres -s /bin/sh -c "$1"
	else
		sh -c "$1"
	fi
}

stop() {
	dir=$1
	case "$dir" in
	*/ecsd-pg.*) ;;
	*) log "refusing to stop $dir: not a directory made by postgres.sh start"; exit 1 ;;
	esac
	[ -d "$dir" ] || return 0
	if [ -f "$dir/data/postmaster.pid" ]; then
		bin=$(bindir)
		as "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}

# base prints where clusters live: $TMPDIR, or /tmp when the cluster's
# user could not reach $TMPDIR (root's own, say).
base() {
	b=${TMPDIR:-/tmp}
	if [ "$(id -u)" = 0 ] && ! su postgres -s /bin/sh -c "test -x '$b'" 2>/dev/null; then
		b=/tmp
	fi
	echo "$b"
}

# reap stops the clusters of owners that died.
reap() {
	for d in "$(base)"/ecsd-pg.*; do
		[ -f "$d/owner" ] || continue
		pid=$(cat "$d/owner")
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			log "stopping $d: its owner $pid is gone"
			stop "$d"
		fi
	done
}

start() {
	owner=""
	opts=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--owner)
			owner=$2
			shift 2
			;;
		--no-fsync)
			opts="-c fsync=off"
			shift
			;;
		*)
			log "start: unknown option $1"
			exit 2
			;;
		esac
	done
	install
	reap
	bin=$(bindir)
	dir=$(mktemp -d "$(base)/ecsd-pg.XXXXXX")
	chmod 0755 "$dir"
	if [ -n "$owner" ]; then
		echo "$owner" >"$dir/owner"
	fi
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$dir"
	fi
	if ! as "'$bin/initdb' -D '$dir/data' -A trust -U ecs -E UTF8 --locale=C.UTF-8 --no-sync" >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		log "initdb failed"
		rm -rf "$dir"
		exit 1
	fi
	# A free port: try random ones until the server binds one (a port
	# taken meanwhile makes the start fail, and the next try picks another).
	tries=0
	while :; do
		tries=$((tries + 1))
		port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
		if as "'$bin/pg_ctl' -D '$dir/data' -l '$dir/log' -w -t 60 start -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=300 $opts\"" >/dev/null 2>&1; then
			break
		fi
		if [ "$tries" -ge 10 ]; then
			cat "$dir/log" >&2 || true
			log "could not start postgres"
			rm -rf "$dir"
			exit 1
		fi
	done
	echo "ECS_PG_DIR=$dir"
	echo "ECS_TEST_POSTGRES=postgres://ecs@127.0.0.1:$port/postgres?sslmode=disable"
}

case "${1:-}" in
install) install ;;
start)
	shift
	start "$@"
	;;
stop)
	[ $# -eq 2 ] || { log "usage: $0 stop DIR"; exit 2; }
	stop "$2"
	;;
*)
	log "usage: $0 install | start [--owner PID] [--no-fsync] | stop DIR"
	exit 2
	;;
esac
