/*
 * rkfs_int.h - helpers shared by the FUSE operations (fs/rkfs.c,
 * fs/rkfile.c, fs/rkdir.c): errno mapping, attributes, keys, submitting.
 */
#ifndef RAFTKV_FS_RKFS_INT_H
#define RAFTKV_FS_RKFS_INT_H

#define FUSE_USE_VERSION 35

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fs/fs.h"
#include "kv/cmd.h"

/* How often an operation starts over after losing a race (a compare that
 * pinned what it read failed) before it gives up with EIO. */
#define RKFS_RETRIES 100

static inline struct fs *rkfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Pass the read barrier: 0 or -EIO (rkfs_timeout_ms expired). */
int rkfs_fresh(struct fs *fs);

/* The barrier of an operation that cache=relaxed serves from the local
 * state (lookup, getattr, readlink, read, readdir): none there, unless
 * this mount committed a mutation since its last barrier (a mount reads
 * its own writes); rkfs_fresh() in strict mode.  0 or -EIO. */
int rkfs_fresh_read(struct fs *fs);

/* The attribute timeout of replies: 0, or attr_timeout when relaxed. */
double rkfs_attr_timeout(const struct fs *fs);

/* The caller's idea of "now" in ns since the epoch. */
int64_t rkfs_now_ns(void);

/* Fill @st from @a (root: rkfs_root_attr()). */
void rkfs_stat(const struct kv_attr *a, struct stat *st);

/* The root directory's attributes (it has no key). */
void rkfs_root_attr(struct kv_attr *a);

/*
 * Build the key of @name in the directory whose key is @dir (@dlen bytes)
 * into @out (KV_KEY_MAX + 1 bytes): "DIR/NAME".  Returns its length, or
 * -ENAMETOOLONG (name over FS_NAME_MAX, or the key over KV_KEY_MAX).
 */
long rkfs_child_key(const char *dir, size_t dlen, const char *name, char *out);

/*
 * With the inode table lock held: copy @ino's key into @key (KV_KEY_MAX + 1
 * bytes, *@klen) and read its attributes from the local state into @a.
 * Returns 0, -ESTALE (deleted or replaced, or an unknown node id:
 * inode_key_locked()).
 */
int rkfs_get_ino_locked(struct fs *fs, uint64_t ino, char *key, size_t *klen,
    struct kv_attr *a);

/*
 * Pass the read barrier, then rkfs_get_ino_locked() under the table lock.
 * Returns 0, -EIO (barrier timed out), -ESTALE.
 */
int rkfs_read_ino(struct fs *fs, uint64_t ino, char *key, size_t *klen,
    struct kv_attr *a);

/* With the table lock held: the attributes of @key (the root for ""). */
int rkfs_get_key_locked(struct fs *fs, const char *key, size_t klen,
    struct kv_attr *a);

/*
 * Submit @c through a pooled clerk.  Returns the result's status (>= 0,
 * enum kv_status) with @res filled, or -EIO (unavailable, outcome unknown)
 * or -ENOMEM.
 */
int rkfs_submit(struct fs *fs, struct kv_cmd *c, struct kv_result *res);

/* Map a status no caller expected to an errno (negative). */
int rkfs_status_errno(int status);

/*
 * With the table lock NOT held: after a committed create at @key of inode
 * @ino (@created: the attributes the commit answered), wait until this
 * member applied it and record it in the table (one kernel lookup).  Fills
 * @e (timeouts 0).  0 or negative errno.
 */
int rkfs_learn(struct fs *fs, const char *key, size_t klen, uint64_t ino,
    const struct kv_attr *created, struct fuse_entry_param *e);

/* A small transaction under construction. */
#define RKFS_TXN_SMALL 8
struct rkfs_txn {
	struct kv_cmp cmps[RKFS_TXN_SMALL];
	struct kv_op ops[RKFS_TXN_SMALL];
	uint32_t ncmp, nops;
};

void rkfs_txn_cmp(struct rkfs_txn *t, const char *key, size_t len,
    uint64_t version);
struct kv_op *rkfs_txn_op(struct rkfs_txn *t, uint8_t type, const char *key,
    size_t len);
/* Also set the parent directory @dir's mtime (nothing for the root). */
void rkfs_txn_touch(struct rkfs_txn *t, const char *dir, size_t dlen,
    int64_t now);
int rkfs_txn_submit(struct fs *fs, struct rkfs_txn *t, struct kv_result *res);
/*
 * The shape of every mutation (fs.h): run @once(@fs, @arg) until it does
 * not lose a race.  Each try first passes the read barrier; @once then
 * decides from the local state under the table lock, submits one command
 * whose compares pin what it decided on, and returns 0 or a negative
 * errno (both final), or -EAGAIN when a compare failed: someone changed
 * the state meanwhile (rkfs_txn_status()).  After RKFS_RETRIES lost
 * races: -EIO.
 */
int rkfs_txn_retry(struct fs *fs, int (*once)(struct fs *fs, void *arg),
    void *arg);
/* A submit's result for a try of rkfs_txn_retry(): a negative errno as
 * is, KV_OK 0, a failed compare (KV_EVERSION) or a key gone (KV_ENOKEY)
 * -EAGAIN, any other status rkfs_status_errno(). */
