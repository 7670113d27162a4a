/*
 * test_fs_join.c - a machine joins a running filesystem cluster (issue
 * #13): three mounts (fsharness) hold some files; a fourth member is
 * added with `raftkv member add` (its key made by `raftkv member keygen`),
 * mounted with -o join,peer=...,client=... on a fresh data directory,
 * promoted with `raftkv member promote`; it serves the files that were
 * there and its writes reach the others.  Then `raftkv member remove`:
 * the fourth mount stops by itself and unmounts.  Then a cluster without
 * keys, of one mount (it leads): mounted with -o insecure it refuses a
 * `raftkv member add` (exit 5), mounted again with -o
 * insecure,insecure_membership it accepts it.  SKIP without FUSE.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fs/fsharness.h"

static char mnt4[PATH_MAX + 32], data4[PATH_MAX + 32], key4[PATH_MAX + 32];
static char cli[PATH_MAX];
static pid_t pid4, pid5;
static char mnt5[PATH_MAX + 32];

static void cleanup4(void)
{
	if (getpid() != main_pid)
		return;
	if (pid4 > 0) {
		run((const char *[]){ "fusermount3", "-u", "-z", mnt4, NULL });
		kill(pid4, SIGKILL);
		waitpid(pid4, NULL, 0);
		pid4 = 0;
	}
	if (pid5 > 0) {
		run((const char *[]){ "fusermount3", "-u", "-z", mnt5, NULL });
		kill(pid5, SIGKILL);
		waitpid(pid5, NULL, 0);
		pid5 = 0;
	}
}

/* The raftkv CLI on the test's cluster; its exit status. */
static int raftkv(const char *a1, const char *a2, const char *a3,
    const char *a4, const char *a5, const char *a6)
{
	const char *argv[] = { cli, "-c", conf, "--timeout", "60000", a1, a2,
		a3, a4, a5, a6, NULL };

	return run(argv);
}

/* Mount the keyless one-member cluster @conf5 on mnt5 with @opts. */
static void mount5(const char *conf5, const char *opts, const char *log)
{
	pid5 = fork();
	CHECK(pid5 >= 0, "fork");
	if (pid5 == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(prog, prog, conf5, mnt5, "-f", "-o", opts, (char *)NULL);
		_exit(127);
	}
	for (int t = 0; t < 600 && !is_mounted(mnt5); t++)
		sleep_ms(50);
	CHECK(is_mounted(mnt5), "keyless mount (see %s)", log);
}

/* Stop the keyless mount: SIGTERM, it unmounts and exits. */
static void unmount5(void)
{
	int st;

	CHECK(kill(pid5, SIGTERM) == 0, "kill");
	for (int t = 0; t < 400 && waitpid(pid5, &st, WNOHANG) != pid5; t++)
		sleep_ms(50);
	CHECK(kill(pid5, 0) != 0, "the keyless mount did not stop");
	pid5 = 0;
	if (is_mounted(mnt5))
		run((const char *[]){ "fusermount3", "-u", mnt5, NULL });
	CHECK(!is_mounted(mnt5), "keyless mount still mounted");
}

/*
 * A cluster without keys, of one mount (so it leads): -o insecure alone
 * refuses a membership change (exit 5), and with insecure_membership the
 * same mount, started again, accepts it (mount.raftkv(8)).  The learner
 * added never starts; a learner counts in no quorum.
 */
static void keyless_membership(void)
{
	char conf5[PATH_MAX + 32], data5[PATH_MAX + 32], log5[PATH_MAX + 32];
	char opts[PATH_MAX * 2], peer[64], client[64];
	unsigned p1 = free_port(), p2 = free_port();
	FILE *f;

	CHECK(p1 && p2 && p1 != p2, "ports");
	snprintf(conf5, sizeof(conf5), "%s/keyless.conf", dir);
	snprintf(data5, sizeof(data5), "%s/data5", dir);
	snprintf(log5, sizeof(log5), "%s/mount5.log", dir);
	snprintf(mnt5, sizeof(mnt5), "%s/m5", dir);
	CHECK(mkdir(mnt5, 0755) == 0, "mkdir");
	f = fopen(conf5, "w");
	CHECK(f != NULL, "%s", conf5);
	fprintf(f,
	    "cluster 5e1f\n"
	    "member 1 peer=tcp://127.0.0.1:%u client=tcp://127.0.0.1:%u\n",
	    p1, p2);
	CHECK(fclose(f) == 0, "%s", conf5);
	snprintf(peer, sizeof(peer), "tcp://127.0.0.1:%u", free_port());
	snprintf(client, sizeof(client), "tcp://127.0.0.1:%u", free_port());
	snprintf(opts, sizeof(opts), "id=1,data=%s,timeout=%d,insecure", data5,
	    op_timeout_ms);
	mount5(conf5, opts, log5);
	CHECK(run((const char *[]){ cli, "-c", conf5, "--timeout", "20000",
	          "member", "add", "2", peer, client, "-", NULL }) == 5,
	    "a change refused without insecure_membership");
	unmount5();
	snprintf(opts, sizeof(opts),
	    "id=1,data=%s,timeout=%d,insecure,insecure_membership", data5,
	    op_timeout_ms);
	mount5(conf5, opts, log5);
	CHECK(log_says(log5, "INSECURE: --insecure-membership"), "warning");
	CHECK(run((const char *[]){ cli, "-c", conf5, "--timeout", "20000",
	          "member", "add", "2", peer, client, "-", NULL }) == 0,
	    "a change accepted with insecure_membership");
	unmount5();
}

