/*
 * fsmember.h - the Raft member a mount.raftkv process embeds: the same
 * runtime as raftkv-server (node + client endpoint from the cluster file,
 * serving raftkv CLI clients too) running the KV application, with a hook
 * that lets the filesystem wrap the application's callbacks.
 */
#ifndef RAFTKV_FS_FSMEMBER_H
#define RAFTKV_FS_FSMEMBER_H

#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"
#include "raft/client/cluster.h"
#include "raft/member/node.h"

struct fsm_options {
	uint64_t id;               /* this member's id in the cluster file */
	const char *data_dir;
	const char *secret_file;   /* CURVE secret (required iff cl->curve) */
	unsigned tick_ms;          /* 0: defaults */
	unsigned election_ticks;
	unsigned heartbeat_ticks;
	int64_t max_raft_state;    /* <= 0: never snapshot */
	unsigned workers;          /* client endpoint workers; 0: default */
	int fault_injection;       /* tests only */
};

/*
 * Called once the KV application exists and before the node starts: may
 * replace @napp's callbacks with wrappers (keeping the originals).
 */
typedef void (*fsm_hook_fn)(void *arg, struct node_app *napp, struct kv *kv);

struct fsm;

/*
 * Start the member (storage recovery, threads, the peer and client
 * endpoints of member @o->id in @cl).  Returns 0, or a negative code with
 * one line in @err.  Signals must already be blocked in the caller.
 */
int fsm_start(const struct cluster *cl, const struct fsm_options *o,
    fsm_hook_fn hook, void *hook_arg, struct fsm **out, char *err,
    size_t errlen);

/* Stop and free (NULL-safe): waiters fail, threads end, nothing leaks. */
void fsm_stop(struct fsm *m);

/* The local state machine. */
struct kv *fsm_kv(struct fsm *m);

/*
 * One linearizable read barrier (ReadIndex, batched by the caller): 0 once
 * the local state has applied everything committed before the call, else
 * a node.h code (NODE_ENOLEADER, NODE_ETIMEDOUT, NODE_ESHUTDOWN, ...).
 */
int fsm_read_barrier(struct fsm *m, int timeout_ms);

#endif
