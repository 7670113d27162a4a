/*
 * kvsnap.c - snapshot encoding (streaming zstd) and validating decoding.
 *
 * Writing goes through a sink: small fields are staged in a 64 KiB buffer,
 * large values are passed to the compressor directly.  The same sink in
 * "hash" mode computes kvsnap_digest() over exactly the bytes that would
 * be compressed, so the digest and the snapshot cannot disagree.
 *
 * Reading goes through a source that pulls decompressed bytes on demand:
 * small fields come from a 64 KiB window, large values are decompressed
 * straight into their final buffer.  The source refuses to deliver more
 * than the header's payload length, and at the end insists that the zstd
 * frame is complete (which is when zstd verifies the checksum) and that no
 * input is left over.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "kv/kv.h"
#include "kv/kvsnap.h"
#include "raft/buf.h"
#include "raft/le.h"

#define STAGE_BYTES (64u * 1024)
#define SESSION_BYTES 49u
#define ATTR1_BYTES 53u /* format 1: the attr without nlink */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* ------------------------------------------------------------------------
 * Sink: compressor or hash
 * ------------------------------------------------------------------------ */

struct sink {
	ZSTD_CCtx *cctx; /* NULL: hash mode, or raw mode if @raw */
	bool raw; /* copy into @out as it is (kvsnap_serialize) */
	uint8_t *out;
	size_t outcap, outpos;
	size_t outmax; /* header + ZSTD_compressBound(payload): never more */
	uint64_t hash;
	int err;
	size_t staged;
	uint8_t stage[STAGE_BYTES];
};

static void feed(struct sink *s, const void *p, size_t n, ZSTD_EndDirective end)
{
	ZSTD_inBuffer in = { p, n, 0 };

	if (s->err)
		return;
	if (s->raw) {
		/* @out was sized by payload_size(): never more is written. */
		if (n > s->outcap - s->outpos) {
			s->err = -EIO;
			return;
		}
		if (n > 0)
			memcpy(s->out + s->outpos, p, n);
		s->outpos += n;
		return;
	}
	if (s->cctx == NULL) {
		const uint8_t *b = p;

		for (size_t i = 0; i < n; i++)
			s->hash = (s->hash ^ b[i]) * FNV_PRIME;
		return;
	}
	for (;;) {
		ZSTD_outBuffer out;
		size_t rc;

		if (s->outpos == s->outcap) {
			/* Doubling, but never past the bound: a state holding
			 * a 1 GiB value must not reserve 2 GiB for it. */
			size_t ncap = s->outcap * 2 < s->outmax ? s->outcap * 2
			                                        : s->outmax;
			uint8_t *o = ncap > s->outcap ? realloc(s->out, ncap)
			                              : NULL;

			if (o == NULL) {
				s->err = -ENOMEM;
				return;
			}
			s->out = o;
			s->outcap = ncap;
		}
		out = (ZSTD_outBuffer){ s->out, s->outcap, s->outpos };
		rc = ZSTD_compressStream2(s->cctx, &out, &in, end);
		s->outpos = out.pos;
		if (ZSTD_isError(rc)) {
			s->err = -EIO;
			return;
		}
		if (end == ZSTD_e_end ? rc == 0 : in.pos == in.size)
			return;
	}
}

static void flush_stage(struct sink *s)
{
	if (s->staged > 0)
		feed(s, s->stage, s->staged, ZSTD_e_continue);
	s->staged = 0;
}

static void sink_write(struct sink *s, const void *p, size_t n)
{
	if (n >= STAGE_BYTES / 2) {
		flush_stage(s);
		feed(s, p, n, ZSTD_e_continue);
		return;
	}
	if (s->staged + n > STAGE_BYTES)
		flush_stage(s);
	memcpy(s->stage + s->staged, p, n);
	s->staged += n;
}

static void sink_u64(struct sink *s, uint64_t v)
{
	uint8_t b[8];

	le_put64(b, v);
	sink_write(s, b, 8);
}

