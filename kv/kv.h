/*
 * kv.h - the KV state machine: the application the replicated state
 * machine (RSM) applies, in log order, on every replica.
 *
 * It knows nothing of Raft.  The RSM hands it committed commands
 * (kv_apply), asks it for snapshots (kv_snapshot) and installs them
 * (kv_restore); the server answers reads locally after a ReadIndex round
 * (kv_get, kv_read, kv_list).  Commands and results are encoded by cmd.h.
 *
 * STATE.  An ordered key space (keys: 1..KV_KEY_MAX bytes, compared as
 * unsigned bytes).  Each key is a name of an inode, which holds a value
 * (0..KV_FILE_MAX bytes; a PUT sets at most KV_VALUE_MAX of them, WRITE
 * and TRUNCATE grow it: cmd.h), a version, and metadata: kind (file/dir/
 * symlink, opaque to the KV layer), mode (permission bits), uid, gid,
 * mtime, ctime, its inode number and nlink, the number of its names.  An
 * inode has one name unless LINK gave it more (hard links); everything
 * below that reads or changes "a key's" value, version or metadata reads
 * or changes its inode's, seen through every name alike.  Plus: an index
 * by inode number (kv_name_of), the next inode number, the committed
 * clock, the session table, the lock table (LOCKS below) and the index of
 * the last applied entry.
 *
 * DETERMINISM.  kv_apply() reads no clock and no randomness: times come
 * from the command (time_ns, decided by the proposer), inode numbers from
 * a counter in the state, client ids from a counter in the session table.
 * Replicas that apply the same commands hold identical states and produce
 * byte-identical snapshots (given the same build and options).
 *
 * THE CONTRACT OF EACH COMMAND (status in the result; "now" is the
 * command's time_ns; every successful change sets ctime = now and
 * increments the version by exactly 1; the pair (inode, version) never
 * repeats, so caches should be keyed by it: a key's version alone restarts
 * at 1 when the key is deleted and created again, or renamed over, and a
 * change through one name moves the version every name shows):
 *
 *   GET key                   OK + value + attr, or ErrNoKey; a value over
 *                              KV_VALUE_MAX (more than a result carries):
 *                              ErrTooBig + attr, no value (read it in
 *                              ranges: kv_read(), query.h QUERY_READ).
 *                              No session.
 *   PUT key value version meta [flags]
 *       absent, version 0      create: version 1, inode = next inode,
 *                              kind/mode/uid/gid = meta, mtime = now
 *       absent, version != 0   ErrNoKey          (KV_F_ANYVER: create)
 *       present, version == v  value replaced, version v+1, mtime = now;
 *                              meta kept unless KV_F_SETMETA
 *       present, otherwise     ErrVersion        (KV_F_ANYVER: replace)
 *   DELETE key version        absent: ErrNoKey; version mismatch:
 *                              ErrVersion (unless KV_F_ANYVER); else the
 *                              key (the name) is removed: nlink - 1; the
 *                              last name takes the inode and its value
 *                              along, otherwise the inode's version + 1
 *                              and ctime = now.  attr = the inode's
 *                              attributes after that (nlink: the names
 *                              left, 0 when it went) with version 0.
 *   WRITE key offset bytes version
 *                             absent: ErrNoKey; mismatch: ErrVersion
 *                              (unless KV_F_ANYVER); offset + len >
 *                              KV_FILE_MAX: ErrTooBig; else the bytes
 *                              replace value[offset, offset+len), the value
 *                              grows as needed and a gap between the old
 *                              end and offset reads as zeros; mtime = now.
 *                              Zero bytes: OK and nothing changes (no
 *                              version bump, not even past the end).
 *   TRUNCATE key size version absent/mismatch as WRITE; size >
 *                              KV_FILE_MAX: ErrTooBig; else the value is
 *                              cut or extended with zeros to size;
 *                              mtime = now (even if the size is the same).
 *   SETMETA key mask meta mtime version
 *                             absent/mismatch as WRITE; sets the fields
 *                              named by mask (mode, uid, gid, kind, mtime
 *                              = the given mtime); version+1 even if the
 *                              values are unchanged (the filesystem uses
 *                              the version for cache invalidation).  Kind
 *                              directory on an inode with several names
 *                              (nlink > 1; so too a PUT with
 *                              KV_F_SETMETA): ErrInvalid, nothing changes
 *                              (a directory has one name; a snapshot
 *                              holding one with more is damaged).
 *   RENAME src dst version    src absent: ErrNoKey; mismatch with src's
 *                              version: ErrVersion (unless KV_F_ANYVER);
 *                              src == dst: OK, nothing changes.  Else the
 *                              name moves: dst names src's inode, whose
 *                              version + 1, ctime = now, mtime unchanged;
 *                              an existing dst is replaced: its inode
 *                              loses that name as by a DELETE (it goes
 *                              with its last name); src is removed.  src
 *                              and dst two names of one inode: OK and
 *                              nothing changes (as rename(2)).
 *                              Only that key moves: keys below it (a
 *                              directory's children) are not renamed.
 *                              attr = dst's attributes.
 *   RENAME src dst version KV_F_TREE
 *                             as RENAME, and every key below "src/" moves
 *                              too, to the same name below "dst/" (each
 *                              as a RENAME: version+1, ctime = now,
 *                              replacing a key already there); other keys
 *                              below "dst/" stay.  dst below "src/", or a
 *                              moved key over KV_KEY_MAX: ErrInvalid, and
 *                              nothing changes.  One command moves a
 *                              directory tree of any size.  Not undone
 *                              piecemeal: all keys move, or (on -ENOMEM)
 *                              none.
 *   LINK src dst version      src absent: ErrNoKey; mismatch with src's
 *                              version: ErrVersion (unless KV_F_ANYVER);
 *                              src a directory, or at KV_LINK_MAX names:
 *                              ErrInvalid; dst present (src itself too):
 *                              ErrVersion, as an exclusive create (a PUT
 *                              at version 0) of a taken name: the loser
 *                              of two links to one name gets it.  Else
 *                              dst becomes a new name of src's inode:
 *                              nlink + 1, version + 1, ctime = now.  attr
 *                              = the inode's attributes (dst's).
 *   TXN compares ops          Every compare is checked against the state
 *                              before the txn: version 0 = must not exist,
 *                              KV_VERSION_ANY = must exist,
 *                              KV_VERSION_NOCHILD = no key below "key/"
 *                              (the key itself may or may not exist),
 *                              else equal.
 *                              The first failing compare: ErrVersion,
 *                              fail_cmp = its index, nothing changes.  Then
 *                              the ops (PUT, DELETE, WRITE, TRUNCATE,
 *                              SETMETA, RENAME, LINK, each with its own version
 *                              check and semantics above) run in order,
 *                              each seeing the effects of the previous
 *                              ones; if one fails, everything is undone and
 *                              the result is that op's status with fail_op
 *                              = its index.  All or nothing.  attr = the
 *                              attributes, after the txn, of the key op 0
 *                              targets (dst for a rename or a link).
 *   REGISTER                  creates a session; client_id = its id.
 *   TICK                      only advances the committed clock (lets a
 *                              leader expire idle sessions and lock
 *                              leases when idle: kvapp.c proposes one
 *                              every KV_TICK_NS while it leads and
 *                              locks exist, and one when nothing
 *                              committed for KV_TICK_NS while a session
 *                              holding opens looks dead).
 *   KEEPALIVE                 a mutation of the session that changes
 *                              nothing: renews its lock lease (LOCKS).
 *   LOCK, UNLOCK, UNLOCK_OWNER, CANCEL, GETLK, FENCE: LOCKS below.
 *
 * SESSIONS (at-most-once).  A mutation (PUT..TXN, LINK) with client_id 0 has no
 * session: it is simply applied (a retry may apply it twice; the clerk
 * then reports ErrMaybe, as in the seeds).  A mutation with client_id != 0
 * must belong to a session obtained with REGISTER (ids come from the state
 * machine and are never reused, so a late packet can never be taken for a
 * new client), and carries seq >= 1, increasing per client (the clerk has
 * one outstanding mutation at a time):
 *   seq >  last    applied; the compact result (status, fail index,
 *                  version, inode) is stored as the session's last
 *   seq == last    not applied again: the stored result, flag KV_RES_DUP
 *                  (other attributes and values are not stored: zero)
 *   seq <  last    ErrStale (a late retry of an op already superseded)
 *   no session     ErrSession: never registered, or evicted; the client
 *                  must REGISTER again and cannot know whether its pending
 *                  op applied (ErrMaybe at the clerk) - never a double apply
 * The committed clock is the largest time_ns applied so far.  A session
 * idle (no mutation, no duplicate) for more than session_ttl_ns of
 * committed time is evicted (a jump of the clock over KV_CLOCK_GAP_NS
 * does not count: the election grace, LOCKS); registering when session_max sessions exist
 * evicts the least recently used one.  Reads do not use sessions (a
 * duplicated read is simply read again).  Cost: at most 72 bytes per
 * session (session.h).
 *
 * QUOTA.  The whole state is held in memory on every member, so it has a
 * size limit, the quota (kv_options.quota, bytes).  The state counts, for
 * each key, its key bytes + KV_KEY_OVERHEAD (64: about its record header
 * and tree share), and for each inode its value bytes, once however many
 * names it has; sessions and allocator slack are not counted (sessions
 * are bounded by session_max).  A mutation
 * (PUT, WRITE, TRUNCATE, RENAME, LINK, a tree RENAME as a whole, a TXN as a
 * whole) that would leave the count above the quota AND above what it
 * was fails with ErrNoSpace and changes nothing; its own checks come
 * first (a version mismatch is ErrVersion).  So deleting, shrinking or
 * rewriting at the same size always works, even above the quota (e.g.
 * after the quota was lowered), and reads never look at it.  A txn
 * checks once after its last op (fail_op = the last op): it may grow
 * past the quota in the middle as long as it ends within it.
 *
 * Where the quota comes from: an option, not the replicated state.  Every
 * member reads it from the one cluster file (`quota BYTES`, raftkv.conf(5);
 * kvapp.c passes it here), just as every member must agree on
 * session_ttl_ns and session_max.  The count is derived from the keys, so
 * snapshots carry neither (any snapshot restores and the count is
 * recomputed).  Chosen over a committed "set quota"
 * command because it needs no new command, no snapshot format version and
 * no admin path, and a cluster file already has to be the same on every
 * member.  The cost: members whose files disagree may decide a mutation
 * differently; changing the quota means editing the file on every member
 * and restarting them (raising it is harmless in between; lowering it
 * while some members still use the old value can make them diverge until
 * they restart, so lower it with the cluster stopped).  Default
 * KV_QUOTA_DEFAULT, 4 GiB.
 *
 * LARGE VALUES.  A value may reach KV_FILE_MAX (1 GiB), far more than
 * one command carries, and lives in one buffer in memory.  A WRITE
 * changes it in place, in or out of a txn, costing O(bytes written), not
 * O(value): the buffer grows geometrically (doubling up to 64 MiB, then
 * by an eighth, never past KV_FILE_MAX; realloc of such blocks moves
 * pages, not bytes), and a txn's undo log keeps only the bytes an op
 * overwrites (and none for a cut: the cut bytes stay in the buffer until
 * the txn commits).  So a 4 KiB write into a 1 GiB file logs about 4 KiB
 * and copies about 4 KiB on each member.  The quota counts the size, not
 * the buffer: exact whatever the capacity.  What bounds KV_FILE_MAX is
 * memory (cmd.h): every member holds every value, and a snapshot is
 * built in memory; the quota bounds all values together.
 *
 * LOCKS.  Advisory locks are replicated state too: grant, release and
 * expiry are decided by committed commands, in log order, on every
 * replica (the lock table: locktab.h).  A lock belongs to an INODE (the
 * key's attr.inode, stable across renames): a lock command names a key,
 * resolved at apply time (ErrNoKey if absent), or an inode directly
 * (op.inode; with both, the key must name that inode, else ErrNoKey).
 * So the names of one inode (hard links, LINK) share its locks: locking
 * through one name conflicts with locks taken through another.
 * Each inode has two independent lock spaces, as on Linux: FLOCK (whole
 * file) and POSIX (byte ranges [start, end]); each lock is SHARED or
 * EXCL; shared locks of different owners coexist, an exclusive one
 * conflicts with every overlapping lock of another owner.  The owner of a
 * lock is the pair (session, owner): the command's client_id and op.owner.
 * LOCK, UNLOCK, UNLOCK_OWNER, CANCEL and KEEPALIVE are session mutations
 * (at-most-once; client_id 0: ErrSession).  Results of lock commands:
 * attr.inode = the inode, attr.version = the token of the grant (0: none).
 *
 *   LOCK key kind mode [start end] owner pid [KV_F_WAIT]
 *       The key must exist (a LOCK never creates it).  Grantable when it
 *       conflicts with no lock held by another owner AND with no request
 *       of another owner queued before it (first come, first served: a
 *       stream of shared lockers cannot starve a queued exclusive one).
 *       Except: FLOCK, an owner converting its own lock is not queued
 *       behind others.  POSIX, a request passes the waiters that are
 *       behind its owner, and only those: a waiter is behind an owner
 *       when it conflicts with a piece that owner holds, or with an
 *       earlier waiter behind it, or with a piece of an owner that has a
 *       waiter behind it, wherever that waiter is queued (queueing
 *       behind any of them would be a cycle: an owner extending or
 *       upgrading its locks would deadlock); a waiter for a range
 *       unrelated to the owner's pieces is not passed.  Queued POSIX
 *       requests are judged again after every change of the inode's
 *       POSIX locks or queue (a later request can put an earlier one's
 *       blocker behind its owner).  Then: OK, a new token.
 *       FLOCK: the owner's lock is replaced (upgrade/downgrade; as on
 *       Linux the old one is dropped first, so a failed conversion without
 *       WAIT leaves the owner with nothing of that kind).  POSIX: the
 *       owner's own locks are merged and split as fcntl(2) says: the range
 *       takes the new mode, overlapping or adjacent pieces of the same mode
 *       merge (the merged piece gets the new token), pieces of the other
 *       mode are cut around it.  Not grantable: without WAIT ErrLocked and
 *       the first conflicting lock in result.lock (KV_RES_LOCK); with WAIT
 *       Queued: the request joins the inode's FIFO queue of that kind and
 *       is granted, with its own token, by the apply of whatever entry
 *       frees it (an unlock, a cancel, an expiry).  No deadlock
 *       detection: a cycle on held locks alone (what Linux answers with
 *       EDEADLK) waits for ever, and first come, first served can still
 *       close a cycle through another inode or the other kind.  Over
 *       the lock table's limit (kv_options.lock_max holders + waiters)
 *       or over the session's share of it (a quarter, locktab.h):
 *       ErrNoSpace; so is a POSIX LOCK with WAIT that would queue
 *       behind LOCKTAB_POSIX_WAITERS (64) requests already waiting on
 *       that inode (the grant pass costs the square of a queue).
 *   UNLOCK key kind [start end] owner
 *       FLOCK: drops the owner's flock; POSIX: unlocks [start, end] of the
 *       owner's locks (splitting a piece that straddles an end).  OK even
 *       when nothing was held; ErrNoSpace (nothing changed) when it would
 *       split a piece in two and one more record does not fit (as LOCK).  Waiters that became grantable are granted
 *       (FIFO) in the same apply.
 *   UNLOCK_OWNER key-or-inode kind owner
 *       Drops every lock and every wait of the owner on the inode (kind 0:
 *       both kinds): close(2) of a POSIX owner, the last close of a flock.
 *   CANCEL key kind [start end] owner
 *       Removes the owner's queued requests of that kind and range (a wait
 *       interrupted by a signal); OK even if none (it may have been
 *       granted meanwhile: the caller then unlocks).
 *   GETLK key kind mode [start end] owner
 *       A read (no session needed; also answered as a query after a read
 *       barrier: kv_getlk()): OK with no KV_RES_LOCK when the request would
 *       conflict with no held lock of another owner (waiters are ignored),
 *       else ErrLocked and the first conflicting lock (its pid).
 *   FENCE key-or-inode token        (only as a TXN op, before the others)
 *       OK when @token is the token of a lock held right now on that inode
 *       (any kind, any holder): the txn goes on.  Else ErrFenced, fail_op =
 *       its index, and the txn changes nothing: a holder whose lease ran
 *       out, who unlocked, or whose lock was converted since, is refused,
 *       whatever the numbers.  FENCE ops are checked, like compares,
 *       against the state before the txn.
 *
 * Tokens: the grant at log index i gets max(i * 2^16, last token + 1):
 * strictly increasing over every grant of every lock, and ordered like
 * the grants.  Leases: a session that holds or waits for locks has a lock
 * lease of lock_lease_ns of committed time, renewed by every committed
 * command of that session (KEEPALIVE when idle; a duplicate counts too).
 * When the committed clock passes renewal + lease (strictly), the apply
 * of that entry (whatever it is; TICKs keep the clock going) removes all
 * the session's locks and waits and grants the waiters now grantable,
 * before the entry's own command runs.  A session evicted from the
 * session table loses its locks the same way, in the apply that evicts
 * it; so does a session a restore drops (a snapshot holding more sessions
 * than session_max: the least recently used go, with their locks and
 * waits, and the waiters behind them are granted in order).  The renewal
 * time is the session's last activity in the session table (one record).
 * Election grace: when the committed clock jumps by more than
 * KV_CLOCK_GAP_NS between two entries (no leader committed anything
 * meanwhile, so nobody could renew), the apply of the later entry first
 * moves every session's last activity forward by the whole jump, so that
 * time counts neither toward a lock lease nor toward session_ttl_ns; a
 * session that renewed just before an election keeps the rest of its
 * lease after it.  Committed time is the leader's realtime clock (the
 * time_ns it stamps): a forward step of it up to KV_CLOCK_GAP_NS shortens
 * every lease by the step, a larger one is grace, a backward step leaves
 * the committed clock still until the leader's clock catches up (leases
 * lengthen by the step).  TICKs run only while locks exist, or while a
 * session holding opens looks dead (kvapp.c): with neither, gaps over
 * KV_CLOCK_GAP_NS between client writes are grace too, so
 * idle sessions age only while entries commit at least that often (an
 * idle cluster evicts sessions only through session_max).  Lock state of an inode
 * outlives its last name while held (DELETE or a replacing RENAME/PUT
 * of its last name does not touch the lock table): the table keeps the
 * inode number, which is never reused, so the holder can still UNLOCK,
 * CANCEL or UNLOCK_OWNER it by inode (op.inode, no key; a key no longer
 * resolves: ErrNoKey), a FENCE by inode still passes, and a lease expiry
 * or session eviction drops it as usual; no new LOCK can name it (a
 * LOCK needs a key, cmd.h).  The table keeps nothing for an inode
 * nobody holds or waits for, so an inode whose last name goes while
 * unlocked leaves no entry.  Listeners learn grants and losses in apply
 * order (kv_set_lock_listener()).  Cost: about 72 bytes per held lock or
 * waiter, bounded by lock_max; an apply's lock work is its own inode's,
 * plus that of the sessions whose leases end (locktab.h).
 *
 * OPENS.  The open table records which sessions hold which inodes open
 * (opentab.h): a filesystem mount registers the files it holds open so
 * that another mount removing a file's last name can keep the file for
 * it.  A registration is a TXN holding only OPEN and CLOSE ops (each
 * naming an inode; no compares), a session mutation (client_id 0:
 * ErrSession), applied op by op in order:
 *   OPEN inode    the session holds the inode open (again: nothing
 *                  changes).  An inode no key names any more is skipped
 *                  (it went before the registration: too late).  Past
 *                  KV_OPEN_SESSION_MAX inodes of the session or
 *                  KV_OPEN_MAX pairs in all, it is skipped and the result
 *                  is ErrNoSpace with fail_op = its index (the first
 *                  such); the other ops still apply.
 *   CLOSE inode   the session does not hold it open any more (OK if it
 *                  did not).
 * A session's registrations go with the session (evicted: TTL or
 * capacity, or left out by a restore), in the apply that evicts it.  The
 * table changes nothing by itself: a TXN reads it through the compares
 * KV_VERSION_OPEN and KV_VERSION_NOTOPEN (cmd.h; "the key exists and its
 * inode is, or is not, held open by some session").  So what happens to
 * a removed file that is held open is the client's choice (keep it under
 * a hidden name, or delete it), pinned by those compares; nothing is
 * removed or kept by the table itself.  Cost: 16 bytes per pair
 * (at most 1 MiB in all); snapshots carry the table (format 4).
 *
 * MALFORMED COMMANDS.  A command that does not decode (cmd.h) is answered
 * ErrMalformed and changes nothing but the applied index.  Every
 * well-formed command, whatever its status, advances the committed clock
 * and may expire sessions.
 *
 * THREADS.  All functions may be called from any thread: kv_apply() and
 * kv_restore() exclude everything else; reads and kv_snapshot() run
 * concurrently with each other (a reader/writer lock).
 */
