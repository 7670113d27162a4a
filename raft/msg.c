/*
 * msg.c - wire encoding of Raft messages and log entries.
 *
 * Pure: no I/O, one allocation per decoded message at most (the entries
 * array; entry data and snapshot chunks point into the caller's buffer).
 *
 * Byte layout (all integers little-endian, fixed width):
 *
 *   message := header fields*
 *   header  := magic    u8   0xA7
 *              version  u8   MSG_FORMAT_VERSION
 *              type     u8   enum raft_msg_type, 1..RAFT_MSG_TYPE_MAX
 *              present  u16  bit set of the optional fields below
 *              from     u64
 *              to       u64
 *              term     u64                          (29 bytes)
 *
 *   Then, in bit order, one item per bit set in @present:
 *
 *     bit  0  index       u64
 *     bit  1  log_term    u64
 *     bit  2  commit      u64
 *     bit  3  hint_index  u64
 *     bit  4  hint_term   u64
 *     bit  5  ctx         u64
 *     bit  6  offset      u64
 *     bit  7  total       u64
 *     bit  8  snap        index u64, term u64, counts u8, ids u64[nv + nl]
 *                         (counts: n_voters in the low nibble, n_learners
 *                         in the high one; ids: voters, then learners.
 *                         Without learners the bytes are those of the
 *                         older format, whose decoders refuse a counts
 *                         byte above 15: a cluster with learners needs
 *                         members that know about them)
 *     bit  9  entries     n_entries u32, entry[n_entries]
 *     bit 10  chunk       chunk_len u32, chunk u8[chunk_len]
 *     bit 11  reject      (no payload: the bit is the value)
 *     bit 12  done        (no payload)
 *     bits 13-15 must be clear.
 *
 *   entry   := term u64, index u64, type u8, len u32, data u8[len]  (21 + len)
 *
 * A field is present exactly when its value is not zero (for snap: when
 * any of index, term, n_voters is not zero), and the decoder rejects a
 * present field whose value is zero.  So every accepted byte string is the
 * unique encoding of the message it decodes to: decode-then-encode gives
 * back the same bytes (what tests/fuzz/fuzz_msg.c checks).
 *
 * Why a presence set rather than a fixed layout per type: messages stay
 * small (an idle heartbeat is 37 bytes, 45 with a read-index ctx; an
 * AppendEntries response 37), and the codec carries struct raft_msg
 * faithfully whatever fields the core gives meaning to for each type, so
 * giving a field a new use never needs a format change.  The core, not the
 * codec, decides what a field means for a type (see enum raft_msg_type).
 *
 * Why entries carry their index: the WAL reuses the entry layout
 * (msg_encode_entry), where records must be self-describing.  The 21-byte
 * entry header is noise next to typical payloads.
 *
 * Decoding is a security boundary (bytes from the network): every length is
 * checked against the bytes remaining before it is used (subtractions only,
 * no additions that could overflow), counts are bounded (MSG_MAX_ENTRIES,
 * RAFT_MAX_MEMBERS, MSG_MAX_BYTES), and the entries array is allocated only
 * once the remaining bytes could hold that many entry headers, so a small
 * message can never make us allocate much.  Within a SNAPSHOT chunk,
 * offset + chunk_len must not exceed total.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "raft/buf.h"
#include "raft/msg.h"

#define MSG_MAGIC 0xA7u
#define HEADER_SIZE 29u
#define ENTRY_HEADER_SIZE 21u
#define SNAP_FIXED_SIZE 17u /* index, term, n_voters */

enum {
	F_INDEX = 1u << 0,
	F_LOG_TERM = 1u << 1,
	F_COMMIT = 1u << 2,
	F_HINT_INDEX = 1u << 3,
	F_HINT_TERM = 1u << 4,
	F_CTX = 1u << 5,
	F_OFFSET = 1u << 6,
	F_TOTAL = 1u << 7,
	F_SNAP = 1u << 8,
	F_ENTRIES = 1u << 9,
	F_CHUNK = 1u << 10,
	F_REJECT = 1u << 11,
	F_DONE = 1u << 12,
	F_ALL = (1u << 13) - 1,
};
#define N_U64_FIELDS 8 /* bits 0..7, in this order */

