/*
 * test_logging.c - unit tests for raft/logging.c.
 *
 * stderr is redirected (dup2) to a temporary file around each call under
 * test, then the file is read back and the line checked.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "raft/util/logging.h"

/* ----------------------------------------------------------------------
 * fixture
 * ---------------------------------------------------------------------- */

struct capture {
	FILE *tmp;
	int saved_stderr;
	char buf[4096];
};

static int setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	log_init(LOG_LEVEL_INFO, "n2");
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	log_init(LOG_LEVEL_INFO, NULL);
	return 0;
}

/* ----------------------------------------------------------------------
 * helpers
 * ---------------------------------------------------------------------- */

static void capture_begin(struct capture *c)
{
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved_stderr = dup(STDERR_FILENO);
	assert_true(c->saved_stderr >= 0);
	assert_true(dup2(fileno(c->tmp), STDERR_FILENO) >= 0);
}

/* Restore stderr and return everything written meanwhile (NUL-terminated). */
static const char *capture_end(struct capture *c)
{
	size_t n;

	assert_true(dup2(c->saved_stderr, STDERR_FILENO) >= 0);
	close(c->saved_stderr);
	rewind(c->tmp);
	n = fread(c->buf, 1, sizeof(c->buf) - 1, c->tmp);
	c->buf[n] = '\0';
	fclose(c->tmp);
	return c->buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* Check "YYYY-MM-DDTHH:MM:SS.mmmZ " at the start of @s. */
static void assert_timestamp(const char *s)
{
	const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ ";
	size_t i;

	assert_true(strlen(s) >= strlen(pat));
	for (i = 0; pat[i] != '\0'; i++) {
		if (pat[i] == 'd')
			assert_true(s[i] >= '0' && s[i] <= '9');
		else
			assert_int_equal(s[i], pat[i]);
	}
}

/* ----------------------------------------------------------------------
 * tests
 * ---------------------------------------------------------------------- */

static void test_logging_line_format(void **state)
{
	struct capture *c = *state;
	const char *out;

	capture_begin(c);
	log_info("elected in term %d", 7);
	out = capture_end(c);

	assert_timestamp(out);
	assert_string_equal(out + strlen("2024-11-24T20:41:07.123Z "),
	    "n2 info: elected in term 7\n");
}

static void test_logging_no_tag(void **state)
{
	struct capture *c = *state;
	const char *out;

	log_procinit(NULL);
	capture_begin(c);
	log_warnx("plain");
	out = capture_end(c);

	assert_timestamp(out);
	assert_string_equal(out + 25, "warn: plain\n");
}

static void test_logging_filters_below_level(void **state)
{
	struct capture *c = *state;
	const char *out;

	log_setlevel(LOG_LEVEL_WARN);
	capture_begin(c);
	log_debug("d");
	log_info("i");
	log_warnx("w");
	out = capture_end(c);
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(out, "n2 warn: w\n"));

	log_setlevel(LOG_LEVEL_DEBUG);
	capture_begin(c);
	log_debug("d");
	log_info("i");
	log_warnx("w");
	out = capture_end(c);
	assert_int_equal(count_lines(out), 3);
	assert_non_null(strstr(out, "n2 debug: d\n"));
	assert_non_null(strstr(out, "n2 info: i\n"));
}

static void test_logging_warn_appends_errno(void **state)
{
	struct capture *c = *state;
	const char *out;
	char want[256];

	snprintf(want, sizeof(want), "n2 warn: open /x: %s\n",
	    strerror(ENOENT));
	capture_begin(c);
	errno = ENOENT;
	log_warn("open %s", "/x");
	assert_int_equal(errno, ENOENT); /* preserved for the caller */
	out = capture_end(c);
	assert_non_null(strstr(out, want));

	capture_begin(c);
	errno = ENOENT;
	log_warnx("no errno here");
	out = capture_end(c);
	assert_null(strstr(out, strerror(ENOENT)));
}

static void test_logging_long_message_truncated_to_one_line(void **state)
{
	struct capture *c = *state;
	const char *out;
	char big[5000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_begin(c);
	log_info("%s", big);
	out = capture_end(c);
	assert_int_equal(count_lines(out), 1);
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_true(strlen(out) < sizeof(big));
}

static void test_logging_level_parse(void **state)
{
	enum log_level l = LOG_LEVEL_INFO;

	(void)state;
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("info", &l), 0);
	assert_int_equal(l, LOG_LEVEL_INFO);

	assert_int_equal(log_level_parse("verbose", &l), -EINVAL);
	assert_int_equal(log_level_parse("DEBUG", &l), -EINVAL);
	assert_int_equal(log_level_parse("", &l), -EINVAL);
	assert_int_equal(log_level_parse(NULL, &l), -EINVAL);
	assert_int_equal(l, LOG_LEVEL_INFO); /* unchanged on error */

	assert_string_equal(log_level_name(LOG_LEVEL_WARN), "warn");
	assert_string_equal(log_level_name((enum log_level)42), "?");
}

static void test_logging_fatal_exits_1_with_message(void **state)
{
	struct capture *c = *state;
	const char *out;
	int status;
	pid_t pid;

	fflush(stdout); /* the child's exit() must not flush it twice */
	capture_begin(c);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		errno = EIO;
		fatal("fsync %s", "wal");
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	out = capture_end(c);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_non_null(strstr(out, "n2 warn: fsync wal: "));
	assert_non_null(strstr(out, strerror(EIO)));
}

static void test_logging_fatalx_exits_1(void **state)
{
	struct capture *c = *state;
	const char *out;
	int status;
	pid_t pid;

	fflush(stdout); /* the child's exit() must not flush it twice */
	capture_begin(c);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		fatalx("corrupt segment %d", 3);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	out = capture_end(c);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_non_null(strstr(out, "n2 warn: corrupt segment 3\n"));
}

/* With the syslog sink open nothing reaches stderr (the lines go to
 * syslog(3); tests/fs/test_mount8.sh checks what a syslog daemon
 * receives); closed, stderr again.  errno survives both. */
static void test_logging_syslog_sink_replaces_stderr(void **state)
{
	struct capture *c = *state;
	const char *out;

	capture_begin(c);
	log_syslog_open("test_logging");
	errno = ENOENT;
	log_info("to syslog");
	log_warn("to syslog too");
	assert_int_equal(errno, ENOENT);
	log_syslog_close();
	log_info("back on stderr");
	log_syslog_close(); /* a second close is a no-op */
	out = capture_end(c);
	assert_int_equal(count_lines(out), 1);
	assert_null(strstr(out, "syslog"));
	assert_non_null(strstr(out, "n2 info: back on stderr\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_logging_line_format, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_logging_no_tag, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_logging_filters_below_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logging_warn_appends_errno,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_logging_long_message_truncated_to_one_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_logging_level_parse, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_logging_fatal_exits_1_with_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logging_fatalx_exits_1,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_logging_syslog_sink_replaces_stderr, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
