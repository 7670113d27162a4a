#!/bin/bash
# bench_fs.sh - the file system benchmark of issue 10: every row at 1 and
# 16 processes against tmpfs, a trivial FUSE file system (bench/trivfs,
# the cost of FUSE itself: mount.raftkv's settings - zero timeouts,
# direct_io - and once with the kernel's caches on, for reference), the
# leader's and a follower's mount of a 3-member authenticated raftkv
# cluster (raftkv init, mount.raftkv on 127.0.0.1, data in the build
# directory: the three members share its disk), with the references
# `raftkv put` (bench/kvbench, 1 KiB values, one clerk per client) and
# `dd if=/dev/zero bs=1M conv=fsync` on the same disk, all in the same run,
# printed as one table with the goals met or missed.
#
#   bench/bench_fs.sh [--builddir DIR] [--srcdir DIR] [--quick]
#
# Rows (bench/bench_fs.c does the measuring):
#   stat    stat of a file another mount just changed (write+close on one
#           mount, stat on the other; tmpfs and trivfs have one mount);
#           stats/s, a stale size counted
#   4k      4 KiB random pread of one file (the seq file of the 1-process
#           run)
#   create  create + write 1 KiB + close of new files, files/s
#   seqw    1 MiB writes of a FILE-MiB file (split over the processes),
#           then fsync; MiB/s.  FILE is RAFTKV_BENCH_MIB (256) lowered to
#           what a raftkv mount accepts (a write failing with EFBIG)
#   seqr    reading those files back, MiB/s
#   readdir listing a directory of RAFTKV_BENCH_DIRENTS (10000) files
#   untar   tar xzf of the dist tarball (`make dist`), one per process,
#           wall seconds
# Environment: RAFTKV_BENCH_SECONDS (3) per timed row, RAFTKV_BENCH_MIB,
# RAFTKV_BENCH_DIRENTS, RAFTKV_BENCH_PROCS ("1 16"), RAFTKV_BENCH_MOUNT_OPTS
# (more mount.raftkv -o options, e.g. writebuf=16777216), RAFTKV_BENCH_ROWS
# (a subset of "stat seq 4k create readdir untar") and
# RAFTKV_BENCH_TARGETS (of "tmpfs triv trivc leader follower").  --quick: 1 s,
# 32 MiB, 1000 entries.  Everything it starts is stopped by PID and
# unmounted, and its directory removed, on any exit.
set -u
B=.; S=$(cd "$(dirname "$0")/.." && pwd); QUICK=0
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) B=$2; shift 2 ;;
	--srcdir) S=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	*) echo "usage: $0 [--builddir DIR] [--srcdir DIR] [--quick]" >&2; exit 2 ;;
	esac
done
B=$(cd "$B" && pwd)
if [ $QUICK = 1 ]; then
	SECS=${RAFTKV_BENCH_SECONDS:-1}; MIB=${RAFTKV_BENCH_MIB:-32}
	NDIR=${RAFTKV_BENCH_DIRENTS:-1000}
else
	SECS=${RAFTKV_BENCH_SECONDS:-3}; MIB=${RAFTKV_BENCH_MIB:-256}
	NDIR=${RAFTKV_BENCH_DIRENTS:-10000}
fi
PROCS=${RAFTKV_BENCH_PROCS:-1 16}
MOPTS=${RAFTKV_BENCH_MOUNT_OPTS:+,$RAFTKV_BENCH_MOUNT_OPTS}
ROWS=" ${RAFTKV_BENCH_ROWS:-stat seq 4k create readdir untar} "
TARGETS=${RAFTKV_BENCH_TARGETS:-tmpfs triv trivc leader follower}
want() { case $ROWS in *" $1 "*) return 0 ;; esac; return 1; }
BFS=$B/bench/bench_fs
TRIVFS=$B/bench/trivfs
KVBENCH=$B/bench/kvbench
MOUNT=$B/fs/mount.raftkv
CLI=$B/kv/raftkv
for p in "$BFS" "$TRIVFS" "$KVBENCH" "$MOUNT" "$CLI"; do
	[ -x "$p" ] || { echo "bench_fs: $p not built" >&2; exit 1; }
done
if ! command -v fusermount3 >/dev/null || ! { exec 9<>/dev/fuse; } 2>/dev/null; then
	echo "bench_fs: no usable FUSE here (/dev/fuse, fusermount3): skipped"
	exit 0
fi
exec 9>&-

