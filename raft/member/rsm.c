/*
 * rsm.c - the replicated state machine: the applier thread, the table of
 * waiting submitters, the read barrier and the snapshot policy.
 *
 * A submitter's waiter is registered under the index and term its entry got
 * from raft_propose().  When the applier reaches that index it compares the
 * term: the same term means this is our entry and its reply is handed over;
 * another term means a new leader replaced it (NODE_ELOST).  A snapshot
 * restored past a waiting index leaves the outcome unknown
 * (NODE_ETIMEDOUT): the application's own duplicate detection makes a
 * retry safe.  Submitters are therefore never told "failed" for an entry
 * that may still commit, and never wait past their deadline.
 *
 * Reads: the loop obtains a read index (ReadIndex); the reader waits until
 * the applier has applied it.
 *
 * Snapshots (the seeds' maxraftstate): after each batch, if the log on
 * disk holds more than max_raft_state bytes and no compaction is under way,
 * the applier asks the application for its state and posts it to the loop,
 * which hands it to raft_compact(); the disk thread clears compact_pending
 * once the snapshot file is durable and the log was cut.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/util/logging.h"
#include "raft/member/node_int.h"

static struct waiter **bucket(struct node *n, raft_index index)
{
	return &n->table[index % NODE_WAIT_BUCKETS];
}

void rsm_waiter_put_locked(struct node *n, struct waiter *w)
{
	(void)n;
	if (--w->refs > 0)
		return;
	free(w->reply);
	pthread_cond_destroy(&w->cv);
	free(w);
}

static void unlink_from(struct waiter **head, struct waiter *w)
{
	for (struct waiter **p = head; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			w->next = NULL;
			return;
		}
	}
}

static void leave_lists_locked(struct node *n, struct waiter *w)
{
	if (!w->in_table)
		return;
	if (!w->is_read)
		unlink_from(bucket(n, w->index), w);
	else if (w->index == 0)
		unlink_from(&n->read_ctx, w);
	else
		unlink_from(&n->reads, w);
	w->in_table = false;
	rsm_waiter_put_locked(n, w);
}

void rsm_register_locked(struct node *n, struct waiter *w)
{
	struct waiter **head;

	if (w->done)
		return; /* its caller gave up already */
	if (!w->is_read)
		head = bucket(n, w->index);
	else
		head = w->index == 0 ? &n->read_ctx : &n->reads;
	w->next = *head;
	*head = w;
	w->in_table = true;
	w->refs++;
}

void rsm_complete_locked(struct node *n, struct waiter *w, int status)
{
	if (w->done)
		return;
	w->done = true;
	w->status = status;
	if (w->done_fn != NULL) {
		w->done_fn(w->done_arg, status, status == 0 ? w->reply : NULL,
		    status == 0 ? w->reply_len : 0, n->leader_hint);
		if (status == 0)
			w->reply = NULL; /* handed over */
	} else {
		pthread_cond_signal(&w->cv);
	}
	leave_lists_locked(n, w);
}

void rsm_fail_from(struct node *n, raft_index index)
{
	pthread_mutex_lock(&n->mu);
	for (unsigned b = 0; b < NODE_WAIT_BUCKETS; b++) {
		struct waiter **p = &n->table[b];

		while (*p) {
			if ((*p)->index >= index)
				rsm_complete_locked(n, *p, NODE_ELOST);
			else
				p = &(*p)->next;
		}
	}
	pthread_mutex_unlock(&n->mu);
}

static void expire_list_locked(struct node *n, struct waiter **p,
    uint64_t now_ms)
{
	while (*p) {
		if ((*p)->done_fn && (*p)->deadline_ms <= now_ms)
			rsm_complete_locked(n, *p, NODE_ETIMEDOUT);
		else
			p = &(*p)->next;
	}
}

void rsm_expire(struct node *n, uint64_t now_ms)
{
	pthread_mutex_lock(&n->mu);
	for (unsigned b = 0; b < NODE_WAIT_BUCKETS; b++)
		expire_list_locked(n, &n->table[b], now_ms);
	expire_list_locked(n, &n->reads, now_ms);
	expire_list_locked(n, &n->read_ctx, now_ms);
	pthread_mutex_unlock(&n->mu);
}

