/*
 * linz_search.c - one key's linearizability search (Wing & Gong / Lowe,
 * as in Porcupine's checkSingle), with a cache and four reductions.
 *
 * The call/return events of the operations that returned are sorted by
 * (time, calls before returns, id) into a doubly linked list behind a
 * head node; the calls of the writes that never returned are kept apart,
 * in call order, one list per version (their returns would all sit at
 * the end of the list, and only those whose version the state accepts
 * can apply).
 * Invariant: the lists hold exactly the events of the operations not
 * linearized yet.  A configuration is (set of linearized operations,
 * model state).  Its candidates are the calls in front of the list's
 * first return event r, and the never-returning writes called before r:
 * operations already called that nothing unlinearized must precede.
 *
 *   call of op i	linearize i next, if the model allows it and the
 *			resulting configuration is not in the cache: push a
 *			frame, lift i's events out of the list, start again
 *			at the head.  Otherwise try the next event.
 *   return r		first try the never-returning writes (after the
 *			ordinary candidates: they rarely are what is
 *			needed).  Then r's operation had to be linearized
 *			by now and cannot be: a dead end.  Pop the last
 *			frame, put its events back, try its next
 *			alternative or the candidates after it.  Popping an
 *			empty stack: the key is not linearizable.
 *   empty list		every operation that returned is linearized: the
 *			key is linearizable (never-returning writes not
 *			applied never took effect).
 *
 * The cache holds every configuration pushed; reaching one again means
 * it was explored and failed (it cannot be on the stack: the set grows
 * along the stack).  An ErrMaybe/unknown write, whose step has two
 * outcomes, is explored once per outcome (Porcupine runs a power-set
 * model instead; the orders explored are the same).
 *
 * Reductions.  Each skips configurations only when an order explored
 * elsewhere reaches everything they could; the randomized test compares
 * every verdict with a brute-force search over all orders, on shapes
 * chosen to exercise all four.
 *
 *  1 Read-only first.  A read-only operation (linz__read_only()) that is
 *    legal in the current state commutes to the front of any order that
 *    works from here: it is a candidate, so everything it must follow is
 *    linearized; it is legal now; it changes nothing.  So each new
 *    configuration's candidates are first scanned for one; if there is
 *    one, it is the only branch (ALT_FORCED), and when it fails the whole
 *    configuration fails.  Without this, a failing search enumerates
 *    every interleaving of the reads that preceded the violation.
 *
 *  2 Drop at the return.  A write that may have had no effect
 *    (linz__droppable()) is tried as "applied" at its call event, and
 *    "no effect" only at its return event (ALT_DROP), the latest point
 *    it may be placed: having no effect, it can always move there.  At a
 *    return event nothing else can come next anyway.
 *
 *  3 Apply just in time.  A write that never returned may apply at any
 *    later point.  But once applied it can move later past any operation
 *    it commutes with (no real-time constraint holds it back), so it is
 *    only applied when the very next operation does not commute with it:
 *    the frame is marked jit, and try_push() refuses a successor that
 *    commutes.  The obligation is part of the configuration, and of its
 *    cache entry.
 *
 *  4 Fewer never-returning writes applied dominate.  Of two
 *    configurations with the same returned operations linearized and the
 *    same state, the one with a subset of the never-returning writes
 *    applied can do all the other can (the rest may still apply, or
 *    never).  So a cached one without obligation prunes those with a
 *    superset (add_variant()).  With Deletes restarting versions, states
 *    converge and these configurations otherwise multiply as 2^k.
 *
 * Cache entries.  Porcupine stores a full bitset per entry, which for one
 * key with 50k operations would be 6 KB each.  But the linearized set of
 * returned operations is almost always "every id below m, and a few just
 * above" (m, the lowest unlinearized id: ids are in call order, and
 * whatever returned before the first pending call is linearized).  So an
 * entry (struct cent) stores m and the words from word m/64 to the word
 * of the highest linearized id -- a canonical form, so comparison stays
 * exact -- and the state; its hash is a Zobrist XOR over the linearized
 * ids (O(1) to update) mixed with the state's.  An entry's variants
 * (struct cvar) add the bitset of never-returning writes applied and the
 * obligation: found exactly through a second table, and those without
 * obligation listed on the entry for reduction 4 (a 64-bit signature
 * rejects most non-subsets at once).
 *
 * Report.  Each dead end deeper than any before records the stack (the
 * longest linearizable prefix found), the state after it and the
 * candidates in front of the blocking return event.
 */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/linz_int.h"

