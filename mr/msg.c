/*
 * msg.c - the coordinator <-> worker wire codec (see msg.h).
 */
#include "mr/msg.h"

#include <errno.h>
#include <string.h>

#include "raft/le.h"

static int type_ok(int t)
{
	return (t >= MSG_GET && t <= MSG_FAIL) ||
	    (t >= MSG_TASK && t <= MSG_ABANDON);
}

int msg_encode(const struct msg *m, uint8_t *buf, size_t size)
{
	size_t len = MSG_HDR + (size_t)m->s1len + m->s2len;

	if (!type_ok(m->type) || m->phase > MSG_PHASE_REDUCE)
		return -EINVAL;
	if (m->s1len > MSG_STR_MAX || m->s2len > MSG_STR_MAX || len > size)
		return -EMSGSIZE;
	memset(buf, 0, MSG_HDR);
	buf[0] = 'M';
	buf[1] = 'R';
	buf[2] = MSG_VERSION;
	buf[3] = m->type;
	buf[4] = m->phase;
	le_put32(buf + 8, m->task);
	le_put32(buf + 12, m->attempt);
	le_put32(buf + 16, m->nmap);
	le_put32(buf + 20, m->nreduce);
	le_put32(buf + 24, m->wait_ms);
	le_put64(buf + 28, m->off);
	le_put64(buf + 36, m->len);
	le_put64(buf + 44, m->bytes_in);
	le_put64(buf + 52, m->bytes_out);
	le_put32(buf + 60, m->s1len);
	le_put32(buf + 64, m->s2len);
	if (m->s1len)
		memcpy(buf + MSG_HDR, m->s1, m->s1len);
	if (m->s2len)
		memcpy(buf + MSG_HDR + m->s1len, m->s2, m->s2len);
	return (int)len;
}

int msg_decode(struct msg *m, const uint8_t *buf, size_t len)
{
	memset(m, 0, sizeof(*m));
	if (len < MSG_HDR || len > MSG_MAX || buf[0] != 'M' || buf[1] != 'R' ||
	    buf[2] != MSG_VERSION || !type_ok(buf[3]) ||
	    buf[4] > MSG_PHASE_REDUCE || buf[5] || buf[6] || buf[7])
		return -EBADMSG;
	m->type = buf[3];
	m->phase = buf[4];
	m->task = le_get32(buf + 8);
	m->attempt = le_get32(buf + 12);
	m->nmap = le_get32(buf + 16);
	m->nreduce = le_get32(buf + 20);
	m->wait_ms = le_get32(buf + 24);
	m->off = le_get64(buf + 28);
	m->len = le_get64(buf + 36);
	m->bytes_in = le_get64(buf + 44);
	m->bytes_out = le_get64(buf + 52);
	m->s1len = le_get32(buf + 60);
	m->s2len = le_get32(buf + 64);
	if (m->s1len > MSG_STR_MAX || m->s2len > MSG_STR_MAX ||
	    len != MSG_HDR + (size_t)m->s1len + m->s2len) {
		memset(m, 0, sizeof(*m));
		return -EBADMSG;
	}
	m->s1 = (const char *)buf + MSG_HDR;
	m->s2 = (const char *)buf + MSG_HDR + m->s1len;
	return 0;
}

const char *msg_type_name(int type)
{
	switch (type) {
	case MSG_GET:
		return "GET";
	case MSG_HEARTBEAT:
		return "HEARTBEAT";
	case MSG_DONE:
		return "DONE";
	case MSG_FAIL:
		return "FAIL";
	case MSG_TASK:
		return "TASK";
	case MSG_WAIT:
		return "WAIT";
	case MSG_EXIT:
		return "EXIT";
	case MSG_OK:
		return "OK";
	case MSG_ABANDON:
		return "ABANDON";
	}
	return "?";
}
