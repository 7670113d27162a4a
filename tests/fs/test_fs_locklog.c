/*
 * test_fs_locklog.c - mutual exclusion checked from a real mount cluster's
 * committed log (issue 11: "grant/release/expire intervals of one lock
 * never overlap").
 *
 * Three real mounts (tests/fs/fsharness.h); on each, processes contend for
 * one file for a few seconds: two with flock(2) (mostly exclusive, some
 * shared), two with fcntl(2) record locks on overlapping ranges (read and
 * write locks), each now and then closing its descriptor (the release
 * unlocks) and opening it again.  Then one follower is stopped cleanly,
 * its log is read back through the storage layer (raft/storage/storage.h)
 * and replayed, entry by entry, through a fresh state machine (libkv),
 * configured as the cluster's.  After every applied entry the lock table
 * is checked (tests/unit/lockcheck.h, the checker of the unit tests):
 * no two holders of different owners in conflict (at most one exclusive
 * holder per lock or byte, never exclusive beside shared), every held
 * token granted; and every grant's token is larger than all earlier ones.
 * The members keep their whole log (a large max_raft_state: no snapshot),
 * so the replay starts at the first entry.  Cleanup by PID (the harness).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv/kv.h"
#include "raft/storage/storage.h"
#include "tests/fs/fsharness.h"
#include "tests/unit/lockcheck.h"

#define RUN_MS 4000 /* how long the processes contend */
#define KIDS_PER_MOUNT 4 /* 2 flock, 2 fcntl */
#define LEASE_MS 4000

static pid_t kids[N * KIDS_PER_MOUNT];

/* At exit, before the harness stops the mounts. */
static void kill_kids(void)
{
	if (getpid() != main_pid)
		return;
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int open_file(int mount)
{
	char p[PATH_MAX];

	pathf(p, mount, "locklog");
	return open(p, O_RDWR | O_CREAT, 0644);
}

/* A contender on @mount until @end (now_ms()): with flock when @use_flock,
 * else fcntl on one of three overlapping ranges.  Exit status 0, or the
 * step that failed. */
static int contend(int mount, bool use_flock, uint64_t end, uint64_t seed)
{
	static const off_t ranges[3][2] = { { 0, 0 }, { 0, 100 }, { 50, 100 } };
	int fd = open_file(mount);

	if (fd < 0)
		return 2;
	for (unsigned n = 1; now_ms() < end; n++) {
		bool excl = rng(&seed) % 3 != 0;

		if (use_flock) {
			if (flock(fd, excl ? LOCK_EX : LOCK_SH) != 0)
				return 3;
		} else {
			const off_t *r = ranges[rng(&seed) % 3];
			struct flock fl = { .l_type = excl ? F_WRLCK : F_RDLCK,
				.l_whence = SEEK_SET,
				.l_start = r[0],
				.l_len = r[1] };

			if (fcntl(fd, F_SETLKW, &fl) != 0)
				return 4;
		}
		usleep((useconds_t)(1000 + rng(&seed) % 4000));
		if (n % 8 == 0) {
			close(fd); /* the close unlocks (flush, release) */
			fd = open_file(mount);
			if (fd < 0)
				return 5;
			continue;
		}
		if (use_flock) {
			if (flock(fd, LOCK_UN) != 0)
				return 6;
		} else {
			struct flock fl = { .l_type = F_UNLCK,
				.l_whence = SEEK_SET };

			if (fcntl(fd, F_SETLK, &fl) != 0)
				return 7;
		}
	}
	close(fd);
	return 0;
}

static void contention(void)
{
	uint64_t end;
	size_t k = 0;
	int fd = open_file(0);

	CHECK(fd >= 0, "create the file");
	close(fd);
	end = now_ms() + RUN_MS;
	for (int m = 0; m < N; m++)
		for (int j = 0; j < KIDS_PER_MOUNT; j++) {
			pid_t p = fork();

			CHECK(p >= 0, "fork");
			if (p == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				_exit(contend(m, j % 2 == 0, end,
				    0x9e3779b97f4a7c15ull * (k + 1)));
			}
			kids[k++] = p;
		}
	for (size_t i = 0; i < k; i++) {
		int st = -1;
		pid_t r = 0;

		/* Bound the wait: a waiter granted after the end exits. */
		for (int t = 0; t < 60000 / 20 && r == 0; t++) {
			r = waitpid(kids[i], &st, WNOHANG);
			if (r == 0)
				sleep_ms(20);
		}
		CHECK(r == kids[i],
		    "contender %zu still running 60 s after "
		    "the end",
		    i);
		kids[i] = 0;
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "contender %zu (mount %zu, %s) failed: status %#x", i,
		    i / KIDS_PER_MOUNT + 1, i % 2 == 0 ? "flock" : "fcntl", st);
	}
}