#define ALT_DROP 2 /* reduction 2: dropped, no effect */
#define ALT_FORCED 3 /* reduction 1: read-only, first */
#define NO_JIT UINT32_MAX

/* ----------------------------------------------------------------------
 * cache
 * ---------------------------------------------------------------------- */

/*
 * An entry: one set of returned operations linearized and one state.
 * Its variants are the configurations seen with them: which
 * never-returning writes were applied, and the obligation.  Without
 * never-returning writes there is only ever one (vars != NULL).
 * Variants are found exactly through the variant table (hash: entry,
 * ozob, obligation); those without obligation are also on the entry's
 * list, newest first, for the dominance check.
 */
struct cvar {
	struct cent *owner;
	struct cvar *next; /* owner's list (no obligation) */
	uint64_t vhash;
	uint64_t sig; /* osig(): quick subset test */
	uint32_t jit; /* obligation: id, or NO_JIT */
	uint32_t pad;
	uint64_t obits[]; /* never-returning writes applied */
};

struct cent {
	uint64_t hash;
	struct mstate st;
	uint32_t m; /* lowest id < nf not linearized */
	uint32_t nwords; /* window words from word m/64 */
	struct cvar *vars;
	uint64_t words[]; /* the window */
};

/* Variants without obligation checked for dominance, newest first: a
 * bound on the cost of a lookup; skipping one only loses pruning. */
#define DOMINANCE_SCAN 64

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap; /* in words */
	uint64_t data[];
};

static void *arena_alloc(struct cache *c, size_t bytes)
{
	struct arena_chunk *ch = c->chunks;
	size_t words = (bytes + 7) / 8;
	void *p;

	if (ch == NULL || ch->cap - ch->used < words) {
		size_t cap = words > 65536 ? words : 65536;

		ch = linz__xmalloc(sizeof(*ch) + cap * 8);
		ch->used = 0;
		ch->cap = cap;
		ch->next = c->chunks;
		c->chunks = ch;
		c->bytes += sizeof(*ch) + cap * 8;
	}
	p = &ch->data[ch->used];
	ch->used += words;
	return p;
}

/* Double an open-addressing table of @*nslots pointers to entries or
 * variants (whose hash is at @hash_off). */
static void table_grow(struct cache *c, void ***slotsp, size_t *nslotsp,
    size_t hash_off)
{
	size_t nslots = *nslotsp ? *nslotsp * 2 : 4096;
	void **slots = linz__xcalloc(nslots, sizeof(*slots));
	size_t i, j;

	for (i = 0; i < *nslotsp; i++) {
		uint64_t h;

		if ((*slotsp)[i] == NULL)
			continue;
		memcpy(&h, (char *)(*slotsp)[i] + hash_off, sizeof(h));
		for (j = h & (nslots - 1); slots[j] != NULL;
		     j = (j + 1) & (nslots - 1))
			;
		slots[j] = (*slotsp)[i];
	}
	free(*slotsp);
	c->bytes += (nslots - *nslotsp) * sizeof(*slots);
	*slotsp = slots;
	*nslotsp = nslots;
}

static void cache_free(struct cache *c)
{
	struct arena_chunk *ch, *next;

	for (ch = c->chunks; ch != NULL; ch = next) {
		next = ch->next;
		free(ch);
	}
	free(c->slots);
	free(c->vslots);
	memset(c, 0, sizeof(*c));
}

/*
 * A signature of the applied never-returning writes: the bitset's words
 * rotated differently and OR-ed -- a bit permutation of each word, so
 * that A subset of B implies sig(A) & ~sig(B) == 0.
 */
