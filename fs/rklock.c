/*
 * rklock.c - locks through the mount (see rklock.h).
 *
 * State, all under l->mu:
 *   waiters  the blocking lock requests in flight (a list: few at once),
 *            each SUBMIT (LOCK being submitted), PARKED (queued in the
 *            state machine, request unanswered) or CANCEL (interrupted,
 *            the worker cancels it);
 *   files    per inode (a hash table): who on this mount may hold a lock
 *            there ((kind, owner) pairs), the newest token granted to
 *            this mount, when it was lost, its fence;
 *   jobs     answers and cancels for the worker thread;
 *   releases unlocks owed to the cluster: orphan grants, and the
 *            UNLOCK_OWNERs of released files.  A release goes on the
 *            list, in flight, BEFORE its first attempt, and stays there
 *            until it went through or can no longer matter (its session
 *            ended, or an error a retry cannot clear): a failed attempt
 *            is retried by the worker with a growing pause, and a new
 *            LOCK of the same pair waits (release_wait(), bounded by the
 *            clerk's deadline) until the pair is off the list, so no
 *            retry can drop a lock granted after it was owed.
 * The listener (apply order) adds holders from grant events and marks
 * waiters; handlers add holders when a LOCK answers OK (the local apply
 * may come later) and remove them after an UNLOCK only if no grant for
 * that pair was seen meanwhile (gen), so the record errs on "may hold"
 * and a close never skips an UNLOCK_OWNER it needs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/xattr.h>
#include <time.h>
#include <zmq.h>

#include "fs/inode.h"
#include "fs/rkfs_int.h"
#include "fs/rklock.h"
#include "kv/clerk.h"
#include "kv/kv.h"
#include "raft/util/clock.h"
#include "raft/util/logging.h"
#include "raft/util/num.h"

enum wstate { W_SUBMIT, W_PARKED, W_CANCEL };

struct waiter {
	struct waiter *next;
	uint64_t id;
	fuse_req_t req;
	struct clerk_lock_req rq; /* inode, kind, mode, range, owner, pid */
	enum wstate state;
	uint64_t session; /* the lock session its LOCK went out in (0: not
	                     yet) */
	bool granted, interrupted, lost;
	uint64_t token;
	struct waiter *jnext; /* in l->jobs */
	int jerr; /* the answer's errno; < 0: cancel first */
};

struct holder {
	struct holder *next;
	uint64_t owner;
	uint64_t token; /* the newest grant seen for this pair */
	uint8_t kind;
};

/* A POSIX lock owner that asked for a lock through the open file @fh. */
struct use {
	struct use *next;
	uint64_t fh, owner;
};

struct file {
	struct file *next;
	uint64_t ino;
	struct holder *holders;
	struct use *uses; /* POSIX owners per open file (OFD: release) */
	uint64_t token; /* newest grant to this mount (0: none) */
	uint64_t lost_at; /* loss epoch when lost (0: never) */
	uint64_t fence_token; /* 0: no fence */
	uint64_t fence_ino;
	char *fence_text; /* the value as set (getxattr answers it) */
	size_t fence_len;
};


/* A non-blocking LOCK in flight (on its handler's stack), or an unlock
 * owed on l->releases: of an orphan grant's range, or (@all) of
 * everything the pair holds or waits for (UNLOCK_OWNER). */
struct pair {
	struct pair *next;
	uint64_t ino, owner, start, end;
	uint8_t kind;
	bool all; /* UNLOCK_OWNER, then holder_drop(@gen) */
	bool inflight; /* an attempt is running (not the worker's to pick) */
	uint64_t gen; /* @all: the pair's generation when it was released */
	uint64_t session; /* the lock session it is owed in (0: unknown) */
	uint64_t due_ms; /* mono_ms() of the next try */
	unsigned tries; /* failed so far */
};

/* Pause before the retry of a failed unlock: doubles from the first to
 * the last. */
#define RETRY_FIRST_MS 100u
#define RETRY_MAX_MS 2000u

#define NBUCKETS 4096u
#define GONE 64u /* released pairs remembered (a late grant event) */

struct gone {
	uint64_t ino, owner, token;
	uint8_t kind;
};

struct rklock {
	struct fs *fs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct waiter *waiters;
	uint64_t next_id;
	struct file *files[NBUCKETS];
	size_t nfiles_held; /* files with holders */
	/* Pairs released lately, with their last token: the listener may
	 * report that grant after the handler saw the unlock answered. */
	struct gone gone[GONE];
	unsigned gone_next;
	uint64_t loss_epoch;
	uint64_t session; /* the lock session (0: not known yet) */
	struct waiter *jobs, **jobs_tail; /* for the worker */
	struct pair *tries; /* non-blocking LOCKs in flight */
	struct pair *releases; /* unlocks owed (worker) */
	bool stop, started;
	pthread_t worker, keeper;
	int64_t lease_ns;
	int64_t session_ttl_ns; /* the cluster's (idle renewals) */
	/* The lock clerk: one call at a time. */
	pthread_mutex_t ckmu;
	struct cluster cl;
	struct clerk_options copt;
	void *zctx;
	struct clerk *ck;
	/* Tests: the first attempts of the next releases fail, the i-th
	 * after fault_ms[i] (rklock_fault_unlock_owner()). */
	unsigned fault_ms[RKLOCK_FAULTS_MAX], nfaults, fault_next;
};

static struct rklock *of(fuse_req_t req)
{
	return rkfs_of(req)->locks;
}

/* ------------------------------------------------------------------ */
/* Files and holders (l->mu held) */

static struct file **bucket(struct rklock *l, uint64_t ino)
{
	return &l->files[(ino * 0x9e3779b97f4a7c15ull) >> 52 & (NBUCKETS - 1)];
}

static struct file *file_find(struct rklock *l, uint64_t ino)
{
	for (struct file *f = *bucket(l, ino); f != NULL; f = f->next)
		if (f->ino == ino)
			return f;
	return NULL;
}

static struct file *file_get(struct rklock *l, uint64_t ino)
{
	struct file *f = file_find(l, ino), **b;

	if (f != NULL)
		return f;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	b = bucket(l, ino);
	f->ino = ino;
	f->next = *b;
	*b = f;
	return f;
}

/* Drop @f's record if it says nothing any more. */
static void file_gc(struct rklock *l, struct file *f)
{
	struct file **p;

	if (f->holders != NULL || f->lost_at != 0 || f->fence_token != 0 ||
	    f->uses != NULL)
		return;
	for (p = bucket(l, f->ino); *p != f; p = &(*p)->next)
		;
	*p = f->next;
	free(f->fence_text);
	free(f);
}

/* @f has no fence any more. */
static void fence_clear(struct rklock *l, struct file *f)
{
	f->fence_token = 0;
	f->fence_ino = 0;
	free(f->fence_text);
	f->fence_text = NULL;
	f->fence_len = 0;
	file_gc(l, f);
}

static struct holder *holder_find(struct file *f, uint8_t kind, uint64_t owner)
{
	for (struct holder *h = f ? f->holders : NULL; h != NULL; h = h->next)
		if (h->kind == kind && h->owner == owner)
			return h;
	return NULL;
}

static bool released(const struct rklock *l, uint64_t ino, uint8_t kind,
    uint64_t owner, uint64_t token);

/* (@kind, @owner) may hold a lock on @ino now, granted with @token. */
static void holder_add(struct rklock *l, uint64_t ino, uint8_t kind,
    uint64_t owner, uint64_t token)
{
	struct file *f;
	struct holder *h;

	if (released(l, ino, kind, owner, token))
		return; /* a grant released already */
	f = file_get(l, ino);
	if (f == NULL) {
		log_warnx("locks: out of memory recording a grant on inode "
		          "%" PRIu64,
		    ino);
		return;
	}
	if (token > f->token)
		f->token = token;
	h = holder_find(f, kind, owner);
	if (h == NULL) {
		h = calloc(1, sizeof(*h));
		if (h == NULL) {
			log_warnx("locks: out of memory recording a grant");
			return;
		}
		if (f->holders == NULL)
			l->nfiles_held++;
		h->kind = kind;
		h->owner = owner;
		h->next = f->holders;
		f->holders = h;
	}
	if (token > h->token)
		h->token = token;
}

/* The pair's generation: its newest token, 0 when not a holder (1 for a
 * holder whose token is unknown). */
static uint64_t holder_gen(struct rklock *l, uint64_t ino, uint8_t kind,
    uint64_t owner)
{
	struct holder *h = holder_find(file_find(l, ino), kind, owner);

	return h == NULL ? 0 : h->token ? h->token : 1;
}

/* The pair holds nothing any more, unless granted again since @gen (a
 * newer token: the handler and the listener report the same grant with
 * the same token, so only a new grant keeps it). */
