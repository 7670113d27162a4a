/*
 * locktab.h - the lock table of the KV state machine: per inode, the held
 * locks and the FIFO queues of waiters of both lock spaces (FLOCK and
 * POSIX), the grant tokens, and the sessions that have a lock lease.
 * The semantics are the LOCKS contract of kv.h; this file is the
 * mechanism, on inode numbers (kv.c resolves keys).
 *
 * It is part of the replicated state: changed only by the apply of
 * committed commands (every mutating call takes the entry's log index),
 * deterministic (no clock, no randomness, no hash order: entries are
 * kept sorted by inode, holders and waiters in a fixed order), and
 * serialised whole into snapshots (locktab_encode()).  The time of a
 * session's last activity is not kept here: the table asks the session
 * table (locktab_set_clock()), the one source of truth.
 *
 *   locktab_lock()          LOCK: grant, ErrLocked + conflict, or queue
 *   locktab_unlock()        UNLOCK a range (POSIX) or the flock
 *   locktab_unlock_owner()  UNLOCK_OWNER: all of an owner's locks, waits
 *   locktab_cancel()        CANCEL a queued request
 *   locktab_getlk()         GETLK (read only)
 *   locktab_fence()         FENCE: is this token a live grant?
 *   locktab_wait_state()    is this request held, queued, or neither?
 *   locktab_renew()         any committed command of a session
 *   locktab_expire()        sessions past their lease lose everything
 *   locktab_drop_session()  an evicted session loses everything
 *   locktab_sweep()         sessions a restore left out lose everything
 *
 * Every change that frees something (and, POSIX, every grant or wait
 * while others wait) runs the grant pass of that inode and kind: the
 * waiters, in FIFO order, that conflict neither with a holder of another
 * owner nor with an earlier waiter still queued (but those a POSIX owner
 * may pass: the waiters behind it, kv.h) are granted, each with a new
 * token (tokens: kv.h).  Grants and losses are reported to the
 * event function (kv.h, struct kv_lock_event) as they happen.
 *
 * Cost: a command touches only its inode (and its session's record);
 * expiry looks at the least recently renewed lease only, and a session
 * that goes costs the inodes it held or waited on (plus a sort of those).
 * Memory: an inode entry exists only while something is held or queued on
 * it; a held lock or waiter is one 48-byte slot, and 8 bytes in its
 * session's inode set.  Allocation happens only before a call changes
 * anything (capacity is reserved ahead for what a grant pass may need),
 * so -ENOMEM always means "nothing changed".
 * Not thread-safe: struct kv serialises access.
 */
#ifndef RAFTKV_KV_LOCKTAB_H
#define RAFTKV_KV_LOCKTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/cmd.h"
#include "kv/kv.h"

struct locktab;

/* A request: what LOCK, UNLOCK, CANCEL and GETLK name, on an inode. */
struct locktab_req {
	uint64_t inode;
	uint64_t session;
	uint64_t owner;
	uint64_t start; /* POSIX [start, end]; FLOCK: ignored (0, 0) */
	uint64_t end;
	uint32_t pid;
	uint8_t kind; /* enum kv_lock_kind */
	uint8_t mode; /* enum kv_lock_mode (LOCK, GETLK) */
	bool wait; /* LOCK: queue if not grantable (KV_F_WAIT) */
};

/* Called for every grant and loss (see kv_lock_listener in kv.h). */
typedef void (*locktab_event_fn)(void *arg, const struct kv_lock_event *ev);

/* The committed time of @session's last activity (kv.c: the session
 * table's), or INT64_MIN when there is no such session. */
typedef int64_t (*locktab_time_fn)(void *arg, uint64_t session);

/*
 * An empty table: leases of @lease_ns (> 0) of committed time, at most
 * @max (>= 1) held locks + waiters.  NULL on ENOMEM.
 *
 * Limits.  A LOCK is refused (ErrNoSpace; ENOLCK through the mount)
 * unless two more records fit under @max and under its session's share,
 * max(@max / LOCKTAB_SESSION_SHARE, LOCKTAB_SESSION_MIN) records (held
 * + waiting), so one client cannot take the whole table.  A POSIX UNLOCK
 * that would split a piece is refused the same way when one more record
 * does not fit (Linux: ENOLCK).  Granting a queued POSIX request can
 * still split its owner's piece (one record more than the request had,
 * at most once per waiter), so a table may hold up to 2 * @max records:
 * locktab_decode() accepts LOCKTAB_DECODE_MAX(@max), whatever apply made.
 */
