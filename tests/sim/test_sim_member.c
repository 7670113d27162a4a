/*
 * test_sim_member.c - focused membership-change scenarios in the
 * simulator (raft/config.h; the randomized sweep mixes the same changes
 * with every other fault).  Every invariant of sim.h, including 10 on
 * configurations, is checked after every event; each scenario runs for 3
 * seeds (10 with RAFTKV_LONG=1; SIM_SEED=N replays one).
 *
 *   grow 3 -> 5         two spares join as learners while a client
 *                       writes, are promoted, and then count: with two
 *                       original voters crashed, the cluster commits
 *   remove the leader   it keeps leading until its removal commits,
 *                       steps down and hands over; it stays quiet, and no
 *                       term moves for long after
 *   removed while cut   a voter removed behind a partition keeps
 *                       pre-campaigning with its old configuration when
 *                       it comes back: nobody's term moves
 *   learner + snapshot  a learner added after compaction catches up
 *                       through InstallSnapshot, is promoted, and counts
 *   replace a dead one  remove the crashed voter, add a fresh machine,
 *                       promote it; a removal that would leave no live
 *                       quorum is refused
 *   two at once         the leader, cut off with two learners from the
 *                       other voters, promotes one and is refused the
 *                       second (one change at a time): had it been
 *                       accepted, the leader's side {leader, 2 new}
 *                       and the other side {2 old} would be disjoint
 *                       majorities, which invariant 10 reports
 */
#include <string.h>

#include "raft/config.h"
#include "tests/sim/sim_cmocka.h"

static struct sim *member_sim(uint64_t seed, int n, int voters,
    unsigned snap_every, const char *name)
{
	struct sim_config c;

	sim_config_lab(&c, n, true, snap_every != 0, seed);
	c.n_voters = voters;
	c.snap_every = snap_every;
	return sim_new_cmocka(&c, name);
}

static bool conf_has(const struct raft_conf *c, int type, int who)
{
	raft_id id = (raft_id)who + 1;

	switch (type) {
	case RAFT_CONF_ADD_LEARNER:
		return config_is_learner(c, id) || config_is_voter(c, id);
	case RAFT_CONF_PROMOTE:
		return config_is_voter(c, id);
	default:
		return config_member_index(c, id) < 0;
	}
}

/* Make the change happen, retrying while the core says "later" or the
 * leader changes; returns once it is in the leader's configuration and
 * committed (the leader's commit passed it). */
static void change(struct sim *s, int type, int who)
{
	uint64_t deadline = sim_now(s) + 20 * SIM_SEC;

	while (sim_now(s) < deadline) {
		struct raft_conf conf;
		struct raft_status st;
		raft_index ci;
		int l = sim_check_one_leader(s), rc;

		raft_get_conf(sim_raft(s, l), &conf, &ci);
		raft_status(sim_raft(s, l), &st);
		if (conf_has(&conf, type, who) && st.commit >= ci)
			return;
		if (conf_has(&conf, type, who)) {
			sim_sleep(s, 50 * SIM_MS);
			continue;
		}
		rc = sim_conf_change(s, l, type, who);
		if (rc != 0 && rc != RAFT_ECONFPENDING &&
		    rc != RAFT_ENOTCAUGHTUP && rc != RAFT_ENOTLEADER &&
		    rc != RAFT_ENOQUORUM)
			fail_msg("seed %llu: change %d of n%d: %s",
			    (unsigned long long)sim_seed(s), type, who + 1,
			    rk_strerror(rc));
		sim_sleep(s, 100 * SIM_MS);
	}
	fail_msg("seed %llu: change %d of n%d did not happen in 20 s",
	    (unsigned long long)sim_seed(s), type, who + 1);
}

static raft_term term_of(struct sim *s, int i)
{
	bool l;

	return sim_get_state(s, i, &l);
}

