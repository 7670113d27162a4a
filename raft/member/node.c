/*
 * node.c - the member's event loop: the driver of the pure Raft core.
 *
 * The core/driver contract (raft.h), as this loop implements it:
 *
 *   inputs   poll() wakes for peer messages (raft_step), requests from
 *            other threads through loop_box (propose, read index, compact,
 *            transfer, batches made durable, endpoint changes), the client
 *            endpoint when one is attached, and the tick deadline
 *            (raft_tick every tick_ms of CLOCK_MONOTONIC).
 *   ready    after each round of inputs, raft_ready() until idle:
 *              1. rd.msgs go out at once (a leader replicates while its own
 *                 write is still in flight; it counts itself only later);
 *              2. persistence: a small batch while no batch is at the disk
 *                 thread is written and synced right here, its
 *                 rd.msgs_after_persist sent and raft_persisted() called
 *                 after raft_advance(); otherwise it is copied into a
 *                 disk_job for the disk thread, together with
 *                 rd.msgs_after_persist (promises about the disk: votes,
 *                 acknowledgements) — unless there is nothing to write and
 *                 nothing ahead in the disk queue, in which case those go
 *                 out at once too;
 *              3. committed entries: a small batch while the applier is
 *                 idle is applied right here; otherwise they (and a
 *                 snapshot to restore) are copied to the applier, in order;
 *              4. read states wake their readers (who then wait for apply);
 *              5. raft_advance().
 *   durable  when the disk thread hands back a chain of jobs, oldest first:
 *            send each job's after-persist messages, raft_persisted().
 *
 * The fast paths of 2 and 3 spare an idle cluster's command the hand-offs
 * to and from the disk thread and the applier (each a thread wake-up, the
 * dominant cost of a lone request); under load batches grow past their
 * limits, or find the other thread busy, and take the threads.
 *
 * Everything borrowed from a ready batch is copied before raft_advance(),
 * as raft.h requires.  No other thread touches the core or the transport.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "raft/util/clock.h"
#include "raft/util/logging.h"
#include "raft/member/node_int.h"
#include "raft/net/transport.h"

uint64_t node_now_ms(void)
{
	return mono_ms();
}

int node_post(struct node *n, struct loop_req *req)
{
	return mbox_put(&n->loop_box, &req->item);
}

void node_config_defaults(struct node_config *c)
{
	memset(c, 0, sizeof(*c));
	c->tick_ms = 10;
	c->election_tick = 30;
	c->heartbeat_tick = 5;
	c->max_raft_state = -1;
	storage_options_defaults(&c->storage);
}

/* ------------------------------------------------------------- sending */

/* Loss is Raft's business; but a leader's append that could not even be
 * queued tells the core the peer is unreachable, so it stops pipelining.
 * Noted here, reported by report_unreachable() once no batch is out. */
static void note_unreachable(struct node *n, raft_id peer)
{
	for (uint32_t i = 0; i < n->n_unreachable; i++)
		if (n->unreachable[i] == peer)
			return;
	if (n->n_unreachable < RAFT_MAX_MEMBERS)
		n->unreachable[n->n_unreachable++] = peer;
}

static void send_msgs(struct node *n, const struct raft_msg *m, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		if (transport_send(n->tr, &m[i]) == -EAGAIN &&
		    m[i].type == RAFT_MSG_APPEND)
			note_unreachable(n, m[i].to);
}

static void report_unreachable(struct node *n)
{
	for (uint32_t i = 0; i < n->n_unreachable; i++)
		(void)raft_report_unreachable(n->raft, n->unreachable[i]);
	n->n_unreachable = 0;
}

/* ------------------------------------------------------ ready hand-off */

/* Copy @count entries and their data into one array and one block. */
static int copy_entries(const struct raft_entry *src, uint32_t count,
    struct raft_entry **out, uint8_t **blob)
{
	size_t total = 0, off = 0;

