/*
 * wbuf.h - write buffers: the bytes write() accepted on this mount but
 * has not committed yet, one buffer per inode (shared by every descriptor
 * of the file on this mount), at most one contiguous extent of at most
 * the configured bound.
 *
 * Sequential writes coalesce into one commit; a write that does not
 * extend the extent, or would pass the bound, commits the extent first.
 * The extent is committed at the latest by flush (close), fsync and
 * release, and before anything on this mount reads the inode (read,
 * getattr, lookup, setattr, truncate, unlink, rename): every descriptor
 * on this mount reads its own bytes at once, while other mounts see them
 * once they commit ("commit before visible").  If a commit fails, the
 * extent is dropped and the caller that triggered it gets the error.
 *
 * LOST LOCKS.  Every extent carries the lock loss epoch (fs/rklock.h) of
 * the descriptors that wrote it; writes of another epoch never join it
 * (it is committed first).  The commit function is given that epoch and
 * refuses (WBUF_LOST, nothing committed) bytes written under a lock this
 * mount lost before they could commit, whichever path commits them
 * (flush, fsync, release, a read, getattr, an unlock...).
 *
 * Locking: a buffer's mutex is held across its commit (a round trip to the
 * leader); nothing else is ever taken while a handler waits for it except
 * the read barrier and the inode table lock, briefly, which never wait
 * for a buffer.  The table of buffers has its own short mutex.
 */
#ifndef RAFTKV_FS_WBUF_H
#define RAFTKV_FS_WBUF_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

struct wbufs;
struct wbuf;

/* What a commit function returns for bytes written (at @epoch) under a
 * lock that was lost since: they are not committed. */
#define WBUF_LOST (-ENOLCK)

/* Commits @len bytes at @off into inode @ino, written at loss epoch
 * @epoch: 0, WBUF_LOST or a negative errno. */
typedef int (*wbuf_commit_fn)(void *arg, uint64_t ino, uint64_t epoch,
    uint64_t off, const void *data, size_t len);

/* Buffers of at most @bound bytes, committed through @fn(@arg, ...). */
struct wbufs *wbufs_new(size_t bound, wbuf_commit_fn fn, void *arg);
void wbufs_free(struct wbufs *w);

/* A reference to @ino's buffer (created empty if needed), for one open
 * descriptor; NULL on ENOMEM. */
struct wbuf *wbuf_open(struct wbufs *w, uint64_t ino);

/* Commit what is pending, drop the reference.  0 or the commit's error. */
int wbuf_release(struct wbufs *w, struct wbuf *b);

/* Buffer @len bytes at @off, written through a descriptor of loss epoch
 * @epoch (committing the pending extent first when needed; a pending
 * extent of another epoch that is refused as WBUF_LOST is dropped without
 * error: its own descriptors report the loss).  0 or a negative errno
 * (then nothing of this write is kept). */
int wbuf_write(struct wbufs *w, struct wbuf *b, uint64_t epoch, uint64_t off,
    const void *data, size_t len);

/* Commit @b's pending extent.  0 or the commit's error (WBUF_LOST). */
int wbuf_flush(struct wbufs *w, struct wbuf *b);

/* Commit the pending extent of @ino on this mount, if any: 0 (nothing
 * pending), 1 (committed), or the commit's error (WBUF_LOST: dropped). */
int wbufs_flush_ino(struct wbufs *w, uint64_t ino);

#endif
