/*
 * bench_zmq.c - what the transport costs over raw ZeroMQ, on loopback.
 *
 * Two endpoints in one process, one thread each, wired exactly like two
 * members: A's DEALER -> B's ROUTER and B's DEALER -> A's ROUTER.
 *
 *   round trip   A sends a small message, B answers on its own link, A
 *                waits for the answer; p50/p99 over many rounds.  The
 *                transport rows send a Heartbeat and answer with a
 *                HeartbeatResp (61-byte frames); the raw row sends 61 bytes.
 *   one-way      A sends 100-byte messages as fast as it can, B counts;
 *                messages/s from the first send to the last receipt.  The
 *                transport sends an AppendEntries whose frame is 100 bytes;
 *                a send refused at the high-water mark is retried (a
 *                member would drop it: this measures the link, not Raft).
 *
 * The raw row is the reference measured in the same run, with the same
 * shape as the transport: one ZeroMQ context per side, ZMQ_IMMEDIATE,
 * non-blocking sends that back off 20 us when refused at the high-water
 * mark, non-blocking receives with zmq_poll when empty (the member loop's
 * pattern).  So the difference is what the transport adds: the frame and
 * message codecs, validation, and for CURVE the encryption.
 *
 * Each row runs --reps times (default 3, interleaved with the other rows)
 * and the median of each figure is printed: the machine may be busy.
 *
 * Usage: bench/bench_zmq [--quick] [--reps N]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "raft/util/logging.h"
#include "raft/net/transport.h"
#include "raft/util/num.h"

#define CLUSTER 0xBE7C4ull
#define SMALL 61
#define ONEWAY_BYTES 100
#define MAX_REPS 15

static unsigned rounds = 20000, warmup = 1000, oneway = 500000;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_zmq: %s: %s\n", what,
	    err < 0 ? rk_strerror(err) : zmq_strerror(err));
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct result {
	double p50_us, p99_us;
	double msgs_per_s;
	uint64_t refused; /* sends refused at the HWM, retried */
};

static void percentiles(uint64_t *ns, unsigned n, struct result *r)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	r->p50_us = ns[n / 2] / 1000.0;
	r->p99_us = ns[(size_t)n * 99 / 100] / 1000.0;
}

/* ------------------------------------------------------------------------
 * Raw ZeroMQ
 * ------------------------------------------------------------------------ */

struct raw_side {
	void *in; /* ROUTER */
	void *out; /* DEALER to the other side's ROUTER */
};

static void raw_open(void *ctx, struct raw_side *s, const char *bind_at,
    char *bound, size_t cap)
{
	int zero = 0, one = 1;

	s->in = zmq_socket(ctx, ZMQ_ROUTER);
	s->out = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(s->in, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s->out, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s->out, ZMQ_IMMEDIATE, &one, sizeof(one));
	if (zmq_bind(s->in, bind_at) != 0)
		die("bind", zmq_errno());
	zmq_getsockopt(s->in, ZMQ_LAST_ENDPOINT, bound, &cap);
}

/* Receive [routing id][payload] into @buf; returns the payload size.
 * Non-blocking receive, zmq_poll when empty: the member loop's pattern. */
static int raw_recv(void *s, void *buf, size_t cap)
{
	char rid[256];
	int n;

	while (zmq_recv(s, rid, sizeof(rid), ZMQ_DONTWAIT) < 0) {
		zmq_pollitem_t it = { .socket = s, .events = ZMQ_POLLIN };

		if (zmq_errno() != EAGAIN)
			die("recv", zmq_errno());
		zmq_poll(&it, 1, -1);
	}
	n = zmq_recv(s, buf, cap, 0);
	if (n < 0)
		die("recv", zmq_errno());
	return n;
}

/* Send without blocking, backing off as the transport rows do. */
static uint64_t raw_send(void *s, const void *buf, size_t len)
{
	uint64_t refused = 0;

	while (zmq_send(s, buf, len, ZMQ_DONTWAIT) < 0) {
		if (zmq_errno() != EAGAIN)
			die("send", zmq_errno());
		refused++;
		nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
	}
	return refused;
}

struct raw_job {
	struct raw_side *side;
	unsigned count;
	bool echo;
};

static void *raw_peer(void *arg)
{
	struct raw_job *j = arg;
	uint8_t buf[256];

	for (unsigned i = 0; i < j->count; i++) {
		int n = raw_recv(j->side->in, buf, sizeof(buf));

		if (j->echo)
			raw_send(j->side->out, buf, (size_t)n);
	}
	return NULL;
}

