/*
 * test_mr_kvbuf.c - the pieces of a raftkv-mr task: the partitioner (the
 * lab's ihash), the pair vector's sort and intermediate file codec, input
 * splits at line boundaries, and the counters' text form.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mr/counters.h"
#include "mr/kvbuf.h"
#include "mr/kvgroup.h"
#include "mr/partition.h"
#include "mr/split.h"

/* --- fixture: a temporary directory --------------------------------------- */

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_mr_kvbuf.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* --- tests ---------------------------------------------------------------- */

static void test_mr_partition_matches_the_labs_ihash(void **state)
{
	(void)state;
	/* FNV-1a 32 & 0x7fffffff, as 6.5840's ihash */
	assert_int_equal(partition_hash("", 0), 0x011c9dc5);
	assert_int_equal(partition_hash("a", 1), 0x640c292c);
	assert_int_equal(partition_hash("the", 3), 0x340eb21c);
	assert_int_equal(partition_of("foobar", 6, 10), 2);
	assert_int_equal(partition_of("", 0, 10), 3);
	assert_int_equal(partition_of("the", 3, 1), 0);
}

static void test_mr_partition_spreads_keys(void **state)
{
	unsigned count[10] = { 0 }, i;
	char k[16];

	(void)state;
	for (i = 0; i < 10000; i++) {
		int n = snprintf(k, sizeof(k), "key%u", i);

		count[partition_of(k, (size_t)n, 10)]++;
	}
	for (i = 0; i < 10; i++)
		assert_in_range(count[i], 800, 1200);
}

static void test_mr_kvbuf_sorts_by_key_then_value(void **state)
{
	struct kvbuf kb;

	(void)state;
	kvbuf_init(&kb);
	kvbuf_add(&kb, "b", 1, "2", 1);
	kvbuf_add(&kb, "ab", 2, "z", 1);
	kvbuf_add(&kb, "b", 1, "1", 1);
	kvbuf_add(&kb, "a", 1, "", 0);
	kvbuf_add(&kb, "a\0b", 3, "nul", 3); /* binary-safe */
	kvbuf_sort(&kb);
	assert_int_equal(kb.n, 5);
	assert_string_equal(kvbuf_key(&kb, 0), "a");
	assert_int_equal(kb.recs[1].klen, 3);
	assert_memory_equal(kvbuf_key(&kb, 1), "a\0b", 3);
	assert_string_equal(kvbuf_key(&kb, 2), "ab");
	assert_string_equal(kvbuf_val(&kb, 3), "1");
	assert_string_equal(kvbuf_val(&kb, 4), "2");
	assert_int_equal(kvbuf_group_end(&kb, 0), 1);
	assert_int_equal(kvbuf_group_end(&kb, 3), 5);
	kvbuf_close(&kb);
}

static void test_mr_kvbuf_file_round_trip(void **state)
{
	struct kvbuf kb, back;
	char path[128];
	int fd, i;

	(void)state;
	kvbuf_init(&kb);
	kvbuf_init(&back);
	for (i = 0; i < 5000; i++) {
		char k[16], v[16];
		int kl = snprintf(k, sizeof(k), "k%d", i % 97);
		int vl = snprintf(v, sizeof(v), "%d", i);

		kvbuf_add(&kb, k, (size_t)kl, v, (size_t)vl);
	}
	kvbuf_add(&kb, "", 0, "", 0);
	snprintf(path, sizeof(path), "%s/mr-0-0.a0", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	assert_true(fd >= 0);
	assert_int_equal(kvbuf_write_fd(&kb, fd), 0);
	close(fd);
	assert_int_equal(kvbuf_read_file(&back, path), 0);
	assert_int_equal(back.n, kb.n);
	for (i = 0; i < (int)kb.n; i++) {
		assert_int_equal(back.recs[i].klen, kb.recs[i].klen);
		assert_int_equal(back.recs[i].vlen, kb.recs[i].vlen);
		assert_memory_equal(kvbuf_key(&back, i), kvbuf_key(&kb, i),
		    kb.recs[i].klen + 1 + kb.recs[i].vlen);
	}
	kvbuf_close(&kb);
	kvbuf_close(&back);
}

static void test_mr_kvbuf_refuses_damaged_files(void **state)
{
	static const uint8_t torn[] = { 3, 0, 0, 0, 1, 0, 0, 0, 'a', 'b' };
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0 };
	static const uint8_t ok_then_short[] = { 1, 0, 0, 0, 1, 0, 0, 0, 'k',
		'v', 1, 0 };
	struct kvbuf kb;
	char path[128];

	(void)state;
	kvbuf_init(&kb);
	snprintf(path, sizeof(path), "%s/bad", dir);
	write_file(path, torn, sizeof(torn));
	assert_int_equal(kvbuf_read_file(&kb, path), -EBADMSG);
	write_file(path, huge, sizeof(huge));
	assert_int_equal(kvbuf_read_file(&kb, path), -EBADMSG);
	assert_int_equal(kb.n, 0);
	write_file(path, ok_then_short, sizeof(ok_then_short));
	assert_int_equal(kvbuf_read_file(&kb, path), -EBADMSG);
	assert_int_equal(kb.n, 1);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(kvbuf_read_file(&kb, path), -ENOENT);
	assert_int_equal(kvbuf_add(&kb, "k", KVBUF_MAX_FIELD + 1ul, "", 0),
	    -E2BIG);
	kvbuf_close(&kb);
}

