/*
 * test_kvcmd.c - unit tests for the KV command and result codec
 * (kv/cmd.c).
 *
 * Every command type round-trips with every field it carries; a decoded
 * transaction walks like the built one; the encoder and the decoder reject
 * the same invalid inputs; the decoder rejects every truncation, trailing
 * bytes and bad headers, and under seeded random mutation either rejects
 * or accepts something that re-encodes to the very same bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/cmd.h"

/* ------------------------------------------------------------------------
 * Helpers: sample commands
 * ------------------------------------------------------------------------ */

#define BIG 0x0102030405060708ull /* every byte distinct: catches order bugs */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static const char value[] = "hello, world";

/* The op types that exist (the numbering has gaps). */
static bool type_exists(uint8_t t)
{
	return (t >= KV_OP_GET && t <= KV_OP_LINK) ||
	    (t >= KV_OP_LOCK && t <= KV_OP_TYPE_MAX);
}

/* The op types that exist only as TXN ops (FENCE, OPEN, CLOSE). */
static bool txn_only(uint8_t t)
{
	return t == KV_OP_FENCE || t == KV_OP_OPEN || t == KV_OP_CLOSE;
}

/* The lock ops with a body, every field they carry set. */
static void lock_op(struct kv_op *op)
{
	op->inode = BIG;
	op->owner = BIG + 9;
	switch (op->type) {
	case KV_OP_LOCK:
		op->lkind = KV_LK_POSIX;
		op->lmode = KV_LK_EXCL;
		op->flags = KV_F_WAIT;
		op->start = 10;
		op->end = KV_LK_EOF;
		op->pid = 4242;
		break;
	case KV_OP_UNLOCK:
	case KV_OP_CANCEL:
		op->lkind = KV_LK_POSIX;
		op->start = 3;
		op->end = 3;
		break;
	case KV_OP_UNLOCK_OWNER:
		op->lkind = 0;
		break;
	case KV_OP_GETLK:
		op->lkind = KV_LK_FLOCK;
		op->lmode = KV_LK_SHARED;
		break;
	case KV_OP_FENCE:
		op->owner = 0;
		op->token = BIG + 3;
		break;
	case KV_OP_OPEN:
	case KV_OP_CLOSE:
		op->owner = 0;
		op->key = NULL;
		op->keylen = 0;
		break;
	}
}

static struct kv_op op_of(uint8_t type)
{
	struct kv_op op = {
		.type = type,
		.key = "dir/file",
		.keylen = 8,
	};

	switch (type) {
	case KV_OP_PUT:
		op.flags = KV_F_ANYVER | KV_F_SETMETA;
		op.version = BIG;
		op.meta = (struct kv_meta){ KV_KIND_SYMLINK, 0755, 1000, 1001 };
		op.data = value;
		op.datalen = sizeof(value);
		break;
	case KV_OP_DELETE:
		op.flags = KV_F_ANYVER;
		op.version = BIG + 1;
		break;
	case KV_OP_WRITE:
		op.version = BIG + 2;
		op.arg = 4096;
		op.data = value;
		op.datalen = 5;
		break;
	case KV_OP_TRUNCATE:
		op.version = 3;
		op.arg = BIG;
		break;
	case KV_OP_SETMETA:
		op.version = 4;
		op.mask = KV_META_ALL;
		op.meta = (struct kv_meta){ KV_KIND_DIR, 01777, 7, 8 };
		op.mtime_ns = -5; /* before the epoch is fine for mtime */
		break;
	case KV_OP_RENAME:
		op.version = 5;
		op.key2 = "dir/other";
		op.key2len = 9;
		break;
	case KV_OP_LINK:
		op.version = BIG + 3;
		op.key2 = "dir/link";
		op.key2len = 8;
		break;
	default:
		lock_op(&op);
	}
	return op;
}

static const struct kv_cmp sample_cmps[] = {
	{ .version = 0, .key = "a", .keylen = 1 },
	{ .version = KV_VERSION_ANY, .key = "bb", .keylen = 2 },
	{ .version = BIG, .key = "ccc", .keylen = 3 },
};

static struct kv_op sample_ops[7];

static void init_ops(void)
{
	for (uint8_t t = KV_OP_PUT; t <= KV_OP_RENAME; t++)
		sample_ops[t - KV_OP_PUT] = op_of(t);
	sample_ops[6] = op_of(KV_OP_LINK);
}

/* A type whose command is one op (GET..RENAME, LINK). */
static bool one_op(uint8_t type)
{
	return (type >= KV_OP_GET && type <= KV_OP_RENAME) ||
	    type == KV_OP_LINK;
}

static struct kv_cmd cmd_of(uint8_t type)
{
	struct kv_cmd c = {
		.type = type,
		.client_id = BIG,
		.seq = BIG + 7,
		.time_ns = 1700000000123456789ll,
	};

	if (one_op(type) || (type >= KV_OP_LOCK && type <= KV_OP_GETLK))
		c.op = op_of(type);
	if (type == KV_OP_TXN) {
		c.ncmp = 3;
		c.cmps = sample_cmps;
		c.nops = 7;
		c.ops = sample_ops;
	}
	if (type == KV_OP_REGISTER)
		c.client_id = c.seq = 0;
	return c;
}

