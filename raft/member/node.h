/*
 * node.h - a running Raft member: the core driven by real time, a real
 * disk and a real network, plus the replicated state machine (RSM) on top.
 *
 * Threads (each owns what it touches; they talk through queues):
 *
 *   loop     owns struct raft and the transport: zmq_poll over the peer
 *            socket and a wake-up eventfd, ticks, raft_step/raft_propose/
 *            raft_read_index, and the raft_ready hand-off.  Sends
 *            rd.msgs at once (a leader replicates while its own write is
 *            still in flight), queues the persistence to the disk thread,
 *            committed entries to the applier.
 *   disk     owns struct storage: takes every queued batch, writes them,
 *            syncs ONCE (group commit), then hands the batches back so
 *            the loop sends their msgs_after_persist and calls
 *            raft_persisted().  A failed write or sync is fatal: the
 *            member exits with the storage's message, never acknowledging.
 *   applier  feeds committed entries, in order, to the application; wakes
 *            the submitters waiting for them; asks the application for a
 *            snapshot when the log on disk exceeds max_raft_state.  When
 *            it is idle with nothing queued, the loop applies a small
 *            committed batch itself (no hand-off: the lone submitter's
 *            latency); callbacks still run one at a time, in order.
 *
 * RSM contract (the seeds' 6.5840 4A):
 *   node_submit()  returns the application's reply once the command is
 *                  applied, or RAFT_ENOTLEADER (with a leader hint),
 *                  NODE_ELOST (the entry was overwritten: leadership was
 *                  lost before it committed), NODE_ETIMEDOUT (unknown
 *                  outcome), NODE_ESHUTDOWN.
 *   node_read_barrier()  returns once the local application has applied
 *                  a linearizable read point (ReadIndex; on a follower the
 *                  leader supplies it); the caller then reads local state.
 */
#ifndef RAFTKV_NODE_H
#define RAFTKV_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"
#include "raft/storage/storage.h"

/*
 * The application.  The callbacks run one at a time, never concurrently:
 * snapshot() and restore() on the applier thread, apply() there too or,
 * for a small batch while the applier is idle, on the loop thread — so
 * apply() must be quick, must not call into the node, and may wait only
 * for short critical sections of the application's own (a lock that
 * readers hold for one bounded query, with writers preferred).
 * apply() must be deterministic: the same commands in the same order give
 * the same state and replies on every member.
 */
struct node_app {
	void *arg;
	/* Apply the command at @index; put the reply in *@reply (malloc'd,
	 * may be NULL with *@reply_len 0).  Returns 0 or -ENOMEM (fatal). */
	int (*apply)(void *arg, raft_index index, const void *cmd, size_t len,
	    void **reply, size_t *reply_len);
	/* Serialise the whole state (malloc'd into *@data).  0 or -errno. */
	int (*snapshot)(void *arg, void **data, size_t *len);
	/* Replace the whole state.  0, or a negative code (fatal: a
	 * snapshot that was durable and checked must restore). */
	int (*restore)(void *arg, const void *data, size_t len);
};

struct node_member {
	raft_id id;
	char peer_endpoint[128];   /* "tcp://127.0.0.1:7001" */
	char curve_public[41];     /* Z85 public key, "" when CURVE is off */
};

struct node_config {
	uint64_t cluster_id;
	raft_id id;
	uint32_t n_members;
	struct node_member members[RAFT_MAX_MEMBERS];
	char curve_secret[41];     /* own Z85 secret key, "" when CURVE is off */
	char data_dir[4096];
	unsigned tick_ms;          /* default 10 */
	unsigned election_tick;    /* default 30 (300-600 ms) */
	unsigned heartbeat_tick;   /* default 5 (50 ms) */
	int64_t max_raft_state;    /* bytes of log before a snapshot; <= 0: never */
	int fault_injection;       /* allow node_set_fault(); tests only */
	int read_via_log;          /* read barriers commit an empty entry
	                              instead of using ReadIndex (comparison) */
	struct storage_options storage;
	struct node_app app;
};

/* Fill @c with the defaults above (members, ids and the app left empty). */
void node_config_defaults(struct node_config *c);

struct node;

/*
 * Open the data directory, recover, restore the application from the
 * latest snapshot, replay nothing yet (the log's committed entries are
 * re-applied as the cluster confirms them), bind the peer socket and start
 * the threads.  On failure writes one clear message into @err and returns
 * a negative code (storage codes, -EADDRINUSE, -EINVAL, -ENOMEM).
 */
int node_start(const struct node_config *cfg, struct node **out, char *err,
    size_t errlen);

/* Stop the threads (waiters get NODE_ESHUTDOWN), close everything, free.
 * What was acknowledged is durable already; nothing more is synced. */
void node_stop(struct node *n);