	*out = NULL;
	*blob = NULL;
	if (count == 0)
		return 0;
	for (uint32_t i = 0; i < count; i++)
		total += src[i].len;
	*out = malloc(count * sizeof(**out));
	*blob = malloc(total ? total : 1);
	if (*out == NULL || *blob == NULL) {
		free(*out);
		free(*blob);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		(*out)[i] = src[i];
		(*out)[i].data = src[i].len ? *blob + off : NULL;
		if (src[i].len)
			memcpy(*blob + off, src[i].data, src[i].len);
		off += src[i].len;
	}
	return 0;
}

static void *dup_bytes(const void *p, uint64_t len)
{
	void *q = malloc(len ? len : 1);

	if (q != NULL && len)
		memcpy(q, p, len);
	return q;
}

/* Batches at most this big are persisted on the loop when the disk
 * thread is idle (one submitter's command, a follower's single append);
 * bigger ones, and snapshots, go to the disk thread. */
#define INLINE_PERSIST_MAX_ENTRIES 4
#define INLINE_PERSIST_MAX_BYTES (64u * 1024)

/* An inline sync slower than this (a stalling disk) blocks the loop's
 * heartbeats: batches go to the disk thread for a while instead. */
#define INLINE_PERSIST_SLOW_MS 20
#define INLINE_PERSIST_BACKOFF_MS 1000

static bool persist_inline_ok(struct node *n, const struct raft_ready *rd)
{
	uint64_t bytes = 0;

	if (n->disk_inflight != 0 || rd->has_snapshot ||
	    rd->n_entries > INLINE_PERSIST_MAX_ENTRIES ||
	    (n->inline_persist_after_ms != 0 &&
	    node_now_ms() < n->inline_persist_after_ms))
		return false;
	for (uint32_t i = 0; i < rd->n_entries; i++)
		bytes += rd->entries[i].len;
	return bytes <= INLINE_PERSIST_MAX_BYTES;
}

static void queue_disk(struct node *n, const struct raft_ready *rd)
{
	struct disk_job *j;

	if (!rd->must_persist && n->disk_inflight == 0) {
		send_msgs(n, rd->msgs_after_persist, rd->n_msgs_after_persist);
		return;
	}
	if (rd->must_persist && persist_inline_ok(n, rd)) {
		uint64_t t0 = node_now_ms(), t1;

		disk_persist_inline(n, rd);
		t1 = node_now_ms();
		if (t1 - t0 > INLINE_PERSIST_SLOW_MS) {
			log_debug("a sync on the loop took %" PRIu64 " ms: "
			    "syncing on the disk thread for %d ms", t1 - t0,
			    INLINE_PERSIST_BACKOFF_MS);
			n->inline_persist_after_ms = t1 +
			    INLINE_PERSIST_BACKOFF_MS;
		}
		send_msgs(n, rd->msgs_after_persist, rd->n_msgs_after_persist);
		/* raft_persisted() once the batch is advanced. */
		n->inline_token = rd->persist_token;
		n->inline_persisted = true;
		return;
	}
	if (!rd->must_persist && rd->n_msgs_after_persist == 0)
		return;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		fatalx("out of memory queueing a disk batch");
	j->must_persist = rd->must_persist;
	j->hs_changed = rd->hs_changed;
	j->hs = rd->hs;
	j->token = rd->persist_token;
	if (copy_entries(rd->entries, rd->n_entries, &j->entries, &j->blob))
		fatalx("out of memory copying entries to persist");
	j->n_entries = rd->n_entries;
	if (rd->has_snapshot) {
		j->has_snapshot = true;
		j->snap = rd->snap_meta;
		j->snap_len = rd->snap_len;
		j->snap_data = dup_bytes(rd->snap_data, rd->snap_len);
		if (j->snap_data == NULL)
			fatalx("out of memory copying a snapshot to persist");
	}
	if (rd->n_msgs_after_persist) {
		j->after = malloc(rd->n_msgs_after_persist * sizeof(*j->after));
		if (j->after == NULL)
			fatalx("out of memory queueing messages");
		for (uint32_t i = 0; i < rd->n_msgs_after_persist; i++) {
			/* Answers and votes only: nothing borrowed inside. */
			j->after[i] = rd->msgs_after_persist[i];
			j->after[i].entries = NULL;
			j->after[i].n_entries = 0;
			j->after[i].chunk = NULL;
			j->after[i].chunk_len = 0;
		}
		j->n_after = rd->n_msgs_after_persist;
	}
	n->disk_inflight++;
	if (mbox_put(&n->disk_box, &j->item) != 0)
		disk_job_free(j); /* stopping */
}

