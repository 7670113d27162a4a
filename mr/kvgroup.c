/*
 * kvgroup.c - map output grouped by key, combined in place (kvgroup.h).
 */
#include "mr/kvgroup.h"

#include <errno.h>
#include <string.h>

#include "mr/partition.h"
#include "mr/xmem.h"

void kvgroup_init(struct kvgroup *kg, size_t budget)
{
	memset(kg, 0, sizeof(*kg));
	kg->budget = kg->next = budget;
	kg->combining = 1;
	kg->nslot = 1024;
	kg->slot = xcalloc(kg->nslot, sizeof(*kg->slot));
}

void kvgroup_close(struct kvgroup *kg)
{
	free(kg->keys);
	free(kg->vdata);
	free(kg->v);
	free(kg->g);
	free(kg->slot);
	memset(kg, 0, sizeof(*kg));
}

size_t kvgroup_bytes(const struct kvgroup *kg)
{
	return kg->kused + kg->vused + kg->nv * sizeof(struct kvg_val) +
	    kg->ng * sizeof(struct kvg_grp);
}

static void grow_slots(struct kvgroup *kg)
{
	size_t n = kg->nslot * 2, i;
	uint32_t *s = xcalloc(n, sizeof(*s));

	for (i = 0; i < kg->ng; i++) {
		size_t j = kg->g[i].hash & (n - 1);

		while (s[j])
			j = (j + 1) & (n - 1);
		s[j] = (uint32_t)i + 1;
	}
	free(kg->slot);
	kg->slot = s;
	kg->nslot = n;
}

/* Append a value to group @gi (copying its bytes). */
static void push_val(struct kvgroup *kg, size_t gi, const char *v, size_t vl)
{
	struct kvg_grp *g = &kg->g[gi];

	if (kg->vused + vl + 1 > kg->vcap) {
		kg->vcap = (kg->vused + vl + 1) * 2;
		kg->vdata = xrealloc(kg->vdata, kg->vcap);
	}
	if (kg->nv == kg->nvalloc) {
		kg->nvalloc = kg->nvalloc ? kg->nvalloc * 2 : 1024;
		kg->v = xrealloc(kg->v, kg->nvalloc * sizeof(*kg->v));
	}
	if (vl)
		memcpy(kg->vdata + kg->vused, v, vl);
	kg->vdata[kg->vused + vl] = '\0';
	kg->v[kg->nv].off = kg->vused;
	kg->v[kg->nv].len = (uint32_t)vl;
	kg->v[kg->nv].next = 0;
	kg->vused += vl + 1;
	kg->nv++;
	if (g->tail)
		kg->v[g->tail - 1].next = (uint32_t)kg->nv;
	else
		g->head = (uint32_t)kg->nv;
	g->tail = (uint32_t)kg->nv;
	g->n++;
}

static size_t val_bytes(const struct kvgroup *kg)
{
	return kg->vused + kg->nv * sizeof(struct kvg_val);
}

