/*
 * clerk.h - the KV client library: what the CLI, the filesystem and the
 * tests use to talk to a raftkv cluster.
 *
 * A clerk finds the leader (remembering it, following leader hints, trying
 * the members in turn when it has none), retries with capped exponential
 * backoff until a per-call deadline, and makes every mutation at-most-once.
 *
 * Two modes:
 *   sessions (default)  the clerk REGISTERs a session and numbers its
 *                       mutations; a retried mutation is recognised by the
 *                       state machine and answered with the first result,
 *                       so retries never apply twice and the answer is
 *                       exact.  KV_EMAYBE remains only where the outcome is
 *                       really unknown: the deadline passed after a request
 *                       was sent, or the session was evicted meanwhile.
 *                       A session idle for half the cluster's session TTL
 *                       is replaced by a new one before the next mutation
 *                       (unless session_strict, or its id was given out
 *                       or resumed, or it was used for locks), so
 *                       idleness alone never makes one.
 *   seeds (sessions off) the 6.5840 Lab 2 clerk exactly: no session; a Put
 *                       that got ErrVersion on a RE-SENT attempt returns
 *                       ErrMaybe (its first attempt may have applied);
 *                       ErrVersion on the first attempt is ErrVersion.
 *
 * Reads are linearizable (ReadIndex on the member asked, leader or
 * follower); clerk_get_stale() reads one member's state with no barrier.
 *
 * A clerk is used by one thread at a time.  Errors: kv_status values
 * (KV_OK, KV_ENOKEY, KV_EVERSION, ...), KV_EMAYBE, or negative codes:
 * CLERK_EUNAVAILABLE (no member could answer before the deadline),
 * -EINVAL, -ENOMEM.
 */
#ifndef RAFTKV_KV_CLERK_H
#define RAFTKV_KV_CLERK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/cmd.h"
#include "raft/client/cluster.h"

/* Clerk-only status: the mutation may or may not have been applied. */
#define KV_EMAYBE 100

struct clerk_options {
	bool no_sessions; /* the seeds' semantics (see above) */
	/* An evicted session (ErrSession) is reported to the caller
	 * (KV_ESESSION, or KV_EMAYBE when an earlier attempt may have
	 * applied) instead of registering a new one inside the call; the
	 * next call registers it.  For a caller whose state belongs to the
	 * session (fs/rklock.c: it must forget the old session's locks
	 * before recording anything done in the new one). */
	bool session_strict;
	int deadline_ms; /* per call; default 10000 */
	int try_timeout_ms; /* per attempt on one member; default 1000 */
	int backoff_min_ms; /* default 5 */
	int backoff_max_ms; /* default 200 */
	int prefer_member; /* member index to ask first (-1: any) */
	void *zctx; /* ZeroMQ context to share (NULL: own) */
	unsigned loss_pct; /* tests: lose requests/replies (client.h) */
	uint64_t loss_seed;
};

void clerk_options_defaults(struct clerk_options *o);

struct clerk;

int clerk_new(const struct cluster *cl, const struct clerk_options *opt,
    struct clerk **out);
void clerk_free(struct clerk *ck);

/* Status name for KV statuses, KV_EMAYBE and clerk errors. */
const char *clerk_strerror(int rv);

/*
 * Linearizable read of @key.  On KV_OK fills @attr (may be NULL) and, if
 * @value is not NULL, *@value (malloc'd, caller frees; NULL when empty)
 * and *@len.  Returns KV_OK, KV_ENOKEY, CLERK_EUNAVAILABLE, -ENOMEM, or
 * KV_ETOOBIG for a value over KV_VALUE_MAX (more than one reply carries:
 * then only @attr is filled; read it with clerk_read() or
 * clerk_get_large()).  With @value NULL only the attributes are read
 * (KV_OK whatever the size).
 */
int clerk_get(struct clerk *ck, const void *key, size_t keylen,
    struct kv_attr *attr, void **value, size_t *len);

/* The same, served from member @idx's local state without a barrier. */
int clerk_get_stale(struct clerk *ck, uint32_t idx, const void *key,
    size_t keylen, struct kv_attr *attr, void **value, size_t *len);

/*
 * Linearizable read of a range of @key's value (query.h, QUERY_READ): up
 * to @cap bytes (at most KV_VALUE_MAX) from @offset into @buf.  On KV_OK
 * *@n holds the bytes copied (0 at or past the end, or for @cap 0) and
 * @attr (may be NULL) the attributes of the whole value (attr->size is
 * its size).  Returns KV_OK, KV_ENOKEY, CLERK_EUNAVAILABLE, -EINVAL,
 * -ENOMEM, -EBADMSG (a reply that does not decode or holds more than
 * asked).
 */
