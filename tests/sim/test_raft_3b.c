/*
 * test_raft_3b.c - 6.5840 Lab 3B (log replication), ported to the
 * simulator, plus replication features of our core beyond the lab: fast
 * backtracking, pipelining, the uncommitted-bytes bound and ReadIndex.
 *
 * Schedules and limits are the raft1 tester's (6.5840-tests.md 2.3), in
 * virtual time.  Exact-index checks of the lab are made on command
 * indices (sim_cmd_index: our leaders' no-op entries are not commands).
 * RPC counts are request messages delivered (labrpc counts a request and
 * its reply as one RPC); bytes are encoded bytes of every message sent.
 */
#include <errno.h>
#include <string.h>

#include "tests/sim/sim_cmocka.h"

#define ELECTION_TIMEOUT (1000 * SIM_MS) /* RaftElectionTimeout */

/* --- helpers ---------------------------------------------------------- */

static raft_index start_int(struct sim *s, int i, uint64_t v, bool *ok,
    raft_term *term)
{
	uint8_t b[8];
	raft_index idx = 0;
	raft_term t = 0;

	sim_int_bytes(v, b);
	*ok = sim_propose(s, i, b, 8, &idx, &t) == 0;
	if (term)
		*term = t;
	return idx;
}

/* Commands committed so far (no-ops excluded). */
static uint64_t cmds_committed(struct sim *s)
{
	return sim_cmd_index(s, -1, sim_max_applied(s));
}

static uint64_t rand_int(struct sim *s)
{
	return (sim_rand(s) >> 2) + 1;
}

/* --- lab tests -------------------------------------------------------- */

/* TestBasicAgree3B */
static void run_basic_agree(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_basic_agree_3b");
	uint64_t index;

	for (index = 1; index < 4; index++) {
		raft_index x;
		if (cmds_committed(s) >= index)
			sim_fail(s, "some have committed before Start()");
		x = sim_one_int(s, index * 100, 3, false);
		if (sim_cmd_index(s, -1, x) != index)
			sim_fail(s, "got index %llu but expected %llu",
			    (unsigned long long)sim_cmd_index(s, -1, x),
			    (unsigned long long)index);
	}
	lab_end(s);
}

/* TestRPCBytes3B */
static void run_rpc_bytes(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_rpc_bytes_3b");
	uint64_t bytes0, got, sent = 0, index;
	char cmd[5000];

	sim_one_int(s, 99, 3, false);
	bytes0 = sim_bytes_total(s);
	for (index = 2; index < 12; index++) {
		raft_index x;
		size_t k;
		for (k = 0; k < sizeof cmd; k++)
			cmd[k] = (char)('a' + sim_randn(s, 26));
		x = sim_one(s, cmd, sizeof cmd, 3, false);
		if (sim_cmd_index(s, -1, x) != index)
			sim_fail(s, "got index %llu but expected %llu",
			    (unsigned long long)sim_cmd_index(s, -1, x),
			    (unsigned long long)index);
		sent += sizeof cmd;
	}
	got = sim_bytes_total(s) - bytes0;
	if (getenv("SIM_VERBOSE"))
		fprintf(stderr,
		    "rpc_bytes: %llu bytes for %llu bytes of commands "
		    "(limit %llu)\n",
		    (unsigned long long)got, (unsigned long long)sent,
		    (unsigned long long)(3 * sent + 50000));
	if (got > 3 * sent + 50000)
		sim_fail(s, "too many RPC bytes; got %llu, expected %llu",
		    (unsigned long long)got, (unsigned long long)(3 * sent));
	lab_end(s);
}

/* TestFollowerFailure3B */
static void run_follower_failure(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed,
	    "test_follower_failure_3b");
	int servers = 3, leader1, leader2;
	raft_index index;
	bool ok;

	sim_one_int(s, 101, servers, false);
	leader1 = sim_check_one_leader(s);
	sim_disconnect(s, (leader1 + 1) % servers);
	sim_one_int(s, 102, servers - 1, false);
	sim_sleep(s, ELECTION_TIMEOUT);
	sim_one_int(s, 103, servers - 1, false);
	leader2 = sim_check_one_leader(s);
	sim_disconnect(s, (leader2 + 1) % servers);
	sim_disconnect(s, (leader2 + 2) % servers);
	index = start_int(s, leader2, 104, &ok, NULL);
	if (!ok)
		sim_fail(s, "leader rejected Start()");
	if (sim_cmd_index(s, leader2, index) != 4)
		sim_fail(s, "expected index 4, got %llu",
		    (unsigned long long)sim_cmd_index(s, leader2, index));
	sim_sleep(s, 2 * ELECTION_TIMEOUT);
	sim_check_no_agreement(s, index);
	lab_end(s);
}

