#!/bin/bash
# lab1_crash.sh - step 7 of Lab 1: crash.so exits or stalls in a third of
# its calls each; workers are restarted in loops while the coordinator
# runs (here a crash in user code costs only the attempt: the task runs in
# a forked child; faults.sh kills whole workers).  The output must equal
# the sequential run of nocrash.so.  Lease: 3 s.
. "$RAFTKV_SRCDIR/tests/mr/lib.sh"

step "crash"
"$MR" seq "$APPS/nocrash.so" pg-*.txt || fail "seq nocrash"
sort mr-out-0 > crash.ref; rm mr-out-0
coordinator 120 cr -t 3
loop() {
	while [ ! -e cr/_SUCCESS ] && kill -0 "$CPID" 2>/dev/null; do
		timeout -k 2s 120s "$MR" worker -g 2 -c "$EP" "$APPS/crash.so"
		sleep 0.5
	done
}
start 120 bash -c "$(declare -f loop); CPID=$CPID EP=$EP MR=$MR APPS=$APPS; loop"; L1=$LAST
start 120 bash -c "$(declare -f loop); CPID=$CPID EP=$EP MR=$MR APPS=$APPS; loop"; L2=$LAST
start 120 bash -c "$(declare -f loop); CPID=$CPID EP=$EP MR=$MR APPS=$APPS; loop"; L3=$LAST
wait "$CPID" || fail "coordinator"
wait "$L1" "$L2" "$L3"
sort cr/mr-out-* | grep . | cmp - crash.ref || fail "crash output differs from nocrash seq"
step "ok"
