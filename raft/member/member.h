/*
 * member.h - the main() of a member process: options, cluster file,
 * node + client endpoint, signals.  Programs differ only in the
 * application they run (the KV store; the counter test application).
 *
 * Usage is documented in raftkv-server(8).  SIGTERM/SIGINT stop the member
 * cleanly; everything acknowledged is already durable, so kill -9 loses
 * nothing that was acknowledged either.
 */
#ifndef RAFTKV_MEMBER_H
#define RAFTKV_MEMBER_H

#include "raft/member/node.h"
#include "raft/member/endpoint.h"

struct member_app {
	const char *name;
	/* Create the application; fill its callbacks.  0 or -errno. */
	int (*create)(void **arg, struct node_app *napp,
	    struct server_app *sapp);
	void (*destroy)(void *arg);
};

/* Parse argv, run until signalled.  Returns the process exit status. */
int member_main(int argc, char **argv, const struct member_app *app,
    const char *progname);

#endif
