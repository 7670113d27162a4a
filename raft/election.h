/*
 * election.h - the core's elections (election.c): election timers,
 * pre-vote, vote, check-quorum and leadership transfer.
 *
 * Internal to the pure core (the .c files directly under raft/); the
 * driver sees only raft.h (raft_campaign, raft_transfer_leadership).
 * Every function here runs inside a raft_tick/raft_step/raft_* call, never
 * between raft_ready() and raft_advance(), and only queues messages
 * (raft_send): nothing is sent or written here.
 *
 * Role changes (the diagram is in raft.c): a campaign makes a member a
 * pre-candidate or candidate; a quorum of grants makes it candidate or
 * leader; a quorum of refusals, or check-quorum failing on a leader, makes
 * it a follower again.
 */
#ifndef RAFTKV_ELECTION_H
#define RAFTKV_ELECTION_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/raft.h"

struct progress;

/*
 * One tick of election time, in any role.
 *
 * Leader: every election_tick ticks, check-quorum (unless disabled): if
 * fewer than a quorum of voters were heard from since the last check, step
 * down to follower in the same term; a leadership transfer not finished
 * by then is abandoned.  Every heartbeat_tick ticks, queue a heartbeat to
 * each follower (carrying the current read-index round) and let stalled
 * snapshot transfers resend (snapshot_tick).
 * Other roles: once the randomized election timeout has passed without
 * hearing from a leader, campaign (pre-vote first unless disabled).
 *
 * Returns 0, or -ENOMEM if a message could not be queued; the role change
 * or timer update has been made regardless, and the next tick retries.
 */
int election_tick(struct raft *r);

/*
 * Start a campaign (Raft paper 5.2; thesis 9.6 for @pre).  With @pre,
 * become pre-candidate and ask every other voter whether it would vote for
 * us in term + 1, without changing our term or vote; otherwise become
 * candidate: term + 1, vote for ourselves (hard state), and request votes.
 * @transfer marks the requests (ctx 1) as a leadership transfer, which
 * voters honour even while they hear from a leader.  Pending and
 * forwarded reads fail (readindex_fail_all).  A cluster of one wins at
 * once: it becomes leader and appends its no-op.
 *
 * Callers never call it on a leader (raft_campaign, election_tick and
 * election_handle_timeout_now check; election_handle_vote_resp calls it
 * as pre-candidate).  Returns 0 or -ENOMEM (not every request was queued:
 * the election timeout starts another campaign).
 */
int election_campaign(struct raft *r, bool pre, bool transfer);

/*
 * Answer a PREVOTE or VOTE request @m, in any role; step_term has already
 * handled its term (m->term >= ours, and only a pre-vote may still be for
 * a higher one).  Granted when we may vote for m->from (already did in
 * this term, or no vote and no known leader, or a pre-vote for a later
 * term) and its log is at least as up to date as ours (5.4.1).  Granting
 * a real vote records it (r->vote, hard state) and restarts the election
 * timer.  The answer is queued "after persist": no grant leaves before
 * the vote is durable.  Returns 0 or -ENOMEM (vote recorded, answer lost:
 * the candidate times out and asks again).
 */
int election_handle_vote(struct raft *r, const struct raft_msg *m);

/*
 * Count a PREVOTE_RESP or VOTE_RESP @m from voter number @from_idx (its
 * index in cfg.voters).  Ignored unless we are pre-candidate (and it
 * answers a pre-vote for term + 1, or refuses) or candidate; each voter's
 * first answer counts.  A quorum of grants moves a pre-candidate to
 * candidate (election_campaign) and a candidate to leader
 * (raft_become_leader); a quorum of refusals makes us follower.
 * Returns 0 or -ENOMEM (from the campaign or the leader's no-op).
 */
int election_handle_vote_resp(struct raft *r, uint32_t from_idx,
    const struct raft_msg *m);

/*
 * TIMEOUT_NOW from the leader (thesis 3.10, leadership transfer): campaign
 * at once, skipping pre-vote, with requests marked as a transfer.  Ignored
 * by a leader.  Returns 0 or -ENOMEM (see election_campaign).
 */
int election_handle_timeout_now(struct raft *r, const struct raft_msg *m);

/*
 * Leader: if a transfer to @pr's member is in progress and it now holds
 * our whole log, queue TIMEOUT_NOW to it.  Otherwise nothing.  On -ENOMEM
 * nothing is sent and the transfer times out after an election timeout
 * (election_tick), so there is no error to return.
 */
void election_check_transfer(struct raft *r, struct progress *pr);

/*
 * Leader stickiness (thesis 4.2.3): true while check-quorum is on and we
 * are a leader, or heard from one within the minimum election timeout
 * (heard_elapsed, whatever our term did since), or restarted less than
 * that ago.  step_term then ignores (pre)vote requests of a higher term
 * that are not a transfer, election_handle_vote refuses the others and
 * raft_campaign refuses: a leader's read lease rests on it
 * (readindex.c).  Any role; changes nothing.
 */
bool election_in_lease(const struct raft *r);

#endif
