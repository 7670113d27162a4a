/*
 * rsm.c - the replicated state machine: the applier thread, the table of
 * waiting submitters, the read barrier and the snapshot policy (rsm.h is
 * its contract for front ends, rsm_int.h its interface to the loop).
 *
 * Dependency: the loop (node.c, node_ready.c) calls into this file; this
 * file includes no loop or persister header and reaches the loop only
 * through the struct rsm_loop callbacks it was created with (post() to
 * queue a request, log_bytes() for the snapshot policy).
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
 * which hands it to raft_compact_buf() (the bytes change hands, never
 * copied on the loop); the loop calls rsm_loop_compacted() once the
 * persister made the snapshot durable and cut the log.  For an
 * application with snapshot_begin(), the applier only waits while the
 * snapshot thread (at a lower priority) captures the state
 * (snapshot_begin(), a copy); that thread then compresses the copy
 * (snapshot_finish()) and posts the result while the applier goes on
 * applying: a big state's compression (seconds per GiB) holds up neither
 * commands nor the loop.
 *
 * Threads: callers (any), the loop (rsm_loop_*, rsm_ready_*), the
 * applier and the snapshot thread (snap_main: snapshot_finish() only).  `mu` guards the waiter tables, `applied`, `stopping`,
 * `callers` and `compact_pending`; `next_ctx` is the loop's alone; the
 * leader hint is an atomic the loop stores once per ready batch.
 */
#define _GNU_SOURCE /* gettid */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "raft/util/clock.h"
#include "raft/util/logging.h"
#include "raft/member/copy.h"
#include "raft/member/rsm_int.h"

/* A caller of rsm_submit() or rsm_read_barrier(), waiting. */
struct waiter {
	struct waiter *next; /* hash chain, or the read list */
	pthread_cond_t cv;
	int refs; /* guarded by rsm.mu */
	bool done;
	bool is_read;
	bool in_table;
	raft_index index;
	raft_term term;
	uint64_t ctx; /* read requests */
	int status;
	void *reply;
	size_t reply_len;
	rsm_done_fn done_fn; /* asynchronous call: called instead of cv */
	void *done_arg;
	uint64_t deadline_ms; /* asynchronous: expire after (monotonic) */
};

enum req_op {
	REQ_PROPOSE = 1,
	REQ_READ,
	REQ_COMPACT,
};

/* A request to the loop (rsm_loop.post), run by rsm_loop_run(). */
struct rsm_req {
	struct mbox_msg msg; /* first: the loop's mailbox carries these */
	enum req_op op;
	struct waiter *w;
	void *data;
	size_t len;
	raft_index index; /* REQ_COMPACT */
	struct raft_snap_buf *snap; /* REQ_COMPACT: our reference */
};

/* A captured state for the snapshot thread (snapshot_begin()). */
struct snap_item {
	struct mbox_item item;
	sem_t *captured; /* the applier waits on it until the state is
	                           captured (posted exactly once) */
	raft_index at;
	uint64_t t0_ms; /* when the applier asked */
};

/* Work for the applier: a snapshot to restore, or committed entries. */
struct apply_item {
	struct mbox_item item;
	bool restore;
	struct raft_snapshot_meta snap;
	struct raft_snap_buf *snap_buf; /* a reference of the item's own */
	struct raft_entry *entries;
	uint32_t n_entries;
	uint8_t *blob;
};

#define RSM_WAIT_BUCKETS 1024

struct rsm {
	struct rsm_app app;
	int64_t max_raft_state;
	bool read_via_log;
	struct rsm_loop loop;

	pthread_t apply_thread;
	bool thread_started;
	pthread_t snap_thread; /* with snapshot_begin() only */
	bool snap_started;
	struct mbox snap_box; /* captured states to compress */
	struct mbox apply_box; /* work for the applier */
	/* Items queued to the applier and not yet finished (it decrements
	 * after a whole chain, snapshot check included).  Zero means the
	 * applier is idle with nothing queued, so the loop may apply a small
	 * batch itself: order is kept because only the loop queues. */
	atomic_uint apply_pending;
	uint64_t next_ctx; /* loop only: read-index contexts */
	_Atomic raft_id leader_hint; /* stored by the loop */

