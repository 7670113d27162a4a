#!/bin/bash
# kv-vs-etcd.sh - raftkv against etcd: the same closed-loop workload on a
# 3-member cluster of each, on loopback, in the same run (`make bench-kv`,
# which `make bench` runs).
#
# Steps: install what is missing (Debian's etcd-server, golang-go and
# golang-etcd-server-dev, with apt-get); build bench/etcd (a clientv3 load
# generator) offline from Debian's Go sources into a temporary directory;
# start 3 etcd members (default settings: fsync on, default quota) and 3
# raftkv-server members on 127.0.0.1 ports that are free; preload the key
# space on both; then, for every workload (put, linearizable get, 90/10
# mix) and every client count (1, 16, 64), run bench/kvbench against raftkv
# and bench/etcd against etcd, one after the other, and print a row:
#
#   workload clients | raftkv ops/s p50 p99 | etcd ops/s p50 p99 | ratio
#
# (ratio = raftkv ops/s / etcd ops/s), then the goals of the KV issue,
# each marked met or missed.  The exit status does not depend on the
# goals: this is a measurement, not a test.
#
# Both sides send every request to the leader over ONE shared connection:
# etcdbench with -leader-only and -conns 1 (like etcd's benchmark tool), the
# setting in which etcd did best here (a connection per client, or requests
# spread over the followers, cost it up to half its throughput on 2 CPUs);
# kvbench with --mux (its clients share one connection from one thread, N
# requests in flight; without it each client is a thread with its own
# clerk, whose client-side CPU then dominates on 2 CPUs).  Override with
# --etcdbench-flags "-conns 0 -leader-only=false" and --kvbench-flags "".
#
# Every process the script starts is killed by PID on exit, whatever the
# exit, and the temporary directory is removed (unless --keep).
#
# Usage: kv-vs-etcd.sh [--builddir DIR] [--srcdir DIR] [--quick] [options]
#   --builddir DIR     raftkv build tree holding bench/kvbench and
#                      kv/raftkv-server (default: .)
#   --srcdir DIR       raftkv source tree (default: this script's ../)
#   --quick            short rows (1 s measured, 0.5 s warm-up), for testing
#   --duration SECS    measured time per row (default 5)
#   --warmup SECS      warm-up per row, not measured (default 1)
#   --clients "LIST"   client counts (default "1 16 64")
#   --workloads "LIST" workloads (default "put get mix")
#   --keys N           key space (default 1000)
#   --value-size N     value bytes (default 256)
#   --repeat N         run every row N times, raftkv and etcd alternating,
#                      and show the run with the median ops/s of each side
#                      (default 1; a busy machine makes single runs noisy)
#   --dir DIR          where the temporary directory (data dirs) goes
#                      (default: $TMPDIR or /tmp); both clusters use it
#   --keep             keep the temporary directory (logs, data)
#   --no-install       fail instead of installing missing packages
#   --kvbench-flags "F", --etcdbench-flags "F"
#                      extra flags for one side (e.g. "--io-threads 2")
# GOCACHE, when set, is used for the Go build (else a fresh cache in the
# temporary directory: ~25 s of compiling on a 2-CPU machine).

set -eu

me=kv-vs-etcd
builddir=.
srcdir=$(cd "$(dirname "$0")/.." && pwd)
duration=5
warmup=1
clients_list="1 16 64"
workloads="put get mix"
keys=1000
value_size=256
repeat=1
basedir=${TMPDIR:-/tmp}
keep=0
install=1
kvflags=--mux
etcdflags=
packages="etcd-server golang-go golang-etcd-server-dev"
# Debian's golang-etcd-server-dev 3.4 puts the clientv3 package here.
gopath=/usr/share/gocode

die() { echo "$me: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case $1 in
	--builddir) builddir=$2; shift ;;
	--srcdir) srcdir=$2; shift ;;
	--quick) duration=1; warmup=0.5 ;;
	--duration) duration=$2; shift ;;
	--warmup) warmup=$2; shift ;;
	--clients) clients_list=$2; shift ;;
	--workloads) workloads=$2; shift ;;
	--keys) keys=$2; shift ;;
	--value-size) value_size=$2; shift ;;
	--repeat) repeat=$2; shift ;;
	--dir) basedir=$2; shift ;;
	--keep) keep=1 ;;
	--no-install) install=0 ;;
	--kvbench-flags) kvflags=$2; shift ;;
	--etcdbench-flags) etcdflags=$2; shift ;;
	-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown option '$1' (--help lists them)" ;;
	esac
	shift
