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
 *   session check (mutations with a client id)
 *     ├─ DUP ────> stored result, touch the session
 *     ├─ STALE / UNKNOWN ──> ErrStale / ErrSession
 *     └─ NEW
 *          │
 *   execute (kvexec_op, or kvexec_txn with an undo log: kvexec.c)
 *     ├─ -ENOMEM ──> nothing changed at all; return -ENOMEM
 *     └─ done: record the result in the session
 *          │
 *   commit the clock, expire idle sessions, advance the applied index
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

#include "kv/keyspace.h"
#include "kv/kv.h"
#include "kv/kvexec.h"
#include "kv/kvsnap.h"
#include "kv/session.h"

struct kv {
	pthread_rwlock_t lock;
	struct kvexec_state space; /* the key space and the inode counter */
	struct session_table *sessions;
	uint64_t applied_index;
	int64_t clock_ns; /* committed clock: max time_ns applied */
	struct kv_options opt;
};

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

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
	kv->space.quota = kv->opt.quota;
	kv->space.next_inode = KV_INODE_FIRST;
	kv->space.ks = keyspace_new();
	kv->sessions = session_table_new(kv->opt.session_max,
	    kv->opt.session_ttl_ns);
	if (kv->space.ks == NULL || kv->sessions == NULL)
		goto err_after_alloc;
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
	return kv;

err_after_alloc:
	keyspace_free(kv->space.ks);
	session_table_free(kv->sessions);
	free(kv);
	return NULL;
}

void kv_free(struct kv *kv)
{
	if (kv == NULL)
		return;
	pthread_rwlock_destroy(&kv->lock);
	keyspace_free(kv->space.ks);
	session_table_free(kv->sessions);
	free(kv);
}

/* ------------------------------------------------------------------------
 * Apply
 * ------------------------------------------------------------------------ */

static int exec_mutation(struct kv *kv, const struct kv_cmd *c, int64_t now,
    struct kv_result *out)
{
	int rc;

	if (c->client_id != 0) {
		switch (session_check(kv->sessions, c->client_id, c->seq, now,
		    out)) {
		case SESSION_NEW:
			break;
		case SESSION_DUP:
			session_touch(kv->sessions, c->client_id, now);
			return 0;
		case SESSION_STALE:
			out->status = KV_ESTALE;
			return 0;
		case SESSION_UNKNOWN:
			out->status = KV_ESESSION;
			return 0;
		}
	}
	if (c->type == KV_OP_TXN)
		rc = kvexec_txn(&kv->space, c, now, out);
	else
		rc = kvexec_op(&kv->space, &c->op, now, out);
	if (rc == 0 && c->client_id != 0)
		session_record(kv->sessions, c->client_id, c->seq, now, out);
	return rc;
}

static int dispatch(struct kv *kv, const struct kv_cmd *c, int64_t now,
    struct kv_result *out)
{
	switch (c->type) {
	case KV_OP_GET:
		return kvexec_get(&kv->space, &c->op, out);
	case KV_OP_REGISTER:
		return session_register(kv->sessions, now, &out->client_id);
	case KV_OP_TICK:
		return 0;
	default:
		return exec_mutation(kv, c, now, out);
	}
}

int kv_apply(struct kv *kv, uint64_t log_index, const void *cmd, size_t len,
    struct kv_result *out)
{
	struct kv_cmd c;
	int64_t now;
	int rc = 0;

	kv_result_init(out);
	pthread_rwlock_wrlock(&kv->lock);
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
	rc = dispatch(kv, &c, now, out);
	if (rc != 0) {
		kv_result_release(out);
		goto out;
	}
	kv->clock_ns = now;
	session_expire(kv->sessions, now);
	kv->applied_index = log_index;
out:
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

int kv_restore(struct kv *kv, const void *data, size_t len)
{
	struct kvsnap_state st;
	struct keyspace *old_ks;
	struct session_table *old_sessions;
	int rc;

	/* Decode without the lock: the current state keeps serving. */
	uint64_t used;

	rc = kvsnap_decode(data, len, kv->opt.session_max,
	    kv->opt.session_ttl_ns, &st);
	if (rc != 0)
		return rc;
	used = kvexec_usage_of(st.ks); /* not stored: the keys say it */
	pthread_rwlock_wrlock(&kv->lock);
	old_ks = kv->space.ks;
	old_sessions = kv->sessions;
	kv->space.ks = st.ks;
	kv->sessions = st.sessions;
	kv->applied_index = st.applied_index;
	kv->space.next_inode = st.next_inode;
	kv->space.used = used;
	kv->clock_ns = st.clock_ns;
	pthread_rwlock_unlock(&kv->lock);
	keyspace_free(old_ks);
	session_table_free(old_sessions);
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
