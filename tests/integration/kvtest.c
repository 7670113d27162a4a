/*
 * kvtest.c - the labs' KV test machinery on real members (see kvtest.h).
 *
 * One struct kvt per test: the harness (the processes), one ZeroMQ context
 * shared by every clerk of the test (so a test can make thousands of
 * clerks without thousands of I/O threads), the history, and a seeded
 * random number generator whose seed is printed so that a schedule can be
 * replayed (RAFTKV_SEED=<n>).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include <cmocka.h>

#include "raft/client/cproto.h"
#include "tests/integration/kvtest.h"
#include "tests/lib/history.h"

struct kvt {
	struct kvt_options o;
	char name[96];
	char member_path[4096];
	struct harness *h;
	struct linz_history *hist;
	void *zctx;
	atomic_uint_fast64_t next_client;
	atomic_int live_clerks; /* made and not yet freed */
	uint64_t seed;
	pthread_mutex_t rmu;
	uint64_t rng;
	uint64_t t0_ms;
	unsigned nchecks;
	unsigned nunknown; /* checks that timed out: NOT verified */
	struct kvt_clients *live_sets; /* started, not yet stopped */
	struct kvt_partitioner *live_part;
	double check_s; /* time spent in linearizability checks */
	double check_max_s;
};

struct kvt_clerk {
	struct kvt *t;
	uint64_t id;
	struct clerk *sub; /* restricted clerk, NULL if none */
	struct clerk *full; /* every member (made on demand) */
	struct linz_history *hist; /* NULL: the test's */
	atomic_bool all; /* use @full from now on */
};

/* ------------------------------------------------------------------ */
/* life cycle                                                           */
/* ------------------------------------------------------------------ */

