/*
 * mtiming.c - map parallelism probe (6.5840 mrapps/mtiming.go): each map
 * emits ("times-WPID", its start time) and ("parallel-WPID", how many
 * workers were mapping at once); reduce joins the sorted values.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "mr/apps/nparallel.h"
#include "mr/mr.h"

const uint32_t mr_abi_version = MR_ABI_VERSION;

int mr_map(struct mr_ctx *ctx, const char *name, const char *data, size_t n)
{
	struct timeval tv;
	char k[64], v[64];
	int kl, vl, par;

	(void)name;
	(void)data;
	(void)n;
	gettimeofday(&tv, NULL);
	par = nparallel("map", ctx->worker_pid);
	kl = snprintf(k, sizeof(k), "times-%ld", (long)ctx->worker_pid);
	vl = snprintf(v, sizeof(v), "%.1f",
	    (double)tv.tv_sec + (double)tv.tv_usec / 1e6);
	mr_emit(ctx, k, (size_t)kl, v, (size_t)vl);
	kl = snprintf(k, sizeof(k), "parallel-%ld", (long)ctx->worker_pid);
	vl = snprintf(v, sizeof(v), "%d", par);
	mr_emit(ctx, k, (size_t)kl, v, (size_t)vl);
	return 0;
}

int mr_reduce(struct mr_ctx *ctx, const char *key, size_t klen,
    const struct mr_values *vals)
{
	char out[4096];
	size_t off = 0, i;

	for (i = 0; i < vals->n && off + vals->len[i] + 2 < sizeof(out); i++) {
		if (i)
			out[off++] = ' ';
		memcpy(out + off, vals->v[i], vals->len[i]);
		off += vals->len[i];
	}
	mr_emit(ctx, key, klen, out, off);
	return 0;
}
