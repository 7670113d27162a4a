/*
 * kvapp.c - glue between the member runtime and the KV state machine
 * (see kvapp.h).  Reads run on the client endpoint's workers, or a GET
 * of a small value on the member's loop, while the applier applies:
 * kv.c's reader/writer lock makes that safe.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/kv.h"
#include "kv/kvapp.h"
#include "kv/query.h"
#include "raft/client/cluster.h"
#include "raft/le.h"
#include "raft/util/clock.h"
#include "raft/util/logging.h"

static int encode_result(const struct kv_result *r, void **out, size_t *len)
{
	size_t n = kv_result_size(r);
	void *b = malloc(n);
	long w;

	if (b == NULL)
		return -ENOMEM;
	w = kv_result_encode(r, b, n);
	if (w < 0) {
		free(b);
		return (int)w;
	}
	*out = b;
	*len = (size_t)w;
	return 0;
}

static int app_apply(void *arg, raft_index index, const void *cmd, size_t len,
    void **reply, size_t *reply_len)
{
	struct kv_result res;
	int rv = kv_apply(arg, index, cmd, len, &res);

	if (rv != 0)
		return rv;
	rv = encode_result(&res, reply, reply_len);
	kv_result_release(&res);
	return rv;
}

static int app_snapshot(void *arg, void **data, size_t *len)
{
	return kv_snapshot(arg, data, len);
}

static int app_snapshot_begin(void *arg, void **view)
{
	return kv_snapshot_begin(arg, view);
}

static int app_snapshot_finish(void *arg, void *view, void **data, size_t *len)
{
	return kv_snapshot_finish(arg, view, data, len);
}

static int app_restore(void *arg, const void *data, size_t len)
{
	return kv_restore(arg, data, len);
}

static int app_prepare(void *arg, uint8_t *cmd, size_t len)
{
	struct timespec ts;
	uint64_t ns;

	(void)arg;
	/* A short (malformed) command is left alone: the state machine
	 * will say so. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	kv_cmd_set_time_ns(cmd, len, (int64_t)ns);
	return 0;
}

/* A GET of a value of at most @max bytes; -EFBIG (nothing answered) for a
 * bigger one.  A value over what a result carries (KV_VALUE_MAX) is
 * answered ErrTooBig with its attributes (query.h: read it in ranges). */
static int query_get(struct kv *kv, const struct query *q, uint64_t max,
    void **out, size_t *len)
{
	struct kv_result r;
	int rv;

	kv_result_init(&r);
	rv = kv_get_max(kv, q->key, q->keylen,
	    max < KV_VALUE_MAX ? max : KV_VALUE_MAX, &r.attr, &r.value,
	    &r.value_len);
	if (rv == -ENOENT) {
		r.status = KV_ENOKEY;
		rv = 0;
	} else if (rv == -EFBIG && max > KV_VALUE_MAX) {
		r.status = KV_ETOOBIG; /* r.attr: kv_get_max() stored it */
		rv = 0;
	}
	if (rv == 0)
		rv = encode_result(&r, out, len);
	free(r.value);
	return rv;
}

/* QUERY_READ: a range of a value, copied straight from the state into the
 * answer (never the whole value). */
static int query_read(struct kv *kv, const struct query *q, void **out,
    size_t *len)
{
	struct kv_result r;
	unsigned char *buf;
	long n;
	int rv;

	kv_result_init(&r);
	buf = malloc(q->length > 0 ? q->length : 1);
	if (buf == NULL)
		return -ENOMEM;
	n = kv_read(kv, q->key, q->keylen, q->offset, buf, q->length, &r.attr);
	if (n == -ENOENT) {
		memset(&r.attr, 0, sizeof(r.attr));
		r.status = KV_ENOKEY;
	} else if (n < 0) {
		free(buf);
		return (int)n;
	} else {
		r.value = n > 0 ? buf : NULL;
		r.value_len = (size_t)n;
	}
	rv = encode_result(&r, out, len);
	free(buf);
	return rv;
}

struct list_buf {
	uint8_t *b;
	size_t len;
	size_t cap;
	uint32_t n;
	int err;
};

