/*
 * test_nemesis.c - a randomized nemesis against concurrent clients, every
 * history checked for linearizability (Jepsen's shape, on real members).
 *
 * A schedule drawn from a printed seed (RAFTKV_SEED=<n> replays the same
 * schedule; the clients' interleaving is the machine's) applies, one step
 * every 0.3-2.5 s:
 *
 *   partitions of every shape   random two-way split; the leader alone;
 *                               the leader in a minority; a bridge (two
 *                               sides that only one member joins); a
 *                               ring (each member hears only its two
 *                               neighbours); one-way faults (the leader
 *                               muted: nobody hears it; or deafened: it
 *                               hears nobody); heal
 *   message loss, delay         0, 5, 20 or 50 % of peer messages dropped,
 *                               and 0, 2 or 20 ms of delay
 *   crashes                     kill -9 of one member (often the leader)
 *                               or of a majority / everyone, restarted
 *                               at a later step on the same data
 *   pauses                      SIGSTOP of one member (often the leader),
 *                               SIGCONT at the next step - a leader that
 *                               wakes up still believing it leads
 *
 * while NCLIENTS clients run random Gets, versioned Puts and Deletes on a
 * few keys.  The run is cut into epochs that use disjoint keys, so each
 * epoch's history is independent (linearizability is per key) and is
 * checked, while the next epoch runs, once its last operation returned.  At the end the
 * faults are lifted, every member restarted, the cluster must converge
 * (same last, commit and applied index everywhere) and every member's
 * local state must agree with a linearizable read of every key.
 *
 * Default: a smoke run of 5 members for 20 s.  RAFTKV_LONG=1: 3, 5 or 7
 * members (by the seed) for RAFTKV_NEMESIS_SECONDS (default 300).
 * The member option --max-raft-state is drawn from the seed too (none,
 * 2000 bytes: constant snapshots and InstallSnapshot, or 64 KiB).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include "raft/client/cproto.h"
#include "tests/integration/kvtest.h"
#include "tests/lib/history.h"

#define NCLIENTS 8
#define NKEYS 6 /* per epoch: contention on purpose */
#define MAX_EPOCHS 1024
#define CONVERGE_MS 30000

/* ------------------------------------------------------------------ */
/* epochs and clients                                                   */
/* ------------------------------------------------------------------ */

struct nemesis {
	struct kvt *t;
	atomic_int epoch; /* current epoch */
	struct linz_history *hist[MAX_EPOCHS];
	atomic_int client_epoch[NCLIENTS]; /* epoch of the op in flight */
	atomic_uint_fast64_t ops;
};

static void epoch_key(char *buf, size_t len, int epoch, int k)
{
	snprintf(buf, len, "e%d/k%d", epoch, k);
}

static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* One random operation on the epoch's keys. */
static int one_op(struct kvt_client *c, uint64_t *rng, uint64_t *lastver,
    int epoch, unsigned n)
{
	int k = (int)(mix(rng) % NKEYS), r = (int)(mix(rng) % 100), rv;
	char key[32], val[48];
	uint64_t ver;

	epoch_key(key, sizeof(key), epoch, k);
	if (r < 45) {
		rv = kvt_get(c->ck, key, NULL, &ver);
		if (rv == KV_OK || rv == KV_ENOKEY)
			lastver[k] = ver;
		return rv == KV_OK || rv == KV_ENOKEY ? 0 : rv;
	}
	if (r < 92) {
		/* Mostly the version last seen; sometimes a wrong one. */
		ver = lastver[k];
		if (mix(rng) % 10 == 0)
			ver += mix(rng) % 3;
		snprintf(val, sizeof(val), "c%d.%u", c->me, n);
		rv = kvt_put(c->ck, key, val, ver);
		if (rv == KV_OK)
			lastver[k] = ver + 1;
		return rv >= 0 ? 0 : rv;
	}
	rv = kvt_del(c->ck, key, lastver[k]);
	if (rv == KV_OK)
		lastver[k] = 0;
	return rv >= 0 ? 0 : rv;
}

