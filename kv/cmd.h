/*
 * cmd.h - commands and results of the KV state machine, and their binary
 * encoding.
 *
 * This is the vocabulary shared by the state machine (kv.c), the server
 * that turns client requests into log entries, the clerk and the
 * filesystem: what a command says (struct kv_cmd), what it answers (struct
 * kv_result), the attributes of a key (struct kv_attr) and the status codes.
 *
 * Commands arrive from the network and from the Raft log, so the decoder
 * trusts nothing: it checks the version, the type, every length against the
 * bytes remaining and against the limits below, every flag and enum, and
 * rejects trailing bytes.  Whatever it accepts re-encodes to exactly the
 * same bytes (the encoding is canonical: fixed-width little-endian integers,
 * no optional fields).  It never allocates: a decoded command points into
 * the buffer it was decoded from.
 *
 * Layout (all integers little-endian; "bytes" = u32 length + that many bytes):
 *
 *   header   u8 version (KV_CMD_VERSION), u8 type (enum kv_op_type),
 *            u16 reserved (0), u64 client_id, u64 seq, i64 time_ns (>= 0)
 *   body, by type (fields always in this order, present as marked):
 *
 *              flags version arg  mask  meta  mtime key  key2 data
 *              u32   u64     u64  u32   13 B  i64   bytes bytes bytes
 *   GET                                             x
 *   PUT        x     x                  x           x          x
 *   DELETE     x     x                              x
 *   WRITE      x     x       off                    x          x
 *   TRUNCATE   x     x       size                   x
 *   SETMETA    x     x            x     x     x     x
 *   RENAME     x     x                              x    x
 *   LINK       x     x                              x    x
 *   TXN        u32 ncmp, ncmp x { u64 version, key bytes },
 *              u32 nops, nops x { u8 type, body as above }
 *   REGISTER   (empty; client_id and seq must be 0)
 *   TICK       (empty)
 *   KEEPALIVE  (empty)
 *   LOCK, UNLOCK, UNLOCK_OWNER, CANCEL, GETLK, FENCE: the lock body
 *              u64 inode, key bytes, u8 lkind, u8 lmode, u32 flags,
 *              u64 start, u64 end, u64 owner, u32 pid, u64 token
 *
 *   meta = u8 kind, u32 mode, u32 uid, u32 gid
 *
 * The lock body is one layout for every lock op; a field an op does not
 * use must be 0 (canonical).  Per op (x = used, - = must be 0):
 *
 *              inode key   lkind  lmode flags start/end owner pid token
 *   LOCK       opt   req   1..2   1..2  WAIT  range     x     x    -
 *   UNLOCK     (key or inode) 1..2 -    -     range     x     -    -
 *   UNLOCK_OWNER (key or inode) 0..2 -  -     -         x     -    -
 *   CANCEL     (key or inode) 1..2 -    -     range     x     -    -
 *   GETLK      (key or inode) 1..2 1..2 -     range     x     -    -
 *   FENCE      (key or inode) -    -    -     -         -     -    != 0
 *   OPEN       inode (!= 0), no key; every other field 0
 *   CLOSE      inode (!= 0), no key; every other field 0
 *
 * "key or inode": the key may be empty (0 bytes) only when inode != 0;
 * with both, the key must name that inode at apply time.  "range": for
 * KV_LK_POSIX start <= end (bytes [start, end], end UINT64_MAX = to the
 * end of the file); for KV_LK_FLOCK start = end = 0 (the whole file).
 * lkind 0 (UNLOCK_OWNER only) = both kinds.  A TXN may hold FENCE ops,
 * and only before its first other op.  OPEN and CLOSE exist only as the
 * ops of a TXN that holds nothing else (no compares, no other op): a
 * batch of registrations (kv.h, OPENS).  Lock ops are numbered from 20 and
 * lock statuses from 16, leaving room below for other additions.
 *
 * A result (what the server sends back to the clerk) is
 *
 *   u8 version, u8 status, u16 flags, u32 fail_cmp, u32 fail_op,
 *   u64 client_id, attr, value bytes
 *   [with flag KV_RES_LOCK: lock = u64 session, u64 owner, u64 start,
 *    u64 end, u64 token, u32 pid, u8 lkind, u8 lmode  (KV_LOCK_BYTES = 46)]
 *
 * Results of lock ops: attr.inode = the lock's inode, attr.version = the
 * token of the grant (0: none); the other attr fields are 0.  So a
 * duplicate (the session's compact stored result) keeps the token.
 *
 *   attr = u64 version, u64 inode, u64 size, i64 mtime_ns, i64 ctime_ns,
 *          u32 mode, u32 uid, u32 gid, u8 kind, u32 nlink
 *          (KV_ATTR_BYTES = 57)
 *
 * The attr layout is also the one of snapshots (kvsnap.c) and LIST
 * answers (query.h): kv_attr_put()/kv_attr_get() are its one codec.
 *
 * The semantics of each command are the contract of kv.h.
 */
