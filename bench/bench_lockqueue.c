/*
 * bench_lockqueue.c - what one inode's queue of POSIX lock waiters costs
 * an apply of the lock table (kv/locktab.c), up to its limit.
 *
 * The POSIX grant pass judges every waiter against the whole queue (the
 * FIFO rule of kv.h: an owner passes only the waiters behind it), so a
 * queued LOCK or a CANCEL costs about the square of the queue; the queue
 * is capped at LOCKTAB_POSIX_WAITERS (locktab.h) to bound it.  The state,
 * as in the review that found the cost: owner Z holds [1e9, 1e9]
 * exclusive, W0 (holding nothing) waits for [0, 2e9] exclusive, and every
 * other waiter's owner holds a shared byte of its own elsewhere (so each
 * is judged with the marks of mark_behind()) and waits for one shared
 * byte inside W0's range (queued behind W0).  Timed: a new such owner's
 * LOCK (queued, making the queue N long) and its CANCEL, per apply.  Rows:
 * queue lengths up to the limit; at the limit with one waiter's owner
 * holding 10,000 pieces; the LOCK refused past the limit; and, for
 * reference, an uncontended LOCK + UNLOCK on another inode.
 *
 * Times are CPU time of the process (single-threaded), in the lock table
 * alone (kv_apply() adds its decoding and session work, bench_lockapply).
 *
 * Usage: bench_lockqueue [rounds]   (not part of `make check`)
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kv/cmd.h"
#include "kv/kv.h"
#include "kv/locktab.h"
#include "raft/util/num.h"

#define SEC 1000000000ll
#define INO 7u

static uint64_t idx = 1;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_lockqueue: %s failed\n", what);
	exit(1);
}

static struct locktab_req px(uint64_t ino, uint64_t owner, uint8_t mode,
    uint64_t start, uint64_t end, bool wait)
{
	return (struct locktab_req){ .inode = ino,
		.session = 1 + owner % 3, /* a few sessions */
		.owner = owner,
		.start = start,
		.end = end,
		.pid = 1,
		.kind = KV_LK_POSIX,
		.mode = mode,
		.wait = wait };
}

static int lock(struct locktab *t, struct locktab_req rq)
{
	struct kv_result r;

	kv_result_init(&r);
	if (locktab_lock(t, &rq, idx++, &r) != 0)
		die("locktab_lock");
	return r.status;
}

/* The state above with @n waiters; waiter 1's owner holds @pieces. */
static struct locktab *build(uint32_t n, uint32_t pieces)
{
	struct locktab *t = locktab_new(3600 * SEC, KV_LOCK_MAX);

	if (t == NULL)
		die("locktab_new");
	if (lock(t, px(INO, 1, KV_LK_EXCL, 1000000000, 1000000000, false)) !=
	        KV_OK ||
	    lock(t, px(INO, 2, KV_LK_EXCL, 0, 2000000000, true)) != KV_EQUEUED)
		die("the blocker");
	for (uint32_t i = 1; i < n; i++) {
		uint64_t o = 100 + i;

		for (uint32_t p = 0; p < (i == 1 ? pieces : 1); p++)
			if (lock(t,
			        px(INO, o, KV_LK_SHARED,
			            3000000000ull + 2 * (uint64_t)p +
			                1000000 * i,
			            3000000000ull + 2 * (uint64_t)p +
			                1000000 * i,
			            false)) != KV_OK)
				die("a piece");
		if (lock(t,
		        px(INO, o, KV_LK_SHARED, 1500000000ull + i,
		            1500000000ull + i, true)) != KV_EQUEUED)
			die("a waiter");
	}
	if (locktab_waiting(t) != n)
		die("the queue");
	return t;
}

static void row(const char *what, uint32_t n, uint32_t held, uint32_t applies,
    double ms)
{
	printf("%-30s %6u %8u %8u %10.1f %10.0f\n", what, n, held, applies, ms,
	    ms * 1e6 / applies);
}

/* A new owner X (holding a byte) queues (the queue: @n + 1) and cancels,
 * @rounds times. */
static void queue_cancel(const char *what, uint32_t n, uint32_t pieces,
    uint32_t rounds)
{
	struct locktab *t = build(n, pieces);
	struct locktab_req w = px(INO, 99, KV_LK_SHARED, 1999999999, 1999999999,
	    true);
	struct kv_result r;
	double t0;

	if (lock(t,
	        px(INO, 99, KV_LK_SHARED, 5000000000ull, 5000000000ull,
	            false)) != KV_OK)
		die("X's piece");
	t0 = now_ms();
	for (uint32_t i = 0; i < rounds; i++) {
		if (lock(t, w) != KV_EQUEUED)
			die("the timed LOCK");
		kv_result_init(&r);
		locktab_cancel(t, &w, idx++, &r);
	}
	row(what, n + 1, locktab_held(t), 2 * rounds, now_ms() - t0);
	if (locktab_waiting(t) != n)
		die("the cancels");
	locktab_free(t);
}

/* The refused LOCK past the limit, @rounds times. */
static void refused(uint32_t rounds)
{
	uint32_t n = LOCKTAB_POSIX_WAITERS;
	struct locktab *t = build(n, 1);
	double t0 = now_ms();

	for (uint32_t i = 0; i < rounds; i++)
		if (lock(t,
		        px(INO, 99, KV_LK_SHARED, 1999999999, 1999999999,
		            true)) != KV_ENOSPC)
			die("the refusal");
	row("LOCK refused (queue full)", n, locktab_held(t), rounds,
	    now_ms() - t0);
	locktab_free(t);
}

/* Reference: LOCK + UNLOCK on an inode nobody else uses, beside the
 * full queue. */
static void uncontended(uint32_t rounds)
{
	struct locktab *t = build(LOCKTAB_POSIX_WAITERS, 1);
	struct locktab_req rq = px(INO + 1, 5, KV_LK_EXCL, 0, 99, false);
	struct kv_result r;
	double t0 = now_ms();

	for (uint32_t i = 0; i < rounds; i++) {
		if (lock(t, rq) != KV_OK)
			die("the reference LOCK");
		kv_result_init(&r);
		if (locktab_unlock(t, &rq, idx++, &r) != 0)
			die("the reference UNLOCK");
	}
	row("LOCK + UNLOCK, other inode", 0, 1, 2 * rounds, now_ms() - t0);
	locktab_free(t);
}

int main(int argc, char **argv)
{
	static const uint32_t lens[] = { 7, 15, 31, LOCKTAB_POSIX_WAITERS - 1 };
	uint64_t rounds = 2000;
	char what[64];

	if (argc > 1 && num_parse_u64(argv[1], 10, 1, 1000000, &rounds) != 0) {
		fprintf(stderr, "usage: bench_lockqueue [rounds]\n");
		return 2;
	}
	printf("POSIX waiters per inode: at most %u (LOCKTAB_POSIX_WAITERS)\n",
	    LOCKTAB_POSIX_WAITERS);
	printf("%-30s %6s %8s %8s %10s %10s\n", "apply", "queue", "held",
	    "applies", "ms (cpu)", "ns/apply");
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		queue_cancel("queued LOCK + CANCEL", lens[i], 1,
		    (uint32_t)rounds);
	snprintf(what, sizeof(what), "same, one owner with 10000");
	queue_cancel(what, LOCKTAB_POSIX_WAITERS - 1, 10000,
	    (uint32_t)(rounds / 10 ? rounds / 10 : 1));
	refused((uint32_t)rounds);
	uncontended((uint32_t)rounds);
	return 0;
}