/* Batches at most this big are applied on the loop when the applier is
 * idle; bigger ones (catch-up, restarts) stay off the loop. */
#define INLINE_APPLY_MAX_ENTRIES 64
#define INLINE_APPLY_MAX_BYTES (256u * 1024)

static void apply_post(struct node *n, struct apply_item *it)
{
	atomic_fetch_add(&n->apply_pending, 1);
	if (mbox_put(&n->apply_box, &it->item) != 0) {
		atomic_fetch_sub(&n->apply_pending, 1);
		rsm_apply_item_free(it);
	}
}

static bool apply_inline_ok(struct node *n, const struct raft_ready *rd)
{
	uint64_t bytes = 0;

	if (rd->snapshot_install || rd->n_committed > INLINE_APPLY_MAX_ENTRIES ||
	    atomic_load(&n->apply_pending) != 0)
		return false;
	for (uint32_t i = 0; i < rd->n_committed; i++)
		bytes += rd->committed[i].len;
	return bytes <= INLINE_APPLY_MAX_BYTES;
}

static void queue_apply(struct node *n, const struct raft_ready *rd)
{
	struct apply_item *it;

	if (rd->n_committed > 0 && apply_inline_ok(n, rd)) {
		rsm_apply_inline(n, rd->committed, rd->n_committed);
		if (rsm_snapshot_due(n)) {
			/* An empty item: the applier runs its snapshot check. */
			it = calloc(1, sizeof(*it));
			if (it == NULL)
				fatalx("out of memory queueing a snapshot check");
			apply_post(n, it);
		}
		return;
	}
	if (rd->snapshot_install) {
		it = calloc(1, sizeof(*it));
		if (it == NULL)
			fatalx("out of memory queueing a snapshot restore");
		it->restore = true;
		it->snap = rd->snap_meta;
		it->snap_len = rd->snap_len;
		it->snap_data = dup_bytes(rd->snap_data, rd->snap_len);
		if (it->snap_data == NULL)
			fatalx("out of memory copying a snapshot to restore");
		apply_post(n, it);
	}
	if (rd->n_committed == 0)
		return;
	it = calloc(1, sizeof(*it));
	if (it == NULL || copy_entries(rd->committed, rd->n_committed,
	    &it->entries, &it->blob) != 0)
		fatalx("out of memory queueing committed entries");
	it->n_entries = rd->n_committed;
	apply_post(n, it);
}

static void note_role(struct node *n, const struct raft_ready *rd)
{
	struct raft_status st;
	struct transport_stats ts;

	raft_status(n->raft, &st);
	transport_stats(n->tr, &ts);
	if (rd->role_changed)
		log_info("%s in term %" PRIu64 ", leader %" PRIu64,
		    raft_role_name(rd->role), st.term, rd->leader);
	pthread_mutex_lock(&n->mu);
	n->leader_hint = rd->leader;
	n->status.raft = st;
	n->status.msgs_sent = ts.sent;
	n->status.msgs_received = ts.received;
	n->status.msgs_dropped = ts.dropped + ts.rejected;
	pthread_mutex_unlock(&n->mu);
}

