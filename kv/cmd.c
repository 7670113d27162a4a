/*
 * cmd.c - encoding and decoding of KV commands and results.
 *
 * One table (field_layout) says which fields each op type carries; the
 * encoder, the decoder and the size computation all walk it, so the three
 * cannot disagree.  The encoder validates its input with the same checks
 * the decoder applies (check_op), which is what makes decode(encode(x))
 * succeed for every encodable x and encode(decode(b)) == b for every
 * accepted b.
 *
 * A decoded TXN is validated in full before kv_cmd_decode() returns; its
 * compares and ops are then walked again lazily by the iterators, which can
 * skip every check because the bytes are known to be good.  That keeps the
 * decoder free of allocations (a txn may hold KV_TXN_MAX ops).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv/cmd.h"
#include "raft/buf.h"

#define HEADER_BYTES 28u
#define TIME_OFFSET 20u /* of time_ns in the header */
#define RESULT_FIXED_BYTES (24u + KV_ATTR_BYTES) /* 81 */
#define META_BYTES 13u

/* Fields of an op body, in encoding order. */
enum {
	F_FLAGS = 1u << 0,
	F_VERSION = 1u << 1,
	F_ARG = 1u << 2,
	F_MASK = 1u << 3,
	F_META = 1u << 4,
	F_MTIME = 1u << 5,
	F_KEY = 1u << 6,
	F_KEY2 = 1u << 7,
	F_DATA = 1u << 8,
	F_LOCK = 1u << 9, /* the lock body (cmd.h), flags included */
};

#define LOCK_BODY_FIXED 54u /* the lock body without the key bytes */

static const uint16_t field_layout[KV_OP_TYPE_MAX + 1] = {
	[KV_OP_GET] = F_KEY,
	[KV_OP_PUT] = F_FLAGS | F_VERSION | F_META | F_KEY | F_DATA,
	[KV_OP_DELETE] = F_FLAGS | F_VERSION | F_KEY,
	[KV_OP_WRITE] = F_FLAGS | F_VERSION | F_ARG | F_KEY | F_DATA,
	[KV_OP_TRUNCATE] = F_FLAGS | F_VERSION | F_ARG | F_KEY,
	[KV_OP_SETMETA] = F_FLAGS | F_VERSION | F_MASK | F_META | F_MTIME |
	    F_KEY,
	[KV_OP_RENAME] = F_FLAGS | F_VERSION | F_KEY | F_KEY2,
	[KV_OP_LINK] = F_FLAGS | F_VERSION | F_KEY | F_KEY2,
	[KV_OP_LOCK] = F_LOCK,
	[KV_OP_UNLOCK] = F_LOCK,
	[KV_OP_UNLOCK_OWNER] = F_LOCK,
	[KV_OP_CANCEL] = F_LOCK,
	[KV_OP_GETLK] = F_LOCK,
	[KV_OP_FENCE] = F_LOCK,
	[KV_OP_OPEN] = F_LOCK,
	[KV_OP_CLOSE] = F_LOCK,
};

static const uint32_t allowed_flags[KV_OP_TYPE_MAX + 1] = {
	[KV_OP_PUT] = KV_F_ANYVER | KV_F_SETMETA,
	[KV_OP_DELETE] = KV_F_ANYVER,
	[KV_OP_WRITE] = KV_F_ANYVER,
	[KV_OP_TRUNCATE] = KV_F_ANYVER,
	[KV_OP_SETMETA] = KV_F_ANYVER,
	[KV_OP_RENAME] = KV_F_ANYVER | KV_F_TREE,
	[KV_OP_LINK] = KV_F_ANYVER,
	[KV_OP_LOCK] = KV_F_WAIT,
};

