/*
 * kvbench.c - closed-loop load generator for a raftkv cluster: the raftkv
 * half of bench/kv-vs-etcd.sh (bench/etcd/main.go is the etcd half).
 *
 * N client threads, each with its own clerk (all sharing one ZeroMQ
 * context), issue one request at a time for a fixed time: unconditional
 * puts (KV_F_ANYVER) of a V-byte value, linearizable gets (clerk_get), or
 * a 90/10 get/put mix, on keys drawn uniformly from K keys named
 * "bench/k%06d".  "load" instead puts every key exactly once, split over
 * the threads, so that later gets find values.
 *
 * Timing: the clock starts when every clerk exists; ops completing in the
 * first --warmup seconds are not counted (the clerks find the leader and
 * register their sessions then); ops completing in the next --duration
 * seconds are, and the threads stop after that.  Latencies go into a
 * log-linear histogram per thread (a bucket per nanosecond below 128 ns,
 * then 128 buckets per power of two: < 0.8% error), merged at the end.
 * Output is one machine-readable line, the same shape as etcdbench's:
 *
 *   RESULT system=raftkv workload=put clients=16 secs=5.000 ops=12345
 *          errors=0 ops_s=2469.0 p50_ms=0.512 p99_ms=1.234
 *
 * (one line).  A get answered "no such key" counts as a served read, as an
 * empty etcd range does.
 *
 * --mux: the N clients instead share ONE connection to the leader from one
 * thread, N requests in flight, each client sending its next request when
 * its reply arrives - the shape of the etcd half, whose clients share one
 * gRPC connection.  It speaks the client protocol directly (no clerk), so
 * its puts carry no session, like etcd's puts; it does not follow a leader
 * change (a stable cluster is assumed; anything but success is an error).  Any other failure is counted in errors=, the
 * first one is named on stderr, and the exit status is 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "kv/clerk.h"
#include "kv/query.h"
#include "raft/client/cluster.h"
#include "raft/client/cproto.h"
#include "raft/client/keys.h"
#include "raft/util/num.h"

enum workload { WL_PUT, WL_GET, WL_MIX, WL_LOAD };

static const char *const workload_names[] = { "put", "get", "mix", "load" };

struct bench_opts {
	const char *cluster_file;
	enum workload wl;
	unsigned clients;
	double duration_s;
	double warmup_s;
	unsigned keys;
	size_t value_size;
	int io_threads;
	int prefer; /* spread clerks' first member (else -1) */
	int mux; /* clients share one connection (see above) */
};

/* Histogram of nanoseconds (see the file comment). */
#define SUB_BITS 7
#define SUB_COUNT (1u << SUB_BITS)
#define MAX_EXP 45
#define N_BUCKETS (SUB_COUNT + (MAX_EXP - SUB_BITS + 1) * SUB_COUNT)

struct hist {
	uint64_t b[N_BUCKETS];
	uint64_t count;
};

struct worker {
	pthread_t thread;
	unsigned id;
	struct clerk *ck;
	const struct bench_opts *o;
	uint64_t t0, t1; /* measured window, CLOCK_MONOTONIC ns */
	uint64_t rng;
	uint64_t errors;
	int first_err;
	struct hist h;
};

static const char *value_buf;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned bucket_of(uint64_t v)
{
	unsigned e;

	if (v < SUB_COUNT)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	if (e > MAX_EXP)
		return N_BUCKETS - 1;
	return SUB_COUNT + (e - SUB_BITS) * SUB_COUNT +
	    (unsigned)((v >> (e - SUB_BITS)) & (SUB_COUNT - 1));
}

/* The middle of bucket @i, in nanoseconds. */
static double bucket_value(unsigned i)
{
	unsigned e, sub;
	uint64_t w;

	if (i < SUB_COUNT)
		return i;
	e = (i - SUB_COUNT) / SUB_COUNT + SUB_BITS;
	sub = (i - SUB_COUNT) % SUB_COUNT;
	w = 1ull << (e - SUB_BITS);
	return (double)((SUB_COUNT + sub) * w) + (double)w / 2;
}

static void hist_add(struct hist *h, uint64_t ns)
{
	h->b[bucket_of(ns)]++;
	h->count++;
}

