/*
 * test_sim_lease.c - leader lease reads (raft/readindex.c) in the
 * simulator: linearizable under partitions, stalls, crashes and clocks
 * that drift apart within the margin, and the checker's proof that it
 * would notice otherwise.
 *
 * The check is invariant 9 (sim.h): every read point a member hands out
 * is at least every commit index known anywhere when the read was asked.
 * A leader that answered from a lease it no longer held, after another
 * leader committed, violates it.
 *
 * Scenario (one seed): 3 members on a reliable network; member 1 is made
 * leader (a transfer if needed) and takes a lease; then it is either cut
 * off from the others or stalled (sim_pause) for 2 s, while it is asked
 * for a read every 10 ms (a stalled member is asked the moment it
 * resumes, before it handles anything else) and the other two elect a new
 * leader and commit a write, with a crash and quick restart of one of them
 * first in some seeds.  Clocks run at the rates given per member.
 *
 *   within the margin  member 1's clock 20% slow, the others' 20% fast
 *                      (1.5x apart, the most the default lease allows),
 *                      or random rates within +-20%: never a violation,
 *                      over many seeds, and reads were answered from
 *                      leases; the randomized sweep of chaos.c with the
 *                      same extreme drift (members alternately 20% slow
 *                      and fast) must stay clean too.
 *   mutations          member 1's clock 4x slow (its lease outlives the
 *                      others' stickiness), or a driver that forgets
 *                      raft_tick_gap() after a stall: the checker must
 *                      catch a stale read in some seeds.
 *
 * Seeds: 60 per scenario by default, 600 with RAFTKV_LONG=1, SIM_SEEDS=N.
 */
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "tests/sim/chaos.h"
#include "tests/sim/sim_cmocka.h"

static jmp_buf lease_jmp;
static char lease_what[512];

static void lease_fail(struct sim *s, const char *what, void *arg)
{
	(void)s;
	(void)arg;
	snprintf(lease_what, sizeof lease_what, "%s", what);
	longjmp(lease_jmp, 1);
}

static uint64_t n_seeds(uint64_t dflt)
{
	const char *v = getenv("SIM_SEEDS");
	const char *l = getenv("RAFTKV_LONG");

	if (v && *v)
		return strtoull(v, NULL, 0);
	return l && *l && *l != '0' ? dflt * 10 : dflt;
}

enum fault { CUT, STALL };

struct scenario {
	unsigned clock_pct[3]; /* 0: random within +-20% */
	enum fault fault;
	bool forget_tick_gap;
};

struct reader {
	int member;
	uint64_t until;
	uint64_t every;
};

static void read_tick(struct sim *s, void *arg)
{
	struct reader *rd = arg;

	sim_read_index(s, rd->member);
	if (sim_now(s) + rd->every <= rd->until)
		sim_after(s, rd->every, read_tick, rd);
}

/* Make member @want the leader; false if it did not happen in 10 s. */
static bool lead(struct sim *s, int want)
{
	for (int k = 0; k < 200; k++) {
		bool l;
		int cur = -1;

		for (int i = 0; i < sim_n(s); i++) {
			sim_get_state(s, i, &l);
			if (l)
				cur = i;
		}
		if (cur == want)
			return true;
		if (cur >= 0 && k % 20 == 0)
			sim_transfer(s, cur, want);
		sim_sleep(s, 50 * SIM_MS);
	}
	return false;
}

/*
 * sim_one() for members 2 and 3 only, without its allocation (a violation
 * longjmps out of the middle of it): true once both applied @v.
 */
static bool commit_on_majority(struct sim *s, uint64_t v)
{
	uint8_t cmd[8];

	sim_int_bytes(v, cmd);
	for (int k = 0; k < 500; k++) {
		raft_index idx;

		for (int i = 1; i < 3; i++) {
			if (sim_propose(s, i, cmd, sizeof cmd, &idx, NULL) != 0)
				continue;
			for (int w = 0; w < 100; w++) {
				uint64_t vh = 0;

				if (sim_n_committed(s, idx, &vh, NULL) >= 2 &&
				    vh == sim_int_hash(v))
					return true;
				sim_sleep(s, 20 * SIM_MS);
			}
		}
		sim_sleep(s, 20 * SIM_MS);
	}
	return false;
}

