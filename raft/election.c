/*
 * election.c - election timers, pre-vote, vote, check-quorum and
 * leadership transfer.
 *
 * Raft paper 5.2 (elections) and Figure 2 (RequestVote), 5.4.1 (the
 * up-to-date rule); thesis 9.6 (pre-vote: a member first asks whether it
 * *could* win, without touching its term, so a rejoining partitioned
 * member cannot depose a healthy leader), 6.2 (check-quorum: a leader that
 * has not heard from a majority within an election timeout steps down, so
 * a minority never keeps a leader) and 3.10 (leadership transfer via
 * TimeoutNow).  Contracts: election.h.
 *
 * Leader stickiness (thesis 4.2.3): a member that heard from a leader
 * within the minimum election timeout ignores (pre)vote requests of a
 * higher term, unless they come from a transfer (ctx == 1).  It is also
 * what a leader's read lease rests on (readindex.c), so it is kept
 * strictly, whether or not this member takes leases itself: for
 * election_tick ticks after hearing from a leader of its term
 * (heard_elapsed), or after restarting, a member grants no vote or
 * pre-vote but a transfer's (even after its term moved on through some
 * other message) and does not campaign on request (raft_campaign).
 *
 * Durability: a candidate's term and self-vote, and every vote granted, are
 * hard state; their messages are queued "after persist" by raft_send, so
 * no vote leaves before it is on disk.
 */
#include <errno.h>
#include <string.h>

#include "raft/config.h"
#include "raft/election.h"
#include "raft/raft_int.h"
#include "raft/readindex.h"
#include "raft/replication.h"
#include "raft/snapshot.h"

bool election_in_lease(const struct raft *r)
{
	if (r->cfg.disable_check_quorum)
		return false;
	if (r->leader != 0 && r->election_elapsed < r->cfg.election_tick)
		return true;
	return r->role == RAFT_LEADER ||
	    r->heard_elapsed < r->cfg.election_tick;
}

static bool log_up_to_date(const struct raft *r, raft_index index,
    raft_term term)
{
	raft_term last_term = rlog_last_term(&r->log);

	return term > last_term ||
	    (term == last_term && index >= rlog_last_index(&r->log));
}

static int send_requests(struct raft *r, bool pre, bool transfer)
{
	struct raft_msg m = { 0 };
	int rv;

	m.type = pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE;
	m.term = pre ? r->term + 1 : r->term;
	m.index = rlog_last_index(&r->log);
	m.log_term = rlog_last_term(&r->log);
	m.ctx = transfer ? 1 : 0;
	for (uint32_t i = 0; i < r->conf.n_voters; i++) {
		if (i == r->self_idx)
			continue;
		m.to = r->conf.voters[i];
		rv = raft_send(r, &m, 0);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/*
 * config.h C8: the configuration in force is an uncommitted change that
 * removed us as a voter.  The one before it is our configuration plus
 * us (a single-server change), and may still be active: we campaign in
 * it, so that the entry only we may hold still gets a leader (it counts
 * the others' votes, and ours, against that configuration's quorum).
 */
static bool removed_pending(struct raft *r)
{
	struct raft_conf prev;
	raft_index at;

	if (raft_self_voter(r) || r->conf_index <= r->commit ||
	    r->conf_index <= r->log.snap_index)
		return false;
	if (r->prev_checked != r->conf_index) {
		raft_conf_at(r, r->conf_index - 1, &prev, &at);
		r->prev_voter = config_is_voter(&prev, r->id) &&
		    prev.n_voters == r->conf.n_voters + 1;
		r->prev_checked = r->conf_index;
	}
	return r->prev_voter;
}

/* Count votes; returns 1 won, -1 lost, 0 undecided. */
static int tally(const struct raft *r)
{
	uint32_t yes = 0, no = 0, q = raft_quorum(r);

	if (r->elect_removed) {
		yes = 1; /* ours, in the configuration before the change */
		q = (r->conf.n_voters + 1) / 2 + 1;
	}
	for (uint32_t i = 0; i < r->conf.n_voters; i++) {
		yes += r->votes[i] > 0;
		no += r->votes[i] < 0;
	}
	if (yes >= q)
		return 1;
	if (no >= q)
		return -1;
	return 0;
}

int election_campaign(struct raft *r, bool pre, bool transfer)
{
	bool removed = removed_pending(r);

	/* Learners and removed members never campaign (C5), but for C8. */
	if (!raft_self_voter(r) && !removed)
		return 0;
	raft_become_candidate(r, pre);
	r->elect_removed = removed;
	if (!removed)
		r->votes[r->self_idx] = 1;
	raft_trace(r, "%s for term %llu (log last %llu term %llu)",
	    pre ? "pre-campaign" : "campaign",
	    (unsigned long long)(pre ? r->term + 1 : r->term),
	    (unsigned long long)rlog_last_index(&r->log),
	    (unsigned long long)rlog_last_term(&r->log));
	if (tally(r) > 0) {
		/* A cluster of one. */
		if (pre)
			return election_campaign(r, false, transfer);
		return raft_become_leader(r);
	}
	return send_requests(r, pre, transfer);
}

/* Voters heard from this round (and us, if a voter); starts a new round
 * for every member (config.h C4: a leader that removed itself counts the
 * others only). */
static unsigned active_voters(struct raft *r)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < r->n_members; i++) {
		if (i < r->conf.n_voters)
			n += r->prs[i].recent_active || i == r->self_idx;
		if (i != r->self_idx) {
			r->prs[i].active_prev = r->prs[i].recent_active;
			r->prs[i].recent_active = false;
		}
	}
	return n;
}

