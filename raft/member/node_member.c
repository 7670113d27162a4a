/*
 * node_member.c - membership changes on a running member: the member
 * directory (memberdir.h) kept up to date and on disk, the transport's
 * peers following the configuration in force, the operator's changes
 * proposed and answered once committed, and a member that was removed
 * told to stop.  Loop thread unless a function says otherwise; node.c
 * calls in here, node_ready.c once per ready batch.
 *
 * Where a member's address comes from, in order (later wins for an id):
 * the cluster file, the data directory's "members" file (member.c), the
 * ctx of every change entry in the log at start (node_member_boot: an
 * entry may be durable while the file was not yet rewritten), then at
 * run time the ctx of every change entry appended (each carries the
 * directory of the configuration it makes) and the directory in a member
 * snapshot (node_merge_directory, from member.c's snapshot wrapper).
 * The configuration in force decides who is connected and admitted; the
 * directory only where they are and which key is theirs.
 *
 * The members seen removed (memberdir_gone.h: ids not connected again
 * until re-added, keys never admitted again) follow the committed change
 * entries in log order (node_member_ready, also for the entries the
 * core hands again after a restart; never the uncommitted entries read
 * at start): a committed REMOVE records the removed member's key for
 * good and its id, a committed ADD or PROMOTE drops the id again, and an
 * id of the configuration in force is never a removed one (held aside
 * meanwhile: its re-add may be truncated yet).  The key recorded is the
 * one the REMOVE entry's ctx gives: the leader puts the removed
 * member's directory entry there, so every member records the same key
 * (removed_key; an entry of the older format, without it, falls back to
 * the log before it, best effort).  Compaction drops the entries: so
 * the removed members are kept in the "members" file (loaded by
 * member.c, saved here whenever they change) and in member snapshots
 * (node_gone/node_merge_gone), and a member restarted after compaction,
 * or one that caught up from a snapshot, still refuses them.  They never
 * forget: a removed id that does not fit makes this member forget its
 * address instead, a key that does not fit stops it (fatal).
 *
 * A member removed by a change not yet committed stays connected and
 * admitted (the linger list): the others must still hear it and answer
 * it, since it may be the leader that proposed its own removal and must
 * commit it (C6 in raft/config.h); its frames are the core's to judge.
 *
 * A removed member must learn that its removal is committed to stop, but
 * the leader's core stops replicating to it as soon as the change is
 * appended.  So every member keeps a member whose removal it saw
 * committed connected for LINGER_MS more (node_member_sync), and while
 * it leads sends it, every heartbeat, an AppendEntries of its own log
 * ending at the removal with that commit index (notify_removed): an
 * ordinary, correct append the removed member accepts if its log matches
 * (C6 lets it accept one from a leader not in its configuration), after
 * which it sees its removal committed and stops.  Its answers reach the
 * leader's core, which drops them (not a member).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/client/cluster.h"
#include "raft/config.h"
#include "raft/util/clock.h"
#include "raft/util/logging.h"
#include "raft/member/node_int.h"
#include "raft/net/transport.h"

#define LINGER_MS 10000
#define LINGER_UNCOMMITTED_MS 60000
#define NOTICE_MAX_BYTES (1u << 20)
#define NOTICE_MAX_ENTRIES 64

void node_member_finish(struct member_op *op, int result, raft_id leader)
{
	op->result = result;
	op->leader = leader;
	sem_post(&op->done);
}

static bool conf_has(const struct raft_conf *c, raft_id id)
{
	return config_member_index(c, id) >= 0;
}

/* The directory of the configuration a change entry makes, if it
 * decodes: its ctx, less the removed member's entry that a REMOVE's ctx
 * also has (removed_key). */
static bool entry_dir(const struct raft_entry *e, struct raft_conf_change *cc,
    struct memberdir *d)
{
	if (e->type != RAFT_ENTRY_CONF || raft_conf_change_decode(e, cc) != 0)
		return false;
	if (cc->ctx_len == 0 || memberdir_decode(cc->ctx, cc->ctx_len, d)) {
		d->n = 0;
		return true;
	}
	if (cc->type == RAFT_CONF_REMOVE)
		memberdir_del(d, cc->id);
	return true;
}

/* True if the configuration in force has @id, or cfg.fresh (a newer
 * configuration the cluster told at start) does and is newer than
 * @index.  Caller holds mu. */
static bool configured_locked(struct node *n, raft_id id, raft_index index)
{
	return conf_has(&n->conf, id) ||
	    (n->cfg.fresh_index > index &&
	        memberdir_find(&n->cfg.fresh, id) != NULL);
}

static bool held_has_locked(const struct node *n, raft_id id)
{
	for (uint32_t i = 0; i < n->n_held; i++)
		if (n->held[i] == id)
			return true;
	return false;
}

