/*
 * test_raft_core.c - unit tests of the pure Raft core, driven directly.
 *
 * A minimal in-process driver: N cores, a message queue delivered in FIFO
 * order (optionally dropping messages to/from "cut" members), persistence
 * acknowledged at once.  The simulator (tests/sim/) does the harsh,
 * randomized work; these tests pin down individual behaviours with exact
 * expectations: one election, replication and commit, the durability gate
 * on apply, ReadIndex, leadership transfer, snapshot catch-up, the
 * uncommitted bound and rejection of malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "raft/config.h"
#include "raft/raft.h"

/* ------------------------------------------------------------- fixture */

#define N_MAX 5
#define Q_MAX 100000

struct qmsg {
	struct raft_msg m;
	struct raft_entry *ents;
	uint8_t *chunk;
};

struct cluster {
	int n;
	struct raft *r[N_MAX];
	bool cut[N_MAX];
	bool hold_persist[N_MAX]; /* do not report durability */
	struct qmsg *q;
	int qhead, qtail;
	raft_index applied[N_MAX];
	uint64_t applied_sum[N_MAX];
	struct raft_read_state rs[N_MAX][16];
	int n_rs[N_MAX];
	int n_rf[N_MAX];
	bool installed[N_MAX];
	raft_index truncated_from[N_MAX]; /* lowest reported, 0: none */
	unsigned appends_to[N_MAX]; /* APPEND messages sent to each */
	unsigned quiet_hbs, loud_hbs; /* HEARTBEATs with and without done */
	unsigned hb_resps; /* HEARTBEAT_RESPs */
};

static void push(struct cluster *c, const struct raft_msg *m)
{
	struct qmsg *q = &c->q[c->qtail++ % Q_MAX];

	if (m->type == RAFT_MSG_APPEND && m->to >= 1 && m->to <= N_MAX)
		c->appends_to[m->to - 1]++;
	if (m->type == RAFT_MSG_HEARTBEAT && m->done)
		c->quiet_hbs++;
	else if (m->type == RAFT_MSG_HEARTBEAT)
		c->loud_hbs++;
	c->hb_resps += m->type == RAFT_MSG_HEARTBEAT_RESP;
	q->m = *m;
	q->ents = NULL;
	q->chunk = NULL;
	if (m->n_entries) {
		q->ents = calloc(m->n_entries, sizeof(*q->ents));
		for (uint32_t i = 0; i < m->n_entries; i++) {
			q->ents[i] = m->entries[i];
			q->ents[i].data = NULL;
			if (m->entries[i].len) {
				q->ents[i].data = malloc(m->entries[i].len);
				memcpy(q->ents[i].data, m->entries[i].data,
				    m->entries[i].len);
			}
		}
	}
	if (m->chunk_len) {
		q->chunk = malloc(m->chunk_len);
		memcpy(q->chunk, m->chunk, m->chunk_len);
	}
	q->m.entries = q->ents;
	q->m.chunk = q->chunk;
}

static void drive(struct cluster *c, int i)
{
	struct raft_ready rd;

	while (c->r[i] && raft_ready(c->r[i], &rd)) {
		struct raft_persist_token t = rd.persist_token;
		bool persist = rd.must_persist;

		for (uint32_t k = 0; k < rd.n_msgs; k++)
			push(c, &rd.msgs[k]);
		if (rd.snapshot_install) {
			c->installed[i] = true;
			c->applied[i] = rd.snap_meta.index;
			memcpy(&c->applied_sum[i], rd.snap_data,
			    sizeof(uint64_t));
		}
		for (uint32_t k = 0; k < rd.n_msgs_after_persist; k++)
			push(c, &rd.msgs_after_persist[k]);
		for (uint32_t k = 0; k < rd.n_committed; k++) {
			const struct raft_entry *e = &rd.committed[k];

			assert_int_equal(e->index, c->applied[i] + 1);
			c->applied[i] = e->index;
			if (e->type == RAFT_ENTRY_NORMAL && e->len >= 8) {
				uint64_t v;

				memcpy(&v, e->data, 8);
				c->applied_sum[i] += v;
			}
		}
		if (rd.truncated_from &&
		    (c->truncated_from[i] == 0 ||
		        rd.truncated_from < c->truncated_from[i]))
			c->truncated_from[i] = rd.truncated_from;
		for (uint32_t k = 0; k < rd.n_read_states; k++)
			c->rs[i][c->n_rs[i]++ % 16] = rd.read_states[k];
		c->n_rf[i] += (int)rd.n_read_failed;
		raft_advance(c->r[i], &rd);
		if (persist && !c->hold_persist[i])
			raft_persisted(c->r[i], &t);
	}
}

static void deliver_all(struct cluster *c)
{
	for (int i = 0; i < c->n; i++)
		drive(c, i);
	while (c->qhead != c->qtail) {
		struct qmsg *q = &c->q[c->qhead++ % Q_MAX];
		int to = (int)q->m.to - 1, from = (int)q->m.from - 1;

		if (!c->cut[to] && !c->cut[from] && c->r[to]) {
			assert_int_equal(raft_step(c->r[to], &q->m), 0);
			drive(c, to);
		}
		for (uint32_t k = 0; k < q->m.n_entries; k++)
			free(q->ents[k].data);
		free(q->ents);
		free(q->chunk);
	}
}

static void tick_all(struct cluster *c, int ticks)
{
	for (int t = 0; t < ticks; t++) {
		for (int i = 0; i < c->n; i++)
			if (c->r[i])
				assert_int_equal(raft_tick(c->r[i]), 0);
		deliver_all(c);
	}
}

static struct raft_config config(int n, int id)
{
	raft_id voters[N_MAX] = { 1, 2, 3, 4, 5 };
	struct raft_config cfg;

