/*
 * raft.c - life cycle, role changes, the step dispatcher and the
 * ready/advance hand-off of the pure Raft core.
 *
 * Roles and the functions performing each transition (Raft paper 5.2 and
 * Figure 4; pre-vote from the thesis 9.6, check-quorum 6.2, leadership
 * transfer 3.10).  election.c decides when; the functions here change
 * the state:
 *
 *   non-leader --(election timeout)-----> PRECANDIDATE raft_become_candidate
 *   PRECANDIDATE --(pre-vote quorum)----> CANDIDATE    raft_become_candidate
 *   non-leader --(timeout without
 *       pre-vote, or TIMEOUT_NOW)-------> CANDIDATE    raft_become_candidate
 *   CANDIDATE --(vote quorum)-----------> LEADER       raft_become_leader
 *   any --(higher term, a current
 *          leader, refusals)------------> FOLLOWER     raft_become_follower
 *   LEADER --(check-quorum fails)-------> FOLLOWER     raft_become_follower
 *
 * Every incoming message first passes the term checks of Figure 2 here
 * (step_term), then goes to the handler of its type.  Messages from a
 * stale term are mostly ignored; the exceptions answer so that a member
 * stuck in a higher term, or a deposed leader, learns the truth.
 *
 * Outputs are queued (raft_send) and handed out by raft_ready(), which is
 * also where new entries are broadcast: every proposal made since the last
 * batch travels in one AppendEntries per follower (batching).
 *
 * Contracts: raft.h (the public API), raft_int.h (helpers shared with the
 * rest of the core).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/config.h"
#include "raft/election.h"
#include "raft/raft_int.h"
#include "raft/readindex.h"
#include "raft/replication.h"
#include "raft/snapshot.h"

void raft_trace(struct raft *r, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (r->cfg.trace == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	r->cfg.trace(r->cfg.trace_arg, r->id, buf);
}

void raft_config_defaults(struct raft_config *c, raft_id id,
    const raft_id *voters, uint32_t n_voters)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->n_voters = n_voters > RAFT_MAX_MEMBERS ? RAFT_MAX_MEMBERS : n_voters;
	memcpy(c->voters, voters, c->n_voters * sizeof(*voters));
	c->election_tick = 10;
	c->heartbeat_tick = 1;
	c->seed = id;
	c->max_msg_entries = 256;
	c->max_msg_bytes = 1u << 20;
	c->max_inflight_msgs = 64;
	c->max_inflight_bytes = 8u << 20;
	c->max_uncommitted_bytes = 64u << 20;
	c->max_entry_bytes = 32u << 20;
	c->snapshot_chunk_bytes = 256u << 10;
}

int raft_voter_index(const struct raft *r, raft_id id)
{
	int i = config_member_index(&r->conf, id);

	return i >= 0 && (uint32_t)i < r->conf.n_voters ? i : -1;
}

int raft_member_index(const struct raft *r, raft_id id)
{
	return config_member_index(&r->conf, id);
}

uint32_t raft_quorum(const struct raft *r)
{
	return config_quorum(&r->conf);
}

bool raft_self_voter(const struct raft *r)
{
	return r->self_idx < r->conf.n_voters;
}

/* ---------------------------------------------------------- membership */

void raft_conf_set(struct raft *r, const struct raft_conf *c, raft_index index)
{
	struct progress old[RAFT_MAX_MEMBERS];
	int8_t old_votes[RAFT_MAX_MEMBERS];
	uint64_t old_acks[RAFT_MAX_MEMBERS];
	uint64_t old_lease[RAFT_MAX_MEMBERS];
	bool used[RAFT_MAX_MEMBERS] = { false };
	bool placed[RAFT_MAX_MEMBERS] = { false };
	uint32_t n = config_n_members(c), j, k;
	raft_index last = rlog_last_index(&r->log);
	int self;

	memcpy(old, r->prs, sizeof(old));
	memcpy(old_votes, r->votes, sizeof(old_votes));
	memcpy(old_acks, r->read_acks, sizeof(old_acks));
	memcpy(old_lease, r->lease_from, sizeof(old_lease));
	/* Members that stay keep their state (a promoted learner keeps its
	 * progress); the progress structs only move, so every slot keeps
	 * the window it was allocated with. */
	for (k = 0; k < n; k++) {
		raft_id id = config_member_id(c, k);

		for (j = 0; j < r->n_members; j++) {
			if (used[j] || old[j].id != id)
				continue;
			r->prs[k] = old[j];
			r->votes[k] = old_votes[j];
			r->read_acks[k] = old_acks[j];
			r->lease_from[k] = old_lease[j];
			used[j] = placed[k] = true;
			break;
		}
	}
	j = 0;
	for (k = 0; k < RAFT_MAX_MEMBERS; k++) {
		if (k < n && placed[k])
			continue;
		while (used[j])
			j++;
		used[j] = true;
		r->prs[k] = old[j];
		r->prs[k].id = k < n ? config_member_id(c, k) : 0;
		progress_reset(&r->prs[k], last);
		r->votes[k] = 0;
		r->read_acks[k] = 0;
		r->lease_from[k] = 0;
	}
	r->conf = *c;
	r->conf_index = index;
	r->n_members = n;
	self = config_member_index(c, r->id);
	r->self_idx = self < 0 ? NO_MEMBER : (uint32_t)self;
	if (r->role == RAFT_LEADER && self >= 0) {
		r->prs[self].match = r->stable;
		r->prs[self].recent_active = true;
	}
	r->conf_out = false;
	r->prev_checked = 0;
	raft_trace(r, "configuration at %llu: %u voters, %u learners%s",
	    (unsigned long long)index, c->n_voters, c->n_learners,
	    self < 0                            ? " (not a member)"
	        : (uint32_t)self >= c->n_voters ? " (learner)"
	                                        : "");
}