static void held_del_locked(struct node *n, raft_id id)
{
	for (uint32_t i = 0; i < n->n_held; i++)
		if (n->held[i] == id) {
			n->held[i] = n->held[--n->n_held];
			return;
		}
}

/* Hold a removed id that a configuration has again (gone_removed). */
static void held_add_locked(struct node *n, raft_id id)
{
	if (!held_has_locked(n, id) && n->n_held < RAFT_MAX_MEMBERS)
		n->held[n->n_held++] = id;
}

/* Removed member @id (not in the configuration in force) goes in the
 * removed ids.  The set never forgets, so when it is full the member is
 * kept out another way (fail closed): its directory entry is dropped,
 * so that this member neither connects nor admits it (its address comes
 * back at start only from the cluster file, and then its recorded key
 * keeps it out: node_member_sync).  Caller holds mu.  Returns true if
 * the set or the directory changed. */
static bool gone_add_id_locked(struct node *n, raft_id id)
{
	if (memberdir_gone_has_id(&n->gone, id))
		return false;
	if (memberdir_gone_add_id(&n->gone, id) == 0)
		return true;
	log_warnx("removed members full (%d ids): member %" PRIu64 " is "
	          "removed but this member cannot record its id: its "
	          "address is forgotten instead",
	    MEMBERDIR_GONE_MAX, id);
	memberdir_del(&n->dir, id);
	return true;
}

/* Record @key ("" for none) as a removed member's (@id), never admitted
 * again.  A key that does not fit stops this member (fatal): it would
 * otherwise admit the key again, and no room is ever made by forgetting
 * one (the leader refuses a removal that does not fit its own sets, so
 * this member's differ: see raftkv(7)).  Caller holds mu.  Returns true
 * if the set changed. */
static bool gone_add_key_locked(struct node *n, raft_id id, const char *key)
{
	if (key[0] == '\0' || memberdir_gone_has_key(&n->gone, key))
		return false;
	if (memberdir_gone_add_key(&n->gone, key) == 0)
		return true;
	fatalx("removed members full (%d keys): this member cannot record "
	       "the key %s of removed member %" PRIu64 " (0: from a "
	       "snapshot) and stops rather than admit it again; it will "
	       "stop the same way at every start: remove this member from "
	       "the cluster and add it back with a fresh data directory "
	       "and a new key",
	    MEMBERDIR_GONE_MAX, key, id);
}

/* The committed REMOVE at @index of @id with @key: the key is removed
 * for good; the id is removed unless a configuration after it has it
 * again (the configuration in force, or cfg.fresh): then it waits in
 * the held ids until a committed change adds it (dropped) or the
 * configuration in force leaves it out (removed after all).  So the
 * removed ids follow the committed log in its order, and an id of the
 * configuration in force is never one.  Returns true if the removed
 * members changed. */
static bool gone_removed(struct node *n, raft_id id, raft_index index,
    const char *key)
{
	bool changed;

	pthread_mutex_lock(&n->mu);
	changed = gone_add_key_locked(n, id, key);
	if (configured_locked(n, id, index)) {
		held_add_locked(n, id);
	} else {
		changed |= gone_add_id_locked(n, id);
	}
	pthread_mutex_unlock(&n->mu);
	return changed;
}

/* A committed change adding or promoting @id: not removed any more. */
static bool gone_readded(struct node *n, raft_id id)
{
	bool changed;

	pthread_mutex_lock(&n->mu);
	changed = memberdir_gone_has_id(&n->gone, id);
	memberdir_gone_del_id(&n->gone, id);
	held_del_locked(n, id);
	pthread_mutex_unlock(&n->mu);
	return changed;
}

/* True if @e is a change entry whose directory (the configuration it
 * makes) lists @id; then @key is @id's key there.  @d: scratch. */
static bool entry_key(const struct raft_entry *e, raft_id id,
    struct memberdir *d, char key[MEMBERDIR_KEY_MAX])
{
	struct raft_conf_change cc;
	const struct memberdir_entry *m;

	if (!entry_dir(e, &cc, d) || (m = memberdir_find(d, id)) == NULL)
		return false;
	snprintf(key, MEMBERDIR_KEY_MAX, "%s", m->key);
	return true;
}

/*
 * The key of member @id removed at @index by a REMOVE entry of the older
 * format, without the removed member in its ctx (written by a leader
 * before that was added; best effort): the one the newest change entry
 * before @index gives it, else (compacted, or a bootstrap member never
 * listed) the directory's.  The directory may already have the key of a
 * re-add of @id (a later entry merged first: the commit of the removal
 * comes with the append of the re-add), and cfg.fresh may too: a key
 * that a configuration after @index gives @id is the re-added member's,
 * never recorded as removed ("" then).
 */
