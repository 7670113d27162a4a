/*
 * test_cli_lock.c - `raftkv lock` on real raftkv-server members (issue
 * 11): the committed locks of kv.h (LOCKS) from the command line.
 *
 *   - counted mutual exclusion: 3 clients x NPROC shell loops each
 *     increment a counter key ROUNDS times (50; 200 with RAFTKV_LONG=1),
 *     every increment a read and a write by separate `raftkv get` /
 *     `raftkv put` processes under `raftkv lock`: the final count is
 *     exact;
 *   - holder death: kill -9 of a `raftkv lock` holding the lock; a waiter
 *     is granted after the lease (not before: the holder's lease was just
 *     renewed), by committed expiry with the leader's TICKs;
 *   - idle expiry: with the holder killed and no client proposing
 *     anything, the leader's TICKs alone expire the lease (seen through
 *     GETLK, a read);
 *   - fencing: the new holder's fenced put applies, the dead holder's
 *     token is refused (exit 2, value unchanged), also after the new
 *     holder released the lock;
 *   - the command runs in a process group of its own: a lost lock (cut
 *     off from the cluster) and a SIGTERM to `raftkv lock` stop what the
 *     command started too.
 *
 * Processes are started with fork + exec of /bin/sh and killed by pid
 * only; the members by the harness (by pid); every temporary file is in
 * the harness's directory.
 */
#include <dirent.h>
#include <errno.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kv/clerk.h"
#include "kv/kv.h"
#include "raft/util/clock.h"
#include "tests/integration/harness.h"

#define NCLIENTS 3
#define NPROC 2
/* Increments per loop: 50 in the default suite (300 lock hand-overs over
 * 6 loops, ~1,000 CLI processes), 200 with RAFTKV_LONG=1. */
#define ROUNDS (harness_long() ? 200 : 50)

static struct harness *start(void **state, const char *name)
{
	struct harness_options o;
	static char member[4096];
	const char *bd = getenv("RAFTKV_BUILDDIR");
	struct harness *h;

	snprintf(member, sizeof(member), "%s/kv/raftkv-server", bd ? bd : ".");
	harness_options_defaults(&o);
	o.name = name;
	o.member_path = member;
	h = harness_new(3, &o);
	assert_non_null(h);
	*state = h;
	return h;
}

static int teardown(void **state)
{
	harness_free(*state);
	return 0;
}

/* The contents of $D/@name (trailing newline dropped), or "" if absent. */
static void read_file(struct harness *h, const char *name, char *buf,
    size_t cap)
{
	char p[4096];
	FILE *f;
	size_t n = 0;

	snprintf(p, sizeof(p), "%s/%s", harness_dir(h), name);
	buf[0] = '\0';
	f = fopen(p, "r");
	if (f == NULL)
		return;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
}

/* Wait up to @ms for $D/@name to be non-empty. */
static bool wait_file(struct harness *h, const char *name, int ms)
{
	char buf[256];
	uint64_t end = mono_ms() + (uint64_t)ms;

	do {
		read_file(h, name, buf, sizeof(buf));
		if (buf[0] != '\0')
			return true;
		usleep(20000);
	} while (mono_ms() < end);
	return false;
}

/* ------------------------------------------------------------------------
 * Counted mutual exclusion
 * ------------------------------------------------------------------------ */

static void test_counter_under_lock(void **state)
{
	struct harness *h = start(state, "cli-lock-count");
	pid_t pids[NCLIENTS * NPROC];
	char script[2048], out[256];
	int n = 0;

	/* The counter starts at 0; each loop increments it ROUNDS times,
	 * the read and the write by separate processes, under the lock.
	 * The lock command's exit status stops the loop on any failure. */
	snprintf(script, sizeof(script),
	    "raftkv put count 0 >/dev/null || exit 1\n");
	assert_int_equal(harness_wait_status(harness_sh(h, script)), 0);
	snprintf(script, sizeof(script),
	    "i=0; while [ $i -lt %d ]; do\n"
	    "  raftkv lock count.lock -- sh -c "
	    "'v=$(raftkv get count) || exit 1; "
	    "raftkv put count $((v + 1)) >/dev/null' || exit 1\n"
	    "  i=$((i + 1))\n"
	    "done\n",
	    ROUNDS);
	for (int c = 0; c < NCLIENTS; c++)
		for (int p = 0; p < NPROC; p++)
			pids[n++] = harness_sh(h, script);
	for (int i = 0; i < n; i++)
		assert_int_equal(harness_wait_status(pids[i]), 0);
	assert_int_equal(harness_wait_status(
	                     harness_sh(h, "raftkv get count > $D/count")),
	    0);
	read_file(h, "count", out, sizeof(out));
	assert_int_equal(strtol(out, NULL, 10), NCLIENTS * NPROC * ROUNDS);
	harness_mark_passed(h);
}

