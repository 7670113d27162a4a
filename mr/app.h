/*
 * app.h - one face for the two kinds of raftkv-mr application:
 *
 *   app_so.c      a shared object with the C ABI of mr.h (dlopen)
 *   app_stream.c  a mapper and a reducer command with Hadoop Streaming's
 *                 contract (tab-separated lines on stdin/stdout)
 *
 * The task runner (exec.c) only sees this interface: it hands over a map
 * input or a sorted run of pairs and receives pairs / output values through
 * the mr_ctx callbacks, so the worker and the sequential runner drive both
 * kinds the same way.
 */
#ifndef RAFTKV_MR_APP_H
#define RAFTKV_MR_APP_H

#include <stddef.h>
#include <stdint.h>

#include "mr/kvbuf.h"
#include "mr/mr.h"

struct app;

/* Where a map task's bytes come from (for the streaming environment). */
struct app_input {
	const char *name; /* the input as named on the command line */
	uint64_t off, len; /* byte range of the split */
};

/*
 * Load shared object @path (a path with a '/' is used as is; dlopen's
 * search rules otherwise).  On failure returns -EINVAL (missing symbol,
 * ABI mismatch) or -ENOENT (dlopen failed) and writes one line saying why
 * into @err.  Caller frees the result with app_free().
 */
int app_open_so(const char *path, struct app **out, char *err, size_t errlen);

/*
 * A streaming app: @mapper and @reducer are shell commands (run with
 * /bin/sh -c), @combiner may be NULL.  Never fails (a bad command fails
 * its attempts).  Caller frees the result with app_free().
 */
struct app *app_open_stream(const char *mapper, const char *reducer,
    const char *combiner);

void app_free(struct app *a);

/* The app's description for messages ("wc.so", "stream:cmd|cmd"). */
const char *app_name(const struct app *a);

/* Run the app's optional init hook in this process (0, or its error). */
int app_init(struct app *a, struct mr_ctx *ctx);
void app_fini(struct app *a, struct mr_ctx *ctx);

/* Map @len bytes at @data.  Returns 0 or non-zero for a failed attempt. */
int app_map(struct app *a, struct mr_ctx *ctx, const struct app_input *in,
    const char *data, size_t len);

/* 1 if the app has a combiner. */
int app_has_combiner(const struct app *a);

/*
 * Reduce (or combine) the pairs of sorted @kb, emitting through @ctx with
 * each group's key.  Returns 0 or non-zero for a failed attempt.
 */
int app_reduce(struct app *a, struct mr_ctx *ctx, const struct kvbuf *kb);
int app_combine(struct app *a, struct mr_ctx *ctx, const struct kvbuf *kb);

/*
 * The shared object's combiner, or NULL (no combiner, or a streaming
 * one): exec.c groups map output in a hash table for it (kvgroup.h).
 */
int (*app_combine_fn(const struct app *a))(struct mr_ctx *, const char *,
    size_t, const struct mr_values *);

/* The partition of a key: the app's mr_partition, else partition_of(). */
uint32_t app_partition(const struct app *a, const char *key, size_t klen,
    uint32_t nreduce);

#endif
