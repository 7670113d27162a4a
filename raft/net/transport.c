/*
 * transport.c - ZeroMQ links between members (contract in transport.h).
 *
 * Sockets, per member:
 *
 *            peers' DEALERs ──────► ROUTER (bound at our peer endpoint)
 *   our DEALER to peer 2 ─────────► peer 2's ROUTER
 *   our DEALER to peer 3 ─────────► peer 3's ROUTER
 *
 * A message is one ZeroMQ message holding one frame (frame.h); the ROUTER
 * sees it as [routing id][frame].  Nothing ever travels back on a
 * connection: a reply is a message on the other member's DEALER.  So a
 * member's outgoing queues are per peer and bounded (ZMQ_SNDHWM), and
 * nothing is queued while a peer is away (ZMQ_IMMEDIATE); an incoming
 * connection can hold at most ZMQ_RCVHWM messages of at most
 * FRAME_MAX_SIZE bytes (ZMQ_MAXMSGSIZE: a bigger one closes the
 * connection before it is buffered).
 *
 * Why DEALER rather than PUSH for the outgoing side: either would do for
 * one-way traffic; DEALER/ROUTER is what the design names, lets the ROUTER
 * see which connection a frame came from, and leaves room for replies on
 * the same connection should they ever be wanted.
 *
 * Why drop rather than wait: Raft is built for a lossy network.  A leader
 * that blocked on a dead follower's queue would stop heartbeating the live
 * ones; a leader that queued without bound would run out of memory during
 * a long partition.  Dropping costs a retry at the next heartbeat, and the
 * -EAGAIN tells the caller the peer is unreachable right now.
 *
 * Files: this one has the life cycle, the sockets and the sending half;
 * transport_recv.c receives and validates (the frame checks, and with
 * CURVE the ZAP user id against the claimed sender); auth.c is the ZAP
 * handler; frame.c the frame codec.
 *
 * Fault injection (netfault.c) hooks in here because this is where a real
 * member's messages leave: blocked peers, random drops and delays are
 * applied on send, delayed frames are sent by transport_run_timers().  The
 * fault table is the only state shared with other threads; the send path
 * looks at it only if fault injection was enabled at creation (t->faults
 * is NULL otherwise).
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "raft/net/auth.h"
#include "raft/util/logging.h"
#include "raft/net/netfault.h"
#include "raft/net/transport_int.h"
#include "raft/util/clock.h"

#define LOG_EVERY_MS 1000 /* one line per reason (or peer) per second */
#define ZAP_DOMAIN "raftkv"
#define Z85_KEY_LEN 40

/* True (and the ratelimit advanced) if a line may be logged now. */
bool transport__may_log(struct transport_ratelimit *rl, uint64_t *unlogged)
{
	uint64_t now = mono_ms();

	if (rl->last_ms != 0 && now - rl->last_ms < LOG_EVERY_MS) {
		rl->unlogged++;
		return false;
	}
	*unlogged = rl->unlogged;
	rl->last_ms = now;
	rl->unlogged = 0;
	return true;
}

struct transport_peer *transport__peer(const struct transport *t, raft_id id)
{
	for (uint32_t i = 0; i < t->n_peers; i++)
		if (t->peers[i]->id == id)
			return t->peers[i];
	return NULL;
}

void transport_config_defaults(struct transport_config *c)
{
	memset(c, 0, sizeof(*c));
	c->send_hwm = 1000;
	c->send_bytes_max = 64u * 1024 * 1024;
	c->recv_hwm = 1000;
	c->reconnect_ivl_ms = 100;
	c->reconnect_ivl_max_ms = 1000;
	c->heartbeat_ivl_ms = 1000;
	c->heartbeat_timeout_ms = 3000;
	c->handshake_ivl_ms = 5000;
	c->max_delayed = 4096;
	c->max_delayed_bytes = 64u * 1024 * 1024;
}

/* ------------------------------------------------------------------------
 * Configuration checks and keys
 * ------------------------------------------------------------------------ */

struct keys {
	uint8_t members[RAFT_MAX_MEMBERS][AUTH_KEY_SIZE];
	uint8_t secret[AUTH_KEY_SIZE];
	uint8_t public[AUTH_KEY_SIZE];
};