void rsm_fail_all(struct node *n, int status)
{
	pthread_mutex_lock(&n->mu);
	for (unsigned b = 0; b < NODE_WAIT_BUCKETS; b++)
		while (n->table[b])
			rsm_complete_locked(n, n->table[b], status);
	while (n->reads)
		rsm_complete_locked(n, n->reads, status);
	while (n->read_ctx)
		rsm_complete_locked(n, n->read_ctx, status);
	pthread_mutex_unlock(&n->mu);
}

void rsm_read_state(struct node *n, uint64_t ctx, raft_index index, int status)
{
	struct waiter *w;

	pthread_mutex_lock(&n->mu);
	for (w = n->read_ctx; w && w->ctx != ctx; w = w->next)
		;
	if (w == NULL)
		goto out; /* its caller gave up */
	if (status != 0 || index <= n->applied) {
		rsm_complete_locked(n, w, status);
		goto out;
	}
	/* Move it to the list the applier watches. */
	w->refs++;
	leave_lists_locked(n, w);
	w->index = index;
	rsm_register_locked(n, w);
	rsm_waiter_put_locked(n, w);
out:
	pthread_mutex_unlock(&n->mu);
}

/* ------------------------------------------------------------ applier */

static void wake_reads_locked(struct node *n)
{
	struct waiter **p = &n->reads;

	while (*p) {
		struct waiter *w = *p;

		if (w->index <= n->applied) {
			rsm_complete_locked(n, w, 0);
			continue; /* *p now names the next one */
		}
		p = &w->next;
	}
}

static void deliver(struct node *n, const struct raft_entry *e, void *reply,
    size_t reply_len)
{
	struct waiter **p;

	pthread_mutex_lock(&n->mu);
	p = bucket(n, e->index);
	while (*p) {
		struct waiter *w = *p;

		if (w->index != e->index) {
			p = &w->next;
			continue;
		}
		if (w->term == e->term && e->type == RAFT_ENTRY_NORMAL) {
			w->reply = reply;
			w->reply_len = reply_len;
			reply = NULL;
			rsm_complete_locked(n, w, 0);
		} else {
			rsm_complete_locked(n, w, NODE_ELOST);
		}
	}
	n->applied = e->index;
	pthread_mutex_unlock(&n->mu);
	free(reply);
}

static void apply_entries(struct node *n, const struct raft_entry *entries,
    uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		const struct raft_entry *e = &entries[i];
		void *reply = NULL;
		size_t reply_len = 0;

		/* Empty entries are read barriers (node_read_barrier with
		 * read_via_log): nothing for the application. */
		if (e->type == RAFT_ENTRY_NORMAL && e->len > 0 &&
		    n->cfg.app.apply(n->cfg.app.arg, e->index, e->data, e->len,
		    &reply, &reply_len) != 0)
			fatalx("apply of entry %llu failed: out of memory",
			    (unsigned long long)e->index);
		deliver(n, e, reply, reply_len);
	}
}

static void restore(struct node *n, const struct apply_item *it)
{
	int rv = n->cfg.app.restore(n->cfg.app.arg, it->snap_data, it->snap_len);

	if (rv != 0)
		fatalx("restoring snapshot %llu failed: %s",
		    (unsigned long long)it->snap.index, rk_strerror(rv));
	log_info("restored snapshot at index %llu term %llu (%llu bytes)",
	    (unsigned long long)it->snap.index,
	    (unsigned long long)it->snap.term,
	    (unsigned long long)it->snap_len);
	pthread_mutex_lock(&n->mu);
	/* Waiters inside the snapshot: their outcome is not known here. */
	for (unsigned b = 0; b < NODE_WAIT_BUCKETS; b++) {
		struct waiter **p = &n->table[b];

		while (*p) {
			if ((*p)->index <= it->snap.index)
				rsm_complete_locked(n, *p, NODE_ETIMEDOUT);
			else
				p = &(*p)->next;
		}
	}
	n->applied = it->snap.index;
	pthread_mutex_unlock(&n->mu);
}

/* The log on disk outgrew max_raft_state and no compaction is under way. */
bool rsm_snapshot_due(struct node *n)
{
	bool due;

	if (n->cfg.max_raft_state <= 0 ||
	    atomic_load(&n->log_bytes) <= (uint64_t)n->cfg.max_raft_state)
		return false;
	pthread_mutex_lock(&n->mu);
	due = !n->compact_pending;
	pthread_mutex_unlock(&n->mu);
	return due;
}

