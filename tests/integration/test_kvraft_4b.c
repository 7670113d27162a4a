/*
 * test_kvraft_4b.c - the 6.5840 Lab 4B fault-tolerant KV tests
 * (kvraft1/kvraft_test.go, 6.5840-tests.md section 5) on real
 * raftkv-server processes: real disks, kill -9 and restart, partitions and
 * message drops injected into the members' peer links, lossy clerks.
 *
 * Every test but the custom ones is the lab's GenericTest
 * (kvt_generic_test in kvtest.c) with the lab's parameters: clients,
 * members, network, crash, partitions, maxraftstate -1, random keys.  Every
 * clerk call goes into one history, checked for linearizability per key
 * after each iteration (budget 10 s, not the lab's 1 s; a timeout is a
 * loud warning, never a pass of an illegal history).  With maxraftstate -1
 * no member may take a snapshot.
 *
 * Scaled down by default, to keep `make check` short (RAFTKV_LONG=1 runs
 * the lab's numbers or more):
 *   - iterations: 2 instead of 3 (RAFTKV_LONG: 3);
 *   - the client period is the lab's 1 s, except with partitions: the lab
 *     starts its Partitioner 1 s into a 1 s period, so partitions barely
 *     overlap the clients; here the period is 3 s (RAFTKV_LONG: 5 s), the
 *     partitioner starting after 1 s as in the lab;
 *   - the crash is kill -9 of every member at once, then a restart after
 *     100 ms (the lab waits ElectionTimeout for its non-instantaneous
 *     in-process shutdown).
 * TestSpeed4B's 33 ms/op bound is printed, not asserted (no speed
 * assertions in tests; bench/ measures speed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "tests/integration/kvtest.h"

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
		.maxraftstate = -1,
		.randomkeys = randomkeys,
		.niter = NITER,
		.period_ms = partitions ? PARTITION_PERIOD_MS : PERIOD_MS,
	};

	kvt_generic_test(state, &g);
}

/* ------------------------------------------------------------------ */
/* GenericTest table                                                    */
/* ------------------------------------------------------------------ */

static void test_basic_4b(void **state)
{
	generic(state, "basic_4b", 1, 5, false, false, false, false);
}

static void test_speed_4b(void **state)
{
	kvt_generic_test_speed(state, "speed_4b", 3, -1);
}

static void test_concurrent_4b(void **state)
{
	generic(state, "concurrent_4b", 5, 5, false, false, false, false);
}

static void test_unreliable_4b(void **state)
{
	generic(state, "unreliable_4b", 5, 5, true, false, false, false);
}

static void test_many_partitions_one_client_4b(void **state)
{
	generic(state, "many_partitions_one_client_4b", 1, 5, false, false,
	    true, false);
}

static void test_many_partitions_many_clients_4b(void **state)
{
	generic(state, "many_partitions_many_clients_4b", 5, 5, false, false,
	    true, false);
}

static void test_persist_one_client_4b(void **state)
{
	generic(state, "persist_one_client_4b", 1, 5, false, true, false,
	    false);
}

static void test_persist_concurrent_4b(void **state)
{
	generic(state, "persist_concurrent_4b", 5, 5, false, true, false,
	    false);
}

static void test_persist_concurrent_unreliable_4b(void **state)
{
	generic(state, "persist_concurrent_unreliable_4b", 5, 5, true, true,
	    false, false);
}

static void test_persist_partition_4b(void **state)
{
	generic(state, "persist_partition_4b", 5, 5, false, true, true, false);
}

static void test_persist_partition_unreliable_4b(void **state)
{
	generic(state, "persist_partition_unreliable_4b", 5, 5, true, true,
	    true, false);
}

static void test_persist_partition_unreliable_linearizable_4b(void **state)
{
	generic(state, "persist_partition_unreliable_linearizable_4b", 15, 7,
	    true, true, true, true);
}

/* ------------------------------------------------------------------ */
/* TestOnePartition4B                                                   */
/* ------------------------------------------------------------------ */