static uint8_t *encode(const struct kv_cmd *c, size_t *len)
{
	void *buf;

	assert_int_equal(kv_cmd_encode_alloc(c, &buf, len), 0);
	assert_int_equal(*len, kv_cmd_size(c));
	return buf;
}

static void assert_op_equal(const struct kv_op *a, const struct kv_op *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->arg, b->arg);
	assert_int_equal(a->mask, b->mask);
	assert_int_equal(a->meta.kind, b->meta.kind);
	assert_int_equal(a->meta.mode, b->meta.mode);
	assert_int_equal(a->meta.uid, b->meta.uid);
	assert_int_equal(a->meta.gid, b->meta.gid);
	assert_int_equal(a->mtime_ns, b->mtime_ns);
	assert_int_equal(a->keylen, b->keylen);
	assert_memory_equal(a->key, b->key, a->keylen);
	assert_int_equal(a->key2len, b->key2len);
	if (a->key2len > 0)
		assert_memory_equal(a->key2, b->key2, a->key2len);
	assert_int_equal(a->datalen, b->datalen);
	if (a->datalen > 0)
		assert_memory_equal(a->data, b->data, a->datalen);
}

/* Decode @buf, check it against @c, re-encode to the same bytes. */
static void assert_round_trip(const struct kv_cmd *c, const uint8_t *buf,
    size_t len)
{
	struct kv_cmd d;
	uint8_t *again;
	size_t len2;

	assert_int_equal(kv_cmd_decode(buf, len, &d), 0);
	assert_int_equal(d.type, c->type);
	assert_int_equal(d.client_id, c->client_id);
	assert_int_equal(d.seq, c->seq);
	assert_int_equal(d.time_ns, c->time_ns);
	if (one_op(c->type)) {
		struct kv_op want = c->op;

		/* Fields a type does not carry decode as zero. */
		if (c->type == KV_OP_GET)
			want = (struct kv_op){ .type = KV_OP_GET,
				.key = c->op.key,
				.keylen = c->op.keylen };
		assert_op_equal(&d.op, &want);
	}
	if (c->type == KV_OP_TXN) {
		struct kv_cmd_iter a, b;
		struct kv_cmp ca, cb;
		struct kv_op oa, ob;

		assert_int_equal(d.ncmp, c->ncmp);
		assert_int_equal(d.nops, c->nops);
		assert_null(d.cmps);
		kv_cmd_cmp_iter(c, &a);
		kv_cmd_cmp_iter(&d, &b);
		while (kv_cmd_next_cmp(&a, &ca)) {
			assert_true(kv_cmd_next_cmp(&b, &cb));
			assert_int_equal(ca.version, cb.version);
			assert_int_equal(ca.keylen, cb.keylen);
			assert_memory_equal(ca.key, cb.key, ca.keylen);
		}
		assert_false(kv_cmd_next_cmp(&b, &cb));
		kv_cmd_op_iter(c, &a);
		kv_cmd_op_iter(&d, &b);
		while (kv_cmd_next_op(&a, &oa)) {
			assert_true(kv_cmd_next_op(&b, &ob));
			assert_op_equal(&oa, &ob);
		}
		assert_false(kv_cmd_next_op(&b, &ob));
	}
	again = encode(&d, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	free(again);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ------------------------------------------------------------------------
 * Tests: commands
 * ------------------------------------------------------------------------ */

static void test_kvcmd_round_trips_every_type(void **state)
{
	(void)state;
	for (uint8_t t = KV_OP_GET; t <= KV_OP_TYPE_MAX; t++) {
		if (!type_exists(t) || txn_only(t))
			continue; /* FENCE, OPEN, CLOSE: only inside a txn */
		struct kv_cmd c = cmd_of(t);
		size_t len;
		uint8_t *buf = encode(&c, &len);

		assert_round_trip(&c, buf, len);
		free(buf);
	}
}

static void test_kvcmd_round_trips_empty_value_and_empty_txn(void **state)
{
	struct kv_cmd c = cmd_of(KV_OP_PUT);
	size_t len;
	uint8_t *buf;

	(void)state;
	c.op.data = NULL;
	c.op.datalen = 0;
	buf = encode(&c, &len);
	assert_round_trip(&c, buf, len);
	free(buf);

	c = cmd_of(KV_OP_TXN);
	c.ncmp = c.nops = 0;
	c.cmps = NULL;
	c.ops = NULL;
	buf = encode(&c, &len);
	assert_int_equal(len, 28 + 8);
	assert_round_trip(&c, buf, len);
	free(buf);
}

static void test_kvcmd_header_layout(void **state)
{
	struct kv_cmd c = cmd_of(KV_OP_TICK);
	size_t len;
	uint8_t *buf;

	(void)state;
	c.client_id = 0x1122334455667788ull;
	buf = encode(&c, &len);
	assert_int_equal(len, 28);
	assert_int_equal(buf[0], KV_CMD_VERSION);
	assert_int_equal(buf[1], KV_OP_TICK);
	assert_int_equal(buf[2] | buf[3], 0);
	assert_int_equal(buf[4], 0x88); /* little-endian */
	assert_int_equal(buf[11], 0x11);
	free(buf);
}

static void test_kvcmd_limits_are_accepted_at_the_edge(void **state)
{
	static char key[KV_KEY_MAX + 1];
	static struct kv_op ops[KV_TXN_MAX + 1];
	static struct kv_cmp cmps[KV_TXN_MAX + 1];
	struct kv_cmd c = cmd_of(KV_OP_GET);
	size_t len;
	uint8_t *buf;

	(void)state;
	memset(key, 'k', sizeof(key));
	c.op.key = key;
	c.op.keylen = KV_KEY_MAX;
	buf = encode(&c, &len);
	assert_round_trip(&c, buf, len);
	free(buf);
	c.op.keylen = KV_KEY_MAX + 1;
	assert_int_equal(kv_cmd_size(&c), 0);

	for (unsigned i = 0; i <= KV_TXN_MAX; i++) {
		ops[i] = op_of(KV_OP_DELETE);
		cmps[i] = sample_cmps[i % 3];
	}
	c = cmd_of(KV_OP_TXN);
	c.ops = ops;
	c.cmps = cmps;
	c.nops = c.ncmp = KV_TXN_MAX;
	buf = encode(&c, &len);
	assert_round_trip(&c, buf, len);
	free(buf);
	c.nops = KV_TXN_MAX + 1;
	assert_int_equal(kv_cmd_size(&c), 0);
	c.nops = KV_TXN_MAX;
	c.ncmp = KV_TXN_MAX + 1;
	assert_int_equal(kv_cmd_size(&c), 0);
}

static void test_kvcmd_encode_rejects_invalid(void **state)
{
	struct kv_cmd c;
	struct kv_op ops[2];
	uint8_t buf[256];

	(void)state;
#define REJECT(mutation) \
	do { \
		c = cmd_of(KV_OP_PUT); \
		mutation; \
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), \
		    -EINVAL); \
		assert_int_equal(kv_cmd_size(&c), 0); \
	} while (0)
	REJECT(c.type = 0);
	REJECT(c.type = KV_OP_TYPE_MAX + 1);
	for (uint8_t t = KV_OP_LINK + 1; t < KV_OP_LOCK; t++) { /* the gap */
		REJECT(c.type = t);
		REJECT(c.type = t; c.op.type = t);
	}
	REJECT(c.op.type = KV_OP_DELETE);
	REJECT(c.time_ns = -1);
	REJECT(c.op.flags = 0x4);
	REJECT(c = cmd_of(KV_OP_DELETE); c.op.flags = KV_F_SETMETA);
	REJECT(c.op.keylen = 0);
	REJECT(c.op.key = NULL);
	REJECT(c.op.data = NULL);
	REJECT(c.op.datalen = KV_VALUE_MAX + 1);
	REJECT(c.op.meta.kind = 0);
	REJECT(c.op.meta.kind = 4);
	REJECT(c.op.meta.mode = 010000);
	REJECT(c = cmd_of(KV_OP_SETMETA); c.op.mask = 0x20);
	REJECT(c = cmd_of(KV_OP_SETMETA); c.op.mask = KV_META_MODE);
	REJECT(c = cmd_of(KV_OP_RENAME); c.op.key2len = 0);
	REJECT(c = cmd_of(KV_OP_RENAME); c.op.key2len = KV_KEY_MAX + 1);
	REJECT(c = cmd_of(KV_OP_LINK); c.op.key2len = 0);
	REJECT(c = cmd_of(KV_OP_LINK); c.op.key2 = NULL);
	REJECT(c = cmd_of(KV_OP_LINK); c.op.key2len = KV_KEY_MAX + 1);
	REJECT(c = cmd_of(KV_OP_LINK); c.op.flags = KV_F_TREE);
	REJECT(c = cmd_of(KV_OP_LINK); c.op.flags = KV_F_SETMETA);
	REJECT(c = cmd_of(KV_OP_LINK); c.op.type = KV_OP_RENAME);
	REJECT(c = cmd_of(KV_OP_REGISTER); c.seq = 1);
	REJECT(c = cmd_of(KV_OP_REGISTER); c.client_id = 1);
	ops[0] = op_of(KV_OP_PUT);
	ops[1] = op_of(KV_OP_GET);
	REJECT(c = cmd_of(KV_OP_TXN); c.ops = ops; c.nops = 2);
	REJECT(c = cmd_of(KV_OP_TXN); c.ops = NULL);
	REJECT(c = cmd_of(KV_OP_TXN); c.cmps = NULL);
#undef REJECT
	c = cmd_of(KV_OP_PUT);
	assert_int_equal(kv_cmd_encode(&c, buf, kv_cmd_size(&c) - 1), -ENOBUFS);
	/* Setmeta without the kind bit wants kind 0. */
	c = cmd_of(KV_OP_SETMETA);
	c.op.mask = KV_META_MODE;
	c.op.meta.kind = 0;
	assert_true(kv_cmd_encode(&c, buf, sizeof(buf)) > 0);
}