static void removed_key_old(struct node *n, raft_id id, raft_index index,
    char key[MEMBERDIR_KEY_MAX])
{
	struct memberdir *d = malloc(sizeof(*d));
	const struct memberdir_entry *m;
	const struct raft_entry *e;
	char later[MEMBERDIR_KEY_MAX];
	bool found = false;

	if (d == NULL)
		fatalx("out of memory reading a membership change");
	key[0] = '\0';
	for (raft_index i = index - 1;
	     !found && i > 0 && (e = raft_entry_at(n->raft, i)) != NULL; i--)
		found = entry_key(e, id, d, key);
	pthread_mutex_lock(&n->mu);
	if (!found && (m = memberdir_find(&n->dir, id)) != NULL)
		snprintf(key, MEMBERDIR_KEY_MAX, "%s", m->key);
	if (n->cfg.fresh_index > index &&
	    (m = memberdir_find(&n->cfg.fresh, id)) != NULL &&
	    strcmp(m->key, key) == 0)
		key[0] = '\0';
	pthread_mutex_unlock(&n->mu);
	for (raft_index i = index + 1;
	     key[0] != '\0' && (e = raft_entry_at(n->raft, i)) != NULL; i++)
		if (entry_key(e, id, d, later) && strcmp(later, key) == 0)
			key[0] = '\0';
	free(d);
}

/* The key of the member removed by REMOVE entry @e (@cc: decoded): the
 * one its ctx gives (the leader puts the removed member's directory
 * entry there), else removed_key_old(). */
static void removed_key(struct node *n, const struct raft_entry *e,
    const struct raft_conf_change *cc, char key[MEMBERDIR_KEY_MAX])
{
	struct memberdir *d = malloc(sizeof(*d));
	const struct memberdir_entry *m;

	if (d == NULL)
		fatalx("out of memory reading a membership change");
	if (cc->ctx_len > 0 && memberdir_decode(cc->ctx, cc->ctx_len, d) == 0 &&
	    (m = memberdir_find(d, cc->id)) != NULL)
		snprintf(key, MEMBERDIR_KEY_MAX, "%s", m->key);
	else
		removed_key_old(n, cc->id, e->index, key);
	free(d);
}

/* True if @key is the key of a member this member saw removed. */
static bool key_gone(struct node *n, const char *key)
{
	bool gone;

	pthread_mutex_lock(&n->mu);
	gone = memberdir_gone_has_key(&n->gone, key);
	pthread_mutex_unlock(&n->mu);
	return gone;
}

/* Merge @d into the node's directory; when full, forget ids that are not
 * members of @keep first.  Returns true if anything was added. */
static bool merge_dir(struct node *n, const struct memberdir *d,
    const struct raft_conf *keep)
{
	int rv;

	pthread_mutex_lock(&n->mu);
	rv = memberdir_merge(&n->dir, d);
	if (rv == -ENOSPC && keep != NULL) {
		for (uint32_t i = 0; i < n->dir.n;)
			if (!conf_has(keep, n->dir.m[i].id) &&
			    n->dir.m[i].id != n->cfg.id)
				memberdir_del(&n->dir, n->dir.m[i].id);
			else
				i++;
		rv = memberdir_merge(&n->dir, d);
	}
	pthread_mutex_unlock(&n->mu);
	if (rv != 0)
		log_warnx("member directory: cannot add %u entries: %s", d->n,
		    strerror(-rv));
	return d->n > 0;
}

/* The configuration in force is now @c (at @index): its members are not
 * removed ones (held instead), and a held id it leaves out (the change
 * that had it again was truncated) is removed after all.  Caller holds
 * mu.  Returns true if the removed members changed. */
static bool gone_follow_conf_locked(struct node *n, const struct raft_conf *c,
    raft_index index)
{
	bool changed = false;

	for (uint32_t i = 0; i < config_n_members(c); i++) {
		raft_id id = config_member_id(c, i);

		if (id == n->cfg.id || !memberdir_gone_has_id(&n->gone, id))
			continue;
		memberdir_gone_del_id(&n->gone, id);
		held_add_locked(n, id);
		changed = true;
	}
	for (uint32_t i = 0; i < n->n_held;) {
		raft_id id = n->held[i];

		if (configured_locked(n, id, index)) {
			i++;
			continue;
		}
		held_del_locked(n, id);
		changed |= gone_add_id_locked(n, id);
	}
	return changed;
}

/* The newest configuration the cluster told at start (cfg.fresh), if it
 * is newer than every change in the log (@last): its members' entries
 * win and their ids are not removed ones (added again while this
 * member was down: the log and the "members" file still say removed,
 * and a leader among them would never be admitted).  Otherwise forgotten
 * (node_merge_gone reads it). */
