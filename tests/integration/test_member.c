/*
 * test_member.c - membership changes on real raftkv-server processes
 * (issue #13): the cluster grows, shrinks and replaces members while
 * clients write, and every history is checked for linearizability.
 *
 *   grow          3 -> 5 while 3 clients write random keys: each new
 *                 member joins (--join) as a learner, catches up through
 *                 a snapshot (small max-raft-state), is promoted;
 *   remove leader the leader is removed while clients write: it stops by
 *                 itself, a new leader takes over, the history holds;
 *   replace       a member is killed (-9) and replaced by a new member
 *                 with a fresh data directory; the dead one, started
 *                 again after the linger window, is refused by everyone
 *                 (its key is out: its commit stays, the others' term
 *                 too) and cannot be added again with its key; the rest restart (kill -9) from their
 *                 persisted member directories;
 *   compacted     a member is removed, every survivor compacts its log
 *                 past the removal (snapshot) and all restart (kill -9):
 *                 the removed member's key is still refused on re-add
 *                 (kept in the "members" file, not only in the log);
 *   through snap  a member down while another is removed and the removal
 *                 compacted catches up by snapshot and, leading, still
 *                 refuses the removed member's key (member snapshots
 *                 carry the removed members);
 *   crash         kill -9 of a random member (the leader or not) at a
 *                 random point of an add/promote/remove, for a few
 *                 seeds (RAFTKV_LONG=1: more): afterwards the cluster
 *                 converges, the change either happened or can be made
 *                 again, and the history is linearizable.  A removed
 *                 member stops by itself unless the leader that
 *                 committed its removal was the one killed (then it
 *                 must stay harmless: see crash_during).
 *   crash changed kill -9 of the member being added, promoted or
 *                 removed, and removals of the leader and of bootstrap
 *                 voters while a member is killed (RAFTKV_LONG=1: more
 *                 rounds); every change must be accepted;
 *   new leader    a member added after the bootstrap leads: a new member
 *                 joins, and a member down through the add, the promote
 *                 and the transfer comes back; both catch up;
 *   readd key     a member removed and added again with a new key: only
 *                 its old key is recorded as removed, by a member that
 *                 learns both changes at once and by one restarted
 *                 with both in its log;
 *   readd compacted the same with every change entry before the removal
 *                 compacted away: the member that learns both at once
 *                 records the old key all the same (the REMOVE entry
 *                 carries it), no member keeps the re-added voter as
 *                 removed, and that member, leading, refuses the old key;
 *   uncommitted   a leader appends the removal of a member that never
 *                 commits (the others stopped), restarts with it in its
 *                 log, and the others truncate it: it records nothing
 *                 removed, and leading, still takes that member's key
 *                 as a member's.
 * RAFTKV_TEST_FILTER picks tests; RAFTKV_SEED replays a seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/clerk.h"
#include "kv/cmd.h"
#include "kv/kv.h"
#include "raft/client/cproto.h"
#include "raft/err.h"
#include "raft/le.h"
#include "raft/memberdir_gone.h"
#include "raft/storage/memberdir_file.h"
#include "tests/integration/kvtest.h"

#define CHANGE_MS 30000

static struct kvt *start_with(void **state, const char *name, int n, int spares,
    int64_t max_raft_state)
{
	struct kvt_options o;

	kvt_options_defaults(&o);
	o.name = name;
	o.nservers = n;
	o.spares = spares;
	o.max_raft_state = max_raft_state;
	return kvt_new(state, &o);
}

static struct kvt *start(void **state, const char *name, int n, int spares)
{
	/* Snapshots: learners catch up from one. */
	return start_with(state, name, n, spares, 4000);
}

/* The configuration member @i reports: voters and learners as masks. */
static int conf_of(struct harness *h, int i, uint32_t *voters,
    uint32_t *learners)
{
	struct cproto_member_req r = { .action = CPROTO_MEMBER_LIST };
	struct cproto_member_list l;
	struct client_reply rep = { 0 };
	uint8_t *buf;
	uint32_t len;
	int rv;

	assert_int_equal(cproto_encode_member_req(&r, &buf, &len), 0);
	rv = harness_call(h, i, CPROTO_MEMBER, buf, len, 3000, &rep);
	free(buf);
	if (rv == 0)
		rv = rep.status;
	if (rv == 0)
		rv = cproto_decode_member_list(rep.data, rep.len, &l);
	free(rep.data);
	if (rv != 0)
		return rv;
	*voters = *learners = 0;
	for (uint32_t k = 0; k < l.conf.n_voters; k++)
		*voters |= 1u << (l.conf.voters[k] - 1);
	for (uint32_t k = 0; k < l.conf.n_learners; k++)
		*learners |= 1u << (l.conf.learners[k] - 1);
	/* Every member of the configuration has an address. */
	for (uint32_t k = 0; k < l.conf.n_voters; k++)
		assert_non_null(memberdir_find(&l.dir, l.conf.voters[k]));
	return 0;
}