	pthread_mutex_t mu;
	struct waiter *table[RSM_WAIT_BUCKETS];
	struct waiter *reads; /* read waiters with a known index */
	struct waiter *read_ctx; /* read waiters waiting for their index */
	raft_index applied;
	raft_index quiet_seen, trimmed_at; /* snapshot thread only */
	bool stopping;
	unsigned callers; /* threads inside submit / read barrier */
	pthread_cond_t idle; /* signalled when callers drops to 0 */
	bool compact_pending;
};

static int post(struct rsm *r, struct rsm_req *req)
{
	return r->loop.post(r->loop.arg, &req->msg);
}

static struct waiter **bucket(struct rsm *r, raft_index index)
{
	return &r->table[index % RSM_WAIT_BUCKETS];
}

static void waiter_put_locked(struct waiter *w)
{
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

static void leave_lists_locked(struct rsm *r, struct waiter *w)
{
	if (!w->in_table)
		return;
	if (!w->is_read)
		unlink_from(bucket(r, w->index), w);
	else if (w->index == 0)
		unlink_from(&r->read_ctx, w);
	else
		unlink_from(&r->reads, w);
	w->in_table = false;
	waiter_put_locked(w);
}

static void register_locked(struct rsm *r, struct waiter *w)
{
	struct waiter **head;

	if (w->done)
		return; /* its caller gave up already */
	if (!w->is_read)
		head = bucket(r, w->index);
	else
		head = w->index == 0 ? &r->read_ctx : &r->reads;
	w->next = *head;
	*head = w;
	w->in_table = true;
	w->refs++;
}

static void complete_locked(struct rsm *r, struct waiter *w, int status)
{
	if (w->done)
		return;
	w->done = true;
	w->status = status;
	if (w->done_fn != NULL) {
		w->done_fn(w->done_arg, status, status == 0 ? w->reply : NULL,
		    status == 0 ? w->reply_len : 0,
		    atomic_load(&r->leader_hint));
		if (status == 0)
			w->reply = NULL; /* handed over */
	} else {
		pthread_cond_signal(&w->cv);
	}
	leave_lists_locked(r, w);
}

void rsm_ready_truncated(struct rsm *r, raft_index index)
{
	pthread_mutex_lock(&r->mu);
	for (unsigned b = 0; b < RSM_WAIT_BUCKETS; b++) {
		struct waiter **p = &r->table[b];

		while (*p) {
			if ((*p)->index >= index)
				complete_locked(r, *p, NODE_ELOST);
			else
				p = &(*p)->next;
		}
	}
	pthread_mutex_unlock(&r->mu);
}

static void expire_list_locked(struct rsm *r, struct waiter **p,
    uint64_t now_ms)
{
	while (*p) {
		if ((*p)->done_fn && (*p)->deadline_ms <= now_ms)
			complete_locked(r, *p, NODE_ETIMEDOUT);
		else
			p = &(*p)->next;
	}
}

void rsm_loop_expire(struct rsm *r, uint64_t now_ms)
{
	pthread_mutex_lock(&r->mu);
	for (unsigned b = 0; b < RSM_WAIT_BUCKETS; b++)
		expire_list_locked(r, &r->table[b], now_ms);
	expire_list_locked(r, &r->reads, now_ms);
	expire_list_locked(r, &r->read_ctx, now_ms);
	pthread_mutex_unlock(&r->mu);
}

static void fail_all(struct rsm *r, int status)
{
	pthread_mutex_lock(&r->mu);
	for (unsigned b = 0; b < RSM_WAIT_BUCKETS; b++)
		while (r->table[b])
			complete_locked(r, r->table[b], status);
	while (r->reads)
		complete_locked(r, r->reads, status);
	while (r->read_ctx)
		complete_locked(r, r->read_ctx, status);
	pthread_mutex_unlock(&r->mu);
}

static void read_state(struct rsm *r, uint64_t ctx, raft_index index,
    int status)
{
	struct waiter *w;

	pthread_mutex_lock(&r->mu);
	for (w = r->read_ctx; w && w->ctx != ctx; w = w->next)
		;
	if (w == NULL)
		goto out; /* its caller gave up */
	if (status != 0 || index <= r->applied) {
		complete_locked(r, w, status);
		goto out;
	}
	/* Move it to the list the applier watches. */
	w->refs++;
	leave_lists_locked(r, w);
	w->index = index;
	register_locked(r, w);
	waiter_put_locked(w);
out:
	pthread_mutex_unlock(&r->mu);
}

/* ------------------------------------------------------------ applier */

static void wake_reads_locked(struct rsm *r)
{
	struct waiter **p = &r->reads;

	while (*p) {
		struct waiter *w = *p;

		if (w->index <= r->applied) {
			complete_locked(r, w, 0);
			continue; /* *p now names the next one */
		}
		p = &w->next;
	}
}

static void deliver(struct rsm *r, const struct raft_entry *e, void *reply,
    size_t reply_len)
{
	struct waiter **p;

	pthread_mutex_lock(&r->mu);
	p = bucket(r, e->index);
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
			complete_locked(r, w, 0);
		} else {
			complete_locked(r, w, NODE_ELOST);
		}
	}
	r->applied = e->index;
	pthread_mutex_unlock(&r->mu);
	free(reply);
}