static const char *const status_names[KV_STATUS_COUNT] = {
	[KV_OK] = "OK",
	[KV_ENOKEY] = "ErrNoKey",
	[KV_EVERSION] = "ErrVersion",
	[KV_ESTALE] = "ErrStale",
	[KV_ESESSION] = "ErrSession",
	[KV_EMALFORMED] = "ErrMalformed",
	[KV_ETOOBIG] = "ErrTooBig",
	[KV_EINVAL] = "ErrInvalid",
	[KV_ENOSPC] = "ErrNoSpace",
	[KV_ELOCKED] = "ErrLocked",
	[KV_EFENCED] = "ErrFenced",
	[KV_EQUEUED] = "Queued",
	[KV_ENOLOCK] = "ErrNoLock",
};

const char *kv_status_name(int status)
{
	if (status < 0 || status >= KV_STATUS_COUNT ||
	    status_names[status] == NULL)
		return "unknown";
	return status_names[status];
}

void kv_result_init(struct kv_result *r)
{
	memset(r, 0, sizeof(*r));
	r->fail_cmp = KV_NO_INDEX;
	r->fail_op = KV_NO_INDEX;
}

void kv_result_release(struct kv_result *r)
{
	if (r == NULL)
		return;
	free(r->value);
	kv_result_init(r);
}

/* ------------------------------------------------------------------------
 * Validation (shared by the encoder and the decoder)
 * ------------------------------------------------------------------------ */

/* A key op: GET..RENAME, LINK. */
static bool is_key_op(uint8_t type)
{
	return (type >= KV_OP_GET && type <= KV_OP_RENAME) ||
	    type == KV_OP_LINK;
}

/* A key op that changes the key space (PUT..RENAME, LINK). */
static bool is_mutation(uint8_t type)
{
	return is_key_op(type) && type != KV_OP_GET;
}

/* An op with a body: the key ops, the lock ops but KEEPALIVE, and the
 * open table's OPEN and CLOSE. */
static bool has_body(uint8_t type)
{
	return is_key_op(type) ||
	    (type >= KV_OP_LOCK && type <= KV_OP_CLOSE &&
	        type != KV_OP_KEEPALIVE);
}

/* An op of a registration TXN (cmd.h: OPEN, CLOSE). */
static bool is_open_op(uint8_t type)
{
	return type == KV_OP_OPEN || type == KV_OP_CLOSE;
}

static bool key_valid(const void *key, uint32_t len);

/* The lock body of @op (a lock op), per the table of cmd.h. */
static bool check_lock(const struct kv_op *op, bool in_txn)
{
	bool posix = op->lkind == KV_LK_POSIX;
	bool range_ok = posix ? op->start <= op->end
	                      : op->start == 0 && op->end == 0;
	bool mode_ok = op->lmode == KV_LK_SHARED || op->lmode == KV_LK_EXCL;
	bool kind_ok = op->lkind == KV_LK_FLOCK || posix;

	if (in_txn != (op->type == KV_OP_FENCE || is_open_op(op->type)))
		return false;
	if (is_open_op(op->type))
		return op->keylen == 0 && op->inode != 0 && op->lkind == 0 &&
		    op->lmode == 0 && op->flags == 0 && op->start == 0 &&
		    op->end == 0 && op->owner == 0 && op->pid == 0 &&
		    op->token == 0;
	/* A key, when given, obeys the rules of every other key. */
	if (op->keylen != 0 && !key_valid(op->key, op->keylen))
		return false;
	if (op->keylen == 0 && (op->inode == 0 || op->type == KV_OP_LOCK))
		return false;
	if (op->flags & ~allowed_flags[op->type])
		return false;
	switch (op->type) {
	case KV_OP_LOCK:
		return kind_ok && mode_ok && range_ok && op->token == 0;
	case KV_OP_UNLOCK:
	case KV_OP_CANCEL:
		return kind_ok && op->lmode == 0 && range_ok && op->pid == 0 &&
		    op->token == 0;
	case KV_OP_UNLOCK_OWNER:
		return (op->lkind == 0 || kind_ok) && op->lmode == 0 &&
		    op->start == 0 && op->end == 0 && op->pid == 0 &&
		    op->token == 0;
	case KV_OP_GETLK:
		return kind_ok && mode_ok && range_ok && op->pid == 0 &&
		    op->token == 0;
	case KV_OP_FENCE:
		return op->lkind == 0 && op->lmode == 0 && op->start == 0 &&
		    op->end == 0 && op->owner == 0 && op->pid == 0 &&
		    op->token != 0;
	default:
		return false;
	}
}

