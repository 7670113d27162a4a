/*
 * test_num.c - the strict number parser (raft/util/num.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raft/util/num.h"

static void test_num_accepts_digits_in_range(void **state)
{
	uint64_t v = 7;
	unsigned u = 7;

	(void)state;
	assert_int_equal(num_parse_u64("0", 10, 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(num_parse_u64("18446744073709551615", 10, 0,
	                     UINT64_MAX, &v),
	    0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(num_parse_u64("0x7f3A9c21", 16, 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 0x7f3a9c21);
	assert_int_equal(num_parse_u64("ff", 16, 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 255);
	assert_int_equal(num_parse_uint("65535", 1, 65535, &u), 0);
	assert_int_equal(u, 65535);
}

static void test_num_refuses_what_strtoull_takes(void **state)
{
	uint64_t v = 7;
	static const char *const bad[] = {
		"",
		" 1",
		"1 ",
		"-1",
		"+1",
		"1x",
		"0x10",
		"1.5",
		"1e3",
		"\t2",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(num_parse_u64(bad[i], 10, 0, UINT64_MAX, &v),
		    -EINVAL);
	assert_int_equal(num_parse_u64(NULL, 10, 0, 1, &v), -EINVAL);
	assert_int_equal(num_parse_u64("0x", 16, 0, 1, &v), -EINVAL);
	assert_int_equal(num_parse_u64("g", 16, 0, 99, &v), -EINVAL);
	assert_int_equal(v, 7);
}

static void test_num_refuses_out_of_range(void **state)
{
	uint64_t v = 7;
	unsigned u = 7;

	(void)state;
	assert_int_equal(num_parse_u64("18446744073709551616", 10, 0,
	                     UINT64_MAX, &v),
	    -ERANGE);
	assert_int_equal(num_parse_u64("4294967296", 10, 0, UINT32_MAX, &v),
	    -ERANGE);
	assert_int_equal(num_parse_u64("0", 10, 1, 10, &v), -ERANGE);
	assert_int_equal(num_parse_uint("65536", 1, 65535, &u), -ERANGE);
	assert_int_equal(v, 7);
	assert_int_equal(u, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_num_accepts_digits_in_range),
		cmocka_unit_test(test_num_refuses_what_strtoull_takes),
		cmocka_unit_test(test_num_refuses_out_of_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