static void apply_fresh(struct node *n, raft_index last)
{
	uint32_t was;

	if (n->cfg.fresh.n == 0)
		return;
	if (n->cfg.fresh_index <= last) {
		n->cfg.fresh.n = 0;
		return;
	}
	pthread_mutex_lock(&n->mu);
	was = n->gone.n_ids;
	for (uint32_t i = 0; i < n->cfg.fresh.n; i++) {
		const struct memberdir_entry *e = &n->cfg.fresh.m[i];

		if (e->id == n->cfg.id)
			continue;
		if (memberdir_put(&n->dir, e) != 0)
			log_warnx("member directory: cannot add member "
			          "%" PRIu64,
			    e->id);
		if (memberdir_gone_has_id(&n->gone, e->id)) {
			memberdir_gone_del_id(&n->gone, e->id);
			held_add_locked(n, e->id);
		}
	}
	if (n->gone.n_ids != was)
		log_info("the cluster's configuration (index %" PRIu64 ") "
		         "has %u member(s) again that this member saw removed",
		    n->cfg.fresh_index, was - n->gone.n_ids);
	pthread_mutex_unlock(&n->mu);
}

/*
 * The log at start: every change entry's directory (the log may be
 * newer than the "members" file).  The removed members are not taken
 * from it: an entry in the log may not be committed (and may be
 * truncated yet), and the core hands every committed entry after the
 * snapshot to node_member_ready again once it knows it committed, in
 * log order; the "members" file has what was committed before.
 */
void node_member_boot(struct node *n, const struct raft_boot *boot)
{
	struct raft_conf_change cc;
	struct memberdir *d = malloc(sizeof(*d));
	raft_index last = 0;

	if (d == NULL)
		fatalx("out of memory reading the member directory");
	if (boot != NULL && boot->has_snapshot)
		last = boot->snap.index;
	for (uint64_t i = 0; boot != NULL && i < boot->n_entries; i++) {
		if (!entry_dir(&boot->entries[i], &cc, d))
			continue;
		(void)merge_dir(n, d, &cc.conf);
		last = boot->entries[i].index;
	}
	free(d);
	apply_fresh(n, last);
}

static void save_dir(struct node *n)
{
	struct memberdir *d = malloc(sizeof(*d));
	struct memberdir_gone *gone = malloc(sizeof(*gone));
	char err[512];

	if (d == NULL || gone == NULL)
		fatalx("out of memory saving the member directory");
	pthread_mutex_lock(&n->mu);
	*d = n->dir;
	*gone = n->gone;
	pthread_mutex_unlock(&n->mu);
	/*
	 * Start-up records removals only from this file and from committed
	 * entries handed over again, so a failed save is retried at the next
	 * tick until it goes through.
	 */
	if (memberdir_save(n->cfg.data_dir, n->cfg.cluster_id, d, gone, err,
	        sizeof(err)) != 0) {
		if (!n->dir_save_failed)
			log_warnx("member directory not saved (retried at "
			          "every tick): %s",
			    err);
		n->dir_save_failed = true;
		atomic_store(&n->dir_dirty, true);
	} else if (n->dir_save_failed) {
		log_info("member directory saved");
		n->dir_save_failed = false;
	}
	free(gone);
	free(d);
}

