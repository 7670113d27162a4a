/*
 * test_frame.c - unit tests for the transport frame codec (raft/net/frame.c).
 *
 * A frame round-trips with its message; the header sits where frame.h says;
 * the decoder refuses, with the right reason, every truncation, a bad
 * magic, an unknown version, reserved bits, another cluster, a non-member
 * or self as sender, a body whose from or to disagree, trailing bytes; and
 * it survives random mutation of valid frames without leaking.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/net/frame.h"

/* ------------------------------------------------------------------------
 * Fixture
 * ------------------------------------------------------------------------ */

#define CLUSTER 0x1122334455667788ull

static const raft_id members[] = { 1, 2, 3 };
static const struct frame_filter filter_for_2 = {
	.cluster_id = CLUSTER,
	.self = 2,
	.n_members = 3,
	.members = members,
};

static uint8_t payload[100];
static struct raft_entry entries[2];

static struct raft_msg append_msg(raft_id from, raft_id to)
{
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 13 + 5);
	entries[0] = (struct raft_entry){ .term = 3,
		.index = 10,
		.type = RAFT_ENTRY_NORMAL,
		.len = sizeof(payload),
		.data = payload };
	entries[1] = (struct raft_entry){ .term = 3,
		.index = 11,
		.type = RAFT_ENTRY_NOOP };
	return (struct raft_msg){ .type = RAFT_MSG_APPEND,
		.from = from,
		.to = to,
		.term = 3,
		.index = 9,
		.log_term = 2,
		.commit = 8,
		.n_entries = 2,
		.entries = entries };
}

/* Encode @m from @sender into a fresh buffer; returns its size. */
static size_t encode(uint64_t cluster, raft_id sender, const struct raft_msg *m,
    uint8_t **out)
{
	size_t n = frame_encoded_size(m);
	long rv;

	assert_true(n > FRAME_HEADER_SIZE);
	*out = malloc(n);
	assert_non_null(*out);
	rv = frame_encode(cluster, sender, m, *out, n);
	assert_int_equal(rv, (long)n);
	return n;
}