static void sink_u32(struct sink *s, uint32_t v)
{
	uint8_t b[4];

	le_put32(b, v);
	sink_write(s, b, 4);
}

/* ------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------ */

/* The lock section (locktab_encode(); an empty table for NULL) and the
 * open section (opentab_encode(); an empty table for NULL). */
struct lock_section {
	void *buf;
	size_t len;
	void *obuf;
	size_t olen;
};

static void section_free(struct lock_section *ls)
{
	free(ls->buf);
	free(ls->obuf);
}

static int lock_section(const struct kvsnap_state *st, struct lock_section *ls)
{
	static const uint8_t empty[16];
	int rc;

	memset(ls, 0, sizeof(*ls));
	if (st->opens != NULL) {
		rc = opentab_encode(st->opens, &ls->obuf, &ls->olen);
	} else {
		rc = (ls->obuf = calloc(1, 4)) != NULL ? 0 : -ENOMEM;
		ls->olen = 4;
	}
	if (rc != 0)
		return rc;
	if (ls->olen > UINT32_MAX) {
		section_free(ls);
		return -ENOMEM;
	}
	if (st->locks != NULL) {
		rc = locktab_encode(st->locks, &ls->buf, &ls->len);
		if (rc != 0)
			free(ls->obuf);
		return rc;
	}
	ls->buf = malloc(sizeof(empty));
	if (ls->buf == NULL) {
		free(ls->obuf);
		return -ENOMEM;
	}
	memcpy(ls->buf, empty, sizeof(empty));
	ls->len = sizeof(empty);
	return 0;
}

static uint64_t payload_size(const struct kvsnap_state *st,
    const struct lock_section *ls)
{
	uint64_t n = 8 + 8 + 8 + 8 + 4 + 8 + 4 + ls->len + 4 + ls->olen + 4;
	struct keyspace_iter it;
	struct kv_rec *r;

	n += (uint64_t)session_count(st->sessions) * SESSION_BYTES;
	keyspace_first(st->ks, &it);
	for (; (r = keyspace_iter_rec(&it)) != NULL; keyspace_iter_next(&it)) {
		n += 2 + r->keylen + 8;
		if (keyspace_rec_is_first(r))
			n += KV_ATTR_BYTES + r->ino->attr.size;
	}
	return n;
}

static void write_session(struct sink *s, const struct session_info *si)
{
	uint8_t b[SESSION_BYTES];
	struct buf_writer w;

	buf_writer_init(&w, b, sizeof(b));
	buf_put_u64(&w, si->client);
	buf_put_u64(&w, si->seq);
	buf_put_i64(&w, si->time_ns);
	buf_put_u8(&w, si->status);
	buf_put_u32(&w, si->fail_cmp);
	buf_put_u32(&w, si->fail_op);
	buf_put_u64(&w, si->version);
	buf_put_u64(&w, si->inode);
	sink_write(s, b, sizeof(b));
}

static void write_rec(struct sink *s, const struct kv_rec *r)
{
	uint8_t b[KV_ATTR_BYTES];
	struct buf_writer w;

	le_put16(b, r->keylen);
	sink_write(s, b, 2);
	sink_write(s, r->key, r->keylen);
	sink_u64(s, r->ino->attr.inode);
	if (!keyspace_rec_is_first(r))
		return; /* the inode's body came with its first name */
	buf_writer_init(&w, b, sizeof(b));
	kv_attr_put(&w, &r->ino->attr);
	sink_write(s, b, sizeof(b));
	if (r->ino->attr.size > 0)
		sink_write(s, r->ino->value, r->ino->attr.size);
}

