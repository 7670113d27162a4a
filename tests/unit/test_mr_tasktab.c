/*
 * test_mr_tasktab.c - the coordinator's task table (mr/tasktab.c), driven
 * through leases, failures, duplicates and stragglers with a fake clock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mr/tasktab.h"

/* --- helpers -------------------------------------------------------------- */

struct got {
	enum tt_phase p;
	uint32_t task, attempt;
};

static enum tt_result get(struct tasktab *tt, uint64_t now, struct got *g)
{
	return tasktab_assign(tt, now, &g->p, &g->task, &g->attempt);
}

/* --- tests ---------------------------------------------------------------- */

static void test_mr_tasktab_maps_first_then_reduces_then_done(void **state)
{
	struct tasktab tt;
	struct got g, m[3];
	uint32_t i, idle, run, done;

	(void)state;
	tasktab_init(&tt, 3, 2, 10000);
	for (i = 0; i < 3; i++) {
		assert_int_equal(get(&tt, 0, &m[i]), TT_ASSIGNED);
		assert_int_equal(m[i].p, TT_MAP);
		assert_int_equal(m[i].task, i);
		assert_int_equal(m[i].attempt, 0);
	}
	/* reduces wait for every map */
	assert_int_equal(get(&tt, 1, &g), TT_WAIT);
	tasktab_count(&tt, TT_MAP, &idle, &run, &done);
	assert_int_equal(run, 3);
	assert_int_equal(tasktab_complete(&tt, 5, TT_MAP, 0, 0), 1);
	assert_int_equal(tasktab_complete(&tt, 5, TT_MAP, 1, 0), 1);
	assert_int_equal(get(&tt, 6, &g), TT_WAIT);
	assert_int_equal(tasktab_complete(&tt, 7, TT_MAP, 2, 0), 1);
	assert_int_equal(get(&tt, 8, &g), TT_ASSIGNED);
	assert_int_equal(g.p, TT_REDUCE);
	assert_int_equal(tasktab_complete(&tt, 9, TT_REDUCE, g.task, 0), 1);
	assert_int_equal(get(&tt, 8, &g), TT_ASSIGNED);
	assert_int_equal(g.p, TT_REDUCE);
	assert_false(tasktab_all_done(&tt));
	assert_int_equal(tasktab_complete(&tt, 9, TT_REDUCE, g.task, 0), 1);
	assert_true(tasktab_all_done(&tt));
	assert_int_equal(get(&tt, 10, &g), TT_ALLDONE);
	assert_int_equal(tt.st.attempts, 5);
	tasktab_close(&tt);
}

static void test_mr_tasktab_lease_expiry_reassigns(void **state)
{
	struct tasktab tt;
	struct got a, b;

	(void)state;
	tasktab_init(&tt, 1, 1, 10000);
	assert_int_equal(get(&tt, 0, &a), TT_ASSIGNED);
	/* within the lease: nothing to hand out */
	assert_int_equal(get(&tt, 10000, &b), TT_WAIT);
	/* one ms past it: the task goes to another worker, attempt 1 */
	assert_int_equal(get(&tt, 10001, &b), TT_ASSIGNED);
	assert_int_equal(b.task, 0);
	assert_int_equal(b.attempt, 1);
	assert_int_equal(tt.st.reassigned, 1);
	/* the old attempt is told to stop */
	assert_int_equal(tasktab_heartbeat(&tt, 10002, TT_MAP, 0, 0), -ESTALE);
	assert_int_equal(tasktab_heartbeat(&tt, 10002, TT_MAP, 0, 1), 0);
	/* but its late completion still counts if it comes first */
	assert_int_equal(tasktab_complete(&tt, 10003, TT_MAP, 0, 0), 1);
	assert_int_equal(tasktab_winner(&tt, TT_MAP, 0), 0);
	assert_int_equal(tasktab_complete(&tt, 10004, TT_MAP, 0, 1), 0);
	assert_int_equal(tt.st.duplicates, 1);
	assert_int_equal(tasktab_heartbeat(&tt, 10005, TT_MAP, 0, 1), -ESTALE);
	tasktab_close(&tt);
}

static void test_mr_tasktab_heartbeats_keep_long_tasks(void **state)
{
	struct tasktab tt;
	struct got a, b;
	uint64_t t;

	(void)state;
	tasktab_init(&tt, 1, 1, 10000);
	assert_int_equal(get(&tt, 0, &a), TT_ASSIGNED);
	for (t = 2500; t <= 60000; t += 2500) {
		assert_int_equal(tasktab_heartbeat(&tt, t, TT_MAP, 0, 0), 0);
		assert_int_equal(get(&tt, t + 1, &b), TT_WAIT);
	}
	assert_int_equal(tt.st.reassigned, 0);
	assert_int_equal(tt.st.backups, 0); /* a lone task is no straggler */
	tasktab_close(&tt);
}

