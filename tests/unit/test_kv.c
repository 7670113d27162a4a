/*
 * test_kv.c - unit tests for the KV state machine (kv/kv.c, kv/kvsnap.c).
 *
 * Every rule of the contract in kv/kv.h: the seeds' versioned Put, delete,
 * partial writes and truncation, metadata, rename, transactions (all or
 * nothing, checked against applying the same ops one by one), listings,
 * at-most-once sessions (duplicates, stale retries, eviction by committed
 * time and by capacity, across snapshots), the 100,000-client memory bound,
 * determinism (two replicas end byte-identical), malformed commands
 * (never a crash, never a change), snapshots (round trip, corruption
 * refused with the state kept) and allocation failures at every point of
 * an apply or a restore (nothing changes).
 *
 * Link with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc: the failure
 * tests make the Nth allocation fail (they are skipped otherwise).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
/* From the ASan runtime (its header is not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#else
#include <malloc.h>
#endif

#include "kv/kv.h"
#include "kv/kvsnap.h"
#include "raft/le.h"

/* ------------------------------------------------------------------------
 * Fixture: allocation failure injection (active with --wrap)
 * ------------------------------------------------------------------------ */

void *__real_malloc(size_t size) __attribute__((weak));
void *__real_calloc(size_t n, size_t size) __attribute__((weak));
void *__real_realloc(void *p, size_t size) __attribute__((weak));
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static long fail_in = -1; /* allocations until one fails; -1: never */
static unsigned failed;
static size_t biggest_alloc; /* the largest request since reset */

static bool fail_now(void)
{
	if (fail_in == 0) {
		fail_in = -1;
		failed++;
		return true;
	}
	if (fail_in > 0)
		fail_in--;
	return false;
}

void *__wrap_malloc(size_t size)
{
	if (size > biggest_alloc)
		biggest_alloc = size;
	return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	if (n * size > biggest_alloc)
		biggest_alloc = n * size;
	return fail_now() ? NULL : __real_calloc(n, size);
}

/* A realloc that may grow in place is not a copy: only malloc and calloc
 * count as the biggest allocation. */
void *__wrap_realloc(void *p, size_t size)
{
	return fail_now() ? NULL : __real_realloc(p, size);
}

static bool can_inject(void)
{
	return __real_malloc != NULL && __real_calloc != NULL &&
	    __real_realloc != NULL;
}

static size_t heap_in_use(void)
{
#ifdef HAVE_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
#endif
}

/* ------------------------------------------------------------------------
 * Helpers: building and applying commands
 * ------------------------------------------------------------------------ */

#define SEC 1000000000ll

static int64_t now_ns = 1700000000 * SEC; /* the proposer's clock */
static const struct kv_meta file_meta = { KV_KIND_FILE, 0644, 1000, 100 };

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static struct kv *new_kv(void)
{
	struct kv *kv = kv_new(NULL);

	assert_non_null(kv);
	return kv;
}

/* Apply @len bytes as the next entry; asserts the apply itself succeeded. */
static struct kv_result apply_raw(struct kv *kv, const void *buf, size_t len)
{
	struct kv_result r;

	assert_int_equal(kv_apply(kv, kv_applied_index(kv) + 1, buf, len, &r),
	    0);
	return r;
}

static struct kv_result run(struct kv *kv, const struct kv_cmd *c)
{
	struct kv_result r;
	void *buf;
	size_t len;

	assert_int_equal(kv_cmd_encode_alloc(c, &buf, &len), 0);
	r = apply_raw(kv, buf, len);
	free(buf);
	return r;
}

static struct kv_op o_put(const char *k, const char *v, uint64_t ver,
    uint32_t flags)
{
	return (struct kv_op){ .type = KV_OP_PUT,
		.key = k,
		.keylen = (uint32_t)strlen(k),
		.data = v,
		.datalen = v ? (uint32_t)strlen(v) : 0,
		.version = ver,
		.flags = flags,
		.meta = file_meta };
}

static struct kv_op o_del(const char *k, uint64_t ver, uint32_t flags)
{
	return (struct kv_op){ .type = KV_OP_DELETE,
		.key = k,
		.keylen = (uint32_t)strlen(k),
		.version = ver,
		.flags = flags };
}

static struct kv_op o_write(const char *k, uint64_t off, const void *d,
    size_t len, uint64_t ver, uint32_t flags)
{
	return (struct kv_op){ .type = KV_OP_WRITE,
		.key = k,
		.keylen = (uint32_t)strlen(k),
		.arg = off,
		.data = d,
		.datalen = (uint32_t)len,
		.version = ver,
		.flags = flags };
}

static struct kv_op o_trunc(const char *k, uint64_t size, uint64_t ver,
    uint32_t flags)
{
	return (struct kv_op){ .type = KV_OP_TRUNCATE,
		.key = k,
		.keylen = (uint32_t)strlen(k),
		.arg = size,
		.version = ver,
		.flags = flags };
}

static struct kv_op o_meta(const char *k, uint32_t mask, struct kv_meta m,
    int64_t mtime, uint64_t ver, uint32_t flags)
{
	if (!(mask & KV_META_KIND))
		m.kind = 0;
	return (struct kv_op){ .type = KV_OP_SETMETA,
		.key = k,
		.keylen = (uint32_t)strlen(k),
		.mask = mask,
		.meta = m,
		.mtime_ns = mtime,
		.version = ver,
		.flags = flags };
}

static struct kv_op o_rename(const char *src, const char *dst, uint64_t ver,
    uint32_t flags)
{
	return (struct kv_op){ .type = KV_OP_RENAME,
		.key = src,
		.keylen = (uint32_t)strlen(src),
		.key2 = dst,
		.key2len = (uint32_t)strlen(dst),
		.version = ver,
		.flags = flags };
}

static struct kv_op o_link(const char *src, const char *dst, uint64_t ver,
    uint32_t flags)
{
	struct kv_op op = o_rename(src, dst, ver, flags);

	op.type = KV_OP_LINK;
	return op;
}

static struct kv_cmp cmp(const char *k, uint64_t ver)
{
	return (struct kv_cmp){ .version = ver,
		.key = k,
		.keylen = (uint32_t)strlen(k) };
}

static struct kv_cmd cmd_op(struct kv_op op, uint64_t client, uint64_t seq)
{
	return (struct kv_cmd){ .type = op.type,
		.op = op,
		.client_id = client,
		.seq = seq,
		.time_ns = now_ns };
}

/* One sessionless op. */
static struct kv_result op1(struct kv *kv, struct kv_op op)
{
	struct kv_cmd c = cmd_op(op, 0, 0);

	return run(kv, &c);
}

/* One op in @client's session. */
static struct kv_result op1s(struct kv *kv, uint64_t client, uint64_t seq,
    struct kv_op op)
{
	struct kv_cmd c = cmd_op(op, client, seq);

	return run(kv, &c);
}

static struct kv_cmd cmd_txn(const struct kv_cmp *cmps, uint32_t ncmp,
    const struct kv_op *ops, uint32_t nops)
{
	return (struct kv_cmd){ .type = KV_OP_TXN,
		.cmps = cmps,
		.ncmp = ncmp,
		.ops = ops,
		.nops = nops,
		.time_ns = now_ns };
}

static struct kv_result txn(struct kv *kv, const struct kv_cmp *cmps,
    uint32_t ncmp, const struct kv_op *ops, uint32_t nops)
{
	struct kv_cmd c = cmd_txn(cmps, ncmp, ops, nops);

	return run(kv, &c);
}

static uint64_t reg(struct kv *kv)
{
	struct kv_cmd c = { .type = KV_OP_REGISTER, .time_ns = now_ns };
	struct kv_result r = run(kv, &c);

	assert_int_equal(r.status, KV_OK);
	assert_true(r.client_id > 0);
	return r.client_id;
}

static void tick(struct kv *kv)
{
	struct kv_cmd c = { .type = KV_OP_TICK, .time_ns = now_ns };

	assert_int_equal(run(kv, &c).status, KV_OK);
}