static int list_cb(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	struct list_buf *lb = arg;
	size_t need = 4 + keylen + QUERY_ATTR_LEN;

	(void)value;
	if (lb->len + need > QUERY_LIST_BYTES_MAX && lb->n > 0)
		return 1; /* page full: the client continues after the last */
	if (lb->len + need > lb->cap) {
		size_t cap = lb->cap * 2 + need;
		uint8_t *p = realloc(lb->b, cap);

		if (p == NULL) {
			lb->err = -ENOMEM;
			return 1;
		}
		lb->b = p;
		lb->cap = cap;
	}
	le_put32(lb->b + lb->len, (uint32_t)keylen);
	memcpy(lb->b + lb->len + 4, key, keylen);
	query_put_attr(lb->b + lb->len + 4 + keylen, attr);
	lb->len += need;
	lb->n++;
	return 0;
}

static int query_list(struct kv *kv, const struct query *q, void **out,
    size_t *len)
{
	struct list_buf lb = { 0 };
	uint32_t limit = q->limit == 0 || q->limit > QUERY_LIST_PAGE_MAX
	    ? QUERY_LIST_PAGE_MAX
	    : q->limit;
	long rv;

	lb.cap = 4096;
	lb.b = malloc(lb.cap);
	if (lb.b == NULL)
		return -ENOMEM;
	lb.len = 6; /* version, status, count */
	rv = kv_list(kv, q->key, q->keylen, q->afterlen ? q->after : NULL,
	    q->afterlen, limit, q->delim, list_cb, &lb);
	if (rv < 0 || lb.err) {
		free(lb.b);
		return lb.err ? lb.err : (int)rv;
	}
	lb.b[0] = QUERY_VERSION;
	lb.b[1] = KV_OK;
	le_put32(lb.b + 2, lb.n);
	*out = lb.b;
	*len = lb.len;
	return 0;
}

static int query_usage(struct kv *kv, void **out, size_t *len)
{
	uint8_t *b = malloc(QUERY_USAGE_LEN);
	uint64_t used, quota;

	if (b == NULL)
		return -ENOMEM;
	kv_usage(kv, &used, &quota);
	b[0] = QUERY_VERSION;
	b[1] = KV_OK;
	le_put64(b + 2, used);
	le_put64(b + 10, quota);
	le_put64(b + 18, kv_key_count(kv));
	*out = b;
	*len = QUERY_USAGE_LEN;
	return 0;
}

/* GETLK and LOCKWAIT: the query holds an encoded GETLK or LOCK command
 * (query.h); the answer is a kv_result. */
static int query_lock(struct kv *kv, const struct query *q, void **out,
    size_t *len)
{
	struct kv_result r;
	struct kv_cmd c;
	int rv;

	if (kv_cmd_decode(q->key, q->keylen, &c) != 0 ||
	    c.type != (q->kind == QUERY_GETLK ? KV_OP_GETLK : KV_OP_LOCK))
		return -EBADMSG;
	if (q->kind == QUERY_GETLK)
		rv = kv_getlk(kv, c.client_id, &c.op, &r);
	else
		rv = kv_lock_wait(kv, c.client_id, &c.op,
		    q->limit > QUERY_LOCKWAIT_MAX_MS ? QUERY_LOCKWAIT_MAX_MS
		                                     : (int)q->limit,
		    &r);
	if (rv == 0)
		rv = encode_result(&r, out, len);
	return rv;
}

static int app_query(void *arg, const void *buf, size_t len, void **out,
    size_t *out_len)
{
	struct query q;

	if (query_decode(buf, len, &q) != 0)
		return -EBADMSG;
	if (q.kind == QUERY_GET)
		return query_get(arg, &q, UINT64_MAX, out, out_len);
	if (q.kind == QUERY_READ)
		return query_read(arg, &q, out, out_len);
	if (q.kind == QUERY_USAGE)
		return query_usage(arg, out, out_len);
	if (q.kind == QUERY_GETLK || q.kind == QUERY_LOCKWAIT)
		return query_lock(arg, &q, out, out_len);
	return query_list(arg, &q, out, out_len);
}

/* A GET of a value at most this big is answered on the member's loop. */
#define QUICK_GET_MAX (64u * 1024)