static void holder_drop(struct rklock *l, uint64_t ino, uint8_t kind,
    uint64_t owner, uint64_t gen)
{
	struct file *f = file_find(l, ino);
	struct holder **p;

	if (f == NULL)
		return;
	for (p = &f->holders; *p != NULL; p = &(*p)->next) {
		struct holder *h = *p;

		if (h->kind != kind || h->owner != owner)
			continue;
		if ((h->token ? h->token : 1) != gen)
			return;
		l->gone[l->gone_next] = (struct gone){ ino, owner, h->token,
			kind };
		l->gone_next = (l->gone_next + 1) % GONE;
		*p = h->next;
		free(h);
		if (f->holders == NULL) {
			l->nfiles_held--;
			f->token = 0;
			file_gc(l, f);
		}
		return;
	}
}

/* Every file with holders is lost now (the session lost its locks). */
static void lose_all(struct rklock *l)
{
	uint64_t epoch = ++l->loss_epoch;

	for (unsigned i = 0; i < NBUCKETS; i++)
		for (struct file *f = l->files[i]; f != NULL; f = f->next) {
			if (f->holders == NULL)
				continue;
			while (f->holders != NULL) {
				struct holder *h = f->holders;

				f->holders = h->next;
				free(h);
			}
			f->lost_at = epoch;
			f->token = 0;
			l->nfiles_held--;
		}
}

/* ------------------------------------------------------------------ */
/* Waiters and jobs (l->mu held) */

static void waiter_unlink(struct rklock *l, struct waiter *w)
{
	for (struct waiter **p = &l->waiters; *p != NULL; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			return;
		}
}

static void job_push(struct rklock *l, struct waiter *w, int err)
{
	w->jerr = err;
	w->jnext = NULL;
	*l->jobs_tail = w;
	l->jobs_tail = &w->jnext;
	pthread_cond_broadcast(&l->cv);
}

static bool waiter_matches(const struct waiter *w, uint64_t ino,
    const struct kv_lock *k)
{
	if (w->rq.inode != ino || w->rq.kind != k->lkind ||
	    w->rq.owner != k->owner || w->rq.mode != k->lmode)
		return false;
	/* A POSIX grant may come merged with the owner's adjacent pieces. */
	return k->lkind == KV_LK_FLOCK ||
	    (k->start <= w->rq.start && w->rq.end <= k->end);
}

/*
 * Lock session @session lost every lock and wait it had (its lease ran
 * out, or it was evicted: the LOST event, a new session, a restored
 * snapshot that no longer holds its locks): if it is the current one,
 * every file held is lost; every wait that went out in it fails with
 * EIO (parked: answered now; being submitted: when its answer comes).
 * Waits not submitted yet go out in the next session, unharmed.
 */
static void session_lost(struct rklock *l, uint64_t session)
{
	if (session == 0)
		return;
	if (session == l->session)
		lose_all(l);
	/* Its owed unlocks are moot now: the worker drops them. */
	pthread_cond_broadcast(&l->cv);
	for (struct waiter *w = l->waiters, *next; w != NULL; w = next) {
		next = w->next;
		if (w->session != session)
			continue;
		w->lost = true;
		if (w->state == W_PARKED) {
			waiter_unlink(l, w);
			job_push(l, w, EIO);
		}
	}
}

static bool pair_in(const struct pair *p, uint64_t ino, uint8_t kind,
    uint64_t owner)
{
	for (; p != NULL; p = p->next)
		if (p->ino == ino && p->kind == kind && p->owner == owner)
			return true;
	return false;
}

/* Is a LOCK of (@ino, @kind, @owner) in flight or parked here? */
static bool requested(const struct rklock *l, uint64_t ino, uint8_t kind,
    uint64_t owner)
{
	for (const struct waiter *w = l->waiters; w != NULL; w = w->next)
		if (w->rq.inode == ino && w->rq.kind == kind &&
		    w->rq.owner == owner)
			return true;
	return pair_in(l->tries, ino, kind, owner);
}

/* Was the grant @token of the pair released here already? */
static bool released(const struct rklock *l, uint64_t ino, uint8_t kind,
    uint64_t owner, uint64_t token)
{
	for (unsigned i = 0; i < GONE; i++) {
		const struct gone *g = &l->gone[i];

		if (g->ino == ino && g->kind == kind && g->owner == owner &&
		    token <= g->token)
			return true;
	}
	return false;
}

/* The absolute CLOCK_REALTIME time @ms from now (condition waits). */
static void abs_after(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000l;
	if (ts->tv_nsec >= 1000000000l) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000l;
	}
}

/* Put a copy of @p (filled in but for its link and session) on
 * l->releases, owed in the current session; NULL when out of memory. */
static struct pair *release_queue(struct rklock *l, const struct pair *p)
{
	struct pair *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		log_warnx("locks: out of memory queueing an unlock");
		return NULL;
	}
	*q = *p;
	q->session = l->session;
	q->next = l->releases;
	l->releases = q;
	pthread_cond_broadcast(&l->cv);
	return q;
}

/* Queue the unlock of the orphan grant @k on @ino for the worker (a new
 * LOCK of that pair waits until it is done: release_wait()). */
static void release_push(struct rklock *l, uint64_t ino,
    const struct kv_lock *k)
{
	struct pair p = { .ino = ino,
		.owner = k->owner,
		.start = k->start,
		.end = k->end,
		.kind = k->lkind };

	release_queue(l, &p);
}

