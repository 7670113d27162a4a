/*
 * linz.c - linearizability checker: histories, linz_check(), reports.
 *
 * Storage.  Keys and values are interned in one string table: equal bytes
 * get equal ids, so model states compare by integer and a Get answer that
 * was never written simply never matches a state.  Id 0 is "" (the lab
 * model's initial value).  Operations are stored as struct rec.
 *
 * Checking.  The operations are grouped by key (in order of the key's
 * first appearance), each key's are sorted as linz_search.c wants them
 * (call order, never-returning ones last) and searched one key after
 * the other under one deadline.  The first illegal key is explained from
 * the deepest dead end its search recorded.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/lib/linz_int.h"

/* Report shape: operations of the prefix shown, bytes of a value shown. */
#define REPORT_PREFIX_OPS 10
#define REPORT_MAX_BYTES 40
#define REPORT_MAX_STUCK 12
#define REPORT_MAX_KEYS 10

/* ----------------------------------------------------------------------
 * allocation (test code: out of memory aborts)
 * ---------------------------------------------------------------------- */

void *linz__xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL) {
		fprintf(stderr, "linz: out of memory (%zu bytes)\n", n);
		abort();
	}
	return p;
}

void *linz__xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL) {
		fprintf(stderr, "linz: out of memory (%zu x %zu bytes)\n", n,
		    size);
		abort();
	}
	return p;
}

void *linz__xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL) {
		fprintf(stderr, "linz: out of memory (%zu bytes)\n", n);
		abort();
	}
	return p;
}

uint64_t linz__mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t hash_bytes(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
	uint64_t w;

	for (; len >= 8; b += 8, len -= 8) {
		memcpy(&w, b, 8);
		h = (h ^ linz__mix64(w)) * 0x100000001b3ULL;
	}
	w = 0;
	memcpy(&w, b, len);
	return linz__mix64(h ^ w);
}

uint64_t linz__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ----------------------------------------------------------------------
 * string table
 * ---------------------------------------------------------------------- */

struct str {
	char *p;
	size_t len;
	uint64_t hash;
};

struct strtab {
	struct str *v;
	uint32_t n, cap;
	uint32_t *slots; /* ids, UINT32_MAX = empty */
	size_t nslots; /* power of two */
};

static void strtab_rehash(struct strtab *t, size_t nslots)
{
	uint32_t i;

	free(t->slots);
	t->slots = linz__xmalloc(nslots * sizeof(*t->slots));
	memset(t->slots, 0xff, nslots * sizeof(*t->slots));
	t->nslots = nslots;
	for (i = 0; i < t->n; i++) {
		size_t j = t->v[i].hash & (nslots - 1);

		while (t->slots[j] != UINT32_MAX)
			j = (j + 1) & (nslots - 1);
		t->slots[j] = i;
	}
}

static uint32_t strtab_intern(struct strtab *t, const void *p, size_t len)
{
	uint64_t h = hash_bytes(p, len);
	size_t j;

	if ((size_t)t->n * 2 >= t->nslots)
		strtab_rehash(t, t->nslots ? t->nslots * 2 : 64);
	for (j = h & (t->nslots - 1); t->slots[j] != UINT32_MAX;
	     j = (j + 1) & (t->nslots - 1)) {
		const struct str *s = &t->v[t->slots[j]];

		if (s->hash == h && s->len == len &&
		    (len == 0 || memcmp(s->p, p, len) == 0))
			return t->slots[j];
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = linz__xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n].p = linz__xmalloc(len + 1);
	if (len > 0)
		memcpy(t->v[t->n].p, p, len);
	t->v[t->n].p[len] = '\0';
	t->v[t->n].len = len;
	t->v[t->n].hash = h;
	t->slots[j] = t->n;
	return t->n++;
}

static void strtab_free(struct strtab *t)
{
	uint32_t i;

	for (i = 0; i < t->n; i++)
		free(t->v[i].p);
	free(t->v);
	free(t->slots);
}

/* ----------------------------------------------------------------------
 * history
 * ---------------------------------------------------------------------- */

