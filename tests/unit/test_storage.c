/*
 * test_storage.c - unit tests for raft/storage/storage.c and its parts (wal.c,
 * snapfile.c, crc32c.c, diskio.c).
 *
 * Every test runs in its own temporary directory, removed by the teardown.
 * Crashes are simulated two ways: by editing copies of a data directory
 * (cutting, zeroing or scrambling bytes, as a crash or a bad disk would),
 * and by the fault hook (storage_options.fault), which fails the n-th I/O
 * operation the way a crash at that point would stop the member: the
 * storage is closed without further I/O and reopened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "raft/storage/crc32c.h"
#include "raft/storage/storage.h"
#include "tests/lib/stfx.h"

/* ------------------------------------------------------------------------
 * Fixture: tests/lib/stfx.h, with RAFTKV_STORAGE_PREALLOC=none|fallocate
 * running the suite in that preallocation mode.
 * ------------------------------------------------------------------------ */

#define CLUSTER STFX_CLUSTER
#define MEMBER STFX_MEMBER

static int setup(void **state)
{
	const char *mode = getenv("RAFTKV_STORAGE_PREALLOC");
	struct stfx *f;

	stfx_setup(state, "test_storage");
	f = *state;
	if (mode != NULL && strcmp(mode, "none") == 0)
		f->opt.prealloc = STORAGE_PREALLOC_NONE;
	else if (mode != NULL && strcmp(mode, "fallocate") == 0)
		f->opt.prealloc = STORAGE_PREALLOC_FALLOCATE;
	return 0;
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static int open_fails(struct stfx *f, const char *dir, char *err, size_t errlen)
{
	struct raft_boot boot;
	struct storage *s = NULL;
	int rc = storage_open(dir, CLUSTER, MEMBER, &f->opt, &s, &boot, err,
	    errlen);

	if (rc == 0) {
		storage_close(s);
		snprintf(err, errlen, "(opened without error)");
	}
	assert_null(s == NULL || rc == 0 ? NULL : s);
	return rc;
}

/* The boot log is exactly [first, last], entry i of term term_of(i). */
static void check_log(const struct raft_boot *b, raft_index first,
    raft_index last, raft_term (*term_of)(raft_index))
{
	assert_int_equal(b->n_entries, last + 1 - first);
	for (uint64_t k = 0; k < b->n_entries; k++) {
		const struct raft_entry *e = &b->entries[k];
		raft_term t = term_of(first + k);

		assert_int_equal(e->index, first + k);
		assert_int_equal(e->term, t);
		assert_int_equal(e->type, RAFT_ENTRY_NORMAL);
		assert_int_equal(e->len, stfx_payload_len(e->index));
		for (uint32_t j = 0; j < e->len; j++)
			assert_int_equal(e->data[j],
			    stfx_payload_byte(e->index, t, j));
	}
}

static raft_term term1(raft_index i)
{
	(void)i;
	return 1;
}

static void seg_path(const char *dir, raft_index first, char *buf, size_t len)
{
	char name[64];

	stfx_seg_name(first, name, sizeof name);
	stfx_path(dir, name, buf, len);
}

static void flip_bit(const char *path, uint64_t off, int bit)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= (uint8_t)(1u << bit);
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void fill_range(const char *path, uint64_t from, uint64_t to,
    int garbage, unsigned *seed)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	for (uint64_t o = from; o < to; o++) {
		uint8_t b = garbage ? (uint8_t)(rand_r(seed) | 1) : 0;

		assert_int_equal(pwrite(fd, &b, 1, (off_t)o), 1);
	}
	close(fd);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------
 * Tests: CRC32C
 * ------------------------------------------------------------------------ */

static void test_storage_crc32c_known_vectors(void **state)
{
	uint8_t zeros[32] = { 0 }, ones[32], inc[32], buf[4096 + 8];
	unsigned seed = 1;

	(void)state;
	memset(ones, 0xff, sizeof ones);
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	/* RFC 3720 appendix B.4 and the classic check value. */
	assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283);
	assert_int_equal(crc32c_sw(0, zeros, 32), 0x8A9136AA);
	assert_int_equal(crc32c_sw(0, ones, 32), 0x62A8AB43);
	assert_int_equal(crc32c_sw(0, inc, 32), 0x46DD794E);
	assert_int_equal(crc32c_sw(0, "", 0), 0);
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283);
	/* Chaining. */
	assert_int_equal(crc32c_sw(crc32c_sw(0, "1234", 4), "56789", 5),
	    0xE3069283);
	if (!crc32c_hw_available()) {
		print_message(
		    "crc32c: no SSE4.2 on this CPU, hardware path untested\n");
		return;
	}
	assert_int_equal(crc32c_hw(0, "123456789", 9), 0xE3069283);
	assert_int_equal(crc32c_hw(0, zeros, 32), 0x8A9136AA);
	assert_int_equal(crc32c_hw(0, ones, 32), 0x62A8AB43);
	assert_int_equal(crc32c_hw(0, inc, 32), 0x46DD794E);
	/* Both paths agree at every alignment and length. */
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rand_r(&seed);
	for (size_t a = 0; a < 8; a++)
		for (size_t n = 0; n < 300; n += 1 + n / 8)
			assert_int_equal(crc32c_hw(5, buf + a, n),
			    crc32c_sw(5, buf + a, n));
	assert_int_equal(crc32c_hw(0, buf, 4096), crc32c_sw(0, buf, 4096));
}

/* ------------------------------------------------------------------------
 * Tests: round trips
 * ------------------------------------------------------------------------ */

static void test_storage_fresh_dir_is_empty(void **state)
{
	struct stfx *f = *state;
	struct raft_boot b;
	struct storage_stats st;
	char p[512];
	struct storage *s = stfx_open(f, f->dir, &b);

	assert_int_equal(b.hs.term, 0);
	assert_int_equal(b.hs.vote, 0);
	assert_false(b.has_snapshot);
	assert_int_equal(b.n_entries, 0);
	storage_stats(s, &st);
	assert_int_equal(st.first_index, 1);
	assert_int_equal(st.last_index, 0);
	assert_int_equal(st.n_segments, 0);
	assert_int_equal(storage_sync(s), 0); /* nothing to do */
	storage_stats(s, &st);
	assert_int_equal(st.syncs, 0);
	storage_close(s);
	stfx_path(f->dir, "meta", p, sizeof p);
	assert_true(stfx_exists(p));
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.n_entries, 0);
	storage_close(s);
}