int node_member_sync(struct node *n)
{
	struct transport_member tm[RAFT_MAX_MEMBERS];
	struct memberdir *d = malloc(sizeof(*d));
	struct memberdir_gone *gone = malloc(sizeof(*gone));
	struct raft_conf c;
	raft_id ids[RAFT_MAX_MEMBERS + 1];
	uint32_t n_ids = 0, k = 0;
	int rv;

	if (d == NULL || gone == NULL) {
		free(d);
		free(gone);
		return -ENOMEM;
	}
	pthread_mutex_lock(&n->mu);
	*d = n->dir;
	*gone = n->gone;
	c = n->conf;
	pthread_mutex_unlock(&n->mu);
	for (uint32_t i = 0; i < config_n_members(&c); i++)
		ids[n_ids++] = config_member_id(&c, i);
	if (!conf_has(&c, n->cfg.id))
		ids[n_ids++] = n->cfg.id;
	for (uint32_t i = 0; i < n->n_linger && n_ids < RAFT_MAX_MEMBERS; i++)
		if (!conf_has(&c, n->linger[i].id) &&
		    n->linger[i].id != n->cfg.id)
			ids[n_ids++] = n->linger[i].id;
	/* Every other member the directory knows and that this member has
	 * not seen removed: its configuration may be older than the
	 * cluster's (down while members were added, or joining), and the
	 * leader may be one it does not know as a member yet.  Whether
	 * their messages count is the core's decision. */
	for (uint32_t i = 0; i < d->n && n_ids < RAFT_MAX_MEMBERS; i++) {
		raft_id id = d->m[i].id;
		bool listed = false;

		for (uint32_t j = 0; j < n_ids && !listed; j++)
			listed = ids[j] == id;
		if (!listed && !memberdir_gone_has_id(gone, id) &&
		    !memberdir_gone_has_key(gone, d->m[i].key))
			ids[n_ids++] = id;
	}
	for (uint32_t i = 0; i < n_ids && k < RAFT_MAX_MEMBERS; i++) {
		const struct memberdir_entry *e = memberdir_find(d, ids[i]);

		if (e == NULL) {
			log_warnx("member %" PRIu64 " of the configuration "
			          "has no known address yet: not connected",
			    ids[i]);
			continue;
		}
		memset(&tm[k], 0, sizeof(tm[k]));
		tm[k].id = e->id;
		snprintf(tm[k].endpoint, sizeof(tm[k].endpoint), "%s", e->peer);
		snprintf(tm[k].curve_public, sizeof(tm[k].curve_public), "%s",
		    e->key);
		k++;
	}
	free(d);
	free(gone);
	if (n->tr == NULL) {
		struct transport_config tc;

		transport_config_defaults(&tc);
		tc.cluster_id = n->cfg.cluster_id;
		tc.self = n->cfg.id;
		tc.n_members = k;
		memcpy(tc.members, tm, k * sizeof(tm[0]));
		snprintf(tc.curve_secret, sizeof(tc.curve_secret), "%s",
		    n->cfg.curve_secret);
		tc.fault_injection = n->cfg.fault_injection != 0;
		rv = transport_new(&tc, &n->tr);
		explicit_bzero(&tc, sizeof(tc));
		return rv;
	}
	rv = transport_set_members(n->tr, tm, k);
	if (rv != 0)
		log_warnx("transport: cannot follow the configuration: %s",
		    rk_strerror(rv));
	return rv;
}

static raft_id leader_hint(struct node *n)
{
	struct raft_status st;

	raft_status(n->raft, &st);
	return st.leader;
}

static void notify_removed(struct node *n, raft_index index, raft_id to,
    unsigned attempt, raft_term term);

/* Keep removed member @id connected: until its removal at @index is
 * committed (and LINGER_MS more), or LINGER_UNCOMMITTED_MS at most.
 * Returns true if the list changed (new member). */
static bool linger_add(struct node *n, raft_id id, raft_index index,
    bool committed)
{
	uint64_t until = mono_ms() +
	    (committed ? LINGER_MS : LINGER_UNCOMMITTED_MS);
	uint32_t i;
	bool added = false;

	for (i = 0; i < n->n_linger; i++)
		if (n->linger[i].id == id)
			break;
	if (i == n->n_linger) {
		if (n->n_linger == RAFT_MAX_MEMBERS)
			return false;
		n->n_linger++;
		n->linger[i].sent = 0;
		n->linger[i].committed = false;
		added = true;
	}
	n->linger[i].id = id;
	n->linger[i].index = index;
	if (!n->linger[i].committed || committed)
		n->linger[i].until_ms = until;
	n->linger[i].committed |= committed;
	return added;
}

/* A committed conf entry: the change waited for, our own removal.
 * Returns true if the removed members changed. */
static bool committed_conf(struct node *n, const struct raft_entry *e)
{
	struct raft_conf_change cc;
	bool changed = false;

	if (raft_conf_change_decode(e, &cc) != 0)
		return false;
	if (cc.type == RAFT_CONF_REMOVE && cc.id != n->cfg.id) {
		char key[MEMBERDIR_KEY_MAX];
		bool seen;

		/*
		 * After a restart the commit index starts at the snapshot, so
		 * committed removals still in the log come again.  One this
		 * member already recorded (the members file) must not give
		 * the removed member another grace period on the transport.
		 */
		pthread_mutex_lock(&n->mu);
		seen = memberdir_gone_has_id(&n->gone, cc.id);
		pthread_mutex_unlock(&n->mu);
		if (!seen)
			linger_add(n, cc.id, e->index, true);
		removed_key(n, e, &cc, key);
		changed = gone_removed(n, cc.id, e->index, key);
	}
	if (cc.type != RAFT_CONF_REMOVE && cc.id != n->cfg.id)
		changed = gone_readded(n, cc.id);
	/* Only a removal of this member counts: a new member catching up
	 * also applies the changes from before it was added. */
	if (cc.type == RAFT_CONF_REMOVE && cc.id == n->cfg.id && !n->removed) {
		n->removed = true;
		n->removed_at_tick = n->ticks + 3 * n->cfg.election_tick;
		log_warnx("member %" PRIu64 " was removed from the cluster "
		          "(the change at index %" PRIu64 " is committed): "
		          "it stops serving and exits",
		    n->cfg.id, e->index);
	}
	return changed;
}

