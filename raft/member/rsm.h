/*
 * rsm.h - the replicated state machine (RSM) of a member: what a front
 * end (the client endpoint, an in-process benchmark, mount.raftkv) uses to
 * change the replicated state and to read it linearizably.
 *
 * The application plugs in through struct rsm_app; the member's event loop
 * (node.c) creates the RSM and feeds it committed entries; a front end
 * gets it from node_rsm() or member_rsm().  rsm_submit() and
 * rsm_read_barrier() block: call them from any thread but the loop's
 * (never from an endpoint callback or an rsm_done_fn); the _async ones
 * may be called from any thread, the loop's included.
 *
 * Contract (the seeds' 6.5840 4A):
 *   rsm_submit()  returns the application's reply once the command is
 *                 applied, or RAFT_ENOTLEADER (with a leader hint),
 *                 NODE_ELOST (the entry was overwritten: leadership was
 *                 lost before it committed), NODE_ETIMEDOUT (unknown
 *                 outcome), NODE_ESHUTDOWN.
 *   rsm_read_barrier()  returns once the local application has applied
 *                 a linearizable read point (ReadIndex; on a follower the
 *                 leader supplies it); the caller then reads local state
 *                 (its own application object, or rsm_query()).
 */
#ifndef RAFTKV_RSM_H
#define RAFTKV_RSM_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/*
 * The application.  apply(), snapshot() (or snapshot_begin()) and
 * restore() run one at a time, never concurrently: snapshot() and
 * restore() on the applier thread,
 * apply() there too or, for a small batch while the applier is idle, on
 * the member's loop thread — so apply() must be quick, must not call into
 * the member, and may wait only for short critical sections of the
 * application's own (a lock that readers hold for one bounded query, with
 * writers preferred).  apply() must be deterministic: the same commands
 * in the same order give the same state and replies on every member.
 *
 * query() and query_quick() read local state concurrently with apply()
 * (the application locks): query() on any thread, query_quick() on the
 * loop thread, so it must be quick itself.  Both are optional.
 */
struct rsm_app {
	void *arg;
	/* Apply the command at @index; put the reply in *@reply (malloc'd,
	 * may be NULL with *@reply_len 0).  Returns 0 or -ENOMEM (fatal). */
	int (*apply)(void *arg, raft_index index, const void *cmd, size_t len,
	    void **reply, size_t *reply_len);
	/* Serialise the whole state (malloc'd into *@data).  0 or -errno. */
	int (*snapshot)(void *arg, void **data, size_t *len);
	/* Optional, both or neither: snapshot() in two steps, so that
	 * applying waits only while the state is copied, never while it is
	 * compressed.  snapshot_begin() runs between applies, as snapshot()
	 * would (on the RSM's snapshot thread, at a lower priority, while the
	 * applier waits), and captures the state as of the last apply into
	 * *@view (opaque; ownership passes to the RSM), quickly: a copy, no
	 * compression.  snapshot_finish() runs next on that thread,
	 * concurrently with apply() and query(): it turns
	 * @view into what snapshot() would have returned at that point
	 * (*@data, malloc'd) and frees @view whatever it returns; with @data
	 * NULL (shutting down) it only frees @view.  0 or -errno. */
	int (*snapshot_begin)(void *arg, void **view);
	int (*snapshot_finish)(void *arg, void *view, void **data, size_t *len);
	/* Replace the whole state.  0, or a negative code (fatal: a
	 * snapshot that was durable and checked must restore). */
	int (*restore)(void *arg, const void *data, size_t len);
	/* Answer query @q from local state (*@reply malloc'd).  0 or a
	 * negative code, answered to the client. */
	int (*query)(void *arg, const void *q, size_t len, void **reply,
	    size_t *reply_len);
	/* As query(), if that is quick (e.g. a GET of a small value), or
	 * -EAGAIN to leave it to query() on another thread. */
	int (*query_quick)(void *arg, const void *q, size_t len, void **reply,
	    size_t *reply_len);
};

struct rsm;

/*
 * Replicate @cmd (@len bytes, copied) and wait up to @timeout_ms for it to
 * be applied here.  On 0, *@reply (malloc'd, caller frees) holds the
 * application's reply.  *@leader_hint (may be NULL) is set to the leader
 * known when the call returns (0: none).  Errors: see the file header,
 * and -ENOMEM.
 */
int rsm_submit(struct rsm *r, const void *cmd, size_t len, int timeout_ms,
    void **reply, size_t *reply_len, raft_id *leader_hint);

/*
 * Called exactly once when an asynchronous call ends, from one of the
 * member's threads (loop or applier): @status as rsm_submit() returns it,
 * @reply (malloc'd, ownership passes to the callee) and the leader hint.
 * It runs with the RSM's lock held: it must only hand the result on
 * (e.g. to a mailbox), never call back into the RSM or the node.
 */
typedef void (*rsm_done_fn)(void *arg, int status, void *reply,
    size_t reply_len, raft_id leader);

/*
 * rsm_submit() without blocking: @done is called when the command has
 * been applied, has failed, or @timeout_ms passed (checked every tick).
 * Returns 0 (then @done will be called), or -ENOMEM / NODE_ESHUTDOWN
 * (then it will not).
 */
int rsm_submit_async(struct rsm *r, const void *cmd, size_t len, int timeout_ms,
    rsm_done_fn done, void *arg);

/*
 * Wait until a linearizable read may be served from local state: by
 * ReadIndex (no log write), or with read_via_log by committing an empty
 * entry through the log and waiting for it to apply here (empty entries
 * are barriers: the application never sees them).
 * Returns 0, NODE_ENOLEADER, RAFT_ENOTLEADER (via the log, on a
 * follower), NODE_ETIMEDOUT, NODE_ESHUTDOWN, -ENOMEM.
 */
int rsm_read_barrier(struct rsm *r, int timeout_ms, raft_id *leader_hint);

/* rsm_read_barrier() without blocking: @done (see rsm_done_fn; reply
 * always NULL) is called once the read may be served, or on failure or
 * timeout.  Returns 0 (then @done will be called), -ENOMEM or
 * NODE_ESHUTDOWN (then it will not). */
int rsm_read_barrier_async(struct rsm *r, int timeout_ms, rsm_done_fn done,
    void *arg);

/* Answer @q with the application's query(): as that returns, or -ENOSYS
 * when the application has none.  No barrier: call rsm_read_barrier()
 * first for a linearizable answer. */
int rsm_query(struct rsm *r, const void *q, size_t len, void **reply,
    size_t *reply_len);

/* Answer @q with the application's query_quick() (loop thread only): as
 * that returns; -EAGAIN when it has none or leaves @q to rsm_query(). */
int rsm_query_quick(struct rsm *r, const void *q, size_t len, void **reply,
    size_t *reply_len);

/* Make every waiting and every later call above return NODE_ESHUTDOWN at
 * once (the first step of shutting down). */
void rsm_cancel(struct rsm *r);

/* The index applied by the application so far. */
raft_index rsm_applied(struct rsm *r);

#endif
