/*
 * wbuf.c - per-inode write buffers (see wbuf.h): a list of buffers with
 * reference counts under one mutex, each buffer's extent under its own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fs/wbuf.h"

struct wbuf {
	struct wbuf *next;
	uint64_t ino;
	unsigned refs; /* under wbufs.mu */
	pthread_mutex_t mu;
	uint64_t off; /* the pending extent, under mu */
	uint64_t epoch; /* its lock loss epoch */
	unsigned char *data;
	size_t len, cap;
};

struct wbufs {
	pthread_mutex_t mu;
	struct wbuf *list;
	size_t bound;
	wbuf_commit_fn commit;
	void *arg;
};

struct wbufs *wbufs_new(size_t bound, wbuf_commit_fn fn, void *arg)
{
	struct wbufs *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	pthread_mutex_init(&w->mu, NULL);
	w->bound = bound;
	w->commit = fn;
	w->arg = arg;
	return w;
}

static void wbuf_destroy(struct wbuf *b)
{
	pthread_mutex_destroy(&b->mu);
	free(b->data);
	free(b);
}

void wbufs_free(struct wbufs *w)
{
	if (w == NULL)
		return;
	while (w->list != NULL) {
		struct wbuf *b = w->list;

		w->list = b->next;
		wbuf_destroy(b);
	}
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* With w->mu: @ino's buffer, referenced, or NULL. */
static struct wbuf *find_ref(struct wbufs *w, uint64_t ino)
{
	for (struct wbuf *b = w->list; b != NULL; b = b->next)
		if (b->ino == ino) {
			b->refs++;
			return b;
		}
	return NULL;
}

static void unref(struct wbufs *w, struct wbuf *b)
{
	struct wbuf **pp;

	pthread_mutex_lock(&w->mu);
	if (--b->refs > 0) {
		pthread_mutex_unlock(&w->mu);
		return;
	}
	for (pp = &w->list; *pp != b; pp = &(*pp)->next)
		;
	*pp = b->next;
	pthread_mutex_unlock(&w->mu);
	wbuf_destroy(b);
}

struct wbuf *wbuf_open(struct wbufs *w, uint64_t ino)
{
	struct wbuf *b;

	pthread_mutex_lock(&w->mu);
	b = find_ref(w, ino);
	if (b == NULL) {
		b = calloc(1, sizeof(*b));
		if (b != NULL) {
			pthread_mutex_init(&b->mu, NULL);
			b->ino = ino;
			b->refs = 1;
			b->next = w->list;
			w->list = b;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return b;
}

/* With b->mu: commit and empty the extent. */
static int flush_locked(struct wbufs *w, struct wbuf *b)
{
	int rv = 0;

	if (b->len > 0)
		rv = w->commit(w->arg, b->ino, b->epoch, b->off, b->data,
		    b->len);
	b->len = 0;
	return rv;
}

int wbuf_flush(struct wbufs *w, struct wbuf *b)
{
	int rv;

	pthread_mutex_lock(&b->mu);
	rv = flush_locked(w, b);
	pthread_mutex_unlock(&b->mu);
	return rv;
}

int wbuf_release(struct wbufs *w, struct wbuf *b)
{
	int rv = wbuf_flush(w, b);

	unref(w, b);
	return rv;
}

int wbuf_write(struct wbufs *w, struct wbuf *b, uint64_t epoch, uint64_t off,
    const void *data, size_t len)
{
	int rv = 0;

	pthread_mutex_lock(&b->mu);
	if (b->len > 0 && b->epoch != epoch) {
		/* Bytes of older descriptors: never mixed with these. */
		rv = flush_locked(w, b);
		if (rv == WBUF_LOST)
			rv = 0;
	} else if (b->len > 0 &&
	    (off != b->off + b->len || b->len + len > w->bound)) {
		rv = flush_locked(w, b);
	}
	if (rv == 0 && len > w->bound) {
		/* Bigger than a buffer: straight through. */
		rv = w->commit(w->arg, b->ino, epoch, off, data, len);
	} else if (rv == 0) {
		if (b->len + len > b->cap) {
			size_t cap = b->cap ? b->cap : 64 * 1024;
			unsigned char *p;

			while (cap < b->len + len)
				cap *= 2;
			p = realloc(b->data, cap);
			if (p == NULL) {
				rv = -ENOMEM;
				goto out;
			}
			b->data = p;
			b->cap = cap;
		}
		if (b->len == 0) {
			b->off = off;
			b->epoch = epoch;
		}
		memcpy(b->data + b->len, data, len);
		b->len += len;
	}
out:
	pthread_mutex_unlock(&b->mu);
	return rv;
}

int wbufs_flush_ino(struct wbufs *w, uint64_t ino)
{
	struct wbuf *b;
	int rv;

	pthread_mutex_lock(&w->mu);
	b = find_ref(w, ino);
	pthread_mutex_unlock(&w->mu);
	if (b == NULL)
		return 0;
	pthread_mutex_lock(&b->mu);
	rv = 0;
	if (b->len > 0) {
		rv = flush_locked(w, b);
		if (rv == 0)
			rv = 1;
	}
	pthread_mutex_unlock(&b->mu);
	unref(w, b);
	return rv;
}
