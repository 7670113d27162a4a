/*
 * test_session.c - unit tests for the at-most-once table (kv/session.c).
 *
 * Verdicts (new, duplicate, stale, unknown), the compact stored result,
 * eviction by committed time and by capacity in least-recently-used order,
 * the snapshot walk and rebuild with its validation, the memory per
 * session, and a seeded churn run comparing the table (hash with backward-
 * shift deletion, LRU list, free slots) against a plain reference list.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/session.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t reg(struct session_table *st, int64_t now)
{
	uint64_t id = 0;

	assert_int_equal(session_register(st, now, &id), 0);
	return id;
}

static struct kv_result ok_result(uint64_t version, uint64_t inode)
{
	struct kv_result r;

	kv_result_init(&r);
	r.attr.version = version;
	r.attr.inode = inode;
	r.attr.size = 1234; /* not stored */
	return r;
}

static enum session_verdict check(const struct session_table *st,
    uint64_t client, uint64_t seq, int64_t now)
{
	struct kv_result dup;

	return session_check(st, client, seq, now, &dup);
}

/* Sessions in LRU order, as client ids. */
static size_t walk(const struct session_table *st, uint64_t *ids, size_t max)
{
	struct session_info si;
	size_t n = 0;

	for (uint32_t it = session_oldest(st); it != SESSION_END;
	     it = session_newer(st, it)) {
		session_get(st, it, &si);
		assert_true(n < max);
		ids[n++] = si.client;
	}
	return n;
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void test_session_register_assigns_increasing_ids(void **state)
{
	struct session_table *st = session_table_new(10, 1000);

	(void)state;
	assert_int_equal(session_next_id(st), 1);
	assert_int_equal(reg(st, 0), 1);
	assert_int_equal(reg(st, 0), 2);
	assert_int_equal(reg(st, 5), 3);
	assert_int_equal(session_count(st), 3);
	assert_int_equal(session_next_id(st), 4);
	session_table_free(st);
	session_table_free(NULL);
}

static void test_session_verdicts(void **state)
{
	struct session_table *st = session_table_new(10, 1000);
	struct kv_result r = ok_result(7, 42);
	uint64_t a = reg(st, 0);

	(void)state;
	assert_int_equal(check(st, a, 1, 1), SESSION_NEW);
	assert_int_equal(check(st, a, 0, 1), SESSION_STALE); /* seq 0: never */
	session_record(st, a, 1, 1, &r);
	assert_int_equal(check(st, a, 1, 2), SESSION_DUP);
	assert_int_equal(check(st, a, 2, 2), SESSION_NEW);
	assert_int_equal(check(st, a, 5, 2), SESSION_NEW); /* gaps allowed */
	session_record(st, a, 5, 2, &r);
	assert_int_equal(check(st, a, 1, 3), SESSION_STALE);
	assert_int_equal(check(st, a, 4, 3), SESSION_STALE);
	assert_int_equal(check(st, a, 5, 3), SESSION_DUP);
	assert_int_equal(check(st, 99, 1, 3), SESSION_UNKNOWN);
	assert_int_equal(check(st, 0, 1, 3), SESSION_UNKNOWN);
	session_table_free(st);
}

static void test_session_dup_returns_compact_result(void **state)
{
	struct session_table *st = session_table_new(10, 1000);
	struct kv_result r, dup;
	uint64_t a = reg(st, 0), b = reg(st, 0);

	(void)state;
	kv_result_init(&r);
	r.status = KV_ENOKEY;
	r.fail_op = 3;
	r.attr.version = 9;
	r.attr.inode = 77;
	session_record(st, a, 1, 0, &r);
	assert_int_equal(session_check(st, a, 1, 0, &dup), SESSION_DUP);
	assert_int_equal(dup.status, KV_ENOKEY);
	assert_int_equal(dup.flags, KV_RES_DUP);
	assert_int_equal(dup.fail_op, 3);
	assert_int_equal(dup.fail_cmp, KV_NO_INDEX);
	assert_int_equal(dup.attr.version, 9);
	assert_int_equal(dup.attr.inode, 77);
	assert_int_equal(dup.attr.size, 0); /* not stored */
	assert_null(dup.value);

	kv_result_init(&r);
	r.status = KV_EVERSION;
	r.fail_cmp = 1023;
	session_record(st, b, 1, 0, &r);
	assert_int_equal(session_check(st, b, 1, 0, &dup), SESSION_DUP);
	assert_int_equal(dup.status, KV_EVERSION);
	assert_int_equal(dup.fail_cmp, 1023);
	assert_int_equal(dup.fail_op, KV_NO_INDEX);
	session_table_free(st);
}

static void test_session_expires_after_ttl_of_committed_time(void **state)
{
	struct session_table *st = session_table_new(10, 100);
	struct kv_result r = ok_result(1, 2);
	uint64_t a = reg(st, 0), b = reg(st, 50);

	(void)state;
	session_expire(st, 100); /* idle exactly the TTL: kept */
	assert_int_equal(session_count(st), 2);
	/* Past the TTL, a session is unknown even before it is evicted. */
	assert_int_equal(check(st, a, 1, 101), SESSION_UNKNOWN);
	assert_int_equal(check(st, b, 1, 101), SESSION_NEW);
	session_expire(st, 101);
	assert_int_equal(session_count(st), 1);
	assert_int_equal(check(st, a, 1, 101), SESSION_UNKNOWN);
	/* Activity keeps a session alive. */
	session_record(st, b, 1, 140, &r);
	session_expire(st, 200);
	assert_int_equal(session_count(st), 1);
	session_touch(st, b, 230);
	session_expire(st, 330);
	assert_int_equal(session_count(st), 1);
	session_expire(st, 331);
	assert_int_equal(session_count(st), 0);
	/* Ids are never reused. */
	assert_int_equal(reg(st, 400), 3);
	session_table_free(st);
}

static void test_session_capacity_evicts_least_recently_used(void **state)
{
	struct session_table *st = session_table_new(3, 1000000);
	struct kv_result r = ok_result(1, 2);
	uint64_t ids[8];
	uint64_t a = reg(st, 0), b = reg(st, 0), c = reg(st, 0), d;

	(void)state;
	session_record(st, a, 1, 1, &r); /* a becomes the most recent */
	d = reg(st, 2); /* full: evicts b */
	assert_int_equal(check(st, b, 1, 2), SESSION_UNKNOWN);
	assert_int_equal(check(st, a, 2, 2), SESSION_NEW);
	assert_int_equal(check(st, c, 1, 2), SESSION_NEW);
	assert_int_equal(check(st, d, 1, 2), SESSION_NEW);
	assert_int_equal(walk(st, ids, 8), 3);
	assert_int_equal(ids[0], c);
	assert_int_equal(ids[1], a);
	assert_int_equal(ids[2], d);
	session_touch(st, c, 3);
	reg(st, 3); /* evicts a */
	assert_int_equal(check(st, a, 2, 3), SESSION_UNKNOWN);
	assert_int_equal(session_count(st), 3);
	session_table_free(st);
}

static void test_session_walk_and_restore_round_trip(void **state)
{
	struct session_table *st = session_table_new(100, 1000), *copy;
	uint64_t ids[100], ids2[100];
	struct session_info si, si2;
	size_t n;

	(void)state;
	for (int i = 0; i < 50; i++)
		reg(st, i);
	for (int i = 0; i < 50; i += 3) {
		struct kv_result r = ok_result((uint64_t)i, (uint64_t)i * 10);

		if (i % 2)
			r.fail_op = (uint32_t)i;
		session_record(st, (uint64_t)i + 1, (uint64_t)i + 1, 60 + i,
		    &r);
	}
	copy = session_table_new(100, 1000);
	session_set_next_id(copy, session_next_id(st));
	for (uint32_t it = session_oldest(st); it != SESSION_END;
	     it = session_newer(st, it)) {
		session_get(st, it, &si);
		assert_int_equal(session_restore(copy, &si), 0);
	}
	session_trim(copy);
	n = walk(st, ids, 100);
	assert_int_equal(walk(copy, ids2, 100), n);
	assert_memory_equal(ids, ids2, n * sizeof(ids[0]));
	for (uint32_t i = session_oldest(st), j = session_oldest(copy);
	     i != SESSION_END;
	     i = session_newer(st, i), j = session_newer(copy, j)) {
		session_get(st, i, &si);
		session_get(copy, j, &si2);
		assert_int_equal(si.client, si2.client);
		assert_int_equal(si.seq, si2.seq);
		assert_int_equal(si.time_ns, si2.time_ns);
		assert_int_equal(si.status, si2.status);
		assert_int_equal(si.fail_cmp, si2.fail_cmp);
		assert_int_equal(si.fail_op, si2.fail_op);
		assert_int_equal(si.version, si2.version);
		assert_int_equal(si.inode, si2.inode);
	}
	assert_int_equal(session_next_id(copy), 51);
	assert_int_equal(reg(copy, 200), 51);
	session_table_free(st);
	session_table_free(copy);
}

static void test_session_restore_rejects_inconsistent(void **state)
{
	struct session_table *st = session_table_new(10, 1000);
	struct session_info ok = { .client = 3,
		.seq = 1,
		.time_ns = 10,
		.fail_cmp = KV_NO_INDEX,
		.fail_op = KV_NO_INDEX };
	struct session_info bad;

	(void)state;
	session_set_next_id(st, 10);
	assert_int_equal(session_restore(st, &ok), 0);
	bad = ok;
	bad.client = 4;
	bad.time_ns = 9; /* older than the previous one */
	assert_int_equal(session_restore(st, &bad), -EBADMSG);
	bad = ok; /* duplicate id */
	assert_int_equal(session_restore(st, &bad), -EBADMSG);
	bad = ok;
	bad.client = 0;
	assert_int_equal(session_restore(st, &bad), -EBADMSG);
	bad.client = 10; /* not below the next id */
	assert_int_equal(session_restore(st, &bad), -EBADMSG);
	bad.client = 5;
	bad.status = KV_STATUS_COUNT;
	assert_int_equal(session_restore(st, &bad), -EBADMSG);
	bad.status = KV_OK;
	bad.fail_cmp = 1;
	bad.fail_op = 1;
	assert_int_equal(session_restore(st, &bad), -EBADMSG);
	bad.fail_op = KV_NO_INDEX;
	bad.fail_cmp = KV_TXN_MAX;
	assert_int_equal(session_restore(st, &bad), -EBADMSG);
	bad.fail_cmp = 1;
	assert_int_equal(session_restore(st, &bad), 0);
	assert_int_equal(session_count(st), 2);
	session_table_free(st);
}

static void test_session_trim_after_restore_over_capacity(void **state)
{
	struct session_table *st = session_table_new(2, 1000);
	struct session_info si = { .fail_cmp = KV_NO_INDEX,
		.fail_op = KV_NO_INDEX };
	uint64_t ids[4];

	(void)state;
	session_set_next_id(st, 100);
	for (uint64_t c = 1; c <= 4; c++) {
		si.client = c;
		assert_int_equal(session_restore(st, &si), 0);
	}
	assert_int_equal(session_count(st), 4);
	session_trim(st);
	assert_int_equal(walk(st, ids, 4), 2);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 4);
	session_table_free(st);
}

