/*
 * test_fs_unlink.c - a file removed on one mount while open on another
 * stays readable and writable through the other mount's descriptors, and
 * goes once that mount closes it or dies (three real mounts,
 * tests/fs/fsharness.h; the open table of kv.h, fs/rkopen.h).
 *
 * A mount registers its open files in the background, so an unlink on
 * another mount right after the open may come first (the file is then
 * deleted: ESTALE there, as raftkv(7) says).  The scenarios wait for the
 * registration by its one visible effect: they unlink, and if the file
 * was deleted rather than kept (no hidden key), they make it again,
 * open it again and wait a little longer before the next unlink.
 *
 * The session TTL is 2 s (the lock lease 0.5 s: a TTL must be 3 leases),
 * so that the registrations of a mount killed with -9 expire within
 * seconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "raft/client/cproto.h"
#include "tests/fs/fsharness.h"

/* Member @idx's commit index. */
static uint64_t commit_of(int idx)
{
	struct clerk_options o;
	struct clerk *ck;
	struct cproto_status st;

	clerk_options_defaults(&o);
	o.deadline_ms = 20000;
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	CHECK(clerk_member_status(ck, (uint32_t)idx, &st) == 0, "status");
	clerk_free(ck);
	return st.commit;
}

/*
 * Make @rel holding @data through mount @a, open it O_RDWR on mount
 * @b, and remove it on mount @a (unlink, or with @over a rename of
 * @over over it), until it was kept for @b (one hidden key).  Returns
 * @b's descriptor.
 */
static int open_then_remove_more(int a, int b, const char *rel,
    const char *data, const char *over, size_t before)
{
	char p[PATH_MAX], q[PATH_MAX];

	for (int t = 0; t < 40; t++) {
		int fd;

		pathf(p, a, "%s", rel);
		put_file(p, data, O_TRUNC);
		pathf(q, b, "%s", rel);
		fd = open(q, O_RDWR);
		CHECK(fd >= 0, "open on mount %d", b + 1);
		sleep_ms(t * 10); /* the registration, in the background */
		if (over != NULL) {
			pathf(q, a, "%s", over);
			put_file(q, "the new one", O_TRUNC);
			CHECK(rename(q, p) == 0, "rename over it");
		} else {
			CHECK(unlink(p) == 0, "unlink on mount %d", a + 1);
		}
		if (fsh_count_keys("\001o/") == before + 1)
			return fd;
		/* Deleted before the registration committed: the window
		 * raftkv(7) describes; its descriptor answers ESTALE. */
		close(fd);
	}
	CHECK(false, "never kept for mount %d", b + 1);
	return -1;
}

static int open_then_remove(int a, int b, const char *rel, const char *data,
    const char *over)
{
	return open_then_remove_more(a, b, rel, data, over, 0);
}

