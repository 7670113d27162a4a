/*
 * test_query.c - the read-query codec (kv/query.c): exact bytes of both
 * kinds, round trips, and every rejection the decoder owes the server.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/query.h"

static const uint8_t list_bytes[] = {
	QUERY_VERSION,
	QUERY_LIST,
	2,
	0,
	0,
	0,
	'a',
	'/',
	1,
	0,
	0,
	0,
	'b',
	10,
	0,
	0,
	0,
	'/',
	0,
	0,
	0,
};

static void test_query_list_bytes_and_round_trip(void **state)
{
	const struct query q = {
		.kind = QUERY_LIST,
		.key = (const uint8_t *)"a/",
		.keylen = 2,
		.after = (const uint8_t *)"b",
		.afterlen = 1,
		.limit = 10,
		.delim = '/',
	};
	struct query d;
	uint8_t *b;
	size_t n;

	(void)state;
	assert_int_equal(query_encode(&q, &b, &n), 0);
	assert_int_equal(n, sizeof(list_bytes));
	assert_memory_equal(b, list_bytes, n);
	assert_int_equal(query_decode(b, n, &d), 0);
	assert_int_equal(d.kind, QUERY_LIST);
	assert_int_equal(d.keylen, 2);
	assert_memory_equal(d.key, "a/", 2);
	assert_int_equal(d.afterlen, 1);
	assert_memory_equal(d.after, "b", 1);
	assert_int_equal(d.limit, 10);
	assert_int_equal(d.delim, '/');
	free(b);
}

static void test_query_get_bytes_and_round_trip(void **state)
{
	static const uint8_t want[] = {
		QUERY_VERSION,
		QUERY_GET,
		3,
		0,
		0,
		0,
		'k',
		'e',
		'y',
	};
	const struct query q = {
		.kind = QUERY_GET,
		.key = (const uint8_t *)"key",
		.keylen = 3,
	};
	struct query d;
	uint8_t *b;
	size_t n;

	(void)state;
	assert_int_equal(query_encode(&q, &b, &n), 0);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(b, want, n);
	assert_int_equal(query_decode(b, n, &d), 0);
	assert_int_equal(d.kind, QUERY_GET);
	assert_int_equal(d.keylen, 3);
	assert_ptr_equal(d.key, b + 6);
	free(b);
}

static void test_query_usage_bytes_and_round_trip(void **state)
{
	static const uint8_t want[] = { QUERY_VERSION, QUERY_USAGE, 0, 0, 0,
		0 };
	const struct query q = { .kind = QUERY_USAGE };
	struct query d,
	    bad = { .kind = QUERY_USAGE,
		    .key = (const uint8_t *)"k",
		    .keylen = 1 };
	uint8_t *b, g[] = { QUERY_VERSION, QUERY_USAGE, 1, 0, 0, 0, 'k' };
	size_t n;

	(void)state;
	assert_int_equal(query_encode(&q, &b, &n), 0);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(b, want, n);
	assert_int_equal(query_decode(b, n, &d), 0);
	assert_int_equal(d.kind, QUERY_USAGE);
	free(b);
	/* No key, no trailing bytes. */
	assert_int_equal(query_encode(&bad, &b, &n), -EINVAL);
	assert_int_equal(query_decode(g, sizeof(g), &d), -EBADMSG);
	assert_int_equal(query_decode(want, sizeof(want) - 1, &d), -EBADMSG);
}

static void test_query_decode_rejects(void **state)
{
	uint8_t b[sizeof(list_bytes) + 1];
	struct query d;

	(void)state;
	/* Every truncation, and one trailing byte. */
	for (size_t n = 0; n < sizeof(list_bytes); n++)
		assert_int_equal(query_decode(list_bytes, n, &d), -EBADMSG);
	memcpy(b, list_bytes, sizeof(list_bytes));
	b[sizeof(list_bytes)] = 0;
	assert_int_equal(query_decode(b, sizeof(b), &d), -EBADMSG);
	/* Bad version, bad kind, delim out of range. */
	memcpy(b, list_bytes, sizeof(list_bytes));
	b[0] = QUERY_VERSION + 1;
	assert_int_equal(query_decode(b, sizeof(list_bytes), &d), -EBADMSG);
	memcpy(b, list_bytes, sizeof(list_bytes));
	b[1] = 4;
	assert_int_equal(query_decode(b, sizeof(list_bytes), &d), -EBADMSG);
	memcpy(b, list_bytes, sizeof(list_bytes));
	b[sizeof(list_bytes) - 1] = 0x7f; /* delim 0x7f00002f */
	assert_int_equal(query_decode(b, sizeof(list_bytes), &d), -EBADMSG);
	memset(b + sizeof(list_bytes) - 4, 0xff, 4); /* delim -1: none */
	assert_int_equal(query_decode(b, sizeof(list_bytes), &d), 0);
	assert_int_equal(d.delim, -1);
	/* A GET of an empty key. */
	{
		static const uint8_t g[] = { QUERY_VERSION, QUERY_GET, 0, 0, 0,
			0 };

		assert_int_equal(query_decode(g, sizeof(g), &d), -EBADMSG);
	}
	/* A key over KV_KEY_MAX. */
	{
		uint8_t g[6] = { QUERY_VERSION, QUERY_GET };

		g[2] = (KV_KEY_MAX + 1) & 0xff;
		g[3] = (KV_KEY_MAX + 1) >> 8;
		assert_int_equal(query_decode(g, sizeof(g), &d), -EBADMSG);
	}
}

