#!/usr/bin/env bash
# scripts/cluster.sh - set everything up (scripts/setup.sh), then run a
# local 3-member raftkv cluster on 127.0.0.1 in the foreground, set up by
# `raftkv init` (CURVE keys for the members, a client and an admin
# credential, all in DIR next to the cluster file): show it
# working (status, a put, a get, a lock), print how to use it from another
# shell, and keep it running until Ctrl-C, which stops the members it
# started (by PID) and leaves their data directory for the next start.
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

pids=()
stop() {
	trap - EXIT INT TERM
	echo
	echo "cluster: stopping members ${pids[*]:-}"
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	echo "cluster: stopped; data kept in $dir"
}
trap stop EXIT INT TERM

for i in 1 2 3; do
	"$server" -c "$conf" -i "$i" -d "$dir/member$i" \
		>>"$dir/member$i.log" 2>&1 &
	pids+=("$!")
done
export RAFTKV_CLUSTER=$conf

echo "cluster: 3 members started (logs: $dir/member{1,2,3}.log)"
for _ in $(seq 1 50); do
	"$cli" status 2>/dev/null | cut -f2 | grep -qx leader && break
	sleep 0.1
done
echo
"$cli" status
echo
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
wait
