/*
 * persist.h - the member's persister: the thread that owns struct storage
 * after start-up and makes raft_ready batches durable, with group commit
 * (see persist.c).
 *
 * Dependency: the loop (node.c, node_ready.c) -> persister.  The persister
 * includes no loop or RSM header; it hands finished batches back through
 * the persist_done_fn it was created with.
 */
#ifndef RAFTKV_PERSIST_H
#define RAFTKV_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/member/mbox.h"
#include "raft/raft.h"
#include "raft/storage/storage.h"

/* One raft_ready batch's persistence, copied out of the core (the
 * snapshot's bytes shared by reference, not copied). */
struct persist_job {
	struct mbox_item item;
	struct persist_job *next; /* chain handed back to the loop */
	bool must_persist;
	bool hs_changed;
	struct raft_hard_state hs;
	struct raft_entry *entries;
	uint32_t n_entries;
	uint8_t *blob; /* the entries' data, one block */
	bool has_snapshot;
	bool snap_saved; /* set by the persister: the snapshot is
	                             durable (or older than the one held) */
	struct raft_snapshot_meta snap;
	struct raft_snap_buf *snap_buf; /* a reference of the job's own */
	struct raft_persist_token token;
	struct raft_msg *after; /* msgs_after_persist (no entries, no chunks) */
	uint32_t n_after;
	bool internal; /* made by the persister, not queued by the loop:
	                  it only says snap_saved (a snapshot written
	                  beside the log is now installed) */
};

/* Free a job and what it owns (its snapshot reference dropped); NULL is
 * fine. */
void persist_job_free(struct persist_job *j);

/* Free a chain handed back (persist_job.next), oldest first. */
void persist_job_free_chain(struct persist_job *j);

/*
 * Called on the persister thread with every job of one group commit,
 * oldest first, once they are durable.  Takes ownership of @chain on 0;
 * nonzero (the loop is stopping) and the persister frees it.
 */
typedef int (*persist_done_fn)(void *arg, struct persist_job *chain);

struct persist;

/* Create the persister over the open @st (ownership passes: closed by
 * persist_free()).  No thread yet.  0, -ENOMEM or -errno (mailbox). */
int persist_new(struct storage *st, persist_done_fn done, void *arg,
    struct persist **out);

/* Start the thread.  0 or -errno. */
int persist_start(struct persist *p);

/* Queue @j (ownership passes on 0).  -EPIPE when stopping (the caller
 * keeps @j). */
int persist_queue(struct persist *p, struct persist_job *j);

/*
 * Write and sync a small batch on the calling (loop) thread, the entries
 * borrowed from the core.  Only while no job is queued or at the
 * persister (every one was handed back), so the storage still has one
 * user at a time and batches stay in order.  A failure is fatal.
 */
void persist_inline(struct persist *p, const struct raft_ready *rd);

/*
 * Is a snapshot file being written beside the log?  A compaction's
 * snapshot (the log holds its last entry) is written by a thread of its
 * own, so that the log's appends and syncs do not wait behind it; the
 * job that carried it is handed back without snap_saved, and once the
 * file is complete, synced and installed (storage_snap_finish), an
 * internal job says snap_saved.  Meanwhile the persister thread may use
 * the storage at any time: persist_inline() must not be called.  Any
 * thread.
 */
bool persist_snap_busy(struct persist *p);

/* Stop and join the thread (what is queued stays queued). */
void persist_join(struct persist *p);

/* Free the jobs still queued, close the storage, free.  NULL is fine. */
void persist_free(struct persist *p);

struct persist_stats {
	uint64_t log_bytes; /* raft state size on disk */
	uint64_t syncs;
	uint64_t fsyncs;
	uint64_t entries_persisted;
};

/* The counters as last published (any thread, lock-free). */
void persist_stats(struct persist *p, struct persist_stats *st);

/* persist_stats().log_bytes alone. */
uint64_t persist_log_bytes(struct persist *p);

#endif