static void write_payload(struct sink *s, const struct kvsnap_state *st,
    const struct lock_section *ls, bool with_index)
{
	struct keyspace_iter it;
	struct session_info si;
	struct kv_rec *r;

	if (with_index)
		sink_u64(s, st->applied_index);
	sink_u64(s, st->next_inode);
	sink_u64(s, (uint64_t)st->clock_ns);
	sink_u64(s, session_next_id(st->sessions));
	sink_u32(s, session_count(st->sessions));
	for (uint32_t i = session_oldest(st->sessions); i != SESSION_END;
	     i = session_newer(st->sessions, i)) {
		session_get(st->sessions, i, &si);
		write_session(s, &si);
	}
	sink_u64(s, keyspace_count(st->ks));
	keyspace_first(st->ks, &it);
	for (; (r = keyspace_iter_rec(&it)) != NULL; keyspace_iter_next(&it))
		write_rec(s, r);
	sink_u32(s, (uint32_t)ls->len);
	sink_write(s, ls->buf, ls->len);
	sink_u32(s, (uint32_t)ls->olen);
	sink_write(s, ls->obuf, ls->olen);
	sink_u32(s, KVSNAP_END);
	flush_stage(s);
}

/* A compressing sink for a payload of @plen bytes, the header written:
 * NULL on ENOMEM, else check s->err (-EIO: zstd refused the setup). */
static struct sink *zsink_new(uint64_t plen, int level)
{
	size_t bound = ZSTD_compressBound(plen);
	struct sink *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->outmax = KVSNAP_HEADER_BYTES + bound;
	s->outcap = KVSNAP_HEADER_BYTES +
	    (bound < (1u << 20) ? bound : 1u << 20);
	s->out = malloc(s->outcap);
	s->cctx = ZSTD_createCCtx();
	if (s->out == NULL || s->cctx == NULL) {
		ZSTD_freeCCtx(s->cctx);
		free(s->out);
		free(s);
		return NULL;
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx,
	        ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(
	        ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(s->cctx, plen)))
		s->err = -EIO;
	memcpy(s->out, KVSNAP_MAGIC, 8);
	le_put32(s->out + 8, KVSNAP_FORMAT);
	le_put32(s->out + 12, 0);
	le_put64(s->out + 16, plen);
	s->outpos = KVSNAP_HEADER_BYTES;
	return s;
}

/* End the frame; on success hand the snapshot over to *@data, *@len.
 * Frees @s either way. */
static int zsink_finish(struct sink *s, void **data, size_t *len)
{
	int rc;

	feed(s, NULL, 0, ZSTD_e_end);
	rc = s->err;
	if (rc == 0) {
		*data = s->out;
		*len = s->outpos;
		s->out = NULL;
	}
	ZSTD_freeCCtx(s->cctx);
	free(s->out);
	free(s);
	return rc;
}

int kvsnap_encode(const struct kvsnap_state *st, int level, void **data,
    size_t *len)
{
	struct lock_section ls;
	struct sink *s;
	int rc = lock_section(st, &ls);

	if (rc != 0)
		return rc;
	if (ls.len > UINT32_MAX) {
		section_free(&ls);
		return -ENOMEM;
	}
	s = zsink_new(payload_size(st, &ls), level);
	if (s == NULL) {
		section_free(&ls);
		return -ENOMEM;
	}
	write_payload(s, st, &ls, true);
	rc = zsink_finish(s, data, len);
	section_free(&ls);
	return rc;
}

int kvsnap_serialize(const struct kvsnap_state *st, void **raw, size_t *len)
{
	struct lock_section ls;
	uint64_t plen;
	struct sink *s;
	int rc = lock_section(st, &ls);

	if (rc != 0)
		return rc;
	plen = payload_size(st, &ls);
	s = calloc(1, sizeof(*s));
	if (ls.len > UINT32_MAX || plen > SIZE_MAX || s == NULL ||
	    (s->out = malloc(plen > 0 ? (size_t)plen : 1)) == NULL) {
		free(s);
		section_free(&ls);
		return -ENOMEM;
	}
	s->raw = true;
	s->outcap = (size_t)plen;
	write_payload(s, st, &ls, true);
	rc = s->err;
	if (rc == 0 && s->outpos != s->outcap)
		rc = -EIO; /* payload_size() and write_payload() disagree */
	if (rc == 0) {
		*raw = s->out;
		*len = s->outpos;
		s->out = NULL;
	}
	free(s->out);
	free(s);
	section_free(&ls);
	return rc;
}