static void hist_merge(struct hist *h, const struct hist *o)
{
	for (unsigned i = 0; i < N_BUCKETS; i++)
		h->b[i] += o->b[i];
	h->count += o->count;
}

/* The value at quantile @q (0 < q <= 1) in nanoseconds; 0 when empty. */
static double hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, cum = 0;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < N_BUCKETS; i++) {
		cum += h->b[i];
		if (cum >= rank)
			return bucket_value(i);
	}
	return bucket_value(N_BUCKETS - 1);
}

/* xorshift64*: per-thread key and op choice. */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 2685821657736338717ull;
}

static size_t key_name(char *buf, size_t cap, unsigned k)
{
	return (size_t)snprintf(buf, cap, "bench/k%06u", k);
}

/* One request.  Returns 0 when served, else the clerk's status. */
static int do_op(struct worker *w, unsigned k, int put)
{
	char key[32];
	size_t klen = key_name(key, sizeof(key), k);
	void *val = NULL;
	size_t len;
	int rv;

	if (put)
		return clerk_put(w->ck, key, klen, value_buf, w->o->value_size,
		    0, KV_F_ANYVER, NULL, NULL);
	rv = clerk_get(w->ck, key, klen, NULL, &val, &len);
	free(val);
	return rv == KV_ENOKEY ? KV_OK : rv;
}

static void count_error(struct worker *w, int rv)
{
	if (w->errors++ == 0)
		w->first_err = rv;
}

static void *run_timed(void *arg)
{
	struct worker *w = arg;
	enum workload wl = w->o->wl;

	for (;;) {
		unsigned k = (unsigned)(next_rand(&w->rng) % w->o->keys);
		int put = wl == WL_PUT ||
		    (wl == WL_MIX && next_rand(&w->rng) % 10 == 0);
		uint64_t s = now_ns(), e;
		int rv = do_op(w, k, put);

		e = now_ns();
		if (e >= w->t1)
			return NULL;
		if (e < w->t0)
			continue;
		if (rv != KV_OK)
			count_error(w, rv);
		else
			hist_add(&w->h, e - s);
	}
}

static void *run_load(void *arg)
{
	struct worker *w = arg;

	for (unsigned k = w->id; k < w->o->keys; k += w->o->clients) {
		uint64_t s = now_ns();
		int rv = do_op(w, k, 1);

		if (rv != KV_OK)
			count_error(w, rv);
		else
			hist_add(&w->h, now_ns() - s);
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: kvbench -c CLUSTER-FILE [options]\n"
	    "  -c, --cluster FILE     cluster file (raftkv.conf(5))\n"
	    "  -w, --workload W       put, get, mix (90%% get/10%% put) or "
	    "load\n"
	    "                         (put every key once); default put\n"
	    "  -n, --clients N        concurrent closed-loop clients (default "
	    "1)\n"
	    "  -d, --duration SECS    measured time (default 5)\n"
	    "  -W, --warmup SECS      unmeasured warm-up first (default 1)\n"
	    "  -k, --keys N           key space (default 1000)\n"
	    "  -s, --value-size N     value bytes (default 256)\n"
	    "      --io-threads N     ZeroMQ I/O threads of the shared "
	    "context\n"
	    "                         (default 1)\n"
	    "      --spread           clerk i asks member i %% n first "
	    "(default:\n"
	    "                         every clerk finds the leader itself)\n"
	    "      --mux              the clients share one connection to the\n"
	    "                         leader from one thread (like "
	    "etcdbench)\n");
}

static int parse_secs(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return errno || *end || end == s || !(*v >= 0 && *v < 86400) ? -1 : 0;
}

