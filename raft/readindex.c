/*
 * readindex.c - linearizable read points without writing the log
 * (thesis 6.4, "ReadIndex").
 *
 * On the leader, a read request is answered with read index = commit once
 *   1. the leader has committed an entry of its own term (before that its
 *      commit index may lag behind what an earlier leader committed), and
 *   2. a heartbeat round started after the request was acknowledged by a
 *      majority, proving no newer leader existed when the read arrived.
 * Requests that arrive together share one heartbeat round (batching):
 * rounds are numbered, heartbeats carry the latest round in ctx, followers
 * echo it, and an echo of round n confirms every round <= n.  At most one
 * extra round is in flight: requests arriving meanwhile share the next.
 *
 * On a follower, a request is forwarded to the leader (READ_INDEX); the
 * leader runs the same protocol and answers READ_INDEX_RESP with the index;
 * the follower may then serve the read locally once it has applied that
 * index.  Anything that cannot be answered (no leader, leadership lost,
 * no answer within two election timeouts) is reported in read_failed so
 * the caller retries.
 *
 * Lease reads (thesis 6.4.1; on unless cfg.disable_lease_read or
 * disable_check_quorum).  A leader that has committed an entry of its
 * term and whose heartbeats a quorum of the current configuration's
 * voters acknowledged recently answers at once, with read index = commit
 * and no round; a follower's forwarded request is then answered in one
 * hop.  Precisely: every periodic heartbeat starts a new round; the
 * leader remembers the tick each round was first sent (lease_round_tick)
 * and, per voter, the send tick t_i of the newest round it echoed; at
 * tick count T the lease holds while T - t_i < L (L = lease_ticks) for a
 * quorum of voters (the leader counts itself, if a voter).
 *
 * Why no other leader can have committed anything when such a read is
 * answered (so the commit index is at least every index committed before
 * the read began, as with a round):
 *
 *  1. Stickiness (election.c; every member with check-quorum on, lease
 *     reads on or off): a member that heard from a leader of its term (or
 *     restarted) grants no vote and no pre-vote, and does not campaign,
 *     until election_tick of its own ticks have passed, whatever
 *     happens to its term meanwhile; only a leadership transfer bypasses
 *     it, and a leader that starts one (the only source of TIMEOUT_NOW in
 *     its term) stops lease reads for the rest of the term (lease_off).
 *     raft_campaign() is refused within that window too.
 *  2. Time: voter v received the heartbeat sent at leader tick t_i at
 *     real time >= the send, so v is sticky until at least
 *     send + (election_tick - 1) * p_v (its first tick may come at once;
 *     p_v = v's tick period).  The leader answers at count T < t_i + L,
 *     i.e. within L * p_l of the send.  With L = (election_tick - 1) *
 *     2 / 3 (default), L * p_l <= (election_tick - 1) * p_v whenever
 *     clock rates differ by at most 1.5x: no v of that quorum has voted
 *     for anyone else yet.  The driver must tick for all time that
 *     passed before it calls raft_read_index or steps a message
 *     (raft/member/node.c catches up first), or call raft_tick_gap(),
 *     which drops the lease, when it skips ticks; a stalled leader thus
 *     never believes a lease that expired while it was stopped.
 *  3. Quorums: a newer leader needs votes of a quorum of its own
 *     configuration, and must hold our committed entry of this term (4.,
 *     leader completeness).  Single-server changes (config.h) and "a
 *     change is appended only once the previous one and an entry of the
 *     leader's term committed" mean its configuration is then either ours
 *     (the latest in our log, counted above) or the committed one before
 *     it, and any majorities of two configurations one server apart
 *     intersect; so some voter of our lease quorum must have voted for
 *     it, which (1, 2) has not happened.  A leader that is not a voter
 *     of its configuration (removing itself) takes no lease.  The voters
 *     that acknowledged are counted by id in the configuration in force
 *     at read time; what they promised holds whatever the configuration.
 *  4. Log: the lease also needs an entry of our term committed, so our
 *     commit index covers every earlier leader's commits (as in 1.).
 * Any new leader therefore comes after the read, and so does anything it
 * commits.  Contracts: readindex.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft_int.h"
#include "raft/readindex.h"
#include "raft/replication.h"

static int grow(void **p, uint32_t *cap, uint32_t n, size_t size)
{
	void *q;
	uint32_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 8;
	q = realloc(*p, c * size);
	if (q == NULL)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static int push_read_state(struct raft *r, uint64_t ctx, raft_index index)
{
	int rv = grow((void **)&r->rs, &r->cap_rs, r->n_rs, sizeof(*r->rs));

	if (rv != 0)
		return rv;
	r->rs[r->n_rs].ctx = ctx;
	r->rs[r->n_rs].index = index;
	r->n_rs++;
	return 0;
}

static int push_read_failed(struct raft *r, uint64_t ctx)
{
	int rv = grow((void **)&r->rf, &r->cap_rf, r->n_rf, sizeof(*r->rf));

	if (rv != 0)
		return rv;
	r->rf[r->n_rf++] = ctx;
	return 0;
}

static int answer(struct raft *r, const struct pending_read *p, bool ok)
{
	struct raft_msg m = { 0 };
	int i, rv;

	if (p->from == 0)
		return ok ? push_read_state(r, p->ctx, p->index)
		          : push_read_failed(r, p->ctx);
	m.type = RAFT_MSG_READ_INDEX_RESP;
	m.to = p->from;
	m.ctx = p->ctx;
	m.index = p->index;
	m.reject = !ok;
	rv = raft_send(r, &m, 0);
	/* The follower serves the read once it has applied the index: tell
	 * it the commit now rather than at the next tick. */
	i = raft_member_index(r, p->from);
	if (rv == 0 && ok && r->role == RAFT_LEADER && i >= 0)
		rv = replication_commit_news(r, (uint32_t)i);
	return rv;
}