/* TestLeaderFailure3B */
static void run_leader_failure(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_leader_failure_3b");
	int servers = 3, leader1, leader2, i;
	bool ok;

	sim_one_int(s, 101, servers, false);
	leader1 = sim_check_one_leader(s);
	sim_disconnect(s, leader1);
	sim_one_int(s, 102, servers - 1, false);
	sim_sleep(s, ELECTION_TIMEOUT);
	sim_one_int(s, 103, servers - 1, false);
	leader2 = sim_check_one_leader(s);
	sim_disconnect(s, leader2);
	for (i = 0; i < servers; i++)
		start_int(s, i, 104, &ok, NULL);
	sim_sleep(s, 2 * ELECTION_TIMEOUT);
	/* checkNoAgreement(4): no 4th command committed anywhere. */
	if (cmds_committed(s) >= 4)
		sim_fail(s, "%llu commands committed but no majority",
		    (unsigned long long)cmds_committed(s));
	lab_end(s);
}

/* TestFailAgree3B */
static void run_fail_agree(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_fail_agree_3b");
	int servers = 3, leader;

	sim_one_int(s, 101, servers, false);
	leader = sim_check_one_leader(s);
	sim_disconnect(s, (leader + 1) % servers);
	sim_one_int(s, 102, servers - 1, false);
	sim_one_int(s, 103, servers - 1, false);
	sim_sleep(s, ELECTION_TIMEOUT);
	sim_one_int(s, 104, servers - 1, false);
	sim_one_int(s, 105, servers - 1, false);
	sim_connect(s, (leader + 1) % servers);
	sim_one_int(s, 106, servers, true);
	sim_sleep(s, ELECTION_TIMEOUT);
	sim_one_int(s, 107, servers, true);
	lab_end(s);
}

/* TestFailNoAgree3B */
static void run_fail_no_agree(uint64_t seed)
{
	struct sim *s = lab_new(5, true, false, seed, "test_fail_no_agree_3b");
	int servers = 5, leader, leader2, n;
	raft_index index, index2;
	uint64_t ci;
	bool ok;

	sim_one_int(s, 10, servers, false);
	leader = sim_check_one_leader(s);
	sim_disconnect(s, (leader + 1) % servers);
	sim_disconnect(s, (leader + 2) % servers);
	sim_disconnect(s, (leader + 3) % servers);
	index = start_int(s, leader, 20, &ok, NULL);
	if (!ok)
		sim_fail(s, "leader rejected Start()");
	if (sim_cmd_index(s, leader, index) != 2)
		sim_fail(s, "expected index 2, got %llu",
		    (unsigned long long)sim_cmd_index(s, leader, index));
	sim_sleep(s, 2 * ELECTION_TIMEOUT);
	n = sim_n_committed(s, index, NULL, NULL);
	if (n > 0)
		sim_fail(s, "%d committed but no majority", n);
	sim_connect(s, (leader + 1) % servers);
	sim_connect(s, (leader + 2) % servers);
	sim_connect(s, (leader + 3) % servers);
	leader2 = sim_check_one_leader(s);
	index2 = start_int(s, leader2, 30, &ok, NULL);
	if (!ok)
		sim_fail(s, "leader2 rejected Start()");
	ci = sim_cmd_index(s, leader2, index2);
	if (ci < 2 || ci > 3)
		sim_fail(s, "unexpected index %llu", (unsigned long long)ci);
	sim_one_int(s, 1000, servers, true);
	lab_end(s);
}

