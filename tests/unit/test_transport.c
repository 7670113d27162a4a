/*
 * test_transport.c - the ZeroMQ transport between real sockets on
 * 127.0.0.1 (raft/net/transport.c, raft/net/auth.c).
 *
 * Two or three transports live in this one process, each with its own
 * ZeroMQ context, on ports the kernel picked.  Nothing here asserts how
 * long anything takes: delivery is awaited by polling with a generous
 * deadline (DELIVERY_MS), and absence is checked after a positive event
 * proves the path was exercised (a later valid frame on the same
 * connection arrived, or the ZAP handler counted the refusal).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zmq.h>

#include <cmocka.h>

#include "raft/util/logging.h"
#include "raft/net/transport.h"

/* ------------------------------------------------------------------------
 * Fixture
 * ------------------------------------------------------------------------ */

#define CLUSTER 0xC0FFEE0012345678ull
#define DELIVERY_MS 15000 /* generous: sanitizer builds on busy machines */
#define MAX_N 3

struct keypair {
	char pub[TRANSPORT_KEY_Z85_LEN];
	char sec[TRANSPORT_KEY_Z85_LEN];
};

struct fixture {
	void *ctx; /* for raw test sockets */
	uint32_t n;
	char endpoints[MAX_N][256];
	struct keypair keys[MAX_N];
	struct transport *t[MAX_N]; /* t[i] is member i + 1 */
	void *raw[4]; /* test sockets, closed by teardown */
	int n_raw;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * An endpoint on a port nobody listens on right now.  A plain socket, not
 * ZeroMQ: zmq_close() releases the port later, on ZeroMQ's I/O thread.
 */
static void free_endpoint(char *buf, size_t cap)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	snprintf(buf, cap, "tcp://127.0.0.1:%u", ntohs(sin.sin_port));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ctx = zmq_ctx_new();
	assert_non_null(f->ctx);
	f->n = MAX_N;
	for (uint32_t i = 0; i < MAX_N; i++) {
		free_endpoint(f->endpoints[i], sizeof(f->endpoints[i]));
		assert_int_equal(zmq_curve_keypair(f->keys[i].pub,
		                     f->keys[i].sec),
		    0);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (uint32_t i = 0; i < MAX_N; i++)
		transport_free(f->t[i]);
	for (int i = 0; i < f->n_raw; i++)
		zmq_close(f->raw[i]);
	zmq_ctx_term(f->ctx);
	free(f);
	return 0;
}

/* The configuration of member @self among the first @n of @f. */
static void config(struct fixture *f, struct transport_config *c, raft_id self,
    uint32_t n, bool curve, bool faults)
{
	transport_config_defaults(c);
	c->cluster_id = CLUSTER;
	c->self = self;
	c->n_members = n;
	for (uint32_t i = 0; i < n; i++) {
		c->members[i].id = i + 1;
		strcpy(c->members[i].endpoint, f->endpoints[i]);
		if (curve)
			strcpy(c->members[i].curve_public, f->keys[i].pub);
	}
	if (curve)
		strcpy(c->curve_secret, f->keys[self - 1].sec);
	c->fault_injection = faults;
	c->fault_seed = 12345;
}

static void start(struct fixture *f, raft_id self, uint32_t n, bool curve,
    bool faults)
{
	struct transport_config c;

	config(f, &c, self, n, curve, faults);
	assert_int_equal(transport_new(&c, &f->t[self - 1]), 0);
}

static void start_all(struct fixture *f, uint32_t n, bool curve, bool faults)
{
	for (raft_id id = 1; id <= n; id++)
		start(f, id, n, curve, faults);
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static struct raft_msg heartbeat(raft_id from, raft_id to, uint64_t ctx)
{
	return (struct raft_msg){ .type = RAFT_MSG_HEARTBEAT,
		.from = from,
		.to = to,
		.term = 5,
		.commit = 4,
		.ctx = ctx };
}

/* Wait up to @ms for a message on @t.  Returns 1 (in @m: call
 * transport_recv_done) or 0. */
static int recv_wait(struct transport *t, struct raft_msg *m, uint64_t ms)
{
	uint64_t deadline = now_ms() + ms;

	do {
		zmq_pollitem_t it = { .socket = transport_socket(t),
			.events = ZMQ_POLLIN };
		int rv = transport_recv(t, m);

		assert_true(rv >= 0);
		if (rv == 1)
			return 1;
		zmq_poll(&it, 1, 10);
	} while (now_ms() < deadline);
	return 0;
}

/* Nothing waiting at @t right now (after draining what is queued). */
static void assert_nothing_received(struct transport *t)
{
	struct raft_msg m;

	assert_int_equal(recv_wait(t, &m, 50), 0);
}

/*
 * Send a heartbeat with ctx @ctx from @a to @b until @b gets it.
 * Connections come up in the background: until then sends are refused
 * (-EAGAIN) and are retried every 10 ms; a send accepted on a connection
 * that turns out to be dead (a peer that just restarted) is retried after
 * a second.  Other messages reaching @b meanwhile (stragglers of an
 * earlier phase) are discarded, and so are extra copies of this one.
 */
static void send_until_received(struct transport *a, raft_id from,
    struct transport *b, raft_id to, uint64_t ctx)
{
	uint64_t deadline = now_ms() + DELIVERY_MS, resend = 0;
	struct raft_msg hb = heartbeat(from, to, ctx), m;
	bool got = false;

	while (!got && now_ms() < deadline) {
		if (now_ms() >= resend) {
			int rv = transport_send(a, &hb);

			assert_true(rv == 0 || rv == -EAGAIN);
			resend = now_ms() + (rv == 0 ? 1000 : 10);
		}
		if (recv_wait(b, &m, 10)) {
			got = m.from == from && m.ctx == ctx;
			transport_recv_done(b, &m);
		}
	}
	if (!got)
		fail_msg("no message from %lu reached %lu", (unsigned long)from,
		    (unsigned long)to);
	while (recv_wait(b, &m, 100)) {
		assert_true(m.from != from || m.ctx == ctx);
		transport_recv_done(b, &m);
	}
}

static uint8_t entry_data[3][200];
static uint8_t chunk_data[1000];
static struct raft_entry sample_entries[3];

/* A message of @type with every field it can carry set to something. */
static struct raft_msg sample(uint8_t type, raft_id from, raft_id to)
{
	struct raft_msg m = { .type = type,
		.from = from,
		.to = to,
		.term = 100 + type,
		.index = 200 + type,
		.log_term = 99,
		.commit = 150,
		.reject = type % 2 == 0,
		.hint_index = 77,
		.hint_term = 66,
		.ctx = 1000 + type };

	for (int i = 0; i < 3; i++) {
		for (size_t j = 0; j < sizeof(entry_data[i]); j++)
			entry_data[i][j] = (uint8_t)(i * 31 + j);
		sample_entries[i] = (struct raft_entry){ .term = 99,
			.index = 201 + type + i,
			.type = RAFT_ENTRY_NORMAL,
			.len = (uint32_t)sizeof(entry_data[i]),
			.data = entry_data[i] };
	}
	sample_entries[1].type = RAFT_ENTRY_NOOP;
	sample_entries[1].len = 0;
	sample_entries[1].data = NULL;
	for (size_t j = 0; j < sizeof(chunk_data); j++)
		chunk_data[j] = (uint8_t)(j * 7);
	if (type == RAFT_MSG_APPEND) {
		m.n_entries = 3;
		m.entries = sample_entries;
	}
	if (type == RAFT_MSG_SNAPSHOT || type == RAFT_MSG_SNAPSHOT_RESP) {
		m.snap = (struct raft_snapshot_meta){ .index = 180,
			.term = 90,
			.n_voters = 3,
			.voters = { 1, 2, 3 } };
		m.offset = 4096;
		m.total = 100000;
		m.done = type == RAFT_MSG_SNAPSHOT;
	}
	if (type == RAFT_MSG_SNAPSHOT) {
		m.chunk = chunk_data;
		m.chunk_len = sizeof(chunk_data);
	}
	return m;
}

static void assert_msg_equal(const struct raft_msg *a, const struct raft_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_true(a->from == b->from && a->to == b->to);
	assert_true(a->term == b->term && a->index == b->index);
	assert_true(a->log_term == b->log_term && a->commit == b->commit);
	assert_int_equal(a->reject, b->reject);
	assert_true(a->hint_index == b->hint_index);
	assert_true(a->hint_term == b->hint_term && a->ctx == b->ctx);
	assert_int_equal(a->n_entries, b->n_entries);
	for (uint32_t i = 0; i < a->n_entries; i++) {
		assert_true(a->entries[i].term == b->entries[i].term);
		assert_true(a->entries[i].index == b->entries[i].index);
		assert_int_equal(a->entries[i].type, b->entries[i].type);
		assert_int_equal(a->entries[i].len, b->entries[i].len);
		if (a->entries[i].len)
			assert_memory_equal(a->entries[i].data,
			    b->entries[i].data, a->entries[i].len);
	}
	assert_memory_equal(&a->snap, &b->snap, sizeof(a->snap));
	assert_true(a->offset == b->offset && a->total == b->total);
	assert_int_equal(a->chunk_len, b->chunk_len);
	if (a->chunk_len)
		assert_memory_equal(a->chunk, b->chunk, a->chunk_len);
	assert_int_equal(a->done, b->done);
}

static struct transport_stats stats(struct transport *t)
{
	struct transport_stats st;

	transport_stats(t, &st);
	return st;
}

/* A raw DEALER of the test's own, connected to @endpoint; a CURVE client
 * with @client's keys talking to @server_pub when @client is not NULL. */
static void *raw_dealer(struct fixture *f, const char *endpoint,
    const struct keypair *client, const char *server_pub)
{
	void *s = zmq_socket(f->ctx, ZMQ_DEALER);
	int linger = 0;

	assert_non_null(s);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	if (client != NULL) {
		assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY,
		                     server_pub, 41),
		    0);
		assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY,
		                     client->pub, 41),
		    0);
		assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY,
		                     client->sec, 41),
		    0);
	}
	assert_int_equal(zmq_connect(s, endpoint), 0);
	f->raw[f->n_raw++] = s;
	return s;
}

