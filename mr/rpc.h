/*
 * rpc.h - moving msg.h messages between coordinator and workers over
 * ZeroMQ (TCP or IPC; the endpoint is given on the command line).
 *
 * The coordinator binds a ROUTER socket and answers every request at once
 * (it never blocks on a worker).  A worker holds a REQ socket and makes
 * one call at a time; a call that gets no answer within its timeout closes
 * and reopens the socket (the "lazy pirate" pattern: a REQ socket that lost
 * its reply is stuck otherwise), so a worker survives a coordinator
 * restart and notices a coordinator that is gone.  Frames longer than
 * MSG_MAX are dropped unread.
 */
#ifndef RAFTKV_MR_RPC_H
#define RAFTKV_MR_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "mr/msg.h"

struct rpc_server;
struct rpc_client;

/*
 * Bind @endpoint ("tcp://127.0.0.1:0" picks a free port).  Returns NULL
 * with errno set on failure.  Free with rpc_server_free().
 */
struct rpc_server *rpc_server_new(const char *endpoint);
void rpc_server_free(struct rpc_server *s);
/* The bound endpoint, with the port the system chose. */
const char *rpc_server_endpoint(const struct rpc_server *s);

/*
 * Wait up to @timeout_ms for a request.  Returns 1 with the request in @m
 * (strings valid until the next recv), 0 on timeout, -EBADMSG for a
 * malformed request (dropped, nothing to reply), -errno on a socket error.
 * After a 1 the caller must answer with rpc_server_reply() before the next
 * recv.
 */
int rpc_server_recv(struct rpc_server *s, struct msg *m, int timeout_ms);
int rpc_server_reply(struct rpc_server *s, const struct msg *m);

/* Connect to @endpoint.  NULL with errno set on failure. */
struct rpc_client *rpc_client_new(const char *endpoint);
void rpc_client_free(struct rpc_client *c);

/*
 * Send @req and wait up to @timeout_ms for the reply into @rep (strings
 * valid until the next call).  Returns 0, -ETIMEDOUT (socket reset),
 * -EBADMSG for a malformed reply, or -errno.
 */
int rpc_call(struct rpc_client *c, const struct msg *req, struct msg *rep,
    int timeout_ms);

#endif
