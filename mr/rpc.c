/*
 * rpc.c - msg.h messages over ZeroMQ ROUTER/REQ (see rpc.h).
 */
#include "mr/rpc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "mr/xmem.h"

struct rpc_server {
	void *ctx, *sock;
	char endpoint[256];
	uint8_t id[256];
	size_t idlen;
	uint8_t *buf, *out;
};

struct rpc_client {
	void *ctx, *sock;
	char *endpoint;
	uint8_t *buf, *out;
};

struct rpc_server *rpc_server_new(const char *endpoint)
{
	struct rpc_server *s = xcalloc(1, sizeof(*s));
	size_t len = sizeof(s->endpoint);
	int zero = 0, e;

	s->ctx = zmq_ctx_new();
	s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
	if (s->sock == NULL)
		goto err;
	zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_bind(s->sock, endpoint) < 0 ||
	    zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len) < 0)
		goto err;
	s->buf = xmalloc(MSG_MAX);
	s->out = xmalloc(MSG_MAX);
	return s;
err:
	e = errno;
	rpc_server_free(s);
	errno = e;
	return NULL;
}

void rpc_server_free(struct rpc_server *s)
{
	if (s == NULL)
		return;
	if (s->sock)
		zmq_close(s->sock);
	if (s->ctx)
		zmq_ctx_term(s->ctx);
	free(s->buf);
	free(s->out);
	free(s);
}

const char *rpc_server_endpoint(const struct rpc_server *s)
{
	return s->endpoint;
}

/* Receive the rest of a multipart message and throw it away. */
static void drain(void *sock)
{
	int more = 1;
	size_t len = sizeof(more);
	zmq_msg_t part;

	while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more) {
		zmq_msg_init(&part);
		zmq_msg_recv(&part, sock, 0);
		zmq_msg_close(&part);
		len = sizeof(more);
	}
}

int rpc_server_recv(struct rpc_server *s, struct msg *m, int timeout_ms)
{
	zmq_pollitem_t it = { .socket = s->sock, .events = ZMQ_POLLIN };
	int n, rc;

	rc = zmq_poll(&it, 1, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc == 0)
		return 0;
	/* [identity][empty][payload] */
	n = zmq_recv(s->sock, s->id, sizeof(s->id), 0);
	if (n < 0)
		return -errno;
	if ((size_t)n > sizeof(s->id))
		goto bad;
	s->idlen = (size_t)n;
	n = zmq_recv(s->sock, s->buf, MSG_MAX, ZMQ_DONTWAIT);
	if (n != 0)
		goto bad;
	n = zmq_recv(s->sock, s->buf, MSG_MAX, ZMQ_DONTWAIT);
	if (n < 0 || n > (int)MSG_MAX)
		goto bad;
	drain(s->sock);
	if (msg_decode(m, s->buf, (size_t)n) < 0)
		return -EBADMSG;
	return 1;
bad:
	drain(s->sock);
	return -EBADMSG;
}

int rpc_server_reply(struct rpc_server *s, const struct msg *m)
{
	int n = msg_encode(m, s->out, MSG_MAX);

	if (n < 0)
		return n;
	if (zmq_send(s->sock, s->id, s->idlen, ZMQ_SNDMORE) < 0 ||
	    zmq_send(s->sock, "", 0, ZMQ_SNDMORE) < 0 ||
	    zmq_send(s->sock, s->out, (size_t)n, 0) < 0)
		return -errno;
	return 0;
}

static int client_connect(struct rpc_client *c)
{
	int zero = 0;

	c->sock = zmq_socket(c->ctx, ZMQ_REQ);
	if (c->sock == NULL)
		return -errno;
	zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(c->sock, c->endpoint) < 0) {
		int e = errno;

		zmq_close(c->sock);
		c->sock = NULL;
		return -e;
	}
	return 0;
}

struct rpc_client *rpc_client_new(const char *endpoint)
{
	struct rpc_client *c = xcalloc(1, sizeof(*c));
	int rc;

	c->endpoint = xstrdup(endpoint);
	c->ctx = zmq_ctx_new();
	if (c->ctx == NULL) {
		rpc_client_free(c);
		return NULL;
	}
	rc = client_connect(c);
	if (rc < 0) {
		rpc_client_free(c);
		errno = -rc;
		return NULL;
	}
	c->buf = xmalloc(MSG_MAX);
	c->out = xmalloc(MSG_MAX);
	return c;
}

void rpc_client_free(struct rpc_client *c)
{
	if (c == NULL)
		return;
	if (c->sock)
		zmq_close(c->sock);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	free(c->endpoint);
	free(c->buf);
	free(c->out);
	free(c);
}

int rpc_call(struct rpc_client *c, const struct msg *req, struct msg *rep,
    int timeout_ms)
{
	zmq_pollitem_t it;
	int n, rc;

	if (c->sock == NULL && (rc = client_connect(c)) < 0)
		return rc;
	n = msg_encode(req, c->out, MSG_MAX);
	if (n < 0)
		return n;
	if (zmq_send(c->sock, c->out, (size_t)n, 0) < 0)
		goto reset;
	it.socket = c->sock;
	it.fd = 0;
	it.events = ZMQ_POLLIN;
	it.revents = 0;
	do {
		rc = zmq_poll(&it, 1, timeout_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc <= 0)
		goto reset;
	n = zmq_recv(c->sock, c->buf, MSG_MAX, 0);
	if (n < 0)
		goto reset;
	drain(c->sock);
	if (n > (int)MSG_MAX)
		return -EBADMSG;
	return msg_decode(rep, c->buf, (size_t)n) < 0 ? -EBADMSG : 0;
reset:
	zmq_close(c->sock);
	c->sock = NULL;
	return -ETIMEDOUT;
}