done

case $repeat in ''|*[!0-9]*|0) die "--repeat needs a positive number" ;; esac
builddir=$(cd "$builddir" && pwd)
kvbench=$builddir/bench/kvbench
server=$builddir/kv/raftkv-server
[ -x "$kvbench" ] || die "$kvbench not built (make bench/kvbench)"
[ -x "$server" ] || die "$server not built (make kv/raftkv-server)"
[ -f "$srcdir/bench/etcd/main.go" ] || die "no bench/etcd/main.go in $srcdir"

# --- packages --------------------------------------------------------------

missing=
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	[ "$install" = 1 ] || die "missing packages:$missing"
	if [ "$(id -u)" = 0 ]; then
		asroot=
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		asroot="sudo -n"
	else
		die "missing packages:$missing (run as root, or: apt-get install$missing)"
	fi
	echo "$me: installing$missing" >&2
	apt_install() {
		$asroot env DEBIAN_FRONTEND=noninteractive \
		    apt-get install -y -q --no-install-recommends $missing >&2
	}
	# Stale package lists are the usual reason for a failure.
	apt_install || { $asroot apt-get update -q >&2 && apt_install; } ||
	    die "apt-get install$missing failed"
fi
command -v etcd >/dev/null || die "no etcd binary after installing etcd-server"
command -v go >/dev/null || die "no go binary after installing golang-go"

# --- temporary directory and cleanup ---------------------------------------

pids=
bench_pid=
tmp=
cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	for p in $bench_pid $pids; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $bench_pid $pids; do
		for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.25
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$tmp" ]; then
		if [ "$keep" = 1 ]; then
			echo "$me: kept $tmp" >&2
		else
			rm -rf "$tmp"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

mkdir -p "$basedir"
tmp=$(mktemp -d "$basedir/kv-vs-etcd.XXXXXX")

# Show a log's end when something fails.
tail_logs() {
	for f in "$@"; do
		[ -f "$f" ] || continue
		echo "--- $f (last lines)" >&2
		tail -n 15 "$f" >&2
	done
}

# --- the etcd load generator -----------------------------------------------

echo "$me: building bench/etcd offline from $gopath" >&2
# GOPATH mode: Debian ships the sources, not a module cache; nothing may
# come from the network.
if ! (cd "$srcdir/bench/etcd" &&
    env GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$gopath" \
	GOCACHE="${GOCACHE:-$tmp/gocache}" \
	go build -o "$tmp/etcdbench" .) >"$tmp/go-build.log" 2>&1; then
	cat "$tmp/go-build.log" >&2
	die "cannot build bench/etcd offline (see above)"
fi
etcdbench=$tmp/etcdbench

# --- free ports ------------------------------------------------------------

used=" $(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' |
    tr '\n' ' ') "
next_port=$((20000 + RANDOM % 30000))
free_port() {
	while :; do
		next_port=$((next_port + 1))
		[ "$next_port" -lt 65000 ] || next_port=20001
		case $used in *" $next_port "*) continue ;; esac
		# A listener ss could not see (or no ss): connecting succeeds.
		if (exec 3<>"/dev/tcp/127.0.0.1/$next_port") 2>/dev/null; then
			continue
		fi
		port=$next_port
		used="$used$port "
		return
	done
}

# --- the clusters ----------------------------------------------------------

etcd_ver=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')
conf=$tmp/raftkv.conf
logs="$tmp/etcd1/log $tmp/etcd2/log $tmp/etcd3/log $tmp/raftkv1/log $tmp/raftkv2/log $tmp/raftkv3/log"

# 3 etcd members with default settings (fsync on, default quota).
start_etcd() {
	initial=
	endpoints=
	for i in 1 2 3; do
		free_port; eclient[$i]=$port
		free_port; epeer[$i]=$port
		initial="$initial${initial:+,}e$i=http://127.0.0.1:${epeer[$i]}"
		endpoints="$endpoints${endpoints:+,}127.0.0.1:${eclient[$i]}"
	done
	for i in 1 2 3; do
		rm -rf "$tmp/etcd$i"
		mkdir -p "$tmp/etcd$i"
		etcd --name "e$i" --data-dir "$tmp/etcd$i/data" \
		    --listen-client-urls "http://127.0.0.1:${eclient[$i]}" \
		    --advertise-client-urls "http://127.0.0.1:${eclient[$i]}" \
		    --listen-peer-urls "http://127.0.0.1:${epeer[$i]}" \
		    --initial-advertise-peer-urls "http://127.0.0.1:${epeer[$i]}" \
		    --initial-cluster "$initial" --initial-cluster-state new \
		    --initial-cluster-token "kv-vs-etcd-$$" \
		    --logger zap --log-level warn \
		    >"$tmp/etcd$i/log" 2>&1 &
		pids="$pids $!"
	done
}