static void handle_ready(struct node *n)
{
	struct raft_ready rd;

	while (raft_ready(n->raft, &rd)) {
		send_msgs(n, rd.msgs, rd.n_msgs);
		/* Proposals in a discarded suffix can never commit: say so now
		 * rather than when (if ever) the log grows back to them. */
		if (rd.truncated_from)
			rsm_fail_from(n, rd.truncated_from);
		queue_disk(n, &rd);
		queue_apply(n, &rd);
		for (uint32_t i = 0; i < rd.n_read_states; i++)
			rsm_read_state(n, rd.read_states[i].ctx,
			    rd.read_states[i].index, 0);
		for (uint32_t i = 0; i < rd.n_read_failed; i++)
			rsm_read_state(n, rd.read_failed[i], 0, NODE_ENOLEADER);
		note_role(n, &rd);
		raft_advance(n->raft, &rd);
		if (n->inline_persisted) {
			n->inline_persisted = false;
			raft_persisted(n->raft, &n->inline_token);
		}
		report_unreachable(n);
	}
}

/* ------------------------------------------------------------- requests */

static void do_propose(struct node *n, struct loop_req *req)
{
	raft_index index;
	raft_term term;
	int rv = req->len > UINT32_MAX ? RAFT_ETOOBIG :
	    raft_propose(n->raft, req->data, (uint32_t)req->len, &index,
	    &term);

	pthread_mutex_lock(&n->mu);
	if (n->stopping)
		rsm_complete_locked(n, req->w, NODE_ESHUTDOWN);
	else if (rv == 0) {
		req->w->index = index;
		req->w->term = term;
		rsm_register_locked(n, req->w);
	} else {
		rsm_complete_locked(n, req->w, rv);
	}
	rsm_waiter_put_locked(n, req->w);
	pthread_mutex_unlock(&n->mu);
}

static void do_read(struct node *n, struct loop_req *req)
{
	uint64_t ctx = ++n->next_ctx;
	int rv;

	pthread_mutex_lock(&n->mu);
	req->w->ctx = ctx;
	if (n->stopping)
		rsm_complete_locked(n, req->w, NODE_ESHUTDOWN);
	else
		rsm_register_locked(n, req->w);
	rsm_waiter_put_locked(n, req->w);
	pthread_mutex_unlock(&n->mu);
	rv = raft_read_index(n->raft, ctx);
	if (rv != 0)
		rsm_read_state(n, ctx, 0, rv);
}

static void do_compact(struct node *n, struct loop_req *req)
{
	int rv = raft_compact(n->raft, req->index, req->data, req->len);

	if (rv != 0) {
		log_debug("compaction at %llu skipped: %s",
		    (unsigned long long)req->index, rk_strerror(rv));
		pthread_mutex_lock(&n->mu);
		n->compact_pending = false;
		pthread_mutex_unlock(&n->mu);
	}
}

static void do_disk_done(struct node *n, struct loop_req *req)
{
	struct disk_job *j = req->jobs;

	while (j) {
		struct disk_job *next = j->next;

		send_msgs(n, j->after, j->n_after);
		if (j->must_persist)
			raft_persisted(n->raft, &j->token);
		n->disk_inflight--;
		disk_job_free(j);
		j = next;
	}
	report_unreachable(n);
}

static void do_endpoint(struct node *n, struct loop_req *req)
{
	int rv = 0;

	if (req->data != NULL && n->ep_on) {
		rv = -EBUSY;
	} else if (req->data != NULL) {
		memcpy(&n->ep, req->data, sizeof(n->ep));
		n->ep_on = true;
	} else if (n->ep_on) {
		n->ep.flush(n->ep.arg);
		n->ep_on = false;
	}
	*req->result = rv;
	sem_post(req->answered);
}