/* TestConcurrentStarts3B */
static void run_concurrent_starts(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed,
	    "test_concurrent_starts_3b");
	int servers = 3, try, ii, j;
	bool success = false;

	for (try = 0; try < 5 && !success; try++) {
		raft_index is[5];
		raft_term term, t1;
		uint64_t cmds[5];
		int n_is = 0, n_cmds = 0, leader;
		bool ok, failed = false, moved = false;

		if (try > 0)
			sim_sleep(s, 3 * SIM_SEC);
		leader = sim_check_one_leader(s);
		start_int(s, leader, 1, &ok, &term);
		if (!ok)
			continue;
		/* Five "goroutines" calling Start() at the same instant. */
		for (ii = 0; ii < 5; ii++) {
			raft_index i = start_int(s, leader, 100 + ii, &ok, &t1);
			if (t1 != term || !ok)
				continue;
			is[n_is++] = i;
		}
		for (j = 0; j < servers; j++) {
			bool l;
			if (sim_get_state(s, j, &l) != term)
				moved = true;
		}
		if (moved)
			continue;
		for (ii = 0; ii < n_is; ii++) {
			uint64_t vh;
			bool normal;
			if (!sim_wait(s, is[ii], servers, term, &vh, &normal)) {
				failed = true;
				break;
			}
			if (!normal)
				sim_fail(s, "value at %llu is not an int",
				    (unsigned long long)is[ii]);
			cmds[n_cmds++] = vh;
		}
		if (failed)
			continue;
		for (ii = 0; ii < 5; ii++) {
			bool found = false;
			for (j = 0; j < n_cmds; j++)
				if (cmds[j] == sim_int_hash(100 + ii))
					found = true;
			if (!found)
				sim_fail(s, "cmd %d missing", 100 + ii);
		}
		success = true;
	}
	if (!success)
		sim_fail(s, "term changed too often");
	lab_end(s);
}

/* TestRejoin3B */
static void run_rejoin(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_rejoin_3b");
	int leader1, leader2;
	bool ok;

	sim_one_int(s, 101, 3, true);
	leader1 = sim_check_one_leader(s);
	sim_disconnect(s, leader1);
	start_int(s, leader1, 102, &ok, NULL);
	start_int(s, leader1, 103, &ok, NULL);
	start_int(s, leader1, 104, &ok, NULL);
	sim_one_int(s, 103, 2, true);
	leader2 = sim_check_one_leader(s);
	sim_disconnect(s, leader2);
	sim_connect(s, leader1);
	sim_one_int(s, 104, 2, true);
	sim_connect(s, leader2);
	sim_one_int(s, 105, 3, true);
	lab_end(s);
}

/* TestBackup3B */
static void run_backup(uint64_t seed)
{
	struct sim *s = lab_new(5, true, false, seed, "test_backup_3b");
	int servers = 5, leader1, leader2, other, i;
	bool ok;

	sim_one_int(s, rand_int(s), servers, true);
	leader1 = sim_check_one_leader(s);
	sim_disconnect(s, (leader1 + 2) % servers);
	sim_disconnect(s, (leader1 + 3) % servers);
	sim_disconnect(s, (leader1 + 4) % servers);
	for (i = 0; i < 50; i++)
		start_int(s, leader1, rand_int(s), &ok, NULL);
	sim_sleep(s, ELECTION_TIMEOUT / 2);
	sim_disconnect(s, (leader1 + 0) % servers);
	sim_disconnect(s, (leader1 + 1) % servers);
	sim_connect(s, (leader1 + 2) % servers);
	sim_connect(s, (leader1 + 3) % servers);
	sim_connect(s, (leader1 + 4) % servers);
	for (i = 0; i < 50; i++)
		sim_one_int(s, rand_int(s), 3, true);
	leader2 = sim_check_one_leader(s);
	other = (leader1 + 2) % servers;
	if (leader2 == other)
		other = (leader2 + 1) % servers;
	sim_disconnect(s, other);
	for (i = 0; i < 50; i++)
		start_int(s, leader2, rand_int(s), &ok, NULL);
	sim_sleep(s, ELECTION_TIMEOUT / 2);
	for (i = 0; i < servers; i++)
		sim_disconnect(s, i);
	sim_connect(s, (leader1 + 0) % servers);
	sim_connect(s, (leader1 + 1) % servers);
	sim_connect(s, other);
	for (i = 0; i < 50; i++)
		sim_one_int(s, rand_int(s), 3, true);
	for (i = 0; i < servers; i++)
		sim_connect(s, i);
	sim_one_int(s, rand_int(s), servers, true);
	lab_end(s);
}