/* Send the frame of @m with header @cluster / @sender on raw socket @s,
 * then overwrite byte @patch_at with @patch_val (if @patch_at >= 0). */
static void raw_send(void *s, uint64_t cluster, raft_id sender,
    const struct raft_msg *m, int patch_at, uint8_t patch_val)
{
	uint8_t buf[4096];
	long n = frame_encode(cluster, sender, m, buf, sizeof(buf));

	assert_true(n > 0);
	if (patch_at >= 0)
		buf[patch_at] = patch_val;
	assert_int_equal(zmq_send(s, buf, (size_t)n, 0), (int)n);
}

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *fp = fopen("/proc/self/statm", "r");

	if (fp == NULL)
		return -1;
	if (fscanf(fp, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(fp);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ------------------------------------------------------------------------
 * Tests: configuration and the local send contract
 * ------------------------------------------------------------------------ */

static void test_transport_rejects_bad_config(void **state)
{
	struct fixture *f = *state;
	struct transport_config c;
	struct transport *t = NULL;

	config(f, &c, 1, 2, false, false);
	c.cluster_id = 0;
	assert_int_equal(transport_new(&c, &t), -EINVAL);
	config(f, &c, 3, 2, false, false); /* self not a member */
	assert_int_equal(transport_new(&c, &t), -EINVAL);
	config(f, &c, 1, 2, false, false);
	c.members[1].id = 1; /* repeated id */
	assert_int_equal(transport_new(&c, &t), -EINVAL);
	config(f, &c, 1, 2, false, false);
	c.members[1].endpoint[0] = '\0';
	assert_int_equal(transport_new(&c, &t), -EINVAL);
	config(f, &c, 1, 2, false, false);
	strcpy(c.members[1].curve_public, f->keys[1].pub); /* keys, no secret */
	assert_int_equal(transport_new(&c, &t), -EINVAL);
	config(f, &c, 1, 2, true, false);
	strcpy(c.curve_secret, f->keys[1].sec); /* someone else's secret */
	assert_int_equal(transport_new(&c, &t), -EINVAL);
	config(f, &c, 1, 2, true, false);
	c.members[1].curve_public[5] = '\0'; /* truncated key */
	assert_int_equal(transport_new(&c, &t), -EINVAL);
	config(f, &c, 1, 2, false, false);
	strcpy(c.members[0].endpoint, "nonsense://x");
	assert_true(transport_new(&c, &t) < 0);
	assert_null(t);
}

static void test_transport_bind_conflict(void **state)
{
	struct fixture *f = *state;
	struct transport_config c;
	struct transport *t = NULL;

	start(f, 1, 2, false, false);
	config(f, &c, 1, 2, false, false);
	assert_int_equal(transport_new(&c, &t), -EADDRINUSE);
}

static void test_transport_send_refuses_bad_messages(void **state)
{
	struct fixture *f = *state;
	struct raft_msg m = heartbeat(1, 2, 0);

	start(f, 1, 2, false, false);
	m.to = 1; /* self */
	assert_int_equal(transport_send(f->t[0], &m), -EINVAL);
	m.to = 7; /* not a member */
	assert_int_equal(transport_send(f->t[0], &m), -EINVAL);
	m = heartbeat(2, 2, 0); /* not from self */
	assert_int_equal(transport_send(f->t[0], &m), -EINVAL);
	m = heartbeat(1, 2, 0);
	m.type = 0;
	assert_int_equal(transport_send(f->t[0], &m), -EINVAL);
	assert_int_equal(stats(f->t[0]).send_errors, 4);
	assert_int_equal(stats(f->t[0]).sent, 0);
}

static void test_transport_wildcard_port(void **state)
{
	struct fixture *f = *state;
	struct transport_config c;
	const char *ep;

	config(f, &c, 1, 2, false, false);
	strcpy(c.members[0].endpoint, "tcp://127.0.0.1:*");
	assert_int_equal(transport_new(&c, &f->t[0]), 0);
	ep = transport_endpoint(f->t[0]);
	assert_true(strncmp(ep, "tcp://127.0.0.1:", 16) == 0);
	assert_true(atoi(ep + 16) > 0);
}

/* ------------------------------------------------------------------------
 * Tests: delivery
 * ------------------------------------------------------------------------ */

static void test_transport_round_trip_every_type(void **state)
{
	struct fixture *f = *state;

	start_all(f, 2, false, false);
	send_until_received(f->t[0], 1, f->t[1], 2, 1);
	send_until_received(f->t[1], 2, f->t[0], 1, 2);
	for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
		for (int dir = 0; dir < 2; dir++) {
			raft_id from = dir ? 2 : 1, to = dir ? 1 : 2;
			struct raft_msg in = sample(type, from, to), out;

			assert_int_equal(transport_send(f->t[from - 1], &in),
			    0);
			assert_int_equal(recv_wait(f->t[to - 1], &out,
			                     DELIVERY_MS),
			    1);
			assert_msg_equal(&in, &out);
			transport_recv_done(f->t[to - 1], &out);
			assert_null(out.entries);
		}
	}
	assert_true(transport_peer_reachable(f->t[0], 2));
	assert_int_equal(stats(f->t[1]).rejected, 0);
}

/* A member whose endpoint libzmq refuses (EINVAL) is skipped and
 * logged, at creation and when the members change: the others still
 * talk. */
static void test_transport_bad_peer_endpoint_not_fatal(void **state)
{
	struct fixture *f = *state;
	struct transport_config c;
	struct raft_msg m = heartbeat(1, 3, 1);

	start(f, 2, 2, false, false);
	config(f, &c, 1, 3, false, false);
	strcpy(c.members[2].endpoint, "tcp://-host:7001");
	assert_int_equal(transport_new(&c, &f->t[0]), 0);
	send_until_received(f->t[0], 1, f->t[1], 2, 12);
	send_until_received(f->t[1], 2, f->t[0], 1, 21);
	strcpy(c.members[2].endpoint, "tcp://...:5");
	assert_int_equal(transport_set_members(f->t[0], c.members, 3), 0);
	send_until_received(f->t[0], 1, f->t[1], 2, 13);
	assert_int_equal(transport_send(f->t[0], &m), -EAGAIN);
}

static void test_transport_three_members_all_pairs(void **state)
{
	struct fixture *f = *state;

	start_all(f, 3, false, false);
	for (raft_id a = 1; a <= 3; a++)
		for (raft_id b = 1; b <= 3; b++)
			if (a != b)
				send_until_received(f->t[a - 1], a, f->t[b - 1],
				    b, a * 10 + b);
	/* Pipelined: a burst arrives whole and in order. */
	for (uint64_t i = 1; i <= 500; i++) {
		struct raft_msg m = sample(RAFT_MSG_APPEND, 1, 3);

		m.ctx = i;
		assert_int_equal(transport_send(f->t[0], &m), 0);
	}
	for (uint64_t i = 1; i <= 500; i++) {
		struct raft_msg m;

		assert_int_equal(recv_wait(f->t[2], &m, DELIVERY_MS), 1);
		assert_true(m.from == 1 && m.ctx == i);
		assert_int_equal(m.n_entries, 3);
		transport_recv_done(f->t[2], &m);
	}
}

static void test_transport_dead_peer_drops_without_blocking(void **state)
{
	struct fixture *f = *state;
	struct raft_msg m = sample(RAFT_MSG_APPEND, 1, 2);
	long before, after;

	start(f, 1, 2, false, false); /* member 2 never comes up */
	before = rss_kib();
	for (int i = 0; i < 100000; i++)
		assert_int_equal(transport_send(f->t[0], &m), -EAGAIN);
	after = rss_kib();
	assert_int_equal(stats(f->t[0]).dropped, 100000);
	assert_int_equal(stats(f->t[0]).sent, 0);
	assert_false(transport_peer_reachable(f->t[0], 2));
#if !defined(__SANITIZE_ADDRESS__)
	/* 100k queued appends would be ~60 MiB; nothing is queued.  (ASan's
	 * quarantine of freed blocks makes RSS meaningless there.) */
	if (before > 0 && after > 0)
		assert_true(after - before < 16 * 1024);
#else
	(void)before;
	(void)after;
#endif
}

static void test_transport_slow_peer_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct transport_config c;
	void *sink = f->raw[f->n_raw++] = zmq_socket(f->ctx, ZMQ_ROUTER);
	int hwm = 10, linger = 0, rv = 0;
	static uint8_t big[64 * 1024];
	struct raft_entry e = { .term = 1,
		.index = 1,
		.type = RAFT_ENTRY_NORMAL,
		.len = sizeof(big),
		.data = big };
	struct raft_msg m = { .type = RAFT_MSG_APPEND,
		.from = 1,
		.to = 2,
		.term = 1,
		.n_entries = 1,
		.entries = &e };
	uint64_t deadline = now_ms() + DELIVERY_MS;
	long accepted = 0;

	/* Member 2 is a socket that connects but never reads. */
	assert_non_null(sink);
	zmq_setsockopt(sink, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sink, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_bind(sink, f->endpoints[1]), 0);
	config(f, &c, 1, 2, false, false);
	c.send_hwm = 10;
	assert_int_equal(transport_new(&c, &f->t[0]), 0);
	/* Wait for the connection: the first accepted send. */
	while (transport_send(f->t[0], &m) != 0)
		assert_true(now_ms() < deadline);
	/* Then the queue fills and sends are refused, never blocked. */
	for (int i = 0; i < 100000 && rv == 0; i++) {
		rv = transport_send(f->t[0], &m);
		accepted += rv == 0;
	}
	assert_int_equal(rv, -EAGAIN);
	/* At most the two HWMs plus what the kernel buffers: a bound, not
	 * growth (100000 accepted 64 KiB appends would be 6 GiB). */
	assert_true(accepted < 5000);
}

