/*
 * test_err.c - the one error table (raft/err.h): every code unique, inside
 * its layer's range, named and described; -errno and unknown codes handled.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "raft/err.h"

struct code {
	const char *name;
	int value;
	const char *text;
};

static const struct code codes[] = {
#define RK_ERR_ROW(name, value, text) { #name, value, text },
	RK_ERR_MAP(RK_ERR_ROW)
#undef RK_ERR_ROW
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* The range each prefix owns (raft/err.h). */
static const struct {
	const char *prefix;
	int hi, lo;
} ranges[] = {
	{ "RAFT_E", -1000, -1099 },
	{ "STORAGE_E", -1100, -1199 },
	{ "NODE_E", -1200, -1299 },
	{ "FRAME_E", -1300, -1399 },
	{ "CLIENT_E", -1400, -1449 },
	{ "CPROTO_E", -1450, -1499 },
	{ "CLERK_E", -1500, -1599 },
	{ "KVLOCK_E", -1600, -1699 },
};

static void test_err_codes_unique(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCODES; i++)
		for (size_t j = i + 1; j < NCODES; j++)
			if (codes[i].value == codes[j].value)
				fail_msg("%s and %s share %d", codes[i].name,
				    codes[j].name, codes[i].value);
}

static void test_err_codes_in_their_layer_range(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCODES; i++) {
		int found = 0;

		for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]);
		     r++) {
			size_t n = strlen(ranges[r].prefix);

			if (strncmp(codes[i].name, ranges[r].prefix, n) != 0)
				continue;
			found = 1;
			if (codes[i].value > ranges[r].hi ||
			    codes[i].value < ranges[r].lo)
				fail_msg("%s = %d outside %d..%d",
				    codes[i].name, codes[i].value, ranges[r].hi,
				    ranges[r].lo);
		}
		if (!found)
			fail_msg("%s has no layer range", codes[i].name);
	}
}

static void test_err_every_code_has_message_and_name(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCODES; i++) {
		const char *m = rk_strerror(codes[i].value);

		assert_non_null(m);
		assert_true(strlen(m) > 0);
		assert_string_equal(m, codes[i].text);
		assert_string_not_equal(m, "unknown error");
		assert_string_equal(rk_errname(codes[i].value), codes[i].name);
	}
}

static void test_err_errno_and_unknown(void **state)
{
	(void)state;
	assert_string_equal(rk_strerror(0), "success");
	assert_string_equal(rk_strerror(-ENOMEM), strerror(ENOMEM));
	assert_string_equal(rk_strerror(-EIO), strerror(EIO));
	assert_string_equal(rk_strerror(-1999), "unknown error");
	assert_string_equal(rk_strerror(42), "unknown error");
	assert_null(rk_errname(-ENOMEM));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_codes_unique),
		cmocka_unit_test(test_err_codes_in_their_layer_range),
		cmocka_unit_test(test_err_every_code_has_message_and_name),
		cmocka_unit_test(test_err_errno_and_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
