/*
 * inode.c - the mount's inode table (see inode.h): two chained hash tables
 * over the same entries, one by inode number, one by key (live entries
 * only).  Both grow by doubling; nothing shrinks.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fs/inode.h"

#define ROOT_INO 1u
#define INITIAL_BUCKETS 256u

struct ient {
	uint64_t ino;
	uint64_t nlookup;
	unsigned opens; /* open file handles on this mount */
	uint64_t cached; /* version of the kernel's pages (0: none) */
	uint64_t sent; /* newest version in an attribute reply */
	bool kknown; /* the last inval_inode reached a kernel inode */
	char *key; /* NULL: dead */
	size_t keylen;
	struct ient *next_ino;
	struct ient *next_key;
};

struct inode_table {
	pthread_mutex_t mu;
	struct ient **by_ino;
	struct ient **by_key;
	size_t nbuckets; /* power of two, both tables */
	size_t count;
};

static size_t hash_ino(uint64_t ino)
{
	ino ^= ino >> 33;
	ino *= 0xff51afd7ed558ccdull;
	ino ^= ino >> 33;
	return (size_t)ino;
}

static size_t hash_key(const char *k, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)k[i];
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

struct inode_table *inode_table_new(void)
{
	struct inode_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->nbuckets = INITIAL_BUCKETS;
	t->by_ino = calloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_key = calloc(t->nbuckets, sizeof(*t->by_key));
	if (t->by_ino == NULL || t->by_key == NULL) {
		free(t->by_ino);
		free(t->by_key);
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

void inode_table_free(struct inode_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct ient *e = t->by_ino[i], *n;

		for (; e != NULL; e = n) {
			n = e->next_ino;
			free(e->key);
			free(e);
		}
	}
	free(t->by_ino);
	free(t->by_key);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

void inode_lock(struct inode_table *t)
{
	pthread_mutex_lock(&t->mu);
}
void inode_unlock(struct inode_table *t)
{
	pthread_mutex_unlock(&t->mu);
}

static struct ient *find_ino(struct inode_table *t, uint64_t ino)
{
	struct ient *e = t->by_ino[hash_ino(ino) & (t->nbuckets - 1)];

	while (e != NULL && e->ino != ino)
		e = e->next_ino;
	return e;
}

static struct ient *find_key(struct inode_table *t, const char *key, size_t len)
{
	struct ient *e = t->by_key[hash_key(key, len) & (t->nbuckets - 1)];

	while (e != NULL && (e->keylen != len || memcmp(e->key, key, len) != 0))
		e = e->next_key;
	return e;
}

static void unlink_key(struct inode_table *t, struct ient *e)
{
	struct ient **pp;

	if (e->key == NULL)
		return;
	pp = &t->by_key[hash_key(e->key, e->keylen) & (t->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->next_key;
	*pp = e->next_key;
	e->next_key = NULL;
	free(e->key);
	e->key = NULL;
	e->keylen = 0;
}

static void link_key(struct inode_table *t, struct ient *e)
{
	size_t b = hash_key(e->key, e->keylen) & (t->nbuckets - 1);

	e->next_key = t->by_key[b];
	t->by_key[b] = e;
}

/* Give @e the key @key (NULL: dead); whatever else is at @key dies. */
static int set_key(struct inode_table *t, struct ient *e, const char *key,
    size_t len)
{
	char *copy = NULL;
	struct ient *other;

	if (key != NULL) {
		copy = malloc(len + 1);
		if (copy == NULL) {
			unlink_key(t, e);
			return -ENOMEM;
		}
		memcpy(copy, key, len);
		copy[len] = '\0';
		other = find_key(t, key, len);
		if (other != NULL && other != e)
			unlink_key(t, other);
	}
	unlink_key(t, e);
	if (copy != NULL) {
		e->key = copy;
		e->keylen = len;
		link_key(t, e);
	}
	return 0;
}

static void grow(struct inode_table *t)
{
	size_t n = t->nbuckets * 2;
	struct ient **bi = calloc(n, sizeof(*bi));
	struct ient **bk = calloc(n, sizeof(*bk));

	if (bi == NULL || bk == NULL) {
		free(bi);
		free(bk);
		return; /* longer chains, still correct */
	}
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct ient *e = t->by_ino[i], *next;

		for (; e != NULL; e = next) {
			size_t b = hash_ino(e->ino) & (n - 1);

			next = e->next_ino;
			e->next_ino = bi[b];
			bi[b] = e;
			if (e->key != NULL) {
				b = hash_key(e->key, e->keylen) & (n - 1);
				e->next_key = bk[b];
				bk[b] = e;
			}
		}
	}
	free(t->by_ino);
	free(t->by_key);
	t->by_ino = bi;
	t->by_key = bk;
	t->nbuckets = n;
}

int inode_key_locked(struct inode_table *t, uint64_t ino, const char **key,
    size_t *len)
{
	struct ient *e;

	if (ino == ROOT_INO) {
		*key = "";
		*len = 0;
		return 0;
	}
	e = find_ino(t, ino);
	if (e == NULL)
		return -ESTALE;
	if (e->key == NULL)
		return -ENOENT;
	*key = e->key;
	*len = e->keylen;
	return 0;
}

int inode_ref_locked(struct inode_table *t, uint64_t ino, const char *key,
    size_t len)
{
	struct ient *e;
	size_t b;
	int rv;

	if (ino == ROOT_INO)
		return 0;
	e = find_ino(t, ino);
	if (e != NULL) {
		bool same = key != NULL && e->key != NULL && e->keylen == len &&
		    memcmp(e->key, key, len) == 0;

		e->nlookup++;
		return same ? 0 : set_key(t, e, key, len);
	}
	if (t->count >= t->nbuckets)
		grow(t);
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	e->ino = ino;
	e->nlookup = 1;
	b = hash_ino(ino) & (t->nbuckets - 1);
	e->next_ino = t->by_ino[b];
	t->by_ino[b] = e;
	t->count++;
	rv = set_key(t, e, key, len);
	return rv;
}

void inode_forget(struct inode_table *t, uint64_t ino, uint64_t nlookup)
{
	struct ient **pp, *e;

	if (ino == ROOT_INO)
		return;
	pthread_mutex_lock(&t->mu);
	pp = &t->by_ino[hash_ino(ino) & (t->nbuckets - 1)];
	while (*pp != NULL && (*pp)->ino != ino)
		pp = &(*pp)->next_ino;
	e = *pp;
	if (e != NULL) {
		e->nlookup = nlookup >= e->nlookup ? 0 : e->nlookup - nlookup;
		if (e->nlookup == 0) {
			*pp = e->next_ino;
			unlink_key(t, e);
			free(e);
			t->count--;
		}
	}
	pthread_mutex_unlock(&t->mu);
}

uint64_t inode_at_locked(struct inode_table *t, const char *key, size_t len)
{
	struct ient *e;

	if (len == 0)
		return ROOT_INO;
	e = find_key(t, key, len);
	return e == NULL ? 0 : e->ino;
}

uint64_t inode_applied_delete(struct inode_table *t, const char *key,
    size_t len)
{
	struct ient *e = find_key(t, key, len);

	if (e == NULL)
		return 0;
	unlink_key(t, e);
	return e->ino;
}

int inode_applied_rename(struct inode_table *t, const char *src, size_t srclen,
    const char *dst, size_t dstlen, uint64_t *died)
{
	struct ient *e = find_key(t, src, srclen), *other;

	if (e == NULL) {
		*died = inode_applied_delete(t, dst, dstlen);
		return 0;
	}
	other = find_key(t, dst, dstlen);
	*died = other != NULL && other != e ? other->ino : 0;
	return set_key(t, e, dst, dstlen);
}

int inode_applied_rename_tree(struct inode_table *t, const char *src,
    size_t srclen, const char *dst, size_t dstlen, uint64_t *died)
{
	char *buf = NULL;
	int rv = inode_applied_rename(t, src, srclen, dst, dstlen, died);

	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct ient *e = t->by_ino[i]; e != NULL;
		     e = e->next_ino) {
			size_t rest, len;

			if (e->key == NULL || e->keylen <= srclen ||
			    e->key[srclen] != '/' ||
			    memcmp(e->key, src, srclen) != 0)
				continue;
			rest = e->keylen - srclen;
			len = dstlen + rest;
			free(buf);
			buf = malloc(len);
			if (buf == NULL) {
				unlink_key(t, e);
				rv = -ENOMEM;
				continue;
			}
			memcpy(buf, dst, dstlen);
			memcpy(buf + dstlen, e->key + srclen, rest);
			if (set_key(t, e, buf, len) != 0)
				rv = -ENOMEM;
		}
	}
	free(buf);
	return rv;
}

unsigned inode_open_locked(struct inode_table *t, uint64_t ino)
{
	struct ient *e = ino == ROOT_INO ? NULL : find_ino(t, ino);

	return e == NULL ? 0 : ++e->opens;
}

unsigned inode_close_locked(struct inode_table *t, uint64_t ino)
{
	struct ient *e = ino == ROOT_INO ? NULL : find_ino(t, ino);

	if (e == NULL)
		return 0;
	if (e->opens > 0)
		e->opens--;
	return e->opens;
}

unsigned inode_opens_locked(struct inode_table *t, uint64_t ino)
{
	struct ient *e = ino == ROOT_INO ? NULL : find_ino(t, ino);

	return e == NULL ? 0 : e->opens;
}

uint64_t inode_cached_swap_locked(struct inode_table *t, uint64_t ino,
    uint64_t version)
{
	struct ient *e = ino == ROOT_INO ? NULL : find_ino(t, ino);
	uint64_t old;

	if (e == NULL)
		return 0;
	old = e->cached;
	e->cached = version;
	return old;
}

void inode_attr_sent_locked(struct inode_table *t, uint64_t ino,
    uint64_t version)
{
	struct ient *e = ino == ROOT_INO ? NULL : find_ino(t, ino);

	if (e != NULL && version > e->sent)
		e->sent = version;
}

void inode_inval_result_locked(struct inode_table *t, uint64_t ino, bool ok)
{
	struct ient *e = ino == ROOT_INO ? NULL : find_ino(t, ino);

	if (e != NULL)
		e->kknown = ok;
}

bool inode_kernel_current_locked(struct inode_table *t, uint64_t ino,
    uint64_t version)
{
	struct ient *e = ino == ROOT_INO ? NULL : find_ino(t, ino);

	return e != NULL && (e->kknown || e->sent == version);
}

void inode_kernel_stale_locked(struct inode_table *t)
{
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct ient *e = t->by_ino[i]; e != NULL; e = e->next_ino)
			e->cached = e->sent = 0, e->kknown = false;
}

size_t inode_count(struct inode_table *t)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = t->count;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void inode_each_locked(struct inode_table *t,
    void (*fn)(void *arg, uint64_t ino), void *arg)
{
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct ient *e = t->by_ino[i]; e != NULL; e = e->next_ino)
			fn(arg, e->ino);
}

int inode_set_key_locked(struct inode_table *t, uint64_t ino, const char *key,
    size_t len)
{
	struct ient *e = find_ino(t, ino);

	return e == NULL ? -ESTALE : set_key(t, e, key, len);
}