/* TestCount3B */
static void run_count(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_count_3b");
	int servers = 3, try, leader, i, j;
	uint64_t total1, total2 = 0, total3, election_rpcs, agree_rpcs = 0;
	bool success = false;

	leader = sim_check_one_leader(s);
	total1 = sim_rpc_total(s);
	election_rpcs = total1;
	if (total1 > 30 || total1 < 1)
		sim_fail(s,
		    "too many or few RPCs (%llu) to elect initial leader",
		    (unsigned long long)total1);
	for (try = 0; try < 5 && !success; try++) {
		const int iters = 10;
		uint64_t cmds[12];
		raft_index starti;
		raft_term term;
		bool ok, again = false;

		if (try > 0)
			sim_sleep(s, 3 * SIM_SEC);
		leader = sim_check_one_leader(s);
		total1 = sim_rpc_total(s);
		starti = start_int(s, leader, 1, &ok, &term);
		if (!ok)
			continue;
		for (i = 1; i < iters + 2; i++) {
			raft_term term1;
			raft_index index1;
			cmds[i - 1] = (uint64_t)sim_randn(s, 1u << 31) + 1;
			index1 = start_int(s, leader, cmds[i - 1], &ok, &term1);
			if (term1 != term || !ok) {
				again = true;
				break;
			}
			if (starti + (raft_index)i != index1)
				sim_fail(s,
				    "Start() failed: command at %llu, "
				    "expected %llu",
				    (unsigned long long)index1,
				    (unsigned long long)(starti + i));
		}
		if (again)
			continue;
		for (i = 1; i < iters + 1; i++) {
			uint64_t vh;
			bool normal;
			if (!sim_wait(s, starti + i, servers, term, &vh,
			        &normal)) {
				again = true;
				break;
			}
			if (!normal || vh != sim_int_hash(cmds[i - 1]))
				sim_fail(s,
				    "wrong value committed for index %llu",
				    (unsigned long long)(starti + i));
		}
		if (again)
			continue;
		total2 = 0;
		for (j = 0; j < servers; j++) {
			bool l;
			if (sim_get_state(s, j, &l) != term)
				again = true;
			total2 += sim_rpc_count(s, j);
		}
		if (again)
			continue;
		agree_rpcs = total2 - total1;
		if (total2 - total1 > (uint64_t)(iters + 1 + 3) * 3)
			sim_fail(s, "too many RPCs (%llu) for %d entries",
			    (unsigned long long)(total2 - total1), iters);
		success = true;
	}
	if (!success)
		sim_fail(s, "term changed too often");
	sim_sleep(s, ELECTION_TIMEOUT);
	total3 = sim_rpc_total(s);
	if (getenv("SIM_VERBOSE"))
		fprintf(stderr,
		    "count: election %llu RPCs (limit 30), 10 "
		    "agreements %llu (limit 42), idle second %llu (limit 60)\n",
		    (unsigned long long)election_rpcs,
		    (unsigned long long)agree_rpcs,
		    (unsigned long long)(total3 - total2));
	if (total3 - total2 > 3 * 20)
		sim_fail(s, "too many RPCs (%llu) for 1 second of idleness",
		    (unsigned long long)(total3 - total2));
	lab_end(s);
}

/* --- beyond the lab --------------------------------------------------- */

/*
 * Fast backtracking: an old leader returns with 50 uncommitted entries of
 * one term that conflict with the new leader's log.  Backing up over them
 * must take O(terms) AppendEntries rejections, not O(entries).
 */
