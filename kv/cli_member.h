/*
 * cli_member.h - `raftkv member ...` (raftkv(1), MEMBERSHIP): list the
 * members, add one as a learner, promote a learner, remove a member,
 * make a member key.  Talks the client protocol's MEMBER op (cproto.h)
 * to the leader, which answers once the change is committed.
 */
#ifndef RAFTKV_CLI_MEMBER_H
#define RAFTKV_CLI_MEMBER_H

#include "raft/client/cluster.h"

/*
 * Run `member ARGS...` (@argv[0] is the action) against the cluster @cl
 * (its file at @file, already loaded) with credential @cred (NULL: found
 * next to the file; changes need the admin one), giving up after
 * @timeout_ms (<= 0: 60 s).  Returns raftkv(1)'s exit status.
 */
int cli_member(struct cluster *cl, const char *file, const char *cred, int argc,
    char **argv, int timeout_ms);

#endif