/* Wait until every running member reports voters @want and no learner. */
static void wait_conf(struct harness *h, uint32_t want)
{
	uint64_t deadline = harness_now_ms() + CHANGE_MS;

	for (;;) {
		bool all = true;

		for (int i = 0; i < harness_n(h); i++) {
			uint32_t v = 0, l = 0;

			if (!harness_running(h, i))
				continue;
			if (conf_of(h, i, &v, &l) != 0 || v != want || l != 0)
				all = false;
		}
		if (all)
			return;
		if (harness_now_ms() > deadline)
			fail_msg("configuration never became voters 0x%x",
			    want);
		harness_sleep_ms(100);
	}
}

static void must_change(struct harness *h, int action, int i)
{
	int rv = harness_member_change(h, action, i, CHANGE_MS);

	if (rv != 0)
		fail_msg("membership change %d of member %d: %s", action, i + 1,
		    rk_strerror(rv));
}

static void add_and_promote(struct harness *h, int i)
{
	must_change(h, CPROTO_MEMBER_ADD, i);
	assert_int_equal(harness_join(h, i), 0);
	must_change(h, CPROTO_MEMBER_PROMOTE, i);
}

static struct kvt_clients *writers(struct kvt *t, int n)
{
	static bool random_keys = true;

	return kvt_clients_start(t, n, kvt_one_client_put, &random_keys);
}

static void test_member_grow_while_writing(void **state)
{
	struct kvt *t = start(state, "member-grow", 3, 2);
	struct harness *h = kvt_harness(t);
	struct kvt_clients *cs = writers(t, 3);
	struct kvt_res r;

	harness_sleep_ms(1000);
	add_and_promote(h, 3);
	harness_sleep_ms(500);
	add_and_promote(h, 4);
	harness_sleep_ms(1000);
	r = kvt_clients_stop(cs, NULL);
	assert_true(r.nok > 0);
	wait_conf(h, 0x1f);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	/* The new members took a snapshot to catch up, and serve. */
	assert_true(kvt_snapshot_bytes(t, 3) > 0);
	kvt_check_linearizable(t, "grow 3 -> 5");
	kvt_finish(t);
}

/* Make member @i (index) the leader: ask the leader to transfer. */
static void lead_by(struct kvt *t, int i)
{
	struct harness *h = kvt_harness(t);
	uint8_t to[8];
	uint64_t deadline = harness_now_ms() + CHANGE_MS;
	int leader;

	le_put64(to, harness_id(h, i));
	while ((leader = kvt_must_leader(t)) != i) {
		struct client_reply rep = { 0 };

		assert_true(harness_now_ms() < deadline);
		(void)harness_call(h, leader, CPROTO_TRANSFER, to, 8, 3000,
		    &rep);
		free(rep.data);
		harness_sleep_ms(200);
	}
}

/*
 * The leader is a member added after the bootstrap (4): a new member (5)
 * joins and is promoted, and a bootstrap member (3) that was down through
 * the add, promote and transfer comes back.  Neither knows member 4 from
 * its own configuration; both must admit it and catch up.
 */
static void test_member_post_bootstrap_leader(void **state)
{
	struct kvt *t = start(state, "member-newleader", 3, 2);
	struct harness *h = kvt_harness(t);
	int down = (kvt_must_leader(t) + 1) % 3;
	struct kvt_clients *cs;

	assert_int_equal(harness_kill(h, down, SIGKILL), 0);
	add_and_promote(h, 3);
	lead_by(t, 3);
	cs = writers(t, 2);
	add_and_promote(h, 4);
	harness_sleep_ms(500);
	assert_int_equal(harness_restart(h, down), 0);
	wait_conf(h, 0x1f);
	kvt_clients_stop(cs, NULL);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	kvt_check_linearizable(t, "join and restart under a new leader");
	kvt_finish(t);
}

/*
 * A client whose cluster file lists only the bootstrap members, one of
 * them removed, while the leader is member 4 (added since): the members
 * name a leader it does not know, so it asks for the current members and
 * writes through member 4.
 */
static void clerk_finds_new_leader(struct kvt *t)
{
	struct harness *h = kvt_harness(t);
	struct cluster cl = *harness_cluster(h);
	struct clerk_options o;
	struct clerk *ck;

	lead_by(t, 3);
	cl.n = 3; /* the cluster file's */
	clerk_options_defaults(&o);
	o.deadline_ms = 20000;
	assert_int_equal(clerk_new(&cl, &o, &ck), 0);
	assert_int_equal(clerk_put(ck, "via-new-leader", 14, "v", 1, 0,
	                     KV_F_ANYVER, NULL, NULL),
	    KV_OK);
	clerk_free(ck);
}

static void test_member_remove_leader(void **state)
{
	struct kvt *t = start(state, "member-rmleader", 3, 1);
	struct harness *h = kvt_harness(t);
	struct kvt_clients *cs = writers(t, 3);
	int leader;

	add_and_promote(h, 3);
	harness_sleep_ms(500);
	leader = kvt_must_leader(t);
	must_change(h, CPROTO_MEMBER_REMOVE, leader);
	/* It stops by itself once its removal is committed. */
	assert_int_equal(harness_wait_removed_exit(h, leader, 15000), 0);
	harness_sleep_ms(1000);
	kvt_clients_stop(cs, NULL);
	assert_true(kvt_must_leader(t) != leader);
	wait_conf(h, 0xf & ~(1u << leader));
	kvt_check_linearizable(t, "remove the leader");
	if (leader != 3)
		clerk_finds_new_leader(t);
	kvt_finish(t);
}