/* ------------------------------------------------------------------------
 * Holder death, lease, fencing
 * ------------------------------------------------------------------------ */

static void test_kill9_holder_lease_and_fence(void **state)
{
	struct harness *h = start(state, "cli-lock-kill");
	char old[64], got[64], buf[256];
	pid_t holder, waiter;
	uint64_t t_killed, t_granted;
	int child;

	/* The holder: records its token and its command's pid, then
	 * sleeps holding the lock. */
	holder = harness_sh(h,
	    "exec raftkv lock L -- sh -c "
	    "'echo $$ > $D/holder.pid; "
	    "echo $RAFTKV_LOCK_TOKEN > $D/old.token; "
	    "exec sleep 600'");
	assert_true(wait_file(h, "old.token", 30000));
	assert_true(wait_file(h, "holder.pid", 30000));
	read_file(h, "old.token", old, sizeof(old));
	assert_true(strtoull(old, NULL, 10) > 0);
	read_file(h, "holder.pid", buf, sizeof(buf));
	child = atoi(buf);
	assert_true(child > 1);
	/* A fenced put with the live token applies. */
	snprintf(buf, sizeof(buf),
	    "raftkv put --fence %s --lock L data first >/dev/null", old);
	assert_int_equal(harness_wait_status(harness_sh(h, buf)), 0);
	/* A waiter queues behind it. */
	waiter = harness_sh(h,
	    "raftkv lock --timeout 60000 L -- sh -c "
	    "'echo $RAFTKV_LOCK_TOKEN > $D/new.token; "
	    "raftkv put --fence $RAFTKV_LOCK_TOKEN --lock L "
	    "data second >/dev/null || exit 7; "
	    "raftkv put --fence '"
	    "$(cat $D/old.token)"
	    "' "
	    "--lock L data stale >/dev/null 2>$D/stale.err; "
	    "echo $? > $D/stale.rc'");
	usleep(300000);
	/* kill -9 the holder (the raftkv process; its command too, by the
	 * pid it wrote): nothing unlocks; the lease must run out. */
	assert_int_equal(kill(holder, SIGKILL), 0);
	assert_int_equal(harness_wait_status(holder), 128 + SIGKILL);
	kill(child, SIGKILL);
	t_killed = mono_ms();
	assert_int_equal(harness_wait_status(waiter), 0);
	t_granted = mono_ms();
	/* Not before the lease (safety; load only makes it later): the
	 * holder renewed at most a lease ago, so at least the lease minus
	 * one renewal period (a third of it) had to pass. */
	assert_true(t_granted - t_killed >=
	    (uint64_t)(KV_LOCK_LEASE_NS / 1000000) * 2 / 3 - 500);
	read_file(h, "new.token", got, sizeof(got));
	assert_true(strtoull(got, NULL, 10) > strtoull(old, NULL, 10));
	/* The stale holder's fenced put was refused (exit 2, "fenced"),
	 * and the value is the new holder's. */
	read_file(h, "stale.rc", buf, sizeof(buf));
	assert_string_equal(buf, "2");
	read_file(h, "stale.err", buf, sizeof(buf));
	assert_non_null(strstr(buf, "fenced"));
	assert_int_equal(harness_wait_status(
	                     harness_sh(h, "raftkv get data > $D/data")),
	    0);
	read_file(h, "data", buf, sizeof(buf));
	assert_string_equal(buf, "second");
	/* Released now: the old token is refused still, and so is the
	 * new one (no live grant at all). */
	snprintf(buf, sizeof(buf),
	    "raftkv put --fence %s --lock L data x 2>/dev/null", old);
	assert_int_equal(harness_wait_status(harness_sh(h, buf)), 2);
	snprintf(buf, sizeof(buf),
	    "raftkv put --fence %s --lock L data x 2>/dev/null", got);
	assert_int_equal(harness_wait_status(harness_sh(h, buf)), 2);
	/* --nb on a free lock: granted at once. */
	assert_int_equal(harness_wait_status(
	                     harness_sh(h, "raftkv lock --nb L -- true")),
	    0);
	harness_mark_passed(h);
}