/* Make every waiting and every later node_submit()/node_read_barrier()
 * return NODE_ESHUTDOWN at once (the first step of shutting down). */
void node_cancel_waiters(struct node *n);

/*
 * Replicate @cmd (@len bytes, copied) and wait up to @timeout_ms for it to
 * be applied here.  On 0, *@reply (malloc'd, caller frees) holds the
 * application's reply.  *@leader_hint (may be NULL) is set to the leader
 * known when the call returns (0: none).
 */
int node_submit(struct node *n, const void *cmd, size_t len, int timeout_ms,
    void **reply, size_t *reply_len, raft_id *leader_hint);

/*
 * Called exactly once when an asynchronous submit ends, from one of the
 * member's threads (loop or applier): @status as node_submit() returns it,
 * @reply (malloc'd, ownership passes to the callee) and the leader hint.
 * It runs with the member's lock held: it must only hand the result on
 * (e.g. to a mailbox), never call back into the node.
 */
typedef void (*node_done_fn)(void *arg, int status, void *reply,
    size_t reply_len, raft_id leader);

/*
 * node_submit() without blocking: @done is called when the command has
 * been applied, has failed, or @timeout_ms passed (checked every tick).
 * Returns 0 (then @done will be called), or -ENOMEM / NODE_ESHUTDOWN
 * (then it will not).
 */
int node_submit_async(struct node *n, const void *cmd, size_t len,
    int timeout_ms, node_done_fn done, void *arg);

/* node_read_barrier() without blocking: @done (see node_done_fn; reply
 * always NULL) is called once the read may be served, or on failure or
 * timeout.  Returns 0 (then @done will be called), -ENOMEM or
 * NODE_ESHUTDOWN (then it will not). */
int node_read_barrier_async(struct node *n, int timeout_ms,
    node_done_fn done, void *arg);

/* Wait until a linearizable read may be served from local state: by
 * ReadIndex (no log write), or with cfg.read_via_log by committing an
 * empty entry through the log and waiting for it to apply here (empty
 * entries are barriers: the application never sees them).
 * Returns 0, NODE_ENOLEADER, RAFT_ENOTLEADER (via the log, on a
 * follower), NODE_ETIMEDOUT, NODE_ESHUTDOWN. */
int node_read_barrier(struct node *n, int timeout_ms, raft_id *leader_hint);

/*
 * An endpoint served on the loop thread itself: the client endpoint, so
 * that a request and its reply cost no hand-off between threads.  The loop
 * polls @sock (a ZeroMQ socket, owned by the loop while attached) and @fd
 * (e.g. a mailbox's eventfd, or -1) and, on every turn, calls @recv after
 * the peers' messages (what it posts with node_*_async() is handled in the
 * same turn) and @flush after the turn's ready batch (replies to commands
 * applied on the loop leave at once).  Both run on the loop thread and
 * must not block.
 */
struct node_endpoint {
	void *sock;
	int fd;
	void (*recv)(void *arg);
	void (*flush)(void *arg);
	void *arg;
};

/* Hand @ep to the loop; returns once the loop serves it: 0, -EINVAL (no
 * socket or callback), -EBUSY (one is attached already), -EDEADLK (called
 * on the loop thread), -ENOMEM or NODE_ESHUTDOWN. */
int node_attach_endpoint(struct node *n, const struct node_endpoint *ep);

/* Take the endpoint back: the loop calls @flush a last time and, once
 * this returns, never touches it again (the caller may close it) — also
 * when the node is stopping meanwhile: then it returns once the loop
 * thread has exited.  Call it before node_stop() returns, never from the
 * loop thread (an endpoint callback or a node_done_fn). */
void node_detach_endpoint(struct node *n);

struct node_status {
	struct raft_status raft;
	raft_index applied;        /* applied by the application */
	uint64_t log_bytes;        /* raft state size on disk */
	uint64_t snap_index;
	uint64_t syncs;
	uint64_t fsyncs;
	uint64_t entries_persisted;
	uint64_t msgs_sent;        /* peer messages, as of the last batch */
	uint64_t msgs_received;
	uint64_t msgs_dropped;     /* not sent (peer unreachable) or refused */
};
void node_status(struct node *n, struct node_status *st);

/* Ask the leader to hand over to @to.  0, RAFT_ENOTLEADER, -EINVAL. */
int node_transfer_leadership(struct node *n, raft_id to);

/* Fault injection (only if cfg.fault_injection): messages to @peer are
 * dropped with probability @drop_pct %, delayed by @delay_ms, or all
 * dropped while @blocked.  -EPERM when not enabled, -EINVAL bad peer. */
int node_set_fault(struct node *n, raft_id peer, unsigned drop_pct,
    unsigned delay_ms, int blocked);

#endif
