/*
 * bench_fs.c - the measuring driver of bench/bench_fs.sh: forks N worker
 * processes that do one file system operation on a given directory for a
 * fixed time (or a fixed amount of data) and prints one result line.
 *
 *   bench_fs MODE [-n PROCS] [-t SECS] [-s BYTES] [-c COUNT] DIR [DIR2]
 *
 * Modes (worker i of N; every file name is per worker unless said):
 *   stat DIR DIR2   write+close DIR/stat.i (a different size each time),
 *                   then time stat(DIR2/stat.i): the stat of a file
 *                   another mount just changed; a size that is not the
 *                   one just written counts as "stale"
 *   randread FILE   pread 4 KiB at random 4 KiB-aligned offsets of FILE
 *                   (one shared file, opened by each worker)
 *   create DIR      open(O_CREAT|O_EXCL) + write 1 KiB + close of new
 *                   files DIR/c.i/fK
 *   seqwrite DIR    DIR/seq.i of BYTES/N (whole MiB): 1 MiB writes, then
 *                   fsync, close; MiB/s over the whole run
 *   seqread DIR     read DIR/seq.i back in 1 MiB reads
 *   mkfiles DIR     create COUNT empty files DIR/eNNNNNN (set-up; split
 *                   over the workers)
 *   readdir DIR     list DIR (opendir, readdir to the end, closedir); a
 *                   listing without COUNT entries is an error
 *   probe FILE      write FILE in 1 MiB writes up to BYTES, stopping at
 *                   the first EFBIG; fsync, close, unlink; prints the
 *                   bytes accepted (PROBE bytes=N)
 *
 * Workers set up first (open files, make directories), then wait on a
 * pipe that the parent closes to start them all at once.  Time-limited
 * modes run -t SECS (default 3).  Each worker keeps its count, errors and
 * a reservoir sample of its latencies in shared memory; the parent merges
 * them and prints
 *
 *   RESULT mode=M procs=N secs=S ops=K ops_s=R mib_s=B p50_us=X
 *          p99_us=Y errors=E stale=Z
 *
 * (one line).  ops_s is ops over the wall time, except for stat, where it
 * is the sum over workers of stats per second spent in stat (the writes in
 * between are not the measured operation).  Exit status 1 when an
 * operation failed (the first failure of each worker is on stderr).
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raft/util/num.h"

#define SAMPLES 100000 /* latency reservoir per worker */
#define MIB (1024u * 1024)
#define MAX_PROCS 256

enum mode {
	M_STAT,
	M_RANDREAD,
	M_CREATE,
	M_SEQWRITE,
	M_SEQREAD,
	M_MKFILES,
	M_READDIR,
	M_PROBE
};

static const char *const mode_names[] = { "stat", "randread", "create",
	"seqwrite", "seqread", "mkfiles", "readdir", "probe" };

struct opts {
	enum mode mode;
	unsigned procs;
	double secs;
	uint64_t bytes;
	uint64_t count;
	const char *dir, *dir2;
};

struct slot {
	uint64_t ops;
	uint64_t errors;
	uint64_t stale;
	uint64_t bytes;
	double busy_s; /* time inside the measured call */
	uint32_t nsamp;
	float samp[SAMPLES]; /* microseconds */
};