static void test_kvcmd_rejects_every_truncation(void **state)
{
	(void)state;
	for (uint8_t t = KV_OP_GET; t <= KV_OP_TYPE_MAX; t++) {
		if (!type_exists(t) || txn_only(t))
			continue; /* FENCE, OPEN, CLOSE: only inside a txn */
		struct kv_cmd c = cmd_of(t), d;
		size_t len;
		uint8_t *buf = encode(&c, &len);

		for (size_t n = 0; n < len; n++) {
			uint8_t *copy = malloc(n + 1); /* exact size for ASan */

			memcpy(copy, buf, n);
			assert_int_equal(kv_cmd_decode(copy, n, &d), -EBADMSG);
			free(copy);
		}
		free(buf);
	}
}

static void test_kvcmd_rejects_trailing_byte(void **state)
{
	(void)state;
	for (uint8_t t = KV_OP_GET; t <= KV_OP_TYPE_MAX; t++) {
		if (!type_exists(t) || txn_only(t))
			continue; /* FENCE, OPEN, CLOSE: only inside a txn */
		struct kv_cmd c = cmd_of(t), d;
		size_t len;
		uint8_t *buf = encode(&c, &len), *longer = malloc(len + 1);

		memcpy(longer, buf, len);
		longer[len] = 0;
		assert_int_equal(kv_cmd_decode(longer, len + 1, &d), -EBADMSG);
		free(longer);
		free(buf);
	}
}

