/*
 * test_fs_locks.c - locks across three real mounts (fs/rklock.h, kv.h
 * LOCKS): lockfiles, flock(2) and fcntl(2) record locks exclude each
 * other across mounts, waits are fair and interruptible, a dead holder's
 * locks go (a process at once; a mount after its lease), and a holder
 * that lost its lock is fenced.
 *
 * Scenarios, in order (one cluster, fsharness.h):
 *   idle: a lock session idle past the session TTL keeps its next lock;
 *   counters: processes on every mount increment one counter file under
 *   flock, fcntl, an O_EXCL lockfile, a mkdir lock and `raftkv lock` (the
 *   CLI running a shell that reads and writes the file through the
 *   process's mount): the final count is exact, every round, also on cache=relaxed mounts (flock, fcntl: a
 *   grant makes the next read fresh); noclobber lockfiles (one winner);
 *   flock on a
 *   mount and `raftkv lock` on its path are one lock; LOCK_NB
 *   contention (EWOULDBLOCK, EAGAIN); flock upgrade and downgrade; F_GETLK
 *   reports a lock held on another mount (range, type, pid); a signal
 *   interrupts a blocking wait (EINTR) and leaks no lock, and when the
 *   grant wins the race the owner keeps what it held before; tokens
 *   (user.raftkv.token) strictly increase over grants on every mount;
 *   user.raftkv.fence reads back as set and honours XATTR_CREATE and
 *   XATTR_REPLACE;
 *   kill -9 of a holding process: a waiter on another mount is granted
 *   (the holder's mount is alive and renews its lease, so only the
 *   release on exit can free it); 10,000 POSIX locks of one process
 *   released when it exits; SIGSTOP, partition and kill -9 of the
 *   holder's mount: a waiter elsewhere is granted once the lease ran out,
 *   the old holder's fenced write is refused (EPERM), its locked file
 *   answers EIO, and the same write unfenced goes through and loses the
 *   other's update (what fencing is for); bytes buffered under a lock
 *   lost before they committed never commit (getattr, close: EIO); a
 *   lease that ran out inside a snapshot the holder's mount installs is
 *   noticed (EIO); OFD locks exclude across mounts and go at close; an
 *   OFD lock whose release failed (no majority) is retried until it
 *   goes; a release failed by fault injection is retried, and a lock the
 *   same owner takes meanwhile is not dropped by the retry; ftruncate is
 *   fenced and fails on a lost lock's file.
 *
 * Every child process is killed by PID at exit (before the mounts are
 * unmounted); no wall-clock assertions (timeouts only bound waiting).
 * RAFTKV_LONG=1: more processes, 200 increments each, three rounds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "raft/client/client.h"
#include "raft/client/cproto.h"
#include "raft/client/keys.h"
#include "tests/fs/fsharness.h"

/* The cluster's lock lease (the lock_lease line below): well above an
 * election (a holder cannot renew while there is no leader, and the
 * SIGSTOP and partition scenarios take the leader away). */
#define LEASE_MS 4000

/* The cluster's session TTL (the session_ttl line below, raftkv.conf(5)):
 * short, so that a mount's lock session idles past it in the idle
 * scenario (the default is 10 minutes), yet well above the time the
 * stop, partition and snapshot scenarios keep a mount away (a session
 * evicted meanwhile makes its next mutation's outcome unknown: EIO). */
#define SESSION_TTL_MS 20000

#define MAX_KIDS 64
static pid_t kids[MAX_KIDS];

/* Reap child @p within @ms; false if it has not ended by then (a child
 * killed with SIGKILL that does not end is stuck in a request its mount
 * never answers: the kernel waits uninterruptibly for the flush of its
 * files at exit). */
static bool reap(pid_t p, int *st, int ms)
{
	for (int t = 0; t <= ms; t += 10) {
		if (waitpid(p, st, WNOHANG) == p)
			return true;
		sleep_ms(10);
	}
	return false;
}

/* At exit, before the harness stops the mounts: a child still stuck after
 * 5 s is left to them (its requests fail when its mount ends). */
static void kill_kids(void)
{
	if (getpid() != main_pid)
		return;
	fsh_resume_mounts(); /* a kid's exit may wait for a stopped mount */
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] > 0 && reap(kids[i], NULL, 5000))
			kids[i] = 0;
}

/* Fork a child running @fn(@arg) (its exit status is fn's return). */
static pid_t spawn(int (*fn)(void *), void *arg)
{
	pid_t p = fork();

	CHECK(p >= 0, "fork");
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg));
	}
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] <= 0) {
			kids[i] = p;
			return p;
		}
	CHECK(0, "too many children");
	return -1;
}

/* Wait for child @p: its exit status (CHECKs that it exited), or -1 if
 * it is still running after @ms. */
static int reap_kid(pid_t p, int ms)
{
	int st;

	for (int t = 0; ms < 0 || t <= ms; t += 10) {
		pid_t r = waitpid(p, &st, WNOHANG);

		CHECK(r >= 0, "waitpid %d", (int)p);
		if (r == p) {
			for (int i = 0; i < MAX_KIDS; i++)
				if (kids[i] == p)
					kids[i] = 0;
			CHECK(WIFEXITED(st), "child %d: status %#x", (int)p,
			    st);
			return WEXITSTATUS(st);
		}
		sleep_ms(10);
	}
	return -1;
}

static bool long_run(void)
{
	const char *s = getenv("RAFTKV_LONG");

	return s != NULL && *s != '\0' && strcmp(s, "0") != 0;
}

/* ------------------------------------------------------------------ */
/* Counters */

enum method { M_FLOCK, M_FCNTL, M_EXCL, M_MKDIR, M_CLI, M_COUNT };
static const char *const method_name[M_COUNT] = { "flock", "fcntl",
	"O_EXCL lockfile", "mkdir lock", "raftkv lock" };

struct counter_arg {
	enum method m;
	int mount;
	int iters;
	char name[64];
};

static int read_count(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n == 0 ? 0 : atoi(buf);
}

static int write_count(int fd, int v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%010d", v);

	return pwrite(fd, buf, (size_t)n, 0) == n ? 0 : -1;
}

/* Take and drop a lockfile or lock directory at @path. */
static void lockfile_take(const char *path, bool dir)
{
	for (unsigned backoff = 1;; backoff = backoff < 8 ? backoff * 2 : 8) {
		int fd = dir ? mkdir(path, 0755)
		             : open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);

		if (fd >= 0) {
			if (!dir)
				close(fd);
			return;
		}
		if (errno != EEXIST) {
			fprintf(stderr, "lockfile %s: %s\n", path,
			    strerror(errno));
			_exit(3);
		}
		sleep_ms(backoff);
	}
}

/*
 * One increment under `raftkv lock` (the CLI, talking to the members of
 * the mounts): the command it runs reads the counter file through mount
 * @a->mount and writes it back (committed at the close of the shell's
 * redirection, before the lock is released).  0 or the failing step.
 */
static int cli_increment(const struct counter_arg *a, const char *path)
{
	char raftkv[PATH_MAX], key[80], script[2 * PATH_MAX + 128];
	const char *bd = getenv("RAFTKV_BUILDDIR");
	pid_t p;
	int st;

	snprintf(raftkv, sizeof(raftkv), "%s/kv/raftkv", bd ? bd : ".");
	snprintf(key, sizeof(key), "/%s.cli", a->name);
	/* expr: the count has leading zeros, octal to $(( )). */
	snprintf(script, sizeof(script),
	    "v=$(cat '%s') && v=$(expr \"$v\" + 1) && "
	    "printf %%010d \"$v\" > '%s'",
	    path, path);
	p = fork();
	if (p < 0)
		return 10;
	if (p == 0) {
		execl(raftkv, raftkv, "-c", conf, "lock", key, "--", "/bin/sh",
		    "-c", script, (char *)NULL);
		_exit(127);
	}
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "raftkv lock on mount %d: status %#x\n",
		    a->mount + 1, st);
		return 11;
	}
	return 0;
}

