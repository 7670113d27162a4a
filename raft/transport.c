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
 * Receiving validates before anything is handed out (frame_decode(), then,
 * with CURVE, the ZAP user id against the header's sender).  A rejected
 * frame costs a counter and at most one log line per reason per second.
 *
 * Fault injection lives here because this is where a real member's
 * messages leave and arrive: blocked peers, random drops and delays are
 * applied on send (blocked also on receive).  The fault table is the only
 * state shared with other threads (fault_mu); the send path looks at it
 * only if fault injection was enabled at creation.  Delayed frames sit,
 * encoded, in a min-heap ordered by due time (then by sequence, so equal
 * delays keep their order), bounded in count and bytes.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "auth.h"
#include "logging.h"
#include "transport.h"

#define RECV_SKIP_MAX 256      /* rejected frames skipped per transport_recv */
#define LOG_EVERY_MS 1000      /* one line per reason (or peer) per second */
#define ZAP_DOMAIN "raftkv"
#define Z85_KEY_LEN 40

enum reason {
	R_MALFORMED,
	R_VERSION,
	R_CLUSTER,
	R_SENDER,
	R_FORGED,
	R_MISROUTED,
	R_AUTH,
	R_COUNT
};

struct ratelimit {
	uint64_t last_ms;
	uint64_t unlogged;
};

struct peer {
	raft_id id;
	void *sock;               /* DEALER connected to the peer's ROUTER */
	char user_id[24];         /* decimal id: what ZAP names its key */
	bool reachable;
	struct ratelimit log;
	/* Fault injection, guarded by transport.fault_mu. */
	unsigned drop_pct;
	unsigned delay_ms;
	bool blocked;
};

/* A frame held back by a fault-injected delay. */
struct delayed {
	uint64_t due_ms;
	uint64_t seq;
	struct peer *peer;
	size_t len;
	uint8_t data[];
};

struct transport {
	void *ctx;
	void *router;
	struct auth *auth;
	bool curve;
	uint64_t cluster_id;
	raft_id self;
	uint32_t n_peers;
	struct peer peers[RAFT_MAX_MEMBERS];
	raft_id ids[RAFT_MAX_MEMBERS];  /* every member, for the filter */
	struct frame_filter filter;
	char endpoint[256];

	zmq_msg_t held;                 /* the frame lent by transport_recv */
	bool holding;

	struct transport_stats stats;
	struct ratelimit reject_log[R_COUNT];

	bool fault_injection;
	pthread_mutex_t fault_mu;
	uint64_t rng;
	struct delayed **heap;
	uint32_t n_delayed;
	uint32_t max_delayed;
	uint64_t delayed_bytes;
	uint64_t max_delayed_bytes;
	uint64_t delayed_seq;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* True (and the ratelimit advanced) if a line may be logged now. */
static bool may_log(struct ratelimit *rl, uint64_t *unlogged)
{
	uint64_t now = now_ms();

	if (rl->last_ms != 0 && now - rl->last_ms < LOG_EVERY_MS) {
		rl->unlogged++;
		return false;
	}
	*unlogged = rl->unlogged;
	rl->last_ms = now;
	rl->unlogged = 0;
	return true;
}

static struct peer *find_peer(const struct transport *t, raft_id id)
{
	for (uint32_t i = 0; i < t->n_peers; i++)
		if (t->peers[i].id == id)
			return (struct peer *)&t->peers[i];
	return NULL;
}

void transport_config_defaults(struct transport_config *c)
{
	memset(c, 0, sizeof(*c));
	c->send_hwm = 1000;
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
	if (!self_found || c->send_hwm <= 0 || c->recv_hwm <= 0)
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
		if (*curve && !decode_key(pub, TRANSPORT_KEY_Z85_LEN,
		    k->members[i]))
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
	rv = rv ? rv : set_int(s, ZMQ_HEARTBEAT_TIMEOUT,
	    c->heartbeat_timeout_ms);
	rv = rv ? rv : set_int(s, ZMQ_HEARTBEAT_TTL, c->heartbeat_timeout_ms);
	rv = rv ? rv : set_int(s, ZMQ_HANDSHAKE_IVL, c->handshake_ivl_ms);
	rv = rv ? rv : set_bytes(s, ZMQ_MAXMSGSIZE, &max_size,
	    sizeof(max_size));
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
		rv = rv ? rv : set_bytes(t->router, ZMQ_CURVE_SECRETKEY,
		    k->secret, AUTH_KEY_SIZE);
		rv = rv ? rv : set_bytes(t->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN,
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
	if (zmq_getsockopt(t->router, ZMQ_LAST_ENDPOINT, t->endpoint,
	    &len) != 0)
		snprintf(t->endpoint, sizeof(t->endpoint), "%s", endpoint);
	return 0;
}

static int open_dealer(struct transport *t, struct peer *p,
    const struct transport_config *c, const struct keys *k,
    uint32_t member_index)
{
	const char *endpoint = c->members[member_index].endpoint;
	int rv;

	p->sock = zmq_socket(t->ctx, ZMQ_DEALER);
	if (p->sock == NULL)
		return -zmq_errno();
	rv = set_common(p->sock, c);
	rv = rv ? rv : set_int(p->sock, ZMQ_IMMEDIATE, 1);
	rv = rv ? rv : set_int(p->sock, ZMQ_SNDHWM, c->send_hwm);
	rv = rv ? rv : set_int(p->sock, ZMQ_RCVHWM, 1);
	rv = rv ? rv : set_int(p->sock, ZMQ_RECONNECT_IVL, c->reconnect_ivl_ms);
	rv = rv ? rv : set_int(p->sock, ZMQ_RECONNECT_IVL_MAX,
	    c->reconnect_ivl_max_ms);
	rv = rv ? rv : set_int(p->sock, ZMQ_CONNECT_TIMEOUT,
	    c->heartbeat_timeout_ms);
	if (t->curve) {
		rv = rv ? rv : set_bytes(p->sock, ZMQ_CURVE_SERVERKEY,
		    k->members[member_index], AUTH_KEY_SIZE);
		rv = rv ? rv : set_bytes(p->sock, ZMQ_CURVE_PUBLICKEY,
		    k->public, AUTH_KEY_SIZE);
		rv = rv ? rv : set_bytes(p->sock, ZMQ_CURVE_SECRETKEY,
		    k->secret, AUTH_KEY_SIZE);
	}
	if (rv != 0)
		return rv;
	if (zmq_connect(p->sock, endpoint) != 0) {
		rv = -zmq_errno();
		log_warnx("transport: cannot connect to member %" PRIu64
		    " at %s: %s", p->id, endpoint, zmq_strerror(-rv));
		return rv;
	}
	return 0;
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
		if (c->members[i].id == c->self)
			continue;
		rv = open_dealer(t, &t->peers[j++], c, k, i);
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
	for (uint32_t i = 0; i < cfg->n_members; i++) {
		raft_id id = cfg->members[i].id;
		struct peer *p;

		t->ids[i] = id;
		if (id == cfg->self)
			continue;
		p = &t->peers[t->n_peers++];
		p->id = id;
		p->reachable = true;
		snprintf(p->user_id, sizeof(p->user_id), "%" PRIu64, id);
	}
	t->filter = (struct frame_filter){ .cluster_id = cfg->cluster_id,
		.self = cfg->self, .n_members = cfg->n_members,
		.members = t->ids };
	pthread_mutex_init(&t->fault_mu, NULL);
	t->fault_injection = cfg->fault_injection;
	if (t->fault_injection) {
		t->rng = cfg->fault_seed ? cfg->fault_seed :
		    now_ms() ^ ((uint64_t)(uintptr_t)t << 16);
		t->rng |= 1; /* xorshift must not start at 0 */
		t->max_delayed = cfg->max_delayed;
		t->max_delayed_bytes = cfg->max_delayed_bytes;
		t->heap = calloc(cfg->max_delayed, sizeof(*t->heap));
		if (t->heap == NULL) {
			rv = -ENOMEM;
			goto fail;
		}
	}
	rv = setup(t, cfg, &k);
	if (rv != 0)
		goto fail;
	log_info("transport: member %" PRIu64 " listening on %s (%s), %u peers",
	    t->self, t->endpoint, t->curve ? "CURVE, members only" :
	    "plaintext, unauthenticated", t->n_peers);
	if (t->fault_injection)
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
		if (t->peers[i].sock != NULL)
			zmq_close(t->peers[i].sock);
	if (t->router != NULL)
		zmq_close(t->router);
	if (t->ctx != NULL) {
		zmq_ctx_shutdown(t->ctx); /* wakes the ZAP thread */
		auth_free(t->auth);
		zmq_ctx_term(t->ctx);
	}
	for (uint32_t i = 0; i < t->n_delayed; i++)
		free(t->heap[i]);
	free(t->heap);
	pthread_mutex_destroy(&t->fault_mu);
	free(t);
}

/* ------------------------------------------------------------------------
 * Sending
 * ------------------------------------------------------------------------ */

static void note_reachable(struct peer *p, bool reachable)
{
	uint64_t unlogged;

	p->reachable = reachable;
	if (!may_log(&p->log, &unlogged))
		return;
	if (reachable)
		log_info("transport: member %" PRIu64 " reachable", p->id);
	else
		log_info("transport: member %" PRIu64 " unreachable: dropping "
		    "its messages until it reconnects", p->id);
}

/* Hand @zm to ZeroMQ for @p without blocking.  Consumes @zm. */
static int send_msg(struct transport *t, struct peer *p, zmq_msg_t *zm)
{
	int err;

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
		return -EAGAIN;
	}
	t->stats.send_errors++;
	return -err;
}

static uint64_t next_random(struct transport *t)
{
	/* xorshift64: plenty for test drops, and replayable from a seed. */
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

static bool heap_before(const struct delayed *a, const struct delayed *b)
{
	return a->due_ms < b->due_ms ||
	    (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_push(struct transport *t, struct delayed *d)
{
	uint32_t i = t->n_delayed++;

	while (i > 0 && heap_before(d, t->heap[(i - 1) / 2])) {
		t->heap[i] = t->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	t->heap[i] = d;
}

static struct delayed *heap_pop(struct transport *t)
{
	struct delayed *top = t->heap[0], *last = t->heap[--t->n_delayed];
	uint32_t i = 0, n = t->n_delayed;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && heap_before(t->heap[c + 1], t->heap[c]))
			c++;
		if (!heap_before(t->heap[c], last))
			break;
		t->heap[i] = t->heap[c];
		i = c;
	}
	if (n > 0)
		t->heap[i] = last;
	return top;
}

/* Encode @m into a delayed frame due in @delay_ms.  Returns 0 (queued or,
 * when the queue is full or memory short, dropped and counted). */
static int delay_frame(struct transport *t, struct peer *p,
    const struct raft_msg *m, size_t size, unsigned delay_ms)
{
	struct delayed *d;

	if (t->n_delayed >= t->max_delayed ||
	    t->delayed_bytes + size > t->max_delayed_bytes ||
	    (d = malloc(sizeof(*d) + size)) == NULL) {
		t->stats.fault_dropped++;
		return 0;
	}
	d->due_ms = now_ms() + delay_ms;
	d->seq = t->delayed_seq++;
	d->peer = p;
	d->len = size;
	(void)frame_encode(t->cluster_id, t->self, m, d->data, size);
	t->delayed_bytes += size;
	heap_push(t, d);
	t->stats.fault_delayed++;
	return 0;
}

/* Apply @p's faults to @m.  Returns 1 to send it now, 0 if dropped or
 * delayed. */
static int apply_fault(struct transport *t, struct peer *p,
    const struct raft_msg *m, size_t size)
{
	unsigned drop_pct, delay_ms;
	bool blocked;

	pthread_mutex_lock(&t->fault_mu);
	drop_pct = p->drop_pct;
	delay_ms = p->delay_ms;
	blocked = p->blocked;
	pthread_mutex_unlock(&t->fault_mu);
	if (blocked || (drop_pct > 0 && next_random(t) % 100 < drop_pct)) {
		t->stats.fault_dropped++;
		return 0;
	}
	if (delay_ms > 0)
		return delay_frame(t, p, m, size, delay_ms);
	return 1;
}

int transport_send(struct transport *t, const struct raft_msg *m)
{
	struct peer *p = find_peer(t, m->to);
	size_t size = frame_encoded_size(m);
	zmq_msg_t zm;
	long n;

	if (p == NULL || m->from != t->self || size == 0) {
		t->stats.send_errors++;
		return -EINVAL;
	}
	if (t->fault_injection && apply_fault(t, p, m, size) == 0)
		return 0;
	/* Encode straight into the ZeroMQ message: no copy, and no buffer
	 * of ours that a 64 MiB snapshot chunk would leave oversized. */
	if (zmq_msg_init_size(&zm, size) != 0) {
		t->stats.send_errors++;
		return -ENOMEM;
	}
	n = frame_encode(t->cluster_id, t->self, m, zmq_msg_data(&zm), size);
	assert(n == (long)size);
	(void)n;
	return send_msg(t, p, &zm);
}

static void free_delayed(void *data, void *hint)
{
	(void)data;
	free(hint);
}

long transport_next_timer_ms(const struct transport *t, uint64_t now)
{
	if (t->n_delayed == 0)
		return -1;
	return t->heap[0]->due_ms <= now ? 0 : (long)(t->heap[0]->due_ms - now);
}

void transport_run_timers(struct transport *t, uint64_t now)
{
	while (t->n_delayed > 0 && t->heap[0]->due_ms <= now) {
		struct delayed *d = heap_pop(t);
		struct peer *p = d->peer;
		zmq_msg_t zm;
		bool blocked;

		t->delayed_bytes -= d->len;
		pthread_mutex_lock(&t->fault_mu);
		blocked = p->blocked;
		pthread_mutex_unlock(&t->fault_mu);
		if (blocked) {
			t->stats.fault_dropped++;
			free(d);
			continue;
		}
		/* Zero-copy: ZeroMQ frees @d once the frame is sent. */
		if (zmq_msg_init_data(&zm, d->data, d->len, free_delayed,
		    d) != 0) {
			t->stats.send_errors++;
			free(d);
			continue;
		}
		(void)send_msg(t, p, &zm);
	}
}

int transport_set_fault(struct transport *t, raft_id peer, unsigned drop_pct,
    unsigned delay_ms, bool blocked)
{
	struct peer *p;

	if (!t->fault_injection)
		return -EPERM;
	p = find_peer(t, peer);
	if (p == NULL || drop_pct > 100)
		return -EINVAL;
	pthread_mutex_lock(&t->fault_mu);
	p->drop_pct = drop_pct;
	p->delay_ms = delay_ms;
	p->blocked = blocked;
	pthread_mutex_unlock(&t->fault_mu);
	log_info("transport: fault for member %" PRIu64 ": drop %u%%, delay "
	    "%u ms%s", peer, drop_pct, delay_ms, blocked ? ", BLOCKED" : "");
	return 0;
}

/* ------------------------------------------------------------------------
 * Receiving
 * ------------------------------------------------------------------------ */

static uint64_t *reason_counter(struct transport *t, int err, int *idx)
{
	switch (err) {
	case FRAME_EVERSION:
		*idx = R_VERSION;
		return &t->stats.rejected_version;
	case FRAME_ECLUSTER:
		*idx = R_CLUSTER;
		return &t->stats.rejected_cluster;
	case FRAME_ESENDER:
		*idx = R_SENDER;
		return &t->stats.rejected_sender;
	case FRAME_EFORGED:
		*idx = R_FORGED;
		return &t->stats.rejected_forged;
	case FRAME_EMISROUTED:
		*idx = R_MISROUTED;
		return &t->stats.rejected_misrouted;
	case FRAME_EAUTH:
		*idx = R_AUTH;
		return &t->stats.rejected_auth;
	}
	*idx = R_MALFORMED;
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
	if (!may_log(&t->reject_log[idx], &unlogged))
		return;
	snprintf(more, sizeof(more), "; %" PRIu64 " more not logged", unlogged);
	log_warnx("transport: frame rejected: %s (from %s%s%s, sender %" PRIu64
	    ", cluster %#" PRIx64 ", version %u, %zu bytes)%s",
	    frame_strerror(err), addr != NULL ? addr : "?",
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
	struct peer *p = find_peer(t, sender);

	if (user == NULL || p == NULL || strcmp(user, p->user_id) != 0)
		return FRAME_EAUTH;
	return 0;
}

static bool blocked_from(struct transport *t, raft_id sender)
{
	struct peer *p = find_peer(t, sender);
	bool blocked;

	pthread_mutex_lock(&t->fault_mu);
	blocked = p != NULL && p->blocked;
	pthread_mutex_unlock(&t->fault_mu);
	return blocked;
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
	if (rv == 0 && t->fault_injection && blocked_from(t, h.sender)) {
		msg_release(m);
		t->stats.fault_dropped++;
		rv = 1; /* dropped on purpose, not a rejection */
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
	const struct peer *p = find_peer(t, peer);

	return p != NULL && p->reachable;
}

void transport_stats(const struct transport *t, struct transport_stats *st)
{
	*st = t->stats;
	st->auth_admitted = auth_admitted(t->auth);
	st->auth_denied = auth_denied(t->auth);
}
