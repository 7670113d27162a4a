/*
 * rsm_int.h - the RSM as the member's event loop drives it (node.c,
 * node_ready.c): creation, the ready batch's committed entries and read
 * states, the requests the RSM posts to the loop, shutdown.
 *
 * Dependency: loop -> RSM.  The RSM never includes a loop header; it
 * reaches the loop only through the struct rsm_loop it is given at
 * rsm_new(): post() puts a request (a struct mbox_msg tagged msg_kind) in
 * the loop's mailbox, and the loop hands each such message back to
 * rsm_loop_run() on its own thread, where the RSM proposes, asks for a
 * read index or compacts.  Functions named rsm_loop_* and rsm_ready_*
 * run on the loop thread only; they are handed the core when they need it.
 */
#ifndef RAFTKV_RSM_INT_H
#define RAFTKV_RSM_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/member/mbox.h"
#include "raft/member/rsm.h"

/* How the RSM reaches the loop. */
struct rsm_loop {
	void *arg;
	int msg_kind; /* the tag of every message posted */
	/* Queue @m to the loop (ownership passes on 0); nonzero when the
	 * loop no longer takes requests (the caller keeps @m).  Any thread. */
	int (*post)(void *arg, struct mbox_msg *m);
	/* Bytes of Raft state on disk now (any thread, lock-free). */
	uint64_t (*log_bytes)(void *arg);
};

struct rsm_config {
	struct rsm_app app; /* apply, snapshot and restore required */
	int64_t max_raft_state; /* bytes of log before a snapshot; <= 0:
	                             never */
	bool read_via_log; /* read barriers commit an empty entry */
	struct rsm_loop loop;
};

/* Create the RSM (no thread yet).  0, -EINVAL (an app callback missing),
 * -ENOMEM or -errno (the applier's mailbox). */
int rsm_new(const struct rsm_config *c, struct rsm **out);

/* Start the applier thread.  0 or -errno. */
int rsm_start(struct rsm *r);

/* Shutting down, step 1: refuse new calls (NODE_ESHUTDOWN); requests
 * the loop still runs fail with NODE_ESHUTDOWN too. */
void rsm_refuse(struct rsm *r);

/* Step 2, once the loop thread is gone: stop and join the applier. */
void rsm_join(struct rsm *r);

/* Step 3: fail every waiter (NODE_ESHUTDOWN), wait until no caller is
 * inside rsm_submit()/rsm_read_barrier(), free.  NULL is fine. */
void rsm_free(struct rsm *r);

/* A message the RSM posted, on the loop thread: carry it out with the
 * core @raft and free it. */
void rsm_loop_run(struct rsm *r, struct raft *raft, struct mbox_msg *m);

/* A message the RSM posted that the loop will never run (stopping): fail
 * its waiter with NODE_ESHUTDOWN and free it. */
void rsm_loop_drop(struct rsm *r, struct mbox_msg *m);

/* Every 10 ticks: end asynchronous calls past their deadline. */
void rsm_loop_expire(struct rsm *r, uint64_t now_ms);

/* A ready batch discarded the log from @index on: its proposals there can
 * never commit (NODE_ELOST). */
void rsm_ready_truncated(struct rsm *r, raft_index index);

/* A ready batch's committed entries (applied here when small and the
 * applier is idle, else copied to the applier), snapshot to restore and
 * read states.  Borrows from @rd only until it returns. */
void rsm_ready_commit(struct rsm *r, const struct raft_ready *rd);

/* The leader as of the last ready batch (the hint handed to callers). */
void rsm_ready_leader(struct rsm *r, raft_id leader);

/* A snapshot was made durable and the log cut: a compaction may start
 * again when the log grows. */
void rsm_loop_compacted(struct rsm *r);

#endif