int kvsnap_compress(const void *raw, size_t len, int level, void **data,
    size_t *dlen)
{
	struct sink *s = zsink_new(len, level);

	if (s == NULL)
		return -ENOMEM;
	feed(s, raw, len, ZSTD_e_continue);
	return zsink_finish(s, data, dlen);
}

uint64_t kvsnap_digest(const struct kvsnap_state *st)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct lock_section ls;
	uint64_t h;

	if (s == NULL || lock_section(st, &ls) != 0) {
		free(s);
		return 0;
	}
	s->hash = FNV_OFFSET;
	write_payload(s, st, &ls, false);
	h = s->hash;
	free(s);
	section_free(&ls);
	return h;
}

/* ------------------------------------------------------------------------
 * Source: decompressor with a bounded window
 * ------------------------------------------------------------------------ */

struct source {
	ZSTD_DCtx *dctx;
	ZSTD_inBuffer in;
	size_t zret; /* last ZSTD_decompressStream(): 0 = frame done */
	uint64_t left; /* payload bytes not yet delivered */
	bool bad;
	size_t pos, end; /* window */
	uint8_t win[STAGE_BYTES];
	uint8_t key[KV_KEY_MAX]; /* the key being read */
	uint8_t prev[KV_KEY_MAX]; /* the one before it */
};

/* Decompress into @out until it is full; false on error or truncation. */
static bool pull(struct source *s, ZSTD_outBuffer *out)
{
	while (out->pos < out->size) {
		size_t before = out->pos, inbefore = s->in.pos;

		s->zret = ZSTD_decompressStream(s->dctx, out, &s->in);
		if (ZSTD_isError(s->zret))
			return false;
		if (out->pos == before && s->in.pos == inbefore)
			return false; /* no progress: input truncated */
		if (s->zret == 0 && out->pos < out->size)
			return false; /* the frame ended early */
	}
	return true;
}

static void src_read(struct source *s, void *dst, size_t n)
{
	uint8_t *d = dst;

	if (s->bad || n > s->left) {
		s->bad = true;
		return;
	}
	s->left -= n;
	while (n > 0) {
		size_t k = s->end - s->pos;

		if (k > 0) {
			k = k < n ? k : n;
			memcpy(d, s->win + s->pos, k);
			s->pos += k;
			d += k;
			n -= k;
			continue;
		}
		if (n >= sizeof(s->win)) {
			ZSTD_outBuffer out = { d, n, 0 };

			s->bad = !pull(s, &out);
			return;
		}
		/* Refill the window with at most what the payload still owes. */
		size_t want = n +
		    (s->left < sizeof(s->win) - n ? s->left
		                                  : sizeof(s->win) - n);
		ZSTD_outBuffer out = { s->win, want, 0 };

		if (!pull(s, &out)) {
			s->bad = true;
			return;
		}
		s->pos = 0;
		s->end = out.pos;
	}
}

static uint64_t src_u64(struct source *s)
{
	uint8_t b[8] = { 0 };

	src_read(s, b, 8);
	return le_get64(b);
}

static uint32_t src_u32(struct source *s)
{
	uint8_t b[4] = { 0 };

	src_read(s, b, 4);
	return le_get32(b);
}

/* Everything delivered: the frame must be complete and the input used up. */
static bool src_finish(struct source *s)
{
	uint8_t extra;

	if (s->bad || s->left != 0 || s->pos != s->end)
		return false;
	while (s->zret != 0) {
		ZSTD_outBuffer out = { &extra, 1, 0 };
		size_t inbefore = s->in.pos;

		s->zret = ZSTD_decompressStream(s->dctx, &out, &s->in);
		if (ZSTD_isError(s->zret) || out.pos != 0)
			return false;
		if (s->zret != 0 && s->in.pos == inbefore)
			return false;
	}
	return s->in.pos == s->in.size;
}

