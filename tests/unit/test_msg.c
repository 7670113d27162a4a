/*
 * test_msg.c - unit tests for the Raft message codec (raft/msg.c).
 *
 * Every message type round-trips with its meaningful fields set, and every
 * field round-trips on every type; the decoder rejects truncations,
 * trailing bytes, bad headers, non-canonical encodings and oversized
 * counts, and survives random mutation of valid encodings.
 *
 * Link with -Wl,--wrap=calloc to let the allocation tests watch the
 * decoder's one allocation (they are skipped otherwise).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/msg.h"

/* ------------------------------------------------------------------------
 * Fixture: an allocation watch on calloc (active with --wrap=calloc)
 * ------------------------------------------------------------------------ */

void *__real_calloc(size_t n, size_t size) __attribute__((weak));
void *__wrap_calloc(size_t n, size_t size);

static unsigned calloc_calls;
static size_t calloc_largest;
static int calloc_fail; /* non-zero: the next calls return NULL */

void *__wrap_calloc(size_t n, size_t size)
{
	calloc_calls++;
	if (size != 0 && n <= SIZE_MAX / size && n * size > calloc_largest)
		calloc_largest = n * size;
	if (calloc_fail)
		return NULL;
	return __real_calloc(n, size);
}

static void calloc_watch_reset(void)
{
	calloc_calls = 0;
	calloc_largest = 0;
	calloc_fail = 0;
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

#define BIG 0x0102030405060708ull /* every byte distinct: catches order bugs */

static uint8_t data_a[64];
static uint8_t data_b[5];
static uint8_t chunk_data[300];
static struct raft_entry sample_entries[3];

static void fill_bytes(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void init_sample_data(void)
{
	fill_bytes(data_a, sizeof(data_a), 1);
	fill_bytes(data_b, sizeof(data_b), 99);
	fill_bytes(chunk_data, sizeof(chunk_data), 42);
	sample_entries[0] = (struct raft_entry){ .term = 7,
		.index = BIG,
		.type = RAFT_ENTRY_NORMAL,
		.len = sizeof(data_a),
		.data = data_a };
	sample_entries[1] = (struct raft_entry){ .term = 8,
		.index = BIG + 1,
		.type = RAFT_ENTRY_NOOP };
	sample_entries[2] = (struct raft_entry){ .term = 8,
		.index = BIG + 2,
		.type = RAFT_ENTRY_NORMAL,
		.len = sizeof(data_b),
		.data = data_b };
}

/* A message of @type with the fields that type gives meaning to. */
static void sample_msg(uint8_t type, struct raft_msg *m)
{
	init_sample_data();
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = 3;
	m->to = UINT64_MAX;
	m->term = BIG;
	switch (type) {
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
		m->index = 1000;
		m->log_term = BIG - 1;
		break;
	case RAFT_MSG_PREVOTE_RESP:
	case RAFT_MSG_VOTE_RESP:
		m->reject = true;
		break;
	case RAFT_MSG_APPEND:
		m->index = BIG - 1;
		m->log_term = 6;
		m->commit = BIG - 5;
		m->n_entries = 3;
		m->entries = sample_entries;
		break;
	case RAFT_MSG_APPEND_RESP:
		m->index = 55;
		m->reject = true;
		m->hint_index = 40;
		m->hint_term = 4;
		break;
	case RAFT_MSG_HEARTBEAT:
		m->commit = BIG;
		m->ctx = UINT64_MAX;
		break;
	case RAFT_MSG_HEARTBEAT_RESP:
	case RAFT_MSG_READ_INDEX:
		m->ctx = BIG;
		break;
	case RAFT_MSG_SNAPSHOT:
		m->snap.index = BIG;
		m->snap.term = 9;
		m->snap.n_voters = 3;
		m->snap.voters[0] = 1;
		m->snap.voters[1] = BIG;
		m->snap.voters[2] = UINT64_MAX;
		m->offset = 1000;
		m->total = 1000 + sizeof(chunk_data);
		m->chunk_len = sizeof(chunk_data);
		m->chunk = chunk_data;
		m->done = true;
		break;
	case RAFT_MSG_SNAPSHOT_RESP:
		m->index = BIG;
		m->offset = 4096;
		m->reject = true;
		break;
	case RAFT_MSG_TIMEOUT_NOW:
		break;
	case RAFT_MSG_READ_INDEX_RESP:
		m->index = 77;
		m->ctx = BIG;
		m->reject = false;
		break;
	default:
		fail_msg("no sample for type %u", type);
	}
}

/* A message of @type with every field set. */
static void full_msg(uint8_t type, struct raft_msg *m)
{
	sample_msg(RAFT_MSG_SNAPSHOT, m);
	m->type = type;
	m->index = 1;
	m->log_term = 2;
	m->commit = 3;
	m->reject = true;
	m->hint_index = 4;
	m->hint_term = 5;
	m->ctx = 6;
	m->n_entries = 3;
	m->entries = sample_entries;
	m->snap.n_voters = RAFT_MAX_MEMBERS;
	for (unsigned i = 0; i < RAFT_MAX_MEMBERS; i++)
		m->snap.voters[i] = BIG + i;
}

static void assert_entry_equal(const struct raft_entry *a,
    const struct raft_entry *b)
{
	assert_int_equal(a->term, b->term);
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->len, b->len);
	if (a->len == 0) {
		assert_null(b->data);
	} else {
		assert_non_null(b->data);
		assert_memory_equal(a->data, b->data, a->len);
	}
}

static void assert_msg_equal(const struct raft_msg *a, const struct raft_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->from, b->from);
	assert_int_equal(a->to, b->to);
	assert_int_equal(a->term, b->term);
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->log_term, b->log_term);
	assert_int_equal(a->commit, b->commit);
	assert_int_equal(a->reject, b->reject);
	assert_int_equal(a->hint_index, b->hint_index);
	assert_int_equal(a->hint_term, b->hint_term);
	assert_int_equal(a->ctx, b->ctx);
	assert_int_equal(a->n_entries, b->n_entries);
	if (a->n_entries == 0)
		assert_null(b->entries);
	for (uint32_t i = 0; i < a->n_entries; i++)
		assert_entry_equal(&a->entries[i], &b->entries[i]);
	assert_int_equal(a->snap.index, b->snap.index);
	assert_int_equal(a->snap.term, b->snap.term);
	assert_int_equal(a->snap.n_voters, b->snap.n_voters);
	for (uint32_t i = 0; i < a->snap.n_voters; i++)
		assert_int_equal(a->snap.voters[i], b->snap.voters[i]);
	assert_int_equal(a->snap.n_learners, b->snap.n_learners);
	for (uint32_t i = 0; i < a->snap.n_learners; i++)
		assert_int_equal(a->snap.learners[i], b->snap.learners[i]);
	assert_int_equal(a->offset, b->offset);
	assert_int_equal(a->total, b->total);
	assert_int_equal(a->chunk_len, b->chunk_len);
	if (a->chunk_len == 0)
		assert_null(b->chunk);
	else
		assert_memory_equal(a->chunk, b->chunk, a->chunk_len);
	assert_int_equal(a->done, b->done);
}

