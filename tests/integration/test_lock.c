/*
 * test_lock.c - the 6.5840 Lab 2 lock tests (kvsrv1/lock/lock_test.go) on
 * real raftkv-server processes, with raftkv's lock (kv/lock.h: the seeds'
 * lock on one key, plus a fencing token).
 *
 * The lab's clients, for 2 s each (then each finishes its iteration):
 * Put("l0", "", 0) once (result ignored), then loop: Acquire; Get("l0")
 * must be OK and "" (else two clients hold the lock); Put("l0", me, ver)
 * must be OK or ErrMaybe; sleep 10 ms; Put("l0", "", ver+1) must be OK or
 * ErrMaybe; Release.
 *
 * As in the lab, the four tests run on one server (a 1-member cluster)
 * with the seeds' clerk (no_sessions: retried puts that find ErrVersion
 * come back ErrMaybe, which the lock must resolve); "unreliable" is the
 * clerk losing 10 % of requests and 10 % of replies.  Two more run the
 * unreliable schedule on 3 members (peer messages dropped too), one with
 * the seeds' clerk and one with raftkv's session clerk.
 *
 * Checked beyond the lab:
 *   - every access to "l0" is recorded and the history must be
 *     linearizable;
 *   - fencing tokens: each holder records its token, the time its Acquire
 *     returned and the time it called Release.  Tokens are all different,
 *     and, in token order, each holder called Release before the next
 *     holder's Acquire returned (the release is linearized before the next
 *     acquiring put) - mutual exclusion in real time, not only as "l0"
 *     shows it;
 *   - Acquire must succeed within 30 s (the lab blocks forever; a lock
 *     that is never released would hang it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "kv/lock.h"
#include "tests/integration/kvtest.h"
#include "tests/lib/history.h"

#define NCLNT 10
#define NSEC 2
#define ACQUIRE_TIMEOUT_MS 30000

struct holding {
	uint64_t token;
	uint64_t acq_ret_ns; /* Acquire returned */
	uint64_t rel_call_ns; /* Release called */
	int me;
};

struct holdings {
	pthread_mutex_t mu;
	struct holding *h;
	size_t n, cap;
	unsigned release_notheld; /* Release said "not held" */
};

static void add_holding(struct holdings *hs, const struct holding *h)
{
	pthread_mutex_lock(&hs->mu);
	if (hs->n == hs->cap) {
		hs->cap = hs->cap ? 2 * hs->cap : 256;
		hs->h = realloc(hs->h, hs->cap * sizeof(*hs->h));
		if (hs->h == NULL)
			abort();
	}
	hs->h[hs->n++] = *h;
	pthread_mutex_unlock(&hs->mu);
}

/* The lab's oneClient. */
static void lock_client(struct kvt_client *c)
{
	struct holdings *hs = c->arg;
	struct kvlock *lk = NULL;
	char me[16];

	snprintf(me, sizeof(me), "%d", c->me);
	if (kvlock_new(kvt_clerk_raw(c->ck), "l", 0, &lk) != 0) {
		kvt_client_error(c, "kvlock_new failed");
		return;
	}
	(void)kvt_put(c->ck, "l0", "", 0);
	while (!atomic_load(c->done)) {
		struct holding h = { .me = c->me };
		char *val = NULL;
		uint64_t ver = 0;
		int rv;

		rv = kvlock_acquire(lk, ACQUIRE_TIMEOUT_MS, &h.token);
		if (rv != 0) {
			kvt_client_error(c, "%d: Acquire: %s", c->me,
			    rv == KVLOCK_ETIMEDOUT ? "timed out"
			                           : clerk_strerror(rv));
			break;
		}
		h.acq_ret_ns = history_now_ns();
		rv = kvt_get(c->ck, "l0", &val, &ver);
		if (rv != KV_OK) {
			kvt_client_error(c, "%d: get failed %s", c->me,
			    clerk_strerror(rv));
			break;
		}
		if (val[0] != '\0') {
			kvt_client_error(c, "%d: two clients acquired lock %s",
			    c->me, val);
			free(val);
			break;
		}
		free(val);
		rv = kvt_put(c->ck, "l0", me, ver);
		if (rv != KV_OK && rv != KV_EMAYBE) {
			kvt_client_error(c, "%d: put failed %s", c->me,
			    clerk_strerror(rv));
			break;
		}
		harness_sleep_ms(10);
		rv = kvt_put(c->ck, "l0", "", ver + 1);
		if (rv != KV_OK && rv != KV_EMAYBE) {
			kvt_client_error(c, "%d: put failed %s", c->me,
			    clerk_strerror(rv));
			break;
		}
		h.rel_call_ns = history_now_ns();
		rv = kvlock_release(lk);
		add_holding(hs, &h);
		if (rv == KVLOCK_ENOTHELD) {
			/* Possible without a fault: our release applied, its
			 * reply was lost, and another client took the lock
			 * before we could read it back. */
			pthread_mutex_lock(&hs->mu);
			hs->release_notheld++;
			pthread_mutex_unlock(&hs->mu);
		} else if (rv != 0) {
			kvt_client_error(c, "%d: Release: %s", c->me,
			    clerk_strerror(rv));
			break;
		}
		c->res.nok++;
	}
	kvlock_free(lk);
}

