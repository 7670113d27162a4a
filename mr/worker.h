/*
 * worker.h - a worker: asks the coordinator for tasks until told to exit
 * or until the coordinator is gone, runs each in a forked child.
 *
 * A task runs in a child process (fork, no exec: the app is already
 * loaded), so an app that crashes, calls exit() or leaks costs that one
 * attempt: the worker reports FAIL and asks for the next task.  While the
 * child runs, the worker sends a heartbeat every wait_ms the coordinator
 * gave with the task; an ABANDON answer (the task was completed by
 * another attempt, or this attempt's lease ran out) kills the child.  The
 * child reports its counters through a pipe; its outputs are files
 * (exec.h).  The child never touches the ZeroMQ context it inherits.
 */
#ifndef RAFTKV_MR_WORKER_H
#define RAFTKV_MR_WORKER_H

#include <stdint.h>

#include "mr/app.h"

struct worker_opts {
	const char *endpoint;
	const char *outdir; /* NULL: the coordinator's OUTDIR */
	uint64_t gone_ms; /* exit after this long without an answer */
};

/*
 * Serve the coordinator at o->endpoint until it says EXIT (returns 0) or
 * is unreachable for gone_ms (returns -ETIMEDOUT after one line on
 * stderr).  Returns -errno if the endpoint is unusable.
 */
int worker_run(struct app *app, const struct worker_opts *o);

#endif
