/*
 * node.c - the member's request loop: the event loop that drives the pure
 * Raft core, and the node's life cycle.  node_ready.c is the other half:
 * what the loop does with each raft_ready batch.
 *
 * One turn of the loop (loop_main):
 *
 *   wait     poll() over the peer socket's fd, the mailbox's eventfd and
 *            an attached endpoint's socket and eventfd, until the next
 *            tick or transport timer — unless a ZeroMQ socket already
 *            holds messages (ZMQ_EVENTS; see wait_input);
 *   inputs   requests from other threads through loop_box (the RSM's
 *            proposals, read-index requests and compactions; batches the
 *            persister made durable; leadership transfers; endpoint
 *            changes), peer messages (raft_step), the endpoint's requests
 *            (and what they posted, in the same turn), transport timers,
 *            ticks (raft_tick every tick_ms of CLOCK_BOOTTIME, caught
 *            up before requests and messages are handled, a long stall
 *            reported with raft_tick_gap: the read lease needs both);
 *   ready    node_ready_handle(): raft_ready() until idle;
 *   flush    the endpoint sends the replies made ready in this turn.
 *
 * Dependencies: this file calls the persister (persist.h) and the RSM
 * (rsm_int.h); they reach the loop only through the callbacks given to
 * them here (persist_done, rsm_post).  No other thread touches the core
 * or the transport.
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

static int post(struct node *n, struct loop_req *req)
{
	return mbox_put(&n->loop_box, &req->msg.item);
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

/* ------------------------------------------------------------- requests */

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
		struct mbox_msg *m = (struct mbox_msg *)chain;
		struct loop_req *req = (struct loop_req *)chain;

		chain = chain->next;
		switch (m->kind) {
		case LOOP_RSM:
			rsm_loop_run(n->rsm, n->raft, m);
			continue; /* freed there */
		case LOOP_DISK_DONE:
			node_ready_disk_done(n, req->jobs);
			break;
		case LOOP_TRANSFER:
			(void)raft_transfer_leadership(n->raft, req->to);
			break;
		case LOOP_ENDPOINT:
			do_endpoint(n, req);
			break;
		case LOOP_MEMBER:
			node_member_request(n, req->op);
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

/* The clock ticks follow: CLOCK_BOOTTIME, which unlike CLOCK_MONOTONIC
 * also counts time the machine spent suspended (a read lease must not
 * outlive a suspend, raft/readindex.c). */
static uint64_t tick_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Tick for every tick_ms that passed.  A stall of more than ten ticks is
 * not made up in a burst: the core is told instead (raft_tick_gap), so a
 * leader drops its read lease rather than believe it after the stall. */
static void run_ticks(struct node *n)
{
	uint64_t now = tick_clock_ms();

	while (now >= n->tick_deadline_ms) {
		if (++n->ticks % 10 == 0)
			rsm_loop_expire(n->rsm, mono_ms());
		node_member_tick(n);
		(void)raft_tick(n->raft);
		n->tick_deadline_ms += n->cfg.tick_ms;
		if (now > n->tick_deadline_ms + 10 * n->cfg.tick_ms) {
			n->tick_deadline_ms = now; /* stalled: no burst */
			raft_tick_gap(n->raft);
		}
	}
}

/*
 * A turn of the loop busy for this long holds off ticks, heartbeats and
 * every peer: it is logged (tests/integration/test_snapshot_big.c reads
 * these lines to measure the longest stall; nothing else parses them).
 */
#define LOOP_STALL_LOG_MS 100

static void note_turn(struct node *n, const uint64_t t[3])
{
	uint64_t took = mono_ms() - t[0];

	if (took < LOOP_STALL_LOG_MS)
		return;
	if (took > n->max_turn_ms)
		n->max_turn_ms = took;
	log_info("loop stalled: one turn took %" PRIu64 " ms (requests %" PRIu64
	         ", peers and clients %" PRIu64 ", ready %" PRIu64
	         " ms; longest so far %" PRIu64 " ms)",
	    took, t[1] - t[0], t[2] - t[1], t[0] + took - t[2], n->max_turn_ms);
}

static void *loop_main(void *arg)
{
	struct node *n = arg;

	n->tick_deadline_ms = tick_clock_ms() + n->cfg.tick_ms;
	node_ready_handle(n);
	while (!atomic_load(&n->stop_loop)) {
		uint64_t now = tick_clock_ms();
		long timeout = n->tick_deadline_ms > now
		    ? (long)(n->tick_deadline_ms - now)
		    : 0;
		long t2;
		uint64_t turn[3];

		now = mono_ms();
		t2 = transport_next_timer_ms(n->tr, now);

		if (t2 >= 0 && t2 < timeout)
			timeout = t2;
		wait_input(n, timeout);
		turn[0] = mono_ms();
		/* Time first: read requests and messages are judged by a clock
		 * that is up to date (a read lease, raft/readindex.c). */
		run_ticks(n);
		handle_requests(n);
		turn[1] = mono_ms();
		receive_all(n);
		if (n->ep_on) {
			n->ep.recv(n->ep.arg);
			handle_requests(n); /* what it posted, this turn */
		}
		now = mono_ms();
		turn[2] = now;
		transport_run_timers(n->tr, now);
		run_ticks(n);
		node_ready_handle(n);
		if (n->ep_on)
			n->ep.flush(n->ep.arg);
		note_turn(n, turn);
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
	if (n->cfg.join) { /* a learner until the log says otherwise */
		rc.n_learners = 1;
		rc.learners[0] = n->cfg.id;
	}
	rc.election_tick = n->cfg.election_tick;
	rc.heartbeat_tick = n->cfg.heartbeat_tick;
	rc.disable_lease_read = n->cfg.read_no_lease != 0;
	rc.seed = mono_ms() ^ ((uint64_t)getpid() << 20) ^ n->cfg.id;
	rc.trace = trace_core;
	return raft_new(&rc, boot, &n->raft);
}

/* The transport, connected to the members of the configuration in
 * force that the directory knows (node_member.c). */
static int start_transport(struct node *n)
{
	struct raft_conf c;
	raft_index ci;

	raft_get_conf(n->raft, &c, &ci);
	pthread_mutex_lock(&n->mu);
	n->conf = c;
	n->conf_index = ci;
	n->dir = n->cfg.dir;
	pthread_mutex_unlock(&n->mu);
	atomic_store(&n->dir_dirty, true); /* saved at the first tick */
	return node_member_sync(n);
}

/* persist_done_fn: a group commit's jobs back to the loop (persister
 * thread). */
static int persist_done(void *arg, struct persist_job *chain)
{
	struct node *n = arg;
	struct loop_req *req = calloc(1, sizeof(*req));

	if (req == NULL)
		fatalx("out of memory handing back a disk batch");
	req->msg.kind = LOOP_DISK_DONE;
	req->jobs = chain;
	if (post(n, req) != 0) {
		free(req);
		return -EPIPE;
	}
	return 0;
}

/* rsm_loop.post: a request of the RSM's to the loop (any thread). */
static int rsm_post(void *arg, struct mbox_msg *m)
{
	struct node *n = arg;

	return mbox_put(&n->loop_box, &m->item);
}

/* rsm_loop.log_bytes: the persister's count (any thread). */
static uint64_t rsm_log_bytes(void *arg)
{
	struct node *n = arg;

	return persist_log_bytes(n->persist);
}

static int start_rsm(struct node *n)
{
	struct rsm_config rc = {
		.app = n->cfg.app,
		.max_raft_state = n->cfg.max_raft_state,
		.read_via_log = n->cfg.read_via_log != 0,
		.loop = {
			.arg = n,
			.msg_kind = LOOP_RSM,
			.post = rsm_post,
			.log_bytes = rsm_log_bytes,
		},
	};

	return rsm_new(&rc, &n->rsm);
}

/* The persister, the applier, then the loop. */
static int start_threads(struct node *n)
{
	int rv = persist_start(n->persist);

	if (rv == 0)
		rv = rsm_start(n->rsm);
	if (rv == 0) {
		rv = -pthread_create(&n->loop_thread, NULL, loop_main, n);
		n->loop_started = rv == 0;
	}
	return rv;
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
	if (self == (c->join != 0)) {
		snprintf(err, errlen,
		    c->join ? "member %" PRIu64 " joins but is a bootstrap "
		              "member already"
		            : "member %" PRIu64 " is not in the "
		              "cluster's member list",
		    c->id);
		return -EINVAL;
	}
	if (memberdir_find(&c->dir, c->id) == NULL) {
		snprintf(err, errlen,
		    "member %" PRIu64 " has no entry in the "
		    "member directory",
		    c->id);
		return -EINVAL;
	}
	return 0;
}

/* Recover the storage, hand it to a new persister and start the core. */
static int start_storage(struct node *n, struct storage_stats *st, char *err,
    size_t errlen)
{
	struct raft_boot boot;
	struct storage *stg;
	int rv;

	rv = storage_open(n->cfg.data_dir, n->cfg.cluster_id, n->cfg.id,
	    &n->cfg.storage, &stg, &boot, err, errlen);
	if (rv != 0)
		return rv;
	rv = persist_new(stg, persist_done, n, &n->persist);
	if (rv != 0) {
		storage_close(stg);
		snprintf(err, errlen, "cannot create the persister: %s",
		    strerror(-rv));
		return rv;
	}
	/* The log's change entries may be newer than the directory file. */
	n->dir = n->cfg.dir;
	n->gone = n->cfg.gone;
	node_member_boot(n, &boot);
	n->cfg.dir = n->dir;
	rv = start_core(n, &boot);
	storage_release_boot(stg);
	if (rv != 0) {
		snprintf(err, errlen, "cannot start the Raft core from %s: %s",
		    n->cfg.data_dir, rk_strerror(rv));
		return rv;
	}
	storage_stats(stg, st);
	return 0;
}

int node_start(const struct node_config *cfg, struct node **out, char *err,
    size_t errlen)
{
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
	if ((rv = mbox_init(&n->loop_box, true)) != 0) {
		snprintf(err, errlen, "cannot create mailboxes: %s",
		    strerror(-rv));
		goto err;
	}
	if ((rv = start_rsm(n)) != 0) {
		snprintf(err, errlen, "cannot create the state machine: %s",
		    strerror(-rv));
		goto err;
	}
	rv = start_storage(n, &st, err, errlen);
	if (rv != 0)
		goto err;
	raft_status(n->raft, &n->status.raft); /* before any thread runs */
	rv = start_transport(n);
	if (rv != 0) {
		snprintf(err, errlen, "cannot start the peer transport: %s",
		    strerror(-rv));
		goto err;
	}
	rv = start_threads(n);
	if (rv != 0) {
		snprintf(err, errlen, "cannot start threads: %s",
		    strerror(-rv));
		goto err;
	}
	log_info("member %" PRIu64 " of cluster %" PRIx64 " started: log up "
	         "to %" PRIu64 ", snapshot %" PRIu64,
	    cfg->id, cfg->cluster_id, st.last_index, st.snap_index);
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
		struct mbox_msg *m = (struct mbox_msg *)chain;
		struct loop_req *req = (struct loop_req *)chain;

		chain = chain->next;
		if (m->kind == LOOP_RSM) {
			rsm_loop_drop(n->rsm, m);
			continue;
		}
		persist_job_free_chain(req->jobs);
		if (m->kind == LOOP_MEMBER)
			node_member_finish(req->op, NODE_ESHUTDOWN, 0);
		if (m->kind == LOOP_ENDPOINT) {
			*req->result = NODE_ESHUTDOWN;
			sem_post(req->answered);
		}
		free(req->data);
		free(req);
	}
}

void node_stop(struct node *n)
{
	if (n == NULL)
		return;
	if (n->rsm)
		rsm_refuse(n->rsm);
	atomic_store(&n->stop_loop, true);
	mbox_shut(&n->loop_box);
	if (n->loop_started)
		pthread_join(n->loop_thread, NULL);
	pthread_mutex_lock(&n->mu);
	n->loop_exited = true;
	n->ep_on = false;
	pthread_cond_broadcast(&n->idle);
	pthread_mutex_unlock(&n->mu);
	if (n->persist)
		persist_join(n->persist);
	if (n->rsm)
		rsm_join(n->rsm);
	drain_loop_box(n);
	node_member_stop(n);
	rsm_free(n->rsm);
	pthread_mutex_lock(&n->mu);
	while (n->callers > 0)
		pthread_cond_wait(&n->idle, &n->mu);
	pthread_mutex_unlock(&n->mu);
	transport_free(n->tr);
	raft_free(n->raft);
	persist_free(n->persist);
	mbox_close(&n->loop_box);
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

	if (n->loop_started && pthread_equal(pthread_self(), n->loop_thread))
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
	req->msg.kind = LOOP_ENDPOINT;
	req->answered = &answered;
	req->result = &result;
	if (post(n, req) != 0) {
		free(req->data);
		free(req);
		result = NODE_ESHUTDOWN;
		pthread_mutex_lock(&n->mu);
		while (n->loop_started && !n->loop_exited)
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

struct rsm *node_rsm(struct node *n)
{
	return n->rsm;
}

void node_status(struct node *n, struct node_status *st)
{
	struct persist_stats ps;

	pthread_mutex_lock(&n->mu);
	*st = n->status;
	pthread_mutex_unlock(&n->mu);
	st->applied = rsm_applied(n->rsm);
	persist_stats(n->persist, &ps);
	st->log_bytes = ps.log_bytes;
	st->syncs = ps.syncs;
	st->fsyncs = ps.fsyncs;
	st->entries_persisted = ps.entries_persisted;
	st->snap_index = st->raft.snap_index;
}

int node_transfer_leadership(struct node *n, raft_id to)
{
	struct loop_req *req;
	bool member = false;

	pthread_mutex_lock(&n->mu);
	for (uint32_t i = 0; i < n->conf.n_voters; i++)
		member |= n->conf.voters[i] == to;
	pthread_mutex_unlock(&n->mu);
	if (!member || to == n->cfg.id)
		return -EINVAL;
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return -ENOMEM;
	req->msg.kind = LOOP_TRANSFER;
	req->to = to;
	if (post(n, req) != 0) {
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
