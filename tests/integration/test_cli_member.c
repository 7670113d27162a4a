/*
 * test_cli_member.c - the operator's guards of `raftkv member` on real
 * raftkv-server members (issue 13, "Safety for the operator"):
 *
 *   - add while another change is pending: with every peer message
 *     delayed (so a change takes a few hundred ms to commit), a first
 *     `member add` is in flight when a second one arrives: the second
 *     is refused with a message naming the pending change and exit
 *     status 4; run again afterwards, it succeeds;
 *   - the 5 s limit: with every peer message delayed by 5 s (raised in
 *     steps, with a 1.5 s election timeout, so that no election
 *     happens), a change stays pending for 10 s; a second change is
 *     retried for 5 s and then refused (exit status 4, the pending
 *     message), not queued behind it; the first is accepted;
 *   - remove without a live quorum: with one of three voters killed, the
 *     removal of another live voter is refused (exit status 5, the
 *     quorum message) and changes nothing; the removal of the dead one
 *     is accepted;
 *   - a cluster without keys (--insecure): membership changes are
 *     refused (exit status 5, a message naming --insecure-membership),
 *     a listing works; with --insecure-membership a change is accepted;
 *   - the same with only member 1 started with --insecure-membership:
 *     the leader's setting decides, whichever member a request reaches
 *     (a follower sends it to the leader, flag or not): refused while
 *     member 2 leads, accepted while member 1 leads, and applied by
 *     every member;
 *   - the removed members are full: with 255 removed keys in every
 *     member's "members" file, a removal is accepted (the 256th) and
 *     the next one refused (exit status 5, the bound named), changing
 *     nothing: the sets never forget one;
 *   - a follower's removed ids are full (256 in its "members" file, the
 *     leader's sets empty): a removal is accepted, and that follower
 *     still records the removed member's key and forgets its address
 *     (it neither connects nor admits it: fail closed), and says so.
 *
 * The commands run as processes (fork + exec of /bin/sh, killed by pid
 * only) with the harness's cluster file and admin key; every temporary
 * file is in the harness's directory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "raft/client/cproto.h"
#include "raft/config.h"
#include "raft/le.h"
#include "raft/memberdir_gone.h"
#include "raft/storage/memberdir_file.h"
#include "raft/util/clock.h"
#include "tests/integration/harness.h"

#define DELAY_MS 150

/* Three raftkv-server members; @insecure: a cluster without keys, its
 * members started with --insecure (and --insecure-membership unless
 * @strict). */
static struct harness *start_with(void **state, const char *name, bool insecure,
    bool strict)
{
	struct harness_options o;
	static char member[4096];
	const char *bd = getenv("RAFTKV_BUILDDIR");
	struct harness *h;

	snprintf(member, sizeof(member), "%s/kv/raftkv-server", bd ? bd : ".");
	harness_options_defaults(&o);
	o.name = name;
	o.member_path = member;
	o.insecure = insecure;
	o.strict_membership = strict;
	h = harness_new(3, &o);
	assert_non_null(h);
	*state = h;
	return h;
}

static struct harness *start(void **state, const char *name)
{
	return start_with(state, name, false, false);
}

static int teardown(void **state)
{
	harness_free(*state);
	return 0;
}

static int run(struct harness *h, const char *script)
{
	return harness_wait_status(harness_sh(h, script));
}

