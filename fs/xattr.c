/*
 * xattr.c - user.* extended attributes (getxattr, setxattr, listxattr,
 * removexattr), and their removal with the file.
 *
 * An attribute NAME of inode I is the key "\001x/IIIIIIIIIIIIIIII/NAME"
 * (I in 16 hex digits), value = the attribute's value: keyed by inode, so
 * renames do not move them, and outside "/", so the mount never shows
 * them.  Setting or removing one is a TXN that pins the file's version and
 * bumps it (a SETMETA with an empty mask: version + 1, ctime = now), so
 * an unlink, rmdir or rename-over, which deletes the inode's attributes
 * in the same TXN and pins the same version, never leaves one behind.
 * At most RKXATTR_MAX attributes per inode (fs/rkfs_int.h): a new one
 * past that is ENOSPC; the count is read with the version the TXN pins,
 * so concurrent setters on any mount cannot pass it together.
 * Only the "user." namespace is stored; other names are answered as
 * absent (get) or EOPNOTSUPP (set).  user.raftkv.token and
 * user.raftkv.fence are not stored: fs/rklock.h answers them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fs/inode.h"
#include "fs/rkfs_int.h"
#include "fs/rklock.h"
#include "kv/kv.h"

#define XATTR_PREFIX "\001x/"
#define XATTR_PREFIX_LEN 3
#define XKEY_DIR_LEN (XATTR_PREFIX_LEN + 16 + 1) /* "\001x/" hex "/" */
#define XATTR_VALUE_MAX 65536u

static size_t xkey_dir(uint64_t ino, char *out)
{
	snprintf(out, XKEY_DIR_LEN + 1, XATTR_PREFIX "%016" PRIx64 "/", ino);
	return XKEY_DIR_LEN;
}

/* The key of attribute @name of @ino into @out (KV_KEY_MAX + 1 bytes). */
static long xkey(uint64_t ino, const char *name, char *out)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255)
		return -ERANGE;
	xkey_dir(ino, out);
	memcpy(out + XKEY_DIR_LEN, name, n + 1);
	return (long)(XKEY_DIR_LEN + n);
}

static bool is_user(const char *name)
{
	return strncmp(name, "user.", 5) == 0;
}

void rkxattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = rkfs_of(req);
	char key[KV_KEY_MAX + 1], xk[KV_KEY_MAX + 1];
	struct kv_attr a, xa;
	void *val = NULL;
	size_t klen, vlen = 0;
	long xlen;
	int rv;

	if (rklock_xattr_get(req, ino, name, size))
		return; /* user.raftkv.token, .fence: fs/rklock.h */
	if (!is_user(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	xlen = xkey(ino, name, xk);
	if (xlen < 0) {
		fuse_reply_err(req, (int)-xlen);
		return;
	}
	rv = rkfs_fresh(fs);
	if (rv == 0) {
		inode_lock(fs->inodes);
		rv = rkfs_get_ino_locked(fs, ino, key, &klen, &a);
		if (rv == 0) {
			rv = kv_get_max(fs->kv, xk, (size_t)xlen,
			    XATTR_VALUE_MAX, &xa, size ? &val : NULL, &vlen);
			if (rv == -ENOENT)
				rv = -ENODATA;
		}
		inode_unlock(fs->inodes);
	}
	if (rv != 0)
		fuse_reply_err(req, rv == -EFBIG ? E2BIG : -rv);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)xa.size);
	else if (size < xa.size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, (size_t)xa.size);
	free(val);
}

struct xlist {
	char *buf;
	size_t len, cap;
	bool nomem;
};

static int xlist_cb(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	struct xlist *l = arg;
	size_t n = keylen - XKEY_DIR_LEN;

	(void)attr;
	(void)value;
	if (l->len + n + 1 > l->cap) {
		size_t cap = (l->cap ? l->cap * 2 : 256) + n + 1;
		char *p = realloc(l->buf, cap);

		if (p == NULL) {
			l->nomem = true;
			return 1;
		}
		l->buf = p;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, (const char *)key + XKEY_DIR_LEN, n);
	l->buf[l->len + n] = '\0';
	l->len += n + 1;
	return 0;
}

void rkxattr_list(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = rkfs_of(req);
	char key[KV_KEY_MAX + 1], dir[XKEY_DIR_LEN + 1];
	struct kv_attr a;
	struct xlist l = { 0 };
	size_t klen;
	int rv = rkfs_fresh(fs);

	xkey_dir(ino, dir);
	if (rv == 0) {
		inode_lock(fs->inodes);
		rv = rkfs_get_ino_locked(fs, ino, key, &klen, &a);
		if (rv == 0)
			kv_list(fs->kv, dir, XKEY_DIR_LEN, NULL, 0, 0, '/',
			    xlist_cb, &l);
		inode_unlock(fs->inodes);
	}
	if (rv == 0 && l.nomem)
		rv = -ENOMEM;
	if (rv != 0)
		fuse_reply_err(req, -rv);
	else if (size == 0)
		fuse_reply_xattr(req, l.len);
	else if (size < l.len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, l.buf, l.len);
	free(l.buf);
}

