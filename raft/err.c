/*
 * err.c - names for error codes, roles and message types (one table each),
 * so that logs and tools print words instead of numbers.
 */
#include <string.h>

#include "raft.h"

#define RAFT_ERR_MAP(X)                                                   \
	X(RAFT_ENOTLEADER, "not the leader")                              \
	X(RAFT_EBUSY, "too many uncommitted entries, retry later")        \
	X(RAFT_ETRANSFER, "leadership transfer in progress")              \
	X(RAFT_ESTALE, "index compacted or older than the snapshot")      \
	X(RAFT_EMALFORMED, "malformed message")                           \
	X(RAFT_ETOOBIG, "entry or message too large")

const char *raft_strerror(int err)
{
	switch (err) {
#define X(code, text) case code: return text;
	RAFT_ERR_MAP(X)
#undef X
	case 0:
		return "success";
	}
	if (err < 0 && err > -1000)
		return strerror(-err);
	return "unknown error";
}

const char *raft_role_name(enum raft_role role)
{
	static const char *const names[] = {
		[RAFT_FOLLOWER] = "follower",
		[RAFT_PRECANDIDATE] = "pre-candidate",
		[RAFT_CANDIDATE] = "candidate",
		[RAFT_LEADER] = "leader",
	};

	if ((unsigned)role >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[role];
}

const char *raft_msg_type_name(int type)
{
	static const char *const names[RAFT_MSG_TYPE_MAX + 1] = {
		[RAFT_MSG_PREVOTE] = "PreVote",
		[RAFT_MSG_PREVOTE_RESP] = "PreVoteResp",
		[RAFT_MSG_VOTE] = "Vote",
		[RAFT_MSG_VOTE_RESP] = "VoteResp",
		[RAFT_MSG_APPEND] = "Append",
		[RAFT_MSG_APPEND_RESP] = "AppendResp",
		[RAFT_MSG_HEARTBEAT] = "Heartbeat",
		[RAFT_MSG_HEARTBEAT_RESP] = "HeartbeatResp",
		[RAFT_MSG_SNAPSHOT] = "Snapshot",
		[RAFT_MSG_SNAPSHOT_RESP] = "SnapshotResp",
		[RAFT_MSG_TIMEOUT_NOW] = "TimeoutNow",
		[RAFT_MSG_READ_INDEX] = "ReadIndex",
		[RAFT_MSG_READ_INDEX_RESP] = "ReadIndexResp",
	};

	if (type < 1 || type > RAFT_MSG_TYPE_MAX)
		return "unknown";
	return names[type];
}