static void test_member_replace_dead(void **state)
{
	struct kvt *t = start(state, "member-replace", 3, 1);
	struct harness *h = kvt_harness(t);
	struct kvt_clients *cs = writers(t, 2);
	struct cproto_status st, st2, lst, lst2;
	int dead = (kvt_must_leader(t) + 1) % 3, leader;
	uint64_t removed_at;

	harness_sleep_ms(500);
	assert_int_equal(harness_kill(h, dead, SIGKILL), 0);
	must_change(h, CPROTO_MEMBER_REMOVE, dead);
	removed_at = harness_now_ms();
	add_and_promote(h, 3);
	harness_sleep_ms(500);
	kvt_clients_stop(cs, NULL);
	wait_conf(h, 0xf & ~(1u << dead));
	/* Its key is out for good: adding it again with it is refused. */
	assert_int_equal(harness_member_change(h, CPROTO_MEMBER_ADD, dead,
	                     CHANGE_MS),
	    -EKEYREJECTED);
	/* The dead member comes back on its old data once the others'
	 * linger for it is over (LINGER_MS, 10 s after the commit; 12 s
	 * here): nobody admits it, so it learns nothing (its commit does
	 * not move while the others' does) and disturbs no one (their
	 * term does not move). */
	while (harness_now_ms() < removed_at + 12000)
		harness_sleep_ms(200);
	assert_int_equal(harness_restart(h, dead), 0);
	harness_sleep_ms(1000);
	leader = kvt_must_leader(t);
	assert_int_equal(harness_status(h, dead, &st), 0);
	assert_int_equal(harness_status(h, leader, &lst), 0);
	cs = writers(t, 2);
	harness_sleep_ms(2000);
	kvt_clients_stop(cs, NULL);
	assert_int_equal(harness_status(h, dead, &st2), 0);
	assert_int_equal(harness_status(h, leader, &lst2), 0);
	assert_true(st2.role != RAFT_LEADER);
	assert_int_equal(st2.commit, st.commit);
	assert_true(lst2.commit > lst.commit);
	assert_int_equal(lst2.term, lst.term);
	assert_int_equal(harness_kill(h, dead, SIGTERM), 0);
	/* Everyone else restarts from its persisted member directory. */
	for (int i = 0; i < 4; i++)
		if (i != dead)
			assert_int_equal(harness_kill(h, i, SIGKILL), 0);
	for (int i = 0; i < 4; i++)
		if (i != dead)
			assert_int_equal(harness_restart(h, i), 0);
	kvt_must_leader(t);
	cs = writers(t, 2);
	harness_sleep_ms(1000);
	kvt_clients_stop(cs, NULL);
	wait_conf(h, 0xf & ~(1u << dead));
	kvt_check_linearizable(t, "replace a dead member");
	kvt_finish(t);
}

/* Wait until every running member has a snapshot past @index. */
static void wait_compacted(struct kvt *t, uint64_t index)
{
	struct harness *h = kvt_harness(t);
	uint64_t deadline = harness_now_ms() + CHANGE_MS;

	for (;;) {
		bool all = true;

		for (int i = 0; i < harness_n(h); i++) {
			struct cproto_status st;

			if (!harness_running(h, i))
				continue;
			if (harness_status(h, i, &st) != 0 ||
			    st.snap_index <= index)
				all = false;
		}
		if (all)
			return;
		if (harness_now_ms() > deadline)
			fail_msg("no snapshot past index %" PRIu64, index);
		harness_sleep_ms(100);
	}
}

/*
 * The log entry that removed a member is compacted into a snapshot on
 * every survivor, and all of them restart: the removed member's key is
 * still refused on re-add (the removed members are kept in the "members"
 * file and in snapshots, not only learned from the log).
 */
static void test_member_removed_after_compaction(void **state)
{
	struct kvt *t = start(state, "member-rmcompact", 3, 0);
	struct harness *h = kvt_harness(t);
	int gone = (kvt_must_leader(t) + 1) % 3, leader;
	struct kvt_clients *cs;
	struct cproto_status st;

	assert_int_equal(harness_kill(h, gone, SIGKILL), 0);
	must_change(h, CPROTO_MEMBER_REMOVE, gone);
	leader = kvt_must_leader(t);
	assert_int_equal(harness_status(h, leader, &st), 0);
	cs = writers(t, 2);
	wait_compacted(t, st.last_index);
	kvt_clients_stop(cs, NULL);
	for (int i = 0; i < 3; i++)
		if (i != gone)
			assert_int_equal(harness_kill(h, i, SIGKILL), 0);
	for (int i = 0; i < 3; i++)
		if (i != gone)
			assert_int_equal(harness_restart(h, i), 0);
	kvt_must_leader(t);
	assert_int_equal(harness_member_change(h, CPROTO_MEMBER_ADD, gone,
	                     CHANGE_MS),
	    -EKEYREJECTED);
	wait_conf(h, 0x7 & ~(1u << gone));
	kvt_check_linearizable(t, "removed, compacted, restarted");
	kvt_finish(t);
}

