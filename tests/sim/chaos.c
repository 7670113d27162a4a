/*
 * chaos.c - random fault schedules for the simulator.  See chaos.h.
 *
 * Three "goroutines" step in virtual time next to the cluster: the client
 * (a proposal every 10-200 ms to whoever claims leadership), the reader
 * (a read index on a random member every ~300 ms) and the fault injector.
 * They stop rescheduling themselves when the run's duration is over.
 */
#include "tests/sim/chaos.h"

#include <stdlib.h>
#include <string.h>

static const char *const fault_names[CHAOS_NKINDS] = {
	[CHAOS_ISOLATE] = "isolate",
	[CHAOS_SPLIT] = "split",
	[CHAOS_BRIDGE] = "bridge",
	[CHAOS_ASYMMETRIC] = "asymmetric",
	[CHAOS_HEAL] = "heal",
	[CHAOS_CRASH] = "crash",
	[CHAOS_RESTART] = "restart",
	[CHAOS_NET] = "net",
	[CHAOS_TRANSFER] = "transfer",
	[CHAOS_CAMPAIGN] = "campaign",
	[CHAOS_PAUSE] = "pause",
	[CHAOS_MEMBER] = "member",
};

const char *chaos_fault_name(enum chaos_fault f)
{
	return f < CHAOS_NKINDS ? fault_names[f] : "?";
}

static uint64_t mix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t pick(uint64_t *x, uint64_t lo, uint64_t hi)
{
	return lo + mix(x) % (hi - lo + 1);
}

void chaos_config(struct sim_config *c, uint64_t seed)
{
	uint64_t x = seed ^ 0x6368616f73ull; /* "chaos" */

	int voters = pick(&x, 0, 1) ? 5 : 3;

	sim_config_lab(c, voters, true, false, seed);
	c->disk_min_us = pick(&x, 50, 500);
	c->disk_max_us = c->disk_min_us +
	    (pick(&x, 0, 3) ? pick(&x, 0, 20000) : pick(&x, 0, 100000));
	c->delay_min_us = pick(&x, 50, 2000);
	c->delay_max_us = c->delay_min_us + pick(&x, 0, 10000);
	c->snap_every = pick(&x, 0, 3) ? (unsigned)pick(&x, 5, 60) : 0;
	c->lab_blob = false;
	c->snap_pad = (uint32_t)pick(&x, 0, 6000);
	c->snapshot_chunk_bytes = (uint32_t)pick(&x, 256, 8192);
	c->max_inflight_msgs = (uint32_t)pick(&x, 1, 64);
	c->max_msg_entries = (uint32_t)pick(&x, 1, 64);
	c->disable_prevote = pick(&x, 0, 9) == 0;
	c->disable_check_quorum = pick(&x, 0, 9) == 0;
	c->keep_inflight_on_crash = pick(&x, 0, 1);
	c->tick_jitter_pct = (unsigned)pick(&x, 0, 20);
	c->shuffle_links = pick(&x, 0, 1);
	/* Spares that membership changes may add. */
	if (pick(&x, 0, 1)) {
		c->n_voters = voters;
		c->n = voters + (int)pick(&x, 1, 3);
	}
}

uint64_t chaos_duration(uint64_t seed)
{
	uint64_t x = seed ^ 0x6475726174696f6eull; /* "duration" */

	return pick(&x, 30, 60) * SIM_SEC;
}

struct chaos {
	struct sim *s;
	struct chaos_stats *st;
	uint64_t end;
	uint64_t client_period;
	uint64_t next_value;
	bool big_values;
	bool stopped;
	bool added[SIM_MAX_MEMBERS]; /* ever a member (ids are never reused) */
	int repl_new, repl_old; /* a replacement under way (-1: none) */
};

/* --- client and reader ------------------------------------------------ */

static int find_leader(struct sim *s)
{
	int n = sim_n(s), start = (int)sim_randn(s, n), k;

	for (k = 0; k < n; k++) {
		int i = (start + k) % n;
		bool l;
		sim_get_state(s, i, &l);
		if (l)
			return i;
	}
	return -1;
}