int clerk_read(struct clerk *ck, const void *key, size_t keylen,
    uint64_t offset, void *buf, size_t cap, struct kv_attr *attr, size_t *n);

/*
 * clerk_get() for a value of any size (up to KV_FILE_MAX): one GET, and
 * for a value over KV_VALUE_MAX, reads of ranges of @chunk bytes (0:
 * KV_VALUE_MAX) into one buffer.  The result is one version of the value,
 * linearizable: every range must carry the same (inode, version) as the
 * first, and that pair never repeats (kv.h), so all ranges are of the
 * value as it was at the first read; when a range shows another pair the
 * value changed meanwhile, and the read starts over, at most @retries
 * times (then KV_EVERSION).  Same results as clerk_get() otherwise.
 */
int clerk_get_large(struct clerk *ck, const void *key, size_t keylen,
    size_t chunk, int retries, struct kv_attr *attr, void **value, size_t *len);

/*
 * Versioned put (the seeds' Put): applies only if the key's version is
 * @version (0: the key must not exist), unless KV_F_ANYVER in @flags.
 * @meta may be NULL (a plain file, mode 0644, uid/gid 0).  On KV_OK
 * @attr (may be NULL) holds the new attributes.  Returns KV_OK,
 * KV_EVERSION, KV_ENOKEY, KV_EMAYBE, CLERK_EUNAVAILABLE, ...
 */
int clerk_put(struct clerk *ck, const void *key, size_t keylen,
    const void *value, size_t len, uint64_t version, uint32_t flags,
    const struct kv_meta *meta, struct kv_attr *attr);

/* Delete @key if its version is @version (KV_F_ANYVER: any). */
int clerk_delete(struct clerk *ck, const void *key, size_t keylen,
    uint64_t version, uint32_t flags, struct kv_attr *attr);

/*
 * Any other mutation or a transaction, built by the caller: @c's
 * client_id, seq and time_ns are filled in here.  @res receives the
 * result (res->value not used).  Returns the result's status, KV_EMAYBE,
 * CLERK_EUNAVAILABLE, -EINVAL, -ENOMEM.
 */
int clerk_mutate(struct clerk *ck, struct kv_cmd *c, struct kv_result *res);

/* ------------------------------------------------------------------------
 * Locks (kv.h, LOCKS): the lock commands of the clerk's session.  The
 * lock's owner is (this clerk's session, rq->owner); a clerk without a
 * session (no_sessions) cannot lock (-EINVAL).  If the session is evicted
 * its locks are gone: the calls then answer ErrNoLock/ErrMaybe, never a
 * lock held by a new session by mistake.
 * ------------------------------------------------------------------------ */

/* What a lock call names: a key (or an inode, keylen 0), the kind, mode,
 * POSIX range (FLOCK: 0, 0), the owner and the pid F_GETLK reports. */
struct clerk_lock_req {
	const void *key;
	size_t keylen;
	uint64_t inode; /* 0: the key's */
	uint8_t kind; /* KV_LK_FLOCK, KV_LK_POSIX */
	uint8_t mode; /* KV_LK_SHARED, KV_LK_EXCL */
	uint64_t start;
	uint64_t end;
	uint64_t owner;
	uint32_t pid;
};

/* The clerk's session (client id), registering one if it has none yet.
 * Returns 0 with *@session set, or an error as clerk_mutate(). */
int clerk_session(struct clerk *ck, uint64_t *session);

/*
 * Continue session @session, whose last mutation had sequence number @seq
 * (a lock handle printed by another process: raftkv(1) lock/unlock).
 * The clerk's own session, if any, is forgotten (not closed).  -EINVAL
 * without sessions or for session 0.
 */
int clerk_resume_session(struct clerk *ck, uint64_t session, uint64_t seq);

/* Set the per-call deadline (clerk_options.deadline_ms) to @ms (> 0) for
 * the calls that follow; returns the previous one. */
int clerk_set_deadline(struct clerk *ck, int ms);

/* The sequence number of the clerk's last mutation (0: none). */
uint64_t clerk_seq(const struct clerk *ck);

/*
 * LOCK once.  Without @wait: KV_OK (*@token: the grant's token) or
 * KV_ELOCKED (*@conflict, may be NULL: the first conflicting lock).  With
 * @wait: KV_OK, or KV_EQUEUED (queued: then clerk_lock_wait() until
 * granted, or clerk_lock_cancel()).  Also KV_ENOKEY, KV_ENOSPC, KV_EMAYBE,
 * CLERK_EUNAVAILABLE, -EINVAL.  @token and @conflict may be NULL.
 */