static void test_kvcmd_rejects_bad_header(void **state)
{
	struct kv_cmd c = cmd_of(KV_OP_DELETE), d;
	size_t len;
	uint8_t *buf = encode(&c, &len);

	(void)state;
	buf[0] = KV_CMD_VERSION + 1;
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	buf[0] = KV_CMD_VERSION;
	buf[1] = 0;
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	buf[1] = KV_OP_TYPE_MAX + 1;
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	for (uint8_t t = KV_OP_LINK + 1; t < KV_OP_LOCK; t++) { /* the gap */
		buf[1] = t;
		assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	}
	buf[1] = KV_OP_DELETE;
	buf[3] = 1; /* reserved */
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	buf[3] = 0;
	buf[27] = 0x80; /* negative time */
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	buf[27] = 0;
	assert_int_equal(kv_cmd_decode(buf, len, &d), 0);
	assert_int_equal(kv_cmd_decode(NULL, 0, &d), -EBADMSG);
	free(buf);
}

static void test_kvcmd_rejects_bad_fields(void **state)
{
	struct kv_cmd c, d;
	size_t len;
	uint8_t *buf;

	(void)state;
	/* PUT body: flags@28 version@32 kind@40 mode@41 uid@45 gid@49
	 * keylen@53 key@57 datalen@65 data@69. */
	c = cmd_of(KV_OP_PUT);
	buf = encode(&c, &len);
	buf[28] = 0x4; /* unknown flag */
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	buf[28] = KV_F_ANYVER;
	buf[40] = 9; /* kind */
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	buf[40] = KV_KIND_FILE;
	buf[42] = 0x10; /* mode 010000 */
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	buf[42] = 0;
	put_le32(buf + 53, 0); /* empty key */
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	put_le32(buf + 53, 9); /* key runs into the data */
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	put_le32(buf + 53, 8);
	put_le32(buf + 65, KV_VALUE_MAX + 1);
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	put_le32(buf + 65, UINT32_MAX);
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	put_le32(buf + 65, sizeof(value));
	assert_int_equal(kv_cmd_decode(buf, len, &d), 0);
	free(buf);

	/* A GET inside a txn; counts over the limit. */
	c = cmd_of(KV_OP_TXN);
	c.ncmp = 0;
	c.cmps = NULL;
	c.nops = 1;
	buf = encode(&c, &len);
	assert_int_equal(buf[36], KV_OP_PUT); /* header, ncmp, nops, type */
	buf[36] = KV_OP_GET;
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	buf[36] = KV_OP_TXN;
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	buf[36] = KV_OP_PUT;
	put_le32(buf + 32, KV_TXN_MAX + 1);
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	put_le32(buf + 28, UINT32_MAX);
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	free(buf);

	/* REGISTER with an id. */
	c = cmd_of(KV_OP_REGISTER);
	buf = encode(&c, &len);
	buf[4] = 1;
	assert_int_equal(kv_cmd_decode(buf, len, &d), -EBADMSG);
	free(buf);
}

