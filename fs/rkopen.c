/*
 * rkopen.c - this mount's open files registered in the cluster, and the
 * orphans nobody holds open any more (rkopen.h).
 *
 * One thread does everything that talks to the cluster: the batches of
 * OPEN/CLOSE ops (in the session of its own clerk), the renewals of that
 * session (KEEPALIVE, a quarter TTL apart while it holds registrations),
 * and the deletion of orphans.
 * The FUSE handlers only change the table below under @mu.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "fs/inode.h"
#include "fs/rkfs_int.h"
#include "fs/rkopen.h"
#include "kv/clerk.h"
#include "kv/kv.h"
#include "raft/util/clock.h"
#include "raft/util/logging.h"

/* One inode this mount holds open, or did until its close is sent. */
struct ent {
	uint64_t ino;
	unsigned n; /* open descriptors here (rkopen_hold - rkopen_drop) */
	bool reg; /* registered in the current session (committed) */
	bool refused; /* its OPEN was refused (the table's bounds) */
	bool sending; /* in the batch in flight */
	uint64_t since_ms; /* mono_ms() when opened here (the hold-down) */
	bool unsure; /* a batch with it failed without a definite answer
	              * (KV_EMAYBE...): it may or may not have applied, so
	              * the next batch says what @n says whatever @reg is */
};

struct rkopen {
	struct fs *fs;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the thread: something to send, or stop */
	pthread_cond_t done; /* rkopen_sync(): a batch committed */
	pthread_t thread;
	bool started, stop;
	struct ent *e; /* sorted by ino */
	size_t n, cap;
	bool dirty; /* some entry wants a batch */
	uint64_t session; /* the clerk's, as last seen */
	void *zctx;
	struct clerk *ck; /* the thread's only */
	int64_t session_ttl_ns;
	bool warned_full; /* the table-full warning was logged */
	/* Tests (rkopen_fault_maybe): batches number fault_from .. +
	 * fault_count - 1 report KV_EMAYBE after they committed, or without
	 * being sent (@fault_lost). */
	unsigned batches, fault_from, fault_count;
	bool fault_lost;
};

/* ------------------------------------------------------------------ */
/* The table (under @mu) */

