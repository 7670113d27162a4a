/*
 * client.c - request/reply over the client protocol (see client.h).
 *
 * Each DEALER has a socket monitor (a PAIR on an inproc address)
 * reporting handshake results: a refusal by the member's ZAP handler
 * arrives there as ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, a plaintext client
 * meeting a CURVE member (or the reverse) as _FAILED_PROTOCOL.  That is
 * the only way to tell "refused" from "not up yet" (ZMQ_IMMEDIATE keeps
 * sends failing with EAGAIN in both cases).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "raft/client/client.h"
#include "raft/client/cproto.h"
#include "raft/util/clock.h"

struct client {
	struct cluster cl;
	void *zctx;
	bool own_ctx;
	void *socks[RAFT_MAX_MEMBERS];
	void *mons[RAFT_MAX_MEMBERS]; /* CURVE: handshake monitors */
	bool refused[RAFT_MAX_MEMBERS]; /* last handshake refused */
	bool connected[RAFT_MAX_MEMBERS]; /* TCP up, handshake not done */
	unsigned cut[RAFT_MAX_MEMBERS]; /* connections cut in the handshake */
	uint64_t next_id;
	uint8_t *buf;
	size_t cap;
	unsigned loss_pct; /* test-only loss injection */
	uint64_t rng;
};

/* Watch the handshakes of @s, the socket to member @i. */
static int watch(struct client *c, void *s, uint32_t i)
{
	static const int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	    ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_CONNECTED |
	    ZMQ_EVENT_DISCONNECTED;
	/* A fresh name each time: a closed socket's monitor lets go of its
	 * address only later, in ZeroMQ's reaper, and a new client may be
	 * allocated where the old one was. */
	static atomic_uint_fast64_t seq;
	char addr[96];
	int zero = 0;

	snprintf(addr, sizeof(addr),
	    "inproc://raftkv-client-mon-%" PRIu64 "-%u",
	    (uint64_t)atomic_fetch_add(&seq, 1), i);
	if (zmq_socket_monitor(s, addr, events) != 0)
		return -ENOMEM;
	c->mons[i] = zmq_socket(c->zctx, ZMQ_PAIR);
	if (c->mons[i] == NULL)
		return -ENOMEM;
	zmq_setsockopt(c->mons[i], ZMQ_LINGER, &zero, sizeof(zero));
	return zmq_connect(c->mons[i], addr) == 0 ? 0 : -ENOMEM;
}

/* Make @s a CURVE client of member @i. */
static int set_curve(struct client *c, void *s, uint32_t i)
{
	char pub[CLUSTER_KEY_LEN + 1];

	if (zmq_curve_public(pub, c->cl.cred_secret) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, c->cl.members[i].key,
	        CLUSTER_KEY_LEN) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, CLUSTER_KEY_LEN) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, c->cl.cred_secret,
	        CLUSTER_KEY_LEN) != 0)
		return -EINVAL;
	return 0;
}

/*
 * Follow member @i's handshakes.  A refusal is usually reported as such
 * (FAILED_AUTH, FAILED_PROTOCOL), but when the member closes first the
 * client only sees a connection cut before its handshake finished: two of
 * those in a row count as a refusal too (one could be a member dying at
 * that moment).
 */
static void note_event(struct client *c, uint32_t i, uint16_t ev)
{
	switch (ev) {
	case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
		c->refused[i] = false;
		c->connected[i] = false;
		c->cut[i] = 0;
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		c->refused[i] = true;
		break;
	case ZMQ_EVENT_CONNECTED:
		c->connected[i] = true;
		break;
	case ZMQ_EVENT_DISCONNECTED:
		if (c->connected[i] && ++c->cut[i] >= 2)
			c->refused[i] = true;
		c->connected[i] = false;
		break;
	}
}

/* Read the monitor events waiting for member @i (none: returns at once). */
static void read_events(struct client *c, uint32_t i)
{
	zmq_msg_t m;

	if (c->mons[i] == NULL)
		return;
	for (;;) {
		uint16_t ev;
		int more;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, c->mons[i], ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		more = zmq_msg_more(&m);
		if (zmq_msg_size(&m) >= 2) {
			memcpy(&ev, zmq_msg_data(&m), 2);
			note_event(c, i, ev);
		}
		zmq_msg_close(&m);
		while (more) { /* the endpoint frame */
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, c->mons[i], ZMQ_DONTWAIT) < 0)
				more = 0;
			else
				more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		}
	}
}

int client_new(const struct cluster *cl, void *zctx, struct client **out)
{
	struct client *c;
	int zero = 0, one = 1, hwm = 1000, ivl = 100, ivl_max = 1000;
	int64_t max_msg = CPROTO_REP_HDR + (int64_t)CPROTO_MAX_PAYLOAD;

	if (cl->curve && cl->cred_secret[0] == '\0')
		return CLIENT_ENOCRED;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->cl = *cl;
	c->zctx = zctx;
	if (c->zctx == NULL) {
		c->zctx = zmq_ctx_new();
		c->own_ctx = true;
	}
	if (c->zctx == NULL) {
		free(c);
		return -ENOMEM;
	}
	/* Request ids start from the clock so a restarted client's ids do
	 * not collide with its previous incarnation's late replies. */
	c->next_id = mono_ms() << 20;
	for (uint32_t i = 0; i < cl->n; i++) {
		void *s = zmq_socket(c->zctx, ZMQ_DEALER);

		if (s == NULL) {
			client_free(c);
			return -ENOMEM;
		}
		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one));
		zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_msg, sizeof(max_msg));
		zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
		zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
		zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max,
		    sizeof(ivl_max));
		c->socks[i] = s;
		if ((cl->curve && set_curve(c, s, i) != 0) ||
		    watch(c, s, i) != 0) {
			client_free(c);
			return -ENOMEM;
		}
		if (zmq_connect(s, cl->members[i].client) != 0) {
			client_free(c);
			return -EINVAL;
		}
	}
	*out = c;
	return 0;
}

