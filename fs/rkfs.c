/*
 * rkfs.c - the FUSE low-level operations on names and attributes (lookup,
 * getattr, setattr, mkdir, mknod, create, symlink, readlink, unlink,
 * rmdir, rename, statfs) and the helpers every operation shares
 * (rkfs_int.h).  File data is in fs/rkfile.c, directory listings in
 * fs/rkdir.c.
 *
 * Every operation follows fs.h: barrier, decide from the local state
 * under the inode table lock, submit one command whose compares pin what
 * was decided on, start over when a compare fails.  Directory changes
 * also set the parent directory's mtime in the same command, which bumps
 * its version: that is what lets a directory rename pin "no child was
 * added meanwhile" with one compare per directory.  rmdir and a rename
 * over a directory also pin "still empty" (KV_VERSION_NOCHILD), which
 * holds against clients that add a key without touching the directory.
 *
 * Replies use timeouts of 0: the kernel asks again for every lookup and
 * getattr, so every answer comes after a read barrier (linearizable).
 * With -o cache=relaxed (fs.h) they carry attr_timeout/entry_timeout and
 * lookup, getattr, readlink and access skip the barrier (rkfs_fresh_read).
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/barrier.h"
#include "fs/ckpool.h"
#include "fs/inode.h"
#include "fs/rkfs_int.h"
#include "fs/rklock.h"
#include "fs/rkopen.h"
#include "kv/kv.h"
#include "raft/util/logging.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* The key a RENAME_EXCHANGE parks one side at inside its transaction (not
 * a key the mount shows: no leading '/'). */
static const char xchg_key[] = "\001raftkv-rename-exchange";

/* ---------------------------------------------------------------------
 * Shared helpers
 * --------------------------------------------------------------------- */

static int64_t start_ns;

