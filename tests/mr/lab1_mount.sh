#!/bin/bash
# lab1_mount.sh - Lab 1's wc, indexer and crash steps over a real 3-mount
# raftkv cluster (tests/mr/mount.sh): the inputs are written into mount 1,
# the coordinator runs in mount 1's copy of them, workers run on mounts 1
# and 2 (each with its working directory on its own mount), the outputs
# are written back into the cluster and checked through mount 2 against
# the sequential runner's output on local disk.  A streaming wc whose
# mapper counts the mount it ran on shows both mounts served the one
# coordinator.
. "$RAFTKV_SRCDIR/tests/mr/lib.sh"
. "$RAFTKV_SRCDIR/tests/mr/mount.sh"

step "3-mount cluster"
mount_cluster
mkdir "$T/m1/job" || fail "mkdir in mount 1"
cp pg-*.txt "$T/m1/job/" || fail "copy the inputs into mount 1"
for f in pg-*.txt; do
	cmp -s "$f" "$T/m2/job/$f" || fail "$f differs through mount 2"
done
J1=$T/m1/job J2=$T/m2/job

step "wc: workers on mounts 1 and 2, output read through mount 2"
"$MR" seq "$APPS/wc.so" pg-*.txt || fail "seq wc"
sort mr-out-0 > wc.ref; rm mr-out-0
coordinator_in "$J1" 120 wc
start_in "$J1" 120 "$MR" worker -c "$EP" "$APPS/wc.so"; W1=$LAST
start_in "$J2" 120 "$MR" worker -c "$EP" "$APPS/wc.so"; W2=$LAST
start_in "$J2" 120 "$MR" worker -c "$EP" "$APPS/wc.so"; W3=$LAST
wait "$CPID" || fail "wc coordinator"
sort "$J2"/wc/mr-out-* | grep . | cmp - wc.ref || fail "wc through mount 2 differs from seq"
[ -e "$J2/wc/_SUCCESS" ] || fail "no _SUCCESS through mount 2"
[ ! -e "$J2/wc/.mr-tmp" ] || fail "intermediates left behind"
wait "$W1" "$W2" "$W3"

step "indexer: every task on mount 2's workers, output read through mount 3"
"$MR" seq "$APPS/indexer.so" pg-*.txt || fail "seq indexer"
sort mr-out-0 > ix.ref; rm mr-out-0
coordinator_in "$J1" 120 ix
start_in "$J2" 120 "$MR" worker -c "$EP" "$APPS/indexer.so"; W1=$LAST
start_in "$J2" 120 "$MR" worker -c "$EP" "$APPS/indexer.so"; W2=$LAST
wait "$CPID" || fail "indexer coordinator"
sort "$T"/m3/job/ix/mr-out-* | grep . | cmp - ix.ref || fail "indexer through mount 3 differs from seq"
wait "$W1" "$W2"

step "streaming wc: both mounts ran maps for one coordinator"
rm -f "$T/ep"
(cd "$J1" && exec timeout -k 2s 120s "$MR" coordinator -q -S -n 3 -c tcp://127.0.0.1:0 \
	-e "$T/ep" -o swc pg-*.txt) > swc.stats &
CPID=$!; PIDS="$PIDS $CPID"
EP=$(endpoint "$T/ep")
# Each map takes at least 1 s, so neither worker can take all 8 alone
# before the other asks; the counter names the mount the map ran on.
MAP="sleep 1; $SAPPS/wc-map.sh; echo \"reporter:counter:mount,\$(basename \"\$(dirname \"\$PWD\")\"),1\" >&2"
start_in "$J1" 120 "$MR" worker -c "$EP" -m "$MAP" -r "$SAPPS/wc-reduce.sh"; W1=$LAST
start_in "$J2" 120 "$MR" worker -c "$EP" -m "$MAP" -r "$SAPPS/wc-reduce.sh"; W2=$LAST
wait "$CPID" || fail "streaming wc coordinator"
sort "$J2"/swc/mr-out-* | grep . | cmp - wc.ref || fail "streaming wc through mount 2 differs"
n1=$(sed -n 's/^counter\.mount\.m1=//p' swc.stats)
n2=$(sed -n 's/^counter\.mount\.m2=//p' swc.stats)
echo "    maps on mount 1: ${n1:-0}, on mount 2: ${n2:-0}"
[ "${n1:-0}" -ge 1 ] && [ "${n2:-0}" -ge 1 ] || { cat swc.stats; fail "maps did not run on both mounts"; }
wait "$W1" "$W2"

step "crash: workers restarted in loops on mounts 1 and 2 (lease 3 s)"
"$MR" seq "$APPS/nocrash.so" pg-*.txt || fail "seq nocrash"
sort mr-out-0 > crash.ref; rm mr-out-0
coordinator_in "$J1" 180 cr -t 3
loop() {
	while [ ! -e cr/_SUCCESS ] && kill -0 "$CPID" 2>/dev/null; do
		timeout -k 2s 180s "$MR" worker -g 2 -c "$EP" "$APPS/crash.so"
		sleep 0.5
	done
}
start_in "$J1" 180 bash -c "$(declare -f loop); CPID=$CPID EP=$EP MR=$MR APPS=$APPS; loop"; L1=$LAST
start_in "$J2" 180 bash -c "$(declare -f loop); CPID=$CPID EP=$EP MR=$MR APPS=$APPS; loop"; L2=$LAST
start_in "$J2" 180 bash -c "$(declare -f loop); CPID=$CPID EP=$EP MR=$MR APPS=$APPS; loop"; L3=$LAST
wait "$CPID" || fail "crash coordinator"
wait "$L1" "$L2" "$L3"
sort "$J2"/cr/mr-out-* | grep . | cmp - crash.ref || fail "crash output through mount 2 differs from nocrash seq"
step "ok"
