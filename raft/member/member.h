/*
 * member.h - a cluster member you can embed: the node (node.h: the Raft
 * core, its disk and network, and the RSM), the client endpoint
 * (endpoint.h) and the application, started and stopped as one.
 *
 * Programs differ only in the application they run (the KV store, the
 * counter test application) and in their front end:
 *
 *   raftkv-server   member_main(): parse options, member_start(), wait
 *                   for SIGTERM/SIGINT, member_stop();
 *   mount.raftkv    its own options into a struct member_options,
 *                   member_start(), the FUSE loop — reading the
 *                   application's state (member_app_arg()) after an
 *                   rsm_read_barrier() and changing it with rsm_submit()
 *                   on member_rsm() — then member_stop().
 *
 * Everything acknowledged is durable before it is acknowledged, so
 * kill -9 loses nothing that was acknowledged either.
 */
#ifndef RAFTKV_MEMBER_H
#define RAFTKV_MEMBER_H

#include <stddef.h>

#include "raft/client/cluster.h"
#include "raft/member/endpoint.h"
#include "raft/member/member_options.h"
#include "raft/member/node.h"
#include "raft/member/rsm.h"

struct member;

struct member_app {
	const char *name; /* in log lines: "kv", "counter" */
	/* Create the application's state (*@arg) and fill its callbacks
	 * (@rapp: required apply, snapshot, restore; optional queries;
	 * @eapp: optional) for the cluster @cl (its file, loaded: e.g. the
	 * quota line; borrowed for the call).  0 or -errno. */
	int (*create)(void **arg, const struct cluster *cl,
	    struct rsm_app *rapp, struct endpoint_app *eapp);
	void (*destroy)(void *arg);
	/* Optional: called once the node and the endpoint run, e.g. to start
	 * a thread proposing through member_rsm(@m) (the KV store's TICKs);
	 * *@run is handed to stop(), called first when the member stops
	 * (before the endpoint: stop() may have to release what blocks its
	 * workers).  0 or -errno (the member does not start). */
	int (*start)(void *arg, struct member *m, void **run);
	void (*stop)(void *run);
};

/*
 * Start a member as @opts says: load the cluster file, read the CURVE
 * secret if the cluster uses CURVE, create the application, start the
 * node (storage recovery, core, transport, threads) and the client
 * endpoint.  Logging is the caller's (log_init()); so are signals: block
 * the ones it waits for before calling, so that the member's threads
 * inherit the mask.  @app must outlive the member.
 * Returns 0 with *@out running, or a negative code (-EINVAL: bad
 * options or cluster file, -ENOENT, storage codes, -EADDRINUSE, -ENOMEM)
 * with one line naming what and why in @err.
 */
int member_start(const struct member_options *opts,
    const struct member_app *app, struct member **out, char *err,
    size_t errlen);

/* Stop the endpoint (requests in flight get NODE_ESHUTDOWN), the node,
 * destroy the application, free.  NULL is fine. */
void member_stop(struct member *m);

/* The RSM: rsm_submit(), rsm_read_barrier() (rsm.h). */
struct rsm *member_rsm(struct member *m);

/* The node: status, leadership transfer (node.h). */
struct node *member_node(struct member *m);

/* The application's state, as its create() made it (the KV store's
 * struct kv *): read it after rsm_read_barrier(), concurrently with
 * apply() (the application locks); never write it but through
 * rsm_submit(). */
void *member_app_arg(struct member *m);

/* node_status() of the member's node. */
void member_status(struct member *m, struct node_status *st);

/* Process-wide settings of a member process, made first in main() before
 * any thread starts: glibc's malloc gets at most MEMBER_MALLOC_ARENAS
 * arenas (unless MALLOC_ARENA_MAX is set in the environment).  Its
 * default, 8 per core, gives the 32 client workers up to 16 arenas whose
 * free memory each keeps: the resident memory per client then grew with
 * the machine's load (230 B per client idle, 450 B at load 15). */
#define MEMBER_MALLOC_ARENAS 2
void member_process_setup(void);

/* The main() of a member process: parse argv (member_options.h), start,
 * run until SIGTERM or SIGINT, stop.  Returns the exit status (2 for bad
 * options); a failure to start exits with one line naming the cause. */
int member_main(int argc, char **argv, const struct member_app *app,
    const char *progname);

#endif
