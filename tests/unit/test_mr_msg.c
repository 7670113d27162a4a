/*
 * test_mr_msg.c - the raftkv-mr wire codec (mr/msg.c): round trips, and
 * every malformed frame refused before use.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mr/msg.h"

/* --- helpers -------------------------------------------------------------- */

static struct msg sample(void)
{
	struct msg m = { .type = MSG_TASK,
		.phase = MSG_PHASE_MAP,
		.task = 7,
		.attempt = 3,
		.nmap = 8,
		.nreduce = 10,
		.wait_ms = 2500,
		.off = 1ull << 40,
		.len = 123456789,
		.bytes_in = 5,
		.bytes_out = 6 };

	m.s1 = "pg-grimm.txt";
	m.s1len = (uint32_t)strlen(m.s1);
	m.s2 = "/mnt/raftkv/out";
	m.s2len = (uint32_t)strlen(m.s2);
	return m;
}

/* --- tests ---------------------------------------------------------------- */

static void test_mr_msg_round_trip(void **state)
{
	uint8_t *buf = malloc(MSG_MAX);
	struct msg m = sample(), d;
	int n;

	(void)state;
	n = msg_encode(&m, buf, MSG_MAX);
	assert_int_equal(n, MSG_HDR + m.s1len + m.s2len);
	assert_int_equal(msg_decode(&d, buf, (size_t)n), 0);
	assert_int_equal(d.type, MSG_TASK);
	assert_int_equal(d.phase, MSG_PHASE_MAP);
	assert_int_equal(d.task, 7);
	assert_int_equal(d.attempt, 3);
	assert_int_equal(d.nmap, 8);
	assert_int_equal(d.nreduce, 10);
	assert_int_equal(d.wait_ms, 2500);
	assert_true(d.off == 1ull << 40);
	assert_true(d.len == 123456789);
	assert_true(d.bytes_in == 5 && d.bytes_out == 6);
	assert_int_equal(d.s1len, m.s1len);
	assert_memory_equal(d.s1, m.s1, m.s1len);
	assert_memory_equal(d.s2, m.s2, m.s2len);
	free(buf);
}

static void test_mr_msg_empty_strings_and_max_strings(void **state)
{
	uint8_t *buf = malloc(MSG_MAX);
	char *big = malloc(MSG_STR_MAX);
	struct msg m = { .type = MSG_GET }, d;
	int n;

	(void)state;
	n = msg_encode(&m, buf, MSG_MAX);
	assert_int_equal(n, MSG_HDR);
	assert_int_equal(msg_decode(&d, buf, (size_t)n), 0);
	assert_int_equal(d.type, MSG_GET);
	assert_int_equal(d.s1len + d.s2len, 0);
	memset(big, 'x', MSG_STR_MAX);
	m.s1 = m.s2 = big;
	m.s1len = m.s2len = MSG_STR_MAX;
	n = msg_encode(&m, buf, MSG_MAX);
	assert_int_equal(n, MSG_MAX);
	assert_int_equal(msg_decode(&d, buf, (size_t)n), 0);
	m.s1len = MSG_STR_MAX + 1;
	assert_int_equal(msg_encode(&m, buf, MSG_MAX), -EMSGSIZE);
	free(big);
	free(buf);
}

static void test_mr_msg_encode_refuses_bad_type_and_small_buffer(void **state)
{
	uint8_t buf[MSG_HDR + 64];
	struct msg m = sample();

	(void)state;
	m.type = 99;
	assert_int_equal(msg_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample();
	m.phase = 3;
	assert_int_equal(msg_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample();
	assert_int_equal(msg_encode(&m, buf, MSG_HDR), -EMSGSIZE);
}

static void test_mr_msg_decode_refuses_every_truncation(void **state)
{
	uint8_t buf[MSG_HDR + 64];
	struct msg m = sample(), d;
	int n = msg_encode(&m, buf, sizeof(buf)), i;

	(void)state;
	for (i = 0; i < n; i++)
		assert_int_equal(msg_decode(&d, buf, (size_t)i), -EBADMSG);
	/* and a trailing byte */
	assert_int_equal(msg_decode(&d, buf, (size_t)n + 1), -EBADMSG);
}

static void test_mr_msg_decode_refuses_bad_header_fields(void **state)
{
	uint8_t buf[MSG_HDR + 64], c[MSG_HDR + 64];
	struct msg m = sample(), d;
	int n = msg_encode(&m, buf, sizeof(buf));
	static const struct {
		int at;
		uint8_t v;
	} bad[] = {
		{ 0, 'X' }, { 1, 'X' }, { 2, MSG_VERSION + 1 }, { 3, 0 },
		{ 3, 5 }, { 3, 21 }, { 4, 3 }, { 5, 1 }, { 7, 1 },
		{ 63, 0x80 }, /* s1len huge */
		{ 67, 0x01 }, /* s2len off by 16 MiB */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(c, buf, (size_t)n);
		c[bad[i].at] = bad[i].v;
		assert_int_equal(msg_decode(&d, c, (size_t)n), -EBADMSG);
		assert_null(d.s1);
	}
	assert_int_equal(msg_decode(&d, buf, (size_t)n), 0);
}

static void test_mr_msg_decode_survives_random_frames(void **state)
{
	uint8_t buf[MSG_HDR + 64];
	struct msg d;
	int i, j;

	(void)state;
	srand(12);
	for (i = 0; i < 20000; i++) {
		size_t len = (size_t)(rand() % (int)sizeof(buf));

		for (j = 0; j < (int)len; j++)
			buf[j] = (uint8_t)rand();
		if (len >= 3 && rand() % 2) {
			buf[0] = 'M';
			buf[1] = 'R';
			buf[2] = MSG_VERSION;
		}
		if (msg_decode(&d, buf, len) == 0)
			assert_true(MSG_HDR + (size_t)d.s1len + d.s2len == len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mr_msg_round_trip),
		cmocka_unit_test(test_mr_msg_empty_strings_and_max_strings),
		cmocka_unit_test(
		    test_mr_msg_encode_refuses_bad_type_and_small_buffer),
		cmocka_unit_test(test_mr_msg_decode_refuses_every_truncation),
		cmocka_unit_test(test_mr_msg_decode_refuses_bad_header_fields),
		cmocka_unit_test(test_mr_msg_decode_survives_random_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