void client_free(struct client *c)
{
	if (c == NULL)
		return;
	for (uint32_t i = 0; i < c->cl.n; i++) {
		/* Stop monitoring first: a socket closing with its monitor
		 * still on would send its last events (DISCONNECTED...) from
		 * ZeroMQ's I/O thread to a monitor nobody reads any more,
		 * and that send can block the I/O thread for good, and with
		 * it every socket of a shared context (libzmq #3575). */
		if (c->mons[i] && c->socks[i])
			zmq_socket_monitor(c->socks[i], NULL, 0);
		if (c->socks[i])
			zmq_close(c->socks[i]);
		if (c->mons[i])
			zmq_close(c->mons[i]);
	}
	explicit_bzero(c->cl.cred_secret, sizeof(c->cl.cred_secret));
	if (c->own_ctx)
		zmq_ctx_term(c->zctx);
	free(c->buf);
	free(c);
}

void client_set_loss(struct client *c, unsigned pct, uint64_t seed)
{
	c->loss_pct = pct > 100 ? 100 : pct;
	c->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* True with probability loss_pct %. */
static bool lose(struct client *c)
{
	uint64_t z;

	if (c->loss_pct == 0)
		return false;
	z = (c->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z % 100 < c->loss_pct;
}

int client_index_of(const struct client *c, uint64_t id)
{
	for (uint32_t i = 0; i < c->cl.n; i++)
		if (c->cl.members[i].id == id)
			return (int)i;
	return -1;
}

/* Send, giving a fresh socket until @deadline to connect, or until
 * @hard when its handshakes are being cut (a refusal in the making). */
static int send_req(struct client *c, uint32_t idx, uint8_t op, const void *p,
    uint32_t len, int timeout_ms, uint64_t id, uint64_t deadline, uint64_t hard)
{
	void *s = c->socks[idx];
	struct cproto_req req = {
		.op = op,
		.cluster_id = c->cl.id,
		.req_id = id,
		.timeout_ms = (uint32_t)timeout_ms,
		.len = len,
		.payload = p,
	};
	size_t need = CPROTO_REQ_HDR + (size_t)len, n;

	if (need > c->cap) {
		uint8_t *b = realloc(c->buf, need);

		if (b == NULL)
			return -ENOMEM;
		c->buf = b;
		c->cap = need;
	}
	n = cproto_encode_req(&req, c->buf);
	/* With ZMQ_IMMEDIATE a send fails while the connection is not up;
	 * give a fresh socket a moment to connect before calling it
	 * unreachable. */
	for (;;) {
		zmq_pollitem_t it = { .socket = c->mons[idx],
			.events = ZMQ_POLLIN };

		if (zmq_send(s, c->buf, n, ZMQ_DONTWAIT) >= 0)
			return 0;
		if (zmq_errno() != EAGAIN)
			return CLIENT_EUNREACHABLE;
		read_events(c, idx);
		if (c->refused[idx])
			return CLIENT_EAUTH;
		if (mono_ms() >= (c->cut[idx] > 0 ? hard : deadline))
			return CLIENT_EUNREACHABLE;
		zmq_poll(&it, it.socket != NULL, 5);
	}
}

int client_call(struct client *c, uint32_t idx, uint8_t op, const void *payload,
    uint32_t len, int timeout_ms, struct client_reply *rep)
{
	uint64_t id = ++c->next_id, deadline = mono_ms() + (uint64_t)timeout_ms;
	void *s;
	int rv;

	memset(rep, 0, sizeof(*rep));
	if (idx >= c->cl.n || timeout_ms <= 0)
		return -EINVAL;
	s = c->socks[idx];
	if (lose(c)) {
		zmq_poll(NULL, 0, (long)(id % 27)); /* labrpc's short delay */
		return CLIENT_ETIMEDOUT;
	}
	rv = send_req(c, idx, op, payload, len, timeout_ms, id,
	    mono_ms() + (timeout_ms < 200 ? (uint64_t)timeout_ms : 200),
	    deadline);
	if (rv != 0)
		return rv;
	for (;;) {
		zmq_pollitem_t it = { .socket = s, .events = ZMQ_POLLIN };
		uint64_t now = mono_ms();
		struct cproto_rep r;
		zmq_msg_t m;

		if (now >= deadline)
			return CLIENT_ETIMEDOUT;
		if (zmq_poll(&it, 1, (long)(deadline - now)) <= 0)
			continue;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			continue;
		}
		if (cproto_decode_rep(zmq_msg_data(&m), zmq_msg_size(&m), &r) !=
		        0 ||
		    r.req_id != id) {
			zmq_msg_close(&m); /* stale or garbage */
			continue;
		}
		if (lose(c)) {
			zmq_msg_close(&m); /* the member acted; we never hear */
			return CLIENT_ETIMEDOUT;
		}
		rep->status = r.status;
		rep->leader = r.leader;
		rep->len = r.len;
		if (r.len) {
			rep->data = malloc(r.len);
			if (rep->data == NULL) {
				zmq_msg_close(&m);
				return -ENOMEM;
			}
			memcpy(rep->data, r.payload, r.len);
		}
		zmq_msg_close(&m);
		return 0;
	}
}