/* The round new requests join: the one not yet broadcast, or a new one. */
static uint64_t current_round(struct raft *r)
{
	if (!r->read_round_unsent) {
		r->read_round++;
		r->read_round_unsent = true;
	}
	return r->read_round;
}

static bool committed_in_term(const struct raft *r)
{
	return rlog_term_or_zero(&r->log, r->commit) == r->term;
}

static unsigned lease_ticks(const struct raft *r)
{
	if (r->cfg.lease_ticks > 0)
		return r->cfg.lease_ticks;
	return (r->cfg.election_tick - 1) * 2 / 3;
}

bool readindex_lease_on(const struct raft *r)
{
	return !r->cfg.disable_lease_read && !r->cfg.disable_check_quorum &&
	    lease_ticks(r) > 0;
}

/* Leader: may read index requests be answered from the lease right now? */
static bool lease_valid(const struct raft *r)
{
	uint32_t n = 0;

	if (!readindex_lease_on(r) || r->lease_off || r->transferee != 0 ||
	    !raft_self_voter(r) || !committed_in_term(r))
		return false;
	for (uint32_t i = 0; i < r->conf.n_voters; i++)
		n += i == r->self_idx ||
		    (r->lease_from[i] != 0 &&
		        r->now_ticks - (r->lease_from[i] - 1) < lease_ticks(r));
	return n >= raft_quorum(r);
}

uint64_t readindex_heartbeat_round(struct raft *r)
{
	return readindex_lease_on(r) ? current_round(r) : r->read_round;
}

void readindex_round_sent(struct raft *r, uint64_t round)
{
	uint32_t slot = (uint32_t)(round % LEASE_RING);

	/* The first send counts: an echo may answer it. */
	if (round == 0 || r->lease_round[slot] == round)
		return;
	r->lease_round[slot] = round;
	r->lease_round_tick[slot] = r->now_ticks;
}

void readindex_lease_drop(struct raft *r)
{
	memset(r->lease_from, 0, sizeof(r->lease_from));
	memset(r->lease_round, 0, sizeof(r->lease_round));
}

static bool confirmed(const struct raft *r, uint64_t round)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < r->conf.n_voters; i++)
		n += i == r->self_idx || r->read_acks[i] >= round;
	return n >= raft_quorum(r);
}

/* We alone are a quorum: reads need no heartbeat round. */
static bool solo(const struct raft *r)
{
	return r->conf.n_voters == 1 && raft_self_voter(r);
}

static int release_confirmed(struct raft *r)
{
	uint32_t done = 0;
	int rv = 0;

	while (done < r->n_reads && r->reads[done].round != 0 &&
	    confirmed(r, r->reads[done].round)) {
		rv = answer(r, &r->reads[done], true);
		if (rv != 0)
			break;
		done++;
	}
	if (done > 0) {
		memmove(r->reads, r->reads + done,
		    (r->n_reads - done) * sizeof(*r->reads));
		r->n_reads -= done;
	}
	return rv;
}