/*
 * The bound is in bytes too (issue 9): with a message high-water mark of
 * 1000, 1 MiB appends to a peer that does not read would queue a GiB
 * (999 were accepted before the byte bound); send_bytes_max (4 MiB here)
 * stops them at a few.
 */
static void test_transport_slow_peer_is_bounded_in_bytes(void **state)
{
	struct fixture *f = *state;
	struct transport_config c;
	void *sink = f->raw[f->n_raw++] = zmq_socket(f->ctx, ZMQ_ROUTER);
	int hwm = 2, linger = 0, rv = 0;
	static uint8_t big[1 << 20];
	struct raft_entry e = { .term = 1,
		.index = 1,
		.type = RAFT_ENTRY_NORMAL,
		.len = sizeof(big),
		.data = big };
	struct raft_msg m = { .type = RAFT_MSG_APPEND,
		.from = 1,
		.to = 2,
		.term = 1,
		.n_entries = 1,
		.entries = &e };
	uint64_t deadline = now_ms() + DELIVERY_MS;
	long accepted = 0;

	assert_non_null(sink);
	zmq_setsockopt(sink, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sink, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_bind(sink, f->endpoints[1]), 0);
	config(f, &c, 1, 2, false, false);
	c.send_bytes_max = 4u << 20; /* send_hwm stays 1000 */
	assert_int_equal(transport_new(&c, &f->t[0]), 0);
	while (transport_send(f->t[0], &m) != 0)
		assert_true(now_ms() < deadline);
	for (int i = 0; i < 2000 && rv == 0; i++) {
		rv = transport_send(f->t[0], &m);
		accepted += rv == 0;
	}
	print_message("      %ld 1 MiB appends accepted before -EAGAIN\n",
	    accepted);
	assert_int_equal(rv, -EAGAIN);
	/* 4 MiB queued, plus the kernel's socket buffers and the sink's two
	 * messages: tens of MiB at most, not the 1000 the HWM allows. */
	assert_true(accepted < 64);
}

