/*
 * raft.h - the pure Raft core: a deterministic state machine with no I/O.
 *
 * The core never touches a socket, a thread, a clock or a file.  It is
 * driven by four inputs and hands back one kind of output (the shape of
 * etcd-io/raft's Ready, adapted so that persistence may be asynchronous):
 *
 *   raft_tick(r)              one unit of logical time has passed
 *   raft_step(r, msg)         a message from a peer arrived
 *   raft_propose(r, data)     the application wants an entry replicated
 *   raft_read_index(r, ctx)   the application wants a linearizable read point
 *
 *   raft_ready(r, &rd)        what to persist, what to send, what to apply
 *   raft_advance(r, &rd)      the driver is done with the borrowed batch
 *   raft_persisted(r, ...)    a write handed out earlier is now durable
 *
 * The driver loop (raft/member/node.c runs it for a member, tests/sim/sim.c
 * in virtual time):
 *
 *   1. raft_ready(): if nothing is ready, wait for input.
 *   2. Send rd.msgs at once: they never depend on local durability (a
 *      leader may replicate entries before its own write is durable; it
 *      only counts itself towards a quorum once raft_persisted() says so).
 *   3. Persist, in this order: rd.snapshot (if any), then rd.entries (which
 *      replace any stored suffix starting at rd.entries[0].index), then
 *      rd.hs.  This may happen on another thread, but batches must become
 *      durable in the order they were handed out.
 *   4. When that persistence is durable: send rd.msgs_after_persist (vote
 *      grants and append/snapshot acknowledgements: promises that depend on
 *      the disk), then call raft_persisted(r, rd.persist_token).
 *   5. Apply rd.committed in order (rd.snapshot first if rd.snapshot_install).
 *   6. raft_advance(r, &rd) once everything borrowed from rd has been
 *      copied or encoded (a snapshot's bytes: referenced, rd.snap_buf).  The next raft_ready() may be taken right after,
 *      before step 4 of the previous batch completes.
 *
 * Committed entries are handed out only up to what is locally durable, so a
 * member never applies an entry that a crash could take from its own log.
 *
 * Time is counted in ticks; randomness (the election timeout) comes from a
 * seed given at creation, so a run is a pure function of its inputs.
 *
 * Errors: negative errno values (-ENOMEM, -EINVAL) or the RAFT_E* codes
 * of raft/err.h.  Every function that can fail says which codes it returns.
 */
#ifndef RAFTKV_RAFT_H
#define RAFTKV_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/err.h"

typedef uint64_t raft_term;
typedef uint64_t raft_index;
typedef uint64_t raft_id; /* 0 means "none"; members are 1..UINT64_MAX */

#define RAFT_MAX_MEMBERS 15

/* Error codes: -errno or the RAFT_E* codes of raft/err.h (rk_strerror). */

enum raft_role {
	RAFT_FOLLOWER = 0,
	RAFT_PRECANDIDATE = 1,
	RAFT_CANDIDATE = 2,
	RAFT_LEADER = 3,
};
const char *raft_role_name(enum raft_role role);

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 1, /* application data */
	RAFT_ENTRY_NOOP =
	    2, /* appended by each new leader (Raft paper 8): commits the term */
	RAFT_ENTRY_CONF = 3, /* a membership change (raft/config.h): data is
	                        the encoded change and the whole new
	                        configuration; not for the application */
};

struct raft_entry {
	raft_term term;
	raft_index index;
	uint8_t type; /* enum raft_entry_type */
	uint32_t len;
	uint8_t *data; /* len bytes, NULL when len == 0 */
};

/* The state that must be durable before a vote or term change is acted on. */
struct raft_hard_state {
	raft_term term;
	raft_id vote; /* 0: no vote in @term */
};

/*
 * A configuration: who votes and who only replicates.  Voters and
 * learners are disjoint, ids are non-zero and unique, and together they
 * are at most RAFT_MAX_MEMBERS.  raft/config.h has the rules.
 */
