/*
 * node_ready.c - the ready hand-off: how the member's loop passes each
 * raft_ready batch on (persist -> send -> apply), and takes back what the
 * persister made durable.  node.c is the request loop that calls it.
 *
 * The core/driver contract (raft.h), as the loop implements it, for each
 * batch (node_ready_handle):
 *
 *   1. rd.msgs go out at once (a leader replicates while its own write is
 *      still in flight; it counts itself only later);
 *   2. persistence: a small batch while no batch is at the persister is
 *      written and synced right here (persist_inline), its
 *      rd.msgs_after_persist sent and raft_persisted() called after
 *      raft_advance(); otherwise it is copied into a persist_job for the
 *      persister, together with rd.msgs_after_persist (promises about the
 *      disk: votes, acknowledgements) — unless there is nothing to write
 *      and nothing ahead in the persister's queue, in which case those go
 *      out at once too;
 *   3. the membership changes (node_member_ready: before the RSM, so
 *      that a snapshot taken at an entry has the removed members up to
 *      it); committed entries, a snapshot to restore and read states go
 *      to the RSM (rsm_ready_commit: a small batch while its applier is
 *      idle is applied right here; otherwise copied to the applier, in
 *      order);
 *   4. raft_advance().
 *
 *   durable  when the persister hands back a chain of jobs, oldest first
 *            (node_ready_disk_done): send each job's after-persist
 *            messages, raft_persisted(), and tell the RSM a snapshot was
 *            saved.
 *
 * The fast paths of 2 and 3 spare an idle cluster's command the hand-offs
 * to and from the persister and the applier (each a thread wake-up, the
 * dominant cost of a lone request); under load batches grow past their
 * limits, or find the other thread busy, and take the threads.
 *
 * Everything borrowed from a ready batch is copied before raft_advance(),
 * as raft.h requires, except a snapshot's bytes: the persister and the
 * RSM take a reference to them (raft_snap_buf_ref), so that no snapshot
 * is ever copied on the loop.  Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "raft/util/clock.h"
#include "raft/util/logging.h"
#include "raft/member/copy.h"
#include "raft/member/node_int.h"
#include "raft/net/transport.h"

/* ------------------------------------------------------------- sending */

/* Loss is Raft's business; but a leader's append that could not even be
 * queued tells the core the peer is unreachable, so it stops pipelining.
 * Noted here, reported by report_unreachable() once no batch is out. */
static void note_unreachable(struct node *n, raft_id peer)
{
	for (uint32_t i = 0; i < n->n_unreachable; i++)
		if (n->unreachable[i] == peer)
			return;
	if (n->n_unreachable < RAFT_MAX_MEMBERS)
		n->unreachable[n->n_unreachable++] = peer;
}

static void send_msgs(struct node *n, const struct raft_msg *m, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		if (transport_send(n->tr, &m[i]) == -EAGAIN &&
		    m[i].type == RAFT_MSG_APPEND)
			note_unreachable(n, m[i].to);
}

static void report_unreachable(struct node *n)
{
	for (uint32_t i = 0; i < n->n_unreachable; i++)
		(void)raft_report_unreachable(n->raft, n->unreachable[i]);
	n->n_unreachable = 0;
}

/* --------------------------------------------------------- persistence */

/* Batches at most this big are persisted on the loop when the persister
 * is idle (one submitter's command, a follower's single append); bigger
 * ones, and snapshots, go to the persister. */
#define INLINE_PERSIST_MAX_ENTRIES 4
#define INLINE_PERSIST_MAX_BYTES (64u * 1024)

/* An inline sync slower than this (a stalling disk) blocks the loop's
 * heartbeats: batches go to the persister for a while instead. */
#define INLINE_PERSIST_SLOW_MS 20
#define INLINE_PERSIST_BACKOFF_MS 1000

static bool persist_inline_ok(struct node *n, const struct raft_ready *rd)
{
	uint64_t bytes = 0;

	if (n->disk_inflight != 0 || rd->has_snapshot ||
	    persist_snap_busy(n->persist) ||
	    rd->n_entries > INLINE_PERSIST_MAX_ENTRIES ||
	    (n->inline_persist_after_ms != 0 &&
	        mono_ms() < n->inline_persist_after_ms))
		return false;
	for (uint32_t i = 0; i < rd->n_entries; i++)
		bytes += rd->entries[i].len;
	return bytes <= INLINE_PERSIST_MAX_BYTES;
}

