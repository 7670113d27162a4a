/*
 * sim_cmocka.h - glue between the simulator and cmocka tests.
 *
 * Every simulator test runs its scenario once per seed: seeds 1..3 by
 * default (so a test cannot pass by the luck of one schedule), 1..10 with
 * RAFTKV_LONG=1, or only $SIM_SEED when set (replay).  A simulator failure
 * (a violated invariant or a lab check) prints the seed, the virtual time
 * and the recent trace, then fails the cmocka test.
 *
 * Usage:
 *   static void run_x(uint64_t seed) { struct sim *s = lab_new(3, true,
 *       false, seed, "test_x"); ...; sim_free(s); }
 *   SIM_TEST(test_x, run_x)
 */
#ifndef RAFTKV_SIM_CMOCKA_H
#define RAFTKV_SIM_CMOCKA_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "tests/sim/sim.h"

static void sim_cmocka_fail(struct sim *s, const char *what, void *arg)
{
	(void)arg;
	fail_msg("seed %llu: %s", (unsigned long long)sim_seed(s), what);
}

static inline int sim_test_nseeds(void)
{
	const char *v = getenv("SIM_SEED");
	const char *l = getenv("RAFTKV_LONG");

	if (v && *v)
		return 1;
	return l && *l && *l != '0' ? 10 : 3;
}

static inline uint64_t sim_test_seed(int k)
{
	const char *v = getenv("SIM_SEED");

	if (v && *v)
		return strtoull(v, NULL, 0);
	return (uint64_t)k + 1;
}

/* A lab cluster (makeTest(n, reliable, snapshot)) wired to cmocka. */
static inline struct sim *lab_new(int n, bool reliable, bool snapshot,
    uint64_t seed, const char *name)
{
	struct sim_config c;
	struct sim *s;

	sim_config_lab(&c, n, reliable, snapshot, seed);
	s = sim_new(&c);
	sim_set_fail_hook(s, sim_cmocka_fail, NULL);
	sim_set_name(s, name);
	return s;
}

static inline struct sim *sim_new_cmocka(const struct sim_config *c,
    const char *name)
{
	struct sim *s = sim_new(c);

	sim_set_fail_hook(s, sim_cmocka_fail, NULL);
	sim_set_name(s, name);
	return s;
}

/* End of a lab test: the tester's 120 s cap per test (Config.CheckTimeout),
 * in virtual time, then free. */
static inline void lab_end(struct sim *s)
{
	if (sim_now(s) > 120 * SIM_SEC)
		sim_fail(s, "test took too long (%.1f s > 120 s)",
		    sim_now(s) / 1e6);
	sim_free(s);
}

#define SIM_TEST(name, runner) \
	static void name(void **state) \
	{ \
		int k_, n_ = sim_test_nseeds(); \
		(void)state; \
		for (k_ = 0; k_ < n_; k_++) \
			runner(sim_test_seed(k_)); \
	}

#endif