/*
 * One seed of the scenario.  Returns 1 if it ran clean, 0 on a violation
 * of invariant 9 (text in lease_what), and fails the test on anything else
 * (a scenario that could not be set up proves nothing).  *@lease_reads
 * gets the number of reads answered from a lease.
 */
static int run_one(uint64_t seed, const struct scenario *sc,
    uint64_t *lease_reads)
{
	struct sim_config c;
	struct sim *volatile s = NULL;
	struct reader rd = { .member = 0, .every = 10 * SIM_MS };
	uint64_t before;

	sim_config_lab(&c, 3, true, false, seed);
	c.keep_inflight_on_crash = true;
	c.forget_tick_gap = sc->forget_tick_gap;
	for (int i = 0; i < 3; i++) {
		c.clock_pct[i] = sc->clock_pct[i];
		if (c.clock_pct[i] == 0)
			c.clock_pct[i] = 80 +
			    (unsigned)((seed * 7 + i * 13) % 41);
	}
	if (setjmp(lease_jmp)) {
		sim_free(s);
		if (strstr(lease_what, "read index safety") == NULL)
			fail_msg("seed %" PRIu64 ": %s", seed, lease_what);
		return 0;
	}
	s = sim_new(&c);
	sim_set_fail_hook(s, lease_fail, NULL);
	sim_set_name(s, "test_sim_lease");
	sim_one_int(s, 1, 3, true);
	if (!lead(s, 0))
		fail_msg("seed %" PRIu64 ": member 1 never became leader",
		    seed);
	sim_one_int(s, 2, 3, true);
	/* The lease: a read answered at once, without a round. */
	before = sim_lease_reads(s);
	for (int k = 0; k < 40 && sim_lease_reads(s) == before; k++) {
		sim_read_index(s, 0);
		sim_sleep(s, 50 * SIM_MS);
	}
	if (sim_lease_reads(s) == before)
		fail_msg("seed %" PRIu64 ": the leader never read from a lease",
		    seed);
	/* A heartbeat was just acknowledged (within one period). */
	sim_sleep(s, sim_randn(s, 100 * SIM_MS));
	rd.until = sim_now(s) + 2500 * SIM_MS;
	if (sc->fault == CUT) {
		sim_disconnect(s, 0);
		sim_after(s, rd.every, read_tick, &rd);
	} else {
		sim_pause(s, 0, 2 * SIM_SEC);
		/* Asked the moment it resumes, before anything else. */
		sim_after(s, 2 * SIM_SEC, read_tick, &rd);
	}
	if (seed % 3 == 0) {
		/* A voter restarts at once: it must not vote for a while. */
		int v = 1 + (int)(seed / 3 % 2);

		sim_crash(s, v);
		sim_restart(s, v);
		if (sc->fault == CUT)
			sim_disconnect(s, 0);
	}
	if (!commit_on_majority(s, 3))
		fail_msg("seed %" PRIu64 ": the majority committed nothing",
		    seed);
	while (sim_now(s) < rd.until + 50 * SIM_MS)
		sim_sleep(s, 50 * SIM_MS);
	sim_connect_all(s);
	sim_heal_and_check(s, 10 * SIM_SEC, 10 * SIM_SEC);
	*lease_reads += sim_lease_reads(s);
	sim_free(s);
	return 1;
}

/* Run @n seeds; returns how many were violated. */
static uint64_t run_many(const struct scenario *sc, uint64_t n,
    uint64_t *lease_reads, bool quiet)
{
	uint64_t bad = 0;
	int saved = -1;

	if (quiet) {
		fflush(stderr);
		saved = dup(2);
		if (freopen("/dev/null", "w", stderr) == NULL)
			fail_msg("cannot silence stderr");
	}
	for (uint64_t seed = 1; seed <= n; seed++)
		bad += run_one(seed, sc, lease_reads) == 0;
	if (quiet) {
		fflush(stderr);
		dup2(saved, 2);
		close(saved);
	}
	return bad;
}

static void expect_clean(const char *name, const struct scenario *sc)
{
	uint64_t reads = 0, n = n_seeds(60), bad;

	bad = run_many(sc, n, &reads, false);
	printf("%s: %" PRIu64 " seeds, %" PRIu64 " lease reads, %" PRIu64
	       " violations\n",
	    name, n, reads, bad);
	if (bad)
		fail_msg("%s: %" PRIu64 " of %" PRIu64 " seeds served a stale "
		         "read from a lease",
		    name, bad, n);
	if (reads == 0)
		fail_msg("%s: no read was answered from a lease", name);
}

