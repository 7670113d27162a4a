# mount.sh - a 3-mount raftkv cluster for the tests/mr/*_mount.sh
# scenarios (sourced after lib.sh, not run).
#
# mount_cluster sets up an authenticated cluster with `raftkv init` in
# $T/cl (cluster.conf, memberN.key, ports BASE+1..3 and BASE+101..103 of
# 127.0.0.1, BASE random, retried if a port turns out to be taken) and
# mounts member N (mount.raftkv -f) on $T/mN, N = 1..3; the pid of member
# N is in MPID[N].  Exit 77 (SKIP) when FUSE cannot be used here.
# lib.sh's EXIT trap calls mount_cleanup after killing the job's processes
# (which may have their working directory in a mount): each mount is
# unmounted with fusermount3 -u (lazily if still busy), then each member
# is killed by pid, whether the test passed or not.

MOUNT=$RAFTKV_BUILDDIR/fs/mount.raftkv
CLI=$RAFTKV_BUILDDIR/kv/raftkv
MPID=()

[ -x "$MOUNT" ] || fail "no $MOUNT"
command -v fusermount3 >/dev/null || { echo "SKIP: no fusermount3"; exit 77; }
{ exec 9<>/dev/fuse; } 2>/dev/null || { echo "SKIP: /dev/fuse cannot be opened"; exit 77; }
exec 9>&-

# is_mounted DIR: is a raftkv mount on DIR?  (mountinfo: field 5 is the
# mount point, the file system type follows " - ".)
is_mounted() {
	awk -v m="$1" '$5 == m { for (i = 6; i < NF; i++) if ($i == "-") { if ($(i + 1) == "fuse.raftkv") f = 1; break } }
		END { exit !f }' /proc/self/mountinfo
}

mount_cleanup() {
	local i
	for i in 1 2 3; do
		# not [ -d "$T/m$i" ]: with two members gone, a stat through the
		# third waits for a quorum until its timeout
		is_mounted "$T/m$i" || continue
		fusermount3 -u "$T/m$i" 2>/dev/null || fusermount3 -u -z "$T/m$i" 2>/dev/null
	done
	for i in 1 2 3; do
		[ -n "${MPID[$i]:-}" ] && kill -TERM "${MPID[$i]}" 2>/dev/null
	done
	for i in 1 2 3; do
		[ -n "${MPID[$i]:-}" ] || continue
		for _ in $(seq 1 50); do
			kill -0 "${MPID[$i]}" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "${MPID[$i]}" 2>/dev/null
		wait "${MPID[$i]}" 2>/dev/null
	done
	MPID=()
}

# mount_member N: start member N on $T/mN and wait until it is mounted.
# Returns 2 if its port was taken (the caller picks new ones).
mount_member() {
	local i=$1 log=$T/cl/member$1.log
	mkdir -p "$T/m$i"
	"$MOUNT" "$T/cl/cluster.conf" "$T/m$i" -f -o "id=$i,data=$T/cl/member$i" >> "$log" 2>&1 &
	MPID[$i]=$!
	for _ in $(seq 1 600); do
		is_mounted "$T/m$i" && return 0
		if ! kill -0 "${MPID[$i]}" 2>/dev/null; then
			wait "${MPID[$i]}" 2>/dev/null
			MPID[$i]=""
			grep -q "in use" "$log" && return 2
			grep -q "cannot mount on" "$log" && { echo "SKIP: FUSE mounts are not permitted here"; exit 77; }
			cat "$log" >&2
			fail "member $i exited before it was mounted"
		fi
		sleep 0.05
	done
	cat "$log" >&2
	fail "member $i was not mounted after 30 s"
}

mount_cluster() {
	local try i rc base eph_low
	eph_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ "${eph_low:-0}" -gt 12000 ] 2>/dev/null || eph_low=32768
	for try in 1 2 3 4 5; do
		mount_cleanup
		rm -rf "$T/cl"
		mkdir -p "$T/cl"
		# Below the kernel's ephemeral range, where outgoing connections
		# of concurrent tests would otherwise take our ports (as
		# tests/integration/harness.c does).
		base=$((10000 + (RANDOM * 7 + $$) % (eph_low - 10200)))
		"$CLI" init -d "$T/cl" -n 3 --host 127.0.0.1 --port-base "$base" > /dev/null || fail "raftkv init"
		rc=0
		for i in 1 2 3; do
			mount_member "$i" || { rc=$?; break; }
		done
		[ "$rc" -eq 0 ] && return 0
	done
	cat "$T/cl/member$i.log" >&2
	fail "no free ports after 5 tries"
}

# start_in DIR SECONDS CMD... : start() with DIR as the working directory.
start_in() {
	local d=$1 secs=$2; shift 2
	(cd "$d" && exec timeout -k 2s "${secs}s" "$@") &
	LAST=$!
	PIDS="$PIDS $LAST"
}

# coordinator_in DIR SECONDS OUTDIR [OPTS] : coordinator() run in DIR.
coordinator_in() {
	local d=$1 secs=$2 out=$3; shift 3
	rm -f "$T/ep"
	(cd "$d" && exec timeout -k 2s "${secs}s" "$MR" coordinator -q -c tcp://127.0.0.1:0 -e "$T/ep" -o "$out" "$@" pg-*.txt) &
	CPID=$!
	PIDS="$PIDS $CPID"
	EP=$(endpoint "$T/ep")
}