/*
 * The lab allows 3 s for the minority's Put to complete after healing
 * (plus the 1 s ElectionTimeout sleep before it starts counting).  Here
 * the deposed leader must learn the new term over TCP, and the p2 clerk
 * returns from its attempt on the minority (2 s deadline per attempt
 * round, see kvt_clerk_to) before it uses every member: 15 s.
 */
#define HEAL_COMPLETE_MS 15000

struct minority_op {
	struct kvt_clerk *ck;
	uint64_t ver; /* in: version to put at; out: created */
	int rv;
	uint64_t done_ms;
	atomic_bool done;
	char err[256];
	pthread_t tid;
};

static void *minority_put(void *arg)
{
	struct minority_op *m = arg;

	m->rv = kvt_put_at_least_once(m->ck, "1", "15", &m->ver, m->err,
	    sizeof(m->err));
	m->done_ms = harness_now_ms();
	atomic_store(&m->done, true);
	return NULL;
}

static void *minority_get(void *arg)
{
	struct minority_op *m = arg;

	m->rv = kvt_get(m->ck, "1", NULL, &m->ver);
	m->done_ms = harness_now_ms();
	atomic_store(&m->done, true);
	return NULL;
}

/* Phase 2 in the majority: CheckGet "14", PutAtLeastOnce "16", CheckGet
 * "16"; the first problem goes to @err. */
static void majority_phase(struct kvt_clerk *ckp1, uint64_t ver1,
    uint64_t *ver2, char *err, size_t errlen)
{
	char *got = NULL;
	uint64_t v = 0;

	if (kvt_get(ckp1, "1", &got, &v) != KV_OK || strcmp(got, "14") != 0 ||
	    v != ver1) {
		snprintf(err, errlen,
		    "majority Get: %s ver %" PRIu64 ", want "
		    "14 ver %" PRIu64,
		    got ? got : "(error)", v, ver1);
		free(got);
		return;
	}
	free(got);
	got = NULL;
	*ver2 = ver1;
	if (kvt_put_at_least_once(ckp1, "1", "16", ver2, err, errlen) != 0)
		return;
	if (kvt_get(ckp1, "1", &got, &v) != KV_OK || strcmp(got, "16") != 0 ||
	    v != *ver2)
		snprintf(err, errlen,
		    "majority Get: %s ver %" PRIu64 ", want "
		    "16 ver %" PRIu64,
		    got ? got : "(error)", v, *ver2);
	free(got);
}