/*
 * Idle expiry: the holder is killed and nothing else is proposed by any
 * client; only the leader's TICKs move the committed clock past the
 * lease.  Watched with GETLK, a read that commits nothing: the lock must
 * become free (without TICKs it never would).
 */
static void test_idle_expiry_by_ticks(void **state)
{
	struct harness *h = start(state, "cli-lock-idle");
	struct clerk_options co;
	struct clerk *ck;
	struct clerk_lock_req rq = { .key = "L",
		.keylen = 1,
		.kind = KV_LK_FLOCK,
		.mode = KV_LK_EXCL,
		.owner = 1 };
	struct kv_lock who;
	char buf[64];
	pid_t holder;
	int rv = -1;

	holder = harness_sh(h,
	    "exec raftkv lock L -- sh -c "
	    "'echo $$ > $D/holder.pid; exec sleep 600'");
	assert_true(wait_file(h, "holder.pid", 30000));
	read_file(h, "holder.pid", buf, sizeof(buf));
	clerk_options_defaults(&co);
	co.deadline_ms = 30000;
	assert_int_equal(clerk_new(harness_cluster(h), &co, &ck), 0);
	assert_int_equal(clerk_getlk(ck, &rq, &who), KV_ELOCKED);
	assert_true(who.session != 0);
	assert_int_equal(kill(holder, SIGKILL), 0);
	assert_int_equal(harness_wait_status(holder), 128 + SIGKILL);
	kill(atoi(buf), SIGKILL);
	/* Eventually free: a lease plus a few TICKs; 60 s is far beyond. */
	for (uint64_t end = mono_ms() + 60000; mono_ms() < end;) {
		rv = clerk_getlk(ck, &rq, &who);
		if (rv != KV_ELOCKED)
			break;
		usleep(200000);
	}
	clerk_free(ck);
	assert_int_equal(rv, KV_OK);
	harness_mark_passed(h);
}

/* A lock taken without a command: printed token and handle; the handle
 * releases it; --nb meanwhile says held (exit 2). */
static void test_lock_handle_unlock(void **state)
{
	struct harness *h = start(state, "cli-lock-handle");
	char line[128], *tab;

	assert_int_equal(harness_wait_status(
	                     harness_sh(h, "raftkv lock K > $D/held")),
	    0);
	read_file(h, "held", line, sizeof(line));
	tab = strchr(line, '\t');
	assert_non_null(tab);
	assert_int_equal(harness_wait_status(harness_sh(h,
	                     "raftkv lock --nb K -- true "
	                     "2>/dev/null")),
	    2);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "raftkv unlock K %s", tab + 1);
		assert_int_equal(harness_wait_status(harness_sh(h, cmd)), 0);
	}
	assert_int_equal(harness_wait_status(
	                     harness_sh(h, "raftkv lock --nb K -- true")),
	    0);
	harness_mark_passed(h);
}

/* harness_wait_status() for at most @ms: the status, or -1 (still running). */
static int wait_status_for(pid_t pid, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;
	int ws;

	do {
		pid_t r = waitpid(pid, &ws, WNOHANG);

		if (r == pid)
			return WIFEXITED(ws) ? WEXITSTATUS(ws)
			                     : 128 + WTERMSIG(ws);
		if (r < 0 && errno != EINTR)
			return -2;
		usleep(50000);
	} while (mono_ms() < end);
	return -1;
}

/* Is process @pid gone (no such process, or a zombie nobody reaped yet)
 * within @ms? */
