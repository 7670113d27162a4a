/*
 * memberdir_gone.h - the members a member saw removed: their ids (not
 * connected nor admitted again until a change adds the id back) and
 * their CURVE public keys (never admitted again: a member comes back
 * with a new key).
 *
 * A member learns this from the committed change entries of its log, in
 * log order (raft/member/node_member.c: the key a REMOVE entry carries;
 * an id of the configuration in force is never in the set), but
 * compaction drops those entries; so
 * the set is kept with the member directory in the data directory's
 * file "members" (raft/storage/memberdir_file.h) and in member snapshots
 * (raft/member/member.c), and a member restarted after compaction, or
 * one that caught up from a snapshot, still refuses them.
 *
 * Encoding (little-endian):
 *   version u8 (1), n_ids u16, n_ids times id u64,
 *   n_keys u16, n_keys times key (40 bytes, Z85)
 * Ids are non-zero and unique, keys valid and unique.
 *
 * Bounded, and never forgetting: a set holds at most MEMBERDIR_GONE_MAX
 * ids and as many keys, and when one is full a new one is refused
 * (-ENOSPC), never made room for by dropping an old one (a forgotten id
 * or key would be admitted again).  The leader refuses a removal that
 * would not fit (NODE_EGONEFULL, raft/member/node_member.c); a member
 * whose set is full all the same (its sets differ from the leader's)
 * fails closed: it forgets the address of an id it cannot record, and
 * stops on a key it cannot record.
 *
 * Pure (libc only).
 */
#ifndef RAFTKV_CORE_MEMBERDIR_GONE_H
#define RAFTKV_CORE_MEMBERDIR_GONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/memberdir.h"

#define MEMBERDIR_GONE_MAX 256

struct memberdir_gone {
	uint32_t n_ids;
	raft_id ids[MEMBERDIR_GONE_MAX];
	uint32_t n_keys; /* oldest first */
	char keys[MEMBERDIR_GONE_MAX][MEMBERDIR_KEY_MAX];
};

/* True if @id / @key is in @g ("" is never). */
bool memberdir_gone_has_id(const struct memberdir_gone *g, raft_id id);
bool memberdir_gone_has_key(const struct memberdir_gone *g, const char *key);

/* Add @id (id 0 and ids already there: nothing).  0, or -ENOSPC when
 * the set is full (nothing changed: no id is ever forgotten). */
int memberdir_gone_add_id(struct memberdir_gone *g, raft_id id);

/* Drop @id (added again). */
void memberdir_gone_del_id(struct memberdir_gone *g, raft_id id);

/* Add @key if memberdir_key_ok() and not there.  0, or -ENOSPC when the
 * set is full (nothing changed: no key is ever forgotten). */
int memberdir_gone_add_key(struct memberdir_gone *g, const char *key);

/* True if removing member @id with @key ("" for none) fits in @g: each
 * is there already, is nothing to add, or finds room. */
bool memberdir_gone_room(const struct memberdir_gone *g, raft_id id,
    const char *key);

/* Add every id and key of @src to @dst.  0, or -ENOSPC if some did not
 * fit (the rest were added). */
int memberdir_gone_merge(struct memberdir_gone *dst,
    const struct memberdir_gone *src);

/* True if @g holds nothing. */
bool memberdir_gone_empty(const struct memberdir_gone *g);

/* Encode @g into a fresh buffer (*@out, *@len; the caller frees).
 * 0 or -ENOMEM. */
int memberdir_gone_encode(const struct memberdir_gone *g, uint8_t **out,
    uint32_t *len);

/* Decode exactly @len bytes at @buf into @g: 0 or -EINVAL. */
int memberdir_gone_decode(const uint8_t *buf, size_t len,
    struct memberdir_gone *g);

#endif