/* Take @p off l->releases and free it; waiters of the pair look again. */
static void release_remove(struct rklock *l, struct pair *p)
{
	struct pair **pp;

	for (pp = &l->releases; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	free(p);
	pthread_cond_broadcast(&l->cv);
}

/* Can a later try of an unlock that failed with @rv go through?  The
 * cluster out of reach or the outcome unknown (an UNLOCK_OWNER applied
 * twice with nothing granted between, release_wait(), is one): yes.  A
 * status the state machine answered (KV_ESESSION: the session, and its
 * locks with it, are gone; a refused command is refused again) or
 * -EINVAL: no. */
static bool release_can_clear(int rv)
{
	return rv == KV_EMAYBE || (rv < 0 && rv != -EINVAL);
}

/*
 * An attempt of the owed unlock @p ended with @rv (l->mu held).  Through:
 * the pair is dropped (unless granted again since @p->gen) and @p goes.
 * Failed with an error a retry can clear, in the session it is owed in:
 * the worker tries again after a pause (RETRY_FIRST_MS doubling up to
 * RETRY_MAX_MS); until then the pair is still recorded, and renewed, as
 * it may still hold.  Otherwise @p goes (its session ended: the cluster
 * dropped its locks with it; else they stay until the session ends, the
 * liveness gap a retry cannot close).  Returns 0 when through or
 * retried, else -EIO.
 */
static int release_settle(struct rklock *l, struct pair *p, int rv)
{
	const char *what = p->all ? "releasing the locks of a closed file"
	                          : "unlocking a grant no owner here holds";
	bool ours = p->session != 0 && p->session == l->session;

	p->inflight = false;
	if (rv == KV_OK) {
		if (p->all)
			holder_drop(l, p->ino, p->kind, p->owner, p->gen);
		if (p->tries > 0)
			log_info("locks: inode %" PRIu64 ": %s: done after %u "
			         "failed tries",
			    p->ino, what, p->tries);
		release_remove(l, p);
		return 0;
	}
	if (ours && !l->stop && release_can_clear(rv)) {
		unsigned shift = p->tries < 5 ? p->tries : 5;
		uint64_t pause = (uint64_t)RETRY_FIRST_MS << shift;

		if (p->tries++ == 0)
			log_warnx("locks: inode %" PRIu64 ": %s: %s (retried "
			          "until it goes through)",
			    p->ino, what, clerk_strerror(rv));
		p->due_ms = mono_ms() +
		    (pause < RETRY_MAX_MS ? pause : RETRY_MAX_MS);
		pthread_cond_broadcast(&l->cv);
		return 0;
	}
	if (!ours)
		log_info("locks: inode %" PRIu64 ": %s: not retried: the lock "
		         "session it was owed in ended (its locks went with "
		         "it)",
		    p->ino, what);
	else
		log_warnx("locks: inode %" PRIu64 ": %s: %s (not retried: "
		          "%s; held until the mount's lock session ends)",
		    p->ino, what, clerk_strerror(rv),
		    l->stop ? "stopping" : "a retry cannot clear it");
	release_remove(l, p);
	return -EIO;
}

/* An interrupt of a request in release_wait(): wake it (it looks at
 * fuse_req_interrupted()).  Registered before l->mu is taken: libfuse
 * calls it at once, in the registering thread, if the request was
 * interrupted already. */
static void on_release_interrupt(fuse_req_t req, void *data)
{
	struct rklock *l = data;

	(void)req;
	pthread_mutex_lock(&l->mu);
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

/*
 * Wait until no unlock of the pair is owed (l->mu held): a LOCK of it
 * must not go out before, or a retry of that unlock could drop the new
 * grant.  The owed unlock's next try is brought forward to now (its
 * pause may have grown to RETRY_MAX_MS while the cluster was away: it
 * may be back).  0, or -EIO (logged) when it is still owed after the
 * clerk's deadline (the cluster out of reach): the new lock fails rather
 * than hang; -EINTR if @req (on_release_interrupt() registered) was
 * interrupted meanwhile.  0 when stopping.
 */
static int release_wait(struct rklock *l, fuse_req_t req, uint64_t ino,
    uint8_t kind, uint64_t owner)
{
	struct timespec ts;
	bool timed_out = false;

	if (!pair_in(l->releases, ino, kind, owner))
		return 0;
	for (struct pair *p = l->releases; p != NULL; p = p->next)
		if (p->ino == ino && p->kind == kind && p->owner == owner &&
		    !p->inflight)
			p->due_ms = mono_ms();
	pthread_cond_broadcast(&l->cv); /* the worker: due now */
	abs_after(&ts, (uint64_t)l->copt.deadline_ms);
	while (!l->stop && pair_in(l->releases, ino, kind, owner)) {
		if (req != NULL && fuse_req_interrupted(req))
			return -EINTR;
		if (timed_out) {
			log_warnx("locks: inode %" PRIu64 ": a new lock of an "
			          "owner whose earlier release is still being "
			          "retried (no majority in reach?): EIO",
			    ino);
			return -EIO;
		}
		timed_out = pthread_cond_timedwait(&l->cv, &l->mu, &ts) ==
		    ETIMEDOUT;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The listener: apply order, inode table and state machine locked. */

static void on_event(void *arg, const struct kv_lock_event *ev)
{
	struct rklock *l = arg;

	pthread_mutex_lock(&l->mu);
	if (ev->type == KV_LOCK_EV_LOST) {
		/* Ours, current or earlier (waits of an evicted session may
		 * still be in flight). */
		if (ev->lock.session == l->session)
			log_warnx("locks: this mount's lock session lost its "
			          "locks (lease expired at index %" PRIu64 ")",
			    ev->index);
		session_lost(l, ev->lock.session);
		pthread_mutex_unlock(&l->mu);
		return;
	}
	if (l->session == 0 || ev->lock.session != l->session) {
		pthread_mutex_unlock(&l->mu);
		return;
	}
	if (ev->type == KV_LOCK_EV_GRANTED) {
		const struct kv_lock *k = &ev->lock;

		if (holder_find(file_find(l, ev->inode), k->lkind, k->owner) ==
		        NULL &&
		    !requested(l, ev->inode, k->lkind, k->owner)) {
			/* Granted to a pair that neither holds nor asks here:
			 * a request whose answer was given up (unknown
			 * outcome, a cancel that could not complete) after
			 * its owner released everything; or a grant released
			 * already.  Kept, it would be held (and kept alive)
			 * for an owner that may be gone: unlock it. */
			if (!released(l, ev->inode, k->lkind, k->owner,
			        k->token))
				release_push(l, ev->inode, k);
			pthread_mutex_unlock(&l->mu);
			return;
		}
		holder_add(l, ev->inode, ev->lock.lkind, ev->lock.owner,
		    ev->lock.token);
		for (struct waiter *w = l->waiters; w != NULL; w = w->next) {
			if (w->granted ||
			    !waiter_matches(w, ev->inode, &ev->lock))
				continue;
			w->granted = true;
			w->token = ev->lock.token;
			if (w->state == W_PARKED) {
				waiter_unlink(l, w);
				job_push(l, w, 0);
			}
			break;
		}
	}
	pthread_mutex_unlock(&l->mu);
}

/* ------------------------------------------------------------------ */
/* The lock clerk */

/* Make sure the clerk has a session and it is the one we know; a new
 * one (the old was evicted) means the old one's locks and waits are
 * lost.  With l->ckmu held; @w (may be NULL), a wait about to go out,
 * is stamped with the session it goes out in. */
static int sync_session(struct rklock *l, struct waiter *w)
{
	uint64_t s = 0;
	int rv;

	if (l->ck == NULL) {
		rv = clerk_new(&l->cl, &l->copt, &l->ck);
		if (rv != 0)
			return rv;
	}
	rv = clerk_session(l->ck, &s);
	if (rv != KV_OK)
		return rv;
	pthread_mutex_lock(&l->mu);
	if (s != l->session) {
		if (l->session != 0) {
			log_warnx("locks: new lock session %" PRIu64
			          " (the old one, %" PRIu64 ", was evicted)",
			    s, l->session);
			session_lost(l, l->session);
		}
		l->session = s;
	}
	if (w != NULL) {
		/* Goes out in @s now (again, after its session was evicted
		 * and refused it: then nothing of it applied there). */
		w->session = s;
		w->lost = false;
	}
	pthread_mutex_unlock(&l->mu);
	return KV_OK;
}

enum call {
	C_LOCK,
	C_LOCK_WAIT,
	C_UNLOCK,
	C_UNLOCK_OWNER,
	C_CANCEL,
	C_KEEPALIVE
};

/* One lock command through the lock clerk: a clerk status.  @w: the wait
 * a C_LOCK_WAIT is for (else NULL). */
static int call_locked(struct rklock *l, enum call c,
    const struct clerk_lock_req *rq, struct waiter *w, uint64_t *token,
    struct kv_lock *conflict)
{
	int rv = -EIO;

	/* The clerk is session_strict: when the session was evicted, the
	 * command is refused (KV_ESESSION, nothing applied) and the clerk
	 * forgets it; the next sync_session() registers a new one and
	 * forgets the old one's locks and waits BEFORE the command goes out
	 * again in the new one, so nothing granted in the new session is
	 * recorded under the old one (and then dropped as lost). */
	for (int round = 0; round < 2; round++) {
		rv = sync_session(l, w);
		if (rv != KV_OK)
			break;
		switch (c) {
		case C_LOCK:
		case C_LOCK_WAIT:
			rv = clerk_lock(l->ck, rq, c == C_LOCK_WAIT, token,
			    conflict);
			break;
		case C_UNLOCK:
			rv = clerk_unlock(l->ck, rq);
			break;
		case C_UNLOCK_OWNER:
			rv = clerk_unlock_owner(l->ck, rq);
			break;
		case C_CANCEL:
			rv = clerk_lock_cancel(l->ck, rq);
			break;
		case C_KEEPALIVE:
			rv = clerk_keepalive(l->ck);
			break;
		}
		if (rv != KV_ESESSION)
			break;
	}
	return rv;
}

/* call_locked() with l->ckmu taken. */
static int call(struct rklock *l, enum call c, const struct clerk_lock_req *rq,
    struct waiter *w, uint64_t *token, struct kv_lock *conflict)
{
	int rv;

	pthread_mutex_lock(&l->ckmu);
	rv = call_locked(l, c, rq, w, token, conflict);
	pthread_mutex_unlock(&l->ckmu);
	return rv;
}

static int lock_errno(int rv)
{
	switch (rv) {
	case KV_OK:
		return 0;
	case KV_ELOCKED:
		return -EAGAIN; /* == EWOULDBLOCK */
	case KV_ENOKEY:
		return -ENOENT;
	case KV_ENOSPC:
		return -ENOLCK;
	case -ENOMEM:
		return -ENOMEM;
	case -EINVAL:
		return -EINVAL;
	case -EINTR:
		return -EINTR; /* interrupted in release_wait() */
	default:
		return -EIO;
	}
}

/*
 * A lock on @ino was just granted to a request of this mount, about to
 * be answered.  With cache=relaxed, reads are served from the local
 * state without a barrier and from the kernel's page cache, so the new
 * holder could read the file as it was before the previous holder's
 * writes (committed before its unlock, hence before this grant, but
 * perhaps not applied here yet, or not yet dropped from the kernel's
 * cache by the notifier).  So: the next read or stat on this mount
 * passes a read barrier (as after a mutation of its own: fs->wgen), and
 * the kernel drops what it caches of the file now.  Strict mounts need
 * nothing: every read passes a barrier and the kernel caches nothing.
 */
static void grant_fresh(struct fs *fs, uint64_t ino)
{
	int rv;

	if (!fs->opt.relaxed || fs->se == NULL)
		return;
	__atomic_fetch_add(&fs->wgen, 1, __ATOMIC_ACQ_REL);
	/* Holding no lock: the kernel may wait for a request in flight
	 * (fs/notify.h). */
	rv = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	inode_lock(fs->inodes);
	inode_inval_result_locked(fs->inodes, ino, rv == 0);
	inode_unlock(fs->inodes);
}

/* ------------------------------------------------------------------ */
/* Threads */

/*
 * Cancel the interrupted wait @w (no longer in l->waiters' PARKED set:
 * state CANCEL) and answer it.  If the grant won the race, the wait
 * succeeds (the signal came too late): unlocking what was asked would
 * also drop what the owner held there before (POSIX merges its pieces
 * into the grant; a flock conversion replaced the old lock), and undoing
 * just the grant would need the owner's earlier state, which the mount
 * does not keep.  Otherwise EINTR, nothing changed.  When the outcome
 * cannot be learnt (the cluster out of reach), EINTR and the owner may
 * hold it: its close releases it.
 */
static void cancel_wait(struct rklock *l, struct waiter *w)
{
	struct fs *fs = l->fs;
	bool granted, lost;
	int rv = -EIO;

	for (int attempt = 0; attempt < 3 && rv != KV_OK; attempt++) {
		rv = call(l, C_CANCEL, &w->rq, NULL, NULL, NULL);
		/* Every grant before the CANCEL is in the local state (and
		 * was seen by the listener) once the barrier passed. */
		if (rv == KV_OK && rkfs_fresh(fs) != 0)
			rv = -EIO;
	}
	pthread_mutex_lock(&l->mu);
	granted = w->granted;
	lost = w->lost;
	waiter_unlink(l, w);
	if (rv != KV_OK && !granted && !lost)
		holder_add(l, w->rq.inode, w->rq.kind, w->rq.owner, 0);
	pthread_mutex_unlock(&l->mu);
	if (rv != KV_OK && !granted)
		log_warnx("locks: inode %" PRIu64 ": an interrupted wait could "
		          "not be cancelled; it may be granted (released at "
		          "close)",
		    w->rq.inode);
	if (granted && !lost)
		grant_fresh(fs, w->rq.inode);
	fuse_reply_err(w->req, granted ? (lost ? EIO : 0) : EINTR);
	free(w);
}

/*
 * The first owed unlock that is due and not in flight (one whose session
 * ended is due at once: it is only dropped), or NULL and *@ts the time
 * of the earliest due one (*@any: there is one) (l->mu held).
 */
static struct pair *release_due(struct rklock *l, struct timespec *ts,
    bool *any)
{
	uint64_t now = mono_ms(), next = UINT64_MAX;

	for (struct pair *p = l->releases; p != NULL; p = p->next) {
		if (p->inflight)
			continue;
		if (p->session != l->session || p->due_ms <= now)
			return p;
		if (p->due_ms < next)
			next = p->due_ms;
	}
	*any = next != UINT64_MAX;
	if (*any)
		abs_after(ts, next - now);
	return NULL;
}

/* Try the owed unlock @p once more (l->mu held, dropped across the
 * call); release_settle() decides what follows. */
static void run_release(struct rklock *l, struct pair *p)
{
	struct clerk_lock_req rq = { .inode = p->ino,
		.kind = p->kind,
		.owner = p->owner,
		.start = p->kind == KV_LK_POSIX && !p->all ? p->start : 0,
		.end = p->kind == KV_LK_POSIX && !p->all ? p->end : 0 };
	int rv = KV_ESESSION;

	if (p->session != 0 && p->session == l->session) {
		p->inflight = true;
		pthread_mutex_unlock(&l->mu);
		rv = call(l, p->all ? C_UNLOCK_OWNER : C_UNLOCK, &rq, NULL,
		    NULL, NULL);
		pthread_mutex_lock(&l->mu);
	}
	release_settle(l, p, rv);
}

static void *worker_main(void *arg)
{
	struct rklock *l = arg;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct pair *p = NULL;
		struct waiter *w;
		struct timespec ts;
		bool cancel, fresh, any = false;

		while (l->jobs == NULL && !l->stop &&
		    (p = release_due(l, &ts, &any)) == NULL) {
			if (any)
				pthread_cond_timedwait(&l->cv, &l->mu, &ts);
			else
				pthread_cond_wait(&l->cv, &l->mu);
		}
		if (l->jobs == NULL && (p == NULL || l->stop))
			break;
		if (l->jobs == NULL) {
			run_release(l, p);
			continue;
		}
		w = l->jobs;
		l->jobs = w->jnext;
		if (l->jobs == NULL)
			l->jobs_tail = &l->jobs;
		cancel = w->jerr < 0 && !l->stop;
		fresh = w->jerr == 0 && !l->stop; /* stopping: no kernel */
		if (!cancel)
			waiter_unlink(l, w);
		pthread_mutex_unlock(&l->mu);
		if (cancel) {
			cancel_wait(l, w);
		} else {
			if (fresh)
				grant_fresh(l->fs, w->rq.inode);
			fuse_reply_err(w->req, w->jerr < 0 ? EINTR : w->jerr);
			free(w);
		}
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static void *keeper_main(void *arg)
{
	struct rklock *l = arg;
	int64_t every_ms = l->lease_ns / 4 / 1000000;
	/* Idle (nothing held or asked), the session is still renewed, a
	 * quarter of the session TTL apart, so that the state machine does
	 * not evict a live mount's lock session between two uses. */
	uint64_t idle_ms = (uint64_t)(l->session_ttl_ns / 4 / 1000000);
	uint64_t last = mono_ms();

	if (every_ms < 50)
		every_ms = 50;
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		struct timespec ts;
		bool active;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += every_ms / 1000;
		ts.tv_nsec += (every_ms % 1000) * 1000000l;
		if (ts.tv_nsec >= 1000000000l) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000l;
		}
		pthread_cond_timedwait(&l->cv, &l->mu, &ts);
		if (l->stop)
			break;
		active = l->nfiles_held > 0 || l->waiters != NULL ||
		    (l->session != 0 && mono_ms() - last >= idle_ms);
		pthread_mutex_unlock(&l->mu);
		/* Only while this mount's member is connected to a majority
		 * (it confirms a read): a member cut off lets its lease run
		 * out even if its clerk could still reach the leader. */
		if (active && rkfs_fresh(l->fs) == 0) {
			int rv = call(l, C_KEEPALIVE, NULL, NULL, NULL, NULL);

			if (rv == KV_OK)
				last = mono_ms();
			else
				log_debug("locks: keepalive: %s",
				    clerk_strerror(rv));
		}
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Life cycle */

struct rklock *rklock_new(struct fs *fs, const struct cluster *cl,
    int deadline_ms, int prefer, int64_t lease_ns, int64_t session_ttl_ns)
{
	struct rklock *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->zctx = zmq_ctx_new();
	if (l->zctx == NULL) {
		free(l);
		return NULL;
	}
	l->fs = fs;
	l->cl = *cl;
	clerk_options_defaults(&l->copt);
	l->copt.deadline_ms = deadline_ms;
	l->copt.prefer_member = prefer;
	l->copt.zctx = l->zctx;
	l->copt.session_strict = true; /* call() switches sessions */
	l->lease_ns = lease_ns > 0 ? lease_ns : KV_LOCK_LEASE_NS;
	l->session_ttl_ns = session_ttl_ns > 0 ? session_ttl_ns
	                                       : KV_SESSION_TTL_NS;
	l->jobs_tail = &l->jobs;
	l->next_id = 1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->ckmu, NULL);
	pthread_cond_init(&l->cv, NULL);
	return l;
}

void rklock_fault_unlock_owner(struct rklock *l, const unsigned *ms, unsigned n)
{
	if (n > RKLOCK_FAULTS_MAX)
		n = RKLOCK_FAULTS_MAX;
	pthread_mutex_lock(&l->mu);
	memcpy(l->fault_ms, ms, n * sizeof(*ms));
	l->nfaults = n;
	l->fault_next = 0;
	pthread_mutex_unlock(&l->mu);
}

void rklock_attach(struct rklock *l, struct kv *kv)
{
	kv_set_lock_listener(kv, on_event, l);
}

/* A pair this mount may hold, re-checked after a restore. */
struct held {
	uint64_t ino, owner, gen;
	uint8_t kind;
};

/* The pairs @v[0..@n) lost their locks (unless granted again since they
 * were looked at): their files are lost.  Parked waits are re-checked by
 * the caller. */
static void lose_pairs(struct rklock *l, const struct held *v, size_t n)
{
	uint64_t epoch = ++l->loss_epoch;

	for (size_t i = 0; i < n; i++) {
		struct file *f = file_find(l, v[i].ino);
		struct holder *h = holder_find(f, v[i].kind, v[i].owner);

		if (h == NULL || h->token != v[i].gen)
			continue;
		holder_drop(l, v[i].ino, v[i].kind, v[i].owner, v[i].gen);
		f = file_get(l, v[i].ino); /* kept or made again */
		if (f != NULL)
			f->lost_at = epoch;
	}
}

#define SCAN_MAX 100000u /* GETLKs per pair, at most */

/* Does (@session, @h's owner) hold a lock of @h's kind on @h->ino in
 * @kv's table?  (When it cannot tell: yes.) */
static bool still_held(struct kv *kv, uint64_t session, const struct held *h)
{
	struct kv_result res;

	if (h->kind == KV_LK_FLOCK) {
		static char key[KV_KEY_MAX]; /* under the inode table lock */
		struct kv_op op = { .type = KV_OP_LOCK,
			.inode = h->ino,
			.lkind = KV_LK_FLOCK,
			.lmode = KV_LK_SHARED,
			.owner = h->owner };
		size_t klen;

		/* A LOCK names a key (cmd.h): the inode's current one. */
		if (kv_name_of(kv, h->ino, key, &klen, NULL) != 0)
			return true; /* no name left: cannot tell */
		op.key = key;
		op.keylen = (uint32_t)klen;
		kv_result_init(&res);
		if (kv_lock_wait(kv, session, &op, 0, &res) != 0)
			return true;
		return res.status == KV_OK;
	}
	/* POSIX: the held pieces over the file, as a stranger (session 0)
	 * sees them, until one of this pair.  A GETLK answers the first
	 * conflicting piece in the table's order, not the lowest one, so
	 * the ranges left and right of each answer are both looked at (a
	 * stack of ranges still to search). */
	struct span {
		uint64_t lo, hi;
	} stack[64];
	unsigned top = 0;

	stack[top++] = (struct span){ 0, KV_LK_EOF };
	for (unsigned n = 0; top > 0 && n < SCAN_MAX; n++) {
		struct span sp = stack[--top];
		struct kv_op op = { .type = KV_OP_GETLK,
			.inode = h->ino,
			.lkind = KV_LK_POSIX,
			.lmode = KV_LK_EXCL,
			.start = sp.lo,
			.end = sp.hi };

		kv_result_init(&res);
		if (kv_getlk(kv, 0, &op, &res) != 0)
			return true;
		if (res.status != KV_ELOCKED || !(res.flags & KV_RES_LOCK))
			continue; /* nothing held in [lo, hi] */
		if (res.lock.session == session && res.lock.owner == h->owner)
			return true;
		if (top + 2 > sizeof(stack) / sizeof(stack[0]))
			return true; /* cannot tell */
		if (res.lock.start > sp.lo)
			stack[top++] = (struct span){ sp.lo,
				res.lock.start - 1 };
		if (res.lock.end < sp.hi)
			stack[top++] = (struct span){ res.lock.end + 1, sp.hi };
	}
	return top > 0; /* gave up before the end: cannot tell */
}

/*
 * After a restore: the locks this mount holds that the restored table no
 * longer has were lost inside the snapshot (a lease that ran out, whose
 * LOST event is not replayed): mark their files and fail the session's
 * waits.  Only grants the snapshot covers are judged: a grant at log
 * index i has a token of at least i * 2^16 (kv.h, Tokens), so one whose
 * token >> 16 passes the restored index may be newer than the snapshot
 * (its handler heard the leader first); an unknown token (0) is kept.
 */
static void recheck_held(struct rklock *l, struct kv *kv)
{
	uint64_t applied = kv_applied_index(kv), session;
	struct held *v = NULL;
	size_t n = 0, cap = 0, lost = 0;

	pthread_mutex_lock(&l->mu);
	session = l->session;
	for (unsigned i = 0; session != 0 && i < NBUCKETS; i++)
		for (struct file *f = l->files[i]; f != NULL; f = f->next)
			for (struct holder *h = f->holders; h != NULL;
			     h = h->next) {
				if (h->token == 0 || h->token >> 16 > applied)
					continue;
				if (n == cap) {
					size_t nc = cap ? 2 * cap : 16;
					struct held *nv = realloc(v,
					    nc * sizeof(*v));

					if (nv == NULL)
						goto collected;
					v = nv;
					cap = nc;
				}
				v[n++] = (struct held){ f->ino, h->owner,
					h->token, h->kind };
			}
collected:
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < n; i++)
		if (!still_held(kv, session, &v[i]))
			v[lost++] = v[i];
	if (lost > 0) {
		pthread_mutex_lock(&l->mu);
		if (l->session == session) {
			log_warnx("locks: a restored snapshot no longer holds "
			          "%zu of this mount's locks: lost",
			    lost);
			lose_pairs(l, v, lost);
		}
		pthread_mutex_unlock(&l->mu);
	}
	free(v);
}

void rklock_restored(struct rklock *l, struct kv *kv)
{
	struct parked {
		uint64_t id;
		struct kv_op op;
	} *p = NULL;
	size_t n = 0, cap = 0;
	uint64_t session;

	pthread_mutex_lock(&l->mu);
	session = l->session;
	for (struct waiter *w = l->waiters; w != NULL; w = w->next) {
		if (w->state != W_PARKED)
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 16;
			struct parked *np = realloc(p, nc * sizeof(*p));

			if (np == NULL)
				break;
			p = np;
			cap = nc;
		}
		p[n].id = w->id;
		p[n].op = (struct kv_op){ .type = KV_OP_LOCK,
			.inode = w->rq.inode,
			.lkind = w->rq.kind,
			.lmode = w->rq.mode,
			.start = w->rq.start,
			.end = w->rq.end,
			.owner = w->rq.owner,
			.pid = w->rq.pid };
		n++;
	}
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < n; i++) {
		static char key[KV_KEY_MAX]; /* under the inode table lock */
		struct kv_result res;
		size_t klen;

		/* A LOCK names a key (cmd.h): the inode's current one
		 * (none left: cannot tell, the wait stays parked). */
		if (kv_name_of(kv, p[i].op.inode, key, &klen, NULL) != 0)
			continue;
		p[i].op.key = key;
		p[i].op.keylen = (uint32_t)klen;
		kv_result_init(&res);
		if (kv_lock_wait(kv, session, &p[i].op, 0, &res) != 0 ||
		    res.status == KV_EQUEUED)
			continue;
		pthread_mutex_lock(&l->mu);
		for (struct waiter *w = l->waiters; w != NULL; w = w->next) {
			if (w->id != p[i].id || w->state != W_PARKED)
				continue;
			waiter_unlink(l, w);
			if (res.status == KV_OK) {
				w->granted = true;
				holder_add(l, w->rq.inode, w->rq.kind,
				    w->rq.owner, res.attr.version);
			}
			job_push(l, w, res.status == KV_OK ? 0 : EIO);
			break;
		}
		pthread_mutex_unlock(&l->mu);
	}
	free(p);
	recheck_held(l, kv);
}

int rklock_start(struct rklock *l)
{
	int rv = pthread_create(&l->worker, NULL, worker_main, l);

	if (rv != 0)
		return -rv;
	rv = pthread_create(&l->keeper, NULL, keeper_main, l);
	if (rv != 0) {
		pthread_mutex_lock(&l->mu);
		l->stop = true;
		pthread_cond_broadcast(&l->cv);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->worker, NULL);
		return -rv;
	}
	l->started = true;
	return 0;
}

