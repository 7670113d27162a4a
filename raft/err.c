/*
 * err.c - names for error codes (the table of raft/err.h), roles and
 * message types, so that logs and tools print words instead of numbers.
 */
#include <string.h>

#include "raft/raft.h"

const char *rk_strerror(int err)
{
	switch (err) {
#define RK_ERR_CASE(name, value, text) \
	case name: \
		return text;
		RK_ERR_MAP(RK_ERR_CASE)
#undef RK_ERR_CASE
	case 0:
		return "success";
	}
	if (err < 0 && err > -1000)
		return strerror(-err);
	return "unknown error";
}

const char *rk_errname(int err)
{
	switch (err) {
#define RK_ERR_NAME(name, value, text) \
	case name: \
		return #name;
		RK_ERR_MAP(RK_ERR_NAME)
#undef RK_ERR_NAME
	}
	return NULL;
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
