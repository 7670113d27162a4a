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

static void track_op(struct fs *fs, const struct kv_op *op)
{
	switch (op->type) {
	case KV_OP_FENCE: /* a txn's lock check: changes no key */
		return;
	case KV_OP_DELETE:
		inode_applied_delete(fs->inodes, op->key, op->keylen);
		break;
	case KV_OP_RENAME:
		if (op->keylen == op->key2len &&
		    memcmp(op->key, op->key2, op->keylen) == 0)
			break;
		if ((op->flags & KV_F_TREE ? inode_applied_rename_tree
		                           : inode_applied_rename)(fs->inodes,
		        op->key, op->keylen, op->key2, op->key2len) != 0)
			log_warnx("inode table: out of memory on a rename");
		notifier_push(fs->notifier, op->key2, op->key2len);
		break;
	default:
		break;
	}
	notifier_push(fs->notifier, op->key, op->keylen);
}

/* Follow what the command @cmd did, given its encoded result. */
static void track(struct fs *fs, const void *cmd, size_t len, const void *reply,
    size_t reply_len)
{
	struct kv_result res;
	struct kv_cmd c;
	struct kv_cmd_iter it;
	struct kv_op op;

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
		track_op(fs, &c.op);
		break;
	case KV_OP_TXN:
		kv_cmd_op_iter(&c, &it);
		while (kv_cmd_next_op(&it, &op))
			track_op(fs, &op);
		break;
	default:
		break;
	}
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
	rapp->restore = hook_restore;
	rapp->query = h->inner.query ? hook_query : NULL;
	rapp->query_quick = h->inner.query_quick ? hook_query_quick : NULL;
}