/* The value of @key equals @len bytes at @want (or the key is absent). */
static void assert_value(struct kv *kv, const char *key, const void *want,
    size_t len)
{
	void *v = NULL;
	size_t vlen = 0;
	int rc = kv_get(kv, key, strlen(key), NULL, &v, &vlen);

	if (want == NULL) {
		assert_int_equal(rc, -ENOENT);
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(vlen, len);
	if (len > 0)
		assert_memory_equal(v, want, len);
	else
		assert_null(v);
	free(v);
}

static uint64_t usage(struct kv *kv);

static struct kv_attr attr_of(struct kv *kv, const char *key)
{
	struct kv_attr a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(kv_get(kv, key, strlen(key), &a, NULL, NULL), 0);
	return a;
}

static bool exists(struct kv *kv, const char *key)
{
	return kv_get(kv, key, strlen(key), NULL, NULL, NULL) == 0;
}

static void snapshot(struct kv *kv, void **data, size_t *len)
{
	assert_int_equal(kv_snapshot(kv, data, len), 0);
}

/* ------------------------------------------------------------------------
 * Tests: the seeds' Put and Get
 * ------------------------------------------------------------------------ */

static void test_kv_put_get_follow_the_seeds(void **state)
{
	struct kv *kv = new_kv();
	struct kv_result r;

	(void)state;
	/* TestReliablePut */
	r = op1(kv, o_put("k", "6.5840", 0, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 1);
	assert_value(kv, "k", "6.5840", 6);
	assert_int_equal(attr_of(kv, "k").version, 1);
	assert_int_equal(op1(kv, o_put("k", "x", 0, 0)).status, KV_EVERSION);
	assert_int_equal(op1(kv, o_put("y", "x", 1, 0)).status, KV_ENOKEY);
	assert_value(kv, "y", NULL, 0);
	/* Matching version replaces and increments. */
	r = op1(kv, o_put("k", "7", 1, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 2);
	assert_value(kv, "k", "7", 1);
	assert_int_equal(op1(kv, o_put("k", "8", 1, 0)).status, KV_EVERSION);
	assert_int_equal(op1(kv, o_put("k", "8", 3, 0)).status, KV_EVERSION);
	assert_value(kv, "k", "7", 1);
	assert_int_equal(kv_key_count(kv), 1);
	kv_free(kv);
	kv_free(NULL);
}

static void test_kv_get_through_the_log(void **state)
{
	struct kv *kv = new_kv();
	struct kv_cmd c =
	    cmd_op((struct kv_op){ .type = KV_OP_GET, .key = "k", .keylen = 1 },
	        0, 0);
	struct kv_result r;

	(void)state;
	assert_int_equal(run(kv, &c).status, KV_ENOKEY);
	op1(kv, o_put("k", "value", 0, 0));
	r = run(kv, &c);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.value_len, 5);
	assert_memory_equal(r.value, "value", 5);
	assert_int_equal(r.attr.version, 1);
	kv_result_release(&r);
	kv_result_release(NULL);
	kv_free(kv);
}

static void test_kv_put_keeps_inode_and_meta_unless_setmeta(void **state)
{
	struct kv *kv = new_kv();
	struct kv_op op = o_put("f", "a", 0, 0);
	struct kv_result r;
	int64_t t0 = now_ns;

	(void)state;
	r = op1(kv, op);
	assert_int_equal(r.attr.inode, KV_INODE_FIRST);
	assert_int_equal(r.attr.kind, KV_KIND_FILE);
	assert_int_equal(r.attr.mode, 0644);
	assert_int_equal(r.attr.uid, 1000);
	assert_int_equal(r.attr.gid, 100);
	assert_int_equal(r.attr.mtime_ns, t0);
	assert_int_equal(r.attr.ctime_ns, t0);
	assert_int_equal(r.attr.size, 1);

	now_ns += SEC;
	op = o_put("f", "bb", 1, 0);
	op.meta = (struct kv_meta){ KV_KIND_DIR, 0700, 1, 2 };
	r = op1(kv, op);
	assert_int_equal(r.attr.inode, KV_INODE_FIRST);
	assert_int_equal(r.attr.kind, KV_KIND_FILE); /* kept */
	assert_int_equal(r.attr.mode, 0644);
	assert_int_equal(r.attr.mtime_ns, now_ns);
	assert_int_equal(r.attr.size, 2);

	op.version = 2;
	op.flags = KV_F_SETMETA;
	r = op1(kv, op);
	assert_int_equal(r.attr.version, 3);
	assert_int_equal(r.attr.kind, KV_KIND_DIR);
	assert_int_equal(r.attr.mode, 0700);
	assert_int_equal(r.attr.uid, 1);
	assert_int_equal(r.attr.gid, 2);
	assert_int_equal(r.attr.inode, KV_INODE_FIRST);
	kv_free(kv);
}

static void test_kv_put_anyver_creates_or_replaces(void **state)
{
	struct kv *kv = new_kv();

	(void)state;
	assert_int_equal(op1(kv, o_put("k", "1", 77, KV_F_ANYVER)).attr.version,
	    1);
	assert_int_equal(op1(kv, o_put("k", "2", 77, KV_F_ANYVER)).attr.version,
	    2);
	assert_value(kv, "k", "2", 1);
	assert_int_equal(op1(kv, o_put("e", NULL, 0, 0)).status, KV_OK);
	assert_value(kv, "e", "", 0);
	kv_free(kv);
}

static void test_kv_inodes_are_never_reused(void **state)
{
	struct kv *kv = new_kv();

	(void)state;
	assert_int_equal(op1(kv, o_put("a", "", 0, 0)).attr.inode, 2);
	assert_int_equal(op1(kv, o_put("b", "", 0, 0)).attr.inode, 3);
	assert_int_equal(op1(kv, o_del("a", 1, 0)).status, KV_OK);
	/* Re-created: version restarts at 1, the inode does not repeat. */
	assert_int_equal(op1(kv, o_put("a", "", 0, 0)).attr.inode, 4);
	assert_int_equal(attr_of(kv, "a").version, 1);
	kv_free(kv);
}

/* ------------------------------------------------------------------------
 * Tests: delete, write, truncate, setmeta, rename
 * ------------------------------------------------------------------------ */

static void test_kv_delete_checks_the_version(void **state)
{
	struct kv *kv = new_kv();
	struct kv_result r;

	(void)state;
	assert_int_equal(op1(kv, o_del("k", 0, 0)).status, KV_ENOKEY);
	assert_int_equal(op1(kv, o_del("k", 0, KV_F_ANYVER)).status, KV_ENOKEY);
	op1(kv, o_put("k", "v", 0, 0));
	op1(kv, o_put("k", "w", 1, 0));
	assert_int_equal(op1(kv, o_del("k", 1, 0)).status, KV_EVERSION);
	r = op1(kv, o_del("k", 2, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 0);
	assert_int_equal(r.attr.inode, KV_INODE_FIRST);
	assert_false(exists(kv, "k"));
	op1(kv, o_put("k", "v", 0, 0));
	assert_int_equal(op1(kv, o_del("k", 9, KV_F_ANYVER)).status, KV_OK);
	assert_int_equal(kv_key_count(kv), 0);
	kv_free(kv);
}

static void test_kv_write_at_offset(void **state)
{
	struct kv *kv = new_kv();
	struct kv_result r;

	(void)state;
	assert_int_equal(op1(kv, o_write("f", 0, "x", 1, 0, KV_F_ANYVER))
	                     .status,
	    KV_ENOKEY);
	op1(kv, o_put("f", "hello world", 0, 0));
	/* Overwrite inside. */
	now_ns += SEC;
	r = op1(kv, o_write("f", 6, "WORLD", 5, 1, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 2);
	assert_int_equal(r.attr.mtime_ns, now_ns);
	assert_int_equal(r.attr.size, 11);
	assert_value(kv, "f", "hello WORLD", 11);
	/* Straddling the end extends. */
	r = op1(kv, o_write("f", 9, "LDS!", 4, 2, 0));
	assert_int_equal(r.attr.size, 13);
	assert_value(kv, "f", "hello WORLDS!", 13);
	/* Past the end: the gap reads as zeros. */
	r = op1(kv, o_write("f", 16, "end", 3, 0, KV_F_ANYVER));
	assert_int_equal(r.attr.size, 19);
	assert_value(kv, "f", "hello WORLDS!\0\0\0end", 19);
	/* Version mismatch, zero bytes, too big. */
	assert_int_equal(op1(kv, o_write("f", 0, "z", 1, 1, 0)).status,
	    KV_EVERSION);
	r = op1(kv, o_write("f", 1000, "", 0, 4, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 4); /* nothing changed */
	assert_int_equal(r.attr.size, 19);
	assert_int_equal(op1(kv, o_write("f", KV_FILE_MAX, "z", 1, 4, 0))
	                     .status,
	    KV_ETOOBIG);
	assert_int_equal(op1(kv, o_write("f", UINT64_MAX, "z", 1, 4, 0)).status,
	    KV_ETOOBIG);
	/* Past what one command carries: a file grows by writes. */
	assert_int_equal(op1(kv, o_write("f", KV_VALUE_MAX, "z", 1, 4, 0))
	                     .status,
	    KV_OK);
	assert_int_equal(attr_of(kv, "f").size, KV_VALUE_MAX + 1);
	kv_free(kv);
}

static void test_kv_write_appends_and_reads_ranges(void **state)
{
	struct kv *kv = new_kv();
	static unsigned char want[1 << 20];
	unsigned char chunk[4096], buf[10000];
	struct kv_attr a;

	(void)state;
	op1(kv, o_put("big", NULL, 0, 0));
	for (size_t off = 0; off < sizeof(want); off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = want[off + i] = (unsigned char)(off / 4096 +
			    i);
		assert_int_equal(op1(kv,
		                     o_write("big", off, chunk, sizeof(chunk),
		                         0, KV_F_ANYVER))
		                     .status,
		    KV_OK);
	}
	assert_value(kv, "big", want, sizeof(want));
	assert_int_equal(kv_read(kv, "big", 3, 5000, buf, sizeof(buf), &a),
	    sizeof(buf));
	assert_memory_equal(buf, want + 5000, sizeof(buf));
	assert_int_equal(a.size, sizeof(want));
	assert_int_equal(kv_read(kv, "big", 3, sizeof(want) - 10, buf,
	                     sizeof(buf), NULL),
	    10);
	assert_int_equal(kv_read(kv, "big", 3, sizeof(want), buf, sizeof(buf),
	                     NULL),
	    0);
	assert_int_equal(kv_read(kv, "big", 3, UINT64_MAX, buf, sizeof(buf),
	                     NULL),
	    0);
	assert_int_equal(kv_read(kv, "nope", 4, 0, buf, sizeof(buf), NULL),
	    -ENOENT);
	assert_int_equal(attr_of(kv, "big").version, 1 + 256);
	kv_free(kv);
}

static void test_kv_truncate_shrinks_and_extends_with_zeros(void **state)
{
	struct kv *kv = new_kv();
	struct kv_result r;

	(void)state;
	assert_int_equal(op1(kv, o_trunc("f", 0, 0, KV_F_ANYVER)).status,
	    KV_ENOKEY);
	op1(kv, o_put("f", "abcdefgh", 0, 0));
	now_ns += SEC;
	r = op1(kv, o_trunc("f", 3, 1, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 2);
	assert_int_equal(r.attr.size, 3);
	assert_int_equal(r.attr.mtime_ns, now_ns);
	assert_value(kv, "f", "abc", 3);
	/* Extending shows zeros, never the old bytes. */
	op1(kv, o_trunc("f", 6, 2, 0));
	assert_value(kv, "f", "abc\0\0\0", 6);
	/* A write past the end after a shrink: zeros in the gap too. */
	op1(kv, o_trunc("f", 1, 3, 0));
	op1(kv, o_write("f", 4, "Z", 1, 4, 0));
	assert_value(kv, "f", "a\0\0\0Z", 5);
	/* Same size still counts as a change; to zero; mismatch; too big. */
	assert_int_equal(op1(kv, o_trunc("f", 5, 5, 0)).attr.version, 6);
	assert_int_equal(op1(kv, o_trunc("f", 0, 6, 0)).attr.size, 0);
	assert_value(kv, "f", "", 0);
	assert_int_equal(op1(kv, o_trunc("f", 1, 1, 0)).status, KV_EVERSION);
	assert_int_equal(op1(kv, o_trunc("f", KV_FILE_MAX + 1ull, 7, 0)).status,
	    KV_ETOOBIG);
	/* Shrinking a large value gives memory back and keeps the prefix. */
	op1(kv, o_trunc("f", 1 << 20, 7, 0));
	op1(kv, o_write("f", 0, "xyz", 3, 8, 0));
	op1(kv, o_trunc("f", 2, 9, 0));
	assert_value(kv, "f", "xy", 2);
	kv_free(kv);
}

static void test_kv_setmeta_bumps_version_and_ctime(void **state)
{
	struct kv *kv = new_kv();
	struct kv_meta m = { KV_KIND_SYMLINK, 0600, 5, 6 };
	struct kv_result r;
	int64_t t0 = now_ns;

	(void)state;
	assert_int_equal(op1(kv,
	                     o_meta("f", KV_META_MODE, m, 0, 0, KV_F_ANYVER))
	                     .status,
	    KV_ENOKEY);
	op1(kv, o_put("f", "x", 0, 0));
	now_ns += SEC;
	r = op1(kv, o_meta("f", KV_META_MODE | KV_META_UID, m, 0, 1, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 2);
	assert_int_equal(r.attr.mode, 0600);
	assert_int_equal(r.attr.uid, 5);
	assert_int_equal(r.attr.gid, 100); /* not in the mask */
	assert_int_equal(r.attr.kind, KV_KIND_FILE);
	assert_int_equal(r.attr.mtime_ns, t0); /* content unchanged */
	assert_int_equal(r.attr.ctime_ns, now_ns);
	r = op1(kv,
	    o_meta("f", KV_META_GID | KV_META_KIND | KV_META_MTIME, m, -42, 2,
	        0));
	assert_int_equal(r.attr.gid, 6);
	assert_int_equal(r.attr.kind, KV_KIND_SYMLINK);
	assert_int_equal(r.attr.mtime_ns, -42);
	/* Even a no-op mask bumps the version (cache invalidation). */
	assert_int_equal(op1(kv, o_meta("f", 0, m, 0, 3, 0)).attr.version, 4);
	assert_int_equal(op1(kv, o_meta("f", 0, m, 0, 3, 0)).status,
	    KV_EVERSION);
	assert_value(kv, "f", "x", 1);
	kv_free(kv);
}

static void test_kv_rename_moves_the_record(void **state)
{
	struct kv *kv = new_kv();
	struct kv_result r;
	int64_t t0 = now_ns;

	(void)state;
	assert_int_equal(op1(kv, o_rename("a", "b", 0, KV_F_ANYVER)).status,
	    KV_ENOKEY);
	op1(kv, o_put("a", "contents", 0, 0)); /* inode 2 */
	op1(kv, o_put("c", "other", 0, 0)); /* inode 3 */
	now_ns += SEC;
	assert_int_equal(op1(kv, o_rename("a", "b", 2, 0)).status, KV_EVERSION);
	r = op1(kv, o_rename("a", "b", 1, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.inode, 2);
	assert_int_equal(r.attr.version, 2);
	assert_int_equal(r.attr.mtime_ns, t0);
	assert_int_equal(r.attr.ctime_ns, now_ns);
	assert_false(exists(kv, "a"));
	assert_value(kv, "b", "contents", 8);
	/* Over an existing key: replaced, its inode is gone. */
	r = op1(kv, o_rename("b", "c", 0, KV_F_ANYVER));
	assert_int_equal(r.attr.inode, 2);
	assert_int_equal(r.attr.version, 3);
	assert_value(kv, "c", "contents", 8);
	assert_int_equal(kv_key_count(kv), 1);
	/* Onto itself: nothing changes. */
	r = op1(kv, o_rename("c", "c", 3, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 3);
	kv_free(kv);
}

/* ------------------------------------------------------------------------
 * Tests: transactions
 * ------------------------------------------------------------------------ */

static void test_kv_rename_tree_moves_the_subtree(void **state)
{
	static const struct kv_meta dir_meta = { KV_KIND_DIR, 0755, 0, 0 };
	struct kv *kv = new_kv();
	struct kv_op put_dir = o_put("/a", NULL, 0, 0);
	struct kv_attr a_x, a_by, a_top;
	struct kv_result r;
	uint64_t d0;

	(void)state;
	put_dir.meta = dir_meta;
	assert_int_equal(op1(kv, put_dir).status, KV_OK);
	op1(kv, o_put("/a/x", "X", 0, 0));
	op1(kv, o_put("/a/b", NULL, 0, 0));
	op1(kv, o_put("/a/b/y", "Y", 0, 0));
	op1(kv, o_put("/ab", "sibling", 0, 0));
	op1(kv, o_put("/a0", "sibling", 0, 0));
	a_top = attr_of(kv, "/a");
	a_x = attr_of(kv, "/a/x");
	a_by = attr_of(kv, "/a/b/y");

	/* The whole tree moves in one command; siblings sharing the prefix
	 * without the '/' stay. */
	now_ns += SEC;
	r = op1(kv, o_rename("/a", "/c", 1, KV_F_TREE));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.inode, a_top.inode);
	assert_int_equal(r.attr.kind, KV_KIND_DIR);
	assert_false(exists(kv, "/a"));
	assert_false(exists(kv, "/a/x"));
	assert_false(exists(kv, "/a/b/y"));
	assert_value(kv, "/c/x", "X", 1);
	assert_value(kv, "/c/b/y", "Y", 1);
	assert_true(exists(kv, "/c/b"));
	assert_value(kv, "/ab", "sibling", 7);
	assert_value(kv, "/a0", "sibling", 7);
	assert_int_equal(attr_of(kv, "/c/x").inode, a_x.inode);
	assert_int_equal(attr_of(kv, "/c/x").version, a_x.version + 1);
	assert_int_equal(attr_of(kv, "/c/b/y").inode, a_by.inode);
	assert_int_equal(attr_of(kv, "/c/b/y").ctime_ns, now_ns);
	assert_int_equal(kv_key_count(kv), 6);

	/* Into itself, or with a wrong version: refused, nothing changes. */
	d0 = kv_digest(kv);
	assert_int_equal(op1(kv,
	                     o_rename("/c", "/c/b/z", 0,
	                         KV_F_TREE | KV_F_ANYVER))
	                     .status,
	    KV_EINVAL);
	assert_int_equal(op1(kv, o_rename("/c", "/e", 7, KV_F_TREE)).status,
	    KV_EVERSION);
	assert_int_equal(op1(kv,
	                     o_rename("/none", "/e", 0,
	                         KV_F_TREE | KV_F_ANYVER))
	                     .status,
	    KV_ENOKEY);
	assert_int_equal(kv_digest(kv), d0);
	/* To itself: OK, nothing changes (as a plain rename). */
	assert_int_equal(op1(kv,
	                     o_rename("/c", "/c", 0, KV_F_TREE | KV_F_ANYVER))
	                     .status,
	    KV_OK);

	/* Over a tree: colliding keys are replaced, the others stay. */
	op1(kv, o_put("/d", NULL, 0, 0));
	op1(kv, o_put("/d/x", "old", 0, 0));
	op1(kv, o_put("/d/z", "Z", 0, 0));
	assert_int_equal(op1(kv,
	                     o_rename("/c", "/d", 0, KV_F_TREE | KV_F_ANYVER))
	                     .status,
	    KV_OK);
	assert_value(kv, "/d/x", "X", 1);
	assert_int_equal(attr_of(kv, "/d/x").inode, a_x.inode);
	assert_value(kv, "/d/z", "Z", 1);
	assert_value(kv, "/d/b/y", "Y", 1);
	assert_false(exists(kv, "/c"));
	assert_int_equal(kv_key_count(kv), 7);
	kv_free(kv);
}

static void test_kv_rename_tree_in_txn_and_limits(void **state)
{
	struct kv *kv = new_kv();
	struct kv_op ops[3];
	struct kv_result r;
	char *longkey, *dst;
	uint64_t d0;

	(void)state;
	op1(kv, o_put("/t", NULL, 0, 0));
	op1(kv, o_put("/t/1", "one", 0, 0));
	op1(kv, o_put("/t/2", "two", 0, 0));

	/* A later op fails: the tree move is undone with the rest. */
	d0 = kv_digest(kv);
	ops[0] = o_rename("/t", "/u", 1, KV_F_TREE);
	ops[1] = o_put("/u/3", "three", 0, 0);
	ops[2] = o_put("/u/1", "again", 0, 0); /* exists: ErrVersion */
	r = txn(kv, NULL, 0, ops, 3);
	assert_int_equal(r.status, KV_EVERSION);
	assert_int_equal(r.fail_op, 2);
	assert_int_equal(kv_digest(kv), d0);
	assert_value(kv, "/t/1", "one", 3);

	/* Later ops see the moved tree; attr = the tree's new top. */
	r = txn(kv, NULL, 0, ops, 2);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.inode, attr_of(kv, "/u").inode);
	assert_value(kv, "/u/1", "one", 3);
	assert_value(kv, "/u/3", "three", 5);
	assert_false(exists(kv, "/t/2"));

	/* A key that would grow past KV_KEY_MAX: ErrInvalid, no change. */
	longkey = malloc(KV_KEY_MAX + 1);
	dst = malloc(64);
	assert_non_null(longkey);
	assert_non_null(dst);
	memset(longkey, 'k', KV_KEY_MAX);
	memcpy(longkey, "/u/", 3);
	longkey[KV_KEY_MAX - 1] = '\0'; /* KV_KEY_MAX - 1 bytes */
	assert_int_equal(op1(kv, o_put(longkey, "x", 0, 0)).status, KV_OK);
	memset(dst, 'd', 63);
	dst[0] = '/';
	dst[63] = '\0';
	d0 = kv_digest(kv);
	assert_int_equal(op1(kv,
	                     o_rename("/u", dst, 0, KV_F_TREE | KV_F_ANYVER))
	                     .status,
	    KV_EINVAL);
	assert_int_equal(kv_digest(kv), d0);
	free(longkey);
	free(dst);
	kv_free(kv);
}

static void test_kv_txn_failed_compare_changes_nothing(void **state)
{
	struct kv *kv = new_kv();
	struct kv_cmp cmps[3];
	struct kv_op ops[2] = { o_put("a", "new", 1, 0), o_del("b", 1, 0) };
	struct kv_result r;
	uint64_t before;

	(void)state;
	op1(kv, o_put("a", "old", 0, 0));
	op1(kv, o_put("b", "old", 0, 0));
	before = kv_digest(kv);
	cmps[0] = cmp("a", 1);
	cmps[1] = cmp("b", KV_VERSION_ANY);
	cmps[2] = cmp("c", 1); /* absent */
	r = txn(kv, cmps, 3, ops, 2);
	assert_int_equal(r.status, KV_EVERSION);
	assert_int_equal(r.fail_cmp, 2);
	assert_int_equal(r.fail_op, KV_NO_INDEX);
	assert_int_equal(kv_digest(kv), before);
	cmps[2] = cmp("c", 0); /* must not exist: true */
	cmps[0] = cmp("a", 2);
	r = txn(kv, cmps, 3, ops, 2);
	assert_int_equal(r.fail_cmp, 0);
	cmps[0] = cmp("a", 1);
	cmps[1] = cmp("zz", KV_VERSION_ANY);
	assert_int_equal(txn(kv, cmps, 3, ops, 2).fail_cmp, 1);
	assert_int_equal(kv_digest(kv), before);
	cmps[1] = cmp("b", 1);
	r = txn(kv, cmps, 3, ops, 2);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 2); /* op 0's key, after the txn */
	assert_value(kv, "a", "new", 3);
	assert_false(exists(kv, "b"));
	kv_free(kv);
}

/* KV_VERSION_NOCHILD: "nothing below key/", exactly; what rmdir pins. */
static void test_kv_txn_nochild_compare(void **state)
{
	struct kv *kv = new_kv();
	struct kv_cmp c[2] = { cmp("/d", 1), cmp("/d", KV_VERSION_NOCHILD) };
	struct kv_op del = o_del("/d", 1, 0);
	struct kv_result r;
	uint64_t before;

	(void)state;
	op1(kv, o_put("/d", "", 0, 0));
	/* Neighbours that are not below "/d/" do not count. */
	op1(kv, o_put("/d.", "x", 0, 0));
	op1(kv, o_put("/d-x", "x", 0, 0));
	op1(kv, o_put("/c/z", "x", 0, 0));
	op1(kv, o_put("/e", "x", 0, 0));
	/* A child added by a client that does not touch "/d" (its version
	 * stays 1) fails the compare, and nothing changes. */
	op1(kv, o_put("/d/f", "x", 0, 0));
	before = kv_digest(kv);
	r = txn(kv, c, 2, &del, 1);
	assert_int_equal(r.status, KV_EVERSION);
	assert_int_equal(r.fail_cmp, 1);
	assert_int_equal(kv_digest(kv), before);
	/* A deeper key counts too. */
	op1(kv, o_del("/d/f", 1, 0));
	op1(kv, o_put("/d/g/h", "x", 0, 0));
	assert_int_equal(txn(kv, c, 2, &del, 1).fail_cmp, 1);
	op1(kv, o_del("/d/g/h", 1, 0));
	r = txn(kv, c, 2, &del, 1);
	assert_int_equal(r.status, KV_OK);
	assert_false(exists(kv, "/d"));
	assert_true(exists(kv, "/d."));
	/* The key itself need not exist; a key at the length limit has
	 * nothing below it. */
	c[0] = cmp("/nope", KV_VERSION_NOCHILD);
	del = o_put("/new", "y", 0, 0);
	assert_int_equal(txn(kv, c, 1, &del, 1).status, KV_OK);
	kv_free(kv);
}

static void test_kv_txn_exclusive_create(void **state)
{
	struct kv *kv = new_kv();
	struct kv_cmp c = cmp("lock", 0);
	struct kv_op op = o_put("lock", "me", 0, 0);
	struct kv_result r;

	(void)state;
	r = txn(kv, &c, 1, &op, 1);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.inode, KV_INODE_FIRST);
	assert_int_equal(r.attr.version, 1);
	op.data = "you";
	r = txn(kv, &c, 1, &op, 1);
	assert_int_equal(r.status, KV_EVERSION);
	assert_int_equal(r.fail_cmp, 0);
	assert_value(kv, "lock", "me", 2);
	kv_free(kv);
}

static void test_kv_txn_failed_op_undoes_everything(void **state)
{
	struct kv *kv = new_kv();
	struct kv_meta m = { KV_KIND_DIR, 0700, 1, 1 };
	struct kv_op ops[8];
	struct kv_result r;
	uint64_t before;

	(void)state;
	op1(kv, o_put("b", "bbbb", 0, 0));
	op1(kv, o_put("c", "cccc", 0, 0));
	op1(kv, o_put("d", "dddd", 0, 0));
	op1(kv, o_put("e", "eeee", 0, 0));
	op1(kv, o_put("f", "ffff", 0, 0));
	before = kv_digest(kv);
	ops[0] = o_put("a", "new", 0, 0); /* create */
	ops[1] = o_write("b", 2, "XYZ", 3, 1, 0); /* in-place? no: COW */
	ops[2] = o_del("c", 1, 0);
	ops[3] = o_rename("d", "e", 1, 0); /* over e */
	ops[4] = o_meta("f", KV_META_ALL, m, 5, 1, 0);
	ops[5] = o_trunc("e", 100, 2, 0); /* the moved record */
	ops[6] = o_put("c", "again", 0, 0); /* re-create c */
	ops[7] = o_del("nope", 0, KV_F_ANYVER); /* fails */
	r = txn(kv, NULL, 0, ops, 8);
	assert_int_equal(r.status, KV_ENOKEY);
	assert_int_equal(r.fail_op, 7);
	assert_int_equal(r.fail_cmp, KV_NO_INDEX);
	/* No attributes of the undone create of "a" in the result. */
	assert_int_equal(r.attr.version, 0);
	assert_int_equal(r.attr.inode, 0);
	assert_int_equal(kv_digest(kv), before);
	/* The inode counter was rolled back too. */
	assert_int_equal(op1(kv, o_put("z", "", 0, 0)).attr.inode, 7);
	/* Without the failing op everything applies. */
	op1(kv, o_del("z", 1, 0));
	r = txn(kv, NULL, 0, ops, 7);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.inode, 8); /* op 0 created "a" */
	assert_value(kv, "a", "new", 3);
	assert_value(kv, "b", "bbXYZ", 5);
	assert_value(kv, "c", "again", 5);
	assert_int_equal(attr_of(kv, "c").inode, 9);
	assert_false(exists(kv, "d"));
	assert_int_equal(attr_of(kv, "e").inode, 4); /* d's */
	assert_int_equal(attr_of(kv, "e").size, 100);
	assert_int_equal(attr_of(kv, "e").version, 3);
	assert_int_equal(attr_of(kv, "f").kind, KV_KIND_DIR);
	kv_free(kv);
}

static void test_kv_txn_ops_see_earlier_ops(void **state)
{
	struct kv *kv = new_kv();
	struct kv_op ops[6];
	struct kv_result r;

	(void)state;
	op1(kv, o_put("k", "old", 0, 0)); /* inode 2 */
	ops[0] = o_del("k", 1, 0);
	ops[1] = o_put("k", "fresh", 0, 0); /* absent now: create */
	ops[2] = o_write("k", 5, "!", 1, 1, 0); /* version 1 of the new k */
	ops[3] = o_put("tmp", "t", 0, 0);
	ops[4] = o_rename("tmp", "tmp2", 1, 0);
	ops[5] = o_del("tmp2", 2, 0); /* created and gone */
	r = txn(kv, NULL, 0, ops, 6);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 2); /* k, after the txn */
	assert_int_equal(r.attr.inode, 3);
	assert_value(kv, "k", "fresh!", 6);
	assert_false(exists(kv, "tmp"));
	assert_false(exists(kv, "tmp2"));
	assert_int_equal(kv_key_count(kv), 1);
	/* A rename there and back. */
	ops[0] = o_rename("k", "j", 2, 0);
	ops[1] = o_rename("j", "k", 3, 0);
	r = txn(kv, NULL, 0, ops, 2);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 0); /* op 0 targets j: gone again */
	assert_int_equal(attr_of(kv, "k").version, 4);
	assert_int_equal(attr_of(kv, "k").inode, 3);
	kv_free(kv);
}

/* A random op on a few keys, mostly with ANYVER so that many succeed. */
static struct kv_op random_op(char keys[][4], unsigned nkeys, char *data)
{
	const char *k = keys[rnd() % nkeys], *k2 = keys[rnd() % nkeys];
	uint64_t ver = rnd() % 8 == 0 ? rnd() % 4 : 0;
	uint32_t flags = ver == 0 && rnd() % 8 != 0 ? KV_F_ANYVER : 0;
	size_t len = rnd() % 40;
	struct kv_meta m = { KV_KIND_FILE + (uint8_t)(rnd() % 3),
		(uint32_t)(rnd() % 01000), (uint32_t)rnd() % 5, 7 };

	for (size_t i = 0; i < len; i++)
		data[i] = (char)('a' + rnd() % 26);
	data[len] = 0;
	switch (rnd() % 11) { /* puts weigh three, writes and links two */
	case 0:
	case 6:
	case 7: {
		struct kv_op op = o_put(k, data, ver, flags);

		if (rnd() % 2)
			op.flags |= KV_F_SETMETA;
		op.meta = m;
		return op;
	}
	case 1:
		return o_del(k, ver, flags);
	case 2:
	case 8:
		return o_write(k, rnd() % 60, data, len, ver, flags);
	case 3:
		return o_trunc(k, rnd() % 60, ver, flags);
	case 4:
		return o_meta(k, (uint32_t)rnd() & KV_META_ALL, m,
		    (int64_t)(rnd() % 1000), ver, flags);
	case 9:
	case 10:
		return o_link(k, k2, ver, flags);
	default:
		return o_rename(k, k2, ver, flags);
	}
}

/* A txn succeeds iff applying its ops one by one would, with the same end
 * state; it fails at the same op and then leaves no trace. */
static void test_kv_txn_equals_ops_applied_one_by_one(void **state)
{
	char keys[5][4] = { "a", "b", "c", "d/e", "d" };
	static char data[8][64];
	struct kv *t = new_kv(), *ref = new_kv();
	int rounds = getenv("RAFTKV_LONG") ? 20000 : 2000, ok = 0, fail = 0;

	(void)state;
	rng_state = 0x7a7a7a;
	for (int round = 0; round < rounds; round++) {
		struct kv_op ops[8];
		uint32_t nops = 1 + (uint32_t)(rnd() % 6), bad = KV_NO_INDEX;
		uint64_t before;
		struct kv_result r;

		/* Even a failed txn advances the committed clock: compare
		 * with the state at the txn's time. */
		now_ns += 1000;
		tick(t);
		before = kv_digest(t);
		for (uint32_t i = 0; i < nops; i++)
			ops[i] = random_op(keys, 5, data[i]);
		for (uint32_t i = 0; i < nops && bad == KV_NO_INDEX; i++) {
			r = op1(ref, ops[i]);
			if (r.status != KV_OK)
				bad = i;
		}
		r = txn(t, NULL, 0, ops, nops);
		if (bad == KV_NO_INDEX) {
			assert_int_equal(r.status, KV_OK);
			assert_int_equal(kv_digest(t), kv_digest(ref));
			ok++;
		} else {
			void *snap;
			size_t len;

			assert_int_not_equal(r.status, KV_OK);
			assert_int_equal(r.fail_op, bad);
			assert_int_equal(kv_digest(t), before);
			/* Bring the reference back to the txn's state. */
			snapshot(t, &snap, &len);
			assert_int_equal(kv_restore(ref, snap, len), 0);
			free(snap);
			fail++;
		}
	}
	{
		/* The links made on the way survive a snapshot, and the
		 * running quota count equals a recount. */
		struct kv *copy = new_kv();
		void *snap;
		size_t len;

		snapshot(t, &snap, &len);
		assert_int_equal(kv_restore(copy, snap, len), 0);
		free(snap);
		assert_int_equal(kv_digest(copy), kv_digest(t));
		assert_int_equal(usage(copy), usage(t));
		kv_free(copy);
	}
	print_message("random txns: %d applied, %d undone\n", ok, fail);
	assert_true(ok > rounds / 10 && fail > rounds / 10);
	kv_free(t);
	kv_free(ref);
}

/* ------------------------------------------------------------------------
 * Tests: listings
 * ------------------------------------------------------------------------ */

struct listing {
	char keys[64][32];
	int n;
	int stop_after; /* 0: never */
};

static int collect(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	struct listing *l = arg;

	assert_true(keylen < 32 && l->n < 64);
	assert_int_equal(attr->size, keylen); /* values are the keys */
	assert_memory_equal(value, key, keylen);
	memcpy(l->keys[l->n], key, keylen);
	l->keys[l->n][keylen] = 0;
	l->n++;
	return l->stop_after != 0 && l->n == l->stop_after;
}

static struct listing list(struct kv *kv, const char *prefix, const char *after,
    size_t limit, int delim)
{
	struct listing l;
	long n;

	memset(&l, 0, sizeof(l));
	n = kv_list(kv, prefix, prefix ? strlen(prefix) : 0, after,
	    after ? strlen(after) : 0, limit, delim, collect, &l);
	assert_int_equal(n, l.n);
	return l;
}

static void assert_listing(const struct listing *l, int n, ...)
{
	va_list ap;

	va_start(ap, n);
	assert_int_equal(l->n, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(l->keys[i], va_arg(ap, const char *));
	va_end(ap);
}

static void test_kv_list_prefix_order_and_pagination(void **state)
{
	static const char *const keys[] = { "d", "d/b", "d/a", "d/b/x",
		"d/b/y/z", "d/c", "d!", "d0", "e", "c", "d/\xff\xff",
		"d/\xff" };
	struct kv *kv = new_kv();
	struct listing l;

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		op1(kv, o_put(keys[i], keys[i], 0, 0));
	l = list(kv, "d/", NULL, 0, -1);
	assert_listing(&l, 7, "d/a", "d/b", "d/b/x", "d/b/y/z", "d/c", "d/\xff",
	    "d/\xff\xff");
	/* Pages of two. */
	l = list(kv, "d/", NULL, 2, -1);
	assert_listing(&l, 2, "d/a", "d/b");
	l = list(kv, "d/", "d/b", 2, -1);
	assert_listing(&l, 2, "d/b/x", "d/b/y/z");
	l = list(kv, "d/", "d/b/y/z", 2, -1);
	assert_listing(&l, 2, "d/c", "d/\xff");
	l = list(kv, "d/", "d/\xff\xff", 2, -1);
	assert_listing(&l, 0);
	/* after before the prefix starts at the prefix; a missing key works. */
	l = list(kv, "d/", "a", 1, -1);
	assert_listing(&l, 1, "d/a");
	l = list(kv, "d/", "d/aa", 1, -1);
	assert_listing(&l, 1, "d/b");
	/* Children only. */
	l = list(kv, "d/", NULL, 0, '/');
	assert_listing(&l, 5, "d/a", "d/b", "d/c", "d/\xff", "d/\xff\xff");
	l = list(kv, "d/", "d/a", 0, '/');
	assert_listing(&l, 4, "d/b", "d/c", "d/\xff", "d/\xff\xff");
	l = list(kv, "d/b/", NULL, 0, '/');
	assert_listing(&l, 1, "d/b/x");
	l = list(kv, NULL, NULL, 0, '/');
	assert_listing(&l, 5, "c", "d", "d!", "d0", "e");
	/* A 0xff delimiter exercises the successor's carry. */
	l = list(kv, "d/", NULL, 0, 0xff);
	assert_listing(&l, 5, "d/a", "d/b", "d/b/x", "d/b/y/z", "d/c");
	/* Everything; the callback stops the walk. */
	l = list(kv, "", NULL, 0, -1);
	assert_int_equal(l.n, 12);
	assert_string_equal(l.keys[0], "c");
	assert_string_equal(l.keys[11], "e");
	memset(&l, 0, sizeof(l));
	l.stop_after = 3;
	assert_int_equal(kv_list(kv, "d", 1, NULL, 0, 0, -1, collect, &l), 3);
	assert_int_equal(kv_list(kv, "d", 1, NULL, 0, 0, 256, collect, &l),
	    -EINVAL);
	l = list(kv, "x", NULL, 0, -1);
	assert_listing(&l, 0);
	kv_free(kv);
}

static int count_cb(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	(void)key;
	(void)keylen;
	(void)attr;
	(void)value;
	(*(long *)arg)++;
	return 0;
}

static void test_kv_list_children_skips_subtrees(void **state)
{
	struct kv *kv = new_kv();
	char k[64];
	long n = 0;

	(void)state;
	for (int i = 0; i < 50; i++) {
		snprintf(k, sizeof(k), "dir/c%02d", i);
		op1(kv, o_put(k, "", 0, 0));
		for (int j = 0; j < 100; j++) {
			snprintf(k, sizeof(k), "dir/c%02d/g%03d", i, j);
			op1(kv, o_put(k, "", 0, 0));
		}
	}
	assert_int_equal(kv_list(kv, "dir/", 4, NULL, 0, 0, '/', count_cb, &n),
	    50);
	assert_int_equal(n, 50);
	n = 0;
	assert_int_equal(kv_list(kv, "dir/", 4, NULL, 0, 0, -1, count_cb, &n),
	    5050);
	n = 0;
	assert_int_equal(kv_list(kv, "dir/c07/", 8, NULL, 0, 10, '/', count_cb,
	                     &n),
	    10);
	kv_free(kv);
}

/* ------------------------------------------------------------------------
 * Tests: sessions
 * ------------------------------------------------------------------------ */

static void test_kv_session_duplicate_returns_first_result(void **state)
{
	struct kv *kv = new_kv();
	uint64_t c = reg(kv);
	struct kv_result r;

	(void)state;
	r = op1s(kv, c, 1, o_put("k", "first", 0, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.flags, 0);
	op1(kv, o_put("k", "other", 1, 0)); /* someone else: version 2 */
	/* The retry is answered, not applied: version stays 2. */
	r = op1s(kv, c, 1, o_put("k", "first", 0, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.flags, KV_RES_DUP);
	assert_int_equal(r.attr.version, 1);
	assert_int_equal(r.attr.inode, KV_INODE_FIRST);
	assert_value(kv, "k", "other", 5);
	assert_int_equal(attr_of(kv, "k").version, 2);
	/* A first ErrVersion is what the retry gets, even if it would now
	 * succeed. */
	r = op1s(kv, c, 2, o_put("k", "x", 3, 0));
	assert_int_equal(r.status, KV_EVERSION);
	op1(kv, o_put("k", "y", 2, 0)); /* version 3 now */
	r = op1s(kv, c, 2, o_put("k", "x", 3, 0));
	assert_int_equal(r.status, KV_EVERSION);
	assert_int_equal(r.flags, KV_RES_DUP);
	assert_value(kv, "k", "y", 1);
	/* A txn's failure index is kept too. */
	{
		struct kv_cmp cm = cmp("nope", KV_VERSION_ANY);
		struct kv_op op = o_put("k", "z", 0, KV_F_ANYVER);
		struct kv_cmd t = cmd_txn(&cm, 1, &op, 1);

		t.client_id = c;
		t.seq = 3;
		assert_int_equal(run(kv, &t).fail_cmp, 0);
		r = run(kv, &t);
		assert_int_equal(r.flags, KV_RES_DUP);
		assert_int_equal(r.status, KV_EVERSION);
		assert_int_equal(r.fail_cmp, 0);
	}
	kv_free(kv);
}

static void test_kv_session_stale_and_unknown(void **state)
{
	struct kv *kv = new_kv();
	uint64_t c = reg(kv);
	struct kv_cmd bad;
	uint64_t before;

	(void)state;
	assert_int_equal(op1s(kv, c, 5, o_put("k", "v", 0, 0)).status, KV_OK);
	before = kv_digest(kv);
	assert_int_equal(op1s(kv, c, 4, o_put("j", "v", 0, 0)).status,
	    KV_ESTALE);
	assert_int_equal(op1s(kv, c, 0, o_put("j", "v", 0, 0)).status,
	    KV_ESTALE);
	assert_int_equal(op1s(kv, c + 1, 1, o_put("j", "v", 0, 0)).status,
	    KV_ESESSION);
	assert_int_equal(op1s(kv, 999, 1, o_put("j", "v", 0, 0)).status,
	    KV_ESESSION);
	assert_false(exists(kv, "j"));
	assert_int_equal(kv_digest(kv), before);
	/* REGISTER carries no id (the state machine assigns it). */
	bad = (struct kv_cmd){ .type = KV_OP_REGISTER };
	assert_int_equal(kv_cmd_size(&bad), 28);
	assert_int_equal(reg(kv), c + 1);
	assert_int_equal(kv_session_count(kv), 2);
	kv_free(kv);
}

static void test_kv_session_survives_snapshot_and_restore(void **state)
{
	struct kv *kv = new_kv(), *other = new_kv();
	uint64_t c = reg(kv);
	struct kv_result r;
	void *snap;
	size_t len;

	(void)state;
	op1s(kv, c, 1, o_put("k", "v", 0, 0));
	snapshot(kv, &snap, &len);
	assert_int_equal(kv_restore(other, snap, len), 0);
	free(snap);
	assert_int_equal(kv_applied_index(other), kv_applied_index(kv));
	r = op1s(other, c, 1, o_put("k", "v", 0, 0));
	assert_int_equal(r.flags, KV_RES_DUP);
	assert_int_equal(r.attr.version, 1);
	assert_int_equal(attr_of(other, "k").version, 1);
	assert_int_equal(op1s(other, c, 2, o_put("k", "w", 1, 0)).status,
	    KV_OK);
	assert_int_equal(reg(other), c + 1); /* the id counter came along */
	kv_free(kv);
	kv_free(other);
}

/* Move the proposer's clock @by ns ahead as a leader does: a TICK every
 * KV_TICK_NS on the way (so no jump over KV_CLOCK_GAP_NS, the election
 * grace), the last step left for the next command. */
static void advance(struct kv *kv, int64_t by)
{
	int64_t end = now_ns + by;

	while (end - now_ns > KV_TICK_NS) {
		now_ns += KV_TICK_NS;
		tick(kv);
	}
	now_ns = end;
}

static void test_kv_session_expires_by_committed_time(void **state)
{
	struct kv_options opt = { .session_ttl_ns = 10 * SEC };
	struct kv *kv = kv_new(&opt);
	uint64_t a, b;
	struct kv_result r;

	(void)state;
	a = reg(kv);
	b = reg(kv);
	op1s(kv, a, 1, o_put("k", "v", 0, 0));
	advance(kv, 5 * SEC);
	op1s(kv, b, 1, o_put("j", "v", 0, 0));
	/* A command with an older time does not move the clock back. */
	now_ns -= 100 * SEC;
	op1(kv, o_put("x", "", 0, 0));
	now_ns += 100 * SEC;
	/* 10 s after a's last op: still there (idle exactly the TTL). */
	advance(kv, 5 * SEC);
	tick(kv);
	assert_int_equal(kv_session_count(kv), 2);
	/* Past it: evicted by a committed TICK, not by any local clock. */
	now_ns += 1;
	tick(kv);
	assert_int_equal(kv_session_count(kv), 1);
	/* a's retry is refused, never applied twice. */
	r = op1s(kv, a, 1, o_put("k", "v", 0, 0));
	assert_int_equal(r.status, KV_ESESSION);
	assert_int_equal(attr_of(kv, "k").version, 1);
	/* b stays alive while active (a duplicate counts as activity). */
	advance(kv, 4 * SEC);
	assert_int_equal(op1s(kv, b, 1, o_put("j", "v", 0, 0)).flags,
	    KV_RES_DUP);
	advance(kv, 9 * SEC);
	tick(kv);
	assert_int_equal(kv_session_count(kv), 1);
	advance(kv, 2 * SEC);
	tick(kv);
	assert_int_equal(kv_session_count(kv), 0);
	/* The election grace: a jump of the clock over KV_CLOCK_GAP_NS
	 * (nothing committed: no leader) is not idle time, even one longer
	 * than the TTL; a jump of exactly KV_CLOCK_GAP_NS is. */
	a = reg(kv);
	advance(kv, 3 * SEC);
	tick(kv);
	now_ns += 30 * SEC;
	tick(kv);
	assert_int_equal(kv_session_count(kv), 1);
	advance(kv, 7 * SEC); /* 3 + 7 = the TTL, not past it */
	tick(kv);
	assert_int_equal(kv_session_count(kv), 1);
	now_ns += KV_CLOCK_GAP_NS;
	tick(kv);
	assert_int_equal(kv_session_count(kv), 0);
	kv_free(kv);
}


/* ------------------------------------------------------------------------
 * The open table (kv.h, OPENS)
 * ------------------------------------------------------------------------ */

static struct kv_op o_open(uint64_t inode, bool open)
{
	return (struct kv_op){ .type = open ? KV_OP_OPEN : KV_OP_CLOSE,
		.inode = inode };
}

/* A registration TXN of @client. */
static struct kv_result opens(struct kv *kv, uint64_t client, uint64_t seq,
    const struct kv_op *ops, uint32_t n)
{
	struct kv_cmd c = cmd_txn(NULL, 0, ops, n);

	c.client_id = client;
	c.seq = seq;
	return run(kv, &c);
}

/* The TXN a mount sends to remove @key's last name: kept (renamed to
 * @hidden) when held open, deleted when not; the compare pins which. */
static int remove_name(struct kv *kv, const char *key, const char *hidden)
{
	struct kv_attr a = attr_of(kv, key);
	struct kv_cmp c[2] = { cmp(key, a.version), cmp(key, KV_VERSION_OPEN) };
	struct kv_op op = o_rename(key, hidden, a.version, 0);

	if (txn(kv, c, 2, &op, 1).status == KV_OK)
		return 1;
	c[1] = cmp(key, KV_VERSION_NOTOPEN);
	op = o_del(key, a.version, 0);
	return txn(kv, c, 2, &op, 1).status == KV_OK ? 0 : -1;
}

static void test_kv_open_table_pins_the_removal(void **state)
{
	struct kv *kv = new_kv(), *other = new_kv();
	uint64_t a = reg(kv), b = reg(kv), ia, ib;
	struct kv_op ops[3];
	struct kv_result r;
	void *snap;
	size_t len;

	(void)state;
	op1(kv, o_put("/f", "data", 0, 0));
	op1(kv, o_put("/g", "gg", 0, 0));
	ia = attr_of(kv, "/f").inode;
	ib = attr_of(kv, "/g").inode;
	/* Not registered: a sessionless registration is refused. */
	ops[0] = o_open(ia, true);
	assert_int_equal(opens(kv, 0, 0, ops, 1).status, KV_ESESSION);
	/* a holds f and g; b holds f. */
	ops[1] = o_open(ib, true);
	assert_int_equal(opens(kv, a, 1, ops, 2).status, KV_OK);
	assert_int_equal(opens(kv, b, 1, ops, 1).status, KV_OK);
	/* A duplicate changes nothing (at-most-once like any mutation). */
	assert_int_equal(opens(kv, b, 1, ops, 1).flags, KV_RES_DUP);
	/* The compares: f is open; a plain key that is not is NOTOPEN. */
	op1(kv, o_put("/h", "", 0, 0));
	{
		struct kv_cmp c = cmp("/h", KV_VERSION_OPEN);
		struct kv_op op = o_put("/x", "", 0, 0);

		r = txn(kv, &c, 1, &op, 1);
		assert_int_equal(r.status, KV_EVERSION);
		c = cmp("/absent", KV_VERSION_NOTOPEN); /* must exist */
		assert_int_equal(txn(kv, &c, 1, &op, 1).status, KV_EVERSION);
	}
	/* Removing f keeps it (hidden), with its data. */
	assert_int_equal(remove_name(kv, "/f", "\001o/f"), 1);
	assert_int_equal(attr_of(kv, "\001o/f").inode, ia);
	/* The table travels in snapshots. */
	snapshot(kv, &snap, &len);
	assert_int_equal(kv_restore(other, snap, len), 0);
	free(snap);
	assert_int_equal(kv_digest(other), kv_digest(kv));
	/* a closes f: b still holds it. */
	ops[0] = o_open(ia, false);
	assert_int_equal(opens(kv, a, 2, ops, 1).status, KV_OK);
	assert_int_equal(remove_name(kv, "\001o/f", "\001o/f2"), 1);
	/* b closes it (twice: the second is a no-op): now it can go. */
	ops[1] = o_open(ia, false);
	assert_int_equal(opens(kv, b, 2, ops, 2).status, KV_OK);
	assert_int_equal(remove_name(kv, "\001o/f2", "\001o/f3"), 0);
	assert_int_equal(kv_key_count(kv), 2);
	/* An inode gone before its registration is not registered. */
	ops[0] = o_open(ia, true);
	assert_int_equal(opens(kv, b, 3, ops, 1).status, KV_OK);
	assert_int_equal(remove_name(kv, "/h", "\001o/h"), 0);
	/* The replica restored from the snapshot reaches the same state. */
	ops[0] = o_open(ia, false);
	assert_int_equal(opens(other, a, 2, ops, 1).status, KV_OK);
	assert_int_equal(remove_name(other, "\001o/f", "\001o/f2"), 1);
	ops[1] = o_open(ia, false);
	assert_int_equal(opens(other, b, 2, ops, 2).status, KV_OK);
	assert_int_equal(remove_name(other, "\001o/f2", "\001o/f3"), 0);
	ops[0] = o_open(ia, true);
	assert_int_equal(opens(other, b, 3, ops, 1).status, KV_OK);
	assert_int_equal(remove_name(other, "/h", "\001o/h"), 0);
	assert_int_equal(kv_digest(other), kv_digest(kv));
	kv_free(kv);
	kv_free(other);
}

static void test_kv_open_table_goes_with_the_session(void **state)
{
	struct kv_options opt = { .session_ttl_ns = 10 * SEC };
	struct kv *kv = kv_new(&opt);
	uint64_t a, ino;
	struct kv_op op;

	(void)state;
	a = reg(kv);
	op1(kv, o_put("/f", "data", 0, 0));
	ino = attr_of(kv, "/f").inode;
	op = o_open(ino, true);
	assert_int_equal(opens(kv, a, 1, &op, 1).status, KV_OK);
	assert_int_equal(remove_name(kv, "/f", "\001o/f"), 1);
	advance(kv, 10 * SEC);
	tick(kv);
	assert_int_equal(remove_name(kv, "\001o/f", "\001o/g"), 1);
	now_ns += 1; /* a idle past its TTL: evicted, its opens with it */
	tick(kv);
	assert_int_equal(kv_session_count(kv), 0);
	assert_int_equal(remove_name(kv, "\001o/g", "\001o/h"), 0);
	assert_int_equal(kv_key_count(kv), 0);
	kv_free(kv);
}

/* OPEN of a pair that exists and CLOSE of one that does not change
 * nothing and succeed: a mount resends either after an answer it lost
 * (fs/rkopen.c, unsure entries). */
static void test_kv_open_table_ops_are_idempotent(void **state)
{
	struct kv *kv = new_kv();
	uint64_t a = reg(kv), ino;
	struct kv_op op;

	(void)state;
	op1(kv, o_put("/f", "data", 0, 0));
	ino = attr_of(kv, "/f").inode;
	op = o_open(ino, false); /* never opened */
	assert_int_equal(opens(kv, a, 1, &op, 1).status, KV_OK);
	assert_false(kv_is_open(kv, ino));
	op = o_open(ino, true);
	assert_int_equal(opens(kv, a, 2, &op, 1).status, KV_OK);
	assert_int_equal(opens(kv, a, 3, &op, 1).status, KV_OK);
	assert_true(kv_is_open(kv, ino));
	op = o_open(ino, false);
	assert_int_equal(opens(kv, a, 4, &op, 1).status, KV_OK);
	assert_false(kv_is_open(kv, ino)); /* one pair, not a count */
	assert_int_equal(opens(kv, a, 5, &op, 1).status, KV_OK);
	assert_false(kv_is_open(kv, ino));
	kv_free(kv);
}

/* Many sessions holding files expire in one apply: all their pairs go
 * (kv.c collects them: one pass of opentab_drop_sessions()), a session
 * that stayed active keeps its own. */
static void test_kv_open_table_many_sessions_expire_at_once(void **state)
{
	enum { NS = 3000 };
	struct kv_options opt = { .session_ttl_ns = 10 * SEC };
	struct kv *kv = kv_new(&opt);
	uint64_t *ino = calloc(NS, sizeof(*ino)), live;
	struct kv_op op[2];
	char key[32];

	(void)state;
	assert_non_null(ino);
	for (int i = 0; i < NS; i++) {
		uint64_t s = reg(kv);

		snprintf(key, sizeof(key), "/f%d", i);
		op1(kv, o_put(key, "x", 0, 0));
		ino[i] = attr_of(kv, key).inode;
		op[0] = o_open(ino[i], true);
		assert_int_equal(opens(kv, s, 1, op, 1).status, KV_OK);
	}
	live = reg(kv);
	op[0] = o_open(ino[0], true);
	op[1] = o_open(ino[NS - 1], true);
	assert_int_equal(opens(kv, live, 1, op, 2).status, KV_OK);
	advance(kv, 6 * SEC);
	op[0] = o_open(ino[1], true); /* activity: renews live */
	assert_int_equal(opens(kv, live, 2, op, 1).status, KV_OK);
	advance(kv, 5 * SEC);
	tick(kv); /* the NS others idle past the TTL: evicted at once */
	assert_int_equal(kv_session_count(kv), 1);
	for (int i = 0; i < NS; i++)
		assert_int_equal(kv_is_open(kv, ino[i]),
		    i == 0 || i == 1 || i == NS - 1);
	free(ino);
	kv_free(kv);
}

static void test_kv_open_table_is_bounded(void **state)
{
	struct kv *kv = new_kv();
	uint64_t a = reg(kv), b = reg(kv), first = 0, seq = 1;
	struct kv_op *ops = calloc(KV_TXN_MAX, sizeof(*ops)), bad[2];
	struct kv_cmp c = cmp("/k0", 1);
	struct kv_result r;
	struct kv_cmd cmd;
	void *buf;
	size_t len;
	char key[32];

	(void)state;
	assert_non_null(ops);
	for (uint32_t i = 0; i <= KV_OPEN_SESSION_MAX; i++) {
		snprintf(key, sizeof(key), "/k%u", i);
		r = op1(kv, o_put(key, "", 0, 0));
		if (i == 0)
			first = r.attr.inode;
	}
	for (uint32_t i = 0; i < KV_OPEN_SESSION_MAX; i += KV_TXN_MAX) {
		for (uint32_t j = 0; j < KV_TXN_MAX; j++)
			ops[j] = o_open(first + i + j, true);
		assert_int_equal(opens(kv, a, seq++, ops, KV_TXN_MAX).status,
		    KV_OK);
	}
	/* One more for a: refused (the session's bound), the close in
	 * the same batch applies; b is not affected. */
	ops[0] = o_open(first + KV_OPEN_SESSION_MAX, true);
	ops[1] = o_open(first, false);
	r = opens(kv, a, seq++, ops, 2);
	assert_int_equal(r.status, KV_ENOSPC);
	assert_int_equal(r.fail_op, 0);
	assert_int_equal(remove_name(kv, "/k0", "\001o/k0"), 0);
	assert_int_equal(opens(kv, b, 1, ops, 1).status, KV_OK);
	/* Registrations travel alone: no compares, no other ops. */
	bad[0] = o_open(first, true);
	bad[1] = o_put("/x", "", 0, 0);
	cmd = cmd_txn(NULL, 0, bad, 2);
	cmd.client_id = a;
	cmd.seq = seq;
	assert_int_equal(kv_cmd_encode_alloc(&cmd, &buf, &len), -EINVAL);
	cmd = cmd_txn(&c, 1, bad, 1);
	assert_int_equal(kv_cmd_encode_alloc(&cmd, &buf, &len), -EINVAL);
	bad[0].keylen = 1, bad[0].key = "k"; /* an inode, never a key */
	cmd = cmd_txn(NULL, 0, bad, 1);
	assert_int_equal(kv_cmd_encode_alloc(&cmd, &buf, &len), -EINVAL);
	free(ops);
	kv_free(kv);
}

static void test_kv_session_capacity_evicts_least_recently_used(void **state)
{
	struct kv_options opt = { .session_max = 3 };
	struct kv *kv = kv_new(&opt);
	uint64_t a = reg(kv), b = reg(kv), c = reg(kv), d;

	(void)state;
	op1s(kv, a, 1, o_put("a", "", 0, 0));
	op1s(kv, b, 1, o_put("b", "", 0, 0));
	op1s(kv, c, 1, o_put("c", "", 0, 0));
	op1s(kv, a, 1, o_put("a", "", 0, 0)); /* a duplicate refreshes a */
	d = reg(kv); /* evicts b */
	assert_int_equal(kv_session_count(kv), 3);
	assert_int_equal(op1s(kv, b, 2, o_put("b", "", 1, 0)).status,
	    KV_ESESSION);
	assert_int_equal(op1s(kv, a, 2, o_put("a", "", 1, 0)).status, KV_OK);
	assert_int_equal(op1s(kv, c, 2, o_put("c", "", 1, 0)).status, KV_OK);
	assert_int_equal(op1s(kv, d, 1, o_put("d", "", 0, 0)).status, KV_OK);
	kv_free(kv);
}

/* The seeds' TestMemPutManyClientsReliable: 100,000 clients, one 1000-byte
 * Put each on the same key; the state may grow by at most 200 B/client. */
static void test_kv_many_clients_memory_bound(void **state)
{
	enum { CLIENTS = 100000 };
	static char value[1001];
	struct kv *kv = new_kv();
	size_t before, after;
	double per;

	(void)state;
	memset(value, 'v', 1000);
	op1(kv, o_put("k", value, 0, 0)); /* version 1 */
	before = heap_in_use();
	for (uint64_t i = 0; i < CLIENTS; i++) {
		uint64_t c = reg(kv);

		/* First an op that fails (the seeds' ErrNoKey Put), then
		 * the real one: both go through the session. */
		assert_int_equal(op1s(kv, c, 1, o_put("absent", value, 1, 0))
		                     .status,
		    KV_ENOKEY);
		assert_int_equal(op1s(kv, c, 2, o_put("k", value, i + 1, 0))
		                     .status,
		    KV_OK);
	}
	after = heap_in_use();
	per = ((double)after - (double)before) / CLIENTS;
	print_message("heap growth for %d clients: %zu bytes, %.1f bytes per "
	              "client (%s)\n",
	    CLIENTS, after - before, per,
#ifdef HAVE_ASAN
	    "ASan allocator"
#else
	    "mallinfo2"
#endif
	);
	assert_int_equal(kv_session_count(kv), CLIENTS);
	assert_int_equal(attr_of(kv, "k").version, CLIENTS + 1);
	assert_true(per <= 200.0);
	kv_free(kv);
}

/* ------------------------------------------------------------------------
 * Tests: determinism and malformed commands
 * ------------------------------------------------------------------------ */

/* Append a random (mostly valid) encoded command to the stream. */
static void *random_command(size_t *len, uint64_t *clients, unsigned nclients,
    uint64_t *seqs)
{
	char keys[6][4] = { "a", "b", "c", "d", "d/x", "d/y" };
	static char data[8][64];
	struct kv_op ops[8];
	struct kv_cmp cmps[3];
	struct kv_cmd c;
	void *buf;
	unsigned who = (unsigned)(rnd() % (nclients + 1));

	now_ns += (int64_t)(rnd() % (2 * SEC));
	switch (rnd() % 10) {
	case 0:
		c = (struct kv_cmd){ .type = KV_OP_REGISTER };
		break;
	case 1: {
		uint32_t n = (uint32_t)(rnd() % 4);

		for (uint32_t i = 0; i < n; i++)
			ops[i] = random_op(keys, 6, data[i]);
		cmps[0] = cmp(keys[rnd() % 6], rnd() % 3);
		c = cmd_txn(cmps, (uint32_t)(rnd() % 2), ops, n);
		break;
	}
	case 2:
		c = (struct kv_cmd){ .type = KV_OP_TICK };
		break;
	default:
		c = cmd_op(random_op(keys, 6, data[0]), 0, 0);
	}
	c.time_ns = now_ns;
	if (c.type != KV_OP_REGISTER && who < nclients) {
		c.client_id = clients[who];
		/* Mostly the next seq, sometimes a retry or a stale one. */
		switch (rnd() % 8) {
		case 0:
			c.seq = seqs[who];
			break;
		case 1:
			c.seq = seqs[who] > 1 ? seqs[who] - 1 : 0;
			break;
		default:
			c.seq = ++seqs[who];
		}
	}
	assert_int_equal(kv_cmd_encode_alloc(&c, &buf, len), 0);
	if (rnd() % 20 == 0)
		*len = (size_t)(rnd() % *len); /* malformed */
	return buf;
}

static void test_kv_replicas_end_byte_identical(void **state)
{
	struct kv_options opt = { .session_ttl_ns = 20 * SEC,
		.session_max = 4 };
	struct kv *a = kv_new(&opt), *b = kv_new(&opt), *c = kv_new(&opt);
	uint64_t clients[6] = { 1, 2, 3, 4, 5, 6 }, seqs[6] = { 0 };
	void *sa, *sb, *sc;
	size_t la, lb, lc;
	int n = getenv("RAFTKV_LONG") ? 100000 : 10000;

	(void)state;
	rng_state = 0xdecafbad;
	for (int i = 0; i < n; i++) {
		size_t len;
		void *cmd = random_command(&len, clients, 6, seqs);
		struct kv_result ra, rb;

		assert_int_equal(kv_apply(a, (uint64_t)i + 1, cmd, len, &ra),
		    0);
		assert_int_equal(kv_apply(b, (uint64_t)i + 1, cmd, len, &rb),
		    0);
		assert_int_equal(ra.status, rb.status);
		assert_int_equal(ra.flags, rb.flags);
		assert_int_equal(ra.client_id, rb.client_id);
		assert_memory_equal(&ra.attr.version, &rb.attr.version, 16);
		kv_result_release(&ra);
		kv_result_release(&rb);
		free(cmd);
	}
	snapshot(a, &sa, &la);
	snapshot(b, &sb, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(sa, sb, la);
	/* A third replica restored from the snapshot is the same too. */
	assert_int_equal(kv_restore(c, sa, la), 0);
	snapshot(c, &sc, &lc);
	assert_int_equal(lc, la);
	assert_memory_equal(sc, sa, la);
	assert_int_equal(kv_digest(c), kv_digest(a));
	print_message("%d commands: %zu keys, %u sessions, snapshot %zu "
	              "bytes\n",
	    n, kv_key_count(a), kv_session_count(a), la);
	free(sa);
	free(sb);
	free(sc);
	kv_free(a);
	kv_free(b);
	kv_free(c);
}

/* Samples of every command type, applied to a populated state. */
static struct kv *populated(uint64_t *client)
{
	struct kv *kv = new_kv();

	*client = reg(kv);
	op1(kv, o_put("a", "alpha", 0, 0));
	op1(kv, o_put("b", "beta", 0, 0));
	op1s(kv, *client, 1, o_put("c", "gamma", 0, 0));
	return kv;
}

static size_t sample_commands(uint64_t client, void **bufs, size_t *lens)
{
	static struct kv_op ops[3];
	static struct kv_cmp cmps[2];
	struct kv_cmd cs[12];
	struct kv_meta m = { KV_KIND_DIR, 0755, 1, 2 };
	size_t n = 0;

	/* Applied in order to populated(), each of them succeeds. */
	ops[0] = o_put("n", "new", 0, 0);
	ops[1] = o_write("z", 2, "XX", 2, 5, 0);
	ops[2] = o_rename("c", "cc", 2, 0);
	cmps[0] = cmp("z", KV_VERSION_ANY);
	cmps[1] = cmp("zz", 0);
	cs[n++] = cmd_op(o_put("a", "new value", 1, 0), client, 2);
	cs[n++] = cmd_op(o_del("b", 1, 0), 0, 0);
	cs[n++] = cmd_op(o_write("a", 20, "write", 5, 2, 0), 0, 0);
	cs[n++] = cmd_op(o_trunc("c", 100, 1, 0), 0, 0);
	cs[n++] = cmd_op(o_meta("a", KV_META_ALL, m, 9, 3, 0), client, 3);
	cs[n++] = cmd_op(o_rename("a", "z", 4, 0), 0, 0);
	cs[n++] = cmd_txn(cmps, 2, ops, 3);
	cs[n++] = cmd_op(o_link("n", "nl", 0, KV_F_ANYVER), client, 4);
	cs[n++] = cmd_op(o_del("n", 0, KV_F_ANYVER), 0, 0);
	cs[n++] = (struct kv_cmd){ .type = KV_OP_REGISTER, .time_ns = now_ns };
	cs[n++] = (struct kv_cmd){ .type = KV_OP_TICK, .time_ns = now_ns + 1 };
	cs[n++] =
	    cmd_op((struct kv_op){ .type = KV_OP_GET, .key = "z", .keylen = 1 },
	        0, 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(kv_cmd_encode_alloc(&cs[i], &bufs[i],
		                     &lens[i]),
		    0);
	return n;
}

static void test_kv_malformed_commands_change_nothing(void **state)
{
	uint64_t client;
	struct kv *kv = populated(&client);
	void *bufs[12];
	size_t lens[12], n = sample_commands(client, bufs, lens);
	uint64_t before = kv_digest(kv);
	long malformed = 0, valid = 0;

	(void)state;
	/* Every truncation of every sample. */
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < lens[i]; k++) {
			void *copy = malloc(k + 1);
			struct kv_result r;

			memcpy(copy, bufs[i], k);
			r = apply_raw(kv, copy, k);
			assert_int_equal(r.status, KV_EMALFORMED);
			free(copy);
		}
	}
	assert_int_equal(kv_digest(kv), before);
	/* Seeded random mutations: no crash; malformed ones change nothing. */
	rng_state = 0xbadc0de;
	for (int round = 0; round < (getenv("RAFTKV_LONG") ? 100000 : 10000);
	     round++) {
		size_t i = (size_t)(rnd() % n);
		unsigned char *m = malloc(lens[i]);
		uint64_t d0 = kv_digest(kv);
		struct kv_result r;

		memcpy(m, bufs[i], lens[i]);
		for (int f = 1 + (int)(rnd() % 3); f > 0; f--)
			m[rnd() % lens[i]] ^= (unsigned char)(1 + rnd() % 255);
		r = apply_raw(kv, m, lens[i]);
		if (r.status == KV_EMALFORMED) {
			assert_int_equal(kv_digest(kv), d0);
			malformed++;
		} else {
			valid++;
		}
		kv_result_release(&r);
		free(m);
	}
	print_message("mutated commands: %ld malformed (no change), %ld "
	              "well-formed\n",
	    malformed, valid);
	assert_true(malformed > 0 && valid > 0);
	for (size_t i = 0; i < n; i++)
		free(bufs[i]);
	kv_free(kv);
}

static void test_kv_apply_refuses_old_index(void **state)
{
	struct kv *kv = new_kv();
	struct kv_cmd c = cmd_op(o_put("k", "v", 0, 0), 0, 0);
	struct kv_result r;
	void *buf;
	size_t len;

	(void)state;
	assert_int_equal(kv_cmd_encode_alloc(&c, &buf, &len), 0);
	assert_int_equal(kv_apply(kv, 0, buf, len, &r), -EINVAL);
	assert_int_equal(kv_apply(kv, 10, buf, len, &r), 0);
	assert_int_equal(kv_apply(kv, 10, buf, len, &r), -EINVAL);
	assert_int_equal(kv_apply(kv, 9, buf, len, &r), -EINVAL);
	assert_int_equal(attr_of(kv, "k").version, 1);
	assert_int_equal(kv_applied_index(kv), 10);
	/* A malformed entry still consumes its index. */
	assert_int_equal(kv_apply(kv, 11, buf, 3, &r), 0);
	assert_int_equal(r.status, KV_EMALFORMED);
	assert_int_equal(kv_applied_index(kv), 11);
	free(buf);
	kv_free(kv);
}

/* ------------------------------------------------------------------------
 * Tests: snapshots
 * ------------------------------------------------------------------------ */

static void test_kv_snapshot_round_trip(void **state)
{
	struct kv *kv = new_kv(), *copy = new_kv();
	static unsigned char big[300000];
	struct kv_meta m = { KV_KIND_SYMLINK, 0777, 3, 4 };
	void *s1, *s2;
	size_t l1, l2;
	uint64_t c1, c2;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 31 + i / 1000);
	c1 = reg(kv);
	c2 = reg(kv);
	op1s(kv, c1, 1, o_put("small", "s", 0, 0));
	op1s(kv, c2, 7, o_put("big", NULL, 0, 0));
	op1(kv, o_write("big", 0, big, sizeof(big), 1, 0));
	op1(kv, o_put("empty", NULL, 0, 0));
	op1(kv, o_put("link", "target", 0, 0));
	op1(kv, o_meta("link", KV_META_ALL, m, -7, 1, 0));
	op1(kv, o_put("gone", "x", 0, 0));
	op1(kv, o_del("gone", 1, 0));
	snapshot(kv, &s1, &l1);
	assert_int_equal(kv_restore(copy, s1, l1), 0);
	assert_int_equal(kv_digest(copy), kv_digest(kv));
	assert_int_equal(kv_applied_index(copy), kv_applied_index(kv));
	assert_int_equal(kv_key_count(copy), 4);
	assert_value(copy, "big", big, sizeof(big));
	assert_value(copy, "empty", "", 0);
	{
		struct kv_attr x = attr_of(copy, "link"),
		               y = attr_of(kv, "link");

		assert_int_equal(x.version, y.version);
		assert_int_equal(x.inode, y.inode);
		assert_int_equal(x.mtime_ns, -7);
		assert_int_equal(x.ctime_ns, y.ctime_ns);
		assert_int_equal(x.mode, 0777);
		assert_int_equal(x.uid, 3);
		assert_int_equal(x.gid, 4);
		assert_int_equal(x.kind, KV_KIND_SYMLINK);
	}
	snapshot(copy, &s2, &l2);
	assert_int_equal(l2, l1);
	assert_memory_equal(s2, s1, l1);
	/* Counters came along: the same next inode on both. */
	assert_int_equal(op1(copy, o_put("n", "", 0, 0)).attr.inode,
	    op1(kv, o_put("n", "", 0, 0)).attr.inode);
	/* Restoring replaces everything (not a merge). */
	assert_int_equal(kv_restore(kv, s1, l1), 0);
	assert_false(exists(kv, "n"));
	print_message("snapshot of 4 keys (one of 300 kB): %zu bytes\n", l1);
	free(s1);
	free(s2);
	kv_free(kv);
	kv_free(copy);
}

/*
 * The two-step snapshot (kv_snapshot_begin/finish): the state as it was at
 * begin, whatever is applied before finish, byte for byte what
 * kv_snapshot() made at that point; and finish with no output only frees.
 */
static void test_kv_snapshot_in_two_steps(void **state)
{
	struct kv *kv = new_kv(), *copy = new_kv();
	static unsigned char big[200000];
	void *view, *view2, *s1, *s2;
	size_t l1, l2;
	uint64_t d, c;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + i / 300);
	c = reg(kv);
	op1s(kv, c, 1, o_put("a", "1", 0, 0));
	op1(kv, o_put("big", NULL, 0, 0));
	op1(kv, o_write("big", 0, big, sizeof(big), 1, 0));
	op1(kv, o_link("big", "b2", 0, KV_F_ANYVER));
	d = kv_digest(kv);
	snapshot(kv, &s1, &l1);
	assert_int_equal(kv_snapshot_begin(kv, &view), 0);
	/* Changes after the capture are not in it. */
	op1(kv, o_write("big", 5, "ZZZ", 3, 0, KV_F_ANYVER));
	op1(kv, o_put("later", "x", 0, 0));
	assert_true(kv_digest(kv) != d);
	assert_int_equal(kv_snapshot_finish(kv, view, &s2, &l2), 0);
	assert_int_equal(l2, l1);
	assert_memory_equal(s2, s1, l1);
	assert_int_equal(kv_restore(copy, s2, l2), 0);
	assert_int_equal(kv_digest(copy), d);
	assert_false(exists(copy, "later"));
	assert_value(copy, "b2", big, sizeof(big));
	/* Dropped unfinished: nothing leaks (the sanitizer build checks). */
	assert_int_equal(kv_snapshot_begin(kv, &view2), 0);
	assert_int_equal(kv_snapshot_finish(kv, view2, NULL, NULL), 0);
	free(s1);
	free(s2);
	kv_free(kv);
	kv_free(copy);
}

static void test_kv_snapshot_of_empty_state_is_small(void **state)
{
	struct kv *kv = new_kv(), *copy = new_kv();
	void *s;
	size_t l;

	(void)state;
	snapshot(kv, &s, &l);
	print_message("empty snapshot: %zu bytes\n", l);
	assert_true(l < 100);
	assert_int_equal(kv_restore(copy, s, l), 0);
	assert_int_equal(kv_key_count(copy), 0);
	free(s);
	/* The 4C size test: one client, one small key: far under 500 B. */
	reg(kv);
	op1s(kv, 1, 1, o_put("x", "1", 0, 0));
	snapshot(kv, &s, &l);
	print_message("one key, one session: %zu bytes\n", l);
	assert_true(l < 200);
	free(s);
	kv_free(kv);
	kv_free(copy);
}

/* Every single-byte change and every truncation of a snapshot is refused
 * (or, for zstd framing bits that do not change the content, yields the
 * same state); the current state always survives. */
static void test_kv_corrupt_snapshot_is_refused_state_kept(void **state)
{
	uint64_t client;
	struct kv *src = populated(&client), *kv = new_kv();
	unsigned char *snap, *bad;
	size_t len;
	uint64_t mine, theirs;
	int refused = 0, same = 0;

	(void)state;
	op1(src,
	    o_put("long", "0123456789012345678901234567890123456789", 0, 0));
	theirs = kv_digest(src);
	snapshot(src, (void **)&snap, &len);
	op1(kv, o_put("mine", "keep me", 0, 0));
	mine = kv_digest(kv);
	bad = malloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int rc;

			memcpy(bad, snap, len);
			bad[i] ^= (unsigned char)(1u << bit);
			rc = kv_restore(kv, bad, len);
			if (rc == 0) {
				/* Only a harmless framing bit can pass. */
				assert_int_equal(kv_digest(kv), theirs);
				same++;
				assert_int_equal(kv_restore(kv, NULL, 0),
				    -EBADMSG);
				kv_free(kv);
				kv = new_kv();
				op1(kv, o_put("mine", "keep me", 0, 0));
				continue;
			}
			assert_true(rc == -EBADMSG || rc == -ENOTSUP);
			assert_int_equal(kv_digest(kv), mine);
			refused++;
		}
	}
	for (size_t k = 0; k < len; k++) {
		memcpy(bad, snap, k);
		assert_int_equal(kv_restore(kv, bad, k), -EBADMSG);
	}
	memcpy(bad, snap, len);
	bad[len] = 0;
	assert_int_equal(kv_restore(kv, bad, len + 1), -EBADMSG);
	assert_int_equal(kv_digest(kv), mine);
	assert_value(kv, "mine", "keep me", 7);
	print_message("%zu-byte snapshot: %d bit flips refused, %d harmless\n",
	    len, refused, same);
	assert_true(same <= 16);
	free(bad);
	free(snap);
	kv_free(src);
	kv_free(kv);
}

/* A well-formed zstd frame whose content breaks a rule is refused too. */
static void test_kv_inconsistent_snapshot_is_refused(void **state)
{
	struct kv *kv = new_kv(), *src = new_kv();
	struct keyspace *ks;
	struct kvsnap_state st;
	struct kv_rec *a, *b;
	void *snap;
	size_t len;

	(void)state;
	ks = keyspace_new();
	st = (struct kvsnap_state){ .applied_index = 5,
		.next_inode = 10,
		.ks = ks,
		.sessions = session_table_new(10, SEC) };
	a = keyspace_rec_new("a", 1, NULL);
	b = keyspace_rec_new("b", 1, NULL);
	a->ino->attr = (struct kv_attr){ .version = 1,
		.inode = 3,
		.kind = KV_KIND_FILE,
		.nlink = 1 };
	b->ino->attr = a->ino->attr;
	assert_int_equal(keyspace_insert(ks, a), 0);
	assert_int_equal(keyspace_insert(ks, b), 0);
#define REFUSED() \
	do { \
		assert_int_equal(kvsnap_encode(&st, 1, &snap, &len), 0); \
		assert_int_equal(kv_restore(kv, snap, len), -EBADMSG); \
		free(snap); \
	} while (0)
	REFUSED(); /* the same inode twice */
	b->ino->attr.inode = 4;
	st.next_inode = 4; /* inode not below the counter */
	REFUSED();
	st.next_inode = 10;
	b->ino->attr.version = 0; /* a present key at version 0 */
	REFUSED();
	b->ino->attr.version = 1;
	b->ino->attr.kind = 0;
	REFUSED();
	b->ino->attr.kind = KV_KIND_DIR;
	b->ino->attr.mode = 0170000;
	REFUSED();
	b->ino->attr.mode = 0;
	b->ino->attr.ctime_ns = -1;
	REFUSED();
	b->ino->attr.ctime_ns = 0;
	b->ino->attr.nlink = 2; /* more links than names */
	REFUSED();
	b->ino->attr.nlink = 0;
	REFUSED();
	b->ino->attr.nlink = 1;
	{ /* a second name of a's inode, which says it has one */
		struct kv_rec *c = keyspace_rec_new("c", 1, a->ino);

		assert_non_null(c);
		assert_int_equal(keyspace_insert(ks, c), 0);
		REFUSED();
		a->ino->attr.nlink = 2; /* consistent: restores */
		assert_int_equal(kvsnap_encode(&st, 1, &snap, &len), 0);
		assert_int_equal(kv_restore(kv, snap, len), 0);
		free(snap);
		assert_int_equal(attr_of(kv, "c").inode, 3);
		assert_int_equal(attr_of(kv, "c").nlink, 2);
		keyspace_rec_free(keyspace_remove(ks, "c", 1));
		a->ino->attr.nlink = 1;
	}
	assert_int_equal(kvsnap_encode(&st, 1, &snap, &len), 0);
	assert_int_equal(kv_restore(kv, snap, len), 0);
	assert_int_equal(kv_applied_index(kv), 5);
	free(snap);
	/* A session newer than the committed clock. */
	session_register(st.sessions, 100, &(uint64_t){ 0 });
	REFUSED();
	st.clock_ns = 100;
	assert_int_equal(kvsnap_encode(&st, 1, &snap, &len), 0);
	assert_int_equal(kv_restore(kv, snap, len), 0);
	free(snap);
#undef REFUSED
	keyspace_free(ks);
	session_table_free(st.sessions);
	kv_free(kv);
	kv_free(src);
}

/* ------------------------------------------------------------------------
 * Tests: allocation failures
 * ------------------------------------------------------------------------ */

/* The quota count of @kv (kv.h, QUOTA). */
static uint64_t usage(struct kv *kv)
{
	uint64_t used, quota;

	kv_usage(kv, &used, &quota);
	return used;
}

/* Apply @buf with the Nth allocation failing, N = 0, 1, ... until it
 * succeeds: every failure is -ENOMEM and leaves no trace (the quota count
 * included). */
static unsigned apply_with_failures(struct kv *kv, const void *buf, size_t len)
{
	unsigned failures = 0;

	for (long n = 0;; n++) {
		uint64_t d0 = kv_digest(kv), i0 = kv_applied_index(kv);
		uint64_t u0 = usage(kv);
		struct kv_result r;
		int rc;

		fail_in = n;
		failed = 0;
		rc = kv_apply(kv, i0 + 1, buf, len, &r);
		fail_in = -1;
		if (rc == 0) {
			kv_result_release(&r);
			return failures;
		}
		assert_int_equal(rc, -ENOMEM);
		assert_int_equal(failed, 1);
		assert_int_equal(kv_digest(kv), d0);
		assert_int_equal(usage(kv), u0);
		assert_int_equal(kv_applied_index(kv), i0);
		assert_int_equal(r.status, KV_OK); /* reset, nothing to free */
		assert_null(r.value);
		failures++;
	}
}

static void test_kv_apply_enomem_changes_nothing(void **state)
{
	uint64_t client;
	struct kv *kv, *ref;
	void *bufs[12];
	size_t lens[12], n;
	unsigned total = 0;

	(void)state;
	if (!can_inject())
		skip(); /* not linked with --wrap=malloc,calloc,realloc */
	kv = populated(&client);
	ref = populated(&client);
	n = sample_commands(client, bufs, lens);
	for (size_t i = 0; i < n; i++) {
		struct kv_result r = apply_raw(ref, bufs[i], lens[i]);

		assert_int_equal(r.status, KV_OK);
		kv_result_release(&r);
		total += apply_with_failures(kv, bufs[i], lens[i]);
		/* After the retries, the same state as without failures. */
		assert_int_equal(kv_digest(kv), kv_digest(ref));
		assert_int_equal(usage(kv), usage(ref));
		free(bufs[i]);
	}
	print_message("%u injected allocation failures, none left a trace\n",
	    total);
	assert_true(total >= 8);
	kv_free(kv);
	kv_free(ref);
}

static void test_kv_txn_enomem_midway_undoes(void **state)
{
	struct kv *kv = new_kv(), *ref = new_kv();
	struct kv_op ops[8];
	struct kv_cmd c;
	void *buf;
	size_t len;
	char key[16];

	(void)state;
	if (!can_inject())
		skip();
	/* Enough keys for node splits to allocate inside the txn. */
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%05d", i * 2);
		op1(kv, o_put(key, "v", 0, 0));
		op1(ref, o_put(key, "v", 0, 0));
	}
	ops[0] = o_put("k00001", "new", 0, 0);
	ops[1] = o_write("k00002", 5, "w", 1, 1, 0);
	ops[2] = o_del("k00004", 1, 0);
	ops[3] = o_rename("k00006", "k00007", 1, 0);
	ops[4] = o_trunc("k00008", 10, 1, 0);
	ops[5] = o_put("k00003", "x", 0, 0);
	ops[6] = o_link("k00010", "k00011", 1, 0);
	ops[7] = o_link("k00012", "k00006", 1,
	    0); /* over a renamed-away name */
	c = cmd_txn(NULL, 0, ops, 8);
	assert_int_equal(kv_cmd_encode_alloc(&c, &buf, &len), 0);
	assert_true(apply_with_failures(kv, buf, len) >= 6);
	apply_raw(ref, buf, len);
	assert_int_equal(kv_digest(kv), kv_digest(ref));
	assert_int_equal(usage(kv), usage(ref));
	free(buf);
	kv_free(kv);
	kv_free(ref);
}