static void test_kvcmd_mutations_reject_or_round_trip(void **state)
{
	long accepted = 0, rejected = 0;
	const int rounds = getenv("RAFTKV_LONG") ? 200000 : 20000;

	(void)state;
	rng_state = 0xfeedbeef;
	for (uint8_t t = KV_OP_GET; t <= KV_OP_TYPE_MAX; t++) {
		if (!type_exists(t) || txn_only(t))
			continue; /* FENCE, OPEN, CLOSE: only inside a txn */
		struct kv_cmd c = cmd_of(t);
		size_t len;
		uint8_t *buf = encode(&c, &len);

		for (int i = 0; i < rounds; i++) {
			uint8_t *m = malloc(len);
			int flips = 1 + (int)(rnd() % 4);
			struct kv_cmd d;

			memcpy(m, buf, len);
			while (flips-- > 0) {
				size_t at = (size_t)(rnd() % len);

				/* Mostly small changes: lengths, flags, types. */
				m[at] = rnd() % 2
				    ? (uint8_t)rnd()
				    : (uint8_t)(m[at] ^ (1u << (rnd() % 8)));
			}
			if (kv_cmd_decode(m, len, &d) == 0) {
				uint8_t *again;
				size_t len2;

				accepted++;
				again = encode(&d, &len2);
				assert_int_equal(len2, len);
				assert_memory_equal(again, m, len);
				free(again);
			} else {
				rejected++;
			}
			free(m);
		}
		free(buf);
	}
	print_message("mutations: %ld accepted (re-encode identical), "
	              "%ld rejected\n",
	    accepted, rejected);
	assert_true(accepted > 0 && rejected > 0);
}

/* ------------------------------------------------------------------------
 * Tests: results
 * ------------------------------------------------------------------------ */

static struct kv_result sample_result(void)
{
	struct kv_result r;

	kv_result_init(&r);
	r.status = KV_EVERSION;
	r.flags = KV_RES_DUP;
	r.fail_cmp = 2;
	r.client_id = BIG;
	r.attr = (struct kv_attr){ .version = BIG,
		.inode = BIG + 1,
		.size = 12,
		.mtime_ns = -1,
		.ctime_ns = 99,
		.mode = 0644,
		.uid = 5,
		.gid = 6,
		.kind = KV_KIND_FILE,
		.nlink = 3 };
	r.value = (void *)"0123456789ab";
	r.value_len = 12;
	return r;
}

static void test_kvcmd_result_round_trips(void **state)
{
	struct kv_result r = sample_result(), d;
	uint8_t buf[128], again[128];
	long n;

	(void)state;
	n = kv_result_encode(&r, buf, sizeof(buf));
	assert_int_equal(n, 81 + 12);
	assert_int_equal((size_t)n, kv_result_size(&r));
	assert_int_equal(kv_result_decode(buf, (size_t)n, &d), 0);
	assert_int_equal(d.status, r.status);
	assert_int_equal(d.flags, r.flags);
	assert_int_equal(d.fail_cmp, 2);
	assert_int_equal(d.fail_op, KV_NO_INDEX);
	assert_int_equal(d.client_id, BIG);
	assert_memory_equal(&d.attr.version, &r.attr.version, 8);
	assert_int_equal(d.attr.inode, r.attr.inode);
	assert_int_equal(d.attr.nlink, 3);
	assert_int_equal(d.attr.size, 12);
	assert_int_equal(d.attr.mtime_ns, -1);
	assert_int_equal(d.attr.ctime_ns, 99);
	assert_int_equal(d.attr.mode, 0644);
	assert_int_equal(d.attr.uid, 5);
	assert_int_equal(d.attr.gid, 6);
	assert_int_equal(d.attr.kind, KV_KIND_FILE);
	assert_int_equal(d.value_len, 12);
	assert_memory_equal(d.value, "0123456789ab", 12);
	assert_int_equal(kv_result_encode(&d, again, sizeof(again)), n);
	assert_memory_equal(again, buf, (size_t)n);

	for (long k = 0; k < n; k++)
		assert_int_equal(kv_result_decode(buf, (size_t)k, &d),
		    -EBADMSG);
	assert_int_equal(kv_result_decode(buf, (size_t)n + 1, &d), -EBADMSG);
	buf[1] = KV_STATUS_COUNT;
	assert_int_equal(kv_result_decode(buf, (size_t)n, &d), -EBADMSG);
	buf[1] = KV_OK;
	buf[2] = 2;
	assert_int_equal(kv_result_decode(buf, (size_t)n, &d), -EBADMSG);
	buf[2] = 0;
	buf[0] = 7;
	assert_int_equal(kv_result_decode(buf, (size_t)n, &d), -EBADMSG);
}

