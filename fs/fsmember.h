/*
 * fsmember.h - the Raft member a mount.raftkv process embeds: the same
 * runtime as raftkv-server (raft/member/member.h: node + client endpoint
 * from the cluster file, serving raftkv CLI clients too) running the KV
 * application (kv/kvapp.h), with a hook that lets the filesystem wrap the
 * application's callbacks (fs/fsapp.h).  One per process.
 */
#ifndef RAFTKV_FS_FSMEMBER_H
#define RAFTKV_FS_FSMEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"
#include "raft/member/member.h"

/*
 * Called once the KV application exists and before the member starts
 * applying: may replace @rapp's callbacks with wrappers (keeping the
 * originals, and passing the queries through).
 */
typedef void (*fsm_hook_fn)(void *arg, struct rsm_app *rapp, struct kv *kv);

struct fsm;

/*
 * member_start() with the KV application and @hook.  Returns 0, or a
 * negative code with one line in @err.  Signals must already be blocked
 * in the caller.  Only one at a time per process.
 */
int fsm_start(const struct member_options *o, fsm_hook_fn hook, void *hook_arg,
    struct fsm **out, char *err, size_t errlen);

/* Stop and free (NULL-safe): waiters fail, threads end, nothing leaks. */
void fsm_stop(struct fsm *m);

/* The local state machine. */
struct kv *fsm_kv(struct fsm *m);

/* Is this member the leader now (a hint: it may be deposed already)? */
bool fsm_leading(struct fsm *m);

/*
 * One linearizable read barrier (ReadIndex; the caller batches): 0 once
 * the local state has applied everything committed before the call, else
 * an rsm.h code (NODE_ENOLEADER, NODE_ETIMEDOUT, NODE_ESHUTDOWN, ...).
 */
int fsm_read_barrier(struct fsm *m, int timeout_ms);

#endif
