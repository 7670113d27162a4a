/*
 * auth.h - the ZAP handler that admits only the cluster's members.
 *
 * libzmq's CURVE server proves that a client holds the secret key of the
 * public key it presents, but admits any key at all.  Who may connect is
 * decided by a ZAP handler (ZeroMQ RFC 27): a REP socket bound at
 * "inproc://zeromq.zap.01" in the same context, which libzmq asks during
 * every handshake.  This one answers "200" with the member's id (decimal)
 * as the ZAP user id when the client's public key is a member's, "400"
 * otherwise.  libzmq attaches that user id to every message received on
 * the connection (zmq_msg_gets(msg, "User-Id")), which is how the
 * transport checks that a frame's claimed sender is the member whose key
 * it came in with.
 *
 * The same handler serves a member's client endpoint (auth_new_users):
 * there the allowlist holds the cluster's client and admin credentials
 * (raftkv.conf(5) "credential" lines) and the user id is "client" or
 * "admin", which the endpoint checks before an administrative request.
 *
 * The handler runs on a thread of its own: libzmq waits for its answer
 * inside the handshake, so it must not depend on the event loop getting
 * round to it.  A peer allowlist may be replaced while it runs
 * (auth_set_members, membership changes): handshakes after the call see
 * the new list; connections admitted before are the transport's to close.
 */
#ifndef RAFTKV_AUTH_H
#define RAFTKV_AUTH_H

#include <stdint.h>

#include "raft/raft.h"

#define AUTH_KEY_SIZE 32 /* binary CURVE key */
#define AUTH_MAX_KEYS 256 /* allowlist entries */
#define AUTH_USER_MAX 24 /* user id, NUL included */

struct auth;

/*
 * Bind the ZAP endpoint in @zmq_ctx and start serving it, admitting the
 * @n public keys @keys[i] (binary, AUTH_KEY_SIZE bytes each) as members
 * @ids[i].  Must be called before any CURVE server socket of @zmq_ctx
 * accepts connections: libzmq admits everyone when no handler is bound.
 * Returns 0 and sets *@out, -EADDRINUSE (@zmq_ctx has a ZAP handler
 * already), -ENOMEM, or another -errno.
 */
int auth_new(void *zmq_ctx, const raft_id *ids,
    const uint8_t (*keys)[AUTH_KEY_SIZE], uint32_t n, struct auth **out);

/*
 * As auth_new(), for any allowlist: key @keys[i] is admitted with the ZAP
 * user id @users[i] (a string shorter than AUTH_USER_MAX), @n <=
 * AUTH_MAX_KEYS.  @what names the socket in refusal log lines ("peer",
 * "client").  Same returns as auth_new(), -EINVAL for a bad list.
 */
int auth_new_users(void *zmq_ctx, const char *what, const char *const *users,
    const uint8_t (*keys)[AUTH_KEY_SIZE], uint32_t n, struct auth **out);

/*
 * Replace the allowlist of an auth_new() handler with the members @ids
 * and their keys (any thread).  0, or -EINVAL (more than
 * RAFT_MAX_MEMBERS).
 */
int auth_set_members(struct auth *a, const raft_id *ids,
    const uint8_t (*keys)[AUTH_KEY_SIZE], uint32_t n);

/*
 * Stop the handler and free.  The thread is blocked in ZeroMQ: call
 * zmq_ctx_shutdown() on the context first (it wakes with ETERM, closes
 * its socket and exits); this joins it.  Accepts NULL.
 */
void auth_free(struct auth *a);

/* Handshakes admitted and refused so far (any thread). */
uint64_t auth_admitted(const struct auth *a);
uint64_t auth_denied(const struct auth *a);

#endif