static bool kind_valid(uint8_t kind)
{
	return kind >= KV_KIND_FILE && kind <= KV_KIND_SYMLINK;
}

static bool key_valid(const void *key, uint32_t len)
{
	return len >= 1 && len <= KV_KEY_MAX && key != NULL;
}

/* Everything about @op that does not depend on the state. */
static bool check_op(const struct kv_op *op, bool in_txn)
{
	uint16_t f;

	if (!has_body(op->type))
		return false;
	f = field_layout[op->type];
	if (f & F_LOCK)
		return check_lock(op, in_txn);
	if (in_txn && !is_mutation(op->type))
		return false;
	if ((f & F_FLAGS) && (op->flags & ~allowed_flags[op->type]))
		return false;
	if (!key_valid(op->key, op->keylen))
		return false;
	if ((f & F_KEY2) && !key_valid(op->key2, op->key2len))
		return false;
	if ((f & F_DATA) &&
	    (op->datalen > KV_VALUE_MAX ||
	        (op->data == NULL && op->datalen != 0)))
		return false;
	if ((f & F_MASK) && (op->mask & ~KV_META_ALL))
		return false;
	if (f & F_META) {
		if (op->meta.mode & ~KV_MODE_MASK)
			return false;
		if (op->type == KV_OP_SETMETA && !(op->mask & KV_META_KIND)) {
			if (op->meta.kind != 0)
				return false;
		} else if (!kind_valid(op->meta.kind)) {
			return false;
		}
	}
	return true;
}

static uint64_t op_body_size(const struct kv_op *op)
{
	uint16_t f = field_layout[op->type];
	uint64_t n = 0;

	n += (f & F_FLAGS) ? 4 : 0;
	n += (f & F_VERSION) ? 8 : 0;
	n += (f & F_ARG) ? 8 : 0;
	n += (f & F_MASK) ? 4 : 0;
	n += (f & F_META) ? META_BYTES : 0;
	n += (f & F_MTIME) ? 8 : 0;
	n += (f & F_KEY) ? 4 + (uint64_t)op->keylen : 0;
	n += (f & F_KEY2) ? 4 + (uint64_t)op->key2len : 0;
	n += (f & F_DATA) ? 4 + (uint64_t)op->datalen : 0;
	n += (f & F_LOCK) ? LOCK_BODY_FIXED + (uint64_t)op->keylen : 0;
	return n;
}

/* Size of a TXN body; 0 if invalid (a valid body is at least 8 bytes). */
static uint64_t txn_body_size(const struct kv_cmd *c)
{
	uint64_t n = 8;

	if (c->ncmp > KV_TXN_MAX || c->nops > KV_TXN_MAX)
		return 0;
	if (c->cmps == NULL && c->ncmp > 0) {
		if (c->raw_cmps == NULL)
			return 0;
		n += c->raw_cmps_len; /* validated by kv_cmd_decode() */
	}
	for (uint32_t i = 0; c->cmps != NULL && i < c->ncmp; i++) {
		if (!key_valid(c->cmps[i].key, c->cmps[i].keylen))
			return 0;
		n += 12 + (uint64_t)c->cmps[i].keylen;
	}
	if (c->ops == NULL && c->nops > 0) {
		if (c->raw_ops == NULL)
			return 0;
		n += c->raw_ops_len;
	}
	for (uint32_t i = 0; c->ops != NULL && i < c->nops; i++) {
		if (!check_op(&c->ops[i], true))
			return 0;
		if (c->ops[i].type == KV_OP_FENCE && i > 0 &&
		    c->ops[i - 1].type != KV_OP_FENCE)
			return 0; /* FENCE ops come first */
		if (is_open_op(c->ops[i].type) != is_open_op(c->ops[0].type) ||
		    (is_open_op(c->ops[i].type) && c->ncmp != 0))
			return 0; /* registrations alone */
		n += 1 + op_body_size(&c->ops[i]);
		if (n > KV_CMD_MAX)
			return 0;
	}
	return n;
}

