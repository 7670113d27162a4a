/*
 * endpoint.c - the client endpoint of a member (see endpoint.h).
 *
 * The ROUTER socket is served by the member's loop thread
 * (node_attach_endpoint): a request is [routing id][body]; the body is
 * decoded at once (a request that does not decode is dropped and counted;
 * one for another cluster is answered CPROTO_EFOREIGN).  SUBMIT and READ
 * are started right there without blocking (rsm_submit_async, the read
 * barrier); the rest, which may block, become jobs for the worker pool.
 * Every reply goes through the reply mailbox, whose eventfd the loop also
 * polls, and is sent under the request's routing id when the loop
 * flushes — at the end of the same turn when the command was applied on
 * the loop.  Replies leave without a copy through the reply budget
 * (replybudget.h), which bounds in bytes what a client that does not
 * read can make the member hold.  So a lone SUBMIT crosses no thread inside the member besides
 * the loop's own hand-offs to the disk.  The ROUTER's high-water mark
 * bounds what a flood of clients can queue; replies to clients that went
 * away are dropped by ZeroMQ (ZMQ_ROUTER_MANDATORY off).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "raft/client/cproto.h"
#include "raft/le.h"
#include "raft/util/logging.h"
#include "raft/member/mbox.h"
#include "raft/member/endpoint.h"
#include "raft/member/endpoint_auth.h"
#include "raft/member/replybudget.h"
#include "raft/member/rsm.h"
#include "raft/net/auth.h"

#define ENDPOINT_MAX_ID 256
#define ENDPOINT_DEFAULT_TIMEOUT_MS 5000
#define ENDPOINT_MAX_TIMEOUT_MS 60000

struct job {
	struct mbox_item item;
	uint8_t id[ENDPOINT_MAX_ID];
	size_t id_len;
	struct cproto_req req;
	uint8_t *body; /* owns the bytes req.payload points into */
	uint8_t *reply; /* encoded reply */
	size_t reply_len;
	struct reply_charge *charge; /* reply's bytes in the client's budget */
	struct endpoint *owner; /* whose job (its reply budget) */
	bool barrier_passed; /* READ: the read barrier is behind us */
	bool needs_query; /* READ in the reply box: answer it first */
};

struct endpoint {
	struct node *node;
	struct rsm *rsm; /* the node's */
	uint64_t cluster_id;
	struct endpoint_app app;
	void *zctx;
	void *sock;
	struct auth *auth; /* ZAP handler; NULL: no authentication */
	bool open_membership; /* no authentication: changes allowed anyway */
	struct reply_budget *budget; /* bytes of unsent replies per client */
	struct mbox jobs;
	struct mbox replies; /* with eventfd, polled by the loop */
	bool attached; /* the loop serves the socket */
	pthread_t *workers;
	unsigned n_workers;
	unsigned started;
	atomic_uint pending; /* asynchronous submits not yet answered */
	uint64_t malformed;
};

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->body);
	free(j->reply);
	reply_budget_uncharge(j->charge);
	free(j);
}

static void set_reply(struct job *j, int status, uint64_t leader,
    const void *payload, size_t len)
{
	struct cproto_rep rep = {
		.op = j->req.op,
		.req_id = j->req.req_id,
		.status = status,
		.leader = leader,
		.len = (uint32_t)len,
		.payload = payload,
	};

	free(j->reply);
	reply_budget_uncharge(j->charge);
	j->charge = NULL;
	j->reply = malloc(CPROTO_REP_HDR + len);
	/* Charged to the client until written: over its byte budget, a
	 * small error instead (see replybudget.h). */
	if (j->reply != NULL &&
	    reply_budget_charge(j->owner->budget, j->id, j->id_len,
	        CPROTO_REP_HDR + len, &j->charge) != 0) {
		free(j->reply);
		j->reply = malloc(CPROTO_REP_HDR);
		rep.len = 0;
		rep.status = CPROTO_EUNREAD;
	} else if (j->reply == NULL) {
		rep.len = 0;
		rep.status = -ENOMEM;
		j->reply = malloc(CPROTO_REP_HDR);
	}
	if (j->reply == NULL)
		return; /* dropped: the client times out and retries */
	j->reply_len = cproto_encode_rep(&rep, j->reply);
}