static void test_kv_rename_tree_enomem_undoes(void **state)
{
	struct kv *kv = new_kv(), *ref = new_kv();
	struct kv_op ops[2];
	struct kv_cmd c;
	void *buf;
	size_t len;
	char key[32];

	(void)state;
	if (!can_inject())
		skip();
	/* Enough keys that moving them splits nodes (allocations) midway. */
	op1(kv, o_put("/big", NULL, 0, 0));
	op1(ref, o_put("/big", NULL, 0, 0));
	for (int i = 0; i < 1500; i++) {
		snprintf(key, sizeof(key), "/big/f%05d", i);
		op1(kv, o_put(key, "v", 0, 0));
		op1(ref, o_put(key, "v", 0, 0));
	}
	/* Alone... */
	c = cmd_op(o_rename("/big", "/moved", 1, KV_F_TREE), 0, 0);
	assert_int_equal(kv_cmd_encode_alloc(&c, &buf, &len), 0);
	assert_true(apply_with_failures(kv, buf, len) >= 3);
	apply_raw(ref, buf, len);
	assert_int_equal(kv_digest(kv), kv_digest(ref));
	free(buf);
	assert_value(kv, "/moved/f01499", "v", 1);
	/* ...and inside a transaction. */
	ops[0] = o_put("/first", "1", 0, 0);
	ops[1] = o_rename("/moved", "/again", 0, KV_F_TREE | KV_F_ANYVER);
	c = cmd_txn(NULL, 0, ops, 2);
	assert_int_equal(kv_cmd_encode_alloc(&c, &buf, &len), 0);
	assert_true(apply_with_failures(kv, buf, len) >= 3);
	apply_raw(ref, buf, len);
	assert_int_equal(kv_digest(kv), kv_digest(ref));
	free(buf);
	assert_value(kv, "/again/f00000", "v", 1);
	assert_int_equal(usage(kv), usage(ref));
	kv_free(kv);
	kv_free(ref);
}

