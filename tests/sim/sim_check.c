/*
 * sim_check.c - the simulator's invariant checks (sim.h lists them).
 *
 * Global knowledge, updated incrementally as members hand things out:
 *   leader_of[term]   who led each term: election safety
 *   cmap              (index, term) -> chained hash of the prefix: log
 *                     matching across members
 *   g[index]          what was applied at an index (value, term, state
 *                     hash, the term it was committed in): state-machine
 *                     safety, leader completeness, read index floors
 * and, per member, a mirror of its in-memory log fed from the entries in
 * its ready batches (leader append-only, terms never decrease), compared
 * with raft_status()/raft_term_at() after every batch.
 *
 * The tester's apply model (6.5840's server.go) lives here because its
 * only output is what the checks compare: each member applies entries in
 * order into a chained state hash, and takes a snapshot (a blob of that
 * state) every cfg.snap_every entries.
 */
#include "tests/sim/sim_int.h"

#include <inttypes.h>

#include "raft/config.h"

/* ===================================================================== */
/* global invariant tables                                               */
/* ===================================================================== */

static struct gent *gent_at(struct sim *s, raft_index i)
{
	grow((void **)&s->g, &s->g_cap, i + 1, sizeof *s->g);
	return &s->g[i];
}

static void note_leader(struct sim *s, int i, raft_term term)
{
	raft_id id = (raft_id)i + 1;

	grow((void **)&s->leader_of, &s->leader_cap, term + 1,
	    sizeof *s->leader_of);
	s->st.checks++;
	if (s->leader_of[term] == 0) {
		s->leader_of[term] = id;
		s->st.elections++;
		return;
	}
	if (s->leader_of[term] != id)
		sim_fail(s,
		    "election safety: n%" PRIu64 " and n%" PRIu64
		    " are both leaders of term %" PRIu64,
		    s->leader_of[term], id, term);
}

static size_t cmap_slot(const struct sim *s, raft_index index, raft_term term)
{
	return mix64(index * 0x9e3779b97f4a7c15ull ^ term) & (s->cmap_cap - 1);
}

static void cmap_rehash(struct sim *s)
{
	struct cslot *old = s->cmap;
	size_t oldcap = s->cmap_cap, i;

	s->cmap_cap = oldcap ? oldcap * 2 : 1024;
	s->cmap = xcalloc(s->cmap_cap, sizeof *s->cmap);
	for (i = 0; i < oldcap; i++) {
		size_t j;
		if (old[i].index == 0)
			continue;
		j = cmap_slot(s, old[i].index, old[i].term);
		while (s->cmap[j].index)
			j = (j + 1) & (s->cmap_cap - 1);
		s->cmap[j] = old[i];
	}
	free(old);
}

/* Find (index, term); if absent and @insert, store @hash.  Returns the
 * slot (NULL if absent and not inserted). */
static struct cslot *cmap_get(struct sim *s, raft_index index, raft_term term,
    bool insert, uint64_t hash)
{
	size_t j;

	if ((s->cmap_n + 1) * 2 > s->cmap_cap)
		cmap_rehash(s);
	j = cmap_slot(s, index, term);
	while (s->cmap[j].index) {
		if (s->cmap[j].index == index && s->cmap[j].term == term)
			return &s->cmap[j];
		j = (j + 1) & (s->cmap_cap - 1);
	}
	if (!insert)
		return NULL;
	s->cmap[j].index = index;
	s->cmap[j].term = term;
	s->cmap[j].hash = hash;
	s->cmap_n++;
	return &s->cmap[j];
}

/* Log matching: member @i holds (index, term) with chained hash @h. */
static void check_chain(struct sim *s, int i, raft_index index, raft_term term,
    uint64_t h)
{
	struct cslot *c = cmap_get(s, index, term, true, h);

	s->st.checks++;
	if (c->hash != h)
		sim_fail(s,
		    "log matching: n%d's entry %" PRIu64 " (term %" PRIu64
		    ") has a different prefix than another member's "
		    "entry with the same index and term",
		    i + 1, index, term);
}