int readindex_request(struct raft *r, uint64_t ctx, raft_id from)
{
	struct pending_read *p;
	int rv;

	if (lease_valid(r)) {
		struct pending_read now = { .ctx = ctx,
			.from = from,
			.index = r->commit };

		r->lease_reads++;
		return answer(r, &now, true);
	}
	rv = grow((void **)&r->reads, &r->cap_reads, r->n_reads,
	    sizeof(*r->reads));
	if (rv != 0)
		return rv;
	p = &r->reads[r->n_reads++];
	p->ctx = ctx;
	p->from = from;
	p->index = 0;
	p->round = 0;
	if (!committed_in_term(r))
		return 0; /* waits for readindex_on_commit_in_term */
	p->index = r->commit;
	p->round = current_round(r);
	return solo(r) ? release_confirmed(r) : 0;
}

void readindex_on_commit_in_term(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_reads; i++) {
		if (r->reads[i].round != 0)
			continue;
		r->reads[i].index = r->commit;
		r->reads[i].round = current_round(r);
	}
	if (solo(r))
		(void)release_confirmed(r);
}

bool readindex_round_wanted(struct raft *r, uint64_t *round)
{
	if (!r->read_round_unsent)
		return false;
	/* One extra round in flight at a time: reads arriving meanwhile wait
	 * for it to be confirmed and then share the next round (or ride the
	 * next periodic heartbeat, which always carries the latest round, so
	 * a lost round cannot strand them). */
	if (r->read_round_sent != 0 && !confirmed(r, r->read_round_sent))
		return false;
	*round = r->read_round;
	return !solo(r);
}

int readindex_handle_heartbeat_ack(struct raft *r, uint32_t from_idx,
    uint64_t ctx)
{
	uint32_t slot = (uint32_t)(ctx % LEASE_RING);

	if (ctx > r->read_round)
		return 0; /* never issued: ignore */
	if (ctx > r->read_acks[from_idx])
		r->read_acks[from_idx] = ctx;
	if (ctx != 0 && r->lease_round[slot] == ctx &&
	    r->lease_round_tick[slot] + 1 > r->lease_from[from_idx])
		r->lease_from[from_idx] = r->lease_round_tick[slot] + 1;
	return release_confirmed(r);
}

int readindex_handle_forward(struct raft *r, const struct raft_msg *m)
{
	struct pending_read p = { .ctx = m->ctx, .from = m->from };

	if (r->role != RAFT_LEADER || m->ctx == 0)
		return answer(r, &p, false);
	return readindex_request(r, m->ctx, m->from);
}

int readindex_handle_forward_resp(struct raft *r, const struct raft_msg *m)
{
	for (uint32_t i = 0; i < r->n_fwd; i++) {
		if (r->fwd[i].ctx != m->ctx)
			continue;
		r->fwd[i] = r->fwd[--r->n_fwd];
		return m->reject ? push_read_failed(r, m->ctx)
		                 : push_read_state(r, m->ctx, m->index);
	}
	return 0; /* not ours, or already given up */
}

void readindex_fail_all(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_reads; i++)
		(void)answer(r, &r->reads[i], false);
	r->n_reads = 0;
	r->read_round_unsent = false;
	for (uint32_t i = 0; i < r->n_fwd; i++)
		(void)push_read_failed(r, r->fwd[i].ctx);
	r->n_fwd = 0;
}

int readindex_tick(struct raft *r)
{
	uint32_t i = 0;
	int rv = 0;

	while (i < r->n_fwd) {
		if (++r->fwd[i].age <= 2 * r->cfg.election_tick) {
			i++;
			continue;
		}
		rv = push_read_failed(r, r->fwd[i].ctx);
		r->fwd[i] = r->fwd[--r->n_fwd];
	}
	return rv;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
	struct raft_msg m = { 0 };
	int rv;

	if (ctx == 0)
		return -EINVAL;
	if (r->role == RAFT_LEADER)
		return readindex_request(r, ctx, 0);
	if (r->leader == 0)
		return push_read_failed(r, ctx);
	rv = grow((void **)&r->fwd, &r->cap_fwd, r->n_fwd, sizeof(*r->fwd));
	if (rv != 0)
		return rv;
	m.type = RAFT_MSG_READ_INDEX;
	m.to = r->leader;
	m.ctx = ctx;
	rv = raft_send(r, &m, 0);
	if (rv != 0)
		return rv;
	r->fwd[r->n_fwd].ctx = ctx;
	r->fwd[r->n_fwd].age = 0;
	r->n_fwd++;
	return 0;
}
