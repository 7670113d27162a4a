/*
 * notify.h - keeps the kernel's caches on this mount coherent with the
 * replicated state: for every key an applied entry changes (here or on any
 * other member), the kernel is told to drop the name (inval_entry in the
 * parent directory) and the inode's cached attributes and data
 * (inval_inode).
 *
 * The apply hook only queues keys (notifier_push never blocks, never
 * waits: a full queue drops, counted).  A dedicated thread sends the
 * notifications, holding no lock while it does: a notification can wait
 * for a kernel lock that a request in flight holds, and that request's
 * handler must always be able to finish (libfuse#341).  In strict mode
 * the timeouts are 0 (the kernel asks again every time), so a dropped
 * notification costs nothing in correctness, and only names are sent
 * (inval_entry).  With -o cache=relaxed the kernel keeps attributes and
 * pages: inval_inode is sent too, and a drop is remembered, so that open()
 * can tell whether the kernel may still hold stale attributes
 * (notifier_caught_up(); fs/rkfile.c).
 */
#ifndef RAFTKV_FS_NOTIFY_H
#define RAFTKV_FS_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs;
struct notifier;

/* A notifier for @fs (its thread starts with notifier_start()). */
struct notifier *notifier_new(struct fs *fs);

/* Start sending (once fs->se is mounted).  0 or -errno. */
int notifier_start(struct notifier *n);

/*
 * Stop the thread; later pushes are dropped.  NULL-safe.  Waits at most
 * @wait_ms for it: a notification can block in the kernel behind a
 * request that no thread will answer any more (the FUSE loop has ended);
 * then returns -ETIMEDOUT and the caller aborts the connection (which
 * fails that request) and calls it again.  0 once the thread is gone.
 */
int notifier_stop(struct notifier *n, int wait_ms);

/* Stop (if needed) and free, once nothing pushes any more.  NULL-safe. */
void notifier_free(struct notifier *n);

/* Queue @key (copied).  Never blocks; drops when the queue is full or the
 * notifier is not started.  @renamed: the key is the target of a rename,
 * so its name is invalidated even when the table already maps it to the
 * inode the state has there; otherwise a key still at the inode the table
 * knows it by keeps its dentry (only its inode is invalidated). */
void notifier_push(struct notifier *n, const void *key, size_t len,
    bool renamed);

/* Notifications sent, and keys dropped, so far. */
void notifier_stats(struct notifier *n, uint64_t *sent, uint64_t *dropped);

/* The number of keys queued so far (a mark for notifier_caught_up()). */
uint64_t notifier_mark(struct notifier *n);

/*
 * Has every key pushed before @mark was taken been sent to the kernel,
 * with no key dropped in the last @grace_ms?  False when the
 * notifier is not running.  Never blocks beyond the queue's mutex.
 */
bool notifier_caught_up(struct notifier *n, uint64_t mark, unsigned grace_ms);

#endif
