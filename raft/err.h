/*
 * err.h - every raftkv error code, in one table.
 *
 * Functions return 0 on success and a negative code on failure: -errno
 * (-ENOMEM, -EIO, ...) when the condition has an errno, else one of the
 * codes below.  They live below -1000 so they never clash with -errno, in
 * one range per layer so that a code names where it came from:
 *
 *   -1000..-1099  the Raft core              RAFT_E*
 *   -1100..-1199  storage (WAL, snapshots)   STORAGE_E*
 *   -1200..-1299  the member runtime         NODE_E*
 *   -1300..-1399  peer frames (transport)    FRAME_E*
 *   -1400..-1449  a client's connection      CLIENT_E*
 *   -1450..-1499  the client protocol        CPROTO_E*
 *   -1500..-1599  the KV clerk               CLERK_E*
 *   -1600..-1699  the KV lock                KVLOCK_E*
 *
 * The table is an X-macro (canonical/raft's err.h, libuv's UV_ERRNO_MAP):
 * one line per code gives its name, value and message, and produces both
 * the enum and rk_strerror().  tests/unit/test_err.c checks that every
 * code is unique, inside its layer's range, and has a message.
 *
 * Pure: part of the core (libc only).  Values travel in client replies, so
 * a code once shipped keeps its number.
 */
#ifndef RAFTKV_ERR_H
#define RAFTKV_ERR_H

#define RK_ERR_MAP(X) \
	X(RAFT_ENOTLEADER, -1001, "not the leader") \
	X(RAFT_EBUSY, -1002, "too many uncommitted entries, retry later") \
	X(RAFT_ETRANSFER, -1003, "leadership transfer in progress") \
	X(RAFT_ESTALE, -1004, "index compacted or older than the snapshot") \
	X(RAFT_EMALFORMED, -1005, "malformed message") \
	X(RAFT_ETOOBIG, -1006, "entry or message too large") \
	X(RAFT_ECONFPENDING, -1007, \
	    "a membership change is still pending, retry when it commits") \
	X(RAFT_ENOTCAUGHTUP, -1008, \
	    "the learner has not caught up with the log yet, retry later") \
	X(RAFT_ENOQUORUM, -1009, \
	    "refused: the new configuration would have no quorum " \
	    "of live voters") \
	X(RAFT_ELASTVOTER, -1010, "refused: that would leave no voter") \
	X(RAFT_EINLEASE, -1011, \
	    "refused: a leader was heard from recently and may hold " \
	    "a read lease") \
	X(STORAGE_ECORRUPT, -1101, \
	    "storage corrupt: a checksum, header or sequence is wrong") \
	X(STORAGE_EFOREIGN, -1102, \
	    "data directory belongs to another cluster or member") \
	X(STORAGE_EDAMAGED, -1103, \
	    "data directory damaged: a file is missing or cut short") \
	X(NODE_ELOST, -1201, \
	    "entry lost: leadership changed before it committed") \
	X(NODE_ETIMEDOUT, -1202, "timed out: outcome unknown") \
	X(NODE_ESHUTDOWN, -1203, "member is shutting down") \
	X(NODE_ENOLEADER, -1204, "no leader known") \
	X(NODE_EGONEFULL, -1205, \
	    "refused: the cluster keeps no more removed members " \
	    "(256 ids and 256 keys at most, never forgotten)") \
	X(FRAME_EMALFORMED, -1301, "malformed frame") \
	X(FRAME_EVERSION, -1302, "unsupported frame version") \
	X(FRAME_ECLUSTER, -1303, "frame from another cluster") \
	X(FRAME_ESENDER, -1304, "frame from a non-member") \
	X(FRAME_EFORGED, -1305, "message sender differs from the frame's") \
	X(FRAME_EMISROUTED, -1306, "message addressed to another member") \
	X(FRAME_EAUTH, -1307, "sender does not match its authenticated key") \
	X(CLIENT_EUNREACHABLE, -1401, "member unreachable") \
	X(CLIENT_ETIMEDOUT, -1402, "no reply from the member in time") \
	X(CLIENT_EAUTH, -1403, \
	    "refused by the member at the handshake: " \
	    "no credential, or one not listed in the cluster file") \
	X(CLIENT_ENOCRED, -1404, \
	    "the cluster uses CURVE keys and this " \
	    "client has no credential") \
	X(CPROTO_EMALFORMED, -1451, "malformed client request") \
	X(CPROTO_EFOREIGN, -1452, "request for another cluster") \
	X(CPROTO_EBADOP, -1453, "unknown or disabled request") \
	X(CPROTO_EDENIED, -1454, \
	    "denied: this request needs the admin credential") \
	X(CPROTO_EUNREAD, -1455, \
	    "refused: this client leaves too many " \
	    "replies unread") \
	X(CLERK_EUNAVAILABLE, -1501, \
	    "cluster unavailable (no member answered in time)") \
	X(KVLOCK_ETIMEDOUT, -1601, "lock not acquired before the deadline") \
	X(KVLOCK_ENOTHELD, -1602, "lock not held (lease lost?)")

enum rk_err {
#define RK_ERR_ENUM(name, value, text) name = value,
	RK_ERR_MAP(RK_ERR_ENUM)
#undef RK_ERR_ENUM
};

/*
 * A printable message for @err: 0, a code of the table above, or a -errno
 * value (strerror).  Never NULL; "unknown error" for anything else.
 */
const char *rk_strerror(int err);

/* The code's symbolic name ("RAFT_ENOTLEADER"), or NULL if not in the table. */
const char *rk_errname(int err);

#endif
