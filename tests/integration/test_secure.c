/*
 * test_secure.c - the holes of issue 9 ("secure and fail-closed by
 * default"), each tried against real member processes
 * (tests/integration/counter-member) on the harness's default setup,
 * which is the one `raftkv init` writes: CURVE keys for every member, a
 * client and an admin credential.
 *
 *   forged_append   a non-member that reaches a member's peer port sends
 *                   an AppendEntries claiming to come from member 2 in a
 *                   new term, carrying an Inc: it must never be applied
 *                   (the counter stays) nor bump the term.  Tried with a
 *                   plaintext socket and with a stranger's CURVE key.
 *   forged_vote     the same stranger asks for a vote in a far higher
 *                   term: the member's term must not move.
 *   client_auth     a plaintext client and a client with a key not on
 *                   the allowlist are refused with CLIENT_EAUTH (at once,
 *                   not a time-out) and their Inc is never applied; the
 *                   cluster's client credential can write but not
 *                   transfer leadership or inject faults (CPROTO_EDENIED);
 *                   the admin credential can.
 *
 * RAFTKV_INSECURE=1 makes the harness set clusters up the old way (no
 * keys, members run --insecure), which is what main did by default
 * before issue 9: then every test here fails, as it should.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <cmocka.h>
#include <zmq.h>

#include "raft/client/keys.h"
#include "raft/le.h"
#include "raft/net/frame.h"
#include "tests/integration/harness.h"

#define NSRV 3

static int teardown(void **state)
{
	struct harness *h = *state;
	int bad = 0;

	if (h != NULL) {
		harness_kill_all(h, SIGTERM);
		bad = harness_unexpected_exits(h);
	}
	harness_free(h);
	*state = NULL;
	return bad ? -1 : 0;
}

static struct harness *start(void **state, const char *name)
{
	struct harness_options o;
	struct harness *h;

	harness_options_defaults(&o);
	o.name = name;
	h = harness_new(NSRV, &o);
	assert_non_null(h);
	*state = h;
	return h;
}

/* One Inc through the harness (an admin); returns the new value. */
static uint64_t inc(struct harness *h)
{
	uint64_t v = 0;

	assert_int_equal(harness_counter_inc(h, 0, 10000, &v, NULL), 0);
	return v;
}

/*
 * Leave member 0 alone (members 1 and 2 killed): it can elect nobody, so
 * with pre-vote its term stays put, and a forged leader in a higher term
 * is exactly what it would follow.  Returns its status.
 */
static void isolate_member0(struct harness *h, struct cproto_status *st)
{
	assert_int_equal(harness_kill(h, 1, SIGKILL), 0);
	assert_int_equal(harness_kill(h, 2, SIGKILL), 0);
	/* Let it give up any leadership (check-quorum) and settle. */
	harness_sleep_ms(1500);
	assert_int_equal(harness_status(h, 0, st), 0);
}

/* A socket of a process outside the cluster, aimed at member 0's peer
 * port: plaintext, or CURVE with a fresh key of its own (a stranger who
 * knows the member's public key, as anyone reading the cluster file
 * does). */
static void *forger(void *zctx, struct harness *h, bool curve)
{
	const struct cluster *cl = harness_cluster(h);
	void *s = zmq_socket(zctx, ZMQ_DEALER);
	int zero = 0;

	assert_non_null(s);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (curve && cl->curve) {
		char pub[41], sec[41];

		assert_int_equal(keys_generate(pub, sec), 0);
		zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, cl->members[0].key, 40);
		zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
		zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
	}
	assert_int_equal(zmq_connect(s, cl->members[0].peer), 0);
	return s;
}

/* Send @m, framed as if member @m->from sent it, on @s. */
static void forge(void *s, struct harness *h, const struct raft_msg *m)
{
	uint8_t buf[4096];
	long n = frame_encode(harness_cluster(h)->id, m->from, m, buf,
	    sizeof(buf));

	assert_true(n > 0);
	/* Queued even before the connection is up (no ZMQ_IMMEDIATE). */
	assert_true(zmq_send(s, buf, (size_t)n, 0) == n);
}

/* Appends from "member 2" in term @term after index @last, one per
 * possible previous term (the forger does not know it), committing an
 * Inc at @last + 1. */