static void bench_raw(struct result *r)
{
	/* One context per side, as the transport has (and as two member
	 * processes would): each side gets its own I/O thread. */
	void *ctx_a = zmq_ctx_new(), *ctx_b = zmq_ctx_new();
	struct raw_side a, b;
	char ea[256], eb[256];
	uint8_t buf[256] = { 0 };
	uint64_t *ns = calloc(rounds, sizeof(*ns)), t0;
	struct raw_job job;
	pthread_t th;

	raw_open(ctx_a, &a, "tcp://127.0.0.1:*", ea, sizeof(ea));
	raw_open(ctx_b, &b, "tcp://127.0.0.1:*", eb, sizeof(eb));
	zmq_connect(a.out, eb);
	zmq_connect(b.out, ea);

	job = (struct raw_job){ &b, warmup + rounds, true };
	pthread_create(&th, NULL, raw_peer, &job);
	for (unsigned i = 0; i < warmup + rounds; i++) {
		t0 = now_ns();
		raw_send(a.out, buf, SMALL);
		raw_recv(a.in, buf, sizeof(buf));
		if (i >= warmup)
			ns[i - warmup] = now_ns() - t0;
	}
	pthread_join(th, NULL);
	percentiles(ns, rounds, r);

	job = (struct raw_job){ &b, oneway, false };
	pthread_create(&th, NULL, raw_peer, &job);
	r->refused = 0;
	t0 = now_ns();
	for (unsigned i = 0; i < oneway; i++)
		r->refused += raw_send(a.out, buf, ONEWAY_BYTES);
	pthread_join(th, NULL);
	r->msgs_per_s = oneway / ((now_ns() - t0) / 1e9);

	zmq_close(a.in);
	zmq_close(a.out);
	zmq_close(b.in);
	zmq_close(b.out);
	zmq_ctx_term(ctx_a);
	zmq_ctx_term(ctx_b);
	free(ns);
}

/* ------------------------------------------------------------------------
 * Through the transport
 * ------------------------------------------------------------------------ */

/* Block until @t has a message (in @m). */
static void tr_recv(struct transport *t, struct raft_msg *m)
{
	for (;;) {
		zmq_pollitem_t it = { .socket = transport_socket(t),
			.events = ZMQ_POLLIN };
		int rv = transport_recv(t, m);

		if (rv == 1)
			return;
		if (rv < 0)
			die("transport_recv", -rv);
		zmq_poll(&it, 1, -1);
	}
}

/* Send, retrying while the link is not up or the HWM is reached. */
static uint64_t tr_send(struct transport *t, const struct raft_msg *m)
{
	uint64_t refused = 0;
	int rv;

	while ((rv = transport_send(t, m)) == -EAGAIN) {
		refused++;
		nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
	}
	if (rv != 0)
		die("transport_send", -rv);
	return refused;
}

struct tr_job {
	struct transport *t;
	unsigned count;
	bool echo;
};

static void *tr_peer(void *arg)
{
	struct tr_job *j = arg;
	struct raft_msg m, resp;

	for (unsigned i = 0; i < j->count; i++) {
		tr_recv(j->t, &m);
		resp = (struct raft_msg){ .type = RAFT_MSG_HEARTBEAT_RESP,
			.from = 2,
			.to = 1,
			.term = m.term,
			.ctx = m.ctx };
		transport_recv_done(j->t, &m);
		if (j->echo)
			(void)tr_send(j->t, &resp);
	}
	return NULL;
}

static void tr_pair(struct transport **a, struct transport **b, bool curve)
{
	struct transport_config c;
	char pub[2][41], sec[2][41], ep[2][256];
	struct transport *t[2];

	for (int i = 0; i < 2; i++)
		if (curve && zmq_curve_keypair(pub[i], sec[i]) != 0)
			die("zmq_curve_keypair", zmq_errno());
	/* Bind each on a wildcard port, then build the real pair on them. */
	for (int i = 0; i < 2; i++) {
		transport_config_defaults(&c);
		c.cluster_id = CLUSTER;
		c.self = 1;
		c.n_members = 1;
		c.members[0].id = 1;
		strcpy(c.members[0].endpoint, "tcp://127.0.0.1:*");
		if (transport_new(&c, &t[i]) != 0)
			die("transport_new", EINVAL);
		snprintf(ep[i], sizeof(ep[i]), "%s", transport_endpoint(t[i]));
		transport_free(t[i]); /* synchronous: the port is free again */
	}
	for (int i = 0; i < 2; i++) {
		transport_config_defaults(&c);
		c.cluster_id = CLUSTER;
		c.self = (raft_id)i + 1;
		c.n_members = 2;
		for (int j = 0; j < 2; j++) {
			c.members[j].id = (raft_id)j + 1;
			strcpy(c.members[j].endpoint, ep[j]);
			if (curve)
				strcpy(c.members[j].curve_public, pub[j]);
		}
		if (curve)
			strcpy(c.curve_secret, sec[i]);
		int rv = transport_new(&c, &t[i]);
		if (rv != 0)
			die("transport_new", rv);
	}
	*a = t[0];
	*b = t[1];
}

