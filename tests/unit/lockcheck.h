/*
 * lockcheck.h - the lock table's safety invariants as the tests check them
 * (kv.h LOCKS): mutual exclusion over the locks held at one moment, and
 * tokens strictly increasing in grant order.
 *
 * One checker for every test that judges a lock table: the random runs of
 * tests/unit/test_locktab.c check the table after every step, and
 * tests/fs/test_fs_locklog.c checks it after every entry of a real mount
 * cluster's committed log replayed through a fresh state machine.  Collect
 * the held locks with lockcheck_add() as the walker of locktab_each() or
 * kv_lock_each(), then lockcheck_exclusion(); feed every GRANTED event to
 * lockcheck_grant().
 */
#ifndef RAFTKV_TESTS_UNIT_LOCKCHECK_H
#define RAFTKV_TESTS_UNIT_LOCKCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"

/* One held lock and its inode. */
struct lockcheck_held {
	uint64_t inode;
	struct kv_lock lock;
};

struct lockcheck {
	struct lockcheck_held *held; /* collected since lockcheck_clear() */
	size_t n, cap;
	uint64_t last_token; /* of the latest grant seen */
	uint64_t grants; /* GRANTED events seen */
	uint64_t checks; /* lockcheck_exclusion() calls */
	uint64_t max_shared; /* most holders seen sharing one lock at once */
	char err[512]; /* what the last failed check found */
};

/* Do two holders of different owners in modes @a and @b conflict (0: no
 * lock)?  Exclusive conflicts with anything, shared with exclusive. */
bool lockcheck_conflict(uint8_t a, uint8_t b);

/* Forget the collected locks (the counters stay). */
void lockcheck_clear(struct lockcheck *c);

/* The walker: add @l on @inode to @arg's (a struct lockcheck) collection.
 * Returns 0 (non-zero, stopping the walk, only out of memory). */
int lockcheck_add(void *arg, uint64_t inode, const struct kv_lock *l);

/*
 * Check the collected locks: no two holders of different owners (session,
 * owner) on one inode in one kind space with overlapping ranges (a flock
 * covers the whole file) and conflicting modes; every token non-zero and
 * at most the last grant's when grants are fed (lockcheck_grant()).
 * Returns 0, or -1 with c->err saying which locks.
 */
int lockcheck_exclusion(struct lockcheck *c);

/* A grant (a GRANTED event): its token must be greater than every earlier
 * grant's.  Returns 0, or -1 with c->err. */
int lockcheck_grant(struct lockcheck *c, uint64_t inode,
    const struct kv_lock *l);

void lockcheck_free(struct lockcheck *c);

#endif