#ifndef RAFTKV_KV_KV_H
#define RAFTKV_KV_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/cmd.h"

/* Most names an inode may have (LINK past it: ErrInvalid). */
#define KV_LINK_MAX 65000u

/* Inode numbers start here; 1 is left for the filesystem's root. */
#define KV_INODE_FIRST 2u

/* Defaults of struct kv_options. */
#define KV_SESSION_TTL_NS (10ll * 60 * 1000 * 1000 * 1000) /* 10 minutes */
#define KV_SESSION_MAX 100000u
#define KV_ZSTD_LEVEL 3
#define KV_QUOTA_DEFAULT (4ull << 30) /* 4 GiB */
#define KV_LOCK_LEASE_NS (10ll * 1000 * 1000 * 1000) /* 10 s */
#define KV_LOCK_MAX (1u << 20) /* held locks + waiters, all inodes */
#define KV_LOCK_WAITERS_MAX 8 /* kv_lock_wait() calls blocked at once */
/* The open table (OPENS above): pairs in all, inodes per session. */
#define KV_OPEN_MAX (1u << 16)
#define KV_OPEN_SESSION_MAX (1u << 13)

/* How often a leader proposes a TICK, so that committed time (hence
 * lease expiry) advances while the cluster is idle (kvapp.c). */