	raft_config_defaults(&cfg, (raft_id)id, voters, (uint32_t)n);
	cfg.seed = 42;
	cfg.snapshot_chunk_bytes = 16;
	return cfg;
}

/* @max_inflight_bytes 0: the default; @lease: lease reads on. */
static struct cluster *cluster_new_lease(int n, unsigned heartbeat_tick,
    uint64_t max_inflight_bytes, bool lease)
{
	struct cluster *c = calloc(1, sizeof(*c));

	c->n = n;
	c->q = calloc(Q_MAX, sizeof(*c->q));
	for (int i = 0; i < n; i++) {
		struct raft_config cfg = config(n, i + 1);

		cfg.heartbeat_tick = heartbeat_tick;
		cfg.disable_lease_read = !lease;
		if (max_inflight_bytes)
			cfg.max_inflight_bytes = max_inflight_bytes;
		assert_int_equal(raft_new(&cfg, NULL, &c->r[i]), 0);
	}
	return c;
}

static struct cluster *cluster_new_with(int n, unsigned heartbeat_tick,
    uint64_t max_inflight_bytes)
{
	return cluster_new_lease(n, heartbeat_tick, max_inflight_bytes, true);
}

static struct cluster *cluster_new_hb(int n, unsigned heartbeat_tick)
{
	return cluster_new_with(n, heartbeat_tick, 0);
}

static struct cluster *cluster_new(int n)
{
	return cluster_new_hb(n, 1);
}

static void cluster_free(struct cluster *c)
{
	deliver_all(c);
	for (int i = 0; i < c->n; i++)
		raft_free(c->r[i]);
	free(c->q);
	free(c);
}

static int leader_of(struct cluster *c)
{
	int leader = -1;

	for (int i = 0; i < c->n; i++) {
		struct raft_status st;

		if (c->r[i] == NULL || c->cut[i])
			continue;
		raft_status(c->r[i], &st);
		if (st.role == RAFT_LEADER) {
			assert_int_equal(leader, -1);
			leader = i;
		}
	}
	return leader;
}

static int elect(struct cluster *c)
{
	for (int t = 0; t < 100; t++) {
		int l;

		tick_all(c, 1);
		l = leader_of(c);
		if (l >= 0)
			return l;
	}
	fail_msg("no leader after 100 ticks");
	return -1;
}

static void propose_u64(struct cluster *c, int l, uint64_t v)
{
	assert_int_equal(raft_propose(c->r[l], &v, sizeof(v), NULL, NULL), 0);
}

/* --------------------------------------------------------------- tests */

static void test_raft_elects_one_leader_and_replicates(void **state)
{
	struct cluster *c = cluster_new(3);
	int l;

	(void)state;
	l = elect(c);
	for (uint64_t v = 1; v <= 100; v++)
		propose_u64(c, l, v);
	tick_all(c, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c->applied_sum[i], 5050);
		/* 100 entries + the leader's no-op */
		assert_int_equal(c->applied[i], 101);
	}
	cluster_free(c);
}

static void test_raft_single_member_commits_alone(void **state)
{
	struct cluster *c = cluster_new(1);
	int l;

	(void)state;
	l = elect(c);
	propose_u64(c, l, 7);
	deliver_all(c);
	assert_int_equal(c->applied_sum[0], 7);
	cluster_free(c);
}

static void test_raft_no_apply_before_durable(void **state)
{
	struct cluster *c = cluster_new(3);
	int l;

	(void)state;
	l = elect(c);
	tick_all(c, 2);
	for (int i = 0; i < 3; i++)
		c->hold_persist[i] = true;
	propose_u64(c, l, 9);
	tick_all(c, 5);
	/* Nobody's write is durable: nothing may commit or apply. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(c->applied_sum[i], 0);
	cluster_free(c);
}

static void test_raft_minority_cannot_commit(void **state)
{
	struct cluster *c = cluster_new(5);
	struct raft_status st;
	int l;

	(void)state;
	l = elect(c);
	tick_all(c, 2);
	for (int i = 0; i < 5; i++)
		if (i != l && i != (l + 1) % 5)
			c->cut[i] = true;
	propose_u64(c, l, 5);
	tick_all(c, 5);
	raft_status(c->r[l], &st);
	assert_int_equal(c->applied_sum[l], 0);
	/* Check-quorum: within two election timeouts the leader steps down. */
	tick_all(c, 25);
	raft_status(c->r[l], &st);
	assert_int_not_equal(st.role, RAFT_LEADER);
	cluster_free(c);
}

/* Lease reads off: every read waits for a heartbeat round. */
static void test_raft_read_index_needs_heartbeat_round(void **state)
{
	struct cluster *c = cluster_new_lease(3, 1, 0, false);
	int l, f;

	(void)state;
	l = elect(c);
	tick_all(c, 2);
	assert_int_equal(raft_read_index(c->r[l], 77), 0);
	/* Cut the followers: the round cannot complete. */
	for (int i = 0; i < 3; i++)
		c->cut[i] = i != l;
	deliver_all(c);
	assert_int_equal(c->n_rs[l], 0);
	for (int i = 0; i < 3; i++)
		c->cut[i] = false;
	tick_all(c, 2);
	assert_int_equal(c->n_rs[l], 1);
	assert_int_equal(c->rs[l][0].ctx, 77);
	/* A follower's read is forwarded and answered. */
	f = (l + 1) % 3;
	assert_int_equal(raft_read_index(c->r[f], 78), 0);
	tick_all(c, 2);
	assert_int_equal(c->n_rs[f], 1);
	assert_int_equal(c->rs[f][0].ctx, 78);
	assert_true(c->rs[f][0].index >= 1);
	cluster_free(c);
}

