/*
 * replication.c - leader-side log replication, follower-side append
 * handling, heartbeats and commit advancement (Raft paper 5.3 and
 * Figure 2, AppendEntries; the commit rule of 5.4.2).  Contracts:
 * replication.h.
 *
 * The leader keeps, per follower, next (next entry to send) and match
 * (highest entry known replicated) in struct progress.  An entry is
 * committed once it is durable on a majority AND belongs to the leader's
 * current term (Raft paper 5.4.2): counting replicas of older-term entries
 * is what lets a committed entry be overwritten (Figure 8).  The leader
 * counts itself only up to its own durable index (raft->stable), so it may
 * send entries before its write completes.
 *
 * Backtracking (the optimisation at the end of paper 5.3, etcd's
 * findConflictByTerm): a follower that rejects an append names the last
 * index at or before the probe whose term is <= the probe's term, and that
 * entry's term; the leader then skips every entry of a conflicting term at
 * once.  Backing over a long divergent suffix costs one round trip per
 * term, not per entry.
 *
 * Heartbeats carry min(commit, match) (never a commit index beyond what the
 * follower is known to share with us) and the current read-index round.
 *
 * Pure: outgoing messages are queued with raft_send; entries are named by
 * index and only turned into pointers when raft_ready() hands them out.
 */
#include <errno.h>
#include <stdlib.h>

#include "raft/election.h"
#include "raft/config.h"
#include "raft/raft_int.h"
#include "raft/readindex.h"
#include "raft/replication.h"
#include "raft/snapshot.h"

/* --------------------------------------------------------------- leader */

int replication_append_local(struct raft *r, uint8_t type, void *data,
    uint32_t len, raft_index *index)
{
	struct raft_entry e = {
		.term = r->term,
		.type = type,
		.len = len,
		.data = data,
	};
	int rv = rlog_append_owned(&r->log, &e);

	if (rv != 0)
		return rv;
	r->uncommitted_bytes += len;
	r->bcast_pending = true;
	if (index != NULL)
		*index = rlog_last_index(&r->log);
	/* A cluster of one commits as soon as its own write is durable
	 * (raft_persisted calls maybe_commit). */
	return 0;
}

/* How many entries starting at @from fit in one append. */
static uint32_t batch_size(const struct raft *r, raft_index from,
    uint64_t *bytes)
{
	raft_index last = rlog_last_index(&r->log);
	uint32_t n = 0;

	*bytes = 0;
	while (from + n <= last && n < r->cfg.max_msg_entries) {
		const struct raft_entry *e = rlog_get(&r->log, from + n);

		if (n > 0 && *bytes + e->len > r->cfg.max_msg_bytes)
			break;
		*bytes += e->len;
		n++;
	}
	return n;
}

int replication_send_append(struct raft *r, struct progress *pr,
    bool allow_empty)
{
	struct raft_msg m = { 0 };
	raft_index prev = pr->next - 1;
	raft_term prev_term;
	uint64_t bytes;
	uint32_t n;
	int rv;

	if (progress_paused(pr))
		return 0;
	if (rlog_term(&r->log, prev, &prev_term) != 0)
		return snapshot_send(r, pr);
	n = batch_size(r, pr->next, &bytes);
	if (n == 0 && !allow_empty)
		return 0;
	m.type = RAFT_MSG_APPEND;
	m.to = pr->id;
	m.index = prev;
	m.log_term = prev_term;
	m.n_entries = n;
	m.commit = r->commit;
	rv = raft_send(r, &m, n ? rlog_term_or_zero(&r->log, prev + n) : 0);
	if (rv != 0)
		return rv;
	pr->commit_sent = r->commit;
	progress_sent(pr, prev + n, bytes);
	return 0;
}

/*
 * Commit news: tell follower @i the commit index, as far as it holds the
 * log, in a heartbeat, as soon as the commit advances (bcast_append runs
 * once per ready cycle, so news is batched: one message per idle follower
 * per cycle, however many entries committed).  A follower serving reads
 * or waiting for a lock hand-off applies without waiting for the next
 * heartbeat tick.  An answer is wanted only if it can confirm a read
 * round the follower has not echoed yet; otherwise the news is quiet
 * (done: no answer).  Under a stream of commands, a follower with appends
 * in flight gets no news message: the next append carries the commit.
 */