static void test_transport_reconnects(void **state)
{
	struct fixture *f = *state;
	struct raft_msg hb = heartbeat(1, 2, 9);

	start(f, 1, 2, false, false);
	assert_int_equal(transport_send(f->t[0], &hb), -EAGAIN);
	assert_false(transport_peer_reachable(f->t[0], 2));
	/* Member 2 comes up late: member 1's DEALER finds it by itself. */
	start(f, 2, 2, false, false);
	send_until_received(f->t[0], 1, f->t[1], 2, 10);
	assert_true(transport_peer_reachable(f->t[0], 2));
	/* Member 2 restarts on the same endpoint. */
	transport_free(f->t[1]);
	f->t[1] = NULL;
	start(f, 2, 2, false, false);
	send_until_received(f->t[0], 1, f->t[1], 2, 11);
	send_until_received(f->t[1], 2, f->t[0], 1, 12);
}

/* ------------------------------------------------------------------------
 * Tests: validation of incoming frames
 * ------------------------------------------------------------------------ */

static void test_transport_rejects_foreign_frames(void **state)
{
	struct fixture *f = *state;
	struct raft_msg hb = heartbeat(1, 2, 0), m;
	struct transport_stats st;
	void *raw;
	uint8_t junk[64];

	start(f, 2, 3, false, false);
	raw = raw_dealer(f, f->endpoints[1], NULL, NULL);
	memset(junk, 0x5a, sizeof(junk));
	for (int i = 0; i < 300; i++) /* more than one recv call skips */
		assert_int_equal(zmq_send(raw, junk, sizeof(junk), 0), 64);
	assert_int_equal(zmq_send(raw, junk, 0, 0), 0); /* empty */
	raw_send(raw, CLUSTER, 1, &hb, 0, 'X'); /* magic */
	raw_send(raw, CLUSTER, 1, &hb, 4, FRAME_VERSION + 1); /* version */
	raw_send(raw, CLUSTER + 1, 1, &hb, -1, 0); /* cluster */
	hb.from = 9;
	raw_send(raw, CLUSTER, 9, &hb, -1, 0); /* stranger */
	hb.from = 3;
	raw_send(raw, CLUSTER, 1, &hb, -1, 0); /* forged */
	hb = heartbeat(1, 3, 0);
	raw_send(raw, CLUSTER, 1, &hb, -1, 0); /* misrouted */
	hb = heartbeat(1, 2, 0);
	assert_int_equal(zmq_send(raw, "x", 1, ZMQ_SNDMORE), 1); /* 2 parts */
	raw_send(raw, CLUSTER, 1, &hb, -1, 0);
	hb.ctx = 4242;
	raw_send(raw, CLUSTER, 1, &hb, -1, 0); /* valid */

	assert_int_equal(recv_wait(f->t[1], &m, DELIVERY_MS), 1);
	assert_true(m.ctx == 4242 && m.from == 1);
	transport_recv_done(f->t[1], &m);
	assert_nothing_received(f->t[1]);
	st = stats(f->t[1]);
	assert_int_equal(st.received, 1);
	assert_int_equal(st.rejected_malformed, 300 + 1 + 1 + 1);
	assert_int_equal(st.rejected_version, 1);
	assert_int_equal(st.rejected_cluster, 1);
	assert_int_equal(st.rejected_sender, 1);
	assert_int_equal(st.rejected_forged, 1);
	assert_int_equal(st.rejected_misrouted, 1);
	assert_int_equal(st.rejected_auth, 0);
	assert_int_equal(st.rejected, 300 + 3 + 5);
}