static void test_one_partition_4b(void **state)
{
	struct kvt_options o;
	struct kvt *t;
	struct kvt_clerk *ck, *ckp1, *ckp2a, *ckp2b;
	struct minority_op put, get;
	int group[5], l, np1 = 0;
	uint32_t p1 = 0, p2 = 0;
	uint64_t ver0, ver1, ver2 = 0, t_heal;
	char err[300] = "";

	kvt_options_defaults(&o);
	o.name = "one_partition_4b";
	o.nservers = 5;
	o.unreliable = true; /* the lab passes reliable=false */
	t = kvt_new(state, &o);
	ck = kvt_clerk_new(t);
	assert_non_null(ck);
	ver0 = kvt_must_put_at_least_once(ck, "1", "13", 0);

	/* MakePartition(l): p1 = 3 non-leaders (lowest first), p2 = the
	 * other non-leader and the leader. */
	l = kvt_must_leader(t);
	for (int i = 0; i < 5; i++) {
		if (i != l && np1 < 3) {
			p1 |= 1u << i;
			np1++;
			group[i] = 0;
		} else {
			p2 |= 1u << i;
			group[i] = 1;
		}
	}
	assert_int_equal(harness_partition(kvt_harness(t), group), 0);
	ckp1 = kvt_clerk_to(t, p1);
	ckp2a = kvt_clerk_to(t, p2);
	ckp2b = kvt_clerk_to(t, p2);
	assert_true(ckp1 && ckp2a && ckp2b);

	/* Progress in the majority. */
	ver1 = kvt_must_put_at_least_once(ckp1, "1", "14", ver0);
	kvt_check_get(ckp1, "1", "14", ver1);

	/* No progress in the minority. */
	memset(&put, 0, sizeof(put));
	memset(&get, 0, sizeof(get));
	put.ck = ckp2a;
	put.ver = ver1;
	get.ck = ckp2b;
	atomic_init(&put.done, false);
	atomic_init(&get.done, false);
	assert_int_equal(pthread_create(&put.tid, NULL, minority_put, &put), 0);
	assert_int_equal(pthread_create(&get.tid, NULL, minority_get, &get), 0);
	harness_sleep_ms(1000);
	/* No assertion may fail while the minority threads run (cmocka's
	 * longjmp would leave them behind): note the first problem, heal,
	 * join, then fail. */
	if (atomic_load(&put.done) || atomic_load(&get.done))
		snprintf(err, sizeof(err),
		    "%s in minority completed within 1 s",
		    atomic_load(&put.done) ? "Put" : "Get");
	if (!err[0])
		majority_phase(ckp1, ver1, &ver2, err, sizeof(err));
	if (!err[0] && (atomic_load(&put.done) || atomic_load(&get.done)))
		snprintf(err, sizeof(err),
		    "%s in minority completed before "
		    "healing",
		    atomic_load(&put.done) ? "Put" : "Get");

	/* Completion after heal. */
	if (harness_heal(kvt_harness(t)) != 0 && !err[0])
		snprintf(err, sizeof(err), "heal failed");
	kvt_clerk_connect_all(ckp2a);
	kvt_clerk_connect_all(ckp2b);
	harness_sleep_ms(1000);
	t_heal = harness_now_ms();
	while (!(atomic_load(&put.done) && atomic_load(&get.done)) &&
	    harness_now_ms() < t_heal + HEAL_COMPLETE_MS)
		harness_sleep_ms(20);
	/* Both finish within KVT_OP_CAP_MS whatever happens. */
	pthread_join(put.tid, NULL);
	pthread_join(get.tid, NULL);
	print_message("[one_partition_4b] after heal + 1 s: minority Put "
	              "completed in %" PRId64 " ms, Get in %" PRId64 " ms\n",
	    (int64_t)(put.done_ms - t_heal), (int64_t)(get.done_ms - t_heal));
	if (err[0])
		fail_msg("%s", err);
	if (put.rv != KV_OK)
		fail_msg("minority Put: %s", put.err);
	if (get.rv != KV_OK)
		fail_msg("minority Get: %s", clerk_strerror(get.rv));
	if (put.done_ms > t_heal + HEAL_COMPLETE_MS ||
	    get.done_ms > t_heal + HEAL_COMPLETE_MS)
		fail_msg("minority ops did not complete %d ms after heal",
		    HEAL_COMPLETE_MS);
	/* "16" was at ver2: the minority's put lands right after it. */
	assert_int_equal(put.ver, ver2 + 1);
	kvt_check_get(ck, "1", "15", put.ver);
	kvt_check_linearizable(t, "end");
	kvt_clerk_free(ckp1);
	kvt_clerk_free(ckp2a);
	kvt_clerk_free(ckp2b);
	kvt_clerk_free(ck);
	kvt_finish(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_basic_4b, kvt_teardown),
		cmocka_unit_test_teardown(test_speed_4b, kvt_teardown),
		cmocka_unit_test_teardown(test_concurrent_4b, kvt_teardown),
		cmocka_unit_test_teardown(test_unreliable_4b, kvt_teardown),
		cmocka_unit_test_teardown(test_one_partition_4b, kvt_teardown),
		cmocka_unit_test_teardown(test_many_partitions_one_client_4b,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_many_partitions_many_clients_4b,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_persist_one_client_4b,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_persist_concurrent_4b,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_persist_concurrent_unreliable_4b,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_persist_partition_4b,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_persist_partition_unreliable_4b,
		    kvt_teardown),
		cmocka_unit_test_teardown(
		    test_persist_partition_unreliable_linearizable_4b,
		    kvt_teardown),
	};

	kvt_filter_tests();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
