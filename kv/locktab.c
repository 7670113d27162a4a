/*
 * locktab.c - the lock table (see locktab.h; semantics in kv.h, LOCKS).
 *
 * Layout: a sorted array of inode entries (binary search), each with two
 * lock spaces (FLOCK, POSIX), each space an array of holders and a FIFO
 * array of waiters; and the lease sessions: a sorted array (by id) of
 * records, each with the sorted inodes where that session holds or waits
 * (so that stripping a session visits only its own inodes), linked in
 * activity order, least recently renewed first.  Flocks are stored with
 * the range [0, 0], so "ranges overlap" is the one conflict test of both
 * kinds.
 *
 * Time: the table keeps none.  A session's last activity is the session
 * table's (locktab_set_clock(): one source of truth); renewals only move
 * a session to the newest end of the activity list.  Renewals come in
 * committed-clock order and the session table moves every session's time
 * by the same amount when it moves them at all (kv.c, the election
 * grace), so the list is also in order of last activity and the leases
 * that ran out are always at its head: expiry looks at the head only,
 * O(1) per apply plus the work of each session that goes.
 *
 * No allocation after a change has started: a space always keeps room for
 * what its queued waiters may add when granted (a POSIX grant adds at
 * most two pieces: the new one, and the far end of a piece it splits), so
 * the grant pass, which runs after releases and expiries that cannot fail,
 * never allocates; the dirty list has room for every entry.  See
 * reserve().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv/locktab.h"
#include "raft/buf.h"

struct lk {
	uint64_t session;
	uint64_t owner;
	uint64_t start;
	uint64_t end;
	uint64_t token; /* 0 for a waiter */
	uint32_t pid;
	uint8_t mode;
	uint8_t mark; /* scratch of mark_behind() (not state, not encoded) */
};

struct space {
	struct lk *h; /* holders */
	uint32_t nh, caph;
	struct lk *w; /* waiters, FIFO */
	uint32_t nw, capw;
};

struct entry {
	uint64_t inode;
	struct space sp[2]; /* [0] FLOCK, [1] POSIX */
	bool dirty; /* something was freed: run the grant pass */
};

/* A session with a lease. */
struct lsess {
	uint64_t session;
	struct lsess *older, *newer; /* activity order */
	uint64_t *ino; /* sorted: the inodes where it holds or waits */
	uint32_t nino, capino;
	uint32_t nrec; /* its records, held + waiting (the session cap) */
};

struct locktab {
	int64_t lease_ns;
	uint32_t max;
	uint32_t nheld, nwait;
	uint64_t last_token;
	uint64_t gen; /* changes (not state: locktab_generation()) */
	struct entry **e; /* sorted by inode */
	uint32_t ne, cape;
	struct entry **dirty; /* entries to settle (room: cape) */
	uint32_t ndirty, capdirty;
	struct lsess **s; /* sorted by session */
	uint32_t ns, caps;
	struct lsess *oldest, *newest;
	locktab_event_fn fn;
	void *fn_arg;
	locktab_time_fn time_fn;
	void *time_arg;
};

/* A lock record in the snapshot section: the kind is its place. */
#define LOCK_BYTES (KV_LOCK_BYTES - 1u)

/* ------------------------------------------------------------------------
 * Life cycle, lookups
 * ------------------------------------------------------------------------ */

struct locktab *locktab_new(int64_t lease_ns, uint32_t max)
{
	struct locktab *t;