static size_t ent_pos(const struct rkopen *o, uint64_t ino)
{
	size_t lo = 0, hi = o->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->e[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct ent *ent_find(struct rkopen *o, uint64_t ino)
{
	size_t i = ent_pos(o, ino);

	return i < o->n && o->e[i].ino == ino ? &o->e[i] : NULL;
}

/* Does @e want a batch (an OPEN or a CLOSE)? */
static bool wants(const struct ent *e)
{
	return !e->sending && (e->unsure || (e->n > 0) != e->reg) &&
	    !(e->n > 0 && e->refused);
}

/* When @e's batch may go: an OPEN waits RKOPEN_HOLD_MS after the open
 * (a file closed meanwhile is never registered), the rest at once. */
static uint64_t due_at(const struct ent *e)
{
	if (e->n > 0 && !e->reg && !e->unsure)
		return e->since_ms + RKOPEN_HOLD_MS;
	return 0;
}

/* The earliest due_at() of the entries that want a batch (UINT64_MAX:
 * none). */
static uint64_t next_due(const struct rkopen *o)
{
	uint64_t t = UINT64_MAX;

	for (size_t i = 0; i < o->n; i++)
		if (wants(&o->e[i]) && due_at(&o->e[i]) < t)
			t = due_at(&o->e[i]);
	return t;
}

/* Drop the entries nothing refers to any more. */
static void prune(struct rkopen *o)
{
	size_t w = 0;

	for (size_t i = 0; i < o->n; i++)
		if (o->e[i].n > 0 || o->e[i].reg || o->e[i].sending ||
		    o->e[i].unsure)
			o->e[w++] = o->e[i];
	o->n = w;
}

void rkopen_hold(struct rkopen *o, uint64_t ino)
{
	size_t i;
	struct ent *e;

	pthread_mutex_lock(&o->mu);
	e = ent_find(o, ino);
	if (e == NULL) {
		if (o->n == o->cap) {
			size_t ncap = o->cap ? o->cap * 2 : 64;
			struct ent *ne = realloc(o->e, ncap * sizeof(*ne));

			if (ne == NULL) {
				/* Not registered: not kept for this mount if
				 * another removes it (ESTALE, as before). */
				pthread_mutex_unlock(&o->mu);
				log_warnx("opens: out of memory registering "
				          "inode %" PRIu64,
				    ino);
				return;
			}
			o->e = ne;
			o->cap = ncap;
		}
		i = ent_pos(o, ino);
		memmove(&o->e[i + 1], &o->e[i], (o->n - i) * sizeof(*o->e));
		o->e[i] = (struct ent){ .ino = ino };
		o->n++;
		e = &o->e[i];
	}
	if (e->n++ == 0) {
		e->since_ms = mono_ms();
		if (wants(e)) {
			o->dirty = true;
			pthread_cond_signal(&o->cv);
		}
	}
	pthread_mutex_unlock(&o->mu);
}

void rkopen_drop(struct rkopen *o, uint64_t ino)
{
	struct ent *e;

	pthread_mutex_lock(&o->mu);
	e = ent_find(o, ino);
	if (e != NULL && e->n > 0 && --e->n == 0) {
		e->refused = false;
		if (wants(e)) {
			o->dirty = true;
			pthread_cond_signal(&o->cv);
		}
	}
	pthread_mutex_unlock(&o->mu);
}

/* The deadline @ms from now on CLOCK_REALTIME (the conditions' clock). */
static struct timespec deadline_in(int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000l;
	if (ts.tv_nsec >= 1000000000l) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000l;
	}
	return ts;
}

int rkopen_sync(struct rkopen *o, uint64_t ino, int timeout_ms)
{
	struct timespec until = deadline_in(timeout_ms);
	int rv = 0;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		struct ent *e = ent_find(o, ino);

		if (e == NULL || e->n == 0)
			break;
		if (e->refused) {
			rv = -ENOSPC;
			break;
		}
		if (due_at(e) > mono_ms()) {
			/* A removal here: no hold-down for this one. */
			e->since_ms = 0;
			pthread_cond_signal(&o->cv);
		}
		if (e->reg && !e->sending && !e->unsure)
			break;
		if (o->stop ||
		    pthread_cond_timedwait(&o->done, &o->mu, &until) ==
		        ETIMEDOUT) {
			rv = -EIO;
			break;
		}
	}
	pthread_mutex_unlock(&o->mu);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Batches (the thread) */

/*
 * With @mu held: the clerk's session may have changed (evicted: its
 * registrations went with it); then everything held is sent again.
 * Drops @mu across the call.  0, or a clerk error.
 */
static int check_session(struct rkopen *o)
{
	uint64_t s = 0;
	int rv;

	pthread_mutex_unlock(&o->mu);
	rv = clerk_session(o->ck, &s);
	pthread_mutex_lock(&o->mu);
	if (rv != 0)
		return rv;
	if (s != o->session) {
		if (o->session != 0)
			log_warnx("opens: new session %" PRIu64
			          " (session %" PRIu64 " was evicted)",
			    s, o->session);
		o->session = s;
		for (size_t i = 0; i < o->n; i++) {
			/* the old session's pairs went with it */
			o->e[i].reg = false;
			o->e[i].refused = false;
			o->e[i].unsure = false;
		}
		prune(o);
		o->dirty = true;
	}
	return 0;
}

/*
 * With @mu held: send one batch of what changed.  Returns 1 when the
 * batch committed and closed something, 0 when it committed, 2 when
 * there was nothing to send (no request, so no renewal of the session),
 * a negative value when it did not commit (try again later).
 */
static int send_batch(struct rkopen *o)
{
	struct kv_op *ops;
	struct kv_cmd c = { .type = KV_OP_TXN };
	struct kv_result res;
	uint32_t n = 0;
	bool closed = false, fault, lost;
	uint64_t now = mono_ms();
	int rv;

	rv = check_session(o);
	if (rv != 0)
		return -1;
	ops = calloc(KV_TXN_MAX, sizeof(*ops));
	if (ops == NULL)
		return -1;
	for (size_t i = 0; i < o->n && n < KV_TXN_MAX; i++) {
		struct ent *e = &o->e[i];

		if (!wants(e) || due_at(e) > now)
			continue;
		e->sending = true;
		ops[n].type = e->n > 0 ? KV_OP_OPEN : KV_OP_CLOSE;
		ops[n].inode = e->ino;
		n++;
	}
	o->dirty = false;
	for (size_t i = 0; i < o->n && !o->dirty; i++)
		o->dirty = wants(&o->e[i]); /* more than one batch */
	if (n == 0) {
		/* Files opened and closed within the hold-down: never
		 * registered, nothing to keep of them. */
		prune(o);
		free(ops);
		return 2;
	}
	c.ops = ops;
	c.nops = n;
	o->batches++;
	fault = o->batches >= o->fault_from &&
	    o->batches - o->fault_from < o->fault_count;
	lost = fault && o->fault_lost;
	pthread_mutex_unlock(&o->mu);
	if (lost)
		rv = KV_EMAYBE; /* tests: not sent */
	else
		rv = clerk_mutate(o->ck, &c, &res);
	pthread_mutex_lock(&o->mu);
	if (fault && rv == KV_OK)
		rv = KV_EMAYBE; /* tests: committed, answer lost */
	for (uint32_t i = 0; i < n; i++) {
		struct ent *e = ent_find(o, ops[i].inode);
		bool open = ops[i].type == KV_OP_OPEN;

		e->sending = false;
		if (rv != KV_OK && rv != KV_ENOSPC) {
			/* Applied or not: the next batch sends what the
			 * entry wants then, OPEN or CLOSE (both idempotent
			 * in apply), even when that matches @reg. */
			e->unsure = true;
			continue;
		}
		e->unsure = false;
		e->reg = open;
		if (rv == KV_ENOSPC && open && i >= res.fail_op) {
			/* fail_op was refused, a later OPEN maybe: not
			 * sent again while open here, not counted on
			 * (rkopen_sync), closed to be sure. */
			e->reg = i > res.fail_op;
			e->refused = true;
		}
		closed |= !open;
	}
	free(ops);
	if (rv == KV_ENOSPC && !o->warned_full)
		log_warnx("opens: the cluster's open table is full for this "
		          "mount; some files it holds open are not kept for "
		          "it if another mount removes them");
	o->warned_full |= rv == KV_ENOSPC;
	if (rv != KV_OK && rv != KV_ENOSPC) {
		o->dirty = true;
		log_debug("opens: batch of %" PRIu32 ": %s", n,
		    clerk_strerror(rv));
	}
	prune(o);
	/* Opens and closes that came while the batch was in flight. */
	for (size_t i = 0; i < o->n && !o->dirty; i++)
		o->dirty = wants(&o->e[i]);
	pthread_cond_broadcast(&o->done);
	if (rv != KV_OK && rv != KV_ENOSPC)
		return -1;
	return closed ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Orphans (the thread, @mu not held) */

struct orphan {
	char key[RKFS_ORPHAN_KEY_LEN];
	uint64_t version, ino;
};

struct orphans {
	struct orphan *v;
	size_t n, cap;
	bool nomem;
};

static int collect(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	struct orphans *l = arg;

	(void)value;
	if (keylen != RKFS_ORPHAN_KEY_LEN)
		return 0;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		struct orphan *nv = realloc(l->v, ncap * sizeof(*nv));

		if (nv == NULL) {
			l->nomem = true;
			return 1;
		}
		l->v = nv;
		l->cap = ncap;
	}
	memcpy(l->v[l->n].key, key, keylen);
	l->v[l->n].version = attr->version;
	l->v[l->n].ino = attr->inode;
	l->n++;
	return 0;
}

/* Delete the orphan @g with its attributes if nobody holds it open when
 * the TXN applies. */
static void reap(struct rkopen *o, const struct orphan *g)
{
	struct fs *fs = o->fs;
	struct kv_result res;
	struct rkfs_txn t;
	char **xkeys = NULL;
	size_t nx = 0;
	int rv;

	inode_lock(fs->inodes);
	rv = rkxattr_keys_locked(fs, g->ino, &xkeys, &nx);
	inode_unlock(fs->inodes);
	if (rv != 0)
		return;
	memset(&t, 0, sizeof(t));
	rkfs_txn_cmp(&t, g->key, RKFS_ORPHAN_KEY_LEN, g->version);
	rkfs_txn_cmp(&t, g->key, RKFS_ORPHAN_KEY_LEN, KV_VERSION_NOTOPEN);
	rkfs_txn_op(&t, KV_OP_DELETE, g->key, RKFS_ORPHAN_KEY_LEN);
	rv = rkfs_txn_submit_deleting(fs, &t, xkeys, nx, &res);
	rkxattr_keys_free(xkeys, nx);
	if (rv == KV_OK)
		log_debug("opens: deleted the removed file %" PRIu64
		          " (closed everywhere)",
		    g->ino);
}

/*
 * Delete as many of the @n orphans at @g as one TXN holds, with their
 * attributes, if nobody holds any of them open when it applies (one
 * commit for all: the thread's batches wait behind it).  Sets *@took to
 * how many it covered (at least 1); returns the submit's result (KV_OK,
 * a status, a negative errno).
 */
static int reap_batch(struct rkopen *o, const struct orphan *g, size_t n,
    size_t *took)
{
	struct fs *fs = o->fs;
	struct kv_cmd c = { .type = KV_OP_TXN };
	struct kv_result res;
	struct kv_cmp *cmps = calloc(KV_TXN_MAX, sizeof(*cmps));
	struct kv_op *ops = calloc(KV_TXN_MAX, sizeof(*ops));
	char ***xkeys = calloc(n, sizeof(*xkeys));
	size_t *nx = calloc(n, sizeof(*nx));
	size_t k = 0;
	int rv = -ENOMEM;

	*took = 1;
	if (cmps == NULL || ops == NULL || xkeys == NULL || nx == NULL)
		goto out;
	for (; k < n; k++) {
		inode_lock(fs->inodes);
		rv = rkxattr_keys_locked(fs, g[k].ino, &xkeys[k], &nx[k]);
		inode_unlock(fs->inodes);
		if (rv != 0)
			goto out;
		if (c.ncmp + 2 > KV_TXN_MAX || c.nops + 1 + nx[k] > KV_TXN_MAX)
			break; /* the next call's */
		cmps[c.ncmp].key = g[k].key;
		cmps[c.ncmp].keylen = RKFS_ORPHAN_KEY_LEN;
		cmps[c.ncmp++].version = g[k].version;
		cmps[c.ncmp].key = g[k].key;
		cmps[c.ncmp].keylen = RKFS_ORPHAN_KEY_LEN;
		cmps[c.ncmp++].version = KV_VERSION_NOTOPEN;
		ops[c.nops].type = KV_OP_DELETE;
		ops[c.nops].flags = KV_F_ANYVER; /* the compares pin it */
		ops[c.nops].key = g[k].key;
		ops[c.nops++].keylen = RKFS_ORPHAN_KEY_LEN;
		for (size_t j = 0; j < nx[k]; j++) {
			ops[c.nops].type = KV_OP_DELETE;
			ops[c.nops].flags = KV_F_ANYVER;
			ops[c.nops].key = xkeys[k][j];
			ops[c.nops++].keylen = (uint32_t)strlen(xkeys[k][j]);
		}
	}
	if (k == 0) {
		rv = -E2BIG; /* one orphan past a TXN: reap() says so too */
		goto out;
	}
	*took = k;
	c.cmps = cmps;
	c.ops = ops;
	rv = rkfs_submit(fs, &c, &res);
	if (rv == KV_OK)
		log_debug("opens: deleted %zu removed files (closed "
		          "everywhere)",
		    k);
out:
	for (size_t i = 0; xkeys != NULL && i < n; i++)
		if (xkeys[i] != NULL)
			rkxattr_keys_free(xkeys[i], nx[i]);
	free(xkeys);
	free(nx);
	free(ops);
	free(cmps);
	return rv;
}

/* Delete the @n orphans at @g nobody held open when the caller looked:
 * in batches; a batch that lost a race (one of them opened again, or
 * changed) is tried again one orphan at a time. */
static void reap_all(struct rkopen *o, const struct orphan *g, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t took = 1;
		int rv = reap_batch(o, g + i, n - i, &took);

		if ((rv == KV_EVERSION || rv == KV_ENOKEY) && took > 1)
			for (size_t k = 0; k < took; k++)
				reap(o, &g[i + k]);
		i += took;
	}
}