struct linz_history {
	pthread_mutex_t lock;
	struct strtab strs;
	struct rec *ops;
	size_t n, cap;
};

struct linz_history *linz_history_new(void)
{
	struct linz_history *h = linz__xcalloc(1, sizeof(*h));

	pthread_mutex_init(&h->lock, NULL);
	strtab_intern(&h->strs, "", 0); /* LINZ__EMPTY */
	return h;
}

void linz_history_free(struct linz_history *h)
{
	if (h == NULL)
		return;
	strtab_free(&h->strs);
	free(h->ops);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int linz_add(struct linz_history *h, const struct linz_op *op)
{
	struct rec r;

	if (op->kind < LINZ_GET || op->kind > LINZ_DEL ||
	    op->result < LINZ_RES_OK || op->result > LINZ_RES_UNKNOWN ||
	    (op->kind == LINZ_GET && op->result == LINZ_RES_ERR_MAYBE) ||
	    op->call_ns == LINZ_NEVER || op->ret_ns < op->call_ns ||
	    (op->ret_ns == LINZ_NEVER && op->result != LINZ_RES_UNKNOWN &&
	        op->result != LINZ_RES_ERR_MAYBE))
		return -EINVAL;
	memset(&r, 0, sizeof(r));
	r.client = op->client;
	r.call = op->call_ns;
	r.ret = op->result == LINZ_RES_UNKNOWN ? LINZ_NEVER : op->ret_ns;
	r.version = op->version;
	r.kind = (uint8_t)op->kind;
	r.result = (uint8_t)op->result;

	pthread_mutex_lock(&h->lock);
	r.key = strtab_intern(&h->strs, op->key, op->key_len);
	r.val = op->kind == LINZ_DEL
	    ? LINZ__EMPTY
	    : strtab_intern(&h->strs, op->value, op->value_len);
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 1024;
		h->ops = linz__xrealloc(h->ops, h->cap * sizeof(*h->ops));
	}
	h->ops[h->n++] = r;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

size_t linz_history_len(struct linz_history *h)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = h->n;
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* Caller holds h->lock (or owns h exclusively). */
static void rec_to_op(const struct linz_history *h, const struct rec *r,
    struct linz_op *op)
{
	op->client = r->client;
	op->call_ns = r->call;
	op->ret_ns = r->ret;
	op->kind = r->kind;
	op->key = h->strs.v[r->key].p;
	op->key_len = h->strs.v[r->key].len;
	op->value = h->strs.v[r->val].p;
	op->value_len = h->strs.v[r->val].len;
	op->version = r->version;
	op->result = r->result;
}

int linz_history_get(struct linz_history *h, size_t i, struct linz_op *op)
{
	int rc = -ERANGE;

	pthread_mutex_lock(&h->lock);
	if (i < h->n) {
		rec_to_op(h, &h->ops[i], op);
		rc = 0;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* ----------------------------------------------------------------------
 * printing
 * ---------------------------------------------------------------------- */

static const char *const res_names[] = {
	"OK",
	"ErrVersion",
	"ErrNoKey",
	"ErrMaybe",
	"Unknown",
};
static const char *const kind_names[] = { "get", "put", "del" };

const char *linz_res_name(int result)
{
	return result >= 0 && result <= LINZ_RES_UNKNOWN ? res_names[result]
	                                                 : NULL;
}

const char *linz_kind_name(int kind)
{
	return kind >= 0 && kind <= LINZ_DEL ? kind_names[kind] : NULL;
}

static void print_str(FILE *f, const void *p, size_t len, size_t max)
{
	const unsigned char *b = p;
	size_t i, shown = len < max ? len : max;

	fputc('"', f);
	for (i = 0; i < shown; i++) {
		if (b[i] == '"' || b[i] == '\\')
			fprintf(f, "\\%c", b[i]);
		else if (b[i] >= 0x20 && b[i] < 0x7f)
			fputc(b[i], f);
		else
			fprintf(f, "\\x%02x", b[i]);
	}
	fputc('"', f);
	if (shown < len)
		fprintf(f, "...(%zu bytes)", len);
}

void linz_op_print(const struct linz_op *op, FILE *f, size_t max_bytes)
{
	const char *kind = linz_kind_name(op->kind);
	const char *res = linz_res_name(op->result);

	fprintf(f, "%s ", kind ? kind : "?");
	print_str(f, op->key, op->key_len, max_bytes);
	if (op->kind == LINZ_PUT) {
		fputc(' ', f);
		print_str(f, op->value, op->value_len, max_bytes);
	}
	if (op->kind != LINZ_GET)
		fprintf(f, " ver=%llu", (unsigned long long)op->version);
	fprintf(f, " -> %s", res ? res : "?");
	if (op->kind == LINZ_GET && op->result != LINZ_RES_UNKNOWN) {
		fputc(' ', f);
		print_str(f, op->value, op->value_len, max_bytes);
		fprintf(f, " ver=%llu", (unsigned long long)op->version);
	}
}

/* Times relative to the first call: in ns for histories shorter than a
 * millisecond (hand-written ones), else in seconds. */
static void print_time(FILE *f, uint64_t t, uint64_t t0, bool ns)
{
	if (t == LINZ_NEVER)
		fputs("never", f);
	else if (ns)
		fprintf(f, "+%lluns", (unsigned long long)(t - t0));
	else
		fprintf(f, "+%.6fs", (double)(t - t0) / 1e9);
}

static void print_state(FILE *f, const struct linz_history *h,
    enum linz_model model, const struct mstate *st)
{
	if (model == LINZ_MODEL_STRICT && !st->exists) {
		fputs("absent", f);
		return;
	}
	print_str(f, h->strs.v[st->val].p, h->strs.v[st->val].len,
	    REPORT_MAX_BYTES);
	fprintf(f, " ver=%llu", (unsigned long long)st->version);
}

static void print_rec(FILE *f, const struct linz_history *h,
    const struct rec *r, uint64_t t0, bool ns)
{
	struct linz_op op;

	rec_to_op(h, r, &op);
	fprintf(f, "#%zu c%llu [", (size_t)(r - h->ops),
	    (unsigned long long)r->client);
	print_time(f, r->call, t0, ns);
	fputs(", ", f);
	print_time(f, r->ret, t0, ns);
	fputs("] ", f);
	linz_op_print(&op, f, REPORT_MAX_BYTES);
}

/* Why @op cannot be linearized from @st (or that it could). */
static void print_why(FILE *f, const struct linz_history *h,
    enum linz_model model, const struct mstate *st, const struct rec *op)
{
	struct mstate succ[2];

	if (linz__model_step(model, st, op, succ) > 0) {
		fputs("legal here, but every continuation after it fails", f);
		return;
	}
	fputs("illegal here: ", f);
	if (op->kind == LINZ_GET) {
		fputs("the state is ", f);
		print_state(f, h, model, st);
	} else if (model == LINZ_MODEL_LAB) {
		if (op->result == LINZ_RES_ERR_NOKEY)
			fputs("the lab model never answers ErrNoKey to a "
			      "Put/Delete",
			    f);
		else
			fprintf(f,
			    "the state has ver=%llu, so the answer "
			    "would be %s",
			    (unsigned long long)st->version,
			    op->version == st->version ||
			            (op->kind == LINZ_PUT &&
			                op->version == LINZ_ANY_VERSION)
			        ? "OK"
			        : "ErrVersion");
	} else {
		fputs("the state is ", f);
		print_state(f, h, model, st);
		fprintf(f, ", so the answer would be %s",
		    linz_res_name(linz__strict_answer(st, op)));
	}
}

/* ----------------------------------------------------------------------
 * checking a whole history
 * ---------------------------------------------------------------------- */

struct check {
	struct linz_history *h;
	enum linz_model model;
	struct linz_result *res;
	uint64_t t0; /* earliest call, for reports */
	bool ns; /* print times in ns (short history) */
	size_t max_bytes; /* per-key cache limit */
	FILE *report;
	char *report_buf;
	size_t report_len;
};

static const char *model_name(enum linz_model m)
{
	return m == LINZ_MODEL_LAB ? "lab" : "strict";
}

static void print_key(FILE *f, const struct linz_history *h, uint32_t key)
{
	print_str(f, h->strs.v[key].p, h->strs.v[key].len, REPORT_MAX_BYTES);
}

static void set_result_key(struct check *c, uint32_t key)
{
	const struct str *k = &c->h->strs.v[key];

	free(c->res->key);
	c->res->key = linz__xmalloc(k->len + 1);
	memcpy(c->res->key, k->p, k->len + 1);
	c->res->key_len = k->len;
}

/* Explain the first illegal key: fill prefix/stuck and write the text. */
static void explain(struct check *c, const struct search *s, uint32_t key)
{
	const struct linz_history *h = c->h;
	struct linz_result *res = c->res;
	FILE *f = c->report;
	uint32_t i, from;

	set_result_key(c, key);
	if (!s->failed) {
		/* Every branch was cut by a reduction; none reached a dead
		 * end of its own (not expected to happen). */
		fputs("key ", f);
		print_key(f, h, key);
		fputs(": not linearizable (no dead end recorded)\n", f);
		return;
	}
	res->nprefix = s->best_depth;
	res->prefix = linz__xmalloc((s->best_depth + 1) * sizeof(*res->prefix));
	for (i = 0; i < s->best_depth; i++)
		res->prefix[i] = (size_t)(s->ops[s->best_ids[i]] - h->ops);
	res->nstuck = s->nbest_stuck;
	res->stuck = linz__xmalloc((s->nbest_stuck + 1) * sizeof(*res->stuck));
	for (i = 0; i < s->nbest_stuck; i++)
		res->stuck[i] = (size_t)(s->ops[s->best_stuck[i]] - h->ops);

	fputs("key ", f);
	print_key(f, h, key);
	fprintf(f,
	    ": not linearizable (%s model), %u operations on this "
	    "key\n",
	    model_name(c->model), s->n);
	from = s->best_depth > REPORT_PREFIX_OPS
	    ? s->best_depth - REPORT_PREFIX_OPS
	    : 0;
	fprintf(f, "  longest linearizable prefix found: %u operations",
	    s->best_depth);
	if (from > 0)
		fprintf(f, " (the first %u not shown)", from);
	fputs(s->best_depth > 0 ? "; state after each:\n" : "\n", f);
	for (i = from; i < s->best_depth; i++) {
		fputs("    ", f);
		print_rec(f, h, s->ops[s->best_ids[i]], c->t0, c->ns);
		fputs("\n        => ", f);
		print_state(f, h, c->model, &s->best_after[i]);
		fputc('\n', f);
	}
	fputs("  state after the prefix: ", f);
	print_state(f, h, c->model, &s->best_state);
	fputs("\n  none of these can be linearized next:\n", f);
	for (i = 0; i < s->nbest_stuck && i < REPORT_MAX_STUCK; i++) {
		const struct rec *r = s->ops[s->best_stuck[i]];

		fputs("    ", f);
		print_rec(f, h, r, c->t0, c->ns);
		fputs("\n        ", f);
		print_why(f, h, c->model, &s->best_state, r);
		fputc('\n', f);
	}
	if (s->nbest_stuck > REPORT_MAX_STUCK)
		fprintf(f, "    ... and %u more\n",
		    s->nbest_stuck - REPORT_MAX_STUCK);
	fprintf(f, "  #%zu returned at ", res->stuck[0]);
	print_time(f, s->ops[s->best_stuck[0]]->ret, c->t0, c->ns);
	fputs(", so it had to take effect before that.\n", f);
}

/* Group the operations by key; returns per-key arrays in @byk/@starts. */
static uint32_t partition(struct check *c, const struct rec ***byk_out,
    size_t **starts_out)
{
	struct linz_history *h = c->h;
	uint32_t *keyidx = linz__xmalloc(h->strs.n * sizeof(*keyidx));
	uint32_t nkeys = 0, k;
	size_t i, *starts, *fill;
	const struct rec **byk;

	memset(keyidx, 0xff, h->strs.n * sizeof(*keyidx));
	for (i = 0; i < h->n; i++) {
		if (keyidx[h->ops[i].key] == UINT32_MAX)
			keyidx[h->ops[i].key] = nkeys++;
	}
	starts = linz__xcalloc((size_t)nkeys + 1, sizeof(*starts));
	fill = linz__xcalloc((size_t)nkeys + 1, sizeof(*fill));
	for (i = 0; i < h->n; i++) {
		/* A Get with no answer constrains nothing. */
		if (h->ops[i].kind == LINZ_GET &&
		    h->ops[i].result == LINZ_RES_UNKNOWN)
			continue;
		starts[keyidx[h->ops[i].key] + 1]++;
	}
	for (k = 0; k < nkeys; k++)
		starts[k + 1] += starts[k];
	memcpy(fill, starts, ((size_t)nkeys + 1) * sizeof(*fill));
	byk = linz__xmalloc((starts[nkeys] + 1) * sizeof(*byk));
	for (i = 0; i < h->n; i++) {
		if (h->ops[i].kind == LINZ_GET &&
		    h->ops[i].result == LINZ_RES_UNKNOWN)
			continue;
		byk[fill[keyidx[h->ops[i].key]]++] = &h->ops[i];
	}
	free(fill);
	free(keyidx);
	c->res->nkeys = nkeys;
	*byk_out = byk;
	*starts_out = starts;
	return nkeys;
}

/*
 * Local ids: by call time, except that operations that never returned
 * come after all others.  The finite ones are linearized roughly in id
 * order, which keeps the cache's bitset windows short (see cache_add());
 * the open-ended ones may stay pending to the end, so they get their own
 * small bitset instead of holding the window open.
 */
static int rec_call_cmp(const void *pa, const void *pb)
{
	const struct rec *a = *(const struct rec *const *)pa;
	const struct rec *b = *(const struct rec *const *)pb;

	if ((a->ret == LINZ_NEVER) != (b->ret == LINZ_NEVER))
		return a->ret == LINZ_NEVER ? 1 : -1;
	if (a->call != b->call)
		return a->call < b->call ? -1 : 1;
	return a < b ? -1 : a > b;
}

static void check_all(struct check *c, double timeout_s)
{
	struct linz_result *res = c->res;
	const struct rec **byk;
	size_t *starts, i;
	uint32_t nkeys, k;
	uint64_t deadline = 0;
	bool explained = false;

	if (timeout_s > 0)
		deadline = linz__now_ns() + (uint64_t)(timeout_s * 1e9);
	c->t0 = LINZ_NEVER;
	for (i = 0; i < c->h->n; i++)
		c->t0 = c->h->ops[i].call < c->t0 ? c->h->ops[i].call : c->t0;
	c->ns = true;
	for (i = 0; i < c->h->n; i++) {
		if (c->h->ops[i].ret != LINZ_NEVER &&
		    c->h->ops[i].ret - c->t0 >= 1000000)
			c->ns = false;
	}
	nkeys = partition(c, &byk, &starts);
	for (k = 0; k < nkeys; k++) {
		const struct rec **ops = byk + starts[k];
		uint32_t n = (uint32_t)(starts[k + 1] - starts[k]);
		struct search s;
		enum linz_verdict v;

		if (n == 0)
			continue;
		if (deadline != 0 && linz__now_ns() >= deadline) {
			if (res->nkeys_unknown == 0 && !explained)
				set_result_key(c, ops[0]->key);
			res->nkeys_unknown += nkeys - k;
			if (res->gave_up == NULL)
				res->gave_up = "timeout";
			break;
		}
		qsort(ops, n, sizeof(*ops), rec_call_cmp);
		linz__search_init(&s, c->model, ops, n, deadline, c->max_bytes);
		v = linz__search_run(&s);
		res->nconfigs += s.cache.count;
		if (v == LINZ_ILLEGAL) {
			if (res->nkeys_illegal++ == 0) {
				explain(c, &s, ops[0]->key);
				explained = true;
			} else if (res->nkeys_illegal <= REPORT_MAX_KEYS) {
				fputs("also not linearizable: key ", c->report);
				print_key(c->report, c->h, ops[0]->key);
				fputc('\n', c->report);
			}
		} else if (v == LINZ_UNKNOWN) {
			if (res->nkeys_unknown++ == 0 && !explained)
				set_result_key(c, ops[0]->key);
			if (res->gave_up == NULL)
				res->gave_up = s.gave_up;
		}
		linz__search_free(&s);
	}
	free(byk);
	free(starts);
}

/* Per-key cache limit: $RAFTKV_LINZ_MAX_MB or LINZ_DEFAULT_MAX_MB. */
static size_t max_bytes(void)
{
	const char *env = getenv("RAFTKV_LINZ_MAX_MB");
	unsigned long long mb = LINZ_DEFAULT_MAX_MB;

	if (env != NULL && *env != '\0')
		mb = strtoull(env, NULL, 10);
	return (size_t)mb << 20;
}

enum linz_verdict linz_check(struct linz_history *h, enum linz_model model,
    double timeout_s, struct linz_result *res)
{
	struct linz_result local;
	struct check c;
	uint64_t start = linz__now_ns();

	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof(*res));
	res->model = model;
	memset(&c, 0, sizeof(c));
	c.h = h;
	c.model = model;
	c.res = res;
	c.max_bytes = max_bytes();
	c.report = open_memstream(&c.report_buf, &c.report_len);
	if (c.report == NULL) {
		fprintf(stderr, "linz: open_memstream failed\n");
		abort();
	}

	pthread_mutex_lock(&h->lock);
	res->nops = h->n;
	check_all(&c, timeout_s);
	pthread_mutex_unlock(&h->lock);

	fclose(c.report);
	res->verdict = res->nkeys_illegal > 0 ? LINZ_ILLEGAL
	    : res->nkeys_unknown > 0          ? LINZ_UNKNOWN
	                                      : LINZ_OK;
	if (res->verdict == LINZ_ILLEGAL) {
		res->report = c.report_buf;
	} else {
		free(c.report_buf);
		if (res->verdict == LINZ_OK) {
			free(res->key);
			res->key = NULL;
			res->key_len = 0;
		}
	}
	res->elapsed_s = (double)(linz__now_ns() - start) / 1e9;
	if (res == &local) {
		enum linz_verdict v = local.verdict;

		linz_result_close(&local);
		return v;
	}
	return res->verdict;
}

void linz_result_print(const struct linz_result *res, FILE *f)
{
	static const char *const names[] = { "OK", "ILLEGAL", "UNKNOWN" };

	fprintf(f,
	    "linearizability (%s model): %s -- %zu operations, %zu "
	    "keys, %zu configurations, %.3f s\n",
	    model_name(res->model), names[res->verdict], res->nops, res->nkeys,
	    res->nconfigs, res->elapsed_s);
	if (res->verdict == LINZ_ILLEGAL) {
		if (res->nkeys_illegal > 1)
			fprintf(f,
			    "%zu keys are not linearizable; the first:\n",
			    res->nkeys_illegal);
		if (res->report != NULL)
			fputs(res->report, f);
		if (res->nkeys_unknown > 0)
			fprintf(f, "(%zu keys undecided: %s)\n",
			    res->nkeys_unknown, res->gave_up);
	} else if (res->verdict == LINZ_UNKNOWN) {
		fprintf(f,
		    "*** WARNING: linearizability NOT DECIDED: the "
		    "check gave up (%s) with %zu of %zu keys undecided",
		    res->gave_up ? res->gave_up : "?", res->nkeys_unknown,
		    res->nkeys);
		if (res->key != NULL) {
			fputs(" (first: ", f);
			print_str(f, res->key, res->key_len, REPORT_MAX_BYTES);
			fputc(')', f);
		}
		fputs(" ***\n", f);
	}
}

void linz_result_close(struct linz_result *res)
{
	free(res->key);
	free(res->prefix);
	free(res->stuck);
	free(res->report);
	memset(res, 0, sizeof(*res));
}