/* True if member @i's log has a line with @a and @b. */
static bool log_has(struct harness *h, int i, const char *a, const char *b)
{
	FILE *f = fopen(harness_log_path(h, i), "r");
	char line[2048];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, a) != NULL && strstr(line, b) != NULL;
	fclose(f);
	return found;
}

/*
 * A member down while another is removed and the removal compacted away
 * learns of it from the snapshot it catches up with (the removed members
 * travel in member snapshots): its transport refuses the removed
 * member's key when that one comes back, and leading, it refuses the
 * key on re-add.
 */
static void test_member_removed_through_snapshot(void **state)
{
	struct kvt *t = start(state, "member-rmsnap", 3, 1);
	struct harness *h = kvt_harness(t);
	struct kvt_clients *cs;
	struct cproto_status st;
	int away, gone, leader;

	add_and_promote(h, 3);
	leader = kvt_must_leader(t);
	away = (leader + 1) % 3;
	gone = (leader + 2) % 3;
	assert_int_equal(harness_kill(h, away, SIGKILL), 0);
	must_change(h, CPROTO_MEMBER_REMOVE, gone);
	assert_int_equal(harness_wait_removed_exit(h, gone, 15000), 0);
	assert_int_equal(harness_status(h, kvt_must_leader(t), &st), 0);
	cs = writers(t, 2);
	wait_compacted(t, st.last_index);
	kvt_clients_stop(cs, NULL);
	assert_int_equal(harness_restart(h, away), 0);
	assert_int_equal(harness_wait_converged(h, 15000), 0);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	/* The removed member comes back on its old data: refused at the
	 * handshake by the member that only learned from a snapshot. */
	assert_int_equal(harness_restart(h, gone), 0);
	for (int k = 0; k < 100 &&
	     !log_has(h, away, "refused",
	         harness_cluster(h)->members[gone].key);
	     k++)
		harness_sleep_ms(50);
	assert_true(
	    log_has(h, away, "refused", harness_cluster(h)->members[gone].key));
	assert_int_equal(harness_kill(h, gone, SIGTERM), 0);
	lead_by(t, away);
	assert_int_equal(harness_member_change(h, CPROTO_MEMBER_ADD, gone,
	                     CHANGE_MS),
	    -EKEYREJECTED);
	kvt_check_linearizable(t, "removed while away, learned by snapshot");
	kvt_finish(t);
}

/*
 * A member joining after a bootstrap member was removed and the removal
 * compacted away: it must not connect to (nor admit) the removed member
 * before the snapshot tells it of the removal, though the cluster file
 * and the leader's directory still name it (member_join_directory keeps
 * only the newest configuration's members).
 */
static void test_member_join_skips_removed(void **state)
{
	struct kvt *t = start(state, "member-joinrm", 3, 1);
	struct harness *h = kvt_harness(t);
	struct kvt_clients *cs;
	struct cproto_status st;
	char gone_at[64], self[64];
	int gone = (kvt_must_leader(t) + 1) % 3;

	must_change(h, CPROTO_MEMBER_REMOVE, gone);
	assert_int_equal(harness_wait_removed_exit(h, gone, 15000), 0);
	assert_int_equal(harness_status(h, kvt_must_leader(t), &st), 0);
	cs = writers(t, 2);
	wait_compacted(t, st.last_index);
	kvt_clients_stop(cs, NULL);
	must_change(h, CPROTO_MEMBER_ADD, 3);
	assert_int_equal(harness_join(h, 3), 0);
	assert_int_equal(harness_wait_converged(h, 15000), 0);
	snprintf(gone_at, sizeof(gone_at), "transport: member %llu at ",
	    (unsigned long long)harness_id(h, gone));
	snprintf(self, sizeof(self), "transport: member %llu listening",
	    (unsigned long long)harness_id(h, 3));
	/* Its transport starts with the two members only ... */
	assert_true(log_has(h, 3, self, ", 2 peers"));
	/* ... and never had the removed one as a peer. */
	assert_false(log_has(h, 3, gone_at, "removed"));
	kvt_finish(t);
}

/* A member down while id X is removed and added again (a new key) and X
 * then leads: it must catch up when it comes back, though its log and
 * its "members" file say X was removed (member_refresh_directory tells it
 * the newest configuration at start). */