void raft_conf_at(const struct raft *r, raft_index index, struct raft_conf *c,
    raft_index *conf_index)
{
	struct raft_conf_change cc;

	if (index > rlog_last_index(&r->log))
		index = rlog_last_index(&r->log);
	for (raft_index i = index; i > r->log.snap_index; i--) {
		const struct raft_entry *e = rlog_get(&r->log, i);

		if (e->type == RAFT_ENTRY_CONF &&
		    raft_conf_change_decode(e, &cc) == 0) {
			*c = cc.conf;
			*conf_index = i;
			return;
		}
	}
	*c = r->snap_conf;
	*conf_index = r->snap_conf_index;
}

void raft_conf_recompute(struct raft *r)
{
	struct raft_conf c;
	raft_index idx;

	raft_conf_at(r, rlog_last_index(&r->log), &c, &idx);
	if (idx != r->conf_index || !config_equal(&c, &r->conf))
		raft_conf_set(r, &c, idx);
}

void raft_get_conf(const struct raft *r, struct raft_conf *conf,
    raft_index *index)
{
	if (conf != NULL)
		*conf = r->conf;
	if (index != NULL)
		*index = r->conf_index;
}

/* Voters of @c the leader heard from in this check-quorum round or the
 * previous one (and itself, if a voter of @c) make a quorum of @c. */
static bool quorum_alive(const struct raft *r, const struct raft_conf *c)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->n_voters; i++) {
		int k = raft_member_index(r, c->voters[i]);

		if (c->voters[i] == r->id)
			n++;
		else if (k >= 0 &&
		    (r->prs[k].recent_active || r->prs[k].active_prev))
			n++;
	}
	return n >= config_quorum(c);
}

int raft_propose_conf_change(struct raft *r, int type, raft_id id,
    const void *ctx, uint32_t ctx_len, raft_index *index)
{
	struct raft_conf nc;
	raft_index idx;
	uint8_t *buf;
	uint32_t len;
	int rv, k;

	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	if (r->transferee != 0)
		return RAFT_ETRANSFER;
	/* C2 and C3 of config.h. */
	if (r->conf_index > r->commit ||
	    rlog_term_or_zero(&r->log, r->commit) != r->term)
		return RAFT_ECONFPENDING;
	rv = config_apply(&r->conf, type, id, &nc);
	if (rv != 0)
		return rv;
	if (type == RAFT_CONF_PROMOTE) {
		k = raft_member_index(r, id);
		if (r->prs[k].match < r->commit)
			return RAFT_ENOTCAUGHTUP;
	}
	if (type != RAFT_CONF_ADD_LEARNER && !quorum_alive(r, &nc))
		return RAFT_ENOQUORUM;
	rv = config_encode(type, id, &nc, ctx, ctx_len, &buf, &len);
	if (rv != 0)
		return rv;
	rv = replication_append_local(r, RAFT_ENTRY_CONF, buf, len, &idx);
	if (rv != 0) {
		free(buf);
		return rv;
	}
	raft_trace(r, "proposing change %d of %llu at %llu", type,
	    (unsigned long long)id, (unsigned long long)idx);
	raft_conf_set(r, &nc, idx);
	/* A smaller quorum may commit at once. */
	(void)replication_maybe_commit(r);
	if (index != NULL)
		*index = idx;
	return 0;
}

/* A leader whose removal committed (C4): hand over to the most
 * up-to-date voter if one holds the whole log, then step down. */