static int leader_tick(struct raft *r)
{
	int rv = 0;

	r->election_elapsed++;
	if (r->election_elapsed >= r->cfg.election_tick) {
		r->election_elapsed = 0;
		if (!r->cfg.disable_check_quorum &&
		    active_voters(r) < raft_quorum(r)) {
			raft_trace(r,
			    "check-quorum failed: stepping down in "
			    "term %llu",
			    (unsigned long long)r->term);
			raft_become_follower(r, r->term, 0);
			return 0;
		}
		if (r->transferee != 0) {
			raft_trace(r, "leadership transfer to %llu timed out",
			    (unsigned long long)r->transferee);
			r->transferee = 0;
		}
	}
	r->heartbeat_elapsed++;
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
		r->heartbeat_elapsed = 0;
		rv = replication_bcast_heartbeat(r,
		    readindex_heartbeat_round(r));
		for (uint32_t i = 0; rv == 0 && i < r->n_members; i++)
			if (i != r->self_idx)
				rv = snapshot_tick(r, &r->prs[i]);
	}
	return rv;
}

int election_tick(struct raft *r)
{
	if (r->role == RAFT_LEADER)
		return leader_tick(r);
	if (r->election_elapsed < UINT32_MAX)
		r->election_elapsed++;
	if (r->election_elapsed >= r->randomized_timeout)
		return election_campaign(r, !r->cfg.disable_prevote, false);
	return 0;
}

int election_handle_vote(struct raft *r, const struct raft_msg *m)
{
	struct raft_msg resp = { 0 };
	bool pre = m->type == RAFT_MSG_PREVOTE;
	bool can_vote;

	can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0) ||
	    (pre && m->term > r->term);
	/* A leader we heard from recently may hold a read lease that our
	 * vote would break (readindex.c); a vote given already stands. */
	if (r->vote != m->from && m->ctx != 1 && election_in_lease(r))
		can_vote = false;
	resp.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
	resp.to = m->from;
	if (can_vote && log_up_to_date(r, m->index, m->log_term)) {
		/* A pre-vote answer carries the term asked about, so the
		 * pre-candidate can match it to its campaign. */
		resp.term = m->term;
		if (!pre) {
			r->vote = m->from;
			r->election_elapsed = 0;
		}
	} else {
		resp.reject = true;
	}
	return raft_send(r, &resp, 0);
}

int election_handle_vote_resp(struct raft *r, uint32_t from_idx,
    const struct raft_msg *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
	int result;

	if ((pre && r->role != RAFT_PRECANDIDATE) ||
	    (!pre && r->role != RAFT_CANDIDATE))
		return 0;
	if (pre && m->term != r->term + 1 && !m->reject)
		return 0; /* an answer to an older pre-campaign */
	if (r->votes[from_idx] == 0)
		r->votes[from_idx] = m->reject ? -1 : 1;
	result = tally(r);
	if (result > 0)
		return pre ? election_campaign(r, false, false)
		           : raft_become_leader(r);
	if (result < 0)
		raft_become_follower(r, r->term, 0);
	return 0;
}

int election_handle_timeout_now(struct raft *r, const struct raft_msg *m)
{
	if (r->role == RAFT_LEADER)
		return 0;
	raft_trace(r, "leadership handed over by %llu: campaigning",
	    (unsigned long long)m->from);
	return election_campaign(r, false, true);
}

void election_check_transfer(struct raft *r, struct progress *pr)
{
	struct raft_msg m = { 0 };

	if (r->transferee != pr->id || pr->match != rlog_last_index(&r->log))
		return;
	m.type = RAFT_MSG_TIMEOUT_NOW;
	m.to = pr->id;
	(void)raft_send(r, &m, 0); /* on -ENOMEM the transfer times out */
}

int raft_transfer_leadership(struct raft *r, raft_id to)
{
	int i;

	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	i = raft_voter_index(r, to);
	if (i < 0 || to == r->id)
		return -EINVAL;
	r->transferee = to;
	r->election_elapsed = 0; /* the transfer must finish within a timeout */
	/* Its TIMEOUT_NOW lets the target's election bypass stickiness, even
	 * if it arrives late: no lease reads for the rest of this term. */
	r->lease_off = true;
	raft_trace(r, "transferring leadership to %llu",
	    (unsigned long long)to);
	election_check_transfer(r, &r->prs[i]);
	if (r->transferee == to && r->prs[i].match != rlog_last_index(&r->log))
		return replication_send_append(r, &r->prs[i], false);
	return 0;
}
