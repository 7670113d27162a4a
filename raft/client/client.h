/*
 * client.h - the client side of the client protocol (cproto.h): one
 * request to one chosen member, with a deadline.
 *
 * A struct client holds one DEALER socket per member of the cluster file
 * and is used by one thread at a time.  Requests carry increasing ids;
 * late replies to earlier, abandoned requests are recognised and dropped.
 * The clerk (leader finding, retries) and the tests build on this.
 *
 * Authentication: when the cluster file has keys (c->curve), every socket
 * is a CURVE client that knows its member's public key and presents the
 * credential in c->cred_secret (keys_load_credential(), keys.h).  A
 * member that refuses the handshake (a credential not on its allowlist,
 * or plaintext against CURVE) makes a call fail with CLIENT_EAUTH as soon
 * as it does, instead of waiting for a connection that never comes.
 */
#ifndef RAFTKV_CLIENT_H
#define RAFTKV_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "raft/client/cluster.h"
#include "raft/err.h"

struct client_reply {
	int status; /* the member's status for the request */
	uint64_t leader; /* its leader hint (0: none) */
	uint8_t *data; /* malloc'd payload (NULL if empty) */
	size_t len;
};

struct client;

/* @zctx: a ZeroMQ context to share (NULL: the client creates its own).
 * 0, -ENOMEM, -EINVAL, or CLIENT_ENOCRED (c->curve and no credential). */
int client_new(const struct cluster *c, void *zctx, struct client **out);
void client_free(struct client *c);

/*
 * Send @op with @payload to member index @idx (0..c->n-1) and wait up to
 * @timeout_ms for its reply; the member is told the same timeout.
 * Returns 0 with *@rep filled (caller frees rep->data), or
 * CLIENT_EUNREACHABLE, CLIENT_ETIMEDOUT, CLIENT_EAUTH, -EINVAL, -ENOMEM.
 */
int client_call(struct client *c, uint32_t idx, uint8_t op, const void *payload,
    uint32_t len, int timeout_ms, struct client_reply *rep);

/*
 * Test only: lose requests and replies like labrpc's unreliable network.
 * With @pct percent probability a request is not sent, and independently
 * a reply that arrived is thrown away; either way the call returns
 * CLIENT_ETIMEDOUT at once (a lost request after the labs' short delay),
 * so the caller cannot tell whether the member acted.  0 turns it off.
 */
void client_set_loss(struct client *c, unsigned pct, uint64_t seed);

/* Index of member @id in the cluster, or -1. */
int client_index_of(const struct client *c, uint64_t id);

#endif