static void test_session_memory_per_session(void **state)
{
	struct session_table *st = session_table_new(100000, INT64_MAX);
	size_t before = session_memory(st);
	double per;

	(void)state;
	for (int i = 0; i < 100000; i++)
		reg(st, i);
	per = (double)(session_memory(st) - before) / 100000;
	print_message("session table: %.1f bytes per session at 100k\n", per);
	assert_true(per <= 72.0);
	/* Churn through a full table: memory stays where it is. */
	before = session_memory(st);
	for (int i = 0; i < 300000; i++)
		reg(st, 100000 + i);
	assert_int_equal(session_memory(st), before);
	assert_int_equal(session_count(st), 100000);
	session_table_free(st);
}

/* The table against a reference LRU list under seeded random churn. */
static void test_session_churn_matches_reference(void **state)
{
	enum { MAX = 257, STEPS = 200000 };
	static uint64_t ref[MAX], ids[MAX];
	static bool alive[STEPS + 2];
	struct session_table *st = session_table_new(MAX, INT64_MAX);
	uint64_t next = 1;
	size_t n = 0;

	(void)state;
	rng_state = 0xc0ffee;
	for (int step = 0; step < STEPS; step++) {
		if (n == 0 || rnd() % 3 == 0) {
			if (n == MAX) { /* the oldest goes */
				alive[ref[0]] = false;
				memmove(ref, ref + 1, (n - 1) * sizeof(ref[0]));
				n--;
			}
			assert_int_equal(reg(st, step), next);
			alive[next] = true;
			ref[n++] = next++;
		} else {
			size_t i = (size_t)(rnd() % n);
			uint64_t c = ref[i];

			session_touch(st, c, step);
			memmove(ref + i, ref + i + 1,
			    (n - i - 1) * sizeof(ref[0]));
			ref[n - 1] = c;
		}
		if (step % 1009 == 0) {
			assert_int_equal(walk(st, ids, MAX), n);
			assert_memory_equal(ids, ref, n * sizeof(ref[0]));
			for (size_t i = 0; i < n; i++)
				assert_int_equal(check(st, ref[i], 1, step),
				    SESSION_NEW);
			/* Evicted ids are unknown. */
			for (int k = 0; k < 20; k++) {
				uint64_t c = 1 + rnd() % (next - 1);

				assert_int_equal(check(st, c, 1, step),
				    alive[c] ? SESSION_NEW : SESSION_UNKNOWN);
			}
		}
	}
	session_table_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_register_assigns_increasing_ids),
		cmocka_unit_test(test_session_verdicts),
		cmocka_unit_test(test_session_dup_returns_compact_result),
		cmocka_unit_test(
		    test_session_expires_after_ttl_of_committed_time),
		cmocka_unit_test(
		    test_session_capacity_evicts_least_recently_used),
		cmocka_unit_test(test_session_walk_and_restore_round_trip),
		cmocka_unit_test(test_session_restore_rejects_inconsistent),
		cmocka_unit_test(test_session_trim_after_restore_over_capacity),
		cmocka_unit_test(test_session_memory_per_session),
		cmocka_unit_test(test_session_churn_matches_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