static int decode(const uint8_t *buf, size_t len)
{
	struct raft_msg m;
	int rv = frame_decode(buf, len, &filter_for_2, NULL, &m);

	if (rv == 0)
		msg_release(&m);
	else
		assert_null(m.entries);
	return rv;
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void test_frame_round_trip(void **state)
{
	struct raft_msg in = append_msg(1, 2), out;
	struct frame_header h;
	uint8_t *buf;
	size_t n = encode(CLUSTER, 1, &in, &buf);

	(void)state;
	assert_int_equal(n, FRAME_HEADER_SIZE + msg_encoded_size(&in));
	assert_int_equal(frame_decode(buf, n, &filter_for_2, &h, &out), 0);
	assert_int_equal(h.version, FRAME_VERSION);
	assert_true(h.cluster_id == CLUSTER);
	assert_true(h.sender == 1);
	assert_int_equal(out.type, RAFT_MSG_APPEND);
	assert_true(out.from == 1 && out.to == 2 && out.term == 3);
	assert_true(out.index == 9 && out.log_term == 2 && out.commit == 8);
	assert_int_equal(out.n_entries, 2);
	assert_int_equal(out.entries[0].len, sizeof(payload));
	assert_memory_equal(out.entries[0].data, payload, sizeof(payload));
	/* Entry data is borrowed from the frame, not copied. */
	assert_true(
	    out.entries[0].data >= buf && out.entries[0].data < buf + n);
	assert_int_equal(out.entries[1].type, RAFT_ENTRY_NOOP);
	msg_release(&out);
	free(buf);
}

static void test_frame_header_layout(void **state)
{
	struct raft_msg in = { .type = RAFT_MSG_HEARTBEAT,
		.from = 1,
		.to = 2,
		.term = 1 };
	uint8_t *buf;
	size_t n = encode(CLUSTER, 0x0102030405060708ull, &in, &buf);
	static const uint8_t want[FRAME_HEADER_SIZE] = {
		'R',
		'K',
		'V',
		'F',
		FRAME_VERSION,
		0,
		0,
		0,
		0x88,
		0x77,
		0x66,
		0x55,
		0x44,
		0x33,
		0x22,
		0x11,
		0x08,
		0x07,
		0x06,
		0x05,
		0x04,
		0x03,
		0x02,
		0x01,
	};

	(void)state;
	assert_int_equal(n, FRAME_HEADER_SIZE + 29); /* bare msg header */
	assert_memory_equal(buf, want, sizeof(want));
	free(buf);
}

static void test_frame_encode_errors(void **state)
{
	struct raft_msg in = append_msg(1, 2), bad = { .type = 99 };
	uint8_t buf[64];

	(void)state;
	assert_int_equal(frame_encode(0, 1, &in, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(frame_encode(CLUSTER, 0, &in, buf, sizeof(buf)),
	    -EINVAL);
	assert_int_equal(frame_encode(CLUSTER, 1, &bad, buf, sizeof(buf)),
	    -EINVAL);
	assert_int_equal(frame_encoded_size(&bad), 0);
	assert_int_equal(frame_encode(CLUSTER, 1, &in, buf, 10), -ENOBUFS);
	assert_int_equal(frame_encode(CLUSTER, 1, &in, buf, sizeof(buf)),
	    -ENOBUFS);
}

static void test_frame_rejects_truncation_and_trailing(void **state)
{
	struct raft_msg in = append_msg(1, 2);
	uint8_t *buf, *longer;
	size_t n = encode(CLUSTER, 1, &in, &buf);

	(void)state;
	for (size_t len = 0; len < n; len++)
		assert_int_equal(decode(buf, len), FRAME_EMALFORMED);
	longer = malloc(n + 1);
	assert_non_null(longer);
	memcpy(longer, buf, n);
	longer[n] = 0;
	assert_int_equal(decode(longer, n + 1), FRAME_EMALFORMED);
	assert_int_equal(decode(buf, n), 0);
	free(longer);
	free(buf);
}

static void test_frame_rejects_bad_header(void **state)
{
	struct raft_msg in = append_msg(1, 2);
	uint8_t *buf;
	size_t n = encode(CLUSTER, 1, &in, &buf);

	(void)state;
	buf[0] ^= 0xff; /* magic */
	assert_int_equal(decode(buf, n), FRAME_EMALFORMED);
	buf[0] ^= 0xff;
	buf[4] = FRAME_VERSION + 1;
	assert_int_equal(decode(buf, n), FRAME_EVERSION);
	/* A newer version is recognised even if its header is short. */
	assert_int_equal(decode(buf, 5), FRAME_EVERSION);
	buf[4] = 0;
	assert_int_equal(decode(buf, n), FRAME_EVERSION);
	buf[4] = FRAME_VERSION;
	for (int i = 5; i < 8; i++) {
		buf[i] = 1;
		assert_int_equal(decode(buf, n), FRAME_EMALFORMED);
		buf[i] = 0;
	}
	assert_int_equal(decode(buf, n), 0);
	free(buf);
}

static void test_frame_rejects_foreign_and_forged(void **state)
{
	struct raft_msg in = append_msg(1, 2);
	uint8_t *buf;
	size_t n;

	(void)state;
	n = encode(CLUSTER + 1, 1, &in, &buf); /* another cluster */
	assert_int_equal(decode(buf, n), FRAME_ECLUSTER);
	free(buf);

	in.from = 9; /* a non-member, consistent with its header */
	n = encode(CLUSTER, 9, &in, &buf);
	assert_int_equal(decode(buf, n), FRAME_ESENDER);
	free(buf);

	in.from = 2; /* ourselves */
	n = encode(CLUSTER, 2, &in, &buf);
	assert_int_equal(decode(buf, n), FRAME_ESENDER);
	free(buf);

	in.from = 3; /* header says 1, body says 3 */
	n = encode(CLUSTER, 1, &in, &buf);
	assert_int_equal(decode(buf, n), FRAME_EFORGED);
	free(buf);

	in = append_msg(1, 3); /* for member 3, delivered to 2 */
	n = encode(CLUSTER, 1, &in, &buf);
	assert_int_equal(decode(buf, n), FRAME_EMISROUTED);
	free(buf);
}

static void test_frame_rejects_zero_ids_in_header(void **state)
{
	struct raft_msg in = append_msg(1, 2);
	uint8_t *buf;
	size_t n = encode(CLUSTER, 1, &in, &buf);

	(void)state;
	memset(buf + 8, 0, 8); /* cluster 0 */
	assert_int_equal(decode(buf, n), FRAME_EMALFORMED);
	free(buf);
	n = encode(CLUSTER, 1, &in, &buf);
	memset(buf + 16, 0, 8); /* sender 0 */
	assert_int_equal(decode(buf, n), FRAME_EMALFORMED);
	free(buf);
}

static void test_frame_survives_mutation(void **state)
{
	struct raft_msg in = append_msg(1, 2);
	uint8_t *orig, *buf;
	size_t n = encode(CLUSTER, 1, &in, &orig);
	unsigned iters = getenv("RAFTKV_LONG") ? 1000000 : 50000;
	uint64_t x = 88172645463325252ull;

	(void)state;
	buf = malloc(n);
	assert_non_null(buf);
	for (unsigned i = 0; i < iters; i++) {
		memcpy(buf, orig, n);
		for (int k = 0; k < 1 + (int)(i % 4); k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[x % n] ^= (uint8_t)(x >> 32 | 1);
		}
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		(void)decode(buf, (i & 8) ? x % (n + 1) : n);
	}
	free(buf);
	free(orig);
}

static void test_frame_strerror_names_every_code(void **state)
{
	(void)state;
	for (int err = FRAME_EAUTH; err <= FRAME_EMALFORMED; err++)
		assert_string_not_equal(rk_strerror(err), "unknown error");
	assert_string_equal(rk_strerror(-ENOMEM), rk_strerror(-ENOMEM));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_frame_header_layout),
		cmocka_unit_test(test_frame_encode_errors),
		cmocka_unit_test(test_frame_rejects_truncation_and_trailing),
		cmocka_unit_test(test_frame_rejects_bad_header),
		cmocka_unit_test(test_frame_rejects_foreign_and_forged),
		cmocka_unit_test(test_frame_rejects_zero_ids_in_header),
		cmocka_unit_test(test_frame_survives_mutation),
		cmocka_unit_test(test_frame_strerror_names_every_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
