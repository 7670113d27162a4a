/*
 * test_raft_3d.c - 6.5840 Lab 3D (log compaction), ported to the
 * simulator, plus chunked InstallSnapshot beyond the lab.
 *
 * Apply model of the tester's server.go in snapshot mode: strict
 * lastApplied + 1 order; after applying index i with (i + 1) % 10 == 0
 * the tester calls raft_compact(i, blob) where the blob encodes i and every
 * applied value; an installed snapshot must decode to its own index.  The
 * "Log size too large" limit (MAXLOGSIZE = 2000 bytes) is checked on every
 * member's durable raft state: hard state + encoded stored entries.
 */
#include <string.h>

#include "tests/sim/sim_cmocka.h"

#define MAXLOGSIZE 2000
#define SNAPSHOT_INTERVAL 10

static uint64_t rand_int(struct sim *s)
{
	return (sim_rand(s) >> 2) + 1;
}

static void start_int(struct sim *s, int i, uint64_t v)
{
	uint8_t b[8];

	sim_int_bytes(v, b);
	sim_propose(s, i, b, 8, NULL, NULL);
}

/* snapcommon(name, disconnect, reliable, crash) */
static void snapcommon(uint64_t seed, const char *name, bool disconnect,
    bool reliable, bool crash)
{
	struct sim *s = lab_new(3, reliable, true, seed, name);
	int servers = 3, iters = 30, leader1, i, k;

	sim_one_int(s, rand_int(s), servers, true);
	leader1 = sim_check_one_leader(s);
	for (i = 0; i < iters; i++) {
		int victim = (leader1 + 1) % servers, sender = leader1, nn;

		if (i % 3 == 1) {
			sender = (leader1 + 1) % servers;
			victim = leader1;
		}
		if (disconnect) {
			sim_disconnect(s, victim);
			sim_one_int(s, rand_int(s), servers - 1, true);
		}
		if (crash) {
			sim_crash(s, victim);
			sim_one_int(s, rand_int(s), servers - 1, true);
		}
		nn = SNAPSHOT_INTERVAL / 2 +
		    (int)sim_randn(s, SNAPSHOT_INTERVAL);
		for (k = 0; k < nn; k++)
			start_int(s, sender, rand_int(s));
		if (!disconnect && !crash)
			sim_one_int(s, rand_int(s), servers, true);
		else
			sim_one_int(s, rand_int(s), servers - 1, true);
		if (sim_log_size(s) >= MAXLOGSIZE)
			sim_fail(s, "Log size too large (%llu >= %d bytes)",
			    (unsigned long long)sim_log_size(s), MAXLOGSIZE);
		if (disconnect) {
			sim_connect(s, victim);
			sim_one_int(s, rand_int(s), servers, true);
			leader1 = sim_check_one_leader(s);
		}
		if (crash) {
			sim_restart(s, victim);
			sim_one_int(s, rand_int(s), servers, true);
			leader1 = sim_check_one_leader(s);
		}
	}
	if (sim_stats(s)->snapshots_taken == 0)
		sim_fail(s, "no snapshot was ever taken");
	lab_end(s);
}

static void run_snapshot_basic(uint64_t seed)
{
	snapcommon(seed, "test_snapshot_basic_3d", false, true, false);
}

static void run_snapshot_install(uint64_t seed)
{
	snapcommon(seed, "test_snapshot_install_3d", true, true, false);
}

static void run_snapshot_install_unreliable(uint64_t seed)
{
	snapcommon(seed, "test_snapshot_install_unreliable_3d", true, false,
	    false);
}

static void run_snapshot_install_crash(uint64_t seed)
{
	snapcommon(seed, "test_snapshot_install_crash_3d", false, true, true);
}

static void run_snapshot_install_uncrash(uint64_t seed)
{
	snapcommon(seed, "test_snapshot_install_uncrash_3d", false, false,
	    true);
}

/* TestSnapshotAllCrash3D */
static void run_snapshot_all_crash(uint64_t seed)
{
	struct sim *s = lab_new(3, false, true, seed,
	    "test_snapshot_all_crash_3d");
	int servers = 3, iters = 5, i, k;

	sim_one_int(s, rand_int(s), servers, true);
	for (i = 0; i < iters; i++) {
		raft_index index1, index2;
		int nn = SNAPSHOT_INTERVAL / 2 +
		    (int)sim_randn(s, SNAPSHOT_INTERVAL);
		for (k = 0; k < nn; k++)
			sim_one_int(s, rand_int(s), servers, true);
		index1 = sim_one_int(s, rand_int(s), servers, true);
		sim_crash_all(s);
		sim_start_all(s);
		index2 = sim_one_int(s, rand_int(s), servers, true);
		if (index2 < index1 + 1)
			sim_fail(s, "index decreased from %llu to %llu",
			    (unsigned long long)index1,
			    (unsigned long long)index2);
	}
	lab_end(s);
}

