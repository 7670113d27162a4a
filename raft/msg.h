/*
 * msg.h - binary encoding of Raft messages and log entries.
 *
 * Pure and bounds-checked: used on the wire (raft/net/transport.c), on disk
 * (raft/storage/storage.c, entry records) and by the simulator, which encodes
 * every message it carries so that byte counts are real and the codec is
 * exercised on every simulated send.  The layout is documented in msg.c;
 * all integers are little-endian, fixed width.  The decoder never trusts a
 * length: it checks every field against the bytes remaining, checks the
 * version, the type and the counts, and rejects anything malformed with
 * RAFT_EMALFORMED.  It is a fuzz target (tests/fuzz/fuzz_msg.c).
 */
#ifndef RAFTKV_MSG_H
#define RAFTKV_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define MSG_FORMAT_VERSION 1

/* Upper bounds the decoder enforces (a peer can never make us allocate more). */
#define MSG_MAX_ENTRIES 65536u
#define MSG_MAX_BYTES (64u * 1024 * 1024)

/*
 * Exact number of bytes msg_encode() will produce for @m, or 0 if @m is not
 * encodable (msg_encode() would return -EINVAL).  Only fields that are not
 * zero take space: an idle heartbeat is 37 bytes.
 */
size_t msg_encoded_size(const struct raft_msg *m);

/*
 * Encode @m into @buf of @cap bytes.  Every field of struct raft_msg is
 * carried, whatever the type.  Returns the number of bytes written (> 0),
 * or -EINVAL if @m is not encodable (checked first: unknown type, counts
 * over the limits above, an entry of unknown type, a NULL pointer with a
 * non-zero length, a chunk not inside [0, total), more than MSG_MAX_BYTES
 * in all), or -ENOBUFS if @cap is too small.
 */
long msg_encode(const struct raft_msg *m, uint8_t *buf, size_t cap);

/*
 * Decode @len bytes at @buf into @m.  On success @m->entries is a freshly
 * allocated array (caller releases it with msg_release(); NULL when there
 * are none) whose entries' data, and @m->chunk, point INTO @buf: @buf must
 * outlive @m.  Returns 0, RAFT_EMALFORMED (any inconsistency: bad version,
 * unknown type, truncated field, trailing bytes, count over limit, an encoding
 * that is not the canonical one), -ENOMEM.  On error @m is zeroed and holds
 * nothing to release.  Whatever it accepts re-encodes to the same bytes.
 */
int msg_decode(const uint8_t *buf, size_t len, struct raft_msg *m);

/* Release what msg_decode() allocated in @m (not the borrowed bytes). */
void msg_release(struct raft_msg *m);

/* Entries on their own (WAL records reuse this layout): 21 bytes + len. */
size_t msg_entry_encoded_size(const struct raft_entry *e);
/* Returns bytes written (> 0), -EINVAL (unknown type, NULL data with a
 * non-zero len), -ENOBUFS. */
long msg_encode_entry(const struct raft_entry *e, uint8_t *buf, size_t cap);
/* @e->data points into @buf (NULL when len is 0).  Bytes after the entry
 * are left alone (the next record).  Returns bytes consumed (> 0) or
 * RAFT_EMALFORMED (truncated, unknown type; @e zeroed). */
long msg_decode_entry(const uint8_t *buf, size_t len, struct raft_entry *e);

#endif