/* ------------------------------------------------------------------------
 * Entries
 * ------------------------------------------------------------------------ */

static bool entry_type_valid(uint8_t type)
{
	return type == RAFT_ENTRY_NORMAL || type == RAFT_ENTRY_NOOP ||
	    type == RAFT_ENTRY_CONF;
}

static bool entry_encodable(const struct raft_entry *e)
{
	return entry_type_valid(e->type) && (e->len == 0 || e->data != NULL);
}

size_t msg_entry_encoded_size(const struct raft_entry *e)
{
	return ENTRY_HEADER_SIZE + (size_t)e->len;
}

/* Inlined so that the cursor stays in registers in msg_encode's entry
 * loop (out of line, it lives in memory and every put reloads it). */
static inline __attribute__((always_inline)) void put_entry(struct buf_writer
                                                                *w,
    const struct raft_entry *e)
{
	buf_put_u64(w, e->term);
	buf_put_u64(w, e->index);
	buf_put_u8(w, e->type);
	buf_put_u32(w, e->len);
	buf_put_bytes(w, e->data, e->len);
}

long msg_encode_entry(const struct raft_entry *e, uint8_t *buf, size_t cap)
{
	size_t n = msg_entry_encoded_size(e);
	struct buf_writer w;

	if (!entry_encodable(e))
		return -EINVAL;
	if (cap < n)
		return -ENOBUFS;
	buf_writer_init(&w, buf, n);
	put_entry(&w, e);
	assert(buf_writer_full(&w));
	return (long)n;
}

static bool get_entry(struct buf_reader *r, struct raft_entry *e)
{
	const uint8_t *data;

	e->term = buf_get_u64(r);
	e->index = buf_get_u64(r);
	e->type = buf_get_u8(r);
	e->len = buf_get_u32(r);
	if (r->err || !entry_type_valid(e->type)) {
		buf_reader_fail(r);
		return false;
	}
	data = buf_get_bytes(r, e->len);
	if (r->err)
		return false;
	/* Borrowed from the caller's buffer; raft_entry.data is not const
	 * only because the core owns the entries it creates. */
	e->data = (uint8_t *)(uintptr_t)data;
	return true;
}

long msg_decode_entry(const uint8_t *buf, size_t len, struct raft_entry *e)
{
	struct buf_reader r;

	buf_reader_init(&r, buf, len);
	if (!get_entry(&r, e)) {
		memset(e, 0, sizeof(*e));
		return RAFT_EMALFORMED;
	}
	return (long)(len - buf_reader_left(&r));
}

/* ------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------ */

/* The u64 fields of bits 0..7, in wire order. */
#define U64_FIELDS(m) \
	{ \
		&(m)->index, &(m)->log_term, &(m)->commit, &(m)->hint_index, \
		    &(m)->hint_term, &(m)->ctx, &(m)->offset, &(m)->total \
	}

static bool snap_present(const struct raft_snapshot_meta *s)
{
	return s->index != 0 || s->term != 0 || s->n_voters != 0 ||
	    s->n_learners != 0;
}

static unsigned present_fields(const struct raft_msg *m)
{
	const uint64_t *u[N_U64_FIELDS] = U64_FIELDS(m);
	unsigned f = 0;

	for (unsigned i = 0; i < N_U64_FIELDS; i++)
		if (*u[i] != 0)
			f |= 1u << i;
	if (snap_present(&m->snap))
		f |= F_SNAP;
	if (m->n_entries > 0)
		f |= F_ENTRIES;
	if (m->chunk_len > 0)
		f |= F_CHUNK;
	if (m->reject)
		f |= F_REJECT;
	if (m->done)
		f |= F_DONE;
	return f;
}

/* A chunk must lie inside the snapshot it belongs to. */
static bool chunk_in_bounds(uint64_t offset, uint32_t chunk_len, uint64_t total)
{
	return chunk_len <= total && offset <= total - chunk_len;
}