static void test_kv_restore_enomem_keeps_state(void **state)
{
	uint64_t client;
	struct kv *src, *kv;
	void *snap;
	size_t len;
	uint64_t mine;
	unsigned failures = 0;

	(void)state;
	if (!can_inject())
		skip();
	src = populated(&client);
	kv = new_kv();
	op1(kv, o_put("mine", "x", 0, 0));
	mine = kv_digest(kv);
	snapshot(src, &snap, &len);
	for (long n = 0;; n++) {
		int rc;

		fail_in = n;
		rc = kv_restore(kv, snap, len);
		fail_in = -1;
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_int_equal(kv_digest(kv), mine);
		failures++;
	}
	assert_int_equal(kv_digest(kv), kv_digest(src));
	/* And a snapshot whose buffer cannot be allocated. */
	for (long n = 0;; n++) {
		void *s2;
		size_t l2;
		int rc;

		fail_in = n;
		rc = kv_snapshot(kv, &s2, &l2);
		fail_in = -1;
		if (rc == 0) {
			assert_int_equal(l2, len);
			free(s2);
			break;
		}
		assert_int_equal(rc, -ENOMEM);
	}
	print_message("restore: %u allocation failures survived\n", failures);
	assert_true(failures > 5);
	free(snap);
	kv_free(src);
	kv_free(kv);
}

