/*
 * chaos.h - random fault schedules for the simulator (the sweep and the
 * demo share them).
 *
 * chaos_config() derives a whole cluster configuration from a seed: 3 or
 * 5 members, disk and network latencies, snapshot thresholds (small, so
 * compaction and InstallSnapshot happen all the time), snapshot chunk
 * size, pipelining window, batching, and now and then pre-vote or
 * check-quorum off.  chaos_run() then drives that cluster for a virtual
 * duration with a client proposing entries and asking for read indexes,
 * and a fault injector acting every 0.2-2 s: partitions of every shape
 * (one member isolated, minority/majority split, bridge, random
 * asymmetric links), heals, crashes (losing unsynced writes), restarts,
 * network quality changes (drop, duplicate, delay, long reordering),
 * leadership transfers, forced campaigns and stalls (a member stops for
 * seconds, then resumes with everything that queued up).  Half the seeds
 * let messages in flight survive a crash into the next incarnation, and
 * members' clocks run at slightly different rates.
 * Membership changes are faults too: half the seeds start with 1-3
 * spare members (idle learners of their own bootstrap configuration) next
 * to the 3 or 5 voters, and the injector adds a fresh spare as a learner,
 * promotes a learner, removes a member (the leader included), or replaces
 * a voter (add a fresh spare, promote it once it caught up, remove the
 * old one -- the leader a third of the time), all under the same
 * partitions, crashes and stalls; the core's refusals (a change pending,
 * a learner not caught up, no live quorum) are counted.  Finally it heals everything
 * and checks liveness and that no applied entry was lost
 * (sim_heal_and_check).  All invariants of sim.h are checked after every
 * event.  Everything is a function of the seed.
 */
#ifndef RAFTKV_CHAOS_H
#define RAFTKV_CHAOS_H

#include <stdint.h>

#include "tests/sim/sim.h"

enum chaos_fault {
	CHAOS_ISOLATE, /* one member cut off both ways */
	CHAOS_SPLIT, /* minority | majority */
	CHAOS_BRIDGE, /* two sides plus one member that sees both */
	CHAOS_ASYMMETRIC, /* random directed links down */
	CHAOS_HEAL, /* every link up */
	CHAOS_CRASH,
	CHAOS_RESTART,
	CHAOS_NET, /* drop / duplicate / delay / reorder change */
	CHAOS_TRANSFER, /* leadership transfer */
	CHAOS_CAMPAIGN, /* raft_campaign() on a random member */
	CHAOS_PAUSE, /* a member stalls (SIGSTOP) for 0.2-5 s */
	CHAOS_MEMBER, /* a membership change (add, promote, remove,
	                             replace) proposed to the leader */
	CHAOS_NKINDS
};

struct chaos_stats {
	uint64_t faults[CHAOS_NKINDS];
	uint64_t proposals_tried;
	uint64_t reads_tried;
	/* Membership changes accepted by a leader, by enum
	 * raft_conf_change_type (index 0 unused), and refused. */
	uint64_t conf_ok[4];
	uint64_t conf_refused;
	uint64_t replaces; /* replacement plans started */
};

const char *chaos_fault_name(enum chaos_fault f);

/* Fill @c with a random cluster configuration derived from @seed. */
void chaos_config(struct sim_config *c, uint64_t seed);

/* A random virtual duration for @seed: 30-60 s. */
uint64_t chaos_duration(uint64_t seed);

/*
 * Run faults and client load for @duration_us of virtual time, then heal
 * and check liveness and durability (limit 10 s each).  Adds to @st.
 * Failures go through the sim's failure hook.
 */
void chaos_run(struct sim *s, uint64_t duration_us, struct chaos_stats *st);

#endif
