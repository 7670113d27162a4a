/*
 * bench_kv.c - the KV state machine with a million keys.
 *
 * Loads N keys (default 1,000,000: 1000 directories "dNNN" of 1000 files
 * "dNNN/fNNNNNNN", plus the directory keys themselves) in random order
 * through kv_apply() of encoded PUT commands, then measures point reads,
 * directory listings (a 1000-key prefix; the 1000 children of the root
 * with the '/' delimiter, which must skip a million descendants),
 * overwrites, deletes, a 100,000-client session load, and a snapshot and
 * restore of the whole state (time, size).  Reference rows run the same
 * lookups and scans on a sorted array (bsearch, linear walk) in the same
 * process, so the numbers can be read against this machine's speed.
 *
 * Times are CPU time of the process (it is single-threaded).
 *
 * Usage: bench_kv [keys]      (not part of `make check`; `make bench`)
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/keyspace.h"
#include "kv/kv.h"
#include "raft/util/num.h"

#define VALUE_BYTES 16

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* CPU time of this process: steadier than wall time on a shared machine
 * (the bench is single-threaded, so the two agree on an idle one). */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static void row(const char *what, double count, double ms)
{
	printf("%-44s %10.0f %10.1f %10.0f\n", what, count, ms,
	    count > 0 ? ms * 1e6 / count : 0);
}

static void die(const char *what)
{
	fprintf(stderr, "bench_kv: %s failed\n", what);
	exit(1);
}

/* Keys: files i < n_files are "dNNN/fNNNNNNN"; then the directories. */
static unsigned ndirs, per_dir;

static size_t key_of(size_t i, char *buf)
{
	size_t nfiles = (size_t)ndirs * per_dir;

	if (i < nfiles)
		return (size_t)sprintf(buf, "d%03zu/f%07zu", i / per_dir, i);
	return (size_t)sprintf(buf, "d%03zu", i - nfiles);
}

static uint64_t index_next;

static void apply(struct kv *kv, const struct kv_cmd *c)
{
	unsigned char buf[256];
	struct kv_result r;
	long n = kv_cmd_encode(c, buf, sizeof(buf));

	if (n < 0 || kv_apply(kv, ++index_next, buf, (size_t)n, &r) != 0)
		die("apply");
	if (r.status != KV_OK)
		die(kv_status_name(r.status));
	kv_result_release(&r);
}

static void put(struct kv *kv, const char *key, size_t keylen,
    const char *value, uint32_t flags)
{
	struct kv_cmd c = { .type = KV_OP_PUT, .time_ns = (int64_t)index_next };

	c.op = (struct kv_op){ .type = KV_OP_PUT,
		.key = key,
		.keylen = (uint32_t)keylen,
		.data = value,
		.datalen = VALUE_BYTES,
		.flags = flags,
		.meta = { KV_KIND_FILE, 0644, 0, 0 } };
	apply(kv, &c);
}