/* ===================================================================== */
/* mirror of the in-memory log                                           */
/* ===================================================================== */

/* The chained hash and command count at a snapshot boundary. */
static void snap_boundary(struct sim *s, int i, raft_index index,
    raft_term term, uint64_t *hash, uint64_t *cum)
{
	struct cslot *c;

	if (index == 0) {
		*hash = 0;
		*cum = 0;
		return;
	}
	c = cmap_get(s, index, term, false, 0);
	if (c == NULL)
		sim_fail(s,
		    "harness: n%d holds a snapshot at (%" PRIu64 ", %" PRIu64
		    ") that no member ever had in its log",
		    i + 1, index, term);
	*hash = c->hash;
	*cum = index < s->g_cap && s->g[index].set ? s->g[index].cum : 0;
}

void sim_check_mirror_reset(struct sim *s, int i, raft_index base,
    raft_term base_term, const struct raft_conf *conf, raft_index conf_index)
{
	struct member *m = &s->m[i];

	m->mbase = base;
	m->mbase_term = base_term;
	snap_boundary(s, i, base, base_term, &m->mbase_hash, &m->mbase_cum);
	m->mn = 0;
	m->mbase_conf = *conf;
	m->mbase_conf_index = conf_index;
	m->mconf_n = 0;
}

/* ===================================================================== */
/* configurations (invariant 10)                                         */
/* ===================================================================== */

const struct raft_conf *sim_check_mirror_conf(const struct member *m,
    raft_index *index)
{
	if (m->mconf_n > 0) {
		*index = m->mconfs[m->mconf_n - 1].index;
		return &m->mconfs[m->mconf_n - 1].conf;
	}
	*index = m->mbase_conf_index;
	return &m->mbase_conf;
}

/* The configuration in force at @index of the mirror (>= mbase). */
static const struct raft_conf *mirror_conf_at(const struct member *m,
    raft_index index, raft_index *at)
{
	size_t k = m->mconf_n;

	while (k > 0 && m->mconfs[k - 1].index > index)
		k--;
	if (k > 0) {
		*at = m->mconfs[k - 1].index;
		return &m->mconfs[k - 1].conf;
	}
	*at = m->mbase_conf_index;
	return &m->mbase_conf;
}

/* The mirror's log is cut before @first: changes there are gone. */
static void mirror_truncate(struct member *m, raft_index first)
{
	while (m->mconf_n > 0 && m->mconfs[m->mconf_n - 1].index >= first)
		m->mconf_n--;
}

/* Could a majority of @a's voters and one of @b's be disjoint?  Take a's
 * majority from the voters only it has first, b's likewise; what each
 * still needs comes from the shared voters. */
static bool majorities_overlap(const struct raft_conf *a,
    const struct raft_conf *b)
{
	uint32_t both = 0, only_a, only_b, qa, qb, need;

	for (uint32_t k = 0; k < a->n_voters; k++)
		both += config_is_voter(b, a->voters[k]);
	only_a = a->n_voters - both;
	only_b = b->n_voters - both;
	qa = config_quorum(a);
	qb = config_quorum(b);
	need = (qa > only_a ? qa - only_a : 0) +
	    (qb > only_b ? qb - only_b : 0);
	return need > both;
}

static void fmt_conf(const struct raft_conf *c, char *buf, size_t cap)
{
	size_t n = 0;

	n += (size_t)snprintf(buf + n, cap - n, "voters {");
	for (uint32_t k = 0; k < c->n_voters && n < cap; k++)
		n += (size_t)snprintf(buf + n, cap - n, " %" PRIu64,
		    c->voters[k]);
	if (n < cap)
		n += (size_t)snprintf(buf + n, cap - n, " } learners {");
	for (uint32_t k = 0; k < c->n_learners && n < cap; k++)
		n += (size_t)snprintf(buf + n, cap - n, " %" PRIu64,
		    c->learners[k]);
	if (n < cap)
		snprintf(buf + n, cap - n, " }");
}

