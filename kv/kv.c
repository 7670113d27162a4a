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
 *   execute (exec_op, or exec_txn with an undo log)
 *     ├─ -ENOMEM ──> nothing changed at all; return -ENOMEM
 *     └─ done: record the result in the session
 *          │
 *   commit the clock, expire idle sessions, advance the applied index
 *
 * Every single operation checks everything and allocates everything it
 * needs before its first change, so a failure leaves no trace.  A single
 * WRITE/TRUNCATE changes the value in place (growing its buffer
 * geometrically, so appending to a large file costs O(appended bytes)).
 *
 * A transaction runs its ops one by one on the live state, each recording
 * in the undo log how to put back what it changed; ops inside a txn never
 * modify a value buffer in place (they install a new one) and never remove
 * a record (they mark it dead; lookups skip dead records).  Undoing is then
 * allocation-free: free the buffers the op installed, restore the saved
 * record headers, remove the records it created (removal never allocates).
 * Committing frees the buffers the ops retired and removes the dead
 * records.  So a txn is all-or-nothing even when an allocation fails half
 * way.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kv/keyspace.h"
#include "kv/kv.h"
#include "kv/kvsnap.h"
#include "kv/session.h"

struct kv {
	pthread_rwlock_t lock;
	struct keyspace *ks;
	struct session_table *sessions;
	uint64_t applied_index;
	uint64_t next_inode;
	int64_t clock_ns;     /* committed clock: max time_ns applied */
	struct kv_options opt;
};

/* How to undo one change to one record. */
struct undo_ent {
	struct kv_rec *rec;
	struct kv_attr attr;   /* saved header */
	unsigned char *value;
	uint64_t cap;
	uint8_t dead;
	bool created;          /* rec was inserted by this txn */
	void *alloc;           /* buffer the op installed: freed on rollback */
	void *retired;         /* buffer the op took off: freed on commit */
	struct kv_rec *to_free;/* commit: dead record to free */
};

struct undo {
	struct undo_ent *e;
	size_t n, cap;
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
	kv->next_inode = KV_INODE_FIRST;
	kv->ks = keyspace_new();
	kv->sessions = session_table_new(kv->opt.session_max,
	    kv->opt.session_ttl_ns);
	if (kv->ks == NULL || kv->sessions == NULL)
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
	keyspace_free(kv->ks);
	session_table_free(kv->sessions);
	free(kv);
	return NULL;
}