void node_member_ready(struct node *n, const struct raft_ready *rd)
{
	struct raft_conf_change cc;
	struct memberdir *d = NULL;
	bool dir_changed = false, sync = false;

	for (uint32_t i = 0; i < rd->n_entries; i++) {
		if (rd->entries[i].type != RAFT_ENTRY_CONF)
			continue;
		if (d == NULL && (d = malloc(sizeof(*d))) == NULL)
			fatalx("out of memory reading a membership change");
		if (!entry_dir(&rd->entries[i], &cc, d))
			continue;
		dir_changed |= merge_dir(n, d, &cc.conf);
		if (cc.type == RAFT_CONF_REMOVE && cc.id != n->cfg.id)
			sync |= linger_add(n, cc.id, rd->entries[i].index,
			    false);
	}
	free(d);
	if (rd->conf_changed) {
		pthread_mutex_lock(&n->mu);
		n->conf = rd->conf;
		n->conf_index = rd->conf_index;
		/* Its members are not removed ones (a snapshot may bring
		 * the re-add of an id whose removal we saw). */
		dir_changed |= gone_follow_conf_locked(n, &rd->conf,
		    rd->conf_index);
		pthread_mutex_unlock(&n->mu);
		sync = true;
		log_info("configuration in force (index %" PRIu64 "): %u "
		         "voters, %u learners",
		    rd->conf_index, rd->conf.n_voters, rd->conf.n_learners);
		/* A snapshot whose configuration leaves us out is NOT taken
		 * for a removal: a new learner is sent the leader's latest
		 * snapshot, which may predate the change that added it (the
		 * benchmark's 1 GiB catch-up found this).  Only a committed
		 * REMOVE of this member counts (committed_conf). */
	}
	uint32_t lingering = n->n_linger;

	for (uint32_t i = 0; i < rd->n_committed; i++) {
		const struct raft_entry *e = &rd->committed[i];

		if (n->mop != NULL && e->index == n->mop->index) {
			node_member_finish(n->mop,
			    e->term == n->mop->term &&
			            e->type == RAFT_ENTRY_CONF
			        ? 0
			        : NODE_ELOST,
			    leader_hint(n));
			n->mop = NULL;
		}
		if (e->type == RAFT_ENTRY_CONF)
			dir_changed |= committed_conf(n, e);
	}
	if (n->mop != NULL && rd->truncated_from != 0 &&
	    rd->truncated_from <= n->mop->index) {
		node_member_finish(n->mop, NODE_ELOST, leader_hint(n));
		n->mop = NULL;
	}
	if (dir_changed)
		save_dir(n);
	if (dir_changed || sync || n->n_linger != lingering)
		(void)node_member_sync(n);
	/* The first notice at once: the removal is still in memory (a
	 * snapshot may compact it away soon). */
	if (n->n_linger != 0) {
		struct raft_status st;

		raft_status(n->raft, &st);
		for (uint32_t i = 0; st.role == RAFT_LEADER && i < n->n_linger;
		     i++)
			if (n->linger[i].committed && n->linger[i].sent == 0)
				notify_removed(n, n->linger[i].index,
				    n->linger[i].id, n->linger[i].sent++,
				    st.term);
	}
}

/*
 * Tell removed member @l, while we lead, that its removal is committed:
 * an append of our log's last entries up to the removal, committing it.
 * Each try reaches further back (its log may end earlier), within what
 * is in memory and NOTICE_MAX_BYTES.
 */
static void notify_removed(struct node *n, raft_index index, raft_id to,
    unsigned attempt, raft_term term)
{
	struct raft_entry ents[NOTICE_MAX_ENTRIES];
	struct raft_msg m = { 0 };
	uint32_t want = 1u << (attempt % 7), k = 0;
	uint64_t bytes = 0;
	raft_index first;

	if (want > NOTICE_MAX_ENTRIES)
		want = NOTICE_MAX_ENTRIES;
	for (first = index; k < want && first >= 1; first--, k++) {
		const struct raft_entry *e = raft_entry_at(n->raft, first);

		if (e == NULL || bytes + e->len > NOTICE_MAX_BYTES)
			break;
		bytes += e->len;
	}
	first++;
	if (k == 0 || raft_term_at(n->raft, first - 1, &m.log_term) != 0)
		return;
	for (uint32_t i = 0; i < k; i++)
		ents[i] = *raft_entry_at(n->raft, first + i);
	m.type = RAFT_MSG_APPEND;
	m.from = n->cfg.id;
	m.to = to;
	m.term = term;
	m.index = first - 1;
	m.commit = index;
	m.n_entries = k;
	m.entries = ents;
	(void)transport_send(n->tr, &m);
}