size_t kv_cmd_size(const struct kv_cmd *c)
{
	uint64_t body;

	if (c->time_ns < 0)
		return 0;
	switch (c->type) {
	case KV_OP_GET:
	case KV_OP_PUT:
	case KV_OP_DELETE:
	case KV_OP_WRITE:
	case KV_OP_TRUNCATE:
	case KV_OP_SETMETA:
	case KV_OP_RENAME:
	case KV_OP_LINK:
	case KV_OP_LOCK:
	case KV_OP_UNLOCK:
	case KV_OP_UNLOCK_OWNER:
	case KV_OP_CANCEL:
	case KV_OP_GETLK:
		if (c->op.type != c->type || !check_op(&c->op, false))
			return 0;
		body = op_body_size(&c->op);
		break;
	case KV_OP_TXN:
		body = txn_body_size(c);
		if (body == 0)
			return 0;
		break;
	case KV_OP_REGISTER:
		if (c->client_id != 0 || c->seq != 0)
			return 0;
		body = 0;
		break;
	case KV_OP_TICK:
	case KV_OP_KEEPALIVE:
		body = 0;
		break;
	default:
		return 0;
	}
	if (HEADER_BYTES + body > KV_CMD_MAX)
		return 0;
	return (size_t)(HEADER_BYTES + body);
}

/* ------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------ */

static void put_op_body(struct buf_writer *w, const struct kv_op *op)
{
	uint16_t f = field_layout[op->type];

	if (f & F_FLAGS)
		buf_put_u32(w, op->flags);
	if (f & F_VERSION)
		buf_put_u64(w, op->version);
	if (f & F_ARG)
		buf_put_u64(w, op->arg);
	if (f & F_MASK)
		buf_put_u32(w, op->mask);
	if (f & F_META) {
		buf_put_u8(w, op->meta.kind);
		buf_put_u32(w, op->meta.mode);
		buf_put_u32(w, op->meta.uid);
		buf_put_u32(w, op->meta.gid);
	}
	if (f & F_MTIME)
		buf_put_i64(w, op->mtime_ns);
	if (f & F_KEY)
		buf_put_blob(w, op->key, op->keylen);
	if (f & F_KEY2)
		buf_put_blob(w, op->key2, op->key2len);
	if (f & F_DATA)
		buf_put_blob(w, op->data, op->datalen);
	if (f & F_LOCK) {
		buf_put_u64(w, op->inode);
		buf_put_blob(w, op->key, op->keylen);
		buf_put_u8(w, op->lkind);
		buf_put_u8(w, op->lmode);
		buf_put_u32(w, op->flags);
		buf_put_u64(w, op->start);
		buf_put_u64(w, op->end);
		buf_put_u64(w, op->owner);
		buf_put_u32(w, op->pid);
		buf_put_u64(w, op->token);
	}
}