static uint64_t lease_reads(struct cluster *c, int i)
{
	struct raft_status st;

	raft_status(c->r[i], &st);
	return st.lease_reads;
}

/*
 * Lease reads (election_tick 10, heartbeat every tick: a lease of 6
 * ticks).  With a quorum's heartbeat echoes fresh, the leader answers at
 * once and a follower's forwarded read in one hop, without a heartbeat
 * round; once the echoes are older than the lease, after a tick gap, or
 * once a transfer started, reads need a round again.
 */
static void test_raft_lease_read(void **state)
{
	struct cluster *c = cluster_new(3);
	unsigned loud;
	int l, f;

	(void)state;
	l = elect(c);
	tick_all(c, 2);
	f = (l + 1) % 3;
	/* The leader: answered inside raft_read_index. */
	assert_int_equal(raft_read_index(c->r[l], 1), 0);
	drive(c, l);
	assert_int_equal(c->n_rs[l], 1);
	assert_int_equal(lease_reads(c, l), 1);
	/* A follower: one hop there and back, no round. */
	loud = c->loud_hbs;
	assert_int_equal(raft_read_index(c->r[f], 2), 0);
	deliver_all(c);
	assert_int_equal(c->n_rs[f], 1);
	assert_int_equal(c->rs[f][0].ctx, 2);
	assert_int_equal(c->loud_hbs, loud);
	assert_int_equal(lease_reads(c, l), 2);
	/* Followers cut for longer than the lease: no answer without them. */
	for (int i = 0; i < 3; i++)
		c->cut[i] = i != l;
	tick_all(c, 6);
	assert_int_equal(raft_read_index(c->r[l], 3), 0);
	deliver_all(c);
	assert_int_equal(c->n_rs[l], 1);
	for (int i = 0; i < 3; i++)
		c->cut[i] = false;
	tick_all(c, 1);
	assert_int_equal(c->n_rs[l], 2); /* the round's answer */
	assert_int_equal(lease_reads(c, l), 2);
	/* The next echoes renew it. */
	tick_all(c, 1);
	assert_int_equal(raft_read_index(c->r[l], 4), 0);
	drive(c, l);
	assert_int_equal(c->n_rs[l], 3);
	/* A tick gap drops it. */
	raft_tick_gap(c->r[l]);
	assert_int_equal(raft_read_index(c->r[l], 5), 0);
	drive(c, l);
	assert_int_equal(c->n_rs[l], 3);
	tick_all(c, 2);
	assert_int_equal(c->n_rs[l], 4);
	/* Once a transfer started, never again in this term. */
	c->cut[f] = true;
	assert_int_equal(raft_transfer_leadership(c->r[l], (raft_id)f + 1), 0);
	c->cut[f] = false;
	tick_all(c, 1);
	if (leader_of(c) == l) {
		assert_int_equal(raft_read_index(c->r[l], 6), 0);
		drive(c, l);
		assert_int_equal(lease_reads(c, l), 4);
	}
	cluster_free(c);
}

/*
 * The voters' side of the lease: a member that heard from the leader
 * within the election timeout neither campaigns on request nor votes
 * (not even after its term moved on).
 */
static void test_raft_lease_stickiness(void **state)
{
	struct cluster *c = cluster_new(3);
	struct raft_msg v = { 0 };
	struct raft_status st;
	int l, f, g;

	(void)state;
	l = elect(c);
	tick_all(c, 2);
	f = (l + 1) % 3;
	g = (l + 2) % 3;
	assert_int_equal(raft_campaign(c->r[f]), RAFT_EINLEASE);
	/* A vote request in a higher term: ignored while in lease. */
	raft_status(c->r[f], &st);
	v.type = RAFT_MSG_VOTE;
	v.from = (raft_id)g + 1;
	v.to = (raft_id)f + 1;
	v.term = st.term + 1;
	v.index = st.last_index;
	v.log_term = st.term;
	assert_int_equal(raft_step(c->r[f], &v), 0);
	raft_status(c->r[f], &st);
	assert_int_equal(st.vote, (raft_id)l + 1);
	/* Its term moved on through another message: still no vote. */
	v.type = RAFT_MSG_VOTE_RESP;
	v.reject = true;
	assert_int_equal(raft_step(c->r[f], &v), 0);
	raft_status(c->r[f], &st);
	assert_int_equal(st.term, v.term);
	v.type = RAFT_MSG_VOTE;
	v.reject = false;
	assert_int_equal(raft_step(c->r[f], &v), 0);
	raft_status(c->r[f], &st);
	assert_int_equal(st.vote, 0);
	cluster_free(c);
}

/*
 * Commit news: a follower that got its entries learns the commit as soon
 * as it advances, in one quiet heartbeat (no answer wanted), without
 * waiting for a tick; several entries committed together cost one news
 * message per follower; a follower asking for a read index gets the news
 * with the answer.
 */