int rkfs_fresh(struct fs *fs)
{
	uint64_t g = __atomic_load_n(&fs->wgen, __ATOMIC_ACQUIRE);
	uint64_t cur;
	int rv = barrier_wait(fs->barrier, fs->opt.timeout_ms);

	if (rv != 0)
		return rv;
	/* It covers every mutation committed before it began. */
	cur = __atomic_load_n(&fs->wgen_fresh, __ATOMIC_ACQUIRE);
	while (cur < g &&
	    !__atomic_compare_exchange_n(&fs->wgen_fresh, &cur, g, false,
	        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
	return 0;
}

int rkfs_fresh_read(struct fs *fs)
{
	if (fs->opt.relaxed &&
	    __atomic_load_n(&fs->wgen_fresh, __ATOMIC_ACQUIRE) >=
	        __atomic_load_n(&fs->wgen, __ATOMIC_ACQUIRE))
		return 0;
	return rkfs_fresh(fs);
}

double rkfs_attr_timeout(const struct fs *fs)
{
	return fs->opt.relaxed ? (double)fs->opt.attr_timeout : 0.0;
}

int64_t rkfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

void rkfs_root_attr(struct kv_attr *a)
{
	int64_t t = __atomic_load_n(&start_ns, __ATOMIC_ACQUIRE), zero = 0;

	if (t == 0) {
		/* The first caller's "now", whichever thread it is. */
		t = rkfs_now_ns();
		if (!__atomic_compare_exchange_n(&start_ns, &zero, t, false,
		        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			t = zero;
	}
	memset(a, 0, sizeof(*a));
	a->inode = FUSE_ROOT_ID;
	a->version = 1;
	a->kind = KV_KIND_DIR;
	a->mode = 0755;
	a->mtime_ns = t;
	a->ctime_ns = t;
}

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000ll);
	ts->tv_nsec = (long)(ns % 1000000000ll);
}

void rkfs_stat(const struct kv_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->inode;
	switch (a->kind) {
	case KV_KIND_DIR:
		st->st_mode = S_IFDIR;
		st->st_nlink = 2;
		break;
	case KV_KIND_SYMLINK:
		st->st_mode = S_IFLNK;
		st->st_nlink = a->nlink > 0 ? a->nlink : 1;
		break;
	default:
		st->st_mode = S_IFREG;
		st->st_nlink = a->nlink > 0 ? a->nlink : 1;
		break;
	}
	st->st_mode |= a->mode & 07777;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	ns_to_ts(a->mtime_ns, &st->st_mtim);
	ns_to_ts(a->mtime_ns, &st->st_atim);
	ns_to_ts(a->ctime_ns, &st->st_ctim);
}

long rkfs_child_key(const char *dir, size_t dlen, const char *name, char *out)
{
	size_t nlen = strlen(name);

	if (nlen > FS_NAME_MAX || dlen + 1 + nlen > KV_KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(out, dir, dlen);
	out[dlen] = '/';
	memcpy(out + dlen + 1, name, nlen);
	out[dlen + 1 + nlen] = '\0';
	return (long)(dlen + 1 + nlen);
}

int rkfs_get_key_locked(struct fs *fs, const char *key, size_t klen,
    struct kv_attr *a)
{
	if (klen == 0) {
		rkfs_root_attr(a);
		return 0;
	}
	return kv_get(fs->kv, key, klen, a, NULL, NULL);
}

int rkfs_get_ino_locked(struct fs *fs, uint64_t ino, char *key, size_t *klen,
    struct kv_attr *a)
{
	const char *k;
	size_t len;
	int rv = inode_key_locked(fs->inodes, ino, &k, &len);

	if (rv == -ENOENT)
		/* Dead (deleted or replaced, by any mount): the node id
		 * names no file any more, as an NFS handle of a removed
		 * file (raftkv(7): a descriptor on another mount answers
		 * ESTALE; a path-based call that meets it is looked up
		 * again by the kernel). */
		rv = -ESTALE;
	if (rv != 0)
		return rv;
	memcpy(key, k, len);
	key[len] = '\0';
	*klen = len;
	rv = rkfs_get_key_locked(fs, key, len, a);
	if (rv == 0 && a->inode != ino)
		rv =
		    -ENOENT; /* cannot happen while the table follows the log */
	return rv;
}

int rkfs_read_ino(struct fs *fs, uint64_t ino, char *key, size_t *klen,
    struct kv_attr *a)
{
	int rv = rkfs_fresh(fs);

	if (rv != 0)
		return rv;
	inode_lock(fs->inodes);
	rv = rkfs_get_ino_locked(fs, ino, key, klen, a);
	inode_unlock(fs->inodes);
	return rv;
}

int rkfs_status_errno(int status)
{
	switch (status) {
	case KV_OK:
		return 0;
	case KV_ENOKEY:
		return -ENOENT;
	case KV_ETOOBIG:
		return -EFBIG;
	case KV_ENOSPC:
		return -ENOSPC;
	case -ENOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

int rkfs_submit(struct fs *fs, struct kv_cmd *c, struct kv_result *res)
{
	struct clerk *ck = ckpool_get(fs->clerks);
	int rv;

	if (ck == NULL)
		return -ENOMEM;
	rv = clerk_mutate(ck, c, res);
	ckpool_put(fs->clerks, ck);
	/* Committed, or maybe: this mount's next read passes a barrier. */
	__atomic_add_fetch(&fs->wgen, 1, __ATOMIC_ACQ_REL);
	if (rv == -ENOMEM)
		return rv;
	if (rv < 0 || rv == KV_EMAYBE || rv >= KV_STATUS_COUNT) {
		log_warnx("submit: %s", clerk_strerror(rv));
		return -EIO;
	}
	return rv;
}

void rkfs_txn_cmp(struct rkfs_txn *t, const char *key, size_t len,
    uint64_t version)
{
	t->cmps[t->ncmp++] = (struct kv_cmp){
		.version = version,
		.key = key,
		.keylen = (uint32_t)len,
	};
}

struct kv_op *rkfs_txn_op(struct rkfs_txn *t, uint8_t type, const char *key,
    size_t len)
{
	struct kv_op *op = &t->ops[t->nops++];

	memset(op, 0, sizeof(*op));
	op->type = type;
	op->flags = KV_F_ANYVER;
	op->key = key;
	op->keylen = (uint32_t)len;
	return op;
}

void rkfs_txn_touch(struct rkfs_txn *t, const char *dir, size_t dlen,
    int64_t now)
{
	struct kv_op *op;

	if (dlen == 0)
		return;
	op = rkfs_txn_op(t, KV_OP_SETMETA, dir, dlen);
	op->mask = KV_META_MTIME;
	op->mtime_ns = now;
}

int rkfs_txn_submit(struct fs *fs, struct rkfs_txn *t, struct kv_result *res)
{
	struct kv_cmd c = {
		.type = KV_OP_TXN,
		.ncmp = t->ncmp,
		.nops = t->nops,
		.cmps = t->cmps,
		.ops = t->ops,
	};

	return rkfs_submit(fs, &c, res);
}

int rkfs_txn_status(int rv)
{
	if (rv < 0)
		return rv;
	if (rv == KV_OK)
		return 0;
	if (rv == KV_EVERSION || rv == KV_ENOKEY)
		return -EAGAIN;
	return rkfs_status_errno(rv);
}

int rkfs_txn_retry(struct fs *fs, int (*once)(struct fs *fs, void *arg),
    void *arg)
{
	for (int attempt = 0; attempt < RKFS_RETRIES; attempt++) {
		int rv = rkfs_fresh(fs);

		if (rv == 0)
			rv = once(fs, arg);
		if (rv != -EAGAIN)
			return rv;
	}
	return -EIO;
}

size_t rkfs_orphan_key(const struct fs *fs, uint64_t ino, char *out)
{
	snprintf(out, RKFS_ORPHAN_KEY_LEN + 1,
	    RKFS_ORPHAN_PREFIX "%016" PRIx64 "/%016" PRIx64, fs->member_id,
	    ino);
	return RKFS_ORPHAN_KEY_LEN;
}

int rkfs_txn_submit_deleting(struct fs *fs, struct rkfs_txn *t, char **keys,
    size_t nkeys, struct kv_result *res)
{
	struct kv_op *ops;
	struct kv_cmd c = { .type = KV_OP_TXN,
		.ncmp = t->ncmp,
		.cmps = t->cmps };
	int rv;

	if (nkeys == 0)
		return rkfs_txn_submit(fs, t, res);
	if (t->nops + nkeys > KV_TXN_MAX)
		return -E2BIG;
	ops = calloc(t->nops + nkeys, sizeof(*ops));
	if (ops == NULL)
		return -ENOMEM;
	memcpy(ops, t->ops, t->nops * sizeof(*ops));
	for (size_t i = 0; i < nkeys; i++) {
		struct kv_op *op = &ops[t->nops + i];

		op->type = KV_OP_DELETE;
		op->flags = KV_F_ANYVER;
		op->key = keys[i];
		op->keylen = (uint32_t)strlen(keys[i]);
	}
	c.ops = ops;
	c.nops = t->nops + (uint32_t)nkeys;
	rv = rkfs_submit(fs, &c, res);
	free(ops);
	return rv;
}

int rkfs_make_dirs(struct fs *fs, char *const *keys, const size_t *lens,
    size_t n)
{
	struct kv_cmp *cmps;
	struct kv_op *ops;
	struct kv_result res;
	struct kv_cmd c = { .type = KV_OP_TXN };
	int rv;

	if (n == 0)
		return 0;
	if (fs->opt.ro)
		return -EROFS;
	if (n > KV_TXN_MAX)
		n = KV_TXN_MAX; /* the rest in the caller's next round */
	cmps = calloc(n, sizeof(*cmps));
	ops = calloc(n, sizeof(*ops));
	if (cmps == NULL || ops == NULL) {
		free(cmps);
		free(ops);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		cmps[i] = (struct kv_cmp){ .version = 0,
			.key = keys[i],
			.keylen = (uint32_t)lens[i] };
		ops[i].type = KV_OP_PUT;
		ops[i].key = keys[i];
		ops[i].keylen = (uint32_t)lens[i];
		ops[i].meta.kind = KV_KIND_DIR;
		ops[i].meta.mode = RKFS_IMPLICIT_MODE;
	}
	c.ncmp = c.nops = (uint32_t)n;
	c.cmps = cmps;
	c.ops = ops;
	rv = rkfs_submit(fs, &c, &res);
	free(cmps);
	free(ops);
	if (rv < 0)
		return rv;
	/* EVERSION: one of them was made meanwhile (by another mount, or
	 * a client): the caller looks again. */
	return rv == KV_OK || rv == KV_EVERSION ? 0 : rkfs_status_errno(rv);
}

struct first_key {
	char key[KV_KEY_MAX];
	size_t len;
};

static int first_key_cb(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	struct first_key *f = arg;

	(void)attr;
	(void)value;
	memcpy(f->key, key, keylen);
	f->len = keylen;
	return 1;
}

/* Set @out (KV_KEY_MAX bytes) to the greatest key that starts with @p
 * (@plen bytes): a walk "after" it skips everything below @p. */
static size_t last_below(const char *p, size_t plen, char *out)
{
	memcpy(out, p, plen);
	memset(out + plen, 0xff, KV_KEY_MAX - plen);
	return KV_KEY_MAX;
}

/* With the table lock held: is there any key below @key (@klen bytes),
 * shown or not?  (A directory's children; the keys that make it an
 * implicit directory when @key is none.) */
static bool has_children_locked(struct fs *fs, const char *key, size_t klen)
{
	char prefix[KV_KEY_MAX + 1];
	struct first_key f = { .len = 0 };

	if (klen + 1 > KV_KEY_MAX)
		return false;
	memcpy(prefix, key, klen);
	prefix[klen] = '/';
	kv_list(fs->kv, prefix, klen + 1, NULL, 0, 1, -1, first_key_cb, &f);
	return f.len > 0;
}

size_t rkfs_next_implicit_locked(struct fs *fs, const char *dir, size_t dlen,
    const char *after, char *name)
{
	char prefix[KV_KEY_MAX + 1], at[KV_KEY_MAX];
	struct first_key f;
	struct kv_attr a;
	size_t alen = 0, plen = dlen + 1;

	if (plen >= KV_KEY_MAX)
		return 0;
	memcpy(prefix, dir, dlen);
	prefix[dlen] = '/';
	if (after != NULL) {
		long n = rkfs_child_key(dir, dlen, after, prefix);

		if (n < 0 || (size_t)n + 1 >= KV_KEY_MAX)
			return 0;
		prefix[n] = '/';
		alen = last_below(prefix, (size_t)n + 1, at);
	}
	for (;;) {
		const char *rem, *slash;
		size_t clen;

		f.len = 0;
		kv_list(fs->kv, prefix, plen, alen ? at : NULL, alen, 1, -1,
		    first_key_cb, &f);
		if (f.len == 0)
			return 0;
		rem = f.key + plen;
		slash = memchr(rem, '/', f.len - plen);
		if (slash == NULL) {
			/* A child that is a key: its own subtree next. */
			memcpy(at, f.key, f.len);
			alen = f.len;
			continue;
		}
		clen = (size_t)(slash - rem);
		if (clen > 0 && clen <= FS_NAME_MAX &&
		    memchr(rem, '\0', clen) == NULL &&
		    !(rem[0] == '.' &&
		        (clen == 1 || (clen == 2 && rem[1] == '.'))) &&
		    kv_get(fs->kv, f.key, plen + clen, &a, NULL, NULL) != 0) {
			memcpy(name, rem, clen);
			name[clen] = '\0';
			return clen;
		}
		/* Not showable, or a key (listed as one): skip below it. */
		alen = last_below(f.key, plen + clen + 1, at);
	}
}

/*
 * With the table lock held: the key of directory @parent into @pkey
 * (*@plen), the key of its child @name into @key (*@klen) and the child's
 * attributes into @a (the parent's into @pa).  Returns 0, -ENOTDIR (@parent
 * is not a directory),
 * -ENAMETOOLONG, -ENOENT (no such child), -ESTALE (@parent deleted).
 */
static int child_locked(struct fs *fs, fuse_ino_t parent, const char *name,
    char *pkey, size_t *plen, char *key, long *klen, struct kv_attr *a,
    struct kv_attr *pa)
{
	int rv = rkfs_get_ino_locked(fs, parent, pkey, plen, pa);

	if (rv != 0)
		return rv;
	if (pa->kind != KV_KIND_DIR)
		return -ENOTDIR;
	*klen = rkfs_child_key(pkey, *plen, name, key);
	if (*klen < 0)
		return (int)*klen;
	return kv_get(fs->kv, key, (size_t)*klen, a, NULL, NULL);
}

/*
 * With the table lock held: where a new @name in directory @parent goes
 * (create, mkdir, link).  Its key into @key (*@klen, set whenever the
 * name fits, -EEXIST included), the parent's key into @pkey (*@plen) and
 * attributes into @pa.  Returns 0 (the name is free), -EEXIST (taken: its
 * attributes in @existing), -ENOTDIR, -ENAMETOOLONG, -ESTALE.
 */
static int new_name_locked(struct fs *fs, fuse_ino_t parent, const char *name,
    char *pkey, size_t *plen, struct kv_attr *pa, char *key, size_t *klen,
    struct kv_attr *existing)
{
	long kl = -1;
	int rv = child_locked(fs, parent, name, pkey, plen, key, &kl, existing,
	    pa);

	if (kl > 0)
		*klen = (size_t)kl;
	if (rv == 0)
		return -EEXIST;
	return rv == -ENOENT && kl > 0 ? 0 : rv;
}

void rkfs_entry_of(const struct fs *fs, const struct kv_attr *a,
    struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->inode;
	e->generation = 1; /* inode numbers are never reused */
	rkfs_stat(a, &e->attr);
	e->attr_timeout = rkfs_attr_timeout(fs);
	e->entry_timeout = fs->opt.relaxed ? (double)fs->opt.entry_timeout : 0;
}

int rkfs_learn(struct fs *fs, const char *key, size_t klen, uint64_t ino,
    const struct kv_attr *created, struct fuse_entry_param *e)
{
	struct kv_attr a;
	int fresh = rkfs_fresh(fs), rv;

	inode_lock(fs->inodes);
	if (fresh == 0 &&
	    (kv_get(fs->kv, key, klen, &a, NULL, NULL) != 0 ||
	        a.inode != ino)) {
		/* Gone already (another member renamed or removed it right
		 * after): the kernel gets an inode that answers ESTALE. */
		rv = inode_ref_locked(fs->inodes, ino, NULL, 0);
		a = *created;
	} else {
		rv = inode_ref_locked(fs->inodes, ino, key, klen);
		if (fresh != 0)
			a = *created;
		else if (rv == 0)
			inode_attr_sent_locked(fs->inodes, ino, a.version);
	}
	inode_unlock(fs->inodes);
	rkfs_entry_of(fs, &a, e);
	return rv;
}

/* ---------------------------------------------------------------------
 * Lookups and attributes
 * --------------------------------------------------------------------- */

static void rk_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	/* Locks go to the cluster (fs/rklock.c), not the local kernel. */
	conn->want |= conn->capable &
	    (unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	/* Listings hand the kernel inodes and attributes (fs/rkdir.c). */
	conn->want |= conn->capable & (unsigned)FUSE_CAP_READDIRPLUS;
	conn->max_write = 1024 * 1024;
	/* Strict: no page cache.  Relaxed: read ahead into it. */
	conn->max_readahead = fs->opt.relaxed ? 1024 * 1024 : 0;
}

static void rk_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = rkfs_of(req);
	char pkey[KV_KEY_MAX + 1], key[KV_KEY_MAX + 1];
	struct kv_attr a, pa;
	struct fuse_entry_param e;
	bool flushed = false, fresh = !fs->opt.relaxed, made = false;
	size_t plen;
	long klen = 0;
	int rv;

	if (strlen(name) > FS_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
again:
	rv = fresh ? rkfs_fresh(fs) : rkfs_fresh_read(fs);
	if (rv != 0)
		goto out;
	inode_lock(fs->inodes);
	rv = child_locked(fs, parent, name, pkey, &plen, key, &klen, &a, &pa);
	if (rv == -ENOENT && !fresh) {
		/* Relaxed: a miss is confirmed with a barrier (a name
		 * created anywhere before this lookup began is found). */
		inode_unlock(fs->inodes);
		fresh = true;
		goto again;
	}
	if (rv == -ENOENT && !made && klen > 0 &&
	    has_children_locked(fs, key, (size_t)klen)) {
		/* An implicit directory: made real, then found. */
		char *kp = key;
		size_t kl = (size_t)klen;

		inode_unlock(fs->inodes);
		made = true;
		rv = rkfs_make_dirs(fs, &kp, &kl, 1);
		if (rv == 0)
			goto again;
		if (rv == -EROFS || rv == -ENOSPC)
			rv = -ENOENT; /* not shown where it cannot be made */
		goto out;
	}
	if (rv == 0 && !flushed) {
		/* This mount's buffered writes to it, if any, first. */
		inode_unlock(fs->inodes);
		flushed = true;
		rv = rkfile_flush_ino(fs, a.inode);
		if (rv > 0)
			goto again;
		if (rv < 0)
			goto out;
		inode_lock(fs->inodes);
	}
	if (rv == 0)
		rv = inode_ref_locked(fs->inodes, a.inode, key, (size_t)klen);
	if (rv == 0)
		inode_attr_sent_locked(fs->inodes, a.inode, a.version);
	inode_unlock(fs->inodes);
out:
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	rkfs_entry_of(fs, &a, &e);
	if (fuse_reply_entry(req, &e) != 0)
		inode_forget(fs->inodes, a.inode, 1);
}

static void rk_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(rkfs_of(req)->inodes, ino, nlookup);
	fuse_reply_none(req);
}

static void rk_forget_multi(fuse_req_t req, size_t count,
    struct fuse_forget_data *forgets)
{
	struct fs *fs = rkfs_of(req);

	for (size_t i = 0; i < count; i++)
		inode_forget(fs->inodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void rk_getattr(fuse_req_t req, fuse_ino_t ino,
    struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	char key[KV_KEY_MAX + 1];
	struct kv_attr a;
	struct stat st;
	size_t klen;
	int rv;

	(void)fi;
	if (ino == FUSE_ROOT_ID) {
		/* The root has no key and its attributes never change
		 * (rkfs_root_attr: setattr refuses it, no operation touches
		 * its mtime): no barrier, so stat of the mountpoint (umount
		 * does one) answers without a majority. */
		rkfs_root_attr(&a);
		rkfs_stat(&a, &st);
		fuse_reply_attr(req, &st, rkfs_attr_timeout(fs));
		return;
	}
	rv = rkfile_flush_ino(fs, ino); /* this mount's own writes first */
	if (rv >= 0)
		rv = rkfs_fresh_read(fs);
	if (rv == 0) {
		inode_lock(fs->inodes);
		rv = rkfs_get_ino_locked(fs, ino, key, &klen, &a);
		if (rv == 0)
			inode_attr_sent_locked(fs->inodes, ino, a.version);
		inode_unlock(fs->inodes);
	}
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	rkfs_stat(&a, &st);
	fuse_reply_attr(req, &st, rkfs_attr_timeout(fs));
}

struct setattr_req {
	fuse_ino_t ino;
	const struct stat *attr;
	int to_set;
	struct kv_attr a; /* the attributes after it */
};

/* One try of a setattr (rkfs_txn_retry): the compare pins the version
 * read.  A file removed meanwhile is final (ENOENT), not another try. */
static int setattr_once(struct fs *fs, void *arg)
{
	struct setattr_req *r = arg;
	const struct stat *attr = r->attr;
	char key[KV_KEY_MAX + 1];
	struct kv_result res;
	struct rkfs_txn t;
	struct kv_op *op;
	uint32_t mask = 0;
	size_t klen;
	int rv;

	inode_lock(fs->inodes);
	rv = rkfs_get_ino_locked(fs, r->ino, key, &klen, &r->a);
	inode_unlock(fs->inodes);
	if (rv != 0)
		return rv;
	memset(&t, 0, sizeof(t));
	rkfs_txn_cmp(&t, key, klen, r->a.version);
	if (r->to_set & FUSE_SET_ATTR_SIZE) {
		if (r->a.kind == KV_KIND_DIR)
			return -EISDIR;
		if (attr->st_size < 0)
			return -EINVAL;
		/* A size change is a write: fenced like one (rklock.h). */
		rklock_fence_txn(fs, r->ino, &t);
		op = rkfs_txn_op(&t, KV_OP_TRUNCATE, key, klen);
		op->arg = (uint64_t)attr->st_size;
	}
	if (r->to_set & FUSE_SET_ATTR_MODE)
		mask |= KV_META_MODE;
	if (r->to_set & FUSE_SET_ATTR_UID)
		mask |= KV_META_UID;
	if (r->to_set & FUSE_SET_ATTR_GID)
		mask |= KV_META_GID;
	if (r->to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
		mask |= KV_META_MTIME;
	if (mask != 0) {
		op = rkfs_txn_op(&t, KV_OP_SETMETA, key, klen);
		/* Fields outside the mask stay zero (canonical). */
		op->mask = mask;
		if (mask & KV_META_MODE)
			op->meta.mode = attr->st_mode & KV_MODE_MASK;
		if (mask & KV_META_UID)
			op->meta.uid = attr->st_uid;
		if (mask & KV_META_GID)
			op->meta.gid = attr->st_gid;
		if (r->to_set & FUSE_SET_ATTR_MTIME_NOW)
			op->mtime_ns = rkfs_now_ns();
		else if (mask & KV_META_MTIME)
			op->mtime_ns = (int64_t)attr->st_mtim.tv_sec *
			        1000000000ll +
			    attr->st_mtim.tv_nsec;
	}
	if (t.nops == 0)
		return 0; /* atime or ctime only: nothing stored */
	rv = rkfs_txn_submit(fs, &t, &res);
	if (rv == KV_OK)
		r->a = res.attr;
	if (rv == KV_ENOKEY)
		return -ENOENT;
	if (rv == KV_EFENCED)
		return -EPERM; /* a fence of fs/rklock.h refused it */
	return rkfs_txn_status(rv);
}

static void rk_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
    int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	struct setattr_req r = { .ino = ino, .attr = attr, .to_set = to_set };
	struct stat st;
	int rv;

	if (fs->opt.ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* ftruncate through a descriptor opened before this mount lost a
	 * lock on the file: EIO, as a write would be.  (The kernel passes
	 * @fi only for a truncate through an open file, never a
	 * directory's.) */
	rv = fi != NULL && (to_set & FUSE_SET_ATTR_SIZE)
	    ? rklock_check(fs, ino, rkfile_fh_epoch(fi->fh))
	    : 0;
	if (rv == 0)
		rv = rkfile_flush_ino(fs, ino);
	if (rv >= 0)
		rv = rkfs_txn_retry(fs, setattr_once, &r);
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	rkfs_stat(&r.a, &st);
	fuse_reply_attr(req, &st, rkfs_attr_timeout(fs));
}

/* ---------------------------------------------------------------------
 * Creating
 * --------------------------------------------------------------------- */

struct newnode {
	uint8_t kind;
	mode_t mode;
	const void *value;
	size_t vlen;
};

struct make_req {
	fuse_req_t req;
	fuse_ino_t parent;
	const char *name;
	const struct newnode *nn;
	struct fuse_entry_param *e;
	struct kv_attr *existing;
	char *key;
	size_t *keylen;
};

/* One try of make_node (rkfs_txn_retry): the compare pins the name's
 * absence. */
static int make_once(struct fs *fs, void *arg)
{
	struct make_req *r = arg;
	const struct newnode *nn = r->nn;
	const struct fuse_ctx *ctx = fuse_req_ctx(r->req);
	char pkey[KV_KEY_MAX + 1];
	struct kv_attr pa;
	struct kv_result res;
	struct rkfs_txn t;
	struct kv_op *op;
	size_t plen;
	int rv;

	inode_lock(fs->inodes);
	rv = new_name_locked(fs, r->parent, r->name, pkey, &plen, &pa, r->key,
	    r->keylen, r->existing);
	inode_unlock(fs->inodes);
	if (rv != 0)
		return rv;
	memset(&t, 0, sizeof(t));
	rkfs_txn_cmp(&t, r->key, *r->keylen, 0);
	op = rkfs_txn_op(&t, KV_OP_PUT, r->key, *r->keylen);
	op->flags = 0;
	op->version = 0;
	op->meta.kind = nn->kind;
	op->meta.mode = nn->mode & KV_MODE_MASK;
	op->meta.uid = ctx->uid;
	op->meta.gid = ctx->gid;
	if (pa.mode & S_ISGID) {
		/* A setgid directory: its group, and for a directory its
		 * setgid bit, pass on (as on ext4). */
		op->meta.gid = pa.gid;
		if (nn->kind == KV_KIND_DIR)
			op->meta.mode |= S_ISGID;
	}
	op->data = nn->value;
	op->datalen = (uint32_t)nn->vlen;
	rkfs_txn_touch(&t, pkey, plen, rkfs_now_ns());
	rv = rkfs_txn_submit(fs, &t, &res);
	if (rv == KV_OK)
		return rkfs_learn(fs, r->key, *r->keylen, res.attr.inode,
		    &res.attr, r->e);
	/* The name was taken, or the parent went away, meanwhile: the next
	 * try answers EEXIST or ENOENT. */
	return rkfs_txn_status(rv);
}

/*
 * Create @name in @parent as one committed command that also requires the
 * name to be free (O_EXCL semantics cluster-wide).  Returns 0 with @e
 * filled (one kernel lookup counted), or -EEXIST with the existing key's
 * attributes in *@existing and its key in @key (length *@keylen, set on
 * this path too: rk_create opens that key), or a negative errno.
 */
static int make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
    const struct newnode *nn, struct fuse_entry_param *e,
    struct kv_attr *existing, char *key, size_t *keylen)
{
	struct fs *fs = rkfs_of(req);
	struct make_req r = { req, parent, name, nn, e, existing, key, keylen };

	if (fs->opt.ro)
		return -EROFS;
	if (strlen(name) > FS_NAME_MAX)
		return -ENAMETOOLONG;
	return rkfs_txn_retry(fs, make_once, &r);
}

static void reply_entry_or_err(fuse_req_t req, int rv,
    struct fuse_entry_param *e)
{
	if (rv != 0)
		fuse_reply_err(req, -rv);
	else if (fuse_reply_entry(req, e) != 0)
		inode_forget(rkfs_of(req)->inodes, e->ino, 1);
}

static void rk_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode)
{
	struct newnode nn = { .kind = KV_KIND_DIR, .mode = mode };
	struct fuse_entry_param e;
	struct kv_attr ex;
	char key[KV_KEY_MAX + 1];
	size_t klen;

	reply_entry_or_err(req,
	    make_node(req, parent, name, &nn, &e, &ex, key, &klen), &e);
}

static void rk_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode, dev_t rdev)
{
	struct newnode nn = { .kind = KV_KIND_FILE, .mode = mode };
	struct fuse_entry_param e;
	struct kv_attr ex;
	char key[KV_KEY_MAX + 1];
	size_t klen;

	(void)rdev;
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM); /* no devices, FIFOs, sockets */
		return;
	}
	reply_entry_or_err(req,
	    make_node(req, parent, name, &nn, &e, &ex, key, &klen), &e);
}

static void rk_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
    const char *name)
{
	struct newnode nn = { .kind = KV_KIND_SYMLINK,
		.mode = 0777,
		.value = link,
		.vlen = strlen(link) };
	struct fuse_entry_param e;
	struct kv_attr ex;
	char key[KV_KEY_MAX + 1];
	size_t klen;

	if (nn.vlen >= PATH_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	reply_entry_or_err(req,
	    make_node(req, parent, name, &nn, &e, &ex, key, &klen), &e);
}

/*
 * The open half of O_CREAT without O_EXCL when make_node found @key (*@ex)
 * taken: count one kernel lookup of the file that has the name now and
 * fill @e.  -EAGAIN when the name changed since make_node looked (removed,
 * or now another inode: create again); -EISDIR for a directory.
 */
static int open_existing(struct fs *fs, const char *key, size_t klen,
    struct kv_attr *ex, struct fuse_entry_param *e)
{
	struct kv_attr a;
	int rv;

	inode_lock(fs->inodes);
	if (kv_get(fs->kv, key, klen, &a, NULL, NULL) != 0 ||
	    a.inode != ex->inode)
		rv = -EAGAIN; /* the table follows the state: never bind the
		                 name to an inode it no longer has */
	else if (a.kind == KV_KIND_DIR)
		rv = -EISDIR;
	else
		rv = inode_ref_locked(fs->inodes, a.inode, key, klen);
	inode_unlock(fs->inodes);
	if (rv == 0) {
		*ex = a;
		rkfs_entry_of(fs, &a, e);
	}
	return rv;
}

static void rk_create(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	struct newnode nn = { .kind = KV_KIND_FILE, .mode = mode };
	struct fuse_entry_param e;
	struct kv_attr ex;
	char key[KV_KEY_MAX + 1];
	size_t klen;
	int rv = -EIO;

	for (int attempt = 0; attempt < RKFS_RETRIES; attempt++) {
		rv = make_node(req, parent, name, &nn, &e, &ex, key, &klen);
		if (rv != -EEXIST || (fi->flags & O_EXCL))
			break;
		/* Created meanwhile by someone else: open it. */
		rv = open_existing(fs, key, klen, &ex, &e);
		if (rv != -EAGAIN) {
			if (rv == 0 && (fi->flags & O_TRUNC)) {
				rv = rkfile_truncate0(fs, ex.inode);
				if (rv != 0)
					inode_forget(fs->inodes, ex.inode, 1);
			}
			break;
		}
		rv = -EIO; /* all tries used */
	}
	if (rv == 0) {
		rv = rkfile_fh_new(fs, e.ino, fi->flags, &fi->fh);
		if (rv != 0)
			inode_forget(fs->inodes, e.ino, 1);
	}
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	fi->direct_io = !fs->opt.relaxed; /* relaxed: a new, empty cache */
	fi->keep_cache = 0;
	inode_lock(fs->inodes);
	inode_open_locked(fs->inodes, e.ino);
	inode_unlock(fs->inodes);
	rkopen_hold(fs->opens, e.ino); /* registered in the background */
	if (fuse_reply_create(req, &e, fi) != 0) {
		rkfile_fh_drop(fs, fi->fh);
		inode_lock(fs->inodes);
		inode_close_locked(fs->inodes, e.ino);
		inode_unlock(fs->inodes);
		rkopen_drop(fs->opens, e.ino);
		inode_forget(fs->inodes, e.ino, 1);
	}
}

struct link_req {
	fuse_ino_t ino, newparent;
	const char *newname;
	struct fuse_entry_param *e;
};

/* One try of link_node (rkfs_txn_retry). */
static int link_once(struct fs *fs, void *arg)
{
	struct link_req *r = arg;
	char src[KV_KEY_MAX + 1], pkey[KV_KEY_MAX + 1], key[KV_KEY_MAX + 1];
	struct kv_attr sa, pa, a;
	struct kv_result res;
	struct rkfs_txn t;
	struct kv_op *op;
	size_t slen, plen, klen = 0;
	int rv;

	inode_lock(fs->inodes);
	rv = rkfs_get_ino_locked(fs, r->ino, src, &slen, &sa);
	if (rv == 0 && sa.kind == KV_KIND_DIR)
		rv = -EPERM;
	if (rv == 0)
		rv = new_name_locked(fs, r->newparent, r->newname, pkey, &plen,
		    &pa, key, &klen, &a);
	if (rv == 0 && sa.nlink >= KV_LINK_MAX)
		rv = -EMLINK;
	inode_unlock(fs->inodes);
	if (rv != 0)
		return rv;
	memset(&t, 0, sizeof(t));
	rkfs_txn_cmp(&t, src, slen, sa.version);
	rkfs_txn_cmp(&t, key, klen, 0);
	op = rkfs_txn_op(&t, KV_OP_LINK, src, slen);
	op->key2 = key;
	op->key2len = (uint32_t)klen;
	rkfs_txn_touch(&t, pkey, plen, rkfs_now_ns());
	rv = rkfs_txn_submit(fs, &t, &res);
	if (rv == KV_OK)
		return rkfs_learn(fs, key, klen, r->ino, &res.attr, r->e);
	if (rv == KV_EINVAL)
		return -EMLINK; /* a directory is refused above */
	/* The name was taken, or the source changed, meanwhile: the next try
	 * answers EEXIST, ENOENT, or tries again. */
	return rkfs_txn_status(rv);
}

/*
 * link(2): @newname in @newparent becomes another name of @ino (kv.h,
 * LINK).  One TXN: compares pin the source at the version read here and
 * the new name's absence; the LINK, then the parent's mtime.  Of several
 * links to one name (on any mounts) exactly one commits; the others lose
 * the compare, look again, and answer EEXIST.  Directories: EPERM.
 */
static int link_node(struct fs *fs, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname, struct fuse_entry_param *e)
{
	struct link_req r = { ino, newparent, newname, e };

	if (fs->opt.ro)
		return -EROFS;
	if (strlen(newname) > FS_NAME_MAX)
		return -ENAMETOOLONG;
	return rkfs_txn_retry(fs, link_once, &r);
}

static void rk_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname)
{
	struct fuse_entry_param e;

	reply_entry_or_err(req,
	    link_node(rkfs_of(req), ino, newparent, newname, &e), &e);
}

static void rk_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = rkfs_of(req);
	char key[KV_KEY_MAX + 1];
	struct kv_attr a;
	void *val = NULL;
	size_t klen, vlen = 0;
	int rv = rkfs_fresh_read(fs);

	if (rv == 0) {
		inode_lock(fs->inodes);
		rv = rkfs_get_ino_locked(fs, ino, key, &klen, &a);
		if (rv == 0 && a.kind != KV_KIND_SYMLINK)
			rv = -EINVAL;
		if (rv == 0)
			rv = kv_get_max(fs->kv, key, klen, PATH_MAX - 1, &a,
			    &val, &vlen);
		inode_unlock(fs->inodes);
	}
	if (rv == -EFBIG)
		rv = -ENAMETOOLONG;
	if (rv == 0) {
		char *s = malloc(vlen + 1);

		if (s == NULL) {
			rv = -ENOMEM;
		} else {
			if (vlen > 0)
				memcpy(s, val, vlen);
			s[vlen] = '\0';
			fuse_reply_readlink(req, s);
			free(s);
		}
	}
	free(val);
	if (rv != 0)
		fuse_reply_err(req, -rv);
}

/* ---------------------------------------------------------------------
 * Removing and renaming
 * --------------------------------------------------------------------- */

struct remove_req {
	fuse_ino_t parent;
	const char *name;
	bool dir;
};

/*
 * Is the file @ino, whose last name is being removed, held open by some
 * mount (so kept under its orphan key)?  1 yes, 0 no (deleted).  @here:
 * open on this mount, whose registration is waited for first
 * (rkopen_sync), so that the removing mount's own descriptors never lose
 * it: when it did not commit, the removal fails rather than delete the
 * file under them: -EBUSY (refused: this mount holds more files open
 * than the open table takes), -EIO (not committed within the timeout).
 * The answer is pinned by the caller's TXN (KV_VERSION_OPEN /
 * KV_VERSION_NOTOPEN): a registration or a close in between makes it
 * fail and start over.
 */
static int keep_open(struct fs *fs, uint64_t ino, bool here)
{
	if (here) {
		int rv = rkopen_sync(fs->opens, ino, fs->opt.timeout_ms);

		if (rv == -ENOSPC)
			return -EBUSY;
		return rv == 0 ? 1 : rv;
	}
	return kv_is_open(fs->kv, ino) ? 1 : 0;
}

/* One try of remove_node (rkfs_txn_retry). */
static int remove_once(struct fs *fs, void *arg)
{
	struct remove_req *r = arg;
	char pkey[KV_KEY_MAX + 1], key[KV_KEY_MAX + 1];
	struct kv_attr a, pa;
	struct kv_result res;
	struct rkfs_txn t;
	char **xkeys = NULL, okey[RKFS_ORPHAN_KEY_LEN + 1];
	size_t plen, nx = 0;
	long klen = 0;
	bool orphan = false, here;
	int rv;

	inode_lock(fs->inodes);
	rv = child_locked(fs, r->parent, r->name, pkey, &plen, key, &klen, &a,
	    &pa);
	if (rv == 0 && r->dir && a.kind != KV_KIND_DIR)
		rv = -ENOTDIR;
	if (rv == 0 && !r->dir && a.kind == KV_KIND_DIR)
		rv = -EISDIR;
	if (rv == 0 && r->dir && has_children_locked(fs, key, (size_t)klen))
		rv = -ENOTEMPTY;
	here = rv == 0 && !r->dir && a.nlink <= 1 &&
	    inode_opens_locked(fs->inodes, a.inode) > 0;
	inode_unlock(fs->inodes);
	/* The last name of a file some mount holds open: kept, hidden
	 * (below).  One of several names: only the name goes (the compare
	 * on the version pins nlink: a link moves the version). */
	if (rv == 0 && !r->dir && a.nlink <= 1) {
		rv = keep_open(fs, a.inode, here);
		orphan = rv == 1;
		rv = rv < 0 ? rv : 0;
	}
	if (rv == 0 && !orphan && a.nlink <= 1) {
		inode_lock(fs->inodes);
		rv = rkxattr_keys_locked(fs, a.inode, &xkeys, &nx);
		inode_unlock(fs->inodes);
	}
	if (rv != 0)
		return rv;
	memset(&t, 0, sizeof(t));
	rkfs_txn_cmp(&t, key, (size_t)klen, a.version);
	/* Held open, or not, when it applies (the open table). */
	if (!r->dir && a.nlink <= 1)
		rkfs_txn_cmp(&t, key, (size_t)klen,
		    orphan ? KV_VERSION_OPEN : KV_VERSION_NOTOPEN);
	/* Still empty when it applies, whichever client (a mount or raftkv
	 * put, which does not touch the directory) adds a key below it
	 * meanwhile. */
	if (r->dir)
		rkfs_txn_cmp(&t, key, (size_t)klen, KV_VERSION_NOCHILD);
	if (orphan) {
		/* Held open: it lives on, hidden, until no mount holds it
		 * (fs/rkopen.h). */
		struct kv_op *op = rkfs_txn_op(&t, KV_OP_RENAME, key,
		    (size_t)klen);

		op->key2 = okey;
		op->key2len = (uint32_t)rkfs_orphan_key(fs, a.inode, okey);
	} else {
		rkfs_txn_op(&t, KV_OP_DELETE, key, (size_t)klen);
	}
	rkfs_txn_touch(&t, pkey, plen, rkfs_now_ns());
	rv = rkfs_txn_submit_deleting(fs, &t, xkeys, nx, &res);
	rkxattr_keys_free(xkeys, nx);
	return rkfs_txn_status(rv);
}

static int remove_node(fuse_req_t req, fuse_ino_t parent, const char *name,
    bool dir)
{
	struct fs *fs = rkfs_of(req);
	struct remove_req r = { parent, name, dir };

	if (fs->opt.ro)
		return -EROFS;
	return rkfs_txn_retry(fs, remove_once, &r);
}

static void rk_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -remove_node(req, parent, name, false));
}

