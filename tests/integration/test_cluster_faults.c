/*
 * test_cluster_faults.c - crashes and partitions of real member processes
 * under load: nothing acknowledged is lost, nothing applied twice, the
 * logs end identical, and a connected majority keeps committing.
 *
 * The application is the counter of counter_member.c, which has no
 * duplicate detection.  That makes the accounting exact:
 *
 *   - every acknowledged Inc returned the counter value it produced, so
 *     no two acknowledgements may carry the same value (an Inc applied
 *     twice, or a reply handed to the wrong submitter, would show);
 *   - final counter >= number of acknowledged Incs (none lost: they are
 *     all <= the final value and distinct);
 *   - final counter <= acknowledged + attempts whose outcome the clerk
 *     could not know (harness_submit_info.maybe: timed out, or the member
 *     died): those, and only those, may have applied unacknowledged;
 *   - after convergence every member has the same counter, and, read back
 *     from the data directories once the members are stopped, the same
 *     log, whose number of Inc entries is the counter (no snapshots here,
 *     so the log starts at index 1).
 *
 * Crash scenarios (3 members, 8 client threads submitting Incs):
 * SIGKILL of the leader, of a follower, of all members; then restart on
 * the same data directories.  Also SIGSTOP of the leader, then SIGCONT;
 * and a lossy, slow network (10 % of peer messages dropped, 5 ms delay).
 * RAFTKV_LONG=1 repeats the kill/restart cycle 8 times.
 *
 * Partition scenarios: a symmetric minority/majority split (5 members,
 * the leader in the minority: the majority commits, the minority's Dec
 * submits never succeed -- the counter aborts if a Dec is ever applied --
 * and its linearizable reads fail); an asymmetric fault (3 members: the
 * leader can send but not receive, then receive but not send); the bridge
 * (5 members: {A,A',B} and {B,C,C'} share only B), with the leader then
 * killed while the bridge stands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <cmocka.h>

#include "raft/member/node.h"
#include "tests/integration/harness.h"

#define NSEC 10 /* a clerk's deadline per op, seconds */
#define NCLIENTS 8
#define ALL 0u

/* ------------------------------------------------------------------ */
/* fixture                                                              */
/* ------------------------------------------------------------------ */

/* Stop the members cleanly (SIGTERM): one that does not exit with
 * status 0 (a failed shutdown, a sanitizer report) fails the test. */
static int teardown(void **state)
{
	struct harness *h = *state;
	int bad = 0;

	if (h != NULL) {
		harness_kill_all(h, SIGTERM);
		bad = harness_unexpected_exits(h);
	}
	harness_free(h);
	*state = NULL;
	return bad ? -1 : 0;
}

static struct harness *start_cluster(void **state, const char *name, int n)
{
	struct harness_options o;
	struct harness *h;

	harness_options_defaults(&o);
	o.name = name;
	o.tick_ms = 10;
	/* A clerk's attempt at a member that just died ends after this;
	 * short, so that the load finds the new leader quickly. */
	o.attempt_timeout_ms = 500;
	h = harness_new(n, &o);
	assert_non_null(h);
	*state = h;
	return h;
}

static uint32_t mask_of(const int *members, int n)
{
	uint32_t m = 0;

	for (int k = 0; k < n; k++)
		m |= 1u << members[k];
	return m;
}

static int leader(struct harness *h)
{
	int l = harness_leader(h, 10000);

	if (l < 0)
		fail_msg("no single leader within 10 s (%d)", l);
	return l;
}

/* ------------------------------------------------------------------ */
/* load: client threads submitting Incs, and the test's own Incs        */
/* ------------------------------------------------------------------ */

struct client_rec {
	uint64_t *values; /* acknowledged Incs' replies */
	uint64_t *at_ms; /* when each was acknowledged */
	size_t n, cap;
	uint64_t ops, failed, maybe;
	bool oom;
};

/* rec[MAIN] records the Incs the test makes itself (inc()). */
#define MAIN NCLIENTS
struct load {
	struct harness *h;
	atomic_bool stop;
	pthread_mutex_t mu; /* the records */
	pthread_t tid[NCLIENTS];
	struct client_rec rec[NCLIENTS + 1];
	int started;
};

struct load_arg {
	struct load *ld;
	int k;
};

static struct load_arg load_args[NCLIENTS];