static void put_txn_body(struct buf_writer *w, const struct kv_cmd *c)
{
	buf_put_u32(w, c->ncmp);
	if (c->cmps == NULL && c->ncmp > 0)
		buf_put_bytes(w, c->raw_cmps, c->raw_cmps_len);
	for (uint32_t i = 0; c->cmps != NULL && i < c->ncmp; i++) {
		buf_put_u64(w, c->cmps[i].version);
		buf_put_blob(w, c->cmps[i].key, c->cmps[i].keylen);
	}
	buf_put_u32(w, c->nops);
	if (c->ops == NULL && c->nops > 0)
		buf_put_bytes(w, c->raw_ops, c->raw_ops_len);
	for (uint32_t i = 0; c->ops != NULL && i < c->nops; i++) {
		buf_put_u8(w, c->ops[i].type);
		put_op_body(w, &c->ops[i]);
	}
}

long kv_cmd_encode(const struct kv_cmd *c, void *buf, size_t cap)
{
	size_t n = kv_cmd_size(c);
	struct buf_writer w;

	if (n == 0)
		return -EINVAL;
	if (cap < n)
		return -ENOBUFS;
	buf_writer_init(&w, buf, n);
	buf_put_u8(&w, KV_CMD_VERSION);
	buf_put_u8(&w, c->type);
	buf_put_u16(&w, 0);
	buf_put_u64(&w, c->client_id);
	buf_put_u64(&w, c->seq);
	buf_put_i64(&w, c->time_ns);
	if (c->type == KV_OP_TXN)
		put_txn_body(&w, c);
	else if (c->type != KV_OP_REGISTER && c->type != KV_OP_TICK &&
	    c->type != KV_OP_KEEPALIVE)
		put_op_body(&w, &c->op);
	assert(buf_writer_full(&w)); /* kv_cmd_size() is exact */
	return (long)n;
}

int kv_cmd_encode_alloc(const struct kv_cmd *c, void **buf, size_t *len)
{
	size_t n = kv_cmd_size(c);
	void *b;

	if (n == 0)
		return -EINVAL;
	b = malloc(n);
	if (b == NULL)
		return -ENOMEM;
	kv_cmd_encode(c, b, n);
	*buf = b;
	*len = n;
	return 0;
}

/* ------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------ */

/* Read the body of an op of type @op->type (unchecked). */
static void get_op_body(struct buf_reader *r, struct kv_op *op)
{
	uint16_t f = field_layout[op->type];

	if (f & F_FLAGS)
		op->flags = buf_get_u32(r);
	if (f & F_VERSION)
		op->version = buf_get_u64(r);
	if (f & F_ARG)
		op->arg = buf_get_u64(r);
	if (f & F_MASK)
		op->mask = buf_get_u32(r);
	if (f & F_META) {
		op->meta.kind = buf_get_u8(r);
		op->meta.mode = buf_get_u32(r);
		op->meta.uid = buf_get_u32(r);
		op->meta.gid = buf_get_u32(r);
	}
	if (f & F_MTIME)
		op->mtime_ns = buf_get_i64(r);
	if (f & F_KEY)
		op->key = buf_get_blob(r, KV_KEY_MAX, &op->keylen);
	if (f & F_KEY2)
		op->key2 = buf_get_blob(r, KV_KEY_MAX, &op->key2len);
	if (f & F_DATA)
		op->data = buf_get_blob(r, KV_VALUE_MAX, &op->datalen);
	if (f & F_LOCK) {
		op->inode = buf_get_u64(r);
		op->keylen = buf_get_u32(r);
		if (op->keylen > KV_KEY_MAX)
			buf_reader_fail(r);
		op->key = op->keylen ? buf_get_space(r, op->keylen) : NULL;
		op->lkind = buf_get_u8(r);
		op->lmode = buf_get_u8(r);
		op->flags = buf_get_u32(r);
		op->start = buf_get_u64(r);
		op->end = buf_get_u64(r);
		op->owner = buf_get_u64(r);
		op->pid = buf_get_u32(r);
		op->token = buf_get_u64(r);
	}
}

/* Read and check one op; false if malformed. */
static bool decode_op(struct buf_reader *r, uint8_t type, bool in_txn,
    struct kv_op *op)
{
	memset(op, 0, sizeof(*op));
	if (!has_body(type))
		return false;
	op->type = type;
	get_op_body(r, op);
	return !r->err && check_op(op, in_txn);
}

