/*
 * sim.c - deterministic discrete-event simulator for the pure Raft core:
 * the cluster and the driver.
 *
 * See sim.h for the model and the list of invariants, sim_int.h for how
 * the simulator is split.  This file holds what ties the models together:
 *   randomness  PRNG (splitmix64 -> xoshiro256**)
 *   trace       the trace ring and sim_fail(): seed, virtual time, trace,
 *               replay hint
 *   events      binary heap ordered by (time, seq); tick, deliver, disk
 *               and call events
 *   drive       raft_ready -> handle -> raft_advance loop: messages to the
 *               network (sim_net.c), persist parts to the disk
 *               (sim_disk.c), entries and applies to the checks
 *               (sim_check.c), post-batch checks
 *   members     start / crash / pause / restart, client calls
 *   creation    sim_new / sim_free, introspection
 *
 * Why a mirror instead of asking the core: the invariants must hold for
 * what the core *hands out* (entries to persist, entries to apply), and a
 * buggy core could report a consistent-looking status while handing out
 * something else.  After every batch the mirror is compared with
 * raft_status()/raft_term_at(), so the two views are also checked against
 * each other (sim_check.c).
 */
#include "tests/sim/sim_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>

#include "raft/config.h"

/* ===================================================================== */
/* randomness                                                            */
/* ===================================================================== */

uint64_t sim_rand(struct sim *s)
{
	uint64_t *r = s->rng;
	uint64_t out = rotl(r[1] * 5, 7) * 9;
	uint64_t t = r[1] << 17;

	r[2] ^= r[0];
	r[3] ^= r[1];
	r[1] ^= r[2];
	r[0] ^= r[3];
	r[2] ^= t;
	r[3] = rotl(r[3], 45);
	return out;
}

uint64_t sim_randn(struct sim *s, uint64_t n)
{
	return n ? sim_rand(s) % n : 0;
}

bool sim_chance(struct sim *s, uint32_t ppm)
{
	return ppm && sim_randn(s, 1000000) < ppm;
}

uint64_t sim_rand_range(struct sim *s, uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + sim_randn(s, hi - lo + 1);
}

uint64_t sim_seed(const struct sim *s)
{
	return s->cfg.seed;
}

/* ===================================================================== */
/* trace and failure                                                     */
/* ===================================================================== */

static void trace_fmt(const struct trace_rec *r, char *buf, size_t cap)
{
	double t = r->t / 1e6;

	switch (r->kind) {
	case EV_TICK:
		snprintf(buf, cap, "%10.6f tick    n%d", t, r->a + 1);
		break;
	case EV_DELIVER:
		snprintf(buf, cap,
		    "%10.6f deliver n%d->n%d %s term=%" PRIu64
		    " index=%" PRIu64,
		    t, r->a + 1, r->b + 1, raft_msg_type_name(r->mtype), r->x,
		    r->y);
		break;
	case EV_DISK:
		snprintf(buf, cap,
		    "%10.6f durable n%d last=%" PRIu64 " hs_term=%" PRIu64, t,
		    r->a + 1, r->x, r->y);
		break;
	case EV_CALL:
		snprintf(buf, cap, "%10.6f client", t);
		break;
	case TR_CRASH:
		snprintf(buf, cap,
		    "%10.6f CRASH   n%d (lost %" PRIu64 " pending writes)", t,
		    r->a + 1, r->x);
		break;
	case TR_START:
		snprintf(buf, cap,
		    "%10.6f START   n%d term=%" PRIu64 " log=%" PRIu64, t,
		    r->a + 1, r->x, r->y);
		break;
	case TR_LINK:
		snprintf(buf, cap, "%10.6f link    n%d->n%d %s", t, r->a + 1,
		    r->b + 1, r->x ? "up" : "down");
		break;
	case TR_LEADER:
		snprintf(buf, cap,
		    "%10.6f LEADER  n%d term=%" PRIu64 " last=%" PRIu64, t,
		    r->a + 1, r->x, r->y);
		break;
	case TR_PROPOSE:
		snprintf(buf, cap,
		    "%10.6f propose n%d index=%" PRIu64 " term=%" PRIu64, t,
		    r->a + 1, r->x, r->y);
		break;
	case TR_DROP:
		snprintf(buf, cap, "%10.6f drop    n%d->n%d %s", t, r->a + 1,
		    r->b + 1, raft_msg_type_name(r->mtype));
		break;
	case TR_COMPACT:
		snprintf(buf, cap, "%10.6f compact n%d index=%" PRIu64, t,
		    r->a + 1, r->x);
		break;
	case TR_INSTALL:
		snprintf(buf, cap,
		    "%10.6f install n%d snapshot index=%" PRIu64
		    " term=%" PRIu64,
		    t, r->a + 1, r->x, r->y);
		break;
	case TR_NET:
		snprintf(buf, cap, "%10.6f net     %s", t,
		    r->x ? "reliable" : "unreliable");
		break;
	case TR_CONF:
		snprintf(buf, cap,
		    "%10.6f CONF    n%d proposes %s n%d at %" PRIu64, t,
		    r->a + 1,
		    r->mtype == RAFT_CONF_ADD_LEARNER   ? "add-learner"
		        : r->mtype == RAFT_CONF_PROMOTE ? "promote"
		                                        : "remove",
		    r->b + 1, r->x);
		break;
	default:
		snprintf(buf, cap, "%10.6f ?", t);
	}
}

