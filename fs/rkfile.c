/*
 * rkfile.c - the FUSE operations on file data (open, read, write, flush,
 * fsync, release).  See rkfs.c for the shared rules.
 *
 * Writes go to the inode's write buffer on this mount (fs/wbuf.h) and are
 * committed at the latest by flush (close), fsync and release, or before
 * anything on this mount reads the file; with -o sync, O_SYNC, O_DSYNC or
 * O_APPEND each write() commits before it returns.  A commit is a TXN that
 * pins the file's version and writes at the offset (at the committed end
 * of the file for O_APPEND: appends from several mounts never overwrite
 * each other).  Files are opened direct_io: no page cache, every read()
 * is served after a read barrier, from the local state, copying only the
 * range asked (kv_read): a read of a 1 GiB file never copies the file.
 * A commit carries only the bytes written (the write buffer holds one
 * contiguous extent), so a 4 KiB write into a large file commits about
 * 4 KiB.  Files may grow to KV_FILE_MAX (1 GiB): EFBIG past it.
 *
 * With -o cache=relaxed (fs.h) files use the page cache instead, and
 * reads skip the barrier (open passed one): see cache_mode().
 *
 * Directory listings are in fs/rkdir.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/inode.h"
#include "fs/notify.h"
#include "fs/rkfs_int.h"
#include "fs/rklock.h"
#include "fs/rkopen.h"
#include "fs/wbuf.h"
#include "kv/clerk.h"
#include "kv/kv.h"
#include "raft/util/logging.h"

/* ---------------------------------------------------------------------
 * Files
 * --------------------------------------------------------------------- */

int rkfile_truncate0(struct fs *fs, fuse_ino_t ino)
{
	char key[KV_KEY_MAX + 1];
	struct kv_attr a;
	struct kv_result res;
	struct rkfs_txn t;
	size_t klen;
	int rv = rkfile_flush_ino(fs, ino);

	if (rv < 0)
		return rv;
	for (int attempt = 0; attempt < RKFS_RETRIES; attempt++) {
		rv = rkfs_read_ino(fs, ino, key, &klen, &a);
		if (rv != 0)
			return rv;
		if (a.kind == KV_KIND_DIR)
			return -EISDIR;
		memset(&t, 0, sizeof(t));
		rkfs_txn_cmp(&t, key, klen, a.version);
		rklock_fence_txn(fs, ino, &t);
		rkfs_txn_op(&t, KV_OP_TRUNCATE, key, klen)->arg = 0;
		rv = rkfs_txn_submit(fs, &t, &res);
		if (rv < 0)
			return rv;
		if (rv == KV_OK)
			return 0;
		if (rv == KV_EFENCED)
			return -EPERM; /* a fence of fs/rklock.h refused it */
		if (rv != KV_EVERSION && rv != KV_ENOKEY)
			return rkfs_status_errno(rv);
	}
	return -EIO;
}

/*
 * cache=relaxed: how an open of @ino, which passed a barrier and read
 * version @version of the file (after which the notifier's mark was
 * @mark), uses the kernel's caches.  Close-to-open needs the kernel to
 * hold no attributes or pages older than the file at the barrier: every
 * applied change sends inval_inode (fs/notify.c), and a reply computed
 * before a change that arrives after its invalidation is discarded by the
 * kernel, except a reply that created the kernel's inode after the
 * invalidation found none (inode_kernel_current_locked() tells).  So once
 * the notifier has sent everything queued up to @mark (and lost nothing
 * lately: attributes cached before a lost notification live at most
 * attr_timeout), and the kernel's attributes are current or marked
 * stale, use the page cache, and keep its pages only if the version is
 * the one the last open here recorded.  Otherwise read straight from the
 * local state for this descriptor (direct_io), as strict mode does: the
 * kernel's size might be stale, and a read through the page cache stops
 * at it.
 */
static void cache_mode(struct fs *fs, uint64_t ino, uint64_t version,
    uint64_t mark, bool changed, struct fuse_file_info *fi)
{
	unsigned t = fs->opt.attr_timeout > fs->opt.entry_timeout
	    ? fs->opt.attr_timeout
	    : fs->opt.entry_timeout;
	bool cached;
	uint64_t old;

	fi->keep_cache = 0;
	fi->direct_io = 1;
	if (!fs->opt.relaxed)
		return;
	cached = notifier_caught_up(fs->notifier, mark, t * 1000 + 1000);
	inode_lock(fs->inodes);
	cached = cached &&
	    inode_kernel_current_locked(fs->inodes, ino, version);
	old = inode_cached_swap_locked(fs->inodes, ino, cached ? version : 0);
	inode_unlock(fs->inodes);
	fi->direct_io = !cached;
	fi->keep_cache = cached && !changed && old == version && version != 0;
}