int replication_commit_news(struct raft *r, uint32_t i)
{
	struct progress *pr = &r->prs[i];
	struct raft_msg hb = { 0 };

	hb.commit = pr->match < r->commit ? pr->match : r->commit;
	if (hb.commit <= pr->commit_sent)
		return 0;
	hb.type = RAFT_MSG_HEARTBEAT;
	hb.to = pr->id;
	hb.ctx = r->read_round;
	if (r->read_round_unsent)
		hb.ctx = r->read_round - 1; /* not this round yet */
	hb.done = hb.ctx <= r->read_acks[i];
	pr->commit_sent = hb.commit;
	return raft_send(r, &hb, 0);
}

/* Leader, each tick: news that could not be sent (an append in flight
 * that was lost, -ENOMEM) goes out with the next ready. */
void replication_tick(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_members; i++) {
		const struct progress *pr = &r->prs[i];
		raft_index c = pr->match < r->commit ? pr->match : r->commit;

		/* Only what bcast_append will send: appends in flight carry
		 * the commit themselves. */
		if (i != r->self_idx && c > pr->commit_sent &&
		    pr->state == PROGRESS_REPLICATE && pr->infl_count == 0) {
			r->bcast_pending = true;
			return;
		}
	}
}

int replication_bcast_append(struct raft *r)
{
	int rv;

	for (uint32_t i = 0; i < r->n_members; i++) {
		struct progress *pr = &r->prs[i];

		if (i == r->self_idx)
			continue;
		/* Keep filling the pipeline while the window allows. */
		do {
			raft_index next = pr->next;

			rv = replication_send_append(r, pr, false);
			if (rv != 0)
				return rv;
			if (pr->state != PROGRESS_REPLICATE || pr->next == next)
				break;
		} while (pr->next <= rlog_last_index(&r->log));
		/* Commit news for a follower that got no entries, once nothing
		 * is in flight to it (an append in flight will carry it, and
		 * its answer brings us back here). */
		if (pr->commit_sent < r->commit &&
		    pr->match >= pr->commit_sent &&
		    pr->state == PROGRESS_REPLICATE && pr->infl_count == 0) {
			rv = replication_commit_news(r, i);
			if (rv != 0)
				return rv;
		}
	}
	return 0;
}