static void test_member_stuck_after_readd(void **state)
{
	struct kvt *t = start(state, "member-stuck", 3, 1);
	struct harness *h = kvt_harness(t);
	struct cproto_status ms, ls;
	int leader, m, rv;

	add_and_promote(h, 3);
	leader = kvt_must_leader(t);
	if (leader == 3)
		lead_by(t, 0);
	leader = kvt_must_leader(t);
	m = (leader + 1) % 3;
	must_change(h, CPROTO_MEMBER_REMOVE, 3);
	assert_int_equal(harness_wait_removed_exit(h, 3, 15000), 0);
	harness_sleep_ms(1000);
	assert_int_equal(harness_kill(h, m, SIGKILL), 0);
	assert_int_equal(harness_wipe_data(h, 3), 0);
	assert_int_equal(harness_rekey(h, 3), 0);
	must_change(h, CPROTO_MEMBER_ADD, 3);
	assert_int_equal(harness_join(h, 3), 0);
	must_change(h, CPROTO_MEMBER_PROMOTE, 3);
	lead_by(t, 3);
	print_message("[stuck] member %d down through the re-add; 4 leads\n",
	    m + 1);
	assert_int_equal(harness_restart(h, m), 0);
	rv = harness_wait_converged(h, 15000);
	assert_int_equal(harness_status(h, m, &ms), 0);
	assert_int_equal(harness_status(h, 3, &ls), 0);
	print_message("[stuck] converged: %d; member %d commit %llu term %llu "
	              "leader %llu; leader 4 commit %llu term %llu\n",
	    rv, m + 1, (unsigned long long)ms.commit,
	    (unsigned long long)ms.term, (unsigned long long)ms.leader,
	    (unsigned long long)ls.commit, (unsigned long long)ls.term);
	assert_int_equal(rv, 0);
	kvt_finish(t);
}

/* The removed keys in member @i's "members" file: has @key? */
static bool file_key_gone(struct harness *h, int i, const char *key)
{
	struct memberdir *d = calloc(1, sizeof(*d));
	struct memberdir_gone *g = calloc(1, sizeof(*g));
	char err[512];
	bool gone;

	assert_non_null(d);
	assert_non_null(g);
	if (memberdir_load(harness_data_dir(h, i), harness_cluster(h)->id, d, g,
	        err, sizeof(err)) != 0)
		fail_msg("members file of member %d: %s", i + 1, err);
	gone = memberdir_gone_has_key(g, key);
	free(g);
	free(d);
	return gone;
}

/* Wait until member @i's "members" file has @key removed. */
static void wait_file_key_gone(struct harness *h, int i, const char *key)
{
	uint64_t deadline = harness_now_ms() + CHANGE_MS;

	while (!file_key_gone(h, i, key)) {
		if (harness_now_ms() > deadline)
			fail_msg("member %d never recorded key %s as removed",
			    i + 1, key);
		harness_sleep_ms(100);
	}
}

/*
 * Member X is removed and added again with the same id and a new key:
 * only the old key is a removed one.  Member @away learns the removal
 * and the re-add in one batch (isolated through both: its commit of the
 * removal comes with the append of the re-add), member @restarted from
 * its log at start (its "members" file already has the new key); both
 * must record the old key as removed and not the new one, and then
 * follow X as leader.
 */
static void test_member_readd_new_key(void **state)
{
	/* No snapshots: the restarted member reads both changes from its
	 * log. */
	struct kvt *t = start_with(state, "member-readdkey", 3, 1, -1);
	struct harness *h = kvt_harness(t);
	char old_key[MEMBERDIR_KEY_MAX], new_key[MEMBERDIR_KEY_MAX];
	int leader, away, restarted, bad = 0;

	add_and_promote(h, 3);
	if (kvt_must_leader(t) == 3)
		lead_by(t, 0);
	leader = kvt_must_leader(t);
	away = (leader + 1) % 3;
	restarted = (leader + 2) % 3;
	snprintf(old_key, sizeof(old_key), "%s",
	    harness_cluster(h)->members[3].key);
	print_message("[readd key] leader %d, isolated %d, restarted %d\n",
	    leader + 1, away + 1, restarted + 1);
	assert_int_equal(harness_isolate(h, away, true), 0);
	must_change(h, CPROTO_MEMBER_REMOVE, 3);
	assert_int_equal(harness_wait_removed_exit(h, 3, 15000), 0);
	assert_int_equal(harness_wipe_data(h, 3), 0);
	assert_int_equal(harness_rekey(h, 3), 0);
	snprintf(new_key, sizeof(new_key), "%s",
	    harness_cluster(h)->members[3].key);
	must_change(h, CPROTO_MEMBER_ADD, 3);
	assert_int_equal(harness_join(h, 3), 0);
	must_change(h, CPROTO_MEMBER_PROMOTE, 3);
	assert_int_equal(harness_isolate(h, away, false), 0);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	assert_int_equal(harness_kill(h, restarted, SIGKILL), 0);
	assert_int_equal(harness_restart(h, restarted), 0);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	for (int i = 0; i < 3; i++) {
		wait_file_key_gone(h, i, old_key);
		if (file_key_gone(h, i, new_key)) {
			print_message("member %d%s recorded the re-added "
			              "member's new key as removed\n",
			    i + 1,
			    i == away            ? " (isolated)"
			        : i == restarted ? " (restarted)"
			                         : "");
			bad++;
		}
	}
	assert_int_equal(bad, 0);
	/* And X leads them all. */
	lead_by(t, 3);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	kvt_finish(t);
}

