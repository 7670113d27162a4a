/*
 * history.h - recording client histories for the linearizability checker.
 *
 * What a client thread does around each call (linz_add() is thread safe,
 * so any number of client threads share one struct linz_history):
 *
 *	struct linz_op op = { .client = me, .kind = LINZ_PUT,
 *	    .key = k, .key_len = klen, .value = v, .value_len = vlen,
 *	    .version = ver };
 *	op.call_ns = history_now_ns();		before sending anything
 *	rc = clerk_put(...);
 *	op.ret_ns = history_now_ns();		after the answer arrived
 *	op.result = <rc as enum linz_res>;	LINZ_RES_UNKNOWN if none
 *	linz_add(h, &op);
 *
 * An operation whose client is killed or gives up without an answer is
 * recorded with result LINZ_RES_UNKNOWN (its ret_ns becomes LINZ_NEVER).
 * An ErrMaybe whose request may still commit after the clerk returned
 * (a deposed leader's entry that the next leader keeps) is recorded with
 * ret_ns = LINZ_NEVER as well.
 * The clock is CLOCK_MONOTONIC, so the times of several processes on one
 * machine are comparable too.
 *
 * History files (history_save/history_load, tools/linz-check) are text,
 * one operation per line, '#' starts a comment line:
 *
 *	c<client> <call_ns> <ret_ns|never> <body>
 *
 * where <body> is what linz_op_print() writes, e.g.
 *
 *	c3 1200 1950 put "k1" "x\x00y" ver=0 -> OK
 *	c4 1300 2000 get "k1" -> OK "x\x00y" ver=1
 *	c5 1400 never del "k1" ver=1 -> Unknown
 */
#ifndef RAFTKV_TESTS_HISTORY_H
#define RAFTKV_TESTS_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tests/lib/linz.h"

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t history_now_ns(void);

/*
 * Shorthands for hand-written histories (NUL-terminated keys/values).
 * Each returns what linz_add() returns.
 */
int history_get(struct linz_history *h, uint64_t client, uint64_t call,
    uint64_t ret, const char *key, int result, const char *value,
    uint64_t version);
int history_put(struct linz_history *h, uint64_t client, uint64_t call,
    uint64_t ret, const char *key, const char *value, uint64_t version,
    int result);
int history_del(struct linz_history *h, uint64_t client, uint64_t call,
    uint64_t ret, const char *key, uint64_t version, int result);

/* Write every operation of @h to @f.  Returns 0 or -EIO. */
int history_save(struct linz_history *h, FILE *f);

/*
 * Read a history file from @f into a new history (*@out, free it with
 * linz_history_free()).  Returns 0; or -EINVAL for a malformed line,
 * whose number (1-based) is stored in *@bad_line if not NULL; or -EIO.
 */
int history_load(FILE *f, struct linz_history **out, size_t *bad_line);

/*
 * The check integration tests want: run linz_check(), print the summary
 * to stderr (a loud warning for UNKNOWN, the explanation for ILLEGAL),
 * and on ILLEGAL save the history as <dir>/<name>.linz, where <dir> is
 * $RAFTKV_HISTORY_DIR or the current directory, naming the file and the
 * tools/linz-check command that replays it.  Returns the verdict: tests
 * fail on LINZ_ILLEGAL only, as the labs do.
 */
enum linz_verdict history_check(struct linz_history *h, enum linz_model model,
    double timeout_s, const char *name);

#endif /* RAFTKV_TESTS_HISTORY_H */
