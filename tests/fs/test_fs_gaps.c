/*
 * test_fs_gaps.c - end-to-end tests of mount.raftkv behaviours that sit
 * at the edges of the mapping (three real mounts, tests/fs/fsharness.h):
 *
 *   a file deleted by a raftkv client while open on a mount: that
 *   descriptor answers ESTALE (read, write, fstat), never EIO and never
 *   other data (a mount's own removals keep a file open anywhere:
 *   test_fs_unlink.c);
 *   keys put by a client that creates no parent directories (the clerk
 *   API, raftkv put) show up through implicit directories, which a
 *   lookup or a listing makes real (mode 0755, owner root);
 *   a large directory listed with readdirplus (`ls -l` timed, strict
 *   and cache=relaxed; the figures are printed, not asserted) stays
 *   exact: entries changed by other mounts right after a listing;
 *   stat of the mountpoint (what umount does first) answers on a mount
 *   cut off from the majority;
 *   a file with as many extended attributes as it may have: ENOSPC past
 *   them, and its unlink or a rename over it removes them all.
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
#include <sys/xattr.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "raft/client/client.h"
#include "raft/client/cproto.h"
#include "raft/client/keys.h"
#include "tests/fs/fsharness.h"

static struct clerk *clerk_open(void)
{
	struct clerk_options o;
	struct clerk *ck;

	clerk_options_defaults(&o);
	o.deadline_ms = 20000;
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	return ck;
}

/* isolate(@i, false) from the other members' side only (member @i is
 * not running). */
static void heal_others(int i)
{
	for (int j = 0; j < N; j++)
		if (j != i)
			fsh_fault(j, i, 0, 0, false);
}

/* The root's attributes never change: stat of the mountpoint answers
 * without a majority (umount(8) stats it before unmounting). */
