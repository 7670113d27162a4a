/*
 * sim_net.c - the simulator's network model.
 *
 * Links are directed and enabled or not: partitions are sets of disabled
 * links, so symmetric, asymmetric, minority/majority and bridge shapes are
 * all expressible (sim_partition, sim_set_link, ...).  Messages are
 * encoded with msg_encode() when sent, so byte counts are wire bytes, and
 * delivered as events that sim.c decodes and steps into the receiver.
 *
 * labrpc fault model mapped onto one-way messages (6.5840-tests.md 1.4):
 * a request/response pair of labrpc is a request message plus a response
 * message here.  Reliable: a small base delay, FIFO per directed link
 * (labrpc dispatches at once; our transport is ZeroMQ over TCP).
 * Unreliable: every message is dropped with probability 10 %; requests
 * get an extra 0-26 ms delay, which reorders them.  Long reordering: a response
 * is delayed by 200 + rand[0, rand[0, 2000]] ms with probability 2/3.  A
 * message over a disabled link, or to/from a member that crashed while it
 * was in flight, is lost (labrpc's caller would get "false" eventually;
 * with one-way messages nobody waits for it).
 */
#include "tests/sim/sim_int.h"

#include <inttypes.h>

/* ===================================================================== */
/* network                                                               */
/* ===================================================================== */

bool sim_net_link_up(const struct sim *s, int from, int to)
{
	return s->link[from][to];
}

/* Schedule delivery of an encoded message (takes ownership of @buf). */
void sim_net_send(struct sim *s, int from, int to, uint8_t *buf, uint32_t len,
    uint8_t mtype)
{
	struct event *e;
	uint64_t delay;
	int copies = 1, k;

	s->st.msgs_sent++;
	s->st.bytes_sent += len;
	if (mtype <= RAFT_MSG_TYPE_MAX) {
		s->st.sent_by_type[mtype]++;
		s->st.bytes_by_type[mtype] += len;
	}
	if (to >= 0 && to < s->n && s->drop_next[from][to] == mtype) {
		s->drop_next[from][to] = 0;
		s->st.msgs_dropped++;
		sim_trace(s, TR_DROP, from, to, mtype, 0, 0);
		free(buf);
		return;
	}
	if (to < 0 || to >= s->n || to == from ||
	    !sim_net_link_up(s, from, to) || s->m[to].r == NULL ||
	    (!s->cfg.reliable && sim_chance(s, 100000)) ||
	    sim_chance(s, s->cfg.drop_ppm)) {
		s->st.msgs_dropped++;
		if (s->cfg.trace)
			sim_trace(s, TR_DROP, from, to < 0 ? 0 : to, mtype, 0,
			    0);
		free(buf);
		return;
	}
	if (sim_chance(s, s->cfg.dup_ppm)) {
		copies = 2;
		s->st.msgs_duplicated++;
	}
	for (k = 0; k < copies; k++) {
		uint64_t at;
		bool extra = false;

		delay = sim_rand_range(s, s->cfg.delay_min_us,
		    s->cfg.delay_max_us);
		if (!s->cfg.reliable && is_request(mtype)) {
			delay += sim_randn(s, 27) * SIM_MS;
			extra = true;
		}
		if ((s->cfg.long_reordering && !is_request(mtype) &&
		        sim_randn(s, 900) < 600) ||
		    sim_chance(s, s->cfg.reorder_ppm)) {
			delay += 200 * SIM_MS +
			    sim_randn(s, sim_randn(s, 2000) + 1) * SIM_MS;
			s->st.msgs_reordered++;
			extra = true;
		}
		at = s->now + delay;
		if (!extra && !s->cfg.shuffle_links) {
			if (at < s->link_last[from][to])
				at = s->link_last[from][to];
			s->link_last[from][to] = at;
		}
		e = sim_ev_alloc(s);
		e->kind = EV_DELIVER;
		e->from = (uint8_t)from;
		e->to = (uint8_t)to;
		e->mtype = mtype;
		e->from_inc = s->m[from].inc;
		e->to_inc = s->m[to].inc;
		e->buf = k == 0 ? buf : xmemdup(buf, len);
		e->len = len;
		sim_ev_push(s, e, at);
	}
}