struct worker {
	const struct opts *o;
	unsigned idx;
	struct slot *s;
	unsigned seed;
	bool reported;
	char *buf;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sample(struct worker *w, double dt)
{
	struct slot *s = w->s;

	s->ops++;
	s->busy_s += dt;
	if (s->nsamp < SAMPLES) {
		s->samp[s->nsamp++] = (float)(dt * 1e6);
	} else {
		uint64_t j = (uint64_t)rand_r(&w->seed) % s->ops;

		if (j < SAMPLES)
			s->samp[j] = (float)(dt * 1e6);
	}
}

static void fail(struct worker *w, const char *what, const char *path)
{
	w->s->errors++;
	if (!w->reported)
		fprintf(stderr, "bench_fs %s: worker %u: %s %s: %s\n",
		    mode_names[w->o->mode], w->idx, what, path,
		    strerror(errno));
	w->reported = true;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- the modes: set-up (before the start) and the measured loop ---- */

static void run_stat(struct worker *w, double end)
{
	char a[4096], b[4096];
	struct stat st;
	uint64_t k = 0;

	snprintf(a, sizeof(a), "%s/stat.%u", w->o->dir, w->idx);
	snprintf(b, sizeof(b), "%s/stat.%u", w->o->dir2, w->idx);
	while (now_s() < end) {
		size_t len = 1 + (size_t)(k++ % 4000);
		int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		double t0;

		if (fd < 0) {
			fail(w, "open", a);
			continue;
		}
		if (write_all(fd, w->buf, len) != 0)
			fail(w, "write", a);
		if (close(fd) != 0)
			fail(w, "close", a);
		t0 = now_s();
		if (stat(b, &st) != 0) {
			fail(w, "stat", b);
			continue;
		}
		sample(w, now_s() - t0);
		if ((size_t)st.st_size != len)
			w->s->stale++;
	}
}

static void run_randread(struct worker *w, double end)
{
	struct stat st;
	uint64_t blocks;
	int fd = open(w->o->dir, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0) {
		fail(w, "open", w->o->dir);
		if (fd >= 0)
			close(fd);
		return;
	}
	blocks = (uint64_t)st.st_size / 4096;
	if (blocks == 0) {
		errno = EINVAL;
		fail(w, "shorter than 4 KiB:", w->o->dir);
		close(fd);
		return;
	}
	while (now_s() < end) {
		uint64_t r = ((uint64_t)rand_r(&w->seed) << 31) ^
		    (uint64_t)rand_r(&w->seed);
		off_t off = (off_t)((r % blocks) * 4096);
		double t0 = now_s();
		ssize_t n = pread(fd, w->buf, 4096, off);

		if (n != 4096) {
			if (n >= 0)
				errno = EIO;
			fail(w, "pread", w->o->dir);
			continue;
		}
		sample(w, now_s() - t0);
		w->s->bytes += 4096;
	}
	close(fd);
}

static void run_create(struct worker *w, const char *dir, double end)
{
	char p[4096 + 32];
	uint64_t k = 0;

	while (now_s() < end) {
		double t0 = now_s();
		int fd;

		snprintf(p, sizeof(p), "%s/f%06" PRIu64, dir, k++);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) {
			fail(w, "create", p);
			continue;
		}
		if (write_all(fd, w->buf, 1024) != 0) {
			fail(w, "write", p);
			close(fd);
			continue;
		}
		if (close(fd) != 0) {
			fail(w, "close", p);
			continue;
		}
		sample(w, now_s() - t0);
		w->s->bytes += 1024;
	}
}

static uint64_t share(const struct opts *o)
{
	return (o->bytes / o->procs) / MIB * MIB;
}

static void run_seqwrite(struct worker *w)
{
	char p[4096];
	uint64_t want = share(w->o), done = 0;
	int fd;

	snprintf(p, sizeof(p), "%s/seq.%u", w->o->dir, w->idx);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fail(w, "open", p);
		return;
	}
	while (done < want) {
		double t0 = now_s();

		if (write_all(fd, w->buf, MIB) != 0) {
			fail(w, "write", p);
			break;
		}
		sample(w, now_s() - t0);
		done += MIB;
	}
	if (fsync(fd) != 0)
		fail(w, "fsync", p);
	if (close(fd) != 0)
		fail(w, "close", p);
	w->s->bytes = done;
}

static void run_seqread(struct worker *w)
{
	char p[4096];
	uint64_t want = share(w->o), done = 0;
	int fd;

	snprintf(p, sizeof(p), "%s/seq.%u", w->o->dir, w->idx);
	fd = open(p, O_RDONLY);
	if (fd < 0) {
		fail(w, "open", p);
		return;
	}
	for (;;) {
		double t0 = now_s();
		ssize_t n = read(fd, w->buf, MIB);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(w, "read", p);
			break;
		}
		if (n == 0)
			break;
		sample(w, now_s() - t0);
		done += (uint64_t)n;
	}
	close(fd);
	if (done != want) {
		errno = EIO;
		fail(w, "short file", p);
	}
	w->s->bytes = done;
}