/* Look at the orphans of the local state: delete those nobody holds
 * open.  (A dead holder's session expires by the leader's ticker,
 * kv/kvapp.h.) */
static void scan(struct rkopen *o)
{
	struct fs *fs = o->fs;
	struct orphans l = { 0 };
	size_t nfree = 0;

	kv_list(fs->kv, RKFS_ORPHAN_PREFIX, strlen(RKFS_ORPHAN_PREFIX), NULL, 0,
	    0, -1, collect, &l);
	for (size_t i = 0; i < l.n; i++)
		if (!kv_is_open(fs->kv, l.v[i].ino))
			l.v[nfree++] = l.v[i]; /* in order: i >= nfree */
	if (!fs->opt.ro)
		reap_all(o, l.v, nfree);
	free(l.v);
}

/* ------------------------------------------------------------------ */
/* The thread */

static void *sender_main(void *arg)
{
	struct rkopen *o = arg;
	int64_t renew_ms = o->session_ttl_ns / 4 / 1000000;
	uint64_t last = mono_ms(), next_scan = 0, retry_at = 0;

	if (renew_ms < 100)
		renew_ms = 100;
	pthread_mutex_lock(&o->mu);
	while (!o->stop) {
		uint64_t now = mono_ms(), wake;
		struct timespec ts;

		/* Due: an entry's hold-down is over, or none wants a batch
		 * but the session is to be checked (a renewal failed). */
		if (o->dirty && now >= retry_at &&
		    (now >= next_due(o) || next_due(o) == UINT64_MAX)) {
			int rv = send_batch(o);

			if (rv < 0) {
				retry_at = mono_ms() + 200;
				continue;
			}
			/* Only a committed batch renewed the session. */
			if (rv != 2)
				last = mono_ms();
			if (rv == 1)
				next_scan = 0; /* closed: look now */
			continue;
		}
		if (now >= next_scan) {
			pthread_mutex_unlock(&o->mu);
			/* After a close: this member applied it first. */
			if (next_scan == 0)
				(void)rkfs_fresh(o->fs);
			scan(o);
			pthread_mutex_lock(&o->mu);
			next_scan = mono_ms() + RKOPEN_SCAN_MS;
		}
		/* Renew the session while it holds registrations: the
		 * leader's ticker takes a holder idle for half the TTL for
		 * dead (kv/kvapp.h). */
		if (o->session != 0 && mono_ms() - last >= (uint64_t)renew_ms) {
			bool any = false;

			for (size_t i = 0; i < o->n && !any; i++)
				any = o->e[i].reg || o->e[i].unsure;
			if (any) {
				int rv;

				pthread_mutex_unlock(&o->mu);
				rv = clerk_keepalive(o->ck);
				pthread_mutex_lock(&o->mu);
				if (rv == KV_ESESSION || rv == KV_EMAYBE) {
					o->dirty = true; /* check_session */
					continue;
				}
			}
			last = mono_ms();
		}
		wake = next_scan;
		if (o->session != 0 && last + (uint64_t)renew_ms < wake)
			wake = last + (uint64_t)renew_ms;
		if (o->dirty) {
			uint64_t due = next_due(o);

			if (due < retry_at || due == UINT64_MAX)
				due = retry_at;
			if (due < wake)
				wake = due;
		}
		now = mono_ms();
		ts = deadline_in(wake > now ? (int64_t)(wake - now) : 0);
		if (wake > now)
			pthread_cond_timedwait(&o->cv, &o->mu, &ts);
	}
	/* Stopping: the closes of the unmount go out once (bounded by the
	 * clerk's deadline), so a clean stop leaves nothing registered. */
	if (o->dirty)
		(void)send_batch(o);
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Life cycle */

struct rkopen *rkopen_new(struct fs *fs, const struct cluster *cl,
    int deadline_ms, int prefer, int64_t session_ttl_ns)
{
	struct rkopen *o = calloc(1, sizeof(*o));
	struct clerk_options copt;

	if (o == NULL)
		return NULL;
	o->zctx = zmq_ctx_new();
	if (o->zctx == NULL) {
		free(o);
		return NULL;
	}
	clerk_options_defaults(&copt);
	copt.deadline_ms = deadline_ms;
	copt.prefer_member = prefer;
	copt.zctx = o->zctx;
	/* Registrations belong to the session: an evicted one is noticed
	 * (check_session) and everything is sent again in the new one. */
	copt.session_strict = true;
	if (clerk_new(cl, &copt, &o->ck) != 0) {
		zmq_ctx_term(o->zctx);
		free(o);
		return NULL;
	}
	o->fs = fs;
	o->session_ttl_ns = session_ttl_ns > 0 ? session_ttl_ns
	                                       : KV_SESSION_TTL_NS;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	pthread_cond_init(&o->done, NULL);
	return o;
}

void rkopen_fault_maybe(struct rkopen *o, unsigned from, unsigned count,
    bool lost)
{
	pthread_mutex_lock(&o->mu);
	o->fault_lost = lost;
	o->fault_from = from;
	o->fault_count = count;
	pthread_mutex_unlock(&o->mu);
}

int rkopen_start(struct rkopen *o)
{
	int rv = pthread_create(&o->thread, NULL, sender_main, o);

	if (rv != 0)
		return -rv;
	o->started = true;
	return 0;
}

void rkopen_free(struct rkopen *o)
{
	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	o->stop = true;
	pthread_cond_broadcast(&o->cv);
	pthread_cond_broadcast(&o->done);
	pthread_mutex_unlock(&o->mu);
	if (o->started)
		pthread_join(o->thread, NULL);
	clerk_free(o->ck);
	zmq_ctx_term(o->zctx);
	pthread_cond_destroy(&o->cv);
	pthread_cond_destroy(&o->done);
	pthread_mutex_destroy(&o->mu);
	free(o->e);
	free(o);
}