static void assert_msg_zero(const struct raft_msg *m)
{
	static const struct raft_msg zero;

	assert_memory_equal(m, &zero, sizeof(zero));
}

/* Encode @m into a fresh buffer; checks the size contract. */
static uint8_t *encode(const struct raft_msg *m, size_t *len)
{
	size_t n = msg_encoded_size(m);
	uint8_t *buf;

	assert_true(n > 0);
	buf = malloc(n + 1); /* + 1: a spare byte for trailing-byte tests */
	assert_non_null(buf);
	assert_int_equal(msg_encode(m, buf, n - 1), -ENOBUFS);
	assert_int_equal(msg_encode(m, buf, n), (long)n);
	*len = n;
	return buf;
}

/* Decode @buf and check it gives back @want; returns nothing allocated. */
static void assert_round_trip(const struct raft_msg *want)
{
	struct raft_msg got;
	size_t len;
	uint8_t *buf = encode(want, &len);

	assert_int_equal(msg_decode(buf, len, &got), 0);
	assert_msg_equal(want, &got);
	msg_release(&got);
	assert_null(got.entries);
	free(buf);
}

static void assert_malformed(const uint8_t *buf, size_t len)
{
	struct raft_msg m;

	memset(&m, 0xAB, sizeof(m)); /* must be cleared, not left as is */
	assert_int_equal(msg_decode(buf, len, &m), RAFT_EMALFORMED);
	assert_msg_zero(&m);
}

/* Build every sample (the per-type one and the all-fields one). */
#define N_SAMPLES (2 * RAFT_MSG_TYPE_MAX)
static void nth_sample(unsigned i, struct raft_msg *m)
{
	uint8_t type = (uint8_t)(i % RAFT_MSG_TYPE_MAX + 1);

	if (i < RAFT_MSG_TYPE_MAX)
		sample_msg(type, m);
	else
		full_msg(type, m);
}