/* ------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------ */

static int read_sessions(struct source *s, struct kvsnap_state *st)
{
	uint8_t b[SESSION_BYTES];
	uint64_t next_id = src_u64(s);
	uint32_t n = src_u32(s);

	if (s->bad || next_id == 0)
		return -EBADMSG;
	session_set_next_id(st->sessions, next_id);
	for (uint32_t i = 0; i < n; i++) {
		struct session_info si;
		struct buf_reader r;
		int rc;

		src_read(s, b, sizeof(b));
		if (s->bad)
			return -EBADMSG;
		buf_reader_init(&r, b, sizeof(b));
		si.client = buf_get_u64(&r);
		si.seq = buf_get_u64(&r);
		si.time_ns = buf_get_i64(&r);
		si.status = buf_get_u8(&r);
		si.fail_cmp = buf_get_u32(&r);
		si.fail_op = buf_get_u32(&r);
		si.version = buf_get_u64(&r);
		si.inode = buf_get_u64(&r);
		if (si.time_ns > st->clock_ns)
			return -EBADMSG;
		rc = session_restore(st->sessions, &si);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Read one inode's attributes (format 1: without nlink, which is 1) and
 * check them. */
static bool read_attr(struct source *s, const struct kvsnap_state *st,
    uint32_t format, struct kv_attr *a)
{
	uint8_t b[KV_ATTR_BYTES];
	struct buf_reader r;

	if (format == 1) {
		src_read(s, b, ATTR1_BYTES);
		le_put32(b + ATTR1_BYTES, 1);
	} else {
		src_read(s, b, sizeof(b));
	}
	if (s->bad)
		return false;
	buf_reader_init(&r, b, sizeof(b));
	kv_attr_get(&r, a);
	return a->version >= 1 && a->inode >= KV_INODE_FIRST &&
	    a->inode < st->next_inode && a->size <= KV_FILE_MAX &&
	    a->ctime_ns >= 0 && (a->mode & ~KV_MODE_MASK) == 0 &&
	    a->kind >= KV_KIND_FILE && a->kind <= KV_KIND_SYMLINK &&
	    a->nlink >= 1 && a->nlink <= KV_LINK_MAX &&
	    (a->kind != KV_KIND_DIR || a->nlink == 1);
}

/* A new record for @key naming a new inode read from @s (attributes, then
 * the value), indexed; or NULL with *@rc set. */
static struct kv_rec *read_inode(struct source *s, struct kvsnap_state *st,
    uint32_t format, const uint8_t *key, size_t keylen, int *rc)
{
	struct kv_attr a;
	struct kv_rec *r;

	*rc = -EBADMSG;
	if (!read_attr(s, st, format, &a) || a.size > s->left ||
	    keyspace_inode_find(st->ks, a.inode) != NULL)
		return NULL; /* bad, or an inode seen before (format 1) */
	*rc = -ENOMEM;
	r = keyspace_rec_new(key, keylen, NULL);
	if (r == NULL)
		return NULL;
	r->ino->attr = a;
	if (a.size > 0) {
		r->ino->value = malloc(a.size);
		if (r->ino->value == NULL) {
			keyspace_rec_free(r);
			return NULL;
		}
		r->ino->cap = a.size;
		src_read(s, r->ino->value, a.size);
	}
	if (s->bad) {
		keyspace_rec_free(r);
		*rc = -EBADMSG;
		return NULL;
	}
	keyspace_inode_add(st->ks, r->ino);
	return r;
}

static int read_keys(struct source *s, struct kvsnap_state *st, uint32_t format)
{
	uint8_t *key = s->key, *prev = s->prev;
	uint64_t n = src_u64(s);
	size_t prevlen = 0;
	struct keyspace_iter it;
	struct kv_rec *r;

	for (uint64_t i = 0; i < n; i++) {
		uint8_t lb[2];
		size_t keylen;
		int rc;

		src_read(s, lb, 2);
		keylen = le_get16(lb);
		if (s->bad || keylen == 0 || keylen > KV_KEY_MAX)
			return -EBADMSG;
		src_read(s, key, keylen);
		if (s->bad ||
		    (i > 0 && keyspace_keycmp(prev, prevlen, key, keylen) >= 0))
			return -EBADMSG;
		if (format == 1) {
			r = read_inode(s, st, format, key, keylen, &rc);
		} else {
			uint64_t inum = src_u64(s);
			struct kv_inode *ino = keyspace_inode_find(st->ks,
			    inum);

			if (s->bad)
				return -EBADMSG;
			if (ino == NULL) { /* its first name: the body */
				r = read_inode(s, st, format, key, keylen, &rc);
				if (r != NULL && r->ino->attr.inode != inum) {
					keyspace_rec_free(r);
					r = NULL;
					rc = -EBADMSG;
				}
			} else if (ino->nnames >= ino->attr.nlink) {
				r = NULL; /* more names than it says */
				rc = -EBADMSG;
			} else {
				r = keyspace_rec_new(key, keylen, ino);
				rc = -ENOMEM;
			}
		}
		if (r == NULL)
			return rc;
		if (keyspace_insert(st->ks, r) != 0) {
			keyspace_rec_free(r);
			return -ENOMEM; /* -EEXIST impossible: keys ascend */
		}
		memcpy(prev, key, keylen);
		prevlen = keylen;
	}
	if (s->bad)
		return -EBADMSG;
	/* Every inode has as many names as its nlink says. */
	keyspace_first(st->ks, &it);
	for (; (r = keyspace_iter_rec(&it)) != NULL; keyspace_iter_next(&it))
		if (r->ino->nnames != r->ino->attr.nlink)
			return -EBADMSG;
	return 0;
}

/* A length-prefixed section, read into *@out (malloc'd, *@len bytes; the
 * caller frees it); -EBADMSG if it runs past the snapshot. */
static int read_section(struct source *s, void **out, uint32_t *len)
{
	uint32_t n = src_u32(s);
	void *b;

	if (s->bad || n > s->left)
		return -EBADMSG;
	b = malloc(n ? n : 1);
	if (b == NULL)
		return -ENOMEM;
	src_read(s, b, n);
	if (s->bad) {
		free(b);
		return -EBADMSG;
	}
	*out = b;
	*len = n;
	return 0;
}

/* The lock section (format 3); formats 1 and 2 have none: an empty
 * table. */
static int read_locks(struct source *s, struct kvsnap_state *st,
    uint32_t format, int64_t lease_ns, uint32_t max)
{
	uint32_t n;
	void *b;
	int rc;

	if (format < 3) {
		st->locks = locktab_new(lease_ns, max);
		return st->locks != NULL ? 0 : -ENOMEM;
	}
	rc = read_section(s, &b, &n);
	if (rc != 0)
		return rc;
	rc = locktab_decode(b, n, lease_ns, max, st->clock_ns, &st->locks);
	free(b);
	/* A lock on an inode number never assigned (>= the snapshot's next
	 * inode) can only come from a damaged snapshot. */
	if (rc == 0 && locktab_last_inode(st->locks) >= st->next_inode)
		rc = -EBADMSG;
	return rc;
}

/* The open section (format 4); earlier formats have none: an empty
 * table. */
static int read_opens(struct source *s, struct kvsnap_state *st,
    uint32_t format)
{
	uint32_t n;
	void *b;
	int rc;

	if (format < 4) {
		st->opens = opentab_new();
		return st->opens != NULL ? 0 : -ENOMEM;
	}
	rc = read_section(s, &b, &n);
	if (rc != 0)
		return rc;
	rc = opentab_decode(b, n, &st->opens);
	free(b);
	/* An inode number never assigned: a damaged snapshot. */
	if (rc == 0 && opentab_last_inode(st->opens) >= st->next_inode)
		rc = -EBADMSG;
	return rc;
}

static int read_payload(struct source *s, struct kvsnap_state *st,
    uint32_t format, int64_t lock_lease_ns, uint32_t lock_max)
{
	int rc;

	st->applied_index = src_u64(s);
	st->next_inode = src_u64(s);
	st->clock_ns = (int64_t)src_u64(s);
	if (s->bad || st->next_inode < KV_INODE_FIRST || st->clock_ns < 0)
		return -EBADMSG;
	rc = read_sessions(s, st);
	if (rc == 0)
		rc = read_keys(s, st, format);
	if (rc == 0)
		rc = read_locks(s, st, format, lock_lease_ns, lock_max);
	if (rc == 0)
		rc = read_opens(s, st, format);
	if (rc == 0 && src_u32(s) != KVSNAP_END)
		rc = -EBADMSG;
	if (rc == 0 && !src_finish(s))
		rc = -EBADMSG;
	return rc;
}

/* locktab_sweep()'s question: is @client in the session table @arg? */
static bool session_known(void *arg, uint64_t client)
{
	return session_time(arg, client) != INT64_MIN;
}

int kvsnap_decode(const void *data, size_t len, uint32_t session_max,
    int64_t ttl_ns, int64_t lock_lease_ns, uint32_t lock_max,
    struct kvsnap_state *out)
{
	const uint8_t *p = data;
	struct source *s = NULL;
	unsigned long long fcs;
	uint32_t format;
	int rc;

	memset(out, 0, sizeof(*out));
	if (data == NULL || len < KVSNAP_HEADER_BYTES ||
	    memcmp(p, KVSNAP_MAGIC, 8) != 0)
		return -EBADMSG;
	format = le_get32(p + 8);
	if (format < 1 || format > KVSNAP_FORMAT)
		return -ENOTSUP;
	if (le_get32(p + 12) != 0)
		return -EBADMSG;
	fcs = ZSTD_getFrameContentSize(p + KVSNAP_HEADER_BYTES,
	    len - KVSNAP_HEADER_BYTES);
	if (fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs == ZSTD_CONTENTSIZE_ERROR ||
	    fcs != le_get64(p + 16))
		return -EBADMSG;

	rc = -ENOMEM;
	s = calloc(1, sizeof(*s));
	out->ks = keyspace_new();
	out->sessions = session_table_new(session_max, ttl_ns);
	if (s == NULL || out->ks == NULL || out->sessions == NULL)
		goto fail;
	s->dctx = ZSTD_createDCtx();
	if (s->dctx == NULL)
		goto fail;
	s->in = (ZSTD_inBuffer){ p + KVSNAP_HEADER_BYTES,
		len - KVSNAP_HEADER_BYTES, 0 };
	s->zret = 1;
	s->left = fcs;
	s->bad = false;
	s->pos = s->end = 0;

	rc = read_payload(s, out, format, lock_lease_ns, lock_max);
	if (rc != 0)
		goto fail;
	/* Over this replica's session_max: the least recently used go, and
	 * with them their locks and waits (the waiters behind them granted
	 * in order, at the snapshot's index). */
	session_trim(out->sessions);
	locktab_sweep(out->locks, session_known, out->sessions,
	    out->applied_index);
	opentab_sweep(out->opens, session_known, out->sessions);
	ZSTD_freeDCtx(s->dctx);
	free(s);
	return 0;
fail:
	if (s != NULL)
		ZSTD_freeDCtx(s->dctx);
	free(s);
	keyspace_free(out->ks);
	session_table_free(out->sessions);
	locktab_free(out->locks);
	opentab_free(out->opens);
	memset(out, 0, sizeof(*out));
	return rc;
}
