/*
 * test_fs_mount.c - end-to-end test of mount.raftkv: three real mounts
 * (three members) of one cluster on 127.0.0.1, driven with plain system
 * calls, each change checked from the other mounts.
 *
 * Scenarios, in order (one cluster for all, to keep the suite fast):
 *   write on one mount, read on the other two; errnos; setgid
 *   directories; one-line refusals and a daemonized mount; holes read as
 *   zeros; O_APPEND from all mounts; write buffering (the writer sees its
 *   bytes at once, other mounts at fsync/close, never before); the raftkv
 *   client and the mounts are one namespace (put/get vs read/write);
 *   user.* xattrs; files removed while open; O_CREAT|O_EXCL and mkdir
 *   races between processes on every mount (exactly one winner per
 *   round); O_CREAT (with and without O_TRUNC) of one new name from
 *   every mount at once (all open one file); rmdir ENOTEMPTY, unlink,
 *   rmdir seen from the others; a directory rename seen atomically by a
 *   reader on another mount (never neither name, never a partial tree),
 *   a rename of 1401 keys,
 *   RENAME_NOREPLACE/EXCHANGE; random operations against a model
 *   (seeded); readers and writers of three files on all mounts (every
 *   file written from every mount; fsync or close commits) checked
 *   linearizable; a minority mount fails with EIO after its timeout (never the
 *   old data) and works again once the partition heals; kill -9 of one
 *   mount: the others go on, the dead mountpoint answers ENOTCONN, and a
 *   remount on the same data directory catches up; the size quota of the
 *   cluster file (df shows it; a write past it fails with ENOSPC and
 *   commits nothing of the refused extent; reads, unlink and writes
 *   after it keep working); big files (after a restart with a larger
 *   quota: a 64 MiB file written on one mount, read back on the others,
 *   by read and by mmap, and whole by `raftkv get`; a 4 KiB write into
 *   it grows the Raft log by a few KiB; truncate up and down; EFBIG at
 *   1 GiB; a member restarted from its snapshot holds it exactly; with
 *   RAFTKV_LONG=1 a 1 GiB file); -o cache=relaxed on mounts 2 and 3
 *   (close-to-open in every round, through a hard link too, own writes at
 *   once, the page cache used (mincore), a bounded stale stat, a shared
 *   writable mapping committed by msync, readdir after opendir); clean
 *   stops.
 *
 * Processes: every mount runs in the foreground (-f) as a child of this
 * test, with PR_SET_PDEATHSIG; cleanup (atexit, also after a failed
 * check) unmounts with fusermount3 -u (lazily if busy) and kills by PID.
 * Exit 77 (SKIP) when FUSE cannot be used here.  No wall-clock assertions:
 * timeouts are generous and only bound waiting.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "tests/lib/history.h"
#include "tests/lib/linz.h"
#include "raft/client/client.h"
#include "raft/client/cluster.h"
#include "raft/client/keys.h"
#include "raft/client/cproto.h"
#include "tests/fs/fsharness.h"

/* The cluster file's quota: above what the other scenarios hold at once
 * (about 6 MiB: bigfile, bulk), small enough to fill quickly. */
#define QUOTA (12u << 20)

/* The model's current mapping, for a report on SIGBUS. */
static const unsigned char *cur_map;
static size_t cur_map_len;

/* A crash of the test itself: report, clean up (unmount, kill), die. */
static void on_fatal(int sig, siginfo_t *si, void *uc)
{
	char msg[160];
	int n;

	(void)uc;
	n = snprintf(msg, sizeof(msg),
	    "FATAL signal %d at %p (mapping %p, "
	    "%zu bytes); cleaning up\n",
	    sig, si->si_addr, (const void *)cur_map, cur_map_len);
	if (n > 0 && write(2, msg, (size_t)n) < 0) {
		/* nothing more to do */
	}
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}


static void test_basic(void)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, 0, "hello");
	put_file(p, "hello from 1\n", O_TRUNC);
	for (int i = 0; i < N; i++)
		expect_file(i, "hello", "hello from 1\n");
	/* Overwrite shorter on another mount: O_TRUNC. */
	pathf(p, 1, "hello");
	put_file(p, "two\n", O_TRUNC);
	for (int i = 0; i < N; i++)
		expect_file(i, "hello", "two\n");
	/* mkdir -p style and a file inside, seen everywhere. */
	pathf(p, 2, "d1");
	CHECK(mkdir(p, 0755) == 0, "mkdir");
	pathf(p, 2, "d1/d2");
	CHECK(mkdir(p, 0700) == 0, "mkdir");
	pathf(p, 0, "d1/d2/f");
	put_file(p, "deep", 0);
	expect_file(1, "d1/d2/f", "deep");
	pathf(p, 1, "d1/d2");
	CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
	        (st.st_mode & 07777) == 0700,
	    "mode of d2");
	/* chmod on one mount, seen on the others; inode numbers agree. */
	pathf(p, 0, "d1/d2/f");
	CHECK(chmod(p, 0640) == 0, "chmod");
	ino_t ino0;
	CHECK(stat(p, &st) == 0, "stat");
	ino0 = st.st_ino;
	pathf(p, 2, "d1/d2/f");
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0640 &&
	        st.st_ino == ino0 && st.st_size == 4,
	    "attributes on mount 3");
	/* A setgid directory passes its group (and, to directories, the
	 * bit) on to what is created in it. */
	pathf(p, 0, "sg");
	CHECK(mkdir(p, 0755) == 0 && chown(p, 0, 4242) == 0 &&
	        chmod(p, 02775) == 0,
	    "setgid dir");
	pathf(p, 1, "sg/f");
	put_file(p, "g", 0);
	CHECK(stat(p, &st) == 0 && st.st_gid == 4242, "group inherited");
	pathf(p, 2, "sg/d");
	CHECK(mkdir(p, 0755) == 0 && stat(p, &st) == 0 && st.st_gid == 4242 &&
	        (st.st_mode & S_ISGID),
	    "setgid inherited");
	/* Symlinks. */
	pathf(p, 0, "link");
	CHECK(symlink("d1/d2/f", p) == 0, "symlink");
	expect_file(2, "link", "deep");
	/* EEXIST, ENOTDIR, EISDIR, ENAMETOOLONG. */
	pathf(p, 1, "d1");
	errno = 0;
	CHECK(mkdir(p, 0755) != 0 && errno == EEXIST, "mkdir existing");
	pathf(p, 1, "hello/x");
	errno = 0;
	CHECK(open(p, O_RDONLY) < 0 && errno == ENOTDIR, "ENOTDIR");
	pathf(p, 1, "d1");
	errno = 0;
	CHECK(unlink(p) != 0 && errno == EISDIR, "unlink a directory");
	char longname[300];
	memset(longname, 'x', 256);
	longname[256] = '\0';
	pathf(p, 1, "%s", longname);
	errno = 0;
	CHECK(open(p, O_CREAT | O_WRONLY, 0644) < 0 && errno == ENAMETOOLONG,
	    "ENAMETOOLONG");
	expect_errno(2, "nonexistent", ENOENT);
}

static void test_holes_append_truncate(void)
{
	char p[PATH_MAX];
	unsigned char buf[64];
	int fd;

	pathf(p, 0, "holes");
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0, "open");
	CHECK(pwrite(fd, "end", 3, 20) == 3, "pwrite past EOF");
	CHECK(close(fd) == 0, "close");
	pathf(p, 1, "holes");
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 23, "read");
	close(fd);
	for (int i = 0; i < 20; i++)
		CHECK(buf[i] == 0, "hole byte %d is %d", i, buf[i]);
	CHECK(memcmp(buf + 20, "end", 3) == 0, "data after the hole");
	pathf(p, 2, "holes");
	CHECK(truncate(p, 5) == 0, "truncate");
	struct stat st;
	pathf(p, 0, "holes");
	CHECK(stat(p, &st) == 0 && st.st_size == 5, "size after truncate");

	/* O_APPEND from every mount, several rounds: nothing overwritten. */
	for (int r = 0; r < 3; r++)
		for (int i = 0; i < N; i++) {
			char s[8];

			snprintf(s, sizeof(s), "%d%d;", r, i);
			pathf(p, i, "log");
			put_file(p, s, O_APPEND);
		}
	expect_file(1, "log", "00;01;02;10;11;12;20;21;22;");
}

/* Buffered writes: the writer's own descriptors see them at once, other
 * mounts only once they commit (fsync, close), never before. */