#define KV_TICK_NS (500ll * 1000 * 1000)

/* The election grace (LOCKS): a jump of the committed clock by more than
 * this between two entries means nothing could commit meanwhile (no
 * leader: an election, a lost majority, the cluster down), since a
 * leader TICKs every KV_TICK_NS; the jump counts toward no lease. */
#define KV_CLOCK_GAP_NS (4 * KV_TICK_NS)

/* What a key counts for against the quota besides its key and value
 * bytes: about its record header and its share of the tree (QUOTA above).
 * Fixed, so that every replica counts the same. */
#define KV_KEY_OVERHEAD 64u

/*
 * Options.  Every replica of a cluster must use the same session_ttl_ns,
 * session_max, quota, lock_lease_ns and lock_max (they decide evictions,
 * expiries and ErrNoSpace, hence the state).  Zero fields take the defaults above.
 */
struct kv_options {
	int64_t session_ttl_ns;
	uint32_t session_max;
	int zstd_level; /* snapshot compression level */
	uint64_t quota; /* bytes (QUOTA above); UINT64_MAX: no limit */
	int64_t lock_lease_ns; /* lock lease (LOCKS above) */
	uint32_t lock_max; /* held locks + waiters in the lock table */
};

struct kv;

/* A new, empty state machine; @opt may be NULL.  NULL on ENOMEM. */
struct kv *kv_new(const struct kv_options *opt);