static int app_query_quick(void *arg, const void *buf, size_t len, void **out,
    size_t *out_len)
{
	struct query q;
	int rv;

	if (query_decode(buf, len, &q) != 0)
		return -EAGAIN; /* a worker answers, errors included */
	if (q.kind == QUERY_READ && q.length <= QUICK_GET_MAX)
		return query_read(arg, &q, out, out_len);
	if (q.kind != QUERY_GET)
		return -EAGAIN;
	rv = query_get(arg, &q, QUICK_GET_MAX, out, out_len);
	return rv == -EFBIG ? -EAGAIN : rv;
}

/* The cluster file checks session_ttl against the default lease, and
 * lock_lease against the default TTL. */
_Static_assert(KV_LOCK_LEASE_NS == CLUSTER_LOCK_LEASE_DEFAULT_MS * 1000000ll,
    "the cluster file's default lock lease is kv.h's");
_Static_assert(KV_SESSION_TTL_NS == CLUSTER_SESSION_TTL_DEFAULT_MS * 1000000ll,
    "the cluster file's default session TTL is kv.h's");

static int app_create(void **arg, const struct cluster *cl,
    struct rsm_app *rapp, struct endpoint_app *eapp)
{
	struct kv_options opt = { .quota = cl->quota, /* 0: the default */
		.lock_lease_ns = cl->lock_lease_ms * 1000000,
		.session_ttl_ns = cl->session_ttl_ms * 1000000 };
	struct kv *kv = kv_new(&opt);

	if (kv == NULL)
		return -ENOMEM;
	rapp->arg = kv;
	rapp->apply = app_apply;
	rapp->snapshot = app_snapshot;
	rapp->snapshot_begin = app_snapshot_begin;
	rapp->snapshot_finish = app_snapshot_finish;
	rapp->restore = app_restore;
	rapp->query = app_query;
	rapp->query_quick = app_query_quick;
	eapp->arg = kv;
	eapp->prepare = app_prepare;
	*arg = kv;
	return 0;
}

static void app_destroy(void *arg)
{
	kv_free(arg);
}

/* ------------------------------------------------------------------------
 * The ticker: TICKs while leading and locks exist (kvapp.h), or while a
 * session holding files open looks dead
 * ------------------------------------------------------------------------ */

/* A session holding files open (kv.h, OPENS), as this leader saw it. */
struct holder {
	uint64_t session;
	int64_t idle_ns; /* committed idle time, last look */
	uint64_t seq; /* of its last request, last look */
	uint64_t since_ms; /* mono_ms() of its last activity seen */
};

struct holders {
	struct holder *v;
	size_t n, cap;
	bool nomem;
};

