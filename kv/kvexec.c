/*
 * kvexec.c - execution of the KV commands on the key space (contract in
 * kv.h, interface in kvexec.h).  kv.c has already decoded the command,
 * taken the lock and done the session check.
 *
 * Every single operation checks everything and allocates everything it
 * needs before its first change, so a failure leaves no trace.  WRITE and
 * TRUNCATE change the value in place, in a txn or not (growing its buffer
 * geometrically, grown_cap(), so appending to a large file costs
 * O(appended bytes), and a 4 KiB write into a 1 GiB file costs 4 KiB).
 *
 * A transaction runs its ops one by one on the live state, each recording
 * in the undo log how to put back what it changed; ops inside a txn never
 * remove a record (they mark it dead; lookups skip dead records).  A PUT
 * installs a new buffer; a WRITE or growing TRUNCATE patches the buffer in
 * place and keeps a copy of the bytes it overwrites (only those a
 * rollback must find again: undo_extent()); a shrinking TRUNCATE only
 * lowers the size (the cut bytes stay in the buffer; commit gives the
 * memory back).  A buffer that realloc moves is renamed in the log
 * (rebase()).  Undoing is then allocation-free: put the saved bytes back,
 * free the buffers the op installed, restore the saved record headers,
 * remove the records it created (removal never allocates).  Committing
 * frees the buffers the ops retired and the saved bytes, and removes the
 * dead records.  So a txn is all-or-nothing even when an allocation fails
 * half way.
 *
 * Quota: st->used changes with every change (created, resized, removed,
 * renamed keys).  A single op checks the growth before its first change;
 * a txn and a tree rename check the total after their last op and undo
 * everything when it grew past the quota (the undo log saved st->used).
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "kv/kvexec.h"

/* How to undo one change to one record. */
struct undo_ent {
	struct kv_rec *rec;
	struct kv_attr attr; /* saved header */
	unsigned char *value;
	uint64_t cap;
	uint8_t dead;
	bool created; /* rec was inserted by this txn */
	void *alloc; /* buffer the op installed: freed on rollback */
	void *retired; /* buffer the op took off: freed on commit */
	struct kv_rec *to_free; /* commit: dead record to free */
	unsigned char *saved; /* bytes the op overwrote in value, */
	uint64_t saved_off, saved_len; /* at saved_off: put back */
	uint8_t moving; /* rebase(): 1 value, 2 alloc name the buffer */
};

struct undo {
	struct undo_ent *e;
	size_t n, cap;
	uint64_t used0; /* st->used before the first change */
};

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

struct kv_rec *kvexec_live(const struct keyspace *ks, const void *key,
    size_t keylen)
{
	struct kv_rec *r = keyspace_get(ks, key, keylen);

	return r != NULL && !r->dead ? r : NULL;
}

uint64_t kvexec_usage(size_t keylen, uint64_t size)
{
	return keylen + size + KV_KEY_OVERHEAD;
}

uint64_t kvexec_usage_of(const struct keyspace *ks)
{
	struct keyspace_iter it;
	struct kv_rec *r;
	uint64_t used = 0;

	for (keyspace_first(ks, &it); (r = keyspace_iter_rec(&it)) != NULL;
	     keyspace_iter_next(&it))
		if (!r->dead)
			used += kvexec_usage(r->keylen, r->attr.size);
	return used;
}

/*
 * Would a single op (@u NULL) that adds @add bytes of usage and takes @sub
 * off leave st->used above the quota and above what it is?  Inside a txn
 * (@u set) the txn decides as a whole: false.
 */
static bool over_quota(const struct kvexec_state *st, const struct undo *u,
    uint64_t add, uint64_t sub)
{
	if (u != NULL || add <= sub)
		return false;
	return st->used > st->quota || add - sub > st->quota - st->used;
}

/* Status of @op's version check against existing record @r. */
static int version_status(const struct kv_rec *r, const struct kv_op *op)
{
	if ((op->flags & KV_F_ANYVER) || op->version == r->attr.version)
		return KV_OK;
	return KV_EVERSION;
}

/*
 * The live record @op names if it passes @op's version check.  Otherwise
 * NULL, with out->status = KV_ENOKEY or KV_EVERSION.
 */