/* ------------------------------------------------------------------------
 * Tests: CURVE and the ZAP allowlist
 * ------------------------------------------------------------------------ */

static void test_transport_curve_members_talk(void **state)
{
	struct fixture *f = *state;

	if (!zmq_has("curve"))
		skip();
	start_all(f, 3, true, false);
	for (raft_id a = 1; a <= 3; a++)
		for (raft_id b = 1; b <= 3; b++)
			if (a != b)
				send_until_received(f->t[a - 1], a, f->t[b - 1],
				    b, a * 10 + b);
	for (int i = 0; i < 3; i++) {
		assert_true(stats(f->t[i]).auth_admitted >= 2);
		assert_int_equal(stats(f->t[i]).auth_denied, 0);
		assert_int_equal(stats(f->t[i]).rejected, 0);
	}
}

static void test_transport_curve_refuses_stranger(void **state)
{
	struct fixture *f = *state;
	struct transport_config c;
	struct transport *stranger;
	struct keypair kp;
	struct raft_msg hb = heartbeat(2, 1, 0), m;
	uint64_t deadline = now_ms() + DELIVERY_MS;

	if (!zmq_has("curve"))
		skip();
	start(f, 1, 2, true, false);
	/* Claims to be member 2, with a valid keypair that is not 2's. */
	assert_int_equal(zmq_curve_keypair(kp.pub, kp.sec), 0);
	config(f, &c, 2, 2, true, false);
	strcpy(c.members[1].curve_public, kp.pub);
	strcpy(c.curve_secret, kp.sec);
	assert_int_equal(transport_new(&c, &stranger), 0);
	while (stats(f->t[0]).auth_denied == 0) {
		assert_true(now_ms() < deadline);
		assert_int_equal(transport_send(stranger, &hb), -EAGAIN);
		assert_int_equal(recv_wait(f->t[0], &m, 10), 0);
	}
	assert_int_equal(transport_send(stranger, &hb), -EAGAIN);
	assert_nothing_received(f->t[0]);
	assert_int_equal(stats(f->t[0]).received, 0);
	assert_int_equal(stats(f->t[0]).auth_admitted, 0);
	transport_free(stranger);
}