/* Member @i's mirror gets change @e: one single-server change of the
 * configuration before it in the same log. */
static void mirror_change(struct sim *s, int i, const struct raft_entry *e)
{
	struct member *m = &s->m[i];
	struct raft_conf_change cc;
	struct raft_conf want, boot;
	const struct raft_conf *prev;
	raft_index at;
	char a[160], b[160];

	s->st.checks++;
	if (raft_conf_change_decode(e, &cc) != 0)
		sim_fail(s,
		    "n%d hands out change %" PRIu64 " that does not "
		    "decode",
		    i + 1, e->index);
	prev = mirror_conf_at(m, e->index - 1, &at);
	if (at == 0) {
		/* Before the first change the log's configuration is the
		 * cluster's bootstrap one (a spare's own adds itself as a
		 * learner, locally). */
		sim_boot_conf(s, 0, &boot);
		prev = &boot;
	}
	if (config_apply(prev, cc.type, cc.id, &want) != 0 ||
	    !config_equal(&want, &cc.conf) ||
	    config_voter_diff(prev, &cc.conf) > 1 ||
	    !majorities_overlap(prev, &cc.conf)) {
		fmt_conf(prev, a, sizeof a);
		fmt_conf(&cc.conf, b, sizeof b);
		sim_fail(s,
		    "configurations: n%d's change at %" PRIu64
		    " (type %u of %" PRIu64 ") turns %s (from %" PRIu64
		    ") into %s: not one single-server change, or two "
		    "disjoint majorities",
		    i + 1, e->index, cc.type, cc.id, a, at, b);
	}
	grow((void **)&m->mconfs, &m->mconf_cap, m->mconf_n + 1,
	    sizeof *m->mconfs);
	m->mconfs[m->mconf_n].index = e->index;
	m->mconfs[m->mconf_n].conf = cc.conf;
	m->mconf_n++;
}

/* Where a member stands for elections and appends: its log position
 * (last term, last index), its current term, whether it leads. */
struct standing {
	raft_term lt, term;
	raft_index li;
	bool leader;
};

/* Member @v's standing: from its in-memory log when it runs, from its
 * durable state when crashed (what it restarts with). */
static void standing_of(const struct sim *s, int v, struct standing *p)
{
	const struct member *m = &s->m[v];

	if (m->r != NULL) {
		struct raft_status st;

		raft_status(m->r, &st);
		p->li = mlast(m);
		p->lt = mterm(m, p->li);
		p->term = st.term;
		p->leader = st.role == RAFT_LEADER;
		return;
	}
	p->li = (m->has_snap ? m->snap.index : 0) + m->log_n;
	p->lt = m->log_n ? m->log[m->log_n - 1].term
	                 : (m->has_snap ? m->snap.term : 0);
	p->term = m->hs.term;
	p->leader = false;
}

/*
 * Could live member @i decide under its configuration in force @c: it is
 * a voter of it, and a quorum of its voters would vote for it (their logs
 * are no more up to date than its own; terms and votes already cast are
 * ignored: a candidate can always outbid them), or it leads and a quorum
 * of its voters is at its term or below (would accept its appends).
 * Members that are down count with their durable state (@p: everyone's).
 */
static bool could_decide(const struct sim *s, int i, const struct raft_conf *c,
    const struct standing *p)
{
	uint32_t votes = 0, acks = 0;

	if (!config_is_voter(c, (raft_id)i + 1))
		return false;
	for (uint32_t k = 0; k < c->n_voters; k++) {
		int v = (int)c->voters[k] - 1;

		if (v < 0 || v >= s->n)
			continue;
		votes += p[v].lt < p[i].lt ||
		    (p[v].lt == p[i].lt && p[v].li <= p[i].li);
		acks += p[v].term <= p[i].term;
	}
	return votes >= config_quorum(c) ||
	    (p[i].leader && acks >= config_quorum(c));
}

/* True if the changes at @ai in @a's mirror and at @bi in @b's are one
 * entry (same index and term): then they make the same configuration.
 * A quick test; false says nothing. */
