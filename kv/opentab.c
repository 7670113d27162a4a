/*
 * opentab.c - the open table (opentab.h): a sorted array of (inode,
 * session) pairs, and a sorted array of (session, count) for the
 * per-session bound.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "kv/opentab.h"
#include "raft/le.h"

struct open_pair {
	uint64_t inode;
	uint64_t session;
};

struct open_sess {
	uint64_t session;
	uint32_t count;
};

struct opentab {
	struct open_pair *p;
	uint32_t n, cap;
	struct open_sess *s;
	uint32_t ns, scap;
};

struct opentab *opentab_new(void)
{
	return calloc(1, sizeof(struct opentab));
}

void opentab_free(struct opentab *t)
{
	if (t == NULL)
		return;
	free(t->p);
	free(t->s);
	free(t);
}

uint32_t opentab_count(const struct opentab *t)
{
	return t->n;
}

static int pair_cmp(uint64_t ia, uint64_t sa, uint64_t ib, uint64_t sb)
{
	if (ia != ib)
		return ia < ib ? -1 : 1;
	if (sa != sb)
		return sa < sb ? -1 : 1;
	return 0;
}

/* Index of the first pair not below (@inode, @session). */
static uint32_t pair_find(const struct opentab *t, uint64_t inode,
    uint64_t session)
{
	uint32_t lo = 0, hi = t->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (pair_cmp(t->p[mid].inode, t->p[mid].session, inode,
		        session) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first session record not below @session. */
static uint32_t sess_find(const struct opentab *t, uint64_t session)
{
	uint32_t lo = 0, hi = t->ns;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->s[mid].session < session)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint32_t opentab_session_count(const struct opentab *t, uint64_t session)
{
	uint32_t i = sess_find(t, session);

	return i < t->ns && t->s[i].session == session ? t->s[i].count : 0;
}

bool opentab_is_open(const struct opentab *t, uint64_t inode)
{
	uint32_t i = pair_find(t, inode, 0);

	return i < t->n && t->p[i].inode == inode;
}

/* Room for one more element in an array of @n of @cap, @size bytes each. */
static int reserve(void **a, uint32_t n, uint32_t *cap, size_t size)
{
	uint32_t ncap;
	void *na;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	na = realloc(*a, (size_t)ncap * size);
	if (na == NULL)
		return -ENOMEM;
	*a = na;
	*cap = ncap;
	return 0;
}

static int grow(void **a, uint32_t want, uint32_t *cap, size_t size)
{
	void *na;

	if (want <= *cap)
		return 0;
	na = realloc(*a, (size_t)want * size);
	if (na == NULL)
		return -ENOMEM;
	*a = na;
	*cap = want;
	return 0;
}

int opentab_reserve(struct opentab *t, uint32_t n)
{
	uint32_t want = t->n + (n < KV_OPEN_MAX ? n : KV_OPEN_MAX);

	if (grow((void **)&t->p, want, &t->cap, sizeof(*t->p)) != 0)
		return -ENOMEM;
	return grow((void **)&t->s, t->ns + 1, &t->scap, sizeof(*t->s));
}

int opentab_add(struct opentab *t, uint64_t session, uint64_t inode)
{
	uint32_t i = pair_find(t, inode, session);
	uint32_t j = sess_find(t, session);
	bool new_sess = j >= t->ns || t->s[j].session != session;

	if (i < t->n && t->p[i].inode == inode && t->p[i].session == session)
		return 1;
	if (t->n >= KV_OPEN_MAX ||
	    (!new_sess && t->s[j].count >= KV_OPEN_SESSION_MAX))
		return -ENOSPC;
	if (reserve((void **)&t->p, t->n, &t->cap, sizeof(*t->p)) != 0 ||
	    (new_sess &&
	        reserve((void **)&t->s, t->ns, &t->scap, sizeof(*t->s)) != 0))
		return -ENOMEM;
	memmove(&t->p[i + 1], &t->p[i], (size_t)(t->n - i) * sizeof(*t->p));
	t->p[i] = (struct open_pair){ inode, session };
	t->n++;
	if (new_sess) {
		memmove(&t->s[j + 1], &t->s[j],
		    (size_t)(t->ns - j) * sizeof(*t->s));
		t->s[j] = (struct open_sess){ session, 0 };
		t->ns++;
	}
	t->s[j].count++;
	return 0;
}

/* One inode fewer for @session (which holds some). */
static void sess_dec(struct opentab *t, uint64_t session)
{
	uint32_t j = sess_find(t, session);

	if (j >= t->ns || t->s[j].session != session)
		return; /* cannot happen: the pairs and counts agree */
	if (--t->s[j].count > 0)
		return;
	memmove(&t->s[j], &t->s[j + 1],
	    (size_t)(t->ns - j - 1) * sizeof(*t->s));
	t->ns--;
}

bool opentab_remove(struct opentab *t, uint64_t session, uint64_t inode)
{
	uint32_t i = pair_find(t, inode, session);

	if (i >= t->n || t->p[i].inode != inode || t->p[i].session != session)
		return false;
	memmove(&t->p[i], &t->p[i + 1], (size_t)(t->n - i - 1) * sizeof(*t->p));
	t->n--;
	sess_dec(t, session);
	return true;
}

/* Drop the pairs and the records of the sessions whose record count is
 * 0 (marked by the callers below): one pass over the pairs, a binary
 * search of each pair's session. */
static void compact(struct opentab *t)
{
	uint32_t w = 0;

	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t j = sess_find(t, t->p[i].session);

		if (j < t->ns && t->s[j].session == t->p[i].session &&
		    t->s[j].count > 0)
			t->p[w++] = t->p[i];
	}
	t->n = w;
	w = 0;
	for (uint32_t j = 0; j < t->ns; j++)
		if (t->s[j].count > 0)
			t->s[w++] = t->s[j];
	t->ns = w;
}

void opentab_drop_sessions(struct opentab *t, const uint64_t *sessions,
    size_t n)
{
	bool any = false;

	for (size_t k = 0; k < n; k++) {
		uint32_t j = sess_find(t, sessions[k]);

		if (j < t->ns && t->s[j].session == sessions[k]) {
			t->s[j].count = 0; /* marked: compact() drops it */
			any = true;
		}
	}
	if (any)
		compact(t);
}

void opentab_drop_session(struct opentab *t, uint64_t session)
{
	opentab_drop_sessions(t, &session, 1);
}

void opentab_sweep(struct opentab *t, bool (*alive)(void *arg, uint64_t s),
    void *arg)
{
	bool any = false;

	for (uint32_t j = 0; j < t->ns; j++)
		if (!alive(arg, t->s[j].session)) {
			t->s[j].count = 0;
			any = true;
		}
	if (any)
		compact(t);
}

void opentab_each_session(const struct opentab *t,
    void (*fn)(void *arg, uint64_t session), void *arg)
{
	for (uint32_t j = 0; j < t->ns; j++)
		fn(arg, t->s[j].session);
}

uint64_t opentab_last_inode(const struct opentab *t)
{
	return t->n > 0 ? t->p[t->n - 1].inode : 0;
}

int opentab_encode(const struct opentab *t, void **buf, size_t *len)
{
	size_t n = 4 + (size_t)t->n * 16;
	uint8_t *b = malloc(n);

	if (b == NULL)
		return -ENOMEM;
	le_put32(b, t->n);
	for (uint32_t i = 0; i < t->n; i++) {
		le_put64(b + 4 + (size_t)i * 16, t->p[i].inode);
		le_put64(b + 12 + (size_t)i * 16, t->p[i].session);
	}
	*buf = b;
	*len = n;
	return 0;
}

int opentab_decode(const void *buf, size_t len, struct opentab **out)
{
	const uint8_t *b = buf;
	struct opentab *t;
	uint32_t n;
	int rc = -EBADMSG;

	*out = NULL;
	if (len < 4)
		return -EBADMSG;
	n = le_get32(b);
	if (n > KV_OPEN_MAX || len != 4 + (size_t)n * 16)
		return -EBADMSG;
	t = opentab_new();
	if (t == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t ino = le_get64(b + 4 + (size_t)i * 16);
		uint64_t s = le_get64(b + 12 + (size_t)i * 16);

		if (ino < KV_INODE_FIRST || s == 0)
			goto fail;
		if (t->n > 0 &&
		    pair_cmp(t->p[t->n - 1].inode, t->p[t->n - 1].session, ino,
		        s) >= 0)
			goto fail;
		/* Ascending: each add appends. */
		rc = opentab_add(t, s, ino);
		if (rc != 0) {
			rc = rc == -ENOMEM ? -ENOMEM : -EBADMSG;
			goto fail;
		}
		rc = -EBADMSG;
	}
	*out = t;
	return 0;
fail:
	opentab_free(t);
	return rc;
}