static void test_kvcmd_result_encode_rejects_invalid(void **state)
{
	struct kv_result r = sample_result();
	uint8_t buf[128];

	(void)state;
	assert_int_equal(kv_result_encode(&r, buf, 92), -ENOBUFS);
	r.status = -1;
	assert_int_equal(kv_result_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample_result();
	r.flags = 2;
	assert_int_equal(kv_result_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample_result();
	r.value = NULL;
	assert_int_equal(kv_result_encode(&r, buf, sizeof(buf)), -EINVAL);
	r.value_len = 0;
	assert_int_equal(kv_result_encode(&r, buf, sizeof(buf)), 81);
}

static void test_kvcmd_status_names(void **state)
{
	(void)state;
	assert_string_equal(kv_status_name(KV_OK), "OK");
	assert_string_equal(kv_status_name(KV_ENOKEY), "ErrNoKey");
	assert_string_equal(kv_status_name(KV_EVERSION), "ErrVersion");
	assert_string_equal(kv_status_name(KV_ESESSION), "ErrSession");
	assert_string_equal(kv_status_name(-1), "unknown");
	assert_string_equal(kv_status_name(KV_STATUS_COUNT), "unknown");
	assert_string_equal(kv_status_name(KV_ELOCKED), "ErrLocked");
	assert_string_equal(kv_status_name(KV_EFENCED), "ErrFenced");
	assert_string_equal(kv_status_name(KV_EQUEUED), "Queued");
	assert_string_equal(kv_status_name(KV_ENOLOCK), "ErrNoLock");
	for (int s = 0; s <= KV_ENOSPC; s++)
		assert_string_not_equal(kv_status_name(s), "unknown");
	for (int s = KV_ELOCKED; s < KV_STATUS_COUNT; s++)
		assert_string_not_equal(kv_status_name(s), "unknown");
	for (int s = KV_ENOSPC + 1; s < KV_ELOCKED; s++) /* the gap */
		assert_string_equal(kv_status_name(s), "unknown");
}

/* Lock ops: every field rule of the table in cmd.h, both ways. */
static void test_kvcmd_lock_bodies(void **state)
{
	struct kv_cmd c;
	uint8_t buf[512];
	struct kv_cmd d;

	(void)state;
#define LOCK_REJECTED(type_, stmt) \
	do { \
		c = cmd_of(type_); \
		stmt; \
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), \
		    -EINVAL); \
	} while (0)
#define LOCK_OK(type_, stmt) \
	do { \
		c = cmd_of(type_); \
		stmt; \
		size_t n_ = 0; \
		uint8_t *b_ = encode(&c, &n_); \
		assert_round_trip(&c, b_, n_); \
		free(b_); \
	} while (0)
	/* Ranges, kinds, modes, flags. */
	LOCK_REJECTED(KV_OP_LOCK, (c.op.start = 5, c.op.end = 4));
	LOCK_REJECTED(KV_OP_LOCK, c.op.lkind = 0);
	LOCK_REJECTED(KV_OP_LOCK, c.op.lkind = 3);
	LOCK_REJECTED(KV_OP_LOCK, c.op.lmode = 0);
	LOCK_REJECTED(KV_OP_LOCK, c.op.lmode = 3);
	LOCK_REJECTED(KV_OP_LOCK, c.op.flags = KV_F_ANYVER);
	LOCK_REJECTED(KV_OP_LOCK, c.op.token = 1);
	LOCK_REJECTED(KV_OP_LOCK, (c.op.key = NULL, c.op.keylen = 0));
	LOCK_REJECTED(KV_OP_LOCK,
	    (c.op.lkind = KV_LK_FLOCK, c.op.start = 0, c.op.end = 1));
	LOCK_OK(KV_OP_LOCK,
	    (c.op.lkind = KV_LK_FLOCK, c.op.start = 0, c.op.end = 0,
	        c.op.inode = 0));
	LOCK_OK(KV_OP_LOCK, (c.op.start = 7, c.op.end = 7, c.op.flags = 0));
	LOCK_REJECTED(KV_OP_UNLOCK, c.op.lmode = KV_LK_SHARED);
	LOCK_REJECTED(KV_OP_UNLOCK, c.op.pid = 1);
	LOCK_REJECTED(KV_OP_UNLOCK, c.op.flags = KV_F_WAIT);
	LOCK_REJECTED(KV_OP_UNLOCK,
	    (c.op.key = NULL, c.op.keylen = 0, c.op.inode = 0));
	LOCK_OK(KV_OP_UNLOCK, (c.op.key = NULL, c.op.keylen = 0));
	LOCK_REJECTED(KV_OP_UNLOCK_OWNER, c.op.start = 1);
	LOCK_REJECTED(KV_OP_UNLOCK_OWNER, c.op.lkind = 3);
	LOCK_OK(KV_OP_UNLOCK_OWNER, c.op.lkind = KV_LK_FLOCK);
	LOCK_REJECTED(KV_OP_GETLK, c.op.lmode = 0);
	LOCK_REJECTED(KV_OP_GETLK, c.op.pid = 9);
	LOCK_REJECTED(KV_OP_CANCEL, c.op.lkind = 0);
	/* FENCE: only in a txn, token != 0, before every other op. */
	c = cmd_of(KV_OP_FENCE);
	c.op = op_of(KV_OP_FENCE);
	assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
	{
		struct kv_op ops[3] = { op_of(KV_OP_FENCE), op_of(KV_OP_FENCE),
			op_of(KV_OP_PUT) };
		size_t n;
		uint8_t *b;

		ops[1].key = NULL;
		ops[1].keylen = 0;
		c = cmd_of(KV_OP_TXN);
		c.ops = ops;
		c.nops = 3;
		b = encode(&c, &n);
		assert_round_trip(&c, b, n);
		free(b);
		ops[0].token = 0;
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
		ops[0].token = 1;
		ops[0].owner = 1;
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
		ops[0].owner = 0;
		ops[2] = ops[1];
		ops[1] = op_of(KV_OP_PUT); /* a FENCE after a PUT */
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
		/* A lock op other than FENCE is no txn op. */
		ops[1] = op_of(KV_OP_UNLOCK);
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
	}
	/* The decoder refuses a FENCE after a PUT, written by hand: swap
	 * the two ops of an encoded txn {FENCE, PUT} -> {PUT, FENCE}. */
	{
		struct kv_op ops[2] = { op_of(KV_OP_PUT), op_of(KV_OP_FENCE) };
		struct kv_op fence_first[2] = { op_of(KV_OP_FENCE),
			op_of(KV_OP_PUT) };
		size_t n1, n2;
		uint8_t *b1, *b2;

		c = cmd_of(KV_OP_TXN);
		c.ncmp = 0;
		c.ops = fence_first;
		c.nops = 2;
		b1 = encode(&c, &n1);
		c.ops = ops;
		/* Encodable? No: then build the bytes from fence_first's. */
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
		/* header 28, ncmp 4, nops 4, then op type + body. */
		{
			size_t fence_len = 1 + 54 + 8; /* type, body, key */
			size_t put_len = n1 - 36 - fence_len;

			b2 = malloc(n1);
			memcpy(b2, b1, 36);
			memcpy(b2 + 36, b1 + 36 + fence_len, put_len);
			memcpy(b2 + 36 + put_len, b1 + 36, fence_len);
			n2 = n1;
			assert_int_equal(kv_cmd_decode(b1, n1, &d), 0);
			assert_int_equal(kv_cmd_decode(b2, n2, &d), -EBADMSG);
			free(b2);
		}
		free(b1);
	}
	/* OPEN, CLOSE: only in a txn of nothing else, an inode, no key. */
	{
		struct kv_op ops[3] = { op_of(KV_OP_OPEN), op_of(KV_OP_CLOSE),
			op_of(KV_OP_OPEN) };
		size_t n;
		uint8_t *b;

		c = cmd_of(KV_OP_OPEN);
		c.op = op_of(KV_OP_OPEN);
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
		c = cmd_of(KV_OP_TXN);
		c.ncmp = 0;
		c.ops = ops;
		c.nops = 3;
		b = encode(&c, &n);
		assert_round_trip(&c, b, n);
		/* With a compare: refused, by hand too (ncmp@28 -> 1 would
		 * need a compare's bytes: a body too short, or refused). */
		c.ncmp = 1;
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
		c.ncmp = 0;
		free(b);
		ops[2] = op_of(KV_OP_PUT);
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
		ops[2] = op_of(KV_OP_CLOSE);
		ops[0].owner = 1;
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
		ops[0].owner = 0;
		ops[0].inode = 0;
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
		ops[0].inode = 7;
		ops[0].key = "k";
		ops[0].keylen = 1;
		assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
	}
	/* The decoder refuses a registration after a PUT, by hand: the
	 * txn {PUT, FENCE} with the FENCE's type byte made CLOSE and its
	 * body made a valid CLOSE body (inode kept, key and token 0). */
	{
		struct kv_op ops[2] = { op_of(KV_OP_CLOSE),
			op_of(KV_OP_CLOSE) };
		size_t n;
		uint8_t *b;

		c = cmd_of(KV_OP_TXN);
		c.ncmp = 0;
		c.ops = ops;
		c.nops = 2;
		b = encode(&c, &n);
		assert_int_equal(kv_cmd_decode(b, n, &d), 0);
		b[36] = KV_OP_PUT; /* the first op's type byte */
		assert_int_equal(kv_cmd_decode(b, n, &d), -EBADMSG);
		free(b);
	}
	/* A lock body with a key over the limit, by hand. */
	{
		size_t n;
		uint8_t *b;

		c = cmd_of(KV_OP_UNLOCK_OWNER);
		b = encode(&c, &n);
		/* inode@28, keylen@36 */
		b[36] = 0xff;
		b[37] = 0xff;
		assert_int_equal(kv_cmd_decode(b, n, &d), -EBADMSG);
		free(b);
	}
	/* KEEPALIVE: no body. */
	{
		size_t n;
		uint8_t *b;

		c = cmd_of(KV_OP_KEEPALIVE);
		b = encode(&c, &n);
		assert_int_equal(n, 28);
		free(b);
	}
#undef LOCK_OK
#undef LOCK_REJECTED
}

