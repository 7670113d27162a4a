/*
 * bench_locks.c - the cost of locks through raftkv mounts, against their
 * references in the same run (run by bench/bench_locks.sh, which starts
 * the cluster and its mounts):
 *
 *   uncontended flock lock+unlock pairs/s, each of C processes on its own
 *   file: in mount 1, on the local directory TMP (tmpfs or disk: the
 *   kernel's local locks), and LOCK/UNLOCK through the clerk API as
 *   `raftkv lock`/`raftkv unlock` do (one session per process);
 *   `raftkv put` (clerk_put) at the same concurrency: the commit rate the
 *   lock rate is compared with;
 *   contended hand-off latency, p50/p99: a holder on mount 1 unlocks, a
 *   waiter blocked in flock on mount 2 is granted (and back);
 *   the commit latency of one put, p50/p99, for comparison;
 *   lockfile create (O_CREAT|O_EXCL) + unlink pairs/s in mount 1.
 *
 *   bench_locks --conf FILE --m1 DIR --m2 DIR --tmp DIR [-c C] [-s SECONDS]
 *               [-r ROUNDS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "raft/client/cluster.h"
#include "raft/client/keys.h"

static const char *conf, *m1, *m2, *tmpdir;
static int conc = 4, seconds = 3, rounds = 200;
static struct cluster cl;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_locks: %s: %s\n", what, strerror(errno));
	exit(1);
}

enum work { W_FLOCK, W_CLERK_LOCK, W_PUT, W_LOCKFILE };

/* One process' loop for @seconds: the number of operations done. */
static uint64_t loop(enum work w, const char *dir, int k)
{
	uint64_t n = 0, end = now_ns() + (uint64_t)seconds * 1000000000ull;
	char path[PATH_MAX], key[64], lk[PATH_MAX];
	struct clerk *ck = NULL;
	int fd = -1;

	snprintf(path, sizeof(path), "%s/bl-%d", dir, k);
	snprintf(lk, sizeof(lk), "%s/bl-%d.lock", dir, k);
	snprintf(key, sizeof(key), "/bl-key-%d", k);
	if (w == W_FLOCK) {
		fd = open(path, O_RDWR | O_CREAT, 0644);
		if (fd < 0)
			die(path);
	}
	if (w == W_CLERK_LOCK || w == W_PUT) {
		struct clerk_options o;

		clerk_options_defaults(&o);
		if (clerk_new(&cl, &o, &ck) != 0)
			die("clerk");
		if (w == W_CLERK_LOCK &&
		    clerk_put(ck, key, strlen(key), "", 0, 0, KV_F_ANYVER, NULL,
		        NULL) != KV_OK)
			die("put the lock key");
	}
	while (now_ns() < end) {
		struct clerk_lock_req rq = { .key = key,
			.keylen = strlen(key),
			.kind = KV_LK_FLOCK,
			.mode = KV_LK_EXCL,
			.owner = (uint64_t)getpid(),
			.pid = (uint32_t)getpid() };
		int rv = 0;

		switch (w) {
		case W_FLOCK:
			if (flock(fd, LOCK_EX) != 0 || flock(fd, LOCK_UN) != 0)
				die("flock");
			break;
		case W_CLERK_LOCK:
			rv = clerk_lock(ck, &rq, false, NULL, NULL);
			if (rv == KV_OK)
				rv = clerk_unlock(ck, &rq);
			break;
		case W_PUT:
			rv = clerk_put(ck, key, strlen(key), "v", 1, 0,
			    KV_F_ANYVER, NULL, NULL);
			break;
		case W_LOCKFILE: {
			int lfd = open(lk, O_CREAT | O_EXCL | O_WRONLY, 0644);

			if (lfd < 0 || close(lfd) != 0 || unlink(lk) != 0)
				die("lockfile");
			break;
		}
		}
		if (rv != KV_OK) {
			fprintf(stderr, "bench_locks: %s\n",
			    clerk_strerror(rv));
			exit(1);
		}
		n++;
	}
	if (fd >= 0)
		close(fd);
	clerk_free(ck);
	return n;
}