int rkfs_txn_status(int rv);
/* rkfs_txn_submit() with a DELETE of each of @keys appended (the
 * attributes of an inode removed by @t). */
int rkfs_txn_submit_deleting(struct fs *fs, struct rkfs_txn *t, char **keys,
    size_t nkeys, struct kv_result *res);

/*
 * Implicit directories: a key "/a/b/c" put by a client that does not
 * create parents implies the directories "/a" and "/a/b".  The mount
 * makes such a directory real (a key of kind dir, mode
 * RKFS_IMPLICIT_MODE, owner root, no parent mtime change) the first time
 * it meets it: a lookup of its name, or a listing of its parent.  This
 * makes the directories of keys of @keys (@lens bytes each; at most
 * KV_TXN_MAX of @n, the caller looks again for the rest) in one command
 * whose compares require each to be absent.  Returns 0 (made, or one of
 * them was made meanwhile: look again), -EROFS on a read-only mount
 * (nothing is made: the mount does not show them), or a negative errno.
 */
#define RKFS_IMPLICIT_MODE 0755
int rkfs_make_dirs(struct fs *fs, char *const *keys, const size_t *lens,
    size_t n);

/*
 * With the table lock held: the first name, sorting after @after (NULL:
 * from the first), of an implicit directory in the directory whose key
 * is @dir (@dlen bytes): the first component of a key below it that
 * names no key and that the mount can show.  Into @name (FS_NAME_MAX + 1
 * bytes, terminated).  Returns its length, or 0 when there is none.
 */
size_t rkfs_next_implicit_locked(struct fs *fs, const char *dir, size_t dlen,
    const char *after, char *name);

/* Fill @e for a reply about @a: node id, attributes, the mode's timeouts
 * (0 strict; attr_timeout/entry_timeout relaxed). */
void rkfs_entry_of(const struct fs *fs, const struct kv_attr *a,
    struct fuse_entry_param *e);

/* File operations of fs/rkfile.c, directory operations of fs/rkdir.c. */
void rkfile_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rkfile_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi);
void rkfile_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
    off_t off, struct fuse_file_info *fi);
void rkfile_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rkfile_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rkfile_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi);
void rkfile_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rkfile_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi);
void rkfile_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi);
void rkfile_releasedir(fuse_req_t req, fuse_ino_t ino,
    struct fuse_file_info *fi);
/* Truncate @ino's file to 0 (O_TRUNC): 0 or negative errno. */
int rkfile_truncate0(struct fs *fs, fuse_ino_t ino);

/* A file handle for an open of @ino with @flags into *@out (0 when writes
 * are not buffered); release it with rkfile_fh_drop().  0 or -ENOMEM. */
int rkfile_fh_new(struct fs *fs, uint64_t ino, int flags, uint64_t *out);
void rkfile_fh_drop(struct fs *fs, uint64_t fh);
/* The lock loss epoch the open @fh recorded (fs/rklock.h). */
uint64_t rkfile_fh_epoch(uint64_t fh);

/*
 * A file removed (unlink, rename over it) while some mount holds it open
 * lives on under its orphan key, "\001o/MEMBER/INODE" (16 hex digits
 * each, MEMBER the removing mount's; not shown), so that descriptors on
 * every mount keep working; it goes once no mount holds it open
 * (fs/rkopen.h).  @out: RKFS_ORPHAN_KEY_LEN + 1 bytes.
 */
#define RKFS_ORPHAN_PREFIX "\001o/"
#define RKFS_ORPHAN_KEY_LEN (3 + 16 + 1 + 16)
size_t rkfs_orphan_key(const struct fs *fs, uint64_t ino, char *out);


/* Extended attributes (fs/xattr.c). */
/*
 * At most this many attributes per inode: a setxattr of a new name past
 * it fails with ENOSPC (as on a file system whose attribute space is
 * full).  An unlink, rmdir, rename over a file or orphan reap deletes
 * the inode's attributes in the one TXN that removes it, next to at most
 * RKFS_TXN_SMALL other ops, so the cap keeps that TXN within KV_TXN_MAX
 * ops: without it, a file given more attributes could never be removed
 * (the TXN would be refused, E2BIG).
 */
#define RKXATTR_MAX (KV_TXN_MAX - RKFS_TXN_SMALL)
void rkxattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void rkxattr_list(fuse_req_t req, fuse_ino_t ino, size_t size);
void rkxattr_set(fuse_req_t req, fuse_ino_t ino, const char *name,
    const char *value, size_t size, int flags);
void rkxattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name);
/* With the table lock held: the keys of @ino's attributes (malloc'd;
 * free with rkxattr_keys_free()), for removing them with the file.
 * 0 or -ENOMEM. */
int rkxattr_keys_locked(struct fs *fs, uint64_t ino, char ***keys, size_t *n);
void rkxattr_keys_free(char **keys, size_t n);

/* Commit what this mount buffered for @ino (fs/wbuf.h): 0 (or 1 when
 * something was committed), or a negative errno. */
int rkfile_flush_ino(struct fs *fs, uint64_t ino);

#endif