static bool same_change(const struct member *a, raft_index ai,
    const struct member *b, raft_index bi)
{
	return ai == bi && ai > a->mbase && ai > b->mbase &&
	    mterm(a, ai) == mterm(b, bi);
}

void sim_check_confs(struct sim *s)
{
	const struct raft_conf *c[SIM_MAX_MEMBERS] = { 0 };
	struct standing p[SIM_MAX_MEMBERS];
	raft_index at[SIM_MAX_MEMBERS];
	bool live[SIM_MAX_MEMBERS];
	char a[160], b[160];

	int first = -1;
	bool differ = false;

	for (int i = 0; i < s->n; i++) {
		live[i] = s->m[i].r != NULL;
		if (!live[i])
			continue;
		c[i] = sim_check_mirror_conf(&s->m[i], &at[i]);
		if (first < 0)
			first = i;
		else if (!same_change(&s->m[first], at[first], &s->m[i],
		             at[i]) &&
		    !config_equal(c[first], c[i]))
			differ = true;
	}
	/* Mostly everyone has the same: nothing to compare. */
	if (!differ)
		return;
	for (int i = 0; i < s->n; i++)
		standing_of(s, i, &p[i]);
	for (int i = 0; i < s->n; i++)
		live[i] = live[i] && could_decide(s, i, c[i], p);
	for (int i = 0; i < s->n; i++)
		for (int j = i + 1; j < s->n && live[i]; j++) {
			if (!live[j] || config_equal(c[i], c[j]))
				continue;
			s->st.checks++;
			if (majorities_overlap(c[i], c[j]))
				continue;
			fmt_conf(c[i], a, sizeof a);
			fmt_conf(c[j], b, sizeof b);
			sim_fail(s,
			    "configurations: two disjoint majorities: n%d "
			    "(%s, from %" PRIu64 ") and n%d (%s, from "
			    "%" PRIu64 ") could each elect or commit",
			    i + 1, a, at[i], j + 1, b, at[j]);
		}
}

void sim_check_leader_changes(struct sim *s, int i, const struct raft_ready *rd)
{
	struct member *m = &s->m[i];
	struct raft_status st;
	raft_term t = 0;

	if (rd->role != RAFT_LEADER)
		return;
	raft_status(m->r, &st);
	for (uint32_t k = 0; k < rd->n_entries; k++) {
		const struct raft_entry *e = &rd->entries[k];
		raft_index prev;

		if (e->type != RAFT_ENTRY_CONF)
			continue;
		s->st.checks++;
		mirror_conf_at(m, e->index - 1, &prev);
		(void)raft_term_at(m->r, st.commit, &t);
		if (prev > st.commit || t != e->term)
			sim_fail(s,
			    "configurations: leader n%d appends a change at "
			    "%" PRIu64 " (term %" PRIu64 ") while the one at "
			    "%" PRIu64 " is uncommitted or no entry of its "
			    "term is (commit %" PRIu64 " of term %" PRIu64 ")",
			    i + 1, e->index, e->term, prev, st.commit, t);
	}
}