struct raft_conf {
	uint32_t n_voters;
	raft_id voters[RAFT_MAX_MEMBERS];
	uint32_t n_learners;
	raft_id learners[RAFT_MAX_MEMBERS];
};

/* The changes raft_propose_conf_change() makes, one member at a time. */
enum raft_conf_change_type {
	RAFT_CONF_ADD_LEARNER = 1, /* a new member that replicates only */
	RAFT_CONF_PROMOTE = 2, /* a caught-up learner becomes a voter */
	RAFT_CONF_REMOVE = 3, /* a voter or a learner leaves */
};

/* A decoded RAFT_ENTRY_CONF entry (raft_conf_change_decode). */
struct raft_conf_change {
	uint8_t type; /* enum raft_conf_change_type */
	raft_id id; /* the member it is about */
	struct raft_conf conf; /* the whole configuration after it */
	const uint8_t *ctx; /* opaque to the core (endpoints, key...);
	                            borrowed from the entry */
	uint32_t ctx_len;
};

/* What identifies a snapshot: the last entry it covers and the
 * configuration in force at that entry (voters, then learners). */
struct raft_snapshot_meta {
	raft_index index;
	raft_term term;
	uint32_t n_voters;
	raft_id voters[RAFT_MAX_MEMBERS];
	uint32_t n_learners;
	raft_id learners[RAFT_MAX_MEMBERS];
};

/* Message types.  Messages are one-way: a "response" is a message too. */
enum raft_msg_type {
	RAFT_MSG_PREVOTE = 1, /* term = the term it would campaign in */
	RAFT_MSG_PREVOTE_RESP = 2, /* reject = vote refused */
	RAFT_MSG_VOTE = 3, /* index/log_term = candidate's last entry */
	RAFT_MSG_VOTE_RESP = 4,
	RAFT_MSG_APPEND =
	    5, /* index/log_term = previous entry; entries; commit */
	RAFT_MSG_APPEND_RESP = 6, /* !reject: index = last matched index;
	                                reject: index = the rejected prev index,
	                                hint_index/hint_term = where to retry */
	RAFT_MSG_HEARTBEAT = 7, /* commit; ctx = read-index round (0: none);
	                                done = commit news that confirms no new
	                                round: no answer wanted */
	RAFT_MSG_HEARTBEAT_RESP = 8, /* ctx echoed */
	RAFT_MSG_SNAPSHOT =
	    9, /* snap meta; chunk at offset of total bytes; done */
	RAFT_MSG_SNAPSHOT_RESP =
	    10, /* index = snapshot index; offset = bytes held;
	                                reject = restart transfer from offset */
	RAFT_MSG_TIMEOUT_NOW = 11, /* leadership transfer: campaign now */
	RAFT_MSG_READ_INDEX =
	    12, /* follower -> leader: ctx wants a read index */
	RAFT_MSG_READ_INDEX_RESP =
	    13, /* index = read index for ctx; reject = no leader */
};
#define RAFT_MSG_TYPE_MAX 13
const char *raft_msg_type_name(int type);

/*
 * One message.  Which fields mean something depends on @type (see above);
 * the rest are zero.  In a raft_ready batch, @entries and @chunk are
 * borrowed from the core until raft_advance().  When a message is given to
 * raft_step(), they are borrowed from the caller for the duration of the
 * call only (the core copies what it keeps).
 */
struct raft_msg {
	uint8_t type;
	raft_id from;
	raft_id to;
	raft_term term;
	raft_index index;
	raft_term log_term;
	raft_index commit;
	bool reject;
	raft_index hint_index;
	raft_term hint_term;
	uint64_t ctx;
	uint32_t n_entries;
	struct raft_entry *entries;
	/* RAFT_MSG_SNAPSHOT / _RESP */
	struct raft_snapshot_meta snap;
	uint64_t offset;
	uint64_t total;
	uint32_t chunk_len;
	const uint8_t *chunk;
	bool done;
};

/* A linearizable read point: reads issued with @ctx may be served once the
 * local state machine has applied @index. */