/* Deterministic PRNG (xorshift64*), so failures replay. */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Header offsets (see the layout at the top of raft/msg.c). */
#define OFF_MAGIC 0
#define OFF_VERSION 1
#define OFF_TYPE 2
#define OFF_PRESENT 3
#define HEADER_SIZE 29
#define ENTRY_HEADER_SIZE 21

/* ------------------------------------------------------------------------
 * Tests: round trips and sizes
 * ------------------------------------------------------------------------ */

static void test_msg_round_trips_every_type(void **state)
{
	struct raft_msg m;

	(void)state;
	for (uint8_t t = 1; t <= RAFT_MSG_TYPE_MAX; t++) {
		sample_msg(t, &m);
		assert_round_trip(&m);
	}
}

static void test_msg_round_trips_every_field_on_every_type(void **state)
{
	struct raft_msg m;

	(void)state;
	for (uint8_t t = 1; t <= RAFT_MSG_TYPE_MAX; t++) {
		full_msg(t, &m);
		assert_round_trip(&m);
	}
}

static void test_msg_round_trips_header_only(void **state)
{
	struct raft_msg m = { .type = RAFT_MSG_TIMEOUT_NOW };
	size_t len;
	uint8_t *buf = encode(&m, &len);

	(void)state;
	assert_int_equal(len, HEADER_SIZE);
	free(buf);
	assert_round_trip(&m);
}

static void test_msg_round_trips_empty_entries(void **state)
{
	struct raft_entry e[2] = {
		{ .term = 1, .index = 1, .type = RAFT_ENTRY_NOOP },
		{ .term = 1,
		    .index = 2,
		    .type = RAFT_ENTRY_NORMAL,
		    .data = data_a /* ignored: len 0 */ },
	};
	struct raft_msg m = { .type = RAFT_MSG_APPEND,
		.from = 1,
		.to = 2,
		.term = 1,
		.n_entries = 2,
		.entries = e };
	struct raft_msg got;
	size_t len;
	uint8_t *buf = encode(&m, &len);

	(void)state;
	assert_int_equal(len, HEADER_SIZE + 4 + 2 * ENTRY_HEADER_SIZE);
	assert_int_equal(msg_decode(buf, len, &got), 0);
	e[1].data = NULL; /* what the decoder gives for an empty entry */
	assert_msg_equal(&m, &got);
	msg_release(&got);
	free(buf);
}

static void test_msg_round_trips_many_entries(void **state)
{
	uint32_t n = 1000;
	struct raft_entry *e = calloc(n, sizeof(*e));
	struct raft_msg m = { .type = RAFT_MSG_APPEND,
		.term = 2,
		.n_entries = n,
		.entries = e };

	(void)state;
	init_sample_data();
	for (uint32_t i = 0; i < n; i++)
		e[i] = (struct raft_entry){ .term = 2,
			.index = i + 1,
			.type = RAFT_ENTRY_NORMAL,
			.len = i % 65,
			.data = i % 65 ? data_a : NULL };
	assert_round_trip(&m);
	free(e);
}

static void test_msg_round_trips_snapshot_voters(void **state)
{
	struct raft_msg m;

	(void)state;
	sample_msg(RAFT_MSG_SNAPSHOT, &m);
	for (uint32_t n = 0; n <= RAFT_MAX_MEMBERS; n++) {
		m.snap.n_voters = n;
		for (uint32_t i = 0; i < n; i++)
			m.snap.voters[i] = i + 1;
		assert_round_trip(&m);
	}
	/* Only the meta's term set: still present, still round-trips. */
	m.snap = (struct raft_snapshot_meta){ .term = 1 };
	assert_round_trip(&m);
}

static void test_msg_round_trips_snapshot_learners(void **state)
{
	struct raft_msg m;
	size_t len;
	uint8_t *buf;

	(void)state;
	sample_msg(RAFT_MSG_SNAPSHOT, &m);
	for (uint32_t nl = 0; nl < RAFT_MAX_MEMBERS; nl++) {
		m.snap.n_voters = RAFT_MAX_MEMBERS - nl;
		for (uint32_t i = 0; i < m.snap.n_voters; i++)
			m.snap.voters[i] = i + 1;
		m.snap.n_learners = nl;
		for (uint32_t i = 0; i < nl; i++)
			m.snap.learners[i] = 100 + i;
		assert_round_trip(&m);
	}
	/* More members than RAFT_MAX_MEMBERS cannot be encoded. */
	m.snap.n_voters = 2;
	m.snap.n_learners = RAFT_MAX_MEMBERS - 1;
	assert_int_equal(msg_encoded_size(&m), 0);
	/* Without learners the counts byte is the older format's voter
	 * count; with them its high nibble, which older decoders refuse. */
	m.snap.n_voters = 3;
	m.snap.n_learners = 0;
	buf = encode(&m, &len);
	assert_int_equal(buf[HEADER_SIZE + 8 * __builtin_popcount(0xC0) + 16],
	    3);
	free(buf);
	m.snap.n_learners = 2;
	buf = encode(&m, &len);
	assert_int_equal(buf[HEADER_SIZE + 8 * __builtin_popcount(0xC0) + 16],
	    3 | 2 << 4);
	free(buf);
}