# 3 raftkv-server members with default settings, but plaintext
# (--insecure) like the etcd cluster it is compared with (no TLS), and so
# kvbench's raw sockets can connect.
start_raftkv() {
	printf 'cluster %x\n' $((RANDOM * 32768 + RANDOM + 1)) >"$conf"
	for i in 1 2 3; do
		free_port; rpeer=$port
		free_port; rclient=$port
		echo "member $i peer=tcp://127.0.0.1:$rpeer client=tcp://127.0.0.1:$rclient" >>"$conf"
	done
	for i in 1 2 3; do
		rm -rf "$tmp/raftkv$i"
		mkdir -p "$tmp/raftkv$i"
		"$server" -c "$conf" -i "$i" -d "$tmp/raftkv$i/data" -l warn \
		    --insecure \
		    >"$tmp/raftkv$i/log" 2>&1 &
		pids="$pids $!"
	done
}

# 0 when every member is running, else 1.
all_alive() {
	for p in $pids; do
		kill -0 "$p" 2>/dev/null || return 1
	done
}

# Every member still running?  Else show the logs and give up.
check_alive() {
	all_alive && return 0
	tail_logs $logs
	die "a cluster member exited"
}

# etcd's /health over bash's /dev/tcp (no curl needed), bounded in time.
etcd_healthy() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
	    printf "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 &&
	    grep -q "\"health\":\"true\"" <&3' _ "$1" 2>/dev/null
}

# Wait until etcd is healthy and every member has been up for a second.
# 0 ready, 1 a member exited, 2 timed out.
wait_ready() {
	for t in $(seq 100); do
		all_alive || return 1
		ok=1
		for i in 1 2 3; do
			etcd_healthy "${eclient[$i]}" || { ok=0; break; }
		done
		[ "$ok" = 1 ] && [ "$t" -ge 5 ] && return 0
		sleep 0.2
	done
	return 2
}

# Stop what was started (a failed attempt).
stop_members() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	pids=
}

# A port can be taken between the check and the bind (other programs on
# the machine pick ports too): start again on fresh ports, up to 3 times.
for attempt in 1 2 3; do
	start_etcd
	start_raftkv
	rc=0; wait_ready || rc=$?
	[ "$rc" = 0 ] && break
	if [ "$rc" = 1 ] && [ "$attempt" -lt 3 ] &&
	    grep -qi 'address already in use' $logs 2>/dev/null; then
		echo "$me: a port was taken meanwhile; starting again" >&2
		stop_members
		continue
	fi
	tail_logs $logs
	[ "$rc" = 1 ] && die "a cluster member exited at start"
	die "etcd did not become healthy in 20 s"
done

# --- the rows --------------------------------------------------------------

# field LINE NAME: the value of NAME=... in a RESULT line.
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# run_bench NAME COMMAND...: run one load generator in the background (so
# that a signal interrupts `wait` and the cleanup runs at once, killing it
# too) and leave its RESULT line in $row.
row=
run_bench() {
	name=$1; shift
	"$@" >"$tmp/row.out" 2>>"$tmp/$name.err" &
	bench_pid=$!
	wait "$bench_pid" || true
	bench_pid=
	row=$(grep '^RESULT ' "$tmp/row.out") || {
		check_alive; tail -n 5 "$tmp/$name.err" >&2
		die "$name printed no result: $*"; }
}
# run_kv WORKLOAD CLIENTS, run_etcd WORKLOAD CLIENTS
run_kv() {
	run_bench kvbench "$kvbench" -c "$conf" -w "$1" -n "$2" \
	    -d "$duration" -W "$warmup" -k "$keys" -s "$value_size" $kvflags
}
run_etcd() {
	run_bench etcdbench "$etcdbench" -endpoints "$endpoints" \
	    -workload "$1" -clients "$2" -conns 1 -leader-only \
	    -duration "${duration}s" -warmup "${warmup}s" -keys "$keys" \
	    -value-size "$value_size" $etcdflags
}