/* @conc processes running loop(@w): operations per second in all. */
static double rate(enum work w, const char *dir)
{
	uint64_t *counts = mmap(NULL, sizeof(uint64_t) * (size_t)conc,
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t total = 0, t0 = now_ns(), t1;
	pid_t ps[256];

	if (counts == MAP_FAILED)
		die("mmap");
	for (int k = 0; k < conc; k++) {
		ps[k] = fork();
		if (ps[k] < 0)
			die("fork");
		if (ps[k] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			counts[k] = loop(w, dir, k);
			_exit(0);
		}
	}
	for (int k = 0; k < conc; k++) {
		int st;

		if (waitpid(ps[k], &st, 0) != ps[k] || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bench_locks: a worker failed\n");
			exit(1);
		}
		total += counts[k];
	}
	t1 = now_ns();
	munmap(counts, sizeof(uint64_t) * (size_t)conc);
	return (double)total / ((double)(t1 - t0) / 1e9);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void pct(uint64_t *v, int n, double *p50, double *p99)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	*p50 = (double)v[n / 2] / 1e6;
	*p99 = (double)v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e6;
}

/*
 * Hand-off: two processes, one per mount, pass the flock of one file back
 * and forth; the holder sleeps 20 ms (so the other is queued), notes the
 * time and unlocks; the other notes its grant.  Milliseconds, p50/p99.
 */
static void handoff(double *p50, double *p99)
{
	struct shared {
		uint64_t unlock_at;
		uint64_t lat[4096];
		int n;
	} *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t ps[2];

	if (sh == MAP_FAILED)
		die("mmap");
	memset(sh, 0, sizeof(*sh));
	{
		/* Created here, not by both at once (each opens it). */
		char path[PATH_MAX];
		int fd;

		snprintf(path, sizeof(path), "%s/bl-handoff", m1);
		fd = open(path, O_RDWR | O_CREAT, 0644);
		if (fd < 0)
			die(path);
		close(fd);
	}
	if (rounds > 4096)
		rounds = 4096;
	for (int k = 0; k < 2; k++) {
		ps[k] = fork();
		if (ps[k] < 0)
			die("fork");
		if (ps[k] == 0) {
			char path[PATH_MAX];
			int fd;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			snprintf(path, sizeof(path), "%s/bl-handoff",
			    k ? m2 : m1);
			fd = open(path, O_RDWR);
			if (fd < 0)
				die(path);
			if (k == 1)
				usleep(100000); /* 0 first */
			for (;;) {
				struct timespec d = { 0, 20000000 };
				uint64_t at;

				if (flock(fd, LOCK_EX) != 0)
					die("flock");
				at = now_ns();
				if (__atomic_load_n(&sh->unlock_at,
				        __ATOMIC_ACQUIRE) != 0) {
					int i = __atomic_fetch_add(&sh->n, 1,
					    __ATOMIC_ACQ_REL);

					if (i < rounds)
						sh->lat[i] = at - sh->unlock_at;
				}
				if (__atomic_load_n(&sh->n, __ATOMIC_ACQUIRE) >=
				    rounds)
					_exit(0);
				nanosleep(&d, NULL);
				__atomic_store_n(&sh->unlock_at, now_ns(),
				    __ATOMIC_RELEASE);
				if (flock(fd, LOCK_UN) != 0)
					die("unlock");
				usleep(1000); /* let the other one in */
			}
		}
	}
	for (;;) {
		if (__atomic_load_n(&sh->n, __ATOMIC_ACQUIRE) >= rounds)
			break;
		usleep(10000);
	}
	for (int k = 0; k < 2; k++) {
		kill(ps[k], SIGKILL);
		waitpid(ps[k], NULL, 0);
	}
	pct(sh->lat, rounds, p50, p99);
	munmap(sh, sizeof(*sh));
}

/* Commit latency of one put (one process), p50/p99 in ms. */
static void put_latency(double *p50, double *p99)
{
	static uint64_t lat[4096];
	struct clerk_options o;
	struct clerk *ck;
	int n = rounds > 4096 ? 4096 : rounds;

	clerk_options_defaults(&o);
	if (clerk_new(&cl, &o, &ck) != 0)
		die("clerk");
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		if (clerk_put(ck, "/bl-lat", 7, "v", 1, 0, KV_F_ANYVER, NULL,
		        NULL) != KV_OK)
			die("put");
		lat[i] = now_ns() - t0;
	}
	clerk_free(ck);
	pct(lat, n, p50, p99);
}

int main(int argc, char **argv)
{
	char err[512];
	double put, p50, p99, c50, c99;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			goto usage;
		if (strcmp(a, "--conf") == 0)
			conf = v;
		else if (strcmp(a, "--m1") == 0)
			m1 = v;
		else if (strcmp(a, "--m2") == 0)
			m2 = v;
		else if (strcmp(a, "--tmp") == 0)
			tmpdir = v;
		else if (strcmp(a, "-c") == 0)
			conc = atoi(v);
		else if (strcmp(a, "-s") == 0)
			seconds = atoi(v);
		else if (strcmp(a, "-r") == 0)
			rounds = atoi(v);
		else
			goto usage;
		i++;
	}
	if (!conf || !m1 || !m2 || !tmpdir || conc < 1 || conc > 256 ||
	    seconds < 1 || rounds < 2)
		goto usage;
	if (cluster_load(conf, &cl, err, sizeof(err)) != 0 ||
	    keys_load_credential(&cl, conf, NULL, false, err, sizeof(err)) !=
	        0) {
		fprintf(stderr, "bench_locks: %s\n", err);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0); /* nothing buffered into forks */
	printf("concurrency %d, %d s per row, %d hand-offs\n", conc, seconds,
	    rounds);
	printf("%-52s %12s\n", "row", "value");
	put = rate(W_PUT, m1);
	printf("%-52s %9.0f /s\n", "raftkv put (clerk), same concurrency", put);
	{
		double mnt = rate(W_FLOCK, m1);

		printf("%-52s %9.0f /s  (%.2fx put)\n",
		    "flock lock+unlock pairs, mount", mnt, mnt / put);
	}
	printf("%-52s %9.0f /s\n", "flock lock+unlock pairs, local dir (TMP)",
	    rate(W_FLOCK, tmpdir));
	{
		double ck = rate(W_CLERK_LOCK, m1);

		printf("%-52s %9.0f /s  (%.2fx put)\n",
		    "raftkv lock+unlock pairs (clerk)", ck, ck / put);
	}
	printf("%-52s %9.0f /s\n", "lockfile O_EXCL create+unlink, mount",
	    rate(W_LOCKFILE, m1));
	put_latency(&c50, &c99);
	printf("%-52s %6.2f / %6.2f ms\n", "put commit latency p50/p99", c50,
	    c99);
	handoff(&p50, &p99);
	printf("%-52s %6.2f / %6.2f ms  (p50 %.1fx a put)\n",
	    "hand-off mount 1 -> mount 2, p50/p99", p50, p99, p50 / c50);
	return 0;
usage:
	fprintf(stderr,
	    "usage: bench_locks --conf FILE --m1 DIR --m2 DIR --tmp DIR "
	    "[-c C] [-s SECONDS] [-r ROUNDS]\n");
	return 2;
}
