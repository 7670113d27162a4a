/*
 * linz.h - linearizability checker for histories of raftkv clients.
 *
 * A history is a set of operations recorded by concurrent clients: each
 * one a Get, Put or Delete on one key, with the time the client called it,
 * the time the answer came back (or LINZ_NEVER) and what the answer was.
 * linz_check() decides whether some total order of the operations, in
 * which each one takes effect at an instant between its call and its
 * return, explains every answer under a sequential model of the store.
 *
 * The algorithm is Porcupine's (Athalye, github.com/anishathalye/porcupine,
 * checker.go checkSingle): the history is split per key (linearizability
 * is local, Herlihy & Wing 1990, so a history is linearizable iff each
 * key's sub-history is), and each key is searched with the Wing & Gong
 * backtracking algorithm as improved by Lowe ("Testing for
 * linearizability", 2017): a doubly linked list of call/return events,
 * lifting an operation out of it when it is linearized, backtracking when
 * a return event is reached whose operation has not been, and a cache of
 * (set of linearized operations, model state) configurations already seen
 * so that no configuration is explored twice.  Four sound reductions
 * (linz_search.c) keep failing searches from enumerating every
 * interleaving: legal reads go first, a write that may have had no
 * effect is dropped only at its return, a write that never returned is
 * applied only right before an operation that observes it, and applying
 * fewer of those dominates applying more.
 *
 * Models (enum linz_model), state per key:
 *
 *  LINZ_MODEL_STRICT (raftkv): {exists, value, version}, initially absent.
 *    Get            exists: OK with the value AND the version;
 *                   absent: ErrNoKey (value/version of the answer ignored).
 *    Put(v, ver)    exists and ver == version: value = v, version + 1, OK;
 *                   exists, ver != version: ErrVersion;
 *                   absent and ver == 0: created with version 1, OK;
 *                   absent and ver != 0: ErrNoKey.
 *    Delete(ver)    exists and ver == version: key becomes absent, OK;
 *                   exists, ver != version: ErrVersion;
 *                   absent: ErrNoKey (whatever ver).
 *                   After a delete the key is simply absent: Put with
 *                   version 0 recreates it, with version 1 again (versions
 *                   are not kept across a delete).
 *    ErrMaybe (Put/Delete): the operation may or may not have applied.
 *                   Both are tried: "applied" (only where the version
 *                   matches) and "no effect".
 *
 *  LINZ_MODEL_LAB (6.5840 models1/kv.go, exactly): {value, version},
 *    initially {"", 0}.
 *    Get            legal iff the answer's value equals the state's value
 *                   (neither version nor Err is checked).
 *    Put(v, ver)    ver == version: legal iff OK or ErrMaybe, and then
 *                   applies (value = v, version + 1) -- ErrMaybe is
 *                   resolved deterministically, as in the lab;
 *                   ver != version: legal iff ErrVersion or ErrMaybe,
 *                   no effect.  ErrNoKey from a Put is always illegal.
 *    Delete         (not in the lab; an extension) ver == version: OK or
 *                   ErrMaybe, state back to {"", 0}; else ErrVersion or
 *                   ErrMaybe, no effect.
 *    Put(v, LINZ_ANY_VERSION)  (an extension) a blind write, such as a
 *                   file's whole contents written and fsync'd: matches
 *                   every version, so it applies wherever it is placed
 *                   (OK or ErrMaybe), version + 1.  Give it an answer
 *                   (ret_ns not LINZ_NEVER).
 *
 *  Both models: an operation whose answer never came (result
 *  LINZ_RES_UNKNOWN, ret_ns LINZ_NEVER) may take effect at any instant
 *  after its call, or never: a Put/Delete tries "applied where the
 *  version matches" and "no effect"; a Get with an unknown answer
 *  constrains nothing and is left out of the search.  An ErrMaybe
 *  Put/Delete may be recorded with an open end too (ret_ns LINZ_NEVER,
 *  for a request that may still commit after the client gave up): it may
 *  take effect at any instant after its call, or never -- in the lab
 *  model too, where it applies if it takes effect where the version
 *  matches.
 *
 * Real-time order and ties: operation A precedes B iff A.ret_ns <
 * B.call_ns.  Events are sorted by time with calls before returns at
 * equal times (Porcupine's byTime), so A returning at the very nanosecond
 * B is called counts as concurrent with B -- the permissive reading of a
 * tie.  An operation with ret_ns == LINZ_NEVER is concurrent with
 * everything called after it.
 *
 * Cost: linear in the number of operations times the concurrency for the
 * histories real runs produce; exponential in the worst case (the problem
 * is NP-complete), hence the timeout and the LINZ_UNKNOWN verdict.  The
 * expensive shape: hundreds of writes without answer (or open-ended
 * ErrMaybe) on one key, especially one whose versions Delete restarts --
 * each may have applied at any later point.  Memory: each key's cache is
 * bounded by $RAFTKV_LINZ_MAX_MB (default LINZ_DEFAULT_MAX_MB, about
 * 100-200 bytes per configuration); reaching it also gives LINZ_UNKNOWN.
 *
 * Thread safety: linz_add() may be called from any number of threads at
 * once.  linz_check() takes the same lock: run while clients still add,
 * it checks what was added before it and holds the adders back until it
 * is done.  Allocation failure aborts the program (this is test code).
 */