static void test_raft_commit_news_immediate_and_batched(void **state)
{
	struct cluster *c = cluster_new_hb(3, 5);
	unsigned quiet, loud, resps;
	int l, f;

	(void)state;
	l = elect(c);
	tick_all(c, 2);
	f = (l + 1) % 3;
	/* Just after a periodic heartbeat, so no tick interferes. */
	loud = c->loud_hbs;
	for (int t = 0; t < 100 && c->loud_hbs == loud; t++)
		tick_all(c, 1);
	assert_true(c->loud_hbs > loud);
	propose_u64(c, l, 3);
	quiet = c->quiet_hbs;
	loud = c->loud_hbs;
	resps = c->hb_resps;
	deliver_all(c);
	assert_int_equal(c->applied_sum[l], 3);
	/* No tick passed: the news came with the commit, quietly. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(c->applied[i], c->applied[l]);
	assert_int_equal(c->quiet_hbs, quiet + 2);
	assert_int_equal(c->loud_hbs, loud);
	assert_int_equal(c->hb_resps, resps);
	/* Three entries proposed together: one news message per follower. */
	propose_u64(c, l, 1);
	propose_u64(c, l, 1);
	propose_u64(c, l, 1);
	quiet = c->quiet_hbs;
	deliver_all(c);
	assert_int_equal(c->applied_sum[l], 6);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c->applied[i], c->applied[l]);
	assert_int_equal(c->quiet_hbs, quiet + 2);
	/* A follower's read: index and commit arrive together. */
	propose_u64(c, l, 4);
	assert_int_equal(raft_read_index(c->r[f], 79), 0);
	deliver_all(c);
	assert_int_equal(c->n_rs[f], 1);
	assert_int_equal(c->rs[f][0].ctx, 79);
	assert_true(c->rs[f][0].index <= c->applied[f]);
	assert_int_equal(c->applied[f], c->applied[l]);
	cluster_free(c);
}

/*
 * One entry bigger than the in-flight byte budget fills the window by
 * bytes; if its append is lost, heartbeat answers must still let a retry
 * through (the window is full by bytes, not by count).
 */
static void test_raft_window_full_by_bytes_recovers(void **state)
{
	struct cluster *c = cluster_new_with(3, 1, 1000);
	uint8_t big[2000];
	uint64_t v = 11;
	int l, f;

	(void)state;
	l = elect(c);
	tick_all(c, 2);
	f = (l + 1) % 3;
	memset(big, 0, sizeof(big));
	memcpy(big, &v, sizeof(v));
	c->cut[f] = true;
	assert_int_equal(raft_propose(c->r[l], big, sizeof(big), NULL, NULL),
	    0);
	deliver_all(c); /* the append to f is lost; the other commits it */
	assert_int_equal(c->applied_sum[l], 11);
	c->cut[f] = false;
	tick_all(c, 20);
	assert_int_equal(c->applied_sum[f], 11);
	assert_int_equal(c->applied[f], c->applied[l]);
	cluster_free(c);
}

static void test_raft_leadership_transfer(void **state)
{
	struct cluster *c = cluster_new(3);
	int l, to;

	(void)state;
	l = elect(c);
	propose_u64(c, l, 1);
	tick_all(c, 2);
	to = (l + 2) % 3;
	assert_int_equal(raft_transfer_leadership(c->r[l], (raft_id)to + 1), 0);
	tick_all(c, 3);
	assert_int_equal(leader_of(c), to);
	cluster_free(c);
}

static void test_raft_snapshot_catches_up_lagging_member(void **state)
{
	struct cluster *c = cluster_new(3);
	struct raft_status st;
	int l, lag;
	uint64_t sum = 0;

	(void)state;
	l = elect(c);
	tick_all(c, 2);
	lag = (l + 1) % 3;
	c->cut[lag] = true;
	for (uint64_t v = 1; v <= 50; v++) {
		propose_u64(c, l, v);
		sum += v;
	}
	tick_all(c, 3);
	/* Both live members compact; the snapshot blob is the running sum
	 * padded to more than one chunk. */
	for (int i = 0; i < 3; i++) {
		uint8_t blob[100] = { 0 };

		if (i == lag)
			continue;
		memcpy(blob, &c->applied_sum[i], 8);
		assert_int_equal(raft_compact(c->r[i], c->applied[i], blob,
		                     sizeof(blob)),
		    0);
	}
	deliver_all(c);
	c->cut[lag] = false;
	tick_all(c, 30);
	assert_true(c->installed[lag]);
	assert_int_equal(c->applied_sum[lag], sum);
	propose_u64(c, leader_of(c), 1000);
	tick_all(c, 3);
	assert_int_equal(c->applied_sum[lag], sum + 1000);
	raft_status(c->r[lag], &st);
	assert_int_equal(st.commit, c->applied[lag]);
	cluster_free(c);
}

/*
 * raft_compact_buf() takes the caller's reference, does not copy (the core
 * holds the very bytes), and refuses a stale index leaving the reference
 * with the caller; a reference taken from a ready batch outlives the
 * core's; the member that holds nothing receives the snapshot in chunks
 * and installs it whole.
 */
static void test_raft_snapshot_bytes_are_shared(void **state)
{
	struct cluster *c = cluster_new(3);
	struct raft_snap_buf *kept[3] = { NULL };
	struct raft_snapshot_meta meta;
	int l, lag;
	uint64_t sum = 0, len;

	(void)state;
	l = elect(c);
	tick_all(c, 2);
	lag = (l + 1) % 3;
	c->cut[lag] = true;
	for (uint64_t v = 1; v <= 20; v++) {
		propose_u64(c, l, v);
		sum += v;
	}
	tick_all(c, 3);
	for (int i = 0; i < 3; i++) {
		uint8_t *blob;
		struct raft_snap_buf *b;

		if (i == lag)
			continue;
		blob = calloc(1, 300); /* many 16-byte chunks */
		assert_non_null(blob);
		memcpy(blob, &c->applied_sum[i], 8);
		b = raft_snap_buf_new(blob, 300);
		assert_non_null(b);
		assert_ptr_equal(raft_snap_buf_data(b), blob);
		assert_int_equal(raft_snap_buf_len(b), 300);
		kept[i] = raft_snap_buf_ref(b);
		assert_int_equal(raft_compact_buf(c->r[i], c->applied[i], b),
		    0);
		assert_ptr_equal(raft_snapshot_data(c->r[i], &len, NULL), blob);
		assert_int_equal(len, 300);
		/* Stale: refused, the reference stays ours. */
		assert_int_equal(raft_compact_buf(c->r[i], c->applied[i],
		                     kept[i]),
		    RAFT_ESTALE);
	}
	deliver_all(c);
	c->cut[lag] = false;
	tick_all(c, 60);
	assert_true(c->installed[lag]);
	assert_int_equal(c->applied_sum[lag], sum);
	assert_non_null(raft_snapshot_data(c->r[lag], &len, &meta));
	assert_int_equal(len, 300);
	/* Our references outlive the cores. */
	cluster_free(c);
	for (int i = 0; i < 3; i++) {
		if (kept[i] == NULL)
			continue;
		assert_memory_equal(raft_snap_buf_data(kept[i]), &sum, 8);
		raft_snap_buf_unref(kept[i]);
	}
	raft_snap_buf_unref(NULL); /* accepted */
}

