#!/bin/bash
# faults_mount.sh - kill -9 of a worker and of a member mid-job over a real
# 3-mount raftkv cluster (tests/mr/mount.sh): the inputs and OUTDIR are in
# the cluster, the coordinator runs in mount 1, workers on mounts 1 and 2;
# while maps run, a worker holding a task and member 3 (a mount no one in
# the job uses; members 1 and 2 are still a majority) are killed with
# SIGKILL.  The job must complete, the dead worker's task be reassigned,
# and the output read through mount 2 equal the sequential runner's.
. "$RAFTKV_SRCDIR/tests/mr/lib.sh"
. "$RAFTKV_SRCDIR/tests/mr/mount.sh"

step "3-mount cluster"
mount_cluster
mkdir "$T/m1/job" || fail "mkdir in mount 1"
cp pg-*.txt "$T/m1/job/" || fail "copy the inputs into mount 1"
J1=$T/m1/job J2=$T/m2/job
"$MR" seq "$APPS/wc.so" pg-*.txt || fail "seq wc"
sort mr-out-0 > wc.ref; rm mr-out-0

step "kill -9 of a worker (mount 1) and of member 3 mid-job (lease 3 s)"
rm -f "$T/ep"
(cd "$J1" && exec timeout -k 2s 150s "$MR" coordinator -q -S -t 3 -n 3 -c tcp://127.0.0.1:0 \
	-e "$T/ep" -o k9 pg-*.txt) > k9.stats &
CPID=$!; PIDS="$PIDS $CPID"
EP=$(endpoint "$T/ep")
# Slow maps (2 s each), so the kills land mid-job; the victim is killed
# while it holds a task (its forked task child exists).
SLOW="sleep 2; $SAPPS/wc-map.sh"
(cd "$J1" && exec "$MR" worker -c "$EP" -m "$SLOW" -r "$SAPPS/wc-reduce.sh") &
VICTIM=$!; PIDS="$PIDS $VICTIM"
start_in "$J2" 150 "$MR" worker -c "$EP" -m "$SLOW" -r "$SAPPS/wc-reduce.sh"; W2=$LAST
for _ in $(seq 1 600); do
	pgrep -P "$VICTIM" >/dev/null && break
	sleep 0.05
done
pgrep -P "$VICTIM" >/dev/null || fail "the victim never ran a task"
kill -9 "$VICTIM" "${MPID[3]}"
wait "${MPID[3]}" 2>/dev/null
MPID[3]=""
fusermount3 -u "$T/m3" 2>/dev/null || fusermount3 -u -z "$T/m3" || fail "unmount the dead member's mount"
wait "$CPID" || { cat k9.stats; fail "coordinator after kill -9 of a worker and a member"; }
sort "$J2"/k9/mr-out-* | grep . | cmp - wc.ref || fail "output through mount 2 after the kills differs from seq"
[ -e "$J2/k9/_SUCCESS" ] || fail "no _SUCCESS through mount 2"
r=$(sed -n 's/^reassigned=//p' k9.stats)
[ "$r" -ge 1 ] || fail "the dead worker's task was not reassigned (reassigned=$r)"
wait "$W2"

step "a second job on the two surviving members"
coordinator_in "$J2" 120 wc2
start_in "$J1" 120 "$MR" worker -c "$EP" "$APPS/wc.so"; W1=$LAST
start_in "$J2" 120 "$MR" worker -c "$EP" "$APPS/wc.so"; W2=$LAST
wait "$CPID" || fail "wc coordinator on the surviving members"
sort "$J1"/wc2/mr-out-* | grep . | cmp - wc.ref || fail "wc through mount 1 differs from seq"
wait "$W1" "$W2"
step "ok"