static void forge_appends(void *s, struct harness *h, raft_term term,
    raft_index last)
{
	uint8_t inc_cmd = 'I';
	struct raft_entry e = {
		.term = term,
		.index = last + 1,
		.type = RAFT_ENTRY_NORMAL,
		.len = 1,
		.data = &inc_cmd,
	};

	for (raft_term pt = 0; pt <= term; pt++) {
		struct raft_msg m = {
			.type = RAFT_MSG_APPEND,
			.from = 2,
			.to = 1,
			.term = term,
			.index = last,
			.log_term = pt,
			.commit = last + 1,
			.n_entries = 1,
			.entries = &e,
		};

		forge(s, h, &m);
	}
}

static void test_forged_append(void **state)
{
	struct harness *h = start(state, "sec-append");
	struct cproto_status st, after;
	uint64_t before, now = 0;
	void *zctx = zmq_ctx_new(), *plain, *stranger;

	before = inc(h);
	assert_int_equal(harness_wait_converged(h, 10000), 0);
	isolate_member0(h, &st);
	plain = forger(zctx, h, false);
	stranger = forger(zctx, h, true);
	forge_appends(plain, h, st.term + 1, st.last_index);
	forge_appends(stranger, h, st.term + 2, st.last_index);
	/* Time for the frames to arrive, be appended, applied. */
	harness_sleep_ms(2000);
	assert_int_equal(harness_counter_get(h, 0, &now), 0);
	assert_int_equal(harness_status(h, 0, &after), 0);
	zmq_close(plain);
	zmq_close(stranger);
	zmq_ctx_term(zctx);
	print_message("      counter %llu -> %llu, term %llu -> %llu, last "
	              "index %llu -> %llu\n",
	    (unsigned long long)before, (unsigned long long)now,
	    (unsigned long long)st.term, (unsigned long long)after.term,
	    (unsigned long long)st.last_index,
	    (unsigned long long)after.last_index);
	if (now != before)
		fail_msg("a forged append was applied: counter %llu -> %llu",
		    (unsigned long long)before, (unsigned long long)now);
	assert_int_equal(after.term, st.term);
	assert_int_equal(after.last_index, st.last_index);
	harness_mark_passed(h);
}

static void test_forged_vote(void **state)
{
	struct harness *h = start(state, "sec-vote");
	struct cproto_status st, after;
	void *zctx = zmq_ctx_new(), *plain, *stranger;

	(void)inc(h);
	isolate_member0(h, &st);
	plain = forger(zctx, h, false);
	stranger = forger(zctx, h, true);
	for (int k = 0; k < 2; k++) {
		struct raft_msg m = {
			.type = RAFT_MSG_VOTE,
			.from = 2,
			.to = 1,
			.term = st.term + 10 + (raft_term)k,
			.index = st.last_index + 100,
			.log_term = st.term + 10,
		};

		forge(k == 0 ? plain : stranger, h, &m);
	}
	harness_sleep_ms(2000);
	assert_int_equal(harness_status(h, 0, &after), 0);
	zmq_close(plain);
	zmq_close(stranger);
	zmq_ctx_term(zctx);
	print_message("      term %llu -> %llu, vote %llu -> %llu\n",
	    (unsigned long long)st.term, (unsigned long long)after.term,
	    (unsigned long long)st.vote, (unsigned long long)after.vote);
	if (after.term != st.term)
		fail_msg("a forged vote request moved the term %llu -> %llu",
		    (unsigned long long)st.term,
		    (unsigned long long)after.term);
	assert_int_equal(after.vote, st.vote);
	harness_mark_passed(h);
}

/* A client of @h's cluster presenting secret @sec ("" and @plain: no
 * CURVE at all). */
static struct client *client_with(struct harness *h, const char *sec,
    bool plain)
{
	struct cluster cl = *harness_cluster(h);
	struct client *c = NULL;

	if (plain)
		cl.curve = 0;
	snprintf(cl.cred_secret, sizeof(cl.cred_secret), "%s", sec);
	assert_int_equal(client_new(&cl, NULL, &c), 0);
	return c;
}