/* A result with a lock section round-trips; bad lock sections refused. */
static void test_kvcmd_result_lock_section(void **state)
{
	struct kv_result r, d;
	uint8_t buf[256];
	long n;

	(void)state;
	kv_result_init(&r);
	r.status = KV_ELOCKED;
	r.flags = KV_RES_LOCK;
	r.attr.inode = 7;
	r.lock = (struct kv_lock){ .session = BIG,
		.owner = BIG + 1,
		.start = 5,
		.end = KV_LK_EOF,
		.token = BIG + 2,
		.pid = 99,
		.lkind = KV_LK_POSIX,
		.lmode = KV_LK_EXCL };
	assert_int_equal(kv_result_size(&r), 81 + KV_LOCK_BYTES);
	n = kv_result_encode(&r, buf, sizeof(buf));
	assert_int_equal(n, 81 + KV_LOCK_BYTES);
	assert_int_equal(kv_result_decode(buf, (size_t)n, &d), 0);
	assert_int_equal(d.status, KV_ELOCKED);
	assert_memory_equal(&d.lock, &r.lock, sizeof(r.lock));
	/* Truncated, or the flag without the section. */
	assert_int_equal(kv_result_decode(buf, (size_t)n - 1, &d), -EBADMSG);
	buf[2] = 0;
	assert_int_equal(kv_result_decode(buf, (size_t)n, &d), -EBADMSG);
	buf[2] = KV_RES_LOCK;
	buf[(size_t)n - 1] = 3; /* lmode */
	assert_int_equal(kv_result_decode(buf, (size_t)n, &d), -EBADMSG);
	r.lock.start = 9;
	r.lock.end = 8;
	assert_int_equal(kv_result_encode(&r, buf, sizeof(buf)), -EINVAL);
	r.lock.end = 9;
	r.status = 12; /* the gap between ErrNoSpace and ErrLocked */
	assert_int_equal(kv_result_encode(&r, buf, sizeof(buf)), -EINVAL);
}