static void rk_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -remove_node(req, parent, name, true));
}

static bool is_below(const char *a, size_t alen, const char *dir, size_t dlen)
{
	return alen > dlen && a[dlen] == '/' && memcmp(a, dir, dlen) == 0;
}

struct rename_req {
	fuse_ino_t parent, newparent;
	const char *name, *newname;
	unsigned flags;
};

static void rename_op(struct rkfs_txn *t, const char *src, size_t slen,
    const char *dst, size_t dlen)
{
	struct kv_op *op = rkfs_txn_op(t, KV_OP_RENAME, src, slen);

	op->flags = KV_F_ANYVER | KV_F_TREE;
	op->key2 = dst;
	op->key2len = (uint32_t)dlen;
}

/*
 * One try of a rename (rkfs_txn_retry): 0 done, -EAGAIN lost a race, or an
 * errno.
 *
 * One TXN: compares pin the source and the target (its version, or its
 * absence) as decided here; the renames carry KV_F_TREE, so a directory
 * moves with everything below it however large (kv.h); both parents'
 * mtimes are set.  A target directory must be empty: its version moves
 * with every child added or removed, so the compare pins that too.  An
 * exchange parks the source at a key the mount never shows, inside the
 * same command.
 */
static int rename_once(struct fs *fs, void *arg)
{
	const struct rename_req *r = arg;
	char sp[KV_KEY_MAX + 1], dp[KV_KEY_MAX + 1];
	char src[KV_KEY_MAX + 1], dst[KV_KEY_MAX + 1];
	struct kv_attr spa, dpa, sa, da;
	struct kv_result res;
	struct rkfs_txn t;
	size_t splen, dplen, nx = 0;
	char **xkeys = NULL, okey[RKFS_ORPHAN_KEY_LEN + 1];
	long slen = 0, dlen = 0;
	bool dexists = false, xchg = r->flags & RENAME_EXCHANGE;
	bool orphan_dst = false, dst_here = false, dst_last = false;
	int64_t now = rkfs_now_ns();
	int rv;

	inode_lock(fs->inodes);
	rv = rkfs_get_ino_locked(fs, r->parent, sp, &splen, &spa);
	if (rv == 0)
		rv = rkfs_get_ino_locked(fs, r->newparent, dp, &dplen, &dpa);
	if (rv == 0 && (spa.kind != KV_KIND_DIR || dpa.kind != KV_KIND_DIR))
		rv = -ENOTDIR;
	if (rv == 0) {
		slen = rkfs_child_key(sp, splen, r->name, src);
		dlen = rkfs_child_key(dp, dplen, r->newname, dst);
		if (slen < 0 || dlen < 0)
			rv = -ENAMETOOLONG;
	}
	if (rv == 0)
		rv = kv_get(fs->kv, src, (size_t)slen, &sa, NULL, NULL);
	if (rv == 0)
		dexists = kv_get(fs->kv, dst, (size_t)dlen, &da, NULL, NULL) ==
		    0;
	if (rv == 0 && slen == dlen && memcmp(src, dst, (size_t)slen) == 0) {
		inode_unlock(fs->inodes);
		return 0; /* the same name: nothing to do */
	}
	if (rv == 0 && (r->flags & RENAME_NOREPLACE) && dexists)
		rv = -EEXIST;
	if (rv == 0 && xchg && !dexists)
		rv = -ENOENT;
	if (rv == 0 && sa.kind == KV_KIND_DIR &&
	    is_below(dst, (size_t)dlen, src, (size_t)slen))
		rv = -EINVAL;
	if (rv == 0 && xchg && da.kind == KV_KIND_DIR &&
	    is_below(src, (size_t)slen, dst, (size_t)dlen))
		rv = -EINVAL;
	if (rv == 0 && !xchg && dexists) {
		if (sa.kind == KV_KIND_DIR && da.kind != KV_KIND_DIR)
			rv = -ENOTDIR;
		else if (sa.kind != KV_KIND_DIR && da.kind == KV_KIND_DIR)
			rv = -EISDIR;
		else if (da.kind == KV_KIND_DIR &&
		    has_children_locked(fs, dst, (size_t)dlen))
			rv = -ENOTEMPTY;
		else if (da.nlink > 1 || da.inode == sa.inode) {
			/* only that name goes: the inode stays */
		} else if (da.kind != KV_KIND_DIR) {
			/* A file's last name: kept if held open (below). */
			dst_last = true;
			dst_here = inode_opens_locked(fs->inodes, da.inode) > 0;
		} else {
			/* The replaced inode's attributes go with it. */
			rv = rkxattr_keys_locked(fs, da.inode, &xkeys, &nx);
		}
	}
	inode_unlock(fs->inodes);
	if (rv == 0 && dst_last) {
		/* Held open by some mount: kept, hidden, until no mount
		 * holds it (fs/rkopen.h); else its attributes go with it. */
		rv = keep_open(fs, da.inode, dst_here);
		orphan_dst = rv == 1;
		rv = rv < 0 ? rv : 0;
		if (rv == 0 && !orphan_dst) {
			inode_lock(fs->inodes);
			rv = rkxattr_keys_locked(fs, da.inode, &xkeys, &nx);
			inode_unlock(fs->inodes);
		}
	}
	if (rv != 0)
		return rv;

	memset(&t, 0, sizeof(t));
	rkfs_txn_cmp(&t, src, (size_t)slen, sa.version);
	rkfs_txn_cmp(&t, dst, (size_t)dlen, dexists ? da.version : 0);
	if (!xchg && dexists && da.kind == KV_KIND_DIR)
		/* the directory replaced is still empty when it applies */
		rkfs_txn_cmp(&t, dst, (size_t)dlen, KV_VERSION_NOCHILD);
	if (!xchg && dst_last)
		/* held open, or not, when it applies (the open table) */
		rkfs_txn_cmp(&t, dst, (size_t)dlen,
		    orphan_dst ? KV_VERSION_OPEN : KV_VERSION_NOTOPEN);
	if (!xchg) {
		if (orphan_dst) {
			struct kv_op *op = rkfs_txn_op(&t, KV_OP_RENAME, dst,
			    (size_t)dlen);

			op->key2 = okey;
			op->key2len = (uint32_t)rkfs_orphan_key(fs, da.inode,
			    okey);
		}
		rename_op(&t, src, (size_t)slen, dst, (size_t)dlen);
	} else {
		size_t tlen = sizeof(xchg_key) - 1;

		rkfs_txn_cmp(&t, xchg_key, tlen, 0);
		rename_op(&t, src, (size_t)slen, xchg_key, tlen);
		rename_op(&t, dst, (size_t)dlen, src, (size_t)slen);
		rename_op(&t, xchg_key, tlen, dst, (size_t)dlen);
	}
	rkfs_txn_touch(&t, sp, splen, now);
	if (dplen != splen || memcmp(sp, dp, splen) != 0)
		rkfs_txn_touch(&t, dp, dplen, now);
	rv = rkfs_txn_submit_deleting(fs, &t, xkeys, nx, &res);
	rkxattr_keys_free(xkeys, nx);
	if (rv == KV_EINVAL)
		return -EINVAL; /* a key would exceed KV_KEY_MAX */
	return rkfs_txn_status(rv);
}