static void test_raft_uncommitted_bound(void **state)
{
	struct cluster *c = cluster_new(3);
	struct raft *r;
	struct raft_config cfg = config(3, 1);
	uint8_t big[600] = { 0 };

	(void)state;
	cfg.max_uncommitted_bytes = 1000;
	assert_int_equal(raft_new(&cfg, NULL, &r), 0);
	raft_free(c->r[0]);
	c->r[0] = r;
	c->cut[1] = c->cut[2] = false;
	assert_int_equal(raft_campaign(r), 0);
	deliver_all(c);
	if (leader_of(c) != 0) {
		cluster_free(c);
		fail_msg("member 1 did not win its campaign");
	}
	c->cut[1] = c->cut[2] = true;
	assert_int_equal(raft_propose(r, big, sizeof(big), NULL, NULL), 0);
	assert_int_equal(raft_propose(r, big, sizeof(big), NULL, NULL),
	    RAFT_EBUSY);
	c->cut[1] = c->cut[2] = false;
	tick_all(c, 3);
	assert_int_equal(raft_propose(r, big, sizeof(big), NULL, NULL), 0);
	cluster_free(c);
}

static void test_raft_rejects_malformed_messages(void **state)
{
	struct cluster *c = cluster_new(3);
	struct raft_status st;
	struct raft_entry e = { .term = 9, .index = 5, .type = 1 };
	struct raft_msg m = { 0 };

	(void)state;
	/* Entries whose indices do not follow the previous index. */
	m.type = RAFT_MSG_APPEND;
	m.from = 2;
	m.to = 1;
	m.term = 3;
	m.index = 1;
	m.n_entries = 1;
	m.entries = &e;
	assert_int_equal(raft_step(c->r[0], &m), 0);
	/* A vote request from a stranger (a leader's messages are taken
	 * from anyone: raft/config.h C6), to someone else, with term 0,
	 * unknown type. */
	m.n_entries = 0;
	m.from = 9;
	m.type = RAFT_MSG_VOTE;
	assert_int_equal(raft_step(c->r[0], &m), 0);
	m.type = RAFT_MSG_APPEND;
	m.from = 2;
	m.to = 3;
	assert_int_equal(raft_step(c->r[0], &m), 0);
	m.to = 1;
	m.term = 0;
	assert_int_equal(raft_step(c->r[0], &m), 0);
	m.term = 3;
	m.type = 99;
	assert_int_equal(raft_step(c->r[0], &m), 0);
	raft_status(c->r[0], &st);
	assert_int_equal(st.dropped_msgs, 5);
	assert_int_equal(st.term, 0);
	cluster_free(c);
}

static void test_raft_unreachable_peer_is_probed(void **state)
{
	struct cluster *c = cluster_new(3);
	int l, f;

	(void)state;
	l = elect(c);
	propose_u64(c, l, 1);
	tick_all(c, 2);
	f = (l + 1) % 3;
	/* Cut f and tell the leader: it must stop pipelining to it (one
	 * probe until an answer) yet keep committing with the other.  The
	 * proposals come in separate batches: a pipelining leader would send
	 * f an append for each. */
	c->cut[f] = true;
	assert_int_equal(raft_report_unreachable(c->r[l], (raft_id)f + 1), 0);
	c->appends_to[f] = 0;
	for (uint64_t v = 2; v <= 20; v++) {
		propose_u64(c, l, v);
		deliver_all(c);
	}
	assert_true(c->appends_to[f] <= 1);
	tick_all(c, 2);
	assert_int_equal(c->applied_sum[(l + 2) % 3], 210);
	/* Reconnected, it catches up from the probe. */
	c->cut[f] = false;
	tick_all(c, 5);
	assert_int_equal(c->applied_sum[f], 210);
	/* Reports about strangers or on followers are ignored. */
	assert_int_equal(raft_report_unreachable(c->r[l], 99), 0);
	assert_int_equal(raft_report_unreachable(c->r[f], 1), 0);
	cluster_free(c);
}

static void test_raft_reports_discarded_suffix(void **state)
{
	struct cluster *c = cluster_new(3);
	struct raft_status st;
	raft_index first_lost;
	int l, l2 = -1;

	(void)state;
	l = elect(c);
	propose_u64(c, l, 1);
	tick_all(c, 2);
	/* The leader, cut off, appends three entries that cannot commit. */
	for (int i = 0; i < 3; i++)
		c->cut[i] = i == l;
	raft_status(c->r[l], &st);
	first_lost = st.last_index + 1;
	for (uint64_t v = 2; v <= 4; v++)
		propose_u64(c, l, v);
	deliver_all(c);
	/* The others elect a leader of their own and commit past them. */
	for (int t = 0; t < 100 && l2 < 0; t++) {
		tick_all(c, 1);
		for (int i = 0; i < 3; i++) {
			raft_status(c->r[i], &st);
			if (i != l && st.role == RAFT_LEADER)
				l2 = i;
		}
	}
	assert_true(l2 >= 0);
	propose_u64(c, l2, 100);
	tick_all(c, 2);
	assert_int_equal(c->truncated_from[l], 0);
	/* Healed: the old leader's suffix is replaced, and it says from where. */
	c->cut[l] = false;
	tick_all(c, 30);
	assert_int_equal(c->truncated_from[l], first_lost);
	assert_int_equal(c->applied_sum[l], c->applied_sum[l2]);
	assert_int_equal(c->truncated_from[l2], 0);
	cluster_free(c);
}

