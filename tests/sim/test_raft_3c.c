/*
 * test_raft_3c.c - 6.5840 Lab 3C (persistence), ported to the simulator.
 *
 * Schedules and limits are the raft1 tester's (6.5840-tests.md 2.4), in
 * virtual time.  A crash here is harsher than the lab's: writes the core
 * handed out but that the simulated disk has not completed are lost.
 * Concurrent goroutines of the lab (UnreliableAgree's one() calls, the
 * churn clients) are event-driven state machines stepping in virtual
 * time alongside the cluster.
 */
#include <string.h>

#include "tests/sim/sim_cmocka.h"

#define ELECTION_TIMEOUT (1000 * SIM_MS) /* RaftElectionTimeout */

/* --- helpers ---------------------------------------------------------- */

static uint64_t rand_int(struct sim *s)
{
	return (sim_rand(s) >> 2) + 1;
}

static bool start_int(struct sim *s, int i, uint64_t v, raft_index *idx)
{
	uint8_t b[8];

	sim_int_bytes(v, b);
	return sim_propose(s, i, b, 8, idx, NULL) == 0;
}

/* Raft index of the @k-th committed command (lab index @k). */
static raft_index cmd_raft_index(struct sim *s, uint64_t k)
{
	raft_index idx;

	for (idx = 1; idx <= sim_max_applied(s); idx++) {
		bool normal;
		sim_n_committed(s, idx, NULL, &normal);
		if (normal && sim_cmd_index(s, -1, idx) == k)
			return idx;
	}
	sim_fail(s, "command %llu was never committed", (unsigned long long)k);
}

/* The lab's Figure 8 sleep: 10 % of the time up to half an election
 * timeout, else up to 12 ms. */
static void figure8_sleep(struct sim *s)
{
	if (sim_randn(s, 1000) < 100)
		sim_sleep(s, sim_randn(s, 500) * SIM_MS);
	else
		sim_sleep(s, sim_randn(s, 13) * SIM_MS);
}

/* --- lab tests -------------------------------------------------------- */

/* TestPersist13C */
static void run_persist1(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_persist1_3c");
	int servers = 3, leader1, leader2, i3;

	sim_one_int(s, 11, servers, true);
	sim_crash_all(s);
	sim_start_all(s);
	sim_one_int(s, 12, servers, true);
	leader1 = sim_check_one_leader(s);
	sim_crash(s, leader1);
	sim_restart(s, leader1);
	sim_one_int(s, 13, servers, true);
	leader2 = sim_check_one_leader(s);
	sim_crash(s, leader2);
	sim_one_int(s, 14, servers - 1, true);
	sim_restart(s, leader2);
	/* wait(4, servers, -1): lab index 4 is our 4th command. */
	sim_wait(s, cmd_raft_index(s, 4), servers, SIM_NO_TERM, NULL, NULL);
	i3 = (sim_check_one_leader(s) + 1) % servers;
	sim_crash(s, i3);
	sim_one_int(s, 15, servers - 1, true);
	sim_restart(s, i3);
	sim_one_int(s, 16, servers, true);
	lab_end(s);
}

/* TestPersist23C */
static void run_persist2(uint64_t seed)
{
	struct sim *s = lab_new(5, true, false, seed, "test_persist2_3c");
	int servers = 5, index = 1, iters, leader1;

	for (iters = 0; iters < 5; iters++) {
		sim_one_int(s, 10 + index++, servers, true);
		leader1 = sim_check_one_leader(s);
		sim_crash(s, (leader1 + 1) % servers);
		sim_crash(s, (leader1 + 2) % servers);
		sim_one_int(s, 10 + index++, servers - 2, true);
		sim_crash(s, (leader1 + 0) % servers);
		sim_crash(s, (leader1 + 3) % servers);
		sim_crash(s, (leader1 + 4) % servers);
		sim_restart(s, (leader1 + 1) % servers);
		sim_restart(s, (leader1 + 2) % servers);
		sim_sleep(s, ELECTION_TIMEOUT);
		sim_restart(s, (leader1 + 3) % servers);
		sim_one_int(s, 10 + index++, servers - 2, true);
		sim_restart(s, (leader1 + 4) % servers);
		sim_restart(s, (leader1 + 0) % servers);
	}
	sim_one_int(s, 1000, servers, true);
	lab_end(s);
}

