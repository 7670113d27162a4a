/*
 * server.h - a member's client endpoint: the client protocol (cproto.h)
 * served over a ZeroMQ ROUTER socket on the member's client address.
 *
 * The member's loop thread serves the socket (node_attach_endpoint): it
 * starts SUBMITs and READ barriers without blocking and sends every reply;
 * a pool of workers runs what may block (queries, status, the rest) and
 * hands the replies back through a mailbox the loop polls.
 * Every request carries its own timeout (capped at 60 s).  Requests for
 * another cluster id, or that do not decode, are answered with an error
 * when they can be and counted either way.
 */
#ifndef RAFTKV_SERVER_H
#define RAFTKV_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/member/node.h"

/* How queries (READ, READ_STALE) are answered from local state.  Runs on
 * worker threads (or, for a quick READ, the loop), concurrently with the
 * applier: the application locks. */
struct server_app {
	void *arg;
	int (*query)(void *arg, const void *q, size_t len, void **reply,
	    size_t *reply_len);
	/* Optional: called on a SUBMIT's command before it is proposed, on
	 * this (the proposing) member's loop thread, so quick and never
	 * blocking: the place to stamp what the proposer decides, e.g. the
	 * time.  Returns 0, or a negative code answered
	 * to the client instead of proposing. */
	int (*prepare)(void *arg, uint8_t *cmd, size_t len);
	/* Optional: answer a READ on the member's loop thread once its read
	 * barrier passed, if that is quick (e.g. a GET of a small value):
	 * as query(), or -EAGAIN to leave it to a worker.  Two hand-offs
	 * between threads fewer.  Runs on the loop: must be quick itself. */
	int (*query_quick)(void *arg, const void *q, size_t len,
	    void **reply, size_t *reply_len);
};

struct server;
struct endpoint_auth;

/* Bind @endpoint and start.  @auth (endpoint_auth.h; NULL: plaintext, no
 * authentication) says who may connect and who is an admin.  0, or a
 * negative code with a message in @err. */
int server_start(struct node *n, uint64_t cluster_id, const char *endpoint,
    const struct server_app *app, const struct endpoint_auth *auth,
    unsigned workers, struct server **out, char *err, size_t errlen);

/* Stop the threads and close the socket (call before node_stop()). */
void server_stop(struct server *s);

#endif
