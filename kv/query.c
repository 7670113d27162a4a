/*
 * query.c - encoding of read-only queries (layout in query.h), on the
 * byte cursors of raft/buf.h; the attr layout is cmd.c's kv_attr_put/get.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kv/query.h"
#include "raft/buf.h"

void query_put_attr(uint8_t *p, const struct kv_attr *a)
{
	struct buf_writer w;

	buf_writer_init(&w, p, QUERY_ATTR_LEN);
	kv_attr_put(&w, a);
}

void query_get_attr(const uint8_t *p, struct kv_attr *a)
{
	struct buf_reader r;

	buf_reader_init(&r, p, QUERY_ATTR_LEN);
	kv_attr_get(&r, a);
}

static bool is_lock_query(uint8_t kind)
{
	return kind == QUERY_GETLK || kind == QUERY_LOCKWAIT;
}

int query_encode(const struct query *q, uint8_t **buf, size_t *len)
{
	size_t n = 2 + 4 + q->keylen;
	struct buf_writer w;
	uint8_t *b;

	if (q->keylen >
	        (is_lock_query(q->kind) ? QUERY_LOCK_CMD_MAX : KV_KEY_MAX) ||
	    q->afterlen > KV_KEY_MAX ||
	    (q->kind != QUERY_GET && q->kind != QUERY_LIST &&
	        q->kind != QUERY_USAGE && !is_lock_query(q->kind)) ||
	    ((q->kind == QUERY_GET || is_lock_query(q->kind)) &&
	        q->keylen == 0) ||
	    (q->kind == QUERY_USAGE && q->keylen != 0))
		return -EINVAL;
	if (q->kind == QUERY_LIST)
		n += 4 + q->afterlen + 8;
	if (q->kind == QUERY_LOCKWAIT)
		n += 4;
	b = malloc(n);
	if (b == NULL)
		return -ENOMEM;
	buf_writer_init(&w, b, n);
	buf_put_u8(&w, QUERY_VERSION);
	buf_put_u8(&w, q->kind);
	buf_put_blob(&w, q->key, q->keylen);
	if (q->kind == QUERY_LIST) {
		buf_put_blob(&w, q->after, q->afterlen);
		buf_put_u32(&w, q->limit);
		buf_put_u32(&w, (uint32_t)q->delim);
	}
	if (q->kind == QUERY_LOCKWAIT)
		buf_put_u32(&w, q->limit);
	assert(buf_writer_full(&w));
	*buf = b;
	*len = n;
	return 0;
}

/*
 * A key-sized byte string: u32 length (at most KV_KEY_MAX), then the
 * bytes.  Points into the buffer, even when empty.
 */
static const uint8_t *get_key(struct buf_reader *r, uint32_t *len, uint32_t max)
{
	uint32_t n = buf_get_u32(r);

	if (n > max)
		buf_reader_fail(r);
	*len = n;
	return buf_get_space(r, n);
}

int query_decode(const uint8_t *buf, size_t len, struct query *q)
{
	struct buf_reader r;

	memset(q, 0, sizeof(*q));
	buf_reader_init(&r, buf, len);
	if (buf_get_u8(&r) != QUERY_VERSION)
		return -EBADMSG;
	q->kind = buf_get_u8(&r);
	q->key = get_key(&r, &q->keylen,
	    is_lock_query(q->kind) ? QUERY_LOCK_CMD_MAX : KV_KEY_MAX);
	if (r.err)
		return -EBADMSG;
	if (q->kind == QUERY_GETLK)
		return buf_reader_left(&r) == 0 && q->keylen > 0 ? 0 : -EBADMSG;
	if (q->kind == QUERY_LOCKWAIT) {
		q->limit = buf_get_u32(&r);
		return !r.err && buf_reader_left(&r) == 0 && q->keylen > 0 &&
		        q->limit <= QUERY_LOCKWAIT_MAX_MS
		    ? 0
		    : -EBADMSG;
	}
	if (q->kind == QUERY_GET)
		return buf_reader_left(&r) == 0 && q->keylen > 0 ? 0 : -EBADMSG;
	if (q->kind == QUERY_USAGE)
		return buf_reader_left(&r) == 0 && q->keylen == 0 ? 0
		                                                  : -EBADMSG;
	if (q->kind != QUERY_LIST)
		return -EBADMSG;
	q->after = get_key(&r, &q->afterlen, KV_KEY_MAX);
	q->limit = buf_get_u32(&r);
	q->delim = (int32_t)buf_get_u32(&r);
	if (r.err || buf_reader_left(&r) != 0 || q->delim < -1 ||
	    q->delim > 255)
		return -EBADMSG;
	return 0;
}
