/*
 * kvsnap.h - serialisation of the KV state for snapshots.
 *
 * Format (all integers little-endian):
 *
 *   header, uncompressed (24 bytes):
 *     u8[8] magic "RKVSNAP\0", u32 format (KVSNAP_FORMAT), u32 flags (0),
 *     u64 payload length (uncompressed; must equal the frame's content size)
 *   one zstd frame (content size and XXH64 content checksum included)
 *   holding the payload:
 *     u64 applied index,
 *     u64 next inode, i64 committed clock, u64 next client id,
 *     u32 session count, then per session, least recently used first:
 *       u64 client, u64 seq, i64 time, u8 status, u32 fail_cmp,
 *       u32 fail_op, u64 version, u64 inode                      (49 bytes)
 *     u64 key count, then per key (name), in key order:
 *       u16 keylen, key, u64 inode number, and, at the first name of
 *       each inode in key order only, the inode's body: attr (cmd.h
 *       layout, KV_ATTR_BYTES: u64 version, u64 inode, u64 size, i64
 *       mtime, i64 ctime, u32 mode, u32 uid, u32 gid, u8 kind, u32
 *       nlink), value (size bytes).  A later name of the same inode (a
 *       hard link) is just its key and the inode number.
 *     u32 lock section length, the lock table (locktab.h: its layout;
 *       locks are keyed by inode number)
 *     u32 open section length, the open table (opentab.h: u32 count,
 *       then per pair in (inode, session) order u64 inode, u64 session)
 *     u32 end marker KVSNAP_END
 *
 * Formats (kvsnap_encode() writes KVSNAP_FORMAT = 4; all four are read):
 *   1  the released one: per key u16 keylen, key, the attr without nlink
 *      (53 bytes), value; every key its own inode; no lock section.
 *   2  hard links (the key layout above); no lock section.
 *   3  format 2 plus the lock section.
 *   4  format 3 plus the open section (kv.h, OPENS).
 * A snapshot without a lock section restores an empty lock table, one
 * without an open section an empty open table.  (The
 * locks branch's pre-merge format 2, key layout 1 plus locks, was never
 * released and is not supported: it is parsed as the links layout.)
 *
 * Every byte is checked: the header field by field, the payload by the
 * zstd checksum and then field by field.  Compression is streaming both ways: values are fed to zstd without being
 * copied, and decompressed straight into the buffers that will hold them,
 * so restoring needs no second copy of the state.  The decoder validates
 * everything (see kvsnap_decode()) and builds a complete new state before
 * its caller swaps it in.
 */
#ifndef RAFTKV_KV_KVSNAP_H
#define RAFTKV_KV_KVSNAP_H

#include <stddef.h>
#include <stdint.h>

#include "kv/keyspace.h"
#include "kv/locktab.h"
#include "kv/opentab.h"
#include "kv/session.h"

#define KVSNAP_MAGIC "RKVSNAP" /* + its terminating NUL: 8 bytes */
#define KVSNAP_FORMAT \
	4 /* 2: hard links; 3: and the lock table; 4: and
                           the open table */
#define KVSNAP_HEADER_BYTES 24
#define KVSNAP_END 0x21444e45u /* "END!" */

/* The parts of the state a snapshot holds (borrowed when encoding). */
struct kvsnap_state {
	uint64_t applied_index;
	uint64_t next_inode;
	int64_t clock_ns;
	struct keyspace *ks;
	struct session_table *sessions;
	struct locktab *locks; /* encoding: NULL = an empty table */
	struct opentab *opens; /* encoding: NULL = an empty table */
};

/*
 * Serialise @s, compressing at zstd @level.  On success *@data (caller
 * frees it) holds *@len bytes.  Returns 0, -ENOMEM, -EIO (zstd error).
 */
int kvsnap_encode(const struct kvsnap_state *s, int level, void **data,
    size_t *len);

/*
 * kvsnap_encode() in two steps, for a caller that must not hold its lock
 * through the compression: kvsnap_serialize() copies the payload
 * (uncompressed, exactly as kvsnap_encode() would compress it) of @s into
 * *@raw (*@len bytes, caller frees): a point-in-time copy, at memcpy
 * speed.  kvsnap_compress() then makes of it, with no lock, the snapshot
 * kvsnap_encode() makes (*@data, caller frees).  Both return 0, -ENOMEM,
 * -EIO (zstd error, or an internal size mismatch).
 */
int kvsnap_serialize(const struct kvsnap_state *s, void **raw, size_t *len);
int kvsnap_compress(const void *raw, size_t len, int level, void **data,
    size_t *dlen);

/*
 * Decode the snapshot at @data into @out, building a new key space, a
 * new session table (capacity @session_max, TTL @ttl_ns; trimmed to the
 * capacity), a new lock table (lease @lock_lease_ns, limit @lock_max;
 * empty for formats 1 and 2) and a new open table (empty for formats 1
 * to 3; the registrations of sessions the trim dropped go too).  Checks: magic, format, flags, the frame's
 * content size against the header, the zstd checksum, no byte before or
 * after the frame unaccounted for, every length, keys strictly increasing
 * and 1..KV_KEY_MAX bytes, versions >= 1, kinds, modes, sizes <=
 * KV_FILE_MAX, inodes in [KV_INODE_FIRST, next inode), each body once
 * (formats 2 to 4: at its first name; format 1: inodes distinct), each
 * inode's nlink (1..KV_LINK_MAX) equal to its names, ctimes >= 0, the
 * session table (session_restore()), times <= the committed clock, the
 * lock section (format 3: locktab_decode()), the end marker.  Returns 0
 * (the caller owns out->ks, out->sessions and out->locks), -EBADMSG,
 * -ENOTSUP (a format other than 1..KVSNAP_FORMAT), -ENOMEM; on error @out
 * holds nothing.
 */
int kvsnap_decode(const void *data, size_t len, uint32_t session_max,
    int64_t ttl_ns, int64_t lock_lease_ns, uint32_t lock_max,
    struct kvsnap_state *out);

/* FNV-1a 64 of the payload kvsnap_encode() would compress, without the
 * applied index (the digest is of the replicated state only). */
uint64_t kvsnap_digest(const struct kvsnap_state *s);

#endif