/* Encode @m into a fresh buffer; fails the run if the codec refuses. */
uint8_t *sim_net_encode(struct sim *s, const struct raft_msg *m, uint32_t *len)
{
	size_t n = msg_encoded_size(m);
	uint8_t *buf = xmalloc(n);
	long w = msg_encode(m, buf, n);

	if (w < 0 || (size_t)w != n)
		sim_fail(s, "codec: msg_encode(%s) returned %ld for %zu bytes",
		    raft_msg_type_name(m->type), w, n);
	*len = (uint32_t)n;
	return buf;
}

static int member_of(struct sim *s, raft_id id)
{
	if (id == 0 || id > (raft_id)s->n)
		return -1;
	return (int)(id - 1);
}

void sim_net_send_msg(struct sim *s, int from, const struct raft_msg *m)
{
	uint32_t len;
	uint8_t *buf;

	if (m->from != (raft_id)from + 1)
		sim_fail(s, "n%d sent a %s with from=%" PRIu64, from + 1,
		    raft_msg_type_name(m->type), m->from);
	if (m->type == RAFT_MSG_APPEND_RESP && m->reject)
		s->m[from].append_rejects++;
	if (m->type == RAFT_MSG_APPEND && m->n_entries &&
	    member_of(s, m->to) >= 0) {
		int to = member_of(s, m->to);
		if (++s->inflight[from][to] > s->inflight_max[from][to])
			s->inflight_max[from][to] = s->inflight[from][to];
	}
	buf = sim_net_encode(s, m, &len);
	sim_net_send(s, from, member_of(s, m->to), buf, len, m->type);
}

/* ===================================================================== */
/* network control                                                       */
/* ===================================================================== */

static void set_link(struct sim *s, int a, int b, bool up)
{
	if (a == b || s->link[a][b] == up)
		return;
	s->link[a][b] = up;
	if (s->cfg.trace)
		sim_trace(s, TR_LINK, a, b, 0, up, 0);
}

bool sim_connected(const struct sim *s, int i)
{
	return s->m[i].connected;
}

void sim_disconnect(struct sim *s, int i)
{
	int j;

	s->st.link_changes++;
	s->m[i].connected = false;
	for (j = 0; j < s->n; j++) {
		set_link(s, i, j, false);
		set_link(s, j, i, false);
	}
}

void sim_connect(struct sim *s, int i)
{
	int j;

	s->st.link_changes++;
	s->m[i].connected = true;
	for (j = 0; j < s->n; j++) {
		if (!s->m[j].connected)
			continue;
		set_link(s, i, j, true);
		set_link(s, j, i, true);
	}
}

void sim_connect_all(struct sim *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		sim_connect(s, i);
}

void sim_partition(struct sim *s, const int *side)
{
	int i, j;

	s->st.link_changes++;
	for (i = 0; i < s->n; i++) {
		s->m[i].connected = true;
		for (j = 0; j < s->n; j++)
			set_link(s, i, j, side[i] == side[j]);
	}
}

void sim_set_link(struct sim *s, int from, int to, bool up)
{
	s->st.link_changes++;
	set_link(s, from, to, up);
}

void sim_drop_next(struct sim *s, int from, int to, uint8_t type)
{
	s->drop_next[from][to] = type;
}

bool sim_link(const struct sim *s, int from, int to)
{
	return s->link[from][to];
}

void sim_set_reliable(struct sim *s, bool reliable)
{
	s->cfg.reliable = reliable;
	sim_trace(s, TR_NET, 0, 0, 0, reliable, 0);
}

void sim_set_long_reordering(struct sim *s, bool on)
{
	s->cfg.long_reordering = on;
}

void sim_set_faults(struct sim *s, uint32_t drop_ppm, uint32_t dup_ppm,
    uint32_t reorder_ppm, uint64_t delay_min_us, uint64_t delay_max_us)
{
	s->cfg.drop_ppm = drop_ppm;
	s->cfg.dup_ppm = dup_ppm;
	s->cfg.reorder_ppm = reorder_ppm;
	s->cfg.delay_min_us = delay_min_us;
	s->cfg.delay_max_us = delay_max_us;
}