static int count_cb(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	(void)arg;
	(void)key;
	(void)keylen;
	(void)attr;
	(void)value;
	return 0;
}

/* With the table lock held: has @ino RKXATTR_MAX attributes already? */
static bool full_locked(struct fs *fs, uint64_t ino)
{
	char dir[XKEY_DIR_LEN + 1];

	xkey_dir(ino, dir);
	return kv_list(fs->kv, dir, XKEY_DIR_LEN, NULL, 0, RKXATTR_MAX, '/',
	           count_cb, NULL) >= (long)RKXATTR_MAX;
}

/* Set (@value non-NULL) or remove attribute @name of @ino. */
static int change(struct fs *fs, fuse_ino_t ino, const char *name,
    const char *value, size_t size, int flags)
{
	char key[KV_KEY_MAX + 1], xk[KV_KEY_MAX + 1];
	struct kv_attr a, xa;
	struct kv_result res;
	struct rkfs_txn t;
	size_t klen;
	long xlen;
	int rv = -EIO;

	if (fs->opt.ro)
		return -EROFS;
	if (!is_user(name))
		return -EOPNOTSUPP;
	if (ino == FUSE_ROOT_ID)
		return -EPERM; /* the root has no key to pin */
	if (value != NULL && size > XATTR_VALUE_MAX)
		return -E2BIG;
	xlen = xkey(ino, name, xk);
	if (xlen < 0)
		return (int)xlen;
	for (int attempt = 0; attempt < RKFS_RETRIES; attempt++) {
		bool exists, full = false;
		struct kv_op *op;

		rv = rkfs_fresh(fs);
		if (rv != 0)
			return rv;
		inode_lock(fs->inodes);
		rv = rkfs_get_ino_locked(fs, ino, key, &klen, &a);
		exists = rv == 0 &&
		    kv_get(fs->kv, xk, (size_t)xlen, &xa, NULL, NULL) == 0;
		/* pinned with a.version: every change of an attribute
		 * moves the file's version */
		if (rv == 0 && value != NULL && !exists)
			full = full_locked(fs, ino);
		inode_unlock(fs->inodes);
		if (rv != 0)
			return rv;
		if (value != NULL && (flags & XATTR_CREATE) && exists)
			return -EEXIST;
		if ((value == NULL || (flags & XATTR_REPLACE)) && !exists)
			return -ENODATA;
		if (full)
			return -ENOSPC;
		memset(&t, 0, sizeof(t));
		rkfs_txn_cmp(&t, key, klen, a.version);
		rkfs_txn_cmp(&t, xk, (size_t)xlen, exists ? xa.version : 0);
		if (value != NULL) {
			op = rkfs_txn_op(&t, KV_OP_PUT, xk, (size_t)xlen);
			op->meta.kind = KV_KIND_FILE;
			op->data = value;
			op->datalen = (uint32_t)size;
		} else {
			rkfs_txn_op(&t, KV_OP_DELETE, xk, (size_t)xlen);
		}
		/* version + 1, ctime = now: pins against unlink */
		rkfs_txn_op(&t, KV_OP_SETMETA, key, klen);
		rv = rkfs_txn_submit(fs, &t, &res);
		if (rv < 0)
			return rv;
		if (rv == KV_OK)
			return 0;
		if (rv != KV_EVERSION && rv != KV_ENOKEY)
			return rkfs_status_errno(rv);
	}
	return -EIO;
}

void rkxattr_set(fuse_req_t req, fuse_ino_t ino, const char *name,
    const char *value, size_t size, int flags)
{
	if (rklock_xattr_set(req, ino, name, value, size, flags))
		return;
	fuse_reply_err(req,
	    -change(rkfs_of(req), ino, name, value ? value : "", size, flags));
}

void rkxattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (rklock_xattr_remove(req, ino, name))
		return;
	fuse_reply_err(req, -change(rkfs_of(req), ino, name, NULL, 0, 0));
}

struct xkeys_walk {
	char **keys;
	size_t n, cap;
	bool nomem;
};

static int xkeys_cb(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	struct xkeys_walk *w = arg;
	char *k;

	(void)attr;
	(void)value;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		char **p = realloc(w->keys, cap * sizeof(*p));

		if (p == NULL) {
			w->nomem = true;
			return 1;
		}
		w->keys = p;
		w->cap = cap;
	}
	k = malloc(keylen + 1);
	if (k == NULL) {
		w->nomem = true;
		return 1;
	}
	memcpy(k, key, keylen);
	k[keylen] = '\0';
	w->keys[w->n++] = k;
	return 0;
}

int rkxattr_keys_locked(struct fs *fs, uint64_t ino, char ***keys, size_t *n)
{
	char dir[XKEY_DIR_LEN + 1];
	struct xkeys_walk w = { 0 };

	xkey_dir(ino, dir);
	kv_list(fs->kv, dir, XKEY_DIR_LEN, NULL, 0, 0, '/', xkeys_cb, &w);
	if (w.nomem) {
		rkxattr_keys_free(w.keys, w.n);
		return -ENOMEM;
	}
	*keys = w.keys;
	*n = w.n;
	return 0;
}

void rkxattr_keys_free(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}
