/*
 * config.h - the configuration (who votes, who only replicates), its
 * quorum math, and the membership-change entries of the pure core.
 *
 * THE CHOICE: single-server changes (Raft thesis, chapter 4.1-4.3), not
 * joint consensus.  Each change adds a learner, promotes one learner to
 * voter, or removes one member.  Adding or removing a single voter changes
 * the voter set by exactly one, and a majority of n voters and a majority
 * of n + 1 voters always share a member (two disjoint majorities would need
 * at least (n/2 + 1) + ((n+1)/2 + 1) > n + 1 members).  So no two
 * configurations that can be active at once can elect two leaders or
 * commit two different entries at an index in one term -- as long as the
 * only configurations active at once are consecutive ones.  Why that
 * suffices and joint consensus is not needed here: a change at a time is
 * all the operator asks for (add a machine, promote it, remove one;
 * replacing is the three in a row), it needs no second phase, no special
 * entries whose quorum is the union of two, and its invariants are few
 * enough to check after every event in the simulator.  Learners (etcd's,
 * the thesis 4.2.1 "non-voting members") make the add safe for
 * availability: a new machine catches up, through a snapshot if needed,
 * before it counts in any quorum, and promotion is itself a change.
 *
 * INVARIANTS (each held by the code named, and checked by tests/sim):
 *
 *   C1  The configuration in force on a member is the one of the latest
 *       RAFT_ENTRY_CONF entry in its log, committed or not ("applied when
 *       appended", thesis 4.1); with none in the log, the one of its
 *       snapshot; with no snapshot, the bootstrap configuration of
 *       raft_config (the cluster file).  A truncated suffix that held a
 *       change therefore reverts it, and a restart recomputes it from the
 *       durable log and snapshot (raft.c conf_recompute).
 *   C2  A leader appends a change only when the previous one is committed
 *       (conf_index <= commit), so at most one change is ever uncommitted
 *       in any log, and consecutive configurations differ by at most one
 *       voter (config_apply builds each from the previous one).
 *   C3  ... and only once an entry of its own term is committed (the
 *       thesis erratum, raft-dev 2015: without it, a leader of a new term
 *       could append a change on top of an older uncommitted one it does
 *       not know about and make two configurations two changes apart
 *       active at once).  The leader's no-op makes this quick.
 *   C4  Quorums (votes, commit, check-quorum, read-index confirmation)
 *       count only the voters of the configuration in force; a leader
 *       that removed itself counts the others only, and steps down once
 *       the change is committed.
 *   C5  Only voters campaign (timeout, TIMEOUT_NOW, raft_campaign);
 *       learners and removed members never do.  (Pre-)vote requests from
 *       a sender that is not a voter of the receiver's configuration are
 *       dropped.  With C2 a removed member that missed its removal can
 *       gather at most ceil(n/2) of the n + 1 old voters (itself and those
 *       without the entry) -- never a majority -- so it never wins a
 *       pre-vote and never bumps anyone's term; pre-vote and leader
 *       stickiness (election.c) already keep it from disturbing members in
 *       contact with a leader.
 *   C6  AppendEntries, heartbeats, snapshots, TIMEOUT_NOW and read-index
 *       answers are accepted from any sender (thesis 4.1: a new server
 *       must accept a leader not in its configuration; a leader that
 *       removed itself still leads until its removal commits).  Answers
 *       to the leader are accepted from members only (they need a
 *       progress slot).
 *   C7  A snapshot carries the configuration in force at its last
 *       index (the latest change at or before it), so C1 holds after
 *       compaction and InstallSnapshot.
 *   C8  The exception to C5, for liveness: a member whose configuration
 *       in force is a change that removed it as a voter, not known to be
 *       committed, campaigns in the configuration before that change (the
 *       others' votes and its own against that one's quorum).  Without
 *       it, a leader that removed itself and then lost contact (check-
 *       quorum, a crash) holds an entry the remaining voters lack; a
 *       voter without the entry still counts it in its configuration and
 *       needs its vote, which the up-to-date rule refuses: no leader
 *       ever again (the simulator found this, sweep seed 1356).  Safe:
 *       the configuration before an uncommitted change is one that may
 *       still be active anyway (C2), adjacent to the change.  Not
 *       disruptive: once the removal is committed, a majority of the new
 *       voters holds it and drops the member's requests (C5), and the
 *       voters without it plus the member are at most ceil(n/2) of the
 *       n + 1 old voters; a leader elected so leads (without counting
 *       itself) until the removal commits, then steps down (C4).
 *
 * A change's entry carries the whole new configuration, not a delta, so
 * C1 needs no replay: the latest entry is the configuration.  It also
 * carries an opaque context from the host (the member's endpoints...).
 *
 * Entry payload (little-endian):
 *   version u8 (1), type u8, id u64, n_voters u8, n_learners u8,
 *   ids u64[n_voters + n_learners] (voters first), ctx_len u32, ctx
 *
 * Member order: "member index" i means voters[i] for i < n_voters, else
 * learners[i - n_voters]; struct raft keeps its per-member arrays (prs,
 * votes, read_acks) in that order.
 *
 * Pure: libc only.
 */
#ifndef RAFTKV_CONFIG_H
#define RAFTKV_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/raft.h"

/* Largest context a change may carry. */
#define CONFIG_MAX_CTX (64u << 10)

/* Voters plus learners. */
static inline uint32_t config_n_members(const struct raft_conf *c)
{
	return c->n_voters + c->n_learners;
}

/* Votes or acknowledgements that make a majority of the voters. */
static inline uint32_t config_quorum(const struct raft_conf *c)
{
	return c->n_voters / 2 + 1;
}

/* The member at member index @i (< config_n_members). */
static inline raft_id config_member_id(const struct raft_conf *c, uint32_t i)
{
	return i < c->n_voters ? c->voters[i] : c->learners[i - c->n_voters];
}

/* Member index of @id, or -1. */
int config_member_index(const struct raft_conf *c, raft_id id);

bool config_is_voter(const struct raft_conf *c, raft_id id);
bool config_is_learner(const struct raft_conf *c, raft_id id);

/* Well formed: ids non-zero and unique across both sets, at least one
 * voter, at most RAFT_MAX_MEMBERS members.  Returns 0 or -EINVAL. */
int config_check(const struct raft_conf *c);

/* Same voters and learners, in the same order. */
bool config_equal(const struct raft_conf *a, const struct raft_conf *b);

/* How many voters are in one configuration and not the other. */
uint32_t config_voter_diff(const struct raft_conf *a,
    const struct raft_conf *b);

/*
 * @out = @c after change @type of member @id.  Returns 0 or the codes of
 * raft_propose_conf_change for the change itself (-EEXIST, -ENOENT,
 * -ENOSPC, RAFT_ELASTVOTER, -EINVAL).  @out may be @c.
 */
int config_apply(const struct raft_conf *c, int type, raft_id id,
    struct raft_conf *out);

/* Snapshot meta <-> configuration. */
void config_from_meta(const struct raft_snapshot_meta *m, struct raft_conf *c);
void config_to_meta(const struct raft_conf *c, struct raft_snapshot_meta *m);

/*
 * Encode a change into a fresh buffer (*@out, *@len; the caller frees).
 * Returns 0, -EINVAL (ctx too big), -ENOMEM.
 */
int config_encode(int type, raft_id id, const struct raft_conf *c,
    const void *ctx, uint32_t ctx_len, uint8_t **out, uint32_t *len);

#endif