static void run_mkfiles(struct worker *w)
{
	char p[4096];

	for (uint64_t k = w->idx; k < w->o->count; k += w->o->procs) {
		double t0 = now_s();
		int fd;

		snprintf(p, sizeof(p), "%s/e%06" PRIu64, w->o->dir, k);
		fd = open(p, O_WRONLY | O_CREAT, 0644);
		if (fd < 0 || close(fd) != 0) {
			fail(w, "create", p);
			continue;
		}
		sample(w, now_s() - t0);
	}
}

static void run_readdir(struct worker *w, double end)
{
	while (now_s() < end) {
		double t0 = now_s();
		DIR *d = opendir(w->o->dir);
		struct dirent *e;
		uint64_t n = 0;

		if (d == NULL) {
			fail(w, "opendir", w->o->dir);
			continue;
		}
		errno = 0;
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") != 0 &&
			    strcmp(e->d_name, "..") != 0)
				n++;
		if (errno != 0)
			fail(w, "readdir", w->o->dir);
		closedir(d);
		if (w->o->count > 0 && n != w->o->count) {
			errno = EIO;
			fail(w, "wrong entry count in", w->o->dir);
			continue;
		}
		sample(w, now_s() - t0);
	}
}

static void run_probe(struct worker *w)
{
	uint64_t done = 0;
	int fd = open(w->o->dir, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0) {
		fail(w, "open", w->o->dir);
		return;
	}
	while (done < w->o->bytes) {
		if (write_all(fd, w->buf, MIB) != 0) {
			if (errno != EFBIG)
				fail(w, "write", w->o->dir);
			break;
		}
		done += MIB;
	}
	if (fsync(fd) != 0)
		fail(w, "fsync", w->o->dir);
	if (close(fd) != 0)
		fail(w, "close", w->o->dir);
	if (unlink(w->o->dir) != 0)
		fail(w, "unlink", w->o->dir);
	w->s->bytes = done;
}