static void test_root_without_quorum(void)
{
	struct stat st;
	char p[PATH_MAX];
	uint64_t t0;
	int status;

	pathf(p, 0, "q");
	put_file(p, "x", 0);
	isolate(0, true);
	CHECK(stat(mnt[0], &st) == 0 && S_ISDIR(st.st_mode),
	    "stat of an isolated mount's root");
	/* Anything else waits for the majority, then fails.  A leader's
	 * mount may still answer while its read lease lasts (no other
	 * leader can exist yet: raftkv(7) READ LEASES), so stat until it
	 * fails; the lease is a fraction of a second, 30 s is a bound. */
	t0 = now_ms();
	do {
		errno = 0;
		status = stat(p, &st);
	} while (status == 0 && now_ms() - t0 < 30000);
	CHECK(status != 0 && errno == EIO, "stat below the root: %d, %s",
	    status, strerror(errno));
	/* umount(8) of the cut-off mount: it stats the root first (now at
	 * once), then statfs's it (util-linux libmount), which waits for
	 * the timeout; it unmounts either way, and the member stops. */
	t0 = now_ms();
	CHECK(run((const char *[]){ "umount", mnt[0], NULL }) == 0 &&
	        !is_mounted(mnt[0]),
	    "umount of a mount without a majority");
	printf("  umount without a majority: %.2f s\n",
	    (double)(now_ms() - t0) / 1000.0);
	status = stop(0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the member stopped with status %#x after umount", status);
	heal_others(0);
	start(0);
	for (int t = 0; t < 40 && stat(p, &st) != 0; t++)
		sleep_ms(250);
	CHECK(stat(p, &st) == 0, "healed");
}

/* A file deleted while open on mount 2 by a raftkv client (which, unlike
 * a mount, does not keep a file some mount holds open: the open table,
 * test_fs_unlink.c): mount 2's descriptor answers ESTALE, as NFS does,
 * never other data, and a write commits nothing.  The same answer as a
 * mount gets for a file another mount removed before the open's
 * registration committed (raftkv(7), Removed while open). */
static void test_removed_elsewhere(void)
{
	char p[PATH_MAX], q[PATH_MAX], buf[16];
	struct clerk *ck = clerk_open();
	struct kv_op op = { .type = KV_OP_RENAME,
		.flags = KV_F_ANYVER,
		.key = "/over2",
		.keylen = 6,
		.key2 = "/over1",
		.key2len = 6 };
	struct kv_cmd c = { .type = KV_OP_RENAME, .op = op };
	struct kv_result res;
	struct stat st;
	ssize_t n;
	int fd;

	pathf(p, 0, "gone");
	put_file(p, "old bytes", 0);
	pathf(p, 1, "gone");
	fd = open(p, O_RDWR);
	CHECK(fd >= 0, "open on mount 2");
	CHECK(pread(fd, buf, sizeof(buf), 0) == 9, "read before");
	CHECK(clerk_delete(ck, "/gone", 5, 0, KV_F_ANYVER, NULL) == KV_OK,
	    "delete through a client");
	errno = 0;
	n = pread(fd, buf, sizeof(buf), 0);
	CHECK(n < 0 && errno == ESTALE, "read on mount 2 after the delete: %zd",
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

	/* Renamed over by a client while open on mount 2. */
	pathf(p, 2, "over1");
	put_file(p, "first", 0);
	pathf(q, 2, "over2");
	put_file(q, "second", 0);
	pathf(p, 1, "over1");
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0, "open");
	CHECK(clerk_mutate(ck, &c, &res) == KV_OK, "rename over, by a client");
	errno = 0;
	CHECK(pread(fd, buf, sizeof(buf), 0) < 0 && errno == ESTALE,
	    "read of the replaced file on a mount");
	close(fd);
	expect_file(1, "over1", "second");
	clerk_free(ck);
}

/* Put @n empty files "DIR/fNNNNN" in batches of one TXN each. */
static void put_many(const char *dirkey, int n)
{
	struct clerk *ck = clerk_open();
	struct kv_op *ops = calloc(KV_TXN_MAX, sizeof(*ops));
	char(*keys)[64] = calloc(KV_TXN_MAX, 64);

	CHECK(ops != NULL && keys != NULL, "calloc");
	for (int i = 0; i < n;) {
		struct kv_cmd c = { .type = KV_OP_TXN, .ops = ops };
		struct kv_result res;

		for (c.nops = 0; c.nops < KV_TXN_MAX && i < n; c.nops++, i++) {
			struct kv_op *op = &ops[c.nops];

			snprintf(keys[c.nops], 64, "%s/f%05d", dirkey, i);
			memset(op, 0, sizeof(*op));
			op->type = KV_OP_PUT;
			op->flags = KV_F_ANYVER;
			op->key = keys[c.nops];
			op->keylen = (uint32_t)strlen(keys[c.nops]);
			op->meta.kind = KV_KIND_FILE;
			op->meta.mode = 0644;
		}
		CHECK(clerk_mutate(ck, &c, &res) == KV_OK, "txn of puts");
	}
	free(keys);
	free(ops);
	clerk_free(ck);
}

/* Seconds `ls -l DIR` takes (output discarded), or -1. */
static double time_ls(const char *path)
{
	uint64_t t0 = now_ms();

	if (run((const char *[]){ "ls", "-l", path, NULL }) != 0)
		return -1;
	return (double)(now_ms() - t0) / 1000.0;
}

/* Count the entries of @path and check each one's d_ino against lstat's
 * st_ino (readdirplus hands the kernel inodes: they must be the ones a
 * lookup finds).  Returns the count. */
static int check_listing(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL, "opendir %s", path);
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		CHECK(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		            0 &&
		        st.st_ino == e->d_ino,
		    "%s/%s: d_ino %lu, st_ino %lu", path, e->d_name,
		    (unsigned long)e->d_ino, (unsigned long)st.st_ino);
		n++;
	}
	closedir(d);
	return n;
}

/* Entries of the big directory: 2,500 in the default suite (a strict
 * `ls -l` costs a lookup and a getattr per name), 10,000 with
 * RAFTKV_LONG=1.  At least 2,020: the changes below name f01000..f02019. */
static int big_entries(void)
{
	const char *l = getenv("RAFTKV_LONG");

	return l != NULL && strcmp(l, "1") == 0 ? 10000 : 2500;
}

