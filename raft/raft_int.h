/*
 * raft_int.h - struct raft and the helpers shared by the core's .c files.
 *
 * The core is split by concern: raft.c (life cycle, role changes, the
 * step dispatcher, ready/advance), election.c (timers, pre-vote, vote),
 * replication.c (AppendEntries, progress, commit), snapshot.c (compaction
 * and chunked InstallSnapshot), readindex.c (linearizable read points) and
 * transfer logic in election.c.  Nothing here does I/O: every output is
 * queued on struct raft and handed out by raft_ready().
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
	raft_term last_term;  /* APPEND: term of the last entry carried */
	bool after_persist;
};

struct pending_read {
	uint64_t ctx;
	raft_id from;        /* 0: local request */
	raft_index index;    /* read point, once assigned */
	uint64_t round;      /* heartbeat round confirming it; 0: not started */
};

struct forwarded_read {
	uint64_t ctx;
	unsigned age;        /* ticks since forwarded */
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
	raft_index truncated_from;     /* lowest index discarded, for ready */

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

	/* Members: progress[i] for voter cfg.voters[i]; self_idx is us. */
	uint32_t n_voters;
	uint32_t self_idx;
	struct progress prs[RAFT_MAX_MEMBERS];
	int8_t votes[RAFT_MAX_MEMBERS];     /* 0 none, 1 granted, -1 refused */

	/* Snapshot held (latest compaction or install). */
	struct raft_snapshot_meta snap_meta;
	uint8_t *snap_data;
	uint64_t snap_len;
	bool snap_persist_pending;
	bool snap_install_pending;

	/* Incoming chunked snapshot. */
	bool rx_active;
	struct raft_snapshot_meta rx_meta;
	uint8_t *rx_buf;
	uint64_t rx_len;
	uint64_t rx_cap;
	uint64_t rx_total;

	/* Leader state. */
	uint64_t uncommitted_bytes;
	bool bcast_pending;            /* new entries: replicate at ready time */
	bool commit_news_now;          /* a tick passed: send deferred news */
	raft_id transferee;
	unsigned transfer_elapsed;

	/* Read index. */
	struct pending_read *reads;
	uint32_t n_reads;
	uint32_t cap_reads;
	uint64_t read_round;           /* last round assigned */
	uint64_t read_round_sent;      /* last round broadcast to all */
	bool read_round_unsent;
	uint64_t read_acks[RAFT_MAX_MEMBERS]; /* highest round each voter echoed */
	struct forwarded_read *fwd;
	uint32_t n_fwd;
	uint32_t cap_fwd;

	/* Outputs. */
	struct out_msg *out;
	uint32_t n_out;
	uint32_t cap_out;
	struct raft_msg *rd_msgs;      /* materialised at ready time */
	uint32_t cap_rd_msgs;
	struct raft_read_state *rs;
	uint32_t n_rs;
	uint32_t cap_rs;
	uint64_t *rf;
	uint32_t n_rf;
	uint32_t cap_rf;
	uint64_t persist_seq;
	bool ready_out;                /* a batch is outstanding */

	uint64_t dropped;
};

/* raft.c */
void raft_trace(struct raft *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int raft_send(struct raft *r, const struct raft_msg *m, raft_term last_term);
void raft_become_follower(struct raft *r, raft_term term, raft_id leader);
void raft_become_candidate(struct raft *r, bool pre);
int raft_become_leader(struct raft *r);
int raft_voter_index(const struct raft *r, raft_id id);
uint32_t raft_quorum(const struct raft *r);
void raft_reset_timers(struct raft *r);

/* election.c */
int election_tick(struct raft *r);
int election_campaign(struct raft *r, bool pre, bool transfer);
int election_handle_vote(struct raft *r, const struct raft_msg *m);
int election_handle_vote_resp(struct raft *r, const struct raft_msg *m);
int election_handle_timeout_now(struct raft *r, const struct raft_msg *m);
void election_check_transfer(struct raft *r, struct progress *pr);
bool election_in_lease(const struct raft *r);

/* replication.c */
int replication_send_append(struct raft *r, struct progress *pr, bool allow_empty);
int replication_bcast_append(struct raft *r);
int replication_bcast_heartbeat(struct raft *r, uint64_t ctx);
int replication_commit_news(struct raft *r, uint32_t i, bool now);
void replication_tick(struct raft *r);
int replication_handle_append(struct raft *r, const struct raft_msg *m);
int replication_handle_append_resp(struct raft *r, const struct raft_msg *m);
int replication_handle_heartbeat(struct raft *r, const struct raft_msg *m);
int replication_handle_heartbeat_resp(struct raft *r, const struct raft_msg *m);
bool replication_maybe_commit(struct raft *r);
void replication_commit_to(struct raft *r, raft_index index);
int replication_append_local(struct raft *r, uint8_t type, void *data,
    uint32_t len, raft_index *index);
void replication_truncate(struct raft *r, raft_index from);

/* snapshot.c */
int snapshot_send(struct raft *r, struct progress *pr);
int snapshot_tick(struct raft *r, struct progress *pr);
int snapshot_handle_chunk(struct raft *r, const struct raft_msg *m);
int snapshot_handle_resp(struct raft *r, const struct raft_msg *m);
void snapshot_rx_reset(struct raft *r);

/* readindex.c */
int readindex_request(struct raft *r, uint64_t ctx, raft_id from);
void readindex_on_commit_in_term(struct raft *r);
int readindex_handle_heartbeat_ack(struct raft *r, raft_id from, uint64_t ctx);
int readindex_handle_forward(struct raft *r, const struct raft_msg *m);
int readindex_handle_forward_resp(struct raft *r, const struct raft_msg *m);
void readindex_fail_all(struct raft *r);
int readindex_tick(struct raft *r);
int readindex_push_state(struct raft *r, uint64_t ctx, raft_index index);
int readindex_push_failed(struct raft *r, uint64_t ctx);
bool readindex_round_wanted(struct raft *r, uint64_t *round);

#endif