static int parse_workload(const char *s, enum workload *wl)
{
	for (unsigned i = 0; i < 4; i++) {
		if (strcmp(s, workload_names[i]) == 0) {
			*wl = (enum workload)i;
			return 0;
		}
	}
	return -1;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longs[] = {
		{ "cluster", required_argument, NULL, 'c' },
		{ "workload", required_argument, NULL, 'w' },
		{ "clients", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "keys", required_argument, NULL, 'k' },
		{ "value-size", required_argument, NULL, 's' },
		{ "io-threads", required_argument, NULL, 1 },
		{ "spread", no_argument, NULL, 2 },
		{ "mux", no_argument, NULL, 3 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c, bad;

	*o = (struct bench_opts){ .wl = WL_PUT,
		.clients = 1,
		.duration_s = 5,
		.warmup_s = 1,
		.keys = 1000,
		.value_size = 256,
		.io_threads = 1,
		.prefer = -1 };
	while ((c = getopt_long(argc, argv, "c:w:n:d:W:k:s:h", longs, NULL)) !=
	    -1) {
		bad = 0;
		switch (c) {
		case 'c':
			o->cluster_file = optarg;
			break;
		case 'w':
			bad = parse_workload(optarg, &o->wl);
			break;
		case 'd':
			bad = parse_secs(optarg, &o->duration_s);
			break;
		case 'W':
			bad = parse_secs(optarg, &o->warmup_s);
			break;
		case 2:
			o->prefer = 0;
			break;
		case 3:
			o->mux = 1;
			break;
		case 'n':
			bad = num_parse_u64(optarg, 10, 1, 4096, &v) != 0;
			o->clients = (unsigned)v;
			break;
		case 'k':
			bad = num_parse_u64(optarg, 10, 1, 100000000, &v) != 0;
			o->keys = (unsigned)v;
			break;
		case 's':
			bad = num_parse_u64(optarg, 10, 0, 1u << 20, &v) != 0;
			o->value_size = v;
			break;
		case 1:
			bad = num_parse_u64(optarg, 10, 1, 64, &v) != 0;
			o->io_threads = (int)v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
		if (bad) {
			fprintf(stderr, "kvbench: invalid value '%s'\n",
			    optarg);
			return -1;
		}
	}
	if (optind != argc || o->cluster_file == NULL) {
		fprintf(stderr, "kvbench: -c CLUSTER-FILE is required\n");
		return -1;
	}
	return 0;
}

static int make_workers(const struct bench_opts *o, const struct cluster *cl,
    void *zctx, struct worker *ws)
{
	struct clerk_options co;
	int rv;

	for (unsigned i = 0; i < o->clients; i++) {
		clerk_options_defaults(&co);
		co.zctx = zctx;
		if (o->prefer >= 0)
			co.prefer_member = (int)(i % cl->n);
		ws[i].id = i;
		ws[i].o = o;
		ws[i].rng = 0x9E3779B97F4A7C15ull ^
		    (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull;
		rv = clerk_new(cl, &co, &ws[i].ck);
		if (rv != 0) {
			fprintf(stderr, "kvbench: clerk_new: %s\n",
			    clerk_strerror(rv));
			return -1;
		}
	}
	return 0;
}

static int run_workers(const struct bench_opts *o, struct worker *ws,
    double *secs)
{
	void *(*fn)(void *) = o->wl == WL_LOAD ? run_load : run_timed;
	uint64_t start = now_ns();
	unsigned i;

	for (i = 0; i < o->clients; i++) {
		ws[i].t0 = start + (uint64_t)(o->warmup_s * 1e9);
		ws[i].t1 = ws[i].t0 + (uint64_t)(o->duration_s * 1e9);
		if (pthread_create(&ws[i].thread, NULL, fn, &ws[i]) != 0) {
			fprintf(stderr, "kvbench: cannot create thread %u\n",
			    i);
			break;
		}
	}
	for (unsigned j = 0; j < i; j++)
		pthread_join(ws[j].thread, NULL);
	*secs = o->wl == WL_LOAD ? (double)(now_ns() - start) / 1e9
	                         : o->duration_s;
	return i == o->clients ? 0 : -1;
}

static int report(const struct bench_opts *o, struct worker *ws, double secs)
{
	struct hist *h = calloc(1, sizeof(*h));
	uint64_t errors = 0;
	int first = 0;

	if (h == NULL)
		return -1;
	for (unsigned i = 0; i < o->clients; i++) {
		hist_merge(h, &ws[i].h);
		if (ws[i].errors && errors == 0)
			first = ws[i].first_err;
		errors += ws[i].errors;
	}
	if (errors)
		fprintf(stderr, "kvbench: %" PRIu64 " errors, first: %s\n",
		    errors, clerk_strerror(first));
	printf("RESULT system=raftkv workload=%s clients=%u secs=%.3f "
	       "ops=%" PRIu64 " errors=%" PRIu64 " ops_s=%.1f p50_ms=%.3f "
	       "p99_ms=%.3f\n",
	    workload_names[o->wl], o->clients, secs, h->count, errors,
	    secs > 0 ? (double)h->count / secs : 0,
	    hist_quantile(h, 0.50) / 1e6, hist_quantile(h, 0.99) / 1e6);
	fflush(stdout);
	free(h);
	return errors ? -1 : 0;
}

/* ------------------------------------------------------------- --mux */

#define MUX_MAX_REQ (CPROTO_REQ_HDR + (1u << 21))

static int find_leader(const struct cluster *cl, void *zctx)
{
	struct clerk_options co;
	struct clerk *ck;
	int leader = -1;

	clerk_options_defaults(&co);
	co.zctx = zctx;
	if (clerk_new(cl, &co, &ck) != 0)
		return -1;
	for (int tries = 0; tries < 100 && leader < 0; tries++) {
		for (uint32_t i = 0; i < cl->n && leader < 0; i++) {
			struct cproto_status st;

			if (clerk_member_status(ck, i, &st) == 0 &&
			    st.role == 3)
				leader = (int)i;
		}
		if (leader < 0) {
			struct timespec ts = { 0, 100000000 };

			nanosleep(&ts, NULL);
		}
	}
	clerk_free(ck);
	return leader;
}

/* Encode the next request of a client into @out; returns its length. */
static size_t mux_request(const struct bench_opts *o, struct worker *w,
    uint64_t cluster_id, int put, uint64_t id, uint8_t *out)
{
	static uint8_t payload[MUX_MAX_REQ];
	struct cproto_req req = { .cluster_id = cluster_id,
		.req_id = id,
		.timeout_ms = 5000 };
	unsigned k = (unsigned)(next_rand(&w->rng) % o->keys);
	char key[32];
	size_t klen = key_name(key, sizeof(key), k);
	long n;

	if (put) {
		struct kv_cmd c = { .type = KV_OP_PUT };

		c.op.type = KV_OP_PUT;
		c.op.flags = KV_F_ANYVER;
		c.op.key = key;
		c.op.keylen = (uint32_t)klen;
		c.op.data = value_buf;
		c.op.datalen = (uint32_t)o->value_size;
		c.op.meta = (struct kv_meta){ .kind = KV_KIND_FILE,
			.mode = 0644 };
		n = kv_cmd_encode(&c, payload, sizeof(payload));
		req.op = CPROTO_SUBMIT;
	} else {
		struct query q = { .kind = QUERY_GET,
			.key = (uint8_t *)key,
			.keylen = (uint32_t)klen };
		uint8_t *b;
		size_t bl;

		n = query_encode(&q, &b, &bl) == 0 ? (long)bl : -1;
		if (n > 0) {
			memcpy(payload, b, bl);
			free(b);
		}
		req.op = CPROTO_READ;
	}
	if (n <= 0)
		return 0;
	req.len = (uint32_t)n;
	req.payload = payload;
	return cproto_encode_req(&req, out);
}

/* Did the member's reply say the operation was served? */
static int mux_outcome(const uint8_t *b, size_t len, uint64_t *id)
{
	struct cproto_rep rep;
	struct kv_result res;

	if (cproto_decode_rep(b, len, &rep) != 0)
		return -EBADMSG;
	*id = rep.req_id;
	if (rep.status != 0)
		return rep.status;
	if (kv_result_decode(rep.payload, rep.len, &res) != 0)
		return -EBADMSG;
	return res.status == KV_ENOKEY ? KV_OK : res.status;
}

static int run_mux(const struct bench_opts *o, const struct cluster *cl,
    void *zctx, struct worker *w, double *secs)
{
	uint64_t *started = calloc(o->clients, sizeof(*started));
	uint8_t *buf = malloc(MUX_MAX_REQ);
	uint64_t seq = 0, start, t0, t1;
	int leader = find_leader(cl, zctx), zero = 0, hwm = 100000, rv = -1;
	void *s = NULL;

	if (started == NULL || buf == NULL || leader < 0) {
		fprintf(stderr, "kvbench: --mux: %s\n",
		    leader < 0 ? "no leader found" : "out of memory");
		goto out;
	}
	s = zmq_socket(zctx, ZMQ_DEALER);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (zmq_connect(s, cl->members[leader].client) != 0)
		goto out;
	w->o = o;
	w->rng = 0x9E3779B97F4A7C15ull;
	start = now_ns();
	t0 = start + (uint64_t)(o->warmup_s * 1e9);
	t1 = t0 + (uint64_t)(o->duration_s * 1e9);
	/* Request id: sequence << 12 | client index (clients <= 4096). */
	for (unsigned c = 0; c < o->clients; c++) {
		int put = o->wl == WL_PUT ||
		    (o->wl == WL_MIX && next_rand(&w->rng) % 10 == 0);
		size_t n = mux_request(o, w, cl->id, put, (++seq << 12) | c,
		    buf);

		started[c] = now_ns();
		if (n == 0 || zmq_send(s, buf, n, 0) < 0)
			goto out;
	}
	for (;;) {
		zmq_pollitem_t it = { .socket = s, .events = ZMQ_POLLIN };
		uint64_t id = 0, e;
		zmq_msg_t m;
		unsigned c;
		int st, put;
		size_t n;

		if (zmq_poll(&it, 1, 1000) <= 0) {
			if (now_ns() >= t1)
				break;
			continue;
		}
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, 0) < 0) {
			zmq_msg_close(&m);
			continue;
		}
		st = mux_outcome(zmq_msg_data(&m), zmq_msg_size(&m), &id);
		zmq_msg_close(&m);
		c = (unsigned)(id & 0xfff);
		e = now_ns();
		if (c >= o->clients || e >= t1)
			break;
		if (e >= t0) {
			if (st != KV_OK)
				count_error(w, st);
			else
				hist_add(&w->h, e - started[c]);
		}
		put = o->wl == WL_PUT ||
		    (o->wl == WL_MIX && next_rand(&w->rng) % 10 == 0);
		n = mux_request(o, w, cl->id, put, (++seq << 12) | c, buf);
		started[c] = now_ns();
		if (n == 0 || zmq_send(s, buf, n, 0) < 0)
			goto out;
	}
	*secs = o->duration_s;
	rv = 0;
out:
	if (s)
		zmq_close(s);
	free(started);
	free(buf);
	return rv;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct cluster cl;
	struct worker *ws = NULL;
	char err[512], *val = NULL;
	void *zctx = NULL;
	double secs;
	int rv = 2;

	if (parse_opts(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
	if (cluster_load(o.cluster_file, &cl, err, sizeof(err)) != 0) {
		fprintf(stderr, "kvbench: %s\n", err);
		return 2;
	}
	/* A keyed cluster (raftkv init): the client credential next to the
	 * cluster file or $RAFTKV_CREDENTIAL; nothing for one without keys. */
	if (keys_load_credential(&cl, o.cluster_file, NULL, false, err,
	        sizeof(err)) != 0) {
		fprintf(stderr, "kvbench: %s\n", err);
		return 2;
	}
	val = malloc(o.value_size + 1);
	ws = calloc(o.clients, sizeof(*ws));
	zctx = zmq_ctx_new();
	if (val == NULL || ws == NULL || zctx == NULL) {
		fprintf(stderr, "kvbench: out of memory\n");
		goto out;
	}
	memset(val, 'v', o.value_size);
	value_buf = val;
	zmq_ctx_set(zctx, ZMQ_IO_THREADS, o.io_threads);
	rv = 1;
	if (o.mux && o.wl != WL_LOAD) {
		/* One thread: the histogram and errors live in ws[0]; the
		 * other workers' are empty, so report() merges the same. */
		if (run_mux(&o, &cl, zctx, &ws[0], &secs) != 0)
			goto out;
		rv = report(&o, ws, secs) == 0 ? 0 : 1;
		goto out;
	}
	if (make_workers(&o, &cl, zctx, ws) != 0)
		goto out;
	if (run_workers(&o, ws, &secs) != 0)
		goto out;
	rv = report(&o, ws, secs) == 0 ? 0 : 1;
out:
	for (unsigned i = 0; ws && i < o.clients; i++)
		clerk_free(ws[i].ck);
	if (zctx)
		zmq_ctx_term(zctx);
	free(ws);
	free(val);
	return rv;
}