struct raft_read_state {
	uint64_t ctx;
	raft_index index;
};

/* Token naming what a raft_ready batch asked to persist; handed back to
 * raft_persisted() once durable.  Opaque to the driver. */
struct raft_persist_token {
	raft_index last_index; /* last entry written by the batch (0: none) */
	raft_term last_term;
	raft_index snap_index; /* snapshot written by the batch (0: none) */
	raft_term snap_term;
	uint64_t seq;
};

/*
 * A snapshot's bytes, shared by reference counting between the core and
 * the driver's threads, so that a snapshot of any size is handed on
 * without being copied: the core holds one reference while the snapshot
 * is its current one; a driver that keeps a batch's snapshot past
 * raft_advance() (to persist it on another thread, to restore from it)
 * takes its own with raft_snap_buf_ref() and drops it with
 * raft_snap_buf_unref() when done.  The bytes never change once wrapped.
 * The count is atomic: references may be dropped on any thread; the core
 * itself stays single-threaded and does no I/O.
 */
struct raft_snap_buf;

/*
 * Wrap @len bytes at @data (malloc'd; NULL when @len is 0) in a new
 * buffer with one reference, the caller's.  On success the buffer owns
 * @data (free()d with the last reference).  Returns NULL on ENOMEM, and
 * then the caller still owns @data.
 */
struct raft_snap_buf *raft_snap_buf_new(void *data, uint64_t len);

/* One more reference to @b (not NULL); returns @b.  Any thread. */
struct raft_snap_buf *raft_snap_buf_ref(struct raft_snap_buf *b);

/* Drop one reference; the last frees the bytes.  NULL is fine.  Any
 * thread. */
void raft_snap_buf_unref(struct raft_snap_buf *b);

/* The bytes (NULL when empty) and their number. */
const uint8_t *raft_snap_buf_data(const struct raft_snap_buf *b);
uint64_t raft_snap_buf_len(const struct raft_snap_buf *b);

struct raft_ready {
	/* --- soft state, for logging and for the driver's routing --- */
	enum raft_role role;
	raft_id leader; /* 0: unknown */
	bool role_changed; /* role, term or leader differ from the last batch */

	/* --- to persist (steps 3/4 above) --- */
	bool hs_changed;
	struct raft_hard_state hs;
	struct raft_entry *entries; /* borrowed; replace the stored suffix */
	uint32_t n_entries;
	bool has_snapshot; /* write snap_meta + snap_data first */
	bool snapshot_install; /* restore the application from snap_meta +
	                                snap_data (also set alone, without
	                                has_snapshot, for the snapshot a member
	                                restarted from: already on disk) */
	struct raft_snapshot_meta snap_meta;
	const uint8_t *snap_data; /* borrowed: snap_buf's bytes */
	uint64_t snap_len;
	struct raft_snap_buf *snap_buf; /* borrowed: raft_snap_buf_ref() it
	                                to keep the bytes past
	                                raft_advance() without a copy */
	struct raft_persist_token persist_token;
	bool must_persist; /* anything at all to write this batch */

	/* --- to send --- */
	struct raft_msg *msgs; /* now */
	uint32_t n_msgs;
	struct raft_msg
	    *msgs_after_persist; /* only once this batch is durable */
	uint32_t n_msgs_after_persist;

	/* Entries at and after this index were discarded since the last
	 * batch (a conflicting suffix replaced by a leader's, or a log
	 * dropped for an installed snapshot); 0: none.  A proposal there can
	 * never commit any more: its waiter may be told so at once. */
	raft_index truncated_from;

	/* The configuration in force (the latest in the log, committed or
	 * not, else the snapshot's, else the bootstrap one) when it differs
	 * from the last batch's, or in the first batch: conf_changed.
	 * conf_index is the index of the entry (or snapshot) it comes from,
	 * 0 for the bootstrap configuration.  Committed RAFT_ENTRY_CONF
	 * entries also appear in @committed: an application skips them (or
	 * decodes them with raft_conf_change_decode for their ctx). */
	bool conf_changed;
	struct raft_conf conf;
	raft_index conf_index;

