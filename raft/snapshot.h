/*
 * snapshot.h - the core's side of snapshots (snapshot.c, Raft paper 7):
 * the leader's chunked InstallSnapshot transfers and the follower's
 * reception and installation.  Compaction itself is raft_compact()
 * (raft.h).
 *
 * Internal to the pure core (the .c files directly under raft/).  Chunks
 * are queued by offset (raft_send) and point into r->snap_data only when
 * raft_ready() hands them out; an installed snapshot reaches the driver
 * through raft_ready() (has_snapshot to persist, snapshot_install to
 * restore).
 */
#ifndef RAFTKV_SNAPSHOT_H
#define RAFTKV_SNAPSHOT_H

#include "raft/raft.h"

struct progress;

/*
 * Make @len bytes at @data (copied) the snapshot's bytes, replacing any
 * held.  For raft_new()'s boot snapshot.  0 or -ENOMEM (nothing changed).
 */
int snapshot_set_copy(struct raft *r, const void *data, uint64_t len);

/* Drop the snapshot's bytes and a transfer being received (raft_free). */
void snapshot_free(struct raft *r);

/*
 * Leader only: start sending our current snapshot to @pr's follower (its
 * next entry was compacted away): @pr enters SNAPSHOT at offset 0 and the
 * first chunk is queued.  Does nothing if we hold no snapshot.  Returns 0
 * or -ENOMEM (@pr is in SNAPSHOT; snapshot_tick resends).
 */
int snapshot_send(struct raft *r, struct progress *pr);

/*
 * Leader only, every heartbeat period, for @pr in SNAPSHOT (others are
 * ignored): restart the transfer if we compacted again since it began;
 * resend the chunk at the acknowledged offset after more than two
 * heartbeat periods without progress (a chunk or its answer was lost).
 * Returns 0 or -ENOMEM.
 */
int snapshot_tick(struct raft *r, struct progress *pr);

/*
 * SNAPSHOT chunk @m, in any role (term already checked): makes us follower
 * of m->from.  A snapshot at or below our commit index is answered at
 * once (APPEND_RESP with our commit).  Chunks must arrive in order from
 * offset 0: a chunk of another snapshot not at 0, or a gap, is rejected
 * with the offset to resume from; a duplicate is acknowledged.  The last
 * chunk installs: if our log holds the snapshot's last entry only commit
 * advances, else the log is replaced by the snapshot (truncated_from is
 * set, the snapshot is handed out to persist and restore) and the
 * APPEND_RESP that moves the leader on is queued after persist.  Chunk
 * bytes are copied into a buffer of the snapshot's whole size, taken at
 * offset 0, which the installed snapshot then owns as it is (no copy of
 * the whole).  Returns 0 or -ENOMEM (the chunk is not taken; the leader
 * resends it).
 */
int snapshot_handle_chunk(struct raft *r, const struct raft_msg *m);

/*
 * SNAPSHOT_RESP @m from voter number @from_idx.  Ignored unless leader
 * and @from_idx's progress is in SNAPSHOT for that snapshot.  A rejection
 * resumes at the offset it names; an acknowledgement advances the offset
 * and queues the next chunk.  After the last chunk, the follower's
 * APPEND_RESP (not this) moves its progress on.  Returns 0 or -ENOMEM.
 */
int snapshot_handle_resp(struct raft *r, uint32_t from_idx,
    const struct raft_msg *m);

#endif