/* Entries handed out by member @i: they replace its log from e[0].index. */
void sim_check_mirror_append(struct sim *s, int i, const struct raft_entry *e,
    uint32_t n, bool leader)
{
	struct member *m = &s->m[i];
	raft_index first = e[0].index, last = mlast(m);
	uint64_t h, cum;
	raft_term prev_term;
	uint32_t k;

	if (first <= m->mbase || first > last + 1)
		sim_fail(s,
		    "n%d hands out entries from %" PRIu64 " but its log "
		    "is (%" PRIu64 ", %" PRIu64 "]",
		    i + 1, first, m->mbase, last);
	if (leader && first != last + 1)
		sim_fail(s,
		    "leader append-only: leader n%d rewrites its log "
		    "from index %" PRIu64 " (last %" PRIu64 ")",
		    i + 1, first, last);
	m->mn = first - m->mbase - 1;
	mirror_truncate(m, first);
	h = mhash(m, first - 1);
	cum = mcum(m, first - 1);
	prev_term = mterm(m, first - 1);
	grow((void **)&m->mlog, &m->mcap, m->mn + n, sizeof *m->mlog);
	for (k = 0; k < n; k++) {
		const struct raft_entry *x = &e[k];
		struct ment *me = &m->mlog[m->mn];

		if (x->index != first + k)
			sim_fail(s,
			    "n%d hands out non-contiguous entries (%" PRIu64
			    " after %" PRIu64 ")",
			    i + 1, x->index, first + k - 1);
		if (x->term < prev_term)
			sim_fail(s,
			    "n%d's log has term %" PRIu64 " at %" PRIu64
			    " after term %" PRIu64,
			    i + 1, x->term, x->index, prev_term);
		if (x->type != RAFT_ENTRY_NORMAL &&
		    x->type != RAFT_ENTRY_NOOP && x->type != RAFT_ENTRY_CONF)
			sim_fail(s,
			    "n%d hands out entry %" PRIu64
			    " of unknown type %u",
			    i + 1, x->index, x->type);
		h = chain_hash(h, x->term,
		    entry_value_hash(x->type, x->data, x->len));
		cum += x->type == RAFT_ENTRY_NORMAL;
		me->term = x->term;
		me->type = x->type;
		me->hash = h;
		me->cum = cum;
		prev_term = x->term;
		check_chain(s, i, x->index, x->term, h);
		m->mn++;
		if (x->type == RAFT_ENTRY_CONF)
			mirror_change(s, i, x);
	}
}

/* A snapshot at (index, term) replaces the log's prefix.  Returns whether
 * the suffix after it is kept (the log held (index, term)). */
bool sim_check_mirror_snapshot(struct sim *s, int i,
    const struct raft_snapshot_meta *meta)
{
	struct member *m = &s->m[i];
	raft_index index = meta->index, at;
	raft_term term = meta->term;
	bool keep = index >= m->mbase && index <= mlast(m) &&
	    mterm(m, index) == term;
	struct raft_conf mc;

	config_from_meta(meta, &mc);
	s->st.checks++;
	if (config_check(&mc) != 0)
		sim_fail(s,
		    "n%d's snapshot %" PRIu64 " has an invalid "
		    "configuration",
		    i + 1, index);
	if (keep) {
		const struct raft_conf *c = mirror_conf_at(m, index, &at);
		size_t k = 0;

		if (!config_equal(c, &mc))
			sim_fail(s,
			    "configurations: n%d's snapshot at %" PRIu64
			    " does not carry the configuration in force "
			    "there (from %" PRIu64 ")",
			    i + 1, index, at);
		m->mbase_conf = *c;
		m->mbase_conf_index = at;
		while (k < m->mconf_n && m->mconfs[k].index <= index)
			k++;
		if (k > 0) {
			memmove(m->mconfs, m->mconfs + k,
			    (m->mconf_n - k) * sizeof *m->mconfs);
			m->mconf_n -= k;
		}
		size_t drop = index - m->mbase;
		uint64_t h = mhash(m, index), cum = mcum(m, index);
		if (m->mn > drop)
			memmove(m->mlog, m->mlog + drop,
			    (m->mn - drop) * sizeof *m->mlog);
		m->mn -= drop;
		m->mbase = index;
		m->mbase_term = term;
		m->mbase_hash = h;
		m->mbase_cum = cum;
	} else {
		sim_check_mirror_reset(s, i, index, term, &mc, index);
	}
	return keep;
}

/* ===================================================================== */
/* apply model (the tester's server.go)                                  */
/* ===================================================================== */

#define BLOB_MAGIC 0x31424f4c424d4953ull /* "SIMBLOB1" */

/* Blob: magic, index, state hash, count c, c value hashes (lab: the
 * values 1..index), padding. */