W=$(mktemp -d "$B/bench-fs.XXXXXX")
PIDS=""
MNTS=""
SHM=""
is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }
cleanup() {
	local m p
	trap - EXIT INT TERM
	cd /
	for m in $MNTS; do
		is_mounted "$m" || continue
		case $m in
		*/tmpfs) umount "$m" 2>/dev/null || umount -l "$m" ;;
		*) fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" ;;
		esac
	done
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	rm -rf "$W"
	[ -z "$SHM" ] || rm -rf "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "bench_fs: $*" >&2; exit 1; }
now() { date +%s.%N; }
wait_mounted() { # DIR PID: up to 30 s
	local _
	for _ in $(seq 1 300); do
		is_mounted "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# ---- the targets ----
mkdir -p "$W/tmpfs" "$W/triv" "$W/trivc"
if mount -t tmpfs -o size=4g tmpfs "$W/tmpfs" 2>/dev/null; then
	MNTS="$MNTS $W/tmpfs"
	TMPFS_NOTE="tmpfs"
else
	SHM=$(mktemp -d /dev/shm/bench-fs.XXXXXX)
	rmdir "$W/tmpfs"; ln -s "$SHM" "$W/tmpfs"
	TMPFS_NOTE="tmpfs (/dev/shm)"
fi
"$TRIVFS" "$W/triv" >"$W/trivfs.log" 2>&1 &
PIDS="$PIDS $!"; MNTS="$MNTS $W/triv"
wait_mounted "$W/triv" $! || die "trivfs did not mount: $(cat "$W/trivfs.log")"
"$TRIVFS" "$W/trivc" -o cached >"$W/trivfsc.log" 2>&1 &
PIDS="$PIDS $!"; MNTS="$MNTS $W/trivc"
wait_mounted "$W/trivc" $! || die "trivfs -o cached did not mount"

# The cluster: ports below the ephemeral range, free when tested; a new
# set when a member cannot bind (another test took one meanwhile).
lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
port_free() { ! ss -Htan "sport = :$1" 2>/dev/null | grep -q .; }
LEADER=""
for attempt in 1 2 3 4 5; do
	base=$((10000 + RANDOM % (lo - 10300)))
	ok=1
	for i in 1 2 3; do port_free $((base + i)) && port_free $((base + 100 + i)) || ok=0; done
	[ $ok = 1 ] || continue
	CL=$W/cl$attempt
	mkdir -p "$CL"
	"$CLI" init -d "$CL" -n 3 --host 127.0.0.1 --port-base "$base" >/dev/null || die "raftkv init failed"
	CPIDS=""
	for i in 1 2 3; do
		mkdir -p "$W/m$i"
		"$MOUNT" "$CL/cluster.conf" "$W/m$i" -f -o "id=$i,data=$CL/member$i$MOPTS" >>"$CL/member$i.log" 2>&1 &
		CPIDS="$CPIDS $!"; PIDS="$PIDS $!"; MNTS="$MNTS $W/m$i"
	done
	i=0; up=1
	for p in $CPIDS; do i=$((i + 1)); wait_mounted "$W/m$i" "$p" || up=0; done
	if [ $up = 1 ]; then
		for _ in $(seq 1 100); do
			LEADER=$("$CLI" -c "$CL/cluster.conf" status 2>/dev/null |
				awk -F'\t' '$2 == "leader" { print $1 }')
			[ -n "$LEADER" ] && break
			sleep 0.1
		done
	fi
	[ -n "$LEADER" ] && break
	echo "bench_fs: cluster attempt $attempt failed (ports $base+):" >&2
	tail -n 3 "$CL"/member*.log >&2
	for i in 1 2 3; do is_mounted "$W/m$i" && { fusermount3 -u "$W/m$i" 2>/dev/null || fusermount3 -u -z "$W/m$i"; }; done
	for p in $CPIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
done
[ -n "$LEADER" ] || die "no cluster with a leader after 5 attempts"
FOLLOWER=$((LEADER % 3 + 1))
CONF=$CL/cluster.conf
ML=$W/m$LEADER
MF=$W/m$FOLLOWER

# ---- sizes: the largest file a raftkv mount takes, up to MIB ----
got=$("$BFS" probe -s $((MIB << 20)) "$ML/probe" 2>&1 | sed -n 's/^PROBE bytes=//p')
[ -n "$got" ] || die "probe of the file size limit failed"
FILE_MIB=$MIB
SIZE_NOTE=""
if [ $((got >> 20)) -lt "$MIB" ]; then
	FILE_MIB=$((got >> 20))
	SIZE_NOTE="file size ${FILE_MIB} MiB, not $MIB: the largest a raftkv mount accepts (EFBIG above)"
fi
[ "$FILE_MIB" -ge 1 ] || die "a raftkv mount takes no 1 MiB file"

# ---- the dist tarball, made once ----
TARBALL=$W/dist.tar.gz
TAR_NOTE="dist tarball (make dist)"
dist=$(sed -n 's/^PACKAGE = //p' "$B/Makefile")-$(sed -n 's/^VERSION = //p' "$B/Makefile")
if ! make -s -C "$B" dist-gzip >"$W/dist.log" 2>&1 ||
    [ ! -f "$B/$dist.tar.gz" ]; then
	git -C "$S" archive --format=tar.gz -o "$TARBALL" HEAD ||
		die "neither make dist nor git archive made a tarball"
	TAR_NOTE="git archive HEAD (make dist failed: see below)"
	tail -n 3 "$W/dist.log" | sed 's/^/  make dist: /' >&2
else
	mv "$B/$dist.tar.gz" "$TARBALL"
fi
TAR_FILES=$(tar tzf "$TARBALL" | wc -l)
TAR_KIB=$(($(stat -c %s "$TARBALL") / 1024))

# ---- measuring ----
declare -A V P50 P99 NOTE
dir_of() { # target -> its directory for this run
	case $1 in
	tmpfs) echo "$W/tmpfs/b" ;;
	triv) echo "$W/triv/b" ;;
	trivc) echo "$W/trivc/b" ;;
	leader) echo "$ML/bl" ;;
	follower) echo "$MF/bf" ;;
	esac
}
other_of() { # target -> the same directory seen through "another mount"
	case $1 in
	leader) echo "$MF/bl" ;;
	follower) echo "$ML/bf" ;;
	*) dir_of "$1" ;;
	esac
}
# measure KEY FIELD bench_fs-args...: one result into V[KEY]
measure() {
	local key=$1 field=$2 out line
	shift 2
	out=$("$BFS" "$@" 2>&1)
	line=$(printf '%s\n' "$out" | grep '^RESULT' | tail -n 1)
	if [ -z "$line" ]; then
		V[$key]=ERR
		printf '%s\n' "$out" | head -n 3 | sed "s/^/  $key: /" >&2
		return
	fi
	V[$key]=$(printf '%s\n' "$line" | sed -n "s/.* $field=\([^ ]*\).*/\1/p")
	P50[$key]=$(printf '%s\n' "$line" | sed -n 's/.* p50_us=\([^ ]*\).*/\1/p')
	P99[$key]=$(printf '%s\n' "$line" | sed -n 's/.* p99_us=\([^ ]*\).*/\1/p')
	local err stale
	err=$(printf '%s\n' "$line" | sed -n 's/.* errors=\([0-9]*\).*/\1/p')
	stale=$(printf '%s\n' "$line" | sed -n 's/.* stale=\([0-9]*\).*/\1/p')
	[ "${err:-0}" = 0 ] || { NOTE[$key]="${NOTE[$key]:-}e$err"; printf '%s\n' "$out" | grep -v '^RESULT' | head -n 2 | sed "s/^/  $key: /" >&2; }
	[ "${stale:-0}" = 0 ] || NOTE[$key]="${NOTE[$key]:-}s$stale"
}
untar() { # KEY DIR PROCS: P tar processes, wall seconds
	local key=$1 d=$2 n=$3 t0 t1 i pids="" rc=0
	for i in $(seq 1 "$n"); do mkdir -p "$d/untar$n.$i"; done
	t0=$(now)
	for i in $(seq 1 "$n"); do tar xzf "$TARBALL" -C "$d/untar$n.$i" 2>"$W/tar.err.$i" & pids="$pids $!"; done
	for i in $pids; do wait "$i" || rc=1; done
	t1=$(now)
	if [ $rc = 0 ]; then
		V[$key]=$(echo "$t1 - $t0" | bc -l | awk '{ printf "%.2f", $1 }')
	else
		V[$key]=ERR; head -n 2 "$W"/tar.err.* | sed "s/^/  $key: /" >&2
	fi
}