static void run_status(struct endpoint *s, struct job *j)
{
	struct node_status st;
	struct cproto_status cs;
	uint8_t buf[CPROTO_STATUS_LEN];

	node_status(s->node, &st);
	cs.id = st.raft.id;
	cs.term = st.raft.term;
	cs.vote = st.raft.vote;
	cs.leader = st.raft.leader;
	cs.commit = st.raft.commit;
	cs.applied = st.applied;
	cs.last_index = st.raft.last_index;
	cs.snap_index = st.raft.snap_index;
	cs.log_bytes = st.log_bytes;
	cs.syncs = st.syncs;
	cs.entries_persisted = st.entries_persisted;
	cs.role = (uint8_t)st.raft.role;
	cproto_encode_status(&cs, buf);
	set_reply(j, 0, st.raft.leader, buf, sizeof(buf));
}

/* The request's own timeout, capped; 0 means the default.  Unsigned until
 * capped: a client's 2^31 must not turn negative. */
static int request_timeout(const struct job *j)
{
	uint32_t t = j->req.timeout_ms;

	if (t == 0)
		return ENDPOINT_DEFAULT_TIMEOUT_MS;
	return t > ENDPOINT_MAX_TIMEOUT_MS ? ENDPOINT_MAX_TIMEOUT_MS : (int)t;
}

/* Answer a query from local state (READ_STALE at once, READ once its
 * read barrier has passed): with the application's query(), or with
 * @quick its query_quick() on the loop.  Returns false, with nothing
 * answered, when the quick one leaves it to a worker (-EAGAIN). */
static bool run_query(struct endpoint *s, struct job *j, bool quick)
{
	void *out = NULL;
	size_t out_len = 0;
	int rv = quick
	    ? rsm_query_quick(s->rsm, j->req.payload, j->req.len, &out,
	          &out_len)
	    : rsm_query(s->rsm, j->req.payload, j->req.len, &out, &out_len);

	if (quick && rv == -EAGAIN)
		return false;
	if (!quick && rv == -ENOSYS)
		rv = CPROTO_EBADOP; /* the application answers no queries */
	set_reply(j, rv, 0, out, rv == 0 ? out_len : 0);
	free(out);
	return true;
}

/* MEMBER: list here; changes through the node, answered once committed
 * (node_member_change blocks this worker meanwhile). */
static void run_member(struct endpoint *s, struct job *j)
{
	static const int types[] = {
		[CPROTO_MEMBER_ADD] = RAFT_CONF_ADD_LEARNER,
		[CPROTO_MEMBER_PROMOTE] = RAFT_CONF_PROMOTE,
		[CPROTO_MEMBER_REMOVE] = RAFT_CONF_REMOVE,
	};
	struct cproto_member_req *r = malloc(sizeof(*r));
	struct cproto_member_list *l = NULL;
	uint8_t *out = NULL;
	uint32_t len = 0;
	raft_id leader = 0;
	int rv = r == NULL ? -ENOMEM : 0;

	if (rv == 0)
		rv = cproto_decode_member_req(j->req.payload, j->req.len, r);
	if (rv == 0 && r->action == CPROTO_MEMBER_LIST) {
		l = malloc(sizeof(*l));
		rv = l == NULL ? -ENOMEM : 0;
		if (rv == 0) {
			node_members(s->node, &l->conf, &l->conf_index,
			    &l->dir);
			rv = cproto_encode_member_list(l, &out, &len);
		}
	} else if (rv == 0) {
		/* With authentication an admin's (checked on receipt). */
		rv = node_member_change(s->node, types[r->action], r->id,
		    &r->entry, s->auth != NULL || s->open_membership,
		    request_timeout(j), &leader);
	}
	set_reply(j, rv, leader, out, rv == 0 ? len : 0);
	free(out);
	free(l);
	free(r);
}

/* What may block, on a worker.  SUBMIT and READ never come here: the loop
 * starts them without blocking (submit_async, read_async). */
static void run_job(struct endpoint *s, struct job *j)
{
	struct cproto_fault f;
	int rv;

	switch (j->req.op) {
	case CPROTO_READ:
	case CPROTO_READ_STALE:
		(void)run_query(s, j, false);
		return;
	case CPROTO_STATUS:
		run_status(s, j);
		return;
	case CPROTO_MEMBER:
		run_member(s, j);
		return;
	case CPROTO_FAULT:
		rv = cproto_decode_fault(j->req.payload, j->req.len, &f);
		if (rv == 0)
			rv = node_set_fault(s->node, f.peer, f.drop_pct,
			    f.delay_ms, f.blocked);
		set_reply(j, rv, 0, NULL, 0);
		return;
	case CPROTO_TRANSFER:
		rv = j->req.len == 8 ? 0 : CPROTO_EMALFORMED;
		if (rv == 0)
			rv = node_transfer_leadership(s->node,
			    le_get64(j->req.payload));
		set_reply(j, rv, 0, NULL, 0);
		return;
	}
	set_reply(j, CPROTO_EBADOP, 0, NULL, 0);
}

