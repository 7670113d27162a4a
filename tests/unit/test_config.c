/*
 * test_config.c - the configuration rules and the membership-change entry
 * codec of raft/config.h: one-member changes and their refusals, well-
 * formedness, and a decoder that takes entries from the network (every
 * truncation and trailing byte refused, every single-byte mutation either
 * refused or decoded into a change that re-encodes to the same bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/config.h"

static struct raft_conf conf3(void)
{
	struct raft_conf c = { .n_voters = 3, .voters = { 1, 2, 3 } };

	return c;
}

static void test_config_apply_one_member_changes(void **state)
{
	struct raft_conf c = conf3(), n;

	(void)state;
	assert_int_equal(config_apply(&c, RAFT_CONF_ADD_LEARNER, 4, &n), 0);
	assert_int_equal(n.n_voters, 3);
	assert_int_equal(n.n_learners, 1);
	assert_true(config_is_learner(&n, 4));
	assert_int_equal(config_member_index(&n, 4), 3);
	assert_int_equal(config_voter_diff(&c, &n), 0);
	assert_int_equal(config_apply(&n, RAFT_CONF_PROMOTE, 4, &n), 0);
	assert_true(config_is_voter(&n, 4));
	assert_int_equal(n.n_learners, 0);
	assert_int_equal(config_voter_diff(&c, &n), 1);
	assert_int_equal(config_quorum(&n), 3);
	assert_int_equal(config_apply(&n, RAFT_CONF_REMOVE, 2, &n), 0);
	assert_int_equal(n.n_voters, 3);
	assert_false(config_is_voter(&n, 2));
	assert_int_equal(config_member_index(&n, 2), -1);
	/* Refusals. */
	assert_int_equal(config_apply(&c, RAFT_CONF_ADD_LEARNER, 1, &n),
	    -EEXIST);
	assert_int_equal(config_apply(&c, RAFT_CONF_PROMOTE, 1, &n), -EEXIST);
	assert_int_equal(config_apply(&c, RAFT_CONF_PROMOTE, 9, &n), -ENOENT);
	assert_int_equal(config_apply(&c, RAFT_CONF_REMOVE, 9, &n), -ENOENT);
	assert_int_equal(config_apply(&c, RAFT_CONF_ADD_LEARNER, 0, &n),
	    -EINVAL);
	assert_int_equal(config_apply(&c, 0, 4, &n), -EINVAL);
	c.n_voters = 1;
	assert_int_equal(config_apply(&c, RAFT_CONF_REMOVE, 1, &n),
	    RAFT_ELASTVOTER);
	for (raft_id id = 2; id <= RAFT_MAX_MEMBERS; id++)
		assert_int_equal(config_apply(&c, RAFT_CONF_ADD_LEARNER, id,
		                     &c),
		    0);
	assert_int_equal(config_apply(&c, RAFT_CONF_ADD_LEARNER, 99, &n),
	    -ENOSPC);
}

static void test_config_check(void **state)
{
	struct raft_conf c = conf3();

	(void)state;
	assert_int_equal(config_check(&c), 0);
	c.learners[c.n_learners++] = 2; /* also a voter */
	assert_int_equal(config_check(&c), -EINVAL);
	c.learners[0] = 0;
	assert_int_equal(config_check(&c), -EINVAL);
	c = conf3();
	c.voters[2] = 1;
	assert_int_equal(config_check(&c), -EINVAL);
	c = conf3();
	c.n_voters = 0;
	assert_int_equal(config_check(&c), -EINVAL);
	c = conf3();
	c.n_learners = RAFT_MAX_MEMBERS - 2;
	for (uint32_t i = 0; i < c.n_learners; i++)
		c.learners[i] = 10 + i;
	assert_int_equal(config_check(&c), -EINVAL); /* 16 members */
	c.n_learners--;
	assert_int_equal(config_check(&c), 0);
}

