/*
 * endpoint_auth.h - authentication of a member's client endpoint.
 *
 * With CURVE keys in the cluster file the client endpoint is a CURVE
 * server with the member's own key pair (clients know its public key from
 * the cluster file), and a ZAP handler (raft/net/auth.c) admits only the
 * credentials the cluster file lists: "credential client" keys get the
 * ZAP user id "client", "credential admin" keys "admin".  Every request
 * then carries its connection's user id, and the endpoint answers an
 * administrative request (cproto_op_is_admin) from anyone but an admin
 * with CPROTO_EDENIED.  A key not listed is refused at the handshake (the
 * client sees CLIENT_EAUTH).
 *
 * Without keys (raftkv-server --insecure) the endpoint is plaintext and
 * nobody can be told from anyone: every client may do everything but
 * change the membership, which the leader refuses (CPROTO_EDENIED)
 * unless the operator allowed it on the leader too
 * (--insecure-membership, open_membership): only the leader proposes a
 * change, so its setting decides, whichever member a client reaches
 * (raft/member/node.h, node_member_change); the member warns about it at
 * start.
 */
#ifndef RAFTKV_ENDPOINT_AUTH_H
#define RAFTKV_ENDPOINT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "raft/client/cluster.h"

struct auth;

struct endpoint_auth {
	char secret[CLUSTER_KEY_LEN + 1]; /* the member's secret; "": off */
	uint32_t n_creds;
	struct cluster_cred creds[CLUSTER_MAX_CREDS];
	bool open_membership; /* no secret: membership changes allowed */
};

/* Fill @a from the cluster file @cl and the member's secret @secret ("" or
 * NULL for none: authentication off). */
void endpoint_auth_from_cluster(struct endpoint_auth *a,
    const struct cluster *cl, const char *secret);

/*
 * Make @sock (a ROUTER of context @zctx, not yet bound) a CURVE server and
 * start the ZAP handler admitting @a's credentials.  Nothing to do when @a
 * is NULL or has no secret (*@out = NULL).  0, or a negative code with a
 * message in @err.  Stop the handler with auth_free() after
 * zmq_ctx_shutdown(@zctx).
 */
int endpoint_auth_apply(void *zctx, void *sock, const struct endpoint_auth *a,
    struct auth **out, char *err, size_t errlen);

/* Did @msg come over a connection authenticated as an admin? */
bool endpoint_auth_is_admin(zmq_msg_t *msg);

#endif