static uint64_t osig(const struct search *s)
{
	uint64_t sig = 0;
	uint32_t i;

	for (i = 0; i < s->onwords; i++) {
		unsigned r = (i * 29) & 63;

		sig |= r ? s->obits[i] << r | s->obits[i] >> (64 - r)
		         : s->obits[i];
	}
	return sig;
}

/* Is every write applied in @v also applied now? */
static bool subset_of_current(const struct search *s, const struct cvar *v,
    uint64_t sig)
{
	uint32_t i;

	if ((v->sig & ~sig) != 0)
		return false;
	for (i = 0; i < s->onwords; i++) {
		if (v->obits[i] & ~s->obits[i])
			return false;
	}
	return true;
}

/*
 * Is the current variant (obits, obligation @jit) explored already, or
 * dominated by one explored (reduction 4): no obligation and a subset of
 * the never-returning writes applied?  If not, add it.
 */
static bool add_variant(struct search *s, struct cent *e, uint32_t jit)
{
	struct cache *c = &s->cache;
	size_t obytes = (size_t)s->onwords * 8;
	uint64_t vhash = linz__mix64((uintptr_t)e ^ s->ozob) ^ linz__mix64(jit);
	uint64_t sig;
	struct cvar *v;
	size_t j;
	int scan;

	if (s->nf == s->n) {
		/* No never-returning writes: one variant, no obligation. */
		if (e->vars != NULL)
			return false;
		e->vars = arena_alloc(c, sizeof(*v));
		memset(e->vars, 0, sizeof(*v));
		e->vars->owner = e;
		e->vars->jit = NO_JIT;
		c->count++;
		return true;
	}
	if (c->count * 2 >= c->nvslots)
		table_grow(c, (void ***)&c->vslots, &c->nvslots,
		    offsetof(struct cvar, vhash));
	for (j = vhash & (c->nvslots - 1); (v = c->vslots[j]) != NULL;
	     j = (j + 1) & (c->nvslots - 1)) {
		if (v->vhash == vhash && v->owner == e && v->jit == jit &&
		    memcmp(v->obits, s->obits, obytes) == 0)
			return false;
	}
	sig = osig(s);
	for (v = e->vars, scan = 0; v != NULL && scan < DOMINANCE_SCAN;
	     v = v->next, scan++) {
		if (subset_of_current(s, v, sig))
			return false;
	}
	v = arena_alloc(c, sizeof(*v) + obytes);
	v->owner = e;
	v->vhash = vhash;
	v->sig = sig;
	v->jit = jit;
	v->pad = 0;
	memcpy(v->obits, s->obits, obytes);
	v->next = NULL;
	if (jit == NO_JIT) {
		v->next = e->vars;
		e->vars = v;
	}
	c->vslots[j] = v;
	c->count++;
	return true;
}

/*
 * Add the current configuration -- set (bits/m/hi/zob, obits), state @st,
 * obligation @jit -- to the cache.  Returns false if it was explored
 * already (or is dominated, see add_variant()).
 */
static bool cache_add(struct search *s, const struct mstate *st, uint32_t jit)
{
	struct cache *c = &s->cache;
	uint64_t hash = s->zob ^ mstate_hash(st);
	uint32_t lo = s->m >> 6;
	uint32_t nwords = s->hi >= (int64_t)s->m
	    ? (uint32_t)(s->hi >> 6) - lo + 1
	    : 0;
	const uint64_t *words = s->bits + lo;
	struct cent *e;
	size_t j;

	if (c->nentries * 2 >= c->nslots)
		table_grow(c, (void ***)&c->slots, &c->nslots,
		    offsetof(struct cent, hash));
	for (j = hash & (c->nslots - 1); (e = c->slots[j]) != NULL;
	     j = (j + 1) & (c->nslots - 1)) {
		if (e->hash == hash && e->m == s->m && e->nwords == nwords &&
		    mstate_eq(&e->st, st) &&
		    memcmp(e->words, words, (size_t)nwords * 8) == 0)
			return add_variant(s, e, jit);
	}
	e = arena_alloc(c, sizeof(*e) + (size_t)nwords * 8);
	e->hash = hash;
	e->st = *st;
	e->m = s->m;
	e->nwords = nwords;
	e->vars = NULL;
	memcpy(e->words, words, (size_t)nwords * 8);
	c->slots[j] = e;
	c->nentries++;
	return add_variant(s, e, jit);
}