static bool gone(pid_t pid, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;
	char path[64], st[512];

	do {
		FILE *f;
		const char *p;
		size_t n;

		if (kill(pid, 0) != 0 && errno == ESRCH)
			return true;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		f = fopen(path, "r");
		n = f != NULL ? fread(st, 1, sizeof(st) - 1, f) : 0;
		if (f != NULL)
			fclose(f);
		st[n] = '\0';
		p = strrchr(st, ')'); /* "pid (comm) S ..." */
		if (p != NULL && p[1] == ' ' && p[2] == 'Z')
			return true;
		usleep(20000);
	} while (mono_ms() < end);
	return false;
}

/*
 * A CLI cut off from the cluster (every member stopped with SIGSTOP)
 * cannot renew its lease: past its local deadline (a lease after its
 * last renewal was sent, less a margin) it stops the command (SIGTERM)
 * and exits 5, as for a lost lock.  Before the fix it treated "no
 * answer" as "still held" and the command ran on for ever.  The command
 * here ignores SIGTERM (it notes it and waits on): it gets SIGKILL 5 s
 * later.  Before that fix it was left running as if it held the lock
 * (and raftkv lock waited for it for ever).
 */
static void test_cut_off_stops_command(void **state)
{
	struct harness *h = start(state, "cli-lock-cutoff");
	pid_t holder;
	char buf[64], sleeper[64];
	bool sleeper_gone;
	int rv;

	holder = harness_sh(h,
	    "exec raftkv lock L -- sh -c "
	    "'sleep 600 & echo $! > $D/sleep.pid; "
	    "trap \"echo term > $D/term\" TERM; "
	    "echo $$ > $D/holder.pid; while :; do wait; sleep 1; done'");
	assert_true(wait_file(h, "holder.pid", 30000));
	read_file(h, "sleep.pid", sleeper, sizeof(sleeper));
	for (int i = 0; i < harness_n(h); i++)
		assert_int_equal(harness_kill(h, i, SIGSTOP), 0);
	/* A lease (10 s) and the unlock's try after it: 60 s is far. */
	rv = wait_status_for(holder, 60000);
	for (int i = 0; i < harness_n(h); i++)
		harness_kill(h, i, SIGCONT);
	read_file(h, "holder.pid", buf, sizeof(buf));
	/* The command's own child went with it (its process group was
	 * stopped, not the command alone). */
	sleeper_gone = atoi(sleeper) > 0 && gone(atoi(sleeper), 3000);
	if (atoi(sleeper) > 0)
		kill(atoi(sleeper), SIGKILL);
	if (rv == -1) {
		kill(holder, SIGKILL);
		kill(atoi(buf), SIGKILL);
		harness_wait_status(holder);
		fail_msg("raftkv lock ran on while cut off");
	}
	assert_int_equal(rv, 5);
	/* raftkv lock reaped it: the command is gone. */
	assert_true(kill(atoi(buf), 0) != 0 && errno == ESRCH);
	assert_true(sleeper_gone);
	read_file(h, "term", buf, sizeof(buf));
	assert_string_equal(buf, "term");
	harness_mark_passed(h);
}

/*
 * The same loss, and raftkv stopped right after its SIGTERM (an outside
 * SIGSTOP; a SIGTTOU on its own message): the command, which ignores
 * SIGTERM, must still get SIGKILL at the end of the 5 s grace, from the
 * guard.  Before, raftkv stood the guard down at the loss, and the
 * command ran on for as long as raftkv stayed stopped.
 */