/* Decode a Z85 key of exactly 40 characters (NUL within @cap). */
static bool decode_key(const char *z85, size_t cap, uint8_t *out)
{
	return strnlen(z85, cap) == Z85_KEY_LEN &&
	    zmq_z85_decode(out, z85) != NULL;
}

static int check_members(const struct transport_config *c)
{
	bool self_found = false;

	if (c->cluster_id == 0 || c->self == 0 || c->n_members == 0 ||
	    c->n_members > RAFT_MAX_MEMBERS)
		return -EINVAL;
	for (uint32_t i = 0; i < c->n_members; i++) {
		const struct transport_member *m = &c->members[i];
		size_t len = strnlen(m->endpoint, sizeof(m->endpoint));

		if (m->id == 0 || len == 0 || len == sizeof(m->endpoint))
			return -EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (c->members[j].id == m->id)
				return -EINVAL;
		self_found |= m->id == c->self;
	}
	if (!self_found || c->send_hwm <= 0 || c->recv_hwm <= 0 ||
	    c->send_bytes_max == 0)
		return -EINVAL;
	if (c->fault_injection && c->max_delayed == 0)
		return -EINVAL;
	return 0;
}

/* Check the CURVE settings; decode them into @k.  Sets *@curve. */
static int check_keys(const struct transport_config *c, struct keys *k,
    bool *curve)
{
	char own_public[TRANSPORT_KEY_Z85_LEN];

	*curve = c->curve_secret[0] != '\0';
	for (uint32_t i = 0; i < c->n_members; i++) {
		const char *pub = c->members[i].curve_public;

		if (!*curve && pub[0] != '\0')
			return -EINVAL; /* keys on members but none of our own */
		if (*curve &&
		    !decode_key(pub, TRANSPORT_KEY_Z85_LEN, k->members[i]))
			return -EINVAL;
	}
	if (!*curve)
		return 0;
	if (!zmq_has("curve"))
		return -ENOTSUP;
	if (!decode_key(c->curve_secret, sizeof(c->curve_secret), k->secret) ||
	    zmq_curve_public(own_public, c->curve_secret) != 0 ||
	    zmq_z85_decode(k->public, own_public) == NULL)
		return -EINVAL;
	for (uint32_t i = 0; i < c->n_members; i++)
		if (c->members[i].id == c->self &&
		    memcmp(k->members[i], k->public, AUTH_KEY_SIZE) != 0)
			return -EINVAL; /* the secret is not self's */
	return 0;
}

/* ------------------------------------------------------------------------
 * Sockets
 * ------------------------------------------------------------------------ */

static int set_int(void *s, int opt, int v)
{
	return zmq_setsockopt(s, opt, &v, sizeof(v)) == 0 ? 0 : -zmq_errno();
}

static int set_bytes(void *s, int opt, const void *v, size_t len)
{
	return zmq_setsockopt(s, opt, v, len) == 0 ? 0 : -zmq_errno();
}

/* Options every socket gets: no linger, dead connections detected. */
static int set_common(void *s, const struct transport_config *c)
{
	int64_t max_size = (int64_t)FRAME_MAX_SIZE;
	int rv = 0;

	rv = rv ? rv : set_int(s, ZMQ_LINGER, 0);
	rv = rv ? rv : set_int(s, ZMQ_HEARTBEAT_IVL, c->heartbeat_ivl_ms);
	rv = rv ? rv
	        : set_int(s, ZMQ_HEARTBEAT_TIMEOUT, c->heartbeat_timeout_ms);
	rv = rv ? rv : set_int(s, ZMQ_HEARTBEAT_TTL, c->heartbeat_timeout_ms);
	rv = rv ? rv : set_int(s, ZMQ_HANDSHAKE_IVL, c->handshake_ivl_ms);
	rv = rv ? rv
	        : set_bytes(s, ZMQ_MAXMSGSIZE, &max_size, sizeof(max_size));
	return rv;
}