static void test_msg_round_trips_last_chunk_at_end(void **state)
{
	struct raft_msg m;

	(void)state;
	sample_msg(RAFT_MSG_SNAPSHOT, &m);
	m.offset = UINT64_MAX - m.chunk_len;
	m.total = UINT64_MAX;
	assert_round_trip(&m);
}

static void test_msg_encoded_size_is_bytes_written(void **state)
{
	struct raft_msg m;
	uint8_t buf[2048];

	(void)state;
	for (unsigned i = 0; i < N_SAMPLES; i++) {
		nth_sample(i, &m);
		size_t n = msg_encoded_size(&m);
		assert_true(n <= sizeof(buf));
		assert_int_equal(msg_encode(&m, buf, sizeof(buf)), (long)n);
		assert_int_equal(msg_encode(&m, buf, n), (long)n);
		assert_int_equal(msg_encode(&m, buf, n - 1), -ENOBUFS);
		assert_int_equal(msg_encode(&m, buf, 0), -ENOBUFS);
	}
}

static void test_msg_heartbeat_is_small(void **state)
{
	struct raft_msg m;

	(void)state;
	sample_msg(RAFT_MSG_HEARTBEAT, &m); /* commit and ctx both set */
	assert_true(msg_encoded_size(&m) <= 48);
	m.ctx = 0;
	assert_true(msg_encoded_size(&m) <= 40);
	sample_msg(RAFT_MSG_HEARTBEAT_RESP, &m);
	assert_true(msg_encoded_size(&m) <= 40);
	sample_msg(RAFT_MSG_APPEND_RESP, &m);
	m.reject = false;
	m.hint_index = m.hint_term = 0;
	assert_true(msg_encoded_size(&m) <= 40);
}

static void test_msg_append_overhead_is_small(void **state)
{
	struct raft_msg m;
	size_t payload = 0;

	(void)state;
	sample_msg(RAFT_MSG_APPEND, &m);
	for (uint32_t i = 0; i < m.n_entries; i++)
		payload += m.entries[i].len;
	/* Header, prev index/term, commit, count, 21 bytes per entry. */
	assert_int_equal(msg_encoded_size(&m),
	    HEADER_SIZE + 3 * 8 + 4 + 3 * ENTRY_HEADER_SIZE + payload);
	m.n_entries = 1; /* one 64-byte entry */
	assert_int_equal(msg_encoded_size(&m), 142);
}

/* ------------------------------------------------------------------------
 * Tests: the encoder refuses what it cannot encode
 * ------------------------------------------------------------------------ */

