#!/usr/bin/env bash
# scripts/cluster.sh - set everything up (scripts/setup.sh), then run a
# local 3-member raftkv cluster on 127.0.0.1 in the foreground, set up by
# `raftkv init` (CURVE keys for the members, a client and an admin
# credential, all in DIR next to the cluster file), each member a mount
# (mount.raftkv(8)) of the cluster under DIR/mnt1..3: show a file
# written on one mount read on the other two, a rename, a lockfile and
# `raftkv get` of a file, print how to use it from another shell, and keep
# it running until Ctrl-C, which unmounts and stops the members it started
# (by PID) and leaves their data directories for the next start.
# Without FUSE (no usable /dev/fuse) the members run as raftkv-server.
#
# usage: scripts/cluster.sh [DIR]     (default DIR: ./cluster, kept across runs)
# environment: RAFTKV_BASE_PORT (default 7400; uses BASE+1..3 and BASE+101..103)
set -euo pipefail

cd "$(dirname "$0")/.."
top=$(pwd)
./scripts/setup.sh build

dir=${1:-$top/cluster}
base=${RAFTKV_BASE_PORT:-7400}
server=$top/build/kv/raftkv-server
mountprog=$top/build/fs/mount.raftkv
cli=$top/build/kv/raftkv
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/cluster.conf
if [ ! -f "$conf" ]; then
	"$cli" init -d "$dir" -n 3 --host 127.0.0.1 --port-base "$base" >/dev/null
elif ! grep -q ' key=' "$conf"; then
	echo "cluster: $conf has no keys (made before raftkv init existed):" \
		"remove $dir to set up an authenticated cluster" >&2
	exit 1
fi

fuse=0
if [ -x "$mountprog" ] && command -v fusermount3 >/dev/null &&
    { exec 9<>/dev/fuse; } 2>/dev/null; then
	exec 9>&-
	fuse=1
fi

# is_mounted DIR: is a raftkv mount on DIR?  (/proc/self/mountinfo:
# field 5 is the mount point; the file system type follows " - ".)
is_mounted() {
	awk -v m="$1" '$5 == m { for (i = 6; i < NF; i++) if ($i == "-") { if ($(i + 1) == "fuse.raftkv") f = 1; break } }
		END { exit !f }' /proc/self/mountinfo
}

pids=()
stop() {
	trap - EXIT INT TERM
	echo
	if [ "$fuse" = 1 ]; then
		for i in 1 2 3; do
			fusermount3 -u "$dir/mnt$i" 2>/dev/null ||
				fusermount3 -u -z "$dir/mnt$i" 2>/dev/null || true
		done
	fi
	echo "cluster: stopping members ${pids[*]:-}"
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	echo "cluster: stopped; data kept in $dir"
}
trap stop EXIT INT TERM

for i in 1 2 3; do
	if [ "$fuse" = 1 ]; then
		mkdir -p "$dir/mnt$i"
		if is_mounted "$dir/mnt$i"; then
			fusermount3 -u -z "$dir/mnt$i" || true
		fi
		"$mountprog" "$conf" "$dir/mnt$i" -f \
			-o "id=$i,data=$dir/member$i" >>"$dir/member$i.log" 2>&1 &
	else
		"$server" -c "$conf" -i "$i" -d "$dir/member$i" \
			>>"$dir/member$i.log" 2>&1 &
	fi
	pids+=("$!")
done
export RAFTKV_CLUSTER=$conf

if [ "$fuse" = 1 ]; then
	for i in 1 2 3; do
		for _ in $(seq 1 100); do
			is_mounted "$dir/mnt$i" &&
				break
			sleep 0.1
		done
	done
	echo "cluster: 3 members mounted on $dir/mnt{1,2,3}" \
		"(logs: $dir/member{1,2,3}.log)"
else
	echo "cluster: no FUSE here; 3 members started without mounts" \
		"(logs: $dir/member{1,2,3}.log)"
fi
for _ in $(seq 1 50); do
	"$cli" status 2>/dev/null | cut -f2 | grep -qx leader && break
	sleep 0.1
done
echo
"$cli" status
echo
if [ "$fuse" = 1 ]; then
	cd "$dir"
	run() { echo "\$ $*"; "$@"; }
	run mkdir -p mnt1/demo
	echo "\$ echo 'hello from mount 1' > mnt1/demo/greeting"
	echo 'hello from mount 1' > mnt1/demo/greeting
	run cat mnt2/demo/greeting
	run cat mnt3/demo/greeting
	run mv mnt2/demo/greeting mnt2/demo/renamed
	run ls mnt3/demo
	run "$cli" get /demo/renamed
	echo "\$ (set -o noclobber; echo \$\$ > mnt1/demo/lock) && echo 'lock taken'"
	rm -f mnt1/demo/lock
	(set -o noclobber; echo $$ > mnt1/demo/lock) && echo 'lock taken'
	echo "\$ (set -o noclobber; echo \$\$ > mnt3/demo/lock) || echo 'busy: the lock is held cluster-wide'"
	(set -o noclobber; echo $$ > mnt3/demo/lock) 2>/dev/null ||
		echo 'busy: the lock is held cluster-wide'
	rm -f mnt1/demo/lock
	cd "$top"
	cat <<TXT

The cluster is running: three mounts, one file tree.  From another shell:

  cd $dir
  echo hi > mnt1/f; cat mnt3/f  # a write is on every mount once it commits
  mv mnt2/f mnt2/g              # atomic, on every mount
  $cli get /g                   # the raftkv client sees the same tree
  $cli put /demo/x 'via put'    # ... and writes into it
  kill -9 ${pids[0]}            # a minority can die: the others go on
                                # (then: fusermount3 -u $dir/mnt1)

Ctrl-C unmounts and stops the cluster.
TXT
else
	echo "\$ raftkv put greeting 'hello from raftkv'"
	"$cli" put greeting 'hello from raftkv'
	echo "\$ raftkv get greeting"
	"$cli" get greeting; echo
	echo "\$ raftkv lock demo-lock -- sh -c 'echo fencing token \$RAFTKV_FENCING_TOKEN'"
	"$cli" lock demo-lock -- sh -c 'echo fencing token $RAFTKV_FENCING_TOKEN'
	cat <<TXT

The cluster is running.  From another shell:

  export RAFTKV_CLUSTER=$conf  # client.key next to it is found
  $cli put mykey myvalue        # prints the new version
  $cli get mykey
  $cli cas mykey 1 newvalue     # only if the version is still 1
  $cli ls -r                    # every key, with version and size
  $cli status                   # each member's role, term and indices
  kill -9 ${pids[0]}            # a minority can die: the rest goes on

Ctrl-C stops the cluster.
TXT
fi
wait
