#!/bin/bash
# bench_locks.sh - locks through raftkv mounts (bench/bench_locks.c) on a
# 3-member cluster of mount.raftkv on 127.0.0.1 (raftkv init), with the
# references of the same run: flock in a local directory (tmpfs when
# /dev/shm is there), `raftkv lock`/unlock and `raftkv put` through the
# clerk at the same concurrency, and the commit latency of a put.
#
#   bench/bench_locks.sh [--builddir DIR] [-c CONCURRENCY] [-s SECONDS]
#                        [-r HANDOFFS]
set -eu
B=.; ARGS=()
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) B=$2; shift 2 ;;
	-c|-s|-r) ARGS+=("$1" "$2"); shift 2 ;;
	*) echo "usage: $0 [--builddir DIR] [-c C] [-s SECONDS] [-r HANDOFFS]" >&2; exit 2 ;;
	esac
done
B=$(cd "$B" && pwd)
if ! command -v fusermount3 >/dev/null || ! { exec 9<>/dev/fuse; } 2>/dev/null; then
	echo "bench_locks: no usable FUSE here: skipped"
	exit 0
fi
exec 9>&-
W=$(mktemp -d "$B/bench-locks.XXXXXX")
LOCAL=$(mktemp -d "$([ -d /dev/shm ] && echo /dev/shm || echo "$W")/bench-locks-local.XXXXXX")
MPIDS=""
unmount_all() {
	local i p
	for i in 1 2 3; do
		awk -v m="$W/m$i" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo 2>/dev/null &&
			{ fusermount3 -u "$W/m$i" 2>/dev/null || fusermount3 -u -z "$W/m$i"; }
	done
	for p in $MPIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $MPIDS; do wait "$p" 2>/dev/null || true; done
	MPIDS=""
}
trap 'cd /; unmount_all; rm -rf "$W" "$LOCAL"' EXIT
"$B/kv/raftkv" init -d "$W/cl" -n 3 --host 127.0.0.1 --port-base $((12000 + RANDOM % 18000)) >/dev/null
for i in 1 2 3; do
	mkdir -p "$W/m$i"
	"$B/fs/mount.raftkv" "$W/cl/cluster.conf" "$W/m$i" -f -o "id=$i,data=$W/cl/member$i" >>"$W/cl/member$i.log" 2>&1 &
	MPIDS="$MPIDS $!"
	up=0
	for _ in $(seq 1 300); do
		awk -v m="$W/m$i" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo && { up=1; break; }
		kill -0 "$!" 2>/dev/null || break
		sleep 0.1
	done
	# Never measure the bare directory as if it were a mount.
	if [ "$up" != 1 ]; then
		echo "bench_locks: mount $i did not come up:" >&2
		tail -5 "$W/cl/member$i.log" >&2
		exit 1
	fi
done
echo "== locks: 3 mounts on 127.0.0.1, fsync on, $(nproc) CPUs; local dir $(df --output=fstype "$LOCAL" | tail -1)"
"$B/bench/bench_locks" --conf "$W/cl/cluster.conf" --m1 "$W/m1" --m2 "$W/m2" --tmp "$LOCAL" "${ARGS[@]}"