static void apply_entries(struct rsm *r, const struct raft_entry *entries,
    uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		const struct raft_entry *e = &entries[i];
		void *reply = NULL;
		size_t reply_len = 0;

		/* Empty entries are read barriers (rsm_read_barrier with
		 * read_via_log): nothing for the application. */
		if (e->type == RAFT_ENTRY_NORMAL && e->len > 0 &&
		    r->app.apply(r->app.arg, e->index, e->data, e->len, &reply,
		        &reply_len) != 0)
			fatalx("apply of entry %llu failed: out of memory",
			    (unsigned long long)e->index);
		deliver(r, e, reply, reply_len);
	}
}

static void restore(struct rsm *r, const struct apply_item *it)
{
	uint64_t t0 = mono_ms();
	uint64_t len = raft_snap_buf_len(it->snap_buf);
	int rv = r->app.restore(r->app.arg, raft_snap_buf_data(it->snap_buf),
	    (size_t)len);

	if (rv != 0)
		fatalx("restoring snapshot %llu failed: %s",
		    (unsigned long long)it->snap.index, rk_strerror(rv));
	log_info("restored snapshot at index %llu term %llu (%llu bytes) in "
	         "%llu ms",
	    (unsigned long long)it->snap.index,
	    (unsigned long long)it->snap.term, (unsigned long long)len,
	    (unsigned long long)(mono_ms() - t0));
	pthread_mutex_lock(&r->mu);
	/* Waiters inside the snapshot: their outcome is not known here. */
	for (unsigned b = 0; b < RSM_WAIT_BUCKETS; b++) {
		struct waiter **p = &r->table[b];

		while (*p) {
			if ((*p)->index <= it->snap.index)
				complete_locked(r, *p, NODE_ETIMEDOUT);
			else
				p = &(*p)->next;
		}
	}
	r->applied = it->snap.index;
	pthread_mutex_unlock(&r->mu);
}

/* The log on disk outgrew max_raft_state and no compaction is under way. */
static bool snapshot_due(struct rsm *r)
{
	bool due;

	if (r->max_raft_state <= 0 ||
	    r->loop.log_bytes(r->loop.arg) <= (uint64_t)r->max_raft_state)
		return false;
	pthread_mutex_lock(&r->mu);
	due = !r->compact_pending;
	pthread_mutex_unlock(&r->mu);
	return due;
}

static void compact_abandon(struct rsm *r)
{
	pthread_mutex_lock(&r->mu);
	r->compact_pending = false;
	pthread_mutex_unlock(&r->mu);
}

/* Hand the snapshot at @at (@rv: how making it went; @data, @len: it,
 * malloc'd, ours) to the loop for raft_compact_buf().  Applier or
 * snapshot thread. */