void kvt_options_defaults(struct kvt_options *o)
{
	memset(o, 0, sizeof(*o));
	o->nservers = 3;
	o->max_raft_state = -1;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t kvt_rand(struct kvt *t, uint64_t n)
{
	uint64_t r;

	pthread_mutex_lock(&t->rmu);
	r = splitmix(&t->rng);
	pthread_mutex_unlock(&t->rmu);
	return n ? r % n : r;
}

void kvt_filter_tests(void)
{
	const char *f = getenv("RAFTKV_TEST_FILTER");

	if (f && *f)
		cmocka_set_test_filter(f);
}

uint64_t kvt_seed(const struct kvt *t)
{
	return t->seed;
}

static uint64_t pick_seed(void)
{
	const char *s = getenv("RAFTKV_SEED");
	struct timespec ts;

	if (s && *s)
		return strtoull(s, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
	    ((uint64_t)getpid() << 40);
}

struct kvt *kvt_new(void **state, const struct kvt_options *o)
{
	struct harness_options ho;
	const char *bd = getenv("RAFTKV_BUILDDIR");
	struct kvt *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->o = *o;
	snprintf(t->name, sizeof(t->name), "%s", o->name ? o->name : "kvtest");
	t->o.name = t->name;
	snprintf(t->member_path, sizeof(t->member_path), "%s/kv/raftkv-server",
	    bd && *bd ? bd : ".");
	pthread_mutex_init(&t->rmu, NULL);
	t->seed = pick_seed();
	t->rng = t->seed;
	srand((unsigned)t->seed);
	t->hist = linz_history_new();
	t->zctx = zmq_ctx_new();
	assert_non_null(t->zctx);
	zmq_ctx_set(t->zctx, ZMQ_MAX_SOCKETS, 8192);
	atomic_init(&t->next_client, 1);
	*state = t;
	t->t0_ms = harness_now_ms();

	harness_options_defaults(&ho);
	ho.name = t->name;
	ho.member_path = t->member_path;
	ho.max_raft_state = o->max_raft_state;
	ho.workers = o->workers;
	ho.spares = o->spares;
	t->h = harness_new(o->nservers, &ho);
	if (t->h == NULL)
		fail_msg("%s: cannot start %d members of %s", t->name,
		    o->nservers, t->member_path);
	print_message("[%s] %d members, %s network, maxraftstate %" PRId64
	              ", %s clerks, seed %" PRIu64 "\n",
	    t->name, o->nservers, o->unreliable ? "unreliable" : "reliable",
	    o->max_raft_state,
	    o->no_sessions ? "seeds (no sessions)" : "session", t->seed);
	if (o->unreliable)
		assert_int_equal(harness_set_drop(t->h, KVT_PEER_DROP_PCT), 0);
	kvt_must_leader(t);
	return t;
}

static void stop_leftover_threads(struct kvt *t);

void kvt_free(struct kvt *t)
{
	if (t == NULL)
		return;
	stop_leftover_threads(t);
	harness_free(t->h);
	t->h = NULL;
	if (atomic_load(&t->live_clerks) > 0) {
		/* Clerks still in use by threads this file does not know of
		 * (a test's own, left behind by a failure): they still use
		 * the history and the context, so both are leaked. */
		fprintf(stderr,
		    "[%s] %d clerks still in use: history and "
		    "ZeroMQ context leaked\n",
		    t->name, atomic_load(&t->live_clerks));
		return;
	}
	linz_history_free(t->hist);
	if (t->zctx)
		zmq_ctx_term(t->zctx);
	pthread_mutex_destroy(&t->rmu);
	free(t);
}

int kvt_teardown(void **state)
{
	kvt_free(*state);
	*state = NULL;
	return 0;
}

void kvt_finish(struct kvt *t)
{
	char terms[8 * HARNESS_MAX] = "";
	size_t o = 0;

	assert_int_equal(harness_unexpected_exits(t->h), 0);
	/* The members' terms tell how many elections the run needed (a
	 * fault-free test should need one). */
	for (int i = 0; i < harness_n(t->h); i++) {
		struct cproto_status st;

		if (harness_running(t->h, i) &&
		    harness_status(t->h, i, &st) == 0)
			o += (size_t)snprintf(terms + o, sizeof(terms) - o,
			    " %" PRIu64, st.term);
		else
			o += (size_t)snprintf(terms + o, sizeof(terms) - o,
			    " -");
	}
	harness_mark_passed(t->h);
	/* A check that timed out passes, as in the lab, but says so here. */
	print_message("[%s] passed: %.1f s, %zu ops recorded, %u "
	              "linearizability checks (%.2f s in all, longest %.2f s; "
	              "%u timed "
	              "out and NOT verified); terms%s\n",
	    t->name, (double)(harness_now_ms() - t->t0_ms) / 1000.0,
	    linz_history_len(t->hist), t->nchecks, t->check_s, t->check_max_s,
	    t->nunknown, terms);
}

struct harness *kvt_harness(struct kvt *t)
{
	return t->h;
}
struct linz_history *kvt_history(struct kvt *t)
{
	return t->hist;
}
bool kvt_unreliable(const struct kvt *t)
{
	return t->o.unreliable;
}
const char *kvt_name(const struct kvt *t)
{
	return t->name;
}
size_t kvt_nops(struct kvt *t)
{
	return linz_history_len(t->hist);
}

/* ------------------------------------------------------------------ */
/* clerks                                                               */
/* ------------------------------------------------------------------ */

static struct clerk *make_clerk(struct kvt *t, const struct cluster *cl,
    uint64_t id, int deadline_ms)
{
	struct clerk_options co;
	struct clerk *ck;

	clerk_options_defaults(&co);
	co.no_sessions = t->o.no_sessions;
	co.zctx = t->zctx;
	if (t->o.clerk_deadline_ms > 0)
		co.deadline_ms = t->o.clerk_deadline_ms;
	if (deadline_ms > 0)
		co.deadline_ms = deadline_ms;
	if (t->o.unreliable) {
		co.loss_pct = t->o.loss_pct ? t->o.loss_pct : KVT_LOSS_PCT;
		co.loss_seed = t->seed ^ (id * 0x2545f4914f6cdd1dull);
	}
	if (clerk_new(cl, &co, &ck) != 0)
		return NULL;
	return ck;
}

struct kvt_clerk *kvt_clerk_new(struct kvt *t)
{
	struct kvt_clerk *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->t = t;
	c->id = atomic_fetch_add(&t->next_client, 1);
	atomic_init(&c->all, true);
	c->full = make_clerk(t, harness_cluster(t->h), c->id, 0);
	if (c->full == NULL) {
		free(c);
		return NULL;
	}
	atomic_fetch_add(&t->live_clerks, 1);
	return c;
}

/*
 * A restricted clerk's deadline is short so that it returns to kvt_get()/
 * kvt_put() often, which then notice kvt_clerk_connect_all().
 */
#define SUB_DEADLINE_MS 2000

struct kvt_clerk *kvt_clerk_to(struct kvt *t, uint32_t mask)
{
	const struct cluster *all = harness_cluster(t->h);
	struct kvt_clerk *c = calloc(1, sizeof(*c));
	struct cluster sub;

	if (c == NULL)
		return NULL;
	/* The cluster file format lets a client know only some members. */
	sub = *all;
	sub.n = 0;
	for (uint32_t i = 0; i < all->n; i++)
		if (mask & (1u << i))
			sub.members[sub.n++] = all->members[i];
	c->t = t;
	c->id = atomic_fetch_add(&t->next_client, 1);
	atomic_init(&c->all, false);
	c->sub = make_clerk(t, &sub, c->id, SUB_DEADLINE_MS);
	if (sub.n == 0 || c->sub == NULL) {
		clerk_free(c->sub);
		free(c);
		return NULL;
	}
	atomic_fetch_add(&t->live_clerks, 1);
	return c;
}

void kvt_clerk_connect_all(struct kvt_clerk *c)
{
	atomic_store(&c->all, true);
}

void kvt_clerk_free(struct kvt_clerk *c)
{
	if (c == NULL)
		return;
	atomic_fetch_sub(&c->t->live_clerks, 1);
	clerk_free(c->sub);
	clerk_free(c->full);
	free(c);
}

void kvt_clerk_set_history(struct kvt_clerk *c, struct linz_history *h)
{
	c->hist = h;
}

uint64_t kvt_clerk_id(const struct kvt_clerk *c)
{
	return c->id;
}

/* The clerk to use now (owner thread only). */
struct clerk *kvt_clerk_raw(struct kvt_clerk *c)
{
	if (!atomic_load(&c->all))
		return c->sub;
	if (c->full == NULL)
		c->full = make_clerk(c->t, harness_cluster(c->t->h), c->id, 0);
	return c->full ? c->full : c->sub;
}

/* ------------------------------------------------------------------ */
/* recorded operations                                                  */
/* ------------------------------------------------------------------ */

static int linz_result_of(int rv)
{
	switch (rv) {
	case KV_OK:
		return LINZ_RES_OK;
	case KV_EVERSION:
		return LINZ_RES_ERR_VERSION;
	case KV_ENOKEY:
		return LINZ_RES_ERR_NOKEY;
	default:
		return LINZ_RES_UNKNOWN; /* ErrMaybe: see kvtest.h */
	}
}

static void record(struct kvt_clerk *c, int kind, const char *key,
    const char *value, size_t vlen, uint64_t ver, int result, uint64_t call,
    uint64_t ret)
{
	struct linz_op op = {
		.client = c->id,
		.call_ns = call,
		.ret_ns = ret,
		.kind = kind,
		.key = key,
		.key_len = strlen(key),
		.value = value ? value : "",
		.value_len = value ? vlen : 0,
		.version = ver,
		.result = result,
	};

	if (linz_add(c->hist ? c->hist : c->t->hist, &op) != 0) {
		fprintf(stderr, "kvtest: linz_add refused an operation\n");
		abort(); /* a bug in this file */
	}
}

static bool give_up(uint64_t start_ms)
{
	return harness_now_ms() - start_ms >= KVT_OP_CAP_MS;
}

int kvt_get(struct kvt_clerk *c, const char *key, char **value, uint64_t *ver)
{
	uint64_t call = history_now_ns(), start = harness_now_ms();
	struct kv_attr a;
	void *v = NULL;
	size_t len = 0;
	char *s;
	int rv;

	for (;;) {
		rv = clerk_get(kvt_clerk_raw(c), key, strlen(key), &a, &v,
		    &len);
		if (rv == KV_OK || rv == KV_ENOKEY)
			break;
		if (rv != CLERK_EUNAVAILABLE || give_up(start))
			return rv < 0 ? rv : -EPROTO;
	}
	s = malloc(len + 1);
	if (s == NULL)
		abort();
	if (len)
		memcpy(s, v, len);
	s[len] = '\0';
	free(v);
	if (rv == KV_ENOKEY)
		a.version = 0;
	record(c, LINZ_GET, key, s, len, a.version, linz_result_of(rv), call,
	    history_now_ns());
	if (ver)
		*ver = a.version;
	if (value)
		*value = s;
	else
		free(s);
	return rv;
}

int kvt_put(struct kvt_clerk *c, const char *key, const char *value,
    uint64_t ver)
{
	uint64_t call = history_now_ns(), start = harness_now_ms();
	size_t vlen = strlen(value);
	int rv;

	for (;;) {
		rv = clerk_put(kvt_clerk_raw(c), key, strlen(key), value, vlen,
		    ver, 0, NULL, NULL);
		if (rv == KV_OK || rv == KV_EVERSION || rv == KV_ENOKEY ||
		    rv == KV_EMAYBE)
			break;
		/* CLERK_EUNAVAILABLE: no attempt applied (clerk.h). */
		if (rv != CLERK_EUNAVAILABLE || give_up(start))
			return rv < 0 ? rv : -EPROTO;
	}
	record(c, LINZ_PUT, key, value, vlen, ver, linz_result_of(rv), call,
	    rv == KV_EMAYBE ? LINZ_NEVER : history_now_ns());
	return rv;
}

int kvt_del(struct kvt_clerk *c, const char *key, uint64_t ver)
{
	uint64_t call = history_now_ns(), start = harness_now_ms();
	int rv;

	for (;;) {
		rv = clerk_delete(kvt_clerk_raw(c), key, strlen(key), ver, 0,
		    NULL);
		if (rv == KV_OK || rv == KV_EVERSION || rv == KV_ENOKEY ||
		    rv == KV_EMAYBE)
			break;
		if (rv != CLERK_EUNAVAILABLE || give_up(start))
			return rv < 0 ? rv : -EPROTO;
	}
	record(c, LINZ_DEL, key, NULL, 0, ver, linz_result_of(rv), call,
	    rv == KV_EMAYBE ? LINZ_NEVER : history_now_ns());
	return rv;
}

/* ------------------------------------------------------------------ */
/* the labs' helpers                                                    */
/* ------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int kvt_one_put(struct kvt_clerk *c, int me, const char *key, uint64_t *ver,
    char *err, size_t errlen)
{
	for (;;) {
		char val[96], *got = NULL;
		uint64_t ver0;
		int rv, g;

		/* The lab's EntryV{Id, V} as JSON. */
		snprintf(val, sizeof(val), "{\"Id\":%d,\"V\":%" PRIu64 "}", me,
		    *ver);
		rv = kvt_put(c, key, val, *ver);
		if (rv != KV_OK && rv != KV_EVERSION && rv != KV_EMAYBE) {
			set_err(err, errlen,
			    "client %d: Put(%s, ver %" PRIu64 "): %s", me, key,
			    *ver, clerk_strerror(rv));
			return rv < 0 ? rv : -EPROTO;
		}
		g = kvt_get(c, key, &got, &ver0);
		if (g != KV_OK && g != KV_ENOKEY) {
			set_err(err, errlen, "client %d: Get(%s): %s", me, key,
			    clerk_strerror(g));
			return g < 0 ? g : -EPROTO;
		}
		/* The lab: after my OK put, a read at my version is mine. */
		if (rv == KV_OK && ver0 == *ver + 1 && strcmp(got, val) != 0) {
			set_err(err, errlen,
			    "client %d: Put(%s) OK at ver %" PRIu64
			    " but Get shows %s at ver %" PRIu64,
			    me, key, *ver, got, ver0);
			free(got);
			return -EPROTO;
		}
		free(got);
		*ver = ver0;
		if (rv == KV_OK || rv == KV_EMAYBE)
			return rv;
	}
}

