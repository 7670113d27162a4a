/*
 * fs.h - the state of one mount.raftkv process, shared by its parts:
 *
 *   fs/main.c     options, checks, daemonizing, signals, start and stop
 *   fs/fsmember.c the embedded member (Raft node + client endpoint running
 *                 the KV application, with the apply hook of fs/fsapp.c)
 *   fs/fsapp.c    the apply hook: keeps the inode table in step with the
 *                 state machine and feeds the notifier
 *   fs/barrier.c  linearizable read barriers, batched across requests
 *   fs/ckpool.c   clerks that submit the mount's mutations to the leader
 *   fs/rkfs.c     the FUSE low-level operations (metadata)
 *   fs/rkdir.c    the FUSE low-level operations on directory listings
 *   fs/rkfile.c   the FUSE low-level operations (file data,
 *                 files removed while open)
 *   fs/xattr.c    user.* extended attributes
 *   fs/rklock.c   flock and POSIX locks, fencing (the lock table of kv.h)
 *   fs/rkopen.c   open files registered in the cluster, files removed
 *                 while open (the open table of kv.h)
 *   fs/notify.c   the kernel-cache invalidation thread
 *   fs/wbuf.c     per-inode write buffers (commit at close/fsync)
 *   fs/inode.c    node id <-> key table
 *
 * THE MAPPING.  A file at mount path /a/b is the KV key "/a/b"; a
 * directory is a key of kind dir; the root is implicit (no key).  A
 * directory lists the keys "DIR/NAME" whose NAME holds no '/'.  Keys the
 * mount cannot show are skipped: not starting with '/', an empty
 * component, "." or "..", a component over 255 bytes, or a key below a
 * file (raftkv(7), Filesystem).  A key whose parent directory keys do not
 * exist implies them: the mount makes such an implicit directory real
 * when it meets one (rkfs_make_dirs, rkfs_int.h).  The mount
 * keeps its own bookkeeping under keys outside "/": extended attributes
 * ("\001x/INODE/NAME", fs/xattr.c) and files removed while open
 * ("\001o/MEMBER/INODE", rkfs_int.h).
 *
 * HOW AN OPERATION RUNS.  A read (lookup, getattr, read, readdir,
 * readlink) first passes a read barrier (fs/barrier.h: the local state
 * has applied everything committed before the request began), then reads
 * the local state machine under the inode table lock.  A mutation reads
 * the same way to decide, then submits ONE command (usually a TXN whose
 * compares pin what it decided on) through a clerk to the leader, which
 * stamps the time; a compare that fails means someone else changed the
 * state meanwhile, and the operation starts over.  So each operation is
 * one committed command: atomic on every mount.
 *
 * CACHE=RELAXED (close-to-open).  open() and opendir() pass a barrier as
 * above; lookup, getattr, readlink, access, readdir and read do not (they
 * serve the local state, and the kernel caches names and attributes for
 * entry_timeout/attr_timeout and file data in its page cache), except
 * that the first of them after this mount committed a mutation passes a
 * barrier (read your own writes: rkfs_fresh_read).  Open files use the
 * page cache; open keeps it only when the file is unchanged since the
 * copy was cached (fs/rkfile.c), and the notifier (fs/notify.c) drops
 * the kernel's attributes and pages of every inode an applied entry
 * changes.  raftkv(7) states what another mount may see, and for how long.
 */
#ifndef RAFTKV_FS_FS_H
#define RAFTKV_FS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"

struct fuse_session;
struct inode_table;
struct barrier;
struct ckpool;
struct notifier;
struct fsm;
struct wbufs;
struct rklock;
struct rkopen;

/* Longest name the mount shows or creates. */
#define FS_NAME_MAX 255

struct fs_options {
	int timeout_ms; /* an operation fails with EIO after this */
	bool sync; /* -o sync: every write() commits */
	bool ro;
	size_t writebuf; /* bytes buffered per file before a commit
	                        (fs/wbuf.h); 0: none (as sync) */
	bool relaxed; /* -o cache=relaxed: close-to-open (below) */
	unsigned attr_timeout; /* relaxed: kernel attribute cache, s */
	unsigned entry_timeout; /* relaxed: kernel name cache, s */
};

struct fs {
	struct fs_options opt;
	uint64_t member_id; /* names this mount's orphan keys */
	struct kv *kv; /* the local state machine */
	struct fsm *member;
	struct inode_table *inodes;
	struct barrier *barrier;
	struct ckpool *clerks;
	struct notifier *notifier;
	struct wbufs *wbufs; /* NULL when writes are not buffered */
	struct rklock *locks; /* fs/rklock.h */
	struct rkopen *opens; /* fs/rkopen.h */
	struct fuse_session *se; /* set once mounted */
	/* Relaxed mode: mutations this mount committed (bumped after each),
	 * and how many of them a completed read barrier covers. */
	uint64_t wgen, wgen_fresh;
};

/* Commit @len bytes at @off into inode @ino, written at lock loss epoch
 * @epoch (fs/rkfile.c): the wbuf_commit_fn of the mount, @arg being its
 * struct fs.  0, WBUF_LOST (fs/wbuf.h) or -errno. */
int rkfile_commit(void *arg, uint64_t ino, uint64_t epoch, uint64_t off,
    const void *data, size_t len);

/* The FUSE low-level operations (fs/rkfs.c, fs/rkfile.c). */
struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops rkfs_ops;

#endif