static void test_raft_restart_from_boot_state(void **state)
{
	struct raft_config cfg = config(3, 1);
	struct raft_entry ents[2] = {
		{ .term = 1, .index = 1, .type = RAFT_ENTRY_NOOP },
		{ .term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL },
	};
	struct raft_boot boot = { .hs = { .term = 2, .vote = 1 },
		.entries = ents,
		.n_entries = 2 };
	struct raft_status st;
	struct raft *r;

	(void)state;
	assert_int_equal(raft_new(&cfg, &boot, &r), 0);
	raft_status(r, &st);
	assert_int_equal(st.term, 2);
	assert_int_equal(st.vote, 1);
	assert_int_equal(st.last_index, 2);
	assert_int_equal(st.stable, 2);
	assert_int_equal(st.commit, 0);
	raft_free(r);
	/* Entries newer than the durable term (a crash between the log's
	 * sync and the hard state's rename): their term is adopted, with no
	 * vote, since a vote in it was never sent. */
	boot.hs.term = 1;
	assert_int_equal(raft_new(&cfg, &boot, &r), 0);
	raft_status(r, &st);
	assert_int_equal(st.term, 2);
	assert_int_equal(st.vote, 0);
	raft_free(r);
	/* A log that goes back in term is inconsistent. */
	ents[1].term = 0;
	boot.hs.term = 2;
	assert_int_equal(raft_new(&cfg, &boot, &r), -EINVAL);
}


/* ------------------------------------------------- membership changes */

/* @n members, the first @voters of them voters; the others start as
 * learners of their own bootstrap configuration (a joining member). */
static struct cluster *cluster_new_spares(int n, int voters)
{
	struct cluster *c = calloc(1, sizeof(*c));

	c->n = n;
	c->q = calloc(Q_MAX, sizeof(*c->q));
	for (int i = 0; i < n; i++) {
		struct raft_config cfg = config(voters, i + 1);

		if (i >= voters) {
			cfg.n_learners = 1;
			cfg.learners[0] = (raft_id)i + 1;
		}
		assert_int_equal(raft_new(&cfg, NULL, &c->r[i]), 0);
	}
	return c;
}

static void assert_conf(struct raft *r, uint32_t nv, uint32_t nl)
{
	struct raft_conf conf;

	raft_get_conf(r, &conf, NULL);
	assert_int_equal(conf.n_voters, nv);
	assert_int_equal(conf.n_learners, nl);
}

static void test_raft_conf_change_rules(void **state)
{
	struct cluster *c = cluster_new_spares(5, 3);
	struct raft_status st;
	raft_index idx = 0;
	int l;

	(void)state;
	l = elect(c);
	tick_all(c, 3); /* the no-op commits */
	assert_int_equal(raft_propose_conf_change(c->r[l],
	                     RAFT_CONF_ADD_LEARNER, 4, "n4", 2, &idx),
	    0);
	assert_true(idx > 0);
	/* In force on the leader at once; a second change waits. */
	assert_conf(c->r[l], 3, 1);
	assert_int_equal(raft_propose_conf_change(c->r[l],
	                     RAFT_CONF_ADD_LEARNER, 5, NULL, 0, NULL),
	    RAFT_ECONFPENDING);
	tick_all(c, 5);
	for (int i = 0; i < 4; i++)
		assert_conf(c->r[i], 3, 1);
	/* The learner replicates but does not vote. */
	raft_status(c->r[3], &st);
	assert_false(st.voter);
	assert_int_equal(st.conf_index, idx);
	assert_int_equal(c->applied[3], c->applied[l]);
	/* Refusals. */
	assert_int_equal(raft_propose_conf_change(c->r[l],
	                     RAFT_CONF_ADD_LEARNER, 4, NULL, 0, NULL),
	    -EEXIST);
	assert_int_equal(raft_propose_conf_change(c->r[l], RAFT_CONF_PROMOTE, 1,
	                     NULL, 0, NULL),
	    -EEXIST);
	assert_int_equal(raft_propose_conf_change(c->r[l], RAFT_CONF_PROMOTE, 5,
	                     NULL, 0, NULL),
	    -ENOENT);
	assert_int_equal(raft_propose_conf_change(c->r[l], RAFT_CONF_REMOVE, 9,
	                     NULL, 0, NULL),
	    -ENOENT);
	assert_int_equal(raft_propose_conf_change(c->r[l], 99, 4, NULL, 0,
	                     NULL),
	    -EINVAL);
	assert_int_equal(raft_propose_conf_change(c->r[(l + 1) % 3],
	                     RAFT_CONF_PROMOTE, 4, NULL, 0, NULL),
	    RAFT_ENOTLEADER);
	/* A learner that lags cannot be promoted until it catches up. */
	c->cut[3] = true;
	propose_u64(c, l, 5);
	tick_all(c, 3);
	assert_int_equal(raft_propose_conf_change(c->r[l], RAFT_CONF_PROMOTE, 4,
	                     NULL, 0, NULL),
	    RAFT_ENOTCAUGHTUP);
	c->cut[3] = false;
	tick_all(c, 5);
	assert_int_equal(raft_propose_conf_change(c->r[l], RAFT_CONF_PROMOTE, 4,
	                     NULL, 0, NULL),
	    0);
	tick_all(c, 5);
	raft_status(c->r[3], &st);
	assert_true(st.voter);
	for (int i = 0; i < 4; i++)
		assert_conf(c->r[i], 4, 0);
	/* Member 5 never heard of any of it and never campaigned. */
	raft_status(c->r[4], &st);
	assert_int_equal(st.term, 0);
	assert_false(st.voter);
	cluster_free(c);
}

