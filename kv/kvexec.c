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
 * Names and files: a record (a key) points to an inode (keyspace.h: the
 * value, version and metadata); commands look names up and change the
 * inode they name.
 *
 * A transaction runs its ops one by one on the live state, each recording
 * in the undo log how to put back what it changed (the record's inode
 * pointer and dead flag, the inode's header; the log holds a reference to
 * every inode it saved, so none is freed before commit or rollback); ops
 * inside a txn never remove a record (they mark it dead; lookups skip dead
 * records).  A PUT installs a new buffer; a WRITE or growing TRUNCATE
 * patches the buffer in place and keeps a copy of the bytes it overwrites
 * (only those a rollback must find again: undo_extent()); a shrinking
 * TRUNCATE only lowers the size (the cut bytes stay in the buffer; commit
 * gives the memory back).  A buffer that realloc moves is renamed in the
 * log (rebase()).  Undoing is then allocation-free: put the saved bytes
 * back, free the buffers the op installed, restore the saved record
 * headers, remove the records it created (removal never allocates).
 * Committing frees the buffers the ops retired and the saved bytes, and
 * removes the dead records.  So a txn is all-or-nothing even when an
 * allocation fails half way.
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

/* How to undo one change to one record and its inode. */
struct undo_ent {
	struct kv_rec *rec;
	struct kv_inode *ino; /* rec's inode before the change; the log holds
	                         a reference until commit or rollback */
	struct kv_attr attr; /* ino's saved header */
	unsigned char *value;
	uint64_t cap;
	uint8_t dead;
	bool created; /* rec was inserted by this txn */
	struct kv_inode *fresh; /* inode the op created (its value: alloc) */
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

/* What a name counts for without its inode's value. */
static uint64_t name_usage(size_t keylen)
{
	return kvexec_usage(keylen, 0);
}

uint64_t kvexec_usage_of(const struct keyspace *ks)
{
	struct keyspace_iter it;
	struct kv_rec *r;
	uint64_t used = 0;

	for (keyspace_first(ks, &it); (r = keyspace_iter_rec(&it)) != NULL;
	     keyspace_iter_next(&it))
		if (!r->dead)
			used += kvexec_usage(r->keylen,
			    keyspace_rec_is_first(r) ? r->ino->attr.size : 0);
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
	if ((op->flags & KV_F_ANYVER) || op->version == r->ino->attr.version)
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

	*value = dup_bytes(r->ino->value, r->ino->attr.size, &ok);
	return ok ? 0 : -ENOMEM;
}

/* Record @r's header and its inode's in @u before changing them (no-op
 * without a log).  The log holds the inode until commit or rollback. */
static struct undo_ent *save(struct undo *u, struct kv_rec *r)
{
	struct undo_ent *e;

