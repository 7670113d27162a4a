/*
 * fsapp.c - the apply and restore wrappers (see fsapp.h).
 *
 * The wrappers hold the inode table lock around the state machine's own
 * apply/restore, so that a request handler holding the table lock sees the
 * table and the state at the same applied index (inode.h).  Lock order is
 * the table, then the state machine; the notifier queue is only appended
 * to (it never blocks).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fsapp.h"
#include "fs/inode.h"
#include "fs/notify.h"
#include "fs/rklock.h"
#include "kv/cmd.h"
#include "raft/util/logging.h"

struct hook {
	struct fs *fs;
	struct rsm_app inner;
};

/* One process, one mount: the hook's state. */
static struct hook the_hook;

/* Inodes whose name in the table a command removed: once it is applied,
 * each moves to another of its names if it has one (hard links). */
struct died {
	uint64_t small[16];
	uint64_t *v;
	size_t n, cap;
};

static void died_add(struct died *d, uint64_t ino)
{
	if (ino == 0)
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap * 2;
		uint64_t *v = d->v == d->small
		    ? malloc(cap * sizeof(*v))
		    : realloc(d->v, cap * sizeof(*v));

		if (v == NULL) {
			log_warnx("inode table: out of memory: inode %" PRIu64
			          " stays dead",
			    ino);
			return;
		}
		if (d->v == d->small)
			memcpy(v, d->small, sizeof(d->small));
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = ino;
}

/* Move each inode of @d to a current name (the state is the one after the
 * command), or leave it dead when it has none. */
static void died_relink(struct fs *fs, struct died *d)
{
	static char key[KV_KEY_MAX]; /* under the table lock */
	size_t len;

	for (size_t i = 0; i < d->n; i++)
		if (kv_name_of(fs->kv, d->v[i], key, &len, NULL) == 0 &&
		    inode_set_key_locked(fs->inodes, d->v[i], key, len) ==
		        -ENOMEM)
			log_warnx("inode table: out of memory on a link");
	if (d->v != d->small)
		free(d->v);
}

static void track_op(struct fs *fs, const struct kv_op *op, struct died *d)
{
	uint64_t ino = 0;

	switch (op->type) {
	case KV_OP_FENCE: /* a txn's lock check: changes no key */
	case KV_OP_OPEN: /* registrations (fs/rkopen.h): no key either */
	case KV_OP_CLOSE:
		return;
	case KV_OP_DELETE:
		died_add(d,
		    inode_applied_delete(fs->inodes, op->key, op->keylen));
		break;
	case KV_OP_RENAME:
		if (op->keylen == op->key2len &&
		    memcmp(op->key, op->key2, op->keylen) == 0)
			break;
		if ((op->flags & KV_F_TREE ? inode_applied_rename_tree
		                           : inode_applied_rename)(fs->inodes,
		        op->key, op->keylen, op->key2, op->key2len, &ino) != 0)
			log_warnx("inode table: out of memory on a rename");
		died_add(d, ino);
		notifier_push(fs->notifier, op->key2, op->key2len, true);
		break;
	case KV_OP_LINK:
		/* A new name (the table keeps the one it has) and a new
		 * nlink and ctime, seen through every name. */
		notifier_push(fs->notifier, op->key2, op->key2len, false);
		break;
	default:
		break;
	}
	notifier_push(fs->notifier, op->key, op->keylen, false);
}

/* Follow what the command @cmd did, given its encoded result. */
static void track(struct fs *fs, const void *cmd, size_t len, const void *reply,
    size_t reply_len)
{
	struct kv_result res;
	struct kv_cmd c;
	struct kv_cmd_iter it;
	struct kv_op op;
	struct died d = { .cap = 16 };

	d.v = d.small;
	if (reply == NULL || kv_result_decode(reply, reply_len, &res) != 0)
		return;
	if (res.status != KV_OK || (res.flags & KV_RES_DUP))
		return; /* nothing changed */
	if (kv_cmd_decode(cmd, len, &c) != 0)
		return;
	switch (c.type) {
	case KV_OP_PUT:
	case KV_OP_DELETE:
	case KV_OP_WRITE:
	case KV_OP_TRUNCATE:
	case KV_OP_SETMETA:
	case KV_OP_RENAME:
	case KV_OP_LINK:
		track_op(fs, &c.op, &d);
		break;
	case KV_OP_TXN:
		kv_cmd_op_iter(&c, &it);
		while (kv_cmd_next_op(&it, &op))
			track_op(fs, &op, &d);
		break;
	default:
		break;
	}
	died_relink(fs, &d);
}

