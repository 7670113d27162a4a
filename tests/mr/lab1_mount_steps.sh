#!/bin/bash
# lab1_mount_steps.sh - the rest of Lab 1's seven steps over a real 3-mount
# raftkv cluster (tests/mr/mount.sh; lab1_mount.sh has wc, indexer and
# crash): map parallelism, reduce parallelism, job count and early exit,
# with the inputs in the cluster, the coordinator in mount 1's copy of
# them, workers split between mounts 1 and 2 (the apps' marker files and
# counts are shared through the cluster), and every output read through
# mount 3.
. "$RAFTKV_SRCDIR/tests/mr/lib.sh"
. "$RAFTKV_SRCDIR/tests/mr/mount.sh"

step "3-mount cluster"
mount_cluster
mkdir "$T/m1/job" || fail "mkdir in mount 1"
cp pg-*.txt "$T/m1/job/" || fail "copy the inputs into mount 1"
J1=$T/m1/job J2=$T/m2/job J3=$T/m3/job

step "map parallelism: a worker on mount 1 and one on mount 2"
coordinator_in "$J1" 90 mt
start_in "$J1" 90 "$MR" worker -c "$EP" "$APPS/mtiming.so"; W1=$LAST
start_in "$J2" 90 "$MR" worker -c "$EP" "$APPS/mtiming.so"; W2=$LAST
wait "$CPID" || fail "mtiming coordinator"
n=$(cat "$J3"/mt/mr-out-* | grep -c '^times-')
[ "$n" -eq 2 ] || fail "saw $n workers map, expected 2"
cat "$J3"/mt/mr-out-* | grep -q '^parallel.* 2' ||
	fail "maps did not run in parallel"
wait "$W1" "$W2"

step "reduce parallelism: a worker on mount 1 and one on mount 2"
coordinator_in "$J1" 90 rt
start_in "$J1" 90 "$MR" worker -c "$EP" "$APPS/rtiming.so"; W1=$LAST
start_in "$J2" 90 "$MR" worker -c "$EP" "$APPS/rtiming.so"; W2=$LAST
wait "$CPID" || fail "rtiming coordinator"
n=$(cat "$J3"/rt/mr-out-* | grep -c '^[a-z] 2')
[ "$n" -ge 2 ] || fail "reduces ran in parallel $n times, expected >= 2"
wait "$W1" "$W2"

step "job count: every map exactly once, workers coming and going"
coordinator_in "$J1" 120 jc
start_in "$J1" 120 "$MR" worker -c "$EP" "$APPS/jobcount.so"; WA=$LAST
(cd "$J2" && timeout -k 2s 120s "$MR" worker -c "$EP" "$APPS/jobcount.so")
start_in "$J1" 120 "$MR" worker -g 2 -c "$EP" "$APPS/jobcount.so"; WC=$LAST
# (C and D may find the job over and the coordinator gone: their exit
# status is not checked, as in the lab's script)
(cd "$J2" && timeout -k 2s 120s "$MR" worker -g 2 -c "$EP" "$APPS/jobcount.so")
wait "$CPID" || fail "jobcount coordinator"
n=$(cat "$J3"/jc/mr-out-* | awk '{ print $2 }')
[ "$n" = 8 ] || fail "map tasks ran $n times, expected 8"
wait "$WA" "$WC"

step "early exit: nothing exits before every output is committed"
coordinator_in "$J1" 90 ee
start_in "$J1" 90 "$MR" worker -c "$EP" "$APPS/early_exit.so"; W1=$LAST
start_in "$J2" 90 "$MR" worker -c "$EP" "$APPS/early_exit.so"; W2=$LAST
start_in "$J2" 90 "$MR" worker -c "$EP" "$APPS/early_exit.so"; W3=$LAST
wait -n "$CPID" "$W1" "$W2" "$W3"
sort "$J3"/ee/mr-out-* 2>/dev/null | grep . > first.out
wait "$CPID" "$W1" "$W2" "$W3"
sort "$J3"/ee/mr-out-* | grep . > final.out
[ -s final.out ] || fail "no output"
cmp first.out final.out || fail "output changed after the first process exited"
n=$(wc -l < final.out)
[ "$n" -eq 8 ] || fail "$n output lines, expected 8"
step "ok"
