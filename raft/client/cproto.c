/*
 * cproto.c - client protocol encoding (layout in cproto.h).
 */
#include <string.h>

#include "raft/client/cproto.h"
#include "raft/le.h"

size_t cproto_encode_req(const struct cproto_req *r, uint8_t *buf)
{
	le_put16(buf, CPROTO_MAGIC);
	buf[2] = CPROTO_VERSION;
	buf[3] = r->op;
	le_put64(buf + 4, r->cluster_id);
	le_put64(buf + 12, r->req_id);
	le_put32(buf + 20, r->timeout_ms);
	le_put32(buf + 24, r->len);
	if (r->len)
		memcpy(buf + CPROTO_REQ_HDR, r->payload, r->len);
	return CPROTO_REQ_HDR + r->len;
}

size_t cproto_encode_rep(const struct cproto_rep *r, uint8_t *buf)
{
	le_put16(buf, CPROTO_MAGIC);
	buf[2] = CPROTO_VERSION;
	buf[3] = r->op | CPROTO_REPLY;
	le_put64(buf + 4, r->req_id);
	le_put32(buf + 12, (uint32_t)r->status);
	le_put64(buf + 16, r->leader);
	le_put32(buf + 24, r->len);
	if (r->len)
		memcpy(buf + CPROTO_REP_HDR, r->payload, r->len);
	return CPROTO_REP_HDR + r->len;
}

static int check_op(uint8_t op)
{
	return op >= CPROTO_SUBMIT && op <= CPROTO_READ_STALE ? 0 :
	    CPROTO_EBADOP;
}

bool cproto_op_is_admin(uint8_t op)
{
	return op == CPROTO_TRANSFER || op == CPROTO_FAULT;
}

int cproto_decode_req(const uint8_t *buf, size_t len, struct cproto_req *r)
{
	if (len < CPROTO_REQ_HDR || le_get16(buf) != CPROTO_MAGIC ||
	    buf[2] != CPROTO_VERSION)
		return CPROTO_EMALFORMED;
	r->op = buf[3];
	r->cluster_id = le_get64(buf + 4);
	r->req_id = le_get64(buf + 12);
	r->timeout_ms = le_get32(buf + 20);
	r->len = le_get32(buf + 24);
	if (r->len > CPROTO_MAX_PAYLOAD || len - CPROTO_REQ_HDR != r->len)
		return CPROTO_EMALFORMED;
	r->payload = buf + CPROTO_REQ_HDR;
	return check_op(r->op);
}

int cproto_decode_rep(const uint8_t *buf, size_t len, struct cproto_rep *r)
{
	if (len < CPROTO_REP_HDR || le_get16(buf) != CPROTO_MAGIC ||
	    buf[2] != CPROTO_VERSION || !(buf[3] & CPROTO_REPLY))
		return CPROTO_EMALFORMED;
	r->op = buf[3] & (uint8_t)~CPROTO_REPLY;
	r->req_id = le_get64(buf + 4);
	r->status = (int32_t)le_get32(buf + 12);
	r->leader = le_get64(buf + 16);
	r->len = le_get32(buf + 24);
	if (r->len > CPROTO_MAX_PAYLOAD || len - CPROTO_REP_HDR != r->len ||
	    r->status > 0)
		return CPROTO_EMALFORMED;
	r->payload = buf + CPROTO_REP_HDR;
	return check_op(r->op);
}

void cproto_encode_status(const struct cproto_status *s, uint8_t *buf)
{
	const uint64_t v[11] = { s->id, s->term, s->vote, s->leader, s->commit,
		s->applied, s->last_index, s->snap_index, s->log_bytes,
		s->syncs, s->entries_persisted };

	for (int i = 0; i < 11; i++)
		le_put64(buf + 8 * i, v[i]);
	buf[88] = s->role;
}

int cproto_decode_status(const uint8_t *buf, size_t len,
    struct cproto_status *s)
{
	uint64_t *v[11] = { &s->id, &s->term, &s->vote, &s->leader, &s->commit,
		&s->applied, &s->last_index, &s->snap_index, &s->log_bytes,
		&s->syncs, &s->entries_persisted };

	if (len != CPROTO_STATUS_LEN || buf[88] > 3)
		return CPROTO_EMALFORMED;
	for (int i = 0; i < 11; i++)
		*v[i] = le_get64(buf + 8 * i);
	s->role = buf[88];
	return 0;
}

void cproto_encode_fault(const struct cproto_fault *f, uint8_t *buf)
{
	le_put64(buf, f->peer);
	le_put32(buf + 8, f->drop_pct);
	le_put32(buf + 12, f->delay_ms);
	buf[16] = f->blocked;
}

int cproto_decode_fault(const uint8_t *buf, size_t len,
    struct cproto_fault *f)
{
	if (len != CPROTO_FAULT_LEN || buf[16] > 1)
		return CPROTO_EMALFORMED;
	f->peer = le_get64(buf);
	f->drop_pct = le_get32(buf + 8);
	f->delay_ms = le_get32(buf + 12);
	f->blocked = buf[16];
	return f->drop_pct <= 100 && f->delay_ms <= 60000 ? 0 :
	    CPROTO_EMALFORMED;
}