/* A directory of big_entries() files listed with `ls -l` (figures
 * printed, not asserted), and entries that readdirplus handed to one
 * mount's kernel changed on another mount right after: every later stat
 * is exact. */
static void test_readdirplus(void)
{
	char p[PATH_MAX], q[PATH_MAX];
	struct stat st, st2;
	int big = big_entries();
	DIR *d;

	pathf(p, 0, "big");
	CHECK(mkdir(p, 0755) == 0, "mkdir");
	put_many("/big", big);
	/* One strict mount is enough: each name costs a lookup and a
	 * getattr there, which makes this the slowest part of the test. */
	pathf(p, 0, "big");
	printf("  ls -l of %d entries, mount 1: %.2f s\n", big, time_ls(p));
	pathf(p, 0, "big");
	CHECK(check_listing(p) == big, "%d entries, d_ino = st_ino", big);
	/* cache=relaxed (mount 3): the kernel may keep what a listing
	 * gave it for entry_timeout/attr_timeout. */
	stop(2);
	extra_opts[2] = ",cache=relaxed";
	start(2);
	pathf(p, 2, "big");
	for (int i = 0; i < 2; i++)
		printf("  ls -l of %d entries, mount 3 (cache=relaxed), "
		       "run %d: %.2f s\n",
		    big, i + 1, time_ls(p));
	CHECK(check_listing(p) == big, "relaxed: d_ino = st_ino");
	stop(2);
	extra_opts[2] = "";
	start(2);

	/* Listed on mount 1 (the kernel got inodes and attributes), then
	 * changed on mount 2: mount 1 sees the change at once. */
	for (int round = 0; round < 20; round++) {
		pathf(p, 0, "big");
		d = opendir(p);
		CHECK(d != NULL, "opendir");
		while (readdir(d) != NULL)
			;
		pathf(p, 1, "big/f%05d", round);
		CHECK(chmod(p, 0600 + (mode_t)round) == 0, "chmod");
		pathf(p, 0, "big/f%05d", round);
		CHECK(lstat(p, &st) == 0 &&
		        (st.st_mode & 07777) == 0600 + (mode_t)round,
		    "mode after a chmod elsewhere: %o", st.st_mode);
		/* Replaced by another inode. */
		pathf(q, 1, "big/new%d", round);
		put_file(q, "replacement", 0);
		CHECK(lstat(q, &st2) == 0, "lstat");
		pathf(p, 1, "big/f%05d", 1000 + round);
		CHECK(rename(q, p) == 0, "rename over");
		pathf(p, 0, "big/f%05d", 1000 + round);
		CHECK(lstat(p, &st) == 0 && st.st_ino == st2.st_ino &&
		        st.st_size == 11,
		    "replaced elsewhere: ino %lu (want %lu), size %lld",
		    (unsigned long)st.st_ino, (unsigned long)st2.st_ino,
		    (long long)st.st_size);
		/* Removed. */
		pathf(p, 2, "big/f%05d", 2000 + round);
		CHECK(unlink(p) == 0, "unlink");
		snprintf(q, sizeof(q), "big/f%05d", 2000 + round);
		expect_errno(0, q, ENOENT);
		closedir(d);
	}
	pathf(p, 0, "big");
	CHECK(check_listing(p) == big - 20, "after the changes");
}

/* The names in directory @path, sorted, joined by ' ' into @out. */
static void names_of(const char *path, char *out, size_t cap)
{
	struct dirent **list;
	int n = scandir(path, &list, NULL, alphasort);
	size_t pos = 0;

	CHECK(n >= 0, "scandir %s", path);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strcmp(list[i]->d_name, ".") != 0 &&
		    strcmp(list[i]->d_name, "..") != 0)
			pos += (size_t)snprintf(out + pos, cap - pos, "%s%s",
			    pos ? " " : "", list[i]->d_name);
		free(list[i]);
	}
	free(list);
}

static int cli_put(const char *key, const char *value)
{
	const char *bd = getenv("RAFTKV_BUILDDIR");
	char bin[PATH_MAX];

	snprintf(bin, sizeof(bin), "%s/kv/raftkv", bd ? bd : ".");
	return run(
	    (const char *[]){ bin, "-c", conf, "put", key, value, NULL });
}