#ifndef RAFTKV_TESTS_LINZ_H
#define RAFTKV_TESTS_LINZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ret_ns of an operation whose answer never came back. */
#define LINZ_NEVER UINT64_MAX
/* The version of a blind Put (lab model only; see above). */
#define LINZ_ANY_VERSION UINT64_MAX

/* Default bound on one key's search memory, in MiB. */
#define LINZ_DEFAULT_MAX_MB 2048

enum linz_kind {
	LINZ_GET = 0,
	LINZ_PUT = 1,
	LINZ_DEL = 2,
};

/* What the client was told (for a Get: together with value and version). */
enum linz_res {
	LINZ_RES_OK = 0,
	LINZ_RES_ERR_VERSION = 1,
	LINZ_RES_ERR_NOKEY = 2,
	LINZ_RES_ERR_MAYBE = 3, /* Put/Delete: may or may not have applied */
	LINZ_RES_UNKNOWN = 4, /* no answer; implies ret_ns = LINZ_NEVER */
};

enum linz_model {
	LINZ_MODEL_STRICT = 0, /* raftkv: value and version, delete */
	LINZ_MODEL_LAB = 1, /* 6.5840 models1/kv.go */
};

/* Verdicts returned by linz_check(). */
enum linz_verdict {
	LINZ_OK = 0, /* linearizable */
	LINZ_ILLEGAL = 1, /* not linearizable: see the result */
	LINZ_UNKNOWN = 2, /* gave up (time/memory) undecided */
};

/*
 * One recorded operation.  The strings are borrowed: linz_add() copies
 * them.  value is the Put's input or the Get's answer (unused for
 * Delete); version is the Put's/Delete's input or the Get's answer.
 */
struct linz_op {
	uint64_t client; /* for reports only */
	uint64_t call_ns; /* monotonic clock, before the request */
	uint64_t ret_ns; /* after the answer, or LINZ_NEVER */
	int kind; /* enum linz_kind */
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	uint64_t version;
	int result; /* enum linz_res */
};

struct linz_history;

/*
 * Outcome of linz_check(), filled in by it.  Caller-owned; release the
 * members with linz_result_close().  Operations are named by their index
 * in the history (the order of linz_add() calls, 0-based).
 */
