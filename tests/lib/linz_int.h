/*
 * linz_int.h - internals shared by the linearizability checker's files.
 *
 *	linz.c		history, string table, linz_check(), reports
 *	linz_model.c	the strict and lab models
 *	linz_search.c	the per-key search and its cache
 *
 * Nothing here is for users of linz.h.  Internal functions are prefixed
 * linz__ (libuv's uv__ convention).
 */
#ifndef RAFTKV_TESTS_LINZ_INT_H
#define RAFTKV_TESTS_LINZ_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/lib/linz.h"

/* Allocation for test code: out of memory aborts with a message. */
void *linz__xmalloc(size_t n);
void *linz__xcalloc(size_t n, size_t size);
void *linz__xrealloc(void *p, size_t n);

uint64_t linz__mix64(uint64_t x); /* splitmix64 finalizer */
uint64_t linz__now_ns(void); /* CLOCK_MONOTONIC */

/* String id of "" (interned first): the lab model's initial value. */
#define LINZ__EMPTY 0

/* One operation as stored: strings replaced by interned ids. */
struct rec {
	uint64_t client;
	uint64_t call;
	uint64_t ret; /* LINZ_NEVER if never returned */
	uint64_t version;
	uint32_t key; /* string id */
	uint32_t val; /* string id (LINZ__EMPTY for Delete) */
	uint8_t kind; /* enum linz_kind */
	uint8_t result; /* enum linz_res */
};

/*
 * State of one key.  Strict model: absent = all zero.  Lab model: exists
 * is always 0 and the initial state is {0, LINZ__EMPTY}.
 */
struct mstate {
	uint64_t version;
	uint32_t val; /* string id */
	uint32_t exists;
};

static inline bool mstate_eq(const struct mstate *a, const struct mstate *b)
{
	return a->version == b->version && a->val == b->val &&
	    a->exists == b->exists;
}

static inline uint64_t mstate_hash(const struct mstate *s)
{
	return linz__mix64(s->version * 0x9e3779b97f4a7c15ULL ^
	    ((uint64_t)s->val << 1 | s->exists));
}

/* ---- linz_model.c ---- */

/*
 * The states @op may leave behind when linearized in state @s, written
 * to @out: none if it is illegal there, else one, or two for a write
 * that may or may not have applied (then "applied" first, "no effect"
 * last).  Returns how many.
 */
int linz__model_step(enum linz_model model, const struct mstate *s,
    const struct rec *op, struct mstate out[2]);

/* What a strict-model Put/Delete would answer in state @s (for reports). */
int linz__strict_answer(const struct mstate *s, const struct rec *op);

/*
 * May @op be taken as having had no effect, in any state?  Writes with an
 * unknown answer; in the strict model also ErrMaybe (the lab resolves its
 * ErrMaybe by the state).  Their "no effect" alternative is always last.
 */
bool linz__droppable(enum linz_model model, const struct rec *op);

/*
 * Is @op read-only: wherever it is legal, does it leave the state as it
 * is?  Gets, and writes answered ErrVersion or ErrNoKey.  A legal
 * read-only operation has exactly one successor, the state itself.
 */
bool linz__read_only(const struct rec *op);

/* ---- linz_search.c ---- */

/* Event list node: node 2*id is op id's call, 2*id+1 its return. */
struct node {
	struct node *prev, *next;
	struct node *match; /* call: its return; return: NULL */
	uint32_t id;
};

struct frame {
	struct node *call;
	struct mstate before; /* state before this operation */
	int64_t hi_before;
	int alt; /* successor index, or ALT_* */
	bool jit; /* applied never-returning write */
	struct node *r; /* such a write: the scan's return */
};

struct cache {
	struct cent **slots; /* entries, open addressing */
	size_t nslots; /* power of two */
	struct cvar **vslots; /* variants (with never-returning) */
	size_t nvslots;
	size_t nentries; /* (returned set, state) pairs */
	size_t count; /* configurations */
	size_t bytes; /* memory held */
	struct arena_chunk *chunks;
};

/*
 * One key's search.  Local ids: the operations that returned, in call
 * order, then those that never did (also in call order).
 */
struct search {
	enum linz_model model;
	const struct rec *const *ops; /* local id -> record */
	uint32_t n;
	uint32_t nf; /* ids < nf returned */
	struct node head; /* events of ops < nf */
	struct node *vheads; /* calls of ops >= nf, by version */
	uint64_t *vkeys; /* their versions, ascending */
	uint32_t nv;
	struct node *nodes; /* 2n */
	uint64_t *bits; /* linearized ids < nf */
	uint64_t *obits; /* linearized ids >= nf, from bit 0 */
	uint32_t onwords; /* words in obits */
	uint32_t m; /* lowest id < nf not linearized */
	int64_t hi; /* highest linearized id < nf, or -1 */
	uint64_t zob; /* XOR of zobrist(id), linearized < nf */
	uint64_t ozob; /* the same, linearized >= nf */
	struct mstate state;
	struct frame *stack;
	uint32_t depth;
	uint32_t fdepth; /* frames of ops < nf */
	struct cache cache;
	uint64_t deadline; /* 0: none */
	size_t max_bytes; /* cache memory limit, 0: none */
	uint64_t iters;
	const char *gave_up; /* why LINZ_UNKNOWN */
	/* the deepest dead end seen, for the report */
	bool failed;
	uint32_t best_depth;
	uint32_t best_fdepth;
	uint32_t best_same; /* frames below are as recorded */
	uint32_t *best_ids; /* prefix, local ids */
	struct mstate *best_after; /* state after each prefix op */
	uint32_t *best_stuck; /* [0]: op whose return blocked */
	uint32_t nbest_stuck;
	struct mstate best_state;
};

/*
 * Prepare a search over @ops (@n records of one key, sorted as described
 * for struct search; borrowed for the search's life).  @deadline is a
 * linz__now_ns() time or 0; @max_bytes bounds the cache (0: no bound).
 */
void linz__search_init(struct search *s, enum linz_model model,
    const struct rec *const *ops, uint32_t n, uint64_t deadline,
    size_t max_bytes);

/* Run it: LINZ_OK, LINZ_ILLEGAL, or LINZ_UNKNOWN (s->gave_up says why). */
enum linz_verdict linz__search_run(struct search *s);

void linz__search_free(struct search *s);

#endif /* RAFTKV_TESTS_LINZ_INT_H */