static void nemesis_client(struct kvt_client *c)
{
	struct nemesis *nm = c->arg;
	uint64_t rng = kvt_seed(c->t) ^ (0x51ed270b27f1d3c1ull * (c->me + 1));
	uint64_t lastver[NKEYS] = { 0 };
	int cur = -1;

	for (unsigned n = 0; !atomic_load(c->done); n++) {
		int e = atomic_load(&nm->epoch), rv;

		if (e != cur) {
			memset(lastver, 0, sizeof(lastver));
			cur = e;
		}
		/* Announce the epoch before touching its keys: the main
		 * thread checks an epoch once no client is still in it. */
		atomic_store(&nm->client_epoch[c->me], e);
		kvt_clerk_set_history(c->ck, nm->hist[e]);
		rv = one_op(c, &rng, lastver, e, n);
		if (rv != 0) {
			kvt_client_error(c, "client %d: %s", c->me,
			    clerk_strerror(rv));
			break;
		}
		atomic_fetch_add(&nm->ops, 1);
	}
	/* Out of every epoch. */
	atomic_store(&nm->client_epoch[c->me], MAX_EPOCHS);
}

/* Is some client still working in epoch @e? */
static bool epoch_busy(struct nemesis *nm, int e)
{
	for (int i = 0; i < NCLIENTS; i++)
		if (atomic_load(&nm->client_epoch[i]) <= e)
			return true;
	return false;
}

/*
 * Check and free the history of every finished epoch below @upto.  Never
 * waits: an epoch whose last operation is still blocked (say, behind a
 * killed majority) is checked at a later step, once the nemesis has let
 * the cluster recover - waiting here would freeze the schedule in the
 * very state that blocks the operation.
 */
static void close_epochs(struct nemesis *nm, int *lo, int upto)
{
	while (*lo < upto && !epoch_busy(nm, *lo)) {
		char what[32];

		snprintf(what, sizeof(what), "epoch%d", *lo);
		kvt_check_history(nm->t, nm->hist[*lo], what);
		linz_history_free(nm->hist[*lo]);
		nm->hist[*lo] = NULL;
		(*lo)++;
	}
}

/* ------------------------------------------------------------------ */
/* the nemesis                                                          */
/* ------------------------------------------------------------------ */

struct sched {
	struct kvt *t;
	struct harness *h;
	int n;
	uint64_t rng;
	uint64_t t0;
	int paused; /* member stopped with SIGSTOP, -1 */
	int restart_at_step[HARNESS_MAX];
	int step;
	unsigned kills, pauses, partitions;
};

static unsigned rnd(struct sched *s, unsigned n)
{
	return (unsigned)(mix(&s->rng) % n);
}

static void say(struct sched *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct sched *s, const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* stderr, beside the member logs the harness prints on failure */
	fprintf(stderr, "[nemesis +%6.1fs] %s\n",
	    (double)(harness_now_ms() - s->t0) / 1000.0, buf);
}

static void resume(struct sched *s)
{
	if (s->paused >= 0) {
		harness_kill(s->h, s->paused, SIGCONT);
		say(s, "SIGCONT member %d", s->paused);
		s->paused = -1;
	}
}

static int running_count(struct sched *s)
{
	int c = 0;

	for (int i = 0; i < s->n; i++)
		c += harness_running(s->h, i);
	return c;
}

/* The current leader, or a random member when there is none. */
static int leader_or_any(struct sched *s)
{
	int l = harness_leader(s->h, 1500);

	return l >= 0 ? l : (int)rnd(s, (unsigned)s->n);
}

static void restart_due(struct sched *s, bool all)
{
	for (int i = 0; i < s->n; i++) {
		if (harness_running(s->h, i))
			continue;
		if (!all && s->restart_at_step[i] > s->step)
			continue;
		if (harness_restart(s->h, i) != 0)
			fail_msg("member %d did not restart", i);
		say(s, "restart member %d", i);
	}
}

