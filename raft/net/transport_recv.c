/*
 * transport_recv.c - the receiving half of the transport (transport.h):
 * take frames off the ROUTER, validate them, lend out the messages.
 *
 * Nothing from the network is handed out before it is validated: the
 * message must be one ZeroMQ frame behind the routing id, frame_decode()
 * must accept it (magic, version, cluster, a member other than us as the
 * sender, a canonical body whose from and to agree), and with CURVE the
 * connection's ZAP user id must be the sender's: a member holding its own
 * key cannot speak for another.  The check fails closed: a connection that
 * somehow skipped the ZAP handler carries no member's user id, so none of
 * its frames pass.
 *
 * A rejected frame costs one counter and at most one log line per reason
 * per second, naming the peer's address, so a misconfigured member or a
 * stranger on the network shows up in the log without flooding it.  A
 * valid message is decoded in place: its entries and chunk point into the
 * ZeroMQ message, which the transport keeps (t->held) until
 * transport_recv_done().
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "raft/util/logging.h"
#include "raft/net/transport_int.h"

#define RECV_SKIP_MAX 256 /* rejected frames skipped per transport_recv() */

static uint64_t *reason_counter(struct transport *t, int err, int *idx)
{
	switch (err) {
	case FRAME_EVERSION:
		*idx = TR_VERSION;
		return &t->stats.rejected_version;
	case FRAME_ECLUSTER:
		*idx = TR_CLUSTER;
		return &t->stats.rejected_cluster;
	case FRAME_ESENDER:
		*idx = TR_SENDER;
		return &t->stats.rejected_sender;
	case FRAME_EFORGED:
		*idx = TR_FORGED;
		return &t->stats.rejected_forged;
	case FRAME_EMISROUTED:
		*idx = TR_MISROUTED;
		return &t->stats.rejected_misrouted;
	case FRAME_EAUTH:
		*idx = TR_AUTH;
		return &t->stats.rejected_auth;
	}
	*idx = TR_MALFORMED;
	return &t->stats.rejected_malformed;
}

/* Count and (rate-limited) log a rejected frame.  @zm may be NULL. */
static void reject(struct transport *t, int err, const struct frame_header *h,
    zmq_msg_t *zm)
{
	const char *addr = zm != NULL ? zmq_msg_gets(zm, "Peer-Address") : NULL;
	const char *user = zm != NULL ? zmq_msg_gets(zm, "User-Id") : NULL;
	char more[48];
	uint64_t unlogged;
	int idx;

	(*reason_counter(t, err, &idx))++;
	t->stats.rejected++;
	if (!transport__may_log(&t->reject_log[idx], &unlogged))
		return;
	snprintf(more, sizeof(more), "; %" PRIu64 " more not logged", unlogged);
	log_warnx("transport: frame rejected: %s (from %s%s%s, sender %" PRIu64
	          ", cluster %#" PRIx64 ", version %u, %zu bytes)%s",
	    rk_strerror(err), addr != NULL ? addr : "?",
	    user != NULL ? ", key of member " : "", user != NULL ? user : "",
	    h->sender, h->cluster_id, h->version,
	    zm != NULL ? zmq_msg_size(zm) : 0, unlogged > 0 ? more : "");
}

/* Read one part into @zm (initialised here).  Returns 0 or -errno. */
static int recv_part(void *sock, zmq_msg_t *zm, int flags)
{
	zmq_msg_init(zm);
	while (zmq_msg_recv(zm, sock, flags) < 0) {
		int err = zmq_errno();

		if (err != EINTR) {
			zmq_msg_close(zm);
			return -err;
		}
	}
	return 0;
}

/*
 * Receive one ROUTER message, [routing id][frame], keeping the frame in
 * t->held.  Returns 1 with the frame held, 0 when nothing is waiting, 2 for
 * a message of the wrong shape (already counted and discarded), or -errno.
 */
static int recv_frame(struct transport *t)
{
	struct frame_header h = { 0 };
	zmq_msg_t rid, extra;
	int rv;

	rv = recv_part(t->router, &rid, ZMQ_DONTWAIT);
	if (rv != 0)
		return rv == -EAGAIN ? 0 : rv;
	if (!zmq_msg_more(&rid)) { /* impossible on a ROUTER; be safe */
		zmq_msg_close(&rid);
		reject(t, FRAME_EMALFORMED, &h, NULL);
		return 2;
	}
	zmq_msg_close(&rid);
	/* The rest of a multipart message is delivered atomically. */
	rv = recv_part(t->router, &t->held, 0);
	if (rv != 0)
		return rv;
	if (!zmq_msg_more(&t->held))
		return 1;
	do {
		if (recv_part(t->router, &extra, 0) != 0)
			break;
		rv = zmq_msg_more(&extra);
		zmq_msg_close(&extra);
	} while (rv);
	reject(t, FRAME_EMALFORMED, &h, &t->held);
	zmq_msg_close(&t->held);
	return 2;
}

/* With CURVE: the frame's sender must be the member whose key it came
 * with (the ZAP handler named the connection after that member). */
static int check_user(struct transport *t, zmq_msg_t *zm, raft_id sender)
{
	const char *user = zmq_msg_gets(zm, "User-Id");
	struct transport_peer *p = transport__peer(t, sender);

	if (user == NULL || p == NULL || strcmp(user, p->user_id) != 0)
		return FRAME_EAUTH;
	return 0;
}

/* Validate the held frame into @m.  Returns 1 (accepted), 0 (dropped and
 * counted), or -ENOMEM (dropped). */
static int accept_frame(struct transport *t, struct raft_msg *m)
{
	struct frame_header h;
	int rv;

	rv = frame_decode(zmq_msg_data(&t->held), zmq_msg_size(&t->held),
	    &t->filter, &h, m);
	if (rv == 0 && t->curve) {
		rv = check_user(t, &t->held, h.sender);
		if (rv != 0)
			msg_release(m);
	}
	if (rv == 0) {
		t->holding = true;
		t->stats.received++;
		return 1;
	}
	if (rv < 0 && rv != -ENOMEM)
		reject(t, rv, &h, &t->held);
	zmq_msg_close(&t->held);
	memset(m, 0, sizeof(*m));
	return rv == -ENOMEM ? -ENOMEM : 0;
}

int transport_recv(struct transport *t, struct raft_msg *m)
{
	assert(!t->holding); /* transport_recv_done() first */
	if (t->holding) {
		zmq_msg_close(&t->held);
		t->holding = false;
	}
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < RECV_SKIP_MAX; i++) {
		int rv = recv_frame(t);

		if (rv == 2)
			continue;
		if (rv <= 0)
			return rv;
		rv = accept_frame(t, m);
		if (rv != 0)
			return rv;
	}
	return 0;
}

void transport_recv_done(struct transport *t, struct raft_msg *m)
{
	msg_release(m);
	memset(m, 0, sizeof(*m));
	if (t->holding) {
		zmq_msg_close(&t->held);
		t->holding = false;
	}
}