static void test_transport_curve_refuses_plaintext_peer(void **state)
{
	struct fixture *f = *state;
	struct transport_config c;
	struct transport *plain;
	struct raft_msg hb = heartbeat(2, 1, 0), m;

	if (!zmq_has("curve"))
		skip();
	start(f, 1, 3, true, false);
	start(f, 3, 3, true, false);
	/* Member 2's id and endpoint, no keys at all. */
	config(f, &c, 2, 3, false, false);
	assert_int_equal(transport_new(&c, &plain), 0);
	/* Keep the plaintext peer trying while a real member gets through
	 * twice over (so the plaintext one has had every chance). */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 50; i++) {
			assert_int_equal(transport_send(plain, &hb), -EAGAIN);
			assert_int_equal(recv_wait(f->t[0], &m, 10), 0);
		}
		send_until_received(f->t[2], 3, f->t[0], 1, 30 + round);
	}
	assert_int_equal(transport_send(plain, &hb), -EAGAIN);
	assert_int_equal(stats(f->t[0]).received, 2);
	assert_int_equal(stats(f->t[0]).rejected, 0);
	transport_free(plain);
}

static void test_transport_curve_refuses_impersonation(void **state)
{
	struct fixture *f = *state;
	struct raft_msg hb = heartbeat(2, 1, 77), m;
	struct transport_stats st;
	void *raw;

	if (!zmq_has("curve"))
		skip();
	start(f, 1, 3, true, false);
	/* Member 3, with its own valid key, claims to be member 2. */
	raw = raw_dealer(f, f->endpoints[0], &f->keys[2], f->keys[0].pub);
	raw_send(raw, CLUSTER, 2, &hb, -1, 0);
	hb = heartbeat(3, 1, 78); /* then speaks for itself */
	raw_send(raw, CLUSTER, 3, &hb, -1, 0);
	assert_int_equal(recv_wait(f->t[0], &m, DELIVERY_MS), 1);
	assert_true(m.from == 3 && m.ctx == 78);
	transport_recv_done(f->t[0], &m);
	assert_nothing_received(f->t[0]);
	st = stats(f->t[0]);
	assert_int_equal(st.rejected_auth, 1);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.received, 1);
	assert_int_equal(st.auth_admitted, 1);
}

/* ------------------------------------------------------------------------
 * Tests: fault injection
 * ------------------------------------------------------------------------ */

/* Membership changes: member 3, unknown to 1 and 2 at first, is refused;
 * once added it talks both ways; once removed again its frames are
 * refused and nothing can be sent to it. */