/* Validate @m and compute its exact encoded size: 0 if not encodable. */
static uint64_t encoded_size(const struct raft_msg *m, unsigned f)
{
	uint64_t n = HEADER_SIZE;

	if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX)
		return 0;
	n += 8 * (uint64_t)__builtin_popcount(f & ((1u << N_U64_FIELDS) - 1));
	if (f & F_SNAP) {
		if (m->snap.n_voters > RAFT_MAX_MEMBERS ||
		    m->snap.n_learners > RAFT_MAX_MEMBERS ||
		    m->snap.n_voters + m->snap.n_learners > RAFT_MAX_MEMBERS)
			return 0;
		n += SNAP_FIXED_SIZE +
		    8 * (uint64_t)(m->snap.n_voters + m->snap.n_learners);
	}
	if (f & F_ENTRIES) {
		if (m->n_entries > MSG_MAX_ENTRIES || m->entries == NULL)
			return 0;
		n += 4;
		for (uint32_t i = 0; i < m->n_entries; i++) {
			if (!entry_encodable(&m->entries[i]))
				return 0;
			n += ENTRY_HEADER_SIZE + (uint64_t)m->entries[i].len;
		}
	}
	if (f & F_CHUNK) {
		if (m->chunk == NULL ||
		    !chunk_in_bounds(m->offset, m->chunk_len, m->total))
			return 0;
		n += 4 + (uint64_t)m->chunk_len;
	}
	return n <= MSG_MAX_BYTES ? n : 0;
}

size_t msg_encoded_size(const struct raft_msg *m)
{
	return (size_t)encoded_size(m, present_fields(m));
}

long msg_encode(const struct raft_msg *m, uint8_t *buf, size_t cap)
{
	const uint64_t *u[N_U64_FIELDS] = U64_FIELDS(m);
	unsigned f = present_fields(m);
	uint64_t size = encoded_size(m, f);
	struct buf_writer w;

	if (size == 0)
		return -EINVAL;
	if (cap < size)
		return -ENOBUFS;

	buf_writer_init(&w, buf, (size_t)size);
	buf_put_u8(&w, MSG_MAGIC);
	buf_put_u8(&w, MSG_FORMAT_VERSION);
	buf_put_u8(&w, m->type);
	buf_put_u16(&w, (uint16_t)f);
	buf_put_u64(&w, m->from);
	buf_put_u64(&w, m->to);
	buf_put_u64(&w, m->term);
	for (unsigned i = 0; i < N_U64_FIELDS; i++)
		if (f & (1u << i))
			buf_put_u64(&w, *u[i]);
	if (f & F_SNAP) {
		buf_put_u64(&w, m->snap.index);
		buf_put_u64(&w, m->snap.term);
		buf_put_u8(&w,
		    (uint8_t)(m->snap.n_voters | (m->snap.n_learners << 4)));
		for (uint32_t i = 0; i < m->snap.n_voters; i++)
			buf_put_u64(&w, m->snap.voters[i]);
		for (uint32_t i = 0; i < m->snap.n_learners; i++)
			buf_put_u64(&w, m->snap.learners[i]);
	}
	if (f & F_ENTRIES) {
		buf_put_u32(&w, m->n_entries);
		for (uint32_t i = 0; i < m->n_entries; i++)
			put_entry(&w, &m->entries[i]);
	}
	if (f & F_CHUNK) {
		buf_put_u32(&w, m->chunk_len);
		buf_put_bytes(&w, m->chunk, m->chunk_len);
	}
	/* reject and done live in @f only; @size was exact. */
	assert(buf_writer_full(&w));
	return (long)size;
}