/* ------------------------------------------------------------------------
 * Tests: concurrency smoke test (readers while applying)
 * ------------------------------------------------------------------------ */

struct reader_arg {
	struct kv *kv;
	volatile bool *stop;
	atomic_long reads;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	char buf[64];

	while (!*a->stop) {
		long n = 0;

		kv_read(a->kv, "k", 1, 0, buf, sizeof(buf), NULL);
		kv_list(a->kv, "", 0, NULL, 0, 0, -1, count_cb, &n);
		atomic_fetch_add(&a->reads, 1);
	}
	return NULL;
}

static void test_kv_reads_run_beside_apply(void **state)
{
	struct kv *kv = new_kv();
	volatile bool stop = false;
	struct reader_arg args[2] = { { kv, &stop, 0 }, { kv, &stop, 0 } };
	pthread_t th[2];
	char key[16];

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]),
		    0);
	/* Apply until both readers have read beside the writes: at least
	 * 3000 ops, and as long as the scheduler needs to run the readers
	 * (bounded: readers stuck behind the writer's lock still fail). */
	for (int i = 0; i < 3000 ||
	     (i < 3000000 &&
	         (atomic_load(&args[0].reads) < 10 ||
	             atomic_load(&args[1].reads) < 10));
	     i++) {
		snprintf(key, sizeof(key), "k%d", i % 50);
		op1(kv, o_put(key, "value", 0, KV_F_ANYVER));
		op1(kv,
		    o_write("k", (uint64_t)(i % 40), "x", 1, 0, KV_F_ANYVER));
		if (i % 7 == 0)
			op1(kv, o_del(key, 0, KV_F_ANYVER));
	}
	stop = true;
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&args[0].reads) >= 10 &&
	    atomic_load(&args[1].reads) >= 10);
	kv_free(kv);
}