static void handle_requests(struct node *n)
{
	struct mbox_item *chain = mbox_take_all(&n->loop_box);

	while (chain) {
		struct loop_req *req = (struct loop_req *)chain;

		chain = chain->next;
		switch (req->kind) {
		case LOOP_PROPOSE:
			do_propose(n, req);
			break;
		case LOOP_READ:
			do_read(n, req);
			break;
		case LOOP_COMPACT:
			do_compact(n, req);
			break;
		case LOOP_DISK_DONE:
			do_disk_done(n, req);
			break;
		case LOOP_TRANSFER:
			(void)raft_transfer_leadership(n->raft, req->to);
			break;
		case LOOP_ENDPOINT:
			do_endpoint(n, req);
			break;
		}
		free(req->data);
		free(req);
	}
}

/* ------------------------------------------------------------- the loop */

static void receive_all(struct node *n)
{
	struct raft_msg m;

	/* Bounded, so ticks and requests are never starved. */
	for (int i = 0; i < 4096; i++) {
		int rv = transport_recv(n->tr, &m);

		if (rv <= 0)
			break;
		(void)raft_step(n->raft, &m);
		transport_recv_done(n->tr, &m);
	}
}

/*
 * A ZeroMQ socket's fd signals only that commands reached the socket, and
 * any call on the socket may consume that signal while messages stay
 * queued: so a socket is asked (ZMQ_EVENTS) before the loop sleeps.
 * Then plain poll() over the sockets' fds and the eventfds.  This is
 * zmq_poll()'s contract at fewer system calls per turn: zmq_poll() asks
 * every socket twice around a zero-timeout poll() and the real one.
 */
static bool zsock_readable(void *sock)
{
	int events = 0;
	size_t len = sizeof(events);

	return zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) == 0 &&
	    (events & ZMQ_POLLIN);
}

static int zsock_fd(void *sock)
{
	int fd = -1;
	size_t len = sizeof(fd);

	if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) != 0)
		fatalx("ZMQ_FD: %s", zmq_strerror(zmq_errno()));
	return fd;
}

static void wait_input(struct node *n, long timeout)
{
	struct pollfd fds[4];
	nfds_t nfds = 0;

	if (zsock_readable(transport_socket(n->tr)) ||
	    (n->ep_on && zsock_readable(n->ep.sock)))
		return;
	fds[nfds++] = (struct pollfd){ .fd = zsock_fd(transport_socket(n->tr)),
	    .events = POLLIN };
	fds[nfds++] = (struct pollfd){ .fd = mbox_fd(&n->loop_box),
	    .events = POLLIN };
	if (n->ep_on) {
		fds[nfds++] = (struct pollfd){ .fd = zsock_fd(n->ep.sock),
		    .events = POLLIN };
		if (n->ep.fd >= 0)
			fds[nfds++] = (struct pollfd){ .fd = n->ep.fd,
			    .events = POLLIN };
	}
	if (poll(fds, nfds, (int)timeout) < 0 && errno != EINTR)
		fatal("poll");
}

static void *loop_main(void *arg)
{
	struct node *n = arg;

	n->tick_deadline_ms = node_now_ms() + n->cfg.tick_ms;
	handle_ready(n);
	while (!atomic_load(&n->stop_loop)) {
		uint64_t now = node_now_ms();
		long timeout = n->tick_deadline_ms > now ?
		    (long)(n->tick_deadline_ms - now) : 0;
		long t2 = transport_next_timer_ms(n->tr, now);

		if (t2 >= 0 && t2 < timeout)
			timeout = t2;
		wait_input(n, timeout);
		handle_requests(n);
		receive_all(n);
		if (n->ep_on) {
			n->ep.recv(n->ep.arg);
			handle_requests(n); /* what it posted, this turn */
		}
		now = node_now_ms();
		transport_run_timers(n->tr, now);
		while (now >= n->tick_deadline_ms) {
			if (++n->ticks % 10 == 0)
				rsm_expire(n, now);
			(void)raft_tick(n->raft);
			n->tick_deadline_ms += n->cfg.tick_ms;
			if (now > n->tick_deadline_ms + 10 * n->cfg.tick_ms)
				n->tick_deadline_ms = now; /* stalled: no burst */
		}
		handle_ready(n);
		if (n->ep_on)
			n->ep.flush(n->ep.arg);
	}
	return NULL;
}

