#!/bin/bash
# test_mount8.sh - mount(8), an fstab and umount(8) drive mount.raftkv as
# its users do; a daemon without log= logs to syslog at its log_level.
#
# Finding the helper: mount(8) runs /sbin/mount.TYPE (util-linux looks in
# /sbin, /sbin/fs.d and /sbin/fs only, never in $PATH), and a test must
# not install into the machine's /sbin.  So the script runs itself again
# in a private mount namespace (unshare -m) and there lays a read-only
# overlay over /sbin's real directory whose top layer holds mount.raftkv
# and mount.fuse.raftkv (symlinks to the build tree).  The same for /dev:
# an overlay brings a /dev/log on which a socket of tests/fs/syslog-sink
# (a stand-in syslog daemon) is bind-mounted.  Nothing outside the
# namespace changes, and every mount in it vanishes with it.  SKIP (77)
# when not root or when unshare or overlayfs cannot be used here.
#
# The test: a cluster by `raftkv init --quota 64M` (df shows it), three
# members as three lines of an alternative fstab
# (mount -T FILE DIR) with _netdev,noauto and other fstab-only options;
# member 1 without log= at log_level=debug and member 2 without log= at
# log_level=warn log to syslog, member 3 to a log= file with
# nosuid,noexec (which reach the mount's flags).  A file written on
# mount 1 is read on mounts 2 and 3; the syslog holds member 1's info
# and debug lines at their priorities and nothing of member 2 below warn
# or of member 3.  `umount DIR` stops each member (its PID exits, its
# data directory lock is free).  Then members 1 and 2 are mounted again
# on the same data directories by `mount -t raftkv` and `mount -t
# fuse.raftkv` (the mount.fuse.raftkv name) and read the file back, and
# member 3 by `mount -N` into another mount namespace.
#
# Cleanup (an EXIT trap, whatever happened): every mount of the test is
# unmounted, every member it started is killed by PID (found by its
# unique mountpoint in /proc/PID/cmdline: mount(8) forks the daemons),
# the syslog sink by its PID.

set -u
B=${RAFTKV_BUILDDIR:-$(pwd)}
MOUNT=$B/fs/mount.raftkv
CLI=$B/kv/raftkv
SINK=$B/tests/fs/syslog-sink

skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	local f
	echo "FAIL: $*" >&2
	for f in "${T:-/nonexistent}"/log* "${T:-/nonexistent}"/syslog; do
		[ -f "$f" ] || continue
		echo "--- last lines of $f:" >&2
		tail -n 15 "$f" >&2
	done
	exit 1
}

for p in "$MOUNT" "$CLI" "$SINK"; do
	[ -x "$p" ] || fail "no $p"
done
if [ -z "${RAFTKV_MOUNT8_NS:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (a private mount namespace)"
	command -v unshare >/dev/null || skip "no unshare"
	unshare -m --propagation private true 2>/dev/null ||
		skip "cannot create a mount namespace here"
	{ exec 9<>/dev/fuse; } 2>/dev/null || skip "/dev/fuse cannot be opened"
	exec 9>&-
	RAFTKV_MOUNT8_NS=1 exec unshare -m --propagation private "$0" "$@"
fi

# ---- in the private mount namespace from here on ----

T=$(mktemp -d "${TMPDIR:-/tmp}/raftkv-mount8-XXXXXX") || fail "mktemp"
SINKPID=""
NSPID=""

is_mounted() {
	awk -v m="$1" '$5 == m { for (i = 6; i < NF; i++) if ($i == "-") { if ($(i + 1) == "fuse.raftkv") f = 1; break } }
		END { exit !f }' /proc/self/mountinfo
}

# member_pid DIR: the pid of the mount.raftkv serving mountpoint DIR
# (argv holds DIR; $T is unique to this run).
member_pid() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' '\n' 2>/dev/null <"$p/cmdline" | grep -qx -- "$1" || continue
		tr '\0' '\n' 2>/dev/null <"$p/cmdline" | head -n 1 | grep -q 'mount\.\(fuse\.\)\?raftkv$' || continue
		echo "${p#/proc/}"
		return 0
	done
	return 1
}

# wait_gone PID SECONDS: wait until PID has exited.
wait_gone() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

