/*
 * kvgroup.h - a map task's output grouped by key in a hash table, for apps
 * with a shared-object combiner.
 *
 * The sort path (kvbuf.h) sorts every emitted pair before combining: for
 * word count that is a sort of millions of ("the", "1") pairs per split.
 * Here each emit is a hash lookup and an append to the key's value list;
 * when the values pass a byte budget (small, so a round works in cache:
 * walking value lists spread over a large arena was half of the map's
 * time) every key's values are combined in place (the combiner sees a key's values in emit order: combiners are
 * associative and commutative by contract), so memory is bounded by the
 * distinct keys and only those are sorted, once, at the end.  The next
 * round starts at 4x what a round left (rounds stay amortized when there
 * are many keys); a round that does not halve the values (few repeated
 * keys) stops combining and the table just grows.
 */
#ifndef RAFTKV_MR_KVGROUP_H
#define RAFTKV_MR_KVGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "mr/kvbuf.h"
#include "mr/mr.h"

typedef int (*kvgroup_combine_fn)(struct mr_ctx *, const char *, size_t,
    const struct mr_values *);

struct kvg_val {
	size_t off;
	uint32_t len;
	uint32_t next; /* index + 1 of the next value, 0 = last */
};

struct kvg_grp {
	size_t koff;
	uint32_t klen, hash;
	uint32_t head, tail; /* index + 1 into vals */
	uint32_t n;
};

struct kvgroup {
	char *keys;
	size_t kused, kcap;
	char *vdata;
	size_t vused, vcap;
	struct kvg_val *v;
	size_t nv, nvalloc;
	struct kvg_grp *g;
	size_t ng, ngalloc;
	uint32_t *slot; /* index + 1 into g, 0 = empty */
	size_t nslot;
	size_t budget, next; /* combine when values pass next */
	int combining;
	int failed; /* the combiner failed */
};

/* Set up an empty table that combines when values pass @budget bytes. */
void kvgroup_init(struct kvgroup *kg, size_t budget);
void kvgroup_close(struct kvgroup *kg);

/*
 * Add a pair; may run @fn (with @ctx as its base context) over every key.
 * Aborts on out of memory.  Returns 0 or -E2BIG (field too long).
 */
int kvgroup_add(struct kvgroup *kg, const char *k, size_t kl, const char *v,
    size_t vl, kvgroup_combine_fn fn, struct mr_ctx *ctx);

/* Combine every key with more than one value now.  0 or 1 (app failed). */
int kvgroup_combine(struct kvgroup *kg, kvgroup_combine_fn fn,
    struct mr_ctx *ctx);

/* Bytes held (keys, values and records), for budgets and reports. */
size_t kvgroup_bytes(const struct kvgroup *kg);

/* Key of group @i, its values through kvg_val links. */
static inline const char *kvgroup_key(const struct kvgroup *kg, size_t i)
{
	return kg->keys + kg->g[i].koff;
}

#endif