/* rsm_done_fn of an asynchronous SUBMIT (runs on a member thread). */
static void submit_done(void *arg, int status, void *reply, size_t len,
    raft_id leader)
{
	struct job *j = arg;
	struct endpoint *s = j->owner;

	set_reply(j, status, leader, reply, len);
	free(reply);
	if (mbox_put(&s->replies, &j->item) != 0)
		job_free(j);
	atomic_fetch_sub(&s->pending, 1);
}

/* rsm_done_fn of a READ's barrier (it runs under the node's lock): the
 * query is answered when the loop flushes, there or on a worker. */
static void barrier_done(void *arg, int status, void *reply, size_t len,
    raft_id leader)
{
	struct job *j = arg;
	struct endpoint *s = j->owner;

	(void)reply;
	(void)len;
	if (status == 0) {
		j->barrier_passed = true;
		j->needs_query = true;
		if (mbox_put(&s->replies, &j->item) != 0)
			job_free(j);
	} else {
		set_reply(j, status, leader, NULL, 0);
		if (mbox_put(&s->replies, &j->item) != 0)
			job_free(j);
	}
	atomic_fetch_sub(&s->pending, 1);
}

/* READ: start the barrier from the loop; no worker waits for it. */
static void read_async(struct endpoint *s, struct job *j)
{
	int tmo = request_timeout(j);
	int rv;

	j->owner = s;
	atomic_fetch_add(&s->pending, 1);
	rv = rsm_read_barrier_async(s->rsm, tmo, barrier_done, j);
	if (rv == 0)
		return;
	atomic_fetch_sub(&s->pending, 1);
	set_reply(j, rv, 0, NULL, 0);
	if (mbox_put(&s->replies, &j->item) != 0)
		job_free(j);
}

/*
 * SUBMIT on the loop itself: stamp, hand to the node, and let the
 * completion (on the loop, or the applier under load) post the reply.  No
 * worker thread in the way.
 */
static void submit_async(struct endpoint *s, struct job *j)
{
	int tmo = request_timeout(j);
	int rv;

	rv = s->app.prepare
	    ? s->app.prepare(s->app.arg, (uint8_t *)j->req.payload, j->req.len)
	    : 0;
	if (rv == 0) {
		j->owner = s;
		atomic_fetch_add(&s->pending, 1);
		rv = rsm_submit_async(s->rsm, j->req.payload, j->req.len, tmo,
		    submit_done, j);
		if (rv == 0)
			return;
		atomic_fetch_sub(&s->pending, 1);
	}
	set_reply(j, rv, 0, NULL, 0);
	if (mbox_put(&s->replies, &j->item) != 0)
		job_free(j);
}

static void *worker_main(void *arg)
{
	struct endpoint *s = arg;
	struct mbox_item *it;

	while ((it = mbox_wait_one(&s->jobs)) != NULL) {
		struct job *j = (struct job *)it;

		run_job(s, j);
		if (mbox_put(&s->replies, &j->item) != 0)
			job_free(j);
	}
	return NULL;
}

/* node_endpoint flush: send every reply ready (on the loop thread). */
static void send_replies(void *arg)
{
	struct endpoint *s = arg;
	struct mbox_item *chain = mbox_take_all(&s->replies);

	while (chain) {
		struct job *j = (struct job *)chain;

		chain = chain->next;
		if (j->needs_query) {
			j->needs_query = false;
			if (!run_query(s, j, true)) {
				if (mbox_put(&s->jobs, &j->item) != 0)
					job_free(j);
				continue;
			}
		}
		/* Without a copy, and within the client's byte budget: a
		 * client that does not read cannot grow the member. */
		if (j->reply != NULL)
			(void)reply_budget_send(s->sock, j->id, j->id_len,
			    j->reply, j->reply_len, j->charge);
		j->reply = NULL;
		j->charge = NULL;
		job_free(j);
	}
}

/* Swallow the remaining frames of the message being received. */
static void drop_rest(struct endpoint *s)
{
	int more = 0;
	size_t len = sizeof(more);

	zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &len);
	while (more) {
		zmq_msg_t extra;

		zmq_msg_init(&extra);
		if (zmq_msg_recv(&extra, s->sock, ZMQ_DONTWAIT) < 0)
			more = 0;
		else
			zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &len);
		zmq_msg_close(&extra);
	}
}