static void test_raft_conf_learner_not_in_quorum(void **state)
{
	struct cluster *c = cluster_new_spares(4, 3);
	struct raft_status st;
	raft_index before;
	int l;

	(void)state;
	l = elect(c);
	tick_all(c, 3);
	assert_int_equal(raft_propose_conf_change(c->r[l],
	                     RAFT_CONF_ADD_LEARNER, 4, NULL, 0, NULL),
	    0);
	tick_all(c, 3);
	raft_status(c->r[l], &st);
	before = st.commit;
	/* The two other voters are cut: the learner's acks make no quorum,
	 * and removing a live-looking voter is refused for lack of one. */
	for (int i = 0; i < 3; i++)
		if (i != l)
			c->cut[i] = true;
	propose_u64(c, l, 1);
	tick_all(c, 3);
	raft_status(c->r[l], &st);
	assert_int_equal(st.commit, before);
	assert_true(st.last_index > before);
	tick_all(c, 30); /* check-quorum: the leader steps down */
	raft_status(c->r[l], &st);
	assert_int_not_equal(st.role, RAFT_LEADER);
	/* The learner never campaigns, however long it hears nothing. */
	c->cut[l] = true;
	c->cut[3] = true;
	raft_status(c->r[3], &st);
	before = st.term;
	tick_all(c, 100);
	raft_status(c->r[3], &st);
	assert_int_equal(st.term, before);
	assert_int_equal(st.role, RAFT_FOLLOWER);
	cluster_free(c);
}

static void test_raft_conf_removed_leader_steps_down(void **state)
{
	struct cluster *c = cluster_new(3);
	struct raft_status st;
	raft_term term;
	int l, l2;

	(void)state;
	l = elect(c);
	tick_all(c, 3);
	assert_int_equal(raft_propose_conf_change(c->r[l], RAFT_CONF_REMOVE,
	                     (raft_id)l + 1, NULL, 0, NULL),
	    0);
	/* Still leading (without counting itself) until it commits. */
	raft_status(c->r[l], &st);
	assert_int_equal(st.role, RAFT_LEADER);
	assert_false(st.voter);
	propose_u64(c, l, 7);
	tick_all(c, 30);
	raft_status(c->r[l], &st);
	assert_int_equal(st.role, RAFT_FOLLOWER);
	l2 = leader_of(c);
	assert_true(l2 >= 0 && l2 != l);
	for (int i = 0; i < 3; i++) {
		assert_conf(c->r[i], 2, 0);
		assert_int_equal(c->applied_sum[i], 7);
	}
	/* The new leader stops talking to the removed member, which stays
	 * quiet (in its old term): no term moves anywhere. */
	raft_status(c->r[l2], &st);
	term = st.term;
	tick_all(c, 200);
	for (int i = 0; i < 3; i++) {
		raft_status(c->r[i], &st);
		if (i == l)
			assert_true(st.term < term);
		else
			assert_int_equal(st.term, term);
	}
	assert_int_equal(leader_of(c), l2);
	/* And a cluster of one refuses to lose its last voter. */
	cluster_free(c);
	c = cluster_new(1);
	l = elect(c);
	deliver_all(c);
	assert_int_equal(raft_propose_conf_change(c->r[l], RAFT_CONF_REMOVE, 1,
	                     NULL, 0, NULL),
	    RAFT_ELASTVOTER);
	cluster_free(c);
}

/* A leader removes itself, loses its only follower before the change
 * reaches it, steps down (check-quorum): the follower still counts it in
 * its configuration and cannot win without it, so it must campaign in the
 * configuration before its removal (raft/config.h C8), then finish. */
static void test_raft_conf_removed_leader_cut_off_recovers(void **state)
{
	struct cluster *c = cluster_new(2);
	struct raft_status st;
	int l, f;

	(void)state;
	l = elect(c);
	f = 1 - l;
	tick_all(c, 3);
	c->cut[f] = true;
	assert_int_equal(raft_propose_conf_change(c->r[l], RAFT_CONF_REMOVE,
	                     (raft_id)l + 1, NULL, 0, NULL),
	    0);
	tick_all(c, 30);
	raft_status(c->r[l], &st);
	assert_int_not_equal(st.role, RAFT_LEADER);
	c->cut[f] = false;
	tick_all(c, 100);
	/* The change committed and the follower leads alone. */
	raft_status(c->r[f], &st);
	assert_int_equal(st.role, RAFT_LEADER);
	assert_true(st.voter);
	assert_conf(c->r[f], 1, 0);
	raft_status(c->r[l], &st);
	assert_int_not_equal(st.role, RAFT_LEADER);
	propose_u64(c, f, 11);
	tick_all(c, 3);
	assert_int_equal(c->applied_sum[f], 11);
	cluster_free(c);
}

static struct raft_entry conf_entry(raft_term term, raft_index index, int type,
    raft_id id, const struct raft_conf *conf)
{
	struct raft_entry e = { .term = term,
		.index = index,
		.type = RAFT_ENTRY_CONF };

	assert_int_equal(config_encode(type, id, conf, "x", 1, &e.data, &e.len),
	    0);
	return e;
}