static void compact_post(struct rsm *r, raft_index at, int rv, void *data,
    size_t len, uint64_t t0)
{
	struct raft_snap_buf *buf = NULL;
	struct rsm_req *req = NULL;

	if (rv == 0) {
		log_info("snapshot at %llu: %zu bytes in %llu ms",
		    (unsigned long long)at, len,
		    (unsigned long long)(mono_ms() - t0));
		req = calloc(1, sizeof(*req));
		buf = req != NULL ? raft_snap_buf_new(data, len) : NULL;
		if (buf == NULL)
			rv = -ENOMEM;
	}
	if (rv != 0) {
		log_warnx("snapshot at %llu failed: %s", (unsigned long long)at,
		    rk_strerror(rv));
		free(data);
		free(req);
		compact_abandon(r);
		return;
	}
	req->msg.kind = r->loop.msg_kind;
	req->op = REQ_COMPACT;
	req->index = at;
	req->snap = buf; /* owns @data now */
	if (post(r, req) != 0) {
		raft_snap_buf_unref(buf);
		free(req);
	}
}

static void maybe_snapshot(struct rsm *r)
{
	struct snap_item *si;
	sem_t captured;
	void *data = NULL;
	size_t len = 0;
	raft_index at;
	uint64_t t0;
	int rv;

	if (!snapshot_due(r))
		return;
	pthread_mutex_lock(&r->mu);
	if (r->compact_pending) {
		pthread_mutex_unlock(&r->mu);
		return;
	}
	r->compact_pending = true;
	at = r->applied;
	pthread_mutex_unlock(&r->mu);
	t0 = mono_ms();
	if (r->app.snapshot_begin == NULL) {
		rv = r->app.snapshot(r->app.arg, &data, &len);
		compact_post(r, at, rv, data, len, t0);
		return;
	}
	/* The snapshot thread captures the state while this thread waits
	 * (nothing is applied meanwhile, so the capture is of index @at):
	 * the copy runs at the snapshot thread's lower priority, so that on
	 * a busy machine the loop and the transport keep the CPU. */
	si = calloc(1, sizeof(*si));
	if (si == NULL) {
		compact_post(r, at, -ENOMEM, NULL, 0, t0);
		return;
	}
	sem_init(&captured, 0, 0);
	si->captured = &captured;
	si->at = at;
	si->t0_ms = t0;
	if (mbox_put(&r->snap_box, &si->item) != 0) { /* stopping */
		free(si);
		compact_abandon(r);
	} else {
		while (sem_wait(&captured) != 0)
			; /* EINTR */
	}
	sem_destroy(&captured);
}

/* Nice value of the snapshot thread: compression is background work; on
 * a busy machine it must not take the CPU from the loop (heartbeats) or
 * the applier (commands). */
#define SNAP_THREAD_NICE 10

/* The snapshot thread: compress what the applier captured. */
/*
 * Free memory back to the system once the member has been quiet: nothing
 * applied for a whole RSM_QUIET_TRIM_MS after something was.  A burst of
 * clients leaves free pages in the malloc arenas (connection buffers,
 * replies) that would otherwise stay resident until the next snapshot:
 * the resident size per client of test_kvsrv's memory test then varied
 * 120-510 B with the machine's load.  On this thread (niced), not the
 * loop's: a trim of a big heap takes a while.
 */
#define RSM_QUIET_TRIM_MS 1000

static void trim_if_quiet(struct rsm *r)
{
	raft_index applied;

	pthread_mutex_lock(&r->mu);
	applied = r->applied;
	pthread_mutex_unlock(&r->mu);
	if (applied == r->quiet_seen && applied != r->trimmed_at) {
		malloc_trim(0);
		r->trimmed_at = applied;
	}
	r->quiet_seen = applied;
}

