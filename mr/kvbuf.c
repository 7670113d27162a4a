/*
 * kvbuf.c - the pair vector, its (key, value) sort and the intermediate
 * file codec.  See kvbuf.h.
 */
#define _GNU_SOURCE
#include "mr/kvbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mr/xmem.h"
#include "raft/le.h"

void kvbuf_init(struct kvbuf *kb)
{
	memset(kb, 0, sizeof(*kb));
}

void kvbuf_close(struct kvbuf *kb)
{
	free(kb->data);
	free(kb->recs);
	kvbuf_init(kb);
}

void kvbuf_clear(struct kvbuf *kb)
{
	kb->used = 0;
	kb->n = 0;
}

int kvbuf_add(struct kvbuf *kb, const char *k, size_t klen, const char *v,
    size_t vlen)
{
	size_t need = klen + vlen + 2;
	char *p;

	if (klen > KVBUF_MAX_FIELD || vlen > KVBUF_MAX_FIELD)
		return -E2BIG;
	if (kb->used + need > kb->cap) {
		size_t cap = kb->cap ? kb->cap : 4096;

		while (cap < kb->used + need)
			cap *= 2;
		kb->data = xrealloc(kb->data, cap);
		kb->cap = cap;
	}
	if (kb->n == kb->nalloc) {
		kb->nalloc = kb->nalloc ? kb->nalloc * 2 : 256;
		kb->recs = xrealloc(kb->recs, kb->nalloc * sizeof(*kb->recs));
	}
	p = kb->data + kb->used;
	if (klen)
		memcpy(p, k, klen);
	p[klen] = '\0';
	if (vlen)
		memcpy(p + klen + 1, v, vlen);
	p[klen + 1 + vlen] = '\0';
	kb->recs[kb->n].off = kb->used;
	kb->recs[kb->n].klen = (uint32_t)klen;
	kb->recs[kb->n].vlen = (uint32_t)vlen;
	kb->n++;
	kb->used += need;
	return 0;
}

static int bytescmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

static int reccmp(const void *pa, const void *pb, void *arg)
{
	const char *data = arg;
	const struct kvrec *a = pa, *b = pb;
	int c = bytescmp(data + a->off, a->klen, data + b->off, b->klen);

	if (c)
		return c;
	return bytescmp(data + a->off + a->klen + 1, a->vlen,
	    data + b->off + b->klen + 1, b->vlen);
}

void kvbuf_sort(struct kvbuf *kb)
{
	if (kb->n > 1)
		qsort_r(kb->recs, kb->n, sizeof(*kb->recs), reccmp, kb->data);
}

int kvbuf_keycmp(const struct kvbuf *kb, size_t i, size_t j)
{
	return bytescmp(kvbuf_key(kb, i), kb->recs[i].klen, kvbuf_key(kb, j),
	    kb->recs[j].klen);
}

size_t kvbuf_group_end(const struct kvbuf *kb, size_t i)
{
	size_t j = i + 1;

	while (j < kb->n && kvbuf_keycmp(kb, i, j) == 0)
		j++;
	return j;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int kvbuf_write_fd(const struct kvbuf *kb, int fd)
{
	size_t cap = 1 << 16, used = 0, i;
	char *out = xmalloc(cap);
	int rc = 0;

	for (i = 0; i < kb->n && rc == 0; i++) {
		const struct kvrec *r = &kb->recs[i];
		size_t need = 8 + (size_t)r->klen + r->vlen;

		if (used + need > cap) {
			rc = write_all(fd, out, used);
			used = 0;
			if (need > cap) {
				cap = need;
				out = xrealloc(out, cap);
			}
		}
		le_put32((uint8_t *)out + used, r->klen);
		le_put32((uint8_t *)out + used + 4, r->vlen);
		memcpy(out + used + 8, kvbuf_key(kb, i), r->klen);
		memcpy(out + used + 8 + r->klen, kvbuf_val(kb, i), r->vlen);
		used += need;
	}
	if (rc == 0)
		rc = write_all(fd, out, used);
	free(out);
	return rc;
}

int kvbuf_read_file(struct kvbuf *kb, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 16, len = 0, pos = 0;
	char *buf;
	int rc = 0;

	if (fd < 0)
		return -errno;
	buf = xmalloc(cap);
	for (;;) {
		ssize_t r;

		if (len == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	while (pos < len) {
		uint32_t kl, vl;

		if (len - pos < 8) {
			rc = -EBADMSG;
			goto out;
		}
		kl = le_get32((uint8_t *)buf + pos);
		vl = le_get32((uint8_t *)buf + pos + 4);
		if (kl > KVBUF_MAX_FIELD || vl > KVBUF_MAX_FIELD ||
		    len - pos - 8 < (size_t)kl + vl) {
			rc = -EBADMSG;
			goto out;
		}
		kvbuf_add(kb, buf + pos + 8, kl, buf + pos + 8 + kl, vl);
		pos += 8 + (size_t)kl + vl;
	}
out:
	free(buf);
	close(fd);
	return rc;
}
