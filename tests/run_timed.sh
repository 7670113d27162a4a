#!/bin/sh
# tests/run_timed.sh - the LOG_COMPILER of every test in `make check`.
#
# Runs one test under a deadline so a hung test fails with its own log
# instead of stalling the whole suite (CI gives the suite a fixed time),
# and ends the log with how long the test took, so the slow tests can be
# found from the logs: grep -h '^# elapsed' build/tests/*/*.log.
#
# RAFTKV_TEST_TIMEOUT: seconds before the test process is sent SIGTERM;
# default 900, 0 turns the deadline off (e.g. under a debugger).  Only the
# test process gets it (timeout --foreground): the harnesses then print
# the stacks of the members and mounts they started, unmount and stop
# them.  30 s later the test gets SIGKILL, and whatever is still left in
# its process group (a session of its own, from setsid) is killed.
t=${RAFTKV_TEST_TIMEOUT:-900}
start=$(date +%s%N)
if [ "$t" = 0 ]; then
	"$@"
	rc=$?
else
	setsid timeout --foreground --kill-after=30 "$t" "$@" &
	group=$!
	wait "$group"
	rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "# TIMEOUT: $* ran past RAFTKV_TEST_TIMEOUT=${t}s" \
			"(status $rc)"
		kill -s KILL -- "-$group" 2>/dev/null
	fi
fi
end=$(date +%s%N)
ms=$(((end - start) / 1000000))
echo "# elapsed: $((ms / 1000)).$(printf %03d $((ms % 1000))) s $*"
exit $rc