#ifndef RAFTKV_KV_CMD_H
#define RAFTKV_KV_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/buf.h"

/* 2: LINK, and nlink in the attributes (hard links); the lock ops and
 * statuses (LOCKS in kv.h). */
#define KV_CMD_VERSION 2

/* Limits the decoder (and the encoder) enforce. */
#define KV_KEY_MAX 4096u /* bytes in a key (>= 1) */
/*
 * Two size limits, not one:
 *
 * KV_VALUE_MAX: the bytes ONE command or ONE result may carry: a PUT's
 * whole value, a WRITE's bytes, a GET's value, a ranged read's bytes.  A
 * command must fit one Raft entry (the core's max_entry_bytes, 32 MiB)
 * and one peer message (MSG_MAX_BYTES), a result one client reply.
 *
 * KV_FILE_MAX: the size a stored value may reach through WRITE and
 * TRUNCATE (a file of the filesystem, built by many commands).  What
 * bounds it is memory, not the encoding (sizes are u64 everywhere): every
 * member holds every value in memory, and a snapshot of a state holding
 * one is built in memory too (compressed), so a member needs a few times
 * the largest value; the size quota (kv.h, QUOTA) bounds all values
 * together.  A value over KV_VALUE_MAX is read in ranges (query.h,
 * QUERY_READ); GET answers ErrTooBig with its attributes.
 */
#define KV_VALUE_MAX (16u * 1024 * 1024)
#define KV_FILE_MAX (1ull << 30) /* 1 GiB */
#define KV_TXN_MAX 1024u /* compares, and ops, in a txn */
#define KV_CMD_MAX (KV_VALUE_MAX + 1024u * 1024) /* bytes in one command */

/* Compare version meaning "the key exists, whatever its version". */
#define KV_VERSION_ANY UINT64_MAX
/* Compare version meaning "no key lies below key/" (an empty directory,
 * whether or not the key itself exists): what rmdir and a rename over a
 * directory pin, whichever client adds a child meanwhile. */
#define KV_VERSION_NOCHILD (UINT64_MAX - 1)
/* Compare versions meaning "the key exists and some session holds its
 * inode open" / "the key exists and no session holds its inode open"
 * (the open table, kv.h OPENS): what removing a file's last name pins,
 * keeping it (renamed to a hidden key) or deleting it. */
#define KV_VERSION_OPEN (UINT64_MAX - 2)
#define KV_VERSION_NOTOPEN (UINT64_MAX - 3)

/* fail_cmp / fail_op when nothing failed. */
#define KV_NO_INDEX UINT32_MAX

/*
 * Status of an applied command (a result, not a function error: function
 * errors are negative errno values).  Small and positive because it travels
 * in results and is stored in the session table.
 */
