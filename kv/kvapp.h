/*
 * kvapp.h - the KV state machine (kv.h) as a member's application: the
 * callbacks the member runtime calls (struct rsm_app in
 * raft/member/rsm.h, struct endpoint_app in raft/member/endpoint.h).
 * member_app_arg() of a member running kvapp is its struct kv *.
 *
 *   apply     kv_apply(), the result encoded (cmd.h) as the reply
 *   snapshot  kv_snapshot(); snapshot_begin, snapshot_finish  the same in
 *             two steps on the RSM's snapshot thread (kv_snapshot_begin():
 *             the state copied under the lock while the applier waits;
 *             kv_snapshot_finish(): compressed while applying goes on)
 *   restore   kv_restore()
 *   prepare   stamps the proposer's clock into a command's time_ns
 *   query     GET, LIST, USAGE, GETLK and LOCKWAIT (query.h) from the
 *             local state; query_quick  a GET of a small value, on the
 *             member's loop; LOCKWAIT blocks a worker until the grant
 *             applies here (kv_lock_wait())
 *   start     a ticker thread: while this member leads and the lock table
 *             holds something, it proposes a TICK every KV_TICK_NS, so
 *             that committed time, hence lock-lease expiry, advances when
 *             the cluster is otherwise idle (kv.h, LOCKS); and while a
 *             session holding files open (kv.h, OPENS) has shown no
 *             activity for half the session TTL by this leader's clock
 *             (a dead mount: live ones renew a quarter TTL apart), a
 *             TICK whenever nothing committed for KV_TICK_NS, so that
 *             its session, and the removed files it kept, expire; stop
 *             ends it and releases the workers blocked in LOCKWAIT
 */
#ifndef RAFTKV_KV_KVAPP_H
#define RAFTKV_KV_KVAPP_H

#include "raft/member/member.h"

extern const struct member_app kvapp;

/* kvapp's start and stop (for applications that wrap kvapp, like the
 * mount's): see struct member_app. */
struct member;
int kvapp_start(void *arg, struct member *m, void **run);
void kvapp_stop(void *run);

#endif
