/*
 * query.c - encoding of read-only queries (layout in query.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv/query.h"
#include "raft/le.h"

void query_put_attr(uint8_t *p, const struct kv_attr *a)
{
	le_put64(p, a->version);
	le_put64(p + 8, a->inode);
	le_put64(p + 16, a->size);
	le_put64(p + 24, (uint64_t)a->mtime_ns);
	le_put64(p + 32, (uint64_t)a->ctime_ns);
	le_put32(p + 40, a->mode);
	le_put32(p + 44, a->uid);
	le_put32(p + 48, a->gid);
	p[52] = a->kind;
}

void query_get_attr(const uint8_t *p, struct kv_attr *a)
{
	a->version = le_get64(p);
	a->inode = le_get64(p + 8);
	a->size = le_get64(p + 16);
	a->mtime_ns = (int64_t)le_get64(p + 24);
	a->ctime_ns = (int64_t)le_get64(p + 32);
	a->mode = le_get32(p + 40);
	a->uid = le_get32(p + 44);
	a->gid = le_get32(p + 48);
	a->kind = p[52];
}

int query_encode(const struct query *q, uint8_t **buf, size_t *len)
{
	size_t n = 2 + 4 + q->keylen;
	uint8_t *b;

	if (q->keylen > KV_KEY_MAX || q->afterlen > KV_KEY_MAX ||
	    (q->kind != QUERY_GET && q->kind != QUERY_LIST) ||
	    (q->kind == QUERY_GET && q->keylen == 0))
		return -EINVAL;
	if (q->kind == QUERY_LIST)
		n += 4 + q->afterlen + 8;
	b = malloc(n);
	if (b == NULL)
		return -ENOMEM;
	b[0] = QUERY_VERSION;
	b[1] = q->kind;
	le_put32(b + 2, q->keylen);
	if (q->keylen)
		memcpy(b + 6, q->key, q->keylen);
	if (q->kind == QUERY_LIST) {
		uint8_t *p = b + 6 + q->keylen;

		le_put32(p, q->afterlen);
		if (q->afterlen)
			memcpy(p + 4, q->after, q->afterlen);
		le_put32(p + 4 + q->afterlen, q->limit);
		le_put32(p + 8 + q->afterlen, (uint32_t)q->delim);
	}
	*buf = b;
	*len = n;
	return 0;
}

int query_decode(const uint8_t *buf, size_t len, struct query *q)
{
	size_t off;

	memset(q, 0, sizeof(*q));
	if (len < 6 || buf[0] != QUERY_VERSION)
		return -EBADMSG;
	q->kind = buf[1];
	q->keylen = le_get32(buf + 2);
	if (q->keylen > KV_KEY_MAX || q->keylen > len - 6)
		return -EBADMSG;
	q->key = buf + 6;
	off = 6 + q->keylen;
	if (q->kind == QUERY_GET)
		return off == len && q->keylen > 0 ? 0 : -EBADMSG;
	if (q->kind != QUERY_LIST || len - off < 4)
		return -EBADMSG;
	q->afterlen = le_get32(buf + off);
	off += 4;
	if (q->afterlen > KV_KEY_MAX || q->afterlen > len - off ||
	    len - off - q->afterlen != 8)
		return -EBADMSG;
	q->after = buf + off;
	off += q->afterlen;
	q->limit = le_get32(buf + off);
	q->delim = (int32_t)le_get32(buf + off + 4);
	if (q->delim < -1 || q->delim > 255)
		return -EBADMSG;
	return 0;
}
