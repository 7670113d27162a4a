/*
 * test_wbuf.c - unit tests for the mount's write buffers (fs/wbuf.c):
 * sequential writes coalesce into one commit, a gap or an overlap commits
 * first, the bound is kept, a write over the bound goes straight through,
 * descriptors of one inode share its buffer, flush and release commit,
 * a failed commit is reported once and drops the extent, bytes of a lost
 * lock never commit (epochs), and a seeded run
 * against a plain byte array.
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

#include "fs/wbuf.h"

#define FILE_MAX 65536

struct sink {
	unsigned commits;
	uint64_t last_ino, last_off;
	size_t last_len;
	int fail_next; /* errno to fail the next commit with */
	uint64_t lost_below; /* epochs below it: lost (WBUF_LOST) */
	unsigned char file[FILE_MAX]; /* what was committed (inode 7) */
	size_t size;
};

static int commit(void *arg, uint64_t ino, uint64_t epoch, uint64_t off,
    const void *data, size_t len)
{
	struct sink *s = arg;

	if (epoch < s->lost_below)
		return WBUF_LOST;
	if (s->fail_next) {
		int e = s->fail_next;

		s->fail_next = 0;
		return -e;
	}
	s->commits++;
	s->last_ino = ino;
	s->last_off = off;
	s->last_len = len;
	if (ino == 7) {
		assert_true(off + len <= FILE_MAX);
		if (off > s->size)
			memset(s->file + s->size, 0, off - s->size);
		memcpy(s->file + off, data, len);
		if (off + len > s->size)
			s->size = off + len;
	}
	return 0;
}

static void test_wbuf_sequential_writes_coalesce(void **state)
{
	struct sink s = { 0 };
	struct wbufs *w = wbufs_new(1000, commit, &s);
	struct wbuf *b = wbuf_open(w, 7);

	(void)state;
	assert_non_null(b);
	assert_int_equal(wbuf_write(w, b, 0, 0, "abc", 3), 0);
	assert_int_equal(wbuf_write(w, b, 0, 3, "def", 3), 0);
	assert_int_equal(s.commits, 0);
	assert_int_equal(wbufs_flush_ino(w, 8), 0); /* another inode */
	assert_int_equal(wbufs_flush_ino(w, 7), 1); /* committed */
	assert_int_equal(s.commits, 1);
	assert_int_equal(s.last_len, 6);
	assert_memory_equal(s.file, "abcdef", 6);
	assert_int_equal(wbufs_flush_ino(w, 7), 0); /* nothing left */
	/* A gap commits what was pending first. */
	assert_int_equal(wbuf_write(w, b, 0, 10, "x", 1), 0);
	assert_int_equal(wbuf_write(w, b, 0, 20, "y", 1), 0);
	assert_int_equal(s.commits, 2);
	assert_int_equal(s.last_off, 10);
	assert_int_equal(wbuf_release(w, b), 0);
	assert_int_equal(s.commits, 3);
	assert_int_equal(s.last_off, 20);
	wbufs_free(w);
}

static void test_wbuf_bound_and_big_writes(void **state)
{
	struct sink s = { 0 };
	struct wbufs *w = wbufs_new(100, commit, &s);
	struct wbuf *b = wbuf_open(w, 7);
	char big[300];

	(void)state;
	memset(big, 'B', sizeof(big));
	assert_int_equal(wbuf_write(w, b, 0, 0, big, 60), 0);
	assert_int_equal(wbuf_write(w, b, 0, 60, big, 60), 0); /* 120 > 100 */
	assert_int_equal(s.commits, 1);
	assert_int_equal(s.last_len, 60);
	/* Over the bound: the pending extent, then the write itself. */
	assert_int_equal(wbuf_write(w, b, 0, 120, big, 300), 0);
	assert_int_equal(s.commits, 3);
	assert_int_equal(s.last_off, 120);
	assert_int_equal(s.last_len, 300);
	assert_int_equal(wbuf_flush(w, b), 0);
	assert_int_equal(s.commits, 3);
	assert_int_equal(wbuf_release(w, b), 0);
	assert_int_equal(s.size, 420);
	wbufs_free(w);
}