static bool decode_txn(struct buf_reader *r, struct kv_cmd *c)
{
	struct kv_op op;
	uint32_t keylen;

	c->ncmp = buf_get_u32(r);
	if (r->err || c->ncmp > KV_TXN_MAX)
		return false;
	c->raw_cmps = r->p;
	for (uint32_t i = 0; i < c->ncmp; i++) {
		buf_get_u64(r);
		if (buf_get_blob(r, KV_KEY_MAX, &keylen) == NULL)
			return false; /* NULL also for an empty key: invalid */
	}
	c->raw_cmps_len = (size_t)(r->p - c->raw_cmps);
	c->nops = buf_get_u32(r);
	if (r->err || c->nops > KV_TXN_MAX)
		return false;
	c->raw_ops = r->p;
	for (uint32_t i = 0, fences = 0, opens = 0; i < c->nops; i++) {
		uint8_t type = buf_get_u8(r);

		if (r->err || !decode_op(r, type, true, &op))
			return false;
		if (type == KV_OP_FENCE && fences++ != i)
			return false; /* FENCE ops come first */
		if (is_open_op(type))
			opens++;
		if (opens != 0 && (opens != i + 1 || c->ncmp != 0))
			return false; /* registrations alone */
	}
	c->raw_ops_len = (size_t)(r->p - c->raw_ops);
	if (c->ncmp == 0)
		c->raw_cmps = NULL, c->raw_cmps_len = 0;
	if (c->nops == 0)
		c->raw_ops = NULL, c->raw_ops_len = 0;
	return true;
}

int kv_cmd_decode(const void *buf, size_t len, struct kv_cmd *c)
{
	struct buf_reader r;
	bool ok;

	memset(c, 0, sizeof(*c));
	if (buf == NULL || len > KV_CMD_MAX)
		return -EBADMSG;
	buf_reader_init(&r, buf, len);
	if (buf_get_u8(&r) != KV_CMD_VERSION)
		goto bad;
	c->type = buf_get_u8(&r);
	if (buf_get_u16(&r) != 0)
		goto bad;
	c->client_id = buf_get_u64(&r);
	c->seq = buf_get_u64(&r);
	c->time_ns = buf_get_i64(&r);
	if (r.err || c->time_ns < 0)
		goto bad;
	switch (c->type) {
	case KV_OP_GET:
	case KV_OP_PUT:
	case KV_OP_DELETE:
	case KV_OP_WRITE:
	case KV_OP_TRUNCATE:
	case KV_OP_SETMETA:
	case KV_OP_RENAME:
	case KV_OP_LINK:
	case KV_OP_LOCK:
	case KV_OP_UNLOCK:
	case KV_OP_UNLOCK_OWNER:
	case KV_OP_CANCEL:
	case KV_OP_GETLK:
		ok = decode_op(&r, c->type, false, &c->op);
		break;
	case KV_OP_TXN:
		ok = decode_txn(&r, c);
		break;
	case KV_OP_REGISTER:
		ok = c->client_id == 0 && c->seq == 0;
		break;
	case KV_OP_TICK:
	case KV_OP_KEEPALIVE:
		ok = true;
		break;
	default:
		ok = false;
	}
	if (!ok || r.err || buf_reader_left(&r) != 0)
		goto bad;
	return 0;
bad:
	memset(c, 0, sizeof(*c));
	return -EBADMSG;
}

/* ------------------------------------------------------------------------
 * Txn iteration
 * ------------------------------------------------------------------------ */

void kv_cmd_cmp_iter(const struct kv_cmd *c, struct kv_cmd_iter *it)
{
	it->cmd = c;
	it->next = 0;
	it->p = c->raw_cmps;
}

