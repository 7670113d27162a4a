/*
 * jobcount.c - counts map executions (6.5840 mrapps/jobcount.go): each
 * map leaves a file mr-worker-jobcount-WPID-TASK-ATTEMPT in the current
 * directory and sleeps 2-5 s; reduce outputs the number of such files.
 * A job that ran any map twice (a premature reassignment or backup)
 * outputs more than the number of inputs.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mr/mr.h"

const uint32_t mr_abi_version = MR_ABI_VERSION;

int mr_map(struct mr_ctx *ctx, const char *name, const char *data, size_t n)
{
	char f[128];
	int fd;

	(void)name;
	(void)data;
	(void)n;
	snprintf(f, sizeof(f), "mr-worker-jobcount-%ld-%u-%u",
	    (long)ctx->worker_pid, ctx->task, ctx->attempt);
	fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (fd < 0)
		return 1;
	close(fd);
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	usleep((useconds_t)(2000 + rand() % 3000) * 1000);
	mr_emit(ctx, "a", 1, "x", 1);
	return 0;
}

int mr_reduce(struct mr_ctx *ctx, const char *key, size_t klen,
    const struct mr_values *vals)
{
	struct dirent *de;
	char out[16];
	int cnt = 0, n;
	DIR *d = opendir(".");

	(void)vals;
	while (d && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "mr-worker-jobcount", 18) == 0)
			cnt++;
	if (d)
		closedir(d);
	n = snprintf(out, sizeof(out), "%d", cnt);
	mr_emit(ctx, key, klen, out, (size_t)n);
	return 0;
}