static struct kv_rec *lookup_checked(const struct kvexec_state *st,
    const struct kv_op *op, struct kv_result *out)
{
	struct kv_rec *r = kvexec_live(st->ks, op->key, op->keylen);

	if (r == NULL) {
		out->status = KV_ENOKEY;
		return NULL;
	}
	out->status = version_status(r, op);
	return out->status == KV_OK ? r : NULL;
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

int kvexec_copy_value(const struct kv_rec *r, void **value)
{
	bool ok;

	*value = dup_bytes(r->value, r->attr.size, &ok);
	return ok ? 0 : -ENOMEM;
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
static int create_rec(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = keyspace_get(st->ks, op->key, op->keylen);
	unsigned char *buf;
	bool ok;

	if (over_quota(st, u, kvexec_usage(op->keylen, op->datalen), 0)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	buf = dup_bytes(op->data, op->datalen, &ok);
	if (!ok)
		return -ENOMEM;
	if (r != NULL) { /* dead: revive it as a new key */
		assert(r->dead && u != NULL);
		save(u, r)->alloc = buf;
	} else {
		r = keyspace_rec_new(op->key, op->keylen);
		if (r == NULL || keyspace_insert(st->ks, r) != 0) {
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
	st->used += kvexec_usage(op->keylen, op->datalen);
	memset(&r->attr, 0, sizeof(r->attr));
	r->dead = 0;
	r->value = buf;
	r->cap = op->datalen;
	r->attr.size = op->datalen;
	r->attr.version = 1;
	r->attr.inode = st->next_inode++;
	r->attr.mtime_ns = now;
	r->attr.ctime_ns = now;
	r->attr.kind = op->meta.kind;
	r->attr.mode = op->meta.mode;
	r->attr.uid = op->meta.uid;
	r->attr.gid = op->meta.gid;
	out->attr = r->attr;
	return 0;
}

static int exec_put(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = kvexec_live(st->ks, op->key, op->keylen);
	unsigned char *buf;
	bool ok;

	if (r == NULL) {
		if (!(op->flags & KV_F_ANYVER) && op->version != 0) {
			out->status = KV_ENOKEY;
			return 0;
		}
		return create_rec(st, op, now, u, out);
	}
	out->status = version_status(r, op);
	if (out->status != KV_OK)
		return 0;
	if (over_quota(st, u, op->datalen, r->attr.size)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	buf = dup_bytes(op->data, op->datalen, &ok);
	if (!ok)
		return -ENOMEM;
	st->used = st->used - r->attr.size + op->datalen;
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

static int exec_delete(struct kvexec_state *st, const struct kv_op *op,
    struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = lookup_checked(st, op, out);

	if (r == NULL)
		return 0;
	out->attr = r->attr;
	out->attr.version = 0;
	st->used -= kvexec_usage(r->keylen, r->attr.size);
	if (u != NULL) {
		save(u, r)->retired = r->value;
		r->value = NULL;
		r->cap = 0;
		r->dead = 1;
	} else {
		keyspace_remove(st->ks, op->key, op->keylen);
		keyspace_rec_free(r);
	}
	return 0;
}

/* Values grow by doubling up to this size, then by an eighth. */
#define GROW_DOUBLE_MAX (64ull << 20)

/* The capacity for a value of @size bytes in a buffer of @cap: doubling
 * while small, then +1/8 (a 1 GiB value has at most 128 MiB spare, not
 * 1 GiB), never past KV_FILE_MAX, never below @size. */
static uint64_t grown_cap(uint64_t cap, uint64_t size)
{
	uint64_t n = cap < GROW_DOUBLE_MAX ? cap * 2 : cap + cap / 8;

	if (n > KV_FILE_MAX)
		n = KV_FILE_MAX;
	return n > size ? n : size;
}

/*
 * Before a realloc of @buf: mark the entries of @u that name it (@to
 * NULL).  After it: make the marked entries name @to, @cap bytes (the
 * buffer moved or grew), or just clear the marks (@to NULL: it failed).
 * A rollback then restores the buffer where it is now.
 */
static void rebase(struct undo *u, const void *buf, unsigned char *to,
    uint64_t cap, bool after)
{
	for (size_t i = 0; u != NULL && i < u->n; i++) {
		struct undo_ent *e = &u->e[i];

		if (!after) {
			e->moving = (e->value == buf ? 1 : 0) |
			    (e->alloc == buf ? 2 : 0);
			continue;
		}
		if (to != NULL && (e->moving & 1)) {
			e->value = to;
			e->cap = cap;
		}
		if (to != NULL && (e->moving & 2))
			e->alloc = to;
		e->moving = 0;
	}
}

/* Make @r's buffer hold at least @size bytes, in place (contents and size
 * unchanged); false on ENOMEM (then nothing changed). */
static bool reserve_value(struct undo *u, struct kv_rec *r, uint64_t size,
    bool geometric)
{
	uint64_t ncap;
	unsigned char *p;

	if (size <= r->cap)
		return true;
	ncap = geometric ? grown_cap(r->cap, size) : size;
	if (r->value != NULL)
		rebase(u, r->value, NULL, 0, false);
	p = realloc(r->value, ncap);
	rebase(u, NULL, p, ncap, true);
	if (p == NULL)
		return false;
	r->value = p;
	r->cap = ncap;
	return true;
}

/* After a shrink: give memory back when the buffer is mostly unused
 * (failure is harmless: the buffer stays as it is). */
static void shrink_value(struct kv_rec *r)
{
	unsigned char *p;

	if (r->value == NULL || r->attr.size >= r->cap / 4)
		return;
	if (r->attr.size == 0) {
		free(r->value);
		r->value = NULL;
		r->cap = 0;
		return;
	}
	p = realloc(r->value, r->attr.size);
	if (p != NULL) {
		r->value = p;
		r->cap = r->attr.size;
	}
}

/*
 * How many leading bytes of @r's buffer a rollback of @u must find as
 * they are now: those below its size, or below any size an earlier op of
 * the txn saw it hold (a cut leaves its bytes in place).  None when the
 * txn installed the buffer (a rollback frees it).
 */
static uint64_t undo_extent(const struct undo *u, const struct kv_rec *r)
{
	uint64_t n = r->attr.size;

	if (r->value == NULL)
		return 0;
	for (size_t i = 0; i < u->n; i++) {
		const struct undo_ent *e = &u->e[i];

		if (e->alloc == r->value)
			return 0;
		if (e->value == r->value && e->attr.size > n)
			n = e->attr.size;
	}
	return n;
}

/* Inside a txn (@u set): a copy, in *@saved (*@len bytes, NULL if none),
 * of the bytes of @r's buffer in [@lo, @hi) that a rollback must put back
 * before an op changes them.  0 or -ENOMEM. */
static int save_bytes(const struct undo *u, const struct kv_rec *r, uint64_t lo,
    uint64_t hi, unsigned char **saved, uint64_t *len)
{
	uint64_t keep;

	*saved = NULL;
	*len = 0;
	if (u == NULL)
		return 0;
	keep = undo_extent(u, r);
	if (hi > keep)
		hi = keep;
	if (lo >= hi)
		return 0;
	*saved = malloc(hi - lo);
	if (*saved == NULL)
		return -ENOMEM;
	memcpy(*saved, r->value + lo, hi - lo);
	*len = hi - lo;
	return 0;
}

/*
 * Prepare @r for an op that changes the bytes [@lo, @hi) of its value and
 * leaves it @size bytes long: the buffer reserved, the undo entry (with
 * the overwritten bytes) recorded.  0 or -ENOMEM (nothing changed).
 */
static int patch_begin(struct undo *u, struct kv_rec *r, uint64_t lo,
    uint64_t hi, uint64_t size, bool geometric)
{
	bool fresh = r->value == NULL; /* its first buffer: ours */
	unsigned char *saved;
	uint64_t n;
	struct undo_ent *e;

	if (save_bytes(u, r, lo, hi, &saved, &n) != 0)
		return -ENOMEM;
	if (!reserve_value(u, r, size, geometric)) {
		free(saved);
		return -ENOMEM;
	}
	e = save(u, r);
	if (e != NULL && fresh) {
		/* Rollback frees it and puts back no buffer at all. */
		e->value = NULL;
		e->cap = 0;
		e->alloc = r->value;
	} else if (e != NULL) {
		e->saved = saved;
		e->saved_off = lo;
		e->saved_len = n;
	}
	return 0;
}

static int exec_write(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = lookup_checked(st, op, out);
	uint64_t end, size, old;

	if (r == NULL)
		return 0;
	if (op->datalen == 0) {
		out->attr = r->attr;
		return 0;
	}
	if (op->arg > KV_FILE_MAX - op->datalen) {
		out->status = KV_ETOOBIG;
		return 0;
	}
	old = r->attr.size;
	end = op->arg + op->datalen;
	size = end > old ? end : old;
	if (over_quota(st, u, size, old)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	/* Changed: [min(offset, old size), end) (a gap reads as zeros). */
	if (patch_begin(u, r, op->arg < old ? op->arg : old, end, size, true) !=
	    0)
		return -ENOMEM;
	st->used += size - old;
	if (op->arg > old)
		memset(r->value + old, 0, op->arg - old);
	memcpy(r->value + op->arg, op->data, op->datalen);
	r->attr.size = size;
	changed(r, now, true);
	out->attr = r->attr;
	return 0;
}

static int exec_truncate(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = lookup_checked(st, op, out);
	uint64_t size = op->arg, old;

	if (r == NULL)
		return 0;
	if (size > KV_FILE_MAX) {
		out->status = KV_ETOOBIG;
		return 0;
	}
	if (over_quota(st, u, size, r->attr.size)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	old = r->attr.size;
	if (size > old) {
		if (patch_begin(u, r, old, size, size, false) != 0)
			return -ENOMEM;
		memset(r->value + old, 0, size - old);
	} else {
		save(u, r); /* in a txn the cut bytes stay until commit */
	}
	r->attr.size = size;
	if (u == NULL)
		shrink_value(r);
	st->used = st->used - old + size;
	changed(r, now, true);
	out->attr = r->attr;
	return 0;
}

static int exec_setmeta(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = lookup_checked(st, op, out);

	if (r == NULL)
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

static int exec_rename(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *s = lookup_checked(st, op, out), *d;
	uint64_t add, sub;

	if (s == NULL)
		return 0;
	if (keyspace_keycmp(op->key, op->keylen, op->key2, op->key2len) == 0) {
		out->attr = s->attr;
		return 0;
	}
	d = keyspace_get(st->ks, op->key2, op->key2len);
	add = kvexec_usage(op->key2len, s->attr.size);
	sub = kvexec_usage(s->keylen, s->attr.size);
	if (d != NULL && !d->dead)
		sub += kvexec_usage(d->keylen, d->attr.size);
	if (over_quota(st, u, add, sub)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	if (d == NULL) {
		d = keyspace_rec_new(op->key2, op->key2len);
		if (d == NULL || keyspace_insert(st->ks, d) != 0) {
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
	st->used = st->used - sub + add;
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
		keyspace_remove(st->ks, op->key, op->keylen);
		keyspace_rec_free(s);
	}
	out->attr = d->attr;
	return 0;
}

/* ------------------------------------------------------------------------
 * Tree renames (RENAME with KV_F_TREE)
 *
 * The keys below "src/" are collected first (their records stay put while
 * the tree changes: a record is never moved in memory, and none of them
 * can be a destination, since dst is not below src), then moved one by
 * one with exec_rename() under an undo log: the txn's own, grown here
 * before the first change, or a private one committed at the end.
 * ------------------------------------------------------------------------ */

static int exec_op(struct kvexec_state *st, const struct kv_op *op, int64_t now,
    struct undo *u, struct kv_result *out);

static void rollback(struct kvexec_state *st, struct undo *u);
static void commit(const struct kvexec_state *st, struct undo *u);

/* Is @key (@len) strictly below the directory @dir (@dlen): "dir/..."? */
static bool below(const void *key, size_t len, const void *dir, size_t dlen)
{
	return len > dlen && ((const unsigned char *)key)[dlen] == '/' &&
	    memcmp(key, dir, dlen) == 0;
}

/* The live records strictly below @dir, in key order, malloc'd into *@out
 * (*@n of them).  0 or -ENOMEM. */
static int collect_below(const struct kvexec_state *st, const void *dir,
    size_t dlen, struct kv_rec ***out, size_t *n)
{
	unsigned char prefix[KV_KEY_MAX + 1];
	struct keyspace_iter it;
	struct kv_rec **v = NULL, *r;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (dlen + 1 > KV_KEY_MAX)
		return 0; /* nothing can be below it */
	memcpy(prefix, dir, dlen);
	prefix[dlen] = '/';
	keyspace_seek(st->ks, prefix, dlen + 1, &it);
	for (; (r = keyspace_iter_rec(&it)) != NULL; keyspace_iter_next(&it)) {
		if (!below(r->key, r->keylen, dir, dlen))
			break;
		if (r->dead)
			continue;
		if (*n == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct kv_rec **nv = realloc(v, c * sizeof(*nv));

			if (nv == NULL) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = c;
		}
		v[(*n)++] = r;
	}
	*out = v;
	return 0;
}

/* Grow @u by @more entries (a txn sized its log for two per op; a tree
 * rename needs two per key it moves).  0 or -ENOMEM, @u unchanged. */
static int undo_grow(struct undo *u, size_t more)
{
	struct undo_ent *e = realloc(u->e, (u->cap + more) * sizeof(*e));

	if (e == NULL)
		return -ENOMEM;
	u->e = e;
	u->cap += more;
	return 0;
}

static int exec_rename_tree(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *txn_u, struct kv_result *out)
{
	struct undo own = { .used0 = st->used },
	            *u = txn_u != NULL ? txn_u : &own;
	struct kv_rec **kids = NULL;
	struct kv_op one = *op;
	unsigned char *key2 = NULL;
	struct kv_attr top;
	size_t n = 0;
	int rc;

	if (lookup_checked(st, op, out) == NULL)
		return 0;
	if (keyspace_keycmp(op->key, op->keylen, op->key2, op->key2len) == 0)
		return exec_rename(st, op, now, txn_u, out); /* no change */
	if (below(op->key2, op->key2len, op->key, op->keylen)) {
		out->status = KV_EINVAL;
		return 0;
	}
	rc = collect_below(st, op->key, op->keylen, &kids, &n);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if ((uint64_t)kids[i]->keylen - op->keylen + op->key2len >
		    KV_KEY_MAX) {
			free(kids);
			out->status = KV_EINVAL;
			return 0;
		}
	key2 = malloc(KV_KEY_MAX);
	if (key2 == NULL ||
	    undo_grow(u, txn_u != NULL ? 2 * n : 2 * (n + 1)) != 0) {
		free(key2);
		free(kids);
		free(own.e);
		return -ENOMEM;
	}
	one.flags = KV_F_ANYVER;
	rc = exec_rename(st, &one, now, u, out);
	top = out->attr;
	memcpy(key2, op->key2, op->key2len);
	for (size_t i = 0; rc == 0 && out->status == KV_OK && i < n; i++) {
		struct kv_rec *k = kids[i];
		size_t rest = k->keylen - op->keylen;

		memcpy(key2 + op->key2len, k->key + op->keylen, rest);
		one.key = k->key;
		one.keylen = k->keylen;
		one.key2 = key2;
		one.key2len = (uint32_t)(op->key2len + rest);
		rc = exec_rename(st, &one, now, u, out);
	}
	free(kids);
	free(key2);
	if (rc == 0 && out->status == KV_OK)
		out->attr = top;
	if (txn_u == NULL && rc == 0 && out->status == KV_OK &&
	    st->used > own.used0 && st->used > st->quota) {
		out->status = KV_ENOSPC;
		memset(&out->attr, 0, sizeof(out->attr));
	}
	if (txn_u == NULL) {
		if (rc != 0 || out->status != KV_OK)
			rollback(st, u);
		else
			commit(st, u);
		free(own.e);
	}
	return rc;
}

static int exec_op(struct kvexec_state *st, const struct kv_op *op, int64_t now,
    struct undo *u, struct kv_result *out)
{
	switch (op->type) {
	case KV_OP_PUT:
		return exec_put(st, op, now, u, out);
	case KV_OP_DELETE:
		return exec_delete(st, op, u, out);
	case KV_OP_WRITE:
		return exec_write(st, op, now, u, out);
	case KV_OP_TRUNCATE:
		return exec_truncate(st, op, now, u, out);
	case KV_OP_SETMETA:
		return exec_setmeta(st, op, now, u, out);
	case KV_OP_RENAME:
		if (op->flags & KV_F_TREE)
			return exec_rename_tree(st, op, now, u, out);
		return exec_rename(st, op, now, u, out);
	}
	assert(!"exec_op: not a mutation (the decoder lets none through)");
	return 0;
}

int kvexec_op(struct kvexec_state *st, const struct kv_op *op, int64_t now,
    struct kv_result *out)
{
	return exec_op(st, op, now, NULL, out);
}

/* ------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------ */

static void rollback(struct kvexec_state *st, struct undo *u)
{
	st->used = u->used0;
	while (u->n > 0) {
		struct undo_ent *e = &u->e[--u->n];
		struct kv_rec *r = e->rec;

		if (e->saved != NULL) {
			memcpy(e->value + e->saved_off, e->saved, e->saved_len);
			free(e->saved);
		}
		free(e->alloc);
		if (e->created) {
			keyspace_remove(st->ks, r->key, r->keylen);
			free(r); /* its value, if any, was e->alloc or moved */
			continue;
		}
		r->attr = e->attr;
		r->value = e->value;
		r->cap = e->cap;
		r->dead = e->dead;
	}
}

static void commit(const struct kvexec_state *st, struct undo *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->e[i].retired);
		free(u->e[i].saved);
	}
	for (size_t i = 0; i < u->n; i++) {
		struct kv_rec *r = u->e[i].rec;

		if (r->dead == 0)
			shrink_value(r); /* after a cut in the txn */
		if (r->dead == 1) {
			keyspace_remove(st->ks, r->key, r->keylen);
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
static uint32_t failed_compare(const struct kvexec_state *st,
    const struct kv_cmd *c)
{
	struct kv_cmd_iter it;
	struct kv_cmp cmp;

	kv_cmd_cmp_iter(c, &it);
	for (uint32_t i = 0; kv_cmd_next_cmp(&it, &cmp); i++) {
		struct kv_rec *r = kvexec_live(st->ks, cmp.key, cmp.keylen);
		bool ok = cmp.version == KV_VERSION_ANY
		    ? r != NULL
		    : (r != NULL ? r->attr.version : 0) == cmp.version;

		if (!ok)
			return i;
	}
	return KV_NO_INDEX;
}

int kvexec_txn(struct kvexec_state *st, const struct kv_cmd *c, int64_t now,
    struct kv_result *out)
{
	uint64_t saved_inode = st->next_inode;
	struct undo u = { .n = 0,
		.cap = 2 * (size_t)c->nops,
		.used0 = st->used };
	struct kv_cmd_iter it;
	struct kv_result res;
	struct kv_op op, first = { 0 };
	struct kv_rec *r;

	out->fail_cmp = failed_compare(st, c);
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
		rc = exec_op(st, &op, now, &u, &res);
		if (rc != 0 || res.status != KV_OK) {
			rollback(st, &u);
			st->next_inode = saved_inode;
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
	if (st->used > u.used0 && st->used > st->quota) {
		rollback(st, &u);
		st->next_inode = saved_inode;
		free(u.e);
		memset(&out->attr, 0, sizeof(out->attr));
		out->status = KV_ENOSPC;
		out->fail_op = c->nops - 1;
		return 0;
	}
	commit(st, &u);
	free(u.e);
	if (first.type == KV_OP_RENAME)
		r = kvexec_live(st->ks, first.key2, first.key2len);
	else
		r = kvexec_live(st->ks, first.key, first.keylen);
	if (r != NULL)
		out->attr = r->attr;
	else
		out->attr.version = 0;
	return 0;
}

/* ------------------------------------------------------------------------
 * Apply
 * ------------------------------------------------------------------------ */

int kvexec_get(const struct kvexec_state *st, const struct kv_op *op,
    struct kv_result *out)
{
	struct kv_rec *r = kvexec_live(st->ks, op->key, op->keylen);
	bool ok;

	if (r == NULL) {
		out->status = KV_ENOKEY;
		return 0;
	}
	if (r->attr.size > KV_VALUE_MAX) {
		/* More than a result carries: read it in ranges. */
		out->status = KV_ETOOBIG;
		out->attr = r->attr;
		return 0;
	}
	out->value = dup_bytes(r->value, r->attr.size, &ok);
	if (!ok)
		return -ENOMEM;
	out->value_len = r->attr.size;
	out->attr = r->attr;
	return 0;
}
