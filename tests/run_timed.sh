#!/bin/sh
# tests/run_timed.sh - the LOG_COMPILER of every test in `make check`.
#
# Runs one test under a deadline so a hung test fails with its own log
# instead of stalling the whole suite (CI gives the suite a fixed time),
# and ends the log with how long the test took, so the slow tests can be
# found from the logs: grep -h '^# elapsed' build/tests/*/*.log.
#
# RAFTKV_TEST_TIMEOUT: seconds before the test process is sent SIGTERM;
# default 900, 0 turns the deadline off (e.g. under a debugger).  The test
# runs in a process group of its own (setsid) with the members and mounts
# it starts.  At the deadline only the test gets SIGTERM: the harnesses
# print the stacks of what they started, unmount and stop it.  30 s later
# the whole group gets SIGKILL, whether the test has ended or not (a
# process can wait forever in the kernel for a stopped mount; killing the
# mount's process frees it).  Whatever a test leaves running in its group
# when it ends is killed then too.
t=${RAFTKV_TEST_TIMEOUT:-900}
start=$(date +%s%N)
if [ "$t" = 0 ]; then
	"$@"
	rc=$?
else
	setsid "$@" &
	group=$!
	# The watchdog: counts seconds while the test runs.  Short sleeps,
	# so that nothing of it outlives the test by more than a second.
	sh -c '
		n=0
		while kill -0 "$2" 2>/dev/null; do
			if [ "$n" -ge "$1" ]; then
				echo "# TIMEOUT: the test ran past" \
					"RAFTKV_TEST_TIMEOUT=$1 s"
				kill -s TERM "$2" 2>/dev/null
				i=0
				while kill -0 "$2" 2>/dev/null &&
					[ "$i" -lt 30 ]; do
					sleep 1
					i=$((i + 1))
				done
				kill -s KILL -- "-$2" 2>/dev/null
				exit 0
			fi
			sleep 1
			n=$((n + 1))
		done' watchdog "$t" "$group" &
	dog=$!
	# Ctrl-C on make: the test is in another session, pass it on.
	trap 'kill -s TERM "$group" 2>/dev/null' INT TERM HUP
	wait "$group"
	rc=$?
	while kill -0 "$group" 2>/dev/null; do
		wait "$group"
		rc=$?
	done
	kill -s TERM "$dog" 2>/dev/null
	# Whatever the test left running in its group (it should have
	# stopped it; after a timeout, its mounts) goes now.
	kill -s KILL -- "-$group" 2>/dev/null
fi
end=$(date +%s%N)
ms=$(((end - start) / 1000000))
echo "# elapsed: $((ms / 1000)).$(printf %03d $((ms % 1000))) s $*"
exit $rc