static void test_mr_split_cuts_at_line_boundaries(void **state)
{
	char path[128], err[256], *names[2], *buf;
	struct split *s;
	size_t n, i, total = 0;
	char text[10000];
	int j;

	(void)state;
	for (j = 0; j < 9999; j++) /* lines of 1..100 chars */
		text[j] = (j * 7919) % 101 == 0 ? '\n' : 'x';
	text[9999] = 'y'; /* no newline at the end */
	snprintf(path, sizeof(path), "%s/in.txt", dir);
	write_file(path, text, sizeof(text));
	names[0] = path;
	assert_int_equal(split_inputs(names, 1, 1000, &s, &n, err, sizeof(err)),
	    0);
	assert_true(n >= 9 && n <= 11);
	for (i = 0; i < n; i++) {
		assert_true(s[i].off == total);
		total += s[i].len;
		if (i + 1 < n)
			assert_int_equal(text[s[i].off + s[i].len - 1], '\n');
		assert_int_equal(split_read(&s[i], &buf), 0);
		assert_memory_equal(buf, text + s[i].off, s[i].len);
		free(buf);
	}
	assert_int_equal(total, sizeof(text));
	free(s);
	/* no limit: one split per file; a missing file is named */
	assert_int_equal(split_inputs(names, 1, 0, &s, &n, err, sizeof(err)),
	    0);
	assert_int_equal(n, 1);
	free(s);
	names[1] = "/nonexistent/input";
	assert_int_equal(split_inputs(names, 2, 0, &s, &n, err, sizeof(err)),
	    -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/input"));
	names[0] = dir;
	assert_int_equal(split_inputs(names, 1, 0, &s, &n, err, sizeof(err)),
	    -EINVAL);
}

static void test_mr_counters_text_round_trip(void **state)
{
	struct counters c = { 0 }, d = { 0 };
	char buf[256];
	size_t n;

	(void)state;
	counters_add(&c, "map_input_bytes", 100);
	counters_add(&c, "app.words", -3);
	counters_add(&c, "map_input_bytes", 5);
	counters_add(&c, "bad\tname", 1); /* refused */
	assert_int_equal(c.n, 2);
	n = counters_format(&c, buf, sizeof(buf));
	assert_int_equal(counters_parse(&d, buf, n), 0);
	assert_int_equal(counters_get(&d, "map_input_bytes"), 105);
	assert_int_equal(counters_get(&d, "app.words"), -3);
	assert_int_equal(counters_parse(&d, "x\t1", 3), -EBADMSG);
	assert_int_equal(counters_parse(&d, "x\tone\n", 6), -EBADMSG);
	assert_int_equal(counters_parse(&d, "\t1\n", 3), -EBADMSG);
}

static int sum_fn(struct mr_ctx *ctx, const char *k, size_t kl,
    const struct mr_values *vals)
{
	unsigned long long sum = 0;
	char out[32];
	size_t i;
	int n;

	for (i = 0; i < vals->n; i++)
		sum += strtoull(vals->v[i], NULL, 10);
	n = snprintf(out, sizeof(out), "%llu", sum);
	ctx->emit(ctx, k, kl, out, (size_t)n);
	return 0;
}

static void no_counter(struct mr_ctx *ctx, const char *name, int64_t d)
{
	(void)ctx;
	(void)name;
	(void)d;
}

static void test_mr_kvgroup_combines_in_rounds(void **state)
{
	struct mr_ctx ctx = { .counter = no_counter };
	struct kvgroup kg;
	char k[16];
	size_t i;

	(void)state;
	kvgroup_init(&kg, 4096);
	for (i = 0; i < 100000; i++) {
		int n = snprintf(k, sizeof(k), "k%zu", i % 50);

		assert_int_equal(kvgroup_add(&kg, k, (size_t)n, "1", 1, sum_fn,
		                     &ctx),
		    0);
	}
	assert_true(kg.combining);
	assert_true(kg.nv < 100000); /* rounds ran */
	assert_int_equal(kvgroup_combine(&kg, sum_fn, &ctx), 0);
	assert_int_equal(kg.ng, 50);
	for (i = 0; i < kg.ng; i++) {
		const struct kvg_grp *g = &kg.g[i];

		assert_int_equal(g->n, 1);
		assert_string_equal(kg.vdata + kg.v[g->head - 1].off, "2000");
		assert_int_equal(kg.g[i].klen, strlen(kvgroup_key(&kg, i)));
	}
	kvgroup_close(&kg);
}

static void test_mr_kvgroup_stops_combining_distinct_keys(void **state)
{
	struct mr_ctx ctx = { .counter = no_counter };
	struct kvgroup kg;
	char k[16];
	size_t i, total = 0;

	(void)state;
	kvgroup_init(&kg, 4096);
	for (i = 0; i < 20000; i++) {
		int n = snprintf(k, sizeof(k), "key%zu", i);

		kvgroup_add(&kg, k, (size_t)n, "7", 1, sum_fn, &ctx);
	}
	assert_false(kg.combining);
	assert_int_equal(kg.ng, 20000);
	for (i = 0; i < kg.ng; i++)
		total += kg.g[i].n;
	assert_int_equal(total, 20000);
	kvgroup_close(&kg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mr_partition_matches_the_labs_ihash),
		cmocka_unit_test(test_mr_partition_spreads_keys),
		cmocka_unit_test(test_mr_kvbuf_sorts_by_key_then_value),
		cmocka_unit_test(test_mr_kvbuf_file_round_trip),
		cmocka_unit_test(test_mr_kvbuf_refuses_damaged_files),
		cmocka_unit_test(test_mr_split_cuts_at_line_boundaries),
		cmocka_unit_test(test_mr_counters_text_round_trip),
		cmocka_unit_test(test_mr_kvgroup_combines_in_rounds),
		cmocka_unit_test(test_mr_kvgroup_stops_combining_distinct_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