static void assert_unencodable(const struct raft_msg *m)
{
	uint8_t buf[4096];

	assert_int_equal(msg_encoded_size(m), 0);
	assert_int_equal(msg_encode(m, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(msg_encode(m, buf, 0), -EINVAL);
}

static void test_msg_encode_rejects_invalid(void **state)
{
	struct raft_msg m;

	(void)state;
	sample_msg(RAFT_MSG_APPEND, &m);
	m.type = 0;
	assert_unencodable(&m);
	m.type = RAFT_MSG_TYPE_MAX + 1;
	assert_unencodable(&m);

	sample_msg(RAFT_MSG_APPEND, &m);
	m.n_entries = MSG_MAX_ENTRIES + 1;
	assert_unencodable(&m);
	sample_msg(RAFT_MSG_APPEND, &m);
	m.entries = NULL;
	assert_unencodable(&m);
	sample_msg(RAFT_MSG_APPEND, &m);
	sample_entries[1].type = 0;
	assert_unencodable(&m);
	sample_msg(RAFT_MSG_APPEND, &m);
	sample_entries[2].type = 4; /* the first unknown entry type */
	assert_unencodable(&m);
	sample_msg(RAFT_MSG_APPEND, &m);
	sample_entries[2].data = NULL;
	assert_unencodable(&m);

	sample_msg(RAFT_MSG_SNAPSHOT, &m);
	m.snap.n_voters = RAFT_MAX_MEMBERS + 1;
	assert_unencodable(&m);
	sample_msg(RAFT_MSG_SNAPSHOT, &m);
	m.chunk = NULL;
	assert_unencodable(&m);
	sample_msg(RAFT_MSG_SNAPSHOT, &m);
	m.total = m.offset + m.chunk_len - 1; /* chunk overruns the snapshot */
	assert_unencodable(&m);
	m.offset = UINT64_MAX;
	m.total = UINT64_MAX;
	assert_unencodable(&m);
}

static void test_msg_encode_rejects_over_max_bytes(void **state)
{
	struct raft_msg m = { .type = RAFT_MSG_SNAPSHOT, .total = UINT64_MAX };
	uint8_t *big = calloc(1, MSG_MAX_BYTES);
	uint8_t *out = malloc(MSG_MAX_BYTES + 1);
	struct raft_msg got;

	(void)state;
	assert_non_null(big);
	assert_non_null(out);
	m.chunk = big;
	/* Exactly MSG_MAX_BYTES: header, total, chunk length, chunk. */
	m.chunk_len = MSG_MAX_BYTES - HEADER_SIZE - 8 - 4;
	assert_int_equal(msg_encoded_size(&m), MSG_MAX_BYTES);
	assert_int_equal(msg_encode(&m, out, MSG_MAX_BYTES), MSG_MAX_BYTES);
	assert_int_equal(msg_decode(out, MSG_MAX_BYTES, &got), 0);
	assert_int_equal(got.chunk_len, m.chunk_len);
	msg_release(&got);
	/* One byte more is refused both ways. */
	m.chunk_len++;
	assert_int_equal(msg_encoded_size(&m), 0);
	assert_int_equal(msg_encode(&m, out, MSG_MAX_BYTES + 1), -EINVAL);
	put_le32(out + HEADER_SIZE + 8, m.chunk_len);
	out[MSG_MAX_BYTES] = 0;
	assert_malformed(out, MSG_MAX_BYTES + 1);
	free(out);
	free(big);
}

/* ------------------------------------------------------------------------
 * Tests: the decoder rejects malformed input
 * ------------------------------------------------------------------------ */

static void test_msg_rejects_every_truncation(void **state)
{
	struct raft_msg m;

	(void)state;
	for (unsigned i = 0; i < N_SAMPLES; i++) {
		size_t len;
		uint8_t *buf;

		nth_sample(i, &m);
		buf = encode(&m, &len);
		for (size_t cut = 0; cut < len; cut++)
			assert_malformed(buf, cut);
		free(buf);
	}
	assert_malformed(NULL, 0);
}

static void test_msg_rejects_trailing_byte(void **state)
{
	struct raft_msg m;

	(void)state;
	for (unsigned i = 0; i < N_SAMPLES; i++) {
		size_t len;
		uint8_t *buf;

		nth_sample(i, &m);
		buf = encode(&m, &len);
		buf[len] = 0;
		assert_malformed(buf, len + 1);
		free(buf);
	}
}

static void test_msg_rejects_bad_magic_version_type(void **state)
{
	struct raft_msg m;
	size_t len;
	uint8_t *buf;

	(void)state;
	sample_msg(RAFT_MSG_HEARTBEAT, &m);
	buf = encode(&m, &len);
	buf[OFF_MAGIC] ^= 0x01;
	assert_malformed(buf, len);
	buf[OFF_MAGIC] ^= 0x01;

	buf[OFF_VERSION] = MSG_FORMAT_VERSION + 1;
	assert_malformed(buf, len);
	buf[OFF_VERSION] = 0;
	assert_malformed(buf, len);
	buf[OFF_VERSION] = MSG_FORMAT_VERSION;

	buf[OFF_TYPE] = 0;
	assert_malformed(buf, len);
	buf[OFF_TYPE] = RAFT_MSG_TYPE_MAX + 1;
	assert_malformed(buf, len);
	buf[OFF_TYPE] = 0xFF;
	assert_malformed(buf, len);
	free(buf);
}

static void test_msg_rejects_reserved_flag_bits(void **state)
{
	struct raft_msg m;
	size_t len;
	uint8_t *buf;

	(void)state;
	/* reject/done are bits of the presence set: no bool byte can hold
	 * a value other than 0 or 1, but an undefined bit must be refused. */
	sample_msg(RAFT_MSG_VOTE_RESP, &m);
	buf = encode(&m, &len);
	for (unsigned bit = 13; bit < 16; bit++) {
		buf[OFF_PRESENT + 1] ^= (uint8_t)(1u << (bit - 8));
		assert_malformed(buf, len);
		buf[OFF_PRESENT + 1] ^= (uint8_t)(1u << (bit - 8));
	}
	free(buf);
}

static void test_msg_rejects_present_zero_field(void **state)
{
	struct raft_msg m;
	size_t len;
	uint8_t *buf;

	(void)state;
	/* A heartbeat: commit (bit 2) is the first field after the header. */
	sample_msg(RAFT_MSG_HEARTBEAT, &m);
	m.ctx = 0;
	buf = encode(&m, &len);
	memset(buf + HEADER_SIZE, 0, 8);
	assert_malformed(buf, len); /* would re-encode without the field */
	free(buf);

	/* Present snapshot meta that is all zero. */
	m = (struct raft_msg){ .type = RAFT_MSG_SNAPSHOT, .snap.term = 1 };
	buf = encode(&m, &len);
	assert_int_equal(len, HEADER_SIZE + 17);
	buf[HEADER_SIZE + 8] = 0;
	assert_malformed(buf, len);
	free(buf);
}

static void test_msg_rejects_zero_counts(void **state)
{
	struct raft_msg m;
	size_t len;
	uint8_t *buf;

	(void)state;
	/* An APPEND with one empty entry, its count patched to 0 and the
	 * entry removed: present entries must number at least one. */
	struct raft_entry e = { .term = 1,
		.index = 1,
		.type = RAFT_ENTRY_NOOP };
	m = (struct raft_msg){ .type = RAFT_MSG_APPEND,
		.n_entries = 1,
		.entries = &e };
	buf = encode(&m, &len);
	put_le32(buf + HEADER_SIZE, 0);
	assert_malformed(buf, HEADER_SIZE + 4);
	free(buf);

	/* A chunk of length 0. */
	sample_msg(RAFT_MSG_SNAPSHOT, &m);
	buf = encode(&m, &len);
	size_t chunk_at = len - m.chunk_len - 4;
	put_le32(buf + chunk_at, 0);
	assert_malformed(buf, chunk_at + 4);
	free(buf);
}

static void test_msg_rejects_bad_entry_type(void **state)
{
	struct raft_msg m;
	size_t len;
	uint8_t *buf;
	const size_t type_at = HEADER_SIZE + 3 * 8 + 4 + 16; /* first entry */

	(void)state;
	sample_msg(RAFT_MSG_APPEND, &m);
	buf = encode(&m, &len);
	assert_int_equal(buf[type_at], RAFT_ENTRY_NORMAL);
	buf[type_at] = 0;
	assert_malformed(buf, len);
	buf[type_at] = 4;
	assert_malformed(buf, len);
	buf[type_at] = 0xFF;
	assert_malformed(buf, len);
	free(buf);
}

static void test_msg_rejects_too_many_voters(void **state)
{
	struct raft_msg m = { .type = RAFT_MSG_SNAPSHOT,
		.snap.index = 5,
		.snap.n_voters = RAFT_MAX_MEMBERS };
	size_t len;
	uint8_t *buf;
	uint8_t *longer;

	(void)state;
	for (unsigned i = 0; i < RAFT_MAX_MEMBERS; i++)
		m.snap.voters[i] = i + 1;
	buf = encode(&m, &len);
	/* Claim 16 voters and supply the 16th. */
	longer = calloc(1, len + 8);
	memcpy(longer, buf, len);
	longer[HEADER_SIZE + 16] = RAFT_MAX_MEMBERS + 1;
	longer[len] = 16;
	assert_malformed(longer, len + 8);
	longer[HEADER_SIZE + 16] = 0xFF;
	assert_malformed(longer, len + 8);
	free(longer);
	free(buf);
}

static void test_msg_rejects_chunk_outside_snapshot(void **state)
{
	struct raft_msg m;
	size_t len;
	uint8_t *buf;
	const size_t total_at = HEADER_SIZE + 8; /* after offset */

	(void)state;
	sample_msg(RAFT_MSG_SNAPSHOT, &m);
	buf = encode(&m, &len);
	buf[total_at] = (uint8_t)(buf[total_at] - 1); /* total one short */
	assert_malformed(buf, len);
	free(buf);

	/* offset + chunk_len overflows: total = UINT64_MAX does not save it. */
	sample_msg(RAFT_MSG_SNAPSHOT, &m);
	m.offset = UINT64_MAX - m.chunk_len;
	m.total = UINT64_MAX;
	buf = encode(&m, &len);
	buf[HEADER_SIZE] = (uint8_t)(buf[HEADER_SIZE] + 1); /* offset + 1 */
	assert_malformed(buf, len);
	free(buf);
}

static void test_msg_rejects_huge_counts_without_allocating(void **state)
{
	/* A header, entries present, a count, and a handful of bytes. */
	static const uint32_t counts[] = { 2, 1000, MSG_MAX_ENTRIES,
		MSG_MAX_ENTRIES + 1, UINT32_MAX };
	uint8_t buf[HEADER_SIZE + 4 + 2 * ENTRY_HEADER_SIZE - 1];
	struct raft_msg m = { .type = RAFT_MSG_APPEND };
	struct raft_entry e = { .term = 1,
		.index = 1,
		.type = RAFT_ENTRY_NOOP };
	size_t len;
	uint8_t *valid;

	(void)state;
	m.n_entries = 1;
	m.entries = &e;
	valid = encode(&m, &len);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, valid, len);
	free(valid);

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		put_le32(buf + HEADER_SIZE, counts[i]);
		calloc_watch_reset();
		assert_malformed(buf, sizeof(buf));
		/* Rejected before calloc() (when the watch is linked in). */
		assert_int_equal(calloc_calls, 0);
	}
}