/* True if $D/@name contains @text. */
static bool file_has(struct harness *h, const char *name, const char *text)
{
	char p[4096], buf[4096];
	size_t n;
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", harness_dir(h), name);
	f = fopen(p, "r");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

/* The configuration in force on member @i (0, or a negative code). */
static int conf_of(struct harness *h, int i, struct raft_conf *conf)
{
	struct cproto_member_req r = { .action = CPROTO_MEMBER_LIST };
	struct cproto_member_list *l = malloc(sizeof(*l));
	struct client_reply rep = { 0 };
	uint8_t *buf;
	uint32_t len;
	int rv;

	assert_non_null(l);
	assert_int_equal(cproto_encode_member_req(&r, &buf, &len), 0);
	rv = harness_call(h, i, CPROTO_MEMBER, buf, len, 3000, &rep);
	free(buf);
	if (rv == 0)
		rv = rep.status;
	if (rv == 0)
		rv = cproto_decode_member_list(rep.data, rep.len, l);
	if (rv == 0)
		*conf = l->conf;
	free(rep.data);
	free(l);
	return rv;
}

/* Wait until the leader's configuration in force has @id (appended,
 * committed or not). */
static void wait_appended(struct harness *h, raft_id id)
{
	uint64_t deadline = mono_ms() + 20000;

	for (;;) {
		struct raft_conf c;
		int l = harness_leader(h, 1000);

		if (l >= 0 && conf_of(h, l, &c) == 0 &&
		    config_member_index(&c, id) >= 0)
			return;
		if (mono_ms() > deadline)
			fail_msg("member %llu never appeared in the leader's "
			         "configuration",
			    (unsigned long long)id);
		usleep(1000);
	}
}

/* `raftkv member add` of learner @id (never started: endpoints nobody
 * listens on) with a new key; @opts go before the command. */
static pid_t add_learner(struct harness *h, unsigned id, const char *opts)
{
	char script[1024];

	snprintf(script, sizeof(script),
	    "raftkv member keygen \"$D/k%u\" >/dev/null && "
	    "exec raftkv %s member add %u tcp://127.0.0.1:%u "
	    "tcp://127.0.0.1:%u \"$D/k%u\" >\"$D/add%u.out\" 2>&1",
	    id, opts, id, 100 + id, 300 + id, id, id);
	return harness_sh(h, script);
}

static void test_cli_member_add_while_pending(void **state)
{
	struct harness *h = start(state, "cli-member-pending");
	char name[64];
	unsigned id = 10;
	bool refused = false;
	int st2 = -1;

	/* Every peer message takes DELAY_MS each way: a change is
	 * pending for about 2 * DELAY_MS after it is appended (client
	 * requests are not delayed).  Heartbeats still arrive every
	 * 50 ms, within the election timeout: no election. */
	assert_int_equal(harness_set_delay(h, DELAY_MS), 0);
	harness_sleep_ms(500);
	/* The second command runs once the first change is appended, with
	 * a deadline shorter than the pending time.  If the first
	 * committed before the second reached the leader, or the second
	 * could not reach the leader in time (a slow machine), try again
	 * with new ids. */
	for (int attempt = 0; attempt < 5 && !refused; attempt++, id += 2) {
		pid_t first = add_learner(h, id, "");

		wait_appended(h, id);
		st2 = harness_wait_status(
		    add_learner(h, id + 1, "--timeout 200"));
		assert_int_equal(harness_wait_status(first), 0);
		snprintf(name, sizeof(name), "add%u.out", id + 1);
		refused = st2 == 4 &&
		    file_has(h, name,
		        "refused: another membership change is not "
		        "committed yet");
		if (!refused)
			print_message("[cli-member-pending] attempt %d: the "
			              "second change was not refused as "
			              "pending (exit %d)\n",
			    attempt, st2);
		assert_true(st2 == 0 || st2 == 4);
	}
	assert_true(refused);
	id -= 2;
	/* Once the first is committed, the same command succeeds. */
	assert_int_equal(harness_wait_status(add_learner(h, id + 3, "")), 0);
	snprintf(name, sizeof(name), "add%u.out", id + 3);
	assert_true(file_has(h, name, "added as a learner"));
	harness_mark_passed(h);
}

static void test_cli_member_pending_limit(void **state)
{
	struct harness_options o;
	static char member[4096];
	const char *bd = getenv("RAFTKV_BUILDDIR");
	struct harness *h;
	uint64_t t0, took;
	pid_t first;
	int st2;

	snprintf(member, sizeof(member), "%s/kv/raftkv-server", bd ? bd : ".");
	harness_options_defaults(&o);
	o.name = "cli-member-pendlimit";
	o.member_path = member;
	/* 1.5 s: the election timeout is longer than the gap each step of
	 * the delay opens (0.5 s at a follower, 1 s for the leader's
	 * check-quorum), so the leader stays. */
	o.election_ticks = 150;
	h = harness_new(3, &o);
	assert_non_null(h);
	*state = h;
	assert_true(harness_leader(h, 20000) >= 0);
	for (unsigned d = 500; d <= 5000; d += 500) {
		assert_int_equal(harness_set_delay(h, d), 0);
		harness_sleep_ms(300);
	}
	/* A change takes 10 s to commit (5 s each way). */
	first = add_learner(h, 10, "");
	wait_appended(h, 10);
	t0 = mono_ms();
	st2 = harness_wait_status(add_learner(h, 11, ""));
	took = mono_ms() - t0;
	print_message("[cli-member-pendlimit] second change: exit %d after "
	              "%llu ms\n",
	    st2, (unsigned long long)took);
	/* Exit 4, not 0: it gave up before the first committed. */
	assert_int_equal(st2, 4);
	assert_true(file_has(h, "add11.out",
	    "refused: another membership change is not committed yet"));
	/* It retried for the 5 s window first (less 0.2 s of its last
	 * pause). */
	assert_true(took >= 4800);
	assert_int_equal(harness_wait_status(first), 0);
	assert_true(file_has(h, "add10.out", "added as a learner"));
	assert_int_equal(harness_set_delay(h, 0), 0);
	harness_mark_passed(h);
}

static void test_cli_member_remove_without_quorum(void **state)
{
	struct harness *h = start(state, "cli-member-quorum");
	char script[512];
	struct raft_conf c;
	int leader = harness_leader(h, 10000), dead, live;

	assert_true(leader >= 0);
	dead = (leader + 1) % 3;
	live = (leader + 2) % 3;
	assert_int_equal(harness_kill(h, dead, SIGKILL), 0);
	/* The leader notices within two election timeouts (check-quorum
	 * resets its "heard from" marks every election timeout). */
	harness_sleep_ms(2000);
	snprintf(script, sizeof(script),
	    "exec raftkv member remove %llu >\"$D/rm.out\" 2>&1",
	    (unsigned long long)harness_id(h, live));
	assert_int_equal(run(h, script), 5);
	assert_true(file_has(h, "rm.out",
	    "refused: the voters the leader hears from would not make a "
	    "quorum"));
	assert_int_equal(conf_of(h, leader, &c), 0);
	assert_int_equal(c.n_voters, 3);
	/* Removing the dead one leaves a live quorum: accepted. */
	snprintf(script, sizeof(script),
	    "exec raftkv member remove %llu >\"$D/rm2.out\" 2>&1",
	    (unsigned long long)harness_id(h, dead));
	assert_int_equal(run(h, script), 0);
	assert_true(file_has(h, "rm2.out", "removed"));
	assert_int_equal(conf_of(h, harness_leader(h, 10000), &c), 0);
	assert_int_equal(c.n_voters, 2);
	harness_mark_passed(h);
}

/* A cluster without keys cannot tell an admin: its members refuse
 * membership changes unless started with --insecure-membership. */
static void test_cli_member_insecure(void **state)
{
	struct harness *h = start_with(state, "cli-member-insecure", true,
	    true);
	const char *add = "exec raftkv member add 10 tcp://127.0.0.1:110 "
	                  "tcp://127.0.0.1:310 - >\"$D/add.out\" 2>&1";

	assert_int_equal(run(h, "exec raftkv member list >/dev/null 2>&1"), 0);
	assert_int_equal(run(h, add), 5);
	assert_true(file_has(h, "add.out",
	    "refused: the cluster has no keys, so its members cannot tell "
	    "an admin from anyone"));
	assert_int_equal(harness_member_change(h, CPROTO_MEMBER_REMOVE, 2,
	                     5000),
	    CPROTO_EDENIED);
	harness_mark_passed(h);
	harness_free(h);
	*state = NULL;
	/* Opened by the operator: accepted. */
	h = start_with(state, "cli-member-insecure-open", true, false);
	assert_int_equal(run(h, add), 0);
	assert_true(file_has(h, "add.out", "added as a learner"));
	harness_mark_passed(h);
}

/* An ADD of learner @id sent to member @i only: its status, and in
 * *@leader its leader hint. */
static int add_at(struct harness *h, int i, unsigned id, uint64_t *leader)
{
	struct cproto_member_req r = { .action = CPROTO_MEMBER_ADD, .id = id };
	struct client_reply rep = { 0 };
	uint8_t *buf;
	uint32_t len;
	int rv;

	r.entry.id = id;
	snprintf(r.entry.peer, sizeof(r.entry.peer), "tcp://127.0.0.1:%u",
	    100 + id);
	snprintf(r.entry.client, sizeof(r.entry.client), "tcp://127.0.0.1:%u",
	    300 + id);
	assert_int_equal(cproto_encode_member_req(&r, &buf, &len), 0);
	rv = harness_call(h, i, CPROTO_MEMBER, buf, len, 5000, &rep);
	free(buf);
	free(rep.data);
	*leader = rep.leader;
	return rv != 0 ? rv : rep.status;
}

/* Make member @i the leader (a transfer: anyone's without keys). */
static int lead_by(struct harness *h, int i)
{
	uint64_t deadline = mono_ms() + 20000;
	uint8_t to[8];
	int l;

	le_put64(to, harness_id(h, i));
	while ((l = harness_leader(h, 5000)) != i) {
		struct client_reply rep = { 0 };

		if (mono_ms() > deadline)
			fail_msg("member %d never led", i + 1);
		if (l >= 0)
			(void)harness_call(h, l, CPROTO_TRANSFER, to, 8, 3000,
			    &rep);
		free(rep.data);
		harness_sleep_ms(200);
	}
	return l;
}

/* An ADD sent to follower @i is sent on to member @l, the leader (once
 * @i knows it), never refused by @i itself. */
static void sends_on(struct harness *h, int i, int l)
{
	uint64_t deadline = mono_ms() + 10000, leader = 0;

	while (leader != harness_id(h, l)) {
		assert_int_equal(add_at(h, i, 10, &leader), RAFT_ENOTLEADER);
		if (mono_ms() > deadline)
			fail_msg("member %d never named member %d leader",
			    i + 1, l + 1);
		if (leader != harness_id(h, l))
			harness_sleep_ms(100);
	}
}

/* Only member 1 (index 0) was started with --insecure-membership. */
static void test_cli_member_insecure_leader_decides(void **state)
{
	struct harness_options o;
	static char member[4096];
	const char *bd = getenv("RAFTKV_BUILDDIR");
	const char *add = "exec raftkv member add 10 tcp://127.0.0.1:110 "
	                  "tcp://127.0.0.1:310 - >\"$D/add.out\" 2>&1";
	struct harness *h;
	struct raft_conf c;
	uint64_t leader;

	snprintf(member, sizeof(member), "%s/kv/raftkv-server", bd ? bd : ".");
	harness_options_defaults(&o);
	o.name = "cli-member-insecure-mixed";
	o.member_path = member;
	o.insecure = true;
	o.strict_membership = true;
	o.open_members = 1u << 0;
	h = harness_new(3, &o);
	assert_non_null(h);
	*state = h;
	/* Member 2 leads (without the flag): refused, even when the
	 * request reaches member 1 (with it) first: it sends it on. */
	lead_by(h, 1);
	sends_on(h, 0, 1);
	assert_int_equal(add_at(h, 1, 10, &leader), CPROTO_EDENIED);
	assert_int_equal(run(h, add), 5);
	assert_true(file_has(h, "add.out",
	    "unless the leader was started with --insecure-membership"));
	/* Member 1 leads: accepted, even when the request reaches member
	 * 3 (without the flag) first, and applied by every member. */
	lead_by(h, 0);
	sends_on(h, 2, 0);
	assert_int_equal(run(h, add), 0);
	assert_true(file_has(h, "add.out", "added as a learner"));
	for (int i = 0; i < 3; i++) {
		uint64_t deadline = mono_ms() + 20000;

		while (
		    conf_of(h, i, &c) != 0 || config_member_index(&c, 10) < 0) {
			if (mono_ms() > deadline)
				fail_msg("member %d never applied the add",
				    i + 1);
			harness_sleep_ms(100);
		}
	}
	harness_mark_passed(h);
}

/* Give member @i's "members" file @n made-up removed keys. */
static void fill_removed_keys(struct harness *h, int i, uint32_t n)
{
	struct memberdir *d = calloc(1, sizeof(*d));
	struct memberdir_gone *g = calloc(1, sizeof(*g));
	char err[512], key[MEMBERDIR_KEY_MAX];
	const char *dir = harness_data_dir(h, i);
	uint64_t cid = harness_cluster(h)->id;

	assert_non_null(d);
	assert_non_null(g);
	if (memberdir_load(dir, cid, d, g, err, sizeof(err)) != 0)
		fail_msg("members file of member %d: %s", i + 1, err);
	for (uint32_t k = 0; k < n; k++) {
		snprintf(key, sizeof(key), "%040u", k);
		assert_int_equal(memberdir_gone_add_key(g, key), 0);
	}
	if (memberdir_save(dir, cid, d, g, err, sizeof(err)) != 0)
		fail_msg("members file of member %d: %s", i + 1, err);
	free(g);
	free(d);
}

static void test_cli_member_removed_full(void **state)
{
	struct harness *h = start(state, "cli-member-gonefull");
	char script[512];
	struct raft_conf c;
	int leader;

	assert_true(harness_leader(h, 10000) >= 0);
	harness_kill_all(h, SIGKILL);
	for (int i = 0; i < 3; i++)
		fill_removed_keys(h, i, MEMBERDIR_GONE_MAX - 1);
	assert_int_equal(harness_restart_all(h), 0);
	leader = harness_leader(h, 10000);
	assert_true(leader >= 0);
	/* Room for one more key: accepted. */
	snprintf(script, sizeof(script),
	    "exec raftkv member remove %llu >\"$D/rm1.out\" 2>&1",
	    (unsigned long long)harness_id(h, (leader + 1) % 3));
	harness_expect_removed_exit(h, (leader + 1) % 3);
	assert_int_equal(run(h, script), 0);
	/* Full: refused, nothing changes. */
	snprintf(script, sizeof(script),
	    "exec raftkv member remove %llu >\"$D/rm2.out\" 2>&1",
	    (unsigned long long)harness_id(h, (leader + 2) % 3));
	assert_int_equal(run(h, script), 5);
	assert_true(file_has(h, "rm2.out",
	    "refused: the cluster keeps 256 removed member ids and 256 "
	    "removed keys at most"));
	assert_int_equal(conf_of(h, harness_leader(h, 10000), &c), 0);
	assert_int_equal(c.n_voters, 2);
	assert_true(
	    config_member_index(&c, harness_id(h, (leader + 2) % 3)) >= 0);
	harness_mark_passed(h);
}

/* Give member @i's "members" file @n made-up removed ids. */
static void fill_removed_ids(struct harness *h, int i, uint32_t n)
{
	struct memberdir *d = calloc(1, sizeof(*d));
	struct memberdir_gone *g = calloc(1, sizeof(*g));
	char err[512];
	const char *dir = harness_data_dir(h, i);
	uint64_t cid = harness_cluster(h)->id;

	assert_non_null(d);
	assert_non_null(g);
	if (memberdir_load(dir, cid, d, g, err, sizeof(err)) != 0)
		fail_msg("members file of member %d: %s", i + 1, err);
	for (uint32_t k = 0; k < n; k++)
		assert_int_equal(memberdir_gone_add_id(g, 1000 + k), 0);
	if (memberdir_save(dir, cid, d, g, err, sizeof(err)) != 0)
		fail_msg("members file of member %d: %s", i + 1, err);
	free(g);
	free(d);
}

/* Member @i's "members" file: has @key removed, and an entry for @id? */
static void file_removed(struct harness *h, int i, const char *key, uint64_t id,
    bool *key_gone, bool *in_dir)
{
	struct memberdir *d = calloc(1, sizeof(*d));
	struct memberdir_gone *g = calloc(1, sizeof(*g));
	char err[512];

	assert_non_null(d);
	assert_non_null(g);
	if (memberdir_load(harness_data_dir(h, i), harness_cluster(h)->id, d, g,
	        err, sizeof(err)) != 0)
		fail_msg("members file of member %d: %s", i + 1, err);
	*key_gone = memberdir_gone_has_key(g, key);
	*in_dir = memberdir_find(d, id) != NULL;
	free(g);
	free(d);
}

/* True if member @i's log has a line with @text. */
static bool log_has(struct harness *h, int i, const char *text)
{
	FILE *f = fopen(harness_log_path(h, i), "r");
	char line[2048];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

/*
 * A follower whose removed ids are full (its sets differ from the
 * leader's, which accepts the removal): it must not keep the removed
 * member connected and admitted.  At c283ad8 it recorded neither the id
 * nor the key (the key was never tried) and kept the directory entry.
 */
static void test_cli_member_follower_ids_full(void **state)
{
	struct harness *h = start(state, "cli-member-idsfull");
	char script[512], key[MEMBERDIR_KEY_MAX];
	uint64_t deadline;
	int f = 1, y = 2;
	bool key_gone = false, in_dir = true;

	assert_true(harness_leader(h, 10000) >= 0);
	harness_kill_all(h, SIGKILL);
	fill_removed_ids(h, f, MEMBERDIR_GONE_MAX);
	assert_int_equal(harness_restart_all(h), 0);
	lead_by(h, 0);
	snprintf(key, sizeof(key), "%s", harness_cluster(h)->members[y].key);
	snprintf(script, sizeof(script),
	    "exec raftkv member remove %llu >\"$D/rm.out\" 2>&1",
	    (unsigned long long)harness_id(h, y));
	harness_expect_removed_exit(h, y);
	assert_int_equal(run(h, script), 0);
	deadline = mono_ms() + 20000;
	while (!key_gone || in_dir) {
		if (mono_ms() > deadline)
			fail_msg("member %d: removed key recorded %d, address "
			         "kept %d",
			    f + 1, key_gone, in_dir);
		harness_sleep_ms(100);
		file_removed(h, f, key, harness_id(h, y), &key_gone, &in_dir);
	}
	assert_true(log_has(h, f, "cannot record its id"));
	/* The leader, whose set had room, records both. */
	file_removed(h, 0, key, harness_id(h, y), &key_gone, &in_dir);
	assert_true(key_gone);
	harness_mark_passed(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_cli_member_add_while_pending,
		    teardown),
		cmocka_unit_test_teardown(test_cli_member_pending_limit,
		    teardown),
		cmocka_unit_test_teardown(test_cli_member_remove_without_quorum,
		    teardown),
		cmocka_unit_test_teardown(test_cli_member_insecure, teardown),
		cmocka_unit_test_teardown(
		    test_cli_member_insecure_leader_decides, teardown),
		cmocka_unit_test_teardown(test_cli_member_removed_full,
		    teardown),
		cmocka_unit_test_teardown(test_cli_member_follower_ids_full,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