/* Worker @idx: set up, wait for the start (EOF on @start), run. */
static int worker_main(const struct opts *o, unsigned idx, struct slot *s,
    int start)
{
	struct worker w = { .o = o, .idx = idx, .s = s };
	char dir[4096], c;
	double end;

	w.seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
	w.buf = malloc(MIB);
	if (w.buf == NULL)
		return 1;
	memset(w.buf, 'a' + (int)(idx % 26), MIB);
	if (o->mode == M_CREATE) {
		snprintf(dir, sizeof(dir), "%s/c.%u", o->dir, idx);
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			fail(&w, "mkdir", dir);
	}
	while (read(start, &c, 1) < 0 && errno == EINTR)
		;
	close(start);
	end = now_s() + o->secs;
	switch (o->mode) {
	case M_STAT:
		run_stat(&w, end);
		break;
	case M_RANDREAD:
		run_randread(&w, end);
		break;
	case M_CREATE:
		run_create(&w, dir, end);
		break;
	case M_SEQWRITE:
		run_seqwrite(&w);
		break;
	case M_SEQREAD:
		run_seqread(&w);
		break;
	case M_MKFILES:
		run_mkfiles(&w);
		break;
	case M_READDIR:
		run_readdir(&w, end);
		break;
	case M_PROBE:
		run_probe(&w);
		break;
	}
	free(w.buf);
	return 0;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* Percentile @q of the sorted merged samples (every worker's reservoir
 * counts equally: they run the same loop for the same time). */
static double percentile(float *all, size_t n, double q)
{
	if (n == 0)
		return 0;
	return all[(size_t)(q * (double)(n - 1))];
}

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: bench_fs MODE [-n PROCS] [-t SECS] [-s BYTES] [-c COUNT] "
	    "DIR [DIR2]\n"
	    "  MODE: stat DIR DIR2 | randread FILE | create DIR | seqwrite "
	    "DIR |\n"
	    "        seqread DIR | mkfiles DIR | readdir DIR | probe FILE\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	uint64_t v;
	int c;

	o->procs = 1;
	o->secs = 3;
	o->bytes = 256ull * MIB;
	if (argc < 2)
		return -1;
	for (c = 0; c < (int)(sizeof(mode_names) / sizeof(*mode_names)); c++)
		if (strcmp(argv[1], mode_names[c]) == 0)
			break;
	if (c == (int)(sizeof(mode_names) / sizeof(*mode_names)))
		return -1;
	o->mode = (enum mode)c;
	optind = 2;
	while ((c = getopt(argc, argv, "n:t:s:c:")) != -1) {
		switch (c) {
		case 'n':
			if (num_parse_u64(optarg, 10, 1, MAX_PROCS, &v) != 0)
				return -1;
			o->procs = (unsigned)v;
			break;
		case 't':
			if (num_parse_u64(optarg, 10, 1, 3600, &v) != 0)
				return -1;
			o->secs = (double)v;
			break;
		case 's':
			if (num_parse_u64(optarg, 10, MIB, UINT64_MAX / 2,
			        &o->bytes) != 0)
				return -1;
			break;
		case 'c':
			if (num_parse_u64(optarg, 10, 0, 100000000,
			        &o->count) != 0)
				return -1;
			break;
		default:
			return -1;
		}
	}
	if (optind >= argc)
		return -1;
	o->dir = argv[optind++];
	if (o->mode == M_STAT) {
		if (optind >= argc)
			return -1;
		o->dir2 = argv[optind++];
	}
	if (o->mode == M_PROBE)
		o->procs = 1;
	if (strlen(o->dir) > 4000 || (o->dir2 && strlen(o->dir2) > 4000))
		return -1; /* paths are built in 4 KiB buffers */
	return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct slot *slots;
	pid_t pids[MAX_PROCS];
	int pfd[2], rv = 0;
	uint64_t ops = 0, errors = 0, stale = 0, bytes = 0;
	size_t nall = 0;
	float *all;
	double t0, secs, ops_s = 0;

	if (parse(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
	slots = mmap(NULL, sizeof(*slots) * o.procs, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED || pipe(pfd) != 0) {
		perror("bench_fs");
		return 1;
	}
	for (unsigned i = 0; i < o.procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("bench_fs: fork");
			for (unsigned j = 0; j < i; j++)
				kill(pids[j], SIGKILL);
			return 1;
		}
		if (pids[i] == 0) {
			close(pfd[1]);
			_exit(worker_main(&o, i, &slots[i], pfd[0]));
		}
	}
	close(pfd[0]);
	/* Let the workers finish their set-up (a directory each). */
	usleep(100 * 1000);
	t0 = now_s();
	close(pfd[1]);
	for (unsigned i = 0; i < o.procs; i++) {
		int st;

		while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			rv = 1;
	}
	secs = now_s() - t0;

	all = malloc(sizeof(float) * SAMPLES * o.procs);
	if (all == NULL) {
		perror("bench_fs");
		return 1;
	}
	for (unsigned i = 0; i < o.procs; i++) {
		struct slot *s = &slots[i];

		ops += s->ops;
		errors += s->errors;
		stale += s->stale;
		bytes += s->bytes;
		if (o.mode == M_STAT && s->busy_s > 0)
			ops_s += (double)s->ops / s->busy_s;
		memcpy(all + nall, s->samp, sizeof(float) * s->nsamp);
		nall += s->nsamp;
	}
	if (o.mode != M_STAT)
		ops_s = (double)ops / secs;
	qsort(all, nall, sizeof(float), cmp_float);
	if (o.mode == M_PROBE) {
		printf("PROBE bytes=%" PRIu64 "\n", bytes);
	} else {
		printf("RESULT mode=%s procs=%u secs=%.3f ops=%" PRIu64
		       " ops_s=%.1f mib_s=%.2f p50_us=%.1f p99_us=%.1f "
		       "errors=%" PRIu64 " stale=%" PRIu64 "\n",
		    mode_names[o.mode], o.procs, secs, ops, ops_s,
		    (double)bytes / MIB / secs, percentile(all, nall, 0.50),
		    percentile(all, nall, 0.99), errors, stale);
	}
	free(all);
	munmap(slots, sizeof(*slots) * o.procs);
	return errors > 0 ? 1 : rv;
}