static void maybe_snapshot(struct node *n)
{
	struct loop_req *req;
	void *data = NULL;
	size_t len = 0;
	raft_index at;
	int rv;

	if (!rsm_snapshot_due(n))
		return;
	pthread_mutex_lock(&n->mu);
	if (n->compact_pending) {
		pthread_mutex_unlock(&n->mu);
		return;
	}
	n->compact_pending = true;
	at = n->applied;
	pthread_mutex_unlock(&n->mu);
	rv = n->cfg.app.snapshot(n->cfg.app.arg, &data, &len);
	req = calloc(1, sizeof(*req));
	if (rv != 0 || req == NULL) {
		log_warnx("snapshot at %llu failed: %s", (unsigned long long)at,
		    rk_strerror(rv ? rv : -ENOMEM));
		free(data);
		free(req);
		pthread_mutex_lock(&n->mu);
		n->compact_pending = false;
		pthread_mutex_unlock(&n->mu);
		return;
	}
	req->kind = LOOP_COMPACT;
	req->index = at;
	req->data = data;
	req->len = len;
	if (node_post(n, req) != 0) {
		free(data);
		free(req);
	}
}

void rsm_apply_item_free(struct apply_item *it)
{
	free(it->snap_data);
	free(it->entries);
	free(it->blob);
	free(it);
}

/*
 * Apply a small committed batch on the loop thread, the core's entries
 * borrowed until raft_advance().  The loop calls this only while
 * apply_pending is 0: the applier is idle and nothing is queued before
 * these entries, so the application still sees one caller at a time, in
 * order.  It saves the hand-off to the applier and, for a submitter on
 * the loop's side, a wake-up.  The snapshot check stays on the applier
 * (the loop queues it an empty item when rsm_snapshot_due()).
 */
void rsm_apply_inline(struct node *n, const struct raft_entry *e,
    uint32_t count)
{
	apply_entries(n, e, count);
	pthread_mutex_lock(&n->mu);
	wake_reads_locked(n);
	pthread_mutex_unlock(&n->mu);
}

void *rsm_apply_main(void *arg)
{
	struct node *n = arg;
	struct mbox_item *chain;

	while ((chain = mbox_wait_all(&n->apply_box)) != NULL) {
		unsigned done = 0;

		while (chain) {
			struct apply_item *it = (struct apply_item *)chain;

			chain = chain->next;
			if (it->restore)
				restore(n, it);
			else
				apply_entries(n, it->entries, it->n_entries);
			rsm_apply_item_free(it);
			done++;
		}
		pthread_mutex_lock(&n->mu);
		wake_reads_locked(n);
		pthread_mutex_unlock(&n->mu);
		maybe_snapshot(n);
		atomic_fetch_sub(&n->apply_pending, done);
	}
	return NULL;
}

/* ------------------------------------------------------------ callers */

static void leave_call(struct node *n, struct waiter *w)
{
	rsm_waiter_put_locked(n, w);
	if (--n->callers == 0)
		pthread_cond_broadcast(&n->idle);
	pthread_mutex_unlock(&n->mu);
}

static struct waiter *waiter_new(bool is_read)
{
	struct waiter *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;

	if (w == NULL)
		return NULL;

	/* Deadlines on the monotonic clock: a wall-clock step must not
	 * stretch or cut a wait. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->is_read = is_read;
	w->refs = 2; /* the caller and the loop request */
	return w;
}

/*
 * A new waiter and the loop request carrying it (@cmd copied).  The waiter
 * starts with two references, the caller's and the request's.  Returns
 * the request (req->w is the waiter), or NULL on ENOMEM.
 */
static struct loop_req *request_new(enum loop_kind kind, const void *cmd,
    size_t len)
{
	struct waiter *w = waiter_new(kind == LOOP_READ);
	struct loop_req *req = calloc(1, sizeof(*req));

	if (w == NULL || req == NULL || (req->data = malloc(len ? len : 1)) ==
	    NULL) {
		if (w)
			pthread_cond_destroy(&w->cv);
		free(w);
		free(req);
		return NULL;
	}
	if (len)
		memcpy(req->data, cmd, len);
	req->len = len;
	req->kind = kind;
	req->w = w;
	return req;
}

/* @timeout_ms from now on the waiters' clock; below 1 ms counts as 1, as
 * for the asynchronous calls (a negative one must not make an invalid
 * timespec, on which pthread_cond_timedwait fails at once, forever). */