	/* --- to apply, in order, after the snapshot if snapshot_install --- */
	struct raft_entry *committed; /* borrowed */
	uint32_t n_committed;

	/* --- read points for raft_read_index() calls --- */
	struct raft_read_state *read_states;
	uint32_t n_read_states;
	uint64_t *read_failed; /* ctxs that cannot be served here: retry */
	uint32_t n_read_failed;
};

/* Trace callback: the core's only way to talk about itself (never stderr). */
typedef void (*raft_trace_fn)(void *arg, raft_id id, const char *msg);

/*
 * The voters (and learners) are the bootstrap configuration: in force
 * until the log or a snapshot holds one (then the latest of those wins).
 * @id must be a voter or a learner of it: a member joining a running
 * cluster starts as a learner of its own bootstrap configuration, so it
 * never campaigns until its log makes it a voter.
 */
struct raft_config {
	raft_id id;
	uint32_t n_voters;
	raft_id voters[RAFT_MAX_MEMBERS];
	uint32_t n_learners;
	raft_id learners[RAFT_MAX_MEMBERS];
	unsigned
	    election_tick; /* election timeout drawn from [et, 2et) ticks; default 10 */
	unsigned
	    heartbeat_tick; /* leader heartbeat period in ticks; default 1 */
	uint64_t seed; /* randomness for election timeouts */
	bool disable_prevote; /* default off: pre-vote on */
	bool disable_check_quorum; /* default off: check-quorum on */
	bool disable_lease_read; /* default off: a leader answers read
	                                index requests from its lease
	                                (raft/readindex.c) while check-quorum
	                                is on.  Per member: what a lease
	                                rests on, every member with
	                                check-quorum on provides */
	unsigned lease_ticks; /* lease length in ticks after a heartbeat a
	                                quorum acknowledged; 0: default
	                                (election_tick - 1) * 2 / 3, which
	                                tolerates members' clocks running at
	                                rates up to 1.5x apart; at most
	                                election_tick - 2 */
	uint32_t max_msg_entries; /* entries per AppendEntries; default 256 */
	uint64_t
	    max_msg_bytes; /* payload bytes per AppendEntries; default 1 MiB */
	uint32_t
	    max_inflight_msgs; /* pipelined appends per follower; default 64 */
	uint64_t
	    max_inflight_bytes; /* pipelined payload bytes per follower; default 8 MiB */
	uint64_t
	    max_uncommitted_bytes; /* proposals refused beyond; default 64 MiB */
	uint32_t max_entry_bytes; /* one entry's payload; default 32 MiB
	                                 (a 16 MiB KV value and its command
	                                 fit, with room to spare) */
	uint32_t
	    snapshot_chunk_bytes; /* InstallSnapshot chunk size; default 256 KiB */
	raft_trace_fn trace;
	void *trace_arg;
};

/* Fill @c with defaults for member @id of @voters. */
void raft_config_defaults(struct raft_config *c, raft_id id,
    const raft_id *voters, uint32_t n_voters);

/*
 * The durable state a member restarts from.  @entries follow the snapshot
 * (entries[0].index == snap.index + 1 when both exist).  All borrowed for
 * the duration of raft_new() only.
 */
struct raft_boot {
	struct raft_hard_state hs;
	bool has_snapshot;
	struct raft_snapshot_meta snap;
	const uint8_t *snap_data;
	uint64_t snap_len;
	const struct raft_entry *entries;
	uint64_t n_entries;
};

struct raft;

/*
 * Create a member from @cfg and its durable state @boot (NULL: empty).
 * On restart from a snapshot, the first raft_ready() carries it with
 * snapshot_install set and has_snapshot clear (it is already on disk), so
 * the application restores from it.
 * Returns 0 and sets *@out, or -EINVAL (bad config, boot state that is
 * not self-consistent), -ENOMEM.
 */
int raft_new(const struct raft_config *cfg, const struct raft_boot *boot,
    struct raft **out);
