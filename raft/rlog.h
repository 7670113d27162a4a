/*
 * rlog.h - the in-memory Raft log: entries after the last snapshot.
 *
 * Entries live in one array in index order; entries[0] has index
 * snap_index + 1.  The array owns every entry's data.  Appends are
 * amortised O(1); compaction (dropping a prefix) is a memmove of the
 * remaining descriptors, which is rare.  Pure: no I/O.
 *
 * Invariant: for every i, entries[i].index == snap_index + 1 + i, and terms
 * never decrease along the array nor fall below snap_term.
 */
#ifndef RAFTKV_RLOG_H
#define RAFTKV_RLOG_H

#include "raft/raft.h"

struct rlog {
	raft_index snap_index; /* last index covered by the snapshot */
	raft_term snap_term;
	struct raft_entry *entries;
	uint64_t n;
	uint64_t cap;
};

/* An empty log at index 0; rlog_close() frees every entry's data. */
void rlog_init(struct rlog *l);
void rlog_close(struct rlog *l);

static inline raft_index rlog_first_index(const struct rlog *l)
{
	return l->snap_index + 1;
}

static inline raft_index rlog_last_index(const struct rlog *l)
{
	return l->snap_index + l->n;
}

raft_term rlog_last_term(const struct rlog *l);

/* 0 and *@term, or RAFT_ESTALE (before the snapshot), -ERANGE (after last). */
int rlog_term(const struct rlog *l, raft_index index, raft_term *term);

/* Term at @index, or 0 when it is not known (compacted or beyond). */
raft_term rlog_term_or_zero(const struct rlog *l, raft_index index);

/* The entry at @index, or NULL if not held. */
struct raft_entry *rlog_get(const struct rlog *l, raft_index index);

/*
 * Append one entry whose index must be last+1.  Takes ownership of
 * @e->data on success.  Returns 0 or -ENOMEM (nothing taken).
 */
int rlog_append_owned(struct rlog *l, const struct raft_entry *e);

/* Append a copy of @e (index last+1).  Returns 0 or -ENOMEM. */
int rlog_append_copy(struct rlog *l, const struct raft_entry *e);

/* Drop every entry with index >= @index (no-op if beyond last). */
void rlog_truncate_from(struct rlog *l, raft_index index);

/* Drop every entry with index <= @index, which must be held or be the
 * snapshot boundary; the boundary becomes (@index, @term). */
void rlog_compact(struct rlog *l, raft_index index, raft_term term);

/* Drop everything: the log restarts after a snapshot at (@index, @term). */
void rlog_reset(struct rlog *l, raft_index index, raft_term term);

/*
 * The largest index <= @index whose term is <= @term (the snapshot
 * boundary if the search reaches it).  Used for fast backtracking: one
 * AppendEntries round trip per conflicting term, not per entry.
 */
raft_index rlog_find_conflict_by_term(const struct rlog *l, raft_index index,
    raft_term term);

/* Sum of payload bytes of entries in (@from, @to]. */
uint64_t rlog_payload_bytes(const struct rlog *l, raft_index from,
    raft_index to);

#endif