T_START=$(date +%s)
echo "bench_fs: leader member $LEADER, follower member $FOLLOWER;" \
	"${SECS}s per timed row, file ${FILE_MIB} MiB, $NDIR entries, procs: $PROCS" >&2
for t in $TARGETS; do
	d=$(dir_of "$t"); o=$(other_of "$t")
	mkdir -p "$d/stat" "$d/seq1"
	echo "bench_fs: $t ..." >&2
	want stat && for n in $PROCS; do
		measure "stat,$n,$t" ops_s stat -n "$n" -t "$SECS" "$o/stat" "$d/stat"
	done
	want seq && for n in $PROCS; do
		mkdir -p "$d/seq$n"
		measure "seqw,$n,$t" mib_s seqwrite -n "$n" -s $((FILE_MIB << 20)) "$d/seq$n"
		measure "seqr,$n,$t" mib_s seqread -n "$n" -s $((FILE_MIB << 20)) "$d/seq$n"
	done
	if want 4k; then
		[ -f "$d/seq1/seq.0" ] ||
			"$BFS" seqwrite -s $((FILE_MIB << 20)) "$d/seq1" >/dev/null
		for n in $PROCS; do
			measure "4k,$n,$t" ops_s randread -n "$n" -t "$SECS" "$d/seq1/seq.0"
		done
	fi
	rm -rf "$d"/seq*
	want create && for n in $PROCS; do
		mkdir -p "$d/create$n"
		measure "create,$n,$t" ops_s create -n "$n" -t "$SECS" "$d/create$n"
	done
	if want readdir; then
		# The leader's and the follower's rows list one directory.
		ents=$d/ents
		[ "$t" = follower ] && ents=$MF/bl/ents
		if [ ! -d "$ents" ]; then
			mkdir -p "$ents"
			"$BFS" mkfiles -n 16 -c "$NDIR" "$ents" >/dev/null ||
				echo "  $t: making $NDIR entries failed" >&2
		fi
		for n in $PROCS; do
			measure "readdir,$n,$t" ops_s readdir -n "$n" -t "$SECS" -c "$NDIR" "$ents"
		done
	fi
	want untar && for n in $PROCS; do
		untar "untar,$n,$t" "$d" "$n"
	done
	# Free tmpfs's and trivfs's memory; the cluster is thrown away whole.
	case $t in tmpfs | triv | trivc) rm -rf "$d" ;; esac
