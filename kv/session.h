/*
 * session.h - client sessions: the at-most-once table of the KV state
 * machine.
 *
 * A session belongs to one client (one clerk) and remembers the sequence
 * number and the result of that client's last mutation, so that a retried
 * mutation is answered with the first result instead of being applied
 * again.  The table is part of the replicated state (it is in snapshots)
 * and evolves only through committed commands:
 *
 *   session_register()  REGISTER: a new session, id = next_id++ (ids are
 *                       assigned by the state machine and never reused)
 *   session_check()     before a mutation: NEW (execute it), DUP (answer
 *                       the stored result), STALE (older than the last),
 *                       UNKNOWN (never registered, or evicted)
 *   session_record()    after executing: store seq and result, touch
 *   session_touch()     after answering a DUP
 *   session_expire()    evict sessions idle for more than the TTL
 *
 * Time is the committed clock of the state machine (the largest proposer
 * timestamp applied so far), never a local clock.  Sessions are kept in
 * least-recently-used order; because that clock never goes backwards, the
 * LRU order is also the order of last activity, so both bounds evict from
 * the same end: the TTL (idle longer than ttl_ns of committed time) and the
 * capacity (registering when full evicts the least recently used).
 *
 * Memory: a session is one 56-byte slot in an array that grows by doubling
 * up to the capacity, plus a 4-byte hash slot at a load factor of at most
 * 1/2: at most 56 + 16 = 72 bytes per session, 66 in steady state (see
 * session_memory()).  Slot positions and hash layout are never observable:
 * everything that is (snapshots, eviction order) follows the LRU list.
 */
#ifndef RAFTKV_KV_SESSION_H
#define RAFTKV_KV_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "kv/cmd.h"

struct session_table;

/* Everything a session holds (what a snapshot stores). */
struct session_info {
	uint64_t client;
	uint64_t seq; /* last executed sequence number (0: none yet) */
	int64_t time_ns; /* committed time of the last activity */
	uint8_t status; /* stored result of the last mutation */
	uint32_t fail_cmp;
	uint32_t fail_op;
	uint64_t version;
	uint64_t inode;
};

enum session_verdict {
	SESSION_NEW = 0, /* execute, then session_record() */
	SESSION_DUP, /* seq == last: the stored result was filled in */
	SESSION_STALE, /* seq < last (or 0): a late retry, do nothing */
	SESSION_UNKNOWN, /* no such session, or expired: do nothing */
};

/*
 * An empty table holding at most @max (>= 1) sessions, each evicted after
 * @ttl_ns (>= 0) of committed time without activity.  NULL on ENOMEM.
 */
struct session_table *session_table_new(uint32_t max, int64_t ttl_ns);

/* NULL-safe. */
void session_table_free(struct session_table *st);

uint32_t session_count(const struct session_table *st);

/* The id the next registration gets (ids start at 1). */
uint64_t session_next_id(const struct session_table *st);

/* Bytes allocated by the table (slots, hash and the table itself). */
size_t session_memory(const struct session_table *st);

/*
 * Register a new session at committed time @now: evicts the least recently
 * used session first if the table is full.  Stores the id in *@client.
 * Returns 0 or -ENOMEM (nothing changed).
 */
int session_register(struct session_table *st, int64_t now, uint64_t *client);

/*
 * Classify mutation @seq of @client at committed time @now (>= the time of
 * every earlier call).  A session idle for more than the TTL counts as
 * UNKNOWN even before session_expire() removes it.  On SESSION_DUP fills
 * @dup with the stored status, fail indexes, version and inode (other
 * fields zero) and sets KV_RES_DUP.  Changes nothing.
 */
enum session_verdict session_check(const struct session_table *st,
    uint64_t client, uint64_t seq, int64_t now, struct kv_result *dup);

/*
 * Store @seq and the compact form of @res (status, fail indexes, version,
 * inode) in @client's session and make it the most recently used at @now.
 * The session must exist (session_check() said SESSION_NEW).  Never fails.
 */
void session_record(struct session_table *st, uint64_t client, uint64_t seq,
    int64_t now, const struct kv_result *res);

/* Make @client's session (which must exist) the most recent at @now. */
void session_touch(struct session_table *st, uint64_t client, int64_t now);

/* Evict every session idle for more than the TTL at @now.  Never fails. */
void session_expire(struct session_table *st, int64_t now);

/*
 * The committed time of @client's last activity, or INT64_MIN when there
 * is no such session.  The one record of it: the lock table's leases
 * read it too (locktab_set_clock()).
 */
int64_t session_time(const struct session_table *st, uint64_t client);

/* The seq of @client's last recorded request (0: none yet, or no such
 * session).  It moves with every new request of the session. */
uint64_t session_last_seq(const struct session_table *st, uint64_t client);

/*
 * Move the last activity of every session by @delta ns of committed time
 * (the election grace, kv.c: time during which nothing could commit does
 * not count toward idleness or a lock lease).  Keeps the LRU order.
 * O(sessions).  Never fails.
 */
void session_shift(struct session_table *st, int64_t delta);

/*
 * Call @fn(@arg, client) for every session evicted from now on (by the
 * TTL, by capacity on REGISTER, or by session_trim()), just after it is
 * gone.  Not part of the state.  NULL: nobody.
 */
void session_set_evict_hook(struct session_table *st,
    void (*fn)(void *arg, uint64_t client), void *arg);

/* Evict least recently used sessions until at most the capacity remain. */
void session_trim(struct session_table *st);

/*
 * Walk sessions from least to most recently used: @it = session_oldest(),
 * then session_newer(@it), until SESSION_END.  session_get() copies one.
 */
#define SESSION_END UINT32_MAX
uint32_t session_oldest(const struct session_table *st);
uint32_t session_newer(const struct session_table *st, uint32_t it);
void session_get(const struct session_table *st, uint32_t it,
    struct session_info *info);

/*
 * Rebuilding from a snapshot: set the next id first, then add sessions from
 * least to most recently used.  session_restore() returns 0, -EBADMSG
 * (client id 0 or >= the next id, a duplicate id, a time older than the
 * previous session's, an unknown status) or -ENOMEM; on error the table is
 * unusable except for session_table_free().  Call session_trim() after the
 * last one.
 */
void session_set_next_id(struct session_table *st, uint64_t next_id);
int session_restore(struct session_table *st, const struct session_info *info);

#endif