/* ------------------------------------------------------------ life cycle */

static void trace_core(void *arg, raft_id id, const char *msg)
{
	(void)arg;
	log_debug("raft %" PRIu64 ": %s", id, msg);
}

static int start_core(struct node *n, const struct raft_boot *boot)
{
	struct raft_config rc;
	raft_id voters[RAFT_MAX_MEMBERS];

	for (uint32_t i = 0; i < n->cfg.n_members; i++)
		voters[i] = n->cfg.members[i].id;
	raft_config_defaults(&rc, n->cfg.id, voters, n->cfg.n_members);
	rc.election_tick = n->cfg.election_tick;
	rc.heartbeat_tick = n->cfg.heartbeat_tick;
	rc.seed = node_now_ms() ^ ((uint64_t)getpid() << 20) ^ n->cfg.id;
	rc.trace = trace_core;
	return raft_new(&rc, boot, &n->raft);
}

static int start_transport(struct node *n)
{
	struct transport_config tc;

	transport_config_defaults(&tc);
	tc.cluster_id = n->cfg.cluster_id;
	tc.self = n->cfg.id;
	tc.n_members = n->cfg.n_members;
	for (uint32_t i = 0; i < n->cfg.n_members; i++) {
		tc.members[i].id = n->cfg.members[i].id;
		snprintf(tc.members[i].endpoint, sizeof(tc.members[i].endpoint),
		    "%s", n->cfg.members[i].peer_endpoint);
		snprintf(tc.members[i].curve_public,
		    sizeof(tc.members[i].curve_public), "%s",
		    n->cfg.members[i].curve_public);
	}
	snprintf(tc.curve_secret, sizeof(tc.curve_secret), "%s",
	    n->cfg.curve_secret);
	tc.fault_injection = n->cfg.fault_injection != 0;
	return transport_new(&tc, &n->tr);
}

static int start_threads(struct node *n)
{
	void *(*mains[3])(void *) = { disk_main, rsm_apply_main, loop_main };
	pthread_t *ids[3] = { &n->disk_thread, &n->apply_thread,
		&n->loop_thread };

	for (int i = 0; i < 3; i++) {
		int rv = pthread_create(ids[i], NULL, mains[i], n);

		if (rv != 0)
			return -rv;
		n->threads_started[i] = true;
	}
	return 0;
}

static int check_config(const struct node_config *c, char *err, size_t errlen)
{
	bool self = false;

	if (c->cluster_id == 0 || c->id == 0 || c->n_members == 0 ||
	    c->n_members > RAFT_MAX_MEMBERS || c->tick_ms == 0 ||
	    c->data_dir[0] == '\0' || c->app.apply == NULL ||
	    c->app.snapshot == NULL || c->app.restore == NULL) {
		snprintf(err, errlen, "invalid member configuration");
		return -EINVAL;
	}
	for (uint32_t i = 0; i < c->n_members; i++)
		self |= c->members[i].id == c->id;
	if (!self) {
		snprintf(err, errlen, "member %" PRIu64 " is not in the "
		    "cluster's member list", c->id);
		return -EINVAL;
	}
	return 0;
}

