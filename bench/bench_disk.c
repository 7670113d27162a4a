/*
 * bench_disk.c - what durability costs on this disk, and what storage makes of it.
 *
 * Usage: bench_disk [-d DIR] [-n ITERATIONS]
 *
 * Everything runs in one temporary directory under DIR (default: the
 * current directory, i.e. the disk the build is on), in one run, so the
 * rows compare like with like:
 *
 *   raw rows       the floor: one 4 KiB pwrite + fdatasync that grows the
 *                  file (append), that overwrites blocks already written
 *                  (what STORAGE_PREALLOC_ZERO makes appends into), and that
 *                  writes into fallocate()d, still unwritten extents
 *                  (STORAGE_PREALLOC_FALLOCATE).
 *   storage rows   storage_append() of a batch of 1, 16 or 64 entries of
 *                  100 bytes, then one storage_sync() (group commit): the
 *                  latency of a batch and the entries made durable per
 *                  second, for the default (zero-filled) segments and for
 *                  fallocate()d ones.
 *
 * Latencies are per fdatasync'd write (p50, p99, mean, in microseconds).
 * A benchmark, not a test: it asserts nothing about time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "raft/storage/storage.h"
#include "raft/util/num.h"

struct row {
	const char *name;
	double p50, p99, mean; /* microseconds per sync */
	double entries_per_s; /* 0: not applicable */
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void summarize(struct row *r, double *lat, int n,
    uint32_t entries_per_sync)
{
	double sum = 0;

	for (int i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	r->p50 = lat[n / 2];
	r->p99 = lat[(n * 99) / 100];
	r->mean = sum / n;
	r->entries_per_s = entries_per_sync ? 1e6 * entries_per_sync / r->mean
	                                    : 0;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_disk: %s: %s\n", what, strerror(errno));
	exit(1);
}

enum raw_mode { RAW_APPEND, RAW_OVERWRITE, RAW_FALLOCATED };

static void bench_raw(const char *dir, enum raw_mode mode, int n, struct row *r)
{
	char path[4200];
	static char buf[4096];
	double *lat = calloc((size_t)n, sizeof *lat);
	int fd;

	memset(buf, 'x', sizeof buf);
	snprintf(path, sizeof path, "%s/raw", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || lat == NULL)
		die("open raw file");
	if (mode == RAW_OVERWRITE)
		for (int i = 0; i < n; i++)
			if (pwrite(fd, buf, sizeof buf, (off_t)i * 4096) !=
			    4096)
				die("prefill");
	if (mode == RAW_FALLOCATED && fallocate(fd, 0, 0, (off_t)n * 4096) != 0)
		die("fallocate");
	if (fsync(fd) != 0)
		die("fsync");
	for (int i = 0; i < n; i++) {
		double t = now_us();

		if (pwrite(fd, buf, sizeof buf, (off_t)i * 4096) != 4096 ||
		    fdatasync(fd) != 0)
			die("write");
		lat[i] = now_us() - t;
	}
	close(fd);
	unlink(path);
	summarize(r, lat, n, 0);
	free(lat);
}

static int rm_one(const char *p, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void bench_storage(const char *dir, enum storage_prealloc prealloc,
    uint32_t batch, int n, struct row *r)
{
	struct storage_options opt;
	struct storage *s;
	struct raft_boot boot;
	struct raft_entry *e = calloc(batch, sizeof *e);
	double *lat = calloc((size_t)n, sizeof *lat);
	static uint8_t payload[100];
	char sub[4200], err[1024];
	raft_index next = 1;

	snprintf(sub, sizeof sub, "%s/data", dir);
	storage_options_defaults(&opt);
	opt.prealloc = prealloc;
	if (e == NULL || lat == NULL ||
	    storage_open(sub, 1, 1, &opt, &s, &boot, err, sizeof err) != 0) {
		fprintf(stderr, "bench_disk: storage_open: %s\n", err);
		exit(1);
	}
	memset(payload, 'p', sizeof payload);
	/* Warm up: the first append creates (and preallocates) the segment. */
	for (int i = -1; i < n; i++) {
		double t = now_us();

		for (uint32_t k = 0; k < batch; k++)
			e[k] = (struct raft_entry){ 1, next + k,
				RAFT_ENTRY_NORMAL, sizeof payload, payload };
		if (storage_append(s, e, batch) != 0 || storage_sync(s) != 0) {
			fprintf(stderr, "bench_disk: %s\n", storage_errmsg(s));
			exit(1);
		}
		next += batch;
		if (i >= 0)
			lat[i] = now_us() - t;
	}
	storage_close(s);
	nftw(sub, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	summarize(r, lat, n, batch);
	free(lat);
	free(e);
}

int main(int argc, char **argv)
{
	const char *base = ".";
	char dir[4096];
	int n = 1000, c;
	unsigned u;
	struct row rows[9];
	int nr = 0;

	while ((c = getopt(argc, argv, "d:n:")) != -1) {
		if (c == 'd')
			base = optarg;
		else if (c == 'n') {
			/* p99 indexes n * 99: keep it far from INT_MAX */
			if (num_parse_uint(optarg, 1, 1000000, &u) != 0) {
				fprintf(stderr,
				    "bench_disk: -n: '%s' is not a "
				    "number from 1 to 1000000\n",
				    optarg);
				return 2;
			}
			n = (int)u;
		} else {
			fprintf(stderr,
			    "usage: bench_disk [-d DIR] [-n ITERATIONS]\n");
			return 2;
		}
	}
	snprintf(dir, sizeof dir, "%s/bench_disk.XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		die(dir);

	rows[nr].name = "raw 4 KiB append (file grows) + fdatasync";
	bench_raw(dir, RAW_APPEND, n, &rows[nr++]);
	rows[nr].name = "raw 4 KiB overwrite (written blocks) + fdatasync";
	bench_raw(dir, RAW_OVERWRITE, n, &rows[nr++]);
	rows[nr].name = "raw 4 KiB write into fallocate()d + fdatasync";
	bench_raw(dir, RAW_FALLOCATED, n, &rows[nr++]);
	static const uint32_t batches[] = { 1, 16, 64 };
	static const char *names[2][3] = {
		{ "storage 1 x 100 B + sync (zero-filled)",
		    "storage 16 x 100 B + sync (zero-filled)",
		    "storage 64 x 100 B + sync (zero-filled)" },
		{ "storage 1 x 100 B + sync (fallocate)",
		    "storage 16 x 100 B + sync (fallocate)",
		    "storage 64 x 100 B + sync (fallocate)" },
	};
	for (int p = 0; p < 2; p++)
		for (int b = 0; b < 3; b++) {
			rows[nr].name = names[p][b];
			bench_storage(dir,
			    p == 0 ? STORAGE_PREALLOC_ZERO
			           : STORAGE_PREALLOC_FALLOCATE,
			    batches[b], n, &rows[nr++]);
		}
	rmdir(dir);

	printf("bench_disk: %d fdatasync'd writes per row, in %s\n", n, base);
	printf("%-50s %8s %8s %8s %12s\n", "operation", "p50 us", "p99 us",
	    "mean us", "entries/s");
	for (int i = 0; i < nr; i++) {
		printf("%-50s %8.1f %8.1f %8.1f ", rows[i].name, rows[i].p50,
		    rows[i].p99, rows[i].mean);
		if (rows[i].entries_per_s > 0)
			printf("%12.0f\n", rows[i].entries_per_s);
		else
			printf("%12s\n", "-");
	}
	return 0;
}