static void test_msg_decode_allocates_one_array(void **state)
{
	struct raft_msg m, got;
	size_t len;
	uint8_t *buf;

	(void)state;
	sample_msg(RAFT_MSG_APPEND, &m);
	buf = encode(&m, &len);
	calloc_watch_reset();
	assert_int_equal(msg_decode(buf, len, &got), 0);
	if (__real_calloc == NULL) {
		msg_release(&got);
		free(buf);
		skip(); /* not linked with -Wl,--wrap=calloc */
	}
	assert_int_equal(calloc_calls, 1);
	assert_int_equal(calloc_largest, 3 * sizeof(struct raft_entry));
	msg_release(&got);
	/* Out of memory: -ENOMEM and nothing held. */
	calloc_fail = 1;
	memset(&got, 0xAB, sizeof(got));
	assert_int_equal(msg_decode(buf, len, &got), -ENOMEM);
	assert_msg_zero(&got);
	calloc_watch_reset();
	free(buf);
}

/* Flip bytes of valid encodings: the decoder must never crash, and what it
 * accepts must re-encode to exactly the bytes it was given. */
static void test_msg_mutations_reject_or_round_trip(void **state)
{
	uint8_t *enc[N_SAMPLES];
	size_t enc_len[N_SAMPLES];
	uint8_t buf[2048], out[2048];
	struct raft_msg m;
	unsigned accepted = 0;
	/* RAFTKV_LONG (make check-long): twenty times as many. */
	unsigned iters = getenv("RAFTKV_LONG") ? 2000000 : 100000;

	(void)state;
	for (unsigned i = 0; i < N_SAMPLES; i++) {
		nth_sample(i, &m);
		enc[i] = encode(&m, &enc_len[i]);
	}
	rng_state = 0x5EEDF00DCAFEull;
	for (unsigned iter = 0; iter < iters; iter++) {
		unsigned s = (unsigned)(rng_next() % N_SAMPLES);
		size_t len = enc_len[s];
		unsigned flips = 1 + (unsigned)(rng_next() % 4);

		assert_true(len + 8 <= sizeof(buf));
		memcpy(buf, enc[s], len);
		for (unsigned k = 0; k < flips; k++) {
			uint64_t r = rng_next();
			size_t at = (size_t)(r % len);
			/* Bias towards the header, where the structure lives. */
			if ((r >> 32) % 2)
				at %= HEADER_SIZE + 16 < len ? HEADER_SIZE + 16
				                             : len;
			if ((r >> 40) % 4 == 0)
				buf[at] = (uint8_t)(r >> 48);
			else
				buf[at] ^= (uint8_t)(1u << ((r >> 48) % 8));
		}
		if (rng_next() % 8 == 0) /* sometimes cut or extend too */
			len = (size_t)(rng_next() % (len + 8));

		int rv = msg_decode(buf, len, &m);
		if (rv != 0) {
			assert_int_equal(rv, RAFT_EMALFORMED);
			assert_msg_zero(&m);
			continue;
		}
		accepted++;
		assert_int_equal(msg_encoded_size(&m), len);
		assert_int_equal(msg_encode(&m, out, sizeof(out)), (long)len);
		assert_memory_equal(out, buf, len);
		msg_release(&m);
	}
	/* Flips in u64 payloads are accepted: the loop did see both sides. */
	assert_true(accepted > 1000);
	for (unsigned i = 0; i < N_SAMPLES; i++)
		free(enc[i]);
}