void kv_free(struct kv *kv)
{
	if (kv == NULL)
		return;
	pthread_rwlock_destroy(&kv->lock);
	keyspace_free(kv->ks);
	session_table_free(kv->sessions);
	free(kv);
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static struct kv_rec *live(const struct kv *kv, const void *key, size_t len)
{
	struct kv_rec *r = keyspace_get(kv->ks, key, len);

	return r != NULL && !r->dead ? r : NULL;
}

/* Status of @op's version check against existing record @r. */
static int version_status(const struct kv_rec *r, const struct kv_op *op)
{
	if ((op->flags & KV_F_ANYVER) || op->version == r->attr.version)
		return KV_OK;
	return KV_EVERSION;
}

/* A copy of @len bytes at @p; NULL for 0 bytes.  *@ok false on ENOMEM. */
static unsigned char *dup_bytes(const void *p, size_t len, bool *ok)
{
	unsigned char *b;

	*ok = true;
	if (len == 0)
		return NULL;
	b = malloc(len);
	if (b == NULL)
		*ok = false;
	else
		memcpy(b, p, len);
	return b;
}

/* Record @r's header in @u before changing it (no-op without a log). */
static struct undo_ent *save(struct undo *u, struct kv_rec *r)
{
	struct undo_ent *e;

	if (u == NULL)
		return NULL;
	assert(u->n < u->cap);
	e = &u->e[u->n++];
	memset(e, 0, sizeof(*e));
	e->rec = r;
	e->attr = r->attr;
	e->value = r->value;
	e->cap = r->cap;
	e->dead = r->dead;
	return e;
}

/* Install @buf (@size bytes, @cap allocated) as @r's value. */
static void set_value(struct undo *u, struct kv_rec *r, unsigned char *buf,
    uint64_t size, uint64_t cap)
{
	struct undo_ent *e = save(u, r);

	if (e != NULL) {
		e->alloc = buf;
		e->retired = r->value;
	} else {
		free(r->value);
	}
	r->value = buf;
	r->cap = cap;
	r->attr.size = size;
}

static void changed(struct kv_rec *r, int64_t now, bool content)
{
	r->attr.version++;
	r->attr.ctime_ns = now;
	if (content)
		r->attr.mtime_ns = now;
}

/* ------------------------------------------------------------------------
 * Single operations (with @u: inside a txn, undoable)
 * ------------------------------------------------------------------------ */

/* Create @op->key (absent, or dead inside a txn) with @op's value and meta. */
static int create_rec(struct kv *kv, const struct kv_op *op, int64_t now,
    struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = keyspace_get(kv->ks, op->key, op->keylen);
	unsigned char *buf;
	bool ok;

	buf = dup_bytes(op->data, op->datalen, &ok);
	if (!ok)
		return -ENOMEM;
	if (r != NULL) { /* dead: revive it as a new key */
		assert(r->dead && u != NULL);
		save(u, r)->alloc = buf;
	} else {
		r = keyspace_rec_new(op->key, op->keylen);
		if (r == NULL || keyspace_insert(kv->ks, r) != 0) {
			free(r);
			free(buf);
			return -ENOMEM;
		}
		if (u != NULL) {
			struct undo_ent *e = save(u, r);

			e->created = true;
			e->alloc = buf;
		}
	}
	memset(&r->attr, 0, sizeof(r->attr));
	r->dead = 0;
	r->value = buf;
	r->cap = op->datalen;
	r->attr.size = op->datalen;
	r->attr.version = 1;
	r->attr.inode = kv->next_inode++;
	r->attr.mtime_ns = now;
	r->attr.ctime_ns = now;
	r->attr.kind = op->meta.kind;
	r->attr.mode = op->meta.mode;
	r->attr.uid = op->meta.uid;
	r->attr.gid = op->meta.gid;
	out->attr = r->attr;
	return 0;
}

static int exec_put(struct kv *kv, const struct kv_op *op, int64_t now,
    struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = live(kv, op->key, op->keylen);
	unsigned char *buf;
	bool ok;

	if (r == NULL) {
		if (!(op->flags & KV_F_ANYVER) && op->version != 0) {
			out->status = KV_ENOKEY;
			return 0;
		}
		return create_rec(kv, op, now, u, out);
	}
	out->status = version_status(r, op);
	if (out->status != KV_OK)
		return 0;
	buf = dup_bytes(op->data, op->datalen, &ok);
	if (!ok)
		return -ENOMEM;
	set_value(u, r, buf, op->datalen, op->datalen);
	if (op->flags & KV_F_SETMETA) {
		r->attr.kind = op->meta.kind;
		r->attr.mode = op->meta.mode;
		r->attr.uid = op->meta.uid;
		r->attr.gid = op->meta.gid;
	}
	changed(r, now, true);
	out->attr = r->attr;
	return 0;
}

static int exec_delete(struct kv *kv, const struct kv_op *op,
    struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = live(kv, op->key, op->keylen);

	if (r == NULL) {
		out->status = KV_ENOKEY;
		return 0;
	}
	out->status = version_status(r, op);
	if (out->status != KV_OK)
		return 0;
	out->attr = r->attr;
	out->attr.version = 0;
	if (u != NULL) {
		save(u, r)->retired = r->value;
		r->value = NULL;
		r->cap = 0;
		r->dead = 1;
	} else {
		keyspace_remove(kv->ks, op->key, op->keylen);
		keyspace_rec_free(r);
	}
	return 0;
}

/* A new buffer of @size bytes: @r's value cut or zero-extended. */
static unsigned char *resized_copy(const struct kv_rec *r, uint64_t size)
{
	unsigned char *buf;
	uint64_t keep = r->attr.size < size ? r->attr.size : size;

	if (size == 0)
		return NULL;
	buf = malloc(size);
	if (buf == NULL)
		return NULL;
	if (keep > 0)
		memcpy(buf, r->value, keep);
	memset(buf + keep, 0, size - keep);
	return buf;
}

/* Make @r's buffer hold at least @size bytes, in place; false on ENOMEM. */
static bool reserve_value(struct kv_rec *r, uint64_t size, bool geometric)
{
	uint64_t ncap = size;
	unsigned char *p;

	if (size <= r->cap)
		return true;
	if (geometric && r->cap * 2 > ncap)
		ncap = r->cap * 2 < KV_VALUE_MAX ? r->cap * 2 : KV_VALUE_MAX;
	p = realloc(r->value, ncap);
	if (p == NULL)
		return false;
	r->value = p;
	r->cap = ncap;
	return true;
}

static int exec_write(struct kv *kv, const struct kv_op *op, int64_t now,
    struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = live(kv, op->key, op->keylen);
	uint64_t end, size;

	if (r == NULL) {
		out->status = KV_ENOKEY;
		return 0;
	}
	out->status = version_status(r, op);
	if (out->status != KV_OK)
		return 0;
	if (op->datalen == 0) {
		out->attr = r->attr;
		return 0;
	}
	if (op->arg > KV_VALUE_MAX - op->datalen) {
		out->status = KV_ETOOBIG;
		return 0;
	}
	end = op->arg + op->datalen;
	size = end > r->attr.size ? end : r->attr.size;
	if (u != NULL) {
		unsigned char *buf = resized_copy(r, size);

		if (buf == NULL)
			return -ENOMEM;
		memcpy(buf + op->arg, op->data, op->datalen);
		set_value(u, r, buf, size, size);
	} else {
		if (!reserve_value(r, size, true))
			return -ENOMEM;
		if (op->arg > r->attr.size)
			memset(r->value + r->attr.size, 0,
			    op->arg - r->attr.size);
		memcpy(r->value + op->arg, op->data, op->datalen);
		r->attr.size = size;
	}
	changed(r, now, true);
	out->attr = r->attr;
	return 0;
}

static int exec_truncate(struct kv *kv, const struct kv_op *op, int64_t now,
    struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = live(kv, op->key, op->keylen);
	uint64_t size = op->arg;

	if (r == NULL) {
		out->status = KV_ENOKEY;
		return 0;
	}
	out->status = version_status(r, op);
	if (out->status != KV_OK)
		return 0;
	if (size > KV_VALUE_MAX) {
		out->status = KV_ETOOBIG;
		return 0;
	}
	if (u != NULL) {
		unsigned char *buf = resized_copy(r, size);

		if (buf == NULL && size > 0)
			return -ENOMEM;
		set_value(u, r, buf, size, size);
	} else if (size == 0) {
		set_value(NULL, r, NULL, 0, 0);
	} else if (size > r->attr.size) {
		if (!reserve_value(r, size, false))
			return -ENOMEM;
		memset(r->value + r->attr.size, 0, size - r->attr.size);
		r->attr.size = size;
	} else {
		r->attr.size = size;
		if (size < r->cap / 4) { /* give memory back; failure is harmless */
			unsigned char *p = realloc(r->value, size);

			if (p != NULL) {
				r->value = p;
				r->cap = size;
			}
		}
	}
	changed(r, now, true);
	out->attr = r->attr;
	return 0;
}

static int exec_setmeta(struct kv *kv, const struct kv_op *op, int64_t now,
    struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = live(kv, op->key, op->keylen);

	if (r == NULL) {
		out->status = KV_ENOKEY;
		return 0;
	}
	out->status = version_status(r, op);
	if (out->status != KV_OK)
		return 0;
	save(u, r);
	if (op->mask & KV_META_MODE)
		r->attr.mode = op->meta.mode;
	if (op->mask & KV_META_UID)
		r->attr.uid = op->meta.uid;
	if (op->mask & KV_META_GID)
		r->attr.gid = op->meta.gid;
	if (op->mask & KV_META_KIND)
		r->attr.kind = op->meta.kind;
	if (op->mask & KV_META_MTIME)
		r->attr.mtime_ns = op->mtime_ns;
	changed(r, now, false);
	out->attr = r->attr;
	return 0;
}

static int exec_rename(struct kv *kv, const struct kv_op *op, int64_t now,
    struct undo *u, struct kv_result *out)
{
	struct kv_rec *s = live(kv, op->key, op->keylen), *d;

	if (s == NULL) {
		out->status = KV_ENOKEY;
		return 0;
	}
	out->status = version_status(s, op);
	if (out->status != KV_OK)
		return 0;
	if (keyspace_keycmp(op->key, op->keylen, op->key2, op->key2len) == 0) {
		out->attr = s->attr;
		return 0;
	}
	d = keyspace_get(kv->ks, op->key2, op->key2len);
	if (d == NULL) {
		d = keyspace_rec_new(op->key2, op->key2len);
		if (d == NULL || keyspace_insert(kv->ks, d) != 0) {
			free(d);
			return -ENOMEM;
		}
		if (u != NULL)
			save(u, d)->created = true;
	} else {
		struct undo_ent *e = save(u, d);

		if (e != NULL)
			e->retired = d->value;
		else
			free(d->value);
	}
	save(u, s);
	d->attr = s->attr;
	d->value = s->value;
	d->cap = s->cap;
	d->dead = 0;
	d->attr.version++;
	d->attr.ctime_ns = now;
	s->value = NULL;
	s->cap = 0;
	if (u != NULL) {
		s->dead = 1;
	} else {
		keyspace_remove(kv->ks, op->key, op->keylen);
		keyspace_rec_free(s);
	}
	out->attr = d->attr;
	return 0;
}

static int exec_op(struct kv *kv, const struct kv_op *op, int64_t now,
    struct undo *u, struct kv_result *out)
{
	switch (op->type) {
	case KV_OP_PUT:
		return exec_put(kv, op, now, u, out);
	case KV_OP_DELETE:
		return exec_delete(kv, op, u, out);
	case KV_OP_WRITE:
		return exec_write(kv, op, now, u, out);
	case KV_OP_TRUNCATE:
		return exec_truncate(kv, op, now, u, out);
	case KV_OP_SETMETA:
		return exec_setmeta(kv, op, now, u, out);
	case KV_OP_RENAME:
		return exec_rename(kv, op, now, u, out);
	}
	assert(!"exec_op: not a mutation (the decoder lets none through)");
	return 0;
}

/* ------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------ */

static void rollback(struct kv *kv, struct undo *u)
{
	while (u->n > 0) {
		struct undo_ent *e = &u->e[--u->n];
		struct kv_rec *r = e->rec;

		free(e->alloc);
		if (e->created) {
			keyspace_remove(kv->ks, r->key, r->keylen);
			free(r); /* its value, if any, was e->alloc or moved */
			continue;
		}
		r->attr = e->attr;
		r->value = e->value;
		r->cap = e->cap;
		r->dead = e->dead;
	}
}

static void commit(struct kv *kv, struct undo *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->e[i].retired);
	for (size_t i = 0; i < u->n; i++) {
		struct kv_rec *r = u->e[i].rec;

		if (r->dead == 1) {
			keyspace_remove(kv->ks, r->key, r->keylen);
			r->dead = 2;
			u->e[i].to_free = r;
		}
	}
	for (size_t i = 0; i < u->n; i++)
		if (u->e[i].to_free != NULL)
			keyspace_rec_free(u->e[i].to_free);
	u->n = 0;
}