static void deadline_after(struct timespec *ts, int timeout_ms)
{
	if (timeout_ms < 1)
		timeout_ms = 1;
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Post @req for @w and wait; returns the outcome with n->mu held and the
 * caller counted in n->callers (leave_call() undoes both). */
static int wait_for(struct node *n, struct waiter *w, struct loop_req *req,
    int timeout_ms)
{
	struct timespec deadline;

	pthread_mutex_lock(&n->mu);
	n->callers++;
	if (n->stopping) {
		w->refs--; /* the request will never run */
		free(req->data);
		free(req);
		return NODE_ESHUTDOWN;
	}
	pthread_mutex_unlock(&n->mu);
	if (node_post(n, req) != 0) {
		pthread_mutex_lock(&n->mu);
		w->refs--;
		free(req->data);
		free(req);
		return NODE_ESHUTDOWN;
	}
	deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&n->mu);
	while (!w->done) {
		if (pthread_cond_timedwait(&w->cv, &n->mu, &deadline) ==
		    ETIMEDOUT) {
			rsm_complete_locked(n, w, NODE_ETIMEDOUT);
			break;
		}
	}
	return w->status;
}

int node_submit(struct node *n, const void *cmd, size_t len, int timeout_ms,
    void **reply, size_t *reply_len, raft_id *leader_hint)
{
	struct loop_req *req = request_new(LOOP_PROPOSE, cmd, len);
	struct waiter *w;
	int rv;

	*reply = NULL;
	*reply_len = 0;
	if (req == NULL)
		return -ENOMEM;
	w = req->w;
	rv = wait_for(n, w, req, timeout_ms);
	if (rv == 0) {
		*reply = w->reply;
		*reply_len = w->reply_len;
		w->reply = NULL;
	}
	if (leader_hint)
		*leader_hint = n->leader_hint;
	leave_call(n, w);
	return rv;
}

/* Post an asynchronous request of @kind for a new waiter. */
static int post_async(struct node *n, enum loop_kind kind, const void *cmd,
    size_t len, int timeout_ms, node_done_fn done, void *arg)
{
	struct loop_req *req = request_new(kind, cmd, len);
	struct waiter *w;

	if (req == NULL)
		return -ENOMEM;
	w = req->w;
	w->refs = 1; /* the loop request only: nobody waits on it */
	w->done_fn = done;
	w->done_arg = arg;
	w->deadline_ms = node_now_ms() + (uint64_t)(timeout_ms > 0 ?
	    timeout_ms : 1);
	pthread_mutex_lock(&n->mu);
	if (n->stopping) {
		pthread_mutex_unlock(&n->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		free(req->data);
		free(req);
		return NODE_ESHUTDOWN;
	}
	pthread_mutex_unlock(&n->mu);
	if (node_post(n, req) != 0) {
		pthread_cond_destroy(&w->cv);
		free(w);
		free(req->data);
		free(req);
		return NODE_ESHUTDOWN;
	}
	return 0;
}

int node_submit_async(struct node *n, const void *cmd, size_t len,
    int timeout_ms, node_done_fn done, void *arg)
{
	return post_async(n, LOOP_PROPOSE, cmd, len, timeout_ms, done, arg);
}

int node_read_barrier_async(struct node *n, int timeout_ms,
    node_done_fn done, void *arg)
{
	if (n->cfg.read_via_log)
		return post_async(n, LOOP_PROPOSE, "", 0, timeout_ms, done,
		    arg);
	return post_async(n, LOOP_READ, NULL, 0, timeout_ms, done, arg);
}

int node_read_barrier(struct node *n, int timeout_ms, raft_id *leader_hint)
{
	struct waiter *w;
	struct loop_req *req;
	int rv;

	if (n->cfg.read_via_log) {
		void *reply = NULL;
		size_t len = 0;

		rv = node_submit(n, "", 0, timeout_ms, &reply, &len,
		    leader_hint);
		free(reply);
		return rv;
	}
	req = request_new(LOOP_READ, NULL, 0);
	if (req == NULL)
		return -ENOMEM;
	w = req->w;
	rv = wait_for(n, w, req, timeout_ms);
	if (leader_hint)
		*leader_hint = n->leader_hint;
	leave_call(n, w);
	return rv;
}
