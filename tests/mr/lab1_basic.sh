#!/bin/bash
# lab1_basic.sh - steps 1-4 of 6.5840 Lab 1's test-mr.sh, on a local
# directory: wc and indexer equal the sequential runner byte for byte
# (coordinator + 3 / 2 worker processes over TCP 127.0.0.1), map
# parallelism (mtiming) and reduce parallelism (rtiming).
. "$RAFTKV_SRCDIR/tests/mr/lib.sh"

step "wc"
"$MR" seq "$APPS/wc.so" pg-*.txt || fail "seq wc"
sort mr-out-0 > wc.ref; rm mr-out-0
coordinator 45 wc
start 45 "$MR" worker -c "$EP" "$APPS/wc.so"; W1=$LAST
start 45 "$MR" worker -c "$EP" "$APPS/wc.so"; W2=$LAST
start 45 "$MR" worker -c "$EP" "$APPS/wc.so"; W3=$LAST
wait "$CPID" || fail "wc coordinator exit status $?"
sort wc/mr-out-* | grep . | cmp - wc.ref || fail "wc output differs from seq"
[ -e wc/_SUCCESS ] || fail "no _SUCCESS"
[ ! -e wc/.mr-tmp ] || fail "intermediates left behind"
wait "$W1" "$W2" "$W3"

step "indexer"
"$MR" seq "$APPS/indexer.so" pg-*.txt || fail "seq indexer"
sort mr-out-0 > ix.ref; rm mr-out-0
coordinator 45 ix
start 45 "$MR" worker -c "$EP" "$APPS/indexer.so"; W1=$LAST
start 45 "$MR" worker -c "$EP" "$APPS/indexer.so"; W2=$LAST
wait "$CPID" || fail "indexer coordinator"
sort ix/mr-out-* | grep . | cmp - ix.ref || fail "indexer output differs from seq"
wait "$W1" "$W2"

step "map parallelism"
coordinator 45 mt
start 45 "$MR" worker -c "$EP" "$APPS/mtiming.so"; W1=$LAST
start 45 "$MR" worker -c "$EP" "$APPS/mtiming.so"; W2=$LAST
wait "$CPID" || fail "mtiming coordinator"
n=$(cat mt/mr-out-* | grep -c '^times-')
[ "$n" -eq 2 ] || fail "saw $n workers map, expected 2"
cat mt/mr-out-* | grep -q '^parallel.* 2' || fail "maps did not run in parallel"
wait "$W1" "$W2"

step "reduce parallelism"
coordinator 45 rt
start 45 "$MR" worker -c "$EP" "$APPS/rtiming.so"; W1=$LAST
start 45 "$MR" worker -c "$EP" "$APPS/rtiming.so"; W2=$LAST
wait "$CPID" || fail "rtiming coordinator"
n=$(cat rt/mr-out-* | grep -c '^[a-z] 2')
[ "$n" -ge 2 ] || fail "reduces ran in parallel $n times, expected >= 2"
wait "$W1" "$W2"
step "ok"