/* ------------------------------------------------------------------------
 * Tests: entries on their own (the WAL record layout)
 * ------------------------------------------------------------------------ */

static void test_msg_entry_round_trips(void **state)
{
	uint8_t buf[256];
	struct raft_entry got;

	(void)state;
	init_sample_data();
	for (unsigned i = 0; i < 3; i++) {
		const struct raft_entry *e = &sample_entries[i];
		size_t n = msg_entry_encoded_size(e);

		assert_int_equal(n, ENTRY_HEADER_SIZE + e->len);
		assert_int_equal(msg_encode_entry(e, buf, n - 1), -ENOBUFS);
		assert_int_equal(msg_encode_entry(e, buf, sizeof(buf)),
		    (long)n);
		/* Trailing bytes are the next record: consumed count says so. */
		assert_int_equal(msg_decode_entry(buf, sizeof(buf), &got),
		    (long)n);
		assert_entry_equal(e, &got);
		assert_int_equal(msg_decode_entry(buf, n, &got), (long)n);
		assert_entry_equal(e, &got);
		for (size_t cut = 0; cut < n; cut++)
			assert_int_equal(msg_decode_entry(buf, cut, &got),
			    RAFT_EMALFORMED);
	}
}

static void test_msg_entry_rejects_bad_type(void **state)
{
	struct raft_entry e = { .term = 1, .index = 2, .type = 0 };
	struct raft_entry got;
	uint8_t buf[64];

	(void)state;
	assert_int_equal(msg_encode_entry(&e, buf, sizeof(buf)), -EINVAL);
	e.type = RAFT_ENTRY_NORMAL;
	e.len = 4; /* data NULL */
	assert_int_equal(msg_encode_entry(&e, buf, sizeof(buf)), -EINVAL);
	e.len = 0;
	assert_int_equal(msg_encode_entry(&e, buf, sizeof(buf)),
	    ENTRY_HEADER_SIZE);
	buf[16] = 4;
	assert_int_equal(msg_decode_entry(buf, sizeof(buf), &got),
	    RAFT_EMALFORMED);
}