static void on_event(void *arg, const struct kv_lock_event *ev)
{
	struct lockcheck *c = arg;

	if (ev->type == KV_LOCK_EV_GRANTED)
		CHECK(lockcheck_grant(c, ev->inode, &ev->lock) == 0,
		    "at entry %" PRIu64 ": %s", ev->index, c->err);
}

/* Replay member @i's log (stopped) through a fresh state machine,
 * checking the lock table after every entry. */
static void replay(int i)
{
	struct kv_options opt = { .quota = cl.quota,
		.lock_lease_ns = cl.lock_lease_ms * 1000000,
		.session_ttl_ns = cl.session_ttl_ms * 1000000 };
	struct lockcheck chk = { 0 };
	struct raft_boot boot;
	struct storage *s;
	char err[512] = "";
	uint64_t applied = 0;
	struct kv *kv;
	int rv;

	rv = storage_open(data[i], cl.id, (raft_id)i + 1, NULL, &s, &boot, err,
	    sizeof(err));
	CHECK(rv == 0, "open member %d's data: %d %s", i + 1, rv, err);
	CHECK(!boot.has_snapshot && boot.n_entries > 0 &&
	        boot.entries[0].index == 1,
	    "member %d's log does not start at entry 1 (snapshot %d)", i + 1,
	    boot.has_snapshot);
	kv = kv_new(&opt);
	CHECK(kv != NULL, "kv_new");
	kv_set_lock_listener(kv, on_event, &chk);
	for (uint64_t n = 0; n < boot.n_entries; n++) {
		const struct raft_entry *e = &boot.entries[n];
		struct kv_result res;

		/* What rsm.c hands the application (empty entries are read
		 * barriers). */
		if (e->type != RAFT_ENTRY_NORMAL || e->len == 0)
			continue;
		CHECK(kv_apply(kv, e->index, e->data, e->len, &res) == 0,
		    "apply entry %" PRIu64, e->index);
		kv_result_release(&res);
		applied++;
		lockcheck_clear(&chk);
		kv_lock_each(kv, lockcheck_add, &chk);
		CHECK(lockcheck_exclusion(&chk) == 0,
		    "after entry %" PRIu64 ": %s", e->index, chk.err);
	}
	printf("# replayed %" PRIu64 " entries of member %d (log %" PRIu64
	       "..%" PRIu64 "): %" PRIu64 " grants, at most %" PRIu64
	       " holders sharing a lock\n",
	    applied, i + 1, boot.entries[0].index,
	    boot.entries[boot.n_entries - 1].index, chk.grants, chk.max_shared);
	/* Not vacuous: the processes took many locks (a third of them
	 * shared: how many shared one at once is printed above). */
	CHECK(chk.grants >= 100, "only %" PRIu64 " grants in the log",
	    chk.grants);
	kv_free(kv);
	lockcheck_free(&chk);
	storage_close(s);
}

int main(void)
{
	char extra[64], p[PATH_MAX];
	int rv, l, v, st;

	/* The whole log stays (no snapshot): the replay starts at entry 1. */
	max_raft_state = 1ul << 30;
	snprintf(extra, sizeof(extra), "lock_lease %d\n", LEASE_MS);
	rv = fsh_setup("locklog", extra);
	if (rv != 0)
		return rv;
	atexit(kill_kids); /* runs before the harness' cleanup */
	setvbuf(stdout, NULL, _IONBF, 0);

	contention();
	printf("ok %d processes on %d mounts contended for %d ms\n",
	    N * KIDS_PER_MOUNT, N, RUN_MS);
	/* A follower that applied everything (a read through it passes a
	 * barrier after the last write) stops cleanly. */
	l = leader_index();
	v = (l + 1) % N;
	pathf(p, l, "done");
	put_file(p, "done", O_TRUNC);
	expect_file(v, "done", "done");
	st = stop(v);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "mount %d ended with status %#x", v + 1, st);
	replay(v);
	printf("ok the committed log, replayed: no two holders in conflict "
	       "after any entry, tokens strictly increasing\n");
	start(v);
	fsh_stop_all_clean();
	return 0;
}