/* NULL-safe. */
void kv_free(struct kv *kv);

/*
 * Apply the committed command at @log_index (@len bytes at @cmd) and
 * describe the outcome in @out (initialised here; release a GET's value
 * with kv_result_release()).  Deterministic: see the contract above.
 *
 * Returns 0 when the command was applied, whatever its status (including
 * ErrMalformed).  Returns -EINVAL if @log_index is not above the last
 * applied index (nothing changes), or -ENOMEM: nothing changed, not even
 * the applied index, and the same entry may be applied again later; the
 * RSM must not skip it (apply it again or stop the member).
 */
int kv_apply(struct kv *kv, uint64_t log_index, const void *cmd, size_t len,
    struct kv_result *out);

/*
 * Serialise the whole state (kvsnap.h: header, then one zstd frame with
 * the counters, the session table and every key in order).  On success
 * *@data (caller frees it with free()) holds *@len bytes.  Returns 0 or
 * -ENOMEM, or -EIO if zstd fails.
 */
int kv_snapshot(struct kv *kv, void **data, size_t *len);

/*
 * kv_snapshot() in two steps, so that nothing waits for the compression:
 * kv_snapshot_begin() copies the state as it is now, uncompressed
 * (kvsnap_serialize(), under the read lock: as long as a memcpy of the
 * state) into *@view (opaque; ownership passes to the caller), and
 * kv_snapshot_finish() compresses @view into the snapshot kv_snapshot()
 * would have made at that point (*@data, caller frees), without the lock,
 * on any thread, while commands keep being applied.  kv_snapshot_finish()
 * frees @view whatever it returns; with @data NULL it only frees it.
 * Both return 0, -ENOMEM, or -EIO if zstd fails.
 */
