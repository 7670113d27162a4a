/*
 * sim_tester.c - the 6.5840 raft1 tester's helpers in virtual time
 * (checkOneLeader, checkTerms, nCommitted, one, wait: 6.5840-tests.md
 * 1.2, 2.1) and the end-of-run checks (liveness, no lost entries).
 *
 * They drive the cluster through sim.h's API and read struct sim (who is
 * connected, what was applied where) directly.
 */
#include "tests/sim/sim_int.h"

#include <inttypes.h>

/* ===================================================================== */
/* tester helpers (raft1 test.go)                                        */
/* ===================================================================== */

int sim_check_one_leader(struct sim *s)
{
	int iters, i;

	for (iters = 0; iters < 10; iters++) {
		raft_term best = 0;
		int leader = -1;

		sim_sleep(s, (450 + sim_randn(s, 100)) * SIM_MS);
		for (i = 0; i < s->n; i++) {
			bool is_leader;
			raft_term t;
			int j;

			if (!s->m[i].connected)
				continue;
			t = sim_get_state(s, i, &is_leader);
			if (!is_leader)
				continue;
			for (j = 0; j < i; j++) {
				bool l2;
				if (s->m[j].connected &&
				    sim_get_state(s, j, &l2) == t && l2)
					sim_fail(s,
					    "term %" PRIu64 " has 2 (>1) "
					    "leaders",
					    t);
			}
			if (leader < 0 || t > best) {
				best = t;
				leader = i;
			}
		}
		if (leader >= 0)
			return leader;
	}
	sim_fail(s, "expected one leader, got none");
}

raft_term sim_check_terms(struct sim *s)
{
	raft_term term = 0;
	bool have = false;
	int i;

	for (i = 0; i < s->n; i++) {
		bool l;
		raft_term t;

		if (!s->m[i].connected)
			continue;
		t = sim_get_state(s, i, &l);
		if (!have) {
			term = t;
			have = true;
		} else if (t != term) {
			sim_fail(s,
			    "servers disagree on term (%" PRIu64 " vs %" PRIu64
			    ")",
			    term, t);
		}
	}
	return term;
}

void sim_check_no_leader(struct sim *s)
{
	int i;

	for (i = 0; i < s->n; i++) {
		bool l;
		if (s->m[i].connected) {
			sim_get_state(s, i, &l);
			if (l)
				sim_fail(s,
				    "expected no leader among connected "
				    "servers, but n%d claims to be leader",
				    i + 1);
		}
	}
}

int sim_n_committed(struct sim *s, raft_index index, uint64_t *vh, bool *normal)
{
	int count = 0, i;

	if (vh)
		*vh = 0;
	if (normal)
		*normal = false;
	if (index == 0)
		return 0;
	for (i = 0; i < s->n; i++)
		if (s->m[i].applied >= index)
			count++;
	if (count) {
		/* Every member's map agrees with g[] (checked when applied). */
		if (vh)
			*vh = s->g[index].vh;
		if (normal)
			*normal = s->g[index].type == RAFT_ENTRY_NORMAL;
	}
	return count;
}

void sim_check_no_agreement(struct sim *s, raft_index index)
{
	int n = sim_n_committed(s, index, NULL, NULL);

	if (n > 0)
		sim_fail(s, "%d committed but no majority", n);
}

struct sim_one {
	uint8_t *cmd;
	uint32_t len;
	uint64_t vh;
	int expected;
	bool retry;
	uint64_t t0, t1;
	int starts;
	raft_index index;
	bool polling;
	bool done, failed;
	raft_index result;
};

static void one_step(struct sim *s, void *arg);

static void one_try(struct sim *s, struct sim_one *op)
{
	raft_index index = 0;
	bool found = false;
	int k;

	if (s->now - op->t0 >= 10 * SIM_SEC) {
		op->failed = op->done = true;
		return;
	}
	for (k = 0; k < s->n; k++) {
		raft_index idx;
		op->starts = (op->starts + 1) % s->n;
		if (!s->m[op->starts].connected || s->m[op->starts].r == NULL)
			continue;
		if (sim_propose(s, op->starts, op->cmd, op->len, &idx, NULL) ==
		    0) {
			index = idx;
			found = true;
			break;
		}
	}
	if (found) {
		op->index = index;
		op->t1 = s->now;
		op->polling = true;
		one_step(s, op);
	} else {
		sim_after(s, 50 * SIM_MS, one_step, op);
	}
}

static void one_step(struct sim *s, void *arg)
{
	struct sim_one *op = arg;

	if (op->done)
		return;
	if (!op->polling) {
		one_try(s, op);
		return;
	}
	if (s->now - op->t1 < 2 * SIM_SEC) {
		uint64_t vh;
		bool normal;
		int nd = sim_n_committed(s, op->index, &vh, &normal);
		if (nd > 0 && nd >= op->expected && normal && vh == op->vh) {
			op->result = op->index;
			op->done = true;
			return;
		}
		sim_after(s, 20 * SIM_MS, one_step, op);
		return;
	}
	if (!op->retry) {
		op->failed = op->done = true;
		return;
	}
	op->polling = false;
	one_try(s, op);
}

struct sim_one *sim_one_start(struct sim *s, const void *cmd, uint32_t len,
    int expected, bool retry)
{
	struct sim_one *op = xcalloc(1, sizeof *op);

	op->cmd = xmemdup(cmd, len);
	op->len = len;
	op->vh = sim_value_hash(cmd, len);
	op->expected = expected;
	op->retry = retry;
	op->t0 = s->now;
	one_try(s, op);
	return op;
}