static void expect_caught(const char *name, const struct scenario *sc)
{
	uint64_t reads = 0, n = n_seeds(20), bad;

	bad = run_many(sc, n, &reads, true);
	printf("%s: stale lease read caught in %" PRIu64 " of %" PRIu64
	       " seeds\n",
	    name, bad, n);
	if (bad == 0)
		fail_msg("%s: a lease outliving stickiness went unnoticed in "
		         "%" PRIu64 " seeds",
		    name, n);
}

/* Member 1 (the leader) 20% slow, the others 20% fast: rates 1.5x apart. */
static void test_lease_cut_off_extreme_drift(void **state)
{
	struct scenario sc = { { 120, 80, 80 }, CUT, false };

	(void)state;
	expect_clean("lease, leader cut off, clocks 1.5x apart", &sc);
}

static void test_lease_cut_off_random_drift(void **state)
{
	struct scenario sc = { { 0, 0, 0 }, CUT, false };

	(void)state;
	expect_clean("lease, leader cut off, clocks within 20%", &sc);
}

static void test_lease_stalled_leader(void **state)
{
	struct scenario sc = { { 120, 80, 80 }, STALL, false };

	(void)state;
	expect_clean("lease, leader stalled 2 s, clocks 1.5x apart", &sc);
}

/* Mutation: the leader's clock 4x slow, so its lease of 6 of its ticks
 * lasts 1.2 s while the others stop being sticky after 0.5 s. */
static void test_lease_mutation_slow_clock_caught(void **state)
{
	struct scenario sc = { { 400, 100, 100 }, CUT, false };

	(void)state;
	expect_caught("mutation: leader clock 4x slow", &sc);
}

/* Mutation: the driver does not report the ticks a stall cost. */
static void test_lease_mutation_forgotten_gap_caught(void **state)
{
	struct scenario sc = { { 100, 100, 100 }, STALL, true };

	(void)state;
	expect_caught("mutation: stall not reported", &sc);
}

/* The randomized sweep (chaos.c: partitions, crashes, stalls, transfers,
 * membership changes...) with members' clocks alternately 20% slow and
 * 20% fast. */
static void test_lease_sweep_extreme_drift(void **state)
{
	uint64_t n = n_seeds(100), bad = 0, reads = 0, seed;
	struct chaos_stats cs;

	uint64_t first = 1;

	(void)state;
	memset(&cs, 0, sizeof cs);
	if (getenv("SIM_SEED") && *getenv("SIM_SEED")) {
		first = strtoull(getenv("SIM_SEED"), NULL, 0);
		n = 1;
	}
	for (seed = first; seed < first + n; seed++) {
		struct sim_config c;
		struct sim *volatile s = NULL;

		chaos_config(&c, seed);
		for (int i = 0; i < SIM_MAX_MEMBERS; i++)
			c.clock_pct[i] = (seed + (uint64_t)i) % 2 ? 120 : 80;
		if (setjmp(lease_jmp)) {
			sim_free(s);
			printf("seed %" PRIu64 ": %s\n", seed, lease_what);
			bad++;
			continue;
		}
		s = sim_new(&c);
		sim_set_fail_hook(s, lease_fail, NULL);
		sim_set_name(s, "test_lease_sweep_extreme_drift");
		chaos_run(s, chaos_duration(seed), &cs);
		reads += sim_lease_reads(s);
		sim_free(s);
	}
	printf("lease sweep, clocks 1.5x apart: %" PRIu64 " seeds, %" PRIu64
	       " lease reads, %" PRIu64 " violations\n",
	    n, reads, bad);
	if (bad)
		fail_msg("%" PRIu64 " of %" PRIu64
		         " seeds violated an invariant",
		    bad, n);
	if (reads == 0)
		fail_msg("no read was answered from a lease");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lease_cut_off_extreme_drift),
		cmocka_unit_test(test_lease_cut_off_random_drift),
		cmocka_unit_test(test_lease_stalled_leader),
		cmocka_unit_test(test_lease_mutation_slow_clock_caught),
		cmocka_unit_test(test_lease_mutation_forgotten_gap_caught),
		cmocka_unit_test(test_lease_sweep_extreme_drift),
	};

	if (getenv("SIM_TEST"))
		cmocka_set_test_filter(getenv("SIM_TEST"));
	return cmocka_run_group_tests_name("sim_lease", tests, NULL, NULL);
}