void rklock_stop(struct rklock *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	/* Parked waits: answered by the worker before it ends. */
	for (struct waiter *w = l->waiters, *next; w != NULL; w = next) {
		next = w->next;
		if (w->state == W_PARKED) {
			waiter_unlink(l, w);
			job_push(l, w, EINTR);
		}
	}
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (l->started) {
		pthread_join(l->worker, NULL);
		pthread_join(l->keeper, NULL);
		l->started = false;
	}
}

void rklock_free(struct rklock *l)
{
	if (l == NULL)
		return;
	rklock_stop(l);
	/* Whatever came after the worker ended (nobody to answer now). */
	while (l->jobs != NULL) {
		struct waiter *w = l->jobs;

		l->jobs = w->jnext;
		waiter_unlink(l, w);
		free(w);
	}
	while (l->waiters != NULL) {
		struct waiter *w = l->waiters;

		l->waiters = w->next;
		free(w);
	}
	while (l->releases != NULL) {
		struct pair *p = l->releases;

		l->releases = p->next;
		free(p);
	}
	for (unsigned i = 0; i < NBUCKETS; i++)
		while (l->files[i] != NULL) {
			struct file *f = l->files[i];

			l->files[i] = f->next;
			while (f->holders != NULL) {
				struct holder *h = f->holders;

				f->holders = h->next;
				free(h);
			}
			while (f->uses != NULL) {
				struct use *u = f->uses;

				f->uses = u->next;
				free(u);
			}
			free(f->fence_text);
			free(f);
		}
	clerk_free(l->ck);
	zmq_ctx_term(l->zctx);
	pthread_mutex_destroy(&l->mu);
	pthread_mutex_destroy(&l->ckmu);
	pthread_cond_destroy(&l->cv);
	free(l);
}