int kv_snapshot_begin(struct kv *kv, void **view);
int kv_snapshot_finish(struct kv *kv, void *view, void **data, size_t *len);

/*
 * Replace the whole state with the snapshot at @data.  The snapshot is
 * decoded and validated in full (checksum, every field, key order, each
 * inode once with as many names as its nlink, session table) before
 * anything is replaced (format 1 snapshots, from before hard links, are
 * read too): on error the
 * current state is intact.  Returns 0, -EBADMSG (corrupt or inconsistent),
 * -ENOTSUP (unknown format version) or -ENOMEM.
 */
int kv_restore(struct kv *kv, const void *data, size_t len);

/*
 * Read @key.  If @attr is not NULL, stores its attributes.  If @value is
 * not NULL, stores a malloc'd copy of the value in *@value (caller frees;
 * NULL when empty) and its length in *@len.  Returns 0, -ENOENT, -ENOMEM.
 */
int kv_get(struct kv *kv, const void *key, size_t keylen, struct kv_attr *attr,
    void **value, size_t *len);

/* kv_get(), but -EFBIG when the value is over @max bytes (then only
 * *@attr is stored, if @attr is not NULL): one lookup decides and copies. */
int kv_get_max(struct kv *kv, const void *key, size_t keylen, uint64_t max,
    struct kv_attr *attr, void **value, size_t *len);