void rkfile_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	char key[KV_KEY_MAX + 1];
	struct kv_attr a;
	uint64_t mark = 0;
	bool truncated = false;
	size_t klen;
	int rv;

	if (fs->opt.ro && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	rv = rkfs_read_ino(fs, ino, key, &klen, &a);
	if (rv == 0) /* what the state read holds has been queued */
		mark = notifier_mark(fs->notifier);
	if (rv == 0 && a.kind == KV_KIND_DIR &&
	    (fi->flags & O_ACCMODE) != O_RDONLY)
		rv = -EISDIR;
	if (rv == 0 && (fi->flags & O_TRUNC) && a.kind == KV_KIND_FILE &&
	    (fi->flags & O_ACCMODE) != O_RDONLY) {
		rv = rkfile_truncate0(fs, ino);
		truncated = true;
	}
	if (rv == 0)
		rv = rkfile_fh_new(fs, ino, fi->flags, &fi->fh);
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	cache_mode(fs, ino, a.version, mark, truncated, fi);
	inode_lock(fs->inodes);
	inode_open_locked(fs->inodes, ino);
	inode_unlock(fs->inodes);
	rkopen_hold(fs->opens, ino); /* registered in the background */
	if (fuse_reply_open(req, fi) != 0) {
		rkfile_fh_drop(fs, fi->fh);
		inode_lock(fs->inodes);
		inode_close_locked(fs->inodes, ino);
		inode_unlock(fs->inodes);
		rkopen_drop(fs->opens, ino);
	}
}

