/*
 * wc.c - word count (6.5840 mrapps/wc.go): map emits (word, "1") per
 * occurrence, reduce sums.  The sum (not the lab's count of values) makes
 * the same function a valid combiner: map-side combining turns a map's
 * Zipf flood of ("the", "1") into one ("the", "N").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "mr/apps/words.h"
#include "mr/mr.h"

const uint32_t mr_abi_version = MR_ABI_VERSION;

int mr_map(struct mr_ctx *ctx, const char *name, const char *data, size_t n)
{
	size_t pos = 0, len;
	const char *w;

	(void)name;
	while ((w = words_next(data, n, &pos, &len)) != NULL)
		mr_emit(ctx, w, len, "1", 1);
	return 0;
}

int mr_reduce(struct mr_ctx *ctx, const char *key, size_t klen,
    const struct mr_values *vals)
{
	uint64_t sum = 0;
	char out[32];
	size_t i;
	int n;

	for (i = 0; i < vals->n; i++) /* mostly "1"s: skip the parse */
		sum += vals->len[i] == 1 && vals->v[i][0] == '1'
		    ? 1
		    : strtoull(vals->v[i], NULL, 10);
	n = snprintf(out, sizeof(out), "%" PRIu64, sum);
	mr_emit(ctx, key, klen, out, (size_t)n);
	return 0;
}

int mr_combine(struct mr_ctx *ctx, const char *key, size_t klen,
    const struct mr_values *vals)
{
	return mr_reduce(ctx, key, klen, vals);
}
