/*
 * ckpool.h - clerks for the mount's mutations.  A mutation must reach the
 * leader, which may be another member: the mount submits it like any
 * client, through a clerk (kv/clerk.h: leader finding, retries, sessions
 * for at-most-once).  A clerk serves one thread at a time, FUSE runs many:
 * the pool lends each request its own, creating them on demand.
 */
#ifndef RAFTKV_FS_CKPOOL_H
#define RAFTKV_FS_CKPOOL_H

#include "kv/clerk.h"

struct ckpool;

/* A pool of clerks for @cl, each call bounded by @deadline_ms; clerks ask
 * member index @prefer first.  NULL on failure. */
struct ckpool *ckpool_new(const struct cluster *cl, int deadline_ms,
    int prefer);

/* Free every clerk (none may be lent out).  NULL-safe. */
void ckpool_free(struct ckpool *p);

/* A clerk for the calling thread's exclusive use, or NULL (ENOMEM). */
struct clerk *ckpool_get(struct ckpool *p);

/* Give @ck back. */
void ckpool_put(struct ckpool *p, struct clerk *ck);

#endif
