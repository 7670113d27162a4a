/*
 * storage.h - durable state of one Raft member: term/vote, the log, snapshots.
 *
 * The data directory of a member holds (formats in wal.c, snapfile.c and
 * storage.c):
 *
 *   meta                     cluster id + member id, written at creation
 *                            after hardstate (its presence = initialised)
 *   hardstate                term + vote + the log's tail marks (storage.c),
 *                            replaced atomically (tmp, rename)
 *   wal-<first index>.seg    log segments, preallocated, CRC32C records
 *   snap-<index>.snap        the newest snapshot, zstd-compressed
 *   *.tmp                    leftovers of an interrupted write (removed at open)
 *   wal-<first>.seg.lost     set aside by storage_options.recover (ignored)
 *
 * Durability contract (what raft.h's driver loop relies on):
 *
 *   storage_append() and storage_save_hard_state() only *write*; nothing is
 *   durable until the next storage_sync() returns 0, which makes everything
 *   written since the previous sync durable with one fdatasync of the log
 *   (group commit: the driver appends a whole raft_ready batch, saves the
 *   hard state, then syncs once).  Only then may the batch's
 *   msgs_after_persist be sent and raft_persisted() be called.
 *   storage_save_snapshot() is durable when it returns 0.
 *
 * Failure contract: any failed write, fsync, rename or unlink *poisons* the
 * store (the SQLite pager's ERROR state).  Every later call returns the same
 * first error and does nothing; fsync is never retried (after a failed fsync
 * the kernel may have dropped the dirty pages, so a retry that succeeds
 * proves nothing).  storage_errmsg() gives the one clear message naming the
 * file, the offset and the cause; the member must stop acknowledging and
 * exit with it.  -ENOSPC is returned as such.
 *
 * Not thread-safe: one thread (the driver, or its persistence thread) owns
 * a struct storage.
 */
#ifndef RAFTKV_STORAGE_H
#define RAFTKV_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/* The I/O operations a fault hook may fail (see storage_options.fault). */
enum storage_op {
	STORAGE_OP_OPEN = 1, /* open or create a file */
	STORAGE_OP_WRITE, /* pwrite */
	STORAGE_OP_READ, /* pread, readdir */
	STORAGE_OP_SYNC, /* fdatasync / fsync of a file */
	STORAGE_OP_DIRSYNC, /* fsync of the data directory */
	STORAGE_OP_ALLOCATE, /* fallocate / zero-fill of a new segment */
	STORAGE_OP_RENAME,
	STORAGE_OP_UNLINK,
};

/*
 * Test hook, called before every I/O operation on @file (a name inside the
 * data dir, "." for the directory itself, ".." for the fsync of its
 * parent when the directory is initialised).  Return 0 to let it happen or a
 * negative errno to make it fail with that error without doing it.
 */
typedef int (
    *storage_fault_fn)(void *arg, enum storage_op op, const char *file);

enum storage_log_level {
	STORAGE_LOG_INFO = 1,
	STORAGE_LOG_WARN = 2,
};

/* Log sink for recovery actions (torn tail truncated, leftovers removed). */
typedef void (*storage_log_fn)(void *arg, int level, const char *msg);

/* How a new segment's space is reserved before it is used. */
enum storage_prealloc {
	/* Write zeros over the whole segment when it is created: later
	 * appends are overwrites of allocated, written blocks, so their
	 * fdatasync need not commit extent metadata (the fastest sync). */
	STORAGE_PREALLOC_ZERO = 0,
	/* fallocate(): reserves blocks cheaply, but they are "unwritten"
	 * extents, and the first write to each costs a metadata commit. */
	STORAGE_PREALLOC_FALLOCATE = 1,
	/* Nothing: the file grows with each append (slowest sync). */
	STORAGE_PREALLOC_NONE = 2,
};

struct storage_options {
	uint64_t segment_size; /* bytes per segment; default 16 MiB */
	enum storage_prealloc prealloc; /* default STORAGE_PREALLOC_ZERO */
	int zstd_level; /* snapshot compression level; default 3 */
	uint64_t max_snapshot_bytes; /* refuse to load bigger; default 16 GiB */
	storage_log_fn log; /* NULL: lines go to stderr */
	void *log_arg;
	storage_fault_fn fault; /* NULL: no fault injection */
	void *fault_arg;
	/* Start even if the directory is damaged (STORAGE_EDAMAGED): accept
	 * the loss, log a STORAGE_LOG_WARN line for each thing lost, and
	 * repair the directory so the next start is clean.  For an operator
	 * who knows the member's data is gone (raftkv-server --recover);
	 * never set it by default.  Default false. */
	bool recover;
};

