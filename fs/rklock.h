/*
 * rklock.h - flock(2) and POSIX record locks (fcntl F_SETLK, F_SETLKW,
 * F_GETLK) through the mount, held in the replicated state machine's lock
 * table (kv.h, LOCKS), so that they exclude each other across every mount
 * and the raftkv CLI; fencing tokens as extended attributes.
 *
 * ONE LOCK SESSION PER MOUNT.  Every lock command of the mount goes
 * through one dedicated clerk (its kv session is the mount's lock
 * session; a lock's owner is (that session, the FUSE lock owner: the
 * open file description for flock, the process' file table for POSIX)).
 * A thread keeps the session's lock lease alive (KEEPALIVE every quarter of
 * the lease) while the mount holds or waits for any lock and its member
 * is connected to a majority (a read barrier passes first); a mount that
 * is killed, stopped or cut off stops renewing it, and the state machine
 * expires its locks at a committed time.  Idle, it still renews the
 * session a quarter of the session TTL apart (KV_SESSION_TTL_NS or the
 * cluster file's session_ttl), so a
 * live mount's session is not evicted between uses.  If it was evicted
 * anyway (the mount was cut off that long), the clerk does not register
 * a new one inside a call (session_strict): the command is refused, the
 * old session's locks and waits are forgotten (lost) first, then the
 * command goes out again in a new session.
 *
 * BLOCKING WAITS never hold a thread.  F_SETLKW and flock without
 * LOCK_NB submit LOCK with WAIT; a queued request is parked, unanswered.
 * The state machine reports every grant in apply order (kv_lock_listener,
 * called from the apply hook with the inode table locked): the listener
 * only marks the waiter and queues its answer for the lock worker thread,
 * which replies.  A FUSE interrupt (a signal) marks the waiter; the
 * worker submits CANCEL and answers EINTR, or success if the grant won
 * the race (unlocking it would drop what the owner held there before).
 *
 * RELEASE.  A POSIX owner's locks on a file go when it closes any
 * descriptor of it (flush: UNLOCK_OWNER), a flock when its open file
 * description is released (release with flock_release).  An OFD lock
 * (F_OFD_SETLK: a POSIX lock whose owner is the open file description)
 * is not unlocked by the kernel at close through FUSE, and the flush
 * carries the process' owner: the mount records which POSIX owners
 * locked through each open file and, when it is released, unlocks those
 * that lock through no other open file of the inode here (a classic
 * owner was unlocked by its flush already: no command).  The mount
 * remembers which (inode, kind, owner) it may hold, so that a close of a
 * file it never locked costs no command.  A grant the state machine
 * reports for a pair that neither holds nor asks here (a request whose
 * outcome was unknown, KV_EMAYBE or an interrupted wait whose cancel
 * could not complete, granted after its owner released everything) is
 * unlocked by the worker, not adopted: adopted, it would be held and
 * kept alive for an owner that may be gone.  A new LOCK of that pair
 * waits until that unlock is done.  An unlock at release (or of an
 * orphan grant) that fails is retried, a pause doubling from 100 ms to
 * 2 s apart, until it goes through or a retry cannot help (the lock
 * session it was for ended: its locks went with it; or the state machine
 * refused it: they stay until the session ends); until then the pair
 * stays recorded and its lease renewed.  It is owed from before
 * its first attempt: a new LOCK of the same pair meanwhile waits for it,
 * retries included, and fails with EIO (logged) if it is still owed
 * after the clerk's deadline, so that no retry drops a newer grant.  A
 * failed flush is not retried (close answers EIO); the release of the
 * last open file the owner locked through tries again.
 *
 * LOST LOCKS.  When the state machine reports that the mount's session
 * lost its locks (lease expired, or the session was evicted: the LOST
 * event, or the clerk finding itself in a new session), or a snapshot
 * the member installs no longer holds some of them (their LOST event is
 * not replayed: rklock_restored() re-checks the held locks and the
 * parked waits against the restored table), every file it held a lost
 * lock on is marked: read, write, flush, fsync and new locks
 * through descriptors opened before the loss fail with EIO; a new open
 * works normally.  Bytes those descriptors wrote that were not committed
 * yet never commit, whatever path would commit them (fs/wbuf.h, the
 * loss epoch of an extent).  Parked waits fail with EIO.
 *
 * FENCING (xattrs, "user.raftkv." names, not stored, not listed, else
 * like stored ones: XATTR_CREATE, XATTR_REPLACE, EROFS on -o ro):
 *   user.raftkv.token  (read) the token of the newest grant this mount
 *                      holds on the file (decimal); ENODATA when none.
 *   user.raftkv.fence  (read/write/remove) "TOKEN" or "TOKEN /PATH" (reads
 *                      back exactly as set): from
 *                      now on every write (and O_TRUNC) this mount commits
 *                      to the file is a TXN { FENCE lock TOKEN, WRITE }, the lock
 *                      being the file's own or the one on /PATH (a path
 *                      inside the mount, its root being "/"); a refused
 *                      fence fails the write (or the close/fsync that
 *                      commits buffered bytes) with EPERM and writes
 *                      nothing.  Kept until removed or the file's last
 *                      close on this mount.
 *
 * Locking: the module's mutex is a leaf (taken under the inode table lock
 * and the state machine's lock by the listener; nothing is taken, no
 * clerk call and no FUSE reply made while holding it).  The lock clerk has
 * its own mutex, held across one call.
 */
