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

struct wal_config {
	uint64_t cluster_id;
	raft_id member_id;
	uint64_t segment_size;
	enum storage_prealloc prealloc;
};

struct wal;

/*
 * Recover the log in @io's directory, given the snapshot already loaded
 * (@snap_index 0: none).  Removes interrupted segment creations, cuts a
 * torn tail off the newest segment (logged), finishes an interrupted
 * snapshot cleanup, and holds the live entries for wal_boot_entries().
 * Segments are only read here; appends always go to a new segment.
 */
int wal_open(struct diskio *io, const struct wal_config *cfg,
    raft_index snap_index, raft_term snap_term, struct wal **out);

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

/* Fill the log fields of @st. */
void wal_stats(const struct wal *w, struct storage_stats *st);

void wal_close(struct wal *w); /* accepts NULL; nothing is synced */

#endif