/* Keys whose parent directories are not keys (a client that creates no
 * parents: the clerk API, raftkv put) show up through implicit
 * directories, which the mount makes real when it meets them. */
static void test_implicit_dirs(void)
{
	struct kv_meta meta = { .kind = KV_KIND_FILE, .mode = 0644 };
	struct clerk *ck = clerk_open();
	struct kv_attr a;
	char p[PATH_MAX], names[4096];
	struct stat st;

	CHECK(clerk_put(ck, "/imp/a/b/c", 10, "deep", 4, 0, 0, &meta, NULL) ==
	        KV_OK,
	    "put");
	CHECK(clerk_put(ck, "/imp/a/x", 8, "side", 4, 0, 0, &meta, NULL) ==
	        KV_OK,
	    "put");
	CHECK(clerk_put(ck, "/imp/a//hidden", 14, "h", 1, 0, 0, &meta, NULL) ==
	        KV_OK,
	    "put");
	/* A path lookup through them on one mount. */
	expect_file(1, "imp/a/b/c", "deep");
	pathf(p, 1, "imp/a/b");
	CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
	        (st.st_mode & 07777) == 0755 && st.st_uid == 0,
	    "an implicit directory: mode %o", st.st_mode);
	/* Made real: the CLI sees a directory key. */
	CHECK(clerk_get(ck, "/imp/a/b", 8, &a, NULL, NULL) == KV_OK &&
	        a.kind == KV_KIND_DIR,
	    "real after the lookup");
	/* A listing on another mount shows the names. */
	pathf(p, 2, "imp/a");
	names_of(p, names, sizeof(names));
	CHECK(strcmp(names, "b x") == 0, "listing: '%s'", names);
	pathf(p, 0, "%s", "");
	names_of(p, names, sizeof(names));
	CHECK(strstr(names, "imp") != NULL, "root listing: '%s'", names);
	/* A listing alone makes them real too, with inode numbers that
	 * lookups agree with. */
	CHECK(clerk_put(ck, "/imp/l1/f", 9, "1", 1, 0, 0, &meta, NULL) == KV_OK,
	    "put");
	CHECK(clerk_put(ck, "/imp/l2/g/h", 11, "2", 1, 0, 0, &meta, NULL) ==
	        KV_OK,
	    "put");
	pathf(p, 0, "imp");
	CHECK(check_listing(p) == 3, "imp lists a, l1, l2");
	CHECK(clerk_get(ck, "/imp/l2", 7, &a, NULL, NULL) == KV_OK &&
	        a.kind == KV_KIND_DIR,
	    "real after the listing");
	/* mkdir of a shown name: EEXIST; creating inside, chmod: work, and
	 * every mount sees them. */
	pathf(p, 2, "imp/l2/g");
	errno = 0;
	CHECK(mkdir(p, 0700) != 0 && errno == EEXIST, "mkdir of a shown name");
	pathf(p, 2, "imp/l2/g/new");
	put_file(p, "made", 0);
	pathf(p, 1, "imp/l2");
	CHECK(chmod(p, 0711) == 0, "chmod");
	for (int i = 0; i < N; i++) {
		expect_file(i, "imp/l2/g/new", "made");
		expect_file(i, "imp/l2/g/h", "2");
		pathf(p, i, "imp/l2");
		CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0711,
		    "mount %d: mode %o", i + 1, st.st_mode);
	}
	/* Through the raftkv CLI, which creates no parents either. */
	CHECK(cli_put("/imp/cli/d/e", "from the cli") == 0, "raftkv put");
	for (int i = 0; i < N; i++)
		expect_file(i, "imp/cli/d/e", "from the cli");
	pathf(p, 0, "imp/cli");
	names_of(p, names, sizeof(names));
	CHECK(strcmp(names, "d") == 0, "listing: '%s'", names);
	/* rmdir of a directory made so: ENOTEMPTY while keys are below. */
	pathf(p, 0, "imp/cli/d");
	errno = 0;
	CHECK(rmdir(p) != 0 && errno == ENOTEMPTY, "rmdir");
	clerk_free(ck);
}

