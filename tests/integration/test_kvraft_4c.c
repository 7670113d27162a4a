/*
 * test_kvraft_4c.c - the 6.5840 Lab 4C tests (KV with snapshots,
 * kvraft1/kvraft_test.go, 6.5840-tests.md section 5) on real
 * raftkv-server processes started with --max-raft-state 1000.
 *
 * Size limits, measured as the lab does but on real members:
 *   persisted raft state   STATUS log_bytes (the bytes of the log on disk
 *                          since the last snapshot) <= 8 x 1000 on every
 *                          member after every iteration;
 *   snapshot size          the member's newest snap-*.snap file <= 500 bytes
 *                          (TestSnapshotSize4C).  That file is the whole
 *                          snapshot as stored: a checked header, then the
 *                          zstd-compressed KV state (keys, the session
 *                          table, counters), so the bound covers more than
 *                          the lab's encoded KV map.
 *
 * GenericTest and GenericTestSpeed come from kvtest.c; the scaling is that
 * of test_kvraft_4b.c (2 iterations by default, 3 with RAFTKV_LONG=1; 1 s
 * client periods, 3 s (long: 5 s) with partitions; the crash is kill -9
 * of every member and an immediate restart).  TestSnapshotRPC4C and
 * TestSnapshotSize4C follow the lab's schedules exactly; clerks
 * "restricted to servers" get a cluster struct holding only those
 * members.  TestSpeed4C's time per op is printed, not asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "raft/client/cproto.h"
#include "tests/integration/kvtest.h"

#define MAXRAFTSTATE 1000
#define MAXSNAPSHOTSTATE 500
#define NITER KVT_SCALE(2, 3)
#define PERIOD_MS 1000
#define PARTITION_PERIOD_MS KVT_SCALE(3000, 5000)

static void generic(void **state, const char *name, int nclients, int nservers,
    bool unreliable, bool crash, bool partitions, bool randomkeys)
{
	struct kvt_generic g = {
		.name = name,
		.nclients = nclients,
		.nservers = nservers,
		.unreliable = unreliable,
		.crash = crash,
		.partitions = partitions,
		.maxraftstate = MAXRAFTSTATE,
		.randomkeys = randomkeys,
		.niter = NITER,
		.period_ms = partitions ? PARTITION_PERIOD_MS : PERIOD_MS,
	};

	kvt_generic_test(state, &g);
}

static struct kvt *start(void **state, const char *name, int n)
{
	struct kvt_options o;

	kvt_options_defaults(&o);
	o.name = name;
	o.nservers = n;
	o.max_raft_state = MAXRAFTSTATE;
	return kvt_new(state, &o);
}

/* ------------------------------------------------------------------ */
/* TestSnapshotRPC4C                                                    */
/* ------------------------------------------------------------------ */

/*
 * A member that falls behind while the majority compacts its log must be
 * brought back by InstallSnapshot; the majority must trim its log although
 * the lagging member never acknowledged the entries.
 */
static void test_snapshot_rpc_4c(void **state)
{
	struct kvt *t = start(state, "snapshot_rpc_4c", 3);
	struct harness *h = kvt_harness(t);
	struct kvt_clerk *ck = kvt_clerk_new(t), *ck1;
	struct cproto_status st;
	uint64_t vera, verb, snap2_before;
	int g1[3] = { 0, 0, 1 }, g2[3] = { 0, 1, 0 }, all[3] = { 0, 0, 0 };

	assert_non_null(ck);
	vera = kvt_must_put_at_least_once(ck, "a", "A", 0);
	kvt_check_get(ck, "a", "A", vera);

	/* A bunch of puts into the majority partition {0,1}. */
	assert_int_equal(harness_partition(h, g1), 0);
	assert_int_equal(harness_status(h, 2, &st), 0);
	snap2_before = st.snap_index;
	ck1 = kvt_clerk_to(t, 0x3);
	assert_non_null(ck1);
	for (int i = 0; i < 50; i++) {
		char k[8];

		snprintf(k, sizeof(k), "%d", i);
		kvt_must_put_at_least_once(ck1, k, k, 0);
	}
	harness_sleep_ms(1000);
	verb = kvt_must_put_at_least_once(ck1, "b", "B", 0);
	kvt_clerk_free(ck1);

	/* The majority has thrown away most of its log. */
	kvt_check_raft_state(t, 8 * MAXRAFTSTATE);

	/* A group that needs the lagging member 2: it must catch up. */
	assert_int_equal(harness_partition(h, g2), 0);
	ck1 = kvt_clerk_to(t, 0x5);
	assert_non_null(ck1);
	kvt_must_put_at_least_once(ck1, "c", "C", 0);
	kvt_must_put_at_least_once(ck1, "d", "D", 0);
	kvt_check_get(ck1, "a", "A", vera);
	kvt_check_get(ck1, "b", "B", verb);
	kvt_check_get(ck1, "1", "1", 1);
	kvt_check_get(ck1, "49", "49", 1);
	kvt_clerk_free(ck1);
	/* Beyond the lab: member 2 got there through a snapshot (the
	 * entries it missed are no longer in anyone's log). */
	assert_int_equal(harness_status(h, 2, &st), 0);
	print_message("[snapshot_rpc_4c] member 2: snapshot index %" PRIu64
	              " (was %" PRIu64 "), applied %" PRIu64 "\n",
	    st.snap_index, snap2_before, st.applied);
	assert_true(st.snap_index > snap2_before);

	/* Now everybody. */
	assert_int_equal(harness_partition(h, all), 0);
	{
		uint64_t vere = kvt_must_put_at_least_once(ck, "e", "E", 0);

		kvt_check_get(ck, "c", "C", 1);
		kvt_check_get(ck, "e", "E", vere);
		kvt_check_get(ck, "1", "1", 1);
	}
	kvt_check_raft_state(t, 8 * MAXRAFTSTATE);
	kvt_check_linearizable(t, "end");
	kvt_clerk_free(ck);
	kvt_finish(t);
}