int replication_bcast_heartbeat(struct raft *r, uint64_t ctx)
{
	struct raft_msg m = { 0 };
	int rv;

	m.type = RAFT_MSG_HEARTBEAT;
	m.ctx = ctx;
	/* Read requests join a round only until its heartbeats leave. */
	if (ctx == r->read_round)
		r->read_round_unsent = false;
	if (ctx > r->read_round_sent)
		r->read_round_sent = ctx;
	readindex_round_sent(r, ctx);
	for (uint32_t i = 0; i < r->n_members; i++) {
		struct progress *pr = &r->prs[i];

		if (i == r->self_idx)
			continue;
		m.to = pr->id;
		m.commit = pr->match < r->commit ? pr->match : r->commit;
		if (m.commit > pr->commit_sent)
			pr->commit_sent = m.commit;
		rv = raft_send(r, &m, 0);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int cmp_index(const void *a, const void *b)
{
	raft_index x = *(const raft_index *)a, y = *(const raft_index *)b;

	return x < y ? 1 : x > y ? -1 : 0; /* descending */
}

void replication_commit_to(struct raft *r, raft_index index)
{
	if (index <= r->commit)
		return;
	if (r->role == RAFT_LEADER) {
		uint64_t done = rlog_payload_bytes(&r->log, r->commit, index);

		r->uncommitted_bytes = done > r->uncommitted_bytes
		    ? 0
		    : r->uncommitted_bytes - done;
	}
	r->commit = index;
}

bool replication_maybe_commit(struct raft *r)
{
	raft_index matches[RAFT_MAX_MEMBERS];
	raft_index n;
	raft_term t;
	bool first_in_term;

	/* Voters only (config.h C4); a leader that removed itself is not
	 * one and does not count. */
	for (uint32_t i = 0; i < r->conf.n_voters; i++)
		matches[i] = i == r->self_idx ? r->stable : r->prs[i].match;
	qsort(matches, r->conf.n_voters, sizeof(matches[0]), cmp_index);
	n = matches[raft_quorum(r) - 1];
	if (n <= r->commit || rlog_term(&r->log, n, &t) != 0 || t != r->term)
		return false;
	first_in_term = rlog_term_or_zero(&r->log, r->commit) != r->term;
	replication_commit_to(r, n);
	if (first_in_term)
		readindex_on_commit_in_term(r);
	return true;
}

static int handle_reject(struct raft *r, struct progress *pr,
    const struct raft_msg *m)
{
	raft_index probe;

	switch (pr->state) {
	case PROGRESS_REPLICATE:
		/* Stale: about an index we know matches, or its hint is below
		 * match.  A current rejection's hint is never below match: the
		 * follower's log agrees with ours up to match, and those
		 * entries' terms are <= the probe's term, so its search stops
		 * at or above match. */
		if (m->index <= pr->match || m->hint_index < pr->match)
			return 0;
		progress_become_probe(pr); /* next = match + 1 */
		break;
	case PROGRESS_PROBE:
		if (m->index != pr->next - 1)
			return 0; /* an answer to an older probe */
		probe = m->hint_index;
		if (m->hint_term > 0)
			probe = rlog_find_conflict_by_term(&r->log,
			    m->hint_index, m->hint_term);
		pr->next = probe + 1 < m->index ? probe + 1 : m->index;
		if (pr->next <= pr->match)
			pr->next = pr->match + 1;
		if (pr->next == 0)
			pr->next = 1;
		pr->probe_sent = false;
		break;
	case PROGRESS_SNAPSHOT:
		return 0;
	}
	return replication_send_append(r, pr, true);
}

int replication_handle_append_resp(struct raft *r, uint32_t from_idx,
    const struct raft_msg *m)
{
	struct progress *pr;

	if (r->role != RAFT_LEADER)
		return 0;
	pr = &r->prs[from_idx];
	if (m->reject)
		return handle_reject(r, pr, m);
	if (m->index > rlog_last_index(&r->log)) {
		r->dropped++; /* acknowledges entries we never had */
		return 0;
	}
	if (m->index <= pr->match) {
		pr->probe_sent = false;
		return 0;
	}
	pr->match = m->index;
	if (pr->next <= pr->match)
		pr->next = pr->match + 1;
	switch (pr->state) {
	case PROGRESS_PROBE:
		progress_become_replicate(pr);
		break;
	case PROGRESS_SNAPSHOT:
		if (pr->match >= pr->snap_index)
			progress_become_probe(pr);
		break;
	case PROGRESS_REPLICATE:
		progress_free_to(pr, pr->match);
		break;
	}
	if (replication_maybe_commit(r))
		r->bcast_pending = true; /* followers learn the new commit */
	/* The slower follower of a commit: its last ack arrives after the
	 * commit advanced, and it learns the commit in this cycle's news. */
	if (pr->commit_sent < r->commit && pr->infl_count == 0)
		r->bcast_pending = true;
	election_check_transfer(r, pr);
	/* More to send, or room freed in the window. */
	if (pr->next <= rlog_last_index(&r->log))
		r->bcast_pending = true;
	return 0;
}

int replication_handle_heartbeat_resp(struct raft *r, uint32_t from_idx,
    const struct raft_msg *m)
{
	struct progress *pr;
	int rv;

	if (r->role != RAFT_LEADER)
		return 0;
	pr = &r->prs[from_idx];
	pr->probe_sent = false;
	/* A full window whose append was lost would stay full: let one more
	 * through (full by count or by bytes alike). */
	if (pr->state == PROGRESS_REPLICATE && progress_window_full(pr))
		progress_free_first(pr);
	/* Behind, and no progress since the previous heartbeat answer: the
	 * follower may have lost the tail of a pipelined window.  Send even
	 * an empty append, so it rejects it and we back up.  While acks keep
	 * coming, the pipeline needs no help (and gets no extra message). */
	if (pr->match < rlog_last_index(&r->log)) {
		bool stuck = pr->state != PROGRESS_REPLICATE ||
		    pr->match == pr->match_at_hb;

		pr->match_at_hb = pr->match;
		if (stuck) {
			rv = replication_send_append(r, pr, true);
			if (rv != 0)
				return rv;
		}
	} else {
		pr->match_at_hb = pr->match;
	}
	return readindex_handle_heartbeat_ack(r, from_idx, m->ctx);
}

int raft_report_unreachable(struct raft *r, raft_id peer)
{
	int i = raft_member_index(r, peer);
	struct progress *pr;

	if (r->role != RAFT_LEADER || i < 0 || (uint32_t)i == r->self_idx)
		return 0;
	pr = &r->prs[i];
	/* What was pipelined is probably lost: go back to one probe at a
	 * time from match + 1 (etcd's ReportUnreachable). */
	if (pr->state == PROGRESS_REPLICATE)
		progress_become_probe(pr);
	return 0;
}

/* ------------------------------------------------------------- follower */

static void truncate_log(struct raft *r, raft_index from)
{
	if (from <= rlog_last_index(&r->log) &&
	    (r->truncated_from == 0 || from < r->truncated_from))
		r->truncated_from = from;
	rlog_truncate_from(&r->log, from);
	if (r->stable >= from)
		r->stable = from - 1;
	if (r->persist_next > from)
		r->persist_next = from;
	if (r->conf_index >= from)
		raft_conf_recompute(r); /* config.h C1: the change is undone */
}

static void leader_contact(struct raft *r, raft_id from)
{
	if (r->role != RAFT_FOLLOWER || r->leader != from)
		raft_become_follower(r, r->term, from);
	r->election_elapsed = 0;
}

/* Append what we do not have yet; returns 0 or -ENOMEM. */
static int append_new(struct raft *r, const struct raft_msg *m)
{
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		raft_term t;

		if (rlog_term(&r->log, e->index, &t) == 0 && t == e->term)
			continue;
		if (e->index <= rlog_last_index(&r->log)) {
			/* Figure 2: a conflict deletes the entry and all
			 * that follow.  Committed entries never conflict. */
			if (e->index <= r->commit) {
				raft_trace(r,
				    "refusing to truncate committed "
				    "index %llu",
				    (unsigned long long)e->index);
				r->dropped++;
				return 1;
			}
			truncate_log(r, e->index);
		}
		for (; i < m->n_entries; i++) {
			const struct raft_entry *x = &m->entries[i];
			struct raft_conf_change cc;
			int rv = rlog_append_copy(&r->log, x);

			if (rv != 0)
				return rv;
			/* config.h C1: in force once appended (msg_sane
			 * checked that it decodes). */
			if (x->type == RAFT_ENTRY_CONF &&
			    raft_conf_change_decode(x, &cc) == 0)
				raft_conf_set(r, &cc.conf, x->index);
		}
		break;
	}
	return 0;
}

int replication_handle_append(struct raft *r, const struct raft_msg *m)
{
	struct raft_msg resp = { 0 };
	raft_index last_new = m->index + m->n_entries;
	raft_term t;
	int rv;

	leader_contact(r, m->from);
	resp.type = RAFT_MSG_APPEND_RESP;
	resp.to = m->from;
	if (m->index < r->commit) {
		/* Everything up to commit matches already; tell the leader
		 * where we are (an entry-less success at our commit). */
		if (last_new <= r->commit) {
			resp.index = r->commit;
			return raft_send(r, &resp, 0);
		}
	}
	if (m->index < r->log.snap_index) {
		resp.index = r->commit;
		return raft_send(r, &resp, 0);
	}
	if (rlog_term(&r->log, m->index, &t) == 0 && t == m->log_term) {
		rv = append_new(r, m);
		if (rv < 0)
			return rv;
		if (rv > 0)
			return 0;
		if (m->commit > r->commit)
			replication_commit_to(r,
			    m->commit < last_new ? m->commit : last_new);
		resp.index = last_new;
		return raft_send(r, &resp, 0);
	}
	/* Mismatch: say where to look instead. */
	resp.reject = true;
	resp.index = m->index;
	if (m->index > rlog_last_index(&r->log)) {
		resp.hint_index = rlog_last_index(&r->log);
		resp.hint_term = rlog_last_term(&r->log);
	} else {
		resp.hint_index = rlog_find_conflict_by_term(&r->log, m->index,
		    m->log_term);
		resp.hint_term = rlog_term_or_zero(&r->log, resp.hint_index);
	}
	return raft_send(r, &resp, 0);
}

int replication_handle_heartbeat(struct raft *r, const struct raft_msg *m)
{
	struct raft_msg resp = { 0 };
	raft_index c = m->commit;

	leader_contact(r, m->from);
	if (c > rlog_last_index(&r->log))
		c = rlog_last_index(&r->log);
	if (c > r->commit)
		replication_commit_to(r, c);
	if (m->done)
		return 0; /* commit news: no answer wanted */
	resp.type = RAFT_MSG_HEARTBEAT_RESP;
	resp.to = m->from;
	resp.ctx = m->ctx;
	return raft_send(r, &resp, 0);
}