int clerk_lock(struct clerk *ck, const struct clerk_lock_req *rq, bool wait,
    uint64_t *token, struct kv_lock *conflict);

/*
 * Wait, on a member and without polling, up to @wait_ms (1..30000) for
 * the queued request @rq to be granted: the member answers when the entry
 * granting it applies there (a READ query, QUERY_LOCKWAIT, kv_lock_wait()).  KV_OK
 * (*@token), KV_EQUEUED (still queued after @wait_ms: call again, and
 * keep the lease alive in between with clerk_keepalive()), KV_ENOLOCK
 * (neither held nor queued: cancelled or lost with the lease),
 * CLERK_EUNAVAILABLE.  A member answers at most KV_LOCK_WAITERS_MAX such
 * waits at once (KV_LOCK_WAITERS_MAX); past that it answers KV_EQUEUED
 * at once and the clerk sleeps a backoff before returning (the fallback).
 */
int clerk_lock_wait(struct clerk *ck, const struct clerk_lock_req *rq,
    int wait_ms, uint64_t *token);

/*
 * LOCK with WAIT, then clerk_lock_wait() in slices of @keepalive_ms with
 * a KEEPALIVE after each, until granted or @timeout_ms passed (< 0:
 * forever).  KV_OK (*@token); KV_ELOCKED when @timeout_ms passed (the
 * request was cancelled, and unlocked if the grant won the race);
 * KV_ENOLOCK (the wait was lost: lease or session), or the errors above.
 */
int clerk_lock_acquire(struct clerk *ck, const struct clerk_lock_req *rq,
    int timeout_ms, int keepalive_ms, uint64_t *token);

/* UNLOCK @rq's range (FLOCK: the flock).  KV_OK or errors. */
int clerk_unlock(struct clerk *ck, const struct clerk_lock_req *rq);

/* UNLOCK_OWNER on @rq's key/inode: every lock and wait of @rq->owner of
 * kind @rq->kind (0: both).  KV_OK or errors. */
int clerk_unlock_owner(struct clerk *ck, const struct clerk_lock_req *rq);

/* CANCEL the queued request @rq.  KV_OK or errors. */
int clerk_lock_cancel(struct clerk *ck, const struct clerk_lock_req *rq);

/* GETLK, a linearizable read: KV_OK (no conflict) or KV_ELOCKED with
 * *@conflict (may be NULL); KV_ENOKEY, CLERK_EUNAVAILABLE. */
int clerk_getlk(struct clerk *ck, const struct clerk_lock_req *rq,
    struct kv_lock *conflict);

/* KEEPALIVE: renew the session's lock lease.  KV_OK or errors. */
int clerk_keepalive(struct clerk *ck);

/*
 * A put fenced by a lock: TXN { FENCE @lock/@locklen @token, PUT }.
 * KV_EFENCED when @token is not a live grant of that lock (nothing
 * written); otherwise as clerk_put().
 */
int clerk_put_fenced(struct clerk *ck, const void *lock, size_t locklen,
    uint64_t token, const void *key, size_t keylen, const void *value,
    size_t len, uint64_t version, uint32_t flags, const struct kv_meta *meta,
    struct kv_attr *attr);

/* One listed key. */
struct clerk_entry {
	char *key; /* malloc'd, NUL-terminated (keys may hold NUL:
	                          use keylen) */
	size_t keylen;
	struct kv_attr attr;
};

/*
 * Linearizable listing of keys under @prefix after @after (NULL: from the
 * start), at most @limit (0: the server's page size), only direct children
 * when @delim >= 0.  On KV_OK *@out (free with clerk_entries_free) holds
 * *@n entries in key order.
 */
int clerk_list(struct clerk *ck, const void *prefix, size_t prefixlen,
    const void *after, size_t afterlen, uint32_t limit, int delim,
    struct clerk_entry **out, size_t *n);
void clerk_entries_free(struct clerk_entry *e, size_t n);

/* The state's size quota (kv.h, QUOTA): bytes counted against it, the
 * quota, and the number of keys, read after a barrier.  KV_OK or a
 * negative code / CLERK_EUNAVAILABLE. */
int clerk_usage(struct clerk *ck, uint64_t *used, uint64_t *quota,
    uint64_t *keys);

/* Status of member @idx (CPROTO_STATUS).  0 or a negative code. */
struct cproto_status;
int clerk_member_status(struct clerk *ck, uint32_t idx,
    struct cproto_status *st);
uint32_t clerk_members(const struct clerk *ck);

#endif
