# lib.sh - shared by the tests/mr/*.sh scenarios (sourced, not run).
#
# Each scenario runs in a fresh temporary directory $T (also the working
# directory of every process: the lab's timing apps leave their probe files
# in the cwd), with the 8 inputs copied to $T/pg-*.txt: the Gutenberg texts
# of $RAFTKV_DATA/gutenberg when present, small generated texts with the
# same names otherwise.  Every process is started through start(), which
# runs it under timeout(1) (its own process group) and records the pid; the
# EXIT trap sends TERM then KILL to each recorded process group, by pid,
# whether the test passed or not, then (tests/mr/mount.sh) unmounts and
# stops a raftkv cluster, and removes $T.

set -u
: "${RAFTKV_BUILDDIR:?}" "${RAFTKV_SRCDIR:?}"
MR=$RAFTKV_BUILDDIR/mr/raftkv-mr
APPS=$RAFTKV_BUILDDIR/mr/apps
SAPPS=$RAFTKV_SRCDIR/mr/apps
DATA=${RAFTKV_DATA:-$RAFTKV_SRCDIR/../shared/data}
PIDS=""
T=$(mktemp -d "${TMPDIR:-/tmp}/raftkv-mr-test.XXXXXX") || exit 99
command -v timeout >/dev/null || { echo "SKIP: no timeout(1)"; exit 77; }

cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.1
	for p in $PIDS; do kill -KILL -- "-$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	cd / || true
	# tests/mr/mount.sh: unmount and stop the cluster's members
	declare -F mount_cleanup >/dev/null && mount_cleanup
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $* ($(date +%T))"; }

# start SECONDS CMD... : run CMD in the background under a timeout; the
# pid is left in $LAST.
start() {
	local secs=$1; shift
	timeout -k 2s "${secs}s" "$@" &
	LAST=$!
	PIDS="$PIDS $LAST"
}

# inputs: the 8 texts as $T/pg-*.txt.
inputs() {
	local f names="being_ernest dorian_gray frankenstein grimm huckleberry_finn metamorphosis sherlock_holmes tom_sawyer"
	if [ -d "$DATA/gutenberg" ] && ls "$DATA"/gutenberg/pg-*.txt >/dev/null 2>&1; then
		cp "$DATA"/gutenberg/pg-*.txt "$T"/
		return
	fi
	for f in $names; do
		awk -v seed="${#f}" 'BEGIN { srand(seed); split("the a of and to in is was he that it his her you as had with for she not at but be my on have him", w, " ");
			for (l = 0; l < 2000; l++) { s = ""; for (i = 0; i < 12; i++) s = s w[1 + int(rand() * 28)] " "; print s } }' > "$T/pg-$f.txt"
	done
}

# endpoint FILE: wait until the coordinator has written its endpoint.
endpoint() {
	local i
	for i in $(seq 1 600); do
		[ -s "$1" ] && { cat "$1"; return 0; }
		sleep 0.05
	done
	fail "coordinator did not publish its endpoint in $1"
}

# coordinator SECONDS OUTDIR [OPTS] : start a coordinator over $T/pg-*.txt
# on an ephemeral TCP port of 127.0.0.1; its endpoint ends up in $EP.
coordinator() {
	local secs=$1 out=$2; shift 2
	rm -f "$T/ep"
	start "$secs" "$MR" coordinator -q -c tcp://127.0.0.1:0 -e "$T/ep" -o "$out" "$@" pg-*.txt
	CPID=$LAST
	EP=$(endpoint "$T/ep")
}

cd "$T" || exit 99
inputs
