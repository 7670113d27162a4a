/*
 * kvtest.h - the shared KV test machinery of the 6.5840 labs (kvtest1/
 * kvtest.go, kvraft1/test.go) on real raftkv-server processes.
 *
 * A struct kvt is one test: a cluster of kv/raftkv-server members started
 * through the process harness (tests/integration/harness.h), one
 * linearizability history (tests/lib/linz.h) that every clerk call made
 * through this file is recorded in, and the lab's fault knobs:
 *
 *   lab                               here
 *   unreliable network (labrpc)       clerk loss_pct (requests and replies
 *                                     lost, 10 % each way) + the harness's
 *                                     drop percentage on PEER links
 *   Partition / ConnectAll            harness_partition / harness_heal
 *                                     (peer links only: clerks reach every
 *                                     member, the labs' model)
 *   MakeClerkTo(servers)              kvt_clerk_to(): a clerk whose cluster
 *                                     struct holds only those members
 *   Clnt.ConnectAll()                 kvt_clerk_connect_all(): from then on
 *                                     the clerk's calls use every member
 *   ShutdownAll + StartServers        kvt_crash_restart(): kill -9 of every
 *                                     member, then the same program on the
 *                                     same data directories
 *   Persister.RaftStateSize()         STATUS log_bytes of each member
 *   Persister.SnapshotSize()          size of the member's snap-*.snap file
 *
 * RECORDING.  kvt_get() and kvt_put() are the lab clerk's Get and Put:
 * the call time is taken before the first request, the return time after
 * the answer, and the operation is added to the history with the answer.
 * What the clerk cannot know is recorded as such:
 *
 *   - A Put answered ErrMaybe is recorded with an UNKNOWN result (no return
 *     time): its request may still sit in some member's log and commit
 *     after the clerk gave up (a deposed leader's entry that the next
 *     leader keeps), so "it took effect between call and return, or never"
 *     would be a claim the system does not make.  The lab's model resolves
 *     ErrMaybe deterministically instead; ours tries both outcomes.
 *   - The lab's clerk retries forever.  raftkv's clerk gives up at its
 *     deadline: CLERK_EUNAVAILABLE means that no attempt can have applied,
 *     so kvt_get()/kvt_put() simply call again (inside the same recorded
 *     operation) until an answer comes or KVT_OP_CAP_MS passed.
 *
 * Histories are checked with linz.h's strict model (a Get must return the
 * value AND the version; ErrNoKey is modelled), stronger than the lab's
 * model, which compares Get values only.
 *
 * THREADS.  Functions named kvt_must_* and kvt_check_* and the life cycle
 * functions use cmocka assertions: main thread only.  kvt_get, kvt_put,
 * kvt_one_put, kvt_put_at_least_once and the clients' bodies only return
 * codes and record errors (kvt_client_error) for the main thread to assert
 * after joining - cmocka's longjmp must not cross thread stacks.
 */
#ifndef RAFTKV_TESTS_KVTEST_H
#define RAFTKV_TESTS_KVTEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "kv/clerk.h"
#include "tests/integration/harness.h"
#include "tests/lib/linz.h"

/* The labs' constants. */
#define KVT_NKEYS 100 /* random-keys mode: "k0".."k99" */
#define KVT_LOSS_PCT 10 /* labrpc: 10 % requests, 10 % replies */
#define KVT_PEER_DROP_PCT 10 /* peer messages dropped, unreliable */

/* How long one recorded operation may take in all (its clerk deadline is
 * 10 s; the labs' clerks retry forever, bounded by the 120 s test cap). */
#define KVT_OP_CAP_MS 60000

/* The linearizability check's budget (the labs: 1 s, "unknown" passes;
 * here longer, and UNKNOWN is printed as a loud warning). */
#define KVT_LINZ_TIMEOUT_S 10.0

struct kvt_options {
	const char *name; /* test name: temp dir, messages, histories */
	int nservers; /* members */
	bool unreliable; /* lossy clerks + peer drops */
	int64_t max_raft_state; /* <= 0: no snapshots (the labs' -1) */
	bool no_sessions; /* clerks with the seeds' semantics */
	unsigned loss_pct; /* clerk loss when unreliable (0: 10) */
	unsigned workers; /* member client workers (0: default) */
	int clerk_deadline_ms; /* 0: the clerk's default */
	int spares; /* extra members to join later (harness_options) */
};

void kvt_options_defaults(struct kvt_options *o);

struct kvt;

/*
 * Start @o->nservers members (kv/raftkv-server from $RAFTKV_BUILDDIR) and
 * wait for a leader.  Stores the test in *@state for kvt_teardown().
 * Main thread.
 */
struct kvt *kvt_new(void **state, const struct kvt_options *o);

/* cmocka teardown: kvt_free(*state). */
int kvt_teardown(void **state);

/* Stop everything, remove the directory (keeps it with RAFTKV_KEEP=1). */
void kvt_free(struct kvt *t);

/* The end of a passing test: no member died on its own; the harness need
 * not print the logs.  Prints the test's summary line. */
