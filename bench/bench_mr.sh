#!/bin/bash
# bench_mr.sh - word count with raftkv-mr against the shell pipeline
# `LC_ALL=C tr -cs A-Za-z '\n' | sort | uniq -c` and against the
# sequential runner, in the same run, on the 8 Gutenberg texts and on a
# 256 MiB concatenation of them, on the local disk of the build directory
# and, when FUSE can be used, in a 3-mount raftkv cluster (raftkv init,
# mount.raftkv on 127.0.0.1): the inputs copied into mount 1 (the
# concatenation split at line boundaries into files of at most 15 MiB: a
# file in a mount is one KV value, at most 16 MiB), the job run in mount 1
# and its outputs and intermediates written back into the cluster.
#
#   bench/bench_mr.sh [--builddir DIR] [--srcdir DIR] [--data DIR] [--mib N]
#
# Prints one row per run: wall seconds, input MiB/s, and for MapReduce
# runs the intermediate bytes kept in OUTDIR/.mr-tmp (map-side combining).
# Each parallel run's sorted output is checked against seq's.
set -eu
B=.; S=$(cd "$(dirname "$0")/.." && pwd); DATA=""; MIB=256
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) B=$2; shift 2 ;;
	--srcdir) S=$2; shift 2 ;;
	--data) DATA=$2; shift 2 ;;
	--mib) MIB=$2; shift 2 ;;
	*) echo "usage: $0 [--builddir DIR] [--srcdir DIR] [--data DIR] [--mib N]" >&2; exit 2 ;;
	esac
done
DATA=${DATA:-${RAFTKV_DATA:-$S/../shared/data}}
B=$(cd "$B" && pwd)
MR=$B/mr/raftkv-mr
APPS=$(cd "$B" && pwd)/mr/apps
[ -d "$DATA/gutenberg" ] || { echo "bench_mr: no $DATA/gutenberg" >&2; exit 1; }
W=$(mktemp -d "$(cd "$B" && pwd)/bench-mr.XXXXXX")
MPIDS=""
unmount_all() {
	local i p
	for i in 1 2 3; do
		awk -v m="$W/m$i" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo 2>/dev/null &&
			{ fusermount3 -u "$W/m$i" 2>/dev/null || fusermount3 -u -z "$W/m$i"; }
	done
	for p in $MPIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $MPIDS; do wait "$p" 2>/dev/null; done
	MPIDS=""
}
trap 'cd /; unmount_all; rm -rf "$W"' EXIT
cp "$DATA"/gutenberg/*.txt "$W"/
cd "$W"
: > big.txt
while [ "$(stat -c %s big.txt)" -lt $((MIB << 20)) ]; do cat pg-*.txt >> big.txt; done
truncate -s $((MIB << 20)) big.txt
# end on a line boundary
head -c $((MIB << 20)) big.txt | sed '$d' > big2.txt && mv big2.txt big.txt

now() { date +%s.%N; }
row() { # name bytes seconds [intermediate bytes]
	awk -v n="$1" -v b="$2" -v s="$3" -v i="${4:-}" 'BEGIN {
		printf "%-34s %8.1f MiB %8.2f s %8.1f MiB/s  %s\n", n, b / 1048576, s, b / 1048576 / s,
		    (i == "" ? "" : sprintf("intermediate %.1f MiB (%.1f%%)", i / 1048576, 100 * i / b)) }'
}
run_set() { # label files...
	local label=$1; shift
	local bytes t0 t1 inter
	bytes=$(cat "$@" | wc -c)
	echo "== $label: $# file(s), $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB, $(nproc) CPUs"
	t0=$(now); cat "$@" | LC_ALL=C tr -cs A-Za-z '\n' | LC_ALL=C sort | uniq -c > pipe.out; t1=$(now)
	row "tr | sort | uniq -c" "$bytes" "$(echo "$t1 - $t0" | bc)"
	t0=$(now); "$MR" seq -o . "$APPS/wc.so" "$@"; t1=$(now)
	row "raftkv-mr seq wc.so" "$bytes" "$(echo "$t1 - $t0" | bc)"
	sort mr-out-0 > seq.sorted
	for w in 1 2; do
		rm -rf out
		t0=$(now); "$MR" run -q -k -w $w -n 4 -s 32 -o out "$APPS/wc.so" "$@"; t1=$(now)
		inter=$(du -sb out/.mr-tmp | cut -f1)
		row "raftkv-mr run -w $w wc.so" "$bytes" "$(echo "$t1 - $t0" | bc)" "$inter"
		rm -rf out/.mr-tmp
		sort out/mr-out-* | cmp -s - seq.sorted || echo "   OUTPUT DIFFERS from seq"
	done
	if [ "$bytes" -lt $((64 << 20)) ]; then
		rm -rf out
		t0=$(now); "$MR" run -q -w 2 -n 4 -o out -m "$S/mr/apps/wc-map.sh" -r "$S/mr/apps/wc-reduce.sh" "$@"; t1=$(now)
		row "raftkv-mr run -w 2 streaming wc" "$bytes" "$(echo "$t1 - $t0" | bc)"
		sort out/mr-out-* | cmp -s - seq.sorted || echo "   OUTPUT DIFFERS from seq"
	fi
}
# mount_set label files...: the inputs copied into mount 1, then the job
# (run -w 2, in mount 1) with its outputs written back into the cluster.
mount_set() {
	local label=$1; shift
	local bytes t0 t1 d=$W/m1/$label
	bytes=$(cat "$@" | wc -c)
	echo "== in a raftkv mount: $label, $# file(s)"
	mkdir -p "$d"
	t0=$(now); cp "$@" "$d"/; t1=$(now)
	row "cp into the mount (not a job)" "$bytes" "$(echo "$t1 - $t0" | bc)"
	for w in 2; do
		t0=$(now); (cd "$d" && "$MR" run -q -k -w $w -n 4 -s 32 -o out "$APPS/wc.so" "$@"); t1=$(now)
		inter=$(du -sb "$d/out/.mr-tmp" | cut -f1)
		row "mount: raftkv-mr run -w $w wc.so" "$bytes" "$(echo "$t1 - $t0" | bc)" "$inter"
		sort "$W"/m2/"$label"/out/mr-out-* | cmp -s - "$W/$label.sorted" || echo "   OUTPUT (read through mount 2) DIFFERS from seq"
		rm -rf "$d/out"
	done
}

run_set "gutenberg" pg-*.txt
cp seq.sorted gut.sorted
run_set "${MIB} MiB concatenation" big.txt
cp seq.sorted big.sorted

if [ -x "$B/fs/mount.raftkv" ] && command -v fusermount3 >/dev/null &&
    { exec 9<>/dev/fuse; } 2>/dev/null; then
	exec 9>&-
	"$B/kv/raftkv" init -d "$W/cl" -n 3 --host 127.0.0.1 --port-base $((20000 + RANDOM % 30000)) >/dev/null
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
			echo "bench_mr: mount $i did not come up:" >&2
			tail -5 "$W/cl/member$i.log" >&2
			exit 1
		fi
	done
	mount_set gut pg-*.txt
	mkdir parts && (cd parts && split -C 15M -d -a 3 ../big.txt part-)
	(cd parts && mount_set big part-*)
	unmount_all
else
	echo "== no usable FUSE here: no raftkv mount rows"
fi