static void read_cred(struct harness *h, const char *name, char sec[41])
{
	char path[4096], err[512];

	sec[0] = '\0';
	if (!harness_cluster(h)->curve)
		return; /* RAFTKV_INSECURE=1: there are no credentials */
	snprintf(path, sizeof(path), "%s/%s", harness_dir(h), name);
	if (keys_read_secret(path, sec, err, sizeof(err)) != 0)
		fail_msg("%s", err);
}

/* Send @op to member @i as @c; returns the client's code, or the member's
 * status when it answered. */
static int call(struct client *c, int i, uint8_t op, const void *p,
    uint32_t len)
{
	struct client_reply r;
	int rv = client_call(c, (uint32_t)i, op, p, len, 3000, &r);

	free(r.data);
	return rv != 0 ? rv : r.status;
}

static void test_client_auth(void **state)
{
	struct harness *h = start(state, "sec-client");
	char client_sec[41], admin_sec[41], pub[41], stranger_sec[41];
	struct client *plain, *stranger, *client, *admin;
	uint8_t target[8], fault[CPROTO_FAULT_LEN];
	struct cproto_fault f = { .peer = 2 };
	uint64_t before, now = 0;
	int leader, other, rv;
	uint64_t t0;

	before = inc(h);
	assert_int_equal(harness_wait_converged(h, 10000), 0);
	leader = harness_leader(h, 10000);
	assert_true(leader >= 0);
	other = (leader + 1) % NSRV;
	read_cred(h, "client.key", client_sec);
	read_cred(h, "admin.key", admin_sec);
	assert_int_equal(keys_generate(pub, stranger_sec), 0);

	/* No credential at all, and a key the cluster file does not list:
	 * refused at the handshake, and said so at once. */
	plain = client_with(h, "", true);
	stranger = client_with(h, stranger_sec, false);
	t0 = harness_now_ms();
	rv = call(plain, leader, CPROTO_SUBMIT, "I", 1);
	print_message("      plaintext client's write: %s (%llu ms)\n",
	    rk_strerror(rv), (unsigned long long)(harness_now_ms() - t0));
	assert_int_equal(rv, CLIENT_EAUTH);
	t0 = harness_now_ms();
	rv = call(stranger, leader, CPROTO_SUBMIT, "I", 1);
	print_message("      stranger's write: %s (%llu ms)\n", rk_strerror(rv),
	    (unsigned long long)(harness_now_ms() - t0));
	assert_int_equal(rv, CLIENT_EAUTH);
	le_put64(target, harness_id(h, other));
	assert_int_equal(call(stranger, leader, CPROTO_TRANSFER, target, 8),
	    CLIENT_EAUTH);
	client_free(plain);
	client_free(stranger);
	assert_int_equal(harness_wait_converged(h, 10000), 0);
	assert_int_equal(harness_counter_get(h, leader, &now), 0);
	assert_int_equal(now, before);

	/* The client credential writes, but is no administrator. */
	client = client_with(h, client_sec, false);
	assert_int_equal(call(client, leader, CPROTO_SUBMIT, "I", 1), 0);
	assert_int_equal(call(client, leader, CPROTO_TRANSFER, target, 8),
	    CPROTO_EDENIED);
	cproto_encode_fault(&f, fault);
	assert_int_equal(call(client, leader, CPROTO_FAULT, fault,
	                     sizeof(fault)),
	    CPROTO_EDENIED);
	assert_int_equal(harness_leader(h, 10000), leader);
	client_free(client);

	/* The admin credential may move leadership. */
	admin = client_with(h, admin_sec, false);
	assert_int_equal(call(admin, leader, CPROTO_TRANSFER, target, 8), 0);
	client_free(admin);
	assert_int_equal(harness_counter_wait(h, before + 1, NSRV, 10000),
	    NSRV);
	harness_mark_passed(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_forged_append, teardown),
		cmocka_unit_test_teardown(test_forged_vote, teardown),
		cmocka_unit_test_teardown(test_client_auth, teardown),
	};

	if (getenv("RAFTKV_TEST"))
		cmocka_set_test_filter(getenv("RAFTKV_TEST"));
	return cmocka_run_group_tests_name("secure", tests, NULL, NULL);
}
