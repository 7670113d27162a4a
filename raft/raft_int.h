/*
 * raft_int.h - struct raft and the helpers of raft.c that every part of
 * the core uses.
 *
 * The core is split by concern, each part with its own internal header
 * carrying the function contracts:
 *   raft.c         life cycle, role changes, the step dispatcher,
 *                  ready/advance (this header, raft.h)
 *   election.c     timers, pre-vote, vote, check-quorum, leadership
 *                  transfer (election.h)
 *   replication.c  AppendEntries, heartbeats, commit (replication.h)
 *   snapshot.c     compaction and chunked InstallSnapshot (snapshot.h)
 *   readindex.c    linearizable read points (readindex.h)
 *   progress.c     the leader's view of one follower (progress.h)
 *   rlog.c         the in-memory log (rlog.h)
 * Nothing in the core does I/O: every output is queued on struct raft and
 * handed out by raft_ready().  None of these headers is for the driver,
 * which uses raft.h only.
 *
 * Durability bookkeeping (all indices into the log):
 *
 *   applying <= min(commit, stable) <= last index
 *   stable < persist_next <= last + 1
 *
 *   persist_next  first entry not yet handed to the driver for writing
 *   stable        entries up to here are durable (raft_persisted)
 *   applying      entries up to here were handed out for apply
 */
#ifndef RAFTKV_RAFT_INT_H
#define RAFTKV_RAFT_INT_H

#include "raft/progress.h"
#include "raft/raft.h"
#include "raft/rlog.h"

/* A message waiting for raft_ready().  Entries and snapshot chunks are
 * referenced by index/offset and only turned into pointers at ready time,
 * after checking that what they name is still there. */
struct out_msg {
	struct raft_msg m;
	raft_term last_term; /* APPEND: term of the last entry carried */
	bool after_persist;
};

/* Heartbeat rounds whose send tick the leader remembers (readindex.c). */
#define LEASE_RING 64

struct pending_read {
	uint64_t ctx;
	raft_id from; /* 0: local request */
	raft_index index; /* read point, once assigned */
	uint64_t round; /* heartbeat round confirming it; 0: not started */
};

struct forwarded_read {
	uint64_t ctx;
	unsigned age; /* ticks since forwarded */
};

struct raft {
	struct raft_config cfg;
	raft_id id;
	enum raft_role role;
	raft_term term;
	raft_id vote;
	raft_id leader;
	struct rlog log;

	raft_index commit;
	raft_index applying;
	raft_index stable;
	raft_index persist_next;
	raft_index truncated_from; /* lowest index discarded, for ready */

	/* What the last batch reported, to detect changes. */
	raft_term hs_term_out;
	raft_id hs_vote_out;
	enum raft_role ss_role;
	raft_term ss_term;
	raft_id ss_leader;

	/* Timers, in ticks. */
	unsigned election_elapsed;
	unsigned heartbeat_elapsed;
	unsigned randomized_timeout;
	uint64_t rng;
	uint64_t now_ticks; /* raft_tick() calls since creation */
	/* Ticks since we last heard from a leader of our term, or since
	 * boot (readindex.c: voters' side of the lease); saturates. */
	unsigned heard_elapsed;

	/* The configuration in force (raft/config.h, C1) and the index of
	 * the entry or snapshot it comes from (0: bootstrap).  snap_conf is
	 * the one at the snapshot boundary (or the bootstrap one): what a
	 * truncation reverts to when no change is left in the log. */
	struct raft_conf conf;
	raft_index conf_index;
	struct raft_conf snap_conf;
	raft_index snap_conf_index;
	bool conf_out; /* conf handed out in a batch since the last change */
	/* config.h C8: was the configuration before conf_index one where we
	 * vote (prev_voter), computed for conf_index prev_checked (0: not
	 * yet; raft_conf_set clears it); and are we campaigning in it. */
	raft_index prev_checked;
	bool prev_voter;
	bool elect_removed;

	/* Members, in member-index order (config.h): prs[i] for member i;
	 * self_idx is us, or NO_MEMBER (a removed or not-yet-added member).
	 * All RAFT_MAX_MEMBERS progress slots are allocated at creation, so a
	 * configuration change never fails. */
	uint32_t n_members;
	uint32_t self_idx;
	struct progress prs[RAFT_MAX_MEMBERS];
	int8_t votes[RAFT_MAX_MEMBERS]; /* 0 none, 1 granted, -1 refused */

	/* Snapshot held (latest compaction or install): snap_buf is our
	 * reference (NULL: none), snap_data and snap_len its bytes. */
	struct raft_snapshot_meta snap_meta;
	struct raft_snap_buf *snap_buf;
	const uint8_t *snap_data;
	uint64_t snap_len;
	bool snap_persist_pending;
	bool snap_install_pending;

	/* Incoming chunked snapshot. */
	bool rx_active;
	struct raft_snapshot_meta rx_meta;
	uint8_t *rx_buf; /* rx_total bytes, allocated at offset 0 */
	uint64_t rx_len;
	uint64_t rx_total;

