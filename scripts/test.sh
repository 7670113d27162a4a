#!/usr/bin/env bash
# scripts/test.sh - set everything up, run the test suite twice: a normal
# build (build/) and an AddressSanitizer+UBSan build (build-san/).
# Prints "N passed, N failed" over both and exits non-zero on any failure.
# Extra environment (e.g. RAFTKV_LONG=1) is passed through to the tests.
set -uo pipefail

cd "$(dirname "$0")/.."

pass=0
fail=0
# The tests mostly wait (timers, elections, leases, fsync): twice as many
# as the cores keeps both busy (each test's time: "# elapsed" in its log).
jobs=$((2 * $(nproc 2>/dev/null || echo 2)))

# run_suite BUILDDIR [CONFIGURE-FLAGS...]
run_suite() {
	local dir=$1 log p f e x
	shift
	echo "== $dir: build" >&2
	if ! ./scripts/setup.sh "$dir" "$@"; then
		echo "== $dir: BUILD FAILED" >&2
		fail=$((fail + 1))
		return
	fi
	echo "== $dir: make check" >&2
	rm -f "$dir/test-suite.log"
	make -C "$dir" -j"$jobs" check
	local rc=$?
	log=$dir/test-suite.log
	if [ ! -f "$log" ]; then
		echo "== $dir: make check produced no test-suite.log" >&2
		fail=$((fail + 1))
		return
	fi
	p=$(sed -n 's/^# PASS: *//p' "$log")
	f=$(sed -n 's/^# FAIL: *//p' "$log")
	e=$(sed -n 's/^# ERROR: *//p' "$log")
	x=$(sed -n 's/^# XPASS: *//p' "$log")
	pass=$((pass + ${p:-0}))
	fail=$((fail + ${f:-0} + ${e:-0} + ${x:-0}))
	if [ "$rc" -ne 0 ] && [ $((${f:-0} + ${e:-0} + ${x:-0})) -eq 0 ]; then
		echo "== $dir: make check failed outside the tests" >&2
		fail=$((fail + 1))
	fi
	# Show the end of each failing test's log.
	find "$dir" -name '*.trs' -exec \
		grep -lE '^:test-result: (FAIL|ERROR|XPASS)' {} + |
	while read -r trs; do
		echo "---- ${trs%.trs}.log (tail) ----"
		tail -n 40 "${trs%.trs}.log"
	done
}

run_suite build
run_suite build-san --enable-sanitizers

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