static void test_write_buffering(void)
{
	char p[PATH_MAX], buf[64];
	struct stat st;
	unsigned char *big, *back;
	size_t bigsz = 2600 * 1024;
	int fd, fd2;

	pathf(p, 0, "wb");
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd >= 0, "open");
	CHECK(write(fd, "abc", 3) == 3, "write");
	expect_file(1, "wb", ""); /* not committed yet */
	CHECK(fsync(fd) == 0, "fsync");
	expect_file(1, "wb", "abc");
	CHECK(write(fd, "def", 3) == 3, "write");
	expect_file(2, "wb", "abc");
	CHECK(close(fd) == 0, "close");
	expect_file(2, "wb", "abcdef");

	pathf(p, 0, "wb2");
	fd2 = open(p, O_CREAT | O_RDWR, 0644);
	CHECK(fd2 >= 0, "open");
	CHECK(write(fd2, "xyz", 3) == 3, "write");
	CHECK(pread(fd2, buf, sizeof(buf), 0) == 3 &&
	        memcmp(buf, "xyz", 3) == 0,
	    "own bytes at once");
	CHECK(fstat(fd2, &st) == 0 && st.st_size == 3, "own size at once");
	CHECK(close(fd2) == 0, "close");

	/* A large file in small writes, compared byte for byte elsewhere. */
	big = malloc(bigsz);
	back = malloc(bigsz + 1);
	CHECK(big && back, "malloc");
	for (size_t i = 0; i < bigsz; i++)
		big[i] = (unsigned char)(i * 7 + i / 4096);
	pathf(p, 0, "bigfile");
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd >= 0, "open");
	for (size_t off = 0; off < bigsz; off += 4096)
		CHECK(write(fd, big + off, 4096) == 4096, "write at %zu", off);
	CHECK(close(fd) == 0, "close");
	pathf(p, 2, "bigfile");
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0, "open");
	size_t got = 0;
	ssize_t n;
	while ((n = read(fd, back + got, bigsz + 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	CHECK(got == bigsz && memcmp(big, back, bigsz) == 0,
	    "big file read "
	    "back %zu bytes",
	    got);
	free(big);
	free(back);
}

/* user.* extended attributes, checked across mounts; they follow the
 * inode through a rename and go away with the file. */
static void test_xattr(void)
{
	char p[PATH_MAX], q[PATH_MAX], buf[256];
	struct clerk_options o;
	struct clerk *ck;
	struct clerk_entry *e = NULL;
	size_t n = 0;
	ssize_t len;

	pathf(p, 0, "xa");
	put_file(p, "data", 0);
	CHECK(setxattr(p, "user.color", "blue", 4, 0) == 0, "setxattr");
	pathf(p, 1, "xa");
	len = getxattr(p, "user.color", buf, sizeof(buf));
	CHECK(len == 4 && memcmp(buf, "blue", 4) == 0, "getxattr elsewhere");
	CHECK(getxattr(p, "user.color", NULL, 0) == 4, "getxattr size");
	errno = 0;
	CHECK(getxattr(p, "user.color", buf, 2) < 0 && errno == ERANGE,
	    "ERANGE");
	errno = 0;
	CHECK(setxattr(p, "user.color", "red", 3, XATTR_CREATE) < 0 &&
	        errno == EEXIST,
	    "XATTR_CREATE on an existing attribute");
	errno = 0;
	CHECK(setxattr(p, "user.size", "L", 1, XATTR_REPLACE) < 0 &&
	        errno == ENODATA,
	    "XATTR_REPLACE on a missing attribute");
	CHECK(setxattr(p, "user.size", "L", 1, XATTR_CREATE) == 0, "create");
	errno = 0;
	CHECK(setxattr(p, "trusted.x", "1", 1, 0) < 0 && errno == EOPNOTSUPP,
	    "non-user namespace");
	pathf(p, 2, "xa");
	len = listxattr(p, buf, sizeof(buf));
	CHECK(len == 21 && memcmp(buf, "user.color\0user.size\0", 21) == 0,
	    "listxattr: %zd", len);
	CHECK(removexattr(p, "user.size") == 0, "removexattr");
	errno = 0;
	CHECK(getxattr(p, "user.size", buf, sizeof(buf)) < 0 &&
	        errno == ENODATA,
	    "removed");
	errno = 0;
	CHECK(removexattr(p, "user.size") < 0 && errno == ENODATA,
	    "remove twice");
	/* A rename keeps them (they belong to the inode). */
	pathf(p, 0, "xa");
	pathf(q, 0, "xb");
	CHECK(rename(p, q) == 0, "rename");
	pathf(q, 1, "xb");
	len = getxattr(q, "user.color", buf, sizeof(buf));
	CHECK(len == 4 && memcmp(buf, "blue", 4) == 0, "after rename");
	/* Unlink removes them in the same command, and so does a rename
	 * over a file: no key left behind. */
	CHECK(unlink(q) == 0, "unlink");
	pathf(p, 2, "xc");
	put_file(p, "c", 0);
	CHECK(setxattr(p, "user.gone", "soon", 4, 0) == 0, "setxattr");
	pathf(q, 2, "xd");
	put_file(q, "d", 0);
	CHECK(rename(q, p) == 0, "rename over");
	errno = 0;
	CHECK(getxattr(p, "user.gone", buf, sizeof(buf)) < 0 &&
	        errno == ENODATA,
	    "the replaced file's attribute is gone");
	clerk_options_defaults(&o);
	o.deadline_ms = 20000;
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	CHECK(clerk_list(ck, "\001x/", 3, NULL, 0, 0, -1, &e, &n) == KV_OK,
	    "list");
	CHECK(n == 0, "%zu attribute keys left after unlink", n);
	clerk_entries_free(e, n);
	clerk_free(ck);
}

/* The number of keys under @prefix (a linearizable listing). */
/* A file removed while open on a mount stays readable and writable
 * through its descriptors there; its last close deletes it. */
static void test_open_unlinked(void)
{
	char p[PATH_MAX], q[PATH_MAX], buf[64];
	struct stat st;
	int fd, fd2;

	pathf(p, 0, "ou");
	put_file(p, "still here", 0);
	fd = open(p, O_RDWR);
	CHECK(fd >= 0, "open");
	CHECK(unlink(p) == 0, "unlink while open");
	expect_errno(1, "ou", ENOENT);
	expect_errno(0, "ou", ENOENT);
	CHECK(pread(fd, buf, sizeof(buf), 0) == 10 &&
	        memcmp(buf, "still here", 10) == 0,
	    "read after unlink");
	CHECK(pwrite(fd, "STILL", 5, 0) == 5 && fsync(fd) == 0,
	    "write after unlink");
	CHECK(pread(fd, buf, sizeof(buf), 0) == 10 &&
	        memcmp(buf, "STILL here", 10) == 0,
	    "read back");
	CHECK(fstat(fd, &st) == 0 && st.st_size == 10, "fstat");
	CHECK(fsh_count_keys("\001o/") == 1, "kept as one hidden key");
	CHECK(close(fd) == 0, "close");
	CHECK(fsh_wait_keys("\001o/", 0), "deleted by the last close");

	/* Renamed over while open: the old file lives on for its reader. */
	pathf(p, 0, "ro1");
	put_file(p, "old", 0);
	pathf(q, 0, "ro2");
	put_file(q, "new", 0);
	fd = open(p, O_RDONLY);
	fd2 = open(p, O_RDONLY);
	CHECK(fd >= 0 && fd2 >= 0, "open");
	CHECK(rename(q, p) == 0, "rename over an open file");
	expect_file(1, "ro1", "new");
	CHECK(pread(fd, buf, sizeof(buf), 0) == 3 && !memcmp(buf, "old", 3),
	    "the replaced file through its descriptor");
	CHECK(close(fd) == 0, "close");
	CHECK(fsh_count_keys("\001o/") == 1, "kept while one is open");
	CHECK(pread(fd2, buf, sizeof(buf), 0) == 3 && !memcmp(buf, "old", 3),
	    "second descriptor");
	CHECK(close(fd2) == 0, "close");
	CHECK(fsh_wait_keys("\001o/", 0), "deleted by the last close");
}

/* The raftkv client and the mounts are one namespace. */
static void test_cli(void)
{
	struct clerk_options o;
	struct clerk *ck;
	char p[PATH_MAX];
	void *v = NULL;
	size_t len = 0;
	struct kv_meta meta = { .kind = KV_KIND_FILE, .mode = 0644 };

	clerk_options_defaults(&o);
	o.deadline_ms = 20000;
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	CHECK(clerk_put(ck, "/d1/from-cli", 12, "via put", 7, 0, 0, &meta,
	          NULL) == KV_OK,
	    "put");
	for (int i = 0; i < N; i++)
		expect_file(i, "d1/from-cli", "via put");
	pathf(p, 2, "d1/from-mount");
	put_file(p, "via write", 0);
	CHECK(clerk_get(ck, "/d1/from-mount", 14, NULL, &v, &len) == KV_OK &&
	        len == 9 && memcmp(v, "via write", 9) == 0,
	    "get");
	free(v);
	/* A key the mount cannot show (no leading '/') stays invisible. */
	CHECK(clerk_put(ck, "plain", 5, "x", 1, 0, 0, &meta, NULL) == KV_OK,
	    "put plain");
	clerk_free(ck);
}

/* @nproc processes per mount race to create @rel with O_EXCL (or mkdir);
 * returns the number of winners. */
static int race(const char *rel, bool use_mkdir, int nproc)
{
	pid_t kids[N * 8];
	int n = 0, winners = 0;

	for (int i = 0; i < N; i++)
		for (int k = 0; k < nproc; k++) {
			pid_t p = fork();

			CHECK(p >= 0, "fork");
			if (p == 0) {
				char path[PATH_MAX];
				int fd, ok;

				pathf(path, i, "%s", rel);
				if (use_mkdir) {
					ok = mkdir(path, 0755) == 0;
				} else {
					fd = open(path,
					    O_CREAT | O_EXCL | O_WRONLY, 0644);
					ok = fd >= 0;
					if (ok)
						close(fd);
				}
				_exit(ok ? 0 : errno == EEXIST ? 1 : 2);
			}
			kids[n++] = p;
		}
	for (int k = 0; k < n; k++) {
		int st;

		CHECK(waitpid(kids[k], &st, 0) == kids[k], "wait");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) <= 1,
		    "a racer failed "
		    "with something other than EEXIST (status %d)",
		    st);
		winners += WEXITSTATUS(st) == 0;
	}
	return winners;
}

static void test_races(void)
{
	char rel[64];

	for (int r = 0; r < 5; r++) {
		snprintf(rel, sizeof(rel), "lock%d", r);
		CHECK(race(rel, false, 2) == 1, "O_EXCL round %d", r);
		snprintf(rel, sizeof(rel), "dirlock%d", r);
		CHECK(race(rel, true, 2) == 1, "mkdir round %d", r);
	}
}

/* @nproc processes per mount open @rel at once with O_CREAT (no O_EXCL),
 * O_TRUNC too with @trunc: every open must succeed, all on one file (one
 * inode number, the one the name has afterwards).  Returns the number of
 * racers that failed; each failure's errno is printed. */
static int open_race(const char *rel, bool trunc, int nproc)
{
	pid_t kids[N * 8];
	int go[2], res[2], n = 0, failed = 0;
	uint64_t ino0 = 0, ino;
	struct stat st;
	char p[PATH_MAX];

	CHECK(pipe(go) == 0 && pipe(res) == 0, "pipe");
	for (int i = 0; i < N; i++)
		for (int k = 0; k < nproc; k++) {
			pid_t pid = fork();

			CHECK(pid >= 0, "fork");
			if (pid == 0) {
				char path[PATH_MAX], c;
				int fd, flags = O_CREAT | O_WRONLY;
				struct stat s;
				uint64_t v;

				close(go[1]);
				close(res[0]);
				pathf(path, i, "%s", rel);
				if (trunc)
					flags |= O_TRUNC;
				(void)!read(go[0], &c, 1); /* EOF: all forked */
				fd = open(path, flags, 0644);
				if (fd < 0 || fstat(fd, &s) != 0) {
					fprintf(stderr,
					    "open_race: mount %d: %s %s "
					    "(O_CREAT%s): %s\n",
					    i + 1, fd < 0 ? "open" : "fstat",
					    rel, trunc ? "|O_TRUNC" : "",
					    strerror(errno));
					_exit(1);
				}
				v = (uint64_t)s.st_ino;
				(void)!write(res[1], &v, sizeof(v));
				close(fd);
				_exit(0);
			}
			kids[n++] = pid;
		}
	close(go[0]);
	close(res[1]);
	close(go[1]); /* start */
	for (int k = 0; k < n; k++) {
		int s;

		CHECK(waitpid(kids[k], &s, 0) == kids[k], "wait");
		CHECK(WIFEXITED(s), "a racer died (status %d)", s);
		failed += WEXITSTATUS(s) != 0;
	}
	while (read(res[0], &ino, sizeof(ino)) == (ssize_t)sizeof(ino)) {
		if (ino0 == 0)
			ino0 = ino;
		CHECK(ino == ino0,
		    "%s: two files (inodes %" PRIu64 ", %" PRIu64 ")", rel,
		    ino0, ino);
	}
	close(res[0]);
	errno = 0; /* the racers print their own */
	for (int i = 0; i < N && failed == 0; i++) {
		pathf(p, i, "%s", rel);
		CHECK(stat(p, &st) == 0 && (uint64_t)st.st_ino == ino0 &&
		        S_ISREG(st.st_mode) && st.st_size == 0,
		    "%s on mount %d: not the file every racer opened", rel,
		    i + 1);
	}
	return failed;
}

/* Opens with O_CREAT (not O_EXCL) of one new name from every mount at
 * once: all succeed (one creates, the others open what it created), with
 * and without O_TRUNC. */
static void test_open_races(void)
{
	char rel[64], p[PATH_MAX];

	pathf(p, 0, "cr");
	CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
	for (int r = 0; r < 20; r++) {
		snprintf(rel, sizeof(rel), "cr/f%d", r);
		CHECK(open_race(rel, r % 2 == 1, 3) == 0,
		    "O_CREAT round %d%s: an open failed", r,
		    r % 2 ? " (O_TRUNC)" : "");
	}
}

/* The inode number and link count of @rel on mount @i (-1: error). */
static long nlink_of(int i, const char *rel, ino_t *ino)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, i, "%s", rel);
	if (lstat(p, &st) != 0)
		return -1;
	if (ino != NULL)
		*ino = st.st_ino;
	return (long)st.st_nlink;
}

/* Hard links: two names of one file, seen alike from every mount; a name
 * removed leaves the other readable and writable everywhere, also through
 * descriptors opened by the removed name. */