static void test_wbuf_shared_per_inode_and_errors(void **state)
{
	struct sink s = { 0 };
	struct wbufs *w = wbufs_new(1000, commit, &s);
	struct wbuf *b1 = wbuf_open(w, 7), *b2 = wbuf_open(w, 7);

	(void)state;
	assert_ptr_equal(b1, b2);
	assert_int_equal(wbuf_write(w, b1, 0, 0, "one", 3), 0);
	assert_int_equal(wbuf_write(w, b2, 0, 3, "two", 3), 0);
	assert_int_equal(wbuf_release(w, b1), 0); /* commits both */
	assert_int_equal(s.commits, 1);
	assert_memory_equal(s.file, "onetwo", 6);
	/* A failed commit is reported once, and the extent dropped. */
	assert_int_equal(wbuf_write(w, b2, 0, 6, "lost", 4), 0);
	s.fail_next = EIO;
	assert_int_equal(wbuf_flush(w, b2), -EIO);
	assert_int_equal(wbuf_flush(w, b2), 0);
	assert_int_equal(s.size, 6);
	/* A failed commit forced by a write fails that write too. */
	assert_int_equal(wbuf_write(w, b2, 0, 6, "aa", 2), 0);
	s.fail_next = ENOSPC;
	assert_int_equal(wbuf_write(w, b2, 0, 100, "bb", 2), -ENOSPC);
	assert_int_equal(wbuf_release(w, b2), 0);
	assert_int_equal(s.size, 6);
	/* The last release freed the buffer: a new open starts empty. */
	b1 = wbuf_open(w, 7);
	assert_int_equal(wbufs_flush_ino(w, 7), 0);
	assert_int_equal(wbuf_release(w, b1), 0);
	wbufs_free(w);
}

/* Bytes written under a lock lost since never commit, whoever flushes
 * them; bytes of another epoch never join them. */
static void test_wbuf_lost_epoch(void **state)
{
	struct sink s = { 0 };
	struct wbufs *w = wbufs_new(1000, commit, &s);
	struct wbuf *b = wbuf_open(w, 7);

	(void)state;
	/* Contiguous, but of two epochs: two commits. */
	assert_int_equal(wbuf_write(w, b, 0, 0, "ab", 2), 0);
	assert_int_equal(wbuf_write(w, b, 1, 2, "cd", 2), 0);
	assert_int_equal(s.commits, 1);
	assert_int_equal(s.last_len, 2);
	assert_int_equal(wbufs_flush_ino(w, 7), 1);
	assert_int_equal(s.commits, 2);
	/* Epoch 1's lock is lost: any flush path refuses its bytes. */
	assert_int_equal(wbuf_write(w, b, 1, 4, "xx", 2), 0);
	s.lost_below = 2;
	assert_int_equal(wbufs_flush_ino(w, 7), WBUF_LOST);
	assert_int_equal(wbufs_flush_ino(w, 7), 0); /* dropped */
	assert_int_equal(wbuf_write(w, b, 1, 4, "yy", 2), 0);
	assert_int_equal(wbuf_flush(w, b), WBUF_LOST);
	/* A newer descriptor's write drops the lost bytes quietly. */
	assert_int_equal(wbuf_write(w, b, 1, 4, "zz", 2), 0);
	assert_int_equal(wbuf_write(w, b, 2, 6, "ok", 2), 0);
	assert_int_equal(wbuf_release(w, b), 0);
	assert_int_equal(s.commits, 3);
	assert_int_equal(s.size, 8);
	assert_memory_equal(s.file, "abcd\0\0ok", 8);
	wbufs_free(w);
}

static uint64_t rng = 0x1234567887654321ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_wbuf_random_against_reference(void **state)
{
	static struct sink s;
	static unsigned char ref[FILE_MAX];
	static unsigned char data[4096];
	size_t ref_size = 0;
	struct wbufs *w;
	struct wbuf *b;

	(void)state;
	memset(&s, 0, sizeof(s));
	w = wbufs_new(3000, commit, &s);
	b = wbuf_open(w, 7);
	for (int step = 0; step < 20000; step++) {
		int op = (int)(rnd() % 10);

		if (op < 8) {
			size_t off = rnd() % 2
			    ? ref_size
			    : (size_t)(rnd() % (FILE_MAX - 4096));
			size_t len = 1 + (size_t)(rnd() % 4096);

			if (off + len > FILE_MAX)
				continue;
			for (size_t i = 0; i < len; i++)
				data[i] = (unsigned char)rnd();
			assert_int_equal(wbuf_write(w, b, 0, off, data, len),
			    0);
			if (off > ref_size)
				memset(ref + ref_size, 0, off - ref_size);
			memcpy(ref + off, data, len);
			if (off + len > ref_size)
				ref_size = off + len;
		} else {
			assert_true(wbufs_flush_ino(w, 7) >= 0);
			assert_int_equal(s.size, ref_size);
			assert_memory_equal(s.file, ref, ref_size);
		}
	}
	assert_int_equal(wbuf_release(w, b), 0);
	assert_int_equal(s.size, ref_size);
	assert_memory_equal(s.file, ref, ref_size);
	wbufs_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wbuf_sequential_writes_coalesce),
		cmocka_unit_test(test_wbuf_bound_and_big_writes),
		cmocka_unit_test(test_wbuf_shared_per_inode_and_errors),
		cmocka_unit_test(test_wbuf_lost_epoch),
		cmocka_unit_test(test_wbuf_random_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