struct ticker {
	struct kv *kv;
	struct member *m;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	bool stopping;
	struct holders h; /* the thread's, while leading */
	uint64_t seen_applied; /* kv_applied_index() at the last look */
};

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Propose one TICK stamped with this (the leader's) clock. */
static void propose_tick(struct ticker *tk)
{
	struct kv_cmd c = { .type = KV_OP_TICK, .time_ns = realtime_ns() };
	uint8_t buf[64];
	long n = kv_cmd_encode(&c, buf, sizeof(buf));
	void *reply = NULL;
	size_t rlen = 0;

	if (n <= 0)
		return;
	if (rsm_submit(member_rsm(tk->m), buf, (size_t)n,
	        (int)(KV_TICK_NS / 1000000), &reply, &rlen, NULL) == 0)
		free(reply);
}

static void holder_seen(void *arg, uint64_t session, int64_t idle_ns,
    uint64_t seq)
{
	struct holders *l = arg;

	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		struct holder *nv = realloc(l->v, ncap * sizeof(*nv));

		if (nv == NULL) {
			l->nomem = true;
			return;
		}
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = (struct holder){ session, idle_ns, seq, 0 };
}

/*
 * Look at the sessions holding files open: is one idle, by this leader's
 * clock, for more than half the session TTL?  A live mount renews its
 * session a quarter of the TTL apart while it holds registrations
 * (fs/rkopen.h), so such a session is most likely dead, and its
 * registrations (which keep removed files) go only once committed time
 * moves past its TTL: the caller then makes committed time advance.
 * Activity is a new request of the session (its seq moved) or a drop of
 * its committed idle time (a retried request; election grace moves a
 * session's last activity and the committed clock together, so it leaves
 * that idle time alone, and on an idle cluster a renewal may not change
 * it either: hence the seq).  Only the leader looks; a new leader waits
 * half a TTL again.
 */
static bool holder_dead(struct ticker *tk)
{
	struct holders now = { 0 };
	uint64_t ms = mono_ms();
	uint64_t half = (uint64_t)(kv_session_ttl_ns(tk->kv) / 2000000);
	bool dead = false;
	size_t j = 0;

	kv_open_holders(tk->kv, holder_seen, &now);
	if (now.nomem) {
		free(now.v);
		return false;
	}
	for (size_t i = 0; i < now.n; i++) {
		struct holder *h = &now.v[i];

		while (j < tk->h.n && tk->h.v[j].session < h->session)
			j++;
		if (j < tk->h.n && tk->h.v[j].session == h->session &&
		    h->seq == tk->h.v[j].seq &&
		    h->idle_ns >= tk->h.v[j].idle_ns)
			h->since_ms = tk->h.v[j].since_ms; /* no activity */
		else
			h->since_ms = ms; /* new here, or active */
		dead |= ms - h->since_ms > half;
	}
	free(tk->h.v);
	tk->h = now;
	return dead;
}

static void *ticker_main(void *arg)
{
	struct ticker *tk = arg;

	pthread_mutex_lock(&tk->mu);
	while (!tk->stopping) {
		struct timespec at;
		struct node_status st;
		uint32_t held, waiting;
		uint64_t applied;

		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_nsec += (long)(KV_TICK_NS % 1000000000ll);
		at.tv_sec += (time_t)(KV_TICK_NS / 1000000000ll);
		if (at.tv_nsec >= 1000000000L) {
			at.tv_sec++;
			at.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&tk->cv, &tk->mu, &at);
		if (tk->stopping)
			break;
		pthread_mutex_unlock(&tk->mu);
		member_status(tk->m, &st);
		kv_lock_count(tk->kv, &held, &waiting);
		/* Before our own tick: it counts as something committed, so
		 * a dead holder costs one tick a second, not two. */
		applied = kv_applied_index(tk->kv);
		if (st.raft.role != RAFT_LEADER) {
			tk->h.n = 0; /* a new term looks afresh */
		} else {
			bool dead = holder_dead(tk);

			if (held + waiting > 0)
				propose_tick(tk);
			else if (dead && applied == tk->seen_applied)
				/* Nothing committed for a loop: fill the
				 * gap, so that it counts toward the dead
				 * session's TTL. */
				propose_tick(tk);
		}
		tk->seen_applied = applied;
		pthread_mutex_lock(&tk->mu);
	}
	pthread_mutex_unlock(&tk->mu);
	return NULL;
}

int kvapp_start(void *arg, struct member *m, void **run)
{
	struct ticker *tk = calloc(1, sizeof(*tk));
	pthread_condattr_t ca;

	if (tk == NULL)
		return -ENOMEM;
	tk->kv = arg;
	tk->m = m;
	pthread_mutex_init(&tk->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&tk->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&tk->thread, NULL, ticker_main, tk) != 0) {
		pthread_cond_destroy(&tk->cv);
		pthread_mutex_destroy(&tk->mu);
		free(tk);
		return -EAGAIN;
	}
	*run = tk;
	return 0;
}

void kvapp_stop(void *run)
{
	struct ticker *tk = run;

	if (tk == NULL)
		return;
	kv_lock_wait_shutdown(tk->kv); /* the endpoint's workers may join */
	pthread_mutex_lock(&tk->mu);
	tk->stopping = true;
	pthread_cond_signal(&tk->cv);
	pthread_mutex_unlock(&tk->mu);
	pthread_join(tk->thread, NULL);
	pthread_cond_destroy(&tk->cv);
	pthread_mutex_destroy(&tk->mu);
	free(tk->h.v);
	free(tk);
}

const struct member_app kvapp = {
	.name = "kv",
	.create = app_create,
	.destroy = app_destroy,
	.start = kvapp_start,
	.stop = kvapp_stop,
};