static int open_router(struct transport *t, const struct transport_config *c,
    const struct keys *k, const char *endpoint)
{
	size_t len = sizeof(t->endpoint);
	int rv;

	t->router = zmq_socket(t->ctx, ZMQ_ROUTER);
	if (t->router == NULL)
		return -zmq_errno();
	rv = set_common(t->router, c);
	rv = rv ? rv : set_int(t->router, ZMQ_RCVHWM, c->recv_hwm);
	rv = rv ? rv : set_int(t->router, ZMQ_SNDHWM, 1);
	if (t->curve) {
		rv = rv ? rv : set_int(t->router, ZMQ_CURVE_SERVER, 1);
		rv = rv ? rv
		        : set_bytes(t->router, ZMQ_CURVE_SECRETKEY, k->secret,
		              AUTH_KEY_SIZE);
		rv = rv ? rv
		        : set_bytes(t->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN,
		              strlen(ZAP_DOMAIN));
	}
	if (rv != 0)
		return rv;
	if (zmq_bind(t->router, endpoint) != 0) {
		rv = -zmq_errno();
		log_warnx("transport: cannot bind %s: %s", endpoint,
		    zmq_strerror(-rv));
		return rv;
	}
	if (zmq_getsockopt(t->router, ZMQ_LAST_ENDPOINT, t->endpoint, &len) !=
	    0)
		snprintf(t->endpoint, sizeof(t->endpoint), "%s", endpoint);
	return 0;
}

/*
 * A refused CURVE handshake (a member whose key the peer does not admit
 * YET: it has not seen the change that adds us) is a protocol error to
 * libzmq, after which it never reconnects that DEALER.  So each DEALER
 * has a monitor for handshake failures, read when a send to the peer is
 * refused (-EAGAIN); a failure there reopens the DEALER a second later.
 */