static void *snap_main(void *arg)
{
	struct rsm *r = arg;
	struct mbox_item *chain;

	/* This thread only (Linux: a thread id names one thread); if it is
	 * refused, compression just runs at the member's priority. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), SNAP_THREAD_NICE);

	for (;;) {
		bool timed_out;

		chain = mbox_wait_all_for(&r->snap_box, RSM_QUIET_TRIM_MS,
		    &timed_out);
		if (chain == NULL) {
			if (!timed_out)
				break; /* shut */
			trim_if_quiet(r);
			continue;
		}
		while (chain) {
			struct snap_item *si = (struct snap_item *)chain;
			void *view = NULL, *data = NULL;
			size_t len = 0;
			bool stopping;
			int rv;

			chain = chain->next;
			pthread_mutex_lock(&r->mu);
			stopping = r->stopping;
			pthread_mutex_unlock(&r->mu);
			if (stopping) { /* nobody would take it */
				sem_post(si->captured);
				free(si);
				continue;
			}
			rv = r->app.snapshot_begin(r->app.arg, &view);
			if (rv == 0)
				log_info("snapshot at %llu: state copied in "
				         "%llu "
				         "ms (the applier waited)",
				    (unsigned long long)si->at,
				    (unsigned long long)(mono_ms() -
				        si->t0_ms));
			sem_post(si->captured); /* the applier goes on */
			if (rv == 0)
				rv = r->app.snapshot_finish(r->app.arg, view,
				    &data, &len);
			compact_post(r, si->at, rv, data, len, si->t0_ms);
			free(si);
			/* The copy and the compressor's buffers, freed, would
			 * stay resident in this thread's malloc arena until the
			 * next snapshot: give them back now. */
			malloc_trim(0);
		}
	}
	return NULL;
}