static void test_removed_elsewhere(void)
{
	int l = leader_index(), a = (l + 1) % N, b = (l + 2) % N, fd;
	size_t keys0 = fsh_count_keys("");
	char buf[64];
	struct stat st;

	/* Removed on a follower's mount, held on the other follower's. */
	fd = open_then_remove(a, b, "held", "held data", NULL);
	for (int i = 0; i < N; i++)
		expect_errno(i, "held", ENOENT);
	CHECK(pread(fd, buf, sizeof(buf), 0) == 9 &&
	        memcmp(buf, "held data", 9) == 0,
	    "read on the other mount after the unlink");
	CHECK(pwrite(fd, "HELD", 4, 0) == 4 && fsync(fd) == 0,
	    "write on the other mount after the unlink");
	CHECK(pwrite(fd, " and more", 9, 9) == 9 && fsync(fd) == 0,
	    "append after the unlink");
	CHECK(pread(fd, buf, sizeof(buf), 0) == 18 &&
	        memcmp(buf, "HELD data and more", 18) == 0,
	    "read back");
	CHECK(fstat(fd, &st) == 0 && st.st_size == 18, "fstat");
	/* Held 5 s, past the session TTL (2 s): the holder renews its session
	 * a quarter TTL apart (so the leader's ticker does not take it
	 * for dead), the file stays.  Meanwhile the holder's mount opens
	 * and closes another file every 100 ms, within the hold-down, so
	 * never registered: those send nothing and must not count as a
	 * renewal (they did: the session expired and the file went). */
	{
		char p[PATH_MAX + 64];

		pathf(p, a, "short");
		put_file(p, "short", O_TRUNC);
		pathf(p, b, "short");
		for (int t = 0; t < 50; t++) {
			int sfd = open(p, O_RDONLY);

			CHECK(sfd >= 0 && close(sfd) == 0, "short open");
			sleep_ms(100);
		}
		CHECK(unlink(p) == 0, "unlink short");
	}
	CHECK(pread(fd, buf, sizeof(buf), 0) == 18 &&
	        memcmp(buf, "HELD data and more", 18) == 0,
	    "read after the session TTL");
	CHECK(fsh_count_keys("") == keys0 + 1, "kept as one hidden key");
	CHECK(close(fd) == 0, "close");
	CHECK(fsh_wait_keys("\001o/", 0), "deleted after the close elsewhere");
	CHECK(fsh_count_keys("") == keys0, "nothing left of it");

	/* Renamed over on one mount while open on another. */
	fd = open_then_remove(b, l, "over", "old data", "new");
	for (int i = 0; i < N; i++)
		expect_file(i, "over", "the new one");
	CHECK(pread(fd, buf, sizeof(buf), 0) == 8 &&
	        memcmp(buf, "old data", 8) == 0,
	    "the replaced file, on the leader's mount");
	CHECK(close(fd) == 0, "close");
	CHECK(fsh_wait_keys("\001o/", 0), "deleted after the close");
}

/* A mount killed while holding a removed file: the file goes once the
 * dead process's session expires. */
static void test_holder_killed(void)
{
	int l = leader_index(), a = l, v = (l + 1) % N, status, fd;
	char buf[16];

	fd = open_then_remove(a, v, "victim", "victim data", NULL);
	CHECK(pread(fd, buf, sizeof(buf), 0) == 11, "read");
	CHECK(kill(pids[v], SIGKILL) == 0, "kill -9");
	CHECK(waitpid(pids[v], &status, 0) == pids[v], "wait");
	pids[v] = 0;
	close(fd);
	unmount(v);
	/* Kept until then (not asserted here: the TTL is 2 s of committed
	 * time; test_fs_mount's kill -9 checks it with 10 minutes). */
	CHECK(fsh_wait_keys("\001o/", 0), "deleted once its session expired");
	start(v);
	expect_errno(v, "victim", ENOENT);
}

/* Several removed files (with extended attributes) closed at once: all
 * go, with their attributes (in one TXN: fs/rkopen.c reap_batch). */
static void test_many_closed(void)
{
	enum { K = 5 };
	int l = leader_index(), a = (l + 1) % N, b = (l + 2) % N, fd[K];
	size_t keys0 = fsh_count_keys("");
	char rel[16], p[PATH_MAX];

	for (int k = 0; k < K; k++) {
		snprintf(rel, sizeof(rel), "many%d", k);
		pathf(p, a, "%s", rel);
		put_file(p, "many", O_TRUNC);
		CHECK(setxattr(p, "user.tag", "v", 1, 0) == 0, "setxattr");
		fd[k] = open_then_remove_more(a, b, rel, "many", NULL,
		    (size_t)k);
	}
	CHECK(fsh_count_keys("\001o/") == K, "%d kept", K);
	for (int k = 0; k < K; k++)
		CHECK(close(fd[k]) == 0, "close");
	CHECK(fsh_wait_keys("\001o/", 0), "all deleted after the closes");
	CHECK(fsh_count_keys("") == keys0, "nothing left of them (attributes)");
}

