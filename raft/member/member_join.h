/*
 * member_join.h - the first start of a member that joins a running
 * cluster (raftkv-server --join, mount.raftkv -o join): what it must know
 * before its node starts.
 */
#ifndef RAFTKV_MEMBER_JOIN_H
#define RAFTKV_MEMBER_JOIN_H

#include <stddef.h>

#include "raft/client/cluster.h"
#include "raft/memberdir.h"
#include "raft/member/member_options.h"

/*
 * Ask the running cluster @cl (the members of its cluster file, as a
 * client: with CURVE, with the client credential keys_load_credential()
 * finds) for its member directory (CPROTO_MEMBER LIST), keep in @d only
 * the entries of its newest configuration's members, put theirs into @d
 * (removed members are left out: their keys must not be admitted), and
 * add this member's own entry: @o->id at @o->peer / @o->client with
 * the public key of its secret (@o->secret_file, else member<ID>.key next
 * to the cluster file).  Tries every member for up to 15 s.  0, or a
 * negative code with one line in @err (-EINVAL: --peer or --client
 * missing or malformed; CLIENT_ENOCRED, key errors; CLIENT_EUNREACHABLE:
 * no member answered).
 */
int member_join_directory(const struct member_options *o,
    const struct cluster *cl, struct memberdir *d, char *err, size_t errlen);

/*
 * Every start but a first join: ask the members @d knows (but @o->id),
 * once and briefly, for the member list, and put into @d and into @fresh
 * (emptied first) the entries of the members of the newest configuration
 * returned (never @o->id's own), and that configuration's index into
 * *@fresh_index (node_config.fresh: the node lets them win over an older
 * log, removed members added again included).  Best effort: @d is
 * unchanged and @fresh empty when no member answers (the whole cluster
 * restarting); the log's change entries bring the directory up to date
 * then.  Logs what it did.
 */
void member_refresh_directory(const struct member_options *o,
    const struct cluster *cl, struct memberdir *d, struct memberdir *fresh,
    raft_index *fresh_index);

#endif