static void test_links(void)
{
	char p[PATH_MAX], q[PATH_MAX], buf[64];
	ino_t ino0, ino;
	int fd, fd1;

	pathf(p, 0, "ln_a");
	put_file(p, "one", 0);
	CHECK(nlink_of(0, "ln_a", &ino0) == 1, "nlink 1");
	pathf(q, 0, "ln_b");
	CHECK(link(p, q) == 0, "link");
	for (int i = 0; i < N; i++) {
		CHECK(nlink_of(i, "ln_a", &ino) == 2 && ino == ino0,
		    "mount %d: ln_a nlink 2, same inode", i + 1);
		CHECK(nlink_of(i, "ln_b", &ino) == 2 && ino == ino0,
		    "mount %d: ln_b nlink 2, same inode", i + 1);
		expect_file(i, "ln_b", "one");
	}
	/* A write through one name, read through the other elsewhere. */
	pathf(p, 1, "ln_b");
	put_file(p, "two", O_TRUNC);
	for (int i = 0; i < N; i++)
		expect_file(i, "ln_a", "two");
	/* Refusals: a taken name, a directory. */
	pathf(p, 2, "ln_a");
	pathf(q, 2, "ln_b");
	errno = 0;
	CHECK(link(p, q) != 0 && errno == EEXIST, "link to a taken name");
	pathf(p, 2, "ln_dir");
	CHECK(mkdir(p, 0755) == 0, "mkdir");
	pathf(q, 2, "ln_dir2");
	errno = 0;
	CHECK(link(p, q) != 0 && errno == EPERM, "link of a directory");

	/* Open by ln_a on mount 2; ln_a removed on mount 1: the descriptor
	 * follows the file to its other name (no orphan: it has one). */
	pathf(p, 1, "ln_a");
	fd1 = open(p, O_RDWR);
	CHECK(fd1 >= 0, "open");
	pathf(p, 0, "ln_a");
	CHECK(unlink(p) == 0, "unlink one name");
	CHECK(pread(fd1, buf, sizeof(buf), 0) == 3 && !memcmp(buf, "two", 3),
	    "read through the removed name's descriptor");
	CHECK(pwrite(fd1, "TW", 2, 0) == 2 && fsync(fd1) == 0,
	    "write through the removed name's descriptor");
	for (int i = 0; i < N; i++) {
		expect_errno(i, "ln_a", ENOENT);
		expect_file(i, "ln_b", "TWo");
		CHECK(nlink_of(i, "ln_b", NULL) == 1, "mount %d: nlink 1",
		    i + 1);
	}

	/* Unlinking one of two names of a file open here needs no hidden
	 * key; the file lives on under its other name. */
	pathf(p, 0, "ln_b");
	fd = open(p, O_RDWR);
	CHECK(fd >= 0, "open");
	pathf(q, 0, "ln_c");
	CHECK(link(p, q) == 0, "link");
	CHECK(unlink(p) == 0, "unlink while open");
	CHECK(fsh_count_keys("\001o/") == 0, "no hidden key");
	CHECK(pwrite(fd, "3", 1, 2) == 1 && fsync(fd) == 0, "write");
	CHECK(close(fd) == 0, "close");
	CHECK(close(fd1) == 0, "close");
	for (int i = 0; i < N; i++)
		expect_file(i, "ln_c", "TW3");
	/* Its last name removed while open: the hidden key as before. */
	fd = open(q, O_RDONLY);
	CHECK(fd >= 0, "open");
	CHECK(unlink(q) == 0, "unlink the last name");
	CHECK(fsh_count_keys("\001o/") == 1, "kept as one hidden key");
	CHECK(pread(fd, buf, sizeof(buf), 0) == 3 && !memcmp(buf, "TW3", 3),
	    "read after the last unlink");
	CHECK(close(fd) == 0, "close");
	CHECK(fsh_wait_keys("\001o/", 0), "deleted by the last close");

	/* Rename over one name of a linked file drops that name only. */
	pathf(p, 0, "ln_x");
	put_file(p, "x", 0);
	pathf(q, 0, "ln_y");
	CHECK(link(p, q) == 0, "link");
	pathf(p, 1, "ln_z");
	put_file(p, "z", 0);
	pathf(q, 1, "ln_y");
	CHECK(rename(p, q) == 0, "rename over a linked name");
	for (int i = 0; i < N; i++) {
		expect_file(i, "ln_y", "z");
		expect_file(i, "ln_x", "x");
		CHECK(nlink_of(i, "ln_x", NULL) == 1, "mount %d: nlink 1",
		    i + 1);
	}
	/* The raftkv client makes links in the same namespace. */
	{
		const char *bd = getenv("RAFTKV_BUILDDIR");
		char cli[PATH_MAX];
		const char *argv[] = { cli, "-c", conf, "link", "/ln_x",
			"/ln_cli", NULL };

		snprintf(cli, sizeof(cli), "%s/kv/raftkv", bd ? bd : ".");
		CHECK(run(argv) == 0, "raftkv link");
		for (int i = 0; i < N; i++) {
			expect_file(i, "ln_cli", "x");
			CHECK(nlink_of(i, "ln_x", NULL) == 2,
			    "mount %d: nlink 2", i + 1);
		}
		CHECK(run(argv) == 2, "raftkv link to a taken name: exit 2");
	}
}

/* @nproc processes per mount each make a file of their own and link(2)
 * it to @rel, the classic lockfile: the winner's link succeeds and its
 * file then has two links; every loser's link fails with EEXIST and
 * leaves its file at one.  Returns the number of winners (both ways of
 * telling agree); the lock then holds the winner's id. */
static int link_race(const char *rel, int nproc, int *winner)
{
	pid_t kids[N * 8];
	int n = 0, winners = 0;

	for (int i = 0; i < N; i++)
		for (int k = 0; k < nproc; k++) {
			pid_t p = fork();

			CHECK(p >= 0, "fork");
			if (p == 0) {
				char tmp[PATH_MAX], lock[PATH_MAX], id[16];
				struct stat st;
				int fd, ok, e;

				snprintf(id, sizeof(id), "%d", n);
				pathf(tmp, i, "%s.%d", rel, n);
				pathf(lock, i, "%s", rel);
				fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY,
				    0644);
				if (fd < 0 ||
				    write(fd, id, strlen(id)) !=
				        (ssize_t)strlen(id) ||
				    close(fd) != 0)
					_exit(3);
				ok = link(tmp, lock) == 0;
				e = errno;
				if (stat(tmp, &st) != 0)
					_exit(4);
				if (ok != (st.st_nlink == 2))
					_exit(5); /* the two signs disagree */
				if (unlink(tmp) != 0)
					_exit(6);
				_exit(ok ? 0 : e == EEXIST ? 1 : 2);
			}
			kids[n++] = p;
		}
	for (int k = 0; k < n; k++) {
		int st;

		CHECK(waitpid(kids[k], &st, 0) == kids[k], "wait");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) <= 1,
		    "a racer failed (exit status %d)",
		    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		if (WEXITSTATUS(st) == 0)
			*winner = k;
		winners += WEXITSTATUS(st) == 0;
	}
	return winners;
}

static void test_link_races(void)
{
	char rel[64], id[16], p[PATH_MAX];

	for (int r = 0; r < 5; r++) {
		int winner = -1;

		snprintf(rel, sizeof(rel), "lnlock%d", r);
		CHECK(link_race(rel, 2, &winner) == 1, "link round %d", r);
		snprintf(id, sizeof(id), "%d", winner);
		for (int i = 0; i < N; i++) {
			expect_file(i, rel, id);
			CHECK(nlink_of(i, rel, NULL) == 1,
			    "mount %d: the lock's own name is left", i + 1);
		}
		/* Released: the next round starts from nothing. */
		pathf(p, r % N, "%s", rel);
		CHECK(unlink(p) == 0, "unlock");
	}
}

static void test_remove(void)
{
	char p[PATH_MAX];

	pathf(p, 0, "rm");
	CHECK(mkdir(p, 0755) == 0, "mkdir");
	pathf(p, 1, "rm/f");
	put_file(p, "x", 0);
	pathf(p, 2, "rm");
	errno = 0;
	CHECK(rmdir(p) != 0 && errno == ENOTEMPTY, "rmdir of a non-empty dir");
	pathf(p, 2, "rm/f");
	CHECK(unlink(p) == 0, "unlink");
	expect_errno(0, "rm/f", ENOENT);
	pathf(p, 0, "rm");
	CHECK(rmdir(p) == 0, "rmdir");
	expect_errno(1, "rm", ENOENT);
	expect_errno(2, "rm", ENOENT);
}

/* Count the entries of a directory (without . and ..), -1 if absent. */
static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_rename(void)
{
	char p[PATH_MAX], q[PATH_MAX];
	const int files = 20;
	pid_t reader;
	int st;

	pathf(p, 0, "tree");
	CHECK(mkdir(p, 0755) == 0, "mkdir");
	for (int k = 0; k < files; k++) {
		pathf(p, 0, "tree/f%02d", k);
		put_file(p, "content", 0);
	}
	pathf(p, 0, "tree/sub");
	CHECK(mkdir(p, 0755) == 0, "mkdir");
	pathf(p, 0, "tree/sub/g");
	put_file(p, "nested", 0);

	/* A reader on mount 2 checks tree, then moved, until it sees the
	 * rename done: it must never see neither, nor a partial tree. */
	reader = fork();
	CHECK(reader >= 0, "fork");
	if (reader == 0) {
		char a[PATH_MAX], b[PATH_MAX];

		pathf(a, 1, "tree");
		pathf(b, 1, "moved");
		for (int loops = 0; loops < 100000; loops++) {
			int na = count_entries(a), nb;

			nb = count_entries(b);
			if (na < 0 && nb < 0)
				_exit(3); /* neither: not atomic */
			if ((na >= 0 && na != files + 1) ||
			    (nb >= 0 && nb != files + 1))
				_exit(4); /* a partial tree */
			if (na < 0 && nb == files + 1)
				_exit(0); /* the rename is done */
		}
		_exit(5);
	}
	sleep_ms(200);
	pathf(p, 2, "tree");
	pathf(q, 2, "moved");
	CHECK(rename(p, q) == 0, "rename of a directory");
	CHECK(waitpid(reader, &st, 0) == reader, "wait");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "reader saw a non-atomic "
	    "rename (status %d)",
	    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	expect_file(0, "moved/sub/g", "nested");
	expect_errno(0, "tree", ENOENT);

	/* A directory of more keys than one transaction may hold (1024 ops)
	 * still moves in one command. */
	{
		struct clerk_options o;
		struct clerk *ck;
		static char keys[1500][32];
		static struct kv_op ops[1100];
		struct kv_cmd c = { .type = KV_OP_TXN };
		struct kv_result res;
		int nk = 0;

		clerk_options_defaults(&o);
		o.deadline_ms = 20000;
		CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
		for (int part = 0; part < 2; part++) {
			int n = 0;

			if (part == 0) {
				snprintf(keys[nk], sizeof(keys[nk]), "/bigdir");
				ops[n++] = (struct kv_op){ .type = KV_OP_PUT,
					.key = keys[nk],
					.keylen = 7,
					.meta = { KV_KIND_DIR, 0755, 0, 0 } };
				nk++;
			}
			for (int k = 0; k < 700; k++, nk++) {
				int len = snprintf(keys[nk], sizeof(keys[nk]),
				    "/bigdir/f%d-%04d", part, k);

				ops[n++] = (struct kv_op){ .type = KV_OP_PUT,
					.key = keys[nk],
					.keylen = (uint32_t)len,
					.meta = { KV_KIND_FILE, 0644, 0, 0 } };
			}
			c.ops = ops;
			c.nops = (uint32_t)n;
			CHECK(clerk_mutate(ck, &c, &res) == KV_OK,
			    "bulk create");
		}
		clerk_free(ck);
		pathf(p, 0, "bigdir");
		CHECK(count_entries(p) == 1400, "bigdir has %d entries",
		    count_entries(p));
		pathf(q, 0, "bigdir2");
		CHECK(rename(p, q) == 0, "rename of 1401 keys");
		pathf(p, 1, "bigdir2");
		CHECK(count_entries(p) == 1400, "moved bigdir has %d entries",
		    count_entries(p));
		expect_errno(2, "bigdir", ENOENT);
		expect_file(2, "bigdir2/f1-0699", "");
	}

	/* A file renamed over another replaces it atomically. */
	pathf(p, 0, "r1");
	put_file(p, "one", 0);
	pathf(p, 0, "r2");
	put_file(p, "two", 0);
	pathf(p, 1, "r1");
	pathf(q, 1, "r2");
	CHECK(rename(p, q) == 0, "rename over");
	expect_file(2, "r2", "one");
	expect_errno(2, "r1", ENOENT);

	/* RENAME_NOREPLACE and RENAME_EXCHANGE. */
	pathf(p, 0, "x1");
	put_file(p, "X1", 0);
	pathf(q, 0, "r2");
	errno = 0;
	CHECK(renameat2(AT_FDCWD, p, AT_FDCWD, q, RENAME_NOREPLACE) != 0 &&
	        errno == EEXIST,
	    "RENAME_NOREPLACE");
	CHECK(renameat2(AT_FDCWD, p, AT_FDCWD, q, RENAME_EXCHANGE) == 0,
	    "RENAME_EXCHANGE");
	expect_file(1, "x1", "one");
	expect_file(1, "r2", "X1");
	/* A directory over a non-empty one: ENOTEMPTY. */
	pathf(p, 0, "e1");
	CHECK(mkdir(p, 0755) == 0, "mkdir");
	pathf(q, 0, "moved");
	errno = 0;
	CHECK(rename(p, q) != 0 && errno == ENOTEMPTY, "rename over non-empty");
}