static int by_token(const void *a, const void *b)
{
	const struct holding *x = a, *y = b;

	return x->token < y->token ? -1 : x->token > y->token;
}

static void check_holdings(struct kvt *t, struct holdings *hs)
{
	qsort(hs->h, hs->n, sizeof(*hs->h), by_token);
	for (size_t i = 1; i < hs->n; i++) {
		const struct holding *p = &hs->h[i - 1], *q = &hs->h[i];

		if (p->token == q->token)
			fail_msg("[%s] clients %d and %d got the same fencing "
			         "token %" PRIu64,
			    kvt_name(t), p->me, q->me, p->token);
		if (p->rel_call_ns >= q->acq_ret_ns)
			fail_msg("[%s] client %d (token %" PRIu64 ") acquired "
			         "%.3f ms before client %d (token %" PRIu64 ") "
			         "released",
			    kvt_name(t), q->me, q->token,
			    (double)(p->rel_call_ns - q->acq_ret_ns) / 1e6,
			    p->me, p->token);
	}
	print_message("[%s] %zu acquisitions, tokens %" PRIu64 "..%" PRIu64
	              ", %u releases answered \"not held\"\n",
	    kvt_name(t), hs->n, hs->n ? hs->h[0].token : 0,
	    hs->n ? hs->h[hs->n - 1].token : 0, hs->release_notheld);
	/* These locks have no lease: nobody can take one over, so a release
	 * is never "not held" (an unknown outcome is resolved by reading). */
	if (hs->release_notheld != 0)
		fail_msg("[%s] %u releases of a lease-less lock answered "
		         "\"not held\"",
		    kvt_name(t), hs->release_notheld);
}

static void run_clients(void **state, const char *name, int nservers, int nclnt,
    bool unreliable, bool no_sessions)
{
	struct kvt_options o;
	struct holdings hs;
	struct kvt_res tot;
	struct kvt *t;

	kvt_options_defaults(&o);
	o.name = name;
	o.nservers = nservers;
	o.unreliable = unreliable;
	o.no_sessions = no_sessions;
	t = kvt_new(state, &o);
	memset(&hs, 0, sizeof(hs));
	pthread_mutex_init(&hs.mu, NULL);
	tot = kvt_spawn_clients_and_wait(t, nclnt, NSEC * 1000, lock_client,
	    &hs, NULL);
	assert_true(tot.nok > 0);
	check_holdings(t, &hs);
	free(hs.h);
	pthread_mutex_destroy(&hs.mu);
	kvt_check_linearizable(t, "end");
	kvt_finish(t);
}

static void test_one_client_reliable(void **state)
{
	run_clients(state, "one_client_reliable", 1, 1, false, true);
}

static void test_many_clients_reliable(void **state)
{
	run_clients(state, "many_clients_reliable", 1, NCLNT, false, true);
}

static void test_one_client_unreliable(void **state)
{
	run_clients(state, "one_client_unreliable", 1, 1, true, true);
}

static void test_many_clients_unreliable(void **state)
{
	run_clients(state, "many_clients_unreliable", 1, NCLNT, true, true);
}

static void test_many_clients_unreliable_3(void **state)
{
	run_clients(state, "many_clients_unreliable_3", 3, NCLNT, true, true);
}

static void test_many_clients_unreliable_sessions_3(void **state)
{
	run_clients(state, "many_clients_unreliable_sessions_3", 3, NCLNT, true,
	    false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_one_client_reliable,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_many_clients_reliable,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_one_client_unreliable,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_many_clients_unreliable,
		    kvt_teardown),
		cmocka_unit_test_teardown(test_many_clients_unreliable_3,
		    kvt_teardown),
		cmocka_unit_test_teardown(
		    test_many_clients_unreliable_sessions_3, kvt_teardown),
	};

	kvt_filter_tests();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
