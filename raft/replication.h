/*
 * replication.h - the core's log replication (replication.c): the
 * leader's AppendEntries, heartbeats and commit advancement, and the
 * follower's handling of them.
 *
 * Internal to the pure core (the .c files directly under raft/); the
 * driver sees raft_propose, raft_persisted and raft_report_unreachable in
 * raft.h.  Nothing here sends or writes: messages are queued with
 * raft_send and carry entries by index until raft_ready() materialises
 * them; new entries reach the driver through raft_ready()'s persist part.
 *
 * @pr arguments are the leader's progress of a follower (r->prs[i], never
 * our own slot); "leader only" functions must only be called while
 * r->role == RAFT_LEADER.
 */
#ifndef RAFTKV_REPLICATION_H
#define RAFTKV_REPLICATION_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/raft.h"

struct progress;

/*
 * Leader only: append an entry of @type (RAFT_ENTRY_*) in the current term
 * to the local log, count @len towards uncommitted_bytes and mark a
 * broadcast pending (the next raft_ready() replicates every entry appended
 * since the previous one in one AppendEntries per follower).  Takes
 * ownership of @data (@len bytes; NULL when 0) on success only.  Sets
 * *@index (may be NULL) to the new entry's index.  Returns 0 or -ENOMEM
 * (nothing taken, log unchanged).
 */
int replication_append_local(struct raft *r, uint8_t type, void *data,
    uint32_t len, raft_index *index);

/*
 * Leader only: queue one AppendEntries to @pr starting at pr->next, with
 * as many entries as max_msg_entries and max_msg_bytes allow, and our
 * commit index.  Nothing is sent while @pr is paused (PROBE with a probe
 * out, REPLICATE with a full window, SNAPSHOT), nor, unless @allow_empty,
 * when there is no entry to carry.  If the entry before pr->next was
 * compacted away, a snapshot transfer starts instead (snapshot_send).
 * Records the send in @pr (progress_sent, commit_sent).  Returns 0 or
 * -ENOMEM (@pr unchanged; the next heartbeat answer retries).
 */
int replication_send_append(struct raft *r, struct progress *pr,
    bool allow_empty);

/*
 * Leader only, from raft_ready(): for every follower, fill the pipeline
 * (replication_send_append while REPLICATE and the window has room), then
 * send commit news to followers with nothing in flight (one heartbeat per
 * idle follower per call, whatever committed since).  Returns 0 or
 * -ENOMEM (what was queued stays queued; the rest goes out with the next
 * heartbeat round).
 */
int replication_bcast_append(struct raft *r);

/*
 * Leader only: queue a heartbeat to every follower carrying
 * min(commit, its match) and read-index round @ctx (0: none).  Marks the
 * round as sent: reads arriving later join the next round.  Returns 0 or
 * -ENOMEM (some followers get no heartbeat this time).
 */
int replication_bcast_heartbeat(struct raft *r, uint64_t ctx);

/*
 * Leader only: commit news for follower number @i (index in cfg.voters):
 * a heartbeat with min(commit, match) if that is more than we last told
 * it.  It asks for an answer only when it can confirm a read round the
 * follower has not echoed; otherwise it is "done" (no answer).  Returns 0
 * or -ENOMEM.
 */
int replication_commit_news(struct raft *r, uint32_t i);

/*
 * Leader only, each tick: if some idle follower (REPLICATE, nothing in
 * flight) still lags behind our commit index (its news was not sent),
 * ask the next raft_ready() to send it (bcast_pending).  Cannot fail.
 */
void replication_tick(struct raft *r);

/*
 * Follower side of AppendEntries @m (Figure 2, 5.3), in any role: a
 * current-term append makes us follower of m->from and restarts the
 * election timer.  An append that lies wholly at or below our commit
 * index, or starts before our snapshot, is answered with our commit
 * index.  If our log holds the previous entry, append what is
 * new (a conflicting suffix is truncated, never a committed entry: such
 * an append is dropped and counted) and advance commit up to the last new
 * entry; answer APPEND_RESP with the last matched index.  Otherwise reject
 * with a hint for fast backtracking (the last index at or before m->index
 * whose term is <= m->log_term, and its term).  Entries are copied.  The
 * answer is queued after persist.  Returns 0 or -ENOMEM (the log may hold
 * part of the entries; no answer is sent, the leader retries).
 */
int replication_handle_append(struct raft *r, const struct raft_msg *m);

/*
 * APPEND_RESP @m from voter number @from_idx.  Ignored unless leader.  A
 * success raises match (stale ones only unpause a probe), moves PROBE to
 * REPLICATE or SNAPSHOT to PROBE, frees the window, may advance commit
 * (replication_maybe_commit) and finish a transfer; a rejection backs
 * next up using the hint (PROBE) or falls back to PROBE (REPLICATE) and
 * resends at once; stale rejections are ignored.  Acknowledgements beyond
 * our log are dropped and counted.  Returns 0 or -ENOMEM (from the resend).
 */
int replication_handle_append_resp(struct raft *r, uint32_t from_idx,
    const struct raft_msg *m);

/*
 * HEARTBEAT @m, in any role: like an append without entries, it makes us
 * follower of m->from and advances commit to min(m->commit, last index).
 * Commit news (m->done) gets no answer; otherwise HEARTBEAT_RESP echoes
 * m->ctx (the read round).  Returns 0 or -ENOMEM.
 */
int replication_handle_heartbeat(struct raft *r, const struct raft_msg *m);

/*
 * HEARTBEAT_RESP @m from voter number @from_idx.  Ignored unless leader.
 * Unpauses a probe, lets one more append through a full window, resends
 * (even an empty append, to provoke a rejection) to a follower that is
 * behind and not pipelining, or whose match has not moved since its
 * previous answer, and passes the echoed read round to
 * readindex_handle_heartbeat_ack.  Returns 0 or -ENOMEM.
 */
int replication_handle_heartbeat_resp(struct raft *r, uint32_t from_idx,
    const struct raft_msg *m);

/*
 * Leader only: the commit rule (5.4.2).  The highest index durable on a
 * quorum (our own durable index r->stable counts for us) becomes the
 * commit index if it is newer and its entry is of the current term; the
 * first such commit in a term releases waiting reads
 * (readindex_on_commit_in_term).  Returns whether commit advanced (the
 * caller then broadcasts, so followers learn it).  Cannot fail.
 */
bool replication_maybe_commit(struct raft *r);

/*
 * Set the commit index to @index if that is higher (callers guarantee the
 * log or the snapshot holds it); a leader also deducts the newly
 * committed payload from uncommitted_bytes.  Any role; cannot fail.
 */
void replication_commit_to(struct raft *r, raft_index index);

#endif