/* Reading small files (open, read, close) registers none of them: each
 * is closed within the hold-down (fs/rkopen.h, RKOPEN_HOLD_MS), so the
 * reads commit nothing (before: an OPEN and a CLOSE each).  Bounded
 * loosely (a loaded machine may hold one open past the hold-down). */
static void test_read_cost(void)
{
	enum { K = 40 };
	int l = leader_index(), a = (l + 1) % N, b = (l + 2) % N;
	char p[PATH_MAX];
	uint64_t c0, c1;

	for (int k = 0; k < K; k++) {
		pathf(p, a, "rd%02d", k);
		put_file(p, "x", O_TRUNC);
	}
	sleep_ms(500);
	c0 = commit_of(l);
	for (int k = 0; k < K; k++) {
		const char *got;

		pathf(p, b, "rd%02d", k);
		got = get_file(p); /* a static buffer */
		CHECK(got != NULL && strcmp(got, "x") == 0, "read");
	}
	sleep_ms(500);
	c1 = commit_of(l);
	printf("  reading %d files on a mount: %" PRIu64 " commits\n", K,
	    c1 - c0);
	CHECK(c1 - c0 < K / 2, "reads commit (almost) nothing: %" PRIu64,
	    c1 - c0);
	for (int k = 0; k < K; k++) {
		pathf(p, a, "rd%02d", k);
		CHECK(unlink(p) == 0, "unlink");
	}
}

/* Restart mount @i with @opts appended to its -o. */
static void restart_with(int i, const char *opts)
{
	stop(i);
	extra_opts[i] = opts;
	start(i);
}

/*
 * A registration batch whose answer is lost (KV_EMAYBE) but which
 * committed: the mount must not trust what it believed before it.
 * (A) an OPEN committed, the file closed before the retry: the CLOSE
 * still goes out (else the pair stays forever and a later removal
 * keeps the file hidden for good).  (B) a CLOSE committed, the file
 * opened again before the retry: the OPEN goes out again (else another
 * mount's unlink deletes it under the descriptor: ESTALE).
 */
static void test_lost_answer(void)
{
	int l = leader_index(), v = (l + 1) % N, a = (l + 2) % N, fd;
	char p[PATH_MAX], q[PATH_MAX], buf[16];

	/* (A): batches 1-3 of mount v commit but answer "maybe". */
	restart_with(v, ",fault_opens_maybe=1:3");
	pathf(p, a, "lostA");
	put_file(p, "lost A", O_TRUNC);
	pathf(q, v, "lostA");
	fd = open(q, O_RDONLY);
	CHECK(fd >= 0, "open on mount %d", v + 1);
	sleep_ms(400); /* the OPEN committed, its answer lost (retried) */
	CHECK(close(fd) == 0, "close");
	sleep_ms(3000); /* the CLOSE, after the faults */
	CHECK(unlink(p) == 0, "unlink");
	CHECK(fsh_count_keys("\001o/") == 0,
	    "closed everywhere: deleted, not kept (the lost OPEN's pair "
	    "was closed)");

	/* (B): batch 1 (the OPEN) answers, 2-4 commit and answer "maybe". */
	restart_with(v, ",fault_opens_maybe=2:3");
	pathf(p, a, "lostB");
	put_file(p, "lost B", O_TRUNC);
	fd = open(q, O_RDONLY); /* q: mount v's lostA: not there */
	CHECK(fd < 0 && errno == ENOENT, "lostA is gone");
	pathf(q, v, "lostB");
	fd = open(q, O_RDONLY);
	CHECK(fd >= 0, "open on mount %d", v + 1);
	sleep_ms(1000); /* registered (batch 1) */
	CHECK(close(fd) == 0, "close");
	sleep_ms(60); /* the CLOSE committed, its answer lost */
	fd = open(q, O_RDONLY);
	CHECK(fd >= 0, "open again on mount %d", v + 1);
	sleep_ms(3000); /* the OPEN again, after the faults */
	CHECK(unlink(p) == 0, "unlink on mount %d", a + 1);
	CHECK(fsh_count_keys("\001o/") == 1, "held open on mount %d: kept",
	    v + 1);
	CHECK(pread(fd, buf, sizeof(buf), 0) == 6 &&
	        memcmp(buf, "lost B", 6) == 0,
	    "read after the unlink elsewhere");
	CHECK(close(fd) == 0, "close");
	CHECK(fsh_wait_keys("\001o/", 0), "deleted after the close");
	restart_with(v, "");
}

