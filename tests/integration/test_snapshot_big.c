/*
 * test_snapshot_big.c - snapshots of a big state on three real
 * raftkv-server members (issues 10 and 13): taking one must not stall a
 * member's loop long enough to cost the leader its leadership or a client
 * its answer, and a member that holds nothing must catch up through
 * InstallSnapshot with exactly the leader's state.
 *
 * The schedule:
 *
 *   cut off   one follower is cut off from the other two before anything
 *             is written: it holds nothing, as a new machine would;
 *   load      one clerk puts S MiB of incompressible 1 MiB values (S =
 *             256, 1024 with RAFTKV_LONG=1, 32 under AddressSanitizer,
 *             RAFTKV_SNAP_MIB overrides) into the two others, started with
 *             --max-raft-state S - 8 MiB, so both snapshot close to the
 *             whole state near the end of the load (their log is cut:
 *             the third member can only be brought back by a snapshot);
 *   catch-up  the follower is connected again; wait until it has applied
 *             what the leader had committed, then read every value from
 *             its local state.
 *
 * (Not a member restarted on an emptied data directory: a member that
 * forgets what it acknowledged is outside Raft's model; the leader's
 * progress still says it matches, and it probes it in a tight loop.
 * Replacing a machine goes through a membership change, issue 13.)
 *
 * All along, a prober thread commits a small put every 20 ms (clerk
 * deadline 10 s, 1 s per attempt) and a watcher thread polls every
 * member's STATUS every 50 ms for the leader and the term.
 *
 * Asserted (correctness only, never speed): every put of the load and of
 * the prober commits with KV_OK (no ErrMaybe, no unavailability), no
 * leader change and no new term during the whole run, the two members
 * snapshot, the third gets a snapshot by InstallSnapshot and holds every
 * value byte for byte.
 *
 * Printed (figures for the issue, not asserted): the longest stalled
 * turn of any member's loop (the members log a turn of 100 ms or more:
 * "loop stalled: one turn took N ms"), the longest snapshot as the
 * members log it (how long it held the applier: "state copied in", and
 * how long the persister took to write it: "written in"),
 * the longest restore, the longest commit latency seen by the prober (and
 * the longest of the probes that started while a member was writing a
 * snapshot file, from the log lines' time stamps), the load time and the
 * catch-up time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include <cmocka.h>

#include "kv/clerk.h"
#include "raft/client/cproto.h"
#include "tests/integration/harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

#define MIB (1024u * 1024)
#define VALUE_BYTES MIB
#define PROBE_PERIOD_MS 20
#define WATCH_PERIOD_MS 50
#define SNAPSHOT_WAIT_MS 300000
#define CATCHUP_WAIT_MS 600000
#define PROBES_KEPT 65536 /* probes whose times are kept */

struct big {
	struct harness *h;
	void *zctx;
	struct clerk *ck; /* the main thread's */
	uint8_t *buf; /* a value */
	unsigned mib; /* state size: values of VALUE_BYTES */
	uint64_t seed;

	pthread_t prober, watcher;
	bool prober_on, watcher_on;
	atomic_bool stop;

	/* prober (its thread only until joined) */
	uint64_t probes, probe_max_ms, probe_maybe, probe_fail;
	struct probe_at {
		uint64_t start_ms; /* wall clock, ms since the epoch */
		uint64_t ms; /* its latency */
	} probe_at[PROBES_KEPT];
	int probe_first_err;

	/* watcher (its thread only until joined) */
	uint64_t term0, leader0, max_term, leader_changes;
	char first_change[160];
};

static unsigned state_mib(void)
{
	const char *s = getenv("RAFTKV_SNAP_MIB");

	if (s != NULL && *s != '\0')
		return (unsigned)strtoul(s, NULL, 10);
#ifdef HAVE_ASAN
	return 32;
#else
	return harness_long() ? 1024 : 256;
#endif
}

/* Value @i: incompressible bytes, a pure function of (seed, i). */
static void fill(const struct big *b, unsigned i, uint8_t *buf, size_t len)
{
	uint64_t x = b->seed ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);

	for (size_t k = 0; k < len; k += 8) {
		uint64_t z;

		x += 0x9e3779b97f4a7c15ull;
		z = x;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		memcpy(buf + k, &z, len - k < 8 ? len - k : 8);
	}
}