static void test_transport_members_added_and_removed(void **state)
{
	struct fixture *f = *state;
	struct transport_config c3;
	struct raft_msg hb = heartbeat(3, 1, 0), m;
	uint64_t deadline = now_ms() + DELIVERY_MS;
	bool curve = zmq_has("curve");

	start(f, 1, 2, curve, false);
	start(f, 2, 2, curve, false);
	start(f, 3, 3, curve, false);
	/* Unknown to 1: with CURVE refused at the handshake, without it
	 * refused as a sender that is not a member. */
	while (curve ? stats(f->t[0]).auth_denied == 0
	             : stats(f->t[0]).rejected_sender == 0) {
		assert_true(now_ms() < deadline);
		(void)transport_send(f->t[2], &hb);
		assert_int_equal(recv_wait(f->t[0], &m, 10), 0);
	}
	/* 1 and 2 add 3. */
	config(f, &c3, 1, 3, curve, false);
	assert_int_equal(transport_set_members(f->t[0], c3.members, 3), 0);
	assert_int_equal(transport_set_members(f->t[1], c3.members, 3), 0);
	send_until_received(f->t[2], 3, f->t[0], 1, 31);
	send_until_received(f->t[0], 1, f->t[2], 3, 13);
	send_until_received(f->t[2], 3, f->t[1], 2, 32);
	send_until_received(f->t[1], 2, f->t[0], 1, 21);
	/* 1 removes 3 (leaving itself out of the list: it is kept). */
	assert_int_equal(transport_set_members(f->t[0], &c3.members[1], 1), 0);
	hb = heartbeat(1, 3, 0);
	assert_int_equal(transport_send(f->t[0], &hb), -EINVAL);
	send_until_received(f->t[1], 2, f->t[0], 1, 22);
	{
		uint64_t before = stats(f->t[0]).rejected +
		    stats(f->t[0]).auth_denied;

		hb = heartbeat(3, 1, 99);
		deadline = now_ms() + DELIVERY_MS;
		while (stats(f->t[0]).rejected + stats(f->t[0]).auth_denied ==
		    before) {
			assert_true(now_ms() < deadline);
			(void)transport_send(f->t[2], &hb);
			if (recv_wait(f->t[0], &m, 10)) {
				assert_true(m.from != 3);
				transport_recv_done(f->t[0], &m);
			}
		}
	}
	/* A bad list changes nothing. */
	c3.members[1].id = 0;
	assert_int_equal(transport_set_members(f->t[0], c3.members, 3),
	    -EINVAL);
	send_until_received(f->t[1], 2, f->t[0], 1, 23);
}

static void test_transport_fault_needs_enabling(void **state)
{
	struct fixture *f = *state;

	start(f, 1, 2, false, false);
	assert_int_equal(transport_set_fault(f->t[0], 2, 0, 0, true), -EPERM);
	assert_int_equal(transport_set_fault(f->t[0], 2, 50, 0, false), -EPERM);
	transport_free(f->t[0]);
	f->t[0] = NULL;
	start(f, 1, 2, false, true);
	assert_int_equal(transport_set_fault(f->t[0], 3, 0, 0, true), -EINVAL);
	assert_int_equal(transport_set_fault(f->t[0], 1, 0, 0, true), -EINVAL);
	assert_int_equal(transport_set_fault(f->t[0], 2, 101, 0, false),
	    -EINVAL);
	assert_int_equal(transport_set_fault(f->t[0], 2, 0, 0, true), 0);
}

static void test_transport_fault_block_and_restore(void **state)
{
	struct fixture *f = *state;
	struct raft_msg hb = heartbeat(1, 2, 0), m;

	start_all(f, 2, false, true);
	send_until_received(f->t[0], 1, f->t[1], 2, 1);
	send_until_received(f->t[1], 2, f->t[0], 1, 2);

	/* Member 1 blocks 2: nothing goes out to 2... */
	assert_int_equal(transport_set_fault(f->t[0], 2, 0, 0, true), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(transport_send(f->t[0], &hb), 0);
	assert_int_equal(stats(f->t[0]).fault_dropped, 100);
	/* ... but the link is cut one way only: 1 still hears 2. */
	send_until_received(f->t[1], 2, f->t[0], 1, 5);
	assert_int_equal(stats(f->t[0]).fault_dropped, 100);
	/* Restored: the first message to arrive is the one sent after. */
	assert_int_equal(transport_set_fault(f->t[0], 2, 0, 0, false), 0);
	hb = heartbeat(1, 2, 99);
	assert_int_equal(transport_send(f->t[0], &hb), 0);
	assert_int_equal(recv_wait(f->t[1], &m, DELIVERY_MS), 1);
	assert_true(m.ctx == 99);
	transport_recv_done(f->t[1], &m);
	send_until_received(f->t[1], 2, f->t[0], 1, 100);
}

static void test_transport_fault_delay(void **state)
{
	struct fixture *f = *state;
	struct raft_msg hb = heartbeat(1, 2, 0), m;
	uint64_t now;
	uint64_t sent;

	start_all(f, 2, false, true);
	assert_int_equal(transport_next_timer_ms(f->t[0], now_ms()), -1);
	send_until_received(f->t[0], 1, f->t[1], 2, 1);
	sent = stats(f->t[0]).sent;
	assert_int_equal(transport_set_fault(f->t[0], 2, 0, 100000, false), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		hb.ctx = 500 + i;
		assert_int_equal(transport_send(f->t[0], &hb), 0);
	}
	now = now_ms();
	assert_int_equal(stats(f->t[0]).fault_delayed, 3);
	assert_true(transport_next_timer_ms(f->t[0], now) > 1000);
	transport_run_timers(f->t[0], now); /* not due yet */
	assert_int_equal(stats(f->t[0]).sent, sent);
	assert_nothing_received(f->t[1]);
	/* Due: all three go, in the order they were sent. */
	assert_int_equal(transport_next_timer_ms(f->t[0], now + 200000), 0);
	transport_run_timers(f->t[0], now + 200000);
	assert_int_equal(stats(f->t[0]).sent, sent + 3);
	assert_int_equal(transport_next_timer_ms(f->t[0], now), -1);
	for (uint64_t i = 1; i <= 3; i++) {
		assert_int_equal(recv_wait(f->t[1], &m, DELIVERY_MS), 1);
		assert_true(m.ctx == 500 + i);
		transport_recv_done(f->t[1], &m);
	}
}

static void test_transport_fault_delay_reorders_and_partition_wins(void **state)
{
	struct fixture *f = *state;
	struct raft_msg hb = heartbeat(1, 2, 0), m;
	uint64_t now;

	start_all(f, 2, false, true);
	send_until_received(f->t[0], 1, f->t[1], 2, 1);
	/* A long delay, then a shorter one: the second overtakes. */
	assert_int_equal(transport_set_fault(f->t[0], 2, 0, 200000, false), 0);
	hb.ctx = 601;
	assert_int_equal(transport_send(f->t[0], &hb), 0);
	assert_int_equal(transport_set_fault(f->t[0], 2, 0, 100000, false), 0);
	hb.ctx = 602;
	assert_int_equal(transport_send(f->t[0], &hb), 0);
	now = now_ms();
	transport_run_timers(f->t[0], now + 300000);
	assert_int_equal(recv_wait(f->t[1], &m, DELIVERY_MS), 1);
	assert_true(m.ctx == 602);
	transport_recv_done(f->t[1], &m);
	assert_int_equal(recv_wait(f->t[1], &m, DELIVERY_MS), 1);
	assert_true(m.ctx == 601);
	transport_recv_done(f->t[1], &m);
	/* Frames already held are dropped if the peer is blocked when they
	 * fall due. */
	hb.ctx = 603;
	assert_int_equal(transport_send(f->t[0], &hb), 0);
	assert_int_equal(transport_set_fault(f->t[0], 2, 0, 0, true), 0);
	transport_run_timers(f->t[0], now_ms() + 300000);
	assert_int_equal(transport_next_timer_ms(f->t[0], now), -1);
	assert_int_equal(stats(f->t[0]).fault_dropped, 1);
	assert_nothing_received(f->t[1]);
}

static void test_transport_fault_delay_queue_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct transport_config c;
	struct raft_msg hb = heartbeat(1, 2, 0);

	config(f, &c, 1, 2, false, true);
	c.max_delayed = 10;
	assert_int_equal(transport_new(&c, &f->t[0]), 0);
	assert_int_equal(transport_set_fault(f->t[0], 2, 0, 100000, false), 0);
	for (int i = 0; i < 25; i++)
		assert_int_equal(transport_send(f->t[0], &hb), 0);
	assert_int_equal(stats(f->t[0]).fault_delayed, 10);
	assert_int_equal(stats(f->t[0]).fault_dropped, 15);
	/* Freed with frames still held: no leak (ASan build checks). */
}