/* ----------------------------------------------------------------------
 * the linearized set and the event list
 * ---------------------------------------------------------------------- */

static uint64_t zobrist(uint32_t id)
{
	return linz__mix64(id + 0x632be59bd9b4e019ULL);
}

/* Move m up to the lowest unlinearized id < nf (or nf). */
static void advance_m(struct search *s)
{
	uint32_t w = s->m >> 6;
	uint32_t nw = (s->nf + 63) >> 6;
	uint64_t inv = ~s->bits[w] & (~0ULL << (s->m & 63));

	while (inv == 0 && ++w < nw)
		inv = ~s->bits[w];
	s->m = w < nw ? (w << 6) + (uint32_t)__builtin_ctzll(inv) : s->nf;
	if (s->m > s->nf)
		s->m = s->nf;
}

/*
 * Flip @id in the linearized set (m and hi are the caller's).
 */
static void flip(struct search *s, uint32_t id)
{
	if (id < s->nf) {
		s->bits[id >> 6] ^= 1ULL << (id & 63);
		s->zob ^= zobrist(id);
	} else {
		s->obits[(id - s->nf) >> 6] ^= 1ULL << ((id - s->nf) & 63);
		s->ozob ^= zobrist(id);
	}
}

static void lift(struct node *call)
{
	struct node *ret = call->match;

	call->prev->next = call->next;
	call->next->prev = call->prev; /* its return follows: never NULL */
	ret->prev->next = ret->next;
	if (ret->next != NULL)
		ret->next->prev = ret->prev;
}

static void unlift(struct node *call)
{
	struct node *ret = call->match;

	ret->prev->next = ret;
	if (ret->next != NULL)
		ret->next->prev = ret;
	call->prev->next = call;
	call->next->prev = call;
}

/* ----------------------------------------------------------------------
 * pushing and popping
 * ---------------------------------------------------------------------- */

/*
 * Reduction 3: is the top frame an applied never-returning write u that
 * @op, leading to @next, commutes with?  That is: could @op go first,
 * from the state before u, and u after it, reaching @next the same?
 */
static bool commutes_with_top(const struct search *s, const struct rec *op,
    const struct mstate *next)
{
	const struct frame *f;
	struct mstate first[2], then[2];
	int i, n;

	if (s->depth == 0 || !s->stack[s->depth - 1].jit)
		return false;
	f = &s->stack[s->depth - 1];
	n = linz__model_step(s->model, &f->before, op, first);
	for (i = 0; i < n; i++) {
		/* u's step has two outcomes exactly when it can apply */
		if (linz__model_step(s->model, &first[i], s->ops[f->call->id],
		        then) == 2 &&
		    mstate_eq(&then[0], next))
			return true;
	}
	return false;
}

/*
 * Linearize @call's operation next, reaching state @st, unless reduction
 * 3 forbids it or the configuration is cached.  @jit: it is an applied
 * never-returning write.  Returns true if pushed.
 */
static bool try_push(struct search *s, struct node *call, int alt,
    const struct mstate *st, bool jit)
{
	uint32_t id = call->id;
	uint32_t m_before = s->m;
	int64_t hi_before = s->hi;
	struct mstate next = *st; /* @st may point into the stack */
	struct frame *f;

	if (commutes_with_top(s, s->ops[id], &next))
		return false;
	flip(s, id);
	if (id < s->nf && (int64_t)id > s->hi)
		s->hi = id;
	if (id == s->m)
		advance_m(s);
	if (!cache_add(s, &next, jit ? id : NO_JIT)) {
		flip(s, id);
		s->hi = hi_before;
		s->m = m_before;
		return false;
	}
	f = &s->stack[s->depth++];
	f->call = call;
	f->before = s->state;
	f->hi_before = hi_before;
	f->alt = alt;
	f->jit = jit;
	f->r = NULL;
	s->state = next;
	if (id < s->nf) {
		s->fdepth++;
		lift(call);
	} else {
		call->prev->next = call->next;
		if (call->next != NULL)
			call->next->prev = call->prev;
	}
	return true;
}