static uint8_t *make_blob(struct sim *s, raft_index index, uint64_t *len)
{
	uint64_t c = s->cfg.lab_blob ? index : 0, k;
	uint64_t n = 32 + 8 * c + (s->cfg.lab_blob ? 0 : s->cfg.snap_pad);
	uint8_t *b = xmalloc(n);

	put_u64(b, BLOB_MAGIC);
	put_u64(b + 8, index);
	put_u64(b + 16, s->g[index].state);
	put_u64(b + 24, c);
	for (k = 0; k < c; k++)
		put_u64(b + 32 + 8 * k, s->g[k + 1].vh);
	for (k = 32 + 8 * c; k < n; k++)
		b[k] = (uint8_t)(index + k);
	*len = n;
	return b;
}

/* rd.snapshot_install: decode, check, replace the apply state. */
void sim_check_apply_snapshot(struct sim *s, int i,
    const struct raft_snapshot_meta *meta, const uint8_t *data, uint64_t len)
{
	struct member *m = &s->m[i];
	uint64_t index, state, c, k;

	s->st.snapshots_installed++;
	sim_trace(s, TR_INSTALL, i, 0, 0, meta->index, meta->term);
	if (len < 32 || get_u64(data) != BLOB_MAGIC)
		sim_fail(s,
		    "n%d installs a snapshot (index %" PRIu64 ") that "
		    "does not decode (%" PRIu64 " bytes)",
		    i + 1, meta->index, len);
	index = get_u64(data + 8);
	state = get_u64(data + 16);
	c = get_u64(data + 24);
	if (index != meta->index)
		sim_fail(s,
		    "n%d: snapshot blob encodes index %" PRIu64
		    " but the snapshot says %" PRIu64,
		    i + 1, index, meta->index);
	if (c > (len - 32) / 8)
		sim_fail(s, "n%d: snapshot blob truncated", i + 1);
	s->st.checks++;
	if (index > s->g_max || !s->g[index].set)
		sim_fail(s,
		    "n%d installs a snapshot at %" PRIu64 " beyond "
		    "anything applied anywhere (%" PRIu64 ")",
		    i + 1, index, s->g_max);
	if (s->g[index].state != state || s->g[index].term != meta->term)
		sim_fail(s,
		    "state-machine safety: n%d's snapshot at %" PRIu64
		    " differs from the applied state there",
		    i + 1, index);
	for (k = 0; k < c; k++)
		if (s->g[k + 1].vh != get_u64(data + 32 + 8 * k))
			sim_fail(s,
			    "state-machine safety: n%d's snapshot has a "
			    "different value at %" PRIu64,
			    i + 1, k + 1);
	m->applied = index;
	m->state = state;
	m->pending_compact = 0;
}

void sim_check_apply_entry(struct sim *s, int i, const struct raft_entry *e)
{
	struct member *m = &s->m[i];
	uint64_t vh = entry_value_hash(e->type, e->data, e->len);
	struct gent *g;

	s->st.checks++;
	if (e->index != m->applied + 1)
		sim_fail(s,
		    "apply out of order: n%d applies %" PRIu64
		    " after %" PRIu64,
		    i + 1, e->index, m->applied);
	if (e->index > m->mbase && e->index <= mlast(m) &&
	    mterm(m, e->index) != e->term)
		sim_fail(s,
		    "n%d applies entry %" PRIu64 " of term %" PRIu64
		    " but its log has term %" PRIu64 " there",
		    i + 1, e->index, e->term, mterm(m, e->index));
	if (!sim_disk_has(m, e->index, e->term))
		sim_fail(s,
		    "n%d applies entry %" PRIu64 " (term %" PRIu64
		    ") before it is durable locally",
		    i + 1, e->index, e->term);
	m->state = chain_hash(m->state, e->term, vh);
	g = gent_at(s, e->index);
	if (g->set) {
		if (g->vh != vh || g->term != e->term || g->state != m->state)
			sim_fail(s,
			    "state-machine safety: n%d applies a "
			    "different entry at %" PRIu64 " (term %" PRIu64
			    " vs %" PRIu64 ")",
			    i + 1, e->index, e->term, g->term);
	} else {
		struct gent *prev = e->index > 1 ? &s->g[e->index - 1] : NULL;
		g->set = true;
		g->term = e->term;
		g->vh = vh;
		g->state = m->state;
		g->type = e->type;
		g->cum = (prev && prev->set ? prev->cum : 0) +
		    (e->type == RAFT_ENTRY_NORMAL);
		if (e->index > s->g_max)
			s->g_max = e->index;
	}
	m->applied = e->index;
	if (s->cfg.snap_every && (e->index + 1) % s->cfg.snap_every == 0)
		m->pending_compact = e->index;
}

