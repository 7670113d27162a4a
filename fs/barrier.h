/*
 * barrier.h - linearizable read barriers for the mount, batched: requests
 * that arrive while a round is in flight share the NEXT round (a round
 * that began before a request arrived cannot vouch for it), so N
 * concurrent readers cost about two ReadIndex rounds, not N.
 *
 * A round is one fsm_read_barrier(), a ReadIndex of the mount's member:
 * on the leader's mount, while the leader's lease holds (the default,
 * raft/readindex.c), it is answered inside the member without a network
 * round trip; on a follower's mount it costs one round trip to the
 * leader, which sends the commit index along with the answer.  With
 * -o read_mode=index every round is a heartbeat round of the leader.
 *
 * A round that fails for a passing
 * reason (no leader yet, a leader change) is retried until the caller's
 * deadline: a mount cut off from the majority blocks, then fails.
 */
#ifndef RAFTKV_FS_BARRIER_H
#define RAFTKV_FS_BARRIER_H

struct fsm;
struct barrier;

/* A barrier over @m.  NULL on ENOMEM. */
struct barrier *barrier_new(struct fsm *m);
void barrier_free(struct barrier *b);

/*
 * Return once the local state machine has applied everything committed
 * before this call began: 0, or -EIO after @timeout_ms without a
 * successful round (or when the member is shutting down).
 */
int barrier_wait(struct barrier *b, int timeout_ms);

#endif