static bool get_snap(struct buf_reader *r, struct raft_snapshot_meta *s)
{
	uint8_t n, nv, nl;

	s->index = buf_get_u64(r);
	s->term = buf_get_u64(r);
	n = buf_get_u8(r);
	nv = n & 15;
	nl = n >> 4;
	if (r->err || nv + nl > RAFT_MAX_MEMBERS)
		return false;
	s->n_voters = nv;
	for (uint8_t i = 0; i < nv; i++)
		s->voters[i] = buf_get_u64(r);
	s->n_learners = nl;
	for (uint8_t i = 0; i < nl; i++)
		s->learners[i] = buf_get_u64(r);
	return !r->err && snap_present(s); /* present means not all zero */
}

/* Decode the entries field into a fresh array in @m.  Returns 0,
 * RAFT_EMALFORMED, -ENOMEM; on error @m->entries is NULL. */
static int get_entries(struct buf_reader *r, struct raft_msg *m)
{
	uint32_t n = buf_get_u32(r);

	if (r->err || n == 0 || n > MSG_MAX_ENTRIES)
		return RAFT_EMALFORMED;
	/* Before allocating: could the rest even hold @n entry headers? */
	if (n > buf_reader_left(r) / ENTRY_HEADER_SIZE)
		return RAFT_EMALFORMED;
	m->entries = calloc(n, sizeof(*m->entries));
	if (m->entries == NULL)
		return -ENOMEM;
	m->n_entries = n;
	for (uint32_t i = 0; i < n; i++)
		if (!get_entry(r, &m->entries[i]))
			return RAFT_EMALFORMED;
	return 0;
}

static int get_chunk(struct buf_reader *r, struct raft_msg *m)
{
	m->chunk_len = buf_get_u32(r);
	m->chunk = buf_get_bytes(r, m->chunk_len);
	if (r->err || m->chunk_len == 0)
		return RAFT_EMALFORMED;
	if (!chunk_in_bounds(m->offset, m->chunk_len, m->total))
		return RAFT_EMALFORMED;
	return 0;
}

/* Everything after the header, in wire order. */
static int get_fields(struct buf_reader *r, unsigned f, struct raft_msg *m)
{
	uint64_t *u[N_U64_FIELDS] = U64_FIELDS(m);
	int rv;

	for (unsigned i = 0; i < N_U64_FIELDS; i++) {
		if (!(f & (1u << i)))
			continue;
		*u[i] = buf_get_u64(r);
		if (*u[i] == 0) /* absent means zero; also a short read */
			return RAFT_EMALFORMED;
	}
	if ((f & F_SNAP) && !get_snap(r, &m->snap))
		return RAFT_EMALFORMED;
	if ((f & F_ENTRIES) && (rv = get_entries(r, m)) != 0)
		return rv;
	if ((f & F_CHUNK) && (rv = get_chunk(r, m)) != 0)
		return rv;
	m->reject = (f & F_REJECT) != 0;
	m->done = (f & F_DONE) != 0;
	/* no trailing bytes */
	return !r->err && buf_reader_left(r) == 0 ? 0 : RAFT_EMALFORMED;
}

int msg_decode(const uint8_t *buf, size_t len, struct raft_msg *m)
{
	struct buf_reader r;
	uint16_t f;
	int rv;

	memset(m, 0, sizeof(*m));
	buf_reader_init(&r, buf, len);
	if (buf_get_u8(&r) != MSG_MAGIC || buf_get_u8(&r) != MSG_FORMAT_VERSION)
		goto malformed;
	m->type = buf_get_u8(&r);
	if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX)
		goto malformed;
	if (len > MSG_MAX_BYTES)
		goto malformed;
	f = buf_get_u16(&r);
	m->from = buf_get_u64(&r);
	m->to = buf_get_u64(&r);
	m->term = buf_get_u64(&r);
	if (r.err || (f & ~(unsigned)F_ALL) != 0)
		goto malformed;
	rv = get_fields(&r, f, m);
	if (rv != 0)
		goto err;
	return 0;

malformed:
	rv = RAFT_EMALFORMED;
err:
	msg_release(m);
	memset(m, 0, sizeof(*m));
	return rv;
}

void msg_release(struct raft_msg *m)
{
	if (m == NULL)
		return;
	free(m->entries);
	m->entries = NULL;
	m->n_entries = 0;
}