int main(void)
{
	char peer[64], client[64], opts[PATH_MAX * 2], log4[PATH_MAX + 32];
	char path[2 * PATH_MAX], big[20000], id4[] = "4";
	const char *bd = getenv("RAFTKV_BUILDDIR");
	int rv = fsh_setup("join", NULL), st;
	unsigned p1, p2;

	if (rv != 0)
		return rv;
	snprintf(cli, sizeof(cli), "%s/kv/raftkv", bd ? bd : ".");
	snprintf(mnt4, sizeof(mnt4), "%s/m4", dir);
	snprintf(data4, sizeof(data4), "%s/data4", dir);
	snprintf(key4, sizeof(key4), "%s/member4.key", dir);
	snprintf(log4, sizeof(log4), "%s/mount4.log", dir);
	CHECK(mkdir(mnt4, 0755) == 0, "mkdir");
	atexit(cleanup4);
	if (getenv("RAFTKV_KEEP") != NULL)
		printf("dir %s\n", dir);

	/* Files that are there before the machine joins. */
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pathf(path, 0, "d");
	CHECK(mkdir(path, 0755) == 0, "mkdir");
	for (int i = 0; i < 20; i++) {
		char body[64];

		pathf(path, i % N, "d/f%d", i);
		snprintf(body, sizeof(body), "file %d", i);
		put_file(path, body, O_CREAT | O_TRUNC);
	}
	pathf(path, 1, "big");
	put_file(path, big, O_CREAT | O_TRUNC);

	/* Add it, then mount it with join. */
	p1 = free_port();
	p2 = free_port();
	CHECK(p1 && p2 && p1 != p2, "ports");
	snprintf(peer, sizeof(peer), "tcp://127.0.0.1:%u", p1);
	snprintf(client, sizeof(client), "tcp://127.0.0.1:%u", p2);
	CHECK(raftkv("member", "keygen", key4, NULL, NULL, NULL) == 0,
	    "keygen");
	CHECK(raftkv("member", "add", id4, peer, client, key4) == 0,
	    "member add");
	/* A second add of the same member is refused, clearly. */
	CHECK(raftkv("member", "add", id4, peer, client, key4) == 5,
	    "second add");
	snprintf(opts, sizeof(opts),
	    "id=4,data=%s,timeout=%d,join,peer=%s,client=%s", data4,
	    op_timeout_ms, peer, client);
	pid4 = fork();
	CHECK(pid4 >= 0, "fork");
	if (pid4 == 0) {
		int fd = open(log4, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(prog, prog, conf, mnt4, "-f", "-o", opts, (char *)NULL);
		_exit(127);
	}
	for (int t = 0; t < 600 && !is_mounted(mnt4); t++)
		sleep_ms(50);
	CHECK(is_mounted(mnt4), "mount 4 (see %s)", log4);
	CHECK(raftkv("member", "promote", id4, NULL, NULL, NULL) == 0,
	    "member promote");

	/* It serves what was there, and its writes reach the others. */
	for (int i = 0; i < 20; i++) {
		char rel[32], want[64], *got;

		snprintf(rel, sizeof(rel), "d/f%d", i);
		snprintf(want, sizeof(want), "file %d", i);
		snprintf(path, sizeof(path), "%s/%s", mnt4, rel);
		got = get_file(path);
		CHECK(got != NULL && strcmp(got, want) == 0,
		    "%s via the joined "
		    "mount",
		    rel);
	}
	snprintf(path, sizeof(path), "%s/big", mnt4);
	CHECK(get_file(path) != NULL && strcmp(get_file(path), big) == 0,
	    "big via the joined mount");
	snprintf(path, sizeof(path), "%s/from4", mnt4);
	put_file(path, "written on 4", O_CREAT | O_TRUNC);
	for (int i = 0; i < N; i++)
		expect_file(i, "from4", "written on 4");

	/* Removed: it stops by itself and unmounts. */
	CHECK(raftkv("member", "remove", id4, NULL, NULL, NULL) == 0,
	    "member remove");
	for (int t = 0; t < 400 && waitpid(pid4, &st, WNOHANG) != pid4; t++)
		sleep_ms(50);
	CHECK(kill(pid4, 0) != 0, "the removed mount still runs");
	pid4 = 0;
	CHECK(log_says(log4, "removed from the cluster"), "log line");
	CHECK(!is_mounted(mnt4), "mount 4 still mounted");
	/* The three carry on. */
	pathf(path, 2, "after");
	put_file(path, "after", O_CREAT | O_TRUNC);
	expect_file(0, "after", "after");
	printf("PASS: a mount joined, served the files there, was removed\n");
	keyless_membership();
	printf("PASS: a keyless mount takes changes with insecure_membership "
	       "only\n");
	return 0;
}