/* TestPersist33C */
static void run_persist3(uint64_t seed)
{
	struct sim *s = lab_new(3, true, false, seed, "test_persist3_3c");
	int servers = 3, leader;

	sim_one_int(s, 101, 3, true);
	leader = sim_check_one_leader(s);
	sim_disconnect(s, (leader + 2) % servers);
	sim_one_int(s, 102, 2, true);
	sim_crash(s, (leader + 0) % servers);
	sim_crash(s, (leader + 1) % servers);
	sim_connect(s, (leader + 2) % servers);
	sim_restart(s, (leader + 0) % servers);
	sim_one_int(s, 103, 2, true);
	sim_restart(s, (leader + 1) % servers);
	sim_one_int(s, 104, servers, true);
	lab_end(s);
}

/* TestFigure83C */
static void run_figure8(uint64_t seed)
{
	struct sim *s = lab_new(5, true, false, seed, "test_figure8_3c");
	int servers = 5, nup = servers, iters, i;

	sim_one_int(s, rand_int(s), 1, true);
	for (iters = 0; iters < 1000; iters++) {
		int leader = -1;
		for (i = 0; i < servers; i++) {
			raft_index idx;
			if (sim_alive(s, i) &&
			    start_int(s, i, rand_int(s), &idx))
				leader = i;
		}
		figure8_sleep(s);
		if (leader != -1) {
			sim_crash(s, leader);
			nup--;
		}
		if (nup < 3) {
			int k = (int)sim_randn(s, servers);
			if (!sim_alive(s, k)) {
				sim_restart(s, k);
				nup++;
			}
		}
	}
	for (i = 0; i < servers; i++)
		if (!sim_alive(s, i))
			sim_restart(s, i);
	sim_one_int(s, rand_int(s), servers, true);
	lab_end(s);
}

/* TestUnreliableAgree3C */
static void run_unreliable_agree(uint64_t seed)
{
	struct sim *s = lab_new(5, false, false, seed,
	    "test_unreliable_agree_3c");
	struct sim_one *ops[49 * 4];
	int n_ops = 0, iters, j;

	for (iters = 1; iters < 50; iters++) {
		for (j = 0; j < 4; j++) {
			uint8_t b[8];
			sim_int_bytes((uint64_t)(100 * iters + j), b);
			ops[n_ops++] = sim_one_start(s, b, 8, 1, true);
		}
		sim_one_int(s, (uint64_t)iters, 1, true);
	}
	sim_set_reliable(s, true);
	for (j = 0; j < n_ops; j++)
		sim_one_finish(s, ops[j]);
	sim_one_int(s, 100, 5, true);
	lab_end(s);
}

/* TestFigure8Unreliable3C */
static void run_figure8_unreliable(uint64_t seed)
{
	struct sim *s = lab_new(5, false, false, seed,
	    "test_figure8_unreliable_3c");
	int servers = 5, nup = servers, iters, i;

	sim_one_int(s, sim_randn(s, 10000), 1, true);
	for (iters = 0; iters < 1000; iters++) {
		int leader = -1;
		if (iters == 200)
			sim_set_long_reordering(s, true);
		for (i = 0; i < servers; i++) {
			raft_index idx;
			bool ok = start_int(s, i, sim_randn(s, 10000), &idx);
			if (ok && sim_connected(s, i))
				leader = i;
		}
		figure8_sleep(s);
		if (leader != -1 && sim_randn(s, 1000) < 500) {
			sim_disconnect(s, leader);
			nup--;
		}
		if (nup < 3) {
			int k = (int)sim_randn(s, servers);
			if (!sim_connected(s, k)) {
				sim_connect(s, k);
				nup++;
			}
		}
	}
	for (i = 0; i < servers; i++)
		if (!sim_connected(s, i))
			sim_connect(s, i);
	sim_one_int(s, sim_randn(s, 10000), servers, true);
	lab_end(s);
}

/* internalChurn's client goroutine (cfn). */
struct churn_client {
	int me;
	const bool *stop;
	bool done;
	uint64_t x;
	raft_index index;
	int poll; /* next of {10, 20, 50, 100, 200} ms */
	uint64_t values[4096];
	int n_values;
};

static void churn_step(struct sim *s, void *arg)
{
	static const int to_ms[] = { 10, 20, 50, 100, 200 };
	struct churn_client *c = arg;

	if (c->poll >= 0) {
		uint64_t vh;
		bool normal;
		int nd = sim_n_committed(s, c->index, &vh, &normal);
		if (nd > 0) {
			if (normal && vh == sim_int_hash(c->x) &&
			    c->n_values < 4096)
				c->values[c->n_values++] = c->x;
			c->poll = -1;
		} else if (c->poll < 5) {
			sim_after(s, to_ms[c->poll++] * SIM_MS, churn_step, c);
			return;
		} else {
			c->poll = -1;
		}
	}
	/* Top of the client loop. */
	if (*c->stop) {
		c->done = true;
		return;
	}
	{
		bool ok = false;
		int i;

		c->x = (sim_rand(s) >> 2) + 1;
		for (i = 0; i < sim_n(s); i++) {
			raft_index idx;
			if (sim_alive(s, i) && start_int(s, i, c->x, &idx)) {
				ok = true;
				c->index = idx;
			}
		}
		if (ok) {
			c->poll = 0;
			churn_step(s, c);
		} else {
			sim_after(s, (uint64_t)(79 + c->me * 17) * SIM_MS,
			    churn_step, c);
		}
	}
}