static struct frame pop(struct search *s)
{
	struct frame f = s->stack[--s->depth];
	uint32_t id = f.call->id;

	flip(s, id);
	s->hi = f.hi_before;
	if (id < s->m)
		s->m = id;
	s->state = f.before;
	if (id < s->nf) {
		s->fdepth--;
		unlift(f.call);
	} else {
		f.call->prev->next = f.call;
		if (f.call->next != NULL)
			f.call->next->prev = f.call;
	}
	if (s->depth < s->best_same)
		s->best_same = s->depth;
	return f;
}

enum place {
	PLACED, /* pushed: a new configuration */
	NEXT, /* not here: go on to the next event */
	DEAD, /* the whole configuration fails */
};

/* Reduction 1: place a legal read-only candidate, if there is one. */
static enum place place_read_only(struct search *s)
{
	struct node *e;
	struct mstate succ[2];

	for (e = s->head.next; e != NULL && e->match != NULL; e = e->next) {
		const struct rec *op = s->ops[e->id];

		if (!linz__read_only(op) ||
		    linz__model_step(s->model, &s->state, op, succ) == 0)
			continue;
		assert(mstate_eq(&succ[0], &s->state));
		return try_push(s, e, ALT_FORCED, &succ[0], false) ? PLACED
		                                                   : DEAD;
	}
	return NEXT;
}

/* Linearize the (not read-only) @call next, alternatives >= @alt. */
static enum place try_place(struct search *s, struct node *call, int alt)
{
	const struct rec *op = s->ops[call->id];
	bool drop = linz__droppable(s->model, op);
	struct mstate succ[2];
	int n = linz__model_step(s->model, &s->state, op, succ);

	if (drop)
		n--; /* "no effect" waits for the return (2) */
	for (; alt < n; alt++) {
		if (try_push(s, call, alt, &succ[alt],
		        drop && op->ret == LINZ_NEVER))
			return PLACED;
	}
	return NEXT;
}

/*
 * A dead end at the return event @ret: record it if it is the deepest,
 * counting the operations that returned; between equally deep ones,
 * prefer fewer never-returning writes applied (those are speculation,
 * not progress, and make the explanation harder to follow).
 * Only the frames above best_same (the lowest depth popped to since the
 * last record) can differ from the recorded prefix: a legal search that
 * keeps backtracking a little on its way down would otherwise copy its
 * whole stack each time, O(n^2).
 */
static void note_failure(struct search *s, const struct node *ret)
{
	const struct node *e;
	uint32_t i;

	if (s->failed &&
	    (s->fdepth < s->best_fdepth ||
	        (s->fdepth == s->best_fdepth &&
	            s->depth - s->fdepth >= s->best_depth - s->best_fdepth)))
		return;
	s->failed = true;
	s->best_fdepth = s->fdepth;
	s->best_depth = s->depth;
	i = s->best_same > 0 ? s->best_same - 1 : 0;
	s->best_same = s->depth;
	for (; i < s->depth; i++) {
		s->best_ids[i] = s->stack[i].call->id;
		s->best_after[i] = i + 1 < s->depth ? s->stack[i + 1].before
		                                    : s->state;
	}
	s->best_state = s->state;
	s->nbest_stuck = 0;
	s->best_stuck[s->nbest_stuck++] = ret->id;
	for (e = s->head.next; e != ret; e = e->next) {
		if (e->match != NULL && e->id != ret->id)
			s->best_stuck[s->nbest_stuck++] = e->id;
	}
}

/*
 * The first never-returning write that could apply in the current state:
 * those are kept in one list per version (their input), in call order,
 * and only the list of the version the state would accept can apply (a
 * write that cannot apply is better left pending: see reduction 4).
 */
static struct node *never_first(const struct search *s)
{
	uint64_t want = s->model == LINZ_MODEL_STRICT && !s->state.exists
	    ? 0
	    : s->state.version;
	uint32_t lo = 0, hi = s->nv;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->vkeys[mid] < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nv && s->vkeys[lo] == want ? s->vheads[lo].next : NULL;
}