/* ------------------------------------------------------------------
 * Random operations on files in the mounts against an in-memory model:
 * write and pwrite (holes), ftruncate, pread and private mmap reads,
 * fsync, close and reopen, through descriptors on all three mounts.
 * Before an operation on a file through one mount, the file's buffered
 * writes on the other mounts are fsync'ed, so the model is the plain
 * sequence of operations (what "commit before visible" allows a mount to
 * hold back is tested above).  The seed is printed on failure.
 * ------------------------------------------------------------------ */

#define MODEL_FILES 3
#define MODEL_MAX (192 * 1024)

static uint64_t mrng;

static uint64_t mrand(void)
{
	mrng ^= mrng << 13;
	mrng ^= mrng >> 7;
	mrng ^= mrng << 17;
	return mrng;
}

struct mfile {
	unsigned char *data;
	size_t size;
	int fd[N]; /* -1: not open on that mount */
	bool dirty[N]; /* writes through that mount not fsync'ed */
};

static unsigned model_seed;

#define MCHECK(cond, fmt, ...) \
	CHECK(cond, "model seed %u: " fmt, model_seed, ##__VA_ARGS__)

static void model_settle(struct mfile *f, int except)
{
	for (int m = 0; m < N; m++)
		if (m != except && f->dirty[m]) {
			MCHECK(fsync(f->fd[m]) == 0, "fsync");
			f->dirty[m] = false;
		}
}

static void model_open(struct mfile *f, int k, int m)
{
	char p[PATH_MAX];

	if (f->fd[m] >= 0)
		return;
	pathf(p, m, "model/f%d", k);
	f->fd[m] = open(p, O_RDWR | O_CREAT, 0644);
	MCHECK(f->fd[m] >= 0, "open %s", p);
}

static void model_check_range(struct mfile *f, int k, int m, size_t off,
    size_t len, bool use_mmap)
{
	static unsigned char buf[MODEL_MAX + 8192];
	size_t want = off >= f->size
	    ? 0
	    : (off + len > f->size ? f->size - off : len);

	if (use_mmap && f->size > 0) {
		/* As programs do: fstat for the size (which also refreshes
		 * the kernel's idea of it), then map that. */
		struct stat st;
		unsigned char *map;

		MCHECK(fstat(f->fd[m], &st) == 0 &&
		        (size_t)st.st_size == f->size,
		    "size before mmap");
		map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, f->fd[m], 0);
		cur_map = map;
		cur_map_len = f->size;

		MCHECK(map != MAP_FAILED, "mmap f%d on mount %d", k, m + 1);
		MCHECK(memcmp(map, f->data, f->size) == 0,
		    "mmap contents "
		    "of f%d on mount %d",
		    k, m + 1);
		munmap(map, f->size);
		return;
	}
	ssize_t n = pread(f->fd[m], buf, len, (off_t)off);
	MCHECK(n == (ssize_t)want,
	    "pread f%d on mount %d at %zu+%zu: %zd, "
	    "want %zu",
	    k, m + 1, off, len, n, want);
	MCHECK(want == 0 || memcmp(buf, f->data + off, want) == 0,
	    "pread f%d on mount %d at %zu+%zu: contents differ", k, m + 1, off,
	    len);
}

static void model_run(unsigned seed, int steps)
{
	struct mfile files[MODEL_FILES];
	char p[PATH_MAX];
	static unsigned char wbuf[32768];

	model_seed = seed;
	mrng = 0x9E3779B97F4A7C15ull ^ seed;
	pathf(p, 0, "model");
	CHECK(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir model");
	for (int k = 0; k < MODEL_FILES; k++) {
		files[k].data = calloc(1, MODEL_MAX + 65536);
		files[k].size = 0;
		for (int m = 0; m < N; m++) {
			files[k].fd[m] = -1;
			files[k].dirty[m] = false;
		}
		pathf(p, 0, "model/f%d", k);
		put_file(p, "", O_TRUNC);
	}
	for (int step = 0; step < steps; step++) {
		int k = (int)(mrand() % MODEL_FILES), m = (int)(mrand() % N);
		struct mfile *f = &files[k];
		int op = (int)(mrand() % 100);

		if (getenv("RAFTKV_FS_TRACE"))
			fprintf(stderr,
			    "seed %u step %d: f%d mount %d op %d "
			    "size %zu\n",
			    seed, step, k, m + 1, op, f->size);
		model_settle(f, m);
		model_open(f, k, m);
		if (op < 35) {
			/* write/pwrite, sometimes past the end (a hole) */
			size_t off = (size_t)(mrand() % (f->size + 5000));
			size_t len = 1 + (size_t)(mrand() % sizeof(wbuf));

			if (off + len > MODEL_MAX)
				continue;
			for (size_t i = 0; i < len; i++)
				wbuf[i] = (unsigned char)mrand();
			MCHECK(pwrite(f->fd[m], wbuf, len, (off_t)off) ==
			        (ssize_t)len,
			    "pwrite");
			if (off > f->size)
				memset(f->data + f->size, 0, off - f->size);
			memcpy(f->data + off, wbuf, len);
			if (off + len > f->size)
				f->size = off + len;
			f->dirty[m] = true;
		} else if (op < 45) {
			size_t size = (size_t)(mrand() % (f->size + 8000));

			if (size > MODEL_MAX)
				continue;
			MCHECK(ftruncate(f->fd[m], (off_t)size) == 0,
			    "ftruncate");
			if (size > f->size)
				memset(f->data + f->size, 0, size - f->size);
			f->size = size;
			f->dirty[m] = false; /* setattr committed it all */
		} else if (op < 75) {
			size_t off = (size_t)(mrand() % (f->size + 100));
			size_t len = 1 + (size_t)(mrand() % 40000);

			model_check_range(f, k, m, off, len, false);
			f->dirty[m] = false;
		} else if (op < 82) {
			model_check_range(f, k, m, 0, 0, true);
			f->dirty[m] = false;
		} else if (op < 90) {
			MCHECK(fsync(f->fd[m]) == 0, "fsync");
			f->dirty[m] = false;
		} else {
			MCHECK(close(f->fd[m]) == 0, "close");
			f->fd[m] = -1;
			f->dirty[m] = false;
		}
		if (op >= 45 && op < 82) {
			struct stat st;

			MCHECK(fstat(f->fd[m], &st) == 0 &&
			        (size_t)st.st_size == f->size,
			    "size of f%d on "
			    "mount %d: %lld, want %zu",
			    k, m + 1, (long long)st.st_size, f->size);
		}
	}
	/* Everything committed: every mount reads every file whole. */
	for (int k = 0; k < MODEL_FILES; k++) {
		model_settle(&files[k], -1);
		for (int m = 0; m < N; m++) {
			model_open(&files[k], k, m);
			model_check_range(&files[k], k, m, 0, MODEL_MAX, false);
			MCHECK(close(files[k].fd[m]) == 0, "close");
		}
		free(files[k].data);
	}
}

static void test_model(void)
{
	const char *long_run = getenv("RAFTKV_LONG");
	int seeds = long_run && *long_run == '1' ? 30 : 3;
	int steps = long_run && *long_run == '1' ? 1000 : 150;
	unsigned base = (unsigned)time(NULL);

	for (int i = 0; i < seeds; i++)
		model_run(base + (unsigned)i, steps);
}

/* ------------------------------------------------------------------
 * Linearizability across mounts, checked by the project's checker
 * (tests/lib/linz.h, the labs' model: a Get must return the value of the
 * latest Put linearized before it).  One writer per file, on its own
 * mount, overwrites the file's 16 bytes and fsyncs (the commit); two
 * readers per mount open and read any of the files.  With one writer per
 * key the writer knows each Put's version (the labs' model wants it).
 * ------------------------------------------------------------------ */

#define LIN_KEYS N
#define LIN_WRITERS (LIN_KEYS * N) /* every file written from every mount */
#define LIN_PUTS 20
#define LIN_READS 60
#define LIN_READERS (2 * N)

struct lin_arg {
	struct linz_history *h;
	int id; /* writer: key * N + mount; reader: index */
	unsigned seed;
	int failed; /* errno of a failed call, 0 if none */
};

static void lin_path(char *out, int mount, int key)
{
	pathf(out, mount, "lin/k%d", key);
}

/* Writer @id writes file k(id / N) through mount id % N: each write
 * replaces the whole contents (16 bytes at offset 0) and commits with
 * fsync, or (every third) with close; several writers per file, on
 * different mounts.  Recorded as blind Puts (LINZ_ANY_VERSION). */
static void *lin_writer(void *p)
{
	struct lin_arg *a = p;
	int k = a->id / N, mount = a->id % N, fd = -1;
	char path[PATH_MAX], key[16], val[40];

	lin_path(path, mount, k);
	snprintf(key, sizeof(key), "k%d", k);
	for (int i = 0; i < LIN_PUTS && !a->failed; i++) {
		bool by_close = i % 3 == 2;
		uint64_t call, ret;

		/* 16 bytes: "wII-" and 12 digits. */
		snprintf(val, sizeof(val), "w%02d-%012d", a->id, i);
		call = history_now_ns();
		if (fd < 0)
			fd = open(path, O_WRONLY);
		if (fd < 0 || pwrite(fd, val, 16, 0) != 16 ||
		    (by_close ? close(fd) : fsync(fd)) != 0) {
			a->failed = errno;
			if (by_close)
				fd = -1;
			break;
		}
		if (by_close)
			fd = -1;
		ret = history_now_ns();
		history_put(a->h, (uint64_t)a->id, call, ret, key, val,
		    LINZ_ANY_VERSION, LINZ_RES_OK);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *lin_reader(void *p)
{
	struct lin_arg *a = p;
	int mount = a->id % N;

	for (int i = 0; i < LIN_READS && !a->failed; i++) {
		char path[PATH_MAX], key[8], buf[17];
		int k = (int)(rand_r(&a->seed) % LIN_KEYS), fd;
		uint64_t call, ret;
		ssize_t n;

		lin_path(path, mount, k);
		snprintf(key, sizeof(key), "k%d", k);
		call = history_now_ns();
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			a->failed = errno;
			break;
		}
		n = pread(fd, buf, 16, 0);
		close(fd);
		ret = history_now_ns();
		if (n < 0) {
			a->failed = errno;
			break;
		}
		buf[n] = '\0';
		history_get(a->h, (uint64_t)(100 + a->id), call, ret, key,
		    LINZ_RES_OK, buf, 0);
	}
	return NULL;
}

static void test_linearizable(void)
{
	struct linz_history *h = linz_history_new();
	struct lin_arg w[LIN_WRITERS], r[LIN_READERS];
	pthread_t wt[LIN_WRITERS], rt[LIN_READERS];
	char p[PATH_MAX];
	enum linz_verdict v;

	CHECK(h != NULL, "history");
	pathf(p, 0, "lin");
	CHECK(mkdir(p, 0755) == 0, "mkdir");
	for (int k = 0; k < LIN_KEYS; k++) {
		lin_path(p, 0, k);
		put_file(p, "", 0);
	}
	for (int k = 0; k < LIN_WRITERS; k++) {
		w[k] = (struct lin_arg){ .h = h, .id = k };
		CHECK(pthread_create(&wt[k], NULL, lin_writer, &w[k]) == 0,
		    "thread");
	}
	for (int i = 0; i < LIN_READERS; i++) {
		r[i] = (struct lin_arg){ .h = h,
			.id = i,
			.seed = (unsigned)i * 7919u + 1 };
		CHECK(pthread_create(&rt[i], NULL, lin_reader, &r[i]) == 0,
		    "thread");
	}
	for (int k = 0; k < LIN_WRITERS; k++)
		pthread_join(wt[k], NULL);
	for (int i = 0; i < LIN_READERS; i++)
		pthread_join(rt[i], NULL);
	for (int k = 0; k < LIN_WRITERS; k++)
		CHECK(w[k].failed == 0, "writer %d: %s", k,
		    strerror(w[k].failed));
	for (int i = 0; i < LIN_READERS; i++)
		CHECK(r[i].failed == 0, "reader %d: %s", i,
		    strerror(r[i].failed));
	v = history_check(h, LINZ_MODEL_LAB, 60.0, "test_fs_mount");
	CHECK(v != LINZ_ILLEGAL,
	    "the history across mounts is not "
	    "linearizable (saved, see above)");
	linz_history_free(h);
}

static void test_minority(void)
{
	char p[PATH_MAX];
	uint64_t t0;
	char *got, *bulk;
	int fd;

	pathf(p, 0, "part");
	put_file(p, "before", 0);
	expect_file(2, "part", "before");
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0, "open");
	isolate(0, true);
	/* The majority goes on, past a snapshot that compacts what the
	 * isolated member has not seen. */
	pathf(p, 1, "part");
	put_file(p, "during", O_TRUNC);
	expect_file(2, "part", "during");
	bulk = malloc(3 << 20);
	CHECK(bulk != NULL, "malloc");
	memset(bulk, 'z', 3 << 20);
	bulk[(3 << 20) - 1] = '\0';
	pathf(p, 1, "bulk");
	put_file(p, bulk, O_TRUNC);
	pathf(p, 2, "bulk");
	CHECK(truncate(p, 0) == 0, "truncate");
	free(bulk);
	pathf(p, 0, "part");
	/* The minority mount never answers the old data: EIO once its
	 * timeout passed. */
	pathf(p, 0, "part");
	t0 = now_ms();
	errno = 0;
	got = get_file(p);
	CHECK(got == NULL && errno == EIO, "minority read: got '%s'",
	    got ? got : "(error)");
	CHECK(now_ms() - t0 >= OP_TIMEOUT_MS / 2,
	    "EIO came before the "
	    "timeout");
	isolate(0, false);
	/* Healed: no remount needed (allow a few rounds to reconnect). */
	for (int t = 0; t < 20; t++) {
		got = get_file(p);
		if (got != NULL)
			break;
		CHECK(errno == EIO, "after healing");
		sleep_ms(250);
	}
	CHECK(got != NULL && strcmp(got, "during") == 0,
	    "after healing: "
	    "'%s'",
	    got ? got : "(error)");
	/* A descriptor opened before still finds its file. */
	char buf[16];
	CHECK(pread(fd, buf, sizeof(buf), 0) == 6 &&
	        memcmp(buf, "during", 6) == 0,
	    "descriptor from before");
	close(fd);
}

/* SIGSTOP of the leader's mount: the other two go on; after SIGCONT it
 * catches up. */
static void test_sigstop(void)
{
	char p[PATH_MAX];
	int v = leader_index(), a = (v + 1) % N, b = (v + 2) % N;

	CHECK(kill(pids[v], SIGSTOP) == 0, "SIGSTOP");
	pathf(p, a, "while-stopped");
	put_file(p, "the others go on", 0);
	expect_file(b, "while-stopped", "the others go on");
	CHECK(kill(pids[v], SIGCONT) == 0, "SIGCONT");
	expect_file(v, "while-stopped", "the others go on");
}

/* kill -9 of the leader's mount: nothing it fsync'ed or closed is lost,
 * the others go on, the dead mountpoint answers ENOTCONN until it is
 * unmounted, and a remount on the same data directory catches up. */
static void test_kill9(void)
{
	char p[PATH_MAX];
	struct stat st;
	int status, v = leader_index(), a = (v + 1) % N, b = (v + 2) % N;
	int ofd, fd;

	/* A file removed while open on the victim: its data stays hidden
	 * while the victim's registration of it lives: until the session
	 * of its dead process expires (10 minutes here; test_fs_unlink
	 * waits for it with a short session TTL), not when it mounts
	 * again. */
	pathf(p, v, "orphan");
	put_file(p, "orphan data", 0);
	ofd = open(p, O_RDONLY);
	CHECK(ofd >= 0, "open");
	CHECK(unlink(p) == 0, "unlink");
	CHECK(fsh_count_keys("\001o/") == 1, "an orphan");
	/* Acknowledged just before the kill: fsync'ed, and closed. */
	pathf(p, v, "fsynced");
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0 && write(fd, "kept", 4) == 4 && fsync(fd) == 0,
	    "write + fsync");
	pathf(p, v, "closed");
	put_file(p, "kept too", 0);

	CHECK(kill(pids[v], SIGKILL) == 0, "kill -9");
	CHECK(waitpid(pids[v], &status, 0) == pids[v], "wait");
	pids[v] = 0;
	close(fd);
	errno = 0;
	CHECK(stat(mnt[v], &st) != 0 && errno == ENOTCONN, "dead mount");
	expect_file(a, "fsynced", "kept");
	expect_file(b, "closed", "kept too");
	pathf(p, a, "after-kill");
	put_file(p, "still working", 0);
	expect_file(b, "after-kill", "still working");
	unmount(v);
	CHECK(!is_mounted(mnt[v]), "unmounted");
	close(ofd);
	start(v);
	CHECK(fsh_count_keys("\001o/") == 1,
	    "the orphan is kept for the dead process's session");
	expect_file(v, "after-kill", "still working");
	expect_file(v, "moved/sub/g", "nested");
}

