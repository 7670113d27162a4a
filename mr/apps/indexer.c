/*
 * indexer.c - inverted index (6.5840 mrapps/indexer.go): map emits
 * (word, document) once per distinct word of a document; reduce outputs
 * "COUNT doc1,doc2,..." with the documents sorted (the host hands values
 * sorted by bytes, as Go's sort.Strings would order them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mr/apps/words.h"
#include "mr/mr.h"

const uint32_t mr_abi_version = MR_ABI_VERSION;

struct slot {
	const char *w;
	size_t len;
};

static uint32_t hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

int mr_map(struct mr_ctx *ctx, const char *name, const char *data, size_t n)
{
	size_t cap = 1024, used = 0, pos = 0, len, i;
	struct slot *set = calloc(cap, sizeof(*set));
	const char *w;

	if (set == NULL)
		return 1;
	while ((w = words_next(data, n, &pos, &len)) != NULL) {
		if (2 * (used + 1) > cap) { /* grow: rehash */
			struct slot *old = set;
			size_t oc = cap;

			cap *= 2;
			set = calloc(cap, sizeof(*set));
			if (set == NULL) {
				free(old);
				return 1;
			}
			for (i = 0; i < oc; i++)
				if (old[i].w) {
					size_t j = hash(old[i].w, old[i].len) &
					    (cap - 1);

					while (set[j].w)
						j = (j + 1) & (cap - 1);
					set[j] = old[i];
				}
			free(old);
		}
		for (i = hash(w, len) & (cap - 1); set[i].w;
		     i = (i + 1) & (cap - 1))
			if (set[i].len == len && memcmp(set[i].w, w, len) == 0)
				break;
		if (set[i].w)
			continue;
		set[i].w = w;
		set[i].len = len;
		used++;
		mr_emit(ctx, w, len, name, strlen(name));
	}
	free(set);
	return 0;
}

int mr_reduce(struct mr_ctx *ctx, const char *key, size_t klen,
    const struct mr_values *vals)
{
	size_t total = 32, i, off;
	char *out;
	int rc;

	for (i = 0; i < vals->n; i++)
		total += vals->len[i] + 1;
	out = malloc(total);
	if (out == NULL)
		return 1;
	off = (size_t)snprintf(out, total, "%zu ", vals->n);
	for (i = 0; i < vals->n; i++) {
		if (i)
			out[off++] = ',';
		memcpy(out + off, vals->v[i], vals->len[i]);
		off += vals->len[i];
	}
	mr_emit(ctx, key, klen, out, off);
	rc = 0;
	free(out);
	return rc;
}