	if (lease_ns <= 0 || max == 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->lease_ns = lease_ns;
	t->max = max;
	return t;
}

static void entry_free(struct entry *en)
{
	if (en == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		free(en->sp[k].h);
		free(en->sp[k].w);
	}
	free(en);
}

static void lsess_free(struct lsess *ls)
{
	if (ls != NULL)
		free(ls->ino);
	free(ls);
}

void locktab_free(struct locktab *t)
{
	if (t == NULL)
		return;
	for (uint32_t i = 0; i < t->ne; i++)
		entry_free(t->e[i]);
	for (uint32_t i = 0; i < t->ns; i++)
		lsess_free(t->s[i]);
	free(t->e);
	free(t->dirty);
	free(t->s);
	free(t);
}

void locktab_set_events(struct locktab *t, locktab_event_fn fn, void *arg)
{
	t->fn = fn;
	t->fn_arg = arg;
}

void locktab_set_clock(struct locktab *t, locktab_time_fn fn, void *arg)
{
	t->time_fn = fn;
	t->time_arg = arg;
}

/* The last activity of @session (INT64_MIN: none, or no clock set). */
static int64_t time_of(const struct locktab *t, uint64_t session)
{
	return t->time_fn != NULL ? t->time_fn(t->time_arg, session)
	                          : INT64_MIN;
}

/* Index of the first entry with inode >= @ino. */
static uint32_t entry_pos(const struct locktab *t, uint64_t ino)
{
	uint32_t lo = 0, hi = t->ne;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->e[mid]->inode < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct entry *entry_find(const struct locktab *t, uint64_t ino)
{
	uint32_t i = entry_pos(t, ino);

	return i < t->ne && t->e[i]->inode == ino ? t->e[i] : NULL;
}

static uint32_t sess_pos(const struct locktab *t, uint64_t session)
{
	uint32_t lo = 0, hi = t->ns;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->s[mid]->session < session)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct lsess *sess_find(const struct locktab *t, uint64_t session)
{
	uint32_t i = sess_pos(t, session);

	return i < t->ns && t->s[i]->session == session ? t->s[i] : NULL;
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
	uint32_t ncap;
	void *q;

	if (*cap >= need)
		return 0;
	ncap = *cap ? *cap : 4;
	while (ncap < need)
		ncap = ncap > UINT32_MAX / 2 ? need : ncap * 2;
	q = realloc(*p, (size_t)ncap * size);
	if (q == NULL)
		return -ENOMEM;
	*p = q;
	*cap = ncap;
	return 0;
}

/*
 * Make room in @sp for @more_h more holders and @more_w more waiters on
 * top of the standing reserve: two holder slots per waiter (its grant).
 */
static int reserve(struct space *sp, uint32_t more_h, uint32_t more_w)
{
	uint64_t nw = (uint64_t)sp->nw + more_w;
	uint64_t nh = (uint64_t)sp->nh + more_h + 2 * nw;

	if (nh > UINT32_MAX / 2 || nw > UINT32_MAX / 2)
		return -ENOMEM;
	if (grow((void **)&sp->h, &sp->caph, (uint32_t)nh, sizeof(struct lk)))
		return -ENOMEM;
	if (grow((void **)&sp->w, &sp->capw, (uint32_t)nw, sizeof(struct lk)))
		return -ENOMEM;
	return 0;
}

/* The entry of @ino, created (empty) if absent; NULL on ENOMEM. */
static struct entry *entry_get(struct locktab *t, uint64_t ino)
{
	uint32_t i = entry_pos(t, ino);
	struct entry *en;

	if (i < t->ne && t->e[i]->inode == ino)
		return t->e[i];
	if (grow((void **)&t->e, &t->cape, t->ne + 1, sizeof(*t->e)) != 0)
		return NULL;
	if (grow((void **)&t->dirty, &t->capdirty, t->cape,
	        sizeof(*t->dirty)) != 0) /* the dirty list: room for all */
		return NULL;
	en = calloc(1, sizeof(*en));
	if (en == NULL)
		return NULL;
	en->inode = ino;
	memmove(&t->e[i + 1], &t->e[i], (t->ne - i) * sizeof(*t->e));
	t->e[i] = en;
	t->ne++;
	return en;
}

static bool entry_empty(const struct entry *en)
{
	return en->sp[0].nh == 0 && en->sp[0].nw == 0 && en->sp[1].nh == 0 &&
	    en->sp[1].nw == 0;
}

/* Remove @en if nothing is held or queued on it any more. */
static void entry_gc(struct locktab *t, struct entry *en)
{
	uint32_t i;

	if (en == NULL || !entry_empty(en))
		return;
	i = entry_pos(t, en->inode);
	memmove(&t->e[i], &t->e[i + 1], (t->ne - i - 1) * sizeof(*t->e));
	t->ne--;
	entry_free(en);
}

/* ------------------------------------------------------------------------
 * Lease sessions
 * ------------------------------------------------------------------------ */

static void list_unlink(struct locktab *t, struct lsess *ls)
{
	if (ls->older != NULL)
		ls->older->newer = ls->newer;
	else
		t->oldest = ls->newer;
	if (ls->newer != NULL)
		ls->newer->older = ls->older;
	else
		t->newest = ls->older;
	ls->older = ls->newer = NULL;
}

static void list_append(struct locktab *t, struct lsess *ls)
{
	ls->older = t->newest;
	ls->newer = NULL;
	if (t->newest != NULL)
		t->newest->newer = ls;
	else
		t->oldest = ls;
	t->newest = ls;
}

/* A new lease record for @session (absent), the most recent; NULL on
 * ENOMEM (nothing changed). */
static struct lsess *sess_add(struct locktab *t, uint64_t session)
{
	uint32_t i = sess_pos(t, session);
	struct lsess *ls;

	if (grow((void **)&t->s, &t->caps, t->ns + 1, sizeof(*t->s)) != 0)
		return NULL;
	ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return NULL;
	ls->session = session;
	memmove(&t->s[i + 1], &t->s[i], (t->ns - i) * sizeof(*t->s));
	t->s[i] = ls;
	t->ns++;
	list_append(t, ls);
	return ls;
}

/* Remove and free the lease record @ls. */
static void sess_remove(struct locktab *t, struct lsess *ls)
{
	uint32_t i = sess_pos(t, ls->session);

	list_unlink(t, ls);
	memmove(&t->s[i], &t->s[i + 1], (t->ns - i - 1) * sizeof(*t->s));
	t->ns--;
	lsess_free(ls);
}

/* Index of the first inode >= @ino in @ls's set. */
static uint32_t ino_pos(const struct lsess *ls, uint64_t ino)
{
	uint32_t lo = 0, hi = ls->nino;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (ls->ino[mid] < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool ino_has(const struct lsess *ls, uint64_t ino)
{
	uint32_t i = ino_pos(ls, ino);

	return i < ls->nino && ls->ino[i] == ino;
}

/* Add @ino to @ls's set (absent): 0 or -ENOMEM (nothing changed). */
static int ino_add(struct lsess *ls, uint64_t ino)
{
	uint32_t i = ino_pos(ls, ino);

	if (grow((void **)&ls->ino, &ls->capino, ls->nino + 1,
	        sizeof(*ls->ino)) != 0)
		return -ENOMEM;
	memmove(&ls->ino[i + 1], &ls->ino[i],
	    (ls->nino - i) * sizeof(*ls->ino));
	ls->ino[i] = ino;
	ls->nino++;
	return 0;
}

static void ino_del(struct lsess *ls, uint64_t ino)
{
	uint32_t i = ino_pos(ls, ino);

	if (i < ls->nino && ls->ino[i] == ino) {
		memmove(&ls->ino[i], &ls->ino[i + 1],
		    (ls->nino - i - 1) * sizeof(*ls->ino));
		ls->nino--;
	}
}

/* Does @session hold or wait for anything on @en?  (Newest first: a
 * session that just locked is found at once.) */
static bool present(const struct entry *en, uint64_t session)
{
	for (int k = 0; k < 2; k++) {
		const struct space *sp = &en->sp[k];

		for (uint32_t i = sp->nh; i-- > 0;)
			if (sp->h[i].session == session)
				return true;
		for (uint32_t i = sp->nw; i-- > 0;)
			if (sp->w[i].session == session)
				return true;
	}
	return false;
}

/* ------------------------------------------------------------------------
 * Conflicts, tokens, events
 * ------------------------------------------------------------------------ */

static bool same_owner(const struct lk *a, uint64_t session, uint64_t owner)
{
	return a->session == session && a->owner == owner;
}

static bool overlap(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 <= e2 && s2 <= e1;
}

/* Does @a conflict with a request of (@session, @owner) for @mode on
 * [@s, @e]? */
static bool conflicts(const struct lk *a, uint64_t session, uint64_t owner,
    uint8_t mode, uint64_t s, uint64_t e)
{
	return !same_owner(a, session, owner) &&
	    overlap(a->start, a->end, s, e) &&
	    (mode == KV_LK_EXCL || a->mode == KV_LK_EXCL);
}

static const struct lk *first_conflict(const struct lk *v, uint32_t n,
    const struct lk *rq)
{
	for (uint32_t i = 0; i < n; i++)
		if (conflicts(&v[i], rq->session, rq->owner, rq->mode,
		        rq->start, rq->end))
			return &v[i];
	return NULL;
}

/* @dh held and @dw waiting records more (or fewer: < 0), all of session
 * @ls (NULL only for a session without a lease, which has none). */
static void count(struct locktab *t, struct lsess *ls, int64_t dh, int64_t dw)
{
	t->nheld = (uint32_t)((int64_t)t->nheld + dh);
	t->nwait = (uint32_t)((int64_t)t->nwait + dw);
	if (ls != NULL)
		ls->nrec = (uint32_t)((int64_t)ls->nrec + dh + dw);
}

static bool holds_any(const struct space *sp, uint64_t session, uint64_t owner)
{
	for (uint32_t i = 0; i < sp->nh; i++)
		if (same_owner(&sp->h[i], session, owner))
			return true;
	return false;
}

static bool waits_any(const struct space *sp, uint64_t session, uint64_t owner)
{
	for (uint32_t i = 0; i < sp->nw; i++)
		if (same_owner(&sp->w[i], session, owner))
			return true;
	return false;
}

/* lk.mark: not behind; behind, its consequences still to be marked;
 * behind, done. */
enum { MARK_NO, MARK_NEW, MARK_DONE };

/* Mark every holder of @sp of (@session, @owner) not marked yet (NEW);
 * true if there was one. */
static bool mark_owner(struct space *sp, uint64_t session, uint64_t owner)
{
	bool more = false;

	for (uint32_t i = 0; i < sp->nh; i++)
		if (sp->h[i].mark == MARK_NO &&
		    same_owner(&sp->h[i], session, owner)) {
			sp->h[i].mark = MARK_NEW;
			more = true;
		}
	return more;
}

/* The waiters @sp->w[@from, @to) that @b (behind) blocks are behind too
 * (NEW), but those of (@session, @owner) (the requester's own). */
static void mark_blocked(struct space *sp, const struct lk *b, uint32_t from,
    uint32_t to, uint64_t session, uint64_t owner)
{
	for (uint32_t j = from; j < to; j++) {
		struct lk *w = &sp->w[j];

		if (w->mark == MARK_NO && !same_owner(w, session, owner) &&
		    conflicts(b, w->session, w->owner, w->mode, w->start,
		        w->end))
			w->mark = MARK_NEW;
	}
}

/* Was the owner of waiter @j already marked (another waiter of its owner
 * processed: DONE)?  O(n), where mark_owner() is O(h). */
static bool owner_done(const struct space *sp, uint32_t j)
{
	for (uint32_t k = 0; k < sp->nw; k++)
		if (k != j && sp->w[k].mark == MARK_DONE &&
		    same_owner(&sp->w[k], sp->w[j].session, sp->w[j].owner))
			return true;
	return false;
}

/*
 * Mark the waiters of @sp (the whole queue) that are behind (@session,
 * @owner): those that wait, directly or through other waiters, on what
 * that owner holds, so that its requests may pass them (to queue behind
 * one would be a cycle: a deadlock).  A waiter is behind when it
 * conflicts with a piece of a marked owner or with an earlier waiter
 * behind; the requester is marked, and so is the owner of a waiter
 * behind (its pieces cannot go before that waiter is granted), until
 * nothing changes.  Waiters queued after the request count too: one
 * that waits on the owner makes its own owner's pieces wait on it.
 * Each record's consequences are marked once (NEW, then DONE): new
 * pieces block waiters anywhere in the queue; new waiters, in FIFO
 * order, block later ones and mark their owners' pieces.  False (and
 * nothing marked) when the owner holds nothing here.  Deterministic;
 * one sweep of the holders (clearing them, marking the requester's),
 * then one per further owner in the chain, plus O(n) per marked record
 * for h holders and n waiters.
 */
static bool mark_behind(struct space *sp, uint64_t session, uint64_t owner)
{
	uint32_t n = sp->nw;
	bool held = false, more;

	for (uint32_t j = 0; j < n; j++)
		sp->w[j].mark = MARK_NO;
	for (uint32_t i = 0; i < sp->nh; i++) {
		struct lk *h = &sp->h[i];

		h->mark = MARK_NO;
		if (same_owner(h, session, owner)) {
			h->mark = MARK_DONE;
			held = true;
			mark_blocked(sp, h, 0, n, session, owner);
		}
	}
	if (!held)
		return false;
	for (;;) {
		/* New waiters, in FIFO order: each marks later ones (seen
		 * in this same sweep) and its owner's pieces. */
		more = false;
		for (uint32_t j = 0; j < n; j++)
			if (sp->w[j].mark == MARK_NEW) {
				sp->w[j].mark = MARK_DONE;
				mark_blocked(sp, &sp->w[j], j + 1, n, session,
				    owner);
				if (!owner_done(sp, j))
					more |= mark_owner(sp, sp->w[j].session,
					    sp->w[j].owner);
			}
		if (!more)
			return true;
		/* New pieces: they mark waiters anywhere in the queue. */
		for (uint32_t i = 0; i < sp->nh; i++)
			if (sp->h[i].mark == MARK_NEW) {
				sp->h[i].mark = MARK_DONE;
				mark_blocked(sp, &sp->h[i], 0, n, session,
				    owner);
			}
	}
}

/*
 * The first of the waiters @sp->w[0, @n) (those queued before it) that
 * POSIX request @rq must queue behind (first come, first served per
 * range): one it conflicts with that is not behind @rq's owner
 * (mark_behind()).  An owner's own waits never block it.  NULL if none.
 */
static const struct lk *queue_conflict(struct space *sp, uint32_t n,
    const struct lk *rq)
{
	const struct lk *c = first_conflict(sp->w, n, rq);

	/* Marks matter only when there is a conflict to pass. */
	if (c == NULL || !mark_behind(sp, rq->session, rq->owner))
		return c;
	for (uint32_t j = 0; j < n; j++)
		if (sp->w[j].mark == MARK_NO &&
		    conflicts(&sp->w[j], rq->session, rq->owner, rq->mode,
		        rq->start, rq->end))
			return &sp->w[j];
	return NULL;
}

static uint64_t next_token(struct locktab *t, uint64_t index)
{
	uint64_t tok = index << 16;

	if (tok <= t->last_token)
		tok = t->last_token + 1;
	t->last_token = tok;
	return tok;
}

static void to_kv_lock(const struct lk *a, uint8_t kind, struct kv_lock *l)
{
	l->session = a->session;
	l->owner = a->owner;
	l->start = a->start;
	l->end = a->end;
	l->token = a->token;
	l->pid = a->pid;
	l->lkind = kind;
	l->lmode = a->mode;
}

static void emit_grant(struct locktab *t, uint64_t index, uint64_t ino,
    uint8_t kind, const struct lk *a, bool queued)
{
	struct kv_lock_event ev = { .type = KV_LOCK_EV_GRANTED,
		.index = index,
		.inode = ino,
		.queued = queued };

	if (t->fn == NULL)
		return;
	to_kv_lock(a, kind, &ev.lock);
	t->fn(t->fn_arg, &ev);
}

/* ------------------------------------------------------------------------
 * Holder sets
 * ------------------------------------------------------------------------ */

static void remove_at(struct lk *v, uint32_t *n, uint32_t i)
{
	memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
	(*n)--;
}

/*
 * Cut [@s, @e] out of holder @i of @sp (which overlaps it): trim it,
 * split it in two (the far part appended), or remove it.  Returns the
 * change in the number of holders (-1, 0, +1).
 */
static int cut(struct space *sp, uint32_t i, uint64_t s, uint64_t e)
{
	struct lk *h = &sp->h[i];

	if (h->start < s && h->end > e) {
		struct lk far = *h;

		far.start = e + 1;
		h->end = s - 1;
		sp->h[sp->nh++] = far; /* room: reserve() */
		return 1;
	}
	if (h->start < s) {
		h->end = s - 1;
		return 0;
	}
	if (h->end > e) {
		h->start = e + 1;
		return 0;
	}
	remove_at(sp->h, &sp->nh, i);
	return -1;
}

/* Adjacent: [s1, e1] ends right before [s2, e2] begins, or after. */
static bool adjacent(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return (e1 != UINT64_MAX && e1 + 1 == s2) ||
	    (e2 != UINT64_MAX && e2 + 1 == s1);
}

/*
 * Give @a (owner, mode, range, token, pid) to its owner in @sp: POSIX
 * merge/split rules, or the flock replaced.  Needs two free holder slots.
 * Returns the change in the number of holders.
 */
static int apply_grant(struct space *sp, uint8_t kind, const struct lk *a)
{
	struct lk n = *a;
	uint32_t before = sp->nh;
	uint32_t i = 0, end = sp->nh;

	while (i < end) {
		struct lk *h = &sp->h[i];
		int d;

		if (!same_owner(h, a->session, a->owner)) {
			i++;
			continue;
		}
		if (kind == KV_LK_FLOCK) {
			remove_at(sp->h, &sp->nh, i);
			end--;
			continue;
		}
		if (h->mode == a->mode &&
		    (overlap(h->start, h->end, a->start, a->end) ||
		        adjacent(h->start, h->end, a->start, a->end))) {
			n.start = h->start < n.start ? h->start : n.start;
			n.end = h->end > n.end ? h->end : n.end;
			remove_at(sp->h, &sp->nh, i);
			end--;
			continue;
		}
		if (h->mode != a->mode &&
		    overlap(h->start, h->end, a->start, a->end)) {
			d = cut(sp, i, a->start, a->end);
			if (d < 0) {
				end--;
				continue;
			}
		}
		i++;
	}
	sp->h[sp->nh++] = n;
	return (int)sp->nh - (int)before;
}

/* Grant @w (a copy of a waiter just taken off @sp's queue). */
static void grant_waiter(struct locktab *t, struct entry *en, int k,
    struct lk w, uint64_t index)
{
	struct space *sp = &en->sp[k];
	uint8_t kind = k == 0 ? KV_LK_FLOCK : KV_LK_POSIX;

	w.token = next_token(t, index);
	count(t, sess_find(t, w.session), apply_grant(sp, kind, &w), -1);
	emit_grant(t, index, en->inode, kind, &sp->h[sp->nh - 1], true);
}

/*
 * The grant pass of @sp: each waiter, in FIFO order, that conflicts with
 * no holder of another owner and with no earlier waiter still queued is
 * granted; except that a flock owner that holds something here passes
 * the queue, and a POSIX request passes the waiters behind its owner
 * (queue_conflict()).  Both sweep until a sweep grants nothing: a grant
 * can free an earlier waiter (POSIX: a downgrade, or an owner whose
 * pieces no longer wait on anything; flock: a queued request of an owner
 * that holds the lock converts it, EX->SH frees shared waiters the sweep
 * has passed).  Deterministic: the same state gives the same grants on
 * every member.
 */
static void grant_pass(struct locktab *t, struct entry *en, int k,
    uint64_t index)
{
	struct space *sp = &en->sp[k];
	uint32_t keep = 0, i;
	bool granted = k == 1;

	while (granted) {
		granted = false;
		for (i = 0; i < sp->nw;) {
			struct lk w = sp->w[i];

			if (first_conflict(sp->h, sp->nh, &w) != NULL ||
			    queue_conflict(sp, i, &w) != NULL) {
				i++;
				continue;
			}
			remove_at(sp->w, &sp->nw, i);
			grant_waiter(t, en, k, w, index);
			granted = true;
		}
	}
	if (k == 1)
		return;
	do {
		granted = false;
		keep = 0;
		for (i = 0; i < sp->nw; i++) {
			struct lk w = sp->w[i];
			bool ok = first_conflict(sp->h, sp->nh, &w) == NULL;

			if (ok && !holds_any(sp, w.session, w.owner))
				ok = first_conflict(sp->w, keep, &w) == NULL;
			if (!ok) {
				sp->w[keep++] = w;
				continue;
			}
			grant_waiter(t, en, k, w, index);
			granted = true;
		}
		sp->nw = keep;
	} while (granted);
}

/* The grant passes of @en if something was freed on it. */
static void settle_one(struct locktab *t, struct entry *en, uint64_t index)
{
	if (!en->dirty)
		return;
	en->dirty = false;
	grant_pass(t, en, 0, index);
	grant_pass(t, en, 1, index);
}

/*
 * After a command of session @ls (may be NULL) on @en: the grant passes,
 * @ls's inode set made true again (grants never take anything from a
 * session, so only the commanding session can have left @en), and @en
 * dropped if empty.
 */
static void finish(struct locktab *t, struct entry *en, struct lsess *ls,
    uint64_t index)
{
	settle_one(t, en, index);
	if (ls != NULL && !present(en, ls->session))
		ino_del(ls, en->inode);
	entry_gc(t, en);
	t->gen++;
}

static int cmp_entry(const void *a, const void *b)
{
	uint64_t x = (*(struct entry *const *)a)->inode;
	uint64_t y = (*(struct entry *const *)b)->inode;

	return x < y ? -1 : x > y;
}

/* Grant passes of the dirty list, in inode order, then drop the empty
 * entries.  O(d log d) for d dirty entries. */
static void settle_dirty(struct locktab *t, uint64_t index)
{
	qsort(t->dirty, t->ndirty, sizeof(*t->dirty), cmp_entry);
	for (uint32_t i = 0; i < t->ndirty; i++)
		settle_one(t, t->dirty[i], index);
	for (uint32_t i = 0; i < t->ndirty; i++)
		entry_gc(t, t->dirty[i]);
	t->ndirty = 0;
	t->gen++;
}

/* ------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------ */

static int kidx(uint8_t kind)
{
	return kind == KV_LK_FLOCK ? 0 : 1;
}

/* The request as a lock record (flock ranges are [0, 0]). */
static struct lk req_lk(const struct locktab_req *rq)
{
	struct lk a = { .session = rq->session,
		.owner = rq->owner,
		.pid = rq->pid,
		.mode = rq->mode };

	if (rq->kind == KV_LK_POSIX) {
		a.start = rq->start;
		a.end = rq->end;
	}
	return a;
}

/* Everything LOCK may allocate, before it changes anything: @rq's
 * session's lease record and inode set, the entry, room in its space.
 * NULL on ENOMEM, with nothing changed. */
static struct entry *lock_prepare(struct locktab *t,
    const struct locktab_req *rq, struct lsess **lsp)
{
	struct lsess *ls = sess_find(t, rq->session);
	bool new_ls = ls == NULL, new_ino;
	struct entry *en;

	if (new_ls && (ls = sess_add(t, rq->session)) == NULL)
		return NULL;
	new_ino = !ino_has(ls, rq->inode);
	if (new_ino && ino_add(ls, rq->inode) != 0)
		goto undo;
	en = entry_get(t, rq->inode);
	if (en != NULL && reserve(&en->sp[kidx(rq->kind)], 2, 1) == 0) {
		*lsp = ls;
		return en;
	}
	if (en != NULL)
		entry_gc(t, en);
	if (new_ino)
		ino_del(ls, rq->inode);
undo:
	if (new_ls)
		sess_remove(t, ls);
	return NULL;
}

/* The most records (held + waiting) one session may have (locktab.h). */
static uint64_t sess_cap(const struct locktab *t)
{
	uint64_t cap = t->max / LOCKTAB_SESSION_SHARE;

	return cap < LOCKTAB_SESSION_MIN ? LOCKTAB_SESSION_MIN : cap;
}

uint32_t locktab_session_records(const struct locktab *t, uint64_t session)
{
	const struct lsess *ls = sess_find(t, session);

	return ls != NULL ? ls->nrec : 0;
}

/* Room for @more records, in the table and in session @s's share?  O(log
 * sessions): the session's count is kept (count()). */
static bool room_for(const struct locktab *t, uint64_t s, uint32_t more)
{
	return (uint64_t)t->nheld + t->nwait + more <= t->max &&
	    (uint64_t)locktab_session_records(t, s) + more <= sess_cap(t);
}

int locktab_lock(struct locktab *t, const struct locktab_req *rq,
    uint64_t index, struct kv_result *out)
{
	int k = kidx(rq->kind);
	struct lk a = req_lk(rq);
	const struct lk *c;
	struct lsess *ls;
	struct entry *en;
	struct space *sp;
	bool had, converting = false;

	out->attr.inode = rq->inode;
	if (!room_for(t, rq->session, 2)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	en = lock_prepare(t, rq, &ls);
	if (en == NULL)
		return -ENOMEM;
	sp = &en->sp[k];
	had = holds_any(sp, a.session, a.owner);
	if (rq->kind == KV_LK_FLOCK && had) {
		for (uint32_t i = 0; i < sp->nh; i++) {
			if (!same_owner(&sp->h[i], a.session, a.owner))
				continue;
			if (sp->h[i].mode == a.mode) { /* nothing to do */
				out->attr.version = sp->h[i].token;
				return 0;
			}
			/* Conversion: the old lock goes first (as Linux). */
			remove_at(sp->h, &sp->nh, i);
			count(t, ls, -1, 0);
			en->dirty = true;
			converting = true;
			break;
		}
	}
	c = first_conflict(sp->h, sp->nh, &a);
	if (c == NULL && rq->kind == KV_LK_POSIX)
		c = queue_conflict(sp, sp->nw, &a);
	else if (c == NULL && !had && !converting)
		c = first_conflict(sp->w, sp->nw, &a);
	if (c == NULL) {
		a.token = next_token(t, index);
		count(t, ls, apply_grant(sp, rq->kind, &a), 0);
		/* New pieces can put waiters behind this owner, and so let
		 * one of its own earlier waits pass them (mark_behind()); a
		 * change of its pieces (a downgrade) can free waiters.  The
		 * first pieces of an owner with no waits here do neither. */
		if (rq->kind == KV_LK_POSIX && sp->nw > 0 &&
		    (had || waits_any(sp, a.session, a.owner)))
			en->dirty = true;
		out->attr.version = a.token;
		emit_grant(t, index, en->inode, rq->kind, &sp->h[sp->nh - 1],
		    false);
	} else if (rq->wait && rq->kind == KV_LK_POSIX &&
	    sp->nw >= LOCKTAB_POSIX_WAITERS) {
		out->status = KV_ENOSPC; /* the queue's limit (locktab.h) */
	} else if (rq->wait) {
		sp->w[sp->nw++] = a;
		count(t, ls, 0, 1);
		out->status = KV_EQUEUED;
		/* It may wait on an owner whose earlier waiter it now puts
		 * behind that owner, through that owner's own pieces
		 * (mark_behind()): that waiter may pass.  A request whose
		 * owner holds nothing here changes no one's marks (it is the
		 * last waiter, and it has no pieces to mark). */
		if (rq->kind == KV_LK_POSIX && had)
			en->dirty = true;
	} else {
		out->status = KV_ELOCKED;
		out->flags |= KV_RES_LOCK;
		to_kv_lock(c, rq->kind, &out->lock);
	}
	finish(t, en, ls, index);
	return 0;
}

int locktab_unlock(struct locktab *t, const struct locktab_req *rq,
    uint64_t index, struct kv_result *out)
{
	struct entry *en = entry_find(t, rq->inode);
	struct lsess *ls = sess_find(t, rq->session);
	struct lk a = req_lk(rq);
	struct space *sp;

	out->attr.inode = rq->inode;
	if (en == NULL)
		return 0;
	sp = &en->sp[kidx(rq->kind)];
	/* A split adds a record: refused at the limits (as Linux: ENOLCK). */
	for (uint32_t i = 0; i < sp->nh; i++) {
		if (same_owner(&sp->h[i], a.session, a.owner) &&
		    sp->h[i].start < a.start && sp->h[i].end > a.end &&
		    !room_for(t, rq->session, 1)) {
			out->status = KV_ENOSPC;
			return 0;
		}
	}
	if (reserve(sp, 1, 0) != 0)
		return -ENOMEM;
	for (uint32_t i = 0, end = sp->nh; i < end;) {
		struct lk *h = &sp->h[i];

		if (!same_owner(h, a.session, a.owner) ||
		    !overlap(h->start, h->end, a.start, a.end)) {
			i++;
			continue;
		}
		en->dirty = true;
		switch (cut(sp, i, a.start, a.end)) {
		case -1:
			count(t, ls, -1, 0);
			end--;
			continue;
		case 1: /* split: the far part, appended, is past @end */
			count(t, ls, 1, 0);
			break;
		}
		i++;
	}
	finish(t, en, ls, index);
	return 0;
}

/* Remove from @v every record of (@session[, @owner]) matching; count. */
static uint32_t remove_matching(struct lk *v, uint32_t *n, uint64_t session,
    bool any_owner, uint64_t owner, const struct lk *range)
{
	uint32_t keep = 0, gone = 0;

	for (uint32_t i = 0; i < *n; i++) {
		bool m = v[i].session == session &&
		    (any_owner || v[i].owner == owner) &&
		    (range == NULL ||
		        (v[i].start == range->start && v[i].end == range->end));

		if (m)
			gone++;
		else
			v[keep++] = v[i];
	}
	*n = keep;
	return gone;
}

void locktab_unlock_owner(struct locktab *t, uint64_t inode, uint64_t session,
    uint64_t owner, uint8_t kind, uint64_t index, struct kv_result *out)
{
	struct entry *en = entry_find(t, inode);
	struct lsess *ls = sess_find(t, session);

	out->attr.inode = inode;
	if (en == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		struct space *sp = &en->sp[k];
		uint32_t g, w;

		if (kind != 0 && k != kidx(kind))
			continue;
		g = remove_matching(sp->h, &sp->nh, session, false, owner,
		    NULL);
		w = remove_matching(sp->w, &sp->nw, session, false, owner,
		    NULL);
		count(t, ls, -(int64_t)g, -(int64_t)w);
		en->dirty = true;
	}
	finish(t, en, ls, index);
}

void locktab_cancel(struct locktab *t, const struct locktab_req *rq,
    uint64_t index, struct kv_result *out)
{
	struct entry *en = entry_find(t, rq->inode);
	struct lsess *ls = sess_find(t, rq->session);
	struct lk a = req_lk(rq);
	struct space *sp;

	out->attr.inode = rq->inode;
	if (en == NULL)
		return;
	sp = &en->sp[kidx(rq->kind)];
	count(t, ls, 0,
	    -(int64_t)remove_matching(sp->w, &sp->nw, a.session, false, a.owner,
	        &a));
	en->dirty = true;
	finish(t, en, ls, index);
}

void locktab_getlk(const struct locktab *t, const struct locktab_req *rq,
    struct kv_result *out)
{
	const struct entry *en = entry_find(t, rq->inode);
	struct lk a = req_lk(rq);
	const struct lk *c;

	out->attr.inode = rq->inode;
	if (en == NULL)
		return;
	c = first_conflict(en->sp[kidx(rq->kind)].h, en->sp[kidx(rq->kind)].nh,
	    &a);
	if (c == NULL)
		return;
	out->status = KV_ELOCKED;
	out->flags |= KV_RES_LOCK;
	to_kv_lock(c, rq->kind, &out->lock);
}

bool locktab_fence(const struct locktab *t, uint64_t inode, uint64_t token)
{
	const struct entry *en = entry_find(t, inode);

	if (en == NULL || token == 0)
		return false;
	for (int k = 0; k < 2; k++)
		for (uint32_t i = 0; i < en->sp[k].nh; i++)
			if (en->sp[k].h[i].token == token)
				return true;
	return false;
}

/* The owner's piece of at least @mode holding offset @off, or NULL. */
static const struct lk *piece_at(const struct space *sp, const struct lk *a,
    uint64_t off)
{
	for (uint32_t i = 0; i < sp->nh; i++) {
		const struct lk *h = &sp->h[i];

		if (same_owner(h, a->session, a->owner) && h->mode >= a->mode &&
		    h->start <= off && off <= h->end)
			return h;
	}
	return NULL;
}

int locktab_wait_state(const struct locktab *t, const struct locktab_req *rq,
    uint64_t *token)
{
	const struct entry *en = entry_find(t, rq->inode);
	struct lk a = req_lk(rq);
	const struct space *sp;
	const struct lk *first;

	*token = 0;
	if (en == NULL)
		return KV_ENOLOCK;
	sp = &en->sp[kidx(rq->kind)];
	first = piece_at(sp, &a, a.start);
	if (first != NULL) {
		const struct lk *p = first;

		while (p != NULL && p->end < a.end)
			p = piece_at(sp, &a, p->end + 1);
		if (p != NULL) {
			*token = first->token;
			return KV_OK;
		}
	}
	for (uint32_t i = 0; i < sp->nw; i++) {
		const struct lk *w = &sp->w[i];

		if (same_owner(w, a.session, a.owner) && w->mode == a.mode &&
		    w->start == a.start && w->end == a.end)
			return KV_EQUEUED;
	}
	return KV_ENOLOCK;
}

/* ------------------------------------------------------------------------
 * Leases
 * ------------------------------------------------------------------------ */

void locktab_renew(struct locktab *t, uint64_t session)
{
	struct lsess *ls = sess_find(t, session);

	if (ls != NULL && t->newest != ls) {
		list_unlink(t, ls);
		list_append(t, ls);
	}
}

/* Remove everything of @ls and the record itself; its entries join the
 * dirty list (settle_dirty() runs their grant passes). */
static void strip(struct locktab *t, struct lsess *ls, uint64_t index)
{
	uint64_t session = ls->session;
	uint32_t gone = 0;

	for (uint32_t j = 0; j < ls->nino; j++) {
		struct entry *en = entry_find(t, ls->ino[j]);

		for (int k = 0; en != NULL && k < 2; k++) {
			struct space *sp = &en->sp[k];
			uint32_t h = remove_matching(sp->h, &sp->nh, session,
			    true, 0, NULL);
			uint32_t w = remove_matching(sp->w, &sp->nw, session,
			    true, 0, NULL);

			t->nheld -= h;
			t->nwait -= w;
			gone += h + w;
		}
		if (en != NULL && !en->dirty) {
			en->dirty = true;
			t->dirty[t->ndirty++] = en; /* room: entry_get() */
		}
	}
	sess_remove(t, ls);
	if (gone > 0 && t->fn != NULL) {
		struct kv_lock_event ev = { .type = KV_LOCK_EV_LOST,
			.index = index };

		ev.lock.session = session;
		t->fn(t->fn_arg, &ev);
	}
}

uint32_t locktab_expire(struct locktab *t, uint64_t index, int64_t now)
{
	uint32_t n = 0;

	while (t->oldest != NULL &&
	    time_of(t, t->oldest->session) < now - t->lease_ns) {
		strip(t, t->oldest, index);
		n++;
	}
	if (n > 0)
		settle_dirty(t, index);
	return n;
}

void locktab_drop_session(struct locktab *t, uint64_t session, uint64_t index)
{
	struct lsess *ls = sess_find(t, session);

	if (ls == NULL)
		return;
	strip(t, ls, index);
	settle_dirty(t, index);
}

void locktab_sweep(struct locktab *t, bool (*alive)(void *arg, uint64_t s),
    void *arg, uint64_t index)
{
	bool any = false;

	for (uint32_t i = 0; i < t->ns;) {
		if (!alive(arg, t->s[i]->session)) {
			strip(t, t->s[i], index);
			any = true;
			continue; /* the array shifted */
		}
		i++;
	}
	if (any)
		settle_dirty(t, index);
}

/* ------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------ */

uint32_t locktab_held(const struct locktab *t)
{
	return t->nheld;
}

uint32_t locktab_waiting(const struct locktab *t)
{
	return t->nwait;
}

uint64_t locktab_last_token(const struct locktab *t)
{
	return t->last_token;
}

uint64_t locktab_generation(const struct locktab *t)
{
	return t->gen;
}

uint64_t locktab_last_inode(const struct locktab *t)
{
	return t->ne > 0 ? t->e[t->ne - 1]->inode : 0;
}

void locktab_each(const struct locktab *t,
    int (*fn)(void *arg, uint64_t inode, const struct kv_lock *l), void *arg)
{
	for (uint32_t i = 0; i < t->ne; i++)
		for (int k = 0; k < 2; k++)
			for (uint32_t j = 0; j < t->e[i]->sp[k].nh; j++) {
				struct kv_lock l;

				to_kv_lock(&t->e[i]->sp[k].h[j],
				    k == 0 ? KV_LK_FLOCK : KV_LK_POSIX, &l);
				if (fn(arg, t->e[i]->inode, &l) != 0)
					return;
			}
}

/* ------------------------------------------------------------------------
 * Serialisation
 * ------------------------------------------------------------------------ */

static size_t encoded_size(const struct locktab *t)
{
	size_t n = 8 + 4 + (size_t)t->ns * 16 + 4;

	for (uint32_t i = 0; i < t->ne; i++) {
		n += 8;
		for (int k = 0; k < 2; k++)
			n += 8 +
			    ((size_t)t->e[i]->sp[k].nh + t->e[i]->sp[k].nw) *
			        LOCK_BYTES;
	}
	return n;
}

static void put_lk(struct buf_writer *w, const struct lk *a, uint8_t kind)
{
	struct kv_lock l;

	to_kv_lock(a, kind, &l);
	kv_lock_put(w, &l, kind);
}

int locktab_encode(const struct locktab *t, void **buf, size_t *len)
{
	size_t n = encoded_size(t);
	struct buf_writer w;
	uint8_t *b = malloc(n);

	if (b == NULL)
		return -ENOMEM;
	buf_writer_init(&w, b, n);
	buf_put_u64(&w, t->last_token);
	buf_put_u32(&w, t->ns);
	for (uint32_t i = 0; i < t->ns; i++) {
		int64_t renew = time_of(t, t->s[i]->session);

		buf_put_u64(&w, t->s[i]->session);
		buf_put_i64(&w, renew > 0 ? renew : 0);
	}
	buf_put_u32(&w, t->ne);
	for (uint32_t i = 0; i < t->ne; i++) {
		buf_put_u64(&w, t->e[i]->inode);
		for (int k = 0; k < 2; k++) {
			const struct space *sp = &t->e[i]->sp[k];
			uint8_t kind = k == 0 ? KV_LK_FLOCK : KV_LK_POSIX;

			buf_put_u32(&w, sp->nh);
			for (uint32_t j = 0; j < sp->nh; j++)
				put_lk(&w, &sp->h[j], kind);
			buf_put_u32(&w, sp->nw);
			for (uint32_t j = 0; j < sp->nw; j++)
				put_lk(&w, &sp->w[j], kind);
		}
	}
	*buf = b;
	*len = n;
	return 0;
}

static bool get_lk(struct buf_reader *r, uint8_t kind, bool holder,
    uint64_t last, struct lk *a)
{
	struct kv_lock l;

	if (!kv_lock_get(r, &l, kind))
		return false;
	a->session = l.session;
	a->owner = l.owner;
	a->start = l.start;
	a->end = l.end;
	a->token = l.token;
	a->pid = l.pid;
	a->mode = l.lmode;
	a->mark = MARK_NO;
	if (kind == KV_LK_FLOCK && (a->start != 0 || a->end != 0))
		return false;
	return holder ? a->token != 0 && a->token <= last : a->token == 0;
}

static int cmp_u64(uint64_t x, uint64_t y)
{
	return x < y ? -1 : x > y;
}

/* Holders by owner, then start. */
static int cmp_owner_start(const void *pa, const void *pb)
{
	const struct lk *a = pa, *b = pb;
	int c = cmp_u64(a->session, b->session);

	if (c == 0)
		c = cmp_u64(a->owner, b->owner);
	return c != 0 ? c : cmp_u64(a->start, b->start);
}

static int cmp_token(const void *pa, const void *pb)
{
	return cmp_u64(((const struct lk *)pa)->token,
	    ((const struct lk *)pb)->token);
}

static int cmp_start(const void *pa, const void *pb)
{
	return cmp_u64(((const struct lk *)pa)->start,
	    ((const struct lk *)pb)->start);
}

/*
 * The holders of one space: no two of another owner in conflict or with
 * the same token (the pieces of one split grant share theirs), one flock
 * per owner, an owner's POSIX pieces neither overlapping nor
 * adjacent-and-same-mode.  O(n log n): sorted by owner, the checks
 * within an owner are between neighbours; then no two pieces overlap
 * but of different owners, and a sweep by start finds any overlap that
 * involves an exclusive piece.  0, -EBADMSG, or -ENOMEM.
 */
static int holders_valid(const struct space *sp, uint8_t kind)
{
	uint32_t n = sp->nh;
	struct lk *v;
	uint64_t max_end = 0, max_excl = 0;
	bool any = false, any_excl = false;
	int rc = -EBADMSG;

	if (n < 2)
		return 0;
	v = malloc((size_t)n * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	memcpy(v, sp->h, (size_t)n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_owner_start);
	for (uint32_t i = 1; i < n; i++) {
		const struct lk *a = &v[i - 1], *b = &v[i];

		if (!same_owner(a, b->session, b->owner))
			continue;
		if (kind == KV_LK_FLOCK ||
		    overlap(a->start, a->end, b->start, b->end) ||
		    (a->mode == b->mode &&
		        adjacent(a->start, a->end, b->start, b->end)))
			goto out;
	}
	qsort(v, n, sizeof(*v), cmp_token);
	for (uint32_t i = 1; i < n; i++)
		if (v[i - 1].token == v[i].token &&
		    !same_owner(&v[i - 1], v[i].session, v[i].owner))
			goto out; /* one grant, one owner */
	qsort(v, n, sizeof(*v), cmp_start);
	for (uint32_t i = 0; i < n; i++) {
		const struct lk *p = &v[i];

		if (p->mode == KV_LK_EXCL ? any && p->start <= max_end
		                          : any_excl && p->start <= max_excl)
			goto out;
		if (!any || p->end > max_end)
			max_end = p->end;
		if (p->mode == KV_LK_EXCL && (!any_excl || p->end > max_excl))
			max_excl = p->end;
		any = true;
		any_excl = any_excl || p->mode == KV_LK_EXCL;
	}
	rc = 0;
out:
	free(v);
	return rc;
}

/* Add @ino to the inode set of the session of each record of @v. */
static int note_inodes(struct locktab *t, const struct lk *v, uint32_t n,
    uint64_t ino)
{
	for (uint32_t j = 0; j < n; j++) {
		struct lsess *ls = sess_find(t, v[j].session);

		if (ls == NULL)
			return -EBADMSG;
		if (!ino_has(ls, ino) && ino_add(ls, ino) != 0)
			return -ENOMEM;
		ls->nrec++; /* the session's count, rebuilt */
	}
	return 0;
}

static int decode_space(struct locktab *t, struct buf_reader *r,
    struct entry *en, int k)
{
	struct space *sp = &en->sp[k];
	uint8_t kind = k == 0 ? KV_LK_FLOCK : KV_LK_POSIX;
	uint32_t nh = buf_get_u32(r), nw;
	int rc;

	if (r->err || nh > buf_reader_left(r) / LOCK_BYTES ||
	    (uint64_t)t->nheld + nh > LOCKTAB_DECODE_MAX(t->max))
		return -EBADMSG;
	if (reserve(sp, nh, 0) != 0)
		return -ENOMEM;
	for (uint32_t j = 0; j < nh; j++) {
		if (!get_lk(r, kind, true, t->last_token, &sp->h[j]))
			return -EBADMSG;
		sp->nh++;
	}
	t->nheld += nh;
	nw = buf_get_u32(r);
	if (r->err || nw > buf_reader_left(r) / LOCK_BYTES ||
	    (uint64_t)t->nheld + t->nwait + nw > LOCKTAB_DECODE_MAX(t->max))
		return -EBADMSG;
	if (reserve(sp, 0, nw) != 0)
		return -ENOMEM;
	for (uint32_t j = 0; j < nw; j++) {
		if (!get_lk(r, kind, false, t->last_token, &sp->w[j]))
			return -EBADMSG;
		sp->nw++;
	}
	t->nwait += nw;
	rc = note_inodes(t, sp->h, sp->nh, en->inode);
	if (rc == 0)
		rc = note_inodes(t, sp->w, sp->nw, en->inode);
	return rc != 0 ? rc : holders_valid(sp, kind);
}

/* The lease sessions of a decoded table with their stored renewals. */
struct renewal {
	int64_t renew;
	struct lsess *ls;
};

static int cmp_renewal(const void *pa, const void *pb)
{
	const struct renewal *a = pa, *b = pb;

	if (a->renew != b->renew)
		return a->renew < b->renew ? -1 : 1;
	return cmp_u64(a->ls->session, b->ls->session);
}

/* The lease records: in id order in the array, in order of their
 * renewals (then ids) in the activity list. */
static int decode_sessions(struct locktab *t, struct buf_reader *r,
    int64_t clock_ns)
{
	uint32_t ns = buf_get_u32(r);
	struct renewal *rv;
	int rc = -EBADMSG;

	if (r->err || ns > buf_reader_left(r) / 16)
		return -EBADMSG;
	rv = malloc((size_t)(ns ? ns : 1) * sizeof(*rv));
	if (rv == NULL ||
	    grow((void **)&t->s, &t->caps, ns, sizeof(*t->s)) != 0) {
		free(rv);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < ns; i++) {
		uint64_t session = buf_get_u64(r);
		int64_t renew = buf_get_i64(r);

		if (r->err || session == 0 || renew < 0 || renew > clock_ns ||
		    (i > 0 && session <= t->s[i - 1]->session))
			goto out;
		t->s[i] = calloc(1, sizeof(**t->s));
		if (t->s[i] == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		t->s[i]->session = session;
		t->ns++;
		rv[i] = (struct renewal){ renew, t->s[i] };
	}
	qsort(rv, ns, sizeof(*rv), cmp_renewal);
	for (uint32_t i = 0; i < ns; i++)
		list_append(t, rv[i].ls);
	rc = 0;
out:
	free(rv);
	return rc;
}

int locktab_decode(const void *buf, size_t len, int64_t lease_ns, uint32_t max,
    int64_t clock_ns, struct locktab **out)
{
	struct locktab *t = locktab_new(lease_ns, max);
	struct buf_reader r;
	uint32_t ne;
	int rc = -EBADMSG;

	*out = NULL;
	if (t == NULL)
		return -ENOMEM;
	buf_reader_init(&r, buf, len);
	t->last_token = buf_get_u64(&r);
	rc = decode_sessions(t, &r, clock_ns);
	if (rc != 0)
		goto fail;
	rc = -EBADMSG;
	ne = buf_get_u32(&r);
	if (r.err || ne > buf_reader_left(&r) / 16)
		goto fail;
	for (uint32_t i = 0; i < ne; i++) {
		uint64_t ino = buf_get_u64(&r);
		struct entry *en;

		if (r.err || ino == 0 ||
		    (i > 0 && ino <= t->e[t->ne - 1]->inode))
			goto fail;
		en = entry_get(t, ino);
		if (en == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		for (int k = 0; k < 2; k++) {
			rc = decode_space(t, &r, en, k);
			if (rc != 0)
				goto fail;
		}
		rc = -EBADMSG;
		if (entry_empty(en))
			goto fail;
	}
	if (r.err || buf_reader_left(&r) != 0)
		goto fail;
	*out = t;
	return 0;
fail:
	locktab_free(t);
	return rc;
}