/* Bytes in use on mount @i as statfs says (rounded up to blocks); checks
 * the size is the quota. */
static uint64_t df_used(int i)
{
	struct statvfs sv;

	CHECK(statvfs(mnt[i], &sv) == 0, "statvfs %s", mnt[i]);
	CHECK((uint64_t)sv.f_blocks * sv.f_frsize == QUOTA,
	    "df size %llu blocks of %lu", (unsigned long long)sv.f_blocks,
	    sv.f_frsize);
	CHECK(sv.f_bavail == sv.f_bfree && sv.f_bfree <= sv.f_blocks, "free");
	return (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
}

#define CHUNK (512u << 10)

static void test_quota(void)
{
	char p[PATH_MAX];
	unsigned char *buf = malloc(CHUNK);
	struct stat st;
	uint64_t used0, committed = 0;
	int fd, err = 0, k;

	CHECK(buf != NULL, "malloc");
	/* A key below directories that are no keys yet (implicit ones,
	 * raftkv(7)), met again only once the quota is reached. */
	{
		struct clerk_options o;
		struct clerk *ck;
		struct kv_meta meta = { .kind = KV_KIND_FILE, .mode = 0644 };

		clerk_options_defaults(&o);
		o.deadline_ms = 20000;
		CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
		CHECK(clerk_put(ck, "/qimp/d/f", 9, "q", 1, 0, 0, &meta,
		          NULL) == KV_OK,
		    "put");
		clerk_free(ck);
	}
	used0 = df_used(1);
	CHECK(used0 > 0 && used0 < QUOTA / 2, "used before: %llu",
	    (unsigned long long)used0);
	/* Fill in chunks, each committed by fsync, until one is refused:
	 * by write (a commit to make room in the buffer) or by fsync. */
	pathf(p, 0, "fill");
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd >= 0, "open");
	for (k = 0; k < (int)(QUOTA / CHUNK) + 2; k++) {
		memset(buf, 'a' + k % 26, CHUNK);
		if (write(fd, buf, CHUNK) != (ssize_t)CHUNK || fsync(fd) != 0) {
			err = errno;
			break;
		}
		committed += CHUNK;
	}
	CHECK(err == ENOSPC, "chunk %d of a file past the quota", k);
	/* df rounds up to blocks: within one block of the exact count. */
	CHECK(committed > 0 && used0 + committed <= QUOTA + 4096 &&
	        used0 + committed + CHUNK + 4096 > QUOTA,
	    "committed %llu", (unsigned long long)committed);
	CHECK(close(fd) == 0 || errno == ENOSPC, "close");
	/* Nothing of the refused extent on the other mounts; what was
	 * committed reads back whole. */
	pathf(p, 2, "fill");
	CHECK(stat(p, &st) == 0 && (uint64_t)st.st_size == committed,
	    "size %lld, want %llu", (long long)st.st_size,
	    (unsigned long long)committed);
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0, "open");
	for (uint64_t off = 0; off < committed; off += CHUNK) {
		CHECK(pread(fd, buf, CHUNK, (off_t)off) == (ssize_t)CHUNK,
		    "read");
		for (size_t j = 0; j < CHUNK; j += 4099)
			CHECK(buf[j] == 'a' + (off / CHUNK) % 26, "byte %llu",
			    (unsigned long long)(off + j));
	}
	close(fd);
	CHECK(df_used(2) > QUOTA - CHUNK, "df after filling");
	/* The clients' view (raftkv df): the same count; a put past it is
	 * ErrNoSpace. */
	{
		struct clerk_options o;
		struct clerk *ck;
		uint64_t used, quota, keys, df = df_used(0);

		clerk_options_defaults(&o);
		o.deadline_ms = 20000;
		CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
		CHECK(clerk_usage(ck, &used, &quota, &keys) == KV_OK, "usage");
		CHECK(quota == QUOTA && used <= df && df < used + 4096 &&
		        keys > 0,
		    "usage %llu/%llu, df %llu", (unsigned long long)used,
		    (unsigned long long)quota, (unsigned long long)df);
		CHECK(clerk_put(ck, "/big", 4, buf, CHUNK, 0, 0, NULL, NULL) ==
		        KV_ENOSPC,
		    "put past the quota");
		clerk_free(ck);
	}
	/* Growing by truncate, or another file's extent: ENOSPC too;
	 * reads of everything else go on. */
	pathf(p, 1, "fill");
	errno = 0;
	CHECK(truncate(p, (off_t)(committed + CHUNK)) != 0 && errno == ENOSPC,
	    "truncate up");
	pathf(p, 1, "more");
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd >= 0, "open");
	errno = 0;
	CHECK(write(fd, buf, CHUNK) != (ssize_t)CHUNK || fsync(fd) != 0,
	    "a second file past the quota");
	CHECK(errno == ENOSPC, "its errno");
	close(fd);
	for (int i = 0; i < N; i++) {
		expect_file(i, "after-kill", "still working");
		expect_file(i, "moved/sub/g", "nested");
	}
	/* At the quota an implicit directory cannot be made real: listings
	 * work and leave it out, a lookup answers ENOENT.  The last bytes
	 * first: writes of halving sizes, each committed (O_SYNC), until
	 * one byte is refused. */
	pathf(p, 0, "fill2");
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC | O_SYNC, 0644);
	if (fd >= 0) {
		off_t off = 0;

		for (size_t len = CHUNK / 2; len > 0; len /= 2)
			while (pwrite(fd, buf, len, off) == (ssize_t)len)
				off += (off_t)len;
		CHECK(errno == ENOSPC, "the last bytes");
		close(fd);
	} else {
		CHECK(errno == ENOSPC, "create at the quota");
	}
	pathf(p, 0, "%s", "");
	CHECK(count_entries(p) > 0, "a listing at the quota");
	pathf(p, 0, "qimp");
	errno = 0;
	CHECK(stat(p, &st) != 0 && errno == ENOENT,
	    "an implicit directory at the quota");
	/* Deleting works at the quota, and makes room again. */
	pathf(p, 2, "fill");
	CHECK(unlink(p) == 0, "unlink at the quota");
	pathf(p, 1, "more");
	CHECK(unlink(p) == 0, "unlink");
	pathf(p, 1, "fill2");
	CHECK(unlink(p) == 0 || errno == ENOENT, "unlink");
	CHECK(df_used(0) == used0, "df after the unlink: %llu, before %llu",
	    (unsigned long long)df_used(0), (unsigned long long)used0);
	pathf(p, 0, "again");
	put_file(p, "room again", 0);
	expect_file(2, "again", "room again");
	for (int i = 0; i < N; i++)
		expect_file(i, "qimp/d/f", "q");
	free(buf);
}