/* ------------------------------------------------------------------ */
/* Lock requests */

static void use_add(struct rklock *l, uint64_t ino, uint64_t fh,
    uint64_t owner);

static void on_interrupt(fuse_req_t req, void *data)
{
	struct rklock *l = of(req);
	uint64_t id = (uint64_t)(uintptr_t)data;

	pthread_mutex_lock(&l->mu);
	for (struct waiter *w = l->waiters; w != NULL; w = w->next) {
		if (w->id != id)
			continue;
		w->interrupted = true;
		if (w->state == W_PARKED && !w->granted) {
			w->state = W_CANCEL;
			job_push(l, w, -1);
		}
		break;
	}
	pthread_mutex_unlock(&l->mu);
}

/* Fill @rq's key, inode and pid for @ino (the key is copied to @key). */
static int prepare(fuse_req_t req, fuse_ino_t ino, struct clerk_lock_req *rq,
    char *key)
{
	struct fs *fs = rkfs_of(req);
	struct kv_attr a;
	size_t klen;
	int rv = rkfs_read_ino(fs, ino, key, &klen, &a);

	if (rv != 0)
		return rv;
	rq->key = key;
	rq->keylen = klen;
	rq->inode = ino;
	if (rq->pid == 0)
		rq->pid = (uint32_t)fuse_req_ctx(req)->pid;
	return 0;
}