static void act_partition(struct sched *s)
{
	int g[HARNESS_MAX], l, shape = (int)rnd(s, 6);
	const char *name = "";

	s->partitions++;
	switch (shape) {
	case 0:
		for (int i = 0; i < s->n; i++)
			g[i] = (int)rnd(s, 2);
		name = "random split";
		break;
	case 1:
		l = leader_or_any(s);
		for (int i = 0; i < s->n; i++)
			g[i] = i == l;
		name = "leader alone";
		break;
	case 2: {
		int left;

		l = leader_or_any(s);
		/* The leader and n/2 - 1 others: a minority. */
		left = s->n / 2 - 1;
		for (int i = 0; i < s->n; i++) {
			g[i] = 0;
			if (i == l) {
				g[i] = 1;
			} else if (left > 0 && rnd(s, 2)) {
				g[i] = 1;
				left--;
			}
		}
		name = "leader in a minority";
		break;
	}
	case 3: {
		int b = (int)rnd(s, (unsigned)s->n);

		for (int i = 0; i < s->n; i++)
			g[i] = i == b ? 2 : (int)(i % 2);
		assert_int_equal(harness_partition(s->h, g), 0);
		for (int j = 0; j < s->n; j++)
			if (j != b)
				assert_int_equal(harness_link(s->h, b, j, true),
				    0);
		say(s,
		    "bridge: members split by parity, member %d joins "
		    "both",
		    b);
		return;
	}
	case 4:
		for (int i = 0; i < s->n; i++)
			g[i] = i;
		assert_int_equal(harness_partition(s->h, g), 0);
		for (int i = 0; i < s->n; i++)
			assert_int_equal(harness_link(s->h, i, (i + 1) % s->n,
			                     true),
			    0);
		say(s, "ring: each member hears only its neighbours");
		return;
	default:
		l = leader_or_any(s);
		assert_int_equal(harness_heal(s->h), 0);
		if (rnd(s, 2)) {
			for (int j = 0; j < s->n; j++)
				if (j != l)
					assert_int_equal(harness_block(s->h, l,
					                     j, true),
					    0);
			say(s, "one-way: member %d muted (nobody hears it)", l);
		} else {
			for (int j = 0; j < s->n; j++)
				if (j != l)
					assert_int_equal(harness_block(s->h, j,
					                     l, true),
					    0);
			say(s, "one-way: member %d deafened (hears nobody)", l);
		}
		return;
	}
	assert_int_equal(harness_partition(s->h, g), 0);
	{
		char buf[64];
		int o = 0;

		for (int i = 0; i < s->n; i++)
			o += snprintf(buf + o, sizeof(buf) - (size_t)o, "%d",
			    g[i]);
		say(s, "partition (%s): groups %s", name, buf);
	}
}

static void act_kill(struct sched *s)
{
	int v;

	if (rnd(s, 6) == 0) {
		/* A majority, or everyone: no progress until restarts. */
		int k = rnd(s, 2) ? s->n : s->n / 2 + 1;

		for (int c = 0; c < k; c++) {
			v = (int)rnd(s, (unsigned)s->n);
			if (harness_running(s->h, v)) {
				harness_kill(s->h, v, SIGKILL);
				s->restart_at_step[v] = s->step + 1;
			}
		}
		s->kills++;
		say(s, "kill -9 of up to %d members (%d still running)", k,
		    running_count(s));
		return;
	}
	v = rnd(s, 2) ? leader_or_any(s) : (int)rnd(s, (unsigned)s->n);
	if (!harness_running(s->h, v))
		return;
	harness_kill(s->h, v, SIGKILL);
	s->kills++;
	s->restart_at_step[v] = s->step + 1 + (int)rnd(s, 4);
	say(s, "kill -9 member %d", v);
}

static void act_pause(struct sched *s)
{
	int v = rnd(s, 2) ? leader_or_any(s) : (int)rnd(s, (unsigned)s->n);

	if (!harness_running(s->h, v))
		return;
	harness_kill(s->h, v, SIGSTOP);
	s->paused = v;
	s->pauses++;
	say(s, "SIGSTOP member %d", v);
}