/* Index of the first failing compare, or KV_NO_INDEX. */
static uint32_t failed_compare(struct kv *kv, const struct kv_cmd *c)
{
	struct kv_cmd_iter it;
	struct kv_cmp cmp;

	kv_cmd_cmp_iter(c, &it);
	for (uint32_t i = 0; kv_cmd_next_cmp(&it, &cmp); i++) {
		struct kv_rec *r = live(kv, cmp.key, cmp.keylen);
		bool ok = cmp.version == KV_VERSION_ANY ? r != NULL :
		    (r != NULL ? r->attr.version : 0) == cmp.version;

		if (!ok)
			return i;
	}
	return KV_NO_INDEX;
}

static int exec_txn(struct kv *kv, const struct kv_cmd *c, int64_t now,
    struct kv_result *out)
{
	uint64_t saved_inode = kv->next_inode;
	struct undo u = { .n = 0, .cap = 2 * (size_t)c->nops };
	struct kv_cmd_iter it;
	struct kv_result res;
	struct kv_op op, first = { 0 };
	struct kv_rec *r;

	out->fail_cmp = failed_compare(kv, c);
	if (out->fail_cmp != KV_NO_INDEX) {
		out->status = KV_EVERSION;
		return 0;
	}
	if (c->nops == 0)
		return 0;
	u.e = malloc(u.cap * sizeof(u.e[0]));
	if (u.e == NULL)
		return -ENOMEM;
	kv_cmd_op_iter(c, &it);
	for (uint32_t i = 0; kv_cmd_next_op(&it, &op); i++) {
		int rc;

		kv_result_init(&res);
		rc = exec_op(kv, &op, now, &u, &res);
		if (rc != 0 || res.status != KV_OK) {
			rollback(kv, &u);
			kv->next_inode = saved_inode;
			free(u.e);
			/* Op 0's attributes describe a state just undone: the
			 * result (and its session copy) must not carry them. */
			memset(&out->attr, 0, sizeof(out->attr));
			if (rc == 0) {
				out->status = res.status;
				out->fail_op = i;
			}
			return rc;
		}
		if (i == 0) {
			first = op;
			out->attr = res.attr;
		}
	}
	commit(kv, &u);
	free(u.e);
	if (first.type == KV_OP_RENAME)
		r = live(kv, first.key2, first.key2len);
	else
		r = live(kv, first.key, first.keylen);
	if (r != NULL)
		out->attr = r->attr;
	else
		out->attr.version = 0;
	return 0;
}