static void test_storage_append_round_trip(void **state)
{
	struct stfx *f = *state;
	struct raft_hard_state hs = { 5, 2 };
	struct storage_stats st;
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	for (raft_index i = 1; i <= 300; i += 30)
		stfx_append(s, i, 30, 1);
	assert_int_equal(storage_save_hard_state(s, &hs), 0);
	assert_int_equal(storage_sync(s), 0);
	storage_stats(s, &st);
	assert_int_equal(st.first_index, 1);
	assert_int_equal(st.last_index, 300);
	assert_int_equal(st.last_term, 1);
	assert_true(st.n_segments > 5); /* 4 KiB segments roll over */
	assert_true(st.log_bytes > 300 * 26);
	storage_close(s);

	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.hs.term, 5);
	assert_int_equal(b.hs.vote, 2);
	check_log(&b, 1, 300, term1);
	/* Appends continue in a new segment after a restart. */
	stfx_append(s, 301, 5, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	check_log(&b, 1, 305, term1);
	storage_close(s);
}

static void test_storage_empty_and_large_entries(void **state)
{
	struct stfx *f = *state;
	struct raft_entry e[3] = { { 1, 1, RAFT_ENTRY_NOOP, 0, NULL } };
	uint32_t big = 20000; /* bigger than a segment */
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	e[1] = (struct raft_entry){ 1, 2, RAFT_ENTRY_NORMAL, big, malloc(big) };
	e[2] = (struct raft_entry){ 1, 3, RAFT_ENTRY_NORMAL, 1,
		(uint8_t *)"x" };
	for (uint32_t j = 0; j < big; j++)
		e[1].data[j] = (uint8_t)(j * 7);
	assert_int_equal(storage_append(s, e, 3), 0);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.n_entries, 3);
	assert_int_equal(b.entries[0].type, RAFT_ENTRY_NOOP);
	assert_int_equal(b.entries[0].len, 0);
	assert_null(b.entries[0].data);
	assert_int_equal(b.entries[1].len, big);
	assert_memory_equal(b.entries[1].data, e[1].data, big);
	assert_int_equal(b.entries[2].len, 1);
	assert_int_equal(b.entries[2].data[0], 'x');
	storage_close(s);
	free(e[1].data);
}

static void test_storage_hard_state_needs_sync(void **state)
{
	struct stfx *f = *state;
	struct raft_hard_state a = { 3, 1 }, c = { 4, 0 };
	struct raft_boot b;
	char p[512];
	struct storage *s = stfx_open(f, f->dir, &b);

	assert_int_equal(storage_save_hard_state(s, &a), 0);
	assert_int_equal(storage_sync(s), 0);
	assert_int_equal(storage_save_hard_state(s, &c), 0);
	storage_close(s); /* "crash" before the sync */
	stfx_path(f->dir, "hardstate.tmp", p, sizeof p);
	assert_true(stfx_exists(p));
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.hs.term, 3);
	assert_int_equal(b.hs.vote, 1);
	assert_false(stfx_exists(p));
	assert_int_equal(storage_save_hard_state(s, &c), 0);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.hs.term, 4);
	assert_int_equal(b.hs.vote, 0);
	storage_close(s);
}

