/*
 * lock.h - a distributed lock on one key, built on the clerk's versioned
 * put (the seeds' Lab 2 lock), with a fencing token and an optional lease.
 *
 * The key's value is "" when the lock is free and "<owner>" or
 * "<owner> <lease ms>" when held; <owner> is unique per struct kvlock.
 * Acquire = put(owner) at the version read when the value was free;
 * release = put("") at the version read while we hold it.  A put that comes
 * back ErrMaybe is resolved by reading the key again: our owner string is
 * there exactly when our put applied.  Correct under retries, leader
 * changes and lost replies.
 *
 * Fencing token: the key's version right after our acquiring put.  Every
 * acquisition is a put, so tokens strictly increase from one holder to the
 * next; a resource that remembers the largest token it saw can refuse a
 * stale holder (one whose lease ran out while it was paused).
 *
 * Lease: with lease_ms > 0 a holder that stops renewing loses the lock
 * lease_ms after its last acquire/renew, as measured from the time the
 * proposing member stamped on that put (attr.mtime_ns) against the
 * contender's clock: members' and clients' clocks must be roughly in sync,
 * and the fencing token is what keeps a late holder from doing harm.
 * The lock key is never deleted (its version must keep growing).
 *
 * A caller that gives up on an acquire whose put came back ErrMaybe (the
 * cluster was unreachable past the deadline) may still end up holding the
 * lock if that put commits later: retrying with the same struct kvlock
 * recognises it as ours; otherwise only a lease frees it.  Use a lease
 * wherever a holder can vanish.
 *
 * WHY THIS STAYS next to the committed locks (kv.h, LOCKS; clerk_lock()
 * and friends; what raftkv(1) `lock` uses): it is the 6.5840 Lab 2 lock,
 * built on versioned puts only, and tests/integration/test_lock.c runs
 * the lab's tests with it on the seeds' session-less clerk, which the
 * lock commands cannot serve (a lock's owner is a session).  Nothing else
 * uses it.  Its lease is judged against the contender's clock; the
 * committed locks' lease is judged in log order off the committed clock,
 * frees a dead holder's lock without any clock agreement, wakes waiters
 * without polling, and fences at apply time: use those for new code.
 */
#ifndef RAFTKV_KV_LOCK_H
#define RAFTKV_KV_LOCK_H

#include <stddef.h>
#include <stdint.h>

#include "kv/clerk.h"

struct kvlock;

/* A lock on @key used through @ck (borrowed; must outlive the lock). */
int kvlock_new(struct clerk *ck, const char *key, uint32_t lease_ms,
    struct kvlock **out);
void kvlock_free(struct kvlock *l);

/* Block until acquired or @timeout_ms passed (< 0: forever).  On 0,
 * *@token (may be NULL) is the fencing token.  Returns 0,
 * KVLOCK_ETIMEDOUT, CLERK_EUNAVAILABLE, -ENOMEM. */
int kvlock_acquire(struct kvlock *l, int timeout_ms, uint64_t *token);

/* One attempt: 0 (acquired), -EBUSY (held by someone else), or errors. */
int kvlock_try_acquire(struct kvlock *l, uint64_t *token);

/* Extend the lease.  0, KVLOCK_ENOTHELD, CLERK_EUNAVAILABLE. */
int kvlock_renew(struct kvlock *l);

/* Release.  0, KVLOCK_ENOTHELD (already lost), CLERK_EUNAVAILABLE. */
int kvlock_release(struct kvlock *l);

/* Who holds @key's lock: 0 and the owner string (malloc'd) or NULL when
 * free; *@token is the current version. */
int kvlock_holder(struct clerk *ck, const char *key, char **owner,
    uint64_t *token);

#endif
