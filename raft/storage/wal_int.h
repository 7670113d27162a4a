/*
 * wal_int.h - what wal.c (writing) and wal_recover.c (recovery) share:
 * the on-disk constants, the in-memory state and a few helpers.  The
 * format and its invariants W1-W6 are described at the top of wal.c.
 */
#ifndef RAFTKV_WAL_INT_H
#define RAFTKV_WAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/storage/crc32c.h"
#include "raft/storage/diskio.h"
#include "raft/storage/wal.h"

#define SEG_MAGIC "RAFTKVWL"
#define SEG_VERSION 2 /* 1: no flags (read, never written) */
#define SEG_HDR 64
#define SEG_FLAG_FULLSIZE 1u /* preallocated: the file is cap bytes */
#define REC_HDR 9
#define REC_ENTRY 1
#define ENTRY_FIXED 17 /* index, term, entry type */
#define REC_MAX_LEN (1u << 30)
#define SEG_NAME_MAX 40

struct seg {
	raft_index first;
	raft_index last_rec; /* index of its last record (first - 1: none) */
	uint64_t end; /* offset after its last record */
	uint64_t cap; /* capacity, header included */
};

/* Call cfg.save_mark and remember what is durable. */
int wal_save_mark(struct wal *w, raft_index seg, raft_index durable);

struct ent {
	raft_term term;
	uint32_t bytes; /* record size on disk */
};

struct wal {
	struct diskio *io;
	struct wal_config cfg;
	struct seg *segs; /* sorted by first index */
	size_t n_segs, cap_segs;
	int fd; /* the open segment (segs[n_segs - 1]), or -1 */
	bool dirty; /* written since the last fdatasync */
	raft_index snap_index;
	raft_term snap_term;
	struct wal_mark mark; /* the marks last made durable */
	raft_index first, last; /* live log; empty when last < first */
	struct ent *ents; /* ents[head + i - first] for live index i */
	size_t head, cap_ents;
	uint64_t live_bytes;
	uint8_t *wbuf;
	size_t wlen, wcap;
	/* recovered entries, until wal_release_boot() */
	struct raft_entry *boot;
	uint64_t n_boot;
	uint8_t **bufs;
	size_t n_bufs;
};

/* CRC of the record at @p with body length @len: len || type || body. */
static inline uint32_t wal_rec_crc(const uint8_t *p, uint32_t len)
{
	return crc32c(crc32c(0, p, 4), p + 8, 1 + (size_t)len);
}

/* "wal-<first, 20 digits>.seg", with ".tmp" appended when @tmp. */
void wal_seg_name(raft_index first, char *buf, size_t len, bool tmp);
/* Append @sg to w->segs.  Returns 0 or -ENOMEM (no message). */
int wal_push_seg(struct wal *w, const struct seg *sg);
/* Append a live entry after w->last.  Returns 0 or -ENOMEM (no message). */
int wal_push_ent(struct wal *w, raft_term term, uint32_t bytes);
/* W6: delete every segment, newest first, each deletion made durable. */
int wal_delete_all(struct wal *w);
/* W6: delete the segments covered by the snapshot, oldest first. */
int wal_delete_covered(struct wal *w);

#endif
