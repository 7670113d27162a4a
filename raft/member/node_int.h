/*
 * node_int.h - struct node and its loop's requests, shared by the two
 * halves of the event loop: node.c (the request loop: poll, mailbox,
 * endpoint service, life cycle) and node_ready.c (the raft_ready
 * hand-off).  See node.h for the threading model.
 *
 * Dependency: the loop -> the persister (persist.h) and the RSM
 * (rsm_int.h); neither includes this header.
 *
 * Locking: `mu` guards the status copy, `callers` and `loop_exited`.  The
 * core (struct raft) and the transport are touched by the loop thread
 * only; the storage by the persister (or the loop inline, while nothing
 * is at the persister).  Hand-offs go through mailboxes.
 */
#ifndef RAFTKV_NODE_INT_H
#define RAFTKV_NODE_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "raft/member/mbox.h"
#include "raft/member/node.h"
#include "raft/member/persist.h"
#include "raft/member/rsm_int.h"

struct transport;

/* The kinds of message in the loop's mailbox (struct mbox_msg.kind). */
enum loop_kind {
	LOOP_RSM = 1, /* a struct rsm_req: rsm_loop_run() */
	LOOP_DISK_DONE,
	LOOP_TRANSFER,
	LOOP_ENDPOINT, /* data: a struct node_endpoint, or NULL */
	LOOP_MEMBER, /* op: a membership change (node_member.c) */
};

/* A membership change a caller waits for (node_member_change). */
struct member_op {
	int type;
	raft_id id;
	struct memberdir_entry entry;
	bool allowed; /* counts when leading: node_member_change */
	uint64_t deadline_ms;
	raft_index index; /* loop: the entry proposed */
	raft_term term;
	sem_t done; /* posted with result and leader set */
	int result;
	raft_id leader;
};

/* The loop's own requests (kinds other than LOOP_RSM). */
struct loop_req {
	struct mbox_msg msg; /* first: the mailbox links these */
	void *data;
	raft_id to; /* LOOP_TRANSFER */
	struct persist_job *jobs; /* LOOP_DISK_DONE: a chain, oldest first */
	sem_t *answered; /* LOOP_ENDPOINT: posted when done, */
	int *result; /* with the outcome here */
	struct member_op *op; /* LOOP_MEMBER: the caller's */
};

struct node {
	struct node_config cfg;
	struct raft *raft;
	struct transport *tr;
	struct persist *persist;
	struct rsm *rsm;

	pthread_t loop_thread;
	bool loop_started;
	struct mbox loop_box; /* with eventfd: requests to the loop */
	atomic_bool stop_loop;

	unsigned disk_inflight; /* loop only: batches at the persister */
	uint64_t tick_deadline_ms; /* loop only; CLOCK_BOOTTIME ms (node.c) */
	uint64_t ticks; /* loop only */
	uint64_t max_turn_ms; /* loop only: the longest stalled turn logged */
	raft_id unreachable[RAFT_MAX_MEMBERS]; /* loop only: sends refused */
	uint32_t n_unreachable;
	struct raft_persist_token inline_token; /* loop only: persisted on */
	bool inline_persisted; /* the loop, due to raft_persisted() */
	uint64_t inline_persist_after_ms; /* loop only: a slow sync on the
	                             loop sends batches to the persister
	                             until then */
	struct node_endpoint ep; /* loop only: served when ep_on */
	bool ep_on;

	/* Membership (node_member.c). */
	struct member_op *mop; /* loop only: the change waited for */
	bool removed; /* loop only: our removal is committed */
	uint64_t removed_at_tick; /* loop only: then call cfg.removed */
	bool removed_called;
	struct {
		raft_id id;
		raft_index index; /* its committed removal */
		uint64_t until_ms;
		unsigned sent;
		bool committed; /* the removal is (notices are sent) */
	} linger[RAFT_MAX_MEMBERS]; /* loop only: removed members still
	                             connected, told of their removal */
	uint32_t n_linger;
	struct memberdir_gone gone; /* guarded by mu: the ids whose removal
	                 this member saw committed (in its log at start, its
	                 members file, a member snapshot) and no ADD since:
	                 not admitted once their linger ends; the keys of
	                 members removed, never admitted again by an ADD */
	raft_id held[RAFT_MAX_MEMBERS]; /* guarded by mu: ids whose removal
	                 is committed but that the configuration in force
	                 (or cfg.fresh) has again: not in gone while so */
	uint32_t n_held;
	atomic_bool dir_dirty; /* node_merge_directory() added entries, or
	                          the removed members changed: save */
	bool dir_save_failed; /* loop only: the last save failed (logged) */
	struct memberdir dir; /* guarded by mu; written by the loop and
	                             node_merge_directory() */
	struct raft_conf conf; /* guarded by mu: the one in force */
	raft_index conf_index;

	pthread_mutex_t mu;
	unsigned callers; /* threads inside an endpoint change */
	pthread_cond_t idle; /* signalled when callers drops to 0, and
	                             when the loop thread has exited */
	bool loop_exited;
	struct node_status status;
};

/* node_member.c: the directory and the conf entries of a ready batch:
 * new peers connected, removed ones closed, change waiters answered
 * (loop, before raft_advance). */
void node_member_ready(struct node *n, const struct raft_ready *rd);
/* node_member.c: a LOOP_MEMBER request (loop). */
void node_member_request(struct node *n, struct member_op *op);
/* node_member.c: timeouts, the removal's grace (loop, every tick). */
void node_member_tick(struct node *n);
/* node_member.c: the conf entries of the log at start (their ctx). */
void node_member_boot(struct node *n, const struct raft_boot *boot);
/* node_member.c: the transport's members from the configuration in
 * force and the directory (creating the transport when there is none
 * yet).  0 or the transport's codes. */
int node_member_sync(struct node *n);
/* node_member.c: fail the waiting change (stopping; loop gone). */
void node_member_stop(struct node *n);
/* node.c: finish a member_op (any thread). */
void node_member_finish(struct member_op *op, int result, raft_id leader);

/* node_ready.c: raft_ready() until idle, each batch handed on (loop). */
void node_ready_handle(struct node *n);

/* node_ready.c: a chain of jobs the persister made durable (loop). */
void node_ready_disk_done(struct node *n, struct persist_job *chain);

#endif
