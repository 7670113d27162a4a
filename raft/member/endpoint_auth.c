/*
 * endpoint_auth.c - CURVE and the credential allowlist on a member's
 * client endpoint (see endpoint_auth.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "raft/member/endpoint_auth.h"
#include "raft/net/auth.h"

#define ENDPOINT_ZAP_DOMAIN "raftkv-client"

void endpoint_auth_from_cluster(struct endpoint_auth *a,
    const struct cluster *cl, const char *secret)
{
	memset(a, 0, sizeof(*a));
	if (secret == NULL || secret[0] == '\0' || !cl->curve)
		return;
	snprintf(a->secret, sizeof(a->secret), "%s", secret);
	a->n_creds = cl->n_creds;
	memcpy(a->creds, cl->creds, cl->n_creds * sizeof(cl->creds[0]));
}

int endpoint_auth_apply(void *zctx, void *sock, const struct endpoint_auth *a,
    struct auth **out, char *err, size_t errlen)
{
	uint8_t keys[CLUSTER_MAX_CREDS][AUTH_KEY_SIZE], secret[AUTH_KEY_SIZE];
	const char *users[CLUSTER_MAX_CREDS];
	int one = 1, rv;

	*out = NULL;
	if (a == NULL || a->secret[0] == '\0')
		return 0;
	if (!zmq_has("curve")) {
		snprintf(err, errlen, "client endpoint: libzmq has no CURVE");
		return -ENOTSUP;
	}
	for (uint32_t i = 0; i < a->n_creds; i++) {
		if (zmq_z85_decode(keys[i], a->creds[i].key) == NULL) {
			snprintf(err, errlen,
			    "client endpoint: bad credential "
			    "key %s",
			    a->creds[i].key);
			return -EINVAL;
		}
		users[i] = a->creds[i].role == CLUSTER_ADMIN ? "admin"
		                                             : "client";
	}
	/* The handler first: a CURVE server without one admits anyone. */
	rv = auth_new_users(zctx, "client", users,
	    (const uint8_t(*)[AUTH_KEY_SIZE])keys, a->n_creds, out);
	if (rv != 0) {
		snprintf(err, errlen,
		    "client endpoint: cannot start the "
		    "authentication handler: %s",
		    strerror(-rv));
		return rv;
	}
	if (zmq_z85_decode(secret, a->secret) == NULL ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, sizeof(secret)) !=
	        0 ||
	    zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ENDPOINT_ZAP_DOMAIN,
	        strlen(ENDPOINT_ZAP_DOMAIN)) != 0) {
		explicit_bzero(secret, sizeof(secret));
		snprintf(err, errlen, "client endpoint: cannot set up CURVE");
		return -EINVAL; /* the caller shuts the context down */
	}
	explicit_bzero(secret, sizeof(secret));
	return 0;
}

bool endpoint_auth_is_admin(zmq_msg_t *msg)
{
	const char *uid = zmq_msg_gets(msg, "User-Id");

	return uid != NULL && strcmp(uid, "admin") == 0;
}