/*
 * The lab's PutAtLeastOnce moves to ver+1 after ErrMaybe, which assumes
 * ErrMaybe means "applied" (true of the seeds' clerk when one client
 * writes the key).  A session clerk's ErrMaybe (its deadline passed) may
 * mean "not applied", and ver+1 would then loop on ErrVersion forever; so
 * after ErrMaybe or ErrVersion this reads the key: our value there means
 * the put landed, else the put is retried at the version read.  Returns
 * the version the put created (the lab returns the version it put at).
 */
int kvt_put_at_least_once(struct kvt_clerk *c, const char *key,
    const char *value, uint64_t *ver, char *err, size_t errlen)
{
	for (;;) {
		char *got = NULL;
		uint64_t cur;
		int rv = kvt_put(c, key, value, *ver), g;

		if (rv == KV_OK) {
			*ver += 1;
			return KV_OK;
		}
		if (rv != KV_EMAYBE && rv != KV_EVERSION &&
		    !(rv == KV_ENOKEY && *ver == 0)) {
			set_err(err, errlen, "Put(%s, %s, ver %" PRIu64 "): %s",
			    key, value, *ver, clerk_strerror(rv));
			return rv < 0 ? rv : -EPROTO;
		}
		g = kvt_get(c, key, &got, &cur);
		if (g != KV_OK && g != KV_ENOKEY) {
			set_err(err, errlen, "Get(%s): %s", key,
			    clerk_strerror(g));
			return g < 0 ? g : -EPROTO;
		}
		if (g == KV_OK && strcmp(got, value) == 0 && rv == KV_EMAYBE) {
			free(got);
			*ver = cur;
			return KV_OK;
		}
		free(got);
		*ver = cur;
	}
}