static void linger_tick(struct node *n)
{
	struct raft_status st;
	uint64_t now = mono_ms();
	bool drop = false;

	if (n->n_linger == 0 || n->ticks % n->cfg.heartbeat_tick != 0)
		return;
	raft_status(n->raft, &st);
	for (uint32_t i = 0; i < n->n_linger;) {
		if (now >= n->linger[i].until_ms) {
			n->linger[i] = n->linger[--n->n_linger];
			drop = true;
			continue;
		}
		if (st.role == RAFT_LEADER && n->linger[i].committed)
			notify_removed(n, n->linger[i].index, n->linger[i].id,
			    n->linger[i].sent++, st.term);
		i++;
	}
	if (drop)
		(void)node_member_sync(n);
}

void node_member_tick(struct node *n)
{
	linger_tick(n);
	if (atomic_exchange(&n->dir_dirty, false)) {
		save_dir(n);
		(void)node_member_sync(n);
	}
	if (n->mop != NULL && mono_ms() >= n->mop->deadline_ms) {
		node_member_finish(n->mop, NODE_ETIMEDOUT, leader_hint(n));
		n->mop = NULL;
	}
	if (n->removed && !n->removed_called &&
	    n->ticks >= n->removed_at_tick) {
		struct raft_conf c;
		raft_index ci;

		/* Still out?  The log after it may have added us again (an
		 * old snapshot or entry of a member caught up from afar). */
		raft_get_conf(n->raft, &c, &ci);
		if (conf_has(&c, n->cfg.id)) {
			n->removed = false;
			log_info("member %" PRIu64 " is in the configuration "
			         "again (index %" PRIu64 "): not stopping",
			    n->cfg.id, ci);
			return;
		}
		n->removed_called = true;
		if (n->cfg.removed != NULL)
			n->cfg.removed(n->cfg.removed_arg);
	}
}

static int check_entry(struct node *n, const struct member_op *op)
{
	const struct memberdir_entry *e = &op->entry;
	bool curve = n->cfg.curve_secret[0] != '\0';

	if (e->id != op->id || cluster_check_endpoint(e->peer) != 0 ||
	    cluster_check_endpoint(e->client) != 0 ||
	    curve != (e->key[0] != '\0') ||
	    (curve && !memberdir_key_ok(e->key)))
		return -EINVAL;
	/* A removed member's key stays out: a member is re-added (same
	 * id or another) with a new key. */
	if (key_gone(n, e->key))
		return -EKEYREJECTED;
	return 0;
}

/* A removal of @id must fit in the removed members: they forget none
 * (memberdir_gone.h), so past the bound the cluster removes no more. */
static int check_room(struct node *n, raft_id id)
{
	const struct memberdir_entry *e;
	bool room;

	pthread_mutex_lock(&n->mu);
	e = memberdir_find(&n->dir, id);
	room = memberdir_gone_room(&n->gone, id, e != NULL ? e->key : "");
	pthread_mutex_unlock(&n->mu);
	return room ? 0 : NODE_EGONEFULL;
}

void node_member_request(struct node *n, struct member_op *op)
{
	const struct memberdir_entry *e0;
	struct memberdir *ctx = NULL;
	struct raft_conf c, next;
	struct raft_status st;
	raft_index ci, index = 0;
	uint8_t *buf = NULL;
	uint32_t len = 0;
	int rv;

	if (n->mop != NULL) {
		node_member_finish(op, RAFT_ECONFPENDING, leader_hint(n));
		return;
	}
	raft_status(n->raft, &st);
	if (st.role != RAFT_LEADER) {
		node_member_finish(op, RAFT_ENOTLEADER, st.leader);
		return;
	}
	/* Only the leader proposes, so only its setting counts: the same
	 * answer whichever member the client reached first (and a change
	 * committed is applied by every member, whatever its own). */
	if (!op->allowed) {
		node_member_finish(op, CPROTO_EDENIED, st.leader);
		return;
	}
	raft_get_conf(n->raft, &c, &ci);
	rv = op->type == RAFT_CONF_ADD_LEARNER ? check_entry(n, op)
	    : op->type == RAFT_CONF_REMOVE     ? check_room(n, op->id)
	                                       : 0;
	if (rv == 0)
		rv = config_apply(&c, op->type, op->id, &next);
	if (rv == 0 && (ctx = calloc(1, sizeof(*ctx))) == NULL)
		rv = -ENOMEM;
	if (rv != 0)
		goto out;
	/* The ctx: the directory of the configuration it makes; a REMOVE's
	 * also has the removed member's entry, whose key every member
	 * records as removed when it commits (removed_key). */
	pthread_mutex_lock(&n->mu);
	if (op->type == RAFT_CONF_REMOVE &&
	    (e0 = memberdir_find(&n->dir, op->id)) != NULL)
		(void)memberdir_put(ctx, e0);
	for (uint32_t i = 0; i < config_n_members(&next); i++) {
		raft_id id = config_member_id(&next, i);
		const struct memberdir_entry *e = op->type ==
		            RAFT_CONF_ADD_LEARNER &&
		        id == op->id
		    ? &op->entry
		    : memberdir_find(&n->dir, id);

		if (e != NULL)
			(void)memberdir_put(ctx, e);
	}
	pthread_mutex_unlock(&n->mu);
	rv = memberdir_encode(ctx, &buf, &len);
	if (rv == 0)
		rv = raft_propose_conf_change(n->raft, op->type, op->id, buf,
		    len, &index);
out:
	free(buf);
	free(ctx);
	if (rv != 0) {
		node_member_finish(op, rv, st.leader);
		return;
	}
	log_info("membership change proposed at index %" PRIu64 ": %s "
	         "member %" PRIu64,
	    index,
	    op->type == RAFT_CONF_ADD_LEARNER   ? "add learner"
	        : op->type == RAFT_CONF_PROMOTE ? "promote"
	                                        : "remove",
	    op->id);
	op->index = index;
	op->term = st.term;
	n->mop = op;
}