static struct clerk *new_clerk(struct big *b)
{
	struct clerk_options co;
	struct clerk *ck = NULL;

	clerk_options_defaults(&co);
	co.zctx = b->zctx;
	if (clerk_new(harness_cluster(b->h), &co, &ck) != 0)
		return NULL;
	return ck;
}

/* The wall clock in ms since the epoch (what member log lines carry). */
static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- threads */

static void *prober_main(void *arg)
{
	struct big *b = arg;
	struct clerk *ck = new_clerk(b);
	char v[32];

	if (ck == NULL) {
		b->probe_fail++;
		b->probe_first_err = -ENOMEM;
		return NULL;
	}
	while (!atomic_load(&b->stop)) {
		uint64_t t0 = harness_now_ms(), dt, wall = wall_ms();
		int rv;

		snprintf(v, sizeof(v), "%" PRIu64, b->probes);
		rv = clerk_put(ck, "probe", 5, v, strlen(v), 0, KV_F_ANYVER,
		    NULL, NULL);
		dt = harness_now_ms() - t0;
		if (dt > b->probe_max_ms)
			b->probe_max_ms = dt;
		if (b->probes < PROBES_KEPT)
			b->probe_at[b->probes] = (struct probe_at){ wall, dt };
		b->probes++;
		if (rv == KV_EMAYBE)
			b->probe_maybe++;
		else if (rv != KV_OK)
			b->probe_fail++;
		if (rv != KV_OK && b->probe_first_err == 0)
			b->probe_first_err = rv;
		harness_sleep_ms(PROBE_PERIOD_MS);
	}
	clerk_free(ck);
	return NULL;
}

static void *watcher_main(void *arg)
{
	struct big *b = arg;
	uint64_t lterm = b->term0, lid = b->leader0;

	while (!atomic_load(&b->stop)) {
		for (int i = 0; i < harness_n(b->h); i++) {
			struct cproto_status st;

			if (harness_status(b->h, i, &st) != 0)
				continue;
			if (st.term > b->max_term)
				b->max_term = st.term;
			if (st.role != RAFT_LEADER ||
			    (st.term == lterm && st.id == lid))
				continue;
			if (b->leader_changes++ == 0)
				snprintf(b->first_change,
				    sizeof(b->first_change),
				    "member %" PRIu64 " leads in term %" PRIu64
				    " (was %" PRIu64 " in term %" PRIu64 ")",
				    st.id, st.term, lid, lterm);
			lterm = st.term;
			lid = st.id;
		}
		harness_sleep_ms(WATCH_PERIOD_MS);
	}
	return NULL;
}

/* ------------------------------------------------------------- figures */

/* The largest N over every member's log lines holding @pat followed by a
 * number (then " ms"). */
static uint64_t log_max(struct big *b, const char *pat, int *who)
{
	uint64_t max = 0;
	char line[1024];

	*who = -1;
	for (int i = 0; i < harness_n(b->h); i++) {
		FILE *f = fopen(harness_log_path(b->h, i), "r");

		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			const char *p = strstr(line, pat);
			uint64_t v;

			if (p == NULL)
				continue;
			v = strtoull(p + strlen(pat), NULL, 10);
			if (v > max) {
				max = v;
				*who = i;
			}
		}
		fclose(f);
	}
	return max;
}

/*
 * The longest probe that started while a snapshot file was being
 * written on any member: the lines "snapshot at I written in N ms" end
 * a write of N ms at their time stamp ("YYYY-MM-DDTHH:MM:SS.mmmZ ...",
 * UTC).  The number of such writes in *@writes.
 */
static uint64_t probe_max_during_writes(struct big *b, unsigned *writes)
{
	const char *pat = " written in ";
	uint64_t max = 0,
	         kept = b->probes < PROBES_KEPT ? b->probes : PROBES_KEPT;
	char line[1024];

	*writes = 0;
	for (int i = 0; i < harness_n(b->h); i++) {
		FILE *f = fopen(harness_log_path(b->h, i), "r");

		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			const char *p = strstr(line, pat);
			struct tm tm = { 0 };
			unsigned ms = 0;
			uint64_t end, len;

			if (p == NULL || strstr(line, "snapshot at ") == NULL ||
			    sscanf(line, "%d-%d-%dT%d:%d:%d.%uZ", &tm.tm_year,
			        &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			        &tm.tm_min, &tm.tm_sec, &ms) != 7)
				continue;
			tm.tm_year -= 1900;
			tm.tm_mon -= 1;
			end = (uint64_t)timegm(&tm) * 1000 + ms;
			len = strtoull(p + strlen(pat), NULL, 10);
			(*writes)++;
			for (uint64_t k = 0; k < kept; k++) {
				const struct probe_at *q = &b->probe_at[k];

				if (q->start_ms + len >= end &&
				    q->start_ms <= end && q->ms > max)
					max = q->ms;
			}
		}
		fclose(f);
	}
	return max;
}

