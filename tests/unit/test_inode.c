/*
 * test_inode.c - unit tests for the mount's inode table (fs/inode.c):
 * node id -> key, the root, lookup counts and forget, renames and
 * deletions applied from the log (including a rename over a known inode
 * and a key re-used by another inode), dead inodes, growth past the
 * initial buckets, and a seeded run against a plain reference array.
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

#include "fs/inode.h"

static int key_of(struct inode_table *t, uint64_t ino, char *out)
{
	const char *k;
	size_t len;
	int rv;

	inode_lock(t);
	rv = inode_key_locked(t, ino, &k, &len);
	if (rv == 0) {
		memcpy(out, k, len);
		out[len] = '\0';
	}
	inode_unlock(t);
	return rv;
}

static void ref(struct inode_table *t, uint64_t ino, const char *key)
{
	inode_lock(t);
	assert_int_equal(inode_ref_locked(t, ino, key, key ? strlen(key) : 0),
	    0);
	inode_unlock(t);
}

static uint64_t at(struct inode_table *t, const char *key)
{
	uint64_t ino;

	inode_lock(t);
	ino = inode_at_locked(t, key, strlen(key));
	inode_unlock(t);
	return ino;
}

static void test_inode_root_and_lookup(void **state)
{
	struct inode_table *t = inode_table_new();
	char k[64];

	(void)state;
	assert_non_null(t);
	assert_int_equal(key_of(t, 1, k), 0);
	assert_string_equal(k, "");
	assert_int_equal(at(t, ""), 1);
	assert_int_equal(key_of(t, 7, k), -ESTALE);
	ref(t, 7, "/a");
	assert_int_equal(key_of(t, 7, k), 0);
	assert_string_equal(k, "/a");
	assert_int_equal(at(t, "/a"), 7);
	assert_int_equal(at(t, "/b"), 0);
	assert_int_equal(inode_count(t), 1);
	/* Two lookups, forgotten one by one. */
	ref(t, 7, "/a");
	inode_forget(t, 7, 1);
	assert_int_equal(key_of(t, 7, k), 0);
	inode_forget(t, 7, 1);
	assert_int_equal(key_of(t, 7, k), -ESTALE);
	assert_int_equal(at(t, "/a"), 0);
	assert_int_equal(inode_count(t), 0);
	/* Forgetting the root or an unknown inode does nothing. */
	inode_forget(t, 1, 5);
	inode_forget(t, 99, 5);
	inode_table_free(t);
}

static void test_inode_applied_rename_and_delete(void **state)
{
	struct inode_table *t = inode_table_new();
	uint64_t died = 99;
	char k[64];

	(void)state;
	ref(t, 10, "/d");
	ref(t, 11, "/d/f");
	ref(t, 12, "/g");
	/* Rename of a known key moves its inode. */
	inode_lock(t);
	assert_int_equal(inode_applied_rename(t, "/d/f", 4, "/d/h", 4, &died),
	    0);
	inode_unlock(t);
	assert_int_equal(died, 0);
	assert_int_equal(key_of(t, 11, k), 0);
	assert_string_equal(k, "/d/h");
	assert_int_equal(at(t, "/d/f"), 0);
	/* Rename over a known key: the replaced inode is dead. */
	inode_lock(t);
	assert_int_equal(inode_applied_rename(t, "/g", 2, "/d/h", 4, &died), 0);
	inode_unlock(t);
	assert_int_equal(died, 11); /* the hook may move it to another name */
	assert_int_equal(key_of(t, 12, k), 0);
	assert_string_equal(k, "/d/h");
	assert_int_equal(key_of(t, 11, k), -ENOENT);
	/* Rename of an unknown key over a known one kills the known one. */
	inode_lock(t);
	assert_int_equal(inode_applied_rename(t, "/zz", 3, "/d/h", 4, &died),
	    0);
	inode_unlock(t);
	assert_int_equal(died, 12);
	assert_int_equal(key_of(t, 12, k), -ENOENT);
	/* Delete. */
	inode_lock(t);
	assert_int_equal(inode_applied_delete(t, "/d", 2), 10);
	assert_int_equal(inode_applied_delete(t, "/nothing", 8), 0);
	inode_unlock(t);
	assert_int_equal(key_of(t, 10, k), -ENOENT);
	/* A dead inode moved to another of its names (a hard link). */
	inode_lock(t);
	assert_int_equal(inode_set_key_locked(t, 10, "/link", 5), 0);
	inode_unlock(t);
	assert_int_equal(key_of(t, 10, k), 0);
	assert_string_equal(k, "/link");
	assert_int_equal(at(t, "/link"), 10);
	inode_lock(t);
	assert_int_equal(inode_applied_delete(t, "/link", 5), 10);
	inode_unlock(t);
	assert_int_equal(key_of(t, 10, k), -ENOENT);
	/* A new inode at a dead inode's old key; the dead one stays dead. */
	ref(t, 13, "/d");
	assert_int_equal(at(t, "/d"), 13);
	assert_int_equal(key_of(t, 10, k), -ENOENT);
	/* Looking a dead inode up again at a key revives it there (and the
	 * inode that was there is dead: one key, one inode). */
	ref(t, 10, "/d");
	assert_int_equal(key_of(t, 10, k), 0);
	assert_int_equal(key_of(t, 13, k), -ENOENT);
	/* Dead refs. */
	ref(t, 14, NULL);
	assert_int_equal(key_of(t, 14, k), -ENOENT);
	inode_table_free(t);
}