	if (u == NULL)
		return NULL;
	assert(u->n < u->cap);
	e = &u->e[u->n++];
	memset(e, 0, sizeof(*e));
	e->rec = r;
	e->ino = r->ino;
	keyspace_inode_ref(e->ino);
	e->attr = r->ino->attr;
	e->value = r->ino->value;
	e->cap = r->ino->cap;
	e->dead = r->dead;
	return e;
}

/* Install @buf (@size bytes, @cap allocated) as the value of @r's inode. */
static void set_value(struct undo *u, struct kv_rec *r, unsigned char *buf,
    uint64_t size, uint64_t cap)
{
	struct kv_inode *ino = r->ino;
	struct undo_ent *e = save(u, r);

	if (e != NULL) {
		e->alloc = buf;
		e->retired = ino->value;
	} else {
		free(ino->value);
	}
	ino->value = buf;
	ino->cap = cap;
	ino->attr.size = size;
}

static void changed(struct kv_inode *ino, int64_t now, bool content)
{
	ino->attr.version++;
	ino->attr.ctime_ns = now;
	if (content)
		ino->attr.mtime_ns = now;
}

/* ------------------------------------------------------------------------
 * Single operations (with @u: inside a txn, undoable)
 * ------------------------------------------------------------------------ */

/* Create @op->key (absent, or dead inside a txn) with @op's value and meta,
 * naming a new inode. */
static int create_rec(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = keyspace_get(st->ks, op->key, op->keylen);
	struct kv_inode *ino;
	unsigned char *buf;
	bool ok;

	if (over_quota(st, u, kvexec_usage(op->keylen, op->datalen), 0)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	buf = dup_bytes(op->data, op->datalen, &ok);
	if (!ok)
		return -ENOMEM;
	if (r != NULL) { /* dead: revive it as a new key, a new inode */
		struct undo_ent *e;

		assert(r->dead && u != NULL);
		ino = keyspace_inode_new();
		if (ino == NULL) {
			free(buf);
			return -ENOMEM;
		}
		e = save(u, r);
		e->alloc = buf;
		e->fresh = ino;
		keyspace_rec_point(r, ino); /* a new inode has room for one */
	} else {
		r = keyspace_rec_new(op->key, op->keylen, NULL);
		if (r == NULL || keyspace_insert(st->ks, r) != 0) {
			keyspace_rec_free(r);
			free(buf);
			return -ENOMEM;
		}
		ino = r->ino;
		if (u != NULL) {
			struct undo_ent *e = save(u, r);

			e->created = true;
			e->fresh = ino;
			e->alloc = buf;
		}
	}
	st->used += kvexec_usage(op->keylen, op->datalen);
	r->dead = 0;
	memset(&ino->attr, 0, sizeof(ino->attr));
	ino->value = buf;
	ino->cap = op->datalen;
	ino->attr.size = op->datalen;
	ino->attr.version = 1;
	ino->attr.nlink = 1;
	ino->attr.inode = st->next_inode++;
	ino->attr.mtime_ns = now;
	ino->attr.ctime_ns = now;
	ino->attr.kind = op->meta.kind;
	ino->attr.mode = op->meta.mode;
	ino->attr.uid = op->meta.uid;
	ino->attr.gid = op->meta.gid;
	keyspace_inode_add(st->ks, ino);
	out->attr = ino->attr;
	return 0;
}

/* May @ino become of @kind?  Not a directory while it has several names
 * (a directory has exactly one: LINK refuses directories). */
static bool kind_fits(const struct kv_inode *ino, uint8_t kind)
{
	return kind != KV_KIND_DIR || ino->attr.nlink == 1;
}

static int exec_put(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = kvexec_live(st->ks, op->key, op->keylen);
	struct kv_inode *ino;
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
	ino = r->ino;
	if ((op->flags & KV_F_SETMETA) && !kind_fits(ino, op->meta.kind)) {
		out->status = KV_EINVAL;
		return 0;
	}
	if (over_quota(st, u, op->datalen, ino->attr.size)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	buf = dup_bytes(op->data, op->datalen, &ok);
	if (!ok)
		return -ENOMEM;
	st->used = st->used - ino->attr.size + op->datalen;
	set_value(u, r, buf, op->datalen, op->datalen);
	if (op->flags & KV_F_SETMETA) {
		ino->attr.kind = op->meta.kind;
		ino->attr.mode = op->meta.mode;
		ino->attr.uid = op->meta.uid;
		ino->attr.gid = op->meta.gid;
	}
	changed(ino, now, true);
	out->attr = ino->attr;
	return 0;
}

/*
 * @ino loses one of its names (the caller removes or re-points the
 * record, saved in @e inside a txn): nlink - 1; the last name takes the
 * value along (inside a txn the value is retired now, the inode freed at
 * commit), otherwise the inode's version moves and ctime = now.
 */
static void unlinked(struct kvexec_state *st, struct kv_inode *ino,
    struct undo_ent *e, int64_t now)
{
	assert(ino->attr.nlink > 0);
	if (--ino->attr.nlink > 0) {
		changed(ino, now, false);
		return;
	}
	st->used -= ino->attr.size;
	if (e != NULL) {
		e->retired = ino->value;
		ino->value = NULL;
		ino->cap = 0;
	}
}

static int exec_delete(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = lookup_checked(st, op, out);
	struct kv_inode *ino;

	if (r == NULL)
		return 0;
	ino = r->ino;
	st->used -= name_usage(r->keylen);
	unlinked(st, ino, save(u, r), now);
	out->attr = ino->attr;
	out->attr.version = 0;
	if (u != NULL) {
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

/* Make @ino's buffer hold at least @size bytes, in place (contents and
 * size unchanged); false on ENOMEM (then nothing changed). */
static bool reserve_value(struct undo *u, struct kv_inode *ino, uint64_t size,
    bool geometric)
{
	uint64_t ncap;
	unsigned char *p;

	if (size <= ino->cap)
		return true;
	ncap = geometric ? grown_cap(ino->cap, size) : size;
	if (ino->value != NULL)
		rebase(u, ino->value, NULL, 0, false);
	p = realloc(ino->value, ncap);
	rebase(u, NULL, p, ncap, true);
	if (p == NULL)
		return false;
	ino->value = p;
	ino->cap = ncap;
	return true;
}

/* After a shrink: give memory back when the buffer is mostly unused
 * (failure is harmless: the buffer stays as it is). */
static void shrink_value(struct kv_inode *ino)
{
	unsigned char *p;

	if (ino->value == NULL || ino->attr.size >= ino->cap / 4)
		return;
	if (ino->attr.size == 0) {
		free(ino->value);
		ino->value = NULL;
		ino->cap = 0;
		return;
	}
	p = realloc(ino->value, ino->attr.size);
	if (p != NULL) {
		ino->value = p;
		ino->cap = ino->attr.size;
	}
}

/*
 * How many leading bytes of @ino's buffer a rollback of @u must find as
 * they are now: those below its size, or below any size an earlier op of
 * the txn saw it hold (a cut leaves its bytes in place).  None when the
 * txn installed the buffer (a rollback frees it).
 */
static uint64_t undo_extent(const struct undo *u, const struct kv_inode *ino)
{
	uint64_t n = ino->attr.size;

	if (ino->value == NULL)
		return 0;
	for (size_t i = 0; i < u->n; i++) {
		const struct undo_ent *e = &u->e[i];

		if (e->alloc == ino->value)
			return 0;
		if (e->value == ino->value && e->attr.size > n)
			n = e->attr.size;
	}
	return n;
}

/* Inside a txn (@u set): a copy, in *@saved (*@len bytes, NULL if none),
 * of the bytes of @ino's buffer in [@lo, @hi) that a rollback must put
 * back before an op changes them.  0 or -ENOMEM. */
static int save_bytes(const struct undo *u, const struct kv_inode *ino,
    uint64_t lo, uint64_t hi, unsigned char **saved, uint64_t *len)
{
	uint64_t keep;

	*saved = NULL;
	*len = 0;
	if (u == NULL)
		return 0;
	keep = undo_extent(u, ino);
	if (hi > keep)
		hi = keep;
	if (lo >= hi)
		return 0;
	*saved = malloc(hi - lo);
	if (*saved == NULL)
		return -ENOMEM;
	memcpy(*saved, ino->value + lo, hi - lo);
	*len = hi - lo;
	return 0;
}

/*
 * Prepare the inode of @r for an op that changes the bytes [@lo, @hi) of
 * its value and leaves it @size bytes long: the buffer reserved, the undo
 * entry (with the overwritten bytes) recorded.  0 or -ENOMEM (nothing
 * changed).
 */
static int patch_begin(struct undo *u, struct kv_rec *r, uint64_t lo,
    uint64_t hi, uint64_t size, bool geometric)
{
	struct kv_inode *ino = r->ino;
	bool fresh = ino->value == NULL; /* its first buffer: ours */
	unsigned char *saved;
	uint64_t n;
	struct undo_ent *e;

	if (save_bytes(u, ino, lo, hi, &saved, &n) != 0)
		return -ENOMEM;
	if (!reserve_value(u, ino, size, geometric)) {
		free(saved);
		return -ENOMEM;
	}
	e = save(u, r);
	if (e != NULL && fresh) {
		/* Rollback frees it and puts back no buffer at all. */
		e->value = NULL;
		e->cap = 0;
		e->alloc = ino->value;
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
	struct kv_inode *ino;
	uint64_t end, size, old;

	if (r == NULL)
		return 0;
	ino = r->ino;
	if (op->datalen == 0) {
		out->attr = ino->attr;
		return 0;
	}
	if (op->arg > KV_FILE_MAX - op->datalen) {
		out->status = KV_ETOOBIG;
		return 0;
	}
	old = ino->attr.size;
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
		memset(ino->value + old, 0, op->arg - old);
	memcpy(ino->value + op->arg, op->data, op->datalen);
	ino->attr.size = size;
	changed(ino, now, true);
	out->attr = ino->attr;
	return 0;
}

static int exec_truncate(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = lookup_checked(st, op, out);
	struct kv_inode *ino;
	uint64_t size = op->arg, old;

	if (r == NULL)
		return 0;
	ino = r->ino;
	if (size > KV_FILE_MAX) {
		out->status = KV_ETOOBIG;
		return 0;
	}
	if (over_quota(st, u, size, ino->attr.size)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	old = ino->attr.size;
	if (size > old) {
		if (patch_begin(u, r, old, size, size, false) != 0)
			return -ENOMEM;
		memset(ino->value + old, 0, size - old);
	} else {
		save(u, r); /* in a txn the cut bytes stay until commit */
	}
	ino->attr.size = size;
	if (u == NULL)
		shrink_value(ino);
	st->used = st->used - old + size;
	changed(ino, now, true);
	out->attr = ino->attr;
	return 0;
}

static int exec_setmeta(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *r = lookup_checked(st, op, out);
	struct kv_inode *ino;

	if (r == NULL)
		return 0;
	ino = r->ino;
	if ((op->mask & KV_META_KIND) && !kind_fits(ino, op->meta.kind)) {
		out->status = KV_EINVAL;
		return 0;
	}
	save(u, r);
	if (op->mask & KV_META_MODE)
		ino->attr.mode = op->meta.mode;
	if (op->mask & KV_META_UID)
		ino->attr.uid = op->meta.uid;
	if (op->mask & KV_META_GID)
		ino->attr.gid = op->meta.gid;
	if (op->mask & KV_META_KIND)
		ino->attr.kind = op->meta.kind;
	if (op->mask & KV_META_MTIME)
		ino->attr.mtime_ns = op->mtime_ns;
	changed(ino, now, false);
	out->attr = ino->attr;
	return 0;
}

static int exec_rename(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *s = lookup_checked(st, op, out), *d;
	struct kv_inode *ino;
	uint64_t add, sub;

	if (s == NULL)
		return 0;
	ino = s->ino;
	if (keyspace_keycmp(op->key, op->keylen, op->key2, op->key2len) == 0) {
		out->attr = ino->attr;
		return 0;
	}
	d = keyspace_get(st->ks, op->key2, op->key2len);
	if (d != NULL && !d->dead && d->ino == ino) {
		out->attr = ino->attr; /* two names of one inode: POSIX no-op */
		return 0;
	}
	add = name_usage(op->key2len);
	sub = name_usage(s->keylen);
	if (d != NULL && !d->dead) {
		sub += name_usage(d->keylen);
		if (d->ino->attr.nlink == 1)
			sub += d->ino->attr.size; /* its inode goes */
	}
	if (over_quota(st, u, add, sub)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	if (d == NULL) {
		d = keyspace_rec_new(op->key2, op->key2len, ino);
		if (d == NULL || keyspace_insert(st->ks, d) != 0) {
			keyspace_rec_free(d);
			return -ENOMEM;
		}
		if (u != NULL)
			save(u, d)->created = true;
	} else {
		struct kv_inode *old = d->ino;
		struct undo_ent *e;

		if (keyspace_inode_reserve(ino, ino->nnames + 1) != 0)
			return -ENOMEM;
		e = save(u, d);
		/* d's name leaves its inode (which may go with it: now, or
		 * at commit when the log lets go of it) */
		if (!d->dead) {
			unlinked(st, old, e, now);
			st->used -= name_usage(d->keylen); /* added back */
		}
		keyspace_rec_point(d, ino);
	}
	st->used = st->used - name_usage(s->keylen) + add;
	save(u, s);
	d->dead = 0;
	ino->attr.version++;
	ino->attr.ctime_ns = now;
	if (u != NULL) {
		s->dead = 1;
	} else {
		keyspace_remove(st->ks, op->key, op->keylen);
		keyspace_rec_free(s);
	}
	out->attr = ino->attr;
	return 0;
}

/* LINK src dst: a new name dst for src's inode (kv.h). */
static int exec_link(struct kvexec_state *st, const struct kv_op *op,
    int64_t now, struct undo *u, struct kv_result *out)
{
	struct kv_rec *s = lookup_checked(st, op, out), *d;
	struct kv_inode *ino;

	if (s == NULL)
		return 0;
	ino = s->ino;
	if (ino->attr.kind == KV_KIND_DIR || ino->attr.nlink >= KV_LINK_MAX) {
		out->status = KV_EINVAL;
		return 0;
	}
	d = keyspace_get(st->ks, op->key2, op->key2len);
	if (d != NULL && !d->dead) {
		out->status = KV_EVERSION; /* dst exists (src == dst too) */
		return 0;
	}
	if (over_quota(st, u, name_usage(op->key2len), 0)) {
		out->status = KV_ENOSPC;
		return 0;
	}
	if (keyspace_inode_reserve(ino, ino->nnames + 1) != 0)
		return -ENOMEM;
	if (d == NULL) {
		d = keyspace_rec_new(op->key2, op->key2len, ino);
		if (d == NULL || keyspace_insert(st->ks, d) != 0) {
			keyspace_rec_free(d);
			return -ENOMEM;
		}
		save(u, s);
		if (u != NULL)
			save(u, d)->created = true;
	} else { /* dead inside this txn: revived as a name of ino */
		save(u, s);
		save(u, d);
		keyspace_rec_point(d, ino);
		d->dead = 0;
	}
	st->used += name_usage(op->key2len);
	ino->attr.nlink++;
	changed(ino, now, false);
	out->attr = ino->attr;
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
	const struct kv_rec *s, *d;
	size_t n = 0;
	int rc;

	s = lookup_checked(st, op, out);
	if (s == NULL)
		return 0;
	d = kvexec_live(st->ks, op->key2, op->key2len);
	if (keyspace_keycmp(op->key, op->keylen, op->key2, op->key2len) == 0 ||
	    (d != NULL && d->ino == s->ino))
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
		return exec_delete(st, op, now, u, out);
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
	case KV_OP_LINK:
		return exec_link(st, op, now, u, out);
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
		if (e->fresh != NULL) { /* its value was e->alloc */
			e->fresh->value = NULL;
			e->fresh->cap = 0;
		}
		if (e->created) {
			keyspace_remove(st->ks, r->key, r->keylen);
			keyspace_rec_free(r);
		} else {
			/* Room in e->ino's names: r left it during this txn and
			 * everything after that is undone already. */
			keyspace_rec_point(r, e->ino);
			e->ino->attr = e->attr;
			e->ino->value = e->value;
			e->ino->cap = e->cap;
			r->dead = e->dead;
		}
		keyspace_inode_unref(e->ino); /* the log's reference */
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
			shrink_value(r->ino); /* after a cut in the txn */
		if (r->dead == 1) {
			keyspace_remove(st->ks, r->key, r->keylen);
			r->dead = 2;
			u->e[i].to_free = r;
		}
	}
	for (size_t i = 0; i < u->n; i++)
		if (u->e[i].to_free != NULL)
			keyspace_rec_free(u->e[i].to_free);
	for (size_t i = 0; i < u->n; i++)
		keyspace_inode_unref(u->e[i].ino); /* the log's references */
	u->n = 0;
}

/* Is there a key below "@key/"?  (Compares run before any op of the txn,
 * so no record is dead yet.) */
static bool has_child(const struct keyspace *ks, const void *key,
    uint32_t keylen)
{
	unsigned char prefix[KV_KEY_MAX + 1];
	struct keyspace_iter it;
	struct kv_rec *r;

	if (keylen >= KV_KEY_MAX)
		return false; /* nothing can lie below a key this long */
	memcpy(prefix, key, keylen);
	prefix[keylen] = '/';
	keyspace_seek(ks, prefix, keylen + 1u, &it);
	r = keyspace_iter_rec(&it);
	return r != NULL && r->keylen > keylen &&
	    memcmp(r->key, prefix, keylen + 1u) == 0;
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
		bool ok;

		if (cmp.version == KV_VERSION_NOCHILD)
			ok = !has_child(st->ks, cmp.key, cmp.keylen);
		else if (cmp.version == KV_VERSION_OPEN ||
		    cmp.version == KV_VERSION_NOTOPEN)
			ok = r != NULL &&
			    (st->is_open != NULL &&
			        st->is_open(st->open_arg,
			            r->ino->attr.inode)) ==
			        (cmp.version == KV_VERSION_OPEN);
		else if (cmp.version == KV_VERSION_ANY)
			ok = r != NULL;
		else
			ok = (r != NULL ? r->ino->attr.version : 0) ==
			    cmp.version;

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
	if (first.type == KV_OP_RENAME || first.type == KV_OP_LINK)
		r = kvexec_live(st->ks, first.key2, first.key2len);
	else
		r = kvexec_live(st->ks, first.key, first.keylen);
	if (r != NULL)
		out->attr = r->ino->attr;
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
	if (r->ino->attr.size > KV_VALUE_MAX) {
		/* More than a result carries: read it in ranges. */
		out->status = KV_ETOOBIG;
		out->attr = r->ino->attr;
		return 0;
	}
	out->value = dup_bytes(r->ino->value, r->ino->attr.size, &ok);
	if (!ok)
		return -ENOMEM;
	out->value_len = r->ino->attr.size;
	out->attr = r->ino->attr;
	return 0;
}