/* Member @i's "members" file has id @id among the removed? */
static bool file_id_gone(struct harness *h, int i, raft_id id)
{
	struct memberdir *d = calloc(1, sizeof(*d));
	struct memberdir_gone *g = calloc(1, sizeof(*g));
	char err[512];
	bool gone;

	assert_non_null(d);
	assert_non_null(g);
	if (memberdir_load(harness_data_dir(h, i), harness_cluster(h)->id, d, g,
	        err, sizeof(err)) != 0)
		fail_msg("members file of member %d: %s", i + 1, err);
	gone = memberdir_gone_has_id(g, id);
	free(g);
	free(d);
	return gone;
}

/* Ask member @to to add member @i with key @key: its answer.  The key
 * is judged before the configuration (a member already there is
 * -EEXIST, a removed key -EKEYREJECTED). */
static int add_with_key(struct harness *h, int to, int i, const char *key)
{
	struct cproto_member_req r = { .action = CPROTO_MEMBER_ADD,
		.id = harness_id(h, i) };
	struct client_reply rep = { 0 };
	uint8_t *buf;
	uint32_t len;
	int rv;

	r.entry.id = r.id;
	snprintf(r.entry.peer, sizeof(r.entry.peer), "%s",
	    harness_cluster(h)->members[i].peer);
	snprintf(r.entry.client, sizeof(r.entry.client), "%s",
	    harness_cluster(h)->members[i].client);
	snprintf(r.entry.key, sizeof(r.entry.key), "%s", key);
	assert_int_equal(cproto_encode_member_req(&r, &buf, &len), 0);
	rv = harness_call(h, to, CPROTO_MEMBER, buf, len, 5000, &rep);
	free(buf);
	if (rv == 0)
		rv = rep.status;
	free(rep.data);
	return rv;
}

/*
 * As test_member_readd_new_key, with every change entry before the
 * removal of X compacted away first: member @away (isolated through the
 * removal and the re-add) cannot look back in its log for X's old key,
 * and its directory already has the new one when the removal commits.
 * The REMOVE entry carries the key: every member records the old key
 * and not the new one; none keeps X (a voter again) as removed, the
 * restarted member neither (it applies the committed entries again);
 * and @away, leading, refuses the old key.  The review of member8 saw
 * @away record no key and accept the old one (3 runs of 4).
 */
static void test_member_readd_compacted(void **state)
{
	struct kvt *t = start_with(state, "member-readdcomp", 3, 1, 4000);
	struct harness *h = kvt_harness(t);
	char old_key[MEMBERDIR_KEY_MAX], new_key[MEMBERDIR_KEY_MAX];
	struct kvt_clients *cs;
	struct cproto_status st;
	int leader, away, restarted, rv;

	add_and_promote(h, 3);
	if (kvt_must_leader(t) == 3)
		lead_by(t, 0);
	leader = kvt_must_leader(t);
	away = (leader + 1) % 3;
	restarted = (leader + 2) % 3;
	assert_int_equal(harness_status(h, leader, &st), 0);
	cs = writers(t, 2);
	wait_compacted(t, st.last_index);
	kvt_clients_stop(cs, NULL);
	snprintf(old_key, sizeof(old_key), "%s",
	    harness_cluster(h)->members[3].key);
	print_message("[readd compacted] leader %d, isolated %d, restarted "
	              "%d\n",
	    leader + 1, away + 1, restarted + 1);
	assert_int_equal(harness_isolate(h, away, true), 0);
	must_change(h, CPROTO_MEMBER_REMOVE, 3);
	assert_int_equal(harness_wait_removed_exit(h, 3, 15000), 0);
	assert_int_equal(harness_wipe_data(h, 3), 0);
	assert_int_equal(harness_rekey(h, 3), 0);
	snprintf(new_key, sizeof(new_key), "%s",
	    harness_cluster(h)->members[3].key);
	must_change(h, CPROTO_MEMBER_ADD, 3);
	assert_int_equal(harness_join(h, 3), 0);
	must_change(h, CPROTO_MEMBER_PROMOTE, 3);
	assert_int_equal(harness_isolate(h, away, false), 0);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	assert_int_equal(harness_kill(h, restarted, SIGKILL), 0);
	assert_int_equal(harness_restart(h, restarted), 0);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	for (int i = 0; i < 3; i++) {
		wait_file_key_gone(h, i, old_key);
		assert_false(file_key_gone(h, i, new_key));
		if (file_id_gone(h, i, harness_id(h, 3)))
			fail_msg("member %d keeps voter 4 as removed", i + 1);
	}
	lead_by(t, away);
	rv = add_with_key(h, away, 3, old_key);
	print_message("[readd compacted] old key, member %d leading: %s\n",
	    away + 1, rk_strerror(rv));
	assert_int_equal(rv, -EKEYREJECTED);
	/* The new key is X's: only "already a member". */
	assert_int_equal(add_with_key(h, away, 3, new_key), -EEXIST);
	kvt_finish(t);
}

/*
 * A REMOVE in a member's log at start may be uncommitted, and truncated
 * later: it must not be recorded (node_member_boot used to record every
 * change entry of the log as done, the key for good).  Leader L, just
 * cut off from the others (it heard from them in this round, so it
 * proposes), appends the removal of B and is killed; the others elect
 * one of them, and L, restarted with the entry in its log, has it
 * truncated.  L's removed members stay empty, and
 * leading, it answers an add of B with B's key "already a member", not
 * "key rejected".
 */