enum kv_status {
	KV_OK = 0,
	KV_ENOKEY = 1, /* the key does not exist */
	KV_EVERSION = 2, /* version mismatch (or a txn compare failed) */
	KV_ESTALE = 3, /* seq older than the session's last: a late retry */
	KV_ESESSION = 4, /* unknown or expired session: register again */
	KV_EMALFORMED = 5, /* the command did not decode; nothing changed */
	KV_ETOOBIG = 6, /* a write/truncate would exceed KV_FILE_MAX, or a
	                   GET's value is over KV_VALUE_MAX */
	KV_EINVAL = 7, /* well-formed but impossible: a tree renamed into
	                      itself, or to keys over KV_KEY_MAX */
	KV_ENOSPC = 8, /* the mutation would take the state past its quota
	                  (kv.h, QUOTA), or the lock table past its limit;
	                  nothing changed */
	/* Locks (kv.h, LOCKS).  Numbered from 16: 9..15 are free. */
	KV_ELOCKED = 16, /* LOCK without WAIT: a conflicting lock is held or
	                    queued ahead (result: the first conflict) */
	KV_EFENCED = 17, /* FENCE: the token is not a live grant of that
	                    lock; the txn changed nothing */
	KV_EQUEUED = 18, /* LOCK with WAIT: not granted yet, queued (FIFO);
	                    the grant comes with a later entry */
	KV_ENOLOCK = 19, /* lock wait: neither held nor waiting any more
	                    (cancelled, released or lost with the lease) */
	KV_STATUS_COUNT
};

/* Name of a status ("OK", "ErrNoKey", ...); "unknown" for anything else. */
const char *kv_status_name(int status);

enum kv_kind {
	KV_KIND_FILE = 1,
	KV_KIND_DIR = 2,
	KV_KIND_SYMLINK = 3,
};

enum kv_op_type {
	KV_OP_GET = 1,
	KV_OP_PUT = 2,
	KV_OP_DELETE = 3,
	KV_OP_WRITE = 4,
	KV_OP_TRUNCATE = 5,
	KV_OP_SETMETA = 6,
	KV_OP_RENAME = 7,
	KV_OP_TXN = 8,
	KV_OP_REGISTER = 9,
	KV_OP_TICK = 10,
	KV_OP_LINK = 11,
	/* Locks (kv.h, LOCKS).  Numbered from 20: 12..19 are free (not
	 * valid types). */
	KV_OP_LOCK = 20,
	KV_OP_UNLOCK = 21,
	KV_OP_UNLOCK_OWNER = 22,
	KV_OP_CANCEL = 23,
	KV_OP_GETLK = 24,
	KV_OP_KEEPALIVE = 25,
	KV_OP_FENCE = 26,
	/* The open table (kv.h, OPENS): TXN ops only. */
	KV_OP_OPEN = 27,
	KV_OP_CLOSE = 28,
	KV_OP_TYPE_MAX = 28
};

/* Lock kinds (struct kv_op.lkind): two independent lock spaces per
 * inode, as on Linux. */
enum kv_lock_kind {
	KV_LK_FLOCK = 1, /* whole file, flock(2) */
	KV_LK_POSIX = 2, /* byte ranges, fcntl(2) F_SETLK & co */
};

/* Lock modes (struct kv_op.lmode). */
enum kv_lock_mode {
	KV_LK_SHARED = 1, /* LOCK_SH, F_RDLCK */
	KV_LK_EXCL = 2, /* LOCK_EX, F_WRLCK */
};

/* End of a POSIX range that runs to the end of the file. */
#define KV_LK_EOF UINT64_MAX

/* Op flags (struct kv_op.flags). */
#define KV_F_ANYVER 0x1u /* skip the version check (put: create or replace) */
#define KV_F_SETMETA \
	0x2u /* put on an existing key: also set kind/mode/uid/gid */