/* ------------------------------------------------------------------ */
/* TestSnapshotSize4C                                                   */
/* ------------------------------------------------------------------ */

static void test_snapshot_size_4c(void **state)
{
	struct kvt *t = start(state, "snapshot_size_4c", 3);
	struct kvt_clerk *ck = kvt_clerk_new(t);
	uint64_t ver = 0, max = 0;

	assert_non_null(ck);
	for (int i = 0; i < 200; i++) {
		ver = kvt_must_put_at_least_once(ck, "x", "0", ver);
		kvt_check_get(ck, "x", "0", ver);
		ver = kvt_must_put_at_least_once(ck, "x", "1", ver);
		kvt_check_get(ck, "x", "1", ver);
	}
	/* The servers have thrown away most of their log entries. */
	kvt_check_raft_state(t, 8 * MAXRAFTSTATE);
	/* The snapshots are not unreasonably large. */
	for (int i = 0; i < 3; i++) {
		uint64_t b = kvt_snapshot_bytes(t, i);

		print_message("[snapshot_size_4c] member %d: snapshot file "
		              "%" PRIu64 " bytes\n",
		    i, b);
		if (b > max)
			max = b;
		if (b == 0)
			fail_msg("member %d has no snapshot after 400 puts", i);
	}
	if (max > MAXSNAPSHOTSTATE)
		fail_msg("snapshot too large (%" PRIu64 " > %d)", max,
		    MAXSNAPSHOTSTATE);
	kvt_check_linearizable(t, "end");
	kvt_clerk_free(ck);
	kvt_finish(t);
}

/* ------------------------------------------------------------------ */
/* the GenericTest table                                                */
/* ------------------------------------------------------------------ */

static void test_speed_4c(void **state)
{
	kvt_generic_test_speed(state, "speed_4c", 3, MAXRAFTSTATE);
}

static void test_snapshot_recover_4c(void **state)
{
	generic(state, "snapshot_recover_4c", 1, 5, false, true, false, false);
}

static void test_snapshot_recover_many_clients_4c(void **state)
{
	generic(state, "snapshot_recover_many_clients_4c", 20, 5, false, true,
	    false, false);
}

static void test_snapshot_unreliable_4c(void **state)
{
	generic(state, "snapshot_unreliable_4c", 5, 5, true, false, false,
	    false);
}

static void test_snapshot_unreliable_recover_4c(void **state)
{
	generic(state, "snapshot_unreliable_recover_4c", 5, 5, true, true,
	    false, false);
}

static void test_snapshot_unreliable_recover_concurrent_partition_4c(
    void **state)
{
	generic(state, "snapshot_unreliable_recover_concurrent_partition_4c", 5,
	    5, true, true, true, false);
}

static void
test_snapshot_unreliable_recover_concurrent_partition_linearizable_4c(
    void **state)
{
	generic(state,
	    "snapshot_unreliable_recover_concurrent_partition_"
	    "linearizable_4c",
	    15, 7, true, true, true, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_snapshot_rpc_4c, kvt_teardown),
		cmocka_unit_test_teardown(test_snapshot_size_4c, kvt_teardown),
		cmocka_unit_test_teardown(test_speed_4c, kvt_teardown),
		cmocka_unit_test_teardown(test_snapshot_recover_4c,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_snapshot_recover_many_clients_4c,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_snapshot_unreliable_4c,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_snapshot_unreliable_recover_4c,
		    kvt_teardown),
		cmocka_unit_test_teardown(
		    test_snapshot_unreliable_recover_concurrent_partition_4c,
		    kvt_teardown),
		cmocka_unit_test_teardown(
		    test_snapshot_unreliable_recover_concurrent_partition_linearizable_4c,
		    kvt_teardown),
	};

	kvt_filter_tests();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