static void rk_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = rkfs_of(req);
	struct rename_req r = { parent, newparent, name, newname, flags };

	if (fs->opt.ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if ((flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (strlen(name) > FS_NAME_MAX || strlen(newname) > FS_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	fuse_reply_err(req, -rkfs_txn_retry(fs, rename_once, &r));
}

/*
 * access(2).  The kernel asks only without default_permissions (with it,
 * the default, it checks modes itself): the POSIX check of the caller
 * against the file's mode, owner and group (root passes, except X on a
 * file nobody may execute).  Supplementary groups are not known here.
 */
static void rk_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs *fs = rkfs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char key[KV_KEY_MAX + 1];
	struct kv_attr a;
	size_t klen;
	unsigned bits;
	int rv = rkfs_fresh(fs);

	if (rv == 0) {
		inode_lock(fs->inodes);
		rv = rkfs_get_ino_locked(fs, ino, key, &klen, &a);
		inode_unlock(fs->inodes);
	}
	if (rv == 0 && (mask & W_OK) && fs->opt.ro)
		rv = -EROFS;
	if (rv == 0 && mask != F_OK) {
		if (ctx->uid == 0)
			bits = (mask & X_OK) && a.kind != KV_KIND_DIR &&
			        !(a.mode & 0111)
			    ? 0
			    : 7;
		else if (ctx->uid == a.uid)
			bits = (a.mode >> 6) & 7;
		else if (ctx->gid == a.gid)
			bits = (a.mode >> 3) & 7;
		else
			bits = a.mode & 7;
		if (((unsigned)mask & 7) & ~bits)
			rv = -EACCES;
	}
	fuse_reply_err(req, -rv);
}

static void rk_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = rkfs_of(req);
	struct statvfs sv;
	uint64_t files, used, quota;
	int rv = rkfs_fresh(fs); /* df after a write shows it */

	(void)ino;
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	files = kv_key_count(fs->kv);
	/* The state's quota (kv.h, QUOTA) is the size; what it counts
	 * (keys, values, a per-key overhead) is used, rounded up. */
	kv_usage(fs->kv, &used, &quota);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = quota / sv.f_frsize;
	used = (used + sv.f_frsize - 1) / sv.f_frsize;
	sv.f_bfree = used < sv.f_blocks ? sv.f_blocks - used : 0;
	sv.f_bavail = sv.f_bfree;
	sv.f_files = 1ull << 32;
	sv.f_ffree = sv.f_files - files;
	sv.f_favail = sv.f_ffree;
	sv.f_namemax = FS_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops rkfs_ops = {
	.init = rk_init,
	.lookup = rk_lookup,
	.forget = rk_forget,
	.forget_multi = rk_forget_multi,
	.getattr = rk_getattr,
	.setattr = rk_setattr,
	.readlink = rk_readlink,
	.mknod = rk_mknod,
	.mkdir = rk_mkdir,
	.unlink = rk_unlink,
	.rmdir = rk_rmdir,
	.symlink = rk_symlink,
	.rename = rk_rename,
	.link = rk_link,
	.open = rkfile_open,
	.read = rkfile_read,
	.write = rkfile_write,
	.flush = rkfile_flush,
	.release = rkfile_release,
	.fsync = rkfile_fsync,
	.opendir = rkfile_opendir,
	.readdir = rkfile_readdir,
	.readdirplus = rkfile_readdirplus,
	.releasedir = rkfile_releasedir,
	.statfs = rk_statfs,
	.access = rk_access,
	.setxattr = rkxattr_set,
	.getxattr = rkxattr_get,
	.listxattr = rkxattr_list,
	.removexattr = rkxattr_remove,
	.create = rk_create,
	.getlk = rklock_getlk,
	.setlk = rklock_setlk,
	.flock = rklock_flock,
};