/* ------------------------------------------------------------------------
 * Apply
 * ------------------------------------------------------------------------ */

static int exec_get(struct kv *kv, const struct kv_op *op,
    struct kv_result *out)
{
	struct kv_rec *r = live(kv, op->key, op->keylen);
	bool ok;

	if (r == NULL) {
		out->status = KV_ENOKEY;
		return 0;
	}
	out->value = dup_bytes(r->value, r->attr.size, &ok);
	if (!ok)
		return -ENOMEM;
	out->value_len = r->attr.size;
	out->attr = r->attr;
	return 0;
}

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
		rc = exec_txn(kv, c, now, out);
	else
		rc = exec_op(kv, &c->op, now, NULL, out);
	if (rc == 0 && c->client_id != 0)
		session_record(kv->sessions, c->client_id, c->seq, now, out);
	return rc;
}

static int dispatch(struct kv *kv, const struct kv_cmd *c, int64_t now,
    struct kv_result *out)
{
	switch (c->type) {
	case KV_OP_GET:
		return exec_get(kv, &c->op, out);
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
		.next_inode = kv->next_inode,
		.clock_ns = kv->clock_ns,
		.ks = kv->ks,
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
	rc = kvsnap_decode(data, len, kv->opt.session_max,
	    kv->opt.session_ttl_ns, &st);
	if (rc != 0)
		return rc;
	pthread_rwlock_wrlock(&kv->lock);
	old_ks = kv->ks;
	old_sessions = kv->sessions;
	kv->ks = st.ks;
	kv->sessions = st.sessions;
	kv->applied_index = st.applied_index;
	kv->next_inode = st.next_inode;
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

int kv_get(struct kv *kv, const void *key, size_t keylen,
    struct kv_attr *attr, void **value, size_t *len)
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
	r = live(kv, key, keylen);
	if (r == NULL) {
		rc = -ENOENT;
		goto out;
	}
	if (r->attr.size > max) {
		rc = -EFBIG;
		goto out;
	}
	if (attr != NULL)
		*attr = r->attr;
	if (value != NULL) {
		bool ok;

		*value = dup_bytes(r->value, r->attr.size, &ok);
		if (!ok) {
			rc = -ENOMEM;
			goto out;
		}
		*len = r->attr.size;
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
	r = live(kv, key, keylen);
	if (r == NULL) {
		n = -ENOENT;
	} else {
		if (attr != NULL)
			*attr = r->attr;
		if (offset < r->attr.size) {
			uint64_t k = r->attr.size - offset;

			n = (long)(k < cap ? k : cap);
			memcpy(buf, r->value + offset, (size_t)n);
		}
	}
	pthread_rwlock_unlock(&kv->lock);
	return n;
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
static bool seek_past_prefix(const struct keyspace *ks, const unsigned char *key,
    size_t len, struct keyspace_iter *it)
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
    const void *after, size_t afterlen, size_t limit, int delim,
    kv_list_cb cb, void *arg)
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
	if (after != NULL && keyspace_keycmp(after, afterlen, prefix,
	    prefixlen) >= 0) {
		keyspace_seek(kv->ks, after, afterlen, &it);
		r = keyspace_iter_rec(&it);
		if (r != NULL && keyspace_keycmp(r->key, r->keylen, after,
		    afterlen) == 0)
			keyspace_iter_next(&it);
	} else {
		keyspace_seek(kv->ks, prefix, prefixlen, &it);
	}
	while ((r = keyspace_iter_rec(&it)) != NULL &&
	    has_prefix(r, prefix, prefixlen)) {
		if (delim >= 0) {
			const unsigned char *d = memchr(r->key + prefixlen,
			    delim, r->keylen - prefixlen);

			if (d != NULL) { /* below a child: skip its subtree */
				if (!seek_past_prefix(kv->ks, r->key,
				    (size_t)(d - r->key) + 1, &it))
					break;
				continue;
			}
		}
		n++;
		if (cb(arg, r->key, r->keylen, &r->attr, r->value) != 0)
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
	n = keyspace_count(kv->ks);
	pthread_rwlock_unlock(&kv->lock);
	return n;
}

uint32_t kv_session_count(struct kv *kv)
{
	uint32_t n;

	pthread_rwlock_rdlock(&kv->lock);
	n = session_count(kv->sessions);
	pthread_rwlock_unlock(&kv->lock);
	return n;
}