/* ------------------------------------------------------------------------
 * Quota (kv.h, QUOTA)
 * ------------------------------------------------------------------------ */

/* What a key of @keylen bytes with @size value bytes counts for. */
#define USE(keylen, size) ((uint64_t)(keylen) + (size) + KV_KEY_OVERHEAD)

static struct kv *new_kv_quota(uint64_t quota)
{
	struct kv_options o = { .quota = quota };
	struct kv *kv = kv_new(&o);

	assert_non_null(kv);
	return kv;
}

struct usage_sum {
	uint64_t sum;
	uint64_t seen[1024]; /* inodes with more names, counted already */
	size_t nseen;
};

static int sum_cb(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	struct usage_sum *u = arg;
	bool counted = false;

	(void)key;
	(void)value;
	for (size_t i = 0; attr->nlink > 1 && i < u->nseen; i++)
		counted = counted || u->seen[i] == attr->inode;
	if (attr->nlink > 1 && !counted) {
		assert_true(u->nseen < 1024);
		u->seen[u->nseen++] = attr->inode;
	}
	u->sum += USE(keylen, counted ? 0 : attr->size);
	return 0;
}

/* The usage, counted from scratch over every key (a value once per
 * inode). */
static uint64_t used_counted(struct kv *kv)
{
	static struct usage_sum u;

	u.sum = 0;
	u.nseen = 0;
	kv_list(kv, NULL, 0, NULL, 0, 0, -1, sum_cb, &u);
	return u.sum;
}

static void test_kv_quota_default_and_usage(void **state)
{
	struct kv *kv = new_kv();
	uint64_t used, quota;

	(void)state;
	kv_usage(kv, &used, &quota);
	assert_int_equal(used, 0);
	assert_int_equal(quota, KV_QUOTA_DEFAULT);
	op1(kv, o_put("abc", "12345", 0, 0));
	assert_int_equal(usage(kv), USE(3, 5));
	kv_free(kv);
}

static void test_kv_quota_exact_boundary(void **state)
{
	struct kv *kv = new_kv_quota(USE(1, 10) + USE(1, 0));
	struct kv_result r;
	uint64_t d0;

	(void)state;
	assert_int_equal(op1(kv, o_put("a", "0123456789", 0, 0)).status, KV_OK);
	/* Exactly up to the quota: fine. */
	assert_int_equal(op1(kv, o_put("b", NULL, 0, 0)).status, KV_OK);
	assert_int_equal(usage(kv), USE(1, 10) + USE(1, 0));

	/* One byte more, by any mutation: ErrNoSpace, nothing changes. */
	d0 = kv_digest(kv);
	r = op1(kv, o_write("b", 0, "x", 1, 1, 0));
	assert_int_equal(r.status, KV_ENOSPC);
	assert_int_equal(op1(kv, o_trunc("b", 1, 1, 0)).status, KV_ENOSPC);
	assert_int_equal(op1(kv, o_put("b", "x", 1, 0)).status, KV_ENOSPC);
	assert_int_equal(op1(kv, o_put("a", "0123456789x", 1, 0)).status,
	    KV_ENOSPC);
	assert_int_equal(op1(kv, o_write("a", 10, "x", 1, 1, 0)).status,
	    KV_ENOSPC);
	assert_int_equal(op1(kv, o_put("c", NULL, 0, 0)).status, KV_ENOSPC);
	assert_int_equal(op1(kv, o_rename("a", "aa", 1, 0)).status, KV_ENOSPC);
	assert_int_equal(op1(kv, o_rename("a", "aa", 1, KV_F_TREE)).status,
	    KV_ENOSPC);
	assert_int_equal(kv_digest(kv), d0);
	assert_int_equal(usage(kv), USE(1, 10) + USE(1, 0));
	assert_value(kv, "a", "0123456789", 10);
	assert_int_equal(attr_of(kv, "b").version, 1);

	/* The command's own checks come first. */
	assert_int_equal(op1(kv, o_write("b", 0, "x", 1, 7, 0)).status,
	    KV_EVERSION);
	assert_int_equal(op1(kv, o_write("zz", 0, "x", 1, 1, 0)).status,
	    KV_ENOKEY);

	/* Not growing is fine at the quota: same size, same-length rename,
	 * setmeta. */
	assert_int_equal(op1(kv, o_put("a", "abcdefghij", 1, 0)).status, KV_OK);
	assert_int_equal(op1(kv, o_write("a", 3, "XY", 2, 2, 0)).status, KV_OK);
	assert_int_equal(op1(kv, o_rename("a", "c", 3, 0)).status, KV_OK);
	assert_int_equal(op1(kv, o_meta("c", KV_META_MODE, file_meta, 0, 4, 0))
	                     .status,
	    KV_OK);
	assert_value(kv, "c", "abcXYfghij", 10);
	/* Shrinking frees room for growing. */
	assert_int_equal(op1(kv, o_trunc("c", 9, 5, 0)).status, KV_OK);
	assert_int_equal(op1(kv, o_write("b", 0, "x", 1, 1, 0)).status, KV_OK);
	assert_int_equal(usage(kv), USE(1, 9) + USE(1, 1));
	assert_int_equal(usage(kv), used_counted(kv));
	kv_free(kv);
}

static void test_kv_quota_txn_all_or_nothing(void **state)
{
	struct kv *kv = new_kv_quota(USE(2, 20) + USE(2, 0));
	struct kv_op ops[3];
	struct kv_result r;
	uint64_t d0;

	(void)state;
	op1(kv, o_put("k1", "0123456789", 0, 0));
	d0 = kv_digest(kv);

	/* Op 0 fits, op 1 does not: the txn fails as a whole. */
	ops[0] = o_put("k2", NULL, 0, 0);
	ops[1] = o_write("k1", 10, "0123456789x", 11, 1, 0);
	r = txn(kv, NULL, 0, ops, 2);
	assert_int_equal(r.status, KV_ENOSPC);
	assert_int_equal(r.fail_op, 1);
	assert_int_equal(r.attr.version, 0);
	assert_int_equal(kv_digest(kv), d0); /* next inode included */
	assert_false(exists(kv, "k2"));
	assert_int_equal(usage(kv), USE(2, 10));

	/* Over the quota half way, within it at the end: OK. */
	ops[0] = o_put("k3", "0123456789012345678901234567890123456789", 0, 0);
	ops[1] = o_del("k1", 1, 0);
	ops[2] = o_trunc("k3", 20, 1, 0);
	r = txn(kv, NULL, 0, ops, 3);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(usage(kv), USE(2, 20));

	/* A failing op is still that op's status, and undoes the usage. */
	ops[0] = o_del("k3", 2, 0);
	ops[1] = o_put("k4", NULL, 7, 0);
	r = txn(kv, NULL, 0, ops, 2);
	assert_int_equal(r.status, KV_ENOKEY);
	assert_int_equal(usage(kv), USE(2, 20));
	assert_int_equal(usage(kv), used_counted(kv));
	kv_free(kv);
}

static void test_kv_quota_tree_rename(void **state)
{
	struct kv *kv = new_kv_quota(USE(2, 0) + USE(4, 3) + USE(4, 3));
	uint64_t d0;

	(void)state;
	op1(kv, o_put("/d", NULL, 0, 0));
	op1(kv, o_put("/d/1", "one", 0, 0));
	op1(kv, o_put("/d/2", "two", 0, 0));
	d0 = kv_digest(kv);
	/* Three keys one byte longer each. */
	assert_int_equal(op1(kv, o_rename("/d", "/dd", 1, KV_F_TREE)).status,
	    KV_ENOSPC);
	assert_int_equal(kv_digest(kv), d0);
	assert_int_equal(op1(kv, o_rename("/d", "/e", 1, KV_F_TREE)).status,
	    KV_OK);
	assert_value(kv, "/e/2", "two", 3);
	assert_int_equal(usage(kv), used_counted(kv));
	kv_free(kv);
}

static void test_kv_quota_above_it_deletes_and_reads_work(void **state)
{
	struct kv *big = new_kv(), *kv = new_kv_quota(USE(1, 5));
	void *snap;
	size_t len;

	(void)state;
	/* A snapshot taken with the default quota (the format has no quota
	 * field: every snapshot restores), restored under a smaller one. */
	op1(big, o_put("a", "aaaaa", 0, 0));
	op1(big, o_put("b", "bbbbbbbbbb", 0, 0));
	snapshot(big, &snap, &len);
	assert_int_equal(kv_restore(kv, snap, len), 0);
	free(snap);
	assert_int_equal(usage(kv), USE(1, 5) + USE(1, 10));
	assert_int_equal(kv_digest(kv), kv_digest(big));

	/* Reads work; growing fails; shrinking and deleting work. */
	assert_value(kv, "b", "bbbbbbbbbb", 10);
	assert_int_equal(op1(kv, o_write("a", 5, "x", 1, 1, 0)).status,
	    KV_ENOSPC);
	assert_int_equal(op1(kv, o_trunc("b", 4, 1, 0)).status, KV_OK);
	assert_int_equal(op1(kv, o_put("b", "bbb", 2, 0)).status, KV_OK);
	assert_int_equal(op1(kv, o_put("b", "bbbb", 3, 0)).status, KV_ENOSPC);
	assert_int_equal(op1(kv, o_del("b", 3, 0)).status, KV_OK);
	assert_int_equal(usage(kv), USE(1, 5));
	assert_int_equal(op1(kv, o_put("c", NULL, 0, 0)).status, KV_ENOSPC);
	kv_free(big);
	kv_free(kv);
}

static void test_kv_quota_usage_survives_snapshots(void **state)
{
	struct kv *kv = new_kv_quota(4096), *copy = new_kv_quota(4096);
	unsigned char buf[64];
	void *snap;
	size_t len;
	int refused = 0;

	(void)state;
	rng_state = 0x5eed;
	/* Random mutations, many refused by the quota: the running count
	 * stays equal to a count from scratch, and to a restored copy's. */
	for (int i = 0; i < 3000; i++) {
		char k[8], k2[8];
		struct kv_op ops[2];
		struct kv_result r;
		uint64_t n = rnd() % sizeof(buf);

		snprintf(k, sizeof(k), "/%u", (unsigned)(rnd() % 16));
		snprintf(k2, sizeof(k2), "/%u", (unsigned)(rnd() % 200));
		memset(buf, 'a' + i % 26, sizeof(buf));
		switch (rnd() % 7) {
		case 0:
			r = op1(kv, o_put(k, NULL, 0, KV_F_ANYVER));
			break;
		case 6:
			r = op1(kv, o_link(k, k2, 0, KV_F_ANYVER));
			break;
		case 1:
			r = op1(kv,
			    o_write(k, rnd() % 128, buf, n, 0, KV_F_ANYVER));
			break;
		case 2:
			r = op1(kv, o_trunc(k, rnd() % 200, 0, KV_F_ANYVER));
			break;
		case 3:
			r = op1(kv, o_del(k, 0, KV_F_ANYVER));
			break;
		case 4:
			r = op1(kv, o_rename(k, k2, 0, KV_F_ANYVER));
			break;
		default:
			ops[0] = o_write(k, 0, buf, n, 0, KV_F_ANYVER);
			ops[1] = o_rename(k, k2, 0, KV_F_ANYVER);
			r = txn(kv, NULL, 0, ops, 2);
			break;
		}
		refused += r.status == KV_ENOSPC;
		assert_int_equal(usage(kv), used_counted(kv));
		assert_true(usage(kv) <= 4096);
	}
	assert_true(refused > 100); /* the quota was hit, often */
	snapshot(kv, &snap, &len);
	assert_int_equal(kv_restore(copy, snap, len), 0);
	free(snap);
	assert_int_equal(usage(copy), usage(kv));
	kv_free(kv);
	kv_free(copy);
}

/* ------------------------------------------------------------------------
 * Tests: hard links (LINK, nlink, names of one inode)
 * ------------------------------------------------------------------------ */

/* kv_name_of() as a string ("" when the inode has no name). */
static const char *name_of(struct kv *kv, uint64_t ino)
{
	static char key[KV_KEY_MAX + 1];
	size_t len = 0;

	if (kv_name_of(kv, ino, key, &len, NULL) != 0)
		return "";
	key[len] = 0;
	return key;
}

static void test_kv_link_semantics(void **state)
{
	struct kv *kv = new_kv();
	struct kv_attr a, b;
	struct kv_result r;
	struct kv_meta dm = { KV_KIND_DIR, 0755, 0, 0 };
	struct kv_op mk;

	(void)state;
	op1(kv, o_put("a", "hello", 0, 0));
	a = attr_of(kv, "a");
	assert_int_equal(a.nlink, 1);
	now_ns += SEC;
	r = op1(kv, o_link("a", "b", 1, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.inode, a.inode);
	assert_int_equal(r.attr.nlink, 2);
	assert_int_equal(r.attr.version, 2);
	assert_true(r.attr.ctime_ns == now_ns);
	assert_true(r.attr.mtime_ns == a.mtime_ns);
	b = attr_of(kv, "b");
	a = attr_of(kv, "a");
	assert_true(b.inode == a.inode && b.version == a.version &&
	    b.nlink == 2 && a.nlink == 2 && b.size == 5);
	assert_value(kv, "b", "hello", 5);
	assert_int_equal(kv_key_count(kv), 2);

	/* A write through one name is seen through the other. */
	r = op1(kv, o_write("b", 5, " world", 6, 2, 0));
	assert_int_equal(r.status, KV_OK);
	assert_value(kv, "a", "hello world", 11);
	assert_int_equal(attr_of(kv, "a").version, 3);
	r = op1(kv,
	    o_meta("a", KV_META_MODE, (struct kv_meta){ 0, 0600, 0, 0 }, 0, 3,
	        0));
	assert_int_equal(attr_of(kv, "b").mode, 0600);
	assert_int_equal(op1(kv, o_put("b", "new", 4, 0)).status, KV_OK);
	assert_value(kv, "a", "new", 3);

	/* The loser of a link to a taken name, and the other refusals. */
	assert_int_equal(op1(kv, o_link("a", "b", 0, KV_F_ANYVER)).status,
	    KV_EVERSION);
	assert_int_equal(op1(kv, o_link("a", "a", 0, KV_F_ANYVER)).status,
	    KV_EVERSION);
	assert_int_equal(op1(kv, o_link("x", "y", 0, KV_F_ANYVER)).status,
	    KV_ENOKEY);
	assert_int_equal(op1(kv, o_link("a", "c", 1, 0)).status, KV_EVERSION);
	mk = o_put("d", NULL, 0, 0);
	mk.meta = dm;
	op1(kv, mk);
	assert_int_equal(op1(kv, o_link("d", "e", 0, KV_F_ANYVER)).status,
	    KV_EINVAL);
	assert_false(exists(kv, "e"));
	assert_int_equal(attr_of(kv, "a").version, 5);

	/* A third name; the first name of the inode in key order. */
	assert_int_equal(op1(kv, o_link("b", "c", 5, 0)).status, KV_OK);
	assert_int_equal(attr_of(kv, "c").nlink, 3);
	assert_string_equal(name_of(kv, a.inode), "a");

	/* Deleting a name: the others stay, nlink - 1, version + 1. */
	now_ns += SEC;
	r = op1(kv, o_del("a", 6, 0));
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.version, 0);
	assert_int_equal(r.attr.nlink, 2);
	assert_false(exists(kv, "a"));
	b = attr_of(kv, "b");
	assert_int_equal(b.nlink, 2);
	assert_int_equal(b.version, 7);
	assert_true(b.ctime_ns == now_ns);
	assert_value(kv, "c", "new", 3);
	assert_string_equal(name_of(kv, a.inode), "b");
	assert_int_equal(op1(kv, o_del("b", 7, 0)).status, KV_OK);
	assert_string_equal(name_of(kv, a.inode), "c");
	assert_int_equal(attr_of(kv, "c").nlink, 1);
	r = op1(kv, o_del("c", 0, KV_F_ANYVER));
	assert_int_equal(r.attr.nlink, 0);
	assert_string_equal(name_of(kv, a.inode), "");
	assert_int_equal(kv_key_count(kv), 1);
	assert_int_equal(usage(kv), USE(1, 0));
	/* A name created again is a new inode. */
	op1(kv, o_put("a", "x", 0, 0));
	assert_true(attr_of(kv, "a").inode > a.inode);
	kv_free(kv);
}

static void test_kv_rename_with_links(void **state)
{
	struct kv *kv = new_kv();
	struct kv_attr x, z;

	(void)state;
	op1(kv, o_put("x", "xx", 0, 0));
	op1(kv, o_link("x", "y", 0, KV_F_ANYVER));
	op1(kv, o_put("z", "zz", 0, 0));
	x = attr_of(kv, "x");
	z = attr_of(kv, "z");
	/* Renaming over a linked name drops that name only. */
	assert_int_equal(op1(kv, o_rename("z", "y", 0, KV_F_ANYVER)).status,
	    KV_OK);
	assert_int_equal(attr_of(kv, "y").inode, z.inode);
	assert_value(kv, "y", "zz", 2);
	assert_int_equal(attr_of(kv, "x").nlink, 1);
	assert_int_equal(attr_of(kv, "x").version, x.version + 1);
	assert_value(kv, "x", "xx", 2);
	assert_string_equal(name_of(kv, x.inode), "x");
	assert_string_equal(name_of(kv, z.inode), "y");
	/* Renaming a linked name moves that name only. */
	op1(kv, o_link("x", "w", 0, KV_F_ANYVER));
	assert_int_equal(op1(kv, o_rename("x", "v", 0, KV_F_ANYVER)).status,
	    KV_OK);
	assert_int_equal(attr_of(kv, "v").inode, x.inode);
	assert_int_equal(attr_of(kv, "v").nlink, 2);
	assert_false(exists(kv, "x"));
	assert_string_equal(name_of(kv, x.inode), "v");
	/* Two names of one inode: as rename(2), OK and nothing changes
	 * (before the fix the source went and nlink dropped to 1); as a
	 * tree rename and inside a txn too. */
	{
		struct kv_attr v = attr_of(kv, "v");
		uint64_t d0 = kv_digest(kv);
		struct kv_op ops[1] = { o_rename("v", "w", 0, KV_F_ANYVER) };
		struct kv_result r = op1(kv, ops[0]);

		assert_int_equal(r.status, KV_OK);
		assert_int_equal(r.attr.inode, v.inode);
		assert_int_equal(r.attr.version, v.version);
		assert_true(exists(kv, "v"));
		assert_true(exists(kv, "w"));
		assert_int_equal(attr_of(kv, "w").nlink, 2);
		assert_int_equal(attr_of(kv, "v").version, v.version);
		r = op1(kv, o_rename("w", "v", v.version, KV_F_TREE));
		assert_int_equal(r.status, KV_OK);
		assert_int_equal(attr_of(kv, "w").nlink, 2);
		assert_int_equal(txn(kv, NULL, 0, ops, 1).status, KV_OK);
		assert_true(kv_digest(kv) == d0);
		assert_true(exists(kv, "v"));
		assert_int_equal(attr_of(kv, "v").nlink, 2);
		assert_int_equal(attr_of(kv, "v").version, v.version);
		assert_int_equal(usage(kv), used_counted(kv));
	}
	assert_int_equal(op1(kv, o_del("v", 0, KV_F_ANYVER)).status, KV_OK);
	assert_int_equal(attr_of(kv, "w").nlink, 1);
	assert_value(kv, "w", "xx", 2);
	/* A tree rename carries linked names along like any other. */
	op1(kv, o_put("d", NULL, 0, 0));
	op1(kv, o_link("w", "d/w", 0, KV_F_ANYVER));
	assert_int_equal(op1(kv, o_rename("d", "e", 0, KV_F_ANYVER | KV_F_TREE))
	                     .status,
	    KV_OK);
	assert_int_equal(attr_of(kv, "e/w").inode, x.inode);
	assert_int_equal(attr_of(kv, "w").nlink, 2);
	assert_int_equal(usage(kv), used_counted(kv));
	kv_free(kv);
}