static void test_member_uncommitted_remove(void **state)
{
	struct kvt *t = start_with(state, "member-uncommitted", 3, 0, -1);
	struct harness *h = kvt_harness(t);
	struct cproto_member_req r = { .action = CPROTO_MEMBER_REMOVE };
	struct client_reply rep = { 0 };
	char proposed[64], key[MEMBERDIR_KEY_MAX];
	int l = kvt_must_leader(t), b = (l + 2) % 3, rv;
	uint8_t *buf;
	uint32_t len;

	snprintf(key, sizeof(key), "%s", harness_cluster(h)->members[b].key);
	r.id = harness_id(h, b);
	assert_int_equal(cproto_encode_member_req(&r, &buf, &len), 0);
	assert_int_equal(harness_isolate(h, l, true), 0);
	rv = harness_call(h, l, CPROTO_MEMBER, buf, len, 1000, &rep);
	free(buf);
	print_message("[uncommitted] remove of %d at leader %d: %s\n", b + 1,
	    l + 1, rk_strerror(rv == 0 ? rep.status : rv));
	free(rep.data);
	snprintf(proposed, sizeof(proposed), "remove member %llu",
	    (unsigned long long)harness_id(h, b));
	assert_true(log_has(h, l, "membership change proposed", proposed));
	assert_int_equal(harness_kill(h, l, SIGKILL), 0);
	print_message("[uncommitted] member %d leads\n",
	    kvt_must_leader(t) + 1);
	/* Links back while L is down (its own side: nothing to tell). */
	for (int i = 0; i < 3; i++)
		if (i != l) {
			assert_int_equal(harness_block(h, i, l, false), 0);
			(void)harness_block(h, l, i, false);
		}
	assert_int_equal(harness_restart(h, l), 0);
	wait_conf(h, 0x7);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	lead_by(t, l);
	assert_int_equal(add_with_key(h, l, b, key), -EEXIST);
	assert_false(file_key_gone(h, l, key));
	assert_false(file_id_gone(h, l, harness_id(h, b)));
	kvt_finish(t);
}

struct change_arg {
	struct harness *h;
	int action, i, rv;
};

static void *change_thread(void *p)
{
	struct change_arg *a = p;

	a->rv = harness_member_change(a->h, a->action, a->i, CHANGE_MS);
	return NULL;
}

/* The change, once more while RAFT_ENOQUORUM says a voter it needs is
 * not heard from (yet): the victim of a kill may be back but not
 * heard. */
static int change_when_quorum(struct harness *h, int action, int i)
{
	uint64_t deadline = harness_now_ms() + CHANGE_MS;
	int rv;

	while ((rv = harness_member_change(h, action, i, CHANGE_MS)) ==
	        RAFT_ENOQUORUM &&
	    harness_now_ms() < deadline)
		harness_sleep_ms(200);
	return rv;
}

/* One change with a kill -9 of member @victim, or of a random other
 * member (the leader or not) when @victim < 0, at a random point of it:
 * the change runs on a thread, the main thread (which owns process
 * control) kills after 0..149 ms and restarts.  A removal refused
 * because the victim was down when it was proposed (RAFT_ENOQUORUM: the
 * operator's guard) is made again once it is back. */
static void crash_during(struct kvt *t, int action, int i, int victim,
    uint32_t *voters)
{
	struct harness *h = kvt_harness(t);
	struct change_arg a = { .h = h, .action = action, .i = i };
	unsigned delay = (unsigned)kvt_rand(t, 150);
	pthread_t tid;

	if (victim < 0) {
		do
			victim = (int)kvt_rand(t, (uint64_t)harness_n(h));
		while (!harness_running(h, victim) || victim == i);
	}
	if (action == CPROTO_MEMBER_ADD)
		assert_int_equal(harness_join(h, i), 0);
	assert_true(harness_running(h, victim));
	if (action == CPROTO_MEMBER_REMOVE)
		/* It may learn of its removal (and exit 0) at once. */
		harness_expect_removed_exit(h, i);
	assert_int_equal(pthread_create(&tid, NULL, change_thread, &a), 0);
	harness_sleep_ms(delay);
	assert_int_equal(harness_kill(h, victim, SIGKILL), 0);
	harness_sleep_ms((unsigned)kvt_rand(t, 300));
	assert_int_equal(harness_restart(h, victim), 0);
	if (action == CPROTO_MEMBER_REMOVE && victim == i)
		harness_expect_removed_exit(h, i); /* restarted: again */
	pthread_join(tid, NULL);
	if (a.rv == RAFT_ENOQUORUM && action == CPROTO_MEMBER_REMOVE)
		a.rv = change_when_quorum(h, action, i);
	if (a.rv != 0)
		fail_msg("change %d of member %d under a crash of %d: %s",
		    action, i + 1, victim + 1, rk_strerror(a.rv));
	if (action == CPROTO_MEMBER_REMOVE) {
		struct cproto_status st;

		*voters &= ~(1u << i);
		if (harness_wait_removed_exit(h, i, 15000) == 0)
			return;
		/* The known limit (raftkv(7), MEMBERSHIP): a removed member
		 * learns of its removal from a leader that has the change
		 * in memory; when the one that committed it crashed and the
		 * others compacted it into a snapshot, nobody tells it.  It
		 * must then be harmless: never a leader, refused by all. */
		assert_int_equal(harness_status(h, i, &st), 0);
		assert_true(st.role != RAFT_LEADER);
		print_message("[%s] member %d did not learn of its removal "
		              "(member %d, killed, had committed it): "
		              "stopped by the test\n",
		    kvt_name(t), i + 1, victim + 1);
		assert_int_equal(harness_kill(h, i, SIGTERM), 0);
	} else if (action == CPROTO_MEMBER_PROMOTE) {
		*voters |= 1u << i;
	}
}

