/*
 * demo.c - raftkv-sim-demo: a seeded 5-member Raft cluster under faults,
 * in virtual time.
 *
 *   raftkv-sim-demo [--seed N] [--seconds N] [--quiet]
 *
 * Runs the pure Raft core (raft/) inside the simulator (tests/sim/, sim.h):
 * a client proposes entries and asks for read indexes while a fault
 * injector partitions the network (isolation, minority/majority split,
 * bridge, one-way links), crashes members (their unsynced writes are
 * lost), restarts them, makes the network drop, duplicate, delay and
 * reorder messages, and transfers leadership.  It prints elections,
 * crashes, partitions and commit progress as they happen, then heals the
 * cluster and checks liveness and durability.  After every single event
 * the simulator checks election safety, leader append-only, log matching,
 * leader completeness, state-machine safety and commit monotonicity; any
 * violation stops the demo with the seed, the time and a trace, and exit
 * status 1.  The same seed always prints the same run.
 *
 * README section (tests/sim/):
 *   ./tests/sim/raftkv-sim-demo --seed 7 --seconds 60   this demo
 *   ./tests/sim/test_raft_3a .. test_raft_3d             the 6.5840 Lab 3A-3D
 *       tests ported to virtual time (cmocka; 3 seeds each, 10 with
 *       RAFTKV_LONG=1), plus pre-vote, check-quorum, stickiness, transfer,
 *       fast backtracking, pipelining, uncommitted bound, ReadIndex and
 *       chunked snapshot tests
 *   ./tests/sim/test_sim_random                          the randomized sweep:
 *       500 seeds (RAFTKV_LONG=1: 20,000; SIM_SEEDS=N), one summary line
 *   SIM_SEED=N SIM_TEST=name SIM_TRACE=1 <binary>       replay one failure
 *   SIM_VERBOSE=1 <binary>                               per-run statistics
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/chaos.h"
#include "tests/sim/sim.h"

static bool quiet;

static void print_line(struct sim *s, const char *line, void *arg)
{
	(void)arg;
	if (!quiet)
		printf("[%8.3fs] %s\n", sim_now(s) / 1e6, line);
}

static void print_failure(struct sim *s, const char *what, void *arg)
{
	(void)arg;
	printf("\nINVARIANT VIOLATED at t=%.3fs (seed %" PRIu64 "): %s\n"
	       "replay: %s --seed %" PRIu64 " (SIM_TRACE=1 for every event)\n",
	    sim_now(s) / 1e6, sim_seed(s), what, "raftkv-sim-demo",
	    sim_seed(s));
	fflush(stdout);
	exit(1);
}

struct progress {
	uint64_t period;
	uint64_t end;
	raft_index last;
};

static void report(struct sim *s, void *arg)
{
	struct progress *p = arg;
	raft_index now = sim_max_applied(s);
	char who[64] = "no leader";
	int i;

	for (i = 0; i < sim_n(s); i++) {
		bool l;
		raft_term t = sim_get_state(s, i, &l);
		if (l)
			snprintf(who, sizeof who,
			    "leader n%d (term %" PRIu64 ")", i + 1, t);
	}
	sim_logf(s, "commit: %" PRIu64 " entries applied (+%" PRIu64 "), %s",
	    now, now - p->last, who);
	p->last = now;
	if (sim_now(s) + p->period < p->end)
		sim_after(s, p->period, report, p);
}

static void usage(void)
{
	fprintf(stderr,
	    "usage: raftkv-sim-demo [--seed N] [--seconds N] "
	    "[--quiet]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t seed = 1, seconds = 60;
	struct chaos_stats cs;
	struct sim_config c;
	struct progress p;
	const struct sim_stats *st;
	struct sim *s;
	int i, k;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = strtoull(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--quiet") == 0)
			quiet = true;
		else
			usage();
	}
	if (seconds == 0)
		usage();
	chaos_config(&c, seed);
	c.n = 5;
	printf("raftkv-sim-demo: 5 members, seed %" PRIu64 ", %" PRIu64
	       " s of virtual time\n",
	    seed, seconds);
	printf("  ticks %" PRIu64 " ms (election timeout %u-%u ms, heartbeat "
	       "%u ms), disk %" PRIu64 "-%" PRIu64 " us, snapshot every %u "
	       "entries%s%s\n\n",
	    c.tick_us / SIM_MS,
	    (unsigned)(c.election_tick * c.tick_us / SIM_MS),
	    (unsigned)(2 * c.election_tick * c.tick_us / SIM_MS),
	    (unsigned)(c.heartbeat_tick * c.tick_us / SIM_MS), c.disk_min_us,
	    c.disk_max_us, c.snap_every,
	    c.disable_prevote ? ", pre-vote off" : "",
	    c.disable_check_quorum ? ", check-quorum off" : "");
	s = sim_new(&c);
	sim_set_fail_hook(s, print_failure, NULL);
	sim_set_name(s, "raftkv-sim-demo");
	sim_set_log(s, print_line, NULL);
	memset(&cs, 0, sizeof cs);
	p.period = 5 * SIM_SEC;
	p.end = seconds * SIM_SEC;
	p.last = 0;
	sim_after(s, p.period, report, &p);
	chaos_run(s, seconds * SIM_SEC, &cs);
	st = sim_stats(s);

	printf("\nhealed: a leader was elected and a new entry committed; "
	       "every member applied all %" PRIu64 " entries\n",
	    sim_max_applied(s));
	printf("\nfaults injected:");
	for (k = 0; k < CHAOS_NKINDS; k++)
		printf(" %s=%" PRIu64, chaos_fault_name((enum chaos_fault)k),
		    cs.faults[k]);
	printf("\nnetwork: %" PRIu64 " messages, %" PRIu64 " bytes; %" PRIu64
	       " dropped, %" PRIu64 " duplicated, %" PRIu64 " long-delayed\n",
	    st->msgs_sent, st->bytes_sent, st->msgs_dropped,
	    st->msgs_duplicated, st->msgs_reordered);
	printf("cluster: %" PRIu64 " elections, %" PRIu64 " entries committed, "
	       "%" PRIu64 " crashes (%" PRIu64
	       " unsynced writes lost), %" PRIu64 " snapshots taken, %" PRIu64
	       " installed, %" PRIu64 " reads served, %" PRIu64 " transfers\n",
	    st->elections, sim_max_applied(s), st->crashes, st->writes_lost,
	    st->snapshots_taken, st->snapshots_installed, st->reads_ok,
	    st->transfers);
	printf("invariants checked after each of %" PRIu64 " events (%" PRIu64
	       " checks), none violated:\n"
	       "  election safety, leader append-only, log matching, leader "
	       "completeness,\n  state-machine safety, commit monotonic, read "
	       "index safety, durability, liveness\n",
	    st->events, st->checks);
	sim_free(s);
	return 0;
}
