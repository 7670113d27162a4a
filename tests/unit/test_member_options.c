/*
 * test_member_options.c - a member process's command line
 * (raft/member/member_options.c): defaults, every option, strict numbers,
 * missing required options.
 */
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "raft/member/member_options.h"

/* Parse a NULL-terminated list of arguments (argv[0] is supplied). */
static int parse(struct member_options *o, const char **args)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"member";
	while (*args != NULL && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	optind = 0; /* glibc: start over, a fresh argv each time */
	opterr = 0;
	member_options_defaults(o);
	return member_options_parse(argc, argv, o);
}

static void test_member_options_defaults(void **state)
{
	struct member_options o;

	(void)state;
	member_options_defaults(&o);
	assert_null(o.cluster_file);
	assert_null(o.data_dir);
	assert_int_equal(o.id, 0);
	assert_true(o.max_raft_state < 0);
	assert_int_equal(o.workers, 0);
	assert_int_equal(o.read_via_log, 0);
	assert_int_equal(o.read_no_lease, 0);
	assert_int_equal(o.insecure, 0);
	assert_int_equal(o.insecure_membership, 0);
}

static void test_member_options_every_option(void **state)
{
	static const char *args[] = {
		"-c",
		"c.conf",
		"-i",
		"3",
		"-d",
		"/tmp/d",
		"-l",
		"debug",
		"--curve-secret",
		"k.secret",
		"--tick-ms",
		"5",
		"--election-ticks",
		"40",
		"--heartbeat-ticks",
		"4",
		"--max-raft-state",
		"0",
		"--segment-size",
		"4096",
		"--workers",
		"2",
		"--read-mode",
		"log",
		"--fault-injection",
		"--insecure",
		"--insecure-membership",
		NULL,
	};
	struct member_options o;

	(void)state;
	assert_int_equal(parse(&o, args), 0);
	assert_string_equal(o.cluster_file, "c.conf");
	assert_string_equal(o.data_dir, "/tmp/d");
	assert_string_equal(o.log_level, "debug");
	assert_string_equal(o.secret_file, "k.secret");
	assert_int_equal(o.id, 3);
	assert_int_equal(o.tick_ms, 5);
	assert_int_equal(o.election_ticks, 40);
	assert_int_equal(o.heartbeat_ticks, 4);
	assert_true(o.max_raft_state == 0);
	assert_int_equal(o.segment_size, 4096);
	assert_int_equal(o.workers, 2);
	assert_int_equal(o.read_via_log, 1);
	assert_int_equal(o.read_no_lease, 0);
	assert_int_equal(o.fault_injection, 1);
	assert_int_equal(o.insecure, 1);
	assert_int_equal(o.insecure_membership, 1);
}

static void test_member_options_read_modes(void **state)
{
	static const char *const modes[] = { "lease", "index", "log" };
	struct member_options o;

	(void)state;
	for (int i = 0; i < 3; i++) {
		const char *args[] = { "-c", "c.conf", "-i", "1", "-d", "d",
			"--read-mode", modes[i], NULL };

		assert_int_equal(parse(&o, args), 0);
		assert_int_equal(o.read_no_lease, i == 1);
		assert_int_equal(o.read_via_log, i == 2);
	}
}

static void test_member_options_refuses_bad_numbers(void **state)
{
	static const char *const bad[][2] = {
		{ "-i", "0" },
		{ "-i", "-1" },
		{ "-i", " 1" },
		{ "-i", "1x" },
		{ "-i", "9223372036854775808" },
		{ "--tick-ms", "0" },
		{ "--tick-ms", "100001" },
		{ "--workers", "+2" },
		{ "--segment-size", "4095" },
		{ "--max-raft-state", "-1" },
		{ "--read-mode", "fast" },
	};
	struct member_options o;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[] = { "-c", "c", "-d", "d", "-i", "1",
			bad[i][0], bad[i][1], NULL };

		assert_int_equal(parse(&o, args), -1);
	}
}

static void test_member_options_required_and_help(void **state)
{
	static const char *no_id[] = { "-c", "c", "-d", "d", NULL };
	static const char *extra[] = { "-c", "c", "-d", "d", "-i", "1", "x",
		NULL };
	static const char *help[] = { "--help", NULL };
	struct member_options o;

	(void)state;
	assert_int_equal(parse(&o, no_id), -1);
	assert_int_equal(parse(&o, extra), -1);
	assert_int_equal(parse(&o, help), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_member_options_defaults),
		cmocka_unit_test(test_member_options_every_option),
		cmocka_unit_test(test_member_options_refuses_bad_numbers),
		cmocka_unit_test(test_member_options_read_modes),
		cmocka_unit_test(test_member_options_required_and_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