void rkfile_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	char key[KV_KEY_MAX + 1];
	struct kv_attr a;
	size_t klen;
	char *buf;
	long n = 0;
	int rv;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	rv = rklock_check(fs, ino, rkfile_fh_epoch(fi->fh));
	if (rv == 0)
		rv = rkfile_flush_ino(fs, ino);
	if (rv < 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	buf = malloc(size ? size : 1);
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rv = rkfs_fresh_read(fs);
	if (rv == 0) {
		inode_lock(fs->inodes);
		rv = rkfs_get_ino_locked(fs, ino, key, &klen, &a);
		if (rv == 0 && a.kind == KV_KIND_DIR)
			rv = -EISDIR;
		if (rv == 0) {
			n = kv_read(fs->kv, key, klen, (uint64_t)off, buf, size,
			    &a);
			if (n < 0)
				rv = (int)n;
		}
		inode_unlock(fs->inodes);
	}
	if (rv != 0)
		fuse_reply_err(req, -rv);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* Commit @len bytes at @off (at the committed end with @append) into
 * inode @ino, starting over when a concurrent change moved its version;
 * written through descriptors of lock loss epoch @epoch: WBUF_LOST,
 * nothing committed, once this mount lost a lock it held on @ino after
 * that epoch (checked before every attempt). */
static int commit_write(struct fs *fs, uint64_t ino, uint64_t epoch,
    uint64_t off, const void *data, size_t len, bool append)
{
	char key[KV_KEY_MAX + 1];
	struct kv_attr a;
	struct kv_result res;
	struct rkfs_txn t;
	size_t klen;
	int rv = -EIO;

	for (int attempt = 0; attempt < RKFS_RETRIES; attempt++) {
		uint64_t at = off;
		struct kv_op *op;

		rv = rkfs_read_ino(fs, ino, key, &klen, &a);
		if (rv != 0)
			return rv;
		if (a.kind == KV_KIND_DIR)
			return -EISDIR;
		if (append)
			at = a.size;
		if (at > KV_FILE_MAX || len > KV_FILE_MAX - at)
			return -EFBIG;
		if (len == 0)
			return 0;
		if (rklock_check(fs, ino, epoch) != 0)
			return WBUF_LOST;
		memset(&t, 0, sizeof(t));
		rkfs_txn_cmp(&t, key, klen, a.version);
		rklock_fence_txn(fs, ino, &t);
		op = rkfs_txn_op(&t, KV_OP_WRITE, key, klen);
		op->arg = at;
		op->data = data;
		op->datalen = (uint32_t)len;
		rv = rkfs_txn_submit(fs, &t, &res);
		if (rv < 0)
			return rv;
		if (rv == KV_OK)
			return 0;
		if (rv == KV_EFENCED)
			return -EPERM; /* a fence of fs/rklock.h refused it */
		if (rv != KV_EVERSION && rv != KV_ENOKEY)
			return rkfs_status_errno(rv);
		rv = -EIO;
	}
	return rv;
}

int rkfile_commit(void *arg, uint64_t ino, uint64_t epoch, uint64_t off,
    const void *data, size_t len)
{
	return commit_write(arg, ino, epoch, off, data, len, false);
}

/* The errno for a commit of written bytes that failed: a file removed by
 * another mount meanwhile is ESTALE (the bytes are lost; as NFS answers
 * for a removed file's handle, raftkv(7)); bytes written under a lock
 * lost since (WBUF_LOST) are EIO, the error write(2), fsync(2) and
 * close(2) define for lost data. */
static int write_errno(int rv)
{
	if (rv == WBUF_LOST)
		return -EIO;
	return rv == -ENOENT ? -ESTALE : rv;
}

/* An open file: its write buffer when writes are buffered, and the lock
 * loss epoch at open (fs/rklock.h). */
struct fh {
	struct wbuf *wb;
	uint64_t lock_epoch;
};

/* The handle for an open of @ino with @flags (no buffer when writes go
 * straight through: read-only, -o sync, O_SYNC, O_DSYNC, O_APPEND). */
int rkfile_fh_new(struct fs *fs, uint64_t ino, int flags, uint64_t *out)
{
	struct fh *h;

	*out = 0;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->lock_epoch = rklock_epoch(fs);
	if (!((flags & O_ACCMODE) == O_RDONLY || fs->opt.sync ||
	        fs->wbufs == NULL || (flags & (O_SYNC | O_DSYNC | O_APPEND)))) {
		h->wb = wbuf_open(fs->wbufs, ino);
		if (h->wb == NULL) {
			free(h);
			return -ENOMEM;
		}
	}
	*out = (uint64_t)(uintptr_t)h;
	return 0;
}

uint64_t rkfile_fh_epoch(uint64_t fh)
{
	const struct fh *h = (const struct fh *)(uintptr_t)fh;

	return h ? h->lock_epoch : 0;
}

void rkfile_fh_drop(struct fs *fs, uint64_t fh)
{
	struct fh *h = (struct fh *)(uintptr_t)fh;

	if (h == NULL)
		return;
	if (h->wb != NULL)
		wbuf_release(fs->wbufs, h->wb);
	free(h);
}

int rkfile_flush_ino(struct fs *fs, uint64_t ino)
{
	int rv = fs->wbufs == NULL ? 0 : wbufs_flush_ino(fs->wbufs, ino);

	/* Bytes of a lost lock are dropped, never committed; the
	 * descriptors that wrote them report it (rklock_check()). */
	return rv == WBUF_LOST ? 0 : rv;
}

void rkfile_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	int rv;

	if (fs->opt.ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off < 0 || (uint64_t)off > KV_FILE_MAX ||
	    size > KV_FILE_MAX - (uint64_t)off) {
		fuse_reply_err(req, off < 0 ? EINVAL : EFBIG);
		return;
	}
	rv = rklock_check(fs, ino, rkfile_fh_epoch(fi->fh));
	if (rv < 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	if (h != NULL && h->wb != NULL) {
		rv = wbuf_write(fs->wbufs, h->wb, h->lock_epoch, (uint64_t)off,
		    buf, size);
	} else {
		/* Straight through, after what this mount buffered. */
		rv = rkfile_flush_ino(fs, ino);
		if (rv >= 0)
			rv = commit_write(fs, ino, rkfile_fh_epoch(fi->fh),
			    (uint64_t)off, buf, size,
			    (fi->flags & O_APPEND) != 0);
	}
	if (rv < 0)
		fuse_reply_err(req, -write_errno(rv));
	else
		fuse_reply_write(req, size);
}

void rkfile_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	int rv = rklock_check(fs, ino, rkfile_fh_epoch(fi->fh)), lk;

	if (rv == 0 && h != NULL && h->wb != NULL)
		rv = wbuf_flush(fs->wbufs, h->wb);
	/* close(2) of any descriptor drops the POSIX locks of its owner. */
	lk = rklock_flush(fs, ino, fi->lock_owner);
	if (rv == 0)
		rv = lk;
	fuse_reply_err(req, rv < 0 ? -write_errno(rv) : 0);
}

void rkfile_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	bool last;

	/* The flush of close() reported any error already; what is left
	 * (writes through a descriptor dup'ed after) commits now, before
	 * any lock is released below. */
	if (h != NULL && h->wb != NULL) {
		wbuf_release(fs->wbufs, h->wb);
		h->wb = NULL;
	}
	inode_lock(fs->inodes);
	last = inode_close_locked(fs->inodes, ino) == 0;
	inode_unlock(fs->inodes);
	/* The last close here unregisters it; a removed file goes once
	 * nobody holds it (fs/rkopen.h). */
	rkopen_drop(fs->opens, ino);
	/* The last close of an open file description drops its flock. */
	rklock_release(fs, ino, fi, last);
	/* Freed only now: rklock keys the lock owners of an open file by
	 * this handle, and a freed handle can come back from malloc for a
	 * new open (whose locks would then be dropped as this one's). */
	rkfile_fh_drop(fs, fi->fh);
	fuse_reply_err(req, 0);
}

void rkfile_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	int rv = rklock_check(fs, ino, rkfile_fh_epoch(fi->fh));

	(void)datasync;
	if (rv == 0)
		rv = rkfile_flush_ino(fs, ino);
	/* Committed = on a majority's disks. */
	fuse_reply_err(req, rv < 0 ? -write_errno(rv) : 0);
}