/* ---------------------------------------------------------------------
 * Big files
 * --------------------------------------------------------------------- */

#define MIB (1u << 20)
#define BIG (64u * MIB)

/* The byte pattern of big files: any range can be computed again, so a
 * 1 GiB file needs no 1 GiB copy to be checked. */
static void fill(unsigned char *p, uint64_t off, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x = (off + i) / 8 * 0x9e3779b97f4a7c15ull + seed;

		x ^= x >> 31;
		x *= 0xbf58476d1ce4e5b9ull;
		x ^= x >> 29;
		p[i] = (unsigned char)(x >> (8 * ((off + i) % 8)));
	}
}

/* Stop every mount cleanly and start them again with the quota @quota_mib,
 * snapshots every @snap bytes of log, an election timeout of @elect ticks
 * and a 60 s operation timeout. */
static void restart_all(unsigned quota_mib, unsigned long snap, unsigned elect)
{
	char err[512], path[sizeof(conf) + 8];
	FILE *in, *out;
	char line[4096];

	for (int i = 0; i < N; i++) {
		int st = stop(i);

		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "mount %d ended with status %#x", i + 1, st);
	}
	snprintf(path, sizeof(path), "%s.new", conf);
	in = fopen(conf, "r");
	out = fopen(path, "w");
	CHECK(in != NULL && out != NULL, "rewrite %s", conf);
	while (fgets(line, sizeof(line), in) != NULL)
		if (strncmp(line, "quota ", 6) != 0)
			fputs(line, out);
	fprintf(out, "quota %uM\n", quota_mib);
	fclose(in);
	CHECK(fclose(out) == 0 && rename(path, conf) == 0, "rewrite");
	CHECK(cluster_load(conf, &cl, err, sizeof(err)) == 0, "%s", err);
	CHECK(keys_load_credential(&cl, conf, NULL, false, err, sizeof(err)) ==
	        0,
	    "%s", err);
	max_raft_state = snap;
	op_timeout_ms = 60000;
	election_ticks = elect;
	for (int i = 0; i < N; i++)
		start(i);
}

/* Write @size bytes of pattern @seed to @rel on mount @i in 1 MiB
 * write()s, then close (which commits).  Returns the seconds it took. */
static double write_big(int i, const char *rel, uint64_t size, uint64_t seed)
{
	unsigned char *buf = malloc(MIB);
	char p[PATH_MAX];
	uint64_t t0 = now_ms();
	int fd;

	CHECK(buf != NULL, "malloc");
	pathf(p, i, "%s", rel);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd >= 0, "open %s", p);
	for (uint64_t off = 0; off < size; off += MIB) {
		size_t n = size - off < MIB ? (size_t)(size - off) : MIB;

		fill(buf, off, n, seed);
		CHECK(write(fd, buf, n) == (ssize_t)n, "write at %llu",
		    (unsigned long long)off);
	}
	CHECK(close(fd) == 0, "close %s", p);
	free(buf);
	return (double)(now_ms() - t0) / 1000;
}

/* @rel on mount @i holds @size bytes of pattern @seed (read in 1 MiB
 * read()s), except @patch (NULL: none): @plen bytes at @poff.  Returns
 * the seconds it took. */
static double check_big(int i, const char *rel, uint64_t size, uint64_t seed,
    const unsigned char *patch, uint64_t poff, size_t plen)
{
	unsigned char *buf = malloc(MIB), *want = malloc(MIB);
	char p[PATH_MAX];
	uint64_t t0 = now_ms();
	struct stat st;
	int fd;

	CHECK(buf != NULL && want != NULL, "malloc");
	pathf(p, i, "%s", rel);
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0 && fstat(fd, &st) == 0, "open %s", p);
	CHECK((uint64_t)st.st_size == size, "mount %d %s: size %lld, want %llu",
	    i + 1, rel, (long long)st.st_size, (unsigned long long)size);
	for (uint64_t off = 0; off < size; off += MIB) {
		size_t n = size - off < MIB ? (size_t)(size - off) : MIB;
		ssize_t got = 0, r;

		while ((size_t)got < n &&
		    (r = read(fd, buf + got, n - (size_t)got)) > 0)
			got += r;
		CHECK((size_t)got == n, "read at %llu",
		    (unsigned long long)off);
		fill(want, off, n, seed);
		if (patch != NULL && poff < off + n && poff + plen > off) {
			uint64_t a = poff > off ? poff : off;
			uint64_t b = poff + plen < off + n ? poff + plen
			                                   : off + n;

			memcpy(want + (a - off), patch + (a - poff), b - a);
		}
		CHECK(memcmp(buf, want, n) == 0,
		    "mount %d %s: bytes differ in [%llu, %llu)", i + 1, rel,
		    (unsigned long long)off, (unsigned long long)(off + n));
	}
	CHECK(read(fd, buf, 1) == 0, "EOF");
	close(fd);
	free(buf);
	free(want);
	return (double)(now_ms() - t0) / 1000;
}

/* Bytes of the Raft log of each member (log_bytes of its status) and its
 * snapshot index, as the member reports them. */
static void log_sizes(struct clerk *ck, uint64_t bytes[N], uint64_t snap[N])
{
	for (int i = 0; i < N; i++) {
		struct cproto_status st;

		CHECK(clerk_member_status(ck, (uint32_t)i, &st) == 0,
		    "status of member %d", i + 1);
		bytes[i] = st.log_bytes;
		snap[i] = st.snap_index;
	}
}

/* A 4 KiB write at @off into @rel through mount 0, fsync'd: returns the
 * largest growth of a member's Raft log over it (members that took a
 * snapshot meanwhile, which cuts the log, are retried). */
static uint64_t log_growth_of_4k_write(const char *rel, uint64_t off,
    const unsigned char *patch)
{
	struct clerk_options o;
	struct clerk *ck;
	char p[PATH_MAX];
	uint64_t worst = 0;
	int measured = 0;

	clerk_options_defaults(&o);
	o.deadline_ms = 20000;
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	pathf(p, 0, "%s", rel);
	for (int attempt = 0; attempt < 5 && measured == 0; attempt++) {
		uint64_t b0[N], s0[N], b1[N], s1[N];
		int fd;

		sleep_ms(300); /* let every member catch up and settle */
		log_sizes(ck, b0, s0);
		fd = open(p, O_WRONLY);
		CHECK(fd >= 0, "open %s", p);
		CHECK(pwrite(fd, patch, 4096, (off_t)off) == 4096, "pwrite");
		CHECK(fsync(fd) == 0 && close(fd) == 0, "fsync, close");
		sleep_ms(300); /* the followers append it too */
		log_sizes(ck, b1, s1);
		for (int i = 0; i < N; i++) {
			if (s1[i] != s0[i] || b1[i] < b0[i])
				continue; /* a snapshot cut the log */
			measured++;
			if (b1[i] - b0[i] > worst)
				worst = b1[i] - b0[i];
			printf("  member %d: Raft log %llu -> %llu bytes "
			       "(+%llu) for a 4 KiB write into a %u MiB "
			       "file\n",
			    i + 1, (unsigned long long)b0[i],
			    (unsigned long long)b1[i],
			    (unsigned long long)(b1[i] - b0[i]), BIG / MIB);
		}
	}
	CHECK(measured > 0, "no member kept its log over the write");
	clerk_free(ck);
	return worst;
}

/* `raftkv SUB KEY <IN >OUT 2>OUT.err` (get: a value read in ranges of
 * one version; put: a value from standard input); its exit status. */
static int cli(const char *sub, const char *key, const char *in,
    const char *out)
{
	const char *bd = getenv("RAFTKV_BUILDDIR");
	char bin[PATH_MAX], cmd[4 * PATH_MAX + 256];

	snprintf(bin, sizeof(bin), "%s/kv/raftkv", bd ? bd : ".");
	snprintf(cmd, sizeof(cmd),
	    "'%s' -c '%s' %s '%s' <'%s' >'%s' 2>'%s.err'", bin, conf, sub, key,
	    in, out, out);
	return run((const char *[]){ "sh", "-c", cmd, NULL });
}

/* Print the seconds since *@t0 (what the scenario before took), then
 * restart the count. */
static void step(uint64_t *t0, const char *what)
{
	uint64_t now = now_ms();

	printf("  (%.1f s)%s\n", (double)(now - *t0) / 1000, what);
	*t0 = now;
}

static void test_bigfile(void)
{
	unsigned char *patch = malloc(4096), *map;
	char p[PATH_MAX], out[PATH_MAX + 32], err[PATH_MAX + 64];
	const uint64_t poff = BIG / 2 + 123;
	uint64_t growth, t0;
	struct stat st;
	double t;
	int fd;

	CHECK(patch != NULL, "malloc");
	t0 = now_ms();
	/* 12 MiB was the quota scenario's; snapshots every 32 MiB. */
	restart_all(1024, 32u * MIB, 100);
	step(&t0, " the cluster restarted with a 1 GiB quota");
	t = write_big(0, "big", BIG, 1);
	printf("  %u MiB written on mount 1 in 1 MiB writes: %.2f s\n",
	    BIG / MIB, t);
	for (int i = 1; i < N; i++) {
		t = check_big(i, "big", BIG, 1, NULL, 0, 0);
		printf("  read back on mount %d: %.2f s\n", i + 1, t);
	}

	step(&t0, " written and read back on the others");
	/* A 4 KiB write in the middle commits about 4 KiB. */
	memset(patch, 'W', 4096);
	growth = log_growth_of_4k_write("big", poff, patch);
	CHECK(growth < 64 * 1024, "a 4 KiB write grew a Raft log by %llu bytes",
	    (unsigned long long)growth);
	for (int i = 1; i < N; i++) {
		unsigned char b[4096 + 2];

		pathf(p, i, "big");
		fd = open(p, O_RDONLY);
		CHECK(fd >= 0 &&
		        pread(fd, b, sizeof(b), (off_t)poff - 1) ==
		            (ssize_t)sizeof(b),
		    "pread");
		close(fd);
		fill(b, poff - 1, 1, 1);
		fill(b + 4097, poff + 4096, 1, 1);
		CHECK(memcmp(b + 1, patch, 4096) == 0, "mount %d: the 4 KiB",
		    i + 1);
	}

	step(&t0, " the 4 KiB write and its checks");
	/* A private mmap of it on another mount (shared ones are ENODEV:
	 * direct I/O; and no readahead: each page is one read, so a page
	 * per MiB, the 4 KiB written and the last page), and the whole file
	 * by `raftkv get` (over what one reply carries: read in ranges). */
	pathf(p, 1, "big");
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0, "open");
	map = mmap(NULL, BIG, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(map != MAP_FAILED, "mmap");
	cur_map = map;
	cur_map_len = BIG;
	{
		unsigned char want[3 * 4096];

		for (uint64_t off = MIB / 2; off < BIG; off += MIB) {
			fill(want, off, 4096, 1);
			CHECK(memcmp(map + off, want, 4096) == 0,
			    "mmap: bytes differ in the page at %llu",
			    (unsigned long long)off);
		}
		fill(want, BIG - 4096, 4096, 1);
		CHECK(memcmp(map + BIG - 4096, want, 4096) == 0, "last page");
		fill(want, poff / 4096 * 4096, sizeof(want), 1);
		memcpy(want + poff % 4096, patch, 4096);
		CHECK(memcmp(map + poff / 4096 * 4096, want, sizeof(want)) == 0,
		    "mmap: the 4 KiB written");
	}
	step(&t0, " mmap");
	cur_map = NULL;
	munmap(map, BIG);
	close(fd);
	snprintf(out, sizeof(out), "%s/big.out", dir);
	CHECK(cli("get", "/big", "/dev/null", out) == 0, "raftkv get /big");
	pathf(p, 2, "big");
	CHECK(run((const char *[]){ "cmp", out, p, NULL }) == 0,
	    "raftkv get /big | cmp - %s", p);
	snprintf(err, sizeof(err), "%s/stat.out", dir);
	CHECK(cli("stat", "/big", "/dev/null", err) == 0 &&
	        log_says(err, "size\t67108864\n"),
	    "raftkv stat /big");
	step(&t0, " raftkv get, raftkv stat");
	/* A put of it is more than one command: refused, pointing at the
	 * mount; nothing changes. */
	snprintf(err, sizeof(err), "%s/put.out", dir);
	CHECK(cli("put", "/big-put", out, err) == 5, "raftkv put of 64 MiB");
	snprintf(err, sizeof(err), "%s/put.out.err", dir);
	CHECK(log_says(err, "through a mount"), "put's message");
	pathf(p, 0, "big-put");
	CHECK(stat(p, &st) != 0 && errno == ENOENT, "no /big-put");
	unlink(out);

	step(&t0, " raftkv put refused");
	/* Truncate up (zeros) and down, seen on the other mounts; EFBIG past
	 * 1 GiB (refused before anything is allocated). */
	pathf(p, 2, "big");
	CHECK(truncate(p, (off_t)(BIG + 16 * MIB)) == 0, "truncate up");
	pathf(p, 0, "big");
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0 && fstat(fd, &st) == 0 &&
	        (uint64_t)st.st_size == BIG + 16 * MIB,
	    "size after truncate up");
	{
		unsigned char b[4096], z[4096] = { 0 };

		for (uint64_t off = BIG; off < BIG + 16 * MIB; off += MIB)
			CHECK(pread(fd, b, sizeof(b), (off_t)off) ==
			            (ssize_t)sizeof(b) &&
			        memcmp(b, z, sizeof(b)) == 0,
			    "zeros at %llu", (unsigned long long)off);
	}
	close(fd);
	pathf(p, 1, "big");
	CHECK(truncate(p, (off_t)(40 * MIB + 5)) == 0, "truncate down");
	check_big(0, "big", 40 * MIB + 5, 1, patch, poff, 4096);
	errno = 0;
	CHECK(truncate(p, (off_t)KV_FILE_MAX + 1) != 0 && errno == EFBIG,
	    "truncate past 1 GiB");
	fd = open(p, O_WRONLY);
	CHECK(fd >= 0, "open");
	errno = 0;
	CHECK(pwrite(fd, "x", 1, (off_t)KV_FILE_MAX) < 0 && errno == EFBIG,
	    "a write past 1 GiB");
	CHECK(close(fd) == 0, "close");

	step(&t0, " truncate up and down, EFBIG");
	/* A member restarted from its snapshot holds the file exactly. */
	snprintf(err, sizeof(err), "%s/mount3.log", dir);
	{
		int ws = stop(2);

		CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "stop mount 3");
	}
	CHECK(truncate(err, 0) == 0, "truncate %s", err);
	start(2);
	/* The applier restores it just after the mount is live. */
	for (int k = 0; k < 400 && !log_says(err, "restored snapshot"); k++)
		sleep_ms(50);
	CHECK(log_says(err, "restored snapshot"),
	    "mount 3 restored no snapshot (see %s)", err);
	t = check_big(2, "big", 40 * MIB + 5, 1, patch, poff, 4096);
	printf("  mount 3 restarted from its snapshot: 40 MiB read back in "
	       "%.2f s\n",
	    t);
	pathf(p, 0, "big");
	CHECK(unlink(p) == 0, "unlink");
	free(patch);
	step(&t0, " member 3 restarted from its snapshot");
}

