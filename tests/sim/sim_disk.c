/*
 * sim_disk.c - the simulator's disk model.
 *
 * Each member has a durable state (hard state, snapshot, log) and a FIFO
 * of pending writes, one per ready batch that must persist or holds
 * msgs_after_persist.  A write completes after disk_min_us..disk_max_us,
 * never before the previous one; only then does it change the durable
 * state, send its msgs_after_persist and call raft_persisted().  A crash
 * loses every pending write (unsynced data); a restarted member sees only
 * the durable state.  With cfg.lying_disk the disk also forgets the vote
 * and the last entry it reported durable, which the checks must catch
 * (the checker's self-test).
 *
 * The durable state is checked as it is written: a snapshot older than
 * the stored one, a term that goes back, a vote that changes within a term
 * or entries that leave a hole fail the run.
 */
#include "tests/sim/sim_int.h"

#include <inttypes.h>

/* ===================================================================== */
/* disk                                                                  */
/* ===================================================================== */

void sim_disk_dentry_free(struct dentry *d)
{
	free(d->data);
	d->data = NULL;
}

void sim_disk_write_free(struct pwrite *w)
{
	uint32_t i;

	for (i = 0; i < w->n_ents; i++)
		sim_disk_dentry_free(&w->ents[i]);
	free(w->ents);
	free(w->snap_data);
	for (i = 0; i < w->n_msgs; i++)
		free(w->msgs[i].buf);
	free(w->msgs);
	free(w);
}

/* Make the pending write @w durable on member @i. */
void sim_disk_apply(struct sim *s, int i, struct pwrite *w)
{
	struct member *m = &s->m[i];
	size_t k;

	if (w->has_snap) {
		raft_index si = w->snap.index;
		bool keep = false;
		size_t drop;

		if (si < m->snap.index)
			sim_fail(s,
			    "disk: n%d persists snapshot %" PRIu64
			    " older than its stored one %" PRIu64,
			    i + 1, si, m->snap.index);
		/* Keep the suffix after si only if the stored log holds
		 * (si, term) and the core kept it in memory too. */
		if (si > m->snap.index && si <= disk_last(m) &&
		    m->log[si - m->snap.index - 1].term == w->snap.term)
			keep = w->snap_keep_suffix;
		if (si == m->snap.index && m->has_snap &&
		    m->snap.term == w->snap.term)
			keep = w->snap_keep_suffix;
		drop = keep ? si - m->snap.index : m->log_n;
		for (k = 0; k < drop; k++)
			sim_disk_dentry_free(&m->log[k]);
		if (m->log_n > drop)
			memmove(m->log, m->log + drop,
			    (m->log_n - drop) * sizeof *m->log);
		m->log_n -= drop;
		m->snap = w->snap;
		m->has_snap = true;
		free(m->snap_data);
		m->snap_data = w->snap_data;
		m->snap_len = w->snap_len;
		w->snap_data = NULL;
	}
	if (w->n_ents) {
		raft_index first = w->first_index;
		size_t at;

		if (first <= m->snap.index || first > disk_last(m) + 1)
			sim_fail(s,
			    "disk: n%d persists entries from %" PRIu64
			    " but its durable log is (%" PRIu64 ", %" PRIu64
			    "]",
			    i + 1, first, m->snap.index, disk_last(m));
		at = first - m->snap.index - 1;
		for (k = at; k < m->log_n; k++)
			sim_disk_dentry_free(&m->log[k]);
		m->log_n = at;
		grow((void **)&m->log, &m->log_cap, m->log_n + w->n_ents,
		    sizeof *m->log);
		for (k = 0; k < w->n_ents; k++) {
			m->log[m->log_n++] = w->ents[k];
			w->ents[k].data = NULL;
		}
	}
	if (w->hs_changed) {
		if (w->hs.term < m->hs.term)
			sim_fail(s,
			    "disk: n%d's durable term goes back from %" PRIu64
			    " to %" PRIu64,
			    i + 1, m->hs.term, w->hs.term);
		if (w->hs.term == m->hs.term && m->hs.vote &&
		    w->hs.vote != m->hs.vote)
			sim_fail(s,
			    "disk: n%d changes its vote in term %" PRIu64
			    " from n%" PRIu64 " to n%" PRIu64,
			    i + 1, m->hs.term, m->hs.vote, w->hs.vote);
		m->hs = w->hs;
	}
}

