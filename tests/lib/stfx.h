/*
 * stfx.h - the storage test fixture shared by tests/unit/test_storage.c
 * and tests/unit/test_storage_failclosed.c ("stfx": storage test fixture).
 *
 * A temporary directory per test (removed by the teardown), options with
 * 4 KiB segments, a log sink that keeps every line, a fault hook that
 * fails the n-th I/O operation, and the helpers both suites use to write
 * a log, open a data directory and look at or edit its files.  Every
 * helper fails the running cmocka test on an unexpected error.
 */
#ifndef RAFTKV_TESTS_STFX_H
#define RAFTKV_TESTS_STFX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"
#include "raft/storage/storage.h"

#define STFX_CLUSTER 77
#define STFX_MEMBER 3

struct stfx {
	char root[256]; /* removed by the teardown */
	char dir[300]; /* the data directory under test: root/data */
	struct storage_options opt;
	char logs[8192]; /* lines since stfx_clear_logs(), '\n'-ended */
	char last_log[1024];
	int n_logs, n_warn;
	/* fault hook: fail operation number fail_at (1-based) with fail_rc,
	 * counting only operations of type fail_op (0: any). */
	long ops;
	long fail_at;
	int fail_rc;
	enum storage_op fail_op;
	long syncs_after_fail; /* STORAGE_OP_SYNC seen after it fired */
};

/* cmocka setup: a struct stfx in *@state, its root $TMPDIR/@name.XXXXXX;
 * opt = defaults, 4 KiB segments, the log sink and the fault hook. */
int stfx_setup(void **state, const char *name);
/* cmocka teardown: removes the root and frees the fixture. */
int stfx_teardown(void **state);
void stfx_clear_logs(struct stfx *f);

void stfx_rm_rf(const char *path);
/* Copy the flat directory @src to @dst (replacing it). */
void stfx_copy_dir(const char *src, const char *dst);

/* Entry @index has a deterministic payload of 20..119 bytes. */
uint32_t stfx_payload_len(raft_index index);
uint8_t stfx_payload_byte(raft_index index, raft_term term, uint32_t j);
/* Entries [first, first + n) of term @term; free with stfx_free_entries(). */
struct raft_entry *stfx_make_entries(raft_index first, uint32_t n,
    raft_term term);
void stfx_free_entries(struct raft_entry *e, uint32_t n);
/* storage_append() of stfx_make_entries(), which must succeed. */
void stfx_append(struct storage *s, raft_index first, uint32_t n,
    raft_term term);
struct raft_snapshot_meta stfx_snap_meta(raft_index index, raft_term term);

/* storage_open(@dir) with f->opt, which must succeed. */
struct storage *stfx_open(struct stfx *f, const char *dir,
    struct raft_boot *boot);

void stfx_path(const char *dir, const char *name, char *buf, size_t len);
/* "wal-<20 digits>.seg" */
void stfx_seg_name(raft_index first, char *buf, size_t len);
bool stfx_exists(const char *path);
uint64_t stfx_file_size(const char *path);
/* First indexes of the segments in @dir, sorted; returns how many. */
size_t stfx_list_segments(const char *dir, raft_index *firsts, size_t max);
/* Offsets of the first @max records of a segment, and in offs[n] where
 * the last of them ends; returns n.  @offs has room for @max + 1. */
size_t stfx_record_offsets(const char *path, uint64_t *offs, size_t max);
/* Exactly @len bytes at @off of an existing file. */
void stfx_read_at(const char *path, uint64_t off, void *buf, size_t len);
void stfx_write_at(const char *path, uint64_t off, const void *buf, size_t len);
/* Create or replace the file @path with @len bytes. */
void stfx_write_file(const char *path, const void *buf, size_t len);

#endif