bool sim_one_done(const struct sim_one *op)
{
	return op->done;
}

raft_index sim_one_finish(struct sim *s, struct sim_one *op)
{
	raft_index r;
	uint64_t v = 0;

	sim_run_until_flag(s, &op->done);
	r = op->result;
	if (op->failed) {
		uint32_t len = op->len;
		if (len == 8)
			v = get_u64(op->cmd);
		free(op->cmd);
		free(op);
		if (len == 8)
			sim_fail(s,
			    "one(%" PRIu64 ") failed to reach agreement", v);
		sim_fail(s, "one(<%u bytes>) failed to reach agreement", len);
	}
	free(op->cmd);
	free(op);
	return r;
}

raft_index sim_one(struct sim *s, const void *cmd, uint32_t len, int expected,
    bool retry)
{
	return sim_one_finish(s, sim_one_start(s, cmd, len, expected, retry));
}

raft_index sim_one_int(struct sim *s, uint64_t v, int expected, bool retry)
{
	uint8_t b[8];

	put_u64(b, v);
	return sim_one(s, b, 8, expected, retry);
}

bool sim_wait(struct sim *s, raft_index index, int n, raft_term start_term,
    uint64_t *vh, bool *normal)
{
	uint64_t to = 10 * SIM_MS;
	int iters, nd, i;

	for (iters = 0; iters < 30; iters++) {
		if (sim_n_committed(s, index, NULL, NULL) >= n)
			break;
		sim_sleep(s, to);
		if (to < SIM_SEC)
			to *= 2;
		if (start_term != SIM_NO_TERM) {
			for (i = 0; i < s->n; i++) {
				bool l;
				if (sim_get_state(s, i, &l) > start_term)
					return false;
			}
		}
	}
	nd = sim_n_committed(s, index, vh, normal);
	if (nd < n)
		sim_fail(s, "only %d decided for index %" PRIu64 "; wanted %d",
		    nd, index, n);
	return true;
}

/* ===================================================================== */
/* end-of-run checks                                                     */
/* ===================================================================== */

static bool is_member(const struct raft_conf *c, int i)
{
	uint32_t k;

	for (k = 0; k < c->n_voters; k++)
		if (c->voters[k] == (raft_id)i + 1)
			return true;
	for (k = 0; k < c->n_learners; k++)
		if (c->learners[k] == (raft_id)i + 1)
			return true;
	return false;
}

void sim_heal_and_check(struct sim *s, uint64_t limit_us, uint64_t catchup_us)
{
	uint64_t start, deadline, want;
	uint8_t cmd[16];
	bool committed = false;
	struct raft_conf fc;
	int i;

	for (i = 0; i < s->n; i++) {
		s->m[i].paused_until = 0;
		if (s->m[i].r == NULL)
			sim_start(s, i);
	}
	sim_connect_all(s);
	sim_set_reliable(s, true);
	sim_set_long_reordering(s, false);
	s->cfg.drop_ppm = s->cfg.dup_ppm = s->cfg.reorder_ppm = 0;
	if (s->cfg.delay_max_us > 20 * SIM_MS) {
		s->cfg.delay_min_us = 100;
		s->cfg.delay_max_us = 1000;
	}
	/* Liveness: a leader, then a fresh proposal applied by a majority. */
	start = s->now;
	deadline = start + limit_us;
	put_u64(cmd, 0x6c6976656e657373ull); /* "liveness" */
	put_u64(cmd + 8, s->now);
	memset(&fc, 0, sizeof fc);
	while (!committed) {
		raft_index idx = 0;
		for (i = 0; i < s->n && idx == 0; i++) {
			bool l;
			sim_get_state(s, i, &l);
			if (l &&
			    sim_propose(s, i, cmd, sizeof cmd, &idx, NULL) != 0)
				idx = 0;
			if (idx)
				sim_get_conf(s, i, &fc);
		}
		if (idx) {
			uint64_t t1 = s->now;
			while (s->now - t1 < 2 * SIM_SEC && s->now < deadline) {
				uint32_t k, n = 0;

				/* Applied by a majority of the voters of the
				 * leader's configuration. */
				for (k = 0; k < fc.n_voters; k++)
					n += s->m[fc.voters[k] - 1].applied >=
					    idx;
				if (n >= fc.n_voters / 2 + 1 &&
				    s->g[idx].vh ==
				        sim_value_hash(cmd, sizeof cmd)) {
					committed = true;
					break;
				}
				sim_sleep(s, 10 * SIM_MS);
			}
		} else {
			sim_sleep(s, 10 * SIM_MS);
		}
		if (!committed && s->now >= deadline)
			sim_fail(s,
			    "liveness: no proposal committed within %.1f s "
			    "of healing the cluster",
			    limit_us / 1e6);
	}
	/* Durability: every member of the configuration catches up with
	 * everything applied. */
	want = s->g_max;
	deadline = s->now + catchup_us;
	for (;;) {
		bool all = true;
		if (sim_current_conf(s, &fc) == false)
			sim_fail(s, "harness: no live member after healing");
		for (i = 0; i < s->n; i++)
			if (s->m[i].applied < want && is_member(&fc, i))
				all = false;
		if (all)
			break;
		if (s->now >= deadline) {
			for (i = 0; i < s->n; i++)
				if (s->m[i].applied < want && is_member(&fc, i))
					sim_fail(s,
					    "no lost entries: n%d applied "
					    "only up to %" PRIu64 " of %" PRIu64
					    " within %.1f s of healing",
					    i + 1, s->m[i].applied, want,
					    catchup_us / 1e6);
		}
		sim_sleep(s, 10 * SIM_MS);
	}
}
