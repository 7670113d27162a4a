/*
 * kvbuf.h - a growable vector of (key, value) byte-string pairs: what a map
 * task emits, what a reduce task reads back, and the intermediate file
 * format between them.
 *
 * Pairs live in one arena (key bytes, NUL, value bytes, NUL) indexed by an
 * array of records, so millions of small pairs cost two allocations, not
 * two per pair, and sorting moves 16-byte records, not strings.  The order
 * used everywhere is (key, value) by bytes: reduce sees keys in increasing
 * order and each key's values sorted, whatever the order the maps ran in,
 * which is what makes a parallel run equal the sequential one byte for byte.
 *
 * Intermediate file: a sequence of records
 *     u32 klen (LE) | u32 vlen (LE) | key | value
 * with no header; a reader checks every length against the bytes left.
 */
#ifndef RAFTKV_MR_KVBUF_H
#define RAFTKV_MR_KVBUF_H

#include <stddef.h>
#include <stdint.h>

/* Longest key or value accepted from an app or a file. */
#define KVBUF_MAX_FIELD (64u << 20)

struct kvrec {
	size_t off;
	uint32_t klen;
	uint32_t vlen;
};

struct kvbuf {
	char *data;
	size_t used, cap;
	struct kvrec *recs;
	size_t n, nalloc;
};

void kvbuf_init(struct kvbuf *kb);
void kvbuf_close(struct kvbuf *kb);
/* Forget every pair, keep the memory. */
void kvbuf_clear(struct kvbuf *kb);

/*
 * Append a copy of a pair.  Aborts on out of memory.  Returns 0, or
 * -E2BIG if a field is longer than KVBUF_MAX_FIELD (nothing appended).
 */
int kvbuf_add(struct kvbuf *kb, const char *k, size_t klen, const char *v,
    size_t vlen);

static inline const char *kvbuf_key(const struct kvbuf *kb, size_t i)
{
	return kb->data + kb->recs[i].off;
}

static inline const char *kvbuf_val(const struct kvbuf *kb, size_t i)
{
	return kb->data + kb->recs[i].off + kb->recs[i].klen + 1;
}

/* Sort pairs by (key, value) bytes. */
void kvbuf_sort(struct kvbuf *kb);

/* In a sorted buffer: index one past the last pair whose key equals pair @i's. */
size_t kvbuf_group_end(const struct kvbuf *kb, size_t i);

/* Compare keys of pairs @i and @j like memcmp (shorter prefix first). */
int kvbuf_keycmp(const struct kvbuf *kb, size_t i, size_t j);

/*
 * Write every pair to @fd in the intermediate format.
 * Returns 0 or -errno of the failed write.
 */
int kvbuf_write_fd(const struct kvbuf *kb, int fd);

/*
 * Append the pairs of intermediate file @path.  Returns 0, -errno if it
 * cannot be read, or -EBADMSG if it is not a well-formed intermediate file
 * (the pairs read before the damage are kept).
 */
int kvbuf_read_file(struct kvbuf *kb, const char *path);

#endif
