/*
 * endpoint.h - a member's client endpoint: the client protocol (cproto.h)
 * served over a ZeroMQ ROUTER socket on the member's client address, on
 * top of the node (node.h) and its RSM (rsm.h).
 *
 * The member's loop thread serves the socket (node_attach_endpoint): it
 * starts SUBMITs and READ barriers without blocking (rsm_submit_async,
 * rsm_read_barrier_async) and sends every reply; a pool of workers runs
 * what may block (queries, status, the rest) and hands the replies back
 * through a mailbox the loop polls.  Queries are answered by the RSM's
 * application (rsm_query, rsm_query_quick).
 * Every request carries its own timeout (capped at 60 s).  Requests for
 * another cluster id, or that do not decode, are answered with an error
 * when they can be and counted either way.
 */
#ifndef RAFTKV_ENDPOINT_H
#define RAFTKV_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/member/node.h"

/* What the endpoint asks of the application besides its RSM callbacks
 * (struct rsm_app: apply, queries). */
struct endpoint_app {
	void *arg;
	/* Optional: called on a SUBMIT's command before it is proposed, on
	 * this (the proposing) member's loop thread, so quick and never
	 * blocking: the place to stamp what the proposer decides, e.g. the
	 * time.  Returns 0, or a negative code answered
	 * to the client instead of proposing. */
	int (*prepare)(void *arg, uint8_t *cmd, size_t len);
};

struct endpoint;
struct endpoint_auth;

/* Bind @addr (e.g. "tcp://127.0.0.1:7101"), start @workers workers (0:
 * 32) and attach to @n's loop.  @app may be NULL.  @auth (endpoint_auth.h;
 * NULL: plaintext, no authentication, membership changes refused) says
 * who may connect and who is an admin.  0, or a negative code with a
 * message in @err. */
int endpoint_start(struct node *n, uint64_t cluster_id, const char *addr,
    const struct endpoint_app *app, const struct endpoint_auth *auth,
    unsigned workers, struct endpoint **out, char *err, size_t errlen);

/* Fail the requests in flight (NODE_ESHUTDOWN), stop the threads, detach
 * from the loop and close the socket (call before node_stop()). */
void endpoint_stop(struct endpoint *s);

#endif
