/*
 * sim.c - deterministic discrete-event simulator for the pure Raft core.
 *
 * See sim.h for the model and the list of invariants.  Layout of this file:
 *   util      PRNG (splitmix64 -> xoshiro256**), hashes, growable arrays
 *   events    binary heap ordered by (time, seq), trace ring buffer
 *   failure   sim_fail(): seed, virtual time, trace, replay hint
 *   network   links, labrpc fault model, encode on send / decode on deliver
 *   disk      durable state + FIFO of pending writes per member
 *   mirror    our copy of each member's in-memory log (terms, chained
 *             hashes) fed from ready batches: log matching, append-only
 *   apply     the tester's apply loop (server.go) and snapshots
 *   drive     raft_ready -> handle -> raft_advance loop, post-batch checks
 *   members   crash / start / restart
 *   tester    the raft1 test.go helpers in virtual time
 *
 * Why a mirror instead of asking the core: the invariants must hold for
 * what the core *hands out* (entries to persist, entries to apply), and a
 * buggy core could report a consistent-looking status while handing out
 * something else.  After every batch the mirror is compared with
 * raft_status()/raft_term_at(), so the two views are also checked against
 * each other.
 *
 * labrpc fault model mapped onto one-way messages (6.5840-tests.md 1.4):
 * a request/response pair of labrpc is a request message plus a response
 * message here.  Reliable: a small base delay, FIFO per directed link
 * (labrpc dispatches at once; our transport is ZeroMQ over TCP).
 * Unreliable: every message is dropped with probability 10 %; requests
 * get an extra 0-26 ms delay, which reorders them.  Long reordering: a response
 * is delayed by 200 + rand[0, rand[0, 2000]] ms with probability 2/3.  A
 * message over a disabled link, or to/from a member that crashed while it
 * was in flight, is lost (labrpc's caller would get "false" eventually;
 * with one-way messages nobody waits for it).
 */
#include "tests/sim/sim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/msg.h"

/* ===================================================================== */
/* util                                                                  */
/* ===================================================================== */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return p;
}

static void *xcalloc(size_t a, size_t b)
{
	void *p = calloc(a ? a : 1, b ? b : 1);
	if (p == NULL) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return p;
}

static void *xmemdup(const void *src, size_t n)
{
	void *p = xmalloc(n);
	if (n)
		memcpy(p, src, n);
	return p;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = mix64(seed ^ (n * 0x9e3779b97f4a7c15ull));
	uint64_t v;

	while (n >= 8) {
		memcpy(&v, b, 8);
		h = rotl(h ^ (v * 0xff51afd7ed558ccdull), 29) * 0xc4ceb9fe1a85ec53ull;
		b += 8;
		n -= 8;
	}
	v = 0;
	if (n)
		memcpy(&v, b, n);
	return mix64(h ^ v ^ 0xa5a5a5a5a5a5a5a5ull);
}

static uint64_t entry_value_hash(uint8_t type, const void *data, uint32_t len)
{
	return hash_bytes(data, len, type);
}

static uint64_t chain_hash(uint64_t prev, raft_term term, uint64_t vh)
{
	return mix64(prev ^ mix64(term * 0x9e3779b97f4a7c15ull ^ vh));
}

/* Growable array helper: ensure room for @need elements of @size. */
static void grow(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 16;

	if (need <= *cap)
		return;
	while (c < need)
		c *= 2;
	*arr = xrealloc(*arr, c * size);
	memset((char *)*arr + *cap * size, 0, (c - *cap) * size);
	*cap = c;
}

static bool is_request(uint8_t t)
{
	switch (t) {
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
	case RAFT_MSG_APPEND:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_SNAPSHOT:
	case RAFT_MSG_TIMEOUT_NOW:
	case RAFT_MSG_READ_INDEX:
		return true;
	default:
		return false;
	}
}

/* ===================================================================== */
/* data structures                                                       */
/* ===================================================================== */

enum ev_kind { EV_TICK = 1, EV_DELIVER, EV_DISK, EV_CALL };

struct event {
	uint64_t t, seq;
	uint8_t kind;
	uint8_t from, to, mtype; /* member indices (0-based), message type */
	uint32_t from_inc, to_inc;
	uint8_t *buf;
	uint32_t len;
	void (*fn)(struct sim *, void *);
	void *arg;
};

/* One record of the trace ring (formatted only when printed). */
struct trace_rec {
	uint64_t t;
	uint8_t kind; /* enum ev_kind, or TR_* below */
	uint8_t a, b, mtype;
	uint64_t x, y;
};
enum { TR_CRASH = 20, TR_START, TR_LINK, TR_LEADER, TR_PROPOSE, TR_DROP,
	TR_COMPACT, TR_INSTALL, TR_NET };
#define TRACE_RING 96

/* A log entry as the durable state holds it (data owned). */
struct dentry {
	raft_term term;
	uint8_t type;
	uint32_t len;
	uint8_t *data;
};

/* An encoded message waiting for its batch to become durable. */
struct pmsg {
	uint8_t *buf;
	uint32_t len;
	uint8_t to, mtype;
};

/* One pending write (a ready batch's persist part). */
struct pwrite {
	struct pwrite *next;
	uint64_t done_at;
	bool must_persist;
	struct raft_persist_token token;
	bool hs_changed;
	struct raft_hard_state hs;
	struct dentry *ents;
	uint32_t n_ents;
	raft_index first_index;
	bool has_snap, snap_keep_suffix;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	uint64_t snap_len;
	struct pmsg *msgs;
	uint32_t n_msgs;
};

/* Our view of one entry of a member's in-memory log. */
struct ment {
	raft_term term;
	uint8_t type;
	uint64_t hash; /* chained hash of the prefix ending here */
	uint64_t cum;  /* commands (normal entries) up to here */
};

/* What is known committed at an index (applied by at least one member). */
struct gent {
	raft_term term;
	uint64_t vh;     /* value hash */
	uint64_t state;  /* chained hash of values 1..index */
	uint64_t cum;    /* commands up to here */
	raft_term cterm; /* upper bound of the term it was committed in (0:
	                    unknown): a member whose commit index covers it
	                    learned that in its current term or earlier */
	uint8_t type;
	bool set;
};

/* (index, term) -> chained hash: the log matching witness. */
struct cslot {
	raft_index index;
	raft_term term;
	uint64_t hash;
};

struct read_req {
	uint64_t ctx;
	int member;
	raft_index floor;
};

struct member {
	struct raft *r;           /* NULL when crashed */
	uint32_t inc;             /* incarnation */
	bool connected;           /* lab group flag */
	uint64_t tick_us;         /* this member's clock period */
	uint64_t paused_until;

	/* durable state */
	struct raft_hard_state hs;
	bool has_snap;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	uint64_t snap_len;
	struct dentry *log;       /* entries snap.index+1 .. */
	size_t log_n, log_cap;
	struct pwrite *wq_head, *wq_tail;
	struct pwrite *wq_batch;  /* the write of the batch being handled */
	uint64_t last_done_at;

	/* mirror of the in-memory log: entries mbase+1 .. mbase+mn */
	raft_index mbase;
	raft_term mbase_term;
	uint64_t mbase_hash, mbase_cum;
	struct ment *mlog;
	size_t mn, mcap;

	/* tester apply model */
	raft_index applied;
	uint64_t state;
	raft_index pending_compact;

	/* invariant bookkeeping for this incarnation */
	raft_index cterm_upto;    /* g[].cterm updated up to this index */
	raft_index last_commit;
	raft_term last_term;
	enum raft_role last_role;

	uint64_t rpcs_in;
	uint64_t append_rejects;
};

struct sim {
	struct sim_config cfg;
	int n;
	uint64_t now;
	uint64_t seq;
	uint64_t rng[4];
	const char *name;

	struct event **heap;
	size_t heap_n, heap_cap;
	struct event *free_ev;
	struct event *cur;        /* being handled: a failure that leaves
	                             the run mid-event leaves it to sim_free */
	struct pwrite *cur_w;     /* the same for a disk write taken off its
	                             member's queue */

	struct member m[SIM_MAX_MEMBERS];
	bool link[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS];
	/* appends carrying entries sent a->b and not yet answered */
	int inflight[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS];
	uint64_t link_last[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS]; /* FIFO */
	uint8_t drop_next[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS];  /* msg type */
	int inflight_max[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS];

	/* global invariant state */
	raft_id *leader_of;       /* term -> leader id (1-based), 0 none */
	size_t leader_cap;
	struct gent *g;           /* index -> committed knowledge */
	size_t g_cap;
	raft_index g_max;
	struct cslot *cmap;
	size_t cmap_cap, cmap_n;
	struct read_req *reads;
	size_t reads_n, reads_cap;
	uint64_t next_ctx;

	struct sim_stats st;
	struct trace_rec trace[TRACE_RING];
	uint64_t trace_n;

	sim_fail_fn fail_fn;
	void *fail_arg;
	sim_log_fn log_fn;
	void *log_arg;
	bool failing;
};

/* ===================================================================== */
/* randomness                                                            */
/* ===================================================================== */

uint64_t sim_rand(struct sim *s)
{
	uint64_t *r = s->rng;
	uint64_t out = rotl(r[1] * 5, 7) * 9;
	uint64_t t = r[1] << 17;

	r[2] ^= r[0];
	r[3] ^= r[1];
	r[1] ^= r[2];
	r[0] ^= r[3];
	r[2] ^= t;
	r[3] = rotl(r[3], 45);
	return out;
}

uint64_t sim_randn(struct sim *s, uint64_t n)
{
	return n ? sim_rand(s) % n : 0;
}

bool sim_chance(struct sim *s, uint32_t ppm)
{
	return ppm && sim_randn(s, 1000000) < ppm;
}

static uint64_t rand_range(struct sim *s, uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + sim_randn(s, hi - lo + 1);
}

uint64_t sim_seed(const struct sim *s)
{
	return s->cfg.seed;
}

/* ===================================================================== */
/* trace and failure                                                     */
/* ===================================================================== */