static void rec_add(struct client_rec *r, uint64_t v, uint64_t t)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 1024;
		uint64_t *nv = realloc(r->values, cap * sizeof(*nv));
		uint64_t *nt;

		if (nv == NULL) {
			r->oom = true;
			return;
		}
		r->values = nv;
		nt = realloc(r->at_ms, cap * sizeof(*nt));
		if (nt == NULL) {
			r->oom = true;
			return;
		}
		r->at_ms = nt;
		r->cap = cap;
	}
	r->values[r->n] = v;
	r->at_ms[r->n] = t;
	r->n++;
}

/* One Inc through members of @mask, recorded in slot @k.  0 or error. */
static int load_inc(struct load *ld, int k, uint32_t mask, uint64_t *v)
{
	struct client_rec *r = &ld->rec[k];
	struct harness_submit_info info;
	int rv = harness_counter_inc(ld->h, mask, NSEC * 1000, v, &info);

	pthread_mutex_lock(&ld->mu);
	r->ops++;
	r->maybe += info.maybe;
	if (rv == 0)
		rec_add(r, *v, harness_now_ms());
	else
		r->failed++;
	pthread_mutex_unlock(&ld->mu);
	return rv;
}

static void *load_main(void *arg)
{
	struct load_arg *a = arg;
	struct load *ld = a->ld;
	uint64_t v;

	while (!atomic_load(&ld->stop))
		(void)load_inc(ld, a->k, ALL, &v);
	return NULL;
}

static void load_init(struct harness *h, struct load *ld)
{
	memset(ld, 0, sizeof(*ld));
	ld->h = h;
	atomic_init(&ld->stop, false);
	pthread_mutex_init(&ld->mu, NULL);
}

/* The test's own Inc: it must commit.  Returns its value. */
static uint64_t inc(struct load *ld, uint32_t mask)
{
	uint64_t v = 0;

	if (load_inc(ld, MAIN, mask, &v) != 0)
		fail_msg("an Inc did not commit within %d s", NSEC);
	return v;
}

static void load_start(struct load *ld)
{
	atomic_store(&ld->stop, false);
	for (int k = 0; k < NCLIENTS; k++) {
		load_args[k].ld = ld;
		load_args[k].k = k;
		assert_int_equal(pthread_create(&ld->tid[k], NULL, load_main,
		                     &load_args[k]),
		    0);
		ld->started++;
	}
}

static void load_stop(struct load *ld)
{
	atomic_store(&ld->stop, true);
	for (int k = 0; k < ld->started; k++)
		pthread_join(ld->tid[k], NULL);
	ld->started = 0;
}

static void load_free(struct load *ld)
{
	for (int k = 0; k <= NCLIENTS; k++) {
		free(ld->rec[k].values);
		free(ld->rec[k].at_ms);
	}
	memset(ld->rec, 0, sizeof(ld->rec));
	pthread_mutex_destroy(&ld->mu);
}

/* Acknowledgements at or after @from (and before @to, 0: no bound). */
static uint64_t acks_between(struct load *ld, uint64_t from, uint64_t to)
{
	uint64_t c = 0;

	pthread_mutex_lock(&ld->mu);
	for (int k = 0; k <= NCLIENTS; k++)
		for (size_t x = 0; x < ld->rec[k].n; x++)
			if (ld->rec[k].at_ms[x] >= from &&
			    (to == 0 || ld->rec[k].at_ms[x] < to))
				c++;
	pthread_mutex_unlock(&ld->mu);
	return c;
}