/* RAFTKV_LONG=1: a 1 GiB file (KV_FILE_MAX exactly) written on one mount,
 * read on another, and on a member restarted from a snapshot of it. */
static void test_bigfile_long(void)
{
	const uint64_t size = KV_FILE_MAX;
	char p[PATH_MAX], log[PATH_MAX + 32];
	double t;
	int fd;

	/* Snapshots every 512 MiB of log: a few, each of the whole file.
	 * A member copies a snapshot twice on its loop thread (raft_compact,
	 * the persist job): with 1 GiB it misses heartbeats for seconds on a
	 * loaded machine, so elections wait 5 s here. */
	restart_all(2048, 512u * MIB, 500);
	t = write_big(0, "huge", size, 2);
	printf("  1 GiB written on mount 1 in 1 MiB writes: %.1f s "
	       "(%.0f MiB/s)\n",
	    t, 1024 / t);
	t = check_big(1, "huge", size, 2, NULL, 0, 0);
	printf("  1 GiB read back on mount 2: %.1f s (%.0f MiB/s)\n", t,
	    1024 / t);
	{
		char out[PATH_MAX + 32];
		uint64_t t0 = now_ms();

		snprintf(out, sizeof(out), "%s/huge.out", dir);
		CHECK(cli("get", "/huge", "/dev/null", out) == 0,
		    "raftkv get /huge");
		printf("  raftkv get of it (256 ranges of 4 MiB): %.1f s\n",
		    (double)(now_ms() - t0) / 1000);
		pathf(p, 2, "huge");
		CHECK(run((const char *[]){ "cmp", out, p, NULL }) == 0,
		    "raftkv get /huge | cmp - %s", p);
		unlink(out);
	}
	pathf(p, 0, "huge");
	fd = open(p, O_WRONLY);
	CHECK(fd >= 0, "open");
	errno = 0;
	CHECK(pwrite(fd, "x", 1, (off_t)size) < 0 && errno == EFBIG,
	    "one byte past 1 GiB");
	CHECK(close(fd) == 0, "close");
	snprintf(log, sizeof(log), "%s/mount3.log", dir);
	CHECK(truncate(log, 0) == 0, "truncate %s", log);
	stop(2);
	start(2);
	for (int k = 0; k < 1200 && !log_says(log, "restored snapshot"); k++)
		sleep_ms(50);
	CHECK(log_says(log, "restored snapshot"),
	    "mount 3 restored no snapshot (see %s)", log);
	t = check_big(2, "huge", size, 2, NULL, 0, 0);
	printf("  mount 3 restarted from a snapshot: 1 GiB read back in "
	       "%.1f s\n",
	    t);
	CHECK(unlink(p) == 0, "unlink");
}

/* Run mount.raftkv with @args (NULL-terminated, after the program) and
 * return its exit status with its stderr in @err. */