bool kv_cmd_next_cmp(struct kv_cmd_iter *it, struct kv_cmp *cmp)
{
	const struct kv_cmd *c = it->cmd;
	struct buf_reader r;

	if (it->next >= c->ncmp)
		return false;
	if (c->cmps != NULL) {
		*cmp = c->cmps[it->next++];
		return true;
	}
	/* Validated by kv_cmd_decode(): the section cannot run short. */
	buf_reader_init(&r, it->p,
	    (size_t)(c->raw_cmps + c->raw_cmps_len - it->p));
	cmp->version = buf_get_u64(&r);
	cmp->key = buf_get_blob(&r, KV_KEY_MAX, &cmp->keylen);
	it->p = r.p;
	it->next++;
	return true;
}

void kv_cmd_op_iter(const struct kv_cmd *c, struct kv_cmd_iter *it)
{
	it->cmd = c;
	it->next = 0;
	it->p = c->raw_ops;
}

bool kv_cmd_next_op(struct kv_cmd_iter *it, struct kv_op *op)
{
	const struct kv_cmd *c = it->cmd;
	struct buf_reader r;

	if (it->next >= c->nops)
		return false;
	if (c->ops != NULL) {
		*op = c->ops[it->next++];
		return true;
	}
	/* Validated by kv_cmd_decode(): the section cannot run short. */
	buf_reader_init(&r, it->p,
	    (size_t)(c->raw_ops + c->raw_ops_len - it->p));
	memset(op, 0, sizeof(*op));
	op->type = buf_get_u8(&r);
	get_op_body(&r, op);
	it->p = r.p;
	it->next++;
	return true;
}

/* ------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------ */

size_t kv_result_size(const struct kv_result *r)
{
	return RESULT_FIXED_BYTES + r->value_len +
	    ((r->flags & KV_RES_LOCK) ? KV_LOCK_BYTES : 0);
}

static bool lock_valid(const struct kv_lock *l)
{
	return (l->lkind == KV_LK_FLOCK || l->lkind == KV_LK_POSIX) &&
	    (l->lmode == KV_LK_SHARED || l->lmode == KV_LK_EXCL) &&
	    l->start <= l->end;
}

void kv_lock_put(struct buf_writer *w, const struct kv_lock *l, uint8_t kind)
{
	buf_put_u64(w, l->session);
	buf_put_u64(w, l->owner);
	buf_put_u64(w, l->start);
	buf_put_u64(w, l->end);
	buf_put_u64(w, l->token);
	buf_put_u32(w, l->pid);
	if (kind == 0)
		buf_put_u8(w, l->lkind);
	buf_put_u8(w, l->lmode);
}

bool kv_lock_get(struct buf_reader *r, struct kv_lock *l, uint8_t kind)
{
	l->session = buf_get_u64(r);
	l->owner = buf_get_u64(r);
	l->start = buf_get_u64(r);
	l->end = buf_get_u64(r);
	l->token = buf_get_u64(r);
	l->pid = buf_get_u32(r);
	l->lkind = kind == 0 ? buf_get_u8(r) : kind;
	l->lmode = buf_get_u8(r);
	return !r->err &&
	    (l->lkind == KV_LK_FLOCK || l->lkind == KV_LK_POSIX) &&
	    (l->lmode == KV_LK_SHARED || l->lmode == KV_LK_EXCL) &&
	    l->start <= l->end;
}

void kv_attr_put(struct buf_writer *w, const struct kv_attr *a)
{
	buf_put_u64(w, a->version);
	buf_put_u64(w, a->inode);
	buf_put_u64(w, a->size);
	buf_put_i64(w, a->mtime_ns);
	buf_put_i64(w, a->ctime_ns);
	buf_put_u32(w, a->mode);
	buf_put_u32(w, a->uid);
	buf_put_u32(w, a->gid);
	buf_put_u8(w, a->kind);
	buf_put_u32(w, a->nlink);
}