int node_start(const struct node_config *cfg, struct node **out, char *err,
    size_t errlen)
{
	struct raft_boot boot;
	struct storage_stats st;
	struct node *n;
	int rv;

	rv = check_config(cfg, err, errlen);
	if (rv != 0)
		return rv;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->cfg = *cfg;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->idle, NULL);
	if ((rv = mbox_init(&n->loop_box, true)) != 0 ||
	    (rv = mbox_init(&n->disk_box, false)) != 0 ||
	    (rv = mbox_init(&n->apply_box, false)) != 0) {
		snprintf(err, errlen, "cannot create mailboxes: %s",
		    strerror(-rv));
		goto err;
	}
	rv = storage_open(cfg->data_dir, cfg->cluster_id, cfg->id, &cfg->storage,
	    &n->st, &boot, err, errlen);
	if (rv != 0)
		goto err;
	rv = start_core(n, &boot);
	storage_release_boot(n->st);
	if (rv != 0) {
		snprintf(err, errlen, "cannot start the Raft core from %s: %s",
		    cfg->data_dir, rk_strerror(rv));
		goto err;
	}
	storage_stats(n->st, &st);
	atomic_store(&n->log_bytes, st.log_bytes);
	raft_status(n->raft, &n->status.raft); /* before any thread runs */
	rv = start_transport(n);
	if (rv != 0) {
		snprintf(err, errlen, "cannot start the peer transport: %s",
		    strerror(-rv));
		goto err;
	}
	rv = start_threads(n);
	if (rv != 0) {
		snprintf(err, errlen, "cannot start threads: %s", strerror(-rv));
		node_stop(n);
		return rv;
	}
	log_info("member %" PRIu64 " of cluster %" PRIx64 " started: log up "
	    "to %" PRIu64 ", snapshot %" PRIu64, cfg->id, cfg->cluster_id,
	    st.last_index, st.snap_index);
	*out = n;
	return 0;

err:
	node_stop(n);
	return rv;
}

static void drain_loop_box(struct node *n)
{
	struct mbox_item *chain = mbox_take_all(&n->loop_box);

	while (chain) {
		struct loop_req *req = (struct loop_req *)chain;

		chain = chain->next;
		disk_job_free_chain(req->jobs);
		if (req->kind == LOOP_ENDPOINT) {
			*req->result = NODE_ESHUTDOWN;
			sem_post(req->answered);
		}
		if (req->w) {
			pthread_mutex_lock(&n->mu);
			rsm_complete_locked(n, req->w, NODE_ESHUTDOWN);
			rsm_waiter_put_locked(n, req->w);
			pthread_mutex_unlock(&n->mu);
		}
		free(req->data);
		free(req);
	}
}

static void drain_box(struct mbox *b, bool apply)
{
	struct mbox_item *chain = mbox_take_all(b);

	while (chain) {
		struct mbox_item *next = chain->next;

		if (apply) {
			rsm_apply_item_free((struct apply_item *)chain);
		} else {
			disk_job_free((struct disk_job *)chain);
		}
		chain = next;
	}
}

void node_stop(struct node *n)
{
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->mu);
	n->stopping = true;
	pthread_mutex_unlock(&n->mu);
	atomic_store(&n->stop_loop, true);
	mbox_shut(&n->loop_box);
	if (n->threads_started[2])
		pthread_join(n->loop_thread, NULL);
	pthread_mutex_lock(&n->mu);
	n->loop_exited = true;
	n->ep_on = false;
	pthread_cond_broadcast(&n->idle);
	pthread_mutex_unlock(&n->mu);
	mbox_shut(&n->disk_box);
	if (n->threads_started[0])
		pthread_join(n->disk_thread, NULL);
	mbox_shut(&n->apply_box);
	if (n->threads_started[1])
		pthread_join(n->apply_thread, NULL);
	drain_loop_box(n);
	drain_box(&n->disk_box, false);
	drain_box(&n->apply_box, true);
	rsm_fail_all(n, NODE_ESHUTDOWN);
	pthread_mutex_lock(&n->mu);
	while (n->callers > 0)
		pthread_cond_wait(&n->idle, &n->mu);
	pthread_mutex_unlock(&n->mu);
	transport_free(n->tr);
	raft_free(n->raft);
	storage_close(n->st);
	mbox_close(&n->loop_box);
	mbox_close(&n->disk_box);
	mbox_close(&n->apply_box);
	pthread_cond_destroy(&n->idle);
	pthread_mutex_destroy(&n->mu);
	free(n);
}