# median LINES: the RESULT line with the median ops/s (the upper one of
# the middle two when even).
median() {
	printf '%s' "$1" | grep '^RESULT ' |
	    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^ops_s=/) print substr($i, 7), $0 }' |
	    sort -n -k1,1 | awk '{ l[NR] = $0 } END { sub(/^[^ ]* /, "", l[int(NR / 2) + 1]); print l[int(NR / 2) + 1] }'
}

echo "$me: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); data in $tmp ($(stat -f -c %T "$tmp")); etcd $etcd_ver; raftkv $(git -C "$srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')" >&2
echo "$me: preloading $keys keys of $value_size bytes on both" >&2
check_alive
run_kv load 16; kvload=$row
run_etcd load 16; etcdload=$row
echo "$me: raftkv load: $kvload" >&2
echo "$me: etcd   load: $etcdload" >&2
for l in "$kvload" "$etcdload"; do
	[ "$(field "$l" errors)" = 0 ] || die "preload failed: $l"
done

printf '\n%-8s %7s | %10s %8s %8s | %10s %8s %8s | %6s\n' \
    workload clients "raftkv/s" "p50 ms" "p99 ms" "etcd/s" "p50 ms" "p99 ms" ratio
printf '%s\n' "---------------------------------------------------------------------------------"
results=
for w in $workloads; do
	for n in $clients_list; do
		ks=; es=
		for _ in $(seq "$repeat"); do
			run_kv "$w" "$n"; ks="$ks$row
"
			run_etcd "$w" "$n"; es="$es$row
"
		done
		k=$(median "$ks"); e=$(median "$es")
		results="$results$w $n $(field "$k" ops_s) $(field "$k" p50_ms) $(field "$k" p99_ms) $(field "$k" errors) $(field "$e" ops_s) $(field "$e" p50_ms) $(field "$e" p99_ms) $(field "$e" errors)
"
		echo "$results" | awk -v w="$w" -v n="$n" '$1 == w && $2 == n {
			r = $7 > 0 ? $3 / $7 : 0
			printf "%-8s %7d | %10.0f %8.3f %8.3f | %10.0f %8.3f %8.3f | %6.2f%s\n",
			    $1, $2, $3, $4, $5, $7, $8, $9, r,
			    ($6 + $10 > 0 ? "  (errors: raftkv " $6 ", etcd " $10 ")" : "")
		}'
	done
done

# The goals of the KV issue, each only when its rows were run.
echo
echo "$results" | awk '
NF == 10 { kv[$1 " " $2] = $3; kvp50[$1 " " $2] = $4; et[$1 " " $2] = $7
	etp50[$1 " " $2] = $8; rows[++n] = $1 " " $2 }
function mark(ok) { return ok ? "met" : "MISSED" }
END {
	ahead = 1; behind = ""
	for (i = 1; i <= n; i++)
		if (kv[rows[i]] <= et[rows[i]]) { ahead = 0; behind = behind " [" rows[i] "]" }
	if (n) printf "goal: raftkv ahead on every row: %s%s\n", mark(ahead), behind
	if ("put 1" in kv) printf "goal: 1-client put p50 <= half of etcd (%.3f vs %.3f ms): %s\n",
	    kvp50["put 1"], etp50["put 1"], mark(kvp50["put 1"] <= etp50["put 1"] / 2)
	if ("put 64" in kv) printf "goal: 64-client puts/s >= 2.5x etcd (%.2fx): %s\n",
	    kv["put 64"] / et["put 64"], mark(kv["put 64"] >= 2.5 * et["put 64"])
	if ("get 64" in kv) printf "goal: 64-client linearizable gets/s >= 3x etcd (%.2fx): %s\n",
	    kv["get 64"] / et["get 64"], mark(kv["get 64"] >= 3 * et["get 64"])
}'
check_alive
# Everything shares the machine: a busy one makes both sides slow and noisy.
load=$(cut -d' ' -f1 /proc/loadavg)
echo "load average at the end: $load on $(nproc) CPUs$(awk -v l="$load" -v n="$(nproc)" \
    'BEGIN { if (l > n) print " (busy machine: other work competed with both clusters)" }')"