static void act_drop(struct sched *s)
{
	static const unsigned pct[] = { 0, 0, 5, 20, 50 };
	static const unsigned ms[] = { 0, 0, 2, 20 };
	unsigned p = pct[rnd(s, 5)], d = ms[rnd(s, 4)];

	assert_int_equal(harness_set_drop(s->h, p), 0);
	assert_int_equal(harness_set_delay(s->h, d), 0);
	say(s, "drop %u %% of peer messages, delay them %u ms", p, d);
}

/* One step: lift the pause, maybe restart, then one fault. */
static void step(struct sched *s)
{
	unsigned r;

	s->step++;
	resume(s);
	/* Never leave a majority down for long. */
	restart_due(s, running_count(s) <= s->n / 2 && rnd(s, 2));
	r = rnd(s, 100);
	if (r < 40)
		act_partition(s);
	else if (r < 55)
		act_kill(s);
	else if (r < 70)
		act_pause(s);
	else if (r < 80)
		act_drop(s);
	else {
		assert_int_equal(harness_heal(s->h), 0);
		say(s, "heal");
	}
}

/* ------------------------------------------------------------------ */
/* end of run                                                           */
/* ------------------------------------------------------------------ */

static void converge(struct kvt *t)
{
	struct harness *h = kvt_harness(t);
	uint64_t until = harness_now_ms() + CONVERGE_MS;
	struct cproto_status st[HARNESS_MAX];

	for (;;) {
		bool same = true;

		for (int i = 0; i < harness_n(h); i++) {
			if (harness_status(h, i, &st[i]) != 0) {
				same = false;
				continue;
			}
			if (st[i].applied != st[i].last_index ||
			    st[i].commit != st[i].last_index ||
			    st[i].last_index != st[0].last_index)
				same = false;
		}
		if (same)
			return;
		if (harness_now_ms() > until) {
			for (int i = 0; i < harness_n(h); i++)
				print_message("member %d: term %" PRIu64
				              " last %" PRIu64
				              " commit %" PRIu64
				              " applied %" PRIu64 "\n",
				    i, st[i].term, st[i].last_index,
				    st[i].commit, st[i].applied);
			fail_msg("the cluster did not converge in %d ms",
			    CONVERGE_MS);
		}
		harness_sleep_ms(50);
	}
}

/* Every member's local state agrees with a linearizable read. */
static void check_replicas(struct kvt *t, struct linz_history *hist, int epoch)
{
	struct kvt_clerk *ck = kvt_clerk_new(t);
	struct clerk *raw;

	assert_non_null(ck);
	kvt_clerk_set_history(ck, hist);
	raw = kvt_clerk_raw(ck);
	for (int k = 0; k < NKEYS; k++) {
		char key[32], *v = NULL;
		uint64_t ver = 0;
		int rv;

		epoch_key(key, sizeof(key), epoch, k);
		rv = kvt_get(ck, key, &v, &ver);
		assert_true(rv == KV_OK || rv == KV_ENOKEY);
		for (uint32_t i = 0; i < clerk_members(raw); i++) {
			struct kv_attr a;
			void *sv = NULL;
			size_t len = 0;
			int srv = clerk_get_stale(raw, i, key, strlen(key), &a,
			    &sv, &len);

			if (srv != rv ||
			    (rv == KV_OK &&
			        (a.version != ver || len != strlen(v) ||
			            memcmp(sv, v, len) != 0)))
				fail_msg("member %u disagrees on %s: %s ver "
				         "%" PRIu64 " (linearizable read: %s "
				         "\"%s\" ver %" PRIu64 ")",
				    i, key, clerk_strerror(srv),
				    rv == KV_OK ? a.version : 0,
				    clerk_strerror(rv), v, ver);
			free(sv);
		}
		free(v);
	}
	kvt_clerk_free(ck);
}

/* ------------------------------------------------------------------ */
/* the test                                                             */
/* ------------------------------------------------------------------ */

