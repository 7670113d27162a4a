/*
 * cproto.c - client protocol encoding (layout in cproto.h), on the byte
 * cursors of raft/buf.h.
 */
#include <assert.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/buf.h"
#include "raft/le.h"
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
	return op >= CPROTO_SUBMIT && op <= CPROTO_MEMBER ? 0 : CPROTO_EBADOP;
}

static uint32_t config_n(const struct cproto_member_list *l)
{
	return l->conf.n_voters + l->conf.n_learners;
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

int cproto_encode_member_req(const struct cproto_member_req *r, uint8_t **out,
    uint32_t *len)
{
	struct memberdir d = { 0 };
	uint8_t *dir = NULL, *buf;
	uint32_t dlen = 0;

	if (r->action == CPROTO_MEMBER_ADD) {
		d.n = 1;
		d.m[0] = r->entry;
		if (memberdir_encode(&d, &dir, &dlen) != 0)
			return -ENOMEM;
	}
	buf = malloc(9 + dlen);
	if (buf == NULL) {
		free(dir);
		return -ENOMEM;
	}
	buf[0] = r->action;
	le_put64(buf + 1, r->id);
	if (dlen > 0)
		memcpy(buf + 9, dir, dlen);
	free(dir);
	*out = buf;
	*len = 9 + dlen;
	return 0;
}

int cproto_decode_member_req(const uint8_t *buf, size_t len,
    struct cproto_member_req *r)
{
	struct memberdir *d;
	int rv = 0;

	memset(r, 0, sizeof(*r));
	if (len < 9 || buf[0] < CPROTO_MEMBER_LIST ||
	    buf[0] > CPROTO_MEMBER_REMOVE)
		return CPROTO_EMALFORMED;
	r->action = buf[0];
	r->id = le_get64(buf + 1);
	if (r->action != CPROTO_MEMBER_ADD)
		return len == 9 ? 0 : CPROTO_EMALFORMED;
	d = malloc(sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	if (memberdir_decode(buf + 9, len - 9, d) != 0 || d->n != 1 ||
	    d->m[0].id != r->id)
		rv = CPROTO_EMALFORMED;
	else
		r->entry = d->m[0];
	free(d);
	return rv;
}

int cproto_encode_member_list(const struct cproto_member_list *l, uint8_t **out,
    uint32_t *len)
{
	uint32_t n = config_n(l), head = 8 + 2 + 8 * n, dlen;
	uint8_t *dir, *buf, *p;

	if (memberdir_encode(&l->dir, &dir, &dlen) != 0)
		return -ENOMEM;
	buf = malloc(head + dlen);
	if (buf == NULL) {
		free(dir);
		return -ENOMEM;
	}
	p = buf;
	le_put64(p, l->conf_index);
	p += 8;
	*p++ = (uint8_t)l->conf.n_voters;
	for (uint32_t i = 0; i < l->conf.n_voters; i++, p += 8)
		le_put64(p, l->conf.voters[i]);
	*p++ = (uint8_t)l->conf.n_learners;
	for (uint32_t i = 0; i < l->conf.n_learners; i++, p += 8)
		le_put64(p, l->conf.learners[i]);
	memcpy(p, dir, dlen);
	free(dir);
	*out = buf;
	*len = head + dlen;
	return 0;
}

int cproto_decode_member_list(const uint8_t *buf, size_t len,
    struct cproto_member_list *l)
{
	const uint8_t *p = buf, *end = buf + len;

	memset(l, 0, sizeof(*l));
	if (len < 9)
		return CPROTO_EMALFORMED;
	l->conf_index = le_get64(p);
	p += 8;
	l->conf.n_voters = *p++;
	if (l->conf.n_voters > RAFT_MAX_MEMBERS ||
	    (size_t)(end - p) < 8u * l->conf.n_voters + 1)
		return CPROTO_EMALFORMED;
	for (uint32_t i = 0; i < l->conf.n_voters; i++, p += 8)
		l->conf.voters[i] = le_get64(p);
	l->conf.n_learners = *p++;
	if (l->conf.n_learners + l->conf.n_voters > RAFT_MAX_MEMBERS ||
	    (size_t)(end - p) < 8u * l->conf.n_learners)
		return CPROTO_EMALFORMED;
	for (uint32_t i = 0; i < l->conf.n_learners; i++, p += 8)
		l->conf.learners[i] = le_get64(p);
	if (memberdir_decode(p, (size_t)(end - p), &l->dir) != 0)
		return CPROTO_EMALFORMED;
	return 0;
}