/* Fill @o with the defaults above. */
void storage_options_defaults(struct storage_options *o);

struct storage_stats {
	uint64_t
	    log_bytes; /* record bytes of the live log entries ("raft state size") */
	uint64_t
	    disk_bytes; /* bytes of segment files on disk (preallocation included) */
	uint64_t n_segments;
	raft_index
	    first_index; /* first live entry (last_index + 1 when empty) */
	raft_index last_index; /* last live entry, or the snapshot index */
	raft_term last_term;
	raft_index snap_index; /* 0: no snapshot */
	raft_term snap_term;
	uint64_t snap_file_bytes;
	uint64_t syncs; /* storage_sync() calls that wrote something */
	uint64_t
	    fsyncs; /* every fsync/fdatasync syscall, directories included */
	uint64_t damage; /* damage findings accepted by opt.recover at open */
};

struct storage;

/*
 * Open (creating if needed) the data directory @dir of member @member_id in
 * cluster @cluster_id, and recover it.
 *
 * A missing @dir is created (its parent must exist) and initialised; an
 * existing one must have been created for the same cluster and member.
 * Recovery loads the newest snapshot (checked end to end), the hard state
 * and every log segment; a torn record at the tail of the newest segment
 * (a crash during an unacknowledged write) is cut off with a log line.
 * Anything else that does not check out stops the open: in particular a
 * directory that lost data a crash cannot lose (storage.c, "Damaged data
 * directories") is refused with STORAGE_EDAMAGED unless @opt->recover.
 *
 * On success sets *@out and fills @boot with the recovered state, ready
 * for raft_new(): its pointers are owned by the storage and stay valid
 * until storage_release_boot(), the first call that changes the store, or
 * storage_close(), whichever comes first.  @opt may be NULL (defaults).
 *
 * On failure writes one clear message naming the file and offset into
 * @errbuf (@errlen bytes, NUL-terminated; may be NULL) and returns:
 *   STORAGE_ECORRUPT  a bad checksum, header, record sequence or snapshot
 *   STORAGE_EFOREIGN  @dir belongs to another cluster or member
 *   STORAGE_EDAMAGED  a file is missing or cut short, or the log ends
 *                     before what this member had made durable (the
 *                     message names the file and what is lost)
 *   -EINVAL           @cluster_id or @member_id is 0, or bad options
 *   -ENOMEM, or the -errno of a failed system call (-EACCES, -EIO, -ENOSPC...)
 */
int storage_open(const char *dir, uint64_t cluster_id, raft_id member_id,
    const struct storage_options *opt, struct storage **out,
    struct raft_boot *boot, char *errbuf, size_t errlen);

/* Free the recovered state handed out by storage_open() early.  Idempotent. */
void storage_release_boot(struct storage *s);

/*
 * Write @n (> 0) entries, contiguous from entries[0].index, replacing any
 * stored suffix starting at entries[0].index.  Durable at the next
 * storage_sync().  Replacing a suffix (a conflicting follower log) is
 * crash-safe: it first removes whole segments past the cut and then starts
 * a new segment at entries[0].index, which supersedes the older segment's
 * tail (see wal.c); a crash at any step leaves a prefix of the old log.
 *
 * Returns 0; -EINVAL (not contiguous, a gap after the last entry, or an
 * index covered by the snapshot; the store is not poisoned: a caller bug);
 * the poison error; or a new I/O error (-EIO, -ENOSPC...), which poisons.
 */
int storage_append(struct storage *s, const struct raft_entry *entries,
    uint32_t n);

/*
 * Record @hs (written to hardstate.tmp now, renamed into place at the next
 * storage_sync(), so a crash leaves either the old or the new state).
 * Returns 0, the poison error, or a new I/O error (poisons).
 */
int storage_save_hard_state(struct storage *s,
    const struct raft_hard_state *hs);