static void bench_transport(struct result *r, bool curve)
{
	struct transport *a, *b;
	uint64_t *ns = calloc(rounds, sizeof(*ns)), t0;
	struct raft_msg hb = { .type = RAFT_MSG_HEARTBEAT,
		.from = 1,
		.to = 2,
		.term = 7,
		.commit = 42 },
	                m;
	static uint8_t data[ONEWAY_BYTES];
	struct raft_entry e = { .term = 7,
		.index = 1,
		.type = RAFT_ENTRY_NORMAL,
		.data = data };
	struct raft_msg app = { .type = RAFT_MSG_APPEND,
		.from = 1,
		.to = 2,
		.term = 7,
		.n_entries = 1,
		.entries = &e };
	struct tr_job job;
	pthread_t th;

	tr_pair(&a, &b, curve);
	job = (struct tr_job){ b, warmup + rounds, true };
	pthread_create(&th, NULL, tr_peer, &job);
	for (unsigned i = 0; i < warmup + rounds; i++) {
		hb.ctx = i + 1;
		t0 = now_ns();
		(void)tr_send(a, &hb);
		tr_recv(a, &m);
		transport_recv_done(a, &m);
		if (i >= warmup)
			ns[i - warmup] = now_ns() - t0;
	}
	pthread_join(th, NULL);
	percentiles(ns, rounds, r);

	/* An AppendEntries whose whole frame is ONEWAY_BYTES. */
	e.len = 0;
	e.len = (uint32_t)(ONEWAY_BYTES - frame_encoded_size(&app));
	if (frame_encoded_size(&app) != ONEWAY_BYTES)
		die("sizing the one-way message", EINVAL);
	job = (struct tr_job){ b, oneway, false };
	pthread_create(&th, NULL, tr_peer, &job);
	r->refused = 0;
	t0 = now_ns();
	for (unsigned i = 0; i < oneway; i++) {
		e.index = i + 1;
		r->refused += tr_send(a, &app);
	}
	pthread_join(th, NULL);
	r->msgs_per_s = oneway / ((now_ns() - t0) / 1e9);

	transport_free(a);
	transport_free(b);
	free(ns);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of each figure over @n runs (odd @n: a real run's value). */
static struct result median(struct result *runs, unsigned n)
{
	double v[3][MAX_REPS];
	uint64_t refused = 0;
	struct result r;

	for (unsigned i = 0; i < n; i++) {
		v[0][i] = runs[i].p50_us;
		v[1][i] = runs[i].p99_us;
		v[2][i] = runs[i].msgs_per_s;
		refused += runs[i].refused;
	}
	for (int k = 0; k < 3; k++)
		qsort(v[k], n, sizeof(double), cmp_double);
	r.p50_us = v[0][n / 2];
	r.p99_us = v[1][n / 2];
	r.msgs_per_s = v[2][n / 2];
	r.refused = refused / n;
	return r;
}

static void print_row(const char *name, const struct result *r)
{
	printf("%-24s %8.1f us %8.1f us %14.0f %8.1f %14" PRIu64 "\n", name,
	    r->p50_us, r->p99_us, r->msgs_per_s,
	    r->msgs_per_s * ONEWAY_BYTES / 1e6, r->refused);
}

int main(int argc, char **argv)
{
	struct result raw[MAX_REPS], plain[MAX_REPS], curve[MAX_REPS], m;
	unsigned reps = 3;
	bool has_curve = zmq_has("curve");

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			rounds = 2000;
			warmup = 200;
			oneway = 50000;
			reps = 1;
		} else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
			if (num_parse_uint(argv[++i], 1, MAX_REPS, &reps) !=
			        0 ||
			    reps % 2 == 0) {
				fprintf(stderr,
				    "bench_zmq: --reps: '%s' is not "
				    "an odd number from 1 to %d\n",
				    argv[i], MAX_REPS);
				return 2;
			}
		} else {
			fprintf(stderr,
			    "usage: bench_zmq [--quick] "
			    "[--reps N (odd, <= %d)]\n",
			    MAX_REPS);
			return 2;
		}
	}
	log_init(LOG_LEVEL_WARN, "bench");
	/* Interleaved, so that a burst of load elsewhere on the machine
	 * hits every row alike; the median of the runs is printed. */
	for (unsigned i = 0; i < reps; i++) {
		bench_raw(&raw[i]);
		bench_transport(&plain[i], false);
		if (has_curve)
			bench_transport(&curve[i], true);
	}

	printf("loopback, 1 process, 2 threads; median of %u runs of %u round "
	       "trips and %u one-way %d-byte messages\n",
	    reps, rounds, oneway, ONEWAY_BYTES);
	printf("%-24s %11s %11s %14s %8s %14s\n", "", "RTT p50", "RTT p99",
	    "one-way msg/s", "MB/s", "HWM refusals");
	m = median(raw, reps);
	print_row("raw zmq DEALER->ROUTER", &m);
	m = median(plain, reps);
	print_row("transport, plaintext", &m);
	if (has_curve) {
		m = median(curve, reps);
		print_row("transport, CURVE", &m);
	}
	return 0;
}
