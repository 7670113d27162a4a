/*
 * crash.c / nocrash.c - 6.5840 mrapps/crash.go and nocrash.go.  Before
 * every map and reduce, crash.so (built with MR_CRASH) exits the process
 * with probability 0.33 and sleeps 0-10 s with probability 0.33; nocrash.so
 * never does.  Map emits ("a", name), ("b", strlen(name)), ("c", length of
 * the data), ("d", "xyzzy"); reduce joins the sorted values with spaces.
 * The two must produce the same output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mr/mr.h"

const uint32_t mr_abi_version = MR_ABI_VERSION;

static void maybe_crash(struct mr_ctx *ctx)
{
#ifdef MR_CRASH
	int r;

	srand((unsigned)getpid() ^ (unsigned)time(NULL) ^ (ctx->task << 16) ^
	    (ctx->attempt << 8));
	r = rand() % 1000;
	if (r < 330)
		exit(1);
	if (r < 660)
		usleep((useconds_t)(rand() % 10000) * 1000);
#else
	(void)ctx;
#endif
}

int mr_map(struct mr_ctx *ctx, const char *name, const char *data, size_t n)
{
	char v[32];
	int l;

	(void)data;
	maybe_crash(ctx);
	mr_emit(ctx, "a", 1, name, strlen(name));
	l = snprintf(v, sizeof(v), "%zu", strlen(name));
	mr_emit(ctx, "b", 1, v, (size_t)l);
	l = snprintf(v, sizeof(v), "%zu", n);
	mr_emit(ctx, "c", 1, v, (size_t)l);
	mr_emit(ctx, "d", 1, "xyzzy", 5);
	return 0;
}

int mr_reduce(struct mr_ctx *ctx, const char *key, size_t klen,
    const struct mr_values *vals)
{
	size_t total = 1, off = 0, i;
	char *out;

	maybe_crash(ctx);
	for (i = 0; i < vals->n; i++)
		total += vals->len[i] + 1;
	out = malloc(total);
	if (out == NULL)
		return 1;
	for (i = 0; i < vals->n; i++) {
		if (i)
			out[off++] = ' ';
		memcpy(out + off, vals->v[i], vals->len[i]);
		off += vals->len[i];
	}
	mr_emit(ctx, key, klen, out, off);
	free(out);
	return 0;
}
