/*
 * frame.h - the transport's wire frame: a versioned header naming the
 * cluster and the sender, followed by one encoded Raft message (msg.h).
 *
 * Pure and bounds-checked, like msg.c: no sockets, no allocation beyond
 * what msg_decode() does.  raft/net/transport.c wraps every outgoing message
 * in a frame and runs every incoming one through frame_decode(), which is
 * the whole validation of untrusted network bytes (authentication of the
 * sender's key is the transport's, see transport.h).  It is a fuzz target
 * (tests/fuzz/fuzz_frame.c).
 *
 * Layout (all integers little-endian, fixed width; 24-byte header):
 *
 *   frame   := magic    u8[4]  "RKVF"
 *              version  u8     FRAME_VERSION
 *              flags    u8     0 (reserved: must be zero)
 *              reserved u16    0 (must be zero)
 *              cluster  u64    the cluster id (never 0)
 *              sender   u64    the sending member's id (never 0)
 *              body     u8[]   msg_encode() of one struct raft_msg: the
 *                              rest of the frame (ZeroMQ keeps message
 *                              boundaries, so no length field is needed)
 *
 * The version sits right after the magic, before anything whose layout a
 * later version might change, so a frame from a newer member is reported
 * as "unsupported version" and not as garbage.  The body carries its own
 * codec version (MSG_FORMAT_VERSION) as well.
 */
#ifndef RAFTKV_FRAME_H
#define RAFTKV_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "raft/msg.h"
#include "raft/raft.h"

#define FRAME_VERSION 1
#define FRAME_HEADER_SIZE 24u
/* The largest frame a member will ever send or accept. */
#define FRAME_MAX_SIZE ((size_t)FRAME_HEADER_SIZE + MSG_MAX_BYTES)

/*
 * Why a frame was refused.  Transport-specific codes, in their own range
 * below -1300 (raft.h: -1001..; storage -1100..; node -1200..).
 */
/* Who may send to whom: what frame_decode() checks a frame against. */
struct frame_filter {
	uint64_t cluster_id;
	raft_id self;
	uint32_t n_members;
	const raft_id *members; /* may include self (which is never a sender) */
};

/* What the header said (filled in as far as it was read). */
struct frame_header {
	uint8_t version;
	uint64_t cluster_id;
	raft_id sender;
};

/*
 * Bytes frame_encode() produces for @m: FRAME_HEADER_SIZE plus
 * msg_encoded_size(@m), or 0 if @m is not encodable.
 */
size_t frame_encoded_size(const struct raft_msg *m);

/*
 * Write the frame for @m, sent by @sender of cluster @cluster_id, into @buf
 * (@cap bytes).  The header's sender is @sender whatever @m->from says (the
 * receiver checks they agree).  Returns the bytes written (> 0), -EINVAL
 * (@m not encodable, or @cluster_id / @sender 0), -ENOBUFS (@cap too small).
 */
long frame_encode(uint64_t cluster_id, raft_id sender, const struct raft_msg *m,
    uint8_t *buf, size_t cap);

/*
 * Validate and decode the @len bytes at @buf.  Checks, in this order, each
 * before the field it guards is used: length and magic, version, header
 * length, reserved bits, cluster id, sender is a member other than self,
 * then decodes the body and checks its from == sender and to == self.
 * The body must be a complete message with no bytes left over.
 *
 * On 0, @m holds the message: its entries array is allocated (release with
 * msg_release()) and the entries' data and the chunk point INTO @buf, which
 * must outlive @m.  On error @m is zeroed and holds nothing to release.
 * @hdr (may be NULL) receives the header fields read before any error.
 *
 * Returns 0, FRAME_EMALFORMED, FRAME_EVERSION, FRAME_ECLUSTER,
 * FRAME_ESENDER, FRAME_EFORGED, FRAME_EMISROUTED, -ENOMEM.
 */
int frame_decode(const uint8_t *buf, size_t len, const struct frame_filter *f,
    struct frame_header *hdr, struct raft_msg *m);

#endif
