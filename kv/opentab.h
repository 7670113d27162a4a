/*
 * opentab.h - the open table of the KV state machine: which sessions hold
 * which inodes open (kv.h, OPENS).  A mount registers the files it holds
 * open, in batches, so that a file whose last name another mount removes
 * can be kept for it (the filesystem decides that with the compares
 * KV_VERSION_OPEN and KV_VERSION_NOTOPEN, cmd.h).
 *
 * Part of the replicated state: changed only by the apply of committed
 * commands (OPEN and CLOSE ops, the eviction of a session), deterministic
 * (pairs kept sorted, no hash order), serialised whole into snapshots
 * (opentab_encode(); snapshot format 4).  Bounded: at most
 * KV_OPEN_SESSION_MAX inodes per session and KV_OPEN_MAX pairs in all
 * (kv.h); an OPEN past either is refused (opentab_add(): -ENOSPC).
 *
 * Memory: 16 bytes per (inode, session) pair, 16 per session holding
 * some.  Cost: an add or remove is a binary search plus a memmove of the
 * pairs after it (at most KV_OPEN_MAX * 16 bytes = 1 MiB); the
 * sessions that go in one apply (evicted together) cost one pass over
 * the pairs for all of them (kv.c collects them).  Allocation happens only
 * before a call changes anything, so -ENOMEM means "nothing changed".
 * Not thread-safe: struct kv serialises access.
 */
#ifndef RAFTKV_KV_OPENTAB_H
#define RAFTKV_KV_OPENTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct opentab;

/* An empty table; NULL on ENOMEM. */
struct opentab *opentab_new(void);

/* NULL-safe. */
void opentab_free(struct opentab *t);

/* Pairs (session, inode) in all. */
uint32_t opentab_count(const struct opentab *t);

/* Inodes @session holds open (0: none). */
uint32_t opentab_session_count(const struct opentab *t, uint64_t session);

/* Does any session hold @inode open? */
bool opentab_is_open(const struct opentab *t, uint64_t inode);

/*
 * Record that @session holds @inode open.  Returns 1 when it already
 * did (nothing changed), 0 when added, -ENOSPC when the session holds
 * KV_OPEN_SESSION_MAX inodes or the table KV_OPEN_MAX pairs, -ENOMEM
 * (both: nothing changed).
 */
int opentab_add(struct opentab *t, uint64_t session, uint64_t inode);

/* Make room for @n more pairs and one more session, so that the next
 * @n opentab_add() calls cannot fail with -ENOMEM.  0 or -ENOMEM. */
int opentab_reserve(struct opentab *t, uint32_t n);

/* Forget that @session holds @inode open: true if it did. */
bool opentab_remove(struct opentab *t, uint64_t session, uint64_t inode);

/* Forget every inode @session holds (its session was evicted).  One
 * pass over the pairs: several sessions at once with the next. */
void opentab_drop_session(struct opentab *t, uint64_t session);

/* Forget every inode each of the @n @sessions holds (sessions holding
 * none are ignored): one pass over the pairs for all of them, O(pairs
 * log sessions + @n log sessions).  Never fails. */
void opentab_drop_sessions(struct opentab *t, const uint64_t *sessions,
    size_t n);

/* Drop every session for which @alive(@arg, session) is false (after a
 * restore trimmed the session table). */
void opentab_sweep(struct opentab *t, bool (*alive)(void *arg, uint64_t s),
    void *arg);

/* Call @fn(@arg, session) for each session holding some inode, in
 * ascending order.  @fn must not change @t. */
void opentab_each_session(const struct opentab *t,
    void (*fn)(void *arg, uint64_t session), void *arg);

/* The largest inode in the table (0: empty). */
uint64_t opentab_last_inode(const struct opentab *t);

/*
 * Serialise: u32 count, then per pair in (inode, session) order u64
 * inode, u64 session.  *@buf (caller frees) holds *@len bytes.
 * 0 or -ENOMEM.
 */
int opentab_encode(const struct opentab *t, void **buf, size_t *len);

/*
 * Build a table from what opentab_encode() wrote (@len bytes at @buf):
 * 0, -EBADMSG (truncated, trailing bytes, pairs not strictly increasing,
 * an inode below KV_INODE_FIRST, a session 0, over the bounds), -ENOMEM.
 */
int opentab_decode(const void *buf, size_t len, struct opentab **out);

#endif