/* The attributes one inode may have (raftkv(7), Extended attributes). */
#define XATTRS_PER_FILE 1016

/* How many of inode @ino's attributes the cluster holds (the keys
 * "\001x/INODE/NAME" of fs/xattr.c), through a clerk. */
static size_t xattr_keys(struct clerk *ck, uint64_t ino)
{
	char prefix[64];
	struct clerk_entry *e = NULL;
	size_t n = 0, total = 0;
	char after[KV_KEY_MAX + 1];
	size_t alen = 0;

	snprintf(prefix, sizeof(prefix), "\001x/%016llx/",
	    (unsigned long long)ino);
	do {
		CHECK(clerk_list(ck, prefix, strlen(prefix),
		          alen ? after : NULL, alen, 0, '/', &e, &n) == KV_OK,
		    "list");
		if (n > 0) {
			alen = e[n - 1].keylen;
			memcpy(after, e[n - 1].key, alen);
		}
		total += n;
		clerk_entries_free(e, n);
	} while (n > 0);
	return total;
}

/*
 * A file given as many user.* attributes as it may have (stress-ng
 * --xattr sets them until an error): the next new one fails with ENOSPC,
 * a replace still works, and an unlink removes the file with all of them
 * in one command, so its directory can be removed (issue 10: past 1020
 * attributes the unlink's TXN went over KV_TXN_MAX, the unlink failed
 * with E2BIG and the rmdir with ENOTEMPTY).  A rename over such a file
 * too.
 */
static void test_xattr_many(void)
{
	struct clerk *ck = clerk_open();
	char p[PATH_MAX], q[PATH_MAX], name[32];
	struct stat st;
	uint64_t t0 = now_ms();
	int i;

	pathf(p, 0, "xmany");
	CHECK(mkdir(p, 0755) == 0, "mkdir");
	for (int round = 0; round < 2; round++) {
		pathf(p, 0, "xmany/f");
		put_file(p, "x", 0);
		CHECK(stat(p, &st) == 0, "stat");
		for (i = 0; i < XATTRS_PER_FILE + 8; i++) {
			snprintf(name, sizeof(name), "user.a%d", i);
			if (setxattr(p, name, "v", 1, XATTR_CREATE) != 0)
				break;
		}
		CHECK(i == XATTRS_PER_FILE && errno == ENOSPC,
		    "%d attributes, then ENOSPC", i);
		CHECK(setxattr(p, "user.a7", "w", 1, XATTR_REPLACE) == 0,
		    "replace at the limit");
		CHECK(xattr_keys(ck, st.st_ino) == XATTRS_PER_FILE, "keys");
		if (round == 0) {
			pathf(p, 1, "xmany/f");
			CHECK(unlink(p) == 0, "unlink on mount 2");
		} else {
			pathf(q, 2, "xmany/g");
			put_file(q, "new", 0);
			pathf(p, 2, "xmany/f");
			CHECK(rename(q, p) == 0, "rename over it on mount 3");
			CHECK(unlink(p) == 0, "unlink");
		}
		CHECK(xattr_keys(ck, st.st_ino) == 0,
		    "attributes left after the file");
	}
	expect_errno(0, "xmany/f", ENOENT);
	pathf(p, 2, "xmany");
	CHECK(rmdir(p) == 0, "rmdir on mount 3");
	printf("  2 files of %d attributes made and removed: %.1f s\n",
	    XATTRS_PER_FILE, (double)(now_ms() - t0) / 1000.0);
	clerk_free(ck);
}

int main(void)
{
	int rv = fsh_setup("gaps", "");

	if (rv != 0)
		return rv;
	test_implicit_dirs();
	printf("ok implicit directories: shown, made real, CLI keys\n");
	test_readdirplus();
	printf("ok readdirplus: %d entries, changes elsewhere seen\n",
	    big_entries());
	test_xattr_many();
	printf("ok a file with the most attributes: ENOSPC past them, "
	       "removed with them\n");
	test_removed_elsewhere();
	printf("ok deleted by a client while open on a mount: ESTALE there\n");
	test_root_without_quorum();
	printf("ok stat of the root without a majority\n");
	fsh_stop_all_clean();
	return 0;
}