/* Take the lock @rq (FLOCK or POSIX) for @req and answer it. */
static void do_lock(fuse_req_t req, fuse_ino_t ino, struct clerk_lock_req *rq,
    bool wait)
{
	struct rklock *l = of(req);
	char key[KV_KEY_MAX + 1];
	struct waiter *w = NULL;
	uint64_t token = 0;
	int rv = -EIO;

	for (int attempt = 0; attempt < 3; attempt++) {
		rv = prepare(req, ino, rq, key);
		if (rv != 0)
			break;
		if (!wait) {
			struct pair me = { .ino = ino,
				.owner = rq->owner,
				.kind = rq->kind };

			fuse_req_interrupt_func(req, on_release_interrupt, l);
			pthread_mutex_lock(&l->mu);
			rv = release_wait(l, req, ino, rq->kind, rq->owner);
			if (rv != 0) {
				pthread_mutex_unlock(&l->mu);
				break;
			}
			me.next = l->tries;
			l->tries = &me;
			pthread_mutex_unlock(&l->mu);
			rv = call(l, C_LOCK, rq, NULL, &token, NULL);
			pthread_mutex_lock(&l->mu);
			for (struct pair **pp = &l->tries; *pp != NULL;
			     pp = &(*pp)->next)
				if (*pp == &me) {
					*pp = me.next;
					break;
				}
			/* Unknown outcome: it may hold, so its close unlocks. */
			if (rv == KV_OK || rv == KV_EMAYBE)
				holder_add(l, ino, rq->kind, rq->owner, token);
			pthread_mutex_unlock(&l->mu);
			if (rv != KV_ENOKEY) /* a rename raced: again */
				break;
			continue;
		}
		w = calloc(1, sizeof(*w));
		if (w == NULL) {
			rv = -ENOMEM;
			break;
		}
		fuse_req_interrupt_func(req, on_release_interrupt, l);
		pthread_mutex_lock(&l->mu);
		rv = release_wait(l, req, ino, rq->kind, rq->owner);
		if (rv != 0) {
			pthread_mutex_unlock(&l->mu);
			free(w);
			w = NULL;
			break;
		}
		w->id = l->next_id++;
		w->req = req;
		w->rq = *rq;
		w->rq.key = NULL; /* borrowed: not valid later */
		w->rq.keylen = 0;
		w->state = W_SUBMIT;
		w->next = l->waiters;
		l->waiters = w;
		pthread_mutex_unlock(&l->mu);
		fuse_req_interrupt_func(req, on_interrupt,
		    (void *)(uintptr_t)w->id);
		rv = call(l, C_LOCK_WAIT, rq, w, &token, NULL);
		pthread_mutex_lock(&l->mu);
		if ((rv == KV_OK || w->granted) && w->lost) {
			/* Lost with its session.  If the LOCK landed after
			 * that session's LOST event, in it (still ours), the
			 * grant is live and the listener recorded it: give
			 * it back and forget it, or the keeper would renew a
			 * lock its owner is told it does not have.  (Granted
			 * before the loss, lose_all() dropped the record and
			 * the state machine the lock.) */
			bool live = w->session == l->session;
			uint64_t gen = holder_gen(l, ino, rq->kind, rq->owner);

			waiter_unlink(l, w);
			pthread_mutex_unlock(&l->mu);
			free(w);
			w = NULL;
			if (live && gen != 0 &&
			    call(l, C_UNLOCK, rq, NULL, NULL, NULL) == KV_OK) {
				pthread_mutex_lock(&l->mu);
				holder_drop(l, ino, rq->kind, rq->owner, gen);
				pthread_mutex_unlock(&l->mu);
			}
			rv = -EIO;
			break;
		}
		if (rv == KV_OK || w->granted) {
			waiter_unlink(l, w);
			holder_add(l, ino, rq->kind, rq->owner,
			    token ? token : w->token);
			pthread_mutex_unlock(&l->mu);
			free(w);
			w = NULL;
			rv = KV_OK;
			break;
		}
		if (rv == KV_EQUEUED) {
			if (w->lost) {
				waiter_unlink(l, w);
				pthread_mutex_unlock(&l->mu);
				free(w);
				w = NULL;
				rv = -EIO;
				break;
			}
			if (w->interrupted) {
				w->state = W_CANCEL;
				pthread_mutex_unlock(&l->mu);
				cancel_wait(l, w);
				return;
			}
			w->state = W_PARKED; /* answered by the worker */
			pthread_mutex_unlock(&l->mu);
			return;
		}
		waiter_unlink(l, w);
		if (rv == KV_EMAYBE) /* may be queued: the close cleans up */
			holder_add(l, ino, rq->kind, rq->owner, 0);
		pthread_mutex_unlock(&l->mu);
		free(w);
		w = NULL;
		if (rv != KV_ENOKEY)
			break;
	}
	if (rv == KV_OK)
		grant_fresh(rkfs_of(req), ino);
	fuse_reply_err(req, -lock_errno(rv));
}

static void do_unlock(fuse_req_t req, fuse_ino_t ino, struct clerk_lock_req *rq,
    bool whole)
{
	struct rklock *l = of(req);
	uint64_t gen;
	int rv, committed;

	/* What this mount wrote under the lock is committed before anyone
	 * else can take it. */
	committed = rkfile_flush_ino(rkfs_of(req), ino);
	rq->inode = ino; /* no key: the inode names the lock */
	pthread_mutex_lock(&l->mu);
	gen = holder_gen(l, ino, rq->kind, rq->owner);
	pthread_mutex_unlock(&l->mu);
	if (gen == 0) {
		/* Never held here: nothing to release (a lock of this owner
		 * could only have come through this mount). */
		bool waiting = false;

		pthread_mutex_lock(&l->mu);
		for (struct waiter *w = l->waiters; w != NULL; w = w->next)
			waiting |= w->rq.inode == ino &&
			    w->rq.owner == rq->owner && w->rq.kind == rq->kind;
		pthread_mutex_unlock(&l->mu);
		if (!waiting) {
			fuse_reply_err(req, committed < 0 ? -committed : 0);
			return;
		}
	}
	rv = call(l, C_UNLOCK, rq, NULL, NULL, NULL);
	if (rv == KV_OK && whole) {
		pthread_mutex_lock(&l->mu);
		holder_drop(l, ino, rq->kind, rq->owner, gen);
		pthread_mutex_unlock(&l->mu);
	}
	rv = lock_errno(rv);
	fuse_reply_err(req, committed < 0 ? -committed : -rv);
}

static int check_fh(struct fs *fs, fuse_ino_t ino, struct fuse_file_info *fi)
{
	return rklock_check(fs, ino, rkfile_fh_epoch(fi->fh));
}

void rklock_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
    int op)
{
	struct clerk_lock_req rq = { .kind = KV_LK_FLOCK,
		.owner = fi->lock_owner };
	int rv;

	switch (op & ~LOCK_NB) {
	case LOCK_UN:
		do_unlock(req, ino, &rq, true);
		return;
	case LOCK_SH:
		rq.mode = KV_LK_SHARED;
		break;
	case LOCK_EX:
		rq.mode = KV_LK_EXCL;
		break;
	default:
		fuse_reply_err(req, EINVAL);
		return;
	}
	rv = check_fh(rkfs_of(req), ino, fi);
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	do_lock(req, ino, &rq, (op & LOCK_NB) == 0);
}

/* @rq's range from @lock (libfuse: l_whence SEEK_SET, l_len >= 0, 0 = to
 * the end of the file).  0 or -EINVAL. */
static int range_of(const struct flock *lock, struct clerk_lock_req *rq)
{
	if (lock->l_start < 0 || lock->l_len < 0)
		return -EINVAL;
	rq->start = (uint64_t)lock->l_start;
	rq->end = lock->l_len == 0
	    ? KV_LK_EOF
	    : (uint64_t)lock->l_start + (uint64_t)lock->l_len - 1;
	return 0;
}