void sim_check_compact(struct sim *s, int i)
{
	struct member *m = &s->m[i];
	raft_index idx = m->pending_compact;
	uint64_t len;
	uint8_t *blob;
	int rc;

	m->pending_compact = 0;
	if (idx == 0 || idx > m->applied || m->r == NULL)
		return;
	blob = make_blob(s, idx, &len);
	rc = raft_compact(m->r, idx, blob, len);
	free(blob);
	if (rc == 0) {
		s->st.snapshots_taken++;
		sim_trace(s, TR_COMPACT, i, 0, 0, idx, 0);
	} else if (rc != RAFT_ESTALE) {
		sim_fail(s, "raft_compact(n%d, %" PRIu64 ") = %s", i + 1, idx,
		    rk_strerror(rc));
	}
}

/* ===================================================================== */
/* read index                                                            */
/* ===================================================================== */

raft_index sim_check_known_commit(struct sim *s)
{
	raft_index c = s->g_max;
	int i;

	for (i = 0; i < s->n; i++) {
		struct raft_status st;
		if (s->m[i].r == NULL)
			continue;
		raft_status(s->m[i].r, &st);
		if (st.commit > c)
			c = st.commit;
	}
	return c;
}

static struct read_req *find_read(struct sim *s, uint64_t ctx)
{
	size_t k;

	for (k = 0; k < s->reads_n; k++)
		if (s->reads[k].ctx == ctx)
			return &s->reads[k];
	return NULL;
}

static void drop_read(struct sim *s, struct read_req *r)
{
	*r = s->reads[--s->reads_n];
}

void sim_check_reads(struct sim *s, int i, const struct raft_ready *rd)
{
	uint32_t k;

	for (k = 0; k < rd->n_read_states; k++) {
		struct read_req *r = find_read(s, rd->read_states[k].ctx);
		s->st.checks++;
		if (r == NULL || r->member != i)
			sim_fail(s,
			    "n%d got a read state for unknown ctx %" PRIu64,
			    i + 1, rd->read_states[k].ctx);
		if (rd->read_states[k].index < r->floor)
			sim_fail(s,
			    "read index safety: n%d answers read %" PRIu64
			    " with index %" PRIu64 " but %" PRIu64
			    " was committed before it was asked",
			    i + 1, r->ctx, rd->read_states[k].index, r->floor);
		s->st.reads_ok++;
		drop_read(s, r);
	}
	for (k = 0; k < rd->n_read_failed; k++) {
		struct read_req *r = find_read(s, rd->read_failed[k]);
		if (r) {
			s->st.reads_failed++;
			drop_read(s, r);
		}
	}
}

/* After a batch: compare our view with the core's, check monotonicity and
 * leader completeness. */