static void test_raft_conf_from_log_snapshot_and_truncation(void **state)
{
	struct raft_config cfg = config(3, 2);
	struct raft_conf c3 = { .n_voters = 3, .voters = { 1, 2, 3 } };
	struct raft_conf c4 = c3, got;
	struct raft_conf_change cc;
	struct raft_entry ents[2];
	struct raft_boot boot = { .hs = { .term = 1 } };
	struct raft_msg m = { 0 };
	struct raft_ready rd;
	raft_index ci;
	struct raft *r;

	(void)state;
	c4.n_learners = 1;
	c4.learners[0] = 4;
	ents[0] = (struct raft_entry){ .term = 1,
		.index = 1,
		.type = RAFT_ENTRY_NOOP };
	ents[1] = conf_entry(1, 2, RAFT_CONF_ADD_LEARNER, 4, &c4);
	assert_int_equal(raft_conf_change_decode(&ents[1], &cc), 0);
	assert_int_equal(cc.type, RAFT_CONF_ADD_LEARNER);
	assert_int_equal(cc.id, 4);
	assert_int_equal(cc.ctx_len, 1);
	assert_true(config_equal(&cc.conf, &c4));
	/* Restart: the latest change in the log is in force. */
	boot.entries = ents;
	boot.n_entries = 2;
	assert_int_equal(raft_new(&cfg, &boot, &r), 0);
	raft_get_conf(r, &got, &ci);
	assert_true(config_equal(&got, &c4));
	assert_int_equal(ci, 2);
	assert_true(raft_ready(r, &rd));
	assert_true(rd.conf_changed);
	assert_int_equal(rd.conf_index, 2);
	raft_advance(r, &rd);
	/* A leader of term 2 replaces index 2: the change is undone. */
	m.type = RAFT_MSG_APPEND;
	m.from = 3;
	m.to = 2;
	m.term = 2;
	m.index = 1;
	m.log_term = 1;
	m.n_entries = 1;
	struct raft_entry noop = { .term = 2, .index = 2, .type = 2 };
	m.entries = &noop;
	assert_int_equal(raft_step(r, &m), 0);
	raft_get_conf(r, &got, &ci);
	assert_true(config_equal(&got, &c3));
	assert_int_equal(ci, 0);
	assert_true(raft_ready(r, &rd));
	assert_true(rd.conf_changed);
	assert_int_equal(rd.truncated_from, 2);
	raft_advance(r, &rd);
	raft_free(r);
	/* A malformed change in the durable log is refused. */
	ents[1].data[0] = 9;
	assert_int_equal(raft_new(&cfg, &boot, &r), -EINVAL);
	ents[1].data[0] = 1;
	/* From a snapshot with learners, and no change after it. */
	boot.has_snapshot = true;
	boot.snap.index = 2;
	boot.snap.term = 1;
	config_to_meta(&c4, &boot.snap);
	boot.entries = NULL;
	boot.n_entries = 0;
	assert_int_equal(raft_new(&cfg, &boot, &r), 0);
	raft_get_conf(r, &got, &ci);
	assert_true(config_equal(&got, &c4));
	assert_int_equal(ci, 2);
	raft_free(r);
	free(ents[1].data);
}

static void test_raft_conf_in_compacted_snapshot(void **state)
{
	struct cluster *c = cluster_new_spares(4, 3);
	struct raft_snapshot_meta meta;
	uint8_t blob[8] = { 0 };
	int l;

	(void)state;
	l = elect(c);
	tick_all(c, 3);
	assert_int_equal(raft_propose_conf_change(c->r[l],
	                     RAFT_CONF_ADD_LEARNER, 4, NULL, 0, NULL),
	    0);
	tick_all(c, 3);
	propose_u64(c, l, 3);
	tick_all(c, 3);
	assert_int_equal(raft_compact(c->r[l], c->applied[l], blob,
	                     sizeof(blob)),
	    0);
	raft_snapshot_data(c->r[l], NULL, &meta);
	assert_int_equal(meta.n_voters, 3);
	assert_int_equal(meta.n_learners, 1);
	assert_int_equal(meta.learners[0], 4);
	assert_conf(c->r[l], 3, 1);
	cluster_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raft_elects_one_leader_and_replicates),
		cmocka_unit_test(test_raft_single_member_commits_alone),
		cmocka_unit_test(test_raft_no_apply_before_durable),
		cmocka_unit_test(test_raft_minority_cannot_commit),
		cmocka_unit_test(test_raft_read_index_needs_heartbeat_round),
		cmocka_unit_test(test_raft_commit_news_immediate_and_batched),
		cmocka_unit_test(test_raft_lease_read),
		cmocka_unit_test(test_raft_lease_stickiness),
		cmocka_unit_test(test_raft_window_full_by_bytes_recovers),
		cmocka_unit_test(test_raft_leadership_transfer),
		cmocka_unit_test(test_raft_snapshot_catches_up_lagging_member),
		cmocka_unit_test(test_raft_snapshot_bytes_are_shared),
		cmocka_unit_test(test_raft_uncommitted_bound),
		cmocka_unit_test(test_raft_rejects_malformed_messages),
		cmocka_unit_test(test_raft_unreachable_peer_is_probed),
		cmocka_unit_test(test_raft_reports_discarded_suffix),
		cmocka_unit_test(test_raft_restart_from_boot_state),
		cmocka_unit_test(test_raft_conf_change_rules),
		cmocka_unit_test(test_raft_conf_learner_not_in_quorum),
		cmocka_unit_test(test_raft_conf_removed_leader_steps_down),
		cmocka_unit_test(
		    test_raft_conf_removed_leader_cut_off_recovers),
		cmocka_unit_test(
		    test_raft_conf_from_log_snapshot_and_truncation),
		cmocka_unit_test(test_raft_conf_in_compacted_snapshot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
