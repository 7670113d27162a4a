/*
 * auth.c - ZAP handler admitting only the members' CURVE keys (auth.h).
 *
 * One request, one answer (RFC 27, ZAP 1.0):
 *
 *   request  "1.0", request id, domain, address, routing id, mechanism,
 *            credentials...   (CURVE: one credential, the 32-byte client key)
 *   reply    "1.0", request id, status code, status text, user id, metadata
 *
 * Anything that is not a well-formed CURVE request with a member's key gets
 * "400" (or "500" for a request we cannot make sense of), so the handler
 * fails closed: a mechanism we did not plan for is refused, not waved
 * through.  Refusals are counted and logged, at most one line a second
 * (a stranger reconnecting in a loop must not flood the log).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "raft/net/auth.h"
#include "raft/util/logging.h"
#include "raft/util/clock.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_PARTS 8 /* CURVE requests have 7 */

struct auth {
	void *sock; /* REP; the thread's after auth_new() */
	pthread_t thread;
	const char *what; /* "peer", "client": for the log */
	pthread_mutex_t mu; /* guards n, users, keys (auth_set_members) */
	uint32_t n;
	char users[AUTH_MAX_KEYS][AUTH_USER_MAX];
	uint8_t keys[AUTH_MAX_KEYS][AUTH_KEY_SIZE];
	atomic_uint_fast64_t admitted;
	atomic_uint_fast64_t denied;
	uint64_t last_log_ms; /* thread only */
	uint64_t unlogged; /* refusals since the last log line */
};

static bool part_is(zmq_msg_t *part, const char *s)
{
	size_t n = strlen(s);

	return zmq_msg_size(part) == n && memcmp(zmq_msg_data(part), s, n) == 0;
}

/* Copy a part into @buf as a NUL-terminated string, cut to @cap - 1. */
static void part_str(zmq_msg_t *part, char *buf, size_t cap)
{
	size_t n = zmq_msg_size(part);

	if (n >= cap)
		n = cap - 1;
	memcpy(buf, zmq_msg_data(part), n);
	buf[n] = '\0';
}

static void log_refusal(struct auth *a, zmq_msg_t *parts, int n,
    const char *why)
{
	char addr[64] = "?", key[41] = "?";
	uint64_t now = mono_ms();

	if (a->last_log_ms != 0 && now - a->last_log_ms < 1000) {
		a->unlogged++;
		return;
	}
	if (n > 3)
		part_str(&parts[3], addr, sizeof(addr));
	if (n == 7 && zmq_msg_size(&parts[6]) == AUTH_KEY_SIZE)
		zmq_z85_encode(key, zmq_msg_data(&parts[6]), AUTH_KEY_SIZE);
	if (a->unlogged > 0)
		log_warnx("%s handshake from %s refused: %s (key %s); %" PRIu64
		          " earlier refusals not logged",
		    a->what, addr, why, key, a->unlogged);
	else
		log_warnx("%s handshake from %s refused: %s (key %s)", a->what,
		    addr, why, key);
	a->last_log_ms = now;
	a->unlogged = 0;
}

/* Decide on one request.  Returns the status code; sets *@user (NULL:
 * refused). */
static const char *decide(struct auth *a, zmq_msg_t *parts, int n,
    const char **user, char *user_buf, const char **why)
{
	*user = NULL;
	*user_buf = '\0';
	if (n < 6 || !part_is(&parts[0], "1.0")) {
		*why = "not a ZAP 1.0 request";
		return "500";
	}
	if (!part_is(&parts[5], "CURVE")) {
		*why = "mechanism is not CURVE";
		return "400";
	}
	if (n != 7 || zmq_msg_size(&parts[6]) != AUTH_KEY_SIZE) {
		*why = "malformed CURVE credentials";
		return "400";
	}
	pthread_mutex_lock(&a->mu);
	for (uint32_t i = 0; i < a->n; i++) {
		if (memcmp(zmq_msg_data(&parts[6]), a->keys[i],
		        AUTH_KEY_SIZE) == 0) {
			memcpy(user_buf, a->users[i], AUTH_USER_MAX);
			*user = user_buf;
			break;
		}
	}
	pthread_mutex_unlock(&a->mu);
	if (*user != NULL) {
		*why = "OK";
		return "200";
	}
	*why = "key is not on the allowlist";
	return "400";
}

/* A signal must not leave a reply half sent (REP would be stuck). */
static int send_part(void *sock, const void *buf, size_t len, int flags)
{
	int rv;

	while (
	    (rv = zmq_send(sock, buf, len, flags)) < 0 && zmq_errno() == EINTR)
		;
	return rv;
}

/* Answer one request.  Returns 0, or -1 (errno set: ETERM at shutdown). */
static int reply(struct auth *a, zmq_msg_t *parts, int n)
{
	const char *why, *status, *user;
	char user_buf[AUTH_USER_MAX];
	size_t rid_len = n > 1 ? zmq_msg_size(&parts[1]) : 0;
	const void *rid = n > 1 ? zmq_msg_data(&parts[1]) : "";

	status = decide(a, parts, n, &user, user_buf, &why);
	if (user != NULL) {
		atomic_fetch_add(&a->admitted, 1);
	} else {
		user = "";
		atomic_fetch_add(&a->denied, 1);
		log_refusal(a, parts, n, why);
	}
	if (send_part(a->sock, "1.0", 3, ZMQ_SNDMORE) < 0 ||
	    send_part(a->sock, rid, rid_len, ZMQ_SNDMORE) < 0 ||
	    send_part(a->sock, status, 3, ZMQ_SNDMORE) < 0 ||
	    send_part(a->sock, why, strlen(why), ZMQ_SNDMORE) < 0 ||
	    send_part(a->sock, user, strlen(user), ZMQ_SNDMORE) < 0 ||
	    send_part(a->sock, "", 0, 0) < 0)
		return -1;
	return 0;
}