static void apply_item_free(struct apply_item *it)
{
	raft_snap_buf_unref(it->snap_buf);
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
 * (the loop queues it an empty item when snapshot_due()).
 */
static void apply_inline(struct rsm *r, const struct raft_entry *e,
    uint32_t count)
{
	apply_entries(r, e, count);
	pthread_mutex_lock(&r->mu);
	wake_reads_locked(r);
	pthread_mutex_unlock(&r->mu);
}

static void *apply_main(void *arg)
{
	struct rsm *r = arg;
	struct mbox_item *chain;

	while ((chain = mbox_wait_all(&r->apply_box)) != NULL) {
		unsigned done = 0;

		while (chain) {
			struct apply_item *it = (struct apply_item *)chain;

			chain = chain->next;
			if (it->restore)
				restore(r, it);
			else
				apply_entries(r, it->entries, it->n_entries);
			apply_item_free(it);
			done++;
		}
		pthread_mutex_lock(&r->mu);
		wake_reads_locked(r);
		pthread_mutex_unlock(&r->mu);
		maybe_snapshot(r);
		atomic_fetch_sub(&r->apply_pending, done);
	}
	return NULL;
}

/* --------------------------------------------------- the loop's side */

static void apply_post(struct rsm *r, struct apply_item *it)
{
	atomic_fetch_add(&r->apply_pending, 1);
	if (mbox_put(&r->apply_box, &it->item) != 0) {
		atomic_fetch_sub(&r->apply_pending, 1);
		apply_item_free(it);
	}
}

/* Batches at most this big are applied on the loop when the applier is
 * idle; bigger ones (catch-up, restarts) stay off the loop. */
#define INLINE_APPLY_MAX_ENTRIES 64
#define INLINE_APPLY_MAX_BYTES (256u * 1024)

static bool apply_inline_ok(struct rsm *r, const struct raft_ready *rd)
{
	uint64_t bytes = 0;

	if (rd->snapshot_install ||
	    rd->n_committed > INLINE_APPLY_MAX_ENTRIES ||
	    atomic_load(&r->apply_pending) != 0)
		return false;
	for (uint32_t i = 0; i < rd->n_committed; i++)
		bytes += rd->committed[i].len;
	return bytes <= INLINE_APPLY_MAX_BYTES;
}

static void queue_apply(struct rsm *r, const struct raft_ready *rd)
{
	struct apply_item *it;

	if (rd->n_committed > 0 && apply_inline_ok(r, rd)) {
		apply_inline(r, rd->committed, rd->n_committed);
		if (snapshot_due(r)) {
			/* An empty item: the applier runs its snapshot check. */
			it = calloc(1, sizeof(*it));
			if (it == NULL)
				fatalx(
				    "out of memory queueing a snapshot check");
			apply_post(r, it);
		}
		return;
	}
	if (rd->snapshot_install) {
		it = calloc(1, sizeof(*it));
		if (it == NULL)
			fatalx("out of memory queueing a snapshot restore");
		it->restore = true;
		it->snap = rd->snap_meta;
		it->snap_buf = raft_snap_buf_ref(rd->snap_buf); /* no copy */
		apply_post(r, it);
	}
	if (rd->n_committed == 0)
		return;
	it = calloc(1, sizeof(*it));
	if (it == NULL ||
	    copy_entries(rd->committed, rd->n_committed, &it->entries,
	        &it->blob) != 0)
		fatalx("out of memory queueing committed entries");
	it->n_entries = rd->n_committed;
	apply_post(r, it);
}

void rsm_ready_commit(struct rsm *r, const struct raft_ready *rd)
{
	queue_apply(r, rd);
	for (uint32_t i = 0; i < rd->n_read_states; i++)
		read_state(r, rd->read_states[i].ctx, rd->read_states[i].index,
		    0);
	for (uint32_t i = 0; i < rd->n_read_failed; i++)
		read_state(r, rd->read_failed[i], 0, NODE_ENOLEADER);
}

void rsm_ready_leader(struct rsm *r, raft_id leader)
{
	atomic_store(&r->leader_hint, leader);
}

void rsm_loop_compacted(struct rsm *r)
{
	pthread_mutex_lock(&r->mu);
	r->compact_pending = false;
	pthread_mutex_unlock(&r->mu);
}

static void do_propose(struct rsm *r, struct raft *raft, struct rsm_req *req)
{
	raft_index index;
	raft_term term;
	int rv = req->len > UINT32_MAX
	    ? RAFT_ETOOBIG
	    : raft_propose(raft, req->data, (uint32_t)req->len, &index, &term);

	pthread_mutex_lock(&r->mu);
	if (r->stopping)
		complete_locked(r, req->w, NODE_ESHUTDOWN);
	else if (rv == 0) {
		req->w->index = index;
		req->w->term = term;
		register_locked(r, req->w);
	} else {
		complete_locked(r, req->w, rv);
	}
	waiter_put_locked(req->w);
	pthread_mutex_unlock(&r->mu);
}

static void do_read(struct rsm *r, struct raft *raft, struct rsm_req *req)
{
	uint64_t ctx = ++r->next_ctx;
	int rv;

	pthread_mutex_lock(&r->mu);
	req->w->ctx = ctx;
	if (r->stopping)
		complete_locked(r, req->w, NODE_ESHUTDOWN);
	else
		register_locked(r, req->w);
	waiter_put_locked(req->w);
	pthread_mutex_unlock(&r->mu);
	rv = raft_read_index(raft, ctx);
	if (rv != 0)
		read_state(r, ctx, 0, rv);
}

static void do_compact(struct rsm *r, struct raft *raft, struct rsm_req *req)
{
	int rv = raft_compact_buf(raft, req->index, req->snap);

	if (rv == 0)
		req->snap = NULL; /* the core's reference now */
	if (rv != 0) {
		log_debug("compaction at %llu skipped: %s",
		    (unsigned long long)req->index, rk_strerror(rv));
		rsm_loop_compacted(r);
	}
}

void rsm_loop_run(struct rsm *r, struct raft *raft, struct mbox_msg *m)
{
	struct rsm_req *req = (struct rsm_req *)m;

	switch (req->op) {
	case REQ_PROPOSE:
		do_propose(r, raft, req);
		break;
	case REQ_READ:
		do_read(r, raft, req);
		break;
	case REQ_COMPACT:
		do_compact(r, raft, req);
		break;
	}
	raft_snap_buf_unref(req->snap);
	free(req->data);
	free(req);
}

void rsm_loop_drop(struct rsm *r, struct mbox_msg *m)
{
	struct rsm_req *req = (struct rsm_req *)m;

	if (req->w) {
		pthread_mutex_lock(&r->mu);
		complete_locked(r, req->w, NODE_ESHUTDOWN);
		waiter_put_locked(req->w);
		pthread_mutex_unlock(&r->mu);
	}
	raft_snap_buf_unref(req->snap);
	free(req->data);
	free(req);
}

/* ------------------------------------------------------------ callers */

static void leave_call(struct rsm *r, struct waiter *w)
{
	waiter_put_locked(w);
	if (--r->callers == 0)
		pthread_cond_broadcast(&r->idle);
	pthread_mutex_unlock(&r->mu);
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
static struct rsm_req *request_new(struct rsm *r, enum req_op op,
    const void *cmd, size_t len)
{
	struct waiter *w = waiter_new(op == REQ_READ);
	struct rsm_req *req = calloc(1, sizeof(*req));

	if (w == NULL || req == NULL ||
	    (req->data = malloc(len ? len : 1)) == NULL) {
		if (w)
			pthread_cond_destroy(&w->cv);
		free(w);
		free(req);
		return NULL;
	}
	if (len)
		memcpy(req->data, cmd, len);
	req->len = len;
	req->op = op;
	req->msg.kind = r->loop.msg_kind;
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

/* Post @req for @w and wait; returns the outcome with r->mu held and the
 * caller counted in r->callers (leave_call() undoes both). */
static int wait_for(struct rsm *r, struct waiter *w, struct rsm_req *req,
    int timeout_ms)
{
	struct timespec deadline;

	pthread_mutex_lock(&r->mu);
	r->callers++;
	if (r->stopping) {
		w->refs--; /* the request will never run */
		free(req->data);
		free(req);
		return NODE_ESHUTDOWN;
	}
	pthread_mutex_unlock(&r->mu);
	if (post(r, req) != 0) {
		pthread_mutex_lock(&r->mu);
		w->refs--;
		free(req->data);
		free(req);
		return NODE_ESHUTDOWN;
	}
	deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&r->mu);
	while (!w->done) {
		if (pthread_cond_timedwait(&w->cv, &r->mu, &deadline) ==
		    ETIMEDOUT) {
			complete_locked(r, w, NODE_ETIMEDOUT);
			break;
		}
	}
	return w->status;
}

int rsm_submit(struct rsm *r, const void *cmd, size_t len, int timeout_ms,
    void **reply, size_t *reply_len, raft_id *leader_hint)
{
	struct rsm_req *req = request_new(r, REQ_PROPOSE, cmd, len);
	struct waiter *w;
	int rv;

	*reply = NULL;
	*reply_len = 0;
	if (req == NULL)
		return -ENOMEM;
	w = req->w;
	rv = wait_for(r, w, req, timeout_ms);
	if (rv == 0) {
		*reply = w->reply;
		*reply_len = w->reply_len;
		w->reply = NULL;
	}
	if (leader_hint)
		*leader_hint = atomic_load(&r->leader_hint);
	leave_call(r, w);
	return rv;
}

/* Post an asynchronous request of @op for a new waiter. */
static int post_async(struct rsm *r, enum req_op op, const void *cmd,
    size_t len, int timeout_ms, rsm_done_fn done, void *arg)
{
	struct rsm_req *req = request_new(r, op, cmd, len);
	struct waiter *w;

	if (req == NULL)
		return -ENOMEM;
	w = req->w;
	w->refs = 1; /* the loop request only: nobody waits on it */
	w->done_fn = done;
	w->done_arg = arg;
	w->deadline_ms = mono_ms() +
	    (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
	pthread_mutex_lock(&r->mu);
	if (r->stopping) {
		pthread_mutex_unlock(&r->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		free(req->data);
		free(req);
		return NODE_ESHUTDOWN;
	}
	pthread_mutex_unlock(&r->mu);
	if (post(r, req) != 0) {
		pthread_cond_destroy(&w->cv);
		free(w);
		free(req->data);
		free(req);
		return NODE_ESHUTDOWN;
	}
	return 0;
}

int rsm_submit_async(struct rsm *r, const void *cmd, size_t len, int timeout_ms,
    rsm_done_fn done, void *arg)
{
	return post_async(r, REQ_PROPOSE, cmd, len, timeout_ms, done, arg);
}

int rsm_read_barrier_async(struct rsm *r, int timeout_ms, rsm_done_fn done,
    void *arg)
{
	if (r->read_via_log)
		return post_async(r, REQ_PROPOSE, "", 0, timeout_ms, done, arg);
	return post_async(r, REQ_READ, NULL, 0, timeout_ms, done, arg);
}

int rsm_read_barrier(struct rsm *r, int timeout_ms, raft_id *leader_hint)
{
	struct waiter *w;
	struct rsm_req *req;
	int rv;

	if (r->read_via_log) {
		void *reply = NULL;
		size_t len = 0;

		rv = rsm_submit(r, "", 0, timeout_ms, &reply, &len,
		    leader_hint);
		free(reply);
		return rv;
	}
	req = request_new(r, REQ_READ, NULL, 0);
	if (req == NULL)
		return -ENOMEM;
	w = req->w;
	rv = wait_for(r, w, req, timeout_ms);
	if (leader_hint)
		*leader_hint = atomic_load(&r->leader_hint);
	leave_call(r, w);
	return rv;
}

int rsm_query(struct rsm *r, const void *q, size_t len, void **reply,
    size_t *reply_len)
{
	if (r->app.query == NULL)
		return -ENOSYS;
	return r->app.query(r->app.arg, q, len, reply, reply_len);
}

int rsm_query_quick(struct rsm *r, const void *q, size_t len, void **reply,
    size_t *reply_len)
{
	if (r->app.query_quick == NULL)
		return -EAGAIN;
	return r->app.query_quick(r->app.arg, q, len, reply, reply_len);
}

raft_index rsm_applied(struct rsm *r)
{
	raft_index applied;

	pthread_mutex_lock(&r->mu);
	applied = r->applied;
	pthread_mutex_unlock(&r->mu);
	return applied;
}

void rsm_cancel(struct rsm *r)
{
	rsm_refuse(r);
	fail_all(r, NODE_ESHUTDOWN);
}

/* ---------------------------------------------------------- life cycle */

int rsm_new(const struct rsm_config *c, struct rsm **out)
{
	struct rsm *r;
	int rv;

	if (c->app.apply == NULL || c->app.snapshot == NULL ||
	    c->app.restore == NULL || c->loop.post == NULL ||
	    c->loop.log_bytes == NULL ||
	    (c->app.snapshot_begin == NULL) != (c->app.snapshot_finish == NULL))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	rv = mbox_init(&r->apply_box, false);
	if (rv != 0) {
		free(r);
		return rv;
	}
	rv = mbox_init(&r->snap_box, false);
	if (rv != 0) {
		mbox_close(&r->apply_box);
		free(r);
		return rv;
	}
	r->app = c->app;
	r->max_raft_state = c->max_raft_state;
	r->read_via_log = c->read_via_log;
	r->loop = c->loop;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->idle, NULL);
	*out = r;
	return 0;
}

int rsm_start(struct rsm *r)
{
	int rv;

	if (r->app.snapshot_begin != NULL) {
		rv = pthread_create(&r->snap_thread, NULL, snap_main, r);
		if (rv != 0)
			return -rv;
		r->snap_started = true;
	}
	rv = pthread_create(&r->apply_thread, NULL, apply_main, r);
	if (rv != 0)
		return -rv;
	r->thread_started = true;
	return 0;
}

void rsm_refuse(struct rsm *r)
{
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_mutex_unlock(&r->mu);
}

void rsm_join(struct rsm *r)
{
	mbox_shut(&r->apply_box);
	if (r->thread_started)
		pthread_join(r->apply_thread, NULL);
	r->thread_started = false;
	/* After the applier, the only one to queue to it.  A compression
	 * under way is finished (the loop no longer takes its result);
	 * what is still queued is dropped. */
	mbox_shut(&r->snap_box);
	if (r->snap_started)
		pthread_join(r->snap_thread, NULL);
	r->snap_started = false;
}

void rsm_free(struct rsm *r)
{
	struct mbox_item *chain;

	if (r == NULL)
		return;
	rsm_join(r);
	chain = mbox_take_all(&r->apply_box);
	while (chain) {
		struct mbox_item *next = chain->next;

		apply_item_free((struct apply_item *)chain);
		chain = next;
	}
	chain = mbox_take_all(&r->snap_box);
	while (chain) { /* none in practice: the thread drains its box */
		struct mbox_item *next = chain->next;

		free(chain);
		chain = next;
	}
	fail_all(r, NODE_ESHUTDOWN);
	pthread_mutex_lock(&r->mu);
	while (r->callers > 0)
		pthread_cond_wait(&r->idle, &r->mu);
	pthread_mutex_unlock(&r->mu);
	mbox_close(&r->apply_box);
	mbox_close(&r->snap_box);
	pthread_cond_destroy(&r->idle);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