void kvt_finish(struct kvt *t);

struct harness *kvt_harness(struct kvt *t);
struct linz_history *kvt_history(struct kvt *t);
bool kvt_unreliable(const struct kvt *t);
const char *kvt_name(const struct kvt *t);

/* --- clerks ------------------------------------------------------------ */

struct kvt_clerk;

/* A clerk to every member (MakeClerk).  Any thread; NULL on failure. */
struct kvt_clerk *kvt_clerk_new(struct kvt *t);

/* A clerk restricted to the members in @mask (bit i = member i). */
struct kvt_clerk *kvt_clerk_to(struct kvt *t, uint32_t mask);

/* Let a restricted clerk use every member from its next call on (the
 * lab's Clnt.ConnectAll()).  Any thread. */
void kvt_clerk_connect_all(struct kvt_clerk *c);

void kvt_clerk_free(struct kvt_clerk *c);

/*
 * Record this clerk's operations in @h instead of the test's history
 * (NULL: the test's again).  Owner thread.  For tests that check several
 * independent histories (disjoint key sets) one after the other.
 */
void kvt_clerk_set_history(struct kvt_clerk *c, struct linz_history *h);

/* The clerk's history client id, and the raftkv clerk it uses now. */
uint64_t kvt_clerk_id(const struct kvt_clerk *c);
struct clerk *kvt_clerk_raw(struct kvt_clerk *c);

/* --- recorded operations (any thread) ------------------------------------ */

/*
 * Get(@key): KV_OK with *@value (malloc'd NUL-terminated copy, may be
 * NULL if @value is NULL) and *@ver, or KV_ENOKEY (*@ver = 0, value "").
 * A negative code (recorded nowhere) when no answer came within
 * KVT_OP_CAP_MS or the clerk failed otherwise.
 */
int kvt_get(struct kvt_clerk *c, const char *key, char **value, uint64_t *ver);

/*
 * Put(@key, @value, @ver): KV_OK, KV_EVERSION, KV_ENOKEY or KV_EMAYBE, as
 * recorded; negative as kvt_get().
 */
int kvt_put(struct kvt_clerk *c, const char *key, const char *value,
    uint64_t ver);

/* Delete(@key, @ver) (not in the labs; the nemesis uses it): as kvt_put. */
int kvt_del(struct kvt_clerk *c, const char *key, uint64_t ver);

/* --- the labs' helpers ----------------------------------------------------- */

/* Per-client tallies (the lab's ClntRes). */
struct kvt_res {
	uint64_t nok;
	uint64_t nmaybe;
};

/*
 * OnePut(me, ck, key, ver): Put JSON {Id:me, V:ver} until it is OK or
 * ErrMaybe, reading the key after every attempt for the next version.
 * Returns KV_OK or KV_EMAYBE (the outcome of the last put) with *@ver =
 * the version last read; negative on a failure (message in @err).
 */
int kvt_one_put(struct kvt_clerk *c, int me, const char *key, uint64_t *ver,
    char *err, size_t errlen);

/*
 * PutAtLeastOnce(ck, key, value, ver): Put until OK, moving to ver+1 after
 * ErrVersion or ErrMaybe.  Returns KV_OK with *@ver = the version the put
 * created (the lab returns ver+1), or negative (message in @err).
 */
int kvt_put_at_least_once(struct kvt_clerk *c, const char *key,
    const char *value, uint64_t *ver, char *err, size_t errlen);

/* Main-thread wrappers: fail the test on a negative result. */
uint64_t kvt_must_put_at_least_once(struct kvt_clerk *c, const char *key,
    const char *value, uint64_t ver);

/* CheckGet: Get must be OK with exactly @value and @ver. */
void kvt_check_get(struct kvt_clerk *c, const char *key, const char *value,
    uint64_t ver);

/* --- concurrent clients ------------------------------------------------------ */

struct kvt_client {
	struct kvt *t;
	int me; /* 0..n-1 */
	struct kvt_clerk *ck; /* its own clerk */
	atomic_bool *done; /* set by the main thread */
	void *arg; /* the spawner's */
	struct kvt_res res;
	char err[256]; /* first failure; "" if none */
	pthread_t tid;
};

typedef void (*kvt_client_fn)(struct kvt_client *c);