static void internal_churn(uint64_t seed, bool reliable, const char *name)
{
	struct sim *s = lab_new(5, reliable, false, seed, name);
	struct churn_client *cli[3];
	int servers = 5, ncli = 3, iters, i, k;
	raft_index last, index;
	bool stop = false;
	uint64_t *really;
	size_t n_really = 0;

	for (k = 0; k < ncli; k++) {
		cli[k] = calloc(1, sizeof *cli[k]);
		cli[k]->me = k;
		cli[k]->stop = &stop;
		cli[k]->poll = -1;
		sim_after(s, 0, churn_step, cli[k]);
	}
	for (iters = 0; iters < 20; iters++) {
		if (sim_randn(s, 1000) < 200) {
			i = (int)sim_randn(s, servers);
			sim_disconnect(s, i);
		}
		if (sim_randn(s, 1000) < 500) {
			i = (int)sim_randn(s, servers);
			if (!sim_alive(s, i))
				sim_restart(s, i);
			sim_connect(s, i);
		}
		if (sim_randn(s, 1000) < 200) {
			i = (int)sim_randn(s, servers);
			if (sim_alive(s, i))
				sim_crash(s, i);
		}
		sim_sleep(s, (ELECTION_TIMEOUT * 7) / 10);
	}
	sim_sleep(s, ELECTION_TIMEOUT);
	sim_set_reliable(s, true);
	for (i = 0; i < servers; i++) {
		if (!sim_alive(s, i))
			sim_restart(s, i);
		sim_connect(s, i);
	}
	stop = true;
	for (k = 0; k < ncli; k++)
		sim_run_until_flag(s, &cli[k]->done);
	sim_sleep(s, ELECTION_TIMEOUT);
	last = sim_one_int(s, rand_int(s), servers, true);
	really = calloc(last + 1, sizeof *really);
	for (index = 1; index <= last; index++) {
		uint64_t vh;
		bool normal;
		sim_wait(s, index, servers, SIM_NO_TERM, &vh, &normal);
		/* Our leaders' no-op entries are not commands: skipped. */
		if (normal)
			really[n_really++] = vh;
	}
	for (k = 0; k < ncli; k++) {
		int v;
		for (v = 0; v < cli[k]->n_values; v++) {
			uint64_t h = sim_int_hash(cli[k]->values[v]);
			size_t r;
			bool found = false;
			for (r = 0; r < n_really && !found; r++)
				found = really[r] == h;
			if (!found)
				sim_fail(s, "didn't find a value");
		}
		free(cli[k]);
	}
	free(really);
	lab_end(s);
}

static void run_reliable_churn(uint64_t seed)
{
	internal_churn(seed, true, "test_reliable_churn_3c");
}

static void run_unreliable_churn(uint64_t seed)
{
	internal_churn(seed, false, "test_unreliable_churn_3c");
}

SIM_TEST(test_persist1_3c, run_persist1)
SIM_TEST(test_persist2_3c, run_persist2)
SIM_TEST(test_persist3_3c, run_persist3)
SIM_TEST(test_figure8_3c, run_figure8)
SIM_TEST(test_unreliable_agree_3c, run_unreliable_agree)
SIM_TEST(test_figure8_unreliable_3c, run_figure8_unreliable)
SIM_TEST(test_reliable_churn_3c, run_reliable_churn)
SIM_TEST(test_unreliable_churn_3c, run_unreliable_churn)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_persist1_3c),
		cmocka_unit_test(test_persist2_3c),
		cmocka_unit_test(test_persist3_3c),
		cmocka_unit_test(test_figure8_3c),
		cmocka_unit_test(test_unreliable_agree_3c),
		cmocka_unit_test(test_figure8_unreliable_3c),
		cmocka_unit_test(test_reliable_churn_3c),
		cmocka_unit_test(test_unreliable_churn_3c),
	};

	if (getenv("SIM_TEST"))
		cmocka_set_test_filter(getenv("SIM_TEST"));
	return cmocka_run_group_tests_name("raft_3c", tests, NULL, NULL);
}
