/*
 * test_storage_failclosed.c - a damaged data directory is refused, a
 * crashed one is not (raft/storage/storage.c, "Damaged data directories").
 *
 * Each damage case edits a closed data directory the way an operator's
 * mistake or a bad restore would (deleting or shortening a file) and
 * checks that storage_open() fails with STORAGE_EDAMAGED and a message
 * naming the file; that with storage_options.recover it opens, logs the
 * loss and counts it; and that the directory it leaves opens cleanly.
 * The other tests check what must NOT be taken for damage: a torn tail
 * (a crash mid-append), a fresh directory, compaction, truncation, a
 * directory written by the version-1 format.
 *
 * Every test runs in its own temporary directory, removed by the teardown.
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
#include <unistd.h>

#include <cmocka.h>

#include "raft/le.h"
#include "raft/storage/crc32c.h"
#include "raft/storage/storage.h"
#include "tests/lib/stfx.h"

#define CLUSTER STFX_CLUSTER
#define MEMBER STFX_MEMBER

static int setup(void **state)
{
	return stfx_setup(state, "test_storage_fc");
}

/* ------------------------------------------------------------- helpers */

/* stfx_open() of f->dir, with the log lines of this open only. */
static struct storage *open_ok(struct stfx *f, struct raft_boot *boot)
{
	stfx_clear_logs(f);
	return stfx_open(f, f->dir, boot);
}

/* Open must fail with STORAGE_EDAMAGED and a message naming @file. */
static void expect_damaged(struct stfx *f, const char *file)
{
	struct storage *s = NULL;
	struct raft_boot b;
	char err[1024];
	int rc = storage_open(f->dir, CLUSTER, MEMBER, &f->opt, &s, &b, err,
	    sizeof err);

	if (rc == 0) {
		storage_close(s);
		fail_msg("%s: opened without error", file);
	}
	assert_null(s);
	if (rc != STORAGE_EDAMAGED)
		fail_msg("%s: expected STORAGE_EDAMAGED, got %d: %s", file, rc,
		    err);
	if (strstr(err, file) == NULL ||
	    strstr(err, "refusing to start") == NULL)
		fail_msg("message does not name %s: %s", file, err);
	print_message("refused: %s\n", err);
}

/*
 * Open with the recover option: it must open, count @n_damage findings
 * and log them; then it must open cleanly without it.  Returns the
 * boot log's last index after the recovering open.
 */
static raft_index recover_then_clean(struct stfx *f, uint64_t n_damage)
{
	struct storage_stats st;
	struct raft_boot b;
	struct storage *s;
	raft_index last;

	f->opt.recover = true;
	s = open_ok(f, &b);
	f->opt.recover = false;
	storage_stats(s, &st);
	assert_int_equal(st.damage, n_damage);
	assert_true(f->n_warn >= 1);
	assert_non_null(strstr(f->logs, "DAMAGED"));
	last = st.last_index;
	storage_close(s);
	s = open_ok(f, &b);
	storage_stats(s, &st);
	assert_int_equal(st.damage, 0);
	assert_int_equal(st.last_index, last);
	storage_close(s);
	return last;
}

static void remove_file(const struct stfx *f, const char *name)
{
	char p[600];

	stfx_path(f->dir, name, p, sizeof p);
	assert_int_equal(unlink(p), 0);
}

static bool exists(const struct stfx *f, const char *name)
{
	char p[600];

	stfx_path(f->dir, name, p, sizeof p);
	return stfx_exists(p);
}

/* Offset just after the @k-th record (0-based) of segment @name. */
static uint64_t record_end(const struct stfx *f, const char *name, size_t k)
{
	char p[600];
	uint64_t offs[256];

	assert_true(k < 255);
	stfx_path(f->dir, name, p, sizeof p);
	assert_int_equal(stfx_record_offsets(p, offs, k + 1), k + 1);
	return offs[k + 1];
}

