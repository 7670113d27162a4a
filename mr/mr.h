/*
 * mr.h - the C ABI of a raftkv-mr application (a shared object).
 *
 * An app is a .so that exports, with C linkage:
 *
 *   const uint32_t mr_abi_version = MR_ABI_VERSION;           required
 *   int  mr_map(struct mr_ctx *ctx, const char *name,
 *               const char *data, size_t len);                required
 *   int  mr_reduce(struct mr_ctx *ctx, const char *key, size_t klen,
 *                  const struct mr_values *vals);             required
 *   int  mr_combine(...same as mr_reduce...);                 optional
 *   uint32_t mr_partition(const char *key, size_t klen,
 *                         uint32_t nreduce);                  optional
 *   int  mr_init(struct mr_ctx *ctx);                         optional
 *   void mr_fini(struct mr_ctx *ctx);                         optional
 *
 * The loader (app_so.c) refuses, with one line naming the problem, a .so
 * whose mr_abi_version differs from the host's or that lacks a required
 * symbol.  Keys and values are byte strings with explicit lengths (they may
 * hold NUL); the output file mr-out-R holds "key value\n" lines, so apps
 * whose output is meant to be read as text keep newlines out of them.
 *
 * mr_map is called once per map task with the input's name as given on the
 * command line and the task's bytes (the whole file, or a split of it that
 * starts and ends at line boundaries); it emits pairs with mr_emit().
 * mr_reduce is called once per distinct key of a partition, keys in
 * increasing byte order, with every value for that key (sorted by bytes);
 * each mr_emit() it makes writes one "key value" line (its key argument is
 * ignored).  mr_combine, when present, runs on the map side over each
 * key's values of one map task; its emits become the intermediate pairs.
 * Any non-zero return fails the attempt (the coordinator retries it).
 *
 * Each task runs in a child process forked by the worker: an app may crash,
 * exit or leak without costing more than the attempt.  ctx->worker_pid is
 * the pid of the worker that forked it (stable across a worker's tasks),
 * not getpid().
 */
#ifndef RAFTKV_MR_H
#define RAFTKV_MR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MR_ABI_VERSION 1u

struct mr_values {
	size_t n; /* number of values (>= 1) */
	const char *const *v; /* v[i]: value bytes, NUL-terminated too */
	const size_t *len; /* len[i]: length of v[i] */
};

struct mr_ctx {
	/* Emit a pair (map, combine) or an output value (reduce). */
	void (*emit)(struct mr_ctx *ctx, const char *key, size_t klen,
	    const char *val, size_t vlen);
	/* Add @delta to the named counter of this attempt. */
	void (*counter)(struct mr_ctx *ctx, const char *name, int64_t delta);
	pid_t worker_pid; /* the worker process running this task */
	uint32_t task; /* map or reduce task number */
	uint32_t attempt; /* attempt number of this task, from 0 */
	uint32_t nreduce; /* number of reduce tasks */
	int is_map; /* 1 in mr_map/mr_combine, 0 in mr_reduce */
	void *priv; /* the host's; apps leave it alone */
};

static inline void mr_emit(struct mr_ctx *ctx, const char *key, size_t klen,
    const char *val, size_t vlen)
{
	ctx->emit(ctx, key, klen, val, vlen);
}

static inline void mr_counter(struct mr_ctx *ctx, const char *name,
    int64_t delta)
{
	ctx->counter(ctx, name, delta);
}

#endif