/* ---------------------------------------------------------- life cycle */

static int teardown(void **state)
{
	struct big *b = *state;

	if (b == NULL)
		return 0;
	atomic_store(&b->stop, true);
	if (b->prober_on)
		pthread_join(b->prober, NULL);
	if (b->watcher_on)
		pthread_join(b->watcher, NULL);
	clerk_free(b->ck); /* before the context it uses */
	free(b->buf);
	harness_free(b->h);
	if (b->zctx)
		zmq_ctx_term(b->zctx);
	free(b);
	return 0;
}

static int leader_of(struct big *b, struct cproto_status *st)
{
	int l = harness_leader(b->h, 20000);

	assert_true(l >= 0);
	assert_int_equal(harness_status(b->h, l, st), 0);
	return l;
}

static void put_value(struct big *b, struct clerk *ck, unsigned i, uint8_t *buf)
{
	char key[32];
	int rv;

	snprintf(key, sizeof(key), "big/%05u", i);
	fill(b, i, buf, VALUE_BYTES);
	rv = clerk_put(ck, key, strlen(key), buf, VALUE_BYTES, 0, KV_F_ANYVER,
	    NULL, NULL);
	if (rv != KV_OK)
		fail_msg("put %s: %s", key, clerk_strerror(rv));
}

/* ---------------------------------------------------------------- test */

