/*
 * buf.h - byte cursors for the wire and disk codecs (header only, pure).
 *
 * A write cursor (struct buf_writer) and a read cursor (struct buf_reader)
 * over a caller's byte buffer; integers are little-endian through le.h.
 * The one cursor pair the codecs share (Raft messages in msg.c, KV
 * commands and results in kv/cmd.c, KV snapshots in kv/kvsnap.c, queries
 * in kv/query.c), so each codec states its layout once, as a sequence of
 * puts and the matching sequence of gets.
 *
 * Both cursors are bounds-checked with a sticky error flag: a put or get
 * that does not fit sets @err, writes nothing, yields zero (gets) and
 * makes every later call a no-op that yields zero.  So a decoder reads all
 * its fields and checks @err once, before it trusts any of them; a value
 * read after an error is 0, never garbage.  (Decoders still validate each
 * value before acting on it, e.g. a count before allocating.)
 *
 * Everything is static inline: the fixed-width calls compile to one
 * compare, one load or store and one pointer bump, which keeps the
 * codecs' hot loops (an entry per iteration) as fast as hand-written
 * offsets.
 */
#ifndef RAFTKV_BUF_H
#define RAFTKV_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "raft/le.h"

/* Writes into @cap bytes at @p.  Fields are public for the codecs. */
struct buf_writer {
	uint8_t *p; /* next byte to write */
	uint8_t *end; /* end of the buffer (@p once @err is set) */
	bool err; /* sticky: a put did not fit */
};

/* Reads @len bytes at @p.  Fields are public for the codecs. */
struct buf_reader {
	const uint8_t *p; /* next byte to read */
	const uint8_t *end; /* end of the input (@p once @err is set) */
	bool err; /* sticky: a get ran past the end or was refused */
};

/* ------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------ */

/* Start writing at @buf, which has room for @cap bytes (@buf may be NULL
 * when @cap is 0). */
static inline void buf_writer_init(struct buf_writer *w, void *buf, size_t cap)
{
	w->p = buf;
	w->end = cap > 0 ? w->p + cap : w->p; /* no arithmetic on NULL */
	w->err = false;
}

/* Bytes still free. */
static inline size_t buf_writer_left(const struct buf_writer *w)
{
	return (size_t)(w->end - w->p);
}

/* True if every put fitted and exactly filled the buffer. */
static inline bool buf_writer_full(const struct buf_writer *w)
{
	return !w->err && w->p == w->end;
}

/*
 * Claim the next @n bytes and return where they start (the caller fills
 * them), or NULL (and @err set) if they do not fit.
 */
static inline uint8_t *buf_put_space(struct buf_writer *w, size_t n)
{
	uint8_t *p = w->p;

	if (__builtin_expect((size_t)(w->end - p) < n, 0)) {
		w->err = true;
		w->end = p;
		return NULL;
	}
	w->p = p + n;
	return p;
}

static inline void buf_put_u8(struct buf_writer *w, uint8_t v)
{
	uint8_t *p = buf_put_space(w, 1);

	if (p != NULL)
		*p = v;
}

static inline void buf_put_u16(struct buf_writer *w, uint16_t v)
{
	uint8_t *p = buf_put_space(w, 2);

	if (p != NULL)
		le_put16(p, v);
}

static inline void buf_put_u32(struct buf_writer *w, uint32_t v)
{
	uint8_t *p = buf_put_space(w, 4);

	if (p != NULL)
		le_put32(p, v);
}

static inline void buf_put_u64(struct buf_writer *w, uint64_t v)
{
	uint8_t *p = buf_put_space(w, 8);

	if (p != NULL)
		le_put64(p, v);
}

/* A signed 64-bit integer, as its two's complement u64. */
static inline void buf_put_i64(struct buf_writer *w, int64_t v)
{
	buf_put_u64(w, (uint64_t)v);
}

/* @n bytes at @src as they are (@src may be NULL when @n is 0). */
static inline void buf_put_bytes(struct buf_writer *w, const void *src,
    size_t n)
{
	uint8_t *p = buf_put_space(w, n);

	if (p != NULL && n > 0)
		memcpy(p, src, n);
}

/* A length-prefixed byte string: u32 @n, then @n bytes at @src. */
static inline void buf_put_blob(struct buf_writer *w, const void *src,
    uint32_t n)
{
	buf_put_u32(w, n);
	buf_put_bytes(w, src, n);
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

/* Start reading the @len bytes at @buf (NULL when @len is 0 is fine). */
static inline void buf_reader_init(struct buf_reader *r, const void *buf,
    size_t len)
{
	r->p = buf;
	r->end = len > 0 ? r->p + len : r->p; /* no arithmetic on NULL */
	r->err = false;
}

/* Bytes not yet read. */
static inline size_t buf_reader_left(const struct buf_reader *r)
{
	return (size_t)(r->end - r->p);
}

/* Mark @r failed (a decoder refusing a value it read): sticky. */
static inline void buf_reader_fail(struct buf_reader *r)
{
	r->err = true;
	r->end = r->p;
}

/*
 * Consume the next @n bytes and return where they start, or NULL (and
 * @err set) if fewer remain.  A pointer into the reader's buffer.
 */
static inline const uint8_t *buf_get_space(struct buf_reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if (__builtin_expect((size_t)(r->end - p) < n, 0)) {
		buf_reader_fail(r);
		return NULL;
	}
	r->p = p + n;
	return p;
}

static inline uint8_t buf_get_u8(struct buf_reader *r)
{
	const uint8_t *p = buf_get_space(r, 1);

	return p != NULL ? *p : 0;
}

static inline uint16_t buf_get_u16(struct buf_reader *r)
{
	const uint8_t *p = buf_get_space(r, 2);

	return p != NULL ? le_get16(p) : 0;
}

static inline uint32_t buf_get_u32(struct buf_reader *r)
{
	const uint8_t *p = buf_get_space(r, 4);

	return p != NULL ? le_get32(p) : 0;
}

static inline uint64_t buf_get_u64(struct buf_reader *r)
{
	const uint8_t *p = buf_get_space(r, 8);

	return p != NULL ? le_get64(p) : 0;
}

static inline int64_t buf_get_i64(struct buf_reader *r)
{
	return (int64_t)buf_get_u64(r);
}

/*
 * The next @n bytes, borrowed from the reader's buffer; NULL when @n is 0
 * or on error.
 */
static inline const uint8_t *buf_get_bytes(struct buf_reader *r, size_t n)
{
	const uint8_t *p = buf_get_space(r, n);

	return n > 0 ? p : NULL;
}

/*
 * A length-prefixed byte string (u32 length, then the bytes) of at most
 * @max bytes; a longer one is an error.  Stores the length in *@len (0 on
 * error) and returns the bytes, borrowed (NULL when empty or on error).
 */
static inline const uint8_t *buf_get_blob(struct buf_reader *r, uint32_t max,
    uint32_t *len)
{
	uint32_t n = buf_get_u32(r);
	const uint8_t *p;

	*len = 0;
	if (n > max) {
		buf_reader_fail(r);
		return NULL;
	}
	p = buf_get_bytes(r, n);
	if (!r->err)
		*len = n;
	return p;
}

#endif