/*
 * Post an endpoint change to the loop and wait until it is done.  If the
 * node is stopping (the post fails), wait until the loop thread is gone,
 * so that the endpoint is not touched after this returns either way.  The
 * caller counts as one inside the node, which node_stop() waits for.
 * Never from the loop itself: it would wait for itself.
 */
static int endpoint_change(struct node *n, const struct node_endpoint *ep)
{
	struct loop_req *req;
	sem_t answered;
	int result = 0;

	if (n->threads_started[2] &&
	    pthread_equal(pthread_self(), n->loop_thread))
		return -EDEADLK;
	pthread_mutex_lock(&n->mu);
	n->callers++;
	pthread_mutex_unlock(&n->mu);
	req = calloc(1, sizeof(*req));
	if (req == NULL) {
		result = -ENOMEM;
		goto out;
	}
	if (ep != NULL && (req->data = malloc(sizeof(*ep))) == NULL) {
		free(req);
		result = -ENOMEM;
		goto out;
	}
	if (ep != NULL)
		memcpy(req->data, ep, sizeof(*ep));
	sem_init(&answered, 0, 0);
	req->kind = LOOP_ENDPOINT;
	req->answered = &answered;
	req->result = &result;
	if (node_post(n, req) != 0) {
		free(req->data);
		free(req);
		result = NODE_ESHUTDOWN;
		pthread_mutex_lock(&n->mu);
		while (n->threads_started[2] && !n->loop_exited)
			pthread_cond_wait(&n->idle, &n->mu);
		pthread_mutex_unlock(&n->mu);
	} else {
		while (sem_wait(&answered) != 0)
			; /* EINTR */
	}
	sem_destroy(&answered);
out:
	pthread_mutex_lock(&n->mu);
	if (--n->callers == 0)
		pthread_cond_broadcast(&n->idle);
	pthread_mutex_unlock(&n->mu);
	return result;
}

int node_attach_endpoint(struct node *n, const struct node_endpoint *ep)
{
	if (ep == NULL || ep->sock == NULL || ep->recv == NULL ||
	    ep->flush == NULL)
		return -EINVAL;
	return endpoint_change(n, ep);
}

void node_detach_endpoint(struct node *n)
{
	(void)endpoint_change(n, NULL);
}

void node_cancel_waiters(struct node *n)
{
	pthread_mutex_lock(&n->mu);
	n->stopping = true;
	pthread_mutex_unlock(&n->mu);
	rsm_fail_all(n, NODE_ESHUTDOWN);
}

void node_status(struct node *n, struct node_status *st)
{
	pthread_mutex_lock(&n->mu);
	*st = n->status;
	st->applied = n->applied;
	pthread_mutex_unlock(&n->mu);
	st->log_bytes = atomic_load(&n->log_bytes);
	st->syncs = atomic_load(&n->syncs);
	st->fsyncs = atomic_load(&n->fsyncs);
	st->entries_persisted = atomic_load(&n->entries_persisted);
	st->snap_index = st->raft.snap_index;
}

int node_transfer_leadership(struct node *n, raft_id to)
{
	struct loop_req *req;
	bool member = false;

	for (uint32_t i = 0; i < n->cfg.n_members; i++)
		member |= n->cfg.members[i].id == to;
	if (!member || to == n->cfg.id)
		return -EINVAL;
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return -ENOMEM;
	req->kind = LOOP_TRANSFER;
	req->to = to;
	if (node_post(n, req) != 0) {
		free(req);
		return NODE_ESHUTDOWN;
	}
	return 0;
}

int node_set_fault(struct node *n, raft_id peer, unsigned drop_pct,
    unsigned delay_ms, int blocked)
{
	/* The transport's fault table is its own lock-protected state, so
	 * the test control path may set it from any thread. */
	return transport_set_fault(n->tr, peer, drop_pct, delay_ms, blocked);
}