static void test_lost_then_cli_stopped(void **state)
{
	struct harness *h = start(state, "cli-lock-loststop");
	pid_t holder;
	char cmd[64];
	bool ended = false, told;
	int rv;

	holder = harness_sh(h,
	    "exec raftkv lock V -- sh -c "
	    "'trap \"echo term > $D/term\" TERM; echo $$ > $D/cmd.pid; "
	    "while :; do sleep 0.2; done'");
	assert_true(wait_file(h, "cmd.pid", 30000));
	read_file(h, "cmd.pid", cmd, sizeof(cmd));
	assert_true(atoi(cmd) > 0);
	for (int i = 0; i < harness_n(h); i++)
		assert_int_equal(harness_kill(h, i, SIGSTOP), 0);
	/* Lost within a lease (10 s): SIGTERM, noted by the trap. */
	told = wait_file(h, "term", 30000);
	if (told) {
		assert_int_equal(kill(holder, SIGSTOP), 0);
		/* The grace (5 s) from the loss. */
		ended = gone(atoi(cmd), 10000);
	}
	for (int i = 0; i < harness_n(h); i++)
		harness_kill(h, i, SIGCONT);
	kill(holder, SIGCONT);
	rv = wait_status_for(holder, 60000);
	kill(-atoi(cmd), SIGKILL);
	kill(holder, SIGKILL);
	harness_wait_status(holder);
	assert_true(told);
	assert_true(ended);
	assert_int_equal(rv, 5);
	harness_mark_passed(h);
}

/*
 * SIGTERM (and SIGINT, SIGHUP) sent to `raftkv lock` reach the whole
 * process group of its command: here sh and the sleep it started (which
 * ignores nothing) both end, and raftkv lock exits with sh's status
 * (128 + SIGTERM) and releases the lock.  Before the command had a group
 * of its own, only sh got the signal and the sleep ran on.
 */
static void test_signal_reaches_the_group(void **state)
{
	struct harness *h = start(state, "cli-lock-group");
	pid_t holder;
	char cmd[64], grand[64];
	bool both;

	holder = harness_sh(h,
	    "exec raftkv lock G -- sh -c "
	    "'sleep 600 & echo $! > $D/grand.pid; echo $$ > $D/cmd.pid; "
	    "wait'");
	assert_true(wait_file(h, "cmd.pid", 30000));
	assert_true(wait_file(h, "grand.pid", 5000));
	read_file(h, "cmd.pid", cmd, sizeof(cmd));
	read_file(h, "grand.pid", grand, sizeof(grand));
	assert_int_equal(kill(holder, SIGTERM), 0);
	assert_int_equal(wait_status_for(holder, 20000), 128 + SIGTERM);
	both = gone(atoi(cmd), 3000) && gone(atoi(grand), 3000);
	if (!both) {
		kill(atoi(cmd), SIGKILL);
		kill(atoi(grand), SIGKILL);
	}
	assert_true(both);
	/* Released: free at once. */
	assert_int_equal(harness_wait_status(
	                     harness_sh(h, "raftkv lock --nb G -- true")),
	    0);
	harness_mark_passed(h);
}

/*
 * kill -9 of `raftkv lock` itself: its command runs in a group of its
 * own, so nothing of raftkv's reaches it; raftkv's guard (lockguard.h)
 * kills that group at once, the command and what it started, long
 * before the lease (10 s, renewed at most 3.3 s before the kill) could
 * let another holder in.  Before the guard both ran on, unrenewed.
 */
static void test_kill9_cli_ends_command(void **state)
{
	struct harness *h = start(state, "cli-lock-kill9cmd");
	pid_t holder;
	char cmd[64], grand[64];
	bool both;

	holder = harness_sh(h,
	    "exec raftkv lock P -- sh -c "
	    "'sleep 600 & echo $! > $D/grand.pid; echo $$ > $D/cmd.pid; "
	    "wait'");
	assert_true(wait_file(h, "cmd.pid", 30000));
	assert_true(wait_file(h, "grand.pid", 5000));
	read_file(h, "cmd.pid", cmd, sizeof(cmd));
	read_file(h, "grand.pid", grand, sizeof(grand));
	assert_int_equal(kill(holder, SIGKILL), 0);
	assert_int_equal(harness_wait_status(holder), 128 + SIGKILL);
	both = gone(atoi(cmd), 3000) && gone(atoi(grand), 3000);
	if (!both) {
		kill(atoi(cmd), SIGKILL);
		kill(atoi(grand), SIGKILL);
	}
	assert_true(both);
	harness_mark_passed(h);
}