static void test_query_encode_rejects(void **state)
{
	struct query q = { .kind = QUERY_GET };
	uint8_t *b;
	size_t n;

	(void)state;
	assert_int_equal(query_encode(&q, &b, &n), -EINVAL); /* empty key */
	q.kind = 9;
	q.key = (const uint8_t *)"k";
	q.keylen = 1;
	assert_int_equal(query_encode(&q, &b, &n), -EINVAL);
	q.kind = QUERY_LIST;
	q.afterlen = KV_KEY_MAX + 1;
	assert_int_equal(query_encode(&q, &b, &n), -EINVAL);
}

/* GETLK and LOCKWAIT carry an encoded command (longer than a key may
 * be), LOCKWAIT a wait in ms; every truncation and over-limit refused. */
static void test_query_lock_kinds(void **state)
{
	static uint8_t cmd[QUERY_LOCK_CMD_MAX + 1];
	struct query q = { .kind = QUERY_LOCKWAIT,
		.key = cmd,
		.keylen = KV_KEY_MAX + 100,
		.limit = 2500 };
	struct query d;
	uint8_t *b;
	size_t n;

	(void)state;
	memset(cmd, 0xab, sizeof(cmd));
	assert_int_equal(query_encode(&q, &b, &n), 0);
	assert_int_equal(n, 2 + 4 + KV_KEY_MAX + 100 + 4);
	assert_int_equal(query_decode(b, n, &d), 0);
	assert_int_equal(d.kind, QUERY_LOCKWAIT);
	assert_int_equal(d.keylen, KV_KEY_MAX + 100);
	assert_int_equal(d.limit, 2500);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(query_decode(b, k, &d), -EBADMSG);
	/* A wait over the maximum: refused. */
	b[n - 1] = 0xff;
	assert_int_equal(query_decode(b, n, &d), -EBADMSG);
	free(b);
	q.kind = QUERY_GETLK;
	assert_int_equal(query_encode(&q, &b, &n), 0);
	assert_int_equal(n, 2 + 4 + KV_KEY_MAX + 100);
	assert_int_equal(query_decode(b, n, &d), 0);
	assert_int_equal(d.kind, QUERY_GETLK);
	free(b);
	q.keylen = QUERY_LOCK_CMD_MAX + 1;
	assert_int_equal(query_encode(&q, &b, &n), -EINVAL);
	q.keylen = 0;
	assert_int_equal(query_encode(&q, &b, &n), -EINVAL);
}

static void test_query_attr_is_the_cmd_layout(void **state)
{
	const struct kv_attr a = {
		.version = 9,
		.inode = 8,
		.size = 7,
		.mtime_ns = 6,
		.ctime_ns = 5,
		.mode = 4,
		.uid = 3,
		.gid = 2,
		.kind = 1,
	};
	uint8_t p[QUERY_ATTR_LEN], c[KV_ATTR_BYTES];
	struct buf_writer w;
	struct kv_attr got;

	(void)state;
	query_put_attr(p, &a);
	buf_writer_init(&w, c, sizeof(c));
	kv_attr_put(&w, &a);
	assert_memory_equal(p, c, sizeof(c));
	memset(&got, 0, sizeof(got));
	query_get_attr(p, &got);
	assert_true(got.version == 9 && got.inode == 8 && got.size == 7 &&
	    got.mtime_ns == 6 && got.ctime_ns == 5 && got.mode == 4 &&
	    got.uid == 3 && got.gid == 2 && got.kind == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_list_bytes_and_round_trip),
		cmocka_unit_test(test_query_get_bytes_and_round_trip),
		cmocka_unit_test(test_query_usage_bytes_and_round_trip),
		cmocka_unit_test(test_query_decode_rejects),
		cmocka_unit_test(test_query_encode_rejects),
		cmocka_unit_test(test_query_attr_is_the_cmd_layout),
		cmocka_unit_test(test_query_lock_kinds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