static void trace_fmt(const struct trace_rec *r, char *buf, size_t cap)
{
	double t = r->t / 1e6;

	switch (r->kind) {
	case EV_TICK:
		snprintf(buf, cap, "%10.6f tick    n%d", t, r->a + 1);
		break;
	case EV_DELIVER:
		snprintf(buf, cap, "%10.6f deliver n%d->n%d %s term=%" PRIu64
		    " index=%" PRIu64, t, r->a + 1, r->b + 1,
		    raft_msg_type_name(r->mtype), r->x, r->y);
		break;
	case EV_DISK:
		snprintf(buf, cap, "%10.6f durable n%d last=%" PRIu64
		    " hs_term=%" PRIu64, t, r->a + 1, r->x, r->y);
		break;
	case EV_CALL:
		snprintf(buf, cap, "%10.6f client", t);
		break;
	case TR_CRASH:
		snprintf(buf, cap, "%10.6f CRASH   n%d (lost %" PRIu64
		    " pending writes)", t, r->a + 1, r->x);
		break;
	case TR_START:
		snprintf(buf, cap, "%10.6f START   n%d term=%" PRIu64
		    " log=%" PRIu64, t, r->a + 1, r->x, r->y);
		break;
	case TR_LINK:
		snprintf(buf, cap, "%10.6f link    n%d->n%d %s", t, r->a + 1,
		    r->b + 1, r->x ? "up" : "down");
		break;
	case TR_LEADER:
		snprintf(buf, cap, "%10.6f LEADER  n%d term=%" PRIu64
		    " last=%" PRIu64, t, r->a + 1, r->x, r->y);
		break;
	case TR_PROPOSE:
		snprintf(buf, cap, "%10.6f propose n%d index=%" PRIu64
		    " term=%" PRIu64, t, r->a + 1, r->x, r->y);
		break;
	case TR_DROP:
		snprintf(buf, cap, "%10.6f drop    n%d->n%d %s", t, r->a + 1,
		    r->b + 1, raft_msg_type_name(r->mtype));
		break;
	case TR_COMPACT:
		snprintf(buf, cap, "%10.6f compact n%d index=%" PRIu64, t,
		    r->a + 1, r->x);
		break;
	case TR_INSTALL:
		snprintf(buf, cap, "%10.6f install n%d snapshot index=%" PRIu64
		    " term=%" PRIu64, t, r->a + 1, r->x, r->y);
		break;
	case TR_NET:
		snprintf(buf, cap, "%10.6f net     %s", t,
		    r->x ? "reliable" : "unreliable");
		break;
	default:
		snprintf(buf, cap, "%10.6f ?", t);
	}
}

static void trace(struct sim *s, uint8_t kind, int a, int b, uint8_t mtype,
    uint64_t x, uint64_t y)
{
	struct trace_rec *r = &s->trace[s->trace_n++ % TRACE_RING];

	r->t = s->now;
	r->kind = kind;
	r->a = (uint8_t)a;
	r->b = (uint8_t)b;
	r->mtype = mtype;
	r->x = x;
	r->y = y;
	if (s->cfg.trace && !(kind == EV_TICK && s->cfg.trace < 3)) {
		char buf[200];
		trace_fmt(r, buf, sizeof buf);
		fprintf(stderr, "[sim %" PRIu64 "] %s\n", s->cfg.seed, buf);
	}
}