/* kv_cmd_time_ns()/kv_cmd_set_time_ns(): the header's time, in place. */
static void test_kvcmd_time_accessor(void **state)
{
	struct kv_cmd c = cmd_of(KV_OP_PUT), d;
	uint8_t *b;
	size_t n;

	(void)state;
	b = encode(&c, &n);
	assert_true(kv_cmd_time_ns(b, n) == c.time_ns);
	kv_cmd_set_time_ns(b, n, 1234567890123ll);
	assert_true(kv_cmd_time_ns(b, n) == 1234567890123ll);
	assert_int_equal(kv_cmd_decode(b, n, &d), 0);
	assert_true(d.time_ns == 1234567890123ll);
	/* Too short for a header: read -1, write nothing. */
	assert_true(kv_cmd_time_ns(b, 27) == -1);
	kv_cmd_set_time_ns(b, 27, 5);
	assert_true(kv_cmd_time_ns(b, n) == 1234567890123ll);
	free(b);
}

/* The 57-byte attr layout results, snapshots and listings share. */
static void test_kvcmd_attr_layout(void **state)
{
	static const uint8_t want[KV_ATTR_BYTES] = {
		1,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		2,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		3,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0xfc,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		5,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0xa4,
		0x01,
		0,
		0,
		7,
		0,
		0,
		0,
		8,
		0,
		0,
		0,
		2,
		9,
		0,
		0,
		1,
	};
	const struct kv_attr a = {
		.version = 1,
		.inode = 2,
		.size = 3,
		.mtime_ns = -4,
		.ctime_ns = 5,
		.mode = 0644,
		.uid = 7,
		.gid = 8,
		.kind = 2,
		.nlink = 0x01000009,
	};
	struct kv_attr got;
	uint8_t b[KV_ATTR_BYTES];
	struct buf_writer w;
	struct buf_reader r;

	(void)state;
	buf_writer_init(&w, b, sizeof(b));
	kv_attr_put(&w, &a);
	assert_false(w.err);
	assert_int_equal(buf_writer_left(&w), 0);
	assert_memory_equal(b, want, sizeof(want));
	memset(&got, 0, sizeof(got));
	buf_reader_init(&r, b, sizeof(b));
	kv_attr_get(&r, &got);
	assert_false(r.err);
	assert_true(got.version == 1 && got.inode == 2 && got.size == 3 &&
	    got.mtime_ns == -4 && got.ctime_ns == 5 && got.mode == 0644 &&
	    got.uid == 7 && got.gid == 8 && got.kind == 2 &&
	    got.nlink == 0x01000009);
	buf_reader_init(&r, b, sizeof(b) - 1);
	kv_attr_get(&r, &got);
	assert_true(r.err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kvcmd_round_trips_every_type),
		cmocka_unit_test(
		    test_kvcmd_round_trips_empty_value_and_empty_txn),
		cmocka_unit_test(test_kvcmd_header_layout),
		cmocka_unit_test(test_kvcmd_limits_are_accepted_at_the_edge),
		cmocka_unit_test(test_kvcmd_encode_rejects_invalid),
		cmocka_unit_test(test_kvcmd_rejects_every_truncation),
		cmocka_unit_test(test_kvcmd_rejects_trailing_byte),
		cmocka_unit_test(test_kvcmd_rejects_bad_header),
		cmocka_unit_test(test_kvcmd_rejects_bad_fields),
		cmocka_unit_test(test_kvcmd_mutations_reject_or_round_trip),
		cmocka_unit_test(test_kvcmd_result_round_trips),
		cmocka_unit_test(test_kvcmd_result_encode_rejects_invalid),
		cmocka_unit_test(test_kvcmd_status_names),
		cmocka_unit_test(test_kvcmd_lock_bodies),
		cmocka_unit_test(test_kvcmd_result_lock_section),
		cmocka_unit_test(test_kvcmd_time_accessor),
		cmocka_unit_test(test_kvcmd_attr_layout),
	};

	init_ops();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
