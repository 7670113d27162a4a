/*
 * test_fs_cwd.c - a name that changed in place keeps its kernel dentry
 * (three real mounts, tests/fs/fsharness.h).
 *
 * Every key an applied entry changes is notified to each mount's kernel
 * (fs/notify.c).  Invalidating the name of a key that still leads to the
 * same inode unhashes its dentry, and then getcwd(3) of a process whose
 * working directory it is fails with ENOENT, and /proc/self/fd of a file
 * open under it says "(deleted)": CPython's test suite, run in a mount
 * directory (tests/fs/test_fs_posix.sh), failed at its first os.getcwd().
 * Here a process in mount 1's directory d makes, changes and removes
 * entries in d through mount 1 and through mount 2, and changes a file
 * it holds open; getcwd and the open file's path must stay right the
 * whole time.  A name that does lead elsewhere afterwards (a rename over
 * it on another mount) must still be seen as such.
 *
 * Processes and cleanup as in test_fs_mount.c (fsharness.c).  No
 * wall-clock assertions (the waits only give the notifications time to
 * arrive; a late one can only make the test pass wrongly, never fail).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fs/fsharness.h"

/* getcwd() is @want, and the path of @fd is @fpath, for @ms. */
static void expect_paths(const char *want, int fd, const char *fpath, int ms)
{
	char cwd[PATH_MAX], link[64], got[PATH_MAX];

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	for (int t = 0; t <= ms; t += 50) {
		ssize_t n;

		CHECK(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd");
		CHECK(strcmp(cwd, want) == 0, "getcwd %s, not %s", cwd, want);
		n = readlink(link, got, sizeof(got) - 1);
		CHECK(n > 0, "readlink %s", link);
		got[n] = '\0';
		CHECK(strcmp(got, fpath) == 0, "open file at %s, not %s", got,
		    fpath);
		sleep_ms(50);
	}
}

static void test_cwd(void)
{
	char d1[PATH_MAX], p[PATH_MAX], f1[PATH_MAX];
	struct stat st1, st2;
	int fd;

	pathf(d1, 0, "d");
	CHECK(mkdir(d1, 0755) == 0, "mkdir %s", d1);
	pathf(f1, 0, "d/held");
	put_file(f1, "one", O_TRUNC);
	fd = open(f1, O_RDWR);
	CHECK(fd >= 0, "open %s", f1);
	CHECK(chdir(d1) == 0, "chdir %s", d1);
	expect_paths(d1, fd, f1, 0);

	/* Through mount 1, relative to the working directory. */
	put_file("a", "a", O_TRUNC);
	CHECK(symlink("/nonexistent", "l") == 0, "symlink");
	CHECK(mkdir("sub", 0700) == 0, "mkdir sub");
	CHECK(chmod(".", 0750) == 0, "chmod .");
	CHECK(unlink("l") == 0 && rmdir("sub") == 0, "unlink, rmdir");
	CHECK(pwrite(fd, "two", 3, 0) == 3, "pwrite");
	expect_paths(d1, fd, f1, 1000);
	printf("ok entries made and removed here: getcwd, open file path\n");

	/* Through mount 2: d's mtime and the held file change elsewhere. */
	pathf(p, 1, "d/b");
	put_file(p, "b", O_TRUNC);
	pathf(p, 1, "d/held");
	put_file(p, "three", O_TRUNC);
	expect_paths(d1, fd, f1, 1000);
	CHECK(close(fd) == 0, "close");
	/* held removed and made again on mount 2: a new inode. */
	CHECK(unlink(p) == 0, "unlink %s", p);
	put_file(p, "four", O_TRUNC);
	CHECK(stat("held", &st1) == 0, "stat held");
	fd = open("held", O_RDONLY);
	CHECK(fd >= 0, "open held");
	pathf(p, 1, "d/b");
	CHECK(unlink(p) == 0, "unlink %s", p);
	pathf(p, 1, "d");
	CHECK(chmod(p, 0755) == 0, "chmod %s", p);
	expect_paths(d1, fd, f1, 1000);
	CHECK(close(fd) == 0, "close");
	printf("ok entries made and removed on mount 2: getcwd, open file\n");

	/* A rename over a name on mount 2: mount 1 sees the new inode. */
	pathf(p, 1, "d/new");
	put_file(p, "new", O_TRUNC);
	CHECK(stat("new", &st2) == 0, "stat new");
	{
		char q[PATH_MAX];

		pathf(q, 1, "d/held");
		CHECK(rename(p, q) == 0, "rename %s %s", p, q);
	}
	for (int t = 0; t < 100; t++) {
		CHECK(stat("held", &st1) == 0, "stat held");
		if (st1.st_ino == st2.st_ino)
			break;
		sleep_ms(50);
	}
	CHECK(st1.st_ino == st2.st_ino, "held is inode %llu, not %llu",
	    (unsigned long long)st1.st_ino, (unsigned long long)st2.st_ino);
	expect_file(0, "d/held", "new");
	CHECK(chdir("/") == 0, "chdir /");
	printf("ok a rename over a name on mount 2 is seen on mount 1\n");
}

int main(void)
{
	int rv = fsh_setup("cwd", "");

	if (rv != 0)
		return rv;
	test_cwd();
	fsh_stop_all_clean();
	return 0;
}
