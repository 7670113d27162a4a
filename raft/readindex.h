/*
 * readindex.h - the core's linearizable read points (readindex.c, thesis
 * 6.4 "ReadIndex"): on the leader, pending reads, numbered heartbeat
 * rounds and their confirmation by a quorum; on a follower, reads
 * forwarded to the leader.
 *
 * Internal to the pure core (the .c files directly under raft/); the
 * driver calls raft_read_index() (raft.h) and receives the answers in
 * rd.read_states / rd.read_failed.  Answers are queued on struct raft
 * (r->rs, r->rf) or as messages (raft_send) and handed out by the next
 * raft_ready().
 */
#ifndef RAFTKV_READINDEX_H
#define RAFTKV_READINDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/raft.h"

/*
 * Leader only: register read @ctx for @from (0: a local request, else the
 * follower that forwarded it).  While the lease holds (readindex.c) it is
 * answered at once with the commit index, without a round.  Once an entry of the current term is
 * committed, its read index is the commit index and it joins the current
 * (not yet broadcast) heartbeat round; before that it waits for
 * readindex_on_commit_in_term.  A cluster of one answers at once.
 * Returns 0 or -ENOMEM (not registered).
 */
int readindex_request(struct raft *r, uint64_t ctx, raft_id from);

/*
 * Leader only, from replication_maybe_commit: the first entry of our term
 * is committed; reads waiting for it get the commit index and a round.
 * Cannot fail (in a cluster of one, a read whose answer cannot be queued
 * stays pending).
 */
void readindex_on_commit_in_term(struct raft *r);

/*
 * Leader only: voter number @from_idx echoed read round @ctx in a
 * heartbeat answer.  Rounds never issued are ignored.  Every read whose
 * round is now confirmed by a quorum is answered, in order.  Returns 0 or
 * -ENOMEM (the reads not yet answered stay pending).
 */
int readindex_handle_heartbeat_ack(struct raft *r, uint32_t from_idx,
    uint64_t ctx);

/*
 * READ_INDEX @m forwarded by a follower, in any role: a leader registers
 * it (readindex_request); a non-leader, or a request with ctx 0, refuses
 * it (READ_INDEX_RESP with reject, so the follower reports it failed).
 * Returns 0 or -ENOMEM.
 */
int readindex_handle_forward(struct raft *r, const struct raft_msg *m);

/*
 * READ_INDEX_RESP @m for a read we forwarded, in any role: report it as a
 * read state (index) or as failed (reject).  Answers for reads we no
 * longer wait for are ignored.  Returns 0 or -ENOMEM.
 */
int readindex_handle_forward_resp(struct raft *r, const struct raft_msg *m);

/*
 * Leadership or the known leader changed: every pending read (leader) and
 * every forwarded read (follower) fails, so callers retry elsewhere.  Any
 * role; answers that cannot be queued (-ENOMEM) are lost, and their
 * callers time out.
 */
void readindex_fail_all(struct raft *r);

/*
 * Each tick, any role: forwarded reads unanswered for two election
 * timeouts fail.  Returns 0 or -ENOMEM (the read is dropped anyway).
 */
int readindex_tick(struct raft *r);

/*
 * Leader, from raft_ready(): should a heartbeat round be broadcast now for
 * reads that joined round *@round?  True when a round has requests and
 * has not been broadcast, no earlier extra round is still unconfirmed and
 * there are other voters.  Changes nothing.
 */
bool readindex_round_wanted(struct raft *r, uint64_t *round);

/*
 * Does this member take read leases when it leads (cfg.disable_lease_read
 * and disable_check_quorum clear, and a lease of at least one tick)?  Any
 * role; changes nothing.
 */
bool readindex_lease_on(const struct raft *r);

/*
 * Leader, for a periodic heartbeat: the round it carries.  With lease
 * reads on, every periodic heartbeat is a round of its own (reads waiting
 * for a round join it), so its echoes renew the lease; otherwise the
 * latest round.  May start a round.
 */
uint64_t readindex_heartbeat_round(struct raft *r);

/*
 * Leader, from replication_bcast_heartbeat: heartbeats of read round
 * @round leave now; the first time, remember the tick (the lease an echo
 * of it grants runs from there).  Cannot fail.
 */
void readindex_round_sent(struct raft *r, uint64_t round);

/*
 * Drop the lease (raft_tick_gap): forget every echo and every round's
 * send tick, so only heartbeats sent from now on renew it.  Any role.
 */
void readindex_lease_drop(struct raft *r);

#endif