#define KV_F_TREE 0x4u /* rename: also every key below "key/" (kv.h) */
#define KV_F_WAIT 0x8u /* LOCK: queue if not grantable now (kv.h) */
#define KV_F_ALL (KV_F_ANYVER | KV_F_SETMETA | KV_F_TREE | KV_F_WAIT)

/* SETMETA mask bits (struct kv_op.mask). */
#define KV_META_MODE 0x1u
#define KV_META_UID 0x2u
#define KV_META_GID 0x4u
#define KV_META_MTIME 0x8u
#define KV_META_KIND 0x10u
#define KV_META_ALL 0x1fu

/* Permission bits a mode may hold (the file type is the kind). */
#define KV_MODE_MASK 07777u

/* Result flags (struct kv_result.flags). */
#define KV_RES_DUP \
	0x1u /* a duplicate: the stored result of the first execution */
#define KV_RES_LOCK \
	0x2u /* the result carries a lock (struct kv_result.lock): the
	        conflicting lock of ErrLocked/GETLK (encoded after the value) */

/* Metadata the filesystem sets. */
struct kv_meta {
	uint8_t kind; /* enum kv_kind */
	uint32_t mode; /* permission bits only (KV_MODE_MASK) */
	uint32_t uid;
	uint32_t gid;
};

/* Attributes of a key, as results and listings report them. */
struct kv_attr {
	uint64_t version; /* >= 1 while the key exists; 0: absent/deleted */
	uint64_t inode; /* assigned at creation, never reused */
	uint64_t size; /* bytes in the value */
	int64_t mtime_ns; /* content change time (ns since the epoch) */
	int64_t ctime_ns; /* any change (ns since the epoch) */
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint8_t kind; /* enum kv_kind */
	uint32_t nlink; /* names of the inode (>= 1 while the key exists; 0
	                   in a DELETE's answer when the inode went with it) */
};

/* Bytes of an encoded struct kv_attr (layout at the top). */
#define KV_ATTR_BYTES 57u

/* Append @a to @w in the attr layout (KV_ATTR_BYTES bytes). */
void kv_attr_put(struct buf_writer *w, const struct kv_attr *a);

/*
 * Read an attr (KV_ATTR_BYTES bytes) from @r into @a.  Checks nothing but
 * the length (the reader's error flag); callers validate the values they
 * rely on.
 */
void kv_attr_get(struct buf_reader *r, struct kv_attr *a);

/* A lock as results and events describe it: who holds (or waits for)
 * what, and the grant's token. */
struct kv_lock {
	uint64_t session; /* the holder's session (client id) */
	uint64_t owner;
	uint64_t start; /* POSIX: [start, end]; FLOCK: 0, 0 */
	uint64_t end;
	uint64_t token; /* 0 for a waiter */
	uint32_t pid;
	uint8_t lkind; /* enum kv_lock_kind */
	uint8_t lmode; /* enum kv_lock_mode */
};

/* Bytes of an encoded struct kv_lock (the result's lock section). */
#define KV_LOCK_BYTES 46u

/*
 * The one codec of a lock record (the layout at the top: u64 session,
 * owner, start, end, token, u32 pid, u8 lkind, u8 lmode).  With @kind 0
 * the record carries lkind (KV_LOCK_BYTES: results); with @kind a lock
 * kind, the record leaves lkind out (KV_LOCK_BYTES - 1: the lock table's
 * snapshot section, where its place says the kind) and kv_lock_get()
 * sets l->lkind = @kind.  kv_lock_get() returns false when the reader
 * ran short or the record is not a valid lock (kind, mode, start <= end).
 */
void kv_lock_put(struct buf_writer *w, const struct kv_lock *l, uint8_t kind);
bool kv_lock_get(struct buf_reader *r, struct kv_lock *l, uint8_t kind);

/*
 * One operation: a command's body, or one op of a transaction.  Pointers
 * are borrowed (into the decoded buffer, or the caller's memory when
 * encoding).  Which fields matter depends on @type (table at the top).
 */