static void test_inode_applied_rename_tree(void **state)
{
	struct inode_table *t = inode_table_new();
	uint64_t died = 99;
	char k[64];

	(void)state;
	ref(t, 30, "/a");
	ref(t, 31, "/a/x");
	ref(t, 32, "/a/b/y");
	ref(t, 33, "/ab"); /* shares the prefix, not below */
	ref(t, 34, "/c/x"); /* replaced by the move */
	ref(t, 35, "/c/z"); /* stays */
	inode_lock(t);
	assert_int_equal(inode_applied_rename_tree(t, "/a", 2, "/c", 2, &died),
	    0);
	assert_int_equal(died, 0);
	inode_unlock(t);
	assert_int_equal(key_of(t, 30, k), 0);
	assert_string_equal(k, "/c");
	assert_int_equal(key_of(t, 31, k), 0);
	assert_string_equal(k, "/c/x");
	assert_int_equal(key_of(t, 32, k), 0);
	assert_string_equal(k, "/c/b/y");
	assert_int_equal(key_of(t, 33, k), 0);
	assert_string_equal(k, "/ab");
	assert_int_equal(key_of(t, 34, k), -ENOENT);
	assert_int_equal(key_of(t, 35, k), 0);
	assert_string_equal(k, "/c/z");
	assert_int_equal(at(t, "/c/x"), 31);
	assert_int_equal(at(t, "/a/x"), 0);
	/* Moving to a longer and to a shorter name. */
	inode_lock(t);
	assert_int_equal(inode_applied_rename_tree(t, "/c/b", 4,
	                     "/deeper/and/longer", 18, &died),
	    0);
	assert_int_equal(inode_applied_rename_tree(t, "/deeper/and/longer", 18,
	                     "/s", 2, &died),
	    0);
	inode_unlock(t);
	assert_int_equal(key_of(t, 32, k), 0);
	assert_string_equal(k, "/s/y");
	inode_table_free(t);
}

static void kill_cb(void *arg, uint64_t ino)
{
	inode_set_key_locked(arg, ino, NULL, 0);
}

static void test_inode_each_and_set_key(void **state)
{
	struct inode_table *t = inode_table_new();
	char k[64];

	(void)state;
	ref(t, 20, "/x");
	ref(t, 21, "/y");
	inode_lock(t);
	inode_each_locked(t, kill_cb, t);
	assert_int_equal(inode_set_key_locked(t, 21, "/z", 2), 0);
	assert_int_equal(inode_set_key_locked(t, 99, "/q", 2), -ESTALE);
	inode_unlock(t);
	assert_int_equal(key_of(t, 20, k), -ENOENT);
	assert_int_equal(key_of(t, 21, k), 0);
	assert_string_equal(k, "/z");
	inode_table_free(t);
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define REF_N 1000

/* The reference: per inode, its lookup count and key ("" = dead). */
struct refent {
	uint64_t nlookup;
	char key[32];
};

static void test_inode_random_against_reference(void **state)
{
	static struct refent r[REF_N];
	struct inode_table *t = inode_table_new();
	char k[64], key[32], key2[32];

	(void)state;
	memset(r, 0, sizeof(r));
	for (int step = 0; step < 60000; step++) {
		uint64_t ino = 2 + rnd() % (REF_N - 2);
		int op = (int)(rnd() % 4);

		snprintf(key, sizeof(key), "/k%u", (unsigned)(rnd() % 1500));
		snprintf(key2, sizeof(key2), "/k%u", (unsigned)(rnd() % 1500));
		if (op == 0) {
			ref(t, ino, key);
			for (int i = 0; i < REF_N; i++)
				if (r[i].nlookup && !strcmp(r[i].key, key))
					r[i].key[0] = '\0';
			r[ino].nlookup++;
			strcpy(r[ino].key, key);
		} else if (op == 1) {
			uint64_t n = 1 + rnd() % 2;

			inode_forget(t, ino, n);
			r[ino].nlookup = n >= r[ino].nlookup
			    ? 0
			    : r[ino].nlookup - n;
			if (r[ino].nlookup == 0)
				r[ino].key[0] = '\0';
		} else if (op == 2) {
			inode_lock(t);
			inode_applied_delete(t, key, strlen(key));
			inode_unlock(t);
			for (int i = 0; i < REF_N; i++)
				if (r[i].nlookup && !strcmp(r[i].key, key))
					r[i].key[0] = '\0';
		} else {
			int src = -1;
			uint64_t died;

			if (!strcmp(key, key2))
				continue;
			inode_lock(t);
			assert_int_equal(inode_applied_rename(t, key,
			                     strlen(key), key2, strlen(key2),
			                     &died),
			    0);
			inode_unlock(t);
			for (int i = 0; i < REF_N; i++) {
				if (!r[i].nlookup)
					continue;
				if (!strcmp(r[i].key, key2))
					r[i].key[0] = '\0';
				if (!strcmp(r[i].key, key))
					src = i;
			}
			if (src >= 0)
				strcpy(r[src].key, key2);
		}
		if (step % 1000 == 0 || step > 59900) {
			size_t live = 0;

			for (int i = 2; i < REF_N; i++) {
				int rv = key_of(t, (uint64_t)i, k);

				if (!r[i].nlookup) {
					assert_int_equal(rv, -ESTALE);
					continue;
				}
				live++;
				if (r[i].key[0] == '\0') {
					assert_int_equal(rv, -ENOENT);
				} else {
					assert_int_equal(rv, 0);
					assert_string_equal(k, r[i].key);
					assert_int_equal(at(t, k), i);
				}
			}
			assert_int_equal(inode_count(t), live);
		}
	}
	inode_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inode_root_and_lookup),
		cmocka_unit_test(test_inode_applied_rename_and_delete),
		cmocka_unit_test(test_inode_applied_rename_tree),
		cmocka_unit_test(test_inode_each_and_set_key),
		cmocka_unit_test(test_inode_random_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