static void client_step(struct sim *s, void *arg)
{
	struct chaos *c = arg;
	uint8_t buf[2048];
	uint32_t len;
	int i;

	if (c->stopped || sim_now(s) >= c->end)
		return;
	i = find_leader(s);
	if (i >= 0) {
		/* A closed-loop client: at most 64 entries outstanding, as
		 * real clients waiting for their answers (an open loop only
		 * measures how long a backlog takes to drain). */
		struct raft_status rs;
		raft_status(sim_raft(s, i), &rs);
		if (rs.last_index - rs.commit >= 64) {
			sim_after(s, 1 + sim_randn(s, 2 * c->client_period),
			    client_step, c);
			return;
		}
	} else {
		i = (int)sim_randn(s, sim_n(s));
	}
	len = 8 + (uint32_t)sim_randn(s, c->big_values ? 2040 : 56);
	memset(buf, 0, len);
	memcpy(buf, &c->next_value, 8);
	c->next_value++;
	c->st->proposals_tried++;
	sim_propose(s, i, buf, len, NULL, NULL);
	sim_after(s, 1 + sim_randn(s, 2 * c->client_period), client_step, c);
}

static void reader_step(struct sim *s, void *arg)
{
	struct chaos *c = arg;

	if (c->stopped || sim_now(s) >= c->end)
		return;
	c->st->reads_tried++;
	sim_read_index(s, (int)sim_randn(s, sim_n(s)));
	sim_after(s, 1 + sim_randn(s, 600 * SIM_MS), reader_step, c);
}

/* --- faults ------------------------------------------------------------ */

static void all_links(struct sim *s, bool up)
{
	int i, j;

	for (i = 0; i < sim_n(s); i++)
		for (j = 0; j < sim_n(s); j++)
			if (i != j)
				sim_set_link(s, i, j, up);
}

