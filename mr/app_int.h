/*
 * app_int.h - struct app, shared by app_so.c and app_stream.c only.
 */
#ifndef RAFTKV_MR_APP_INT_H
#define RAFTKV_MR_APP_INT_H

#include "mr/app.h"

typedef int (*app_map_fn)(struct mr_ctx *, const char *, const char *, size_t);
typedef int (*app_reduce_fn)(struct mr_ctx *, const char *, size_t,
    const struct mr_values *);
typedef uint32_t (*app_part_fn)(const char *, size_t, uint32_t);
typedef int (*app_init_fn)(struct mr_ctx *);
typedef void (*app_fini_fn)(struct mr_ctx *);

struct app {
	char *name;
	/* shared object */
	void *dl;
	app_map_fn map;
	app_reduce_fn reduce, combine;
	app_part_fn part;
	app_init_fn init;
	app_fini_fn fini;
	/* streaming */
	char *mapper, *reducer, *combiner;
};

int app_stream_map(struct app *a, struct mr_ctx *ctx,
    const struct app_input *in, const char *data, size_t len);
int app_stream_reduce(struct app *a, const char *cmd, struct mr_ctx *ctx,
    const struct kvbuf *kb);

#endif
