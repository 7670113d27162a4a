/*
 * rtiming.c - reduce parallelism probe (6.5840 mrapps/rtiming.go): maps
 * emit keys "a".."j"; each reduce outputs how many workers were reducing
 * at once.
 */
#include <stdio.h>

#include "mr/apps/nparallel.h"
#include "mr/mr.h"

const uint32_t mr_abi_version = MR_ABI_VERSION;

int mr_map(struct mr_ctx *ctx, const char *name, const char *data, size_t n)
{
	char k;

	(void)name;
	(void)data;
	(void)n;
	for (k = 'a'; k <= 'j'; k++)
		mr_emit(ctx, &k, 1, "1", 1);
	return 0;
}

int mr_reduce(struct mr_ctx *ctx, const char *key, size_t klen,
    const struct mr_values *vals)
{
	char out[16];
	int n;

	(void)vals;
	n = snprintf(out, sizeof(out), "%d",
	    nparallel("reduce", ctx->worker_pid));
	mr_emit(ctx, key, klen, out, (size_t)n);
	return 0;
}
