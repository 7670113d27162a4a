#!/bin/bash
# lab1_jobcount.sh - step 5 of Lab 1: every map runs exactly once (8 maps
# of 2-5 s each; no premature reassignment, no needless backup), with
# workers joining and leaving as in the lab's script.
. "$RAFTKV_SRCDIR/tests/mr/lib.sh"

step "job count"
coordinator 60 jc
start 60 "$MR" worker -c "$EP" "$APPS/jobcount.so"; WA=$LAST
timeout -k 2s 60s "$MR" worker -c "$EP" "$APPS/jobcount.so"
start 60 "$MR" worker -g 2 -c "$EP" "$APPS/jobcount.so"; WC=$LAST
# (C and D may find the job over and the coordinator gone: their exit
# status is not checked, as in the lab's script)
timeout -k 2s 60s "$MR" worker -g 2 -c "$EP" "$APPS/jobcount.so"
wait "$CPID" || fail "coordinator"
n=$(cat jc/mr-out-* | awk '{ print $2 }')
[ "$n" = 8 ] || fail "map tasks ran $n times, expected 8"
wait "$WA" "$WC"
step "ok"