static void test_mr_tasktab_fail_returns_task_and_limits(void **state)
{
	struct tasktab tt;
	struct got g;
	uint32_t i;

	(void)state;
	tasktab_init(&tt, 2, 1, 10000);
	tt.max_failures = 3;
	assert_int_equal(get(&tt, 0, &g), TT_ASSIGNED);
	assert_int_equal(tasktab_fail(&tt, TT_MAP, g.task, g.attempt), 0);
	for (i = 1; i < 3; i++) {
		/* the failed task is idle again and handed out first */
		assert_int_equal(get(&tt, i, &g), TT_ASSIGNED);
		assert_int_equal(g.task, 0);
		assert_int_equal(g.attempt, i);
		assert_int_equal(tasktab_fail(&tt, TT_MAP, 0, g.attempt), 0);
	}
	assert_int_equal(get(&tt, 10, &g), TT_FAILED);
	tasktab_close(&tt);
}

static void test_mr_tasktab_refuses_unknown_tasks(void **state)
{
	struct tasktab tt;
	struct got g;

	(void)state;
	tasktab_init(&tt, 2, 2, 10000);
	assert_int_equal(get(&tt, 0, &g), TT_ASSIGNED);
	assert_int_equal(tasktab_complete(&tt, 1, TT_MAP, 2, 0), -EINVAL);
	assert_int_equal(tasktab_complete(&tt, 1, TT_MAP, 0, 1), -EINVAL);
	assert_int_equal(tasktab_complete(&tt, 1, TT_MAP, 1, 0), -EINVAL);
	assert_int_equal(tasktab_heartbeat(&tt, 1, TT_REDUCE, 0, 0), -EINVAL);
	assert_int_equal(tasktab_fail(&tt, (enum tt_phase)7, 0, 0), -EINVAL);
	tasktab_close(&tt);
}

static void test_mr_tasktab_backup_only_for_far_stragglers(void **state)
{
	struct tasktab tt;
	struct got g, slow;
	uint32_t i;
	uint64_t t;

	(void)state;
	tasktab_init(&tt, 10, 1, 10000);
	/* ten maps start; nine finish after 1 s each */
	for (i = 0; i < 10; i++)
		assert_int_equal(get(&tt, 0, &g), TT_ASSIGNED);
	for (i = 0; i < 9; i++)
		assert_int_equal(tasktab_complete(&tt, 1000, TT_MAP, i, 0), 1);
	/* the last one keeps heartbeating: no backup before the 10 s floor */
	for (t = 1000; t <= 10000; t += 1000) {
		assert_int_equal(tasktab_heartbeat(&tt, t, TT_MAP, 9, 0), 0);
		assert_int_equal(get(&tt, t, &g), TT_WAIT);
	}
	assert_int_equal(tasktab_heartbeat(&tt, 10001, TT_MAP, 9, 0), 0);
	assert_int_equal(get(&tt, 10001, &slow), TT_ASSIGNED);
	assert_int_equal(slow.task, 9);
	assert_int_equal(slow.attempt, 1);
	assert_int_equal(tt.st.backups, 1);
	/* one backup per phase (cap n/10 = 1) */
	assert_int_equal(get(&tt, 10002, &g), TT_WAIT);
	/* the backup wins; the original's completion is a duplicate */
	assert_int_equal(tasktab_complete(&tt, 12000, TT_MAP, 9, 1), 1);
	assert_int_equal(tasktab_complete(&tt, 13000, TT_MAP, 9, 0), 0);
	assert_int_equal(tasktab_winner(&tt, TT_MAP, 9), 1);
	tasktab_close(&tt);
}

static void test_mr_tasktab_no_backup_when_tasks_are_alike(void **state)
{
	struct tasktab tt;
	struct got g, last;
	uint32_t i;
	uint64_t t;

	(void)state;
	/*
	 * jobcount's shape: maps of 2-5 s, lease 10 s.  Nine maps took 2 s;
	 * the tenth runs 5 s (2.5 x the median) while idle workers keep
	 * asking: below the 10 s floor, so it is never run twice.
	 */
	tasktab_init(&tt, 10, 1, 10000);
	for (i = 0; i < 9; i++) {
		assert_int_equal(get(&tt, i * 2000, &g), TT_ASSIGNED);
		assert_int_equal(tasktab_complete(&tt, i * 2000 + 2000, TT_MAP,
		                     g.task, g.attempt),
		    1);
	}
	assert_int_equal(get(&tt, 18000, &last), TT_ASSIGNED);
	for (t = 18000; t < 23000; t += 100) {
		if (t % 2500 == 0)
			assert_int_equal(tasktab_heartbeat(&tt, t, TT_MAP,
			                     last.task, last.attempt),
			    0);
		assert_int_equal(get(&tt, t, &g), TT_WAIT);
	}
	assert_int_equal(tasktab_complete(&tt, 23000, TT_MAP, last.task,
	                     last.attempt),
	    1);
	assert_int_equal(tt.st.attempts, 10);
	assert_int_equal(tt.st.backups, 0);
	tasktab_close(&tt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_mr_tasktab_maps_first_then_reduces_then_done),
		cmocka_unit_test(test_mr_tasktab_lease_expiry_reassigns),
		cmocka_unit_test(test_mr_tasktab_heartbeats_keep_long_tasks),
		cmocka_unit_test(test_mr_tasktab_fail_returns_task_and_limits),
		cmocka_unit_test(test_mr_tasktab_refuses_unknown_tasks),
		cmocka_unit_test(
		    test_mr_tasktab_backup_only_for_far_stragglers),
		cmocka_unit_test(
		    test_mr_tasktab_no_backup_when_tasks_are_alike),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