static void test_member_kill_during_changes(void **state)
{
	struct kvt *t = start(state, "member-crash", 3, 2);
	struct harness *h = kvt_harness(t);
	int rounds = KVT_SCALE(2, 6);
	uint32_t voters = 0x7;
	struct kvt_clients *cs = writers(t, 2);

	for (int r = 0; r < rounds; r++) {
		int spare = 3 + r % 2;

		crash_during(t, CPROTO_MEMBER_ADD, spare, -1, &voters);
		crash_during(t, CPROTO_MEMBER_PROMOTE, spare, -1, &voters);
		crash_during(t, CPROTO_MEMBER_REMOVE, spare, -1, &voters);
		/* A removed member starts afresh next time. */
		harness_wipe_data(h, spare);
	}
	kvt_clients_stop(cs, NULL);
	wait_conf(h, voters);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	kvt_check_linearizable(t, "kill -9 during changes");
	kvt_finish(t);
}

/* The member to remove in round @r: the leader (even rounds) or a
 * bootstrap voter other than it (odd rounds), but never the last
 * bootstrap voter (a joining member finds the cluster through the
 * cluster file's members); else a voter added since, not the leader. */
static int removal_target(struct kvt *t, int r, uint32_t voters)
{
	int leader = kvt_must_leader(t);
	int nboot = __builtin_popcount(voters & 0x7);

	if (r % 2 == 0 && (leader >= 3 || nboot > 1))
		return leader;
	for (int i = 0; i < 3 && nboot > 1; i++)
		if (i != leader && (voters & (1u << i)))
			return i;
	for (int i = 3; i < 32; i++)
		if (i != leader && (voters & (1u << i)))
			return i;
	return leader;
}

/*
 * kill -9 of the member being changed, and removals of the leader and of
 * bootstrap voters under a crash: each round adds and promotes a spare,
 * then removes the leader (even rounds) or a bootstrap voter (odd
 * rounds), keeping one bootstrap voter (removal_target).  In the first
 * round the member killed is the one being changed (the new learner,
 * the learner being promoted, the leader being removed), in the second
 * another (random, the leader included); RAFTKV_LONG=1 adds rounds that
 * pick either.  Every change must be accepted.
 */
static void test_member_kill_the_changed(void **state)
{
	int rounds = KVT_SCALE(2, 4);
	/* Compaction not as eager as start()'s: a removed member killed
	 * and restarted learns of its removal from the leader's log (the
	 * known limit of crash_during otherwise costs 15 s of waiting). */
	struct kvt *t = start_with(state, "member-crash-changed", 3, rounds,
	    256 * 1024);
	struct harness *h = kvt_harness(t);
	uint32_t voters = 0x7;
	struct kvt_clients *cs = writers(t, 2);

	for (int r = 0; r < rounds; r++) {
		int spare = 3 + r, target;
		bool self = r == 0 || (r > 1 && kvt_rand(t, 2) == 0);

		crash_during(t, CPROTO_MEMBER_ADD, spare, self ? spare : -1,
		    &voters);
		crash_during(t, CPROTO_MEMBER_PROMOTE, spare, self ? spare : -1,
		    &voters);
		target = removal_target(t, r, voters);
		print_message("[%s] round %d: removing member %d%s (%s)\n",
		    kvt_name(t), r, target + 1,
		    target == kvt_must_leader(t) ? ", the leader" : "",
		    self ? "it is killed" : "another is killed");
		crash_during(t, CPROTO_MEMBER_REMOVE, target,
		    self ? target : -1, &voters);
	}
	kvt_clients_stop(cs, NULL);
	wait_conf(h, voters);
	assert_int_equal(harness_wait_converged(h, CHANGE_MS), 0);
	kvt_check_linearizable(t, "kill -9 of the changed member");
	kvt_finish(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_member_readd_new_key,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_readd_compacted,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_uncommitted_remove,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_stuck_after_readd,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_join_skips_removed,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_grow_while_writing,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_remove_leader,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_replace_dead,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_removed_after_compaction,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_removed_through_snapshot,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_kill_during_changes,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_kill_the_changed,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_member_post_bootstrap_leader,
		    kvt_teardown),
	};

	kvt_filter_tests();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