/* Record @c's first failure (printf-style); later ones are ignored. */
void kvt_client_error(struct kvt_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clients running in the background. */
struct kvt_clients;

/* Start @n clients running @fn, each with a fresh clerk (main thread). */
struct kvt_clients *kvt_clients_start(struct kvt *t, int n, kvt_client_fn fn,
    void *arg);

/*
 * Tell them to stop, join them, copy their tallies to @res (n entries, may
 * be NULL), free them; fail the test if any recorded an error.  Returns
 * the total of the tallies.
 */
struct kvt_res kvt_clients_stop(struct kvt_clients *cs, struct kvt_res *res);

/* SpawnClientsAndWait: start, sleep @ms, stop. */
struct kvt_res kvt_spawn_clients_and_wait(struct kvt *t, int n, unsigned ms,
    kvt_client_fn fn, void *arg, struct kvt_res *res);

/*
 * OneClientPut: OnePut in a loop until told to stop, on key "k", or on a
 * random key of "k0".."k99" when @c->arg points to a true bool.
 */
void kvt_one_client_put(struct kvt_client *c);

/*
 * CheckPutConcurrent: read @key's version with @ck; add @n results into
 * @acc (kept across iterations); reliable: the version must be exactly
 * acc->nok; otherwise at most acc->nok + acc->nmaybe.
 */
void kvt_check_put_concurrent(struct kvt *t, struct kvt_clerk *ck,
    const char *key, const struct kvt_res *res, int n, struct kvt_res *acc,
    bool reliable);

/* --- faults -------------------------------------------------------------- */

/*
 * The labs' Partitioner in a thread: until stopped, put each member on
 * side 0 or 1 with probability 1/2 and sleep 1 s + 0..199 ms.
 */
struct kvt_partitioner;
struct kvt_partitioner *kvt_partitioner_start(struct kvt *t);
/* Stop and join it (the partition it left stays). */
void kvt_partitioner_stop(struct kvt_partitioner *p);

/* Heal every peer link and wait @settle_ms (the labs: ElectionTimeout). */
void kvt_heal(struct kvt *t, unsigned settle_ms);

/* kill -9 every member at once, then restart them all on their data. */
void kvt_crash_restart(struct kvt *t);

/* --- checks (main thread) ---------------------------------------------------- */

/*
 * Check the whole history recorded so far (per key, linearizability);
 * fail on ILLEGAL (the history is saved for tools/linz-check), print a
 * loud warning on UNKNOWN.  @what names the check in messages.
 */
void kvt_check_linearizable(struct kvt *t, const char *what);

/* The same for another history @h (see kvt_clerk_set_history()). */
void kvt_check_history(struct kvt *t, struct linz_history *h, const char *what);

/*
 * Persisted raft state of every running member (STATUS log_bytes) must be
 * at most @limit bytes.
 */
void kvt_check_raft_state(struct kvt *t, uint64_t limit);

/* maxraftstate -1: no member may have taken a snapshot. */
void kvt_check_no_snapshot(struct kvt *t);

/* Bytes of member @i's newest snapshot file (0: none). */
uint64_t kvt_snapshot_bytes(struct kvt *t, int i);

/* The leader's index (waits up to 10 s; fails the test if none). */
int kvt_must_leader(struct kvt *t);

/* VmRSS of member @i's process in KiB (0 if unknown). */
uint64_t kvt_rss_kib(struct kvt *t, int i);

/* Operations recorded so far. */
size_t kvt_nops(struct kvt *t);

/* Fresh random seed, printed once by kvt_new(); RAFTKV_SEED overrides. */
uint64_t kvt_seed(const struct kvt *t);

/* Thread-safe uniform random number in [0, n). */
uint64_t kvt_rand(struct kvt *t, uint64_t n);

/*
 * Run only the tests whose name matches $RAFTKV_TEST_FILTER (cmocka's
 * pattern: '*' and '?'), if set.  Call before cmocka_run_group_tests().
 */
void kvt_filter_tests(void);

/* Scale: @normal by default, @lng under RAFTKV_LONG=1. */
#define KVT_SCALE(normal, lng) (harness_long() ? (lng) : (normal))

/* --- the kvraft drivers (kvraft1/kvraft_test.go) ---------------------------- */

/*
 * GenericTest's parameters (MakeTest's), plus the scale: iterations and
 * the clients' period per iteration (the lab: 3 and 1 s).
 */
struct kvt_generic {
	const char *name;
	int nclients;
	int nservers;
	bool unreliable;
	bool crash;
	bool partitions;
	int64_t maxraftstate; /* -1: no snapshots */
	bool randomkeys;
	int niter;
	unsigned period_ms;
};

/*
 * GenericTest: @g->niter iterations of: clients for the period running
 * OneClientPut (on "k", or random keys); with partitions the Partitioner
 * starts 1 s into the period and runs until the clients are done; then
 * CheckPutConcurrent (single key; exact count only when nothing could
 * lose an answer), the linearizability check of the whole history so far,
 * heal + 1 s, kill -9 of every member + restart (crash), and the size
 * checks: persisted raft state <= 8 x maxraftstate on every member, or
 * no snapshot at all with maxraftstate -1.  Main thread; stores the test
 * in *@state.
 */
void kvt_generic_test(void **state, const struct kvt_generic *g);

/*
 * GenericTestSpeed: Get("x") (a leader serves), then 1000 sequential
 * Put("k", i, version i) that must all be OK, and Get("k") at version
 * 1000.  The lab's 33 ms/op bound is a wall-clock assertion: here the
 * time per op is printed, not asserted (benchmarks measure speed).
 */
void kvt_generic_test_speed(void **state, const char *name, int nservers,
    int64_t maxraftstate);

#endif
