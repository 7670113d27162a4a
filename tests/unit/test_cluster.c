/*
 * test_cluster.c - the cluster file parser (raft/client/cluster.c): a good file,
 * and each kind of bad one refused with the right line named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "raft/client/cluster.h"

static const char good[] =
    "# three members\n"
    "cluster 1a2b\n"
    "\n"
    "member 1 peer=tcp://127.0.0.1:7001 client=tcp://127.0.0.1:7101\n"
    "member 2 peer=tcp://127.0.0.1:7002 client=tcp://127.0.0.1:7102\n"
    "member 3 peer=tcp://127.0.0.1:7003 client=tcp://127.0.0.1:7103\n";

static void test_cluster_parses_a_good_file(void **state)
{
	struct cluster c;
	char err[256] = "";

	(void)state;
	assert_int_equal(cluster_parse(good, "f", &c, err, sizeof(err)), 0);
	assert_int_equal(c.id, 0x1a2b);
	assert_int_equal(c.n, 3);
	assert_string_equal(cluster_find(&c, 2)->client, "tcp://127.0.0.1:7102");
	assert_false(c.curve);
}

/* @text must be refused with a message starting "f:@line:" and
 * containing @what. */
static void refused(const char *text, int line, const char *what)
{
	struct cluster c;
	char err[256] = "", where[32];

	assert_int_not_equal(cluster_parse(text, "f", &c, err, sizeof(err)),
	    0);
	snprintf(where, sizeof(where), "f:%d:", line);
	if (strncmp(err, where, strlen(where)) != 0 ||
	    strstr(err, what) == NULL)
		fail_msg("expected \"%s ... %s\", got \"%s\"", where, what, err);
}

static void test_cluster_refuses_bad_files(void **state)
{
	(void)state;
	/* Blank lines count: the bad line is the 4th. */
	refused("cluster 1\n\n\nmember x peer=tcp://a:1 client=tcp://a:2\n", 4,
	    "member id");
	refused("cluster 1 junk\n", 1, "after the cluster id");
	refused("cluster 1\nmember 1 peer=tcp://a:1 client=tcp://a:1\n", 2,
	    "same peer and client");
	refused("cluster 1\nmember 1 peer=tcp://a:1 client=tcp://a:2\n"
	    "member 2 peer=tcp://a:1 client=tcp://a:3\n", 3,
	    "shares an endpoint with member 1");
	refused("cluster 1\nmember 1 peer=tcp://a:1 client=tcp://a:2\n"
	    "member 2 peer=tcp://a:3 client=tcp://a:2\n", 3,
	    "shares an endpoint with member 1");
	refused("cluster 1\nmember 1 peer=tcp://a:1 client=tcp://a:2\n"
	    "member 1 peer=tcp://a:3 client=tcp://a:4\n", 3, "listed twice");
	refused("cluster 1\nfrobnicate\n", 2, "unknown directive");
}

/* Numbers are strict (raft/util/num.h): digits only, in range. */
static void test_cluster_numbers_are_strict(void **state)
{
	static const char *const bad_ports[] = {
		"tcp://a:0", "tcp://a:65536", "tcp://a:+80", "tcp://a:-1",
		"tcp://a: 80", "tcp://a:80 ", "tcp://a:0x50", "tcp://a:",
	};
	struct cluster c;
	char err[256];

	(void)state;
	assert_int_equal(cluster_check_endpoint("tcp://a:65535"), 0);
	assert_int_equal(cluster_check_endpoint("tcp://a:1"), 0);
	for (size_t i = 0; i < sizeof(bad_ports) / sizeof(bad_ports[0]); i++)
		if (cluster_check_endpoint(bad_ports[i]) == 0)
			fail_msg("accepted %s", bad_ports[i]);
	refused("cluster 1\nmember +1 peer=tcp://a:1 client=tcp://a:2\n", 2,
	    "member id");
	refused("cluster 1\nmember 9223372036854775808 peer=tcp://a:1 "
	    "client=tcp://a:2\n", 2, "member id");
	refused("cluster 1\nmember 0 peer=tcp://a:1 client=tcp://a:2\n", 2,
	    "member id");
	refused("cluster -1\n", 1, "hexadecimal");
	refused("cluster 0\n", 1, "hexadecimal");
	refused("cluster 10000000000000000\n", 1, "hexadecimal");
	assert_int_equal(cluster_parse("cluster 0XfFfFfFfFfFfFfFfF\n"
	    "member 9223372036854775807 peer=tcp://a:1 client=tcp://a:2\n",
	    "f", &c, err, sizeof(err)), 0);
	assert_true(c.id == UINT64_MAX);
	assert_non_null(cluster_find(&c, INT64_MAX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_parses_a_good_file),
		cmocka_unit_test(test_cluster_refuses_bad_files),
		cmocka_unit_test(test_cluster_numbers_are_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