void sim_check_batch(struct sim *s, int i, bool snap_dropped_suffix)
{
	struct member *m = &s->m[i];
	struct raft_status st;
	raft_term t;
	int rc;

	raft_status(m->r, &st);
	s->st.checks++;
	if (snap_dropped_suffix && st.last_index < mlast(m) &&
	    st.last_index == m->mbase) {
		/* The core dropped its whole log on InstallSnapshot even
		 * though it matched: so must the disk. */
		m->mn = 0;
		mirror_truncate(m, m->mbase + 1);
		if (m->wq_batch)
			m->wq_batch->snap_keep_suffix = false;
	}
	if (st.last_index != mlast(m))
		sim_fail(s,
		    "n%d's log ends at %" PRIu64 " but the entries it "
		    "handed out end at %" PRIu64,
		    i + 1, st.last_index, mlast(m));
	if (mlast(m) > m->mbase) {
		rc = raft_term_at(m->r, mlast(m), &t);
		if (rc != 0 || t != mterm(m, mlast(m)))
			sim_fail(s,
			    "n%d: raft_term_at(%" PRIu64 ") = %" PRIu64
			    " (rc %d) but it handed out term %" PRIu64,
			    i + 1, mlast(m), t, rc, mterm(m, mlast(m)));
	}
	if (st.commit < m->last_commit)
		sim_fail(s,
		    "commit index of n%d moves back from %" PRIu64
		    " to %" PRIu64,
		    i + 1, m->last_commit, st.commit);
	if (st.term < m->last_term)
		sim_fail(s,
		    "term of n%d moves back from %" PRIu64 " to %" PRIu64,
		    i + 1, m->last_term, st.term);
	if (st.commit > st.last_index && st.commit > st.snap_index)
		sim_fail(s,
		    "n%d's commit index %" PRIu64 " is beyond its log "
		    "(%" PRIu64 ")",
		    i + 1, st.commit, st.last_index);
	{
		struct raft_conf cc;
		raft_index ci, mi;
		const struct raft_conf *mc = sim_check_mirror_conf(m, &mi);

		raft_get_conf(m->r, &cc, &ci);
		s->st.checks++;
		if (ci != mi || !config_equal(&cc, mc)) {
			char a[160], b[160];

			fmt_conf(&cc, a, sizeof a);
			fmt_conf(mc, b, sizeof b);
			sim_fail(s,
			    "configurations: n%d has %s (from %" PRIu64
			    ") in force but its log says %s (from %" PRIu64 ")",
			    i + 1, a, ci, b, mi);
		}
		if (st.role == RAFT_LEADER && !st.voter &&
		    m->last_role != RAFT_LEADER) {
			/* Only as raft/config.h C8 allows: its removal is
			 * not committed and it voted in the configuration
			 * before. */
			raft_index at;
			const struct raft_conf *prev = mirror_conf_at(m,
			    mi ? mi - 1 : 0, &at);

			if (mi <= st.commit || mi == 0 ||
			    !config_is_voter(prev, (raft_id)i + 1))
				sim_fail(s,
				    "configurations: n%d became leader of "
				    "term %" PRIu64 " without being a voter",
				    i + 1, st.term);
		}
	}
	m->last_commit = st.commit;
	for (; m->cterm_upto < st.commit;) {
		struct gent *g = gent_at(s, ++m->cterm_upto);
		if (g->cterm == 0 || st.term < g->cterm)
			g->cterm = st.term;
	}
	if (st.role == RAFT_LEADER &&
	    (m->last_role != RAFT_LEADER || m->last_term != st.term)) {
		raft_index j;

		note_leader(s, i, st.term);
		sim_trace(s, TR_LEADER, i, 0, 0, st.term, st.last_index);
		slog(s,
		    "n%d elected leader of term %" PRIu64
		    " (log ends at %" PRIu64 ")",
		    i + 1, st.term, st.last_index);
		/* Leader completeness: every entry committed in an earlier
		 * term (a late winner of an old term, e.g. a candidate that
		 * stalled, owes nothing to later terms). */
		for (j = st.snap_index + 1; j <= s->g_max; j++) {
			if (!s->g[j].set || s->g[j].cterm == 0 ||
			    s->g[j].cterm >= st.term)
				continue;
			s->st.checks++;
			rc = raft_term_at(m->r, j, &t);
			if (rc != 0 || t != s->g[j].term)
				sim_fail(s,
				    "leader completeness: n%d leads term "
				    "%" PRIu64
				    " without committed entry %" PRIu64
				    " (term %" PRIu64 "; it has %s %" PRIu64
				    ")",
				    i + 1, st.term, j, s->g[j].term,
				    rc ? rk_strerror(rc) : "term", rc ? 0 : t);
		}
	}
	m->last_role = st.role;
	m->last_term = st.term;
}