done
ddp=""
# references: raftkv put at the same concurrency, dd conv=fsync on the disk
for n in $PROCS; do
	want create || want seq || break
	out=$("$KVBENCH" -c "$CONF" -w put -n "$n" -s 1024 -d "$SECS" -W 1 2>&1)
	V[put,$n]=$(printf '%s\n' "$out" | sed -n 's/.* ops_s=\([^ ]*\).*/\1/p')
	[ -n "${V[put,$n]}" ] || { V[put,$n]=ERR; printf '%s\n' "$out" | head -n 2 >&2; }
	mkdir -p "$W/dd$n"
	per=$((FILE_MIB / n)); [ $per -ge 1 ] || per=1
	t0=$(now)
	for i in $(seq 1 "$n"); do
		dd if=/dev/zero of="$W/dd$n/f$i" bs=1M count=$per conv=fsync status=none & ddp="${ddp:-} $!"
	done
	for p in $ddp; do wait "$p"; done; ddp=""
	t1=$(now)
	V[dd,$n]=$(echo "$per * $n / ($t1 - $t0)" | bc -l | awk '{ printf "%.1f", $1 }')
	rm -rf "$W/dd$n"
done
NOW_LEADER=$("$CLI" -c "$CONF" status 2>/dev/null | awk -F'\t' '$2 == "leader" { print $1 }')
T_RUN=$(($(date +%s) - T_START))

# ---- the table ----
ratio() { # a b -> a/b or -
	case "$1,$2" in *ERR* | ,* | *, ) echo "-"; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}