/* Wait (the load running) until some Inc is acknowledged after @from. */
static bool progress_after(struct load *ld, uint64_t from, int timeout_ms)
{
	uint64_t deadline = harness_now_ms() + (uint64_t)timeout_ms;

	while (harness_now_ms() < deadline) {
		if (acks_between(ld, from, 0) > 0)
			return true;
		harness_sleep_ms(20);
	}
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Count the Inc entries ('I', one byte) in member 0's durable log. */
static uint64_t incs_in_log(struct harness *h)
{
	struct harness_log log;
	uint64_t c = 0;

	assert_int_equal(harness_read_log(h, 0, &log), 0);
	assert_int_equal(log.snap_index, 0);
	assert_true(log.n == 0 || log.first_index == 1);
	for (uint64_t k = 0; k < log.n; k++)
		if (log.entries[k].type == RAFT_ENTRY_NORMAL &&
		    log.entries[k].len == 1 && log.entries[k].data[0] == 'I')
			c++;
	harness_log_free(&log);
	return c;
}

/*
 * The end of every scenario (the load stopped): one more Inc, then the
 * accounting of the file comment over every Inc of the load and of the
 * test itself.
 */
static void verify(struct load *ld)
{
	struct harness *h = ld->h;
	uint64_t final, acked = 0, maybe = 0, *all, n = 0;
	int nm = harness_n(h);

	final = inc(ld, ALL);
	for (int k = 0; k <= NCLIENTS; k++) {
		assert_false(ld->rec[k].oom);
		acked += ld->rec[k].n;
		maybe += ld->rec[k].maybe;
	}
	all = calloc(acked, sizeof(*all));
	assert_non_null(all);
	for (int k = 0; k <= NCLIENTS; k++)
		for (size_t x = 0; x < ld->rec[k].n; x++)
			all[n++] = ld->rec[k].values[x];
	qsort(all, n, sizeof(*all), cmp_u64);
	for (uint64_t x = 1; x < n; x++) {
		if (all[x] == all[x - 1]) {
			uint64_t dup = all[x];

			free(all);
			fail_msg("two acknowledged Incs returned the same "
			         "counter %llu",
			    (unsigned long long)dup);
		}
	}
	free(all);
	print_message("      %llu Incs acknowledged, %llu attempts of unknown "
	              "outcome, final counter %llu\n",
	    (unsigned long long)acked, (unsigned long long)maybe,
	    (unsigned long long) final);
	/* Distinct values, the largest being final itself: none lost. */
	assert_true(final >= acked);
	assert_true(final <= acked + maybe);
	if (harness_counter_wait(h, final, nm, 31000) < nm)
		fail_msg("members do not agree on counter %llu",
		    (unsigned long long) final);
	assert_int_equal(harness_wait_converged(h, 10000), 0);
	harness_kill_all(h, SIGTERM);
	assert_int_equal(harness_check_logs(h), 0);
	assert_int_equal(incs_in_log(h), final);
	assert_int_equal(harness_unexpected_exits(h), 0);
}

/* ------------------------------------------------------------------ */
/* crash tests                                                          */
/* ------------------------------------------------------------------ */

enum victim { LEADER, FOLLOWER, EVERYONE, PAUSED_LEADER };

#define DOWN_MS 2000 /* how long victims stay dead */

/* Fail the test, stopping the load first (threads never assert). */
#define LOAD_FAIL(ld, ...) \
	do { \
		load_stop(ld); \
		fail_msg(__VA_ARGS__); \
	} while (0)

static void kill_under_load(void **state, const char *name, enum victim vic)
{
	struct harness *h = start_cluster(state, name, 3);
	int cycles = harness_long() ? 8 : 1;
	static struct load ld;

	load_init(h, &ld);
	inc(&ld, ALL);
	load_start(&ld);
	for (int c = 0; c < cycles; c++) {
		uint64_t t_kill, t_restart, during;
		int l, v = -1, rv;

		harness_sleep_ms(500);
		l = harness_leader(h, 10000);
		if (l < 0)
			LOAD_FAIL(&ld, "cycle %d: no leader", c);
		if (vic == LEADER || vic == PAUSED_LEADER)
			v = l;
		else if (vic == FOLLOWER)
			v = (l + 1) % 3;
		t_kill = harness_now_ms();
		if (vic == PAUSED_LEADER)
			harness_kill(h, v, SIGSTOP);
		else if (v >= 0)
			harness_kill(h, v, SIGKILL);
		else
			harness_kill_all(h, SIGKILL);
		harness_sleep_ms(DOWN_MS);
		t_restart = harness_now_ms();
		during = acks_between(&ld, t_kill, t_restart);
		if (vic == PAUSED_LEADER)
			rv = harness_kill(h, v, SIGCONT);
		else
			rv = v >= 0 ? harness_restart(h, v)
			            : harness_restart_all(h);
		if (rv != 0)
			LOAD_FAIL(&ld, "cycle %d: restart failed: %d", c, rv);
		/* With one member down, the other two go on committing. */
		if (v >= 0 && during == 0)
			LOAD_FAIL(&ld,
			    "cycle %d: nothing committed in the %d "
			    "ms member %d was down",
			    c, DOWN_MS, v);
		if (v < 0 && !progress_after(&ld, t_restart, NSEC * 1000))
			LOAD_FAIL(&ld,
			    "cycle %d: no commit after restarting "
			    "every member",
			    c);
	}
	harness_sleep_ms(500);
	load_stop(&ld);
	verify(&ld);
	load_free(&ld);
	harness_mark_passed(h);
}

static void test_kill_leader_under_load(void **state)
{
	kill_under_load(state, "kill_leader", LEADER);
}

static void test_kill_follower_under_load(void **state)
{
	kill_under_load(state, "kill_follower", FOLLOWER);
}

static void test_kill_all_under_load(void **state)
{
	kill_under_load(state, "kill_all", EVERYONE);
}

/* SIGSTOP of the leader for DOWN_MS, then SIGCONT: a deposed leader that
 * wakes up with its old term, pending entries and waiting submitters. */
static void test_pause_leader_under_load(void **state)
{
	kill_under_load(state, "pause_leader", PAUSED_LEADER);
}

/* An unreliable network (the labs' unreliable mode, on the peer links):
 * 10 % of peer messages dropped, the rest delayed, under load. */
static void test_unreliable_under_load(void **state)
{
	struct harness *h = start_cluster(state, "unreliable", 3);
	static struct load ld;
	uint64_t t0;

	load_init(h, &ld);
	inc(&ld, ALL);
	assert_int_equal(harness_set_drop(h, 10), 0);
	assert_int_equal(harness_set_delay(h, 5), 0);
	t0 = harness_now_ms();
	load_start(&ld);
	harness_sleep_ms(harness_long() ? 20000 : 2000);
	if (acks_between(&ld, t0, 0) == 0)
		LOAD_FAIL(&ld, "nothing committed on the lossy network");
	load_stop(&ld);
	assert_int_equal(harness_set_drop(h, 0), 0);
	assert_int_equal(harness_set_delay(h, 0), 0);
	verify(&ld);
	load_free(&ld);
	harness_mark_passed(h);
}

/* ------------------------------------------------------------------ */
/* partition tests                                                      */
/* ------------------------------------------------------------------ */

/* @count Incs through members of @mask; each must commit, values rise. */
static void incs_commit(struct load *ld, uint32_t mask, int count)
{
	uint64_t prev = 0;

	for (int k = 0; k < count; k++) {
		uint64_t v = inc(ld, mask);

		assert_true(v > prev);
		prev = v;
	}
}

/* A linearizable read on member @i must not succeed. */
static void read_must_fail(struct harness *h, int i)
{
	struct client_reply r;
	int rv = harness_query(h, i, true, NULL, 0, 1500, &r);

	free(r.data);
	if (rv == 0)
		fail_msg("member %d served a linearizable read while cut "
		         "off from the majority",
		    i);
}

struct dec_arg {
	struct harness *h;
	int member;
	int rv;
};

static void *dec_main(void *arg)
{
	struct dec_arg *d = arg;

	d->rv = harness_submit(d->h, d->member, "D", 1, 2000, NULL);
	return NULL;
}

static uint32_t all_but(const struct harness *h, int i)
{
	return ((1u << harness_n(h)) - 1) & ~(1u << i);
}

/*
 * 5 members; the leader and one other are cut off (the labs'
 * MakePartition: the leader in the minority).  The majority commits; in
 * the minority a Dec never succeeds (and never applies: the counter
 * aborts), linearizable reads fail and the counter stays where it was.
 */
static void test_partition_minority(void **state)
{
	enum { N = 5 };
	struct harness *h = start_cluster(state, "partition_minority", N);
	static struct load ld;
	struct dec_arg dec[2];
	pthread_t tid[2];
	int group[N], minority[2], majority[3], l, nmaj = 0;
	uint64_t before, seen;

	load_init(h, &ld);
	before = inc(&ld, ALL);
	l = leader(h);
	minority[0] = l;
	minority[1] = (l + 1) % N;
	for (int i = 0; i < N; i++) {
		group[i] = i == minority[0] || i == minority[1];
		if (!group[i])
			majority[nmaj++] = i;
	}
	assert_int_equal(harness_counter_wait(h, before, N, 31000), N);
	assert_int_equal(harness_partition(h, group), 0);

	for (int k = 0; k < 2; k++) {
		dec[k] = (struct dec_arg){ h, minority[k], 0 };
		assert_int_equal(pthread_create(&tid[k], NULL, dec_main,
		                     &dec[k]),
		    0);
	}
	incs_commit(&ld, mask_of(majority, 3), harness_long() ? 200 : 20);
	for (int k = 0; k < 2; k++)
		pthread_join(tid[k], NULL);
	for (int k = 0; k < 2; k++)
		if (dec[k].rv == 0)
			fail_msg("a Dec submitted to minority member %d "
			         "succeeded",
			    dec[k].member);
	for (int k = 0; k < 2; k++) {
		read_must_fail(h, minority[k]);
		assert_int_equal(harness_counter_get(h, minority[k], &seen), 0);
		assert_int_equal(seen, before);
	}

	assert_int_equal(harness_heal(h), 0);
	verify(&ld);
	load_free(&ld);
	harness_mark_passed(h);
}

/* 3 members: the leader hears nobody; later a leader nobody hears. */
static void test_partition_asymmetric(void **state)
{
	enum { N = 3 };
	struct harness *h = start_cluster(state, "partition_asymmetric", N);
	static struct load ld;
	int l;

	load_init(h, &ld);
	inc(&ld, ALL);
	/* Deaf leader: its heartbeats still arrive, its followers' answers
	 * do not.  Check-quorum must depose it; pre-vote must keep its
	 * elections from disturbing the two others. */
	l = leader(h);
	assert_int_equal(harness_deafen(h, l, true), 0);
	incs_commit(&ld, all_but(h, l), 20);
	read_must_fail(h, l);
	assert_int_equal(harness_deafen(h, l, false), 0);
	incs_commit(&ld, ALL, 5);

	/* Mute leader: it hears everyone, nobody hears it. */
	l = leader(h);
	assert_int_equal(harness_mute(h, l, true), 0);
	incs_commit(&ld, all_but(h, l), 20);
	read_must_fail(h, l);
	assert_int_equal(harness_mute(h, l, false), 0);
	verify(&ld);
	load_free(&ld);
	harness_mark_passed(h);
}

/*
 * The bridge: sides {L, A} and {C, D} joined only through B, the leader
 * L on one side.  L reaches L, A, B: a majority, so it keeps leading
 * (C and D cannot win: pre-vote, and B's loyalty to a live leader).  Then
 * L is killed while the bridge stands: B (reaching A, C, D) or C (C, D,
 * B) must take over and commit.
 */
static void test_partition_bridge(void **state)
{
	enum { N = 5 };
	struct harness *h = start_cluster(state, "partition_bridge", N);
	static struct load ld;
	int group[N], l, l2;
	uint64_t t_end;

	load_init(h, &ld);
	inc(&ld, ALL);
	l = leader(h);
	group[l] = 0;
	group[(l + 1) % N] = HARNESS_BRIDGE;
	group[(l + 2) % N] = 0;
	group[(l + 3) % N] = 1;
	group[(l + 4) % N] = 1;
	assert_int_equal(harness_partition(h, group), 0);
	t_end = harness_now_ms() + (harness_long() ? 20000 : 2000);
	while (harness_now_ms() < t_end)
		incs_commit(&ld, ALL, 1);

	harness_kill(h, l, SIGKILL);
	incs_commit(&ld, ALL, 20);
	l2 = leader(h);
	assert_true(l2 != l);
	assert_int_equal(harness_restart(h, l), 0);
	incs_commit(&ld, ALL, 5);
	assert_int_equal(harness_heal(h), 0);
	verify(&ld);
	load_free(&ld);
	harness_mark_passed(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_kill_leader_under_load,
		    teardown),
		cmocka_unit_test_teardown(test_kill_follower_under_load,
		    teardown),
		cmocka_unit_test_teardown(test_kill_all_under_load, teardown),
		cmocka_unit_test_teardown(test_pause_leader_under_load,
		    teardown),
		cmocka_unit_test_teardown(test_unreliable_under_load, teardown),
		cmocka_unit_test_teardown(test_partition_minority, teardown),
		cmocka_unit_test_teardown(test_partition_asymmetric, teardown),
		cmocka_unit_test_teardown(test_partition_bridge, teardown),
	};

	if (getenv("RAFTKV_TEST"))
		cmocka_set_test_filter(getenv("RAFTKV_TEST"));
	return cmocka_run_group_tests_name("cluster_faults", tests, NULL, NULL);
}