static int hook_apply(void *arg, raft_index index, const void *cmd, size_t len,
    void **reply, size_t *reply_len)
{
	struct hook *h = arg;
	int rv;

	inode_lock(h->fs->inodes);
	rv = h->inner.apply(h->inner.arg, index, cmd, len, reply, reply_len);
	if (rv == 0)
		track(h->fs, cmd, len, *reply, *reply_len);
	inode_unlock(h->fs->inodes);
	return rv;
}

static int hook_snapshot(void *arg, void **data, size_t *len)
{
	struct hook *h = arg;

	return h->inner.snapshot(h->inner.arg, data, len);
}

static int hook_snapshot_begin(void *arg, void **view)
{
	struct hook *h = arg;

	return h->inner.snapshot_begin(h->inner.arg, view);
}

static int hook_snapshot_finish(void *arg, void *view, void **data, size_t *len)
{
	struct hook *h = arg;

	return h->inner.snapshot_finish(h->inner.arg, view, data, len);
}

static void kill_one(void *arg, uint64_t ino)
{
	inode_set_key_locked(arg, ino, NULL, 0);
}

static int relink_one(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	(void)value;
	/* -ESTALE (not known to the kernel) is the common case. */
	inode_set_key_locked(arg, attr->inode, key, keylen);
	return 0;
}

static int hook_restore(void *arg, const void *data, size_t len)
{
	struct hook *h = arg;
	int rv;

	inode_lock(h->fs->inodes);
	rv = h->inner.restore(h->inner.arg, data, len);
	if (rv == 0) {
		/* Every known inode's key, from scratch. */
		inode_each_locked(h->fs->inodes, kill_one, h->fs->inodes);
		kv_list(h->fs->kv, "/", 1, NULL, 0, 0, -1, relink_one,
		    h->fs->inodes);
		if (h->fs->locks != NULL)
			rklock_restored(h->fs->locks, h->fs->kv);
		/* Anything may have changed: no notification says what
		 * (cache=relaxed opens read direct until the kernel was
		 * given current attributes). */
		inode_kernel_stale_locked(h->fs->inodes);
	}
	inode_unlock(h->fs->inodes);
	return rv;
}

static int hook_query(void *arg, const void *q, size_t len, void **reply,
    size_t *reply_len)
{
	struct hook *h = arg;

	return h->inner.query(h->inner.arg, q, len, reply, reply_len);
}

static int hook_query_quick(void *arg, const void *q, size_t len, void **reply,
    size_t *reply_len)
{
	struct hook *h = arg;

	return h->inner.query_quick(h->inner.arg, q, len, reply, reply_len);
}

void fsapp_hook(void *arg, struct rsm_app *rapp, struct kv *kv)
{
	struct fs *fs = arg;
	struct hook *h = &the_hook;

	fs->kv = kv;
	if (fs->locks != NULL)
		rklock_attach(fs->locks, kv);
	h->fs = fs;
	h->inner = *rapp;
	rapp->arg = h;
	rapp->apply = hook_apply;
	rapp->snapshot = hook_snapshot;
	rapp->snapshot_begin = h->inner.snapshot_begin ? hook_snapshot_begin
	                                               : NULL;
	rapp->snapshot_finish = h->inner.snapshot_finish ? hook_snapshot_finish
	                                                 : NULL;
	rapp->restore = hook_restore;
	rapp->query = h->inner.query ? hook_query : NULL;
	rapp->query_quick = h->inner.query_quick ? hook_query_quick : NULL;
}