static void test_storage_group_commit_one_sync_per_batch(void **state)
{
	struct stfx *f = *state;
	struct storage_stats st0, st1;
	struct raft_boot b;
	struct storage *s;

	f->opt.segment_size = 1 << 20;
	s = stfx_open(f, f->dir, &b);
	stfx_append(s, 1, 1, 1); /* creates the segment */
	assert_int_equal(storage_sync(s), 0);
	storage_stats(s, &st0);
	for (int k = 0; k < 4; k++)
		stfx_append(s, 2 + 16 * (raft_index)k, 16, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_stats(s, &st1);
	assert_int_equal(st1.syncs - st0.syncs, 1);
	assert_int_equal(st1.fsyncs - st0.fsyncs,
	    1); /* one fdatasync, 64 entries */
	storage_close(s);
}

static raft_term trunc_terms(raft_index i)
{
	return i < 50 ? 1 : i <= 60 ? 2 : 3;
}

static void test_storage_truncate_suffix(void **state)
{
	struct stfx *f = *state;
	struct storage_stats st;
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	stfx_append(s, 1, 100, 1);
	assert_int_equal(storage_sync(s), 0);
	/* Conflict at 50: replaces 50..100 (spanning several segments). */
	stfx_append(s, 50, 11, 2);
	assert_int_equal(storage_sync(s), 0);
	storage_stats(s, &st);
	assert_int_equal(st.last_index, 60);
	assert_int_equal(st.last_term, 2);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	check_log(&b, 1, 60, trunc_terms);
	/* A second conflict inside the segment the first one created. */
	stfx_append(s, 61, 10, 2);
	struct raft_entry *e = stfx_make_entries(61, 5, 3);
	assert_int_equal(storage_append(s, e, 5), 0);
	stfx_free_entries(e, 5);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	check_log(&b, 1, 65, trunc_terms);
	storage_close(s);
}

static void test_storage_append_rejects_bad_batches(void **state)
{
	struct stfx *f = *state;
	struct raft_entry *e = stfx_make_entries(5, 2, 1);
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	assert_int_equal(storage_append(s, e, 2), -EINVAL); /* gap */
	assert_int_equal(storage_append(s, e, 0), -EINVAL);
	e[0].index = 1;
	e[1].index = 3; /* not contiguous */
	assert_int_equal(storage_append(s, e, 2), -EINVAL);
	assert_int_equal(storage_error(s), 0); /* not poisoned */
	e[1].index = 2;
	e[0].term = 2; /* terms 2, 1 */
	assert_int_equal(storage_append(s, e, 2), -EINVAL);
	e[0].term = 1;
	e[1].term = 2;
	assert_int_equal(storage_append(s, e, 2), 0); /* terms 1, 2 */
	e[0].index = 3;
	e[0].term = 1; /* below 2's */
	assert_int_equal(storage_append(s, e, 1), -EINVAL);
	e[0].term = 2;
	assert_int_equal(storage_append(s, e, 1), 0);
	assert_int_equal(storage_error(s), 0); /* not poisoned */
	storage_close(s);
	stfx_free_entries(e, 2);
}

/* ------------------------------------------------------------------------
 * Tests: snapshots
 * ------------------------------------------------------------------------ */

static uint8_t *snap_data(uint64_t len, raft_index index)
{
	uint8_t *d = malloc(len + 1);

	assert_non_null(d);
	for (uint64_t i = 0; i < len; i++)
		d[i] = (uint8_t)(i % 251 == 0 ? index
		                              : i / 64); /* compressible */
	return d;
}

static void test_storage_snapshot_compacts_log(void **state)
{
	struct stfx *f = *state;
	struct raft_snapshot_meta m = stfx_snap_meta(200, 1), got;
	uint64_t len = 100000, glen;
	uint8_t *d = snap_data(len, 200), *gd;
	struct storage_stats st0, st1;
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	stfx_append(s, 1, 300, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_stats(s, &st0);
	assert_int_equal(storage_save_snapshot(s, &m, d, len), 0);
	storage_stats(s, &st1);
	assert_int_equal(st1.snap_index, 200);
	assert_int_equal(st1.first_index, 201);
	assert_int_equal(st1.last_index, 300);
	assert_true(st1.n_segments < st0.n_segments);
	assert_true(st1.log_bytes < st0.log_bytes);
	assert_true(st1.snap_file_bytes < len / 4); /* compressed */
	assert_int_equal(storage_load_snapshot(s, &got, &gd, &glen), 0);
	assert_int_equal(got.index, 200);
	assert_int_equal(got.n_voters, 3);
	assert_int_equal(glen, len);
	assert_memory_equal(gd, d, len);
	free(gd);
	assert_int_equal(storage_save_snapshot(s, &m, d, len), RAFT_ESTALE);
	storage_close(s);

	s = stfx_open(f, f->dir, &b);
	assert_true(b.has_snapshot);
	assert_int_equal(b.snap.index, 200);
	assert_int_equal(b.snap.term, 1);
	assert_int_equal(b.snap.voters[2], 3);
	assert_int_equal(b.snap_len, len);
	assert_memory_equal(b.snap_data, d, len);
	check_log(&b, 201, 300, term1);
	/* A newer snapshot replaces the older file. */
	m = stfx_snap_meta(250, 1);
	assert_int_equal(storage_save_snapshot(s, &m, d, 10), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.snap.index, 250);
	assert_int_equal(b.snap_len, 10);
	assert_int_equal(b.snap.n_learners, 0);
	check_log(&b, 251, 300, term1);
	/* With learners (format version 2): they come back. */
	m = stfx_snap_meta(260, 1);
	m.n_learners = 2;
	m.learners[0] = 7;
	m.learners[1] = 9;
	assert_int_equal(storage_save_snapshot(s, &m, d, 10), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.snap.index, 260);
	assert_int_equal(b.snap.n_voters, 3);
	assert_int_equal(b.snap.voters[2], 3);
	assert_int_equal(b.snap.n_learners, 2);
	assert_int_equal(b.snap.learners[0], 7);
	assert_int_equal(b.snap.learners[1], 9);
	check_log(&b, 261, 300, term1);
	storage_close(s);
	char p[512];
	snprintf(p, sizeof p, "%s/snap-%020d.snap", f->dir, 200);
	assert_false(stfx_exists(p));
	free(d);
}

/*
 * A compaction's snapshot in three steps (storage_snap_*), the log going
 * on between them as it does on the member while another thread writes
 * the file: nothing of the snapshot exists before finish; after it, the
 * snapshot plus every entry appended meanwhile.
 */
static void test_storage_snapshot_beside_log(void **state)
{
	struct stfx *f = *state;
	struct raft_snapshot_meta m = stfx_snap_meta(200, 1);
	struct raft_snapshot_meta bad = stfx_snap_meta(350, 1);
	struct raft_snapshot_meta wrong = stfx_snap_meta(200, 2);
	uint64_t len = 100000;
	uint8_t *d = snap_data(len, 200);
	struct storage_snap *w, *w2;
	struct storage_stats st;
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);
	char p[512];

	stfx_append(s, 1, 300, 1);
	assert_int_equal(storage_sync(s), 0);
	/* Only for an entry the log holds with that term. */
	assert_int_equal(storage_snap_begin(s, &bad, &w), -ENOENT);
	assert_int_equal(storage_snap_begin(s, &wrong, &w), -ENOENT);
	assert_int_equal(storage_snap_begin(s, &m, &w), 0);
	/* One at a time, and no other snapshot meanwhile. */
	assert_int_equal(storage_snap_begin(s, &m, &w2), -EBUSY);
	assert_int_equal(storage_save_snapshot(s, &m, d, len), -EBUSY);
	assert_int_equal(storage_snap_write(w, d, len), 0);
	snprintf(p, sizeof p, "%s/snap-%020d.snap.tmp", f->dir, 200);
	assert_true(stfx_exists(p));
	/* The log goes on, written and synced, before the install. */
	stfx_append(s, 301, 100, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_stats(s, &st);
	assert_int_equal(st.snap_index, 0);
	assert_int_equal(st.first_index, 1);
	stfx_append(s, 401, 20, 1); /* not synced: finish syncs it */
	assert_int_equal(storage_snap_finish(s, w), 0);
	storage_stats(s, &st);
	assert_int_equal(st.snap_index, 200);
	assert_int_equal(st.first_index, 201);
	assert_int_equal(st.last_index, 420);
	assert_false(stfx_exists(p));
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	assert_true(b.has_snapshot);
	assert_int_equal(b.snap.index, 200);
	assert_int_equal(b.snap_len, len);
	assert_memory_equal(b.snap_data, d, len);
	check_log(&b, 201, 420, term1);
	/* Dropped unfinished (a stop): the old snapshot and log stay. */
	m = stfx_snap_meta(300, 1);
	assert_int_equal(storage_snap_begin(s, &m, &w), 0);
	assert_int_equal(storage_snap_write(w, d, 10), 0);
	storage_snap_abort(s, w);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.snap.index, 200);
	check_log(&b, 201, 420, term1);
	snprintf(p, sizeof p, "%s/snap-%020d.snap.tmp", f->dir, 300);
	assert_false(stfx_exists(p)); /* removed at open */
	storage_close(s);
	free(d);
}

static raft_term term5(raft_index i)
{
	(void)i;
	return 5;
}

static void test_storage_snapshot_install_replaces_log(void **state)
{
	struct stfx *f = *state;
	struct raft_snapshot_meta m = stfx_snap_meta(80, 5);
	struct storage_stats st;
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	stfx_append(s, 1, 100, 1);
	assert_int_equal(storage_sync(s), 0);
	/* The log has 80 with term 1, the snapshot says term 5: discard all. */
	assert_int_equal(storage_save_snapshot(s, &m, "abc", 3), 0);
	storage_stats(s, &st);
	assert_int_equal(st.first_index, 81);
	assert_int_equal(st.last_index, 80);
	assert_int_equal(st.last_term, 5);
	assert_int_equal(st.n_segments, 0);
	stfx_append(s, 81, 10, 5);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.snap.index, 80);
	check_log(&b, 81, 90, term5);
	/* A snapshot beyond the end of the log. */
	m = stfx_snap_meta(500, 6);
	assert_int_equal(storage_save_snapshot(s, &m, "x", 1), 0);
	struct raft_entry *e = stfx_make_entries(501, 3, 6);
	assert_int_equal(storage_append(s, e, 3), 0);
	stfx_free_entries(e, 3);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.snap.index, 500);
	assert_int_equal(b.n_entries, 3);
	assert_int_equal(b.entries[0].index, 501);
	storage_close(s);
}