verdict() { # ratio... goal -> "met" / "MISSED"
	local g=${!#} r ok=1
	for r in "${@:1:$(($# - 1))}"; do
		[ "$r" = "-" ] && { echo "n/a"; return; }
		awk -v r="$r" -v g="$g" 'BEGIN { exit !(r >= g) }' || ok=0
	done
	[ $ok = 1 ] && echo "met" || echo "MISSED"
}
cell() { # key -> value with notes
	local v=${V[$1]:-"-"} n=${NOTE[$1]:-}
	[ -n "$n" ] && v="$v!$n"
	echo "$v"
}
fmt="%-30s %5s %10s %10s %10s %10s %10s  %-14s %s\n"
echo
echo "== raftkv file system benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, ${T_RUN}s)"
echo "   leader = member $LEADER's mount, follower = member $FOLLOWER's; $TMPFS_NOTE;" \
	"trivfs = bench/trivfs with mount.raftkv's settings (0 s timeouts, direct_io);"
echo "   trivfs-c = trivfs with 1 s timeouts and the page cache (reference only)"
[ -n "$SIZE_NOTE" ] && echo "   $SIZE_NOTE"
[ -n "$MOPTS" ] && echo "   mount.raftkv -o ...$MOPTS"
[ "$NOW_LEADER" = "$LEADER" ] || echo "   NOTE: the leader changed during the run (now: ${NOW_LEADER:-none})"
echo "   untar: $TAR_NOTE, $TAR_FILES entries, $TAR_KIB KiB, one tar per process"
printf "$fmt" "operation (unit)" procs tmpfs trivfs trivfs-c leader follower reference "goal: ratio (L, F)"
row() { # op label n reference-value reference-name goal-text
	local op=$1 label=$2 n=$3 ref=$4 refname=$5 goal=$6
	printf "$fmt" "$label" "$n" "$(cell "$op,$n,tmpfs")" "$(cell "$op,$n,triv")" \
		"$(cell "$op,$n,trivc")" "$(cell "$op,$n,leader")" "$(cell "$op,$n,follower")" \
		"$ref${refname:+ $refname}" "$goal"
}
want stat && for n in $PROCS; do
	rl=$(ratio "${V[stat,$n,leader]:-}" "${V[stat,$n,triv]:-}")
	rf=$(ratio "${V[stat,$n,follower]:-}" "${V[stat,$n,triv]:-}")
	if [ "$n" = 1 ]; then g="F/trivfs $rf >= 0.5: $(verdict "$rf" 0.5)"
	elif [ "$n" = 16 ]; then g="/trivfs $rl, $rf >= 0.75: $(verdict "$rl" "$rf" 0.75)"
	else g="/trivfs $rl, $rf"; fi
	row stat "stat after change (stat/s)" "$n" "" "" "$g"
done
want 4k && for n in $PROCS; do
	rl=$(ratio "${V[4k,$n,leader]:-}" "${V[4k,$n,triv]:-}")
	rf=$(ratio "${V[4k,$n,follower]:-}" "${V[4k,$n,triv]:-}")
	if [ "$n" = 1 ]; then g="F/trivfs $rf >= 0.5: $(verdict "$rf" 0.5)"
	elif [ "$n" = 16 ]; then g="/trivfs $rl, $rf >= 0.75: $(verdict "$rl" "$rf" 0.75)"
	else g="/trivfs $rl, $rf"; fi
	row 4k "4 KiB random read (reads/s)" "$n" "" "" "$g"
done
want create && for n in $PROCS; do
	rl=$(ratio "${V[create,$n,leader]:-}" "${V[put,$n]:-}")
	rf=$(ratio "${V[create,$n,follower]:-}" "${V[put,$n]:-}")
	row create "create+1KiB+close (files/s)" "$n" "${V[put,$n]:-}" put \
		"/put $rl, $rf >= 0.8: $(verdict "$rl" "$rf" 0.8)"
done
want seq && for n in $PROCS; do
	rl=$(ratio "${V[seqw,$n,leader]:-}" "${V[dd,$n]:-}")
	rf=$(ratio "${V[seqw,$n,follower]:-}" "${V[dd,$n]:-}")
	row seqw "seq write+fsync (MiB/s)" "$n" "${V[dd,$n]:-}" dd \
		"/dd $rl, $rf >= 0.3: $(verdict "$rl" "$rf" 0.3)"
done
want seq && for n in $PROCS; do row seqr "seq read (MiB/s)" "$n" "" "" ""; done
want readdir && for n in $PROCS; do row readdir "readdir $NDIR (listings/s)" "$n" "" "" ""; done
want untar && for n in $PROCS; do row untar "untar (s, lower is better)" "$n" "" "" ""; done
echo
echo "   latency p50/p99 in microseconds (per stat, 4 KiB pread, create, 1 MiB write/read, listing):"
lat() { local k=$1; [ -n "${P50[$k]:-}" ] && echo "${P50[$k]%.*}/${P99[$k]%.*}" || echo "-"; }
for op in stat 4k create seqw seqr readdir; do
	case $op in seqw | seqr) want seq ;; *) want $op ;; esac || continue
	for n in $PROCS; do
		printf "$fmt" "  $op" "$n" "$(lat "$op,$n,tmpfs")" "$(lat "$op,$n,triv")" \
			"$(lat "$op,$n,trivc")" "$(lat "$op,$n,leader")" "$(lat "$op,$n,follower")" "" ""
	done
done
echo "   !eN: N operations failed (first on stderr); !sN: N stats saw a stale size." \
	"stat/s = stats per second spent in stat, summed over processes."
