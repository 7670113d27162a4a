/*
 * cproto.c - client protocol encoding (layout in cproto.h), on the byte
 * cursors of raft/buf.h.
 */
#include <assert.h>

#include "raft/buf.h"
#include "raft/client/cproto.h"

size_t cproto_encode_req(const struct cproto_req *r, uint8_t *buf)
{
	struct buf_writer w;

	buf_writer_init(&w, buf, CPROTO_REQ_HDR + (size_t)r->len);
	buf_put_u16(&w, CPROTO_MAGIC);
	buf_put_u8(&w, CPROTO_VERSION);
	buf_put_u8(&w, r->op);
	buf_put_u64(&w, r->cluster_id);
	buf_put_u64(&w, r->req_id);
	buf_put_u32(&w, r->timeout_ms);
	buf_put_u32(&w, r->len);
	buf_put_bytes(&w, r->payload, r->len);
	assert(buf_writer_full(&w));
	return CPROTO_REQ_HDR + r->len;
}

size_t cproto_encode_rep(const struct cproto_rep *r, uint8_t *buf)
{
	struct buf_writer w;

	buf_writer_init(&w, buf, CPROTO_REP_HDR + (size_t)r->len);
	buf_put_u16(&w, CPROTO_MAGIC);
	buf_put_u8(&w, CPROTO_VERSION);
	buf_put_u8(&w, r->op | CPROTO_REPLY);
	buf_put_u64(&w, r->req_id);
	buf_put_u32(&w, (uint32_t)r->status);
	buf_put_u64(&w, r->leader);
	buf_put_u32(&w, r->len);
	buf_put_bytes(&w, r->payload, r->len);
	assert(buf_writer_full(&w));
	return CPROTO_REP_HDR + r->len;
}

static int check_op(uint8_t op)
{
	return op >= CPROTO_SUBMIT && op <= CPROTO_READ_STALE ? 0
	                                                      : CPROTO_EBADOP;
}

bool cproto_op_is_admin(uint8_t op)
{
	return op == CPROTO_TRANSFER || op == CPROTO_FAULT;
}

int cproto_decode_req(const uint8_t *buf, size_t len, struct cproto_req *r)
{
	struct buf_reader rd;

	buf_reader_init(&rd, buf, len);
	if (buf_get_u16(&rd) != CPROTO_MAGIC ||
	    buf_get_u8(&rd) != CPROTO_VERSION)
		return CPROTO_EMALFORMED;
	r->op = buf_get_u8(&rd);
	r->cluster_id = buf_get_u64(&rd);
	r->req_id = buf_get_u64(&rd);
	r->timeout_ms = buf_get_u32(&rd);
	r->len = buf_get_u32(&rd);
	if (rd.err || r->len > CPROTO_MAX_PAYLOAD ||
	    buf_reader_left(&rd) != r->len)
		return CPROTO_EMALFORMED;
	r->payload = rd.p;
	return check_op(r->op);
}

int cproto_decode_rep(const uint8_t *buf, size_t len, struct cproto_rep *r)
{
	struct buf_reader rd;
	uint8_t op;

	buf_reader_init(&rd, buf, len);
	if (buf_get_u16(&rd) != CPROTO_MAGIC ||
	    buf_get_u8(&rd) != CPROTO_VERSION)
		return CPROTO_EMALFORMED;
	op = buf_get_u8(&rd);
	if (!(op & CPROTO_REPLY))
		return CPROTO_EMALFORMED;
	r->op = op & (uint8_t)~CPROTO_REPLY;
	r->req_id = buf_get_u64(&rd);
	r->status = (int32_t)buf_get_u32(&rd);
	r->leader = buf_get_u64(&rd);
	r->len = buf_get_u32(&rd);
	if (rd.err || r->len > CPROTO_MAX_PAYLOAD ||
	    buf_reader_left(&rd) != r->len || r->status > 0)
		return CPROTO_EMALFORMED;
	r->payload = rd.p;
	return check_op(r->op);
}

void cproto_encode_status(const struct cproto_status *s, uint8_t *buf)
{
	const uint64_t v[11] = { s->id, s->term, s->vote, s->leader, s->commit,
		s->applied, s->last_index, s->snap_index, s->log_bytes,
		s->syncs, s->entries_persisted };
	struct buf_writer w;

	buf_writer_init(&w, buf, CPROTO_STATUS_LEN);
	for (int i = 0; i < 11; i++)
		buf_put_u64(&w, v[i]);
	buf_put_u8(&w, s->role);
	assert(buf_writer_full(&w));
}

int cproto_decode_status(const uint8_t *buf, size_t len,
    struct cproto_status *s)
{
	uint64_t *v[11] = { &s->id, &s->term, &s->vote, &s->leader, &s->commit,
		&s->applied, &s->last_index, &s->snap_index, &s->log_bytes,
		&s->syncs, &s->entries_persisted };
	struct buf_reader rd;

	if (len != CPROTO_STATUS_LEN || buf[88] > 3)
		return CPROTO_EMALFORMED;
	buf_reader_init(&rd, buf, len);
	for (int i = 0; i < 11; i++)
		*v[i] = buf_get_u64(&rd);
	s->role = buf_get_u8(&rd);
	return 0;
}

void cproto_encode_fault(const struct cproto_fault *f, uint8_t *buf)
{
	struct buf_writer w;

	buf_writer_init(&w, buf, CPROTO_FAULT_LEN);
	buf_put_u64(&w, f->peer);
	buf_put_u32(&w, f->drop_pct);
	buf_put_u32(&w, f->delay_ms);
	buf_put_u8(&w, f->blocked);
	assert(buf_writer_full(&w));
}

int cproto_decode_fault(const uint8_t *buf, size_t len, struct cproto_fault *f)
{
	struct buf_reader rd;

	if (len != CPROTO_FAULT_LEN || buf[16] > 1)
		return CPROTO_EMALFORMED;
	buf_reader_init(&rd, buf, len);
	f->peer = buf_get_u64(&rd);
	f->drop_pct = buf_get_u32(&rd);
	f->delay_ms = buf_get_u32(&rd);
	f->blocked = buf_get_u8(&rd);
	return f->drop_pct <= 100 && f->delay_ms <= 60000 ? 0
	                                                  : CPROTO_EMALFORMED;
}