static void step_down_removed(struct raft *r)
{
	raft_index last = rlog_last_index(&r->log);
	struct raft_msg m = { 0 };
	uint32_t best = NO_MEMBER;

	for (uint32_t i = 0; i < r->conf.n_voters; i++)
		if (r->prs[i].match == last &&
		    (best == NO_MEMBER || r->prs[i].match > r->prs[best].match))
			best = i;
	raft_trace(r, "removed from the configuration at %llu: stepping down",
	    (unsigned long long)r->conf_index);
	if (best != NO_MEMBER) {
		m.type = RAFT_MSG_TIMEOUT_NOW;
		m.to = r->prs[best].id;
		(void)raft_send(r, &m, 0); /* -ENOMEM: they time out instead */
	}
	raft_become_follower(r, r->term, 0);
}

static uint64_t next_random(struct raft *r)
{
	/* splitmix64: small, good enough, deterministic from the seed. */
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void reset_timers(struct raft *r)
{
	unsigned et = r->cfg.election_tick;

	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->randomized_timeout = et + (unsigned)(next_random(r) % et);
}

static void boot_conf(const struct raft_config *c, struct raft_conf *out)
{
	memset(out, 0, sizeof(*out));
	out->n_voters = c->n_voters;
	out->n_learners = c->n_learners;
	if (c->n_voters <= RAFT_MAX_MEMBERS)
		memcpy(out->voters, c->voters, c->n_voters * sizeof(raft_id));
	if (c->n_learners <= RAFT_MAX_MEMBERS)
		memcpy(out->learners, c->learners,
		    c->n_learners * sizeof(raft_id));
}

static int check_config(const struct raft_config *c)
{
	struct raft_conf bc;

	boot_conf(c, &bc);
	if (c->id == 0 || config_check(&bc) != 0 ||
	    config_member_index(&bc, c->id) < 0)
		return -EINVAL;
	if (c->election_tick < 2 || c->heartbeat_tick == 0 ||
	    c->heartbeat_tick >= c->election_tick)
		return -EINVAL;
	/* The lease must end before the voters' stickiness does, even when
	 * both are measured with clocks of the same rate (readindex.c). */
	if (c->lease_ticks > 0 && c->lease_ticks + 2 > c->election_tick)
		return -EINVAL;
	if (c->max_msg_entries == 0 || c->max_msg_bytes == 0 ||
	    c->max_inflight_msgs == 0 || c->snapshot_chunk_bytes == 0 ||
	    c->max_entry_bytes == 0)
		return -EINVAL;
	return 0;
}

static int boot_log(struct raft *r, const struct raft_boot *b)
{
	int rv;

	if (b->has_snapshot) {
		struct raft_conf sc;

		if (b->snap.n_voters > RAFT_MAX_MEMBERS ||
		    b->snap.n_learners > RAFT_MAX_MEMBERS)
			return -EINVAL;
		config_from_meta(&b->snap, &sc);
		if (b->snap.index == 0 || b->snap.term == 0 ||
		    config_check(&sc) != 0 ||
		    (b->snap_len > 0 && b->snap_data == NULL))
			return -EINVAL;
		r->snap_conf = sc;
		r->snap_conf_index = b->snap.index;
		r->snap_meta = b->snap;
		rv = snapshot_set_copy(r, b->snap_data, b->snap_len);
		if (rv != 0)
			return rv;
		r->snap_install_pending = true;
		rlog_reset(&r->log, b->snap.index, b->snap.term);
	}
	for (uint64_t i = 0; i < b->n_entries; i++) {
		const struct raft_entry *e = &b->entries[i];
		struct raft_conf_change cc;

		if (e->index != rlog_last_index(&r->log) + 1 ||
		    e->term < rlog_last_term(&r->log) ||
		    (e->len > 0 && e->data == NULL) ||
		    (e->type == RAFT_ENTRY_CONF &&
		        raft_conf_change_decode(e, &cc) != 0))
			return -EINVAL;
		rv = rlog_append_copy(&r->log, e);
		if (rv != 0)
			return rv;
	}
	r->term = b->hs.term;
	r->vote = b->hs.vote;
	/* The log is synced before the hard state is replaced, so a crash in
	 * between leaves entries of a term newer than the recorded one.
	 * Their term was ours, and any vote in it was never sent (votes
	 * leave only after the whole batch is durable): adopt the term with
	 * no vote. */
	if (rlog_last_term(&r->log) > r->term) {
		r->term = rlog_last_term(&r->log);
		r->vote = 0;
	}
	/* The vote may name a member that a later change removed: it
	 * stays the vote of that term. */
	return 0;
}

int raft_new(const struct raft_config *cfg, const struct raft_boot *boot,
    struct raft **out)
{
	struct raft *r;
	uint32_t i;
	int rv;

	rv = check_config(cfg);
	if (rv != 0)
		return rv;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->cfg = *cfg;
	r->id = cfg->id;
	r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dull);
	rlog_init(&r->log);
	for (i = 0; i < RAFT_MAX_MEMBERS; i++) {
		rv = progress_init(&r->prs[i], 0, cfg->max_inflight_msgs,
		    cfg->max_inflight_bytes);
		if (rv != 0)
			goto err_after_progress;
	}
	boot_conf(cfg, &r->snap_conf);
	r->snap_conf_index = 0;
	if (boot != NULL) {
		rv = boot_log(r, boot);
		if (rv != 0)
			goto err_after_progress;
	}
	r->n_members = 0;
	raft_conf_at(r, rlog_last_index(&r->log), &r->conf, &r->conf_index);
	raft_conf_set(r, &r->conf, r->conf_index);
	r->commit = r->log.snap_index;
	r->applying = r->log.snap_index;
	r->stable = rlog_last_index(&r->log);
	r->persist_next = r->stable + 1;
	r->hs_term_out = r->term;
	r->hs_vote_out = r->vote;
	r->role = RAFT_FOLLOWER;
	r->ss_role = RAFT_FOLLOWER;
	r->ss_term = r->term;
	reset_timers(r);
	/* Restarted: we may have acknowledged a leader's heartbeat just
	 * before, and that leader may count on us not voting for another
	 * within the minimum election timeout (readindex.c). */
	r->heard_elapsed = r->term > 0 ? 0 : cfg->election_tick;
	raft_trace(r,
	    "start term %llu vote %llu log (%llu..%llu] snapshot %llu",
	    (unsigned long long)r->term, (unsigned long long)r->vote,
	    (unsigned long long)r->log.snap_index,
	    (unsigned long long)rlog_last_index(&r->log),
	    (unsigned long long)r->log.snap_index);
	*out = r;
	return 0;

err_after_progress:
	raft_free(r);
	return rv;
}

