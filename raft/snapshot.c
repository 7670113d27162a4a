/*
 * snapshot.c - log compaction and chunked InstallSnapshot (Raft paper 7
 * and Figure 13).  Contracts: snapshot.h (raft_compact: raft.h).
 *
 * The application offers a snapshot of its state at an applied index
 * (raft_compact); the core keeps the bytes, drops the log prefix and hands
 * the snapshot out once for persisting.  A leader whose follower needs an
 * entry that was compacted away sends that snapshot in chunks of
 * cfg.snapshot_chunk_bytes, stop-and-wait: each chunk is acknowledged with
 * the number of contiguous bytes the follower holds (SNAPSHOT_RESP.offset).
 *
 * Follower side, the transfer states:
 *
 *   idle --(chunk at offset 0)------------> receiving   (rx_active)
 *   receiving --(chunk at rx_len)---------> receiving / complete
 *   receiving --(gap or other snapshot)---> reject, leader resumes at rx_len
 *                                           or restarts at 0
 *   complete --> installed: log reset, snapshot handed out for persisting
 *                and restoring; the APPEND_RESP that tells the leader
 *                leaves only after it is durable.
 *
 * A transfer broken by a lost chunk resumes where the follower stopped:
 * the leader resends the chunk at the acknowledged offset after more than
 * two heartbeat periods without progress (snapshot_tick).
 *
 * No snapshot is ever copied whole here: the bytes are a reference-counted
 * struct raft_snap_buf (raft.h) that raft_compact_buf() hands in, a ready
 * batch lends out and the driver's threads keep by reference; a follower
 * receives into one buffer of the announced size, taken at offset 0, and
 * installs that buffer as it is.  Work per chunk is proportional to the
 * chunk.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "raft/config.h"
#include "raft/raft_int.h"
#include "raft/replication.h"
#include "raft/snapshot.h"

/* ------------------------------------------------- shared snapshot bytes */

struct raft_snap_buf {
	atomic_uint_fast32_t refs;
	uint64_t len;
	uint8_t *data;
};

struct raft_snap_buf *raft_snap_buf_new(void *data, uint64_t len)
{
	struct raft_snap_buf *b = malloc(sizeof(*b));

	if (b == NULL)
		return NULL;
	atomic_init(&b->refs, 1);
	b->len = len;
	b->data = len > 0 ? data : NULL;
	if (len == 0)
		free(data);
	return b;
}