/* Receive one request (all its parts).  Returns the number of parts kept
 * (extra ones are discarded), or -1 (errno set: ETERM at shutdown). */
static int receive(struct auth *a, zmq_msg_t *parts)
{
	int n = 0, more = 1;
	zmq_msg_t extra;

	while (more) {
		zmq_msg_t *part = n < ZAP_MAX_PARTS ? &parts[n] : &extra;

		zmq_msg_init(part);
		if (zmq_msg_recv(part, a->sock, 0) < 0) {
			int err = zmq_errno();

			zmq_msg_close(part);
			if (err == EINTR)
				continue;
			for (int i = 0; i < n; i++)
				zmq_msg_close(&parts[i]);
			errno = err; /* what zmq_errno() reports to serve() */
			return -1;
		}
		more = zmq_msg_more(part);
		if (part == &extra)
			zmq_msg_close(&extra);
		else
			n++;
	}
	return n;
}

/*
 * Serve until the context shuts down.  Any other failure is logged and the
 * loop goes on: libzmq admits every CURVE key when no handler is bound, so
 * the handler must not go away while the ROUTER lives.  (The transport
 * would still refuse every frame of such a connection, as it would carry
 * no member's user id; this keeps the refusal at the handshake.)
 */
static void *serve(void *arg)
{
	struct auth *a = arg;
	zmq_msg_t parts[ZAP_MAX_PARTS];

	for (;;) {
		int n = receive(a, parts);
		int rv = n < 0 ? -1 : reply(a, parts, n);

		for (int i = 0; i < n; i++)
			zmq_msg_close(&parts[i]);
		if (rv < 0 && zmq_errno() == ETERM)
			break;
		if (rv < 0) {
			/* Unexpected: say so, and never spin on it. */
			log_warnx("ZAP handler: %s", zmq_strerror(zmq_errno()));
			nanosleep(&(struct timespec){ .tv_nsec = 100000000 },
			    NULL);
		}
	}
	zmq_close(a->sock);
	return NULL;
}

int auth_new(void *zmq_ctx, const raft_id *ids,
    const uint8_t (*keys)[AUTH_KEY_SIZE], uint32_t n, struct auth **out)
{
	char names[RAFT_MAX_MEMBERS][AUTH_USER_MAX];
	const char *users[RAFT_MAX_MEMBERS];

	if (n > RAFT_MAX_MEMBERS)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "%" PRIu64, ids[i]);
		users[i] = names[i];
	}
	return auth_new_users(zmq_ctx, "peer", users, keys, n, out);
}

int auth_new_users(void *zmq_ctx, const char *what, const char *const *users,
    const uint8_t (*keys)[AUTH_KEY_SIZE], uint32_t n, struct auth **out)
{
	struct auth *a;
	int linger = 0, rv;

	if (n > AUTH_MAX_KEYS)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (users[i] == NULL || users[i][0] == '\0' ||
		    strlen(users[i]) >= AUTH_USER_MAX)
			return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a->what = what;
	pthread_mutex_init(&a->mu, NULL);
	a->n = n;
	for (uint32_t i = 0; i < n; i++)
		strcpy(a->users[i], users[i]);
	memcpy(a->keys, keys, n * sizeof(*keys));
	a->sock = zmq_socket(zmq_ctx, ZMQ_REP);
	if (a->sock == NULL) {
		rv = -zmq_errno();
		goto err_after_alloc;
	}
	zmq_setsockopt(a->sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_bind(a->sock, ZAP_ENDPOINT) != 0) {
		rv = -zmq_errno();
		goto err_after_socket;
	}
	rv = -pthread_create(&a->thread, NULL, serve, a);
	if (rv != 0)
		goto err_after_socket;
	*out = a;
	return 0;

err_after_socket:
	zmq_close(a->sock);
err_after_alloc:
	pthread_mutex_destroy(&a->mu);
	free(a);
	return rv;
}

int auth_set_members(struct auth *a, const raft_id *ids,
    const uint8_t (*keys)[AUTH_KEY_SIZE], uint32_t n)
{
	if (n > RAFT_MAX_MEMBERS)
		return -EINVAL;
	pthread_mutex_lock(&a->mu);
	a->n = n;
	for (uint32_t i = 0; i < n; i++) {
		snprintf(a->users[i], sizeof(a->users[i]), "%" PRIu64, ids[i]);
		memcpy(a->keys[i], keys[i], AUTH_KEY_SIZE);
	}
	pthread_mutex_unlock(&a->mu);
	return 0;
}

void auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	pthread_join(a->thread, NULL);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

uint64_t auth_admitted(const struct auth *a)
{
	return a == NULL ? 0 : atomic_load(&((struct auth *)a)->admitted);
}

uint64_t auth_denied(const struct auth *a)
{
	return a == NULL ? 0 : atomic_load(&((struct auth *)a)->denied);
}