void raft_free(struct raft *r); /* accepts NULL */

/* One unit of time.  Returns 0 or -ENOMEM. */
int raft_tick(struct raft *r);

/*
 * Handle one message.  Messages for another member, from a non-member, or
 * of an unknown type are dropped and counted (0 is still returned: the
 * network may deliver anything).  Returns 0, -ENOMEM.
 */
int raft_step(struct raft *r, const struct raft_msg *m);

/*
 * Append @len bytes of application data as a new entry (copied).
 * Returns the entry's index in *@index (may be NULL) and its term in
 * *@term (may be NULL), or RAFT_ENOTLEADER, RAFT_ETRANSFER, RAFT_EBUSY
 * (uncommitted bound), RAFT_ETOOBIG, -ENOMEM.  Success means "appended",
 * not "committed": watch the committed entries for that index and term.
 */
int raft_propose(struct raft *r, const void *data, uint32_t len,
    raft_index *index, raft_term *term);

/*
 * Ask for a linearizable read point tagged @ctx (non-zero, chosen by the
 * caller, unique among outstanding requests).  The answer comes later in
 * rd.read_states, or rd.read_failed if there is no leader or leadership
 * was lost (retry).  On a follower the request is forwarded to the leader.
 * Returns 0, -EINVAL (ctx 0), -ENOMEM.
 */
int raft_read_index(struct raft *r, uint64_t ctx);

/*
 * Leader only: append a membership change of member @id (copied @ctx of
 * @ctx_len bytes rides along, opaque to the core: the host's record of
 * the member, e.g. its endpoints).  Single-server changes (raft/config.h):
 * the new configuration is in force on every member as soon as it is
 * appended to its log.  Returns 0 and the entry's index in *@index (may be
 * NULL), or
 *   RAFT_ENOTLEADER, RAFT_ETRANSFER
 *   RAFT_ECONFPENDING  a change is not committed yet, or no entry of this
 *                      leader's term is (its no-op): retry shortly
 *   RAFT_ENOTCAUGHTUP  PROMOTE of a learner that does not hold every
 *                      committed entry yet: retry once it caught up
 *   RAFT_ENOQUORUM     the new configuration's voters that this leader
 *                      heard from recently would not make a quorum
 *   RAFT_ELASTVOTER    REMOVE of the only voter
 *   -EEXIST            ADD_LEARNER of a member, PROMOTE of a voter
 *   -ENOENT            PROMOTE/REMOVE of a non-member (PROMOTE of a
 *                      non-learner)
 *   -ENOSPC            ADD_LEARNER with RAFT_MAX_MEMBERS members already
 *   -EINVAL            bad @type, @id 0, ctx too big, -ENOMEM.
 * A leader that removes itself keeps leading (without counting itself)
 * until the change commits, then steps down and hands over to the most
 * up-to-date voter.
 */
int raft_propose_conf_change(struct raft *r, int type, raft_id id,
    const void *ctx, uint32_t ctx_len, raft_index *index);

/*
 * Decode a RAFT_ENTRY_CONF entry @e into @out (out->ctx borrows from
 * e->data).  Returns 0, or RAFT_EMALFORMED (not a well-formed change).
 */
int raft_conf_change_decode(const struct raft_entry *e,
    struct raft_conf_change *out);

/* The configuration in force and the index it comes from (0: bootstrap). */
void raft_get_conf(const struct raft *r, struct raft_conf *conf,
    raft_index *index);

/* Leader only: hand leadership to @to (caught up first if needed).
 * Returns 0, RAFT_ENOTLEADER, -EINVAL (not a voter, or self). */
int raft_transfer_leadership(struct raft *r, raft_id to);

/*
 * The driver could not deliver to @peer (no connection, or its queue is
 * full).  A leader stops pipelining to it and probes instead, one append
 * per heartbeat, until it answers.  Ignored on followers and for unknown
 * ids.  Returns 0.
 */
int raft_report_unreachable(struct raft *r, raft_id peer);

