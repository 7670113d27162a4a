/*
 * lockcheck.c - the lock table's invariants as the tests check them (see
 * lockcheck.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/lockcheck.h"

bool lockcheck_conflict(uint8_t a, uint8_t b)
{
	return a != 0 && b != 0 && (a == KV_LK_EXCL || b == KV_LK_EXCL);
}

void lockcheck_clear(struct lockcheck *c)
{
	c->n = 0;
}

int lockcheck_add(void *arg, uint64_t inode, const struct kv_lock *l)
{
	struct lockcheck *c = arg;

	if (c->n == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 64;
		struct lockcheck_held *nv = realloc(c->held, nc * sizeof(*nv));

		if (nv == NULL) {
			snprintf(c->err, sizeof(c->err), "out of memory");
			return -1;
		}
		c->held = nv;
		c->cap = nc;
	}
	c->held[c->n++] = (struct lockcheck_held){ inode, *l };
	return 0;
}

static void describe(char *out, size_t len, const struct lockcheck_held *h)
{
	snprintf(out, len,
	    "inode %" PRIu64 " %s %s [%" PRIu64 ", %" PRIu64
	    "] session %" PRIu64 " owner %#" PRIx64 " token %" PRIu64,
	    h->inode, h->lock.lkind == KV_LK_FLOCK ? "flock" : "posix",
	    h->lock.lmode == KV_LK_EXCL ? "exclusive" : "shared", h->lock.start,
	    h->lock.end, h->lock.session, h->lock.owner, h->lock.token);
}

static bool overlap(const struct kv_lock *a, const struct kv_lock *b)
{
	if (a->lkind == KV_LK_FLOCK)
		return true;
	return a->start <= b->end && b->start <= a->end;
}

int lockcheck_exclusion(struct lockcheck *c)
{
	char da[160], db[160];

	c->checks++;
	for (size_t i = 0; i < c->n; i++) {
		const struct lockcheck_held *a = &c->held[i];
		uint64_t sharing = 1;

		if (a->lock.token == 0 ||
		    (c->grants > 0 && a->lock.token > c->last_token)) {
			describe(da, sizeof(da), a);
			snprintf(c->err, sizeof(c->err),
			    "held with a token never granted (last grant "
			    "%" PRIu64 "): %s",
			    c->last_token, da);
			return -1;
		}
		for (size_t j = i + 1; j < c->n; j++) {
			const struct lockcheck_held *b = &c->held[j];

			if (b->inode != a->inode ||
			    b->lock.lkind != a->lock.lkind ||
			    !overlap(&a->lock, &b->lock))
				continue;
			if (b->lock.session == a->lock.session &&
			    b->lock.owner == a->lock.owner)
				continue; /* one owner's pieces */
			if (lockcheck_conflict(a->lock.lmode, b->lock.lmode)) {
				describe(da, sizeof(da), a);
				describe(db, sizeof(db), b);
				snprintf(c->err, sizeof(c->err),
				    "two holders in conflict: %s; and %s", da,
				    db);
				return -1;
			}
			sharing++;
		}
		if (sharing > c->max_shared)
			c->max_shared = sharing;
	}
	return 0;
}

int lockcheck_grant(struct lockcheck *c, uint64_t inode,
    const struct kv_lock *l)
{
	if (l->token <= c->last_token) {
		snprintf(c->err, sizeof(c->err),
		    "grant %" PRIu64 " on inode %" PRIu64 " (session %" PRIu64
		    ") after grant %" PRIu64 ": tokens must strictly increase",
		    l->token, inode, l->session, c->last_token);
		return -1;
	}
	c->last_token = l->token;
	c->grants++;
	return 0;
}

void lockcheck_free(struct lockcheck *c)
{
	free(c->held);
	c->held = NULL;
	c->n = c->cap = 0;
}
