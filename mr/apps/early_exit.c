/*
 * early_exit.c - makes some reduces slow (6.5840 mrapps/early_exit.go):
 * map emits (input name, "1"); reduce sleeps 3 s for keys containing
 * "sherlock" or "tom", then outputs the number of values.  A coordinator
 * or worker that exits before the slow outputs are committed is caught
 * by the test comparing the output at the first exit with the final one.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mr/mr.h"

const uint32_t mr_abi_version = MR_ABI_VERSION;

int mr_map(struct mr_ctx *ctx, const char *name, const char *data, size_t n)
{
	(void)data;
	(void)n;
	mr_emit(ctx, name, strlen(name), "1", 1);
	return 0;
}

int mr_reduce(struct mr_ctx *ctx, const char *key, size_t klen,
    const struct mr_values *vals)
{
	char k[4096], out[16];
	int n;

	snprintf(k, sizeof(k), "%.*s", (int)klen, key);
	if (strstr(k, "sherlock") || strstr(k, "tom"))
		sleep(3);
	n = snprintf(out, sizeof(out), "%zu", vals->n);
	mr_emit(ctx, key, klen, out, (size_t)n);
	return 0;
}
