/*
 * query.c - encoding of read-only queries (layout in query.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv/query.h"

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void query_put_attr(uint8_t *p, const struct kv_attr *a)
{
	put64(p, a->version);
	put64(p + 8, a->inode);
	put64(p + 16, a->size);
	put64(p + 24, (uint64_t)a->mtime_ns);
	put64(p + 32, (uint64_t)a->ctime_ns);
	put32(p + 40, a->mode);
	put32(p + 44, a->uid);
	put32(p + 48, a->gid);
	p[52] = a->kind;
}

void query_get_attr(const uint8_t *p, struct kv_attr *a)
{
	a->version = get64(p);
	a->inode = get64(p + 8);
	a->size = get64(p + 16);
	a->mtime_ns = (int64_t)get64(p + 24);
	a->ctime_ns = (int64_t)get64(p + 32);
	a->mode = get32(p + 40);
	a->uid = get32(p + 44);
	a->gid = get32(p + 48);
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
	put32(b + 2, q->keylen);
	if (q->keylen)
		memcpy(b + 6, q->key, q->keylen);
	if (q->kind == QUERY_LIST) {
		uint8_t *p = b + 6 + q->keylen;

		put32(p, q->afterlen);
		if (q->afterlen)
			memcpy(p + 4, q->after, q->afterlen);
		put32(p + 4 + q->afterlen, q->limit);
		put32(p + 8 + q->afterlen, (uint32_t)q->delim);
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
	q->keylen = get32(buf + 2);
	if (q->keylen > KV_KEY_MAX || q->keylen > len - 6)
		return -EBADMSG;
	q->key = buf + 6;
	off = 6 + q->keylen;
	if (q->kind == QUERY_GET)
		return off == len && q->keylen > 0 ? 0 : -EBADMSG;
	if (q->kind != QUERY_LIST || len - off < 4)
		return -EBADMSG;
	q->afterlen = get32(buf + off);
	off += 4;
	if (q->afterlen > KV_KEY_MAX || q->afterlen > len - off ||
	    len - off - q->afterlen != 8)
		return -EBADMSG;
	q->after = buf + off;
	off += q->afterlen;
	q->limit = get32(buf + off);
	q->delim = (int32_t)get32(buf + off + 4);
	if (q->delim < -1 || q->delim > 255)
		return -EBADMSG;
	return 0;
}
