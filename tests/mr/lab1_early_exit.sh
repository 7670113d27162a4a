#!/bin/bash
# lab1_early_exit.sh - step 6 of Lab 1: no process (coordinator or
# worker) exits before every output is committed: the output seen when the
# first of them exits equals the final output.
. "$RAFTKV_SRCDIR/tests/mr/lib.sh"

step "early exit"
coordinator 45 ee
start 45 "$MR" worker -c "$EP" "$APPS/early_exit.so"; W1=$LAST
start 45 "$MR" worker -c "$EP" "$APPS/early_exit.so"; W2=$LAST
start 45 "$MR" worker -c "$EP" "$APPS/early_exit.so"; W3=$LAST
wait -n "$CPID" "$W1" "$W2" "$W3"
sort ee/mr-out-* 2>/dev/null | grep . > first.out
wait "$CPID" "$W1" "$W2" "$W3"
sort ee/mr-out-* | grep . > final.out
[ -s final.out ] || fail "no output"
cmp first.out final.out || fail "output changed after the first process exited"
n=$(wc -l < final.out)
[ "$n" -eq 8 ] || fail "$n output lines, expected 8"
step "ok"