static void persist_here(struct node *n, const struct raft_ready *rd)
{
	uint64_t t0 = mono_ms(), t1;

	persist_inline(n->persist, rd);
	t1 = mono_ms();
	if (t1 - t0 > INLINE_PERSIST_SLOW_MS) {
		log_debug("a sync on the loop took %" PRIu64 " ms: "
		          "syncing on the persister for %d ms",
		    t1 - t0, INLINE_PERSIST_BACKOFF_MS);
		n->inline_persist_after_ms = t1 + INLINE_PERSIST_BACKOFF_MS;
	}
	send_msgs(n, rd->msgs_after_persist, rd->n_msgs_after_persist);
	/* raft_persisted() once the batch is advanced. */
	n->inline_token = rd->persist_token;
	n->inline_persisted = true;
}

/* A persist_job with copies of what @rd lends. */
static struct persist_job *job_new(const struct raft_ready *rd)
{
	struct persist_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		fatalx("out of memory queueing a disk batch");
	j->must_persist = rd->must_persist;
	j->hs_changed = rd->hs_changed;
	j->hs = rd->hs;
	j->token = rd->persist_token;
	if (copy_entries(rd->entries, rd->n_entries, &j->entries, &j->blob))
		fatalx("out of memory copying entries to persist");
	j->n_entries = rd->n_entries;
	if (rd->has_snapshot) {
		/* A reference, not a copy: a snapshot may be a GiB. */
		j->has_snapshot = true;
		j->snap = rd->snap_meta;
		j->snap_buf = raft_snap_buf_ref(rd->snap_buf);
	}
	if (rd->n_msgs_after_persist) {
		j->after = malloc(rd->n_msgs_after_persist * sizeof(*j->after));
		if (j->after == NULL)
			fatalx("out of memory queueing messages");
		for (uint32_t i = 0; i < rd->n_msgs_after_persist; i++) {
			/* Answers and votes only: nothing borrowed inside. */
			j->after[i] = rd->msgs_after_persist[i];
			j->after[i].entries = NULL;
			j->after[i].n_entries = 0;
			j->after[i].chunk = NULL;
			j->after[i].chunk_len = 0;
		}
		j->n_after = rd->n_msgs_after_persist;
	}
	return j;
}

static void queue_disk(struct node *n, const struct raft_ready *rd)
{
	struct persist_job *j;

	if (!rd->must_persist && n->disk_inflight == 0) {
		send_msgs(n, rd->msgs_after_persist, rd->n_msgs_after_persist);
		return;
	}
	if (rd->must_persist && persist_inline_ok(n, rd)) {
		persist_here(n, rd);
		return;
	}
	if (!rd->must_persist && rd->n_msgs_after_persist == 0)
		return;
	j = job_new(rd);
	n->disk_inflight++;
	if (persist_queue(n->persist, j) != 0)
		persist_job_free(j); /* stopping */
}

void node_ready_disk_done(struct node *n, struct persist_job *j)
{
	while (j) {
		struct persist_job *next = j->next;

		send_msgs(n, j->after, j->n_after);
		if (j->must_persist)
			raft_persisted(n->raft, &j->token);
		if (j->snap_saved)
			rsm_loop_compacted(n->rsm);
		if (!j->internal) /* not one queued here (persist.h) */
			n->disk_inflight--;
		persist_job_free(j);
		j = next;
	}
	report_unreachable(n);
}

/* --------------------------------------------------------------- batch */

static void note_role(struct node *n, const struct raft_ready *rd)
{
	struct raft_status st;
	struct transport_stats ts;

	raft_status(n->raft, &st);
	transport_stats(n->tr, &ts);
	if (rd->role_changed)
		log_info("%s in term %" PRIu64 ", leader %" PRIu64,
		    raft_role_name(rd->role), st.term, rd->leader);
	rsm_ready_leader(n->rsm, rd->leader);
	pthread_mutex_lock(&n->mu);
	n->status.raft = st;
	n->status.msgs_sent = ts.sent;
	n->status.msgs_received = ts.received;
	n->status.msgs_dropped = ts.dropped + ts.rejected;
	pthread_mutex_unlock(&n->mu);
}

void node_ready_handle(struct node *n)
{
	struct raft_ready rd;

	while (raft_ready(n->raft, &rd)) {
		send_msgs(n, rd.msgs, rd.n_msgs);
		/* Proposals in a discarded suffix can never commit: say so now
		 * rather than when (if ever) the log grows back to them. */
		if (rd.truncated_from)
			rsm_ready_truncated(n->rsm, rd.truncated_from);
		queue_disk(n, &rd);
		/* Membership first: a snapshot the RSM takes once it applied
		 * these entries carries the removed members they make. */
		node_member_ready(n, &rd);
		rsm_ready_commit(n->rsm, &rd);
		note_role(n, &rd);
		raft_advance(n->raft, &rd);
		if (n->inline_persisted) {
			n->inline_persisted = false;
			raft_persisted(n->raft, &n->inline_token);
		}
		report_unreachable(n);
	}
}
