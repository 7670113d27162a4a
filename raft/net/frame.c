/*
 * frame.c - encode and validate transport frames (layout in frame.h).
 *
 * Decoding is a security boundary: the bytes come from whoever can reach
 * the member's peer port.  Like OpenBSD's imsg handling, every length is
 * checked before the field it guards is read, and the checks go from the
 * cheapest and most general (is this ours at all?) to the most specific
 * (is this really for me?), so that the reason counted for a rejected frame
 * is the most useful one: a frame from a newer release is "version", a
 * frame from another cluster sharing the network is "cluster", random bytes
 * are "malformed".  The body is handed to msg_decode(), which is itself
 * strict and canonical, so a frame is accepted only if every byte of it is
 * accounted for.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "raft/net/frame.h"
#include "raft/le.h"

static const uint8_t frame_magic[4] = { 'R', 'K', 'V', 'F' };

size_t frame_encoded_size(const struct raft_msg *m)
{
	size_t n = msg_encoded_size(m);

	return n == 0 ? 0 : FRAME_HEADER_SIZE + n;
}

long frame_encode(uint64_t cluster_id, raft_id sender, const struct raft_msg *m,
    uint8_t *buf, size_t cap)
{
	long body;

	if (cluster_id == 0 || sender == 0)
		return -EINVAL;
	/* msg_encode() refuses a message it cannot encode (-EINVAL). */
	if (cap < FRAME_HEADER_SIZE)
		return -ENOBUFS;
	body = msg_encode(m, buf + FRAME_HEADER_SIZE, cap - FRAME_HEADER_SIZE);
	if (body < 0)
		return body;
	memcpy(buf, frame_magic, sizeof(frame_magic));
	buf[4] = FRAME_VERSION;
	buf[5] = 0;
	buf[6] = 0;
	buf[7] = 0;
	le_put64(buf + 8, cluster_id);
	le_put64(buf + 16, sender);
	return (long)FRAME_HEADER_SIZE + body;
}

static bool is_member(const struct frame_filter *f, raft_id id)
{
	for (uint32_t i = 0; i < f->n_members; i++)
		if (f->members[i] == id)
			return true;
	return false;
}

/* The header checks, up to and including the sender. */
static int check_header(const uint8_t *buf, size_t len,
    const struct frame_filter *f, struct frame_header *h)
{
	/* Magic and version first: they are what every version shares. */
	if (len < sizeof(frame_magic) + 1 ||
	    memcmp(buf, frame_magic, sizeof(frame_magic)) != 0)
		return FRAME_EMALFORMED;
	h->version = buf[4];
	if (h->version != FRAME_VERSION)
		return FRAME_EVERSION;
	if (len < FRAME_HEADER_SIZE)
		return FRAME_EMALFORMED;
	/* Reserved bits are zero so that a future meaning is never ignored. */
	if (buf[5] != 0 || buf[6] != 0 || buf[7] != 0)
		return FRAME_EMALFORMED;
	h->cluster_id = le_get64(buf + 8);
	h->sender = le_get64(buf + 16);
	if (h->cluster_id == 0 || h->sender == 0)
		return FRAME_EMALFORMED;
	if (h->cluster_id != f->cluster_id)
		return FRAME_ECLUSTER;
	if (h->sender == f->self || !is_member(f, h->sender))
		return FRAME_ESENDER;
	return 0;
}

int frame_decode(const uint8_t *buf, size_t len, const struct frame_filter *f,
    struct frame_header *hdr, struct raft_msg *m)
{
	struct frame_header h = { 0 };
	int rv;

	memset(m, 0, sizeof(*m));
	rv = check_header(buf, len, f, &h);
	if (rv == 0) {
		rv = msg_decode(buf + FRAME_HEADER_SIZE,
		    len - FRAME_HEADER_SIZE, m);
		if (rv == RAFT_EMALFORMED)
			rv = FRAME_EMALFORMED;
	}
	if (rv == 0 && m->from != h.sender)
		rv = FRAME_EFORGED;
	else if (rv == 0 && m->to != f->self)
		rv = FRAME_EMISROUTED;
	if (rv != 0) {
		/* Possibly decoded but refused: give back what it took. */
		msg_release(m);
		memset(m, 0, sizeof(*m));
	}
	if (hdr != NULL)
		*hdr = h;
	return rv;
}