/*
 * Read one [id][body] request.  Returns 0 when none is waiting, else 1 with
 * *@out the job, or NULL when the request was bad (answered or dropped
 * here) or memory ran out.
 */
static int recv_request(struct endpoint *s, struct job **out)
{
	uint8_t id[ENDPOINT_MAX_ID];
	struct job *j;
	zmq_msg_t body;
	int idn, more = 0, rv;
	size_t more_len = sizeof(more);

	*out = NULL;
	idn = zmq_recv(s->sock, id, sizeof(id), ZMQ_DONTWAIT);
	if (idn < 0)
		return 0;
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		drop_rest(s);
		return 1;
	}
	j->owner = s;
	j->id_len = (size_t)idn > sizeof(j->id) ? sizeof(j->id) : (size_t)idn;
	memcpy(j->id, id, j->id_len);
	zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &more_len);
	if (!more) {
		s->malformed++;
		free(j);
		return 1;
	}
	zmq_msg_init(&body);
	if (zmq_msg_recv(&body, s->sock, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&body);
		free(j);
		return 1;
	}
	/* Swallow any further frames: a request is exactly one body. */
	zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &more_len);
	j->body = malloc(zmq_msg_size(&body) ? zmq_msg_size(&body) : 1);
	if (j->body != NULL)
		memcpy(j->body, zmq_msg_data(&body), zmq_msg_size(&body));
	rv = j->body == NULL || more
	    ? CPROTO_EMALFORMED
	    : cproto_decode_req(j->body, zmq_msg_size(&body), &j->req);
	/* Authenticated endpoint: administrative requests from admins only. */
	if (rv == 0 && s->auth != NULL && cproto_op_is_admin(j->req.op) &&
	    !endpoint_auth_is_admin(&body))
		rv = CPROTO_EDENIED;
	/* ... and membership changes (a listing is anyone's): with
	 * authentication only an admin's; without it, the leader's setting
	 * decides (node_member_change): a member that does not lead sends
	 * the client to the leader whatever its own. */
	if (rv == 0 && j->req.op == CPROTO_MEMBER &&
	    !(j->req.len >= 1 && j->req.payload[0] == CPROTO_MEMBER_LIST) &&
	    s->auth != NULL && !endpoint_auth_is_admin(&body))
		rv = CPROTO_EDENIED;
	if (more)
		drop_rest(s);
	zmq_msg_close(&body);
	if (rv == CPROTO_EMALFORMED) {
		if (s->malformed++ % 1000 == 0)
			log_warnx("client endpoint: malformed request dropped "
			          "(%llu so far)",
			    (unsigned long long)s->malformed);
		job_free(j);
		return 1;
	}
	if (rv == 0 && j->req.cluster_id != s->cluster_id)
		rv = CPROTO_EFOREIGN;
	if (rv != 0) {
		set_reply(j, rv, 0, NULL, 0);
		if (mbox_put(&s->replies, &j->item) != 0)
			job_free(j);
		return 1;
	}
	*out = j;
	return 1;
}

/* node_endpoint recv: take the requests waiting (on the loop thread). */
static void recv_requests(void *arg)
{
	struct endpoint *s = arg;

	/* Bounded, so the loop's other work is never starved. */
	for (int i = 0; i < 256; i++) {
		struct job *j;

		if (recv_request(s, &j) == 0)
			break;
		if (j != NULL && j->req.op == CPROTO_SUBMIT)
			submit_async(s, j);
		else if (j != NULL && j->req.op == CPROTO_READ)
			read_async(s, j);
		else if (j != NULL && mbox_put(&s->jobs, &j->item) != 0)
			job_free(j);
	}
}