void node_member_stop(struct node *n)
{
	if (n->mop != NULL)
		node_member_finish(n->mop, NODE_ESHUTDOWN, 0);
	n->mop = NULL;
}

int node_member_change(struct node *n, int type, raft_id id,
    const struct memberdir_entry *e, bool allowed, int timeout_ms,
    raft_id *leader)
{
	struct loop_req *req;
	struct member_op op = { .type = type, .id = id, .allowed = allowed };
	int rv;

	if (leader != NULL)
		*leader = 0;
	if (n->loop_started && pthread_equal(pthread_self(), n->loop_thread))
		return -EDEADLK;
	if (type != RAFT_CONF_ADD_LEARNER && type != RAFT_CONF_PROMOTE &&
	    type != RAFT_CONF_REMOVE)
		return -EINVAL;
	if (type == RAFT_CONF_ADD_LEARNER) {
		if (e == NULL)
			return -EINVAL;
		op.entry = *e;
	}
	op.deadline_ms = mono_ms() +
	    (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return -ENOMEM;
	sem_init(&op.done, 0, 0);
	req->msg.kind = LOOP_MEMBER;
	req->op = &op;
	pthread_mutex_lock(&n->mu);
	n->callers++;
	pthread_mutex_unlock(&n->mu);
	if (mbox_put(&n->loop_box, &req->msg.item) != 0) {
		free(req);
		rv = NODE_ESHUTDOWN;
	} else {
		while (sem_wait(&op.done) != 0)
			; /* EINTR */
		rv = op.result;
		if (leader != NULL)
			*leader = op.leader;
	}
	sem_destroy(&op.done);
	pthread_mutex_lock(&n->mu);
	if (--n->callers == 0)
		pthread_cond_broadcast(&n->idle);
	pthread_mutex_unlock(&n->mu);
	return rv;
}

void node_members(struct node *n, struct raft_conf *conf,
    raft_index *conf_index, struct memberdir *dir)
{
	pthread_mutex_lock(&n->mu);
	*conf = n->conf;
	*conf_index = n->conf_index;
	*dir = n->dir;
	pthread_mutex_unlock(&n->mu);
}

void node_merge_directory(struct node *n, const struct memberdir *d)
{
	if (d->n == 0)
		return;
	(void)merge_dir(n, d, NULL);
	atomic_store(&n->dir_dirty, true);
}

void node_gone(struct node *n, struct memberdir_gone *g)
{
	pthread_mutex_lock(&n->mu);
	*g = n->gone;
	pthread_mutex_unlock(&n->mu);
}

void node_merge_gone(struct node *n, const struct memberdir_gone *g, bool older)
{
	if (memberdir_gone_empty(g))
		return;
	pthread_mutex_lock(&n->mu);
	for (uint32_t i = 0; i < g->n_ids; i++) {
		raft_id id = g->ids[i];

		if (id == n->cfg.id)
			continue;
		if (configured_locked(n, id, n->conf_index) ||
		    (older && memberdir_find(&n->cfg.fresh, id) != NULL))
			held_add_locked(n, id);
		else
			(void)gone_add_id_locked(n, id);
	}
	for (uint32_t i = 0; i < g->n_keys; i++)
		(void)gone_add_key_locked(n, 0, g->keys[i]);
	pthread_mutex_unlock(&n->mu);
	atomic_store(&n->dir_dirty, true);
}