static int count_cb(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	(void)key;
	(void)keylen;
	(void)attr;
	(void)value;
	(*(size_t *)arg)++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	uint64_t nkeys = 1000000;
	char key[64], value[VALUE_BYTES + 1] = "0123456789abcdef";
	size_t *order, total, listed = 0;
	char **sorted;
	struct kv *kv, *copy;
	void *snap;
	size_t snaplen, heap0, heap1;
	double t, ms;
	size_t sink = 0, counted = 0;

	if (argc > 1 &&
	    num_parse_u64(argv[1], 10, 0, UINT32_MAX, &nkeys) != 0) {
		fprintf(stderr,
		    "usage: bench_kv [KEYS] (KEYS: a number from "
		    "0 to %" PRIu32 "; '%s' is not)\n",
		    UINT32_MAX, argv[1]);
		return 2;
	}
	if (nkeys < 1000)
		nkeys = 1000;
	ndirs = 1000;
	per_dir = (unsigned)(nkeys / ndirs);
	total = (size_t)ndirs * per_dir + ndirs;
	order = malloc(total * sizeof(*order));
	sorted = malloc(total * sizeof(*sorted));
	if (order == NULL || sorted == NULL)
		die("malloc");
	for (size_t i = 0; i < total; i++)
		order[i] = i;
	for (size_t i = total - 1; i > 0; i--) {
		size_t j = (size_t)(rnd() % (i + 1)), x = order[i];

		order[i] = order[j];
		order[j] = x;
	}

	printf("raftkv bench_kv: %zu keys (%u directories x %u files + the "
	       "directories), %d-byte values, keys inserted in random "
	       "order\n\n",
	    total, ndirs, per_dir, VALUE_BYTES);
	printf("%-44s %10s %10s %10s\n", "operation (CPU time)", "count",
	    "total ms", "ns/op");

	heap0 = heap_bytes();
	kv = kv_new(NULL);
	if (kv == NULL)
		die("kv_new");
	t = now_ms();
	for (size_t i = 0; i < total; i++) {
		size_t n = key_of(order[i], key);

		put(kv, key, n, value, 0);
	}
	row("insert: encode + kv_apply(PUT create)", (double)total,
	    now_ms() - t);
	heap1 = heap_bytes();

	t = now_ms();
	for (size_t i = 0; i < total; i++) {
		struct kv_attr a;
		size_t n = key_of(order[i], key);

		if (kv_get(kv, key, n, &a, NULL, NULL) != 0)
			die("kv_get");
		sink += a.size;
	}
	row("get: kv_get (attributes), random order", (double)total,
	    now_ms() - t);

	t = now_ms();
	for (size_t i = 0; i < total; i++) {
		char buf[VALUE_BYTES];
		size_t n = key_of(order[i], key);

		sink += (size_t)kv_read(kv, key, n, 0, buf, sizeof(buf), NULL);
	}
	row("get: kv_read (value copy), random order", (double)total,
	    now_ms() - t);

	/* Reference: the same lookups by bsearch in a sorted array. */
	for (size_t i = 0; i < total; i++) {
		size_t n = key_of(i, key);

		sorted[i] = malloc(n + 1);
		if (sorted[i] == NULL)
			die("malloc");
		memcpy(sorted[i], key, n + 1);
	}
	qsort(sorted, total, sizeof(*sorted), cmp_str);
	t = now_ms();
	for (size_t i = 0; i < total; i++) {
		char *k = key;

		key_of(order[i], key);
		if (bsearch(&k, sorted, total, sizeof(*sorted), cmp_str) ==
		    NULL)
			die("bsearch");
	}
	row("  reference: bsearch in a sorted array", (double)total,
	    now_ms() - t);

	t = now_ms();
	for (unsigned i = 0; i < 1000; i++) {
		int n = sprintf(key, "d%03u/", (unsigned)(rnd() % ndirs));

		listed += (size_t)kv_list(kv, key, (size_t)n, NULL, 0, 0, -1,
		    count_cb, &counted);
	}
	ms = now_ms() - t;
	row("list: one directory (prefix), per key", (double)listed, ms);
	printf("%-44s %10u %10.1f %10.0f\n", "list: one directory, per listing",
	    1000, ms, ms * 1e6 / 1000);

	t = now_ms();
	listed = 0;
	for (unsigned i = 0; i < 100; i++)
		listed += (size_t)kv_list(kv, NULL, 0, NULL, 0, 0, '/',
		    count_cb, &counted);
	ms = now_ms() - t;
	printf("%-44s %10u %10.1f %10.0f\n",
	    "list: root's children ('/'), per listing", 100, ms,
	    ms * 1e6 / 100);
	if (listed != 100u * ndirs)
		die("root listing");

	/* Reference: a linear walk of 1000 consecutive sorted strings. */
	t = now_ms();
	for (unsigned i = 0; i < 1000; i++) {
		size_t start = (size_t)(rnd() % (total - 1000));

		for (size_t j = start; j < start + 1000; j++)
			sink += (size_t)sorted[j][0];
	}
	row("  reference: walk 1000 sorted strings, per key", 1e6,
	    now_ms() - t);

	t = now_ms();
	for (size_t i = 0; i < total; i++) {
		size_t n = key_of(order[i], key);

		put(kv, key, n, value, KV_F_ANYVER);
	}
	row("overwrite: kv_apply(PUT any version)", (double)total,
	    now_ms() - t);

	t = now_ms();
	for (size_t i = 0; i < total; i++) {
		struct kv_cmd c = { .type = KV_OP_WRITE,
			.time_ns = (int64_t)index_next };
		size_t n = key_of(order[i], key);

		c.op = (struct kv_op){ .type = KV_OP_WRITE,
			.key = key,
			.keylen = (uint32_t)n,
			.arg = VALUE_BYTES,
			.data = "++",
			.datalen = 2,
			.flags = KV_F_ANYVER };
		apply(kv, &c);
	}
	row("append 2 bytes: kv_apply(WRITE at end)", (double)total,
	    now_ms() - t);

	/* Snapshot and restore of the whole state. */
	t = now_ms();
	if (kv_snapshot(kv, &snap, &snaplen) != 0)
		die("kv_snapshot");
	ms = now_ms() - t;
	row("snapshot: kv_snapshot, per key", (double)total, ms);
	copy = kv_new(NULL);
	t = now_ms();
	if (copy == NULL || kv_restore(copy, snap, snaplen) != 0)
		die("kv_restore");
	row("restore: kv_restore, per key", (double)total, now_ms() - t);
	if (kv_digest(copy) != kv_digest(kv))
		die("restore digest");
	kv_free(copy);

	/* Delete a tenth, in random order. */
	t = now_ms();
	for (size_t i = 0; i < total / 10; i++) {
		struct kv_cmd c = { .type = KV_OP_DELETE,
			.time_ns = (int64_t)index_next };
		size_t n = key_of(order[i], key);

		c.op = (struct kv_op){ .type = KV_OP_DELETE,
			.key = key,
			.keylen = (uint32_t)n,
			.flags = KV_F_ANYVER };
		apply(kv, &c);
	}
	row("delete: kv_apply(DELETE), random order", (double)(total / 10),
	    now_ms() - t);

	/* Sessions: 100,000 clients register and put once each. */
	{
		size_t before = heap_bytes();
		struct kv_cmd reg = { .type = KV_OP_REGISTER };

		t = now_ms();
		for (uint64_t c = 0; c < 100000; c++) {
			struct kv_cmd p = { .type = KV_OP_PUT,
				.time_ns = (int64_t)index_next };
			unsigned char buf[128];
			struct kv_result r;
			long n = kv_cmd_encode(&reg, buf, sizeof(buf));

			if (kv_apply(kv, ++index_next, buf, (size_t)n, &r) != 0)
				die("register");
			p.client_id = r.client_id;
			p.seq = 1;
			p.op = (struct kv_op){ .type = KV_OP_PUT,
				.key = "shared",
				.keylen = 6,
				.data = value,
				.datalen = VALUE_BYTES,
				.flags = KV_F_ANYVER,
				.meta = { KV_KIND_FILE, 0644, 0, 0 } };
			apply(kv, &p);
		}
		ms = now_ms() - t;
		row("sessions: REGISTER + PUT, per client", 100000, ms);
		printf("%-44s %10.1f bytes/client\n",
		    "  session memory (heap growth)",
		    (double)(heap_bytes() - before) / 100000);
	}

	printf("\nsnapshot: %zu bytes for %zu keys (%.1f bytes/key, zstd "
	       "level %d)\n",
	    snaplen, total, (double)snaplen / (double)total, KV_ZSTD_LEVEL);
	printf("memory after loading: %.1f MB, %.0f bytes/key (record %zu B + "
	       "key + inode %zu B + value + B+tree; malloc overhead "
	       "included)\n",
	    (double)(heap1 - heap0) / 1e6,
	    (double)(heap1 - heap0) / (double)total, sizeof(struct kv_rec),
	    sizeof(struct kv_inode));
	free(snap);
	for (size_t i = 0; i < total; i++)
		free(sorted[i]);
	free(sorted);
	free(order);
	kv_free(kv);
	return sink + counted == 42 ? 1 : 0;
}
