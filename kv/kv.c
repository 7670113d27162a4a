/*
 * kv.c - the KV state machine: applies commands to the key space and the
 * session table, deterministically (the contract is in kv.h).
 *
 * Apply, step by step (kv_apply):
 *
 *   decode ──malformed──> ErrMalformed, only the applied index moves
 *     │
 *   now = max(committed clock, command time)
 *     │
 *   election grace: a clock jump over KV_CLOCK_GAP_NS moves every
 *   session's last activity by the jump (kv.h, LOCKS)
 *     │
 *   lock leases past their end expire (locktab.h), waiters granted
 *     │
 *   session check (mutations with a client id)
 *     ├─ DUP ────> stored result, touch the session
 *     ├─ STALE / UNKNOWN ──> ErrStale / ErrSession
 *     └─ NEW
 *          │
 *   execute (kvexec_op, or kvexec_txn with an undo log: kvexec.c; lock
 *            commands and a txn's FENCE ops: kvlock.c)
 *     ├─ -ENOMEM ──> nothing changed at all; return -ENOMEM
 *     └─ done: record the result in the session
 *          │
 *   commit the clock, expire idle sessions (their locks go too: the
 *   session table's eviction hook), advance the applied index, wake lock
 *   waiters (kv_lock_wait) if the lock table's generation moved
 *
 * The execution step (what each command does to the key space, and the
 * undo log that makes a txn all-or-nothing) is kvexec.c; this file is the
 * dispatch around it: the lock, decoding, the clock, the session table,
 * snapshots and the local reads.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/keyspace.h"
#include "kv/kv.h"
#include "kv/kvexec.h"
#include "kv/kvlock.h"
#include "kv/kvsnap.h"
#include "kv/locktab.h"
#include "kv/opentab.h"
#include "kv/session.h"
#include "raft/util/clock.h"

struct kv {
	pthread_rwlock_t lock;
	struct kvexec_state space; /* the key space and the inode counter */
	struct session_table *sessions;
	struct locktab *locks;
	struct opentab *opens; /* the open table (kv.h, OPENS) */
	uint64_t applied_index;
	int64_t clock_ns; /* committed clock: max time_ns applied */
	struct kv_options opt;
	uint64_t apply_index; /* of the apply running (eviction hook) */
	/* The sessions holding opens that session_expire() evicted in the
	 * apply running: their pairs go in one pass after it (scratch). */
	uint64_t *evicted;
	size_t nevicted, evcap;
	bool collect;
	kv_lock_listener listener; /* under the write lock */
	void *listener_arg;
	/* Lock waiters (kv_lock_wait) sleep on @wake until @lock_seq moves:
	 * bumped by every apply that changed the lock table (its
	 * generation moved). */
	pthread_mutex_t wake_mu;
	pthread_cond_t wake;
	uint64_t lock_seq;
	int waiters; /* kv_lock_wait() calls blocked (under wake_mu) */
	bool no_waits; /* kv_lock_wait_shutdown() (under wake_mu) */
};

/* locktab's events, handed to the listener of the moment. */
static void lock_event(void *arg, const struct kv_lock_event *ev)
{
	struct kv *kv = arg;

	if (kv->listener != NULL)
		kv->listener(kv->listener_arg, ev);
}

/* The lock table's clock: a session's last activity, as the session
 * table has it (the one record of it). */
static int64_t session_time_of(void *arg, uint64_t client)
{
	struct kv *kv = arg;

	return session_time(kv->sessions, client);
}

/* The session table evicted @client (TTL, capacity): its locks go, in
 * the apply that evicted it. */
static void session_evicted(void *arg, uint64_t client)
{
	struct kv *kv = arg;

	locktab_drop_session(kv->locks, client, kv->apply_index);
	if (kv->collect && opentab_session_count(kv->opens, client) > 0) {
		if (kv->nevicted == kv->evcap) {
			size_t ncap = kv->evcap ? kv->evcap * 2 : 64;
			uint64_t *nv = realloc(kv->evicted, ncap * sizeof(*nv));

			if (nv == NULL) { /* the same result, slower */
				opentab_drop_session(kv->opens, client);
				return;
			}
			kv->evicted = nv;
			kv->evcap = ncap;
		}
		kv->evicted[kv->nevicted++] = client;
		return;
	}
	opentab_drop_session(kv->opens, client);
}