/*
 * Copy up to @cap bytes of @key's value from @offset into @buf (a FUSE
 * read, or a ranged read of the client protocol, without copying the
 * whole value).  If @attr is not NULL, stores the attributes (attr->size
 * is the whole value's size).  Returns the number of bytes copied (0 at
 * or past the end, or for @cap 0), or -ENOENT.
 */
long kv_read(struct kv *kv, const void *key, size_t keylen, uint64_t offset,
    void *buf, size_t cap, struct kv_attr *attr);

/*
 * Called by kv_list() once per key, in order.  @value (attr->size bytes)
 * and @key are borrowed for the duration of the call.  Return 0 to go on,
 * anything else to stop.  Runs under @kv's read lock, which prefers a
 * waiting writer: it must not call back into @kv at all (a nested read
 * would wait behind that writer, which waits for this reader).
 */
typedef int (*kv_list_cb)(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value);

/*
 * List the keys that start with @prefix (@prefixlen may be 0: every key)
 * and sort strictly after @after (NULL: from the start), in key order, at
 * most @limit of them (0: no limit).  With @delim >= 0 (a byte, e.g. '/'),
 * only keys whose remainder after the prefix does not contain @delim are
 * listed, and whole subtrees are skipped in O(log n): the children of a
 * directory without its descendants.  Pagination: pass the last key
 * returned as @after.  Returns the number of keys passed to @cb (the one
 * that stopped the walk included), or -EINVAL (@delim > 255) before any
 * call.
 */
