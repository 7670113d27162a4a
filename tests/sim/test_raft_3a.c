/*
 * test_raft_3a.c - 6.5840 Lab 3A (leader election), ported to the
 * simulator, plus the election features of our core beyond the lab:
 * pre-vote, check-quorum, leader stickiness, leadership transfer.
 *
 * Each lab test keeps the raft1 tester's schedule and limits (see
 * 6.5840-tests.md 2.2), in virtual time: checkOneLeader gives ~5 s, the
 * 2 * RaftElectionTimeout sleeps are 2 s.  Each runs with several seeds
 * (sim_cmocka.h); SIM_SEED=N SIM_TEST=name replays one.
 */
#include <errno.h>

#include "tests/sim/sim_cmocka.h"

#define ELECTION_TIMEOUT (1000 * SIM_MS) /* RaftElectionTimeout */

/* --- fixtures / helpers ---------------------------------------------- */

static int leader_count(struct sim *s, raft_term *term)
{
	int i, n = 0;

	for (i = 0; i < sim_n(s); i++) {
		bool l;
		raft_term t = sim_get_state(s, i, &l);
		if (l && sim_connected(s, i)) {
			n++;
			if (term)
				*term = t;
		}
	}
	return n;
}

/* --- lab tests -------------------------------------------------------- */

/* TestInitialElection3A */
static void run_initial_election(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed,
	    "test_initial_election_3a");
	raft_term term1, term2;

	sim_check_one_leader(s);
	sim_sleep(s, 50 * SIM_MS);
	term1 = sim_check_terms(s);
	if (term1 < 1)
		sim_fail(s, "term is %llu, but should be at least 1",
		    (unsigned long long)term1);
	sim_sleep(s, 2 * ELECTION_TIMEOUT);
	term2 = sim_check_terms(s);
	if (term1 != term2)
		fprintf(stderr,
		    "warning: term changed even though there were "
		    "no failures (seed %llu)\n",
		    (unsigned long long)seed);
	sim_check_one_leader(s);
	lab_end(s);
}

/* TestReElection3A */
static void run_re_election(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_re_election_3a");
	int servers = 3, leader1, leader2;

	leader1 = sim_check_one_leader(s);
	sim_disconnect(s, leader1);
	sim_check_one_leader(s);
	sim_connect(s, leader1);
	leader2 = sim_check_one_leader(s);
	sim_disconnect(s, leader2);
	sim_disconnect(s, (leader2 + 1) % servers);
	sim_sleep(s, 2 * ELECTION_TIMEOUT);
	sim_check_no_leader(s);
	sim_connect(s, (leader2 + 1) % servers);
	sim_check_one_leader(s);
	sim_connect(s, leader2);
	sim_check_one_leader(s);
	lab_end(s);
}

/* TestManyElections3A */
static void run_many_elections(uint64_t seed)
{
	struct sim *s = lab_new(7, true, false, seed, "test_many_elections_3a");
	int servers = 7, ii;

	sim_check_one_leader(s);
	for (ii = 1; ii < 10; ii++) {
		int i1 = (int)sim_randn(s, servers);
		int i2 = (int)sim_randn(s, servers);
		int i3 = (int)sim_randn(s, servers);
		sim_disconnect(s, i1);
		sim_disconnect(s, i2);
		sim_disconnect(s, i3);
		sim_check_one_leader(s);
		sim_connect(s, i1);
		sim_connect(s, i2);
		sim_connect(s, i3);
	}
	sim_check_one_leader(s);
	lab_end(s);
}

/* --- beyond the lab --------------------------------------------------- */

/*
 * Pre-vote: a member cut off for many election timeouts must not bump its
 * term (its pre-votes fail), so on rejoining it does not disrupt the
 * leader: the leader and the term stay the same.
 */
static void run_prevote_rejoin(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_prevote_rejoin");
	int leader, other, i;
	raft_term term, t;
	bool l;

	leader = sim_check_one_leader(s);
	term = sim_check_terms(s);
	other = (leader + 1) % 3;
	sim_disconnect(s, other);
	sim_sleep(s, 10 * ELECTION_TIMEOUT);
	t = sim_get_state(s, other, &l);
	if (t != term)
		sim_fail(s,
		    "pre-vote: isolated n%d moved from term %llu to %llu",
		    other + 1, (unsigned long long)term, (unsigned long long)t);
	sim_connect(s, other);
	sim_sleep(s, 3 * ELECTION_TIMEOUT);
	for (i = 0; i < 3; i++) {
		t = sim_get_state(s, i, &l);
		if (t != term)
			sim_fail(s,
			    "pre-vote: rejoining n%d disrupted term %llu "
			    "(n%d now in %llu)",
			    other + 1, (unsigned long long)term, i + 1,
			    (unsigned long long)t);
	}
	sim_get_state(s, leader, &l);
	if (!l)
		sim_fail(s,
		    "pre-vote: leader n%d lost leadership after a "
		    "rejoin",
		    leader + 1);
	lab_end(s);
}

