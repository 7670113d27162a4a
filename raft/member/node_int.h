/*
 * node_int.h - struct node and the pieces its three threads share
 * (node.c: event loop; disk.c: persistence thread; rsm.c: applier, waiters,
 * submit and read barrier).  See node.h for the threading model.
 *
 * Locking: `mu` guards the waiter table, the read waiters, `applied`,
 * `leader_hint`, the status copy and `stopping`.  The core (struct raft)
 * and the transport are touched by the loop thread only; struct storage by
 * the disk thread only (after node_start).  Hand-offs go through mailboxes.
 */
#ifndef RAFTKV_NODE_INT_H
#define RAFTKV_NODE_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "raft/member/mbox.h"
#include "raft/member/node.h"

struct transport;

/* A caller of node_submit() or node_read_barrier(), waiting. */
struct waiter {
	struct waiter *next;      /* hash chain, or the read list */
	pthread_cond_t cv;
	int refs;                 /* guarded by node.mu */
	bool done;
	bool is_read;
	bool in_table;
	raft_index index;
	raft_term term;
	uint64_t ctx;             /* read requests */
	int status;
	void *reply;
	size_t reply_len;
	node_done_fn done_fn;     /* asynchronous submit: called instead of cv */
	void *done_arg;
	uint64_t deadline_ms;     /* asynchronous: expire after (monotonic) */
};

enum loop_kind {
	LOOP_PROPOSE = 1,
	LOOP_READ,
	LOOP_COMPACT,
	LOOP_DISK_DONE,
	LOOP_TRANSFER,
	LOOP_ENDPOINT,            /* data: a struct node_endpoint, or NULL */
};

struct loop_req {
	struct mbox_item item;    /* first: the mailbox links these */
	enum loop_kind kind;
	struct waiter *w;
	void *data;
	size_t len;
	raft_index index;
	raft_id to;
	struct disk_job *jobs;    /* LOOP_DISK_DONE: a chain, oldest first */
	sem_t *answered;          /* LOOP_ENDPOINT: posted when done, */
	int *result;              /* with the outcome here */
};

/* One raft_ready batch's persistence, copied out of the core. */
struct disk_job {
	struct mbox_item item;
	struct disk_job *next;    /* chain handed back to the loop */
	bool must_persist;
	bool hs_changed;
	struct raft_hard_state hs;
	struct raft_entry *entries;
	uint32_t n_entries;
	uint8_t *blob;            /* the entries' data, one block */
	bool has_snapshot;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	uint64_t snap_len;
	struct raft_persist_token token;
	struct raft_msg *after;   /* msgs_after_persist (no entries, no chunks) */
	uint32_t n_after;
};

/* Work for the applier: a snapshot to restore, or committed entries. */
struct apply_item {
	struct mbox_item item;
	bool restore;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	uint64_t snap_len;
	struct raft_entry *entries;
	uint32_t n_entries;
	uint8_t *blob;
};

#define NODE_WAIT_BUCKETS 1024

struct node {
	struct node_config cfg;
	struct raft *raft;
	struct transport *tr;
	struct storage *st;

	pthread_t loop_thread;
	pthread_t disk_thread;
	pthread_t apply_thread;
	bool threads_started[3];

	struct mbox loop_box;     /* with eventfd: requests to the loop */
	struct mbox disk_box;     /* batches to persist */
	struct mbox apply_box;    /* work for the applier */
	atomic_bool stop_loop;
	/* Items queued to the applier and not yet finished (it decrements
	 * after a whole chain, snapshot check included).  Zero means the
	 * applier is idle with nothing queued, so the loop may apply a small
	 * batch itself: order is kept because only the loop queues. */
	atomic_uint apply_pending;

	unsigned disk_inflight;   /* loop only: batches at the disk thread */
	uint64_t next_ctx;        /* loop only: read-index contexts */
	uint64_t tick_deadline_ms;/* loop only */
	uint64_t ticks;           /* loop only */
	raft_id unreachable[RAFT_MAX_MEMBERS]; /* loop only: sends refused */
	uint32_t n_unreachable;
	struct raft_persist_token inline_token; /* loop only: persisted on */
	bool inline_persisted;    /* the loop, due to raft_persisted() */
	uint64_t inline_persist_after_ms; /* loop only: a slow sync on the
	                             loop sends batches to the disk thread
	                             until then */
	struct node_endpoint ep;  /* loop only: served when ep_on */
	bool ep_on;

	pthread_mutex_t mu;
	struct waiter *table[NODE_WAIT_BUCKETS];
	struct waiter *reads;     /* read waiters with a known index */
	struct waiter *read_ctx;  /* read waiters waiting for their index */
	raft_index applied;
	raft_id leader_hint;
	bool stopping;
	unsigned callers;         /* threads inside submit / read barrier */
	pthread_cond_t idle;      /* signalled when callers drops to 0, and
	                             when the loop thread has exited */
	bool loop_exited;
	struct node_status status;
	bool compact_pending;

	atomic_uint_fast64_t log_bytes;     /* written by the disk thread */
	atomic_uint_fast64_t syncs;
	atomic_uint_fast64_t fsyncs;
	atomic_uint_fast64_t entries_persisted;
};

/* rsm.c */
void *rsm_apply_main(void *arg);
void rsm_waiter_put_locked(struct node *n, struct waiter *w);
void rsm_register_locked(struct node *n, struct waiter *w);
void rsm_complete_locked(struct node *n, struct waiter *w, int status);
void rsm_read_state(struct node *n, uint64_t ctx, raft_index index, int status);
void rsm_apply_inline(struct node *n, const struct raft_entry *e,
    uint32_t count);
bool rsm_snapshot_due(struct node *n);
void rsm_apply_item_free(struct apply_item *it);
void rsm_fail_all(struct node *n, int status);
void rsm_expire(struct node *n, uint64_t now_ms);
void rsm_fail_from(struct node *n, raft_index index);

/* disk.c */
void *disk_main(void *arg);
void disk_persist_inline(struct node *n, const struct raft_ready *rd);
void disk_job_free(struct disk_job *j);
void disk_job_free_chain(struct disk_job *j);

/* node.c */
uint64_t node_now_ms(void);
int node_post(struct node *n, struct loop_req *req);

#endif