long kv_list(struct kv *kv, const void *prefix, size_t prefixlen,
    const void *after, size_t afterlen, size_t limit, int delim, kv_list_cb cb,
    void *arg);

/*
 * A current name of inode number @inode: the first in key order of its
 * names, copied into @key (room for KV_KEY_MAX bytes; not terminated),
 * its length in *@keylen, the inode's attributes in *@attr if not NULL.
 * O(its names) through the by-inode index.  Returns 0, or -ENOENT (no
 * such inode: never created, or its last name is gone).
 */
int kv_name_of(struct kv *kv, uint64_t inode, void *key, size_t *keylen,
    struct kv_attr *attr);

/* ------------------------------------------------------------------------
 * Locks (LOCKS above)
 * ------------------------------------------------------------------------ */

/* What a lock listener learns, in apply order. */
enum kv_lock_event_type {
	/* A lock was granted: to a request that had been queued, or at once
	 * (lock: the holder and its token; inode). */
	KV_LOCK_EV_GRANTED = 1,
	/* Session lock.session lost every lock and wait it had: its lease ran
	 * out, or it was evicted (inode 0; one event per session, only if it
	 * held or waited for something). */
	KV_LOCK_EV_LOST = 2,
};

struct kv_lock_event {
	uint8_t type; /* enum kv_lock_event_type */
	uint64_t index; /* the log index whose apply did it */
	uint64_t inode;
	struct kv_lock lock;
	bool queued; /* GRANTED: the request had been queued (a wake-up) */
};

/*
 * Called by kv_apply() for each event, in apply order, on the applying
 * thread with the state machine's write lock held: it must be quick and
 * must not call into @kv (hand the event on, e.g. to a queue).  Events of
 * a restored snapshot are not replayed: after kv_restore() a listener
 * reads the table (kv_lock_wait() with wait 0, kv_getlk()) to
 * resynchronise.
 */