void kv_attr_get(struct buf_reader *r, struct kv_attr *a)
{
	a->version = buf_get_u64(r);
	a->inode = buf_get_u64(r);
	a->size = buf_get_u64(r);
	a->mtime_ns = buf_get_i64(r);
	a->ctime_ns = buf_get_i64(r);
	a->mode = buf_get_u32(r);
	a->uid = buf_get_u32(r);
	a->gid = buf_get_u32(r);
	a->kind = buf_get_u8(r);
	a->nlink = buf_get_u32(r);
}

long kv_result_encode(const struct kv_result *r, void *buf, size_t cap)
{
	size_t n = kv_result_size(r);
	struct buf_writer w;

	if (r->status < 0 || r->status >= KV_STATUS_COUNT ||
	    status_names[r->status] == NULL ||
	    (r->flags & ~(KV_RES_DUP | KV_RES_LOCK)) ||
	    r->value_len > KV_VALUE_MAX ||
	    (r->value == NULL && r->value_len != 0) ||
	    ((r->flags & KV_RES_LOCK) && !lock_valid(&r->lock)))
		return -EINVAL;
	if (cap < n)
		return -ENOBUFS;
	buf_writer_init(&w, buf, n);
	buf_put_u8(&w, KV_CMD_VERSION);
	buf_put_u8(&w, (uint8_t)r->status);
	buf_put_u16(&w, (uint16_t)r->flags);
	buf_put_u32(&w, r->fail_cmp);
	buf_put_u32(&w, r->fail_op);
	buf_put_u64(&w, r->client_id);
	kv_attr_put(&w, &r->attr);
	buf_put_blob(&w, r->value, (uint32_t)r->value_len);
	if (r->flags & KV_RES_LOCK)
		kv_lock_put(&w, &r->lock, 0);
	assert(buf_writer_full(&w));
	return (long)n;
}

int kv_result_decode(const void *buf, size_t len, struct kv_result *res)
{
	struct buf_reader r;
	uint32_t vlen;

	kv_result_init(res);
	if (buf == NULL)
		goto bad;
	buf_reader_init(&r, buf, len);
	if (buf_get_u8(&r) != KV_CMD_VERSION)
		goto bad;
	res->status = buf_get_u8(&r);
	res->flags = buf_get_u16(&r);
	res->fail_cmp = buf_get_u32(&r);
	res->fail_op = buf_get_u32(&r);
	res->client_id = buf_get_u64(&r);
	kv_attr_get(&r, &res->attr);
	/* Borrowed: points into @buf (kv_result: do not release). */
	res->value = (void *)(uintptr_t)buf_get_blob(&r, KV_VALUE_MAX, &vlen);
	res->value_len = vlen;
	if ((res->flags & KV_RES_LOCK) && !kv_lock_get(&r, &res->lock, 0))
		goto bad;
	if (r.err || buf_reader_left(&r) != 0 ||
	    res->status >= KV_STATUS_COUNT ||
	    status_names[res->status] == NULL ||
	    (res->flags & ~(KV_RES_DUP | KV_RES_LOCK)))
		goto bad;
	return 0;
bad:
	kv_result_init(res);
	return -EBADMSG;
}

/* ------------------------------------------------------------------------
 * The time a member stamps on a command (kv_cmd_time_ns in cmd.h)
 * ------------------------------------------------------------------------ */

int64_t kv_cmd_time_ns(const void *cmd, size_t len)
{
	if (cmd == NULL || len < TIME_OFFSET + 8)
		return -1;
	return (int64_t)le_get64((const uint8_t *)cmd + TIME_OFFSET);
}

void kv_cmd_set_time_ns(void *cmd, size_t len, int64_t ns)
{
	if (cmd != NULL && len >= TIME_OFFSET + 8)
		le_put64((uint8_t *)cmd + TIME_OFFSET, (uint64_t)ns);
}
