/*
 * rkopen.h - this mount's open files, registered in the cluster (the
 * open table, kv.h OPENS), and the files removed while open.
 *
 * A file whose last name is removed (unlink, rename over it) while some
 * mount holds it open is kept: the removing mount renames it to a hidden
 * orphan key (rkfs_int.h, RKFS_ORPHAN_PREFIX) instead of deleting it, in
 * a TXN that pins "held open" with the compare KV_VERSION_OPEN (and a
 * deletion pins KV_VERSION_NOTOPEN), so the decision holds at apply time
 * whoever registers or closes meanwhile.  Descriptors on every mount
 * then keep reading and writing it through its inode.
 *
 * Registering costs no commit on the open path: open() and close() only
 * mark the inode here (rkopen_hold, rkopen_drop) and return; a
 * background thread sends what changed, in batches (one TXN of OPEN and
 * CLOSE ops, up to KV_TXN_MAX, in the session of its own clerk), as soon
 * as the previous batch committed, an OPEN only RKOPEN_HOLD_MS after the
 * open (a file closed within it is never registered: reading small
 * files commits nothing).  Until an open's batch commits, a removal on
 * another mount deletes the file (its descriptors here then answer
 * ESTALE, as before).  A removal on this mount first waits for this
 * mount's own registration of the file (rkopen_sync, no hold-down), and
 * fails when it does not commit, so the local case has no such window.
 * A batch whose outcome is unknown (KV_EMAYBE) may have applied: its
 * entries are resent as OPEN or CLOSE, whatever they want then (both are
 * idempotent in apply).
 *
 * The orphan goes when nobody holds it open any more: every mount looks
 * at the orphans in its local state after each batch that closed
 * something and every RKOPEN_SCAN_MS, and deletes (with its extended
 * attributes, as many as one TXN holds) those no session holds open,
 * pinned by KV_VERSION_NOTOPEN (the mounts race harmlessly: one TXN
 * wins).  A mount that dies holding files loses its registrations with
 * its session (session_ttl of committed time): the leader's ticker
 * (kv/kvapp.h) makes committed time advance while such a session looks
 * dead.  The session of a live mount is renewed a quarter of the TTL
 * apart while it holds registrations.  Past the open table's bounds
 * (KV_OPEN_SESSION_MAX files per mount) a file is not registered: it is
 * not kept for this mount.
 */
#ifndef RAFTKV_FS_RKOPEN_H
#define RAFTKV_FS_RKOPEN_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/client/cluster.h"

struct fs;
struct rkopen;

/* How long after an open its registration waits (a file closed within
 * it is never registered: reads of small files cost no commit). */
#define RKOPEN_HOLD_MS 100

/* How often a mount looks for orphans nobody holds open any more. */
#define RKOPEN_SCAN_MS 1000

/*
 * The registrations of mount @fs, through a clerk of its own on @cl
 * (calls bounded by @deadline_ms, asking member index @prefer first),
 * renewing its session a quarter of @session_ttl_ns apart (0: the
 * default).  NULL on ENOMEM.  Start the thread with rkopen_start().
 */
struct rkopen *rkopen_new(struct fs *fs, const struct cluster *cl,
    int deadline_ms, int prefer, int64_t session_ttl_ns);

/* Start the sender thread: 0 or -errno. */
int rkopen_start(struct rkopen *o);

/* Stop the thread (a batch in flight ends within its deadline; the
 * closes not sent yet go out in one last batch) and free everything.
 * NULL-safe. */
void rkopen_free(struct rkopen *o);

/* An open (file, not directory) of @ino on this mount: registered in
 * the background.  Never blocks on the cluster. */
void rkopen_hold(struct rkopen *o, uint64_t ino);

/* A close of @ino (every rkopen_hold() has one): the last one
 * unregisters it in the background. */
void rkopen_drop(struct rkopen *o, uint64_t ino);

/*
 * Wait until this mount's registration of @ino has committed, if this
 * mount holds it open (else return at once): 0 (registered, or not open
 * here), -ENOSPC (refused: over the open table's bounds), -EIO (not
 * committed within @timeout_ms).
 */
int rkopen_sync(struct rkopen *o, uint64_t ino, int timeout_ms);

/* Tests only (mount options fault_opens_maybe and fault_opens_lost,
 * with fault_injection): the batches number @from to @from + @count - 1
 * (counting from 1) of this mount report KV_EMAYBE: after they committed
 * (as when a leader's answer is lost), or with @lost without being sent
 * (as when no member answered). */
void rkopen_fault_maybe(struct rkopen *o, unsigned from, unsigned count,
    bool lost);

#endif