typedef void (*kv_lock_listener)(void *arg, const struct kv_lock_event *ev);

/* Set (or, with NULL, clear) @kv's one lock listener. */
void kv_set_lock_listener(struct kv *kv, kv_lock_listener fn, void *arg);

/*
 * GETLK from the local state (LOCKS above): with @op a GETLK op (key or
 * inode, kind, mode, range, owner) on behalf of @session.  Fills @out:
 * status OK (no conflict), ErrLocked with the conflict in out->lock
 * (KV_RES_LOCK), ErrNoKey; attr.inode.  Returns 0, or -EINVAL when @op
 * is not a valid GETLK.  Read it after a read barrier for a linearizable
 * answer.
 */
int kv_getlk(struct kv *kv, uint64_t session, const struct kv_op *op,
    struct kv_result *out);

/*
 * The state of the LOCK request @op (a LOCK op: key or inode, kind, mode,
 * range, owner) of @session, waiting up to @wait_ms (0: no wait) for it to
 * change from "queued": status OK when the owner holds the lock (the
 * POSIX range entirely, at least that mode), attr.version its token (of
 * the piece holding @op's start); Queued when still waiting at the end of
 * the wait; ErrNoLock when neither (cancelled, lost, never asked);
 * ErrNoKey (a key that is gone).  Blocks the calling thread, never the
 * applier.  At most KV_LOCK_WAITERS_MAX calls block at once (each holds
 * a thread of the caller's, e.g. an endpoint worker); past that a call
 * looks once and returns (Queued: the caller retries after a pause).
 * Returns 0, or -EINVAL when @op is not a valid LOCK.
 */
int kv_lock_wait(struct kv *kv, uint64_t session, const struct kv_op *op,
    int wait_ms, struct kv_result *out);

/* Shutting down: every kv_lock_wait() blocked now, or called later,
 * returns after one look (so that the threads blocked in it can be
 * joined at once). */
void kv_lock_wait_shutdown(struct kv *kv);

/* Does some session hold @inode open (the open table, OPENS above)? */
bool kv_is_open(struct kv *kv, uint64_t inode);

/*
 * For each session holding files open (OPENS), in ascending order:
 * @fn(@arg, session, idle_ns, seq), idle_ns = committed time since its
 * last activity (what session_ttl_ns is compared with; election grace
 * not counted), seq = that of its last request (moves with each new
 * one).  With the read lock held: @fn must not call into @kv.  For the
 * leader's ticker (kvapp.c): a holder that stays idle is probably dead,
 * and committed time must advance for its session to expire.
 */
void kv_open_holders(struct kv *kv,
    void (*fn)(void *arg, uint64_t session, int64_t idle_ns, uint64_t seq),
    void *arg);

/* The options' session_ttl_ns (the default filled in). */
int64_t kv_session_ttl_ns(struct kv *kv);

/* Number of held locks and of waiters in the lock table. */
void kv_lock_count(struct kv *kv, uint32_t *held, uint32_t *waiting);

/* Walk every held lock of the lock table (locktab_each(): inode, kind,
 * holder order) with the read lock held: @fn gets the inode and the lock,
 * returns non-zero to stop.  For tests (they check the table's
 * invariants after every applied entry, tests/unit/lockcheck.h). */
void kv_lock_each(struct kv *kv,
    int (*fn)(void *arg, uint64_t inode, const struct kv_lock *l), void *arg);

/* Index of the last applied entry (0 initially; from the snapshot after
 * kv_restore()). */
uint64_t kv_applied_index(struct kv *kv);

/* The bytes the state counts against its quota (QUOTA above), and the
 * quota.  *@used may exceed *@quota (a lowered quota). */
void kv_usage(struct kv *kv, uint64_t *used, uint64_t *quota);

/* Number of keys, and of sessions. */
size_t kv_key_count(struct kv *kv);
uint32_t kv_session_count(struct kv *kv);

/*
 * A 64-bit digest of the replicated state (keys, values, metadata,
 * counters, committed clock, sessions) excluding the applied index: equal
 * on replicas that applied the same commands.  For tests and divergence
 * checks; O(size of the state).
 */
uint64_t kv_digest(struct kv *kv);

#endif