/* ------------------------------------------------------------------------
 * Tests: crashes and corruption
 * ------------------------------------------------------------------------ */

/* Newest segment's path and the offsets of its records. */
static size_t newest_segment(const char *dir, char *path, size_t len,
    uint64_t *offs, size_t max)
{
	raft_index firsts[4096];
	size_t n = stfx_list_segments(dir, firsts, 4096);

	assert_true(n > 0);
	seg_path(dir, firsts[n - 1], path, len);
	return stfx_record_offsets(path, offs, max);
}

static void test_storage_crash_at_every_byte_of_last_record(void **state)
{
	struct stfx *f = *state;
	char copy[400], seg[512], cseg[600];
	uint64_t offs[64];
	struct raft_boot b;
	unsigned seed = 42;
	int n_torn = 0, n_cases = 0;
	struct storage *s;
	size_t n;

	f->opt.segment_size = 8192;
	s = stfx_open(f, f->dir, &b);
	stfx_append(s, 1, 3, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b); /* appends go to a new segment */
	stfx_append(s, 4, 10, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	n = newest_segment(f->dir, seg, sizeof seg, offs, 63);
	assert_int_equal(n, 10);
	snprintf(copy, sizeof copy, "%s/copy", f->root);
	/* The last record spans [offs[9], offs[10]). */
	for (int mode = 0; mode < 3; mode++) {
		for (uint64_t k = offs[n - 1]; k < offs[n]; k++) {
			stfx_copy_dir(f->dir, copy);
			snprintf(cseg, sizeof cseg, "%s/%s", copy,
			    strrchr(seg, '/') + 1);
			if (mode == 0)
				assert_int_equal(truncate(cseg, (off_t)k), 0);
			else
				fill_range(cseg, k, offs[n], mode == 2, &seed);
			/* A crash never shortens a preallocated segment (it
			 * is born full size): that is damage, refused unless
			 * the recover option accepts the loss. */
			if (mode == 0 &&
			    f->opt.prealloc != STORAGE_PREALLOC_NONE) {
				char err[1024];

				assert_int_equal(open_fails(f, copy, err,
				                     sizeof err),
				    STORAGE_EDAMAGED);
				assert_non_null(
				    strstr(err, strrchr(seg, '/') + 1));
				assert_non_null(strstr(err, "cut short"));
				f->opt.recover = true;
			}
			f->n_logs = 0;
			s = stfx_open(f, copy, &b);
			f->opt.recover = false;
			check_log(&b, 1, 12,
			    term1); /* a prefix: the last one lost */
			n_torn += f->n_logs > 0;
			n_cases++;
			/* The member goes on: new appends survive the next restart. */
			if (k % 16 == 0) {
				stfx_append(s, 13, 2, 1);
				assert_int_equal(storage_sync(s), 0);
				storage_close(s);
				s = stfx_open(f, copy, &b);
				check_log(&b, 1, 14, term1);
			}
			storage_close(s);
		}
	}
	print_message("crash offsets: %d cases, %d logged as torn\n", n_cases,
	    n_torn);
	assert_true(n_torn > 0);
}

/* A torn batch whose first page was lost but later records made it. */
static void test_storage_torn_batch_with_lost_page(void **state)
{
	struct stfx *f = *state;
	char seg[512];
	uint64_t offs[256];
	struct raft_boot b;
	struct storage *s;
	size_t n, k;

	f->opt.segment_size = 64 * 1024;
	s = stfx_open(f, f->dir, &b);
	stfx_append(s, 1, 200, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	n = newest_segment(f->dir, seg, sizeof seg, offs, 255);
	assert_int_equal(n, 200);
	/* Lose a 512-byte sector that starts inside record k (after its
	 * header): record k+1 is the first bad one, later ones are intact. */
	uint64_t sec = 0;
	unsigned seed = 0;
	for (k = 100; k < n; k++) {
		sec = (offs[k] / 512 + 1) * 512;
		if (offs[k] + 9 <= sec && sec < offs[k + 1])
			break;
	}
	assert_true(k < n);
	fill_range(seg, sec, sec + 512, 0, &seed);
	size_t hit = k;
	f->n_logs = 0;
	s = stfx_open(f, f->dir, &b);
	check_log(&b, 1, hit, term1);
	assert_int_equal(f->n_logs, 1);
	assert_non_null(strstr(f->last_log, "torn record"));
	storage_close(s);
}

static void expect_corrupt(struct stfx *f, const char *dir, const char *file,
    const char *what)
{
	char err[1024];
	int rc = open_fails(f, dir, err, sizeof err);

	if (rc != STORAGE_ECORRUPT)
		fail_msg("%s: expected STORAGE_ECORRUPT, got %d: %s", what, rc,
		    err);
	if (strstr(err, file) == NULL || strstr(err, "offset") == NULL)
		fail_msg("%s: message does not name %s and an offset: %s", what,
		    file, err);
}

/* Build a directory with two snapshots' worth of history:
 * snapshot at 20, older segments, and a newest segment of 10 records. */
static void build_history(struct stfx *f)
{
	struct raft_snapshot_meta m = stfx_snap_meta(20, 1);
	uint8_t *d = snap_data(5000, 20);
	struct raft_hard_state hs = { 1, 3 };
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	stfx_append(s, 1, 100, 1);
	assert_int_equal(storage_save_hard_state(s, &hs), 0);
	assert_int_equal(storage_sync(s), 0);
	assert_int_equal(storage_save_snapshot(s, &m, d, 5000), 0);
	storage_close(s);
	s = stfx_open(f, f->dir, &b);
	stfx_append(s, 101, 10, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	free(d);
}

static void flip_and_expect(struct stfx *f, const char *copy, const char *name,
    uint64_t off, int bit, const char *what)
{
	char p[600];

	stfx_copy_dir(f->dir, copy);
	stfx_path(copy, name, p, sizeof p);
	flip_bit(p, off, bit);
	expect_corrupt(f, copy, name, what);
}

static void test_storage_bit_flips_detected(void **state)
{
	struct stfx *f = *state;
	char copy[400], seg[512], name[64], what[128];
	uint64_t offs[64], old_offs[64], size;
	struct raft_boot b;
	int checked = 0;
	size_t n;

	build_history(f);
	snprintf(copy, sizeof copy, "%s/copy", f->root);
	storage_close(stfx_open(f, f->dir, &b)); /* it is healthy */

	/* The newest segment: header, and every byte of a middle record. */
	n = newest_segment(f->dir, seg, sizeof seg, offs, 63);
	assert_int_equal(n, 10);
	snprintf(name, sizeof name, "%s", strrchr(seg, '/') + 1);
	for (uint64_t o = 0; o < 64; o++, checked++) {
		snprintf(what, sizeof what,
		    "newest segment header byte %" PRIu64, o);
		flip_and_expect(f, copy, name, o, (int)(o % 8), what);
	}
	for (uint64_t o = offs[4]; o < offs[5]; o++, checked++) {
		snprintf(what, sizeof what,
		    "newest segment record byte %" PRIu64, o);
		flip_and_expect(f, copy, name, o, (int)(o % 8), what);
	}
	/* An older segment: header, and every byte of its last record. */
	raft_index firsts[64];
	assert_true(stfx_list_segments(f->dir, firsts, 64) >= 3);
	snprintf(name, sizeof name, "wal-%020" PRIu64 ".seg", firsts[1]);
	stfx_path(f->dir, name, seg, sizeof seg);
	n = stfx_record_offsets(seg, old_offs, 63);
	assert_true(n > 2);
	for (uint64_t o = 0; o < 64; o += 7, checked++) {
		snprintf(what, sizeof what, "old segment header byte %" PRIu64,
		    o);
		flip_and_expect(f, copy, name, o, 7 - (int)(o % 8), what);
	}
	for (uint64_t o = old_offs[n - 1]; o < old_offs[n]; o++, checked++) {
		snprintf(what, sizeof what, "old segment record byte %" PRIu64,
		    o);
		flip_and_expect(f, copy, name, o, (int)(o % 8), what);
	}
	/* The hard state and identity files: every byte. */
	for (uint64_t o = 0; o < 40; o++, checked += 2) {
		flip_and_expect(f, copy, "hardstate", o, (int)(o % 8),
		    "hardstate");
		flip_and_expect(f, copy, "meta", o, (int)(o % 8), "meta");
	}
	/* The snapshot: every header byte, and bytes across the body. */
	snprintf(name, sizeof name, "snap-%020d.snap", 20);
	stfx_path(f->dir, name, seg, sizeof seg);
	size = stfx_file_size(seg);
	for (uint64_t o = 0; o < 192; o++, checked++)
		flip_and_expect(f, copy, name, o, (int)(o % 8),
		    "snapshot header");
	for (uint64_t o = 192; o < size; o++, checked++)
		snprintf(what, sizeof what, "snapshot body byte %" PRIu64, o),
		    flip_and_expect(f, copy, name, o, (int)(o % 8), what);
	flip_and_expect(f, copy, name, size - 1, 0, "snapshot frame checksum");
	print_message("bit flips: %d positions, all detected\n", checked);
}

static void test_storage_damaged_files_refused(void **state)
{
	struct stfx *f = *state;
	char copy[400], p[600], name[64];

	build_history(f);
	snprintf(copy, sizeof copy, "%s/copy", f->root);
	/* A middle segment missing: a gap in the log. */
	stfx_copy_dir(f->dir, copy);
	raft_index firsts[64];
	assert_true(stfx_list_segments(f->dir, firsts, 64) >= 3);
	snprintf(name, sizeof name, "wal-%020" PRIu64 ".seg", firsts[1]);
	stfx_path(copy, name, p, sizeof p);
	assert_int_equal(unlink(p), 0);
	expect_corrupt(f, copy, "wal-", "missing segment");
	/* A snapshot cut short. */
	stfx_copy_dir(f->dir, copy);
	snprintf(name, sizeof name, "snap-%020d.snap", 20);
	stfx_path(copy, name, p, sizeof p);
	assert_int_equal(truncate(p, (off_t)stfx_file_size(p) - 3), 0);
	expect_corrupt(f, copy, name, "short snapshot");
	/* Trailing bytes after the zstd frame. */
	stfx_copy_dir(f->dir, copy);
	int fd = open(p, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "zz", 2), 2);
	close(fd);
	expect_corrupt(f, copy, name, "trailing bytes");
	/* Log files without the identity file. */
	stfx_copy_dir(f->dir, copy);
	stfx_path(copy, "meta", p, sizeof p);
	assert_int_equal(unlink(p), 0);
	char err[1024];
	assert_int_equal(open_fails(f, copy, err, sizeof err),
	    STORAGE_EDAMAGED);
	assert_non_null(strstr(err, "identity file"));
	assert_non_null(strstr(err, "meta"));
}

static void test_storage_wrong_cluster_or_member_refused(void **state)
{
	struct stfx *f = *state;
	struct storage *s = NULL;
	struct raft_boot b;
	char err[1024], other[400], p[600], q[700], name[64];

	storage_close(stfx_open(f, f->dir, &b));
	assert_int_equal(storage_open(f->dir, CLUSTER + 1, MEMBER, &f->opt, &s,
	                     &b, err, sizeof err),
	    STORAGE_EFOREIGN);
	assert_non_null(strstr(err, "meta"));
	assert_non_null(strstr(err, "cluster 4d")); /* 77, in hex */
	assert_int_equal(storage_open(f->dir, CLUSTER, MEMBER + 1, &f->opt, &s,
	                     &b, err, sizeof err),
	    STORAGE_EFOREIGN);
	assert_null(s);
	/* A segment copied in from another member's directory. */
	snprintf(other, sizeof other, "%s/other", f->root);
	assert_int_equal(storage_open(other, CLUSTER, MEMBER + 1, &f->opt, &s,
	                     &b, err, sizeof err),
	    0);
	stfx_append(s, 1, 3, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	snprintf(name, sizeof name, "wal-%020d.seg", 1);
	stfx_path(other, name, p, sizeof p);
	stfx_path(f->dir, name, q, sizeof q);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(storage_open(f->dir, CLUSTER, MEMBER, &f->opt, &s, &b,
	                     err, sizeof err),
	    STORAGE_EFOREIGN);
	assert_non_null(strstr(err, name));
	/* Zero ids are refused. */
	assert_int_equal(storage_open(other, 0, MEMBER, &f->opt, &s, &b, err,
	                     sizeof err),
	    -EINVAL);
}

static void test_storage_second_process_locked_out(void **state)
{
	struct stfx *f = *state;
	struct storage *s2 = NULL;
	struct raft_boot b, b2;
	char err[1024];
	struct storage *s = stfx_open(f, f->dir, &b);

	assert_int_equal(storage_open(f->dir, CLUSTER, MEMBER, &f->opt, &s2,
	                     &b2, err, sizeof err),
	    -EBUSY);
	storage_close(s);
}

/* ------------------------------------------------------------------------
 * Tests: failures poison the store
 * ------------------------------------------------------------------------ */

static void expect_poisoned(struct storage *s, int rc, const char *needle)
{
	struct raft_entry *e = stfx_make_entries(1000, 1, 9);
	struct raft_hard_state hs = { 9, 9 };
	struct raft_snapshot_meta m = stfx_snap_meta(999, 9);

	assert_int_equal(storage_error(s), rc);
	assert_non_null(strstr(storage_errmsg(s), needle));
	assert_int_equal(storage_append(s, e, 1), rc);
	assert_int_equal(storage_save_hard_state(s, &hs), rc);
	assert_int_equal(storage_sync(s), rc);
	assert_int_equal(storage_save_snapshot(s, &m, "x", 1), rc);
	stfx_free_entries(e, 1);
}

static void test_storage_failed_write_poisons(void **state)
{
	struct stfx *f = *state;
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	stfx_append(s, 1, 5, 1);
	assert_int_equal(storage_sync(s), 0);
	f->ops = 0;
	f->fail_op = STORAGE_OP_WRITE;
	f->fail_at = 1;
	f->fail_rc = -EIO;
	struct raft_entry *e = stfx_make_entries(6, 1, 1);
	assert_int_equal(storage_append(s, e, 1), -EIO);
	stfx_free_entries(e, 1);
	expect_poisoned(s, -EIO, "Input/output error");
	assert_non_null(strstr(storage_errmsg(s), "wal-"));
	assert_non_null(strstr(storage_errmsg(s), "offset"));
	storage_close(s);
	f->fail_at = 0;
	s = stfx_open(f, f->dir, &b);
	check_log(&b, 1, 5, term1);
	storage_close(s);
}

static void test_storage_failed_fsync_poisons_and_is_not_retried(void **state)
{
	struct stfx *f = *state;
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	stfx_append(s, 1, 5, 1);
	f->ops = 0;
	f->fail_op = STORAGE_OP_SYNC;
	f->fail_at = 1;
	f->fail_rc = -EIO;
	assert_int_equal(storage_sync(s), -EIO);
	assert_non_null(strstr(storage_errmsg(s), "fdatasync"));
	expect_poisoned(s, -EIO, "wal-");
	assert_int_equal(f->syncs_after_fail, 0); /* fsync is never retried */
	storage_close(s);
}

static void test_storage_enospc_reported_as_such(void **state)
{
	struct stfx *f = *state;
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	stfx_append(s, 1, 5, 1);
	f->ops = 0;
	f->fail_op = STORAGE_OP_ALLOCATE; /* the next segment cannot be made */
	f->fail_at = 1;
	f->fail_rc = -ENOSPC;
	struct raft_entry *e = stfx_make_entries(6, 100, 1);
	assert_int_equal(storage_append(s, e, 100), -ENOSPC);
	stfx_free_entries(e, 100);
	expect_poisoned(s, -ENOSPC, "No space left on device");
	storage_close(s);
	/* The interrupted segment creation is cleaned up at the next start. */
	f->fail_at = 0;
	s = stfx_open(f, f->dir, &b);
	assert_true(b.n_entries >= 5);
	check_log(&b, 1, b.n_entries, term1);
	storage_close(s);
}

/* ------------------------------------------------------------------------
 * Tests: a crash at each step of multi-step operations
 * ------------------------------------------------------------------------ */

enum outcome { OLD_STATE = 1, NEW_STATE = 2 };

/*
 * Run @op against a fresh copy of the history in f->dir, failing the
 * @step-th I/O operation (a crash there); reopen; return which state the
 * directory recovered to, as told by @judge.  Returns 0 when @op completed
 * without reaching @step.
 */
static int crash_at(struct stfx *f, const char *copy, long step,
    int (*op)(struct storage *), int (*judge)(const struct raft_boot *))
{
	struct raft_boot b;
	struct storage *s;
	int rc, res;

	stfx_copy_dir(f->dir, copy);
	f->fail_at = 0;
	s = stfx_open(f, copy, &b);
	f->ops = 0;
	f->fail_op = 0;
	f->fail_at = step;
	f->fail_rc = -EIO;
	rc = op(s);
	storage_close(s); /* the crash: nothing more reaches the disk */
	f->fail_at = 0;
	if (rc == 0 && f->ops < step)
		return 0;
	assert_int_equal(rc, -EIO);
	s = stfx_open(f, copy, &b);
	res = judge(&b);
	storage_close(s);
	/* Whatever it recovered to, it opens again to the same state. */
	s = stfx_open(f, copy, &b);
	assert_int_equal(judge(&b), res);
	storage_close(s);
	return res;
}

/*
 * Run @op on a copy of f->dir with a crash at each of its steps in turn
 * (crash_at) until it completes; counts the outcomes in @seen and
 * returns the number of crash points.
 */
static long crash_each_step(struct stfx *f, int (*op)(struct storage *),
    int (*judge)(const struct raft_boot *), int seen[3])
{
	char copy[400];
	long step;
	int res;

	snprintf(copy, sizeof copy, "%s/copy", f->root);
	for (step = 1; (res = crash_at(f, copy, step, op, judge)) != 0; step++)
		seen[res]++;
	return step - 1;
}

static raft_index g_snap_index;
static raft_term g_snap_term;

static int op_snapshot(struct storage *s)
{
	struct raft_snapshot_meta m = stfx_snap_meta(g_snap_index, g_snap_term);
	uint8_t *d = snap_data(3000, g_snap_index);
	int rc = storage_save_snapshot(s, &m, d, 3000);

	free(d);
	return rc;
}

/* Old: no snapshot (or the old one) and the log 1..100 of term 1.
 * New: the snapshot, and what the log rule leaves after it. */
static int judge_snapshot(const struct raft_boot *b)
{
	if (!b->has_snapshot || b->snap.index != g_snap_index) {
		assert_true(!b->has_snapshot || b->snap.index == 10);
		check_log(b, b->has_snapshot ? 11 : 1, 100, term1);
		return OLD_STATE;
	}
	assert_int_equal(b->snap.term, g_snap_term);
	assert_int_equal(b->snap_len, 3000);
	if (g_snap_term == 1)
		check_log(b, g_snap_index + 1, 100, term1);
	else
		assert_int_equal(b->n_entries, 0);
	return NEW_STATE;
}

static void snapshot_crash_steps(struct stfx *f, raft_index index,
    raft_term term)
{
	int seen[3] = { 0 };
	long n;

	g_snap_index = index;
	g_snap_term = term;
	n = crash_each_step(f, op_snapshot, judge_snapshot, seen);
	print_message("snapshot at %" PRIu64 "/%" PRIu64 ": %ld crash points, "
	              "%d recovered old, %d new\n",
	    index, term, n, seen[OLD_STATE], seen[NEW_STATE]);
	assert_true(seen[OLD_STATE] > 0);
	assert_true(seen[NEW_STATE] > 0);
}

static void build_log_with_old_snapshot(struct stfx *f)
{
	struct raft_snapshot_meta m = stfx_snap_meta(10, 1);
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	stfx_append(s, 1, 100, 1);
	assert_int_equal(storage_sync(s), 0);
	assert_int_equal(storage_save_snapshot(s, &m, "old", 3), 0);
	storage_close(s);
}

static void test_storage_snapshot_compaction_crash_at_each_step(void **state)
{
	struct stfx *f = *state;

	build_log_with_old_snapshot(f);
	snapshot_crash_steps(f, 60, 1);
}

/* The same snapshot in three steps (storage_snap_*). */
static int op_snapshot_beside(struct storage *s)
{
	struct raft_snapshot_meta m = stfx_snap_meta(g_snap_index, g_snap_term);
	uint8_t *d = snap_data(3000, g_snap_index);
	struct storage_snap *w;
	int rc = storage_snap_begin(s, &m, &w);

	if (rc == 0) {
		storage_snap_write(w, d, 3000);
		rc = storage_snap_finish(s, w);
	}
	free(d);
	return rc;
}

static void test_storage_snapshot_beside_log_crash_at_each_step(void **state)
{
	struct stfx *f = *state;
	int seen[3] = { 0 };
	long n;

	build_log_with_old_snapshot(f);
	g_snap_index = 60;
	g_snap_term = 1;
	n = crash_each_step(f, op_snapshot_beside, judge_snapshot, seen);
	print_message("snapshot beside the log: %ld crash points, %d "
	              "recovered old, %d new\n",
	    n, seen[OLD_STATE], seen[NEW_STATE]);
	assert_true(seen[OLD_STATE] > 0);
	assert_true(seen[NEW_STATE] > 0);
}

/* A failed write of the file poisons the store at finish, with the
 * write's message; the old snapshot and the whole log stay. */
static void test_storage_snapshot_beside_log_failed_write(void **state)
{
	struct stfx *f = *state;
	struct raft_snapshot_meta m = stfx_snap_meta(60, 1);
	struct storage_snap *w;
	struct raft_boot b;
	struct storage *s;

	build_log_with_old_snapshot(f);
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(storage_snap_begin(s, &m, &w), 0);
	f->ops = 0;
	f->fail_op = STORAGE_OP_SYNC;
	f->fail_at = 1;
	f->fail_rc = -EIO;
	assert_int_equal(storage_snap_write(w, "snap", 4), -EIO);
	assert_int_equal(storage_error(s), 0); /* not yet: the owner's */
	assert_int_equal(storage_snap_finish(s, w), -EIO);
	expect_poisoned(s, -EIO, "snap-");
	assert_non_null(strstr(storage_errmsg(s), "fdatasync"));
	storage_close(s);
	f->fail_at = 0;
	s = stfx_open(f, f->dir, &b);
	assert_int_equal(b.snap.index, 10);
	check_log(&b, 11, 100, term1);
	storage_close(s);
}


static void test_storage_snapshot_install_crash_at_each_step(void **state)
{
	struct stfx *f = *state;

	build_log_with_old_snapshot(f);
	snapshot_crash_steps(f, 60, 4); /* conflicts: the log goes */
	snapshot_crash_steps(f, 150, 4); /* beyond the log */
}

/* Truncation: 1..100 of term 1, then 40..44 of term 2. */
static int op_truncate(struct storage *s)
{
	struct raft_entry *e = stfx_make_entries(40, 5, 2);
	int rc = storage_append(s, e, 5);

	stfx_free_entries(e, 5);
	return rc != 0 ? rc : storage_sync(s);
}

static raft_term trunc2(raft_index i)
{
	return i < 40 ? 1 : 2;
}

static int judge_truncate(const struct raft_boot *b)
{
	uint64_t n = b->n_entries;

	/* Any prefix of the old log (never a mix), or the new log. */
	if (n == 44 && b->entries[43].term == 2) {
		check_log(b, 1, 44, trunc2);
		return NEW_STATE;
	}
	assert_true(n >= 39);
	if (n > 39 && b->entries[39].term == 2) {
		check_log(b, 1, n, trunc2); /* a prefix of the new log */
		return NEW_STATE;
	}
	check_log(b, 1, n, term1);
	return OLD_STATE;
}

/* 1..100 of term 1 in f->dir. */
static void build_log_100(struct stfx *f)
{
	struct raft_boot b;
	struct storage *s = stfx_open(f, f->dir, &b);

	stfx_append(s, 1, 100, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
}

static void test_storage_truncation_crash_at_each_step(void **state)
{
	struct stfx *f = *state;
	int seen[3] = { 0 };
	long n;

	build_log_100(f);
	n = crash_each_step(f, op_truncate, judge_truncate, seen);

	print_message("truncation: %ld crash points, %d old prefix, %d new\n",
	    n, seen[OLD_STATE], seen[NEW_STATE]);
	assert_true(n >= 5);
}

/* Appends that roll over several segments (each creation moves the
 * hard state's marks): 1..100 of term 1, then 101..200. */
static int op_append_rollover(struct storage *s)
{
	struct raft_entry *e = stfx_make_entries(101, 100, 1);
	int rc = storage_append(s, e, 100);

	stfx_free_entries(e, 100);
	return rc != 0 ? rc : storage_sync(s);
}

static int judge_rollover(const struct raft_boot *b)
{
	/* Never refused as damaged (open_dir fails the test), and a prefix
	 * of the new log that keeps what was durable before. */
	assert_true(b->n_entries >= 100);
	check_log(b, 1, b->n_entries, term1);
	return b->n_entries == 200 ? NEW_STATE : OLD_STATE;
}

static void test_storage_rollover_crash_at_each_step(void **state)
{
	struct stfx *f = *state;
	int seen[3] = { 0 };
	long n;

	build_log_100(f);
	n = crash_each_step(f, op_append_rollover, judge_rollover, seen);

	print_message("roll-over: %ld crash points, %d shorter, %d whole\n", n,
	    seen[OLD_STATE], seen[NEW_STATE]);
	assert_true(n >= 10);
}

/* ------------------------------------------------------------------------
 * Tests: scale
 * ------------------------------------------------------------------------ */

static void test_storage_many_segments_open_fast(void **state)
{
	struct stfx *f = *state;
	struct storage_stats st;
	struct raft_boot b;
	struct storage *s;
	double t0, t1;
	uint32_t per = 3;
	raft_index i = 1;

	f->opt.segment_size = 4096;
	s = stfx_open(f, f->dir, &b);
	t0 = now_ms();
	for (st.n_segments = 0; st.n_segments < 3000; i += per) {
		/* ~1.3 KiB entries: three per 4 KiB segment */
		struct raft_entry *e = stfx_make_entries(i, per, 1);

		for (uint32_t k = 0; k < per; k++) {
			e[k].data = realloc(e[k].data, 1300);
			memset(e[k].data, (int)(e[k].index & 0xff), 1300);
			e[k].len = 1300;
		}
		assert_int_equal(storage_append(s, e, per), 0);
		stfx_free_entries(e, per);
		storage_stats(s, &st);
	}
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	t1 = now_ms();
	s = stfx_open(f, f->dir, &b);
	double t2 = now_ms();
	storage_stats(s, &st);
	assert_true(st.n_segments >= 3000);
	assert_int_equal(b.n_entries, i - 1);
	assert_int_equal(b.entries[i - 2].data[0], (uint8_t)((i - 1) & 0xff));
	print_message("%" PRIu64 " segments, %" PRIu64 " entries: written in "
	              "%.0f ms, opened in %.1f ms\n",
	    st.n_segments, b.n_entries, t1 - t0, t2 - t1);
	storage_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage_crc32c_known_vectors),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, stfx_teardown)
		T(test_storage_fresh_dir_is_empty),
		T(test_storage_append_round_trip),
		T(test_storage_empty_and_large_entries),
		T(test_storage_hard_state_needs_sync),
		T(test_storage_group_commit_one_sync_per_batch),
		T(test_storage_truncate_suffix),
		T(test_storage_append_rejects_bad_batches),
		T(test_storage_snapshot_compacts_log),
		T(test_storage_snapshot_install_replaces_log),
		T(test_storage_snapshot_beside_log),
		T(test_storage_snapshot_beside_log_failed_write),
		T(test_storage_crash_at_every_byte_of_last_record),
		T(test_storage_torn_batch_with_lost_page),
		T(test_storage_bit_flips_detected),
		T(test_storage_damaged_files_refused),
		T(test_storage_wrong_cluster_or_member_refused),
		T(test_storage_second_process_locked_out),
		T(test_storage_failed_write_poisons),
		T(test_storage_failed_fsync_poisons_and_is_not_retried),
		T(test_storage_enospc_reported_as_such),
		T(test_storage_snapshot_compaction_crash_at_each_step),
		T(test_storage_snapshot_beside_log_crash_at_each_step),
		T(test_storage_snapshot_install_crash_at_each_step),
		T(test_storage_truncation_crash_at_each_step),
		T(test_storage_rollover_crash_at_each_step),
		T(test_storage_many_segments_open_fast),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