/*
 * Where the scan of the current configuration stands.  Phase 1 walks the
 * event list (r == NULL, e: next event).  When it reaches a return event
 * r, phase 2 tries the never-returning writes called before r that could
 * apply (u: next one to try).  Then nothing else can come before r: r's
 * operation is dropped if it may have had no effect, else this is a dead
 * end.
 */
struct cursor {
	struct node *e;
	struct node *u;
	struct node *r;
};

/* One step of the scan: PLACED a new configuration, went on (NEXT), or
 * the configuration failed (DEAD). */
static enum place scan(struct search *s, struct cursor *c)
{
	struct node *e = c->e;

	if (c->r == NULL) {
		if (e->match != NULL) {
			c->e = e->next;
			/* Read-only candidates are illegal here (1). */
			if (linz__read_only(s->ops[e->id]))
				return NEXT;
			return try_place(s, e, 0);
		}
		c->r = e;
		c->u = never_first(s);
	}
	if (c->u != NULL && s->ops[c->u->id]->call <= s->ops[c->r->id]->ret) {
		struct node *u = c->u;

		c->u = u->next;
		if (try_place(s, u, 0) != PLACED)
			return NEXT;
		s->stack[s->depth - 1].r = c->r;
		return PLACED;
	}
	if (linz__droppable(s->model, s->ops[c->r->id]))
		return try_push(s, &s->nodes[2 * c->r->id], ALT_DROP, &s->state,
		           false)
		    ? PLACED
		    : DEAD;
	note_failure(s, c->r);
	return DEAD;
}

/*
 * The current configuration failed: pop until a frame has another
 * alternative (returns true, *@fresh) or candidates after it (returns
 * true, the scan goes on at *@c).  Returns false when the stack ran out.
 */
static bool backtrack(struct search *s, struct cursor *c, bool *fresh)
{
	while (s->depth > 0) {
		struct frame f = pop(s);

		/* A forced placement or a drop was the only way on. */
		if (f.alt == ALT_DROP || f.alt == ALT_FORCED)
			continue;
		*fresh = try_place(s, f.call, f.alt + 1) == PLACED;
		if (*fresh)
			s->stack[s->depth - 1].r = f.r;
		else if (f.call->id < s->nf)
			*c = (struct cursor){ f.call->next, NULL, NULL };
		else
			*c = (struct cursor){ NULL, f.call->next, f.r };
		return true;
	}
	return false;
}

static bool out_of_budget(struct search *s)
{
	if ((++s->iters & 1023) != 0)
		return false;
	if (s->deadline != 0 && linz__now_ns() >= s->deadline) {
		s->gave_up = "timeout";
		return true;
	}
	if (s->max_bytes != 0 && s->cache.bytes > s->max_bytes) {
		s->gave_up = "memory limit";
		return true;
	}
	return false;
}

enum linz_verdict linz__search_run(struct search *s)
{
	struct cursor c = { s->head.next, NULL, NULL };
	bool fresh = true;

	/* Done when every operation that returned is linearized; writes
	 * that never returned and were not applied never took effect. */
	while (s->head.next != NULL) {
		enum place p;

		if (out_of_budget(s))
			return LINZ_UNKNOWN;
		if (fresh) {
			p = place_read_only(s);
			if (p == PLACED)
				continue;
			fresh = false;
			c = (struct cursor){ s->head.next, NULL, NULL };
		} else {
			p = scan(s, &c);
			if (p == PLACED) {
				fresh = true;
				continue;
			}
		}
		if (p == DEAD && !backtrack(s, &c, &fresh))
			return LINZ_ILLEGAL;
	}
	return LINZ_OK;
}

/* ----------------------------------------------------------------------
 * setup
 * ---------------------------------------------------------------------- */

struct event {
	uint64_t time;
	uint32_t id;
	uint32_t is_ret;
};