cleanup() {
	local i pid
	for i in 1 2 3; do
		is_mounted "$T/m$i" || continue
		umount "$T/m$i" 2>/dev/null || umount -l "$T/m$i" 2>/dev/null
	done
	if [ -n "$NSPID" ]; then
		nsenter -t "$NSPID" -m umount -l "$T/m3" 2>/dev/null
		kill -TERM "$NSPID" 2>/dev/null
		wait "$NSPID" 2>/dev/null
	fi
	for i in 1 2 3; do
		pid=$(member_pid "$T/m$i") || continue
		kill -TERM "$pid" 2>/dev/null
		wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
	done
	[ -n "$SINKPID" ] && kill -TERM "$SINKPID" 2>/dev/null
	[ -n "$SINKPID" ] && wait "$SINKPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The helpers where mount(8) looks, in this namespace only.
SBIN=$(readlink -f /sbin)
mkdir -p "$T/helpers" "$T/devx" || fail "mkdir"
ln -s "$MOUNT" "$T/helpers/mount.raftkv"
ln -s "$MOUNT" "$T/helpers/mount.fuse.raftkv"
mount -t overlay overlay -o "lowerdir=$T/helpers:$SBIN" "$SBIN" 2>/dev/null ||
	skip "overlayfs cannot be mounted here"
[ -x /sbin/mount.raftkv ] || fail "the overlay does not show /sbin/mount.raftkv"

# A syslog daemon on /dev/log, in this namespace only.
"$SINK" "$T/devx/log" "$T/syslog" &
SINKPID=$!
for _ in $(seq 1 50); do
	[ -S "$T/devx/log" ] && break
	sleep 0.1
done
[ -S "$T/devx/log" ] || fail "the syslog sink did not start"
mount -t overlay overlay -o "lowerdir=$T/devx:/dev" /dev 2>/dev/null ||
	skip "overlayfs cannot be mounted on /dev here"
mount --bind "$T/devx/log" /dev/log || fail "bind-mount /dev/log"

# fstab_line I EXTRA: member I's line of the alternative fstab.
fstab_line() {
	echo "$T/cl/cluster.conf $T/m$1 raftkv id=$1,data=$T/d$1,timeout=6000,_netdev,noauto,nofail,x-test.opt=1,comment=raftkv$2 0 0"
}

# Three members from the fstab, on fresh ports (a port another test
# took meanwhile means new ports, up to 5 times).
eph_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
[ "${eph_low:-0}" -gt 12000 ] 2>/dev/null || eph_low=32768
mounted=no
for try in 1 2 3 4 5; do
	cleanup_try=""
	for i in 1 2 3; do
		is_mounted "$T/m$i" && umount "$T/m$i"
		pid=$(member_pid "$T/m$i") && { wait_gone "$pid" 30 || fail "member $i did not stop"; }
	done
	rm -rf "$T/cl" "$T/d1" "$T/d2" "$T/d3" "$T/log3"
	mkdir -p "$T/m1" "$T/m2" "$T/m3"
	base=$((10000 + (RANDOM * 7 + $$) % (eph_low - 10200)))
	"$CLI" init -d "$T/cl" -n 3 --host 127.0.0.1 --port-base "$base" --quota 64M >/dev/null ||
		fail "raftkv init"
	{
		fstab_line 1 ",log_level=debug"
		fstab_line 2 ",log_level=warn"
		fstab_line 3 ",log=$T/log3,nosuid,noexec"
	} >"$T/fstab"
	for i in 1 2 3; do
		if ! mount -T "$T/fstab" "$T/m$i" 2>"$T/mount.err"; then
			cat "$T/mount.err" >&2
			grep -q "in use" "$T/mount.err" && { cleanup_try=ports; break; }
			fail "mount -T fstab $T/m$i"
		fi
		# mount(8) returns once the daemon reports the mount live.
		is_mounted "$T/m$i" || fail "mount $i returned 0 but $T/m$i is not mounted"
	done
	[ -z "$cleanup_try" ] && { mounted=yes; break; }
	echo "a port was taken meanwhile: new ports"
done
[ "$mounted" = yes ] || fail "no free ports after 5 tries"
for i in 1 2 3; do
	PID[$i]=$(member_pid "$T/m$i") || fail "no daemon for $T/m$i"
done
echo "$SECONDS s: ok three members mounted by mount -T fstab (pids ${PID[1]} ${PID[2]} ${PID[3]})"

# What mount(8) passed on and what it did not.
tr '\0' ' ' <"/proc/${PID[1]}/cmdline" | grep -q "id=1,.*_netdev,nofail" ||
	fail "mount(8) did not run the helper with the fstab options"
awk -v m="$T/m3" '$5 == m { print $6 }' /proc/self/mountinfo | grep -q noexec ||
	fail "noexec of the fstab line is not a flag of mount 3"
awk -v m="$T/m1" -v s="$T/cl/cluster.conf" '$5 == m { for (i = 6; i < NF; i++) if ($i == "-") { if ($(i + 2) == s) f = 1; break } }
	END { exit !f }' /proc/self/mountinfo ||
	fail "the mount's source is not the cluster file"
echo "$SECONDS s: ok options: fstab-only ones accepted, nosuid/noexec applied, source = cluster file"

echo "written on mount 1" >"$T/m1/greeting" || fail "write on mount 1"
for i in 2 3; do
	got=$(cat "$T/m$i/greeting") || fail "read on mount $i"
	[ "$got" = "written on mount 1" ] || fail "mount $i read '$got'"
done
echo "$SECONDS s: ok a file written on mount 1 is read on mounts 2 and 3"

# The quota `raftkv init --quota` wrote is the size df shows.
size=$(df -B1 --output=size "$T/m2" | tail -n 1 | tr -d ' ')
[ "$size" = 67108864 ] || fail "df shows $size bytes, not the 64M quota"
echo "$SECONDS s: ok df shows the quota of raftkv init --quota 64M"

# Syslog: member 1 (debug) and 2 (warn) log there, member 3 to its file.
grep -q "^<30>.*mount\.raftkv\[${PID[1]}\]: fs1 info: member 1 mounted on $T/m1" "$T/syslog" ||
	{ cat "$T/syslog" >&2; fail "member 1's info line is not in syslog at LOG_DAEMON|LOG_INFO"; }
grep -q "^<31>.*mount\.raftkv\[${PID[1]}\]: fs1 debug: " "$T/syslog" ||
	{ cat "$T/syslog" >&2; fail "member 1 (log_level=debug) sent no debug line"; }
if grep -q "^<3[01]>.*mount\.raftkv\[${PID[2]}\]" "$T/syslog"; then
	cat "$T/syslog" >&2
	fail "member 2 (log_level=warn) sent lines below warn"
fi
if grep -q "mount\.raftkv\[${PID[3]}\]" "$T/syslog"; then
	fail "member 3 (log=FILE) logged to syslog"
fi
grep -q "fs3 info: member 3 mounted on $T/m3" "$T/log3" ||
	fail "member 3's log file lacks its start"
echo "$SECONDS s: ok syslog: levels mapped, log_level applied; log=FILE goes to the file"

# umount(8) stops each member: its pid exits, its data directory is free.
for i in 1 2 3; do
	umount "$T/m$i" || fail "umount $T/m$i"
	is_mounted "$T/m$i" && fail "$T/m$i still mounted after umount"
done
for i in 1 2 3; do
	wait_gone "${PID[$i]}" 60 || fail "member $i (pid ${PID[$i]}) still running 60 s after umount"
done
# (member 2 logs warnings only)
grep -q "mount\.raftkv\[${PID[1]}\]: fs1 info: stopped" "$T/syslog" ||
	fail "member 1 did not log a clean stop"
grep -q "fs3 info: stopped" "$T/log3" || fail "member 3 did not log a clean stop"
echo "$SECONDS s: ok umount stopped the three members"

# A mount namespace for mount -N below, made now while none of the test's
# mounts exists: one made later would hold private copies of them, and a
# FUSE session ends only when its last copy is unmounted.
unshare -m --propagation private sleep 600 &
NSPID=$!
for _ in $(seq 1 50); do
	[ "$(readlink "/proc/$NSPID/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] && break
	sleep 0.1
done

# The same data directories again, by -t raftkv and -t fuse.raftkv.
mount -t raftkv "$T/cl/cluster.conf" "$T/m1" -o "id=1,data=$T/d1,log=$T/log1b,_netdev" ||
	fail "mount -t raftkv again on the same data directory"
mount -t fuse.raftkv "$T/cl/cluster.conf" "$T/m2" -o "id=2,data=$T/d2,log=$T/log2b" ||
	fail "mount -t fuse.raftkv (mount.fuse.raftkv) again"
for i in 1 2; do
	PID[$i]=$(member_pid "$T/m$i") || fail "no daemon for $T/m$i"
	got=$(cat "$T/m$i/greeting") || fail "read on mount $i after the remount"
	[ "$got" = "written on mount 1" ] || fail "remounted $i read '$got'"
done
echo "$SECONDS s: ok remounted by mount -t raftkv / fuse.raftkv on the same data"

# mount -N: member 3 mounted into another mount namespace (mount(8)
# passes it to the helper as -N /proc/PID/fd/N).
mount -N "$NSPID" -t raftkv "$T/cl/cluster.conf" "$T/m3" -o "id=3,data=$T/d3,log=$T/log3b" ||
	fail "mount -N"
PID[3]=$(member_pid "$T/m3") || fail "no daemon for $T/m3"
is_mounted "$T/m3" && fail "mount -N mounted in the caller's namespace"
grep -q " $T/m3 " "/proc/$NSPID/mountinfo" || fail "mount -N: not in the target namespace"
got=$(nsenter -t "$NSPID" -m cat "$T/m3/greeting") || fail "read in the other namespace"
[ "$got" = "written on mount 1" ] || fail "mount -N read '$got'"
nsenter -t "$NSPID" -m umount "$T/m3" || fail "umount in the other namespace"
echo "$SECONDS s: ok mount -N mounts member 3 in the given namespace"

for i in 1 2; do
	umount "$T/m$i" || fail "umount $T/m$i"
done
for i in 1 2 3; do
	wait_gone "${PID[$i]}" 60 || fail "member $i still running after the second umount"
done
echo "$SECONDS s: ok umount again"
exit 0