/* A linked file (nlink > 1) never becomes a directory: SETMETA of kind
 * directory, and a PUT with KV_F_SETMETA, are refused ErrInvalid and
 * change nothing (before the fix both made a directory with two names);
 * a snapshot holding a directory with two names is refused as damaged. */
static void test_kv_linked_file_never_becomes_a_directory(void **state)
{
	const struct kv_meta dir = { KV_KIND_DIR, 0755, 1, 2 };
	struct kv *kv = new_kv(), *copy = new_kv();
	struct kv_op put;
	uint64_t d0;
	uint8_t *payload, *snap;
	void *s3;
	size_t l3, n, bound, clen;
	ZSTD_CCtx *cc = ZSTD_createCCtx();

	(void)state;
	op1(kv, o_put("/a", "one", 0, 0));
	assert_int_equal(op1(kv, o_link("/a", "/c", 1, 0)).status, KV_OK);
	d0 = kv_digest(kv);
	assert_int_equal(op1(kv,
	                     o_meta("/a", KV_META_KIND, dir, 0, 0, KV_F_ANYVER))
	                     .status,
	    KV_EINVAL);
	put = o_put("/c", "x", 0, KV_F_ANYVER | KV_F_SETMETA);
	put.meta = dir;
	assert_int_equal(op1(kv, put).status, KV_EINVAL);
	{
		struct kv_op ops[1] = { o_meta("/c",
		    KV_META_KIND | KV_META_MODE, dir, 0, 0, KV_F_ANYVER) };
		struct kv_result r = txn(kv, NULL, 0, ops, 1);

		assert_int_equal(r.status, KV_EINVAL);
		assert_int_equal(r.fail_op, 0);
	}
	assert_int_equal(attr_of(kv, "/a").kind, KV_KIND_FILE);
	assert_int_equal(attr_of(kv, "/a").version, 2);
	assert_value(kv, "/c", "one", 3);
	assert_true(kv_digest(kv) == d0);
	/* Other fields, and the kind of a file with one name, still can. */
	assert_int_equal(op1(kv,
	                     o_meta("/a", KV_META_MODE, dir, 0, 0, KV_F_ANYVER))
	                     .status,
	    KV_OK);
	op1(kv, o_put("/s", "", 0, 0));
	assert_int_equal(op1(kv,
	                     o_meta("/s", KV_META_KIND, dir, 0, 0, KV_F_ANYVER))
	                     .status,
	    KV_OK);
	assert_int_equal(attr_of(kv, "/s").kind, KV_KIND_DIR);

	/* The snapshot, its first inode ("/a", two names) made a
	 * directory: kind is byte 52 of the attr, after the header (44
	 * bytes: index, next inode, clock, next client, 0 sessions, key
	 * count), the key ("/a": u16 + 2) and the inode number (8). */
	snapshot(kv, &s3, &l3);
	n = le_get64((uint8_t *)s3 + 16);
	payload = malloc(n);
	assert_non_null(payload);
	assert_int_equal(ZSTD_decompress(payload, n,
	                     (uint8_t *)s3 + KVSNAP_HEADER_BYTES,
	                     l3 - KVSNAP_HEADER_BYTES),
	    n);
	assert_memory_equal(payload + 46, "/a", 2);
	assert_int_equal(payload[108], KV_KIND_FILE);
	assert_int_equal(le_get32(payload + 109), 2); /* its nlink */
	bound = ZSTD_compressBound(n);
	snap = malloc(KVSNAP_HEADER_BYTES + bound);
	assert_non_null(snap);
	memcpy(snap, s3, KVSNAP_HEADER_BYTES);
	assert_false(
	    ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)));
	for (int kind = KV_KIND_FILE; kind <= KV_KIND_DIR; kind++) {
		payload[108] = (uint8_t)kind;
		clen = ZSTD_compress2(cc, snap + KVSNAP_HEADER_BYTES, bound,
		    payload, n);
		assert_false(ZSTD_isError(clen));
		assert_int_equal(kv_restore(copy, snap,
		                     KVSNAP_HEADER_BYTES + clen),
		    kind == KV_KIND_DIR ? -EBADMSG : 0);
	}
	ZSTD_freeCCtx(cc);
	free(snap);
	free(payload);
	free(s3);
	kv_free(copy);
	kv_free(kv);
}

static void test_kv_link_in_txn_and_undo(void **state)
{
	struct kv *kv = new_kv();
	struct kv_op ops[5];
	struct kv_cmp c[1];
	struct kv_result r;
	uint64_t d0, u0;
	struct kv_attr a;

	(void)state;
	op1(kv, o_put("a", "aaa", 0, 0));
	op1(kv, o_put("q", "qqq", 0, 0));
	op1(kv, o_link("q", "q2", 0, KV_F_ANYVER));
	a = attr_of(kv, "a");
	d0 = kv_digest(kv);
	u0 = usage(kv);
	/* Every kind of change to names and inodes, then a failing op. */
	ops[0] = o_link("a", "b", 1, 0);
	ops[1] = o_write("b", 0, "BBBB", 4, 2, 0);
	ops[2] = o_del("a", 0, KV_F_ANYVER);
	ops[3] = o_rename("b", "q", 0, KV_F_ANYVER);
	ops[4] = o_put("zz", "v", 9, 0); /* ErrNoKey */
	r = txn(kv, NULL, 0, ops, 5);
	assert_int_equal(r.status, KV_ENOKEY);
	assert_int_equal(r.fail_op, 4);
	assert_int_equal(kv_digest(kv), d0);
	assert_int_equal(usage(kv), u0);
	assert_int_equal(attr_of(kv, "q").nlink, 2);
	assert_string_equal(name_of(kv, a.inode), "a");
	/* The same ops without the failing one. */
	r = txn(kv, NULL, 0, ops, 4);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(r.attr.inode, a.inode); /* op 0's dst: b */
	assert_false(exists(kv, "a"));
	assert_false(exists(kv, "b"));
	assert_int_equal(attr_of(kv, "q").inode, a.inode);
	assert_int_equal(attr_of(kv, "q").nlink, 1);
	assert_value(kv, "q", "BBBB", 4);
	assert_value(kv, "q2", "qqq", 3);
	assert_int_equal(attr_of(kv, "q2").nlink, 1);
	assert_string_equal(name_of(kv, a.inode), "q");
	assert_int_equal(usage(kv), used_counted(kv));
	/* Exclusive link: a compare on the new name, and a link over a
	 * name deleted earlier in the same txn. */
	c[0] = cmp("n", 0);
	ops[0] = o_link("q", "n", 0, KV_F_ANYVER);
	ops[1] = o_del("q2", 0, KV_F_ANYVER);
	ops[2] = o_link("q", "q2", 0, KV_F_ANYVER);
	r = txn(kv, c, 1, ops, 3);
	assert_int_equal(r.status, KV_OK);
	assert_int_equal(attr_of(kv, "q2").inode, a.inode);
	assert_int_equal(attr_of(kv, "n").nlink, 3);
	r = txn(kv, c, 1, ops, 1);
	assert_int_equal(r.status, KV_EVERSION);
	assert_int_equal(r.fail_cmp, 0);
	assert_int_equal(usage(kv), used_counted(kv));
	kv_free(kv);
}

static void test_kv_quota_counts_a_linked_value_once(void **state)
{
	struct kv *kv = new_kv_quota(USE(1, 100) + USE(1, 0) + USE(2, 0));
	uint64_t d0;

	(void)state;
	op1(kv, o_put("a", NULL, 0, 0));
	assert_int_equal(op1(kv, o_trunc("a", 100, 1, 0)).status, KV_OK);
	assert_int_equal(op1(kv, o_link("a", "b", 0, KV_F_ANYVER)).status,
	    KV_OK);
	assert_int_equal(usage(kv), USE(1, 100) + USE(1, 0));
	assert_int_equal(usage(kv), used_counted(kv));
	assert_int_equal(op1(kv, o_link("a", "cc", 0, KV_F_ANYVER)).status,
	    KV_OK);
	/* Full: one more name does not fit, nothing changes. */
	d0 = kv_digest(kv);
	assert_int_equal(op1(kv, o_link("a", "d", 0, KV_F_ANYVER)).status,
	    KV_ENOSPC);
	assert_int_equal(kv_digest(kv), d0);
	/* Deleting a name gives back its key only; the last, the value. */
	op1(kv, o_del("cc", 0, KV_F_ANYVER));
	assert_int_equal(usage(kv), USE(1, 100) + USE(1, 0));
	op1(kv, o_del("a", 0, KV_F_ANYVER));
	assert_int_equal(usage(kv), USE(1, 100));
	op1(kv, o_del("b", 0, KV_F_ANYVER));
	assert_int_equal(usage(kv), 0);
	kv_free(kv);
}

static void test_kv_snapshot_with_links_round_trip(void **state)
{
	struct kv *kv = new_kv(), *copy = new_kv();
	void *s1, *s2;
	size_t l1, l2;
	char big[5000];
	struct kv_attr a;

	(void)state;
	memset(big, 'x', sizeof(big));
	op1(kv, o_put("m", NULL, 0, 0));
	op1(kv, o_write("m", 0, big, sizeof(big), 1, 0));
	op1(kv, o_link("m", "a", 0, KV_F_ANYVER)); /* before m in key order */
	op1(kv, o_link("m", "z/1", 0, KV_F_ANYVER));
	op1(kv, o_put("solo", "s", 0, 0));
	a = attr_of(kv, "m");
	snapshot(kv, &s1, &l1);
	assert_int_equal(kv_restore(copy, s1, l1), 0);
	snapshot(copy, &s2, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(s1, s2, l1);
	assert_int_equal(kv_digest(copy), kv_digest(kv));
	assert_int_equal(usage(copy), usage(kv));
	assert_int_equal(usage(copy), used_counted(copy));
	{
		struct kv_attr c = attr_of(copy, "z/1");

		assert_true(c.inode == a.inode && c.version == a.version &&
		    c.nlink == 3 && c.size == a.size &&
		    c.ctime_ns == a.ctime_ns && c.mtime_ns == a.mtime_ns);
	}
	assert_string_equal(name_of(copy, a.inode), "a");
	/* The restored names share one inode. */
	assert_int_equal(op1(copy, o_write("z/1", 0, "Y", 1, 0, KV_F_ANYVER))
	                     .status,
	    KV_OK);
	big[0] = 'Y';
	assert_value(copy, "a", big, sizeof(big));
	assert_value(copy, "m", big, sizeof(big));
	op1(copy, o_del("a", 0, KV_F_ANYVER));
	op1(copy, o_del("m", 0, KV_F_ANYVER));
	assert_int_equal(attr_of(copy, "z/1").nlink, 1);
	assert_string_equal(name_of(copy, a.inode), "z/1");
	/* The body is stored once: a second name costs its key, not 5000
	 * bytes (uncompressed payload length in the header). */
	{
		struct kv *one = new_kv();
		void *s3;
		size_t l3;

		op1(one, o_put("m", NULL, 0, 0));
		op1(one, o_write("m", 0, big, sizeof(big), 1, 0));
		op1(one, o_put("solo", "s", 0, 0));
		snapshot(one, &s3, &l3);
		assert_true(le_get64((uint8_t *)s1 + 16) <
		    le_get64((uint8_t *)s3 + 16) + 100);
		free(s3);
		kv_free(one);
	}
	free(s1);
	free(s2);
	kv_free(kv);
	kv_free(copy);
}

/* A format 1 snapshot (before hard links): every key its own inode, attr
 * without nlink.  Still restored, each inode with nlink 1. */
static void test_kv_snapshot_format_1_restores(void **state)
{
	uint8_t payload[512], *snap;
	size_t n = 0, bound, clen;
	struct kv *kv = new_kv();
	struct kv_attr a;
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	const char *keys[2] = { "/a", "/b" };

	(void)state;
	le_put64(payload + n, 9), n += 8; /* applied index */
	le_put64(payload + n, 5), n += 8; /* next inode */
	le_put64(payload + n, 100), n += 8; /* clock */
	le_put64(payload + n, 1), n += 8; /* next client id */
	le_put32(payload + n, 0), n += 4; /* sessions */
	le_put64(payload + n, 2), n += 8; /* keys */
	for (int i = 0; i < 2; i++) {
		le_put16(payload + n, 2), n += 2;
		memcpy(payload + n, keys[i], 2), n += 2;
		le_put64(payload + n, 1), n += 8; /* version */
		le_put64(payload + n, 3 + (uint64_t)i), n += 8; /* inode */
		le_put64(payload + n, 3), n += 8; /* size */
		le_put64(payload + n, 7), n += 8; /* mtime */
		le_put64(payload + n, 7), n += 8; /* ctime */
		le_put32(payload + n, 0644), n += 4;
		le_put32(payload + n, 1), n += 4;
		le_put32(payload + n, 2), n += 4;
		payload[n++] = KV_KIND_FILE;
		memcpy(payload + n, i == 0 ? "one" : "two", 3), n += 3;
	}
	le_put32(payload + n, KVSNAP_END), n += 4;
	bound = ZSTD_compressBound(n);
	snap = malloc(KVSNAP_HEADER_BYTES + bound);
	assert_non_null(snap);
	memcpy(snap, KVSNAP_MAGIC, 8);
	le_put32(snap + 8, 1);
	le_put32(snap + 12, 0);
	le_put64(snap + 16, n);
	assert_false(
	    ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)));
	clen = ZSTD_compress2(cc, snap + KVSNAP_HEADER_BYTES, bound, payload,
	    n);
	assert_false(ZSTD_isError(clen));
	assert_int_equal(kv_restore(kv, snap, KVSNAP_HEADER_BYTES + clen), 0);
	assert_int_equal(kv_applied_index(kv), 9);
	a = attr_of(kv, "/b");
	assert_int_equal(a.inode, 4);
	assert_int_equal(a.nlink, 1);
	assert_int_equal(a.uid, 1);
	assert_value(kv, "/a", "one", 3);
	assert_string_equal(name_of(kv, 3), "/a");
	assert_int_equal(usage(kv), USE(2, 3) * 2);
	/* and it goes on from there, with links */
	assert_int_equal(op1(kv, o_link("/a", "/c", 1, 0)).status, KV_OK);
	assert_int_equal(attr_of(kv, "/c").nlink, 2);
	/* The same inode twice is refused in format 1. */
	le_put64(payload + 36 + 4 + 8 + 53 + 3 + 4 + 8, 3);
	clen = ZSTD_compress2(cc, snap + KVSNAP_HEADER_BYTES, bound, payload,
	    n);
	assert_false(ZSTD_isError(clen));
	assert_int_equal(kv_restore(kv, snap, KVSNAP_HEADER_BYTES + clen),
	    -EBADMSG);
	ZSTD_freeCCtx(cc);
	free(snap);
	kv_free(kv);
}

/* A format 2 snapshot (hard links, before the lock section): restored
 * with an empty lock table, to the same state as the format 4 snapshot
 * of that state.  Made from one: the empty lock section (u32 16, then
 * 16 zero bytes: no token, no session, no inode) and the empty open
 * section (u32 4, then u32 0: no pair) cut out. */
static void test_kv_snapshot_format_2_restores(void **state)
{
	struct kv *kv = new_kv(), *copy = new_kv();
	uint8_t *payload, *snap2;
	void *s3, *again;
	size_t l3, l2, n, bound, clen, again_len;
	static const uint8_t empty[16];
	ZSTD_CCtx *cc = ZSTD_createCCtx();

	(void)state;
	op1(kv, o_put("/a", "one", 0, 0));
	op1(kv, o_put("/b", "two", 0, 0));
	assert_int_equal(op1(kv, o_link("/a", "/c", 1, 0)).status, KV_OK);
	snapshot(kv, &s3, &l3);
	assert_int_equal(le_get32((uint8_t *)s3 + 8), 4);
	n = le_get64((uint8_t *)s3 + 16);
	payload = malloc(n);
	assert_non_null(payload);
	assert_int_equal(ZSTD_decompress(payload, n,
	                     (uint8_t *)s3 + KVSNAP_HEADER_BYTES,
	                     l3 - KVSNAP_HEADER_BYTES),
	    n);
	assert_int_equal(le_get32(payload + n - 4), KVSNAP_END);
	assert_int_equal(le_get32(payload + n - 12), 4);
	assert_int_equal(le_get32(payload + n - 8), 0);
	assert_int_equal(le_get32(payload + n - 32), 16);
	assert_memory_equal(payload + n - 28, empty, 16);
	memmove(payload + n - 32, payload + n - 4, 4);
	n -= 28;
	bound = ZSTD_compressBound(n);
	snap2 = malloc(KVSNAP_HEADER_BYTES + bound);
	assert_non_null(snap2);
	memcpy(snap2, s3, 8);
	le_put32(snap2 + 8, 2);
	le_put32(snap2 + 12, 0);
	le_put64(snap2 + 16, n);
	assert_false(
	    ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)));
	clen = ZSTD_compress2(cc, snap2 + KVSNAP_HEADER_BYTES, bound, payload,
	    n);
	assert_false(ZSTD_isError(clen));
	l2 = KVSNAP_HEADER_BYTES + clen;
	assert_int_equal(kv_restore(copy, snap2, l2), 0);
	assert_true(kv_digest(copy) == kv_digest(kv));
	assert_int_equal(attr_of(copy, "/c").nlink, 2);
	assert_value(copy, "/c", "one", 3);
	snapshot(copy, &again, &again_len);
	assert_int_equal(again_len, l3);
	assert_memory_equal(again, s3, l3);
	/* Relabelled format 3, it lacks its lock section. */
	le_put32(snap2 + 8, 3);
	assert_int_equal(kv_restore(copy, snap2, l2), -EBADMSG);
	ZSTD_freeCCtx(cc);
	free(again);
	free(snap2);
	free(payload);
	free(s3);
	kv_free(kv);
	kv_free(copy);
}

