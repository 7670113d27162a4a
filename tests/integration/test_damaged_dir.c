/*
 * test_damaged_dir.c - a real kv/raftkv-server refuses to start on a
 * damaged data directory (raft/storage/storage.c, "Damaged data
 * directories"; raftkv(7)).
 *
 * A 3-member cluster runs until member 1 has a log segment (the leader's
 * no-op entry), member 1 is stopped, its newest segment deleted, and the
 * server is started again on that directory by a plain fork + exec (the
 * harness does not report exit statuses): it must exit non-zero, within
 * seconds, with a message naming the missing file.  The child is killed
 * by its pid if it does not exit, and the harness's teardown stops and
 * reaps the cluster whatever happens.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/integration/harness.h"

static pid_t g_child; /* the direct start, killed by the teardown */

static int teardown(void **state)
{
	struct harness *h = *state;
	int bad = 0;

	if (g_child > 0) {
		kill(g_child, SIGKILL);
		waitpid(g_child, NULL, 0);
		g_child = 0;
	}
	if (h != NULL) {
		harness_kill_all(h, SIGTERM);
		bad = harness_unexpected_exits(h);
	}
	harness_free(h);
	*state = NULL;
	return bad ? -1 : 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The newest wal-*.seg in @dir into @name (empty if none). */
static void newest_segment(const char *dir, char *name, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	name[0] = '\0';
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strlen(e->d_name) == 28 &&
		    strncmp(e->d_name, "wal-", 4) == 0 &&
		    strcmp(e->d_name + 24, ".seg") == 0 &&
		    strcmp(e->d_name, name) > 0)
			snprintf(name, len, "%s", e->d_name);
	closedir(d);
}

/*
 * Start member 1 on @dir (with --recover if @recover), its output going
 * to the file @out.  The child is g_child until reaped, so the teardown
 * kills it by PID if an assertion fails.
 */
static void start_member(const char *server, const char *cluster,
    const char *dir, const char *out, bool recover)
{
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	g_child = fork();
	assert_true(g_child >= 0);
	if (g_child == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execl(server, server, "-c", cluster, "-i", "1", "-d", dir,
		    "--tick-ms", "10", recover ? "--recover" : (char *)NULL,
		    (char *)NULL);
		_exit(127);
	}
	close(fd);
}

/* What the member said: the file @out into @buf (@cap bytes, NUL-ended). */
static void read_output(const char *out, char *buf, size_t cap)
{
	int fd = open(out, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	assert_true(fd >= 0);
	got = read(fd, buf, cap - 1);
	close(fd);
	buf[got > 0 ? got : 0] = '\0';
}

/*
 * Start member 1 on @dir, let it run 2 s (it must not exit by itself),
 * stop it with SIGTERM (it must exit 0), and return what it said in @buf.
 */
static void run_until_stopped(const char *server, const char *cluster,
    const char *dir, const char *out, bool recover, char *buf, size_t cap)
{
	int status = 0;

	start_member(server, cluster, dir, out, recover);
	sleep_ms(2000);
	assert_int_equal(waitpid(g_child, &status, WNOHANG), 0); /* running */
	assert_int_equal(kill(g_child, SIGTERM), 0);
	assert_int_equal(waitpid(g_child, &status, 0), g_child);
	g_child = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	read_output(out, buf, cap);
}

static void test_server_refuses_missing_newest_segment(void **state)
{
	const char *bd = getenv("RAFTKV_BUILDDIR");
	char server[4096], cluster[4096], out[4096], seg[64], path[4200];
	char buf[4096];
	struct harness_options o;
	struct harness *h;
	int status = 0;

	snprintf(server, sizeof server, "%s/kv/raftkv-server",
	    bd != NULL && *bd ? bd : ".");
	harness_options_defaults(&o);
	o.name = "damaged_dir";
	o.member_path = server;
	h = harness_new(3, &o);
	assert_non_null(h);
	*state = h;
	assert_true(harness_leader(h, 20000) >= 0);
	for (int k = 0; k < 200; k++) { /* the no-op reaches member 1 */
		newest_segment(harness_data_dir(h, 0), seg, sizeof seg);
		if (seg[0] != '\0')
			break;
		sleep_ms(50);
	}
	assert_true(seg[0] != '\0');
	assert_int_equal(harness_kill(h, 0, SIGTERM), 0);
	newest_segment(harness_data_dir(h, 0), seg, sizeof seg);
	snprintf(path, sizeof path, "%s/%s", harness_data_dir(h, 0), seg);
	assert_int_equal(unlink(path), 0);

	snprintf(cluster, sizeof cluster, "%s/cluster.conf", harness_dir(h));
	snprintf(out, sizeof out, "%s/direct-start.log", harness_dir(h));
	start_member(server, cluster, harness_data_dir(h, 0), out, false);
	for (int k = 0; k < 200; k++) { /* it must exit within 10 s */
		if (waitpid(g_child, &status, WNOHANG) == g_child) {
			g_child = 0;
			break;
		}
		sleep_ms(50);
	}
	assert_int_equal(g_child, 0); /* else: still running */
	read_output(out, buf, sizeof buf);
	print_message("exit status %d, said: %s",
	    WIFEXITED(status) ? WEXITSTATUS(status) : -1, buf);
	assert_true(WIFEXITED(status));
	assert_true(WEXITSTATUS(status) != 0);
	assert_non_null(strstr(buf, seg));
	assert_non_null(strstr(buf, "refusing to start"));

	/* --recover starts it anyway, saying what was lost; it keeps running
	 * and, stopped cleanly, starts again without --recover: the
	 * directory was repaired. */
	run_until_stopped(server, cluster, harness_data_dir(h, 0), out, true,
	    buf, sizeof buf);
	assert_non_null(strstr(buf, "DAMAGED"));
	run_until_stopped(server, cluster, harness_data_dir(h, 0), out, false,
	    buf, sizeof buf);
	assert_null(strstr(buf, "DAMAGED"));
	assert_null(strstr(buf, "refusing"));
	harness_mark_passed(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
		    test_server_refuses_missing_newest_segment, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
