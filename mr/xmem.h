/*
 * xmem.h - allocation wrappers for the mr/ front end: abort on failure
 * (style.md section 5: front ends may use x* wrappers; the Raft core and
 * storage propagate -ENOMEM instead).  Header only.
 */
#ifndef RAFTKV_MR_XMEM_H
#define RAFTKV_MR_XMEM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL) {
		fprintf(stderr, "raftkv-mr: out of memory (%zu bytes)\n", n);
		abort();
	}
	return q;
}

static inline void *xmalloc(size_t n)
{
	return xrealloc(NULL, n);
}

static inline void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL) {
		fprintf(stderr, "raftkv-mr: out of memory\n");
		abort();
	}
	return p;
}

static inline char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

#endif