	/* Leader state. */
	uint64_t uncommitted_bytes;
	bool bcast_pending; /* new entries: replicate at ready time */
	raft_id transferee;
	unsigned transfer_elapsed;

	/* Read index. */
	struct pending_read *reads;
	uint32_t n_reads;
	uint32_t cap_reads;
	uint64_t read_round; /* last round assigned */
	uint64_t read_round_sent; /* last round broadcast to all */
	bool read_round_unsent;
	uint64_t
	    read_acks[RAFT_MAX_MEMBERS]; /* highest round each voter echoed */
	/* Read lease (readindex.c): lease_from[i] = 1 + the tick at which
	 * the earliest-sent heartbeat of the newest round member i echoed
	 * left (0: none); the send tick of recent rounds, by round %
	 * LEASE_RING; lease_off: a transfer was started in this term. */
	uint64_t lease_from[RAFT_MAX_MEMBERS];
	uint64_t lease_round[LEASE_RING];
	uint64_t lease_round_tick[LEASE_RING];
	bool lease_off;
	uint64_t lease_reads;
	struct forwarded_read *fwd;
	uint32_t n_fwd;
	uint32_t cap_fwd;

	/* Outputs. */
	struct out_msg *out;
	uint32_t n_out;
	uint32_t cap_out;
	struct raft_msg *rd_msgs; /* materialised at ready time */
	uint32_t cap_rd_msgs;
	struct raft_read_state *rs;
	uint32_t n_rs;
	uint32_t cap_rs;
	uint64_t *rf;
	uint32_t n_rf;
	uint32_t cap_rf;
	uint64_t persist_seq;
	bool ready_out; /* a batch is outstanding */

	uint64_t dropped;
};

/* Hand @fmt to the configured trace callback, if any (never stderr). */
void raft_trace(struct raft *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Queue message @m for the next raft_ready(), from us, in our current term
 * unless m->term is set.  @last_term is the term of the last entry an
 * APPEND carries (0 otherwise): at ready time the entries are taken from
 * the log by index and the message is dropped if they are gone or were
 * replaced.  APPEND, HEARTBEAT(_RESP), SNAPSHOT, TIMEOUT_NOW, PREVOTE
 * and READ_INDEX(_RESP) leave at once (rd.msgs); VOTE (it carries the
 * candidate's new term and self-vote), the (pre)vote answers and the
 * APPEND/SNAPSHOT acknowledgements are promises about the disk and wait
 * until the batch is durable (rd.msgs_after_persist).  Copies
 * @m; borrows nothing.  Returns 0 or -ENOMEM (nothing queued).
 */
int raft_send(struct raft *r, const struct raft_msg *m, raft_term last_term);

/*
 * Become follower of @leader (0: unknown) in @term, in any role: a higher
 * @term is adopted with no vote (hard state); reads fail if we were leader
 * or the leader changed; leader state is dropped; timers restart.  Cannot
 * fail.
 */
void raft_become_follower(struct raft *r, raft_term term, raft_id leader);

/*
 * Become pre-candidate (@pre: term unchanged) or candidate (term + 1,
 * vote for ourselves), from any role; votes are cleared, reads fail,
 * timers restart.  Only election_campaign calls it.  Cannot fail.
 */
void raft_become_candidate(struct raft *r, bool pre);

/*
 * Candidate (or pre-candidate of a cluster of one) wins: become leader,
 * reset every follower's progress to probe from our last index + 1, and
 * append the no-op that commits the earlier terms' entries (Raft paper 8).
 * Returns 0 or -ENOMEM (leader without the no-op: nothing of an earlier
 * term commits until the next proposal).
 */
int raft_become_leader(struct raft *r);

#define NO_MEMBER UINT32_MAX

/* Member index of voter @id (prs[], votes[]), or -1 (not a voter). */
int raft_voter_index(const struct raft *r, raft_id id);

/* Member index of voter or learner @id, or -1. */
int raft_member_index(const struct raft *r, raft_id id);

/* Votes or acknowledgements that make a majority of the voters. */
uint32_t raft_quorum(const struct raft *r);

/* Are we a voter of the configuration in force? */
bool raft_self_voter(const struct raft *r);

/*
 * Put configuration @c (from the entry or snapshot at @index, 0 for the
 * bootstrap one) in force: per-member state is carried over by id, new
 * members start from scratch (a leader probes them from its last index).
 * Cannot fail.
 */
void raft_conf_set(struct raft *r, const struct raft_conf *c, raft_index index);

/*
 * C1 after the log changed under the configuration (a truncation): the
 * latest change left in the log, else snap_conf.  Cannot fail (changes in
 * the log were validated when they entered it).
 */
void raft_conf_recompute(struct raft *r);

/* The configuration in force at @index (>= the snapshot boundary, <= last):
 * the latest change at or before it, else snap_conf. */
void raft_conf_at(const struct raft *r, raft_index index, struct raft_conf *c,
    raft_index *conf_index);

#endif
