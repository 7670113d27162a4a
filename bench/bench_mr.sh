#!/bin/bash
# bench_mr.sh - word count with raftkv-mr against the shell pipeline
# `LC_ALL=C tr -cs A-Za-z '\n' | sort | uniq -c` and against the
# sequential runner, in the same run, on the 8 Gutenberg texts and on a
# 256 MiB concatenation of them, all on the local disk of the build
# directory (the raftkv mount rows come once mount.raftkv is in main).
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
MR=$(cd "$B" && pwd)/mr/raftkv-mr
APPS=$(cd "$B" && pwd)/mr/apps
[ -d "$DATA/gutenberg" ] || { echo "bench_mr: no $DATA/gutenberg" >&2; exit 1; }
W=$(mktemp -d "$(cd "$B" && pwd)/bench-mr.XXXXXX")
trap 'rm -rf "$W"' EXIT
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
run_set "gutenberg" pg-*.txt
run_set "${MIB} MiB concatenation" big.txt