static void grow_3_to_5(uint64_t seed)
{
	struct sim *s = member_sim(seed, 5, 3, 0, "test_member_grow_3_to_5");
	struct sim_one *op[8];
	struct raft_conf conf;
	uint64_t v = 1;
	int i, k, l;

	for (k = 0; k < 5; k++)
		sim_one_int(s, v++, 3, true);
	/* Writes in flight while the two spares join and are promoted. */
	for (k = 0; k < 4; k++) {
		uint8_t b[8];

		sim_int_bytes(v++, b);
		op[k] = sim_one_start(s, b, 8, 3, true);
	}
	change(s, RAFT_CONF_ADD_LEARNER, 3);
	change(s, RAFT_CONF_ADD_LEARNER, 4);
	for (k = 4; k < 8; k++) {
		uint8_t b[8];

		sim_int_bytes(v++, b);
		op[k] = sim_one_start(s, b, 8, 3, true);
	}
	change(s, RAFT_CONF_PROMOTE, 3);
	change(s, RAFT_CONF_PROMOTE, 4);
	for (k = 0; k < 8; k++) {
		while (!sim_one_done(op[k]))
			sim_sleep(s, 10 * SIM_MS);
		sim_one_finish(s, op[k]);
	}
	sim_one_int(s, v++, 5, true);
	for (i = 0; i < 5; i++) {
		assert_true(sim_get_conf(s, i, &conf));
		assert_int_equal(conf.n_voters, 5);
		assert_int_equal(conf.n_learners, 0);
	}
	/* The new voters count: two original followers down, still a
	 * quorum of 3 out of 5. */
	l = sim_check_one_leader(s);
	for (i = 0, k = 0; i < 3 && k < 2; i++)
		if (i != l) {
			sim_crash(s, i);
			k++;
		}
	sim_one_int(s, v++, 3, true);
	sim_heal_and_check(s, 10 * SIM_SEC, 30 * SIM_SEC);
	lab_end(s);
}

static void remove_leader(uint64_t seed)
{
	struct sim *s = member_sim(seed, 3, 3, 0, "test_member_remove_leader");
	struct raft_status st;
	raft_term t0;
	int l, l2, i;

	sim_one_int(s, 1, 3, true);
	l = sim_check_one_leader(s);
	change(s, RAFT_CONF_REMOVE, l);
	sim_sleep(s, 2 * SIM_SEC);
	raft_status(sim_raft(s, l), &st);
	assert_int_not_equal(st.role, RAFT_LEADER);
	assert_false(st.voter);
	l2 = sim_check_one_leader(s);
	assert_int_not_equal(l2, l);
	sim_one_int(s, 2, 2, true);
	/* Long after: the two keep their leader and term; the removed one
	 * hears nothing and never moves its own term either. */
	t0 = term_of(s, l2);
	sim_sleep(s, 20 * SIM_SEC);
	assert_int_equal(sim_check_one_leader(s), l2);
	for (i = 0; i < 3; i++)
		if (i != l)
			assert_int_equal(term_of(s, i), t0);
	assert_true(term_of(s, l) < t0);
	sim_one_int(s, 3, 2, true);
	sim_heal_and_check(s, 10 * SIM_SEC, 30 * SIM_SEC);
	lab_end(s);
}

static void removed_while_cut(uint64_t seed)
{
	struct sim *s = member_sim(seed, 5, 5, 0,
	    "test_member_removed_while_cut");
	raft_term t0, tx;
	int l, x, i;

	sim_one_int(s, 1, 5, true);
	l = sim_check_one_leader(s);
	x = (l + 2) % 5;
	sim_disconnect(s, x);
	sim_sleep(s, 2 * SIM_SEC); /* the leader notices x is gone */
	change(s, RAFT_CONF_REMOVE, x);
	sim_one_int(s, 2, 4, true);
	sim_sleep(s, 5 * SIM_SEC); /* x times out, pre-campaigns, alone */
	tx = term_of(s, x);
	l = sim_check_one_leader(s);
	t0 = term_of(s, l);
	sim_connect(s, x);
	sim_sleep(s, 20 * SIM_SEC);
	/* x's pre-votes are dropped (it is no voter of theirs): no term
	 * moves, the leader stays, and x stays where it was. */
	assert_int_equal(sim_check_one_leader(s), l);
	for (i = 0; i < 5; i++)
		if (i != x)
			assert_int_equal(term_of(s, i), t0);
	assert_int_equal(term_of(s, x), tx);
	sim_one_int(s, 3, 4, true);
	sim_heal_and_check(s, 10 * SIM_SEC, 30 * SIM_SEC);
	lab_end(s);
}