uint64_t kvt_must_put_at_least_once(struct kvt_clerk *c, const char *key,
    const char *value, uint64_t ver)
{
	char err[256] = "";

	if (kvt_put_at_least_once(c, key, value, &ver, err, sizeof(err)) != 0)
		fail_msg("[%s] PutAtLeastOnce: %s", c->t->name, err);
	return ver;
}

void kvt_check_get(struct kvt_clerk *c, const char *key, const char *value,
    uint64_t ver)
{
	char *got = NULL;
	uint64_t v = 0;
	int rv = kvt_get(c, key, &got, &v);

	if (rv != KV_OK)
		fail_msg("[%s] CheckGet(%s): %s", c->t->name, key,
		    clerk_strerror(rv));
	/* The lab compares the value only (its version check is a no-op,
	 * `ver != ver`); this checks both. */
	if (strcmp(got, value) != 0 || v != ver) {
		print_message("[%s] CheckGet(%s): expected %s ver %" PRIu64
		              ", got %s ver %" PRIu64 "\n",
		    c->t->name, key, value, ver, got, v);
		free(got);
		fail_msg("[%s] CheckGet(%s) mismatch", c->t->name, key);
	}
	free(got);
}

/* ------------------------------------------------------------------ */
/* clients                                                              */
/* ------------------------------------------------------------------ */

