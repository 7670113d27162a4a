#!/bin/bash
# faults.sh - beyond the lab's script: the streaming apps, `run`, inputs
# split at line boundaries, kill -9 of a worker mid-job, and the one-line
# errors (missing input, unwritable OUTDIR, unloadable app).
. "$RAFTKV_SRCDIR/tests/mr/lib.sh"

"$MR" seq "$APPS/wc.so" pg-*.txt || fail "seq wc"
sort mr-out-0 > wc.ref; rm mr-out-0
"$MR" seq "$APPS/indexer.so" pg-*.txt || fail "seq indexer"
sort mr-out-0 > ix.ref; rm mr-out-0

step "streaming wc and indexer (run -w 2) equal the .so sequential runs"
timeout -k 2s 60s "$MR" run -q -w 2 -n 4 -o swc \
	-m "$SAPPS/wc-map.sh" -r "$SAPPS/wc-reduce.sh" pg-*.txt || fail "run streaming wc"
sort swc/mr-out-* | grep . | cmp - wc.ref || fail "streaming wc differs"
timeout -k 2s 60s "$MR" run -q -w 2 -o six \
	-m "$SAPPS/indexer-map.sh" -r "$SAPPS/indexer-reduce.sh" pg-*.txt || fail "run streaming indexer"
sort six/mr-out-* | grep . | cmp - ix.ref || fail "streaming indexer differs"

step "streaming: reporter:counter lines, environment, a failing mapper"
timeout -k 2s 60s "$MR" run -q -S -w 2 -n 2 -o sctr \
	-m "$SAPPS/wc-map.sh; echo reporter:counter:app,maps,1 >&2; echo reporter:status:mapped >&2; test \"\$mapreduce_task_ismap\" = true" \
	-r "$SAPPS/wc-reduce.sh; echo reporter:counter:app,reduces,1 >&2" pg-*.txt > sctr.stats || fail "run with counters"
grep -qx "counter.app.maps=8" sctr.stats || { cat sctr.stats; fail "map counters not summed"; }
grep -qx "counter.app.reduces=2" sctr.stats || fail "reduce counters not summed"
sort sctr/mr-out-* | grep . | cmp - wc.ref || fail "streaming wc with counters differs"
if timeout -k 2s 60s "$MR" run -q -w 2 -o sfail -m "exit 3" -r cat pg-grimm.txt 2> sfail.err; then
	fail "a job whose mapper always fails succeeded"
fi
grep -q "job failed" sfail.err || { cat sfail.err; fail "no 'job failed' line"; }
[ ! -e sfail/_SUCCESS ] || fail "_SUCCESS after a failed job"

step "run: 1 MiB splits of one concatenated input"
cat pg-*.txt > all.txt
while [ "$(wc -c < all.txt)" -lt 3300000 ]; do cat pg-*.txt >> all.txt; done
"$MR" seq "$APPS/wc.so" all.txt || fail "seq all"
sort mr-out-0 > all.ref; rm mr-out-0
timeout -k 2s 60s "$MR" run -q -S -s 1 -w 2 -o split "$APPS/wc.so" all.txt > split.stats || fail "run split"
sort split/mr-out-* | grep . | cmp - all.ref || fail "split wc differs"
maps=$(sed -n 's/^maps=//p' split.stats)
[ "$maps" -ge 3 ] || fail "expected >= 3 map tasks for $(wc -c < all.txt) bytes, got $maps"

step "kill -9 of a worker mid-job (lease 2 s)"
rm -f "$T/ep"
start 60 "$MR" coordinator -q -S -t 2 -n 3 -c tcp://127.0.0.1:0 -e "$T/ep" -o k9 pg-*.txt > k9.stats
CPID=$LAST
EP=$(endpoint "$T/ep")
# Slow maps (2 s each); the victim is killed while it holds a task (its
# forked task child exists).
SLOW="sleep 2; $SAPPS/wc-map.sh"
"$MR" worker -c "$EP" -m "$SLOW" -r "$SAPPS/wc-reduce.sh" &
VICTIM=$!; PIDS="$PIDS $VICTIM"
start 60 "$MR" worker -c "$EP" -m "$SLOW" -r "$SAPPS/wc-reduce.sh"; W2=$LAST
for i in $(seq 1 200); do
	pgrep -P "$VICTIM" >/dev/null && break
	sleep 0.05
done
pgrep -P "$VICTIM" >/dev/null || fail "the victim never ran a task"
kill -9 "$VICTIM"
wait "$CPID" || fail "coordinator after kill -9 of a worker"
sort k9/mr-out-* | grep . | cmp - wc.ref || fail "output after kill -9 differs"
r=$(sed -n 's/^reassigned=//p' k9.stats)
[ "$r" -ge 1 ] || fail "the dead worker's task was not reassigned (reassigned=$r)"
wait "$W2"

step "one clear line and a non-zero exit for each error"
check_err() {
	local what=$1; shift
	if "$@" 2> err.txt; then fail "$what: exit status 0"; fi
	[ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt; fail "$what: not one line"; }
	echo "    $what: $(cat err.txt)"
}
check_err "missing input" "$MR" run -q -o e1 "$APPS/wc.so" pg-grimm.txt no-such-file.txt
grep -q "no-such-file.txt" err.txt || fail "missing input not named"
check_err "OUTDIR under a file" "$MR" run -q -o pg-grimm.txt/out "$APPS/wc.so" pg-grimm.txt
grep -q "pg-grimm.txt/out" err.txt || fail "OUTDIR not named"
mkdir ro && chmod 555 ro
if [ -w ro ]; then
	echo "    (running as root: skipping the unwritable OUTDIR case)"
else
	check_err "unwritable OUTDIR" "$MR" run -q -o ro/out "$APPS/wc.so" pg-grimm.txt
	grep -q "ro/out" err.txt || fail "OUTDIR not named"
fi
check_err "not a shared object" "$MR" run -q -o e3 pg-grimm.txt pg-grimm.txt
"${CC:-cc}" --version >/dev/null 2>&1 && {
	# an app built against another ABI version, and one missing mr_reduce
	printf '#include <stdint.h>\nconst uint32_t mr_abi_version = 99;\n' > v99.c
	printf '#include <stdint.h>\n#include <stddef.h>\nconst uint32_t mr_abi_version = 1;\nint mr_map(void *c, const char *n, const char *d, size_t l) { return 0; }\n' > nored.c
	"${CC:-cc}" -shared -fPIC -o v99.so v99.c && "${CC:-cc}" -shared -fPIC -o nored.so nored.c || fail "cc"
	check_err "ABI mismatch" "$MR" run -q -o e4 ./v99.so pg-grimm.txt
	grep -q "version 99" err.txt || fail "ABI versions not named"
	check_err "missing symbol" "$MR" worker -c tcp://127.0.0.1:1 ./nored.so
	grep -q "mr_reduce" err.txt || fail "missing symbol not named"
}
check_err "no such app" "$MR" seq ./no-such-app.so pg-grimm.txt
step "ok"