static int counter_kid(void *p)
{
	struct counter_arg *a = p;
	char path[PATH_MAX], lk[PATH_MAX];
	int fd = -1;

	pathf(path, a->mount, "%s", a->name);
	pathf(lk, a->mount, "%s.lock", a->name);
	if (a->m == M_FLOCK || a->m == M_FCNTL) {
		fd = open(path, O_RDWR);
		if (fd < 0)
			return 2;
	}
	for (int k = 0; k < a->iters; k++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int v, cfd = fd;

		if (a->m == M_CLI) {
			int rv = cli_increment(a, path);

			if (rv != 0)
				return rv;
			continue;
		}
		switch (a->m) {
		case M_FLOCK:
			if (flock(fd, LOCK_EX) != 0)
				return 4;
			break;
		case M_FCNTL:
			if (fcntl(fd, F_SETLKW, &fl) != 0)
				return 4;
			break;
		case M_EXCL:
		case M_MKDIR:
			lockfile_take(lk, a->m == M_MKDIR);
			cfd = open(path, O_RDWR);
			if (cfd < 0)
				return 2;
			break;
		default:
			return 9;
		}
		v = read_count(cfd);
		if (v < 0 || write_count(cfd, v + 1) != 0)
			return 5;
		switch (a->m) {
		case M_FLOCK:
			if (flock(fd, LOCK_UN) != 0)
				return 6;
			break;
		case M_FCNTL:
			fl.l_type = F_UNLCK;
			if (fcntl(fd, F_SETLK, &fl) != 0)
				return 6;
			break;
		default:
			/* The count commits at close, before the unlock. */
			if (close(cfd) != 0)
				return 6;
			if ((a->m == M_MKDIR ? rmdir(lk) : unlink(lk)) != 0)
				return 7;
			break;
		}
	}
	if (fd >= 0 && close(fd) != 0)
		return 8;
	return 0;
}

/* Count under each method in [@from, @to) on every mount. */
static void counters(int from, int to, const char *tag)
{
	int per_mount = long_run() ? 3 : 2, iters = long_run() ? 200 : 20;
	int rounds = long_run() ? 3 : 1;

	for (int m = from; m < to; m++)
		for (int r = 0; r < rounds; r++) {
			static struct counter_arg args[N * 8];
			pid_t ps[N * 8];
			char p[PATH_MAX];
			int n = 0, fd, v;

			snprintf(args[0].name, sizeof(args[0].name),
			    "count-%d-%d", m, r);
			pathf(p, 0, "%s", args[0].name);
			put_file(p, "0000000000", O_TRUNC);
			for (int i = 0; i < N; i++)
				for (int k = 0; k < per_mount; k++, n++) {
					args[n] = args[0];
					args[n].m = (enum method)m;
					args[n].mount = i;
					args[n].iters = iters;
				}
			for (int k = 0; k < n; k++)
				ps[k] = spawn(counter_kid, &args[k]);
			for (int k = 0; k < n; k++) {
				int st = reap_kid(ps[k], 300000);

				CHECK(st == 0, "%s counter child %d: %d",
				    method_name[m], k, st);
			}
			pathf(p, (r + 1) % N, "%s", args[0].name);
			fd = open(p, O_RDONLY);
			CHECK(fd >= 0, "open %s", p);
			v = read_count(fd);
			close(fd);
			CHECK(v == n * iters,
			    "%s round %d: count %d, want %d (a lost update: "
			    "no mutual exclusion)",
			    method_name[m], r, v, n * iters);
			printf("ok   %s%s: %d processes x %d increments = "
			       "%d\n",
			    method_name[m], tag, n, iters, v);
		}
}

static void test_counters(void)
{
	counters(0, M_COUNT, "");
}

/* Restart the mounts one at a time (two keep the quorum) with @opts. */
static void remount_all(const char *opts)
{
	for (int i = 0; i < N; i++) {
		int st = stop(i);

		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "mount %d ended with status %#x", i + 1, st);
		extra_opts[i] = opts;
		start(i);
	}
}

/* Delay by @ms (0: no more) every message the other members send to
 * member @i: it applies what commits that much later (fault injection). */
static void delay_to(int i, unsigned ms)
{
	for (int j = 0; j < N; j++)
		if (j != i)
			fsh_fault(j, i, 0, ms, false);
}

struct fresh_arg {
	int mount;
	int wfd, rfd; /* to the parent, from it */
};

/* The reader on the lagging relaxed mount: reads the counter ("O" when
 * done), waits for the go, says "S" and takes the flock, then reports
 * what it reads under it (10 bytes). */
static int fresh_kid(void *p)
{
	struct fresh_arg *a = p;
	char path[PATH_MAX], buf[16] = "";
	int fd;

	pathf(path, a->mount, "fresh");
	fd = open(path, O_RDWR);
	if (fd < 0 || pread(fd, buf, 10, 0) != 10)
		return 2;
	if (write(a->wfd, "O", 1) != 1 || read(a->rfd, buf, 1) != 1 ||
	    write(a->wfd, "S", 1) != 1)
		return 3;
	if (flock(fd, LOCK_EX) != 0)
		return 4;
	memset(buf, 0, sizeof(buf));
	if (pread(fd, buf, 10, 0) != 10 || write(a->wfd, buf, 10) != 10)
		return 5;
	return 0;
}

/*
 * A grant on a relaxed mount makes the next read fresh, deterministically
 * exposed: the reader's member applies 250 ms late (a delay on the
 * messages to it); the writer elsewhere holds the flock, writes and
 * unlocks while the reader's flock is under way, so the grant comes back
 * from the leader before the reader's member has applied the write.
 */
static void test_relaxed_fresh(void)
{
	int l = leader_index(), r = (l + 1) % N, wm = (l + 2) % N;
	int to[2], from[2], bfd;
	struct fresh_arg a;
	char p[PATH_MAX], got[16] = "", c;
	pid_t kid;

	pathf(p, wm, "fresh");
	put_file(p, "0000000000", O_TRUNC);
	expect_file(r, "fresh", "0000000000");
	bfd = open(p, O_RDWR);
	CHECK(bfd >= 0, "open %s", p);
	CHECK(flock(bfd, LOCK_EX) == 0, "writer's flock");
	CHECK(pwrite(bfd, "0000000001", 10, 0) == 10, "write");
	CHECK(pipe(to) == 0 && pipe(from) == 0, "pipe");
	a = (struct fresh_arg){ r, from[1], to[0] };
	kid = spawn(fresh_kid, &a);
	close(from[1]);
	close(to[0]);
	CHECK(read(from[0], &c, 1) == 1 && c == 'O', "the reader read");
	delay_to(r, 250);
	sleep_ms(500);
	CHECK(write(to[1], "g", 1) == 1, "go");
	CHECK(read(from[0], &c, 1) == 1 && c == 'S', "the reader locks");
	sleep_ms(80);
	CHECK(flock(bfd, LOCK_UN) == 0, "the writer unlocks (commits first)");
	for (size_t n = 0; n < 10;) {
		ssize_t k = read(from[0], got + n, 10 - n);

		CHECK(k > 0, "the reader's answer (status %d)",
		    reap_kid(kid, 1000));
		n += (size_t)k;
	}
	delay_to(r, 0);
	CHECK(reap_kid(kid, 30000) == 0, "the reader");
	CHECK(strcmp(got, "0000000001") == 0,
	    "read under a fresh grant on a relaxed mount: '%s', the previous "
	    "holder wrote '0000000001' before its unlock",
	    got);
	close(bfd);
	close(to[1]);
	close(from[0]);
}

/*
 * cache=relaxed (close-to-open, kernel page cache): taking a lock must
 * make the next read fresh, or a read-modify-write under the lock reads
 * what the previous holder's writes replaced (a lost update): flock and
 * fcntl counters on relaxed mounts, descriptors opened once.
 */
static void test_relaxed_counters(void)
{
	remount_all(",cache=relaxed");
	test_relaxed_fresh();
	for (int round = 0; round < 2; round++)
		counters(M_FLOCK, M_FCNTL + 1, ", cache=relaxed");
	remount_all("");
}

/* `set -o noclobber; echo $$ > lock` from every mount at once: one
 * winner. */
static void test_noclobber(void)
{
	for (int round = 0; round < 3; round++) {
		pid_t ps[N];
		int wins = 0;

		for (int i = 0; i < N; i++) {
			ps[i] = fork();
			CHECK(ps[i] >= 0, "fork");
			if (ps[i] == 0) {
				char cmd[PATH_MAX + 64];
				int fd = open("/dev/null", O_WRONLY);

				if (fd >= 0)
					dup2(fd, 2);
				snprintf(cmd, sizeof(cmd),
				    "set -o noclobber; echo $$ > %s/clob%d",
				    mnt[i], round);
				execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
				_exit(127);
			}
		}
		for (int i = 0; i < N; i++) {
			int st;

			CHECK(waitpid(ps[i], &st, 0) == ps[i], "wait");
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 127, "sh");
			wins += WEXITSTATUS(st) == 0;
		}
		CHECK(wins == 1, "noclobber round %d: %d winners", round, wins);
	}
}

