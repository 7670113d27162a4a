/*
 * memberdir.h - the member directory: who the cluster's members are and
 * how to reach them (id, peer endpoint, client endpoint, CURVE public
 * key), as a member knows it after membership changes.
 *
 * The cluster file (raftkv.conf(5)) gives the bootstrap members; every
 * membership change entry carries the directory of the configuration it
 * makes (its ctx, memberdir_encode; a REMOVE's also has the removed
 * member's entry, whose key every member records as removed when it
 * commits: older REMOVE entries lack it), member snapshots carry it too,
 * and each member keeps the latest it has seen in its data directory (the
 * file "members", memberdir_save/memberdir_load), so that a member
 * restarted after changes knows every peer.  The Raft configuration in
 * force says WHO is a member; the directory only says where they are and
 * which key is theirs, so it may know more ids than the configuration
 * (a member that was added and then removed) without harm.
 *
 * Encoding (little-endian), the ctx of a change and the file's body:
 *   version u8 (1), n u8, then n times:
 *   id u64, peer_len u16, peer, client_len u16, client, key_len u16, key
 * (strings without NUL; key_len is 0, CURVE off, or 40, Z85).
 *
 * Pure (libc only): the client protocol carries the same encoding
 * (cproto.h, CPROTO_MEMBER).  raft/storage/memberdir_file.h keeps it in
 * a data directory.
 *
 * File "members": magic "RKMEMBR2", cluster id u64, body_len u32, body,
 * gone_len u32, gone (the removed members, raft/memberdir_gone.h),
 * crc32c u32 of everything before it.  An "RKMEMBR1" file (from before
 * the removed members were kept) is the same without gone_len and gone,
 * and is read as having no removed members.  Replaced only by writing
 * members.tmp, fdatasync, rename, fsync of the directory.  Fail-closed:
 * a file that is there but does not check out (short, wrong magic or
 * cluster, bad checksum, a body that does not decode) is
 * STORAGE_EDAMAGED with a message naming the file and the damage; the
 * member refuses to start rather than guess its peers.
 */
#ifndef RAFTKV_CORE_MEMBERDIR_H
#define RAFTKV_CORE_MEMBERDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define MEMBERDIR_MAX (2 * RAFT_MAX_MEMBERS)
#define MEMBERDIR_EP_MAX 128 /* endpoint text, NUL included */
#define MEMBERDIR_KEY_MAX 41 /* Z85 key, NUL included */

struct memberdir_entry {
	raft_id id;
	char peer[MEMBERDIR_EP_MAX];
	char client[MEMBERDIR_EP_MAX];
	char key[MEMBERDIR_KEY_MAX]; /* "" when CURVE is off */
};

struct memberdir {
	uint32_t n;
	struct memberdir_entry m[MEMBERDIR_MAX];
};

/* True if @k is a CURVE public key in Z85: 40 characters of the Z85
 * alphabet. */
bool memberdir_key_ok(const char *k);

/* True if @ep is "tcp://HOST:PORT" as libzmq accepts it (zmq_connect
 * and zmq_bind refuse others with EINVAL): shorter than
 * MEMBERDIR_EP_MAX, HOST starting with a letter or a digit and made of
 * letters, digits, '.', '-', '_' (or "[IPv6]"), PORT in 1..65535
 * (decimal, no leading zero). */
bool memberdir_endpoint_ok(const char *ep);

/* The entry of @id, or NULL. */
const struct memberdir_entry *memberdir_find(const struct memberdir *d,
    raft_id id);

/* Insert @e, or replace the entry with its id.  0, -EINVAL (id 0, an
 * endpoint memberdir_endpoint_ok() refuses, a key neither empty nor
 * memberdir_key_ok()),
 * -ENOSPC (full). */
int memberdir_put(struct memberdir *d, const struct memberdir_entry *e);

/* Drop the entry of @id (nothing if there is none). */
void memberdir_del(struct memberdir *d, raft_id id);

/* memberdir_put() every entry of @src into @d.  0 or its codes. */
int memberdir_merge(struct memberdir *d, const struct memberdir *src);

/* Encode @d into a fresh buffer (*@out, *@len; the caller frees).
 * 0 or -ENOMEM. */
int memberdir_encode(const struct memberdir *d, uint8_t **out, uint32_t *len);

/* Decode @len bytes at @buf into @d: 0, or -EINVAL for anything that is
 * not exactly one well-formed directory (unique non-zero ids). */
int memberdir_decode(const uint8_t *buf, size_t len, struct memberdir *d);

#endif