static void test_transport_fault_random_drops(void **state)
{
	struct fixture *f = *state;
	struct transport_stats st;
	struct raft_msg hb = heartbeat(1, 2, 0), m;
	uint64_t got = 0, deadline, dropped;

	start_all(f, 2, false, true);
	send_until_received(f->t[0], 1, f->t[1], 2, 1);
	dropped = stats(f->t[0]).dropped;
	assert_int_equal(transport_set_fault(f->t[0], 2, 50, 0, false), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(transport_send(f->t[0], &hb), 0);
	st = stats(f->t[0]);
	assert_true(st.fault_dropped > 300 && st.fault_dropped < 700);
	/* What was not dropped on purpose arrives (the HWM is not hit). */
	deadline = now_ms() + DELIVERY_MS;
	while (got < 1000 - st.fault_dropped && now_ms() < deadline) {
		if (recv_wait(f->t[1], &m, 10)) {
			got++;
			transport_recv_done(f->t[1], &m);
		}
	}
	assert_int_equal(got, 1000 - st.fault_dropped);
	assert_int_equal(st.dropped, dropped);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_transport_rejects_bad_config),
		T(test_transport_bind_conflict),
		T(test_transport_send_refuses_bad_messages),
		T(test_transport_wildcard_port),
		T(test_transport_round_trip_every_type),
		T(test_transport_bad_peer_endpoint_not_fatal),
		T(test_transport_three_members_all_pairs),
		T(test_transport_dead_peer_drops_without_blocking),
		T(test_transport_slow_peer_is_bounded),
		T(test_transport_slow_peer_is_bounded_in_bytes),
		T(test_transport_reconnects),
		T(test_transport_rejects_foreign_frames),
		T(test_transport_curve_members_talk),
		T(test_transport_curve_refuses_stranger),
		T(test_transport_curve_refuses_plaintext_peer),
		T(test_transport_curve_refuses_impersonation),
		T(test_transport_members_added_and_removed),
		T(test_transport_fault_needs_enabling),
		T(test_transport_fault_block_and_restore),
		T(test_transport_fault_delay),
		T(test_transport_fault_delay_reorders_and_partition_wins),
		T(test_transport_fault_delay_queue_is_bounded),
		T(test_transport_fault_random_drops),
#undef T
	};

	/* The tests provoke rejections on purpose: their (rate-limited)
	 * warnings show in the log; RAFTKV_TEST_VERBOSE adds the chatter. */
	log_init(getenv("RAFTKV_TEST_VERBOSE") ? LOG_LEVEL_DEBUG
	                                       : LOG_LEVEL_WARN,
	    "test");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