/* ------------------------------------------------------------------------
 * Tests: large values (KV_FILE_MAX, over one command's KV_VALUE_MAX)
 * ------------------------------------------------------------------------ */

/* A value @n bytes long with a pattern that shows misplaced bytes. */
static unsigned char *pattern(size_t n, uint64_t seed)
{
	unsigned char *p = malloc(n);

	assert_non_null(p);
	rng_state = seed;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t r = rnd();

		memcpy(p + i, &r, n - i < 8 ? n - i : 8);
	}
	return p;
}

/* The exact boundary at KV_FILE_MAX, without allocating 1 GiB: under a
 * tiny quota, a size the limit allows is refused ErrNoSpace (its checks
 * passed; the quota comes after them), one byte more ErrTooBig. */
static void test_kv_file_max_exact_boundaries(void **state)
{
	struct kv *kv = new_kv_quota(USE(1, 0) + 100);
	struct kv_op ops[2];
	struct kv_result r;
	uint64_t d0;

	(void)state;
	assert_int_equal(KV_FILE_MAX, 1ull << 30);
	assert_true(KV_FILE_MAX > KV_VALUE_MAX);
	assert_int_equal(op1(kv, o_put("f", NULL, 0, 0)).status, KV_OK);
	d0 = kv_digest(kv);
	assert_int_equal(op1(kv, o_write("f", KV_FILE_MAX - 1, "z", 1, 1, 0))
	                     .status,
	    KV_ENOSPC);
	assert_int_equal(op1(kv, o_write("f", KV_FILE_MAX, "z", 1, 1, 0))
	                     .status,
	    KV_ETOOBIG);
	assert_int_equal(op1(kv, o_write("f", KV_FILE_MAX - 1, "zz", 2, 1, 0))
	                     .status,
	    KV_ETOOBIG);
	assert_int_equal(op1(kv, o_write("f", KV_FILE_MAX - 4, "zz", 2, 1, 0))
	                     .status,
	    KV_ENOSPC);
	assert_int_equal(op1(kv, o_trunc("f", KV_FILE_MAX, 1, 0)).status,
	    KV_ENOSPC);
	assert_int_equal(op1(kv, o_trunc("f", KV_FILE_MAX + 1, 1, 0)).status,
	    KV_ETOOBIG);
	assert_int_equal(op1(kv, o_trunc("f", UINT64_MAX, 1, 0)).status,
	    KV_ETOOBIG);
	/* A version mismatch is still ErrVersion. */
	assert_int_equal(op1(kv, o_write("f", KV_FILE_MAX, "z", 1, 9, 0))
	                     .status,
	    KV_EVERSION);
	/* In a txn: the op that is too big fails it, nothing changes. */
	ops[0] = o_write("f", 0, "ok", 2, 1, 0);
	ops[1] = o_trunc("f", KV_FILE_MAX + 1, 0, KV_F_ANYVER);
	r = txn(kv, NULL, 0, ops, 2);
	assert_int_equal(r.status, KV_ETOOBIG);
	assert_int_equal(r.fail_op, 1);
	assert_int_equal(kv_digest(kv), d0);
	assert_int_equal(usage(kv), USE(1, 0));
	kv_free(kv);
}

/* A value over KV_VALUE_MAX: built by WRITE/TRUNCATE, read in ranges,
 * GET answers ErrTooBig with the attributes, snapshots carry it. */
static void test_kv_value_over_the_command_limit(void **state)
{
	const uint64_t size = 2ull * KV_VALUE_MAX + (8u << 20); /* 40 MiB */
	struct kv *kv = new_kv(), *copy = new_kv();
	unsigned char *chunk = pattern(1u << 20, 42), buf[8192];
	struct kv_cmd c =
	    cmd_op((struct kv_op){ .type = KV_OP_GET, .key = "f", .keylen = 1 },
	        0, 0);
	struct kv_attr a;
	struct kv_result r;
	void *v = NULL, *snap;
	size_t len = 0;

	(void)state;
	op1(kv, o_put("f", "head", 0, 0));
	assert_int_equal(op1(kv, o_trunc("f", size, 1, 0)).status, KV_OK);
	assert_int_equal(op1(kv,
	                     o_write("f", size - (1u << 20), chunk, 1u << 20, 2,
	                         0))
	                     .status,
	    KV_OK);
	assert_int_equal(op1(kv,
	                     o_write("f", KV_VALUE_MAX - 2, "ACROSS", 6, 3, 0))
	                     .status,
	    KV_OK);
	assert_int_equal(attr_of(kv, "f").size, size);
	assert_int_equal(usage(kv), USE(1, size));
	/* Ranges: inside, across the old limit, the end, past it. */
	assert_int_equal(kv_read(kv, "f", 1, 0, buf, 4, &a), 4);
	assert_memory_equal(buf, "head", 4);
	assert_int_equal(a.size, size);
	assert_int_equal(kv_read(kv, "f", 1, KV_VALUE_MAX - 4, buf, 10, NULL),
	    10);
	assert_memory_equal(buf, "\0\0ACROSS\0\0", 10);
	assert_int_equal(kv_read(kv, "f", 1, size - 100, buf, sizeof(buf),
	                     NULL),
	    100);
	assert_memory_equal(buf, chunk + (1u << 20) - 100, 100);
	assert_int_equal(kv_read(kv, "f", 1, size, buf, sizeof(buf), NULL), 0);
	assert_int_equal(kv_read(kv, "f", 1, 0, buf, 0, NULL), 0);
	/* A whole copy only when asked for one; GET through the log and
	 * kv_get_max() do not copy it. */
	assert_int_equal(kv_get_max(kv, "f", 1, KV_VALUE_MAX, &a, &v, &len),
	    -EFBIG);
	assert_null(v);
	assert_int_equal(a.size, size);
	r = run(kv, &c);
	assert_int_equal(r.status, KV_ETOOBIG);
	assert_null(r.value);
	assert_int_equal(r.attr.size, size);
	assert_int_equal(r.attr.version, 4);
	kv_result_release(&r);
	/* A snapshot holds it, and restores it exactly. */
	snapshot(kv, &snap, &len);
	assert_int_equal(kv_restore(copy, snap, len), 0);
	free(snap);
	assert_int_equal(kv_digest(copy), kv_digest(kv));
	assert_int_equal(usage(copy), usage(kv));
	assert_int_equal(kv_read(copy, "f", 1, KV_VALUE_MAX - 4, buf, 10, NULL),
	    10);
	assert_memory_equal(buf, "\0\0ACROSS\0\0", 10);
	/* And shrinks back. */
	assert_int_equal(op1(kv, o_trunc("f", 3, 4, 0)).status, KV_OK);
	assert_value(kv, "f", "hea", 3);
	assert_int_equal(usage(kv), USE(1, 3));
	free(chunk);
	kv_free(kv);
	kv_free(copy);
}

/* A write into a large value, in a txn (as the filesystem commits it),
 * copies what it writes, not the value: no allocation near its size. */
static void test_kv_txn_write_into_large_value_copies_little(void **state)
{
	const size_t size = 32u << 20;
	struct kv *kv = new_kv(), *ref = new_kv();
	unsigned char *want = pattern(size, 7), *v;
	struct kv_cmp cmps[1];
	struct kv_op ops[1];
	struct kv_result r;
	size_t len;

	(void)state;
	if (!can_inject())
		skip(); /* the allocation watch needs --wrap */
	op1(kv, o_put("f", NULL, 0, 0));
	op1(ref, o_put("f", NULL, 0, 0));
	for (size_t off = 0; off < size; off += KV_VALUE_MAX) {
		struct kv_op w = o_write("f", off, want + off, KV_VALUE_MAX, 0,
		    KV_F_ANYVER);

		assert_int_equal(txn(kv, NULL, 0, &w, 1).status, KV_OK);
		assert_int_equal(op1(ref, w).status, KV_OK);
	}
	memset(want + (size / 2), 'W', 4096);
	cmps[0] = cmp("f", 3);
	ops[0] = o_write("f", size / 2, want + size / 2, 4096, 0, KV_F_ANYVER);
	biggest_alloc = 0;
	r = txn(kv, cmps, 1, ops, 1);
	assert_int_equal(r.status, KV_OK);
	print_message("4 KiB txn write into a 32 MiB value: biggest "
	              "allocation %zu bytes\n",
	    biggest_alloc);
	assert_true(biggest_alloc < 64 * 1024);
	assert_int_equal(op1(ref, ops[0]).status, KV_OK);
	assert_int_equal(kv_digest(kv), kv_digest(ref));
	assert_int_equal(kv_get(kv, "f", 1, NULL, (void **)&v, &len), 0);
	assert_int_equal(len, size);
	assert_memory_equal(v, want, size);
	free(v);
	free(want);
	kv_free(kv);
	kv_free(ref);
}

/* A failed txn puts back exactly the bytes its in-place ops changed: a
 * cut then a write into the cut part, growth that moves the buffer, a
 * rename of a patched value; and usage returns to what it was. */
static void test_kv_txn_in_place_undo_is_exact(void **state)
{
	const size_t size = 2u << 20;
	struct kv *kv = new_kv(), *ref = new_kv();
	unsigned char *orig = pattern(size, 99);
	struct kv_op ops[10];
	struct kv_result r;
	uint64_t d0, u0;
	uint32_t n = 0;

	(void)state;
	for (int i = 0; i < 2; i++) {
		struct kv *k = i ? ref : kv;

		op1(k, o_put("a", NULL, 0, 0));
		op1(k, o_write("a", 0, orig, size, 1, 0));
		op1(k, o_put("b", "bee", 0, 0));
	}
	d0 = kv_digest(kv);
	u0 = usage(kv);
	ops[n++] = o_write("a", 1000, "XXXX", 4, 0, KV_F_ANYVER);
	ops[n++] = o_trunc("a", 100, 0, KV_F_ANYVER); /* bytes stay */
	ops[n++] = o_write("a", 50, "into-the-cut", 12, 0, KV_F_ANYVER);
	ops[n++] = o_trunc("a", 3000, 0, KV_F_ANYVER); /* zeros the cut */
	ops[n++] = o_write("a", 8u << 20, "far", 3, 0, KV_F_ANYVER); /* moves */
	ops[n++] = o_rename("a", "c", 0, KV_F_ANYVER);
	ops[n++] = o_write("c", 10, "renamed", 7, 0, KV_F_ANYVER);
	ops[n++] = o_write("b", 100, "grown", 5, 0, KV_F_ANYVER);
	ops[n++] = o_put("d", "new", 0, 0);
	ops[n++] = o_write("d", 1u << 20, "x", 1, 0, KV_F_ANYVER);
	/* As the last op: a version mismatch undoes everything. */
	{
		struct kv_op all[11];

		memcpy(all, ops, sizeof(ops));
		all[n] = o_put("b", "nope", 7, 0);
		r = txn(kv, NULL, 0, all, n + 1);
		assert_int_equal(r.status, KV_EVERSION);
		assert_int_equal(r.fail_op, n);
	}
	assert_int_equal(kv_digest(kv), d0);
	assert_int_equal(usage(kv), u0);
	assert_value(kv, "a", orig, size);
	assert_value(kv, "b", "bee", 3);
	assert_false(exists(kv, "c"));
	assert_false(exists(kv, "d"));
	/* Without the failing op: the same as the ops one by one. */
	r = txn(kv, NULL, 0, ops, n);
	assert_int_equal(r.status, KV_OK);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(op1(ref, ops[i]).status, KV_OK);
	assert_int_equal(kv_digest(kv), kv_digest(ref));
	assert_int_equal(usage(kv), usage(ref));
	assert_int_equal(usage(kv), used_counted(kv));
	free(orig);
	kv_free(kv);
	kv_free(ref);
}

/* A txn that gives an empty value its first buffer (a key created empty
 * in the txn, revived, or already there) and then fails frees that buffer
 * (a leak shows under LeakSanitizer) and leaves the state as it was. */
static void test_kv_txn_undo_frees_first_buffers(void **state)
{
	struct kv *kv = new_kv();
	struct kv_op ops[8];
	struct kv_result r;
	uint64_t d0;

	(void)state;
	op1(kv, o_put("old", NULL, 0, 0));
	op1(kv, o_put("gone", "x", 0, 0));
	d0 = kv_digest(kv);
	ops[0] = o_put("new", NULL, 0, 0);
	ops[1] = o_write("new", 5, "abc", 3, 0, KV_F_ANYVER);
	ops[2] = o_write("old", 0, "def", 3, 0, KV_F_ANYVER);
	ops[3] = o_trunc("old", 100000, 0, KV_F_ANYVER);
	ops[4] = o_del("gone", 0, KV_F_ANYVER);
	ops[5] = o_put("gone", NULL, 0, 0);
	ops[6] = o_trunc("gone", 7, 0, KV_F_ANYVER);
	ops[7] = o_put("old", "nope", 9, 0);
	r = txn(kv, NULL, 0, ops, 8);
	assert_int_equal(r.status, KV_EVERSION);
	assert_int_equal(r.fail_op, 7);
	assert_int_equal(kv_digest(kv), d0);
	assert_value(kv, "old", "", 0);
	assert_value(kv, "gone", "x", 1);
	assert_false(exists(kv, "new"));
	kv_free(kv);
}

/* Allocation failures at every point of a txn of in-place ops on a large
 * value leave no trace (the saved bytes, a realloc that moves). */
static void test_kv_txn_in_place_enomem_undoes(void **state)
{
	const size_t size = 1u << 20;
	struct kv *kv = new_kv(), *ref = new_kv();
	unsigned char *orig = pattern(size, 5);
	struct kv_op ops[5];
	struct kv_cmd c;
	void *buf;
	size_t len;

	(void)state;
	if (!can_inject())
		skip();
	for (int i = 0; i < 2; i++) {
		struct kv *k = i ? ref : kv;

		op1(k, o_put("a", NULL, 0, 0));
		op1(k, o_write("a", 0, orig, size, 1, 0));
	}
	ops[0] = o_write("a", 10, "patch", 5, 0, KV_F_ANYVER);
	ops[1] = o_trunc("a", 7, 0, KV_F_ANYVER);
	ops[2] = o_write("a", 20, "cut", 3, 0, KV_F_ANYVER);
	ops[3] = o_write("a", 3u << 20, "grow", 4, 0, KV_F_ANYVER);
	ops[4] = o_put("b", "x", 0, 0);
	c = cmd_txn(NULL, 0, ops, 5);
	assert_int_equal(kv_cmd_encode_alloc(&c, &buf, &len), 0);
	assert_true(apply_with_failures(kv, buf, len) >= 4);
	apply_raw(ref, buf, len);
	assert_int_equal(kv_digest(kv), kv_digest(ref));
	assert_int_equal(usage(kv), usage(ref));
	free(buf);
	free(orig);
	kv_free(kv);
	kv_free(ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_put_get_follow_the_seeds),
		cmocka_unit_test(test_kv_get_through_the_log),
		cmocka_unit_test(
		    test_kv_put_keeps_inode_and_meta_unless_setmeta),
		cmocka_unit_test(test_kv_put_anyver_creates_or_replaces),
		cmocka_unit_test(test_kv_inodes_are_never_reused),
		cmocka_unit_test(test_kv_delete_checks_the_version),
		cmocka_unit_test(test_kv_write_at_offset),
		cmocka_unit_test(test_kv_write_appends_and_reads_ranges),
		cmocka_unit_test(
		    test_kv_truncate_shrinks_and_extends_with_zeros),
		cmocka_unit_test(test_kv_setmeta_bumps_version_and_ctime),
		cmocka_unit_test(test_kv_rename_moves_the_record),
		cmocka_unit_test(test_kv_rename_tree_moves_the_subtree),
		cmocka_unit_test(test_kv_rename_tree_in_txn_and_limits),
		cmocka_unit_test(test_kv_txn_failed_compare_changes_nothing),
		cmocka_unit_test(test_kv_txn_nochild_compare),
		cmocka_unit_test(test_kv_txn_exclusive_create),
		cmocka_unit_test(test_kv_txn_failed_op_undoes_everything),
		cmocka_unit_test(test_kv_txn_ops_see_earlier_ops),
		cmocka_unit_test(test_kv_txn_equals_ops_applied_one_by_one),
		cmocka_unit_test(test_kv_list_prefix_order_and_pagination),
		cmocka_unit_test(test_kv_list_children_skips_subtrees),
		cmocka_unit_test(
		    test_kv_session_duplicate_returns_first_result),
		cmocka_unit_test(test_kv_session_stale_and_unknown),
		cmocka_unit_test(test_kv_session_survives_snapshot_and_restore),
		cmocka_unit_test(test_kv_session_expires_by_committed_time),
		cmocka_unit_test(
		    test_kv_session_capacity_evicts_least_recently_used),
		cmocka_unit_test(test_kv_open_table_pins_the_removal),
		cmocka_unit_test(test_kv_open_table_goes_with_the_session),
		cmocka_unit_test(test_kv_open_table_ops_are_idempotent),
		cmocka_unit_test(
		    test_kv_open_table_many_sessions_expire_at_once),
		cmocka_unit_test(test_kv_open_table_is_bounded),
		cmocka_unit_test(test_kv_many_clients_memory_bound),
		cmocka_unit_test(test_kv_replicas_end_byte_identical),
		cmocka_unit_test(test_kv_malformed_commands_change_nothing),
		cmocka_unit_test(test_kv_apply_refuses_old_index),
		cmocka_unit_test(test_kv_snapshot_round_trip),
		cmocka_unit_test(test_kv_snapshot_of_empty_state_is_small),
		cmocka_unit_test(
		    test_kv_corrupt_snapshot_is_refused_state_kept),
		cmocka_unit_test(test_kv_inconsistent_snapshot_is_refused),
		cmocka_unit_test(test_kv_apply_enomem_changes_nothing),
		cmocka_unit_test(test_kv_txn_enomem_midway_undoes),
		cmocka_unit_test(test_kv_rename_tree_enomem_undoes),
		cmocka_unit_test(test_kv_restore_enomem_keeps_state),
		cmocka_unit_test(test_kv_reads_run_beside_apply),
		cmocka_unit_test(test_kv_quota_default_and_usage),
		cmocka_unit_test(test_kv_quota_exact_boundary),
		cmocka_unit_test(test_kv_quota_txn_all_or_nothing),
		cmocka_unit_test(test_kv_quota_tree_rename),
		cmocka_unit_test(test_kv_quota_above_it_deletes_and_reads_work),
		cmocka_unit_test(test_kv_quota_usage_survives_snapshots),
		cmocka_unit_test(test_kv_file_max_exact_boundaries),
		cmocka_unit_test(test_kv_value_over_the_command_limit),
		cmocka_unit_test(
		    test_kv_txn_write_into_large_value_copies_little),
		cmocka_unit_test(test_kv_txn_in_place_undo_is_exact),
		cmocka_unit_test(test_kv_txn_in_place_enomem_undoes),
		cmocka_unit_test(test_kv_txn_undo_frees_first_buffers),
		cmocka_unit_test(test_kv_link_semantics),
		cmocka_unit_test(test_kv_rename_with_links),
		cmocka_unit_test(test_kv_linked_file_never_becomes_a_directory),
		cmocka_unit_test(test_kv_link_in_txn_and_undo),
		cmocka_unit_test(test_kv_quota_counts_a_linked_value_once),
		cmocka_unit_test(test_kv_snapshot_with_links_round_trip),
		cmocka_unit_test(test_kv_snapshot_in_two_steps),
		cmocka_unit_test(test_kv_snapshot_format_1_restores),
		cmocka_unit_test(test_kv_snapshot_format_2_restores),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