struct raft_snap_buf *raft_snap_buf_ref(struct raft_snap_buf *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

void raft_snap_buf_unref(struct raft_snap_buf *b)
{
	if (b == NULL ||
	    atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(b->data);
	free(b);
}

const uint8_t *raft_snap_buf_data(const struct raft_snap_buf *b)
{
	return b->data;
}

uint64_t raft_snap_buf_len(const struct raft_snap_buf *b)
{
	return b->len;
}

/* Hold @b (our reference passes in) as the snapshot's bytes. */
static void hold(struct raft *r, struct raft_snap_buf *b)
{
	raft_snap_buf_unref(r->snap_buf);
	r->snap_buf = b;
	r->snap_data = b != NULL ? b->data : NULL;
	r->snap_len = b != NULL ? b->len : 0;
}

int snapshot_set_copy(struct raft *r, const void *data, uint64_t len)
{
	uint8_t *copy = NULL;
	struct raft_snap_buf *b;

	if (len > 0) {
		copy = malloc(len);
		if (copy == NULL)
			return -ENOMEM;
		memcpy(copy, data, len);
	}
	b = raft_snap_buf_new(copy, len);
	if (b == NULL) {
		free(copy);
		return -ENOMEM;
	}
	hold(r, b);
	return 0;
}

static void reset_rx(struct raft *r);

void snapshot_free(struct raft *r)
{
	hold(r, NULL);
	reset_rx(r);
}

/* ------------------------------------------------------------ compaction */

int raft_compact(struct raft *r, raft_index index, const void *data,
    uint64_t len)
{
	struct raft_snap_buf *b;
	uint8_t *copy = NULL;
	int rv;

	if (index <= r->log.snap_index)
		return RAFT_ESTALE;
	if (len > 0) {
		copy = malloc(len);
		if (copy == NULL)
			return -ENOMEM;
		memcpy(copy, data, len);
	}
	b = raft_snap_buf_new(copy, len);
	if (b == NULL) {
		free(copy);
		return -ENOMEM;
	}
	rv = raft_compact_buf(r, index, b);
	if (rv != 0)
		raft_snap_buf_unref(b);
	return rv;
}

int raft_compact_buf(struct raft *r, raft_index index,
    struct raft_snap_buf *buf)
{
	raft_term term;

	if (index <= r->log.snap_index)
		return RAFT_ESTALE;
	if (index > r->applying || rlog_term(&r->log, index, &term) != 0)
		return -EINVAL;
	hold(r, buf);
	memset(&r->snap_meta, 0, sizeof(r->snap_meta));
	r->snap_meta.index = index;
	r->snap_meta.term = term;
	/* The configuration in force at @index (config.h C7), found before
	 * the prefix holding it is dropped. */
	raft_conf_at(r, index, &r->snap_conf, &r->snap_conf_index);
	config_to_meta(&r->snap_conf, &r->snap_meta);
	rlog_compact(&r->log, index, term);
	r->snap_persist_pending = true;
	return 0;
}

static int send_chunk(struct raft *r, struct progress *pr)
{
	struct raft_msg m = { 0 };
	uint64_t left = r->snap_len - pr->snap_offset;

	m.type = RAFT_MSG_SNAPSHOT;
	m.to = pr->id;
	m.snap = r->snap_meta;
	m.offset = pr->snap_offset;
	m.total = r->snap_len;
	m.chunk_len = (uint32_t)(left < r->cfg.snapshot_chunk_bytes
	        ? left
	        : r->cfg.snapshot_chunk_bytes);
	m.done = m.offset + m.chunk_len == m.total;
	pr->snap_idle_ticks = 0;
	return raft_send(r, &m, 0);
}

int snapshot_send(struct raft *r, struct progress *pr)
{
	if (r->snap_meta.index == 0)
		return 0; /* nothing compacted: cannot happen, be quiet */
	raft_trace(r, "sending snapshot %llu (%llu bytes) to %llu",
	    (unsigned long long)r->snap_meta.index,
	    (unsigned long long)r->snap_len, (unsigned long long)pr->id);
	progress_become_snapshot(pr, r->snap_meta.index);
	return send_chunk(r, pr);
}

int snapshot_tick(struct raft *r, struct progress *pr)
{
	uint64_t chunk = r->cfg.snapshot_chunk_bytes;

	if (pr->state != PROGRESS_SNAPSHOT)
		return 0;
	if (pr->snap_index != r->snap_meta.index) /* compacted again */
		return snapshot_send(r, pr);
	if (++pr->snap_idle_ticks < 2 * r->cfg.heartbeat_tick + 1)
		return 0;
	if (pr->snap_offset >= r->snap_len && r->snap_len > 0)
		pr->snap_offset = ((r->snap_len - 1) / chunk) * chunk;
	return send_chunk(r, pr);
}

int snapshot_handle_resp(struct raft *r, uint32_t from_idx,
    const struct raft_msg *m)
{
	struct progress *pr;

	if (r->role != RAFT_LEADER)
		return 0;
	pr = &r->prs[from_idx];
	if (pr->state != PROGRESS_SNAPSHOT || m->index != pr->snap_index ||
	    m->offset > r->snap_len)
		return 0;
	if (m->reject) {
		pr->snap_offset = m->offset;
		return send_chunk(r, pr);
	}
	if (m->offset <= pr->snap_offset)
		return 0; /* duplicate acknowledgement */
	pr->snap_offset = m->offset;
	if (pr->snap_offset < r->snap_len)
		return send_chunk(r, pr);
	return 0; /* complete: the follower's APPEND_RESP moves us on */
}

static void reset_rx(struct raft *r)
{
	free(r->rx_buf);
	r->rx_buf = NULL;
	r->rx_active = false;
	r->rx_len = 0;
	r->rx_total = 0;
}

static int reply(struct raft *r, const struct raft_msg *m, uint8_t type,
    raft_index index, uint64_t offset, bool reject)
{
	struct raft_msg resp = { 0 };

	resp.type = type;
	resp.to = m->from;
	resp.index = index;
	resp.offset = offset;
	resp.reject = reject;
	return raft_send(r, &resp, 0);
}

/* The transfer is complete: install it, the received buffer wrapped in
 * @b (which we own). */
static int install(struct raft *r, const struct raft_msg *m,
    struct raft_snap_buf *b)
{
	struct raft_snapshot_meta meta = r->rx_meta;
	raft_term t;

	if (rlog_term(&r->log, meta.index, &t) == 0 && t == meta.term) {
		/* We hold that entry already: the snapshot only tells us it
		 * is committed. */
		raft_snap_buf_unref(b);
		reset_rx(r);
		replication_commit_to(r, meta.index);
		return reply(r, m, RAFT_MSG_APPEND_RESP, r->commit, 0, false);
	}
	raft_trace(r,
	    "installing snapshot %llu term %llu (%llu bytes) from %llu",
	    (unsigned long long)meta.index, (unsigned long long)meta.term,
	    (unsigned long long)r->rx_len, (unsigned long long)m->from);
	if (rlog_last_index(&r->log) > meta.index &&
	    (r->truncated_from == 0 || meta.index + 1 < r->truncated_from))
		r->truncated_from = meta.index + 1; /* a suffix we drop */
	rlog_reset(&r->log, meta.index, meta.term);
	config_from_meta(&meta, &r->snap_conf);
	r->snap_conf_index = meta.index;
	raft_conf_set(r, &r->snap_conf, meta.index);
	if (r->stable > meta.index)
		r->stable = meta.index;
	r->persist_next = meta.index + 1;
	hold(r, b); /* the received bytes, as they are */
	r->snap_meta = meta;
	reset_rx(r);
	r->snap_persist_pending = true;
	r->snap_install_pending = true;
	r->commit = meta.index;
	r->applying = meta.index;
	return reply(r, m, RAFT_MSG_APPEND_RESP, meta.index, 0, false);
}

int snapshot_handle_chunk(struct raft *r, const struct raft_msg *m)
{
	struct raft_snap_buf *b = NULL;
	bool same;

	if (r->role != RAFT_FOLLOWER || r->leader != m->from)
		raft_become_follower(r, r->term, m->from);
	r->election_elapsed = 0;
	if (m->snap.index <= r->commit) {
		reset_rx(r);
		return reply(r, m, RAFT_MSG_APPEND_RESP, r->commit, 0, false);
	}
	same = r->rx_active && r->rx_meta.index == m->snap.index &&
	    r->rx_meta.term == m->snap.term && r->rx_total == m->total;
	if (!same) {
		if (m->offset != 0)
			return reply(r, m, RAFT_MSG_SNAPSHOT_RESP,
			    m->snap.index, 0, true);
		reset_rx(r);
		/* The whole snapshot's room at once: chunks land in place and
		 * the installed snapshot keeps this very buffer (a growing
		 * buffer would copy what it holds at every doubling). */
		r->rx_buf = malloc(m->total > 0 ? m->total : 1);
		if (r->rx_buf == NULL)
			return -ENOMEM;
		r->rx_active = true;
		r->rx_meta = m->snap;
		r->rx_total = m->total;
	} else if (m->offset != r->rx_len) {
		/* A duplicate (behind) or a gap (ahead): tell the leader
		 * where we are; only a gap is a reject. */
		return reply(r, m, RAFT_MSG_SNAPSHOT_RESP, m->snap.index,
		    r->rx_len, m->offset > r->rx_len);
	}
	if (m->chunk_len > r->rx_total - r->rx_len)
		return 0; /* past the total it announced: malformed, dropped */
	if (r->rx_len + m->chunk_len == r->rx_total) {
		/* The last chunk: the wrapper first, so that nothing is taken
		 * unless the install can go through. */
		b = raft_snap_buf_new(r->rx_buf, r->rx_total);
		if (b == NULL)
			return -ENOMEM;
	}
	if (m->chunk_len > 0)
		memcpy(r->rx_buf + r->rx_len, m->chunk, m->chunk_len);
	r->rx_len += m->chunk_len;
	if (b != NULL) {
		r->rx_buf = NULL; /* @b owns the bytes now */
		return install(r, m, b);
	}
	return reply(r, m, RAFT_MSG_SNAPSHOT_RESP, m->snap.index, r->rx_len,
	    false);
}
