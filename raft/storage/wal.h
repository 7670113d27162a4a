/*
 * wal.h - the Raft log on disk: a directory of CRC32C-checked segment files.
 *
 * Used by storage.c only; the format and the recovery rules are described
 * at the top of wal.c.  Errors are negative errno values, STORAGE_ECORRUPT
 * or STORAGE_EFOREIGN, with the message in the diskio error buffer.  After
 * any error other than -EINVAL the wal must not be used again except to
 * wal_close() it (storage.c poisons).
 */
#ifndef RAFTKV_WAL_H
#define RAFTKV_WAL_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/storage/diskio.h"
#include "raft/raft.h"
#include "raft/storage/storage.h"

/*
 * The log's tail marks, kept durable in the hard state file (storage.c)
 * so that recovery can tell a log that lost its end from one that never
 * had it.  Invariants (every crash state keeps them; wal.c says how):
 *   M1. seg > snapshot index  =>  wal-<seg>.seg exists.
 *   M2. max(snapshot index, last log index) >= durable.
 * 0 in either field: nothing known (a fresh or an old-format directory).
 */
struct wal_mark {
	raft_index seg; /* first index of the newest segment created */
	raft_index durable; /* the log reached this index, fdatasynced */
};

/* Make @m durable (write, fdatasync, rename, fsync the directory) before
 * returning 0; a negative errno (with the message) poisons. */
typedef int (*wal_mark_fn)(void *arg, const struct wal_mark *m);

struct wal_config {
	uint64_t cluster_id;
	raft_id member_id;
	uint64_t segment_size;
	enum storage_prealloc prealloc;
	bool recover; /* storage_options.recover */
	wal_mark_fn save_mark; /* never NULL */
	void *mark_arg;
};

struct wal;

/*
 * Recover the log in @io's directory, given the snapshot already loaded
 * (@snap_index 0: none) and the marks last made durable (@stored).
 * Removes interrupted segment creations, cuts a torn tail off the newest
 * segment (logged), finishes an interrupted snapshot cleanup, fdatasyncs
 * the newest segment (what it holds may still be only in the page cache)
 * and holds the live entries for wal_boot_entries().  Segments are only
 * read here; appends always go to a new segment.
 *
 * Damage (a missing newest segment, a preallocated segment cut short, a
 * log ending before @stored->durable) returns STORAGE_EDAMAGED; with
 * cfg->recover it is logged instead, *@n_damage counts it, and the
 * directory is repaired (a short segment is extended with zeros, one
 * shorter than its header and those after a gap are renamed <name>.lost).
 */
int wal_open(struct diskio *io, const struct wal_config *cfg,
    raft_index snap_index, raft_term snap_term, const struct wal_mark *stored,
    uint64_t *n_damage, struct wal **out);

/* The marks as of now: the newest segment, and the last index, which is
 * durable only when called right after a sync. */
void wal_current_mark(const struct wal *w, struct wal_mark *m);
/* The caller (storage.c) made @m durable itself. */
void wal_mark_saved(struct wal *w, const struct wal_mark *m);

/* The live entries recovered by wal_open() (borrowed until release). */
void wal_boot_entries(const struct wal *w, const struct raft_entry **entries,
    uint64_t *n);
void wal_release_boot(struct wal *w);

/* Whether wal_append() would accept the batch: 0 or -EINVAL (not
 * contiguous, a gap, covered by the snapshot, term 0, data missing). */
int wal_check_append(const struct wal *w, const struct raft_entry *entries,
    uint32_t n);

/* See storage_append().  -EINVAL for a caller bug (nothing written). */
int wal_append(struct wal *w, const struct raft_entry *entries, uint32_t n);

/* fdatasync the open segment if written since the last sync; *@synced
 * tells whether a sync was needed. */
int wal_sync(struct wal *w, bool *synced);

/*
 * A snapshot at @index/@term is durable: keep the entries after it if the
 * log agrees with it at @index, else discard the whole log; delete the
 * segments this makes useless.
 */
int wal_compact(struct wal *w, raft_index index, raft_term term);

/* Does the log hold the entry at @index, with @term? */
bool wal_holds(const struct wal *w, raft_index index, raft_term term);

/* Fill the log fields of @st. */
void wal_stats(const struct wal *w, struct storage_stats *st);

void wal_close(struct wal *w); /* accepts NULL; nothing is synced */

#endif
