/*
 * bench_lockapply.c - what a big lock table costs every apply of the KV
 * state machine.
 *
 * Builds a state with S lock sessions (default 10,000), each holding an
 * exclusive flock on its own key (S locked inodes), then times kv_apply()
 * of: TICKs (nothing but the clock: lease expiry is the only lock work),
 * sessionless PUTs, KEEPALIVEs of one session, and LOCK + UNLOCK pairs of
 * one session on one more key.  The reference rows run the same commands
 * on the same keys with an empty lock table, in the same run, so the
 * difference is the cost of the lock table per apply.  Committed time
 * advances 1 us per entry: no lease runs out during the run.  Then the
 * restore of a snapshot where S sessions hold a shared flock on ONE
 * inode (the decoder's check of the holders of one inode).
 *
 * Times are CPU time of the process (it is single-threaded).
 *
 * Usage: bench_lockapply [sessions]   (not part of `make check`)
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/kv.h"
#include "raft/util/num.h"

#define SEC 1000000000ll
#define ROUNDS 20000u

static int64_t clock_ns = 1700000000 * SEC;
static uint64_t seqs[1u << 20];

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_lockapply: %s failed\n", what);
	exit(1);
}

static struct kv_result apply(struct kv *kv, struct kv_cmd *c)
{
	struct kv_result r, out;
	void *buf;
	size_t len;

	c->time_ns = clock_ns;
	clock_ns += 1000;
	if (kv_cmd_encode_alloc(c, &buf, &len) != 0)
		die("encode");
	if (kv_apply(kv, kv_applied_index(kv) + 1, buf, len, &r) != 0)
		die("apply");
	free(buf);
	out = r;
	kv_result_release(&r); /* a result's value (none here) */
	return out;
}

static struct kv_op op_key(uint8_t type, const char *key)
{
	return (struct kv_op){ .type = type,
		.key = key,
		.keylen = (uint32_t)strlen(key) };
}

static struct kv_op op_flock(uint8_t type, const char *key, uint8_t mode)
{
	struct kv_op op = op_key(type, key);

	op.lkind = KV_LK_FLOCK;
	op.owner = 1;
	if (type == KV_OP_LOCK) {
		op.lmode = mode;
		op.pid = 1;
	}
	return op;
}

static void put(struct kv *kv, const char *key)
{
	struct kv_cmd c = { .type = KV_OP_PUT, .op = op_key(KV_OP_PUT, key) };

	c.op.data = "v";
	c.op.datalen = 1;
	c.op.flags = KV_F_ANYVER;
	c.op.meta = (struct kv_meta){ KV_KIND_FILE, 0644, 0, 0 };
	if (apply(kv, &c).status != KV_OK)
		die("put");
}

static uint64_t reg(struct kv *kv)
{
	struct kv_cmd c = { .type = KV_OP_REGISTER };

	return apply(kv, &c).client_id;
}

static int session_op(struct kv *kv, uint64_t s, struct kv_op op)
{
	struct kv_cmd c = { .type = op.type,
		.op = op,
		.client_id = s,
		.seq = ++seqs[s] };

	return apply(kv, &c).status;
}

/* A state with @n keys "k<i>" and, if @locked, @n sessions each holding
 * an exclusive flock on its key; *@one = a session for the timed ops. */
static struct kv *build(uint32_t n, int locked, uint64_t *one)
{
	struct kv_options opt = { .session_max = 2 * n + 16 };
	struct kv *kv = kv_new(&opt);
	uint32_t held, waiting;
	char key[32];

	if (kv == NULL)
		die("kv_new");
	for (uint32_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%" PRIu32, i);
		put(kv, key);
		if (locked) {
			uint64_t s = reg(kv);

			if (s >= sizeof(seqs) / sizeof(seqs[0]) ||
			    session_op(kv, s,
			        op_flock(KV_OP_LOCK, key, KV_LK_EXCL)) != KV_OK)
				die("lock");
		}
	}
	put(kv, "extra");
	*one = reg(kv);
	kv_lock_count(kv, &held, &waiting);
	if (held != (locked ? n : 0))
		die("the locks");
	return kv;
}