static int run_mount(const char *const *args, char *err, size_t cap)
{
	char path[PATH_MAX + 32];
	const char *argv[16];
	int n = 0, st, fd;
	pid_t p;
	ssize_t len;

	snprintf(path, sizeof(path), "%s/refusal.err", dir);
	argv[n++] = prog;
	while (*args != NULL && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	p = fork();
	CHECK(p >= 0, "fork");
	if (p == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	CHECK(waitpid(p, &st, 0) == p, "wait");
	fd = open(path, O_RDONLY);
	len = fd >= 0 ? read(fd, err, cap - 1) : 0;
	if (fd >= 0)
		close(fd);
	err[len > 0 ? len : 0] = '\0';
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One-line refusals, and a daemonized mount (no -f): it exits 0 once the
 * mount is live, and an unmount stops it. */
static void test_refusals_and_daemon(void)
{
	char err[2048], opts[PATH_MAX + 64], nodir[PATH_MAX + 32];
	char file[PATH_MAX + 32];

	snprintf(opts, sizeof(opts), "id=1,data=%s", data[0]);
	CHECK(run_mount((const char *[]){ conf, mnt[0], "-o", opts, NULL }, err,
	          sizeof(err)) == 1 &&
	        strstr(err, "already a raftkv mount"),
	    "mounted twice: %s", err);
	snprintf(nodir, sizeof(nodir), "%s/missing", dir);
	CHECK(run_mount((const char *[]){ conf, nodir, "-o", opts, NULL }, err,
	          sizeof(err)) == 1 &&
	        strstr(err, "No such file"),
	    "missing mountpoint: %s", err);
	CHECK(run_mount((const char *[]){ conf, conf, "-o", opts, NULL }, err,
	          sizeof(err)) == 1 &&
	        strstr(err, "not a directory"),
	    "not a directory: %s", err);
	snprintf(file, sizeof(file), "%s/spare", dir);
	CHECK(mkdir(file, 0755) == 0, "mkdir");
	CHECK(run_mount((const char *[]){ conf, file, "-o", "id=9", NULL }, err,
	          sizeof(err)) == 1 &&
	        strstr(err, "member 9 is not in"),
	    "unknown id: %s", err);
	CHECK(run_mount((const char *[]){ conf, file, "-o", "id=1,bogus=1",
	                    NULL },
	          err, sizeof(err)) == 1 &&
	        strstr(err, "unknown option"),
	    "unknown option: %s", err);
	{
		static const char *const bad[] = { "id=1,cache=loose",
			"id=1,cache=relaxed,attr_timeout=-1",
			"id=1,attr_timeout=3601", "id=1,entry_timeout=1s",
			"id=1,attr_timeout=" };

		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
			CHECK(run_mount((const char *[]){ conf, file, "-o",
			                    bad[k], NULL },
			          err, sizeof(err)) == 1 &&
			        strstr(err, "invalid value"),
			    "%s: %s", bad[k], err);
	}
	/* The data directory of member 1 is locked by the running member. */
	CHECK(run_mount((const char *[]){ conf, file, "-o", opts, NULL }, err,
	          sizeof(err)) == 1 &&
	        strchr(err, '\n') == strrchr(err, '\n'),
	    "data directory in use: one line: %s", err);

	/* Daemonized: mount 2 stopped, mounted again without -f. */
	CHECK(stop(1) != -1, "stop mount 2");
	snprintf(opts, sizeof(opts), "id=2,data=%s,timeout=%d", data[1],
	    OP_TIMEOUT_MS);
	CHECK(run_mount((const char *[]){ conf, mnt[1], "-o", opts, NULL }, err,
	          sizeof(err)) == 0,
	    "daemon mount: %s", err);
	CHECK(is_mounted(mnt[1]), "the daemon's mount is live on exit 0");
	expect_file(1, "hello", "two\n");
	unmount(1);
	CHECK(!is_mounted(mnt[1]), "unmounted");
	/* The daemon stops on its own; its data directory's lock (flock on
	 * the directory) tells when it is gone. */
	bool released = false;
	for (int t = 0; t < 600 && !released; t++) {
		int fd = open(data[1], O_RDONLY | O_DIRECTORY);

		CHECK(fd >= 0, "open %s", data[1]);
		released = flock(fd, LOCK_EX | LOCK_NB) == 0;
		close(fd);
		if (!released)
			sleep_ms(50);
	}
	CHECK(released, "the daemon did not stop after its unmount");
	start(1); /* back in the foreground for the rest */
}

/* ------------------------------------------------------------------
 * cache=relaxed: mounts 2 and 3 restarted with it, mount 1 stays strict.
 * ------------------------------------------------------------------ */

#define RLX_ROUNDS 40
#define RLX_MAX (300u * 1024)

/* Write @len bytes of pattern @seed to @path: with O_TRUNC, or over the
 * file in place (pwrite at 0, the size unchanged when it was @len). */
static void rlx_write(const char *path, size_t len, uint64_t seed, bool trunc)
{
	unsigned char *b = malloc(len ? len : 1);
	int fd = open(path, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0), 0644);

	CHECK(b != NULL && fd >= 0, "open %s", path);
	fill(b, 0, len, seed);
	CHECK(pwrite(fd, b, len, 0) == (ssize_t)len, "write %s", path);
	CHECK(close(fd) == 0, "close %s", path);
	free(b);
}

/* Read @path through a new descriptor: exactly @len bytes of @seed? */
static void rlx_expect(const char *path, size_t len, uint64_t seed,
    const char *who)
{
	unsigned char *want = malloc(len + 1), *got = malloc(len + 4097);
	int fd = open(path, O_RDONLY);
	size_t total = 0;
	ssize_t n;

	CHECK(want != NULL && got != NULL && fd >= 0, "%s: open %s", who, path);
	fill(want, 0, len, seed);
	while ((n = read(fd, got + total, len + 4097 - total)) > 0)
		total += (size_t)n;
	CHECK(n == 0, "%s: read %s", who, path);
	close(fd);
	CHECK(total == len, "%s: %s: %zu bytes, want %zu", who, path, total,
	    len);
	for (size_t i = 0; i < len; i++)
		CHECK(got[i] == want[i], "%s: %s: byte %zu differs", who, path,
		    i);
	free(want);
	free(got);
}

/* Pages of @path (@len bytes) resident in this mount's page cache, or
 * -1 when the file cannot be mapped (strict mode's direct I/O may not). */
static long rlx_resident(const char *path, size_t len)
{
	long pg = sysconf(_SC_PAGESIZE), n = 0;
	size_t npages = (len + (size_t)pg - 1) / (size_t)pg;
	unsigned char *vec = malloc(npages);
	int fd = open(path, O_RDONLY);
	void *m;

	CHECK(vec != NULL && fd >= 0, "open %s", path);
	m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		free(vec);
		return -1;
	}
	CHECK(mincore(m, len, vec) == 0, "mincore %s", path);
	for (size_t i = 0; i < npages; i++)
		n += vec[i] & 1;
	munmap(m, len);
	free(vec);
	return n;
}

static void test_relaxed(void)
{
	char p[N][PATH_MAX], q[PATH_MAX];
	const size_t big = 4u * MIB;
	long pages = (long)(big / (size_t)sysconf(_SC_PAGESIZE)), r;
	size_t len = 0;
	struct stat st;
	uint64_t t0;

	for (int i = 1; i < N; i++) {
		int st1 = stop(i);

		CHECK(WIFEXITED(st1) && WEXITSTATUS(st1) == 0,
		    "mount %d ended with status %#x", i + 1, st1);
		extra_opts[i] = ",cache=relaxed,attr_timeout=1,entry_timeout=1";
		start(i);
	}

	/* Close-to-open, every round: whatever mount wrote and closed, an
	 * open() that begins after it reads exactly those bytes on every
	 * mount, the writer's included; the readers had the previous
	 * contents in their caches (pages and attributes).  Sizes vary;
	 * odd rounds overwrite in place at an unchanged size (only the
	 * version tells the caches apart). */
	for (int i = 0; i < N; i++)
		pathf(p[i], i, "relaxed-c2o");
	for (int round = 0; round < RLX_ROUNDS; round++) {
		int w = round % N;
		bool trunc = round % 2 == 0;

		if (trunc)
			len = 1 + ((size_t)round * 7919u * 13u) % RLX_MAX;
		rlx_write(p[w], len, (uint64_t)round + 1, trunc);
		for (int k = 0; k < N; k++) {
			char who[64];

			snprintf(who, sizeof(who),
			    "round %d (writer %d): "
			    "mount %d",
			    round, w + 1, (w + k) % N + 1);
			rlx_expect(p[(w + k) % N], len, (uint64_t)round + 1,
			    who);
		}
	}

	/* The same through a hard link: written by one name on mount 1,
	 * read by the other on the relaxed mounts, growing each round. */
	pathf(q, 0, "relaxed-c2o-link");
	CHECK(link(p[0], q) == 0, "link");
	for (int round = 0; round < 8; round++) {
		len = 70000 + (size_t)round * 30001u;
		rlx_write(q, len, (uint64_t)round + 100, true);
		for (int k = 1; k < N; k++)
			rlx_expect(p[k], len, (uint64_t)round + 100,
			    "read through the other name of a hard link");
	}
	CHECK(unlink(q) == 0, "unlink");

	/* A mount reads its own writes at once: another descriptor on the
	 * writer's (relaxed) mount, before the writer closes; and stat. */
	{
		int fd = open(p[1], O_WRONLY | O_TRUNC);
		unsigned char b[5000];

		CHECK(fd >= 0, "open");
		fill(b, 0, sizeof(b), 777);
		CHECK(write(fd, b, sizeof(b)) == (ssize_t)sizeof(b), "write");
		rlx_expect(p[1], sizeof(b), 777, "own mount, writer open");
		CHECK(stat(p[1], &st) == 0 && st.st_size == (off_t)sizeof(b),
		    "own stat: size %lld", (long long)st.st_size);
		CHECK(close(fd) == 0, "close");
	}

	/* The page cache is used: after reading a 4 MiB file on a relaxed
	 * mount all its pages are resident; an open of the unchanged file
	 * keeps them; strict mode (direct I/O) keeps none. */
	for (int i = 0; i < N; i++)
		pathf(p[i], i, "relaxed-big");
	rlx_write(p[0], big, 4242, true);
	rlx_expect(p[0], big, 4242, "strict mount");
	r = rlx_resident(p[0], big);
	CHECK(r <= 0, "strict mount: %ld pages cached", r);
	for (int i = 1; i < N; i++) {
		/* An open reads direct while the mount's notifier is still
		 * sending what it applied (fs/rkfile.c): try a few times. */
		for (int t = 0; t < 50; t++) {
			rlx_expect(p[i], big, 4242, "relaxed mount");
			r = rlx_resident(p[i], big);
			if (r == pages)
				break;
			sleep_ms(100);
		}
		CHECK(r == pages,
		    "mount %d: %ld of %ld pages cached after a "
		    "read",
		    i + 1, r, pages);
		rlx_expect(p[i], big, 4242, "relaxed mount, again");
		r = rlx_resident(p[i], big);
		CHECK(r == pages,
		    "mount %d: %ld of %ld pages cached after "
		    "an open of the unchanged file",
		    i + 1, r, pages);
	}
	/* Changed on mount 1: the next open on the others drops them. */
	rlx_write(p[0], big, 4343, false);
	for (int i = 1; i < N; i++)
		rlx_expect(p[i], big, 4343, "relaxed mount after a change");
	CHECK(unlink(p[0]) == 0, "unlink");

	/* Staleness is bounded: after a change on mount 1, a stat on a
	 * relaxed mount that had the old attributes cached shows the new
	 * size within attr_timeout (1 s) + time to apply (a margin of
	 * 10 s on a loaded machine; a bound, not a speed). */
	pathf(q, 0, "relaxed-stat");
	put_file(q, "x", O_TRUNC);
	t0 = now_ms();
	for (int i = 1; i < N; i++) {
		pathf(p[i], i, "relaxed-stat");
		while (stat(p[i], &st) == 0 && st.st_size != 1 &&
		    now_ms() - t0 < 11000)
			sleep_ms(10);
		CHECK(st.st_size == 1, "mount %d: size %lld %llu ms after",
		    i + 1, (long long)st.st_size,
		    (unsigned long long)(now_ms() - t0));
	}
	put_file(q, "xyz", O_APPEND);
	t0 = now_ms();
	for (int i = 1; i < N; i++) {
		while (stat(p[i], &st) == 0 && st.st_size != 4 &&
		    now_ms() - t0 < 11000)
			sleep_ms(10);
		CHECK(st.st_size == 4, "mount %d: size %lld %llu ms after",
		    i + 1, (long long)st.st_size,
		    (unsigned long long)(now_ms() - t0));
	}
	printf("  a stat on the relaxed mounts saw the change after %llu "
	       "ms\n",
	    (unsigned long long)(now_ms() - t0));

	/* Shared writable mappings work on a relaxed mount (page cache):
	 * msync(MS_SYNC) commits the stores; another mount opens and reads
	 * them. */
	{
		int fd;
		char *m;

		pathf(q, 1, "relaxed-mmap");
		fd = open(q, O_RDWR | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0 && ftruncate(fd, 8192) == 0, "create %s", q);
		m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHECK(m != MAP_FAILED, "mmap shared writable, relaxed");
		memset(m, 0, 8192);
		memcpy(m + 5000, "mapped", 6);
		CHECK(msync(m, 8192, MS_SYNC) == 0, "msync");
		munmap(m, 8192);
		CHECK(close(fd) == 0, "close");
		pathf(q, 0, "relaxed-mmap");
		fd = open(q, O_RDONLY);
		CHECK(fd >= 0, "open %s", q);
		{
			char got[8] = { 0 };

			CHECK(pread(fd, got, 6, 5000) == 6 &&
			        memcmp(got, "mapped", 6) == 0,
			    "mount 1 reads '%s' where mount 2 stored by mmap",
			    got);
		}
		close(fd);
	}

	/* opendir passes a barrier: a name created on mount 1 is listed. */
	pathf(q, 0, "relaxed-new");
	put_file(q, "n", 0);
	for (int i = 1; i < N; i++) {
		DIR *d;
		struct dirent *de;
		bool seen = false;

		d = opendir(mnt[i]);
		CHECK(d != NULL, "opendir");
		while ((de = readdir(d)) != NULL)
			seen = seen || strcmp(de->d_name, "relaxed-new") == 0;
		closedir(d);
		CHECK(seen,
		    "mount %d: readdir misses a name created before "
		    "its opendir",
		    i + 1);
	}
}

int main(void)
{
	int rv;
	char quota[64];

	snprintf(quota, sizeof(quota), "quota %uM\n", QUOTA >> 20);
	rv = fsh_setup("fs", quota);
	if (rv != 0)
		return rv;
	CHECK(cl.quota == QUOTA, "quota line");
	{
		struct sigaction sa = { .sa_sigaction = on_fatal,
			.sa_flags = SA_SIGINFO | SA_RESETHAND };

		sigaction(SIGBUS, &sa, NULL);
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGABRT, &sa, NULL);
	}

	test_basic();
	printf("ok basic\n");
	test_refusals_and_daemon();
	printf("ok refusals, daemon mode\n");
	test_holes_append_truncate();
	printf("ok holes, append, truncate\n");
	test_write_buffering();
	printf("ok write buffering: own bytes at once, others at commit\n");
	test_cli();
	printf("ok raftkv client = mounts\n");
	test_xattr();
	printf("ok user.* extended attributes\n");
	test_open_unlinked();
	printf("ok files removed while open\n");
	test_races();
	printf("ok O_EXCL and mkdir races\n");
	test_open_races();
	printf("ok O_CREAT races: all open one file\n");
	test_links();
	printf("ok hard links (nlink, one name removed, open files)\n");
	test_link_races();
	printf("ok link(2) races: one winner, EEXIST for the others\n");
	test_remove();
	printf("ok unlink, rmdir, ENOTEMPTY\n");
	test_rename();
	printf("ok rename (atomic directory rename, NOREPLACE, EXCHANGE)\n");
	test_model();
	printf("ok random operations against a model\n");
	test_linearizable();
	printf("ok concurrent readers and writers (three per file, one on "
	       "each mount) on all mounts: linearizable\n");
	test_minority();
	printf("ok minority mount: EIO, then recovers\n");
	test_sigstop();
	printf("ok SIGSTOP of the leader's mount\n");
	test_kill9();
	printf("ok kill -9 of the leader's mount, remount\n");
	test_quota();
	printf("ok size quota: df, ENOSPC, nothing half-written, reads\n");
	test_bigfile();
	printf("ok big files: 64 MiB across mounts, mmap, raftkv get, a 4 KiB "
	       "write commits about 4 KiB, truncate, EFBIG, restart from a "
	       "snapshot\n");
	{
		const char *long_run = getenv("RAFTKV_LONG");

		if (long_run && *long_run == '1') {
			test_bigfile_long();
			printf("ok a 1 GiB file across mounts and a restart "
			       "from a snapshot\n");
		}
	}
	test_relaxed();
	printf("ok cache=relaxed: close-to-open every round, own writes at "
	       "once, page cache used, stat staleness bounded\n");
	/* An unmount stops each member cleanly (exit 0: no sanitizer
	 * report, no leak); the last one with SIGTERM instead. */
	for (int i = 0; i < N - 1; i++) {
		int st = stop(i);

		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "mount %d ended "
		    "with status %#x after its unmount (see %s/mount%d.log)",
		    i + 1, st, dir, i + 1);
	}
	{
		int st;

		CHECK(kill(pids[N - 1], SIGTERM) == 0, "SIGTERM");
		CHECK(waitpid(pids[N - 1], &st, 0) == pids[N - 1], "wait");
		pids[N - 1] = 0;
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "mount %d ended "
		    "with status %#x after SIGTERM",
		    N, st);
		CHECK(!is_mounted(mnt[N - 1]), "SIGTERM unmounted");
	}
	printf("ok clean stops (unmount, SIGTERM)\n");
	return 0;
}
