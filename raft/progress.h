/*
 * progress.h - the leader's view of one follower (etcd-raft's Progress).
 *
 * States and the transitions (function performing each):
 *
 *   PROBE ----(append accepted)-------------> REPLICATE   progress_become_replicate
 *   REPLICATE --(append rejected)-----------> PROBE       progress_become_probe
 *   PROBE/REPLICATE --(next compacted away)-> SNAPSHOT    progress_become_snapshot
 *   SNAPSHOT --(follower holds the snapshot)> PROBE       progress_become_probe
 *
 * PROBE: one AppendEntries at a time (probe_sent pauses until an answer or
 * the next heartbeat response), to find where the logs agree.
 * REPLICATE: pipelining; next is advanced optimistically and the window of
 * unacknowledged appends is bounded in count and bytes (the inflight ring).
 * SNAPSHOT: an InstallSnapshot transfer in chunks; snap_offset is the byte
 * count the follower has acknowledged.
 */
#ifndef RAFTKV_PROGRESS_H
#define RAFTKV_PROGRESS_H

#include <stdbool.h>

#include "raft/raft.h"

enum progress_state {
	PROGRESS_PROBE = 0,
	PROGRESS_REPLICATE = 1,
	PROGRESS_SNAPSHOT = 2,
};

struct inflight {
	raft_index last; /* last index carried by the append */
	uint64_t bytes;
};

struct progress {
	raft_id id;
	enum progress_state state;
	raft_index match;
	raft_index next;
	bool probe_sent;
	raft_index probe_last; /* last index carried by the latest probe */
	bool recent_active; /* heard from since the last check-quorum round */
	bool active_prev; /* recent_active of the previous round */
	raft_index commit_sent; /* highest commit index told to this follower */
	raft_index match_at_hb; /* match when the last heartbeat was answered */
	/* REPLICATE window: a ring of max_inflight slots. */
	struct inflight *infl;
	uint32_t infl_cap;
	uint32_t infl_head;
	uint32_t infl_count;
	uint64_t infl_bytes;
	uint64_t infl_max_bytes;
	/* SNAPSHOT transfer */
	raft_index snap_index; /* the snapshot being sent */
	uint64_t snap_offset; /* acknowledged bytes */
	unsigned snap_idle_ticks; /* ticks without progress: resend the chunk */
};

/*
 * Initialise @p for voter @id with a window of @max_inflight appends
 * (at least 1) and @max_inflight_bytes of payload (0: unbounded).
 * Returns 0 or -ENOMEM.  progress_close() frees the window.
 */
int progress_init(struct progress *p, raft_id id, uint32_t max_inflight,
    uint64_t max_inflight_bytes);
void progress_close(struct progress *p);

/* A new leader's view: PROBE from @last_index + 1, nothing matched, not
 * heard from, nothing told. */
void progress_reset(struct progress *p, raft_index last_index);

/* To PROBE: next = match + 1 (from SNAPSHOT: after the snapshot if that
 * is further); the window is emptied. */
void progress_become_probe(struct progress *p);

/* To REPLICATE after an accepted probe: next = match + 1, or past what
 * the latest probe carried if it went further (it is still in flight). */
void progress_become_replicate(struct progress *p);

/* To SNAPSHOT: sending the snapshot at @index from offset 0. */
void progress_become_snapshot(struct progress *p, raft_index index);

/* The pipeline window is full, by messages or by bytes. */
bool progress_window_full(const struct progress *p);

/* True when no append may be sent now. */
bool progress_paused(const struct progress *p);

/* Record an append carrying entries up to @last (@bytes of payload). */
void progress_sent(struct progress *p, raft_index last, uint64_t bytes);

/* The follower acknowledged up to @index: free the window up to it. */
void progress_free_to(struct progress *p, raft_index index);

/* Let one more append through a full window (after a heartbeat answer). */
void progress_free_first(struct progress *p);

#endif