struct kvt_clients {
	struct kvt *t;
	int n;
	atomic_bool done;
	struct kvt_client *c;
	struct kvt_clients *next; /* t->live_sets */
};

void kvt_client_error(struct kvt_client *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

struct client_start {
	struct kvt_client *c;
	kvt_client_fn fn;
};

static void *client_main(void *arg)
{
	struct client_start *s = arg;
	struct kvt_client *c = s->c;
	kvt_client_fn fn = s->fn;

	free(s);
	fn(c);
	return NULL;
}

struct kvt_clients *kvt_clients_start(struct kvt *t, int n, kvt_client_fn fn,
    void *arg)
{
	struct kvt_clients *cs = calloc(1, sizeof(*cs));

	assert_non_null(cs);
	cs->t = t;
	cs->n = n;
	atomic_init(&cs->done, false);
	cs->next = t->live_sets;
	t->live_sets = cs;
	cs->c = calloc((size_t)(n ? n : 1), sizeof(*cs->c));
	assert_non_null(cs->c);
	for (int i = 0; i < n; i++) {
		struct kvt_client *c = &cs->c[i];
		struct client_start *s = malloc(sizeof(*s));

		assert_non_null(s);
		c->t = t;
		c->me = i;
		c->done = &cs->done;
		c->arg = arg;
		c->ck = kvt_clerk_new(t);
		assert_non_null(c->ck);
		s->c = c;
		s->fn = fn;
		assert_int_equal(pthread_create(&c->tid, NULL, client_main, s),
		    0);
	}
	return cs;
}

/* Tell the clients to stop and join them (their clerks freed). */
static void clients_join(struct kvt_clients *cs)
{
	atomic_store(&cs->done, true);
	for (int i = 0; i < cs->n; i++) {
		pthread_join(cs->c[i].tid, NULL);
		kvt_clerk_free(cs->c[i].ck);
	}
}

struct kvt_res kvt_clients_stop(struct kvt_clients *cs, struct kvt_res *res)
{
	struct kvt_res tot = { 0, 0 };
	char first[300] = "";
	int nerr = 0;

	for (struct kvt_clients **p = &cs->t->live_sets; *p; p = &(*p)->next)
		if (*p == cs) {
			*p = cs->next;
			break;
		}
	clients_join(cs);
	for (int i = 0; i < cs->n; i++) {
		struct kvt_client *c = &cs->c[i];

		tot.nok += c->res.nok;
		tot.nmaybe += c->res.nmaybe;
		if (res)
			res[i] = c->res;
		if (c->err[0]) {
			fprintf(stderr, "[%s] client %d: %s\n", cs->t->name, i,
			    c->err);
			if (nerr++ == 0)
				snprintf(first, sizeof(first), "%s", c->err);
		}
	}
	free(cs->c);
	free(cs);
	if (nerr)
		fail_msg("%d client(s) failed; first: %s", nerr, first);
	return tot;
}

struct kvt_res kvt_spawn_clients_and_wait(struct kvt *t, int n, unsigned ms,
    kvt_client_fn fn, void *arg, struct kvt_res *res)
{
	struct kvt_clients *cs = kvt_clients_start(t, n, fn, arg);

	harness_sleep_ms(ms);
	return kvt_clients_stop(cs, res);
}

void kvt_one_client_put(struct kvt_client *c)
{
	bool random_keys = c->arg && *(const bool *)c->arg;
	uint64_t verm[KVT_NKEYS] = { 0 };

	while (!atomic_load(c->done)) {
		int k = random_keys ? (int)kvt_rand(c->t, KVT_NKEYS) : 0;
		char key[16];
		int rv;

		if (random_keys)
			snprintf(key, sizeof(key), "k%d", k);
		else
			snprintf(key, sizeof(key), "k");
		rv = kvt_one_put(c->ck, c->me, key, &verm[k], c->err,
		    sizeof(c->err));
		if (rv == KV_OK)
			c->res.nok++;
		else if (rv == KV_EMAYBE)
			c->res.nmaybe++;
		else
			return; /* c->err says why */
	}
}

void kvt_check_put_concurrent(struct kvt *t, struct kvt_clerk *ck,
    const char *key, const struct kvt_res *res, int n, struct kvt_res *acc,
    bool reliable)
{
	uint64_t ver = 0;
	int rv = kvt_get(ck, key, NULL, &ver);

	if (rv != KV_OK && rv != KV_ENOKEY)
		fail_msg("[%s] CheckPutConcurrent: Get(%s): %s", t->name, key,
		    clerk_strerror(rv));
	for (int i = 0; i < n; i++) {
		acc->nok += res[i].nok;
		acc->nmaybe += res[i].nmaybe;
	}
	print_message("[%s] %s: version %" PRIu64 ", clients %" PRIu64
	              " ok + %" PRIu64 " maybe\n",
	    t->name, key, ver, acc->nok, acc->nmaybe);
	if (reliable && ver != acc->nok)
		fail_msg("[%s] wrong number of puts: server %" PRIu64
		         " clients ok %" PRIu64,
		    t->name, ver, acc->nok);
	if (!reliable && ver > acc->nok + acc->nmaybe)
		fail_msg("[%s] wrong number of puts: server %" PRIu64
		         " > clients ok+maybe %" PRIu64,
		    t->name, ver, acc->nok + acc->nmaybe);
	/* Beyond the lab: puts answered OK all applied, whatever the
	 * network did. */
	if (ver < acc->nok)
		fail_msg("[%s] lost puts: server %" PRIu64
		         " < clients ok %" PRIu64,
		    t->name, ver, acc->nok);
}

/* ------------------------------------------------------------------ */
/* faults                                                               */
/* ------------------------------------------------------------------ */

struct kvt_partitioner {
	struct kvt *t;
	atomic_bool stop;
	pthread_t tid;
	int errors;
	unsigned rounds;
};

static void *partitioner_main(void *arg)
{
	struct kvt_partitioner *p = arg;
	struct harness *h = p->t->h;
	int n = harness_n(h);

	while (!atomic_load(&p->stop)) {
		int group[HARNESS_MAX];
		uint64_t until;

		for (int i = 0; i < n; i++)
			group[i] = (int)kvt_rand(p->t, 2);
		if (harness_partition(h, group) != 0)
			p->errors++;
		p->rounds++;
		/* ElectionTimeout + 0..199 ms, in steps so stop is prompt. */
		until = harness_now_ms() + 1000 + kvt_rand(p->t, 200);
		while (!atomic_load(&p->stop) && harness_now_ms() < until)
			harness_sleep_ms(20);
	}
	return NULL;
}

struct kvt_partitioner *kvt_partitioner_start(struct kvt *t)
{
	struct kvt_partitioner *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->t = t;
	atomic_init(&p->stop, false);
	assert_null(t->live_part);
	assert_int_equal(pthread_create(&p->tid, NULL, partitioner_main, p), 0);
	t->live_part = p;
	return p;
}

/* Stop and join the partitioner, free it; returns its errors. */
static int partitioner_join(struct kvt_partitioner *p)
{
	int errors;

	atomic_store(&p->stop, true);
	pthread_join(p->tid, NULL);
	p->t->live_part = NULL;
	errors = p->errors;
	free(p);
	return errors;
}

/* A test that failed while its threads ran (kvt_free): stop them before
 * the harness goes, they use it. */
static void stop_leftover_threads(struct kvt *t)
{
	if (t->live_part != NULL)
		(void)partitioner_join(t->live_part);
	while (t->live_sets != NULL) {
		struct kvt_clients *cs = t->live_sets;

		t->live_sets = cs->next;
		clients_join(cs);
		free(cs->c);
		free(cs);
	}
}

void kvt_partitioner_stop(struct kvt_partitioner *p)
{
	int errors = partitioner_join(p);

	/* A member that cannot be told its faults would leave the test
	 * running a different schedule than it believes. */
	assert_int_equal(errors, 0);
}

void kvt_heal(struct kvt *t, unsigned settle_ms)
{
	assert_int_equal(harness_heal(t->h), 0);
	harness_sleep_ms(settle_ms);
}

void kvt_crash_restart(struct kvt *t)
{
	harness_kill_all(t->h, SIGKILL);
	/* The lab sleeps ElectionTimeout here because its Shutdown is not
	 * instantaneous; harness_kill_all() returns once every process is
	 * reaped, so a short pause is enough. */
	harness_sleep_ms(100);
	if (harness_restart_all(t->h) != 0)
		fail_msg("[%s] a member did not restart", t->name);
}

/* ------------------------------------------------------------------ */
/* checks                                                               */
/* ------------------------------------------------------------------ */

void kvt_check_linearizable(struct kvt *t, const char *what)
{
	kvt_check_history(t, t->hist, what);
}

void kvt_check_history(struct kvt *t, struct linz_history *h, const char *what)
{
	char name[160];
	uint64_t t0 = history_now_ns();
	enum linz_verdict v;
	double s;

	snprintf(name, sizeof(name), "%s-%s", t->name, what);
	v = history_check(h, LINZ_MODEL_STRICT, KVT_LINZ_TIMEOUT_S, name);
	s = (double)(history_now_ns() - t0) / 1e9;
	t->nchecks++;
	t->check_s += s;
	if (s > t->check_max_s)
		t->check_max_s = s;
	if (v == LINZ_UNKNOWN) {
		t->nunknown++;
		print_message("[%s] WARNING: linearizability check of %zu ops "
		              "timed out after %.0f s: history NOT verified\n",
		    name, linz_history_len(h), KVT_LINZ_TIMEOUT_S);
	}
	if (v == LINZ_ILLEGAL)
		fail_msg("[%s] history is not linearizable", name);
}

void kvt_check_raft_state(struct kvt *t, uint64_t limit)
{
	for (int i = 0; i < harness_n(t->h); i++) {
		struct cproto_status st;

		if (!harness_running(t->h, i))
			continue;
		if (harness_status(t->h, i, &st) != 0)
			fail_msg("[%s] STATUS of member %d failed", t->name, i);
		if (st.log_bytes > limit)
			fail_msg("[%s] logs were not trimmed: member %d has "
			         "%" PRIu64 " > %" PRIu64
			         " bytes (snapshot index %" PRIu64
			         ", last index %" PRIu64 ")",
			    t->name, i, st.log_bytes, limit, st.snap_index,
			    st.last_index);
	}
}

void kvt_check_no_snapshot(struct kvt *t)
{
	for (int i = 0; i < harness_n(t->h); i++) {
		struct cproto_status st;

		if (!harness_running(t->h, i))
			continue;
		if (harness_status(t->h, i, &st) != 0)
			fail_msg("[%s] STATUS of member %d failed", t->name, i);
		if (st.snap_index != 0 || kvt_snapshot_bytes(t, i) != 0)
			fail_msg("[%s] member %d took a snapshot (index "
			         "%" PRIu64 ") with maxraftstate -1",
			    t->name, i, st.snap_index);
	}
}

uint64_t kvt_snapshot_bytes(struct kvt *t, int i)
{
	const char *dir = harness_data_dir(t->h, i);
	char best[300] = "", path[4400];
	struct dirent *e;
	struct stat sb;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0;
	/* snap-<20-digit index>.snap: the newest sorts last. */
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);

		if (strncmp(e->d_name, "snap-", 5) == 0 && l > 5 &&
		    strcmp(e->d_name + l - 5, ".snap") == 0 &&
		    strcmp(e->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", e->d_name);
	}
	closedir(d);
	if (best[0] == '\0')
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, best);
	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

int kvt_must_leader(struct kvt *t)
{
	int l = harness_leader(t->h, 10000);

	if (l == -2)
		fail_msg("[%s] two leaders in one term", t->name);
	if (l < 0)
		fail_msg("[%s] no leader within 10 s", t->name);
	return l;
}

uint64_t kvt_rss_kib(struct kvt *t, int i)
{
	char path[64], line[256];
	pid_t pid = harness_pid(t->h, i);
	uint64_t kib = 0;
	FILE *f;

	if (pid == 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %" SCNu64, &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ------------------------------------------------------------------ */
/* the kvraft drivers                                                   */
/* ------------------------------------------------------------------ */

void kvt_generic_test(void **state, const struct kvt_generic *g)
{
	struct kvt_options o;
	struct kvt_res acc = { 0, 0 }, *rs;
	struct kvt_clerk *ck;
	struct kvt *t;
	bool randomkeys = g->randomkeys;
	/* The lab's IsReliable(): an answer can only be lost when the
	 * network is unreliable or servers crash or are partitioned. */
	bool reliable = !g->unreliable && !g->crash && !g->partitions;

	kvt_options_defaults(&o);
	o.name = g->name;
	o.nservers = g->nservers;
	o.unreliable = g->unreliable;
	o.max_raft_state = g->maxraftstate;
	t = kvt_new(state, &o);
	ck = kvt_clerk_new(t);
	assert_non_null(ck);
	rs = calloc((size_t)g->nclients + 1, sizeof(*rs));
	assert_non_null(rs);
	for (int it = 0; it < g->niter; it++) {
		struct kvt_clients *cs;
		struct kvt_partitioner *p = NULL;
		struct kvt_res tot;
		size_t ops0 = kvt_nops(t);
		char what[32];

		cs = kvt_clients_start(t, g->nclients, kvt_one_client_put,
		    &randomkeys);
		if (g->partitions && g->period_ms > 1000) {
			/* Let the clients work undisturbed for a while. */
			harness_sleep_ms(1000);
			p = kvt_partitioner_start(t);
			harness_sleep_ms(g->period_ms - 1000);
		} else {
			harness_sleep_ms(g->period_ms);
			if (g->partitions)
				p = kvt_partitioner_start(t);
		}
		/* As the lab: the partitioner stops and the network heals
		 * before the clients are waited for (a request sent to a
		 * minority returns once that member learns of the new term),
		 * so no thread still runs when a check fails. */
		if (p) {
			kvt_partitioner_stop(p);
			kvt_heal(t, 1000);
		}
		tot = kvt_clients_stop(cs, rs);
		print_message("[%s] iteration %d: %zu ops, %" PRIu64
		              " puts ok, %" PRIu64 " maybe\n",
		    t->name, it, kvt_nops(t) - ops0, tot.nok, tot.nmaybe);
		if (!randomkeys)
			kvt_check_put_concurrent(t, ck, "k", rs, g->nclients,
			    &acc, reliable);
		snprintf(what, sizeof(what), "iter%d", it);
		kvt_check_linearizable(t, what);
		if (g->crash)
			kvt_crash_restart(t);
		if (g->maxraftstate > 0)
			kvt_check_raft_state(t, 8 * (uint64_t)g->maxraftstate);
		else
			kvt_check_no_snapshot(t);
	}
	free(rs);
	kvt_clerk_free(ck);
	kvt_finish(t);
}

#define SPEED_OPS 1000

void kvt_generic_test_speed(void **state, const char *name, int nservers,
    int64_t maxraftstate)
{
	struct kvt_options o;
	struct kvt_clerk *ck;
	struct kvt *t;
	uint64_t t0, t1, ver = 0;
	int rv;

	kvt_options_defaults(&o);
	o.name = name;
	o.nservers = nservers;
	o.max_raft_state = maxraftstate;
	t = kvt_new(state, &o);
	ck = kvt_clerk_new(t);
	assert_non_null(ck);
	/* Wait until a first op completes: a leader serves requests. */
	rv = kvt_get(ck, "x", NULL, NULL);
	if (rv != KV_ENOKEY)
		fail_msg("Get(x): %s", clerk_strerror(rv));
	t0 = history_now_ns();
	for (int i = 0; i < SPEED_OPS; i++) {
		char v[16];

		snprintf(v, sizeof(v), "%d", i);
		rv = kvt_put(ck, "k", v, (uint64_t)i);
		if (rv != KV_OK)
			fail_msg("Put %d: %s", i, clerk_strerror(rv));
	}
	t1 = history_now_ns();
	rv = kvt_get(ck, "k", NULL, &ver);
	if (rv != KV_OK)
		fail_msg("Get(k): %s", clerk_strerror(rv));
	if (ver != SPEED_OPS)
		fail_msg("Get too few ops %" PRIu64, ver);
	/* The lab fails above 100 ms / 3 per op; tests here never assert
	 * speed (bench/ does), so this is a report. */
	print_message("[%s] %d puts in %.2f s: %.2f ms/op (the lab's bound: "
	              "33.3 ms/op)\n",
	    name, SPEED_OPS, (double)(t1 - t0) / 1e9,
	    (double)(t1 - t0) / 1e6 / SPEED_OPS);
	if (maxraftstate > 0)
		kvt_check_raft_state(t, 8 * (uint64_t)maxraftstate);
	else
		kvt_check_no_snapshot(t);
	kvt_check_linearizable(t, "end");
	kvt_clerk_free(ck);
	kvt_finish(t);
}
