/*
 * test_cproto_member.c - the client protocol's MEMBER payloads
 * (raft/client/cproto.c): requests and the LIST answer round-trip, and
 * what is not exactly one of them is CPROTO_EMALFORMED.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/client/cproto.h"

static struct memberdir_entry entry(uint64_t id)
{
	struct memberdir_entry e = { .id = id };

	snprintf(e.peer, sizeof(e.peer), "tcp://10.0.0.%u:7001", (unsigned)id);
	snprintf(e.client, sizeof(e.client), "tcp://10.0.0.%u:7101",
	    (unsigned)id);
	memset(e.key, 'K', 40);
	return e;
}

static void test_member_req_round_trip(void **state)
{
	struct cproto_member_req r = { .action = CPROTO_MEMBER_ADD, .id = 4 },
	                         back;
	uint8_t *buf;
	uint32_t len;

	(void)state;
	r.entry = entry(4);
	assert_int_equal(cproto_encode_member_req(&r, &buf, &len), 0);
	assert_int_equal(cproto_decode_member_req(buf, len, &back), 0);
	assert_int_equal(back.action, CPROTO_MEMBER_ADD);
	assert_int_equal(back.id, 4);
	assert_memory_equal(&back.entry, &r.entry, sizeof(r.entry));
	for (uint32_t cut = 0; cut < len; cut++)
		assert_int_equal(cproto_decode_member_req(buf, cut, &back),
		    CPROTO_EMALFORMED);
	/* The entry must be the member the request is about. */
	buf[1] = 5;
	assert_int_equal(cproto_decode_member_req(buf, len, &back),
	    CPROTO_EMALFORMED);
	free(buf);
	for (uint8_t a = CPROTO_MEMBER_LIST; a <= CPROTO_MEMBER_REMOVE; a++) {
		if (a == CPROTO_MEMBER_ADD)
			continue;
		r = (struct cproto_member_req){ .action = a, .id = 9 };
		assert_int_equal(cproto_encode_member_req(&r, &buf, &len), 0);
		assert_int_equal(len, 9);
		assert_int_equal(cproto_decode_member_req(buf, len, &back), 0);
		assert_int_equal(back.action, a);
		assert_int_equal(back.id, 9);
		/* Trailing bytes, an unknown action. */
		buf = realloc(buf, len + 1);
		assert_int_equal(cproto_decode_member_req(buf, len + 1, &back),
		    CPROTO_EMALFORMED);
		buf[0] = 0;
		assert_int_equal(cproto_decode_member_req(buf, len, &back),
		    CPROTO_EMALFORMED);
		buf[0] = 5;
		assert_int_equal(cproto_decode_member_req(buf, len, &back),
		    CPROTO_EMALFORMED);
		free(buf);
	}
}

static void test_member_list_round_trip(void **state)
{
	struct cproto_member_list l = { .conf_index = 77 }, back;
	uint8_t *buf;
	uint32_t len;

	(void)state;
	l.conf.n_voters = 3;
	l.conf.n_learners = 1;
	for (uint32_t i = 0; i < 4; i++) {
		if (i < 3)
			l.conf.voters[i] = i + 1;
		l.dir.m[l.dir.n++] = entry(i + 1);
	}
	l.conf.learners[0] = 4;
	assert_int_equal(cproto_encode_member_list(&l, &buf, &len), 0);
	assert_int_equal(cproto_decode_member_list(buf, len, &back), 0);
	assert_int_equal(back.conf_index, 77);
	assert_int_equal(back.conf.n_voters, 3);
	assert_int_equal(back.conf.n_learners, 1);
	assert_int_equal(back.conf.learners[0], 4);
	assert_int_equal(back.dir.n, 4);
	assert_string_equal(memberdir_find(&back.dir, 3)->client,
	    "tcp://10.0.0.3:7101");
	for (uint32_t cut = 0; cut < len; cut++)
		assert_int_equal(cproto_decode_member_list(buf, cut, &back),
		    CPROTO_EMALFORMED);
	buf[8] = RAFT_MAX_MEMBERS + 1; /* too many voters */
	assert_int_equal(cproto_decode_member_list(buf, len, &back),
	    CPROTO_EMALFORMED);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_member_req_round_trip),
		cmocka_unit_test(test_member_list_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