/*
 * Start an election now (tests, administrative use).  Returns 0, or
 * RAFT_EINLEASE when check-quorum is on and this member heard from a leader
 * (or restarted) within the minimum election timeout: that leader may be
 * serving reads from its lease, which our vote for ourselves would break
 * (raft/readindex.c); raft_transfer_leadership() is the way to move
 * leadership then.
 */
int raft_campaign(struct raft *r);

/*
 * The driver lost time it will not tick for (its thread stalled for longer
 * than it makes up ticks, e.g. a stopped process): a read lease held now
 * is dropped, because the ticks that would have ended it never came.
 * Heartbeats acknowledged afterwards start a new one.  Any role; cannot
 * fail.  A driver that always catches up on every missed tick before
 * calling anything else never needs it.
 */
void raft_tick_gap(struct raft *r);

/*
 * Take the next batch of work.  Returns true and fills @rd when there is
 * something to do; false when idle (rd zeroed).  Everything borrowed stays
 * valid until raft_advance().  Only one batch may be outstanding, and no
 * other call (tick, step, propose, persisted, compact...) may be made
 * between raft_ready() and raft_advance(): copy or encode what you keep.
 * Messages in msgs_after_persist of a batch with nothing to persist must
 * still wait until every earlier batch is durable (keep one FIFO).
 */
bool raft_ready(struct raft *r, struct raft_ready *rd);
void raft_advance(struct raft *r, struct raft_ready *rd);

/*
 * The write named by @t is durable.  Tokens must be reported in the order
 * their batches were taken.  Entries are counted as durable only if the log
 * still holds @t->last_term at @t->last_index, so a late report after a
 * truncation is harmless.  Returns 0.
 */
int raft_persisted(struct raft *r, const struct raft_persist_token *t);

/*
 * The application has applied up to @index and offers a snapshot of its
 * state there: @data (@len bytes, copied).  The core compacts its log up to
 * @index, keeps the snapshot to send to lagging followers and hands it
 * out in the next raft_ready() for persisting (snapshot_install clear).
 * Returns 0, RAFT_ESTALE (@index not newer than the current snapshot),
 * -EINVAL (@index not yet handed out for apply), -ENOMEM.
 */
int raft_compact(struct raft *r, raft_index index, const void *data,
    uint64_t len);

/*
 * raft_compact() without the copy: on 0 the core takes over the caller's
 * reference to @buf (the caller must not drop it); on any error the
 * caller keeps it.  Same returns; never -ENOMEM.
 */
int raft_compact_buf(struct raft *r, raft_index index,
    struct raft_snap_buf *buf);

/* Introspection, for the driver, tests and `raftkv status`. */
struct raft_status {
	raft_id id;
	enum raft_role role;
	raft_term term;
	raft_id vote;
	raft_id leader;
	raft_index commit;
	raft_index applied; /* handed out for apply */
	raft_index stable; /* durable locally */
	raft_index first_index; /* first entry held in memory */
	raft_index last_index;
	raft_index snap_index;
	raft_term snap_term;
	uint64_t uncommitted_bytes;
	uint64_t
	    dropped_msgs; /* stale, foreign or malformed messages ignored */
	raft_id transferee; /* leadership transfer target, 0: none */
	bool voter; /* a voter of the configuration in force */
	raft_index conf_index; /* where that configuration comes from */
	uint64_t lease_reads; /* read indexes a leader answered from its
	                           lease, without a heartbeat round */
};
void raft_status(const struct raft *r, struct raft_status *st);

/* Term of the entry at @index, from the log or the snapshot boundary.
 * Returns 0 and sets *@term, or RAFT_ESTALE (compacted), -ERANGE (beyond). */
int raft_term_at(const struct raft *r, raft_index index, raft_term *term);

/* The entry at @index if held in memory (borrowed until the next call
 * that changes the log), else NULL. */
const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index);

/* Current snapshot data held by the core (borrowed), for tests. */
const uint8_t *raft_snapshot_data(const struct raft *r, uint64_t *len,
    struct raft_snapshot_meta *meta);

#endif
