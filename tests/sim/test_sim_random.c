/*
 * test_sim_random.c - the randomized sweep: many seeds of random faults,
 * every invariant of sim.h checked after every event.
 *
 * Per seed (tests/sim/chaos.c): 3 or 5 voters (and, in half the seeds,
 * 1-3 spare members) and a configuration drawn from the seed, 30-60 s of
 * virtual time of client load and faults (partitions of every shape,
 * crashes losing unsynced writes, restarts, drops, duplicates, delays,
 * long reordering, snapshots with small thresholds, read indexes (from
 * leases too: members' clocks drift up to 20% apart, within the margin),
 * leadership transfers, membership changes: add, promote, remove and
 * replace, the leader included), then heal and check liveness and that
 * nothing applied was lost.
 *
 * Seeds: 500 by default, 20,000 with RAFTKV_LONG=1, SIM_SEEDS=N to choose,
 * SIM_SEED=N to replay exactly one (add SIM_TRACE=1 for every event),
 * SIM_LYING_DISK=1 to run the sweep on a disk that loses acknowledged
 * writes (see the self-test below).
 * A violation prints its seed, time and trace; the sweep goes on with the
 * next seed and fails at the end with the list of failing seeds.  One
 * summary line reports seeds, faults injected by kind, elections, entries
 * committed and violations.
 */
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "tests/sim/chaos.h"
#include "tests/sim/sim_cmocka.h"

static jmp_buf sweep_jmp;