static void test_msg_entry_rejects_length_past_end(void **state)
{
	struct raft_entry e = { .term = 1,
		.index = 2,
		.type = RAFT_ENTRY_NORMAL,
		.len = 5,
		.data = data_b };
	struct raft_entry got;
	uint8_t buf[64];

	(void)state;
	assert_int_equal(msg_encode_entry(&e, buf, sizeof(buf)), 26);
	put_le32(buf + 17, UINT32_MAX);
	assert_int_equal(msg_decode_entry(buf, sizeof(buf), &got),
	    RAFT_EMALFORMED);
	put_le32(buf + 17, 6);
	assert_int_equal(msg_decode_entry(buf, 26, &got), RAFT_EMALFORMED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msg_round_trips_every_type),
		cmocka_unit_test(
		    test_msg_round_trips_every_field_on_every_type),
		cmocka_unit_test(test_msg_round_trips_header_only),
		cmocka_unit_test(test_msg_round_trips_empty_entries),
		cmocka_unit_test(test_msg_round_trips_many_entries),
		cmocka_unit_test(test_msg_round_trips_snapshot_voters),
		cmocka_unit_test(test_msg_round_trips_snapshot_learners),
		cmocka_unit_test(test_msg_round_trips_last_chunk_at_end),
		cmocka_unit_test(test_msg_encoded_size_is_bytes_written),
		cmocka_unit_test(test_msg_heartbeat_is_small),
		cmocka_unit_test(test_msg_append_overhead_is_small),
		cmocka_unit_test(test_msg_encode_rejects_invalid),
		cmocka_unit_test(test_msg_encode_rejects_over_max_bytes),
		cmocka_unit_test(test_msg_rejects_every_truncation),
		cmocka_unit_test(test_msg_rejects_trailing_byte),
		cmocka_unit_test(test_msg_rejects_bad_magic_version_type),
		cmocka_unit_test(test_msg_rejects_reserved_flag_bits),
		cmocka_unit_test(test_msg_rejects_present_zero_field),
		cmocka_unit_test(test_msg_rejects_zero_counts),
		cmocka_unit_test(test_msg_rejects_bad_entry_type),
		cmocka_unit_test(test_msg_rejects_too_many_voters),
		cmocka_unit_test(test_msg_rejects_chunk_outside_snapshot),
		cmocka_unit_test(
		    test_msg_rejects_huge_counts_without_allocating),
		cmocka_unit_test(test_msg_decode_allocates_one_array),
		cmocka_unit_test(test_msg_mutations_reject_or_round_trip),
		cmocka_unit_test(test_msg_entry_round_trips),
		cmocka_unit_test(test_msg_entry_rejects_bad_type),
		cmocka_unit_test(test_msg_entry_rejects_length_past_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