/* The pid of the child of @parent named @comm, or -1 (after @ms). */
static pid_t child_named(pid_t parent, const char *comm, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;
	char want[64];

	snprintf(want, sizeof(want), "(%s) ", comm);
	do {
		DIR *d = opendir("/proc");
		struct dirent *e;
		pid_t found = -1;

		while (d != NULL && found < 0 && (e = readdir(d)) != NULL) {
			char path[300], st[512];
			const char *p;
			size_t n;
			FILE *f;
			int ppid;

			if (atoi(e->d_name) <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%s/stat",
			    e->d_name);
			f = fopen(path, "r");
			if (f == NULL)
				continue;
			n = fread(st, 1, sizeof(st) - 1, f);
			fclose(f);
			st[n] = '\0';
			p = strstr(st, want);
			/* "pid (comm) S ppid ..." */
			if (p != NULL &&
			    sscanf(p + strlen(want), "%*c %d", &ppid) == 1 &&
			    ppid == (int)parent)
				found = atoi(e->d_name);
		}
		if (d != NULL)
			closedir(d);
		if (found > 0)
			return found;
		usleep(20000);
	} while (mono_ms() < end);
	return -1;
}

/*
 * The guard (named raftkv-guard, not raftkv) killed while the command
 * runs: raftkv must not run on unguarded; it kills the command's group,
 * unlocks and exits 5.  Before, the command ran on with no guard.
 */
static void test_guard_killed_ends_command(void **state)
{
	struct harness *h = start(state, "cli-lock-guardkill");
	char cmd[64];
	pid_t holder, guard;
	int rv;
	bool ended;

	holder = harness_sh(h,
	    "exec raftkv lock U -- sh -c 'echo $$ > $D/cmd.pid; "
	    "while :; do sleep 0.2; done'");
	assert_true(wait_file(h, "cmd.pid", 30000));
	read_file(h, "cmd.pid", cmd, sizeof(cmd));
	assert_true(atoi(cmd) > 0);
	guard = child_named(holder, "raftkv-guard", 5000);
	if (guard > 0)
		kill(guard, SIGKILL);
	rv = wait_status_for(holder, 20000);
	ended = gone(atoi(cmd), 3000);
	kill(-atoi(cmd), SIGKILL);
	kill(holder, SIGKILL);
	harness_wait_status(holder);
	assert_true(guard > 0);
	assert_int_equal(rv, 5);
	assert_true(ended);
	/* Unlocked: free at once. */
	assert_int_equal(harness_wait_status(
	                     harness_sh(h, "raftkv lock --nb U -- true")),
	    0);
	harness_mark_passed(h);
}

/* Start `raftkv lock` running @script's command on a new pseudo-terminal
 * (its controlling terminal: job control applies); *@master its master
 * side (the caller closes it). */