static void test_nemesis(void **state)
{
	static const int64_t mrs[] = { -1, 2000, 65536 };
	static const int sizes[] = { 3, 5, 7 };
	struct kvt_options o;
	struct nemesis *nm = calloc(1, sizeof(*nm));
	struct kvt_clients *cs;
	struct sched s;
	struct kvt *t;
	const char *secs = getenv("RAFTKV_NEMESIS_SECONDS");
	uint64_t seed_rng, run_ms, epoch_ms, t_epoch, t_end;
	int e, lo;

	assert_non_null(nm);
	kvt_options_defaults(&o);
	o.name = "nemesis";
	/* The seed decides the shape; kvt_new() prints it. */
	{
		const char *sv = getenv("RAFTKV_SEED");

		if (sv && *sv) {
			seed_rng = strtoull(sv, NULL, 0);
		} else {
			seed_rng = history_now_ns() ^
			    ((uint64_t)getpid() << 32);
			/* kvt_new() must use the same seed. */
			char buf[32];

			snprintf(buf, sizeof(buf), "%" PRIu64, seed_rng);
			setenv("RAFTKV_SEED", buf, 1);
		}
	}
	memset(&s, 0, sizeof(s));
	s.rng = seed_rng;
	o.nservers = harness_long() ? sizes[rnd(&s, 3)] : 5;
	o.max_raft_state = mrs[rnd(&s, 3)];
	/* Clients keep one request each in flight per member. */
	o.workers = 64;
	t = kvt_new(state, &o);
	nm->t = t;
	run_ms = (uint64_t)(harness_long() ? (secs && *secs ? atoi(secs) : 300)
	                                   : 20) *
	    1000;
	epoch_ms = harness_long() ? 30000 : 10000;
	s.t = t;
	s.h = kvt_harness(t);
	s.n = o.nservers;
	s.paused = -1;
	s.t0 = harness_now_ms();
	print_message("[nemesis] %d members, maxraftstate %" PRId64
	              ", %d clients, %.0f s, epochs of %.0f s\n",
	    s.n, o.max_raft_state, NCLIENTS, run_ms / 1000.0,
	    epoch_ms / 1000.0);

	for (int i = 0; i < MAX_EPOCHS; i++)
		nm->hist[i] = NULL;
	nm->hist[0] = linz_history_new();
	nm->hist[1] = linz_history_new();
	atomic_init(&nm->epoch, 0);
	for (int i = 0; i < NCLIENTS; i++)
		atomic_init(&nm->client_epoch[i], 0);
	cs = kvt_clients_start(t, NCLIENTS, nemesis_client, nm);

	t_end = s.t0 + run_ms;
	t_epoch = s.t0 + epoch_ms;
	e = 0;
	lo = 0;
	while (harness_now_ms() < t_end) {
		step(&s);
		harness_sleep_ms(300 + rnd(&s, 2200));
		if (harness_now_ms() >= t_epoch && e + 2 < MAX_EPOCHS) {
			/* The next epoch's history exists before anyone
			 * can enter it. */
			nm->hist[e + 2] = linz_history_new();
			atomic_store(&nm->epoch, e + 1);
			e++;
			t_epoch += epoch_ms;
		}
		close_epochs(nm, &lo, e);
	}

	/* Lift every fault, bring everyone back. */
	resume(&s);
	assert_int_equal(harness_heal(s.h), 0);
	assert_int_equal(harness_set_drop(s.h, 0), 0);
	assert_int_equal(harness_set_delay(s.h, 0), 0);
	restart_due(&s, true);
	say(&s, "healed, every member running; stopping the clients");
	kvt_clients_stop(cs, NULL);
	close_epochs(nm, &lo, e);
	assert_int_equal(lo, e);
	kvt_must_leader(t);
	converge(t);
	check_replicas(t, nm->hist[e], e);
	kvt_check_history(t, nm->hist[e], "final");
	print_message("[nemesis] %" PRIu64 " ops in %d epochs; %u kills, %u "
	              "pauses, %u partitions\n",
	    (uint64_t)atomic_load(&nm->ops), e + 1, s.kills, s.pauses,
	    s.partitions);
	for (int i = 0; i < MAX_EPOCHS; i++)
		linz_history_free(nm->hist[i]);
	free(nm);
	kvt_finish(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_nemesis, kvt_teardown),
	};

	kvt_filter_tests();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