/* The compares KV_VERSION_OPEN/NOTOPEN ask the open table (kvexec.c). */
static bool inode_open(void *arg, uint64_t inode)
{
	struct kv *kv = arg;

	return opentab_is_open(kv->opens, inode);
}

/* Hook @kv's (new) tables to each other and to @kv. */
static void wire_tables(struct kv *kv)
{
	locktab_set_events(kv->locks, lock_event, kv);
	locktab_set_clock(kv->locks, session_time_of, kv);
	session_set_evict_hook(kv->sessions, session_evicted, kv);
	kv->space.is_open = inode_open;
	kv->space.open_arg = kv;
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

/* The waiters' mutex and condition (on CLOCK_MONOTONIC). */
static int init_wake(struct kv *kv)
{
	pthread_condattr_t ca;
	int rv;

	if (pthread_mutex_init(&kv->wake_mu, NULL) != 0)
		return -1;
	rv = pthread_condattr_init(&ca);
	if (rv == 0) {
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		rv = pthread_cond_init(&kv->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rv != 0) {
		pthread_mutex_destroy(&kv->wake_mu);
		return -1;
	}
	return 0;
}

struct kv *kv_new(const struct kv_options *opt)
{
	struct kv *kv = calloc(1, sizeof(*kv));
	pthread_rwlockattr_t attr;
	int rv;

	if (kv == NULL)
		return NULL;
	if (opt != NULL)
		kv->opt = *opt;
	if (kv->opt.session_ttl_ns <= 0)
		kv->opt.session_ttl_ns = KV_SESSION_TTL_NS;
	if (kv->opt.session_max == 0)
		kv->opt.session_max = KV_SESSION_MAX;
	if (kv->opt.zstd_level == 0)
		kv->opt.zstd_level = KV_ZSTD_LEVEL;
	if (kv->opt.quota == 0)
		kv->opt.quota = KV_QUOTA_DEFAULT;
	if (kv->opt.lock_lease_ns <= 0)
		kv->opt.lock_lease_ns = KV_LOCK_LEASE_NS;
	if (kv->opt.lock_max == 0)
		kv->opt.lock_max = KV_LOCK_MAX;
	kv->space.quota = kv->opt.quota;
	kv->space.next_inode = KV_INODE_FIRST;
	kv->space.ks = keyspace_new();
	kv->sessions = session_table_new(kv->opt.session_max,
	    kv->opt.session_ttl_ns);
	kv->locks = locktab_new(kv->opt.lock_lease_ns, kv->opt.lock_max);
	kv->opens = opentab_new();
	if (kv->space.ks == NULL || kv->sessions == NULL || kv->locks == NULL ||
	    kv->opens == NULL)
		goto err_after_alloc;
	wire_tables(kv);
	/* Writers first: apply() may run on the member's event loop, so a
	 * stream of readers must not hold it off; it waits at most for the
	 * queries already inside (each bounded by one page). */
	if (pthread_rwlockattr_init(&attr) != 0)
		goto err_after_alloc;
	pthread_rwlockattr_setkind_np(&attr,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rv = pthread_rwlock_init(&kv->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rv != 0)
		goto err_after_alloc;
	if (init_wake(kv) != 0) {
		pthread_rwlock_destroy(&kv->lock);
		goto err_after_alloc;
	}
	return kv;

err_after_alloc:
	keyspace_free(kv->space.ks);
	session_table_free(kv->sessions);
	locktab_free(kv->locks);
	opentab_free(kv->opens);
	free(kv);
	return NULL;
}

void kv_free(struct kv *kv)
{
	if (kv == NULL)
		return;
	pthread_rwlock_destroy(&kv->lock);
	pthread_cond_destroy(&kv->wake);
	pthread_mutex_destroy(&kv->wake_mu);
	keyspace_free(kv->space.ks);
	session_table_free(kv->sessions);
	locktab_free(kv->locks);
	free(kv->evicted);
	opentab_free(kv->opens);
	free(kv);
}

/* ------------------------------------------------------------------------
 * Apply
 * ------------------------------------------------------------------------ */

/* Is @c a registration TXN (OPEN and CLOSE ops only: cmd.h)? */
static bool is_opens(const struct kv_cmd *c)
{
	struct kv_cmd_iter it;
	struct kv_op op;

	if (c->type != KV_OP_TXN)
		return false;
	kv_cmd_op_iter(c, &it);
	return kv_cmd_next_op(&it, &op) &&
	    (op.type == KV_OP_OPEN || op.type == KV_OP_CLOSE);
}

/* A registration TXN of session @c->client_id (kv.h, OPENS): its ops in
 * order.  Returns 0, or -ENOMEM before any change. */
static int exec_opens(struct kv *kv, const struct kv_cmd *c,
    struct kv_result *out)
{
	struct kv_cmd_iter it;
	struct kv_op op;
	int rc;

	if (opentab_reserve(kv->opens, c->nops) != 0)
		return -ENOMEM;
	kv_cmd_op_iter(c, &it);
	for (uint32_t i = 0; kv_cmd_next_op(&it, &op); i++) {
		const struct kv_inode *ino;

		if (op.type == KV_OP_CLOSE) {
			opentab_remove(kv->opens, c->client_id, op.inode);
			continue;
		}
		ino = keyspace_inode_find(kv->space.ks, op.inode);
		if (ino == NULL || ino->nnames == 0)
			continue; /* gone before its registration: too late */
		rc = opentab_add(kv->opens, c->client_id, op.inode);
		if (rc == -ENOSPC && out->status == KV_OK) {
			out->status = KV_ENOSPC;
			out->fail_op = i;
		}
	}
	return 0;
}

/* A TXN: its FENCE ops (kvlock.c) first, then the rest (kvexec.c). */
static int exec_txn(struct kv *kv, const struct kv_cmd *c, int64_t now,
    struct kv_result *out)
{
	struct kv_cmd rest;
	uint32_t nfence;
	int rc;

	if (kvlock_fences(kv->locks, kv->space.ks, c, &nfence, out) != KV_OK)
		return 0;
	kvlock_skip_ops(c, nfence, &rest);
	rc = kvexec_txn(&kv->space, &rest, now, out);
	if (rc == 0 && out->fail_op != KV_NO_INDEX)
		out->fail_op += nfence;
	return rc;
}

static int exec_mutation(struct kv *kv, const struct kv_cmd *c, uint64_t index,
    int64_t now, struct kv_result *out)
{
	int rc;

	if (c->client_id != 0) {
		switch (session_check(kv->sessions, c->client_id, c->seq, now,
		    out)) {
		case SESSION_NEW:
			break;
		case SESSION_DUP:
			session_touch(kv->sessions, c->client_id, now);
			locktab_renew(kv->locks, c->client_id);
			return 0;
		case SESSION_STALE:
			out->status = KV_ESTALE;
			return 0;
		case SESSION_UNKNOWN:
			out->status = KV_ESESSION;
			return 0;
		}
		locktab_renew(kv->locks, c->client_id);
	} else if (kvlock_is_mutation(c->type) || is_opens(c)) {
		out->status = KV_ESESSION; /* a lock or open needs an owner */
		return 0;
	}
	if (is_opens(c))
		rc = exec_opens(kv, c, out);
	else if (c->type == KV_OP_TXN)
		rc = exec_txn(kv, c, now, out);
	else if (kvlock_is_mutation(c->type))
		rc = kvlock_exec(kv->locks, kv->space.ks, c, index, out);
	else
		rc = kvexec_op(&kv->space, &c->op, now, out);
	if (rc == 0 && c->client_id != 0)
		session_record(kv->sessions, c->client_id, c->seq, now, out);
	return rc;
}

static int dispatch(struct kv *kv, const struct kv_cmd *c, uint64_t index,
    int64_t now, struct kv_result *out)
{
	switch (c->type) {
	case KV_OP_GET:
		return kvexec_get(&kv->space, &c->op, out);
	case KV_OP_GETLK:
		kvlock_getlk(kv->locks, kv->space.ks, c->client_id, &c->op,
		    out);
		return 0;
	case KV_OP_REGISTER: /* may evict one: its locks go (the hook) */
		return session_register(kv->sessions, now, &out->client_id);
	case KV_OP_TICK:
		return 0;
	default:
		return exec_mutation(kv, c, index, now, out);
	}
}

/* Wake kv_lock_wait() if the lock table changed since its generation
 * was @before: any change, even one that leaves the counts as they
 * were (a waiter expired and another queued in one apply). */
static void wake_waiters(struct kv *kv, uint64_t before)
{
	if (locktab_generation(kv->locks) == before)
		return;
	pthread_mutex_lock(&kv->wake_mu);
	kv->lock_seq++;
	pthread_cond_broadcast(&kv->wake);
	pthread_mutex_unlock(&kv->wake_mu);
}

int kv_apply(struct kv *kv, uint64_t log_index, const void *cmd, size_t len,
    struct kv_result *out)
{
	struct kv_cmd c;
	uint64_t gen;
	int64_t now, gap = 0;
	int rc = 0;

	kv_result_init(out);
	pthread_rwlock_wrlock(&kv->lock);
	gen = locktab_generation(kv->locks);
	if (log_index <= kv->applied_index) {
		rc = -EINVAL;
		goto out;
	}
	if (kv_cmd_decode(cmd, len, &c) != 0) {
		out->status = KV_EMALFORMED;
		kv->applied_index = log_index;
		goto out;
	}
	now = c.time_ns > kv->clock_ns ? c.time_ns : kv->clock_ns;
	kv->apply_index = log_index;
	/* The election grace: committed time jumped (nothing committed for
	 * a while: an election, a cluster down), so nobody could renew;
	 * that time counts toward no lease and no session's idleness. */
	if (kv->clock_ns > 0 && now - kv->clock_ns > KV_CLOCK_GAP_NS) {
		gap = now - kv->clock_ns;
		session_shift(kv->sessions, gap);
	}
	/* Leases first: a lock whose lease ended before this entry is gone
	 * before its command runs (idempotent if -ENOMEM makes us retry). */
	locktab_expire(kv->locks, log_index, now);
	rc = dispatch(kv, &c, log_index, now, out);
	if (rc != 0) {
		if (gap != 0) /* the retry shifts again */
			session_shift(kv->sessions, -gap);
		kv_result_release(out);
		goto out;
	}
	kv->clock_ns = now;
	/* Their locks go (the hook), their opens in one pass after. */
	kv->collect = true;
	session_expire(kv->sessions, now);
	kv->collect = false;
	opentab_drop_sessions(kv->opens, kv->evicted, kv->nevicted);
	kv->nevicted = 0;
	kv->applied_index = log_index;
out:
	wake_waiters(kv, gen);
	pthread_rwlock_unlock(&kv->lock);
	return rc;
}

/* ------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------ */

static struct kvsnap_state state_of(const struct kv *kv)
{
	return (struct kvsnap_state){
		.applied_index = kv->applied_index,
		.next_inode = kv->space.next_inode,
		.clock_ns = kv->clock_ns,
		.ks = kv->space.ks,
		.sessions = kv->sessions,
		.locks = kv->locks,
		.opens = kv->opens,
	};
}

int kv_snapshot(struct kv *kv, void **data, size_t *len)
{
	struct kvsnap_state st;
	int rc;

	pthread_rwlock_rdlock(&kv->lock);
	st = state_of(kv);
	rc = kvsnap_encode(&st, kv->opt.zstd_level, data, len);
	pthread_rwlock_unlock(&kv->lock);
	return rc;
}

/* A point-in-time copy of the payload (kv_snapshot_begin). */
struct kv_snap_view {
	void *raw;
	size_t len;
};

int kv_snapshot_begin(struct kv *kv, void **view)
{
	struct kv_snap_view *v = calloc(1, sizeof(*v));
	struct kvsnap_state st;
	int rc;

	if (v == NULL)
		return -ENOMEM;
	pthread_rwlock_rdlock(&kv->lock);
	st = state_of(kv);
	rc = kvsnap_serialize(&st, &v->raw, &v->len);
	pthread_rwlock_unlock(&kv->lock);
	if (rc != 0) {
		free(v);
		return rc;
	}
	*view = v;
	return 0;
}

int kv_snapshot_finish(struct kv *kv, void *view, void **data, size_t *len)
{
	struct kv_snap_view *v = view;
	int rc = 0;

	if (data != NULL)
		rc = kvsnap_compress(v->raw, v->len, kv->opt.zstd_level, data,
		    len);
	free(v->raw);
	free(v);
	return rc;
}

int kv_restore(struct kv *kv, const void *data, size_t len)
{
	struct kvsnap_state st;
	struct keyspace *old_ks;
	struct session_table *old_sessions;
	struct locktab *old_locks;
	struct opentab *old_opens;
	int rc;

	/* Decode without the lock: the current state keeps serving. */
	uint64_t used;

	rc = kvsnap_decode(data, len, kv->opt.session_max,
	    kv->opt.session_ttl_ns, kv->opt.lock_lease_ns, kv->opt.lock_max,
	    &st);
	if (rc != 0)
		return rc;
	used = kvexec_usage_of(st.ks); /* not stored: the keys say it */
	pthread_rwlock_wrlock(&kv->lock);
	old_ks = kv->space.ks;
	old_sessions = kv->sessions;
	old_locks = kv->locks;
	old_opens = kv->opens;
	kv->space.ks = st.ks;
	kv->sessions = st.sessions;
	kv->locks = st.locks;
	kv->opens = st.opens;
	kv->applied_index = st.applied_index;
	kv->space.next_inode = st.next_inode;
	kv->space.used = used;
	kv->clock_ns = st.clock_ns;
	wire_tables(kv);
	/* waiters look again, whatever changed */
	wake_waiters(kv, locktab_generation(kv->locks) + 1);
	pthread_rwlock_unlock(&kv->lock);
	keyspace_free(old_ks);
	session_table_free(old_sessions);
	locktab_free(old_locks);
	opentab_free(old_opens);
	return 0;
}

uint64_t kv_digest(struct kv *kv)
{
	struct kvsnap_state st;
	uint64_t h;

	pthread_rwlock_rdlock(&kv->lock);
	st = state_of(kv);
	h = kvsnap_digest(&st);
	pthread_rwlock_unlock(&kv->lock);
	return h;
}

/* ------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------ */

int kv_get(struct kv *kv, const void *key, size_t keylen, struct kv_attr *attr,
    void **value, size_t *len)
{
	return kv_get_max(kv, key, keylen, UINT64_MAX, attr, value, len);
}

int kv_get_max(struct kv *kv, const void *key, size_t keylen, uint64_t max,
    struct kv_attr *attr, void **value, size_t *len)
{
	struct kv_rec *r;
	int rc = 0;

	if (keylen == 0 || keylen > KV_KEY_MAX)
		return -ENOENT;
	pthread_rwlock_rdlock(&kv->lock);
	r = kvexec_live(kv->space.ks, key, keylen);
	if (r == NULL) {
		rc = -ENOENT;
		goto out;
	}
	if (attr != NULL)
		*attr = r->ino->attr;
	if (r->ino->attr.size > max) {
		rc = -EFBIG;
		goto out;
	}
	if (value != NULL) {
		rc = kvexec_copy_value(r, value);
		if (rc != 0)
			goto out;
		*len = r->ino->attr.size;
	}
out:
	pthread_rwlock_unlock(&kv->lock);
	return rc;
}

long kv_read(struct kv *kv, const void *key, size_t keylen, uint64_t offset,
    void *buf, size_t cap, struct kv_attr *attr)
{
	struct kv_rec *r;
	long n = 0;

	if (keylen == 0 || keylen > KV_KEY_MAX)
		return -ENOENT;
	pthread_rwlock_rdlock(&kv->lock);
	r = kvexec_live(kv->space.ks, key, keylen);
	if (r == NULL) {
		n = -ENOENT;
	} else {
		if (attr != NULL)
			*attr = r->ino->attr;
		if (offset < r->ino->attr.size) {
			uint64_t k = r->ino->attr.size - offset;

			n = (long)(k < cap ? k : cap);
			memcpy(buf, r->ino->value + offset, (size_t)n);
		}
	}
	pthread_rwlock_unlock(&kv->lock);
	return n;
}

int kv_name_of(struct kv *kv, uint64_t inode, void *key, size_t *keylen,
    struct kv_attr *attr)
{
	const struct kv_rec *best = NULL;
	struct kv_inode *ino;
	int rc = -ENOENT;

	pthread_rwlock_rdlock(&kv->lock);
	ino = keyspace_inode_find(kv->space.ks, inode);
	for (uint32_t i = 0; ino != NULL && i < ino->nnames; i++) {
		const struct kv_rec *r = ino->names[i];

		if (best == NULL ||
		    keyspace_keycmp(r->key, r->keylen, best->key,
		        best->keylen) < 0)
			best = r;
	}
	if (best != NULL) {
		memcpy(key, best->key, best->keylen);
		*keylen = best->keylen;
		if (attr != NULL)
			*attr = ino->attr;
		rc = 0;
	}
	pthread_rwlock_unlock(&kv->lock);
	return rc;
}

static bool has_prefix(const struct kv_rec *r, const void *prefix, size_t len)
{
	return r->keylen >= len && memcmp(r->key, prefix, len) == 0;
}

/*
 * Seek @it past every key that starts with @key[0..len): to the first key
 * >= the prefix's successor (drop trailing 0xff bytes, add 1 to the last).
 * Returns false if no key can follow.
 */
static bool seek_past_prefix(const struct keyspace *ks,
    const unsigned char *key, size_t len, struct keyspace_iter *it)
{
	unsigned char succ[KV_KEY_MAX];

	while (len > 0 && key[len - 1] == 0xff)
		len--;
	if (len == 0)
		return false;
	memcpy(succ, key, len);
	succ[len - 1]++;
	keyspace_seek(ks, succ, len, it);
	return true;
}

long kv_list(struct kv *kv, const void *prefix, size_t prefixlen,
    const void *after, size_t afterlen, size_t limit, int delim, kv_list_cb cb,
    void *arg)
{
	struct keyspace_iter it;
	struct kv_rec *r;
	long n = 0;

	if (delim > 255 || (prefix == NULL && prefixlen != 0) ||
	    prefixlen > KV_KEY_MAX)
		return -EINVAL;
	if (prefix == NULL)
		prefix = ""; /* memcmp() wants a pointer even for 0 bytes */
	pthread_rwlock_rdlock(&kv->lock);
	if (after != NULL &&
	    keyspace_keycmp(after, afterlen, prefix, prefixlen) >= 0) {
		keyspace_seek(kv->space.ks, after, afterlen, &it);
		r = keyspace_iter_rec(&it);
		if (r != NULL &&
		    keyspace_keycmp(r->key, r->keylen, after, afterlen) == 0)
			keyspace_iter_next(&it);
	} else {
		keyspace_seek(kv->space.ks, prefix, prefixlen, &it);
	}
	while ((r = keyspace_iter_rec(&it)) != NULL &&
	    has_prefix(r, prefix, prefixlen)) {
		if (delim >= 0) {
			const unsigned char *d = memchr(r->key + prefixlen,
			    delim, r->keylen - prefixlen);

			if (d != NULL) { /* below a child: skip its subtree */
				if (!seek_past_prefix(kv->space.ks, r->key,
				        (size_t)(d - r->key) + 1, &it))
					break;
				continue;
			}
		}
		n++;
		if (cb(arg, r->key, r->keylen, &r->ino->attr, r->ino->value) !=
		    0)
			break;
		if (limit != 0 && (size_t)n == limit)
			break;
		keyspace_iter_next(&it);
	}
	pthread_rwlock_unlock(&kv->lock);
	return n;
}

/* ------------------------------------------------------------------------
 * Locks
 * ------------------------------------------------------------------------ */

void kv_set_lock_listener(struct kv *kv, kv_lock_listener fn, void *arg)
{
	pthread_rwlock_wrlock(&kv->lock);
	kv->listener = fn;
	kv->listener_arg = arg;
	pthread_rwlock_unlock(&kv->lock);
}

int kv_getlk(struct kv *kv, uint64_t session, const struct kv_op *op,
    struct kv_result *out)
{
	struct kv_cmd c = { .type = KV_OP_GETLK, .op = *op };

	kv_result_init(out);
	if (op->type != KV_OP_GETLK || kv_cmd_size(&c) == 0)
		return -EINVAL;
	pthread_rwlock_rdlock(&kv->lock);
	kvlock_getlk(kv->locks, kv->space.ks, session, op, out);
	pthread_rwlock_unlock(&kv->lock);
	return 0;
}

/* One look at the state of a LOCK request (kv_lock_wait). */
static void lock_state(struct kv *kv, uint64_t session, const struct kv_op *op,
    struct kv_result *out)
{
	struct locktab_req rq;
	uint64_t ino;
	int status;

	kv_result_init(out);
	pthread_rwlock_rdlock(&kv->lock);
	ino = kvlock_resolve(kv->space.ks, op, &status);
	if (status == KV_OK) {
		kvlock_req(op, session, ino, &rq);
		out->status = locktab_wait_state(kv->locks, &rq,
		    &out->attr.version);
		out->attr.inode = ino;
	} else {
		out->status = status;
	}
	pthread_rwlock_unlock(&kv->lock);
}

static int lock_wait(struct kv *kv, uint64_t session, const struct kv_op *op,
    int wait_ms, struct kv_result *out);

int kv_lock_wait(struct kv *kv, uint64_t session, const struct kv_op *op,
    int wait_ms, struct kv_result *out)
{
	struct kv_cmd c = { .type = KV_OP_LOCK, .op = *op };
	int rv;

	kv_result_init(out);
	if (op->type != KV_OP_LOCK || kv_cmd_size(&c) == 0 || wait_ms < 0)
		return -EINVAL;
	/* Only a caller that will block takes a slot: a look (wait_ms 0)
	 * returns below without giving one back. */
	pthread_mutex_lock(&kv->wake_mu);
	if (wait_ms > 0) {
		if (kv->waiters >= KV_LOCK_WAITERS_MAX || kv->no_waits)
			wait_ms = 0; /* full, or stopping: one look */
		else
			kv->waiters++;
	}
	pthread_mutex_unlock(&kv->wake_mu);
	if (wait_ms == 0) {
		lock_state(kv, session, op, out);
		return 0;
	}
	rv = lock_wait(kv, session, op, wait_ms, out);
	pthread_mutex_lock(&kv->wake_mu);
	kv->waiters--;
	pthread_mutex_unlock(&kv->wake_mu);
	return rv;
}

/* kv_lock_wait() once admitted. */
static int lock_wait(struct kv *kv, uint64_t session, const struct kv_op *op,
    int wait_ms, struct kv_result *out)
{
	struct timespec deadline;
	uint64_t seq;

	deadline = clock_after_ms(CLOCK_MONOTONIC, (uint64_t)wait_ms);
	for (;;) {
		int rv = 0;

		/* The sequence before the look: an apply in between moves
		 * it, and the wait below returns at once. */
		pthread_mutex_lock(&kv->wake_mu);
		seq = kv->lock_seq;
		pthread_mutex_unlock(&kv->wake_mu);
		lock_state(kv, session, op, out);
		if (out->status != KV_EQUEUED)
			return 0;
		pthread_mutex_lock(&kv->wake_mu);
		while (kv->lock_seq == seq && rv == 0 && !kv->no_waits)
			rv = pthread_cond_timedwait(&kv->wake, &kv->wake_mu,
			    &deadline);
		if (kv->no_waits)
			rv = ETIMEDOUT;
		pthread_mutex_unlock(&kv->wake_mu);
		if (rv != 0) { /* timed out: one last look */
			lock_state(kv, session, op, out);
			return 0;
		}
	}
}

void kv_lock_wait_shutdown(struct kv *kv)
{
	pthread_mutex_lock(&kv->wake_mu);
	kv->no_waits = true;
	pthread_cond_broadcast(&kv->wake);
	pthread_mutex_unlock(&kv->wake_mu);
}

void kv_lock_count(struct kv *kv, uint32_t *held, uint32_t *waiting)
{
	pthread_rwlock_rdlock(&kv->lock);
	*held = locktab_held(kv->locks);
	*waiting = locktab_waiting(kv->locks);
	pthread_rwlock_unlock(&kv->lock);
}

bool kv_is_open(struct kv *kv, uint64_t inode)
{
	bool open;

	pthread_rwlock_rdlock(&kv->lock);
	open = opentab_is_open(kv->opens, inode);
	pthread_rwlock_unlock(&kv->lock);
	return open;
}

void kv_lock_each(struct kv *kv,
    int (*fn)(void *arg, uint64_t inode, const struct kv_lock *l), void *arg)
{
	pthread_rwlock_rdlock(&kv->lock);
	locktab_each(kv->locks, fn, arg);
	pthread_rwlock_unlock(&kv->lock);
}

struct holders_walk {
	struct kv *kv;
	void (*fn)(void *arg, uint64_t session, int64_t idle_ns, uint64_t seq);
	void *arg;
};

static void holder_one(void *arg, uint64_t session)
{
	struct holders_walk *w = arg;
	int64_t t = session_time(w->kv->sessions, session);

	if (t != INT64_MIN) /* always: the pairs go with the session */
		w->fn(w->arg, session, w->kv->clock_ns - t,
		    session_last_seq(w->kv->sessions, session));
}

void kv_open_holders(struct kv *kv,
    void (*fn)(void *arg, uint64_t session, int64_t idle_ns, uint64_t seq),
    void *arg)
{
	struct holders_walk w = { kv, fn, arg };

	pthread_rwlock_rdlock(&kv->lock);
	opentab_each_session(kv->opens, holder_one, &w);
	pthread_rwlock_unlock(&kv->lock);
}

int64_t kv_session_ttl_ns(struct kv *kv)
{
	return kv->opt.session_ttl_ns; /* set once in kv_new */
}

uint64_t kv_applied_index(struct kv *kv)
{
	uint64_t i;

	pthread_rwlock_rdlock(&kv->lock);
	i = kv->applied_index;
	pthread_rwlock_unlock(&kv->lock);
	return i;
}

size_t kv_key_count(struct kv *kv)
{
	size_t n;

	pthread_rwlock_rdlock(&kv->lock);
	n = keyspace_count(kv->space.ks);
	pthread_rwlock_unlock(&kv->lock);
	return n;
}

void kv_usage(struct kv *kv, uint64_t *used, uint64_t *quota)
{
	pthread_rwlock_rdlock(&kv->lock);
	*used = kv->space.used;
	*quota = kv->space.quota;
	pthread_rwlock_unlock(&kv->lock);
}

uint32_t kv_session_count(struct kv *kv)
{
	uint32_t n;

	pthread_rwlock_rdlock(&kv->lock);
	n = session_count(kv->sessions);
	pthread_rwlock_unlock(&kv->lock);
	return n;
}