/*
 * At most LOCKTAB_POSIX_WAITERS POSIX requests wait on one inode: a
 * waiting LOCK that would queue behind that many is refused (ErrNoSpace,
 * nothing changed; one that is grantable at once, or does not wait, is
 * judged as usual).  The grant pass judges every waiter against the
 * whole queue (the FIFO rule of kv.h), so its cost grows with the square
 * of the queue; the limit bounds what one apply, on every member, can
 * cost.  A constant of the state machine (every member must use the
 * same): the queue is state, so a restored table keeps it; a snapshot
 * with longer queues (none can be made) still loads.
 */
#define LOCKTAB_POSIX_WAITERS 64
#define LOCKTAB_SESSION_SHARE 4
#define LOCKTAB_SESSION_MIN 16
#define LOCKTAB_DECODE_MAX(max) (2 * (uint64_t)(max))

struct locktab *locktab_new(int64_t lease_ns, uint32_t max);

/* NULL-safe. */
void locktab_free(struct locktab *t);

/* Where events go (NULL: nowhere).  Not part of the state. */
void locktab_set_events(struct locktab *t, locktab_event_fn fn, void *arg);

/* Where the times of sessions come from (before locktab_expire() and
 * locktab_encode(); without one every lease counts as run out, and a
 * snapshot stores renewal time 0).  Not part of the state. */
void locktab_set_clock(struct locktab *t, locktab_time_fn fn, void *arg);

/*
 * LOCK @rq at log index @index: fills @out (status OK with attr.version =
 * the token; ErrLocked with the first conflict in out->lock and
 * KV_RES_LOCK; Queued; ErrNoSpace) and attr.inode.  The session gets a
 * lease if it had none (the most recently renewed).  Returns 0 whatever
 * the status, or -ENOMEM (nothing changed).
 */
int locktab_lock(struct locktab *t, const struct locktab_req *rq,
    uint64_t index, struct kv_result *out);

/* UNLOCK @rq (mode ignored): OK, then the grant pass; ErrNoSpace (nothing
 * changed) for a POSIX unlock inside a piece (a split) with no room for
 * one more record (see locktab_new()).  0 or -ENOMEM (nothing changed). */
int locktab_unlock(struct locktab *t, const struct locktab_req *rq,
    uint64_t index, struct kv_result *out);

/* UNLOCK_OWNER: every lock and wait of (@session, @owner) on @inode of
 * @kind (0: both); OK, then the grant passes.  Never fails. */
void locktab_unlock_owner(struct locktab *t, uint64_t inode, uint64_t session,
    uint64_t owner, uint8_t kind, uint64_t index, struct kv_result *out);

/* CANCEL: the waits of (session, owner) of @rq's kind and exact range;
 * OK, then the grant pass (a cancelled waiter may have held others
 * back).  Never fails. */
void locktab_cancel(struct locktab *t, const struct locktab_req *rq,
    uint64_t index, struct kv_result *out);

/* GETLK @rq: OK, or ErrLocked with the first held conflicting lock of
 * another owner (KV_RES_LOCK).  Changes nothing. */
void locktab_getlk(const struct locktab *t, const struct locktab_req *rq,
    struct kv_result *out);

/* FENCE: true when @token is the token of a lock held now on @inode. */
bool locktab_fence(const struct locktab *t, uint64_t inode, uint64_t token);

/*
 * The LOCK request @rq: KV_OK when its owner holds it (FLOCK: a flock of
 * at least @rq's mode; POSIX: [start, end] covered by pieces of at least
 * that mode), *@token = the token (of the piece holding start);
 * KV_EQUEUED when a matching waiter (same owner, kind, mode, range) is
 * queued; KV_ENOLOCK otherwise.  Changes nothing.
 */