/*
 * Check-quorum: a leader cut off from the majority steps down within an
 * election timeout (2 x election_tick ticks = 1 s, plus one tick), even
 * though nobody with a higher term ever reaches it.
 */
static void run_check_quorum(uint64_t seed)
{
	struct sim *s = lab_new(5, true, false, seed, "test_check_quorum");
	int leader, i;
	bool l;

	leader = sim_check_one_leader(s);
	for (i = 0; i < 5; i++)
		sim_set_link(s, leader, i, i == leader);
	for (i = 0; i < 5; i++)
		sim_set_link(s, i, leader, false);
	sim_sleep(s, 2 * ELECTION_TIMEOUT + 100 * SIM_MS);
	sim_get_state(s, leader, &l);
	if (l)
		sim_fail(s,
		    "check-quorum: isolated leader n%d still leads "
		    "after 2 election timeouts",
		    leader + 1);
	lab_end(s);
}

/*
 * Leader stickiness: with check-quorum, a follower that hears from a live
 * leader ignores vote requests, so a member whose outgoing links work but
 * that receives nothing cannot depose a healthy leader by campaigning,
 * even with pre-vote off.  Asymmetric: other -> all up, all -> other down.
 */
static void run_leader_sticky(uint64_t seed)
{
	struct sim_config c;
	struct sim *s;
	int leader, other, i, j;
	raft_term term, t;
	bool l;

	/* Without pre-vote, so that the isolated member really campaigns
	 * with a higher term: only stickiness can protect the leader. */
	sim_config_lab(&c, 3, true, false, seed);
	c.disable_prevote = true;
	s = sim_new_cmocka(&c, "test_leader_sticky");
	leader = sim_check_one_leader(s);
	term = sim_check_terms(s);
	other = (leader + 1) % 3;
	for (i = 0; i < 3; i++)
		if (i != other)
			sim_set_link(s, i, other, false);
	sim_sleep(s, 5 * ELECTION_TIMEOUT);
	sim_get_state(s, leader, &l);
	for (j = 0; j < 3; j++) {
		if (j == other)
			continue;
		t = sim_get_state(s, j, &l);
		if (t != term)
			sim_fail(s,
			    "stickiness: n%d left term %llu for %llu "
			    "because of a member that cannot hear the leader",
			    j + 1, (unsigned long long)term,
			    (unsigned long long)t);
	}
	sim_get_state(s, leader, &l);
	if (!l)
		sim_fail(s, "stickiness: leader n%d was deposed", leader + 1);
	lab_end(s);
}

/* Leadership transfer: the target becomes leader within one election
 * timeout, and the cluster keeps committing. */
static void run_transfer(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed,
	    "test_transfer_leadership");
	int leader, target, rc;
	bool l;

	sim_one_int(s, 1, 3, true);
	leader = sim_check_one_leader(s);
	target = (leader + 2) % 3;
	rc = sim_transfer(s, leader, target);
	if (rc)
		sim_fail(s, "raft_transfer_leadership = %s", rk_strerror(rc));
	sim_sleep(s, ELECTION_TIMEOUT);
	sim_get_state(s, target, &l);
	if (!l)
		sim_fail(s, "transfer: n%d did not become leader", target + 1);
	if (leader_count(s, NULL) != 1)
		sim_fail(s, "transfer: %d leaders", leader_count(s, NULL));
	sim_one_int(s, 2, 3, false);
	/* Transferring to oneself or to a non-member is refused. */
	if (sim_transfer(s, target, target) != -EINVAL)
		sim_fail(s, "transfer to self was not refused with -EINVAL");
	if (sim_transfer(s, leader, target) != RAFT_ENOTLEADER)
		sim_fail(s, "transfer from a follower was not refused");
	lab_end(s);
}

SIM_TEST(test_initial_election_3a, run_initial_election)
SIM_TEST(test_re_election_3a, run_re_election)
SIM_TEST(test_many_elections_3a, run_many_elections)
SIM_TEST(test_prevote_rejoin, run_prevote_rejoin)
SIM_TEST(test_check_quorum, run_check_quorum)
SIM_TEST(test_leader_sticky, run_leader_sticky)
SIM_TEST(test_transfer_leadership, run_transfer)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initial_election_3a),
		cmocka_unit_test(test_re_election_3a),
		cmocka_unit_test(test_many_elections_3a),
		cmocka_unit_test(test_prevote_rejoin),
		cmocka_unit_test(test_check_quorum),
		cmocka_unit_test(test_leader_sticky),
		cmocka_unit_test(test_transfer_leadership),
	};

	if (getenv("SIM_TEST"))
		cmocka_set_test_filter(getenv("SIM_TEST"));
	return cmocka_run_group_tests_name("raft_3a", tests, NULL, NULL);
}