int kvgroup_add(struct kvgroup *kg, const char *k, size_t kl, const char *v,
    size_t vl, kvgroup_combine_fn fn, struct mr_ctx *ctx)
{
	uint32_t h;
	size_t j, gi;

	if (kl > KVBUF_MAX_FIELD || vl > KVBUF_MAX_FIELD)
		return -E2BIG;
	h = partition_hash(k, kl);
	for (j = h & (kg->nslot - 1); kg->slot[j];
	     j = (j + 1) & (kg->nslot - 1)) {
		const struct kvg_grp *g = &kg->g[kg->slot[j] - 1];

		if (g->hash == h && g->klen == kl &&
		    memcmp(kg->keys + g->koff, k, kl) == 0)
			break;
	}
	if (kg->slot[j]) {
		gi = kg->slot[j] - 1;
	} else {
		struct kvg_grp *g;

		if (kg->ng == kg->ngalloc) {
			kg->ngalloc = kg->ngalloc ? kg->ngalloc * 2 : 1024;
			kg->g = xrealloc(kg->g, kg->ngalloc * sizeof(*kg->g));
		}
		if (kg->kused + kl + 1 > kg->kcap) {
			kg->kcap = (kg->kused + kl + 1) * 2;
			kg->keys = xrealloc(kg->keys, kg->kcap);
		}
		if (kl)
			memcpy(kg->keys + kg->kused, k, kl);
		kg->keys[kg->kused + kl] = '\0';
		gi = kg->ng++;
		g = &kg->g[gi];
		memset(g, 0, sizeof(*g));
		g->koff = kg->kused;
		g->klen = (uint32_t)kl;
		g->hash = h;
		kg->kused += kl + 1;
		kg->slot[j] = (uint32_t)gi + 1;
		if (kg->ng * 2 > kg->nslot)
			grow_slots(kg);
	}
	push_val(kg, gi, v, vl);
	if (fn && kg->combining && val_bytes(kg) > kg->next) {
		size_t before = val_bytes(kg), after;

		if (kvgroup_combine(kg, fn, ctx))
			kg->failed = 1;
		after = val_bytes(kg);
		if (after > before / 2)
			kg->combining = 0; /* few repeats: stop trying */
		/* keep rounds cache-sized, but amortized over the keys */
		kg->next = after * 4 > kg->budget ? after * 4 : kg->budget;
	}
	return 0;
}

/* The combiner's context: its emits become the current key's values. */
struct comb_ctx {
	struct mr_ctx c;
	struct mr_ctx *outer;
	struct kvgroup *kg;
	size_t gi;
};

static void comb_emit(struct mr_ctx *ctx, const char *k, size_t kl,
    const char *v, size_t vl)
{
	struct comb_ctx *cc = (struct comb_ctx *)ctx;

	(void)k;
	(void)kl;
	if (vl > KVBUF_MAX_FIELD) {
		cc->kg->failed = 1;
		return;
	}
	push_val(cc->kg, cc->gi, v, vl);
}

static void comb_counter(struct mr_ctx *ctx, const char *name, int64_t d)
{
	struct comb_ctx *cc = (struct comb_ctx *)ctx;

	cc->outer->counter(cc->outer, name, d);
}

int kvgroup_combine(struct kvgroup *kg, kvgroup_combine_fn fn,
    struct mr_ctx *ctx)
{
	struct comb_ctx cc = { .c = *ctx, .outer = ctx, .kg = kg };
	char *ovdata = kg->vdata;
	struct kvg_val *ov = kg->v;
	const char **vp = NULL;
	size_t *vlen = NULL, nalloc = 0, i;
	int rc = 0;

	cc.c.emit = comb_emit;
	cc.c.counter = comb_counter;
	kg->vdata = NULL;
	kg->v = NULL;
	kg->vused = kg->vcap = kg->nv = kg->nvalloc = 0;
	for (i = 0; i < kg->ng; i++) {
		struct kvg_grp *g = &kg->g[i];
		struct mr_values vals;
		uint32_t x, n = g->n, head = g->head;
		size_t m = 0;

		g->head = g->tail = g->n = 0;
		if (n == 1 || rc) {
			for (x = head; x; x = ov[x - 1].next)
				push_val(kg, i, ovdata + ov[x - 1].off,
				    ov[x - 1].len);
			continue;
		}
		if (n > nalloc) {
			nalloc = n;
			vp = xrealloc(vp, nalloc * sizeof(*vp));
			vlen = xrealloc(vlen, nalloc * sizeof(*vlen));
		}
		for (x = head; x; x = ov[x - 1].next, m++) {
			vp[m] = ovdata + ov[x - 1].off;
			vlen[m] = ov[x - 1].len;
		}
		vals.n = m;
		vals.v = vp;
		vals.len = vlen;
		cc.gi = i;
		rc = fn(&cc.c, kg->keys + g->koff, g->klen, &vals);
	}
	free(ovdata);
	free(ov);
	free(vp);
	free(vlen);
	if (kg->failed)
		rc = 1;
	return rc;
}