static pid_t sh_on_pty(struct harness *h, const char *script, int *master)
{
	const char *bd = getenv("RAFTKV_BUILDDIR");
	char path[8192], cl[4096];
	pid_t pid;

	snprintf(cl, sizeof(cl), "%s/cluster.conf", harness_dir(h));
	snprintf(path, sizeof(path), "%s/kv:%s", bd ? bd : ".",
	    getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	pid = forkpty(master, NULL, NULL, NULL);
	if (pid == 0) {
		setenv("RAFTKV_CLUSTER", cl, 1);
		setenv("PATH", path, 1);
		setenv("D", harness_dir(h), 1);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The state letter of process @pid ('?' if unreadable). */
static char proc_state(pid_t pid)
{
	char path[64], st[512];
	const char *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return '?';
	n = fread(st, 1, sizeof(st) - 1, f);
	fclose(f);
	st[n] = '\0';
	p = strrchr(st, ')');
	return p != NULL && p[1] == ' ' ? p[2] : '?';
}

/* Wait up to @ms for process @pid to be stopped. */
static bool wait_stopped(pid_t pid, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	do {
		if (proc_state(pid) == 'T')
			return true;
		usleep(20000);
	} while (mono_ms() < end);
	return false;
}

/* Lines in $D/@name (0 if absent). */
static int count_lines(struct harness *h, const char *name)
{
	char p[4096];
	FILE *f;
	int c, n = 0;

	snprintf(p, sizeof(p), "%s/%s", harness_dir(h), name);
	f = fopen(p, "r");
	if (f == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Wait up to @ms for $D/@name to have at least @n lines. */
static bool wait_ticks(struct harness *h, const char *name, int n, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	do {
		if (count_lines(h, name) >= n)
			return true;
		usleep(20000);
	} while (mono_ms() < end);
	return false;
}

/* The command of these tests: ignores SIGTERM, ticks every 0.2 s. */
#define TICKER \
	"exec raftkv lock S -- sh -c 'trap \"\" TERM; echo $$ > $D/cmd.pid; " \
	"while :; do echo x >> $D/ticks; sleep 0.2; done'"

/*
 * Job control: a stop (as by ^Z) and a continue (fg) within the lease:
 * the command goes on.  Then the command stopped past its lease: raftkv,
 * which stopped with it, is continued (fg/bg).  It must confirm the
 * lease before it continues the command; the lease is gone, so the
 * command, still stopped, is killed and never runs again (exit 5).
 * Before, raftkv sent SIGCONT first and the command (which ignores
 * SIGTERM) ticked on for the 5 s grace as if it held the lock.
 */
static void test_stopped_past_lease_not_resumed(void **state)
{
	struct harness *h = start(state, "cli-lock-stopped");
	int master = -1, ticks, rv;
	char cmd[64];
	pid_t holder;
	bool ok;

	holder = sh_on_pty(h, TICKER, &master);
	assert_true(holder > 0);
	assert_true(wait_file(h, "cmd.pid", 30000));
	read_file(h, "cmd.pid", cmd, sizeof(cmd));
	assert_true(atoi(cmd) > 0);
	/* A short stop first: continued within the lease, it goes on. */
	assert_int_equal(kill(-atoi(cmd), SIGSTOP), 0);
	ok = wait_stopped(holder, 10000);
	if (ok) {
		ticks = count_lines(h, "ticks");
		kill(holder, SIGCONT);
		ok = wait_ticks(h, "ticks", ticks + 2, 10000);
		if (!ok)
			print_message("not continued\n");
	}
	if (ok && kill(-atoi(cmd), SIGSTOP) == 0)
		ok = wait_stopped(holder, 10000);
	if (ok) {
		/* Past the lease (10 s from the last renewal at most). */
		sleep(11);
		ticks = count_lines(h, "ticks");
		kill(holder, SIGCONT);
		rv = wait_status_for(holder, 20000);
		ok = rv == 5 && count_lines(h, "ticks") == ticks &&
		    gone(atoi(cmd), 3000);
		if (!ok)
			print_message("rv %d ticks %d -> %d\n", rv, ticks,
			    count_lines(h, "ticks"));
	}
	kill(-atoi(cmd), SIGKILL);
	kill(holder, SIGKILL);
	harness_wait_status(holder);
	close(master);
	assert_true(ok);
	harness_mark_passed(h);
}

/*
 * The same stop, then only the command is continued (kill -CONT, a
 * debugger, a parent without job control), raftkv stays stopped and
 * renews nothing: raftkv's guard kills the command's group by the end
 * of the lease raftkv last confirmed.  Before, the command ran on with
 * no lease at all.
 */
static void test_command_continued_alone_is_killed(void **state)
{
	struct harness *h = start(state, "cli-lock-contalone");
	int master = -1, rv = -1;
	char cmd[64];
	pid_t holder;
	bool ok;

	holder = sh_on_pty(h, TICKER, &master);
	assert_true(holder > 0);
	assert_true(wait_file(h, "cmd.pid", 30000));
	read_file(h, "cmd.pid", cmd, sizeof(cmd));
	assert_true(atoi(cmd) > 0);
	assert_int_equal(kill(-atoi(cmd), SIGSTOP), 0);
	ok = wait_stopped(holder, 10000);
	if (ok) {
		kill(-atoi(cmd), SIGCONT);
		/* The lease raftkv last confirmed ends within 10 s. */
		ok = gone(atoi(cmd), 15000);
		kill(holder, SIGCONT);
		rv = wait_status_for(holder, 20000);
		ok = ok && rv == 5;
		if (!ok)
			print_message("rv %d\n", rv);
	}
	kill(-atoi(cmd), SIGKILL);
	kill(holder, SIGKILL);
	harness_wait_status(holder);
	close(master);
	assert_true(ok);
	harness_mark_passed(h);
}

/*
 * Only the command's leader is stopped (kill -STOP of its pid); a child
 * in its group runs on.  raftkv, on a terminal, stops with the leader
 * (job control) and renews nothing: its guard must kill the whole group
 * by the end of the lease raftkv last confirmed, stopped leader or not.
 * Before, the guard spared a group whose leader was stopped, and the
 * child ran on unlocked for as long as raftkv stayed stopped.
 */
static void test_leader_stopped_child_killed(void **state)
{
	struct harness *h = start(state, "cli-lock-leaderstop");
	int master = -1, rv = -1;
	char cmd[64], child[64];
	pid_t holder;
	bool ok;

	holder = sh_on_pty(h,
	    "exec raftkv lock T -- sh -c "
	    "'while :; do echo x >> $D/ticks; sleep 0.2; done & "
	    "echo $! > $D/child.pid; echo $$ > $D/cmd.pid; wait'",
	    &master);
	assert_true(holder > 0);
	assert_true(wait_file(h, "cmd.pid", 30000));
	assert_true(wait_file(h, "child.pid", 5000));
	read_file(h, "cmd.pid", cmd, sizeof(cmd));
	read_file(h, "child.pid", child, sizeof(child));
	assert_true(atoi(cmd) > 0 && atoi(child) > 0);
	assert_int_equal(kill(atoi(cmd), SIGSTOP), 0);
	ok = wait_stopped(holder, 10000);
	if (ok) {
		/* The lease raftkv last confirmed ends within 10 s. */
		ok = gone(atoi(child), 15000);
		if (!ok)
			print_message("the child ran on past the lease\n");
		kill(holder, SIGCONT);
		rv = wait_status_for(holder, 20000);
		ok = ok && rv == 5;
		if (rv != 5)
			print_message("rv %d\n", rv);
	}
	kill(-atoi(cmd), SIGKILL);
	kill(holder, SIGKILL);
	harness_wait_status(holder);
	close(master);
	assert_true(ok);
	harness_mark_passed(h);
}

/*
 * The command ends normally and leaves a process in its group (a
 * background job of a script): that gets SIGTERM before the unlock, so
 * nothing of the command runs on after it (exit status: the command's).
 * Before, the sleep ran on, unlocked.
 */
static void test_leftovers_end_before_unlock(void **state)
{
	struct harness *h = start(state, "cli-lock-leftover");
	char left[64];
	bool ended;

	assert_int_equal(harness_wait_status(harness_sh(h,
	                     "exec raftkv lock Q -- sh -c "
	                     "'sleep 600 & echo $! > $D/left.pid; exit 3'")),
	    3);
	read_file(h, "left.pid", left, sizeof(left));
	assert_true(atoi(left) > 0);
	ended = gone(atoi(left), 3000);
	if (!ended)
		kill(atoi(left), SIGKILL);
	assert_true(ended);
	harness_mark_passed(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_lock_handle_unlock, teardown),
		cmocka_unit_test_teardown(test_cut_off_stops_command, teardown),
		cmocka_unit_test_teardown(test_lost_then_cli_stopped, teardown),
		cmocka_unit_test_teardown(test_signal_reaches_the_group,
		    teardown),
		cmocka_unit_test_teardown(test_kill9_cli_ends_command,
		    teardown),
		cmocka_unit_test_teardown(test_guard_killed_ends_command,
		    teardown),
		cmocka_unit_test_teardown(test_stopped_past_lease_not_resumed,
		    teardown),
		cmocka_unit_test_teardown(
		    test_command_continued_alone_is_killed, teardown),
		cmocka_unit_test_teardown(test_leader_stopped_child_killed,
		    teardown),
		cmocka_unit_test_teardown(test_leftovers_end_before_unlock,
		    teardown),
		cmocka_unit_test_teardown(test_idle_expiry_by_ticks, teardown),
		cmocka_unit_test_teardown(test_kill9_holder_lease_and_fence,
		    teardown),
		cmocka_unit_test_teardown(test_counter_under_lock, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