static void run_fast_backtrack(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_fast_backtrack");
	int leader1, i;
	uint64_t rejects;
	raft_index last;
	bool ok;

	sim_one_int(s, 1, 3, true);
	leader1 = sim_check_one_leader(s);
	sim_disconnect(s, leader1);
	for (i = 0; i < 50; i++)
		start_int(s, leader1, 1000 + i, &ok, NULL);
	for (i = 0; i < 5; i++)
		sim_one_int(s, 2000 + i, 2, true);
	rejects = sim_append_rejects(s, leader1);
	sim_connect(s, leader1);
	last = sim_one_int(s, 3000, 3, true);
	sim_wait(s, last, 3, SIM_NO_TERM, NULL, NULL);
	rejects = sim_append_rejects(s, leader1) - rejects;
	if (rejects > 5)
		sim_fail(s,
		    "fast backtracking: %llu rejections to back up over "
		    "50 entries of one term (want O(terms) <= 5)",
		    (unsigned long long)rejects);
	lab_end(s);
}

/*
 * Pipelining: with a slow follower disk, a burst of 100 proposals keeps
 * several appends in flight to each follower at once, never more than
 * max_inflight_msgs (+1: a heartbeat answer may free one slot, as etcd).
 */
static void run_pipelining(uint64_t seed)
{
	struct sim_config c;
	struct sim *s;
	int leader, i, j, best = 0;
	bool ok;

	sim_config_lab(&c, 3, true, false, seed);
	c.max_inflight_msgs = 4;
	c.max_msg_entries = 1;
	c.disk_min_us = 2 * SIM_MS;
	c.disk_max_us = 3 * SIM_MS;
	/* A constant delay keeps each link FIFO (as our ZeroMQ transport
	 * is), so every append past the window would be a real excess. */
	c.delay_min_us = c.delay_max_us = 500;
	s = sim_new_cmocka(&c, "test_pipelining");
	sim_one_int(s, 1, 3, true);
	leader = sim_check_one_leader(s);
	sim_reset_inflight(s);
	for (i = 0; i < 100; i++) {
		start_int(s, leader, 100 + i, &ok, NULL);
		if (!ok)
			sim_fail(s, "leader refused proposal %d", i);
		sim_sleep(s, 100);
	}
	sim_one_int(s, 2, 3, true);
	for (j = 0; j < 3; j++) {
		int m = sim_max_inflight(s, leader, j);
		if (m > 5)
			sim_fail(s,
			    "pipelining: %d appends in flight to n%d "
			    "(max_inflight_msgs 4)",
			    m, j + 1);
		if (m > best)
			best = m;
	}
	if (best < 2)
		sim_fail(s, "pipelining: never more than %d append in flight",
		    best);
	lab_end(s);
}

/* Uncommitted-bytes bound: a leader that cannot commit refuses proposals
 * with RAFT_EBUSY once max_uncommitted_bytes is reached. */
static void run_uncommitted_bound(uint64_t seed)
{
	struct sim_config c;
	struct sim *s;
	uint8_t data[100];
	int leader, i, rc = 0;

	sim_config_lab(&c, 3, true, false, seed);
	c.max_uncommitted_bytes = 10000;
	s = sim_new_cmocka(&c, "test_uncommitted_bound");
	sim_one_int(s, 1, 3, true);
	leader = sim_check_one_leader(s);
	sim_disconnect(s, (leader + 1) % 3);
	sim_disconnect(s, (leader + 2) % 3);
	memset(data, 'x', sizeof data);
	for (i = 0; i < 1000; i++) {
		rc = sim_propose(s, leader, data, sizeof data, NULL, NULL);
		if (rc)
			break;
	}
	if (rc != RAFT_EBUSY)
		sim_fail(s,
		    "uncommitted bound: %d proposals of 100 bytes "
		    "accepted without a quorum (rc %s)",
		    i, rk_strerror(rc));
	if (i < 50)
		sim_fail(s,
		    "uncommitted bound: EBUSY after only %d x 100 bytes "
		    "(bound 10000)",
		    i);
	sim_connect_all(s);
	sim_one_int(s, 2, 3, true);
	lab_end(s);
}

/*
 * ReadIndex: with lease reads off, a read point on the leader arrives only
 * after a heartbeat round; with them on (the default), at once.  A read on
 * a follower is forwarded and answered; a deposed leader cut off from the
 * majority never answers once the majority moved on (the invariant
 * checker, sim_check.c, verifies every answer against what was committed
 * when it was asked).
 */