#ifndef RAFTKV_FS_RKLOCK_H
#define RAFTKV_FS_RKLOCK_H

#define FUSE_USE_VERSION 35

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/fs.h"
#include "raft/client/cluster.h"

#define RKLOCK_XATTR_TOKEN "user.raftkv.token"
#define RKLOCK_XATTR_FENCE "user.raftkv.fence"

struct rklock;
struct rkfs_txn;

/*
 * The lock state of the mount @fs, its clerk talking to @cl (each call
 * bounded by @deadline_ms, member index @prefer asked first), keeping a
 * lease of @lease_ns alive and, idle, a session that the cluster evicts
 * after @session_ttl_ns (<= 0: the defaults).  NULL on ENOMEM.
 */
struct rklock *rklock_new(struct fs *fs, const struct cluster *cl,
    int deadline_ms, int prefer, int64_t lease_ns, int64_t session_ttl_ns);

#define RKLOCK_FAULTS_MAX 16

/* Tests only (mount option fault_unlock_owner, with fault_injection):
 * the first attempts of the next @n (at most RKLOCK_FAULTS_MAX)
 * UNLOCK_OWNERs at close (flush or release; retries are not counted)
 * are not sent: the i-th fails as if no member answered
 * (CLERK_EUNAVAILABLE) after @ms[i] milliseconds (other lock commands
 * go on meanwhile), logging "fault injection" first. */
void rklock_fault_unlock_owner(struct rklock *l, const unsigned *ms,
    unsigned n);

/* Listen to @kv's lock events (once fs->kv is known: the apply hook). */
void rklock_attach(struct rklock *l, struct kv *kv);

/* After a snapshot was installed (its events are not replayed): answer
 * the parked waits it granted or dropped, and mark lost the locks this
 * mount held that it no longer has.  With the inode table lock held (the
 * apply hook), not the state machine's. */
void rklock_restored(struct rklock *l, struct kv *kv);

/* Start the worker and keepalive threads (once fs->se is mounted).  0 or
 * -errno. */
int rklock_start(struct rklock *l);

/* Stop the threads; parked waits are answered EINTR.  NULL-safe. */
void rklock_stop(struct rklock *l);

/* Free, once stopped and nothing calls in any more.  NULL-safe. */
void rklock_free(struct rklock *l);

/* The FUSE operations. */
void rklock_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
    int op);
void rklock_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
    struct flock *lock);
void rklock_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
    struct flock *lock, int sleep);

/* flush (a close of one descriptor): drop the POSIX locks of @owner on
 * @ino if it may hold any.  0 or a negative errno. */
int rklock_flush(struct fs *fs, uint64_t ino, uint64_t owner);

/* release (the open file description goes): drop its flock if @fi says so
 * and it may hold one, and the POSIX (OFD) locks of owners that locked
 * only through it; forget @ino's fence and loss mark when @last (no open
 * left on this mount).  0 or a negative errno. */
int rklock_release(struct fs *fs, uint64_t ino, const struct fuse_file_info *fi,
    bool last);

/* The loss epoch an open records now (rklock_check()). */
uint64_t rklock_epoch(struct fs *fs);

/* 0, or -EIO when the mount lost a lock it held on @ino after an open that
 * recorded @epoch. */
int rklock_check(struct fs *fs, uint64_t ino, uint64_t epoch);

/*
 * A write to @ino is about to be committed as @t (its compares set, no op
 * yet): add the FENCE op if the file has a fence.  Returns true if added.
 */
bool rklock_fence_txn(struct fs *fs, uint64_t ino, struct rkfs_txn *t);

/* The xattrs above: true when @name is one of them (the request is then
 * answered), false to let fs/xattr.c handle it. */
bool rklock_xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name,
    size_t size);
bool rklock_xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name,
    const char *value, size_t size, int flags);
bool rklock_xattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