static struct raft_entry encode(int type, raft_id id, const struct raft_conf *c,
    const char *ctx)
{
	struct raft_entry e = { .term = 1,
		.index = 1,
		.type = RAFT_ENTRY_CONF };

	assert_int_equal(config_encode(type, id, c, ctx,
	                     ctx ? (uint32_t)strlen(ctx) : 0, &e.data, &e.len),
	    0);
	return e;
}

static void test_config_codec_round_trips(void **state)
{
	struct raft_conf c = conf3(), n;
	struct raft_conf_change cc;
	struct raft_entry e;

	(void)state;
	assert_int_equal(config_apply(&c, RAFT_CONF_ADD_LEARNER, 7, &n), 0);
	e = encode(RAFT_CONF_ADD_LEARNER, 7, &n, "tcp://h:1 key");
	assert_int_equal(raft_conf_change_decode(&e, &cc), 0);
	assert_int_equal(cc.type, RAFT_CONF_ADD_LEARNER);
	assert_int_equal(cc.id, 7);
	assert_true(config_equal(&cc.conf, &n));
	assert_int_equal(cc.ctx_len, 13);
	assert_memory_equal(cc.ctx, "tcp://h:1 key", 13);
	/* Not a change entry, or a change inconsistent with its own
	 * configuration. */
	e.type = RAFT_ENTRY_NORMAL;
	assert_int_equal(raft_conf_change_decode(&e, &cc), RAFT_EMALFORMED);
	free(e.data);
	e = encode(RAFT_CONF_REMOVE, 7, &n, NULL); /* 7 still there */
	assert_int_equal(raft_conf_change_decode(&e, &cc), RAFT_EMALFORMED);
	free(e.data);
	e = encode(RAFT_CONF_PROMOTE, 7, &n, NULL); /* a learner */
	assert_int_equal(raft_conf_change_decode(&e, &cc), RAFT_EMALFORMED);
	free(e.data);
	e = encode(RAFT_CONF_REMOVE, 2, &c, NULL); /* 2 still a voter */
	assert_int_equal(raft_conf_change_decode(&e, &cc), RAFT_EMALFORMED);
	free(e.data);
	assert_int_equal(config_encode(RAFT_CONF_REMOVE, 2, &c, NULL,
	                     CONFIG_MAX_CTX + 1, &e.data, &e.len),
	    -EINVAL);
}

static void test_config_decoder_refuses_damage(void **state)
{
	struct raft_conf c = conf3(), n;
	struct raft_conf_change cc;
	struct raft_entry e, m;
	uint8_t *buf;

	(void)state;
	assert_int_equal(config_apply(&c, RAFT_CONF_ADD_LEARNER, 4, &n), 0);
	e = encode(RAFT_CONF_ADD_LEARNER, 4, &n, "ctx");
	m = e;
	for (uint32_t len = 0; len < e.len; len++) {
		m.len = len;
		assert_int_equal(raft_conf_change_decode(&m, &cc),
		    RAFT_EMALFORMED);
	}
	buf = malloc(e.len + 1);
	memcpy(buf, e.data, e.len);
	buf[e.len] = 0;
	m.data = buf;
	m.len = e.len + 1;
	assert_int_equal(raft_conf_change_decode(&m, &cc), RAFT_EMALFORMED);
	/* Every single-byte change: refused, or a well-formed change that
	 * encodes back to exactly these bytes. */
	m.len = e.len;
	for (uint32_t k = 0; k < e.len; k++) {
		for (unsigned v = 0; v < 256; v += 7) {
			struct raft_entry back;

			memcpy(buf, e.data, e.len);
			buf[k] ^= (uint8_t)(v | 1);
			if (raft_conf_change_decode(&m, &cc) != 0)
				continue;
			assert_int_equal(config_encode(cc.type, cc.id, &cc.conf,
			                     cc.ctx, cc.ctx_len, &back.data,
			                     &back.len),
			    0);
			assert_int_equal(back.len, m.len);
			assert_memory_equal(back.data, m.data, m.len);
			free(back.data);
		}
	}
	free(buf);
	free(e.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_apply_one_member_changes),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_config_codec_round_trips),
		cmocka_unit_test(test_config_decoder_refuses_damage),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
