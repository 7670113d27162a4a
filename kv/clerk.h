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