/*
 * Make everything written since the last sync durable: one fdatasync of the
 * open segment (group commit), then, if the hard state changed, its
 * fdatasync + rename + directory fsync.  A no-op when nothing is pending.
 * Returns 0, the poison error, or a new I/O error (poisons).
 */
int storage_sync(struct storage *s);

/*
 * Store a snapshot covering the log up to @meta->index (@len bytes of
 * application state at @data, borrowed for the call).  Writes
 * snap-<index>.snap.tmp (header + zstd frame), fdatasyncs it, renames it
 * into place and fsyncs the directory; only then deletes older snapshots
 * and the log segments it makes useless.  If the log holds the entry at
 * @meta->index with @meta->term, later entries are kept (compaction);
 * otherwise the whole log is discarded (InstallSnapshot, Figure 13 step 7).
 * Durable on return.  Syncs pending appends first, so their order holds.
 *
 * Returns 0; RAFT_ESTALE if @meta->index is not newer than the stored
 * snapshot, -EINVAL for meta with index or term 0, -EBUSY while a
 * storage_snap write is out (none of these poisons); the
 * poison error; or a new I/O error (poisons).
 */
int storage_save_snapshot(struct storage *s,
    const struct raft_snapshot_meta *meta, const void *data, uint64_t len);

/*
 * The same in three steps, for a compaction (the log holds the entry at
 * @meta->index with @meta->term), so that the slow part, the file (a GiB
 * compressed and synced), can be written on another thread while the
 * owner of @s goes on appending and syncing the log:
 *
 *   storage_snap_begin()   owner: the checks of storage_save_snapshot();
 *                          on 0 *@out is the write (one at a time);
 *   storage_snap_write()   any ONE thread: writes and fdatasyncs
 *                          snap-<index>.snap.tmp, through its own copy
 *                          of the directory handle and its own message
 *                          buffer; touches nothing else of @s (the fault
 *                          hook, if any, is then called from that thread);
 *   storage_snap_finish()  owner, after the write returned: install steps
 *                          2-5 (storage.c): sync pending appends, rename,
 *                          directory fsync, hard state, compaction, older
 *                          snapshot removed.  Durable on return 0.  Frees
 *                          the write.
 *
 * Until finish returns 0 the snapshot does not exist: a crash (or close)
 * meanwhile leaves the .tmp file, which open removes, and the old
 * snapshot with the whole log.  A failed write poisons @s at finish, with
 * the write's message.  storage_snap_abort() (owner) drops a write that
 * will not be finished (the .tmp is left for open to remove).
 * storage_close() only once no write is running (it closes the
 * directory handle the write uses).
 *
 * begin returns 0; RAFT_ESTALE (not newer than the stored snapshot);
 * -ENOENT (the log does not hold @meta->index with @meta->term: use
 * storage_save_snapshot()); -EBUSY (a write is out); -EINVAL (bad meta);
 * -ENOMEM; the poison error.  None of these poisons.  @meta is copied.
 */
struct storage_snap;
int storage_snap_begin(struct storage *s, const struct raft_snapshot_meta *meta,
    struct storage_snap **out);
/* 0 or the write's error (reported again by finish). @data borrowed. */
int storage_snap_write(struct storage_snap *w, const void *data, uint64_t len);
/* 0; the poison error; the write's error or a new I/O error (poison). */
int storage_snap_finish(struct storage *s, struct storage_snap *w);
void storage_snap_abort(struct storage *s, struct storage_snap *w);

/*
 * Read back the stored snapshot, checked end to end.  On success fills
 * @meta and sets *@data (caller frees it with free()) and *@len.
 * Returns 0; RAFT_ESTALE when there is no snapshot; STORAGE_ECORRUPT or an
 * I/O error (both poison: the file was good when written); -ENOMEM.
 */
int storage_load_snapshot(struct storage *s, struct raft_snapshot_meta *meta,
    uint8_t **data, uint64_t *len);

/* Sizes and counters (never fails, also when poisoned). */
void storage_stats(const struct storage *s, struct storage_stats *st);

/* The poison error (0: healthy) and its message ("" when healthy). */
int storage_error(const struct storage *s);
const char *storage_errmsg(const struct storage *s);

/* Close files and free everything (nothing is synced).  Accepts NULL. */
void storage_close(struct storage *s);

#endif