void rklock_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
    struct flock *lock, int sleep)
{
	struct clerk_lock_req rq = { .kind = KV_LK_POSIX,
		.owner = fi->lock_owner,
		.pid = lock->l_pid > 0 ? (uint32_t)lock->l_pid : 0 };
	int rv = range_of(lock, &rq);

	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	switch (lock->l_type) {
	case F_UNLCK:
		do_unlock(req, ino, &rq, rq.start == 0 && rq.end == KV_LK_EOF);
		return;
	case F_RDLCK:
		rq.mode = KV_LK_SHARED;
		break;
	case F_WRLCK:
		rq.mode = KV_LK_EXCL;
		break;
	default:
		fuse_reply_err(req, EINVAL);
		return;
	}
	rv = check_fh(rkfs_of(req), ino, fi);
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	use_add(of(req), ino, fi->fh, rq.owner);
	do_lock(req, ino, &rq, sleep != 0);
}

void rklock_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
    struct flock *lock)
{
	struct rklock *l = of(req);
	struct fs *fs = rkfs_of(req);
	struct kv_op op = { .type = KV_OP_GETLK,
		.inode = ino,
		.lkind = KV_LK_POSIX,
		.owner = fi->lock_owner };
	struct clerk_lock_req rq = { 0 };
	struct kv_result res;
	uint64_t session;
	int rv = range_of(lock, &rq);

	if (rv == 0 && lock->l_type != F_RDLCK && lock->l_type != F_WRLCK)
		rv = -EINVAL;
	if (rv == 0)
		rv = rkfs_fresh(fs);
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	op.lmode = lock->l_type == F_RDLCK ? KV_LK_SHARED : KV_LK_EXCL;
	op.start = rq.start;
	op.end = rq.end;
	pthread_mutex_lock(&l->mu);
	session = l->session;
	pthread_mutex_unlock(&l->mu);
	kv_result_init(&res);
	rv = kv_getlk(fs->kv, session, &op, &res);
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	if (res.status == KV_ELOCKED && (res.flags & KV_RES_LOCK)) {
		lock->l_type = res.lock.lmode == KV_LK_EXCL ? F_WRLCK : F_RDLCK;
		lock->l_whence = SEEK_SET;
		/* Ranges set by other clients (the CLI can name any u64)
		 * may not fit an off_t: clamp, "to EOF" beyond it. */
		lock->l_start = res.lock.start > (uint64_t)INT64_MAX
		    ? INT64_MAX
		    : (off_t)res.lock.start;
		lock->l_len = res.lock.end == KV_LK_EOF ||
		        res.lock.end >= (uint64_t)INT64_MAX
		    ? 0
		    : (off_t)(res.lock.end - res.lock.start + 1);
		lock->l_pid = (pid_t)res.lock.pid;
	} else if (res.status == KV_OK || res.status == KV_ELOCKED) {
		lock->l_type = F_UNLCK;
	} else {
		fuse_reply_err(req, -lock_errno(res.status));
		return;
	}
	fuse_reply_lock(req, lock);
}

/* ------------------------------------------------------------------ */
/* Close, open, checks */

/* A release of a pair's locks and waits on an inode (drop_begin()). */
struct drop {
	uint64_t ino, owner, gen;
	uint8_t kind;
	struct pair *owed; /* on l->releases, in flight (NULL: tried once) */
};

/*
 * Start releasing (@kind, @owner)'s locks and waits on @ino (l->mu held):
 * false when it may have none here (nothing to send).  With @retry the
 * release goes on l->releases, in flight, now, before anything is sent:
 * from here on a new LOCK of the pair waits (release_wait()) until the
 * release is over, retries included, so none can drop a newer grant.
 * The session it is owed in is the one known now.
 */
static bool drop_begin(struct rklock *l, uint64_t ino, uint8_t kind,
    uint64_t owner, bool retry, struct drop *d)
{
	bool waiting = false;

	*d = (struct drop){ .ino = ino, .owner = owner, .kind = kind };
	d->gen = holder_gen(l, ino, kind, owner);
	for (struct waiter *w = l->waiters; w != NULL; w = w->next)
		waiting |= w->rq.inode == ino && w->rq.owner == owner &&
		    w->rq.kind == kind;
	if (d->gen == 0 && !waiting)
		return false;
	if (retry && l->session != 0) {
		struct pair p = { .ino = ino,
			.owner = owner,
			.kind = kind,
			.all = true,
			.inflight = true,
			.gen = d->gen };

		d->owed = release_queue(l, &p); /* NULL: tried once */
	}
	return true;
}

/* The first attempt of the release @d (UNLOCK_OWNER).  0 when it went
 * through or is owed (retried by the worker), else -EIO. */
static int drop_run(struct rklock *l, const struct drop *d)
{
	struct clerk_lock_req rq = { .inode = d->ino,
		.kind = d->kind,
		.owner = d->owner };
	bool fault;
	unsigned ms = 0;
	int rv;

	pthread_mutex_lock(&l->mu);
	fault = l->fault_next < l->nfaults;
	if (fault)
		ms = l->fault_ms[l->fault_next++];
	pthread_mutex_unlock(&l->mu);
	if (fault) {
		/* Tests: as slow as a call that gets no answer (but not
		 * holding the clerk: the keeper renews meanwhile), and as
		 * failed. */
		struct timespec ts = { (time_t)(ms / 1000),
			(long)(ms % 1000) * 1000000l };

		log_warnx("locks: fault injection: an UNLOCK_OWNER on inode "
		          "%" PRIu64 " fails after %u ms, not sent",
		    d->ino, ms);
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		rv = CLERK_EUNAVAILABLE;
	} else {
		rv = call(l, C_UNLOCK_OWNER, &rq, NULL, NULL, NULL);
	}
	pthread_mutex_lock(&l->mu);
	if (d->owed != NULL) {
		rv = release_settle(l, d->owed, rv);
	} else if (rv == KV_OK) {
		holder_drop(l, d->ino, d->kind, d->owner, d->gen);
	} else {
		log_warnx("locks: inode %" PRIu64 ": releasing the locks of a "
		          "closed file: %s",
		    d->ino, clerk_strerror(rv));
		rv = -EIO;
	}
	pthread_mutex_unlock(&l->mu);
	return rv;
}

/* Release (kind, owner)'s locks and waits on @ino, if it may have any:
 * retried until it goes through when @retry (drop_begin()). */
static int drop_owner(struct rklock *l, uint64_t ino, uint8_t kind,
    uint64_t owner, bool retry)
{
	struct drop d;
	bool some;

	pthread_mutex_lock(&l->mu);
	some = drop_begin(l, ino, kind, owner, retry, &d);
	pthread_mutex_unlock(&l->mu);
	return some ? drop_run(l, &d) : 0;
}

/* A flush is not retried: the process lives on and its close answers
 * the error; the release of the last open file it locked through tries
 * again (retried). */
int rklock_flush(struct fs *fs, uint64_t ino, uint64_t owner)
{
	return drop_owner(fs->locks, ino, KV_LK_POSIX, owner, false);
}

/* The POSIX owner @owner asks for a lock on @ino through the open file
 * @fh: remembered until @fh is released (release_owners()). */
static void use_add(struct rklock *l, uint64_t ino, uint64_t fh, uint64_t owner)
{
	struct file *f;
	struct use *u;

	pthread_mutex_lock(&l->mu);
	f = file_get(l, ino);
	for (u = f ? f->uses : NULL; u != NULL; u = u->next)
		if (u->fh == fh && u->owner == owner)
			break;
	if (f != NULL && u == NULL) {
		u = calloc(1, sizeof(*u));
		if (u != NULL) {
			u->fh = fh;
			u->owner = owner;
			u->next = f->uses;
			f->uses = u;
		} else {
			log_warnx("locks: out of memory recording a lock "
			          "owner");
		}
	}
	pthread_mutex_unlock(&l->mu);
}

/*
 * The open file @fh of @ino is released (its last reference went).  The
 * POSIX owners that locked through it and through no other open file of
 * @ino on this mount release their locks there now.  For an OFD lock
 * (F_OFD_SETLK) the owner is the open file itself, and the kernel does
 * not unlock it at close through FUSE: this is where it goes.  A
 * classic POSIX owner (a process' descriptor table) was already
 * unlocked by the flush of the close (nothing left: no command), unless
 * it also locked through another open file still open, which keeps it.
 * Each release is owed (drop_begin()) in the same hold of l->mu that
 * finds its owner, so a LOCK the owner sends meanwhile through another
 * open file (recorded, use_add(), before it goes out) is either seen
 * here (the owner is kept) or waits for the release, retries included.
 */