static void do_split(struct sim *s, bool bridge)
{
	int n = sim_n(s), side[SIM_MAX_MEMBERS], i, j, b = -1;
	int minority = 1 + (int)sim_randn(s, (uint64_t)(n / 2));

	for (i = 0; i < n; i++)
		side[i] = 0;
	for (i = 0; i < minority; i++) {
		int k;
		do {
			k = (int)sim_randn(s, n);
		} while (side[k]);
		side[k] = 1;
	}
	if (bridge) {
		do {
			b = (int)sim_randn(s, n);
		} while (side[b]);
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			if (i != j)
				sim_set_link(s, i, j,
				    side[i] == side[j] || i == b || j == b);
	sim_logf(s, "network: %s %d | %d%s", bridge ? "bridge" : "split",
	    n - minority, minority, bridge ? " (one member sees both)" : "");
}

static void do_member(struct chaos *c);

static void do_fault(struct chaos *c, enum chaos_fault f)
{
	struct sim *s = c->s;
	int n = sim_n(s), i, j, k;

	c->st->faults[f]++;
	switch (f) {
	case CHAOS_ISOLATE:
		i = (int)sim_randn(s, n);
		for (j = 0; j < n; j++) {
			if (j == i)
				continue;
			sim_set_link(s, i, j, false);
			sim_set_link(s, j, i, false);
		}
		sim_logf(s, "network: n%d isolated", i + 1);
		break;
	case CHAOS_SPLIT:
		do_split(s, false);
		break;
	case CHAOS_BRIDGE:
		do_split(s, true);
		break;
	case CHAOS_ASYMMETRIC:
		for (k = 1 + (int)sim_randn(s, (uint64_t)n); k > 0; k--) {
			i = (int)sim_randn(s, n);
			j = (int)sim_randn(s, n);
			if (i != j)
				sim_set_link(s, i, j, false);
		}
		sim_logf(s, "network: some links fail one way");
		break;
	case CHAOS_HEAL:
		all_links(s, true);
		sim_logf(s, "network: healed");
		break;
	case CHAOS_CRASH:
		i = (int)sim_randn(s, n);
		if (sim_alive(s, i)) {
			bool up[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS];
			/* Crashing disconnects (lab semantics); keep the
			 * rest of the partition as it was. */
			for (j = 0; j < n; j++)
				for (k = 0; k < n; k++)
					up[j][k] = sim_link(s, j, k);
			sim_crash(s, i);
			for (j = 0; j < n; j++)
				for (k = 0; k < n; k++)
					if (j != k && j != i && k != i)
						sim_set_link(s, j, k, up[j][k]);
			for (j = 0; j < n; j++) {
				if (j == i)
					continue;
				sim_set_link(s, i, j, up[i][j]);
				sim_set_link(s, j, i, up[j][i]);
			}
		}
		break;
	case CHAOS_RESTART:
		for (k = 0, i = (int)sim_randn(s, n); k < n;
		     k++, i = (i + 1) % n)
			if (!sim_alive(s, i)) {
				sim_start(s, i);
				break;
			}
		break;
	case CHAOS_NET:
		switch (sim_randn(s, 4)) {
		case 0:
			sim_set_faults(s, 0, 0, 0, 100, 1000);
			sim_logf(s, "network: clean");
			break;
		case 1:
			sim_set_faults(s, (uint32_t)sim_randn(s, 200000),
			    (uint32_t)sim_randn(s, 50000), 0, 100,
			    1000 + sim_randn(s, 20000));
			sim_logf(s, "network: lossy");
			break;
		case 2:
			sim_set_faults(s, (uint32_t)sim_randn(s, 100000),
			    (uint32_t)sim_randn(s, 100000),
			    (uint32_t)sim_randn(s, 100000), 100,
			    1000 + sim_randn(s, 50000));
			sim_logf(s, "network: lossy, duplicating, reordering");
			break;
		default:
			sim_set_faults(s, 0, 0, 0, 1000 + sim_randn(s, 20000),
			    30000 + sim_randn(s, 100000));
			sim_logf(s, "network: slow");
			break;
		}
		break;
	case CHAOS_TRANSFER:
		i = find_leader(s);
		if (i >= 0) {
			j = (i + 1 + (int)sim_randn(s, (uint64_t)(n - 1))) % n;
			if (sim_transfer(s, i, j) == 0)
				sim_logf(s, "n%d hands leadership to n%d",
				    i + 1, j + 1);
		}
		break;
	case CHAOS_CAMPAIGN:
		i = (int)sim_randn(s, n);
		if (sim_alive(s, i)) {
			sim_campaign(s, i);
			sim_logf(s, "n%d campaigns", i + 1);
		}
		break;
	case CHAOS_PAUSE:
		i = (int)sim_randn(s, n);
		if (sim_alive(s, i))
			sim_pause(s, i,
			    200 * SIM_MS + sim_randn(s, 4800 * SIM_MS));
		break;
	case CHAOS_MEMBER:
		do_member(c);
		break;
	case CHAOS_NKINDS:
		break;
	}
}

/* --- membership ------------------------------------------------------- */

static bool in_list(const raft_id *ids, uint32_t n, int i)
{
	for (uint32_t k = 0; k < n; k++)
		if (ids[k] == (raft_id)i + 1)
			return true;
	return false;
}

/* A spare never added, or -1. */
static int fresh_spare(struct chaos *c)
{
	int n = sim_n(c->s), start = (int)sim_randn(c->s, (uint64_t)n), k;

	for (k = 0; k < n; k++) {
		int i = (start + k) % n;
		if (!c->added[i])
			return i;
	}
	return -1;
}

static bool change(struct chaos *c, int leader, int type, int who)
{
	int rc = sim_conf_change(c->s, leader, type, who);

	if (rc == 0) {
		c->st->conf_ok[type]++;
		if (type == RAFT_CONF_ADD_LEARNER)
			c->added[who] = true;
		return true;
	}
	c->st->conf_refused++;
	return false;
}

static void do_member(struct chaos *c)
{
	struct sim *s = c->s;
	struct raft_conf conf;
	int l = find_leader(s), i;
	uint32_t nm;

	if (l < 0 || !sim_get_conf(s, l, &conf))
		return;
	nm = conf.n_voters + conf.n_learners;
	if (c->repl_new >= 0) {
		/* The replacement goes on: promote the new member, then
		 * remove the old one. */
		if (in_list(conf.learners, conf.n_learners, c->repl_new)) {
			change(c, l, RAFT_CONF_PROMOTE, c->repl_new);
			return;
		}
		if (in_list(conf.voters, conf.n_voters, c->repl_new) &&
		    (in_list(conf.voters, conf.n_voters, c->repl_old) ||
		        in_list(conf.learners, conf.n_learners, c->repl_old))) {
			if (change(c, l, RAFT_CONF_REMOVE, c->repl_old))
				c->repl_new = c->repl_old = -1;
			return;
		}
		c->repl_new = c->repl_old = -1; /* overtaken by other changes */
	}
	switch (sim_randn(s, 4)) {
	case 0: /* add a fresh machine as a learner */
		i = fresh_spare(c);
		if (i >= 0)
			change(c, l, RAFT_CONF_ADD_LEARNER, i);
		break;
	case 1: /* promote a learner */
		if (conf.n_learners > 0)
			change(c, l, RAFT_CONF_PROMOTE,
			    (int)conf.learners[sim_randn(s, conf.n_learners)] -
			        1);
		break;
	case 2: /* remove a member, the leader included; rarely below 2
	           voters */
		i = (int)sim_randn(s, nm);
		if ((uint32_t)i >= conf.n_voters || conf.n_voters > 2 ||
		    sim_randn(s, 4) == 0)
			change(c, l, RAFT_CONF_REMOVE,
			    (int)(i < (int)conf.n_voters
			            ? conf.voters[i]
			            : conf.learners[i - (int)conf.n_voters]) -
			        1);
		break;
	default: /* replace a voter (the leader a third of the time) */
		i = fresh_spare(c);
		if (i < 0)
			break;
		c->repl_old = sim_randn(s, 3) == 0
		    ? l
		    : (int)conf.voters[sim_randn(s, conf.n_voters)] - 1;
		if (change(c, l, RAFT_CONF_ADD_LEARNER, i)) {
			c->repl_new = i;
			c->st->replaces++;
			sim_logf(s, "replacing n%d by n%d", c->repl_old + 1,
			    i + 1);
		} else {
			c->repl_old = -1;
		}
		break;
	}
}

static void fault_step(struct sim *s, void *arg)
{
	/* Weights: partitions and heals dominate; crashes are frequent
	 * enough to lose writes several times per run. */
	static const struct {
		enum chaos_fault f;
		unsigned w;
	} table[] = {
		{ CHAOS_ISOLATE, 10 },
		{ CHAOS_SPLIT, 10 },
		{ CHAOS_BRIDGE, 5 },
		{ CHAOS_ASYMMETRIC, 6 },
		{ CHAOS_HEAL, 22 },
		{ CHAOS_CRASH, 10 },
		{ CHAOS_RESTART, 14 },
		{ CHAOS_NET, 10 },
		{ CHAOS_TRANSFER, 8 },
		{ CHAOS_CAMPAIGN, 5 },
		{ CHAOS_PAUSE, 6 },
		{ CHAOS_MEMBER, 12 },
	};
	struct chaos *c = arg;
	unsigned total = 0, r, k;

	if (c->stopped || sim_now(s) >= c->end)
		return;
	for (k = 0; k < sizeof table / sizeof table[0]; k++)
		total += table[k].w;
	r = (unsigned)sim_randn(s, total);
	for (k = 0; r >= table[k].w; k++)
		r -= table[k].w;
	do_fault(c, table[k].f);
	sim_after(s, 200 * SIM_MS + sim_randn(s, 1800 * SIM_MS), fault_step, c);
}

void chaos_run(struct sim *s, uint64_t duration_us, struct chaos_stats *st)
{
	/* On the stack: a violation longjmp()s out of here and the caller
	 * frees the simulator without running another event, so nothing
	 * reads this after that and nothing leaks. */
	struct chaos chaos = { 0 }, *c = &chaos;

	c->s = s;
	c->st = st;
	c->end = sim_now(s) + duration_us;
	c->client_period = (10 + sim_randn(s, 190)) * SIM_MS;
	c->big_values = sim_randn(s, 4) == 0;
	c->next_value = 1;
	c->repl_new = c->repl_old = -1;
	{
		struct raft_conf conf;
		int i;

		for (i = 0; i < sim_n(s); i++)
			if (sim_get_conf(s, i, &conf))
				c->added[i] = in_list(conf.voters,
				    conf.n_voters, i);
	}
	sim_after(s, 0, client_step, c);
	sim_after(s, 100 * SIM_MS, reader_step, c);
	sim_after(s, 500 * SIM_MS + sim_randn(s, SIM_SEC), fault_step, c);
	sim_sleep(s, duration_us);
	c->stopped = true;
	sim_logf(s, "--- healing: all members up, all links up, clean network");
	sim_heal_and_check(s, 10 * SIM_SEC, 120 * SIM_SEC);
	/* Let the goroutines' last scheduled steps see c->stopped. */
	sim_sleep(s, 2500 * SIM_MS);
}