/* ------------------------------------------------------------------ */
/* Contention, conversion, F_GETLK */

static int open_rw(int i, const char *rel)
{
	char p[PATH_MAX];
	int fd;

	pathf(p, i, "%s", rel);
	fd = open(p, O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0, "open %s", p);
	return fd;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = len };

	return fcntl(fd, cmd, &fl);
}

static void test_nonblocking_and_conversion(void)
{
	int a = open_rw(0, "nb"), b = open_rw(1, "nb"), c = open_rw(2, "nb");

	CHECK(flock(a, LOCK_EX | LOCK_NB) == 0, "flock EX");
	errno = 0;
	CHECK(flock(b, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK,
	    "LOCK_NB against another mount's lock");
	CHECK(flock(c, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK,
	    "LOCK_SH|LOCK_NB against an exclusive lock");
	/* Downgrade: the others may share. */
	CHECK(flock(a, LOCK_SH) == 0, "downgrade");
	CHECK(flock(b, LOCK_SH | LOCK_NB) == 0, "shared after downgrade");
	CHECK(flock(c, LOCK_SH | LOCK_NB) == 0, "shared after downgrade");
	/* An upgrade that cannot be granted fails (and, as on Linux, drops
	 * the shared lock it converted). */
	errno = 0;
	CHECK(flock(a, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK,
	    "upgrade while others share");
	CHECK(flock(c, LOCK_UN) == 0, "unlock");
	CHECK(flock(b, LOCK_EX | LOCK_NB) == 0, "upgrade, alone");
	errno = 0;
	CHECK(flock(a, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK,
	    "upgraded excludes");
	CHECK(flock(b, LOCK_UN) == 0, "unlock");
	CHECK(flock(a, LOCK_SH | LOCK_NB) == 0, "free again");
	CHECK(flock(a, LOCK_UN) == 0, "unlock");

	/* POSIX: F_SETLK contention is EAGAIN (or EACCES). */
	CHECK(setlk(a, F_SETLK, F_WRLCK, 10, 10) == 0, "F_WRLCK [10,19]");
	errno = 0;
	CHECK(setlk(b, F_SETLK, F_RDLCK, 0, 100) != 0 &&
	        (errno == EAGAIN || errno == EACCES),
	    "F_SETLK against another mount's lock");
	CHECK(setlk(b, F_SETLK, F_WRLCK, 20, 5) == 0, "disjoint range");
	{
		struct flock fl = { .l_type = F_RDLCK,
			.l_whence = SEEK_SET,
			.l_start = 0,
			.l_len = 100 };

		CHECK(fcntl(c, F_GETLK, &fl) == 0, "F_GETLK");
		CHECK(fl.l_type == F_WRLCK && fl.l_start == 10 &&
		        fl.l_len == 10 && fl.l_pid == getpid(),
		    "F_GETLK: type %d start %jd len %jd pid %d", fl.l_type,
		    (intmax_t)fl.l_start, (intmax_t)fl.l_len, (int)fl.l_pid);
		fl = (struct flock){ .l_type = F_WRLCK,
			.l_whence = SEEK_SET,
			.l_start = 30,
			.l_len = 0 };
		CHECK(fcntl(c, F_GETLK, &fl) == 0 && fl.l_type == F_UNLCK,
		    "F_GETLK of a free range");
	}
	/* Closing any descriptor of the owner drops its POSIX locks. */
	{
		int a2 = open_rw(0, "nb");

		CHECK(close(a2) == 0, "close");
		CHECK(setlk(c, F_SETLK, F_WRLCK, 10, 10) == 0,
		    "the range is free after the owner closed a descriptor");
		CHECK(setlk(c, F_SETLK, F_UNLCK, 0, 0) == 0, "unlock");
	}
	close(a);
	close(b);
	close(c);
}

/* A flock on a mount and `raftkv lock` on its path (the clerk calls the
 * CLI makes) are one lock. */
static void test_cli_namespace(void)
{
	struct clerk_lock_req rq = { .key = "/ns",
		.keylen = 3,
		.kind = KV_LK_FLOCK,
		.mode = KV_LK_EXCL,
		.owner = 42,
		.pid = 4242 };
	struct clerk_options o;
	struct kv_lock who;
	struct clerk *ck;
	int a = open_rw(0, "ns"), b = open_rw(1, "ns");

	clerk_options_defaults(&o);
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	CHECK(flock(a, LOCK_EX) == 0, "flock");
	CHECK(clerk_lock(ck, &rq, false, NULL, &who) == KV_ELOCKED &&
	        who.pid == (uint32_t)getpid(),
	    "raftkv lock while a mount holds the flock (pid %u)", who.pid);
	CHECK(flock(a, LOCK_UN) == 0, "unlock");
	CHECK(clerk_lock(ck, &rq, false, NULL, NULL) == KV_OK, "raftkv lock");
	errno = 0;
	CHECK(flock(b, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK,
	    "flock while raftkv lock holds it");
	CHECK(clerk_unlock(ck, &rq) == KV_OK, "raftkv unlock");
	CHECK(flock(b, LOCK_EX | LOCK_NB) == 0, "flock after raftkv unlock");
	CHECK(flock(b, LOCK_UN) == 0, "unlock");
	clerk_free(ck);
	close(a);
	close(b);
}

/* ------------------------------------------------------------------ */
/* Interrupted waits */

static void on_alarm(int sig)
{
	(void)sig;
}

struct intr_arg {
	int mount;
	bool use_flock;
};

static int intr_kid(void *p)
{
	struct intr_arg *a = p;
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	int fd = open_rw(a->mount, "intr"), rv;

	sigaction(SIGALRM, &sa, NULL);
	alarm(1);
	errno = 0;
	rv = a->use_flock ? flock(fd, LOCK_EX)
	                  : setlk(fd, F_SETLKW, F_WRLCK, 0, 0);
	if (rv == 0)
		return 10; /* granted while another holds it */
	if (errno != EINTR)
		return 11;
	/* Nothing leaked: this owner holds nothing, so the holder's
	 * state is unchanged; pause so the parent can look. */
	return 0;
}

static void test_interrupt(void)
{
	for (int k = 0; k < 2; k++) {
		struct intr_arg a = { .mount = 1, .use_flock = k == 0 };
		int h = open_rw(0, "intr"), o = open_rw(2, "intr"), st;
		pid_t p;

		if (a.use_flock)
			CHECK(flock(h, LOCK_EX) == 0, "holder");
		else
			CHECK(setlk(h, F_SETLK, F_WRLCK, 0, 0) == 0, "holder");
		p = spawn(intr_kid, &a);
		st = reap_kid(p, 30000);
		CHECK(st == 0, "%s wait: child status %d",
		    a.use_flock ? "flock" : "F_SETLKW", st);
		/* The interrupted waiter left nothing behind: once the holder
		 * lets go, a third mount gets it without waiting. */
		if (a.use_flock) {
			CHECK(flock(h, LOCK_UN) == 0, "unlock");
			CHECK(flock(o, LOCK_EX | LOCK_NB) == 0,
			    "flock free after an interrupted wait");
			CHECK(flock(o, LOCK_UN) == 0, "unlock");
		} else {
			CHECK(setlk(h, F_SETLK, F_UNLCK, 0, 0) == 0, "unlock");
			CHECK(setlk(o, F_SETLK, F_WRLCK, 0, 0) == 0,
			    "F_SETLK free after an interrupted wait");
			CHECK(setlk(o, F_SETLK, F_UNLCK, 0, 0) == 0, "unlock");
		}
		close(h);
		close(o);
	}
}

static void kill_holder(pid_t p);

/* The owner of the race test: holds [0,10) shared on "race", then waits
 * for [0,100) exclusive; reports 'R' when it holds [0,10), then the wait's
 * outcome ('G' granted, 'I' EINTR, 'E' else), and holds on until killed. */
struct race_arg {
	int mount;
	int wfd;
};

static int race_kid(void *p)
{
	struct race_arg *a = p;
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	int fd = open_rw(a->mount, "race");
	char c;

	sigaction(SIGUSR1, &sa, NULL);
	if (setlk(fd, F_SETLK, F_RDLCK, 0, 10) != 0)
		return 3;
	if (write(a->wfd, "R", 1) != 1)
		return 4;
	errno = 0;
	if (setlk(fd, F_SETLKW, F_WRLCK, 0, 100) == 0)
		c = 'G';
	else
		c = errno == EINTR ? 'I' : 'E';
	if (write(a->wfd, &c, 1) != 1)
		return 5;
	for (;;)
		pause();
}

/* One byte from @rfd within @ms, or 0. */
static char read_byte(int rfd, int ms)
{
	int fl = fcntl(rfd, F_GETFL);

	fcntl(rfd, F_SETFL, fl | O_NONBLOCK);
	for (int t = 0; t <= ms; t += 10) {
		char c;
		ssize_t n = read(rfd, &c, 1);

		if (n == 1)
			return c;
		CHECK(n < 0 && errno == EAGAIN, "the race child ended");
		sleep_ms(10);
	}
	return 0;
}

/* F_GETLK of [@start, @start + @len) for @type from @fd: the answer. */
static struct flock getlk(int fd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = len };

	CHECK(fcntl(fd, F_GETLK, &fl) == 0, "F_GETLK");
	return fl;
}

/*
 * An interrupted F_SETLKW whose grant won the race must not drop what
 * the owner held before: the owner (mount w) holds [0,10) shared and
 * waits for [0,100) exclusive behind a shared lock of mount h on
 * [50,60).  Mount w is cut off, h unlocks (the majority grants the
 * wait, w cannot see it), the owner is signalled, w is healed: the
 * cancel comes after the grant.  Whatever the call answers, the owner
 * holds at least what it held before, in the mode the answer implies,
 * as another mount sees with F_GETLK.
 */
static void test_interrupt_race(void)
{
	int l = leader_index(), w = (l + 1) % N, h = (l + 2) % N;
	int hfd = open_rw(h, "race"), cfd = open_rw(l, "race"), pfd[2];
	struct race_arg a;
	struct flock fl;
	pid_t kid;
	char c;

	CHECK(setlk(hfd, F_SETLK, F_RDLCK, 50, 10) == 0, "holder [50,60)");
	CHECK(pipe(pfd) == 0, "pipe");
	a = (struct race_arg){ w, pfd[1] };
	kid = spawn(race_kid, &a);
	close(pfd[1]);
	CHECK(read_byte(pfd[0], 20000) == 'R', "the owner holds [0,10)");
	CHECK(read_byte(pfd[0], 500) == 0, "granted while held");
	isolate(w, true);
	CHECK(setlk(hfd, F_SETLK, F_UNLCK, 0, 0) == 0, "unlock [50,60)");
	sleep_ms(200);
	CHECK(kill(kid, SIGUSR1) == 0, "signal");
	sleep_ms(1000);
	isolate(w, false);
	c = read_byte(pfd[0], 60000);
	CHECK(c == 'G' || c == 'I', "the interrupted wait answered '%c'",
	    c ? c : '-');
	fl = getlk(cfd, F_RDLCK, 0, 10);
	if (c == 'G') {
		CHECK(fl.l_type == F_WRLCK && fl.l_pid == kid,
		    "granted: [0,10) must be held exclusively by %d "
		    "(type %d pid %d)",
		    (int)kid, fl.l_type, (int)fl.l_pid);
		fl = getlk(cfd, F_RDLCK, 10, 90);
		CHECK(fl.l_type == F_WRLCK && fl.l_pid == kid,
		    "granted: [10,100) must be held exclusively");
	} else {
		fl = getlk(cfd, F_WRLCK, 0, 10);
		CHECK(fl.l_type == F_RDLCK && fl.l_pid == kid,
		    "EINTR: [0,10) must still be held shared by %d (type %d "
		    "pid %d)",
		    (int)kid, fl.l_type, (int)fl.l_pid);
		fl = getlk(cfd, F_WRLCK, 10, 90);
		CHECK(fl.l_type == F_UNLCK, "EINTR: [10,100) must be free");
	}
	printf("ok   interrupted wait whose grant raced: answered %s\n",
	    c == 'G' ? "success (granted)" : "EINTR");
	kill_holder(kid);
	close(pfd[0]);
	close(hfd);
	close(cfd);
}

/* ------------------------------------------------------------------ */
/* Tokens */

static uint64_t token_of(int fd)
{
	char buf[64];
	ssize_t n = fgetxattr(fd, "user.raftkv.token", buf, sizeof(buf) - 1);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

static void test_tokens(void)
{
	uint64_t last = 0;
	int fds[N];

	for (int i = 0; i < N; i++)
		fds[i] = open_rw(i, "tok");
	for (int k = 0; k < 12; k++) {
		int i = k % N;
		uint64_t t;

		if (k % 2)
			CHECK(flock(fds[i], LOCK_EX) == 0, "flock");
		else
			CHECK(setlk(fds[i], F_SETLKW, F_WRLCK, 0, 0) == 0,
			    "fcntl");
		t = token_of(fds[i]);
		CHECK(t > last,
		    "grant %d on mount %d: token %" PRIu64 " after %" PRIu64, k,
		    i + 1, t, last);
		last = t;
		if (k % 2)
			CHECK(flock(fds[i], LOCK_UN) == 0, "unlock");
		else
			CHECK(setlk(fds[i], F_SETLK, F_UNLCK, 0, 0) == 0,
			    "unlock");
		errno = 0;
		CHECK(token_of(fds[i]) == 0, "a token after the unlock");
	}
	for (int i = 0; i < N; i++)
		close(fds[i]);
}

/* user.raftkv.fence behaves like a stored xattr: it reads back exactly as
 * set, XATTR_CREATE and XATTR_REPLACE are honoured, "/" is the root. */
static void test_fence_xattr(void)
{
	const char *name = "user.raftkv.fence";
	int fd = open_rw(0, "fx");
	char buf[128];
	ssize_t n;

	errno = 0;
	CHECK(fsetxattr(fd, name, "7", 1, XATTR_REPLACE) != 0 &&
	        errno == ENODATA,
	    "XATTR_REPLACE of a missing fence");
	CHECK(fsetxattr(fd, name, "7\n", 2, XATTR_CREATE) == 0, "create");
	n = fgetxattr(fd, name, buf, sizeof(buf));
	CHECK(n == 2 && memcmp(buf, "7\n", 2) == 0,
	    "the fence reads back as set: %.*s", (int)(n > 0 ? n : 0), buf);
	errno = 0;
	CHECK(fsetxattr(fd, name, "8", 1, XATTR_CREATE) != 0 && errno == EEXIST,
	    "XATTR_CREATE of an existing fence");
	CHECK(fsetxattr(fd, name, "9 /fx", 5, XATTR_REPLACE) == 0, "replace");
	n = fgetxattr(fd, name, buf, sizeof(buf));
	CHECK(n == 5 && memcmp(buf, "9 /fx", 5) == 0,
	    "the fence reads back as set: %.*s", (int)(n > 0 ? n : 0), buf);
	CHECK(fsetxattr(fd, name, "10 /", 4, 0) == 0,
	    "a fence on the lock of the mount's root \"/\"");
	n = fgetxattr(fd, name, buf, sizeof(buf));
	CHECK(n == 4 && memcmp(buf, "10 /", 4) == 0,
	    "the fence reads back as set: %.*s", (int)(n > 0 ? n : 0), buf);
	CHECK(fremovexattr(fd, name) == 0, "remove");
	errno = 0;
	CHECK(fgetxattr(fd, name, buf, sizeof(buf)) < 0 && errno == ENODATA,
	    "removed");
	errno = 0;
	CHECK(fremovexattr(fd, name) != 0 && errno == ENODATA,
	    "remove a missing fence");
	close(fd);
}

/* ------------------------------------------------------------------ */
/* Holder death */

struct hold_arg {
	int mount;
	const char *rel;
	int fds_to_report; /* pipe: "locked" once held */
	bool busy; /* the lock is held elsewhere: LOCK_NB must fail first */
};

static int hold_kid(void *p)
{
	struct hold_arg *a = p;
	int fd = open_rw(a->mount, a->rel);

	/* Held by another mount: a non-blocking try must be refused (an
	 * exit here closes the pipe, which granted() reports). */
	if (a->busy && flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 5;
	if (a->busy && errno != EWOULDBLOCK)
		return 6;
	if (flock(fd, LOCK_EX) != 0)
		return 3;
	if (write(a->fds_to_report, "L", 1) != 1)
		return 4;
	for (;;)
		pause();
}

/* A child on @mount blocks in flock(@rel) and writes "L" to the pipe
 * once granted, then holds it until killed.  With @busy the lock is held
 * elsewhere: the child first checks that LOCK_NB is refused. */
static pid_t holder(int mount, const char *rel, bool busy, int *rfd)
{
	static struct hold_arg args[16];
	static int next;
	int pfd[2];
	pid_t p;

	CHECK(pipe(pfd) == 0, "pipe");
	args[next] = (struct hold_arg){ mount, rel, pfd[1], busy };
	p = spawn(hold_kid, &args[next]);
	next = (next + 1) % 16;
	close(pfd[1]);
	*rfd = pfd[0];
	return p;
}

/* Has the holder behind @rfd reported its grant within @ms? */
static bool granted(int rfd, int ms)
{
	for (int t = 0; t <= ms; t += 10) {
		char c;
		int fl = fcntl(rfd, F_GETFL);

		ssize_t n;

		fcntl(rfd, F_SETFL, fl | O_NONBLOCK);
		n = read(rfd, &c, 1);
		if (n == 1)
			return true;
		CHECK(n < 0,
		    "the waiting child ended without the lock "
		    "(its flock failed)");
		sleep_ms(10);
	}
	return false;
}

/* Needs a status that is not "exited": reap a killed child here. */
static void kill_holder(pid_t p)
{
	int st;

	kill(p, SIGKILL);
	if (!reap(p, &st, 30000)) {
		fprintf(stderr,
		    "child %d has not ended 30 s after SIGKILL; "
		    "its stack and the mounts' follow\n",
		    (int)p);
		fsh_dump_stack(p);
		fsh_dump_mounts();
		CHECK(false,
		    "a killed lock holder is stuck closing its files "
		    "(a mount never answered its flush or release)");
	}
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] == p)
			kids[i] = 0;
}

static void test_kill_holder_process(void)
{
	int r1, r2;
	pid_t h = holder(0, "dead", false, &r1), w;

	CHECK(granted(r1, 20000), "first holder");
	w = holder(1, "dead", true, &r2);
	CHECK(!granted(r2, 300), "granted while held");
	kill_holder(h);
	/* Mount 1 is alive and keeps its lease: only the release of the
	 * killed process' open file can free the lock. */
	CHECK(granted(r2, LEASE_MS * 10),
	    "waiter after kill -9 of the "
	    "holding process");
	kill_holder(w);
	close(r1);
	close(r2);
}

/* 10,000 POSIX locks of one process, gone when it exits. */
static int many_kid(void *p)
{
	int n = *(int *)p, fd = open_rw(0, "many");

	for (int i = 0; i < n; i++)
		if (setlk(fd, F_SETLK, F_WRLCK, 2 * (off_t)i, 1) != 0)
			return 3;
	return 0; /* exit: the kernel closes, the mount unlocks */
}

static void test_many_locks(void)
{
	static int n = 10000;
	int fd = open_rw(1, "many");

	CHECK(reap_kid(spawn(many_kid, &n), 600000) == 0, "%d locks", n);
	CHECK(setlk(fd, F_SETLKW, F_WRLCK, 0, 0) == 0,
	    "the whole file after the holder of %d locks exited", n);
	CHECK(setlk(fd, F_SETLK, F_UNLCK, 0, 0) == 0, "unlock");
	close(fd);
}

/* ------------------------------------------------------------------ */
/* Mount death and fencing */

enum death { D_STOP, D_PARTITION, D_KILL };

/*
 * Mount @v holds the lock on "fl-lock" (through this process) and fences
 * "fl-data" on it (if @fence); a child on mount @a waits.  @how takes
 * mount @v away; the waiter is granted after the lease and writes
 * "theirs"; mount @v comes back and this process, the old holder, writes
 * "mine": refused with a fence, through (a lost update) without.
 */
static void mount_death(enum death how, bool fence)
{
	int v = leader_index(), a = (v + 1) % N, r, lfd, dfd, st;
	char p[PATH_MAX], val[64];
	uint64_t token;
	pid_t w;
	ssize_t n;

	if (how == D_KILL)
		v = a, a = (v + 1) % N; /* keep the leader: faster */
	lfd = open_rw(v, "fl-lock");
	dfd = open_rw(v, "fl-data");
	CHECK(ftruncate(dfd, 0) == 0 && pwrite(dfd, "before", 6, 0) == 6 &&
	        fsync(dfd) == 0,
	    "data");
	CHECK(flock(lfd, LOCK_EX) == 0, "holder");
	token = token_of(lfd);
	CHECK(token > 0, "token");
	if (fence) {
		snprintf(val, sizeof(val), "%" PRIu64 " /fl-lock", token);
		CHECK(fsetxattr(dfd, "user.raftkv.fence", val, strlen(val),
		          0) == 0,
		    "set the fence");
		n = fgetxattr(dfd, "user.raftkv.fence", val, sizeof(val) - 1);
		CHECK(n > 0, "read the fence back");
	}
	w = holder(a, "fl-lock", true, &r);
	CHECK(!granted(r, 300), "granted while held");
	switch (how) {
	case D_STOP:
		CHECK(kill(pids[v], SIGSTOP) == 0, "SIGSTOP");
		break;
	case D_PARTITION:
		isolate(v, true);
		break;
	case D_KILL:
		CHECK(kill(pids[v], SIGKILL) == 0, "kill -9");
		CHECK(waitpid(pids[v], &st, 0) == pids[v], "wait");
		pids[v] = 0;
		break;
	}
	CHECK(granted(r, LEASE_MS * 20),
	    "waiter after the holder's mount "
	    "went");
	/* The new holder writes. */
	pathf(p, a, "fl-data");
	put_file(p, "theirs", O_TRUNC);
	switch (how) {
	case D_STOP:
		CHECK(kill(pids[v], SIGCONT) == 0, "SIGCONT");
		break;
	case D_PARTITION:
		isolate(v, false);
		break;
	case D_KILL:
		close(lfd);
		close(dfd);
		unmount(v);
		start(v);
		kill_holder(w);
		close(r);
		return;
	}
	/* The old holder, back, writes as if it still held the lock. */
	errno = 0;
	if (pwrite(dfd, "mine!!", 6, 0) == 6 && fsync(dfd) == 0) {
		CHECK(!fence, "a fenced write of a lost lock went through");
		expect_file(a, "fl-data", "mine!!");
		printf("ok   %s, no fence: the old holder's write went "
		       "through (the lost update fencing prevents)\n",
		    how == D_STOP ? "SIGSTOP" : "partition");
	} else {
		CHECK(fence && errno == EPERM,
		    "the old holder's write failed with %s", strerror(errno));
		expect_file(a, "fl-data", "theirs");
	}
	/* Once the mount learnt the loss, its locked file fails. */
	{
		bool eio = false;
		char c;

		for (int t = 0; t < 200 && !eio; t++) {
			eio = pread(lfd, &c, 1, 0) < 0 && errno == EIO;
			if (!eio)
				sleep_ms(50);
		}
		CHECK(eio, "the lost lock's file still works");
	}
	close(lfd);
	close(dfd);
	kill_holder(w);
	close(r);
	/* A fresh open works again. */
	lfd = open_rw(v, "fl-lock");
	CHECK(flock(lfd, LOCK_EX) == 0 && flock(lfd, LOCK_UN) == 0,
	    "lock again after the loss");
	close(lfd);
}

/*
 * Bytes written under a lock that is lost before they commit never
 * commit, whichever path would commit them: mount v holds a flock on
 * "lostbuf" and writes (buffered), is stopped until its lease ran out, a
 * waiter elsewhere is granted and writes; once v learnt the loss, a
 * getattr (fstat) and the close of the old descriptor (EIO) must not
 * commit the old bytes over the new holder's.
 */
static void test_lost_buffer(void)
{
	int v = (leader_index() + 1) % N, a = (v + 1) % N, r, lfd;
	char p[PATH_MAX];
	struct stat st;
	bool eio = false;
	pid_t w;

	lfd = open_rw(v, "lostbuf");
	CHECK(ftruncate(lfd, 0) == 0 && pwrite(lfd, "before", 6, 0) == 6 &&
	        fsync(lfd) == 0,
	    "data");
	CHECK(flock(lfd, LOCK_EX) == 0, "holder");
	CHECK(pwrite(lfd, "mine!!", 6, 0) == 6, "buffered write");
	w = holder(a, "lostbuf", true, &r);
	CHECK(!granted(r, 300), "granted while held");
	CHECK(kill(pids[v], SIGSTOP) == 0, "SIGSTOP");
	CHECK(granted(r, LEASE_MS * 20),
	    "waiter after the holder's mount "
	    "stopped");
	pathf(p, a, "lostbuf");
	put_file(p, "theirs", O_TRUNC);
	CHECK(kill(pids[v], SIGCONT) == 0, "SIGCONT");
	for (int t = 0; t < 200 && !eio; t++) {
		char c;

		eio = pread(lfd, &c, 1, 0) < 0 && errno == EIO;
		if (!eio)
			sleep_ms(50);
	}
	CHECK(eio, "the lost lock's file still works");
	(void)fstat(lfd, &st); /* a getattr: flushes this mount's writes */
	expect_file(a, "lostbuf", "theirs");
	errno = 0;
	CHECK(close(lfd) != 0 && errno == EIO,
	    "close of a descriptor whose lock was lost before its bytes "
	    "committed");
	expect_file(a, "lostbuf", "theirs");
	expect_file(v, "lostbuf", "theirs");
	kill_holder(w);
	close(r);
}

/* How many times mount @i's log says @what. */
static int log_count(int i, const char *what)
{
	char path[PATH_MAX + 64], line[4096];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/mount%d.log", dir, i + 1);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

/* A wait on mount *@p for "snapwait" (held elsewhere): 0 when it fails
 * with EIO. */
static int eio_wait_kid(void *p)
{
	int fd = open_rw(*(int *)p, "snapwait");

	if (flock(fd, LOCK_EX) == 0)
		return 3;
	return errno == EIO ? 0 : 4;
}

/*
 * A lease that ran out inside a snapshot: mount v holds a flock and
 * waits for another, and is cut off; its lease runs out, a waiter
 * elsewhere is granted, and the majority writes enough to compact its
 * log past all that, so that v, healed, installs a snapshot (no LOST
 * event is replayed).  v must then notice that its lock is gone (its
 * locked file answers EIO) and that its wait is gone (EIO).
 */
static void test_lost_in_snapshot(void)
{
	static int vm;
	int v = (leader_index() + 1) % N, a = (v + 1) % N, r, lfd, hfd, st;
	int restored = log_count(v, "restored snapshot");
	char p[PATH_MAX], *bulk;
	bool eio = false;
	pid_t w, ew;

	lfd = open_rw(v, "snaplock");
	CHECK(flock(lfd, LOCK_EX) == 0, "holder");
	w = holder(a, "snaplock", true, &r);
	CHECK(!granted(r, 300), "granted while held");
	hfd = open_rw(a, "snapwait");
	CHECK(flock(hfd, LOCK_EX) == 0, "holder of snapwait");
	vm = v;
	ew = spawn(eio_wait_kid, &vm);
	CHECK(reap_kid(ew, 500) == -1, "a wait for a held lock ended");
	isolate(v, true);
	CHECK(granted(r, LEASE_MS * 20),
	    "waiter after the holder's mount "
	    "was cut off");
	/* Past a snapshot that compacts what v has not seen. */
	bulk = malloc(3 << 20);
	CHECK(bulk != NULL, "malloc");
	memset(bulk, 'z', 3 << 20);
	bulk[(3 << 20) - 1] = '\0';
	pathf(p, a, "snapbulk");
	put_file(p, bulk, O_TRUNC);
	CHECK(truncate(p, 0) == 0, "truncate");
	free(bulk);
	isolate(v, false);
	for (int t = 0;
	     t < 1200 && log_count(v, "restored snapshot") == restored; t++)
		sleep_ms(50);
	CHECK(log_count(v, "restored snapshot") > restored,
	    "mount %d installed no snapshot (see %s/mount%d.log)", v + 1, dir,
	    v + 1);
	for (int t = 0; t < 200 && !eio; t++) {
		char c;

		eio = pread(lfd, &c, 1, 0) < 0 && errno == EIO;
		if (!eio)
			sleep_ms(50);
	}
	CHECK(eio,
	    "a lock lost inside a restored snapshot: its file still "
	    "works");
	errno = 0;
	CHECK(token_of(lfd) == 0, "a token of a lost lock");
	st = reap_kid(ew, 20000);
	CHECK(st == 0, "a wait lost inside a restored snapshot: %s",
	    st < 0 ? "still waiting" : "not EIO");
	close(hfd);
	close(lfd);
	kill_holder(w);
	close(r);
	/* A fresh open works again. */
	lfd = open_rw(v, "snaplock");
	CHECK(flock(lfd, LOCK_EX) == 0 && flock(lfd, LOCK_UN) == 0,
	    "lock again after the loss");
	close(lfd);
}

/*
 * ftruncate() is a write: mount v holds "ft-lock" and fences "ft-data"
 * on it; v is stopped past its lease, a waiter elsewhere is granted and
 * writes "theirs".  Back, the old holder's ftruncate of the fenced file
 * is refused (EPERM) and the new data survives; its ftruncate of the
 * locked (lost) file fails with EIO once the mount learnt the loss.
 */
static void test_ftruncate_fenced(void)
{
	int v = leader_index(), a = (v + 1) % N, r, lfd, dfd;
	char p[PATH_MAX], val[64];
	bool eio = false;
	uint64_t token;
	pid_t w;

	lfd = open_rw(v, "ft-lock");
	dfd = open_rw(v, "ft-data");
	CHECK(ftruncate(dfd, 0) == 0 && pwrite(dfd, "before", 6, 0) == 6 &&
	        fsync(dfd) == 0,
	    "data");
	CHECK(flock(lfd, LOCK_EX) == 0, "holder");
	token = token_of(lfd);
	CHECK(token > 0, "token");
	snprintf(val, sizeof(val), "%" PRIu64 " /ft-lock", token);
	CHECK(fsetxattr(dfd, "user.raftkv.fence", val, strlen(val), 0) == 0,
	    "set the fence");
	w = holder(a, "ft-lock", true, &r);
	CHECK(!granted(r, 300), "granted while held");
	CHECK(kill(pids[v], SIGSTOP) == 0, "SIGSTOP");
	CHECK(granted(r, LEASE_MS * 20),
	    "waiter after the holder's mount "
	    "stopped");
	pathf(p, a, "ft-data");
	put_file(p, "theirs", O_TRUNC);
	CHECK(kill(pids[v], SIGCONT) == 0, "SIGCONT");
	errno = 0;
	CHECK(ftruncate(dfd, 0) < 0 && errno == EPERM,
	    "the old holder's fenced ftruncate: %s",
	    errno ? strerror(errno) : "went through");
	expect_file(a, "ft-data", "theirs");
	for (int t = 0; t < 200 && !eio; t++) {
		eio = ftruncate(lfd, 1) < 0 && errno == EIO;
		if (!eio)
			sleep_ms(50);
	}
	CHECK(eio, "ftruncate of the lost lock's file still works");
	close(lfd);
	close(dfd);
	kill_holder(w);
	close(r);
}

/* F_OFD_SETLK/F_OFD_GETLK of @type over the whole of @fd's file. */
static int ofd_lock(int fd, int cmd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	return fcntl(fd, cmd, &fl);
}

/*
 * OFD locks (F_OFD_SETLK) reach the mount and exclude across mounts; the
 * kernel does not unlock them at close through FUSE, so the mount does
 * when the open file is released: a lock taken on one mount goes at its
 * close (well before any lease: that mount is alive and would renew it),
 * and another mount gets it.
 */
static void test_ofd(void)
{
	int a = open_rw(0, "ofd"), b = open_rw(1, "ofd");
	bool got = false;

	CHECK(ofd_lock(a, F_OFD_SETLK, F_WRLCK) == 0, "OFD lock on mount 1");
	errno = 0;
	CHECK(ofd_lock(b, F_OFD_SETLK, F_WRLCK) < 0 &&
	        (errno == EAGAIN || errno == EACCES),
	    "OFD lock on mount 2 while held on mount 1: %s",
	    errno ? strerror(errno) : "granted");
	close(a);
	for (int t = 0; t < LEASE_MS * 5 / 50 && !got; t++) {
		got = ofd_lock(b, F_OFD_SETLK, F_WRLCK) == 0;
		if (!got)
			sleep_ms(50);
	}
	CHECK(got, "an OFD lock closed on mount 1 is still held there");
	close(b);
}

/* Wait until member @i says it does not lead (a leader cut off from the
 * majority steps down). */
static void wait_not_leader(int i)
{
	struct clerk_options o;
	struct clerk *ck;
	bool leads = true;

	clerk_options_defaults(&o);
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	for (int t = 0; t < 200 && leads; t++) {
		struct cproto_status st;

		leads = clerk_member_status(ck, (uint32_t)i, &st) != 0 ||
		    st.leader == (uint64_t)i + 1;
		if (leads)
			sleep_ms(50);
	}
	clerk_free(ck);
	CHECK(!leads, "member %d still leads", i + 1);
}

/*
 * A failed unlock at close is retried: mount h holds an OFD lock and
 * closes the file while the two other mounts are killed (no majority,
 * and h no longer leads: its UNLOCK_OWNER at release times out and is
 * lost with them, in no log; nothing commits meanwhile, so no lease runs
 * out, kv.h election grace).  Once they are back, the retry goes through and
 * another mount gets the lock.  Before, the failure was only logged:
 * mount h kept the lock recorded as held and renewed its lease for as
 * long as it lived, so the other mount never got it.
 */
static void test_ofd_retry(void)
{
	const char *failed = "releasing the locks of a closed file";
	int h = 0, o = 1, a, b, before, st;
	bool got = false, fails = false;

	a = open_rw(h, "ofd-retry");
	before = log_count(h, failed);
	CHECK(ofd_lock(a, F_OFD_SETLK, F_WRLCK) == 0, "OFD lock");
	for (int i = 0; i < N; i++) {
		if (i == h)
			continue;
		CHECK(kill(pids[i], SIGKILL) == 0, "kill mount %d", i + 1);
		CHECK(waitpid(pids[i], &st, 0) == pids[i], "wait");
		pids[i] = 0;
	}
	wait_not_leader(h);
	close(a);
	for (int t = 0; t < OP_TIMEOUT_MS * 3 / 50 && !fails; t++) {
		fails = log_count(h, failed) > before;
		if (!fails)
			sleep_ms(50);
	}
	for (int i = 0; i < N; i++) {
		if (i == h)
			continue;
		unmount(i);
		start(i);
	}
	CHECK(fails,
	    "the release on mount %d did not fail without a "
	    "majority",
	    h + 1);
	b = open_rw(o, "ofd-retry");
	for (int t = 0; t < LEASE_MS * 5 / 50 && !got; t++) {
		got = ofd_lock(b, F_OFD_SETLK, F_WRLCK) == 0;
		if (!got)
			sleep_ms(50);
	}
	CHECK(got,
	    "an OFD lock whose release failed on mount %d is still held "
	    "there after the cluster came back",
	    h + 1);
	close(b);
}

/* ------------------------------------------------------------------ */
/* A failed unlock at release, retried */

/* Wait until mount @i's log says @what more than @before times; false
 * if it has not within @ms. */
static bool log_grows(int i, const char *what, int before, int ms)
{
	for (int t = 0; t <= ms; t += 20) {
		if (log_count(i, what) > before)
			return true;
		sleep_ms(20);
	}
	return false;
}

/* The injected failure of UNLOCK_OWNER on the mount (fs/rklock.h). */
#define UO_FAULT "fault injection: an UNLOCK_OWNER"

struct reown_arg {
	int mount;
	const char *rel;
	int wfd, rfd; /* to the parent, from it */
};

/*
 * The owner whose release fails (a process: its POSIX lock owner is its
 * descriptor table, alive across its files): locks @rel through one open
 * file and closes it (its flush's UNLOCK_OWNER fails, so the close
 * answers EIO and the release of the open file unlocks again), says "C".
 * Then, at each go from the parent, locks the file again through a new
 * open file and says "L", or "I" when refused with EIO, "E" with another
 * error; it holds what it got until killed.
 */
static int reown_kid(void *p)
{
	struct reown_arg *a = p;
	int fd = open_rw(a->mount, a->rel);
	char c;

	if (setlk(fd, F_SETLK, F_WRLCK, 0, 0) != 0)
		return 2;
	close(fd); /* EIO: the flush's unlock failed */
	if (write(a->wfd, "C", 1) != 1)
		return 3;
	while (read(a->rfd, &c, 1) == 1) {
		fd = open_rw(a->mount, a->rel);
		c = setlk(fd, F_SETLK, F_WRLCK, 0, 0) == 0 ? 'L'
		    : errno == EIO                         ? 'I'
		                                           : 'E';
		if (write(a->wfd, &c, 1) != 1)
			return 4;
	}
	for (;;)
		pause();
}

/* A child on @mount running reown_kid() on @rel; *@to, *@from: its
 * pipes. */
static pid_t reowner(int mount, const char *rel, int *to, int *from)
{
	static struct reown_arg args[4];
	static int next;
	int to_kid[2], from_kid[2];
	pid_t p;

	CHECK(pipe(to_kid) == 0 && pipe(from_kid) == 0, "pipe");
	args[next] = (struct reown_arg){ mount, rel, from_kid[1], to_kid[0] };
	p = spawn(reown_kid, &args[next]);
	next = (next + 1) % 4;
	close(from_kid[1]);
	close(to_kid[0]);
	*to = to_kid[1];
	*from = from_kid[0];
	return p;
}

/* Ask the reowner behind @to/@from to lock again: its answer. */
static char relock(int to, int from)
{
	CHECK(write(to, "g", 1) == 1, "go");
	return read_byte(from, OP_TIMEOUT_MS * 5);
}

/* Mount @o is refused @rel (held elsewhere), @n times 100 ms apart. */
static void refused(int o, const char *rel, int n, const char *what)
{
	int fd = open_rw(o, rel), r;

	for (int t = 0; t < n; t++) {
		if (t > 0)
			sleep_ms(100);
		errno = 0;
		r = setlk(fd, F_SETLK, F_WRLCK, 0, 0);
		CHECK(r < 0 && (errno == EAGAIN || errno == EACCES),
		    "mount %d got %s: %s", o + 1, rel, what);
	}
	close(fd);
}

/* Mount @o gets @rel within 5 leases; then lets it go. */
static void gets(int o, const char *rel, const char *what)
{
	int fd = open_rw(o, rel);
	bool got = false;

	for (int t = 0; t < LEASE_MS * 5 / 50 && !got; t++) {
		got = setlk(fd, F_SETLK, F_WRLCK, 0, 0) == 0;
		if (!got)
			sleep_ms(50);
	}
	CHECK(got, "mount %d did not get %s within %d ms: %s", o + 1, rel,
	    LEASE_MS * 5, what);
	close(fd);
}

/*
 * A failed unlock at release is retried, and never drops a newer lock.
 * Mount h is restarted with fault_unlock_owner: the first attempts of
 * its next UNLOCK_OWNERs fail (not sent) after 1.5 s each, then after
 * 0 and 9 s.
 * (a) h holds an OFD lock and closes the file: the release's unlock fails
 *     (fault 1); the mount lives on and would renew the lock for ever,
 *     yet another mount must get it: the retry goes through.  Before
 *     the retry (d08286a) it was never released.
 * (b) the ABA case: a process on h locks through one open file and
 *     closes it (its flush fails: fault 2; the release of the open file
 *     unlocks again: fault 3, in flight); meanwhile it locks the file
 *     again through a new open file, which succeeds.  That lock must stay
 *     held on the cluster: another mount is refused it, past the retry.
 *     With fb4712b's retry the new LOCK went out during the failing
 *     attempt (the pair was owed only after it), was granted, and the
 *     retry ~100 ms later removed it: the other mount got it.
 * (c) the same with a release still failing after the mount's timeout
 *     (fault 5, 9 s): the new lock fails with EIO then, rather than
 *     wait; once the retry went through, it is granted.
 */
static void test_unlock_retry(void)
{
	const char *retried = "done after 1 failed tries";
	int h = (leader_index() + 1) % N, o = (h + 1) % N, a, b, st;
	int faults, done, to, from, to2, from2;
	const char *opts = extra_opts[h];
	struct flock fl;
	bool got = false;
	pid_t kid, kid2;
	char c;

	st = stop(h);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "mount %d ended with status %#x", h + 1, st);
	extra_opts[h] = ",fault_unlock_owner=1500:1500:1500:0:9000";
	start(h);
	extra_opts[h] = opts; /* later restarts: no faults */
	faults = log_count(h, UO_FAULT);
	done = log_count(h, retried);

	/* (a) */
	a = open_rw(h, "unlock-retry");
	b = open_rw(o, "unlock-retry");
	CHECK(ofd_lock(a, F_OFD_SETLK, F_WRLCK) == 0, "OFD lock");
	close(a);
	CHECK(log_grows(h, UO_FAULT, faults, OP_TIMEOUT_MS),
	    "the release's UNLOCK_OWNER on mount %d did not fail", h + 1);
	for (int t = 0; t < LEASE_MS * 5 / 50 && !got; t++) {
		got = ofd_lock(b, F_OFD_SETLK, F_WRLCK) == 0;
		if (!got)
			sleep_ms(50);
	}
	CHECK(got,
	    "an OFD lock whose release failed is still held on mount %d "
	    "(alive) after %d ms",
	    h + 1, LEASE_MS * 5);
	CHECK(log_count(h, retried) > done, "no retry logged");
	close(b);

	/* (b) */
	kid = reowner(h, "reown", &to, &from);
	c = read_byte(from, OP_TIMEOUT_MS * 2);
	CHECK(c == 'C', "the owner did not lock and close ('%c')", c ? c : '-');
	CHECK(log_grows(h, UO_FAULT, faults + 2, OP_TIMEOUT_MS),
	    "the release's UNLOCK_OWNER on mount %d did not start", h + 1);
	c = relock(to, from);
	CHECK(c == 'L', "the owner's new lock failed ('%c')", c ? c : '-');
	/* Held on the cluster, past the retry (and any more retries). */
	refused(o, "reown", 30,
	    "the owner on the other mount was just granted it: the "
	    "retried release removed it");
	b = open_rw(o, "reown");
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET };
	CHECK(fcntl(b, F_GETLK, &fl) == 0 && fl.l_type == F_WRLCK &&
	        fl.l_pid == kid,
	    "F_GETLK on mount %d: type %d pid %d, want the owner %d", o + 1,
	    fl.l_type, (int)fl.l_pid, (int)kid);
	close(b);
	CHECK(log_count(h, retried) > done + 1, "no second retry logged");

	/* (c) (the owner of (b) holds on: its exit would take faults) */
	kid2 = reowner(h, "reown2", &to2, &from2);
	c = read_byte(from2, OP_TIMEOUT_MS * 2);
	CHECK(c == 'C', "the owner did not lock and close ('%c')", c ? c : '-');
	CHECK(log_grows(h, UO_FAULT, faults + 4, OP_TIMEOUT_MS),
	    "the release's UNLOCK_OWNER on mount %d did not start", h + 1);
	c = relock(to2, from2);
	CHECK(c == 'I',
	    "a new lock of an owner whose release is still owed after the "
	    "timeout: '%c', want EIO ('I')",
	    c ? c : '-');
	CHECK(log_grows(h, retried, done + 2, OP_TIMEOUT_MS * 3),
	    "the release on mount %d was not retried", h + 1);
	c = relock(to2, from2);
	CHECK(c == 'L', "the owner's lock after its release: '%c'",
	    c ? c : '-');
	refused(o, "reown2", 1, "held by the owner on the other mount");
	kill_holder(kid);
	kill_holder(kid2);
	gets(o, "reown", "the owner's lock outlived it");
	gets(o, "reown2", "the owner's lock outlived it");
	close(to);
	close(from);
	close(to2);
	close(from2);
}

/*
 * A mount's lock session idles past the session TTL (nothing held or
 * asked there; another mount's lock keeps the committed clock moving),
 * then a flock is taken there and held without touching the file.  The
 * mount renews its session while idle, and a session it finds evicted
 * is switched before anything is recorded in the new one: the lock must
 * stay held (a waiter elsewhere not granted while the holder lives).
 * Before, the grant was recorded under the old session, dropped as lost
 * at the next keepalive, and no longer renewed.
 */
static void test_idle_session(void)
{
	int r1, r2, r3;
	pid_t other = holder(2, "idle-busy", false, &r3), h, w;

	CHECK(granted(r3, 20000), "holder on mount 3");
	h = holder(0, "idle", false, &r1);
	CHECK(granted(r1, 20000), "warm-up holder");
	kill_holder(h);
	close(r1);
	sleep_ms(SESSION_TTL_MS * 3 / 2);
	h = holder(0, "idle", false, &r1);
	CHECK(granted(r1, 20000), "holder after the idle time");
	w = holder(1, "idle", true, &r2);
	CHECK(!granted(r2, LEASE_MS * 4),
	    "a waiter on mount 2 was granted while the holder on mount 1 "
	    "holds the lock (its session idled past the TTL)");
	kill_holder(h);
	close(r1);
	CHECK(granted(r2, LEASE_MS * 5), "waiter after the holder exited");
	kill_holder(w);
	close(r2);
	kill_holder(other);
	close(r3);
}

/* Run the scenario @name unless @only names another one. */
static bool want(const char *only, const char *name)
{
	return only == NULL || strcmp(only, name) == 0;
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	char extra[64];
	int rv;

	snprintf(extra, sizeof(extra), "lock_lease %d\nsession_ttl %d\n",
	    LEASE_MS, SESSION_TTL_MS);
	rv = fsh_setup("locks", extra);
	if (rv != 0)
		return rv;
	atexit(kill_kids); /* runs before the harness' cleanup */
	setvbuf(stdout, NULL, _IONBF, 0);

	/* First: no mount was kept away yet. */
	if (want(only, "idle")) {
		test_idle_session();
		printf("ok a lock session idle past the session TTL keeps "
		       "the next lock\n");
	}
	if (want(only, "nb")) {
		test_nonblocking_and_conversion();
		printf("ok LOCK_NB, upgrade/downgrade, F_GETLK across mounts, "
		       "close drops POSIX locks\n");
	}
	if (want(only, "cli")) {
		test_cli_namespace();
		printf("ok flock on a mount and raftkv lock are one lock\n");
	}
	if (want(only, "tokens")) {
		test_tokens();
		printf("ok tokens strictly increase over grants on every "
		       "mount\n");
	}
	if (want(only, "fencexattr")) {
		test_fence_xattr();
		printf("ok user.raftkv.fence reads back as set, honours "
		       "XATTR_CREATE and XATTR_REPLACE, \"/\" is the root\n");
	}
	if (want(only, "intr")) {
		test_interrupt();
		printf("ok a signal interrupts a blocking wait (EINTR), "
		       "nothing leaked\n");
	}
	if (want(only, "intrrace")) {
		test_interrupt_race();
		printf("ok an interrupted wait whose grant won the race keeps "
		       "what the owner held before\n");
	}
	if (want(only, "killproc")) {
		test_kill_holder_process();
		printf("ok kill -9 of a holding process: a waiter elsewhere "
		       "is granted\n");
	}
	if (want(only, "noclobber")) {
		test_noclobber();
		printf("ok noclobber lockfiles: one winner\n");
	}
	if (want(only, "counters")) {
		test_counters();
		printf("ok mutual exclusion counted: flock, fcntl, O_EXCL, "
		       "mkdir, raftkv lock\n");
	}
	if (want(only, "relaxed")) {
		test_relaxed_counters();
		printf("ok mutual exclusion counted on cache=relaxed mounts: "
		       "a grant makes the next read fresh\n");
	}
	if (want(only, "many")) {
		test_many_locks();
		printf("ok 10000 locks of one process released at its exit\n");
	}
	if (want(only, "stop")) {
		mount_death(D_STOP, true);
		mount_death(D_STOP, false);
		printf("ok SIGSTOP of the holder's mount: granted after the "
		       "lease, fenced write refused, unfenced one lost an "
		       "update\n");
	}
	if (want(only, "partition")) {
		mount_death(D_PARTITION, true);
		mount_death(D_PARTITION, false);
		printf("ok partition of the holder's mount: granted after the "
		       "lease, fenced write refused, unfenced one lost an "
		       "update\n");
	}
	if (want(only, "ofd")) {
		test_ofd();
		printf("ok OFD locks exclude across mounts and go at close\n");
	}
	if (want(only, "ofdretry")) {
		test_ofd_retry();
		printf("ok an OFD lock whose release failed (no majority) is "
		       "unlocked once the cluster is back\n");
	}
	if (want(only, "unlockretry")) {
		test_unlock_retry();
		printf("ok a failed unlock at release is retried until it "
		       "goes, and never drops the owner's newer lock\n");
	}
	if (want(only, "ftrunc")) {
		test_ftruncate_fenced();
		printf("ok ftruncate of a lost lock: fenced (EPERM), its "
		       "locked file EIO\n");
	}
	if (want(only, "lostbuf")) {
		test_lost_buffer();
		printf("ok bytes buffered under a lock lost before they "
		       "committed never commit (close: EIO)\n");
	}
	if (want(only, "snapshot")) {
		test_lost_in_snapshot();
		printf("ok a lease that ran out inside an installed snapshot: "
		       "the lock is lost, its file answers EIO\n");
	}
	if (want(only, "kill")) {
		mount_death(D_KILL, false);
		printf("ok kill -9 of the holder's mount: granted after the "
		       "lease\n");
	}
	/* Each mount stops cleanly after its unmount (exit 0: no sanitizer
	 * report, no leak, the lock threads ended). */
	kill_kids();
	fsh_stop_all_clean();
	return 0;
}
