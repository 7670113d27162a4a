/*
 * test_keyspace.c - unit tests for the ordered key space (kv/keyspace.c).
 *
 * The B+tree is checked against a reference (a presence array over a
 * fixed universe of keys whose decimal spellings interleave: "12" < "120"
 * < "13") through long seeded runs of random inserts and removals, with
 * keyspace_check() verifying every structural invariant along the way;
 * seeks, ordered walks, sequential loading and allocation failures in the
 * middle of a split are tested on their own.
 *
 * Link with -Wl,--wrap=calloc: the failure tests make the Nth calloc fail
 * (they are skipped otherwise).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/keyspace.h"

/* ------------------------------------------------------------------------
 * Fixture: calloc failure injection (active with --wrap=calloc)
 * ------------------------------------------------------------------------ */

void *__real_calloc(size_t n, size_t size) __attribute__((weak));
void *__wrap_calloc(size_t n, size_t size);

static long calloc_fail_in = -1; /* calls until one fails; -1: never */
static unsigned calloc_failed;

void *__wrap_calloc(size_t n, size_t size)
{
	if (calloc_fail_in == 0) {
		calloc_fail_in = -1;
		calloc_failed++;
		return NULL;
	}
	if (calloc_fail_in > 0)
		calloc_fail_in--;
	return __real_calloc(n, size);
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

#define UNIVERSE 20000

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t key_of(unsigned i, char *buf)
{
	return (size_t)snprintf(buf, 16, "%u", i);
}

static struct kv_rec *rec_of(unsigned i)
{
	char k[16];
	size_t n = key_of(i, k);
	struct kv_rec *r = keyspace_rec_new(k, n, NULL);

	assert_non_null(r);
	r->ino->attr.inode = i; /* remember which key it is */
	return r;
}

static int cmp_keys(const void *a, const void *b)
{
	char ka[16], kb[16];
	size_t la = key_of(*(const unsigned *)a, ka);
	size_t lb = key_of(*(const unsigned *)b, kb);

	return keyspace_keycmp(ka, la, kb, lb);
}

/* The universe sorted by key spelling. */
static unsigned sorted[UNIVERSE];

static void sort_universe(void)
{
	for (unsigned i = 0; i < UNIVERSE; i++)
		sorted[i] = i;
	qsort(sorted, UNIVERSE, sizeof(sorted[0]), cmp_keys);
}

/* The tree holds exactly the present keys, in order. */
static void assert_matches(const struct keyspace *ks, const bool *present)
{
	struct keyspace_iter it;
	size_t n = 0;

	assert_int_equal(keyspace_check(ks), 0);
	keyspace_first(ks, &it);
	for (unsigned j = 0; j < UNIVERSE; j++) {
		struct kv_rec *r;

		if (!present[sorted[j]])
			continue;
		r = keyspace_iter_rec(&it);
		assert_non_null(r);
		assert_int_equal(r->ino->attr.inode, sorted[j]);
		keyspace_iter_next(&it);
		n++;
	}
	assert_null(keyspace_iter_rec(&it));
	assert_int_equal(keyspace_count(ks), n);
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void test_keyspace_empty(void **state)
{
	struct keyspace *ks = keyspace_new();
	struct keyspace_iter it;

	(void)state;
	assert_non_null(ks);
	assert_int_equal(keyspace_count(ks), 0);
	assert_null(keyspace_get(ks, "a", 1));
	assert_null(keyspace_remove(ks, "a", 1));
	keyspace_first(ks, &it);
	assert_null(keyspace_iter_rec(&it));
	keyspace_seek(ks, "a", 1, &it);
	assert_null(keyspace_iter_rec(&it));
	assert_int_equal(keyspace_check(ks), 0);
	keyspace_free(ks);
	keyspace_free(NULL);
}

static void test_keyspace_insert_get_remove(void **state)
{
	struct keyspace *ks = keyspace_new();
	struct kv_rec *r = rec_of(42), *dup = rec_of(42);

	(void)state;
	assert_int_equal(keyspace_insert(ks, r), 0);
	assert_ptr_equal(keyspace_get(ks, "42", 2), r);
	assert_null(keyspace_get(ks, "4", 1));
	assert_null(keyspace_get(ks, "420", 3));
	assert_int_equal(keyspace_insert(ks, dup), -EEXIST);
	assert_int_equal(keyspace_count(ks), 1);
	assert_ptr_equal(keyspace_remove(ks, "42", 2), r);
	assert_int_equal(keyspace_count(ks), 0);
	assert_int_equal(keyspace_check(ks), 0);
	keyspace_rec_free(r);
	keyspace_rec_free(dup);
	keyspace_free(ks);
}

static void test_keyspace_keycmp_orders_bytes_then_length(void **state)
{
	(void)state;
	assert_true(keyspace_keycmp("a", 1, "b", 1) < 0);
	assert_true(keyspace_keycmp("a", 1, "ab", 2) < 0);
	assert_true(keyspace_keycmp("ab", 2, "a", 1) > 0);
	assert_true(keyspace_keycmp("\xff", 1, "a", 1) > 0); /* unsigned */
	assert_int_equal(keyspace_keycmp("ab", 2, "ab", 2), 0);
	assert_true(keyspace_keycmp("", 0, "a", 1) < 0);
}

static void run_random(uint64_t seed, long ops, unsigned check_every)
{
	static bool present[UNIVERSE];
	struct keyspace *ks = keyspace_new();

	rng_state = seed;
	memset(present, 0, sizeof(present));
	for (long op = 0; op < ops; op++) {
		unsigned i = (unsigned)(rnd() % UNIVERSE);
		/* Phases: grow to ~90%, shrink to ~10%, repeat. */
		bool grow = (op / (ops / 6)) % 2 == 0;
		bool insert = rnd() % 100 < (grow ? 80u : 20u);
		char k[16];
		size_t n = key_of(i, k);

		if (insert) {
			struct kv_rec *r = rec_of(i);
			int rc = keyspace_insert(ks, r);

			assert_int_equal(rc, present[i] ? -EEXIST : 0);
			if (rc != 0)
				keyspace_rec_free(r);
			present[i] = true;
		} else {
			struct kv_rec *r = keyspace_remove(ks, k, n);

			assert_true((r != NULL) == present[i]);
			if (r != NULL)
				assert_int_equal(r->ino->attr.inode, i);
			keyspace_rec_free(r);
			present[i] = false;
		}
		if (op % check_every == 0)
			assert_matches(ks, present);
	}
	assert_matches(ks, present);
	keyspace_free(ks);
}

static void test_keyspace_random_ops_match_reference(void **state)
{
	(void)state;
	run_random(0x5eed0001, getenv("RAFTKV_LONG") ? 3000000 : 300000, 20000);
	run_random(0x5eed0002, 60000, 997);
}

static void test_keyspace_get_finds_every_key(void **state)
{
	struct keyspace *ks = keyspace_new();
	char k[16];

	(void)state;
	rng_state = 99;
	for (unsigned i = 0; i < UNIVERSE; i += 2)
		assert_int_equal(keyspace_insert(ks, rec_of(i)), 0);
	for (unsigned i = 0; i < UNIVERSE; i++) {
		size_t n = key_of(i, k);
		struct kv_rec *r = keyspace_get(ks, k, n);

		if (i % 2 == 0) {
			assert_non_null(r);
			assert_int_equal(r->ino->attr.inode, i);
		} else {
			assert_null(r);
		}
	}
	keyspace_free(ks);
}

static void test_keyspace_seek_positions(void **state)
{
	struct keyspace *ks = keyspace_new();
	struct keyspace_iter it;

	(void)state;
	for (unsigned i = 10; i < 5000; i += 10)
		assert_int_equal(keyspace_insert(ks, rec_of(i)), 0);
	/* Exact hit. */
	keyspace_seek(ks, "20", 2, &it);
	assert_int_equal(keyspace_iter_rec(&it)->ino->attr.inode, 20);
	/* Between keys: the next multiple of 10 after "2005" in byte order. */
	keyspace_seek(ks, "2005", 4, &it);
	assert_int_equal(keyspace_iter_rec(&it)->ino->attr.inode, 2010);
	/* Before everything. */
	keyspace_seek(ks, "", 0, &it);
	assert_int_equal(keyspace_iter_rec(&it)->ino->attr.inode, 10);
	keyspace_seek(ks, "0", 1, &it);
	assert_int_equal(keyspace_iter_rec(&it)->ino->attr.inode, 10);
	/* After everything. */
	keyspace_seek(ks, "999", 3, &it);
	assert_null(keyspace_iter_rec(&it));
	keyspace_seek(ks, "99", 2, &it);
	assert_int_equal(keyspace_iter_rec(&it)->ino->attr.inode, 990);
	/* Walking off the end stays at the end. */
	keyspace_seek(ks, "990", 3, &it);
	keyspace_iter_next(&it);
	assert_null(keyspace_iter_rec(&it));
	keyspace_iter_next(&it);
	assert_null(keyspace_iter_rec(&it));
	keyspace_free(ks);
}

static void test_keyspace_sequential_load_fills_leaves(void **state)
{
	struct keyspace *ks = keyspace_new();
	char k[32];

	(void)state;
	for (unsigned i = 0; i < 100000; i++) {
		int n = snprintf(k, sizeof(k), "key%08u", i);

		assert_int_equal(keyspace_insert(ks,
		                     keyspace_rec_new(k, (size_t)n, NULL)),
		    0);
	}
	assert_int_equal(keyspace_check(ks), 0);
	/* 3/4-full leaves of 64 pointers and 64 slices: about 23 bytes of
	 * nodes per key (half-full ones would take 32). */
	print_message("node bytes per key after a sequential load: %.1f\n",
	    (double)keyspace_node_bytes(ks) / 100000);
	assert_true(keyspace_node_bytes(ks) < 100000 * 25);
	keyspace_free(ks);
}

static void test_keyspace_remove_everything(void **state)
{
	static unsigned order[UNIVERSE];
	struct keyspace *ks = keyspace_new();
	char k[16];

	(void)state;
	rng_state = 7;
	for (unsigned i = 0; i < UNIVERSE; i++) {
		order[i] = i;
		assert_int_equal(keyspace_insert(ks, rec_of(i)), 0);
	}
	for (unsigned i = UNIVERSE - 1; i > 0; i--) {
		unsigned j = (unsigned)(rnd() % (i + 1)), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned i = 0; i < UNIVERSE; i++) {
		size_t n = key_of(order[i], k);

		keyspace_rec_free(keyspace_remove(ks, k, n));
		if (i % 1000 == 0)
			assert_int_equal(keyspace_check(ks), 0);
	}
	assert_int_equal(keyspace_count(ks), 0);
	assert_int_equal(keyspace_check(ks), 0);
	assert_int_equal(keyspace_node_bytes(ks), 0);
	keyspace_free(ks);
}

/* Ascending removal from the left edge makes the leftmost nodes borrow
 * from their right siblings (child index 0) at every level; descending
 * removal exercises the left-sibling paths. */
static void test_keyspace_remove_from_both_edges(void **state)
{
	struct keyspace *ks = keyspace_new();
	const unsigned n = 200000;
	char k[32];

	(void)state;
	for (unsigned i = 0; i < n; i++) {
		int len = snprintf(k, sizeof(k), "key%08u", i);

		assert_int_equal(keyspace_insert(ks,
		                     keyspace_rec_new(k, (size_t)len, NULL)),
		    0);
	}
	for (unsigned i = 0; i < n / 2; i++) {
		int len = snprintf(k, sizeof(k), "key%08u", i);

		keyspace_rec_free(keyspace_remove(ks, k, (size_t)len));
		if (i % 4999 == 0)
			assert_int_equal(keyspace_check(ks), 0);
	}
	for (unsigned i = n; i-- > n / 2;) {
		int len = snprintf(k, sizeof(k), "key%08u", i);

		keyspace_rec_free(keyspace_remove(ks, k, (size_t)len));
		if (i % 4999 == 0)
			assert_int_equal(keyspace_check(ks), 0);
	}
	assert_int_equal(keyspace_count(ks), 0);
	assert_int_equal(keyspace_check(ks), 0);
	keyspace_free(ks);
}

static void test_keyspace_insert_enomem_changes_nothing(void **state)
{
	static bool present[UNIVERSE];
	struct keyspace *ks;
	unsigned multi = 0;

	(void)state;
	if (__real_calloc == NULL)
		skip(); /* not linked with -Wl,--wrap=calloc */
	ks = keyspace_new();
	memset(present, 0, sizeof(present));
	rng_state = 12345;
	for (unsigned n = 0; n < UNIVERSE; n++) {
		unsigned i = (unsigned)(rnd() % UNIVERSE);
		struct kv_rec *r;
		int rc;

		if (present[i])
			continue;
		r = rec_of(i);
		for (long fail = 0;; fail++) {
			calloc_fail_in = fail;
			calloc_failed = 0;
			rc = keyspace_insert(ks, r);
			calloc_fail_in = -1;
			if (rc == 0)
				break;
			assert_int_equal(rc, -ENOMEM);
			assert_int_equal(calloc_failed, 1);
			if (fail > 0)
				multi++; /* a split needing 2+ nodes failed late */
			if (n % 500 == 0 || fail > 0)
				assert_matches(ks, present);
		}
		present[i] = true;
	}
	assert_matches(ks, present);
	print_message("inserts failed after their first allocation: %u\n",
	    multi);
	assert_true(multi > 0);
	keyspace_free(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyspace_empty),
		cmocka_unit_test(test_keyspace_insert_get_remove),
		cmocka_unit_test(test_keyspace_keycmp_orders_bytes_then_length),
		cmocka_unit_test(test_keyspace_random_ops_match_reference),
		cmocka_unit_test(test_keyspace_get_finds_every_key),
		cmocka_unit_test(test_keyspace_seek_positions),
		cmocka_unit_test(test_keyspace_sequential_load_fills_leaves),
		cmocka_unit_test(test_keyspace_remove_everything),
		cmocka_unit_test(test_keyspace_remove_from_both_edges),
		cmocka_unit_test(test_keyspace_insert_enomem_changes_nothing),
	};

	sort_universe();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