void sim_disk_schedule(struct sim *s, int i, struct pwrite *w)
{
	struct member *m = &s->m[i];
	struct event *e;
	uint64_t at = s->now +
	    sim_rand_range(s, s->cfg.disk_min_us, s->cfg.disk_max_us);

	if (at < m->last_done_at)
		at = m->last_done_at;
	m->last_done_at = at;
	w->done_at = at;
	m->wq_batch = w;
	if (m->wq_tail)
		m->wq_tail->next = w;
	else
		m->wq_head = w;
	m->wq_tail = w;
	e = sim_ev_alloc(s);
	e->kind = EV_DISK;
	e->to = (uint8_t)i;
	e->to_inc = m->inc;
	sim_ev_push(s, e, at);
}

/* Is (index, term) durable on member @i (stored log or snapshot)? */
bool sim_disk_has(const struct member *m, raft_index index, raft_term term)
{
	if (m->has_snap && index <= m->snap.index)
		return true;
	if (index > disk_last(m) || index <= m->snap.index)
		return false;
	return m->log[index - m->snap.index - 1].term == term;
}

struct pwrite *sim_disk_write_new(struct sim *s, int i,
    const struct raft_ready *rd, bool keep_suffix)
{
	struct pwrite *w = xcalloc(1, sizeof *w);
	uint32_t k;

	w->must_persist = rd->must_persist;
	w->token = rd->persist_token;
	if (rd->must_persist) {
		w->hs_changed = rd->hs_changed;
		w->hs = rd->hs;
		if (rd->n_entries) {
			w->ents = xcalloc(rd->n_entries, sizeof *w->ents);
			w->n_ents = rd->n_entries;
			w->first_index = rd->entries[0].index;
			for (k = 0; k < rd->n_entries; k++) {
				const struct raft_entry *e = &rd->entries[k];
				w->ents[k].term = e->term;
				w->ents[k].type = e->type;
				w->ents[k].len = e->len;
				w->ents[k].data = e->len
				    ? xmemdup(e->data, e->len)
				    : NULL;
			}
		}
		if (rd->has_snapshot) {
			w->has_snap = true;
			w->snap_keep_suffix = keep_suffix;
			w->snap = rd->snap_meta;
			w->snap_data = xmemdup(rd->snap_data, rd->snap_len);
			w->snap_len = rd->snap_len;
		}
	}
	if (rd->n_msgs_after_persist) {
		w->msgs = xcalloc(rd->n_msgs_after_persist, sizeof *w->msgs);
		for (k = 0; k < rd->n_msgs_after_persist; k++) {
			const struct raft_msg *msg = &rd->msgs_after_persist[k];
			if (msg->from != (raft_id)i + 1)
				sim_fail(s,
				    "n%d queued a %s with from=%" PRIu64, i + 1,
				    raft_msg_type_name(msg->type), msg->from);
			w->msgs[k].buf = sim_net_encode(s, msg,
			    &w->msgs[k].len);
			w->msgs[k].to = (uint8_t)(msg->to - 1);
			w->msgs[k].mtype = msg->type;
			if (msg->to == 0 || msg->to > (raft_id)s->n)
				w->msgs[k].to = 0xff;
			if (msg->type == RAFT_MSG_APPEND_RESP && msg->reject)
				s->m[i].append_rejects++;
		}
		w->n_msgs = rd->n_msgs_after_persist;
	}
	return w;
}

uint64_t sim_disk_crash(struct sim *s, int i)
{
	struct member *m = &s->m[i];
	struct pwrite *w, *next;
	uint64_t lost = 0;

	for (w = m->wq_head; w; w = next) {
		next = w->next;
		lost += w->must_persist;
		sim_disk_write_free(w);
	}
	m->wq_head = m->wq_tail = m->wq_batch = NULL;
	s->st.writes_lost += lost;
	if (s->cfg.lying_disk) {
		m->hs.vote = 0;
		if (m->log_n)
			sim_disk_dentry_free(&m->log[--m->log_n]);
	}
	return lost;
}