static int open_monitor(struct transport *t, struct transport_peer *p)
{
	char addr[64];

	snprintf(addr, sizeof(addr), "inproc://transport-monitor-%p",
	    (void *)p);
	if (zmq_socket_monitor(p->sock, addr,
	        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
	            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
		return -zmq_errno();
	p->monitor = zmq_socket(t->ctx, ZMQ_PAIR);
	if (p->monitor == NULL)
		return -zmq_errno();
	if (set_int(p->monitor, ZMQ_LINGER, 0) != 0 ||
	    zmq_connect(p->monitor, addr) != 0)
		return -zmq_errno();
	return 0;
}

static void close_dealer(struct transport_peer *p)
{
	if (p->sock != NULL) {
		(void)zmq_socket_monitor(p->sock, NULL, 0);
		zmq_close(p->sock);
	}
	if (p->monitor != NULL)
		zmq_close(p->monitor);
	p->sock = NULL;
	p->monitor = NULL;
}

static int open_dealer(struct transport *t, struct transport_peer *p,
    const struct transport_config *c, const struct keys *k,
    const uint8_t *server_key)
{
	const char *endpoint = p->endpoint;
	int rv;

	p->sock = zmq_socket(t->ctx, ZMQ_DEALER);
	if (p->sock == NULL)
		return -zmq_errno();
	rv = set_common(p->sock, c);
	rv = rv ? rv : set_int(p->sock, ZMQ_IMMEDIATE, 1);
	rv = rv ? rv : set_int(p->sock, ZMQ_SNDHWM, c->send_hwm);
	rv = rv ? rv : set_int(p->sock, ZMQ_RCVHWM, 1);
	rv = rv ? rv : set_int(p->sock, ZMQ_RECONNECT_IVL, c->reconnect_ivl_ms);
	rv = rv
	    ? rv
	    : set_int(p->sock, ZMQ_RECONNECT_IVL_MAX, c->reconnect_ivl_max_ms);
	rv = rv
	    ? rv
	    : set_int(p->sock, ZMQ_CONNECT_TIMEOUT, c->heartbeat_timeout_ms);
	if (t->curve) {
		rv = rv ? rv
		        : set_bytes(p->sock, ZMQ_CURVE_SERVERKEY, server_key,
		              AUTH_KEY_SIZE);
		rv = rv ? rv
		        : set_bytes(p->sock, ZMQ_CURVE_PUBLICKEY, k->public,
		              AUTH_KEY_SIZE);
		rv = rv ? rv
		        : set_bytes(p->sock, ZMQ_CURVE_SECRETKEY, k->secret,
		              AUTH_KEY_SIZE);
	}
	if (rv != 0)
		return rv;
	if (rv == 0)
		rv = open_monitor(t, p);
	if (rv != 0)
		return rv;
	if (zmq_connect(p->sock, endpoint) != 0) {
		rv = -zmq_errno();
		log_warnx("transport: cannot connect to member %" PRIu64
		          " at %s: %s",
		    p->id, endpoint, zmq_strerror(-rv));
		return rv;
	}
	return 0;
}

/* A peer (not connected yet) for member @m. */
static struct transport_peer *peer_new(const struct transport_config *c,
    const struct transport_member *m)
{
	struct transport_peer *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->id = m->id;
	p->reachable = true;
	p->send_bytes_max = c->send_bytes_max;
	snprintf(p->user_id, sizeof(p->user_id), "%" PRIu64, m->id);
	snprintf(p->endpoint, sizeof(p->endpoint), "%s", m->endpoint);
	snprintf(p->curve_public, sizeof(p->curve_public), "%s",
	    m->curve_public);
	return p;
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

static int setup(struct transport *t, const struct transport_config *c,
    const struct keys *k)
{
	const char *bind_at = NULL;
	int rv;

	t->ctx = zmq_ctx_new();
	if (t->ctx == NULL)
		return -zmq_errno();
	if (t->curve) {
		/* Before the ROUTER exists: a CURVE server with no ZAP
		 * handler bound admits every key. */
		rv = auth_new(t->ctx, t->ids, k->members, c->n_members,
		    &t->auth);
		if (rv != 0)
			return rv;
	}
	for (uint32_t i = 0; i < c->n_members; i++)
		if (c->members[i].id == c->self)
			bind_at = c->members[i].endpoint;
	rv = open_router(t, c, k, bind_at);
	for (uint32_t i = 0, j = 0; rv == 0 && i < c->n_members; i++) {
		struct transport_peer *p;

		if (c->members[i].id == c->self)
			continue;
		/* One peer that cannot be connected (open_dealer logs why)
		 * is skipped: sends to it drop and retry (send_msg). */
		p = t->peers[j++];
		if (open_dealer(t, p, c, k, k->members[i]) != 0)
			close_dealer(p);
	}
	return rv;
}

int transport_new(const struct transport_config *cfg, struct transport **out)
{
	struct transport *t;
	struct keys k;
	bool curve;
	int rv;


	rv = check_members(cfg);
	if (rv == 0)
		rv = check_keys(cfg, &k, &curve);
	if (rv != 0)
		return rv;
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		explicit_bzero(&k, sizeof(k));
		return -ENOMEM;
	}
	t->curve = curve;
	t->cluster_id = cfg->cluster_id;
	t->self = cfg->self;
	t->cfg = *cfg;
	for (uint32_t i = 0; i < cfg->n_members; i++) {
		raft_id id = cfg->members[i].id;
		struct transport_peer *p;

		t->ids[i] = id;
		if (id == cfg->self)
			continue;
		p = peer_new(cfg, &cfg->members[i]);
		if (p == NULL) {
			rv = -ENOMEM;
			goto fail;
		}
		t->peers[t->n_peers++] = p;
	}
	t->filter = (struct frame_filter){ .cluster_id = cfg->cluster_id,
		.self = cfg->self,
		.n_members = cfg->n_members,
		.members = t->ids };
	if (cfg->fault_injection) {
		raft_id peers[RAFT_MAX_MEMBERS];

		for (uint32_t i = 0; i < t->n_peers; i++)
			peers[i] = t->peers[i]->id;
		rv = netfault_new(peers, t->n_peers, cfg->max_delayed,
		    cfg->max_delayed_bytes, cfg->fault_seed, &t->faults);
		if (rv != 0)
			goto fail;
	}
	rv = setup(t, cfg, &k);
	if (rv != 0)
		goto fail;
	log_info("transport: member %" PRIu64 " listening on %s (%s), %u peers",
	    t->self, t->endpoint,
	    t->curve ? "CURVE, members only" : "plaintext, unauthenticated",
	    t->n_peers);
	if (t->faults != NULL)
		log_warnx("transport: fault injection ENABLED (test mode)");
	explicit_bzero(&k, sizeof(k));
	*out = t;
	return 0;

fail:
	explicit_bzero(&k, sizeof(k));
	transport_free(t);
	return rv;
}

void transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	if (t->holding)
		zmq_msg_close(&t->held);
	for (uint32_t i = 0; i < t->n_peers; i++)
		close_dealer(t->peers[i]);
	if (t->router != NULL)
		zmq_close(t->router);
	if (t->ctx != NULL) {
		zmq_ctx_shutdown(t->ctx); /* wakes the ZAP thread */
		auth_free(t->auth);
		zmq_ctx_term(t->ctx); /* every queued frame freed by now */
	}
	for (uint32_t i = 0; i < t->n_peers; i++)
		free(t->peers[i]);
	while (t->retired != NULL) {
		struct transport_peer *p = t->retired;

		t->retired = p->next_retired;
		free(p);
	}
	explicit_bzero(&t->cfg, sizeof(t->cfg));
	netfault_free(t->faults);
	free(t);
}

/* ------------------------------------------------------------------------
 * Membership changes
 * ------------------------------------------------------------------------ */

static const struct transport_member *find_member(const struct transport_member
                                                      *members,
    uint32_t n, raft_id id)
{
	for (uint32_t i = 0; i < n; i++)
		if (members[i].id == id)
			return &members[i];
	return NULL;
}

/* Close @p's socket and keep it for transport_free() (frames still queued
 * on it point at it). */
static void retire_peer(struct transport *t, uint32_t i)
{
	struct transport_peer *p = t->peers[i];

	close_dealer(p);
	t->peers[i] = t->peers[--t->n_peers];
	p->next_retired = t->retired;
	t->retired = p;
}

int transport_set_members(struct transport *t,
    const struct transport_member *in, uint32_t n_in)
{
	struct transport_config c = t->cfg;
	const struct transport_member *members = c.members;
	uint32_t n = n_in;
	struct keys k;
	bool curve;
	int rv;

	/* The same checks as at creation, self included (kept when @in
	 * leaves it out): its key must still be the one of our secret. */
	if (n_in > RAFT_MAX_MEMBERS)
		return -EINVAL;
	memcpy(c.members, in, n_in * sizeof(*in));
	if (find_member(in, n_in, t->self) == NULL) {
		const struct transport_member *self =
		    find_member(t->cfg.members, t->cfg.n_members, t->self);

		if (self == NULL || n >= RAFT_MAX_MEMBERS)
			return -EINVAL;
		c.members[n++] = *self;
	}
	c.n_members = n;
	rv = check_members(&c);
	if (rv == 0)
		rv = check_keys(&c, &k, &curve);
	if (rv != 0)
		return rv;
	/* Gone, or moved to another endpoint or key: close. */
	for (uint32_t i = 0; i < t->n_peers;) {
		struct transport_peer *p = t->peers[i];
		const struct transport_member *m = find_member(members, n,
		    p->id);

		if (m != NULL && strcmp(m->endpoint, p->endpoint) == 0 &&
		    strcmp(m->curve_public, p->curve_public) == 0) {
			i++;
			continue;
		}
		log_info("transport: member %" PRIu64 " at %s %s: connection "
		         "closed",
		    p->id, p->endpoint,
		    m == NULL ? "removed" : "changed its endpoint or key");
		retire_peer(t, i);
	}
	/* New: connect. */
	for (uint32_t i = 0; i < n && rv == 0; i++) {
		struct transport_peer *p;

		if (members[i].id == t->self ||
		    transport__peer(t, members[i].id) != NULL)
			continue;
		p = peer_new(&c, &members[i]);
		if (p == NULL) {
			rv = -ENOMEM;
			break;
		}
		/* One that cannot be connected (open_dealer logs why) is
		 * kept unconnected, not fatal: sends to it drop and retry
		 * (send_msg). */
		if (open_dealer(t, p, &c, &k, k.members[i]) != 0)
			close_dealer(p);
		t->peers[t->n_peers++] = p;
		if (t->faults != NULL)
			(void)netfault_add_peer(t->faults, p->id);
		log_info("transport: member %" PRIu64
		         " added: connecting to %s",
		    p->id, p->endpoint);
	}
	/* Who may speak: the frame filter and (CURVE) the ZAP allowlist. */
	for (uint32_t i = 0; i < n; i++)
		t->ids[i] = members[i].id;
	t->filter.n_members = n;
	if (rv == 0 && t->auth != NULL)
		rv = auth_set_members(t->auth, t->ids,
		    (const uint8_t(*)[AUTH_KEY_SIZE])k.members, n);
	t->cfg.n_members = n;
	memcpy(t->cfg.members, members, n * sizeof(*members));
	explicit_bzero(&k, sizeof(k));
	explicit_bzero(&c, sizeof(c));
	return rv;
}

/* ------------------------------------------------------------------------
 * Sending
 * ------------------------------------------------------------------------ */

static void note_reachable(struct transport_peer *p, bool reachable)
{
	uint64_t unlogged;

	p->reachable = reachable;
	if (!transport__may_log(&p->log, &unlogged))
		return;
	if (reachable)
		log_info("transport: member %" PRIu64 " reachable", p->id);
	else
		log_info("transport: member %" PRIu64 " unreachable: dropping "
		         "its messages until it reconnects",
		    p->id);
}

/* A send to @p was refused: did its handshake fail (open_monitor)?  Then
 * reopen its DEALER, at most once a second. */
static void check_handshake(struct transport *t, struct transport_peer *p)
{
	uint64_t now = mono_ms();
	struct keys k;
	bool curve;
	zmq_msg_t ev;
	int i;

	for (;;) {
		zmq_msg_init(&ev);
		if (p->monitor == NULL ||
		    zmq_msg_recv(&ev, p->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			break;
		}
		if (zmq_msg_size(&ev) >= 2 && p->reopen_at_ms == 0)
			p->reopen_at_ms = now + 1000;
		zmq_msg_close(&ev);
	}
	if (p->reopen_at_ms == 0 || now < p->reopen_at_ms)
		return;
	p->reopen_at_ms = 0;
	if (check_keys(&t->cfg, &k, &curve) != 0)
		return;
	for (i = 0; i < (int)t->cfg.n_members; i++)
		if (t->cfg.members[i].id == p->id)
			break;
	if (i == (int)t->cfg.n_members) {
		explicit_bzero(&k, sizeof(k));
		return;
	}
	log_info("transport: member %" PRIu64 " refused our handshake: "
	         "connecting again",
	    p->id);
	close_dealer(p);
	if (open_dealer(t, p, &t->cfg, &k, k.members[i]) != 0)
		close_dealer(p);
	explicit_bzero(&k, sizeof(k));
}

/* Hand @zm to ZeroMQ for @p without blocking.  Consumes @zm. */
static int send_msg(struct transport *t, struct transport_peer *p,
    zmq_msg_t *zm)
{
	int err;

	if (p->sock == NULL) { /* could not be reopened: try again later */
		zmq_msg_close(zm);
		t->stats.dropped++;
		if (p->reopen_at_ms == 0)
			p->reopen_at_ms = mono_ms() + 1000;
		check_handshake(t, p);
		return -EAGAIN;
	}
	do {
		if (zmq_msg_send(zm, p->sock, ZMQ_DONTWAIT) >= 0) {
			t->stats.sent++;
			if (!p->reachable)
				note_reachable(p, true);
			return 0;
		}
		err = zmq_errno();
	} while (err == EINTR);
	zmq_msg_close(zm);
	if (err == EAGAIN) {
		t->stats.dropped++;
		if (p->reachable)
			note_reachable(p, false);
		check_handshake(t, p);
		return -EAGAIN;
	}
	t->stats.send_errors++;
	return -err;
}

/* Apply the fault settings for @p to @m.  Returns true if @m is dealt
 * with (dropped or held for later), false to send it now. */
static bool apply_fault(struct transport *t, struct transport_peer *p,
    const struct raft_msg *m, size_t size)
{
	unsigned delay_ms = 0;
	uint8_t *buf;

	switch (netfault_outgoing(t->faults, p->id, &delay_ms)) {
	case NETFAULT_SEND:
		return false;
	case NETFAULT_DROP:
		t->stats.fault_dropped++;
		return true;
	case NETFAULT_DELAY:
		break;
	}
	buf = netfault_hold(t->faults, p->id, size, mono_ms() + delay_ms);
	if (buf == NULL) { /* queue full */
		t->stats.fault_dropped++;
		return true;
	}
	(void)frame_encode(t->cluster_id, t->self, m, buf, size);
	t->stats.fault_delayed++;
	return true;
}

/* A frame counted in its peer's queued bytes until ZeroMQ frees it. */
struct counted_frame {
	struct transport_peer *peer;
	uint64_t len;
	max_align_t align[]; /* the frame follows */
};

/* ZeroMQ's free callback for a counted frame (an I/O thread). */
static void free_counted(void *data, void *hint)
{
	struct counted_frame *cf = hint;

	(void)data;
	atomic_fetch_sub(&cf->peer->queued_bytes, cf->len);
	free(cf);
}

int transport_send(struct transport *t, const struct raft_msg *m)
{
	struct transport_peer *p = transport__peer(t, m->to);
	size_t size = frame_encoded_size(m);
	struct counted_frame *cf;
	uint64_t queued;
	zmq_msg_t zm;
	long n;

	if (p == NULL || m->from != t->self || size == 0) {
		t->stats.send_errors++;
		return -EINVAL;
	}
	if (t->faults != NULL && apply_fault(t, p, m, size))
		return 0;
	/* The byte bound: a peer that does not keep up is dropped like one
	 * at its high-water mark. */
	queued = atomic_load(&p->queued_bytes);
	if (queued != 0 && queued + size > p->send_bytes_max) {
		t->stats.dropped++;
		if (p->reachable)
			note_reachable(p, false);
		return -EAGAIN;
	}
	/* Encode straight into the buffer ZeroMQ sends: no copy, and no
	 * buffer of ours that a 64 MiB snapshot chunk would leave
	 * oversized. */
	cf = malloc(sizeof(*cf) + size);
	if (cf == NULL) {
		t->stats.send_errors++;
		return -ENOMEM;
	}
	cf->peer = p;
	cf->len = size;
	n = frame_encode(t->cluster_id, t->self, m, (uint8_t *)cf->align, size);
	assert(n == (long)size);
	(void)n;
	atomic_fetch_add(&p->queued_bytes, size);
	if (zmq_msg_init_data(&zm, cf->align, size, free_counted, cf) != 0) {
		free_counted(cf->align, cf);
		t->stats.send_errors++;
		return -ENOMEM;
	}
	return send_msg(t, p, &zm);
}

/* ZeroMQ's free callback for a delayed frame sent without a copy. */
static void free_frame(void *data, void *hint)
{
	(void)data;
	free(hint);
}

long transport_next_timer_ms(const struct transport *t, uint64_t now)
{
	return t->faults == NULL ? -1 : netfault_next_ms(t->faults, now);
}

void transport_run_timers(struct transport *t, uint64_t now)
{
	struct netfault_frame *fr;

	while (t->faults != NULL &&
	    (fr = netfault_pop_due(t->faults, now)) != NULL) {
		struct transport_peer *p = transport__peer(t, fr->peer);
		zmq_msg_t zm;

		if (p == NULL || netfault_blocked(t->faults, fr->peer)) {
			t->stats.fault_dropped++;
			free(fr);
			continue;
		}
		/* Zero-copy: ZeroMQ frees @fr once the frame is sent. */
		if (zmq_msg_init_data(&zm, fr->data, fr->len, free_frame, fr) !=
		    0) {
			t->stats.send_errors++;
			free(fr);
			continue;
		}
		(void)send_msg(t, p, &zm);
	}
}

int transport_set_fault(struct transport *t, raft_id peer, unsigned drop_pct,
    unsigned delay_ms, bool blocked)
{
	int rv;

	if (t->faults == NULL)
		return -EPERM;
	rv = netfault_set(t->faults, peer, drop_pct, delay_ms, blocked);
	if (rv == 0)
		log_info("transport: fault for member %" PRIu64 ": drop %u%%, "
		         "delay %u ms%s",
		    peer, drop_pct, delay_ms, blocked ? ", BLOCKED" : "");
	return rv;
}

/* ------------------------------------------------------------------------
 * Introspection
 * ------------------------------------------------------------------------ */

void *transport_socket(struct transport *t)
{
	return t->router;
}

const char *transport_endpoint(const struct transport *t)
{
	return t->endpoint;
}

bool transport_peer_reachable(const struct transport *t, raft_id peer)
{
	const struct transport_peer *p = transport__peer(t, peer);

	return p != NULL && p->reachable;
}

void transport_stats(const struct transport *t, struct transport_stats *st)
{
	*st = t->stats;
	st->auth_admitted = auth_admitted(t->auth);
	st->auth_denied = auth_denied(t->auth);
}
