/*
 * test_fs_session.c - a mount whose client sessions expired while it was
 * idle still writes through a leader change (three real mounts,
 * tests/fs/fsharness.h).
 *
 * A mount submits its changes through pooled clerks, each with a session
 * of the state machine (at-most-once retries, kv.h).  A session idle for
 * the session TTL is evicted.  The next change of such a clerk got
 * ErrSession; when its first attempt had gone to a leader that died
 * before answering, the clerk could not tell whether that attempt
 * applied under the old session and answered ErrMaybe, which the mount
 * reports as EIO: a write on an idle mount failed because the leader
 * died (found by test_fs_locks under load, with its 20 s TTL).  Here the
 * TTL is 2 s (the lock lease 0.5 s: a TTL must be 3 leases; no locks
 * here): mount W writes, idles while mount X writes for 4 s (the
 * committed clock moves on, W's sessions go), the leader's mount is
 * stopped, and W writes again: the write must succeed and be seen on X.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fs/fsharness.h"

static void test_idle_then_leader_stops(void)
{
	int l = leader_index(), w = (l + 1) % N, x = (l + 2) % N;
	char p[PATH_MAX], q[PATH_MAX];
	uint64_t t0;

	pathf(p, w, "f");
	put_file(p, "one", O_TRUNC);
	pathf(q, x, "tick");
	for (t0 = now_ms(); now_ms() - t0 < 4000; sleep_ms(50))
		put_file(q, "t", O_TRUNC);
	CHECK(kill(pids[l], SIGSTOP) == 0, "SIGSTOP");
	put_file(p, "two", O_TRUNC);
	CHECK(kill(pids[l], SIGCONT) == 0, "SIGCONT");
	expect_file(x, "f", "two");
}

int main(void)
{
	int rv = fsh_setup("session", "lock_lease 500\nsession_ttl 2000\n");

	if (rv != 0)
		return rv;
	test_idle_then_leader_stops();
	printf("ok a mount idle past the session TTL writes through a "
	       "leader's stop\n");
	fsh_stop_all_clean();
	return 0;
}
