/*
 * inode.h - the mount's table of the inodes the kernel knows: FUSE node id
 * -> the key the inode lives at now, and the kernel's lookup count.
 *
 * The node id the kernel sees IS the KV inode number (kv.h: assigned at
 * creation, never reused, kept across renames), so ids are stable and a
 * hard link or a rename never renumbers anything.  The root directory is
 * FUSE_ROOT_ID (1); it has no key: its children are the keys "/name".
 *
 * Keys move: a rename, here or on any other member, changes the key of an
 * inode (and of every inode under a renamed directory).  The table follows
 * the state machine exactly: the apply hook (fs/fsapp.c) calls
 * inode_applied() for every committed, successful operation, in log order,
 * while holding the table lock around the state machine's apply.  A
 * handler that holds the table lock around its resolve + local read sees
 * the table and the KV state at the same applied index.  An inode whose key
 * was deleted (or replaced by a rename) moves to another of its names if
 * it has one (hard links; the hook asks kv_name_of()), otherwise it stays
 * in the table, "dead" (no key), until the kernel forgets it.  The table
 * holds one name per inode: any current one will do.
 *
 * Lock order: the table lock, then the KV state machine's lock (never the
 * other way).  The table lock is only ever held for bounded local work:
 * never across a read barrier, a submit or a FUSE notification.
 */
#ifndef RAFTKV_FS_INODE_H
#define RAFTKV_FS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct inode_table;

/* An empty table (the root is implicit).  NULL on ENOMEM. */
struct inode_table *inode_table_new(void);
void inode_table_free(struct inode_table *t);

void inode_lock(struct inode_table *t);
void inode_unlock(struct inode_table *t);

/*
 * With the lock held: the key of @ino (not NUL-terminated, *@len bytes;
 * borrowed until the lock is released).  The root answers "" (length 0).
 * Returns 0, -ESTALE (unknown to the table: the kernel never looked it up,
 * or forgot it) or -ENOENT (known but dead: deleted or replaced).
 */
int inode_key_locked(struct inode_table *t, uint64_t ino, const char **key,
    size_t *len);

/*
 * With the lock held: the kernel learnt @ino at @key (one more lookup, as
 * in a FUSE entry reply).  @key NULL: the inode is known but dead.
 * Returns 0 or -ENOMEM.  The root is never stored.
 */
int inode_ref_locked(struct inode_table *t, uint64_t ino, const char *key,
    size_t len);

/* The kernel forgot @nlookup lookups of @ino: drop it at zero. */
void inode_forget(struct inode_table *t, uint64_t ino, uint64_t nlookup);

/* With the lock held: the inode at @key, or 0 when none is known. */
uint64_t inode_at_locked(struct inode_table *t, const char *key, size_t len);

/*
 * With the lock held (the apply hook): @key was removed (deleted, or the
 * target of a rename replaced).  Its inode, if known, becomes dead; its
 * number is returned (0: none), so that the hook can move it to another
 * name if it still has one (a hard link: inode_set_key_locked()).
 */
uint64_t inode_applied_delete(struct inode_table *t, const char *key,
    size_t len);

/*
 * With the lock held (the apply hook): the name @src moved to @dst.
 * The inode at @dst (if another) becomes dead, its number in *@died (0:
 * none; as for inode_applied_delete()); the one at @src is now at @dst.
 * Returns 0 or -ENOMEM (the table then marks the moved inode dead: the
 * next access answers ENOENT instead of the wrong file).
 */
int inode_applied_rename(struct inode_table *t, const char *src, size_t srclen,
    const char *dst, size_t dstlen, uint64_t *died);

/*
 * With the lock held (the apply hook): a tree rename (kv.h, KV_F_TREE):
 * as inode_applied_rename() for @src, and every inode below "@src/" moves
 * to the same name below "@dst/" (an inode already there dies).  O(table).
 * Returns 0 or -ENOMEM (inodes it could not move are dead).
 */
int inode_applied_rename_tree(struct inode_table *t, const char *src,
    size_t srclen, const char *dst, size_t dstlen, uint64_t *died);

/*
 * With the lock held: count the opens of @ino on this mount (one more,
 * one fewer; each returns how many are left), or read the count (a
 * removal of a file open here waits for its registration first:
 * fs/rkopen.h).  0 for the root or an unknown inode.
 */
unsigned inode_open_locked(struct inode_table *t, uint64_t ino);
unsigned inode_close_locked(struct inode_table *t, uint64_t ino);
unsigned inode_opens_locked(struct inode_table *t, uint64_t ino);

/*
 * With the lock held (cache=relaxed): the file version the kernel's page
 * cache of @ino holds, as the last open here recorded it, is now
 * @version; returns the one recorded before (0: none, or @ino unknown).
 */
uint64_t inode_cached_swap_locked(struct inode_table *t, uint64_t ino,
    uint64_t version);

/*
 * cache=relaxed, with the lock held: what the kernel may hold of @ino's
 * attributes.  inode_attr_sent_locked(): a reply computed now carries
 * @version of the file.  inode_inval_result_locked(): an inval_inode was
 * sent, and the kernel had the inode (@ok) or not.
 * inode_kernel_current_locked(): can the kernel hold no attributes older
 * than @version (the file's version now)?  True when the newest reply
 * carried @version, or the last invalidation reached the kernel's inode
 * (from then on the kernel orders replies and invalidations itself: a
 * reply computed before an invalidation it received is discarded).
 * False for an unknown inode.
 */
void inode_attr_sent_locked(struct inode_table *t, uint64_t ino,
    uint64_t version);
void inode_inval_result_locked(struct inode_table *t, uint64_t ino, bool ok);
bool inode_kernel_current_locked(struct inode_table *t, uint64_t ino,
    uint64_t version);

/* With the lock held: the kernel may hold anything of any inode (a
 * snapshot replaced the state; no notification says what changed):
 * forget every version recorded above. */
void inode_kernel_stale_locked(struct inode_table *t);

/* Number of inodes held (root excluded), for tests and statfs. */
size_t inode_count(struct inode_table *t);

/*
 * With the lock held: call @fn for every inode (dead ones included, with
 * key NULL); @fn may call inode_set_key_locked() on it.  For rebuilding
 * keys after a snapshot was installed.
 */
void inode_each_locked(struct inode_table *t,
    void (*fn)(void *arg, uint64_t ino), void *arg);

/* With the lock held: set @ino's key (NULL: dead).  0 or -ENOMEM. */
int inode_set_key_locked(struct inode_table *t, uint64_t ino, const char *key,
    size_t len);

#endif