static void sweep_fail(struct sim *s, const char *what, void *arg)
{
	(void)s;
	(void)what;
	(void)arg;
	longjmp(sweep_jmp, 1);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

struct sweep_totals {
	uint64_t seeds, violations, elections, committed, events;
	uint64_t msgs, dropped, duplicated, reordered, crashes, writes_lost;
	uint64_t snapshots, installs, reads_ok, lease_reads, transfers, checks;
	uint64_t with_spares;
	uint64_t virtual_us;
	uint64_t members3, members5;
	struct chaos_stats chaos;
	uint64_t failed[32];
	int n_failed;
};

/* One seed; returns false on a violation. */
static bool run_seed(uint64_t seed, struct sweep_totals *t, bool lying)
{
	struct sim_config c;
	struct sim *volatile s = NULL;
	const struct sim_stats *st;

	chaos_config(&c, seed);
	c.lying_disk = lying;
	if (setjmp(sweep_jmp)) {
		/* A violation leaves the run between events or inside one
		 * (the simulator keeps that event for sim_free): free it. */
		sim_free(s);
		return false;
	}
	s = sim_new(&c);
	sim_set_fail_hook(s, sweep_fail, NULL);
	sim_set_name(s, "test_sim_random_sweep");
	chaos_run(s, chaos_duration(seed), &t->chaos);
	st = sim_stats(s);
	t->elections += st->elections;
	t->committed += sim_max_applied(s);
	t->events += st->events;
	t->msgs += st->msgs_sent;
	t->dropped += st->msgs_dropped;
	t->duplicated += st->msgs_duplicated;
	t->reordered += st->msgs_reordered;
	t->crashes += st->crashes;
	t->writes_lost += st->writes_lost;
	t->snapshots += st->snapshots_taken;
	t->installs += st->snapshots_installed;
	t->reads_ok += st->reads_ok;
	t->lease_reads += sim_lease_reads(s);
	t->transfers += st->transfers;
	t->checks += st->checks;
	t->virtual_us += sim_now(s);
	if (c.n_voters > 0)
		t->with_spares++;
	if ((c.n_voters ? c.n_voters : c.n) == 3)
		t->members3++;
	else
		t->members5++;
	sim_free(s);
	return true;
}

static void test_sim_random_sweep(void **state)
{
	const char *one = getenv("SIM_SEED");
	const char *lng = getenv("RAFTKV_LONG");
	uint64_t n = env_u64("SIM_SEEDS",
	    lng && *lng && *lng != '0' ? 20000 : 500);
	uint64_t first = 1, seed;
	struct sweep_totals t;
	int k;

	(void)state;
	memset(&t, 0, sizeof t);
	if (one && *one) {
		first = strtoull(one, NULL, 0);
		n = 1;
	}
	for (seed = first; seed < first + n; seed++) {
		t.seeds++;
		if (!run_seed(seed, &t, env_u64("SIM_LYING_DISK", 0) != 0)) {
			t.violations++;
			if (t.n_failed < 32)
				t.failed[t.n_failed++] = seed;
		}
	}
	printf("sim sweep: %" PRIu64 " seeds (%" PRIu64 " x 3 voters, %" PRIu64
	       " x 5, %" PRIu64 " with spares), %.0f s virtual, %" PRIu64
	       " events, %" PRIu64 " invariant checks\n",
	    t.seeds, t.members3, t.members5, t.with_spares, t.virtual_us / 1e6,
	    t.events, t.checks);
	printf("sim sweep: faults injected:");
	for (k = 0; k < CHAOS_NKINDS; k++)
		printf(" %s=%" PRIu64, chaos_fault_name((enum chaos_fault)k),
		    t.chaos.faults[k]);
	printf("\nsim sweep: membership changes accepted: add-learner=%" PRIu64
	       " promote=%" PRIu64 " remove=%" PRIu64
	       " (replacements started %" PRIu64 "), refused %" PRIu64,
	    t.chaos.conf_ok[RAFT_CONF_ADD_LEARNER],
	    t.chaos.conf_ok[RAFT_CONF_PROMOTE],
	    t.chaos.conf_ok[RAFT_CONF_REMOVE], t.chaos.replaces,
	    t.chaos.conf_refused);
	printf("\nsim sweep: messages %" PRIu64 " (dropped %" PRIu64
	       ", duplicated %" PRIu64 ", long-delayed %" PRIu64
	       "), crashes %" PRIu64 " (unsynced writes lost %" PRIu64
	       "), snapshots %" PRIu64 " taken / %" PRIu64
	       " installed, reads %" PRIu64 " (%" PRIu64
	       " from a lease), transfers %" PRIu64 "\n",
	    t.msgs, t.dropped, t.duplicated, t.reordered, t.crashes,
	    t.writes_lost, t.snapshots, t.installs, t.reads_ok, t.lease_reads,
	    t.transfers);
	printf("sim sweep: seeds=%" PRIu64 " elections=%" PRIu64
	       " committed=%" PRIu64 " violations=%" PRIu64 "\n",
	    t.seeds, t.elections, t.committed, t.violations);
	if (t.violations) {
		printf("sim sweep: failing seeds:");
		for (k = 0; k < t.n_failed; k++)
			printf(" %" PRIu64, t.failed[k]);
		printf("\nsim sweep: replay one with SIM_SEED=<seed> "
		       "SIM_TRACE=1 %s\n",
		    "tests/sim/test_sim_random");
		fail_msg("%" PRIu64 " of %" PRIu64
		         " seeds violated an invariant",
		    t.violations, t.seeds);
	}
	/* A sweep that ran nothing, or in which nothing ever committed,
	 * checked nothing. */
	if (t.seeds == 0 || t.committed == 0)
		fail_msg("the sweep checked nothing (%" PRIu64
		         " seeds, %" PRIu64 " entries committed)",
		    t.seeds, t.committed);
	/* Membership changes are mixed in: a sweep of 100 seeds or more
	 * in which no change of some kind was accepted tested none. */
	if (t.seeds >= 100 &&
	    (t.chaos.conf_ok[RAFT_CONF_ADD_LEARNER] == 0 ||
	        t.chaos.conf_ok[RAFT_CONF_PROMOTE] == 0 ||
	        t.chaos.conf_ok[RAFT_CONF_REMOVE] == 0 ||
	        t.chaos.replaces == 0))
		fail_msg("membership changes accepted in %" PRIu64 " seeds: "
		         "add-learner=%" PRIu64 " promote=%" PRIu64
		         " remove=%" PRIu64 ", replacements %" PRIu64
		         ": some kind never happened",
		    t.seeds, t.chaos.conf_ok[RAFT_CONF_ADD_LEARNER],
		    t.chaos.conf_ok[RAFT_CONF_PROMOTE],
		    t.chaos.conf_ok[RAFT_CONF_REMOVE], t.chaos.replaces);
	/* Lease reads are on by default: a sweep of more than a few seeds
	 * in which no leader ever answered from its lease tested none. */
	if (t.seeds >= 20 && t.lease_reads == 0)
		fail_msg("no read was answered from a lease in %" PRIu64
		         " seeds",
		    t.seeds);
}

/*
 * The checker's own test: with a disk that forgets the vote and the last
 * entry on every crash, the same sweep must report violations (a
 * checker that never fires proves nothing).  The violations' reports are
 * expected here and silenced by closing stderr's output into /dev/null.
 */
static void test_sim_checker_catches_lying_disk(void **state)
{
	struct sweep_totals t;
	uint64_t seed;
	int saved;

	(void)state;
	if (getenv("SIM_SEED") && *getenv("SIM_SEED"))
		skip();
	memset(&t, 0, sizeof t);
	fflush(stderr);
	saved = dup(2);
	if (freopen("/dev/null", "w", stderr) == NULL)
		fail_msg("cannot silence stderr");
	for (seed = 1; seed <= 100 && t.violations < 3; seed++) {
		t.seeds++;
		if (!run_seed(seed, &t, true))
			t.violations++;
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	printf("sim checker self-test: lying disk caught in %" PRIu64
	       " of %" PRIu64 " seeds\n",
	    t.violations, t.seeds);
	if (t.violations == 0)
		fail_msg("a disk that loses acknowledged writes went unnoticed "
		         "in %" PRIu64 " seeds",
		    t.seeds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_random_sweep),
		cmocka_unit_test(test_sim_checker_catches_lying_disk),
	};

	if (getenv("SIM_TEST"))
		cmocka_set_test_filter(getenv("SIM_TEST"));
	return cmocka_run_group_tests_name("sim_random", tests, NULL, NULL);
}