static int event_cmp(const void *pa, const void *pb)
{
	const struct event *a = pa, *b = pb;

	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	if (a->is_ret != b->is_ret)
		return a->is_ret ? 1 : -1; /* ties: calls first */
	return a->id < b->id ? -1 : a->id > b->id;
}

struct vid {
	uint64_t version;
	uint32_t id;
};

static int vid_cmp(const void *pa, const void *pb)
{
	const struct vid *a = pa, *b = pb;

	if (a->version != b->version)
		return a->version < b->version ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* One list per version of the never-returning writes, in call order. */
static void init_never_lists(struct search *s)
{
	uint32_t i, k, nn = s->n - s->nf;
	struct vid *v = linz__xmalloc(((size_t)nn + 1) * sizeof(*v));
	struct node *prev = NULL;

	for (i = 0; i < nn; i++)
		v[i] = (struct vid){ s->ops[s->nf + i]->version, s->nf + i };
	qsort(v, nn, sizeof(*v), vid_cmp);
	s->vkeys = linz__xmalloc(((size_t)nn + 1) * sizeof(*s->vkeys));
	s->vheads = linz__xcalloc((size_t)nn + 1, sizeof(*s->vheads));
	for (i = 0, k = 0; i < nn; i++) {
		struct node *nd = &s->nodes[2 * v[i].id];

		if (i == 0 || v[i].version != v[i - 1].version) {
			if (prev != NULL)
				prev->next = NULL;
			s->vkeys[k] = v[i].version;
			prev = &s->vheads[k++];
		}
		nd->id = v[i].id;
		nd->prev = prev;
		prev->next = nd;
		prev = nd;
	}
	if (prev != NULL)
		prev->next = NULL;
	s->nv = k;
	free(v);
}

void linz__search_init(struct search *s, enum linz_model model,
    const struct rec *const *ops, uint32_t n, uint64_t deadline,
    size_t max_bytes)
{
	struct event *ev = linz__xmalloc(2 * (size_t)n * sizeof(*ev));
	struct node *prev = &s->head;
	uint32_t i;

	memset(s, 0, sizeof(*s));
	s->model = model;
	s->ops = ops;
	s->n = n;
	for (s->nf = n; s->nf > 0 && ops[s->nf - 1]->ret == LINZ_NEVER; s->nf--)
		;
	s->onwords = (n - s->nf + 63) / 64;
	s->hi = -1;
	s->deadline = deadline;
	s->max_bytes = max_bytes;
	s->state.val = LINZ__EMPTY;
	for (i = 0; i < s->nf; i++) {
		ev[2 * i] = (struct event){ ops[i]->call, i, 0 };
		ev[2 * i + 1] = (struct event){ ops[i]->ret, i, 1 };
	}
	qsort(ev, 2 * (size_t)s->nf, sizeof(*ev), event_cmp);
	s->nodes = linz__xcalloc(2 * (size_t)n, sizeof(*s->nodes));
	for (i = 0; i < 2 * s->nf; i++) {
		struct node *nd = &s->nodes[2 * ev[i].id + ev[i].is_ret];

		nd->id = ev[i].id;
		nd->match = ev[i].is_ret ? NULL : &s->nodes[2 * ev[i].id + 1];
		nd->prev = prev;
		prev->next = nd;
		prev = nd;
	}
	prev->next = NULL;
	free(ev);
	init_never_lists(s);
	s->bits = linz__xcalloc(((size_t)s->nf + 63) / 64 + 1, 8);
	s->obits = linz__xcalloc((size_t)s->onwords + 1, 8);
	s->stack = linz__xmalloc((size_t)n * sizeof(*s->stack));
	s->best_ids = linz__xmalloc((size_t)n * sizeof(*s->best_ids));
	s->best_after = linz__xmalloc((size_t)n * sizeof(*s->best_after));
	s->best_stuck = linz__xmalloc((size_t)n * sizeof(*s->best_stuck));
}

void linz__search_free(struct search *s)
{
	cache_free(&s->cache);
	free(s->nodes);
	free(s->bits);
	free(s->obits);
	free(s->vkeys);
	free(s->vheads);
	free(s->stack);
	free(s->best_ids);
	free(s->best_after);
	free(s->best_stuck);
}