static void learner_through_snapshot(uint64_t seed)
{
	struct sim *s = member_sim(seed, 4, 3, 10,
	    "test_member_learner_through_snapshot");
	uint64_t installed;
	int k, l;

	for (k = 1; k <= 60; k++)
		sim_one_int(s, (uint64_t)k, 3, true);
	installed = sim_stats(s)->snapshots_installed;
	change(s, RAFT_CONF_ADD_LEARNER, 3);
	for (k = 0; k < 100 && sim_applied(s, 3) < sim_max_applied(s); k++)
		sim_sleep(s, 100 * SIM_MS);
	/* Its log starts after the leaders' compactions: only a snapshot
	 * could bring it there. */
	assert_true(sim_stats(s)->snapshots_installed > installed);
	assert_true(sim_applied(s, 3) >= sim_max_applied(s) - 1);
	change(s, RAFT_CONF_PROMOTE, 3);
	l = sim_check_one_leader(s);
	sim_crash(s, (l + 1) % 3); /* an original voter, not the leader */
	sim_one_int(s, 1000, 3, true);
	sim_heal_and_check(s, 10 * SIM_SEC, 30 * SIM_SEC);
	lab_end(s);
}

static void replace_dead(uint64_t seed)
{
	struct sim *s = member_sim(seed, 4, 3, 0, "test_member_replace_dead");
	int l, dead, live;

	sim_one_int(s, 1, 3, true);
	l = sim_check_one_leader(s);
	dead = (l + 1) % 3;
	sim_crash(s, dead);
	sim_sleep(s, 2 * SIM_SEC); /* the leader notices */
	l = sim_check_one_leader(s);
	live = 3 - l - dead; /* the third of 0, 1, 2 */
	/* Removing the live follower would leave {leader, dead}: refused. */
	assert_int_equal(sim_conf_change(s, l, RAFT_CONF_REMOVE, live),
	    RAFT_ENOQUORUM);
	change(s, RAFT_CONF_REMOVE, dead);
	change(s, RAFT_CONF_ADD_LEARNER, 3);
	change(s, RAFT_CONF_PROMOTE, 3);
	sim_one_int(s, 2, 3, true);
	sim_heal_and_check(s, 10 * SIM_SEC, 30 * SIM_SEC);
	lab_end(s);
}

static void two_at_once(uint64_t seed)
{
	struct sim *s = member_sim(seed, 5, 3, 0, "test_member_two_at_once");
	int side[5], l, i;

	sim_one_int(s, 1, 3, true);
	change(s, RAFT_CONF_ADD_LEARNER, 3);
	change(s, RAFT_CONF_ADD_LEARNER, 4);
	sim_one_int(s, 2, 5, true); /* the learners are caught up */
	l = sim_check_one_leader(s);
	for (i = 0; i < 5; i++)
		side[i] = i == l || i >= 3;
	sim_partition(s, side);
	/* Right after the cut the leader still counts the others as
	 * active: the first promotion passes the live-quorum check. */
	assert_int_equal(sim_conf_change(s, l, RAFT_CONF_PROMOTE, 3), 0);
	assert_int_equal(sim_conf_change(s, l, RAFT_CONF_PROMOTE, 4),
	    RAFT_ECONFPENDING);
	/* The old voters elect one of theirs; the leader's side cannot
	 * commit its change ({leader, n4} of 4 voters). */
	sim_sleep(s, 5 * SIM_SEC);
	sim_connect_all(s);
	change(s, RAFT_CONF_PROMOTE, 3);
	change(s, RAFT_CONF_PROMOTE, 4);
	sim_one_int(s, 3, 5, true);
	sim_heal_and_check(s, 10 * SIM_SEC, 30 * SIM_SEC);
	lab_end(s);
}

SIM_TEST(test_member_grow_3_to_5, grow_3_to_5)
SIM_TEST(test_member_remove_leader, remove_leader)
SIM_TEST(test_member_removed_while_cut, removed_while_cut)
SIM_TEST(test_member_learner_through_snapshot, learner_through_snapshot)
SIM_TEST(test_member_replace_dead, replace_dead)
SIM_TEST(test_member_two_at_once, two_at_once)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_member_grow_3_to_5),
		cmocka_unit_test(test_member_remove_leader),
		cmocka_unit_test(test_member_removed_while_cut),
		cmocka_unit_test(test_member_learner_through_snapshot),
		cmocka_unit_test(test_member_replace_dead),
		cmocka_unit_test(test_member_two_at_once),
	};

	if (getenv("SIM_TEST"))
		cmocka_set_test_filter(getenv("SIM_TEST"));
	return cmocka_run_group_tests_name("sim_member", tests, NULL, NULL);
}