/* A log 1..@n of term 1 over several 4 KiB segments, term/vote saved. */
static void build_log(struct stfx *f, raft_index n)
{
	struct raft_hard_state hs = { 1, MEMBER };
	struct raft_boot b;
	struct storage *s = open_ok(f, &b);

	assert_int_equal(storage_save_hard_state(s, &hs), 0);
	stfx_append(s, 1, (uint32_t)n, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
}

/* ------------------------------------------------------ damage: the log */

static void test_missing_newest_segment_refused(void **state)
{
	struct stfx *f = *state;
	raft_index firsts[64];
	char name[64];
	size_t n;

	build_log(f, 200);
	n = stfx_list_segments(f->dir, firsts, 64);
	assert_true(n >= 3);
	stfx_seg_name(firsts[n - 1], name, sizeof name);
	remove_file(f, name);
	expect_damaged(f, name);
	/* M1 (the segment) and M2 (the durable index) */
	assert_int_equal(recover_then_clean(f, 2), firsts[n - 1] - 1);
}

static void test_missing_only_segment_refused(void **state)
{
	struct stfx *f = *state;
	char name[64];

	f->opt.segment_size = 1 << 20;
	build_log(f, 50);
	stfx_seg_name(1, name, sizeof name);
	remove_file(f, name);
	expect_damaged(f, name);
	assert_int_equal(recover_then_clean(f, 2), 0); /* M1 and M2 */
}

/* Deleted after a restart: the member had appended to a new segment. */
static void test_missing_newest_segment_after_restart_refused(void **state)
{
	struct stfx *f = *state;
	struct raft_boot b;
	struct storage *s;
	char name[64];

	f->opt.segment_size = 1 << 20;
	build_log(f, 50);
	s = open_ok(f, &b);
	stfx_append(s, 51, 5, 1);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	stfx_seg_name(51, name, sizeof name);
	remove_file(f, name);
	expect_damaged(f, name);
}

static void test_newest_segment_cut_at_record_boundary_refused(void **state)
{
	struct stfx *f = *state;
	raft_index firsts[64];
	char name[64], p[600];
	size_t n;

	f->opt.prealloc = STORAGE_PREALLOC_ZERO;
	f->opt.segment_size = 1 << 20;
	build_log(f, 50);
	n = stfx_list_segments(f->dir, firsts, 64);
	assert_int_equal(n, 1);
	stfx_seg_name(firsts[0], name, sizeof name);
	stfx_path(f->dir, name, p, sizeof p);
	assert_int_equal(truncate(p, (off_t)record_end(f, name, 29)), 0);
	expect_damaged(f, name);
	assert_int_equal(recover_then_clean(f, 2), 30); /* size, M2 */
}

/*
 * Without preallocation a crash can leave a short file, so the size
 * proves nothing; the durable mark (moved by the term change) still
 * catches a cut below it.
 */
static void test_unpreallocated_segment_cut_below_durable_refused(void **state)
{
	struct stfx *f = *state;
	char name[64], p[600];

	f->opt.prealloc = STORAGE_PREALLOC_NONE;
	f->opt.segment_size = 1 << 20;
	build_log(f, 50); /* the hard state is synced after 1..50 */
	stfx_seg_name(1, name, sizeof name);
	stfx_path(f->dir, name, p, sizeof p);
	assert_int_equal(truncate(p, (off_t)record_end(f, name, 29)), 0);
	expect_damaged(f, name);
	assert_int_equal(recover_then_clean(f, 1), 30); /* M2 only */
}

/*
 * A segment shorter than its own header (truncated to nothing by a bad
 * copy or restore; a crash cannot: W2) is a segment cut short too:
 * refused as damage, and the recover option starts without it.
 */
static void test_segment_shorter_than_header_refused(void **state)
{
	struct stfx *f = *state;
	raft_index firsts[64];
	char name[64], p[600];
	size_t n;

	build_log(f, 200);
	n = stfx_list_segments(f->dir, firsts, 64);
	assert_true(n >= 3);
	stfx_seg_name(firsts[n - 1], name, sizeof name);
	stfx_path(f->dir, name, p, sizeof p);
	assert_int_equal(truncate(p, 0), 0);
	expect_damaged(f, name);
	/* the short segment, and M2 (the durable index) */
	assert_int_equal(recover_then_clean(f, 2), firsts[n - 1] - 1);
	assert_false(exists(f, name));
}

/* A first start syncs the parent directory, also when an interrupted
 * earlier start had already made the data directory (else a power loss
 * could take the directory, acknowledged entries and all, away). */
struct op_log {
	int n_parent_syncs;
};

static int count_parent_syncs(void *arg, enum storage_op op, const char *file)
{
	struct op_log *ol = arg;

	if (op == STORAGE_OP_DIRSYNC && strcmp(file, "..") == 0)
		ol->n_parent_syncs++;
	return 0;
}

static void test_creation_syncs_parent_dir(void **state)
{
	struct stfx *f = *state;
	struct op_log ol = { 0 };
	struct raft_boot b;
	struct storage *s;

	f->opt.fault = count_parent_syncs;
	f->opt.fault_arg = &ol;
	/* An earlier start made the directory, then crashed. */
	assert_int_equal(mkdir(f->dir, 0700), 0);
	s = open_ok(f, &b);
	storage_close(s);
	assert_int_equal(ol.n_parent_syncs, 1);
	s = open_ok(f, &b); /* initialised: no more */
	storage_close(s);
	assert_int_equal(ol.n_parent_syncs, 1);
	f->opt.fault = NULL;
}

/* A torn final record (a crash mid-append) is still cut off silently,
 * also past the durable mark and in a preallocated segment. */
static void test_torn_tail_still_repaired(void **state)
{
	struct stfx *f = *state;
	struct storage_stats st;
	struct raft_boot b;
	struct storage *s;
	char name[64], p[600];
	uint64_t from, to;
	uint8_t junk[64];

	f->opt.segment_size = 1 << 20;
	build_log(f, 50);
	s = open_ok(f, &b);
	stfx_append(s, 51, 10, 1); /* no hard state change: durable stays */
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	stfx_seg_name(51, name, sizeof name);
	from = record_end(f, name, 8); /* the last record, 60 */
	to = record_end(f, name, 9);
	memset(junk, 0xa5, sizeof junk);
	stfx_path(f->dir, name, p, sizeof p);
	stfx_write_at(p, from + (to - from) / 2, junk, (size_t)(to - from) / 2);
	s = open_ok(f, &b);
	storage_stats(s, &st);
	assert_int_equal(st.last_index, 59);
	assert_int_equal(st.damage, 0);
	assert_non_null(strstr(f->logs, "torn record"));
	assert_null(strstr(f->logs, "DAMAGED"));
	storage_close(s);
}

/* ------------------------------------------- damage: the small files */

static void test_missing_hardstate_refused(void **state)
{
	struct stfx *f = *state;
	struct raft_boot b;
	struct storage *s;

	build_log(f, 20);
	remove_file(f, "hardstate");
	expect_damaged(f, "hardstate");
	f->opt.recover = true;
	s = open_ok(f, &b);
	f->opt.recover = false;
	assert_int_equal(b.hs.vote, 0);
	assert_int_equal(b.hs.term, 1); /* the newest term the log knows */
	assert_int_equal(b.n_entries, 20);
	storage_close(s);
	s = open_ok(f, &b);
	assert_int_equal(b.hs.term, 1);
	storage_close(s);
}

/* meta survives, everything else is gone: not a fresh directory. */
static void test_only_meta_left_refused(void **state)
{
	struct stfx *f = *state;
	raft_index firsts[64];
	char name[64];
	size_t n;

	build_log(f, 100);
	n = stfx_list_segments(f->dir, firsts, 64);
	for (size_t k = 0; k < n; k++) {
		stfx_seg_name(firsts[k], name, sizeof name);
		remove_file(f, name);
	}
	remove_file(f, "hardstate");
	expect_damaged(f, "hardstate");
}

static void test_missing_meta_refused(void **state)
{
	struct stfx *f = *state;

	build_log(f, 20);
	remove_file(f, "meta");
	expect_damaged(f, "meta");
	assert_int_equal(recover_then_clean(f, 1), 20);
	assert_true(exists(f, "meta"));
}

/* ------------------------------------------------ damage: snapshots */

/*
 * A log 1..@n, a snapshot at @index, then its file deleted: refused.
 * Returns the number of segments the snapshot left.
 */
static uint64_t lose_snapshot(struct stfx *f, raft_index n, raft_index index)
{
	struct raft_snapshot_meta m = stfx_snap_meta(index, 1);
	struct storage_stats st;
	struct raft_boot b;
	struct storage *s;
	char name[64];

	build_log(f, n);
	s = open_ok(f, &b);
	assert_int_equal(storage_save_snapshot(s, &m, "state", 5), 0);
	storage_stats(s, &st);
	storage_close(s);
	snprintf(name, sizeof name, "snap-%020" PRIu64 ".snap", index);
	remove_file(f, name);
	expect_damaged(f, name);
	return st.n_segments;
}

/* The log was compacted away entirely: the snapshot is all there is. */
static void test_missing_snapshot_refused(void **state)
{
	assert_int_equal(lose_snapshot(*state, 100, 100), 0);
}

/* Compacted in part: the log left starts after the lost snapshot. */
static void test_missing_snapshot_with_log_refused(void **state)
{
	assert_true(lose_snapshot(*state, 200, 120) > 0);
	/* The recover option keeps nothing it cannot chain: the segments
	 * are set aside as *.lost, the member starts empty. */
	/* findings: the snapshot, the gap, M2 */
	assert_int_equal(recover_then_clean(*state, 3), 0);
}

/* ------------------------------------------------ not damage */

static void test_fresh_dir_reopens(void **state)
{
	struct stfx *f = *state;
	struct raft_boot b;
	struct storage *s;

	s = open_ok(f, &b); /* first start: no recover option */
	storage_close(s);
	assert_true(exists(f, "meta"));
	assert_true(exists(f, "hardstate"));
	s = open_ok(f, &b); /* and a restart without any write */
	assert_int_equal(b.n_entries, 0);
	assert_int_equal(b.hs.term, 0);
	storage_close(s);
	/* A creation interrupted after hardstate, before meta. */
	remove_file(f, "meta");
	s = open_ok(f, &b);
	storage_close(s);
	assert_true(exists(f, "meta"));
}

/*
 * A first start that stops before hardstate.tmp or meta.tmp is renamed
 * into place leaves the .tmp behind: the next start must create the
 * directory as if new, not fail on the leftover it has just consumed.
 */
static void test_interrupted_creation_leftover_tmp_reopens(void **state)
{
	static const char *const tmps[] = { "hardstate.tmp", "meta.tmp" };
	struct stfx *f = *state;
	struct raft_boot b;
	struct storage *s = NULL;
	char err[1024];

	for (long k = 0; k < 2; k++) {
		stfx_rm_rf(f->dir);
		/* creation renames hardstate.tmp, then meta.tmp */
		f->ops = 0;
		f->fail_op = STORAGE_OP_RENAME;
		f->fail_at = k + 1;
		f->fail_rc = -EIO;
		assert_int_equal(storage_open(f->dir, CLUSTER, MEMBER, &f->opt,
		                     &s, &b, err, sizeof err),
		    -EIO);
		f->fail_at = 0;
		assert_non_null(strstr(err, tmps[k]));
		assert_true(exists(f, tmps[k]));
		s = open_ok(f, &b);
		assert_int_equal(b.n_entries, 0);
		stfx_append(s, 1, 3, 1);
		assert_int_equal(storage_sync(s), 0);
		storage_close(s);
		assert_false(exists(f, tmps[k]));
		s = open_ok(f, &b);
		assert_int_equal(b.n_entries, 3);
		storage_close(s);
	}
}

static void test_compaction_and_truncation_are_not_damage(void **state)
{
	struct stfx *f = *state;
	struct raft_snapshot_meta m = stfx_snap_meta(150, 1);
	struct raft_hard_state hs = { 2, MEMBER };
	struct storage_stats st0, st1;
	struct raft_boot b;
	struct storage *s;

	build_log(f, 200);
	s = open_ok(f, &b);
	storage_stats(s, &st0);
	assert_int_equal(storage_save_snapshot(s, &m, "state", 5), 0);
	storage_stats(s, &st1);
	assert_true(st1.n_segments < st0.n_segments);
	storage_close(s);
	s = open_ok(f, &b);
	assert_int_equal(b.n_entries, 50);
	assert_int_equal(f->n_warn, 0);
	/* A conflicting suffix replaced by a shorter one, below durable. */
	assert_int_equal(storage_save_hard_state(s, &hs), 0);
	stfx_append(s, 170, 3, 2);
	assert_int_equal(storage_sync(s), 0);
	storage_close(s);
	s = open_ok(f, &b);
	assert_int_equal(b.entries[b.n_entries - 1].index, 172);
	assert_int_equal(f->n_warn, 0);
	storage_close(s);
	/* A snapshot the log disagrees with discards it (InstallSnapshot). */
	m = stfx_snap_meta(160, 3);
	s = open_ok(f, &b);
	assert_int_equal(storage_save_snapshot(s, &m, "other", 5), 0);
	storage_close(s);
	s = open_ok(f, &b);
	assert_int_equal(b.n_entries, 0);
	assert_int_equal(b.snap.index, 160);
	assert_int_equal(f->n_warn, 0);
	storage_close(s);
}

/*
 * The known leak: segment A holds 1..30, a truncation at 20 starts
 * segment B; A's stale tail 20..30 must not keep A (and every later
 * segment) alive until the snapshot passes 30.
 */
static void test_superseded_tail_does_not_pin_segments(void **state)
{
	struct stfx *f = *state;
	struct raft_snapshot_meta m = stfx_snap_meta(25, 2);
	struct raft_boot b;
	struct storage *s;
	char name[64];

	f->opt.segment_size = 1 << 20;
	s = open_ok(f, &b);
	stfx_append(s, 1, 30, 1);
	stfx_append(s, 20, 10, 2); /* supersedes 20..30 in a new segment */
	assert_int_equal(storage_sync(s), 0);
	stfx_seg_name(1, name, sizeof name);
	assert_true(exists(f, name));
	assert_int_equal(storage_save_snapshot(s, &m, "state", 5), 0);
	assert_false(exists(f, name));
	storage_close(s);
	s = open_ok(f, &b);
	assert_int_equal(b.n_entries, 4); /* 26..29 */
	storage_close(s);
}

/* Rewrite a small file in the version-1 format (40 bytes, two fields). */
static void write_v1_small(struct stfx *f, const char *name, const char *magic,
    uint64_t a, uint64_t c)
{
	uint8_t buf[40];
	char p[600];

	memset(buf, 0, sizeof buf);
	memcpy(buf, magic, 8);
	le_put32(buf + 8, 1);
	le_put64(buf + 16, a);
	le_put64(buf + 24, c);
	le_put32(buf + 32, crc32c(0, buf, 32));
	stfx_path(f->dir, name, p, sizeof p);
	stfx_write_file(p, buf, sizeof buf);
}

/* Rewrite a segment header as version 1 (no flags). */
static void make_v1_segment(struct stfx *f, const char *name)
{
	uint8_t h[64];
	char p[600];

	stfx_path(f->dir, name, p, sizeof p);
	stfx_read_at(p, 0, h, sizeof h);
	le_put32(h + 8, 1);
	le_put32(h + 48, 0);
	le_put32(h + 60, crc32c(0, h, 60));
	stfx_write_at(p, 0, h, sizeof h);
}

static uint32_t version_of(struct stfx *f, const char *name, uint64_t *size)
{
	uint8_t h[12];
	char p[600];

	stfx_path(f->dir, name, p, sizeof p);
	*size = stfx_file_size(p);
	stfx_read_at(p, 0, h, sizeof h);
	return le_get32(h + 8);
}

static void test_old_format_dir_opens_and_is_upgraded(void **state)
{
	struct stfx *f = *state;
	raft_index firsts[64];
	struct raft_boot b;
	struct storage *s;
	char name[64];
	uint64_t size;
	size_t n;

	build_log(f, 100);
	n = stfx_list_segments(f->dir, firsts, 64);
	for (size_t k = 0; k < n; k++) {
		stfx_seg_name(firsts[k], name, sizeof name);
		make_v1_segment(f, name);
	}
	write_v1_small(f, "meta", "RAFTKVMD", CLUSTER, MEMBER);
	write_v1_small(f, "hardstate", "RAFTKVHS", 1, MEMBER);
	s = open_ok(f, &b);
	assert_int_equal(b.n_entries, 100);
	assert_int_equal(b.hs.term, 1);
	assert_int_equal(b.hs.vote, MEMBER);
	assert_non_null(strstr(f->logs, "upgraded"));
	storage_close(s);
	assert_int_equal(version_of(f, "meta", &size), 2);
	assert_int_equal(version_of(f, "hardstate", &size), 2);
	assert_int_equal(size, 64);
	/* From now on it is checked in full. */
	stfx_seg_name(firsts[n - 1], name, sizeof name);
	remove_file(f, name);
	expect_damaged(f, name);
}

/* Version 1 created no hardstate until the first term: meta alone is a
 * valid old directory. */
static void test_old_format_meta_only_opens(void **state)
{
	struct stfx *f = *state;
	struct raft_boot b;
	struct storage *s;

	assert_int_equal(mkdir(f->dir, 0755), 0);
	write_v1_small(f, "meta", "RAFTKVMD", CLUSTER, MEMBER);
	s = open_ok(f, &b);
	assert_int_equal(b.n_entries, 0);
	storage_close(s);
	assert_true(exists(f, "hardstate"));
	s = open_ok(f, &b);
	storage_close(s);
}

/* The marks cost no sync on the append path: one fdatasync per batch. */
static void test_group_commit_still_one_sync(void **state)
{
	struct stfx *f = *state;
	struct raft_hard_state hs = { 2, MEMBER };
	struct storage_stats st0, st1;
	struct raft_boot b;
	struct storage *s;

	f->opt.segment_size = 1 << 20;
	s = open_ok(f, &b);
	stfx_append(s, 1, 1, 1);
	assert_int_equal(storage_sync(s), 0);
	for (int k = 0; k < 3; k++) {
		storage_stats(s, &st0);
		stfx_append(s, 2 + 16 * (raft_index)k, 16, 1);
		assert_int_equal(storage_sync(s), 0);
		storage_stats(s, &st1);
		assert_int_equal(st1.fsyncs - st0.fsyncs, 1);
	}
	/* A term change: the log's sync plus the hard state's own two. */
	storage_stats(s, &st0);
	assert_int_equal(storage_save_hard_state(s, &hs), 0);
	stfx_append(s, 50, 4, 2);
	assert_int_equal(storage_sync(s), 0);
	storage_stats(s, &st1);
	assert_int_equal(st1.fsyncs - st0.fsyncs, 3);
	storage_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, stfx_teardown)
		T(test_missing_newest_segment_refused),
		T(test_missing_only_segment_refused),
		T(test_missing_newest_segment_after_restart_refused),
		T(test_newest_segment_cut_at_record_boundary_refused),
		T(test_unpreallocated_segment_cut_below_durable_refused),
		T(test_segment_shorter_than_header_refused),
		T(test_creation_syncs_parent_dir),
		T(test_torn_tail_still_repaired),
		T(test_missing_hardstate_refused),
		T(test_only_meta_left_refused),
		T(test_missing_meta_refused),
		T(test_missing_snapshot_refused),
		T(test_missing_snapshot_with_log_refused),
		T(test_fresh_dir_reopens),
		T(test_interrupted_creation_leftover_tmp_reopens),
		T(test_compaction_and_truncation_are_not_damage),
		T(test_superseded_tail_does_not_pin_segments),
		T(test_old_format_dir_opens_and_is_upgraded),
		T(test_old_format_meta_only_opens),
		T(test_group_commit_still_one_sync),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