static void row(const char *what, const char *table, double ms)
{
	printf("%-28s %-14s %10u %10.1f %10.0f\n", what, table, ROUNDS, ms,
	    ms * 1e6 / ROUNDS);
}

static void measure(struct kv *kv, uint64_t one, const char *table)
{
	struct kv_cmd tick = { .type = KV_OP_TICK };
	double t0;

	t0 = now_ms();
	for (uint32_t i = 0; i < ROUNDS; i++)
		apply(kv, &tick);
	row("TICK", table, now_ms() - t0);

	t0 = now_ms();
	for (uint32_t i = 0; i < ROUNDS; i++)
		put(kv, "k0");
	row("PUT (sessionless)", table, now_ms() - t0);

	t0 = now_ms();
	for (uint32_t i = 0; i < ROUNDS; i++)
		if (session_op(kv, one,
		        (struct kv_op){ .type = KV_OP_KEEPALIVE }) != KV_OK)
			die("keepalive");
	row("KEEPALIVE", table, now_ms() - t0);

	t0 = now_ms();
	for (uint32_t i = 0; i < ROUNDS / 2; i++) {
		if (session_op(kv, one,
		        op_flock(KV_OP_LOCK, "extra", KV_LK_EXCL)) != KV_OK ||
		    session_op(kv, one, op_flock(KV_OP_UNLOCK, "extra", 0)) !=
		        KV_OK)
			die("lock/unlock");
	}
	row("LOCK + UNLOCK (per apply)", table, now_ms() - t0);
}

/* Restore (kv_restore) of a snapshot where @n sessions hold a shared
 * flock on one inode: the decoder's holder checks on one inode. */
static void measure_restore(uint32_t n)
{
	struct kv_options opt = { .session_max = 2 * n + 16 };
	struct kv *kv = kv_new(&opt), *copy = kv_new(&opt);
	uint32_t held, waiting;
	void *snap;
	size_t len;
	double t0;

	if (kv == NULL || copy == NULL)
		die("kv_new");
	put(kv, "shared");
	for (uint32_t i = 0; i < n; i++)
		if (session_op(kv, reg(kv),
		        op_flock(KV_OP_LOCK, "shared", KV_LK_SHARED)) != KV_OK)
			die("lock");
	if (kv_snapshot(kv, &snap, &len) != 0)
		die("snapshot");
	t0 = now_ms();
	if (kv_restore(copy, snap, len) != 0)
		die("restore");
	printf("%-28s %-14s %10u %10.1f\n", "restore", "1 inode", n,
	    now_ms() - t0);
	kv_lock_count(copy, &held, &waiting);
	if (held != n)
		die("restored locks");
	free(snap);
	kv_free(kv);
	kv_free(copy);
}

int main(int argc, char **argv)
{
	uint64_t n = 10000, one;
	struct kv *kv;
	char label[32];

	if (argc > 1 && num_parse_u64(argv[1], 10, 1, 400000, &n) != 0) {
		fprintf(stderr, "usage: bench_lockapply [sessions]\n");
		return 2;
	}
	printf("%-28s %-14s %10s %10s %10s\n", "apply", "lock table", "entries",
	    "ms (cpu)", "ns/apply");
	kv = build((uint32_t)n, 0, &one);
	measure(kv, one, "empty");
	kv_free(kv);
	kv = build((uint32_t)n, 1, &one);
	snprintf(label, sizeof(label), "%" PRIu64 " sessions", n);
	measure(kv, one, label);
	kv_free(kv);
	printf("\n%-28s %-14s %10s %10s\n", "snapshot", "shared flocks",
	    "holders", "ms (cpu)");
	measure_restore((uint32_t)n);
	return 0;
}