struct linz_result {
	enum linz_verdict verdict;
	enum linz_model model;
	double elapsed_s; /* wall time of the check */
	size_t nops; /* operations in the history */
	size_t nkeys; /* distinct keys */
	size_t nkeys_illegal; /* keys found not linearizable */
	size_t nkeys_unknown; /* keys not decided (see gave_up) */
	size_t nconfigs; /* configurations explored, all keys */
	const char *gave_up; /* UNKNOWN: "timeout"/"memory limit" */
	/*
	 * ILLEGAL: the first illegal key (in order of first appearance);
	 * UNKNOWN: the first key left undecided.  NULL when OK.
	 */
	char *key;
	size_t key_len;
	/*
	 * ILLEGAL only: the longest linearizable prefix of the key's history
	 * the search found (in linearization order), and the operations that
	 * could not be placed after it: stuck[0] is the operation whose
	 * return was reached before it could be linearized, the others the
	 * pending operations concurrent with it, none of which fits either.
	 */
	size_t *prefix;
	size_t nprefix;
	size_t *stuck;
	size_t nstuck;
	char *report; /* readable explanation; NULL when OK */
};

/* Create an empty history.  Free it with linz_history_free(). */
struct linz_history *linz_history_new(void);

/* Free @h and everything it holds.  Accepts NULL. */
void linz_history_free(struct linz_history *h);

/*
 * Append a copy of @op to @h.  Thread safe.  A result of LINZ_RES_UNKNOWN
 * forces ret_ns to LINZ_NEVER (with no answer the operation may still
 * take effect later, whenever the client gave up).
 * An ErrMaybe write may also be given an open end (ret_ns = LINZ_NEVER):
 * it may then take effect at any point after its call, or never.
 * Returns 0, or -EINVAL if kind or result is out of range, ErrMaybe is
 * given for a Get, call_ns is LINZ_NEVER, ret_ns < call_ns, or ret_ns is
 * LINZ_NEVER with a known answer (OK, ErrVersion, ErrNoKey).
 */
int linz_add(struct linz_history *h, const struct linz_op *op);

/* Number of operations in @h. */
size_t linz_history_len(struct linz_history *h);

/*
 * Copy operation @i of @h into @op.  The key and value pointers borrow
 * @h's storage and stay valid until linz_history_free().
 * Returns 0, or -ERANGE if @i is out of range.
 */
int linz_history_get(struct linz_history *h, size_t i, struct linz_op *op);

/*
 * Check @h under @model, spending at most @timeout_s seconds of wall
 * time (<= 0: no limit) and per key at most the memory limit above.
 * Keys are checked one after the other in order of first appearance; the
 * timeout is for the whole history.  A key found illegal decides the
 * verdict even if a later one was not decided.
 * Fills @res (may be NULL) -- release it with linz_result_close() -- and
 * returns the verdict.
 */
enum linz_verdict linz_check(struct linz_history *h, enum linz_model model,
    double timeout_s, struct linz_result *res);

/*
 * Print @res: one summary line, then for ILLEGAL the explanation (key,
 * the end of the longest linearizable prefix with the state after each
 * operation, the operations that could not be placed and why), for
 * UNKNOWN a loud warning.
 */
void linz_result_print(const struct linz_result *res, FILE *f);

/* Free the members of @res (not @res itself).  Accepts a zeroed struct. */
void linz_result_close(struct linz_result *res);

/*
 * Print the body of @op on one line, the form history files use:
 *	get "k" -> OK "v" ver=3	(a Get's answer: result value version)
 *	put "k" "v" ver=3 -> ErrMaybe
 *	del "k" ver=3 -> ErrVersion
 * Strings are quoted, '"' and '\' escaped with '\', bytes outside
 * printable ASCII as \xNN.  A string longer than @max_bytes is cut and
 * followed by ...(N bytes) -- for reports; pass SIZE_MAX to print all.
 */
void linz_op_print(const struct linz_op *op, FILE *f, size_t max_bytes);

/* Names: "OK", "ErrVersion", "ErrNoKey", "ErrMaybe", "Unknown"; NULL if
 * out of range.  And "get", "put", "del". */
const char *linz_res_name(int result);
const char *linz_kind_name(int kind);

#endif /* RAFTKV_TESTS_LINZ_H */