/* A file open on mount v whose registration never commits (its batches
 * are lost): removing its last name on v itself fails (EIO after the
 * mount's timeout) rather than delete it under v's descriptor. */
static void test_local_unregistered(void)
{
	int v = (leader_index() + 1) % N, fd;
	char p[PATH_MAX], q[PATH_MAX], buf[16];

	restart_with(v, ",timeout=1500,fault_opens_lost=1:1000000");
	pathf(p, v, "unreg");
	put_file(p, "unregistered", O_TRUNC);
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0, "open");
	errno = 0;
	CHECK(unlink(p) == -1 && errno == EIO,
	    "unlink of a file open here, not registered: EIO");
	pathf(q, v, "unreg.new");
	put_file(q, "replacement", O_TRUNC);
	errno = 0;
	CHECK(rename(q, p) == -1 && errno == EIO,
	    "rename over a file open here, not registered: EIO");
	for (int i = 0; i < N; i++)
		expect_file(i, "unreg", "unregistered");
	CHECK(pread(fd, buf, sizeof(buf), 0) == 12 &&
	        memcmp(buf, "unregistered", 12) == 0,
	    "its descriptor still reads it");
	CHECK(close(fd) == 0, "close");
	CHECK(rename(q, p) == 0, "closed: the rename over it goes through");
	expect_file(v, "unreg", "replacement");
	CHECK(unlink(p) == 0, "unlink");
	CHECK(fsh_count_keys("\001o/") == 0, "nothing kept");

	/* Removed on another mount: deleted (not registered: the window
	 * raftkv(7) describes), v's descriptor answers ESTALE. */
	put_file(p, "unregistered", O_TRUNC);
	fd = open(p, O_RDWR);
	CHECK(fd >= 0, "open");
	CHECK(pwrite(fd, "U", 1, 0) == 1 && fsync(fd) == 0, "write here");
	pathf(q, (v + 1) % N, "unreg");
	CHECK(unlink(q) == 0, "unlink on another mount");
	CHECK(fsh_count_keys("\001o/") == 0, "not kept");
	for (int k = 0; k < 3; k++) {
		struct stat st;

		errno = 0;
		CHECK(pread(fd, buf, sizeof(buf), 0) == -1 && errno == ESTALE,
		    "read %d of the deleted file: ESTALE", k);
		errno = 0;
		CHECK(fstat(fd, &st) == -1 && errno == ESTALE, "fstat: ESTALE");
	}
	CHECK(close(fd) == 0, "close");
	restart_with(v, "");
}

int main(void)
{
	int rv = fsh_setup("unlink", "lock_lease 500\nsession_ttl 2000\n");

	if (rv != 0)
		return rv;
	test_removed_elsewhere();
	printf("ok a file removed on one mount stays usable on another\n");
	test_read_cost();
	printf("ok reading files commits no registrations\n");
	test_many_closed();
	printf("ok removed files closed at once all go\n");
	test_holder_killed();
	printf("ok a killed holder's removed file goes with its session\n");
	test_lost_answer();
	printf("ok a registration whose answer was lost is sent again\n");
	test_local_unregistered();
	printf("ok a file open here, not registered, is not removed here\n");
	fsh_stop_all_clean();
	return 0;
}
