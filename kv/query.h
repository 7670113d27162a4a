/*
 * query.h - read-only queries a client sends with CPROTO_READ (served from
 * a member's local state after the read barrier), and their answers.
 *
 * Query (little-endian; "bytes" = u32 length + bytes):
 *   u8 version (1), u8 kind
 *   GET:  key bytes
 *   LIST: prefix bytes, after bytes, u32 limit, i32 delim (-1: none)
 *   USAGE: empty key bytes (u32 0)
 * Answer to GET:  a kv_result (cmd.h encoding): status, attr, value.
 * Answer to LIST: u8 version, u8 status, u32 n, n x { key bytes, attr }
 *   where attr = u64 version, inode, size, i64 mtime, ctime, u32 mode,
 *   uid, gid, u8 kind (53 bytes).
 * Answer to USAGE: u8 version, u8 status, u64 used, u64 quota, u64 keys
 *   (kv_usage(), kv_key_count(): the size quota of kv.h, for df).
 * GETLK: key bytes = an encoded GETLK command (cmd.h; its client_id is
 *   the asking session); answer: a kv_result (kv_getlk()).
 * LOCKWAIT: key bytes = an encoded LOCK command (the queued request; its
 *   client_id is the session), u32 limit = the wait in ms (1..30000);
 *   answer: a kv_result (kv_lock_wait()), given when the grant applies on
 *   the member, or at the end of the wait (Queued).  A member blocks at
 *   most KV_LOCK_WAITERS_MAX of these at once (each holds one worker of
 *   its endpoint: kv.h); past that it answers Queued at once.
 * Decoders check every length and reject trailing bytes.
 */
#ifndef RAFTKV_KV_QUERY_H
#define RAFTKV_KV_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "kv/cmd.h"

#define QUERY_VERSION 1
#define QUERY_LIST_PAGE_MAX 1000u /* keys per LIST answer */
#define QUERY_LIST_BYTES_MAX (4u << 20) /* bytes per LIST answer */
#define QUERY_ATTR_LEN KV_ATTR_BYTES

enum query_kind {
	QUERY_GET = 1,
	QUERY_LIST = 2,
	QUERY_USAGE = 3,
	QUERY_GETLK = 4,
	QUERY_LOCKWAIT = 5,
};

#define QUERY_LOCKWAIT_MAX_MS 30000
/* Bytes of the command a GETLK/LOCKWAIT query holds. */
#define QUERY_LOCK_CMD_MAX (KV_KEY_MAX + 256u)

#define QUERY_USAGE_LEN 26 /* bytes of the answer to USAGE */

struct query {
	uint8_t kind;
	const uint8_t *key; /* GET key, LIST prefix */
	uint32_t keylen;
	const uint8_t *after; /* LIST */
	uint32_t afterlen;
	uint32_t limit;
	int32_t delim;
};

/* Encode into a fresh buffer (caller frees).  0, -EINVAL, -ENOMEM. */
int query_encode(const struct query *q, uint8_t **buf, size_t *len);
/* Decode (pointers into @buf).  0 or -EBADMSG. */
int query_decode(const uint8_t *buf, size_t len, struct query *q);

/* Encode @a into, or decode it from, the QUERY_ATTR_LEN bytes at @p (the
 * attr layout of cmd.h: kv_attr_put()/kv_attr_get()). */
void query_put_attr(uint8_t *p, const struct kv_attr *a);
void query_get_attr(const uint8_t *p, struct kv_attr *a);

#endif