int locktab_wait_state(const struct locktab *t, const struct locktab_req *rq,
    uint64_t *token);

/* A committed command of @session: its lease (if it has one) becomes the
 * most recently renewed.  Call it whenever the session table records
 * activity of a session, at that activity's time (the clock never goes
 * back), so that leases stay in order of last activity.  Never fails. */
void locktab_renew(struct locktab *t, uint64_t session);

/*
 * Every session whose lease ran out before @now (last activity + lease <
 * @now) loses all its locks and waits (one KV_LOCK_EV_LOST each, if it
 * had any) and its lease, then the grant passes run.  Looks at the least
 * recently renewed leases only.  Never fails.  Returns the number of
 * sessions expired.
 */
uint32_t locktab_expire(struct locktab *t, uint64_t index, int64_t now);

/* @session was evicted from the session table: as an expiry of that
 * session (nothing if it has no lease).  Never fails. */
void locktab_drop_session(struct locktab *t, uint64_t session, uint64_t index);

/*
 * Call @alive for each session with a lease (in id order) and drop (as
 * locktab_drop_session()) those for which it returns false: after a
 * restore trimmed the session table.  O(sessions).  Never fails.
 */
void locktab_sweep(struct locktab *t, bool (*alive)(void *arg, uint64_t s),
    void *arg, uint64_t index);

/* Held locks and waiters, in all. */
uint32_t locktab_held(const struct locktab *t);
uint32_t locktab_waiting(const struct locktab *t);

/* The records (held + waiting) of @session now (0: no lease): what its
 * share (locktab_new()) is checked against.  Kept per session (not
 * stored in snapshots: locktab_decode() counts them again). */
uint32_t locktab_session_records(const struct locktab *t, uint64_t session);

/* The last token granted (0: none yet). */
uint64_t locktab_last_token(const struct locktab *t);

/* A counter that moves with every change of the table (a grant, a
 * release, a queued or cancelled wait, an expiry): what lock waiters
 * (kv_lock_wait) watch.  Not part of the state (not in snapshots). */
uint64_t locktab_generation(const struct locktab *t);

/* The largest inode with an entry (0: none). */
uint64_t locktab_last_inode(const struct locktab *t);

/*
 * Walk every held lock, in (inode, kind, holder order): @fn gets the inode
 * and the lock; return non-zero to stop.  For tests (they compare the
 * table with reference models).
 */
void locktab_each(const struct locktab *t,
    int (*fn)(void *arg, uint64_t inode, const struct kv_lock *l), void *arg);

/*
 * Serialisation (the lock-table section of a snapshot, kvsnap.h):
 *
 *   u64 last token, u32 session count, then per session in id order:
 *     u64 session, i64 renewal time (the session's last activity)
 *   u32 inode count, then per inode in increasing order:
 *     u64 inode, then for FLOCK and POSIX: u32 holders, holders, u32
 *     waiters, waiters (FIFO order); each lock in the codec of cmd.h
 *     without its kind (kv_lock_put(), KV_LOCK_BYTES - 1 = 45 bytes)
 *
 * locktab_encode() returns a malloc'd buffer (caller frees) in *@buf of
 * *@len bytes: 0 or -ENOMEM.  locktab_decode() builds a new table (lease
 * @lease_ns, limit @max) from exactly @len bytes and checks everything:
 * counts, order, modes, ranges, tokens (non-zero and <= last token for
 * holders, 0 for waiters; two holders of one space share a token only
 * if they are pieces of one owner), no empty inode entry, no two holders
 * of different owners in conflict, every holder's and waiter's session with a
 * lease, renewal times <= @clock_ns; over LOCKTAB_DECODE_MAX(@max)
 * records: -EBADMSG.  The stored
 * renewal times only order the leases (the times themselves are the
 * session table's).  Returns 0, -EBADMSG or -ENOMEM.
 */
int locktab_encode(const struct locktab *t, void **buf, size_t *len);
int locktab_decode(const void *buf, size_t len, int64_t lease_ns, uint32_t max,
    int64_t clock_ns, struct locktab **out);

#endif