struct kv_op {
	uint8_t type; /* KV_OP_GET .. KV_OP_RENAME, KV_OP_LINK, or a lock op */
	uint32_t flags; /* KV_F_* */
	uint64_t version; /* expected version (0: absent, for put) */
	uint64_t arg; /* WRITE: offset; TRUNCATE: new size */
	uint32_t mask; /* SETMETA: KV_META_* */
	struct kv_meta meta; /* PUT (create or KV_F_SETMETA), SETMETA */
	int64_t mtime_ns; /* SETMETA with KV_META_MTIME */
	const void *key;
	uint32_t keylen;
	const void *key2; /* RENAME, LINK: destination (the new name) */
	uint32_t key2len;
	const void *data; /* PUT: value; WRITE: bytes */
	uint32_t datalen;
	/* Lock ops (the lock body; table at the top). */
	uint64_t inode; /* the lock's inode (0: resolve key) */
	uint8_t lkind; /* enum kv_lock_kind (UNLOCK_OWNER: 0 = both) */
	uint8_t lmode; /* enum kv_lock_mode */
	uint64_t start; /* POSIX range [start, end] */
	uint64_t end;
	uint64_t owner; /* with the session: who holds or waits */
	uint32_t pid; /* LOCK: reported by GETLK (F_GETLK's l_pid) */
	uint64_t token; /* FENCE: the grant's token */
};

/* One compare of a transaction. */
struct kv_cmp {
	uint64_t version; /* 0: must not exist; KV_VERSION_ANY: must exist;
	                     KV_VERSION_NOCHILD: nothing below key/ */
	const void *key;
	uint32_t keylen;
};

/*
 * A command.  For a TXN built by the caller, @cmps/@ops point to arrays of
 * @ncmp/@nops elements; a decoded TXN leaves them NULL and keeps the
 * validated encoded sections instead (@raw_*): walk either kind with
 * kv_cmd_cmp_iter()/kv_cmd_op_iter().
 */
struct kv_cmd {
	uint8_t type; /* enum kv_op_type */
	uint64_t client_id; /* 0: no session (no duplicate detection) */
	uint64_t seq; /* per-client sequence number (sessions) */
	int64_t time_ns; /* proposer's clock, ns since the epoch, >= 0 */
	struct kv_op op; /* GET..RENAME, LINK, lock ops: the operation
	                    (op.type == type) */
	uint32_t ncmp; /* TXN */
	uint32_t nops;
	const struct kv_cmp *cmps;
	const struct kv_op *ops;
	const uint8_t *raw_cmps; /* decoded TXN: the encoded compares */
	size_t raw_cmps_len;
	const uint8_t *raw_ops; /* decoded TXN: the encoded ops */
	size_t raw_ops_len;
};

/*
 * What a command answers.  After kv_apply(), @value (GET only) is a
 * malloc'd copy the caller frees with kv_result_release(); after
 * kv_result_decode() it points into the decoded buffer (do not release).
 */
struct kv_result {
	int status; /* enum kv_status */
	uint32_t flags; /* KV_RES_* */
	uint32_t fail_cmp; /* TXN: index of the first failing compare */
	uint32_t fail_op; /* TXN: index of the op that failed */
	uint64_t client_id; /* REGISTER: the new session's client id */
	struct kv_attr attr; /* the key after the operation (see kv.h) */
	void *value; /* GET: the value (attr.size bytes) */
	size_t value_len;
	struct kv_lock lock; /* with KV_RES_LOCK: a lock (a conflict) */
};

/* Reset @r to an empty result: status KV_OK, no indexes, no value. */
void kv_result_init(struct kv_result *r);

/* Free the value kv_apply() allocated in @r, and reset @r.  NULL-safe. */
void kv_result_release(struct kv_result *r);

/* --- commands ------------------------------------------------------------ */