static void read_index(uint64_t seed, bool lease)
{
	struct sim_config c;
	struct sim *s;
	const struct sim_stats *st;
	uint64_t ok0;
	int leader, follower, i, leader2;
	bool l;

	sim_config_lab(&c, 5, true, false, seed);
	c.disable_lease_read = !lease;
	s = sim_new_cmocka(&c, "test_read_index");
	st = sim_stats(s);
	sim_one_int(s, 1, 5, true);
	leader = sim_check_one_leader(s);

	/* On the leader: nothing before a round trip, or at once. */
	ok0 = st->reads_ok;
	if (sim_read_index(s, leader))
		sim_fail(s, "raft_read_index on the leader failed");
	if (!lease && st->reads_ok != ok0)
		sim_fail(s, "read index answered without a heartbeat round");
	if (lease && st->reads_ok != ok0 + 1)
		sim_fail(s, "read index not answered from the lease");
	sim_sleep(s, 300 * SIM_MS);
	if (st->reads_ok != ok0 + 1)
		sim_fail(s, "read index on the leader not answered in 300 ms");

	/* On a follower: forwarded to the leader. */
	follower = (leader + 1) % 5;
	ok0 = st->reads_ok;
	if (sim_read_index(s, follower))
		sim_fail(s, "raft_read_index on a follower failed");
	sim_sleep(s, 300 * SIM_MS);
	if (st->reads_ok != ok0 + 1)
		sim_fail(s, "forwarded read index not answered in 300 ms");

	/* A deposed leader: isolate it, let the majority move on and
	 * commit, then ask it.  It must never answer. */
	sim_disconnect(s, leader);
	sim_one_int(s, 2, 4, true);
	ok0 = st->reads_ok;
	sim_read_index(s, leader);
	sim_sleep(s, 2 * ELECTION_TIMEOUT);
	if (st->reads_ok != ok0)
		sim_fail(s, "an isolated (deposed) leader answered a read");
	sim_connect(s, leader);
	leader2 = sim_check_one_leader(s);
	for (i = 0; i < 5; i++) {
		sim_get_state(s, i, &l);
		if (l && i != leader2)
			sim_fail(s, "two leaders after heal");
	}
	lab_end(s);
}

static void run_read_index(uint64_t seed)
{
	read_index(seed, false);
}

static void run_read_index_lease(uint64_t seed)
{
	read_index(seed, true);
}

SIM_TEST(test_basic_agree_3b, run_basic_agree)
SIM_TEST(test_rpc_bytes_3b, run_rpc_bytes)
SIM_TEST(test_follower_failure_3b, run_follower_failure)
SIM_TEST(test_leader_failure_3b, run_leader_failure)
SIM_TEST(test_fail_agree_3b, run_fail_agree)
SIM_TEST(test_fail_no_agree_3b, run_fail_no_agree)
SIM_TEST(test_concurrent_starts_3b, run_concurrent_starts)
SIM_TEST(test_rejoin_3b, run_rejoin)
SIM_TEST(test_backup_3b, run_backup)
SIM_TEST(test_count_3b, run_count)
SIM_TEST(test_fast_backtrack, run_fast_backtrack)
SIM_TEST(test_pipelining, run_pipelining)
SIM_TEST(test_uncommitted_bound, run_uncommitted_bound)
SIM_TEST(test_read_index, run_read_index)
SIM_TEST(test_read_index_lease, run_read_index_lease)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_agree_3b),
		cmocka_unit_test(test_rpc_bytes_3b),
		cmocka_unit_test(test_follower_failure_3b),
		cmocka_unit_test(test_leader_failure_3b),
		cmocka_unit_test(test_fail_agree_3b),
		cmocka_unit_test(test_fail_no_agree_3b),
		cmocka_unit_test(test_concurrent_starts_3b),
		cmocka_unit_test(test_rejoin_3b),
		cmocka_unit_test(test_backup_3b),
		cmocka_unit_test(test_count_3b),
		cmocka_unit_test(test_fast_backtrack),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_uncommitted_bound),
		cmocka_unit_test(test_read_index),
		cmocka_unit_test(test_read_index_lease),
	};

	if (getenv("SIM_TEST"))
		cmocka_set_test_filter(getenv("SIM_TEST"));
	return cmocka_run_group_tests_name("raft_3b", tests, NULL, NULL);
}