void raft_free(struct raft *r)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++)
		progress_close(&r->prs[i]);
	rlog_close(&r->log);
	snapshot_free(r);
	free(r->reads);
	free(r->fwd);
	free(r->out);
	free(r->rd_msgs);
	free(r->rs);
	free(r->rf);
	free(r);
}

/* ---------------------------------------------------------------- output */

int raft_send(struct raft *r, const struct raft_msg *m, raft_term last_term)
{
	struct out_msg *o;

	if (r->n_out == r->cap_out) {
		uint32_t cap = r->cap_out ? r->cap_out * 2 : 16;
		struct out_msg *p = realloc(r->out, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		r->out = p;
		r->cap_out = cap;
	}
	o = &r->out[r->n_out++];
	o->m = *m;
	o->m.from = r->id;
	if (o->m.term == 0)
		o->m.term = r->term;
	o->last_term = last_term;
	/* Only a leader's replication traffic may leave before the disk:
	 * votes, grants and acknowledgements are promises about it. */
	switch (m->type) {
	case RAFT_MSG_APPEND:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_SNAPSHOT:
	case RAFT_MSG_TIMEOUT_NOW:
	case RAFT_MSG_READ_INDEX_RESP:
	case RAFT_MSG_READ_INDEX:
	case RAFT_MSG_HEARTBEAT_RESP:
	case RAFT_MSG_PREVOTE:
		o->after_persist = false;
		break;
	default:
		o->after_persist = true;
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- roles */

static void abort_leader_state(struct raft *r)
{
	r->transferee = 0;
	r->transfer_elapsed = 0;
	r->bcast_pending = false;
	r->uncommitted_bytes = 0;
}

void raft_become_follower(struct raft *r, raft_term term, raft_id leader)
{
	bool was_leader = r->role == RAFT_LEADER;

	if (term > r->term) {
		r->term = term;
		r->vote = 0;
	}
	if (was_leader || leader != r->leader)
		readindex_fail_all(r);
	r->role = RAFT_FOLLOWER;
	r->leader = leader;
	abort_leader_state(r);
	reset_timers(r);
}

void raft_become_candidate(struct raft *r, bool pre)
{
	if (r->role == RAFT_LEADER)
		abort_leader_state(r);
	readindex_fail_all(r);
	memset(r->votes, 0, sizeof(r->votes));
	r->leader = 0;
	if (pre) {
		r->role = RAFT_PRECANDIDATE;
	} else {
		r->role = RAFT_CANDIDATE;
		r->term++;
		r->vote = r->id;
	}
	reset_timers(r);
}

int raft_become_leader(struct raft *r)
{
	raft_index last = rlog_last_index(&r->log);

	r->role = RAFT_LEADER;
	r->leader = r->id;
	abort_leader_state(r);
	reset_timers(r);
	for (uint32_t i = 0; i < r->n_members; i++) {
		progress_reset(&r->prs[i], last);
		r->read_acks[i] = 0;
		r->lease_from[i] = 0;
	}
	r->lease_off = false;
	r->read_round_sent = 0;
	if (r->self_idx != NO_MEMBER) { /* not when elected by C8 */
		r->prs[r->self_idx].match = r->stable;
		r->prs[r->self_idx].recent_active = true;
	}
	raft_trace(r, "leader in term %llu (log last %llu commit %llu)",
	    (unsigned long long)r->term, (unsigned long long)last,
	    (unsigned long long)r->commit);
	/* Raft paper 8: a no-op entry commits everything before it. */
	return replication_append_local(r, RAFT_ENTRY_NOOP, NULL, 0, NULL);
}

/* ---------------------------------------------------------------- input */

int raft_tick(struct raft *r)
{
	int rv;

	r->now_ticks++;
	if (r->heard_elapsed < UINT_MAX)
		r->heard_elapsed++;
	rv = election_tick(r);

	if (rv == 0 && r->role == RAFT_LEADER)
		replication_tick(r);

	if (rv == 0)
		rv = readindex_tick(r);
	return rv;
}

static bool from_leader(uint8_t type)
{
	return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
	    type == RAFT_MSG_SNAPSHOT;
}

/*
 * Figure 2, "all servers": a higher term makes us a follower; a lower
 * term is stale.  Returns 1 if the message should be handled further,
 * 0 if it was consumed, or a negative error.
 */
static int step_term(struct raft *r, const struct raft_msg *m)
{
	if (m->term > r->term) {
		bool vote_req = m->type == RAFT_MSG_VOTE ||
		    m->type == RAFT_MSG_PREVOTE;

		/* Leader stickiness: while we hear from a live leader, a
		 * disruptive candidate is ignored (thesis 4.2.3), unless it
		 * campaigns because the leader hands over (ctx 1). */
		if (vote_req && m->ctx != 1 && election_in_lease(r))
			return 0;
		if (m->type == RAFT_MSG_PREVOTE ||
		    (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject))
			return 1; /* pre-vote never changes the term */
		raft_trace(r, "term %llu -> %llu (message %s from %llu)",
		    (unsigned long long)r->term, (unsigned long long)m->term,
		    raft_msg_type_name(m->type), (unsigned long long)m->from);
		if (m->type == RAFT_MSG_VOTE && r->role != RAFT_LEADER) {
			/* Figure 2: only a vote granted (or a leader heard)
			 * restarts the election timer.  A candidate whose
			 * requests we refuse (its log is behind) must not
			 * hold our own campaign off forever by bumping our
			 * term faster than we time out. */
			unsigned elapsed = r->election_elapsed;
			unsigned timeout = r->randomized_timeout;

			raft_become_follower(r, m->term, 0);
			r->election_elapsed = elapsed;
			r->randomized_timeout = timeout;
			return 1;
		}
		raft_become_follower(r, m->term,
		    from_leader(m->type) ? m->from : 0);
		return 1;
	}
	if (m->term < r->term) {
		struct raft_msg resp = { 0 };

		if (from_leader(m->type)) {
			/* A stale leader (or a member that was partitioned
			 * with a higher term before pre-vote kicked in) must
			 * learn the current term. */
			resp.type = RAFT_MSG_APPEND_RESP;
			resp.to = m->from;
			resp.reject = true;
			return raft_send(r, &resp, 0);
		}
		if (m->type == RAFT_MSG_PREVOTE) {
			resp.type = RAFT_MSG_PREVOTE_RESP;
			resp.to = m->from;
			resp.reject = true;
			return raft_send(r, &resp, 0);
		}
		r->dropped++;
		return 0;
	}
	return 1;
}

/* @from_idx: the sender's member index (raft_step looked it up; -1 for
 * the messages accepted from non-members, whose handlers do not use it). */
static int step_dispatch(struct raft *r, uint32_t from_idx,
    const struct raft_msg *m)
{
	switch (m->type) {
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
		return election_handle_vote(r, m);
	case RAFT_MSG_PREVOTE_RESP:
	case RAFT_MSG_VOTE_RESP:
		return election_handle_vote_resp(r, from_idx, m);
	case RAFT_MSG_APPEND:
		return replication_handle_append(r, m);
	case RAFT_MSG_APPEND_RESP:
		return replication_handle_append_resp(r, from_idx, m);
	case RAFT_MSG_HEARTBEAT:
		return replication_handle_heartbeat(r, m);
	case RAFT_MSG_HEARTBEAT_RESP:
		return replication_handle_heartbeat_resp(r, from_idx, m);
	case RAFT_MSG_SNAPSHOT:
		return snapshot_handle_chunk(r, m);
	case RAFT_MSG_SNAPSHOT_RESP:
		return snapshot_handle_resp(r, from_idx, m);
	case RAFT_MSG_TIMEOUT_NOW:
		return election_handle_timeout_now(r, m);
	case RAFT_MSG_READ_INDEX:
		return readindex_handle_forward(r, m);
	case RAFT_MSG_READ_INDEX_RESP:
		return readindex_handle_forward_resp(r, m);
	}
	r->dropped++;
	return 0;
}

/* Structural checks a well-behaved peer always satisfies (that the sender
 * is a voter, raft_step checks). */
static bool msg_sane(const struct raft *r, const struct raft_msg *m)
{
	if (m->to != r->id || m->from == r->id || m->term == 0)
		return false;
	if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX)
		return false;
	if (m->type == RAFT_MSG_APPEND) {
		raft_term prev = m->log_term;

		if (m->n_entries > 0 && m->entries == NULL)
			return false;
		for (uint32_t i = 0; i < m->n_entries; i++) {
			const struct raft_entry *e = &m->entries[i];

			if (e->index != m->index + 1 + i || e->term < prev ||
			    e->term > m->term || (e->len && e->data == NULL) ||
			    (e->type != RAFT_ENTRY_NORMAL &&
			        e->type != RAFT_ENTRY_NOOP &&
			        e->type != RAFT_ENTRY_CONF))
				return false;
			if (e->type == RAFT_ENTRY_CONF) {
				struct raft_conf_change cc;

				if (raft_conf_change_decode(e, &cc) != 0)
					return false;
			}
			prev = e->term;
		}
		if (m->log_term > m->term)
			return false;
	}
	if (m->type == RAFT_MSG_SNAPSHOT) {
		struct raft_conf sc;

		if (m->snap.n_voters > RAFT_MAX_MEMBERS ||
		    m->snap.n_learners > RAFT_MAX_MEMBERS)
			return false;
		config_from_meta(&m->snap, &sc);
		if (m->snap.index == 0 || m->snap.term == 0 ||
		    m->snap.term > m->term || config_check(&sc) != 0 ||
		    m->offset > m->total ||
		    m->chunk_len > m->total - m->offset ||
		    (m->chunk_len > 0 && m->chunk == NULL))
			return false;
	}
	return true;
}

/*
 * Who may send what (config.h C5, C6): a leader's messages from anyone,
 * (pre-)votes and their answers from voters of our configuration only,
 * everything else (answers to a leader, forwarded reads) from members.
 */
static bool sender_ok(const struct raft *r, const struct raft_msg *m,
    int from_idx)
{
	switch (m->type) {
	case RAFT_MSG_APPEND:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_SNAPSHOT:
	case RAFT_MSG_TIMEOUT_NOW:
	case RAFT_MSG_READ_INDEX_RESP:
		return true;
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PREVOTE_RESP:
	case RAFT_MSG_VOTE_RESP:
		return from_idx >= 0 && (uint32_t)from_idx < r->conf.n_voters;
	default:
		return from_idx >= 0;
	}
}

int raft_step(struct raft *r, const struct raft_msg *m)
{
	/* Looked up once per message; the handlers get it from here. */
	int from_idx = raft_member_index(r, m->from);
	int rv;

	if (!msg_sane(r, m) || !sender_ok(r, m, from_idx)) {
		r->dropped++;
		return 0;
	}
	rv = step_term(r, m);
	if (rv <= 0)
		return rv;
	if (r->role == RAFT_LEADER && from_idx >= 0)
		r->prs[from_idx].recent_active = true;
	if (from_leader(m->type) && m->term == r->term)
		r->heard_elapsed = 0; /* the voters' side of a lease */
	return step_dispatch(r, (uint32_t)from_idx, m);
}

int raft_propose(struct raft *r, const void *data, uint32_t len,
    raft_index *index, raft_term *term)
{
	raft_index idx;
	void *copy = NULL;
	int rv;

	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	if (r->transferee != 0)
		return RAFT_ETRANSFER;
	if (len > r->cfg.max_entry_bytes)
		return RAFT_ETOOBIG;
	if (r->uncommitted_bytes > 0 &&
	    r->uncommitted_bytes + len > r->cfg.max_uncommitted_bytes)
		return RAFT_EBUSY;
	if (len > 0) {
		copy = malloc(len);
		if (copy == NULL)
			return -ENOMEM;
		memcpy(copy, data, len);
	}
	rv = replication_append_local(r, RAFT_ENTRY_NORMAL, copy, len, &idx);
	if (rv != 0) {
		free(copy);
		return rv;
	}
	if (index != NULL)
		*index = idx;
	if (term != NULL)
		*term = r->term;
	return 0;
}

int raft_campaign(struct raft *r)
{
	if (r->role == RAFT_LEADER)
		return 0;
	if (election_in_lease(r))
		return RAFT_EINLEASE;
	return election_campaign(r, !r->cfg.disable_prevote, false);
}

void raft_tick_gap(struct raft *r)
{
	readindex_lease_drop(r);
}

int raft_persisted(struct raft *r, const struct raft_persist_token *t)
{
	raft_index before = r->stable;
	raft_term term;

	if (t->snap_index > r->stable &&
	    (t->snap_index <= r->log.snap_index ||
	        (rlog_term(&r->log, t->snap_index, &term) == 0 &&
	            term == t->snap_term)))
		r->stable = t->snap_index;
	if (t->last_index > r->stable &&
	    rlog_term(&r->log, t->last_index, &term) == 0 &&
	    term == t->last_term)
		r->stable = t->last_index;
	if (r->stable > before && r->role == RAFT_LEADER) {
		if (r->self_idx != NO_MEMBER)
			r->prs[r->self_idx].match = r->stable;
		if (replication_maybe_commit(r))
			r->bcast_pending = true;
	}
	return 0;
}

/* ---------------------------------------------------------------- ready */

static bool materialise(struct raft *r, const struct out_msg *o,
    struct raft_msg *m)
{
	*m = o->m;
	if (m->type == RAFT_MSG_APPEND && m->n_entries > 0) {
		struct raft_entry *first = rlog_get(&r->log, m->index + 1);
		struct raft_entry *last = rlog_get(&r->log,
		    m->index + m->n_entries);

		/* Truncated or compacted since it was queued: drop it, Raft
		 * retries lost messages anyway. */
		if (first == NULL || last == NULL || last->term != o->last_term)
			return false;
		m->entries = first;
	}
	if (m->type == RAFT_MSG_SNAPSHOT) {
		if (m->snap.index != r->snap_meta.index ||
		    m->snap.term != r->snap_meta.term ||
		    m->total != r->snap_len ||
		    m->offset + m->chunk_len > r->snap_len)
			return false;
		m->chunk = m->chunk_len ? r->snap_data + m->offset : NULL;
	}
	return true;
}

static int flush_outputs(struct raft *r)
{
	int rv = 0;
	uint64_t round;

	if (r->role == RAFT_LEADER) {
		if (readindex_round_wanted(r, &round))
			rv = replication_bcast_heartbeat(r, round);
		if (rv == 0 && r->bcast_pending) {
			r->bcast_pending = false;
			rv = replication_bcast_append(r);
		}
		if (rv == 0 && !raft_self_voter(r) &&
		    r->commit >= r->conf_index)
			step_down_removed(r);
	}
	return rv;
}

static int fill_msgs(struct raft *r, struct raft_ready *rd)
{
	uint32_t now = 0, later = 0, n = 0;

	if (r->n_out > r->cap_rd_msgs) {
		struct raft_msg *p = realloc(r->rd_msgs, r->n_out * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		r->rd_msgs = p;
		r->cap_rd_msgs = r->n_out;
	}
	/* Two passes: immediate messages first, then the rest, in one array. */
	for (uint32_t pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < r->n_out; i++) {
			if (r->out[i].after_persist != (pass == 1))
				continue;
			if (!materialise(r, &r->out[i], &r->rd_msgs[n]))
				continue;
			n++;
			if (pass == 0)
				now++;
			else
				later++;
		}
	}
	rd->msgs = now ? r->rd_msgs : NULL;
	rd->n_msgs = now;
	rd->msgs_after_persist = later ? r->rd_msgs + now : NULL;
	rd->n_msgs_after_persist = later;
	return 0;
}

static void fill_persist(struct raft *r, struct raft_ready *rd)
{
	raft_index last = rlog_last_index(&r->log);
	struct raft_persist_token *t = &rd->persist_token;

	if (r->term != r->hs_term_out || r->vote != r->hs_vote_out) {
		rd->hs_changed = true;
		r->hs_term_out = r->term;
		r->hs_vote_out = r->vote;
	}
	rd->hs.term = r->term;
	rd->hs.vote = r->vote;
	if (r->snap_persist_pending || r->snap_install_pending) {
		rd->has_snapshot = r->snap_persist_pending;
		rd->snapshot_install = r->snap_install_pending;
		rd->snap_meta = r->snap_meta;
		rd->snap_data = r->snap_data;
		rd->snap_len = r->snap_len;
		rd->snap_buf = r->snap_buf;
		if (r->snap_persist_pending) {
			t->snap_index = r->snap_meta.index;
			t->snap_term = r->snap_meta.term;
		}
		r->snap_persist_pending = false;
		r->snap_install_pending = false;
	}
	if (r->persist_next <= r->log.snap_index)
		r->persist_next = r->log.snap_index + 1;
	if (r->persist_next <= last) {
		rd->entries = rlog_get(&r->log, r->persist_next);
		rd->n_entries = (uint32_t)(last - r->persist_next + 1);
		t->last_index = last;
		t->last_term = rlog_last_term(&r->log);
		r->persist_next = last + 1;
	}
	rd->must_persist = rd->hs_changed || rd->has_snapshot || rd->n_entries;
	if (rd->must_persist)
		t->seq = ++r->persist_seq;
}

static void fill_committed(struct raft *r, struct raft_ready *rd)
{
	raft_index hi = r->commit < r->stable ? r->commit : r->stable;

	if (hi > r->applying + 4096)
		hi = r->applying + 4096; /* bound one batch's apply work */
	if (hi <= r->applying || r->applying < r->log.snap_index)
		return;
	rd->committed = rlog_get(&r->log, r->applying + 1);
	rd->n_committed = (uint32_t)(hi - r->applying);
	r->applying = hi;
}

bool raft_ready(struct raft *r, struct raft_ready *rd)
{
	memset(rd, 0, sizeof(*rd));
	if (flush_outputs(r) != 0 || fill_msgs(r, rd) != 0) {
		/* Out of memory: hand out nothing now; queued messages
		 * stay queued and the caller retries later. */
		memset(rd, 0, sizeof(*rd));
		return false;
	}
	rd->role = r->role;
	rd->leader = r->leader;
	if (r->role != r->ss_role || r->term != r->ss_term ||
	    r->leader != r->ss_leader) {
		rd->role_changed = true;
		r->ss_role = r->role;
		r->ss_term = r->term;
		r->ss_leader = r->leader;
	}
	fill_persist(r, rd);
	fill_committed(r, rd);
	if (!r->conf_out) {
		rd->conf_changed = true;
		rd->conf = r->conf;
		rd->conf_index = r->conf_index;
		r->conf_out = true;
	}
	rd->truncated_from = r->truncated_from;
	r->truncated_from = 0;
	rd->read_states = r->n_rs ? r->rs : NULL;
	rd->n_read_states = r->n_rs;
	rd->read_failed = r->n_rf ? r->rf : NULL;
	rd->n_read_failed = r->n_rf;
	r->ready_out = true;
	if (!rd->role_changed && !rd->must_persist && !rd->snapshot_install &&
	    !rd->conf_changed && rd->truncated_from == 0 && rd->n_msgs == 0 &&
	    rd->n_msgs_after_persist == 0 && rd->n_committed == 0 &&
	    rd->n_read_states == 0 && rd->n_read_failed == 0) {
		raft_advance(r, rd);
		return false;
	}
	return true;
}

void raft_advance(struct raft *r, struct raft_ready *rd)
{
	r->n_out = 0;
	r->n_rs = 0;
	r->n_rf = 0;
	r->ready_out = false;
	memset(rd, 0, sizeof(*rd));
}

/* ---------------------------------------------------------------- status */

void raft_status(const struct raft *r, struct raft_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = r->id;
	st->role = r->role;
	st->term = r->term;
	st->vote = r->vote;
	st->leader = r->leader;
	st->commit = r->commit;
	st->applied = r->applying;
	st->stable = r->stable;
	st->first_index = rlog_first_index(&r->log);
	st->last_index = rlog_last_index(&r->log);
	st->snap_index = r->log.snap_index;
	st->snap_term = r->log.snap_term;
	st->uncommitted_bytes = r->uncommitted_bytes;
	st->dropped_msgs = r->dropped;
	st->transferee = r->transferee;
	st->voter = raft_self_voter(r);
	st->conf_index = r->conf_index;
	st->lease_reads = r->lease_reads;
}

int raft_term_at(const struct raft *r, raft_index index, raft_term *term)
{
	return rlog_term(&r->log, index, term);
}

const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index)
{
	return rlog_get(&r->log, index);
}

const uint8_t *raft_snapshot_data(const struct raft *r, uint64_t *len,
    struct raft_snapshot_meta *meta)
{
	if (len != NULL)
		*len = r->snap_len;
	if (meta != NULL)
		*meta = r->snap_meta;
	return r->snap_data;
}
