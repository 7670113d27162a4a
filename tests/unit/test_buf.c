/*
 * test_buf.c - the byte cursors (raft/buf.h): little-endian layout, bounds
 * checks and the sticky error flag every decoder relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "raft/buf.h"

static void test_buf_roundtrip_little_endian(void **state)
{
	static const uint8_t want[] = {
		0x01,
		0x02,
		0x03,
		0x04,
		0x05,
		0x06,
		0x07,
		0x08,
		0x09,
		0x0a,
		0x0b,
		0x0c,
		0x0d,
		0x0e,
		0x0f,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		'a',
		'b',
		0x03,
		0x00,
		0x00,
		0x00,
		'x',
		'y',
		'z',
	};
	uint8_t b[sizeof(want)];
	struct buf_writer w;
	struct buf_reader r;
	uint32_t n;
	const uint8_t *p;

	(void)state;
	buf_writer_init(&w, b, sizeof(b));
	buf_put_u8(&w, 0x01);
	buf_put_u16(&w, 0x0302);
	buf_put_u32(&w, 0x07060504);
	buf_put_u64(&w, 0x0f0e0d0c0b0a0908ull);
	buf_put_i64(&w, -1);
	buf_put_bytes(&w, "ab", 2);
	buf_put_blob(&w, "xyz", 3);
	assert_false(w.err);
	assert_int_equal(buf_writer_left(&w), 0);
	assert_memory_equal(b, want, sizeof(want));

	buf_reader_init(&r, b, sizeof(b));
	assert_int_equal(buf_get_u8(&r), 0x01);
	assert_int_equal(buf_get_u16(&r), 0x0302);
	assert_int_equal(buf_get_u32(&r), 0x07060504);
	assert_true(buf_get_u64(&r) == 0x0f0e0d0c0b0a0908ull);
	assert_true(buf_get_i64(&r) == -1);
	p = buf_get_bytes(&r, 2);
	assert_ptr_equal(p, b + 23);
	p = buf_get_blob(&r, 3, &n);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "xyz", 3);
	assert_false(r.err);
	assert_int_equal(buf_reader_left(&r), 0);
}

static void test_buf_writer_overflow_is_sticky(void **state)
{
	uint8_t b[6];
	struct buf_writer w;

	(void)state;
	memset(b, 0xaa, sizeof(b));
	buf_writer_init(&w, b, 5);
	buf_put_u32(&w, 0x04030201);
	buf_put_u16(&w, 0x0605); /* does not fit: nothing written */
	assert_true(w.err);
	assert_int_equal(b[4], 0xaa);
	buf_put_u8(&w, 0x07); /* would fit, but the error sticks */
	assert_true(w.err);
	assert_int_equal(b[4], 0xaa);
	assert_int_equal(buf_writer_left(&w), 0);
}

static void test_buf_reader_short_is_sticky_and_zero(void **state)
{
	static const uint8_t b[] = { 1, 2, 3, 4, 5 };
	struct buf_reader r;
	uint32_t n = 7;

	(void)state;
	buf_reader_init(&r, b, sizeof(b));
	assert_int_equal(buf_get_u32(&r), 0x04030201);
	assert_true(buf_get_u64(&r) == 0); /* 1 byte left: refused */
	assert_true(r.err);
	assert_int_equal(buf_get_u8(&r), 0); /* sticky, reads nothing */
	assert_null(buf_get_bytes(&r, 0));
	assert_null(buf_get_blob(&r, 10, &n));
	assert_int_equal(n, 0);
}

static void test_buf_blob_over_max_fails(void **state)
{
	static const uint8_t b[] = { 2, 0, 0, 0, 'h', 'i' };
	struct buf_reader r;
	uint32_t n = 7;

	(void)state;
	buf_reader_init(&r, b, sizeof(b));
	assert_null(buf_get_blob(&r, 1, &n));
	assert_true(r.err);
	assert_int_equal(n, 0);

	buf_reader_init(&r, b, sizeof(b) - 1); /* length says 2, 1 there */
	assert_null(buf_get_blob(&r, 10, &n));
	assert_true(r.err);
	assert_int_equal(n, 0);

	buf_reader_init(&r, b, sizeof(b));
	assert_non_null(buf_get_blob(&r, 2, &n));
	assert_int_equal(n, 2);
	assert_false(r.err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_roundtrip_little_endian),
		cmocka_unit_test(test_buf_writer_overflow_is_sticky),
		cmocka_unit_test(test_buf_reader_short_is_sticky_and_zero),
		cmocka_unit_test(test_buf_blob_over_max_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