#define slog sim_logf
void sim_logf(struct sim *s, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (s->log_fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	s->log_fn(s, line, s->log_arg);
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	uint64_t i, from;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	s->failing = true;
	fprintf(stderr, "\n=== SIM FAILURE%s%s: seed=%" PRIu64 " t=%.6fs\n"
	    "=== %s\n=== last events:\n", s->name ? " in " : "",
	    s->name ? s->name : "", s->cfg.seed, s->now / 1e6, what);
	from = s->trace_n > 40 ? s->trace_n - 40 : 0;
	for (i = from; i < s->trace_n; i++) {
		char buf[200];
		trace_fmt(&s->trace[i % TRACE_RING], buf, sizeof buf);
		fprintf(stderr, "    %s\n", buf);
	}
	fprintf(stderr, "=== replay: SIM_SEED=%" PRIu64 "%s%s SIM_TRACE=1 "
	    "<this binary>\n\n", s->cfg.seed, s->name ? " SIM_TEST=" : "",
	    s->name ? s->name : "");
	if (s->fail_fn)
		s->fail_fn(s, what, s->fail_arg);
	abort();
}

void sim_set_fail_hook(struct sim *s, sim_fail_fn fn, void *arg)
{
	s->fail_fn = fn;
	s->fail_arg = arg;
}

void sim_set_name(struct sim *s, const char *name)
{
	s->name = name;
}

void sim_set_log(struct sim *s, sim_log_fn fn, void *arg)
{
	s->log_fn = fn;
	s->log_arg = arg;
}

/* ===================================================================== */
/* event queue                                                           */
/* ===================================================================== */

static bool ev_less(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static struct event *ev_alloc(struct sim *s)
{
	struct event *e = s->free_ev;

	if (e)
		s->free_ev = (struct event *)e->arg;
	else
		e = xmalloc(sizeof *e);
	memset(e, 0, sizeof *e);
	return e;
}

static void ev_free(struct sim *s, struct event *e)
{
	free(e->buf);
	e->buf = NULL;
	e->arg = s->free_ev;
	s->free_ev = e;
}

static void ev_push(struct sim *s, struct event *e, uint64_t at)
{
	size_t i;

	e->t = at;
	e->seq = s->seq++;
	grow((void **)&s->heap, &s->heap_cap, s->heap_n + 1, sizeof *s->heap);
	i = s->heap_n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ev_less(e, s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static struct event *ev_pop(struct sim *s)
{
	struct event *top, *last;
	size_t i = 0, n;

	if (s->heap_n == 0)
		return NULL;
	top = s->heap[0];
	last = s->heap[--s->heap_n];
	n = s->heap_n;
	while (n) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && ev_less(s->heap[c + 1], s->heap[c]))
			c++;
		if (!ev_less(s->heap[c], last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n)
		s->heap[i] = last;
	return top;
}

/* ===================================================================== */
/* global invariant tables                                               */
/* ===================================================================== */

static struct gent *gent_at(struct sim *s, raft_index i)
{
	grow((void **)&s->g, &s->g_cap, i + 1, sizeof *s->g);
	return &s->g[i];
}

static void note_leader(struct sim *s, int i, raft_term term)
{
	raft_id id = (raft_id)i + 1;

	grow((void **)&s->leader_of, &s->leader_cap, term + 1,
	    sizeof *s->leader_of);
	s->st.checks++;
	if (s->leader_of[term] == 0) {
		s->leader_of[term] = id;
		s->st.elections++;
		return;
	}
	if (s->leader_of[term] != id)
		sim_fail(s, "election safety: n%" PRIu64 " and n%" PRIu64
		    " are both leaders of term %" PRIu64,
		    s->leader_of[term], id, term);
}

static size_t cmap_slot(const struct sim *s, raft_index index, raft_term term)
{
	return mix64(index * 0x9e3779b97f4a7c15ull ^ term) & (s->cmap_cap - 1);
}

static void cmap_rehash(struct sim *s)
{
	struct cslot *old = s->cmap;
	size_t oldcap = s->cmap_cap, i;

	s->cmap_cap = oldcap ? oldcap * 2 : 1024;
	s->cmap = xcalloc(s->cmap_cap, sizeof *s->cmap);
	for (i = 0; i < oldcap; i++) {
		size_t j;
		if (old[i].index == 0)
			continue;
		j = cmap_slot(s, old[i].index, old[i].term);
		while (s->cmap[j].index)
			j = (j + 1) & (s->cmap_cap - 1);
		s->cmap[j] = old[i];
	}
	free(old);
}

/* Find (index, term); if absent and @insert, store @hash.  Returns the
 * slot (NULL if absent and not inserted). */
static struct cslot *cmap_get(struct sim *s, raft_index index, raft_term term,
    bool insert, uint64_t hash)
{
	size_t j;

	if ((s->cmap_n + 1) * 2 > s->cmap_cap)
		cmap_rehash(s);
	j = cmap_slot(s, index, term);
	while (s->cmap[j].index) {
		if (s->cmap[j].index == index && s->cmap[j].term == term)
			return &s->cmap[j];
		j = (j + 1) & (s->cmap_cap - 1);
	}
	if (!insert)
		return NULL;
	s->cmap[j].index = index;
	s->cmap[j].term = term;
	s->cmap[j].hash = hash;
	s->cmap_n++;
	return &s->cmap[j];
}

/* Log matching: member @i holds (index, term) with chained hash @h. */
static void check_chain(struct sim *s, int i, raft_index index,
    raft_term term, uint64_t h)
{
	struct cslot *c = cmap_get(s, index, term, true, h);

	s->st.checks++;
	if (c->hash != h)
		sim_fail(s, "log matching: n%d's entry %" PRIu64 " (term %"
		    PRIu64 ") has a different prefix than another member's "
		    "entry with the same index and term", i + 1, index, term);
}

/* ===================================================================== */
/* network                                                               */
/* ===================================================================== */

static bool link_up(const struct sim *s, int from, int to)
{
	return s->link[from][to];
}

/* Schedule delivery of an encoded message (takes ownership of @buf). */
static void net_send(struct sim *s, int from, int to, uint8_t *buf,
    uint32_t len, uint8_t mtype)
{
	struct event *e;
	uint64_t delay;
	int copies = 1, k;

	s->st.msgs_sent++;
	s->st.bytes_sent += len;
	if (mtype <= RAFT_MSG_TYPE_MAX) {
		s->st.sent_by_type[mtype]++;
		s->st.bytes_by_type[mtype] += len;
	}
	if (to >= 0 && to < s->n && s->drop_next[from][to] == mtype) {
		s->drop_next[from][to] = 0;
		s->st.msgs_dropped++;
		trace(s, TR_DROP, from, to, mtype, 0, 0);
		free(buf);
		return;
	}
	if (to < 0 || to >= s->n || to == from || !link_up(s, from, to) ||
	    s->m[to].r == NULL ||
	    (!s->cfg.reliable && sim_chance(s, 100000)) ||
	    sim_chance(s, s->cfg.drop_ppm)) {
		s->st.msgs_dropped++;
		if (s->cfg.trace)
			trace(s, TR_DROP, from, to < 0 ? 0 : to, mtype, 0, 0);
		free(buf);
		return;
	}
	if (sim_chance(s, s->cfg.dup_ppm)) {
		copies = 2;
		s->st.msgs_duplicated++;
	}
	for (k = 0; k < copies; k++) {
		uint64_t at;
		bool extra = false;

		delay = rand_range(s, s->cfg.delay_min_us, s->cfg.delay_max_us);
		if (!s->cfg.reliable && is_request(mtype)) {
			delay += sim_randn(s, 27) * SIM_MS;
			extra = true;
		}
		if ((s->cfg.long_reordering && !is_request(mtype) &&
		    sim_randn(s, 900) < 600) || sim_chance(s, s->cfg.reorder_ppm)) {
			delay += 200 * SIM_MS +
			    sim_randn(s, sim_randn(s, 2000) + 1) * SIM_MS;
			s->st.msgs_reordered++;
			extra = true;
		}
		at = s->now + delay;
		if (!extra && !s->cfg.shuffle_links) {
			if (at < s->link_last[from][to])
				at = s->link_last[from][to];
			s->link_last[from][to] = at;
		}
		e = ev_alloc(s);
		e->kind = EV_DELIVER;
		e->from = (uint8_t)from;
		e->to = (uint8_t)to;
		e->mtype = mtype;
		e->from_inc = s->m[from].inc;
		e->to_inc = s->m[to].inc;
		e->buf = k == 0 ? buf : xmemdup(buf, len);
		e->len = len;
		ev_push(s, e, at);
	}
}

/* Encode @m into a fresh buffer; fails the run if the codec refuses. */
static uint8_t *encode_msg(struct sim *s, const struct raft_msg *m,
    uint32_t *len)
{
	size_t n = msg_encoded_size(m);
	uint8_t *buf = xmalloc(n);
	long w = msg_encode(m, buf, n);

	if (w < 0 || (size_t)w != n)
		sim_fail(s, "codec: msg_encode(%s) returned %ld for %zu bytes",
		    raft_msg_type_name(m->type), w, n);
	*len = (uint32_t)n;
	return buf;
}

static int member_of(struct sim *s, raft_id id)
{
	if (id == 0 || id > (raft_id)s->n)
		return -1;
	return (int)(id - 1);
}

static void send_msg(struct sim *s, int from, const struct raft_msg *m)
{
	uint32_t len;
	uint8_t *buf;

	if (m->from != (raft_id)from + 1)
		sim_fail(s, "n%d sent a %s with from=%" PRIu64, from + 1,
		    raft_msg_type_name(m->type), m->from);
	if (m->type == RAFT_MSG_APPEND_RESP && m->reject)
		s->m[from].append_rejects++;
	if (m->type == RAFT_MSG_APPEND && m->n_entries && member_of(s, m->to) >= 0) {
		int to = member_of(s, m->to);
		if (++s->inflight[from][to] > s->inflight_max[from][to])
			s->inflight_max[from][to] = s->inflight[from][to];
	}
	buf = encode_msg(s, m, &len);
	net_send(s, from, member_of(s, m->to), buf, len, m->type);
}

/* ===================================================================== */
/* disk                                                                  */
/* ===================================================================== */

static void dentry_free(struct dentry *d)
{
	free(d->data);
	d->data = NULL;
}

static raft_index disk_last(const struct member *m)
{
	return m->snap.index + m->log_n;
}

static void pwrite_free(struct pwrite *w)
{
	uint32_t i;

	for (i = 0; i < w->n_ents; i++)
		dentry_free(&w->ents[i]);
	free(w->ents);
	free(w->snap_data);
	for (i = 0; i < w->n_msgs; i++)
		free(w->msgs[i].buf);
	free(w->msgs);
	free(w);
}

/* Make the pending write @w durable on member @i. */
static void disk_apply(struct sim *s, int i, struct pwrite *w)
{
	struct member *m = &s->m[i];
	size_t k;

	if (w->has_snap) {
		raft_index si = w->snap.index;
		bool keep = false;
		size_t drop;

		if (si < m->snap.index)
			sim_fail(s, "disk: n%d persists snapshot %" PRIu64
			    " older than its stored one %" PRIu64, i + 1, si,
			    m->snap.index);
		/* Keep the suffix after si only if the stored log holds
		 * (si, term) and the core kept it in memory too. */
		if (si > m->snap.index && si <= disk_last(m) &&
		    m->log[si - m->snap.index - 1].term == w->snap.term)
			keep = w->snap_keep_suffix;
		if (si == m->snap.index && m->has_snap &&
		    m->snap.term == w->snap.term)
			keep = w->snap_keep_suffix;
		drop = keep ? si - m->snap.index : m->log_n;
		for (k = 0; k < drop; k++)
			dentry_free(&m->log[k]);
		if (m->log_n > drop)
			memmove(m->log, m->log + drop,
			    (m->log_n - drop) * sizeof *m->log);
		m->log_n -= drop;
		m->snap = w->snap;
		m->has_snap = true;
		free(m->snap_data);
		m->snap_data = w->snap_data;
		m->snap_len = w->snap_len;
		w->snap_data = NULL;
	}
	if (w->n_ents) {
		raft_index first = w->first_index;
		size_t at;

		if (first <= m->snap.index || first > disk_last(m) + 1)
			sim_fail(s, "disk: n%d persists entries from %" PRIu64
			    " but its durable log is (%" PRIu64 ", %" PRIu64 "]",
			    i + 1, first, m->snap.index, disk_last(m));
		at = first - m->snap.index - 1;
		for (k = at; k < m->log_n; k++)
			dentry_free(&m->log[k]);
		m->log_n = at;
		grow((void **)&m->log, &m->log_cap, m->log_n + w->n_ents,
		    sizeof *m->log);
		for (k = 0; k < w->n_ents; k++) {
			m->log[m->log_n++] = w->ents[k];
			w->ents[k].data = NULL;
		}
	}
	if (w->hs_changed) {
		if (w->hs.term < m->hs.term)
			sim_fail(s, "disk: n%d's durable term goes back from %"
			    PRIu64 " to %" PRIu64, i + 1, m->hs.term, w->hs.term);
		if (w->hs.term == m->hs.term && m->hs.vote &&
		    w->hs.vote != m->hs.vote)
			sim_fail(s, "disk: n%d changes its vote in term %"
			    PRIu64 " from n%" PRIu64 " to n%" PRIu64, i + 1,
			    m->hs.term, m->hs.vote, w->hs.vote);
		m->hs = w->hs;
	}
}

static void schedule_disk(struct sim *s, int i, struct pwrite *w)
{
	struct member *m = &s->m[i];
	struct event *e;
	uint64_t at = s->now + rand_range(s, s->cfg.disk_min_us,
	    s->cfg.disk_max_us);

	if (at < m->last_done_at)
		at = m->last_done_at;
	m->last_done_at = at;
	w->done_at = at;
	m->wq_batch = w;
	if (m->wq_tail)
		m->wq_tail->next = w;
	else
		m->wq_head = w;
	m->wq_tail = w;
	e = ev_alloc(s);
	e->kind = EV_DISK;
	e->to = (uint8_t)i;
	e->to_inc = m->inc;
	ev_push(s, e, at);
}

/* ===================================================================== */
/* mirror of the in-memory log                                           */
/* ===================================================================== */

static raft_index mlast(const struct member *m)
{
	return m->mbase + m->mn;
}

static raft_term mterm(const struct member *m, raft_index i)
{
	if (i == m->mbase)
		return m->mbase_term;
	return m->mlog[i - m->mbase - 1].term;
}

static uint64_t mhash(const struct member *m, raft_index i)
{
	if (i == m->mbase)
		return m->mbase_hash;
	return m->mlog[i - m->mbase - 1].hash;
}

static uint64_t mcum(const struct member *m, raft_index i)
{
	if (i == m->mbase)
		return m->mbase_cum;
	return m->mlog[i - m->mbase - 1].cum;
}

/* The chained hash and command count at a snapshot boundary. */
static void snap_boundary(struct sim *s, int i, raft_index index,
    raft_term term, uint64_t *hash, uint64_t *cum)
{
	struct cslot *c;

	if (index == 0) {
		*hash = 0;
		*cum = 0;
		return;
	}
	c = cmap_get(s, index, term, false, 0);
	if (c == NULL)
		sim_fail(s, "harness: n%d holds a snapshot at (%" PRIu64 ", %"
		    PRIu64 ") that no member ever had in its log", i + 1,
		    index, term);
	*hash = c->hash;
	*cum = index < s->g_cap && s->g[index].set ? s->g[index].cum : 0;
}

static void mirror_reset(struct sim *s, int i, raft_index base,
    raft_term base_term)
{
	struct member *m = &s->m[i];

	m->mbase = base;
	m->mbase_term = base_term;
	snap_boundary(s, i, base, base_term, &m->mbase_hash, &m->mbase_cum);
	m->mn = 0;
}

/* Entries handed out by member @i: they replace its log from e[0].index. */
static void mirror_append(struct sim *s, int i, const struct raft_entry *e,
    uint32_t n, bool leader)
{
	struct member *m = &s->m[i];
	raft_index first = e[0].index, last = mlast(m);
	uint64_t h, cum;
	raft_term prev_term;
	uint32_t k;

	if (first <= m->mbase || first > last + 1)
		sim_fail(s, "n%d hands out entries from %" PRIu64 " but its log "
		    "is (%" PRIu64 ", %" PRIu64 "]", i + 1, first, m->mbase,
		    last);
	if (leader && first != last + 1)
		sim_fail(s, "leader append-only: leader n%d rewrites its log "
		    "from index %" PRIu64 " (last %" PRIu64 ")", i + 1, first,
		    last);
	m->mn = first - m->mbase - 1;
	h = mhash(m, first - 1);
	cum = mcum(m, first - 1);
	prev_term = mterm(m, first - 1);
	grow((void **)&m->mlog, &m->mcap, m->mn + n, sizeof *m->mlog);
	for (k = 0; k < n; k++) {
		const struct raft_entry *x = &e[k];
		struct ment *me = &m->mlog[m->mn];

		if (x->index != first + k)
			sim_fail(s, "n%d hands out non-contiguous entries (%"
			    PRIu64 " after %" PRIu64 ")", i + 1, x->index,
			    first + k - 1);
		if (x->term < prev_term)
			sim_fail(s, "n%d's log has term %" PRIu64 " at %" PRIu64
			    " after term %" PRIu64, i + 1, x->term, x->index,
			    prev_term);
		if (x->type != RAFT_ENTRY_NORMAL && x->type != RAFT_ENTRY_NOOP)
			sim_fail(s, "n%d hands out entry %" PRIu64
			    " of unknown type %u", i + 1, x->index, x->type);
		h = chain_hash(h, x->term,
		    entry_value_hash(x->type, x->data, x->len));
		cum += x->type == RAFT_ENTRY_NORMAL;
		me->term = x->term;
		me->type = x->type;
		me->hash = h;
		me->cum = cum;
		prev_term = x->term;
		check_chain(s, i, x->index, x->term, h);
		m->mn++;
	}
}

/* A snapshot at (index, term) replaces the log's prefix.  Returns whether
 * the suffix after it is kept (the log held (index, term)). */
static bool mirror_snapshot(struct sim *s, int i, raft_index index,
    raft_term term)
{
	struct member *m = &s->m[i];
	bool keep = index >= m->mbase && index <= mlast(m) &&
	    mterm(m, index) == term;

	if (keep) {
		size_t drop = index - m->mbase;
		uint64_t h = mhash(m, index), cum = mcum(m, index);
		if (m->mn > drop)
			memmove(m->mlog, m->mlog + drop,
			    (m->mn - drop) * sizeof *m->mlog);
		m->mn -= drop;
		m->mbase = index;
		m->mbase_term = term;
		m->mbase_hash = h;
		m->mbase_cum = cum;
	} else {
		mirror_reset(s, i, index, term);
	}
	return keep;
}

/* ===================================================================== */
/* apply model (the tester's server.go)                                  */
/* ===================================================================== */

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8); /* the simulator only runs on little-endian hosts */
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

#define BLOB_MAGIC 0x31424f4c424d4953ull /* "SIMBLOB1" */

/* Blob: magic, index, state hash, count c, c value hashes (lab: the
 * values 1..index), padding. */
static uint8_t *make_blob(struct sim *s, raft_index index, uint64_t *len)
{
	uint64_t c = s->cfg.lab_blob ? index : 0, k;
	uint64_t n = 32 + 8 * c + (s->cfg.lab_blob ? 0 : s->cfg.snap_pad);
	uint8_t *b = xmalloc(n);

	put_u64(b, BLOB_MAGIC);
	put_u64(b + 8, index);
	put_u64(b + 16, s->g[index].state);
	put_u64(b + 24, c);
	for (k = 0; k < c; k++)
		put_u64(b + 32 + 8 * k, s->g[k + 1].vh);
	for (k = 32 + 8 * c; k < n; k++)
		b[k] = (uint8_t)(index + k);
	*len = n;
	return b;
}

/* rd.snapshot_install: decode, check, replace the apply state. */
static void apply_snapshot(struct sim *s, int i,
    const struct raft_snapshot_meta *meta, const uint8_t *data, uint64_t len)
{
	struct member *m = &s->m[i];
	uint64_t index, state, c, k;

	s->st.snapshots_installed++;
	trace(s, TR_INSTALL, i, 0, 0, meta->index, meta->term);
	if (len < 32 || get_u64(data) != BLOB_MAGIC)
		sim_fail(s, "n%d installs a snapshot (index %" PRIu64 ") that "
		    "does not decode (%" PRIu64 " bytes)", i + 1, meta->index,
		    len);
	index = get_u64(data + 8);
	state = get_u64(data + 16);
	c = get_u64(data + 24);
	if (index != meta->index)
		sim_fail(s, "n%d: snapshot blob encodes index %" PRIu64
		    " but the snapshot says %" PRIu64, i + 1, index,
		    meta->index);
	if (c > (len - 32) / 8)
		sim_fail(s, "n%d: snapshot blob truncated", i + 1);
	s->st.checks++;
	if (index > s->g_max || !s->g[index].set)
		sim_fail(s, "n%d installs a snapshot at %" PRIu64 " beyond "
		    "anything applied anywhere (%" PRIu64 ")", i + 1, index,
		    s->g_max);
	if (s->g[index].state != state || s->g[index].term != meta->term)
		sim_fail(s, "state-machine safety: n%d's snapshot at %" PRIu64
		    " differs from the applied state there", i + 1, index);
	for (k = 0; k < c; k++)
		if (s->g[k + 1].vh != get_u64(data + 32 + 8 * k))
			sim_fail(s, "state-machine safety: n%d's snapshot has a "
			    "different value at %" PRIu64, i + 1, k + 1);
	m->applied = index;
	m->state = state;
	m->pending_compact = 0;
}

/* Is (index, term) durable on member @i (stored log or snapshot)? */
static bool durable_has(const struct member *m, raft_index index,
    raft_term term)
{
	if (m->has_snap && index <= m->snap.index)
		return true;
	if (index > disk_last(m) || index <= m->snap.index)
		return false;
	return m->log[index - m->snap.index - 1].term == term;
}

static void apply_entry(struct sim *s, int i, const struct raft_entry *e)
{
	struct member *m = &s->m[i];
	uint64_t vh = entry_value_hash(e->type, e->data, e->len);
	struct gent *g;

	s->st.checks++;
	if (e->index != m->applied + 1)
		sim_fail(s, "apply out of order: n%d applies %" PRIu64
		    " after %" PRIu64, i + 1, e->index, m->applied);
	if (e->index > m->mbase && e->index <= mlast(m) &&
	    mterm(m, e->index) != e->term)
		sim_fail(s, "n%d applies entry %" PRIu64 " of term %" PRIu64
		    " but its log has term %" PRIu64 " there", i + 1, e->index,
		    e->term, mterm(m, e->index));
	if (!durable_has(m, e->index, e->term))
		sim_fail(s, "n%d applies entry %" PRIu64 " (term %" PRIu64
		    ") before it is durable locally", i + 1, e->index, e->term);
	m->state = chain_hash(m->state, e->term, vh);
	g = gent_at(s, e->index);
	if (g->set) {
		if (g->vh != vh || g->term != e->term || g->state != m->state)
			sim_fail(s, "state-machine safety: n%d applies a "
			    "different entry at %" PRIu64 " (term %" PRIu64
			    " vs %" PRIu64 ")", i + 1, e->index, e->term,
			    g->term);
	} else {
		struct gent *prev = e->index > 1 ? &s->g[e->index - 1] : NULL;
		g->set = true;
		g->term = e->term;
		g->vh = vh;
		g->state = m->state;
		g->type = e->type;
		g->cum = (prev && prev->set ? prev->cum : 0) +
		    (e->type == RAFT_ENTRY_NORMAL);
		if (e->index > s->g_max)
			s->g_max = e->index;
	}
	m->applied = e->index;
	if (s->cfg.snap_every && (e->index + 1) % s->cfg.snap_every == 0)
		m->pending_compact = e->index;
}

static void do_compact(struct sim *s, int i)
{
	struct member *m = &s->m[i];
	raft_index idx = m->pending_compact;
	uint64_t len;
	uint8_t *blob;
	int rc;

	m->pending_compact = 0;
	if (idx == 0 || idx > m->applied || m->r == NULL)
		return;
	blob = make_blob(s, idx, &len);
	rc = raft_compact(m->r, idx, blob, len);
	free(blob);
	if (rc == 0) {
		s->st.snapshots_taken++;
		trace(s, TR_COMPACT, i, 0, 0, idx, 0);
	} else if (rc != RAFT_ESTALE) {
		sim_fail(s, "raft_compact(n%d, %" PRIu64 ") = %s", i + 1, idx,
		    rk_strerror(rc));
	}
}

/* ===================================================================== */
/* read index                                                            */
/* ===================================================================== */

static raft_index known_commit(struct sim *s)
{
	raft_index c = s->g_max;
	int i;

	for (i = 0; i < s->n; i++) {
		struct raft_status st;
		if (s->m[i].r == NULL)
			continue;
		raft_status(s->m[i].r, &st);
		if (st.commit > c)
			c = st.commit;
	}
	return c;
}

static struct read_req *find_read(struct sim *s, uint64_t ctx)
{
	size_t k;

	for (k = 0; k < s->reads_n; k++)
		if (s->reads[k].ctx == ctx)
			return &s->reads[k];
	return NULL;
}

static void drop_read(struct sim *s, struct read_req *r)
{
	*r = s->reads[--s->reads_n];
}

static void handle_reads(struct sim *s, int i, const struct raft_ready *rd)
{
	uint32_t k;

	for (k = 0; k < rd->n_read_states; k++) {
		struct read_req *r = find_read(s, rd->read_states[k].ctx);
		s->st.checks++;
		if (r == NULL || r->member != i)
			sim_fail(s, "n%d got a read state for unknown ctx %"
			    PRIu64, i + 1, rd->read_states[k].ctx);
		if (rd->read_states[k].index < r->floor)
			sim_fail(s, "read index safety: n%d answers read %"
			    PRIu64 " with index %" PRIu64 " but %" PRIu64
			    " was committed before it was asked", i + 1, r->ctx,
			    rd->read_states[k].index, r->floor);
		s->st.reads_ok++;
		drop_read(s, r);
	}
	for (k = 0; k < rd->n_read_failed; k++) {
		struct read_req *r = find_read(s, rd->read_failed[k]);
		if (r) {
			s->st.reads_failed++;
			drop_read(s, r);
		}
	}
}

/* ===================================================================== */
/* drive                                                                 */
/* ===================================================================== */

static struct pwrite *make_write(struct sim *s, int i,
    const struct raft_ready *rd, bool keep_suffix)
{
	struct pwrite *w = xcalloc(1, sizeof *w);
	uint32_t k;

	w->must_persist = rd->must_persist;
	w->token = rd->persist_token;
	if (rd->must_persist) {
		w->hs_changed = rd->hs_changed;
		w->hs = rd->hs;
		if (rd->n_entries) {
			w->ents = xcalloc(rd->n_entries, sizeof *w->ents);
			w->n_ents = rd->n_entries;
			w->first_index = rd->entries[0].index;
			for (k = 0; k < rd->n_entries; k++) {
				const struct raft_entry *e = &rd->entries[k];
				w->ents[k].term = e->term;
				w->ents[k].type = e->type;
				w->ents[k].len = e->len;
				w->ents[k].data = e->len ?
				    xmemdup(e->data, e->len) : NULL;
			}
		}
		if (rd->has_snapshot) {
			w->has_snap = true;
			w->snap_keep_suffix = keep_suffix;
			w->snap = rd->snap_meta;
			w->snap_data = xmemdup(rd->snap_data, rd->snap_len);
			w->snap_len = rd->snap_len;
		}
	}
	if (rd->n_msgs_after_persist) {
		w->msgs = xcalloc(rd->n_msgs_after_persist, sizeof *w->msgs);
		for (k = 0; k < rd->n_msgs_after_persist; k++) {
			const struct raft_msg *msg = &rd->msgs_after_persist[k];
			if (msg->from != (raft_id)i + 1)
				sim_fail(s, "n%d queued a %s with from=%" PRIu64,
				    i + 1, raft_msg_type_name(msg->type),
				    msg->from);
			w->msgs[k].buf = encode_msg(s, msg, &w->msgs[k].len);
			w->msgs[k].to = (uint8_t)(msg->to - 1);
			w->msgs[k].mtype = msg->type;
			if (msg->to == 0 || msg->to > (raft_id)s->n)
				w->msgs[k].to = 0xff;
			if (msg->type == RAFT_MSG_APPEND_RESP && msg->reject)
				s->m[i].append_rejects++;
		}
		w->n_msgs = rd->n_msgs_after_persist;
	}
	return w;
}

/* Handle one ready batch of member @i (before raft_advance). */
static void handle_ready(struct sim *s, int i, const struct raft_ready *rd)
{
	struct member *m = &s->m[i];
	bool keep_suffix = true;
	uint32_t k;

	/* Messages that do not wait for the disk. */
	for (k = 0; k < rd->n_msgs; k++)
		send_msg(s, i, &rd->msgs[k]);

	/* The in-memory log: snapshot first, then entries. */
	if (rd->has_snapshot || rd->snapshot_install) {
		if (rd->snap_meta.index < m->mbase && rd->has_snapshot)
			sim_fail(s, "n%d's new snapshot %" PRIu64 " is older "
			    "than its log start %" PRIu64, i + 1,
			    rd->snap_meta.index, m->mbase);
		if (rd->snap_meta.index >= m->mbase)
			keep_suffix = mirror_snapshot(s, i, rd->snap_meta.index,
			    rd->snap_meta.term);
	}
	if (rd->n_entries)
		mirror_append(s, i, rd->entries, rd->n_entries,
		    rd->role == RAFT_LEADER);

	/* Persist (asynchronously). */
	if (rd->must_persist || rd->n_msgs_after_persist)
		schedule_disk(s, i, make_write(s, i, rd, keep_suffix));
	else
		m->wq_batch = NULL;

	/* Apply. */
	if (rd->snapshot_install)
		apply_snapshot(s, i, &rd->snap_meta, rd->snap_data,
		    rd->snap_len);
	for (k = 0; k < rd->n_committed; k++)
		apply_entry(s, i, &rd->committed[k]);

	handle_reads(s, i, rd);
}

/* After a batch: compare our view with the core's, check monotonicity and
 * leader completeness. */
static void post_batch_checks(struct sim *s, int i, bool snap_dropped_suffix)
{
	struct member *m = &s->m[i];
	struct raft_status st;
	raft_term t;
	int rc;

	raft_status(m->r, &st);
	s->st.checks++;
	if (snap_dropped_suffix && st.last_index < mlast(m) &&
	    st.last_index == m->mbase) {
		/* The core dropped its whole log on InstallSnapshot even
		 * though it matched: so must the disk. */
		m->mn = 0;
		if (m->wq_batch)
			m->wq_batch->snap_keep_suffix = false;
	}
	if (st.last_index != mlast(m))
		sim_fail(s, "n%d's log ends at %" PRIu64 " but the entries it "
		    "handed out end at %" PRIu64, i + 1, st.last_index,
		    mlast(m));
	if (mlast(m) > m->mbase) {
		rc = raft_term_at(m->r, mlast(m), &t);
		if (rc != 0 || t != mterm(m, mlast(m)))
			sim_fail(s, "n%d: raft_term_at(%" PRIu64 ") = %" PRIu64
			    " (rc %d) but it handed out term %" PRIu64, i + 1,
			    mlast(m), t, rc, mterm(m, mlast(m)));
	}
	if (st.commit < m->last_commit)
		sim_fail(s, "commit index of n%d moves back from %" PRIu64
		    " to %" PRIu64, i + 1, m->last_commit, st.commit);
	if (st.term < m->last_term)
		sim_fail(s, "term of n%d moves back from %" PRIu64 " to %"
		    PRIu64, i + 1, m->last_term, st.term);
	if (st.commit > st.last_index && st.commit > st.snap_index)
		sim_fail(s, "n%d's commit index %" PRIu64 " is beyond its log "
		    "(%" PRIu64 ")", i + 1, st.commit, st.last_index);
	m->last_commit = st.commit;
	for (; m->cterm_upto < st.commit; ) {
		struct gent *g = gent_at(s, ++m->cterm_upto);
		if (g->cterm == 0 || st.term < g->cterm)
			g->cterm = st.term;
	}
	if (st.role == RAFT_LEADER &&
	    (m->last_role != RAFT_LEADER || m->last_term != st.term)) {
		raft_index j;

		note_leader(s, i, st.term);
		trace(s, TR_LEADER, i, 0, 0, st.term, st.last_index);
		slog(s, "n%d elected leader of term %" PRIu64 " (log ends at %"
		    PRIu64 ")", i + 1, st.term, st.last_index);
		/* Leader completeness: every entry committed in an earlier
		 * term (a late winner of an old term, e.g. a candidate that
		 * stalled, owes nothing to later terms). */
		for (j = st.snap_index + 1; j <= s->g_max; j++) {
			if (!s->g[j].set || s->g[j].cterm == 0 ||
			    s->g[j].cterm >= st.term)
				continue;
			s->st.checks++;
			rc = raft_term_at(m->r, j, &t);
			if (rc != 0 || t != s->g[j].term)
				sim_fail(s, "leader completeness: n%d leads term %"
				    PRIu64 " without committed entry %" PRIu64
				    " (term %" PRIu64 "; it has %s %" PRIu64 ")",
				    i + 1, st.term, j, s->g[j].term,
				    rc ? rk_strerror(rc) : "term", rc ? 0 : t);
		}
	}
	m->last_role = st.role;
	m->last_term = st.term;
}

static void drive(struct sim *s, int i)
{
	struct member *m = &s->m[i];
	struct raft_ready rd;
	int guard = 0;

	while (m->r && raft_ready(m->r, &rd)) {
		bool dropped = false;
		raft_index before = mlast(m);

		if (++guard > 100000)
			sim_fail(s, "n%d: raft_ready() never goes idle", i + 1);
		handle_ready(s, i, &rd);
		dropped = (rd.has_snapshot || rd.snapshot_install) &&
		    rd.n_entries == 0 && mlast(m) == before;
		raft_advance(m->r, &rd);
		post_batch_checks(s, i, dropped);
		if (m->pending_compact)
			do_compact(s, i);
	}
}

/* ===================================================================== */
/* events                                                                */
/* ===================================================================== */

static void schedule_tick(struct sim *s, int i, uint64_t at)
{
	struct event *e = ev_alloc(s);

	e->kind = EV_TICK;
	e->to = (uint8_t)i;
	e->to_inc = s->m[i].inc;
	ev_push(s, e, at);
}

static void on_tick(struct sim *s, struct event *e)
{
	struct member *m = &s->m[e->to];
	int rc;

	if (m->r == NULL || m->inc != e->to_inc)
		return;
	trace(s, EV_TICK, e->to, 0, 0, 0, 0);
	rc = raft_tick(m->r);
	if (rc)
		sim_fail(s, "raft_tick(n%d) = %s", e->to + 1, rk_strerror(rc));
	drive(s, e->to);
	schedule_tick(s, e->to, s->now + m->tick_us);
}

static void on_deliver(struct sim *s, struct event *e)
{
	struct member *to = &s->m[e->to];
	struct raft_msg msg;
	int rc;

	if (to->r == NULL || !link_up(s, e->from, e->to) ||
	    (!s->cfg.keep_inflight_on_crash && (to->inc != e->to_inc ||
	    s->m[e->from].inc != e->from_inc))) {
		s->st.msgs_dropped++;
		return;
	}
	rc = msg_decode(e->buf, e->len, &msg);
	if (rc)
		sim_fail(s, "codec: a %s from n%d does not decode: %s",
		    raft_msg_type_name(e->mtype), e->from + 1, rk_strerror(rc));
	trace(s, EV_DELIVER, e->from, e->to, msg.type, msg.term, msg.index);
	s->st.msgs_delivered++;
	if (is_request(msg.type)) {
		s->st.rpcs++;
		to->rpcs_in++;
	}
	if (msg.type == RAFT_MSG_APPEND_RESP && s->inflight[e->to][e->from] > 0)
		s->inflight[e->to][e->from]--;
	rc = raft_step(to->r, &msg);
	msg_release(&msg);
	if (rc)
		sim_fail(s, "raft_step(n%d) = %s", e->to + 1, rk_strerror(rc));
	drive(s, e->to);
}

static void on_disk(struct sim *s, struct event *e)
{
	struct member *m = &s->m[e->to];
	struct pwrite *w = m->wq_head;
	uint32_t k;
	int rc;

	if (m->r == NULL || m->inc != e->to_inc || w == NULL)
		return;
	m->wq_head = w->next;
	if (m->wq_head == NULL)
		m->wq_tail = NULL;
	s->cur_w = w;
	if (w->must_persist)
		disk_apply(s, e->to, w);
	trace(s, EV_DISK, e->to, 0, 0, disk_last(m), m->hs.term);
	for (k = 0; k < w->n_msgs; k++) {
		struct pmsg *p = &w->msgs[k];
		net_send(s, e->to, p->to == 0xff ? -1 : p->to, p->buf, p->len,
		    p->mtype);
		p->buf = NULL;
	}
	if (w->must_persist) {
		rc = raft_persisted(m->r, &w->token);
		if (rc)
			sim_fail(s, "raft_persisted(n%d) = %s", e->to + 1,
			    rk_strerror(rc));
	}
	s->cur_w = NULL;
	pwrite_free(w);
	drive(s, e->to);
}

static void step_event(struct sim *s)
{
	struct event *e = ev_pop(s);

	if (e->t > s->now)
		s->now = e->t;
	if (e->kind != EV_CALL && s->m[e->to].paused_until > s->now) {
		/* Stalled member: the event waits (FIFO among waiters). */
		ev_push(s, e, s->m[e->to].paused_until);
		return;
	}
	s->st.events++;
	s->cur = e;
	switch (e->kind) {
	case EV_TICK:
		on_tick(s, e);
		break;
	case EV_DELIVER:
		on_deliver(s, e);
		break;
	case EV_DISK:
		on_disk(s, e);
		break;
	case EV_CALL:
		if (s->cfg.trace >= 3)
			trace(s, EV_CALL, 0, 0, 0, 0, 0);
		e->fn(s, e->arg);
		break;
	}
	e->fn = NULL;
	s->cur = NULL;
	ev_free(s, e);
}

uint64_t sim_now(const struct sim *s)
{
	return s->now;
}

void sim_sleep(struct sim *s, uint64_t us)
{
	uint64_t until = s->now + us;

	while (s->heap_n && s->heap[0]->t <= until)
		step_event(s);
	s->now = until;
}

void sim_run_until_flag(struct sim *s, const bool *flag)
{
	while (!*flag) {
		if (s->heap_n == 0)
			sim_fail(s, "harness: nothing left to run");
		step_event(s);
	}
}

void sim_after(struct sim *s, uint64_t us,
    void (*fn)(struct sim *s, void *arg), void *arg)
{
	struct event *e = ev_alloc(s);

	e->kind = EV_CALL;
	e->fn = fn;
	e->arg = arg;
	ev_push(s, e, s->now + us);
}

/* ===================================================================== */
/* members                                                               */
/* ===================================================================== */

static void core_trace(void *arg, raft_id id, const char *msg)
{
	struct sim *s = arg;

	fprintf(stderr, "[sim %" PRIu64 "] %10.6f   n%" PRIu64 ": %s\n",
	    s->cfg.seed, s->now / 1e6, id, msg);
}

static void make_config(struct sim *s, int i, struct raft_config *c)
{
	raft_id voters[SIM_MAX_MEMBERS];
	int k;

	for (k = 0; k < s->n; k++)
		voters[k] = (raft_id)k + 1;
	raft_config_defaults(c, (raft_id)i + 1, voters, (uint32_t)s->n);
	c->election_tick = s->cfg.election_tick;
	c->heartbeat_tick = s->cfg.heartbeat_tick;
	c->seed = sim_rand(s);
	c->disable_prevote = s->cfg.disable_prevote;
	c->disable_check_quorum = s->cfg.disable_check_quorum;
	if (s->cfg.max_msg_entries)
		c->max_msg_entries = s->cfg.max_msg_entries;
	if (s->cfg.max_inflight_msgs)
		c->max_inflight_msgs = s->cfg.max_inflight_msgs;
	if (s->cfg.max_uncommitted_bytes)
		c->max_uncommitted_bytes = s->cfg.max_uncommitted_bytes;
	if (s->cfg.snapshot_chunk_bytes)
		c->snapshot_chunk_bytes = s->cfg.snapshot_chunk_bytes;
	if (s->cfg.trace >= 2) {
		c->trace = core_trace;
		c->trace_arg = s;
	}
}

/* Bring member @i up from its durable state (lab StartServer). */
void sim_start(struct sim *s, int i)
{
	struct member *m = &s->m[i];
	struct raft_config cfg;
	struct raft_boot boot;
	struct raft_entry *ents;
	size_t k;
	int rc;

	if (m->r)
		return;
	make_config(s, i, &cfg);
	memset(&boot, 0, sizeof boot);
	boot.hs = m->hs;
	boot.has_snapshot = m->has_snap;
	boot.snap = m->snap;
	boot.snap_data = m->snap_data;
	boot.snap_len = m->snap_len;
	ents = xcalloc(m->log_n, sizeof *ents);
	for (k = 0; k < m->log_n; k++) {
		ents[k].term = m->log[k].term;
		ents[k].index = m->snap.index + 1 + k;
		ents[k].type = m->log[k].type;
		ents[k].len = m->log[k].len;
		ents[k].data = m->log[k].data;
	}
	boot.entries = ents;
	boot.n_entries = m->log_n;
	rc = raft_new(&cfg, &boot, &m->r);
	if (rc)
		sim_fail(s, "raft_new(n%d) from durable state = %s", i + 1,
		    rk_strerror(rc));
	m->inc++;
	m->paused_until = 0;
	s->st.restarts += m->inc > 1;
	m->last_commit = 0;
	m->cterm_upto = 0;
	m->last_term = 0;
	m->last_role = RAFT_FOLLOWER;
	m->last_done_at = 0;
	/* The tester's view restarts empty (a snapshot arrives with the
	 * first batch). */
	m->applied = 0;
	m->state = 0;
	m->pending_compact = 0;
	/* Our mirror of the new incarnation's log: the durable log. */
	mirror_reset(s, i, m->has_snap ? m->snap.index : 0,
	    m->has_snap ? m->snap.term : 0);
	if (m->log_n)
		mirror_append(s, i, ents, (uint32_t)m->log_n, false);
	free(ents);
	trace(s, TR_START, i, 0, 0, m->hs.term, disk_last(m));
	if (m->inc > 1)
		slog(s, "n%d restarts from disk (term %" PRIu64 ", log ends at %"
		    PRIu64 ", snapshot %" PRIu64 ")", i + 1, m->hs.term,
		    disk_last(m), m->snap.index);
	drive(s, i);
	m->tick_us = s->cfg.tick_us;
	if (s->cfg.tick_jitter_pct) {
		uint64_t j = s->cfg.tick_us * s->cfg.tick_jitter_pct / 100;
		m->tick_us = s->cfg.tick_us - j + sim_randn(s, 2 * j + 1);
	}
	schedule_tick(s, i, s->now + 1 + sim_randn(s, m->tick_us));
}

void sim_crash(struct sim *s, int i)
{
	struct member *m = &s->m[i];
	struct pwrite *w, *next;
	uint64_t lost = 0;

	sim_disconnect(s, i);
	if (m->r == NULL)
		return;
	raft_free(m->r);
	m->r = NULL;
	for (w = m->wq_head; w; w = next) {
		next = w->next;
		lost += w->must_persist;
		pwrite_free(w);
	}
	m->wq_head = m->wq_tail = m->wq_batch = NULL;
	s->st.writes_lost += lost;
	if (s->cfg.lying_disk) {
		m->hs.vote = 0;
		if (m->log_n)
			dentry_free(&m->log[--m->log_n]);
	}
	s->st.crashes++;
	m->inc++; /* in-flight messages and disk events are now stale */
	trace(s, TR_CRASH, i, 0, 0, lost, 0);
	slog(s, "n%d crashes (%" PRIu64 " unsynced writes lost)", i + 1, lost);
}

void sim_pause(struct sim *s, int i, uint64_t us)
{
	s->m[i].paused_until = s->now + us;
	s->st.pauses++;
	slog(s, "n%d stalls for %.1f s", i + 1, us / 1e6);
}

void sim_restart(struct sim *s, int i)
{
	sim_start(s, i);
	sim_connect_all(s);
}

void sim_crash_all(struct sim *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		sim_crash(s, i);
}

void sim_start_all(struct sim *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		sim_start(s, i);
	sim_connect_all(s);
}

int sim_n(const struct sim *s)
{
	return s->n;
}

bool sim_alive(const struct sim *s, int i)
{
	return s->m[i].r != NULL;
}

struct raft *sim_raft(struct sim *s, int i)
{
	return s->m[i].r;
}

raft_term sim_get_state(struct sim *s, int i, bool *is_leader)
{
	struct raft_status st;

	*is_leader = false;
	if (s->m[i].r == NULL)
		return 0;
	raft_status(s->m[i].r, &st);
	*is_leader = st.role == RAFT_LEADER;
	return st.term;
}

int sim_propose(struct sim *s, int i, const void *data, uint32_t len,
    raft_index *index, raft_term *term)
{
	raft_index idx = 0;
	raft_term t = 0;
	int rc;

	if (s->m[i].r == NULL)
		return RAFT_ENOTLEADER;
	if (s->m[i].paused_until > s->now)
		return -EAGAIN; /* a stalled process answers nobody */
	rc = raft_propose(s->m[i].r, data, len, &idx, &t);
	if (rc == 0) {
		s->st.proposals++;
		trace(s, TR_PROPOSE, i, 0, 0, idx, t);
	}
	drive(s, i);
	if (index)
		*index = idx;
	if (term)
		*term = t;
	return rc;
}

int sim_read_index(struct sim *s, int i)
{
	struct read_req *r;
	int rc;

	if (s->m[i].r == NULL)
		return RAFT_ENOTLEADER;
	if (s->m[i].paused_until > s->now)
		return -EAGAIN; /* a stalled process answers nobody */
	grow((void **)&s->reads, &s->reads_cap, s->reads_n + 1,
	    sizeof *s->reads);
	r = &s->reads[s->reads_n];
	r->ctx = ++s->next_ctx;
	r->member = i;
	r->floor = known_commit(s);
	rc = raft_read_index(s->m[i].r, r->ctx);
	if (rc == 0)
		s->reads_n++;
	drive(s, i);
	return rc;
}

int sim_transfer(struct sim *s, int i, int to)
{
	int rc;

	if (s->m[i].r == NULL)
		return RAFT_ENOTLEADER;
	if (s->m[i].paused_until > s->now)
		return -EAGAIN; /* a stalled process answers nobody */
	rc = raft_transfer_leadership(s->m[i].r, (raft_id)to + 1);
	if (rc == 0)
		s->st.transfers++;
	drive(s, i);
	return rc;
}

int sim_campaign(struct sim *s, int i)
{
	int rc;

	if (s->m[i].r == NULL)
		return RAFT_ENOTLEADER;
	if (s->m[i].paused_until > s->now)
		return -EAGAIN; /* a stalled process answers nobody */
	rc = raft_campaign(s->m[i].r);
	drive(s, i);
	return rc;
}

/* ===================================================================== */
/* network control                                                       */
/* ===================================================================== */

static void set_link(struct sim *s, int a, int b, bool up)
{
	if (a == b || s->link[a][b] == up)
		return;
	s->link[a][b] = up;
	if (s->cfg.trace)
		trace(s, TR_LINK, a, b, 0, up, 0);
}

bool sim_connected(const struct sim *s, int i)
{
	return s->m[i].connected;
}

void sim_disconnect(struct sim *s, int i)
{
	int j;

	s->st.link_changes++;
	s->m[i].connected = false;
	for (j = 0; j < s->n; j++) {
		set_link(s, i, j, false);
		set_link(s, j, i, false);
	}
}

void sim_connect(struct sim *s, int i)
{
	int j;

	s->st.link_changes++;
	s->m[i].connected = true;
	for (j = 0; j < s->n; j++) {
		if (!s->m[j].connected)
			continue;
		set_link(s, i, j, true);
		set_link(s, j, i, true);
	}
}

void sim_connect_all(struct sim *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		sim_connect(s, i);
}

void sim_partition(struct sim *s, const int *side)
{
	int i, j;

	s->st.link_changes++;
	for (i = 0; i < s->n; i++) {
		s->m[i].connected = true;
		for (j = 0; j < s->n; j++)
			set_link(s, i, j, side[i] == side[j]);
	}
}

void sim_set_link(struct sim *s, int from, int to, bool up)
{
	s->st.link_changes++;
	set_link(s, from, to, up);
}

void sim_drop_next(struct sim *s, int from, int to, uint8_t type)
{
	s->drop_next[from][to] = type;
}

bool sim_link(const struct sim *s, int from, int to)
{
	return s->link[from][to];
}

void sim_set_reliable(struct sim *s, bool reliable)
{
	s->cfg.reliable = reliable;
	trace(s, TR_NET, 0, 0, 0, reliable, 0);
}

void sim_set_long_reordering(struct sim *s, bool on)
{
	s->cfg.long_reordering = on;
}

void sim_set_faults(struct sim *s, uint32_t drop_ppm, uint32_t dup_ppm,
    uint32_t reorder_ppm, uint64_t delay_min_us, uint64_t delay_max_us)
{
	s->cfg.drop_ppm = drop_ppm;
	s->cfg.dup_ppm = dup_ppm;
	s->cfg.reorder_ppm = reorder_ppm;
	s->cfg.delay_min_us = delay_min_us;
	s->cfg.delay_max_us = delay_max_us;
}

/* ===================================================================== */
/* creation                                                              */
/* ===================================================================== */

void sim_config_lab(struct sim_config *c, int n, bool reliable,
    bool snapshot, uint64_t seed)
{
	memset(c, 0, sizeof *c);
	c->seed = seed;
	c->n = n;
	c->tick_us = 50 * SIM_MS;
	c->election_tick = 10;
	c->heartbeat_tick = 2;
	c->disk_min_us = 100;
	c->disk_max_us = 1000;
	c->delay_min_us = 100;
	c->delay_max_us = 1000;
	c->reliable = reliable;
	c->snap_every = snapshot ? 10 : 0;
	c->lab_blob = true;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : dflt;
}

struct sim *sim_new(const struct sim_config *c)
{
	struct sim *s = xcalloc(1, sizeof *s);
	uint64_t x;
	int i;

	s->cfg = *c;
	if (s->cfg.n < 1 || s->cfg.n > SIM_MAX_MEMBERS) {
		fprintf(stderr, "sim: bad member count %d\n", s->cfg.n);
		abort();
	}
	if (s->cfg.tick_us == 0)
		s->cfg.tick_us = 50 * SIM_MS;
	if (s->cfg.election_tick == 0)
		s->cfg.election_tick = 10;
	if (s->cfg.heartbeat_tick == 0)
		s->cfg.heartbeat_tick = 2;
	if (s->cfg.trace == 0)
		s->cfg.trace = env_int("SIM_TRACE", 0);
	s->n = s->cfg.n;
	x = s->cfg.seed;
	for (i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&x);
	for (i = 0; i < s->n; i++)
		s->m[i].connected = true;
	for (i = 0; i < s->n; i++) {
		int j;
		for (j = 0; j < s->n; j++)
			s->link[i][j] = i != j;
	}
	for (i = 0; i < s->n; i++)
		sim_start(s, i);
	return s;
}

static void member_free(struct member *m)
{
	struct pwrite *w, *next;
	size_t k;

	raft_free(m->r);
	m->r = NULL;
	for (w = m->wq_head; w; w = next) {
		next = w->next;
		pwrite_free(w);
	}
	for (k = 0; k < m->log_n; k++)
		dentry_free(&m->log[k]);
	free(m->log);
	free(m->snap_data);
	free(m->mlog);
}

void sim_free(struct sim *s)
{
	struct event *e;
	int i;

	if (s == NULL)
		return;
	if (env_int("SIM_VERBOSE", 0))
		fprintf(stderr, "[sim %" PRIu64 "] %s: %.1f s virtual, %" PRIu64
		    " events, %" PRIu64 " msgs (%" PRIu64 " bytes, %" PRIu64
		    " dropped), %" PRIu64 " elections, %" PRIu64 " applied, %"
		    PRIu64 " crashes, %" PRIu64 " snapshots, %" PRIu64
		    " checks\n", s->cfg.seed, s->name ? s->name : "sim",
		    s->now / 1e6, s->st.events, s->st.msgs_sent,
		    s->st.bytes_sent, s->st.msgs_dropped, s->st.elections,
		    s->g_max, s->st.crashes, s->st.snapshots_taken,
		    s->st.checks);
	for (i = 0; i < s->n; i++)
		member_free(&s->m[i]);
	if (s->cur != NULL) {
		s->cur->fn = NULL;
		ev_free(s, s->cur);
		s->cur = NULL;
	}
	if (s->cur_w != NULL) {
		pwrite_free(s->cur_w);
		s->cur_w = NULL;
	}
	while ((e = ev_pop(s)) != NULL) {
		if (e->kind == EV_CALL)
			e->fn = NULL;
		ev_free(s, e);
	}
	while ((e = s->free_ev) != NULL) {
		s->free_ev = e->arg;
		free(e);
	}
	free(s->heap);
	free(s->leader_of);
	free(s->g);
	free(s->cmap);
	free(s->reads);
	free(s);
}

/* ===================================================================== */
/* introspection                                                         */
/* ===================================================================== */

uint64_t sim_value_hash(const void *data, uint32_t len)
{
	return entry_value_hash(RAFT_ENTRY_NORMAL, data, len);
}

void sim_int_bytes(uint64_t v, uint8_t out[8])
{
	put_u64(out, v);
}

uint64_t sim_int_hash(uint64_t v)
{
	uint8_t b[8];

	put_u64(b, v);
	return sim_value_hash(b, 8);
}

uint64_t sim_cmd_index(struct sim *s, int i, raft_index index)
{
	if (i < 0) {
		if (index == 0)
			return 0;
		if (index > s->g_max || !s->g[index].set)
			sim_fail(s, "harness: index %" PRIu64 " not committed",
			    index);
		return s->g[index].cum;
	}
	if (index < s->m[i].mbase || index > mlast(&s->m[i]))
		sim_fail(s, "harness: index %" PRIu64 " not in n%d's log",
		    index, i + 1);
	return mcum(&s->m[i], index);
}

uint64_t sim_log_size(struct sim *s)
{
	uint64_t best = 0;
	int i;

	for (i = 0; i < s->n; i++) {
		struct member *m = &s->m[i];
		uint64_t sz = 16; /* hard state: term + vote */
		size_t k;

		for (k = 0; k < m->log_n; k++) {
			struct raft_entry e = {
				.term = m->log[k].term,
				.index = m->snap.index + 1 + k,
				.type = m->log[k].type,
				.len = m->log[k].len,
				.data = m->log[k].data,
			};
			sz += msg_entry_encoded_size(&e);
		}
		if (sz > best)
			best = sz;
	}
	return best;
}

uint64_t sim_snapshot_size(struct sim *s)
{
	uint64_t best = 0;
	int i;

	for (i = 0; i < s->n; i++)
		if (s->m[i].snap_len > best)
			best = s->m[i].snap_len;
	return best;
}

uint64_t sim_rpc_count(const struct sim *s, int i)
{
	return s->m[i].rpcs_in;
}

uint64_t sim_rpc_total(const struct sim *s)
{
	return s->st.rpcs;
}

uint64_t sim_bytes_total(const struct sim *s)
{
	return s->st.bytes_sent;
}

const struct sim_stats *sim_stats(const struct sim *s)
{
	return &s->st;
}

raft_index sim_max_applied(const struct sim *s)
{
	return s->g_max;
}

raft_index sim_applied(const struct sim *s, int i)
{
	return s->m[i].applied;
}

int sim_max_inflight(const struct sim *s, int from, int to)
{
	return s->inflight_max[from][to];
}

void sim_reset_inflight(struct sim *s)
{
	memset(s->inflight, 0, sizeof s->inflight);
	memset(s->inflight_max, 0, sizeof s->inflight_max);
}

uint64_t sim_append_rejects(const struct sim *s, int i)
{
	return s->m[i].append_rejects;
}

/* ===================================================================== */
/* tester helpers (raft1 test.go)                                        */
/* ===================================================================== */

int sim_check_one_leader(struct sim *s)
{
	int iters, i;

	for (iters = 0; iters < 10; iters++) {
		raft_term best = 0;
		int leader = -1;

		sim_sleep(s, (450 + sim_randn(s, 100)) * SIM_MS);
		for (i = 0; i < s->n; i++) {
			bool is_leader;
			raft_term t;
			int j;

			if (!s->m[i].connected)
				continue;
			t = sim_get_state(s, i, &is_leader);
			if (!is_leader)
				continue;
			for (j = 0; j < i; j++) {
				bool l2;
				if (s->m[j].connected &&
				    sim_get_state(s, j, &l2) == t && l2)
					sim_fail(s, "term %" PRIu64 " has 2 (>1) "
					    "leaders", t);
			}
			if (leader < 0 || t > best) {
				best = t;
				leader = i;
			}
		}
		if (leader >= 0)
			return leader;
	}
	sim_fail(s, "expected one leader, got none");
}

raft_term sim_check_terms(struct sim *s)
{
	raft_term term = 0;
	bool have = false;
	int i;

	for (i = 0; i < s->n; i++) {
		bool l;
		raft_term t;

		if (!s->m[i].connected)
			continue;
		t = sim_get_state(s, i, &l);
		if (!have) {
			term = t;
			have = true;
		} else if (t != term) {
			sim_fail(s, "servers disagree on term (%" PRIu64 " vs %"
			    PRIu64 ")", term, t);
		}
	}
	return term;
}

void sim_check_no_leader(struct sim *s)
{
	int i;

	for (i = 0; i < s->n; i++) {
		bool l;
		if (s->m[i].connected) {
			sim_get_state(s, i, &l);
			if (l)
				sim_fail(s, "expected no leader among connected "
				    "servers, but n%d claims to be leader", i + 1);
		}
	}
}

int sim_n_committed(struct sim *s, raft_index index, uint64_t *vh,
    bool *normal)
{
	int count = 0, i;

	if (vh)
		*vh = 0;
	if (normal)
		*normal = false;
	if (index == 0)
		return 0;
	for (i = 0; i < s->n; i++)
		if (s->m[i].applied >= index)
			count++;
	if (count) {
		/* Every member's map agrees with g[] (checked when applied). */
		if (vh)
			*vh = s->g[index].vh;
		if (normal)
			*normal = s->g[index].type == RAFT_ENTRY_NORMAL;
	}
	return count;
}

void sim_check_no_agreement(struct sim *s, raft_index index)
{
	int n = sim_n_committed(s, index, NULL, NULL);

	if (n > 0)
		sim_fail(s, "%d committed but no majority", n);
}

struct sim_one {
	uint8_t *cmd;
	uint32_t len;
	uint64_t vh;
	int expected;
	bool retry;
	uint64_t t0, t1;
	int starts;
	raft_index index;
	bool polling;
	bool done, failed;
	raft_index result;
};

static void one_step(struct sim *s, void *arg);

static void one_try(struct sim *s, struct sim_one *op)
{
	raft_index index = 0;
	bool found = false;
	int k;

	if (s->now - op->t0 >= 10 * SIM_SEC) {
		op->failed = op->done = true;
		return;
	}
	for (k = 0; k < s->n; k++) {
		raft_index idx;
		op->starts = (op->starts + 1) % s->n;
		if (!s->m[op->starts].connected || s->m[op->starts].r == NULL)
			continue;
		if (sim_propose(s, op->starts, op->cmd, op->len, &idx,
		    NULL) == 0) {
			index = idx;
			found = true;
			break;
		}
	}
	if (found) {
		op->index = index;
		op->t1 = s->now;
		op->polling = true;
		one_step(s, op);
	} else {
		sim_after(s, 50 * SIM_MS, one_step, op);
	}
}

static void one_step(struct sim *s, void *arg)
{
	struct sim_one *op = arg;

	if (op->done)
		return;
	if (!op->polling) {
		one_try(s, op);
		return;
	}
	if (s->now - op->t1 < 2 * SIM_SEC) {
		uint64_t vh;
		bool normal;
		int nd = sim_n_committed(s, op->index, &vh, &normal);
		if (nd > 0 && nd >= op->expected && normal && vh == op->vh) {
			op->result = op->index;
			op->done = true;
			return;
		}
		sim_after(s, 20 * SIM_MS, one_step, op);
		return;
	}
	if (!op->retry) {
		op->failed = op->done = true;
		return;
	}
	op->polling = false;
	one_try(s, op);
}

struct sim_one *sim_one_start(struct sim *s, const void *cmd, uint32_t len,
    int expected, bool retry)
{
	struct sim_one *op = xcalloc(1, sizeof *op);

	op->cmd = xmemdup(cmd, len);
	op->len = len;
	op->vh = sim_value_hash(cmd, len);
	op->expected = expected;
	op->retry = retry;
	op->t0 = s->now;
	one_try(s, op);
	return op;
}

bool sim_one_done(const struct sim_one *op)
{
	return op->done;
}

raft_index sim_one_finish(struct sim *s, struct sim_one *op)
{
	raft_index r;
	uint64_t v = 0;

	sim_run_until_flag(s, &op->done);
	r = op->result;
	if (op->failed) {
		uint32_t len = op->len;
		if (len == 8)
			v = get_u64(op->cmd);
		free(op->cmd);
		free(op);
		if (len == 8)
			sim_fail(s, "one(%" PRIu64 ") failed to reach agreement",
			    v);
		sim_fail(s, "one(<%u bytes>) failed to reach agreement", len);
	}
	free(op->cmd);
	free(op);
	return r;
}

raft_index sim_one(struct sim *s, const void *cmd, uint32_t len,
    int expected, bool retry)
{
	return sim_one_finish(s, sim_one_start(s, cmd, len, expected, retry));
}

raft_index sim_one_int(struct sim *s, uint64_t v, int expected, bool retry)
{
	uint8_t b[8];

	put_u64(b, v);
	return sim_one(s, b, 8, expected, retry);
}

bool sim_wait(struct sim *s, raft_index index, int n, raft_term start_term,
    uint64_t *vh, bool *normal)
{
	uint64_t to = 10 * SIM_MS;
	int iters, nd, i;

	for (iters = 0; iters < 30; iters++) {
		if (sim_n_committed(s, index, NULL, NULL) >= n)
			break;
		sim_sleep(s, to);
		if (to < SIM_SEC)
			to *= 2;
		if (start_term != SIM_NO_TERM) {
			for (i = 0; i < s->n; i++) {
				bool l;
				if (sim_get_state(s, i, &l) > start_term)
					return false;
			}
		}
	}
	nd = sim_n_committed(s, index, vh, normal);
	if (nd < n)
		sim_fail(s, "only %d decided for index %" PRIu64 "; wanted %d",
		    nd, index, n);
	return true;
}

/* ===================================================================== */
/* end-of-run checks                                                     */
/* ===================================================================== */

void sim_heal_and_check(struct sim *s, uint64_t limit_us,
    uint64_t catchup_us)
{
	uint64_t start, deadline, want;
	uint8_t cmd[16];
	bool committed = false;
	int i, majority = s->n / 2 + 1;

	for (i = 0; i < s->n; i++) {
		s->m[i].paused_until = 0;
		if (s->m[i].r == NULL)
			sim_start(s, i);
	}
	sim_connect_all(s);
	sim_set_reliable(s, true);
	sim_set_long_reordering(s, false);
	s->cfg.drop_ppm = s->cfg.dup_ppm = s->cfg.reorder_ppm = 0;
	if (s->cfg.delay_max_us > 20 * SIM_MS) {
		s->cfg.delay_min_us = 100;
		s->cfg.delay_max_us = 1000;
	}
	/* Liveness: a leader, then a fresh proposal applied by a majority. */
	start = s->now;
	deadline = start + limit_us;
	put_u64(cmd, 0x6c6976656e657373ull); /* "liveness" */
	put_u64(cmd + 8, s->now);
	while (!committed) {
		raft_index idx = 0;
		for (i = 0; i < s->n && idx == 0; i++) {
			bool l;
			sim_get_state(s, i, &l);
			if (l && sim_propose(s, i, cmd, sizeof cmd, &idx,
			    NULL) != 0)
				idx = 0;
		}
		if (idx) {
			uint64_t t1 = s->now;
			while (s->now - t1 < 2 * SIM_SEC && s->now < deadline) {
				uint64_t vh;
				bool normal;
				if (sim_n_committed(s, idx, &vh, &normal) >=
				    majority && vh == sim_value_hash(cmd,
				    sizeof cmd)) {
					committed = true;
					break;
				}
				sim_sleep(s, 10 * SIM_MS);
			}
		} else {
			sim_sleep(s, 10 * SIM_MS);
		}
		if (!committed && s->now >= deadline)
			sim_fail(s, "liveness: no proposal committed within %.1f s "
			    "of healing the cluster", limit_us / 1e6);
	}
	/* Durability: every member catches up with everything applied. */
	want = s->g_max;
	deadline = s->now + catchup_us;
	for (;;) {
		bool all = true;
		for (i = 0; i < s->n; i++)
			if (s->m[i].applied < want)
				all = false;
		if (all)
			break;
		if (s->now >= deadline) {
			for (i = 0; i < s->n; i++)
				if (s->m[i].applied < want)
					sim_fail(s, "no lost entries: n%d applied "
					    "only up to %" PRIu64 " of %" PRIu64
					    " within %.1f s of healing", i + 1,
					    s->m[i].applied, want,
					    catchup_us / 1e6);
		}
		sim_sleep(s, 10 * SIM_MS);
	}
}