static void test_snapshot_big(void **state)
{
	struct harness_options ho;
	const char *bd = getenv("RAFTKV_BUILDDIR");
	char member_path[4096], lg[8];
	struct big *b = calloc(1, sizeof(*b));
	struct cproto_status st;
	struct clerk *ck;
	uint8_t *buf, *got;
	uint64_t t0, load_ms, catchup_ms, target, stall, snap_ms, restore_ms;
	uint64_t during;
	unsigned writes;
	uint64_t copy_ms, write_ms;
	int l, f, who, who2, who3;
	unsigned extra = 4;

	assert_non_null(b);
	*state = b;
	buf = b->buf = malloc(VALUE_BYTES);
	assert_non_null(buf);
	b->mib = state_mib();
	assert_true(b->mib >= 16);
	b->seed = harness_now_ms() * 0x2545f4914f6cdd1dull;
	b->zctx = zmq_ctx_new();
	assert_non_null(b->zctx);
	snprintf(member_path, sizeof(member_path), "%s/kv/raftkv-server",
	    bd && *bd ? bd : ".");
	harness_options_defaults(&ho);
	ho.name = "snapshot_big";
	ho.member_path = member_path;
	ho.max_raft_state = (int64_t)(b->mib - 8) * MIB;
	b->h = harness_new(3, &ho);
	assert_non_null(b->h);
	print_message("[snapshot_big] 3 members, %u MiB of 1 MiB values, "
	              "--max-raft-state %" PRId64 ", seed %" PRIu64 "\n",
	    b->mib, ho.max_raft_state, b->seed);

	l = leader_of(b, &st);
	b->term0 = b->max_term = st.term;
	b->leader0 = st.id;
	f = (l + 1) % 3;
	assert_int_equal(harness_isolate(b->h, f, true), 0);
	assert_int_equal(pthread_create(&b->watcher, NULL, watcher_main, b), 0);
	b->watcher_on = true;
	assert_int_equal(pthread_create(&b->prober, NULL, prober_main, b), 0);
	b->prober_on = true;

	/* Load. */
	ck = b->ck = new_clerk(b);
	assert_non_null(ck);
	t0 = harness_now_ms();
	for (unsigned i = 0; i < b->mib; i++)
		put_value(b, ck, i, buf);
	load_ms = harness_now_ms() - t0;

	/* The two connected members snapshot. */
	for (int i = 0; i < 3; i++) {
		uint64_t until = harness_now_ms() + SNAPSHOT_WAIT_MS;

		if (i == f)
			continue;
		while (
		    harness_status(b->h, i, &st) != 0 || st.snap_index == 0) {
			assert_true(harness_now_ms() < until);
			harness_sleep_ms(100);
		}
	}
	for (unsigned i = 0; i < extra; i++)
		put_value(b, ck, b->mib + i, buf);
	harness_sleep_ms(1000);

	/* The member that holds nothing catches up. */
	assert_int_equal(harness_status(b->h, l, &st), 0);
	target = st.commit;
	assert_int_equal(harness_status(b->h, f, &st), 0);
	assert_true(st.applied < 10); /* it really held nothing */
	t0 = harness_now_ms();
	assert_int_equal(harness_isolate(b->h, f, false), 0);
	for (;;) {
		assert_true(harness_now_ms() < t0 + CATCHUP_WAIT_MS);
		if (harness_status(b->h, f, &st) == 0 && st.applied >= target)
			break;
		harness_sleep_ms(20);
	}
	catchup_ms = harness_now_ms() - t0;
	assert_true(st.snap_index > 0); /* it came by InstallSnapshot */
	harness_sleep_ms(1000);

	atomic_store(&b->stop, true);
	pthread_join(b->prober, NULL);
	b->prober_on = false;
	pthread_join(b->watcher, NULL);
	b->watcher_on = false;

	/* The new member's state, value by value. */
	for (unsigned i = 0; i < b->mib + extra; i++) {
		char key[32];
		size_t len = 0;
		int rv;

		snprintf(key, sizeof(key), "big/%05u", i);
		got = NULL;
		rv = clerk_get_stale(ck, (uint32_t)f, key, strlen(key), NULL,
		    (void **)&got, &len);
		if (rv != KV_OK)
			fail_msg("member %d: get %s: %s", f, key,
			    clerk_strerror(rv));
		fill(b, i, buf, VALUE_BYTES);
		if (len != VALUE_BYTES || memcmp(got, buf, len) != 0)
			fail_msg("member %d: %s differs (%zu bytes)", f, key,
			    len);
		free(got);
	}
	assert_int_equal(harness_wait_converged(b->h, 30000), 0);

	stall = log_max(b, "loop stalled: one turn took ", &who);
	snap_ms = log_max(b, " bytes in ", &who2);
	restore_ms = log_max(b, " bytes) in ", &who3);
	copy_ms = log_max(b, "state copied in ", &who3);
	write_ms = log_max(b, " written in ", &who3);
	snprintf(lg, sizeof(lg), "%d", who);
	print_message("[snapshot_big] %u MiB: load %" PRIu64 " ms; longest "
	              "loop stall %" PRIu64 " ms (member %s); longest snapshot "
	              "%" PRIu64 " ms (applier held %" PRIu64
	              " ms, written in %" PRIu64
	              " ms); longest restore %" PRIu64
	              " ms; commit latency max %" PRIu64 " ms over %" PRIu64
	              " probes (%" PRIu64 " ErrMaybe, %" PRIu64
	              " failed); leader changes %" PRIu64 ", terms %" PRIu64
	              "..%" PRIu64
	              "; member %d caught up from nothing in %" PRIu64 " ms\n",
	    b->mib, load_ms, stall, who >= 0 ? lg : "-", snap_ms, copy_ms,
	    write_ms, restore_ms, b->probe_max_ms, b->probes, b->probe_maybe,
	    b->probe_fail, b->leader_changes, b->term0, b->max_term, f,
	    catchup_ms);
	during = probe_max_during_writes(b, &writes);
	print_message("[snapshot_big] commit latency max of a probe started "
	              "while a snapshot file was being written: %" PRIu64
	              " ms (%u writes)\n",
	    during, writes);
	if (b->leader_changes > 0)
		print_message("[snapshot_big] leader change: %s\n",
		    b->first_change);
	if (b->probe_first_err != 0)
		print_message("[snapshot_big] first failed probe: %s\n",
		    clerk_strerror(b->probe_first_err));

	assert_int_equal(b->leader_changes, 0);
	assert_int_equal(b->max_term, b->term0);
	assert_int_equal(b->probe_maybe, 0);
	assert_int_equal(b->probe_fail, 0);
	assert_int_equal(harness_unexpected_exits(b->h), 0);
	harness_mark_passed(b->h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_snapshot_big, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