void sim_trace(struct sim *s, uint8_t kind, int a, int b, uint8_t mtype,
    uint64_t x, uint64_t y)
{
	struct trace_rec *r = &s->trace[s->trace_n++ % TRACE_RING];

	r->t = s->now;
	r->kind = kind;
	r->a = (uint8_t)a;
	r->b = (uint8_t)b;
	r->mtype = mtype;
	r->x = x;
	r->y = y;
	if (s->cfg.trace && !(kind == EV_TICK && s->cfg.trace < 3)) {
		char buf[200];
		trace_fmt(r, buf, sizeof buf);
		fprintf(stderr, "[sim %" PRIu64 "] %s\n", s->cfg.seed, buf);
	}
}

void sim_logf(struct sim *s, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (s->log_fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	s->log_fn(s, line, s->log_arg);
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	uint64_t i, from;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	s->failing = true;
	fprintf(stderr,
	    "\n=== SIM FAILURE%s%s: seed=%" PRIu64 " t=%.6fs\n"
	    "=== %s\n=== last events:\n",
	    s->name ? " in " : "", s->name ? s->name : "", s->cfg.seed,
	    s->now / 1e6, what);
	from = s->trace_n > 40 ? s->trace_n - 40 : 0;
	for (i = from; i < s->trace_n; i++) {
		char buf[200];
		trace_fmt(&s->trace[i % TRACE_RING], buf, sizeof buf);
		fprintf(stderr, "    %s\n", buf);
	}
	fprintf(stderr,
	    "=== replay: SIM_SEED=%" PRIu64 "%s%s SIM_TRACE=1 "
	    "<this binary>\n\n",
	    s->cfg.seed, s->name ? " SIM_TEST=" : "", s->name ? s->name : "");
	if (s->fail_fn)
		s->fail_fn(s, what, s->fail_arg);
	abort();
}

void sim_set_fail_hook(struct sim *s, sim_fail_fn fn, void *arg)
{
	s->fail_fn = fn;
	s->fail_arg = arg;
}

void sim_set_name(struct sim *s, const char *name)
{
	s->name = name;
}

void sim_set_log(struct sim *s, sim_log_fn fn, void *arg)
{
	s->log_fn = fn;
	s->log_arg = arg;
}

/* ===================================================================== */
/* event queue                                                           */
/* ===================================================================== */

static bool ev_less(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

struct event *sim_ev_alloc(struct sim *s)
{
	struct event *e = s->free_ev;

	if (e)
		s->free_ev = (struct event *)e->arg;
	else
		e = xmalloc(sizeof *e);
	memset(e, 0, sizeof *e);
	return e;
}

static void ev_free(struct sim *s, struct event *e)
{
	free(e->buf);
	e->buf = NULL;
	e->arg = s->free_ev;
	s->free_ev = e;
}

void sim_ev_push(struct sim *s, struct event *e, uint64_t at)
{
	size_t i;

	e->t = at;
	e->seq = s->seq++;
	grow((void **)&s->heap, &s->heap_cap, s->heap_n + 1, sizeof *s->heap);
	i = s->heap_n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ev_less(e, s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static struct event *ev_pop(struct sim *s)
{
	struct event *top, *last;
	size_t i = 0, n;

	if (s->heap_n == 0)
		return NULL;
	top = s->heap[0];
	last = s->heap[--s->heap_n];
	n = s->heap_n;
	while (n) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && ev_less(s->heap[c + 1], s->heap[c]))
			c++;
		if (!ev_less(s->heap[c], last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n)
		s->heap[i] = last;
	return top;
}

/* ===================================================================== */
/* drive                                                                 */
/* ===================================================================== */

/* Handle one ready batch of member @i (before raft_advance). */
static void handle_ready(struct sim *s, int i, const struct raft_ready *rd)
{
	struct member *m = &s->m[i];
	bool keep_suffix = true;
	uint32_t k;

	/* Messages that do not wait for the disk. */
	for (k = 0; k < rd->n_msgs; k++)
		sim_net_send_msg(s, i, &rd->msgs[k]);

	/* The in-memory log: snapshot first, then entries. */
	if (rd->has_snapshot || rd->snapshot_install) {
		if (rd->snap_meta.index < m->mbase && rd->has_snapshot)
			sim_fail(s,
			    "n%d's new snapshot %" PRIu64 " is older "
			    "than its log start %" PRIu64,
			    i + 1, rd->snap_meta.index, m->mbase);
		if (rd->snap_meta.index >= m->mbase)
			keep_suffix = sim_check_mirror_snapshot(s, i,
			    &rd->snap_meta);
	}
	if (rd->n_entries) {
		sim_check_mirror_append(s, i, rd->entries, rd->n_entries,
		    rd->role == RAFT_LEADER);
		sim_check_leader_changes(s, i, rd);
	}
	if (rd->conf_changed) {
		raft_index mi;
		const struct raft_conf *mc = sim_check_mirror_conf(m, &mi);

		s->st.checks++;
		if (rd->conf_index != mi || rd->conf.n_voters != mc->n_voters ||
		    rd->conf.n_learners != mc->n_learners ||
		    memcmp(rd->conf.voters, mc->voters,
		        mc->n_voters * sizeof(raft_id)) != 0 ||
		    memcmp(rd->conf.learners, mc->learners,
		        mc->n_learners * sizeof(raft_id)) != 0)
			sim_fail(s,
			    "configurations: n%d reports the configuration "
			    "of %" PRIu64
			    " in its batch, its log says %" PRIu64,
			    i + 1, rd->conf_index, mi);
	}

	/* Persist (asynchronously). */
	if (rd->must_persist || rd->n_msgs_after_persist)
		sim_disk_schedule(s, i,
		    sim_disk_write_new(s, i, rd, keep_suffix));
	else
		m->wq_batch = NULL;

	/* Apply. */
	if (rd->snapshot_install)
		sim_check_apply_snapshot(s, i, &rd->snap_meta, rd->snap_data,
		    rd->snap_len);
	for (k = 0; k < rd->n_committed; k++)
		sim_check_apply_entry(s, i, &rd->committed[k]);

	sim_check_reads(s, i, rd);
}

static void drive(struct sim *s, int i)
{
	struct member *m = &s->m[i];
	struct raft_ready rd;
	int guard = 0;

	while (m->r && raft_ready(m->r, &rd)) {
		bool dropped = false;
		raft_index before = mlast(m);

		if (++guard > 100000)
			sim_fail(s, "n%d: raft_ready() never goes idle", i + 1);
		handle_ready(s, i, &rd);
		dropped = (rd.has_snapshot || rd.snapshot_install) &&
		    rd.n_entries == 0 && mlast(m) == before;
		raft_advance(m->r, &rd);
		sim_check_batch(s, i, dropped);
		if (m->pending_compact)
			sim_check_compact(s, i);
	}
}

/* ===================================================================== */
/* events                                                                */
/* ===================================================================== */

static void schedule_tick(struct sim *s, int i, uint64_t at)
{
	struct event *e = sim_ev_alloc(s);

	e->kind = EV_TICK;
	e->to = (uint8_t)i;
	e->to_inc = s->m[i].inc;
	sim_ev_push(s, e, at);
}

static void on_tick(struct sim *s, struct event *e)
{
	struct member *m = &s->m[e->to];
	int rc;

	if (m->r == NULL || m->inc != e->to_inc)
		return;
	sim_trace(s, EV_TICK, e->to, 0, 0, 0, 0);
	rc = raft_tick(m->r);
	if (rc)
		sim_fail(s, "raft_tick(n%d) = %s", e->to + 1, rk_strerror(rc));
	drive(s, e->to);
	schedule_tick(s, e->to, s->now + m->tick_us);
}

static void on_deliver(struct sim *s, struct event *e)
{
	struct member *to = &s->m[e->to];
	struct raft_msg msg;
	int rc;

	if (to->r == NULL || !sim_net_link_up(s, e->from, e->to) ||
	    (!s->cfg.keep_inflight_on_crash &&
	        (to->inc != e->to_inc || s->m[e->from].inc != e->from_inc))) {
		s->st.msgs_dropped++;
		return;
	}
	rc = msg_decode(e->buf, e->len, &msg);
	if (rc)
		sim_fail(s, "codec: a %s from n%d does not decode: %s",
		    raft_msg_type_name(e->mtype), e->from + 1, rk_strerror(rc));
	sim_trace(s, EV_DELIVER, e->from, e->to, msg.type, msg.term, msg.index);
	s->st.msgs_delivered++;
	if (is_request(msg.type)) {
		s->st.rpcs++;
		to->rpcs_in++;
	}
	if (msg.type == RAFT_MSG_APPEND_RESP && s->inflight[e->to][e->from] > 0)
		s->inflight[e->to][e->from]--;
	rc = raft_step(to->r, &msg);
	msg_release(&msg);
	if (rc)
		sim_fail(s, "raft_step(n%d) = %s", e->to + 1, rk_strerror(rc));
	drive(s, e->to);
}

static void on_disk(struct sim *s, struct event *e)
{
	struct member *m = &s->m[e->to];
	struct pwrite *w = m->wq_head;
	uint32_t k;
	int rc;

	if (m->r == NULL || m->inc != e->to_inc || w == NULL)
		return;
	m->wq_head = w->next;
	if (m->wq_head == NULL)
		m->wq_tail = NULL;
	s->cur_w = w;
	if (w->must_persist)
		sim_disk_apply(s, e->to, w);
	sim_trace(s, EV_DISK, e->to, 0, 0, disk_last(m), m->hs.term);
	for (k = 0; k < w->n_msgs; k++) {
		struct pmsg *p = &w->msgs[k];
		sim_net_send(s, e->to, p->to == 0xff ? -1 : p->to, p->buf,
		    p->len, p->mtype);
		p->buf = NULL;
	}
	if (w->must_persist) {
		rc = raft_persisted(m->r, &w->token);
		if (rc)
			sim_fail(s, "raft_persisted(n%d) = %s", e->to + 1,
			    rk_strerror(rc));
	}
	s->cur_w = NULL;
	sim_disk_write_free(w);
	drive(s, e->to);
}

static void step_event(struct sim *s)
{
	struct event *e = ev_pop(s);

	if (e->t > s->now)
		s->now = e->t;
	if (e->kind != EV_CALL && s->m[e->to].paused_until > s->now) {
		/* Stalled member: the event waits (FIFO among waiters). */
		sim_ev_push(s, e, s->m[e->to].paused_until);
		return;
	}
	s->st.events++;
	s->cur = e;
	switch (e->kind) {
	case EV_TICK:
		on_tick(s, e);
		break;
	case EV_DELIVER:
		on_deliver(s, e);
		break;
	case EV_DISK:
		on_disk(s, e);
		break;
	case EV_CALL:
		if (s->cfg.trace >= 3)
			sim_trace(s, EV_CALL, 0, 0, 0, 0, 0);
		e->fn(s, e->arg);
		break;
	}
	e->fn = NULL;
	s->cur = NULL;
	ev_free(s, e);
	sim_check_confs(s);
}

uint64_t sim_now(const struct sim *s)
{
	return s->now;
}

void sim_sleep(struct sim *s, uint64_t us)
{
	uint64_t until = s->now + us;

	while (s->heap_n && s->heap[0]->t <= until)
		step_event(s);
	s->now = until;
}

void sim_run_until_flag(struct sim *s, const bool *flag)
{
	while (!*flag) {
		if (s->heap_n == 0)
			sim_fail(s, "harness: nothing left to run");
		step_event(s);
	}
}

void sim_after(struct sim *s, uint64_t us, void (*fn)(struct sim *s, void *arg),
    void *arg)
{
	struct event *e = sim_ev_alloc(s);

	e->kind = EV_CALL;
	e->fn = fn;
	e->arg = arg;
	sim_ev_push(s, e, s->now + us);
}

/* ===================================================================== */
/* members                                                               */
/* ===================================================================== */

static void core_trace(void *arg, raft_id id, const char *msg)
{
	struct sim *s = arg;

	fprintf(stderr, "[sim %" PRIu64 "] %10.6f   n%" PRIu64 ": %s\n",
	    s->cfg.seed, s->now / 1e6, id, msg);
}

static int n_boot_voters(const struct sim *s)
{
	return s->cfg.n_voters > 0 && s->cfg.n_voters < s->n ? s->cfg.n_voters
	                                                     : s->n;
}

void sim_boot_conf(const struct sim *s, int i, struct raft_conf *c)
{
	int k, nv = n_boot_voters(s);

	memset(c, 0, sizeof *c);
	for (k = 0; k < nv; k++)
		c->voters[c->n_voters++] = (raft_id)k + 1;
	/* A spare is a learner of its own bootstrap configuration: it will
	 * not campaign until its log makes it a voter. */
	if (i >= nv)
		c->learners[c->n_learners++] = (raft_id)i + 1;
}

static void make_config(struct sim *s, int i, struct raft_config *c)
{
	struct raft_conf bc;

	sim_boot_conf(s, i, &bc);
	raft_config_defaults(c, (raft_id)i + 1, bc.voters, bc.n_voters);
	c->n_learners = bc.n_learners;
	memcpy(c->learners, bc.learners, sizeof bc.learners);
	c->election_tick = s->cfg.election_tick;
	c->heartbeat_tick = s->cfg.heartbeat_tick;
	c->seed = sim_rand(s);
	c->disable_prevote = s->cfg.disable_prevote;
	c->disable_check_quorum = s->cfg.disable_check_quorum;
	c->disable_lease_read = s->cfg.disable_lease_read;
	c->lease_ticks = s->cfg.lease_ticks;
	if (s->cfg.max_msg_entries)
		c->max_msg_entries = s->cfg.max_msg_entries;
	if (s->cfg.max_inflight_msgs)
		c->max_inflight_msgs = s->cfg.max_inflight_msgs;
	if (s->cfg.max_uncommitted_bytes)
		c->max_uncommitted_bytes = s->cfg.max_uncommitted_bytes;
	if (s->cfg.snapshot_chunk_bytes)
		c->snapshot_chunk_bytes = s->cfg.snapshot_chunk_bytes;
	if (s->cfg.trace >= 2) {
		c->trace = core_trace;
		c->trace_arg = s;
	}
}

/* Bring member @i up from its durable state (lab StartServer). */
void sim_start(struct sim *s, int i)
{
	struct member *m = &s->m[i];
	struct raft_config cfg;
	struct raft_boot boot;
	struct raft_entry *ents;
	size_t k;
	int rc;

	if (m->r)
		return;
	make_config(s, i, &cfg);
	memset(&boot, 0, sizeof boot);
	boot.hs = m->hs;
	boot.has_snapshot = m->has_snap;
	boot.snap = m->snap;
	boot.snap_data = m->snap_data;
	boot.snap_len = m->snap_len;
	ents = xcalloc(m->log_n, sizeof *ents);
	for (k = 0; k < m->log_n; k++) {
		ents[k].term = m->log[k].term;
		ents[k].index = m->snap.index + 1 + k;
		ents[k].type = m->log[k].type;
		ents[k].len = m->log[k].len;
		ents[k].data = m->log[k].data;
	}
	boot.entries = ents;
	boot.n_entries = m->log_n;
	rc = raft_new(&cfg, &boot, &m->r);
	if (rc)
		sim_fail(s, "raft_new(n%d) from durable state = %s", i + 1,
		    rk_strerror(rc));
	m->inc++;
	m->paused_until = 0;
	s->st.restarts += m->inc > 1;
	m->last_commit = 0;
	m->cterm_upto = 0;
	m->last_term = 0;
	m->last_role = RAFT_FOLLOWER;
	m->last_done_at = 0;
	/* The tester's view restarts empty (a snapshot arrives with the
	 * first batch). */
	m->applied = 0;
	m->state = 0;
	m->pending_compact = 0;
	/* Our mirror of the new incarnation's log: the durable log. */
	{
		struct raft_conf bc;

		if (m->has_snap)
			config_from_meta(&m->snap, &bc);
		else
			sim_boot_conf(s, i, &bc);
		sim_check_mirror_reset(s, i, m->has_snap ? m->snap.index : 0,
		    m->has_snap ? m->snap.term : 0, &bc,
		    m->has_snap ? m->snap.index : 0);
	}
	if (m->log_n)
		sim_check_mirror_append(s, i, ents, (uint32_t)m->log_n, false);
	free(ents);
	sim_trace(s, TR_START, i, 0, 0, m->hs.term, disk_last(m));
	if (m->inc > 1)
		slog(s,
		    "n%d restarts from disk (term %" PRIu64
		    ", log ends at %" PRIu64 ", snapshot %" PRIu64 ")",
		    i + 1, m->hs.term, disk_last(m), m->snap.index);
	drive(s, i);
	m->tick_us = s->cfg.tick_us;
	if (s->cfg.clock_pct[i]) {
		m->tick_us = s->cfg.tick_us * s->cfg.clock_pct[i] / 100;
	} else if (s->cfg.tick_jitter_pct) {
		uint64_t j = s->cfg.tick_us * s->cfg.tick_jitter_pct / 100;
		m->tick_us = s->cfg.tick_us - j + sim_randn(s, 2 * j + 1);
	}
	schedule_tick(s, i, s->now + 1 + sim_randn(s, m->tick_us));
}

static uint64_t member_lease_reads(const struct member *m)
{
	struct raft_status st;

	if (m->r == NULL)
		return 0;
	raft_status(m->r, &st);
	return st.lease_reads;
}

uint64_t sim_lease_reads(const struct sim *s)
{
	uint64_t n = s->st.lease_reads;

	for (int i = 0; i < s->cfg.n; i++)
		n += member_lease_reads(&s->m[i]);
	return n;
}

void sim_crash(struct sim *s, int i)
{
	struct member *m = &s->m[i];
	uint64_t lost;

	sim_disconnect(s, i);
	if (m->r == NULL)
		return;
	s->st.lease_reads += member_lease_reads(m);
	raft_free(m->r);
	m->r = NULL;
	lost = sim_disk_crash(s, i);
	s->st.crashes++;
	m->inc++; /* in-flight messages and disk events are now stale */
	sim_trace(s, TR_CRASH, i, 0, 0, lost, 0);
	slog(s, "n%d crashes (%" PRIu64 " unsynced writes lost)", i + 1, lost);
}

void sim_pause(struct sim *s, int i, uint64_t us)
{
	/* Nothing reaches the member until it resumes, so telling it now
	 * is telling it before anything else when it does. */
	if (s->m[i].r != NULL && !s->cfg.forget_tick_gap)
		raft_tick_gap(s->m[i].r);
	s->m[i].paused_until = s->now + us;
	s->st.pauses++;
	slog(s, "n%d stalls for %.1f s", i + 1, us / 1e6);
}

void sim_restart(struct sim *s, int i)
{
	sim_start(s, i);
	sim_connect_all(s);
}

void sim_crash_all(struct sim *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		sim_crash(s, i);
}

void sim_start_all(struct sim *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		sim_start(s, i);
	sim_connect_all(s);
}

int sim_n(const struct sim *s)
{
	return s->n;
}

bool sim_alive(const struct sim *s, int i)
{
	return s->m[i].r != NULL;
}

struct raft *sim_raft(struct sim *s, int i)
{
	return s->m[i].r;
}

raft_term sim_get_state(struct sim *s, int i, bool *is_leader)
{
	struct raft_status st;

	*is_leader = false;
	if (s->m[i].r == NULL)
		return 0;
	raft_status(s->m[i].r, &st);
	*is_leader = st.role == RAFT_LEADER;
	return st.term;
}

int sim_propose(struct sim *s, int i, const void *data, uint32_t len,
    raft_index *index, raft_term *term)
{
	raft_index idx = 0;
	raft_term t = 0;
	int rc;

	if (s->m[i].r == NULL)
		return RAFT_ENOTLEADER;
	if (s->m[i].paused_until > s->now)
		return -EAGAIN; /* a stalled process answers nobody */
	rc = raft_propose(s->m[i].r, data, len, &idx, &t);
	if (rc == 0) {
		s->st.proposals++;
		sim_trace(s, TR_PROPOSE, i, 0, 0, idx, t);
	}
	drive(s, i);
	if (index)
		*index = idx;
	if (term)
		*term = t;
	return rc;
}

int sim_read_index(struct sim *s, int i)
{
	struct read_req *r;
	int rc;

	if (s->m[i].r == NULL)
		return RAFT_ENOTLEADER;
	if (s->m[i].paused_until > s->now)
		return -EAGAIN; /* a stalled process answers nobody */
	grow((void **)&s->reads, &s->reads_cap, s->reads_n + 1,
	    sizeof *s->reads);
	r = &s->reads[s->reads_n];
	r->ctx = ++s->next_ctx;
	r->member = i;
	r->floor = sim_check_known_commit(s);
	rc = raft_read_index(s->m[i].r, r->ctx);
	if (rc == 0)
		s->reads_n++;
	drive(s, i);
	return rc;
}

int sim_conf_change(struct sim *s, int i, int type, int who)
{
	raft_index idx = 0;
	int rc;

	if (s->m[i].r == NULL)
		return RAFT_ENOTLEADER;
	if (s->m[i].paused_until > s->now)
		return -EAGAIN; /* a stalled process answers nobody */
	rc = raft_propose_conf_change(s->m[i].r, type, (raft_id)who + 1, NULL,
	    0, &idx);
	if (rc == 0) {
		s->st.conf_changes++;
		sim_trace(s, TR_CONF, i, who, (uint8_t)type, idx, 0);
		slog(s, "n%d proposes %s of n%d at %" PRIu64, i + 1,
		    type == RAFT_CONF_ADD_LEARNER   ? "adding learner"
		        : type == RAFT_CONF_PROMOTE ? "promotion"
		                                    : "removal",
		    who + 1, idx);
	}
	drive(s, i);
	return rc;
}

bool sim_get_conf(struct sim *s, int i, struct raft_conf *conf)
{
	if (s->m[i].r == NULL)
		return false;
	raft_get_conf(s->m[i].r, conf, NULL);
	return true;
}

bool sim_current_conf(struct sim *s, struct raft_conf *conf)
{
	raft_term best_term = 0;
	raft_index best_idx = 0;
	bool found = false, leader = false;
	int i;

	for (i = 0; i < s->n; i++) {
		struct raft_status st;
		raft_index ci;

		if (s->m[i].r == NULL)
			continue;
		raft_status(s->m[i].r, &st);
		raft_get_conf(s->m[i].r, NULL, &ci);
		if (st.role == RAFT_LEADER) {
			if (!leader || st.term > best_term) {
				raft_get_conf(s->m[i].r, conf, NULL);
				best_term = st.term;
				leader = found = true;
			}
		} else if (!leader && (!found || ci > best_idx)) {
			raft_get_conf(s->m[i].r, conf, NULL);
			best_idx = ci;
			found = true;
		}
	}
	return found;
}

int sim_transfer(struct sim *s, int i, int to)
{
	int rc;

	if (s->m[i].r == NULL)
		return RAFT_ENOTLEADER;
	if (s->m[i].paused_until > s->now)
		return -EAGAIN; /* a stalled process answers nobody */
	rc = raft_transfer_leadership(s->m[i].r, (raft_id)to + 1);
	if (rc == 0)
		s->st.transfers++;
	drive(s, i);
	return rc;
}

int sim_campaign(struct sim *s, int i)
{
	int rc;

	if (s->m[i].r == NULL)
		return RAFT_ENOTLEADER;
	if (s->m[i].paused_until > s->now)
		return -EAGAIN; /* a stalled process answers nobody */
	rc = raft_campaign(s->m[i].r);
	drive(s, i);
	return rc;
}

/* ===================================================================== */
/* creation                                                              */
/* ===================================================================== */

void sim_config_lab(struct sim_config *c, int n, bool reliable, bool snapshot,
    uint64_t seed)
{
	memset(c, 0, sizeof *c);
	c->seed = seed;
	c->n = n;
	c->tick_us = 50 * SIM_MS;
	c->election_tick = 10;
	c->heartbeat_tick = 2;
	c->disk_min_us = 100;
	c->disk_max_us = 1000;
	c->delay_min_us = 100;
	c->delay_max_us = 1000;
	c->reliable = reliable;
	c->snap_every = snapshot ? 10 : 0;
	c->lab_blob = true;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : dflt;
}

struct sim *sim_new(const struct sim_config *c)
{
	struct sim *s = xcalloc(1, sizeof *s);
	uint64_t x;
	int i;

	s->cfg = *c;
	if (s->cfg.n < 1 || s->cfg.n > SIM_MAX_MEMBERS) {
		fprintf(stderr, "sim: bad member count %d\n", s->cfg.n);
		abort();
	}
	if (s->cfg.tick_us == 0)
		s->cfg.tick_us = 50 * SIM_MS;
	if (s->cfg.election_tick == 0)
		s->cfg.election_tick = 10;
	if (s->cfg.heartbeat_tick == 0)
		s->cfg.heartbeat_tick = 2;
	if (s->cfg.trace == 0)
		s->cfg.trace = env_int("SIM_TRACE", 0);
	s->n = s->cfg.n;
	x = s->cfg.seed;
	for (i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&x);
	for (i = 0; i < s->n; i++)
		s->m[i].connected = true;
	for (i = 0; i < s->n; i++) {
		int j;
		for (j = 0; j < s->n; j++)
			s->link[i][j] = i != j;
	}
	for (i = 0; i < s->n; i++)
		sim_start(s, i);
	return s;
}

static void member_free(struct member *m)
{
	struct pwrite *w, *next;
	size_t k;

	raft_free(m->r);
	m->r = NULL;
	for (w = m->wq_head; w; w = next) {
		next = w->next;
		sim_disk_write_free(w);
	}
	for (k = 0; k < m->log_n; k++)
		sim_disk_dentry_free(&m->log[k]);
	free(m->log);
	free(m->snap_data);
	free(m->mlog);
	free(m->mconfs);
}

void sim_free(struct sim *s)
{
	struct event *e;
	int i;

	if (s == NULL)
		return;
	if (env_int("SIM_VERBOSE", 0))
		fprintf(stderr,
		    "[sim %" PRIu64 "] %s: %.1f s virtual, %" PRIu64
		    " events, %" PRIu64 " msgs (%" PRIu64 " bytes, %" PRIu64
		    " dropped), %" PRIu64 " elections, %" PRIu64
		    " applied, %" PRIu64 " crashes, %" PRIu64
		    " snapshots, %" PRIu64 " checks\n",
		    s->cfg.seed, s->name ? s->name : "sim", s->now / 1e6,
		    s->st.events, s->st.msgs_sent, s->st.bytes_sent,
		    s->st.msgs_dropped, s->st.elections, s->g_max,
		    s->st.crashes, s->st.snapshots_taken, s->st.checks);
	for (i = 0; i < s->n; i++)
		member_free(&s->m[i]);
	if (s->cur != NULL) {
		s->cur->fn = NULL;
		ev_free(s, s->cur);
		s->cur = NULL;
	}
	if (s->cur_w != NULL) {
		sim_disk_write_free(s->cur_w);
		s->cur_w = NULL;
	}
	while ((e = ev_pop(s)) != NULL) {
		if (e->kind == EV_CALL)
			e->fn = NULL;
		ev_free(s, e);
	}
	while ((e = s->free_ev) != NULL) {
		s->free_ev = e->arg;
		free(e);
	}
	free(s->heap);
	free(s->leader_of);
	free(s->g);
	free(s->cmap);
	free(s->reads);
	free(s);
}

/* ===================================================================== */
/* introspection                                                         */
/* ===================================================================== */

uint64_t sim_value_hash(const void *data, uint32_t len)
{
	return entry_value_hash(RAFT_ENTRY_NORMAL, data, len);
}

void sim_int_bytes(uint64_t v, uint8_t out[8])
{
	put_u64(out, v);
}

uint64_t sim_int_hash(uint64_t v)
{
	uint8_t b[8];

	put_u64(b, v);
	return sim_value_hash(b, 8);
}

uint64_t sim_cmd_index(struct sim *s, int i, raft_index index)
{
	if (i < 0) {
		if (index == 0)
			return 0;
		if (index > s->g_max || !s->g[index].set)
			sim_fail(s, "harness: index %" PRIu64 " not committed",
			    index);
		return s->g[index].cum;
	}
	if (index < s->m[i].mbase || index > mlast(&s->m[i]))
		sim_fail(s, "harness: index %" PRIu64 " not in n%d's log",
		    index, i + 1);
	return mcum(&s->m[i], index);
}

uint64_t sim_log_size(struct sim *s)
{
	uint64_t best = 0;
	int i;

	for (i = 0; i < s->n; i++) {
		struct member *m = &s->m[i];
		uint64_t sz = 16; /* hard state: term + vote */
		size_t k;

		for (k = 0; k < m->log_n; k++) {
			struct raft_entry e = {
				.term = m->log[k].term,
				.index = m->snap.index + 1 + k,
				.type = m->log[k].type,
				.len = m->log[k].len,
				.data = m->log[k].data,
			};
			sz += msg_entry_encoded_size(&e);
		}
		if (sz > best)
			best = sz;
	}
	return best;
}

uint64_t sim_snapshot_size(struct sim *s)
{
	uint64_t best = 0;
	int i;

	for (i = 0; i < s->n; i++)
		if (s->m[i].snap_len > best)
			best = s->m[i].snap_len;
	return best;
}

uint64_t sim_rpc_count(const struct sim *s, int i)
{
	return s->m[i].rpcs_in;
}

uint64_t sim_rpc_total(const struct sim *s)
{
	return s->st.rpcs;
}

uint64_t sim_bytes_total(const struct sim *s)
{
	return s->st.bytes_sent;
}

const struct sim_stats *sim_stats(const struct sim *s)
{
	return &s->st;
}

raft_index sim_max_applied(const struct sim *s)
{
	return s->g_max;
}

raft_index sim_applied(const struct sim *s, int i)
{
	return s->m[i].applied;
}

int sim_max_inflight(const struct sim *s, int from, int to)
{
	return s->inflight_max[from][to];
}

void sim_reset_inflight(struct sim *s)
{
	memset(s->inflight, 0, sizeof s->inflight);
	memset(s->inflight_max, 0, sizeof s->inflight_max);
}

uint64_t sim_append_rejects(const struct sim *s, int i)
{
	return s->m[i].append_rejects;
}