static int release_owners(struct rklock *l, uint64_t ino, uint64_t fh)
{
	struct drop *gone = NULL;
	size_t n = 0, cap = 0;
	struct file *f;
	bool used = false;
	int rv = 0;

	/* Nothing can add a use for @fh now: release is the last request
	 * of this open file. */
	pthread_mutex_lock(&l->mu);
	f = file_find(l, ino);
	for (struct use *u = f ? f->uses : NULL; u != NULL && !used;
	     u = u->next)
		used = u->fh == fh;
	pthread_mutex_unlock(&l->mu);
	if (!used)
		return 0;
	pthread_mutex_lock(&l->mu);
	f = file_find(l, ino);
	for (struct use **p = f ? &f->uses : NULL; p != NULL && *p != NULL;) {
		struct use *u = *p;
		bool other = false;

		if (u->fh != fh) {
			p = &u->next;
			continue;
		}
		*p = u->next;
		for (struct use *o = f->uses; o != NULL; o = o->next)
			other |= o->owner == u->owner;
		if (!other && n == cap) {
			size_t nc = cap ? 2 * cap : 4;
			struct drop *nv = realloc(gone, nc * sizeof(*nv));

			if (nv != NULL) {
				gone = nv;
				cap = nc;
			}
		}
		if (!other && n < cap &&
		    drop_begin(l, ino, KV_LK_POSIX, u->owner, true, &gone[n]))
			n++;
		free(u);
	}
	if (f != NULL)
		file_gc(l, f);
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < n; i++) {
		int r = drop_run(l, &gone[i]);

		if (r != 0)
			rv = r;
	}
	free(gone);
	return rv;
}

int rklock_release(struct fs *fs, uint64_t ino, const struct fuse_file_info *fi,
    bool last)
{
	struct rklock *l = fs->locks;
	int rv = 0, r;

	if (fi->flock_release)
		rv = drop_owner(l, ino, KV_LK_FLOCK, fi->lock_owner, true);
	r = release_owners(l, ino, fi->fh);
	if (rv == 0)
		rv = r;
	if (last) {
		pthread_mutex_lock(&l->mu);
		struct file *f = file_find(l, ino);

		/* No descriptor opened before a loss is left here: the
		 * loss mark has nobody to fail any more (a new open records
		 * the current epoch), so the record can go. */
		if (f != NULL) {
			f->lost_at = 0;
			if (f->fence_token != 0)
				fence_clear(l, f); /* and gc */
			else
				file_gc(l, f);
		}
		pthread_mutex_unlock(&l->mu);
	}
	return rv;
}

uint64_t rklock_epoch(struct fs *fs)
{
	struct rklock *l = fs->locks;
	uint64_t e;

	if (l == NULL)
		return 0;
	pthread_mutex_lock(&l->mu);
	e = l->loss_epoch;
	pthread_mutex_unlock(&l->mu);
	return e;
}

int rklock_check(struct fs *fs, uint64_t ino, uint64_t epoch)
{
	struct rklock *l = fs->locks;
	struct file *f;
	int rv = 0;

	if (l == NULL)
		return 0;
	pthread_mutex_lock(&l->mu);
	if (l->loss_epoch > epoch) {
		f = file_find(l, ino);
		if (f != NULL && f->lost_at > epoch)
			rv = -EIO;
	}
	pthread_mutex_unlock(&l->mu);
	return rv;
}

bool rklock_fence_txn(struct fs *fs, uint64_t ino, struct rkfs_txn *t)
{
	struct rklock *l = fs->locks;
	uint64_t token = 0, on = 0;
	struct file *f;
	struct kv_op *op;

	if (l == NULL)
		return false;
	pthread_mutex_lock(&l->mu);
	f = file_find(l, ino);
	if (f != NULL) {
		token = f->fence_token;
		on = f->fence_ino;
	}
	pthread_mutex_unlock(&l->mu);
	if (token == 0)
		return false;
	op = rkfs_txn_op(t, KV_OP_FENCE, NULL, 0);
	op->flags = 0;
	op->inode = on;
	op->token = token;
	return true;
}

/* ------------------------------------------------------------------ */
/* Extended attributes */

static void reply_bytes(fuse_req_t req, const char *s, size_t n, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, n);
	else if (size < n)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, s, n);
}

bool rklock_xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name,
    size_t size)
{
	struct rklock *l = of(req);
	char text[64] = "", *copy = NULL;
	size_t n = 0;
	struct file *f;
	int rv = 0;

	if (strcmp(name, RKLOCK_XATTR_TOKEN) != 0 &&
	    strcmp(name, RKLOCK_XATTR_FENCE) != 0)
		return false;
	pthread_mutex_lock(&l->mu);
	f = file_find(l, ino);
	if (f != NULL && strcmp(name, RKLOCK_XATTR_TOKEN) == 0 &&
	    f->holders != NULL && f->token != 0) {
		snprintf(text, sizeof(text), "%" PRIu64, f->token);
		n = strlen(text);
		copy = text;
	} else if (f != NULL && strcmp(name, RKLOCK_XATTR_FENCE) == 0 &&
	    f->fence_token != 0) {
		/* Exactly the bytes set. */
		n = f->fence_len;
		copy = malloc(n ? n : 1);
		if (copy == NULL)
			rv = -ENOMEM;
		else
			memcpy(copy, f->fence_text, n);
	}
	pthread_mutex_unlock(&l->mu);
	if (rv != 0)
		fuse_reply_err(req, -rv);
	else if (copy == NULL)
		fuse_reply_err(req, ENODATA);
	else
		reply_bytes(req, copy, n, size);
	if (copy != text)
		free(copy);
	return true;
}

/* Parse "TOKEN" or "TOKEN /PATH" for @ino into the lock's inode ("/" is
 * the mount's root, trailing slashes are ignored). */
static int parse_fence(struct fs *fs, fuse_ino_t ino, const char *value,
    size_t size, uint64_t *token, uint64_t *on)
{
	char text[KV_KEY_MAX + 32], *sp;
	struct kv_attr a;
	size_t plen;
	int rv;

	if (size == 0 || size >= sizeof(text))
		return -EINVAL;
	memcpy(text, value, size);
	text[size] = '\0';
	if (strlen(text) != size)
		return -EINVAL; /* a NUL inside */
	while (size > 0 && (text[size - 1] == '\n' || text[size - 1] == ' '))
		text[--size] = '\0';
	sp = strchr(text, ' ');
	if (sp != NULL)
		*sp++ = '\0';
	if (num_parse_u64(text, 10, 1, UINT64_MAX, token) != 0)
		return -EINVAL;
	*on = ino;
	if (sp == NULL)
		return 0;
	while (*sp == ' ')
		sp++;
	if (*sp != '/')
		return -EINVAL;
	plen = strlen(sp);
	while (plen > 0 && sp[plen - 1] == '/')
		plen--; /* "/" is the root: the empty key */
	rv = rkfs_fresh(fs);
	if (rv != 0)
		return rv;
	inode_lock(fs->inodes);
	rv = rkfs_get_key_locked(fs, sp, plen, &a);
	inode_unlock(fs->inodes);
	if (rv != 0)
		return rv;
	*on = a.inode;
	return 0;
}

bool rklock_xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name,
    const char *value, size_t size, int flags)
{
	struct rklock *l = of(req);
	struct fs *fs = rkfs_of(req);
	uint64_t token = 0, on = 0;
	struct file *f;
	char *text = NULL;
	int rv;

	if (strcmp(name, RKLOCK_XATTR_TOKEN) == 0) {
		/* read only */
		fuse_reply_err(req, fs->opt.ro ? EROFS : EPERM);
		return true;
	}
	if (strcmp(name, RKLOCK_XATTR_FENCE) != 0)
		return false;
	if (fs->opt.ro) {
		fuse_reply_err(req, EROFS);
		return true;
	}
	rv = parse_fence(fs, ino, value, size, &token, &on);
	if (rv == 0) {
		text = malloc(size);
		if (text == NULL)
			rv = -ENOMEM;
		else
			memcpy(text, value, size);
	}
	if (rv == 0) {
		pthread_mutex_lock(&l->mu);
		f = file_get(l, ino);
		if (f == NULL) {
			rv = -ENOMEM;
		} else if ((flags & XATTR_CREATE) && f->fence_token != 0) {
			rv = -EEXIST;
		} else if ((flags & XATTR_REPLACE) && f->fence_token == 0) {
			rv = -ENODATA;
			file_gc(l, f);
		} else {
			free(f->fence_text);
			f->fence_token = token;
			f->fence_ino = on;
			f->fence_text = text;
			f->fence_len = size;
			text = NULL;
		}
		pthread_mutex_unlock(&l->mu);
	}
	free(text);
	fuse_reply_err(req, -rv);
	return true;
}

bool rklock_xattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct rklock *l = of(req);
	struct fs *fs = rkfs_of(req);
	struct file *f;
	int rv = -ENODATA;

	if (strcmp(name, RKLOCK_XATTR_TOKEN) == 0) {
		fuse_reply_err(req, fs->opt.ro ? EROFS : EPERM);
		return true;
	}
	if (strcmp(name, RKLOCK_XATTR_FENCE) != 0)
		return false;
	if (fs->opt.ro) {
		fuse_reply_err(req, EROFS);
		return true;
	}
	pthread_mutex_lock(&l->mu);
	f = file_find(l, ino);
	if (f != NULL && f->fence_token != 0) {
		fence_clear(l, f);
		rv = 0;
	}
	pthread_mutex_unlock(&l->mu);
	fuse_reply_err(req, -rv);
	return true;
}