/*
 * Exact number of bytes kv_cmd_encode() produces for @c, or 0 if @c is not
 * encodable (kv_cmd_encode() would return -EINVAL).
 */
size_t kv_cmd_size(const struct kv_cmd *c);

/*
 * Encode @c into @buf of @cap bytes.  Returns the number of bytes written
 * (> 0), -EINVAL if @c is not encodable (checked first: unknown type, bad
 * flags or mask, unknown kind, mode bits outside KV_MODE_MASK, a key empty
 * or over KV_KEY_MAX, data over KV_VALUE_MAX, a NULL pointer with a
 * non-zero length, counts over KV_TXN_MAX, a txn op that is not a mutation,
 * REGISTER with a client id or seq, negative time, more than KV_CMD_MAX
 * bytes in all), or -ENOBUFS if @cap is too small.
 */
long kv_cmd_encode(const struct kv_cmd *c, void *buf, size_t cap);

/*
 * Like kv_cmd_encode() into a fresh buffer: on success *@buf (caller frees
 * it with free()) holds *@len bytes.  Returns 0, -EINVAL, -ENOMEM.
 */
int kv_cmd_encode_alloc(const struct kv_cmd *c, void **buf, size_t *len);

/*
 * Decode @len bytes at @buf into @c, which then points INTO @buf (@buf must
 * outlive @c).  Returns 0, or -EBADMSG for anything malformed (every case
 * kv_cmd_encode() rejects with -EINVAL, plus truncation, trailing bytes, an
 * unknown version, non-zero reserved bits); @c is zeroed on error.  Never
 * allocates.  Whatever it accepts, kv_cmd_encode() turns back into the same
 * bytes.
 */
int kv_cmd_decode(const void *buf, size_t len, struct kv_cmd *c);

/*
 * The time_ns field of the encoded command at @cmd (@len bytes), read or
 * overwritten in place: a member stamps its clock on a command just before
 * proposing it, without decoding it.  kv_cmd_time_ns() returns -1 and
 * kv_cmd_set_time_ns() does nothing when @len is too short to hold the
 * header (the state machine will answer ErrMalformed).
 */
int64_t kv_cmd_time_ns(const void *cmd, size_t len);
void kv_cmd_set_time_ns(void *cmd, size_t len, int64_t ns);

/* Iteration over a TXN's compares or ops (built or decoded alike). */
struct kv_cmd_iter {
	const struct kv_cmd *cmd;
	uint32_t next; /* index of the next element */
	const uint8_t *p; /* decoded: cursor into the raw section */
};

void kv_cmd_cmp_iter(const struct kv_cmd *c, struct kv_cmd_iter *it);
/* Fill @cmp with the next compare; false at the end. */
bool kv_cmd_next_cmp(struct kv_cmd_iter *it, struct kv_cmp *cmp);
void kv_cmd_op_iter(const struct kv_cmd *c, struct kv_cmd_iter *it);
/* Fill @op with the next op; false at the end. */
bool kv_cmd_next_op(struct kv_cmd_iter *it, struct kv_op *op);

/* --- results ------------------------------------------------------------- */

/* Exact encoded size of @r (81 bytes + the value [+ KV_LOCK_BYTES]). */
size_t kv_result_size(const struct kv_result *r);

/*
 * Encode @r into @buf of @cap bytes.  Returns bytes written (> 0), -EINVAL
 * (status out of range or not a known status, unknown flags, NULL value
 * with a non-zero length, value over KV_VALUE_MAX), -ENOBUFS.
 */
long kv_result_encode(const struct kv_result *r, void *buf, size_t cap);

/*
 * Decode @len bytes at @buf into @r; @r->value points INTO @buf (NULL when
 * empty).  Returns 0 or -EBADMSG (@r reset).  Canonical like commands.
 */
int kv_result_decode(const void *buf, size_t len, struct kv_result *r);

#endif