int endpoint_start(struct node *n, uint64_t cluster_id, const char *addr,
    const struct endpoint_app *app, const struct endpoint_auth *auth,
    unsigned workers, struct endpoint **out, char *err, size_t errlen)
{
	struct endpoint *s = calloc(1, sizeof(*s));
	struct node_endpoint ep;
	int zero = 0, hwm = 10000;
	int64_t max_msg = CPROTO_REQ_HDR + (int64_t)CPROTO_MAX_PAYLOAD;
	int rv;

	if (s == NULL)
		return -ENOMEM;
	s->node = n;
	s->rsm = node_rsm(n);
	s->cluster_id = cluster_id;
	s->open_membership = auth != NULL && auth->open_membership;
	if (app)
		s->app = *app;
	s->n_workers = workers ? workers : 32;
	s->workers = calloc(s->n_workers, sizeof(*s->workers));
	s->zctx = zmq_ctx_new();
	if (s->workers == NULL || s->zctx == NULL ||
	    reply_budget_new(REPLY_BUDGET_PER_CLIENT, REPLY_BUDGET_TOTAL,
	        &s->budget) != 0) {
		rv = -ENOMEM;
		snprintf(err, errlen, "cannot set up the client endpoint");
		goto err;
	}
	mbox_init(&s->jobs, false);
	rv = mbox_init(&s->replies, true);
	if (rv != 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(-rv));
		goto err;
	}
	s->sock = zmq_socket(s->zctx, ZMQ_ROUTER);
	zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof(zero));
	/* A client cannot make us buffer more than one legal request: larger
	 * frames drop the connection inside ZeroMQ, before any allocation. */
	zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof(max_msg));
	zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	rv = endpoint_auth_apply(s->zctx, s->sock, auth, &s->auth, err, errlen);
	if (rv != 0)
		goto err;
	if (zmq_bind(s->sock, addr) != 0) {
		rv = -zmq_errno();
		snprintf(err, errlen, "cannot bind client endpoint %s: %s",
		    addr, zmq_strerror(zmq_errno()));
		goto err;
	}
	for (; s->started < s->n_workers; s->started++)
		if (pthread_create(&s->workers[s->started], NULL, worker_main,
		        s) != 0)
			break;
	if (s->started == 0) {
		rv = -EAGAIN;
		snprintf(err, errlen, "cannot start client endpoint threads");
		goto err;
	}
	ep.sock = s->sock;
	ep.fd = mbox_fd(&s->replies);
	ep.recv = recv_requests;
	ep.flush = send_replies;
	ep.arg = s;
	rv = node_attach_endpoint(n, &ep);
	if (rv != 0) {
		snprintf(err, errlen, "cannot attach the client endpoint: %s",
		    rk_strerror(rv));
		goto err;
	}
	s->attached = true;
	*out = s;
	return 0;

err:
	mbox_shut(&s->jobs);
	for (unsigned i = 0; i < s->started; i++)
		pthread_join(s->workers[i], NULL);
	if (s->sock)
		zmq_close(s->sock);
	if (s->zctx) {
		zmq_ctx_shutdown(s->zctx); /* wakes the ZAP thread */
		auth_free(s->auth);
		zmq_ctx_term(s->zctx);
	}
	reply_budget_free(s->budget);
	free(s->workers);
	free(s);
	return rv;
}

/* Free every job left in @box (stopping: nobody will answer them). */
static void drop_jobs(struct mbox *box)
{
	struct mbox_item *it;

	while ((it = mbox_take_all(box)) != NULL)
		while (it) {
			struct mbox_item *next = it->next;

			job_free((struct job *)it);
			it = next;
		}
}

void endpoint_stop(struct endpoint *s)
{
	int linger = 500;

	if (s == NULL)
		return;
	/* 1. Every waiting request fails with NODE_ESHUTDOWN now, and so does
	 *    every new one: the loop still serves the socket to answer them. */
	rsm_cancel(s->rsm);
	while (atomic_load(&s->pending) > 0) {
		struct timespec ts = { 0, 1000000 };

		rsm_cancel(s->rsm);
		nanosleep(&ts, NULL);
	}
	/* 2. Workers finish what is queued (quickly: the node refuses). */
	mbox_shut(&s->jobs);
	for (unsigned i = 0; i < s->started; i++)
		pthread_join(s->workers[i], NULL);
	/* 3. The loop sends the replies still queued and lets go of the
	 *    socket; the last ones (if the loop is gone) leave from here,
	 *    and the socket lingers briefly so they do before it closes. */
	if (s->attached)
		node_detach_endpoint(s->node);
	send_replies(s);
	zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger));
	drop_jobs(&s->jobs);
	drop_jobs(&s->replies);
	zmq_close(s->sock);
	if (s->auth != NULL) {
		/* Wakes the ZAP thread; the closed ROUTER still lingers
		 * in zmq_ctx_term() below. */
		zmq_ctx_shutdown(s->zctx);
		auth_free(s->auth);
	}
	zmq_ctx_term(s->zctx);
	reply_budget_free(s->budget); /* no release can follow the term */
	mbox_close(&s->jobs);
	mbox_close(&s->replies);
	free(s->workers);
	free(s);
}