/* TestSnapshotInit3D */
static void run_snapshot_init(uint64_t seed)
{
	struct sim *s = lab_new(3, false, true, seed, "test_snapshot_init_3d");
	int servers = 3, i;

	sim_one_int(s, rand_int(s), servers, true);
	for (i = 0; i < SNAPSHOT_INTERVAL + 1; i++)
		sim_one_int(s, rand_int(s), servers, true);
	sim_crash_all(s);
	sim_start_all(s);
	sim_one_int(s, rand_int(s), servers, true);
	sim_crash_all(s);
	sim_start_all(s);
	sim_one_int(s, rand_int(s), servers, true);
	lab_end(s);
}

/* --- beyond the lab --------------------------------------------------- */

/*
 * Chunked InstallSnapshot: a ~20 KB snapshot sent in 1 KiB chunks to a
 * member that fell behind, with one chunk lost mid-transfer: the transfer
 * resumes (or restarts) and the member catches up.  Only a complete
 * snapshot may ever be installed (the apply model decodes every installed
 * blob and checks it against what was applied).
 */
static void run_snapshot_chunks(uint64_t seed)
{
	struct sim_config c;
	struct sim *s;
	const struct sim_stats *st;
	int leader, lagger, i;
	uint64_t sent0, installed0, dropped0;

	sim_config_lab(&c, 3, true, true, seed);
	c.lab_blob = false;
	c.snap_pad = 20000;
	c.snapshot_chunk_bytes = 1024;
	s = sim_new_cmocka(&c, "test_snapshot_chunks");
	st = sim_stats(s);
	sim_one_int(s, 1, 3, true);
	leader = sim_check_one_leader(s);
	lagger = (leader + 1) % 3;
	sim_disconnect(s, lagger);
	for (i = 0; i < 40; i++)
		sim_one_int(s, 100 + i, 2, true);
	sent0 = st->sent_by_type[RAFT_MSG_SNAPSHOT];
	installed0 = st->snapshots_installed;
	/* Reconnect; once a few chunks went through, lose the next one. */
	sim_connect(s, lagger);
	for (i = 0; i < 2000 && st->sent_by_type[RAFT_MSG_SNAPSHOT] < sent0 + 4;
	     i++)
		sim_sleep(s, 100);
	if (st->sent_by_type[RAFT_MSG_SNAPSHOT] < sent0 + 4)
		sim_fail(s, "no chunked snapshot transfer started");
	if (st->snapshots_installed != installed0)
		sim_fail(s,
		    "snapshot installed after %llu chunks of a 20 KB "
		    "snapshot",
		    (unsigned long long)(st->sent_by_type[RAFT_MSG_SNAPSHOT] -
		        sent0));
	dropped0 = st->msgs_dropped;
	sim_drop_next(s, leader, lagger, RAFT_MSG_SNAPSHOT);
	sim_one_int(s, 1000, 3, true);
	if (st->msgs_dropped == dropped0)
		sim_fail(s, "the chunk meant to be lost was never sent");
	if (st->snapshots_installed == installed0)
		sim_fail(s, "the lagging member never installed the snapshot");
	if (st->sent_by_type[RAFT_MSG_SNAPSHOT] - sent0 < 20)
		sim_fail(s,
		    "a 20 KB snapshot went in %llu messages of <= 1 KiB",
		    (unsigned long long)(st->sent_by_type[RAFT_MSG_SNAPSHOT] -
		        sent0));
	lab_end(s);
}

SIM_TEST(test_snapshot_basic_3d, run_snapshot_basic)
SIM_TEST(test_snapshot_install_3d, run_snapshot_install)
SIM_TEST(test_snapshot_install_unreliable_3d, run_snapshot_install_unreliable)
SIM_TEST(test_snapshot_install_crash_3d, run_snapshot_install_crash)
SIM_TEST(test_snapshot_install_uncrash_3d, run_snapshot_install_uncrash)
SIM_TEST(test_snapshot_all_crash_3d, run_snapshot_all_crash)
SIM_TEST(test_snapshot_init_3d, run_snapshot_init)
SIM_TEST(test_snapshot_chunks, run_snapshot_chunks)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_basic_3d),
		cmocka_unit_test(test_snapshot_install_3d),
		cmocka_unit_test(test_snapshot_install_unreliable_3d),
		cmocka_unit_test(test_snapshot_install_crash_3d),
		cmocka_unit_test(test_snapshot_install_uncrash_3d),
		cmocka_unit_test(test_snapshot_all_crash_3d),
		cmocka_unit_test(test_snapshot_init_3d),
		cmocka_unit_test(test_snapshot_chunks),
	};

	if (getenv("SIM_TEST"))
		cmocka_set_test_filter(getenv("SIM_TEST"));
	return cmocka_run_group_tests_name("raft_3d", tests, NULL, NULL);
}
